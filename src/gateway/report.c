/* Tunnel reports: a GatewayEvent as JSON, and the reporter a gateway in its own process uses
 * to send them to the manager (POST /api/v1/gateway/events, batched, retried). */
#define G_LOG_DOMAIN "gateway"

#include "gateway/report.h"
#include "common/tls.h"

#include <string.h>

#define REPORT_BATCH_MAX 500
#define REPORT_QUEUE_MAX 20000
#define REPORT_POLL_MS 2000

JsonObject *gateway_event_json(const GatewayEvent *ev)
{
        static const char *const kinds[] = {"open", "close", "refused"};
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "kind", kinds[ev->kind]);
        json_object_set_string_member(o, "via", ev->via);
        json_object_set_string_member(o, "peer", ev->peer);
        if (ev->has_ticket) {
                json_object_set_int_member(o, "desktop", ev->t.desktop);
                json_object_set_int_member(o, "user", ev->t.user);
        }
        if (ev->kind == GATEWAY_REFUSED)
                json_object_set_string_member(o, "reason", ev->reason);
        if (ev->kind == GATEWAY_CLOSE) {
                json_object_set_int_member(o, "bytes_in", (gint64)ev->bytes_in);
                json_object_set_int_member(o, "bytes_out", (gint64)ev->bytes_out);
                json_object_set_int_member(o, "duration_ms", ev->duration_ms);
        }
        return o;
}

struct _Reporter {
        SoupSession *session;
        ReporterCloser closer;
        gpointer closer_data;
        ReporterMover mover;
        gpointer mover_data;
        gint64 after; /* the last order seen; -1 before the first answer */
        char **bases;  /* the managers' URLs */
        guint index;   /* ... the one reports go to */
        char *url, *fingerprint, *key, *name;
        GQueue queue; /* JsonObject */
        gboolean in_flight;
        guint timer;
        GCancellable *cancel;
};

static void flush(Reporter *r);

static gboolean flush_later(gpointer data)
{
        Reporter *r = data;

        r->timer = 0;
        flush(r);
        return G_SOURCE_REMOVE;
}

static void schedule(Reporter *r, guint ms)
{
        if (r->timer && ms < 100) { /* events waiting: sooner than the next poll */
                g_source_remove(r->timer);
                r->timer = 0;
        }
        if (!r->timer && !r->in_flight)
                r->timer = g_timeout_add(ms, flush_later, r);
}

/* The manager's answer: orders to carry out (close a desktop's tunnels, follow its move). */
static void take_orders(Reporter *r, GBytes *answer)
{
        g_autoptr(JsonParser) p = json_parser_new();
        JsonObject *o;
        JsonArray *a;
        gint64 last;

        if (!answer ||
            !json_parser_load_from_data(p, g_bytes_get_data(answer, NULL),
                                        (gssize)g_bytes_get_size(answer), NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
                return;
        o = json_node_get_object(json_parser_get_root(p));
        last = json_object_get_int_member_with_default(o, "last", 0);
        a = json_object_has_member(o, "orders") ? json_object_get_array_member(o, "orders") : NULL;
        for (guint i = 0; r->after >= 0 && a && i < json_array_get_length(a); i++) {
                JsonObject *e = json_array_get_object_element(a, i);
                gint64 d = e ? json_object_get_int_member_with_default(e, "close_desktop", 0) : 0;
                gint64 m = e ? json_object_get_int_member_with_default(e, "move_desktop", 0) : 0;
                gint64 port = e ? json_object_get_int_member_with_default(e, "port", 0) : 0;
                const char *proto = e ? json_object_get_string_member_with_default(e, "proto", "") : "";
                const char *host = e ? json_object_get_string_member_with_default(e, "host", "") : "";
                if (d > 0 && r->closer)
                        r->closer(d, r->closer_data);
                if (m > 0 && r->mover && proto[0] && host[0] && port > 0 && port <= G_MAXUINT16)
                        r->mover(m, proto, host, (guint16)port, r->mover_data);
        }
        r->after = last;
}

static gboolean accept_cert(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                            gpointer data)
{
        Reporter *r = data;
        g_autoptr(GByteArray) der = NULL;

        if (!r->fingerprint[0])
                return FALSE;
        g_object_get(cert, "certificate", &der, NULL);
        return der && tls_der_matches(der->data, der->len, r->fingerprint);
}

typedef struct {
        Reporter *r;
        GPtrArray *sent; /* JsonObject, put back in front on failure */
} Batch;

static void use_base(Reporter *r, guint i)
{
        if (r->url && i == r->index)
                return;
        r->index = i;
        g_free(r->url);
        r->url = g_strconcat(r->bases[i], "/api/v1/gateway/events", NULL);
        g_info("reporting to the manager at %s", r->bases[i]);
}

/* A standby answered: go to the leader it names (one of ours), or wait while none leads. */
static gboolean follow_leader(Reporter *r, SoupMessage *msg)
{
        const char *l = soup_message_headers_get_one(soup_message_get_response_headers(msg),
                                                     "X-Atrium-Leader");

        if (!l)
                return FALSE;
        for (guint i = 0; r->bases[i]; i++)
                if (g_str_equal(r->bases[i], l))
                        use_base(r, i);
        return TRUE;
}

static void posted(GObject *source, GAsyncResult *res, gpointer data)
{
        Batch *b = data;
        Reporter *r = b->r;
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) answer =
                soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
        SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(source), res);
        guint status = msg ? soup_message_get_status(msg) : 0;

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_ptr_array_unref(b->sent);
                g_free(b);
                return;
        }
        r->in_flight = FALSE;
        if (!error && (status == 307 || status == 503) && msg && follow_leader(r, msg)) {
                for (guint i = b->sent->len; i > 0; i--)
                        g_queue_push_head(&r->queue,
                                          json_object_ref(g_ptr_array_index(b->sent, i - 1)));
                g_ptr_array_unref(b->sent);
                g_free(b);
                schedule(r, status == 307 ? 10 : 1000);
                return;
        }
        if (error && g_strv_length(r->bases) > 1) /* that manager is gone: the next one */
                use_base(r, (r->index + 1) % g_strv_length(r->bases));
        if (!error && status == 200 && answer) {
                take_orders(r, answer);
                g_ptr_array_unref(b->sent);
        } else {
                g_warning("cannot report %u tunnel events to the manager (%s): retrying in 2 s",
                          b->sent->len,
                          error ? error->message : soup_message_get_reason_phrase(msg));
                if (status == 401 || status == 400) { /* retrying will not help */
                        g_ptr_array_unref(b->sent);
                } else {
                        for (guint i = b->sent->len; i > 0; i--)
                                g_queue_push_head(&r->queue, json_object_ref(g_ptr_array_index(
                                                                     b->sent, i - 1)));
                        g_ptr_array_unref(b->sent);
                }
                g_free(b);
                schedule(r, 2000);
                return;
        }
        g_free(b);
        schedule(r, g_queue_is_empty(&r->queue) ? REPORT_POLL_MS : 50);
}

