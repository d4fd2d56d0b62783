/* The gateway: see gateway.h for what it serves and gateway-private.h for its parts. This file
 * reads request heads and dispatches them, relays the API, frames WebSocket tunnels, and runs
 * the libwebsockets callback and the gateway's thread. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"
#include "common/error.h"
#include "common/tls.h"
#include "common/util.h"

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#define MAX_TICKET_PARAM 2048

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
        c->up.wsi = lws_client_connect_via_info(&i);
        /* a failure may already have been answered from the callback */
        if (!c->up.wsi && c->state != CONN_ANSWERING)
                conn_respond(c, 502, "Bad Gateway", NULL,
                             c->kind == KIND_API ? "cannot reach the manager"
                                                 : "cannot reach the desktop's console");
        return c->up.wsi != NULL;
}

/* ---- request heads ---- */

/* /api/...: the head is rewritten (one request per connection, the client's address added)
 * and everything after it relayed as it comes, both ways. */
static void proxy_api(Conn *c, const GwHead *h)
{
        Gateway *gw = c->gw;
        gboolean upgrade = gw_head_get(h, "Upgrade") != NULL;
        g_autoptr(GString) out = g_string_new(NULL);

        c->kind = KIND_API;
        conn_set_state(c, CONN_DIALING);
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
        } else if (!dialer_connect(c)) {
                return;
        }
        conn_queue(c, FALSE, out->str, out->len);
}

/* An admitted tunnel: reported and dialled. */
static void tunnel_start(Conn *c)
{
        g_info("%s tunnel from %s to %s:%u (desktop %" G_GINT64_FORMAT ", user %" G_GINT64_FORMAT
               ")",
               conn_tunnel_label(c), c->peer, c->t.host, c->t.port, c->t.desktop, c->t.user);
        admission_report(c, GATEWAY_OPEN, NULL);
        conn_set_state(c, CONN_DIALING);
        connect_up(c, c->t.host, c->t.port);
}

static void open_console(Conn *c, const char *ticket_text, const Ticket *signed_t,
                         const char *want_host, guint16 want_port)
{
        if (admission_admit(c, ticket_text, signed_t, want_host, want_port))
                tunnel_start(c);
}

static void follow_tick(uv_timer_t *t);

/* A CONNECT: its ticket's console, or where the client's desktop moved (admission_follow),
 * waiting a few seconds for the manager's order when the client is one that may follow. */
static void connect_console(Conn *c, const char *ticket_text, const char *host, guint16 port)
{
        Gateway *gw = c->gw;
        Ticket t;
        gboolean is_signed = FALSE;

        switch (admission_follow(c, ticket_text, host, port, &t, &is_signed)) {
        case FOLLOW_YES:
                g_clear_pointer(&c->follow_ticket, g_free);
                conn_set_reading(c, TRUE, TRUE);
                g_info("a client follows desktop %" G_GINT64_FORMAT " to %s:%u (its live migration)",
                       c->t.desktop, host, port);
                tunnel_start(c);
                goto out;
        case FOLLOW_WAIT:
                if (!c->follow_ticket) {
                        c->follow_ticket = g_strdup(ticket_text);
                        g_strlcpy(c->follow_host, host, sizeof(c->follow_host));
                        c->follow_port = port;
                        c->follow_until_us = g_get_monotonic_time() +
                                             MAX(gw->handshake_timeout - 1, 1) * G_USEC_PER_SEC;
                        conn_set_reading(c, TRUE, FALSE);
                        if (!gw->follow_timer_on) {
                                gw->follow_timer_on = TRUE;
                                uv_timer_start(&gw->follow_timer, follow_tick, 200, 200);
                        }
                        goto out;
                }
                if (g_get_monotonic_time() < c->follow_until_us)
                        goto out;
                break; /* no order came: refused the usual way */
        case FOLLOW_NO:
                break;
        }
        g_clear_pointer(&c->follow_ticket, g_free);
        conn_set_reading(c, TRUE, TRUE);
        open_console(c, ticket_text, is_signed ? &t : NULL, host, port);
out:
        sodium_memzero(&t, sizeof(t));
}

