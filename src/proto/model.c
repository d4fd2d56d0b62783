#include "proto/model.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

static const struct {
        const char *name, *description;
} roles[ROLE_LAST] = {
        [ROLE_NONE] = {"none", "no login needed"},
        [ROLE_USER] = {"user", "uses the desktops it is entitled to; sees only its own "
                               "desktops and sessions"},
        [ROLE_HELPDESK] = {"helpdesk", "sees every desktop and session; disconnects and ends "
                                       "sessions, reboots and resets desktops; changes nothing "
                                       "else"},
        [ROLE_OPERATOR] = {"operator", "manages hosts, storage, media, guests, templates, pools, "
                                       "desktops and sessions; no user management"},
        [ROLE_ADMIN] = {"admin", "everything, including users, groups and roles"},
};

const char *role_to_string(Role r)
{
        return r < ROLE_LAST ? roles[r].name : "none";
}

const char *role_description(Role r)
{
        return r < ROLE_LAST ? roles[r].description : "";
}

int role_from_string(const char *s)
{
        for (int i = 0; s && i < ROLE_LAST; i++)
                if (g_str_equal(roles[i].name, s))
                        return i;
        return -1;
}

const char *resource_a(const Resource *res)
{
        g_autofree char *s =
                g_strdup_printf("%s %s", strchr("aeio", res->kind[0]) ? "an" : "a", res->kind);
        return g_intern_string(s);
}

const Field *resource_field(const Resource *res, const char *name)
{
        for (gsize i = 0; i < res->n_fields; i++)
                if (g_str_equal(res->fields[i].name, name))
                        return &res->fields[i];
        return NULL;
}

const char *field_column(const Field *f)
{
        if (f->type != FIELD_REF)
                return f->name;
        {
                g_autofree char *c = g_strconcat(f->name, "_id", NULL);
                return g_intern_string(c);
        }
}

const char *field_type_label(const Field *f)
{
        static const char *labels[FIELD_TYPE_LAST] = {
                [FIELD_NAME] = "name",    [FIELD_TEXT] = "text",     [FIELD_INT] = "integer",
                [FIELD_BOOL] = "boolean", [FIELD_ENUM] = "choice",   [FIELD_REF] = "reference",
                [FIELD_PATH] = "path",    [FIELD_SECRET] = "secret",
        };
        return labels[f->type];
}

static gboolean want_type(const Resource *res, const Field *f, JsonNode *v, GType t,
                          const char *label, GError **error)
{
        if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == t)
                return TRUE;
        atrium_set_field_error(error, ATRIUM_ERROR_WRONG_TYPE, f->name,
                               "field '%s' of %s must be %s, not %s", f->name, resource_a(res),
                               label, json_type_label(v));
        return FALSE;
}

static gboolean check_choice(const Resource *res, const Field *f, const char *s, GError **error)
{
        g_autofree char *list = NULL;

        for (const char *const *c = f->choices; *c; c++)
                if (g_str_equal(*c, s))
                        return TRUE;
        g_autofree char *q = util_quote(s);
        list = g_strjoinv(", ", (char **)f->choices);
        atrium_set_field_error(error, ATRIUM_ERROR_INVALID, f->name,
                               "field '%s' of %s must be one of %s, not '%s'", f->name,
                               resource_a(res), list, q);
        return FALSE;
}

static gboolean check_text(const Resource *res, const Field *f, const char *s, GError **error)
{
        gsize max = f->max > 0 ? (gsize)f->max : ATRIUM_TEXT_MAX;
        g_autofree char *what = g_strdup_printf("%s.%s", res->kind, f->name);

        return util_text_valid(what, s, max, error);
}

