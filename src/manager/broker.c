/* The broker, first part: what a user may use (GET /me/desktops) and connecting to a pool or
 * a desktop (POST /pools/{id}/connect, /desktops/{id}/connect): entitlement and maintenance
 * checks, the choice and assignment of a desktop (under one lock, so two connects never get
 * the same one), the session, a one-time console password set by the desktop's host, and the
 * connection data: a signed console ticket (proto/ticket.h), a remote-viewer .vv body whose
 * proxy is the gateway, and the browser console URL.
 * A stopped desktop is started and its atrium-guest 'ready' awaited without blocking
 * (manager.connect_ready_timeout). Not yet: placement on another host at connect, kiosk
 * terminals, session timeouts. */
#define G_LOG_DOMAIN "broker"

#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/agents.h"
#include "manager/api.h"
#include "manager/broker.h"
#include "manager/pools.h"
#include "proto/agentproto.h"
#include "proto/ticket.h"

#include <string.h>

static GMutex assign_lock; /* one manager: picking and assigning a desktop is one step */

static const char *str(JsonObject *o, const char *k)
{
        return json_object_get_string_member_with_default(o, k, "");
}

static JsonArray *rows_where(Store *st, const char *kind, const char *field, gint64 id)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

        g_hash_table_insert(f, (gpointer)field, util_id_text(id));
        return store_list_all(st, resource_by_kind(kind), f, NULL);
}

/* The ids of the pools a user is entitled to, directly or through a group. */
static GHashTable *entitled_pools(Store *st, gint64 user_id)
{
        GHashTable *pools = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(JsonArray) ents = store_list_all(st, resource_by_kind("entitlement"), NULL, NULL);
        g_autoptr(GHashTable) mine =
                g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(JsonArray) groups = store_list_all(st, resource_by_kind("group"), NULL, NULL);

        for (guint i = 0; groups && i < json_array_get_length(groups); i++) {
                JsonObject *g = json_array_get_object_element(groups, i);
                g_autoptr(JsonArray) members = store_members(st, str(g, "name"), NULL);
                for (guint k = 0; members && k < json_array_get_length(members); k++)
                        if (json_object_get_int_member(json_array_get_object_element(members, k),
                                                       "id") == user_id)
                                g_hash_table_add(
                                        mine,
                                        g_memdup2(&(gint64){json_object_get_int_member(g, "id")},
                                                  sizeof(gint64)));
        }
        for (guint i = 0; ents && i < json_array_get_length(ents); i++) {
                JsonObject *e = json_array_get_object_element(ents, i);
                gint64 gid = json_row_ref(e, "group_id");
                if (json_row_ref(e, "user_id") == user_id ||
                    (gid && g_hash_table_contains(mine, &gid)))
                        g_hash_table_add(pools, g_memdup2(&(gint64){json_row_ref(e, "pool_id")},
                                                          sizeof(gint64)));
        }
        return pools;
}

void api_me_desktops(ApiRequest *req)
{
        Store *st = req->store;
        g_autoptr(GHashTable) entitled = entitled_pools(st, req->caller.user_id);
        g_autoptr(JsonArray) pools = store_list_all(st, resource_by_kind("pool"), NULL, NULL);
        g_autoptr(JsonArray) mine = rows_where(st, "desktop", "user", req->caller.user_id);
        JsonArray *items = json_array_new();
        JsonObject *reply = json_object_new();

        for (guint i = 0; pools && i < json_array_get_length(pools); i++) {
                JsonObject *p = json_array_get_object_element(pools, i);
                gint64 pid = json_object_get_int_member(p, "id");
                JsonObject *o;
                JsonArray *protos, *desks;
                if (!g_hash_table_contains(entitled, &pid) ||
                    json_object_get_boolean_member(p, "deleting"))
                        continue;
                o = json_object_new();
                json_object_set_int_member(o, "id", pid);
                json_object_set_string_member(o, "pool", str(p, "name"));
                json_object_set_string_member(o, "description", str(p, "description"));
                json_object_set_string_member(o, "mode", str(p, "mode"));
                json_object_set_boolean_member(o, "maintenance",
                                               json_object_get_boolean_member(p, "maintenance"));
                protos = json_array_new();
                json_array_add_string_element(protos, "spice");
                json_array_add_string_element(protos, "vnc");
                json_object_set_array_member(o, "protocols", protos);
                desks = json_array_new();
                for (guint k = 0; mine && k < json_array_get_length(mine); k++) {
                        JsonObject *d = json_array_get_object_element(mine, k);
                        JsonObject *dd;
                        if (json_row_ref(d, "pool_id") != pid)
                                continue;
                        dd = json_object_new();
                        json_object_set_int_member(dd, "id", json_object_get_int_member(d, "id"));
                        json_object_set_string_member(dd, "name", str(d, "name"));
                        json_object_set_string_member(dd, "state", str(d, "state"));
                        json_array_add_object_element(desks, dd);
                }
                json_object_set_array_member(o, "desktops", desks);
                json_array_add_object_element(items, o);
        }
        json_object_set_array_member(reply, "items", items);
        api_reply_object(req, 200, reply);
}

