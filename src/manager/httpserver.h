/* The manager's HTTP front (server.c): a TLS listener with its own accept loop (bounded
 * connections, survives accept() failures such as EMFILE), handing connections to HTTP worker
 * threads, each with its own GLib loop, SoupServer and store handle. What the SoupServers
 * serve is added by the installers registered before http_server_listen(): the REST API
 * (http.c) and the agent links (agentlink.c). */
#pragma once
#include "manager/manager.h"

/* What a SoupServer's handlers need: their user_data. */
typedef struct {
        Manager *mgr;
        Store *store; /* the worker thread's own handle */
} ServeContext;

/* Adds handlers to a worker's SoupServer (called on that worker's thread, for each SoupServer
 * it makes: a fresh one replaces a retired one now and then). */
typedef void (*HttpInstallFunc)(SoupServer *soup, ServeContext *sc, gpointer data);

HttpServer *http_server_new(Manager *mgr, GError **error);
/* Registers an installer; before http_server_listen() only. */
void http_server_add_handlers(HttpServer *h, HttpInstallFunc install, gpointer data);
/* listen: HOST:PORT (TLS unless tls is FALSE); local_socket: path of the UNIX socket. */
gboolean http_server_listen(HttpServer *h, const char *listen, const char *local_socket,
                            gboolean tls, GTlsCertificate *cert, char **url, GError **error);
void http_server_free(HttpServer *h);
