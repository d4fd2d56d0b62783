/* Console tunnels admitted: see gateway-private.h. A tunnel opens only with a valid ticket
 * (signature, expiry, replay cache, limits per ticket and user); its target comes from the
 * ticket only. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"
#include "common/error.h"

#include <string.h>

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

/* Checks a ticket and the limits; on success the tunnel is counted and c->t holds it. */
gboolean admission_admit(Conn *c, const char *text, const char *want_host, guint16 want_port)
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
        c->counted = TRUE;
        gw->tunnels++;
        c->opened_us = g_get_monotonic_time();
        return TRUE;
}

void admission_release(Conn *c)
{
        Gateway *gw = c->gw;
        guint n;
        gpointer key = GINT_TO_POINTER(c->t.user);

        admission_report(c, GATEWAY_CLOSE, NULL);
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