/* ---- connect ----------------------------------------------------------------------------- */

typedef struct {
        ApiRequest *req;
        gint64 desktop_id, session_id, host_id, pool_id;
        char *desktop_name, *protocol, *host_address, *password;
        gint64 t0; /* monotonic µs at the request */
} Connect;

static void connect_free(Connect *c)
{
        g_free(c->desktop_name);
        g_free(c->protocol);
        g_free(c->host_address);
        g_free(c->password);
        g_free(c);
}

static void refuse(ApiRequest *req, int code, const char *what, const char *detail)
{
        g_autoptr(GError) e = g_error_new(ATRIUM_ERROR, code, "%s", detail);

        store_event_add(req->store, &req->actor, "connect_refused", "pool", 0, what, detail, NULL);
        api_reply_error(req, e);
}

static gboolean usable_spare(JsonObject *d, GHashTable *in_session)
{
        gint64 id = json_object_get_int_member(d, "id");

        return json_row_ref(d, "user_id") == 0 && !json_object_get_boolean_member(d, "dirty") &&
               !json_object_get_boolean_member(d, "maintenance") &&
               !g_hash_table_contains(in_session, &id);
}

/* The caller's desktop in the pool: theirs already (a reconnect takes it over), else a
 * started spare, else a stopped clean one. Assigned before the lock is released. NULL with
 * an error when none is left. */
static JsonObject *pick(ApiRequest *req, JsonObject *pool, GError **error)
{
        Store *st = req->store;
        g_autoptr(JsonArray) desks =
                rows_where(st, "desktop", "pool", json_object_get_int_member(pool, "id"));
        g_autoptr(GHashTable) in_session =
                g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(JsonArray) sessions = store_list_all(st, resource_by_kind("session"), NULL, NULL);
        JsonObject *choice = NULL;
        static const char *const order[] = {"running", "stopped"};

        for (guint i = 0; sessions && i < json_array_get_length(sessions); i++)
                g_hash_table_add(
                        in_session,
                        g_memdup2(&(gint64){json_row_ref(json_array_get_object_element(sessions, i),
                                                         "desktop_id")},
                                  sizeof(gint64)));
        for (guint i = 0; desks && i < json_array_get_length(desks) && !choice; i++) {
                JsonObject *d = json_array_get_object_element(desks, i);
                if (json_row_ref(d, "user_id") == req->caller.user_id &&
                    (g_str_equal(str(d, "state"), "running") ||
                     g_str_equal(str(d, "state"), "stopped")))
                        choice = d;
        }
        for (gsize o = 0; o < G_N_ELEMENTS(order) && !choice; o++)
                for (guint i = 0; desks && i < json_array_get_length(desks) && !choice; i++) {
                        JsonObject *d = json_array_get_object_element(desks, i);
                        if (g_str_equal(str(d, "state"), order[o]) && usable_spare(d, in_session))
                                choice = d;
                }
        if (!choice) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "pool '%s' exhausted: every desktop is in use (size %" G_GINT64_FORMAT
                            ", maximum %" G_GINT64_FORMAT ")",
                            str(pool, "name"), json_object_get_int_member(pool, "size"),
                            json_object_get_int_member(pool, "max_size"));
                return NULL;
        }
        return json_object_ref(choice);
}

