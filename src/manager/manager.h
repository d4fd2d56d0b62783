/* The manager role: owns the store, serves the REST API. */
#pragma once
#include "auth/auth.h"
#include "common/config.h"
#include "store/store.h"

#include <libsoup/soup.h>

typedef struct _HttpServer HttpServer;
typedef struct _Agents Agents;
typedef struct _Pools Pools;

typedef struct {
        Config *config;
        Store *store;
        RateLimiter *logins;
        HttpServer *http;
        char *state_dir;
        char *url;                 /* where the API listens, e.g. https://127.0.0.1:8444 */
        char *admin_password_file; /* state_dir/initial-admin-password */
        char *fingerprint;         /* SHA-256 of the API's certificate, "" over plain HTTP */
        Agents *agents;            /* the hosts' agent links (agents.h) */
        Pools *pools;              /* the pool reconciler (pools.h) */
        char *installation;        /* this installation's id: its domains' names carry it */
        guint8 ticket_sk[64];      /* console tickets' signing key (state_dir/ticket.key) */
        guint8 ticket_pk[32];      /* ... and what gateways verify with (ticket-public.key) */
        char gateway_key[48];      /* what gateways report with (state_dir/gateway.key) */
        char *gateway_url;         /* the gateway in this process, when there is one */
        struct _DirLink *dirlink;  /* directory users' group refresher (dirlink.h) */
} Manager;

/* Opens the store (migrating it), creates the first admin when there is no user. */
Manager *manager_new(Config *config, const char *state_dir, GError **error);
/* Starts listening; fills mgr->url. */
gboolean manager_start(Manager *mgr, GError **error);
/* Applies the reloadable keys of a new config (SIGHUP); says which others need a restart. */
void manager_reload(Manager *mgr, Config *next);
void manager_free(Manager *mgr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

/* Config shortcuts. */
#define MCFG_INT(m, k) config_get_int((m)->config, "manager", (k))
#define MCFG_STR(m, k) config_get_string((m)->config, "manager", (k))

/* The HTTP front: TLS listener with its own accept loop (bounded connections, survives
 * accept() failures such as EMFILE), handing connections to a SoupServer. */
HttpServer *http_server_new(Manager *mgr, GError **error);
/* listen: HOST:PORT (TLS unless tls is FALSE); local_socket: path of the UNIX socket. */
gboolean http_server_listen(HttpServer *h, const char *listen, const char *local_socket,
                            gboolean tls, GTlsCertificate *cert, char **url, GError **error);
guint http_server_connections(HttpServer *h);
void http_server_free(HttpServer *h);
