/* Path matching for the route table: literal segments and {param} captures. */
#include "manager/api.h"

#include <string.h>

/* Match one pattern against a path; on success fills params (new strings). */
static gboolean match_path(const char *pattern, const char *path, char **params)
{
        const char *p = pattern, *s = path;
        guint n = 0;

        while (*p && *s) {
                if (*p == '{') {
                        const char *pend = strchr(p, '}');
                        const char *send = strchr(s, '/');
                        gsize len = send ? (gsize)(send - s) : strlen(s);
                        if (len == 0 || n >= API_MAX_PARAMS)
                                goto fail;
                        params[n++] = g_uri_unescape_segment(s, s + len, "/");
                        if (!params[n - 1])
                                goto fail;
                        p = pend + 1;
                        s += len;
                        continue;
                }
                if (*p != *s)
                        goto fail;
                p++;
                s++;
        }
        if (*p == '\0' && *s == '\0')
                return TRUE;
fail:
        for (guint i = 0; i < n; i++)
                g_clear_pointer(&params[i], g_free);
        return FALSE;
}

const Route *router_match(const Route *routes, gsize n, const char *method, const char *path,
                          char **params, gboolean *path_known)
{
        *path_known = FALSE;
        for (gsize i = 0; i < n; i++) {
                char *tmp[API_MAX_PARAMS] = {NULL};
                if (!match_path(routes[i].pattern, path, tmp))
                        continue;
                if (g_str_equal(routes[i].method, method)) {
                        memcpy(params, tmp, sizeof(tmp));
                        return &routes[i];
                }
                *path_known = TRUE;
                for (guint k = 0; k < API_MAX_PARAMS; k++)
                        g_free(tmp[k]);
        }
        return NULL;
}
