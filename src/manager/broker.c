/* The broker, first part: what a user may use (GET /me/desktops) and connecting to a pool or
 * a desktop (POST /pools/{id}/connect, /desktops/{id}/connect): entitlement and maintenance
 * checks, the choice and assignment of a desktop (under one lock, so two connects never get
 * the same one), the session, a one-time console password set by the desktop's host, and the
 * connection data: a signed console ticket (proto/ticket.h), a remote-viewer .vv body whose
 * proxy is the gateway, and the browser console URL.
 * A stopped desktop is started and its atrium-guest 'ready' awaited without blocking
 * (manager.connect_ready_timeout). An exhausted pool below its max_size grows by one desktop
 * per waiting connect, which then takes the first desktop that becomes free.
 * Terminals: a connect may name a registered terminal (and its key): pools entitled to the
 * terminal are then open to the caller too; a kiosk pool takes connects from its terminals with
 * no user at all (POST /kiosk/connect). Timing: each connect's steps go into its session. */
#define G_LOG_DOMAIN "broker"

#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/agentlink.h"
#include "manager/hostcmd.h"
#include "manager/rows.h"
#include "manager/api.h"
#include "manager/broker.h"
#include "manager/placement.h"
#include "manager/scheduler.h"
#include "manager/sessions.h"
#include "manager/terminals.h"
#include "proto/agentproto.h"
#include "proto/ticket.h"

#include <string.h>

/* Picking a desktop by scanning its pool and assigning it: one step at a time. */
static GMutex assign_lock;
/* One caller's connects one at a time, so that two at once make one session; callers of
 * different locks claim free desktops beside each other (a shared lock only makes them wait). */
static GMutex caller_locks[64];

static JsonArray *rows_where(Store *st, const char *kind, const char *field, gint64 id)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

        g_hash_table_insert(f, (gpointer)field, util_id_text(id));
        return store_list_all(st, resource_by_kind(kind), f, NULL);
}

/* Who connects: a user, possibly from a terminal; or (kiosk) a terminal alone. */
typedef struct {
        gint64 user_id; /* 0: a kiosk connect */
        const char *user_name;
        gint64 terminal_id; /* 0: none named */
        const char *terminal_name;
} Who;

static GMutex *caller_lock(const Who *who)
{
        guint64 k = who->user_id ? (guint64)who->user_id * 2 : (guint64)who->terminal_id * 2 + 1;

        return &caller_locks[k % G_N_ELEMENTS(caller_locks)];
}

/* A Who that outlives the request: it owns copies of the names (who_clear frees them). */
typedef struct {
        Who who;
        char *user_name, *terminal_name;
} KeptWho;

static void who_keep(KeptWho *k, const Who *who)
{
        k->user_name = g_strdup(who->user_name);
        k->terminal_name = g_strdup(who->terminal_name);
        k->who = *who;
        k->who.user_name = k->user_name;
        k->who.terminal_name = k->terminal_name;
}

static void who_clear(KeptWho *k)
{
        g_clear_pointer(&k->user_name, g_free);
        g_clear_pointer(&k->terminal_name, g_free);
}

/* The ids of the pools a user is entitled to, directly or through a group, and those the
 * terminal (when given) is entitled to or fixed to: one indexed read of one's own
 * entitlements, never the whole table. */
static GHashTable *entitled_pools(Store *st, gint64 user_id, JsonObject *terminal)
{
        GHashTable *pools = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(GArray) ids =
                store_entitled_pools(st, user_id, terminal ? row_int(terminal, "id") : 0, NULL);

        for (guint i = 0; ids && i < ids->len; i++)
                g_hash_table_add(pools, g_memdup2(&g_array_index(ids, gint64, i), sizeof(gint64)));
        if (terminal && row_ref(terminal, "pool_id"))
                g_hash_table_add(
                        pools, g_memdup2(&(gint64){row_ref(terminal, "pool_id")}, sizeof(gint64)));
        return pools;
}

static gint cmp_id(gconstpointer a, gconstpointer b)
{
        gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

        return x < y ? -1 : x > y;
}

