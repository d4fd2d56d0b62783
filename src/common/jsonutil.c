#include "common/jsonutil.h"
#include "common/error.h"

#include <string.h>

static int hex4(const char *p, const char *end)
{
        int v = 0;

        if (end - p < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                int d = g_ascii_xdigit_value(p[i]);
                if (d < 0)
                        return -1;
                v = (v << 4) | d;
        }
        return v;
}

guint json_scan_depth(const char *text, gsize len, guint max)
{
        return json_prescan(text, len, max, NULL);
}

guint json_prescan(const char *text, gsize len, guint max, const char **bad)
{
        const char *p = text, *end = text + len;
        guint depth = 0, deepest = 0;
        gboolean in_string = FALSE, closed = FALSE;

        if (bad)
                *bad = NULL;
        for (; p < end; p++) {
                char c = *p;
                if (in_string) {
                        if (c == '"') {
                                in_string = FALSE;
                        } else if (c == '\\') {
                                int u, lo;
                                if (++p >= end || !strchr("\"\\/bfnrtu", *p))
                                        goto bad_escape;
                                if (*p != 'u')
                                        continue;
                                /* json-glib 1.6 leaks on malformed \u escapes: refuse them first.
                                 * \u0000 too: no NUL may hide inside a C string. */
                                u = hex4(p + 1, end);
                                if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF))
                                        goto bad_escape;
                                p += 4;
                                if (u >= 0xD800 && u <= 0xDBFF) {
                                        if (end - p < 7 || p[1] != '\\' || p[2] != 'u' ||
                                            (lo = hex4(p + 3, end)) < 0xDC00 || lo > 0xDFFF)
                                                goto bad_escape;
                                        p += 6;
                                }
                        }
                        continue;
                }
                if (closed && !g_ascii_isspace(c)) {
                        /* json-glib 1.6 leaks the first value when another follows it. */
                        if (bad)
                                *bad = "text after the JSON value";
                        return deepest;
                }
                if (c == '"') {
                        in_string = TRUE;
                } else if (c == '{' || c == '[') {
                        if (++depth > deepest) {
                                deepest = depth;
                                if (deepest > max)
                                        return deepest;
                        }
                } else if ((c == '}' || c == ']') && depth > 0) {
                        closed = --depth == 0;
                }
        }
        return deepest;
bad_escape:
        if (bad)
                *bad = "a string has an invalid escape sequence";
        return deepest;
}

JsonNode *json_parse_body(const char *text, gsize len, guint max_depth, GError **error)
{
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) local = NULL;
        JsonNode *root;

        if (len == 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_JSON,
                            "the request needs a JSON object body");
                return NULL;
        }
        if (!g_utf8_validate(text, len, NULL)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_UTF8,
                            "the request body is not valid UTF-8");
                return NULL;
        }
        {
                const char *bad = NULL;
                if (json_prescan(text, len, max_depth, &bad) > max_depth) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_TOO_DEEP,
                                    "the request body nests JSON deeper than %u levels",
                                    max_depth);
                        return NULL;
                }
                if (bad) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_JSON,
                                    "the request body is not valid JSON: %s", bad);
                        return NULL;
                }
        }
        /* Only an object is ever accepted: refuse anything else before json-glib sees it
         * (its 1.6 parser leaks on some malformed top-level values, found by fuzzing). */
        {
                gsize i = 0;
                while (i < len && g_ascii_isspace(text[i]))
                        i++;
                if (i == len || text[i] != '{') {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_JSON,
                                    "the request body must be a JSON object");
                        return NULL;
                }
        }
        parser = json_parser_new();
        if (!json_parser_load_from_data(parser, text, len, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_JSON,
                            "the request body is not valid JSON: %s", local->message);
                return NULL;
        }
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_JSON,
                            "the request body must be a JSON object");
                return NULL;
        }
        return json_node_ref(root);
}

char *json_node_to_text(JsonNode *node, gboolean pretty)
{
        g_autoptr(JsonGenerator) gen = json_generator_new();

        json_generator_set_root(gen, node);
        json_generator_set_pretty(gen, pretty);
        return json_generator_to_data(gen, NULL);
}

const char *json_type_label(JsonNode *node)
{
        if (!node || JSON_NODE_HOLDS_NULL(node))
                return "null";
        if (JSON_NODE_HOLDS_OBJECT(node))
                return "object";
        if (JSON_NODE_HOLDS_ARRAY(node))
                return "array";
        switch (json_node_get_value_type(node)) {
        case G_TYPE_INT64:
                return "integer";
        case G_TYPE_DOUBLE:
                return "number";
        case G_TYPE_BOOLEAN:
                return "boolean";
        case G_TYPE_STRING:
                return "string";
        default:
                return "value";
        }
}

JsonNode *json_error_body(const GError *error)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        const char *field = atrium_error_field(error);
        int code = error->domain == ATRIUM_ERROR ? error->code : ATRIUM_ERROR_INTERNAL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "error");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, atrium_error_code_to_string(code));
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, error->message);
        if (field) {
                json_builder_set_member_name(b, "field");
                json_builder_add_string_value(b, field);
        }
        json_builder_end_object(b);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

void json_append_string(GString *out, const char *str)
{
        const guchar *p = (const guchar *)str, *run = p;

        g_string_append_c(out, '"');
        for (;; p++) {
                guchar c = *p;
                if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
                        continue; /* copied with the rest of its run */
                g_string_append_len(out, (const char *)run, p - run);
                if (c == '\0')
                        break;
                if (c == '"' || c == '\\') {
                        g_string_append_c(out, '\\');
                        g_string_append_c(out, c);
                } else if (c == '\n') {
                        g_string_append(out, "\\n");
                } else if (c == '\t') {
                        g_string_append(out, "\\t");
                } else {
                        g_string_append_printf(out, "\\u%04x", c);
                }
                run = p + 1;
        }
        g_string_append_c(out, '"');
}

JsonNode *json_from_text(const char *text, gssize len)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonNode *root;

        if (!json_parser_load_from_data(parser, text, len, NULL))
                return NULL;
        root = json_parser_get_root(parser);
        return root ? json_node_ref(root) : NULL;
}

gint64 json_row_ref(JsonObject *row, const char *column)
{
        JsonNode *n = json_object_get_member(row, column);

        return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_int(n) : 0;
}
