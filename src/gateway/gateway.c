/* The gateway: see gateway.h.
 *
 * One Conn per accepted client; it owns up to two libwebsockets connections: `cl` (the
 * client's raw TLS socket) and `up` (the console, or the manager for /api). Bytes for each
 * side wait in an Out queue; past max_buffer_bytes the other side's reading is paused
 * (lws_rx_flow_control) until half has drained, so a slow reader never grows memory. When one
 * side closes, the other is closed once what it still has to write is written. The Conn goes
 * with the last of the two. Everything here runs on the gateway's thread. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway.h"
#include "gateway/gwproto.h"
#include "common/error.h"
#include "common/tls.h"
#include "common/util.h"

#include <uv.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TX_CHUNK 262144
#define MAX_TICKET_PARAM 2048

typedef enum { M_HEAD, M_WS, M_CONNECT, M_PROXY, M_STATIC } Mode;

struct _Gateway {
        char *state_dir, *listen_host, *cert, *key, *web_root, *url;
        guint16 port;
        gboolean plain;
        char *mgr_socket, *mgr_host, *mgr_fp;
        guint16 mgr_port;
        guint8 pk[TICKET_PK_BYTES];
        gsize max_buffer, max_frame, max_head;
        int handshake_timeout, idle_timeout;
        guint per_ticket, per_user;
        guint64 nofile;
        TicketReplay *replay;
        GHashTable *by_nonce, *by_user; /* live tunnels per ticket nonce and per user id */
        GatewayReportFunc report;
        gpointer report_data;
        GMainContext *main_ctx;
        struct lws_context *ctx;
        struct lws_vhost *vh;
        GList *conns; /* every Conn, for the idle sweep */
        uv_timer_t sweep;
        uv_loop_t loop;
        uv_async_t wake; /* gateway_free() stops the loop through it */
        GThread *thread;
        GArray *closing; /* desktop ids to close (under lock), handled on the loop */
        GMutex lock;
        GCond cond;
        int started; /* 0 starting, 1 listening, -1 failed */
        GError *start_error;
        gint stop;
        guint64 tunnels;
};

/* Bytes waiting for one side: one chunk per read (a WebSocket frame's header and payload
 * together, so they leave in one TLS record), small ones appended to the last chunk when it
 * has room (chunks hold at least CHUNK_MIN). */
#define CHUNK_MIN 16384

typedef struct {
        gsize len, off, cap;
        guint8 data[];
} Chunk;

typedef struct {
        GQueue chunks;
        gsize total;
} Out;

static guint8 *out_reserve(Out *o, gsize len)
{
        Chunk *t = g_queue_peek_tail(&o->chunks);
        guint8 *p;

        if (!t || t->cap - t->len < len) {
                gsize cap = MAX(len, (gsize)CHUNK_MIN);
                t = g_malloc(sizeof(Chunk) + cap);
                t->len = t->off = 0;
                t->cap = cap;
                g_queue_push_tail(&o->chunks, t);
        }
        p = t->data + t->len;
        t->len += len;
        o->total += len;
        return p;
}

static void out_clear(Out *o)
{
        g_queue_clear_full(&o->chunks, g_free);
        o->total = 0;
}

typedef struct {
        Gateway *gw;
        struct lws *cl, *up;
        Mode mode;
        GByteArray *in;
        Out to_cl, to_up;
        gint64 last_us; /* last byte either way (the idle sweep) */
        GList link;     /* in gw->conns */
        gboolean cl_paused, up_paused, close_cl, close_up, up_failed, up_ready, up_answered;
        gboolean tunnel, ws_closing;
        Ticket t;
        char peer[64];
        char ws_accept[32];
        gboolean ws_binary_proto;
        gint64 opened_us;
        guint64 bytes_in, bytes_out;
} Conn;

typedef struct {
        GatewayReportFunc fn;
        gpointer data;
        GatewayEvent ev;
} Delivery;

static gboolean deliver(gpointer p)
{
        Delivery *d = p;

        d->fn(&d->ev, d->data);
        return G_SOURCE_REMOVE;
}

/* Hands an event to the owner's main context (the manager, or the reporter to it). */
static void report(Gateway *gw, GatewayEventKind kind, const Conn *c, const char *reason)
{
        Delivery *d;

        if (!gw->report)
                return;
        d = g_new0(Delivery, 1);
        d->fn = gw->report;
        d->data = gw->report_data;
        d->ev.kind = kind;
        d->ev.has_ticket = c->t.nonce[0] != '\0';
        d->ev.t = c->t;
        g_strlcpy(d->ev.via, c->mode == M_CONNECT ? "connect" : "websocket", sizeof(d->ev.via));
        g_strlcpy(d->ev.peer, c->peer, sizeof(d->ev.peer));
        if (reason)
                g_strlcpy(d->ev.reason, reason, sizeof(d->ev.reason));
        d->ev.bytes_in = c->bytes_in;
        d->ev.bytes_out = c->bytes_out;
        if (c->opened_us)
                d->ev.duration_ms = (g_get_monotonic_time() - c->opened_us) / 1000;
        g_main_context_invoke_full(gw->main_ctx, G_PRIORITY_DEFAULT, deliver, d, g_free);
}

/* ---- buffers and flow control ---- */

/* Pauses or resumes reading from one side (client: the client's socket), once per change. */
static void set_reading(Conn *c, gboolean client, gboolean on)
{
        struct lws *wsi = client ? c->cl : c->up;
        gboolean *paused = client ? &c->cl_paused : &c->up_paused;

        if (!wsi || *paused == !on)
                return;
        lws_rx_flow_control(wsi, on);
        *paused = !on;
}

