/* The gateway's wire formats (gateway/gwproto.h): request heads, tickets in requests, CONNECT
 * targets and WebSocket frames, each case's result in the golden tests/data/gwproto.out. */
#include "gateway/gwproto.h"
#include "common/error.h"
#include "testutil.h"

#include <string.h>

static const char *const heads[] = {
        "GET /console?ticket=atk1.abc HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
        "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: base64, binary\r\n\r\n",
        ("CONNECT 10.0.0.5:5901 HTTP/1.0\r\nProxy-Authorization: Basic dGlja2V0OmF0azEuWFla\r\n\r\n"
         "leftover"),
        "CONNECT [fd00::5]:5901 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\nHost: bare-newlines\n\n",
        "GET /index.html HTTP/1.1\r\nHost: x\r\n", /* incomplete */
        "GET /a HTTP/2.0\r\n\r\n",                 /* not HTTP/1.x */
        "GET  /a HTTP/1.1\r\n\r\n",                /* empty target */
        "G(T /a HTTP/1.1\r\n\r\n",                 /* bad method */
        "GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n",  /* bad header name */
        "GET /a HTTP/1.1\r\n folded\r\n\r\n",      /* folded line */
        "GET /a HTTP/1.1\r\nNoColon\r\n\r\n",      /* no colon */
        "GET /a\x01 HTTP/1.1\r\n\r\n",             /* control character */
        "GET /a HTTP/1.1\r\nX:  spaced value  \r\n\r\n",
};

static void print_head(GString *out, const char *input)
{
        g_autofree char *buf = g_strdup(input);
        g_autoptr(GError) error = NULL;
        GwHead h;
        gssize n = gw_head_parse(buf, strlen(buf), 1024, &h, &error);

        if (n < 0) {
                g_string_append_printf(out, "  error: %s\n", error->message);
                return;
        }
        if (n == 0) {
                g_string_append(out, "  more bytes needed\n");
                return;
        }
        g_string_append_printf(out, "  %zd bytes: method '%s' target '%s' version '%s'\n", n,
                               h.method, h.target, h.version);
        for (guint i = 0; i < h.n_headers; i++)
                g_string_append_printf(out, "    '%s' = '%s'\n", h.headers[i].name,
                                       h.headers[i].value);
}

