/* Inside the agent role: its state, shared by agent.c (the link, the work) and guestlink.c
 * (the guest channels). Not for other layers. */
#pragma once
#include "agent/accel.h"
#include "agent/agent.h"
#include "agent/virt.h"

#include <libsoup/soup.h>

struct _Agent {
        Config *config;
        char *state_dir;
        char *cred_path;
        GMainContext *ctx;
        AgentFatalFunc fatal;
        gpointer fatal_data;

        /* identity (the credential file) */
        GStrv managers;
        char *fingerprint;
        gint64 host_id;
        char *name;
        char *credential;

        /* host */
        char *address;
        GStrv roots;
        AccelReport accel;
        JsonObject *facts;
        Virt *virt;
        GThreadPool *pool;

        /* link */
        SoupSession *session;
        SoupWebsocketConnection *ws;
        GCancellable *cancel;
        guint manager_index;
        guint backoff_s;
        GSource *retry;
        GSource *heartbeat;
        guint heartbeat_s;
        GHashTable *replies; /* command id -> reply text, the last REPLY_CACHE */
        GQueue reply_order;
        GHashTable *inflight; /* command ids running */
        GHashTable *busy;     /* domain -> GQueue of Jobs waiting: one command per domain at once */
        GHashTable *channels; /* domain -> GuestChannel */
        JsonArray *volumes;   /* paths the manager's volumes and media have (welcome) */
        JsonObject *figures;  /* the last heartbeat's figures */
        gboolean figures_busy;
        gboolean stopping;
};

/* Messages to the manager (dropped while unlinked); a command's reply, remembered by id. */
void agent_send_text(Agent *a, const char *text);
void agent_send_msg(Agent *a, JsonObject *msg);                  /* takes msg */
void agent_remember_reply(Agent *a, const char *id, char *text); /* takes text */
/* The "domain" argument of a command, checked to be an Atrium domain name. */
const char *agent_domain_arg(JsonObject *args, GError **error);

/* Guest channels (guestlink.c): a table for a->channels, opened when a domain runs, closed
 * when it stops; guest.request commands. */
GHashTable *guest_channels_new(void);
/* {domain: seconds since its user's last input} for the guests whose atrium-guest says so:
 * sent with every heartbeat (the manager's idle timeouts). */
JsonObject *guest_idle_report(Agent *a);
void guest_channel_open(Agent *a, const char *domain, const char *path);
void guest_channel_close(Agent *a, const char *domain);
void guest_request(Agent *a, const char *id, JsonObject *args);
