/* The manager's side of the agent links. See agentlink.h for the threading rules. */
#define G_LOG_DOMAIN "agents"

#include "manager/agentlink.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/vocab.h"

#include <string.h>

typedef struct {
        gatomicrefcount rc;
        Agents *ag;
        gint64 host_id;
        char *host_name;
        char *actor_name; /* "host:NAME", for events */
        GMainContext *ctx;
        Store *store; /* the worker's handle: used on ctx only */
        SoupWebsocketConnection *ws;
        gboolean closed;
        const char *close_reason; /* a static string */
        gint64 fence_sent;        /* monotonic µs the fence settings last went out */
} Link;

typedef struct {
        char *id;
        char *op;
        gint64 host_id;
        GMainContext *origin;
        AgentReplyFunc cb;
        gpointer data;
        GSource *timeout;
        JsonObject *result;
        GError *error;
} Pending;

struct _Agents {
        Manager *mgr;
        GMutex lock;
        GHashTable *links;   /* host id -> Link (a reference) */
        GHashTable *seen;    /* host id -> last message, monotonic µs */
        GHashTable *pending; /* command id -> Pending */
        GHashTable *idle;    /* desktop id -> IdleReport (under lock) */
        GHashTable *alive;   /* desktop ids whose atrium-guest said ready (under lock) */
        GHashTable *kept;    /* "host/domain/epoch" a migration's source keeps (under lock) */
        gint64 started;
        guint64 next_id;
        GSource *monitor;
        GArray *listeners; /* Listener, in the order registered */
};

typedef struct {
        LinkListener fn;
        gpointer data;
} Listener;

static const Actor system_actor = {"system", 0, ""};

typedef struct {
        gint64 seconds; /* at 'at' */
        gint64 at;      /* monotonic µs */
} IdleReport;

/* A heartbeat's {domain: idle seconds} from atrium-guest: kept for the idle timeouts. */
static void idle_record(Agents *ag, JsonObject *msg)
{
        JsonNode *n = json_object_get_member(msg, "idle");
        JsonObject *o = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        GList *members = o ? json_object_get_members(o) : NULL;
        gint64 now = g_get_monotonic_time();

        g_mutex_lock(&ag->lock);
        for (GList *m = members; m; m = m->next) {
                JsonNode *v = json_object_get_member(o, m->data);
                const char *kind;
                gint64 id;
                IdleReport *r;
                if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_INT64 ||
                    json_node_get_int(v) < 0 ||
                    !agent_domain_parse(m->data, ag->mgr->installation, &kind, &id) ||
                    !g_str_equal(kind, "desktop"))
                        continue;
                r = g_new(IdleReport, 1);
                r->seconds = json_node_get_int(v);
                r->at = now;
                g_hash_table_replace(ag->idle, g_memdup2(&id, sizeof(id)), r);
        }
        g_mutex_unlock(&ag->lock);
        g_list_free(members);
}

static void alive_set(Agents *ag, gint64 desktop_id, gboolean alive)
{
        g_mutex_lock(&ag->lock);
        if (alive)
                g_hash_table_add(ag->alive, g_memdup2(&desktop_id, sizeof(desktop_id)));
        else
                g_hash_table_remove(ag->alive, &desktop_id);
        g_mutex_unlock(&ag->lock);
}

static char *kept_key(gint64 host_id, const char *domain, gint64 epoch)
{
        return g_strdup_printf("%" G_GINT64_FORMAT "/%s/%" G_GINT64_FORMAT, host_id, domain, epoch);
}

void agentlink_keep(Agents *ag, gint64 host_id, const char *domain, gint64 epoch, gboolean keep)
{
        g_autofree char *key = kept_key(host_id, domain, epoch);

        g_mutex_lock(&ag->lock);
        if (keep)
                g_hash_table_add(ag->kept, g_steal_pointer(&key));
        else
                g_hash_table_remove(ag->kept, key);
        g_mutex_unlock(&ag->lock);
}

static gboolean kept(Agents *ag, gint64 host_id, const char *domain, gint64 epoch)
{
        g_autofree char *key = kept_key(host_id, domain, epoch);
        gboolean is;

        g_mutex_lock(&ag->lock);
        is = g_hash_table_contains(ag->kept, key);
        g_mutex_unlock(&ag->lock);
        return is;
}

gboolean agentlink_guest_alive(Agents *ag, gint64 desktop_id)
{
        gboolean alive;

        g_mutex_lock(&ag->lock);
        alive = g_hash_table_contains(ag->alive, &desktop_id);
        g_mutex_unlock(&ag->lock);
        return alive || agentlink_desktop_idle(ag, desktop_id) >= 0;
}

gint64 agentlink_desktop_idle(Agents *ag, gint64 desktop_id)
{
        IdleReport *r;
        gint64 v = -1;

        g_mutex_lock(&ag->lock);
        r = g_hash_table_lookup(ag->idle, &desktop_id);
        /* a report older than a few heartbeats is stale: the guest stopped saying */
        if (r && g_get_monotonic_time() - r->at <
                         (gint64)MCFG_INT(ag->mgr, "heartbeat_interval") * 3 * G_USEC_PER_SEC)
                v = r->seconds + (g_get_monotonic_time() - r->at) / G_USEC_PER_SEC;
        g_mutex_unlock(&ag->lock);
        return v;
}

static Link *link_ref(Link *l)
{
        g_atomic_ref_count_inc(&l->rc);
        return l;
}

static void link_unref(Link *l)
{
        if (!g_atomic_ref_count_dec(&l->rc))
                return;
        g_clear_object(&l->ws);
        g_main_context_unref(l->ctx);
        g_free(l->host_name);
        g_free(l->actor_name);
        g_free(l);
}

static Actor link_actor(Link *l)
{
        Actor a = {l->actor_name, 0, ""};
        return a;
}

/* Tells the listeners, in order; the event's host, store and actor are the link's. */
static void publish(Link *l, const LinkEvent *what)
{
        Actor actor = link_actor(l);
        LinkEvent ev = *what;

        ev.host_id = l->host_id;
        ev.host_name = l->host_name;
        ev.store = l->store;
        ev.actor = &actor;
        for (guint i = 0; i < l->ag->listeners->len; i++) {
                Listener *x = &g_array_index(l->ag->listeners, Listener, i);
                x->fn(l->ag, &ev, x->data);
        }
}

