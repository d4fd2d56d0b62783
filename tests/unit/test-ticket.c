/* Console tickets (proto/ticket.h): signed with a fixed test key from tests/data/tickets.in
 * against the golden tests/data/tickets.out, then every way of breaking one. */
#include "common/error.h"
#include "proto/ticket.h"
#include "testutil.h"

#include <sodium.h>
#include <string.h>

static void keys(guint8 pk[TICKET_PK_BYTES], guint8 sk[TICKET_SK_BYTES], guint8 first)
{
        guint8 seed[32];

        for (int i = 0; i < 32; i++)
                seed[i] = first + i;
        ticket_keypair_from_seed(seed, pk, sk);
}

static void verdict(GString *out, const char *what, const char *text, const guint8 *pk,
                    gint64 now)
{
        g_autoptr(GError) error = NULL;
        Ticket t;

        if (ticket_verify(text, strlen(text), pk, now, &t, &error))
                g_string_append_printf(out, "  %s: ok %s:%u %s desktop %" G_GINT64_FORMAT
                                            " user %" G_GINT64_FORMAT "\n",
                                       what, t.host, t.port, t.proto, t.desktop, t.user);
        else
                g_string_append_printf(out, "  %s: %s: %s\n", what,
                                       atrium_error_code_to_string(error->code), error->message);
}

