/* What the SQLite backend's files share (store-sqlite.c, store-directory.c): the handle and
 * the helpers for statements, transactions and audit events. */
#pragma once
#include "store/store.h"

#include <sqlite3.h>

typedef struct {
        Store parent;
        sqlite3 *db;
        char *path;
        GHashTable *stmts; /* SQL text -> sqlite3_stmt* */
} SqliteStore;

static inline SqliteStore *S(Store *st)
{
        return (SqliteStore *)st;
}

gboolean sqs_db_error(SqliteStore *s, GError **error, const char *what);
/* A prepared statement, cached per handle (reset, bindings cleared). */
sqlite3_stmt *sqs_prep(SqliteStore *s, const char *sql, GError **error);
gboolean sqs_tx_begin(SqliteStore *s, GError **error);
gboolean sqs_tx_commit(SqliteStore *s, GError **error); /* rolls back when it fails */
void sqs_tx_rollback(SqliteStore *s);
/* Step a statement expected to return no rows. */
gboolean sqs_step_done(SqliteStore *s, sqlite3_stmt *stmt, GError **error, const char *what);
gboolean sqs_event_insert(SqliteStore *s, const Actor *a, const char *action, const char *kind,
                          gint64 id, const char *name, const char *detail, GError **error);

/* store-directory.c */
/* OWN, or more when a group of the user gives a higher role. */
Role sqs_group_role(SqliteStore *s, gint64 user_id, Role own);
Role sqs_user_role(Store *st, gint64 user_id, Role own);
Role sqs_pool_role(Store *st, gint64 user_id, gint64 pool_id);
gint64 sqs_pool_of(Store *st, const char *kind, const char *id_or_name);
JsonArray *sqs_pool_permissions(Store *st, gint64 user_id);
gboolean sqs_directory_user_sync(Store *st, const DirectorySync *d, gint64 *user_id,
                                 GError **error);
char **sqs_directory_users_due(Store *st, gint64 checked_before, gint64 now);
void sqs_directory_stale(Store *st);

/* store-totp.c */
gboolean sqs_totp_get(Store *st, gint64 user_id, TotpState *out, GError **error);
gboolean sqs_totp_pending(Store *st, const Actor *a, gint64 user_id, const char *secret,
                          GError **error);
gboolean sqs_totp_used(Store *st, gint64 user_id, gint64 step, GError **error);
gboolean sqs_totp_enable(Store *st, const Actor *a, gint64 user_id, gint64 step,
                         const char *const *recovery_hashes, const char *token_hash,
                         GError **error);
gboolean sqs_totp_disable(Store *st, const Actor *a, gint64 user_id, const char *why,
                          GError **error);
gboolean sqs_recovery_use(Store *st, gint64 user_id, const char *hash);
gboolean sqs_token_enrol_only(Store *st, const char *token_hash, GError **error);

/* store-changes.c: the update hook every handle installs. */
void sqs_row_changed(void *data, int op, const char *db, const char *table, sqlite3_int64 rowid);