void agentlink_listen(Agents *ag, LinkListener fn, gpointer data)
{
        Listener x = {fn, data};

        g_array_append_val(ag->listeners, x);
}

static void pending_free(Pending *p)
{
        g_free(p->id);
        g_free(p->op);
        g_main_context_unref(p->origin);
        if (p->result)
                json_object_unref(p->result);
        g_clear_error(&p->error);
        if (p->timeout) {
                g_source_destroy(p->timeout);
                g_source_unref(p->timeout);
        }
        g_free(p);
}

/* ---- sending ----------------------------------------------------------------------------- */

typedef struct {
        Link *link;
        char *text;
        JsonObject *command; /* or a command, stamped with its epoch on the link's thread */
        char *pending_id;
} Outgoing;

static void pending_finish(Agents *ag, const char *id, JsonObject *result, GError *error);

/* Every command on a desktop's or guest's domain carries the object's placement epoch, read
 * here on the link's thread as it goes out, so it is the newest. A start or a provision places
 * the object on this host (a new host: its epoch goes up first, in the store); any other
 * command for an object placed on another host is refused here. An epoch already in the
 * arguments (the removal of a stale or orphan domain, at the epoch it reported) is kept. */
static gboolean stamp_epoch(Link *l, JsonObject *cmd, GError **error)
{
        JsonObject *args = json_object_get_object_member(cmd, "args");
        int op = agent_op_from_string(json_object_get_string_member(cmd, "op"));
        const char *dom = json_object_get_string_member_with_default(args, "domain", NULL);
        gboolean places = op == AGENT_OP_DOMAIN_START || op == AGENT_OP_DESKTOP_PROVISION;
        const char *kind;
        gint64 id, host;
        const Resource *res;
        g_autoptr(JsonObject) row = NULL;

        if (!dom || json_object_has_member(args, "epoch") ||
            !agent_domain_parse(dom, l->ag->mgr->installation, &kind, &id) ||
            !(res = resource_by_kind(kind)) || !resource_field(res, "epoch"))
                return TRUE;
        if (!(row = store_get_id(l->store, res, id, 0, NULL)))
                return TRUE; /* an orphan: the agent judges it by its own epoch */
        host = row_ref(row, "host_id");
        if (places && host != l->host_id) {
                /* a new placement: a new epoch; the host itself is recorded when the domain
                 * reports running there (object_set_state), at this epoch */
                gint64 e = store_take_epoch(l->store, res, id, error);
                if (!e)
                        return FALSE;
                json_object_set_int_member(row, "epoch", e);
        } else if (host && host != l->host_id) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "%s '%s' is placed on another host now (epoch %" G_GINT64_FORMAT
                            "): the command to host %s is not sent",
                            kind, row_str(row, "name"), row_int(row, "epoch"), l->host_name);
                return FALSE;
        }
        json_object_set_int_member(args, "epoch", row_int(row, "epoch"));
        if (places) /* the reconciler starts it elsewhere if this host goes down */
                json_object_set_boolean_member(args, "recoverable", TRUE);
        return TRUE;
}

static gboolean send_on_link(gpointer data)
{
        Outgoing *o = data;

        if (o->command) {
                g_autoptr(GError) error = NULL;
                if (stamp_epoch(o->link, o->command, &error)) {
                        o->text = agent_msg_text(o->command);
                } else {
                        g_message("host %s: %s", o->link->host_name, error->message);
                        pending_finish(o->link->ag, o->pending_id, NULL, g_steal_pointer(&error));
                }
                json_object_unref(o->command);
                g_free(o->pending_id);
        }
        if (o->text && !o->link->closed && o->link->ws &&
            soup_websocket_connection_get_state(o->link->ws) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_send_text(o->link->ws, o->text);
        link_unref(o->link);
        g_free(o->text);
        g_free(o);
        return G_SOURCE_REMOVE;
}

/* Queue a message (taken) to a link's thread. */
static void link_send(Link *l, JsonObject *msg)
{
        Outgoing *o = g_new0(Outgoing, 1);

        o->link = link_ref(l);
        o->text = agent_msg_text(msg);
        json_object_unref(msg);
        g_main_context_invoke(l->ctx, send_on_link, o);
}

/* A command (taken) to a link's thread, stamped there with its epoch. */
static void link_send_command(Link *l, JsonObject *cmd, const char *pending_id)
{
        Outgoing *o = g_new0(Outgoing, 1);

        o->link = link_ref(l);
        o->command = cmd;
        o->pending_id = g_strdup(pending_id);
        g_main_context_invoke(l->ctx, send_on_link, o);
}

/* Runs on the caller's context: the reply, the error or the timeout, whichever came first. */
static gboolean pending_complete(gpointer data)
{
        Pending *p = data;

        if (p->cb)
                p->cb(p->error ? NULL : p->result, p->error, p->data);
        pending_free(p);
        return G_SOURCE_REMOVE;
}

static char *pending_op(Agents *ag, const char *id)
{
        Pending *p;
        char *op = NULL;

        g_mutex_lock(&ag->lock);
        p = g_hash_table_lookup(ag->pending, id);
        if (p)
                op = g_strdup(p->op);
        g_mutex_unlock(&ag->lock);
        return op;
}

static void pending_finish(Agents *ag, const char *id, JsonObject *result, GError *error)
{
        Pending *p;

        g_mutex_lock(&ag->lock);
        p = g_hash_table_lookup(ag->pending, id);
        if (p)
                g_hash_table_steal(ag->pending, id);
        g_mutex_unlock(&ag->lock);
        if (!p) {
                if (error)
                        g_error_free(error);
                return; /* timed out already */
        }
        p->result = result ? json_object_ref(result) : NULL;
        p->error = error;
        g_main_context_invoke(p->origin, pending_complete, p);
}

typedef struct {
        Agents *ag;
        char *id;
        guint timeout_s;
} TimeoutData;

static gboolean pending_timeout(gpointer data)
{
        TimeoutData *t = data;

        pending_finish(t->ag, t->id, NULL,
                       g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                   "the host's agent did not answer within %u s", t->timeout_s));
        return G_SOURCE_REMOVE;
}

static void timeout_data_free(gpointer data)
{
        TimeoutData *t = data;
        g_free(t->id);
        g_free(t);
}

