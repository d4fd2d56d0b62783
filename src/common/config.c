#include "common/config.h"
#include "common/error.h"

#include <string.h>

static const char *const log_levels[] = {"debug", "info", "warning", "error", NULL};
static const char *const log_targets[] = {"auto", "stderr", "journal", NULL};
static const char *const store_backends[] = {"sqlite", "postgresql", NULL};
static const char *const accel_modes[] = {"auto", "kvm", "qemu", NULL};
static const char *const pw_costs[] = {"interactive", "moderate", "sensitive", "min", NULL};
static const char *const placement_choices[] = {"spread", "pack", NULL};

/* The one table of configuration keys; a secret one says so (.secret), and its value is never
 * dumped. */
static const ConfigKeyDef keys[] = {
        {"daemon", "state_dir", CFG_STRING, "/var/lib/atrium", 0, 0, NULL, FALSE,
         "Directory for the database, generated TLS material and the pid lock."},
        {"daemon", "log_level", CFG_ENUM, "info", 0, 0, log_levels, TRUE,
         "Least severe level logged: debug, info, warning or error."},
        {"daemon", "log_target", CFG_ENUM, "auto", 0, 0, log_targets, FALSE,
         "Where logs go: auto (journal when started by systemd, else stderr), stderr, journal."},
        {"manager", "listen", CFG_STRING, "0.0.0.0:8444", 0, 0, NULL, FALSE,
         "Address and port of the REST API (HOST:PORT, port 0 picks a free one)."},
        {"manager", "tls_cert", CFG_STRING, "", 0, 0, NULL, FALSE,
         "PEM certificate for the API; empty: a self-signed one is generated in state_dir/tls."},
        {"manager", "tls_key", CFG_STRING, "", 0, 0, NULL, FALSE,
         "PEM private key matching tls_cert."},
        {"manager", "plain_http", CFG_BOOL, "false", 0, 0, NULL, FALSE,
         "Serve plain HTTP instead of HTTPS; refused unless listen is a loopback address."},
        {"manager", "threads", CFG_INT, "0", 0, 64, NULL, FALSE,
         "HTTP worker threads serving the API; 0: one per processor, at most 8."},
        {"manager", "max_connections", CFG_INT, "1024", 8, 100000, NULL, TRUE,
         "Most API connections open at once; more are closed at accept."},
        {"manager", "max_body_bytes", CFG_INT, "1048576", 1024, 67108864, NULL, TRUE,
         "Largest request body accepted by any route (a route may allow less)."},
        {"manager", "max_upload_bytes", CFG_INT, "17179869184", 1048576, 1099511627776LL, NULL,
         TRUE, "Largest ISO image accepted by an upload (PUT /media/{id}/isos/{file})."},
        {"manager", "totp_required_roles", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Roles whose accounts must use a TOTP second factor, space-separated (for example "
         "\"admin operator\"); users can also be required one by one (totp_required)."},
        {"manager", "max_json_depth", CFG_INT, "32", 2, 256, NULL, TRUE,
         "Deepest JSON nesting accepted in a request body."},
        {"manager", "page_size_default", CFG_INT, "100", 1, 1000, NULL, TRUE,
         "Items per page when a list request gives no limit."},
        {"manager", "page_size_max", CFG_INT, "1000", 1, 10000, NULL, TRUE,
         "Largest limit a list request may ask for."},
        {"manager", "token_ttl", CFG_INT, "43200", 60, 2592000, NULL, TRUE,
         "Seconds an API token stays valid after login."},
        {"manager", "login_attempts_per_user", CFG_INT, "5", 1, 1000, NULL, TRUE,
         "Failed logins allowed per user name within login_window."},
        {"manager", "login_attempts_per_address", CFG_INT, "20", 1, 10000, NULL, TRUE,
         "Failed logins allowed per client address within login_window."},
        {"manager", "login_window", CFG_INT, "60", 1, 86400, NULL, TRUE,
         "Seconds over which failed logins are counted."},
        {"manager", "password_cost", CFG_ENUM, "interactive", 0, 0, pw_costs, TRUE,
         "argon2id cost for new password hashes: interactive, moderate, sensitive (min: tests "
         "only)."},
        {"manager", "initial_admin_password", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Secret: password of the 'admin' account created at first start; empty: random, "
         "printed once and kept in state_dir/initial-admin-password until changed.",
         .secret = TRUE},
        {"manager", "heartbeat_interval", CFG_INT, "1", 1, 300, NULL, FALSE,
         "Seconds between two heartbeats of a host's agent (told to agents when they link); "
         "below host_suspect_after."},
        {"manager", "host_suspect_after", CFG_INT, "3", 1, 3600, NULL, TRUE,
         "Seconds without a word from a host's agent after which the host is suspect: no new "
         "desktops are placed on it (an event host_suspect)."},
        {"manager", "host_down_after", CFG_INT, "5", 2, 3600, NULL, TRUE,
         "Seconds without a word after which the host is down (an event host_down); above "
         "host_suspect_after."},
        {"manager", "self_fence_after", CFG_INT, "15", 0, 3600, NULL, TRUE,
         "Seconds without a word from the manager after which an agent that reaches no witness "
         "(the gateway, the other hosts) destroys the desktops the manager may restart elsewhere "
         "(0: never; never either with a single host). Above host_down_after; at most half "
         "of storage_lease."},
        {"manager", "witness_timeout_ms", CFG_INT, "1000", 50, 10000, NULL, TRUE,
         "Milliseconds an agent waits for a witness's answer before it counts it as unreachable."},
        {"manager", "storage_lease", CFG_INT, "0", 0, 3600, NULL, TRUE,
         "Seconds after which the shared storage drops the locks of a host cut off from it "
         "(the NFSv4 lease, 90 by default on Linux servers); 0: locks that never expire (a "
         "local or cluster file system). self_fence_after must be at most half of it."},
        {"manager", "recovery_retry_ms", CFG_INT, "1000", 100, 60000, NULL, TRUE,
         "Milliseconds between two attempts to start a desktop of a down host elsewhere while "
         "its disk's lease is busy."},
        {"manager", "migration_timeout", CFG_INT, "600", 10, 86400, NULL, TRUE,
         "Seconds a live migration may take before it is aborted (the desktop keeps running "
         "where it was)."},
        {"manager", "migration_max_downtime_ms", CFG_INT, "300", 1, 60000, NULL, TRUE,
         "Longest pause of a migrating desktop at the switch-over, in milliseconds: QEMU copies "
         "memory again until the rest fits in it (auto-converge slows a guest that dirties "
         "memory faster than it is sent)."},
        {"manager", "migration_bandwidth", CFG_INT, "0", 0, 100000, NULL, TRUE,
         "MiB/s a live migration may use on the management network; 0: as fast as it goes."},
        {"manager", "migrations_per_host", CFG_INT, "2", 1, 16, NULL, TRUE,
         "Migrations from one host at once when it drains (more queue)."},
        {"manager", "name", CFG_STRING, "", 0, 0, NULL, FALSE,
         "This manager's name among several on one database (PostgreSQL); empty: the host's "
         "name and an id kept in state_dir/manager-id."},
        {"manager", "lease_ttl", CFG_INT, "5000", 1000, 60000, NULL, FALSE,
         "Milliseconds the leader's lease lasts on the database's clock: a standby takes over "
         "this long after the leader's last renewal (PostgreSQL, several managers)."},
        {"manager", "lease_renew", CFG_INT, "1000", 100, 10000, NULL, FALSE,
         "Milliseconds between the leader's renewals of its lease (at most half of "
         "lease_ttl)."},
        {"manager", "startup_grace", CFG_INT, "30", 0, 3600, NULL, TRUE,
         "Seconds after the manager starts during which no host is judged down: agents link "
         "again within it after a manager restart (they retry every 12 s at most), so a "
         "manager restart alone moves no desktop."},
        {"manager", "host_missed_heartbeats", CFG_INT, "0", 0, 100, NULL, TRUE,
         "Deprecated, ignored: hosts are judged by host_suspect_after and host_down_after."},
        {"manager", "agent_command_timeout", CFG_INT, "180", 5, 3600, NULL, TRUE,
         "Seconds to wait for an agent's answer to a command (a shutdown waits its own time "
         "on top)."},
        {"manager", "join_token_ttl", CFG_INT, "3600", 60, 604800, NULL, TRUE,
         "Default seconds a host join token stays valid."},
        {"manager", "reconcile_interval", CFG_INT, "5", 1, 3600, NULL, TRUE,
         "Seconds between two passes of the pool reconciler when nothing wakes it sooner."},
        {"manager", "provision_parallel", CFG_INT, "8", 1, 256, NULL, TRUE,
         "Desktop steps (provision, start, stop, delete) in flight at once per host."},
        {"manager", "provision_retries", CFG_INT, "3", 1, 100, NULL, TRUE,
         "Attempts of a failed desktop step (with backoff) before the desktop is 'failed'."},
        {"manager", "overcommit_percent", CFG_INT, "150", 10, 1000, NULL, TRUE,
         "Memory a host may give its running desktops and guests, in percent of its RAM."},
        {"manager", "placement", CFG_ENUM, "spread", 0, 0, placement_choices, TRUE,
         "Where desktops start: spread (the host with the most memory left) or pack (the "
         "fullest host that still fits)."},
        {"manager", "connect_ready_timeout", CFG_INT, "180", 5, 3600, NULL, TRUE,
         "Seconds a connect waits for a started desktop's atrium-guest to say ready."},
        {"manager", "ticket_ttl", CFG_INT, "60", 10, 3600, NULL, TRUE,
         "Seconds a console ticket (and the console's one-time password) stays valid."},
        {"manager", "gateway_url", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Public URL of the gateway that consoles go through (https://HOST:PORT), put in "
         "connection data; empty: the API's URL."},
        {"manager", "transition_timeout", CFG_INT, "600", 10, 86400, NULL, TRUE,
         "Seconds a desktop may stay provisioning, starting, stopping or deleting before it is "
         "moved to 'failed'."},
        {"gateway", "listen", CFG_STRING, "0.0.0.0:8443", 0, 0, NULL, FALSE,
         "Address and port of the gateway's one TLS port: portal, API and every console "
         "(HOST:PORT; port 0 picks a free one)."},
        {"gateway", "plain", CFG_BOOL, "false", 0, 0, NULL, FALSE,
         "Serve without TLS (benchmarks); refused unless gateway.listen is a loopback address."},
        {"gateway", "tls_cert", CFG_STRING, "", 0, 0, NULL, FALSE,
         "PEM certificate of the gateway; empty: the manager's (all-in-one) or a self-signed "
         "one generated in state_dir/tls. Clients must trust it (remote-viewer checks it)."},
        {"gateway", "tls_key", CFG_STRING, "", 0, 0, NULL, FALSE,
         "PEM private key matching gateway.tls_cert."},
        {"gateway", "manager", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Manager URL the gateway proxies the API to and reports tunnels to (several, "
         "separated by spaces: the managers of one installation; it follows the leader); "
         "empty: the manager in this process."},
        {"gateway", "manager_fingerprint", CFG_STRING, "", 0, 0, NULL, FALSE,
         "SHA-256 fingerprint of the manager's certificate; empty: the one in state_dir/tls."},
        {"gateway", "ticket_public_key", CFG_STRING, "", 0, 0, NULL, FALSE,
         "File holding the manager's console-ticket public key (ticket-public.key); empty: "
         "state_dir/ticket-public.key."},
        {"gateway", "key_file", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Secret file shared with the manager (its state_dir/gateway.key) that authenticates "
         "the gateway's tunnel reports; empty: state_dir/gateway.key.",
         .secret = TRUE},
        {"gateway", "web_root", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Directory of the portal's built files; empty: the installed portal, else none."},
        {"gateway", "max_buffer_bytes", CFG_INT, "262144", 16384, 67108864, NULL, FALSE,
         "Bytes buffered per tunnel direction; past it the sending side is paused until the "
         "slow side has read half."},
        {"gateway", "max_frame_bytes", CFG_INT, "1048576", 1024, 67108864, NULL, FALSE,
         "Largest WebSocket frame accepted from a client."},
        {"gateway", "max_header_bytes", CFG_INT, "8192", 1024, 65536, NULL, FALSE,
         "Largest request head (request line and headers)."},
        {"gateway", "handshake_timeout", CFG_INT, "10", 1, 300, NULL, FALSE,
         "Seconds a client has to finish TLS and send its request head."},
        {"gateway", "idle_timeout", CFG_INT, "3600", 10, 604800, NULL, FALSE,
         "Seconds a tunnel may carry no byte before it is closed."},
        {"gateway", "tunnels_per_ticket", CFG_INT, "16", 1, 256, NULL, FALSE,
         "Tunnels open at once with one ticket (a SPICE session opens one per channel)."},
        {"gateway", "tunnels_per_user", CFG_INT, "64", 1, 100000, NULL, FALSE,
         "Tunnels open at once for one user."},
        {"gateway", "replay_cache", CFG_INT, "100000", 100, 10000000, NULL, FALSE,
         "Tickets remembered until they expire (single use); when full, new tickets are "
         "refused."},
        {"directory", "urls", CFG_STRING, "", 0, 0, NULL, TRUE,
         "LDAP or Active Directory servers, space-separated, tried in order (ldap://HOST:389, "
         "ldaps://HOST:636); empty: local accounts only."},
        {"directory", "extra_files", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Further directories, tried in order after this one for a name it does not know: "
         "space-separated files, each with a [directory] section of these same keys."},
        {"directory", "start_tls", CFG_BOOL, "true", 0, 0, NULL, TRUE,
         "StartTLS on ldap:// URLs (the server's certificate checked against ca_file)."},
        {"directory", "ca_file", CFG_STRING, "", 0, 0, NULL, TRUE,
         "PEM file of the CA that signed the directory's certificate; empty: the system's."},
        {"directory", "bind_dn", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Service account that searches the directory; empty: anonymous search."},
        {"directory", "bind_password", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Secret: the service account's password.", .secret = TRUE},
        {"directory", "user_base", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Where users are searched (for example ou=people,dc=example,dc=org)."},
        {"directory", "user_filter", CFG_STRING, "(&(objectClass=inetOrgPerson)(uid=%s))", 0, 0,
         NULL, TRUE,
         "Search filter of a user; %s is the login name, escaped (AD: "
         "(&(objectClass=user)(sAMAccountName=%s)))."},
        {"directory", "login_attribute", CFG_STRING, "uid", 0, 0, NULL, TRUE,
         "Attribute holding the login name (AD: sAMAccountName)."},
        {"directory", "name_attribute", CFG_STRING, "cn", 0, 0, NULL, TRUE,
         "Attribute holding the display name (AD: displayName)."},
        {"directory", "mail_attribute", CFG_STRING, "mail", 0, 0, NULL, TRUE,
         "Attribute holding the e-mail address."},
        {"directory", "locked_filter", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Entries matching this filter may not log in (OpenLDAP ppolicy: "
         "(pwdAccountLockedTime=*); AD: (userAccountControl:1.2.840.113556.1.4.803:=2)); "
         "empty: none."},
        {"directory", "group_base", CFG_STRING, "", 0, 0, NULL, TRUE,
         "Where groups are searched; empty: no directory groups."},
        {"directory", "group_filter", CFG_STRING, "(objectClass=groupOfNames)", 0, 0, NULL, TRUE,
         "What a group is (AD: (objectClass=group))."},
        {"directory", "member_attribute", CFG_STRING, "member", 0, 0, NULL, TRUE,
         "A group's attribute listing its members' DNs."},
        {"directory", "group_name_attribute", CFG_STRING, "cn", 0, 0, NULL, TRUE,
         "A group's name, as Atrium groups name it (directory_group)."},
        {"directory", "nested", CFG_BOOL, "true", 0, 0, NULL, TRUE,
         "Groups of groups count: a member of a member group is a member."},
        {"directory", "ad_matching_rule", CFG_BOOL, "false", 0, 0, NULL, TRUE,
         "Active Directory: resolve nested groups in one search "
         "(LDAP_MATCHING_RULE_IN_CHAIN) instead of level by level."},
        {"directory", "timeout", CFG_INT, "5", 1, 120, NULL, TRUE,
         "Seconds to wait for a directory server before trying the next one."},
        {"directory", "group_cache_ttl", CFG_INT, "300", 1, 86400, NULL, TRUE,
         "Seconds a directory user's groups are trusted before they are looked up again."},
        {"agent", "manager", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Manager URL(s) the agent links to, separated by commas or spaces, tried in turn."},
        {"agent", "manager_fingerprint", CFG_STRING, "", 0, 0, NULL, FALSE,
         "SHA-256 fingerprint of the manager's certificate (as printed by 'atrium host "
         "join-token create'); empty: the system's trusted CAs decide."},
        {"agent", "name", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Host name given when joining; empty: the machine's host name."},
        {"agent", "address", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Management address consoles listen on; empty: the address used to reach the "
         "manager."},
        {"agent", "libvirt_uri", CFG_STRING, "qemu:///system", 0, 0, NULL, FALSE,
         "libvirt connection, e.g. qemu:///system or qemu:///embed?root=DIR (test:///default "
         "for tests)."},
        {"agent", "accel", CFG_ENUM, "auto", 0, 0, accel_modes, FALSE,
         "auto (KVM where it really works, else TCG), kvm or qemu (TCG)."},
        {"agent", "storage_roots", CFG_STRING, "/var/lib/atrium:/srv/atrium", 0, 0, NULL, FALSE,
         "Colon-separated directories under which volumes and media storages may lie; any "
         "other path a command names is refused."},
        {"agent", "block_devices", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Colon-separated host block devices, or directories of them (e.g. /dev/disk/by-id), "
         "that guests may be given as direct storage; empty: none."},
        {"agent", "network", CFG_STRING, "", 0, 0, NULL, FALSE,
         "Default network of guests: a libvirt network, bridge:NAME, or empty for user-mode "
         "networking."},
        {"agent", "qemu_group", CFG_STRING, "libvirt-qemu", 0, 0, NULL, FALSE,
         "Group QEMU runs as (qemu.conf's group): it may read the migration TLS certificates "
         "in state_dir/pki-qemu (qemu.conf: migrate_tls_x509_cert_dir)."},
        {"agent", "migrate_unsafe", CFG_BOOL, "false", 0, 0, NULL, FALSE,
         "Let libvirt migrate desktops whose disks lie on a directory it cannot tell is shared "
         "(a local file system that every host mounts by other means, as in a test rig); NFS, "
         "CephFS, GFS2 and OCFS2 need nothing."},
        {"agent", "workers", CFG_INT, "4", 1, 64, NULL, FALSE,
         "Threads running blocking libvirt and storage calls (no thread per guest)."},
        {"scheduler", "rebalance", CFG_BOOL, "false", 0, 0, NULL, TRUE,
         "Live-migrate idle running desktops (no console open) from the usable host running "
         "the most desktops to the one running the fewest, while they differ by two or more."},
        {"scheduler", "rebalance_max", CFG_INT, "1", 1, 16, NULL, TRUE,
         "Rebalancing migrations at once, over the whole cluster."},
        {"store", "backend", CFG_ENUM, "sqlite", 0, 0, store_backends, FALSE,
         "State store backend."},
        {"store", "path", CFG_STRING, "", 0, 0, NULL, FALSE,
         "SQLite database file; empty: state_dir/atrium.db."},
        {"store", "url", CFG_STRING, "", 0, 0, NULL, FALSE,
         "PostgreSQL database (backend = postgresql): a libpq URL "
         "(postgresql://atrium@db.example.org/atrium?sslmode=verify-full) or connection "
         "string, without the password."},
        {"store", "password_file", CFG_STRING, "", 0, 0, NULL, FALSE,
         "File holding the PostgreSQL password (its first line); empty: none, or libpq's own "
         "~/.pgpass."},
};

/* Read from several threads (the manager's HTTP workers) while SIGHUP may change reloadable
 * keys: lookups take the read lock; a replaced value is kept until the Config is freed, so a
 * string returned by config_get_string() stays valid for the life of the Config. */
struct _Config {
        GRWLock lock;
        GHashTable *values;  /* "group.key" -> value text */
        GPtrArray *replaced; /* old value texts */
};

const ConfigKeyDef *config_keys(gsize *n)
{
        *n = G_N_ELEMENTS(keys);
        return keys;
}

static const ConfigKeyDef *find_key(const char *group, const char *key)
{
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
                if (g_str_equal(keys[i].group, group) && g_str_equal(keys[i].key, key))
                        return &keys[i];
        return NULL;
}

static gboolean group_known(const char *group)
{
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
                if (g_str_equal(keys[i].group, group))
                        return TRUE;
        return FALSE;
}

Config *config_new(void)
{
        Config *c = g_new0(Config, 1);

        g_rw_lock_init(&c->lock);
        c->replaced = g_ptr_array_new_with_free_func(g_free);
        c->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
                g_hash_table_insert(c->values, g_strdup_printf("%s.%s", keys[i].group, keys[i].key),
                                    g_strdup(keys[i].def));
        return c;
}

void config_free(Config *c)
{
        GHashTableIter it;
        gpointer v;

        if (!c)
                return;
        g_hash_table_iter_init(&it, c->values);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_free(v);
        g_hash_table_unref(c->values);
        g_ptr_array_unref(c->replaced);
        g_rw_lock_clear(&c->lock);
        g_free(c);
}

static gboolean check_value(const ConfigKeyDef *k, const char *value, char **normalized,
                            GError **error)
{
        switch (k->type) {
        case CFG_STRING:
                *normalized = g_strdup(value);
                return TRUE;
        case CFG_INT: {
                gint64 v;
                if (!g_ascii_string_to_signed(value, 10, k->min, k->max, &v, NULL)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "[%s] %s = '%s': expected a whole number from %" G_GINT64_FORMAT
                                    " to %" G_GINT64_FORMAT,
                                    k->group, k->key, value, k->min, k->max);
                        return FALSE;
                }
                *normalized = g_strdup_printf("%" G_GINT64_FORMAT, v);
                return TRUE;
        }
        case CFG_BOOL:
                if (g_str_equal(value, "true") || g_str_equal(value, "yes") ||
                    g_str_equal(value, "1")) {
                        *normalized = g_strdup("true");
                        return TRUE;
                }
                if (g_str_equal(value, "false") || g_str_equal(value, "no") ||
                    g_str_equal(value, "0")) {
                        *normalized = g_strdup("false");
                        return TRUE;
                }
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "[%s] %s = '%s': expected true or false", k->group, k->key, value);
                return FALSE;
        case CFG_ENUM:
                for (const char *const *ch = k->choices; *ch; ch++) {
                        if (g_str_equal(*ch, value)) {
                                *normalized = g_strdup(value);
                                return TRUE;
                        }
                }
                {
                        g_autofree char *list = g_strjoinv(", ", (char **)k->choices);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "[%s] %s = '%s': expected one of %s", k->group, k->key, value,
                                    list);
                }
                return FALSE;
        }
        g_assert_not_reached();
}

gboolean config_set(Config *c, const char *group, const char *key, const char *value,
                    GError **error)
{
        const ConfigKeyDef *k = find_key(group, key);
        char *norm = NULL;

        if (!k) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "unknown configuration key '%s' in section [%s]", key, group);
                return FALSE;
        }
        if (!check_value(k, value, &norm, error))
                return FALSE;
        {
                g_autofree char *name = g_strdup_printf("%s.%s", group, key);
                char *old;
                g_rw_lock_writer_lock(&c->lock);
                old = g_hash_table_lookup(c->values, name);
                if (old)
                        g_ptr_array_add(c->replaced, old);
                g_hash_table_insert(c->values, g_steal_pointer(&name), norm);
                g_rw_lock_writer_unlock(&c->lock);
        }
        return TRUE;
}

gboolean config_load_data(Config *c, const char *data, gssize len, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_auto(GStrv) groups = NULL;
        g_autoptr(Config) tmp = config_new();

        if (!g_key_file_load_from_data(kf, data, len < 0 ? strlen(data) : (gsize)len,
                                       G_KEY_FILE_NONE, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "configuration is not a valid key file: %s", local->message);
                return FALSE;
        }
        /* Validate everything into a scratch Config first, so a bad file changes nothing. */
        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                g_auto(GStrv) ks = NULL;
                if (!group_known(*g)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "unknown configuration section [%s]", *g);
                        return FALSE;
                }
                ks = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = ks; k && *k; k++) {
                        g_autofree char *v = g_key_file_get_string(kf, *g, *k, &local);
                        if (!v) {
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "[%s] %s: %s", *g, *k, local->message);
                                return FALSE;
                        }
                        if (!config_set(tmp, *g, *k, v, error))
                                return FALSE;
                }
        }
        /* Then apply the keys the file sets. */
        for (char **g = groups; *g; g++) {
                g_auto(GStrv) ks = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = ks; k && *k; k++)
                        config_set(c, *g, *k, config_get_string(tmp, *g, *k), NULL);
        }
        return TRUE;
}

