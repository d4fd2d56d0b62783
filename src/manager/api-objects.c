/* Generic object routes: list, get, create, update, delete for every Resource. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "manager/rows.h"
#include "manager/agentlink.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

/* Plain users see only the rows they own; other roles see all. */
static gint64 owner_scope(ApiRequest *req)
{
        const Resource *res = req->route->res;

        if (res->owner_field && req->caller.role < ROLE_HELPDESK)
                return req->caller.user_id;
        return 0;
}

void api_objects_list(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) filters = g_hash_table_new(g_str_hash, g_str_equal);
        ListQuery q = {.filters = filters, .owner_id = owner_scope(req)};
        gint64 next = 0, max = MCFG_INT(req->mgr, "page_size_max");
        GString *out;
        GHashTableIter it;
        gpointer k, v;

        q.limit = MCFG_INT(req->mgr, "page_size_default");
        if (req->query) {
                g_hash_table_iter_init(&it, req->query);
                while (g_hash_table_iter_next(&it, &k, &v)) {
                        guint64 n;
                        if (g_str_equal(k, "limit")) {
                                if (!g_ascii_string_to_unsigned(v, 10, 1, max, &n, NULL)) {
                                        g_autofree char *quoted = util_quote(v);
                                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "limit must be a whole number from 1 to "
                                                    "%" G_GINT64_FORMAT ", not '%s'",
                                                    max, quoted);
                                        api_reply_error(req, error);
                                        return;
                                }
                                q.limit = n;
                        } else if (g_str_equal(k, "cursor")) {
                                if (!util_parse_id(v, &q.after_id)) {
                                        g_autofree char *quoted = util_quote(v);
                                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "'%s' is not a cursor this server gave out",
                                                    quoted);
                                        api_reply_error(req, error);
                                        return;
                                }
                        } else if (g_str_equal(k, "order")) {
                                if (g_strcmp0(v, "asc") != 0 && g_strcmp0(v, "desc") != 0) {
                                        g_autofree char *quoted = util_quote(v);
                                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "order must be asc (oldest first) or desc "
                                                    "(newest first), not '%s'",
                                                    quoted);
                                        api_reply_error(req, error);
                                        return;
                                }
                                q.newest_first = g_str_equal(v, "desc");
                        } else {
                                g_hash_table_insert(filters, k, v);
                        }
                }
        }
        out = g_string_sized_new(32768);
        g_string_append(out, "{\"items\":");
        if (!store_list_json(req->store, req->route->res, &q, out, &next, &error)) {
                g_string_free(out, TRUE);
                api_reply_error(req, error);
                return;
        }
        if (next)
                g_string_append_printf(out, ",\"next_cursor\":\"%" G_GINT64_FORMAT "\"}", next);
        else
                g_string_append(out, ",\"next_cursor\":null}");
        api_reply_text(req, 200, out);
}

/* A template version lists the desktops whose disks are overlays of it. */
static void add_version_desktops(ApiRequest *req, JsonObject *o)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) rows = NULL;
        JsonArray *names = json_array_new();

        g_hash_table_insert(f, (gpointer) "template_version",
                            util_id_text(row_int(o, "id")));
        rows = store_list_all(req->store, resource_by_kind("desktop"), f, NULL);
        for (guint i = 0; rows && i < json_array_get_length(rows); i++)
                json_array_add_string_element(
                        names, row_str(json_array_get_object_element(rows, i), "name"));
        json_object_set_array_member(o, "desktops", names);
}

/* ---- what some kinds do beyond the store ------------------------------------------------ */

static gboolean template_write(ApiRequest *req, gboolean create)
{
        if (!json_object_has_member(req->body, "from_guest"))
                return FALSE;
        api_template_from_guest(req, create); /* a new version, made by a host */
        return TRUE;
}

static void pool_written(ApiRequest *req, JsonObject *old, JsonObject *row, JsonObject *values,
                         gboolean create)
{
        api_pool_written(req, old, row);
}

static void session_written(ApiRequest *req, JsonObject *old, JsonObject *row, JsonObject *values,
                            gboolean create)
{
        if (create)
                api_session_written(req, row);
}

static void group_written(ApiRequest *req, JsonObject *old, JsonObject *row, JsonObject *values,
                          gboolean create)
{
        if (json_object_has_member(values, "directory_group"))
                store_directory_stale(req->store); /* looked up again at the next login or pass */
}

static void host_deleted(ApiRequest *req, JsonObject *row)
{
        /* a removed host's credential is gone with its row; close its link too */
        agentlink_forget(req->mgr->agents, row_id(row));
}

static void session_deleted(ApiRequest *req, JsonObject *row)
{
        manager_kick(req->mgr); /* a stateless desktop is reset */
}

/* What the generic object routes do for a kind beyond validation and the store. */
typedef struct {
        const char *kind;
        /* Takes the whole create or update instead (TRUE when it did). */
        gboolean (*write)(ApiRequest *req, gboolean create);
        /* Refuses a create or update after validation, before it is written. */
        gboolean (*check)(ApiRequest *req, gboolean create, GError **error);
        /* After a create or update (old: the row before an update, read when keep_old). */
        void (*written)(ApiRequest *req, JsonObject *old, JsonObject *row, JsonObject *values,
                        gboolean create);
        gboolean keep_old;
        /* Instead of the generic delete (its parts go first; it replies). */
        RouteHandler delete;
        /* After a generic delete, with the row as it was. */
        void (*deleted)(ApiRequest *req, JsonObject *row);
        /* What one object's GET shows beyond its row. */
        void (*decorate)(ApiRequest *req, JsonObject *row);
} KindHooks;

