/* The agent's side of each running domain's atrium-guest channel (a UNIX socket QEMU serves):
 * the guest's messages become events for the manager (ready, user login and logout, heartbeat
 * lost and back), and guest.request commands are written to it and answered when the guest
 * replies. Everything here runs on the agent's loop. */
#define G_LOG_DOMAIN "agent"

#include "agent/agent-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "proto/agentproto.h"
#include "proto/guestproto.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>

#define GUEST_BEAT_S 5
#define GUEST_MISSED 3

/* ---- guest channels ---------------------------------------------------------------------- */

typedef struct _GuestChannel GuestChannel;

struct _GuestChannel {
        Agent *a;
        char *domain;
        char *path;
        GHashTable *waiting; /* request ids sent to atrium-guest -> their timeout GSource */
        GSocketConnection *conn;
        GDataInputStream *in;
        GCancellable *cancel;
        GSource *watchdog;
        gint64 last_beat;
        gint64 idle; /* seconds at last_beat; -1: not said */
        gboolean lost;
        guint attempts;
};

static void guest_event(GuestChannel *ch, const char *what, const char *user, const GuestMsg *m)
{
        JsonObject *e = agent_msg_new("event");

        json_object_set_string_member(e, "event", "guest");
        json_object_set_string_member(e, "domain", ch->domain);
        json_object_set_string_member(e, "what", what);
        if (user)
                json_object_set_string_member(e, "user", user);
        if (m && m->hostname)
                json_object_set_string_member(e, "hostname", m->hostname);
        if (m && m->type == GUEST_MSG_READY)
                json_object_set_int_member(e, "boots", m->boots);
        agent_send_msg(ch->a, e);
}

static void channel_free(gpointer data)
{
        GuestChannel *ch = data;

        g_hash_table_destroy(ch->waiting);
        g_cancellable_cancel(ch->cancel);
        g_object_unref(ch->cancel);
        if (ch->watchdog) {
                g_source_destroy(ch->watchdog);
                g_source_unref(ch->watchdog);
        }
        g_clear_object(&ch->in);
        if (ch->conn)
                g_io_stream_close(G_IO_STREAM(ch->conn), NULL, NULL);
        g_clear_object(&ch->conn);
        g_free(ch->domain);
        g_free(ch->path);
        g_free(ch);
}

static void read_next(GuestChannel *ch);

static void source_drop(gpointer data)
{
        g_source_destroy(data);
        g_source_unref(data);
}

/* The agent's answer to a guest.request command, remembered like any other. */
static void request_answer(Agent *a, const char *id, JsonObject *result, const GError *error)
{
        JsonObject *r = agent_msg_new("reply");
        char *text;

        json_object_set_string_member(r, "id", id);
        json_object_set_boolean_member(r, "ok", error == NULL);
        if (error)
                json_object_set_object_member(r, "error", agent_error_to_json(error));
        else
                json_object_set_object_member(r, "result",
                                              result ? json_object_ref(result) : json_object_new());
        text = agent_msg_text(r);
        agent_send_text(a, text);
        agent_remember_reply(a, id, text);
        g_hash_table_remove(a->inflight, id);
        json_object_unref(r);
}

static void guest_reply(GuestChannel *ch, const GuestMsg *m)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) result = NULL;

        if (!m->id || !g_hash_table_contains(ch->waiting, m->id))
                return; /* not ours, or too late */
        if (!m->ok)
                error = g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT, "atrium-guest: %s: %s",
                                    m->error_code ? m->error_code : "failed",
                                    m->error_message ? m->error_message : "");
        else if (m->result)
                result = json_parse_body(m->result, strlen(m->result), 8, NULL);
        request_answer(ch->a, m->id,
                       result && JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result)
                                                                : NULL,
                       error);
        g_hash_table_remove(ch->waiting, m->id);
}

typedef struct {
        GuestChannel *ch;
        char *id;
} RequestTimeout;

static gboolean request_timeout(gpointer data)
{
        RequestTimeout *t = data;
        g_autoptr(GError) e =
                g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "atrium-guest in %s did not answer in time", t->ch->domain);

        request_answer(t->ch->a, t->id, NULL, e);
        g_hash_table_remove(t->ch->waiting, t->id); /* destroys this source */
        return G_SOURCE_REMOVE;
}

static void request_timeout_free(gpointer data)
{
        RequestTimeout *t = data;
        g_free(t->id);
        g_free(t);
}

/* guest.request: a request to atrium-guest inside the domain, answered when it replies. Runs
 * on the loop: it only writes one line on the guest channel. */
void guest_request(Agent *a, const char *id, JsonObject *args)
{
        g_autoptr(GError) error = NULL;
        const char *domain = agent_domain_arg(args, &error);
        const char *op = domain ? agent_arg_string(args, "op", TRUE, &error) : NULL;
        const char *hostname = agent_arg_string(args, "hostname", FALSE, NULL);
        const char *user = agent_arg_string(args, "user", FALSE, NULL);
        GuestChannel *ch = domain ? g_hash_table_lookup(a->channels, domain) : NULL;
        int gop = op ? guest_op_from_string(op) : -1;
        g_autofree char *line = NULL;
        RequestTimeout *t;
        GSource *s;

        if (!error && gop < 0)
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not a request atrium-guest knows", op);
        else if (!error && gop == GUEST_OP_SET_HOSTNAME && !hostname)
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "set-hostname needs a 'hostname'");
        else if (!error && gop == GUEST_OP_LOGIN && !user)
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "login needs a 'user'");
        else if (!error && (!ch || !ch->conn))
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "atrium-guest is not connected in %s (not running, still booting, "
                            "or no guest tools)",
                            domain);
        if (!error) {
                line = guest_request_line(id, gop, gop == GUEST_OP_LOGIN ? user : hostname);
                if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(ch->conn)),
                                               line, strlen(line), NULL, NULL, &error))
                        g_prefix_error(&error, "cannot write to atrium-guest: ");
        }
        if (error) {
                request_answer(a, id, NULL, error);
                return;
        }
        t = g_new0(RequestTimeout, 1);
        t->ch = ch;
        t->id = g_strdup(id);
        s = g_timeout_source_new_seconds(30);
        g_source_set_callback(s, request_timeout, t, request_timeout_free);
        g_source_attach(s, a->ctx);
        g_hash_table_replace(ch->waiting, g_strdup(id), s);
}

