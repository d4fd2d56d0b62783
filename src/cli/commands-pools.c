/* Long operations seen from the CLI: --wait follows an operation with a progress bar, and
 * 'pool show' adds the disk the pool's overlays save. */
#include "cli/cli.h"
#include "common/error.h"

#include <unistd.h>

static void bar(FILE *to, gint64 percent, const char *message, gboolean tty)
{
        char fill[31];
        gint64 n = CLAMP(percent, 0, 100) * 30 / 100;

        for (gint64 i = 0; i < 30; i++)
                fill[i] = i < n ? '#' : '.';
        fill[30] = '\0';
        fprintf(to, "%s[%s] %3" G_GINT64_FORMAT "%%  %s%s", tty ? "\r\033[K" : "", fill, percent,
                message, tty ? "" : "\n");
        fflush(to);
}

int cli_wait_operation(Client *c, gint64 id, guint timeout_s)
{
        g_autofree char *path = g_strdup_printf("/api/v1/operations/%" G_GINT64_FORMAT, id);
        gboolean tty = isatty(STDERR_FILENO);
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
        gint64 last_percent = -1;
        g_autofree char *last_message = NULL;

        for (;;) {
                g_autoptr(GError) error = NULL;
                g_autoptr(JsonNode) reply = NULL;
                JsonObject *o;
                const char *state, *message;
                gint64 percent;
                guint status;

                reply = client_call(c, "GET", path, NULL, &status, &error);
                if (!reply)
                        return out_error(error);
                o = json_node_get_object(reply);
                state = json_object_get_string_member(o, "state");
                message = json_object_get_string_member(o, "message");
                percent = json_object_get_int_member(o, "percent");
                if (!c->json && (percent != last_percent || g_strcmp0(message, last_message))) {
                        bar(stderr, percent, message, tty);
                        last_percent = percent;
                        g_free(last_message);
                        last_message = g_strdup(message);
                }
                if (!g_str_equal(state, "running")) {
                        if (tty && !c->json)
                                fputc('\n', stderr);
                        if (c->json)
                                out_json(reply);
                        if (g_str_equal(state, "failed")) {
                                fprintf(stderr, "atrium: operation %" G_GINT64_FORMAT
                                                " (%s) failed: %s\n",
                                        id, json_object_get_string_member(o, "kind"), message);
                                return EXIT_ERROR;
                        }
                        return EXIT_OK;
                }
                if (g_get_monotonic_time() > deadline) {
                        if (tty && !c->json)
                                fputc('\n', stderr);
                        fprintf(stderr,
                                "atrium: still running after %u s; follow it with 'atrium "
                                "operation show %" G_GINT64_FORMAT "'\n",
                                timeout_s, id);
                        return EXIT_ERROR;
                }
                g_usleep(300 * 1000);
        }
}

/* What a write answered about its operation: follow it with --wait, else say how. */
int cli_after_operation(Client *c, JsonObject *reply, gboolean wait)
{
        gint64 op = json_object_get_int_member_with_default(reply, "operation", 0);

        if (!op)
                return EXIT_OK;
        if (wait)
                return cli_wait_operation(c, op, 3600);
        if (!c->json)
                printf("Operation %" G_GINT64_FORMAT
                       " follows it: 'atrium operation show %" G_GINT64_FORMAT
                       "' (or add --wait)\n",
                       op, op);
        return EXIT_OK;
}

static void human(char *buf, gsize n, gint64 bytes)
{
        if (bytes >= (1LL << 30))
                g_snprintf(buf, n, "%.1f GiB", bytes / (double)(1LL << 30));
        else
                g_snprintf(buf, n, "%.1f MiB", bytes / (double)(1LL << 20));
}

/* After 'pool show': the disk its overlays use against a full copy per desktop. */
void cli_pool_disk(Client *c, JsonObject *pool)
{
        g_autofree char *path = g_strdup_printf("/api/v1/pools/%" G_GINT64_FORMAT "/disk",
                                                json_object_get_int_member(pool, "id"));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) reply = NULL;
        JsonObject *o;
        char used[32], full[32], saved[32];
        guint status;

        reply = client_call(c, "GET", path, NULL, &status, &error);
        if (!reply) {
                printf("%-16s (unknown: %s)\n", "disk", error->message);
                return;
        }
        o = json_node_get_object(reply);
        human(used, sizeof(used), json_object_get_int_member(o, "overlay_bytes"));
        human(full, sizeof(full), json_object_get_int_member(o, "full_copy_bytes"));
        human(saved, sizeof(saved), json_object_get_int_member(o, "saved_bytes"));
        printf("%-16s %s in %" G_GINT64_FORMAT " overlays; a full copy per desktop would take %s "
               "(%s, %" G_GINT64_FORMAT "%% saved)\n",
               "disk", used, json_object_get_int_member(o, "desktops"), full, saved,
               json_object_get_int_member(o, "saved_percent"));
}

void cli_session_timing(JsonObject *session)
{
        static const struct {
                const char *key, *what;
        } steps[] = {
                {"placed", "desktop chosen and assigned"},
                {"running", "desktop running"},
                {"ready", "atrium-guest ready"},
                {"ticket", "console ticket issued"},
                {"opened", "console opened"},
        };
        const char *text = json_object_get_string_member_with_default(session, "timing", "");
        g_autoptr(JsonParser) p = json_parser_new();
        JsonObject *t;
        gint64 last = 0;

        if (!text[0] || !json_parser_load_from_data(p, text, -1, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
                return;
        t = json_node_get_object(json_parser_get_root(p));
        printf("connect timing (ms after the request, step):\n");
        printf("  %8d  %s\n", 0, "requested");
        for (gsize i = 0; i < G_N_ELEMENTS(steps); i++) {
                gint64 v;
                if (!json_object_has_member(t, steps[i].key)) {
                        printf("  %8s  %s\n", "-", steps[i].what);
                        continue;
                }
                v = json_object_get_int_member(t, steps[i].key);
                printf("  %8" G_GINT64_FORMAT "  %s (+%" G_GINT64_FORMAT ")\n", v, steps[i].what,
                       v - last);
                last = v;
        }
}