static const KindHooks kind_hooks[] = {
        {"pool", .check = api_pool_check, .written = pool_written, .keep_old = TRUE,
         .delete = api_pool_delete}, /* its desktops go first, by the reconciler */
        {"session", .written = session_written, .deleted = session_deleted},
        {"group", .written = group_written},
        {"template", .write = template_write,
         .delete = api_template_delete}, /* with its versions and their images */
        {"template-version", .delete = api_template_version_delete, /* its image goes first */
         .decorate = add_version_desktops},
        {"guest", .delete = api_guest_delete},     /* its domain goes first */
        {"desktop", .delete = api_desktop_delete}, /* its domain and overlay go first */
        {"host", .deleted = host_deleted},
};

static const KindHooks *hooks_of(const Resource *res)
{
        static const KindHooks none = {NULL};

        for (gsize i = 0; i < G_N_ELEMENTS(kind_hooks); i++)
                if (g_str_equal(kind_hooks[i].kind, res->kind))
                        return &kind_hooks[i];
        return &none;
}

void api_objects_get(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        JsonObject *o = store_get(req->store, req->route->res, req->params[0],
                                  owner_scope(req), &error);

        if (!o) {
                api_reply_error(req, error);
                return;
        }
        if (hooks_of(req->route->res)->decorate)
                hooks_of(req->route->res)->decorate(req, o);
        api_reply_object(req, 200, o);
}

/* Secret fields (passwords) are hashed in a worker thread: argon2id takes tens of ms. */
typedef struct {
        JsonObject *values;
        char *cost;
} HashJob;

static void hash_job_free(HashJob *j)
{
        json_object_unref(j->values);
        g_free(j->cost);
        g_free(j);
}

static gpointer hash_secrets(gpointer data, GError **error)
{
        HashJob *j = data;
        g_autoptr(GList) members = json_object_get_members(j->values);

        for (GList *l = members; l; l = l->next) {
                JsonNode *n = json_object_get_member(j->values, l->data);
                g_autofree char *hash = NULL;
                if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                        continue;
                if (!g_str_equal(l->data, "password"))
                        continue;
                hash = password_hash(json_node_get_string(n), j->cost, error);
                if (!hash)
                        return NULL;
                json_object_set_string_member(j->values, l->data, hash);
        }
        return j;
}

static gboolean has_secret(const Resource *res, JsonObject *values)
{
        for (gsize i = 0; i < res->n_fields; i++)
                if (res->fields[i].type == FIELD_SECRET &&
                    json_object_has_member(values, res->fields[i].name))
                        return TRUE;
        return FALSE;
}

static void write_values(ApiRequest *req, JsonObject *values)
{
        const Resource *res = req->route->res;
        const KindHooks *hooks = hooks_of(res);
        g_autoptr(GError) error = NULL;
        gboolean create = g_str_equal(req->route->op, "create");
        g_autoptr(JsonObject) old =
                hooks->keep_old && !create ? store_get(req->store, res, req->params[0], 0, NULL)
                                           : NULL;
        JsonObject *row = create ? store_create(req->store, res, values, &req->actor, &error)
                                 : store_update(req->store, res, req->params[0], values,
                                                &req->actor, &error);

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        if (hooks->written)
                hooks->written(req, old, row, values, create);
        if (create) {
                g_autofree char *loc = g_strdup_printf("/api/v1/%s/%" G_GINT64_FORMAT, res->plural,
                                                       row_int(row, "id"));
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             "Location", loc);
        }
        api_reply_object(req, create ? 201 : 200, row);
}

static void hashed(ApiRequest *req, gpointer result, GError *error, gpointer data)
{
        if (error) {
                api_reply_error(req, error);
                return;
        }
        write_values(req, ((HashJob *)result)->values);
}

static void write_object(ApiRequest *req, gboolean create)
{
        const Resource *res = req->route->res;
        const KindHooks *hooks = hooks_of(res);
        g_autoptr(GError) error = NULL;

        if (hooks->write && hooks->write(req, create))
                return;

        if (!model_validate(res, req->body, create, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (hooks->check && !hooks->check(req, create, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (!create && json_object_get_size(req->body) == 0) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the request changes nothing: give at least one field of the %s",
                            res->kind);
                api_reply_error(req, error);
                return;
        }
        if (has_secret(res, req->body)) {
                HashJob *j = g_new0(HashJob, 1);
                j->values = json_object_ref(req->body);
                j->cost = g_strdup(MCFG_STR(req->mgr, "password_cost"));
                api_run_in_thread(req, hash_secrets, hashed, j, (GDestroyNotify)hash_job_free);
                return;
        }
        write_values(req, req->body);
}

void api_objects_create(ApiRequest *req)
{
        write_object(req, TRUE);
}

void api_objects_update(ApiRequest *req)
{
        write_object(req, FALSE);
}

void api_objects_delete(ApiRequest *req)
{
        const KindHooks *hooks = hooks_of(req->route->res);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row = NULL;

        if (hooks->delete) {
                hooks->delete(req);
                return;
        }
        if (hooks->deleted)
                row = store_get(req->store, req->route->res, req->params[0], 0, NULL);
        if (!store_delete(req->store, req->route->res, req->params[0], &req->actor, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (row)
                hooks->deleted(req, row);
        api_reply_empty(req, 204);
}
