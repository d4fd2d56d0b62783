/* The pool reconciler: see reconciler.h. */
#define G_LOG_DOMAIN "pools"

#include "manager/reconciler-private.h"
#include "manager/rows.h"
#include "manager/sessions.h"
#include "manager/agentlink.h"
#include "manager/hostcmd.h"
#include "manager/operations.h"
#include "manager/placement.h"
#include "manager/scheduler.h"
#include "manager/tunnels.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/naming.h"

#include <string.h>

const Actor rec_system_actor = {"system", 0, ""};

typedef struct {
        Reconciler *p;
        gint64 desktop_id, host_id;
        ReconcileStep step;
        JsonObject *row; /* pending steps: the row and the command */
        HostCmd *cmd;
} Step;

static void step_free(Step *s)
{
        if (s->row)
                json_object_unref(s->row);
        host_cmd_free(s->cmd);
        g_free(s);
}

static void reconciler_kick(Reconciler *p);

/* Each step: the command its host runs (made with hostcmd.h), the desktop's state while it runs
 * and after it succeeded (DESKTOP_STATE_LAST: the row is deleted). */
static const struct {
        AgentOp op;
        DesktopState during, after;
} step_table[STEP_LAST] = {
        [STEP_PROVISION] = {AGENT_OP_DESKTOP_PROVISION, DESKTOP_PROVISIONING, DESKTOP_STOPPED},
        [STEP_START] = {AGENT_OP_DOMAIN_START, DESKTOP_STARTING, DESKTOP_RUNNING},
        [STEP_STOP] = {AGENT_OP_DOMAIN_DESTROY, DESKTOP_STOPPING, DESKTOP_STOPPED},
        [STEP_DELETE] = {AGENT_OP_DESKTOP_DELETE, DESKTOP_DELETING, DESKTOP_STATE_LAST},
        [STEP_RECOVER] = {AGENT_OP_DOMAIN_START, DESKTOP_RECOVERING, DESKTOP_RUNNING},
};

gint64 *rec_id_key(gint64 id)
{
        return g_memdup2(&id, sizeof(id));
}

gboolean rec_state_is(JsonObject *d, DesktopState state)
{
        return row_desktop_state(d) == state;
}

/* ---- desktop rows ------------------------------------------------------------------------ */

/* Changes a desktop's row (state, unless DESKTOP_STATE_LAST, and more), quietly, with an event
 * when action is given. */
gboolean rec_desktop_set(Reconciler *p, gint64 id, const char *name, DesktopState state,
                            JsonObject *extra, const char *action, const char *detail)
{
        g_autoptr(JsonObject) patch = extra ? json_object_ref(extra) : json_object_new();
        g_autoptr(JsonObject) row = NULL;
        g_autoptr(GError) error = NULL;

        if (state != DESKTOP_STATE_LAST) {
                row_set_desktop_state(patch, state);
                json_object_set_int_member(patch, "state_since", row_now());
        }
        row = store_update_id(p->store, resource_by_kind("desktop"), id, patch, NULL, &error);
        if (!row) {
                g_warning("desktop %s: cannot record its state: %s", name, error->message);
                return FALSE;
        }
        if (action)
                store_event_add(p->store, &rec_system_actor, action, "desktop", id, name,
                                detail ? detail : "", NULL);
        return TRUE;
}

static void retry_clear(Reconciler *p, gint64 id)
{
        g_hash_table_remove(p->retries, &id);
}

static gboolean backing_off(Reconciler *p, gint64 id)
{
        Retry *r = g_hash_table_lookup(p->retries, &id);

        return r && g_get_monotonic_time() < r->next_at;
}

/* The desktop's retry record, made on first use. */
Retry *rec_retry_of(Reconciler *p, gint64 id)
{
        Retry *r = g_hash_table_lookup(p->retries, &id);

        if (!r) {
                r = g_new0(Retry, 1);
                g_hash_table_insert(p->retries, rec_id_key(id), r);
        }
        return r;
}

/* A step failed: try again later, or after provision_retries attempts mark it failed. */
void rec_step_failed(Reconciler *p, JsonObject *row, ReconcileStep step, const GError *error)
{
        gint64 id = row_int(row, "id");
        Retry *r = rec_retry_of(p, id);
        gint64 most = config_get_int(p->mgr->config, "manager", "provision_retries");

        r->failures++;
        if ((gint64)r->failures >= most) {
                g_autoptr(JsonObject) extra = json_object_new();
                g_autofree char *why = g_strdup_printf(
                        "%s failed: %s", reconcile_step_to_string(step), error->message);
                json_object_set_string_member(extra, "failure", why);
                g_warning("desktop %s: %s (after %u attempts)", row_str(row, "name"), why,
                          r->failures);
                rec_desktop_set(p, id, row_str(row, "name"), DESKTOP_FAILED, extra, "desktop_failed",
                            why);
                retry_clear(p, id);
                return;
        }
        r->next_at =
                g_get_monotonic_time() + MIN((gint64)1 << (r->failures - 1), 60) * G_USEC_PER_SEC;
        g_info("desktop %s: %s failed (attempt %u of %" G_GINT64_FORMAT "), will retry: %s",
               row_str(row, "name"), reconcile_step_to_string(step), r->failures, most,
               error->message);
}

/* ---- steps: agent commands and their replies --------------------------------------------- */

static void step_release(Reconciler *p, Step *s)
{
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(p->host_load, &s->host_id));

        g_hash_table_remove(p->inflight, &s->desktop_id);
        if (n > 1)
                g_hash_table_insert(p->host_load, rec_id_key(s->host_id), GUINT_TO_POINTER(n - 1));
        else
                g_hash_table_remove(p->host_load, &s->host_id);
}

