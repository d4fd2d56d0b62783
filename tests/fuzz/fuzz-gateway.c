/* libFuzzer harness for what the gateway parses from a client before any ticket check: the
 * request head (then the ticket query parameter, Proxy-Authorization and CONNECT target it
 * carries), and WebSocket client frames. The first byte picks the parser; the invariants: a
 * head's length is within the input and its strings are inside the buffer; a frame's length
 * is within the input and its payload within the limit. */
#include "gateway/gwproto.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void head(const uint8_t *data, size_t size)
{
        g_autofree char *buf = g_malloc(size + 1);
        GwHead h;
        gssize n;

        memcpy(buf, data, size);
        buf[size] = '\0';
        n = gw_head_parse(buf, size, 4096, &h, NULL);
        if (n > (gssize)size || n > 4096)
                __builtin_trap();
        if (n > 0) {
                char host[256], path[512];
                guint16 port;
                g_autofree char *ticket = gw_query_param(h.target, "ticket", 2048);
                g_autofree char *pw =
                        gw_basic_password(gw_head_get(&h, "Proxy-Authorization"), 2048);
                if (h.method < buf || h.target >= buf + n || h.n_headers > GW_MAX_HEADERS)
                        __builtin_trap();
                if (ticket && strlen(ticket) > 2048)
                        __builtin_trap();
                if (pw && strlen(pw) > 2048)
                        __builtin_trap();
                if (gw_connect_target(h.target, host, sizeof(host), &port) && port == 0)
                        __builtin_trap();
                gw_target_path(h.target, path, sizeof(path));
                gw_header_has_token(gw_head_get(&h, "Connection"), "upgrade");
        }
}

static void frames(const uint8_t *data, size_t size)
{
        g_autofree guint8 *buf = g_memdup2(data, size);
        gsize off = 0;

        while (off < size) {
                GwFrame f;
                gssize n = gw_ws_frame_parse(buf + off, size - off, 1024, &f, NULL);
                if (n <= 0)
                        break;
                if ((gsize)n > size - off || f.payload_len > 1024 ||
                    f.header_len + f.payload_len != (gsize)n)
                        __builtin_trap();
                off += (gsize)n;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        if (data[0] & 1)
                frames(data + 1, size - 1);
        else
                head(data + 1, size - 1);
        return 0;
}
