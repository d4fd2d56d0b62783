/* The gateways' side of consoles (tunnels.c): how many tunnels each desktop has open over
 * every gateway that reports here, and the orders that close them.
 *
 * A gateway reports each tunnel it opens, closes or refuses (the gateway in this process
 * directly, gateways alone through POST /gateway/events, which answers with the orders they
 * have not seen). The first tunnel open to a desktop connects its sessions, the last one
 * closed disconnects them: told to the follower (sessions.c), so that this file knows nothing
 * of sessions. */
#pragma once
#include "manager/api.h"

/* A report of one tunnel: {"kind": "open"|"close"|"refused", "desktop", "user", "via",
 * "peer", "reason", "bytes_in", "bytes_out", "duration_ms"}. Refusals become
 * 'ticket_refused' events, a desktop's first open and last close 'console_connected' and
 * 'console_disconnected'. gateway: who reports (for the audit trail). Any thread. */
void tunnels_gateway_event(Store *st, JsonObject *ev, const char *gateway);

/* How many console tunnels the gateways report open to a desktop now. Any thread. */
guint tunnels_open(gint64 desktop);

/* Who hears that a desktop's first tunnel opened or its last one closed (set once at
 * construction; called on the reporting thread). */
typedef void (*TunnelFollower)(Store *st, gint64 desktop, const Actor *actor, gboolean connected);
void tunnels_set_follower(TunnelFollower fn);

/* Closes every gateway tunnel to a desktop: the gateway in this process at once (its closer,
 * called on the caller's thread, must be thread-safe), the others when they next report. */
typedef void (*TunnelCloser)(gint64 desktop, gpointer data);
void tunnels_set_closer(TunnelCloser fn, gpointer data);
void tunnels_close(gint64 desktop);

/* A desktop's console moves (a live migration's copy listens on its destination): a client
 * holding a tunnel to it may follow to host:port (SPICE's seamless migration). Told to the
 * gateway in this process at once (its mover, any thread), to the others when they next
 * report; the same move (desktop, epoch: one migration) is told once. */
typedef void (*TunnelMover)(gint64 desktop, const char *proto, const char *host, guint16 port,
                            gpointer data);
void tunnels_set_mover(TunnelMover fn, gpointer data);
void tunnels_move(gint64 desktop, gint64 epoch, const char *proto, const char *host,
                  guint16 port);
