/* Desktop names from pool patterns: tests/data/naming.in, one pattern per line, against the
 * golden tests/data/naming.out (the first names it makes, or the error). */
#include "common/error.h"
#include "proto/naming.h"
#include "testutil.h"

/* The case lines of tests/data/NAME: blank lines and # comments left out. */
static GStrv case_lines(const char *name)
{
        g_autofree char *rel = g_strconcat("tests/data/", name, NULL);
        g_autofree char *path = testutil_source_path(rel);
        g_autofree char *text = NULL;
        g_auto(GStrv) all = NULL;
        GStrvBuilder *b = g_strv_builder_new();
        GStrv out;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        all = g_strsplit(text, "\n", -1);
        for (char **l = all; *l; l++)
                if (**l && **l != '#')
                        g_strv_builder_add(b, *l);
        out = g_strv_builder_end(b);
        g_strv_builder_unref(b);
        return out;
}

static void test_golden(void)
{
        g_auto(GStrv) lines = case_lines("naming.in");
        g_autoptr(GString) out = g_string_new(NULL);

        for (char **l = lines; *l; l++) {
                g_autoptr(GError) error = NULL;
                g_string_append_printf(out, "%s => ", *l);
                if (pool_pattern_valid(*l, &error)) {
                        const guint ns[] = {1, 2, 10, 1000};
                        for (gsize i = 0; i < G_N_ELEMENTS(ns); i++) {
                                g_autofree char *name = pool_desktop_name(*l, ns[i]);
                                g_string_append_printf(out, "%s%s", i ? " " : "", name);
                        }
                        g_string_append_c(out, '\n');
                } else {
                        g_string_append_printf(out, "error: %s\n", error->message);
                }
        }
        testutil_golden("naming.out", out->str);
}

static void test_distinct(void)
{
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        for (guint n = 1; n <= 10000; n++) {
                char *name = pool_desktop_name("lab{n:3}.desk", n);
                g_assert_false(g_hash_table_contains(seen, name));
                g_hash_table_add(seen, name);
        }
        {
                g_autofree char *d = pool_default_pattern("office");
                g_assert_cmpstr(d, ==, "office-{n}");
                g_assert_true(pool_pattern_valid(d, NULL));
        }
}

/* Overlay names and paths: tests/data/overlays.in (installation, desktop id, volume path per
 * line) against tests/data/overlays.out. */
static void test_overlays(void)
{
        g_auto(GStrv) lines = case_lines("overlays.in");
        g_autoptr(GString) out = g_string_new(NULL);

        for (char **l = lines; *l; l++) {
                g_auto(GStrv) f = NULL;
                g_autofree char *name = NULL, *path = NULL;
                gint64 id;
                f = g_strsplit(*l, " ", 3);
                g_assert_cmpuint(g_strv_length(f), ==, 3);
                id = g_ascii_strtoll(f[1], NULL, 10);
                name = desktop_overlay_name(f[0], id);
                path = desktop_overlay_path(f[2], name);
                g_string_append_printf(out, "%s => %s %s\n", *l, name, path);
        }
        testutil_golden("overlays.out", out->str);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/naming/golden", test_golden);
        g_test_add_func("/naming/distinct", test_distinct);
        g_test_add_func("/naming/overlays", test_overlays);
        return g_test_run();
}
