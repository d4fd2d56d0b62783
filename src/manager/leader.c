/* Leadership among several managers on one PostgreSQL database (leader.h). A thread of its own
 * ("leader", with its own store handle, exempt from the fence) ticks every
 * manager.lease_renew ms: the holder renews its lease (manager.lease_ttl ms, on the database's
 * clock), a standby takes it at the next term once it has lapsed (ticking again right when it
 * is due to lapse). Becoming the leader sets the process's fence to the new term and runs
 * on_lead on the main loop (the leader's parts start there). A leader that cannot renew
 * within its lease, or finds another term, stops the process at once (exit 75): its fence
 * already refuses every write, and its agent links close with it; systemd starts it again as
 * a standby. A standby's first tick compares the cluster-wide configuration (the digest) with
 * the leader's and refuses to go on when they differ, naming the keys. */
#define G_LOG_DOMAIN "manager"

#include "manager/leader.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXIT_NOT_LEADER 75

struct _Leader {
        Manager *mgr;
        Store *store;
        GThread *thread;
        GMainContext *ctx;
        GMainLoop *loop;
        char *name, *digest;
        gint64 term;      /* held, 0: standby */
        gint64 renewed;   /* monotonic µs of the last renewal */
        gboolean checked; /* the configuration was compared with the leader's */
        LeaderStart on_lead;
        GSource *tick;
};

/* What several managers of one installation must agree on: every key of the groups the
 * leader's work reads, but what is each manager's own (where it listens, its threads, its
 * certificate, its name, how it reaches the database). "group.key=value" lines. */
static char *config_digest(Config *c)
{
        static const char *const own[] = {"manager.listen",
                                          "manager.threads",
                                          "manager.tls_cert",
                                          "manager.tls_key",
                                          "manager.plain_http",
                                          "manager.name",
                                          "manager.max_connections",
                                          "manager.initial_admin_password",
                                          NULL};
        GString *out = g_string_new(NULL);
        gsize n;
        const ConfigKeyDef *keys = config_keys(&n);

        for (gsize i = 0; i < n; i++) {
                g_autofree char *k = g_strdup_printf("%s.%s", keys[i].group, keys[i].key);
                if (!g_str_equal(keys[i].group, "manager") &&
                    !g_str_equal(keys[i].group, "scheduler") &&
                    !g_str_equal(keys[i].group, "directory"))
                        continue;
                if (g_strv_contains(own, k))
                        continue;
                g_string_append_printf(out, "%s=%s\n", k,
                                       keys[i].secret
                                               ? "(secret)"
                                               : config_get_string(c, keys[i].group, keys[i].key));
        }
        return g_string_free(out, FALSE);
}

/* The keys whose values differ between two digests, "a (x here, y there), …" (g_free). */
static char *digest_difference(const char *mine, const char *theirs)
{
        g_auto(GStrv) a = g_strsplit(mine, "\n", -1), b = g_strsplit(theirs, "\n", -1);
        GString *out = g_string_new(NULL);

        for (char **x = a; *x && **x; x++) {
                const char *eq = strchr(*x, '=');
                gsize klen = eq ? (gsize)(eq - *x) : strlen(*x);
                const char *there = NULL;
                for (char **y = b; *y; y++)
                        if (strncmp(*y, *x, klen + 1) == 0)
                                there = *y + klen + 1;
                if (!there || !eq || !g_str_equal(there, eq + 1))
                        g_string_append_printf(out, "%s%.*s (%s here, %s on the leader)",
                                               out->len ? ", " : "", (int)klen, *x,
                                               eq ? eq + 1 : "?", there ? there : "unset");
        }
        return g_string_free(out, FALSE);
}

static void stop_now(Leader *l, const char *why)
{
        g_warning("%s: stopping at once (exit %d); started again, it serves as a standby", why,
                   EXIT_NOT_LEADER);
        fprintf(stderr, "atriumd: %s\n", why);
        fflush(NULL);
        _exit(EXIT_NOT_LEADER);
}

static gboolean lead_on_main(gpointer data)
{
        Leader *l = data;

        l->on_lead(l->mgr);
        return G_SOURCE_REMOVE;
}

static void schedule(Leader *l, gint64 ms);

