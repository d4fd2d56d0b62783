/* What the store's family files share (store-engine.c, store-objects.c, store-accounts.c,
 * store-hosts.c, store-directory.c, store-totp.c): the handle on the SQL seam and the helpers
 * for statements, transactions, lookups and audit events. */
#pragma once
#include "store/store.h"
#include "store/sql.h"

/* A store: one handle on the database through the SQL seam. */
struct _Store {
        SqlDb *db; /* SQLite (sql-sqlite.c) */
        /* in a transaction begun by sqs_tx_begin: the references it resolved ("kind\ntext"
         * -> id), not looked up again in it (its writes cannot remove them: no batch deletes,
         * and foreign keys hold) */
        gboolean in_tx;
        GHashTable *tx_refs;
        GPtrArray *tx_events; /* its audit events, written at its commit (sqs_events_flush) */
};

gboolean sqs_db_error(Store *s, GError **error, const char *what);
/* A prepared statement, cached per handle (reset, bindings cleared). */
SqlStmt *sqs_prep(Store *s, const char *sql, GError **error);
gboolean sqs_tx_begin(Store *s, GError **error);
/* A write transaction that locks the rows it decides on (sql.h, begin_rows): on PostgreSQL,
 * beside others of its kind. */
gboolean sqs_tx_begin_rows(Store *s, GError **error);
gboolean sqs_tx_commit(Store *s, GError **error); /* rolls back when it fails */
void sqs_tx_rollback(Store *s);
/* Step an INSERT … RETURNING id: the new row's id, or 0 with an error. */
gint64 sqs_step_id(Store *s, SqlStmt *stmt, GError **error, const char *what);
/* The first column of the first row of SQL with its one parameter ARG (g_free), or NULL. */
char *sqs_text_of(Store *s, const char *sql, const char *arg);
/* Step a statement expected to return no rows. */
gboolean sqs_step_done(Store *s, SqlStmt *stmt, GError **error, const char *what);
/* Row id of an object named by id or name, or 0 with a NOT_FOUND error. */
gint64 sqs_find_id(Store *s, const Resource *res, const char *id_or_name, GError **error);
/* The first row (as store_get shapes it) that WHERE selects (the table is "t"; it may end in
 * ORDER BY … LIMIT 1, and a lock: SqlOps.for_update), its N parameters ?1…?N bound to PARAMS;
 * NULL when none, or with an error when the query failed. */
JsonObject *sqs_row_where(Store *s, const Resource *res, const char *where, const gint64 *params,
                          int n, GError **error);
/* In a transaction: the KIND's row ID is there (its row locked, or the caller's own), not
 * looked up again when a change in it refers to it. */
void sqs_tx_ref_known(Store *s, const char *kind, gint64 id);
/* An object made inside the caller's transaction (unused: the id_or_name a RowChange takes). */
JsonObject *sqs_create_tx(Store *s, const Resource *res, const char *unused, JsonObject *values,
                          const Actor *actor, GError **error);
/* An object updated by id inside the caller's transaction (as store_update_id). */
JsonObject *sqs_update_id_tx(Store *s, const Resource *res, gint64 id, JsonObject *patch,
                             const Actor *actor, GError **error);
/* The update of a row the caller holds in its transaction (CURRENT: as it read it under its
 * row lock; not changed), as sqs_update_id_tx but without reading it before or after. */
gboolean sqs_update_held_tx(Store *s, const Resource *res, JsonObject *current, JsonObject *patch,
                            const Actor *actor, GError **error);
/* Ends the transaction of a change that made ROW (taken; NULL: the change failed and set its
 * error): committed, and the row returned; or rolled back, and NULL. */
JsonObject *sqs_tx_end(Store *s, JsonObject *row, GError **error);
/* An audit event: written at once, or in a transaction at its commit, with the others. */
gboolean sqs_event_insert(Store *s, const Actor *a, const char *action, const char *kind, gint64 id,
                          const char *name, const char *detail, GError **error);
/* The transaction's events written (sqs_tx_commit does it). */
gboolean sqs_events_flush(Store *s, GError **error);

/* store-directory.c: OWN, or more when a group of the user gives a higher role. */
Role sqs_group_role(Store *s, gint64 user_id, Role own);