/* The CONNECTs waiting for a move, tried again (a move order came, or every 200 ms). */
static void follow_retry(Gateway *gw)
{
        gboolean waiting = FALSE;

        for (GList *l = gw->conns; l;) {
                Conn *c = l->data;
                l = l->next; /* c may be answered, not freed, here */
                if (!c->follow_ticket || c->state != CONN_HEAD)
                        continue;
                {
                        g_autofree char *text = g_strdup(c->follow_ticket);
                        connect_console(c, text, c->follow_host, c->follow_port);
                }
                waiting |= c->follow_ticket != NULL;
        }
        if (!waiting && gw->follow_timer_on) {
                uv_timer_stop(&gw->follow_timer);
                gw->follow_timer_on = FALSE;
        }
}

static void follow_tick(uv_timer_t *t)
{
        follow_retry(t->data);
}

static void handle_connect(Conn *c, const GwHead *h)
{
        char host[256];
        guint16 port = 0;
        g_autofree char *ticket_text = NULL;

        c->kind = KIND_CONNECT;
        if (!gw_connect_target(h->target, host, sizeof(host), &port)) {
                conn_respond(c, 400, "Bad Request", NULL, "CONNECT needs HOST:PORT");
                return;
        }
        ticket_text = gw_basic_password(gw_head_get(h, "Proxy-Authorization"), MAX_TICKET_PARAM);
        connect_console(c, ticket_text, host, port);
}

static void handle_websocket(Conn *c, const GwHead *h)
{
        const char *key = gw_head_get(h, "Sec-WebSocket-Key");
        const char *version = gw_head_get(h, "Sec-WebSocket-Version");
        g_autofree char *ticket_text = gw_query_param(h->target, "ticket", MAX_TICKET_PARAM);

        c->kind = KIND_WEBSOCKET;
        if (!g_str_equal(h->method, "GET") || !version || !g_str_equal(version, "13") ||
            !gw_ws_accept(key, c->ws_accept, sizeof(c->ws_accept))) {
                conn_respond(c, 400, "Bad Request", "Sec-WebSocket-Version: 13\r\n",
                             "not a WebSocket version 13 handshake");
                return;
        }
        c->ws_binary_proto =
                gw_header_has_token(gw_head_get(h, "Sec-WebSocket-Protocol"), "binary");
        open_console(c, ticket_text, NULL, NULL, 0);
}

static void dispatch(Conn *c, const GwHead *h)
{
        char path[1024];

        if (g_str_equal(h->method, "CONNECT")) {
                handle_connect(c, h);
                return;
        }
        if (!gw_target_path(h->target, path, sizeof(path))) {
                conn_respond(c, 414, "URI Too Long", NULL, "request target too long");
                return;
        }
        if (g_str_equal(path, "/console") || g_str_equal(path, "/websockify")) {
                if (!gw_header_has_token(gw_head_get(h, "Upgrade"), "websocket") ||
                    !gw_header_has_token(gw_head_get(h, "Connection"), "upgrade")) {
                        conn_respond(c, 426, "Upgrade Required", "Upgrade: websocket\r\n",
                                     "the console is a WebSocket: open it with noVNC, or use the "
                                     ".vv file with remote-viewer");
                        return;
                }
                handle_websocket(c, h);
        } else if (g_str_has_prefix(path, "/api/") || g_str_equal(path, "/api")) {
                proxy_api(c, h);
        } else {
                static_serve(c, h);
        }
}

/* ---- WebSocket frames from the client ---- */

static void ws_rx(Conn *c)
{
        while (c->in->len && c->state == CONN_OPEN) {
                g_autoptr(GError) error = NULL;
                GwFrame f;
                gssize n = gw_ws_frame_parse(c->in->data, c->in->len, c->gw->max_frame, &f, &error);
                guint8 *payload;

                if (n == 0)
                        return;
                if (n < 0) {
                        conn_close(c, 1002, error->message);
                        return;
                }
                payload = c->in->data + f.header_len;
                switch (f.opcode) {
                case GW_WS_CONT:
                case GW_WS_TEXT:
                case GW_WS_BINARY:
                        c->bytes_in += f.payload_len;
                        conn_queue(c, FALSE, payload, f.payload_len);
                        break;
                case GW_WS_PING:
                        conn_ws_send(c, GW_WS_PONG, payload, f.payload_len);
                        break;
                case GW_WS_CLOSE:
                        conn_close(c, 1000, "closed by the client");
                        break;
                default:
                        break;
                }
                g_byte_array_remove_range(c->in, 0, (guint)n);
        }
}

