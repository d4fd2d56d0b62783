/* Console tickets, version 1: what lets a client open one console through a gateway.
 *
 *   atk1.PAYLOAD.SIGNATURE
 *
 * PAYLOAD is base64url (no padding) of a JSON object with exactly these members, in this
 * order: {"v":1,"host":"10.0.0.5","port":5901,"proto":"spice","desktop":12,"user":3,
 * "exp":1795377109,"nonce":"..."} — the console's target (taken from the ticket, never from
 * the client), the desktop and user it is for, its expiry (Unix seconds) and 16 random bytes
 * (base64url) that make it unique (the gateway's replay cache keys on them). SIGNATURE is
 * base64url of the Ed25519 signature (libsodium crypto_sign_detached) of the ASCII text
 * "atk1." + PAYLOAD. The manager keeps the secret key; gateways get only the public key.
 * Pure functions, golden-tested (tests/data/tickets.*) and fuzzed (fuzz-ticket). */
#pragma once
#include <glib.h>

#define TICKET_PREFIX "atk1."
#define TICKET_MAX 1024 /* longest ticket text accepted */
#define TICKET_PK_BYTES 32
#define TICKET_SK_BYTES 64
#define TICKET_NONCE_BYTES 16

typedef struct {
        char host[256];  /* console address: IPv4/IPv6 literal or host name */
        guint16 port;
        char proto[8];   /* spice or vnc */
        gint64 desktop;  /* desktop id */
        gint64 user;     /* user id (0: a kiosk terminal's session) */
        gint64 exp;      /* Unix seconds */
        char nonce[32];  /* base64url of TICKET_NONCE_BYTES */
} Ticket;

/* A new key pair (sk holds the seed and the public key, as libsodium lays it out). */
void ticket_keypair(guint8 pk[TICKET_PK_BYTES], guint8 sk[TICKET_SK_BYTES]);
/* The same from a 32-byte seed: for tests only. */
void ticket_keypair_from_seed(const guint8 seed[32], guint8 pk[TICKET_PK_BYTES],
                              guint8 sk[TICKET_SK_BYTES]);
/* Fills t->nonce with fresh random bytes. */
void ticket_new_nonce(Ticket *t);
/* The ticket text, or NULL with an ATRIUM_ERROR_INVALID error for a ticket that could not be
 * verified (bad host, port, protocol, ids or nonce). */
char *ticket_sign(const Ticket *t, const guint8 sk[TICKET_SK_BYTES], GError **error);
/* Checks the text: form, signature with pk, every member, and expiry against now. Errors:
 * ATRIUM_ERROR_INVALID (not a ticket), ATRIUM_ERROR_UNAUTHORIZED (signature does not verify,
 * or expired). */
gboolean ticket_verify(const char *text, gsize len, const guint8 pk[TICKET_PK_BYTES], gint64 now,
                       Ticket *out, GError **error);
/* The expiry part of ticket_verify() alone, for a ticket whose signature was verified with
 * now 0 (no expiry): the same ATRIUM_ERROR_UNAUTHORIZED error when it expired. */
gboolean ticket_check_expiry(const Ticket *t, gint64 now, GError **error);

/* The gateway's replay cache: a ticket is single-use, but one client opens several channels
 * with it (SPICE: main, display, inputs, cursor, ...). The first use of a ticket (its nonce)
 * binds it to the client's address; later uses are allowed from that address only, until the
 * ticket expires. Call after ticket_verify() (which refuses expired tickets). Entries go once
 * their ticket expired; a cache full of live tickets refuses new ones. One thread only. */
typedef struct _TicketReplay TicketReplay;

TicketReplay *ticket_replay_new(guint max_entries);
void ticket_replay_free(TicketReplay *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TicketReplay, ticket_replay_free)
/* TRUE when t may be used now from peer; else FALSE with ATRIUM_ERROR_UNAUTHORIZED (used by
 * another client) or ATRIUM_ERROR_UNAVAILABLE (cache full). *first: TRUE on the first use. */
gboolean ticket_replay_use(TicketReplay *r, const Ticket *t, const char *peer, gint64 now,
                           gboolean *first, GError **error);
guint ticket_replay_size(TicketReplay *r);
