/* Group membership: /groups/{id}/members[/{user}]. */
#include "manager/api.h"

void api_group_members(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        JsonArray *items = store_members(req->store, req->params[0], &error);
        JsonObject *o;

        if (!items) {
                api_reply_error(req, error);
                return;
        }
        o = json_object_new();
        json_object_set_array_member(o, "items", items);
        json_object_set_null_member(o, "next_cursor");
        api_reply_object(req, 200, o);
}

void api_group_member_add(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;

        if (!store_member_add(req->store, req->params[0], req->params[1], &req->actor, &error))
                api_reply_error(req, error);
        else
                api_reply_empty(req, 204);
}

void api_group_member_remove(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;

        if (!store_member_remove(req->store, req->params[0], req->params[1], &req->actor,
                                 &error))
                api_reply_error(req, error);
        else
                api_reply_empty(req, 204);
}
