/* GET /api/v1/stream: server-sent events for live views (the web dashboard and portal).
 *
 * Every half second the stream compares the process's per-table change counts
 * (store_change_counts) with the last ones it sent and, when some moved, sends
 *   event: change    data: {"tables":["desktops","hosts"]}
 * Operators also get the new audit events themselves:
 *   event: events    data: [{...}, ...]   (id: the newest one's id)
 * A comment every 15 s keeps proxies and the gateway from closing an idle stream; the login
 * is checked again every 30 s and an expired or revoked token ends the stream with
 *   event: expired
 * The stream runs in the worker thread that took the request, on its main context, with that
 * worker's own store handle: no thread is blocked and no lock is shared. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

#define STREAM_TABLES 32
#define TICK_MS 500
#define KEEPALIVE_TICKS 30 /* 15 s */
#define RECHECK_TICKS 60   /* 30 s */
#define EVENTS_PER_SEND 100

typedef struct {
        Store *store;
        SoupServerMessage *msg;
        char *token_hash;
        gboolean operator;
        gsize counts[STREAM_TABLES];
        gint64 last_event;
        guint ticks, quiet;
        GSource *timer;
        gulong finished_id;
        gboolean done;
} Stream;

/* Tables a plain user's portal follows; operators get every table. */
static const char *const user_tables[] = {"desktops", "sessions", "pools", NULL};

static void stream_free(Stream *s)
{
        if (s->timer) {
                g_source_destroy(s->timer);
                g_source_unref(s->timer);
        }
        if (s->finished_id)
                g_signal_handler_disconnect(s->msg, s->finished_id);
        g_object_unref(s->msg);
        g_free(s->token_hash);
        g_free(s);
}

static void send_text(Stream *s, const char *text, gsize len)
{
        soup_message_body_append(soup_server_message_get_response_body(s->msg), SOUP_MEMORY_COPY,
                                 text, len);
        soup_server_message_unpause(s->msg);
        s->quiet = 0;
}

static void send_event(Stream *s, const char *name, const char *id, const char *data)
{
        g_autoptr(GString) out = g_string_new(NULL);

        g_string_append_printf(out, "event: %s\n", name);
        if (id)
                g_string_append_printf(out, "id: %s\n", id);
        g_string_append_printf(out, "data: %s\n\n", data);
        send_text(s, out->str, out->len);
}

/* Ends the stream: the body is complete, soup sends the last chunk and emits "finished". */
static void stream_end(Stream *s)
{
        if (s->done)
                return;
        s->done = TRUE;
        soup_message_body_complete(soup_server_message_get_response_body(s->msg));
        soup_server_message_unpause(s->msg);
}

static gboolean table_followed(const Stream *s, const char *table)
{
        return s->operator|| g_strv_contains((const char *const *)user_tables, table);
}

static void send_changes(Stream *s)
{
        gsize n, now[STREAM_TABLES];
        const Resource *const *all = resources_all(&n);
        g_autoptr(GString) data = g_string_new("{\"tables\":[");
        gboolean any = FALSE;

        n = MIN(n, STREAM_TABLES);
        store_change_counts(now, n);
        for (gsize i = 0; i < n; i++) {
                if (now[i] == s->counts[i])
                        continue;
                s->counts[i] = now[i];
                if (!table_followed(s, all[i]->table))
                        continue;
                if (any)
                        g_string_append_c(data, ',');
                json_append_string(data, all[i]->table);
                any = TRUE;
        }
        g_string_append(data, "]}");
        if (any)
                send_event(s, "change", NULL, data->str);
}

static void send_new_events(Stream *s)
{
        ListQuery q = {.after_id = s->last_event, .limit = EVENTS_PER_SEND};
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *id = NULL;
        JsonArray *rows;
        gint64 next = 0;
        guint len;

        if (!store_list_json(s->store, resource_by_kind("event"), &q, text, &next, &error)) {
                g_warning("event stream: %s", error->message);
                return;
        }
        node = json_from_text(text->str, text->len);
        rows = node && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
        if (!rows || (len = json_array_get_length(rows)) == 0)
                return;
        s->last_event = row_int(json_array_get_object_element(rows, len - 1), "id");
        id = g_strdup_printf("%" G_GINT64_FORMAT, s->last_event);
        send_event(s, "events", id, text->str);
}