void api_me_desktops(ApiRequest *req)
{
        Store *st = req->store;
        g_autoptr(GHashTable) entitled = entitled_pools(st, req->caller.user_id, NULL);
        g_autoptr(GList) ids = g_list_sort(g_hash_table_get_keys(entitled), cmp_id);
        g_autoptr(JsonArray) mine = rows_where(st, "desktop", "user", req->caller.user_id);
        JsonArray *items = json_array_new();
        JsonObject *reply = json_object_new();

        for (GList *l = ids; l; l = l->next) {
                gint64 pid = *(gint64 *)l->data;
                g_autoptr(JsonObject) p = store_get_id(st, resource_by_kind("pool"), pid, 0, NULL);
                JsonObject *o;
                JsonArray *protos, *desks;
                if (!p || row_bool(p, "deleting"))
                        continue;
                o = json_object_new();
                json_object_set_int_member(o, "id", pid);
                json_object_set_string_member(o, "pool", row_str(p, "name"));
                json_object_set_string_member(o, "description", row_str(p, "description"));
                json_object_set_string_member(o, "mode", row_str(p, "mode"));
                json_object_set_boolean_member(o, "maintenance", row_bool(p, "maintenance"));
                json_object_set_boolean_member(o, "user_actions", row_bool(p, "user_actions"));
                json_object_set_string_member(o, "clipboard", row_str(p, "clipboard"));
                protos = json_array_new();
                for (int k = 0; k < PROTOCOL_LAST; k++)
                        json_array_add_string_element(protos, console_protocol_to_string(k));
                json_object_set_array_member(o, "protocols", protos);
                desks = json_array_new();
                for (guint k = 0; mine && k < json_array_get_length(mine); k++) {
                        JsonObject *d = json_array_get_object_element(mine, k);
                        JsonObject *dd;
                        if (row_ref(d, "pool_id") != pid)
                                continue;
                        dd = json_object_new();
                        json_object_set_int_member(dd, "id", row_int(d, "id"));
                        json_object_set_string_member(dd, "name", row_str(d, "name"));
                        json_object_set_string_member(dd, "state", row_str(d, "state"));
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
        KeptWho kept; /* who connects */
        gint64 desktop_id, session_id, host_id, pool_id;
        char *desktop_name, *protocol, *host_address, *password;
        gint64 t0;                     /* monotonic µs at the request */
        gint64 requested_at;           /* Unix ms at the request */
        gint64 placed, running, ready; /* ms after the request; -1: not yet */
} Connect;

static void connect_free(Connect *c)
{
        who_clear(&c->kept);
        g_free(c->desktop_name);
        g_free(c->protocol);
        g_free(c->host_address);
        g_free(c->password);
        g_free(c);
}

static gint64 since_ms(Connect *c)
{
        return (g_get_monotonic_time() - c->t0) / 1000;
}

static void refuse(ApiRequest *req, int code, const char *what, const char *detail)
{
        g_autoptr(GError) e = g_error_new(ATRIUM_ERROR, code, "%s", detail);

        store_event_add(req->store, &req->actor, "connect_refused", "pool", 0, what, detail, NULL);
        api_reply_error(req, e);
}

static gboolean usable_spare(JsonObject *d, GHashTable *in_session)
{
        gint64 id = row_int(d, "id");

        return row_ref(d, "user_id") == 0 && row_ref(d, "terminal_id") == 0 &&
               !row_bool(d, "dirty") && !row_bool(d, "maintenance") &&
               !g_hash_table_contains(in_session, &id);
}

static gboolean is_mine(JsonObject *d, const Who *who)
{
        return who->user_id ? row_ref(d, "user_id") == who->user_id
                            : row_ref(d, "terminal_id") == who->terminal_id;
}

/* A host the scheduler would start desktop d on now: up, linked, not in maintenance, enough
 * memory under manager.overcommit_percent. */
static gboolean host_fit(Manager *mgr, JsonObject *host, gint64 need_mb)
{
        SchedHost h;
        SchedRequest r;

        placement_sched_host(mgr, host, NULL, &h);
        placement_sched_request(mgr, need_mb, NULL, &r);
        return scheduler_place(&h, 1, &r, NULL) == 0;
}

/* A stopped desktop whose host cannot start it now (down, not linked, in maintenance, full):
 * the scheduler picks another host reaching its volume (shared storage: the overlay stays
 * where it is; the new host defines the domain when it starts it). Its row names the new host;
 * the old host's stale definition is ignored (agents.c) and replaced at the next provision.
 * The new host's row, or NULL with the scheduler's reasons. */
static JsonObject *place_elsewhere(ApiRequest *req, JsonObject *desktop, GError **error)
{
        Store *st = req->store;
        g_autoptr(JsonObject) pool =
                store_get(st, resource_by_kind("pool"), row_str(desktop, "pool"), 0, error);
        g_autoptr(JsonObject) vol = NULL, version = NULL, upd = NULL, patch = NULL;
        g_autoptr(JsonArray) hosts = NULL;
        g_autofree SchedHost *sh = NULL;
        g_autofree char *detail = NULL;
        SchedRequest r;
        guint n;
        gint at;
        JsonObject *chosen;

        if (!pool ||
            !(vol = store_get(st, resource_by_kind("volume"), row_str(desktop, "volume"), 0,
                              error)) ||
            !(version = store_get(st, resource_by_kind("template-version"),
                                  row_str(desktop, "template_version"), 0, error)) ||
            !(hosts = store_list_all(st, resource_by_kind("host"), NULL, error)))
                return NULL;
        n = json_array_get_length(hosts);
        sh = g_new0(SchedHost, MAX(n, 1));
        for (guint i = 0; i < n; i++)
                placement_sched_host(req->mgr, json_array_get_object_element(hosts, i),
                                     row_str(vol, "path"), &sh[i]);
        placement_sched_request(req->mgr, row_int(version, "ram_mb"), row_str(pool, "hosts"), &r);
        at = scheduler_place(sh, n, &r, error);
        if (at < 0) {
                g_prefix_error(error, "desktop '%s': ", row_str(desktop, "name"));
                return NULL;
        }
        chosen = json_array_get_object_element(hosts, (guint)at);
        patch = json_object_new();
        json_object_set_int_member(patch, "host", row_int(chosen, "id"));
        upd = store_update_id(st, resource_by_kind("desktop"), row_id(desktop), patch, NULL, error);
        if (!upd)
                return NULL;
        detail = g_strdup_printf("placed on %s (its host %s cannot start it now)",
                                 row_str(chosen, "name"), row_str(desktop, "host"));
        store_event_add(st, &req->actor, "desktop_placed", "desktop", row_int(desktop, "id"),
                        row_str(desktop, "name"), detail, NULL);
        return json_object_ref(chosen);
}

/* The caller's desktop in the pool: theirs already (a reconnect takes it over), else a
 * started spare, else a stopped clean one on a host the scheduler accepts. Assigned before the
 * lock is released. NULL with an error when none is left. */
static JsonObject *pick_scan(ApiRequest *req, const Who *who, JsonObject *pool,
                             gboolean started_only, GError **error)
{
        Store *st = req->store;
        g_autoptr(JsonArray) desks = rows_where(st, "desktop", "pool", row_int(pool, "id"));
        g_autoptr(GHashTable) in_session =
                g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(GArray) busy = store_pool_in_session(st, row_int(pool, "id"), NULL);
        g_autoptr(JsonArray) hosts = NULL;
        g_autoptr(GHashTable) fit =
                g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        JsonObject *choice = NULL;
        static const DesktopState order[] = {DESKTOP_RUNNING, DESKTOP_STOPPED, DESKTOP_STOPPED};

        for (guint i = 0; busy && i < busy->len; i++)
                g_hash_table_add(in_session,
                                 g_memdup2(&g_array_index(busy, gint64, i), sizeof(gint64)));
        for (guint i = 0; desks && i < json_array_get_length(desks) && !choice; i++) {
                JsonObject *d = json_array_get_object_element(desks, i);
                if (!is_mine(d, who))
                        continue;
                if (row_desktop_state(d) == DESKTOP_RUNNING ||
                    row_desktop_state(d) == DESKTOP_STOPPED) {
                        choice = d;
                } else if (row_desktop_state(d) == DESKTOP_RECOVERING) {
                        /* theirs, on its way back: not another one meanwhile */
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "your desktop '%s' is being restarted on another host (its "
                                    "host went down): try again in a few seconds",
                                    row_str(d, "name"));
                        return NULL;
                } else if (row_desktop_state(d) == DESKTOP_UNAVAILABLE) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "your desktop '%s' is unavailable: %s", row_str(d, "name"),
                                    row_str(d, "failure"));
                        return NULL;
                }
        }
        /* started first; then stopped on a host that can start it; then stopped anywhere
         * (connect_to places it on another host). The hosts are read only when no started
         * spare is left: most connects never need them. */
        for (gsize o = 0; o < (started_only ? 1 : G_N_ELEMENTS(order)) && !choice; o++) {
                if (o == 1) {
                        hosts = store_list_all(st, resource_by_kind("host"), NULL, NULL);
                        for (guint i = 0; hosts && i < json_array_get_length(hosts); i++) {
                                JsonObject *h = json_array_get_object_element(hosts, i);
                                /* up, linked, not in maintenance, memory left under the
                                 * overcommit ratio; the desktop's own memory is checked when
                                 * it starts */
                                if (host_fit(req->mgr, h, 1))
                                        g_hash_table_add(fit, g_memdup2(&(gint64){row_int(h, "id")},
                                                                        sizeof(gint64)));
                        }
                }
                for (guint i = 0; desks && i < json_array_get_length(desks) && !choice; i++) {
                        JsonObject *d = json_array_get_object_element(desks, i);
                        gint64 hid = row_ref(d, "host_id");
                        if (row_desktop_state(d) == order[o] && usable_spare(d, in_session) &&
                            (o == 0 || g_hash_table_contains(fit, &hid) || o == 2))
                                choice = d;
                }
        }
        if (!choice) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "pool '%s' exhausted: every desktop is in use (size %" G_GINT64_FORMAT
                            ", maximum %" G_GINT64_FORMAT ")",
                            row_str(pool, "name"), row_int(pool, "size"),
                            row_int(pool, "max_size"));
                return NULL;
        }
        return json_object_ref(choice);
}

