/* Command families. Each object family (pool, user, ...) gets list/show/create/update/delete,
 * with options made from its fields in proto/resources.c. */
#include "cli/cli.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

char *read_secret(const char *prompt, gboolean from_stdin)
{
        struct termios old, quiet;
        gboolean tty = !from_stdin && isatty(STDIN_FILENO);
        char buf[1100];

        if (tty) {
                fprintf(stderr, "%s", prompt);
                tcgetattr(STDIN_FILENO, &old);
                quiet = old;
                quiet.c_lflag &= ~ECHO;
                tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        if (!fgets(buf, sizeof(buf), stdin))
                buf[0] = '\0';
        if (tty) {
                tcsetattr(STDIN_FILENO, TCSANOW, &old);
                fprintf(stderr, "\n");
        }
        buf[strcspn(buf, "\r\n")] = '\0';
        {
                char *s = g_strdup(buf);
                memset(buf, 0, sizeof(buf));
                return s;
        }
}

static JsonNode *obj_node(JsonObject *o)
{
        JsonNode *n = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(n, o);
        return n;
}

/* ---- login / logout / whoami / passwd / role ------------------------------------------- */

int cmd_login(Client *c, int argc, char **argv)
{
        g_autofree char *user = NULL, *ca = NULL, *otp = NULL;
        gboolean insecure = FALSE, pw_stdin = FALSE;
        g_autoptr(GOptionContext) ctx = g_option_context_new("URL - log in to an Atrium manager");
        g_autoptr(GError) error = NULL;
        g_autofree char *password = NULL;
        g_autoptr(JsonNode) reply = NULL;
        JsonObject *body;
        guint status;
        const GOptionEntry entries[] = {
                {"user", 'u', 0, G_OPTION_ARG_STRING, &user, "User name (default admin)", "NAME"},
                {"password-stdin", 0, 0, G_OPTION_ARG_NONE, &pw_stdin,
                 "Read the password from standard input", NULL},
                {"insecure", 'k', 0, G_OPTION_ARG_NONE, &insecure,
                 "Do not check the server's TLS certificate", NULL},
                {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "Trust this CA/certificate file", "FILE"},
                {"otp", 0, 0, G_OPTION_ARG_STRING, &otp,
                 "One-time code (TOTP) or recovery code, when the account uses one; asked for "
                 "when needed otherwise",
                 "CODE"},
                {NULL},
        };

        g_option_context_add_main_entries(ctx, entries, NULL);
        g_option_context_set_description(ctx, "The token is kept in ~/.config/atrium/client.conf "
                                              "(mode 0600) until 'atrium logout'.");
        if (!g_option_context_parse(ctx, &argc, &argv, &error))
                return out_usage("login: %s", error->message);
        if (argc != 2)
                return out_usage("login: give the manager's URL, e.g. atrium login "
                                 "https://host:8444");
        if (!g_str_has_prefix(argv[1], "https://") && !g_str_has_prefix(argv[1], "http://"))
                return out_usage("login: '%s' is not an http(s):// URL", argv[1]);
        g_free(c->url);
        c->url = g_strdup(argv[1]);
        while (g_str_has_suffix(c->url, "/"))
                c->url[strlen(c->url) - 1] = '\0';
        if (ca) {
                g_free(c->ca_file);
                c->ca_file = g_canonicalize_filename(ca, NULL);
        }
        c->insecure = c->insecure || insecure;
        g_clear_pointer(&c->token, g_free);
        password = read_secret("Password: ", pw_stdin);
        body = json_object_new();
        json_object_set_string_member(body, "name", user ? user : "admin");
        json_object_set_string_member(body, "password", password);
        if (otp)
                json_object_set_string_member(body, "otp", otp);
        {
                g_autoptr(JsonNode) b = obj_node(body);
                reply = client_call(c, "POST", "/api/v1/auth/login", b, &status, &error);
        }
        /* The account uses TOTP: ask for the code (a terminal only) and try once more. */
        if (!reply && !otp && !pw_stdin && isatty(STDIN_FILENO) &&
            g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_OTP_REQUIRED)) {
                g_autofree char *code = read_secret("One-time code: ", FALSE);
                g_autoptr(JsonNode) b = NULL;
                g_clear_error(&error);
                json_object_set_string_member(body, "otp", code);
                b = obj_node(body);
                reply = client_call(c, "POST", "/api/v1/auth/login", b, &status, &error);
        }
        memset(password, 0, strlen(password));
        if (!reply)
                return out_error(error);
        c->token = g_strdup(json_object_get_string_member(json_node_get_object(reply), "token"));
        if (!client_save(c, &error))
                return out_error(error);
        if (c->json)
                out_json(reply);
        else
                printf("Logged in to %s as %s (token valid until %s)\n", c->url,
                       user ? user : "admin",
                       json_object_get_string_member(json_node_get_object(reply), "expires_at"));
        if (!c->json && json_object_get_boolean_member_with_default(
                                json_node_get_object(reply), "totp_enrolment_required", FALSE))
                printf("This account must use a one-time code: run 'atrium totp enrol' now "
                       "(until then nothing else is allowed).\n");
        return EXIT_OK;
}

