/* HTTP front of the manager: requests, replies and dispatch through the route table. The
 * connections themselves (accepting, worker threads, libsoup's quirks) are in server.c. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "proto/agentproto.h"

#include <errno.h>
#include <string.h>

/* ---- replies ----------------------------------------------------------------------------- */

static void api_request_free(ApiRequest *req)
{
        for (guint i = 0; i < API_MAX_PARAMS; i++)
                g_free(req->params[i]);
        if (req->query)
                g_hash_table_unref(req->query);
        if (req->body)
                json_object_unref(req->body);
        token_info_clear(&req->caller);
        g_free(req->token_hash);
        g_free(req->address);
        g_object_unref(req->msg);
        g_free(req);
}

static void finish(ApiRequest *req)
{
        if (req->paused)
                soup_server_message_unpause(req->msg);
        api_request_free(req);
}

/* Status and a JSON body (taken; NULL for none), never cached by clients or proxies. */
static void set_body(SoupServerMessage *msg, guint status, char *text, gsize len)
{
        soup_server_message_set_status(msg, status, NULL);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                     "no-store");
        if (text)
                soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, text,
                                                 len);
}

static void set_json(SoupServerMessage *msg, guint status, JsonNode *body)
{
        g_autoptr(JsonGenerator) gen = json_generator_new();
        gsize len = 0;
        char *text;

        json_generator_set_root(gen, body);
        text = json_generator_to_data(gen, &len);
        set_body(msg, status, text, len);
}

void api_set_error(SoupServerMessage *msg, const GError *error)
{
        int code = error->domain == ATRIUM_ERROR ? error->code : ATRIUM_ERROR_INTERNAL;
        g_autoptr(JsonNode) body = json_error_body(error);

        if (code == ATRIUM_ERROR_INTERNAL)
                g_warning("internal error: %s", error->message);
        set_json(msg, atrium_error_http_status(code), body);
        if (code == ATRIUM_ERROR_UNAUTHORIZED)
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "WWW-Authenticate", "Bearer realm=\"atrium\"");
        /* Unavailable for now (the database unreachable, no desktop free yet): worth a retry. */
        if (code == ATRIUM_ERROR_UNAVAILABLE &&
            !soup_message_headers_get_one(soup_server_message_get_response_headers(msg),
                                          "Retry-After"))
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Retry-After", "2");
}

void api_reply_json(ApiRequest *req, guint status, JsonNode *body)
{
        set_json(req->msg, status, body);
        finish(req);
}

void api_reply_object(ApiRequest *req, guint status, JsonObject *obj)
{
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

        json_node_take_object(node, obj);
        api_reply_json(req, status, node);
}

void api_reply_text(ApiRequest *req, guint status, GString *json)
{
        gsize len = json->len;

        set_body(req->msg, status, g_string_free(json, FALSE), len);
        finish(req);
}

void api_reply_error(ApiRequest *req, const GError *error)
{
        api_set_error(req->msg, error);
        finish(req);
}

void api_reply_empty(ApiRequest *req, guint status)
{
        set_body(req->msg, status, NULL, 0);
        finish(req);
}

SoupServerMessage *api_detach(ApiRequest *req)
{
        SoupServerMessage *msg = g_object_ref(req->msg);

        api_pause(req);
        api_request_free(req);
        return msg;
}

void api_pause(ApiRequest *req)
{
        if (!req->paused) {
                soup_server_message_pause(req->msg);
                req->paused = TRUE;
        }
}

typedef struct {
        ApiWork work;
        ApiDone done;
        gpointer data;
        GDestroyNotify free_data;
} ThreadJob;

static void thread_job_free(ThreadJob *job)
{
        if (job->free_data)
                job->free_data(job->data);
        g_free(job);
}

static void thread_func(GTask *task, gpointer source, gpointer task_data, GCancellable *c)
{
        ThreadJob *job = task_data;
        GError *error = NULL;
        gpointer result = job->work(job->data, &error);

        if (error)
                g_task_return_error(task, error);
        else
                g_task_return_pointer(task, result, NULL);
}