/* The session and the desktop's assignment, in one transaction (the reconciler never sees an
 * assigned, dirty desktop without its session). Returns the session row. */
static JsonObject *assign(ApiRequest *req, JsonObject *desktop, const char *proto, GError **error)
{
        g_autoptr(JsonObject) sv = json_object_new();
        g_autoptr(JsonObject) patch = json_object_new();
        g_autofree char *did = util_id_text(json_object_get_int_member(desktop, "id"));
        g_autoptr(JsonArray) rows = NULL;
        StoreChange changes[2] = {
                {resource_by_kind("session"), NULL, sv},
                {resource_by_kind("desktop"), did, patch},
        };

        { /* a reconnect takes over the caller's session on that desktop */
                g_autoptr(JsonArray) open = rows_where(req->store, "session", "desktop",
                                                       json_object_get_int_member(desktop, "id"));
                for (guint i = 0; open && i < json_array_get_length(open); i++) {
                        JsonObject *o = json_array_get_object_element(open, i);
                        if (json_row_ref(o, "user_id") == req->caller.user_id)
                                return json_object_ref(o);
                }
        }
        json_object_set_int_member(sv, "user", req->caller.user_id);
        json_object_set_int_member(sv, "desktop", json_object_get_int_member(desktop, "id"));
        json_object_set_string_member(sv, "state", "disconnected");
        json_object_set_string_member(sv, "protocol", proto);
        json_object_set_int_member(patch, "user", req->caller.user_id);
        json_object_set_boolean_member(patch, "dirty", TRUE);
        rows = store_change_batch(req->store, changes, 2, &req->actor, error);
        return rows ? json_object_ref(json_array_get_object_element(rows, 0)) : NULL;
}

static void connected(JsonObject *result, const GError *error, gpointer data)
{
        Connect *c = data;
        ApiRequest *req = c->req;
        g_autoptr(GError) err = NULL;
        g_autofree char *ticket_text = NULL, *vv = NULL, *url = NULL, *detail = NULL;
        const char *pw, *gateway = MCFG_STR(req->mgr, "gateway_url");
        gint64 port, ttl = MCFG_INT(req->mgr, "ticket_ttl");
        Ticket t = {0};
        JsonObject *reply;

        if (error) {
                api_reply_error(req, error);
                connect_free(c);
                return;
        }
        port = json_object_get_int_member_with_default(result, "port", 0);
        pw = c->password;
        g_strlcpy(t.host, c->host_address, sizeof(t.host));
        t.port = (guint16)port;
        g_strlcpy(t.proto, c->protocol, sizeof(t.proto));
        t.desktop = c->desktop_id;
        t.user = req->caller.user_id;
        t.exp = g_get_real_time() / G_USEC_PER_SEC + ttl;
        ticket_new_nonce(&t);
        ticket_text = ticket_sign(&t, req->mgr->ticket_sk, &err);
        if (!ticket_text) {
                api_reply_error(req, err);
                connect_free(c);
                return;
        }
        if (!gateway[0])
                gateway = req->mgr->url;
        url = g_strdup_printf("%s/console?ticket=%s", gateway, ticket_text);
        vv = g_strdup_printf("[virt-viewer]\ntype=%s\nhost=%s\nport=%" G_GINT64_FORMAT
                             "\npassword=%s\nproxy=%s\ntitle=%s\ndelete-this-file=1\n"
                             "secure-attention=ctrl+alt+end\n",
                             c->protocol, c->host_address, port, pw, gateway, c->desktop_name);
        reply = json_object_new();
        json_object_set_int_member(reply, "desktop_id", c->desktop_id);
        json_object_set_string_member(reply, "desktop", c->desktop_name);
        json_object_set_int_member(reply, "session", c->session_id);
        json_object_set_string_member(reply, "protocol", c->protocol);
        json_object_set_string_member(reply, "ticket", ticket_text);
        json_object_set_int_member(reply, "expires_at", t.exp);
        json_object_set_string_member(reply, "console_url", url);
        json_object_set_string_member(reply, "vv", vv);
        detail = g_strdup_printf("desktop %s, ticket issued after %" G_GINT64_FORMAT " ms",
                                 c->desktop_name, (g_get_monotonic_time() - c->t0) / 1000);
        store_event_add(req->store, &req->actor, "connect", "desktop", c->desktop_id,
                        c->desktop_name, detail, NULL);
        api_reply_object(req, 200, reply);
        connect_free(c);
}

