/* Commands beyond list/show/create/update/delete: hosts (join tokens, maintenance, remove),
 * guests' lifecycle and consoles, and the listings a host makes (volume images, media ISOs).
 * Each is one row of the table below: its family, verb, options and the request it makes. */
#include "cli/cli.h"
#include "common/error.h"

#include <string.h>

typedef enum { OPT_TEXT, OPT_INT, OPT_FLAG } OptType;

typedef struct {
        const char *name; /* --name; the body member has '-' as '_' */
        OptType type;
        const char *help;
} Opt;

typedef struct {
        const char *family;
        const char *verb;
        const char *method;
        const char *path, *suffix; /* path + the object (ID|NAME) + suffix */
        const char *args;          /* usage after the verb */
        const char *help;
        Opt opts[4];
} Extra;

static const Extra extras[] = {
        {"host", "join-token", NULL, NULL, NULL, "create [--ttl SECONDS] | list | delete ID",
         "Issue, list or revoke single-use join tokens for new hosts."},
        {"host",
         "maintenance",
         "PUT",
         "/api/v1/hosts/",
         "/maintenance",
         "HOST on|off [--drain [--force]] [--wait]",
         "No new guests or desktops are placed on a host in maintenance; with --drain what runs "
         "there is live-migrated to other hosts (what cannot move stays, and is listed).",
         {{"drain", OPT_FLAG, "migrate its running desktops and guests away"},
          {"force", OPT_FLAG, "with --drain: shut down what cannot move"},
          {"wait", OPT_FLAG, "follow the drain until the host is empty"}}},
        {"host",
         "fence",
         "POST",
         "/api/v1/hosts/",
         "/fence",
         "HOST --yes",
         "Declare a host down now (you powered it off or cut it off for sure): its desktops are "
         "started on other hosts at once.",
         {{"yes", OPT_FLAG, "the host is off: go ahead"}}},
        {"host", "remove", "DELETE", "/api/v1/hosts/", "", "HOST",
         "Remove a host: its agent's credential stops working (join again with a new token)."},
        {"guest",
         "start",
         "POST",
         "/api/v1/guests/",
         "/start",
         "GUEST [--host HOST]",
         "Define the guest on a host and start it.",
         {{"host", OPT_TEXT, "host to start it on (default: its own, else the freest)"}}},
        {"guest",
         "stop",
         "POST",
         "/api/v1/guests/",
         "/stop",
         "GUEST [--timeout S] [--force]",
         "ACPI shutdown, powered off after the timeout (default 60 s) or at once with --force.",
         {{"timeout", OPT_INT, "seconds to wait for the guest to shut down"},
          {"force", OPT_FLAG, "power off at once"}}},
        {"guest", "reboot", "POST", "/api/v1/guests/", "/reboot", "GUEST", "ACPI reboot."},
        {"guest", "reset", "POST", "/api/v1/guests/", "/reset", "GUEST", "Hard reset."},
        {"guest", "destroy", "POST", "/api/v1/guests/", "/destroy", "GUEST", "Power off at once."},
        {"guest",
         "console",
         "POST",
         "/api/v1/guests/",
         "/console",
         "GUEST [--protocol spice|vnc] [--ttl S]",
         "Set a one-time console password and print where to connect.",
         {{"protocol", OPT_TEXT, "spice (default) or vnc"},
          {"ttl", OPT_INT, "seconds the password stays valid (default 60)"}}},
        {"guest",
         "attach-iso",
         "POST",
         "/api/v1/guests/",
         "/attach-iso",
         "GUEST --iso FILE [--media STORAGE]",
         "Put an ISO in the guest's CD-ROM drive.",
         {{"iso", OPT_TEXT, "ISO file name in the media storage"},
          {"media", OPT_TEXT, "media storage (default: the guest's)"}}},
        {"guest",
         "tools",
         "POST",
         "/api/v1/guests/",
         "/tools",
         "GUEST --op OP [--hostname H]",
         "Ask atrium-guest in the running guest: ping, set-hostname, logoff, reboot, shutdown, "
         "seal (before making a template).",
         {{"op", OPT_TEXT, "the request"}, {"hostname", OPT_TEXT, "for set-hostname"}}},
        {"guest", "eject", "POST", "/api/v1/guests/", "/eject", "GUEST", "Empty the CD-ROM drive."},
        {"guest",
         "migrate",
         "POST",
         "/api/v1/guests/",
         "/migrate",
         "GUEST [--to HOST] [--wait]",
         "Live-migrate the running guest to another host (it keeps running; the scheduler "
         "chooses the host unless --to names one).",
         {{"to", OPT_TEXT, "destination host"},
          {"wait", OPT_FLAG, "follow the migration with a progress bar until it ends"}}},
        {"desktop", "start", "POST", "/api/v1/desktops/", "/start", "DESKTOP",
         "Start the desktop on its host."},
        {"desktop",
         "stop",
         "POST",
         "/api/v1/desktops/",
         "/stop",
         "DESKTOP [--timeout S] [--force]",
         "ACPI shutdown, powered off after the timeout (default 60 s) or at once with --force.",
         {{"timeout", OPT_INT, "seconds to wait for the desktop to shut down"},
          {"force", OPT_FLAG, "power off at once"}}},
        {"desktop", "reboot", "POST", "/api/v1/desktops/", "/reboot", "DESKTOP", "ACPI reboot."},
        {"desktop", "reset", "POST", "/api/v1/desktops/", "/reset", "DESKTOP",
         "Hard reset (power cycle; its disk is kept)."},
        {"desktop", "destroy", "POST", "/api/v1/desktops/", "/destroy", "DESKTOP",
         "Power off at once."},
        {"desktop",
         "console",
         "POST",
         "/api/v1/desktops/",
         "/console",
         "DESKTOP [--protocol spice|vnc] [--ttl S]",
         "Set a one-time console password and print where to connect.",
         {{"protocol", OPT_TEXT, "spice (default) or vnc"},
          {"ttl", OPT_INT, "seconds the password stays valid (default 60)"}}},
        {"desktop",
         "tools",
         "POST",
         "/api/v1/desktops/",
         "/tools",
         "DESKTOP --op OP [--hostname H]",
         "Ask atrium-guest in the running desktop: ping, set-hostname, logoff, reboot, shutdown.",
         {{"op", OPT_TEXT, "the request"}, {"hostname", OPT_TEXT, "for set-hostname"}}},
        {"desktop",
         "recompose",
         "POST",
         "/api/v1/desktops/",
         "/recompose",
         "DESKTOP --yes [--wait]",
         "Make the desktop's system disk anew on its pool's newest template version: CHANGES "
         "MADE ON IT ARE LOST (a persistent desktop keeps its user). Also retries a failed "
         "desktop.",
         {{"yes", OPT_FLAG, "go ahead although the disk's changes are lost"},
          {"wait", OPT_FLAG, "follow the operation until it ends"}}},
        {"desktop",
         "migrate",
         "POST",
         "/api/v1/desktops/",
         "/migrate",
         "DESKTOP [--to HOST] [--wait]",
         "Live-migrate the running desktop to another host: its user keeps working, the console "
         "reconnects by itself (the scheduler chooses the host unless --to names one).",
         {{"to", OPT_TEXT, "destination host"},
          {"wait", OPT_FLAG, "follow the migration with a progress bar until it ends"}}},
        {"operation", "cancel", "POST", "/api/v1/operations/", "/cancel", "OPERATION",
         "Cancel a migration (the desktop keeps running where it was) or a host's drain (it "
         "stays in maintenance)."},
        {"session", "end", "POST", "/api/v1/sessions/", "/end", "SESSION",
         "End a session: atrium-guest logs its user off, the desktop shuts down (a stateless "
         "one is then reset)."},
        {"session", "disconnect", "POST", "/api/v1/sessions/", "/disconnect", "SESSION",
         "Drop the session's console clients; the session stays for a reconnect."},
        {"terminal", "key", "POST", "/api/v1/terminals/", "/key", "TERMINAL",
         "Issue a new key for the terminal (printed once; the older key stops working)."},
        {"pool",
         "connect",
         "POST",
         "/api/v1/pools/",
         "/connect",
         "POOL [--protocol spice|vnc] [--terminal T --terminal-key K]",
         "Connect to a pool you are entitled to: prints the desktop, the browser console URL "
         "and writes nothing else (use --json for the .vv file and the ticket).",
         {{"protocol", OPT_TEXT, "spice (default) or vnc"},
          {"terminal", OPT_TEXT, "the registered terminal connecting"},
          {"terminal-key", OPT_TEXT, "its key"}}},
        {"volume", "images", "GET", "/api/v1/volumes/", "/images", "VOLUME",
         "Disk images of a volume, their backing files and the free space (asked of a host)."},
        {"media", "isos", "GET", "/api/v1/media/", "/isos", "MEDIA",
         "ISO images of a media storage (asked of a host)."},
};