/* Deletes a row (KIND) after the rows of DEPENDENT that refer to it by FIELD: a desktop's
 * sessions, a pool's entitlements. */
static void delete_with(Reconciler *p, const char *kind, JsonObject *row, const char *dependent,
                        const char *field)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) deps = NULL;
        g_autoptr(GError) error = NULL;

        g_hash_table_insert(f, (gpointer)field, util_id_text(row_id(row)));
        deps = store_list_all(p->store, resource_by_kind(dependent), f, NULL);
        for (guint i = 0; deps && i < json_array_get_length(deps); i++) {
                store_delete_id(p->store, resource_by_kind(dependent),
                                row_id(json_array_get_object_element(deps, i)), &rec_system_actor,
                                NULL);
        }
        if (!store_delete_id(p->store, resource_by_kind(kind), row_id(row), &rec_system_actor, &error))
                g_warning("%s %s: cannot delete its row: %s", kind, row_str(row, "name"),
                          error->message);
}

static void delete_row(Reconciler *p, JsonObject *row)
{
        delete_with(p, "desktop", row, "session", "desktop");
}

static void step_done(JsonObject *result, const GError *error, gpointer data)
{
        Step *s = data;
        Reconciler *p = s->p;
        g_autoptr(JsonObject) row = row_get(p->store, "desktop", s->desktop_id, NULL);
        g_autoptr(JsonObject) extra = json_object_new();

        step_release(p, s);
        if (!row)
                goto out;
        /* The row moved on meanwhile (deleted, recomposed, reported by libvirt): this reply
         * is stale, unless a start was already reported running. */
        if (!rec_state_is(row, step_table[s->step].during) &&
            !((s->step == STEP_START || s->step == STEP_RECOVER) &&
              rec_state_is(row, DESKTOP_RUNNING) && !error))
                goto out;
        if (error) {
                if (s->step == STEP_DELETE &&
                    g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND)) {
                        delete_row(p, row);
                        goto out;
                }
                if ((s->step == STEP_RECOVER || s->step == STEP_START) &&
                    g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT)) {
                        recovery_busy(p, row, error);
                        goto out;
                }
                rec_step_failed(p, row, s->step, error);
                goto out;
        }
        retry_clear(p, s->desktop_id);
        if (s->step == STEP_PROVISION) {
                json_object_set_string_member(extra, "disk", row_str(result, "disk"));
                json_object_set_int_member(extra, "disk_bytes", row_int(result, "disk_bytes"));
                json_object_set_string_member(extra, "failure", "");
                json_object_set_int_member(extra, "host", s->host_id);
                rec_desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
                            extra, NULL, NULL);
        } else if (s->step == STEP_START) {
                json_object_set_int_member(extra, "host", s->host_id);
                rec_desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
                            extra, "desktop_started", "started as a spare");
        } else if (s->step == STEP_RECOVER) {
                gint64 from = GPOINTER_TO_SIZE(g_hash_table_lookup(p->recovering, &s->desktop_id));
                g_autoptr(JsonObject) h = row_get(p->store, "host", s->host_id, NULL);
                g_autoptr(JsonObject) fh = from ? row_get(p->store, "host", from, NULL) : NULL;
                g_autofree char *now = util_now_iso();
                g_autofree char *why = g_strdup_printf(
                        "restarted on %s at %s after %s went down", h ? row_str(h, "name") : "?",
                        now, fh ? row_str(fh, "name") : "its host");
                json_object_set_int_member(extra, "host", s->host_id);
                json_object_set_string_member(extra, "recovery", why);
                json_object_set_string_member(extra, "failure", "");
                rec_desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
                            extra, "desktop_recovered", why);
        } else if (s->step == STEP_STOP) {
                rec_desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after, NULL,
                            NULL, NULL);
        } else {
                delete_row(p, row);
        }
out:
        /* The next step waiting for this host goes at once, not at the next pass. */
        for (GList *l = p->pending.head; l; l = l->next) {
                Step *w = l->data;
                gint64 wid = w->desktop_id;
                if (w->host_id != s->host_id || g_hash_table_contains(p->inflight, &wid))
                        continue;
                g_queue_delete_link(&p->pending, l);
                rec_step_send(p, w->row, w->host_id, w->step, g_steal_pointer(&w->cmd));
                step_free(w);
                break;
        }
        g_free(s);
        rec_kick_after(p, 250);
}

/* Sends a step for a desktop to its host; FALSE when it cannot be sent now. */
gboolean rec_step_send(Reconciler *p, JsonObject *row, gint64 host_id, ReconcileStep step,
                          HostCmd *cmd)
{
        g_autoptr(GError) error = NULL;
        Step *s = g_new0(Step, 1);
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(p->host_load, &host_id));

        s->p = p;
        s->desktop_id = row_int(row, "id");
        s->host_id = host_id;
        s->step = step;
        HostCall call = {p->mgr->agents, host_id,
                         config_get_int(p->mgr->config, "manager", "agent_command_timeout"),
                         step_done, s};

        g_assert(cmd->op == step_table[step].op);
        if (!hostcmd_send(&call, cmd, &error)) {
                g_free(s);
                rec_step_failed(p, row, step, error);
                return FALSE;
        }
        g_hash_table_insert(p->inflight, rec_id_key(s->desktop_id), GINT_TO_POINTER(step));
        g_hash_table_insert(p->host_load, rec_id_key(host_id), GUINT_TO_POINTER(n + 1));
        return TRUE;
}

gboolean rec_host_has_room(Reconciler *p, gint64 host_id)
{
        return GPOINTER_TO_UINT(g_hash_table_lookup(p->host_load, &host_id)) <
               (guint)config_get_int(p->mgr->config, "manager", "provision_parallel");
}

/* Sends the step now if its host has room, else queues it: a reply from that host sends the
 * next one. Takes args. */
