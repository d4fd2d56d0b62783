/* SQLite backend of the store: WAL mode, foreign keys on, prepared statements cached, every
 * change and its audit event in one IMMEDIATE transaction. Used from one thread (the manager's
 * loop); SQLite's own locking guards other processes. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-sqlite-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <sqlite3.h>
#include <string.h>

/* SqliteStore: store-sqlite-private.h */


gboolean sqs_db_error(SqliteStore *s, GError **error, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "database error while %s: %s", what,
                    sqlite3_errmsg(s->db));
        return FALSE;
}

/* A cached prepared statement, reset and unbound. */
sqlite3_stmt *sqs_prep(SqliteStore *s, const char *sql, GError **error)
{
        sqlite3_stmt *stmt = g_hash_table_lookup(s->stmts, sql);

        if (stmt) {
                sqlite3_reset(stmt);
                sqlite3_clear_bindings(stmt);
                return stmt;
        }
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
            SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "database error preparing a statement: %s", sqlite3_errmsg(s->db));
                return NULL;
        }
        g_hash_table_insert(s->stmts, g_strdup(sql), stmt);
        return stmt;
}

static gboolean exec(SqliteStore *s, const char *sql, GError **error)
{
        char *msg = NULL;

        if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "database error: %s",
                            msg ? msg : sqlite3_errmsg(s->db));
                sqlite3_free(msg);
                return FALSE;
        }
        return TRUE;
}

gboolean sqs_tx_begin(SqliteStore *s, GError **error)
{
        return exec(s, "BEGIN IMMEDIATE", error);
}

gboolean sqs_tx_commit(SqliteStore *s, GError **error)
{
        if (exec(s, "COMMIT", error))
                return TRUE;
        exec(s, "ROLLBACK", NULL);
        return FALSE;
}

void sqs_tx_rollback(SqliteStore *s)
{
        if (!sqlite3_get_autocommit(s->db))
                exec(s, "ROLLBACK", NULL);
}

/* Step a statement expected to return no rows. */
gboolean sqs_step_done(SqliteStore *s, sqlite3_stmt *stmt, GError **error, const char *what)
{
        int rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
                return TRUE;
        return sqs_db_error(s, error, what);
}

/* ---- rows as JSON ------------------------------------------------------------------------ */

static gboolean field_stored(const Field *f)
{
        return f->type != FIELD_SECRET;
}

/* SELECT list and joins for a resource; column order: id, fields (+ ref name), timestamps. */
static char *select_sql(const Resource *res)
{
        GString *cols = g_string_new("t.id");
        GString *joins = g_string_new(NULL);

        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                if (!field_stored(f))
                        continue;
                g_string_append_printf(cols, ", t.%s", field_column(f));
                if (f->type == FIELD_REF) {
                        const Resource *r = resource_by_kind(f->ref);
                        g_string_append_printf(cols, ", j%zu.name", i);
                        g_string_append_printf(joins, " LEFT JOIN %s j%zu ON j%zu.id = t.%s",
                                               r->table, i, i, field_column(f));
                }
        }
        g_string_append(cols, ", t.created_at, t.updated_at");
        g_string_append_printf(cols, " FROM %s t%s", res->table, joins->str);
        g_string_free(joins, TRUE);
        return g_string_free(cols, FALSE);
}

/* Keys are field names from the resource table: plain identifiers, nothing to escape. */
/* How a row of select_sql() becomes JSON: for each column, the key fragment that precedes its
 * value (',"name":') and how to write the value. Made once per resource, then shared by every
 * thread: lists are the API's hot path. */
typedef enum { OUT_INT, OUT_BOOL, OUT_TEXT } OutKind;

typedef struct {
        char *frag;
        gsize frag_len;
        OutKind kind;
} OutColumn;

typedef struct {
        OutColumn *cols;
        guint n;
} RowFormat;

static void format_add(GArray *a, const char *key, OutKind kind)
{
        OutColumn c = {g_strdup_printf("%s\"%s\":", a->len ? "," : "{", key), 0, kind};

        c.frag_len = strlen(c.frag);
        g_array_append_val(a, c);
}

static GHashTable *build_formats(void)
{
        GHashTable *formats = g_hash_table_new(NULL, NULL);
        gsize n;
        const Resource *const *all = resources_all(&n);

        for (gsize r = 0; r < n; r++) {
                GArray *a = g_array_new(FALSE, FALSE, sizeof(OutColumn));
                RowFormat *rf = g_new0(RowFormat, 1);
                format_add(a, "id", OUT_INT);
                for (gsize i = 0; i < all[r]->n_fields; i++) {
                        const Field *f = &all[r]->fields[i];
                        if (!field_stored(f))
                                continue;
                        if (f->type == FIELD_REF) {
                                format_add(a, field_column(f), OUT_INT);
                                format_add(a, f->name, OUT_TEXT);
                        } else {
                                format_add(a, f->name,
                                           f->type == FIELD_INT    ? OUT_INT
                                           : f->type == FIELD_BOOL ? OUT_BOOL
                                                                   : OUT_TEXT);
                        }
                }
                format_add(a, "created_at", OUT_TEXT);
                format_add(a, "updated_at", OUT_TEXT);
                rf->n = a->len;
                rf->cols = (OutColumn *)g_array_free(a, FALSE);
                g_hash_table_insert(formats, (gpointer)all[r], rf);
        }
        return formats;
}

static const RowFormat *row_format(const Resource *res)
{
        static GHashTable *formats;

        if (g_once_init_enter(&formats))
                g_once_init_leave(&formats, build_formats());
        return g_hash_table_lookup(formats, res);
}

static void append_int64(GString *out, gint64 v)
{
        char buf[24], *p = buf + sizeof(buf);
        guint64 u = v < 0 ? -(guint64)v : (guint64)v;

        do
                *--p = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (v < 0)
                *--p = '-';
        g_string_append_len(out, p, buf + sizeof(buf) - p);
}

