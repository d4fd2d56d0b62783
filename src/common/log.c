#include "common/log.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static GLogLevelFlags log_threshold = G_LOG_LEVEL_INFO;
static LogTarget log_target = LOG_TARGET_STDERR;

static const struct {
        const char *name;
        GLogLevelFlags level;
} levels[] = {
        {"debug", G_LOG_LEVEL_DEBUG},
        {"info", G_LOG_LEVEL_INFO},
        {"warning", G_LOG_LEVEL_WARNING},
        {"error", G_LOG_LEVEL_CRITICAL},
};

static const char *level_name(GLogLevelFlags l)
{
        if (l & G_LOG_LEVEL_ERROR)
                return "fatal";
        if (l & G_LOG_LEVEL_CRITICAL)
                return "error";
        if (l & G_LOG_LEVEL_WARNING)
                return "warning";
        if (l & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
                return "info";
        return "debug";
}

/* Lower number = more severe, like syslog. */
static int level_rank(GLogLevelFlags l)
{
        if (l & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
                return 0;
        if (l & G_LOG_LEVEL_WARNING)
                return 1;
        if (l & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
                return 2;
        return 3;
}

char *log_format_line(GLogLevelFlags level, const char *domain, const char *message)
{
        g_autofree char *now = NULL;
        g_autoptr(GDateTime) dt = g_date_time_new_now_utc();
        GString *s = g_string_new(NULL);

        now = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S.%fZ");
        g_string_append_printf(s, "%s %s %s: ", now, level_name(level), domain ? domain : "atrium");
        for (const char *p = message ? message : ""; *p; p++) {
                if (*p == '\n')
                        g_string_append(s, "\\n");
                else if (*p == '\r')
                        g_string_append(s, "\\r");
                else
                        g_string_append_c(s, *p);
        }
        return g_string_free(s, FALSE);
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer user_data)
{
        const char *domain = NULL, *message = NULL;
        g_autofree char *line = NULL;

        if (level_rank(level) > level_rank(log_threshold))
                return G_LOG_WRITER_HANDLED;
        if (log_target == LOG_TARGET_JOURNAL &&
            g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
                return G_LOG_WRITER_HANDLED;
        for (gsize i = 0; i < n_fields; i++) {
                if (g_str_equal(fields[i].key, "GLIB_DOMAIN"))
                        domain = fields[i].value;
                else if (g_str_equal(fields[i].key, "MESSAGE"))
                        message = fields[i].value;
        }
        line = log_format_line(level, domain, message);
        fprintf(stderr, "%s\n", line);
        fflush(stderr);
        return G_LOG_WRITER_HANDLED;
}

gboolean log_set_level(const char *level, GError **error)
{
        for (gsize i = 0; i < G_N_ELEMENTS(levels); i++) {
                if (g_str_equal(levels[i].name, level)) {
                        log_threshold = levels[i].level;
                        return TRUE;
                }
        }
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                    "unknown log level '%s' (use debug, info, warning or error)", level);
        return FALSE;
}

gboolean log_setup(const char *level, const char *target, GError **error)
{
        if (!log_set_level(level, error))
                return FALSE;
        if (g_str_equal(target, "stderr"))
                log_target = LOG_TARGET_STDERR;
        else if (g_str_equal(target, "journal"))
                log_target = LOG_TARGET_JOURNAL;
        else if (g_str_equal(target, "auto"))
                log_target = g_log_writer_is_journald(STDERR_FILENO) ? LOG_TARGET_JOURNAL
                                                                     : LOG_TARGET_STDERR;
        else {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unknown log target '%s' (use auto, stderr or journal)", target);
                return FALSE;
        }
        g_log_set_writer_func(writer, NULL, NULL);
        return TRUE;
}