static gboolean token_still_good(Stream *s)
{
        TokenInfo info = {0};
        g_autoptr(GError) error = NULL;
        gboolean ok = store_token_lookup(s->store, s->token_hash,
                                         g_get_real_time() / G_USEC_PER_SEC, &info, &error);

        token_info_clear(&info);
        return ok;
}

static gboolean tick(gpointer data)
{
        Stream *s = data;

        if (s->done)
                return G_SOURCE_CONTINUE;
        s->ticks++;
        if (s->ticks % RECHECK_TICKS == 0 && !token_still_good(s)) {
                send_event(s, "expired", NULL,
                           "{\"message\":\"the login has expired or was revoked\"}");
                stream_end(s);
                return G_SOURCE_CONTINUE;
        }
        send_changes(s);
        if (s->operator)
                send_new_events(s);
        if (++s->quiet >= KEEPALIVE_TICKS)
                send_text(s, ": keepalive\n\n", strlen(": keepalive\n\n"));
        return G_SOURCE_CONTINUE;
}

static void finished(SoupServerMessage *msg, gpointer data)
{
        Stream *s = data;

        g_signal_handler_disconnect(msg, s->finished_id);
        s->finished_id = 0;
        stream_free(s);
}

/* The newest event's id: the stream sends what comes after it. */
static gint64 newest_event(Store *store)
{
        ListQuery q = {.limit = 1, .newest_first = TRUE};
        g_autoptr(JsonArray) rows = NULL;
        gint64 next = 0;

        rows = store_list(store, resource_by_kind("event"), &q, &next, NULL);
        if (!rows || json_array_get_length(rows) == 0)
                return 0;
        return row_int(json_array_get_object_element(rows, 0), "id");
}

void api_stream(ApiRequest *req)
{
        Stream *s = g_new0(Stream, 1);
        SoupMessageHeaders *hdrs = soup_server_message_get_response_headers(req->msg);
        const char *after = req->query ? g_hash_table_lookup(req->query, "after") : NULL;
        gint64 newest;
        gsize n;
        g_autofree char *hello = NULL;

        resources_all(&n);
        s->store = req->store;
        s->token_hash = g_strdup(req->token_hash);
        s->operator= req->caller.role >= ROLE_OPERATOR;
        store_change_counts(s->counts, MIN(n, STREAM_TABLES));
        newest = s->operator? newest_event(req->store) : 0;
        s->last_event = newest;
        if (after && s->operator) {
                gint64 a;
                if (!g_ascii_string_to_signed(after, 10, 0, G_MAXINT64, &a, NULL)) {
                        g_autoptr(GError) error = NULL;
                        g_autofree char *quoted = util_quote(after);
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "after must be an event id, not '%s'", quoted);
                        g_free(s->token_hash);
                        g_free(s);
                        api_reply_error(req, error);
                        return;
                }
                /* At most one batch back: a client away for longer reloads its view. */
                s->last_event = CLAMP(a, MAX(newest - EVENTS_PER_SEND, 0), newest);
        }
        soup_server_message_set_status(req->msg, 200, NULL);
        soup_message_headers_set_content_type(hdrs, "text/event-stream", NULL);
        soup_message_headers_replace(hdrs, "Cache-Control", "no-store");
        soup_message_headers_replace(hdrs, "X-Accel-Buffering", "no");
        soup_message_headers_set_encoding(hdrs, SOUP_ENCODING_CHUNKED);
        s->msg = api_detach(req);
        s->finished_id = g_signal_connect(s->msg, "finished", G_CALLBACK(finished), s);
        hello = g_strdup_printf("{\"operator\":%s,\"last_event\":%" G_GINT64_FORMAT "}",
                                s->operator? "true" : "false", s->last_event);
        send_text(s, "retry: 3000\n", strlen("retry: 3000\n"));
        send_event(s, "hello", NULL, hello);
        s->timer = g_timeout_source_new(TICK_MS);
        g_source_set_callback(s->timer, tick, s, NULL);
        g_source_attach(s->timer, g_main_context_get_thread_default());
}
