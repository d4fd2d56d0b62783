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
        guint rounds_failed; /* times every manager URL failed in a row (several managers) */
        guint standby_tries; /* ... a standby refused in a row: it may lead in a moment */
        gboolean stay;       /* the next try goes to the same URL */
        gint64 max_term;     /* the newest leader's term heard: older ones are refused */
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
        GHashTable *epochs; /* domain -> highest placement epoch seen (gint64 in a pointer) */

        /* self-fencing (fence.c) */
        struct {
                gboolean enabled;       /* the manager says another host could take over */
                gboolean configured;    /* the manager said so at least once */
                gint64 after_s;         /* silence before fencing (manager.self_fence_after) */
                int witness_timeout_ms; /* each witness's answer */
                GStrv witnesses;        /* HOST:PORT, from the manager */
                char *manager_witness;  /* the manager's own address */
                gint64 last_heard;      /* monotonic µs of the manager's last message */
                gint heard;             /* messages heard (atomic: a probe's thread reads it) */
                gint64 last_probe;
                gboolean probing, told_witness;
                gint64 fenced_at; /* real time of this outage's fencing, 0: none */
                guint fenced_count;
                GSource *timer;
        } fence;
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

/* Self-fencing (fence.c): the manager's settings from its welcome or an ack, a message heard,
 * the manager's address as a witness, the timer. */
void fence_configure(Agent *a, JsonObject *msg);
void fence_heard(Agent *a);
void fence_set_manager(Agent *a, const char *url);
void fence_start(Agent *a);
void fence_stop(Agent *a);
/* Whether a TCP connection to one of HOST:PORT is accepted or refused within timeout_ms. */
gboolean fence_witness_answers(const char *const *witnesses, int timeout_ms, char **who);
