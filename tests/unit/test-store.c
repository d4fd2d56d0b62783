/* The SQLite store: migrations, object changes with their events in one transaction, and
 * refusals that leave the database as it was. */
#include "common/error.h"
#include "common/jsonutil.h"
#include "store/store.h"
#include "store/sql.h"
#include "testutil.h"

#include <sqlite3.h>
#include <string.h>

static const Actor tester = {"tester", 0, "127.0.0.1"};

typedef struct {
        char *dir;
        char *path;
        Store *st;
} Fixture;

static JsonObject *obj(const char *json)
{
        g_autoptr(GError) error = NULL;
        JsonNode *n = json_parse_body(json, strlen(json), 32, &error);
        JsonObject *o;

        g_assert_no_error(error);
        o = json_object_ref(json_node_get_object(n));
        json_node_unref(n);
        return o;
}

static JsonObject *create(Fixture *f, const char *kind, const char *json, GError **error)
{
        g_autoptr(JsonObject) v = obj(json);
        const Resource *res = resource_by_kind(kind);

        /* Through the same validation as the API. */
        if (!model_validate(res, v, TRUE, error))
                return NULL;
        return store_create(f->st, res, v, &tester, error);
}

static void must_create(Fixture *f, const char *kind, const char *json)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) o = create(f, kind, json, &error);
        g_assert_no_error(error);
        g_assert_nonnull(o);
}

static void setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        f->dir = testutil_tmpdir();
        f->path = g_build_filename(f->dir, "atrium.db", NULL);
        f->st = store_open_sqlite(f->path, &error);
        g_assert_no_error(error);
}

static void teardown(Fixture *f, gconstpointer data)
{
        store_close(f->st);
        testutil_rmdir(f->dir);
        g_free(f->dir);
        g_free(f->path);
}

/* A snapshot of every table, to prove a refused change left nothing behind. */
static char *snapshot(Fixture *f)
{
        sqlite3 *db;
        GString *s = g_string_new(NULL);
        const char *tables[] = {"users",    "groups",         "group_members", "api_tokens",
                                "hosts",    "image_storages", "volumes",       "media_storages",
                                "guests",   "templates",      "pools",         "entitlements",
                                "desktops", "sessions",       "events"};

        g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
        for (gsize i = 0; i < G_N_ELEMENTS(tables); i++) {
                g_autofree char *sql = g_strdup_printf("SELECT * FROM %s ORDER BY 1", tables[i]);
                sqlite3_stmt *st;
                g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &st, NULL), ==, SQLITE_OK);
                g_string_append_printf(s, "[%s]\n", tables[i]);
                while (sqlite3_step(st) == SQLITE_ROW) {
                        for (int c = 0; c < sqlite3_column_count(st); c++)
                                g_string_append_printf(s, "%s|", sqlite3_column_text(st, c));
                        g_string_append_c(s, '\n');
                }
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return g_string_free(s, FALSE);
}

static void base_objects(Fixture *f)
{
        must_create(f, "user",
                    "{\"name\":\"admin\",\"role\":\"admin\",\"password\":\"hash-of-admin\"}");
        must_create(f, "user", "{\"name\":\"alice\",\"password\":\"hash-of-alice\"}");
        must_create(f, "storage", "{\"name\":\"local\"}");
        must_create(f, "volume", "{\"name\":\"vol1\",\"storage\":\"local\",\"path\":\"/srv/v1\"}");
        must_create(f, "template", "{\"name\":\"deb12\",\"volume\":\"vol1\"}");
        must_create(f, "pool", "{\"name\":\"office\",\"template\":\"deb12\",\"size\":2}");
        must_create(f, "group", "{\"name\":\"staff\"}");
}

static void test_migrations(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        sqlite3 *db;
        Store *again;

        g_assert_cmpint(store_schema_version(f->st), ==, schema_latest());
        base_objects(f);
        /* Reopening applies nothing and keeps the data. */
        store_close(f->st);
        f->st = store_open_sqlite(f->path, &error);
        g_assert_no_error(error);
        g_assert_cmpint(store_count(f->st, resource_by_kind("pool")), ==, 1);
        /* A database written by a newer atriumd is refused, and left alone. */
        store_close(f->st);
        f->st = NULL;
        g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
        {
                g_autofree char *sql =
                        g_strdup_printf("PRAGMA user_version = %d", schema_latest() + 1);
                g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
        }
        sqlite3_close(db);
        again = store_open_sqlite(f->path, &error);
        g_assert_null(again);
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "newer than this atriumd"));
        g_clear_error(&error);
        g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
        {
                sqlite3_stmt *st;
                sqlite3_prepare_v2(db, "SELECT count(*) FROM pools", -1, &st, NULL);
                g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
                g_assert_cmpint(sqlite3_column_int(st, 0), ==, 1);
                sqlite3_finalize(st);
                g_autofree char *back =
                        g_strdup_printf("PRAGMA user_version = %d", schema_latest());
                g_assert_cmpint(sqlite3_exec(db, back, NULL, NULL, NULL), ==, SQLITE_OK);
        }
        sqlite3_close(db);
        f->st = store_open_sqlite(f->path, &error);
        g_assert_no_error(error);
}

