/* The SQL seam on PostgreSQL (sql.h), through libpq: one connection per handle, statements
 * prepared on the server once per connection (at their first run, with the types of that run's
 * bindings), results in text. The store's SQL is written once, for both engines; this file
 * translates what differs (sql_pg_statement, sql_pg_schema):
 *  - '?' and '?N' placeholders become $N; TRUE and FALSE become 1 and 0 (booleans are
 *    integers in the schema, as in SQLite); LIKE on a name becomes ILIKE under the "C"
 *    collation (names compare case-insensitively through the nondeterministic collation
 *    "nocase", which LIKE cannot use).
 *  - In the schema: INTEGER is BIGINT, an INTEGER PRIMARY KEY an identity column, COLLATE NOCASE
 *    the ICU collation "nocase" made in the same transaction, and the two SQLite-only
 *    expressions (randomblob, adding booleans) their PostgreSQL forms.
 * Write transactions take one transaction-scoped advisory lock first, so that writers queue as
 * SQLite's IMMEDIATE transactions do (across every manager on the database); a write outside
 * a transaction is wrapped in one. Transactions that lock the rows they decide on (begin_rows)
 * take it shared: they run beside each other, and every other writer still waits for them all
 * (and they for it); so does a lone INSERT into the append-only events. The schema version is the
 * one row of atrium_schema. Each session sets keepalives, a TCP user timeout and an
 * idle-in-transaction timeout, so that the server drops a dead manager's session (and its locks) in
 * seconds. A lost connection is reset at the next statement outside a transaction; the failures
 * between are UNAVAILABLE, logged once per change of state. */
#define G_LOG_DOMAIN "store"

#include "store/sql.h"
#include "common/error.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

/* The key of the writers' advisory lock (0x4174726d, "Atrm"). */
#define WRITE_LOCK_KEY 1098150509
#define MIN_SERVER_VERSION 130000

typedef struct {
        SqlDb parent;
        PGconn *conn;
        char *url;         /* the connection string, without a password */
        char *password;    /* NULL: none, or libpq's own sources (PGPASSFILE, ~/.pgpass) */
        char *where;       /* "postgresql://host:port/db", for messages */
        GHashTable *stmts; /* SQL text -> Stmt */
        guint next_name;
        gboolean in_tx;
        gint64 changes;
        char sqlstate[6];
        char *errmsg;
} Db;

typedef struct {
        SqlStmt parent;
        char *sql;   /* translated */
        char *table; /* the table an INSERT, UPDATE or DELETE writes; NULL: a query */
        char name[16];
        gboolean prepared;
        int nparams;
        char **values;
        Oid *types;
        PGresult *res;
        int row, rows;
} Stmt;

static Db *D(SqlDb *db)
{
        return (Db *)db;
}

static Stmt *S(SqlStmt *st)
{
        return (Stmt *)st;
}

/* --- translation --------------------------------------------------------------------------- */

static gboolean word_char(char c)
{
        return g_ascii_isalnum(c) || c == '_' || c == '.';
}

/* A statement in PostgreSQL's dialect (g_free), and how many parameters it takes. */
char *sql_pg_statement(const char *sql, int *nparams)
{
        GString *out = g_string_sized_new(strlen(sql) + 16);
        int max = 0;

        for (const char *p = sql; *p;) {
                if (*p == '\'') { /* a literal, copied as it is ('' inside included) */
                        const char *q = p + 1;
                        while (*q && !(*q == '\'' && q[1] != '\''))
                                q += *q == '\'' ? 2 : 1;
                        if (*q)
                                q++;
                        g_string_append_len(out, p, q - p);
                        p = q;
                } else if (*p == '?') {
                        char *end;
                        long n = strtol(p + 1, &end, 10);
                        if (end == p + 1)
                                n = max + 1;
                        max = MAX(max, (int)n);
                        g_string_append_printf(out, "$%ld", n);
                        p = end;
                } else if (word_char(*p)) {
                        const char *q = p;
                        while (word_char(*q))
                                q++;
                        gsize len = q - p;
                        if (len == 4 && strncmp(p, "TRUE", 4) == 0)
                                g_string_append_c(out, '1');
                        else if (len == 5 && strncmp(p, "FALSE", 5) == 0)
                                g_string_append_c(out, '0');
                        else if (len == 4 && strncmp(p, "LIKE", 4) == 0)
                                g_string_append(out, "COLLATE \"C\" ILIKE");
                        else
                                g_string_append_len(out, p, len);
                        p = q;
                } else {
                        g_string_append_c(out, *p++);
                }
        }
        if (nparams)
                *nparams = max;
        return g_string_free(out, FALSE);
}

