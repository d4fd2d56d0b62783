/* The SQL seam on SQLite (sql.h): WAL mode, foreign keys on, statements prepared once per
 * handle, IMMEDIATE write transactions with a busy timeout, PRAGMA user_version as the schema
 * version, VACUUM INTO for backups, an update hook counting written rows per table.
 *
 * The write transactions of one process on one database queue on a lock of their own before
 * BEGIN IMMEDIATE (Writers), woken as soon as the one before commits, instead of in SQLite's
 * busy handler, which polls in sleeps of up to 100 ms: under a storm of connects those sleeps
 * were the broker's p99. Other processes on the file still meet the busy timeout. */
#define G_LOG_DOMAIN "store"

#include "store/sql.h"
#include "common/error.h"

#include <sqlite3.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

/* The queue of a database's writers in this process: the thread in a write transaction (its
 * transactions on other handles of the file pass too, and meet SQLite's busy timeout as
 * before) and how deep. One per database file opened, kept for the process's life. */
typedef struct {
        GMutex lock;
        GCond turn;
        GThread *owner;
        guint depth;
} Writers;

typedef struct {
        SqlDb parent;
        sqlite3 *db;
        char *path;
        GHashTable *stmts; /* SQL text -> Stmt */
        Writers *writers;
        gboolean writing; /* in a write transaction, holding writers */
} Db;

static Writers *writers_of(const char *path)
{
        static GMutex all_lock;
        static GHashTable *all; /* path -> Writers */
        Writers *w;

        g_mutex_lock(&all_lock);
        if (!all)
                all = g_hash_table_new(g_str_hash, g_str_equal);
        if (!(w = g_hash_table_lookup(all, path))) {
                w = g_new0(Writers, 1);
                g_hash_table_insert(all, g_strdup(path), w);
        }
        g_mutex_unlock(&all_lock);
        return w;
}

/* FALSE when another thread held it past the busy timeout: the transaction then goes to
 * SQLite's own lock, and its busy error, as before. */
static gboolean writers_enter(Writers *w)
{
        GThread *self = g_thread_self();
        gint64 until = g_get_monotonic_time() + BUSY_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
        gboolean ok;

        g_mutex_lock(&w->lock);
        while (w->owner && w->owner != self && g_cond_wait_until(&w->turn, &w->lock, until))
                ;
        if ((ok = !w->owner || w->owner == self)) {
                w->owner = self;
                w->depth++;
        }
        g_mutex_unlock(&w->lock);
        return ok;
}

static void writers_leave(Writers *w)
{
        g_mutex_lock(&w->lock);
        if (--w->depth == 0) {
                w->owner = NULL;
                g_cond_signal(&w->turn);
        }
        g_mutex_unlock(&w->lock);
}

static void writing_over(Db *d)
{
        if (d->writing)
                writers_leave(d->writers);
        d->writing = FALSE;
}

typedef struct {
        SqlStmt parent;
        sqlite3_stmt *st;
} Stmt;

static Db *D(SqlDb *db)
{
        return (Db *)db;
}

static sqlite3_stmt *T(SqlStmt *st)
{
        return ((Stmt *)st)->st;
}

static void row_changed(void *data, int op, const char *db, const char *table, sqlite3_int64 id)
{
        sql_table_changed(table);
}

static void stmt_free(gpointer p)
{
        Stmt *s = p;

        sqlite3_finalize(s->st);
        g_free(s);
}

/* SQLite's result code as an Atrium one: a name or key taken, a row still referenced, the
 * database busy past the busy timeout; anything else is ours. */
static int error_code(int extended)
{
        switch (extended) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return ATRIUM_ERROR_DUPLICATE;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return ATRIUM_ERROR_IN_USE;
        }
        switch (extended & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return ATRIUM_ERROR_UNAVAILABLE;
        }
        return ATRIUM_ERROR_INTERNAL;
}

static gboolean db_error(SqlDb *db, GError **error, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, error_code(sqlite3_extended_errcode(D(db)->db)),
                    "database error while %s: %s", what, sqlite3_errmsg(D(db)->db));
        return FALSE;
}

static SqlStmt *prepare(SqlDb *db, const char *sql, GError **error)
{
        Db *d = D(db);
        Stmt *s = g_hash_table_lookup(d->stmts, sql);

        if (s) {
                sqlite3_reset(s->st);
                sqlite3_clear_bindings(s->st);
                return &s->parent;
        }
        s = g_new0(Stmt, 1);
        s->parent.db = db;
        if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) !=
            SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "database error preparing a statement: %s", sqlite3_errmsg(d->db));
                g_free(s);
                return NULL;
        }
        g_hash_table_insert(d->stmts, g_strdup(sql), s);
        return &s->parent;
}

static void bind_int(SqlStmt *st, int i, gint64 v)
{
        sqlite3_bind_int64(T(st), i, v);
}

