/* The store's engine: statements and transactions over the SQL seam (sql.h), the audit
 * events written in the same transaction, settings, opening, migrating and closing. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

gboolean sqs_db_error(Store *s, GError **error, const char *what)
{
        return sql_error(s->db, error, what);
}

/* A cached prepared statement, reset and unbound. */
SqlStmt *sqs_prep(Store *s, const char *sql, GError **error)
{
        return sql_prep(s->db, sql, error);
}

static void tx_over(Store *s)
{
        s->in_tx = FALSE;
        if (s->tx_refs)
                g_hash_table_remove_all(s->tx_refs);
        if (s->tx_events)
                g_ptr_array_set_size(s->tx_events, 0);
}

gboolean sqs_tx_begin(Store *s, GError **error)
{
        if (!sql_begin(s->db, error))
                return FALSE;
        s->in_tx = TRUE;
        return TRUE;
}

gboolean sqs_tx_begin_rows(Store *s, GError **error)
{
        if (!sql_begin_rows(s->db, error))
                return FALSE;
        s->in_tx = TRUE;
        return TRUE;
}

gboolean sqs_tx_commit(Store *s, GError **error)
{
        gboolean ok;

        if (!sqs_events_flush(s, error)) {
                sqs_tx_rollback(s);
                return FALSE;
        }
        ok = sql_commit(s->db, error);

        tx_over(s);
        return ok;
}

void sqs_tx_rollback(Store *s)
{
        sql_rollback(s->db);
        tx_over(s);
}

/* Step an INSERT … RETURNING id: the new row's id, or 0 with an error. */
gint64 sqs_step_id(Store *s, SqlStmt *stmt, GError **error, const char *what)
{
        gint64 id = sql_step(stmt) == SQL_ROW ? sql_column_int(stmt, 0) : 0;

        while (id && sql_step(stmt) == SQL_ROW)
                ;
        sql_reset(stmt);
        if (!id)
                sqs_db_error(s, error, what);
        return id;
}

/* Step a statement expected to return no rows. */
gboolean sqs_step_done(Store *s, SqlStmt *stmt, GError **error, const char *what)
{
        SqlStep rc = sql_step(stmt);

        sql_reset(stmt);
        if (rc == SQL_DONE)
                return TRUE;
        return sqs_db_error(s, error, what);
}

char *sqs_text_of(Store *s, const char *sql, const char *arg)
{
        SqlStmt *q = sqs_prep(s, sql, NULL);
        char *v = NULL;

        if (!q)
                return NULL;
        sql_bind_text(q, 1, arg);
        if (sql_step(q) == SQL_ROW)
                v = g_strdup(sql_column_text(q, 0));
        sql_reset(q);
        return v;
}

char *store_setting(Store *s, const char *key)
{
        return sqs_text_of(s, "SELECT value FROM settings WHERE key = ?", key);
}

int store_schema_version(Store *st)
{
        return st->db->ops->schema_version(st->db);
}

void store_close(Store *st)
{
        if (!st)
                return;
        sql_close(st->db);
        g_clear_pointer(&st->tx_refs, g_hash_table_unref);
        g_clear_pointer(&st->tx_events, g_ptr_array_unref);
        g_free(st);
}

Store *store_open_peer(Store *st, GError **error);

const char *store_location(Store *st)
{
        return st->db->ops->location(st->db);
}

static gboolean migrate(Store *s, GError **error)
{
        int cur = store_schema_version(s), latest = schema_latest();
        const char *where = store_location(s);

        if (cur < 0)
                return sqs_db_error(s, error, "reading the schema version");
        if (cur > latest) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "database '%s' has schema version %d, newer than this atriumd "
                            "understands (%d): run the atriumd that wrote it, or a newer one",
                            where, cur, latest);
                return FALSE;
        }
        if (cur > 0 && cur < latest) {
                /* Keep a copy of the data as it was before any migration touches it. */
                g_autofree char *backup = g_strdup_printf("%s.pre-v%d", where, latest);
                if (!g_file_test(backup, G_FILE_TEST_EXISTS) &&
                    !s->db->ops->backup(s->db, backup, error))
                        return FALSE;
                g_info("database backed up to %s before migrating from schema %d to %d", backup,
                       cur, latest);
        }
        for (int v = cur + 1; v <= latest; v++) {
                if (!sqs_tx_begin(s, error))
                        return FALSE;
                /* Another manager starting beside this one may have migrated meanwhile. */
                if (store_schema_version(s) >= v) {
                        sqs_tx_rollback(s);
                        continue;
                }
                if (!s->db->ops->exec_schema(s->db, schema_migration(v), error) ||
                    !s->db->ops->set_schema_version(s->db, v, error)) {
                        sqs_tx_rollback(s);
                        g_prefix_error(error, "migrating the database to schema %d: ", v);
                        return FALSE;
                }
                if (!sqs_tx_commit(s, error))
                        return FALSE;
                g_info("database schema migrated to version %d", v);
        }
        return TRUE;
}

/* A store on an open database (taken). */
static Store *store_on(SqlDb *db)
{
        Store *s = g_new0(Store, 1);

        s->db = db;
        return s;
}

/* A store on DB (taken, NULL: its error is set), migrated to this binary's schema. */
static Store *store_migrated(SqlDb *db, const char *where, GError **error)
{
        Store *s;

        if (!db) {
                g_prefix_error(error, "%s: ", where);
                return NULL;
        }
        s = store_on(db);
        if (!migrate(s, error)) {
                g_prefix_error(error, "%s: ", store_location(s));
                store_close(s);
                return NULL;
        }
        return s;
}

Store *store_open_sqlite(const char *path, GError **error)
{
        return store_migrated(sql_open_sqlite(path, TRUE, error), path, error);
}

Store *store_open_postgresql(const char *url, const char *password, GError **error)
{
        return store_migrated(sql_open_postgresql(url, password, error), "PostgreSQL", error);
}

const char *store_backend(Store *st)
{
        return st->db->ops->name;
}

void store_fence(const char *holder, gint64 term)
{
        sql_fence_set(holder, term);
}

void store_fence_exempt_thread(void)
{
        sql_fence_exempt_thread();
}

Store *store_open_peer(Store *st, GError **error)
{
        SqlDb *db = sql_open_peer(st->db, error);
        Store *s;

        if (!db)
                return NULL;
        s = store_on(db);
        if (store_schema_version(s) != schema_latest()) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "database '%s' changed schema under a running atriumd",
                            store_location(st));
                store_close(s);
                return NULL;
        }
        return s;
}