/* A schema migration (sql_pg_statement's rules do not apply: it has no parameters) in
 * PostgreSQL's dialect (g_free). */
char *sql_pg_schema(const char *sql)
{
        GString *s = g_string_new(sql);

        /* (replace every occurrence: the last argument 0) */
        g_string_replace(s, "INTEGER PRIMARY KEY",
                         "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", 0);
        g_string_replace(s, " INTEGER", " BIGINT", 0);
        g_string_replace(s, "lower(hex(randomblob(4)))",
                         "substr(md5(gen_random_uuid()::text), 1, 8)", 0);
        g_string_replace(s, "IS NOT NULL) +", "IS NOT NULL)::int +", 0);
        g_string_replace(s, "IS NOT NULL) = 1", "IS NOT NULL)::int = 1", 0);
        if (strstr(sql, "COLLATE NOCASE"))
                g_string_prepend(s, "CREATE COLLATION IF NOT EXISTS nocase (provider = icu, "
                                    "locale = 'und-u-ks-level2', deterministic = false);");
        return g_string_free(s, FALSE);
}

/* The table an INSERT, UPDATE or DELETE writes (g_free), or NULL. */
static char *written_table(const char *sql)
{
        static const char *const heads[] = {"INSERT INTO ", "UPDATE ", "DELETE FROM "};

        for (gsize i = 0; i < G_N_ELEMENTS(heads); i++) {
                gsize n = strlen(heads[i]);
                if (g_ascii_strncasecmp(sql, heads[i], n) == 0) {
                        const char *p = sql + n, *q = p;
                        while (word_char(*q))
                                q++;
                        return g_strndup(p, q - p);
                }
        }
        return NULL;
}

/* --- errors -------------------------------------------------------------------------------- */

static int code_of(const char *state)
{
        if (g_str_equal(state, "23505"))
                return ATRIUM_ERROR_DUPLICATE;
        if (g_str_equal(state, "23503"))
                return ATRIUM_ERROR_IN_USE;
        /* connection, operator intervention (shutdown), insufficient resources, serialization
         * and deadlock, lock not available, idle-in-transaction timeout */
        if (g_str_has_prefix(state, "08") || g_str_has_prefix(state, "57P") ||
            g_str_has_prefix(state, "53") || g_str_has_prefix(state, "40") ||
            g_str_equal(state, "55P03") || g_str_equal(state, "25P03") ||
            g_str_has_prefix(state, "AT")) /* ours: the fence */
                return ATRIUM_ERROR_UNAVAILABLE;
        return ATRIUM_ERROR_INTERNAL;
}

/* Whether the server was last found unreachable, for the whole process: each change is
 * logged once, whichever handle sees it. */
static gint server_down;

static void note_state(Db *d, gboolean down)
{
        if (!g_atomic_int_compare_and_exchange(&server_down, !down, down))
                return;
        if (down)
                g_warning("database %s unreachable: %s", d->where, d->errmsg);
        else
                g_message("database %s reachable again", d->where);
}

/* libpq's messages on one line ("…failed: Connection refused\n\tIs the server running…"). */
static void one_line(char *s)
{
        char *w = s;
        gboolean space = FALSE;

        for (char *r = s; *r; r++) {
                if (g_ascii_isspace(*r)) {
                        space = w != s;
                        continue;
                }
                if (space)
                        *w++ = ' ';
                space = FALSE;
                *w++ = *r;
        }
        *w = '\0';
}

