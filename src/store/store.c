#include "store/store.h"

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
