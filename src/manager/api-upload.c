/* PUT /api/v1/media/{id}/isos/{file}: an ISO image uploaded into a media storage, the body
 * written to disk as it arrives (never held in memory).
 *
 * The early handler (headers read, body not yet) does every check that can refuse the upload
 * before a byte of it is read: the login (operator), the file name, the media storage, that
 * this process can write its directory (the manager writes it: the media path must be mounted
 * where the manager runs, as on an all-in-one or a shared-storage install), Content-Length
 * present and within manager.max_upload_bytes and the free space. It then opens a temporary
 * file in that directory and has libsoup hand over the body chunk by chunk. The handler proper
 * checks the length, syncs and links the file under its name (never over an existing one) and
 * records an event. A refused, failed or interrupted upload leaves no file behind. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define UPLOAD_KEY "atrium-upload"

typedef struct {
        int fd;
        char *tmp;   /* temporary file, until linked under its name */
        char *final; /* DIR/FILE */
        char *file;
        gint64 media_id;
        char *media_name;
        goffset expected, written;
        char *failure; /* the first write error */
        gulong chunk_id;
} Upload;

static void upload_free(gpointer data)
{
        Upload *u = data;

        if (u->fd >= 0)
                close(u->fd);
        if (u->tmp)
                unlink(u->tmp);
        g_free(u->tmp);
        g_free(u->final);
        g_free(u->file);
        g_free(u->media_name);
        g_free(u->failure);
        g_free(u);
}

static gboolean iso_name_valid(const char *name, GError **error)
{
        gsize len = strlen(name);
        gboolean ok = len >= 5 && len <= 200 && g_ascii_isalnum(name[0]) &&
                      g_ascii_strcasecmp(name + len - 4, ".iso") == 0;

        for (const char *p = name; ok && *p; p++)
                ok = g_ascii_isalnum(*p) || *p == '.' || *p == '_' || *p == '-';
        if (!ok) {
                g_autofree char *q = util_quote(name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not an ISO file name: letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit, ending in .iso, at most 200 "
                            "characters",
                            q);
        }
        return ok;
}

static void got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
        Upload *u = data;
        gsize len;
        const guint8 *p = g_bytes_get_data(chunk, &len);

        if (u->failure)
                return;
        if (u->written + (goffset)len > u->expected) {
                u->failure = g_strdup("the body is longer than its Content-Length");
                return;
        }
        while (len > 0) {
                ssize_t n = write(u->fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        u->failure =
                                g_strdup_printf("cannot write %s: %s", u->final, g_strerror(errno));
                        return;
                }
                p += n;
                len -= (gsize)n;
                u->written += n;
        }
}

static void refuse(SoupServerMessage *msg, GError *error)
{
        api_set_error(msg, error);
        /* The body is not read: the connection cannot be used again. */
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                     "close");
        g_error_free(error);
}

