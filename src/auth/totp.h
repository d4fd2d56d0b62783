/* Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), their base32
 * secrets (RFC 4648), and recovery codes. Pure functions: the clock is an argument. */
#pragma once
#include <glib.h>

#define TOTP_STEP 30
#define TOTP_DIGITS 6
#define TOTP_SECRET_BYTES 20
#define TOTP_RECOVERY_CODES 10

/* Base32 without padding, as authenticator apps take it; decode ignores case, spaces and '='. */
char *totp_base32_encode(const guint8 *data, gsize len);
GBytes *totp_base32_decode(const char *text, GError **error);
/* A new random secret, base32. */
char *totp_secret_new(void);
/* The code for the step holding UNIX time NOW (digits: 6 or 8). */
guint32 totp_code(const guint8 *key, gsize key_len, gint64 now, int digits);
/* CODE ("123456") is valid at NOW within one step either side, and its step is after
 * *last_step (a code is used once): then *last_step is that step. */
gboolean totp_verify(const char *secret_b32, const char *code, gint64 now, gint64 *last_step);
/* otpauth:// URI an authenticator app scans (as a QR code). */
char *totp_uri(const char *issuer, const char *account, const char *secret_b32);
/* A recovery code: 10 letters and digits as xxxxx-xxxxx; and its hash as stored. */
char *totp_recovery_new(void);
char *totp_recovery_hash(const char *code);
