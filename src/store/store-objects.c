/* The generic object families of proto/resources.c: rows as JSON, lookups by id or name,
 * create, update, delete (with the in-use checks), lists, counts and batches. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

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
        char *frag; /* what precedes the value in JSON text: ',"name":' */
        gsize frag_len;
        const char *key; /* the member's name (interned) */
        OutKind kind;
} OutColumn;

typedef struct {
        OutColumn *cols;
        guint n;
} RowFormat;

static void format_add(GArray *a, const char *key, OutKind kind)
{
        OutColumn c = {g_strdup_printf("%s\"%s\":", a->len ? "," : "{", key), 0,
                       g_intern_string(key), kind};

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
static void row_append_json(GString *out, const Resource *res, SqlStmt *st)
{
        const RowFormat *rf = row_format(res);

        for (guint col = 0; col < rf->n; col++) {
                const OutColumn *c = &rf->cols[col];
                g_string_append_len(out, c->frag, c->frag_len);
                if (sql_column_null(st, col)) {
                        g_string_append_len(out, "null", 4);
                        continue;
                }
                switch (c->kind) {
                case OUT_INT:
                        append_int64(out, sql_column_int(st, col));
                        break;
                case OUT_BOOL:
                        if (sql_column_int(st, col))
                                g_string_append_len(out, "true", 4);
                        else
                                g_string_append_len(out, "false", 5);
                        break;
                case OUT_TEXT:
                        json_append_string(out, sql_column_text(st, col));
                        break;
                }
        }
        g_string_append_c(out, '}');
}

/* One row as an object, built straight from the columns (no JSON text between). */
static JsonObject *row_to_json(const Resource *res, SqlStmt *st)
{
        const RowFormat *rf = row_format(res);
        JsonObject *o = json_object_new();

        for (guint col = 0; col < rf->n; col++) {
                const OutColumn *c = &rf->cols[col];
                if (sql_column_null(st, col)) {
                        json_object_set_null_member(o, c->key);
                        continue;
                }
                switch (c->kind) {
                case OUT_INT:
                        json_object_set_int_member(o, c->key, sql_column_int(st, col));
                        break;
                case OUT_BOOL:
                        json_object_set_boolean_member(o, c->key, sql_column_int(st, col) != 0);
                        break;
                case OUT_TEXT:
                        json_object_set_string_member(o, c->key, sql_column_text(st, col));
                        break;
                }
        }
        return o;
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
gint64 sqs_find_id(Store *s, const Resource *res, const char *id_or_name, GError **error)
{
        g_autofree char *sql = NULL;
        SqlStmt *st;
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
                sql_bind_int(st, 1, id);
        else
                sql_bind_text(st, 1, id_or_name);
        id = sql_step(st) == SQL_ROW ? sql_column_int(st, 0) : 0;
        sql_reset(st);
        if (!id) {
                g_autofree char *q = util_quote(id_or_name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no %s '%s'",
                            res->kind, q);
        }
        return id;
}

/* The row by id, or (NAME not NULL) by name, of OWNER_ID's when it is above 0. */
static JsonObject *get_row_by(Store *s, const Resource *res, gint64 id, const char *name,
                              gint64 owner_id, GError **error)
{
        g_autofree char *base = select_sql(res);
        g_autofree char *sql = NULL;
        const Field *of =
                res->owner_field && owner_id > 0 ? resource_field(res, res->owner_field) : NULL;
        const char *key = name ? "name" : "id";
        SqlStmt *st;
        JsonObject *o = NULL;

        sql = of ? g_strdup_printf("SELECT %s WHERE t.%s = ? AND t.%s = ?", base, key,
                                   field_column(of))
                 : g_strdup_printf("SELECT %s WHERE t.%s = ?", base, key);
        if (!(st = sqs_prep(s, sql, error)))
                return NULL;
        if (name)
                sql_bind_text(st, 1, name);
        else
                sql_bind_int(st, 1, id);
        if (of)
                sql_bind_int(st, 2, owner_id);
        if (sql_step(st) == SQL_ROW)
                o = row_to_json(res, st);
        sql_reset(st);
        if (!o)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "there is no %s '%" G_GINT64_FORMAT "'", res->kind, id);
        return o;
}

static JsonObject *get_row(Store *s, const Resource *res, gint64 id, gint64 owner_id,
                           GError **error)
{
        return get_row_by(s, res, id, NULL, owner_id, error);
}

JsonObject *sqs_row_where(Store *s, const Resource *res, const char *where, const gint64 *params,
                          int n, GError **error)
{
        g_autofree char *base = select_sql(res);
        g_autofree char *sql = g_strdup_printf("SELECT %s WHERE %s", base, where);
        SqlStmt *st = sqs_prep(s, sql, error);
        JsonObject *o = NULL;
        SqlStep rc;

        if (!st)
                return NULL;
        for (int i = 0; i < n; i++)
                sql_bind_int(st, i + 1, params[i]);
        if ((rc = sql_step(st)) == SQL_ROW)
                o = row_to_json(res, st);
        else if (rc == SQL_FAIL)
                sqs_db_error(s, error, "reading");
        sql_reset(st);
        return o;
}

JsonObject *store_get(Store *s, const Resource *res, const char *id_or_name, gint64 owner_id,
                      GError **error)
{
        g_autoptr(GError) local = NULL;
        gint64 id = 0;
        JsonObject *o;

        /* the row itself answers whether it is there, by id or by name */
        if (util_parse_id(id_or_name, &id))
                o = get_row(s, res, id, owner_id, &local);
        else if (res->named)
                o = get_row_by(s, res, 0, id_or_name, owner_id, &local);
        else { /* named by id only: its error says so */
                sqs_find_id(s, res, id_or_name, error);
                return NULL;
        }
        if (!o) { /* hidden from this user: same answer as absent, naming what was asked */
                g_autofree char *q = util_quote(id_or_name);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no %s '%s'",
                            res->kind, q);
        }
        return o;
}