/* One row as a JSON object, written straight from the columns of select_sql(). */
static void row_append_json(GString *out, const Resource *res, sqlite3_stmt *st)
{
        const RowFormat *rf = row_format(res);

        for (guint col = 0; col < rf->n; col++) {
                const OutColumn *c = &rf->cols[col];
                g_string_append_len(out, c->frag, c->frag_len);
                if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                        g_string_append_len(out, "null", 4);
                        continue;
                }
                switch (c->kind) {
                case OUT_INT:
                        append_int64(out, sqlite3_column_int64(st, col));
                        break;
                case OUT_BOOL:
                        if (sqlite3_column_int(st, col))
                                g_string_append_len(out, "true", 4);
                        else
                                g_string_append_len(out, "false", 5);
                        break;
                case OUT_TEXT:
                        json_append_string(out, (const char *)sqlite3_column_text(st, col));
                        break;
                }
        }
        g_string_append_c(out, '}');
}

static JsonObject *row_to_json(const Resource *res, sqlite3_stmt *st)
{
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(JsonNode) node = NULL;

        row_append_json(text, res, st);
        node = json_from_text(text->str, text->len);
        g_assert(node && JSON_NODE_HOLDS_OBJECT(node)); /* we wrote it */
        return json_object_ref(json_node_get_object(node));
}

static const char *object_label(const Resource *res, JsonObject *o, char **tmp)
{
        if (res->named && json_object_has_member(o, "name"))
                return json_object_get_string_member(o, "name");
        *tmp = g_strdup_printf("#%" G_GINT64_FORMAT, json_object_get_int_member(o, "id"));
        return *tmp;
}

/* ---- lookups ----------------------------------------------------------------------------- */

/* Row id of an object named by id or name, or 0 with a NOT_FOUND error. */
static gint64 find_id(SqliteStore *s, const Resource *res, const char *id_or_name, GError **error)
{
        g_autofree char *sql = NULL;
        sqlite3_stmt *st;
        gint64 id = 0;
        gboolean by_id = util_parse_id(id_or_name, &id);

        if (!by_id && !res->named) {
                g_autofree char *q = util_quote(id_or_name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "%ss are named by id; '%s' is not an id", res->kind, q);
                return 0;
        }
        sql = g_strdup_printf("SELECT id FROM %s WHERE %s = ?", res->table, by_id ? "id" : "name");
        if (!(st = sqs_prep(s, sql, error)))
                return 0;
        if (by_id)
                sqlite3_bind_int64(st, 1, id);
        else
                sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_STATIC);
        id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (!id) {
                g_autofree char *q = util_quote(id_or_name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no %s '%s'",
                            res->kind, q);
        }
        return id;
}

static JsonObject *get_row(SqliteStore *s, const Resource *res, gint64 id, gint64 owner_id,
                           GError **error)
{
        g_autofree char *base = select_sql(res);
        g_autofree char *sql = NULL;
        const Field *of =
                res->owner_field && owner_id > 0 ? resource_field(res, res->owner_field) : NULL;
        sqlite3_stmt *st;
        JsonObject *o = NULL;

        sql = of ? g_strdup_printf("SELECT %s WHERE t.id = ? AND t.%s = ?", base, field_column(of))
                 : g_strdup_printf("SELECT %s WHERE t.id = ?", base);
        if (!(st = sqs_prep(s, sql, error)))
                return NULL;
        sqlite3_bind_int64(st, 1, id);
        if (of)
                sqlite3_bind_int64(st, 2, owner_id);
        if (sqlite3_step(st) == SQLITE_ROW)
                o = row_to_json(res, st);
        sqlite3_reset(st);
        if (!o)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "there is no %s '%" G_GINT64_FORMAT "'", res->kind, id);
        return o;
}

static JsonObject *sq_get(Store *st, const Resource *res, const char *id_or_name, gint64 owner_id,
                          GError **error)
{
        SqliteStore *s = S(st);
        g_autoptr(GError) local = NULL;
        gint64 id = find_id(s, res, id_or_name, error);
        JsonObject *o;

        if (!id)
                return NULL;
        o = get_row(s, res, id, owner_id, &local);
        if (!o) { /* hidden from this user: same answer as absent, naming what was asked */
                g_autofree char *q = util_quote(id_or_name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no %s '%s'",
                            res->kind, q);
        }
        return o;
}

/* ---- values ------------------------------------------------------------------------------ */

/* Resolve a reference value (id or name) to an id; BAD_REFERENCE when absent. */
static gboolean resolve_ref(SqliteStore *s, const Field *f, JsonNode *v, gint64 *out,
                            GError **error)
{
        const Resource *r = resource_by_kind(f->ref);
        g_autofree char *text = NULL;
        g_autoptr(GError) local = NULL;

        *out = 0;
        if (!v || JSON_NODE_HOLDS_NULL(v))
                return TRUE;
        text = json_node_get_value_type(v) == G_TYPE_INT64
                       ? g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(v))
                       : g_strdup(json_node_get_string(v));
        *out = find_id(s, r, text, &local);
        if (*out)
                return TRUE;
        atrium_set_field_error(error, ATRIUM_ERROR_BAD_REFERENCE, f->name,
                    "field '%s': there is no %s '%s'", f->name, r->kind, text);
        return FALSE;
}

static void bind_value(sqlite3_stmt *st, int idx, const Field *f, JsonNode *v, gint64 ref_id)
{
        if (f->type == FIELD_REF) {
                if (ref_id)
                        sqlite3_bind_int64(st, idx, ref_id);
                else
                        sqlite3_bind_null(st, idx);
                return;
        }
        if (!v || JSON_NODE_HOLDS_NULL(v)) {
                sqlite3_bind_null(st, idx);
                return;
        }
        switch (f->type) {
        case FIELD_INT:
                sqlite3_bind_int64(st, idx, json_node_get_int(v));
                break;
        case FIELD_BOOL:
                sqlite3_bind_int(st, idx, json_node_get_boolean(v));
                break;
        default:
                sqlite3_bind_text(st, idx, json_node_get_string(v), -1, SQLITE_TRANSIENT);
                break;
        }
}

/* A field's default as a JSON node. */
static JsonNode *default_node(const Field *f)
{
        if (!f->def)
                return json_node_new(JSON_NODE_NULL);
        return model_value_from_text(f, f->def, NULL);
}

static const char *secret_column(const Field *f)
{
        g_autofree char *c = g_strconcat(f->name, "_hash", NULL);
        return g_intern_string(c);
}

