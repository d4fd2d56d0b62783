#include "testutil.h"

#include <stdlib.h>

char *testutil_tmpdir(void)
{
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("atrium-test-XXXXXX", &error);
        g_assert_no_error(error);
        return dir;
}

static void rm_rf(const char *path)
{
        if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
                g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
                const char *name;
                while (d && (name = g_dir_read_name(d))) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        rm_rf(child);
                }
                g_rmdir(path);
        } else {
                g_unlink(path);
        }
}

void testutil_rmdir(const char *dir)
{
        if (dir)
                rm_rf(dir);
}

char *testutil_source_path(const char *rel)
{
        const char *src = g_getenv("ATRIUM_SOURCE_DIR");
        g_assert_nonnull(src);
        return g_build_filename(src, rel, NULL);
}

void testutil_golden(const char *name, const char *text)
{
        g_autofree char *rel = g_build_filename("tests", "data", name, NULL);
        g_autofree char *path = testutil_source_path(rel);
        g_autofree char *expected = NULL;
        g_autoptr(GError) error = NULL;

        if (g_strcmp0(g_getenv("ATRIUM_TEST_REGENERATE"), "1") == 0) {
                g_file_set_contents(path, text, -1, &error);
                g_assert_no_error(error);
                return;
        }
        g_file_get_contents(path, &expected, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(text, ==, expected);
}
