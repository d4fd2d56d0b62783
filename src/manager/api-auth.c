/* Login, logout, the caller's own account, and small read-only routes. */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "manager/rows.h"
#include "manager/dirlink.h"
#include "common/error.h"
#include "common/util.h"

#include <glib/gstdio.h>
#include <string.h>

/* A body of exactly the named string fields, and maybe the optional ones. */
static gboolean string_fields(JsonObject *body, const char *const *names,
                              const char *const *optional, GError **error)
{
        g_autoptr(GList) members = json_object_get_members(body);

        for (GList *l = members; l; l = l->next) {
                JsonNode *v = json_object_get_member(body, l->data);
                if (optional && g_strv_contains(optional, l->data)) {
                        if (!JSON_NODE_HOLDS_VALUE(v) ||
                            json_node_get_value_type(v) != G_TYPE_STRING) {
                                atrium_set_field_error(error, ATRIUM_ERROR_WRONG_TYPE, l->data,
                                            "the field '%s' must be a string", (char *)l->data);
                                return FALSE;
                        }
                        if (!util_text_valid(l->data, json_node_get_string(v), 64, error))
                                return FALSE;
                        continue;
                }
                if (!g_strv_contains(names, l->data)) {
                        atrium_set_field_error(error, ATRIUM_ERROR_UNKNOWN_FIELD, l->data,
                                    "unknown field '%s'", (char *)l->data);
                        return FALSE;
                }
        }
        for (const char *const *n = names; *n; n++) {
                JsonNode *v = json_object_get_member(body, *n);
                if (!v) {
                        atrium_set_field_error(error, ATRIUM_ERROR_MISSING_FIELD, *n,
                                    "the field '%s' is required", *n);
                        return FALSE;
                }
                if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
                        atrium_set_field_error(error, ATRIUM_ERROR_WRONG_TYPE, *n,
                                    "the field '%s' must be a string", *n);
                        return FALSE;
                }
                if (!util_text_valid(*n, json_node_get_string(v), 1024, error))
                        return FALSE;
        }
        return TRUE;
}

/* ---- login ------------------------------------------------------------------------------- */

typedef struct {
        UserAuth user;
        gboolean known;
        char *name;
        char *password;
        gboolean ok;
        GPtrArray *dir; /* set: the name is checked against the directories */
        gboolean groups_cached; /* its groups were looked up less than the TTL ago */
        DirUser *du;
        GError *dir_error;
        char *otp; /* the one-time code or recovery code, when given */
} LoginJob;

static void login_job_free(LoginJob *j)
{
        if (j->dir)
                g_ptr_array_unref(j->dir);
        dir_user_free(j->du);
        g_clear_error(&j->dir_error);
        g_free(j->otp);
        user_auth_clear(&j->user);
        g_free(j->name);
        if (j->password) {
                memset(j->password, 0, strlen(j->password));
                g_free(j->password);
        }
        g_free(j);
}

static gpointer login_verify(gpointer data, GError **error)
{
        LoginJob *j = data;

        if (j->dir) { /* search, then bind as the user: blocking, hence here */
                j->du = directory_lookup_any(j->dir, j->name, j->password, !j->groups_cached,
                                             &j->dir_error);
                j->ok = j->du != NULL;
                return j;
        }

        /* An unknown user costs the same time as a wrong password. */
        j->ok = password_verify(j->known ? j->user.password_hash : password_dummy_hash(),
                                j->password) &&
                j->known;
        return j;
}

static void login_refuse(ApiRequest *req, const char *key_user, const char *key_addr,
                         const char *name, const char *why)
{
        gint64 window = MCFG_INT(req->mgr, "login_window");
        g_autoptr(GError) error = NULL;

        ratelimit_fail(req->mgr->logins, key_user, row_now(), window);
        ratelimit_fail(req->mgr->logins, key_addr, row_now(), window);
        store_event_add(req->store, &req->actor, "login_failed", "user", 0, name, why, NULL);
        g_info("failed login for '%s' from %s: %s", name, req->address, why);
        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS,
                    "wrong user name or password");
        api_reply_error(req, error);
}

