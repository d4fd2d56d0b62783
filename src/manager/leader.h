/* Leadership among several managers on one PostgreSQL database (leader.c): the lease, the
 * term, the fence, the standby's configuration check. */
#pragma once
#include "manager/manager.h"

typedef struct _Leader Leader;

/* Run on the main loop when this manager becomes the leader: start the leader's parts. */
typedef void (*LeaderStart)(Manager *mgr);

/* The lease's thread, this manager a standby (its writes fenced off) until it takes the
 * lease. */
Leader *leader_start(Manager *mgr, LeaderStart on_lead, GError **error);
/* Stops the thread; a leader gives up its lease, so that a standby takes over at once. */
void leader_free(Leader *l);
