/* atriumd: parse options, build the roles, run the loop. */
#define G_LOG_DOMAIN "atriumd"

#include "common/config.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "agent/agent.h"
#include "gateway/gateway.h"
#include "gateway/report.h"
#include "manager/api.h"
#include "manager/lifecycle.h"
#include "manager/tunnels.h"
#include "daemon/store-tool.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
        GMainLoop *loop;
        Manager *mgr;
        Reporter *reporter;
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

/* Tunnel reports of the gateway in this process: straight to the manager's sessions, or to
 * the reporter that posts them to a manager elsewhere. */
static void on_tunnel(const GatewayEvent *ev, gpointer data)
{
        Daemon *d = data;

        if (d->mgr) {
                g_autoptr(JsonObject) o = gateway_event_json(ev);
                tunnels_gateway_event(d->mgr->store, o, "local");
        } else if (d->reporter) {
                reporter_add(d->reporter, ev);
        }
}

/* The manager's order (a session disconnected or ended): its desktop's tunnels close. */
static void close_tunnels(gint64 desktop, gpointer gw)
{
        gateway_close_desktop(gw, desktop);
}

/* The manager's order (a live migration's destination is known): its clients may follow. */
static void move_tunnels(gint64 desktop, const char *proto, const char *host, guint16 port,
                         gpointer gw)
{
        gateway_move_desktop(gw, desktop, proto, host, port);
}

static char *first_word(const char *s)
{
        g_auto(GStrv) parts = g_strsplit_set(s ? s : "", ", ", -1);

        for (char **p = parts; *p; p++)
                if (**p)
                        return g_strdup(*p);
        return g_strdup("");
}

/* The gateway role: beside the manager in this process (its local API socket, its
 * certificate), or alone in front of a manager elsewhere. */
static const char *current_manager(gpointer reporter)
{
        return reporter_manager(reporter);
}

/* Every manager URL a gateway on its own is given: --manager (repeatable), else every word
 * of gateway.manager; first the one it starts with. */
static char **gateway_managers(Config *config, char **managers, const char *first)
{
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_auto(GStrv) words = NULL;

        if (managers && managers[0])
                return g_strdupv(managers);
        words = g_strsplit_set(config_get_string(config, "gateway", "manager"), " ,", -1);
        g_strv_builder_add(b, first);
        for (char **w = words; *w; w++)
                if (**w && !g_str_equal(*w, first))
                        g_strv_builder_add(b, *w);
        return g_strv_builder_end(b);
}