/* A directory login's outcome: the local row written, or the refusal answered (FALSE). */
static gboolean directory_done(ApiRequest *req, LoginJob *j, const char *ku, const char *ka)
{
        g_autoptr(GError) error = NULL;
        gint64 id;

        if (!j->du && (g_error_matches(j->dir_error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS) ||
                       g_error_matches(j->dir_error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND))) {
                login_refuse(req, ku, ka, j->name, "directory: wrong password or unknown user");
                return FALSE;
        }
        if (!j->du) {
                const char *why = j->dir_error->message;
                int code = j->dir_error->code;
                /* The directory's own faults are the server's: 503; the user's input: 400. */
                if (code == ATRIUM_ERROR_INVALID && !g_str_has_prefix(why, "a login name"))
                        code = ATRIUM_ERROR_UNAVAILABLE;
                if (code != ATRIUM_ERROR_FORBIDDEN)
                        ratelimit_fail(req->mgr->logins, ka, row_now(),
                                       MCFG_INT(req->mgr, "login_window"));
                store_event_add(req->store, &req->actor, "login_failed", "user", 0, j->name, why,
                                NULL);
                g_info("directory login of '%s' from %s refused: %s", j->name, req->address, why);
                g_set_error(&error, ATRIUM_ERROR, code, "%s", why);
                api_reply_error(req, error);
                return FALSE;
        }
        if (!util_name_valid(j->du->login, &error) ||
            (!j->groups_cached && !dirlink_sync(req->store, j->du, TRUE, row_now(), &id, &error))) {
                g_prefix_error(&error, "the directory user '%s' cannot log in here: ", j->name);
                api_reply_error(req, error);
                return FALSE;
        }
        user_auth_clear(&j->user);
        j->known = store_user_auth(req->store, j->du->login, &j->user, NULL);
        j->ok = j->known;
        return TRUE;
}

static void login_done(ApiRequest *req, gpointer result, GError *err, gpointer data)
{
        LoginJob *j = data;
        g_autofree char *ku = g_strdup_printf("u:%s", j->name);
        g_autofree char *ka = g_strdup_printf("a:%s", req->address);
        g_autofree char *token = NULL, *hash = NULL, *exp_iso = NULL;
        g_autoptr(GError) error = NULL;
        JsonObject *out, *user;
        gint64 expires;
        gboolean enrol_only = FALSE;
        Role role;

        if (err) {
                api_reply_error(req, err);
                return;
        }
        if (j->dir && !directory_done(req, j, ku, ka))
                return;
        if (!j->ok) {
                login_refuse(req, ku, ka, j->name, j->known ? "wrong password" : "unknown user");
                return;
        }
        if (!j->user.enabled) {
                store_event_add(req->store, &req->actor, "login_failed", "user", j->user.id,
                                j->user.name, "account disabled", NULL);
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "the account '%s' is disabled; ask an administrator", j->user.name);
                api_reply_error(req, error);
                return;
        }
        /* the role in effect: its own, or more from its groups */
        role = store_user_role(req->store, j->user.id, j->user.role);
        switch (totp_login_check(req, j->user.id, role, j->otp, &error)) {
        case TOTP_REFUSED:
                if (g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS)) {
                        ratelimit_fail(req->mgr->logins, ku, row_now(),
                                       MCFG_INT(req->mgr, "login_window"));
                        store_event_add(req->store, &req->actor, "login_failed", "user",
                                        j->user.id, j->user.name, "wrong one-time code", NULL);
                }
                api_reply_error(req, error);
                return;
        case TOTP_MUST_ENROL:
                enrol_only = TRUE;
                break;
        case TOTP_PASS:
                break;
        }
        ratelimit_reset(req->mgr->logins, ku);
        token = token_new();
        hash = token_hash(token);
        expires = row_now() + MCFG_INT(req->mgr, "token_ttl");
        req->actor.name = j->user.name;
        req->actor.user_id = j->user.id;
        if (!store_token_insert(req->store, hash, j->user.id, expires, req->address, enrol_only,
                                &(StoreEvent){&req->actor, "login", "user", j->user.id,
                                              j->user.name, ""},
                                &error)) {
                api_reply_error(req, error);
                return;
        }
        g_info("user '%s' logged in from %s", j->user.name, req->address);
        exp_iso = util_time_iso(expires);
        out = json_object_new();
        json_object_set_string_member(out, "token", token);
        json_object_set_string_member(out, "expires_at", exp_iso);
        user = json_object_new();
        json_object_set_int_member(user, "id", j->user.id);
        json_object_set_string_member(user, "name", j->user.name);
        json_object_set_string_member(user, "role", role_to_string(role));
        json_object_set_object_member(out, "user", user);
        if (enrol_only) /* this login may only set up TOTP: POST /me/totp, then confirm */
                json_object_set_boolean_member(out, "totp_enrolment_required", TRUE);
        api_reply_object(req, 200, out);
}

