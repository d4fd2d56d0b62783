/* The pool reconciler: see reconciler.h. */
#define G_LOG_DOMAIN "pools"

#include "manager/reconciler.h"
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

static const Actor system_actor = {"system", 0, ""};

typedef struct {
        guint failures;
        guint busy; /* recovery starts refused by a busy lease */
        gint64 next_at; /* monotonic µs: no new attempt before */
} Retry;

struct _Reconciler {
        Manager *mgr;
        Store *store; /* the reconciler thread's own handle */
        GThread *thread;
        GMainContext *ctx;
        GMainLoop *loop;
        gint kicked;
        GHashTable *inflight;  /* desktop id -> its step (ReconcileStep) */
        GHashTable *host_load; /* host id -> steps in flight */
        GHashTable *retries;   /* desktop id -> Retry */
        GQueue pending;        /* Step waiting for room on its host, made by the last pass */
        GHashTable *recovering; /* desktop id -> the down host it is recovered from */
        GHashTable *guests_recovering; /* guest id -> the down host it is recovered from */
        GHashTable *guest_retries;     /* guest id -> Retry */
        GHashTable *guests_inflight;   /* guest id: its start is in flight */
        GHashTable *waiting_told; /* desktop id: "no host has room" already said */
        gint64 last_pass;
        gint last_pass_ms; /* how long the last pass took (atomic: kicks come from any thread) */
};

/* What a pass looks at, read at its start. */
typedef struct {
        JsonArray *pools, *desktops, *sessions, *hosts, *versions, *volumes;
        GHashTable *newest;       /* template id -> newest version row */
        GHashTable *versions_by;  /* version id -> row */
        GHashTable *volume_path;  /* volume id -> path */
        GHashTable *in_session;   /* desktop id -> TRUE */
        GHashTable *names;        /* every desktop name (lower case) */
        GHashTable *host_count;   /* host id -> desktops placed there */
        GHashTable *host_planned; /* host id -> MiB of the desktops this pass starts there */
        GHashTable *by_pool;      /* pool id -> GPtrArray of its desktop rows */
} Snapshot;

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

static void kick_after(Reconciler *p, guint ms);
static void reconciler_kick(Reconciler *p);
static gboolean step_send(Reconciler *p, JsonObject *row, gint64 host_id, ReconcileStep step,
                          HostCmd *cmd);
static void recovery_busy(Reconciler *p, JsonObject *row, const GError *error);

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

static gint64 *id_key(gint64 id)
{
        return g_memdup2(&id, sizeof(id));
}

static gboolean state_is(JsonObject *d, DesktopState state)
{
        return row_desktop_state(d) == state;
}

/* ---- desktop rows ------------------------------------------------------------------------ */

/* Changes a desktop's row (state, unless DESKTOP_STATE_LAST, and more), quietly, with an event
 * when action is given. */
static gboolean desktop_set(Reconciler *p, gint64 id, const char *name, DesktopState state,
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
                store_event_add(p->store, &system_actor, action, "desktop", id, name,
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
static Retry *retry_of(Reconciler *p, gint64 id)
{
        Retry *r = g_hash_table_lookup(p->retries, &id);

        if (!r) {
                r = g_new0(Retry, 1);
                g_hash_table_insert(p->retries, id_key(id), r);
        }
        return r;
}

/* A step failed: try again later, or after provision_retries attempts mark it failed. */
static void step_failed(Reconciler *p, JsonObject *row, ReconcileStep step, const GError *error)
{
        gint64 id = row_int(row, "id");
        Retry *r = retry_of(p, id);
        gint64 most = config_get_int(p->mgr->config, "manager", "provision_retries");

        r->failures++;
        if ((gint64)r->failures >= most) {
                g_autoptr(JsonObject) extra = json_object_new();
                g_autofree char *why = g_strdup_printf(
                        "%s failed: %s", reconcile_step_to_string(step), error->message);
                json_object_set_string_member(extra, "failure", why);
                g_warning("desktop %s: %s (after %u attempts)", row_str(row, "name"), why,
                          r->failures);
                desktop_set(p, id, row_str(row, "name"), DESKTOP_FAILED, extra, "desktop_failed",
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
                g_hash_table_insert(p->host_load, id_key(s->host_id), GUINT_TO_POINTER(n - 1));
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
                                row_id(json_array_get_object_element(deps, i)), &system_actor,
                                NULL);
        }
        if (!store_delete_id(p->store, resource_by_kind(kind), row_id(row), &system_actor, &error))
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
        if (!state_is(row, step_table[s->step].during) &&
            !((s->step == STEP_START || s->step == STEP_RECOVER) &&
              state_is(row, DESKTOP_RUNNING) && !error))
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
                step_failed(p, row, s->step, error);
                goto out;
        }
        retry_clear(p, s->desktop_id);
        if (s->step == STEP_PROVISION) {
                json_object_set_string_member(extra, "disk", row_str(result, "disk"));
                json_object_set_int_member(extra, "disk_bytes", row_int(result, "disk_bytes"));
                json_object_set_string_member(extra, "failure", "");
                json_object_set_int_member(extra, "host", s->host_id);
                desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
                            extra, NULL, NULL);
        } else if (s->step == STEP_START) {
                json_object_set_int_member(extra, "host", s->host_id);
                desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
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
                desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after,
                            extra, "desktop_recovered", why);
        } else if (s->step == STEP_STOP) {
                desktop_set(p, s->desktop_id, row_str(row, "name"), step_table[s->step].after, NULL,
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
                step_send(p, w->row, w->host_id, w->step, g_steal_pointer(&w->cmd));
                step_free(w);
                break;
        }
        g_free(s);
        kick_after(p, 250);
}

