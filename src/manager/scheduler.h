/* The scheduler: on which host a desktop starts. Pure and deterministic (table-tested,
 * tests/data/scheduler.*): hosts and one request in, a host or the reasons out.
 *
 * A host can take the desktop when it is up, out of maintenance, linked, reaches the desktop's
 * volume, is named by the pool's placement hint (if any), and its committed memory plus the
 * desktop's stays within its memory times the overcommit ratio. Among those, 'spread' takes
 * the one with the most memory left (then fewest running domains), 'pack' the one with the
 * least memory left that still fits; ties go to the lowest id. */
#pragma once
#include <glib.h>

typedef enum { SCHED_SPREAD, SCHED_PACK } SchedPolicy;

typedef struct {
        gint64 id;
        const char *name;
        gboolean up, maintenance, linked, reaches;
        gint64 ram_mb, committed_mb; /* memory, and memory of its running domains */
        guint running;
} SchedHost;

typedef struct {
        gint64 need_mb;    /* the desktop's memory */
        double overcommit; /* > 0: how much of a host's memory may be given out (1.0: all) */
        SchedPolicy policy;
        const char *hint; /* comma-separated host names, or "" / NULL: any */
} SchedRequest;

/* The chosen host's index in hosts, or -1 with an ATRIUM_ERROR_UNAVAILABLE error that says
 * why each host was passed over. */
gint scheduler_place(const SchedHost *hosts, gsize n, const SchedRequest *req, GError **error);
gboolean scheduler_policy_from_string(const char *s, SchedPolicy *out);
/* TRUE when name is among the comma-separated names of hint, or hint is empty. */
gboolean scheduler_in_hint(const char *hint, const char *name);