static void test_golden(void)
{
        g_autoptr(GString) out = g_string_new(NULL);

        g_string_append(out, "request heads\n");
        for (gsize i = 0; i < G_N_ELEMENTS(heads); i++)
                print_head(out, heads[i]);
        {
                GString *big = g_string_new("GET / HTTP/1.1\r\n");
                while (big->len < 2000)
                        g_string_append(big,
                                        "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
                print_head(out, big->str); /* longer than the 1024 allowed, incomplete */
                g_string_append(big, "\r\n");
                print_head(out, big->str); /* and complete */
                g_string_free(big, TRUE);
        }
        {
                GString *many = g_string_new("GET / HTTP/1.1\r\n");
                for (int i = 0; i < GW_MAX_HEADERS + 1; i++)
                        g_string_append_printf(many, "H%d: v\r\n", i);
                g_string_append(many, "\r\n");
                print_head(out, many->str);
                g_string_free(many, TRUE);
        }

        g_string_append(out, "query parameters\n");
        {
                static const char *const targets[] = {
                        "/console?ticket=atk1.a-b_c.d",
                        "/console?x=1&ticket=a%2Eb+c",
                        "/console?ticket=",
                        "/console",
                        "/console?tickets=1",
                        "/console?ticket=%zz",
                        "/console?ticket=%00x",
                        "/console?ticket=a#frag",
                        "/console?ticket=0123456789abcdefX",
                };
                for (gsize i = 0; i < G_N_ELEMENTS(targets); i++) {
                        g_autofree char *v = gw_query_param(targets[i], "ticket", 16);
                        g_string_append_printf(out, "  %s -> %s%s%s\n", targets[i], v ? "'" : "",
                                               v ? v : "(none)", v ? "'" : "");
                }
        }

        g_string_append(out, "basic credentials\n");
        {
                static const char *const values[] = {
                        "Basic dGlja2V0OmF0azEuWFla",
                        "basic dXNlcjpwYXNzOndpdGg6Y29sb25z",
                        "Basic bm9jb2xvbg==",
                        "Bearer dGlja2V0OmF0azEuWFla",
                        "Basic !!!",
                        "Basic dTp4AHk=",
                        "Basic ",
                        NULL,
                };
                for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
                        g_autofree char *v = gw_basic_password(values[i], 64);
                        g_string_append_printf(out, "  %s -> %s\n",
                                               values[i] ? values[i] : "(null)", v ? v : "(none)");
                }
        }

        g_string_append(out, "CONNECT targets\n");
        {
                static const char *const targets[] = {
                        "10.0.0.5:5901", "[fd00::1]:5900", "host-1.example:443", "10.0.0.5",
                        "10.0.0.5:0",    "10.0.0.5:65536", "10.0.0.5:59a",       ":5900",
                        "a:b:5900",      "[fd00::1]5900",  "bad/host:5900",
                };
                for (gsize i = 0; i < G_N_ELEMENTS(targets); i++) {
                        char host[64];
                        guint16 port = 0;
                        if (gw_connect_target(targets[i], host, sizeof(host), &port))
                                g_string_append_printf(out, "  %s -> '%s' port %u\n", targets[i],
                                                       host, port);
                        else
                                g_string_append_printf(out, "  %s -> refused\n", targets[i]);
                }
        }
        g_string_append_printf(out,
                               "target match: same %d, case %d, other port %d, other host %d\n",
                               gw_target_matches("Host", 5900, "host", 5900),
                               gw_target_matches("HOST", 5900, "host", 5900),
                               gw_target_matches("host", 5901, "host", 5900),
                               gw_target_matches("hosts", 5900, "host", 5900));

        g_string_append(out, "WebSocket accept keys\n");
        {
                static const char *const keys[] = {
                        "dGhlIHNhbXBsZSBub25jZQ==", /* RFC 6455's example */
                        "dGhlIHNhbXBsZSBub25jZQ",
                        "not base64 at all!!!!!!!",
                        NULL,
                };
                for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                        char acc[32];
                        gboolean ok = gw_ws_accept(keys[i], acc, sizeof(acc));
                        g_string_append_printf(out, "  %s -> %s\n", keys[i] ? keys[i] : "(null)",
                                               ok ? acc : "refused");
                }
        }
        g_string_append_printf(out, "token lists: %d %d %d %d\n",
                               gw_header_has_token("keep-alive, Upgrade", "upgrade"),
                               gw_header_has_token("upgrade-not", "upgrade"),
                               gw_header_has_token(" binary ,base64", "binary"),
                               gw_header_has_token(NULL, "binary"));
        g_string_append(out, "paths\n");
        {
                char path[8];
                g_string_append_printf(out, "  /a/b?c=d -> %s\n",
                                       gw_target_path("/a/b?c=d", path, sizeof(path)) ? path
                                                                                      : "too long");
                g_string_append_printf(
                        out, "  /abcdefghij -> %s\n",
                        gw_target_path("/abcdefghij", path, sizeof(path)) ? path : "too long");
        }
        testutil_golden("gwproto.out", out->str);
}

/* A client frame: FIN, opcode, masked with 0x37fa213d. */
static GByteArray *client_frame(guint8 first, const guint8 *payload, gsize len)
{
        static const guint8 mask[4] = {0x37, 0xfa, 0x21, 0x3d};
        GByteArray *b = g_byte_array_new();
        guint8 h[14];
        gsize hl = gw_ws_frame_header(0, len, h);

        h[0] = first;
        h[1] |= 0x80;
        g_byte_array_append(b, h, (guint)hl);
        g_byte_array_append(b, mask, 4);
        for (gsize i = 0; i < len; i++) {
                guint8 c = payload[i] ^ mask[i & 3];
                g_byte_array_append(b, &c, 1);
        }
        return b;
}