/* Sends a step for a desktop to its host; FALSE when it cannot be sent now. */
static gboolean step_send(Reconciler *p, JsonObject *row, gint64 host_id, ReconcileStep step,
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
                step_failed(p, row, step, error);
                return FALSE;
        }
        g_hash_table_insert(p->inflight, id_key(s->desktop_id), GINT_TO_POINTER(step));
        g_hash_table_insert(p->host_load, id_key(host_id), GUINT_TO_POINTER(n + 1));
        return TRUE;
}

static gboolean host_has_room(Reconciler *p, gint64 host_id)
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

        if (host_has_room(p, host_id)) {
                step_send(p, row, host_id, step, cmd);
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
static JsonObject *snapshot_args(Reconciler *p, Snapshot *s, JsonObject *pool, JsonObject *d,
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

static GHashTable *id_table(void)
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
        s->newest = id_table();
        s->versions_by = id_table();
        s->volume_path = id_table();
        s->in_session = id_table();
        s->host_count = id_table();
        s->host_planned = id_table();
        s->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        s->by_pool = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                           (GDestroyNotify)g_ptr_array_unref);
        for (guint i = 0; i < json_array_get_length(s->versions); i++) {
                JsonObject *v = json_array_get_object_element(s->versions, i);
                gint64 t = row_ref(v, "template_id");
                JsonObject *cur = g_hash_table_lookup(s->newest, &t);
                g_hash_table_insert(s->versions_by, id_key(row_int(v, "id")), v);
                if (!cur || row_int(v, "version") > row_int(cur, "version"))
                        g_hash_table_insert(s->newest, id_key(t), v);
        }
        for (guint i = 0; i < json_array_get_length(s->volumes); i++) {
                JsonObject *v = json_array_get_object_element(s->volumes, i);
                g_hash_table_insert(s->volume_path, id_key(row_int(v, "id")),
                                    (gpointer)row_str(v, "path"));
        }
        for (guint i = 0; i < json_array_get_length(s->sessions); i++)
                g_hash_table_insert(s->in_session,
                                    id_key(row_ref(json_array_get_object_element(s->sessions, i),
                                                   "desktop_id")),
                                    GINT_TO_POINTER(1));
        for (guint i = 0; i < json_array_get_length(s->desktops); i++) {
                JsonObject *d = json_array_get_object_element(s->desktops, i);
                gint64 h = row_ref(d, "host_id"), pool = row_ref(d, "pool_id");
                GPtrArray *mine = g_hash_table_lookup(s->by_pool, &pool);
                if (!mine) {
                        mine = g_ptr_array_new();
                        g_hash_table_insert(s->by_pool, id_key(pool), mine);
                }
                g_ptr_array_add(mine, d);
                g_hash_table_add(s->names, g_ascii_strdown(row_str(d, "name"), -1));
                if (h)
                        g_hash_table_insert(s->host_count, id_key(h),
                                            GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(
                                                                     s->host_count, &h)) +
                                                             1));
        }
        return TRUE;
}

/* The usable host with the fewest desktops (spread), or 0. */
static gint64 place(Reconciler *p, Snapshot *s, const char *path, const char *hint)
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
                g_hash_table_insert(s->host_count, id_key(best), GUINT_TO_POINTER(best_n + 1));
        return best;
}

static JsonObject *host_row(Snapshot *s, gint64 id)
{
        for (guint i = 0; i < json_array_get_length(s->hosts); i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                if (row_int(h, "id") == id)
                        return h;
        }
        return NULL;
}