static gboolean check_field(const Resource *res, const Field *f, JsonNode *v, GError **error)
{
        g_autoptr(GError) local = NULL;
        const char *s;

        if (JSON_NODE_HOLDS_NULL(v)) {
                if (f->flags & F_REQUIRED || f->type == FIELD_BOOL || f->type == FIELD_INT ||
                    f->type == FIELD_ENUM || f->type == FIELD_NAME) {
                        atrium_set_field_error(error, ATRIUM_ERROR_WRONG_TYPE, f->name,
                                               "field '%s' of %s cannot be null", f->name,
                                               resource_a(res));
                        return FALSE;
                }
                return TRUE;
        }
        switch (f->type) {
        case FIELD_INT: {
                gint64 n;
                if (!want_type(res, f, v, G_TYPE_INT64, "an integer", error))
                        return FALSE;
                n = json_node_get_int(v);
                if (n < f->min || n > f->max) {
                        atrium_set_field_error(error, ATRIUM_ERROR_INVALID, f->name,
                                               "field '%s' of %s must be from %" G_GINT64_FORMAT
                                               " to %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT,
                                               f->name, resource_a(res), f->min, f->max, n);
                        return FALSE;
                }
                return TRUE;
        }
        case FIELD_BOOL:
                return want_type(res, f, v, G_TYPE_BOOLEAN, "true or false", error);
        case FIELD_REF:
                if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_INT64) {
                        if (json_node_get_int(v) > 0)
                                return TRUE;
                        atrium_set_field_error(error, ATRIUM_ERROR_INVALID, f->name,
                                               "field '%s' of %s: ids are positive integers",
                                               f->name, resource_a(res));
                        return FALSE;
                }
                if (!want_type(res, f, v, G_TYPE_STRING, "a name or an id", error))
                        return FALSE;
                if (!util_name_valid(json_node_get_string(v), &local)) {
                        atrium_set_field_error(error, ATRIUM_ERROR_INVALID, f->name,
                                               "field '%s' of %s: %s", f->name, resource_a(res),
                                               local->message);
                        return FALSE;
                }
                return TRUE;
        default:
                break;
        }
        if (!want_type(res, f, v, G_TYPE_STRING, "a string", error))
                return FALSE;
        s = json_node_get_string(v);
        switch (f->type) {
        case FIELD_NAME:
                if (!util_name_valid(s, &local)) {
                        g_autofree char *q = util_quote(s);
                        atrium_set_field_error(error, local->code, f->name,
                                               "invalid %s name '%s': %s", res->kind, q,
                                               local->message);
                        return FALSE;
                }
                return TRUE;
        case FIELD_ENUM:
                return check_choice(res, f, s, error);
        case FIELD_PATH:
                if (!check_text(res, f, s, error))
                        return FALSE;
                if (!g_path_is_absolute(s) || strstr(s, "/../") || g_str_has_suffix(s, "/..")) {
                        atrium_set_field_error(
                                error, ATRIUM_ERROR_INVALID, f->name,
                                "field '%s' of %s must be an absolute path without '..', "
                                "not '%s'",
                                f->name, resource_a(res), s);
                        return FALSE;
                }
                return TRUE;
        case FIELD_SECRET:
                if (strlen(s) < (gsize)f->min) {
                        atrium_set_field_error(error, ATRIUM_ERROR_INVALID, f->name,
                                               "field '%s' of %s must be at least %" G_GINT64_FORMAT
                                               " characters long",
                                               f->name, resource_a(res), f->min);
                        return FALSE;
                }
                return check_text(res, f, s, error);
        default:
                return check_text(res, f, s, error);
        }
}

gboolean model_validate(const Resource *res, JsonObject *body, gboolean create, GError **error)
{
        g_autoptr(GList) members = json_object_get_members(body);

        members = g_list_sort(members, (GCompareFunc)g_strcmp0); /* stable error order */
        for (GList *l = members; l; l = l->next) {
                const char *name = l->data;
                const Field *f = resource_field(res, name);
                if (!f) {
                        g_autofree char *q = util_quote(name);
                        atrium_set_field_error(error, ATRIUM_ERROR_UNKNOWN_FIELD, q,
                                               "%s has no field '%s'", resource_a(res), q);
                        return FALSE;
                }
                if (f->flags & F_READONLY) {
                        atrium_set_field_error(
                                error, ATRIUM_ERROR_READ_ONLY_FIELD, name,
                                "field '%s' of %s is set by the server and cannot be "
                                "written",
                                name, resource_a(res));
                        return FALSE;
                }
                if (!create && (f->flags & F_IMMUTABLE)) {
                        atrium_set_field_error(
                                error, ATRIUM_ERROR_READ_ONLY_FIELD, name,
                                "field '%s' of %s can only be set when it is created", name,
                                resource_a(res));
                        return FALSE;
                }
                if (!check_field(res, f, json_object_get_member(body, name), error))
                        return FALSE;
        }
        if (!create)
                return TRUE;
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                if ((f->flags & F_REQUIRED) && !json_object_has_member(body, f->name)) {
                        atrium_set_field_error(error, ATRIUM_ERROR_MISSING_FIELD, f->name,
                                               "%s needs the field '%s'", resource_a(res), f->name);
                        return FALSE;
                }
        }
        return TRUE;
}

JsonNode *model_value_from_text(const Field *f, const char *text, GError **error)
{
        JsonNode *n;
        gint64 id;

        switch (f->type) {
        case FIELD_INT: {
                gint64 v;
                if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &v, NULL)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_WRONG_TYPE,
                                    "'%s' needs a whole number, not '%s'", f->name, text);
                        return NULL;
                }
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(n, v);
                return n;
        }
        case FIELD_BOOL:
                n = json_node_new(JSON_NODE_VALUE);
                if (g_str_equal(text, "true") || g_str_equal(text, "yes") || g_str_equal(text, "1"))
                        json_node_set_boolean(n, TRUE);
                else if (g_str_equal(text, "false") || g_str_equal(text, "no") ||
                         g_str_equal(text, "0"))
                        json_node_set_boolean(n, FALSE);
                else {
                        json_node_unref(n);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_WRONG_TYPE,
                                    "'%s' needs true or false, not '%s'", f->name, text);
                        return NULL;
                }
                return n;
        case FIELD_REF:
                n = json_node_new(JSON_NODE_VALUE);
                if (util_parse_id(text, &id))
                        json_node_set_int(n, id);
                else
                        json_node_set_string(n, text);
                return n;
        default:
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_string(n, text);
                return n;
        }
}