/* Remember the failure of RES (NULL: of the connection). */
static void fail(Db *d, const PGresult *res)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorMessage(res) : NULL;

        if (!msg || !*msg)
                msg = PQerrorMessage(d->conn);
        if (PQstatus(d->conn) == CONNECTION_BAD)
                state = "08006";
        g_strlcpy(d->sqlstate, state ? state : "XX000", sizeof d->sqlstate);
        g_free(d->errmsg);
        d->errmsg = g_strdup(msg && *msg ? msg : "unknown error");
        one_line(d->errmsg);
}

/* A failure from a connection lost outside a transaction: worth one more try on a new one
 * (the server restarted, say; a transaction's work is lost with its connection). */
static gboolean retry_on_new_connection(Db *d)
{
        return PQstatus(d->conn) == CONNECTION_BAD && !d->in_tx;
}

/* A failure of ours, not the server's (sqlstate "AT…"). */
static void fail_with(Db *d, const char *state, const char *msg)
{
        g_strlcpy(d->sqlstate, state, sizeof d->sqlstate);
        g_free(d->errmsg);
        d->errmsg = g_strdup(msg);
}

/* --- the writers' fence -------------------------------------------------------------------- */

static GMutex fence_lock;
static char *fence_holder; /* NULL: no fence */
static gint64 fence_term;
static __thread gboolean fence_exempt;

void sql_fence_set(const char *holder, gint64 term)
{
        g_mutex_lock(&fence_lock);
        g_free(fence_holder);
        fence_holder = g_strdup(holder);
        fence_term = term;
        g_mutex_unlock(&fence_lock);
}

void sql_fence_exempt_thread(void)
{
        fence_exempt = TRUE;
}

static gboolean exec_simple(Db *d, const char *sql);

/* Opens a write's transaction in one round trip: BEGIN, the writers' lock (writers queue
 * behind it as SQLite's do; shared: beside the others taking it shared), and the fence: may
 * this process write? Only while its lease is current on the database's clock, so that a
 * leader paused past its lease, whose place was taken, writes nothing when it wakes. On
 * failure no transaction is left open. */
static gboolean write_begin(Db *d, gboolean shared)
{
        g_autoptr(GString) sql = g_string_new(
                shared ? "BEGIN; SELECT pg_advisory_xact_lock_shared(" G_STRINGIFY(
                                 WRITE_LOCK_KEY) ")"
                       : "BEGIN; SELECT pg_advisory_xact_lock(" G_STRINGIFY(WRITE_LOCK_KEY) ")");
        g_autofree char *holder = NULL;
        gint64 term = 0;
        PGresult *r;
        gboolean ok;

        if (!fence_exempt) {
                g_mutex_lock(&fence_lock);
                holder = g_strdup(fence_holder);
                term = fence_term;
                g_mutex_unlock(&fence_lock);
        }
        if (holder && !term) {
                fail_with(d, "AT001", "this manager is a standby: only the leader writes");
                return FALSE;
        }
        if (holder) {
                char *lit = PQescapeLiteral(d->conn, holder, strlen(holder)); /* PQfreemem */
                g_string_append_printf(sql,
                                       "; SELECT 1 FROM leader WHERE id = 1 AND holder = %s AND "
                                       "term = %" G_GINT64_FORMAT " AND lease_until > CAST(extract("
                                       "epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
                                       lit ? lit : "''", term);
                if (lit)
                        PQfreemem(lit);
        }
        r = PQexec(d->conn, sql->str);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && (!holder || PQntuples(r) == 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                fail(d, r);
        } else if (!ok) {
                g_autofree char *msg = g_strdup_printf(
                        "this manager no longer holds the leader's lease (term %" G_GINT64_FORMAT
                        "): it writes nothing",
                        term);
                fail_with(d, "AT002", msg);
        } else {
                note_state(d, FALSE);
        }
        PQclear(r);
        if (!ok && PQstatus(d->conn) == CONNECTION_OK &&
            PQtransactionStatus(d->conn) != PQTRANS_IDLE)
                PQclear(PQexec(d->conn, "ROLLBACK"));
        return ok;
}

