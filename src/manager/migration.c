/* Live migration and draining hosts: see migration.h. */
#define G_LOG_DOMAIN "migration"

#include "manager/migration.h"
#include "manager/tunnels.h"
#include "manager/hostcmd.h"
#include "manager/operations.h"
#include "manager/placement.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/util.h"
#include "proto/agentproto.h"

#include <string.h>

static const Actor system_actor = {"system", 0, ""};

/* One migration this manager started (or found running when it started). */
typedef struct {
        Migrations *m;
        char *kind, *name, *domain, *from_name, *to_name, *to_address;
        gint64 id, op_id, from, to, epoch, old_epoch;
        gint64 started; /* monotonic */
        gint64 drain_op; /* the drain it serves, or 0 */
        guint resolve_tries;
        gboolean asked_destination;
        gboolean rebalance; /* begun by the rebalance policy */
        gboolean switched;  /* its destination reported the copy running: placed there */
} Mig;

/* What a drain remembers between its passes (its operation's row says the rest). */
typedef struct {
        gint64 op_id;
        gboolean force;
        guint moved;
        GHashTable *stuck;  /* "kind:id" -> why it stays */
        GHashTable *forced; /* "kind:id" of what could not move and was shut down (force) */
        gboolean cancelled;
} Drain;

struct _Migrations {
        Manager *mgr;
        Store *store; /* the thread's */
        GMainContext *ctx;
        GMainLoop *loop;
        GThread *thread;
        GMutex lock;          /* active, drains (read from API and link threads) */
        GHashTable *active;   /* "kind:id" -> Mig */
        GHashTable *drains;   /* drain op id -> Drain */
        gboolean swept;
        gint64 created;        /* monotonic */
        gint64 next_rebalance; /* monotonic */
};

static void mig_free(Mig *g)
{
        g_free(g->kind);
        g_free(g->name);
        g_free(g->domain);
        g_free(g->from_name);
        g_free(g->to_name);
        g_free(g->to_address);
        g_free(g);
}

static void drain_free(Drain *d)
{
        g_hash_table_unref(d->stuck);
        g_hash_table_unref(d->forced);
        g_free(d);
}

/* The drain op_id, made when this manager has none (m->lock held). */
static Drain *drain_get(Migrations *m, gint64 op_id)
{
        Drain *d = g_hash_table_lookup(m->drains, &op_id);

        if (d)
                return d;
        d = g_new0(Drain, 1);
        d->op_id = op_id;
        d->stuck = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        d->forced = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(m->drains, g_memdup2(&op_id, sizeof op_id), d);
        return d;
}

static char *key_of(const char *kind, gint64 id)
{
        return g_strdup_printf("%s:%" G_GINT64_FORMAT, kind, id);
}

static gboolean running(const char *kind, JsonObject *row)
{
        return g_str_equal(kind, "desktop") ? row_desktop_state(row) == DESKTOP_RUNNING
                                            : g_str_equal(row_str(row, "state"),
                                                          vm_state_to_string(VM_RUNNING));
}

/* Memory the object needs, its volume's path and its pool's host hint. */
static gboolean needs(Store *st, const char *kind, JsonObject *row, gint64 *ram_mb, char **path,
                      char **hint, GError **error)
{
        g_autoptr(JsonObject) vol = NULL, ver = NULL, pool = NULL;

        if (g_str_equal(kind, "desktop")) {
                if (!(ver = row_get(st, "template-version", row_ref(row, "template_version_id"),
                                    error)) ||
                    !(pool = row_get(st, "pool", row_ref(row, "pool_id"), error)))
                        return FALSE;
                *ram_mb = row_int(ver, "ram_mb");
                *hint = g_strdup(row_str(pool, "hosts"));
        } else {
                *ram_mb = row_int(row, "ram_mb");
                *hint = g_strdup("");
        }
        if (!(vol = row_get(st, "volume", row_ref(row, "volume_id"), error)))
                return FALSE;
        *path = g_strdup(row_str(vol, "path"));
        return TRUE;
}

/* Where the object may go: the named host after checks that say what is wrong with it, or
 * the scheduler's choice among the others. */
static JsonObject *destination(Manager *mgr, Store *st, const char *kind, JsonObject *row,
                               JsonObject *src, const char *to, GError **error)
{
        const char *name = row_str(row, "name");
        g_autofree char *path = NULL, *hint = NULL;
        g_autoptr(JsonArray) hosts = NULL;
        g_autofree SchedHost *sh = NULL;
        g_autoptr(GPtrArray) cand = g_ptr_array_new();
        gint64 ram = 0;
        SchedRequest r;
        gint at;

        if (!needs(st, kind, row, &ram, &path, &hint, error))
                return NULL;
        if (to) {
                g_autoptr(JsonObject) dst = store_get(st, resource_by_kind("host"), to, 0, error);
                if (!dst)
                        return NULL;
                if (row_int(dst, "id") == row_int(src, "id")) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "%s '%s' runs on host %s already", kind, name,
                                    row_str(dst, "name"));
                        return NULL;
                }
                if (row_bool(dst, "maintenance")) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "host %s is in maintenance: nothing is placed there",
                                    row_str(dst, "name"));
                        return NULL;
                }
                if (row_host_state(dst) != HOST_UP ||
                    !agentlink_linked(mgr->agents, row_int(dst, "id"))) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "host %s is %s: it cannot take %s '%s'", row_str(dst, "name"),
                                    row_host_state(dst) == HOST_UP ? "not linked"
                                                                   : row_str(dst, "state"),
                                    kind, name);
                        return NULL;
                }
                if (placement_host_says_unreachable(dst, path)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "host %s does not reach the volume %s that holds the disk of "
                                    "%s '%s'",
                                    row_str(dst, "name"), path, kind, name);
                        return NULL;
                }
                hosts = json_array_new();
                json_array_add_object_element(hosts, g_steal_pointer(&dst));
                hint = g_strdup(""); /* an admin's choice overrides the pool's hint */
        } else if (!(hosts = store_list_all(st, resource_by_kind("host"), NULL, error))) {
                return NULL;
        }
        for (guint i = 0; i < json_array_get_length(hosts); i++) {
                JsonObject *h = json_array_get_object_element(hosts, i);
                if (row_int(h, "id") != row_int(src, "id"))
                        g_ptr_array_add(cand, h);
        }
        sh = g_new0(SchedHost, MAX(cand->len, 1));
        for (guint i = 0; i < cand->len; i++)
                placement_sched_host(mgr, cand->pdata[i], path, &sh[i]);
        placement_sched_request(mgr, ram, hint, &r);
        if (cand->len == 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "no other host can take %s '%s': host %s is the only one", kind, name,
                            row_str(src, "name"));
                return NULL;
        }
        at = scheduler_place(sh, cand->len, &r, error);
        if (at < 0) {
                (*error)->code = ATRIUM_ERROR_CONFLICT;
                g_prefix_error(error, "%s '%s' cannot move: ", kind, name);
                return NULL;
        }
        return json_object_ref(cand->pdata[at]);
}