gboolean agentlink_call(Agents *ag, gint64 host_id, AgentOp op, JsonObject *args, guint timeout_s,
                        AgentReplyFunc cb, gpointer data, GError **error)
{
        g_autoptr(JsonObject) owned_args = args;
        Pending *p;
        Link *l;
        JsonObject *msg;
        TimeoutData *t;

        g_mutex_lock(&ag->lock);
        l = g_hash_table_lookup(ag->links, &host_id);
        if (!l) {
                g_mutex_unlock(&ag->lock);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the host's agent is not connected (host down); try again when "
                            "the host is up");
                return FALSE;
        }
        link_ref(l);
        p = g_new0(Pending, 1);
        p->id = g_strdup_printf("c%" G_GUINT64_FORMAT "-%" G_GINT64_FORMAT, ++ag->next_id,
                                g_get_real_time());
        p->origin = g_main_context_ref_thread_default();
        p->op = g_strdup(agent_op_to_string(op));
        p->host_id = host_id;
        p->cb = cb;
        p->data = data;
        t = g_new0(TimeoutData, 1);
        t->ag = ag;
        t->id = g_strdup(p->id);
        t->timeout_s = timeout_s;
        p->timeout = g_timeout_source_new_seconds(timeout_s);
        g_source_set_callback(p->timeout, pending_timeout, t, timeout_data_free);
        g_source_attach(p->timeout, p->origin);
        g_hash_table_insert(ag->pending, p->id, p);
        msg = agent_msg_new("command");
        json_object_set_string_member(msg, "id", p->id);
        json_object_set_string_member(msg, "op", agent_op_to_string(op));
        json_object_set_object_member(msg, "args", g_steal_pointer(&owned_args));
        /* the leader's term: an agent refuses a term older than one it has seen */
        if (manager_term(ag->mgr))
                json_object_set_int_member(msg, "term", manager_term(ag->mgr));
        g_mutex_unlock(&ag->lock);
        g_debug("command %s to host %" G_GINT64_FORMAT ": %s", p->id, host_id,
                agent_op_to_string(op));
        link_send_command(l, msg, json_object_get_string_member(msg, "id"));
        link_unref(l);
        return TRUE;
}

gboolean agentlink_linked(Agents *ag, gint64 host_id)
{
        gboolean r;

        g_mutex_lock(&ag->lock);
        r = g_hash_table_contains(ag->links, &host_id);
        g_mutex_unlock(&ag->lock);
        return r;
}

static gboolean close_on_link(gpointer data)
{
        Link *l = data;

        if (l->ws && soup_websocket_connection_get_state(l->ws) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_close(l->ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                                                l->close_reason ? l->close_reason
                                                                : "host removed");
        link_unref(l);
        return G_SOURCE_REMOVE;
}

/* The host's link (if any) closed and forgotten; seen too when forget_seen. */
static void link_drop(Agents *ag, gint64 host_id, const char *reason, gboolean forget_seen)
{
        Link *l;

        g_mutex_lock(&ag->lock);
        l = g_hash_table_lookup(ag->links, &host_id);
        if (l) {
                link_ref(l);
                l->close_reason = reason;
                g_hash_table_remove(ag->links, &host_id);
        }
        if (forget_seen)
                g_hash_table_remove(ag->seen, &host_id);
        g_mutex_unlock(&ag->lock);
        if (l)
                g_main_context_invoke(l->ctx, close_on_link, l);
}

void agentlink_forget(Agents *ag, gint64 host_id)
{
        link_drop(ag, host_id, "host removed", TRUE);
}

/* ---- host state -------------------------------------------------------------------------- */

static void mark_seen(Agents *ag, gint64 host_id)
{
        gint64 *k = g_new(gint64, 1), *v = g_new(gint64, 1);

        *k = host_id;
        *v = g_get_monotonic_time();
        g_mutex_lock(&ag->lock);
        g_hash_table_replace(ag->seen, k, v);
        g_mutex_unlock(&ag->lock);
}

/* Sets the host's state to up (or maintenance when flagged) or down, with an event when it
 * changes; figures (taken, may be NULL) are written without one. */
static void host_update(Store *st, gint64 host_id, gboolean up, JsonObject *figures,
                        const Actor *actor)
{
        const Resource *hosts = resource_by_kind("host");
        g_autoptr(JsonObject) row = store_get_id(st, hosts, host_id, 0, NULL);
        g_autoptr(GError) error = NULL;
        HostState want;

        if (!row) {
                if (figures)
                        json_object_unref(figures);
                return;
        }
        if (figures) {
                g_autofree char *now = util_now_iso();
                g_autoptr(JsonObject) upd = NULL;
                json_object_set_string_member(figures, "last_seen", now);
                upd = store_host_figures(st, host_id, figures, &error);
                json_object_unref(figures);
                if (!upd)
                        g_warning("host %" G_GINT64_FORMAT ": cannot record its figures: %s",
                                  host_id, error->message);
                g_clear_error(&error);
        }
        want = !up ? HOST_DOWN : row_bool(row, "maintenance") ? HOST_MAINTENANCE : HOST_UP;
        /* heard again after a silence (a new host's first hello is no return) */
        if (up && (row_host_state(row) == HOST_SUSPECT ||
                   (row_host_state(row) == HOST_DOWN && row_str(row, "last_seen")[0])))
                store_event_add(st, &system_actor, "host_up", "host", host_id, row_str(row, "name"),
                                "its agent is heard again", NULL);
        if (row_host_state(row) != want) {
                g_autoptr(JsonObject) patch = json_object_new();
                g_autoptr(JsonObject) upd = NULL;
                row_set_host_state(patch, want);
                upd = store_update_id(st, hosts, host_id, patch, actor, &error);
                if (!upd)
                        g_warning("host %" G_GINT64_FORMAT ": cannot set its state: %s", host_id,
                                  error->message);
                else
                        g_info("host %s is %s", row_str(row, "name"), host_state_to_string(want));
        }
}

/* A silent host's state (suspect), with its event; its heartbeats make it up again. */
static void host_suspect(Store *st, JsonObject *h, gint64 silent_s)
{
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;
        g_autofree char *why =
                g_strdup_printf("no word from its agent for %" G_GINT64_FORMAT " s", silent_s);

        row_set_host_state(patch, HOST_SUSPECT);
        upd = store_update_id(st, resource_by_kind("host"), row_id(h), patch, NULL, NULL);
        if (!upd)
                return;
        g_warning("host %s is suspect: %s", row_str(h, "name"), why);
        store_event_add(st, &system_actor, "host_suspect", "host", row_id(h), row_str(h, "name"),
                        why, NULL);
}

/* Once a second, on the main context: a host whose agent went quiet is suspect after
 * manager.host_suspect_after seconds, down after manager.host_down_after. */
static void monitor_pass(Agents *ag);

static gboolean monitor_tick(gpointer data)
{
        Agents *ag = data;
        Manager *mgr = ag->mgr;

        if (!manager_leading(mgr)) /* the leader judges hosts */
                return G_SOURCE_CONTINUE;
        monitor_pass(ag);
        return G_SOURCE_CONTINUE;
}

void agentlink_lead(Agents *ag)
{
        ag->started = g_get_monotonic_time(); /* agents get startup_grace to link here */
}

static void monitor_pass(Agents *ag)
{
        Manager *mgr = ag->mgr;
        const Resource *hosts = resource_by_kind("host");
        gint64 suspect_after = (gint64)MCFG_INT(mgr, "host_suspect_after") * G_USEC_PER_SEC;
        gint64 limit = (gint64)MCFG_INT(mgr, "host_down_after") * G_USEC_PER_SEC;
        gint64 now = g_get_monotonic_time();
        g_autoptr(JsonArray) rows = store_list_all(mgr->store, hosts, NULL, NULL);

        for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                JsonObject *h = json_array_get_object_element(rows, i);
                gint64 id = row_int(h, "id"), last;
                gint64 *seen;

                if (row_host_state(h) == HOST_DOWN)
                        continue;
                g_mutex_lock(&ag->lock);
                seen = g_hash_table_lookup(ag->seen, &id);
                last = seen ? *seen : ag->started;
                g_mutex_unlock(&ag->lock);
                if (now - last <= suspect_after)
                        continue;
                /* after a manager start, agents get startup_grace to link again */
                if (now - last <= limit ||
                    now - ag->started < (gint64)MCFG_INT(mgr, "startup_grace") * G_USEC_PER_SEC) {
                        if (row_host_state(h) != HOST_SUSPECT)
                                host_suspect(mgr->store, h, (now - last) / G_USEC_PER_SEC);
                        continue;
                }
                g_warning("host %s: no word from its agent for %" G_GINT64_FORMAT
                          " s: marking it down",
                          row_str(h, "name"), (now - last) / G_USEC_PER_SEC);
                host_update(mgr->store, id, FALSE, NULL, &system_actor);
                store_event_add(mgr->store, &system_actor, "host_down", "host", id,
                                row_str(h, "name"), "missed heartbeats", NULL);
                /* Given up: a link still open (a frozen agent) is closed, so the agent must
                 * link again with a fresh inventory when it comes back; recovery begins. */
                link_drop(ag, id, "host declared down", FALSE);
                manager_kick(mgr);
        }
}

