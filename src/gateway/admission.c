/* Console tunnels admitted: see gateway-private.h. A tunnel opens only with a valid ticket
 * (signature, expiry, replay cache, limits per ticket and user); its target comes from the
 * ticket, or, for a client following its desktop's live migration, from the manager's order
 * that the ticket's desktop moved (never from the client). */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"
#include "common/error.h"

#include <sodium.h>
#include <string.h>

#define FOLLOWER_KEEP_US (120 * G_USEC_PER_SEC) /* a client may follow that long after its last tunnel */
#define MOVE_KEEP_US (900 * G_USEC_PER_SEC)     /* a move is followed that long after the order */

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
void admission_report(Conn *c, GatewayEventKind kind, const char *reason)
{
        Gateway *gw = c->gw;
        Delivery *d;

        if (!gw->report)
                return;
        d = g_new0(Delivery, 1);
        d->fn = gw->report;
        d->data = gw->report_data;
        d->ev.kind = kind;
        d->ev.has_ticket = c->t.nonce[0] != '\0';
        d->ev.t = c->t;
        g_strlcpy(d->ev.via, c->kind == KIND_CONNECT ? "connect" : "websocket", sizeof(d->ev.via));
        g_strlcpy(d->ev.peer, c->peer, sizeof(d->ev.peer));
        if (reason)
                g_strlcpy(d->ev.reason, reason, sizeof(d->ev.reason));
        d->ev.bytes_in = c->bytes_in;
        d->ev.bytes_out = c->bytes_out;
        if (c->opened_us)
                d->ev.duration_ms = (g_get_monotonic_time() - c->opened_us) / 1000;
        g_main_context_invoke_full(gw->main_ctx, G_PRIORITY_DEFAULT, deliver, d, g_free);
}

static void refuse(Conn *c, int status, const char *reason, const char *why)
{
        g_info("refused a %s tunnel from %s: %s", conn_tunnel_label(c), c->peer, why);
        admission_report(c, GATEWAY_REFUSED, why);
        conn_respond(c, status, reason,
                status == 407 ? "Proxy-Authenticate: Basic realm=\"atrium console ticket\"\r\n"
                              : NULL,
                why);
}

/* Who holds a tunnel with the ticket now (a follower of its desktop, later). */
static void follower_seen(Gateway *gw, const Ticket *t, const char *peer)
{
        Follower *f = g_hash_table_lookup(gw->followers, t->nonce);

        if (!f) {
                f = g_new0(Follower, 1);
                g_hash_table_insert(gw->followers, g_strdup(t->nonce), f);
        }
        g_strlcpy(f->peer, peer, sizeof(f->peer));
        f->last_us = g_get_monotonic_time();
}

/* The tunnel counted against its ticket and user. */
static void count(Conn *c, guint n_ticket, guint n_user)
{
        Gateway *gw = c->gw;

        g_hash_table_insert(gw->by_nonce, g_strdup(c->t.nonce), GUINT_TO_POINTER(n_ticket + 1));
        g_hash_table_insert(gw->by_user, GINT_TO_POINTER(c->t.user), GUINT_TO_POINTER(n_user + 1));
        follower_seen(gw, &c->t, c->peer);
        c->counted = TRUE;
        gw->tunnels++;
        c->opened_us = g_get_monotonic_time();
}

/* Checks a ticket and the limits; on success the tunnel is counted and c->t holds it. */
gboolean admission_admit(Conn *c, const char *text, const Ticket *signed_t, const char *want_host,
                         guint16 want_port)
{
        Gateway *gw = c->gw;
        g_autoptr(GError) error = NULL;
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        gboolean first = FALSE;
        guint n_ticket, n_user;
        int status;

        if (!text || !text[0]) {
                refuse(c, c->kind == KIND_CONNECT ? 407 : 401,
                       c->kind == KIND_CONNECT ? "Proxy Authentication Required" : "Unauthorized",
                       "no console ticket: connect with the ticket from the broker's connection "
                       "data");
                return FALSE;
        }
        if (signed_t ? !ticket_check_expiry(signed_t, now, &error)
                     : !ticket_verify(text, strlen(text), gw->pk, now, &c->t, &error)) {
                memset(&c->t, 0, sizeof(c->t));
                refuse(c, 403, "Forbidden", error->message);
                return FALSE;
        }
        if (signed_t)
                c->t = *signed_t;
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
        count(c, n_ticket, n_user);
        return TRUE;
}