static void thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
        ApiRequest *req = user_data;
        ThreadJob *job = g_task_get_task_data(G_TASK(res));
        GError *error = NULL;
        gpointer result = g_task_propagate_pointer(G_TASK(res), &error);

        job->done(req, result, error, job->data);
        g_clear_error(&error);
}

void api_run_in_thread(ApiRequest *req, ApiWork work, ApiDone done, gpointer data,
                       GDestroyNotify free_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, NULL, thread_done, req);
        ThreadJob *job = g_new0(ThreadJob, 1);

        job->work = work;
        job->done = done;
        job->data = data;
        job->free_data = free_data;
        g_task_set_task_data(task, job, (GDestroyNotify)thread_job_free);
        api_pause(req);
        g_task_run_in_thread(task, thread_func);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

gboolean http_caller(Store *store, SoupServerMessage *msg, Role least, TokenInfo *caller,
                     char **token_hash_out, GError **error)
{
        const char *h = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
                                                     "Authorization");
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        g_autofree char *hash = NULL;

        if (!h || !g_str_has_prefix(h, "Bearer ") || !h[7]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this request needs a login: send 'Authorization: Bearer TOKEN' "
                            "(POST /api/v1/auth/login gives one)");
                return FALSE;
        }
        hash = token_hash(h + 7);
        if (!store_token_lookup(store, hash, now, caller, error))
                return FALSE;
        if (caller->role < least) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "this needs the %s role; user '%s' has the %s role",
                            role_to_string(least), caller->user_name, role_to_string(caller->role));
                return FALSE;
        }
        if (token_hash_out)
                *token_hash_out = g_steal_pointer(&hash);
        return TRUE;
}

static gboolean read_body(ApiRequest *req, GError **error);

/* The caller's role from permissions on the pool a request is about, where its route says
 * it is named (Route.pool_scope); NONE when none. A body that names it is read here (once). */
static Role route_pool_role(ApiRequest *req)
{
        const Route *r = req->route;
        const char *pool = NULL;
        g_autofree char *text = NULL;
        JsonNode *n;

        switch (r->pool_scope) {
        case POOL_SCOPE_PATH:
                return req->params[0] ? store_pool_role_of(req->store, req->caller.user_id,
                                                           r->scope_kind, req->params[0])
                                      : ROLE_NONE;
        case POOL_SCOPE_QUERY:
                pool = req->query ? g_hash_table_lookup(req->query, "pool") : NULL;
                break;
        case POOL_SCOPE_BODY:
                if (!req->body && !read_body(req, NULL))
                        return ROLE_NONE; /* refused again, with its message, when it is read */
                n = req->body ? json_object_get_member(req->body, "pool") : NULL;
                if (n && JSON_NODE_HOLDS_VALUE(n))
                        pool = text = json_node_get_value_type(n) == G_TYPE_STRING
                                              ? g_strdup(json_node_get_string(n))
                                              : g_strdup_printf("%" G_GINT64_FORMAT,
                                                                json_node_get_int(n));
                break;
        case POOL_SCOPE_NONE:
                break;
        }
        return pool ? store_pool_role_of(req->store, req->caller.user_id, "pool", pool) : ROLE_NONE;
}

