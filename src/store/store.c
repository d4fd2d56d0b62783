#include "store/store.h"
#include "common/jsonutil.h"

#include <string.h>

void totp_state_clear(TotpState *t)
{
        g_clear_pointer(&t->secret, g_free);
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

JsonArray *store_list_all(Store *st, const Resource *res, GHashTable *filters, GError **error)
{
        ListQuery q = {.filters = filters, .limit = 1000};
        JsonArray *all = json_array_new();
        gint64 next = 0;

        do {
                g_autoptr(JsonArray) page = NULL;
                q.after_id = next;
                page = store_list(st, res, &q, &next, error);
                if (!page) {
                        json_array_unref(all);
                        return NULL;
                }
                for (guint i = 0; i < json_array_get_length(page); i++)
                        json_array_add_element(all,
                                               json_node_copy(json_array_get_element(page, i)));
        } while (next);
        return all;
}
