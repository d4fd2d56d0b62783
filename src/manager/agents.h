/* The manager's side of the agent links (proto/agentproto.h): who is connected, commands with
 * their replies, heartbeats and host states, events and reconciliation of what hosts run.
 *
 * A link lives on the HTTP worker thread whose SoupServer accepted it, and is only touched
 * there. Commands may be sent from any thread: agents_call() queues the text to the link's
 * thread and calls back on the caller's thread-default context with the reply, an error or a
 * timeout. The host monitor runs on the main context and marks a host down once it missed
 * manager.host_missed_heartbeats heartbeats of manager.heartbeat_interval seconds. */
#pragma once
#include "manager/manager.h"
#include "proto/vocab.h"

typedef struct _Agents Agents;

Agents *agents_new(Manager *mgr);
void agents_free(Agents *ag);
/* Adds the link's handlers to a worker's SoupServer; serve_context is its ServeContext. */
void agents_install(Agents *ag, SoupServer *soup, gpointer serve_context);

/* result is the reply's result object (borrowed), or NULL with error set. */
typedef void (*AgentReplyFunc)(JsonObject *result, const GError *error, gpointer data);

/* Sends op with args (taken) to the host's agent. FALSE with an error (nothing sent, cb not
 * called) when the host has no link. */
gboolean agents_call(Agents *ag, gint64 host_id, AgentOp op, JsonObject *args, guint timeout_s,
                     AgentReplyFunc cb, gpointer data, GError **error);
gboolean agents_linked(Agents *ag, gint64 host_id);
/* Seconds since the last input in desktop ID, as its atrium-guest last said (through its
 * host's heartbeats); -1 when unknown. Any thread. */
gint64 agents_desktop_idle(Agents *ag, gint64 desktop_id);
/* atrium-guest in desktop ID said ready since it last started, or reports in heartbeats. */
gboolean agents_guest_alive(Agents *ag, gint64 desktop_id);
/* The host was removed: close its link. */
void agents_forget(Agents *ag, gint64 host_id);
