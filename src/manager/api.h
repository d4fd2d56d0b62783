/* REST API internals: the route table, the request context and reply helpers. */
#pragma once
#include "manager/httpserver.h"

typedef struct _ApiRequest ApiRequest;
typedef void (*RouteHandler)(ApiRequest *req);

/* Where a request names the pool it is about, for permissions on one pool (a pool admin's
 * operator or helpdesk role there lets it use routes above its own role). */
typedef enum {
        POOL_SCOPE_NONE,
        POOL_SCOPE_PATH,  /* {id} is an object of scope_kind: a pool, desktop, session, entitlement
                           */
        POOL_SCOPE_QUERY, /* ?pool= (a list filtered by pool) */
        POOL_SCOPE_BODY,  /* the body's "pool" (an entitlement being made) */
} PoolScope;

/* Runs once the headers are read, before the body (an upload sets up its own reader, or
 * refuses at once); params are the route's captures. */
typedef void (*RouteEarly)(ServeContext *sc, SoupServerMessage *msg, char **params);

typedef struct {
        const char *method;
        const char *pattern; /* "/api/v1/pools/{id}" */
        RouteHandler handler;
        Role role;           /* least role allowed; ROLE_NONE: no login needed */
        gsize body_limit;    /* 0: takes no body */
        const Resource *res; /* generic object routes */
        const char *op;      /* list, get, create, update, delete, or a verb */
        const char *summary;
        PoolScope pool_scope;
        const char *scope_kind; /* POOL_SCOPE_PATH */
        gboolean enrol_ok;      /* an enrol-only token (TOTP required, not set up) may use it */
        RouteEarly early;       /* NULL: the body is read whole, up to body_limit */
} Route;

#define API_MAX_PARAMS 3
#define API_SMALL_BODY 4096

struct _ApiRequest {
        Manager *mgr;
        Store *store; /* this HTTP worker's own handle on the state */
        SoupServerMessage *msg;
        const Route *route;
        char *params[API_MAX_PARAMS];
        GHashTable *query; /* may be NULL */
        JsonObject *body;  /* routes with a body */
        TokenInfo caller;  /* when the route needs a login */
        char *token_hash;
        char *address;
        Actor actor;
        gboolean paused;
};

/* Adds the API's handlers to a worker's SoupServer (an HttpInstallFunc, http.c): the request
 * handler, and the early handler that refuses an oversized body before it is read. */
void http_install(SoupServer *soup, ServeContext *sc, gpointer data);

const Route *routes_all(gsize *n);
/* The caller of MSG from its bearer token, with at least the role LEAST (and the token's hash
 * in *token_hash when not NULL). */
gboolean http_caller(Store *store, SoupServerMessage *msg, Role least, TokenInfo *caller,
                     char **token_hash, GError **error);
/* PUT /media/{id}/isos/{file}: the early handler sets the upload up (login, checks, a temporary
 * file the body is written to as it arrives). */
void api_upload_early(ServeContext *sc, SoupServerMessage *msg, char **params);
/* Find the route for METHOD PATH, capturing {params} (caller frees them). Sets *path_known
 * when some route has this path with another method (405 rather than 404). */
const Route *router_match(const Route *routes, gsize n, const char *method, const char *path,
                          char **params, gboolean *path_known);

/* Replies; each frees the request (after unpausing it if it was paused). */
void api_reply_json(ApiRequest *req, guint status, JsonNode *body);
void api_reply_object(ApiRequest *req, guint status, JsonObject *obj); /* takes obj */
void api_reply_error(ApiRequest *req, const GError *error);
/* An error as MSG's reply (for handlers without an ApiRequest). */
void api_set_error(SoupServerMessage *msg, const GError *error);
void api_reply_text(ApiRequest *req, guint status, GString *json); /* takes json */
void api_reply_empty(ApiRequest *req, guint status);
/* Keep the request open while work runs in a thread. */
void api_pause(ApiRequest *req);
/* Frees the request and hands its message, paused, to the caller (a stream it replies to). */
SoupServerMessage *api_detach(ApiRequest *req);