typedef struct {
        JsonObject *pool;
        gboolean stateless;
        JsonObject *newest;
        const char *path; /* the newest version's volume */
        const char *hint;
        GPtrArray *live;  /* desktops of the pool not being deleted */
        GPtrArray *going; /* being deleted */
        guint settled, failed, transitional;
} PoolView;

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

static gboolean busy(Reconciler *p, JsonObject *d)
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
                host = place(p, s, v->path, v->hint);
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
        made = store_change_batch(p->store, changes, values->len, &system_actor, &error);
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
                        if (!state_is(d, order[o]) || in_use(v, s, d) ||
                            g_hash_table_contains(p->inflight, &id) || migrating(d))
                                continue;
                        desktop_set(p, id, row_str(d, "name"), DESKTOP_DELETING, NULL,
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
static gboolean reset_fresh(Reconciler *p, JsonObject *d, JsonObject *newest, gint64 host,
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
        if (!desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_PROVISIONING, patch,
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
                if (!(state_is(d, DESKTOP_STOPPED) || state_is(d, DESKTOP_RUNNING)) ||
                    in_session(s, d) || busy(p, d) || !(dirty || old))
                        continue;
                reset_fresh(p, d, v->newest, 0, json_object_new(),
                            dirty ? "its session ended" : "a new template version");
        }
}

static void provisions(Reconciler *p, Snapshot *s, PoolView *v)
{
        for (guint i = 0; i < v->live->len; i++) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                JsonObject *h = host ? host_row(s, host) : NULL;
                g_autoptr(GError) error = NULL;
                JsonObject *args;
                if (!state_is(d, DESKTOP_PROVISIONING) || busy(p, d))
                        continue;
                if (!h || !placement_host_usable(p->mgr, h, v->path, v->hint)) {
                        g_autoptr(JsonObject) extra = json_object_new();
                        host = place(p, s, v->path, v->hint);
                        if (!host)
                                continue;
                        json_object_set_int_member(extra, "host", host);
                        desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STATE_LAST,
                                    extra, NULL, NULL);
                        json_object_set_int_member(d, "host_id", host);
                }
                args = snapshot_args(p, s, v->pool, d, &error);
                if (!args) {
                        step_failed(p, d, STEP_PROVISION, error);
                        continue;
                }
                step_go(p, d, host, STEP_PROVISION, hostcmd_provision(args));
        }
}

static gboolean fits(Reconciler *p, Snapshot *s, PoolView *v, JsonObject *h, gint64 need_mb)
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
        g_hash_table_insert(s->host_planned, id_key(id), GSIZE_TO_POINTER(planned + need_mb));
        return TRUE;
}