static void step_go(Reconciler *p, JsonObject *row, gint64 host_id, ReconcileStep step,
                    HostCmd *cmd)
{
        Step *w;

        if (rec_host_has_room(p, host_id)) {
                rec_step_send(p, row, host_id, step, cmd);
                return;
        }
        w = g_new0(Step, 1);
        w->p = p;
        w->desktop_id = row_int(row, "id");
        w->host_id = host_id;
        w->step = step;
        w->row = json_object_ref(row);
        w->cmd = cmd;
        g_queue_push_tail(&p->pending, w);
}

/* A desktop's command arguments from the snapshot, or NULL with an error. */
JsonObject *rec_snapshot_args(Reconciler *p, Snapshot *s, JsonObject *pool, JsonObject *d,
                                 GError **error)
{
        gint64 vid = row_ref(d, "template_version_id");
        JsonObject *ver = g_hash_table_lookup(s->versions_by, &vid);
        const char *path =
                ver ? g_hash_table_lookup(s->volume_path, &(gint64){row_ref(ver, "volume_id")})
                    : NULL;

        if (!path) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "desktop '%s': its template version or volume is gone",
                            row_str(d, "name"));
                return NULL;
        }
        return hostcmd_desktop_spec(p->mgr->installation, d, pool, ver, path);
}

/* ---- a pass ------------------------------------------------------------------------------ */

static void snapshot_clear(Snapshot *s)
{
        g_clear_pointer(&s->pools, json_array_unref);
        g_clear_pointer(&s->desktops, json_array_unref);
        g_clear_pointer(&s->sessions, json_array_unref);
        g_clear_pointer(&s->hosts, json_array_unref);
        g_clear_pointer(&s->versions, json_array_unref);
        g_clear_pointer(&s->volumes, json_array_unref);
        g_clear_pointer(&s->newest, g_hash_table_unref);
        g_clear_pointer(&s->versions_by, g_hash_table_unref);
        g_clear_pointer(&s->volume_path, g_hash_table_unref);
        g_clear_pointer(&s->in_session, g_hash_table_unref);
        g_clear_pointer(&s->names, g_hash_table_unref);
        g_clear_pointer(&s->host_count, g_hash_table_unref);
        g_clear_pointer(&s->host_planned, g_hash_table_unref);
        g_clear_pointer(&s->by_pool, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Snapshot, snapshot_clear)

GHashTable *rec_id_table(void)
{
        return g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

static gboolean snapshot_load(Reconciler *p, Snapshot *s, GError **error)
{
        Store *st = p->store;

        if (!(s->pools = store_list_all(st, resource_by_kind("pool"), NULL, error)) ||
            !(s->desktops = store_list_all(st, resource_by_kind("desktop"), NULL, error)) ||
            !(s->sessions = store_list_all(st, resource_by_kind("session"), NULL, error)) ||
            !(s->hosts = store_list_all(st, resource_by_kind("host"), NULL, error)) ||
            !(s->versions =
                      store_list_all(st, resource_by_kind("template-version"), NULL, error)) ||
            !(s->volumes = store_list_all(st, resource_by_kind("volume"), NULL, error)))
                return FALSE;
        s->newest = rec_id_table();
        s->versions_by = rec_id_table();
        s->volume_path = rec_id_table();
        s->in_session = rec_id_table();
        s->host_count = rec_id_table();
        s->host_planned = rec_id_table();
        s->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        s->by_pool = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                           (GDestroyNotify)g_ptr_array_unref);
        for (guint i = 0; i < json_array_get_length(s->versions); i++) {
                JsonObject *v = json_array_get_object_element(s->versions, i);
                gint64 t = row_ref(v, "template_id");
                JsonObject *cur = g_hash_table_lookup(s->newest, &t);
                g_hash_table_insert(s->versions_by, rec_id_key(row_int(v, "id")), v);
                if (!cur || row_int(v, "version") > row_int(cur, "version"))
                        g_hash_table_insert(s->newest, rec_id_key(t), v);
        }
        for (guint i = 0; i < json_array_get_length(s->volumes); i++) {
                JsonObject *v = json_array_get_object_element(s->volumes, i);
                g_hash_table_insert(s->volume_path, rec_id_key(row_int(v, "id")),
                                    (gpointer)row_str(v, "path"));
        }
        for (guint i = 0; i < json_array_get_length(s->sessions); i++)
                g_hash_table_insert(s->in_session,
                                    rec_id_key(row_ref(json_array_get_object_element(s->sessions, i),
                                                   "desktop_id")),
                                    GINT_TO_POINTER(1));
        for (guint i = 0; i < json_array_get_length(s->desktops); i++) {
                JsonObject *d = json_array_get_object_element(s->desktops, i);
                gint64 h = row_ref(d, "host_id"), pool = row_ref(d, "pool_id");
                GPtrArray *mine = g_hash_table_lookup(s->by_pool, &pool);
                if (!mine) {
                        mine = g_ptr_array_new();
                        g_hash_table_insert(s->by_pool, rec_id_key(pool), mine);
                }
                g_ptr_array_add(mine, d);
                g_hash_table_add(s->names, g_ascii_strdown(row_str(d, "name"), -1));
                if (h)
                        g_hash_table_insert(s->host_count, rec_id_key(h),
                                            GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(
                                                                     s->host_count, &h)) +
                                                             1));
        }
        return TRUE;
}

/* The usable host with the fewest desktops (spread), or 0. */
gint64 rec_place(Reconciler *p, Snapshot *s, const char *path, const char *hint)
{
        gint64 best = 0;
        guint best_n = G_MAXUINT;

        for (guint i = 0; i < json_array_get_length(s->hosts); i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                gint64 id = row_int(h, "id");
                guint n = GPOINTER_TO_UINT(g_hash_table_lookup(s->host_count, &id));
                if (placement_host_usable(p->mgr, h, path, hint) && n < best_n) {
                        best = id;
                        best_n = n;
                }
        }
        if (best)
                g_hash_table_insert(s->host_count, rec_id_key(best), GUINT_TO_POINTER(best_n + 1));
        return best;
}

