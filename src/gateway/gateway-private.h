/* The gateway's parts, shared by its files (nothing outside src/gateway includes this):
 *
 *   conn.c       a connection: its two sides' output queues and flow control, its state and
 *                the one place that moves it, its own answers;
 *   admission.c  console tickets, tunnel counts per ticket and user, the replay cache, and
 *                the reports of opened, closed and refused tunnels;
 *   static.c     the portal's files;
 *   dialer.c     the manager over pinned TLS, for a gateway in its own process;
 *   gateway.c    request dispatch, the API relay, WebSocket frames, the libwebsockets
 *                callback and the gateway's life cycle.
 *
 * One Conn per accepted client; it has up to two libwebsockets connections: the client's raw
 * TLS socket and the upstream (the console, or the manager for /api). Everything here runs on
 * the gateway's thread. */
#pragma once
#include "gateway/gateway.h"
#include "gateway/gwproto.h"

#include <uv.h>
#include <libwebsockets.h>

#define TX_CHUNK 262144

struct _Gateway {
        char *state_dir, *listen_host, *cert, *key, *web_root, *url;
        guint16 port;
        gboolean plain;
        char *mgr_socket, *mgr_host, *mgr_fp;
        guint16 mgr_port;
        const char *(*mgr_now)(gpointer data); /* GatewayOptions.manager_now */
        gpointer mgr_now_data;
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
        GHashTable *moves;     /* desktop id -> GArray of Move: consoles that moved (under lock) */
        GHashTable *followers; /* ticket nonce -> Follower: who may follow its desktop */
        uv_timer_t follow_timer; /* retries the tunnels waiting for their desktop's move */
        gboolean follow_timer_on;
        GMutex lock;
        GCond cond;
        int started; /* 0 starting, 1 listening, -1 failed */
        GError *start_error;
        gint stop;
        guint64 tunnels;
};

/* Bytes waiting for one side: one chunk per read (a WebSocket frame's header and payload
 * together, so they leave in one TLS record), small ones appended to the last chunk when it
 * has room. */
typedef struct {
        GQueue chunks;
        gsize total;
} Out;

/* One side of a connection: its socket, what waits to be written to it, whether its reading
 * is paused (the other side's queue is past max_buffer_bytes) and whether it closes once its
 * queue is written. */
typedef struct {
        struct lws *wsi;
        Out out;
        gboolean paused, closing;
} Side;

/* What a connection is, known once its request head is read. */
typedef enum {
        KIND_UNKNOWN,   /* the head is not read yet */
        KIND_WEBSOCKET, /* a console tunnel for noVNC */
        KIND_CONNECT,   /* a console tunnel for a native SPICE client's channel */
        KIND_API,       /* relayed to the manager */
        KIND_STATIC,    /* a portal file */
} ConnKind;

/* Where a connection is in its life. conn_set_state() is the one place that moves it, along
 * these transitions only:
 *
 *   HEAD ──► DIALING ──► OPEN ──► CLOSING
 *     │         │  └────────────────► │
 *     └─────────┴──► ANSWERING ◄── OPEN (the API: the manager went before answering)
 *
 * ANSWERING and CLOSING are final: the sides close once their queues are written. */
typedef enum {
        CONN_HEAD,      /* reading the request head */
        CONN_DIALING,   /* a tunnel admitted, or an API request: its upstream is being reached */
        CONN_OPEN,      /* the upstream answered the connection: bytes flow both ways */
        CONN_ANSWERING, /* the gateway's own answer (a file, an error) goes out, then it closes */
        CONN_CLOSING,   /* closing: a WebSocket close sent, a close order, the idle sweep */
        CONN_STATE_LAST
} ConnState;

/* A desktop's console moved (gateway_move_desktop): its tickets' holders may follow. */
typedef struct {
        char proto[8];
        char host[256];
        guint16 port;
        gint64 at_us; /* monotonic */
} Move;

/* A ticket's client: its address and when it last held a tunnel (monotonic µs). */
typedef struct {
        char peer[64];
        gint64 last_us;
} Follower;

typedef struct {
        Gateway *gw;
        Side cl, up;
        ConnKind kind;
        ConnState state;
        GByteArray *in;
        gint64 last_us; /* last byte either way (the idle sweep) */
        GList link;     /* in gw->conns */
        gboolean counted; /* admitted: counted per ticket and user (admission.c) */
        Ticket t;
        char peer[64];
        char ws_accept[32];
        gboolean ws_binary_proto; /* the client asked for the "binary" subprotocol */
        gint64 opened_us;
        guint64 bytes_in, bytes_out; /* console bytes, client to console and back */
        guint64 up_rx;               /* every byte the upstream sent */
        char *follow_ticket;         /* a CONNECT waiting for its desktop's move (admission.c) */
        char follow_host[256];
        guint16 follow_port;
        gint64 follow_until_us;
} Conn;