static void witness_add(JsonArray *w, const char *host, int port)
{
        g_autofree char *hp = g_strdup_printf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);

        json_array_add_string_element(w, hp);
}

gboolean agentlink_declare_down(Agents *ag, Store *st, gint64 host_id, const Actor *actor,
                                GError **error)
{
        g_autoptr(JsonObject) row = store_get_id(st, resource_by_kind("host"), host_id, 0, error);

        if (!row)
                return FALSE;
        if (row_host_state(row) == HOST_DOWN) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "host '%s' is down already: its desktops are being recovered",
                            row_str(row, "name"));
                return FALSE;
        }
        host_update(st, host_id, FALSE, NULL, actor);
        store_event_add(st, actor, "host_fenced", "host", host_id, row_str(row, "name"),
                        "declared down by hand (the host is off): its desktops go to other hosts",
                        NULL);
        link_drop(ag, host_id, "host declared down", FALSE);
        manager_kick(ag->mgr);
        return TRUE;
}

/* What an agent needs to fence itself (fence.c in the agent): whether it may (another host
 * could take over its desktops), after how long a silence, and its witnesses: the gateway's
 * address and every other host's management address. */
static JsonObject *fence_settings(Agents *ag, Store *st, gint64 host_id)
{
        JsonObject *f = json_object_new();
        JsonArray *w = json_array_new();
        g_autoptr(JsonArray) hosts = store_list_all(st, resource_by_kind("host"), NULL, NULL);
        g_autoptr(GUri) gw = NULL;
        const char *gurl = MCFG_STR(ag->mgr, "gateway_url");
        guint others = 0;

        if (gurl[0] && (gw = g_uri_parse(gurl, G_URI_FLAGS_NONE, NULL)) && g_uri_get_host(gw))
                witness_add(w, g_uri_get_host(gw),
                            g_uri_get_port(gw) > 0 ? g_uri_get_port(gw) : 443);
        for (guint i = 0; hosts && i < json_array_get_length(hosts); i++) {
                JsonObject *h = json_array_get_object_element(hosts, i);
                const char *addr = row_str(h, "address");
                if (row_int(h, "id") == host_id)
                        continue;
                others++;
                if (addr[0])
                        witness_add(w, addr, AGENT_WITNESS_PORT);
        }
        json_object_set_boolean_member(f, "enabled",
                                       others > 0 && MCFG_INT(ag->mgr, "self_fence_after") > 0);
        json_object_set_int_member(f, "after", MCFG_INT(ag->mgr, "self_fence_after"));
        json_object_set_int_member(f, "witness_timeout_ms", MCFG_INT(ag->mgr, "witness_timeout_ms"));
        json_object_set_array_member(f, "witnesses", w);
        return f;
}

static JsonArray *storage_paths(Store *st);

/* Every heartbeat is acknowledged (the agent's proof that its manager lives); the fence
 * settings and the storage directories go with an ack every 5 s, so new hosts become
 * witnesses and new volumes are reported on. */
static void heartbeat_ack(Link *l)
{
        JsonObject *ack = agent_msg_new("ack");

        if (g_get_monotonic_time() - l->fence_sent > 5 * G_USEC_PER_SEC) {
                json_object_set_object_member(ack, "fence",
                                              fence_settings(l->ag, l->store, l->host_id));
                json_object_set_array_member(ack, "volumes", storage_paths(l->store));
                l->fence_sent = g_get_monotonic_time();
        }
        link_send(l, ack);
}

/* ---- events and reconciliation ----------------------------------------------------------- */

