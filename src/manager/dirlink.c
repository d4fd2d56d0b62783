/* Directory users in the manager: see dirlink.h. */
#define G_LOG_DOMAIN "directory"

#include "manager/dirlink.h"
#include "manager/rows.h"
#include "manager/api.h"
#include "common/error.h"

#include <string.h>

#define DCFG_STR(m, k) config_get_string((m), "directory", (k))
#define DCFG_INT(m, k) config_get_int((m)->config, "directory", (k))
#define DCFG_BOOL(m, k) config_get_bool((m), "directory", (k))

struct _DirLink {
        Manager *mgr;
        guint timer;
        gboolean running; /* a refresh pass is under way */
        GCancellable *cancel;
};

/* One directory from a [directory] section (of the main file, or of an extra file). */
static DirectoryConfig *config_from(Config *cfg, const char *name)
{
        DirectoryConfig *c;
        const char *urls = DCFG_STR(cfg, "urls");
        g_auto(GStrv) parts = NULL;
        GPtrArray *keep = g_ptr_array_new();

        if (!urls || !urls[0]) {
                g_ptr_array_free(keep, TRUE);
                return NULL;
        }
        c = g_new0(DirectoryConfig, 1);
        c->name = g_strdup(name);
        parts = g_strsplit_set(urls, " \t,", -1);
        for (char **u = parts; *u; u++) /* the empty pieces of repeated separators go */
                if ((*u)[0])
                        g_ptr_array_add(keep, g_strdup(*u));
        g_ptr_array_add(keep, NULL);
        c->urls = (char **)g_ptr_array_free(keep, FALSE);
        c->start_tls = DCFG_BOOL(cfg, "start_tls");
        c->ca_file = g_strdup(DCFG_STR(cfg, "ca_file"));
        c->bind_dn = g_strdup(DCFG_STR(cfg, "bind_dn"));
        c->bind_password = g_strdup(DCFG_STR(cfg, "bind_password"));
        c->user_base = g_strdup(DCFG_STR(cfg, "user_base"));
        c->user_filter = g_strdup(DCFG_STR(cfg, "user_filter"));
        c->login_attr = g_strdup(DCFG_STR(cfg, "login_attribute"));
        c->name_attr = g_strdup(DCFG_STR(cfg, "name_attribute"));
        c->mail_attr = g_strdup(DCFG_STR(cfg, "mail_attribute"));
        c->locked_filter = g_strdup(DCFG_STR(cfg, "locked_filter"));
        c->group_base = g_strdup(DCFG_STR(cfg, "group_base"));
        c->group_filter = g_strdup(DCFG_STR(cfg, "group_filter"));
        c->member_attr = g_strdup(DCFG_STR(cfg, "member_attribute"));
        c->group_name_attr = g_strdup(DCFG_STR(cfg, "group_name_attribute"));
        c->nested = DCFG_BOOL(cfg, "nested");
        c->ad_chain = DCFG_BOOL(cfg, "ad_matching_rule");
        c->timeout = (int)config_get_int(cfg, "directory", "timeout");
        return c;
}

GPtrArray *dirlink_configs(Manager *mgr)
{
        GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)directory_config_free);
        DirectoryConfig *main = config_from(mgr->config, "directory");
        g_auto(GStrv) extra = g_strsplit_set(DCFG_STR(mgr->config, "extra_files"), " \t", -1);

        if (main)
                g_ptr_array_add(out, main);
        for (char **f = extra; *f; f++) {
                g_autoptr(Config) cfg = NULL;
                g_autoptr(GError) error = NULL;
                DirectoryConfig *c;
                if (!(*f)[0])
                        continue;
                cfg = config_new();
                if (!config_load_file(cfg, *f, &error)) {
                        g_warning("directory.extra_files: %s", error->message);
                        continue;
                }
                if ((c = config_from(cfg, *f)))
                        g_ptr_array_add(out, c);
                else
                        g_warning("directory.extra_files: %s has no [directory] urls", *f);
        }
        if (out->len == 0) {
                g_ptr_array_unref(out);
                return NULL;
        }
        return out;
}

gboolean dirlink_sync(Store *store, const DirUser *u, gboolean create, gint64 now, gint64 *user_id,
                      GError **error)
{
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        DirectorySync d = {.name = u->login,
                           .display_name = u->display_name,
                           .mail = u->mail,
                           .dn = u->dn,
                           .now = now,
                           .create = create};

        for (guint i = 0; u->groups && i < u->groups->len; i++)
                g_ptr_array_add(names, ((DirGroup *)u->groups->pdata[i])->name);
        g_ptr_array_add(names, NULL);
        d.groups = (const char *const *)names->pdata;
        return store_directory_user_sync(store, &d, user_id, error);
}