JsonObject *store_get_id(Store *s, const Resource *res, gint64 id, gint64 owner_id, GError **error)
{
        JsonObject *o = id > 0 ? get_row(s, res, id, owner_id, NULL) : NULL;

        if (!o)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "there is no %s '%" G_GINT64_FORMAT "'", res->kind, id);
        return o;
}

/* ---- values ------------------------------------------------------------------------------ */

static void tx_ref_put(Store *s, char *key /* taken */, gint64 id)
{
        if (!s->tx_refs)
                s->tx_refs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(s->tx_refs, key, g_memdup2(&id, sizeof id));
}

void sqs_tx_ref_known(Store *s, const char *kind, gint64 id)
{
        if (s->in_tx && id > 0)
                tx_ref_put(s, g_strdup_printf("%s\n%" G_GINT64_FORMAT, kind, id), id);
}

/* Resolve a reference value (id or name) to an id; BAD_REFERENCE when absent. */
static gboolean resolve_ref(Store *s, const Field *f, JsonNode *v, gint64 *out, GError **error)
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
        /* an id once per transaction: a batch names the same objects again (by id only: a
         * name may change in it) */
        if (s->in_tx && util_parse_id(text, &(gint64){0})) {
                g_autofree char *key = g_strconcat(r->kind, "\n", text, NULL);
                gpointer id = NULL;
                if (s->tx_refs && g_hash_table_lookup_extended(s->tx_refs, key, NULL, &id)) {
                        *out = *(gint64 *)id;
                        return TRUE;
                }
                if ((*out = sqs_find_id(s, r, text, &local))) {
                        tx_ref_put(s, g_steal_pointer(&key), *out);
                        return TRUE;
                }
        } else if ((*out = sqs_find_id(s, r, text, &local))) {
                return TRUE;
        }
        atrium_set_field_error(error, ATRIUM_ERROR_BAD_REFERENCE, f->name,
                               "field '%s': there is no %s '%s'", f->name, r->kind, text);
        return FALSE;
}