static gboolean check_unique(SqliteStore *s, const Resource *res, JsonObject *values,
                             gint64 self_id, GError **error)
{
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                g_autofree char *sql = NULL;
                sqlite3_stmt *st;
                gboolean taken;
                const char *v;

                if (!(f->flags & F_UNIQUE) || !json_object_has_member(values, f->name))
                        continue;
                v = json_object_get_string_member(values, f->name);
                sql = g_strdup_printf("SELECT 1 FROM %s WHERE %s = ? AND id != ?", res->table,
                                      f->name);
                if (!(st = sqs_prep(s, sql, error)))
                        return FALSE;
                sqlite3_bind_text(st, 1, v, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, self_id);
                taken = sqlite3_step(st) == SQLITE_ROW;
                sqlite3_reset(st);
                if (taken) {
                        if (g_str_equal(f->name, "name"))
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE,
                                            "%s named '%s' already exists", resource_a(res), v);
                        else
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE,
                                            "%s with %s '%s' already exists", resource_a(res),
                                            f->name, v);
                        return FALSE;
                }
        }
        return TRUE;
}

static char *detail_text(const Resource *res, JsonObject *values)
{
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
        JsonObject *copy = json_object_new();
        g_autoptr(GList) members = json_object_get_members(values);

        for (GList *l = members; l; l = l->next) {
                const Field *f = resource_field(res, l->data);
                if (f && f->type == FIELD_SECRET)
                        json_object_set_string_member(copy, l->data, "(changed)");
                else
                        json_object_set_member(
                                copy, l->data,
                                json_node_copy(json_object_get_member(values, l->data)));
        }
        json_node_take_object(node, copy);
        return json_node_to_text(node, FALSE);
}

gboolean sqs_event_insert(SqliteStore *s, const Actor *a, const char *action, const char *kind,
                             gint64 id, const char *name, const char *detail, GError **error)
{
        g_autofree char *now = util_now_iso();
        sqlite3_stmt *st = sqs_prep(s,
                                "INSERT INTO events (time, actor, address, action, object_kind, "
                                "object_id, object_name, detail, created_at, updated_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?1)",
                                error);
        if (!st)
                return FALSE;
        sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a && a->name ? a->name : "system", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a && a->address ? a->address : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, kind ? kind : "", -1, SQLITE_STATIC);
        if (id)
                sqlite3_bind_int64(st, 6, id);
        sqlite3_bind_text(st, 7, name ? name : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, detail ? detail : "", -1, SQLITE_STATIC);
        return sqs_step_done(s, st, error, "recording an event");
}

static gboolean sq_event_add(Store *st, const Actor *actor, const char *action, const char *kind,
                             gint64 id, const char *name, const char *detail, GError **error)
{
        return sqs_event_insert(S(st), actor, action, kind, id, name, detail, error);
}

/* At least one enabled admin must remain: checked inside the transaction of any user change. */
static gboolean check_admins(SqliteStore *s, const Resource *res, GError **error)
{
        sqlite3_stmt *st;
        gint64 n;

        if (!g_str_equal(res->table, "users"))
                return TRUE;
        st = sqs_prep(s, "SELECT count(*) FROM users WHERE role = 'admin' AND enabled = 1", error);
        if (!st)
                return FALSE;
        sqlite3_step(st);
        n = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (n > 0)
                return TRUE;
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                    "this would leave no enabled admin; make another user admin first");
        return FALSE;
}

/* ---- create ------------------------------------------------------------------------------ */

static JsonObject *create_tx(SqliteStore *s, const Resource *res, const char *unused,
                             JsonObject *values, const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) merged = json_object_new();
        g_autofree gint64 *refs = g_new0(gint64, res->n_fields);
        g_autofree char *now = util_now_iso();
        g_autofree char *detail = NULL, *tmp = NULL;
        GString *cols = g_string_new(NULL), *qs = g_string_new(NULL);
        g_autofree char *sql = NULL;
        sqlite3_stmt *st;
        JsonObject *row;
        gint64 id;
        int idx = 1;

        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                JsonNode *v = json_object_get_member(values, f->name);
                json_object_set_member(merged, f->name, v ? json_node_copy(v) : default_node(f));
                if (f->type == FIELD_REF &&
                    !resolve_ref(s, f, json_object_get_member(merged, f->name), &refs[i], error))
                        goto fail;
        }
        if (res->check && !res->check(res, merged, error))
                goto fail;
        if (!check_unique(s, res, merged, 0, error))
                goto fail;
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                g_string_append_printf(
                        cols, "%s, ", f->type == FIELD_SECRET ? secret_column(f) : field_column(f));
                g_string_append(qs, "?, ");
        }
        sql = g_strdup_printf("INSERT INTO %s (%screated_at, updated_at) VALUES (%s?, ?)",
                              res->table, cols->str, qs->str);
        if (!(st = sqs_prep(s, sql, error)))
                goto fail;
        for (gsize i = 0; i < res->n_fields; i++)
                bind_value(st, idx++, &res->fields[i],
                           json_object_get_member(merged, res->fields[i].name), refs[i]);
        sqlite3_bind_text(st, idx++, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, idx++, now, -1, SQLITE_STATIC);
        if (!sqs_step_done(s, st, error, "inserting"))
                goto fail;
        id = sqlite3_last_insert_rowid(s->db);
        if (!(row = get_row(s, res, id, 0, error)))
                goto fail;
        detail = detail_text(res, values);
        if (!sqs_event_insert(s, actor, "create", res->kind, id, object_label(res, row, &tmp), detail,
                          error)) {
                json_object_unref(row);
                goto fail;
        }
        g_string_free(cols, TRUE);
        g_string_free(qs, TRUE);
        return row;
fail:
        g_string_free(cols, TRUE);
        g_string_free(qs, TRUE);
        return NULL;
}

/* Ends the transaction of a change that made ROW (taken; NULL: the change failed and set its
 * error): committed, and the row returned; or rolled back, and NULL. */
static JsonObject *tx_end(SqliteStore *s, JsonObject *row, GError **error)
{
        if (!row) {
                sqs_tx_rollback(s);
                return NULL;
        }
        if (!sqs_tx_commit(s, error)) {
                json_object_unref(row);
                return NULL;
        }
        return row;
}

typedef JsonObject *(*RowChange)(SqliteStore *s, const Resource *res, const char *id_or_name,
                                 JsonObject *values, const Actor *actor, GError **error);

