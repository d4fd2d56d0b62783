/* HTTP front of the manager. libsoup parses HTTP; we own the listening socket so that the
 * number of open connections is bounded and a failed accept() (EMFILE, ENFILE, ENOMEM) pauses
 * accepting briefly instead of stopping the listener for good, as SoupServer's own listener
 * does in libsoup 3.2. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

#define ACCEPT_RETRY_MS 100

/* A SoupServer and the connections handed to it. See "generations" below. */
typedef struct {
        HttpServer *h;
        SoupServer *soup;
        guint live;       /* connections handed to it and not gone yet */
        guint reaped;     /* connections the reaper closed (soup keeps their objects) */
        gboolean retired; /* takes no new connections; freed when live reaches 0 */
} Generation;

typedef struct {
        GSocket *socket; /* lives as long as the stream */
        Generation *gen;
} Conn;

struct _HttpServer {
        Manager *mgr;
        Generation *current;
        GSocket *listener; /* the public TCP port: our own accept loop */
        GSocket *local;    /* state_dir/api.sock: soup's own listener */
        GSource *accept_source;
        guint retry_id;
        guint reap_id;
        GTlsCertificate *cert;
        gboolean tls;
        guint active;
        GHashTable *streams; /* open connections, weakly referenced -> Conn */
        gint64 last_limit_log;
};

/* ---- replies ----------------------------------------------------------------------------- */

static void api_request_free(ApiRequest *req)
{
        for (guint i = 0; i < API_MAX_PARAMS; i++)
                g_free(req->params[i]);
        if (req->query)
                g_hash_table_unref(req->query);
        if (req->body)
                json_object_unref(req->body);
        token_info_clear(&req->caller);
        g_free(req->token_hash);
        g_free(req->address);
        g_object_unref(req->msg);
        g_free(req);
}

static void finish(ApiRequest *req)
{
        if (req->paused)
                soup_server_message_unpause(req->msg);
        api_request_free(req);
}

/* Status and a JSON body (taken; NULL for none), never cached by clients or proxies. */
static void set_body(SoupServerMessage *msg, guint status, char *text, gsize len)
{
        soup_server_message_set_status(msg, status, NULL);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                     "no-store");
        if (text)
                soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, text,
                                                 len);
}

static void set_json(SoupServerMessage *msg, guint status, JsonNode *body)
{
        g_autoptr(JsonGenerator) gen = json_generator_new();
        gsize len = 0;
        char *text;

        json_generator_set_root(gen, body);
        text = json_generator_to_data(gen, &len);
        set_body(msg, status, text, len);
}

static void set_error(SoupServerMessage *msg, const GError *error)
{
        int code = error->domain == ATRIUM_ERROR ? error->code : ATRIUM_ERROR_INTERNAL;
        g_autoptr(JsonNode) body = json_error_body(error);

        if (code == ATRIUM_ERROR_INTERNAL)
                g_warning("internal error: %s", error->message);
        set_json(msg, atrium_error_http_status(code), body);
        if (code == ATRIUM_ERROR_UNAUTHORIZED)
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "WWW-Authenticate", "Bearer realm=\"atrium\"");
}

void api_reply_json(ApiRequest *req, guint status, JsonNode *body)
{
        set_json(req->msg, status, body);
        finish(req);
}

void api_reply_object(ApiRequest *req, guint status, JsonObject *obj)
{
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

        json_node_take_object(node, obj);
        api_reply_json(req, status, node);
}

void api_reply_text(ApiRequest *req, guint status, GString *json)
{
        gsize len = json->len;

        set_body(req->msg, status, g_string_free(json, FALSE), len);
        finish(req);
}

void api_reply_error(ApiRequest *req, const GError *error)
{
        set_error(req->msg, error);
        finish(req);
}

void api_reply_empty(ApiRequest *req, guint status)
{
        set_body(req->msg, status, NULL, 0);
        finish(req);
}

void api_pause(ApiRequest *req)
{
        if (!req->paused) {
                soup_server_message_pause(req->msg);
                req->paused = TRUE;
        }
}

typedef struct {
        ApiWork work;
        ApiDone done;
        gpointer data;
        GDestroyNotify free_data;
} ThreadJob;

static void thread_job_free(ThreadJob *job)
{
        if (job->free_data)
                job->free_data(job->data);
        g_free(job);
}

static void thread_func(GTask *task, gpointer source, gpointer task_data, GCancellable *c)
{
        ThreadJob *job = task_data;
        GError *error = NULL;
        gpointer result = job->work(job->data, &error);

        if (error)
                g_task_return_error(task, error);
        else
                g_task_return_pointer(task, result, NULL);
}