/* Room for len bytes to the client or upstream (the caller fills it), and back-pressure. */
static guint8 *queue_reserve(Conn *c, gboolean to_client, gsize len)
{
        Out *o = to_client ? &c->to_cl : &c->to_up;
        struct lws *dst = to_client ? c->cl : c->up;
        guint8 *p;

        if (!dst)
                return NULL;
        p = out_reserve(o, len);
        lws_callback_on_writable(dst);
        if (o->total > c->gw->max_buffer)
                set_reading(c, !to_client, FALSE);
        return p;
}

static void queue(Conn *c, gboolean to_client, const void *buf, gsize len)
{
        guint8 *p;

        if (len && (p = queue_reserve(c, to_client, len)))
                memcpy(p, buf, len);
}

static void queue_text(Conn *c, const char *text)
{
        queue(c, TRUE, text, strlen(text));
}

/* One chunk to the side; resumes the other side's reading once half drained. */
static int write_side(Conn *c, gboolean client)
{
        Out *o = client ? &c->to_cl : &c->to_up;
        struct lws *wsi = client ? c->cl : c->up;
        Chunk *h = g_queue_peek_head(&o->chunks);

        if (h) {
                gsize m = MIN(h->len - h->off, (gsize)TX_CHUNK);
                if (lws_write(wsi, h->data + h->off, m, LWS_WRITE_RAW) < (int)m)
                        return -1;
                h->off += m;
                o->total -= m;
                if (h->off == h->len)
                        g_free(g_queue_pop_head(&o->chunks));
        }
        if (o->total <= c->gw->max_buffer / 2)
                set_reading(c, !client, TRUE);
        if (o->total)
                lws_callback_on_writable(wsi);
        else if (client ? c->close_cl : c->close_up)
                return -1;
        return 0;
}

/* Closes one side as soon as what it has to write is written: the next writable callback
 * with nothing left returns -1 (also when called from outside lws's callbacks, where an lws
 * timeout would only be seen at its next timer). */
static void close_side(Conn *c, gboolean client)
{
        struct lws *wsi = client ? c->cl : c->up;

        if (!wsi)
                return;
        if (client)
                c->close_cl = TRUE;
        else
                c->close_up = TRUE;
        lws_callback_on_writable(wsi);
}

/* An HTTP answer with a text body; the connection closes after it. */
static void respond(Conn *c, int status, const char *reason, const char *extra, const char *body)
{
        g_autofree char *text = g_strdup_printf(
                "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n"
                "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n%s\r\n%s\n",
                status, reason, strlen(body) + 1, extra ? extra : "", body);

        queue_text(c, text);
        close_side(c, TRUE);
        close_side(c, FALSE);
}

static void conn_free(Conn *c)
{
        Gateway *gw = c->gw;

        if (c->tunnel) {
                guint n;
                gpointer key = GINT_TO_POINTER(c->t.user);
                report(gw, GATEWAY_CLOSE, c, NULL);
                n = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_nonce, c->t.nonce));
                if (n > 1)
                        g_hash_table_insert(gw->by_nonce, g_strdup(c->t.nonce),
                                            GUINT_TO_POINTER(n - 1));
                else
                        g_hash_table_remove(gw->by_nonce, c->t.nonce);
                n = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_user, key));
                if (n > 1)
                        g_hash_table_insert(gw->by_user, key, GUINT_TO_POINTER(n - 1));
                else
                        g_hash_table_remove(gw->by_user, key);
                gw->tunnels--;
        }
        out_clear(&c->to_cl);
        out_clear(&c->to_up);
        gw->conns = g_list_remove_link(gw->conns, &c->link);
        if (c->in)
                g_byte_array_unref(c->in);
        sodium_memzero(&c->t, sizeof(c->t));
        g_free(c);
}

/* ---- admission ---- */

static int refuse(Conn *c, int status, const char *reason, const char *why)
{
        g_info("refused a %s tunnel from %s: %s", c->mode == M_CONNECT ? "CONNECT" : "WebSocket",
               c->peer, why);
        report(c->gw, GATEWAY_REFUSED, c, why);
        respond(c, status, reason,
                status == 407 ? "Proxy-Authenticate: Basic realm=\"atrium console ticket\"\r\n"
                              : NULL,
                why);
        return 0;
}

/* Checks a ticket and the limits; on success the tunnel is counted and c->t holds it. */
static gboolean admit(Conn *c, const char *text, const char *want_host, guint16 want_port)
{
        Gateway *gw = c->gw;
        g_autoptr(GError) error = NULL;
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        gboolean first = FALSE;
        guint n_ticket, n_user;
        int status;

        if (!text || !text[0]) {
                refuse(c, c->mode == M_CONNECT ? 407 : 401,
                       c->mode == M_CONNECT ? "Proxy Authentication Required" : "Unauthorized",
                       "no console ticket: connect with the ticket from the broker's connection "
                       "data");
                return FALSE;
        }
        if (!ticket_verify(text, strlen(text), gw->pk, now, &c->t, &error)) {
                memset(&c->t, 0, sizeof(c->t));
                refuse(c, 403, "Forbidden", error->message);
                return FALSE;
        }
        if (want_host && !gw_target_matches(want_host, want_port, c->t.host, c->t.port)) {
                g_autofree char *why = g_strdup_printf(
                        "the ticket is for another console than %s:%u", want_host, want_port);
                refuse(c, 403, "Forbidden", why);
                return FALSE;
        }
        n_ticket = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_nonce, c->t.nonce));
        n_user = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_user, GINT_TO_POINTER(c->t.user)));
        if (n_ticket >= gw->per_ticket || n_user >= gw->per_user) {
                refuse(c, 429, "Too Many Requests",
                       n_ticket >= gw->per_ticket
                               ? "too many tunnels open with this ticket "
                                 "(gateway.tunnels_per_ticket)"
                               : "too many tunnels open for this user (gateway.tunnels_per_user)");
                return FALSE;
        }
        if (!ticket_replay_use(gw->replay, &c->t, c->peer, now, &first, &error)) {
                status = g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE) ? 503 : 403;
                refuse(c, status, status == 503 ? "Service Unavailable" : "Forbidden",
                       error->message);
                return FALSE;
        }
        g_hash_table_insert(gw->by_nonce, g_strdup(c->t.nonce), GUINT_TO_POINTER(n_ticket + 1));
        g_hash_table_insert(gw->by_user, GINT_TO_POINTER(c->t.user), GUINT_TO_POINTER(n_user + 1));
        c->tunnel = TRUE;
        gw->tunnels++;
        c->opened_us = g_get_monotonic_time();
        return TRUE;
}

