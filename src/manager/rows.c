/* Typed reads of JSON objects: see rows.h. */
#include "manager/rows.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

static JsonNode *value(JsonObject *o, const char *key)
{
        JsonNode *n = o ? json_object_get_member(o, key) : NULL;

        return n && JSON_NODE_HOLDS_VALUE(n) ? n : NULL;
}

const char *row_str(JsonObject *o, const char *key)
{
        JsonNode *n = value(o, key);

        return n && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n) : "";
}

gint64 row_int(JsonObject *o, const char *key)
{
        JsonNode *n = value(o, key);

        return n && json_node_get_value_type(n) != G_TYPE_STRING ? json_node_get_int(n) : 0;
}

gboolean row_bool(JsonObject *o, const char *key)
{
        JsonNode *n = value(o, key);

        return n && json_node_get_value_type(n) != G_TYPE_STRING && json_node_get_boolean(n);
}

gint64 row_id(JsonObject *o)
{
        return row_int(o, "id");
}

gint64 row_ref(JsonObject *o, const char *column)
{
        return o ? json_row_ref(o, column) : 0;
}

#define STATE_ACCESSORS(Type, prefix, last)                                                        \
        Type row_##prefix(JsonObject *o)                                                           \
        {                                                                                          \
                int v = prefix##_from_string(row_str(o, "state"));                                 \
                return v < 0 ? last : (Type)v;                                                     \
        }                                                                                          \
        void row_set_##prefix(JsonObject *o, Type s)                                               \
        {                                                                                          \
                json_object_set_string_member(o, "state", prefix##_to_string(s));                  \
        }

STATE_ACCESSORS(DesktopState, desktop_state, DESKTOP_STATE_LAST)
STATE_ACCESSORS(HostState, host_state, HOST_STATE_LAST)
STATE_ACCESSORS(VmState, vm_state, VM_STATE_LAST)
STATE_ACCESSORS(SessionState, session_state, SESSION_STATE_LAST)
STATE_ACCESSORS(OperationState, operation_state, OPERATION_STATE_LAST)

const char *row_power_word(const Resource *res, Power p)
{
        static const DesktopState desktop[] = {DESKTOP_STOPPED, DESKTOP_RUNNING, DESKTOP_FAILED};
        static const VmState vm[] = {VM_STOPPED, VM_RUNNING, VM_FAILED};

        return res == resource_by_kind("desktop") ? desktop_state_to_string(desktop[p])
                                                  : vm_state_to_string(vm[p]);
}

JsonObject *row_get(Store *st, const char *kind, gint64 id, GError **error)
{
        if (id <= 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "no %s", kind);
                return NULL;
        }
        return store_get_id(st, resource_by_kind(kind), id, 0, error);
}

gint64 row_now(void)
{
        return g_get_real_time() / G_USEC_PER_SEC;
}

JsonObject *row_newest_version(Store *st, gint64 template_id)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_autoptr(JsonArray) rows = NULL;
        JsonObject *best = NULL;

        g_hash_table_insert(f, (gpointer) "template", util_id_text(template_id));
        rows = store_list_all(st, resource_by_kind("template-version"), f, NULL);
        for (guint i = 0; rows && i < json_array_get_length(rows); i++) {
                JsonObject *v = json_array_get_object_element(rows, i);
                if (!best || row_int(v, "version") > row_int(best, "version"))
                        best = v;
        }
        return best ? json_object_ref(best) : NULL;
}