/* The console step: a one-time password on the running desktop, then the connection data. */
static void console_step(Connect *c)
{
        ApiRequest *req = c->req;
        g_autoptr(GError) error = NULL;
        g_autofree char *dom = agent_domain_name(req->mgr->installation, "desktop", c->desktop_id);
        JsonObject *args = json_object_new();

        json_object_set_string_member(args, "domain", dom);
        json_object_set_string_member(args, "protocol", c->protocol);
        c->password = util_random_password();
        if (g_str_equal(c->protocol, "vnc"))
                c->password[8] = '\0'; /* VNC passwords are 8 characters */
        json_object_set_string_member(args, "password", c->password);
        json_object_set_int_member(args, "expires_at",
                                   g_get_real_time() / G_USEC_PER_SEC +
                                           MCFG_INT(req->mgr, "ticket_ttl"));
        if (!agents_call(req->mgr->agents, c->host_id, "domain.console", args,
                         MCFG_INT(req->mgr, "agent_command_timeout"), connected, c, &error)) {
                connect_free(c);
                api_reply_error(req, error);
        }
}

/* ---- waiting for atrium-guest 'ready' after a start, without blocking ---------------------- */

typedef struct {
        gint64 desktop_id;
        GMainContext *ctx; /* the request's */
        Connect *c;
        gboolean started, ready, done; /* touched on ctx's thread only */
        GSource *timeout;
} Waiter;

static GMutex waiters_lock;
static GHashTable *waiters; /* desktop id -> GPtrArray of Waiter (references) */

static Waiter *waiter_ref(Waiter *w)
{
        return g_atomic_rc_box_acquire(w);
}

static void waiter_clear(Waiter *w)
{
        g_main_context_unref(w->ctx);
}

static void waiter_unref(Waiter *w)
{
        g_atomic_rc_box_release_full(w, (GDestroyNotify)waiter_clear);
}

static void waiter_forget(Waiter *w)
{
        GPtrArray *a;

        g_mutex_lock(&waiters_lock);
        a = waiters ? g_hash_table_lookup(waiters, &w->desktop_id) : NULL;
        if (a && g_ptr_array_remove(a, w))
                waiter_unref(w);
        g_mutex_unlock(&waiters_lock);
}

/* Both the start's reply and 'ready' are needed; whichever comes last goes on. */
static void waiter_maybe_go(Waiter *w)
{
        Connect *c = w->c;
        g_autofree char *detail = NULL;

        if (w->done || !w->started || !w->ready)
                return;
        w->done = TRUE;
        if (w->timeout)
                g_source_destroy(w->timeout);
        detail = g_strdup_printf("desktop %s started and ready after %" G_GINT64_FORMAT " ms",
                                 c->desktop_name, (g_get_monotonic_time() - c->t0) / 1000);
        store_event_add(c->req->store, &c->req->actor, "connect_ready", "desktop", c->desktop_id,
                        c->desktop_name, detail, NULL);
        console_step(c);
}

static gboolean on_ready(gpointer data)
{
        Waiter *w = data;

        w->ready = TRUE;
        waiter_maybe_go(w);
        return G_SOURCE_REMOVE;
}

void broker_desktop_ready(gint64 desktop_id)
{
        g_autoptr(GPtrArray) a = NULL;

        g_mutex_lock(&waiters_lock);
        if (waiters)
                g_hash_table_steal_extended(waiters, &desktop_id, NULL, (gpointer *)&a);
        g_mutex_unlock(&waiters_lock);
        for (guint i = 0; a && i < a->len; i++) {
                Waiter *w = a->pdata[i];
                g_main_context_invoke_full(w->ctx, G_PRIORITY_DEFAULT, on_ready, w,
                                           (GDestroyNotify)waiter_unref);
        }
}