static void bind_value(SqlStmt *st, int idx, const Field *f, JsonNode *v, gint64 ref_id)
{
        if (f->type == FIELD_REF) {
                if (ref_id)
                        sql_bind_int(st, idx, ref_id);
                else
                        sql_bind_null(st, idx);
                return;
        }
        if (!v || JSON_NODE_HOLDS_NULL(v)) {
                sql_bind_null(st, idx);
                return;
        }
        switch (f->type) {
        case FIELD_INT:
                sql_bind_int(st, idx, json_node_get_int(v));
                break;
        case FIELD_BOOL:
                sql_bind_int(st, idx, json_node_get_boolean(v));
                break;
        default:
                sql_bind_text(st, idx, json_node_get_string(v));
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

static gboolean check_unique(Store *s, const Resource *res, JsonObject *values, gint64 self_id,
                             GError **error)
{
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                g_autofree char *sql = NULL;
                SqlStmt *st;
                gboolean taken;
                const char *v;

                if (!(f->flags & F_UNIQUE) || !json_object_has_member(values, f->name))
                        continue;
                v = json_object_get_string_member(values, f->name);
                sql = g_strdup_printf("SELECT 1 FROM %s WHERE %s = ? AND id != ?", res->table,
                                      f->name);
                if (!(st = sqs_prep(s, sql, error)))
                        return FALSE;
                sql_bind_text(st, 1, v);
                sql_bind_int(st, 2, self_id);
                taken = sql_step(st) == SQL_ROW;
                sql_reset(st);
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

/* An audit event not yet written: its columns (time, actor, address, action, kind, name,
 * detail) and object id. */
typedef struct {
        char *col[7];
        gint64 id;
} PendingEvent;

static void pending_event_free(gpointer p)
{
        PendingEvent *e = p;

        for (gsize i = 0; i < G_N_ELEMENTS(e->col); i++)
                g_free(e->col[i]);
        g_free(e);
}

#define EVENTS_PER_INSERT 16

/* EVENTS[0..N) written in one INSERT (N at most EVENTS_PER_INSERT). */
static gboolean events_write(Store *s, PendingEvent *const *events, guint n, GError **error)
{
        g_autoptr(GString) sql = g_string_new("INSERT INTO events (time, actor, address, action, "
                                              "object_kind, object_id, object_name, detail, "
                                              "created_at, updated_at) VALUES ");
        SqlStmt *st;

        for (guint r = 0; r < n; r++) {
                guint b = r * 8;
                g_string_append_printf(sql, "%s(?%u, ?%u, ?%u, ?%u, ?%u, ?%u, ?%u, ?%u, ?%u, ?%u)",
                                       r ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6,
                                       b + 7, b + 8, b + 1, b + 1);
        }
        if (!(st = sqs_prep(s, sql->str, error)))
                return FALSE;
        for (guint r = 0; r < n; r++) {
                const PendingEvent *e = events[r];
                int b = (int)r * 8;
                for (int c = 0; c < 5; c++)
                        sql_bind_text(st, b + c + 1, e->col[c]);
                if (e->id)
                        sql_bind_int(st, b + 6, e->id);
                sql_bind_text(st, b + 7, e->col[5]);
                sql_bind_text(st, b + 8, e->col[6]);
        }
        return sqs_step_done(s, st, error, "recording an event");
}

/* An event inside a transaction waits for its commit (sqs_events_flush), where the
 * transaction's events go in one statement: one round trip to a database server for all of
 * them. Outside one it is written at once. */
gboolean sqs_event_insert(Store *s, const Actor *a, const char *action, const char *kind, gint64 id,
                          const char *name, const char *detail, GError **error)
{
        PendingEvent *e = g_new0(PendingEvent, 1);
        gboolean ok;

        e->col[0] = util_now_iso();
        e->col[1] = g_strdup(a && a->name ? a->name : "system");
        e->col[2] = g_strdup(a && a->address ? a->address : "");
        e->col[3] = g_strdup(action);
        e->col[4] = g_strdup(kind ? kind : "");
        e->col[5] = g_strdup(name ? name : "");
        e->col[6] = g_strdup(detail ? detail : "");
        e->id = id;
        if (s->in_tx) {
                if (!s->tx_events)
                        s->tx_events = g_ptr_array_new_with_free_func(pending_event_free);
                g_ptr_array_add(s->tx_events, e);
                return TRUE;
        }
        ok = events_write(s, &e, 1, error);
        pending_event_free(e);
        return ok;
}

gboolean sqs_events_flush(Store *s, GError **error)
{
        GPtrArray *q = s->tx_events;
        gboolean ok = TRUE;

        for (guint i = 0; q && ok && i < q->len; i += EVENTS_PER_INSERT)
                ok = events_write(s, (PendingEvent *const *)q->pdata + i,
                                  MIN(EVENTS_PER_INSERT, q->len - i), error);
        if (q)
                g_ptr_array_set_size(q, 0);
        return ok;
}

gboolean store_event_add(Store *st, const Actor *actor, const char *action, const char *kind,
                         gint64 id, const char *name, const char *detail, GError **error)
{
        return sqs_event_insert(st, actor, action, kind, id, name, detail, error);
}

/* At least one enabled admin must remain: checked inside the transaction of any user change. */
static gboolean check_admins(Store *s, const Resource *res, GError **error)
{
        SqlStmt *st;
        gint64 n;

        if (!g_str_equal(res->table, "users"))
                return TRUE;
        st = sqs_prep(s, "SELECT count(*) FROM users WHERE role = 'admin' AND enabled = TRUE",
                      error);
        if (!st)
                return FALSE;
        sql_step(st);
        n = sql_column_int(st, 0);
        sql_reset(st);
        if (n > 0)
                return TRUE;
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                    "this would leave no enabled admin; make another user admin first");
        return FALSE;
}

/* ---- create ------------------------------------------------------------------------------ */

/* The next placement epoch: one counter for the whole installation, so that an epoch is never
 * given twice, even to a new object that took a deleted one's id (and its domain's name). */
static gint64 next_epoch(Store *s, GError **error)
{
        SqlStmt *st = sqs_prep(s,
                               "UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                               "WHERE key = 'placement_epoch' RETURNING CAST(value AS INTEGER)",
                               error);

        return st ? sqs_step_id(s, st, error, "taking a placement epoch") : 0;
}

gint64 store_take_epoch(Store *s, const Resource *res, gint64 id, GError **error)
{
        g_autofree char *sql = g_strdup_printf("UPDATE %s SET epoch = ? WHERE id = ?", res->table);
        gint64 e = 0;
        SqlStmt *st;

        if (!sqs_tx_begin(s, error))
                return 0;
        if ((e = next_epoch(s, error)) && (st = sqs_prep(s, sql, error))) {
                sql_bind_int(st, 1, e);
                sql_bind_int(st, 2, id);
                if (!sqs_step_done(s, st, error, "taking a placement epoch"))
                        e = 0;
        } else {
                e = 0;
        }
        if (!e || !sqs_tx_commit(s, error)) {
                sqs_tx_rollback(s);
                return 0;
        }
        return e;
}

gint64 store_migration_begin(Store *s, const Resource *res, gint64 id, gint64 from_host,
                             gint64 epoch, gint64 to_host, GError **error)
{
        g_autofree char *sql = g_strdup_printf(
                "UPDATE %s SET migrating_to_id = ?, migrating_epoch = ? WHERE id = ? AND "
                "host_id = ? AND epoch = ? AND migrating_to_id IS NULL",
                res->table);
        gint64 e = 0;
        SqlStmt *st;

        if (!sqs_tx_begin(s, error))
                return 0;
        if ((e = next_epoch(s, error)) && (st = sqs_prep(s, sql, error))) {
                sql_bind_int(st, 1, to_host);
                sql_bind_int(st, 2, e);
                sql_bind_int(st, 3, id);
                sql_bind_int(st, 4, from_host);
                sql_bind_int(st, 5, epoch);
                if (!sqs_step_done(s, st, error, "beginning a migration")) {
                        e = 0;
                } else if (sql_changes(s->db) != 1) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the %s is migrating already, or was placed again meanwhile",
                                    res->kind);
                        e = 0;
                }
        } else {
                e = 0;
        }
        if (!e || !sqs_tx_commit(s, error)) {
                sqs_tx_rollback(s);
                return 0;
        }
        return e;
}

