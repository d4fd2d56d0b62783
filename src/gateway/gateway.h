/* The gateway: one TLS port for the portal, the API and every console.
 *
 * Built on libwebsockets (raw TLS sockets) with its libuv loop, on its own thread. Each
 * accepted connection sends one HTTP/1.x request head (parsed by gwproto.c):
 *   CONNECT host:port            a native SPICE client's channel (spice-gtk sends one per
 *                                channel, ticket as the Proxy-Authorization password);
 *   GET /console?ticket=...      a WebSocket (binary subprotocol, as websockify) for noVNC;
 *   /api/...                     relayed to the manager (its local socket in the all-in-one
 *                                process, else HTTPS with its pinned certificate);
 *   anything else                the portal's static files.
 * A console tunnel opens only with a valid ticket (signature, expiry, replay cache, limits per
 * ticket and user); its target comes from the ticket only. Opened, closed (with byte counts)
 * and refused tunnels are reported to the owner through a callback on the GLib main context. */
#pragma once
#include "common/config.h"
#include "proto/ticket.h"

#include <glib.h>

typedef enum {
        GATEWAY_OPEN,
        GATEWAY_CLOSE,
        GATEWAY_REFUSED,
} GatewayEventKind;

typedef struct {
        GatewayEventKind kind;
        gboolean has_ticket; /* t holds a verified ticket */
        Ticket t;
        char via[12];      /* "websocket" or "connect" */
        char peer[64];     /* client address */
        char reason[200];  /* GATEWAY_REFUSED: why */
        guint64 bytes_in;  /* client to console, GATEWAY_CLOSE */
        guint64 bytes_out; /* console to client */
        gint64 duration_ms;
} GatewayEvent;

typedef void (*GatewayReportFunc)(const GatewayEvent *ev, gpointer data);

typedef struct {
        const char *manager_socket; /* all-in-one: the manager's state_dir/api.sock */
        const char *manager_url;    /* else: the manager's https URL */
        const char *manager_fingerprint;
        /* Several managers: the URL the API relay dials now (the leader; main context), or
         * NULL: manager_url always. */
        const char *(*manager_now)(gpointer data);
        gpointer manager_now_data;
        const char *default_cert, *default_key; /* used when gateway.tls_cert is empty */
        GatewayReportFunc report; /* called on the thread-default main context at new() */
        gpointer report_data;
} GatewayOptions;

typedef struct _Gateway Gateway;

Gateway *gateway_new(const Config *config, const char *state_dir, const GatewayOptions *opts,
                     GError **error);
/* Binds the port and starts the gateway's thread; FALSE when it cannot listen. */
gboolean gateway_start(Gateway *gw, GError **error);
/* https://HOST:PORT of the listening port (after a successful start). */
const char *gateway_url(Gateway *gw);
/* Closes every tunnel to a desktop (the manager's order: its session was disconnected or
 * ended). Any thread. */
void gateway_close_desktop(Gateway *gw, gint64 desktop);
/* The manager's order that a desktop's console moved to host:port (a live migration's
 * destination): a client holding a tunnel with one of its tickets may follow there. Any
 * thread. */
void gateway_move_desktop(Gateway *gw, gint64 desktop, const char *proto, const char *host,
                          guint16 port);
/* Stops the thread (open tunnels are closed) and frees. */
void gateway_free(Gateway *gw);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Gateway, gateway_free)
