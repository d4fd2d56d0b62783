/* Test helper: the host end of an atrium-guest channel on a GSocket. */
#pragma once
#include "proto/guestproto.h"

#include <gio/gio.h>

typedef struct {
        GSocket *socket; /* not owned */
        GString *buf;    /* bytes received, not yet a whole line */
} GuestHost;

void guest_host_init(GuestHost *gh, GSocket *socket);
void guest_host_clear(GuestHost *gh);
/* The next message from the guest, parsed (asserting it parses); blocks on the socket. */
GuestMsg *guest_host_read(GuestHost *gh);
/* The next message of type t; others (heartbeats...) are skipped. */
GuestMsg *guest_host_expect(GuestHost *gh, GuestMsgType t);
void guest_host_send(GSocket *socket, const char *line);