/* Run a change that yields the changed row in one transaction: all of it, or none of it. */
static JsonObject *row_tx(SqliteStore *s, RowChange change, const Resource *res,
                          const char *id_or_name, JsonObject *values, const Actor *actor,
                          GError **error)
{
        if (!sqs_tx_begin(s, error))
                return NULL;
        return tx_end(s, change(s, res, id_or_name, values, actor, error), error);
}

static JsonObject *sq_create(Store *st, const Resource *res, JsonObject *values, const Actor *actor,
                             GError **error)
{
        return row_tx(S(st), create_tx, res, NULL, values, actor, error);
}

/* ---- update ------------------------------------------------------------------------------ */

static JsonObject *update_tx(SqliteStore *s, const Resource *res, const char *id_or_name,
                             JsonObject *patch, const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) old = NULL;
        g_autofree gint64 *refs = g_new0(gint64, res->n_fields);
        g_autofree char *now = util_now_iso(), *detail = NULL, *tmp = NULL, *sql = NULL;
        g_autoptr(GString) sets = g_string_new(NULL);
        sqlite3_stmt *st;
        JsonObject *row;
        gint64 id = find_id(s, res, id_or_name, error);
        int idx = 1;

        if (!id || !(old = get_row(s, res, id, 0, error)))
                return NULL;
        /* The merged object, in the same shape as a create body, for the checks. */
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                JsonNode *v = json_object_get_member(patch, f->name);
                if (f->type == FIELD_REF && !v) {
                        JsonNode *cur = json_object_get_member(old, field_column(f));
                        if (cur)
                                json_object_set_member(old, f->name, json_node_copy(cur));
                        else
                                json_object_set_null_member(old, f->name);
                }
                if (v)
                        json_object_set_member(old, f->name, json_node_copy(v));
                if (f->type == FIELD_REF &&
                    !resolve_ref(s, f, json_object_get_member(old, f->name), &refs[i], error))
                        return NULL;
        }
        if (res->check && !res->check(res, old, error))
                return NULL;
        if (!check_unique(s, res, patch, id, error))
                return NULL;
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                if (json_object_has_member(patch, f->name))
                        g_string_append_printf(sets, "%s = ?, ",
                                               f->type == FIELD_SECRET ? secret_column(f)
                                                                       : field_column(f));
        }
        sql = g_strdup_printf("UPDATE %s SET %supdated_at = ? WHERE id = ?", res->table, sets->str);
        if (!(st = sqs_prep(s, sql, error)))
                return NULL;
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                if (json_object_has_member(patch, f->name))
                        bind_value(st, idx++, f, json_object_get_member(patch, f->name), refs[i]);
        }
        sqlite3_bind_text(st, idx++, now, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, idx++, id);
        if (!sqs_step_done(s, st, error, "updating"))
                return NULL;
        if (!check_admins(s, res, error))
                return NULL;
        if (!(row = get_row(s, res, id, 0, error)))
                return NULL;
        detail = detail_text(res, patch);
        if (actor && !sqs_event_insert(s, actor, "update", res->kind, id, object_label(res, row, &tmp), detail,
                          error)) {
                json_object_unref(row);
                return NULL;
        }
        return row;
}

static JsonObject *sq_update(Store *st, const Resource *res, const char *id_or_name,
                             JsonObject *patch, const Actor *actor, GError **error)
{
        return row_tx(S(st), update_tx, res, id_or_name, patch, actor, error);
}

/* ---- delete ------------------------------------------------------------------------------ */

/* Refuse to delete an object that other objects still reference, saying which. */
static gboolean check_unused(SqliteStore *s, const Resource *res, gint64 id, const char *label,
                             GError **error)
{
        gsize n;
        const Resource *const *all = resources_all(&n);

        for (gsize r = 0; r < n; r++) {
                for (gsize i = 0; i < all[r]->n_fields; i++) {
                        const Field *f = &all[r]->fields[i];
                        g_autofree char *sql = NULL;
                        sqlite3_stmt *st;
                        gint64 count;

                        if (f->type != FIELD_REF || !g_str_equal(f->ref, res->kind))
                                continue;
                        sql = g_strdup_printf("SELECT count(*) FROM %s WHERE %s = ?", all[r]->table,
                                              field_column(f));
                        if (!(st = sqs_prep(s, sql, error)))
                                return FALSE;
                        sqlite3_bind_int64(st, 1, id);
                        sqlite3_step(st);
                        count = sqlite3_column_int64(st, 0);
                        sqlite3_reset(st);
                        if (count > 0) {
                                atrium_set_field_error(error, ATRIUM_ERROR_IN_USE, f->name,
                                            "%s '%s' is still used by %" G_GINT64_FORMAT
                                            " %s%s (field '%s'); remove or change %s first",
                                            res->kind, label, count, all[r]->kind,
                                            count == 1 ? "" : "s", f->name,
                                            count == 1 ? "it" : "them");
                                return FALSE;
                        }
                }
        }
        return TRUE;
}

static gboolean delete_tx(SqliteStore *s, const Resource *res, const char *id_or_name,
                          const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) old = NULL;
        g_autofree char *sql = NULL, *tmp = NULL;
        const char *label;
        sqlite3_stmt *st;
        gint64 id = find_id(s, res, id_or_name, error);

        if (!id || !(old = get_row(s, res, id, 0, error)))
                return FALSE;
        label = object_label(res, old, &tmp);
        if (!check_unused(s, res, id, label, error))
                return FALSE;
        sql = g_strdup_printf("DELETE FROM %s WHERE id = ?", res->table);
        if (!(st = sqs_prep(s, sql, error)))
                return FALSE;
        sqlite3_bind_int64(st, 1, id);
        if (!sqs_step_done(s, st, error, "deleting"))
                return FALSE;
        return check_admins(s, res, error) &&
               sqs_event_insert(s, actor, "delete", res->kind, id, label, "", error);
}

static gboolean sq_delete(Store *st, const Resource *res, const char *id_or_name,
                          const Actor *actor, GError **error)
{
        SqliteStore *s = S(st);

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!delete_tx(s, res, id_or_name, actor, error)) {
                sqs_tx_rollback(s);
                return FALSE;
        }
        return sqs_tx_commit(s, error);
}