/* The state word of a guest's or a desktop's row for a domain state its host reported. */
static const char *reported_state(const Resource *res, DomainState state)
{
        if (state == DOMAIN_RUNNING || state == DOMAIN_PAUSED)
                return row_power_word(res, POWER_RUNNING);
        if (state == DOMAIN_CRASHED)
                return row_power_word(res, POWER_FAILED);
        return row_power_word(res, POWER_STOPPED);
}

/* A report's "state" (a shut-off domain when it says none, or a word it does not know). */
static DomainState report_state(JsonObject *report)
{
        int s = domain_state_from_string(row_str(report, "state"));

        return s < 0 ? DOMAIN_SHUTOFF : (DomainState)s;
}

typedef enum { REPORT_RECORDED, REPORT_ORPHAN, REPORT_STALE } ReportFate;

/* A domain of ours whose object no longer exists (hostsync.c removes it). */
static void remove_orphan(Link *l, const char *domain, const char *kind, gint64 id, gint64 epoch)
{
        publish(l, &(LinkEvent){
                           .type = LINK_ORPHAN, .kind = kind, .id = id, .domain = domain, .epoch = epoch});
}

/* Records a domain's reported state on its guest/desktop row: REPORT_ORPHAN when the row does
 * not exist, REPORT_STALE (nothing recorded, listeners told when it runs or always) when the
 * domain carries another placement epoch than the row: the object was placed again since. */
static ReportFate object_set_state(Link *l, const Resource *res, gint64 id, JsonObject *report,
                                   const char *why, gboolean tell_stale)
{
        g_autoptr(JsonObject) row = store_get_id(l->store, res, id, 0, NULL);
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;
        g_autoptr(GError) error = NULL;
        const char *state = reported_state(res, report_state(report));
        gboolean running = g_str_equal(state, reported_state(res, DOMAIN_RUNNING));
        JsonNode *host = NULL;
        Actor actor = link_actor(l);

        if (!row)
                return REPORT_ORPHAN;
        if (resource_field(res, "migrating_epoch") && row_int(row, "migrating_epoch") > 0) {
                gint64 to = row_ref(row, "migrating_to_id");
                gint64 me = row_int(row, "migrating_epoch");
                if (row_int(report, "epoch") == me && l->host_id == to) {
                        /* the copy the migration makes on its destination: paused until
                         * libvirt's Finish resumes it at the switch-over; placed there by
                         * migration.c, which hears of it, never by these reports */
                        publish(l, &(LinkEvent){.type = LINK_ARRIVING,
                                                .kind = res->kind,
                                                .id = id,
                                                .domain = row_str(report, "domain"),
                                                .msg = report,
                                                .epoch = me});
                        return REPORT_RECORDED;
                } else if (l->host_id == row_ref(row, "host_id") &&
                           (report_state(report) == DOMAIN_PAUSED ||
                            g_str_equal(row_str(report, "reason"), "migrated") ||
                            g_str_equal(row_str(report, "reason"), "undefined"))) {
                        /* the source pauses, stops and is undefined at the switch-over; the
                         * migration's end says where it runs */
                        return REPORT_RECORDED;
                }
        }
        if (resource_field(res, "epoch") && row_int(report, "epoch") > 0 &&
            row_int(report, "epoch") != row_int(row, "epoch")) {
                if (kept(l->ag, l->host_id, row_str(report, "domain"), row_int(report, "epoch")))
                        return REPORT_RECORDED; /* a migration's source, until its end */
                if (tell_stale || running)
                        publish(l, &(LinkEvent){.type = LINK_STALE,
                                                .kind = res->kind,
                                                .id = id,
                                                .domain = row_str(report, "domain"),
                                                .msg = row,
                                                .epoch = row_int(report, "epoch")});
                return REPORT_STALE;
        }
        if (resource_field(res, "host"))
                host = json_object_get_member(row, "host_id");
        if (running &&
            (!host || JSON_NODE_HOLDS_NULL(host) || json_node_get_int(host) != l->host_id)) {
                json_object_set_int_member(patch, "host", l->host_id);
                if (row_int(report, "epoch") > 0) /* placed at that epoch: no new one */
                        json_object_set_int_member(patch, "epoch", row_int(report, "epoch"));
        }
        else if (!running && host && !JSON_NODE_HOLDS_NULL(host) &&
                 json_node_get_int(host) != l->host_id)
                return REPORT_RECORDED; /* it runs elsewhere now: a stale report from here */
        /* The reconciler's own states hold until its step ends: a provisioning desktop's domain
         * is destroyed and redefined on purpose. */
        if (!g_str_equal(row_str(row, "state"), state) &&
            !(g_str_equal(res->kind, "desktop") &&
              (row_desktop_state(row) == DESKTOP_PROVISIONING ||
               row_desktop_state(row) == DESKTOP_DELETING ||
               (row_desktop_state(row) == DESKTOP_RECOVERING && !running)))) {
                json_object_set_string_member(patch, "state", state);
                if (resource_field(res, "state_since"))
                        json_object_set_int_member(patch, "state_since",
                                                   g_get_real_time() / G_USEC_PER_SEC);
        }
        if (resource_field(res, "spice_port")) {
                gint64 sp = running ? row_int(report, "spice_port") : 0;
                gint64 vp = running ? row_int(report, "vnc_port") : 0;
                if (sp != row_int(row, "spice_port"))
                        json_object_set_int_member(patch, "spice_port", sp);
                if (vp != row_int(row, "vnc_port"))
                        json_object_set_int_member(patch, "vnc_port", vp);
        }
        if (json_object_get_size(patch) == 0)
                return REPORT_RECORDED;
        upd = store_update_id(l->store, res, id, patch, NULL, &error);
        if (!upd) {
                g_warning("%s %" G_GINT64_FORMAT ": cannot record its state: %s", res->kind, id,
                          error->message);
                return REPORT_RECORDED;
        }
        if (json_object_has_member(patch, "state")) {
                g_autofree char *action = g_strdup_printf("%s_%s", res->kind, state);
                store_event_add(l->store, &actor, action, res->kind, id, row_str(row, "name"), why,
                                NULL);
                publish(l, &(LinkEvent){
                                   .type = LINK_STATE, .kind = res->kind, .id = id, .msg = report});
        }
        return REPORT_RECORDED;
}

/* What the host runs against what the records say: every domain of the inventory updates its
 * object; an object the records place on this host with no domain there is stopped; a domain
 * with no object is an orphan. */
