/* The broker (broker.c): its routes are in api.h; this is what the agent links tell it. */
#pragma once
#include "manager/agentlink.h"
#include "proto/ticket.h"

/* atrium-guest in desktop ID said ready: connects waiting for it go on. Any thread. */
void broker_desktop_ready(gint64 desktop_id);
/* A LinkListener: atrium-guest's 'ready' lets connects waiting for the desktop go on. */
void broker_on_link(Agents *ag, const LinkEvent *ev, gpointer data);

/* The gateway clients reach: manager.gateway_url, else this process's gateway, else the
 * manager's own URL. */
const char *broker_gateway(Manager *mgr);
/* A console ticket for the gateway to HOST:PORT (valid TTL seconds; fills *t), signed. */
char *broker_ticket(Manager *mgr, const char *host, gint64 port, const char *protocol,
                    gint64 desktop_id, gint64 user_id, gint64 ttl, Ticket *t, GError **error);
