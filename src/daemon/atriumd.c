/* atriumd: parse options, build the roles, run the loop. */
#define G_LOG_DOMAIN "atriumd"

#include "common/config.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/api.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
        GMainLoop *loop;
        Manager *mgr;
        char *config_path;
        gboolean config_given;
        const char *state_dir; /* command-line overrides, applied on every load */
        const char *listen;
} Daemon;

static gboolean on_term(gpointer data)
{
        Daemon *d = data;

        g_info("stopping on signal");
        g_main_loop_quit(d->loop);
        return G_SOURCE_CONTINUE;
}

static gboolean load_config(Daemon *d, Config *c, GError **error)
{
        if ((d->config_given || g_file_test(d->config_path, G_FILE_TEST_EXISTS)) &&
            !config_load_file(c, d->config_path, error))
                return FALSE;
        return (!d->state_dir || config_set(c, "daemon", "state_dir", d->state_dir, error)) &&
               (!d->listen || config_set(c, "manager", "listen", d->listen, error));
}

static gboolean on_hup(gpointer data)
{
        Daemon *d = data;
        g_autoptr(Config) next = config_new();
        g_autoptr(GError) error = NULL;

        if (!load_config(d, next, &error)) {
                g_warning("reload refused, keeping the running configuration: %s", error->message);
                return G_SOURCE_CONTINUE;
        }
        manager_reload(d->mgr, next);
        return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
        g_autofree char *config_path = NULL, *state_dir = NULL, *listen = NULL;
        g_autofree char *state_dir_used = NULL;
        gboolean print_config = FALSE, print_openapi = FALSE, version = FALSE;
        gboolean role_manager = FALSE;
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) ctx = NULL;
        g_autoptr(Config) config = config_new();
        g_autoptr(Manager) mgr = NULL;
        Daemon d = {0};
        int lock_fd;
        const GOptionEntry entries[] = {
                {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                 "Configuration file (default " ATRIUM_DEFAULT_CONFIG ")", "FILE"},
                {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
                 "State directory (overrides daemon.state_dir)", "DIR"},
                {"listen", 0, 0, G_OPTION_ARG_STRING, &listen,
                 "API address (overrides manager.listen)", "HOST:PORT"},
                {"role-manager", 0, 0, G_OPTION_ARG_NONE, &role_manager,
                 "Run the manager role (the default; agent and gateway roles come later)", NULL},
                {"print-config", 0, 0, G_OPTION_ARG_NONE, &print_config,
                 "Print the commented sample configuration and exit", NULL},
                {"print-openapi", 0, 0, G_OPTION_ARG_NONE, &print_openapi,
                 "Print the OpenAPI document of the REST API and exit", NULL},
                {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit",
                 NULL},
                {NULL},
        };

        setlocale(LC_ALL, "");
        ctx = g_option_context_new("- Atrium VDI daemon");
        g_option_context_set_summary(
                ctx, "Runs the Atrium manager: state store and REST API over HTTPS.\n"
                     "With no role flags every role built so far runs in this one process.");
        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "atriumd: %s (try --help)\n", error->message);
                return 2;
        }
        if (version) {
                printf("atriumd %s\n", ATRIUM_VERSION);
                return 0;
        }
        if (print_config) {
                g_autofree char *s = config_sample();
                fputs(s, stdout);
                return 0;
        }
        if (print_openapi) {
                g_autoptr(JsonNode) doc = openapi_document();
                g_autofree char *s = json_node_to_text(doc, TRUE);
                printf("%s\n", s);
                return 0;
        }
        d.config_given = config_path != NULL;
        d.config_path = config_path ? config_path : g_strdup(ATRIUM_DEFAULT_CONFIG);
        config_path = NULL;
        d.state_dir = state_dir;
        d.listen = listen;
        if (!load_config(&d, config, &error) ||
            !log_setup(config_get_string(config, "daemon", "log_level"),
                       config_get_string(config, "daemon", "log_target"), &error)) {
                fprintf(stderr, "atriumd: %s\n", error->message);
                g_free(d.config_path);
                return 1;
        }
        state_dir_used = g_strdup(config_get_string(config, "daemon", "state_dir"));
        if (g_mkdir_with_parents(state_dir_used, 0700) < 0) {
                fprintf(stderr, "atriumd: cannot create state directory '%s': %s\n", state_dir_used,
                        g_strerror(errno));
                g_free(d.config_path);
                return 1;
        }
        lock_fd = util_pidfile_lock(state_dir_used, &error);
        if (lock_fd < 0) {
                fprintf(stderr, "atriumd: %s\n", error->message);
                g_free(d.config_path);
                return 1;
        }
        mgr = manager_new(config, state_dir_used, &error);
        if (!mgr || !manager_start(mgr, &error)) {
                fprintf(stderr, "atriumd: cannot start: %s\n", error->message);
                g_free(d.config_path);
                return 1;
        }
        g_steal_pointer(&config); /* owned by mgr from here; freed below */
        d.mgr = mgr;
        d.loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGTERM, on_term, &d);
        g_unix_signal_add(SIGINT, on_term, &d);
        g_unix_signal_add(SIGHUP, on_hup, &d);
        g_info("atriumd %s started (pid %d, state %s)", ATRIUM_VERSION, (int)getpid(),
               state_dir_used);
        g_main_loop_run(d.loop);
        g_main_loop_unref(d.loop);
        {
                Config *c = mgr->config;
                g_clear_pointer(&mgr, manager_free);
                config_free(c);
        }
        g_autofree char *pidfile = g_build_filename(state_dir_used, "atriumd.pid", NULL);
        g_unlink(pidfile);
        close(lock_fd);
        g_free(d.config_path);
        g_info("stopped");
        return 0;
}