static gboolean db_error(SqlDb *db, GError **error, const char *what)
{
        Db *d = D(db);

        /* The server's address and libpq's words are for the log (note_state), not for
         * whoever sent the request. */
        if (g_str_has_prefix(d->sqlstate, "AT")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE, "%s (while %s)",
                            d->errmsg, what);
                return FALSE;
        }
        if (g_str_has_prefix(d->sqlstate, "08")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "the database is unreachable (while %s); retry in a few seconds", what);
                return FALSE;
        }
        g_set_error(error, ATRIUM_ERROR, code_of(d->sqlstate), "database error while %s: %s", what,
                    d->errmsg ? d->errmsg : "unknown error");
        return FALSE;
}

/* --- connections --------------------------------------------------------------------------- */

static void stmt_unprepare(gpointer key, gpointer value, gpointer data)
{
        S(value)->prepared = FALSE;
}

static const char *const session_setup =
        "SET idle_in_transaction_session_timeout = '30s';"
        "SET statement_timeout = '60s';"
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;"
        "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000;"
        "SET TIME ZONE 'UTC'";

/* The server's notices (a ROLLBACK with none open, say) are debug messages, not stderr's. */
static void notice(void *data, const char *message)
{
        g_debug("database notice: %s", message);
}

static PGconn *connect_to(const char *url, const char *password, GError **error)
{
        const char *keys[] = {"dbname",
                              "password",
                              "application_name",
                              "connect_timeout",
                              "keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              NULL};
        const char *vals[] = {url, password, "atriumd", "5", "1", "5", "2", "3", "10000", NULL};
        PGconn *c;
        PGresult *r;

        if (!password) { /* shift the keys after "password" down one */
                for (int i = 1; keys[i]; i++) {
                        keys[i] = keys[i + 1];
                        vals[i] = vals[i + 1];
                }
        }
        c = PQconnectdbParams(keys, vals, 1);
        if (!c || PQstatus(c) != CONNECTION_OK) {
                g_autofree char *msg = g_strdup(c ? PQerrorMessage(c) : "out of memory");
                one_line(msg);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "cannot connect to the database: %s", msg);
                PQfinish(c);
                return NULL;
        }
        if (PQserverVersion(c) < MIN_SERVER_VERSION) {
                int v = PQserverVersion(c);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the database server runs PostgreSQL %d.%d, which Atrium does not "
                            "support: it needs PostgreSQL 13 or newer",
                            v / 10000, v >= 100000 ? v % 10000 : v / 100 % 100);
                PQfinish(c);
                return NULL;
        }
        PQsetNoticeProcessor(c, notice, NULL);
        r = PQexec(c, session_setup);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                g_autofree char *msg = g_strdup(PQresultErrorMessage(r));
                g_strchomp(msg);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot set up the database session: %s", msg);
                PQclear(r);
                PQfinish(c);
                return NULL;
        }
        PQclear(r);
        return c;
}

/* Outside a transaction, a broken connection is made again (its statements to prepare again). */
static gboolean ensure_connected(Db *d)
{
        g_autoptr(GError) error = NULL;
        PGconn *c;

        if (PQstatus(d->conn) == CONNECTION_OK)
                return TRUE;
        if (d->in_tx) {
                fail(d, NULL);
                return FALSE;
        }
        if (!(c = connect_to(d->url, d->password, &error))) {
                g_strlcpy(d->sqlstate, "08006", sizeof d->sqlstate);
                g_free(d->errmsg);
                d->errmsg = g_strdup(error->message);
                note_state(d, TRUE);
                return FALSE;
        }
        PQfinish(d->conn);
        d->conn = c;
        g_hash_table_foreach(d->stmts, stmt_unprepare, NULL);
        note_state(d, FALSE);
        return TRUE;
}

/* --- statements ---------------------------------------------------------------------------- */

static void stmt_clear(Stmt *s)
{
        g_clear_pointer(&s->res, PQclear);
        s->row = -1;
        s->rows = 0;
}

