/* The scheduler: see scheduler.h. */
#include "manager/scheduler.h"
#include "common/error.h"

#include <string.h>

gboolean scheduler_policy_from_string(const char *s, SchedPolicy *out)
{
        if (g_strcmp0(s, "spread") == 0)
                *out = SCHED_SPREAD;
        else if (g_strcmp0(s, "pack") == 0)
                *out = SCHED_PACK;
        else
                return FALSE;
        return TRUE;
}

gboolean scheduler_in_hint(const char *hint, const char *name)
{
        g_auto(GStrv) names = NULL;

        if (!hint || !hint[0])
                return TRUE;
        names = g_strsplit_set(hint, ", ", -1);
        for (char **n = names; *n; n++)
                if (**n && g_ascii_strcasecmp(*n, name) == 0)
                        return TRUE;
        return FALSE;
}

/* Memory left after the desktop, in MiB (may be negative: does not fit). */
static gint64 left(const SchedHost *h, const SchedRequest *r)
{
        return (gint64)((double)h->ram_mb * r->overcommit) - h->committed_mb - r->need_mb;
}

/* Why h cannot take it, or NULL. */
static char *refusal(const SchedHost *h, const SchedRequest *r)
{
        if (!h->up)
                return g_strdup_printf("%s is down", h->name);
        if (h->maintenance)
                return g_strdup_printf("%s is in maintenance", h->name);
        if (!h->linked)
                return g_strdup_printf("%s has no link to its agent", h->name);
        if (!scheduler_in_hint(r->hint, h->name))
                return g_strdup_printf("%s is not among the pool's hosts", h->name);
        if (!h->reaches)
                return g_strdup_printf("%s does not reach the desktop's volume", h->name);
        if (left(h, r) < 0)
                return g_strdup_printf("%s has %" G_GINT64_FORMAT " MiB left under overcommit "
                                       "%.2f, the desktop needs %" G_GINT64_FORMAT,
                                       h->name, left(h, r) + r->need_mb, r->overcommit,
                                       r->need_mb);
        return NULL;
}

gint scheduler_place(const SchedHost *hosts, gsize n, const SchedRequest *req, GError **error)
{
        g_autoptr(GString) why = g_string_new(NULL);
        gint best = -1;

        for (gsize i = 0; i < n; i++) {
                const SchedHost *h = &hosts[i], *b = best >= 0 ? &hosts[best] : NULL;
                g_autofree char *no = refusal(h, req);
                gint64 hl, bl;
                gboolean better;
                if (no) {
                        g_string_append_printf(why, "%s%s", why->len ? "; " : "", no);
                        continue;
                }
                if (!b) {
                        best = (gint)i;
                        continue;
                }
                hl = left(h, req);
                bl = left(b, req);
                if (req->policy == SCHED_SPREAD)
                        better = hl > bl || (hl == bl && (h->running < b->running ||
                                                          (h->running == b->running &&
                                                           h->id < b->id)));
                else
                        better = hl < bl || (hl == bl && h->id < b->id);
                if (better)
                        best = (gint)i;
        }
        if (best < 0)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "no host can start the desktop: %s",
                            n ? why->str : "no host has joined");
        return best;
}