static gboolean tick(gpointer data)
{
        Leader *l = data;
        Manager *mgr = l->mgr;
        g_autoptr(GError) error = NULL;
        gint64 ttl = MCFG_INT(mgr, "lease_ttl"), renew = MCFG_INT(mgr, "lease_renew");
        gint64 now = g_get_monotonic_time();
        Lease lease;

        g_clear_pointer(&l->tick, g_source_unref);
        if (!store_lease_tick(l->store, l->name, mgr->url, l->digest, l->term, ttl, &lease,
                              &error)) {
                if (l->term && now - l->renewed >= ttl * 1000) {
                        g_autofree char *why =
                                g_strdup_printf("lost the leader's lease (term %" G_GINT64_FORMAT
                                                "): not renewed for %" G_GINT64_FORMAT " ms (%s)",
                                                l->term, (now - l->renewed) / 1000, error->message);
                        stop_now(l, why);
                }
                g_debug("lease tick: %s", error->message);
                schedule(l, renew);
                return G_SOURCE_REMOVE;
        }
        if (lease.leader) {
                l->renewed = now;
                if (lease.took_over) {
                        l->term = lease.term;
                        store_fence(l->name, l->term);
                        manager_set_leader(mgr, TRUE, mgr->url, l->term);
                        g_message("this manager (%s) leads now, term %" G_GINT64_FORMAT, l->name,
                                  l->term);
                        g_main_context_invoke(NULL, lead_on_main, l);
                }
                schedule(l, renew);
        } else {
                gboolean lapsed = lease.left_ms <= 0 || g_str_equal(lease.holder, l->name);
                if (l->term) {
                        g_autofree char *why = g_strdup_printf(
                                "no longer the leader: term %" G_GINT64_FORMAT " is %s's now "
                                "(this manager held term %" G_GINT64_FORMAT ")",
                                lease.term, lease.holder, l->term);
                        stop_now(l, why);
                }
                if (!l->checked && !lapsed) {
                        g_autofree char *theirs = store_manager_digest(l->store, lease.holder);
                        g_autofree char *diff =
                                theirs ? digest_difference(l->digest, theirs) : NULL;
                        l->checked = TRUE;
                        if (diff && *diff) {
                                g_autofree char *why =
                                        g_strdup_printf("this manager's configuration differs from "
                                                        "the leader %s's: %s "
                                                        "(managers of one installation must agree)",
                                                        lease.holder, diff);
                                stop_now(l, why);
                        }
                }
                manager_set_leader(mgr, FALSE, lapsed ? "" : lease.url, lease.term);
                /* a standby looks again when the lease is due to lapse */
                schedule(l, CLAMP(lease.left_ms + 5, 5, renew));
        }
        lease_clear(&lease);
        return G_SOURCE_REMOVE;
}

static void schedule(Leader *l, gint64 ms)
{
        l->tick = g_timeout_source_new((guint)ms);
        g_source_set_callback(l->tick, tick, l, NULL);
        g_source_attach(l->tick, l->ctx);
}

static gpointer thread_main(gpointer data)
{
        Leader *l = data;

        g_main_context_push_thread_default(l->ctx);
        store_fence_exempt_thread();
        schedule(l, 0);
        g_main_loop_run(l->loop);
        g_clear_pointer(&l->tick, g_source_destroy);
        g_main_context_pop_thread_default(l->ctx);
        return NULL;
}

Leader *leader_start(Manager *mgr, LeaderStart on_lead, GError **error)
{
        Leader *l = g_new0(Leader, 1);

        l->mgr = mgr;
        l->on_lead = on_lead;
        l->name = g_strdup(mgr->name);
        l->digest = config_digest(mgr->config);
        if (!(l->store = store_open_peer(mgr->store, error))) {
                leader_free(l);
                return NULL;
        }
        store_fence(l->name, 0); /* a standby until the lease is ours */
        l->ctx = g_main_context_new();
        l->loop = g_main_loop_new(l->ctx, FALSE);
        l->thread = g_thread_new("leader", thread_main, l);
        return l;
}

static gboolean quit(gpointer data)
{
        g_main_loop_quit(data);
        return G_SOURCE_REMOVE;
}

void leader_free(Leader *l)
{
        if (!l)
                return;
        if (l->thread) {
                g_main_context_invoke(l->ctx, quit, l->loop);
                g_thread_join(l->thread);
        }
        if (l->term && l->store) /* a standby may take over at once */
                store_lease_release(l->store, l->name, l->term);
        store_close(l->store);
        if (l->loop)
                g_main_loop_unref(l->loop);
        if (l->ctx)
                g_main_context_unref(l->ctx);
        g_free(l->name);
        g_free(l->digest);
        g_free(l);
}
