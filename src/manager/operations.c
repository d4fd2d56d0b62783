/* Long operations' rows: see operations.h. */
#define G_LOG_DOMAIN "pools"

#include "manager/operations.h"
#include "manager/rows.h"
#include "common/util.h"

static const Actor system_actor = {"system", 0, ""};

gint64 operations_start(Store *st, const char *kind, const char *object_kind, gint64 object_id,
                        const char *object_name, const Actor *actor)
{
        g_autoptr(JsonObject) v = json_object_new();
        g_autoptr(JsonObject) row = NULL;
        g_autoptr(GError) error = NULL;

        json_object_set_string_member(v, "kind", kind);
        json_object_set_string_member(v, "object_kind", object_kind);
        json_object_set_int_member(v, "object_id", object_id);
        json_object_set_string_member(v, "object_name", object_name);
        json_object_set_string_member(v, "message", "queued");
        json_object_set_string_member(v, "created_by", actor ? actor->name : "system");
        row = store_create(st, resource_by_kind("operation"), v, NULL, &error);
        if (!row) {
                g_warning("cannot record operation %s of %s: %s", kind, object_name,
                          error->message);
                return 0;
        }
        return row_int(row, "id");
}

void operations_set(Store *st, JsonObject *op, OperationState state, gint64 percent,
                    const char *message)
{
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) row = NULL;

        if (row_operation_state(op) == state && row_int(op, "percent") == percent &&
            g_str_equal(row_str(op, "message"), message))
                return;
        row_set_operation_state(patch, state);
        json_object_set_int_member(patch, "percent", CLAMP(percent, 0, 100));
        json_object_set_string_member(patch, "message", message);
        row = store_update_id(st, resource_by_kind("operation"), row_int(op, "id"), patch, NULL,
                              NULL);
        if (state != OPERATION_RUNNING) {
                g_autofree char *action =
                        g_strconcat("operation_", operation_state_to_string(state), NULL);
                store_event_add(st, &system_actor, action, "operation", row_int(op, "id"),
                                row_str(op, "kind"), message, NULL);
        }
}
