/* The pool reconciler: keeps every pool at its size and spares, resets stateless desktops
 * whose session ended, rolls them onto a template's newest version, recomposes, deletes, and
 * reports long operations' progress.
 *
 * It runs in its own thread with its own main context and store handle, so the API's loops
 * never wait for it. A pass reads pools, desktops, sessions, hosts and template versions,
 * compares them with what should be, and sends agent commands (desktop.provision,
 * domain.start, domain.shutdown, desktop.delete) whose replies come back on its thread. Passes
 * run every manager.reconcile_interval seconds and soon after manager_kick().
 *
 * Crash safety: the database says what should be before any host is asked (a new desktop's
 * row is written, state 'provisioning', before its overlay exists; a removed one is marked
 * 'deleting' and its row goes only after its host removed domain and overlay), and every agent
 * step is idempotent, so after a kill -9 the next pass just carries on. */
#pragma once
#include "manager/agentlink.h"

typedef struct _Reconciler Reconciler;

Reconciler *reconciler_new(Manager *mgr, GError **error);
void reconciler_free(Reconciler *p);
/* A LinkListener (data: the Manager): a desktop's reported state changed, a pass soon. */
void reconciler_on_link(Agents *ag, const LinkEvent *ev, gpointer mgr);
