/* The portal's files, served from gateway.web_root: see gateway-private.h. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"

#include <string.h>

static const char *content_type(const char *path)
{
        static const char *const types[][2] = {
                {".html", "text/html; charset=utf-8"},
                {".js", "text/javascript; charset=utf-8"},
                {".mjs", "text/javascript; charset=utf-8"},
                {".css", "text/css; charset=utf-8"},
                {".json", "application/json"},
                {".svg", "image/svg+xml"},
                {".png", "image/png"},
                {".ico", "image/x-icon"},
                {".woff2", "font/woff2"},
                {".txt", "text/plain; charset=utf-8"},
        };
        const char *dot = strrchr(path, '.');

        for (gsize i = 0; dot && i < G_N_ELEMENTS(types); i++)
                if (g_ascii_strcasecmp(dot, types[i][0]) == 0)
                        return types[i][1];
        return "application/octet-stream";
}

/* The portal's files: GET and HEAD only, no path outside web_root; a path without an
 * extension that is not a file is the single-page app's (index.html). */
void static_serve(Conn *c, const GwHead *h)
{
        Gateway *gw = c->gw;
        char path[1024];
        g_autofree char *file = NULL, *data = NULL, *head = NULL;
        gsize len = 0;
        gboolean is_head = g_str_equal(h->method, "HEAD");

        c->kind = KIND_STATIC;
        if (!is_head && !g_str_equal(h->method, "GET")) {
                conn_respond(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                        "only GET and HEAD are served here");
                return;
        }
        if (!gw_target_path(h->target, path, sizeof(path)) || path[0] != '/' ||
            strstr(path, "..") || strchr(path, '\\') || strchr(path, '%')) {
                conn_respond(c, 400, "Bad Request", NULL, "bad path");
                return;
        }
        if (!gw->web_root) {
                conn_respond(c, 404, "Not Found", NULL,
                        "Atrium gateway: the web portal is not installed here (gateway.web_root); "
                        "the API is under /api/v1 and consoles under /console");
                return;
        }
        file = g_build_filename(gw->web_root, path[1] ? path + 1 : "index.html", NULL);
        if (g_file_test(file, G_FILE_TEST_IS_DIR)) {
                g_free(file);
                file = g_build_filename(gw->web_root, path + 1, "index.html", NULL);
        }
        if (!g_file_test(file, G_FILE_TEST_IS_REGULAR) && !strchr(strrchr(path, '/'), '.')) {
                g_free(file);
                file = g_build_filename(gw->web_root, "index.html", NULL);
        }
        if (!g_file_get_contents(file, &data, &len, NULL)) {
                conn_respond(c, 404, "Not Found", NULL, "no such file");
                return;
        }
        head = g_strdup_printf(
                "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
                "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
                "Content-Security-Policy: default-src 'self'; connect-src 'self' wss: https:; "
                "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                "frame-ancestors 'none'\r\n"
                "Strict-Transport-Security: max-age=31536000\r\nConnection: close\r\n\r\n",
                content_type(file), len);
        conn_set_state(c, CONN_ANSWERING);
        conn_queue_text(c, head);
        if (!is_head)
                conn_queue(c, TRUE, data, len);
        conn_close_side(c, TRUE);
}