int cmd_logout(Client *c, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        guint status;

        if (argc > 1)
                return out_usage("logout takes no arguments");
        if (c->token) {
                reply = client_call(c, "POST", "/api/v1/auth/logout", NULL, &status, &error);
                if (!reply && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED))
                        return out_error(error);
        }
        g_clear_pointer(&c->token, g_free);
        if (!client_save(c, &error))
                return out_error(error);
        if (!c->json)
                printf("Logged out\n");
        return EXIT_OK;
}

int cmd_whoami(Client *c, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        guint status;

        if (argc > 1)
                return out_usage("whoami takes no arguments");
        reply = client_call(c, "GET", "/api/v1/me", NULL, &status, &error);
        if (!reply)
                return out_error(error);
        if (c->json)
                out_json(reply);
        else
                out_object(json_node_get_object(reply));
        return EXIT_OK;
}

int cmd_passwd(Client *c, int argc, char **argv)
{
        gboolean pw_stdin = FALSE;
        g_autoptr(GOptionContext) ctx = g_option_context_new("- change your own password");
        g_autoptr(GError) error = NULL;
        g_autofree char *cur = NULL, *next = NULL, *again = NULL;
        g_autoptr(JsonNode) reply = NULL, b = NULL;
        JsonObject *body;
        guint status;
        const GOptionEntry entries[] = {
                {"password-stdin", 0, 0, G_OPTION_ARG_NONE, &pw_stdin,
                 "Read the current and the new password, one per line, from standard input", NULL},
                {NULL},
        };

        g_option_context_add_main_entries(ctx, entries, NULL);
        g_option_context_set_description(ctx, "Every login of yours ends: log in again after.");
        if (!g_option_context_parse(ctx, &argc, &argv, &error))
                return out_usage("passwd: %s", error->message);
        cur = read_secret("Current password: ", pw_stdin);
        next = read_secret("New password: ", pw_stdin);
        if (!pw_stdin && isatty(STDIN_FILENO)) {
                again = read_secret("New password again: ", FALSE);
                if (!g_str_equal(again, next))
                        return out_usage("passwd: the two new passwords differ");
        }
        body = json_object_new();
        json_object_set_string_member(body, "current_password", cur);
        json_object_set_string_member(body, "new_password", next);
        b = obj_node(body);
        reply = client_call(c, "PUT", "/api/v1/me/password", b, &status, &error);
        if (!reply)
                return out_error(error);
        g_clear_pointer(&c->token, g_free);
        client_save(c, NULL);
        if (!c->json)
                printf("Password changed; log in again with 'atrium login %s'\n", c->url);
        return EXIT_OK;
}

int cmd_role(Client *c, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        JsonArray *items;
        guint status;

        if (argc != 2 || !g_str_equal(argv[1], "list"))
                return out_usage("usage: atrium role list");
        reply = client_call(c, "GET", "/api/v1/roles", NULL, &status, &error);
        if (!reply)
                return out_error(error);
        if (c->json) {
                out_json(reply);
                return EXIT_OK;
        }
        items = json_object_get_array_member(json_node_get_object(reply), "items");
        for (guint i = 0; i < json_array_get_length(items); i++) {
                JsonObject *o = json_array_get_object_element(items, i);
                printf("%-9s %s\n", json_object_get_string_member(o, "name"),
                       json_object_get_string_member(o, "description"));
        }
        return EXIT_OK;
}

