/* Structured logging: one line per event on stderr, or the journal when started by systemd.
 * Every module logs through GLib (g_info, g_warning, ...) with its own G_LOG_DOMAIN. */
#pragma once
#include <glib.h>

typedef enum { LOG_TARGET_AUTO, LOG_TARGET_STDERR, LOG_TARGET_JOURNAL } LogTarget;

/* level: "debug", "info", "warning" or "error". */
gboolean log_setup(const char *level, const char *target, GError **error);
gboolean log_set_level(const char *level, GError **error);
/* Format one record as a single line (newlines in the message escaped); exposed for tests. */
char *log_format_line(GLogLevelFlags level, const char *domain, const char *message);
