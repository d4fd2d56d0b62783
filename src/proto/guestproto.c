#include "proto/guestproto.h"
#include "common/error.h"
#include "common/jsonutil.h"

#include <json-glib/json-glib.h>
#include <string.h>

static const char *const msg_types[GUEST_MSG_LAST] = {
        [GUEST_MSG_READY] = "ready",             [GUEST_MSG_HEARTBEAT] = "heartbeat",
        [GUEST_MSG_USER_LOGIN] = "user-login",   [GUEST_MSG_USER_LOGOUT] = "user-logout",
        [GUEST_MSG_REPLY] = "reply",
};

static const char *const ops[GUEST_OP_LAST] = {
        [GUEST_OP_PING] = "ping",     [GUEST_OP_SET_HOSTNAME] = "set-hostname",
        [GUEST_OP_LOGOFF] = "logoff", [GUEST_OP_REBOOT] = "reboot",
        [GUEST_OP_SHUTDOWN] = "shutdown", [GUEST_OP_SEAL] = "seal",
        [GUEST_OP_LOGIN] = "login",
};

static int lookup(const char *const *table, int n, const char *s)
{
        for (int i = 0; s && i < n; i++)
                if (g_str_equal(table[i], s))
                        return i;
        return -1;
}

const char *guest_msg_type_to_string(GuestMsgType t)
{
        return t < GUEST_MSG_LAST ? msg_types[t] : "?";
}

int guest_msg_type_from_string(const char *s)
{
        return lookup(msg_types, GUEST_MSG_LAST, s);
}

const char *guest_op_to_string(GuestOp op)
{
        return op < GUEST_OP_LAST ? ops[op] : "?";
}

int guest_op_from_string(const char *s)
{
        return lookup(ops, GUEST_OP_LAST, s);
}

void guest_msg_free(GuestMsg *m)
{
        if (!m)
                return;
        g_free(m->agent);
        g_free(m->hostname);
        g_free(m->os);
        g_strfreev(m->ips);
        g_free(m->user);
        g_free(m->id);
        g_free(m->error_code);
        g_free(m->error_message);
        g_free(m->result);
        g_free(m);
}

/* ---- reading members ------------------------------------------------------------------- */

static gboolean bad(GError **error, const char *type, const char *field, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                    "guest message '%s': field '%s' %s", type, field, what);
        return FALSE;
}

static gboolean get_string(JsonObject *o, const char *type, const char *field, gboolean nullable,
                           char **out, GError **error)
{
        JsonNode *n = json_object_get_member(o, field);

        if (!n)
                return bad(error, type, field, "is missing");
        if (JSON_NODE_HOLDS_NULL(n) && nullable)
                return TRUE;
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return bad(error, type, field, nullable ? "must be a string or null"
                                                        : "must be a string");
        *out = g_strdup(json_node_get_string(n));
        return TRUE;
}

static gboolean get_int(JsonObject *o, const char *type, const char *field, gint64 *out,
                        GError **error)
{
        JsonNode *n = json_object_get_member(o, field);

        if (!n)
                return bad(error, type, field, "is missing");
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 ||
            json_node_get_int(n) < 0)
                return bad(error, type, field, "must be a whole number");
        *out = json_node_get_int(n);
        return TRUE;
}

static gboolean get_ips(JsonObject *o, GuestMsg *m, GError **error)
{
        JsonNode *n = json_object_get_member(o, "ips");
        JsonArray *a;
        GPtrArray *ips;

        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return bad(error, "ready", "ips", "must be an array of strings");
        a = json_node_get_array(n);
        ips = g_ptr_array_new();
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
                        g_ptr_array_free(ips, TRUE);
                        return bad(error, "ready", "ips", "must be an array of strings");
                }
                g_ptr_array_add(ips, g_strdup(json_node_get_string(e)));
        }
        g_ptr_array_add(ips, NULL);
        m->ips = (GStrv)g_ptr_array_free(ips, FALSE);
        return TRUE;
}

static gboolean parse_reply(JsonObject *o, GuestMsg *m, GError **error)
{
        JsonNode *ok = json_object_get_member(o, "ok");

        if (!get_string(o, "reply", "id", TRUE, &m->id, error))
                return FALSE;
        if (!ok || !JSON_NODE_HOLDS_VALUE(ok) || json_node_get_value_type(ok) != G_TYPE_BOOLEAN)
                return bad(error, "reply", "ok", "must be true or false");
        m->ok = json_node_get_boolean(ok);
        if (m->ok) {
                JsonNode *r = json_object_get_member(o, "result");
                if (!r || !JSON_NODE_HOLDS_OBJECT(r))
                        return bad(error, "reply", "result", "must be an object");
                m->result = json_node_to_text(r, FALSE);
                return TRUE;
        }
        {
                JsonNode *e = json_object_get_member(o, "error");
                JsonObject *eo;
                if (!e || !JSON_NODE_HOLDS_OBJECT(e))
                        return bad(error, "reply", "error", "must be an object");
                eo = json_node_get_object(e);
                return get_string(eo, "reply", "code", FALSE, &m->error_code, error) &&
                       get_string(eo, "reply", "message", FALSE, &m->error_message, error);
        }
}