/* atrium totp enrol | confirm CODE | disable CODE: one's own TOTP second factor. */
int cmd_totp(Client *c, int argc, char **argv)
{
        g_autoptr(JsonNode) reply = NULL, b = NULL;
        g_autofree char *path = NULL;
        JsonObject *body = json_object_new();
        JsonArray *codes;
        int rc;

        b = obj_node(body);
        if (argc == 2 && g_str_equal(argv[1], "enrol")) {
                if (!(reply = client_call_text(c, "POST", "/api/v1/me/totp", b, &rc)))
                        return rc;
                printf("secret: %s\nuri:    %s\nAdd it to an authenticator app (the portal shows "
                       "it as a QR code), then: atrium totp confirm CODE\n",
                       json_object_get_string_member(json_node_get_object(reply), "secret"),
                       json_object_get_string_member(json_node_get_object(reply), "uri"));
                return EXIT_OK;
        }
        if (argc != 3 || !(g_str_equal(argv[1], "confirm") || g_str_equal(argv[1], "disable")))
                return out_usage("usage: atrium totp enrol | confirm CODE | disable CODE");
        json_object_set_string_member(body, "code", argv[2]);
        path = g_strdup_printf("/api/v1/me/totp/%s", argv[1]);
        reply = client_call_text(c, "POST", path, b, &rc);
        if (g_str_equal(argv[1], "disable")) { /* 204: no answer to print */
                if (rc == EXIT_OK && !c->json)
                        printf("TOTP is off\n");
                return rc;
        }
        if (!reply)
                return rc;
        printf("TOTP is on. Recovery codes (each works once; keep them safe, they are not shown "
               "again):\n");
        codes = json_object_get_array_member(json_node_get_object(reply), "recovery_codes");
        for (guint i = 0; i < json_array_get_length(codes); i++)
                printf("  %s\n", json_array_get_string_element(codes, i));
        return EXIT_OK;
}

/* atrium directory test --user NAME: how the directory resolves a user. */
int cmd_directory(Client *c, int argc, char **argv)
{
        g_autoptr(JsonNode) reply = NULL;
        g_autofree char *path = NULL, *esc = NULL;
        const char *user = NULL;
        JsonObject *o;
        JsonArray *a;
        int rc;

        if (argc == 4 && g_str_equal(argv[1], "test") && g_str_equal(argv[2], "--user"))
                user = argv[3];
        else if (argc == 3 && g_str_equal(argv[1], "test") && g_str_has_prefix(argv[2], "--user="))
                user = argv[2] + strlen("--user=");
        if (!user || !user[0])
                return out_usage("usage: atrium directory test --user NAME");
        esc = g_uri_escape_string(user, NULL, FALSE);
        path = g_strdup_printf("/api/v1/directory/test?user=%s", esc);
        if (!(reply = client_call_text(c, "GET", path, NULL, &rc)))
                return rc;
        o = json_node_get_object(reply);
        printf("directory: %s\nserver:  %s\ndn:      %s\nname:    %s\nmail:    %s\ngroups:\n",
               json_object_get_string_member_with_default(o, "directory", ""),
               json_object_get_string_member(o, "server"), json_object_get_string_member(o, "dn"),
               json_object_get_string_member(o, "display_name"),
               json_object_get_string_member(o, "mail"));
        a = json_object_get_array_member(o, "directory_groups");
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonObject *g = json_array_get_object_element(a, i);
                const char *via = json_object_get_string_member_with_default(g, "via", NULL);
                g_autofree char *through = via ? g_strdup_printf("  (through %s)", via) : NULL;
                printf("  %-20s %s%s\n", json_object_get_string_member(g, "name"),
                       json_object_get_string_member(g, "dn"), through ? through : "");
        }
        if (json_array_get_length(a) == 0)
                printf("  (none)\n");
        a = json_object_get_array_member(o, "atrium_groups");
        printf("atrium groups:");
        for (guint i = 0; i < json_array_get_length(a); i++)
                printf(" %s", json_array_get_string_element(a, i));
        printf("%s\npools:", json_array_get_length(a) ? "" : " (none)");
        a = json_object_get_array_member(o, "pools");
        for (guint i = 0; i < json_array_get_length(a); i++)
                printf(" %s", json_array_get_string_element(a, i));
        printf("%s\n", json_array_get_length(a) ? "" : " (none)");
        return EXIT_OK;
}

/* ---- object families --------------------------------------------------------------------- */

static const FamilyVerb *family_verbs(gsize *n);

static const FamilyVerb *family_verb(const Resource *res, const char *verb)
{
        gsize n;
        const FamilyVerb *v = family_verbs(&n);

        for (gsize i = 0; i < n; i++)
                if (g_str_equal(v[i].verb, verb) && (!v[i].applies || v[i].applies(res)))
                        return &v[i];
        return NULL;
}

