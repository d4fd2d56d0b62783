/* The gateway's wire formats: see gwproto.h. */
#include "gateway/gwproto.h"
#include "common/error.h"

#include <sodium.h>
#include <string.h>

static gssize fail(GError **error, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "%s", what);
        return -1;
}

/* RFC 9110 token characters (method and header names). */
static gboolean tchar(guchar c)
{
        return g_ascii_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One line of the head ends at "\r\n" (a bare "\n" is accepted, as most servers do). */
static char *line_end(char *p, char *end, char **next)
{
        char *nl = memchr(p, '\n', (gsize)(end - p));

        if (!nl)
                return NULL;
        *next = nl + 1;
        if (nl > p && nl[-1] == '\r')
                nl--;
        return nl;
}

gssize gw_head_parse(char *buf, gsize len, gsize max_head, GwHead *out, GError **error)
{
        char *end, *p, *next = NULL, *e, *sp1, *sp2;
        gsize head_len = 0;

        memset(out, 0, sizeof(*out));
        /* Find the empty line first: nothing is touched before the whole head is here. */
        for (gsize i = 0; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if ((i >= 1 && buf[i - 1] == '\n') ||
                    (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')) {
                        head_len = i + 1;
                        break;
                }
        }
        if (!head_len)
                return len > max_head ? fail(error, "request head too long") : 0;
        if (head_len > max_head)
                return fail(error, "request head too long");
        end = buf + head_len;
        for (p = buf; p < end; p++)
                if (*p == '\0' || (*p < 0x20 && *p != '\r' && *p != '\n' && *p != '\t') ||
                    *p == 0x7f)
                        return fail(error, "control characters in the request head");
        p = buf;
        e = line_end(p, end, &next);
        if (!e)
                return fail(error, "malformed request line");
        sp1 = memchr(p, ' ', (gsize)(e - p));
        if (!sp1 || sp1 == p)
                return fail(error, "malformed request line");
        sp2 = memchr(sp1 + 1, ' ', (gsize)(e - sp1 - 1));
        if (!sp2 || sp2 == sp1 + 1)
                return fail(error, "malformed request line");
        *sp1 = *sp2 = *e = '\0';
        for (char *m = p; *m; m++)
                if (!tchar((guchar)*m))
                        return fail(error, "malformed method");
        for (char *t = sp1 + 1; *t; t++)
                if ((guchar)*t <= ' ' || (guchar)*t >= 0x7f)
                        return fail(error, "malformed request target");
        if (!g_str_equal(sp2 + 1, "HTTP/1.1") && !g_str_equal(sp2 + 1, "HTTP/1.0"))
                return fail(error, "not an HTTP/1.x request");
        out->method = p;
        out->target = sp1 + 1;
        out->version = sp2 + 1;
        for (p = next; p < end; p = next) {
                char *colon, *v, *ve;

                e = line_end(p, end, &next);
                if (!e || e == p)
                        break; /* the empty line */
                if (*p == ' ' || *p == '\t')
                        return fail(error, "folded header lines are not accepted");
                colon = memchr(p, ':', (gsize)(e - p));
                if (!colon || colon == p)
                        return fail(error, "malformed header line");
                for (char *c = p; c < colon; c++)
                        if (!tchar((guchar)*c))
                                return fail(error, "malformed header name");
                if (out->n_headers == GW_MAX_HEADERS)
                        return fail(error, "too many header lines");
                *colon = '\0';
                v = colon + 1;
                while (v < e && (*v == ' ' || *v == '\t'))
                        v++;
                ve = e;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                        ve--;
                *ve = '\0';
                out->headers[out->n_headers].name = p;
                out->headers[out->n_headers].value = v;
                out->n_headers++;
        }
        return (gssize)head_len;
}

const char *gw_head_get(const GwHead *h, const char *name)
{
        for (guint i = 0; i < h->n_headers; i++)
                if (g_ascii_strcasecmp(h->headers[i].name, name) == 0)
                        return h->headers[i].value;
        return NULL;
}

gboolean gw_header_has_token(const char *value, const char *token)
{
        gsize n = strlen(token);

        if (!value)
                return FALSE;
        for (const char *p = value; *p;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                const char *q = p;
                while (*q && *q != ',')
                        q++;
                const char *r = q;
                while (r > p && (r[-1] == ' ' || r[-1] == '\t'))
                        r--;
                if ((gsize)(r - p) == n && g_ascii_strncasecmp(p, token, n) == 0)
                        return TRUE;
                p = q;
        }
        return FALSE;
}

gboolean gw_target_path(const char *target, char *out, gsize cap)
{
        gsize n = strcspn(target, "?#");

        if (n >= cap)
                return FALSE;
        memcpy(out, target, n);
        out[n] = '\0';
        return TRUE;
}

char *gw_query_param(const char *target, const char *name, gsize max)
{
        const char *q = strchr(target, '?');
        gsize nlen = strlen(name);

        if (!q)
                return NULL;
        for (const char *p = q + 1; *p;) {
                const char *amp = p + strcspn(p, "&#");
                const char *eq = memchr(p, '=', (gsize)(amp - p));

                if (eq && (gsize)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
                        GString *v = g_string_new(NULL);
                        for (const char *c = eq + 1; c < amp; c++) {
                                if (*c == '%') {
                                        int hi, lo;
                                        if (amp - c < 3 || (hi = g_ascii_xdigit_value(c[1])) < 0 ||
                                            (lo = g_ascii_xdigit_value(c[2])) < 0 ||
                                            (hi == 0 && lo == 0)) {
                                                g_string_free(v, TRUE);
                                                return NULL;
                                        }
                                        g_string_append_c(v, (char)(hi * 16 + lo));
                                        c += 2;
                                } else {
                                        g_string_append_c(v, *c == '+' ? ' ' : *c);
                                }
                                if (v->len > max) {
                                        g_string_free(v, TRUE);
                                        return NULL;
                                }
                        }
                        return g_string_free(v, FALSE);
                }
                if (*amp != '&')
                        break;
                p = amp + 1;
        }
        return NULL;
}

char *gw_basic_password(const char *value, gsize max)
{
        g_autofree guint8 *bin = NULL;
        const char *b64, *colon;
        size_t len = 0, in_len;

        if (!value || g_ascii_strncasecmp(value, "Basic ", 6) != 0)
                return NULL;
        b64 = value + 6;
        while (*b64 == ' ')
                b64++;
        in_len = strlen(b64);
        if (in_len == 0 || in_len > (max + 256) * 4 / 3 + 4)
                return NULL;
        bin = g_malloc(in_len + 1);
        if (sodium_base642bin(bin, in_len, b64, in_len, NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
                return NULL;
        bin[len] = '\0';
        if (memchr(bin, '\0', len))
                return NULL;
        colon = strchr((const char *)bin, ':');
        if (!colon || strlen(colon + 1) > max)
                return NULL;
        return g_strdup(colon + 1);
}

gboolean gw_connect_target(const char *target, char *host, gsize host_cap, guint16 *port)
{
        const char *colon, *h = target, *hend;
        char *end = NULL;
        guint64 p;

        if (target[0] == '[') {
                hend = strchr(target, ']');
                if (!hend || hend[1] != ':')
                        return FALSE;
                h = target + 1;
                colon = hend + 1;
        } else {
                colon = strrchr(target, ':');
                if (!colon || memchr(target, ':', (gsize)(colon - target)))
                        return FALSE;
                hend = colon;
        }
        if (hend == h || (gsize)(hend - h) >= host_cap || !g_ascii_isdigit(colon[1]))
                return FALSE;
        p = g_ascii_strtoull(colon + 1, &end, 10);
        if (*end || p == 0 || p > 65535)
                return FALSE;
        for (const char *c = h; c < hend; c++)
                if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != ':')
                        return FALSE;
        memcpy(host, h, (gsize)(hend - h));
        host[hend - h] = '\0';
        *port = (guint16)p;
        return TRUE;
}

gboolean gw_target_matches(const char *host, guint16 port, const char *ticket_host,
                           guint16 ticket_port)
{
        return port == ticket_port && g_ascii_strcasecmp(host, ticket_host) == 0;
}

gboolean gw_ws_accept(const char *key, char *out, gsize cap)
{
        static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        guint8 bin[18], digest[20];
        size_t len = 0;
        gsize dlen = sizeof(digest);
        g_autoptr(GChecksum) sha = NULL;

        if (!key || strlen(key) != 24 || cap < 29 ||
            sodium_base642bin(bin, sizeof(bin), key, 24, NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != 16)
                return FALSE;
        sha = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(sha, (const guchar *)key, 24);
        g_checksum_update(sha, (const guchar *)guid, sizeof(guid) - 1);
        g_checksum_get_digest(sha, digest, &dlen);
        sodium_bin2base64(out, cap, digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL);
        return TRUE;
}

gssize gw_ws_frame_parse(guint8 *buf, gsize len, guint64 max_payload, GwFrame *out, GError **error)
{
        gsize hl = 2;
        guint64 plen;
        guint8 op, mask[4];

        memset(out, 0, sizeof(*out));
        if (len < 2)
                return 0;
        op = buf[0] & 0x0f;
        if (buf[0] & 0x70)
                return fail(error, "WebSocket frame with reserved bits set");
        if (!(buf[1] & 0x80))
                return fail(error, "unmasked WebSocket frame from a client");
        if (op != GW_WS_CONT && op != GW_WS_TEXT && op != GW_WS_BINARY && op != GW_WS_CLOSE &&
            op != GW_WS_PING && op != GW_WS_PONG)
                return fail(error, "WebSocket frame with a reserved opcode");
        plen = buf[1] & 0x7f;
        if (op >= 0x8 && (!(buf[0] & 0x80) || plen > 125))
                return fail(error, "fragmented or long WebSocket control frame");
        if (plen == 126) {
                if (len < 4)
                        return 0;
                plen = (guint64)buf[2] << 8 | buf[3];
                hl = 4;
        } else if (plen == 127) {
                if (len < 10)
                        return 0;
                if (buf[2] & 0x80)
                        return fail(error, "WebSocket frame length out of range");
                plen = 0;
                for (int i = 2; i < 10; i++)
                        plen = plen << 8 | buf[i];
                hl = 10;
        }
        if (plen > max_payload)
                return fail(error, "WebSocket frame larger than the gateway accepts");
        if (len < hl + 4)
                return 0;
        memcpy(mask, buf + hl, 4);
        hl += 4;
        if (len - hl < plen)
                return 0;
        for (guint64 i = 0; i < plen; i++)
                buf[hl + i] ^= mask[i & 3];
        out->opcode = op;
        out->fin = (buf[0] & 0x80) != 0;
        out->header_len = hl;
        out->payload_len = plen;
        return (gssize)(hl + plen);
}

gsize gw_ws_frame_header(guint8 opcode, guint64 len, guint8 *out)
{
        out[0] = (guint8)(0x80 | (opcode & 0x0f));
        if (len < 126) {
                out[1] = (guint8)len;
                return 2;
        }
        if (len <= 0xffff) {
                out[1] = 126;
                out[2] = (guint8)(len >> 8);
                out[3] = (guint8)len;
                return 4;
        }
        out[1] = 127;
        for (int i = 0; i < 8; i++)
                out[2 + i] = (guint8)(len >> (56 - 8 * i));
        return 10;
}