gboolean config_load_file(Config *c, const char *path, GError **error)
{
        g_autofree char *data = NULL;
        gsize len;
        g_autoptr(GError) local = NULL;

        if (!g_file_get_contents(path, &data, &len, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "cannot read configuration '%s': %s", path, local->message);
                return FALSE;
        }
        if (!config_load_data(c, data, len, &local)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "%s: %s", path,
                            local->message);
                return FALSE;
        }
        return TRUE;
}

static const char *lookup(const Config *c, const char *group, const char *key)
{
        char name[128];
        const char *v;

        g_snprintf(name, sizeof(name), "%s.%s", group, key);
        g_rw_lock_reader_lock((GRWLock *)&c->lock);
        v = g_hash_table_lookup(c->values, name);
        g_rw_lock_reader_unlock((GRWLock *)&c->lock);
        g_assert(v != NULL); /* asking for a key not in the table is a bug */
        return v;
}

const char *config_get_string(const Config *c, const char *group, const char *key)
{
        return lookup(c, group, key);
}

gint64 config_get_int(const Config *c, const char *group, const char *key)
{
        return g_ascii_strtoll(lookup(c, group, key), NULL, 10);
}

gboolean config_get_bool(const Config *c, const char *group, const char *key)
{
        return g_str_equal(lookup(c, group, key), "true");
}

