/* TOTP state of local and directory users in the SQLite store: the secret (pending until
 * confirmed), on/off, the last step used, recovery codes (hashes), and enrol-only tokens. */
#include "store/store-private.h"
#include "common/error.h"

gboolean store_totp_get(Store *s, gint64 user_id, TotpState *out, GError **error)
{
        SqlStmt *q = sqs_prep(s,
                              "SELECT totp_secret, totp_enabled, totp_required, "
                              "totp_last_step FROM users WHERE id = ?",
                              error);
        gboolean found = FALSE;

        if (!q)
                return FALSE;
        sql_bind_int(q, 1, user_id);
        if (sql_step(q) == SQL_ROW) {
                found = TRUE;
                out->secret = g_strdup(sql_column_text(q, 0));
                out->enabled = sql_column_int(q, 1);
                out->required = sql_column_int(q, 2);
                out->last_step = sql_column_int(q, 3);
        }
        sql_reset(q);
        if (!found)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "no such user");
        return found;
}

/* One statement on the user's row (or its codes) and an event, in one transaction. */
static gboolean change(Store *s, const Actor *a, gint64 user_id, const char *sql, const char *text,
                       gint64 num, const char *action, const char *detail, GError **error)
{
        SqlStmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s, sql, error)))
                goto fail;
        sql_bind_int(q, 1, user_id);
        if (text)
                sql_bind_text(q, 2, text);
        else
                sql_bind_int(q, 2, num);
        if (!sqs_step_done(s, q, error, "changing TOTP") ||
            (action &&
             !sqs_event_insert(s, a, action, "user", user_id, a ? a->name : "", detail, error)))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_totp_pending(Store *st, const Actor *a, gint64 user_id, const char *secret,
                            GError **error)
{
        return change(st, a, user_id,
                      "UPDATE users SET totp_secret = ?2, totp_enabled = FALSE WHERE id = ?1",
                      secret, 0, "totp_enrol", "TOTP secret issued (not on until confirmed)",
                      error);
}

gboolean store_totp_used(Store *st, gint64 user_id, gint64 step, GError **error)
{
        return change(st, NULL, user_id, "UPDATE users SET totp_last_step = ?2 WHERE id = ?1", NULL,
                      step, NULL, NULL, error);
}

gboolean store_totp_enable(Store *s, const Actor *a, gint64 user_id, gint64 step,
                           const char *const *recovery_hashes, const char *token_hash,
                           GError **error)
{
        SqlStmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s,
                           "UPDATE users SET totp_enabled = TRUE, totp_last_step = ? WHERE id = ?",
                           error)))
                goto fail;
        sql_bind_int(q, 1, step);
        sql_bind_int(q, 2, user_id);
        if (!sqs_step_done(s, q, error, "turning TOTP on"))
                goto fail;
        if (!(q = sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ?", error)))
                goto fail;
        sql_bind_int(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "replacing recovery codes"))
                goto fail;
        for (gsize i = 0; recovery_hashes && recovery_hashes[i]; i++) {
                if (!(q = sqs_prep(s, "INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)",
                                   error)))
                        goto fail;
                sql_bind_int(q, 1, user_id);
                sql_bind_text(q, 2, recovery_hashes[i]);
                if (!sqs_step_done(s, q, error, "storing recovery codes"))
                        goto fail;
        }
        /* The token that enrolled may now do everything its role allows. */
        if (token_hash) {
                if (!(q = sqs_prep(s, "UPDATE api_tokens SET enrol_only = FALSE WHERE hash = ?",
                                   error)))
                        goto fail;
                sql_bind_text(q, 1, token_hash);
                if (!sqs_step_done(s, q, error, "upgrading the token"))
                        goto fail;
        }
        if (!sqs_event_insert(s, a, "totp_on", "user", user_id, a->name,
                              "TOTP confirmed; recovery codes issued", error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_totp_disable(Store *s, const Actor *a, gint64 user_id, const char *why,
                            GError **error)
{
        SqlStmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s,
                           "UPDATE users SET totp_secret = '', totp_enabled = FALSE, "
                           "totp_last_step = 0 WHERE id = ?",
                           error)))
                goto fail;
        sql_bind_int(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "turning TOTP off"))
                goto fail;
        if (!(q = sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ?", error)))
                goto fail;
        sql_bind_int(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "removing recovery codes") ||
            !sqs_event_insert(s, a, "totp_off", "user", user_id, "", why, error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_recovery_use(Store *s, gint64 user_id, const char *hash)
{
        SqlStmt *q = sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?", NULL);

        if (!q)
                return FALSE;
        sql_bind_int(q, 1, user_id);
        sql_bind_text(q, 2, hash);
        return sqs_step_done(s, q, NULL, "using a recovery code") && sql_changes(s->db) == 1;
}