/* Opens the upstream connection: the ticket's console, or the manager. */
static gboolean connect_up(Conn *c, const char *host, guint16 port)
{
        struct lws_client_connect_info i;

        memset(&i, 0, sizeof(i));
        i.context = c->gw->ctx;
        i.vhost = c->gw->vh;
        i.address = host;
        i.port = port;
        i.host = host;
        i.origin = host;
        i.path = "";
        i.method = "RAW";
        i.local_protocol_name = "atrium-gateway";
        i.opaque_user_data = c;
        c->up = lws_client_connect_via_info(&i);
        if (!c->up && !c->up_failed) {
                c->up_failed = TRUE;
                respond(c, 502, "Bad Gateway", NULL,
                        c->mode == M_PROXY ? "cannot reach the manager"
                                           : "cannot reach the desktop's console");
        }
        return c->up != NULL;
}

/* ---- request heads ---- */

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
static void serve_static(Conn *c, const GwHead *h)
{
        Gateway *gw = c->gw;
        char path[1024];
        g_autofree char *file = NULL, *data = NULL, *head = NULL;
        gsize len = 0;
        gboolean is_head = g_str_equal(h->method, "HEAD");

        c->mode = M_STATIC;
        if (!is_head && !g_str_equal(h->method, "GET")) {
                respond(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                        "only GET and HEAD are served here");
                return;
        }
        if (!gw_target_path(h->target, path, sizeof(path)) || path[0] != '/' ||
            strstr(path, "..") || strchr(path, '\\') || strchr(path, '%')) {
                respond(c, 400, "Bad Request", NULL, "bad path");
                return;
        }
        if (!gw->web_root) {
                respond(c, 404, "Not Found", NULL,
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
                respond(c, 404, "Not Found", NULL, "no such file");
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
        queue_text(c, head);
        if (!is_head)
                queue(c, TRUE, data, len);
        close_side(c, TRUE);
}

/* ---- the manager over TLS (a gateway in its own process) ----
 *
 * API traffic is light: the TLS connection to the manager (certificate pinned) is made by GIO
 * on the main context and spliced to one end of a socket pair; the gateway's thread relays
 * the other end like any upstream. */

typedef struct {
        char *host, *fp;
        guint16 port;
        int fd;
} Dial;

static void dial_free(Dial *d)
{
        if (d->fd >= 0)
                close(d->fd);
        g_free(d->host);
        g_free(d->fp);
        g_free(d);
}

static gboolean dial_accept(GTlsConnection *conn, GTlsCertificate *cert,
                            GTlsCertificateFlags errors, gpointer data)
{
        Dial *d = data;
        g_autoptr(GByteArray) der = NULL;

        if (!d->fp[0])
                return FALSE;
        g_object_get(cert, "certificate", &der, NULL);
        if (der && tls_der_matches(der->data, der->len, d->fp))
                return TRUE;
        g_warning("the manager at %s:%u does not present the pinned certificate "
                  "(gateway.manager_fingerprint): API call refused",
                  d->host, d->port);
        return FALSE;
}

static void dial_event(GSocketClient *client, GSocketClientEvent event, GSocketConnectable *to,
                       GIOStream *conn, gpointer data)
{
        if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING)
                g_signal_connect(conn, "accept-certificate", G_CALLBACK(dial_accept), data);
}

static void spliced(GObject *src, GAsyncResult *res, gpointer data)
{
        g_io_stream_splice_finish(res, NULL);
}

static void dialed(GObject *src, GAsyncResult *res, gpointer data)
{
        Dial *d = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GSocketConnection) up =
                g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(src), res, &error);
        g_autoptr(GSocket) sock = NULL;
        g_autoptr(GSocketConnection) local = NULL;

        if (!up) {
                g_warning("cannot reach the manager at %s:%u: %s", d->host, d->port,
                          error->message);
                dial_free(d);
                return;
        }
        sock = g_socket_new_from_fd(d->fd, &error);
        if (!sock) {
                dial_free(d);
                return;
        }
        d->fd = -1;
        local = g_socket_connection_factory_create_connection(sock);
        g_io_stream_splice_async(G_IO_STREAM(up), G_IO_STREAM(local),
                                 G_IO_STREAM_SPLICE_CLOSE_STREAM1 |
                                         G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                                 G_PRIORITY_DEFAULT, NULL, spliced, NULL);
        dial_free(d);
}

static gboolean dial_start(gpointer data)
{
        Dial *d = data;
        g_autoptr(GSocketClient) client = g_socket_client_new();

        g_socket_client_set_tls(client, TRUE);
        g_socket_client_set_timeout(client, 10);
        g_signal_connect(client, "event", G_CALLBACK(dial_event), d);
        g_socket_client_connect_to_host_async(client, d->host, d->port, NULL, dialed, d);
        return G_SOURCE_REMOVE;
}

