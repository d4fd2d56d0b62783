/* A gateway connection: see gateway-private.h.
 *
 * Bytes for each side wait in its Out queue; past max_buffer_bytes the other side's reading is
 * paused (lws_rx_flow_control) until half has drained, so a slow reader never grows memory.
 * When one side closes, the other is closed once what it still has to write is written. The
 * Conn goes with the last of the two. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"

#include <sodium.h>
#include <string.h>

/* Chunks hold at least this much, so small writes share one. */
#define CHUNK_MIN 16384

typedef struct {
        gsize len, off, cap;
        guint8 data[];
} Chunk;

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

static Side *side(Conn *c, gboolean client)
{
        return client ? &c->cl : &c->up;
}

/* ---- state ------------------------------------------------------------------------------- */

static const char *const state_names[CONN_STATE_LAST] = {
        [CONN_HEAD] = "head",           [CONN_DIALING] = "dialing",
        [CONN_OPEN] = "open",           [CONN_ANSWERING] = "answering",
        [CONN_CLOSING] = "closing",
};

/* The transitions of the picture in gateway-private.h, from each state. */
static const guint allowed[CONN_STATE_LAST] = {
        [CONN_HEAD] = 1u << CONN_DIALING | 1u << CONN_ANSWERING,
        [CONN_DIALING] = 1u << CONN_OPEN | 1u << CONN_ANSWERING | 1u << CONN_CLOSING,
        [CONN_OPEN] = 1u << CONN_CLOSING | 1u << CONN_ANSWERING,
        [CONN_ANSWERING] = 0,
        [CONN_CLOSING] = 0,
};

const char *conn_state_to_string(ConnState s)
{
        return s < CONN_STATE_LAST ? state_names[s] : "?";
}

void conn_set_state(Conn *c, ConnState next)
{
        if (c->state == next)
                return;
        if (!(allowed[c->state] & (1u << next)))
                g_critical("a connection from %s went from %s to %s", c->peer,
                          conn_state_to_string(c->state), conn_state_to_string(next));
        c->state = next;
}

const char *conn_tunnel_label(const Conn *c)
{
        return c->kind == KIND_CONNECT ? "CONNECT" : "WebSocket";
}

/* ---- life --------------------------------------------------------------------------------- */

Conn *conn_new(Gateway *gw, struct lws *client)
{
        Conn *c = g_new0(Conn, 1);

        c->gw = gw;
        c->cl.wsi = client;
        c->in = g_byte_array_new();
        c->link.data = c;
        gw->conns = g_list_concat(&c->link, gw->conns);
        lws_get_peer_simple(client, c->peer, sizeof(c->peer));
        return c;
}

void conn_free(Conn *c)
{
        Gateway *gw = c->gw;

        if (c->counted)
                admission_release(c);
        out_clear(&c->cl.out);
        out_clear(&c->up.out);
        gw->conns = g_list_remove_link(gw->conns, &c->link);
        if (c->in)
                g_byte_array_unref(c->in);
        sodium_memzero(&c->t, sizeof(c->t));
        g_free(c->follow_ticket);
        g_free(c);
}

/* ---- buffers and flow control ---------------------------------------------------------- */

void conn_set_reading(Conn *c, gboolean client, gboolean on)
{
        Side *s = side(c, client);

        if (!s->wsi || s->paused == !on)
                return;
        lws_rx_flow_control(s->wsi, on);
        s->paused = !on;
}

guint8 *conn_queue_reserve(Conn *c, gboolean to_client, gsize len)
{
        Side *dst = side(c, to_client);
        guint8 *p;

        if (!dst->wsi)
                return NULL;
        p = out_reserve(&dst->out, len);
        lws_callback_on_writable(dst->wsi);
        if (dst->out.total > c->gw->max_buffer)
                conn_set_reading(c, !to_client, FALSE);
        return p;
}

void conn_queue(Conn *c, gboolean to_client, const void *buf, gsize len)
{
        guint8 *p;

        if (len && (p = conn_queue_reserve(c, to_client, len)))
                memcpy(p, buf, len);
}

void conn_queue_text(Conn *c, const char *text)
{
        conn_queue(c, TRUE, text, strlen(text));
}

int conn_write(Conn *c, gboolean client)
{
        Side *s = side(c, client);
        Chunk *h = g_queue_peek_head(&s->out.chunks);

        if (h) {
                gsize m = MIN(h->len - h->off, (gsize)TX_CHUNK);
                if (lws_write(s->wsi, h->data + h->off, m, LWS_WRITE_RAW) < (int)m)
                        return -1;
                h->off += m;
                s->out.total -= m;
                if (h->off == h->len)
                        g_free(g_queue_pop_head(&s->out.chunks));
        }
        if (s->out.total <= c->gw->max_buffer / 2)
                conn_set_reading(c, !client, TRUE);
        if (s->out.total)
                lws_callback_on_writable(s->wsi);
        else if (s->closing)
                return -1;
        return 0;
}

/* The next writable callback with nothing left returns -1 (also when called from outside
 * lws's callbacks, where an lws timeout would only be seen at its next timer). */
void conn_close_side(Conn *c, gboolean client)
{
        Side *s = side(c, client);

        if (!s->wsi)
                return;
        s->closing = TRUE;
        lws_callback_on_writable(s->wsi);
}

/* A side that went away: nothing more is written to it. */
void conn_side_gone(Conn *c, gboolean client)
{
        Side *s = side(c, client);

        s->wsi = NULL;
        s->closing = FALSE;
        out_clear(&s->out);
}

/* ---- its own answers ---------------------------------------------------------------------- */

void conn_ws_send(Conn *c, guint8 opcode, const void *data, gsize len)
{
        guint8 hdr[10];
        gsize hl = gw_ws_frame_header(opcode, len, hdr);
        guint8 *p = conn_queue_reserve(c, TRUE, hl + len);

        if (p) {
                memcpy(p, hdr, hl);
                memcpy(p + hl, data, len);
        }
}

void conn_close(Conn *c, guint16 ws_code, const char *why)
{
        if (c->state == CONN_CLOSING || c->state == CONN_ANSWERING)
                return;
        if (c->kind == KIND_WEBSOCKET && ws_code) {
                guint8 body[125];
                gsize n = MIN(strlen(why), sizeof(body) - 2);
                body[0] = (guint8)(ws_code >> 8);
                body[1] = (guint8)ws_code;
                memcpy(body + 2, why, n);
                conn_ws_send(c, GW_WS_CLOSE, body, n + 2);
        }
        conn_set_state(c, CONN_CLOSING);
        conn_close_side(c, TRUE);
        conn_close_side(c, FALSE);
}

void conn_respond(Conn *c, int status, const char *reason, const char *extra, const char *body)
{
        g_autofree char *text = g_strdup_printf(
                "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n"
                "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n%s\r\n%s\n",
                status, reason, strlen(body) + 1, extra ? extra : "", body);

        conn_set_state(c, CONN_ANSWERING);
        conn_queue_text(c, text);
        conn_close_side(c, TRUE);
        conn_close_side(c, FALSE);
}
