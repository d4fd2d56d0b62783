#include "proto/agentproto.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

static const char *const domain_kinds[] = {"guest", "desktop"};

gboolean agent_installation_valid(const char *inst)
{
        if (!inst || strlen(inst) != AGENT_INSTALLATION_LEN)
                return FALSE;
        for (const char *c = inst; *c; c++)
                if (!g_ascii_isxdigit(*c) || g_ascii_isupper(*c))
                        return FALSE;
        return TRUE;
}

char *agent_domain_name(const char *installation, const char *kind, gint64 id)
{
        return g_strdup_printf("atrium-%s-%s-%" G_GINT64_FORMAT, installation, kind, id);
}

gboolean agent_domain_parse(const char *name, const char *installation, const char **kind,
                            gint64 *id)
{
        char inst[AGENT_INSTALLATION_LEN + 1];

        if (!name || !g_str_has_prefix(name, "atrium-"))
                return FALSE;
        name += strlen("atrium-");
        if (strlen(name) < AGENT_INSTALLATION_LEN + 1 || name[AGENT_INSTALLATION_LEN] != '-')
                return FALSE;
        memcpy(inst, name, AGENT_INSTALLATION_LEN);
        inst[AGENT_INSTALLATION_LEN] = '\0';
        if (!agent_installation_valid(inst) || (installation && strcmp(inst, installation) != 0))
                return FALSE;
        name += AGENT_INSTALLATION_LEN + 1;
        for (gsize i = 0; i < G_N_ELEMENTS(domain_kinds); i++) {
                gsize n = strlen(domain_kinds[i]);
                if (strncmp(name, domain_kinds[i], n) == 0 && name[n] == '-' &&
                    util_parse_id(name + n + 1, id)) {
                        *kind = domain_kinds[i];
                        return TRUE;
                }
        }
        return FALSE;
}

JsonObject *agent_msg_parse(const char *text, gsize len, GError **error)
{
        g_autoptr(JsonNode) root = json_parse_body(text, len, AGENT_MSG_DEPTH, error);
        JsonObject *o;
        JsonNode *type;

        if (!root)
                return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(root)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "an agent link message must be a JSON object");
                return NULL;
        }
        o = json_node_get_object(root);
        type = json_object_get_member(o, "type");
        if (!type || !JSON_NODE_HOLDS_VALUE(type) ||
            json_node_get_value_type(type) != G_TYPE_STRING) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "an agent link message needs a string 'type'");
                return NULL;
        }
        return json_object_ref(o);
}

char *agent_msg_text(JsonObject *msg)
{
        g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);

        json_node_set_object(n, msg);
        return json_node_to_text(n, FALSE);
}

JsonObject *agent_msg_new(const char *type)
{
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "type", type);
        return o;
}

JsonObject *agent_error_to_json(const GError *error)
{
        JsonObject *e = json_object_new();
        int code = error->domain == ATRIUM_ERROR ? error->code : ATRIUM_ERROR_INTERNAL;

        json_object_set_string_member(e, "code", atrium_error_code_to_string(code));
        json_object_set_string_member(e, "message", error->message);
        return e;
}

GError *agent_error_from_json(JsonObject *err)
{
        const char *code = err ? json_object_get_string_member_with_default(err, "code", "") : "";
        const char *message =
                err ? json_object_get_string_member_with_default(err, "message", "") : "";
        int c = atrium_error_code_from_string(code);

        return g_error_new(ATRIUM_ERROR, c < 0 ? ATRIUM_ERROR_INTERNAL : c, "%s",
                           message[0] ? message : "the agent reported an unspecified error");
}

static JsonNode *arg_value(JsonObject *args, const char *key, GType type, gboolean required,
                           const char *what, GError **error)
{
        JsonNode *n = args ? json_object_get_member(args, key) : NULL;

        if (!n || JSON_NODE_HOLDS_NULL(n)) {
                if (required)
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "argument '%s' is missing", key);
                return NULL;
        }
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != type) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "argument '%s' must be %s", key, what);
                return NULL;
        }
        return n;
}

const char *agent_arg_string(JsonObject *args, const char *key, gboolean required,
                             GError **error)
{
        JsonNode *n = arg_value(args, key, G_TYPE_STRING, required, "a string", error);

        return n ? json_node_get_string(n) : NULL;
}

gboolean agent_arg_int(JsonObject *args, const char *key, gint64 min, gint64 max, gint64 def,
                       gint64 *out, GError **error)
{
        GError *local = NULL;
        JsonNode *n = arg_value(args, key, G_TYPE_INT64, FALSE, "an integer", &local);

        if (local) {
                g_propagate_error(error, local);
                return FALSE;
        }
        *out = n ? json_node_get_int(n) : def;
        if (*out < min || *out > max) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "argument '%s' is %" G_GINT64_FORMAT ", it must be %" G_GINT64_FORMAT
                            " to %" G_GINT64_FORMAT,
                            key, *out, min, max);
                return FALSE;
        }
        return TRUE;
}

gboolean agent_arg_bool(JsonObject *args, const char *key, gboolean def)
{
        JsonNode *n = args ? json_object_get_member(args, key) : NULL;

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
                return def;
        return json_node_get_boolean(n);
}