static gboolean dial_manager(Conn *c)
{
        Gateway *gw = c->gw;
        lws_adopt_desc_t a;
        Dial *d;
        int fds[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
                respond(c, 503, "Service Unavailable", NULL, "out of file descriptors");
                return FALSE;
        }
        memset(&a, 0, sizeof(a));
        a.vh = gw->vh;
        a.type = LWS_ADOPT_SOCKET;
        a.fd.sockfd = fds[0];
        a.vh_prot_name = "atrium-gateway";
        a.opaque = c;
        c->up = lws_adopt_descriptor_vhost_via_info(&a);
        if (!c->up) {
                close(fds[1]);
                respond(c, 503, "Service Unavailable", NULL, "cannot relay to the manager");
                return FALSE;
        }
        d = g_new0(Dial, 1);
        d->host = g_strdup(gw->mgr_host);
        d->port = gw->mgr_port;
        d->fp = g_strdup(gw->mgr_fp);
        d->fd = fds[1];
        g_main_context_invoke_full(gw->main_ctx, G_PRIORITY_DEFAULT, dial_start, d, NULL);
        return TRUE;
}

/* /api/...: the head is rewritten (one request per connection, the client's address added)
 * and everything after it relayed as it comes, both ways. */
static void proxy_api(Conn *c, const GwHead *h)
{
        Gateway *gw = c->gw;
        gboolean upgrade = gw_head_get(h, "Upgrade") != NULL;
        g_autoptr(GString) out = g_string_new(NULL);

        c->mode = M_PROXY;
        g_string_append_printf(out, "%s %s %s\r\n", h->method, h->target, h->version);
        for (guint i = 0; i < h->n_headers; i++) {
                const char *n = h->headers[i].name;
                if ((!upgrade && g_ascii_strcasecmp(n, "Connection") == 0) ||
                    g_ascii_strcasecmp(n, "Keep-Alive") == 0 ||
                    g_ascii_strncasecmp(n, "Proxy-", 6) == 0 ||
                    g_ascii_strncasecmp(n, "X-Forwarded-", 12) == 0 ||
                    g_ascii_strcasecmp(n, "Forwarded") == 0)
                        continue;
                g_string_append_printf(out, "%s: %s\r\n", n, h->headers[i].value);
        }
        if (!upgrade)
                g_string_append(out, "Connection: close\r\n");
        g_string_append_printf(out, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n\r\n", c->peer,
                               gw->plain ? "http" : "https");
        if (gw->mgr_socket) {
                g_autofree char *addr = g_strconcat("+", gw->mgr_socket, NULL);
                if (!connect_up(c, addr, 0))
                        return;
        } else if (!dial_manager(c)) {
                return;
        }
        queue(c, FALSE, out->str, out->len);
}

static void open_console(Conn *c, const char *ticket_text, const char *want_host, guint16 want_port)
{
        if (!admit(c, ticket_text, want_host, want_port))
                return;
        g_info("%s tunnel from %s to %s:%u (desktop %" G_GINT64_FORMAT ", user %" G_GINT64_FORMAT
               ")",
               c->mode == M_CONNECT ? "CONNECT" : "WebSocket", c->peer, c->t.host, c->t.port,
               c->t.desktop, c->t.user);
        report(c->gw, GATEWAY_OPEN, c, NULL);
        connect_up(c, c->t.host, c->t.port);
}

static void handle_connect(Conn *c, const GwHead *h)
{
        char host[256];
        guint16 port = 0;
        g_autofree char *ticket_text = NULL;

        c->mode = M_CONNECT;
        if (!gw_connect_target(h->target, host, sizeof(host), &port)) {
                respond(c, 400, "Bad Request", NULL, "CONNECT needs HOST:PORT");
                return;
        }
        ticket_text = gw_basic_password(gw_head_get(h, "Proxy-Authorization"), MAX_TICKET_PARAM);
        open_console(c, ticket_text, host, port);
}

static void handle_websocket(Conn *c, const GwHead *h)
{
        const char *key = gw_head_get(h, "Sec-WebSocket-Key");
        const char *version = gw_head_get(h, "Sec-WebSocket-Version");
        g_autofree char *ticket_text = gw_query_param(h->target, "ticket", MAX_TICKET_PARAM);

        c->mode = M_WS;
        if (!g_str_equal(h->method, "GET") || !version || !g_str_equal(version, "13") ||
            !gw_ws_accept(key, c->ws_accept, sizeof(c->ws_accept))) {
                respond(c, 400, "Bad Request", "Sec-WebSocket-Version: 13\r\n",
                        "not a WebSocket version 13 handshake");
                return;
        }
        c->ws_binary_proto =
                gw_header_has_token(gw_head_get(h, "Sec-WebSocket-Protocol"), "binary");
        open_console(c, ticket_text, NULL, 0);
}

static void dispatch(Conn *c, const GwHead *h)
{
        char path[1024];

        if (g_str_equal(h->method, "CONNECT")) {
                handle_connect(c, h);
                return;
        }
        if (!gw_target_path(h->target, path, sizeof(path))) {
                respond(c, 414, "URI Too Long", NULL, "request target too long");
                return;
        }
        if (g_str_equal(path, "/console") || g_str_equal(path, "/websockify")) {
                if (!gw_header_has_token(gw_head_get(h, "Upgrade"), "websocket") ||
                    !gw_header_has_token(gw_head_get(h, "Connection"), "upgrade")) {
                        respond(c, 426, "Upgrade Required", "Upgrade: websocket\r\n",
                                "the console is a WebSocket: open it with noVNC, or use the .vv "
                                "file with remote-viewer");
                        return;
                }
                handle_websocket(c, h);
        } else if (g_str_has_prefix(path, "/api/") || g_str_equal(path, "/api")) {
                proxy_api(c, h);
        } else {
                serve_static(c, h);
        }
}