static gboolean authenticate(ApiRequest *req, GError **error)
{
        g_autoptr(GError) refused = NULL;

        if (!http_caller(req->store, req->msg, req->route->role, &req->caller, &req->token_hash,
                         &refused)) {
                Role on_pool;
                /* Below the route's role: a permission on the pool it is about may do. */
                if (!g_error_matches(refused, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN) ||
                    !req->caller.user_name || req->caller.enrol_only ||
                    (on_pool = route_pool_role(req)) < req->route->role) {
                        g_propagate_error(error, g_steal_pointer(&refused));
                        return FALSE;
                }
                req->caller.role = MAX(req->caller.role, on_pool); /* this request only */
                if (!req->token_hash) {
                        const char *h = soup_message_headers_get_one(
                                soup_server_message_get_request_headers(req->msg), "Authorization");
                        req->token_hash = token_hash(h + 7);
                }
        } else if (req->caller.role < ROLE_OPERATOR && !req->caller.enrol_only) {
                /* A user's route about a pool where it has more: what it sees and may do there
                 * (every desktop and session of the pool) follows that role. */
                Role on_pool = route_pool_role(req);
                if (on_pool > req->caller.role)
                        req->caller.role = on_pool;
        }
        req->actor.name = req->caller.user_name;
        req->actor.user_id = req->caller.user_id;
        if (req->caller.enrol_only && !req->route->enrol_ok) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "your account must use a one-time code (TOTP): enrol first "
                            "(POST /api/v1/me/totp, then /api/v1/me/totp/confirm)");
                return FALSE;
        }
        return TRUE;
}

static gboolean read_body(ApiRequest *req, GError **error)
{
        SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(req->msg);
        SoupMessageBody *body = soup_server_message_get_request_body(req->msg);
        g_autoptr(GBytes) bytes = NULL;
        gsize limit = MIN(req->route->body_limit, (gsize)MCFG_INT(req->mgr, "max_body_bytes"));
        const char *ctype = soup_message_headers_get_content_type(hdrs, NULL);
        JsonNode *root;
        gsize len;
        const char *data;

        if (req->route->body_limit == 0 || req->body)
                return TRUE;
        bytes = soup_message_body_flatten(body);
        data = g_bytes_get_data(bytes, &len);
        if (len == 0) { /* no body: an empty object (actions whose arguments are optional) */
                req->body = json_object_new();
                return TRUE;
        }
        if (len > limit) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                            "the request body is %zu bytes; this route accepts at most %zu", len,
                            limit);
                return FALSE;
        }
        if (!ctype || g_ascii_strcasecmp(ctype, "application/json") != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNSUPPORTED_MEDIA,
                            "the request body must be sent as Content-Type: application/json");
                return FALSE;
        }
        root = json_parse_body(data, len, MCFG_INT(req->mgr, "max_json_depth"), error);
        if (!root)
                return FALSE;
        req->body = json_object_ref(json_node_get_object(root));
        json_node_unref(root);
        return TRUE;
}

/* A standby serves what only reads: GET and HEAD. */
static gboolean standby_may(ApiRequest *req)
{
        return g_str_equal(req->route->method, "GET") || g_str_equal(req->route->method, "HEAD");
}

/* Anything else goes to the leader: a 307 to the same path there (clients repeat the request
 * with its method and body), or a 503 while no manager leads (a takeover under way). A
 * redirect rather than a relay: the client then talks to the leader itself, one hop, and a
 * standby never holds a write in flight when the leader changes. */
static void standby_refer(ApiRequest *req)
{
        g_autofree char *leader = manager_leader_url(req->mgr);
        GUri *uri = soup_server_message_get_uri(req->msg);
        const char *q = g_uri_get_query(uri);
        g_autoptr(GError) error = NULL;

        if (!leader[0]) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "no manager leads at the moment (the lease is being taken over); "
                            "retry in a second");
                api_set_error(req->msg, error);
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             "Retry-After", "1");
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             AGENT_LEADER_HEADER, "none");
                finish(req);
                return;
        }
        {
                g_autofree char *to = g_strdup_printf("%s%s%s%s", leader, g_uri_get_path(uri),
                                                      q ? "?" : "", q ? q : "");
                g_autofree char *body = g_strdup_printf(
                        "{\"error\":{\"code\":\"standby\",\"message\":\"this manager is a "
                        "standby; the leader answers this\"},\"leader_url\":\"%s\"}",
                        leader);
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             "Location", to);
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             AGENT_LEADER_HEADER, leader);
                gsize len = strlen(body);
                set_body(req->msg, SOUP_STATUS_TEMPORARY_REDIRECT, g_steal_pointer(&body), len);
                finish(req);
        }
}