static const char *type_name(const ConfigKeyDef *k)
{
        switch (k->type) {
        case CFG_STRING:
                return "string";
        case CFG_INT:
                return "integer";
        case CFG_BOOL:
                return "boolean";
        case CFG_ENUM:
                return "choice";
        }
        return "?";
}

char *config_sample(void)
{
        GString *s = g_string_new("# Atrium configuration (" ATRIUM_DEFAULT_CONFIG ").\n"
                                  "# Every key is shown commented out at its default.\n"
                                  "# Keys marked 'reloadable' take effect on SIGHUP.\n");
        const char *group = NULL;

        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                const ConfigKeyDef *k = &keys[i];
                if (!group || !g_str_equal(group, k->group)) {
                        group = k->group;
                        g_string_append_printf(s, "\n[%s]\n", group);
                }
                g_string_append_printf(s, "\n# %s\n# type: %s", k->help, type_name(k));
                if (k->type == CFG_INT)
                        g_string_append_printf(s, ", range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
                                               k->min, k->max);
                if (k->reloadable)
                        g_string_append(s, ", reloadable");
                g_string_append_printf(s, "\n#%s = %s\n", k->key, k->def);
        }
        return g_string_free(s, FALSE);
}

char *config_dump(const Config *c)
{
        GString *s = g_string_new(NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                const char *v = lookup(c, keys[i].group, keys[i].key);
                g_string_append_printf(s, "%s.%s = %s\n", keys[i].group, keys[i].key,
                                       keys[i].secret && v[0] ? "(set)" : v);
        }
        return g_string_free(s, FALSE);
}

GPtrArray *config_diff(const Config *a, const Config *b)
{
        GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                if (!g_str_equal(lookup(a, keys[i].group, keys[i].key),
                                 lookup(b, keys[i].group, keys[i].key)))
                        g_ptr_array_add(out, g_strdup_printf("%s.%s", keys[i].group, keys[i].key));
        }
        return out;
}

gboolean config_key_reloadable(const char *group_dot_key)
{
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                g_autofree char *k = g_strdup_printf("%s.%s", keys[i].group, keys[i].key);
                if (g_str_equal(k, group_dot_key))
                        return keys[i].reloadable;
        }
        return FALSE;
}