/* The caller's own running or stopped desktop in the pool, or NULL; *scan TRUE when they have
 * one there in another state (pick_scan says why it cannot be used now). */
static JsonObject *own_desktop(ApiRequest *req, const Who *who, JsonObject *pool, gboolean *scan)
{
        gint64 pid = row_int(pool, "id");
        g_autoptr(JsonArray) mine =
                rows_where(req->store, "desktop", who->user_id ? "user" : "terminal",
                           who->user_id ? who->user_id : who->terminal_id);

        for (guint i = 0; mine && i < json_array_get_length(mine); i++) {
                JsonObject *d = json_array_get_object_element(mine, i);
                if (row_ref(d, "pool_id") != pid)
                        continue;
                if (row_desktop_state(d) == DESKTOP_RUNNING ||
                    row_desktop_state(d) == DESKTOP_STOPPED)
                        return json_object_ref(d);
                *scan = TRUE;
        }
        return NULL;
}

/* A new session's values (sv) and its desktop's change (patch) for this caller. */
static void session_values(const Who *who, const char *proto, JsonObject *sv, JsonObject *patch)
{
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;

        if (who->user_id)
                json_object_set_int_member(sv, "user", who->user_id);
        if (who->terminal_id)
                json_object_set_int_member(sv, "terminal", who->terminal_id);
        json_object_set_int_member(sv, "desktop", 0); /* set when claimed (keeps its place) */
        row_set_session_state(sv, SESSION_DISCONNECTED);
        json_object_set_string_member(sv, "protocol", proto);
        json_object_set_int_member(sv, "started_at", now);
        json_object_set_int_member(sv, "state_since", now);
        if (who->user_id)
                json_object_set_int_member(patch, "user", who->user_id);
        else
                json_object_set_int_member(patch, "terminal", who->terminal_id);
        json_object_set_boolean_member(patch, "dirty", TRUE);
}

