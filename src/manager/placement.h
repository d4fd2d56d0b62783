/* Placement (placement.c): which hosts may take a desktop, and the scheduler's view of them.
 * The reconciler (spreading desktops), the broker (starting a stopped one) and the API (a
 * pool's check before it is made) ask here; the choice itself is scheduler.c's. */
#pragma once
#include "manager/manager.h"
#include "manager/scheduler.h"

/* Up, out of maintenance, linked, among the hint's hosts (a pool's host names,
 * comma-separated, or "") and not saying it cannot reach the volume at path. */
gboolean placement_host_usable(Manager *mgr, JsonObject *host, const char *path, const char *hint);
/* TRUE when the host's last report says it cannot reach path (a host that did not say yet
 * is not counted: recovery makes a desktop unavailable only on what hosts said). */
gboolean placement_host_says_unreachable(JsonObject *host, const char *path);
/* TRUE when some host that is up and not in maintenance may reach the volume at path (it did
 * not report it unreachable), among the hint's hosts. */
gboolean placement_volume_reachable(Store *st, const char *path, const char *hosts_hint);

/* The scheduler's view of a host row (path: the volume it must reach, or NULL) and of a
 * request for need_mb under the configured overcommit and placement, with a pool's host hint. */
void placement_sched_host(Manager *mgr, JsonObject *host, const char *path, SchedHost *out);
void placement_sched_request(Manager *mgr, gint64 need_mb, const char *hint, SchedRequest *out);
