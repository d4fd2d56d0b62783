/* What the store's family files share (store-engine.c, store-objects.c, store-accounts.c,
 * store-hosts.c, store-directory.c, store-totp.c): the handle on the SQL seam and the helpers
 * for statements, transactions, lookups and audit events. */
#pragma once
#include "store/store.h"
#include "store/sql.h"

/* A store: one handle on the database through the SQL seam. */
struct _Store {
        SqlDb *db; /* SQLite (sql-sqlite.c) */
};

gboolean sqs_db_error(Store *s, GError **error, const char *what);
/* A prepared statement, cached per handle (reset, bindings cleared). */
SqlStmt *sqs_prep(Store *s, const char *sql, GError **error);
gboolean sqs_tx_begin(Store *s, GError **error);
gboolean sqs_tx_commit(Store *s, GError **error); /* rolls back when it fails */
void sqs_tx_rollback(Store *s);
/* Step a statement expected to return no rows. */
gboolean sqs_step_done(Store *s, SqlStmt *stmt, GError **error, const char *what);
/* Row id of an object named by id or name, or 0 with a NOT_FOUND error. */
gint64 sqs_find_id(Store *s, const Resource *res, const char *id_or_name, GError **error);
/* An object made inside the caller's transaction (unused: the id_or_name a RowChange takes). */
JsonObject *sqs_create_tx(Store *s, const Resource *res, const char *unused, JsonObject *values,
                          const Actor *actor, GError **error);
/* Ends the transaction of a change that made ROW (taken; NULL: the change failed and set its
 * error): committed, and the row returned; or rolled back, and NULL. */
JsonObject *sqs_tx_end(Store *s, JsonObject *row, GError **error);
gboolean sqs_event_insert(Store *s, const Actor *a, const char *action, const char *kind, gint64 id,
                          const char *name, const char *detail, GError **error);

/* store-directory.c */
/* OWN, or more when a group of the user gives a higher role. */
Role sqs_group_role(Store *s, gint64 user_id, Role own);
Role store_user_role(Store *st, gint64 user_id, Role own);
Role store_pool_role(Store *st, gint64 user_id, gint64 pool_id);
gint64 store_pool_of(Store *st, const char *kind, const char *id_or_name);
JsonArray *store_pool_permissions(Store *st, gint64 user_id);
gboolean store_directory_user_sync(Store *st, const DirectorySync *d, gint64 *user_id,
                                   GError **error);
char **store_directory_users_due(Store *st, gint64 checked_before, gint64 now);
void store_directory_stale(Store *st);

/* store-totp.c */
gboolean store_totp_get(Store *st, gint64 user_id, TotpState *out, GError **error);
gboolean store_totp_pending(Store *st, const Actor *a, gint64 user_id, const char *secret,
                            GError **error);
gboolean store_totp_used(Store *st, gint64 user_id, gint64 step, GError **error);
gboolean store_totp_enable(Store *st, const Actor *a, gint64 user_id, gint64 step,
                           const char *const *recovery_hashes, const char *token_hash,
                           GError **error);
gboolean store_totp_disable(Store *st, const Actor *a, gint64 user_id, const char *why,
                            GError **error);
gboolean store_recovery_use(Store *st, gint64 user_id, const char *hash);
gboolean store_token_enrol_only(Store *st, const char *token_hash, GError **error);
