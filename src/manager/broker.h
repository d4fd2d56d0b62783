/* The broker (broker.c): its routes are in api.h; this is what the agent links tell it. */
#pragma once
#include <glib.h>

/* atrium-guest in desktop ID said ready: connects waiting for it go on. Any thread. */
void broker_desktop_ready(gint64 desktop_id);
