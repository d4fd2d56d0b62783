/* The route table, the router and the OpenAPI document in docs/. */
#include "common/jsonutil.h"
#include "manager/api.h"
#include "testutil.h"

#include <string.h>

static const Route *match(const char *method, const char *path, char **params, gboolean *known)
{
        gsize n;
        const Route *routes = routes_all(&n);
        return router_match(routes, n, method, path, params, known);
}

static void free_params(char **p)
{
        for (int i = 0; i < API_MAX_PARAMS; i++)
                g_clear_pointer(&p[i], g_free);
}

static void test_match(void)
{
        char *p[API_MAX_PARAMS] = {NULL};
        gboolean known;
        const Route *r;

        r = match("GET", "/api/v1/pools", p, &known);
        g_assert_nonnull(r);
        g_assert_cmpstr(r->op, ==, "list");
        g_assert_cmpstr(r->res->kind, ==, "pool");
        r = match("GET", "/api/v1/pools/office%2D1", p, &known);
        g_assert_cmpstr(r->op, ==, "get");
        g_assert_cmpstr(p[0], ==, "office-1");
        free_params(p);
        r = match("PUT", "/api/v1/groups/staff/members/alice", p, &known);
        g_assert_cmpstr(r->op, ==, "add_member");
        g_assert_cmpstr(p[0], ==, "staff");
        g_assert_cmpstr(p[1], ==, "alice");
        free_params(p);
        /* Known path, wrong method: 405 rather than 404. */
        g_assert_null(match("PUT", "/api/v1/pools", p, &known));
        g_assert_true(known);
        g_assert_null(match("POST", "/api/v1/events", p, &known));
        g_assert_true(known);
        g_assert_null(match("PATCH", "/api/v1/entitlements/3", p, &known));
        g_assert_true(known);
        g_assert_null(match("GET", "/api/v1/nothing", p, &known));
        g_assert_false(known);
        g_assert_null(match("GET", "/api/v1/pools/", p, &known));
        g_assert_null(match("GET", "/api/v1/pools/a/b", p, &known));
        g_assert_null(match("GET", "/api/v1/pools/a%2Fb", p, &known)); /* no smuggled slash */
        g_assert_null(match("GET", "/api/v1/poolsx", p, &known));
}

/* Table-driven: which role each route needs. */
static void test_roles(void)
{
        static const struct {
                const char *method, *path;
                Role role;
        } cases[] = {
                {"GET", "/api/v1/version", ROLE_NONE},
                {"POST", "/api/v1/auth/login", ROLE_NONE},
                {"POST", "/api/v1/auth/logout", ROLE_USER},
                {"GET", "/api/v1/me", ROLE_USER},
                {"PUT", "/api/v1/me/password", ROLE_USER},
                {"GET", "/api/v1/desktops", ROLE_USER},
                {"GET", "/api/v1/sessions/1", ROLE_USER},
                {"POST", "/api/v1/desktops", ROLE_OPERATOR},
                {"GET", "/api/v1/pools", ROLE_OPERATOR},
                {"DELETE", "/api/v1/pools/p", ROLE_OPERATOR},
                {"GET", "/api/v1/events", ROLE_OPERATOR},
                {"GET", "/api/v1/users", ROLE_ADMIN},
                {"POST", "/api/v1/users", ROLE_ADMIN},
                {"PATCH", "/api/v1/groups/g", ROLE_ADMIN},
                {"PUT", "/api/v1/groups/g/members/u", ROLE_ADMIN},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                char *p[API_MAX_PARAMS] = {NULL};
                gboolean known;
                const Route *r = match(cases[i].method, cases[i].path, p, &known);
                g_assert_nonnull(r);
                if (r->role != cases[i].role)
                        g_error("%s %s needs %s, table says %s", cases[i].method, cases[i].path,
                                role_to_string(cases[i].role), role_to_string(r->role));
                free_params(p);
        }
}

/* Every write route takes a bounded body; reads take none. */
static void test_body_limits(void)
{
        gsize n;
        const Route *routes = routes_all(&n);

        for (gsize i = 0; i < n; i++) {
                gboolean writes = g_str_equal(routes[i].method, "POST") ||
                                  g_str_equal(routes[i].method, "PATCH");
                if (g_str_equal(routes[i].method, "GET") || g_str_equal(routes[i].method, "DELETE"))
                        g_assert_cmpuint(routes[i].body_limit, ==, 0);
                if (writes && !g_str_equal(routes[i].op, "logout"))
                        g_assert_cmpuint(routes[i].body_limit, >, 0);
                g_assert_cmpuint(routes[i].body_limit, <=, 1024 * 1024);
        }
}

/* docs/openapi.json is what the server serves: regenerate with ATRIUM_TEST_REGENERATE=1. */
static void test_openapi_golden(void)
{
        g_autoptr(JsonNode) doc = openapi_document();
        g_autofree char *text = json_node_to_text(doc, TRUE);
        g_autofree char *withnl = g_strconcat(text, "\n", NULL);
        g_autofree char *rel = g_build_filename("..", "..", "docs", "openapi.json", NULL);

        testutil_golden(rel, withnl);
}

/* And read the other way: every path and method of the document is a route with its role. */
static void test_openapi_matches_routes(void)
{
        g_autofree char *path = testutil_source_path("docs/openapi.json");
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GList) paths = NULL;
        JsonObject *p;
        gsize n, count = 0;
        const Route *routes = routes_all(&n);

        g_assert_true(json_parser_load_from_file(parser, path, NULL));
        p = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)),
                                          "paths");
        paths = json_object_get_members(p);
        for (GList *l = paths; l; l = l->next) {
                JsonObject *item = json_object_get_object_member(p, l->data);
                g_autoptr(GList) methods = json_object_get_members(item);
                for (GList *m = methods; m; m = m->next) {
                        g_autofree char *up = g_ascii_strup(m->data, -1);
                        JsonObject *op = json_object_get_object_member(item, m->data);
                        gboolean found = FALSE;
                        for (gsize i = 0; i < n; i++) {
                                if (g_str_equal(routes[i].pattern, l->data) &&
                                    g_str_equal(routes[i].method, up)) {
                                        g_assert_cmpstr(
                                                json_object_get_string_member(op, "x-atrium-role"),
                                                ==, role_to_string(routes[i].role));
                                        found = TRUE;
                                }
                        }
                        if (!found)
                                g_error("docs/openapi.json has %s %s, the router does not", up,
                                        (char *)l->data);
                        count++;
                }
        }
        g_assert_cmpuint(count, ==, n);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/router/match", test_match);
        g_test_add_func("/router/roles", test_roles);
        g_test_add_func("/router/body-limits", test_body_limits);
        g_test_add_func("/openapi/golden", test_openapi_golden);
        g_test_add_func("/openapi/matches-routes", test_openapi_matches_routes);
        return g_test_run();
}
