#include "auth/auth.h"
#include "common/error.h"
#include "common/util.h"

#include <sodium.h>
#include <string.h>

static gboolean cost_params(const char *cost, unsigned long long *ops, size_t *mem)
{
        if (g_str_equal(cost, "interactive")) {
                *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
                *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
        } else if (g_str_equal(cost, "moderate")) {
                *ops = crypto_pwhash_OPSLIMIT_MODERATE;
                *mem = crypto_pwhash_MEMLIMIT_MODERATE;
        } else if (g_str_equal(cost, "sensitive")) {
                *ops = crypto_pwhash_OPSLIMIT_SENSITIVE;
                *mem = crypto_pwhash_MEMLIMIT_SENSITIVE;
        } else if (g_str_equal(cost, "min")) {
                *ops = crypto_pwhash_OPSLIMIT_MIN;
                *mem = 8192;
        } else {
                return FALSE;
        }
        return TRUE;
}

gboolean password_cost_valid(const char *cost)
{
        unsigned long long ops;
        size_t mem;
        return cost && cost_params(cost, &ops, &mem);
}

char *password_hash(const char *password, const char *cost, GError **error)
{
        char out[crypto_pwhash_STRBYTES];
        unsigned long long ops;
        size_t mem;

        if (!cost_params(cost, &ops, &mem)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "unknown password cost '%s'",
                            cost);
                return NULL;
        }
        if (crypto_pwhash_str_alg(out, password, strlen(password), ops, mem,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot hash the password: out of memory");
                return NULL;
        }
        return g_strdup(out);
}

gboolean password_verify(const char *encoded, const char *password)
{
        if (!encoded || !password)
                return FALSE;
        return crypto_pwhash_str_verify(encoded, password, strlen(password)) == 0;
}

const char *password_dummy_hash(void)
{
        static char *dummy;

        if (g_once_init_enter(&dummy)) {
                g_autofree char *pw = util_random_password();
                g_once_init_leave(&dummy, password_hash(pw, "interactive", NULL));
        }
        return dummy;
}

char *token_new(void)
{
        return util_random_token(32);
}

char *token_hash(const char *token)
{
        guchar h[crypto_generichash_BYTES];
        char hex[crypto_generichash_BYTES * 2 + 1];

        crypto_generichash(h, sizeof(h), (const guchar *)token, strlen(token), NULL, 0);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        return g_strdup(hex);
}