JsonObject *rec_host_row(Snapshot *s, gint64 id)
{
        for (guint i = 0; i < json_array_get_length(s->hosts); i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                if (row_int(h, "id") == id)
                        return h;
        }
        return NULL;
}

static gboolean in_session(Snapshot *s, JsonObject *d)
{
        gint64 id = row_int(d, "id");

        return g_hash_table_contains(s->in_session, &id);
}

/* A desktop someone has: a session, or (persistent pools) an assigned user. */
static gboolean in_use(PoolView *v, Snapshot *s, JsonObject *d)
{
        return in_session(s, d) ||
               (!v->stateless && (row_ref(d, "user_id") != 0 || row_ref(d, "terminal_id") != 0));
}

/* Being live-migrated (migration.c): left alone until the migration ends. */
static gboolean migrating(JsonObject *d)
{
        return row_ref(d, "migrating_to_id") != 0;
}

gboolean rec_busy(Reconciler *p, JsonObject *d)
{
        gint64 id = row_int(d, "id");

        return g_hash_table_contains(p->inflight, &id) || backing_off(p, id) || migrating(d);
}

static void set_status(Reconciler *p, JsonObject *pool, const char *status)
{
        g_autoptr(JsonObject) patch = NULL;
        g_autoptr(JsonObject) row = NULL;

        if (g_str_equal(row_str(pool, "status"), status))
                return;
        patch = json_object_new();
        json_object_set_string_member(patch, "status", status);
        row = store_update_id(p->store, resource_by_kind("pool"), row_id(pool), patch, NULL, NULL);
}

/* New rows for missing desktops, named from the pattern, placed, state provisioning: written
 * in one transaction before any host makes anything. */
static guint grow(Reconciler *p, Snapshot *s, PoolView *v, guint missing)
{
        const char *pattern = row_str(v->pool, "name_pattern");
        g_autofree char *def = pool_default_pattern(row_str(v->pool, "name"));
        g_autoptr(GPtrArray) values =
                g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        g_autofree StoreChange *changes = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonArray) made = NULL;
        guint n = 1;

        if (!pattern[0])
                pattern = def;
        for (guint k = 0; k < missing && n <= 100000; n++) {
                g_autofree char *name = pool_desktop_name(pattern, n);
                g_autofree char *low = g_ascii_strdown(name, -1);
                JsonObject *o;
                gint64 host;
                if (g_hash_table_contains(s->names, low))
                        continue;
                host = rec_place(p, s, v->path, v->hint);
                if (!host)
                        break;
                o = json_object_new();
                json_object_set_string_member(o, "name", name);
                json_object_set_int_member(o, "pool", row_int(v->pool, "id"));
                json_object_set_int_member(o, "host", host);
                row_set_desktop_state(o, DESKTOP_PROVISIONING);
                json_object_set_int_member(o, "state_since", row_now());
                json_object_set_int_member(o, "template_version", row_int(v->newest, "id"));
                json_object_set_int_member(o, "volume", row_ref(v->newest, "volume_id"));
                g_ptr_array_add(values, o);
                g_hash_table_add(s->names, g_steal_pointer(&low));
                k++;
        }
        if (values->len == 0)
                return 0;
        changes = g_new0(StoreChange, values->len);
        for (guint i = 0; i < values->len; i++) {
                changes[i].res = resource_by_kind("desktop");
                changes[i].values = values->pdata[i];
        }
        made = store_change_batch(p->store, changes, values->len, &rec_system_actor, &error);
        if (!made) {
                g_warning("pool %s: cannot add desktops: %s", row_str(v->pool, "name"),
                          error->message);
                return 0;
        }
        return values->len;
}

/* Marks desktops for removal, never one in use: failed, provisioning, stopped, then running
 * spares, the highest numbers first. */
static guint shrink(Reconciler *p, Snapshot *s, PoolView *v, guint excess)
{
        static const DesktopState order[] = {DESKTOP_FAILED, DESKTOP_PROVISIONING, DESKTOP_STOPPED,
                                             DESKTOP_RUNNING};
        guint marked = 0;

        for (gsize o = 0; o < G_N_ELEMENTS(order) && excess > 0; o++)
                for (guint i = v->live->len; i-- > 0 && excess > 0;) {
                        JsonObject *d = v->live->pdata[i];
                        gint64 id = row_int(d, "id");
                        if (!rec_state_is(d, order[o]) || in_use(v, s, d) ||
                            g_hash_table_contains(p->inflight, &id) || migrating(d))
                                continue;
                        rec_desktop_set(p, id, row_str(d, "name"), DESKTOP_DELETING, NULL,
                                    "desktop_removing", "the pool shrinks");
                        row_set_desktop_state(d, DESKTOP_DELETING);
                        excess--;
                        marked++;
                }
        return marked;
}

/* A stateless desktop made fresh on the newest version (row back to provisioning, no user,
 * clean), on host when given, with extra fields (taken) and an event; the snapshot's row d
 * follows, so the pass goes on with it as it is now. */
