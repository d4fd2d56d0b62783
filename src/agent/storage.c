#define G_LOG_DOMAIN "storage"

#include "agent/storage.h"
#include "common/error.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_HEAD 4096
#define BACKING_MAX 1023

static gboolean under(const char *path, const char *root)
{
        gsize n = strlen(root);

        if (n > 1 && root[n - 1] == '/')
                n--;
        if (n == 1 && root[0] == '/')
                return TRUE;
        return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

char *storage_dir(const char *const *roots, const char *dir, GError **error)
{
        g_autofree char *real = NULL;
        g_autofree char *q = util_quote(dir ? dir : "");

        if (!dir || !g_path_is_absolute(dir)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "directory '%s' is not an absolute path", q);
                return NULL;
        }
        real = realpath(dir, NULL);
        if (!real) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "directory '%s' is not reachable on this host: %s", q,
                            g_strerror(errno));
                return NULL;
        }
        if (!g_file_test(real, G_FILE_TEST_IS_DIR)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "'%s' is not a directory",
                            q);
                return NULL;
        }
        for (const char *const *r = roots; r && *r; r++) {
                g_autofree char *root = realpath(*r, NULL);
                if (root && under(real, root))
                        return g_steal_pointer(&real);
        }
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                    "directory '%s' is outside this host's storage roots (agent.storage_roots)",
                    q);
        return NULL;
}

static gboolean name_ok(const char *name, GError **error)
{
        g_autofree char *q = util_quote(name ? name : "");

        if (!name || !name[0] || strchr(name, '/') || g_str_equal(name, ".") ||
            g_str_equal(name, "..") || name[0] == '.' || strlen(name) > 255 ||
            !g_utf8_validate(name, -1, NULL)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not a file name in a volume: one path component, no '/', "
                            "not starting with '.'",
                            q);
                return FALSE;
        }
        for (const char *c = name; *c; c++)
                if ((guchar)*c < 0x20 || *c == 0x7f) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "file name '%s' has a control character", q);
                        return FALSE;
                }
        return TRUE;
}

char *storage_path(const char *const *roots, const char *dir, const char *name,
                   gboolean must_exist, GError **error)
{
        g_autofree char *d = NULL, *path = NULL, *real = NULL;
        struct stat st;

        if (!name_ok(name, error) || !(d = storage_dir(roots, dir, error)))
                return NULL;
        path = g_build_filename(d, name, NULL);
        if (lstat(path, &st) < 0) {
                if (errno == ENOENT && !must_exist)
                        return g_steal_pointer(&path);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "'%s': %s", path,
                            g_strerror(errno));
                return NULL;
        }
        real = realpath(path, NULL);
        if (!real || !g_str_equal(real, path) || !S_ISREG(st.st_mode)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "'%s' is a link or not a regular file: refused", path);
                return NULL;
        }
        return g_steal_pointer(&path);
}

char *storage_block_device(const char *const *allowed, const char *path, GError **error)
{
        g_autofree char *real = NULL;
        g_autofree char *q = util_quote(path ? path : "");
        gboolean ok = FALSE;
        struct stat st;

        if (!path || !g_path_is_absolute(path)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "block device '%s' is not an absolute path", q);
                return NULL;
        }
        real = realpath(path, NULL);
        /* allowed first: nothing is learnt about devices the host does not allow */
        for (const char *const *a = allowed; a && *a && !ok; a++) {
                g_autofree char *ra = (*a)[0] ? realpath(*a, NULL) : NULL;
                ok = (*a)[0] && (under(path, *a) || (real && ra && under(real, ra)));
        }
        if (!ok) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "block device '%s' is not one this host allows (agent.block_devices)",
                            q);
                return NULL;
        }
        if (!real || stat(real, &st) < 0 || !S_ISBLK(st.st_mode)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not a block device on this host", q);
                return NULL;
        }
        return g_steal_pointer(&real);
}

static guint64 be64(const guint8 *p)
{
        guint64 v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static guint32 be32(const guint8 *p)
{
        return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

gboolean storage_qcow2_backing(const guint8 *head, gsize len, char **backing, GError **error)
{
        guint64 off;
        guint32 size, version;

        *backing = NULL;
        if (len < 72 || be32(head) != QCOW2_MAGIC) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "not a qcow2 image");
                return FALSE;
        }
        version = be32(head + 4);
        if (version < 2 || version > 3) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "qcow2 version %u is not supported", version);
                return FALSE;
        }
        off = be64(head + 8);
        size = be32(head + 16);
        if (off == 0 || size == 0)
                return TRUE;
        if (size > BACKING_MAX || off > len || size > len - off) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "qcow2 backing file name out of the header's first %zu bytes", len);
                return FALSE;
        }
        if (memchr(head + off, '\0', size) || !g_utf8_validate((const char *)head + off, size, NULL)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "qcow2 backing file name is not text");
                return FALSE;
        }
        *backing = g_strndup((const char *)head + off, size);
        return TRUE;
}

