/* Host storage: paths confined to the storage roots, the qcow2 header parser, and images made
 * with the real qemu-img (base, overlay, blank) with the refusals that keep data safe. */
#include "agent/storage.h"
#include "common/error.h"
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

typedef struct {
        char *dir, *vol, *media;
        char *roots[2];
} Fx;

static void fx_setup(Fx *f, gconstpointer data)
{
        f->dir = testutil_tmpdir();
        f->vol = g_build_filename(f->dir, "vol", NULL);
        f->media = g_build_filename(f->dir, "iso", NULL);
        g_mkdir(f->vol, 0755);
        g_mkdir(f->media, 0755);
        f->roots[0] = f->dir;
        f->roots[1] = NULL;
}

static void fx_teardown(Fx *f, gconstpointer data)
{
        testutil_rmdir(f->dir);
        g_free(f->dir);
        g_free(f->vol);
        g_free(f->media);
}

#define ROOTS(f) ((const char *const *)(f)->roots)

static void test_confined(Fx *f, gconstpointer data)
{
        g_autofree char *ok = NULL, *file = g_build_filename(f->vol, "a.qcow2", NULL);
        g_autofree char *link = g_build_filename(f->vol, "out.qcow2", NULL);
        g_autofree char *dlink = g_build_filename(f->dir, "dirlink", NULL);
        const char *bad_names[] = {"../x", "/etc/passwd", "a/b", ".", "..", ".hidden", "",
                                   "tab\there", NULL};

        g_assert_true(g_file_set_contents(file, "x", 1, NULL));
        ok = storage_path(ROOTS(f), f->vol, "a.qcow2", TRUE, NULL);
        g_assert_cmpstr(ok, ==, file);
        g_clear_pointer(&ok, g_free);
        ok = storage_path(ROOTS(f), f->vol, "new.qcow2", FALSE, NULL);
        g_assert_nonnull(ok);
        for (const char **b = bad_names; *b; b++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *p = storage_path(ROOTS(f), f->vol, *b, FALSE, &error);
                g_assert_null(p);
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        }
        /* A link in the volume leading out is refused, whatever it points at. */
        g_assert_cmpint(symlink("/etc/hostname", link), ==, 0);
        {
                g_autoptr(GError) error = NULL;
                g_autofree char *p = storage_path(ROOTS(f), f->vol, "out.qcow2", TRUE, &error);
                g_assert_null(p);
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN);
        }
        /* Directories: absolute, existing, under a root; a link to a directory elsewhere is
         * judged by where it leads. */
        g_assert_cmpint(symlink("/etc", dlink), ==, 0);
        {
                const char *bad_dirs[] = {"relative/dir", "/etc", "/", "/nonexistent-atrium",
                                          dlink, NULL};
                const int codes[] = {ATRIUM_ERROR_INVALID, ATRIUM_ERROR_FORBIDDEN,
                                     ATRIUM_ERROR_FORBIDDEN, ATRIUM_ERROR_NOT_FOUND,
                                     ATRIUM_ERROR_FORBIDDEN};
                for (int i = 0; bad_dirs[i]; i++) {
                        g_autoptr(GError) error = NULL;
                        g_autofree char *d = storage_dir(ROOTS(f), bad_dirs[i], &error);
                        g_assert_null(d);
                        g_assert_error(error, ATRIUM_ERROR, codes[i]);
                }
        }
        {
                g_autofree char *dotdot = g_build_filename(f->vol, "..", "..", NULL);
                g_autoptr(GError) error = NULL;
                g_autofree char *d = storage_dir(ROOTS(f), dotdot, &error);
                g_assert_null(d);
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN);
        }
}

static void put_be32(guint8 *p, guint32 v)
{
        p[0] = v >> 24;
        p[1] = v >> 16;
        p[2] = v >> 8;
        p[3] = v;
}

static void test_qcow2_header(void)
{
        guint8 h[512] = {0};
        char *backing = NULL;
        g_autoptr(GError) error = NULL;

        put_be32(h, 0x514649fb);
        put_be32(h + 4, 3);
        g_assert_true(storage_qcow2_backing(h, sizeof(h), &backing, NULL));
        g_assert_null(backing);
        put_be32(h + 12, 200); /* offset (low half of the 64-bit field) */
        put_be32(h + 16, 9);
        memcpy(h + 200, "base.img!", 9);
        g_assert_true(storage_qcow2_backing(h, sizeof(h), &backing, NULL));
        g_assert_cmpstr(backing, ==, "base.img!");
        g_free(backing);
        /* past the end, too long, a NUL inside, not qcow2, an unknown version */
        put_be32(h + 12, 510);
        g_assert_false(storage_qcow2_backing(h, sizeof(h), &backing, &error));
        g_clear_error(&error);
        put_be32(h + 12, 200);
        put_be32(h + 16, 5000);
        g_assert_false(storage_qcow2_backing(h, sizeof(h), &backing, &error));
        g_clear_error(&error);
        put_be32(h + 16, 9);
        h[203] = 0;
        g_assert_false(storage_qcow2_backing(h, sizeof(h), &backing, &error));
        g_clear_error(&error);
        put_be32(h + 4, 7);
        g_assert_false(storage_qcow2_backing(h, sizeof(h), &backing, &error));
        g_clear_error(&error);
        g_assert_false(storage_qcow2_backing((const guint8 *)"RIFF", 4, &backing, &error));
        g_assert_null(backing);
}

