/* Sessions ending, their timeouts and timing: see sessions.h. */
#define G_LOG_DOMAIN "sessions"

#include "manager/sessions.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/agentlink.h"
#include "manager/hostcmd.h"
#include "manager/api.h"
#include "manager/tunnels.h"
#include "proto/agentproto.h"

#include <string.h>

#define LOGOFF_TIMEOUT_S 15
#define SHUTDOWN_TIMEOUT_S 60

static const Actor system_actor = {"system", 0, ""};

typedef struct {
        Manager *mgr;
        Store *store;
        gint64 session_id, desktop_id, host_id;
        char *domain;
        char *desktop_name;
} Ending;

static void ending_free(Ending *e)
{
        g_free(e->domain);
        g_free(e->desktop_name);
        g_free(e);
}

/* The last step: the row goes; the reconciler resets a stateless desktop. */
static void finish(Ending *e)
{
        g_autoptr(GError) error = NULL;

        if (!store_delete_id(e->store, resource_by_kind("session"), e->session_id, &system_actor,
                             &error) &&
            !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND))
                g_warning("session %" G_GINT64_FORMAT " on %s: cannot remove it: %s", e->session_id,
                          e->desktop_name, error->message);
        manager_kick(e->mgr);
        ending_free(e);
}

static void shut_down(JsonObject *result, const GError *error, gpointer data)
{
        Ending *e = data;

        if (error)
                g_message("session end on %s: shutdown: %s", e->desktop_name, error->message);
        finish(e);
}

static void logged_off(JsonObject *result, const GError *error, gpointer data)
{
        Ending *e = data;
        g_autoptr(GError) err = NULL;

        if (error) /* nobody logged in, no guest tools: the shutdown still ends it */
                g_debug("session end on %s: logoff: %s", e->desktop_name, error->message);
        if (!hostcmd_send(
                    &(HostCall){e->mgr->agents, e->host_id, SHUTDOWN_TIMEOUT_S + 15, shut_down, e},
                    hostcmd_shutdown(e->domain, SHUTDOWN_TIMEOUT_S, TRUE), &err))
                finish(e);
}

gboolean sessions_end(Manager *mgr, Store *st, JsonObject *session, const char *reason,
                      const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL, desktop = NULL;
        g_autoptr(GError) err = NULL;
        Ending *e;

        if (row_session_state(session) == SESSION_ENDING)
                return TRUE;
        row_set_session_state(patch, SESSION_ENDING);
        json_object_set_string_member(patch, "end_reason", reason);
        json_object_set_int_member(patch, "state_since", row_now());
        upd = store_update_id(st, resource_by_kind("session"), row_int(session, "id"), patch, NULL,
                              error);
        if (!upd)
                return FALSE;
        desktop = row_get(st, "desktop", row_ref(session, "desktop_id"), NULL);
        store_event_add(st, actor, "session_end", "session", row_int(session, "id"),
                        desktop ? row_str(desktop, "name") : "", reason, NULL);
        tunnels_close(row_ref(session, "desktop_id"));
        e = g_new0(Ending, 1);
        e->mgr = mgr;
        e->store = st;
        e->session_id = row_int(session, "id");
        e->desktop_id = row_ref(session, "desktop_id");
        e->desktop_name = g_strdup(desktop ? row_str(desktop, "name") : "?");
        e->host_id = desktop ? row_ref(desktop, "host_id") : 0;
        e->domain = agent_domain_name(mgr->installation, "desktop", e->desktop_id);
        if (!desktop || row_desktop_state(desktop) != DESKTOP_RUNNING || !e->host_id) {
                finish(e);
                return TRUE;
        }
        if (!hostcmd_send(&(HostCall){mgr->agents, e->host_id, LOGOFF_TIMEOUT_S, logged_off, e},
                          hostcmd_guest_request(e->domain, GUEST_OP_LOGOFF, NULL), &err))
                finish(e);
        return TRUE;
}

static GHashTable *index_rows(JsonArray *rows)
{
        GHashTable *t = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);

        for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                JsonObject *o = json_array_get_object_element(rows, i);
                g_hash_table_insert(t, g_memdup2(&(gint64){row_int(o, "id")}, sizeof(gint64)), o);
        }
        return t;
}

static JsonObject *find(GHashTable *by_id, gint64 id)
{
        return g_hash_table_lookup(by_id, &id);
}