gboolean rec_reset_fresh(Reconciler *p, JsonObject *d, JsonObject *newest, gint64 host,
                            JsonObject *extra, const char *why)
{
        g_autoptr(JsonObject) patch = extra;

        json_object_set_int_member(patch, "template_version", row_int(newest, "id"));
        json_object_set_int_member(patch, "volume", row_ref(newest, "volume_id"));
        json_object_set_null_member(patch, "user");
        json_object_set_null_member(patch, "terminal");
        json_object_set_boolean_member(patch, "dirty", FALSE);
        if (host)
                json_object_set_int_member(patch, "host", host);
        if (!rec_desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_PROVISIONING, patch,
                         "desktop_reset", why))
                return FALSE;
        row_set_desktop_state(d, DESKTOP_PROVISIONING);
        json_object_set_int_member(d, "template_version_id", row_int(newest, "id"));
        json_object_set_int_member(d, "volume_id", row_ref(newest, "volume_id"));
        json_object_set_null_member(d, "user_id");
        json_object_set_null_member(d, "terminal_id");
        json_object_set_boolean_member(d, "dirty", FALSE);
        if (host)
                json_object_set_int_member(d, "host_id", host);
        return TRUE;
}

/* Stateless desktops whose session ended, or on an older version, made fresh. */
static void resets(Reconciler *p, Snapshot *s, PoolView *v)
{
        gint64 newest = row_int(v->newest, "id");

        for (guint i = 0; i < v->live->len; i++) {
                JsonObject *d = v->live->pdata[i];
                gboolean dirty = row_bool(d, "dirty");
                gboolean old = row_ref(d, "template_version_id") != newest;
                if (!(rec_state_is(d, DESKTOP_STOPPED) || rec_state_is(d, DESKTOP_RUNNING)) ||
                    in_session(s, d) || rec_busy(p, d) || !(dirty || old))
                        continue;
                rec_reset_fresh(p, d, v->newest, 0, json_object_new(),
                            dirty ? "its session ended" : "a new template version");
        }
}

static void provisions(Reconciler *p, Snapshot *s, PoolView *v)
{
        for (guint i = 0; i < v->live->len; i++) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                JsonObject *h = host ? rec_host_row(s, host) : NULL;
                g_autoptr(GError) error = NULL;
                JsonObject *args;
                if (!rec_state_is(d, DESKTOP_PROVISIONING) || rec_busy(p, d))
                        continue;
                if (!h || !placement_host_usable(p->mgr, h, v->path, v->hint)) {
                        g_autoptr(JsonObject) extra = json_object_new();
                        host = rec_place(p, s, v->path, v->hint);
                        if (!host)
                                continue;
                        json_object_set_int_member(extra, "host", host);
                        rec_desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STATE_LAST,
                                    extra, NULL, NULL);
                        json_object_set_int_member(d, "host_id", host);
                }
                args = rec_snapshot_args(p, s, v->pool, d, &error);
                if (!args) {
                        rec_step_failed(p, d, STEP_PROVISION, error);
                        continue;
                }
                step_go(p, d, host, STEP_PROVISION, hostcmd_provision(args));
        }
}

gboolean rec_fits(Reconciler *p, Snapshot *s, PoolView *v, JsonObject *h, gint64 need_mb)
{
        gint64 id = row_int(h, "id");
        gint64 planned = GPOINTER_TO_SIZE(g_hash_table_lookup(s->host_planned, &id));
        SchedHost sh;
        SchedRequest r;

        placement_sched_host(p->mgr, h, v->path, &sh);
        sh.committed_mb += planned;
        placement_sched_request(p->mgr, need_mb, v->hint, &r);
        if (scheduler_place(&sh, 1, &r, NULL) != 0)
                return FALSE;
        g_hash_table_insert(s->host_planned, rec_id_key(id), GSIZE_TO_POINTER(planned + need_mb));
        return TRUE;
}

/* Started, unassigned, unused desktops kept ready: started or stopped to match spares. */
static void spares(Reconciler *p, Snapshot *s, PoolView *v)
{
        gint64 want = row_int(v->pool, "spares"), have = 0;
        gint64 newest = row_int(v->newest, "id");

        for (guint i = 0; i < v->live->len; i++) {
                JsonObject *d = v->live->pdata[i];
                if ((rec_state_is(d, DESKTOP_RUNNING) || rec_state_is(d, DESKTOP_STARTING)) &&
                    !in_use(v, s, d) && row_ref(d, "user_id") == 0 && !row_bool(d, "dirty"))
                        have++;
        }
        for (guint i = 0; i < v->live->len && have < want; i++) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                JsonObject *h = host ? rec_host_row(s, host) : NULL;
                g_autoptr(GError) error = NULL;
                JsonObject *args;
                if (!rec_state_is(d, DESKTOP_STOPPED) || in_use(v, s, d) || row_ref(d, "user_id") ||
                    row_bool(d, "dirty") || rec_busy(p, d) ||
                    (v->stateless && row_ref(d, "template_version_id") != newest) || !h ||
                    !placement_host_usable(p->mgr, h, v->path, v->hint) ||
                    !rec_host_has_room(p, host) || !rec_fits(p, s, v, h, row_int(v->newest, "ram_mb")))
                        continue;
                args = rec_snapshot_args(p, s, v->pool, d, &error);
                if (!args) {
                        rec_step_failed(p, d, STEP_START, error);
                        continue;
                }
                rec_desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STARTING, NULL, NULL,
                            NULL);
                row_set_desktop_state(d, DESKTOP_STARTING);
                rec_step_send(p, d, host, STEP_START, hostcmd_start(args));
                have++;
        }
        for (guint i = v->live->len; i-- > 0 && have > want;) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                g_autofree char *dom = NULL;
                if (!rec_state_is(d, DESKTOP_RUNNING) || in_use(v, s, d) || row_ref(d, "user_id") ||
                    rec_busy(p, d) || !host || !agentlink_linked(p->mgr->agents, host) ||
                    !rec_host_has_room(p, host))
                        continue;
                dom = agent_domain_name(p->mgr->installation, "desktop", row_id(d));
                rec_desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STOPPING, NULL, NULL,
                            NULL);
                rec_step_send(p, d, host, STEP_STOP, hostcmd_destroy(dom));
                have--;
        }
}