/* ---- the migrations' thread -------------------------------------------------------------- */

static void finish(Mig *g, gboolean switched, const char *why);
static void resolve(Mig *g);
static void on_landed(JsonObject *result, const GError *error, gpointer data);

static void active_remove(Mig *g)
{
        g_autofree char *key = key_of(g->kind, g->id);
        Migrations *m = g->m;

        agentlink_keep(m->mgr->agents, g->from, g->domain, g->old_epoch, FALSE);
        g_mutex_lock(&m->lock);
        g_hash_table_remove(m->active, key); /* frees g */
        g_mutex_unlock(&m->lock);
}

static void op_set(Store *st, gint64 op_id, OperationState state, gint64 percent,
                   const char *message)
{
        g_autoptr(JsonObject) op = row_get(st, "operation", op_id, NULL);

        if (op && row_operation_state(op) == OPERATION_RUNNING)
                operations_set(st, op, state, percent, message);
}

static void drain_note(Migrations *m, gint64 drain_op, const char *kind, gint64 id,
                       const char *why)
{
        Drain *d;

        g_mutex_lock(&m->lock);
        d = g_hash_table_lookup(m->drains, &drain_op);
        if (d && why)
                g_hash_table_replace(d->stuck, key_of(kind, id), g_strdup(why));
        else if (d)
                d->moved++;
        g_mutex_unlock(&m->lock);
}

/* After the switch-over: the destination's console ports on the row (its reports were not
 * the object's while it migrated). */
typedef struct {
        Migrations *m;
        char *kind;
        gint64 id, epoch;
} PortsAsk;

static void on_ports(JsonObject *result, const GError *error, gpointer data)
{
        PortsAsk *a = data;
        const Resource *res = resource_by_kind(a->kind);
        g_autoptr(JsonObject) row = store_get_id(a->m->store, res, a->id, 0, NULL);

        if (result && row && row_int(row, "epoch") == a->epoch && resource_field(res, "spice_port")) {
                g_autoptr(JsonObject) patch = json_object_new();
                g_autoptr(JsonObject) upd = NULL;
                json_object_set_int_member(patch, "spice_port", row_int(result, "spice_port"));
                json_object_set_int_member(patch, "vnc_port", row_int(result, "vnc_port"));
                upd = store_update_id(a->m->store, res, a->id, patch, NULL, NULL);
        } else if (error) {
                g_message("%s %" G_GINT64_FORMAT ": its new host's consoles: %s", a->kind, a->id,
                          error->message);
        }
        g_free(a->kind);
        g_free(a);
}

static void ports_ask(Mig *g)
{
        PortsAsk *a = g_new0(PortsAsk, 1);
        HostCall call = {g->m->mgr->agents, g->to, 15, on_ports, a};

        a->m = g->m;
        a->kind = g_strdup(g->kind);
        a->id = g->id;
        a->epoch = g->epoch;
        if (!hostcmd_send(&call, hostcmd_at_epoch(hostcmd_describe(g->domain), g->epoch), NULL)) {
                g_free(a->kind);
                g_free(a);
        }
}

/* The end of a migration: recorded on the object (placed there or left here), its operation,
 * an event, and the drain it served. */
static void finish(Mig *g, gboolean switched, const char *why)
{
        Migrations *m = g->m;
        const Resource *res = resource_by_kind(g->kind);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row = NULL;
        g_autofree char *detail = NULL, *action = NULL;
        gint64 ms = (g_get_monotonic_time() - g->started) / 1000;
        gboolean ended = store_migration_end(m->store, res, g->id, g->epoch, switched, &error);

        row = store_get_id(m->store, res, g->id, 0, NULL);
        if (!switched && !ended && row && row_int(row, "epoch") == g->epoch) {
                /* its copy ran on the destination first: it is there (the switch-over happened
                 * and the end failed afterwards) */
                switched = TRUE;
                why = NULL;
        }
        if (switched) {
                ports_ask(g);
                detail = g_strdup_printf("from %s to %s in %.1f s", g->from_name, g->to_name,
                                         ms / 1000.0);
                action = g_strdup_printf("%s_migrated", g->kind);
                op_set(m->store, g->op_id, OPERATION_DONE, 100, detail);
                g_info("%s %s migrated %s", g->kind, g->name, detail);
        } else {
                detail = g_strdup_printf("from %s to %s: %s; it runs on %s still", g->from_name,
                                         g->to_name, why, g->from_name);
                action = g_strdup_printf("%s_migration_failed", g->kind);
                op_set(m->store, g->op_id, OPERATION_FAILED, 100, detail);
                g_message("%s %s not migrated %s", g->kind, g->name, detail);
        }
        store_event_add(m->store, &system_actor, action, g->kind, g->id, g->name, detail, NULL);
        if (g->drain_op)
                drain_note(m, g->drain_op, g->kind, g->id, switched ? NULL : why);
        active_remove(g);
        manager_kick(m->mgr);
}