/* Started, unassigned, unused desktops kept ready: started or stopped to match spares. */
static void spares(Reconciler *p, Snapshot *s, PoolView *v)
{
        gint64 want = row_int(v->pool, "spares"), have = 0;
        gint64 newest = row_int(v->newest, "id");

        for (guint i = 0; i < v->live->len; i++) {
                JsonObject *d = v->live->pdata[i];
                if ((state_is(d, DESKTOP_RUNNING) || state_is(d, DESKTOP_STARTING)) &&
                    !in_use(v, s, d) && row_ref(d, "user_id") == 0 && !row_bool(d, "dirty"))
                        have++;
        }
        for (guint i = 0; i < v->live->len && have < want; i++) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                JsonObject *h = host ? host_row(s, host) : NULL;
                g_autoptr(GError) error = NULL;
                JsonObject *args;
                if (!state_is(d, DESKTOP_STOPPED) || in_use(v, s, d) || row_ref(d, "user_id") ||
                    row_bool(d, "dirty") || busy(p, d) ||
                    (v->stateless && row_ref(d, "template_version_id") != newest) || !h ||
                    !placement_host_usable(p->mgr, h, v->path, v->hint) ||
                    !host_has_room(p, host) || !fits(p, s, v, h, row_int(v->newest, "ram_mb")))
                        continue;
                args = snapshot_args(p, s, v->pool, d, &error);
                if (!args) {
                        step_failed(p, d, STEP_START, error);
                        continue;
                }
                desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STARTING, NULL, NULL,
                            NULL);
                row_set_desktop_state(d, DESKTOP_STARTING);
                step_send(p, d, host, STEP_START, hostcmd_start(args));
                have++;
        }
        for (guint i = v->live->len; i-- > 0 && have > want;) {
                JsonObject *d = v->live->pdata[i];
                gint64 host = row_ref(d, "host_id");
                g_autofree char *dom = NULL;
                if (!state_is(d, DESKTOP_RUNNING) || in_use(v, s, d) || row_ref(d, "user_id") ||
                    busy(p, d) || !host || !agentlink_linked(p->mgr->agents, host) ||
                    !host_has_room(p, host))
                        continue;
                dom = agent_domain_name(p->mgr->installation, "desktop", row_id(d));
                desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_STOPPING, NULL, NULL,
                            NULL);
                step_send(p, d, host, STEP_STOP, hostcmd_destroy(dom));
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
                if (busy(p, d))
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
                        stuck |= state_is(d, transitional[k]);
                if (!stuck || since <= 0 || row_now() - since <= limit ||
                    g_hash_table_contains(p->inflight, &id))
                        continue;
                why = g_strdup_printf("stuck %s for more than %" G_GINT64_FORMAT " s",
                                      row_str(d, "state"), limit);
                extra = json_object_new();
                json_object_set_string_member(extra, "failure", why);
                desktop_set(p, id, row_str(d, "name"), DESKTOP_FAILED, extra, "desktop_failed",
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
                                row_id(json_array_get_object_element(perms, i)), &system_actor,
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
                if (row_bool(pool, "deleting") && !state_is(d, DESKTOP_DELETING) &&
                    !g_hash_table_contains(p->inflight, &(gint64){row_int(d, "id")})) {
                        desktop_set(p, row_int(d, "id"), row_str(d, "name"), DESKTOP_DELETING, NULL,
                                    NULL, NULL);
                        row_set_desktop_state(d, DESKTOP_DELETING);
                }
                g_ptr_array_add(state_is(d, DESKTOP_DELETING) ? going : live, d);
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
                if (state_is(d, DESKTOP_FAILED))
                        v.failed++;
                else if (state_is(d, DESKTOP_STOPPED) || state_is(d, DESKTOP_RUNNING))
                        v.settled++;
        }
        if ((gint64)live->len == size && v.settled + v.failed == live->len && going->len == 0)
                status = v.failed ? g_strdup_printf("ready (%u failed)", v.failed)
                                  : g_strdup("ready");
        else if (!place(p, s, v.path, v.hint))
                status = g_strdup("waiting: no host that is up and not in maintenance reaches "
                                  "its template's volume");
        else
                status = g_strdup_printf("provisioning %u/%" G_GINT64_FORMAT, v.settled + v.failed,
                                         size);
        set_status(p, pool, status);
}

/* ---- operations -------------------------------------------------------------------------- */

