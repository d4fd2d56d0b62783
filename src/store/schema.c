/* Schema migrations. Each entry takes the database from version i to i+1 and is applied in
 * one transaction. Migrations only add: never drop or rewrite a column holding data. A new
 * field in proto/resources.c needs a new entry here (tests/unit/test-store.c checks that every
 * field has its column). */
#include "store/store.h"

static const char *const migrations[] = {
        /* 1: the foundation objects. */
        "CREATE TABLE users ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  display_name TEXT NOT NULL DEFAULT '',"
        "  email TEXT NOT NULL DEFAULT '',"
        "  role TEXT NOT NULL DEFAULT 'user',"
        "  enabled INTEGER NOT NULL DEFAULT 1,"
        "  password_hash TEXT,"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE groups ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE group_members ("
        "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (group_id, user_id));"
        "CREATE INDEX group_members_user ON group_members(user_id);"
        "CREATE TABLE api_tokens ("
        "  hash TEXT PRIMARY KEY,"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  created_at TEXT NOT NULL,"
        "  expires_at INTEGER NOT NULL,"
        "  address TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX api_tokens_user ON api_tokens(user_id);"
        "CREATE TABLE hosts ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  address TEXT NOT NULL DEFAULT '',"
        "  state TEXT NOT NULL DEFAULT 'down',"
        "  cpus INTEGER NOT NULL DEFAULT 0,"
        "  ram_mb INTEGER NOT NULL DEFAULT 0,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE image_storages ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE volumes ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  storage_id INTEGER NOT NULL REFERENCES image_storages(id),"
        "  path TEXT NOT NULL UNIQUE,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE media_storages ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  path TEXT NOT NULL UNIQUE,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE guests ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  cpus INTEGER NOT NULL DEFAULT 1,"
        "  ram_mb INTEGER NOT NULL DEFAULT 1024,"
        "  os_type TEXT NOT NULL DEFAULT 'linux',"
        "  host_id INTEGER REFERENCES hosts(id),"
        "  volume_id INTEGER REFERENCES volumes(id),"
        "  state TEXT NOT NULL DEFAULT 'stopped',"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE templates ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  volume_id INTEGER NOT NULL REFERENCES volumes(id),"
        "  guest_id INTEGER REFERENCES guests(id),"
        "  cpus INTEGER NOT NULL DEFAULT 1,"
        "  ram_mb INTEGER NOT NULL DEFAULT 1024,"
        "  os_type TEXT NOT NULL DEFAULT 'linux',"
        "  version INTEGER NOT NULL DEFAULT 1,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE pools ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  template_id INTEGER NOT NULL REFERENCES templates(id),"
        "  mode TEXT NOT NULL DEFAULT 'stateless',"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  spares INTEGER NOT NULL DEFAULT 0,"
        "  max_size INTEGER NOT NULL DEFAULT 0,"
        "  maintenance INTEGER NOT NULL DEFAULT 0,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE entitlements ("
        "  id INTEGER PRIMARY KEY,"
        "  pool_id INTEGER NOT NULL REFERENCES pools(id),"
        "  user_id INTEGER REFERENCES users(id),"
        "  group_id INTEGER REFERENCES groups(id),"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        "  CHECK ((user_id IS NULL) <> (group_id IS NULL)));"
        "CREATE INDEX entitlements_pool ON entitlements(pool_id);"
        "CREATE TABLE desktops ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  pool_id INTEGER NOT NULL REFERENCES pools(id),"
        "  host_id INTEGER REFERENCES hosts(id),"
        "  user_id INTEGER REFERENCES users(id),"
        "  state TEXT NOT NULL DEFAULT 'stopped',"
        "  maintenance INTEGER NOT NULL DEFAULT 0,"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE INDEX desktops_pool ON desktops(pool_id);"
        "CREATE INDEX desktops_user ON desktops(user_id);"
        "CREATE TABLE sessions ("
        "  id INTEGER PRIMARY KEY,"
        "  user_id INTEGER NOT NULL REFERENCES users(id),"
        "  desktop_id INTEGER NOT NULL REFERENCES desktops(id),"
        "  state TEXT NOT NULL DEFAULT 'connected',"
        "  protocol TEXT NOT NULL DEFAULT 'spice',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE INDEX sessions_user ON sessions(user_id);"
        "CREATE TABLE events ("
        "  id INTEGER PRIMARY KEY,"
        "  time TEXT NOT NULL,"
        "  actor TEXT NOT NULL,"
        "  address TEXT NOT NULL DEFAULT '',"
        "  action TEXT NOT NULL,"
        "  object_kind TEXT NOT NULL DEFAULT '',"
        "  object_id INTEGER,"
        "  object_name TEXT NOT NULL DEFAULT '',"
        "  detail TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);",
        /* 2: hosts joined by agents, their facts and heartbeats; guests' disks and consoles. */
        "CREATE TABLE join_tokens ("
        "  id INTEGER PRIMARY KEY,"
        "  hash TEXT NOT NULL UNIQUE,"
        "  expires_at INTEGER NOT NULL,"
        "  used_at TEXT NOT NULL DEFAULT '',"
        "  host_name TEXT NOT NULL DEFAULT '',"
        "  created_by TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "ALTER TABLE hosts ADD COLUMN credential_hash TEXT;"
        "CREATE UNIQUE INDEX hosts_credential ON hosts(credential_hash);"
        "ALTER TABLE hosts ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN ram_free_mb INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN ram_committed_mb INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN running INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN accel TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN accel_reason TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN cpu_model TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN libvirt_version TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN qemu_version TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN volumes TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE hosts ADD COLUMN last_seen TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE guests ADD COLUMN disk TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE guests ADD COLUMN disk_gb INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE guests ADD COLUMN media_id INTEGER REFERENCES media_storages(id);"
        "ALTER TABLE guests ADD COLUMN iso TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE guests ADD COLUMN boot_cdrom INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE guests ADD COLUMN network TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE guests ADD COLUMN spice_port INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE guests ADD COLUMN vnc_port INTEGER NOT NULL DEFAULT 0;",
        /* 3: this installation's id, which its libvirt domains' names carry, so that two
         * installations sharing a libvirt never touch each other's domains. */
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO settings (key, value) VALUES ('installation', lower(hex(randomblob(4))));"
        "ALTER TABLE guests ADD COLUMN block_device TEXT NOT NULL DEFAULT '';",
        /* 4: template versions: read-only base images made from guests' disks. */
        "CREATE TABLE template_versions ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  template_id INTEGER NOT NULL REFERENCES templates(id),"
        "  version INTEGER NOT NULL,"
        "  volume_id INTEGER NOT NULL REFERENCES volumes(id),"
        "  image TEXT NOT NULL,"
        "  guest_id INTEGER REFERENCES guests(id),"
        "  cpus INTEGER NOT NULL DEFAULT 1,"
        "  ram_mb INTEGER NOT NULL DEFAULT 1024,"
        "  os_type TEXT NOT NULL DEFAULT 'linux',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        "  UNIQUE (template_id, version));"
        "ALTER TABLE desktops ADD COLUMN template_version_id INTEGER REFERENCES template_versions(id);",
        /* 5: pools name their desktops from a pattern. */
        "ALTER TABLE pools ADD COLUMN name_pattern TEXT NOT NULL DEFAULT '';",
        /* 6: pools' client policy, timeouts, placement and reconciler status; desktops'
         * overlays and failures; long operations. */
        "ALTER TABLE pools ADD COLUMN clipboard TEXT NOT NULL DEFAULT 'both';"
        "ALTER TABLE pools ADD COLUMN file_transfer INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE pools ADD COLUMN usb_redir INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN audio INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN monitors INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE pools ADD COLUMN printing INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN idle_timeout INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN disconnect_grace INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN max_session INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN hosts TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE pools ADD COLUMN status TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE pools ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE desktops ADD COLUMN volume_id INTEGER REFERENCES volumes(id);"
        "ALTER TABLE desktops ADD COLUMN disk TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE desktops ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE desktops ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE desktops ADD COLUMN failure TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE desktops ADD COLUMN state_since INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX desktops_state ON desktops(state);"
        "CREATE INDEX sessions_desktop ON sessions(desktop_id);"
        "CREATE TABLE operations ("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL,"
        "  object_kind TEXT NOT NULL DEFAULT '',"
        "  object_id INTEGER NOT NULL DEFAULT 0,"
        "  object_name TEXT NOT NULL DEFAULT '',"
        "  state TEXT NOT NULL DEFAULT 'running',"
        "  percent INTEGER NOT NULL DEFAULT 0,"
        "  message TEXT NOT NULL DEFAULT '',"
        "  created_by TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE INDEX operations_state ON operations(state);",
        /* 7: sessions' times, timing and terminal (kiosk sessions have no user); terminals
         * (thin clients; their keys are derived, only a version is kept); entitlements by terminal; pools' user actions and
         * kiosk. SQLite cannot change a CHECK or NOT NULL: those tables are rebuilt. */
        "CREATE TABLE terminals ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        "  description TEXT NOT NULL DEFAULT '',"
        "  pool_id INTEGER REFERENCES pools(id),"
        "  desktop_id INTEGER REFERENCES desktops(id),"
        "  key_version INTEGER NOT NULL DEFAULT 0,"
        "  last_seen TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE entitlements_v7 ("
        "  id INTEGER PRIMARY KEY,"
        "  pool_id INTEGER NOT NULL REFERENCES pools(id),"
        "  user_id INTEGER REFERENCES users(id),"
        "  group_id INTEGER REFERENCES groups(id),"
        "  terminal_id INTEGER REFERENCES terminals(id),"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        "  CHECK ((user_id IS NOT NULL) + (group_id IS NOT NULL) + (terminal_id IS NOT NULL) = 1));"
        "INSERT INTO entitlements_v7 (id, pool_id, user_id, group_id, created_at, updated_at)"
        "  SELECT id, pool_id, user_id, group_id, created_at, updated_at FROM entitlements;"
        "DROP TABLE entitlements;"
        "ALTER TABLE entitlements_v7 RENAME TO entitlements;"
        "CREATE INDEX entitlements_pool ON entitlements(pool_id);"
        "CREATE INDEX entitlements_user ON entitlements(user_id);"
        "CREATE INDEX entitlements_group ON entitlements(group_id);"
        "CREATE INDEX entitlements_terminal ON entitlements(terminal_id);"
        "CREATE TABLE sessions_v7 ("
        "  id INTEGER PRIMARY KEY,"
        "  user_id INTEGER REFERENCES users(id),"
        "  desktop_id INTEGER NOT NULL REFERENCES desktops(id),"
        "  state TEXT NOT NULL DEFAULT 'connected',"
        "  protocol TEXT NOT NULL DEFAULT 'spice',"
        "  terminal_id INTEGER REFERENCES terminals(id),"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  state_since INTEGER NOT NULL DEFAULT 0,"
        "  end_reason TEXT NOT NULL DEFAULT '',"
        "  timing TEXT NOT NULL DEFAULT '',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        "  CHECK (user_id IS NOT NULL OR terminal_id IS NOT NULL));"
        "INSERT INTO sessions_v7 (id, user_id, desktop_id, state, protocol, created_at, updated_at)"
        "  SELECT id, user_id, desktop_id, state, protocol, created_at, updated_at FROM sessions;"
        "DROP TABLE sessions;"
        "ALTER TABLE sessions_v7 RENAME TO sessions;"
        "CREATE INDEX sessions_user ON sessions(user_id);"
        "CREATE INDEX sessions_desktop ON sessions(desktop_id);"
        "ALTER TABLE pools ADD COLUMN user_actions INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN kiosk INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE desktops ADD COLUMN terminal_id INTEGER REFERENCES terminals(id);",
        /* 8: directory users (where they come from, their DN, when their groups were last
         * looked up); groups filled from a directory group, and giving their members a role. */
        "ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';"
        "ALTER TABLE users ADD COLUMN directory_dn TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE users ADD COLUMN groups_checked_at INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE groups ADD COLUMN directory_group TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE groups ADD COLUMN role TEXT NOT NULL DEFAULT 'user';"
        "CREATE INDEX groups_directory ON groups(directory_group COLLATE NOCASE);",
        /* 9: TOTP second factor: the secret (pending until confirmed), whether it is on or
         * required, the last step used (a code works once); recovery codes (hashed); tokens
         * that may only enrol (an account that must use TOTP and has none yet). */
        "ALTER TABLE users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE users ADD COLUMN totp_required INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE recovery_codes ("
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  hash TEXT NOT NULL,"
        "  PRIMARY KEY (user_id, hash));"
        "ALTER TABLE api_tokens ADD COLUMN enrol_only INTEGER NOT NULL DEFAULT 0;",
        /* 10: permissions: a role on one pool only (pool admins), for a user or a group. */
        "CREATE TABLE permissions ("
        "  id INTEGER PRIMARY KEY,"
        "  pool_id INTEGER NOT NULL REFERENCES pools(id),"
        "  user_id INTEGER REFERENCES users(id),"
        "  group_id INTEGER REFERENCES groups(id),"
        "  role TEXT NOT NULL DEFAULT 'operator',"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        "  CHECK ((user_id IS NOT NULL) + (group_id IS NOT NULL) = 1));"
        "CREATE INDEX permissions_pool ON permissions(pool_id);"
        "CREATE INDEX permissions_user ON permissions(user_id);"
        "CREATE INDEX permissions_group ON permissions(group_id);",
        /* 11: host failure recovery: the placement epoch of desktops and guests (every command
         * to an agent carries it; bumped when the host changes), pools' recovery priority, what
         * the last recovery did to a desktop, and a host's recovery in progress. */
        "ALTER TABLE desktops ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE desktops ADD COLUMN recovery TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE guests ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE pools ADD COLUMN ha_priority INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE hosts ADD COLUMN recovery TEXT NOT NULL DEFAULT '';"
        "INSERT INTO settings (key, value) VALUES ('placement_epoch', '1');",
        /* 12: live migration: where a desktop or guest is going and the placement epoch it
         * takes there (its reports from there at that epoch are its own), and the progress of
         * an operation in bytes and passes over memory. */
        "ALTER TABLE desktops ADD COLUMN migrating_to_id INTEGER REFERENCES hosts(id);"
        "ALTER TABLE desktops ADD COLUMN migrating_epoch INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE guests ADD COLUMN migrating_to_id INTEGER REFERENCES hosts(id);"
        "ALTER TABLE guests ADD COLUMN migrating_epoch INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE operations ADD COLUMN bytes_total INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE operations ADD COLUMN bytes_remaining INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE operations ADD COLUMN iteration INTEGER NOT NULL DEFAULT 0;",
        /* 13: several managers on one database: each one's last word (its URL, what its
         * configuration must agree on), and the one row of the leader's lease (its holder,
         * its term, until when on the database's clock, in ms). */
        "CREATE TABLE managers ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE,"
        "  url TEXT NOT NULL DEFAULT '',"
        "  config_digest TEXT NOT NULL DEFAULT '',"
        "  started_at INTEGER NOT NULL DEFAULT 0,"
        "  seen_at INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE leader ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  holder TEXT NOT NULL DEFAULT '',"
        "  url TEXT NOT NULL DEFAULT '',"
        "  term INTEGER NOT NULL DEFAULT 0,"
        "  lease_until INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO leader (id) VALUES (1);",
        /* 14: the broker's usual choice, a started, clean, unassigned desktop of a pool, read
         * off a partial index in id order (not a scan of the pool's running desktops). */
        "CREATE INDEX desktops_free ON desktops(pool_id, id) "
        "WHERE state = 'running' AND user_id IS NULL AND terminal_id IS NULL "
        "AND dirty = 0;",
};