static void on_migrated(JsonObject *result, const GError *error, gpointer data)
{
        Mig *g = data;

        if (!error) {
                finish(g, TRUE, NULL);
                return;
        }
        if (error->code == ATRIUM_ERROR_UNAVAILABLE &&
            strstr(error->message, "no reply")) { /* the link, not the migration */
                resolve(g);
                return;
        }
        finish(g, FALSE, error->message);
}

/* ---- what happened to a migration whose answer was lost --------------------------------- */

static gboolean resolve_again(gpointer data)
{
        resolve(data);
        return G_SOURCE_REMOVE;
}

static void on_described(JsonObject *result, const GError *error, gpointer data)
{
        Mig *g = data;
        const Resource *res = resource_by_kind(g->kind);
        g_autoptr(JsonObject) row = store_get_id(g->m->store, res, g->id, 0, NULL);
        GSource *src;

        if (!row || row_int(row, "migrating_epoch") != g->epoch) {
                /* placed by its copy's report meanwhile, or gone */
                finish(g, row && row_int(row, "epoch") == g->epoch, "it is gone");
                return;
        }
        if (result && row_int(result, "epoch") == g->old_epoch &&
            domain_state_from_string(row_str(result, "state")) == DOMAIN_RUNNING) {
                finish(g, FALSE, "the source host lost track of the migration");
                return;
        }
        if (error && error->code == ATRIUM_ERROR_NOT_FOUND && !g->asked_destination) {
                /* gone from the source: did it land? */
                HostCall call = {g->m->mgr->agents, g->to, 15, on_landed, g};
                g_autoptr(GError) e = NULL;
                g->asked_destination = TRUE;
                if (hostcmd_send(&call, hostcmd_at_epoch(hostcmd_describe(g->domain), g->epoch), &e))
                        return;
        }
        g->asked_destination = FALSE;
        if (++g->resolve_tries > 60) {
                g_warning("%s %s: migration from %s to %s unresolved after a minute; its row "
                          "keeps the destination until one of them reports it",
                          g->kind, g->name, g->from_name, g->to_name);
                op_set(g->m->store, g->op_id, OPERATION_FAILED, 100,
                       "unresolved: neither host reports the desktop running");
                active_remove(g);
                return;
        }
        src = g_timeout_source_new_seconds(1);
        g_source_set_callback(src, resolve_again, g, NULL);
        g_source_attach(src, g->m->ctx);
        g_source_unref(src);
}

static void on_landed(JsonObject *result, const GError *error, gpointer data)
{
        Mig *g = data;

        if (result && row_int(result, "epoch") == g->epoch &&
            domain_state_from_string(row_str(result, "state")) == DOMAIN_RUNNING) {
                finish(g, TRUE, NULL);
                return;
        }
        on_described(NULL, NULL, g); /* neither yet: asked again in a second */
}

/* The source is asked (after a cancel of what may still run) whether the domain runs there
 * at its old epoch: then the migration failed; the destination's report at the new epoch
 * settles the other case. */
static void resolve(Mig *g)
{
        HostCall call = {g->m->mgr->agents, g->from, 15, on_described, g};
        g_autoptr(GError) error = NULL;

        if (g->resolve_tries == 0) {
                HostCall cancel = {g->m->mgr->agents, g->from, 15, NULL, NULL};
                hostcmd_send(&cancel, hostcmd_at_epoch(hostcmd_migrate_cancel(g->domain), g->old_epoch), NULL);
        }
        if (!hostcmd_send(&call, hostcmd_at_epoch(hostcmd_describe(g->domain), g->old_epoch), &error))
                on_described(NULL, error, g);
}

/* On the thread: the command goes to the source. */
static gboolean send_migrate(gpointer data)
{
        Mig *g = data;
        Manager *mgr = g->m->mgr;
        gint64 timeout = MCFG_INT(mgr, "migration_timeout");
        HostCall call = {mgr->agents, g->from, (guint)timeout + 60, on_migrated, g};
        g_autoptr(GError) error = NULL;

        if (!hostcmd_send(&call,
                          hostcmd_migrate(g->domain, g->to_address, g->epoch, timeout,
                                          MCFG_INT(mgr, "migration_max_downtime_ms"),
                                          MCFG_INT(mgr, "migration_bandwidth")),
                          &error))
                finish(g, FALSE, error->message);
        return G_SOURCE_REMOVE;
}