static JsonObject *find(JsonArray *rows, gint64 id)
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
        if (state_is(d, DESKTOP_FAILED)) {
                t->failed++;
                t->failure = row_str(d, "failure");
        } else if ((state_is(d, DESKTOP_STOPPED) || state_is(d, DESKTOP_RUNNING)) &&
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
                JsonObject *d = find(s->desktops, oid);
                JsonObject *pool = d ? find(s->pools, row_ref(d, "pool_id")) : NULL;
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
                                    !state_is(d, DESKTOP_DELETING))
                                        tally_desktop(&t, s, d, row_int(nv, "id"));
                        }
                }
                target = t.total;
        } else { /* pool_create, pool_resize, pool_delete */
                JsonObject *pool = find(s->pools, oid);
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
                        if (state_is(d, DESKTOP_DELETING))
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

/* ---- recovery from a down host ----------------------------------------------------------- */

/* A recovery start refused because the disk's lease is busy (the old QEMU may live on a host
 * that is cut off, until it fences itself): tried again after recovery_retry_ms, not counted
 * as a failure, each attempt an event. */
static void recovery_busy(Reconciler *p, JsonObject *row, const GError *error)
{
        gint64 id = row_int(row, "id");
        Retry *r = retry_of(p, id);
        gint64 ms = config_get_int(p->mgr->config, "manager", "recovery_retry_ms");

        r->next_at = g_get_monotonic_time() + ms * 1000;
        /* every attempt is an event for the first minute or so, then one in 60 */
        if (r->busy++ < 60 || r->busy % 60 == 0)
                store_event_add(p->store, &system_actor, "recovery_attempt", "desktop", id,
                                row_str(row, "name"), error->message, NULL);
        kick_after(p, (guint)ms);
}

typedef struct {
        JsonObject *d, *pool;
        gint64 priority;
} Candidate;

static gint by_priority(gconstpointer a, gconstpointer b)
{
        const Candidate *x = a, *y = b;

        if (x->priority != y->priority)
                return x->priority > y->priority ? -1 : 1;
        return row_int(x->d, "id") < row_int(y->d, "id") ? -1 : 1;
}

static gboolean host_down(Snapshot *s, gint64 id)
{
        JsonObject *h = id ? host_row(s, id) : NULL;

        return h && row_host_state(h) == HOST_DOWN;
}

/* Whether a host other than the down one may reach path: some said it does, or some did not
 * say yet (not enough to call the desktop unavailable). FALSE: every other host said it
 * does not, or there is no other host. */
static gboolean others_reach(Snapshot *s, const char *path, gint64 dead)
{
        for (guint i = 0; i < json_array_get_length(s->hosts); i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                if (row_int(h, "id") != dead && !placement_host_says_unreachable(h, path))
                        return TRUE;
        }
        return FALSE;
}

/* A stateless desktop of a down host: its sessions end (the user connects again to a fresh
 * desktop) and it is made fresh elsewhere at once, which refills the pool. */
static void recover_stateless(Reconciler *p, Snapshot *s, JsonObject *d, JsonObject *pool,
                              const char *from)
{
        gint64 id = row_int(d, "id"), from_id = row_ref(d, "host_id");
        g_autofree char *reason = g_strdup_printf("its host %s went down", from);
        g_autofree char *now = util_now_iso();
        g_autofree char *story = NULL;
        JsonObject *extra;
        JsonObject *nv = g_hash_table_lookup(s->newest, &(gint64){row_ref(pool, "template_id")});
        const char *path =
                nv ? g_hash_table_lookup(s->volume_path, &(gint64){row_ref(nv, "volume_id")}) : NULL;
        gint64 host;

        for (guint i = 0; i < json_array_get_length(s->sessions); i++) {
                JsonObject *se = json_array_get_object_element(s->sessions, i);
                if (row_ref(se, "desktop_id") == id)
                        sessions_end(p->mgr, p->store, se, reason, &system_actor, NULL);
        }
        if (!nv || !path)
                return;
        host = place(p, s, path, row_str(pool, "hosts"));
        story = g_strdup_printf("made fresh at %s after %s went down", now, from);
        extra = json_object_new();
        json_object_set_string_member(extra, "recovery", story);
        /* provisioned elsewhere by the pool's pass below (or placed there when no host is
         * usable now) */
        if (reset_fresh(p, d, nv, host, extra, reason))
                g_hash_table_insert(p->recovering, id_key(id), GSIZE_TO_POINTER(from_id));
}

/* A persistent desktop that ran on a down host (or is being recovered): started on another
 * host that reaches its disk and has room; unavailable when no other host reaches it. */
static void recover_persistent(Reconciler *p, Snapshot *s, JsonObject *d, JsonObject *pool,
                               const char *from, gint64 from_id)
{
        gint64 id = row_int(d, "id");
        const char *path = g_hash_table_lookup(s->volume_path, &(gint64){row_ref(d, "volume_id")});
        gint64 vid = row_ref(d, "template_version_id");
        JsonObject *ver = g_hash_table_lookup(s->versions_by, &vid);
        JsonObject *target = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) extra = json_object_new();
        JsonObject *args;
        PoolView v = {.pool = pool, .path = path, .hint = row_str(pool, "hosts")};

        if (!path || !ver)
                return;
        if (!others_reach(s, path, from_id)) {
                g_autofree char *why = g_strdup_printf(
                        "its host %s is down and no other host reaches its disk (volume %s)", from,
                        path);
                if (state_is(d, DESKTOP_UNAVAILABLE))
                        return;
                json_object_set_string_member(extra, "failure", why);
                json_object_set_string_member(extra, "recovery", why);
                if (desktop_set(p, id, row_str(d, "name"), DESKTOP_UNAVAILABLE, extra,
                                "desktop_unavailable", why))
                        g_hash_table_insert(p->recovering, id_key(id), GSIZE_TO_POINTER(from_id));
                return;
        }
        /* a recovery under way keeps its host while that host may take it */
        if (state_is(d, DESKTOP_RECOVERING)) {
                JsonObject *h = host_row(s, row_ref(d, "host_id"));
                if (h && row_int(h, "id") != from_id &&
                    placement_host_usable(p->mgr, h, path, v.hint) &&
                    host_has_room(p, row_int(h, "id")) && fits(p, s, &v, h, row_int(ver, "ram_mb")))
                        target = h;
        }
        for (guint i = 0; i < json_array_get_length(s->hosts) && !target; i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                if (row_int(h, "id") != from_id &&
                    placement_host_usable(p->mgr, h, path, v.hint) &&
                    host_has_room(p, row_int(h, "id")) && fits(p, s, &v, h, row_int(ver, "ram_mb")))
                        target = h;
        }
        if (!target) {
                if (!g_hash_table_contains(p->waiting_told, &id)) {
                        g_autofree char *why = g_strdup_printf(
                                "its host %s is down; no other host has room for it now (%" G_GINT64_FORMAT
                                " MiB): it starts as soon as one has",
                                from, row_int(ver, "ram_mb"));
                        store_event_add(p->store, &system_actor, "recovery_waiting", "desktop", id,
                                        row_str(d, "name"), why, NULL);
                        g_hash_table_add(p->waiting_told, id_key(id));
                }
                return;
        }
        g_hash_table_remove(p->waiting_told, &id);
        if (!state_is(d, DESKTOP_RECOVERING) || row_ref(d, "host_id") != row_int(target, "id")) {
                g_autofree char *why =
                        g_strdup_printf("its host %s went down: starting it on %s", from,
                                        row_str(target, "name"));
                json_object_set_int_member(extra, "host", row_int(target, "id"));
                json_object_set_string_member(extra, "recovery", why);
                if (!desktop_set(p, id, row_str(d, "name"), DESKTOP_RECOVERING, extra,
                                 "desktop_recovering", why))
                        return;
                /* consoles still open to the old host (one cut off keeps them hanging) are
                 * closed: clients reconnect and are told it is being restarted */
                if (!state_is(d, DESKTOP_RECOVERING))
                        tunnels_close(id);
                json_object_set_int_member(d, "host_id", row_int(target, "id"));
                row_set_desktop_state(d, DESKTOP_RECOVERING);
        }
        g_hash_table_insert(p->recovering, id_key(id), GSIZE_TO_POINTER(from_id));
        if (!(args = snapshot_args(p, s, pool, d, &error))) {
                step_failed(p, d, STEP_RECOVER, error);
                return;
        }
        step_send(p, d, row_int(target, "id"), STEP_RECOVER, hostcmd_start(args));
}