/* ---- WebSocket frames from the client ---- */

static void ws_send(Conn *c, guint8 opcode, const void *data, gsize len)
{
        guint8 hdr[10];
        gsize hl = gw_ws_frame_header(opcode, len, hdr);
        guint8 *p = queue_reserve(c, TRUE, hl + len);

        if (p) {
                memcpy(p, hdr, hl);
                memcpy(p + hl, data, len);
        }
}

static void ws_close(Conn *c, guint16 code, const char *why)
{
        guint8 body[125];
        gsize n = MIN(strlen(why), sizeof(body) - 2);

        if (c->ws_closing)
                return;
        c->ws_closing = TRUE;
        body[0] = (guint8)(code >> 8);
        body[1] = (guint8)code;
        memcpy(body + 2, why, n);
        ws_send(c, GW_WS_CLOSE, body, n + 2);
        close_side(c, TRUE);
        close_side(c, FALSE);
}

static void ws_rx(Conn *c)
{
        while (c->in->len && !c->ws_closing) {
                g_autoptr(GError) error = NULL;
                GwFrame f;
                gssize n = gw_ws_frame_parse(c->in->data, c->in->len, c->gw->max_frame, &f, &error);
                guint8 *payload;

                if (n == 0)
                        return;
                if (n < 0) {
                        ws_close(c, 1002, error->message);
                        return;
                }
                payload = c->in->data + f.header_len;
                switch (f.opcode) {
                case GW_WS_CONT:
                case GW_WS_TEXT:
                case GW_WS_BINARY:
                        c->bytes_in += f.payload_len;
                        queue(c, FALSE, payload, f.payload_len);
                        break;
                case GW_WS_PING:
                        ws_send(c, GW_WS_PONG, payload, f.payload_len);
                        break;
                case GW_WS_CLOSE:
                        ws_close(c, 1000, "closed by the client");
                        break;
                default:
                        break;
                }
                g_byte_array_remove_range(c->in, 0, (guint)n);
        }
}

/* ---- bytes from either side ---- */

static int client_rx(Conn *c, const guint8 *data, gsize len)
{
        g_autoptr(GError) error = NULL;
        GwHead h;
        gssize n;

        c->last_us = g_get_monotonic_time();
        switch (c->mode) {
        case M_HEAD:
                break;
        case M_WS:
                if (c->ws_closing)
                        return 0;
                g_byte_array_append(c->in, data, (guint)len);
                if (c->up_ready)
                        ws_rx(c);
                else if (c->in->len > c->gw->max_frame + 14)
                        ws_close(c, 1009, "too much data before the console answered");
                return 0;
        case M_CONNECT:
        case M_PROXY:
                if (c->mode == M_CONNECT)
                        c->bytes_in += len;
                queue(c, FALSE, data, len);
                return 0;
        case M_STATIC:
                return 0;
        }
        g_byte_array_append(c->in, data, (guint)len);
        n = gw_head_parse((char *)c->in->data, c->in->len, c->gw->max_head, &h, &error);
        if (n == 0)
                return 0;
        if (n < 0) {
                c->mode = M_STATIC;
                respond(c, 400, "Bad Request", NULL, error->message);
                return 0;
        }
        {
                /* The head's strings live in c->in: keep what follows it aside first. */
                g_autoptr(GByteArray) rest = g_byte_array_new();
                g_byte_array_append(rest, c->in->data + n, c->in->len - (guint)n);
                dispatch(c, &h);
                g_byte_array_set_size(c->in, 0);
                if (rest->len && (c->mode == M_PROXY || c->mode == M_CONNECT))
                        queue(c, FALSE, rest->data, rest->len);
                else if (rest->len && c->mode == M_WS)
                        g_byte_array_append(c->in, rest->data, rest->len);
        }
        return 0;
}

static void upstream_rx(Conn *c, const guint8 *data, gsize len)
{
        c->up_answered = TRUE;
        c->last_us = g_get_monotonic_time();
        c->bytes_out += c->mode == M_PROXY ? 0 : len;
        if (c->mode == M_WS)
                ws_send(c, GW_WS_BINARY, data, len);
        else
                queue(c, TRUE, data, len);
}

static void upstream_connected(Conn *c)
{
        c->up_ready = TRUE;
        if (c->to_up.total)
                lws_callback_on_writable(c->up);
        if (c->mode == M_PROXY)
                return;
        /* the handshake is over: from now on the idle sweep watches it */
        lws_set_timeout(c->cl, NO_PENDING_TIMEOUT, 0);
        c->last_us = g_get_monotonic_time();
        if (c->mode == M_CONNECT) {
                queue_text(c, "HTTP/1.0 200 Connection established\r\n\r\n");
                return;
        }
        {
                g_autofree char *text = g_strdup_printf(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                        c->ws_accept,
                        c->ws_binary_proto ? "Sec-WebSocket-Protocol: binary\r\n" : "");
                queue_text(c, text);
                ws_rx(c); /* frames that came with the head */
        }
}

