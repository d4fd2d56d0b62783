/* The manager role's ground type: what every part of the manager shares (config, store,
 * keys, and the parts lifecycle.c builds). Nothing here depends on any other part. */
#pragma once
#include "auth/auth.h"
#include "common/config.h"
#include "store/store.h"

#include <libsoup/soup.h>

typedef struct _HttpServer HttpServer;
typedef struct _Agents Agents;
typedef struct _Reconciler Reconciler;

typedef struct {
        Config *config;
        Store *store;
        RateLimiter *logins;
        HttpServer *http;
        char *state_dir;
        char *url;                   /* where the API listens, e.g. https://127.0.0.1:8444 */
        char *admin_password_file;   /* state_dir/initial-admin-password */
        char *fingerprint;           /* SHA-256 of the API's certificate, "" over plain HTTP */
        Agents *agents;              /* the hosts' agent links (agentlink.h) */
        Reconciler *reconciler;      /* the pool reconciler (reconciler.h) */
        void (*kick)(Reconciler *r); /* ... wakes it for a pass soon; set while it runs */
        char *installation;          /* this installation's id: its domains' names carry it */
        guint8 ticket_sk[64];        /* console tickets' signing key (state_dir/ticket.key) */
        guint8 ticket_pk[32];        /* ... and what gateways verify with (ticket-public.key) */
        char gateway_key[48];        /* what gateways report with (state_dir/gateway.key) */
        char *gateway_url;           /* the gateway in this process, when there is one */
        struct _DirLink *dirlink;    /* directory users' group refresher (dirlink.h) */
        struct _Migrations *migrations; /* live migrations and drains (migration.h) */
        /* Several managers on one database (leader.h): this one's name, whether it leads now
         * (always, alone on SQLite), the term it leads in or last saw, and the leader's API
         * URL ("" while none is known). */
        char *name;
        struct _Leader *leader;
        GMutex leader_lock;
        gboolean leading;
        gint64 term;
        char *leader_url;
} Manager;

static inline void manager_set_leader(Manager *mgr, gboolean leading, const char *url,
                                      gint64 term)
{
        g_mutex_lock(&mgr->leader_lock);
        mgr->leading = leading;
        mgr->term = term;
        if (g_strcmp0(mgr->leader_url, url) != 0) {
                g_free(mgr->leader_url);
                mgr->leader_url = g_strdup(url);
        }
        g_mutex_unlock(&mgr->leader_lock);
}

static inline gboolean manager_leading(Manager *mgr)
{
        gboolean v;

        g_mutex_lock(&mgr->leader_lock);
        v = mgr->leading;
        g_mutex_unlock(&mgr->leader_lock);
        return v;
}

/* The term this manager leads in (0: not leading, or alone on SQLite). */
static inline gint64 manager_term(Manager *mgr)
{
        gint64 v;

        g_mutex_lock(&mgr->leader_lock);
        v = mgr->leading ? mgr->term : 0;
        g_mutex_unlock(&mgr->leader_lock);
        return v;
}

/* The leader's API URL (g_free; "" when none is known or this manager leads). */
static inline char *manager_leader_url(Manager *mgr)
{
        char *v;

        g_mutex_lock(&mgr->leader_lock);
        v = g_strdup(mgr->leading || !mgr->leader_url ? "" : mgr->leader_url);
        g_mutex_unlock(&mgr->leader_lock);
        return v;
}

/* Something changed (a pool, a session, a desktop's state, a template version): the pool
 * reconciler runs a pass soon. Any thread; nothing before the reconciler runs. */
static inline void manager_kick(Manager *mgr)
{
        if (mgr->kick && mgr->reconciler)
                mgr->kick(mgr->reconciler);
}

/* Config shortcuts. */
#define MCFG_INT(m, k) config_get_int((m)->config, "manager", (k))
#define MCFG_STR(m, k) config_get_string((m)->config, "manager", (k))
