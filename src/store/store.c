#include "store/store.h"
#include "common/jsonutil.h"

#include <string.h>

void store_close(Store *st)
{
        if (st)
                st->ops->close(st);
}

void token_info_clear(TokenInfo *t)
{
        g_clear_pointer(&t->user_name, g_free);
}

void user_auth_clear(UserAuth *u)
{
        g_clear_pointer(&u->name, g_free);
        if (u->password_hash) {
                memset(u->password_hash, 0, strlen(u->password_hash));
                g_clear_pointer(&u->password_hash, g_free);
        }
}

JsonArray *store_list(Store *st, const Resource *res, const ListQuery *q, gint64 *next_after,
                      GError **error)
{
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(JsonNode) node = NULL;

        if (!store_list_json(st, res, q, text, next_after, error))
                return NULL;
        node = json_from_text(text->str, text->len);
        g_assert(node && JSON_NODE_HOLDS_ARRAY(node));
        return json_array_ref(json_node_get_array(node));
}