char *cmd_family_verbs(const Resource *res)
{
        gsize n;
        const FamilyVerb *v = family_verbs(&n);
        GString *s = g_string_new(NULL);
        g_autofree char *extra = cmd_extra_verbs(res->cli);

        for (gsize i = 0; i < n; i++)
                if (!v[i].applies || v[i].applies(res))
                        g_string_append_printf(s, "%s%s", s->len ? " " : "", v[i].verb);
        g_string_append(s, extra);
        return g_string_free(s, FALSE);
}

void cmd_family_help(const Resource *res, FILE *to)
{
        gsize n;
        const FamilyVerb *v = family_verbs(&n);

        fprintf(to, "Usage: atrium %s COMMAND [ARGS]\n\n%s\n\nCommands:\n", res->cli, res->help);
        for (gsize i = 0; i < n; i++)
                if (!v[i].applies || v[i].applies(res))
                        fprintf(to, "  %s %s\n", v[i].verb, v[i].usage);
        cmd_extra_help(res, to);
        fprintf(to, "\nFields:\n");
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                g_autofree char *opt = g_strdup_printf("--%s", f->name);
                GString *flags = g_string_new(NULL);
                if (f->flags & F_REQUIRED)
                        g_string_append(flags, " required;");
                if (f->flags & F_READONLY)
                        g_string_append(flags, " read-only;");
                if (f->flags & F_IMMUTABLE)
                        g_string_append(flags, " set at create only;");
                if (f->flags & F_FILTER)
                        g_string_append(flags, " list filter;");
                if (f->def && f->def[0])
                        g_string_append_printf(flags, " default %s;", f->def);
                fprintf(to, "  %-18s %s (%s;%s)\n", opt, f->help, field_type_label(f), flags->str);
                g_string_free(flags, TRUE);
        }
        if (resource_field(res, "password"))
                fprintf(to, "  %-18s %s\n", "--password-stdin",
                        "Read the password from standard input instead of --password.");
        if (g_str_equal(res->kind, "template")) {
                fprintf(to, "  %-18s %s\n", "--from-guest G",
                        "create/update: freeze stopped guest G's disk as the next version (a "
                        "read-only base image in --volume made by a host).");
                fprintf(to, "  %-18s %s\n", "--seal",
                        "with --from-guest G running: atrium-guest seals it (machine ids, host "
                        "keys, boot counter, host name), it is shut down, then frozen.");
        }
        if (g_str_equal(res->kind, "pool") || g_str_equal(res->kind, "template"))
                fprintf(to, "  %-18s %s\n", "--wait",
                        "create/update/delete: follow the operation with a progress bar until "
                        "it ends.");
        fprintf(to, "\nGlobal options (before the family): --json, --url URL, --insecure, "
                    "--ca FILE.\n");
}

/* Parse "--field value" / "--field=value" pairs into a JSON object of the resource's fields. */
static gboolean parse_fields(const Resource *res, int argc, char **argv, gboolean filters,
                             JsonObject *out, GHashTable *extra, GError **error)
{
        for (int i = 0; i < argc; i++) {
                g_autofree char *name = NULL;
                const char *value, *eq;
                const Field *f;

                if (!g_str_has_prefix(argv[i], "--")) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "unexpected argument '%s'", argv[i]);
                        return FALSE;
                }
                eq = strchr(argv[i], '=');
                name = eq ? g_strndup(argv[i] + 2, eq - argv[i] - 2) : g_strdup(argv[i] + 2);
                g_strdelimit(name, "-", '_');
                if (extra && g_hash_table_contains(extra, name)) {
                        if (g_str_equal(name, "all") || g_str_equal(name, "password_stdin") ||
                            g_str_equal(name, "wait") || g_str_equal(name, "force") ||
                            g_str_equal(name, "seal")) {
                                g_hash_table_replace(extra, g_strdup(name), g_strdup("1"));
                                continue;
                        }
                }
                if (eq)
                        value = eq + 1;
                else if (i + 1 < argc)
                        value = argv[++i];
                else {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "option '--%s' needs a value", name);
                        return FALSE;
                }
                if (extra && g_hash_table_contains(extra, name)) {
                        g_hash_table_replace(extra, g_strdup(name), g_strdup(value));
                        continue;
                }
                f = resource_field(res, name);
                if (!f || (filters && !(f->flags & F_FILTER)) ||
                    (!filters && f->flags & F_READONLY)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "a %s has no %s '--%s' (see 'atrium %s --help')", res->kind,
                                    filters ? "filter" : "settable field", name, res->cli);
                        return FALSE;
                }
                if (filters) {
                        json_object_set_string_member(out, f->name, value);
                } else {
                        JsonNode *v = model_value_from_text(f, value, error);
                        if (!v)
                                return FALSE;
                        json_object_set_member(out, f->name, v);
                }
        }
        return TRUE;
}

