#define G_LOG_DOMAIN "manager"

#include "manager/lifecycle.h"
#include "manager/api.h"
#include "manager/dirlink.h"
#include "manager/broker.h"
#include "manager/hostsync.h"
#include "manager/sessions.h"
#include "manager/tunnels.h"
#include "manager/agentlink.h"
#include "manager/migration.h"
#include "manager/reconciler.h"
#include "manager/leader.h"
#include "proto/ticket.h"

#include <sodium.h>
#include <string.h>
#include "proto/agentproto.h"
#include "common/error.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"

#include <errno.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

static const Actor system_actor = {"system", 0, ""};

/* First start: an 'admin' account, with the configured password or a random one that is
 * printed once on stdout (never logged) and kept 0600 in the state dir until changed. */
static gboolean ensure_admin(Manager *mgr, GError **error)
{
        const Resource *users = resource_by_kind("user");
        const char *configured = MCFG_STR(mgr, "initial_admin_password");
        g_autofree char *password = NULL, *hash = NULL;
        g_autoptr(JsonObject) values = NULL;
        g_autoptr(JsonObject) row = NULL;

        if (store_count(mgr->store, users) > 0)
                return TRUE;
        password = configured[0] ? g_strdup(configured) : util_random_password();
        hash = password_hash(password, MCFG_STR(mgr, "password_cost"), error);
        if (!hash)
                return FALSE;
        values = json_object_new();
        json_object_set_string_member(values, "name", "admin");
        json_object_set_string_member(values, "display_name", "Administrator");
        json_object_set_string_member(values, "role", "admin");
        json_object_set_string_member(values, "password", hash);
        row = store_create(mgr->store, users, values, &system_actor, error);
        if (!row)
                return FALSE;
        if (!configured[0]) {
                g_autofree char *text = g_strdup_printf("%s\n", password);
                if (!util_write_file(mgr->admin_password_file, text, -1, 0600, error))
                        return FALSE;
                printf("Created the first administrator: user 'admin', password '%s'\n"
                       "(also kept in %s until it is changed)\n",
                       password, mgr->admin_password_file);
                fflush(stdout);
        }
        g_info("created the first administrator account 'admin'");
        memset(password, 0, strlen(password));
        return TRUE;
}

/* A host's silence is judged against its heartbeats: refused unless heartbeat_interval <
 * host_suspect_after < host_down_after. A cut-off host fences itself after self_fence_after:
 * after the manager gave it up (above host_down_after), and well before the storage drops its
 * locks (at most half of storage_lease), or a second QEMU could open a disk a live one still
 * writes. */
static gboolean check_timings(Config *config, GError **error)
{
        gint64 ttl = config_get_int(config, "manager", "lease_ttl");
        gint64 renew = config_get_int(config, "manager", "lease_renew");

        gint64 beat = config_get_int(config, "manager", "heartbeat_interval");
        gint64 suspect = config_get_int(config, "manager", "host_suspect_after");
        gint64 down = config_get_int(config, "manager", "host_down_after");
        gint64 fence = config_get_int(config, "manager", "self_fence_after");
        gint64 lease = config_get_int(config, "manager", "storage_lease");

        if (renew * 2 > ttl) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "manager.lease_renew (%" G_GINT64_FORMAT " ms) must be at most half "
                            "of manager.lease_ttl (%" G_GINT64_FORMAT " ms): a leader must renew "
                            "its lease twice before it lapses",
                            renew, ttl);
                return FALSE;
        }
        if (!(beat < suspect && suspect < down)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unsafe host timings: manager.heartbeat_interval (%" G_GINT64_FORMAT
                            " s) must be below manager.host_suspect_after (%" G_GINT64_FORMAT
                            " s), and that below manager.host_down_after (%" G_GINT64_FORMAT
                            " s), or a host that is alive would be judged silent",
                            beat, suspect, down);
                return FALSE;
        }
        if (fence > 0 && fence <= down) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unsafe host timings: manager.self_fence_after (%" G_GINT64_FORMAT
                            " s) must be above manager.host_down_after (%" G_GINT64_FORMAT
                            " s), or a host would kill its desktops before the manager gives "
                            "it up",
                            fence, down);
                return FALSE;
        }
        if (lease > 0 && (fence == 0 || fence * 2 > lease)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unsafe host timings: the storage drops a cut-off host's locks after "
                            "manager.storage_lease (%" G_GINT64_FORMAT " s), so "
                            "manager.self_fence_after (%" G_GINT64_FORMAT " s) must be set and "
                            "at most half of it: a host must have destroyed its QEMUs before "
                            "another host may open their disks",
                            lease, fence);
                return FALSE;
        }
        return TRUE;
}