/* Every field of every resource has its column: a new field needs a migration. */
static void test_schema_matches_model(Fixture *f, gconstpointer data)
{
        sqlite3 *db;
        gsize n;
        const Resource *const *all = resources_all(&n);

        g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
        for (gsize i = 0; i < n; i++) {
                g_autofree char *sql = g_strdup_printf("PRAGMA table_info(%s)", all[i]->table);
                g_autoptr(GHashTable) cols =
                        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                sqlite3_stmt *st;
                sqlite3_prepare_v2(db, sql, -1, &st, NULL);
                while (sqlite3_step(st) == SQLITE_ROW)
                        g_hash_table_add(cols, g_strdup((const char *)sqlite3_column_text(st, 1)));
                sqlite3_finalize(st);
                g_assert_true(g_hash_table_contains(cols, "id"));
                g_assert_true(g_hash_table_contains(cols, "created_at"));
                for (gsize k = 0; k < all[i]->n_fields; k++) {
                        const Field *fl = &all[i]->fields[k];
                        g_autofree char *col = fl->type == FIELD_SECRET
                                                       ? g_strconcat(fl->name, "_hash", NULL)
                                                       : g_strdup(field_column(fl));
                        if (!g_hash_table_contains(cols, col))
                                g_error("table %s lacks column %s", all[i]->table, col);
                }
        }
        sqlite3_close(db);
}

