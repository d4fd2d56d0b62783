/* What the manager does about what hosts report (a LinkListener, registered at construction):
 * a domain of ours whose object is gone is destroyed and undefined, with an event; a desktop
 * whose atrium-guest says ready under another host name (the template's, at its first boot)
 * is given its own name. */
#pragma once
#include "manager/agentlink.h"

void hostsync_on_link(Agents *ag, const LinkEvent *ev, gpointer data);