/* The desktops of down hosts, highest pool ha_priority first: persistent ones that ran there
 * are started elsewhere, stateless ones made fresh elsewhere; then each down host's recovery
 * is written on its row. */
static void recoveries(Reconciler *p, Snapshot *s)
{
        g_autoptr(GArray) todo = g_array_new(FALSE, FALSE, sizeof(Candidate));

        for (guint i = 0; i < json_array_get_length(s->desktops); i++) {
                JsonObject *d = json_array_get_object_element(s->desktops, i);
                JsonObject *pool = find(s->pools, row_ref(d, "pool_id"));
                gboolean on_down = host_down(s, row_ref(d, "host_id"));
                gboolean stateless =
                        pool && g_str_equal(row_str(pool, "mode"), "stateless");
                Candidate c = {d, pool, pool ? row_int(pool, "ha_priority") : 0};
                if (!pool || row_bool(pool, "deleting") || busy(p, d))
                        continue;
                if (state_is(d, DESKTOP_RECOVERING) ||
                    (on_down && state_is(d, DESKTOP_UNAVAILABLE)) ||
                    (on_down && !stateless &&
                     (state_is(d, DESKTOP_RUNNING) || state_is(d, DESKTOP_STARTING) ||
                      state_is(d, DESKTOP_STOPPING))) ||
                    (on_down && stateless && !state_is(d, DESKTOP_DELETING) &&
                     !state_is(d, DESKTOP_PROVISIONING)))
                        g_array_append_val(todo, c);
        }
        g_array_sort(todo, by_priority);
        for (guint i = 0; i < todo->len; i++) {
                Candidate *c = &g_array_index(todo, Candidate, i);
                gint64 hid = row_ref(c->d, "host_id");
                /* the host it is recovered from: where it is placed when that host is down,
                 * else (a recovery under way, its new host up) the one it left; 0 when this
                 * manager did not see it leave (any other host will do) */
                gint64 from_id = host_down(s, hid) ? hid
                                                   : (gint64)GPOINTER_TO_SIZE(g_hash_table_lookup(
                                                             p->recovering,
                                                             &(gint64){row_int(c->d, "id")}));
                JsonObject *fh = from_id ? host_row(s, from_id) : NULL;
                const char *from = fh ? row_str(fh, "name") : "its host";
                if (g_str_equal(row_str(c->pool, "mode"), "stateless"))
                        recover_stateless(p, s, c->d, c->pool, from);
                else
                        recover_persistent(p, s, c->d, c->pool, from, from_id);
        }
}

/* ---- guests of down hosts ------------------------------------------------------------------ */

typedef struct {
        Reconciler *p;
        gint64 guest_id, from, to;
        char *name, *from_name, *to_name;
} GuestStart;

static void guest_start_free(GuestStart *g)
{
        g_free(g->name);
        g_free(g->from_name);
        g_free(g->to_name);
        g_free(g);
}

static void guest_event(Reconciler *p, gint64 id, const char *name, const char *action,
                        const char *detail)
{
        store_event_add(p->store, &system_actor, action, "guest", id, name, detail, NULL);
}