static void reconcile(Link *l, JsonArray *inventory)
{
        const char *kinds[] = {"guest", "desktop"};
        g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
        Actor actor = link_actor(l);

        for (guint i = 0; inventory && i < json_array_get_length(inventory); i++) {
                JsonNode *n = json_array_get_element(inventory, i);
                JsonObject *d;
                const char *name, *kind;
                gint64 id;

                if (!JSON_NODE_HOLDS_OBJECT(n))
                        continue;
                d = json_node_get_object(n);
                name = row_str(d, "domain");
                if (!agent_domain_parse(name, l->ag->mgr->installation, &kind, &id))
                        continue;
                if (object_set_state(l, resource_by_kind(kind), id, d, "reported by its host",
                                     TRUE) == REPORT_ORPHAN)
                        remove_orphan(l, name, kind, id, row_int(d, "epoch"));
                else
                        g_hash_table_add(present, (gpointer)name);
        }
        for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
                const Resource *res = resource_by_kind(kinds[k]);
                g_autoptr(GHashTable) filters =
                        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
                g_autoptr(JsonArray) rows = NULL;

                g_hash_table_insert(filters, (gpointer) "host", util_id_text(l->host_id));
                rows = store_list_all(l->store, res, filters, NULL);
                for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                        JsonObject *o = json_array_get_object_element(rows, i);
                        gint64 id = row_int(o, "id");
                        g_autofree char *dom =
                                agent_domain_name(l->ag->mgr->installation, kinds[k], id);
                        g_autoptr(JsonObject) gone = NULL;

                        if (g_hash_table_contains(present, dom) ||
                            g_str_equal(row_str(o, "state"), reported_state(res, DOMAIN_SHUTOFF)))
                                continue;
                        gone = json_object_new();
                        json_object_set_string_member(gone, "state",
                                                      domain_state_to_string(DOMAIN_SHUTOFF));
                        object_set_state(l, res, id, gone, "its domain is gone from its host",
                                         FALSE);
                }
        }
        store_event_add(l->store, &actor, "reconciled", "host", l->host_id, l->host_name, "", NULL);
}

static const char *figure_keys[] = {"cpus", "ram_mb", "ram_free_mb", "ram_committed_mb", "running"};

static JsonObject *figures_from(JsonObject *msg, gboolean facts)
{
        JsonObject *f = json_object_new();

        for (gsize i = 0; i < G_N_ELEMENTS(figure_keys); i++) {
                JsonNode *n = json_object_get_member(msg, figure_keys[i]);
                if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64 &&
                    json_node_get_int(n) >= 0)
                        json_object_set_int_member(f, figure_keys[i], json_node_get_int(n));
        }
        if (json_object_has_member(msg, "volumes")) {
                g_autoptr(JsonNode) v = json_node_copy(json_object_get_member(msg, "volumes"));
                g_autofree char *text = json_node_to_text(v, FALSE);
                json_object_set_string_member(f, "volumes", text);
        }
        if (facts) {
                const char *keys[] = {"accel",           "accel_reason", "cpu_model",
                                      "libvirt_version", "qemu_version", "address"};
                for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                        const char *v =
                                json_object_get_string_member_with_default(msg, keys[i], NULL);
                        if (v && util_text_valid(keys[i], v, 255, NULL))
                                json_object_set_string_member(f, keys[i], v);
                }
        }
        return f;
}

static void on_event(Link *l, JsonObject *msg)
{
        const char *event = row_str(msg, "event");
        const char *domain = row_str(msg, "domain");
        const char *kind;
        gint64 id;
        Actor actor = link_actor(l);
        const Resource *res;

        if (!agent_domain_parse(domain, l->ag->mgr->installation, &kind, &id)) {
                g_debug("host %s: event about a domain not ours: %s", l->host_name, domain);
                return;
        }
        res = resource_by_kind(kind);
        if (g_str_equal(event, "lifecycle")) {
                g_autofree char *why = g_strdup_printf(
                        "%s (libvirt)",
                        json_object_get_string_member_with_default(msg, "reason", "changed"));
                if (object_set_state(l, res, id, msg, why, FALSE) == REPORT_ORPHAN)
                        remove_orphan(l, domain, kind, id, row_int(msg, "epoch"));
                if (report_state(msg) != DOMAIN_RUNNING)
                        alive_set(l->ag, id, FALSE);
                return;
        }
        if (g_str_equal(event, "migration")) {
                publish(l, &(LinkEvent){
                                   .type = LINK_MIGRATION, .kind = kind, .id = id, .domain = domain, .msg = msg});
                return;
        }
        if (g_str_equal(event, "guest") && g_str_equal(kind, "desktop")) {
                const char *what = row_str(msg, "what");
                if (g_str_equal(what, "ready") || g_str_equal(what, "heartbeat-back"))
                        alive_set(l->ag, id, TRUE);
                else if (g_str_equal(what, "heartbeat-lost"))
                        alive_set(l->ag, id, FALSE);
        }
        if (g_str_equal(event, "guest") && g_str_equal(kind, "desktop")) {
                const char *what = row_str(msg, "what");
                LinkEventType t = g_str_equal(what, "ready")         ? LINK_GUEST_READY
                                  : g_str_equal(what, "user-login")  ? LINK_GUEST_LOGIN
                                  : g_str_equal(what, "user-logout") ? LINK_GUEST_LOGOUT
                                                                     : LINK_EVENT_LAST;
                if (t != LINK_EVENT_LAST)
                        publish(l, &(LinkEvent){.type = t,
                                                .kind = kind,
                                                .id = id,
                                                .domain = domain,
                                                .msg = msg});
        }
        if (g_str_equal(event, "graphics") && g_str_equal(kind, "desktop"))
                publish(l,
                        &(LinkEvent){.type = LINK_CONSOLE,
                                     .kind = kind,
                                     .id = id,
                                     .domain = domain,
                                     .msg = msg,
                                     .connected = g_str_equal(row_str(msg, "phase"), "connect")});
        if (g_str_equal(event, "graphics") || g_str_equal(event, "disk-error") ||
            g_str_equal(event, "guest")) {
                g_autoptr(JsonObject) row = store_get_id(l->store, res, id, 0, NULL);
                g_autoptr(JsonObject) detail_obj = json_object_new();
                g_autoptr(JsonNode) dn = json_node_new(JSON_NODE_OBJECT);
                g_autofree char *detail = NULL, *action = NULL;
                const char *what = row_str(msg, g_str_equal(event, "guest") ? "what" : "phase");
                GList *members = json_object_get_members(msg);

                for (GList *m = members; m; m = m->next) {
                        JsonNode *v = json_object_get_member(msg, m->data);
                        if (!g_str_equal(m->data, "type") && JSON_NODE_HOLDS_VALUE(v))
                                json_object_set_member(detail_obj, m->data, json_node_copy(v));
                }
                g_list_free(members);
                json_node_set_object(dn, detail_obj);
                detail = json_node_to_text(dn, FALSE);
                action = g_str_equal(event, "disk-error")
                                 ? g_strdup("disk_error")
                                 : g_strdup_printf("%s_%s",
                                                   g_str_equal(event, "graphics") ? "console"
                                                                                  : "guest_agent",
                                                   what[0] ? what : "event");
                for (char *c = action; *c; c++)
                        if (*c == '-')
                                *c = '_';
                store_event_add(l->store, &actor, action, kind, id,
                                row ? row_str(row, "name") : domain, detail, NULL);
                return;
        }
        g_debug("host %s: unknown event '%s'", l->host_name, event);
}