/* ---- list -------------------------------------------------------------------------------- */

static gboolean filter_value(SqliteStore *s, const Resource *res, const Field *f, const char *text,
                             GPtrArray *sqlv, GArray *ints, GError **error)
{
        g_autoptr(JsonNode) v = NULL;

        if (f->type == FIELD_ENUM) {
                const char *const *c = f->choices;
                while (*c && !g_str_equal(*c, text))
                        c++;
                if (!*c) {
                        g_autofree char *list = g_strjoinv(", ", (char **)f->choices);
                        g_autofree char *q = util_quote(text);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "cannot filter %ss on %s '%s': use one of %s", res->kind,
                                    f->name, q, list);
                        return FALSE;
                }
        }
        if (!(v = model_value_from_text(f, text, error)))
                return FALSE;
        if (f->type == FIELD_REF) {
                g_autoptr(GError) local = NULL;
                gint64 id = 0;
                if (!resolve_ref(s, f, v, &id, &local))
                        id = -1; /* no such object: matches nothing */
                g_array_append_val(ints, id);
                g_ptr_array_add(sqlv, NULL);
                return TRUE;
        }
        g_ptr_array_add(sqlv, g_steal_pointer(&v));
        return TRUE;
}

static void node_free(gpointer n)
{
        if (n)
                json_node_unref(n);
}

static gboolean sq_list_json(Store *st, const Resource *res, const ListQuery *q, GString *out,
                             gint64 *next_after, GError **error)
{
        SqliteStore *s = S(st);
        g_autofree char *base = select_sql(res);
        g_autoptr(GString) where = g_string_new(q->newest_first ? "t.id < ?" : "t.id > ?");
        g_autoptr(GPtrArray) vals = g_ptr_array_new_with_free_func(node_free);
        g_autoptr(GPtrArray) fields = g_ptr_array_new();
        g_autoptr(GArray) ints = g_array_new(FALSE, FALSE, sizeof(gint64));
        g_autofree char *sql = NULL, *like = NULL;
        sqlite3_stmt *stmt;
        gint64 last_id = 0;
        guint n = 0, ref_i = 0;
        int idx = 1;

        *next_after = 0;
        if (q->filters) {
                g_autoptr(GList) keys =
                        g_list_sort(g_hash_table_get_keys(q->filters), (GCompareFunc)g_strcmp0);
                for (GList *l = keys; l; l = l->next) {
                        const Field *f = resource_field(res, l->data);
                        const char *text = g_hash_table_lookup(q->filters, l->data);
                        if (!f || !(f->flags & F_FILTER)) {
                                g_autofree char *quoted = util_quote(l->data);
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "%ss cannot be filtered by '%s'", res->kind, quoted);
                                return FALSE;
                        }
                        if (f->type == FIELD_NAME) {
                                g_autofree char *esc = NULL;
                                GString *e = g_string_new(NULL);
                                for (const char *p = text; *p; p++) {
                                        if (*p == '%' || *p == '_' || *p == '\\')
                                                g_string_append_c(e, '\\');
                                        g_string_append_c(e, *p);
                                }
                                esc = g_string_free(e, FALSE);
                                like = g_strdup_printf("%%%s%%", esc);
                                g_string_append(where, " AND t.name LIKE ? ESCAPE '\\'");
                                continue;
                        }
                        if (!filter_value(s, res, f, text, vals, ints, error))
                                return FALSE;
                        g_ptr_array_add(fields, (gpointer)f);
                        g_string_append_printf(where, " AND t.%s = ?", field_column(f));
                }
        }
        if (q->owner_id > 0 && res->owner_field)
                g_string_append_printf(where, " AND t.%s = ?",
                                       field_column(resource_field(res, res->owner_field)));
        sql = g_strdup_printf("SELECT %s WHERE %s ORDER BY t.id%s LIMIT ?", base, where->str,
                              q->newest_first ? " DESC" : "");
        if (!(stmt = sqs_prep(s, sql, error)))
                return FALSE;
        sqlite3_bind_int64(stmt, idx++,
                           q->newest_first && q->after_id == 0 ? G_MAXINT64 : q->after_id);
        if (like)
                sqlite3_bind_text(stmt, idx++, like, -1, SQLITE_TRANSIENT);
        for (guint i = 0; i < fields->len; i++) {
                const Field *f = fields->pdata[i];
                if (f->type == FIELD_REF)
                        sqlite3_bind_int64(stmt, idx++, g_array_index(ints, gint64, ref_i++));
                else
                        bind_value(stmt, idx++, f, vals->pdata[i], 0);
        }
        if (q->owner_id > 0 && res->owner_field)
                sqlite3_bind_int64(stmt, idx++, q->owner_id);
        sqlite3_bind_int64(stmt, idx++, (gint64)q->limit + 1);
        g_string_append_c(out, '[');
        while (sqlite3_step(stmt) == SQLITE_ROW) {
                if (++n > q->limit) {
                        *next_after = last_id;
                        break;
                }
                if (n > 1)
                        g_string_append_c(out, ',');
                last_id = sqlite3_column_int64(stmt, 0);
                row_append_json(out, res, stmt);
        }
        g_string_append_c(out, ']');
        sqlite3_reset(stmt);
        return TRUE;
}

static gint64 sq_count(Store *st, const Resource *res)
{
        g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM %s", res->table);
        sqlite3_stmt *stmt = sqs_prep(S(st), sql, NULL);
        gint64 n = 0;

        if (stmt && sqlite3_step(stmt) == SQLITE_ROW)
                n = sqlite3_column_int64(stmt, 0);
        if (stmt)
                sqlite3_reset(stmt);
        return n;
}

/* ---- group members ----------------------------------------------------------------------- */