/* The store the configuration names: SQLite (store.path, or state_dir/atrium.db) or
 * PostgreSQL (store.url, its password in store.password_file). */
static Store *open_store(Config *config, const char *state_dir, GError **error)
{
        const char *backend = config_get_string(config, "store", "backend");
        const char *url = config_get_string(config, "store", "url");
        const char *pwfile = config_get_string(config, "store", "password_file");
        const char *path = config_get_string(config, "store", "path");
        g_autofree char *db_path = NULL, *password = NULL;
        Store *st;

        if (g_str_equal(backend, "sqlite")) {
                if (url[0]) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "store.url is set but store.backend is sqlite: set "
                                    "backend = postgresql to use the database it names");
                        return NULL;
                }
                db_path = path[0] ? g_strdup(path) : g_build_filename(state_dir, "atrium.db", NULL);
                return store_open_sqlite(db_path, error);
        }
        if (!url[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "store.backend is postgresql but store.url is empty: name the "
                            "database (postgresql://USER@HOST:PORT/DATABASE)");
                return NULL;
        }
        if (pwfile[0]) {
                GStatBuf sb;
                if (!(password = util_read_first_line(pwfile, error))) {
                        g_prefix_error(error, "store.password_file: ");
                        return NULL;
                }
                if (g_stat(pwfile, &sb) == 0 && (sb.st_mode & 077))
                        g_warning("store.password_file %s can be read by others than its owner "
                                  "(chmod 600 it)",
                                  pwfile);
        }
        st = store_open_postgresql(url, password, error);
        if (password)
                memset(password, 0, strlen(password));
        return st;
}

/* A manager's state directory holds keys of one installation: it may only serve the database
 * of that installation (the id is written on the first start). An SQLite database lies in the
 * state directory itself (by default): only a server's database is checked. */
static gboolean check_installation(Manager *mgr, GError **error)
{
        g_autofree char *file = g_build_filename(mgr->state_dir, "installation", NULL);
        g_autofree char *mine = NULL;

        if (g_str_equal(store_backend(mgr->store), "sqlite"))
                return TRUE;
        if (!g_file_get_contents(file, &mine, NULL, NULL))
                return g_file_set_contents_full(file, mgr->installation, -1,
                                                G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
        g_strstrip(mine);
        if (!g_str_equal(mine, mgr->installation)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "the database %s belongs to installation %s, but this manager's state "
                            "directory %s to installation %s: point store.url at this "
                            "installation's database, or start with another state directory",
                            store_location(mgr->store), mgr->installation, mgr->state_dir, mine);
                return FALSE;
        }
        return TRUE;
}

/* manager.name, or the host's name and an id made once and kept in the state directory. */
static char *manager_name(Manager *mgr, GError **error)
{
        const char *conf = MCFG_STR(mgr, "name");
        g_autofree char *file = g_build_filename(mgr->state_dir, "manager-id", NULL);
        g_autofree char *id = NULL;

        if (conf[0])
                return g_strdup(conf);
        if (!g_file_get_contents(file, &id, NULL, NULL) || strlen(g_strstrip(id)) != 8) {
                g_free(id);
                id = util_random_token(6);
                id[8] = '\0';
                {
                        g_autofree char *line = g_strconcat(id, "\n", NULL);
                        if (!util_write_file(file, line, -1, 0644, error))
                                return NULL;
                }
        }
        return g_strdup_printf("%s-%s", g_get_host_name(), id);
}

Manager *manager_new(Config *config, const char *state_dir, GError **error)
{
        g_autoptr(Manager) mgr = g_new0(Manager, 1);

        if (!check_timings(config, error))
                return NULL;
        mgr->config = config;
        mgr->state_dir = g_strdup(state_dir);
        mgr->admin_password_file = g_build_filename(state_dir, "initial-admin-password", NULL);
        mgr->logins = ratelimit_new();
        g_mutex_init(&mgr->leader_lock);
        if (!(mgr->name = manager_name(mgr, error)))
                return NULL;
        mgr->store = open_store(config, state_dir, error);
        if (!mgr->store)
                return NULL;
        mgr->installation = store_setting(mgr->store, "installation");
        if (!agent_installation_valid(mgr->installation)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "the database has no valid installation id");
                return NULL;
        }
        if (!check_installation(mgr, error))
                return NULL;
        g_info("state in %s (%s)", store_location(mgr->store), store_backend(mgr->store));
        if (!ensure_admin(mgr, error))
                return NULL;
        return g_steal_pointer(&mgr);
}

