/* The agent role: joins its host to a manager once, then keeps one authenticated WebSocket to
 * it (reconnecting with backoff, trying each manager URL in turn), reports the host's facts,
 * inventory, heartbeats and events, and carries out the manager's commands through libvirt
 * (virt.h) and on the host's storage (storage.h).
 *
 * One GLib loop (the process's main context) runs the link, timers and guest channels; every
 * blocking call runs in a bounded pool of worker threads (agent.workers): no thread per
 * guest. */
#pragma once
#include "common/config.h"

#include <json-glib/json-glib.h>

typedef struct _Agent Agent;

/* Called when the agent cannot go on (its host was removed): the daemon exits with 1. */
typedef void (*AgentFatalFunc)(const char *message, gpointer data);

Agent *agent_new(Config *config, const char *state_dir, AgentFatalFunc fatal, gpointer data,
                 GError **error);
void agent_free(Agent *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Agent, agent_free)

/* Registers the host with a join token (blocking; before the loop runs) and stores its
 * credential 0600 in the state directory. managers: URLs; fingerprint may be "" or NULL. */
gboolean agent_join(Agent *a, const char *const *managers, const char *fingerprint,
                    const char *token, GError **error);
/* TRUE when a credential is stored. */
gboolean agent_joined(Agent *a);
/* Opens libvirt, detects the accelerator and starts linking. */
gboolean agent_start(Agent *a, GError **error);

/* The agent's work for one command, run in a worker thread: exposed for the tests. */
JsonObject *agent_run_op(Agent *a, const char *op, JsonObject *args, GError **error);
