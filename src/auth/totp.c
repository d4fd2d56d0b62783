/* RFC 6238 TOTP and RFC 4648 base32: see totp.h. */
#include "auth/totp.h"
#include "common/error.h"

#include <sodium.h>
#include <string.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

char *totp_base32_encode(const guint8 *data, gsize len)
{
        GString *out = g_string_sized_new(len * 8 / 5 + 2);
        guint32 buf = 0;
        int bits = 0;

        for (gsize i = 0; i < len; i++) {
                buf = (buf << 8) | data[i];
                bits += 8;
                while (bits >= 5) {
                        g_string_append_c(out, b32[(buf >> (bits - 5)) & 31]);
                        bits -= 5;
                }
        }
        if (bits > 0)
                g_string_append_c(out, b32[(buf << (5 - bits)) & 31]);
        return g_string_free(out, FALSE);
}

GBytes *totp_base32_decode(const char *text, GError **error)
{
        GByteArray *out = g_byte_array_new();
        guint32 buf = 0;
        int bits = 0;

        for (const char *p = text; *p; p++) {
                const char *at;
                char c = g_ascii_toupper(*p);
                if (c == ' ' || c == '=' || c == '-')
                        continue;
                if (!c || !(at = strchr(b32, c))) {
                        g_byte_array_unref(out);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "not a base32 secret: letters A-Z and digits 2-7 only");
                        return NULL;
                }
                buf = (buf << 5) | (guint32)(at - b32);
                bits += 5;
                if (bits >= 8) {
                        guint8 byte = (buf >> (bits - 8)) & 0xff;
                        g_byte_array_append(out, &byte, 1);
                        bits -= 8;
                }
        }
        return g_byte_array_free_to_bytes(out);
}

char *totp_secret_new(void)
{
        guint8 key[TOTP_SECRET_BYTES];

        randombytes_buf(key, sizeof(key));
        return totp_base32_encode(key, sizeof(key));
}

guint32 totp_code(const guint8 *key, gsize key_len, gint64 now, int digits)
{
        guint64 step = (guint64)(now / TOTP_STEP);
        guint8 msg[8], mac[20];
        gsize mac_len = sizeof(mac);
        g_autoptr(GHmac) h = g_hmac_new(G_CHECKSUM_SHA1, key, key_len);
        guint32 bin, mod = 1;
        int off;

        for (int i = 7; i >= 0; i--) {
                msg[i] = step & 0xff;
                step >>= 8;
        }
        g_hmac_update(h, msg, sizeof(msg));
        g_hmac_get_digest(h, mac, &mac_len);
        off = mac[19] & 0x0f;
        bin = ((guint32)(mac[off] & 0x7f) << 24) | ((guint32)mac[off + 1] << 16) |
              ((guint32)mac[off + 2] << 8) | mac[off + 3];
        for (int i = 0; i < digits; i++)
                mod *= 10;
        return bin % mod;
}

gboolean totp_verify(const char *secret_b32, const char *code, gint64 now, gint64 *last_step)
{
        g_autoptr(GBytes) key = totp_base32_decode(secret_b32, NULL);
        guint64 want;
        gsize len;
        const guint8 *k;

        if (!key || strlen(code) != TOTP_DIGITS)
                return FALSE;
        for (const char *p = code; *p; p++)
                if (!g_ascii_isdigit(*p))
                        return FALSE;
        want = g_ascii_strtoull(code, NULL, 10);
        k = g_bytes_get_data(key, &len);
        for (int d = -1; d <= 1; d++) {
                gint64 t = now + (gint64)d * TOTP_STEP;
                gint64 step = t / TOTP_STEP;
                if (step <= *last_step)
                        continue;
                if (totp_code(k, len, t, TOTP_DIGITS) == want) {
                        *last_step = step;
                        return TRUE;
                }
        }
        return FALSE;
}

char *totp_uri(const char *issuer, const char *account, const char *secret_b32)
{
        g_autofree char *i = g_uri_escape_string(issuer, NULL, FALSE);
        g_autofree char *a = g_uri_escape_string(account, NULL, FALSE);

        return g_strdup_printf("otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d"
                               "&period=%d",
                               i, a, secret_b32, i, TOTP_DIGITS, TOTP_STEP);
}

char *totp_recovery_new(void)
{
        static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
        char out[12];

        for (int i = 0; i < 11; i++)
                out[i] = i == 5 ? '-' : alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
        out[11] = '\0';
        return g_strdup(out);
}

char *totp_recovery_hash(const char *code)
{
        g_autofree char *norm = g_ascii_strdown(code, -1);

        /* 50 bits of randomness: a plain hash is enough (no guessing offline in reach). */
        return g_compute_checksum_for_string(G_CHECKSUM_SHA256, norm, -1);
}
