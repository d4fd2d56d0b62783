/* Copying an installation's state from one database to another (atriumd store migrate):
 * SQLite to PostgreSQL, or back. Both sides are opened (and migrated) by this binary, so they
 * have the same tables; the rows go in the order the tables were made, ids kept, each value as
 * text (both engines convert it to the column's type). A column added later that references
 * a table made after its own (desktops.terminal_id, say) is copied NULL first and set in a
 * second pass. Both sides hold their write transaction throughout: no writer changes the
 * source meanwhile, and the target gets all of it or nothing. Afterwards every table is
 * counted and checksummed on both sides: the checksum adds up a digest of each row, so the
 * order in which each engine returns rows does not matter. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"

#include <string.h>

/* "table.column" of the columns added by ALTER TABLE … ADD COLUMN … REFERENCES to a table made
 * after the column's own. */
typedef struct {
        GPtrArray *tables;
        GHashTable *out;
} Refs;

static void added_reference(GMatchInfo *m, gpointer data)
{
        Refs *r = data;
        g_autofree char *t = g_match_info_fetch(m, 1);
        g_autofree char *c = g_match_info_fetch(m, 2);
        g_autofree char *to = g_match_info_fetch(m, 3);
        guint own, target;

        if (g_ptr_array_find_with_equal_func(r->tables, t, g_str_equal, &own) &&
            g_ptr_array_find_with_equal_func(r->tables, to, g_str_equal, &target) && target > own)
                g_hash_table_add(r->out, g_strdup_printf("%s.%s", t, c));
}

static GHashTable *forward_refs(GPtrArray *tables)
{
        Refs r = {tables, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};

        schema_scan(
                "ALTER TABLE ([a-z_0-9]+) ADD COLUMN ([a-z_0-9]+) INTEGER REFERENCES ([a-z_0-9]+)",
                added_reference, &r);
        return r.out;
}

typedef struct {
        gint64 rows;
        guint64 sum;
} Tally;

/* A row's contribution to its table's checksum: the first 8 bytes of the SHA-256 of its
 * values (each with a mark telling NULL from text). */
static guint64 row_digest(SqlStmt *st, int ncols)
{
        g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
        guint8 d[32];
        gsize len = sizeof d;
        guint64 v = 0;

        for (int i = 0; i < ncols; i++) {
                const char *t = sql_column_text(st, i);
                g_checksum_update(c, (const guchar *)(t ? "T" : "N"), 1);
                if (t)
                        g_checksum_update(c, (const guchar *)t, strlen(t) + 1);
        }
        g_checksum_get_digest(c, d, &len);
        for (int i = 0; i < 8; i++)
                v = v << 8 | d[i];
        return v;
}

/* Count and checksum TABLE in S. */
static gboolean tally(Store *s, const char *table, Tally *out, GError **error)
{
        g_autofree char *sql = g_strdup_printf("SELECT * FROM %s", table);
        SqlStmt *st = sqs_prep(s, sql, error);
        SqlStep rc;

        *out = (Tally){0};
        if (!st)
                return FALSE;
        while ((rc = sql_step(st)) == SQL_ROW) {
                out->rows++;
                out->sum += row_digest(st, st->db->ops->column_count(st));
        }
        sql_reset(st);
        if (rc != SQL_DONE) {
                g_autofree char *what = g_strdup_printf("reading table %s", table);
                return sqs_db_error(s, error, what);
        }
        return TRUE;
}

static gint64 count_rows(Store *s, const char *table, GError **error)
{
        g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM %s", table);
        SqlStmt *st = sqs_prep(s, sql, error);
        gint64 n = -1;

        if (!st)
                return -1;
        if (sql_step(st) == SQL_ROW)
                n = sql_column_int(st, 0);
        else
                sqs_db_error(s, error, "counting rows");
        sql_reset(st);
        return n;
}