static void thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
        ApiRequest *req = user_data;
        ThreadJob *job = g_task_get_task_data(G_TASK(res));
        GError *error = NULL;
        gpointer result = g_task_propagate_pointer(G_TASK(res), &error);

        job->done(req, result, error, job->data);
        g_clear_error(&error);
}

void api_run_in_thread(ApiRequest *req, ApiWork work, ApiDone done, gpointer data,
                       GDestroyNotify free_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, NULL, thread_done, req);
        ThreadJob *job = g_new0(ThreadJob, 1);

        job->work = work;
        job->done = done;
        job->data = data;
        job->free_data = free_data;
        g_task_set_task_data(task, job, (GDestroyNotify)thread_job_free);
        api_pause(req);
        g_task_run_in_thread(task, thread_func);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static gboolean authenticate(ApiRequest *req, GError **error)
{
        const char *h = soup_message_headers_get_one(
                soup_server_message_get_request_headers(req->msg), "Authorization");
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;

        if (!h || !g_str_has_prefix(h, "Bearer ") || !h[7]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this request needs a login: send 'Authorization: Bearer TOKEN' "
                            "(POST /api/v1/auth/login gives one)");
                return FALSE;
        }
        req->token_hash = token_hash(h + 7);
        if (!store_token_lookup(req->mgr->store, req->token_hash, now, &req->caller, error))
                return FALSE;
        req->actor.name = req->caller.user_name;
        req->actor.user_id = req->caller.user_id;
        if (req->caller.role < req->route->role) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "this needs the %s role; user '%s' has the %s role",
                            role_to_string(req->route->role), req->caller.user_name,
                            role_to_string(req->caller.role));
                return FALSE;
        }
        return TRUE;
}

static gboolean read_body(ApiRequest *req, GError **error)
{
        SoupMessageHeaders *hdrs = soup_server_message_get_request_headers(req->msg);
        SoupMessageBody *body = soup_server_message_get_request_body(req->msg);
        g_autoptr(GBytes) bytes = NULL;
        gsize limit = MIN(req->route->body_limit, (gsize)MCFG_INT(req->mgr, "max_body_bytes"));
        const char *ctype = soup_message_headers_get_content_type(hdrs, NULL);
        JsonNode *root;
        gsize len;
        const char *data;

        if (req->route->body_limit == 0)
                return TRUE;
        bytes = soup_message_body_flatten(body);
        data = g_bytes_get_data(bytes, &len);
        if (len > limit) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                            "the request body is %zu bytes; this route accepts at most %zu", len,
                            limit);
                return FALSE;
        }
        if (!ctype || g_ascii_strcasecmp(ctype, "application/json") != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNSUPPORTED_MEDIA,
                            "the request body must be sent as Content-Type: application/json");
                return FALSE;
        }
        root = json_parse_body(data, len, MCFG_INT(req->mgr, "max_json_depth"), error);
        if (!root)
                return FALSE;
        req->body = json_object_ref(json_node_get_object(root));
        json_node_unref(root);
        return TRUE;
}

static void server_callback(SoupServer *server, SoupServerMessage *msg, const char *path,
                            GHashTable *query, gpointer user_data)
{
        HttpServer *h = user_data;
        gsize n;
        const Route *routes = routes_all(&n);
        ApiRequest *req = g_new0(ApiRequest, 1);
        g_autoptr(GError) error = NULL;
        gboolean path_known;

        req->mgr = h->mgr;
        req->msg = g_object_ref(msg);
        req->address = g_strdup(soup_server_message_get_remote_host(msg));
        req->actor.name = "anonymous";
        req->actor.address = req->address ? req->address : "";
        if (query)
                req->query = g_hash_table_ref(query);
        req->route = router_match(routes, n, soup_server_message_get_method(msg), path, req->params,
                                  &path_known);
        if (!req->route) {
                if (path_known)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_METHOD_NOT_ALLOWED,
                                    "%s is not allowed on this route",
                                    soup_server_message_get_method(msg));
                else {
                        g_autofree char *q = util_quote(path);
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                                    "there is no API route '%s'", q);
                }
                api_reply_error(req, error);
                return;
        }
        if ((req->route->role != ROLE_NONE && !authenticate(req, &error)) ||
            !read_body(req, &error)) {
                api_reply_error(req, error);
                return;
        }
        req->route->handler(req);
}