static GTlsCertificate *load_cert(Manager *mgr, GError **error)
{
        const char *cert = MCFG_STR(mgr, "tls_cert"), *key = MCFG_STR(mgr, "tls_key");
        g_autofree char *dir = g_build_filename(mgr->state_dir, "tls", NULL);
        g_autofree char *gcert = g_build_filename(dir, "cert.pem", NULL);
        g_autofree char *gkey = g_build_filename(dir, "key.pem", NULL);
        GTlsCertificate *c;

        if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "GLib has no TLS backend: install the glib-networking package");
                return NULL;
        }
        if (!cert[0] != !key[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "set both manager.tls_cert and manager.tls_key, or neither");
                return NULL;
        }
        if (!cert[0]) {
                if (!tls_ensure_self_signed(dir, error))
                        return NULL;
                cert = gcert;
                key = gkey;
        }
        c = g_tls_certificate_new_from_files(cert, key, error);
        if (!c) {
                g_prefix_error(error, "cannot load the TLS certificate '%s' and key '%s': ", cert,
                               key);
                return NULL;
        }
        g_free(mgr->fingerprint);
        mgr->fingerprint = tls_cert_fingerprint(cert, error);
        if (!mgr->fingerprint) {
                g_object_unref(c);
                return NULL;
        }
        return c;
}

/* The secret gateways in other processes report tunnels with: made once, 0600. */
static gboolean gateway_key(Manager *mgr, GError **error)
{
        g_autofree char *path = g_build_filename(mgr->state_dir, "gateway.key", NULL);
        g_autofree char *data = NULL, *fresh = NULL;

        if (g_file_get_contents(path, &data, NULL, NULL) && strlen(g_strstrip(data)) >= 32 &&
            strlen(data) < sizeof(mgr->gateway_key)) {
                g_strlcpy(mgr->gateway_key, data, sizeof(mgr->gateway_key));
                return TRUE;
        }
        fresh = util_random_token(32);
        g_strlcpy(mgr->gateway_key, fresh, sizeof(mgr->gateway_key));
        {
                g_autofree char *line = g_strconcat(fresh, "\n", NULL);
                return util_write_file(path, line, -1, 0600, error);
        }
}

/* The console tickets' key pair: made once, kept 0600 in the state directory; the public key
 * is written beside it (base64url) for gateways. */
