/* atriumd: parse options, build the roles, run the loop. */
#define G_LOG_DOMAIN "atriumd"

#include "common/config.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "agent/agent.h"
#include "manager/api.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
        GMainLoop *loop;
        Manager *mgr;
        int exit_code;
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
        if (d->mgr)
                manager_reload(d->mgr, next);
        return G_SOURCE_CONTINUE;
}

static void on_agent_fatal(const char *message, gpointer data)
{
        Daemon *d = data;

        g_warning("%s", message);
        fprintf(stderr, "atriumd: %s\n", message);
        d->exit_code = 1;
        g_main_loop_quit(d->loop);
}

/* The agent role: join first when a token is given, then link. */
static Agent *start_agent(Daemon *d, Config *config, const char *state_dir, char **managers,
                          const char *fingerprint, const char *token, GError **error)
{
        g_autoptr(Agent) a = agent_new(config, state_dir, on_agent_fatal, d, error);
        g_auto(GStrv) conf_managers = NULL;

        if (!a)
                return NULL;
        if (!managers || !managers[0]) {
                conf_managers = g_strsplit_set(config_get_string(config, "agent", "manager"),
                                               ", ", -1);
                GStrvBuilder *b = g_strv_builder_new();
                for (char **m = conf_managers; *m; m++)
                        if (**m)
                                g_strv_builder_add(b, *m);
                g_strfreev(conf_managers);
                conf_managers = g_strv_builder_end(b);
                g_strv_builder_unref(b);
                managers = conf_managers;
        }
        if (!fingerprint || !fingerprint[0])
                fingerprint = config_get_string(config, "agent", "manager_fingerprint");
        if (token) {
                if (!agent_join(a, (const char *const *)managers, fingerprint, token, error))
                        return NULL;
        } else if (!agent_joined(a)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "this host has not joined a manager yet: run once with "
                            "--manager URL --join-token TOKEN (an admin issues one with "
                            "'atrium host join-token create')");
                return NULL;
        }
        if (!agent_start(a, error))
                return NULL;
        return g_steal_pointer(&a);
}

int main(int argc, char **argv)
{
        g_autofree char *config_path = NULL, *state_dir = NULL, *listen = NULL;
        g_autofree char *state_dir_used = NULL;
        gboolean print_config = FALSE, print_openapi = FALSE, version = FALSE;
        g_auto(GStrv) roles = NULL, managers = NULL;
        g_autofree char *join_token = NULL, *fingerprint = NULL;
        gboolean run_manager = FALSE, run_agent = FALSE;
        g_autoptr(Agent) agent = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) ctx = NULL;
        g_autoptr(Config) config = config_new();
        Manager *mgr = NULL;
        Daemon d = {0};
        int lock_fd;
        const GOptionEntry entries[] = {
                {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                 "Configuration file (default " ATRIUM_DEFAULT_CONFIG ")", "FILE"},
                {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
                 "State directory (overrides daemon.state_dir)", "DIR"},
                {"listen", 0, 0, G_OPTION_ARG_STRING, &listen,
                 "API address (overrides manager.listen)", "HOST:PORT"},
                {"role", 'r', 0, G_OPTION_ARG_STRING_ARRAY, &roles,
                 "Role to run: manager (the default) or agent; repeatable", "ROLE"},
                {"manager", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &managers,
                 "Agent: manager URL to join and link to (repeatable; overrides agent.manager)",
                 "URL"},
                {"join-token", 0, 0, G_OPTION_ARG_STRING, &join_token,
                 "Agent: join this host with a token from 'atrium host join-token create'",
                 "TOKEN"},
                {"manager-fingerprint", 0, 0, G_OPTION_ARG_STRING, &fingerprint,
                 "Agent: SHA-256 fingerprint of the manager's certificate", "FP"},
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
                ctx, "Runs Atrium roles: the manager (state store and REST API over HTTPS) and the\n"
                     "host agent (joins a manager, drives QEMU through libvirt). With no --role\n"
                     "the manager runs; the gateway role is not built yet.");
        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "atriumd: %s (try --help)\n", error->message);
                return 2;
        }
        if (version) {
                printf("atriumd %s\n", ATRIUM_VERSION);
                return 0;
        }
        for (char **r = roles; r && *r; r++) {
                if (g_str_equal(*r, "manager")) {
                        run_manager = TRUE;
                } else if (g_str_equal(*r, "agent")) {
                        run_agent = TRUE;
                } else if (g_str_equal(*r, "gateway")) {
                        fprintf(stderr, "atriumd: the gateway role is not built yet\n");
                        return 2;
                } else {
                        fprintf(stderr, "atriumd: unknown role '%s': manager or agent\n", *r);
                        return 2;
                }
        }
        if (!run_manager && !run_agent)
                run_manager = TRUE;
        if (run_manager && run_agent) {
                fprintf(stderr, "atriumd: run the manager and the agent as two processes (with "
                                "their own state directories) for now\n");
                return 2;
        }
        if (!run_agent && (managers || join_token || fingerprint)) {
                fprintf(stderr, "atriumd: --manager, --join-token and --manager-fingerprint are "
                                "options of the agent role (--role agent)\n");
                return 2;
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
        d.loop = g_main_loop_new(NULL, FALSE);
        if (run_manager) {
                mgr = manager_new(config, state_dir_used, &error);
                if (!mgr || !manager_start(mgr, &error)) {
                        fprintf(stderr, "atriumd: cannot start: %s\n", error->message);
                        g_free(d.config_path);
                        return 1;
                }
                d.mgr = mgr;
        }
        if (run_agent) {
                agent = start_agent(&d, config, state_dir_used, managers, fingerprint, join_token,
                                    &error);
                if (join_token)
                        memset(join_token, 0, strlen(join_token));
                if (!agent) {
                        fprintf(stderr, "atriumd: agent: %s\n", error->message);
                        g_free(d.config_path);
                        return 1;
                }
        }
        g_unix_signal_add(SIGTERM, on_term, &d);
        g_unix_signal_add(SIGINT, on_term, &d);
        g_unix_signal_add(SIGHUP, on_hup, &d);
        g_info("atriumd %s started (pid %d, state %s, roles:%s%s)", ATRIUM_VERSION, (int)getpid(),
               state_dir_used, run_manager ? " manager" : "", run_agent ? " agent" : "");
        g_main_loop_run(d.loop);
        g_clear_pointer(&agent, agent_free);
        g_clear_pointer(&mgr, manager_free);
        g_main_loop_unref(d.loop);
        g_autofree char *pidfile = g_build_filename(state_dir_used, "atriumd.pid", NULL);
        g_unlink(pidfile);
        close(lock_fd);
        g_free(d.config_path);
        g_info("stopped");
        return d.exit_code;
}
