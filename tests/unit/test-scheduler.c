/* The scheduler as tables: tests/data/scheduler.in (hosts and a request per case) against
 * the golden tests/data/scheduler.out (the host chosen, or why none). */
#include "common/error.h"
#include "manager/scheduler.h"
#include "testutil.h"

static void test_tables(void)
{
        g_autofree char *path = testutil_source_path("tests/data/scheduler.in");
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GString) out = g_string_new(NULL);
        g_autoptr(GArray) hosts = g_array_new(FALSE, TRUE, sizeof(SchedHost));
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) c = NULL;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) f = g_strsplit(*l, " ", -1);
                if (!**l || **l == '#')
                        continue;
                if (g_str_equal(f[0], "case")) {
                        g_assert_cmpuint(g_strv_length(f), ==, 6);
                        g_strfreev(c);
                        c = g_strdupv(f);
                        g_array_set_size(hosts, 0);
                } else if (g_str_equal(f[0], "host")) {
                        SchedHost h = {.up = TRUE, .linked = TRUE, .reaches = TRUE};
                        g_assert_cmpuint(g_strv_length(f), ==, 7);
                        h.id = g_ascii_strtoll(f[1], NULL, 10);
                        g_ptr_array_add(names, g_strdup(f[2]));
                        h.name = names->pdata[names->len - 1];
                        h.ram_mb = g_ascii_strtoll(f[3], NULL, 10);
                        h.committed_mb = g_ascii_strtoll(f[4], NULL, 10);
                        h.running = (guint)g_ascii_strtoull(f[5], NULL, 10);
                        h.up = !g_str_equal(f[6], "down");
                        h.maintenance = g_str_equal(f[6], "maint");
                        h.linked = !g_str_equal(f[6], "nolink");
                        h.reaches = !g_str_equal(f[6], "noreach");
                        g_array_append_val(hosts, h);
                } else {
                        g_autoptr(GError) error = NULL;
                        SchedRequest r = {0};
                        gint i;
                        g_assert_cmpstr(f[0], ==, "end");
                        g_assert_true(scheduler_policy_from_string(c[2], &r.policy));
                        r.overcommit = g_ascii_strtod(c[3], NULL);
                        r.need_mb = g_ascii_strtoll(c[4], NULL, 10);
                        r.hint = g_str_equal(c[5], "-") ? NULL : c[5];
                        i = scheduler_place((SchedHost *)hosts->data, hosts->len, &r, &error);
                        if (i >= 0)
                                g_string_append_printf(
                                        out, "%s => %s\n", c[1],
                                        g_array_index(hosts, SchedHost, i).name);
                        else
                                g_string_append_printf(out, "%s => %s: %s\n", c[1],
                                                       atrium_error_code_to_string(error->code),
                                                       error->message);
                }
        }
        testutil_golden("scheduler.out", out->str);
}

/* Deterministic: the same hosts in another order give the same host. */
static void test_order(void)
{
        SchedHost a[] = {{.id = 4, .name = "d", .up = TRUE, .linked = TRUE, .reaches = TRUE,
                          .ram_mb = 8192},
                         {.id = 2, .name = "b", .up = TRUE, .linked = TRUE, .reaches = TRUE,
                          .ram_mb = 8192}};
        SchedHost b[] = {a[1], a[0]};
        SchedRequest r = {.need_mb = 512, .overcommit = 1.0, .policy = SCHED_SPREAD};

        g_assert_cmpstr(a[scheduler_place(a, 2, &r, NULL)].name, ==,
                        b[scheduler_place(b, 2, &r, NULL)].name);
        g_assert_false(scheduler_policy_from_string("random", &r.policy));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/scheduler/tables", test_tables);
        g_test_add_func("/scheduler/order", test_order);
        return g_test_run();
}
