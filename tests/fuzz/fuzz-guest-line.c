/* libFuzzer harness for atrium-guest's request handling (the guest's minimal JSON reader and
 * every op), in simulate mode on a scratch root, and for the host's parser of guest messages. */
#include "guest/guest.h"
#include "proto/guestproto.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static Guest g;
        static char *root;
        static char reply[GUEST_LINE_MAX * 2];
        char *line;

        if (!root) {
                root = g_dir_make_tmp("atrium-fuzz-guest-XXXXXX", NULL);
                guest_init(&g);
                g.root = root;
                g.simulate = true;
                guest_start(&g);
        }
        if (size >= GUEST_LINE_MAX)
                return 0;
        line = g_strndup((const char *)data, size);
        guest_handle_line(&g, line, strlen(line), reply, sizeof(reply));
        g.after = GUEST_AFTER_NONE; /* never act on a fuzzed reboot */
        g_free(line);
        {
                GuestMsg *m = guest_msg_parse((const char *)data, size, NULL);
                guest_msg_free(m);
        }
        return 0;
}
