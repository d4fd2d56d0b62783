/* The manager over TLS, for a gateway in its own process: see gateway-private.h.
 *
 * API traffic is light: the TLS connection to the manager (certificate pinned) is made by GIO
 * on the main context and spliced to one end of a socket pair; the gateway's thread relays
 * the other end like any upstream. */
#define G_LOG_DOMAIN "gateway"

#include "gateway/gateway-private.h"
#include "common/tls.h"

#include <gio/gio.h>
#include <sys/socket.h>
#include <unistd.h>


typedef struct {
        char *host, *fp;
        guint16 port;
        int fd;
        Gateway *gw;
} Dial;

static void dial_free(Dial *d)
{
        if (d->fd >= 0)
                close(d->fd);
        g_free(d->host);
        g_free(d->fp);
        g_free(d);
}

static gboolean dial_accept(GTlsConnection *conn, GTlsCertificate *cert,
                            GTlsCertificateFlags errors, gpointer data)
{
        Dial *d = data;
        g_autoptr(GByteArray) der = NULL;

        if (!d->fp[0])
                return FALSE;
        g_object_get(cert, "certificate", &der, NULL);
        if (der && tls_der_matches(der->data, der->len, d->fp))
                return TRUE;
        g_warning("the manager at %s:%u does not present the pinned certificate "
                  "(gateway.manager_fingerprint): API call refused",
                  d->host, d->port);
        return FALSE;
}

static void dial_event(GSocketClient *client, GSocketClientEvent event, GSocketConnectable *to,
                       GIOStream *conn, gpointer data)
{
        if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING)
                g_signal_connect(conn, "accept-certificate", G_CALLBACK(dial_accept), data);
}

static void spliced(GObject *src, GAsyncResult *res, gpointer data)
{
        g_io_stream_splice_finish(res, NULL);
}

static void dialed(GObject *src, GAsyncResult *res, gpointer data)
{
        Dial *d = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GSocketConnection) up =
                g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(src), res, &error);
        g_autoptr(GSocket) sock = NULL;
        g_autoptr(GSocketConnection) local = NULL;

        if (!up) {
                g_warning("cannot reach the manager at %s:%u: %s", d->host, d->port,
                          error->message);
                dial_free(d);
                return;
        }
        sock = g_socket_new_from_fd(d->fd, &error);
        if (!sock) {
                dial_free(d);
                return;
        }
        d->fd = -1;
        local = g_socket_connection_factory_create_connection(sock);
        g_io_stream_splice_async(G_IO_STREAM(up), G_IO_STREAM(local),
                                 G_IO_STREAM_SPLICE_CLOSE_STREAM1 |
                                         G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                                 G_PRIORITY_DEFAULT, NULL, spliced, NULL);
        dial_free(d);
}

static gboolean dial_start(gpointer data)
{
        Dial *d = data;
        g_autoptr(GSocketClient) client = g_socket_client_new();

        /* several managers: the one leading now (the reporter follows it) */
        if (d->gw->mgr_now) {
                g_autoptr(GUri) uri = g_uri_parse(d->gw->mgr_now(d->gw->mgr_now_data),
                                                  G_URI_FLAGS_NONE, NULL);
                if (uri && g_uri_get_host(uri)) {
                        g_free(d->host);
                        d->host = g_strdup(g_uri_get_host(uri));
                        d->port = (guint16)(g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 443);
                }
        }
        g_socket_client_set_tls(client, TRUE);
        g_socket_client_set_timeout(client, 10);
        g_signal_connect(client, "event", G_CALLBACK(dial_event), d);
        g_socket_client_connect_to_host_async(client, d->host, d->port, NULL, dialed, d);
        return G_SOURCE_REMOVE;
}

gboolean dialer_connect(Conn *c)
{
        Gateway *gw = c->gw;
        lws_adopt_desc_t a;
        Dial *d;
        int fds[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
                conn_respond(c, 503, "Service Unavailable", NULL, "out of file descriptors");
                return FALSE;
        }
        memset(&a, 0, sizeof(a));
        a.vh = gw->vh;
        a.type = LWS_ADOPT_SOCKET;
        a.fd.sockfd = fds[0];
        a.vh_prot_name = "atrium-gateway";
        a.opaque = c;
        c->up.wsi = lws_adopt_descriptor_vhost_via_info(&a);
        if (!c->up.wsi) {
                close(fds[1]);
                conn_respond(c, 503, "Service Unavailable", NULL, "cannot relay to the manager");
                return FALSE;
        }
        d = g_new0(Dial, 1);
        d->host = g_strdup(gw->mgr_host);
        d->port = gw->mgr_port;
        d->fp = g_strdup(gw->mgr_fp);
        d->fd = fds[1];
        d->gw = gw;
        g_main_context_invoke_full(gw->main_ctx, G_PRIORITY_DEFAULT, dial_start, d, NULL);
        return TRUE;
}
