/* libFuzzer harness for the console ticket parser (proto/ticket.h): what a gateway runs on
 * every ticket a client presents. A ticket that verifies must have been signed by the key:
 * random input never does, and a re-signed copy of what parsed verifies the same. */
#include "proto/ticket.h"

#include <glib.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static guint8 pk[TICKET_PK_BYTES], sk[TICKET_SK_BYTES];
        static gboolean ready;
        Ticket t;

        if (!ready) {
                guint8 seed[32];
                for (int i = 0; i < 32; i++) /* the key of tests/unit/test-ticket.c */
                        seed[i] = 1 + i;
                ticket_keypair_from_seed(seed, pk, sk);
                ready = TRUE;
        }
        if (ticket_verify((const char *)data, size, pk, 0, &t, NULL)) {
                /* only a ticket signed with sk verifies: re-signing gives the same text */
                g_autofree char *again = ticket_sign(&t, sk, NULL);
                if (!again || strlen(again) != size || memcmp(again, data, size) != 0)
                        __builtin_trap();
        }
        return 0;
}
