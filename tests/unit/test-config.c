#include "common/config.h"
#include "common/error.h"
#include "testutil.h"

#include <string.h>

static void test_defaults(void)
{
        g_autoptr(Config) c = config_new();

        g_assert_cmpstr(config_get_string(c, "daemon", "state_dir"), ==, "/var/lib/atrium");
        g_assert_cmpint(config_get_int(c, "manager", "max_connections"), ==, 1024);
        g_assert_false(config_get_bool(c, "manager", "plain_http"));
}

static void test_load_string(void)
{
        g_autoptr(Config) c = config_new();
        g_autoptr(GError) error = NULL;

        g_assert_true(config_load_data(c,
                                       "# comment\n[manager]\nlisten = 127.0.0.1:9000\n"
                                       "plain_http = yes\nmax_connections=64\n"
                                       "[daemon]\nlog_level=debug\n",
                                       -1, &error));
        g_assert_no_error(error);
        g_assert_cmpstr(config_get_string(c, "manager", "listen"), ==, "127.0.0.1:9000");
        g_assert_true(config_get_bool(c, "manager", "plain_http"));
        g_assert_cmpint(config_get_int(c, "manager", "max_connections"), ==, 64);
        g_assert_cmpstr(config_get_string(c, "daemon", "log_level"), ==, "debug");
}

/* Each bad config is refused with a message naming the problem, and changes nothing. */
static void test_bad(void)
{
        static const struct {
                const char *text, *needle;
        } cases[] = {
                {"[nosuch]\na=1\n", "unknown configuration section [nosuch]"},
                {"[manager]\nlisten_typo=1\n", "unknown configuration key 'listen_typo'"},
                {"[manager]\nmax_connections=3\n", "from 8 to 100000"},
                {"[manager]\nmax_connections=lots\n", "expected a whole number"},
                {"[manager]\nplain_http=maybe\n", "expected true or false"},
                {"[daemon]\nlog_level=loud\n", "expected one of debug, info, warning, error"},
                {"not a key file", "not a valid key file"},
                {"[manager]\nlisten=127.0.0.1:1\nmax_connections=0\n", "from 8"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Config) c = config_new();
                g_autoptr(GError) error = NULL;
                g_autofree char *before = config_dump(c), *after = NULL;

                g_assert_false(config_load_data(c, cases[i].text, -1, &error));
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
                if (!strstr(error->message, cases[i].needle))
                        g_error("case %zu: '%s' lacks '%s'", i, error->message, cases[i].needle);
                after = config_dump(c);
                g_assert_cmpstr(before, ==, after);
        }
}

static void test_sample(void)
{
        g_autofree char *sample = config_sample();
        g_autoptr(Config) c = config_new();
        g_autoptr(Config) d = config_new();
        g_autofree char *uncommented = NULL;
        gsize n;
        const ConfigKeyDef *keys = config_keys(&n);
        g_autoptr(GRegex) re = g_regex_new("^#([a-z_]+ = )", G_REGEX_MULTILINE, 0, NULL);

        /* Every key appears, with its help. */
        for (gsize i = 0; i < n; i++) {
                g_autofree char *line = g_strdup_printf("#%s = %s\n", keys[i].key, keys[i].def);
                g_assert_nonnull(strstr(sample, line));
                g_assert_nonnull(strstr(sample, keys[i].help));
        }
        /* The sample loads as is, and uncommented it gives the defaults. */
        g_assert_true(config_load_data(c, sample, -1, NULL));
        uncommented = g_regex_replace(re, sample, -1, 0, "\\1", 0, NULL);
        g_assert_true(config_load_data(d, uncommented, -1, NULL));
        {
                g_autofree char *a = config_dump(c), *b = config_dump(d);
                g_assert_cmpstr(a, ==, b);
        }
        testutil_golden("config-sample.conf", sample);
}

static void test_dump_masks_secrets(void)
{
        g_autoptr(Config) c = config_new();
        g_autofree char *dump = NULL;

        g_assert_true(config_set(c, "manager", "initial_admin_password", "hunter22", NULL));
        dump = config_dump(c);
        g_assert_null(strstr(dump, "hunter22"));
        g_assert_nonnull(strstr(dump, "manager.initial_admin_password = (set)"));
}

static void test_file(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *path = g_build_filename(dir, "atrium.conf", NULL);
        g_autoptr(Config) c = config_new();
        g_autoptr(GError) error = NULL;

        g_assert_false(config_load_file(c, path, &error));
        g_assert_nonnull(strstr(error->message, "cannot read configuration"));
        g_clear_error(&error);
        g_file_set_contents(path, "[manager]\nmax_connections = 1\n", -1, NULL);
        g_assert_false(config_load_file(c, path, &error));
        g_assert_nonnull(strstr(error->message, path)); /* names the file */
        testutil_rmdir(dir);
}

static void test_diff_reload(void)
{
        g_autoptr(Config) a = config_new();
        g_autoptr(Config) b = config_new();
        g_autoptr(GPtrArray) d = NULL;

        config_set(b, "daemon", "log_level", "debug", NULL);
        config_set(b, "manager", "listen", "127.0.0.1:1", NULL);
        d = config_diff(a, b);
        g_assert_cmpuint(d->len, ==, 2);
        g_assert_cmpstr(d->pdata[0], ==, "daemon.log_level");
        g_assert_true(config_key_reloadable("daemon.log_level"));
        g_assert_false(config_key_reloadable("manager.listen"));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/config/defaults", test_defaults);
        g_test_add_func("/config/load-string", test_load_string);
        g_test_add_func("/config/bad", test_bad);
        g_test_add_func("/config/sample", test_sample);
        g_test_add_func("/config/dump-masks-secrets", test_dump_masks_secrets);
        g_test_add_func("/config/file", test_file);
        g_test_add_func("/config/diff-reload", test_diff_reload);
        return g_test_run();
}