/* Claims the migration of row (on st, any thread) and hands it to the thread. */
static JsonObject *begin(Manager *mgr, Store *st, const char *kind, JsonObject *row,
                         const char *to, gint64 drain_op, const Actor *actor, GError **error)
{
        Migrations *m = mgr->migrations;
        const Resource *res = resource_by_kind(kind);
        const char *name = row_str(row, "name");
        g_autoptr(JsonObject) src = NULL, dst = NULL, op = NULL;
        g_autofree char *key = NULL, *detail = NULL, *action = NULL;
        gint64 from = row_ref(row, "host_id"), epoch, op_id;
        Mig *g;

        if (!m) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the manager is starting or stopping");
                return NULL;
        }
        if (row_ref(row, "migrating_to_id")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "%s '%s' is migrating already (to host %s)", kind, name,
                            row_str(row, "migrating_to"));
                return NULL;
        }
        if (!running(kind, row) || !from) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "%s '%s' is %s: only a running %s migrates (a stopped one starts "
                            "wherever there is room)",
                            kind, name, row_str(row, "state"), kind);
                return NULL;
        }
        if (g_str_equal(kind, "guest") && row_str(row, "block_device")[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "guest '%s' has a block device of its host (%s): it cannot move",
                            name, row_str(row, "block_device"));
                return NULL;
        }
        if (!(src = row_get(st, "host", from, error)))
                return NULL;
        if (!agentlink_linked(mgr->agents, from)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "host %s of %s '%s' is not linked: it cannot send it", row_str(src, "name"),
                            kind, name);
                return NULL;
        }
        if (!(dst = destination(mgr, st, kind, row, src, to, error)))
                return NULL;
        if (!(epoch = store_migration_begin(st, res, row_int(row, "id"), from, row_int(row, "epoch"),
                                            row_int(dst, "id"), error))) {
                g_prefix_error(error, "%s '%s': ", kind, name);
                return NULL;
        }
        op_id = operations_start(st, "migrate", kind, row_int(row, "id"), name, actor);
        detail = g_strdup_printf("from %s to %s", row_str(src, "name"), row_str(dst, "name"));
        action = g_strdup_printf("%s_migrating", kind);
        store_event_add(st, actor, action, kind, row_int(row, "id"), name, detail, NULL);
        g = g_new0(Mig, 1);
        g->m = m;
        g->kind = g_strdup(kind);
        g->id = row_int(row, "id");
        g->name = g_strdup(name);
        g->domain = agent_domain_name(mgr->installation, kind, g->id);
        g->from = from;
        g->from_name = g_strdup(row_str(src, "name"));
        g->to = row_int(dst, "id");
        g->to_name = g_strdup(row_str(dst, "name"));
        g->to_address = g_strdup(row_str(dst, "address"));
        g->epoch = epoch;
        g->old_epoch = row_int(row, "epoch");
        g->op_id = op_id;
        g->drain_op = drain_op;
        g->started = g_get_monotonic_time();
        key = key_of(kind, g->id);
        g_mutex_lock(&m->lock);
        g_hash_table_replace(m->active, g_steal_pointer(&key), g);
        g_mutex_unlock(&m->lock);
        if (op_id) {
                g_autofree char *msg = g_strdup_printf("to host %s: starting", g->to_name);
                op = row_get(st, "operation", op_id, NULL);
                if (op)
                        operations_set(st, op, OPERATION_RUNNING, 0, msg);
        }
        g_main_context_invoke(m->ctx, send_migrate, g);
        return op_id ? row_get(st, "operation", op_id, error) : json_object_new();
}

JsonObject *migration_start(Manager *mgr, Store *st, const char *kind, const char *id_or_name,
                            const char *to, const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) row = store_get(st, resource_by_kind(kind), id_or_name, 0, error);

        return row ? begin(mgr, st, kind, row, to, 0, actor, error) : NULL;
}

/* ---- progress (link threads) ------------------------------------------------------------- */

/* The switch-over: the destination runs the copy (libvirt's Finish resumed it; libvirt reports
 * an incoming copy paused until then, and after it the source never runs again: its Confirm
 * only stops it). The object is placed there now, with the copy's console ports, not when the
 * source's libvirt call returns (a second or two later: it waits for the source's QEMU to end),
 * so consoles reconnect to it at once; the source's reports of the old epoch are not acted on
 * until then (agentlink_keep). */
static void switch_over(Migrations *m, const LinkEvent *ev, gint64 from, const char *domain,
                        gint64 old_epoch)
{
        const Resource *res = resource_by_kind(ev->kind);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) patch = json_object_new(), upd = NULL;

        agentlink_keep(m->mgr->agents, from, domain, old_epoch, TRUE);
        if (!store_migration_end(ev->store, res, ev->id, ev->epoch, TRUE, &error)) {
                if (error)
                        g_message("%s %" G_GINT64_FORMAT ": its switch-over not recorded yet: %s",
                                  ev->kind, ev->id, error->message);
                return; /* ended meanwhile, or recorded at the migration's end */
        }
        if (resource_field(res, "spice_port")) {
                json_object_set_int_member(patch, "spice_port", row_int(ev->msg, "spice_port"));
                json_object_set_int_member(patch, "vnc_port", row_int(ev->msg, "vnc_port"));
                upd = store_update_id(ev->store, res, ev->id, patch, NULL, NULL);
        }
        g_info("%s %" G_GINT64_FORMAT ": switched over to host %s", ev->kind, ev->id, ev->host_name);
        manager_kick(m->mgr);
}

/* The destination reported the copy: paused (its QEMU started, waiting for the memory), a SPICE
 * client connected to the desktop may follow it there (tunnels.h; the gateway admits that
 * target for this desktop's tickets only); running, the switch-over happened. */
static void arriving(Migrations *m, const LinkEvent *ev)
{
        g_autofree char *key = key_of(ev->kind, ev->id), *address = NULL, *domain = NULL;
        gint64 port = row_int(ev->msg, "spice_port"), from = 0, old_epoch = 0;
        gboolean runs = domain_state_from_string(row_str(ev->msg, "state")) == DOMAIN_RUNNING;
        Mig *g;

        g_mutex_lock(&m->lock);
        g = g_hash_table_lookup(m->active, key);
        if (g && g->to == ev->host_id && g->epoch == ev->epoch) {
                address = g_strdup(g->to_address);
                if (runs && !g->switched) {
                        g->switched = TRUE;
                        from = g->from;
                        old_epoch = g->old_epoch;
                        domain = g_strdup(g->domain);
                }
        }
        g_mutex_unlock(&m->lock);
        if (domain)
                switch_over(m, ev, from, domain, old_epoch);
        if (address && address[0] && g_str_equal(ev->kind, "desktop") && port > 0 &&
            port <= G_MAXUINT16)
                tunnels_move(ev->id, ev->epoch, "spice", address, (guint16)port);
}

