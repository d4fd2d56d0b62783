/* The pool reconciler's own parts, shared by reconciler.c (passes over pools, steps, the
 * thread) and recovery.c (desktops and guests of down hosts brought back elsewhere): its
 * state, what a pass reads, and the helpers both use. Not for other files. */
#pragma once
#include "manager/reconciler.h"
#include "manager/hostcmd.h"
#include "manager/manager.h"

typedef struct {
        guint failures;
        guint busy; /* recovery starts refused by a busy lease */
        gint64 next_at; /* monotonic µs: no new attempt before */
} Retry;

struct _Reconciler {
        Manager *mgr;
        Store *store; /* the reconciler thread's own handle */
        GThread *thread;
        GMainContext *ctx;
        GMainLoop *loop;
        gint kicked;
        GHashTable *inflight;  /* desktop id -> its step (ReconcileStep) */
        GHashTable *host_load; /* host id -> steps in flight */
        GHashTable *retries;   /* desktop id -> Retry */
        GQueue pending;        /* Step waiting for room on its host, made by the last pass */
        GHashTable *recovering; /* desktop id -> the down host it is recovered from */
        GHashTable *guests_recovering; /* guest id -> the down host it is recovered from */
        GHashTable *guest_retries;     /* guest id -> Retry */
        GHashTable *guests_inflight;   /* guest id: its start is in flight */
        GHashTable *waiting_told; /* desktop id: "no host has room" already said */
        gint64 last_pass;
        gint last_pass_ms; /* how long the last pass took (atomic: kicks come from any thread) */
};

/* What a pass looks at, read at its start. */
typedef struct {
        JsonArray *pools, *desktops, *sessions, *hosts, *versions, *volumes;
        GHashTable *newest;       /* template id -> newest version row */
        GHashTable *versions_by;  /* version id -> row */
        GHashTable *volume_path;  /* volume id -> path */
        GHashTable *in_session;   /* desktop id -> TRUE */
        GHashTable *names;        /* every desktop name (lower case) */
        GHashTable *host_count;   /* host id -> desktops placed there */
        GHashTable *host_planned; /* host id -> MiB of the desktops this pass starts there */
        GHashTable *by_pool;      /* pool id -> GPtrArray of its desktop rows */
} Snapshot;

typedef struct {
        JsonObject *pool;
        gboolean stateless;
        JsonObject *newest;
        const char *path; /* the newest version's volume */
        const char *hint;
        GPtrArray *live;  /* desktops of the pool not being deleted */
        GPtrArray *going; /* being deleted */
        guint settled, failed, transitional;
} PoolView;

/* Events the reconciler writes itself are the system's. */
extern const Actor rec_system_actor;

/* Rows and tables. */
gint64 *rec_id_key(gint64 id);
GHashTable *rec_id_table(void);
gboolean rec_state_is(JsonObject *d, DesktopState state);
JsonObject *rec_find(JsonArray *rows, gint64 id);
JsonObject *rec_host_row(Snapshot *s, gint64 id);
/* A desktop's row changed (state, unless DESKTOP_STATE_LAST, and EXTRA), with an event when
 * ACTION is given. */
gboolean rec_desktop_set(Reconciler *p, gint64 id, const char *name, DesktopState state, JsonObject *extra, const char *action, const char *detail);
/* Placement: room for one more step on a host; whether a desktop of V needing NEED_MB fits on
 * host H this pass; the usable host with the fewest desktops for a volume path and pool hint
 * (0: none); a stateless desktop made fresh on the newest version (row back to provisioning,
 * no user, clean), on HOST when given, EXTRA taken, with an event. */
gboolean rec_host_has_room(Reconciler *p, gint64 host_id);
gboolean rec_fits(Reconciler *p, Snapshot *s, PoolView *v, JsonObject *h, gint64 need_mb);
gint64 rec_place(Reconciler *p, Snapshot *s, const char *path, const char *hint);
gboolean rec_reset_fresh(Reconciler *p, JsonObject *d, JsonObject *newest, gint64 host, JsonObject *extra, const char *why);
/* Steps: a desktop not to touch now (a step in flight, backing off after a failure, or
 * migrating); a step sent to its host (queued when the host has no room); a failed step
 * (tried again later, or after provision_retries marked failed); a desktop's command
 * arguments from the snapshot; its retry record, made on first use; a pass after MS. */
gboolean rec_busy(Reconciler *p, JsonObject *d);
gboolean rec_step_send(Reconciler *p, JsonObject *row, gint64 host_id, ReconcileStep step, HostCmd *cmd);
void rec_step_failed(Reconciler *p, JsonObject *row, ReconcileStep step, const GError *error);
JsonObject *rec_snapshot_args(Reconciler *p, Snapshot *s, JsonObject *pool, JsonObject *d, GError **error);
Retry *rec_retry_of(Reconciler *p, gint64 id);
void rec_kick_after(Reconciler *p, guint ms);
/* Recovery from a down host (recovery.c), run by every pass: desktops, then guests, then the
 * hosts' recovery progress; a start refused by a busy disk lease is tried again later. */
void recovery_desktops(Reconciler *p, Snapshot *s);
void recovery_guests(Reconciler *p, Snapshot *s);
void recovery_progress(Reconciler *p, Snapshot *s);
void recovery_busy(Reconciler *p, JsonObject *row, const GError *error);