/* ---- the group cache's refresher ------------------------------------------------------------ */

typedef struct {
        GPtrArray *configs;
        Store *store; /* a handle of its own: this runs in a worker thread */
        gint64 ttl;
} Refresh;

static void refresh_free(Refresh *r)
{
        g_ptr_array_unref(r->configs);
        store_close(r->store);
        g_free(r);
}

static void refresh_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
        Refresh *r = data;
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        g_auto(GStrv) due = store_directory_users_due(r->store, now - r->ttl, now);

        for (char **name = due; *name && !g_cancellable_is_cancelled(cancel); name++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(DirUser) u = directory_lookup_any(r->configs, *name, NULL, TRUE, &error);
                gint64 id;
                if (!u && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND) &&
                    !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN)) {
                        /* Keep what is known until the directory answers again. */
                        g_warning("cannot refresh the groups of '%s': %s", *name, error->message);
                        break;
                }
                if (!u) {
                        /* Gone from the directory (or locked): no groups, no tokens. */
                        DirectorySync d = {.name = *name,
                                           .display_name = "",
                                           .mail = "",
                                           .dn = "",
                                           .now = now,
                                           .revoke = TRUE};
                        const char *none[] = {NULL};
                        g_autoptr(GError) e2 = NULL;
                        d.groups = none;
                        g_info("'%s' can no longer log in (%s): tokens revoked", *name,
                               error->message);
                        if (!store_directory_user_sync(r->store, &d, &id, &e2))
                                g_warning("%s", e2->message);
                        continue;
                }
                if (!dirlink_sync(r->store, u, FALSE, now, &id, &error))
                        g_warning("cannot record the groups of '%s': %s", *name, error->message);
        }
        g_task_return_boolean(task, TRUE);
}

static void refresh_done(GObject *source, GAsyncResult *res, gpointer data)
{
        DirLink *d = data;

        d->running = FALSE;
}

static gboolean refresh_tick(gpointer data)
{
        DirLink *d = data;
        g_autoptr(GTask) task = NULL;
        g_autoptr(GError) error = NULL;
        Refresh *r;
        GPtrArray *c;

        if (d->running || !(c = dirlink_configs(d->mgr)))
                return G_SOURCE_CONTINUE;
        r = g_new0(Refresh, 1);
        r->configs = c;
        r->ttl = DCFG_INT(d->mgr, "group_cache_ttl");
        r->store = store_open_peer(d->mgr->store, &error);
        if (!r->store) {
                g_warning("directory refresh: %s", error->message);
                refresh_free(r);
                return G_SOURCE_CONTINUE;
        }
        d->running = TRUE;
        task = g_task_new(NULL, d->cancel, refresh_done, d);
        g_task_set_task_data(task, r, (GDestroyNotify)refresh_free);
        g_task_run_in_thread(task, refresh_thread);
        return G_SOURCE_CONTINUE;
}

/* Each directory answers and its bases exist: the first fault, naming the directory. */
static gboolean check_all(GPtrArray *configs, GError **error)
{
        for (guint i = 0; i < configs->len; i++) {
                DirectoryConfig *c = configs->pdata[i];
                if (!directory_check(c, error)) {
                        if (configs->len > 1)
                                g_prefix_error(error, "%s: ", c->name);
                        return FALSE;
                }
        }
        return TRUE;
}

static void check_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
        GError *error = NULL;

        if (check_all(data, &error))
                g_task_return_boolean(task, TRUE);
        else
                g_task_return_error(task, error);
}

static void check_done(GObject *source, GAsyncResult *res, gpointer data)
{
        g_autoptr(GError) error = NULL;

        if (g_task_propagate_boolean(G_TASK(res), &error))
                g_info("the directory answers and its bases exist");
        else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                g_warning("directory: %s", error->message);
}

DirLink *dirlink_start(Manager *mgr)
{
        DirLink *d = g_new0(DirLink, 1);
        GPtrArray *c = dirlink_configs(mgr);
        gint64 ttl = DCFG_INT(mgr, "group_cache_ttl");

        d->mgr = mgr;
        d->cancel = g_cancellable_new();
        /* Half the TTL, so that no group is trusted much longer than it: 1 s to 60 s. */
        d->timer = g_timeout_add_seconds((guint)CLAMP(ttl / 2, 1, 60), refresh_tick, d);
        if (c) {
                g_autoptr(GTask) task = g_task_new(NULL, d->cancel, check_done, NULL);
                g_task_set_task_data(task, c, (GDestroyNotify)g_ptr_array_unref);
                g_task_run_in_thread(task, check_thread);
        }
        return d;
}