/* Why session s should end now, or NULL. */
static char *timed_out(Manager *mgr, JsonObject *s, JsonObject *pool, gint64 now)
{
        gint64 idle_limit = row_int(pool, "idle_timeout");
        gint64 grace = row_int(pool, "disconnect_grace");
        gint64 longest = row_int(pool, "max_session");
        gint64 since = row_int(s, "state_since");
        gint64 started = row_int(s, "started_at");
        gint64 idle;

        if (longest > 0 && started > 0 && now - started >= longest)
                return g_strdup_printf(
                        "the session reached the pool's max_session (%" G_GINT64_FORMAT " s)",
                        longest);
        if (grace > 0 && since > 0 && row_session_state(s) == SESSION_DISCONNECTED &&
            now - since >= grace)
                return g_strdup_printf("disconnected for %" G_GINT64_FORMAT
                                       " s (the pool's disconnect_grace)",
                                       now - since);
        if (idle_limit > 0 &&
            (idle = agentlink_desktop_idle(mgr->agents, row_ref(s, "desktop_id"))) >= idle_limit &&
            now - started >= idle_limit)
                return g_strdup_printf("idle for %" G_GINT64_FORMAT
                                       " s (the pool's idle_timeout: no input in the desktop)",
                                       idle);
        return NULL;
}

void sessions_timeouts(Manager *mgr, Store *st, JsonArray *pools, JsonArray *desktops,
                       JsonArray *sessions)
{
        g_autoptr(GHashTable) pool_by_id = index_rows(pools);
        g_autoptr(GHashTable) desktop_by_id = index_rows(desktops);
        gint64 now = row_now();

        for (guint i = 0; sessions && i < json_array_get_length(sessions); i++) {
                JsonObject *s = json_array_get_object_element(sessions, i);
                JsonObject *d = find(desktop_by_id, row_ref(s, "desktop_id"));
                JsonObject *pool = d ? find(pool_by_id, row_ref(d, "pool_id")) : NULL;
                g_autofree char *why = NULL;
                g_autoptr(GError) error = NULL;

                if (row_session_state(s) == SESSION_ENDING) {
                        if (now - row_int(s, "state_since") < SESSIONS_ENDING_MAX)
                                continue;
                        store_delete_id(st, resource_by_kind("session"), row_id(s), &system_actor,
                                        NULL);
                        manager_kick(mgr);
                        continue;
                }
                if (!pool || !(why = timed_out(mgr, s, pool, now)))
                        continue;
                if (!sessions_end(mgr, st, s, why, &system_actor, &error))
                        g_warning("cannot end session %" G_GINT64_FORMAT ": %s", row_int(s, "id"),
                                  error->message);
        }
}

void sessions_set_timing(Store *st, gint64 session_id, const char *timing, const StoreEvent *ev)
{
        /* the session gone meanwhile: the event is recorded all the same */
        if (!store_session_timing(st, session_id, timing, ev, NULL))
                store_event_add(st, ev->actor, ev->action, ev->kind, ev->id, ev->name, ev->detail,
                                NULL);
}

void sessions_console_opened(Store *st, gint64 desktop_id, const Actor *actor)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) rows = NULL;

        g_hash_table_insert(f, (gpointer) "desktop", util_id_text(desktop_id));
        rows = store_list_all(st, resource_by_kind("session"), f, NULL);
        for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                JsonObject *s = json_array_get_object_element(rows, i);
                g_autoptr(JsonParser) p = json_parser_new();
                g_autoptr(JsonNode) root = NULL;
                g_autofree char *text = NULL;
                JsonObject *t;
                gint64 at;

                if (!row_str(s, "timing")[0] ||
                    !json_parser_load_from_data(p, row_str(s, "timing"), -1, NULL) ||
                    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
                        continue;
                root = json_node_copy(json_parser_get_root(p));
                t = json_node_get_object(root);
                at = row_int(t, "requested_at");
                if (json_object_has_member(t, "opened") || at <= 0)
                        continue;
                json_object_set_int_member(t, "opened", g_get_real_time() / 1000 - at);
                text = json_node_to_text(root, FALSE);
                sessions_set_timing(st, row_int(s, "id"), text,
                                    &(StoreEvent){actor, "console_opened", "session",
                                                  row_int(s, "id"), "", text});
        }
}

