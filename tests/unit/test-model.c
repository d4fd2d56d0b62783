/* Request validation against the resource table, as a golden file: every line of
 * data/model-validate.in and its result in data/model-validate.out. */
#include "common/error.h"
#include "common/jsonutil.h"
#include "proto/model.h"
#include "proto/vocab.h"
#include "testutil.h"

#include <string.h>

static void test_validate_golden(void)
{
        g_autofree char *in_path = testutil_source_path("tests/data/model-validate.in");
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        GString *out = g_string_new(NULL);
        g_autofree char *result = NULL;

        g_assert_true(g_file_get_contents(in_path, &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) parts = NULL;
                g_autoptr(GError) error = NULL;
                const Resource *res;
                JsonNode *body;

                if (!**l || **l == '#')
                        continue;
                parts = g_strsplit(*l, " ", 3);
                g_assert_cmpuint(g_strv_length(parts), ==, 3);
                res = resource_by_kind(parts[0]);
                g_assert_nonnull(res);
                body = json_parse_body(parts[2], strlen(parts[2]), 32, &error);
                g_assert_no_error(error);
                if (model_validate(res, json_node_get_object(body), g_str_equal(parts[1], "create"),
                                   &error))
                        g_string_append_printf(out, "%s -> ok\n", *l);
                else
                        g_string_append_printf(out, "%s -> %s: %s\n", *l,
                                               atrium_error_code_to_string(error->code),
                                               error->message);
                json_node_unref(body);
        }
        result = g_string_free(out, FALSE);
        testutil_golden("model-validate.out", result);
}

/* Every resource is consistent: refs point at named resources, enums have choices, an
 * owner field is a reference to users. */
static void test_resources_consistent(void)
{
        gsize n;
        const Resource *const *all = resources_all(&n);

        for (gsize i = 0; i < n; i++) {
                const Resource *r = all[i];
                g_assert_true(resource_by_kind(r->kind) == r);
                g_assert_true(resource_by_plural(r->plural) == r);
                g_assert_cmpint(r->read_role, >, ROLE_NONE);
                g_assert_cmpint(r->write_role, >=, r->read_role);
                g_assert_cmpint(r->named, ==, resource_field(r, "name") != NULL);
                if (r->owner_field) {
                        const Field *f = resource_field(r, r->owner_field);
                        g_assert_nonnull(f);
                        g_assert_cmpstr(f->ref, ==, "user");
                }
                for (gsize k = 0; k < r->n_fields; k++) {
                        const Field *f = &r->fields[k];
                        if (f->type == FIELD_REF) {
                                g_assert_nonnull(resource_by_kind(f->ref));
                                g_assert_true(resource_by_kind(f->ref)->named);
                        }
                        if (f->type == FIELD_ENUM)
                                g_assert_nonnull(f->choices);
                        if (f->def && f->type != FIELD_SECRET) {
                                g_autoptr(JsonNode) d = model_value_from_text(f, f->def, NULL);
                                g_assert_nonnull(d);
                        }
                        g_assert_nonnull(f->help);
                }
        }
}

static void test_roles(void)
{
        for (int r = 0; r < ROLE_LAST; r++)
                g_assert_cmpint(role_from_string(role_to_string(r)), ==, r);
        g_assert_cmpint(role_from_string("root"), ==, -1);
        g_assert_cmpint(ROLE_USER, <, ROLE_OPERATOR);
        g_assert_cmpint(ROLE_OPERATOR, <, ROLE_ADMIN);
}

static void test_value_from_text(void)
{
        const Resource *pool = resource_by_kind("pool");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) a = model_value_from_text(resource_field(pool, "size"), "12", NULL);
        g_autoptr(JsonNode) b = model_value_from_text(resource_field(pool, "template"), "7", NULL);
        g_autoptr(JsonNode) c = model_value_from_text(resource_field(pool, "template"), "t", NULL);
        g_autoptr(JsonNode) d =
                model_value_from_text(resource_field(pool, "maintenance"), "yes", NULL);

        g_assert_cmpint(json_node_get_int(a), ==, 12);
        g_assert_cmpint(json_node_get_int(b), ==, 7);
        g_assert_cmpstr(json_node_get_string(c), ==, "t");
        g_assert_true(json_node_get_boolean(d));
        g_assert_null(model_value_from_text(resource_field(pool, "size"), "lots", &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_WRONG_TYPE);
}

