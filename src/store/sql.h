/* The SQL seam: the small interface a database backend implements, under which every object
 * family of the store is written (store-sqlite.c, store-directory.c, store-totp.c). SQLite
 * implements it in sql-sqlite.c; a PostgreSQL backend is one more file implementing these
 * slots (docs/architecture.md, "The store's seam", says what each must do).
 *
 * Statements use '?' placeholders, numbered from 1 in the bind calls (a backend whose driver
 * wants $1, $2 … translates them). A handle is used by one thread at a time. */
#pragma once
#include <glib.h>

typedef struct _SqlDb SqlDb;
typedef struct _SqlStmt SqlStmt;

typedef enum { SQL_ROW, SQL_DONE, SQL_FAIL } SqlStep;

typedef struct {
        const char *name;
        /* Another handle on the same database, for another thread. */
        SqlDb *(*open_peer)(SqlDb *db, GError **error);
        void (*close)(SqlDb *db);
        /* A statement, prepared once per handle and kept: every call returns it reset, its
         * bindings cleared. */
        SqlStmt *(*prepare)(SqlDb *db, const char *sql, GError **error);
        void (*bind_int)(SqlStmt *st, int i, gint64 v);
        void (*bind_text)(SqlStmt *st, int i, const char *v); /* NULL binds SQL NULL */
        void (*bind_null)(SqlStmt *st, int i);
        SqlStep (*step)(SqlStmt *st);
        gboolean (*column_null)(SqlStmt *st, int i);
        gint64 (*column_int)(SqlStmt *st, int i);
        const char *(*column_text)(SqlStmt *st, int i); /* NULL for SQL NULL; valid until the
                                                           next step or reset */
        void (*reset)(SqlStmt *st);
        /* The columns of a statement's rows (after its first step). */
        int (*column_count)(SqlStmt *st);
        const char *(*column_name)(SqlStmt *st, int i);
        /* Statements without results, separated by ';' (settings). */
        gboolean (*exec)(SqlDb *db, const char *sql, GError **error);
        /* A schema migration (schema.c: written in SQLite's dialect, which a backend
         * translates). */
        gboolean (*exec_schema)(SqlDb *db, const char *sql, GError **error);
        /* A write transaction (taking the write lock at once), its commit (rolled back when
         * the commit fails), and a rollback when one is open. */
        gboolean (*begin)(SqlDb *db, GError **error);
        /* A write transaction whose writes hold row locks of their own: every row it reads to
         * decide a write is locked (for_update, for_update_skip_locked) or written by one
         * statement that re-checks it. On PostgreSQL it runs beside others of its kind and
         * excludes every other write transaction; SQLite has one writer at a time: begin. */
        gboolean (*begin_rows)(SqlDb *db, GError **error);
        gboolean (*commit)(SqlDb *db, GError **error);
        void (*rollback)(SqlDb *db);
        /* Rows changed by the last statement. (A new row's id comes from INSERT … RETURNING id,
         * which both engines take.) */
        gint64 (*changes)(SqlDb *db);
        /* The last failure as an error "database error while WHAT: …", its code mapped: a
         * unique or primary key taken DUPLICATE, a foreign key IN_USE, the database busy
         * UNAVAILABLE, anything else INTERNAL. (The families check names and uses before they
         * write; the mapping answers the races between writers.) */
        gboolean (*error)(SqlDb *db, GError **error, const char *what);
        /* The schema version the database records (-1: cannot be read), and a new one (in the
         * migration's transaction). */
        int (*schema_version)(SqlDb *db);
        gboolean (*set_schema_version)(SqlDb *db, int version, GError **error);
        /* A consistent copy of the database at path (before a migration). */
        gboolean (*backup)(SqlDb *db, const char *path, GError **error);
        /* After rows were copied into TABLE with their ids (store_copy): the next id made is
         * above them. */
        gboolean (*ids_copied)(SqlDb *db, const char *table, GError **error);
        /* An SQL expression: the database's clock in ms since 1970 (leases are judged by it
         * alone, never by a manager's clock). */
        const char *now_ms;
        /* Suffixes of a SELECT in a begin_rows transaction: the rows it returns of the table
         * named "t" locked until the end of the transaction; or only those rows no other
         * transaction holds, the others skipped. (Empty where the transaction alone writes,
         * as on SQLite.) */
        const char *for_update, *for_update_skip_locked;
        /* Where the database is (a file's path, a server's address), for messages. */
        const char *(*location)(SqlDb *db);
} SqlOps;