static gboolean member_change(Store *st, const char *group, const char *user, gboolean add,
                              const Actor *actor, GError **error)
{
        SqliteStore *s = S(st);
        gint64 gid, uid;
        sqlite3_stmt *stmt;
        g_autofree char *detail = NULL;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        gid = find_id(s, resource_by_kind("group"), group, error);
        uid = gid ? find_id(s, resource_by_kind("user"), user, error) : 0;
        if (!uid)
                goto fail;
        stmt = sqs_prep(s,
                    add ? "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)"
                        : "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                    error);
        if (!stmt)
                goto fail;
        sqlite3_bind_int64(stmt, 1, gid);
        sqlite3_bind_int64(stmt, 2, uid);
        if (!sqs_step_done(s, stmt, error, "changing group members"))
                goto fail;
        if (!add && sqlite3_changes(s->db) == 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "user '%s' is not a member of group '%s'", user, group);
                goto fail;
        }
        detail = g_strdup_printf("{\"user\":\"%s\"}", user);
        if (!sqs_event_insert(s, actor, add ? "add_member" : "remove_member", "group", gid, group,
                          detail, error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

static gboolean sq_member_add(Store *st, const char *group, const char *user, const Actor *actor,
                              GError **error)
{
        return member_change(st, group, user, TRUE, actor, error);
}

static gboolean sq_member_remove(Store *st, const char *group, const char *user, const Actor *actor,
                                 GError **error)
{
        return member_change(st, group, user, FALSE, actor, error);
}

static JsonArray *sq_members(Store *st, const char *group, GError **error)
{
        SqliteStore *s = S(st);
        gint64 gid = find_id(s, resource_by_kind("group"), group, error);
        sqlite3_stmt *stmt;
        JsonArray *out;

        if (!gid)
                return NULL;
        stmt = sqs_prep(s,
                    "SELECT u.id, u.name, u.display_name FROM group_members m "
                    "JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name",
                    error);
        if (!stmt)
                return NULL;
        sqlite3_bind_int64(stmt, 1, gid);
        out = json_array_new();
        while (sqlite3_step(stmt) == SQLITE_ROW) {
                JsonObject *o = json_object_new();
                json_object_set_int_member(o, "id", sqlite3_column_int64(stmt, 0));
                json_object_set_string_member(o, "name",
                                              (const char *)sqlite3_column_text(stmt, 1));
                json_object_set_string_member(o, "display_name",
                                              (const char *)sqlite3_column_text(stmt, 2));
                json_array_add_object_element(out, o);
        }
        sqlite3_reset(stmt);
        return out;
}

/* The ids a one-parameter query selects, in order. */
static GArray *ids_where(Store *st, const char *sql, gint64 param, GError **error)
{
        sqlite3_stmt *stmt = sqs_prep(S(st), sql, error);
        GArray *out;

        if (!stmt)
                return NULL;
        sqlite3_bind_int64(stmt, 1, param);
        out = g_array_new(FALSE, FALSE, sizeof(gint64));
        while (sqlite3_step(stmt) == SQLITE_ROW) {
                gint64 id = sqlite3_column_int64(stmt, 0);
                g_array_append_val(out, id);
        }
        sqlite3_reset(stmt);
        return out;
}

static GArray *sq_user_groups(Store *st, gint64 user_id, GError **error)
{
        return ids_where(st, "SELECT group_id FROM group_members WHERE user_id = ?", user_id,
                         error);
}

static GArray *sq_pool_free_started(Store *st, gint64 pool_id, GError **error)
{
        return ids_where(st,
                         "SELECT d.id FROM desktops d WHERE d.pool_id = ? AND d.state = 'running' "
                         "AND d.user_id IS NULL AND d.terminal_id IS NULL AND d.dirty = 0 "
                         "AND d.maintenance = 0 AND NOT EXISTS (SELECT 1 FROM sessions s "
                         "WHERE s.desktop_id = d.id) ORDER BY d.id LIMIT 1",
                         pool_id, error);
}

static GArray *sq_pool_in_session(Store *st, gint64 pool_id, GError **error)
{
        return ids_where(st,
                         "SELECT DISTINCT s.desktop_id FROM sessions s JOIN desktops d "
                         "ON d.id = s.desktop_id WHERE d.pool_id = ?",
                         pool_id, error);
}

/* ---- accounts and tokens ----------------------------------------------------------------- */

static gboolean sq_user_auth(Store *st, const char *name, UserAuth *out, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *stmt = sqs_prep(s,
                                  "SELECT id, name, password_hash, role, enabled, source, "
                                  "groups_checked_at FROM users WHERE name = ?",
                                  error);
        gboolean found = FALSE;

        if (!stmt)
                return FALSE;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
                found = TRUE;
                out->id = sqlite3_column_int64(stmt, 0);
                out->name = g_strdup((const char *)sqlite3_column_text(stmt, 1));
                out->password_hash = g_strdup((const char *)sqlite3_column_text(stmt, 2));
                out->role = MAX(role_from_string((const char *)sqlite3_column_text(stmt, 3)), 0);
                out->enabled = sqlite3_column_int(stmt, 4);
                out->directory = g_strcmp0((const char *)sqlite3_column_text(stmt, 5),
                                           "directory") == 0;
                out->groups_checked_at = sqlite3_column_int64(stmt, 6);
        }
        sqlite3_reset(stmt);
        if (!found)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no user '%s'",
                            name);
        return found;
}

static gboolean sq_user_set_password(Store *st, gint64 user_id, const char *hash,
                                     const Actor *actor, GError **error)
{
        SqliteStore *s = S(st);
        g_autofree char *now = util_now_iso();
        sqlite3_stmt *stmt;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        stmt = sqs_prep(s, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", error);
        if (!stmt)
                goto fail;
        sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, now, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, user_id);
        if (!sqs_step_done(s, stmt, error, "changing a password"))
                goto fail;
        /* A new password ends every other login of this user. */
        stmt = sqs_prep(s, "DELETE FROM api_tokens WHERE user_id = ?", error);
        if (!stmt)
                goto fail;
        sqlite3_bind_int64(stmt, 1, user_id);
        if (!sqs_step_done(s, stmt, error, "revoking tokens") ||
            !sqs_event_insert(s, actor, "change_password", "user", user_id, actor->name, "", error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

static gboolean sq_token_insert(Store *st, const char *hash, gint64 user_id, gint64 expires_at,
                                const char *address, GError **error)
{
        SqliteStore *s = S(st);
        g_autofree char *now = util_now_iso();
        sqlite3_stmt *stmt = sqs_prep(s,
                                  "INSERT INTO api_tokens (hash, user_id, created_at, expires_at, "
                                  "address) VALUES (?, ?, ?, ?, ?)",
                                  error);

        if (!stmt)
                return FALSE;
        sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, user_id);
        sqlite3_bind_text(stmt, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, expires_at);
        sqlite3_bind_text(stmt, 5, address ? address : "", -1, SQLITE_STATIC);
        return sqs_step_done(s, stmt, error, "storing a token");
}

static gboolean sq_token_lookup(Store *st, const char *hash, gint64 now, TokenInfo *out,
                                GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *stmt = sqs_prep(s,
                                  "SELECT u.id, u.name, u.role, t.expires_at, t.enrol_only "
                                  "FROM api_tokens t "
                                  "JOIN users u ON u.id = t.user_id "
                                  "WHERE t.hash = ? AND t.expires_at > ? AND u.enabled = 1",
                                  error);
        gboolean found = FALSE;

        if (!stmt)
                return FALSE;
        sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, now);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
                found = TRUE;
                out->user_id = sqlite3_column_int64(stmt, 0);
                out->user_name = g_strdup((const char *)sqlite3_column_text(stmt, 1));
                out->role = MAX(role_from_string((const char *)sqlite3_column_text(stmt, 2)), 0);
                out->expires_at = sqlite3_column_int64(stmt, 3);
                out->enrol_only = sqlite3_column_int(stmt, 4);
        }
        sqlite3_reset(stmt);
        if (!found) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "the token is unknown, expired or revoked; log in again");
                return FALSE;
        }
        /* A group may give its members more than their own role. */
        out->role = sqs_group_role(s, out->user_id, out->role);
        return TRUE;
}

