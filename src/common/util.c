#include "common/util.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <sodium.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

char *util_time_iso(gint64 unix_seconds)
{
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_seconds);
        return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("");
}

char *util_now_iso(void)
{
        g_autoptr(GDateTime) dt = g_date_time_new_now_utc();
        return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S.%fZ");
}

gboolean util_name_valid(const char *name, GError **error)
{
        gsize len = name ? strlen(name) : 0;

        if (len == 0 || len > ATRIUM_NAME_MAX) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a name must be 1 to %d characters long", ATRIUM_NAME_MAX);
                return FALSE;
        }
        if (!g_ascii_isalpha(name[0])) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a name must start with a letter (A-Z, a-z)");
                return FALSE;
        }
        for (gsize i = 0; i < len; i++) {
                char c = name[i];
                if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
                        if ((guchar)c < 0x20 || c == 0x7f)
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "a name must not contain control characters");
                        else
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "a name may only contain letters, digits, '.', '_' "
                                            "and '-'");
                        return FALSE;
                }
        }
        return TRUE;
}

gboolean util_text_valid(const char *what, const char *text, gsize max_len, GError **error)
{
        gsize len = strlen(text);

        if (len > max_len) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is %zu bytes long; at most %zu are allowed", what, len, max_len);
                return FALSE;
        }
        if (!g_utf8_validate(text, len, NULL)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_UTF8,
                            "'%s' is not valid UTF-8", what);
                return FALSE;
        }
        for (const char *p = text; *p; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);
                if (c != '\t' && g_unichar_iscntrl(c)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "'%s' must not contain control characters", what);
                        return FALSE;
                }
        }
        return TRUE;
}

char *util_quote(const char *s)
{
        GString *out = g_string_new(NULL);
        gsize chars = 0;

        for (const char *p = s ? s : ""; *p; chars++) {
                gunichar c = g_utf8_get_char_validated(p, -1);
                if (chars == 64) {
                        g_string_append(out, "...");
                        break;
                }
                if (c == (gunichar)-1 || c == (gunichar)-2) {
                        g_string_append_printf(out, "\\x%02x", (guchar)*p);
                        p++;
                        continue;
                }
                if (g_unichar_iscntrl(c) || c == '\'')
                        g_string_append_printf(out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
                else
                        g_string_append_unichar(out, c);
                p = g_utf8_next_char(p);
        }
        return g_string_free(out, FALSE);
}

gboolean util_parse_id(const char *s, gint64 *out)
{
        guint64 v;

        if (!s || !g_ascii_isdigit(s[0]))
                return FALSE;
        if (!g_ascii_string_to_unsigned(s, 10, 1, G_MAXINT64, &v, NULL))
                return FALSE;
        *out = (gint64)v;
        return TRUE;
}

char *util_random_token(gsize n)
{
        g_autofree guchar *buf = g_malloc(n);
        gsize out_len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *out = g_malloc(out_len);

        randombytes_buf(buf, n);
        sodium_bin2base64(out, out_len, buf, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(buf, n);
        return out;
}

char *util_random_password(void)
{
        static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        char *pw = g_malloc(21);

        for (int i = 0; i < 20; i++)
                pw[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
        pw[20] = '\0';
        return pw;
}

gboolean util_write_file(const char *path, const char *data, gssize len, int mode, GError **error)
{
        g_autofree char *tmp = g_strdup_printf("%s.tmp-XXXXXX", path);
        int fd;

        if (len < 0)
                len = strlen(data);
        fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, mode);
        if (fd < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot create '%s': %s",
                            path, g_strerror(errno));
                return FALSE;
        }
        if (fchmod(fd, mode) < 0 || write(fd, data, len) != len || fsync(fd) < 0) {
                int e = errno;
                close(fd);
                unlink(tmp);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot write '%s': %s",
                            path, g_strerror(e));
                return FALSE;
        }
        close(fd);
        if (rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot rename '%s' to '%s': %s", tmp, path, g_strerror(e));
                return FALSE;
        }
        return TRUE;
}

int util_pidfile_lock(const char *state_dir, GError **error)
{
        g_autofree char *path = g_build_filename(state_dir, "atriumd.pid", NULL);
        g_autofree char *pid = NULL;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

        if (fd < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot open pid file '%s': %s", path, g_strerror(errno));
                return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                char buf[32] = "";
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                close(fd);
                if (n > 0)
                        buf[n] = '\0';
                g_strstrip(buf);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "state directory '%s' is already in use by another atriumd%s%s%s",
                            state_dir, buf[0] ? " (pid " : "", buf, buf[0] ? ")" : "");
                return -1;
        }
        pid = g_strdup_printf("%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot write pid file '%s': %s", path, g_strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

guint64 util_raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 0;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        getrlimit(RLIMIT_NOFILE, &rl);
        }
        return rl.rlim_cur;
}

gboolean util_addr_is_loopback(const char *host)
{
        g_autoptr(GInetAddress) a = NULL;

        if (!host)
                return FALSE;
        if (g_str_equal(host, "localhost"))
                return TRUE;
        a = g_inet_address_new_from_string(host);
        return a && g_inet_address_get_is_loopback(a);
}

gboolean util_split_hostport(const char *s, char **host, guint16 *port, GError **error)
{
        const char *colon;
        g_autofree char *h = NULL;
        guint64 p;

        if (s && s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        goto bad;
                h = g_strndup(s + 1, end - s - 1);
                colon = end + 1;
        } else {
                colon = s ? strrchr(s, ':') : NULL;
                if (!colon || colon == s)
                        goto bad;
                h = g_strndup(s, colon - s);
        }
        if (!g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &p, NULL))
                goto bad;
        *host = g_steal_pointer(&h);
        *port = (guint16)p;
        return TRUE;
bad:
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                    "'%s' is not an address of the form HOST:PORT", s ? s : "");
        return FALSE;
}

char *util_id_text(gint64 id)
{
        return g_strdup_printf("%" G_GINT64_FORMAT, id);
}

char *util_read_first_line(const char *path, GError **error)
{
        char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, error))
                return NULL;
        text[strcspn(text, "\r\n")] = '\0';
        return text;
}
