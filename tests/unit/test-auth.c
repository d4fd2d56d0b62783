#include "auth/auth.h"
#include "testutil.h"

#include <string.h>

static void test_password(void)
{
        g_autofree char *h = password_hash("correct horse", "min", NULL);
        g_autofree char *h2 = password_hash("correct horse", "min", NULL);

        g_assert_nonnull(h);
        g_assert_true(g_str_has_prefix(h, "$argon2id$"));
        g_assert_cmpstr(h, !=, h2); /* salted */
        g_assert_true(password_verify(h, "correct horse"));
        g_assert_false(password_verify(h, "correct horsE"));
        g_assert_false(password_verify(h, ""));
        g_assert_false(password_verify(NULL, "x"));
        g_assert_false(password_verify("garbage", "x"));
        g_assert_null(password_hash("x", "cheap", NULL));
        g_assert_true(password_cost_valid("interactive"));
        g_assert_false(password_cost_valid("cheap"));
}

static void test_interactive_cost(void)
{
        g_autofree char *h = password_hash("pw", "interactive", NULL);
        /* libsodium's interactive limits: 64 MiB, 2 passes. */
        g_assert_nonnull(strstr(h, "m=65536,t=2"));
}

static void test_tokens(void)
{
        g_autofree char *t = token_new(), *u = token_new();
        g_autofree char *h1 = token_hash(t), *h2 = token_hash(t), *h3 = token_hash(u);

        g_assert_cmpuint(strlen(t), ==, 43);
        g_assert_cmpstr(h1, ==, h2);
        g_assert_cmpstr(h1, !=, h3);
        g_assert_cmpuint(strlen(h1), ==, 64);
        g_assert_null(strstr(h1, t));
}

static void test_ratelimit(void)
{
        g_autoptr(RateLimiter) rl = ratelimit_new();

        for (int i = 0; i < 3; i++) {
                g_assert_cmpint(ratelimit_retry_after(rl, "u:bob", 3, 60, 1000), ==, 0);
                ratelimit_fail(rl, "u:bob", 1000 + i, 60);
        }
        g_assert_cmpint(ratelimit_retry_after(rl, "u:bob", 3, 60, 1010), ==, 50);
        g_assert_cmpint(ratelimit_retry_after(rl, "u:eve", 3, 60, 1010), ==, 0);
        g_assert_cmpint(ratelimit_retry_after(rl, "u:bob", 3, 60, 1060), ==, 0); /* window over */
        ratelimit_fail(rl, "u:bob", 2000, 60);
        ratelimit_reset(rl, "u:bob");
        g_assert_cmpint(ratelimit_retry_after(rl, "u:bob", 1, 60, 2001), ==, 0);
        g_assert_cmpuint(ratelimit_size(rl), ==, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/auth/password", test_password);
        g_test_add_func("/auth/password-interactive-cost", test_interactive_cost);
        g_test_add_func("/auth/tokens", test_tokens);
        g_test_add_func("/auth/ratelimit", test_ratelimit);
        return g_test_run();
}