void dirlink_free(DirLink *d)
{
        if (!d)
                return;
        g_cancellable_cancel(d->cancel);
        g_source_remove(d->timer);
        /* A pass under way ends on its own; its callback only clears a flag. */
        g_object_unref(d->cancel);
        if (!d->running)
                g_free(d);
}

/* ---- GET /api/v1/directory/test?user=U ---------------------------------------------------------
 */

typedef struct {
        GPtrArray *configs;
        char *user;
} TestJob;

static void test_job_free(TestJob *j)
{
        g_ptr_array_unref(j->configs);
        g_free(j->user);
        g_free(j);
}

static gpointer test_work(gpointer data, GError **error)
{
        TestJob *j = data;

        if (!check_all(j->configs, error))
                return NULL;
        return directory_lookup_any(j->configs, j->user, NULL, TRUE, error);
}

static void test_done(ApiRequest *req, gpointer result, GError *error, gpointer data)
{
        g_autoptr(DirUser) u = result;
        g_autoptr(JsonArray) groups = NULL, ents = NULL;
        g_autoptr(GHashTable) mapped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        JsonObject *out;
        JsonArray *dg, *ag, *pools;

        if (error) {
                api_reply_error(req, error);
                return;
        }
        out = json_object_new();
        json_object_set_string_member(out, "directory", u->directory);
        json_object_set_string_member(out, "server", u->server);
        json_object_set_string_member(out, "dn", u->dn);
        json_object_set_string_member(out, "login", u->login);
        json_object_set_string_member(out, "display_name", u->display_name);
        json_object_set_string_member(out, "mail", u->mail);
        dg = json_array_new();
        for (guint i = 0; i < u->groups->len; i++) {
                DirGroup *g = u->groups->pdata[i];
                JsonObject *o = json_object_new();
                json_object_set_string_member(o, "name", g->name);
                json_object_set_string_member(o, "dn", g->dn);
                if (g->via)
                        json_object_set_string_member(o, "via", g->via);
                else
                        json_object_set_null_member(o, "via");
                json_array_add_object_element(dg, o);
        }
        json_object_set_array_member(out, "directory_groups", dg);
        /* The Atrium groups naming those directory groups, and the pools they open. */
        ag = json_array_new();
        groups = store_list_all(req->store, resource_by_kind("group"), NULL, NULL);
        for (guint i = 0; groups && i < json_array_get_length(groups); i++) {
                JsonObject *g = json_array_get_object_element(groups, i);
                const char *dir = row_str(g, "directory_group");
                for (guint k = 0; dir[0] && k < u->groups->len; k++) {
                        if (g_ascii_strcasecmp(dir, ((DirGroup *)u->groups->pdata[k])->name) != 0)
                                continue;
                        json_array_add_string_element(ag, row_str(g, "name"));
                        g_hash_table_add(mapped, g_strdup(row_str(g, "name")));
                        break;
                }
        }
        json_object_set_array_member(out, "atrium_groups", ag);
        pools = json_array_new();
        ents = store_list_all(req->store, resource_by_kind("entitlement"), NULL, NULL);
        for (guint i = 0; ents && i < json_array_get_length(ents); i++) {
                JsonObject *e = json_array_get_object_element(ents, i);
                const char *eu = json_object_get_string_member_with_default(e, "user", NULL);
                const char *eg = json_object_get_string_member_with_default(e, "group", NULL);
                if ((eu && g_ascii_strcasecmp(eu, u->login) == 0) ||
                    (eg && g_hash_table_contains(mapped, eg)))
                        json_array_add_string_element(pools, row_str(e, "pool"));
        }
        json_object_set_array_member(out, "pools", pools);
        api_reply_object(req, 200, out);
}

void api_directory_test(ApiRequest *req)
{
        const char *user = req->query ? g_hash_table_lookup(req->query, "user") : NULL;
        g_autoptr(GError) error = NULL;
        TestJob *j;
        GPtrArray *c = dirlink_configs(req->mgr);

        if (!c) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "no directory is configured: set [directory] urls, user_base and "
                            "the rest in the configuration file, then reload (SIGHUP)");
                api_reply_error(req, error);
                return;
        }
        if (!user || !directory_login_valid(user, &error)) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "give the user to look up: ?user=NAME");
                g_ptr_array_unref(c);
                api_reply_error(req, error);
                return;
        }
        j = g_new0(TestJob, 1);
        j->configs = c;
        j->user = g_strdup(user);
        api_run_in_thread(req, test_work, test_done, j, (GDestroyNotify)test_job_free);
}
