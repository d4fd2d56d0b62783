#include "guest/minijson.h"

#include <stdint.h>
#include <string.h>

typedef struct {
        char *p;
        const char *err;
} Parser;

static void skip_ws(Parser *ps)
{
        while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')
                ps->p++;
}

static int fail(Parser *ps, const char *err)
{
        if (!ps->err)
                ps->err = err;
        return -1;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Write code point cp as UTF-8 at *w. */
static void put_utf8(char **w, uint32_t cp)
{
        char *o = *w;
        if (cp < 0x80) {
                *o++ = (char)cp;
        } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
        }
        *w = o;
}

static int read_hex4(Parser *ps, uint32_t *cp)
{
        *cp = 0;
        for (int i = 0; i < 4; i++) {
                int h = hexval(ps->p[i]);
                if (h < 0)
                        return fail(ps, "bad \\u escape");
                *cp = (*cp << 4) | (uint32_t)h;
        }
        ps->p += 4;
        return 0;
}

/* A string at ps->p ('"'), unescaped in place; *out points at its text. A \u0000 escape or a
 * raw control character is refused: no NUL can hide inside a value. */
static int parse_string(Parser *ps, char **out)
{
        char *w = ++ps->p;

        *out = w;
        for (;;) {
                unsigned char c = (unsigned char)*ps->p;
                if (c == '\0')
                        return fail(ps, "unterminated string");
                if (c < 0x20)
                        return fail(ps, "control character in a string");
                ps->p++;
                if (c == '"')
                        break;
                if (c != '\\') {
                        *w++ = (char)c;
                        continue;
                }
                c = (unsigned char)*ps->p++;
                switch (c) {
                case '"': case '\\': case '/':
                        *w++ = (char)c;
                        break;
                case 'b': *w++ = '\b'; break;
                case 'f': *w++ = '\f'; break;
                case 'n': *w++ = '\n'; break;
                case 'r': *w++ = '\r'; break;
                case 't': *w++ = '\t'; break;
                case 'u': {
                        uint32_t cp, lo;
                        if (read_hex4(ps, &cp) < 0)
                                return -1;
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (ps->p[0] != '\\' || ps->p[1] != 'u')
                                        return fail(ps, "lone surrogate");
                                ps->p += 2;
                                if (read_hex4(ps, &lo) < 0)
                                        return -1;
                                if (lo < 0xDC00 || lo > 0xDFFF)
                                        return fail(ps, "bad surrogate pair");
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                                return fail(ps, "lone surrogate");
                        }
                        if (cp == 0)
                                return fail(ps, "NUL in a string");
                        /* An escape is at least 6 bytes and UTF-8 at most 4: w stays behind p. */
                        put_utf8(&w, cp);
                        break;
                }
                default:
                        return fail(ps, "bad escape");
                }
        }
        *w = '\0';
        return 0;
}

static int parse_number(Parser *ps, char **out)
{
        char *start = ps->p;

        if (*ps->p == '-')
                ps->p++;
        if (*ps->p < '0' || *ps->p > '9')
                return fail(ps, "bad number");
        while ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e' ||
               *ps->p == 'E' || *ps->p == '+' || *ps->p == '-')
                ps->p++;
        *out = start;
        return 0;
}

static int skip_value(Parser *ps, int depth);

static int skip_container(Parser *ps, int depth, char close)
{
        if (depth > MJ_MAX_DEPTH)
                return fail(ps, "nested too deep");
        ps->p++;
        skip_ws(ps);
        if (*ps->p == close) {
                ps->p++;
                return 0;
        }
        for (;;) {
                skip_ws(ps);
                if (close == '}') {
                        char *k;
                        if (*ps->p != '"' || parse_string(ps, &k) < 0)
                                return fail(ps, "expected a member name");
                        skip_ws(ps);
                        if (*ps->p++ != ':')
                                return fail(ps, "expected ':'");
                }
                if (skip_value(ps, depth + 1) < 0)
                        return -1;
                skip_ws(ps);
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p == close) {
                        ps->p++;
                        return 0;
                }
                return fail(ps, "expected ',' or the end of a container");
        }
}

static int literal(Parser *ps, const char *word)
{
        size_t n = strlen(word);
        if (strncmp(ps->p, word, n) != 0)
                return fail(ps, "unexpected character");
        ps->p += n;
        return 0;
}

static int skip_value(Parser *ps, int depth)
{
        char *dummy;

        skip_ws(ps);
        switch (*ps->p) {
        case '{':
                return skip_container(ps, depth, '}');
        case '[':
                return skip_container(ps, depth, ']');
        case '"':
                return parse_string(ps, &dummy);
        case 't':
                return literal(ps, "true");
        case 'f':
                return literal(ps, "false");
        case 'n':
                return literal(ps, "null");
        default:
                return parse_number(ps, &dummy);
        }
}

