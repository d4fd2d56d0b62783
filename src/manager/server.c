/* The manager's connections: one accept loop on the public port, and HTTP worker threads that
 * serve the connections, each with its own GLib loop, SoupServer and store handle.
 *
 * We accept on the public port ourselves, in the main loop, so that the number of open
 * connections is bounded and a failed accept() (EMFILE, ENFILE, ENOMEM) only pauses accepting,
 * where SoupServer's own listener stops for good (libsoup 3.2). Each accepted socket goes to a
 * worker, round robin; the worker wraps it in TLS and hands it to its SoupServer with
 * soup_server_accept_iostream(). One GLib loop per core, because one loop serving every
 * connection topped out at one core (docs/benchmarks.md).
 *
 * Two more libsoup 3.2 behaviours shape this code:
 *
 * 1. It keeps a connection alive after a response only while the SoupServer has a listener of
 *    its own (soup-server.c, request_finished); without one every request paid a TLS
 *    handshake (~90 requests/s). So each SoupServer also listens on state_dir/api.sock, a
 *    UNIX socket (0600) that serves the same API, with the same authentication, to local root.
 *
 * 2. When a keep-alive client closes its connection between two requests, soup reads the end
 *    of file and then abandons the connection: the socket stays in CLOSE-WAIT and its objects
 *    (~24 KiB with TLS) stay in the SoupServer's client list forever. So once a second each
 *    worker poll()s its open connections for those whose peer hung up (POLLRDHUP; HTTP clients
 *    never half-close) and closes them, which frees the descriptor and the connection slot. To
 *    free soup's objects too, a SoupServer that has accumulated GENERATION_REAPS of them is
 *    retired: new connections go to a fresh SoupServer, and the old one is disposed of once its
 *    last connection is gone. Memory stays bounded whatever clients do.
 */
#define G_LOG_DOMAIN "api"

#include "manager/httpserver.h"
#include "common/error.h"
#include "common/util.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_MS 100
#define REAP_INTERVAL_MS 1000
#define GENERATION_REAPS 256

typedef struct _Worker Worker;

/* A SoupServer and the connections handed to it. */
typedef struct {
        Worker *w;
        SoupServer *soup;
        guint live;       /* connections handed to it and not gone yet */
        guint reaped;     /* connections the reaper closed (soup keeps their objects) */
        gboolean retired; /* takes no new connections; disposed of when live reaches 0 */
} Generation;

typedef struct {
        GSocket *socket; /* lives as long as the stream */
        Generation *gen;
} Conn;

struct _Worker {
        ServeContext sc; /* first: the handlers' user_data */
        HttpServer *h;
        guint index;
        GThread *thread;
        GMainContext *ctx;
        GMainLoop *loop;
        Generation *current;
        GHashTable *streams; /* open connections, weakly referenced -> Conn */
        GSource *reaper;
};

typedef struct {
        HttpInstallFunc install;
        gpointer data;
} Installer;

struct _HttpServer {
        Manager *mgr;
        GArray *installers; /* Installer: what every SoupServer serves */
        GSocket *listener;  /* the public TCP port */
        GSocket *local;     /* state_dir/api.sock */
        GSource *accept_source;
        guint retry_id;
        GTlsCertificate *cert;
        gboolean tls;
        gint active; /* open connections over all workers (atomic) */
        gint64 last_limit_log;
        Worker **workers;
        guint n_workers;
        guint next_worker;
};

/* ---- generations (worker thread) ------------------------------------------------------- */

static void generation_dispose(Generation *gen)
{
        soup_server_disconnect(gen->soup);
        g_object_unref(gen->soup);
        g_free(gen);
}

static gboolean generation_dispose_cb(gpointer data)
{
        generation_dispose(data);
        return G_SOURCE_REMOVE;
}