static void test_crud_and_events(Fixture *f, gconstpointer data)
{
        const Resource *pool = resource_by_kind("pool"), *event = resource_by_kind("event");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) p = NULL, patch = obj("{\"size\":5,\"description\":\"x\"}");
        g_autoptr(JsonObject) u = NULL;
        g_autoptr(JsonArray) events = NULL;
        ListQuery q = {.limit = 100};
        gint64 next;

        base_objects(f);
        p = store_get(f->st, pool, "office", 0, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(json_object_get_string_member(p, "template"), ==, "deb12");
        g_assert_cmpstr(json_object_get_string_member(p, "mode"), ==, "stateless");
        g_assert_cmpint(json_object_get_int_member(p, "spares"), ==, 0);
        u = store_update(f->st, pool, "office", patch, &tester, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(u, "size"), ==, 5);
        g_assert_cmpstr(json_object_get_string_member(u, "template"), ==, "deb12");
        /* Names are case-insensitive for lookups. */
        g_clear_pointer(&p, json_object_unref);
        p = store_get(f->st, pool, "OFFICE", 0, &error);
        g_assert_no_error(error);
        g_assert_true(store_delete(f->st, pool, "office", &tester, &error));
        g_assert_null(store_get(f->st, pool, "office", 0, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND);
        events = store_list(f->st, event, &q, &next, NULL);
        /* 7 creates, 1 update, 1 delete, in order, each naming actor and object. */
        g_assert_cmpuint(json_array_get_length(events), ==, 9);
        {
                JsonObject *e = json_array_get_object_element(events, 7);
                g_assert_cmpstr(json_object_get_string_member(e, "action"), ==, "update");
                g_assert_cmpstr(json_object_get_string_member(e, "object_name"), ==, "office");
                g_assert_cmpstr(json_object_get_string_member(e, "actor"), ==, "tester");
                g_assert_cmpstr(json_object_get_string_member(e, "address"), ==, "127.0.0.1");
                g_assert_nonnull(strstr(json_object_get_string_member(e, "detail"), "\"size\":5"));
                e = json_array_get_object_element(events, 0);
                g_assert_null(strstr(json_object_get_string_member(e, "detail"), "hash-of-admin"));
        }
}

/* A transaction's events are written at its commit, several to a statement (16), in the
 * order of its changes; a transaction that fails writes none of them. */
static void test_batch_events(Fixture *f, gconstpointer data)
{
        const Resource *group = resource_by_kind("group"), *event = resource_by_kind("event");
        StoreChange c[21];
        JsonObject *v[21];
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonArray) rows = NULL, events = NULL;
        ListQuery q = {.limit = 100};
        gint64 next, n_events = store_count(f->st, event);

        for (guint i = 0; i < G_N_ELEMENTS(c); i++) {
                g_autofree char *body = g_strdup_printf("{\"name\":\"g%02u\"}", i == 20 ? 3 : i);
                v[i] = obj(body);
                c[i] = (StoreChange){group, NULL, v[i]};
        }
        /* the 21st names a group made by the 4th: refused, nothing written */
        g_assert_null(store_change_batch(f->st, c, 21, &tester, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
        g_assert_cmpint(store_count(f->st, event), ==, n_events);
        g_assert_cmpint(store_count(f->st, group), ==, 0);
        rows = store_change_batch(f->st, c, 20, &tester, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_array_get_length(rows), ==, 20);
        g_assert_cmpint(store_count(f->st, event), ==, n_events + 20);
        events = store_list(f->st, event, &q, &next, NULL);
        for (guint i = 0; i < 20; i++) {
                JsonObject *e = json_array_get_object_element(events, n_events + i);
                g_autofree char *name = g_strdup_printf("g%02u", i);
                g_assert_cmpstr(json_object_get_string_member(e, "action"), ==, "create");
                g_assert_cmpstr(json_object_get_string_member(e, "object_name"), ==, name);
                g_assert_cmpstr(json_object_get_string_member(e, "actor"), ==, "tester");
        }
        for (guint i = 0; i < G_N_ELEMENTS(v); i++)
                json_object_unref(v[i]);
}

/* Each refused change leaves every table, events included, exactly as it was. */
static void test_refusals_change_nothing(Fixture *f, gconstpointer data)
{
        static const struct {
                const char *op, *kind, *target, *json;
                int code;
        } cases[] = {
                {"create", "pool", NULL, "{\"name\":\"Office\",\"template\":\"deb12\"}",
                 ATRIUM_ERROR_DUPLICATE},
                {"create", "pool", NULL, "{\"name\":\"p2\",\"template\":\"nosuch\"}",
                 ATRIUM_ERROR_BAD_REFERENCE},
                {"create", "pool", NULL, "{\"name\":\"p2\",\"template\":99}",
                 ATRIUM_ERROR_BAD_REFERENCE},
                {"create", "pool", NULL,
                 "{\"name\":\"p2\",\"template\":\"deb12\",\"size\":1,\"spares\":2}",
                 ATRIUM_ERROR_INVALID},
                {"create", "volume", NULL,
                 "{\"name\":\"vol2\",\"storage\":\"local\",\"path\":\"/srv/v1\"}",
                 ATRIUM_ERROR_DUPLICATE},
                {"create", "entitlement", NULL, "{\"pool\":\"office\"}", ATRIUM_ERROR_INVALID},
                {"create", "entitlement", NULL,
                 "{\"pool\":\"office\",\"user\":\"alice\",\"group\":\"staff\"}",
                 ATRIUM_ERROR_INVALID},
                {"update", "pool", "office", "{\"spares\":3}", ATRIUM_ERROR_INVALID},
                {"update", "pool", "office", "{\"name\":\"ent-pool\"}", ATRIUM_ERROR_DUPLICATE},
                {"update", "pool", "nosuch", "{\"size\":1}", ATRIUM_ERROR_NOT_FOUND},
                {"update", "pool", "office", "{\"template\":\"gone\"}", ATRIUM_ERROR_BAD_REFERENCE},
                {"update", "user", "admin", "{\"role\":\"user\"}", ATRIUM_ERROR_CONFLICT},
                {"update", "user", "admin", "{\"enabled\":false}", ATRIUM_ERROR_CONFLICT},
                {"delete", "user", "admin", NULL, ATRIUM_ERROR_CONFLICT},
                {"delete", "template", "deb12", NULL, ATRIUM_ERROR_IN_USE},
                {"delete", "volume", "vol1", NULL, ATRIUM_ERROR_IN_USE},
                {"delete", "group", "staff", NULL, ATRIUM_ERROR_IN_USE},
                {"delete", "pool", "office", NULL, ATRIUM_ERROR_IN_USE},
                {"delete", "user", "alice", NULL, ATRIUM_ERROR_IN_USE},
                {"delete", "pool", "nosuch", NULL, ATRIUM_ERROR_NOT_FOUND},
                {"delete", "session", "name-not-id", NULL, ATRIUM_ERROR_NOT_FOUND},
        };

        base_objects(f);
        must_create(f, "pool", "{\"name\":\"ent-pool\",\"template\":\"deb12\"}");
        must_create(f, "entitlement", "{\"pool\":\"ent-pool\",\"group\":\"staff\"}");
        must_create(f, "desktop", "{\"name\":\"office-1\",\"pool\":\"office\",\"user\":\"alice\"}");
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                const Resource *res = resource_by_kind(cases[i].kind);
                g_autofree char *before = snapshot(f), *after = NULL;
                g_autoptr(GError) error = NULL;
                gboolean ok;

                if (g_str_equal(cases[i].op, "create")) {
                        g_autoptr(JsonObject) o = create(f, cases[i].kind, cases[i].json, &error);
                        ok = o != NULL;
                } else if (g_str_equal(cases[i].op, "update")) {
                        g_autoptr(JsonObject) p = obj(cases[i].json);
                        g_autoptr(JsonObject) o =
                                store_update(f->st, res, cases[i].target, p, &tester, &error);
                        ok = o != NULL;
                } else {
                        ok = store_delete(f->st, res, cases[i].target, &tester, &error);
                }
                if (ok || !g_error_matches(error, ATRIUM_ERROR, cases[i].code))
                        g_error("case %zu (%s %s): expected error %s, got %s", i, cases[i].op,
                                cases[i].kind, atrium_error_code_to_string(cases[i].code),
                                error ? error->message : "success");
                after = snapshot(f);
                g_assert_cmpstr(before, ==, after);
        }
}

static void test_in_use_message(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        base_objects(f);
        g_assert_false(store_delete(f->st, resource_by_kind("template"), "deb12", &tester, &error));
        g_assert_cmpstr(error->message, ==,
                        "template 'deb12' is still used by 1 pool (field 'template'); remove or "
                        "change it first");
}

static void test_members(Fixture *f, gconstpointer data)
{
        const Resource *user = resource_by_kind("user");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonArray) m = NULL, m2 = NULL;

        base_objects(f);
        g_assert_true(store_member_add(f->st, "staff", "alice", &tester, &error));
        g_assert_true(store_member_add(f->st, "staff", "alice", &tester, &error)); /* idempotent */
        m = store_members(f->st, "staff", &error);
        g_assert_cmpuint(json_array_get_length(m), ==, 1);
        g_assert_false(store_member_add(f->st, "staff", "nobody", &tester, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND);
        g_clear_error(&error);
        g_assert_false(store_member_add(f->st, "nogroup", "alice", &tester, &error));
        g_clear_error(&error);
        /* Deleting a user drops its memberships with it. */
        g_assert_true(store_delete(f->st, user, "alice", &tester, &error));
        m2 = store_members(f->st, "staff", &error);
        g_assert_cmpuint(json_array_get_length(m2), ==, 0);
        g_assert_false(store_member_remove(f->st, "staff", "admin", &tester, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND);
}

static void test_list(Fixture *f, gconstpointer data)
{
        const Resource *desk = resource_by_kind("desktop");
        g_autoptr(GHashTable) filt = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GError) error = NULL;
        ListQuery q = {.limit = 4};
        gint64 next = 0, alice_id;
        guint seen = 0, pages = 0;

        base_objects(f);
        for (int i = 0; i < 10; i++) {
                g_autofree char *j = g_strdup_printf(
                        "{\"name\":\"d%d\",\"pool\":\"office\",\"state\":\"%s\"%s}", i,
                        i % 3 == 0 ? "running" : "stopped", i < 2 ? ",\"user\":\"alice\"" : "");
                must_create(f, "desktop", j);
        }
        do {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_no_error(error);
                seen += json_array_get_length(a);
                pages++;
                q.after_id = next;
        } while (next);
        g_assert_cmpuint(seen, ==, 10);
        g_assert_cmpuint(pages, ==, 3);
        q = (ListQuery){.limit = 100, .filters = filt};
        g_hash_table_insert(filt, "state", "running");
        {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_cmpuint(json_array_get_length(a), ==, 4);
        }
        g_hash_table_insert(filt, "name", "d9");
        {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_cmpuint(json_array_get_length(a), ==, 1);
        }
        g_hash_table_remove_all(filt);
        g_hash_table_insert(filt, "name", "%"); /* LIKE wildcards are literal */
        {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_cmpuint(json_array_get_length(a), ==, 0);
        }
        g_hash_table_remove_all(filt);
        g_hash_table_insert(filt, "pool", "nosuch");
        {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_cmpuint(json_array_get_length(a), ==, 0);
        }
        g_hash_table_remove_all(filt);
        g_hash_table_insert(filt, "state", "bogus");
        g_assert_null(store_list(f->st, desk, &q, &next, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_hash_table_remove_all(filt);
        g_hash_table_insert(filt, "created_at", "x");
        g_assert_null(store_list(f->st, desk, &q, &next, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        /* Owner scope: alice sees her two desktops only, and not others' by id. */
        g_hash_table_remove_all(filt);
        {
                g_autoptr(JsonObject) a =
                        store_get(f->st, resource_by_kind("user"), "alice", 0, NULL);
                alice_id = json_object_get_int_member(a, "id");
        }
        q.owner_id = alice_id;
        {
                g_autoptr(JsonArray) a = store_list(f->st, desk, &q, &next, &error);
                g_assert_cmpuint(json_array_get_length(a), ==, 2);
        }
        {
                g_autoptr(JsonObject) mine = store_get(f->st, desk, "d1", alice_id, &error);
                g_autoptr(JsonObject) theirs = NULL;
                g_assert_nonnull(mine);
                theirs = store_get(f->st, desk, "d5", alice_id, &error);
                g_assert_null(theirs);
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND);
        }
}

static void test_tokens(Fixture *f, gconstpointer data)
{
        const Resource *user = resource_by_kind("user");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) dis = obj("{\"enabled\":false}");
        TokenInfo ti = {0};
        UserAuth ua = {0};
        gint64 now = 1000000;

        base_objects(f);
        g_assert_true(store_user_auth(f->st, "alice", &ua, &error));
        g_assert_cmpstr(ua.password_hash, ==, "hash-of-alice");
        g_assert_cmpint(ua.role, ==, ROLE_USER);
        g_assert_true(
                store_token_insert(f->st, "hash1", ua.id, now + 100, "::1", FALSE, NULL, &error));
        g_assert_true(
                store_token_insert(f->st, "hash2", ua.id, now + 100, "::1", FALSE, NULL, &error));
        g_assert_true(store_token_lookup(f->st, "hash1", now, &ti, &error));
        g_assert_cmpstr(ti.user_name, ==, "alice");
        g_assert_cmpint(ti.role, ==, ROLE_USER);
        g_assert_false(ti.enrol_only);
        token_info_clear(&ti);
        /* The role in effect, read with the token: the highest of her own and her groups'
         * (one group giving nothing more, one giving operator). */
        must_create(f, "group", "{\"name\":\"ops\",\"role\":\"operator\"}");
        g_assert_true(store_member_add(f->st, "staff", "alice", &tester, &error));
        g_assert_true(store_member_add(f->st, "ops", "alice", &tester, &error));
        g_assert_true(store_token_lookup(f->st, "hash1", now, &ti, &error));
        g_assert_cmpint(ti.role, ==, ROLE_OPERATOR);
        g_assert_cmpint(ti.user_id, ==, ua.id);
        token_info_clear(&ti);
        /* A login's token: restricted to enrolment, with its event, in one transaction. */
        {
                gint64 events = store_count(f->st, resource_by_kind("event"));
                g_assert_true(store_token_insert(
                        f->st, "hash4", ua.id, now + 100, "::1", TRUE,
                        &(StoreEvent){&tester, "login", "user", ua.id, "alice", ""}, &error));
                g_assert_cmpint(store_count(f->st, resource_by_kind("event")), ==, events + 1);
                g_assert_true(store_token_lookup(f->st, "hash4", now, &ti, &error));
                g_assert_true(ti.enrol_only);
                token_info_clear(&ti);
                /* the same hash again: refused, and no event without its token */
                g_assert_false(store_token_insert(
                        f->st, "hash4", ua.id, now + 100, "::1", FALSE,
                        &(StoreEvent){&tester, "login", "user", ua.id, "alice", ""}, &error));
                g_clear_error(&error);
                g_assert_cmpint(store_count(f->st, resource_by_kind("event")), ==, events + 1);
        }
        /* Expired. */
        g_assert_false(store_token_lookup(f->st, "hash1", now + 100, &ti, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED);
        g_clear_error(&error);
        /* Revoked. */
        g_assert_true(store_token_delete(f->st, "hash1", &error));
        g_assert_false(store_token_lookup(f->st, "hash1", now, &ti, &error));
        g_clear_error(&error);
        /* A disabled user's tokens stop working. */
        {
                g_autoptr(JsonObject) r = store_update(f->st, user, "alice", dis, &tester, &error);
                g_assert_no_error(error);
                g_assert_false(json_object_get_boolean_member(r, "enabled"));
        }
        g_assert_false(store_token_lookup(f->st, "hash2", now, &ti, &error));
        g_clear_error(&error);
        /* A new password revokes every token. */
        g_assert_true(store_token_insert(f->st, "hash3", 1, now + 100, "", FALSE, NULL, &error));
        g_assert_true(store_user_set_password(f->st, 1, "h-new", &tester, &error));
        g_assert_false(store_token_lookup(f->st, "hash3", now, &ti, &error));
        g_clear_error(&error);
        user_auth_clear(&ua);
        g_assert_true(store_user_auth(f->st, "admin", &ua, &error));
        g_assert_cmpstr(ua.password_hash, ==, "h-new");
        user_auth_clear(&ua);
        g_assert_false(store_user_auth(f->st, "ghost", &ua, &error));
}

/* The pools a user (directly or through a group) and a terminal are entitled to: one query,
 * each pool once, in order. */
static void test_entitled_pools(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        const char *pools[] = {"p2", "p3", "p4"};
        struct {
                const char *user, *terminal;
                gint64 want[4];
        } cases[] = {
                {"alice", NULL, {1, 2}}, /* office directly and through staff; p2 through staff */
                {"bob", NULL, {3}},         {NULL, "t1", {4}},
                {"alice", "t1", {1, 2, 4}}, {"admin", NULL, {0}},
        };

        base_objects(f);
        for (gsize i = 0; i < G_N_ELEMENTS(pools); i++) {
                g_autofree char *j = g_strdup_printf(
                        "{\"name\":\"%s\",\"template\":\"deb12\",\"size\":1}", pools[i]);
                must_create(f, "pool", j);
        }
        must_create(f, "user", "{\"name\":\"bob\",\"password\":\"hash-of-bob\"}");
        must_create(f, "terminal", "{\"name\":\"t1\"}");
        g_assert_true(store_member_add(f->st, "staff", "alice", &tester, &error));
        must_create(f, "entitlement", "{\"pool\":\"office\",\"user\":\"alice\"}");
        must_create(f, "entitlement", "{\"pool\":\"office\",\"group\":\"staff\"}");
        must_create(f, "entitlement", "{\"pool\":\"p2\",\"group\":\"staff\"}");
        must_create(f, "entitlement", "{\"pool\":\"p3\",\"user\":\"bob\"}");
        must_create(f, "entitlement", "{\"pool\":\"p4\",\"terminal\":\"t1\"}");
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(JsonObject) u = cases[i].user ? store_get(f->st, resource_by_kind("user"),
                                                                    cases[i].user, 0, &error)
                                                        : NULL;
                g_autoptr(JsonObject) t = cases[i].terminal
                                                  ? store_get(f->st, resource_by_kind("terminal"),
                                                              cases[i].terminal, 0, &error)
                                                  : NULL;
                g_autoptr(GArray) got =
                        store_entitled_pools(f->st, u ? json_object_get_int_member(u, "id") : 0,
                                             t ? json_object_get_int_member(t, "id") : 0, &error);
                guint n = 0;
                g_assert_no_error(error);
                while (n < G_N_ELEMENTS(cases[i].want) && cases[i].want[n])
                        n++;
                g_assert_cmpuint(got->len, ==, n);
                for (guint k = 0; k < n; k++)
                        g_assert_cmpint(g_array_index(got, gint64, k), ==, cases[i].want[k]);
        }
}

/* The broker's claim: the pool's first free started desktop (clean, unassigned, no session, not
 * in maintenance), or a named one if it is still free or the caller's; the session made on it
 * and the desktop assigned in one transaction with their events; nothing when none qualifies. */
static gint64 claim(Fixture *f, gint64 pool, gint64 desktop, gint64 user, const char *want)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) sv = obj("{\"state\":\"disconnected\",\"protocol\":\"spice\"}");
        g_autoptr(JsonObject) patch = obj("{\"dirty\":true}");
        StoreClaim c = {.pool_id = pool,
                        .desktop_id = desktop,
                        .user_id = user,
                        .session = sv,
                        .patch = patch};
        g_autoptr(JsonArray) rows = NULL;
        JsonObject *d;

        json_object_set_int_member(sv, "user", user);
        json_object_set_int_member(patch, "user", user);
        rows = store_desktop_claim(f->st, &c, &tester, &error);
        g_assert_no_error(error);
        if (!want) {
                g_assert_null(rows);
                return 0;
        }
        g_assert_nonnull(rows);
        d = json_array_get_object_element(rows, 1);
        g_assert_cmpstr(json_object_get_string_member(d, "name"), ==, want);
        g_assert_true(json_row_ref(d, "user_id") == 0 ||
                      json_row_ref(d, "user_id") == user); /* as it was before */
        g_assert_cmpint(json_row_ref(json_array_get_object_element(rows, 0), "desktop_id"), ==,
                        json_object_get_int_member(d, "id"));
        return json_object_get_int_member(json_array_get_object_element(rows, 0), "id");
}

static void test_desktop_claim(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        const char *desks[] = {
                "{\"name\":\"d1\",\"pool\":\"office\",\"state\":\"running\",\"maintenance\":true}",
                "{\"name\":\"d2\",\"pool\":\"office\",\"state\":\"stopped\"}",
                "{\"name\":\"d3\",\"pool\":\"office\",\"state\":\"running\",\"dirty\":true}",
                "{\"name\":\"d4\",\"pool\":\"office\",\"state\":\"running\"}",
                "{\"name\":\"d5\",\"pool\":\"office\",\"state\":\"running\"}",
        };
        g_autoptr(JsonObject) alice = NULL, bob = NULL, d2 = NULL, d4 = NULL, row = NULL;
        gint64 pool, a, b, n_events;
        g_autofree char *before = NULL, *after = NULL;

        base_objects(f);
        must_create(f, "user", "{\"name\":\"bob\",\"password\":\"hash-of-bob\"}");
        for (gsize i = 0; i < G_N_ELEMENTS(desks); i++) {
                g_autoptr(JsonObject) v = obj(desks[i]);
                g_autoptr(JsonObject) d =
                        store_create(f->st, resource_by_kind("desktop"), v, &tester, &error);
                g_assert_no_error(error);
                g_assert_nonnull(d);
        }
        alice = store_get(f->st, resource_by_kind("user"), "alice", 0, &error);
        bob = store_get(f->st, resource_by_kind("user"), "bob", 0, &error);
        d2 = store_get(f->st, resource_by_kind("desktop"), "d2", 0, &error);
        d4 = store_get(f->st, resource_by_kind("desktop"), "d4", 0, &error);
        row = store_get(f->st, resource_by_kind("pool"), "office", 0, &error);
        pool = json_object_get_int_member(row, "id");
        a = json_object_get_int_member(alice, "id");
        b = json_object_get_int_member(bob, "id");
        n_events = store_count(f->st, resource_by_kind("event"));

        /* d1 in maintenance, d2 stopped, d3 dirty: alice gets d4, bob d5, then none is left */
        g_assert_cmpint(claim(f, pool, 0, a, "d4"), >, 0);
        g_assert_cmpint(store_count(f->st, resource_by_kind("event")), ==, n_events + 2);
        g_clear_pointer(&row, json_object_unref);
        row = store_get(f->st, resource_by_kind("desktop"), "d4", 0, &error);
        g_assert_cmpint(json_object_get_int_member(row, "user_id"), ==, a);
        g_assert_true(json_object_get_boolean_member(row, "dirty"));
        g_assert_cmpint(claim(f, pool, 0, b, "d5"), >, 0);
        before = snapshot(f);
        claim(f, pool, 0, b, NULL);
        /* alice's d4 is not bob's to claim; it is hers; the stopped d2 is free to name */
        claim(f, 0, json_object_get_int_member(d4, "id"), b, NULL);
        after = snapshot(f);
        g_assert_cmpstr(before, ==, after);
        g_assert_cmpint(claim(f, 0, json_object_get_int_member(d4, "id"), a, "d4"), >, 0);
        g_assert_cmpint(claim(f, 0, json_object_get_int_member(d2, "id"), b, "d2"), >, 0);
        g_assert_cmpint(store_count(f->st, resource_by_kind("session")), ==, 4);
}

/* The seam maps the database's own refusals to Atrium codes (writers racing past the
 * families' checks): a unique key taken, a row still referenced, a busy database. */
static SqlStep insert(SqlDb *db, const char *sql, gint64 v)
{
        g_autoptr(GError) error = NULL;
        SqlStmt *st = sql_prep(db, sql, &error);
        SqlStep rc;

        g_assert_no_error(error);
        sql_bind_int(st, 1, v);
        rc = sql_step(st);
        sql_reset(st);
        return rc;
}

static void test_seam_errors(Fixture *f, gconstpointer data)
{
        g_autofree char *path = g_build_filename(f->dir, "seam.db", NULL);
        g_autoptr(GError) error = NULL;
        SqlDb *db = sql_open_sqlite(path, TRUE, &error), *other;

        g_assert_no_error(error);
        g_assert_true(sql_exec(db,
                               "CREATE TABLE p (id INTEGER PRIMARY KEY, k INTEGER UNIQUE);"
                               "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER "
                               "REFERENCES p(id));",
                               &error));
        g_assert_cmpint(insert(db, "INSERT INTO p (k) VALUES (?)", 7), ==, SQL_DONE);
        g_assert_cmpint(insert(db, "INSERT INTO p (k) VALUES (?)", 7), ==, SQL_FAIL);
        sql_error(db, &error, "adding k");
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE);
        g_assert_nonnull(strstr(error->message, "database error while adding k"));
        g_clear_error(&error);
        g_assert_cmpint(insert(db, "INSERT INTO c (p_id) VALUES (?)", 1), ==, SQL_DONE);
        g_assert_cmpint(insert(db, "DELETE FROM p WHERE id = ?", 1), ==, SQL_FAIL);
        sql_error(db, &error, "deleting p");
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE);
        g_clear_error(&error);
        /* a second handle holding the write lock: busy past the timeout is UNAVAILABLE */
        other = sql_open_peer(db, &error);
        g_assert_no_error(error);
        g_assert_true(sql_begin(other, &error));
        g_assert_true(sql_exec(db, "PRAGMA busy_timeout = 10", &error));
        g_assert_false(sql_begin(db, NULL));
        g_assert_cmpint(insert(db, "INSERT INTO p (k) VALUES (?)", 8), ==, SQL_FAIL);
        sql_error(db, &error, "adding k while busy");
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE);
        g_clear_error(&error);
        sql_rollback(other);
        g_assert_cmpint(insert(db, "INSERT INTO p (k) VALUES (?)", 8), ==, SQL_DONE);
        sql_close(other);
        sql_close(db);
}

