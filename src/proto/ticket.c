/* Console tickets: see ticket.h. */
#include "proto/ticket.h"
#include "common/error.h"
#include "common/jsonutil.h"

#include <sodium.h>
#include <string.h>

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

void ticket_keypair(guint8 pk[TICKET_PK_BYTES], guint8 sk[TICKET_SK_BYTES])
{
        crypto_sign_keypair(pk, sk);
}

void ticket_keypair_from_seed(const guint8 seed[32], guint8 pk[TICKET_PK_BYTES],
                              guint8 sk[TICKET_SK_BYTES])
{
        crypto_sign_seed_keypair(pk, sk, seed);
}

void ticket_new_nonce(Ticket *t)
{
        guint8 n[TICKET_NONCE_BYTES];

        randombytes_buf(n, sizeof(n));
        sodium_bin2base64(t->nonce, sizeof(t->nonce), n, sizeof(n), B64);
}

static gboolean bad(GError **error, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "not a valid console ticket: %s",
                    what);
        return FALSE;
}

static gboolean host_ok(const char *h)
{
        gsize n = strlen(h);

        if (n == 0 || n > 253)
                return FALSE;
        for (const char *c = h; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != ':')
                        return FALSE;
        return TRUE;
}

static gboolean nonce_ok(const char *n)
{
        guint8 bin[TICKET_NONCE_BYTES];
        size_t len = 0;

        return strlen(n) == 22 &&
               sodium_base642bin(bin, sizeof(bin), n, strlen(n), NULL, &len, NULL, B64) == 0 &&
               len == sizeof(bin);
}

/* The members' rules, shared by signing and verifying. */
static gboolean fields_ok(const Ticket *t, GError **error)
{
        if (!host_ok(t->host))
                return bad(error, "host");
        if (t->port == 0)
                return bad(error, "port");
        if (!g_str_equal(t->proto, "spice") && !g_str_equal(t->proto, "vnc"))
                return bad(error, "proto");
        if (t->desktop < 1)
                return bad(error, "desktop");
        if (t->user < 0)
                return bad(error, "user");
        if (t->exp < 1)
                return bad(error, "exp");
        if (!nonce_ok(t->nonce))
                return bad(error, "nonce");
        return TRUE;
}

static char *b64(const guint8 *bin, gsize len)
{
        gsize cap = sodium_base64_encoded_len(len, B64);
        char *out = g_malloc(cap);

        sodium_bin2base64(out, cap, bin, len, B64);
        return out;
}

char *ticket_sign(const Ticket *t, const guint8 sk[TICKET_SK_BYTES], GError **error)
{
        g_autofree char *json = NULL, *payload = NULL, *signed_part = NULL, *sig_text = NULL;
        guint8 sig[crypto_sign_BYTES];

        if (!fields_ok(t, error))
                return NULL;
        json = g_strdup_printf("{\"v\":1,\"host\":\"%s\",\"port\":%u,\"proto\":\"%s\","
                               "\"desktop\":%" G_GINT64_FORMAT ",\"user\":%" G_GINT64_FORMAT
                               ",\"exp\":%" G_GINT64_FORMAT ",\"nonce\":\"%s\"}",
                               t->host, t->port, t->proto, t->desktop, t->user, t->exp, t->nonce);
        payload = b64((const guint8 *)json, strlen(json));
        signed_part = g_strconcat(TICKET_PREFIX, payload, NULL);
        crypto_sign_detached(sig, NULL, (const guint8 *)signed_part, strlen(signed_part), sk);
        sig_text = b64(sig, sizeof(sig));
        return g_strconcat(signed_part, ".", sig_text, NULL);
}

static gboolean get_str(JsonObject *o, const char *k, char *out, gsize cap)
{
        JsonNode *n = json_object_get_member(o, k);

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return FALSE;
        return g_strlcpy(out, json_node_get_string(n), cap) < cap;
}

static gboolean get_int(JsonObject *o, const char *k, gint64 *out)
{
        JsonNode *n = json_object_get_member(o, k);

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
                return FALSE;
        *out = json_node_get_int(n);
        return TRUE;
}

gboolean ticket_check_expiry(const Ticket *t, gint64 now, GError **error)
{
        if (now >= t->exp) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "console ticket refused: it expired %" G_GINT64_FORMAT " s ago",
                            now - t->exp);
                return FALSE;
        }
        return TRUE;
}