static void on_message(SoupWebsocketConnection *ws, gint type, GBytes *bytes, gpointer data)
{
        Link *l = data;
        gsize len;
        const char *text = g_bytes_get_data(bytes, &len);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) msg = NULL;
        const char *mtype;

        if (type != SOUP_WEBSOCKET_DATA_TEXT) {
                g_warning("host %s sent a binary message; ignored", l->host_name);
                return;
        }
        msg = agent_msg_parse(text, len, &error);
        if (!msg) {
                g_warning("host %s sent a bad message: %s", l->host_name, error->message);
                return;
        }
        mark_seen(l->ag, l->host_id);
        mtype = json_object_get_string_member(msg, "type");
        if (g_str_equal(mtype, "reply")) {
                const char *id = row_str(msg, "id");
                JsonNode *res = json_object_get_member(msg, "result");
                JsonNode *err = json_object_get_member(msg, "error");
                if (row_bool(msg, "ok"))
                        pending_finish(l->ag, id,
                                       res && JSON_NODE_HOLDS_OBJECT(res)
                                               ? json_node_get_object(res)
                                               : NULL,
                                       NULL);
                else {
                        GError *e = agent_error_from_json(err && JSON_NODE_HOLDS_OBJECT(err)
                                                                  ? json_node_get_object(err)
                                                                  : NULL);
                        Actor actor = link_actor(l);
                        g_autofree char *op = pending_op(l->ag, id);
                        g_autofree char *detail =
                                g_strdup_printf("%s: %s", op ? op : "?", e->message);
                        store_event_add(l->store, &actor, "command_refused", "host", l->host_id,
                                        l->host_name, detail, NULL);
                        pending_finish(l->ag, id, NULL, e);
                }
        } else if (g_str_equal(mtype, "heartbeat")) {
                Actor actor = link_actor(l);
                host_update(l->store, l->host_id, TRUE, figures_from(msg, FALSE), &actor);
                idle_record(l->ag, msg);
                heartbeat_ack(l);
        } else if (g_str_equal(mtype, "hello")) {
                Actor actor = link_actor(l);
                JsonNode *inv = json_object_get_member(msg, "inventory");
                g_info("host %s linked (agent %s)", l->host_name,
                       json_object_get_string_member_with_default(msg, "agent", "?"));
                host_update(l->store, l->host_id, TRUE, figures_from(msg, TRUE), &actor);
                if (row_int(msg, "fenced_domains") > 0) {
                        g_autofree char *why = g_strdup_printf(
                                "cut off from its manager and every witness, its agent destroyed "
                                "%" G_GINT64_FORMAT " domains the manager may restart elsewhere",
                                row_int(msg, "fenced_domains"));
                        g_warning("host %s fenced itself: %s", l->host_name, why);
                        store_event_add(l->store, &actor, "host_self_fenced", "host", l->host_id,
                                        l->host_name, why, NULL);
                }
                publish(l, &(LinkEvent){.type = LINK_HELLO, .msg = msg});
                reconcile(l, inv && JSON_NODE_HOLDS_ARRAY(inv) ? json_node_get_array(inv) : NULL);
                publish(l, &(LinkEvent){.type = LINK_INVENTORY, .msg = msg});
        } else if (g_str_equal(mtype, "event")) {
                on_event(l, msg);
        } else {
                g_warning("host %s sent an unknown message type '%s'", l->host_name, mtype);
        }
}

static void on_closed(SoupWebsocketConnection *ws, gpointer data)
{
        Link *l = data;
        Agents *ag = l->ag;
        g_autoptr(GPtrArray) orphaned = g_ptr_array_new_with_free_func(g_free);
        GHashTableIter it;
        gpointer k, v;
        gboolean current;

        l->closed = TRUE;
        g_mutex_lock(&ag->lock);
        current = g_hash_table_lookup(ag->links, &l->host_id) == l;
        if (current)
                g_hash_table_remove(ag->links, &l->host_id);
        /* commands sent on this link get no answer now: fail them at once, not at timeout */
        g_hash_table_iter_init(&it, ag->pending);
        while (current && g_hash_table_iter_next(&it, &k, &v))
                if (((Pending *)v)->host_id == l->host_id)
                        g_ptr_array_add(orphaned, g_strdup(k));
        g_mutex_unlock(&ag->lock);
        for (guint i = 0; i < orphaned->len; i++)
                pending_finish(ag, orphaned->pdata[i], NULL,
                               g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                           "the link to host %s closed before it answered; the "
                                           "host's next report tells what happened",
                                           l->host_name));
        g_info("host %s: link closed", l->host_name);
        if (current)
                publish(l, &(LinkEvent){.type = LINK_LOST});
        link_unref(l);
}

/* ---- the WebSocket endpoint -------------------------------------------------------------- */