static JsonObject *find_image(JsonObject *list, const char *name)
{
        JsonArray *a = json_object_get_array_member(list, "images");

        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonObject *o = json_array_get_object_element(a, i);
                if (g_str_equal(json_object_get_string_member(o, "name"), name))
                        return o;
        }
        return NULL;
}

static void test_images(Fx *f, gconstpointer data)
{
        g_autofree char *src = g_build_filename(f->vol, "guest.qcow2", NULL);
        g_autofree char *base = g_build_filename(f->vol, "base-v1.qcow2", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) list = NULL;
        JsonObject *im;
        const char *in_use[] = {NULL, NULL};

        g_assert_true(storage_blank_create(src, 1, &error));
        g_assert_no_error(error);
        g_assert_false(storage_blank_create(src, 1, &error)); /* never over an existing file */
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE);
        g_clear_error(&error);

        /* A base image from a guest's disk: a read-only copy, no partial file on failure. */
        g_assert_true(storage_base_create(ROOTS(f), f->vol, "base-v1.qcow2", f->vol,
                                          "guest.qcow2", &error));
        g_assert_no_error(error);
        {
                GStatBuf st;
                g_assert_cmpint(g_stat(base, &st), ==, 0);
                g_assert_cmpint(st.st_mode & 0222, ==, 0); /* read-only */
        }
        g_assert_false(storage_base_create(ROOTS(f), f->vol, "base-v2.qcow2", f->vol,
                                           "missing.qcow2", &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND);
        g_clear_error(&error);

        /* Overlays backed by it; the listing shows the backing file. */
        g_assert_true(storage_overlay_create(ROOTS(f), f->vol, "desk-1.qcow2", "base-v1.qcow2",
                                             &error));
        g_assert_no_error(error);
        g_assert_false(storage_overlay_create(ROOTS(f), f->vol, "desk-2.qcow2", "../x", &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        list = storage_volume_list(ROOTS(f), f->vol, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(list, "free_bytes"), >, 0);
        im = find_image(list, "desk-1.qcow2");
        g_assert_nonnull(im);
        g_assert_cmpstr(json_object_get_string_member(im, "format"), ==, "qcow2");
        g_assert_cmpstr(json_object_get_string_member(im, "backing"), ==, base);
        g_assert_nonnull(find_image(list, "base-v1.qcow2"));
        {
                /* The overlay written without qemu-img is one qemu-img itself finds sound,
                 * reading exactly its base. */
                g_autofree char *ov = g_build_filename(f->vol, "desk-1.qcow2", NULL);
                g_autofree char *out = NULL;
                const char *check[] = {"qemu-img", "check", "-q", ov, NULL};
                const char *cmp[] = {"qemu-img", "compare", "-q", base, ov, NULL};
                const char *info[] = {"qemu-img", "info", "--output=json", ov, NULL};
                const char *write[] = {"qemu-io", "-c", "write -P 0x5a 1M 128k", ov, NULL};
                int status;
                g_autoptr(JsonNode) j = NULL;
                g_assert_true(g_spawn_sync(NULL, (char **)check, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                           NULL, NULL, NULL, &status, NULL));
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_assert_true(g_spawn_sync(NULL, (char **)cmp, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                           NULL, NULL, NULL, &status, NULL));
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_assert_true(g_spawn_sync(NULL, (char **)info, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                           NULL, &out, NULL, &status, NULL));
                j = json_from_string(out, NULL);
                g_assert_nonnull(j);
                g_assert_cmpstr(json_object_get_string_member(json_node_get_object(j),
                                                              "backing-filename-format"),
                                ==, "qcow2");
                g_assert_cmpint(json_object_get_int_member(json_node_get_object(j),
                                                           "virtual-size"),
                                ==, 1 << 30);
                /* written to, it is still sound and now differs from its base */
                g_assert_true(g_spawn_sync(NULL, (char **)write, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                                           NULL, NULL, NULL, &status, NULL));
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_assert_true(g_spawn_sync(NULL, (char **)check, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                           NULL, NULL, NULL, &status, NULL));
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_assert_true(g_spawn_sync(NULL, (char **)cmp, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                                           NULL, NULL, NULL, &status, NULL));
                g_assert_false(g_spawn_check_wait_status(status, NULL));
        }

        /* A base with overlays, or a disk a running guest uses, is not deleted. */
        g_assert_false(storage_image_delete(ROOTS(f), f->vol, "base-v1.qcow2", NULL, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE);
        g_assert_nonnull(strstr(error->message, "desk-1.qcow2"));
        g_clear_error(&error);
        {
                g_autofree char *d1 = g_build_filename(f->vol, "desk-1.qcow2", NULL);
                in_use[0] = d1;
                g_assert_false(storage_image_delete(ROOTS(f), f->vol, "desk-1.qcow2", in_use,
                                                    &error));
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE);
                g_clear_error(&error);
        }
        g_assert_true(storage_image_delete(ROOTS(f), f->vol, "desk-1.qcow2", NULL, &error));
        g_assert_true(storage_image_delete(ROOTS(f), f->vol, "base-v1.qcow2", NULL, &error));
        g_assert_no_error(error);
        g_assert_false(g_file_test(base, G_FILE_TEST_EXISTS));
}

static void test_media(Fx *f, gconstpointer data)
{
        g_autofree char *iso = g_build_filename(f->media, "live.iso", NULL);
        g_autofree char *txt = g_build_filename(f->media, "notes.txt", NULL);
        g_autofree char *link = g_build_filename(f->media, "link.iso", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) list = NULL;
        JsonArray *a;

        g_assert_true(g_file_set_contents(iso, "iso", 3, NULL));
        g_assert_true(g_file_set_contents(txt, "txt", 3, NULL));
        g_assert_cmpint(symlink("/etc/hostname", link), ==, 0);
        list = storage_media_list(ROOTS(f), f->media, &error);
        g_assert_no_error(error);
        a = json_object_get_array_member(list, "isos");
        g_assert_cmpuint(json_array_get_length(a), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, 0), "name"),
                        ==, "live.iso");
        g_assert_null(storage_media_list(ROOTS(f), "/etc", &error));
}