static gboolean ticket_keys(Manager *mgr, GError **error)
{
        g_autofree char *path = g_build_filename(mgr->state_dir, "ticket.key", NULL);
        g_autofree char *pub = g_build_filename(mgr->state_dir, "ticket-public.key", NULL);
        g_autofree char *data = NULL;
        char text[64];
        gsize len = 0;

        if (g_file_get_contents(path, &data, &len, NULL) && len == sizeof(mgr->ticket_sk)) {
                memcpy(mgr->ticket_sk, data, len);
                memcpy(mgr->ticket_pk, mgr->ticket_sk + 32, sizeof(mgr->ticket_pk));
        } else {
                ticket_keypair(mgr->ticket_pk, mgr->ticket_sk);
                if (!util_write_file(path, (const char *)mgr->ticket_sk, sizeof(mgr->ticket_sk),
                                     0600, error))
                        return FALSE;
        }
        if (!gateway_key(mgr, error))
                return FALSE;
        sodium_bin2base64(text, sizeof(text), mgr->ticket_pk, sizeof(mgr->ticket_pk),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        {
                g_autofree char *line = g_strconcat(text, "\n", NULL);
                return util_write_file(pub, line, -1, 0644, error);
        }
}

/* The parts only the leader runs: the pool reconciler (with host recovery), live migrations,
 * the directory refresh; the host monitor and the agent links wait for manager_leading(). */
static gboolean start_leading(Manager *mgr, GError **error)
{
        agentlink_lead(mgr->agents);
        mgr->reconciler = reconciler_new(mgr, error);
        if (!mgr->reconciler)
                return FALSE;
        mgr->migrations = migrations_new(mgr, error);
        if (!mgr->migrations)
                return FALSE;
        mgr->dirlink = dirlink_start(mgr);
        return TRUE;
}

static void on_lead(Manager *mgr)
{
        g_autoptr(GError) error = NULL;

        if (!start_leading(mgr, &error)) {
                g_warning("cannot start the leader's work: %s", error->message);
                fprintf(stderr, "atriumd: cannot start the leader's work: %s\n", error->message);
                fflush(NULL);
                _exit(1);
        }
}

gboolean manager_start(Manager *mgr, GError **error)
{
        const char *listen = MCFG_STR(mgr, "listen");
        gboolean plain = config_get_bool(mgr->config, "manager", "plain_http");
        g_autoptr(GTlsCertificate) cert = NULL;
        g_autofree char *host = NULL, *url_file = NULL, *url_text = NULL;
        g_autofree char *sock = g_build_filename(mgr->state_dir, "api.sock", NULL);
        guint16 port;
        guint64 nofile = util_raise_nofile();

        if (!util_split_hostport(listen, &host, &port, error))
                return FALSE;
        if (plain && !util_addr_is_loopback(host)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "manager.plain_http is only allowed when manager.listen is a loopback "
                            "address, not '%s'",
                            listen);
                return FALSE;
        }
        if (!plain && !(cert = load_cert(mgr, error)))
                return FALSE;
        if (plain)
                mgr->fingerprint = g_strdup("");
        if (!ticket_keys(mgr, error))
                return FALSE;
        mgr->agents = agentlink_new(mgr);
        agentlink_listen(mgr->agents, hostsync_on_link, NULL);
        agentlink_listen(mgr->agents, sessions_on_link, NULL);
        agentlink_listen(mgr->agents, broker_on_link, NULL);
        agentlink_listen(mgr->agents, reconciler_on_link, mgr);
        agentlink_listen(mgr->agents, migrations_on_link, mgr);
        tunnels_set_follower(sessions_follow);
        if ((guint64)MCFG_INT(mgr, "max_connections") + 64 > nofile)
                g_warning("manager.max_connections (%" G_GINT64_FORMAT
                          ") is above what the open-file limit (%" G_GUINT64_FORMAT ") allows",
                          MCFG_INT(mgr, "max_connections"), nofile);
        mgr->http = http_server_new(mgr, error);
        if (mgr->http) {
                http_server_add_handlers(mgr->http, http_install, NULL);
                http_server_add_handlers(mgr->http, agentlink_install, mgr->agents);
        }
        if (!mgr->http ||
            !http_server_listen(mgr->http, listen, sock, !plain, cert, &mgr->url, error))
                return FALSE;
        if (g_str_equal(store_backend(mgr->store), "sqlite")) {
                /* alone on its database: it leads from the start */
                manager_set_leader(mgr, TRUE, mgr->url, 0);
                if (!start_leading(mgr, error))
                        return FALSE;
        } else if (!(mgr->leader = leader_start(mgr, on_lead, error))) {
                return FALSE;
        } else {
                g_info("manager %s on a shared database: a standby until it holds the leader's "
                       "lease",
                       mgr->name);
        }
        url_file = g_build_filename(mgr->state_dir, "manager.url", NULL);
        url_text = g_strdup_printf("%s\n", mgr->url);
        if (!util_write_file(url_file, url_text, -1, 0644, error))
                return FALSE;
        g_info("REST API listening on %s/api/v1 (open-file limit %" G_GUINT64_FORMAT
               ", at most %" G_GINT64_FORMAT " connections)",
               mgr->url, nofile, MCFG_INT(mgr, "max_connections"));
        return TRUE;
}

void manager_reload(Manager *mgr, Config *next)
{
        g_autoptr(GPtrArray) changed = config_diff(mgr->config, next);

        for (guint i = 0; i < changed->len; i++) {
                const char *k = changed->pdata[i];
                g_auto(GStrv) parts = g_strsplit(k, ".", 2);
                const char *v = config_get_string(next, parts[0], parts[1]);
                if (!config_key_reloadable(k)) {
                        g_warning("configuration key %s changed; it takes effect at the next "
                                  "restart",
                                  k);
                        continue;
                }
                config_set(mgr->config, parts[0], parts[1], v, NULL);
                if (g_str_equal(k, "daemon.log_level"))
                        log_set_level(v, NULL);
                g_info("configuration key %s reloaded", k);
        }
        if (changed->len == 0)
                g_info("configuration reloaded: nothing changed");
}

void manager_free(Manager *mgr)
{
        if (!mgr)
                return;
        dirlink_free(mgr->dirlink);
        {
                struct _Migrations *m = mgr->migrations;
                mgr->migrations = NULL;
                migrations_free(m);
        }
        reconciler_free(mgr->reconciler);
        leader_free(g_steal_pointer(&mgr->leader)); /* the lease goes after the leader's work */
        http_server_free(mgr->http);
        agentlink_free(mgr->agents);
        store_close(mgr->store);
        ratelimit_free(mgr->logins);
        g_free(mgr->state_dir);
        g_free(mgr->url);
        g_free(mgr->gateway_url);
        g_free(mgr->fingerprint);
        g_free(mgr->installation);
        g_free(mgr->name);
        g_free(mgr->leader_url);
        g_mutex_clear(&mgr->leader_lock);
        g_free(mgr->admin_password_file);
        g_free(mgr);
}
