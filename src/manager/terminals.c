/* Terminals (thin clients): their keys.
 *
 * A terminal's key is not stored: it is HMAC(K, "atrium-terminal:ID:VERSION") in base64url,
 * with K derived from the manager's ticket secret (state_dir/ticket.key). The row keeps only
 * key_version; issuing a new key bumps it, so the older key stops working. Verifying costs one
 * HMAC and a constant-time compare. Replacing ticket.key invalidates every terminal key. */
#define G_LOG_DOMAIN "terminals"

#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/api.h"
#include "manager/rows.h"
#include "manager/terminals.h"

#include <sodium.h>
#include <string.h>

static void derive(Manager *mgr, gint64 id, gint64 version, char *out, gsize cap)
{
        guint8 k[crypto_auth_KEYBYTES], mac[crypto_auth_BYTES];
        g_autofree char *msg = g_strdup_printf(
                "atrium-terminal:%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, id, version);

        crypto_generichash(k, sizeof(k), (const guint8 *)"atrium terminal keys v1", 23,
                           mgr->ticket_sk, 32);
        crypto_auth(mac, (const guint8 *)msg, strlen(msg), k);
        sodium_bin2base64(out, cap, mac, sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(k, sizeof(k));
}

JsonObject *terminals_verify(Manager *mgr, Store *st, const char *name, const char *key,
                             GError **error)
{
        g_autoptr(JsonObject) row = NULL;
        char want[96];
        gint64 version;

        if (!name || !name[0] || !key || !key[0] || strlen(key) >= sizeof(want))
                goto refused;
        row = store_get(st, resource_by_kind("terminal"), name, 0, NULL);
        if (!row || (version = row_int(row, "key_version")) <= 0)
                goto refused;
        derive(mgr, row_int(row, "id"), version, want, sizeof(want));
        if (strlen(key) != strlen(want) || sodium_memcmp(key, want, strlen(want)) != 0)
                goto refused;
        return g_steal_pointer(&row);
refused:
        /* the same answer for an unknown terminal and a wrong key */
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                    "terminal '%s' is not registered, or its key is wrong", name ? name : "");
        return NULL;
}

void terminals_seen(Store *st, JsonObject *terminal)
{
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *when = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");

        json_object_set_string_member(patch, "last_seen", when);
        upd = store_update_id(st, resource_by_kind("terminal"), row_int(terminal, "id"), patch,
                              NULL, NULL);
}

/* POST /terminals/{id}/key: a new key, shown once; the older one stops working. */
void api_terminal_key(ApiRequest *req)
{
        const Resource *res = resource_by_kind("terminal");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row = store_get(req->store, res, req->params[0], 0, &error);
        g_autoptr(JsonObject) patch = NULL, upd = NULL;
        char key[96];
        gint64 version;
        JsonObject *reply;

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        version = row_int(row, "key_version") + 1;
        patch = json_object_new();
        json_object_set_int_member(patch, "key_version", version);
        upd = store_update_id(req->store, res, row_id(row), patch, &req->actor, &error);
        if (!upd) {
                api_reply_error(req, error);
                return;
        }
        derive(req->mgr, row_int(row, "id"), version, key, sizeof(key));
        store_event_add(req->store, &req->actor, "terminal_key", "terminal", row_int(row, "id"),
                        row_str(row, "name"),
                        "a new key was issued (the older one no longer works)", NULL);
        reply = json_object_new();
        json_object_set_string_member(reply, "terminal", row_str(row, "name"));
        json_object_set_int_member(reply, "key_version", version);
        json_object_set_string_member(reply, "key", key);
        sodium_memzero(key, sizeof(key));
        api_reply_object(req, 201, reply);
}