/* Direct storage: only block devices, and only those the host allows. */
static void test_block_device(Fx *f, gconstpointer data)
{
        g_autofree char *dev = g_build_filename(f->dir, "disk0", NULL);
        g_autofree char *file = g_build_filename(f->dir, "plain", NULL);
        const char *const none[] = {NULL};
        const char *const dir_allowed[] = {f->dir, NULL};
        const char *const exact[] = {dev, NULL};
        g_autoptr(GError) error = NULL;
        g_autofree char *ok = NULL;

        g_assert_true(g_file_set_contents(file, "x", 1, NULL));
        g_assert_null(storage_block_device(dir_allowed, file, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_null(storage_block_device((const char *const[]){"/dev/null", NULL}, "/dev/null",
                                           &error)); /* allowed, but a character device */
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_null(storage_block_device(dir_allowed, "/dev/sda", &error)); /* not allowed */
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN);
        g_clear_error(&error);
        g_assert_null(storage_block_device(dir_allowed, "disk0", &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        if (mknod(dev, S_IFBLK | 0600, makedev(7, 250)) < 0) {
                g_test_skip("making a block device node needs root");
                return;
        }
        g_assert_null(storage_block_device(none, dev, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN);
        g_clear_error(&error);
        ok = storage_block_device(dir_allowed, dev, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(ok, ==, dev);
        g_clear_pointer(&ok, g_free);
        ok = storage_block_device(exact, dev, &error);
        g_assert_cmpstr(ok, ==, dev);
}

/* Overlay layouts qemu-img could not hold in one L1 cluster are refused (qemu-img makes them). */
static void test_overlay_layout(void)
{
        g_autofree guint8 *b = NULL;
        g_autoptr(GError) error = NULL;
        gsize len;

        g_assert_true(storage_qcow2_overlay_layout(1ULL << 30, "/v/base.qcow2", &b, &len, NULL));
        g_assert_cmpuint(len, ==, 3 * 65536 + 2 * 8);
        g_clear_pointer(&b, g_free);
        g_assert_true(storage_qcow2_overlay_layout(4ULL << 40, "/v/b", &b, &len, NULL));
        g_clear_pointer(&b, g_free);
        g_assert_false(storage_qcow2_overlay_layout((4ULL << 40) + 1, "/v/b", &b, &len, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_false(storage_qcow2_overlay_layout(0, "/v/b", &b, &len, NULL));
        g_assert_false(storage_qcow2_overlay_layout(1 << 30, "", &b, &len, NULL));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add("/storage/confined", Fx, NULL, fx_setup, test_confined, fx_teardown);
        g_test_add_func("/storage/qcow2-header", test_qcow2_header);
        g_test_add_func("/storage/overlay-layout", test_overlay_layout);
        g_test_add("/storage/images", Fx, NULL, fx_setup, test_images, fx_teardown);
        g_test_add("/storage/media", Fx, NULL, fx_setup, test_media, fx_teardown);
        g_test_add("/storage/block-device", Fx, NULL, fx_setup, test_block_device, fx_teardown);
        return g_test_run();
}