void migrations_on_link(Agents *ag, const LinkEvent *ev, gpointer data)
{
        Manager *mgr = data;
        Migrations *m = mgr->migrations;
        g_autofree char *key = NULL, *msg = NULL;
        g_autoptr(JsonObject) patch = NULL, upd = NULL;
        gint64 op_id = 0, rem, total;
        Mig *g;

        if (ev->type == LINK_ARRIVING && m) {
                arriving(m, ev);
                return;
        }
        if (ev->type != LINK_MIGRATION || !m)
                return;
        key = key_of(ev->kind, ev->id);
        g_mutex_lock(&m->lock);
        g = g_hash_table_lookup(m->active, key);
        if (g && g->from == ev->host_id)
                op_id = g->op_id;
        g_mutex_unlock(&m->lock);
        if (!op_id)
                return;
        rem = row_int(ev->msg, "data_remaining");
        total = row_int(ev->msg, "data_total");
        msg = g_strdup_printf("sending memory: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                              " MiB left, pass %" G_GINT64_FORMAT,
                              rem >> 20, total >> 20, row_int(ev->msg, "iteration"));
        patch = json_object_new();
        json_object_set_int_member(patch, "percent", CLAMP(row_int(ev->msg, "percent"), 0, 99));
        json_object_set_int_member(patch, "bytes_total", total);
        json_object_set_int_member(patch, "bytes_remaining", rem);
        json_object_set_int_member(patch, "iteration", row_int(ev->msg, "iteration"));
        json_object_set_string_member(patch, "message", msg);
        upd = store_update_id(ev->store, resource_by_kind("operation"), op_id, patch, NULL, NULL);
}

/* ---- cancel ------------------------------------------------------------------------------ */

static void on_cancelled(JsonObject *result, const GError *error, gpointer data)
{
        g_autofree char *domain = data;

        if (error)
                g_message("%s: cancel: %s", domain, error->message);
}

gboolean migration_cancel(Manager *mgr, Store *st, JsonObject *op, const Actor *actor,
                          GError **error)
{
        Migrations *m = mgr->migrations;
        const char *kind = row_str(op, "kind");
        gint64 from = 0, epoch = 0, op_id = row_int(op, "id");
        g_autofree char *domain = NULL, *key = NULL;

        if (row_operation_state(op) != OPERATION_RUNNING) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "operation %" G_GINT64_FORMAT " has ended (%s)", op_id,
                            row_str(op, "state"));
                return FALSE;
        }
        if (!m) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the manager is starting or stopping");
                return FALSE;
        }
        if (g_str_equal(kind, "drain")) {
                Drain *d;
                g_mutex_lock(&m->lock);
                d = g_hash_table_lookup(m->drains, &op_id);
                if (d)
                        d->cancelled = TRUE;
                g_mutex_unlock(&m->lock);
                if (!d)
                        op_set(st, op_id, OPERATION_FAILED, row_int(op, "percent"),
                               "cancelled; the host stays in maintenance");
                return TRUE;
        }
        if (!g_str_equal(kind, "migrate")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "a %s operation cannot be cancelled (only migrate and drain)", kind);
                return FALSE;
        }
        key = key_of(row_str(op, "object_kind"), row_int(op, "object_id"));
        g_mutex_lock(&m->lock);
        {
                Mig *g = g_hash_table_lookup(m->active, key);
                if (g && g->op_id == op_id) {
                        from = g->from;
                        epoch = g->old_epoch;
                        domain = g_strdup(g->domain);
                }
        }
        g_mutex_unlock(&m->lock);
        if (!domain) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "migration %" G_GINT64_FORMAT " is ending already", op_id);
                return FALSE;
        }
        {
                HostCall call = {mgr->agents, from, 15, on_cancelled, g_strdup(domain)};
                if (!hostcmd_send(&call, hostcmd_at_epoch(hostcmd_migrate_cancel(domain), epoch),
                                  error)) {
                        g_free(call.data);
                        return FALSE;
                }
        }
        store_event_add(st, actor, "migration_cancel", row_str(op, "object_kind"),
                        row_int(op, "object_id"), row_str(op, "object_name"),
                        "the migration is being cancelled", NULL);
        return TRUE;
}

/* ---- drains ------------------------------------------------------------------------------ */

JsonObject *migration_drain(Manager *mgr, Store *st, JsonObject *host, gboolean force,
                            const Actor *actor, GError **error)
{
        Migrations *m = mgr->migrations;
        g_autoptr(GHashTable) f = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonArray) ops = NULL;
        gint64 op_id = 0;
        Drain *d;

        if (!m) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the manager is starting or stopping");
                return NULL;
        }
        g_hash_table_insert(f, (gpointer) "kind", (gpointer) "drain");
        g_hash_table_insert(f, (gpointer) "state",
                            (gpointer)operation_state_to_string(OPERATION_RUNNING));
        ops = store_list_all(st, resource_by_kind("operation"), f, error);
        if (!ops)
                return NULL;
        for (guint i = 0; i < json_array_get_length(ops); i++) {
                JsonObject *o = json_array_get_object_element(ops, i);
                if (row_int(o, "object_id") == row_int(host, "id"))
                        op_id = row_int(o, "id");
        }
        if (!op_id &&
            !(op_id = operations_start(st, "drain", "host", row_int(host, "id"),
                                       row_str(host, "name"), actor))) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot record the drain of host %s", row_str(host, "name"));
                return NULL;
        }
        g_mutex_lock(&m->lock);
        d = drain_get(m, op_id);
        d->force |= force;
        d->cancelled = FALSE;
        g_mutex_unlock(&m->lock);
        return row_get(st, "operation", op_id, error);
}

/* The reply to a forced drain's shutdown: a refusal makes the object stay, with why. */
typedef struct {
        Migrations *m;
        gint64 drain_op;
        char *key;
        char *name;
} ForcedShutdown;