/* Early handler: runs once the headers are read, before the body. Refuses an oversized body
 * as soon as Content-Length says so, without reading it. */
static void early_callback(SoupServer *server, SoupServerMessage *msg, const char *path,
                           GHashTable *query, gpointer user_data)
{
        HttpServer *h = user_data;
        goffset len = soup_message_headers_get_content_length(
                soup_server_message_get_request_headers(msg));
        gint64 max = MCFG_INT(h->mgr, "max_body_bytes");

        if (len > max) {
                g_autoptr(GError) error =
                        g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                                    "the request body is %" G_GOFFSET_FORMAT
                                    " bytes; at most %" G_GINT64_FORMAT " are accepted",
                                    len, max);
                set_error(msg, error);
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Connection", "close");
        }
}

/* ---- connections -------------------------------------------------------------------------
 *
 * We accept on the public port ourselves, so that the number of open connections is bounded
 * and a failed accept() (EMFILE, ENFILE, ENOMEM) only pauses accepting, where SoupServer's own
 * listener stops for good (libsoup 3.2). Connections are handed to a SoupServer with
 * soup_server_accept_iostream(). Two more libsoup 3.2 behaviours shape this code:
 *
 * 1. It keeps a connection alive after a response only while the SoupServer has a listener of
 *    its own (soup-server.c, request_finished); without one every request paid a TLS
 *    handshake (~90 requests/s). So each SoupServer also listens on state_dir/api.sock, a
 *    UNIX socket (0600) that serves the same API, with the same authentication, to local root.
 *
 * 2. When a keep-alive client closes its connection between two requests, soup reads the end
 *    of file and then abandons the connection: the socket stays in CLOSE-WAIT and its objects
 *    (~24 KiB with TLS) stay in the SoupServer's client list forever. So once a second a
 *    single poll() over every open connection finds those whose peer hung up (POLLRDHUP; HTTP
 *    clients never half-close) and closes them, which frees the descriptor and the connection
 *    slot. To free soup's objects too, a SoupServer that has accumulated GENERATION_REAPS of
 *    them is retired: new connections go to a fresh SoupServer, and the old one is disposed of
 *    once its last connection is gone. Memory stays bounded whatever clients do.
 */
#define ACCEPT_BATCH 64
#define REAP_INTERVAL_MS 1000
#define GENERATION_REAPS 256

static gboolean accept_ready(GSocket *sock, GIOCondition cond, gpointer user_data);

static gboolean generation_dispose(gpointer data)
{
        Generation *gen = data;

        soup_server_disconnect(gen->soup);
        g_object_unref(gen->soup);
        g_free(gen);
        return G_SOURCE_REMOVE;
}

static Generation *generation_new(HttpServer *h, GError **error)
{
        Generation *gen = g_new0(Generation, 1);
        g_autoptr(GSocket) local = NULL;
        int fd;

        gen->h = h;
        gen->soup = soup_server_new("server-header", "atrium/" ATRIUM_VERSION, NULL);
        soup_server_add_handler(gen->soup, NULL, server_callback, h, NULL);
        soup_server_add_early_handler(gen->soup, NULL, early_callback, h, NULL);
        /* Its own descriptor of the shared api.sock, so disposing of it closes only that. */
        fd = dup(g_socket_get_fd(h->local));
        if (fd < 0 || !(local = g_socket_new_from_fd(fd, error)) ||
            !soup_server_listen_socket(gen->soup, local, 0, error)) {
                if (fd >= 0 && !local)
                        close(fd);
                if (error && !*error)
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                    "cannot share the local API socket: %s", g_strerror(errno));
                generation_dispose(gen);
                return NULL;
        }
        return gen;
}

/* A connection is over: finalized by soup, or closed by the reaper (reaped). */
static void conn_end(HttpServer *h, GObject *stream, gboolean reaped)
{
        Conn *c = g_hash_table_lookup(h->streams, stream);
        Generation *gen = c->gen;

        g_hash_table_remove(h->streams, stream);
        h->active--;
        gen->live--;
        if (reaped)
                gen->reaped++;
        if (gen == h->current && gen->reaped >= GENERATION_REAPS) {
                g_autoptr(GError) error = NULL;
                Generation *next = generation_new(h, &error);
                if (next) {
                        gen->retired = TRUE;
                        h->current = next;
                } else {
                        g_warning("cannot start a new HTTP server generation: %s", error->message);
                }
        }
        /* Not from inside soup's own call chain that may be finalizing this very stream. */
        if (gen->retired && gen->live == 0)
                g_idle_add(generation_dispose, gen);
}

