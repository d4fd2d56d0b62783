#include "guesthost.h"

#include <string.h>

void guest_host_init(GuestHost *gh, GSocket *socket)
{
        gh->socket = socket;
        if (gh->buf)
                g_string_truncate(gh->buf, 0);
        else
                gh->buf = g_string_new(NULL);
}

void guest_host_clear(GuestHost *gh)
{
        if (gh->buf)
                g_string_free(gh->buf, TRUE);
        gh->buf = NULL;
        gh->socket = NULL;
}

GuestMsg *guest_host_read(GuestHost *gh)
{
        for (;;) {
                char *nl = memchr(gh->buf->str, '\n', gh->buf->len);
                char chunk[4096];
                gssize n;
                g_autoptr(GError) error = NULL;

                if (nl) {
                        gsize len = nl - gh->buf->str;
                        GuestMsg *m = guest_msg_parse(gh->buf->str, len, &error);
                        g_assert_no_error(error);
                        g_string_erase(gh->buf, 0, len + 1);
                        return m;
                }
                n = g_socket_receive(gh->socket, chunk, sizeof(chunk), NULL, &error);
                g_assert_no_error(error);
                g_assert_cmpint(n, >, 0);
                g_string_append_len(gh->buf, chunk, n);
        }
}

GuestMsg *guest_host_expect(GuestHost *gh, GuestMsgType t)
{
        for (;;) {
                GuestMsg *m = guest_host_read(gh);
                if (m->type == t)
                        return m;
                guest_msg_free(m);
        }
}

void guest_host_send(GSocket *socket, const char *line)
{
        g_autoptr(GError) error = NULL;

        g_socket_send(socket, line, strlen(line), NULL, &error);
        g_assert_no_error(error);
}
