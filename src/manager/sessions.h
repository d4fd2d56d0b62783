/* Sessions ending (sessions.c): by their pool's timeouts, by their user, by an operator.
 *
 * Ending is a short chain: the session's state becomes 'ending' (with end_reason and an event
 * 'session_end'), atrium-guest logs the user off, the desktop is shut down, then the session
 * row goes and the pool's reconciler is kicked (a stateless desktop is then reset). Each step
 * goes on when the one before answered or failed; a desktop that is not running, or whose host
 * is not linked, skips to the end. A session left 'ending' by a manager that stopped is finished
 * by the reconciler after SESSIONS_ENDING_MAX seconds. */
#pragma once
#include "manager/agentlink.h"

#define SESSIONS_ENDING_MAX 180

/* Begins ending session (a row). st is the calling thread's store handle (it must live as long
 * as the thread: a worker's or the reconciler's); the chain's replies come back on the calling
 * thread's default context. Already ending: nothing more, TRUE. */
gboolean sessions_end(Manager *mgr, Store *st, JsonObject *session, const char *reason,
                      const Actor *actor, GError **error);

/* The reconciler's check, once per pass: sessions past their pool's idle_timeout (atrium-guest
 * reports input), disconnect_grace or max_session are ended; sessions stuck 'ending' finished.
 * pools, desktops, sessions: the pass's rows. */
void sessions_timeouts(Manager *mgr, Store *st, JsonArray *pools, JsonArray *desktops,
                       JsonArray *sessions);

/* A console was opened on the desktop (libvirt graphics connect, or the gateway's tunnel): the
 * sessions' timing gains 'opened' once, with an event 'console_opened'. */
void sessions_console_opened(Store *st, gint64 desktop_id, const Actor *actor);

/* Writes a session's timing (JSON text: milliseconds from the connect request to each step)
 * and the event EV about it, in one transaction (EV alone when the session is gone). */
void sessions_set_timing(Store *st, gint64 session_id, const char *timing, const StoreEvent *ev);

/* The desktop's sessions become 'connected' or 'disconnected' (state_since now); 'ending'
 * ones are left alone. On connect, sessions_console_opened() too. */
void sessions_follow(Store *st, gint64 desktop_id, const Actor *actor, gboolean connected);
/* A LinkListener: a console client of a desktop connected or went (libvirt's graphics
 * events): sessions_follow(). */
void sessions_on_link(Agents *ag, const LinkEvent *ev, gpointer data);