static void test_frames(void)
{
        guint8 big[70000];
        GwFrame f;
        g_autoptr(GError) error = NULL;
        gssize n;

        for (gsize i = 0; i < sizeof(big); i++)
                big[i] = (guint8)(i * 7);
        /* small, 16-bit and 64-bit lengths, each whole, then one byte short */
        for (gsize len = 0; len < sizeof(big); len = len ? len * 23 : 5) {
                g_autoptr(GByteArray) b = client_frame(0x82, big, len);
                g_assert_cmpint(gw_ws_frame_parse(b->data, b->len - 1, sizeof(big), &f, NULL), ==,
                                0);
                n = gw_ws_frame_parse(b->data, b->len, sizeof(big), &f, &error);
                g_assert_no_error(error);
                g_assert_cmpint(n, ==, (gssize)b->len);
                g_assert_cmpint(f.opcode, ==, GW_WS_BINARY);
                g_assert_true(f.fin);
                g_assert_cmpuint(f.payload_len, ==, len);
                g_assert_cmpmem(b->data + f.header_len, len, big, len);
        }
        /* a payload past the limit is refused from its header alone */
        {
                g_autoptr(GByteArray) b = client_frame(0x82, big, 1000);
                g_assert_cmpint(gw_ws_frame_parse(b->data, 8, 999, &f, &error), ==, -1);
                g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
                g_clear_error(&error);
        }
        /* protocol violations */
        {
                static const guint8 unmasked[] = {0x82, 0x01, 0x00};
                static const guint8 rsv[] = {0xc2, 0x80, 0, 0, 0, 0};
                static const guint8 opcode[] = {0x83, 0x80, 0, 0, 0, 0};
                static const guint8 frag_ping[] = {0x09, 0x80, 0, 0, 0, 0};
                static const guint8 long_ping[] = {0x89, 0xfe, 0x00, 0x80};
                static const guint8 huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
                const guint8 *bad[] = {unmasked, rsv, opcode, frag_ping, long_ping, huge};
                const gsize lens[] = {sizeof(unmasked),  sizeof(rsv),       sizeof(opcode),
                                      sizeof(frag_ping), sizeof(long_ping), sizeof(huge)};
                for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                        guint8 copy[16];
                        memcpy(copy, bad[i], lens[i]);
                        g_assert_cmpint(gw_ws_frame_parse(copy, lens[i], G_MAXUINT64, &f, &error),
                                        ==, -1);
                        g_clear_error(&error);
                }
        }
        /* a ping with its payload, a close */
        {
                g_autoptr(GByteArray) p = client_frame(0x89, (const guint8 *)"hi", 2);
                g_assert_cmpint(gw_ws_frame_parse(p->data, p->len, 10, &f, &error), ==, 8);
                g_assert_cmpint(f.opcode, ==, GW_WS_PING);
                g_assert_cmpmem(p->data + f.header_len, 2, "hi", 2);
        }
        /* server headers: the three length forms */
        {
                guint8 h[10];
                g_assert_cmpuint(gw_ws_frame_header(GW_WS_BINARY, 125, h), ==, 2);
                g_assert_cmphex(h[0], ==, 0x82);
                g_assert_cmphex(h[1], ==, 125);
                g_assert_cmpuint(gw_ws_frame_header(GW_WS_BINARY, 126, h), ==, 4);
                g_assert_cmphex(h[1], ==, 126);
                g_assert_cmphex(h[3], ==, 126);
                g_assert_cmpuint(gw_ws_frame_header(GW_WS_CLOSE, 65536, h), ==, 10);
                g_assert_cmphex(h[0], ==, 0x88);
                g_assert_cmphex(h[1], ==, 127);
                g_assert_cmphex(h[7], ==, 1);
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/gwproto/golden", test_golden);
        g_test_add_func("/gwproto/frames", test_frames);
        return g_test_run();
}