/* Runs with w->ctx as the thread-default context: soup attaches its sources there. */
static Generation *generation_new(Worker *w, GError **error)
{
        Generation *gen = g_new0(Generation, 1);
        g_autoptr(GSocket) local = NULL;
        int fd;

        gen->w = w;
        gen->soup = soup_server_new("server-header", "atrium/" ATRIUM_VERSION, NULL);
        for (guint i = 0; i < w->h->installers->len; i++) {
                Installer *in = &g_array_index(w->h->installers, Installer, i);
                in->install(gen->soup, &w->sc, in->data);
        }
        /* Its own descriptor of the shared api.sock, so disposing of it closes only that. */
        fd = dup(g_socket_get_fd(w->h->local));
        if (fd < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot share the local API socket: %s", g_strerror(errno));
                generation_dispose(gen);
                return NULL;
        }
        local = g_socket_new_from_fd(fd, error);
        if (!local)
                close(fd);
        else /* every worker wakes for a connection, one gets it: the others must not wait */
                g_socket_set_blocking(local, FALSE);
        if (!local || !soup_server_listen_socket(gen->soup, local, 0, error)) {
                generation_dispose(gen);
                return NULL;
        }
        return gen;
}

/* ---- connections (worker thread) ------------------------------------------------------- */

/* A connection is over: finalized by soup, or closed by the reaper (reaped). */
static void conn_end(Worker *w, GObject *stream, gboolean reaped)
{
        Conn *c = g_hash_table_lookup(w->streams, stream);
        Generation *gen = c->gen;

        g_hash_table_remove(w->streams, stream);
        g_atomic_int_add(&w->h->active, -1);
        gen->live--;
        if (reaped)
                gen->reaped++;
        if (gen == w->current && gen->reaped >= GENERATION_REAPS) {
                g_autoptr(GError) error = NULL;
                Generation *next = generation_new(w, &error);
                if (next) {
                        gen->retired = TRUE;
                        w->current = next;
                        g_info("HTTP worker %u: new SoupServer after %u abandoned keep-alive "
                               "connections; the old one goes when its last connection ends",
                               w->index, gen->reaped);
                } else {
                        g_warning("cannot start a new HTTP server generation: %s", error->message);
                }
        }
        /* Not from inside soup's own call chain that may be finalizing this very stream. */
        if (gen->retired && gen->live == 0) {
                GSource *idle = g_idle_source_new();
                g_source_set_callback(idle, generation_dispose_cb, gen, NULL);
                g_source_attach(idle, w->ctx);
                g_source_unref(idle);
        }
}

static void connection_gone(gpointer data, GObject *where_the_object_was)
{
        conn_end(data, where_the_object_was, FALSE);
}

static gboolean reap_closed(gpointer data)
{
        Worker *w = data;
        guint n = g_hash_table_size(w->streams), i = 0;
        g_autofree struct pollfd *fds = NULL;
        g_autofree GIOStream **streams = NULL;
        GHashTableIter it;
        gpointer stream, value;

        if (n == 0)
                return G_SOURCE_CONTINUE;
        fds = g_new0(struct pollfd, n);
        streams = g_new0(GIOStream *, n);
        g_hash_table_iter_init(&it, w->streams);
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
                /* A TLS handshake still running (the peer hung up in the middle of it) must
                 * not have its socket closed under it: GLib then made a source for the closed
                 * socket and aborted ("closure cannot be set on GSource without
                 * closure_callback"). Shutting the socket down makes the handshake fail, and
                 * soup lets go of the connection itself. */
                if (G_IS_TLS_CONNECTION(streams[i]) &&
                    g_tls_connection_get_protocol_version(G_TLS_CONNECTION(streams[i])) ==
                            G_TLS_PROTOCOL_VERSION_UNKNOWN) {
                        g_socket_shutdown(
                                ((Conn *)g_hash_table_lookup(w->streams, streams[i]))->socket, TRUE,
                                TRUE, NULL);
                        continue;
                }
                g_object_weak_unref(G_OBJECT(streams[i]), connection_gone, w);
                g_io_stream_close(streams[i], NULL, NULL);
                conn_end(w, G_OBJECT(streams[i]), TRUE);
        }
        return G_SOURCE_CONTINUE;
}

static GIOStream *wrap_tls(HttpServer *h, GSocketConnection *conn, GError **error)
{
        /* No database: there are no client certificates to verify, and with the default one
         * glib-networking copies the whole system CA store into every connection (~10 ms and
         * ~3 MiB each). Clients may close without a TLS close_notify. */
        return g_initable_new(g_tls_backend_get_server_connection_type(g_tls_backend_get_default()),
                              NULL, error, "base-io-stream", conn, "certificate", h->cert,
                              "database", NULL, "require-close-notify", FALSE, NULL);
}