static void connection_gone(gpointer data, GObject *where_the_object_was)
{
        conn_end(data, where_the_object_was, FALSE);
}

static gboolean reap_closed(gpointer data)
{
        HttpServer *h = data;
        guint n = g_hash_table_size(h->streams), i = 0;
        g_autofree struct pollfd *fds = NULL;
        g_autofree GIOStream **streams = NULL;
        GHashTableIter it;
        gpointer stream, value;

        if (n == 0)
                return G_SOURCE_CONTINUE;
        fds = g_new0(struct pollfd, n);
        streams = g_new0(GIOStream *, n);
        g_hash_table_iter_init(&it, h->streams);
        while (g_hash_table_iter_next(&it, &stream, &value)) {
                fds[i].fd = g_socket_get_fd(((Conn *)value)->socket);
                fds[i].events = POLLRDHUP;
                streams[i++] = stream;
        }
        if (poll(fds, n, 0) <= 0)
                return G_SOURCE_CONTINUE;
        for (i = 0; i < n; i++) {
                if (!(fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
                        continue;
                g_object_weak_unref(G_OBJECT(streams[i]), connection_gone, h);
                g_io_stream_close(streams[i], NULL, NULL);
                conn_end(h, G_OBJECT(streams[i]), TRUE);
        }
        return G_SOURCE_CONTINUE;
}

static gboolean resume_accept(gpointer data)
{
        HttpServer *h = data;

        h->retry_id = 0;
        h->accept_source = g_socket_create_source(h->listener, G_IO_IN, NULL);
        g_source_set_callback(h->accept_source, G_SOURCE_FUNC(accept_ready), h, NULL);
        g_source_attach(h->accept_source, NULL);
        return G_SOURCE_REMOVE;
}

static void hand_over(HttpServer *h, GSocket *client)
{
        g_autoptr(GSocketConnection) conn = g_socket_connection_factory_create_connection(client);
        g_autoptr(GSocketAddress) local = g_socket_get_local_address(client, NULL);
        g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(client, NULL);
        g_autoptr(GIOStream) stream = NULL;
        g_autoptr(GError) error = NULL;
        Conn *c;

        g_socket_set_option(client, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
        if (h->tls) {
                /* No database: there are no client certificates to verify, and with the default
                 * one glib-networking copies the whole system CA store into every connection
                 * (~10 ms and ~3 MiB each). Clients may close without a TLS close_notify. */
                stream = g_initable_new(
                        g_tls_backend_get_server_connection_type(g_tls_backend_get_default()), NULL,
                        &error, "base-io-stream", conn, "certificate", h->cert, "database", NULL,
                        "require-close-notify", FALSE, NULL);
                if (!stream) {
                        g_warning("cannot start TLS on a connection: %s", error->message);
                        return;
                }
        } else {
                stream = G_IO_STREAM(g_object_ref(conn));
        }
        if (!soup_server_accept_iostream(h->current->soup, stream, local, remote, &error)) {
                g_warning("cannot serve a connection: %s", error->message);
                return;
        }
        c = g_new0(Conn, 1);
        c->socket = client;
        c->gen = h->current;
        c->gen->live++;
        h->active++;
        g_hash_table_insert(h->streams, stream, c);
        g_object_weak_ref(G_OBJECT(stream), connection_gone, h);
}

static gboolean accept_ready(GSocket *sock, GIOCondition cond, gpointer user_data)
{
        HttpServer *h = user_data;

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GSocket) client = g_socket_accept(sock, NULL, &error);
                gint64 now;

                if (!client) {
                        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                                return G_SOURCE_CONTINUE;
                        /* Out of descriptors or memory: stop for a moment, then go on. */
                        g_warning("accepting an API connection failed: %s; retrying in %d ms",
                                  error->message, ACCEPT_RETRY_MS);
                        g_clear_pointer(&h->accept_source, g_source_unref);
                        h->retry_id = g_timeout_add(ACCEPT_RETRY_MS, resume_accept, h);
                        return G_SOURCE_REMOVE;
                }
                if (h->active >= (guint)MCFG_INT(h->mgr, "max_connections")) {
                        now = g_get_monotonic_time();
                        if (now - h->last_limit_log > 10 * G_USEC_PER_SEC) {
                                g_warning("%u API connections open, the most allowed "
                                          "(manager.max_connections): closing new ones",
                                          h->active);
                                h->last_limit_log = now;
                        }
                        g_socket_close(client, NULL);
                        continue;
                }
                g_socket_set_blocking(client, FALSE);
                hand_over(h, client);
        }
        return G_SOURCE_CONTINUE;
}

HttpServer *http_server_new(Manager *mgr, GError **error)
{
        HttpServer *h = g_new0(HttpServer, 1);

        h->mgr = mgr;
        h->streams = g_hash_table_new_full(NULL, NULL, NULL, g_free);
        return h;
}

static gboolean listen_local(HttpServer *h, const char *path, GError **error)
{
        g_autoptr(GSocketAddress) addr = NULL;

        h->local = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, error);
        if (!h->local)
                return FALSE;
        g_unlink(path);
        addr = g_unix_socket_address_new(path);
        if (!g_socket_bind(h->local, addr, FALSE, error) || !g_socket_listen(h->local, error) ||
            g_chmod(path, 0600) < 0) {
                g_prefix_error(error, "cannot listen on the local socket '%s': ", path);
                return FALSE;
        }
        return TRUE;
}