/* Placement epochs come from one counter: a new desktop takes the next, a new host moves it
 * on (an update that keeps the host does not), and a desktop that takes a deleted one's id
 * (SQLite reuses the highest rowid) still gets a newer epoch than any before. */
static void test_epochs(Fixture *f, gconstpointer data)
{
        const Resource *desktops = resource_by_kind("desktop"), *hosts = resource_by_kind("host");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) d1 = NULL, d2 = NULL, moved = NULL, same = NULL, again = NULL;
        g_autoptr(JsonObject) h1v = obj("{\"name\":\"h1\"}"), h2v = obj("{\"name\":\"h2\"}");
        g_autoptr(JsonObject) h1 = NULL, h2 = NULL, to_h2 = NULL, keep = NULL;
        gint64 e1, e2, id2;

        base_objects(f);
        h1 = store_create(f->st, hosts, h1v, &tester, &error);
        g_assert_no_error(error);
        h2 = store_create(f->st, hosts, h2v, &tester, &error);
        g_assert_no_error(error);
        d1 = create(f, "desktop", "{\"name\":\"d1\",\"pool\":\"office\",\"host\":\"h1\"}", &error);
        g_assert_no_error(error);
        d2 = create(f, "desktop", "{\"name\":\"d2\",\"pool\":\"office\",\"host\":\"h1\"}", &error);
        g_assert_no_error(error);
        e1 = json_object_get_int_member(d1, "epoch");
        e2 = json_object_get_int_member(d2, "epoch");
        g_assert_cmpint(e1, >, 0);
        g_assert_cmpint(e2, >, e1);
        to_h2 = obj("{\"host\":\"h2\"}");
        moved = store_update(f->st, desktops, "d1", to_h2, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(moved, "epoch"), >, e2);
        keep = obj("{\"host\":\"h2\",\"maintenance\":true}");
        same = store_update(f->st, desktops, "d1", keep, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(same, "epoch"), ==,
                        json_object_get_int_member(moved, "epoch"));
        id2 = json_object_get_int_member(d2, "id");
        g_assert_true(store_delete(f->st, desktops, "d2", &tester, &error));
        again = create(f, "desktop", "{\"name\":\"d3\",\"pool\":\"office\",\"host\":\"h1\"}", &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(again, "id"), ==, id2); /* the id came back */
        g_assert_cmpint(json_object_get_int_member(again, "epoch"), >,
                        json_object_get_int_member(moved, "epoch"));
}