static void guest_started(JsonObject *result, const GError *error, gpointer data)
{
        GuestStart *g = data;
        Reconciler *p = g->p;
        Retry *r = g_hash_table_lookup(p->guest_retries, &g->guest_id);
        gint64 ms = config_get_int(p->mgr->config, "manager", "recovery_retry_ms");

        g_hash_table_remove(p->guests_inflight, &g->guest_id);
        if (!r) {
                r = g_new0(Retry, 1);
                g_hash_table_insert(p->guest_retries, id_key(g->guest_id), r);
        }
        if (!error) {
                g_autoptr(JsonObject) patch = json_object_new();
                g_autoptr(JsonObject) upd = NULL;
                g_autofree char *why = g_strdup_printf("restarted on %s after %s went down",
                                                       g->to_name, g->from_name);
                row_set_vm_state(patch, VM_RUNNING);
                upd = store_update_id(p->store, resource_by_kind("guest"), g->guest_id, patch, NULL,
                                      NULL);
                guest_event(p, g->guest_id, g->name, "guest_recovered", why);
                g_hash_table_remove(p->guests_recovering, &g->guest_id);
                g_hash_table_remove(p->guest_retries, &g->guest_id);
        } else if (g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT)) {
                r->next_at = g_get_monotonic_time() + ms * 1000;
                if (r->busy++ < 60 || r->busy % 60 == 0)
                        guest_event(p, g->guest_id, g->name, "recovery_attempt", error->message);
        } else {
                r->failures++;
                r->next_at = g_get_monotonic_time() +
                             MIN((gint64)1 << MIN(r->failures, 6), 60) * G_USEC_PER_SEC;
                guest_event(p, g->guest_id, g->name, "recovery_attempt", error->message);
        }
        guest_start_free(g);
        kick_after(p, (guint)ms);
}

/* A guest that ran on a down host (its row still says running there), or whose recovery is
 * under way: started on another host reaching its disk, like a persistent desktop. */
static void guest_recoveries(Reconciler *p, Snapshot *s)
{
        g_autoptr(JsonArray) guests = NULL;
        gboolean any_down = g_hash_table_size(p->guests_recovering) > 0;

        for (guint i = 0; i < json_array_get_length(s->hosts) && !any_down; i++)
                any_down = row_host_state(json_array_get_object_element(s->hosts, i)) == HOST_DOWN;
        if (!any_down || !(guests = store_list_all(p->store, resource_by_kind("guest"), NULL, NULL)))
                return;
        for (guint i = 0; i < json_array_get_length(guests); i++) {
                JsonObject *g = json_array_get_object_element(guests, i);
                gint64 id = row_int(g, "id"), hid = row_ref(g, "host_id"), from;
                const char *path =
                        g_hash_table_lookup(s->volume_path, &(gint64){row_ref(g, "volume_id")});
                Retry *r = g_hash_table_lookup(p->guest_retries, &id);
                g_autoptr(JsonObject) media = NULL;
                g_autofree char *dom = NULL;
                JsonObject *target = NULL, *fh;
                PoolView v = {.path = path, .hint = ""};
                GuestStart *gs;
                gboolean down = host_down(s, hid);
                if (down && (row_vm_state(g) == VM_RUNNING || row_vm_state(g) == VM_STARTING))
                        g_hash_table_insert(p->guests_recovering, id_key(id), GSIZE_TO_POINTER(hid));
                if (!g_hash_table_contains(p->guests_recovering, &id) ||
                    g_hash_table_contains(p->guests_inflight, &id) ||
                    (r && g_get_monotonic_time() < r->next_at) || !path)
                        continue;
                if (row_vm_state(g) == VM_STOPPED && !down) { /* stopped by hand meanwhile */
                        g_hash_table_remove(p->guests_recovering, &id);
                        continue;
                }
                from = GPOINTER_TO_SIZE(g_hash_table_lookup(p->guests_recovering, &id));
                fh = host_row(s, from);
                if (!others_reach(s, path, from)) {
                        if (!g_hash_table_contains(p->waiting_told, &(gint64){-id})) {
                                g_autofree char *why = g_strdup_printf(
                                        "its host %s is down and no other host reaches its disk "
                                        "(volume %s): it waits for its host",
                                        fh ? row_str(fh, "name") : "?", path);
                                guest_event(p, id, row_str(g, "name"), "guest_unavailable", why);
                                g_hash_table_add(p->waiting_told, id_key(-id));
                        }
                        continue;
                }
                for (guint k = 0; k < json_array_get_length(s->hosts) && !target; k++) {
                        JsonObject *h = json_array_get_object_element(s->hosts, k);
                        if (row_int(h, "id") != from &&
                            placement_host_usable(p->mgr, h, path, "") &&
                            fits(p, s, &v, h, row_int(g, "ram_mb")))
                                target = h;
                }
                if (!target)
                        continue;
                if (row_ref(g, "media_id"))
                        media = row_get(p->store, "media", row_ref(g, "media_id"), NULL);
                dom = agent_domain_name(p->mgr->installation, "guest", id);
                gs = g_new0(GuestStart, 1);
                gs->p = p;
                gs->guest_id = id;
                gs->from = from;
                gs->to = row_int(target, "id");
                gs->name = g_strdup(row_str(g, "name"));
                gs->from_name = g_strdup(fh ? row_str(fh, "name") : "its host");
                gs->to_name = g_strdup(row_str(target, "name"));
                if (!r || r->busy == 0) {
                        g_autofree char *why = g_strdup_printf(
                                "its host %s went down: starting it on %s", gs->from_name,
                                gs->to_name);
                        guest_event(p, id, gs->name, "guest_recovering", why);
                }
                HostCall call = {p->mgr->agents, gs->to,
                                 config_get_int(p->mgr->config, "manager", "agent_command_timeout"),
                                 guest_started, gs};
                if (!hostcmd_send(&call,
                                  hostcmd_start(hostcmd_guest_spec(dom, g, path,
                                                                   media ? row_str(media, "path")
                                                                         : NULL)),
                                  NULL)) {
                        guest_start_free(gs);
                        continue;
                }
                g_hash_table_add(p->guests_inflight, id_key(id));
        }
}

