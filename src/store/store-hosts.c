/* Hosts: join tokens issued, an agent spending one to create its host, its credential. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

/* ---- hosts joining ----------------------------------------------------------------------- */

gboolean store_join_token_insert(Store *s, const char *hash, gint64 expires_at, const Actor *actor,
                                 gint64 *id, GError **error)
{
        g_autofree char *now = util_now_iso();
        SqlStmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        q = sqs_prep(
                s,
                "INSERT INTO join_tokens (hash, expires_at, created_by, created_at, updated_at) "
                "VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
                error);
        if (!q)
                goto fail;
        sql_bind_text(q, 1, hash);
        sql_bind_int(q, 2, expires_at);
        sql_bind_text(q, 3, actor->name);
        sql_bind_text(q, 4, now);
        if (!(*id = sqs_step_id(s, q, error, "issuing a join token")))
                goto fail;
        if (!sqs_event_insert(s, actor, "create", "join-token", *id, "", "", error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

/* The token must exist, be unused and unexpired; the host name must be free. The token is
 * spent, the host created with its facts and credential, and the event written: all or none. */
static JsonObject *join_tx(Store *s, const char *token_hash, gint64 now, JsonObject *facts,
                           const char *credential_hash, const Actor *actor, GError **error)
{
        const Resource *hosts = resource_by_kind("host");
        const char *name = json_object_get_string_member(facts, "name");
        g_autofree char *now_iso = util_now_iso();
        g_autoptr(JsonObject) created = NULL;
        SqlStmt *q = sqs_prep(s, "SELECT id, expires_at, used_at FROM join_tokens WHERE hash = ?",
                              error);
        gint64 token_id, expires;
        gboolean used;

        if (!q)
                return NULL;
        sql_bind_text(q, 1, token_hash);
        if (sql_step(q) != SQL_ROW) {
                sql_reset(q);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "unknown join token: issue one with 'atrium host join-token create'");
                return NULL;
        }
        token_id = sql_column_int(q, 0);
        expires = sql_column_int(q, 1);
        used = (sql_column_text(q, 2))[0] != '\0';
        sql_reset(q);
        if (used) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this join token was already used; a token works once, issue a new "
                            "one");
                return NULL;
        }
        if (expires <= now) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this join token has expired; issue a new one");
                return NULL;
        }
        created = sqs_create_tx(s, hosts, NULL, facts, actor, error);
        if (!created)
                return NULL;
        q = sqs_prep(s, "UPDATE hosts SET credential_hash = ? WHERE id = ?", error);
        if (!q)
                return NULL;
        sql_bind_text(q, 1, credential_hash);
        sql_bind_int(q, 2, json_object_get_int_member(created, "id"));
        if (!sqs_step_done(s, q, error, "storing the host credential"))
                return NULL;
        q = sqs_prep(
                s, "UPDATE join_tokens SET used_at = ?, host_name = ?, updated_at = ? WHERE id = ?",
                error);
        if (!q)
                return NULL;
        sql_bind_text(q, 1, now_iso);
        sql_bind_text(q, 2, name);
        sql_bind_text(q, 3, now_iso);
        sql_bind_int(q, 4, token_id);
        if (!sqs_step_done(s, q, error, "spending the join token"))
                return NULL;
        return g_steal_pointer(&created);
}

JsonObject *store_host_join(Store *s, const char *token_hash, gint64 now, JsonObject *facts,
                            const char *credential_hash, const Actor *actor, GError **error)
{
        if (!sqs_tx_begin(s, error))
                return NULL;
        return sqs_tx_end(s, join_tx(s, token_hash, now, facts, credential_hash, actor, error),
                          error);
}

gint64 store_host_by_credential(Store *s, const char *credential_hash, GError **error)
{
        SqlStmt *q = sqs_prep(s, "SELECT id FROM hosts WHERE credential_hash = ?", error);
        gint64 id = 0;

        if (!q)
                return 0;
        sql_bind_text(q, 1, credential_hash);
        if (sql_step(q) == SQL_ROW)
                id = sql_column_int(q, 0);
        sql_reset(q);
        if (!id)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this host credential is not known: the host was removed or never "
                            "joined; join again with a new token");
        return id;
}

JsonObject *store_host_figures(Store *s, gint64 host_id, JsonObject *figures, GError **error)
{
        if (!sqs_tx_begin_rows(s, error))
                return NULL;
        return sqs_tx_end(
                s, sqs_update_id_tx(s, resource_by_kind("host"), host_id, figures, NULL, error),
                error);
}