static const Extra *find_extra(const char *family, const char *verb)
{
        for (gsize i = 0; i < G_N_ELEMENTS(extras); i++)
                if (g_str_equal(extras[i].family, family) && g_str_equal(extras[i].verb, verb))
                        return &extras[i];
        return NULL;
}

char *cmd_extra_verbs(const char *family)
{
        GString *v = g_string_new(NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(extras); i++)
                if (g_str_equal(extras[i].family, family))
                        g_string_append_printf(v, " %s", extras[i].verb);
        return g_string_free(v, FALSE);
}

gboolean cmd_extra_has(const Resource *res, const char *verb)
{
        return res->cli && find_extra(res->cli, verb) != NULL;
}

void cmd_extra_help(const Resource *res, FILE *to)
{
        for (gsize i = 0; i < G_N_ELEMENTS(extras); i++) {
                const Extra *e = &extras[i];
                if (!res->cli || !g_str_equal(e->family, res->cli))
                        continue;
                fprintf(to, "  %s %s\n      %s\n", e->verb, e->args, e->help);
                for (gsize k = 0; k < G_N_ELEMENTS(e->opts) && e->opts[k].name; k++)
                        fprintf(to, "      --%-10s %s\n", e->opts[k].name, e->opts[k].help);
        }
}

static int print_reply(Client *c, const Extra *e, const char *what, JsonNode *reply)
{
        JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT(reply) ? json_node_get_object(reply) : NULL;

        if (c->json && reply) {
                out_json(reply);
                return EXIT_OK;
        }
        if (g_str_equal(e->verb, "console") && o) {
                printf("%s://%s:%" G_GINT64_FORMAT "\npassword: %s\nvalid until: %" G_GINT64_FORMAT
                       " (Unix time; once)\n",
                       json_object_get_string_member(o, "protocol"),
                       json_object_get_string_member(o, "host"),
                       json_object_get_int_member(o, "port"),
                       json_object_get_string_member(o, "password"),
                       json_object_get_int_member(o, "expires_at"));
        } else if (g_str_equal(e->verb, "images") && o) {
                JsonArray *a = json_object_get_array_member(o, "images");
                printf("%-32s %-6s %12s  %s\n", "NAME", "FORMAT", "BYTES", "BACKING");
                for (guint i = 0; a && i < json_array_get_length(a); i++) {
                        JsonObject *im = json_array_get_object_element(a, i);
                        JsonNode *b = json_object_get_member(im, "backing");
                        printf("%-32s %-6s %12" G_GINT64_FORMAT "  %s\n",
                               json_object_get_string_member(im, "name"),
                               json_object_get_string_member(im, "format"),
                               json_object_get_int_member(im, "bytes"),
                               b && !JSON_NODE_HOLDS_NULL(b) ? json_node_get_string(b) : "-");
                }
                printf("free: %" G_GINT64_FORMAT " MiB\n",
                       json_object_get_int_member_with_default(o, "free_bytes", 0) >> 20);
        } else if (g_str_equal(e->verb, "isos") && o) {
                JsonArray *a = json_object_get_array_member(o, "isos");
                for (guint i = 0; a && i < json_array_get_length(a); i++) {
                        JsonObject *im = json_array_get_object_element(a, i);
                        printf("%-40s %12" G_GINT64_FORMAT "\n",
                               json_object_get_string_member(im, "name"),
                               json_object_get_int_member(im, "bytes"));
                }
                if (!a || json_array_get_length(a) == 0)
                        printf("(no ISO images)\n");
        } else if (g_str_equal(e->verb, "key") && o) {
                printf("terminal %s key (shown once): %s\n",
                       json_object_get_string_member(o, "terminal"),
                       json_object_get_string_member(o, "key"));
        } else if (g_str_equal(e->verb, "connect") && o) {
                printf("desktop: %s\nsession: %" G_GINT64_FORMAT "\nconsole: %s\n",
                       json_object_get_string_member(o, "desktop"),
                       json_object_get_int_member(o, "session"),
                       json_object_get_string_member(o, "console_url"));
        } else if (!o) {
                printf("%s %s: done\n", e->family, what);
        } else if (o && json_object_has_member(o, "state")) {
                printf("%s %s: %s\n", e->family, what, json_object_get_string_member(o, "state"));
        } else {
                printf("%s %s: done\n", e->family, what);
        }
        return EXIT_OK;
}