/* ---- bytes from either side ---- */

/* The request head: read until whole, then dispatched; what came after it is kept for the
 * upstream (a tunnel's first bytes, an API request's body). */
static void head_rx(Conn *c, const guint8 *data, gsize len)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GByteArray) rest = NULL;
        GwHead h;
        gssize n;

        g_byte_array_append(c->in, data, (guint)len);
        n = gw_head_parse((char *)c->in->data, c->in->len, c->gw->max_head, &h, &error);
        if (n == 0)
                return;
        if (n < 0) {
                c->kind = KIND_STATIC;
                conn_respond(c, 400, "Bad Request", NULL, error->message);
                return;
        }
        /* The head's strings live in c->in: keep what follows it aside first. */
        rest = g_byte_array_new();
        g_byte_array_append(rest, c->in->data + n, c->in->len - (guint)n);
        dispatch(c, &h);
        g_byte_array_set_size(c->in, 0);
        if (!rest->len || (c->state != CONN_DIALING && c->state != CONN_OPEN))
                return; /* an upstream adopted at once (the manager's socket pair) is open */
        if (c->kind == KIND_WEBSOCKET)
                g_byte_array_append(c->in, rest->data, rest->len);
        else
                conn_queue(c, FALSE, rest->data, rest->len);
}

static int client_rx(Conn *c, const guint8 *data, gsize len)
{
        c->last_us = g_get_monotonic_time();
        if (c->state == CONN_HEAD) {
                head_rx(c, data, len);
                return 0;
        }
        if (c->state != CONN_DIALING && c->state != CONN_OPEN)
                return 0; /* answering or closing: nothing more is read */
        if (c->kind == KIND_WEBSOCKET) {
                g_byte_array_append(c->in, data, (guint)len);
                if (c->state == CONN_OPEN)
                        ws_rx(c);
                else if (c->in->len > c->gw->max_frame + 14)
                        conn_close(c, 1009, "too much data before the console answered");
                return 0;
        }
        if (c->kind == KIND_CONNECT)
                c->bytes_in += len;
        conn_queue(c, FALSE, data, len);
        return 0;
}

static void upstream_rx(Conn *c, const guint8 *data, gsize len)
{
        c->up_rx += len;
        c->last_us = g_get_monotonic_time();
        c->bytes_out += c->kind == KIND_API ? 0 : len;
        if (c->kind == KIND_WEBSOCKET)
                conn_ws_send(c, GW_WS_BINARY, data, len);
        else
                conn_queue(c, TRUE, data, len);
}

static void upstream_connected(Conn *c)
{
        if (c->up.out.total)
                lws_callback_on_writable(c->up.wsi);
        if (c->state != CONN_DIALING)
                return;
        conn_set_state(c, CONN_OPEN);
        if (c->kind == KIND_API)
                return;
        /* the handshake is over: from now on the idle sweep watches it */
        lws_set_timeout(c->cl.wsi, NO_PENDING_TIMEOUT, 0);
        c->last_us = g_get_monotonic_time();
        if (c->kind == KIND_CONNECT) {
                conn_queue_text(c, "HTTP/1.0 200 Connection established\r\n\r\n");
                return;
        }
        {
                g_autofree char *text = g_strdup_printf(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                        c->ws_accept,
                        c->ws_binary_proto ? "Sec-WebSocket-Protocol: binary\r\n" : "");
                conn_queue_text(c, text);
                ws_rx(c); /* frames that came with the head */
        }
}

/* The upstream went while the client is still there: the client is told why, or closed. */
static void upstream_gone(Conn *c)
{
        conn_set_reading(c, TRUE, TRUE);
        if (c->kind == KIND_API && c->up_rx == 0 && c->state != CONN_ANSWERING)
                conn_respond(c, 502, "Bad Gateway", NULL,
                             "cannot reach the manager (the gateway's log says why)");
        else if (c->kind == KIND_WEBSOCKET && c->state == CONN_OPEN)
                conn_close(c, 1000, "the console closed");
        else if (c->state == CONN_DIALING)
                conn_respond(c, 502, "Bad Gateway", NULL, "the console closed the connection");
        else
                conn_close_side(c, TRUE);
}

