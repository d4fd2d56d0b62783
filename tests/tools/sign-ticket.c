/* Test tool: signs a console ticket with a manager's state_dir/ticket.key, for any target and
 * expiry, so that the gateway's tests can present tickets for a console they run themselves.
 *   sign-ticket KEYFILE HOST PORT PROTO DESKTOP USER TTL_SECONDS  (TTL may be negative) */
#include "proto/ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
        g_autofree char *key = NULL, *text = NULL;
        g_autoptr(GError) error = NULL;
        gsize len = 0;
        Ticket t = {0};

        if (argc != 8) {
                fprintf(stderr, "usage: sign-ticket KEYFILE HOST PORT PROTO DESKTOP USER TTL\n");
                return 2;
        }
        if (!g_file_get_contents(argv[1], &key, &len, &error) || len != TICKET_SK_BYTES) {
                fprintf(stderr, "sign-ticket: %s: not a ticket key\n", argv[1]);
                return 1;
        }
        g_strlcpy(t.host, argv[2], sizeof(t.host));
        t.port = (guint16)g_ascii_strtoull(argv[3], NULL, 10);
        g_strlcpy(t.proto, argv[4], sizeof(t.proto));
        t.desktop = g_ascii_strtoll(argv[5], NULL, 10);
        t.user = g_ascii_strtoll(argv[6], NULL, 10);
        t.exp = g_get_real_time() / G_USEC_PER_SEC + g_ascii_strtoll(argv[7], NULL, 10);
        ticket_new_nonce(&t);
        text = ticket_sign(&t, (const guint8 *)key, &error);
        if (!text) {
                fprintf(stderr, "sign-ticket: %s\n", error->message);
                return 1;
        }
        printf("%s\n", text);
        return 0;
}