typedef struct {
        Worker *w;
        GSocket *client;
} Handover;

/* In the worker thread: serve one accepted socket. */
static gboolean take_connection(gpointer data)
{
        Handover *ho = data;
        Worker *w = ho->w;
        g_autoptr(GSocketConnection) conn =
                g_socket_connection_factory_create_connection(ho->client);
        g_autoptr(GSocketAddress) local = g_socket_get_local_address(ho->client, NULL);
        g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(ho->client, NULL);
        g_autoptr(GIOStream) stream = NULL;
        g_autoptr(GError) error = NULL;
        Conn *c;

        stream = w->h->tls ? wrap_tls(w->h, conn, &error) : G_IO_STREAM(g_object_ref(conn));
        if (!stream || !local || !remote ||
            !soup_server_accept_iostream(w->current->soup, stream, local, remote, &error)) {
                g_warning("cannot serve a connection: %s",
                          error ? error->message : "the peer is already gone");
                g_atomic_int_add(&w->h->active, -1);
                return G_SOURCE_REMOVE;
        }
        c = g_new0(Conn, 1);
        c->socket = ho->client;
        c->gen = w->current;
        c->gen->live++;
        g_hash_table_insert(w->streams, stream, c);
        g_object_weak_ref(G_OBJECT(stream), connection_gone, w);
        return G_SOURCE_REMOVE;
}

static void handover_free(gpointer data)
{
        Handover *ho = data;
        g_object_unref(ho->client);
        g_free(ho);
}

/* ---- workers --------------------------------------------------------------------------- */

static gpointer worker_main(gpointer data)
{
        Worker *w = data;
        GHashTableIter it;
        gpointer stream, value;
        g_autoptr(GHashTable) gens = g_hash_table_new(NULL, NULL);

        g_main_context_push_thread_default(w->ctx);
        g_main_loop_run(w->loop);
        /* Stopping: drop every connection and SoupServer in the thread that owns them. */
        g_source_destroy(w->reaper);
        g_hash_table_iter_init(&it, w->streams);
        while (g_hash_table_iter_next(&it, &stream, &value)) {
                g_object_weak_unref(stream, connection_gone, w);
                g_hash_table_add(gens, ((Conn *)value)->gen);
        }
        g_hash_table_remove_all(w->streams);
        g_hash_table_add(gens, w->current);
        g_hash_table_iter_init(&it, gens);
        while (g_hash_table_iter_next(&it, &value, NULL))
                generation_dispose(value);
        while (g_main_context_iteration(w->ctx, FALSE))
                ; /* pending idle disposals */
        g_main_context_pop_thread_default(w->ctx);
        return NULL;
}

static void worker_free(Worker *w)
{
        if (!w)
                return;
        if (w->reaper)
                g_source_unref(w->reaper);
        g_hash_table_unref(w->streams);
        g_main_loop_unref(w->loop);
        g_main_context_unref(w->ctx);
        store_close(w->sc.store);
        g_free(w);
}

static Worker *worker_new(HttpServer *h, guint index, GError **error)
{
        Worker *w = g_new0(Worker, 1);
        g_autofree char *name = g_strdup_printf("http-%u", index);

        w->h = h;
        w->index = index;
        w->sc.mgr = h->mgr;
        w->streams = g_hash_table_new_full(NULL, NULL, NULL, g_free);
        w->ctx = g_main_context_new();
        w->loop = g_main_loop_new(w->ctx, FALSE);
        w->sc.store = store_open_peer(h->mgr->store, error);
        if (!w->sc.store) {
                worker_free(w);
                return NULL;
        }
        g_main_context_push_thread_default(w->ctx);
        w->current = generation_new(w, error);
        g_main_context_pop_thread_default(w->ctx);
        if (!w->current) {
                worker_free(w);
                return NULL;
        }
        w->reaper = g_timeout_source_new(REAP_INTERVAL_MS);
        g_source_set_callback(w->reaper, reap_closed, w, NULL);
        g_source_attach(w->reaper, w->ctx);
        w->thread = g_thread_new(name, worker_main, w);
        return w;
}

static gboolean quit_loop(gpointer data)
{
        g_main_loop_quit(data);
        return G_SOURCE_REMOVE;
}