/* Desktops marked deleting: domain and overlay removed by their host, then the row. */
static void deletions(Reconciler *p, Snapshot *s, GPtrArray *going)
{
        for (guint i = 0; i < going->len; i++) {
                JsonObject *d = going->pdata[i];
                gint64 id = row_int(d, "id");
                gint64 host = row_ref(d, "host_id");
                g_autofree char *dom = agent_domain_name(p->mgr->installation, "desktop", id);
                g_autofree char *disk = desktop_overlay_name(p->mgr->installation, id);
                const char *path =
                        g_hash_table_lookup(s->volume_path, &(gint64){row_ref(d, "volume_id")});
                if (rec_busy(p, d))
                        continue;
                if (!host || !path) { /* never provisioned: nothing exists on a host */
                        delete_row(p, d);
                        continue;
                }
                if (!agentlink_linked(p->mgr->agents, host))
                        continue;
                step_go(p, d, host, STEP_DELETE, hostcmd_desktop_delete(dom, path, disk));
        }
}

/* Desktops stuck in a transition longer than manager.transition_timeout: failed. */
static void timeouts(Reconciler *p, GPtrArray *rows)
{
        gint64 limit = config_get_int(p->mgr->config, "manager", "transition_timeout");
        static const DesktopState transitional[] = {DESKTOP_PROVISIONING, DESKTOP_STARTING,
                                                    DESKTOP_STOPPING, DESKTOP_DELETING};

        for (guint i = 0; i < rows->len; i++) {
                JsonObject *d = rows->pdata[i];
                gint64 since = row_int(d, "state_since");
                gint64 id = row_int(d, "id");
                g_autofree char *why = NULL;
                g_autoptr(JsonObject) extra = NULL;
                gboolean stuck = FALSE;
                for (gsize k = 0; k < G_N_ELEMENTS(transitional); k++)
                        stuck |= rec_state_is(d, transitional[k]);
                if (!stuck || since <= 0 || row_now() - since <= limit ||
                    g_hash_table_contains(p->inflight, &id))
                        continue;
                why = g_strdup_printf("stuck %s for more than %" G_GINT64_FORMAT " s",
                                      row_str(d, "state"), limit);
                extra = json_object_new();
                json_object_set_string_member(extra, "failure", why);
                rec_desktop_set(p, id, row_str(d, "name"), DESKTOP_FAILED, extra, "desktop_failed",
                            why);
                row_set_desktop_state(d, DESKTOP_FAILED);
        }
}

static void pool_delete_finish(Reconciler *p, JsonObject *pool)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) perms = NULL;

        /* Its permissions go with it (their events record it), then its entitlements. */
        g_hash_table_insert(f, (gpointer) "pool", util_id_text(row_int(pool, "id")));
        perms = store_list_all(p->store, resource_by_kind("permission"), f, NULL);
        for (guint i = 0; perms && i < json_array_get_length(perms); i++) {
                store_delete_id(p->store, resource_by_kind("permission"),
                                row_id(json_array_get_object_element(perms, i)), &rec_system_actor,
                                NULL);
        }
        delete_with(p, "pool", pool, "entitlement", "pool");
}

static void pool_pass(Reconciler *p, Snapshot *s, JsonObject *pool)
{
        gint64 pid = row_int(pool, "id");
        gint64 tid = row_ref(pool, "template_id");
        gint64 size = row_int(pool, "size");
        g_autoptr(GPtrArray) live = g_ptr_array_new();
        g_autoptr(GPtrArray) going = g_ptr_array_new();
        g_autofree char *status = NULL;
        PoolView v = {.pool = pool, .live = live, .going = going};

        GPtrArray *mine = g_hash_table_lookup(s->by_pool, &pid);

        for (guint i = 0; mine && i < mine->len; i++) {
                JsonObject *d = mine->pdata[i];
                if (row_bool(pool, "deleting") && !rec_state_is(d, DESKTOP_DELETING) &&
                    !g_hash_table_contains(p->inflight, &(gint64){row_int(d, "id")})) {
                        rec_desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_DELETING, NULL,
                                    NULL, NULL);
                        row_set_desktop_state(d, DESKTOP_DELETING);
                }
                g_ptr_array_add(rec_state_is(d, DESKTOP_DELETING) ? going : live, d);
        }
        timeouts(p, live);
        timeouts(p, going);
        if (row_bool(pool, "deleting")) {
                deletions(p, s, going);
                if (live->len + going->len == 0)
                        pool_delete_finish(p, pool);
                else {
                        status = g_strdup_printf("deleting (%u desktops left)",
                                                 live->len + going->len);
                        set_status(p, pool, status);
                }
                return;
        }
        v.stateless = g_str_equal(row_str(pool, "mode"), "stateless");
        v.hint = row_str(pool, "hosts");
        v.newest = g_hash_table_lookup(s->newest, &tid);
        if (!v.newest) {
                deletions(p, s, going);
                set_status(p, pool, "waiting: its template has no version yet");
                return;
        }
        v.path = g_hash_table_lookup(s->volume_path, &(gint64){row_ref(v.newest, "volume_id")});
        if (!v.path) {
                set_status(p, pool, "waiting: its template's volume is gone");
                return;
        }
        if (((gint64)live->len > size && shrink(p, s, &v, live->len - size)) ||
            ((gint64)live->len < size && grow(p, s, &v, size - live->len)))
                reconciler_kick(p); /* rows were added or marked: the next pass works on them */
        if (v.stateless)
                resets(p, s, &v);
        provisions(p, s, &v);
        spares(p, s, &v);
        deletions(p, s, going);
        for (guint i = 0; i < live->len; i++) {
                JsonObject *d = live->pdata[i];
                if (rec_state_is(d, DESKTOP_FAILED))
                        v.failed++;
                else if (rec_state_is(d, DESKTOP_STOPPED) || rec_state_is(d, DESKTOP_RUNNING))
                        v.settled++;
        }
        if ((gint64)live->len == size && v.settled + v.failed == live->len && going->len == 0)
                status = v.failed ? g_strdup_printf("ready (%u failed)", v.failed)
                                  : g_strdup("ready");
        else if (!rec_place(p, s, v.path, v.hint))
                status = g_strdup("waiting: no host that is up and not in maintenance reaches "
                                  "its template's volume");
        else
                status = g_strdup_printf("provisioning %u/%" G_GINT64_FORMAT, v.settled + v.failed,
                                         size);
        set_status(p, pool, status);
}