/* The session and the desktop's assignment, in one transaction (the reconciler never sees an
 * assigned, dirty desktop without its session): DESKTOP, checked under its row lock to be still
 * free or the caller's (guarded; else written as it is: a terminal's fixed desktop), or (NULL)
 * the pool's first free started desktop that no other connect is claiming. Returns the session
 * row, the desktop's row as it was before in *chosen; NULL without an error when no free
 * desktop was found. */
static JsonObject *claim(ApiRequest *req, const Who *who, gint64 pool_id, JsonObject *desktop,
                         gboolean guarded, const char *proto, JsonObject **chosen, GError **error)
{
        g_autoptr(JsonObject) sv = json_object_new();
        g_autoptr(JsonObject) patch = json_object_new();
        g_autofree char *did = desktop ? util_id_text(row_int(desktop, "id")) : NULL;
        g_autoptr(JsonArray) rows = NULL;
        StoreClaim c = {.pool_id = pool_id,
                        .desktop_id = desktop ? row_int(desktop, "id") : 0,
                        .user_id = who->user_id,
                        .terminal_id = who->terminal_id,
                        .session = sv,
                        .patch = patch};
        StoreChange changes[2] = {
                {resource_by_kind("session"), NULL, sv},
                {resource_by_kind("desktop"), did, patch},
        };
        GError *e = NULL;

        session_values(who, proto, sv, patch);
        if (desktop && !guarded) {
                json_object_set_int_member(sv, "desktop", c.desktop_id);
                rows = store_change_batch(req->store, changes, 2, &req->actor, &e);
        } else {
                rows = store_desktop_claim(req->store, &c, &req->actor, &e);
        }
        if (!rows && !e && desktop)
                e = g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                "desktop '%s' was just given to another connect: try again",
                                row_str(desktop, "name"));
        if (!rows) {
                if (e)
                        g_propagate_error(error, e);
                return NULL;
        }
        /* the desktop as it was before (connect_undo restores it) */
        *chosen = desktop && !guarded ? json_object_ref(desktop)
                                      : json_object_ref(json_array_get_object_element(rows, 1));
        return json_object_ref(json_array_get_object_element(rows, 0));
}

/* A session on a desktop chosen by scanning (or named): a reconnect takes over the caller's
 * session there. */
static JsonObject *assign(ApiRequest *req, const Who *who, JsonObject *desktop, gboolean guarded,
                          const char *proto, JsonObject **chosen, GError **error)
{
        g_autoptr(JsonArray) open =
                rows_where(req->store, "session", "desktop", row_int(desktop, "id"));

        for (guint i = 0; open && i < json_array_get_length(open); i++) {
                JsonObject *o = json_array_get_object_element(open, i);
                if (is_mine(o, who) && row_session_state(o) != SESSION_ENDING) {
                        *chosen = json_object_ref(desktop);
                        return json_object_ref(o);
                }
        }
        if (open && json_array_get_length(open) > 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "desktop '%s' is ending its last session: try again in a moment",
                            row_str(desktop, "name"));
                return NULL;
        }
        return claim(req, who, row_int(desktop, "pool_id"), desktop, guarded, proto, chosen, error);
}

/* The caller's desktop in the pool (in *chosen; DESKTOP when one is named) and a session on it:
 * their own desktop there, else a free started one, claimed beside other callers' claims
 * (the usual case: one indexed query), else one found by scanning the pool (pick_scan, under
 * assign_lock; why none was found in *pick_error). NULL with *error when assigning failed. */
static JsonObject *take(ApiRequest *req, const Who *who, JsonObject *pool, JsonObject *desktop,
                        gboolean started_only, const char *proto, JsonObject **chosen,
                        GError **pick_error, GError **error)
{
        GMutex *lock = caller_lock(who);
        g_autoptr(JsonObject) d = desktop ? json_object_ref(desktop) : NULL;
        g_autoptr(GError) e = NULL;
        gboolean scan = FALSE;
        JsonObject *session = NULL;

        g_mutex_lock(lock);
        if (!d)
                d = own_desktop(req, who, pool, &scan);
        if (!d && !scan)
                session = claim(req, who, row_int(pool, "id"), NULL, TRUE, proto, chosen, &e);
        if (!session && !e) {
                g_mutex_lock(&assign_lock);
                if (!d)
                        d = pick_scan(req, who, pool, started_only, pick_error);
                session = d ? assign(req, who, d, !desktop, proto, chosen, &e) : NULL;
                g_mutex_unlock(&assign_lock);
        }
        g_mutex_unlock(lock);
        if (e)
                g_propagate_error(error, g_steal_pointer(&e));
        return session;
}

static char *timing_text(Connect *c, gint64 ticket_ms)
{
        g_autoptr(JsonObject) t = json_object_new();
        g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);

        json_object_set_int_member(t, "requested_at", c->requested_at);
        json_object_set_int_member(t, "placed", c->placed);
        json_object_set_int_member(t, "running", c->running >= 0 ? c->running : c->placed);
        json_object_set_int_member(t, "ready", c->ready >= 0 ? c->ready : c->placed);
        json_object_set_int_member(t, "ticket", ticket_ms);
        json_node_set_object(n, t);
        return json_node_to_text(n, FALSE);
}

/* The .vv file's proxy: the gateway, with the ticket as the password spice-gtk sends in each
 * CONNECT's Proxy-Authorization. */
