/* Failed-login counters: per key (user name or address), a count and the start of its window.
 * Entries whose window has passed are dropped as they are met, and all of them when the table
 * grows past a bound, so an attacker cycling names cannot grow it without limit. */
#include "auth/auth.h"

#define RATELIMIT_MAX_KEYS 100000

typedef struct {
        guint failures;
        gint64 window_start;
        gint64 window;
} Counter;

struct _RateLimiter {
        GMutex lock; /* used from every HTTP worker thread */
        GHashTable *counters;
};

RateLimiter *ratelimit_new(void)
{
        RateLimiter *rl = g_new0(RateLimiter, 1);
        g_mutex_init(&rl->lock);
        rl->counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        return rl;
}

void ratelimit_free(RateLimiter *rl)
{
        if (!rl)
                return;
        g_hash_table_unref(rl->counters);
        g_mutex_clear(&rl->lock);
        g_free(rl);
}

static gboolean expired(gpointer key, gpointer value, gpointer user_data)
{
        Counter *c = value;
        return c->window_start + c->window <= *(gint64 *)user_data;
}

gint64 ratelimit_retry_after(RateLimiter *rl, const char *key, guint max, gint64 window, gint64 now)
{
        Counter *c = g_hash_table_lookup(rl->counters, key);

        if (!c)
                return 0;
        if (c->window_start + window <= now) {
                g_hash_table_remove(rl->counters, key);
                return 0;
        }
        return c->failures >= max ? c->window_start + window - now : 0;
}

void ratelimit_fail(RateLimiter *rl, const char *key, gint64 now, gint64 window)
{
        G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&rl->lock);
        Counter *c = g_hash_table_lookup(rl->counters, key);

        if (!c || c->window_start + window <= now) {
                if (g_hash_table_size(rl->counters) >= RATELIMIT_MAX_KEYS)
                        g_hash_table_foreach_remove(rl->counters, expired, &now);
                c = g_new0(Counter, 1);
                c->window_start = now;
                c->window = window;
                g_hash_table_insert(rl->counters, g_strdup(key), c);
        }
        c->failures++;
}

void ratelimit_reset(RateLimiter *rl, const char *key)
{
        G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&rl->lock);
        g_hash_table_remove(rl->counters, key);
}

guint ratelimit_size(RateLimiter *rl)
{
        G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&rl->lock);
        return g_hash_table_size(rl->counters);
}