static int join_token(Client *c, int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        guint status;

        if (argc >= 1 && g_str_equal(argv[0], "create")) {
                JsonObject *b = json_object_new();
                g_autoptr(JsonNode) body = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o;
                int rc;
                json_node_take_object(body, b);
                if (argc == 3 && g_str_equal(argv[1], "--ttl")) {
                        gint64 ttl;
                        if (!g_ascii_string_to_signed(argv[2], 10, 1, G_MAXINT32, &ttl, NULL))
                                return out_usage("--ttl takes seconds, not '%s'", argv[2]);
                        json_object_set_int_member(b, "ttl_seconds", ttl);
                } else if (argc != 1) {
                        return out_usage("usage: atrium host join-token create [--ttl SECONDS]");
                }
                if (!(reply = client_call_text(c, "POST", "/api/v1/join-tokens", body, &rc)))
                        return rc;
                o = json_node_get_object(reply);
                printf("Join token (works once, until %" G_GINT64_FORMAT "): %s\n\n"
                       "On the new host, run:\n  %s\n",
                       json_object_get_int_member(o, "expires_at"),
                       json_object_get_string_member(o, "token"),
                       json_object_get_string_member(o, "command"));
                return EXIT_OK;
        }
        if (argc == 1 && g_str_equal(argv[0], "list")) {
                reply = client_call(c, "GET", "/api/v1/join-tokens?limit=1000", NULL, &status,
                                    &error);
                if (!reply)
                        return out_error(error);
                if (c->json)
                        out_json(reply);
                else
                        out_table(
                                resource_by_kind("join-token"),
                                json_object_get_array_member(json_node_get_object(reply), "items"));
                return EXIT_OK;
        }
        if (argc == 2 && g_str_equal(argv[0], "delete")) {
                g_autofree char *esc = g_uri_escape_string(argv[1], NULL, FALSE);
                g_autofree char *path = g_strconcat("/api/v1/join-tokens/", esc, NULL);
                reply = client_call(c, "DELETE", path, NULL, &status, &error);
                if (error)
                        return out_error(error);
                if (!c->json)
                        printf("Revoked join token %s\n", argv[1]);
                return EXIT_OK;
        }
        return out_usage("usage: atrium host join-token create [--ttl SECONDS] | list | delete ID");
}

