/* libFuzzer harness for API request parsing: "METHOD PATH?QUERY\nBODY". Runs the router, the
 * query parser, the JSON body parser with its limits, the model validation, and a list query
 * with the fuzzed filters against an in-memory store; and the login's own parsers on the raw
 * input: a directory login name (check, filter escaping), a TOTP secret (base32) and code. Any
 * crash, leak or sanitizer report is a bug. */
#include "auth/directory.h"
#include "auth/totp.h"
#include "common/jsonutil.h"
#include "manager/api.h"

#include <stdint.h>
#include <string.h>

static Store *store;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autofree char *text = g_strndup((const char *)data, size);
        char *nl = strchr(text, '\n');
        const char *body = nl ? nl + 1 : "";
        char *sp, *q;
        char *params[API_MAX_PARAMS] = {NULL};
        gboolean known;
        gsize n;
        const Route *routes = routes_all(&n), *r;
        g_autoptr(GHashTable) query = NULL;

        if (!store)
                store = store_open_sqlite(":memory:", NULL);
        {
                DirectoryConfig dc = {.user_filter = "(&(objectClass=person)(uid=%s))"};
                g_autofree char *esc = directory_filter_escape(text);
                g_autofree char *filter = directory_user_filter(&dc, text);
                g_autoptr(GBytes) key = totp_base32_decode(text, NULL);
                gint64 step = 0;
                /* An escaped value never holds filter syntax. */
                g_assert(!strpbrk(esc, "*()") && strlen(filter) >= strlen(esc));
                directory_login_valid(text, NULL);
                totp_verify(text, "123456", 1700000000, &step);
                if (key && g_bytes_get_size(key) > 0)
                        totp_code(g_bytes_get_data(key, NULL), g_bytes_get_size(key), 59, 6);
        }
        if (nl)
                *nl = '\0';
        sp = strchr(text, ' ');
        if (!sp)
                return 0;
        *sp = '\0';
        q = strchr(sp + 1, '?');
        if (q) {
                *q = '\0';
                query = g_uri_parse_params(q + 1, -1, "&", G_URI_PARAMS_NONE, NULL);
        }
        r = router_match(routes, n, text, sp + 1, params, &known);
        if (r && r->res) {
                g_autoptr(GError) error = NULL;
                JsonNode *root = json_parse_body(body, strlen(body), 32, &error);
                if (root) {
                        g_autoptr(GError) invalid = NULL;
                        if (!model_validate(r->res, json_node_get_object(root),
                                            g_str_equal(r->op, "create"), &invalid)) {
                                /* The error body, with the field its message names. */
                                JsonNode *e = json_error_body(invalid);
                                json_node_unref(e);
                        }
                        json_node_unref(root);
                }
                if (error) {
                        JsonNode *e = json_error_body(error);
                        json_node_unref(e);
                }
                if (g_str_equal(r->op, "list") && query) {
                        ListQuery lq = {.filters = query, .limit = 10};
                        gint64 next;
                        JsonArray *a = store_list(store, r->res, &lq, &next, NULL);
                        if (a)
                                json_array_unref(a);
                }
                if (g_str_equal(r->op, "get") && params[0]) {
                        JsonObject *o = store_get(store, r->res, params[0], 0, NULL);
                        if (o)
                                json_object_unref(o);
                }
        }
        for (int i = 0; i < API_MAX_PARAMS; i++)
                g_free(params[i]);
        return 0;
}