/* ---- the libwebsockets callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
        Gateway *gw = lws_context_user(lws_get_context(wsi));
        Conn *c = lws_get_opaque_user_data(wsi);
        gboolean client = c && wsi == c->cl;

        (void)user;
        switch (reason) {
        case LWS_CALLBACK_RAW_ADOPT:
                if (c) { /* the socket pair to the manager (dial_manager) */
                        c->up = wsi;
                        upstream_connected(c);
                        return 0;
                }
                c = g_new0(Conn, 1);
                c->gw = gw;
                c->cl = wsi;
                c->in = g_byte_array_new();
                c->link.data = c;
                gw->conns = g_list_concat(&c->link, gw->conns);
                lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
                lws_set_opaque_user_data(wsi, c);
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, gw->handshake_timeout);
                return 0;
        case LWS_CALLBACK_RAW_RX:
                if (!c)
                        return -1;
                if (client)
                        return client_rx(c, in, len);
                upstream_rx(c, in, len);
                return 0;
        case LWS_CALLBACK_RAW_WRITEABLE:
                return c ? write_side(c, client) : -1;
        case LWS_CALLBACK_RAW_CONNECTED:
                if (!c)
                        return -1;
                upstream_connected(c);
                return 0;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
                if (!c)
                        return 0;
                g_info("cannot reach %s for %s: %s",
                       c->mode == M_PROXY ? "the manager" : "the console", c->peer,
                       in ? (const char *)in : "connection failed");
                lws_set_opaque_user_data(wsi, NULL);
                c->up = NULL;
                out_clear(&c->to_up);
                if (!c->up_failed) {
                        c->up_failed = TRUE;
                        c->close_up = FALSE;
                        respond(c, 502, "Bad Gateway", NULL,
                                c->mode == M_PROXY ? "cannot reach the manager"
                                                   : "cannot reach the desktop's console");
                }
                if (!c->cl)
                        conn_free(c);
                return 0;
        case LWS_CALLBACK_RAW_CLOSE:
                if (!c)
                        return 0;
                lws_set_opaque_user_data(wsi, NULL);
                if (client) {
                        c->cl = NULL;
                        out_clear(&c->to_cl);
                        if (c->up) {
                                set_reading(c, FALSE, TRUE);
                                close_side(c, FALSE);
                        }
                } else {
                        c->up = NULL;
                        out_clear(&c->to_up);
                        if (c->cl) {
                                set_reading(c, TRUE, TRUE);
                                if (c->mode == M_PROXY && !c->up_answered)
                                        respond(c, 502, "Bad Gateway", NULL,
                                                "cannot reach the manager (the gateway's log "
                                                "says why)");
                                else if (c->mode == M_WS && c->up_ready)
                                        ws_close(c, 1000, "the console closed");
                                else if (!c->up_ready && !c->up_failed)
                                        respond(c, 502, "Bad Gateway", NULL,
                                                "the console closed the connection");
                                else
                                        close_side(c, TRUE);
                        }
                }
                if (!c->cl && !c->up)
                        conn_free(c);
                return 0;
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
                return 0;
        default:
                return 0;
        }
}

