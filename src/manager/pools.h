/* The pool reconciler: keeps every pool at its size and spares, resets stateless desktops
 * whose session ended, rolls them onto a template's newest version, recomposes, deletes, and
 * reports long operations' progress.
 *
 * It runs in its own thread with its own main context and store handle, so the API's loops
 * never wait for it. A pass reads pools, desktops, sessions, hosts and template versions,
 * compares them with what should be, and sends agent commands (desktop.provision,
 * domain.start, domain.shutdown, desktop.delete) whose replies come back on its thread. Passes
 * run every manager.reconcile_interval seconds and soon after pools_kick().
 *
 * Crash safety: the database says what should be before any host is asked (a new desktop's
 * row is written, state 'provisioning', before its overlay exists; a removed one is marked
 * 'deleting' and its row goes only after its host removed domain and overlay), and every agent
 * step is idempotent, so after a kill -9 the next pass just carries on. */
#pragma once
#include "manager/manager.h"
#include "manager/scheduler.h"

typedef struct _Pools Pools;

Pools *pools_new(Manager *mgr, GError **error);
void pools_free(Pools *p);
/* Something changed (a pool, a session, a template version): run a pass soon. Any thread. */
void pools_kick(Pools *p);

/* The arguments of domain.start / desktop.provision for a desktop row: its pool's policy, its
 * template version's hardware, its overlay in the version's volume. NULL with an error when
 * its pool, version or volume is gone. */
JsonObject *pools_desktop_args(Store *st, const char *installation, JsonObject *desktop,
                               GError **error);

/* The newest version row of a template (by id), or NULL. */
JsonObject *pools_newest_version(Store *st, gint64 template_id);
/* TRUE when some host that is up and not in maintenance may reach the volume at path (it did
 * not report it unreachable); hosts_hint: pool's host names, comma-separated, or "". */
gboolean pools_volume_reachable(Store *st, const char *path, const char *hosts_hint);

/* The scheduler's view of a host row (path: the volume it must reach, or NULL) and of a
 * request for need_mb under the configured overcommit and placement, with a pool's host hint. */
void pools_sched_host(Manager *mgr, JsonObject *host, const char *path, SchedHost *out);
void pools_sched_request(Manager *mgr, gint64 need_mb, const char *hint, SchedRequest *out);

/* Operations: a new one (kind, object) started by actor; its id. */
gint64 pools_operation_start(Store *st, const char *kind, const char *object_kind,
                             gint64 object_id, const char *object_name, const Actor *actor);