int schema_latest(void)
{
        return (int)G_N_ELEMENTS(migrations);
}

const char *schema_migration(int version)
{
        if (version < 1 || version > schema_latest())
                return NULL;
        return migrations[version - 1];
}

void schema_scan(const char *pattern, SchemaMatch fn, gpointer data)
{
        g_autoptr(GRegex) re = g_regex_new(pattern, 0, 0, NULL);

        for (int v = 1; v <= schema_latest(); v++) {
                g_autoptr(GMatchInfo) m = NULL;
                g_regex_match(re, schema_migration(v), 0, &m);
                for (; g_match_info_matches(m); g_match_info_next(m, NULL))
                        fn(m, data);
        }
}

static void table_statement(GMatchInfo *m, gpointer data)
{
        GPtrArray *out = data;
        g_autofree char *verb = g_match_info_fetch(m, 1);
        g_autofree char *name = g_match_info_fetch(m, 2);
        g_autofree char *to = g_match_info_fetch(m, 4);
        guint at;
        gboolean known = g_ptr_array_find_with_equal_func(out, name, g_str_equal, &at);

        if (g_str_equal(verb, "CREATE TABLE") && !known) {
                g_ptr_array_add(out, g_steal_pointer(&name));
        } else if (g_str_equal(verb, "DROP TABLE") && known) {
                g_ptr_array_remove_index(out, at);
        } else if (to && *to && known) {
                g_free(out->pdata[at]);
                out->pdata[at] = g_steal_pointer(&to);
        }
}

/* The tables the migrations leave, in the order they were made, read off the migrations'
 * text: CREATE TABLE, DROP TABLE and ALTER TABLE … RENAME TO (g_ptr_array_unref; names
 * g_free'd with it). */
GPtrArray *schema_tables(void)
{
        GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

        schema_scan("(CREATE TABLE|DROP TABLE|ALTER TABLE) ([a-z_0-9]+)( RENAME TO ([a-z_0-9]+))?",
                    table_statement, out);
        return out;
}