static gboolean sq_token_delete(Store *st, const char *hash, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *stmt =
                sqs_prep(s, "DELETE FROM api_tokens WHERE hash = ? OR expires_at < ?", error);

        if (!stmt)
                return FALSE;
        sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, g_get_real_time() / G_USEC_PER_SEC);
        return sqs_step_done(s, stmt, error, "revoking a token");
}

/* ---- open, migrate, close ---------------------------------------------------------------- */

/* ---- hosts joining ----------------------------------------------------------------------- */

static gboolean sq_join_token_insert(Store *st, const char *hash, gint64 expires_at,
                                     const Actor *actor, gint64 *id, GError **error)
{
        SqliteStore *s = S(st);
        g_autofree char *now = util_now_iso();
        sqlite3_stmt *q;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        q = sqs_prep(s,
                 "INSERT INTO join_tokens (hash, expires_at, created_by, created_at, updated_at) "
                 "VALUES (?1, ?2, ?3, ?4, ?4)",
                 error);
        if (!q)
                goto fail;
        sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, expires_at);
        sqlite3_bind_text(q, 3, actor->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, now, -1, SQLITE_STATIC);
        if (!sqs_step_done(s, q, error, "issuing a join token"))
                goto fail;
        *id = sqlite3_last_insert_rowid(s->db);
        if (!sqs_event_insert(s, actor, "create", "join-token", *id, "", "", error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

/* The token must exist, be unused and unexpired; the host name must be free. The token is
 * spent, the host created with its facts and credential, and the event written: all or none. */
static JsonObject *join_tx(SqliteStore *s, const char *token_hash, gint64 now, JsonObject *facts,
                           const char *credential_hash, const Actor *actor, GError **error)
{
        const Resource *hosts = resource_by_kind("host");
        const char *name = json_object_get_string_member(facts, "name");
        g_autofree char *now_iso = util_now_iso();
        g_autoptr(JsonObject) created = NULL;
        sqlite3_stmt *q = sqs_prep(s,
                               "SELECT id, expires_at, used_at FROM join_tokens WHERE hash = ?",
                               error);
        gint64 token_id, expires;
        gboolean used;

        if (!q)
                return NULL;
        sqlite3_bind_text(q, 1, token_hash, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW) {
                sqlite3_reset(q);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "unknown join token: issue one with 'atrium host join-token create'");
                return NULL;
        }
        token_id = sqlite3_column_int64(q, 0);
        expires = sqlite3_column_int64(q, 1);
        used = ((const char *)sqlite3_column_text(q, 2))[0] != '\0';
        sqlite3_reset(q);
        if (used) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this join token was already used; a token works once, issue a new "
                            "one");
                return NULL;
        }
        if (expires <= now) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this join token has expired; issue a new one");
                return NULL;
        }
        created = create_tx(s, hosts, NULL, facts, actor, error);
        if (!created)
                return NULL;
        q = sqs_prep(s, "UPDATE hosts SET credential_hash = ? WHERE id = ?", error);
        if (!q)
                return NULL;
        sqlite3_bind_text(q, 1, credential_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, json_object_get_int_member(created, "id"));
        if (!sqs_step_done(s, q, error, "storing the host credential"))
                return NULL;
        q = sqs_prep(s, "UPDATE join_tokens SET used_at = ?, host_name = ?, updated_at = ? WHERE id = ?",
                 error);
        if (!q)
                return NULL;
        sqlite3_bind_text(q, 1, now_iso, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, now_iso, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, token_id);
        if (!sqs_step_done(s, q, error, "spending the join token"))
                return NULL;
        return g_steal_pointer(&created);
}

static JsonObject *sq_host_join(Store *st, const char *token_hash, gint64 now, JsonObject *facts,
                                const char *credential_hash, const Actor *actor, GError **error)
{
        SqliteStore *s = S(st);

        if (!sqs_tx_begin(s, error))
                return NULL;
        return tx_end(s, join_tx(s, token_hash, now, facts, credential_hash, actor, error), error);
}

static gint64 sq_host_by_credential(Store *st, const char *credential_hash, GError **error)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q = sqs_prep(s, "SELECT id FROM hosts WHERE credential_hash = ?", error);
        gint64 id = 0;

        if (!q)
                return 0;
        sqlite3_bind_text(q, 1, credential_hash, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
                id = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        if (!id)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "this host credential is not known: the host was removed or never "
                            "joined; join again with a new token");
        return id;
}

static JsonArray *sq_change_batch(Store *st, const StoreChange *c, gsize n, const Actor *actor,
                                  GError **error)
{
        SqliteStore *s = S(st);
        JsonArray *rows;

        if (!sqs_tx_begin(s, error))
                return NULL;
        rows = json_array_new();
        for (gsize i = 0; i < n; i++) {
                JsonObject *row = c[i].id_or_name ? update_tx(s, c[i].res, c[i].id_or_name,
                                                              c[i].values, actor, error)
                                                  : create_tx(s, c[i].res, NULL, c[i].values,
                                                              actor, error);
                if (!row) {
                        sqs_tx_rollback(s);
                        json_array_unref(rows);
                        return NULL;
                }
                json_array_add_object_element(rows, row);
        }
        if (!sqs_tx_commit(s, error)) {
                json_array_unref(rows);
                return NULL;
        }
        return rows;
}