/* The backing file of an image file, or NULL (raw, none, unreadable). */
static char *image_backing(const char *path, const char **format)
{
        guint8 head[QCOW2_HEAD];
        char *backing = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t n;

        *format = "raw";
        if (fd < 0)
                return NULL;
        n = read(fd, head, sizeof(head));
        close(fd);
        if (n >= 4 && be32(head) == QCOW2_MAGIC) {
                *format = "qcow2";
                storage_qcow2_backing(head, (gsize)n, &backing, NULL);
        }
        return backing;
}

gint64 storage_space(const char *path, gint64 *total)
{
        struct statvfs s;

        *total = -1;
        if (statvfs(path, &s) < 0)
                return -1;
        *total = (gint64)s.f_blocks * (gint64)s.f_frsize;
        return (gint64)s.f_bavail * (gint64)s.f_frsize;
}

typedef gboolean (*EntryFunc)(const char *dir, const char *name, struct stat *st, JsonArray *out);

static gint by_name(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static gboolean list_dir(const char *dir, EntryFunc fn, JsonArray *out, GError **error)
{
        g_autoptr(GDir) d = g_dir_open(dir, 0, error);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        if (!d)
                return FALSE;
        while ((name = g_dir_read_name(d)))
                if (name[0] != '.')
                        g_ptr_array_add(names, g_strdup(name));
        g_ptr_array_sort(names, by_name);
        for (guint i = 0; i < names->len; i++) {
                g_autofree char *p = g_build_filename(dir, names->pdata[i], NULL);
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
                        fn(dir, names->pdata[i], &st, out);
        }
        return TRUE;
}

static gboolean add_image(const char *dir, const char *name, struct stat *st, JsonArray *out)
{
        g_autofree char *p = g_build_filename(dir, name, NULL);
        const char *format;
        g_autofree char *backing = image_backing(p, &format);
        JsonObject *o = json_object_new();

        if (g_str_has_suffix(name, ".iso")) {
                json_object_unref(o);
                return TRUE;
        }
        json_object_set_string_member(o, "name", name);
        json_object_set_int_member(o, "bytes", (gint64)st->st_blocks * 512);
        json_object_set_string_member(o, "format", format);
        if (backing)
                json_object_set_string_member(o, "backing", backing);
        else
                json_object_set_null_member(o, "backing");
        json_array_add_object_element(out, o);
        return TRUE;
}

static gboolean add_iso(const char *dir, const char *name, struct stat *st, JsonArray *out)
{
        JsonObject *o;

        if (!g_str_has_suffix(name, ".iso"))
                return TRUE;
        o = json_object_new();
        json_object_set_string_member(o, "name", name);
        json_object_set_int_member(o, "bytes", st->st_size);
        json_array_add_object_element(out, o);
        return TRUE;
}

JsonObject *storage_volume_list(const char *const *roots, const char *dir, GError **error)
{
        g_autofree char *d = storage_dir(roots, dir, error);
        g_autoptr(JsonArray) images = json_array_new();
        struct statvfs s;
        JsonObject *o;

        if (!d || !list_dir(d, add_image, images, error))
                return NULL;
        o = json_object_new();
        json_object_set_string_member(o, "volume", d);
        if (statvfs(d, &s) == 0) {
                json_object_set_int_member(o, "free_bytes", (gint64)s.f_bavail * s.f_frsize);
                json_object_set_int_member(o, "total_bytes", (gint64)s.f_blocks * s.f_frsize);
        }
        json_object_set_array_member(o, "images", g_steal_pointer(&images));
        return o;
}

JsonObject *storage_media_list(const char *const *roots, const char *dir, GError **error)
{
        g_autofree char *d = storage_dir(roots, dir, error);
        g_autoptr(JsonArray) isos = json_array_new();
        JsonObject *o;

        if (!d || !list_dir(d, add_iso, isos, error))
                return NULL;
        o = json_object_new();
        json_object_set_string_member(o, "media", d);
        json_object_set_array_member(o, "isos", g_steal_pointer(&isos));
        return o;
}

/* qemu-img with these arguments; its error output becomes the error message. */
static gboolean qemu_img(const char *const *argv, GError **error)
{
        g_autoptr(GSubprocess) p = NULL;
        g_autofree char *err_text = NULL;
        GError *local = NULL;

        p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                              &local);
        if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err_text, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot run qemu-img: %s",
                            local->message);
                g_error_free(local);
                return FALSE;
        }
        if (!g_subprocess_get_successful(p)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "qemu-img %s failed: %s",
                            argv[1], err_text ? g_strstrip(err_text) : "");
                return FALSE;
        }
        return TRUE;
}