/* ---- the libwebsockets callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
        Gateway *gw = lws_context_user(lws_get_context(wsi));
        Conn *c = lws_get_opaque_user_data(wsi);
        gboolean client = c && wsi == c->cl.wsi;

        (void)user;
        switch (reason) {
        case LWS_CALLBACK_RAW_ADOPT:
                if (c) { /* the socket pair to the manager (dialer_connect) */
                        c->up.wsi = wsi;
                        upstream_connected(c);
                        return 0;
                }
                c = conn_new(gw, wsi);
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
                return c ? conn_write(c, client) : -1;
        case LWS_CALLBACK_RAW_CONNECTED:
                if (!c)
                        return -1;
                upstream_connected(c);
                return 0;
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
                if (!c)
                        return 0;
                g_info("cannot reach %s for %s: %s",
                       c->kind == KIND_API ? "the manager" : "the console", c->peer,
                       in ? (const char *)in : "connection failed");
                lws_set_opaque_user_data(wsi, NULL);
                conn_side_gone(c, FALSE);
                if (c->state != CONN_ANSWERING)
                        conn_respond(c, 502, "Bad Gateway", NULL,
                                     c->kind == KIND_API ? "cannot reach the manager"
                                                         : "cannot reach the desktop's console");
                if (!c->cl.wsi)
                        conn_free(c);
                return 0;
        case LWS_CALLBACK_RAW_CLOSE:
                if (!c)
                        return 0;
                lws_set_opaque_user_data(wsi, NULL);
                conn_side_gone(c, client);
                if (client && c->up.wsi) {
                        conn_set_reading(c, FALSE, TRUE);
                        conn_close_side(c, FALSE);
                } else if (!client && c->cl.wsi) {
                        upstream_gone(c);
                }
                if (!c->cl.wsi && !c->up.wsi)
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
                if (c->counted && c->cl.wsi && c->last_us && c->last_us < limit) {
                        g_info("closing an idle %s tunnel from %s (gateway.idle_timeout)",
                               conn_tunnel_label(c), c->peer);
                        c->last_us = 0;
                        conn_close(c, 0, NULL);
                }
        }
        admission_sweep_followers(gw);
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
                        if (!c->counted || c->t.desktop != id || !c->cl.wsi || c->cl.closing)
                                continue;
                        conn_close(c, 1000, "the session was disconnected");
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

        if (g_atomic_int_get(&gw->stop)) {
                uv_stop(&gw->loop);
        } else {
                close_desktops(gw);
                follow_retry(gw);
        }
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

void gateway_move_desktop(Gateway *gw, gint64 desktop, const char *proto, const char *host,
                          guint16 port)
{
        Move m = {{0}, {0}, port, g_get_monotonic_time()};
        GArray *a;

        g_strlcpy(m.proto, proto, sizeof(m.proto));
        g_strlcpy(m.host, host, sizeof(m.host));
        g_mutex_lock(&gw->lock);
        if (gw->started != 1) {
                g_mutex_unlock(&gw->lock);
                return;
        }
        a = g_hash_table_lookup(gw->moves, &desktop);
        if (!a) {
                a = g_array_new(FALSE, FALSE, sizeof(Move));
                g_hash_table_insert(gw->moves, g_memdup2(&desktop, sizeof(desktop)), a);
        }
        g_array_append_val(a, m);
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
        uv_timer_init(&gw->loop, &gw->follow_timer);
        gw->follow_timer.data = gw;
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
                uv_close((uv_handle_t *)&gw->follow_timer, NULL);
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
        uv_close((uv_handle_t *)&gw->follow_timer, NULL);
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
        gw->followers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        gw->moves = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify)g_array_unref);
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
                gw->mgr_now = opts->manager_now;
                gw->mgr_now_data = opts->manager_now_data;
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
        g_clear_pointer(&gw->followers, g_hash_table_unref);
        g_clear_pointer(&gw->moves, g_hash_table_unref);
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