/* Copy TABLE's rows, its columns in DEFERRED (table.column) NULL for now. */
static gboolean copy_table(Store *from, Store *to, const char *table, GHashTable *deferred,
                           GPtrArray *later, GError **error)
{
        g_autofree char *select = g_strdup_printf("SELECT * FROM %s", table);
        g_autofree char *insert = NULL;
        SqlStmt *src = sqs_prep(from, select, error), *dst = NULL;
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autofree gboolean *skip = NULL;
        int ncols = 0, id_col = -1;
        SqlStep rc;

        if (!src)
                return FALSE;
        while ((rc = sql_step(src)) == SQL_ROW) {
                if (!dst) {
                        g_autoptr(GString) cols = g_string_new(NULL), qs = g_string_new(NULL);
                        ncols = src->db->ops->column_count(src);
                        skip = g_new0(gboolean, ncols);
                        for (int i = 0; i < ncols; i++) {
                                const char *name = src->db->ops->column_name(src, i);
                                g_autofree char *key = g_strdup_printf("%s.%s", table, name);
                                g_ptr_array_add(names, g_strdup(name));
                                if (g_str_equal(name, "id"))
                                        id_col = i;
                                skip[i] = g_hash_table_contains(deferred, key);
                                g_string_append_printf(cols, "%s%s", i ? ", " : "", name);
                                g_string_append(qs, i ? ", ?" : "?");
                        }
                        insert = g_strdup_printf("INSERT INTO %s (%s) VALUES (%s)", table,
                                                 cols->str, qs->str);
                }
                if (!(dst = sqs_prep(to, insert, error))) {
                        sql_reset(src);
                        return FALSE;
                }
                for (int i = 0; i < ncols; i++) {
                        const char *v = sql_column_text(src, i);
                        sql_bind_text(dst, i + 1, skip[i] ? NULL : v);
                        if (skip[i] && v && id_col >= 0) /* the statement, its value, the id */
                                g_ptr_array_add(later,
                                                g_strjoin("\n", table, (char *)names->pdata[i], v,
                                                          sql_column_text(src, id_col), NULL));
                }
                if (!sqs_step_done(to, dst, error, "copying a row")) {
                        sql_reset(src);
                        g_prefix_error(error, "table %s: ", table);
                        return FALSE;
                }
        }
        sql_reset(src);
        if (rc != SQL_DONE) {
                g_autofree char *what = g_strdup_printf("reading table %s", table);
                return sqs_db_error(from, error, what);
        }
        if (id_col >= 0 && !to->db->ops->ids_copied(to->db, table, error))
                return FALSE;
        return TRUE;
}

/* The tables the migrations fill themselves. */
static const char *const seeded[] = {"settings", "leader", NULL};

static gboolean copy_all(Store *from, Store *to, GPtrArray *tables, StoreCopyReport report,
                         gpointer data, GError **error)
{
        g_autoptr(GHashTable) deferred = forward_refs(tables);
        g_autoptr(GPtrArray) later = g_ptr_array_new_with_free_func(g_free);

        for (guint i = 0; i < tables->len; i++) {
                const char *t = tables->pdata[i];
                gint64 n = count_rows(to, t, error);
                if (n < 0)
                        return FALSE;
                if (n > 0 && !g_strv_contains(seeded, t)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the target database %s is not empty (table %s has "
                                    "%" G_GINT64_FORMAT
                                    " rows): copy only into a new, empty database",
                                    store_location(to), t, n);
                        return FALSE;
                }
        }
        /* The rows the target's migrations made (a new installation id, an empty lease) give
         * way to the source's. */
        for (const char *const *t = seeded; *t; t++) {
                g_autofree char *sql = g_strdup_printf("DELETE FROM %s", *t);
                if (!sql_exec(to->db, sql, error))
                        return FALSE;
        }
        for (guint i = 0; i < tables->len; i++)
                if (!copy_table(from, to, tables->pdata[i], deferred, later, error))
                        return FALSE;
        for (guint i = 0; i < later->len; i++) {
                g_auto(GStrv) p = g_strsplit(later->pdata[i], "\n", 4);
                g_autofree char *sql =
                        g_strdup_printf("UPDATE %s SET %s = ? WHERE id = ?", p[0], p[1]);
                SqlStmt *st = sqs_prep(to, sql, error);
                if (!st)
                        return FALSE;
                sql_bind_text(st, 1, p[2]);
                sql_bind_text(st, 2, p[3]);
                if (!sqs_step_done(to, st, error, "setting a reference"))
                        return FALSE;
        }
        for (guint i = 0; i < tables->len; i++) {
                const char *t = tables->pdata[i];
                Tally a, b;
                g_autofree char *sum = NULL;
                if (!tally(from, t, &a, error) || !tally(to, t, &b, error))
                        return FALSE;
                if (a.rows != b.rows || a.sum != b.sum) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                    "table %s differs after the copy: %" G_GINT64_FORMAT
                                    " rows (checksum %016" G_GINT64_MODIFIER
                                    "x) in %s, %" G_GINT64_FORMAT " (%016" G_GINT64_MODIFIER
                                    "x) in %s",
                                    t, a.rows, a.sum, store_location(from), b.rows, b.sum,
                                    store_location(to));
                        return FALSE;
                }
                sum = g_strdup_printf("%016" G_GINT64_MODIFIER "x", a.sum);
                if (report)
                        report(t, a.rows, sum, data);
        }
        return TRUE;
}

gboolean store_copy(Store *from, Store *to, StoreCopyReport report, gpointer data, GError **error)
{
        g_autoptr(GPtrArray) tables = schema_tables();

        if (!sqs_tx_begin(from, error))
                return FALSE;
        if (!sqs_tx_begin(to, error)) {
                sqs_tx_rollback(from);
                return FALSE;
        }
        if (!copy_all(from, to, tables, report, data, error)) {
                sqs_tx_rollback(to);
                sqs_tx_rollback(from);
                return FALSE;
        }
        sqs_tx_rollback(from); /* it only read */
        return sqs_tx_commit(to, error);
}