static char *item_path(const Resource *res, const char *id)
{
        g_autofree char *esc = g_uri_escape_string(id, NULL, FALSE);
        return g_strdup_printf("/api/v1/%s/%s", res->plural, esc);
}

static int family_list(Client *c, const Resource *res, int argc, char **argv)
{
        g_autoptr(GHashTable) extra =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(JsonObject) filters = json_object_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonArray) all = json_array_new();
        g_autoptr(GString) query = g_string_new(NULL);
        g_autofree char *cursor = NULL;
        gboolean every;
        const char *limit;

        g_hash_table_insert(extra, g_strdup("limit"), NULL);
        g_hash_table_insert(extra, g_strdup("cursor"), NULL);
        g_hash_table_insert(extra, g_strdup("all"), NULL);
        if (!parse_fields(res, argc, argv, TRUE, filters, extra, &error))
                return out_usage("%s list: %s", res->cli, error->message);
        every = g_hash_table_lookup(extra, "all") != NULL;
        limit = g_hash_table_lookup(extra, "limit");
        cursor = g_strdup(g_hash_table_lookup(extra, "cursor"));
        {
                g_autoptr(GList) members = json_object_get_members(filters);
                for (GList *l = members; l; l = l->next) {
                        g_autofree char *v = g_uri_escape_string(
                                json_object_get_string_member(filters, l->data), NULL, FALSE);
                        g_string_append_printf(query, "&%s=%s", (char *)l->data, v);
                }
                if (limit) {
                        g_autofree char *v = g_uri_escape_string(limit, NULL, FALSE);
                        g_string_append_printf(query, "&limit=%s", v);
                }
        }
        for (;;) {
                g_autofree char *path = NULL;
                g_autoptr(JsonNode) reply = NULL;
                JsonObject *o;
                JsonArray *items;
                guint status;

                path = g_strdup_printf("/api/v1/%s?%s%s%s", res->plural, cursor ? "cursor=" : "",
                                       cursor ? cursor : "",
                                       query->len ? query->str + (cursor ? 0 : 1) : "");
                reply = client_call(c, "GET", path, NULL, &status, &error);
                if (!reply)
                        return out_error(error);
                o = json_node_get_object(reply);
                items = json_object_get_array_member(o, "items");
                for (guint i = 0; i < json_array_get_length(items); i++)
                        json_array_add_element(all,
                                               json_node_copy(json_array_get_element(items, i)));
                g_clear_pointer(&cursor, g_free);
                if (!json_object_get_null_member(o, "next_cursor"))
                        cursor = g_strdup(json_object_get_string_member(o, "next_cursor"));
                if (!every || !cursor)
                        break;
        }
        if (c->json) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();
                json_object_set_array_member(o, "items", json_array_ref(all));
                if (cursor)
                        json_object_set_string_member(o, "next_cursor", cursor);
                else
                        json_object_set_null_member(o, "next_cursor");
                json_node_take_object(n, o);
                out_json(n);
        } else {
                out_table(res, all);
                if (cursor)
                        printf("(more: --cursor %s, or --all)\n", cursor);
        }
        return EXIT_OK;
}

static int show_reply(Client *c, JsonNode *reply)
{
        if (c->json)
                out_json(reply);
        else if (JSON_NODE_HOLDS_OBJECT(reply))
                out_object(json_node_get_object(reply));
        return EXIT_OK;
}