static void forced_shutdown_done(JsonObject *result, const GError *error, gpointer data)
{
        ForcedShutdown *f = data;
        Drain *d;

        (void)result;
        if (error) {
                g_mutex_lock(&f->m->lock);
                d = g_hash_table_lookup(f->m->drains, &f->drain_op);
                if (d) {
                        g_hash_table_remove(d->forced, f->key);
                        g_hash_table_replace(d->stuck, g_strdup(f->key),
                                             g_strdup_printf("'%s' could not be shut down: %s",
                                                             f->name, error->message));
                }
                g_mutex_unlock(&f->m->lock);
        }
        g_free(f->key);
        g_free(f->name);
        g_free(f);
}

/* How many migrations run from host. */
static guint from_host(Migrations *m, gint64 host)
{
        GHashTableIter it;
        gpointer v;
        guint n = 0;

        g_mutex_lock(&m->lock);
        g_hash_table_iter_init(&it, m->active);
        while (g_hash_table_iter_next(&it, NULL, &v))
                n += ((Mig *)v)->from == host;
        g_mutex_unlock(&m->lock);
        return n;
}

static void drain_pass(Migrations *m, JsonObject *op)
{
        static const char *const kinds[] = {"desktop", "guest"};
        gint64 op_id = row_int(op, "id"), hid = row_int(op, "object_id");
        guint limit = MCFG_INT(m->mgr, "migrations_per_host");
        g_autoptr(JsonObject) host = row_get(m->store, "host", hid, NULL);
        g_autoptr(GString) stays = g_string_new(NULL);
        guint left = 0, moving, moved, nstuck, nforced;
        gboolean force, cancelled;
        g_autofree char *msg = NULL;
        Drain *d;

        g_mutex_lock(&m->lock);
        d = drain_get(m, op_id); /* new too when a previous manager began it */
        force = d->force;
        cancelled = d->cancelled;
        g_mutex_unlock(&m->lock);
        if (!host || !row_bool(host, "maintenance") || cancelled) {
                op_set(m->store, op_id, OPERATION_FAILED, row_int(op, "percent"),
                       !host      ? "the host is gone"
                       : cancelled ? "cancelled; the host stays in maintenance"
                                   : "the host left maintenance before it was empty");
                g_mutex_lock(&m->lock);
                g_hash_table_remove(m->drains, &op_id);
                g_mutex_unlock(&m->lock);
                return;
        }
        moving = from_host(m, hid);
        for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
                const Resource *res = resource_by_kind(kinds[k]);
                g_autoptr(GHashTable) f =
                        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
                g_autoptr(JsonArray) rows = NULL;

                g_hash_table_insert(f, (gpointer) "host", util_id_text(hid));
                rows = store_list_all(m->store, res, f, NULL);
                for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                        JsonObject *o = json_array_get_object_element(rows, i);
                        g_autofree char *key = key_of(kinds[k], row_int(o, "id"));
                        g_autoptr(GError) error = NULL;
                        g_autoptr(JsonObject) started = NULL;
                        const char *why;
                        gboolean shut;
                        const char *st = row_str(o, "state");

                        if (row_ref(o, "migrating_to_id") ||
                            g_str_equal(st, "stopped") || g_str_equal(st, "failed") ||
                            g_str_equal(st, "unavailable"))
                                continue; /* on its way, or nothing runs */
                        g_mutex_lock(&m->lock);
                        why = g_hash_table_lookup(d->stuck, key);
                        shut = g_hash_table_contains(d->forced, key);
                        g_mutex_unlock(&m->lock);
                        if (why)
                                continue;
                        left++;
                        if (shut)
                                continue; /* shutting down (force): wait for it to stop */
                        if (!running(kinds[k], o) || moving >= limit)
                                continue; /* starting, stopping, provisioning: later */
                        started = begin(m->mgr, m->store, kinds[k], o, NULL, op_id,
                                        &system_actor, &error);
                        if (started) {
                                moving++;
                                continue;
                        }
                        if (force) {
                                g_autofree char *dom =
                                        agent_domain_name(m->mgr->installation, kinds[k], row_int(o, "id"));
                                ForcedShutdown *fs = g_new0(ForcedShutdown, 1);
                                HostCall call = {m->mgr->agents, hid, 90, forced_shutdown_done,
                                                 fs};
                                fs->m = m;
                                fs->drain_op = op_id;
                                fs->key = g_strdup(key);
                                fs->name = g_strdup(row_str(o, "name"));
                                g_mutex_lock(&m->lock);
                                g_hash_table_add(d->forced, g_steal_pointer(&key));
                                g_mutex_unlock(&m->lock);
                                if (!hostcmd_send(&call, hostcmd_shutdown(dom, 60, TRUE),
                                                  &error))
                                        forced_shutdown_done(NULL, error, fs);
                        } else {
                                left--;
                                drain_note(m, op_id, kinds[k], row_int(o, "id"), error->message);
                        }
                }
        }
        g_mutex_lock(&m->lock);
        moved = d->moved;
        nstuck = g_hash_table_size(d->stuck);
        nforced = g_hash_table_size(d->forced);
        {
                GHashTableIter it;
                gpointer v;
                g_hash_table_iter_init(&it, d->stuck);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        g_string_append_printf(stays, "%s%s", stays->len ? "; " : "",
                                               (const char *)v);
        }
        g_mutex_unlock(&m->lock);
        if (left == 0 && moving == 0) {
                if (nstuck == 0) {
                        msg = nforced ? g_strdup_printf("host %s is empty: %u moved, %u shut down "
                                                        "(forced)",
                                                        row_str(host, "name"), moved, nforced)
                                      : g_strdup_printf("host %s is empty: %u moved",
                                                        row_str(host, "name"), moved);
                        op_set(m->store, op_id, OPERATION_DONE, 100, msg);
                } else {
                        msg = g_strdup_printf("%u moved; %u stay: %s", moved, nstuck, stays->str);
                        op_set(m->store, op_id, OPERATION_FAILED, 100, msg);
                }
                g_mutex_lock(&m->lock);
                g_hash_table_remove(m->drains, &op_id);
                g_mutex_unlock(&m->lock);
                return;
        }
        msg = g_strdup_printf("%u moved, %u to go (%u migrating)%s%s", moved, left, moving,
                              nstuck ? "; staying: " : "", stays->str);
        op_set(m->store, op_id, OPERATION_RUNNING, moved * 100 / MAX(moved + left + nstuck, 1),
               msg);
}