/* ---- accepting (main thread) ----------------------------------------------------------- */

static gboolean accept_ready(GSocket *sock, GIOCondition cond, gpointer user_data);

static gboolean resume_accept(gpointer data)
{
        HttpServer *h = data;

        h->retry_id = 0;
        h->accept_source = g_socket_create_source(h->listener, G_IO_IN, NULL);
        g_source_set_callback(h->accept_source, G_SOURCE_FUNC(accept_ready), h, NULL);
        g_source_attach(h->accept_source, NULL);
        return G_SOURCE_REMOVE;
}

static void refuse_over_limit(HttpServer *h, GSocket *client)
{
        gint64 now = g_get_monotonic_time();

        if (now - h->last_limit_log > 10 * G_USEC_PER_SEC) {
                g_warning("%d API connections open, the most allowed (manager.max_connections): "
                          "closing new ones",
                          g_atomic_int_get(&h->active));
                h->last_limit_log = now;
        }
        g_socket_close(client, NULL);
}

static gboolean accept_ready(GSocket *sock, GIOCondition cond, gpointer user_data)
{
        HttpServer *h = user_data;

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GSocket) client = g_socket_accept(sock, NULL, &error);
                Handover *ho;

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
                if (g_atomic_int_get(&h->active) >= MCFG_INT(h->mgr, "max_connections")) {
                        refuse_over_limit(h, client);
                        continue;
                }
                g_socket_set_blocking(client, FALSE);
                g_socket_set_option(client, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
                g_atomic_int_inc(&h->active);
                ho = g_new0(Handover, 1);
                ho->w = h->workers[h->next_worker++ % h->n_workers];
                ho->client = g_steal_pointer(&client);
                g_main_context_invoke_full(ho->w->ctx, G_PRIORITY_DEFAULT, take_connection, ho,
                                           handover_free);
        }
        return G_SOURCE_CONTINUE;
}

/* ---- setup ----------------------------------------------------------------------------- */

HttpServer *http_server_new(Manager *mgr, GError **error)
{
        HttpServer *h = g_new0(HttpServer, 1);

        h->mgr = mgr;
        h->installers = g_array_new(FALSE, FALSE, sizeof(Installer));
        return h;
}

void http_server_add_handlers(HttpServer *h, HttpInstallFunc install, gpointer data)
{
        Installer in = {install, data};

        g_return_if_fail(h->workers == NULL);
        g_array_append_val(h->installers, in);
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
        gint64 threads = MCFG_INT(h->mgr, "threads");
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
        if (!listen_local(h, local_socket, error))
                return FALSE;
        h->n_workers = threads > 0 ? (guint)threads : MAX(1, MIN(g_get_num_processors(), 8));
        h->workers = g_new0(Worker *, h->n_workers);
        for (guint i = 0; i < h->n_workers; i++) {
                h->workers[i] = worker_new(h, i, error);
                if (!h->workers[i])
                        return FALSE;
        }
        resume_accept(h);
        shown = g_inet_address_get_is_any(addr) ? g_strdup(v6 ? "::1" : "127.0.0.1")
                                                : g_inet_address_to_string(addr);
        *url = g_strdup_printf("%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", shown,
                               v6 ? "]" : "",
                               g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        g_info("%u HTTP worker threads", h->n_workers);
        return TRUE;
}

void http_server_free(HttpServer *h)
{
        if (!h)
                return;
        if (h->accept_source) {
                g_source_destroy(h->accept_source);
                g_source_unref(h->accept_source);
        }
        if (h->retry_id)
                g_source_remove(h->retry_id);
        if (h->listener)
                g_socket_close(h->listener, NULL);
        g_clear_object(&h->listener);
        for (guint i = 0; h->workers && i < h->n_workers; i++) {
                Worker *w = h->workers[i];
                if (!w)
                        continue;
                g_main_context_invoke(w->ctx, quit_loop, w->loop);
                g_thread_join(w->thread);
                worker_free(w);
        }
        g_free(h->workers);
        if (h->local)
                g_socket_close(h->local, NULL);
        g_clear_object(&h->local);
        g_clear_object(&h->cert);
        g_array_unref(h->installers);
        g_free(h);
}