static gboolean refuse_existing(const char *path, GError **error)
{
        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE, "'%s' already exists",
                            path);
                return FALSE;
        }
        return TRUE;
}

gboolean storage_blank_create(const char *path, gint64 size_gb, GError **error)
{
        g_autofree char *size = g_strdup_printf("%" G_GINT64_FORMAT "G", size_gb);
        const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", path, size, NULL};

        return refuse_existing(path, error) && qemu_img(argv, error);
}

/* Made under a temporary name and renamed, so a failure leaves nothing half-written. */
gboolean storage_base_create(const char *const *roots, const char *dir, const char *name,
                             const char *source_dir, const char *source_name, GError **error)
{
        g_autofree char *dst = storage_path(roots, dir, name, FALSE, error);
        g_autofree char *src = dst ? storage_path(roots, source_dir, source_name, TRUE, error)
                                   : NULL;
        g_autofree char *tmp = NULL;

        if (!src || !refuse_existing(dst, error))
                return FALSE;
        tmp = g_strdup_printf("%s.part-%d", dst, (int)getpid());
        {
                const char *argv[] = {"qemu-img", "convert", "-q", "-O", "qcow2", src, tmp, NULL};
                if (!qemu_img(argv, error)) {
                        g_unlink(tmp);
                        return FALSE;
                }
        }
        if (g_chmod(tmp, 0444) < 0 || g_rename(tmp, dst) < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot finish '%s': %s",
                            dst, g_strerror(errno));
                g_unlink(tmp);
                return FALSE;
        }
        return TRUE;
}

static void put32(guint8 *p, guint32 v)
{
        for (int i = 3; i >= 0; i--, v >>= 8)
                p[i] = v & 0xff;
}

static void put64(guint8 *p, guint64 v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = v & 0xff;
}

#define OV_CLUSTER_BITS 16
#define OV_CLUSTER ((gsize)1 << OV_CLUSTER_BITS)
#define OV_HEADER_LEN 104
#define OV_EXT_BACKING_FORMAT 0xE2792ACAu

gboolean storage_qcow2_overlay_layout(guint64 virtual_size, const char *backing, guint8 **out,
                                      gsize *len, GError **error)
{
        /* One L2 table of 8-byte entries maps cluster/8 clusters. */
        guint64 per_l1 = (guint64)OV_CLUSTER * (OV_CLUSTER / 8);
        guint64 l1_size = (virtual_size + per_l1 - 1) / per_l1;
        gsize blen = strlen(backing), off;
        guint8 *b;

        if (virtual_size == 0 || l1_size * 8 > OV_CLUSTER || blen == 0 || blen > BACKING_MAX) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "no single-cluster qcow2 overlay for a %" G_GUINT64_FORMAT
                            "-byte disk backed by a %zu-byte name",
                            virtual_size, blen);
                return FALSE;
        }
        /* Cluster 0: header, extensions, backing name; 1: refcount table; 2: refcount block;
         * 3: L1 table (empty: every read falls through to the backing file). */
        *len = 3 * OV_CLUSTER + l1_size * 8;
        b = g_malloc0(*len);
        put32(b, QCOW2_MAGIC);
        put32(b + 4, 3);
        off = OV_HEADER_LEN + 8 + 8 + 8; /* extensions: backing format (5 -> 8), end */
        put64(b + 8, off);
        put32(b + 16, blen);
        put32(b + 20, OV_CLUSTER_BITS);
        put64(b + 24, virtual_size);
        put32(b + 32, 0);                   /* no encryption */
        put32(b + 36, l1_size);
        put64(b + 40, 3 * OV_CLUSTER);      /* L1 table */
        put64(b + 48, OV_CLUSTER);          /* refcount table */
        put32(b + 56, 1);                   /* ... one cluster of it */
        put32(b + 60, 0);                   /* no snapshots */
        put64(b + 64, 0);
        /* v3: no incompatible, compatible or autoclear features; 16-bit refcounts */
        put32(b + 96, 4);
        put32(b + 100, OV_HEADER_LEN);
        put32(b + OV_HEADER_LEN, OV_EXT_BACKING_FORMAT);
        put32(b + OV_HEADER_LEN + 4, 5);
        memcpy(b + OV_HEADER_LEN + 8, "qcow2", 5);
        /* end of extensions: 8 zero bytes at OV_HEADER_LEN + 16 */
        memcpy(b + off, backing, blen);
        put64(b + OV_CLUSTER, 2 * OV_CLUSTER); /* refcount block 0 */
        for (int c = 0; c < 4; c++)               /* clusters 0..3 used once */
                b[2 * OV_CLUSTER + 2 * c + 1] = 1;
        *out = b;
        return TRUE;
}