static int parse_member(Parser *ps, MjObject *out)
{
        MjMember m = {0};
        char saved;

        skip_ws(ps);
        if (*ps->p != '"' || parse_string(ps, &m.key) < 0)
                return fail(ps, "expected a member name");
        skip_ws(ps);
        if (*ps->p++ != ':')
                return fail(ps, "expected ':'");
        skip_ws(ps);
        switch (*ps->p) {
        case '"':
                m.type = MJ_STRING;
                if (parse_string(ps, &m.value) < 0)
                        return -1;
                break;
        case '{':
        case '[':
                m.type = MJ_NESTED;
                if (skip_value(ps, 1) < 0)
                        return -1;
                break;
        case 't':
        case 'f':
                m.type = MJ_BOOL;
                m.boolean = *ps->p == 't';
                if (literal(ps, m.boolean ? "true" : "false") < 0)
                        return -1;
                break;
        case 'n':
                m.type = MJ_NULL;
                if (literal(ps, "null") < 0)
                        return -1;
                break;
        default:
                m.type = MJ_NUMBER;
                if (parse_number(ps, &m.value) < 0)
                        return -1;
                /* Terminate the number's text after the separator is checked below. */
                break;
        }
        if (out->n >= MJ_MAX_MEMBERS)
                return fail(ps, "too many members");
        skip_ws(ps);
        saved = *ps->p;
        if (m.type == MJ_NUMBER) {
                /* The number ends where whitespace or ',' / '}' starts: cut it there. */
                char *end = m.value;
                while ((*end >= '0' && *end <= '9') || *end == '-' || *end == '+' ||
                       *end == '.' || *end == 'e' || *end == 'E')
                        end++;
                if (end == ps->p) {
                        if (saved != ',' && saved != '}')
                                return fail(ps, "expected ',' or '}'");
                        out->members[out->n++] = m;
                        ps->p++;
                        *end = '\0';
                        return saved == '}' ? 1 : 0;
                }
                *end = '\0';
        }
        out->members[out->n++] = m;
        if (saved == ',') {
                ps->p++;
                return 0;
        }
        if (saved == '}') {
                ps->p++;
                return 1;
        }
        return fail(ps, "expected ',' or '}'");
}

int mj_parse(char *text, MjObject *out, const char **err)
{
        Parser ps = {text, NULL};
        int r;

        out->n = 0;
        skip_ws(&ps);
        if (*ps.p != '{') {
                *err = "a message must be a JSON object";
                return -1;
        }
        ps.p++;
        skip_ws(&ps);
        if (*ps.p == '}') {
                ps.p++;
        } else {
                while ((r = parse_member(&ps, out)) == 0)
                        ;
                if (r < 0) {
                        *err = ps.err ? ps.err : "malformed JSON";
                        return -1;
                }
        }
        skip_ws(&ps);
        if (*ps.p != '\0') {
                *err = "text after the JSON object";
                return -1;
        }
        return 0;
}

const MjMember *mj_get(const MjObject *o, const char *key)
{
        for (int i = 0; i < o->n; i++)
                if (strcmp(o->members[i].key, key) == 0)
                        return &o->members[i];
        return NULL;
}

const char *mj_get_string(const MjObject *o, const char *key)
{
        const MjMember *m = mj_get(o, key);
        return m && m->type == MJ_STRING ? m->value : NULL;
}

bool mj_put_raw(char *buf, size_t cap, size_t *len, const char *s)
{
        size_t n = strlen(s);
        if (*len + n + 1 > cap)
                return false;
        memcpy(buf + *len, s, n + 1);
        *len += n;
        return true;
}

bool mj_put_string(char *buf, size_t cap, size_t *len, const char *s)
{
        static const char hex[] = "0123456789abcdef";

        if (*len + 2 >= cap)
                return false;
        buf[(*len)++] = '"';
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                char esc[7] = {0};
                if (*p == '"' || *p == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)*p;
                } else if (*p < 0x20 || *p == 0x7f) {
                        memcpy(esc, "\\u00", 4);
                        esc[4] = hex[*p >> 4];
                        esc[5] = hex[*p & 15];
                } else {
                        esc[0] = (char)*p;
                }
                if (!mj_put_raw(buf, cap, len, esc))
                        return false;
        }
        if (*len + 2 > cap)
                return false;
        buf[(*len)++] = '"';
        buf[*len] = '\0';
        return true;
}

bool mj_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s, *end = p + len;

        while (p < end) {
                unsigned char c = *p;
                size_t n;
                uint32_t cp;
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0) {
                        n = 1;
                        cp = c & 0x1F;
                } else if ((c & 0xF0) == 0xE0) {
                        n = 2;
                        cp = c & 0x0F;
                } else if ((c & 0xF8) == 0xF0) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if ((size_t)(end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                p += n + 1;
        }
        return true;
}