/* Each host a recovery ran from: its row says how far it is, then that it is done. */
static void recovery_progress(Reconciler *p, Snapshot *s)
{
        g_autoptr(GHashTable) hosts = id_table();
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, p->recovering);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (GPOINTER_TO_SIZE(v))
                        g_hash_table_add(hosts, id_key((gint64)GPOINTER_TO_SIZE(v)));
        g_hash_table_iter_init(&it, hosts);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                gint64 hid = *(gint64 *)k;
                JsonObject *h = host_row(s, hid);
                guint back = 0, going = 0, unavailable = 0, failed = 0;
                g_autofree char *text = NULL, *now = NULL;
                g_autoptr(JsonObject) patch = NULL, upd = NULL;
                GHashTableIter dit;
                gpointer dk, dv;
                g_hash_table_iter_init(&dit, p->recovering);
                while (g_hash_table_iter_next(&dit, &dk, &dv)) {
                        JsonObject *d;
                        if ((gint64)GPOINTER_TO_SIZE(dv) != hid)
                                continue;
                        d = find(s->desktops, *(gint64 *)dk);
                        if (!d)
                                continue;
                        if (state_is(d, DESKTOP_RUNNING) ||
                            (state_is(d, DESKTOP_STOPPED) && row_ref(d, "host_id") != hid))
                                back++;
                        else if (state_is(d, DESKTOP_UNAVAILABLE))
                                unavailable++;
                        else if (state_is(d, DESKTOP_FAILED))
                                failed++;
                        else
                                going++;
                }
                if (!h)
                        continue;
                now = util_now_iso();
                text = going ? g_strdup_printf("in progress: %u back on other hosts, %u on their "
                                               "way, %u unavailable, %u failed",
                                               back, going, unavailable, failed)
                             : g_strdup_printf("done at %s: %u back on other hosts, %u "
                                               "unavailable, %u failed",
                                               now, back, unavailable, failed);
                if (g_str_has_prefix(row_str(h, "recovery"), "done") &&
                    g_str_has_prefix(text, "done"))
                        goto forget;
                patch = json_object_new();
                json_object_set_string_member(patch, "recovery", text);
                upd = store_update_id(p->store, resource_by_kind("host"), hid, patch, NULL, NULL);
                if (!going)
                        store_event_add(p->store, &system_actor, "host_recovered", "host", hid,
                                        row_str(h, "name"), text, NULL);
                if (going)
                        continue;
        forget:
                g_hash_table_iter_init(&dit, p->recovering);
                while (g_hash_table_iter_next(&dit, &dk, &dv))
                        if ((gint64)GPOINTER_TO_SIZE(dv) == hid)
                                g_hash_table_iter_remove(&dit);
        }
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
        recoveries(p, &s);
        guest_recoveries(p, &s);
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

static void kick_after(Reconciler *p, guint ms)
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
        kick_after(p, 50);
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
        p->inflight = id_table();
        p->host_load = id_table();
        p->retries = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        p->recovering = id_table();
        p->guests_recovering = id_table();
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