static void http_serve(SoupServer *server, SoupServerMessage *msg, const char *path,
                       GHashTable *query, gpointer user_data)
{
        ServeContext *sc = user_data;
        gsize n;
        const Route *routes = routes_all(&n);
        ApiRequest *req = g_new0(ApiRequest, 1);
        g_autoptr(GError) error = NULL;
        gboolean path_known;

        req->mgr = sc->mgr;
        req->store = sc->store;
        req->msg = g_object_ref(msg);
        req->address = g_strdup(soup_server_message_get_remote_host(msg));
        if (!req->address) {
                /* The local socket (0600, root only) is where this process's gateway relays
                 * the API to: it names the client, having dropped whatever the client said. */
                const char *fwd = soup_message_headers_get_one(
                        soup_server_message_get_request_headers(msg), "X-Forwarded-For");
                if (fwd && g_hostname_is_ip_address(fwd))
                        req->address = g_strdup(fwd);
        }
        req->actor.name = "anonymous";
        req->actor.address = req->address ? req->address : "";
        if (query)
                req->query = g_hash_table_ref(query);
        req->route = router_match(routes, n, soup_server_message_get_method(msg), path, req->params,
                                  &path_known);
        if (!req->route) {
                if (path_known)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_METHOD_NOT_ALLOWED,
                                    "%s is not allowed on this route",
                                    soup_server_message_get_method(msg));
                else {
                        g_autofree char *q = util_quote(path);
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                                    "there is no API route '%s'", q);
                }
                api_reply_error(req, error);
                return;
        }
        if (!manager_leading(req->mgr) && !standby_may(req)) {
                standby_refer(req);
                return;
        }
        if ((req->route->role != ROLE_NONE && !authenticate(req, &error)) ||
            !read_body(req, &error)) {
                api_reply_error(req, error);
                return;
        }
        req->route->handler(req);
}

/* The routes with an early handler, copied once from the table. */
static const Route *early_routes(gsize *n)
{
        static GArray *early;

        if (g_once_init_enter(&early)) {
                gsize all;
                const Route *routes = routes_all(&all);
                GArray *a = g_array_new(FALSE, TRUE, sizeof(Route));
                for (gsize i = 0; i < all; i++)
                        if (routes[i].early)
                                g_array_append_val(a, routes[i]);
                g_once_init_leave(&early, a);
        }
        *n = early->len;
        return (const Route *)early->data;
}

/* Early handler: runs once the headers are read, before the body. Refuses an oversized body
 * as soon as Content-Length says so, without reading it. */
static void http_serve_early(SoupServer *server, SoupServerMessage *msg, const char *path,
                             GHashTable *query, gpointer user_data)
{
        ServeContext *sc = user_data;
        goffset len = soup_message_headers_get_content_length(
                soup_server_message_get_request_headers(msg));
        gint64 max = MCFG_INT(sc->mgr, "max_body_bytes");
        gsize n;
        const Route *early = early_routes(&n);
        char *params[API_MAX_PARAMS] = {NULL};
        gboolean known;
        const Route *r =
                router_match(early, n, soup_server_message_get_method(msg), path, params, &known);

        if (r) { /* its own limit (an upload: its body written to disk as it comes) */
                r->early(sc, msg, params);
                for (guint i = 0; i < API_MAX_PARAMS; i++)
                        g_free(params[i]);
                return;
        }
        if (len > max) {
                g_autoptr(GError) error =
                        g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                                    "the request body is %" G_GOFFSET_FORMAT
                                    " bytes; at most %" G_GINT64_FORMAT " are accepted",
                                    len, max);
                api_set_error(msg, error);
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Connection", "close");
        }
}

void http_install(SoupServer *soup, ServeContext *sc, gpointer data)
{
        soup_server_add_early_handler(soup, NULL, http_serve_early, sc, NULL);
        soup_server_add_handler(soup, NULL, http_serve, sc, NULL);
}