static char *sq_setting(Store *st, const char *key)
{
        SqliteStore *s = S(st);
        sqlite3_stmt *q = sqs_prep(s, "SELECT value FROM settings WHERE key = ?", NULL);
        char *v = NULL;

        if (!q)
                return NULL;
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
                v = g_strdup((const char *)sqlite3_column_text(q, 0));
        sqlite3_reset(q);
        return v;
}

static int sq_schema_version(Store *st)
{
        sqlite3_stmt *stmt = sqs_prep(S(st), "PRAGMA user_version", NULL);
        int v = -1;

        if (stmt && sqlite3_step(stmt) == SQLITE_ROW)
                v = sqlite3_column_int(stmt, 0);
        if (stmt)
                sqlite3_reset(stmt);
        return v;
}

static void sq_close(Store *st)
{
        SqliteStore *s = S(st);

        g_hash_table_unref(s->stmts); /* finalizes statements before the close */
        sqlite3_close(s->db);
        g_free(s->path);
        g_free(s);
}

static Store *sq_open_peer(Store *st, GError **error);

static const char *sq_location(Store *st)
{
        return S(st)->path;
}

static const StoreOps sqlite_ops = {
        .name = "sqlite",
        .close = sq_close,
        .schema_version = sq_schema_version,
        .create = sq_create,
        .get = sq_get,
        .list_json = sq_list_json,
        .update = sq_update,
        .delete = sq_delete,
        .member_add = sq_member_add,
        .member_remove = sq_member_remove,
        .members = sq_members,
        .user_groups = sq_user_groups,
        .pool_in_session = sq_pool_in_session,
        .pool_free_started = sq_pool_free_started,
        .user_auth = sq_user_auth,
        .user_set_password = sq_user_set_password,
        .token_insert = sq_token_insert,
        .token_lookup = sq_token_lookup,
        .user_role = sqs_user_role,
        .pool_role = sqs_pool_role,
        .pool_of = sqs_pool_of,
        .pool_permissions = sqs_pool_permissions,
        .directory_user_sync = sqs_directory_user_sync,
        .directory_users_due = sqs_directory_users_due,
        .directory_stale = sqs_directory_stale,
        .totp_get = sqs_totp_get,
        .totp_pending = sqs_totp_pending,
        .totp_used = sqs_totp_used,
        .totp_enable = sqs_totp_enable,
        .totp_disable = sqs_totp_disable,
        .recovery_use = sqs_recovery_use,
        .token_enrol_only = sqs_token_enrol_only,
        .token_delete = sq_token_delete,
        .event_add = sq_event_add,
        .count = sq_count,
        .open_peer = sq_open_peer,
        .location = sq_location,
        .join_token_insert = sq_join_token_insert,
        .host_join = sq_host_join,
        .host_by_credential = sq_host_by_credential,
        .setting = sq_setting,
        .change_batch = sq_change_batch,
};

static void stmt_free(gpointer stmt)
{
        sqlite3_finalize(stmt);
}

static gboolean migrate(SqliteStore *s, GError **error)
{
        int cur = sq_schema_version(&s->parent), latest = schema_latest();

        if (cur < 0)
                return sqs_db_error(s, error, "reading the schema version");
        if (cur > latest) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "database '%s' has schema version %d, newer than this atriumd "
                            "understands (%d): run the atriumd that wrote it, or a newer one",
                            s->path, cur, latest);
                return FALSE;
        }
        if (cur > 0 && cur < latest) {
                /* Keep a copy of the data as it was before any migration touches it. */
                g_autofree char *backup = g_strdup_printf("%s.pre-v%d", s->path, latest);
                char *sql = sqlite3_mprintf("VACUUM INTO %Q", backup); /* sqlite3_free() */
                gboolean ok = g_file_test(backup, G_FILE_TEST_EXISTS) || exec(s, sql, error);
                sqlite3_free(sql);
                if (!ok)
                        return FALSE;
                g_info("database backed up to %s before migrating from schema %d to %d", backup,
                       cur, latest);
        }
        for (int v = cur + 1; v <= latest; v++) {
                g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %d", v);
                if (!sqs_tx_begin(s, error))
                        return FALSE;
                if (!exec(s, schema_migration(v), error) || !exec(s, bump, error)) {
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

static SqliteStore *sq_open(const char *path, int flags, GError **error)
{
        SqliteStore *s = g_new0(SqliteStore, 1);

        s->parent.ops = &sqlite_ops;
        s->path = g_strdup(path);
        s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_free);
        if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot open database '%s': %s", path,
                            s->db ? sqlite3_errmsg(s->db) : "out of memory");
                sq_close(&s->parent);
                return NULL;
        }
        sqlite3_busy_timeout(s->db, 5000);
        sqlite3_update_hook(s->db, sqs_row_changed, NULL);
        return s;
}

Store *store_open_sqlite(const char *path, GError **error)
{
        SqliteStore *s = sq_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error);

        if (!s)
                return NULL;
        if (!exec(s,
                  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                  "PRAGMA foreign_keys = ON;",
                  error) ||
            !migrate(s, error)) {
                g_prefix_error(error, "%s: ", path);
                sq_close(&s->parent);
                return NULL;
        }
        return &s->parent;
}

/* WAL lets readers run beside a writer, and IMMEDIATE transactions (with the busy timeout)
 * queue writers; each handle is used by one thread only. */
static Store *sq_open_peer(Store *st, GError **error)
{
        SqliteStore *s = sq_open(S(st)->path, SQLITE_OPEN_READWRITE, error);

        if (!s)
                return NULL;
        if (!exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;", error))
                goto fail;
        if (sq_schema_version(&s->parent) != schema_latest()) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "database '%s' changed schema under a running atriumd", S(st)->path);
                goto fail;
        }
        return &s->parent;
fail:
        sq_close(&s->parent);
        return NULL;
}