struct _SqlDb {
        const SqlOps *ops;
};

struct _SqlStmt {
        SqlDb *db;
};

/* SQLite (sql-sqlite.c): the file at path, WAL, foreign keys on, a busy timeout; create: made
 * when missing. Every handle counts the rows written per table (store-changes.c). */
SqlDb *sql_open_sqlite(const char *path, gboolean create, GError **error);
/* PostgreSQL (sql-pg.c): the server a libpq connection string or URL names (no password in
 * it: password, when not NULL, is used), at PostgreSQL 13 or newer. */
SqlDb *sql_open_postgresql(const char *url, const char *password, GError **error);
/* PostgreSQL's dialect of a statement (its parameter count in *nparams) and of a migration
 * (sql-pg.c; g_free). */
char *sql_pg_statement(const char *sql, int *nparams);
char *sql_pg_schema(const char *sql);
/* The writers' fence of this process (sql-pg.c: SQLite has one manager and checks none): once set,
 * every write transaction first checks that `holder` holds the leader's lease at `term` (0:
 * refuses at once), except on threads exempted. */
void sql_fence_set(const char *holder, gint64 term);
void sql_fence_exempt_thread(void);
/* A backend tells of each row written (store-changes.c counts them per table). */
void sql_table_changed(const char *table);

static inline SqlDb *sql_open_peer(SqlDb *db, GError **error)
{
        return db->ops->open_peer(db, error);
}
static inline void sql_close(SqlDb *db)
{
        if (db)
                db->ops->close(db);
}
static inline SqlStmt *sql_prep(SqlDb *db, const char *sql, GError **error)
{
        return db->ops->prepare(db, sql, error);
}
static inline void sql_bind_int(SqlStmt *st, int i, gint64 v)
{
        st->db->ops->bind_int(st, i, v);
}
static inline void sql_bind_text(SqlStmt *st, int i, const char *v)
{
        st->db->ops->bind_text(st, i, v);
}
static inline void sql_bind_null(SqlStmt *st, int i)
{
        st->db->ops->bind_null(st, i);
}
static inline SqlStep sql_step(SqlStmt *st)
{
        return st->db->ops->step(st);
}
static inline gboolean sql_column_null(SqlStmt *st, int i)
{
        return st->db->ops->column_null(st, i);
}
static inline gint64 sql_column_int(SqlStmt *st, int i)
{
        return st->db->ops->column_int(st, i);
}
static inline const char *sql_column_text(SqlStmt *st, int i)
{
        return st->db->ops->column_text(st, i);
}
static inline void sql_reset(SqlStmt *st)
{
        st->db->ops->reset(st);
}
static inline gboolean sql_exec(SqlDb *db, const char *sql, GError **error)
{
        return db->ops->exec(db, sql, error);
}
static inline gboolean sql_begin(SqlDb *db, GError **error)
{
        return db->ops->begin(db, error);
}
static inline gboolean sql_begin_rows(SqlDb *db, GError **error)
{
        return db->ops->begin_rows(db, error);
}
static inline gboolean sql_commit(SqlDb *db, GError **error)
{
        return db->ops->commit(db, error);
}
static inline void sql_rollback(SqlDb *db)
{
        db->ops->rollback(db);
}
static inline gint64 sql_changes(SqlDb *db)
{
        return db->ops->changes(db);
}
static inline gboolean sql_error(SqlDb *db, GError **error, const char *what)
{
        return db->ops->error(db, error, what);
}
