/* Live migration of running desktops and guests between hosts, and hosts that drain
 * themselves into maintenance (migration.c).
 *
 * A migration is an operation (kind "migrate") on a desktop or guest. It begins in the API's
 * thread: the object must run, the destination (named, or chosen by the scheduler: up, out of
 * maintenance, linked, reaching the object's volume, with memory to spare) must differ from its
 * host, and the store records the destination and a new placement epoch in one step
 * (store_migration_begin), which refuses a second migration of the same object. The source
 * host's agent is then asked (domain.migrate) from the migrations' own thread. While it runs
 * the reports of the paused copy on the destination and of the pausing source are not the
 * object's state (agentlink.c); the switch-over places the object on the destination at the
 * new epoch, from the destination's report or the source's reply, whichever comes first. A
 * migration that fails, is cancelled or outlives manager.migration_timeout leaves the object
 * running where it was, with an event saying why; the copy at the new epoch, if one is left,
 * is stale and removed (hostsync.c).
 *
 * A drain (operation kind "drain" on a host in maintenance) migrates whatever runs on the
 * host, at most manager.migrations_per_host at once, and ends when nothing runs there but what
 * cannot move, listed with the reason (stopped only when forced). */
#pragma once
#include "manager/agentlink.h"

typedef struct _Migrations Migrations;

Migrations *migrations_new(Manager *mgr, GError **error);
void migrations_free(Migrations *m);

/* POST /{desktops,guests}/{id}/migrate: the operation's row, or NULL with an error
 * (ATRIUM_ERROR_CONFLICT: the object or the destination does not allow it; NOT_FOUND: no such
 * object or host; INVALID: the object is on that host already). to: a host's name or id, or
 * NULL for the scheduler's choice. */
JsonObject *migration_start(Manager *mgr, Store *st, const char *kind, const char *id_or_name,
                            const char *to, const Actor *actor, GError **error);
/* POST /operations/{id}/cancel: a migration is aborted (it keeps running on its source), a
 * drain stops (the host stays in maintenance). FALSE with ATRIUM_ERROR_CONFLICT for an
 * operation that has ended or cannot be cancelled. */
gboolean migration_cancel(Manager *mgr, Store *st, JsonObject *op, const Actor *actor,
                          GError **error);
/* A host put in maintenance empties itself: the drain operation's row (the one already
 * running for the host, if any). force: what cannot move is shut down. */
JsonObject *migration_drain(Manager *mgr, Store *st, JsonObject *host, gboolean force,
                            const Actor *actor, GError **error);
/* A LinkListener (data: the Manager): migrations' progress onto their operations. */
void migrations_on_link(Agents *ag, const LinkEvent *ev, gpointer mgr);