static const Opt *find_opt(const Extra *e, const char *name)
{
        for (gsize k = 0; k < G_N_ELEMENTS(e->opts) && e->opts[k].name; k++)
                if (g_str_equal(e->opts[k].name, name))
                        return &e->opts[k];
        return NULL;
}

int cmd_extra(Client *c, const Resource *res, const char *verb, int argc, char **argv)
{
        const Extra *e = find_extra(res->cli, verb);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL, body = NULL;
        g_autofree char *esc = NULL, *path = NULL;
        JsonObject *b;
        guint status;
        int i = 1;
        gboolean wait = FALSE;

        if (g_str_equal(verb, "join-token"))
                return join_token(c, argc, argv);
        if (argc < 1 || g_str_has_prefix(argv[0], "--"))
                return out_usage("usage: atrium %s %s %s", e->family, e->verb, e->args);
        b = json_object_new();
        body = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(body, b);
        if (g_str_equal(verb, "maintenance")) {
                if (argc < 2 || (!g_str_equal(argv[1], "on") && !g_str_equal(argv[1], "off")))
                        return out_usage("usage: atrium host maintenance %s", e->args);
                json_object_set_boolean_member(b, "maintenance", g_str_equal(argv[1], "on"));
                i = 2;
        }
        for (; i < argc; i++) {
                const Opt *o = g_str_has_prefix(argv[i], "--") ? find_opt(e, argv[i] + 2) : NULL;
                g_autofree char *key = NULL;
                gint64 v;
                if (!o)
                        return out_usage("'%s' is not an option of 'atrium %s %s' (usage: %s %s)",
                                         argv[i], e->family, e->verb, e->verb, e->args);
                key = g_strdelimit(g_strdup(o->name), "-", '_');
                if (o->type == OPT_FLAG) {
                        json_object_set_boolean_member(b, key, TRUE);
                        continue;
                }
                if (i + 1 >= argc)
                        return out_usage("option '--%s' needs a value", o->name);
                if (o->type == OPT_TEXT) {
                        json_object_set_string_member(b, key, argv[++i]);
                } else if (g_ascii_string_to_signed(argv[i + 1], 10, G_MININT64, G_MAXINT64, &v,
                                                    NULL)) {
                        json_object_set_int_member(b, key, v);
                        i++;
                } else {
                        return out_usage("option '--%s' takes a whole number, not '%s'", o->name,
                                         argv[i + 1]);
                }
        }
        if (g_str_equal(verb, "recompose")) {
                gboolean yes = json_object_get_boolean_member_with_default(b, "yes", FALSE);
                wait = json_object_get_boolean_member_with_default(b, "wait", FALSE);
                json_object_remove_member(b, "yes");
                json_object_remove_member(b, "wait");
                if (!yes) {
                        fprintf(stderr,
                                "atrium: recompose makes desktop %s's system disk anew from its "
                                "template: every change made on it is lost. Add --yes to go "
                                "ahead.\n",
                                argv[0]);
                        return EXIT_ERROR;
                }
        }
        if (g_str_equal(verb, "migrate") || g_str_equal(verb, "maintenance")) {
                wait = json_object_get_boolean_member_with_default(b, "wait", FALSE);
                json_object_remove_member(b, "wait");
        }
        if (g_str_equal(verb, "fence") &&
            !json_object_get_boolean_member_with_default(b, "yes", FALSE)) {
                fprintf(stderr,
                        "atrium: fencing declares host %s down at once and starts its desktops on "
                        "other hosts. Do it only when the host is powered off or cut off from the "
                        "storage: the disks' locks refuse a second start while its QEMUs live. "
                        "Add --yes to go ahead.\n",
                        argv[0]);
                return EXIT_ERROR;
        }
        esc = g_uri_escape_string(argv[0], NULL, FALSE);
        path = g_strconcat(e->path, esc, e->suffix, NULL);
        reply = client_call(
                c, e->method, path,
                g_str_equal(e->method, "GET") || g_str_equal(e->method, "DELETE") ? NULL : body,
                &status, &error);
        if (error)
                return out_error(error);
        if (g_str_equal(verb, "remove")) {
                if (!c->json)
                        printf("Removed host %s\n", argv[0]);
                return EXIT_OK;
        }
        if (g_str_equal(verb, "recompose") && reply) {
                JsonObject *o = json_node_get_object(reply);
                if (!c->json)
                        printf("Recomposing desktop %s: %s\n", argv[0],
                               json_object_get_string_member_with_default(o, "warning", ""));
                return cli_after_operation(c, o, wait);
        }
        if (g_str_equal(verb, "migrate") && reply) {
                JsonObject *o = json_node_get_object(reply);
                g_autoptr(JsonObject) ref = json_object_new();
                if (!c->json)
                        printf("Migrating %s %s: %s\n", e->family, argv[0],
                               json_object_get_string_member_with_default(o, "message", ""));
                else if (!wait)
                        out_json(reply);
                json_object_set_int_member(ref, "operation",
                                           json_object_get_int_member_with_default(o, "id", 0));
                return cli_after_operation(c, ref, wait);
        }
        if (g_str_equal(verb, "maintenance") && reply &&
            json_object_has_member(json_node_get_object(reply), "operation")) {
                JsonObject *o = json_node_get_object(reply);
                if (!c->json)
                        printf("Host %s is in maintenance; draining it\n", argv[0]);
                else if (!wait)
                        out_json(reply);
                return cli_after_operation(c, o, wait);
        }
        return print_reply(c, e, argv[0], reply);
}