static void stmt_free(gpointer p)
{
        Stmt *s = p;

        stmt_clear(s);
        for (int i = 0; i < s->nparams; i++)
                g_free(s->values[i]);
        g_free(s->values);
        g_free(s->types);
        g_free(s->sql);
        g_free(s->table);
        g_free(s);
}

static SqlStmt *prepare(SqlDb *db, const char *sql, GError **error)
{
        Db *d = D(db);
        Stmt *s = g_hash_table_lookup(d->stmts, sql);

        if (!s) {
                s = g_new0(Stmt, 1);
                s->parent.db = db;
                s->sql = sql_pg_statement(sql, &s->nparams);
                s->table = written_table(sql);
                s->values = g_new0(char *, MAX(s->nparams, 1));
                s->types = g_new0(Oid, MAX(s->nparams, 1));
                g_snprintf(s->name, sizeof s->name, "s%u", ++d->next_name);
                g_hash_table_insert(d->stmts, g_strdup(sql), s);
        }
        stmt_clear(s);
        for (int i = 0; i < s->nparams; i++) {
                g_clear_pointer(&s->values[i], g_free);
                if (!s->prepared)
                        s->types[i] = 0;
        }
        return &s->parent;
}

#define INT8OID 20

static void bind_int(SqlStmt *st, int i, gint64 v)
{
        Stmt *s = S(st);

        if (i < 1 || i > s->nparams)
                return;
        g_free(s->values[i - 1]);
        s->values[i - 1] = g_strdup_printf("%" G_GINT64_FORMAT, v);
        if (!s->prepared)
                s->types[i - 1] = INT8OID;
}

static void bind_text(SqlStmt *st, int i, const char *v)
{
        Stmt *s = S(st);

        if (i < 1 || i > s->nparams)
                return;
        g_free(s->values[i - 1]);
        s->values[i - 1] = g_strdup(v);
}

static void bind_null(SqlStmt *st, int i)
{
        bind_text(st, i, NULL);
}


static gboolean run_once(Stmt *s)
{
        Db *d = D(s->parent.db);
        ExecStatusType rc;
        gboolean wrap = s->table && !d->in_tx;

        if (!ensure_connected(d))
                return FALSE;
        if (!s->prepared) {
                PGresult *r = PQprepare(d->conn, s->name, s->sql, s->nparams, s->types);
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                        fail(d, r);
                        PQclear(r);
                        return FALSE;
                }
                PQclear(r);
                s->prepared = TRUE;
        }
        /* A write alone is a transaction of its own. */
        if (wrap && !write_begin(d, g_str_equal(s->table, "events")))
                return FALSE;
        s->res = PQexecPrepared(d->conn, s->name, s->nparams, (const char *const *)s->values, NULL,
                                NULL, 0);
        rc = PQresultStatus(s->res);
        if (rc != PGRES_TUPLES_OK && rc != PGRES_COMMAND_OK) {
                fail(d, s->res);
                if (wrap)
                        exec_simple(d, "ROLLBACK");
                return FALSE;
        }
        if (wrap && !exec_simple(d, "COMMIT"))
                return FALSE;
        s->rows = rc == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
        d->changes = g_ascii_strtoll(PQcmdTuples(s->res), NULL, 10);
        for (gint64 i = 0; s->table && i < d->changes; i++)
                sql_table_changed(s->table);
        note_state(d, FALSE);
        return TRUE;
}

static gboolean run(Stmt *s)
{
        Db *d = D(s->parent.db);

        if (run_once(s))
                return TRUE;
        g_clear_pointer(&s->res, PQclear);
        return retry_on_new_connection(d) && run_once(s);
}

static SqlStep step(SqlStmt *st)
{
        Stmt *s = S(st);

        if (!s->res && !run(s))
                return SQL_FAIL;
        s->row++;
        return s->row < s->rows ? SQL_ROW : SQL_DONE;
}

static gboolean column_null(SqlStmt *st, int i)
{
        Stmt *s = S(st);

        return !s->res || s->row >= s->rows || PQgetisnull(s->res, s->row, i);
}