static void bind_text(SqlStmt *st, int i, const char *v)
{
        if (v)
                sqlite3_bind_text(T(st), i, v, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(T(st), i);
}

static void bind_null(SqlStmt *st, int i)
{
        sqlite3_bind_null(T(st), i);
}

static SqlStep step(SqlStmt *st)
{
        int rc = sqlite3_step(T(st));

        return rc == SQLITE_ROW ? SQL_ROW : rc == SQLITE_DONE ? SQL_DONE : SQL_FAIL;
}

static gboolean column_null(SqlStmt *st, int i)
{
        return sqlite3_column_type(T(st), i) == SQLITE_NULL;
}

static gint64 column_int(SqlStmt *st, int i)
{
        return sqlite3_column_int64(T(st), i);
}

static const char *column_text(SqlStmt *st, int i)
{
        return (const char *)sqlite3_column_text(T(st), i);
}

static void reset(SqlStmt *st)
{
        sqlite3_reset(T(st));
}

static int column_count(SqlStmt *st)
{
        return sqlite3_column_count(T(st));
}

static const char *column_name(SqlStmt *st, int i)
{
        return sqlite3_column_name(T(st), i);
}

/* An INTEGER PRIMARY KEY takes the largest id + 1 by itself. */
static gboolean ids_copied(SqlDb *db, const char *table, GError **error)
{
        return TRUE;
}

static gboolean exec(SqlDb *db, const char *sql, GError **error)
{
        char *msg = NULL;

        if (sqlite3_exec(D(db)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "database error: %s",
                            msg ? msg : sqlite3_errmsg(D(db)->db));
                sqlite3_free(msg);
                return FALSE;
        }
        return TRUE;
}

static gboolean begin(SqlDb *db, GError **error)
{
        Db *d = D(db);

        d->writing = writers_enter(d->writers);
        if (exec(db, "BEGIN IMMEDIATE", error))
                return TRUE;
        writing_over(d);
        return FALSE;
}

static gboolean commit(SqlDb *db, GError **error)
{
        gboolean ok = exec(db, "COMMIT", error);

        if (!ok)
                exec(db, "ROLLBACK", NULL);
        writing_over(D(db));
        return ok;
}

static void rollback(SqlDb *db)
{
        if (!sqlite3_get_autocommit(D(db)->db))
                exec(db, "ROLLBACK", NULL);
        writing_over(D(db));
}

static gint64 changes(SqlDb *db)
{
        return sqlite3_changes(D(db)->db);
}

static int schema_version(SqlDb *db)
{
        SqlStmt *st = prepare(db, "PRAGMA user_version", NULL);
        int v = -1;

        if (st && step(st) == SQL_ROW)
                v = (int)column_int(st, 0);
        if (st)
                reset(st);
        return v;
}

static gboolean set_schema_version(SqlDb *db, int version, GError **error)
{
        g_autofree char *sql = g_strdup_printf("PRAGMA user_version = %d", version);

        return exec(db, sql, error);
}

static gboolean backup(SqlDb *db, const char *path, GError **error)
{
        char *sql = sqlite3_mprintf("VACUUM INTO %Q", path); /* sqlite3_free() */
        gboolean ok = exec(db, sql, error);

        sqlite3_free(sql);
        return ok;
}

static const char *location(SqlDb *db)
{
        return D(db)->path;
}

static void db_close(SqlDb *db)
{
        Db *d = D(db);

        g_hash_table_unref(d->stmts); /* finalizes statements before the close */
        sqlite3_close(d->db);         /* rolls back a transaction left open */
        writing_over(d);
        g_free(d->path);
        g_free(d);
}

static SqlDb *open_peer(SqlDb *db, GError **error);

static const SqlOps sqlite_ops = {
        .name = "sqlite",
        .open_peer = open_peer,
        .close = db_close,
        .prepare = prepare,
        .bind_int = bind_int,
        .bind_text = bind_text,
        .bind_null = bind_null,
        .step = step,
        .column_null = column_null,
        .column_int = column_int,
        .column_text = column_text,
        .reset = reset,
        .column_count = column_count,
        .column_name = column_name,
        .ids_copied = ids_copied,
        .now_ms = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        .for_update = "",
        .for_update_skip_locked = "",
        .exec = exec,
        .exec_schema = exec,
        .begin = begin,
        .begin_rows = begin,
        .commit = commit,
        .rollback = rollback,
        .changes = changes,
        .error = db_error,
        .schema_version = schema_version,
        .set_schema_version = set_schema_version,
        .backup = backup,
        .location = location,
};

static Db *db_open(const char *path, int flags, GError **error)
{
        Db *d = g_new0(Db, 1);

        d->parent.ops = &sqlite_ops;
        d->path = g_strdup(path);
        d->writers = writers_of(path);
        d->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_free);
        if (sqlite3_open_v2(path, &d->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot open database '%s': %s", path,
                            d->db ? sqlite3_errmsg(d->db) : "out of memory");
                db_close(&d->parent);
                return NULL;
        }
        sqlite3_busy_timeout(d->db, BUSY_TIMEOUT_MS);
        sqlite3_update_hook(d->db, row_changed, NULL);
        return d;
}

SqlDb *sql_open_sqlite(const char *path, gboolean create, GError **error)
{
        Db *d = db_open(path, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), error);

        if (!d)
                return NULL;
        if (!exec(&d->parent,
                  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                  "PRAGMA foreign_keys = ON;",
                  error)) {
                db_close(&d->parent);
                return NULL;
        }
        return &d->parent;
}

/* WAL lets readers run beside a writer, and IMMEDIATE transactions (with the busy timeout)
 * queue writers; each handle is used by one thread only. */
static SqlDb *open_peer(SqlDb *db, GError **error)
{
        Db *d = db_open(D(db)->path, SQLITE_OPEN_READWRITE, error);

        if (!d)
                return NULL;
        if (!exec(&d->parent, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;", error)) {
                db_close(&d->parent);
                return NULL;
        }
        return &d->parent;
}