/* Run func(data) in a worker thread, then done(req, result) on the loop. */
typedef gpointer (*ApiWork)(gpointer data, GError **error);
typedef void (*ApiDone)(ApiRequest *req, gpointer result, GError *error, gpointer data);
void api_run_in_thread(ApiRequest *req, ApiWork work, ApiDone done, gpointer data,
                       GDestroyNotify free_data);

JsonNode *openapi_document(void);

/* Handlers. */
void api_objects_list(ApiRequest *req);
void api_objects_get(ApiRequest *req);
void api_objects_create(ApiRequest *req);
void api_objects_update(ApiRequest *req);
void api_objects_delete(ApiRequest *req);
void api_auth_login(ApiRequest *req);
void api_auth_logout(ApiRequest *req);
void api_me_get(ApiRequest *req);
void api_me_password(ApiRequest *req);
void api_version(ApiRequest *req);
void api_cluster(ApiRequest *req);
void api_roles_list(ApiRequest *req);
void api_openapi(ApiRequest *req);
void api_group_members(ApiRequest *req);
void api_group_member_add(ApiRequest *req);
void api_group_member_remove(ApiRequest *req);
void api_agent_register(ApiRequest *req);
void api_join_token_create(ApiRequest *req);
void api_host_maintenance(ApiRequest *req);
void api_host_fence(ApiRequest *req);
void api_migrate(ApiRequest *req);
void api_operation_cancel(ApiRequest *req);
void api_guest_action(ApiRequest *req);
void api_guest_delete(ApiRequest *req);
void api_volume_images(ApiRequest *req);
void api_template_from_guest(ApiRequest *req, gboolean create);
void api_template_version_delete(ApiRequest *req);
void api_template_delete(ApiRequest *req);
/* The host for a guest's work (its own, the one wanted, or the freest up host), or 0. */
gint64 api_pick_host(ApiRequest *req, JsonObject *guest, const char *wanted, GError **error);
/* The path of the volume or media storage a row refers to by COLUMN, or NULL. */
char *api_ref_path(ApiRequest *req, JsonObject *row, const char *column, const char *kind,
                   GError **error);
void api_media_isos(ApiRequest *req);
/* Reconciler and desktops (api-pools.c). */
gboolean api_pool_check(ApiRequest *req, gboolean create, GError **error);
void api_pool_written(ApiRequest *req, JsonObject *old, JsonObject *row);
void api_session_written(ApiRequest *req, JsonObject *row);
void api_pool_delete(ApiRequest *req);
void api_desktop_delete(ApiRequest *req);
void api_desktop_recompose(ApiRequest *req);
void api_template_rollout(ApiRequest *req, JsonObject *template_row);
void api_pool_disk(ApiRequest *req);
void api_host_domains(ApiRequest *req);
/* The broker (broker.c). */
void api_me_desktops(ApiRequest *req);
void api_connect(ApiRequest *req);
void api_kiosk_connect(ApiRequest *req);
void api_terminal_key(ApiRequest *req);
void api_session_end(ApiRequest *req);
void api_session_disconnect(ApiRequest *req);
void api_gateway_events(ApiRequest *req);
void api_stream(ApiRequest *req);
void api_media_upload(ApiRequest *req);
void api_directory_test(ApiRequest *req);
void api_totp_enrol(ApiRequest *req);
void api_totp_confirm(ApiRequest *req);
void api_totp_disable(ApiRequest *req);
void api_totp_reset(ApiRequest *req);

/* TOTP at login (api-totp.c): the user may pass, must give a (right) code, or may only enrol. */
typedef enum { TOTP_PASS, TOTP_REFUSED, TOTP_MUST_ENROL } TotpCheck;
TotpCheck totp_login_check(ApiRequest *req, gint64 user_id, Role role, const char *otp,
                           GError **error);
gboolean totp_required_for(Manager *mgr, Role role, gboolean user_required);