/* PostgreSQL's dialect of the store's SQL (sql-pg.c): placeholders numbered, literals left
 * alone, booleans as integers, LIKE on a name case-insensitive under "C". */
static void test_pg_dialect(void)
{
        static const struct {
                const char *in, *out;
                int n;
        } cases[] = {
                {"SELECT id FROM users WHERE name = ?", "SELECT id FROM users WHERE name = $1", 1},
                {"UPDATE t SET a = ?2 WHERE id = ?1 OR b = ?2", "UPDATE t SET a = $2 WHERE id = $1 OR b = $2", 2},
                {"SELECT 1 WHERE x = ? AND y = '?' AND z = ?", "SELECT 1 WHERE x = $1 AND y = '?' AND z = $2", 2},
                {"SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1", 1},
                {"UPDATE u SET e = TRUE WHERE d = FALSE AND TRUEISH = 1", "UPDATE u SET e = 1 WHERE d = 0 AND TRUEISH = 1", 0},
                {"WHERE t.name LIKE ? ESCAPE '\\'", "WHERE t.name COLLATE \"C\" ILIKE $1 ESCAPE '\\'", 1},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                int n = -1;
                g_autofree char *got = sql_pg_statement(cases[i].in, &n);
                g_assert_cmpstr(got, ==, cases[i].out);
                g_assert_cmpint(n, ==, cases[i].n);
        }
        for (int v = 1; v <= schema_latest(); v++) {
                g_autofree char *pg = sql_pg_schema(schema_migration(v));
                g_assert_null(strstr(pg, "INTEGER"));
                g_assert_null(strstr(pg, "randomblob"));
                g_assert_null(strstr(pg, "IS NOT NULL) +"));
                if (strstr(schema_migration(v), "COLLATE NOCASE"))
                        g_assert_true(g_str_has_prefix(pg, "CREATE COLLATION IF NOT EXISTS nocase"));
        }
        {
                g_autofree char *pg = sql_pg_schema("CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
                g_assert_cmpstr(pg, ==, "CREATE TABLE a (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL)");
        }
}

/* The tables the migrations leave, in the order they were made (renamed ones in their new
 * name, dropped ones gone). */
static void test_schema_tables(Fixture *f, gconstpointer data)
{
        g_autoptr(GPtrArray) t = schema_tables();
        sqlite3 *db;
        sqlite3_stmt *st;
        guint n = 0;

        g_assert_cmpstr(t->pdata[0], ==, "users");
        g_assert_true(g_ptr_array_find_with_equal_func(t, "entitlements", g_str_equal, NULL));
        g_assert_false(g_ptr_array_find_with_equal_func(t, "entitlements_v7", g_str_equal, NULL));
        g_assert_cmpint(sqlite3_open(f->path, &db), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'",
                                           -1, &st, NULL), ==, SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
                g_assert_true(g_ptr_array_find_with_equal_func(t, sqlite3_column_text(st, 0),
                                                               g_str_equal, NULL));
                n++;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        g_assert_cmpuint(n, ==, t->len);
}

static void count_table(const char *table, gint64 rows, const char *sum, gpointer data)
{
        g_hash_table_insert(data, g_strdup(table), GINT_TO_POINTER((int)rows + 1));
}

/* store_copy into an empty store keeps every row (ids, a reference to a later table) and the
 * source's settings; into one that holds rows it refuses and writes nothing. */
static void test_copy(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *path2 = g_build_filename(f->dir, "copy.db", NULL);
        g_autoptr(Store) to = NULL;
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(JsonObject) u = NULL;
        g_autofree char *inst = store_setting(f->st, "installation");
        g_autofree char *inst2 = NULL;

        u = create(f, "group", "{\"name\":\"zed\"}", &error);
        g_assert_no_error(error);
        to = store_open_sqlite(path2, &error);
        g_assert_no_error(error);
        g_assert_true(store_copy(f->st, to, count_table, seen, &error));
        g_assert_no_error(error);
        g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(seen, "groups")) - 1, ==, 1);
        g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(seen, "events")) - 1, ==, 1);
        inst2 = store_setting(to, "installation");
        g_assert_cmpstr(inst2, ==, inst);
        {
                g_autoptr(JsonObject) again = store_get(to, resource_by_kind("group"), "zed", 0, &error);
                g_assert_no_error(error);
                g_assert_cmpint(json_object_get_int_member(again, "id"), ==,
                                json_object_get_int_member(u, "id"));
        }
        g_assert_false(store_copy(f->st, to, NULL, NULL, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "is not empty (table groups has 1 rows)"));
        g_assert_cmpint(store_count(to, resource_by_kind("group")), ==, 1);
}