static const struct lws_protocols protocols[] = {
        {"atrium-gateway", callback, 0, TX_CHUNK, 0, NULL, TX_CHUNK},
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- life cycle ---- */

static void lws_to_glib(int level, const char *line)
{
        g_autofree char *s = g_strchomp(g_strdup(line));

        if (level & LLL_ERR)
                g_warning("libwebsockets: %s", s);
        else
                g_debug("libwebsockets: %s", s);
}

/* Tunnels that carried no byte for idle_timeout are closed: one pass over the connections
 * every few seconds instead of a timer reset on every read. */
static void on_sweep(uv_timer_t *t)
{
        Gateway *gw = t->data;
        gint64 limit = g_get_monotonic_time() - (gint64)gw->idle_timeout * G_USEC_PER_SEC;

        for (GList *l = gw->conns; l; l = l->next) {
                Conn *c = l->data;
                if (c->tunnel && c->cl && c->last_us && c->last_us < limit) {
                        g_info("closing an idle %s tunnel from %s (gateway.idle_timeout)",
                               c->mode == M_CONNECT ? "CONNECT" : "WebSocket", c->peer);
                        c->last_us = 0;
                        close_side(c, TRUE);
                        close_side(c, FALSE);
                }
        }
}

static void close_desktops(Gateway *gw)
{
        g_autoptr(GArray) ids = NULL;

        g_mutex_lock(&gw->lock);
        ids = g_steal_pointer(&gw->closing);
        g_mutex_unlock(&gw->lock);
        for (guint i = 0; ids && i < ids->len; i++) {
                gint64 id = g_array_index(ids, gint64, i);
                guint n = 0;
                for (GList *l = gw->conns; l; l = l->next) {
                        Conn *c = l->data;
                        if (!c->tunnel || c->t.desktop != id || !c->cl || c->close_cl)
                                continue;
                        if (c->mode == M_WS)
                                ws_close(c, 1000, "the session was disconnected");
                        else {
                                close_side(c, TRUE);
                                close_side(c, FALSE);
                        }
                        n++;
                }
                if (n)
                        g_info("closed %u tunnels to desktop %" G_GINT64_FORMAT
                               " (its session was disconnected or ended)",
                               n, id);
        }
}

static void on_wake(uv_async_t *h)
{
        Gateway *gw = h->data;

        if (g_atomic_int_get(&gw->stop))
                uv_stop(&gw->loop);
        else
                close_desktops(gw);
}

void gateway_close_desktop(Gateway *gw, gint64 desktop)
{
        g_mutex_lock(&gw->lock);
        if (gw->started != 1) {
                g_mutex_unlock(&gw->lock);
                return;
        }
        if (!gw->closing)
                gw->closing = g_array_new(FALSE, FALSE, sizeof(gint64));
        g_array_append_val(gw->closing, desktop);
        g_mutex_unlock(&gw->lock);
        uv_async_send(&gw->wake);
}

static gpointer run(gpointer data)
{
        Gateway *gw = data;
        struct lws_context_creation_info info;
        struct lws_context *ctx;
        struct lws_vhost *vh = NULL;
        void *loops[1] = {&gw->loop};

        uv_loop_init(&gw->loop);
        uv_async_init(&gw->loop, &gw->wake, on_wake);
        gw->wake.data = gw;
        uv_timer_init(&gw->loop, &gw->sweep);
        gw->sweep.data = gw;
        {
                guint64 every = (guint64)CLAMP(gw->idle_timeout / 4, 1, 60) * 1000;
                uv_timer_start(&gw->sweep, on_sweep, every, every);
        }
        memset(&info, 0, sizeof(info));
        info.foreign_loops = loops;
        info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                       LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
        info.user = gw;
        info.fd_limit_per_thread = (unsigned int)MIN(gw->nofile, 1000000);
        info.pt_serv_buf_size = TX_CHUNK;
        info.timeout_secs = (unsigned int)gw->handshake_timeout;
        info.connect_timeout_secs = 10;
        ctx = lws_create_context(&info);
        if (ctx) {
                info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
                               LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
                if (strchr(gw->listen_host, '.') && !strchr(gw->listen_host, ':'))
                        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
                info.vhost_name = "atrium-gateway";
                info.port = gw->port;
                info.iface = g_str_equal(gw->listen_host, "0.0.0.0") ||
                                             g_str_equal(gw->listen_host, "::")
                                     ? NULL
                                     : gw->listen_host;
                info.protocols = protocols;
                info.ssl_cert_filepath = gw->plain ? NULL : gw->cert;
                info.ssl_private_key_filepath = gw->plain ? NULL : gw->key;
                info.alpn = "http/1.1";
                info.listen_accept_role = "raw-skt";
                info.listen_accept_protocol = "atrium-gateway";
                info.ssl_cipher_list = "ECDHE+AESGCM:ECDHE+CHACHA20";
                info.tls1_3_plus_cipher_list = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_"
                                               "CHACHA20_POLY1305_SHA256";
                vh = lws_create_vhost(ctx, &info);
        }
        g_mutex_lock(&gw->lock);
        if (!ctx || !vh) {
                g_set_error(&gw->start_error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "the gateway cannot listen on %s:%u with the certificate %s (port in "
                            "use, address not local, or certificate unreadable)",
                            gw->listen_host, gw->port, gw->cert);
                gw->started = -1;
                g_cond_signal(&gw->cond);
                g_mutex_unlock(&gw->lock);
                if (ctx)
                        lws_context_destroy(ctx);
                uv_close((uv_handle_t *)&gw->sweep, NULL);
                uv_close((uv_handle_t *)&gw->wake, NULL);
                uv_run(&gw->loop, UV_RUN_DEFAULT);
                uv_loop_close(&gw->loop);
                return NULL;
        }
        gw->ctx = ctx;
        gw->vh = vh;
        gw->port = (guint16)lws_get_vhost_listen_port(vh);
        gw->started = 1;
        g_cond_signal(&gw->cond);
        g_mutex_unlock(&gw->lock);
        uv_run(&gw->loop, UV_RUN_DEFAULT);
        lws_context_destroy(ctx);
        uv_close((uv_handle_t *)&gw->sweep, NULL);
        uv_close((uv_handle_t *)&gw->wake, NULL);
        uv_run(&gw->loop, UV_RUN_DEFAULT); /* until lws has closed its handles */
        if (uv_loop_close(&gw->loop) != 0)
                g_debug("the gateway's loop still had handles at exit");
        return NULL;
}

static char *read_secretless_file(const char *path, gsize max, GError **error)
{
        g_autofree char *data = NULL;
        gsize len = 0;

        if (!g_file_get_contents(path, &data, &len, error))
                return NULL;
        if (len > max) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "'%s' is too large", path);
                return NULL;
        }
        return g_strstrip(g_steal_pointer(&data));
}

static gboolean load_ticket_key(Gateway *gw, const char *path, GError **error)
{
        g_autofree char *text = read_secretless_file(path, 256, error);
        size_t len = 0;

        if (!text) {
                g_prefix_error(error, "cannot read the console ticket public key (copy the "
                                      "manager's state_dir/ticket-public.key, see "
                                      "gateway.ticket_public_key): ");
                return FALSE;
        }
        if (sodium_base642bin(gw->pk, sizeof(gw->pk), text, strlen(text), NULL, &len, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            len != sizeof(gw->pk)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not a console ticket public key (base64url of 32 bytes)",
                            path);
                return FALSE;
        }
        return TRUE;
}