/* Before the upgrade: the host credential must be known. */
static void link_auth(SoupServer *server, SoupServerMessage *msg, const char *path,
                      GHashTable *query, gpointer data)
{
        ServeContext *sc = data;
        const char *h = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
                                                     "Authorization");
        g_autoptr(GError) error = NULL;
        g_autofree char *hash = NULL;
        gint64 id = 0;

        if (!manager_leading(sc->mgr)) { /* agents link to the leader only */
                g_autofree char *leader = manager_leader_url(sc->mgr);
                g_autofree char *text = g_strdup_printf(
                        "{\"error\":{\"code\":\"unavailable\",\"message\":\"this manager is a "
                        "standby; link to the leader\"},\"leader_url\":\"%s\"}",
                        leader);
                soup_server_message_set_status(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Retry-After", "1");
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             AGENT_LEADER_HEADER, leader);
                soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, text,
                                                 strlen(text));
                return;
        }
        if (h && g_str_has_prefix(h, "Bearer ") && h[7]) {
                hash = token_hash(h + 7);
                id = store_host_by_credential(sc->store, hash, &error);
        } else {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "the agent link needs 'Authorization: Bearer HOST-CREDENTIAL'");
        }
        if (!id) {
                g_autoptr(JsonNode) body = json_error_body(error);
                g_autofree char *text = json_node_to_text(body, FALSE);
                g_message("agent link refused: %s", error->message);
                soup_server_message_set_status(msg, SOUP_STATUS_UNAUTHORIZED, NULL);
                soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, text,
                                                 strlen(text));
                return;
        }
        g_object_set_data_full(G_OBJECT(msg), "atrium-host-id", g_memdup2(&id, sizeof(id)), g_free);
}

/* The directories of every volume and media storage: the host reports which it reaches. */
static JsonArray *storage_paths(Store *st)
{
        const char *kinds[] = {"volume", "media"};
        JsonArray *out = json_array_new();

        for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
                g_autoptr(JsonArray) rows =
                        store_list_all(st, resource_by_kind(kinds[k]), NULL, NULL);
                for (guint i = 0; rows && i < json_array_get_length(rows); i++)
                        json_array_add_string_element(
                                out, row_str(json_array_get_object_element(rows, i), "path"));
        }
        return out;
}

static void link_open(SoupServer *server, SoupServerMessage *msg, const char *path,
                      SoupWebsocketConnection *ws, gpointer data)
{
        ServeContext *sc = data;
        Agents *ag = sc->mgr->agents;
        gint64 *idp = g_object_get_data(G_OBJECT(msg), "atrium-host-id");
        g_autoptr(JsonObject) row = NULL;
        Link *l, *old;
        JsonObject *welcome;

        if (!idp)
                return;
        row = store_get_id(sc->store, resource_by_kind("host"), *idp, 0, NULL);
        if (!row) {
                soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                                                "host removed");
                return;
        }
        l = g_new0(Link, 1);
        g_atomic_ref_count_init(&l->rc);
        l->ag = ag;
        l->host_id = *idp;
        l->host_name = g_strdup(row_str(row, "name"));
        l->actor_name = g_strdup_printf("host:%s", l->host_name);
        l->ctx = g_main_context_ref_thread_default();
        l->store = sc->store;
        l->ws = g_object_ref(ws);
        soup_websocket_connection_set_max_incoming_payload_size(ws, AGENT_MSG_MAX);
        soup_websocket_connection_set_keepalive_interval(ws, 15);
        g_signal_connect(ws, "message", G_CALLBACK(on_message), l);
        g_signal_connect(ws, "closed", G_CALLBACK(on_closed), l);
        g_mutex_lock(&ag->lock);
        old = g_hash_table_lookup(ag->links, &l->host_id);
        if (old)
                link_ref(old);
        g_hash_table_replace(ag->links, g_memdup2(&l->host_id, sizeof(gint64)), link_ref(l));
        g_mutex_unlock(&ag->lock);
        if (old) /* the agent reconnected before we saw its old link close */
                g_main_context_invoke(old->ctx, close_on_link, old);
        mark_seen(ag, l->host_id);
        welcome = agent_msg_new("welcome");
        json_object_set_int_member(welcome, "version", AGENT_PROTO_VERSION);
        json_object_set_int_member(welcome, "host_id", l->host_id);
        json_object_set_string_member(welcome, "name", l->host_name);
        json_object_set_string_member(welcome, "installation", sc->mgr->installation);
        json_object_set_int_member(welcome, "heartbeat_interval",
                                   MCFG_INT(sc->mgr, "heartbeat_interval"));
        if (manager_term(sc->mgr))
                json_object_set_int_member(welcome, "term", manager_term(sc->mgr));
        json_object_set_array_member(welcome, "volumes", storage_paths(sc->store));
        json_object_set_object_member(welcome, "fence", fence_settings(ag, sc->store, l->host_id));
        l->fence_sent = g_get_monotonic_time();
        {
                g_autofree char *text = agent_msg_text(welcome);
                soup_websocket_connection_send_text(ws, text);
        }
        json_object_unref(welcome);
}

void agentlink_install(SoupServer *soup, ServeContext *serve_context, gpointer agents)
{
        soup_server_add_handler(soup, AGENT_LINK_PATH, link_auth, serve_context, NULL);
        soup_server_add_websocket_handler(soup, AGENT_LINK_PATH, NULL, NULL, link_open,
                                          serve_context, NULL);
}

/* ---- life -------------------------------------------------------------------------------- */

Agents *agentlink_new(Manager *mgr)
{
        Agents *ag = g_new0(Agents, 1);

        ag->mgr = mgr;
        g_mutex_init(&ag->lock);
        ag->links = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify)link_unref);
        ag->seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        ag->idle = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        ag->alive = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        ag->kept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        ag->pending = g_hash_table_new(g_str_hash, g_str_equal);
        ag->started = g_get_monotonic_time();
        ag->listeners = g_array_new(FALSE, FALSE, sizeof(Listener));
        ag->monitor = g_timeout_source_new(1000);
        g_source_set_callback(ag->monitor, monitor_tick, ag, NULL);
        g_source_attach(ag->monitor, g_main_context_default());
        return ag;
}

void agentlink_free(Agents *ag)
{
        if (!ag)
                return;
        g_source_destroy(ag->monitor);
        g_source_unref(ag->monitor);
        g_hash_table_destroy(ag->links);
        g_hash_table_destroy(ag->seen);
        g_hash_table_destroy(ag->idle);
        g_hash_table_destroy(ag->alive);
        g_hash_table_destroy(ag->kept);
        g_hash_table_destroy(ag->pending); /* pending ones are freed by their timeout */
        g_array_unref(ag->listeners);
        g_mutex_clear(&ag->lock);
        g_free(ag);
}