/* ---- operations -------------------------------------------------------------------------- */

JsonObject *rec_find(JsonArray *rows, gint64 id)
{
        for (guint i = 0; i < json_array_get_length(rows); i++) {
                JsonObject *o = json_array_get_object_element(rows, i);
                if (row_int(o, "id") == id)
                        return o;
        }
        return NULL;
}

/* Progress over a set of desktops: how many are where they should be. */
typedef struct {
        guint total, done, failed, waiting;
        const char *failure;
} Tally;

static void tally_desktop(Tally *t, Snapshot *s, JsonObject *d, gint64 want_version)
{
        t->total++;
        if (rec_state_is(d, DESKTOP_FAILED)) {
                t->failed++;
                t->failure = row_str(d, "failure");
        } else if ((rec_state_is(d, DESKTOP_STOPPED) || rec_state_is(d, DESKTOP_RUNNING)) &&
                   (!want_version || row_ref(d, "template_version_id") == want_version)) {
                t->done++;
        } else if (in_session(s, d)) {
                t->waiting++;
        }
}

static void operation_pass(Reconciler *p, Snapshot *s, JsonObject *op)
{
        const char *kind = row_str(op, "kind");
        gint64 oid = row_int(op, "object_id");
        Tally t = {0};
        g_autofree char *msg = NULL;
        gint64 target = 0;

        if (g_str_equal(kind, "recompose")) {
                JsonObject *d = rec_find(s->desktops, oid);
                JsonObject *pool = d ? rec_find(s->pools, row_ref(d, "pool_id")) : NULL;
                JsonObject *nv = pool ? g_hash_table_lookup(s->newest,
                                                            &(gint64){row_ref(pool, "template_id")})
                                      : NULL;
                if (!d || !nv) {
                        operations_set(p->store, op, OPERATION_FAILED, 0, "the desktop is gone");
                        return;
                }
                tally_desktop(&t, s, d, row_int(nv, "id"));
                target = 1;
        } else if (g_str_equal(kind, "rollout")) {
                JsonObject *nv = g_hash_table_lookup(s->newest, &oid);
                for (guint i = 0; nv && i < json_array_get_length(s->pools); i++) {
                        JsonObject *pool = json_array_get_object_element(s->pools, i);
                        if (row_ref(pool, "template_id") != oid ||
                            !g_str_equal(row_str(pool, "mode"), "stateless"))
                                continue;
                        for (guint k = 0; k < json_array_get_length(s->desktops); k++) {
                                JsonObject *d = json_array_get_object_element(s->desktops, k);
                                if (row_ref(d, "pool_id") == row_int(pool, "id") &&
                                    !rec_state_is(d, DESKTOP_DELETING))
                                        tally_desktop(&t, s, d, row_int(nv, "id"));
                        }
                }
                target = t.total;
        } else { /* pool_create, pool_resize, pool_delete */
                JsonObject *pool = rec_find(s->pools, oid);
                if (pool && !g_str_equal(row_str(pool, "name"), row_str(op, "object_name")))
                        pool = NULL; /* its id was taken again by a newer pool */
                if (!pool) {
                        operations_set(p->store, op,
                                       g_str_equal(kind, "pool_delete") ? OPERATION_DONE
                                                                        : OPERATION_FAILED,
                                       100,
                                       g_str_equal(kind, "pool_delete") ? "deleted"
                                                                        : "the pool is gone");
                        return;
                }
                for (guint k = 0; k < json_array_get_length(s->desktops); k++) {
                        JsonObject *d = json_array_get_object_element(s->desktops, k);
                        if (row_ref(d, "pool_id") != oid)
                                continue;
                        if (rec_state_is(d, DESKTOP_DELETING))
                                t.total++;
                        else
                                tally_desktop(&t, s, d, 0);
                }
                if (g_str_equal(kind, "pool_delete")) {
                        msg = g_strdup_printf("%u desktops left", t.total);
                        operations_set(p->store, op, OPERATION_RUNNING, 0, msg);
                        return;
                }
                target = MAX((gint64)t.total, row_int(pool, "size"));
                if ((gint64)t.total != row_int(pool, "size"))
                        t.done = MIN(t.done, t.total - 1);
        }
        if (target > 0 && t.done + t.failed >= target) {
                if (t.failed) {
                        msg = g_strdup_printf("%u of %" G_GINT64_FORMAT " desktops failed: %s",
                                              t.failed, target, t.failure);
                        operations_set(p->store, op, OPERATION_FAILED, 100, msg);
                } else {
                        msg = g_strdup_printf("%" G_GINT64_FORMAT " desktops ready", target);
                        operations_set(p->store, op, OPERATION_DONE, 100, msg);
                }
                return;
        }
        if (target == 0) {
                operations_set(p->store, op, OPERATION_DONE, 100, "nothing to do");
                return;
        }
        msg = t.waiting ? g_strdup_printf("%u of %" G_GINT64_FORMAT
                                          " desktops ready; %u wait for their session to end",
                                          t.done, target, t.waiting)
                        : g_strdup_printf("%u of %" G_GINT64_FORMAT " desktops ready", t.done,
                                          target);
        operations_set(p->store, op, OPERATION_RUNNING, (t.done + t.failed) * 100 / target, msg);
}