gboolean ticket_verify(const char *text, gsize len, const guint8 pk[TICKET_PK_BYTES], gint64 now,
                       Ticket *out, GError **error)
{
        g_autofree char *copy = NULL;
        g_autofree guint8 *json = NULL;
        g_autoptr(JsonNode) root = NULL;
        guint8 sig[crypto_sign_BYTES];
        const char *dot;
        size_t sig_len = 0, json_len = 0;
        gsize signed_len;
        JsonObject *o;
        Ticket t = {0};
        gint64 v, port;

        if (len > TICKET_MAX || len < strlen(TICKET_PREFIX) ||
            memcmp(text, TICKET_PREFIX, strlen(TICKET_PREFIX)) != 0)
                return bad(error, "it does not start with '" TICKET_PREFIX "'");
        if (memchr(text, '\0', len))
                return bad(error, "NUL byte");
        copy = g_strndup(text, len);
        dot = strchr(copy + strlen(TICKET_PREFIX), '.');
        if (!dot || strchr(dot + 1, '.'))
                return bad(error, "it has not three parts");
        signed_len = dot - copy;
        if (sodium_base642bin(sig, sizeof(sig), dot + 1, strlen(dot + 1), NULL, &sig_len, NULL,
                              B64) != 0 ||
            sig_len != sizeof(sig))
                return bad(error, "signature encoding");
        { /* one text per ticket: base64 with stray low bits decodes the same, refuse it */
                g_autofree char *again = b64(sig, sizeof(sig));
                if (!g_str_equal(again, dot + 1))
                        return bad(error, "signature encoding");
        }
        if (crypto_sign_verify_detached(sig, (const guint8 *)copy, signed_len, pk) != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "console ticket refused: its signature does not verify");
                return FALSE;
        }
        json = g_malloc(signed_len);
        if (sodium_base642bin(json, signed_len, copy + strlen(TICKET_PREFIX),
                              signed_len - strlen(TICKET_PREFIX), NULL, &json_len, NULL, B64) != 0)
                return bad(error, "payload encoding");
        {
                g_autofree char *again = b64(json, json_len);
                if (strlen(again) != signed_len - strlen(TICKET_PREFIX) ||
                    memcmp(again, copy + strlen(TICKET_PREFIX), strlen(again)) != 0)
                        return bad(error, "payload encoding");
        }
        root = json_parse_body((const char *)json, json_len, 2, NULL);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return bad(error, "payload is not a JSON object");
        o = json_node_get_object(root);
        if (json_object_get_size(o) != 8 || !get_int(o, "v", &v) || v != 1)
                return bad(error, "payload version or members");
        if (!get_str(o, "host", t.host, sizeof(t.host)) || !get_int(o, "port", &port) || port < 1 ||
            port > 65535 || !get_str(o, "proto", t.proto, sizeof(t.proto)) ||
            !get_int(o, "desktop", &t.desktop) || !get_int(o, "user", &t.user) ||
            !get_int(o, "exp", &t.exp) || !get_str(o, "nonce", t.nonce, sizeof(t.nonce)))
                return bad(error, "payload members");
        t.port = (guint16)port;
        if (!fields_ok(&t, error))
                return FALSE;
        if (!ticket_check_expiry(&t, now, error))
                return FALSE;
        if (out)
                *out = t;
        return TRUE;
}

/* ---- replay cache --------------------------------------------------------------------- */

typedef struct {
        gint64 exp;
        char *peer;
} ReplayEntry;

struct _TicketReplay {
        GHashTable *used; /* nonce -> ReplayEntry */
        guint max;
};

static void replay_entry_free(ReplayEntry *e)
{
        g_free(e->peer);
        g_free(e);
}

TicketReplay *ticket_replay_new(guint max_entries)
{
        TicketReplay *r = g_new0(TicketReplay, 1);

        r->used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)replay_entry_free);
        r->max = MAX(max_entries, 1);
        return r;
}

void ticket_replay_free(TicketReplay *r)
{
        if (!r)
                return;
        g_hash_table_destroy(r->used);
        g_free(r);
}

static gboolean replay_expired(gpointer key, gpointer value, gpointer now)
{
        return ((ReplayEntry *)value)->exp <= *(gint64 *)now;
}

gboolean ticket_replay_use(TicketReplay *r, const Ticket *t, const char *peer, gint64 now,
                           gboolean *first, GError **error)
{
        ReplayEntry *e = g_hash_table_lookup(r->used, t->nonce);

        *first = FALSE;
        if (e && e->exp > now) {
                if (g_str_equal(e->peer, peer))
                        return TRUE;
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this console ticket was already used by another client");
                return FALSE;
        }
        if (g_hash_table_size(r->used) >= r->max)
                g_hash_table_foreach_remove(r->used, replay_expired, &now);
        if (g_hash_table_size(r->used) >= r->max) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "too many console tickets in use (%u); try again shortly", r->max);
                return FALSE;
        }
        e = g_new0(ReplayEntry, 1);
        e->exp = t->exp;
        e->peer = g_strdup(peer);
        g_hash_table_replace(r->used, g_strdup(t->nonce), e);
        *first = TRUE;
        return TRUE;
}

guint ticket_replay_size(TicketReplay *r)
{
        return g_hash_table_size(r->used);
}
