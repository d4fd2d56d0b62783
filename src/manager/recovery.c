/* The pool reconciler's recovery from a down host (see reconciler-private.h): the desktops
 * and guests of a host that went down started on others, in the pools' priority order, and
 * the hosts' recovery progress; moved out of reconciler.c as it was. */
#define G_LOG_DOMAIN "pools"

#include "manager/reconciler-private.h"
#include "manager/rows.h"
#include "manager/agentlink.h"
#include "manager/hostcmd.h"
#include "manager/operations.h"
#include "manager/placement.h"
#include "manager/scheduler.h"
#include "manager/sessions.h"
#include "manager/tunnels.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/naming.h"

#include <string.h>

/* ---- recovery from a down host ----------------------------------------------------------- */

/* A recovery start refused because the disk's lease is busy (the old QEMU may live on a host
 * that is cut off, until it fences itself): tried again after recovery_retry_ms, not counted
 * as a failure, each attempt an event. */
void recovery_busy(Reconciler *p, JsonObject *row, const GError *error)
{
        gint64 id = row_int(row, "id");
        Retry *r = rec_retry_of(p, id);
        gint64 ms = config_get_int(p->mgr->config, "manager", "recovery_retry_ms");

        r->next_at = g_get_monotonic_time() + ms * 1000;
        /* every attempt is an event for the first minute or so, then one in 60 */
        if (r->busy++ < 60 || r->busy % 60 == 0)
                store_event_add(p->store, &rec_system_actor, "recovery_attempt", "desktop", id,
                                row_str(row, "name"), error->message, NULL);
        rec_kick_after(p, (guint)ms);
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
        JsonObject *h = id ? rec_host_row(s, id) : NULL;

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
                        sessions_end(p->mgr, p->store, se, reason, &rec_system_actor, NULL);
        }
        if (!nv || !path)
                return;
        host = rec_place(p, s, path, row_str(pool, "hosts"));
        story = g_strdup_printf("made fresh at %s after %s went down", now, from);
        extra = json_object_new();
        json_object_set_string_member(extra, "recovery", story);
        /* provisioned elsewhere by the pool's pass below (or placed there when no host is
         * usable now) */
        if (rec_reset_fresh(p, d, nv, host, extra, reason))
                g_hash_table_insert(p->recovering, rec_id_key(id), GSIZE_TO_POINTER(from_id));
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
                if (rec_state_is(d, DESKTOP_UNAVAILABLE))
                        return;
                json_object_set_string_member(extra, "failure", why);
                json_object_set_string_member(extra, "recovery", why);
                if (rec_desktop_set(p, id, row_str(d, "name"), DESKTOP_UNAVAILABLE, extra,
                                "desktop_unavailable", why))
                        g_hash_table_insert(p->recovering, rec_id_key(id), GSIZE_TO_POINTER(from_id));
                return;
        }
        /* a recovery under way keeps its host while that host may take it */
        if (rec_state_is(d, DESKTOP_RECOVERING)) {
                JsonObject *h = rec_host_row(s, row_ref(d, "host_id"));
                if (h && row_int(h, "id") != from_id &&
                    placement_host_usable(p->mgr, h, path, v.hint) &&
                    rec_host_has_room(p, row_int(h, "id")) && rec_fits(p, s, &v, h, row_int(ver, "ram_mb")))
                        target = h;
        }
        for (guint i = 0; i < json_array_get_length(s->hosts) && !target; i++) {
                JsonObject *h = json_array_get_object_element(s->hosts, i);
                if (row_int(h, "id") != from_id &&
                    placement_host_usable(p->mgr, h, path, v.hint) &&
                    rec_host_has_room(p, row_int(h, "id")) && rec_fits(p, s, &v, h, row_int(ver, "ram_mb")))
                        target = h;
        }
        if (!target) {
                if (!g_hash_table_contains(p->waiting_told, &id)) {
                        g_autofree char *why = g_strdup_printf(
                                "its host %s is down; no other host has room for it now (%" G_GINT64_FORMAT
                                " MiB): it starts as soon as one has",
                                from, row_int(ver, "ram_mb"));
                        store_event_add(p->store, &rec_system_actor, "recovery_waiting", "desktop", id,
                                        row_str(d, "name"), why, NULL);
                        g_hash_table_add(p->waiting_told, rec_id_key(id));
                }
                return;
        }
        g_hash_table_remove(p->waiting_told, &id);
        if (!rec_state_is(d, DESKTOP_RECOVERING) || row_ref(d, "host_id") != row_int(target, "id")) {
                g_autofree char *why =
                        g_strdup_printf("its host %s went down: starting it on %s", from,
                                        row_str(target, "name"));
                json_object_set_int_member(extra, "host", row_int(target, "id"));
                json_object_set_string_member(extra, "recovery", why);
                if (!rec_desktop_set(p, id, row_str(d, "name"), DESKTOP_RECOVERING, extra,
                                 "desktop_recovering", why))
                        return;
                /* consoles still open to the old host (one cut off keeps them hanging) are
                 * closed: clients reconnect and are told it is being restarted */
                if (!rec_state_is(d, DESKTOP_RECOVERING))
                        tunnels_close(id);
                json_object_set_int_member(d, "host_id", row_int(target, "id"));
                row_set_desktop_state(d, DESKTOP_RECOVERING);
        }
        g_hash_table_insert(p->recovering, rec_id_key(id), GSIZE_TO_POINTER(from_id));
        if (!(args = rec_snapshot_args(p, s, pool, d, &error))) {
                rec_step_failed(p, d, STEP_RECOVER, error);
                return;
        }
        rec_step_send(p, d, row_int(target, "id"), STEP_RECOVER, hostcmd_start(args));
}