static gboolean on_ready_timeout(gpointer data)
{
        Waiter *w = data;
        Connect *c = w->c;
        g_autoptr(GError) e = NULL;
        g_autofree char *sid = util_id_text(c->session_id);

        w->timeout = NULL;
        if (w->done)
                return G_SOURCE_REMOVE;
        w->done = TRUE;
        waiter_forget(w);
        e = g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                        "desktop '%s' did not report ready (atrium-guest) within %" G_GINT64_FORMAT
                        " s; try again, or ask an administrator to look at it",
                        c->desktop_name, MCFG_INT(c->req->mgr, "connect_ready_timeout"));
        store_event_add(c->req->store, &c->req->actor, "connect_failed", "desktop", c->desktop_id,
                        c->desktop_name, e->message, NULL);
        /* no session: a stateless desktop is then reset by the reconciler */
        store_delete(c->req->store, resource_by_kind("session"), sid, &c->req->actor, NULL);
        pools_kick(c->req->mgr->pools);
        api_reply_error(c->req, e);
        connect_free(c);
        return G_SOURCE_REMOVE;
}

static void started(JsonObject *result, const GError *error, gpointer data)
{
        Waiter *w = data;
        Connect *c = w->c;
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;
        g_autofree char *did = util_id_text(c->desktop_id);

        if (w->done) {
                waiter_unref(w);
                return;
        }
        if (error) {
                w->done = TRUE;
                if (w->timeout)
                        g_source_destroy(w->timeout);
                waiter_forget(w);
                api_reply_error(c->req, error);
                connect_free(c);
                waiter_unref(w);
                return;
        }
        json_object_set_string_member(patch, "state", "running");
        json_object_set_int_member(patch, "state_since", g_get_real_time() / G_USEC_PER_SEC);
        upd = store_update(c->req->store, resource_by_kind("desktop"), did, patch, NULL, NULL);
        w->started = TRUE;
        waiter_maybe_go(w);
        waiter_unref(w);
}

/* A stopped desktop: started on its host (if the scheduler lets it), then 'ready' awaited. */
static void start_step(Connect *c, JsonObject *desktop, JsonObject *host)
{
        ApiRequest *req = c->req;
        g_autoptr(GError) error = NULL;
        JsonObject *args = pools_desktop_args(req->store, req->mgr->installation, desktop, &error);
        Waiter *w;

        if (!args) {
                api_reply_error(req, error);
                connect_free(c);
                return;
        }
        w = g_atomic_rc_box_new0(Waiter);
        w->desktop_id = c->desktop_id;
        w->ctx = g_main_context_ref_thread_default();
        w->c = c;
        g_mutex_lock(&waiters_lock);
        if (!waiters)
                waiters = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                                (GDestroyNotify)g_ptr_array_unref);
        {
                GPtrArray *a = g_hash_table_lookup(waiters, &w->desktop_id);
                if (!a) {
                        a = g_ptr_array_new();
                        g_hash_table_insert(waiters, g_memdup2(&w->desktop_id, sizeof(gint64)), a);
                }
                g_ptr_array_add(a, waiter_ref(w)); /* the registry's reference */
        }
        g_mutex_unlock(&waiters_lock);
        w->timeout = g_timeout_source_new_seconds(MCFG_INT(req->mgr, "connect_ready_timeout"));
        g_source_set_callback(w->timeout, on_ready_timeout, waiter_ref(w),
                              (GDestroyNotify)waiter_unref);
        g_source_attach(w->timeout, w->ctx);
        g_source_unref(w->timeout);
        if (!agents_call(req->mgr->agents, c->host_id, "domain.start", args,
                         MCFG_INT(req->mgr, "agent_command_timeout"), started, w, &error)) {
                w->done = TRUE;
                g_source_destroy(w->timeout);
                waiter_forget(w);
                waiter_unref(w);
                api_reply_error(req, error);
                connect_free(c);
        }
        (void)host;
}