static char *vv_proxy(const char *gateway, const char *ticket_text)
{
        const char *rest = strstr(gateway, "://");

        if (!rest)
                return g_strdup(gateway);
        return g_strdup_printf("%.*s://ticket:%s@%s", (int)(rest - gateway), gateway, ticket_text,
                               rest + 3);
}

const char *broker_gateway(Manager *mgr)
{
        const char *gateway = MCFG_STR(mgr, "gateway_url");

        if (gateway[0])
                return gateway;
        return mgr->gateway_url ? mgr->gateway_url : mgr->url;
}

char *broker_ticket(Manager *mgr, const char *host, gint64 port, const char *protocol,
                    gint64 desktop_id, gint64 user_id, gint64 ttl, Ticket *t, GError **error)
{
        memset(t, 0, sizeof(*t));
        g_strlcpy(t->host, host, sizeof(t->host));
        t->port = (guint16)port;
        g_strlcpy(t->proto, protocol, sizeof(t->proto));
        t->desktop = desktop_id;
        t->user = user_id;
        t->exp = g_get_real_time() / G_USEC_PER_SEC + ttl;
        ticket_new_nonce(t);
        return ticket_sign(t, mgr->ticket_sk, error);
}

static void connected(JsonObject *result, const GError *error, gpointer data)
{
        Connect *c = data;
        ApiRequest *req = c->req;
        g_autoptr(GError) err = NULL;
        g_autofree char *ticket_text = NULL, *vv = NULL, *url = NULL, *detail = NULL;
        g_autofree char *proxy = NULL;
        g_autofree char *timing = NULL;
        const char *pw, *gateway;
        gint64 port, ttl = MCFG_INT(req->mgr, "ticket_ttl");
        Ticket t = {0};
        JsonObject *reply;

        if (error) {
                api_reply_error(req, error);
                connect_free(c);
                return;
        }
        port = row_int(result, "port");
        pw = c->password;
        ticket_text = broker_ticket(req->mgr, c->host_address, port, c->protocol, c->desktop_id,
                                    c->kept.who.user_id, ttl, &t, &err);
        if (!ticket_text) {
                api_reply_error(req, err);
                connect_free(c);
                return;
        }
        gateway = broker_gateway(req->mgr);
        url = g_strdup_printf("%s/console?ticket=%s", gateway, ticket_text);
        proxy = vv_proxy(gateway, ticket_text);
        vv = g_strdup_printf("[virt-viewer]\ntype=%s\nhost=%s\nport=%" G_GINT64_FORMAT
                             "\npassword=%s\nproxy=%s\ntitle=%s\ndelete-this-file=1\n"
                             "secure-attention=ctrl+alt+end\n",
                             c->protocol, c->host_address, port, pw, proxy, c->desktop_name);
        reply = json_object_new();
        json_object_set_int_member(reply, "desktop_id", c->desktop_id);
        json_object_set_string_member(reply, "desktop", c->desktop_name);
        json_object_set_int_member(reply, "session", c->session_id);
        json_object_set_string_member(reply, "protocol", c->protocol);
        json_object_set_string_member(reply, "ticket", ticket_text);
        json_object_set_int_member(reply, "expires_at", t.exp);
        json_object_set_string_member(reply, "console_url", url);
        json_object_set_string_member(reply, "vv", vv);
        timing = timing_text(c, since_ms(c));
        detail = g_strdup_printf("desktop %s, ticket issued after %" G_GINT64_FORMAT " ms: %s",
                                 c->desktop_name, since_ms(c), timing);
        sessions_set_timing(req->store, c->session_id, timing,
                            &(StoreEvent){&req->actor, "connect", "desktop", c->desktop_id,
                                          c->desktop_name, detail});
        api_reply_object(req, 200, reply);
        connect_free(c);
}

static void console_password(Connect *c)
{
        ApiRequest *req = c->req;
        g_autoptr(GError) error = NULL;
        g_autofree char *dom = agent_domain_name(req->mgr->installation, "desktop", c->desktop_id);
        HostCall call = {req->mgr->agents, c->host_id, MCFG_INT(req->mgr, "agent_command_timeout"),
                         connected, c};
        HostCmd *cmd = hostcmd_console(dom, console_protocol_from_string(c->protocol),
                                       row_now() + MCFG_INT(req->mgr, "ticket_ttl"), &c->password);

        if (!hostcmd_send(&call, cmd, &error)) {
                connect_free(c);
                api_reply_error(req, error);
        }
}

static void logged_in(JsonObject *result, const GError *error, gpointer data)
{
        Connect *c = data;

        if (error) /* no guest tools, or still booting: the console is offered all the same */
                g_debug("desktop %s: atrium-guest login: %s", c->desktop_name, error->message);
        console_password(c);
}

/* The console step: atrium-guest is told who connects (the desktop's banner shows the user;
 * a kiosk has none), a one-time password is set, then the connection data. */