static void pass(Reconciler *p)
{
        g_auto(Snapshot) s = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) f = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonArray) ops = NULL;

        p->last_pass = g_get_monotonic_time();
        g_queue_clear_full(&p->pending, (GDestroyNotify)step_free); /* made again below */
        /* Operations are read before the snapshot, so the object of each (written before its
         * operation) is in it; they are judged on the state the last steps left. */
        g_hash_table_insert(f, (gpointer) "state",
                            (gpointer)operation_state_to_string(OPERATION_RUNNING));
        ops = store_list_all(p->store, resource_by_kind("operation"), f, NULL);
        if (!snapshot_load(p, &s, &error)) {
                g_warning("pool reconciler: cannot read the state: %s", error->message);
                return;
        }
        for (guint i = 0; ops && i < json_array_get_length(ops); i++) {
                JsonObject *op = json_array_get_object_element(ops, i);
                if (!g_str_equal(row_str(op, "kind"), "migrate") &&
                    !g_str_equal(row_str(op, "kind"), "drain")) /* migration.c's */
                        operation_pass(p, &s, op);
        }
        recovery_desktops(p, &s);
        recovery_guests(p, &s);
        sessions_timeouts(p->mgr, p->store, s.pools, s.desktops, s.sessions);
        for (guint i = 0; i < json_array_get_length(s.pools); i++)
                pool_pass(p, &s, json_array_get_object_element(s.pools, i));
        recovery_progress(p, &s);
}

/* ---- the thread -------------------------------------------------------------------------- */

static void timed_pass(Reconciler *p)
{
        gint64 t0 = g_get_monotonic_time();

        pass(p);
        g_atomic_int_set(&p->last_pass_ms, (gint)MIN((g_get_monotonic_time() - t0) / 1000, 5000));
}

static gboolean on_kick(gpointer data)
{
        Reconciler *p = data;

        g_atomic_int_set(&p->kicked, 0);
        timed_pass(p);
        return G_SOURCE_REMOVE;
}

static gboolean on_tick(gpointer data)
{
        Reconciler *p = data;
        gint64 interval = config_get_int(p->mgr->config, "manager", "reconcile_interval");

        if (g_get_monotonic_time() - p->last_pass >= interval * G_USEC_PER_SEC - 100000)
                timed_pass(p);
        return G_SOURCE_CONTINUE;
}

void rec_kick_after(Reconciler *p, guint ms)
{
        GSource *src;

        if (!p || g_atomic_int_exchange(&p->kicked, 1))
                return;
        /* gathers a burst of kicks into one pass; under a storm of kicks the reconciler rests
         * as long as its last pass took, so it uses at most about half a core */
        src = g_timeout_source_new(MAX(ms, (guint)g_atomic_int_get(&p->last_pass_ms)));
        g_source_set_callback(src, on_kick, p, NULL);
        g_source_attach(src, p->ctx);
        g_source_unref(src);
}

/* manager_kick(): a pass soon. */
static void reconciler_kick(Reconciler *p)
{
        rec_kick_after(p, 50);
}

static gpointer thread_main(gpointer data)
{
        Reconciler *p = data;
        GSource *tick = g_timeout_source_new_seconds(1);

        g_main_context_push_thread_default(p->ctx);
        g_source_set_callback(tick, on_tick, p, NULL);
        g_source_attach(tick, p->ctx);
        g_source_unref(tick);
        reconciler_kick(p);
        g_main_loop_run(p->loop);
        g_main_context_pop_thread_default(p->ctx);
        return NULL;
}

static gboolean quit(gpointer data)
{
        g_main_loop_quit(data);
        return G_SOURCE_REMOVE;
}

Reconciler *reconciler_new(Manager *mgr, GError **error)
{
        Reconciler *p = g_new0(Reconciler, 1);

        p->mgr = mgr;
        p->store = store_open_peer(mgr->store, error);
        if (!p->store) {
                g_free(p);
                return NULL;
        }
        p->ctx = g_main_context_new();
        p->loop = g_main_loop_new(p->ctx, FALSE);
        p->inflight = rec_id_table();
        p->host_load = rec_id_table();
        p->retries = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        p->recovering = rec_id_table();
        p->guests_recovering = rec_id_table();
        p->guests_inflight = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        p->guest_retries = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        p->waiting_told = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        p->thread = g_thread_new("pools", thread_main, p);
        mgr->kick = reconciler_kick;
        return p;
}

void reconciler_free(Reconciler *p)
{
        if (!p)
                return;
        p->mgr->kick = NULL;
        g_main_context_invoke(p->ctx, quit, p->loop);
        g_thread_join(p->thread);
        /* Replies still pending are dropped with the context; their steps are redone by the
         * next manager from what the database says. */
        g_main_loop_unref(p->loop);
        g_main_context_unref(p->ctx);
        g_hash_table_unref(p->inflight);
        g_hash_table_unref(p->host_load);
        g_hash_table_unref(p->retries);
        g_hash_table_unref(p->recovering);
        g_hash_table_unref(p->guests_recovering);
        g_hash_table_unref(p->guests_inflight);
        g_hash_table_unref(p->guest_retries);
        g_hash_table_unref(p->waiting_told);
        g_queue_clear_full(&p->pending, (GDestroyNotify)step_free);
        store_close(p->store);
        g_free(p);
}

void reconciler_on_link(Agents *ag, const LinkEvent *ev, gpointer mgr)
{
        if (ev->type == LINK_STATE && g_str_equal(ev->kind, "desktop"))
                manager_kick(mgr);
}