void api_auth_login(ApiRequest *req)
{
        static const char *const fields[] = {"name", "password", NULL};
        static const char *const optional[] = {"otp", NULL};
        g_autoptr(GError) error = NULL;
        g_autofree char *ku = NULL, *ka = NULL;
        gint64 wait_u, wait_a, window = MCFG_INT(req->mgr, "login_window");
        LoginJob *j;
        const char *name;

        if (!string_fields(req->body, fields, optional, &error)) {
                api_reply_error(req, error);
                return;
        }
        name = json_object_get_string_member(req->body, "name");
        ku = g_strdup_printf("u:%s", name);
        ka = g_strdup_printf("a:%s", req->address);
        wait_u = ratelimit_retry_after(req->mgr->logins, ku,
                                       MCFG_INT(req->mgr, "login_attempts_per_user"), window,
                                       row_now());
        wait_a = ratelimit_retry_after(req->mgr->logins, ka,
                                       MCFG_INT(req->mgr, "login_attempts_per_address"), window,
                                       row_now());
        if (wait_u || wait_a) {
                g_autofree char *after = g_strdup_printf("%" G_GINT64_FORMAT, MAX(wait_u, wait_a));
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_RATE_LIMITED,
                            "too many failed login attempts %s; retry in %" G_GINT64_FORMAT " s",
                            wait_u ? "for this user" : "from this address", MAX(wait_u, wait_a));
                soup_message_headers_replace(soup_server_message_get_response_headers(req->msg),
                                             "Retry-After", after);
                api_reply_error(req, error);
                return;
        }
        j = g_new0(LoginJob, 1);
        j->name = g_strdup(name);
        j->password = g_strdup(json_object_get_string_member(req->body, "password"));
        j->otp = g_strdup(json_object_get_string_member_with_default(req->body, "otp", NULL));
        j->known = store_user_auth(req->store, name, &j->user, &error);
        if (!j->known && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND)) {
                login_job_free(j); /* the database cannot say: 503, not a wrong password */
                api_reply_error(req, error);
                return;
        }
        g_clear_error(&error);
        /* A local account with a password logs in here, directory or not (so admins can when
         * the directory is down); any other name goes to the directory when there is one. */
        if (!(j->known && j->user.password_hash && j->user.password_hash[0])) {
                j->dir = dirlink_configs(req->mgr);
                /* The group cache: a login within the TTL of the last lookup only binds. */
                j->groups_cached = j->known && j->user.directory &&
                                   j->user.groups_checked_at >
                                           row_now() - config_get_int(req->mgr->config, "directory",
                                                                    "group_cache_ttl");
        }
        api_run_in_thread(req, login_verify, login_done, j, (GDestroyNotify)login_job_free);
}

void api_auth_logout(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;

        if (!store_token_delete(req->store, req->token_hash, &error) ||
            !store_event_add(req->store, &req->actor, "logout", "user", req->caller.user_id,
                             req->caller.user_name, "", &error)) {
                api_reply_error(req, error);
                return;
        }
        api_reply_empty(req, 204);
}

void api_me_get(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *id = g_strdup_printf("%" G_GINT64_FORMAT, req->caller.user_id);
        JsonObject *o = store_get(req->store, resource_by_kind("user"), id, 0, &error);

        if (!o) {
                api_reply_error(req, error);
                return;
        }
        /* The role in effect (groups may give more than the account's own, kept as own_role). */
        json_object_set_string_member(o, "own_role", row_str(o, "role"));
        json_object_set_string_member(o, "role", role_to_string(req->caller.role));
        /* Reconciler it has a role on (pool permissions), for the portal's "My pools". */
        json_object_set_array_member(o, "pool_roles",
                                     store_pool_permissions(req->store, req->caller.user_id));
        api_reply_object(req, 200, o);
}

/* ---- own password ------------------------------------------------------------------------ */

typedef struct {
        char *hash; /* current hash, then the new one */
        char *current;
        char *next;
        char *cost;
        gboolean ok;
} PasswordJob;