static void console_step(Connect *c)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *dom = NULL;
        HostCall call = {c->req->mgr->agents, c->host_id, 10, logged_in, c};

        if (!c->kept.who.user_id || !agentlink_guest_alive(c->req->mgr->agents, c->desktop_id)) {
                console_password(c); /* a kiosk has no user; no guest tools: nobody to tell */
                return;
        }
        dom = agent_domain_name(c->req->mgr->installation, "desktop", c->desktop_id);
        if (!hostcmd_send(&call, hostcmd_guest_request(dom, GUEST_OP_LOGIN, c->kept.user_name),
                          &error))
                console_password(c);
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
        c->ready = since_ms(c);
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
        store_delete_id(c->req->store, resource_by_kind("session"), c->session_id, &c->req->actor,
                        NULL);
        manager_kick(c->req->mgr);
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
        row_set_desktop_state(patch, DESKTOP_RUNNING);
        json_object_set_int_member(patch, "state_since", g_get_real_time() / G_USEC_PER_SEC);
        upd = store_update_id(c->req->store, resource_by_kind("desktop"), c->desktop_id, patch,
                              NULL, NULL);
        c->running = since_ms(c);
        w->started = TRUE;
        waiter_maybe_go(w);
        waiter_unref(w);
}

/* A stopped desktop: started on its host (if the scheduler lets it), then 'ready' awaited. */
static void start_step(Connect *c, JsonObject *desktop, JsonObject *host)
{
        ApiRequest *req = c->req;
        g_autoptr(GError) error = NULL;
        JsonObject *args =
                hostcmd_desktop_spec_of(req->store, req->mgr->installation, desktop, &error);
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
        if (!hostcmd_send(&(HostCall){req->mgr->agents, c->host_id,
                                      MCFG_INT(req->mgr, "agent_command_timeout"), started, w},
                          hostcmd_start(args), &error)) {
                w->done = TRUE;
                g_source_destroy(w->timeout);
                waiter_forget(w);
                waiter_unref(w);
                api_reply_error(req, error);
                connect_free(c);
        }
        (void)host;
}

/* A connect that fails before anything was started: the session it made is ended again (a
 * reconnect's session stays) and a desktop it assigned is free again (desktop: the row as it
 * was before the assignment), so the failure leaves nothing assigned. */
static void connect_undo(ApiRequest *req, JsonObject *desktop, JsonObject *session,
                         gint64 requested_at, const GError *error)
{
        if (row_int(session, "started_at") * 1000 >= requested_at - 1000) {
                store_delete_id(req->store, resource_by_kind("session"), row_id(session),
                                &req->actor, NULL);
                if (!row_ref(desktop, "user_id") && !row_ref(desktop, "terminal_id")) {
                        g_autoptr(JsonObject) patch = json_object_new();
                        g_autoptr(JsonObject) upd = NULL;
                        json_object_set_null_member(patch, "user");
                        json_object_set_null_member(patch, "terminal");
                        json_object_set_boolean_member(patch, "dirty", row_bool(desktop, "dirty"));
                        upd = store_update_id(req->store, resource_by_kind("desktop"),
                                              row_id(desktop), patch, NULL, NULL);
                }
                manager_kick(req->mgr);
        }
        api_reply_error(req, error);
}

static void connect_to(ApiRequest *req, const Who *who, JsonObject *desktop, JsonObject *session,
                       const char *proto, gint64 t0, gint64 requested_at)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) host = NULL;
        gboolean running = row_desktop_state(desktop) == DESKTOP_RUNNING;
        Connect *c;

        if (row_ref(desktop, "migrating_to_id")) {
                /* its console moves with it at the switch-over: a ticket after that */
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "desktop '%s' is being moved to another host (live migration): try "
                            "again in a few seconds",
                            row_str(desktop, "name"));
                connect_undo(req, desktop, session, requested_at, error);
                return;
        }
        if (!running && row_desktop_state(desktop) != DESKTOP_STOPPED) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            row_desktop_state(desktop) == DESKTOP_RECOVERING
                                    ? "desktop '%s' is being restarted on another host (its host "
                                      "went down): try again in a few seconds"
                            : row_desktop_state(desktop) == DESKTOP_UNAVAILABLE
                                    ? "desktop '%s' is unavailable: its host is down and no "
                                      "other host reaches its disk"
                                    : "desktop '%s' is %s: try again in a moment",
                            row_str(desktop, "name"), row_str(desktop, "state"));
                connect_undo(req, desktop, session, requested_at, error);
                return;
        }
        host = store_get(req->store, resource_by_kind("host"), row_str(desktop, "host"), 0, NULL);
        if (!running && (!host || !host_fit(req->mgr, host, 1))) {
                g_clear_pointer(&host, json_object_unref);
                host = place_elsewhere(req, desktop, &error);
                if (!host) {
                        store_event_add(req->store, &req->actor, "connect_failed", "desktop",
                                        row_int(desktop, "id"), row_str(desktop, "name"),
                                        error->message, NULL);
                        connect_undo(req, desktop, session, requested_at, error);
                        return;
                }
        }
        if (!host) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "desktop '%s' is on no host", row_str(desktop, "name"));
                connect_undo(req, desktop, session, requested_at, error);
                return;
        }
        if (!agentlink_linked(req->mgr->agents, row_int(host, "id"))) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the host of desktop '%s' (%s) is not connected",
                            row_str(desktop, "name"), row_str(host, "name"));
                connect_undo(req, desktop, session, requested_at, error);
                return;
        }
        c = g_new0(Connect, 1);
        c->req = req;
        c->t0 = t0;
        c->requested_at = requested_at;
        who_keep(&c->kept, who);
        c->placed = since_ms(c);
        c->running = running ? c->placed : -1;
        c->ready = running ? c->placed : -1;
        c->desktop_id = row_int(desktop, "id");
        c->session_id = row_int(session, "id");
        c->host_id = row_int(host, "id");
        c->desktop_name = g_strdup(row_str(desktop, "name"));
        c->protocol = g_strdup(proto);
        c->host_address = g_strdup(row_str(host, "address"));
        api_pause(req);
        if (running)
                console_step(c);
        else
                start_step(c, desktop, host);
}