/* Each vocabulary: every value round-trips through its word, the sentinel and unknown words
 * are refused, and the resource table's choices are the same tables (so SQL, JSON and C say
 * the same words). */
static void check_words(const char *what, const char *const *names, int last, const char *kind,
                        const char *field)
{
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

        g_test_message("%s", what);
        for (int i = 0; i < last; i++) {
                g_assert_nonnull(names[i]);
                g_assert_cmpstr(names[i], !=, "");
                g_assert_false(g_hash_table_contains(seen, names[i])); /* no word twice */
                g_hash_table_add(seen, (gpointer)names[i]);
        }
        g_assert_null(names[last]); /* NULL-terminated: usable as choices */
        if (kind) {
                const Field *f = resource_field(resource_by_kind(kind), field);
                g_assert_nonnull(f);
                g_assert_true(f->choices == names);
        }
}

#define CHECK_VOCAB(prefix, last, kind, field)                                                     \
        do {                                                                                       \
                check_words(#prefix, prefix##_names, last, kind, field);                           \
                for (int i = 0; i < (last); i++) {                                                 \
                        g_assert_cmpstr(prefix##_to_string(i), ==, prefix##_names[i]);             \
                        g_assert_cmpint(prefix##_from_string(prefix##_names[i]), ==, i);           \
                }                                                                                  \
                g_assert_cmpstr(prefix##_to_string(last), ==, "");                                 \
                g_assert_cmpint(prefix##_from_string("no such word"), ==, -1);                     \
                g_assert_cmpint(prefix##_from_string(NULL), ==, -1);                               \
        } while (0)

static void test_vocab(void)
{
        CHECK_VOCAB(desktop_state, DESKTOP_STATE_LAST, "desktop", "state");
        CHECK_VOCAB(host_state, HOST_STATE_LAST, "host", "state");
        CHECK_VOCAB(vm_state, VM_STATE_LAST, "guest", "state");
        CHECK_VOCAB(session_state, SESSION_STATE_LAST, "session", "state");
        CHECK_VOCAB(operation_state, OPERATION_STATE_LAST, "operation", "state");
        CHECK_VOCAB(console_protocol, PROTOCOL_LAST, "session", "protocol");
        CHECK_VOCAB(domain_state, DOMAIN_STATE_LAST, NULL, NULL);
        CHECK_VOCAB(agent_op, AGENT_OP_LAST, NULL, NULL);
        CHECK_VOCAB(reconcile_step, STEP_LAST, NULL, NULL);
        /* what console passwords and the error messages built from the tables say */
        g_assert_cmpuint(console_protocol_password_max(PROTOCOL_VNC), ==, 8);
        g_assert_cmpuint(console_protocol_password_max(PROTOCOL_SPICE), ==, 0);
        {
                g_autofree char *two = vocab_alternatives(console_protocol_names);
                g_autofree char *more = vocab_alternatives(session_state_names);
                static const char *const one[] = {"only", NULL};
                g_autofree char *single = vocab_alternatives(one);
                g_assert_cmpstr(two, ==, "spice or vnc");
                g_assert_cmpstr(more, ==, "connected, disconnected or ending");
                g_assert_cmpstr(single, ==, "only");
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/model/validate-golden", test_validate_golden);
        g_test_add_func("/model/resources-consistent", test_resources_consistent);
        g_test_add_func("/model/roles", test_roles);
        g_test_add_func("/model/value-from-text", test_value_from_text);
        g_test_add_func("/model/vocab", test_vocab);
        return g_test_run();
}
