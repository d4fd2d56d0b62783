/* The manager's side of the agent links (proto/agentproto.h): who is connected, commands with
 * their replies, heartbeats and host states, events and reconciliation of what hosts run.
 *
 * A link lives on the HTTP worker thread whose SoupServer accepted it, and is only touched
 * there. Commands may be sent from any thread: agentlink_call() queues the text to the link's
 * thread and calls back on the caller's thread-default context with the reply, an error or a
 * timeout. The host monitor runs on the main context: a host whose agent said nothing for
 * manager.host_suspect_after seconds is suspect (no new desktops there), after
 * manager.host_down_after seconds down; its next message makes it up again (host_up). */
#pragma once
#include "manager/httpserver.h"
#include "proto/vocab.h"

typedef struct _Agents Agents;

Agents *agentlink_new(Manager *mgr);
/* This manager leads from now: the host monitor judges hosts (after startup_grace). */
void agentlink_lead(Agents *ag);
void agentlink_free(Agents *ag);
/* Adds the link's handlers to a worker's SoupServer (an HttpInstallFunc; data: the Agents). */
void agentlink_install(SoupServer *soup, ServeContext *serve_context, gpointer agents);

/* What a link reports, published to the listeners registered at construction (agentlink_listen),
 * in that order, on the link's worker thread: the link itself only records what hosts say in
 * the store and answers commands; whatever follows from it (a pass of the reconciler, a waiting
 * connect going on, sessions following a console) is a listener's. */
typedef enum {
        LINK_HELLO,        /* a host's agent linked (host_id, msg: its hello) */
        LINK_INVENTORY,    /* its inventory was reconciled with the rows */
        LINK_STATE,        /* a guest's or desktop's row took a reported state (kind, id, msg) */
        LINK_ORPHAN,       /* a domain of ours whose object is gone (domain, kind, id, epoch) */
        LINK_STALE,        /* a domain at another placement epoch than its object's: it was
                            * placed again since, here or on another host (domain, kind, id,
                            * epoch: the domain's; msg: the object's row) */
        LINK_GUEST_READY,  /* atrium-guest in a desktop said ready (id, domain, msg: hostname) */
        LINK_GUEST_LOGIN,  /* ... a user logged in there (msg: user) */
        LINK_GUEST_LOGOUT, /* ... the user logged out */
        LINK_CONSOLE,      /* a desktop's console client connected or went (id, connected) */
        LINK_MIGRATION,    /* a live migration's progress (kind, id, domain, msg: figures) */
        LINK_ARRIVING,     /* a migration's copy reported by its destination: paused before
                            * the switch-over, running after it (kind, id, epoch, msg: the
                            * report, its state and ports) */
        LINK_LOST,         /* the host's link closed */
        LINK_EVENT_LAST
} LinkEventType;

typedef struct {
        LinkEventType type;
        gint64 host_id;
        const char *host_name;
        Store *store;       /* the link thread's handle */
        const Actor *actor; /* "host:NAME", for the audit trail */
        const char *kind;   /* "guest" or "desktop"; NULL for host events */
        gint64 id;          /* the guest's or desktop's */
        const char *domain; /* its domain's name */
        JsonObject *msg;    /* what the agent sent, when there is such a message */
        gboolean connected; /* LINK_CONSOLE */
        gint64 epoch;       /* LINK_ORPHAN, LINK_STALE: the domain's placement epoch */
} LinkEvent;

typedef void (*LinkListener)(Agents *ag, const LinkEvent *ev, gpointer data);
/* Before the links are served only. */
void agentlink_listen(Agents *ag, LinkListener fn, gpointer data);

/* result is the reply's result object (borrowed), or NULL with error set. */
typedef void (*AgentReplyFunc)(JsonObject *result, const GError *error, gpointer data);

/* An admin declares the host down (it is off): state down, an event host_fenced by actor, its
 * link closed, the reconciler woken. Refused for a host already down. */
gboolean agentlink_declare_down(Agents *ag, Store *st, gint64 host_id, const Actor *actor,
                                GError **error);

/* Sends op with args (taken) to the host's agent; cb (NULL: nobody) hears the reply. FALSE with an
 * error (nothing sent, cb not called) when the host has no link. */
gboolean agentlink_call(Agents *ag, gint64 host_id, AgentOp op, JsonObject *args, guint timeout_s,
                        AgentReplyFunc cb, gpointer data, GError **error);
gboolean agentlink_linked(Agents *ag, gint64 host_id);
/* Seconds since the last input in desktop ID, as its atrium-guest last said (through its
 * host's heartbeats); -1 when unknown. Any thread. */
gint64 agentlink_desktop_idle(Agents *ag, gint64 desktop_id);
/* atrium-guest in desktop ID said ready since it last started, or reports in heartbeats. */
gboolean agentlink_guest_alive(Agents *ag, gint64 desktop_id);
/* While keep is TRUE, reports of DOMAIN at EPOCH from the host are not acted on when its object
 * is at another epoch: a live migration's source after the switch-over, until libvirt's call
 * there returns (migration.c). Any thread. */
void agentlink_keep(Agents *ag, gint64 host_id, const char *domain, gint64 epoch, gboolean keep);
/* The host was removed: close its link. */
void agentlink_forget(Agents *ag, gint64 host_id);