static const char *column_text(SqlStmt *st, int i)
{
        Stmt *s = S(st);

        if (column_null(st, i))
                return NULL;
        return PQgetvalue(s->res, s->row, i);
}

static gint64 column_int(SqlStmt *st, int i)
{
        const char *v = column_text(st, i);

        if (!v)
                return 0;
        if (v[0] == 't' && !v[1])
                return 1;
        if (v[0] == 'f' && !v[1])
                return 0;
        return g_ascii_strtoll(v, NULL, 10);
}

static void reset(SqlStmt *st)
{
        stmt_clear(S(st));
}

static int column_count(SqlStmt *st)
{
        return S(st)->res ? PQnfields(S(st)->res) : 0;
}

static const char *column_name(SqlStmt *st, int i)
{
        return S(st)->res ? PQfname(S(st)->res, i) : NULL;
}

/* --- transactions and the rest ------------------------------------------------------------- */

static gboolean exec_simple(Db *d, const char *sql)
{
        PGresult *r = PQexec(d->conn, sql);
        ExecStatusType rc = PQresultStatus(r);
        gboolean ok = rc == PGRES_COMMAND_OK || rc == PGRES_TUPLES_OK;

        if (!ok)
                fail(d, r);
        else
                note_state(d, FALSE);
        if (ok && g_str_equal(PQcmdStatus(r), "ROLLBACK") && g_str_equal(sql, "COMMIT")) {
                /* COMMIT of a failed transaction answers ROLLBACK */
                g_strlcpy(d->sqlstate, "40000", sizeof d->sqlstate);
                g_free(d->errmsg);
                d->errmsg = g_strdup("the transaction failed and was rolled back");
                ok = FALSE;
        }
        PQclear(r);
        return ok;
}

static gboolean exec(SqlDb *db, const char *sql, GError **error)
{
        Db *d = D(db);
        gboolean ok = ensure_connected(d) && exec_simple(d, sql);

        if (!ok && retry_on_new_connection(d))
                ok = ensure_connected(d) && exec_simple(d, sql);
        if (!ok) {
                g_set_error(error, ATRIUM_ERROR, code_of(d->sqlstate), "database error: %s",
                            d->errmsg);
                return FALSE;
        }
        return TRUE;
}

static gboolean begin_as(SqlDb *db, gboolean shared, GError **error)
{
        Db *d = D(db);

        gboolean ok = ensure_connected(d) && write_begin(d, shared);

        if (!ok && retry_on_new_connection(d))
                ok = ensure_connected(d) && write_begin(d, shared);
        if (!ok)
                return db_error(db, error, "starting a transaction");
        d->in_tx = TRUE;
        return TRUE;
}

static gboolean begin(SqlDb *db, GError **error)
{
        return begin_as(db, FALSE, error);
}

static gboolean begin_rows(SqlDb *db, GError **error)
{
        return begin_as(db, TRUE, error);
}

static gboolean commit(SqlDb *db, GError **error)
{
        Db *d = D(db);
        gboolean ok = exec_simple(d, "COMMIT");

        if (!ok && PQtransactionStatus(d->conn) != PQTRANS_IDLE)
                exec_simple(d, "ROLLBACK");
        d->in_tx = FALSE;
        return ok || db_error(db, error, "committing");
}

static void rollback(SqlDb *db)
{
        Db *d = D(db);

        if (d->in_tx && PQstatus(d->conn) == CONNECTION_OK)
                exec_simple(d, "ROLLBACK");
        d->in_tx = FALSE;
}

static gint64 changes(SqlDb *db)
{
        return D(db)->changes;
}

static int schema_version(SqlDb *db)
{
        Db *d = D(db);
        PGresult *r;
        int v = -1;

        if (!ensure_connected(d))
                return -1;
        r = PQexec(d->conn, "SELECT to_regclass('atrium_schema') IS NOT NULL");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                v = g_str_equal(PQgetvalue(r, 0, 0), "t") ? -2 : 0;
        else
                fail(d, r);
        PQclear(r);
        if (v != -2)
                return v;
        r = PQexec(d->conn, "SELECT max(version) FROM atrium_schema");
        v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                    ? (int)g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : -1;
        if (v < 0)
                fail(d, r);
        PQclear(r);
        return v;
}