static void password_job_free(PasswordJob *j)
{
        g_free(j->hash);
        g_free(j->cost);
        if (j->current) {
                memset(j->current, 0, strlen(j->current));
                g_free(j->current);
        }
        if (j->next) {
                memset(j->next, 0, strlen(j->next));
                g_free(j->next);
        }
        g_free(j);
}

static gpointer password_work(gpointer data, GError **error)
{
        PasswordJob *j = data;

        j->ok = password_verify(j->hash, j->current);
        g_clear_pointer(&j->hash, g_free);
        if (j->ok && !(j->hash = password_hash(j->next, j->cost, error)))
                return NULL;
        return j;
}

static void password_done(ApiRequest *req, gpointer result, GError *err, gpointer data)
{
        PasswordJob *j = data;
        g_autoptr(GError) error = NULL;

        if (err) {
                api_reply_error(req, err);
                return;
        }
        if (!j->ok) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS,
                            "the current password is wrong");
                api_reply_error(req, error);
                return;
        }
        if (!store_user_set_password(req->store, req->caller.user_id, j->hash, &req->actor,
                                     &error)) {
                api_reply_error(req, error);
                return;
        }
        /* The first admin's generated password is no longer valid: forget it. */
        if (g_str_equal(req->caller.user_name, "admin"))
                g_unlink(req->mgr->admin_password_file);
        g_info("user '%s' changed their password", req->caller.user_name);
        api_reply_empty(req, 204);
}

void api_me_password(ApiRequest *req)
{
        static const char *const fields[] = {"current_password", "new_password", NULL};
        g_autoptr(GError) error = NULL;
        UserAuth ua = {0};
        const Field *pw = resource_field(resource_by_kind("user"), "password");
        PasswordJob *j;
        const char *next;

        if (!string_fields(req->body, fields, NULL, &error)) {
                api_reply_error(req, error);
                return;
        }
        next = json_object_get_string_member(req->body, "new_password");
        if (strlen(next) < (gsize)pw->min) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the new password must be at least %" G_GINT64_FORMAT
                            " characters long",
                            pw->min);
                api_reply_error(req, error);
                return;
        }
        if (!store_user_auth(req->store, req->caller.user_name, &ua, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (ua.directory) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "'%s' logs in with the directory's password: change it there",
                            req->caller.user_name);
                user_auth_clear(&ua);
                api_reply_error(req, error);
                return;
        }
        j = g_new0(PasswordJob, 1);
        j->hash = g_steal_pointer(&ua.password_hash);
        j->current = g_strdup(json_object_get_string_member(req->body, "current_password"));
        j->next = g_strdup(next);
        j->cost = g_strdup(MCFG_STR(req->mgr, "password_cost"));
        user_auth_clear(&ua);
        api_run_in_thread(req, password_work, password_done, j, (GDestroyNotify)password_job_free);
}

/* ---- small read-only routes -------------------------------------------------------------- */

void api_version(ApiRequest *req)
{
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "name", "atrium");
        json_object_set_string_member(o, "version", ATRIUM_VERSION);
        json_object_set_string_member(o, "api", "v1");
        api_reply_object(req, 200, o);
}

void api_cluster(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        JsonObject *o = store_cluster(req->store, &error);

        if (!o) {
                api_reply_error(req, error);
                return;
        }
        json_object_set_string_member(o, "this", req->mgr->name);
        json_object_set_string_member(o, "role",
                                      req->mgr->leader ? (manager_leading(req->mgr) ? "leader"
                                                                                    : "standby")
                                                       : "alone");
        json_object_set_string_member(o, "store", store_backend(req->store));
        api_reply_object(req, 200, o);
}

void api_roles_list(ApiRequest *req)
{
        JsonObject *o = json_object_new();
        JsonArray *items = json_array_new();

        for (Role r = ROLE_USER; r < ROLE_LAST; r++) {
                JsonObject *e = json_object_new();
                json_object_set_string_member(e, "name", role_to_string(r));
                json_object_set_string_member(e, "description", role_description(r));
                json_array_add_object_element(items, e);
        }
        json_object_set_array_member(o, "items", items);
        json_object_set_null_member(o, "next_cursor");
        api_reply_object(req, 200, o);
}

void api_openapi(ApiRequest *req)
{
        g_autoptr(JsonNode) doc = openapi_document();
        api_reply_json(req, 200, doc);
}