GuestMsg *guest_msg_parse(const char *line, gsize len, GError **error)
{
        g_autoptr(GuestMsg) m = g_new0(GuestMsg, 1);
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *type = NULL;
        JsonObject *o;
        int t;
        gboolean ok;

        if (len > GUEST_PROTO_LINE_MAX) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_LARGE,
                            "guest message of %zu bytes; at most %d", len, GUEST_PROTO_LINE_MAX);
                return NULL;
        }
        root = json_parse_body(line, len, 8, error);
        if (!root)
                return NULL;
        o = json_node_get_object(root);
        if (!get_string(o, "?", "type", FALSE, &type, error))
                return NULL;
        t = guest_msg_type_from_string(type);
        if (t < 0) {
                g_autofree char *q = g_strescape(type, NULL);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unknown guest message type '%s'", q);
                return NULL;
        }
        m->type = t;
        switch (m->type) {
        case GUEST_MSG_READY:
                ok = get_int(o, type, "v", &m->version, error) &&
                     get_string(o, type, "agent", FALSE, &m->agent, error) &&
                     get_string(o, type, "hostname", FALSE, &m->hostname, error) &&
                     get_ips(o, m, error) && get_string(o, type, "os", FALSE, &m->os, error) &&
                     get_string(o, type, "user", TRUE, &m->user, error) &&
                     get_int(o, type, "boots", &m->boots, error);
                if (ok && m->version != GUEST_PROTO_VERSION) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "the guest speaks protocol version %" G_GINT64_FORMAT
                                    "; this host speaks %d",
                                    m->version, GUEST_PROTO_VERSION);
                        ok = FALSE;
                }
                break;
        case GUEST_MSG_HEARTBEAT:
                m->idle = -1;
                ok = get_int(o, type, "seq", &m->seq, error) &&
                     get_string(o, type, "user", TRUE, &m->user, error) &&
                     (!json_object_has_member(o, "idle") ||
                      get_int(o, type, "idle", &m->idle, error));
                break;
        case GUEST_MSG_USER_LOGIN:
        case GUEST_MSG_USER_LOGOUT:
                ok = get_string(o, type, "user", FALSE, &m->user, error);
                break;
        case GUEST_MSG_REPLY:
        default:
                ok = parse_reply(o, m, error);
                break;
        }
        return ok ? g_steal_pointer(&m) : NULL;
}

char *guest_msg_describe(const GuestMsg *m)
{
        GString *s = g_string_new(guest_msg_type_to_string(m->type));

        switch (m->type) {
        case GUEST_MSG_READY: {
                g_autofree char *ips = g_strjoinv(",", m->ips);
                g_string_append_printf(s,
                                       " v=%" G_GINT64_FORMAT " agent=%s hostname=%s ips=[%s] "
                                       "os=%s user=%s boots=%" G_GINT64_FORMAT,
                                       m->version, m->agent, m->hostname, ips, m->os,
                                       m->user ? m->user : "(none)", m->boots);
                break;
        }
        case GUEST_MSG_HEARTBEAT:
                g_string_append_printf(s, " seq=%" G_GINT64_FORMAT " user=%s", m->seq,
                                       m->user ? m->user : "(none)");
                if (m->idle >= 0)
                        g_string_append_printf(s, " idle=%" G_GINT64_FORMAT, m->idle);
                break;
        case GUEST_MSG_USER_LOGIN:
        case GUEST_MSG_USER_LOGOUT:
                g_string_append_printf(s, " user=%s", m->user);
                break;
        default:
                g_string_append_printf(s, " id=%s ok=%s", m->id ? m->id : "(none)",
                                       m->ok ? "true" : "false");
                if (m->ok)
                        g_string_append_printf(s, " result=%s", m->result);
                else
                        g_string_append_printf(s, " error=%s message=%s", m->error_code,
                                               m->error_message);
                break;
        }
        return g_string_free(s, FALSE);
}

char *guest_request_line(const char *id, GuestOp op, const char *arg)
{
        GString *s = g_string_new("{\"v\":1,\"id\":");

        json_append_string(s, id);
        g_string_append(s, ",\"op\":");
        json_append_string(s, guest_op_to_string(op));
        if ((op == GUEST_OP_SET_HOSTNAME || op == GUEST_OP_LOGIN) && arg) {
                g_string_append(s, op == GUEST_OP_LOGIN ? ",\"user\":" : ",\"hostname\":");
                json_append_string(s, arg);
        }
        g_string_append(s, "}\n");
        return g_string_free(s, FALSE);
}
