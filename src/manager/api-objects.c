/* Generic object routes: list, get, create, update, delete for every Resource. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

/* Plain users see only the rows they own; other roles see all. */
static gint64 owner_scope(ApiRequest *req)
{
        const Resource *res = req->route->res;

        if (res->owner_field && req->caller.role < ROLE_OPERATOR)
                return req->caller.user_id;
        return 0;
}

/* Lists are the API's hot path and serialising a page is the bulk of their cost, so they run
 * in worker threads, each with its own read-only handle on the store (SQLite in WAL mode lets
 * readers run beside the writer on the loop). */
typedef struct {
        Store *main;
        const Resource *res;
        GHashTable *filters; /* field -> value, owned */
        ListQuery q;
} ListJob;

typedef struct {
        char *location;
        Store *reader;
} ThreadReader;

static void thread_reader_free(gpointer data)
{
        ThreadReader *tr = data;

        if (!tr)
                return;
        store_close(tr->reader);
        g_free(tr->location);
        g_free(tr);
}

static GPrivate thread_reader = G_PRIVATE_INIT(thread_reader_free);

static Store *reader_for(Store *main, GError **error)
{
        ThreadReader *tr = g_private_get(&thread_reader);

        if (tr && g_str_equal(tr->location, store_location(main)))
                return tr->reader;
        tr = g_new0(ThreadReader, 1);
        tr->reader = store_open_reader(main, error);
        if (!tr->reader) {
                g_free(tr);
                return NULL;
        }
        tr->location = g_strdup(store_location(main));
        g_private_replace(&thread_reader, tr);
        return tr->reader;
}

static void list_job_free(ListJob *job)
{
        g_hash_table_unref(job->filters);
        g_free(job);
}

static gpointer list_work(gpointer data, GError **error)
{
        ListJob *job = data;
        Store *reader = reader_for(job->main, error);
        GString *out;
        gint64 next = 0;

        if (!reader)
                return NULL;
        out = g_string_sized_new(32768);
        g_string_append(out, "{\"items\":");
        if (!store_list_json(reader, job->res, &job->q, out, &next, error)) {
                g_string_free(out, TRUE);
                return NULL;
        }
        if (next)
                g_string_append_printf(out, ",\"next_cursor\":\"%" G_GINT64_FORMAT "\"}", next);
        else
                g_string_append(out, ",\"next_cursor\":null}");
        return out;
}

static void list_done(ApiRequest *req, gpointer result, GError *error, gpointer data)
{
        if (error)
                api_reply_error(req, error);
        else
                api_reply_text(req, 200, result);
}

void api_objects_list(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        ListJob *job = g_new0(ListJob, 1);
        gint64 max = MCFG_INT(req->mgr, "page_size_max");
        GHashTableIter it;
        gpointer k, v;

        job->main = req->mgr->store;
        job->res = req->route->res;
        job->filters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        job->q.filters = job->filters;
        job->q.owner_id = owner_scope(req);
        job->q.limit = MCFG_INT(req->mgr, "page_size_default");
        if (req->query) {
                g_hash_table_iter_init(&it, req->query);
                while (g_hash_table_iter_next(&it, &k, &v)) {
                        guint64 n;
                        if (g_str_equal(k, "limit")) {
                                if (!g_ascii_string_to_unsigned(v, 10, 1, max, &n, NULL)) {
                                        g_autofree char *q = util_quote(v);
                                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "limit must be a whole number from 1 to "
                                                    "%" G_GINT64_FORMAT ", not '%s'",
                                                    max, q);
                                        break;
                                }
                                job->q.limit = n;
                        } else if (g_str_equal(k, "cursor")) {
                                if (!util_parse_id(v, &job->q.after_id)) {
                                        g_autofree char *q = util_quote(v);
                                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "'%s' is not a cursor this server gave out", q);
                                        break;
                                }
                        } else {
                                g_hash_table_insert(job->filters, g_strdup(k), g_strdup(v));
                        }
                }
        }
        if (error) {
                list_job_free(job);
                api_reply_error(req, error);
                return;
        }
        api_run_in_thread(req, list_work, list_done, job, (GDestroyNotify)list_job_free);
}

void api_objects_get(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        JsonObject *o = store_get(req->mgr->store, req->route->res, req->params[0],
                                  owner_scope(req), &error);

        if (!o)
                api_reply_error(req, error);
        else
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
        g_autoptr(GError) error = NULL;
        gboolean create = g_str_equal(req->route->op, "create");
        JsonObject *row = create ? store_create(req->mgr->store, res, values, &req->actor, &error)
                                 : store_update(req->mgr->store, res, req->params[0], values,
                                                &req->actor, &error);

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        if (create) {
                g_autofree char *loc = g_strdup_printf("/api/v1/%s/%" G_GINT64_FORMAT, res->plural,
                                                       json_object_get_int_member(row, "id"));
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
        g_autoptr(GError) error = NULL;

        if (!model_validate(res, req->body, create, &error)) {
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
        g_autoptr(GError) error = NULL;

        if (!store_delete(req->mgr->store, req->route->res, req->params[0], &req->actor, &error))
                api_reply_error(req, error);
        else
                api_reply_empty(req, 204);
}