static gboolean set_schema_version(SqlDb *db, int version, GError **error)
{
        g_autofree char *sql = g_strdup_printf(
                "CREATE TABLE IF NOT EXISTS atrium_schema (version integer NOT NULL);"
                "DELETE FROM atrium_schema; INSERT INTO atrium_schema (version) VALUES (%d)",
                version);

        return exec(db, sql, error);
}

static gboolean exec_schema(SqlDb *db, const char *sql, GError **error)
{
        g_autofree char *pg = sql_pg_schema(sql);

        return exec(db, pg, error);
}

/* A migration runs in one transaction on PostgreSQL (its DDL included): a failed one leaves the
 * database as it was, so no copy is made here (pg_dump, or the server's own backups, keep the
 * installation's history; the admin guide says so). */
static gboolean backup(SqlDb *db, const char *path, GError **error)
{
        return TRUE;
}

/* An identity column's sequence moved past the copied ids (tables with an id column only). */
static gboolean ids_copied(SqlDb *db, const char *table, GError **error)
{
        g_autofree char *sql =
                g_strdup_printf("SELECT setval(pg_get_serial_sequence('%s', 'id'), "
                                "coalesce((SELECT max(id) FROM %s), 0) + 1, false) "
                                "WHERE pg_get_serial_sequence('%s', 'id') IS NOT NULL",
                                table, table, table);

        return exec(db, sql, error);
}

static const char *location(SqlDb *db)
{
        return D(db)->where;
}

static void db_close(SqlDb *db)
{
        Db *d = D(db);

        g_hash_table_unref(d->stmts);
        PQfinish(d->conn);
        g_free(d->url);
        if (d->password) {
                memset(d->password, 0, strlen(d->password));
                g_free(d->password);
        }
        g_free(d->where);
        g_free(d->errmsg);
        g_free(d);
}

static SqlDb *open_peer(SqlDb *db, GError **error);

static const SqlOps pg_ops = {
        .name = "postgresql",
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
        .now_ms = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
        .for_update = " FOR UPDATE OF t",
        .for_update_skip_locked = " FOR UPDATE OF t SKIP LOCKED",
        .exec = exec,
        .exec_schema = exec_schema,
        .begin = begin,
        .begin_rows = begin_rows,
        .commit = commit,
        .rollback = rollback,
        .changes = changes,
        .error = db_error,
        .schema_version = schema_version,
        .set_schema_version = set_schema_version,
        .backup = backup,
        .location = location,
};

static Db *db_new(const char *url, const char *password, PGconn *conn)
{
        Db *d = g_new0(Db, 1);

        d->parent.ops = &pg_ops;
        d->url = g_strdup(url);
        d->password = g_strdup(password);
        d->conn = conn;
        d->where = g_strdup_printf("postgresql://%s:%s/%s", PQhost(conn), PQport(conn), PQdb(conn));
        d->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_free);
        return d;
}

SqlDb *sql_open_postgresql(const char *url, const char *password, GError **error)
{
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(url, &err);
        gboolean has_password = FALSE;
        PGconn *c;

        if (!opts) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "store.url is not a PostgreSQL connection string or URL: %s",
                            err ? g_strchomp(err) : "out of memory");
                PQfreemem(err);
                return NULL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (g_str_equal(o->keyword, "password") && o->val && *o->val)
                        has_password = TRUE;
        PQconninfoFree(opts);
        if (has_password) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the database URL holds a password: give it in a file instead "
                            "(store.password_file, or --password-file), readable by atriumd "
                            "only, never in a URL or on a command line");
                return NULL;
        }
        if (!(c = connect_to(url, password, error)))
                return NULL;
        return &db_new(url, password, c)->parent;
}

static SqlDb *open_peer(SqlDb *db, GError **error)
{
        Db *d = D(db);
        PGconn *c = connect_to(d->url, d->password, error);

        return c ? &db_new(d->url, d->password, c)->parent : NULL;
}