/* ---- conn.c ---- */
Conn *conn_new(Gateway *gw, struct lws *client);
/* Frees it once both sides are gone; an admitted tunnel is released (reported closed). */
void conn_free(Conn *c);
const char *conn_state_to_string(ConnState s);
/* Moves the connection to state next; a transition not in the picture above is a bug (a
 * critical warning: fatal in the tests). */
void conn_set_state(Conn *c, ConnState next);
/* "CONNECT" or "WebSocket", for messages. */
const char *conn_tunnel_label(const Conn *c);
/* Room for len bytes to the client (to_client) or upstream, filled by the caller; past
 * max_buffer_bytes the other side's reading is paused. NULL when that side is gone. */
guint8 *conn_queue_reserve(Conn *c, gboolean to_client, gsize len);
void conn_queue(Conn *c, gboolean to_client, const void *buf, gsize len);
void conn_queue_text(Conn *c, const char *text);
/* One chunk to the side when it is writable; resumes the other side's reading once half has
 * drained; -1 when the side is to close now. */
int conn_write(Conn *c, gboolean client);
/* Pauses or resumes reading from one side, once per change. */
void conn_set_reading(Conn *c, gboolean client, gboolean on);
/* Closes one side as soon as what it has to write is written. */
void conn_close_side(Conn *c, gboolean client);
/* The side went away (its socket closed): nothing more is written to it. */
void conn_side_gone(Conn *c, gboolean client);
/* Both sides closed (CLOSING); a WebSocket tunnel gets a close frame (ws_code, why) first
 * unless ws_code is 0. Nothing when it is closing or answering already. */
void conn_close(Conn *c, guint16 ws_code, const char *why);
/* An HTTP answer with a text body, then both sides close (ANSWERING). */
void conn_respond(Conn *c, int status, const char *reason, const char *extra, const char *body);
/* A WebSocket frame to the client. */
void conn_ws_send(Conn *c, guint8 opcode, const void *data, gsize len);

/* ---- admission.c ---- */
/* Checks a ticket (signature, expiry, target) and the limits, and spends it in the replay
 * cache; on success the tunnel is counted and c->t holds it, else the client has its answer
 * (401/407, 403, 429, 503) and a refusal is reported. signed_t: the ticket of that text whose
 * signature admission_follow() verified already (only its expiry is checked then), or NULL. */
gboolean admission_admit(Conn *c, const char *ticket_text, const Ticket *signed_t,
                         const char *want_host, guint16 want_port);
/* A CONNECT to another target than its ticket's: a client following its desktop's live
 * migration (SPICE's seamless migration connects to the destination with the session's proxy
 * and ticket). FOLLOW_YES (admitted and counted, c->t aimed at the new target) when the
 * manager told this gateway that the ticket's desktop moved there and the client holds, or
 * held a moment ago, a tunnel with that ticket from the same address (expired tickets too:
 * the client connected long ago); FOLLOW_WAIT when all but the move is known (the order may
 * be on its way); FOLLOW_NO otherwise (admission_admit() then says why). *is_signed tells
 * whether signed_t holds the text's ticket, its signature verified (so that admission_admit()
 * does not verify it twice); the caller wipes it. */
typedef enum { FOLLOW_NO, FOLLOW_WAIT, FOLLOW_YES } Follow;
Follow admission_follow(Conn *c, const char *ticket_text, const char *want_host,
                        guint16 want_port, Ticket *signed_t, gboolean *is_signed);
/* Forgets the clients that held no tunnel for a while. */
void admission_sweep_followers(Gateway *gw);
/* The tunnel is over: uncounted, reported closed with its bytes and duration. */
void admission_release(Conn *c);
/* Hands a tunnel event to the owner's main context (the manager, or the reporter to it). */
void admission_report(Conn *c, GatewayEventKind kind, const char *reason);

/* ---- static.c ---- */
/* The portal's files: GET and HEAD only, nothing outside web_root. */
void static_serve(Conn *c, const GwHead *h);

/* ---- dialer.c ---- */
/* Starts the pinned TLS connection to the manager on the main context, spliced to a socket
 * pair whose other end becomes the connection's upstream. FALSE (answered 503) when it cannot. */
gboolean dialer_connect(Conn *c);