/* The leader's lease (store-cluster.c), on SQLite's clock here: the first manager takes term
 * 1 and renews it; another stays a standby while it lasts, takes term 2 once it has lapsed;
 * the first then renews nothing, and the roll call has both. */
static void test_lease(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) c = NULL;
        Lease a = {0}, b = {0};

        g_assert_true(store_lease_tick(f->st, "ma", "https://a", "d", 0, 60000, &a, &error));
        g_assert_no_error(error);
        g_assert_true(a.leader && a.took_over);
        g_assert_cmpint(a.term, ==, 1);
        lease_clear(&a);
        g_assert_true(store_lease_tick(f->st, "ma", "https://a", "d", 1, 60000, &a, &error));
        g_assert_true(a.leader && !a.took_over);
        lease_clear(&a);
        g_assert_true(store_lease_tick(f->st, "mb", "https://b", "d", 0, 60000, &b, &error));
        g_assert_false(b.leader);
        g_assert_cmpstr(b.holder, ==, "ma");
        g_assert_cmpstr(b.url, ==, "https://a");
        g_assert_cmpint(b.left_ms, >, 50000);
        lease_clear(&b);
        /* ma renews with a lease of 1 ms, then goes quiet */
        g_assert_true(store_lease_tick(f->st, "ma", "https://a", "d", 1, 1, &a, &error));
        lease_clear(&a);
        g_usleep(20000);
        g_assert_true(store_lease_tick(f->st, "mb", "https://b", "d", 0, 60000, &b, &error));
        g_assert_true(b.leader && b.took_over);
        g_assert_cmpint(b.term, ==, 2);
        lease_clear(&b);
        g_assert_true(store_lease_tick(f->st, "ma", "https://a", "d", 1, 60000, &a, &error));
        g_assert_false(a.leader);
        g_assert_cmpint(a.term, ==, 2);
        g_assert_cmpstr(a.holder, ==, "mb");
        lease_clear(&a);
        c = store_cluster(f->st, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(json_object_get_string_member(c, "leader"), ==, "mb");
        g_assert_cmpint(json_object_get_int_member(c, "term"), ==, 2);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(c, "managers")), ==, 2);
        {
                g_autofree char *d = store_manager_digest(f->st, "mb");
                g_assert_cmpstr(d, ==, "d");
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/store/" name, Fixture, NULL, setup, fn, teardown)
        T("epochs", test_epochs);
        T("migrations", test_migrations);
        T("schema-matches-model", test_schema_matches_model);
        T("crud-and-events", test_crud_and_events);
        T("batch-events", test_batch_events);
        T("refusals-change-nothing", test_refusals_change_nothing);
        T("in-use-message", test_in_use_message);
        T("members", test_members);
        T("list", test_list);
        T("tokens", test_tokens);
        T("entitled-pools", test_entitled_pools);
        T("desktop-claim", test_desktop_claim);
        T("seam-errors", test_seam_errors);
        T("schema-tables", test_schema_tables);
        T("copy", test_copy);
        T("lease", test_lease);
        g_test_add_func("/store/pg-dialect", test_pg_dialect);
        return g_test_run();
}