static void flush(Reporter *r)
{
        g_autoptr(JsonObject) body = json_object_new();
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
        g_autoptr(SoupMessage) msg = NULL;
        g_autoptr(GBytes) bytes = NULL;
        JsonArray *events = json_array_new();
        Batch *b;
        char *text;

        if (r->in_flight)
                return;
        b = g_new0(Batch, 1);
        b->r = r;
        b->sent = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        while (!g_queue_is_empty(&r->queue) && b->sent->len < REPORT_BATCH_MAX) {
                JsonObject *o = g_queue_pop_head(&r->queue);
                json_array_add_object_element(events, json_object_ref(o));
                g_ptr_array_add(b->sent, o);
        }
        json_object_set_string_member(body, "gateway", r->name);
        if (r->after >= 0)
                json_object_set_int_member(body, "after", r->after);
        json_object_set_array_member(body, "events", events);
        json_node_set_object(node, body);
        text = json_to_string(node, FALSE);
        bytes = g_bytes_new_take(text, strlen(text));
        msg = soup_message_new("POST", r->url);
        soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT); /* follow_leader */
        soup_message_headers_replace(soup_message_get_request_headers(msg), "X-Atrium-Gateway-Key",
                                     r->key);
        soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
        g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_cert), r);
        r->in_flight = TRUE;
        soup_session_send_and_read_async(r->session, msg, G_PRIORITY_DEFAULT, r->cancel, posted, b);
}

Reporter *reporter_new(const char *const *urls, const char *fingerprint, const char *key,
                       const char *name)
{
        Reporter *r = g_new0(Reporter, 1);

        r->bases = g_strdupv((char **)urls);
        for (char **b = r->bases; *b; b++) {
                gsize n = strlen(*b);
                while (n > 0 && (*b)[n - 1] == '/')
                        (*b)[--n] = '\0';
        }
        use_base(r, 0);
        r->fingerprint = g_strdup(fingerprint ? fingerprint : "");
        r->key = g_strdup(key);
        r->name = g_strdup(name);
        r->session =
                soup_session_new_with_options("timeout", 30, "user-agent", "atrium-gateway", NULL);
        r->cancel = g_cancellable_new();
        r->after = -1;
        g_queue_init(&r->queue);
        schedule(r, 100);
        return r;
}

void reporter_set_closer(Reporter *r, ReporterCloser fn, gpointer data)
{
        r->closer = fn;
        r->closer_data = data;
}

void reporter_set_mover(Reporter *r, ReporterMover fn, gpointer data)
{
        r->mover = fn;
        r->mover_data = data;
}

const char *reporter_manager(Reporter *r)
{
        return r->bases[r->index];
}

void reporter_add(Reporter *r, const GatewayEvent *ev)
{
        if (g_queue_get_length(&r->queue) >= REPORT_QUEUE_MAX)
                json_object_unref(g_queue_pop_head(&r->queue));
        g_queue_push_tail(&r->queue, gateway_event_json(ev));
        schedule(r, 20);
}

void reporter_free(Reporter *r)
{
        if (!r)
                return;
        g_cancellable_cancel(r->cancel);
        g_clear_object(&r->cancel);
        if (r->timer)
                g_source_remove(r->timer);
        g_queue_clear_full(&r->queue, (GDestroyNotify)json_object_unref);
        g_clear_object(&r->session);
        g_strfreev(r->bases);
        g_free(r->url);
        g_free(r->fingerprint);
        g_free(r->key);
        g_free(r->name);
        g_free(r);
}