gboolean store_migration_end(Store *s, const Resource *res, gint64 id, gint64 new_epoch,
                             gboolean switched, GError **error)
{
        g_autofree char *sql = g_strdup_printf(
                switched ? "UPDATE %s SET host_id = migrating_to_id, epoch = migrating_epoch, "
                           "migrating_to_id = NULL, migrating_epoch = 0, updated_at = ? "
                           "WHERE id = ? AND migrating_epoch = ? AND migrating_to_id IS NOT NULL"
                         : "UPDATE %s SET migrating_to_id = NULL, migrating_epoch = 0, "
                           "updated_at = ? WHERE id = ? AND migrating_epoch = ?",
                res->table);
        g_autofree char *now = util_now_iso();
        SqlStmt *st = sqs_prep(s, sql, error);

        if (!st)
                return FALSE;
        sql_bind_text(st, 1, now);
        sql_bind_int(st, 2, id);
        sql_bind_int(st, 3, new_epoch);
        return sqs_step_done(s, st, error, "ending a migration") && sql_changes(s->db) == 1;
}

JsonObject *sqs_create_tx(Store *s, const Resource *res, const char *unused, JsonObject *values,
                          const Actor *actor, GError **error)
{
        g_autoptr(JsonObject) merged = json_object_new();
        g_autofree gint64 *refs = g_new0(gint64, res->n_fields);
        g_autofree char *now = util_now_iso();
        g_autofree char *detail = NULL, *tmp = NULL;
        GString *cols = g_string_new(NULL), *qs = g_string_new(NULL);
        g_autofree char *sql = NULL;
        SqlStmt *st;
        JsonObject *row;
        gint64 id;
        int idx = 1;

        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                JsonNode *v = json_object_get_member(values, f->name);
                json_object_set_member(merged, f->name, v ? json_node_copy(v) : default_node(f));
                if (g_str_equal(f->name, "epoch")) {
                        gint64 e = next_epoch(s, error);
                        if (!e)
                                goto fail;
                        json_object_set_int_member(merged, f->name, e);
                }
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
        sql = g_strdup_printf(
                "INSERT INTO %s (%screated_at, updated_at) VALUES (%s?, ?) RETURNING id",
                res->table, cols->str, qs->str);
        if (!(st = sqs_prep(s, sql, error)))
                goto fail;
        for (gsize i = 0; i < res->n_fields; i++)
                bind_value(st, idx++, &res->fields[i],
                           json_object_get_member(merged, res->fields[i].name), refs[i]);
        sql_bind_text(st, idx++, now);
        sql_bind_text(st, idx++, now);
        if (!(id = sqs_step_id(s, st, error, "inserting")))
                goto fail;
        if (!(row = get_row(s, res, id, 0, error)))
                goto fail;
        detail = detail_text(res, values);
        if (!sqs_event_insert(s, actor, "create", res->kind, id, object_label(res, row, &tmp),
                              detail, error)) {
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
JsonObject *sqs_tx_end(Store *s, JsonObject *row, GError **error)
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

typedef JsonObject *(*RowChange)(Store *s, const Resource *res, const char *id_or_name,
                                 JsonObject *values, const Actor *actor, GError **error);

/* Run a change that yields the changed row in one transaction: all of it, or none of it. */
static JsonObject *row_tx(Store *s, RowChange change, const Resource *res, const char *id_or_name,
                          JsonObject *values, const Actor *actor, GError **error)
{
        if (!sqs_tx_begin(s, error))
                return NULL;
        return sqs_tx_end(s, change(s, res, id_or_name, values, actor, error), error);
}

JsonObject *store_create(Store *st, const Resource *res, JsonObject *values, const Actor *actor,
                         GError **error)
{
        return row_tx(st, sqs_create_tx, res, NULL, values, actor, error);
}

/* ---- update ------------------------------------------------------------------------------ */

/* The update of row ID, OLD (taken) as it is now in the caller's transaction; the row read
 * again after it (REREAD), or OLD as patched (its references' names not refreshed). */
static JsonObject *update_row(Store *s, const Resource *res, gint64 id, JsonObject *old_,
                              JsonObject *patch, const Actor *actor, gboolean reread,
                              GError **error)
{
        g_autoptr(JsonObject) old = old_;
        g_autofree gint64 *refs = g_new0(gint64, res->n_fields);
        g_autofree char *now = util_now_iso(), *detail = NULL, *tmp = NULL, *sql = NULL;
        g_autoptr(GString) sets = g_string_new(NULL);
        SqlStmt *st;
        JsonObject *row;
        int idx = 1;
        gint64 epoch = 0;

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
                /* A reference the patch leaves is the row's own id, there by the foreign key:
                 * only a new one is looked up. */
                if (f->type == FIELD_REF && !v)
                        refs[i] = json_row_ref(old, field_column(f));
                else if (f->type == FIELD_REF &&
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
                /* A new host is a new placement: its epoch goes up with it, in the same
                 * statement, so no command can go out with the old one after this. */
                if (g_str_equal(f->name, "host") && json_object_has_member(patch, "host") &&
                    !json_object_has_member(patch, "epoch") && resource_field(res, "epoch") &&
                    refs[i] != json_row_ref(old, "host_id")) {
                        if (!(epoch = next_epoch(s, error)))
                                return NULL;
                        g_string_append(sets, "epoch = ?, ");
                }
        }
        sql = g_strdup_printf("UPDATE %s SET %supdated_at = ? WHERE id = ?", res->table, sets->str);
        if (!(st = sqs_prep(s, sql, error)))
                return NULL;
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                if (json_object_has_member(patch, f->name))
                        bind_value(st, idx++, f, json_object_get_member(patch, f->name), refs[i]);
                if (g_str_equal(f->name, "host") && epoch)
                        sql_bind_int(st, idx++, epoch);
        }
        sql_bind_text(st, idx++, now);
        sql_bind_int(st, idx++, id);
        if (!sqs_step_done(s, st, error, "updating"))
                return NULL;
        if (!check_admins(s, res, error))
                return NULL;
        if (!reread)
                row = json_object_ref(old);
        else if (!(row = get_row(s, res, id, 0, error)))
                return NULL;
        detail = detail_text(res, patch);
        if (actor && !sqs_event_insert(s, actor, "update", res->kind, id,
                                       object_label(res, row, &tmp), detail, error)) {
                json_object_unref(row);
                return NULL;
        }
        return row;
}

JsonObject *sqs_update_id_tx(Store *s, const Resource *res, gint64 id, JsonObject *patch,
                             const Actor *actor, GError **error)
{
        JsonObject *old = get_row(s, res, id, 0, error);

        return old ? update_row(s, res, id, old, patch, actor, TRUE, error) : NULL;
}

gboolean sqs_update_held_tx(Store *s, const Resource *res, JsonObject *current, JsonObject *patch,
                            const Actor *actor, GError **error)
{
        JsonObject *copy = json_object_new(), *row;
        JsonObjectIter it;
        const char *key;
        JsonNode *v;

        json_object_iter_init(&it, current);
        while (json_object_iter_next(&it, &key, &v))
                json_object_set_member(copy, key, json_node_copy(v));
        row = update_row(s, res, json_object_get_int_member(current, "id"), copy, patch, actor,
                         FALSE, error);
        if (!row)
                return FALSE;
        json_object_unref(row);
        return TRUE;
}

static JsonObject *update_tx(Store *s, const Resource *res, const char *id_or_name,
                             JsonObject *patch, const Actor *actor, GError **error)
{
        gint64 id = 0;

        /* by id: the row sqs_update_id_tx reads first answers whether it is there */
        if (!util_parse_id(id_or_name, &id))
                id = sqs_find_id(s, res, id_or_name, error);

        return id ? sqs_update_id_tx(s, res, id, patch, actor, error) : NULL;
}

JsonObject *store_update(Store *st, const Resource *res, const char *id_or_name, JsonObject *patch,
                         const Actor *actor, GError **error)
{
        return row_tx(st, update_tx, res, id_or_name, patch, actor, error);
}

JsonObject *store_update_id(Store *st, const Resource *res, gint64 id, JsonObject *patch,
                            const Actor *actor, GError **error)
{
        if (!sqs_tx_begin(st, error))
                return NULL;
        return sqs_tx_end(st, sqs_update_id_tx(st, res, id, patch, actor, error), error);
}

/* ---- delete ------------------------------------------------------------------------------ */

/* Refuse to delete an object that other objects still reference, saying which. */
static gboolean check_unused(Store *s, const Resource *res, gint64 id, const char *label,
                             GError **error)
{
        gsize n;
        const Resource *const *all = resources_all(&n);

        for (gsize r = 0; r < n; r++) {
                for (gsize i = 0; i < all[r]->n_fields; i++) {
                        const Field *f = &all[r]->fields[i];
                        g_autofree char *sql = NULL;
                        SqlStmt *st;
                        gint64 count;

                        if (f->type != FIELD_REF || !g_str_equal(f->ref, res->kind))
                                continue;
                        sql = g_strdup_printf("SELECT count(*) FROM %s WHERE %s = ?", all[r]->table,
                                              field_column(f));
                        if (!(st = sqs_prep(s, sql, error)))
                                return FALSE;
                        sql_bind_int(st, 1, id);
                        sql_step(st);
                        count = sql_column_int(st, 0);
                        sql_reset(st);
                        if (count > 0) {
                                atrium_set_field_error(
                                        error, ATRIUM_ERROR_IN_USE, f->name,
                                        "%s '%s' is still used by %" G_GINT64_FORMAT
                                        " %s%s (field '%s'); remove or change %s first",
                                        res->kind, label, count, all[r]->kind,
                                        count == 1 ? "" : "s", f->name, count == 1 ? "it" : "them");
                                return FALSE;
                        }
                }
        }
        return TRUE;
}

static gboolean delete_id_tx(Store *s, const Resource *res, gint64 id, const Actor *actor,
                             GError **error)
{
        g_autoptr(JsonObject) old = NULL;
        g_autofree char *sql = NULL, *tmp = NULL;
        const char *label;
        SqlStmt *st;

        if (!(old = get_row(s, res, id, 0, error)))
                return FALSE;
        label = object_label(res, old, &tmp);
        if (!check_unused(s, res, id, label, error))
                return FALSE;
        sql = g_strdup_printf("DELETE FROM %s WHERE id = ?", res->table);
        if (!(st = sqs_prep(s, sql, error)))
                return FALSE;
        sql_bind_int(st, 1, id);
        if (!sqs_step_done(s, st, error, "deleting"))
                return FALSE;
        return check_admins(s, res, error) &&
               sqs_event_insert(s, actor, "delete", res->kind, id, label, "", error);
}

/* Deletes one object (its id already known) in a transaction of its own. */
static gboolean delete_in_tx(Store *s, const Resource *res, gint64 id, const Actor *actor,
                             GError **error)
{
        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!delete_id_tx(s, res, id, actor, error)) {
                sqs_tx_rollback(s);
                return FALSE;
        }
        return sqs_tx_commit(s, error);
}

