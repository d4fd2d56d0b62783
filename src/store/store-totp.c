/* TOTP state of local and directory users in the SQLite store: the secret (pending until
 * confirmed), on/off, the last step used, recovery codes (hashes), and enrol-only tokens. */
#include "store/store-sqlite-private.h"
#include "common/error.h"

gboolean sqs_totp_get(Store *st, gint64 user_id, TotpState *out, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q = sqs_prep(s,
                                   "SELECT totp_secret, totp_enabled, totp_required, "
                                   "totp_last_step FROM users WHERE id = ?",
                                   error);
        gboolean found = FALSE;

        if (!q)
                return FALSE;
        sqlite3_bind_int64(q, 1, user_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
                found = TRUE;
                out->secret = g_strdup((const char *)sqlite3_column_text(q, 0));
                out->enabled = sqlite3_column_int(q, 1);
                out->required = sqlite3_column_int(q, 2);
                out->last_step = sqlite3_column_int64(q, 3);
        }
        sqlite3_reset(q);
        if (!found)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "no such user");
        return found;
}

/* One statement on the user's row (or its codes) and an event, in one transaction. */
static gboolean change(SqliteStore *s, const Actor *a, gint64 user_id, const char *sql,
                       const char *text, gint64 num, const char *action, const char *detail,
                       GError **error)
{
        sqlite3_stmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s, sql, error)))
                goto fail;
        sqlite3_bind_int64(q, 1, user_id);
        if (text)
                sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
        else
                sqlite3_bind_int64(q, 2, num);
        if (!sqs_step_done(s, q, error, "changing TOTP") ||
            (action &&
             !sqs_event_insert(s, a, action, "user", user_id, a ? a->name : "", detail, error)))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean sqs_totp_pending(Store *st, const Actor *a, gint64 user_id, const char *secret,
                          GError **error)
{
        return change(S(st), a, user_id,
                      "UPDATE users SET totp_secret = ?2, totp_enabled = 0 WHERE id = ?1", secret,
                      0, "totp_enrol", "TOTP secret issued (not on until confirmed)", error);
}

gboolean sqs_totp_used(Store *st, gint64 user_id, gint64 step, GError **error)
{
        return change(S(st), NULL, user_id, "UPDATE users SET totp_last_step = ?2 WHERE id = ?1",
                      NULL, step, NULL, NULL, error);
}

gboolean sqs_totp_enable(Store *st, const Actor *a, gint64 user_id, gint64 step,
                         const char *const *recovery_hashes, const char *token_hash, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s, "UPDATE users SET totp_enabled = 1, totp_last_step = ? WHERE id = ?",
                           error)))
                goto fail;
        sqlite3_bind_int64(q, 1, step);
        sqlite3_bind_int64(q, 2, user_id);
        if (!sqs_step_done(s, q, error, "turning TOTP on"))
                goto fail;
        if (!(q = sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ?", error)))
                goto fail;
        sqlite3_bind_int64(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "replacing recovery codes"))
                goto fail;
        for (gsize i = 0; recovery_hashes && recovery_hashes[i]; i++) {
                if (!(q = sqs_prep(s, "INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)",
                                   error)))
                        goto fail;
                sqlite3_bind_int64(q, 1, user_id);
                sqlite3_bind_text(q, 2, recovery_hashes[i], -1, SQLITE_STATIC);
                if (!sqs_step_done(s, q, error, "storing recovery codes"))
                        goto fail;
        }
        /* The token that enrolled may now do everything its role allows. */
        if (token_hash) {
                if (!(q = sqs_prep(s, "UPDATE api_tokens SET enrol_only = 0 WHERE hash = ?",
                                   error)))
                        goto fail;
                sqlite3_bind_text(q, 1, token_hash, -1, SQLITE_STATIC);
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

gboolean sqs_totp_disable(Store *st, const Actor *a, gint64 user_id, const char *why,
                          GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s,
                           "UPDATE users SET totp_secret = '', totp_enabled = 0, "
                           "totp_last_step = 0 WHERE id = ?",
                           error)))
                goto fail;
        sqlite3_bind_int64(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "turning TOTP off"))
                goto fail;
        if (!(q = sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ?", error)))
                goto fail;
        sqlite3_bind_int64(q, 1, user_id);
        if (!sqs_step_done(s, q, error, "removing recovery codes") ||
            !sqs_event_insert(s, a, "totp_off", "user", user_id, "", why, error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean sqs_recovery_use(Store *st, gint64 user_id, const char *hash)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q =
                sqs_prep(s, "DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?", NULL);

        if (!q)
                return FALSE;
        sqlite3_bind_int64(q, 1, user_id);
        sqlite3_bind_text(q, 2, hash, -1, SQLITE_STATIC);
        return sqs_step_done(s, q, NULL, "using a recovery code") && sqlite3_changes(s->db) == 1;
}

gboolean sqs_token_enrol_only(Store *st, const char *token_hash, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q = sqs_prep(s, "UPDATE api_tokens SET enrol_only = 1 WHERE hash = ?", error);

        if (!q)
                return FALSE;
        sqlite3_bind_text(q, 1, token_hash, -1, SQLITE_STATIC);
        return sqs_step_done(s, q, error, "restricting a token");
}