/* Whether the manager said desktop's proto console moved to host:port (not too long ago). */
static gboolean moved_to(Gateway *gw, gint64 desktop, const char *proto, const char *host,
                         guint16 port)
{
        gint64 now = g_get_monotonic_time();
        gboolean hit = FALSE;
        GArray *a;

        g_mutex_lock(&gw->lock);
        a = gw->moves ? g_hash_table_lookup(gw->moves, &desktop) : NULL;
        for (guint i = 0; a && i < a->len && !hit; i++) {
                Move *m = &g_array_index(a, Move, i);
                hit = m->at_us > now - MOVE_KEEP_US && g_str_equal(m->proto, proto) &&
                      gw_target_matches(host, port, m->host, m->port);
        }
        g_mutex_unlock(&gw->lock);
        return hit;
}

Follow admission_follow(Conn *c, const char *text, const char *want_host, guint16 want_port,
                        Ticket *signed_t, gboolean *is_signed)
{
        Gateway *gw = c->gw;
        Ticket t;
        Follower *f;
        guint n_ticket, n_user;

        *is_signed = FALSE;
        if (!text || !text[0] || !ticket_verify(text, strlen(text), gw->pk, 0, &t, NULL))
                return FOLLOW_NO; /* not a ticket of ours: admission_admit() says so */
        *signed_t = t; /* verified once: admission_admit() checks only its expiry */
        *is_signed = TRUE;
        f = g_hash_table_lookup(gw->followers, t.nonce);
        if (!f || !g_str_equal(f->peer, c->peer) ||
            (!g_hash_table_contains(gw->by_nonce, t.nonce) &&
             f->last_us < g_get_monotonic_time() - FOLLOWER_KEEP_US) ||
            gw_target_matches(want_host, want_port, t.host, t.port)) {
                sodium_memzero(&t, sizeof(t));
                return FOLLOW_NO; /* not connected with it, or its own target: the usual way */
        }
        if (!moved_to(gw, t.desktop, t.proto, want_host, want_port)) {
                sodium_memzero(&t, sizeof(t));
                return FOLLOW_WAIT;
        }
        /* the client's channels to the source and to the destination, for a moment */
        n_ticket = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_nonce, t.nonce));
        n_user = GPOINTER_TO_UINT(g_hash_table_lookup(gw->by_user, GINT_TO_POINTER(t.user)));
        if (n_ticket >= 2 * gw->per_ticket || n_user >= gw->per_user) {
                sodium_memzero(&t, sizeof(t));
                return FOLLOW_NO;
        }
        c->t = t;
        g_strlcpy(c->t.host, want_host, sizeof(c->t.host));
        c->t.port = want_port;
        sodium_memzero(&t, sizeof(t));
        count(c, n_ticket, n_user);
        return FOLLOW_YES;
}

void admission_sweep_followers(Gateway *gw)
{
        GHashTableIter it;
        gpointer k, v;
        gint64 limit = g_get_monotonic_time() - FOLLOWER_KEEP_US;

        g_hash_table_iter_init(&it, gw->followers);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (((Follower *)v)->last_us < limit && !g_hash_table_contains(gw->by_nonce, k))
                        g_hash_table_iter_remove(&it);
        g_mutex_lock(&gw->lock);
        if (gw->moves) {
                gint64 old = g_get_monotonic_time() - MOVE_KEEP_US;
                g_hash_table_iter_init(&it, gw->moves);
                while (g_hash_table_iter_next(&it, NULL, &v)) {
                        GArray *a = v;
                        while (a->len && g_array_index(a, Move, 0).at_us < old)
                                g_array_remove_index(a, 0);
                        if (!a->len)
                                g_hash_table_iter_remove(&it);
                }
        }
        g_mutex_unlock(&gw->lock);
}

void admission_release(Conn *c)
{
        Gateway *gw = c->gw;
        guint n;
        gpointer key = GINT_TO_POINTER(c->t.user);

        admission_report(c, GATEWAY_CLOSE, NULL);
        if (g_hash_table_contains(gw->followers, c->t.nonce))
                follower_seen(gw, &c->t, c->peer);
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
        c->counted = FALSE;
}