/* ---- a pool that grows: waiting for the desktop made for this connect ---------------------- */

typedef struct {
        ApiRequest *req;
        KeptWho kept;
        JsonObject *pool;
        char *protocol;
        gint64 t0, requested_at, deadline;
} Growth;

static void growth_free(Growth *g)
{
        who_clear(&g->kept);
        json_object_unref(g->pool);
        g_free(g->protocol);
        g_free(g);
}

static gboolean growth_retry(gpointer data)
{
        Growth *g = data;
        ApiRequest *req = g->req;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) desktop = NULL, session = NULL;

        /* a pool with spares starts the new desktop itself: take it once it runs */
        session = take(req, &g->kept.who, g->pool, NULL, row_int(g->pool, "spares") > 0,
                       g->protocol, &desktop, NULL, &error);
        if (!session && g_get_monotonic_time() < g->deadline && !error)
                return G_SOURCE_CONTINUE;
        if (!session) {
                if (!error)
                        error = g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                            "pool '%s' grows, but no new desktop was ready "
                                            "within %" G_GINT64_FORMAT " s; try again",
                                            row_str(g->pool, "name"),
                                            MCFG_INT(req->mgr, "connect_ready_timeout"));
                store_event_add(req->store, &req->actor, "connect_failed", "pool",
                                row_int(g->pool, "id"), row_str(g->pool, "name"), error->message,
                                NULL);
                api_reply_error(req, error);
                return G_SOURCE_REMOVE;
        }
        manager_kick(req->mgr);
        connect_to(req, &g->kept.who, desktop, session, g->protocol, g->t0, g->requested_at);
        return G_SOURCE_REMOVE;
}

/* Exhausted below max_size: one more desktop, and this connect waits for a free one. FALSE
 * when the pool may not grow. */
static gboolean grow_for(ApiRequest *req, const Who *who, JsonObject *pool, const char *proto,
                         gint64 t0, gint64 requested_at)
{
        gint64 size = row_int(pool, "size");
        gint64 max = row_int(pool, "max_size");
        g_autoptr(JsonObject) patch = NULL, upd = NULL;
        g_autofree char *detail = NULL;
        GSource *src;
        Growth *g;

        if (max <= size)
                return FALSE;
        patch = json_object_new();
        json_object_set_int_member(patch, "size", size + 1);
        g_mutex_lock(&assign_lock);
        upd = store_update_id(req->store, resource_by_kind("pool"), row_int(pool, "id"), patch,
                              NULL, NULL);
        g_mutex_unlock(&assign_lock);
        if (!upd)
                return FALSE;
        detail = g_strdup_printf("exhausted: size %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                                 " (max_size %" G_GINT64_FORMAT ")",
                                 size, size + 1, max);
        store_event_add(req->store, &req->actor, "pool_grow", "pool", row_int(pool, "id"),
                        row_str(pool, "name"), detail, NULL);
        manager_kick(req->mgr);
        g = g_new0(Growth, 1);
        g->req = req;
        who_keep(&g->kept, who);
        g->pool = json_object_ref(upd);
        g->protocol = g_strdup(proto);
        g->t0 = t0;
        g->requested_at = requested_at;
        g->deadline = g_get_monotonic_time() +
                      MCFG_INT(req->mgr, "connect_ready_timeout") * G_USEC_PER_SEC;
        api_pause(req);
        src = g_timeout_source_new(200);
        g_source_set_callback(src, growth_retry, g, (GDestroyNotify)growth_free);
        g_source_attach(src, g_main_context_get_thread_default());
        g_source_unref(src);
        return TRUE;
}

/* ---- the connect routes ---------------------------------------------------------------------- */

static gboolean protocol_valid(const char *proto)
{
        return console_protocol_from_string(proto) >= 0;
}

/* Checks, choice, assignment, then the console: shared by every connect route. */
static void connect_common(ApiRequest *req, const Who *who, JsonObject *terminal, JsonObject *pool,
                           JsonObject *desktop, const char *proto)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) session = NULL, chosen = NULL;
        g_autoptr(GHashTable) entitled = entitled_pools(req->store, who->user_id, terminal);
        gint64 pid = row_int(pool, "id");
        gint64 t0 = g_get_monotonic_time(), requested_at = g_get_real_time() / 1000;

        if (!g_hash_table_contains(entitled, &pid)) {
                refuse(req, ATRIUM_ERROR_FORBIDDEN, row_str(pool, "name"),
                       who->user_id ? "you are not entitled to this pool"
                                    : "this terminal is not entitled to this pool");
                return;
        }
        if (!who->user_id && !row_bool(pool, "kiosk")) {
                refuse(req, ATRIUM_ERROR_FORBIDDEN, row_str(pool, "name"),
                       "this pool is not a kiosk pool: log in first");
                return;
        }
        if (row_bool(pool, "maintenance") || row_bool(pool, "deleting") ||
            (desktop && row_bool(desktop, "maintenance"))) {
                refuse(req, ATRIUM_ERROR_CONFLICT, row_str(pool, "name"),
                       "in maintenance: no new connections for now");
                return;
        }
        if (!protocol_valid(proto)) {
                refuse(req, ATRIUM_ERROR_INVALID, row_str(pool, "name"),
                       "protocol must be spice or vnc");
                return;
        }
        if (terminal)
                terminals_seen(req->store, terminal);
        session = take(req, who, pool, desktop, FALSE, proto, &chosen, &error, &error);
        if (!session && !desktop && error->code == ATRIUM_ERROR_UNAVAILABLE &&
            grow_for(req, who, pool, proto, t0, requested_at))
                return;
        if (!session) {
                refuse(req, error->code, row_str(pool, "name"), error->message);
                return;
        }
        /* no kick: the spare taken is replaced at the reconciler's next regular pass (a kick
         * per connect kept it busy during a storm) */
        connect_to(req, who, chosen, session, proto, t0, requested_at);
}