/* The virtual size of a qcow2 image, 0 when it is not one. */
static guint64 qcow2_size(const char *path)
{
        guint8 head[32];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t n;

        if (fd < 0)
                return 0;
        n = read(fd, head, sizeof(head));
        close(fd);
        return n == (ssize_t)sizeof(head) && be32(head) == QCOW2_MAGIC ? be64(head + 24) : 0;
}

/* An empty overlay is three clusters of metadata: written here in well under a millisecond
 * rather than by a qemu-img process (~7 ms of CPU each, the bulk of provisioning a desktop).
 * qemu-img still makes the unusual ones (a raw base, a disk past 4 TiB). */
gboolean storage_overlay_create(const char *const *roots, const char *dir, const char *name,
                                const char *base, GError **error)
{
        g_autofree char *dst = storage_path(roots, dir, name, FALSE, error);
        g_autofree char *b = dst ? storage_path(roots, dir, base, TRUE, error) : NULL;
        const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                              "-b",       NULL,     NULL, NULL};
        g_autofree guint8 *data = NULL;
        guint64 size;
        gsize len, done = 0;
        int fd, err = 0;

        if (!b || !refuse_existing(dst, error))
                return FALSE;
        size = qcow2_size(b);
        if (!size || !storage_qcow2_overlay_layout(size, b, &data, &len, NULL)) {
                argv[8] = b;
                argv[9] = dst;
                return qemu_img(argv, error);
        }
        fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot create '%s': %s",
                            dst, g_strerror(errno));
                return FALSE;
        }
        while (done < len && !err) {
                ssize_t n = write(fd, data + done, len - done);
                if (n > 0)
                        done += (gsize)n;
                else if (n < 0 && errno != EINTR)
                        err = errno;
        }
        if (!err && fsync(fd) < 0)
                err = errno;
        if (close(fd) < 0 && !err)
                err = errno;
        if (err) {
                g_unlink(dst);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot write the overlay '%s': %s", dst, g_strerror(err));
                return FALSE;
        }
        return TRUE;
}

static gboolean find_user(const char *dir, const char *name, struct stat *st, JsonArray *out)
{
        g_autofree char *p = g_build_filename(dir, name, NULL);
        const char *format;
        g_autofree char *backing = image_backing(p, &format);

        if (backing && (g_str_equal(backing, json_array_get_string_element(out, 0)) ||
                        g_str_equal(backing, json_array_get_string_element(out, 1))))
                json_array_add_string_element(out, name);
        return TRUE;
}

gboolean storage_image_delete(const char *const *roots, const char *dir, const char *name,
                              const char *const *in_use, GError **error)
{
        g_autofree char *path = storage_path(roots, dir, name, TRUE, error);
        g_autoptr(JsonArray) users = json_array_new();

        if (!path)
                return FALSE;
        for (const char *const *u = in_use; u && *u; u++)
                if (g_str_equal(*u, path)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                                    "'%s' is the disk of a running guest: stop it first", path);
                        return FALSE;
                }
        /* elements 0 and 1: the names a backing reference may use; users follow */
        json_array_add_string_element(users, path);
        json_array_add_string_element(users, name);
        {
                g_autofree char *d = g_path_get_dirname(path);
                if (!list_dir(d, find_user, users, error))
                        return FALSE;
        }
        if (json_array_get_length(users) > 2) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                            "'%s' still backs %u overlay(s), e.g. '%s': delete them first", name,
                            json_array_get_length(users) - 2,
                            json_array_get_string_element(users, 2));
                return FALSE;
        }
        if (g_unlink(path) < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot delete '%s': %s",
                            path, g_strerror(errno));
                return FALSE;
        }
        return TRUE;
}