/* Migrations recorded on rows that no migration of this manager follows (it restarted):
 * resolved with their source. */
static void sweep(Migrations *m)
{
        static const char *const kinds[] = {"desktop", "guest"};

        for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
                g_autoptr(JsonArray) rows =
                        store_list_all(m->store, resource_by_kind(kinds[k]), NULL, NULL);
                for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                        JsonObject *o = json_array_get_object_element(rows, i);
                        g_autofree char *key = NULL;
                        g_autoptr(JsonObject) src = NULL, dst = NULL;
                        Mig *g;
                        if (!row_ref(o, "migrating_to_id"))
                                continue;
                        key = key_of(kinds[k], row_int(o, "id"));
                        g_mutex_lock(&m->lock);
                        g = g_hash_table_lookup(m->active, key);
                        g_mutex_unlock(&m->lock);
                        if (g)
                                continue;
                        src = row_get(m->store, "host", row_ref(o, "host_id"), NULL);
                        dst = row_get(m->store, "host", row_ref(o, "migrating_to_id"), NULL);
                        g = g_new0(Mig, 1);
                        g->m = m;
                        g->kind = g_strdup(kinds[k]);
                        g->id = row_int(o, "id");
                        g->name = g_strdup(row_str(o, "name"));
                        g->domain = agent_domain_name(m->mgr->installation, kinds[k], g->id);
                        g->from = row_ref(o, "host_id");
                        g->from_name = g_strdup(src ? row_str(src, "name") : "?");
                        g->to = row_ref(o, "migrating_to_id");
                        g->to_name = g_strdup(dst ? row_str(dst, "name") : "?");
                        g->to_address = g_strdup(dst ? row_str(dst, "address") : "");
                        g->epoch = row_int(o, "migrating_epoch");
                        g->old_epoch = row_int(o, "epoch");
                        g->started = g_get_monotonic_time();
                        g_mutex_lock(&m->lock);
                        g_hash_table_replace(m->active, g_steal_pointer(&key), g);
                        g_mutex_unlock(&m->lock);
                        {
                                g_autoptr(GHashTable) f = g_hash_table_new(g_str_hash, g_str_equal);
                                g_autoptr(JsonArray) ops = NULL;
                                g_hash_table_insert(f, (gpointer) "kind", (gpointer) "migrate");
                                g_hash_table_insert(f, (gpointer) "state",
                                                    (gpointer)operation_state_to_string(OPERATION_RUNNING));
                                ops = store_list_all(m->store, resource_by_kind("operation"), f, NULL);
                                for (guint j = 0; ops && j < json_array_get_length(ops); j++) {
                                        JsonObject *op = json_array_get_object_element(ops, j);
                                        if (row_int(op, "object_id") == g->id &&
                                            g_str_equal(row_str(op, "object_kind"), g->kind))
                                                g->op_id = row_int(op, "id");
                                }
                        }
                        g_message("%s %s: a migration from %s to %s was under way when the "
                                  "manager stopped; asking %s",
                                  g->kind, g->name, g->from_name, g->to_name, g->from_name);
                        resolve(g);
                }
        }
}

/* ---- rebalance ([scheduler] rebalance) ----------------------------------------------------- */

#define REBALANCE_EVERY_US (10 * G_USEC_PER_SEC)
static const Actor rebalance_actor = {"rebalance", 0, ""};

/* The usable host (up, out of maintenance, linked) in counts with the most (most: TRUE) or
 * the fewest running desktops; 0 when there is none. */
static gint64 host_by_count(GHashTable *counts, gboolean most, guint *n)
{
        GHashTableIter it;
        gpointer k, v;
        gint64 best = 0;

        g_hash_table_iter_init(&it, counts);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                guint c = GPOINTER_TO_UINT(v);
                gint64 h = *(gint64 *)k;
                if (!best || (most ? c > *n : c < *n) || (c == *n && h < best)) {
                        best = h;
                        *n = c;
                }
        }
        return best;
}

/* Idle running desktops (no console open) move from the host running the most desktops to
 * the one running the fewest while they differ by two or more, rebalance_max at once. */