static int family_write(Client *c, const Resource *res, const char *verb, int argc, char **argv)
{
        gboolean create = g_str_equal(verb, "create");
        g_autoptr(GHashTable) extra =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL, body = NULL;
        g_autofree char *path = NULL;
        JsonObject *values = json_object_new();
        guint status;

        body = obj_node(values);
        if (!create && (argc < 1 || g_str_has_prefix(argv[0], "--")))
                return out_usage("%s update: name the %s to change (ID or NAME)", res->cli,
                                 res->kind);
        if (resource_field(res, "password"))
                g_hash_table_insert(extra, g_strdup("password_stdin"), NULL);
        if (g_str_equal(res->kind, "template")) { /* a new version from a stopped guest */
                g_hash_table_insert(extra, g_strdup("from_guest"), NULL);
                g_hash_table_insert(extra, g_strdup("seal"), NULL); /* ... sealed first */
        }
        if (g_str_equal(res->kind, "pool") || g_str_equal(res->kind, "template"))
                g_hash_table_insert(extra, g_strdup("wait"), NULL); /* follow the operation */
        if (!parse_fields(res, create ? argc : argc - 1, create ? argv : argv + 1, FALSE, values,
                          extra, &error))
                return out_usage("%s %s: %s", res->cli, verb, error->message);
        if (g_hash_table_lookup(extra, "from_guest"))
                json_object_set_string_member(values, "from_guest",
                                              g_hash_table_lookup(extra, "from_guest"));
        if (g_hash_table_lookup(extra, "seal"))
                json_object_set_boolean_member(values, "seal", TRUE);
        if (g_hash_table_lookup(extra, "password_stdin")) {
                g_autofree char *pw = read_secret("Password: ", TRUE);
                json_object_set_string_member(values, "password", pw);
        }
        path = create ? g_strdup_printf("/api/v1/%s", res->plural) : item_path(res, argv[0]);
        reply = client_call(c, create ? "POST" : "PATCH", path, body, &status, &error);
        if (!reply)
                return out_error(error);
        if (!c->json) {
                JsonObject *o = json_node_get_object(reply);
                printf("%s %s %s (id %" G_GINT64_FORMAT ")\n", create ? "Created" : "Updated",
                       res->kind,
                       json_object_has_member(o, "name") ? json_object_get_string_member(o, "name")
                                                         : "",
                       json_object_get_int_member(o, "id"));
                return cli_after_operation(c, o, g_hash_table_lookup(extra, "wait") != NULL);
        }
        show_reply(c, reply);
        return cli_after_operation(c, json_node_get_object(reply),
                                   g_hash_table_lookup(extra, "wait") != NULL);
}

static int group_members(Client *c, const char *verb, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        g_autofree char *g = NULL, *u = NULL, *path = NULL;
        guint status;
        gboolean list = g_str_equal(verb, "members");

        if (argc != (list ? 1 : 2))
                return out_usage(list ? "usage: atrium group members GROUP"
                                      : "usage: atrium group %s GROUP USER",
                                 verb);
        g = g_uri_escape_string(argv[0], NULL, FALSE);
        if (list) {
                JsonArray *items;
                path = g_strdup_printf("/api/v1/groups/%s/members", g);
                reply = client_call(c, "GET", path, NULL, &status, &error);
                if (!reply)
                        return out_error(error);
                if (c->json)
                        return show_reply(c, reply);
                items = json_object_get_array_member(json_node_get_object(reply), "items");
                for (guint i = 0; i < json_array_get_length(items); i++)
                        printf("%s\n", json_object_get_string_member(
                                               json_array_get_object_element(items, i), "name"));
                if (json_array_get_length(items) == 0)
                        printf("(no members)\n");
                return EXIT_OK;
        }
        u = g_uri_escape_string(argv[1], NULL, FALSE);
        path = g_strdup_printf("/api/v1/groups/%s/members/%s", g, u);
        reply = client_call(c, g_str_equal(verb, "add-member") ? "PUT" : "DELETE", path, NULL,
                            &status, &error);
        if (!reply)
                return out_error(error);
        if (!c->json)
                printf("%s user %s %s group %s\n",
                       g_str_equal(verb, "add-member") ? "Added" : "Removed", argv[1],
                       g_str_equal(verb, "add-member") ? "to" : "from", argv[0]);
        return EXIT_OK;
}