/* The payload of a ticket decoded, edited (from -> to), encoded again, old signature kept. */
static char *tamper(const char *ticket, const char *from, const char *to)
{
        g_auto(GStrv) parts = g_strsplit(ticket, ".", 3);
        guint8 json[1024];
        size_t len = 0;
        g_autofree char *text = NULL, *edited = NULL;
        char enc[2048];
        GString *s;

        g_assert_cmpint(sodium_base642bin(json, sizeof(json), parts[1], strlen(parts[1]), NULL,
                                          &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                        ==, 0);
        text = g_strndup((const char *)json, len);
        s = g_string_new(text);
        g_string_replace(s, from, to, 1);
        edited = g_string_free(s, FALSE);
        sodium_bin2base64(enc, sizeof(enc), (const guint8 *)edited, strlen(edited),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return g_strdup_printf("%s.%s.%s", parts[0], enc, parts[2]);
}

static void test_golden(void)
{
        g_autofree char *in_path = testutil_source_path("tests/data/tickets.in");
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GString) out = g_string_new(NULL);
        guint8 pk[TICKET_PK_BYTES], sk[TICKET_SK_BYTES], pk2[TICKET_PK_BYTES],
                sk2[TICKET_SK_BYTES];

        g_assert_cmpint(sodium_init(), >=, 0);
        keys(pk, sk, 1);
        keys(pk2, sk2, 100);
        g_assert_true(g_file_get_contents(in_path, &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) f = NULL;
                g_autoptr(GError) error = NULL;
                g_autofree char *ticket = NULL;
                Ticket t = {0};
                if (!**l || **l == '#')
                        continue;
                f = g_strsplit(*l, " ", 7);
                g_assert_cmpuint(g_strv_length(f), ==, 7);
                g_strlcpy(t.host, f[0], sizeof(t.host));
                t.port = (guint16)g_ascii_strtoull(f[1], NULL, 10);
                g_strlcpy(t.proto, f[2], sizeof(t.proto));
                t.desktop = g_ascii_strtoll(f[3], NULL, 10);
                t.user = g_ascii_strtoll(f[4], NULL, 10);
                t.exp = g_ascii_strtoll(f[5], NULL, 10);
                g_strlcpy(t.nonce, f[6], sizeof(t.nonce));
                ticket = ticket_sign(&t, sk, &error);
                g_string_append_printf(out, "%s\n", *l);
                if (!ticket) {
                        g_string_append_printf(out, "  sign: %s\n", error->message);
                        continue;
                }
                g_string_append_printf(out, "  = %s\n", ticket);
                verdict(out, "verify", ticket, pk, t.exp - 1);
                verdict(out, "at expiry", ticket, pk, t.exp);
                verdict(out, "other key", ticket, pk2, t.exp - 1);
                {
                        g_autofree char *forged = tamper(ticket, t.host, "10.6.6.6");
                        g_autofree char *later = tamper(ticket, "\"exp\":", "\"exp\":9");
                        g_autofree char *cut = g_strndup(ticket, strlen(ticket) - 3);
                        g_autofree char *v2 = g_strdup(ticket);
                        v2[3] = '2';
                        verdict(out, "altered target", forged, pk, t.exp - 1);
                        verdict(out, "altered expiry", later, pk, t.exp - 1);
                        verdict(out, "truncated", cut, pk, t.exp - 1);
                        verdict(out, "version 2", v2, pk, t.exp - 1);
                }
        }
        verdict(out, "empty", "", pk, 0);
        verdict(out, "prefix only", "atk1.", pk, 0);
        verdict(out, "two parts", "atk1.e30", pk, 0);
        testutil_golden("tickets.out", out->str);
}

/* Fresh nonces are unique, and a ticket made with one verifies. */
static void test_fresh(void)
{
        guint8 pk[TICKET_PK_BYTES], sk[TICKET_SK_BYTES];
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        Ticket t = {.port = 5900, .desktop = 1, .user = 2, .exp = 2000000000};

        ticket_keypair(pk, sk);
        g_strlcpy(t.host, "127.0.0.1", sizeof(t.host));
        g_strlcpy(t.proto, "spice", sizeof(t.proto));
        for (int i = 0; i < 1000; i++) {
                ticket_new_nonce(&t);
                g_assert_false(g_hash_table_contains(seen, t.nonce));
                g_hash_table_add(seen, g_strdup(t.nonce));
        }
        {
                g_autofree char *s = ticket_sign(&t, sk, NULL);
                Ticket back;
                g_assert_true(ticket_verify(s, strlen(s), pk, 1000, &back, NULL));
                g_assert_cmpstr(back.nonce, ==, t.nonce);
        }
}

/* Single use: the first client binds the ticket; its further channels pass until expiry;
 * another client is refused; expired entries make room; a full cache refuses. */
static void test_replay(void)
{
        g_autoptr(TicketReplay) r = ticket_replay_new(2);
        Ticket a = {.exp = 1000}, b = {.exp = 1000}, c = {.exp = 2000};
        gboolean first = FALSE;
        g_autoptr(GError) e = NULL;

        g_strlcpy(a.nonce, "nonce-a", sizeof(a.nonce));
        g_strlcpy(b.nonce, "nonce-b", sizeof(b.nonce));
        g_strlcpy(c.nonce, "nonce-c", sizeof(c.nonce));
        g_assert_true(ticket_replay_use(r, &a, "10.0.0.7", 900, &first, NULL));
        g_assert_true(first);
        g_assert_true(ticket_replay_use(r, &a, "10.0.0.7", 901, &first, NULL));
        g_assert_false(first); /* a further channel of the same client */
        g_assert_false(ticket_replay_use(r, &a, "10.0.0.8", 902, &first, &e));
        g_assert_error(e, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED);
        g_clear_error(&e);
        g_assert_true(ticket_replay_use(r, &b, "10.0.0.8", 903, &first, NULL));
        g_assert_false(ticket_replay_use(r, &c, "10.0.0.9", 904, &first, &e)); /* full */
        g_assert_error(e, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE);
        g_clear_error(&e);
        g_assert_true(ticket_replay_use(r, &c, "10.0.0.9", 1000, &first, NULL)); /* a, b expired */
        g_assert_cmpuint(ticket_replay_size(r), ==, 1);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/ticket/golden", test_golden);
        g_test_add_func("/ticket/fresh", test_fresh);
        g_test_add_func("/ticket/replay", test_replay);
        return g_test_run();
}
