/* Live migration's routes: POST /desktops/{id}/migrate, /guests/{id}/migrate and
 * /operations/{id}/cancel (migration.h does the work). */
#include "manager/api.h"
#include "manager/migration.h"
#include "manager/rows.h"
#include "common/error.h"

#include <string.h>

/* {"to": HOST} (optional: the scheduler chooses). 202 with the operation to follow. */
void api_migrate(ApiRequest *req)
{
        const char *kind =
                g_str_has_prefix(req->route->pattern, "/api/v1/desktops/") ? "desktop" : "guest";
        g_autoptr(GError) error = NULL;
        JsonNode *to = req->body ? json_object_get_member(req->body, "to") : NULL;
        JsonObject *op;

        if (req->body && (json_object_get_size(req->body) > (to ? 1u : 0u) ||
                          (to && !JSON_NODE_HOLDS_NULL(to) &&
                           (!JSON_NODE_HOLDS_VALUE(to) ||
                            json_node_get_value_type(to) != G_TYPE_STRING ||
                            !json_node_get_string(to)[0])))) {
                g_set_error_literal(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "give {} (the scheduler chooses the host) or {\"to\": HOST}");
                api_reply_error(req, error);
                return;
        }
        op = migration_start(req->mgr, req->store, kind, req->params[0],
                             to && !JSON_NODE_HOLDS_NULL(to) ? json_node_get_string(to) : NULL,
                             &req->actor, &error);
        if (!op) {
                api_reply_error(req, error);
                return;
        }
        api_reply_object(req, 202, op);
}

void api_operation_cancel(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) op =
                store_get(req->store, resource_by_kind("operation"), req->params[0], 0, &error);

        if (!op || !migration_cancel(req->mgr, req->store, op, &req->actor, &error)) {
                api_reply_error(req, error);
                return;
        }
        g_clear_pointer(&op, json_object_unref);
        op = store_get(req->store, resource_by_kind("operation"), req->params[0], 0, &error);
        if (!op) {
                api_reply_error(req, error);
                return;
        }
        api_reply_object(req, 202, g_steal_pointer(&op));
}