gboolean store_delete(Store *s, const Resource *res, const char *id_or_name, const Actor *actor,
                      GError **error)
{
        gint64 id = sqs_find_id(s, res, id_or_name, error);

        return id && delete_in_tx(s, res, id, actor, error);
}

gboolean store_delete_id(Store *s, const Resource *res, gint64 id, const Actor *actor,
                         GError **error)
{
        return delete_in_tx(s, res, id, actor, error);
}

/* ---- list -------------------------------------------------------------------------------- */

static gboolean filter_value(Store *s, const Resource *res, const Field *f, const char *text,
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
                /* An id is bound as it is (rows refer only to objects that are there); a name
                 * is looked up. No such object: matches nothing. */
                if (!util_parse_id(text, &id) && !resolve_ref(s, f, v, &id, &local))
                        id = -1;
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

/* The statement of one page of a list, bound; NULL with an error (a filter it refuses). */
static SqlStmt *list_stmt(Store *s, const Resource *res, const ListQuery *q, GError **error)
{
        g_autofree char *base = select_sql(res);
        g_autoptr(GString) where = g_string_new(q->newest_first ? "t.id < ?" : "t.id > ?");
        g_autoptr(GPtrArray) vals = g_ptr_array_new_with_free_func(node_free);
        g_autoptr(GPtrArray) fields = g_ptr_array_new();
        g_autoptr(GArray) ints = g_array_new(FALSE, FALSE, sizeof(gint64));
        g_autofree char *sql = NULL, *like = NULL;
        SqlStmt *stmt;
        guint ref_i = 0;
        int idx = 1;

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
                                return NULL;
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
                                return NULL;
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
                return NULL;
        sql_bind_int(stmt, idx++, q->newest_first && q->after_id == 0 ? G_MAXINT64 : q->after_id);
        if (like)
                sql_bind_text(stmt, idx++, like);
        for (guint i = 0; i < fields->len; i++) {
                const Field *f = fields->pdata[i];
                if (f->type == FIELD_REF)
                        sql_bind_int(stmt, idx++, g_array_index(ints, gint64, ref_i++));
                else
                        bind_value(stmt, idx++, f, vals->pdata[i], 0);
        }
        if (q->owner_id > 0 && res->owner_field)
                sql_bind_int(stmt, idx++, q->owner_id);
        sql_bind_int(stmt, idx++, (gint64)q->limit + 1);
        return stmt;
}

/* Each row of the page to sink (n counts from 1); *next_after: the cursor of the next page, 0
 * when this is the last. */
typedef void (*RowSink)(gpointer out, const Resource *res, SqlStmt *st, guint n);

static void list_rows(SqlStmt *stmt, const Resource *res, const ListQuery *q, gint64 *next_after,
                      RowSink sink, gpointer out)
{
        gint64 last_id = 0;
        guint n = 0;

        *next_after = 0;
        while (sql_step(stmt) == SQL_ROW) {
                if (++n > q->limit) {
                        *next_after = last_id;
                        break;
                }
                last_id = sql_column_int(stmt, 0);
                sink(out, res, stmt, n);
        }
        sql_reset(stmt);
}

static void sink_text(gpointer out, const Resource *res, SqlStmt *st, guint n)
{
        if (n > 1)
                g_string_append_c(out, ',');
        row_append_json(out, res, st);
}

static void sink_objects(gpointer out, const Resource *res, SqlStmt *st, guint n)
{
        json_array_add_object_element(out, row_to_json(res, st));
}

gboolean store_list_json(Store *s, const Resource *res, const ListQuery *q, GString *out,
                         gint64 *next_after, GError **error)
{
        SqlStmt *stmt = list_stmt(s, res, q, error);

        *next_after = 0;
        if (!stmt)
                return FALSE;
        g_string_append_c(out, '[');
        list_rows(stmt, res, q, next_after, sink_text, out);
        g_string_append_c(out, ']');
        return TRUE;
}

JsonArray *store_list(Store *s, const Resource *res, const ListQuery *q, gint64 *next_after,
                      GError **error)
{
        SqlStmt *stmt = list_stmt(s, res, q, error);
        JsonArray *rows;

        *next_after = 0;
        if (!stmt)
                return NULL;
        rows = json_array_new();
        list_rows(stmt, res, q, next_after, sink_objects, rows);
        return rows;
}

gint64 store_count(Store *st, const Resource *res)
{
        g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM %s", res->table);
        SqlStmt *stmt = sqs_prep(st, sql, NULL);
        gint64 n = 0;

        if (stmt && sql_step(stmt) == SQL_ROW)
                n = sql_column_int(stmt, 0);
        if (stmt)
                sql_reset(stmt);
        return n;
}

JsonArray *store_change_batch(Store *s, const StoreChange *c, gsize n, const Actor *actor,
                              GError **error)
{
        JsonArray *rows;

        if (!sqs_tx_begin(s, error))
                return NULL;
        rows = json_array_new();
        for (gsize i = 0; i < n; i++) {
                JsonObject *row =
                        c[i].id_or_name
                                ? update_tx(s, c[i].res, c[i].id_or_name, c[i].values, actor, error)
                                : sqs_create_tx(s, c[i].res, NULL, c[i].values, actor, error);
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