int cmd_family(Client *c, const Resource *res, int argc, char **argv)
{
        const FamilyVerb *fv;
        const char *verb;

        if (argc < 2 || g_str_equal(argv[1], "--help") || g_str_equal(argv[1], "-h") ||
            g_str_equal(argv[1], "help")) {
                cmd_family_help(res, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        verb = argv[1];
        if (cmd_extra_has(res, verb)) {
                if (argc > 2 && (g_str_equal(argv[2], "--help") || g_str_equal(argv[2], "-h"))) {
                        cmd_family_help(res, stdout);
                        return EXIT_OK;
                }
                return cmd_extra(c, res, verb, argc - 2, argv + 2);
        }
        if (!(fv = family_verb(res, verb)))
                return out_usage("'%s' is not a command of 'atrium %s' (see 'atrium %s --help')",
                                 verb, res->cli, res->cli);
        for (int i = 2; i < argc; i++) {
                if (g_str_equal(argv[i], "--help") || g_str_equal(argv[i], "-h")) {
                        cmd_family_help(res, stdout);
                        return EXIT_OK;
                }
        }
        return fv->run(c, res, verb, argc - 2, argv + 2);
}

/* show ID|NAME, delete ID|NAME [--force] [--wait] */
static int family_item(Client *c, const Resource *res, const char *verb, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        g_autofree char *path = NULL;
        guint status;

        {
                gboolean wait = FALSE, force = FALSE;
                int n = 0;
                const char *target = NULL;
                for (int i = 0; i < argc; i++) {
                        if (g_str_equal(verb, "delete") && g_str_equal(argv[i], "--wait"))
                                wait = TRUE;
                        else if (g_str_equal(verb, "delete") && g_str_equal(res->kind, "pool") &&
                                 g_str_equal(argv[i], "--force"))
                                force = TRUE;
                        else if (!g_str_has_prefix(argv[i], "--") && n++ == 0)
                                target = argv[i];
                        else
                                n = 99;
                }
                if (!target || n != 1)
                        return out_usage("usage: atrium %s %s ID|NAME%s", res->cli, verb,
                                         g_str_equal(verb, "delete")
                                                 ? (g_str_equal(res->kind, "pool")
                                                            ? " [--force] [--wait]"
                                                            : " [--wait]")
                                                 : "");
                path = item_path(res, target);
                if (force) {
                        char *p = g_strconcat(path, "?force=true", NULL);
                        g_free(path);
                        path = p;
                }
                reply = client_call(c, g_str_equal(verb, "show") ? "GET" : "DELETE", path, NULL,
                                    &status, &error);
                if (error)
                        return out_error(error);
                if (g_str_equal(verb, "delete")) {
                        JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT(reply)
                                                ? json_node_get_object(reply)
                                                : NULL;
                        if (!c->json)
                                printf("%s %s %s\n", status == 202 ? "Deleting" : "Deleted",
                                       res->kind, target);
                        return o ? cli_after_operation(c, o, wait) : EXIT_OK;
                }
                if (!reply)
                        return EXIT_OK;
                show_reply(c, reply);
                if (g_str_equal(res->kind, "pool") && !c->json)
                        cli_pool_disk(c, json_node_get_object(reply));
                if (g_str_equal(res->kind, "session") && !c->json)
                        cli_session_timing(json_node_get_object(reply));
                return EXIT_OK;
        }
}

static gboolean writable(const Resource *res)
{
        return !res->read_only;
}

static gboolean creatable(const Resource *res)
{
        return !res->read_only && !res->no_create;
}

static gboolean updatable(const Resource *res)
{
        return !res->read_only && !res->no_update;
}

static gboolean is_group(const Resource *res)
{
        return g_str_equal(res->kind, "group");
}

static int family_list_verb(Client *c, const Resource *res, const char *verb, int argc, char **argv)
{
        return family_list(c, res, argc, argv);
}

static int group_members_verb(Client *c, const Resource *res, const char *verb, int argc,
                              char **argv)
{
        return group_members(c, verb, argc, argv);
}

/* The generic verbs of every object family (the extras of some are in commands-hosts.c): help,
 * completion and dispatch come from here. */
static const FamilyVerb verbs[] = {
        {"list", "[--FIELD VALUE]... [--limit N] [--cursor C] [--all]", NULL, family_list_verb},
        {"show", "ID|NAME", NULL, family_item},
        {"create", "--FIELD VALUE ...", creatable, family_write},
        {"update", "ID|NAME --FIELD VALUE ...", updatable, family_write},
        {"delete", "ID|NAME", writable, family_item},
        {"members", "GROUP", is_group, group_members_verb},
        {"add-member", "GROUP USER", is_group, group_members_verb},
        {"remove-member", "GROUP USER", is_group, group_members_verb},
};

static const FamilyVerb *family_verbs(gsize *n)
{
        *n = G_N_ELEMENTS(verbs);
        return verbs;
}