static void rebalance(Migrations *m)
{
        Manager *mgr = m->mgr;
        guint max = (guint)config_get_int(mgr->config, "scheduler", "rebalance_max");
        guint inflight = 0;
        g_autoptr(GHashTable) counts = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        g_autoptr(GHashTable) names = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        g_autoptr(JsonArray) hosts = NULL, desktops = NULL;
        g_autoptr(GHashTable) f = g_hash_table_new(g_str_hash, g_str_equal);
        GHashTableIter it;
        gpointer v;

        if (!config_get_bool(mgr->config, "scheduler", "rebalance") ||
            g_get_monotonic_time() < m->next_rebalance)
                return;
        m->next_rebalance = g_get_monotonic_time() + REBALANCE_EVERY_US;
        g_mutex_lock(&m->lock);
        g_hash_table_iter_init(&it, m->active);
        while (g_hash_table_iter_next(&it, NULL, &v))
                inflight += ((Mig *)v)->rebalance;
        g_mutex_unlock(&m->lock);
        if (inflight >= max || g_hash_table_size(m->drains))
                return; /* a drain moves desktops already */
        hosts = store_list_all(m->store, resource_by_kind("host"), NULL, NULL);
        for (guint i = 0; hosts && i < json_array_get_length(hosts); i++) {
                JsonObject *h = json_array_get_object_element(hosts, i);
                gint64 id = row_int(h, "id");
                if (!g_str_equal(row_str(h, "state"), "up") || row_bool(h, "maintenance") ||
                    !agentlink_linked(mgr->agents, id))
                        continue;
                g_hash_table_insert(counts, g_memdup2(&id, sizeof id), GUINT_TO_POINTER(0));
                g_hash_table_insert(names, g_memdup2(&id, sizeof id), g_strdup(row_str(h, "name")));
        }
        if (g_hash_table_size(counts) < 2)
                return;
        g_hash_table_insert(f, (gpointer) "state", (gpointer) "running");
        desktops = store_list_all(m->store, resource_by_kind("desktop"), f, NULL);
        for (guint i = 0; desktops && i < json_array_get_length(desktops); i++) {
                JsonObject *d = json_array_get_object_element(desktops, i);
                /* one on its way counts where it goes */
                gint64 h = row_ref(d, "migrating_to_id") ? row_ref(d, "migrating_to_id")
                                                         : row_ref(d, "host_id");
                gpointer c;
                if (g_hash_table_lookup_extended(counts, &h, NULL, &c))
                        g_hash_table_insert(counts, g_memdup2(&h, sizeof h),
                                            GUINT_TO_POINTER(GPOINTER_TO_UINT(c) + 1));
        }
        while (inflight < max) {
                guint most = 0, fewest = 0;
                gint64 from = host_by_count(counts, TRUE, &most);
                gint64 to = host_by_count(counts, FALSE, &fewest);
                gboolean moved = FALSE;

                if (!from || !to || from == to || most < fewest + 2)
                        return;
                for (guint i = 0; desktops && i < json_array_get_length(desktops) && !moved; i++) {
                        JsonObject *d = json_array_get_object_element(desktops, i);
                        g_autoptr(GError) error = NULL;
                        g_autoptr(JsonObject) op = NULL;
                        g_autofree char *key = NULL;
                        if (row_ref(d, "host_id") != from || row_ref(d, "migrating_to_id") ||
                            tunnels_open(row_int(d, "id")) > 0)
                                continue;
                        op = begin(mgr, m->store, "desktop", d, g_hash_table_lookup(names, &to),
                                   0, &rebalance_actor, &error);
                        if (!op) {
                                g_debug("rebalance: %s stays: %s", row_str(d, "name"),
                                        error->message);
                                continue;
                        }
                        key = key_of("desktop", row_int(d, "id"));
                        g_mutex_lock(&m->lock);
                        {
                                Mig *g = g_hash_table_lookup(m->active, key);
                                if (g)
                                        g->rebalance = TRUE;
                        }
                        g_mutex_unlock(&m->lock);
                        g_message("rebalance: %s moves from %s (%u running) to %s (%u)",
                                  row_str(d, "name"),
                                  (const char *)g_hash_table_lookup(names, &from), most,
                                  (const char *)g_hash_table_lookup(names, &to), fewest);
                        json_object_set_int_member(d, "migrating_to_id", to); /* taken */
                        g_hash_table_insert(counts, g_memdup2(&from, sizeof from),
                                            GUINT_TO_POINTER(most - 1));
                        g_hash_table_insert(counts, g_memdup2(&to, sizeof to),
                                            GUINT_TO_POINTER(fewest + 1));
                        inflight++;
                        moved = TRUE;
                }
                if (!moved)
                        return; /* nothing idle can move from the busiest host */
        }
}

static gboolean on_tick(gpointer data)
{
        Migrations *m = data;
        g_autoptr(GHashTable) f = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonArray) ops = NULL;

        /* after the agents have had time to link again */
        if (!m->swept && g_get_monotonic_time() - m->created > 15 * G_USEC_PER_SEC) {
                m->swept = TRUE;
                sweep(m);
        }
        g_hash_table_insert(f, (gpointer) "kind", (gpointer) "drain");
        g_hash_table_insert(f, (gpointer) "state",
                            (gpointer)operation_state_to_string(OPERATION_RUNNING));
        ops = store_list_all(m->store, resource_by_kind("operation"), f, NULL);
        for (guint i = 0; ops && i < json_array_get_length(ops); i++)
                drain_pass(m, json_array_get_object_element(ops, i));
        rebalance(m);
        return G_SOURCE_CONTINUE;
}

static gpointer thread_main(gpointer data)
{
        Migrations *m = data;
        GSource *tick = g_timeout_source_new(500);

        g_main_context_push_thread_default(m->ctx);
        g_source_set_callback(tick, on_tick, m, NULL);
        g_source_attach(tick, m->ctx);
        g_source_unref(tick);
        g_main_loop_run(m->loop);
        g_main_context_pop_thread_default(m->ctx);
        return NULL;
}

static gboolean quit(gpointer data)
{
        g_main_loop_quit(data);
        return G_SOURCE_REMOVE;
}

Migrations *migrations_new(Manager *mgr, GError **error)
{
        Migrations *m = g_new0(Migrations, 1);

        m->mgr = mgr;
        m->created = g_get_monotonic_time();
        if (!(m->store = store_open_peer(mgr->store, error))) {
                g_free(m);
                return NULL;
        }
        g_mutex_init(&m->lock);
        m->ctx = g_main_context_new();
        m->loop = g_main_loop_new(m->ctx, FALSE);
        m->active = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)mig_free);
        m->drains = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify)drain_free);
        m->thread = g_thread_new("migrations", thread_main, m);
        return m;
}

void migrations_free(Migrations *m)
{
        if (!m)
                return;
        g_main_context_invoke(m->ctx, quit, m->loop);
        g_thread_join(m->thread);
        /* replies still pending are dropped with the context; the next manager resolves the
         * migrations the rows record (sweep) */
        g_main_loop_unref(m->loop);
        g_main_context_unref(m->ctx);
        g_hash_table_unref(m->active);
        g_hash_table_unref(m->drains);
        g_mutex_clear(&m->lock);
        store_close(m->store);
        g_free(m);
}