static GSocket *listen_tcp(GInetAddress *addr, guint16 port, GError **error)
{
        g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, port);
        g_autoptr(GSocket) sock = g_socket_new(g_inet_address_get_family(addr),
                                               G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

        if (!sock)
                return NULL;
        g_socket_set_option(sock, SOL_SOCKET, SO_REUSEADDR, 1, NULL);
        g_socket_set_listen_backlog(sock, 511);
        if (!g_socket_bind(sock, sa, TRUE, error) || !g_socket_listen(sock, error))
                return NULL;
        g_socket_set_blocking(sock, FALSE);
        return g_steal_pointer(&sock);
}

gboolean http_server_listen(HttpServer *h, const char *listen, const char *local_socket,
                            gboolean tls, GTlsCertificate *cert, char **url, GError **error)
{
        g_autofree char *host = NULL, *shown = NULL;
        g_autoptr(GInetAddress) addr = NULL;
        g_autoptr(GSocketAddress) bound = NULL;
        guint16 port;
        gboolean v6;

        if (!util_split_hostport(listen, &host, &port, error))
                return FALSE;
        addr = g_str_equal(host, "localhost") ? g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4)
                                              : g_inet_address_new_from_string(host);
        if (!addr) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "manager.listen: '%s' is not an IP address", host);
                return FALSE;
        }
        v6 = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6;
        h->listener = listen_tcp(addr, port, error);
        if (!h->listener || !(bound = g_socket_get_local_address(h->listener, error))) {
                g_prefix_error(error, "cannot listen on %s: ", listen);
                return FALSE;
        }
        h->tls = tls;
        if (cert)
                h->cert = g_object_ref(cert);
        if (!listen_local(h, local_socket, error) || !(h->current = generation_new(h, error)))
                return FALSE;
        resume_accept(h);
        h->reap_id = g_timeout_add(REAP_INTERVAL_MS, reap_closed, h);
        shown = g_inet_address_get_is_any(addr) ? g_strdup(v6 ? "::1" : "127.0.0.1")
                                                : g_inet_address_to_string(addr);
        *url = g_strdup_printf("%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", shown,
                               v6 ? "]" : "",
                               g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        return TRUE;
}

guint http_server_connections(HttpServer *h)
{
        return h->active;
}

void http_server_free(HttpServer *h)
{
        GHashTableIter it;
        gpointer stream, value;
        g_autoptr(GHashTable) gens = g_hash_table_new(NULL, NULL);

        if (!h)
                return;
        if (h->accept_source) {
                g_source_destroy(h->accept_source);
                g_source_unref(h->accept_source);
        }
        if (h->retry_id)
                g_source_remove(h->retry_id);
        if (h->reap_id)
                g_source_remove(h->reap_id);
        if (h->listener)
                g_socket_close(h->listener, NULL);
        g_clear_object(&h->listener);
        /* Every generation still holding connections, and the current one. */
        g_hash_table_iter_init(&it, h->streams);
        while (g_hash_table_iter_next(&it, &stream, &value)) {
                g_object_weak_unref(stream, connection_gone, h);
                g_hash_table_add(gens, ((Conn *)value)->gen);
        }
        g_hash_table_unref(h->streams);
        if (h->current)
                g_hash_table_add(gens, h->current);
        g_hash_table_iter_init(&it, gens);
        while (g_hash_table_iter_next(&it, &value, NULL))
                generation_dispose(value);
        if (h->local)
                g_socket_close(h->local, NULL);
        g_clear_object(&h->local);
        g_clear_object(&h->cert);
        g_free(h);
}