void sessions_follow(Store *st, gint64 desktop_id, const Actor *actor, gboolean connected)
{
        const Resource *sessions = resource_by_kind("session");
        g_autoptr(GHashTable) filters =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) rows = NULL;
        SessionState want = connected ? SESSION_CONNECTED : SESSION_DISCONNECTED;

        g_hash_table_insert(filters, (gpointer) "desktop", util_id_text(desktop_id));
        rows = store_list_all(st, sessions, filters, NULL);
        for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                JsonObject *o = json_array_get_object_element(rows, i);
                g_autoptr(JsonObject) patch = NULL, upd = NULL;
                if (row_session_state(o) == want || row_session_state(o) == SESSION_ENDING)
                        continue;
                patch = json_object_new();
                row_set_session_state(patch, want);
                json_object_set_int_member(patch, "state_since",
                                           g_get_real_time() / G_USEC_PER_SEC);
                upd = store_update_id(st, sessions, row_int(o, "id"), patch, actor, NULL);
        }
        if (connected)
                sessions_console_opened(st, desktop_id, actor);
}

/* ---- routes ------------------------------------------------------------------------------- */

/* The session in the path: a user may only name their own. */
static JsonObject *session_of(ApiRequest *req, GError **error)
{
        return store_get(req->store, resource_by_kind("session"), req->params[0],
                         req->caller.role < ROLE_HELPDESK ? req->caller.user_id : 0, error);
}

/* POST /sessions/{id}/end: logoff, shutdown, then (stateless) reset. */
void api_session_end(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) s = session_of(req, &error);
        g_autofree char *why = NULL;

        if (!s) {
                api_reply_error(req, error);
                return;
        }
        why = req->caller.user_id == row_ref(s, "user_id")
                      ? g_strdup_printf("ended by its user %s", req->caller.user_name)
                      : g_strdup_printf("ended by %s", req->caller.user_name);
        if (!sessions_end(req->mgr, req->store, s, why, &req->actor, &error)) {
                api_reply_error(req, error);
                return;
        }
        g_clear_pointer(&s, json_object_unref);
        s = session_of(req, NULL);
        if (!s) { /* gone already: its desktop was not running */
                api_reply_empty(req, 204);
                return;
        }
        api_reply_object(req, 202, g_steal_pointer(&s));
}

typedef struct {
        ApiRequest *req;
        JsonObject *session;
} Disconnect;

static void dropped(JsonObject *result, const GError *error, gpointer data)
{
        Disconnect *d = data;
        ApiRequest *req = d->req;
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;

        if (error) {
                api_reply_error(req, error);
        } else {
                row_set_session_state(patch, SESSION_DISCONNECTED);
                json_object_set_int_member(patch, "state_since", row_now());
                upd = store_update_id(req->store, resource_by_kind("session"),
                                      row_int(d->session, "id"), patch, NULL, NULL);
                store_event_add(req->store, &req->actor, "session_disconnect", "session",
                                row_int(d->session, "id"), "",
                                "its console clients were disconnected", NULL);
                api_reply_object(req, 200,
                                 upd ? g_steal_pointer(&upd) : json_object_ref(d->session));
        }
        json_object_unref(d->session);
        g_free(d);
}

/* POST /sessions/{id}/disconnect: the console clients are dropped (a new one-time password,
 * SPICE clients disconnected); the session stays, to be taken over by a reconnect. */
void api_session_disconnect(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) s = session_of(req, &error);
        g_autoptr(JsonObject) desktop = NULL;
        g_autofree char *dom = NULL;
        Disconnect *d;

        if (!s) {
                api_reply_error(req, error);
                return;
        }
        desktop = row_get(req->store, "desktop", row_ref(s, "desktop_id"), NULL);
        if (!desktop || row_desktop_state(desktop) != DESKTOP_RUNNING ||
            !row_ref(desktop, "host_id")) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "the session's desktop is not running: nothing to disconnect");
                api_reply_error(req, error);
                return;
        }
        dom = agent_domain_name(req->mgr->installation, "desktop", row_id(desktop));
        tunnels_close(row_int(desktop, "id"));
        d = g_new0(Disconnect, 1);
        d->req = req;
        d->session = json_object_ref(s);
        api_pause(req);
        if (!hostcmd_send(
                    &(HostCall){req->mgr->agents, row_ref(desktop, "host_id"),
                                MCFG_INT(req->mgr, "agent_command_timeout"), dropped, d},
                    hostcmd_console_drop(dom, console_protocol_from_string(row_str(s, "protocol"))),
                    &error)) {
                json_object_unref(d->session);
                g_free(d);
                api_reply_error(req, error);
        }
}

void sessions_on_link(Agents *ag, const LinkEvent *ev, gpointer data)
{
        if (ev->type == LINK_CONSOLE)
                sessions_follow(ev->store, ev->id, ev->actor, ev->connected);
}
