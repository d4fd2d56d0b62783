/* Agent benchmark, libvirt side: N domains on libvirt's test driver (a node file made by
 * run.sh). Measures the agent's full inventory (what a hello carries) and its heartbeat
 * figures, with the agent's model (one loop, a bounded worker pool), then the model the issue
 * names as the one that broke at 1,000 VMs: VDSM's thread per VM, each thread polling its own
 * domain once per heartbeat interval. Prints a table; asserts nothing.
 * Usage: bench-agent NODE_XML INSTALLATION SECONDS */
#include "agent/virt.h"

#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
        return g_get_monotonic_time() / 1000.0;
}

static double cpu_ms(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
               ru.ru_stime.tv_usec / 1e3;
}

/* VmRSS (KiB) and Threads of this process. */
static void self_status(long *rss_kb, long *threads)
{
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;

        *rss_kb = *threads = 0;
        if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL))
                return;
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                if (g_str_has_prefix(*l, "VmRSS:"))
                        *rss_kb = g_ascii_strtoll(*l + 6, NULL, 10);
                else if (g_str_has_prefix(*l, "Threads:"))
                        *threads = g_ascii_strtoll(*l + 8, NULL, 10);
        }
}

static void on_event(JsonObject *e, gpointer data)
{
        json_object_unref(e);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* ---- VDSM's model: a thread per VM ------------------------------------------------------- */

typedef struct {
        virConnectPtr conn;
        char *name;
        int seconds;
} PerVm;

static gpointer per_vm_thread(gpointer data)
{
        PerVm *p = data;

        for (int i = 0; i < p->seconds; i++) {
                virDomainPtr d = virDomainLookupByName(p->conn, p->name);
                int state, reason;
                virDomainInfo info;
                if (d) {
                        virDomainGetState(d, &state, &reason, 0);
                        virDomainGetInfo(d, &info);
                        virDomainFree(d);
                }
                g_usleep(G_USEC_PER_SEC);
        }
        return NULL;
}

int main(int argc, char **argv)
{
        g_autofree char *uri = NULL;
        g_autoptr(GError) error = NULL;
        Virt *v;
        double inv[5], fig = 0, t, c0, c1, w0;
        long rss0, rss1, th0, th1;
        guint n = 0;
        int seconds;
        virConnectPtr conn;
        virDomainPtr *doms = NULL;
        GPtrArray *threads;
        int ndom;

        if (argc != 4) {
                fprintf(stderr, "usage: bench-agent NODE_XML INSTALLATION SECONDS\n");
                return 2;
        }
        seconds = (int)g_ascii_strtoll(argv[3], NULL, 10);
        uri = g_strdup_printf("test://%s", argv[1]);
        v = virt_open(uri, g_main_context_default(), on_event, NULL, &error);
        if (!v) {
                fprintf(stderr, "bench-agent: %s\n", error->message);
                return 1;
        }
        virt_set_installation(v, argv[2]);
        self_status(&rss0, &th0);
        for (int i = 0; i < 5; i++) {
                g_autoptr(JsonArray) a = NULL;
                t = now_ms();
                a = virt_inventory(v, TRUE, &error);
                inv[i] = now_ms() - t;
                if (!a) {
                        fprintf(stderr, "bench-agent: %s\n", error->message);
                        return 1;
                }
                n = json_array_get_length(a);
        }
        qsort(inv, 5, sizeof(double), cmp_double);
        c0 = cpu_ms();
        for (int i = 0; i < 20; i++) {
                g_autoptr(JsonObject) f = NULL;
                t = now_ms();
                f = virt_figures(v, &error);
                fig += now_ms() - t;
                if (!f) {
                        fprintf(stderr, "bench-agent: %s\n", error->message);
                        return 1;
                }
        }
        c1 = cpu_ms();
        self_status(&rss1, &th1);
        printf("Atrium agent model (one loop + worker pool), %u domains of ours:\n", n);
        printf("  full inventory (hello):        median %.1f ms, best %.1f ms, worst %.1f ms\n",
               inv[2], inv[0], inv[4]);
        printf("  heartbeat figures:             %.2f ms wall, %.2f ms CPU each\n", fig / 20,
               (c1 - c0) / 20);
        printf("  CPU for %d s of 1 s heartbeats: %.0f ms (%.2f %% of a core)\n", seconds,
               (c1 - c0) / 20 * seconds, (c1 - c0) / 20 / 10);
        printf("  threads: %ld   RSS: %ld KiB\n", th1, rss1);
        virt_close(v);

        /* The thread-per-VM model on the same domains. */
        conn = virConnectOpen(uri);
        ndom = virConnectListAllDomains(conn, &doms, 0);
        threads = g_ptr_array_new();
        self_status(&rss0, &th0);
        c0 = cpu_ms();
        w0 = now_ms();
        for (int i = 0; i < ndom; i++) {
                PerVm *p = g_new0(PerVm, 1);
                GThread *th;
                p->conn = conn;
                p->name = g_strdup(virDomainGetName(doms[i]));
                p->seconds = seconds;
                th = g_thread_try_new("vm", per_vm_thread, p, NULL);
                if (!th)
                        break;
                g_ptr_array_add(threads, th);
                virDomainFree(doms[i]);
        }
        g_usleep(G_USEC_PER_SEC / 2);
        self_status(&rss1, &th1);
        for (guint i = 0; i < threads->len; i++)
                g_thread_join(threads->pdata[i]);
        c1 = cpu_ms();
        printf("VDSM's model (a thread per VM polling once a second), %u threads for %d s:\n",
               threads->len, seconds);
        printf("  CPU: %.0f ms over %.1f s (%.2f %% of a core)\n", c1 - c0,
               (now_ms() - w0) / 1000, (c1 - c0) / (now_ms() - w0) * 100);
        printf("  threads: %ld   RSS: %ld KiB (+%ld KiB for the threads)\n", th1, rss1,
               rss1 - rss0);
        free(doms);
        virConnectClose(conn);
        return 0;
}