/* A terminal named in the body (terminal, terminal_key): its row, or NULL. *ok is FALSE when
 * it was named and refused (the reply is sent). */
static JsonObject *body_terminal(ApiRequest *req, gboolean *ok)
{
        const char *name =
                req->body ? json_object_get_string_member_with_default(req->body, "terminal", NULL)
                          : NULL;
        const char *key = req->body ? json_object_get_string_member_with_default(
                                              req->body, "terminal_key", NULL)
                                    : NULL;
        g_autoptr(GError) error = NULL;
        JsonObject *t;

        *ok = TRUE;
        if (!name)
                return NULL;
        t = terminals_verify(req->mgr, req->store, name, key, &error);
        if (!t) {
                *ok = FALSE;
                refuse(req, error->code, name, error->message);
        }
        return t;
}

static const char *body_protocol(ApiRequest *req)
{
        const char *spice = console_protocol_to_string(PROTOCOL_SPICE);

        return req->body ? json_object_get_string_member_with_default(req->body, "protocol", spice)
                         : spice;
}

/* POST /pools/{id}/connect and /desktops/{id}/connect */
void api_connect(ApiRequest *req)
{
        gboolean to_pool = g_str_has_prefix(req->route->pattern, "/api/v1/pools/");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) pool = NULL, desktop = NULL, terminal = NULL;
        Who who = {.user_id = req->caller.user_id, .user_name = req->caller.user_name};
        gboolean ok;

        terminal = body_terminal(req, &ok);
        if (!ok)
                return;
        if (terminal) {
                who.terminal_id = row_int(terminal, "id");
                who.terminal_name = row_str(terminal, "name");
        }
        if (to_pool) {
                pool = store_get(req->store, resource_by_kind("pool"), req->params[0], 0, &error);
        } else {
                desktop = store_get(req->store, resource_by_kind("desktop"), req->params[0], 0,
                                    &error);
                if (desktop && row_ref(desktop, "user_id") != req->caller.user_id) {
                        g_clear_pointer(&desktop, json_object_unref);
                        refuse(req, ATRIUM_ERROR_NOT_FOUND, req->params[0],
                               "no such desktop of yours");
                        return;
                }
                if (desktop)
                        pool = store_get(req->store, resource_by_kind("pool"),
                                         row_str(desktop, "pool"), 0, &error);
        }
        if (!pool) {
                api_reply_error(req, error);
                return;
        }
        connect_common(req, &who, terminal, pool, desktop, body_protocol(req));
}

/* POST /kiosk/connect: a registered terminal, no user; to its fixed desktop, its fixed pool,
 * or the kiosk pool named in the body. */
void api_kiosk_connect(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) pool = NULL, desktop = NULL, terminal = NULL;
        const char *want = json_object_get_string_member_with_default(req->body, "pool", NULL);
        Who who = {0};
        gboolean ok;

        if (!json_object_get_string_member_with_default(req->body, "terminal", NULL)) {
                refuse(req, ATRIUM_ERROR_INVALID, "kiosk",
                       "a kiosk connect names its 'terminal' and 'terminal_key'");
                return;
        }
        terminal = body_terminal(req, &ok);
        if (!ok)
                return;
        who.terminal_id = row_int(terminal, "id");
        who.terminal_name = row_str(terminal, "name");
        if (row_ref(terminal, "desktop_id")) {
                desktop = store_get(req->store, resource_by_kind("desktop"),
                                    row_str(terminal, "desktop"), 0, &error);
                if (desktop && row_ref(desktop, "user_id")) {
                        refuse(req, ATRIUM_ERROR_CONFLICT, row_str(desktop, "name"),
                               "this terminal's desktop is assigned to a user");
                        return;
                }
                if (desktop)
                        pool = store_get(req->store, resource_by_kind("pool"),
                                         row_str(desktop, "pool"), 0, &error);
        } else if (row_ref(terminal, "pool_id") && !want) {
                pool = store_get(req->store, resource_by_kind("pool"), row_str(terminal, "pool"), 0,
                                 &error);
        } else if (want) {
                pool = store_get(req->store, resource_by_kind("pool"), want, 0, &error);
        } else {
                refuse(req, ATRIUM_ERROR_INVALID, who.terminal_name,
                       "this terminal has no fixed pool or desktop: name a 'pool'");
                return;
        }
        if (!pool) {
                api_reply_error(req, error);
                return;
        }
        connect_common(req, &who, terminal, pool, desktop, body_protocol(req));
}

void broker_on_link(Agents *ag, const LinkEvent *ev, gpointer data)
{
        if (ev->type == LINK_GUEST_READY)
                broker_desktop_ready(ev->id);
}
