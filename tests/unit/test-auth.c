#include "auth/auth.h"
#include "auth/directory.h"
#include "auth/totp.h"
#include "common/error.h"
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

/* RFC 6238 appendix B (SHA-1), and our use of it with a fixed clock. */
static void test_totp(void)
{
        const guint8 *key = (const guint8 *)"12345678901234567890";
        const struct {
                gint64 t;
                guint32 code;
        } vectors[] = {{59, 94287082},         {1111111109, 7081804}, {1111111111, 14050471},
                       {1234567890, 89005924}, {2000000000, 69279037}, {20000000000, 65353130}};
        g_autofree char *b32 = totp_base32_encode(key, 20);
        g_autoptr(GBytes) back = totp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", NULL);
        g_autoptr(GError) error = NULL;
        g_autofree char *uri = NULL;
        gint64 last = 0;
        char code[8];

        for (gsize i = 0; i < G_N_ELEMENTS(vectors); i++)
                g_assert_cmpuint(totp_code(key, 20, vectors[i].t, 8), ==, vectors[i].code);
        g_assert_cmpstr(b32, ==, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        g_assert_nonnull(back);
        g_assert_cmpmem(g_bytes_get_data(back, NULL), g_bytes_get_size(back), key, 20);
        g_assert_null(totp_base32_decode("GEZ1", &error)); /* 1 is not base32 */
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        /* 6 digits at t = 59: 287082; the step before and after are accepted, once each. */
        g_assert_true(totp_verify(b32, "287082", 59, &last));
        g_assert_cmpint(last, ==, 1);
        g_assert_false(totp_verify(b32, "287082", 59, &last)); /* used */
        g_snprintf(code, sizeof(code), "%06u", totp_code(key, 20, 89, 6));
        g_assert_true(totp_verify(b32, code, 61, &last)); /* next step, 28 s early */
        g_snprintf(code, sizeof(code), "%06u", totp_code(key, 20, 1000, 6));
        g_assert_false(totp_verify(b32, code, 2000, &last)); /* far from now */
        g_assert_false(totp_verify(b32, "12345", 2000, &last));
        g_assert_false(totp_verify(b32, "12345a", 2000, &last));
        g_assert_false(totp_verify(b32, "1234567", 2000, &last));
        uri = totp_uri("Atrium", "alice", b32);
        g_assert_cmpstr(uri, ==, "otpauth://totp/Atrium:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                                 "&issuer=Atrium&algorithm=SHA1&digits=6&period=30");
        {
                g_autofree char *r = totp_recovery_new();
                g_autofree char *h1 = totp_recovery_hash(r);
                g_autofree char *up = g_ascii_strup(r, -1);
                g_autofree char *h2 = totp_recovery_hash(up);
                g_assert_cmpuint(strlen(r), ==, 11);
                g_assert_cmpint(r[5], ==, '-');
                g_assert_cmpstr(h1, ==, h2);
        }
}

/* LDAP filter values: escaped per RFC 4515; names with filter syntax refused outright. */
static void test_directory_names(void)
{
        DirectoryConfig c = {.user_filter = "(&(objectClass=inetOrgPerson)(uid=%s))"};
        const char *bad[] = {"*", ")(uid=*", "a\\29", "al*ce", "x(y", "", "a\x01b"};
        g_autofree char *long_name = g_strnfill(257, 'a');
        g_autofree char *f = directory_user_filter(&c, "alice");
        g_autofree char *e = directory_filter_escape("a*b(c)d\\e");

        g_assert_cmpstr(f, ==, "(&(objectClass=inetOrgPerson)(uid=alice))");
        g_assert_cmpstr(e, ==, "a\\2ab\\28c\\29d\\5ce");
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_assert_false(directory_login_valid(bad[i], &error));
                g_assert_nonnull(error);
        }
        g_assert_false(directory_login_valid(long_name, NULL));
        g_assert_true(directory_login_valid("jean-luc.o'neil@corp", NULL));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/auth/password", test_password);
        g_test_add_func("/auth/password-interactive-cost", test_interactive_cost);
        g_test_add_func("/auth/tokens", test_tokens);
        g_test_add_func("/auth/ratelimit", test_ratelimit);
        g_test_add_func("/auth/totp", test_totp);
        g_test_add_func("/auth/directory-names", test_directory_names);
        return g_test_run();
}