Gateway *gateway_new(const Config *config, const char *state_dir, const GatewayOptions *opts,
                     GError **error)
{
        g_autoptr(Gateway) gw = g_new0(Gateway, 1);
        const char *pk_path = config_get_string(config, "gateway", "ticket_public_key");
        const char *cert = config_get_string(config, "gateway", "tls_cert");
        const char *key = config_get_string(config, "gateway", "tls_key");
        const char *web = config_get_string(config, "gateway", "web_root");
        g_autofree char *default_pk = g_build_filename(state_dir, "ticket-public.key", NULL);

        g_mutex_init(&gw->lock);
        g_cond_init(&gw->cond);
        gw->by_nonce = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        gw->by_user = g_hash_table_new(g_direct_hash, g_direct_equal);
        gw->state_dir = g_strdup(state_dir);
        if (!util_split_hostport(config_get_string(config, "gateway", "listen"), &gw->listen_host,
                                 &gw->port, error)) {
                g_prefix_error(error, "gateway.listen: ");
                return NULL;
        }
        if (!cert[0] != !key[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "set both gateway.tls_cert and gateway.tls_key, or neither");
                return NULL;
        }
        gw->plain = config_get_bool(config, "gateway", "plain");
        if (gw->plain && !util_addr_is_loopback(gw->listen_host)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "gateway.plain is only allowed when gateway.listen is a loopback "
                            "address, not '%s'",
                            gw->listen_host);
                return NULL;
        }
        if (cert[0]) {
                gw->cert = g_strdup(cert);
                gw->key = g_strdup(key);
        } else if (opts->default_cert) {
                gw->cert = g_strdup(opts->default_cert);
                gw->key = g_strdup(opts->default_key);
        } else {
                g_autofree char *dir = g_build_filename(state_dir, "tls", NULL);
                if (!tls_ensure_self_signed(dir, error))
                        return NULL;
                gw->cert = g_build_filename(dir, "cert.pem", NULL);
                gw->key = g_build_filename(dir, "key.pem", NULL);
        }
        if (!load_ticket_key(gw, pk_path[0] ? pk_path : default_pk, error))
                return NULL;
        if (web[0]) {
                if (!g_file_test(web, G_FILE_TEST_IS_DIR)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "gateway.web_root '%s' is not a directory", web);
                        return NULL;
                }
                gw->web_root = g_strdup(web);
        } else if (g_file_test(ATRIUM_WEB_DIR, G_FILE_TEST_IS_DIR)) {
                gw->web_root = g_strdup(ATRIUM_WEB_DIR);
        }
        if (opts->manager_socket) {
                gw->mgr_socket = g_strdup(opts->manager_socket);
        } else {
                g_autoptr(GUri) uri = g_uri_parse(opts->manager_url ? opts->manager_url : "",
                                                  G_URI_FLAGS_NONE, NULL);
                if (!uri || g_strcmp0(g_uri_get_scheme(uri), "https") != 0 ||
                    !g_uri_get_host(uri)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "gateway.manager must be the manager's https:// URL, not '%s'",
                                    opts->manager_url ? opts->manager_url : "");
                        return NULL;
                }
                gw->mgr_host = g_strdup(g_uri_get_host(uri));
                gw->mgr_port = (guint16)(g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 443);
                gw->mgr_fp = g_strdup(opts->manager_fingerprint ? opts->manager_fingerprint : "");
        }
        gw->max_buffer = (gsize)config_get_int(config, "gateway", "max_buffer_bytes");
        gw->max_frame = (gsize)config_get_int(config, "gateway", "max_frame_bytes");
        gw->max_head = (gsize)config_get_int(config, "gateway", "max_header_bytes");
        gw->handshake_timeout = (int)config_get_int(config, "gateway", "handshake_timeout");
        gw->idle_timeout = (int)config_get_int(config, "gateway", "idle_timeout");
        gw->per_ticket = (guint)config_get_int(config, "gateway", "tunnels_per_ticket");
        gw->per_user = (guint)config_get_int(config, "gateway", "tunnels_per_user");
        gw->replay = ticket_replay_new((guint)config_get_int(config, "gateway", "replay_cache"));
        gw->report = opts->report;
        gw->report_data = opts->report_data;
        gw->main_ctx = g_main_context_ref_thread_default();
        return g_steal_pointer(&gw);
}

gboolean gateway_start(Gateway *gw, GError **error)
{
        gw->nofile = util_raise_nofile();
        lws_set_log_level(g_getenv("ATRIUM_LWS_DEBUG") ? 0xff : LLL_ERR | LLL_WARN, lws_to_glib);
        gw->thread = g_thread_new("gateway", run, gw);
        g_mutex_lock(&gw->lock);
        while (gw->started == 0)
                g_cond_wait(&gw->cond, &gw->lock);
        g_mutex_unlock(&gw->lock);
        if (gw->started < 0) {
                g_thread_join(g_steal_pointer(&gw->thread));
                g_propagate_error(error, g_steal_pointer(&gw->start_error));
                return FALSE;
        }
        gw->url = g_strdup_printf("%s://%s%s%s:%u", gw->plain ? "http" : "https",
                                  strchr(gw->listen_host, ':') ? "[" : "",
                                  g_str_equal(gw->listen_host, "0.0.0.0") ? "127.0.0.1"
                                                                          : gw->listen_host,
                                  strchr(gw->listen_host, ':') ? "]" : "", gw->port);
        g_info("gateway listening on %s (portal, API and consoles; open-file limit "
               "%" G_GUINT64_FORMAT ": at most %" G_GUINT64_FORMAT
               " console tunnels; clients trust %s)",
               gw->url, gw->nofile, gw->nofile > 64 ? (gw->nofile - 64) / 2 : 0, gw->cert);
        return TRUE;
}

const char *gateway_url(Gateway *gw)
{
        return gw->url;
}

void gateway_free(Gateway *gw)
{
        if (!gw)
                return;
        if (gw->thread) {
                g_atomic_int_set(&gw->stop, 1);
                uv_async_send(&gw->wake);
                g_thread_join(gw->thread);
        }
        g_clear_pointer(&gw->replay, ticket_replay_free);
        g_clear_pointer(&gw->closing, g_array_unref);
        g_clear_pointer(&gw->by_nonce, g_hash_table_unref);
        g_clear_pointer(&gw->by_user, g_hash_table_unref);
        if (gw->main_ctx)
                g_main_context_unref(gw->main_ctx);
        g_mutex_clear(&gw->lock);
        g_cond_clear(&gw->cond);
        g_free(gw->state_dir);
        g_free(gw->listen_host);
        g_free(gw->cert);
        g_free(gw->key);
        g_free(gw->web_root);
        g_free(gw->url);
        g_free(gw->mgr_socket);
        g_free(gw->mgr_host);
        g_free(gw->mgr_fp);
        sodium_memzero(gw->pk, sizeof(gw->pk));
        g_free(gw);
}