/* The desktops of down hosts, highest pool ha_priority first: persistent ones that ran there
 * are started elsewhere, stateless ones made fresh elsewhere; then each down host's recovery
 * is written on its row. */
void recovery_desktops(Reconciler *p, Snapshot *s)
{
        g_autoptr(GArray) todo = g_array_new(FALSE, FALSE, sizeof(Candidate));

        for (guint i = 0; i < json_array_get_length(s->desktops); i++) {
                JsonObject *d = json_array_get_object_element(s->desktops, i);
                JsonObject *pool = rec_find(s->pools, row_ref(d, "pool_id"));
                gboolean on_down = host_down(s, row_ref(d, "host_id"));
                gboolean stateless =
                        pool && g_str_equal(row_str(pool, "mode"), "stateless");
                Candidate c = {d, pool, pool ? row_int(pool, "ha_priority") : 0};
                if (!pool || row_bool(pool, "deleting") || rec_busy(p, d))
                        continue;
                if (rec_state_is(d, DESKTOP_RECOVERING) ||
                    (on_down && rec_state_is(d, DESKTOP_UNAVAILABLE)) ||
                    (on_down && !stateless &&
                     (rec_state_is(d, DESKTOP_RUNNING) || rec_state_is(d, DESKTOP_STARTING) ||
                      rec_state_is(d, DESKTOP_STOPPING))) ||
                    (on_down && stateless && !rec_state_is(d, DESKTOP_DELETING) &&
                     !rec_state_is(d, DESKTOP_PROVISIONING)))
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
                JsonObject *fh = from_id ? rec_host_row(s, from_id) : NULL;
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
        store_event_add(p->store, &rec_system_actor, action, "guest", id, name, detail, NULL);
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
                g_hash_table_insert(p->guest_retries, rec_id_key(g->guest_id), r);
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
        rec_kick_after(p, (guint)ms);
}

/* A guest that ran on a down host (its row still says running there), or whose recovery is
 * under way: started on another host reaching its disk, like a persistent desktop. */
void recovery_guests(Reconciler *p, Snapshot *s)
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
                        g_hash_table_insert(p->guests_recovering, rec_id_key(id), GSIZE_TO_POINTER(hid));
                if (!g_hash_table_contains(p->guests_recovering, &id) ||
                    g_hash_table_contains(p->guests_inflight, &id) ||
                    (r && g_get_monotonic_time() < r->next_at) || !path)
                        continue;
                if (row_vm_state(g) == VM_STOPPED && !down) { /* stopped by hand meanwhile */
                        g_hash_table_remove(p->guests_recovering, &id);
                        continue;
                }
                from = GPOINTER_TO_SIZE(g_hash_table_lookup(p->guests_recovering, &id));
                fh = rec_host_row(s, from);
                if (!others_reach(s, path, from)) {
                        if (!g_hash_table_contains(p->waiting_told, &(gint64){-id})) {
                                g_autofree char *why = g_strdup_printf(
                                        "its host %s is down and no other host reaches its disk "
                                        "(volume %s): it waits for its host",
                                        fh ? row_str(fh, "name") : "?", path);
                                guest_event(p, id, row_str(g, "name"), "guest_unavailable", why);
                                g_hash_table_add(p->waiting_told, rec_id_key(-id));
                        }
                        continue;
                }
                for (guint k = 0; k < json_array_get_length(s->hosts) && !target; k++) {
                        JsonObject *h = json_array_get_object_element(s->hosts, k);
                        if (row_int(h, "id") != from &&
                            placement_host_usable(p->mgr, h, path, "") &&
                            rec_fits(p, s, &v, h, row_int(g, "ram_mb")))
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
                g_hash_table_add(p->guests_inflight, rec_id_key(id));
        }
}

/* Each host a recovery ran from: its row says how far it is, then that it is done. */
void recovery_progress(Reconciler *p, Snapshot *s)
{
        g_autoptr(GHashTable) hosts = rec_id_table();
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, p->recovering);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (GPOINTER_TO_SIZE(v))
                        g_hash_table_add(hosts, rec_id_key((gint64)GPOINTER_TO_SIZE(v)));
        g_hash_table_iter_init(&it, hosts);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                gint64 hid = *(gint64 *)k;
                JsonObject *h = rec_host_row(s, hid);
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
                        d = rec_find(s->desktops, *(gint64 *)dk);
                        if (!d)
                                continue;
                        if (rec_state_is(d, DESKTOP_RUNNING) ||
                            (rec_state_is(d, DESKTOP_STOPPED) && row_ref(d, "host_id") != hid))
                                back++;
                        else if (rec_state_is(d, DESKTOP_UNAVAILABLE))
                                unavailable++;
                        else if (rec_state_is(d, DESKTOP_FAILED))
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
                        store_event_add(p->store, &rec_system_actor, "host_recovered", "host", hid,
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