static gboolean begin(ServeContext *sc, SoupServerMessage *msg, char **params, GError **error)
{
        SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(msg);
        TokenInfo caller = {0};
        g_autoptr(JsonObject) media = NULL;
        g_autofree char *tmpl = NULL;
        goffset len = soup_message_headers_get_content_length(hdrs);
        gint64 max = MCFG_INT(sc->mgr, "max_upload_bytes");
        const char *dir;
        struct statvfs vfs;
        Upload *u;
        gboolean ok;

        ok = http_caller(sc->store, msg, ROLE_OPERATOR, &caller, NULL, error);
        token_info_clear(&caller);
        if (!ok || !iso_name_valid(params[1], error))
                return FALSE;
        media = store_get(sc->store, resource_by_kind("media"), params[0], 0, error);
        if (!media)
                return FALSE;
        if (soup_message_headers_get_encoding(hdrs) != SOUP_ENCODING_CONTENT_LENGTH || len <= 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "an upload needs its size in Content-Length (not chunked, not empty)");
                return FALSE;
        }
        if (len > max) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                            "the ISO is %" G_GOFFSET_FORMAT
                            " bytes; uploads are limited to %" G_GINT64_FORMAT
                            " (manager.max_upload_bytes)",
                            len, max);
                return FALSE;
        }
        dir = row_str(media, "path");
        if (!g_file_test(dir, G_FILE_TEST_IS_DIR) || access(dir, W_OK) != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the manager cannot write the media storage's directory '%s' (%s): "
                            "uploads need it mounted where the manager runs; otherwise copy the "
                            "ISO there on a host",
                            dir, g_file_test(dir, G_FILE_TEST_IS_DIR) ? "not writable" : "missing");
                return FALSE;
        }
        if (statvfs(dir, &vfs) == 0 && (goffset)vfs.f_bavail * (goffset)vfs.f_frsize < len) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                            "the ISO is %" G_GOFFSET_FORMAT
                            " bytes but '%s' has only %" G_GOFFSET_FORMAT " free",
                            len, dir, (goffset)vfs.f_bavail * (goffset)vfs.f_frsize);
                return FALSE;
        }
        u = g_new0(Upload, 1);
        u->file = g_strdup(params[1]);
        u->final = g_build_filename(dir, params[1], NULL);
        if (g_file_test(u->final, G_FILE_TEST_EXISTS)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE,
                            "'%s' already exists in media storage '%s': delete it first or "
                            "upload under another name",
                            params[1], row_str(media, "name"));
                u->fd = -1;
                upload_free(u);
                return FALSE;
        }
        tmpl = g_strdup_printf("%s/.upload-%s-XXXXXX", dir, params[1]);
        u->fd = g_mkstemp_full(tmpl, O_WRONLY | O_CLOEXEC, 0600);
        if (u->fd < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot create a file in %s: %s", dir, g_strerror(errno));
                upload_free(u);
                return FALSE;
        }
        u->tmp = g_steal_pointer(&tmpl);
        u->expected = len;
        u->media_id = row_int(media, "id");
        u->media_name = g_strdup(row_str(media, "name"));
        soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
        u->chunk_id = g_signal_connect(msg, "got-chunk", G_CALLBACK(got_chunk), u);
        g_object_set_data_full(G_OBJECT(msg), UPLOAD_KEY, u, upload_free);
        return TRUE;
}

void api_upload_early(ServeContext *sc, SoupServerMessage *msg, char **params)
{
        GError *error = NULL;

        if (!begin(sc, msg, params, &error))
                refuse(msg, error);
}

void api_media_upload(ApiRequest *req)
{
        Upload *u = g_object_get_data(G_OBJECT(req->msg), UPLOAD_KEY);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = NULL;
        g_autofree char *detail = NULL;
        gboolean taken = FALSE;

        if (!u) { /* refused early: the early handler's answer stands (not reached) */
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "upload not set up");
                api_reply_error(req, error);
                return;
        }
        g_signal_handler_disconnect(req->msg, u->chunk_id);
        if (!u->failure && u->written != u->expected)
                u->failure = g_strdup_printf("the body ended after %" G_GOFFSET_FORMAT
                                             " of %" G_GOFFSET_FORMAT " bytes",
                                             u->written, u->expected);
        if (!u->failure && (fsync(u->fd) != 0 || fchmod(u->fd, 0644) != 0))
                u->failure = g_strdup_printf("cannot write %s: %s", u->final, g_strerror(errno));
        /* link() refuses an existing name: an upload never replaces a file. */
        if (!u->failure && link(u->tmp, u->final) != 0) {
                taken = errno == EEXIST;
                u->failure =
                        g_strdup_printf("cannot name the file %s: %s", u->final, g_strerror(errno));
        }
        if (u->failure) {
                g_set_error(&error, ATRIUM_ERROR,
                            taken ? ATRIUM_ERROR_DUPLICATE : ATRIUM_ERROR_INVALID, "%s",
                            u->failure);
                g_object_set_data(G_OBJECT(req->msg), UPLOAD_KEY, NULL); /* removes the file */
                api_reply_error(req, error);
                return;
        }
        detail = g_strdup_printf("%s (%" G_GOFFSET_FORMAT " bytes)", u->file, u->written);
        store_event_add(req->store, &req->actor, "upload", "media", u->media_id, u->media_name,
                        detail, NULL);
        reply = json_object_new();
        json_object_set_string_member(reply, "media", u->media_name);
        json_object_set_string_member(reply, "name", u->file);
        json_object_set_int_member(reply, "size_bytes", u->written);
        g_object_set_data(G_OBJECT(req->msg), UPLOAD_KEY, NULL); /* unlinks the temporary name */
        api_reply_object(req, 201, g_steal_pointer(&reply));
}