static Gateway *start_gateway(Daemon *d, Config *config, const char *state_dir, char **managers,
                              const char *fingerprint, GError **error)
{
        GatewayOptions o = {0};
        g_autoptr(Gateway) gw = NULL;
        g_autofree char *sock = g_build_filename(state_dir, "api.sock", NULL);
        g_autofree char *url = NULL, *fp = NULL, *key = NULL, *key_path = NULL;
        g_autofree char *dcert = NULL, *dkey = NULL;
        const char *key_file = config_get_string(config, "gateway", "key_file");

        o.report = on_tunnel;
        o.report_data = d;
        if (d->mgr) {
                const char *mcert = config_get_string(config, "manager", "tls_cert");
                o.manager_socket = sock;
                if (mcert[0]) {
                        o.default_cert = mcert;
                        o.default_key = config_get_string(config, "manager", "tls_key");
                } else {
                        g_autofree char *dir = g_build_filename(state_dir, "tls", NULL);
                        if (!tls_ensure_self_signed(dir, error))
                                return NULL;
                        o.default_cert = dcert =
                                g_build_filename(state_dir, "tls", "cert.pem", NULL);
                        o.default_key = dkey = g_build_filename(state_dir, "tls", "key.pem", NULL);
                }
        } else {
                url = managers && managers[0]
                              ? g_strdup(managers[0])
                              : first_word(config_get_string(config, "gateway", "manager"));
                fp = g_strdup(
                        fingerprint && fingerprint[0]
                                ? fingerprint
                                : config_get_string(config, "gateway", "manager_fingerprint"));
                if (!url[0]) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "a gateway on its own needs the manager's URL: --manager URL "
                                    "or gateway.manager");
                        return NULL;
                }
                key_path = key_file[0] ? g_strdup(key_file)
                                       : g_build_filename(state_dir, "gateway.key", NULL);
                if (!g_file_get_contents(key_path, &key, NULL, error)) {
                        g_prefix_error(error, "cannot read the gateway key (copy the manager's "
                                              "state_dir/gateway.key, see gateway.key_file): ");
                        return NULL;
                }
                g_strstrip(key);
                o.manager_url = url;
                o.manager_fingerprint = fp;
                {
                        g_auto(GStrv) all = gateway_managers(config, managers, url);
                        d->reporter = reporter_new((const char *const *)all, fp, key,
                                                   g_get_host_name());
                }
                o.manager_now = current_manager;
                o.manager_now_data = d->reporter;
        }
        gw = gateway_new(config, state_dir, &o, error);
        if (!gw || !gateway_start(gw, error))
                return NULL;
        if (d->mgr) {
                g_free(d->mgr->gateway_url);
                d->mgr->gateway_url = g_strdup(gateway_url(gw));
                tunnels_set_closer(close_tunnels, gw);
                tunnels_set_mover(move_tunnels, gw);
        } else {
                reporter_set_closer(d->reporter, close_tunnels, gw);
                reporter_set_mover(d->reporter, move_tunnels, gw);
        }
        {
                g_autofree char *path = g_build_filename(state_dir, "gateway.url", NULL);
                g_autofree char *text = g_strdup_printf("%s\n", gateway_url(gw));
                if (!util_write_file(path, text, -1, 0644, error))
                        return NULL;
        }
        return g_steal_pointer(&gw);
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
                conf_managers =
                        g_strsplit_set(config_get_string(config, "agent", "manager"), ", ", -1);
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
        gboolean run_manager = FALSE, run_agent = FALSE, run_gateway = FALSE;
        g_autoptr(Agent) agent = NULL;
        g_autoptr(Gateway) gateway = NULL;
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
                 "Role to run: manager, gateway or agent; repeatable (default: manager and "
                 "gateway)",
                 "ROLE"},
                {"manager", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &managers,
                 "Agent or gateway: the manager's URL (repeatable; overrides agent.manager or "
                 "gateway.manager)",
                 "URL"},
                {"join-token", 0, 0, G_OPTION_ARG_STRING, &join_token,
                 "Agent: join this host with a token from 'atrium host join-token create'",
                 "TOKEN"},
                {"manager-fingerprint", 0, 0, G_OPTION_ARG_STRING, &fingerprint,
                 "Agent or gateway: SHA-256 fingerprint of the manager's certificate", "FP"},
                {"print-config", 0, 0, G_OPTION_ARG_NONE, &print_config,
                 "Print the commented sample configuration and exit", NULL},
                {"print-openapi", 0, 0, G_OPTION_ARG_NONE, &print_openapi,
                 "Print the OpenAPI document of the REST API and exit", NULL},
                {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit",
                 NULL},
                {NULL},
        };

        setlocale(LC_ALL, "");
        if (argc >= 2 && g_str_equal(argv[1], "store"))
                return store_tool_main(argc - 1, argv + 1);
        ctx = g_option_context_new("- Atrium VDI daemon");
        g_option_context_set_summary(
                ctx, "Runs Atrium roles: the manager (state store and REST API over HTTPS), the\n"
                     "gateway (one TLS port for the portal, the API and every console) and the\n"
                     "host agent (joins a manager, drives QEMU through libvirt). With no --role\n"
                     "the manager and the gateway run together.\n\n"
                     "atriumd store migrate --from DB --to DB copies an installation's database\n"
                     "(SQLite to PostgreSQL or back): atriumd store --help.");
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
                        run_gateway = TRUE;
                } else {
                        fprintf(stderr, "atriumd: unknown role '%s': manager, gateway or agent\n",
                                *r);
                        return 2;
                }
        }
        if (!run_manager && !run_agent && !run_gateway)
                run_manager = run_gateway = TRUE;
        if (run_agent && (run_manager || run_gateway)) {
                fprintf(stderr, "atriumd: run the manager and the agent as two processes (with "
                                "their own state directories) for now\n");
                return 2;
        }
        if (!run_agent && join_token) {
                fprintf(stderr, "atriumd: --join-token is an option of the agent role (--role "
                                "agent)\n");
                return 2;
        }
        if (run_manager && (managers || fingerprint)) {
                fprintf(stderr, "atriumd: --manager and --manager-fingerprint are options of the "
                                "agent role, or of a gateway without a manager\n");
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
        if (run_gateway) {
                gateway = start_gateway(&d, config, state_dir_used, managers, fingerprint, &error);
                if (!gateway) {
                        fprintf(stderr, "atriumd: gateway: %s\n", error->message);
                        g_clear_pointer(&mgr, manager_free);
                        g_clear_pointer(&d.reporter, reporter_free);
                        g_free(d.config_path);
                        return 1;
                }
        }
        g_unix_signal_add(SIGTERM, on_term, &d);
        g_unix_signal_add(SIGINT, on_term, &d);
        g_unix_signal_add(SIGHUP, on_hup, &d);
        g_info("atriumd %s started (pid %d, state %s, roles:%s%s%s)", ATRIUM_VERSION, (int)getpid(),
               state_dir_used, run_manager ? " manager" : "", run_gateway ? " gateway" : "",
               run_agent ? " agent" : "");
        g_main_loop_run(d.loop);
        tunnels_set_closer(NULL, NULL);
        tunnels_set_mover(NULL, NULL);
        g_clear_pointer(&d.reporter, reporter_free);
        g_clear_pointer(&gateway, gateway_free);
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