static void on_line(GObject *src, GAsyncResult *res, gpointer data)
{
        GuestChannel *ch = data;
        g_autoptr(GError) error = NULL;
        gsize len = 0;
        g_autofree char *line =
                g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, &len, &error);
        g_autoptr(GuestMsg) m = NULL;

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* freed already */
        if (!line) {
                g_debug("guest channel of %s closed", ch->domain);
                g_hash_table_remove(ch->a->channels, ch->domain);
                return;
        }
        m = guest_msg_parse(line, len, &error);
        if (!m) {
                g_message("guest %s said something malformed: %s", ch->domain, error->message);
        } else {
                switch (m->type) {
                case GUEST_MSG_READY:
                        ch->last_beat = g_get_monotonic_time();
                        guest_event(ch, "ready", m->user, m);
                        break;
                case GUEST_MSG_HEARTBEAT:
                        ch->last_beat = g_get_monotonic_time();
                        ch->idle = m->idle;
                        if (ch->lost)
                                guest_event(ch, "heartbeat-back", m->user, NULL);
                        ch->lost = FALSE;
                        break;
                case GUEST_MSG_USER_LOGIN:
                        guest_event(ch, "user-login", m->user, NULL);
                        break;
                case GUEST_MSG_USER_LOGOUT:
                        guest_event(ch, "user-logout", m->user, NULL);
                        break;
                case GUEST_MSG_REPLY:
                        guest_reply(ch, m);
                        break;
                default:
                        break;
                }
        }
        read_next(ch);
}

static void read_next(GuestChannel *ch)
{
        g_data_input_stream_read_line_async(ch->in, G_PRIORITY_DEFAULT, ch->cancel, on_line, ch);
}

static gboolean watchdog(gpointer data)
{
        GuestChannel *ch = data;

        if (ch->in && ch->last_beat && !ch->lost &&
            g_get_monotonic_time() - ch->last_beat > GUEST_MISSED * GUEST_BEAT_S * G_USEC_PER_SEC) {
                ch->lost = TRUE;
                guest_event(ch, "heartbeat-lost", NULL, NULL);
        }
        return G_SOURCE_CONTINUE;
}

static void channel_try(GuestChannel *ch);

static gboolean channel_retry(gpointer data)
{
        channel_try(data);
        return G_SOURCE_REMOVE;
}

static void on_connected(GObject *src, GAsyncResult *res, gpointer data)
{
        GuestChannel *ch = data;
        g_autoptr(GError) error = NULL;
        GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &error);

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!conn) {
                if (++ch->attempts < 10) {
                        GSource *s = g_timeout_source_new(1000);
                        g_source_set_callback(s, channel_retry, ch, NULL);
                        g_source_attach(s, ch->a->ctx);
                        g_source_unref(s);
                } else {
                        g_warning("cannot reach the guest channel of %s: %s", ch->domain,
                                  error->message);
                }
                return;
        }
        ch->conn = conn;
        ch->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
        g_buffered_input_stream_set_buffer_size(G_BUFFERED_INPUT_STREAM(ch->in),
                                                GUEST_PROTO_LINE_MAX * 2);
        ch->last_beat = g_get_monotonic_time();
        read_next(ch);
}

static void channel_try(GuestChannel *ch)
{
        g_autoptr(GSocketClient) client = g_socket_client_new();
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(ch->path);

        g_socket_client_connect_async(client, G_SOCKET_CONNECTABLE(addr), ch->cancel, on_connected,
                                      ch);
}

void guest_channel_open(Agent *a, const char *domain, const char *path)
{
        GuestChannel *ch = g_hash_table_lookup(a->channels, domain);

        if (ch && g_str_equal(ch->path, path))
                return;
        ch = g_new0(GuestChannel, 1);
        ch->idle = -1;
        ch->a = a;
        ch->domain = g_strdup(domain);
        ch->path = g_strdup(path);
        ch->cancel = g_cancellable_new();
        ch->waiting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, source_drop);
        ch->watchdog = g_timeout_source_new_seconds(GUEST_BEAT_S);
        g_source_set_callback(ch->watchdog, watchdog, ch, NULL);
        g_source_attach(ch->watchdog, a->ctx);
        g_hash_table_replace(a->channels, ch->domain, ch);
        channel_try(ch);
}

void guest_channel_close(Agent *a, const char *domain)
{
        g_hash_table_remove(a->channels, domain);
}

JsonObject *guest_idle_report(Agent *a)
{
        JsonObject *o = json_object_new();
        GHashTableIter it;
        gpointer v;
        gint64 now = g_get_monotonic_time();

        g_hash_table_iter_init(&it, a->channels);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                GuestChannel *ch = v;
                if (ch->conn && !ch->lost && ch->idle >= 0)
                        json_object_set_int_member(o, ch->domain,
                                                   ch->idle + (now - ch->last_beat) /
                                                                      G_USEC_PER_SEC);
        }
        return o;
}

GHashTable *guest_channels_new(void)
{
        return g_hash_table_new_full(g_str_hash, g_str_equal, NULL, channel_free);
}