static void connect_to(ApiRequest *req, JsonObject *desktop, JsonObject *session, const char *proto)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) host = NULL;
        gboolean running = g_str_equal(str(desktop, "state"), "running");
        Connect *c;

        if (!running && !g_str_equal(str(desktop, "state"), "stopped")) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "desktop '%s' is %s: try again in a moment", str(desktop, "name"),
                            str(desktop, "state"));
                api_reply_error(req, error);
                return;
        }
        host = store_get(req->store, resource_by_kind("host"), str(desktop, "host"), 0, &error);
        if (!host) {
                api_reply_error(req, error);
                return;
        }
        if (!agents_linked(req->mgr->agents, json_object_get_int_member(host, "id"))) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the host of desktop '%s' (%s) is not connected", str(desktop, "name"),
                            str(host, "name"));
                api_reply_error(req, error);
                return;
        }
        c = g_new0(Connect, 1);
        c->req = req;
        c->t0 = g_get_monotonic_time();
        c->desktop_id = json_object_get_int_member(desktop, "id");
        c->session_id = json_object_get_int_member(session, "id");
        c->host_id = json_object_get_int_member(host, "id");
        c->desktop_name = g_strdup(str(desktop, "name"));
        c->protocol = g_strdup(proto);
        c->host_address = g_strdup(str(host, "address"));
        api_pause(req);
        if (running)
                console_step(c);
        else
                start_step(c, desktop, host);
}

/* POST /pools/{id}/connect and /desktops/{id}/connect */
void api_connect(ApiRequest *req)
{
        gboolean to_pool = g_str_has_prefix(req->route->pattern, "/api/v1/pools/");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) pool = NULL, desktop = NULL, session = NULL;
        g_autoptr(GHashTable) entitled = NULL;
        const char *proto =
                req->body
                        ? json_object_get_string_member_with_default(req->body, "protocol", "spice")
                        : "spice";
        gint64 pid;

        if (to_pool) {
                pool = store_get(req->store, resource_by_kind("pool"), req->params[0], 0, &error);
        } else {
                desktop = store_get(req->store, resource_by_kind("desktop"), req->params[0], 0,
                                    &error);
                if (desktop && json_row_ref(desktop, "user_id") != req->caller.user_id) {
                        g_clear_pointer(&desktop, json_object_unref);
                        refuse(req, ATRIUM_ERROR_NOT_FOUND, req->params[0],
                               "no such desktop of yours");
                        return;
                }
                if (desktop)
                        pool = store_get(req->store, resource_by_kind("pool"), str(desktop, "pool"),
                                         0, &error);
        }
        if (!pool) {
                api_reply_error(req, error);
                return;
        }
        pid = json_object_get_int_member(pool, "id");
        entitled = entitled_pools(req->store, req->caller.user_id);
        if (!g_hash_table_contains(entitled, &pid)) {
                refuse(req, ATRIUM_ERROR_FORBIDDEN, str(pool, "name"),
                       "you are not entitled to this pool");
                return;
        }
        if (json_object_get_boolean_member(pool, "maintenance") ||
            json_object_get_boolean_member(pool, "deleting") ||
            (desktop && json_object_get_boolean_member(desktop, "maintenance"))) {
                refuse(req, ATRIUM_ERROR_CONFLICT, str(pool, "name"),
                       "in maintenance: no new connections for now");
                return;
        }
        if (!g_str_equal(proto, "spice") && !g_str_equal(proto, "vnc")) {
                refuse(req, ATRIUM_ERROR_INVALID, str(pool, "name"),
                       "protocol must be spice or vnc");
                return;
        }
        g_mutex_lock(&assign_lock);
        if (!desktop)
                desktop = pick(req, pool, &error);
        session = desktop ? assign(req, desktop, proto, &error) : NULL;
        g_mutex_unlock(&assign_lock);
        if (!session) {
                refuse(req, error->code, str(pool, "name"), error->message);
                return;
        }
        pools_kick(req->mgr->pools);
        connect_to(req, desktop, session, proto);
}
