#include "proto/naming.h"
#include "proto/agentproto.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

/* Finds the placeholder: its start, its length and its width (0: no padding). */
static gboolean placeholder(const char *p, const char **at, gsize *len, guint *width)
{
        const char *s = strstr(p, "{n");

        if (!s)
                return FALSE;
        *at = s;
        if (s[2] == '}') {
                *len = 3;
                *width = 0;
                return TRUE;
        }
        if (s[2] == ':' && s[3] >= '1' && s[3] <= '6' && s[4] == '}') {
                *len = 5;
                *width = s[3] - '0';
                return TRUE;
        }
        *len = 0;
        return TRUE; /* a malformed one */
}

gboolean pool_pattern_valid(const char *pattern, GError **error)
{
        const char *at, *again;
        gsize len, len2;
        guint width, w2;
        g_autofree char *sample = NULL;
        g_autoptr(GError) local = NULL;

        if (!pattern || strlen(pattern) > POOL_PATTERN_MAX) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a name pattern has 1 to %d characters", POOL_PATTERN_MAX);
                return FALSE;
        }
        if (!placeholder(pattern, &at, &len, &width) || len == 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a name pattern needs one number placeholder, {n} or {n:3} (zero-"
                            "padded), or every desktop would get the same name");
                return FALSE;
        }
        if (placeholder(at + len, &again, &len2, &w2) || strchr(at + len, '{') ||
            memchr(pattern, '{', at - pattern) || strchr(pattern, '}') != at + len - 1) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a name pattern has exactly one placeholder and no other braces");
                return FALSE;
        }
        sample = pool_desktop_name(pattern, 999999);
        if (!util_name_valid(sample, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the pattern makes names like '%s', which are not valid: %s", sample,
                            local->message);
                return FALSE;
        }
        return TRUE;
}

char *pool_desktop_name(const char *pattern, guint n)
{
        const char *at;
        gsize len;
        guint width;

        if (!placeholder(pattern, &at, &len, &width) || len == 0)
                return g_strdup(pattern);
        return g_strdup_printf("%.*s%0*u%s", (int)(at - pattern), pattern, (int)width, n,
                               at + len);
}

char *pool_default_pattern(const char *pool)
{
        return g_strdup_printf("%s-{n}", pool);
}

char *desktop_overlay_name(const char *installation, gint64 desktop_id)
{
        g_autofree char *domain = agent_domain_name(installation, "desktop", desktop_id);

        return g_strconcat(domain, ".qcow2", NULL);
}

char *desktop_overlay_path(const char *volume_path, const char *overlay)
{
        g_autofree char *dir = g_canonicalize_filename(volume_path, "/");

        return g_build_filename(dir, overlay, NULL);
}
