/* Local accounts: argon2id password hashes, opaque bearer tokens (only their hash is stored),
 * and login rate limiting. */
#pragma once
#include <glib.h>

/* argon2id cost: "interactive" (default), "moderate", "sensitive", or "min" (tests). */
gboolean password_cost_valid(const char *cost);
/* The encoded argon2id string (includes salt and parameters), or NULL on out-of-memory. */
char *password_hash(const char *password, const char *cost, GError **error);
/* Constant-time check of a password against an encoded hash; FALSE for a NULL hash. */
gboolean password_verify(const char *encoded, const char *password);
/* A hash of a random password, verified against to spend the same time when a user is unknown. */
const char *password_dummy_hash(void);

/* A new bearer token (43 url-safe chars, 256 bits) and the hash that is stored. */
char *token_new(void);
char *token_hash(const char *token);

typedef struct _RateLimiter RateLimiter;
RateLimiter *ratelimit_new(void);
void ratelimit_free(RateLimiter *rl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RateLimiter, ratelimit_free)
/* Seconds to wait before KEY may try again (0: go ahead), given at most max failures per
 * window seconds. now is in seconds (monotonic or wall, consistently). */
gint64 ratelimit_retry_after(RateLimiter *rl, const char *key, guint max, gint64 window,
                             gint64 now);
void ratelimit_fail(RateLimiter *rl, const char *key, gint64 now, gint64 window);
void ratelimit_reset(RateLimiter *rl, const char *key);
guint ratelimit_size(RateLimiter *rl);
