/* The object families of the REST API, as data. Adding a field here adds it to the API,
 * the CLI, the OpenAPI document and (with a migration in store/schema.c) the database. */
#include "proto/model.h"
#include "proto/naming.h"
#include "proto/vocab.h"
#include "common/error.h"

#define N(a) G_N_ELEMENTS(a)

static const char *const role_choices[] = {"admin", "operator", "helpdesk", "user", NULL};
static const char *const user_sources[] = {"local", "directory", NULL};
static const char *const clipboard_choices[] = {"both", "to-guest", "from-guest", "none", NULL};
static const char *const pool_modes[] = {"stateless", "persistent", NULL};
static const char *const os_types[] = {"linux", "windows", "other", NULL};

/* clang-format off: table macros read better unwrapped */
#define NAME_FIELD(what)                                                                           \
        {                                                                                          \
                "name", FIELD_NAME, F_REQUIRED | F_UNIQUE | F_LIST | F_FILTER, NULL, 0, 64, NULL,  \
                        NULL,                                                                      \
                        "Unique name of the " what                                                 \
                        ": letters, digits, '.', '_', '-'; starts with a letter."                  \
        }
#define DESC_FIELD                                                                                 \
        {                                                                                          \
                "description", FIELD_TEXT, 0, "", 0, 1024, NULL, NULL, "Free text."                \
        }
/* clang-format on */

static const Field user_fields[] = {
        NAME_FIELD("user (login name)"),
        {"display_name", FIELD_TEXT, F_LIST, "", 0, 256, NULL, NULL,
         "Full name shown in the portal."},
        {"email", FIELD_TEXT, 0, "", 0, 256, NULL, NULL, "Mail address."},
        {"role", FIELD_ENUM, F_LIST | F_FILTER, "user", 0, 0, role_choices, NULL,
         "admin, operator, helpdesk or user (its groups may give it more)."},
        {"enabled", FIELD_BOOL, F_LIST, "true", 0, 0, NULL, NULL,
         "A disabled user cannot log in; its tokens stop working."},
        {"password", FIELD_SECRET, F_REQUIRED, NULL, 8, 1024, NULL, NULL,
         "Password, at least 8 characters; stored as an argon2id hash, never returned."},
        {"source", FIELD_ENUM, F_LIST | F_FILTER | F_READONLY, "local", 0, 0, user_sources, NULL,
         "local (a password kept here) or directory (made at its first directory login)."},
        {"directory_dn", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "A directory user's entry (DN)."},
        {"groups_checked_at", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Unix time a directory user's groups were last looked up."},
        {"totp_enabled", FIELD_BOOL, F_LIST | F_READONLY, "false", 0, 0, NULL, NULL,
         "A one-time code (TOTP) is asked at login (the user enrols: POST /me/totp)."},
        {"totp_required", FIELD_BOOL, 0, "false", 0, 0, NULL, NULL,
         "The user must use TOTP: until enrolled, a login may only enrol (also required for "
         "the roles in manager.totp_required_roles)."},
};

static const Field group_fields[] = {
        NAME_FIELD("group"),
        DESC_FIELD,
        {"directory_group", FIELD_TEXT, F_LIST | F_FILTER, "", 0, 256, NULL, NULL,
         "Name of a directory group: directory users in it (nested groups included) are members "
         "of this group, refreshed at login and every directory.group_cache_ttl."},
        {"role", FIELD_ENUM, F_LIST, "user", 0, 0, role_choices, NULL,
         "Least role of its members (helpdesk, operator, admin: a group can give a role)."},
};

/* Hosts are created by their agent joining (POST /agent/register) and filled in by it. */
#define HOST_FACT(n, t, h) {n, t, F_READONLY, "", 0, 0, NULL, NULL, h}
static const Field host_fields[] = {
        NAME_FIELD("host"),
        {"address", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 255, NULL, NULL,
         "Management address where consoles of its desktops listen."},
        {"state", FIELD_ENUM, F_LIST | F_FILTER | F_READONLY, "down", 0, 0, host_state_names, NULL,
         "up, suspect (silent past manager.host_suspect_after), down (silent past "
         "manager.host_down_after) or maintenance (no new desktops placed)."},
        {"maintenance", FIELD_BOOL, F_FILTER | F_READONLY, "false", 0, 0, NULL, NULL,
         "Set by an operator (PUT /hosts/{id}/maintenance): no new desktops are placed on the "
         "host."},
        {"cpus", FIELD_INT, F_LIST | F_READONLY, "0", 0, 4096, NULL, NULL, "Logical CPUs."},
        {"ram_mb", FIELD_INT, F_LIST | F_READONLY, "0", 0, 1LL << 32, NULL, NULL,
         "Memory in MiB."},
        {"ram_free_mb", FIELD_INT, F_READONLY, "0", 0, 1LL << 32, NULL, NULL,
         "Free memory in MiB at the last heartbeat."},
        {"ram_committed_mb", FIELD_INT, F_READONLY, "0", 0, 1LL << 32, NULL, NULL,
         "Memory in MiB given to its running guests and desktops."},
        {"running", FIELD_INT, F_LIST | F_READONLY, "0", 0, 1LL << 32, NULL, NULL,
         "Domains running at the last heartbeat."},
        {"accel", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "kvm or qemu (TCG): what its guests run with."},
        HOST_FACT("accel_reason", FIELD_TEXT, "Why that accelerator."),
        HOST_FACT("cpu_model", FIELD_TEXT, "CPU model name."),
        HOST_FACT("libvirt_version", FIELD_TEXT, "libvirt version."),
        HOST_FACT("qemu_version", FIELD_TEXT, "QEMU (hypervisor) version."),
        HOST_FACT("volumes", FIELD_TEXT,
                  "Volumes the host reaches, with free space (JSON), at the last heartbeat."),
        HOST_FACT("last_seen", FIELD_TEXT, "Time of the last message from its agent (UTC)."),
        HOST_FACT("recovery", FIELD_TEXT,
                  "The recovery of its desktops after it went down: in progress (how many are "
                  "back elsewhere, waiting or unavailable) or done."),
        DESC_FIELD,
};

static const Field join_token_fields[] = {
        {"expires_at", FIELD_INT, F_LIST | F_READONLY, NULL, 0, G_MAXINT64, NULL, NULL,
         "Unix time after which the token is refused."},
        {"used_at", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "When a host joined with it (a token works once)."},
        {"host_name", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "The host that joined with it."},
        {"created_by", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "Who issued it."},
};

static const Field storage_fields[] = {
        NAME_FIELD("image storage"),
        DESC_FIELD,
};

static const Field volume_fields[] = {
        NAME_FIELD("volume"),
        {"storage", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL,
         "storage", "Image storage this volume belongs to."},
        {"path", FIELD_PATH, F_REQUIRED | F_UNIQUE | F_LIST, NULL, 0, 1024, NULL, NULL,
         "Absolute directory, mounted at the same path on every host of the storage."},
        DESC_FIELD,
};

static const Field media_fields[] = {
        NAME_FIELD("media storage"),
        {"path", FIELD_PATH, F_REQUIRED | F_UNIQUE | F_LIST, NULL, 0, 1024, NULL, NULL,
         "Absolute directory holding ISO images."},
        DESC_FIELD,
};

static const Field guest_fields[] = {
        NAME_FIELD("guest"),
        {"cpus", FIELD_INT, F_LIST, "1", 1, 256, NULL, NULL, "Virtual CPUs."},
        {"ram_mb", FIELD_INT, F_LIST, "1024", 64, 1LL << 22, NULL, NULL, "Memory in MiB."},
        {"os_type", FIELD_ENUM, 0, "linux", 0, 0, os_types, NULL, "linux, windows or other."},
        {"host", FIELD_REF, F_LIST | F_FILTER, NULL, 0, 0, NULL, "host", "Host it runs on."},
        {"volume", FIELD_REF, F_FILTER, NULL, 0, 0, NULL, "volume", "Volume holding its disk."},
        {"state", FIELD_ENUM, F_LIST | F_FILTER | F_READONLY, "stopped", 0, 0, vm_state_names, NULL,
         "Power state, reported by its host."},
        {"disk", FIELD_TEXT, F_LIST, "", 0, 255, NULL, NULL,
         "Disk image: a file name in the volume (created empty when disk_gb > 0 and missing)."},
        {"disk_gb", FIELD_INT, 0, "0", 0, 65536, NULL, NULL,
         "Size in GiB of a new empty disk; 0: the disk must exist."},
        {"media", FIELD_REF, 0, NULL, 0, 0, NULL, "media", "Media storage of the ISO."},
        {"iso", FIELD_TEXT, 0, "", 0, 255, NULL, NULL,
         "ISO file name in the media storage, in the CD-ROM drive."},
        {"boot_cdrom", FIELD_BOOL, 0, "false", 0, 0, NULL, NULL, "Boot from the CD-ROM first."},
        {"block_device", FIELD_TEXT, 0, "", 0, 1024, NULL, NULL,
         "Direct storage: a host block device (e.g. /dev/disk/by-id/...) given to the guest as "
         "a second disk; the host must allow it (agent.block_devices)."},
        {"network", FIELD_TEXT, 0, "", 0, 64, NULL, NULL,
         "libvirt network, or bridge:NAME for a host bridge; empty: the host's default "
         "(user-mode networking when it has none)."},
        {"spice_port", FIELD_INT, F_READONLY, "0", 0, 65535, NULL, NULL,
         "SPICE port on its host's management address while running."},
        {"vnc_port", FIELD_INT, F_READONLY, "0", 0, 65535, NULL, NULL,
         "VNC port on its host's management address while running."},
        {"epoch", FIELD_INT, F_READONLY, "1", 1, G_MAXINT64, NULL, NULL,
         "Placement epoch: bumped whenever its host changes; every command to an agent "
         "carries it and an agent refuses an older one."},
        {"migrating_to", FIELD_REF, F_READONLY, NULL, 0, 0, NULL, "host",
         "Host it is being live-migrated to (none: no migration in progress)."},
        {"migrating_epoch", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Placement epoch it takes on that host when the migration switches over."},
        DESC_FIELD,
};

static const Field template_fields[] = {
        NAME_FIELD("template"),
        {"volume", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER, NULL, 0, 0, NULL, "volume",
         "Volume holding the template's base images."},
        {"guest", FIELD_REF, F_FILTER, NULL, 0, 0, NULL, "guest", "Guest it was made from."},
        {"cpus", FIELD_INT, F_LIST, "1", 1, 256, NULL, NULL, "Virtual CPUs of its desktops."},
        {"ram_mb", FIELD_INT, F_LIST, "1024", 64, 1LL << 22, NULL, NULL,
         "Memory in MiB of its desktops."},
        {"os_type", FIELD_ENUM, 0, "linux", 0, 0, os_types, NULL, "linux, windows or other."},
        {"version", FIELD_INT, F_LIST | F_READONLY, "1", 1, G_MAXINT32, NULL, NULL,
         "Newest version."},
        DESC_FIELD,
};

/* Made by the server from a guest's disk (POST /templates or PATCH with "from_guest"). */
static const Field template_version_fields[] = {
        {"name", FIELD_NAME, F_READONLY | F_UNIQUE | F_LIST | F_FILTER, NULL, 0, 80, NULL, NULL,
         "TEMPLATE-vN, e.g. office-v3."},
        {"template", FIELD_REF, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, "template",
         "Template it is a version of."},
        {"version", FIELD_INT, F_LIST | F_READONLY, "1", 1, G_MAXINT32, NULL, NULL,
         "Version number, from 1."},
        {"volume", FIELD_REF, F_LIST | F_READONLY, NULL, 0, 0, NULL, "volume",
         "Volume holding its base image."},
        {"image", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 255, NULL, NULL,
         "Base image file in the volume (read-only qcow2)."},
        {"guest", FIELD_REF, F_READONLY, NULL, 0, 0, NULL, "guest", "Guest it was made from."},
        {"cpus", FIELD_INT, F_READONLY, "1", 1, 256, NULL, NULL, "Virtual CPUs of its desktops."},
        {"ram_mb", FIELD_INT, F_READONLY, "1024", 64, 1LL << 22, NULL, NULL,
         "Memory in MiB of its desktops."},
        {"os_type", FIELD_ENUM, F_READONLY, "linux", 0, 0, os_types, NULL,
         "linux, windows or other."},
};

static const Field pool_fields[] = {
        NAME_FIELD("pool"),
        {"template", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER, NULL, 0, 0, NULL, "template",
         "Template its desktops are cloned from."},
        {"mode", FIELD_ENUM, F_LIST | F_FILTER | F_IMMUTABLE, "stateless", 0, 0, pool_modes, NULL,
         "stateless (reset when a session ends) or persistent (kept per user)."},
        {"size", FIELD_INT, F_LIST, "0", 0, 10000, NULL, NULL, "Desktops defined."},
        {"spares", FIELD_INT, F_LIST, "0", 0, 10000, NULL, NULL,
         "Desktops kept started and unassigned; at most size."},
        {"max_size", FIELD_INT, 0, "0", 0, 10000, NULL, NULL,
         "Most desktops the pool may grow to (0: size)."},
        {"name_pattern", FIELD_TEXT, F_IMMUTABLE, "", 0, POOL_PATTERN_MAX, NULL, NULL,
         "Names of its desktops, with one number placeholder: {n}, or {n:3} zero-padded "
         "(default POOL-{n})."},
        {"maintenance", FIELD_BOOL, F_LIST | F_FILTER, "false", 0, 0, NULL, NULL,
         "No new connections; running sessions untouched."},
        {"clipboard", FIELD_ENUM, 0, "both", 0, 0, clipboard_choices, NULL,
         "Clipboard sharing: both, to-guest, from-guest or none."},
        {"file_transfer", FIELD_BOOL, 0, "true", 0, 0, NULL, NULL,
         "Files may be dropped into the desktop (SPICE)."},
        {"usb_redir", FIELD_INT, 0, "0", 0, 8, NULL, NULL, "USB devices a client may redirect."},
        {"audio", FIELD_BOOL, 0, "false", 0, 0, NULL, NULL, "Sound to and from the client."},
        {"monitors", FIELD_INT, 0, "1", 1, 4, NULL, NULL, "Monitors a client may use (1 to 4)."},
        {"printing", FIELD_BOOL, 0, "false", 0, 0, NULL, NULL,
         "Client printers offered to the desktop."},
        {"idle_timeout", FIELD_INT, 0, "0", 0, 7 * 86400, NULL, NULL,
         "Seconds without input before a session ends (0: never)."},
        {"disconnect_grace", FIELD_INT, 0, "0", 0, 7 * 86400, NULL, NULL,
         "Seconds a disconnected session is kept before it ends (0: forever)."},
        {"max_session", FIELD_INT, 0, "0", 0, 30 * 86400, NULL, NULL,
         "Longest session in seconds (0: no limit)."},
        {"user_actions", FIELD_BOOL, 0, "false", 0, 0, NULL, NULL,
         "Users may reboot and reset their own desktop (ending their session is always "
         "allowed)."},
        {"kiosk", FIELD_BOOL, F_FILTER, "false", 0, 0, NULL, NULL,
         "Registered terminals entitled to the pool may connect without a user (kiosk)."},
        {"hosts", FIELD_TEXT, 0, "", 0, 1024, NULL, NULL,
         "Placement hint: host names, separated by commas, its desktops may be placed on "
         "(empty: any host reaching the template's volume)."},
        {"ha_priority", FIELD_INT, 0, "0", 0, 1000, NULL, NULL,
         "Recovery priority: when a host goes down, desktops of pools with a higher priority "
         "are restarted elsewhere first."},
        {"status", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "What the reconciler is doing with the pool, e.g. 'ready' or 'provisioning 12/200'."},
        {"deleting", FIELD_BOOL, F_READONLY, "false", 0, 0, NULL, NULL,
         "Being deleted: its desktops are removed, then the pool."},
        DESC_FIELD,
};

static const Field entitlement_fields[] = {
        {"pool", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "pool",
         "Pool the entitlement grants."},
        {"user", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "user",
         "User entitled (give user or group, not both)."},
        {"group", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "group",
         "Group entitled."},
        {"terminal", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "terminal",
         "Terminal entitled: whoever connects from it (and, in a kiosk pool, the terminal "
         "itself)."},
};

static const char *const pool_roles[] = {"operator", "helpdesk", NULL};
static const Field permission_fields[] = {
        {"pool", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "pool",
         "Pool the permission is on."},
        {"user", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "user",
         "User given the role on that pool (give user or group, not both)."},
        {"group", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "group",
         "Group whose members get the role on that pool."},
        {"role", FIELD_ENUM, F_LIST, "operator", 0, 0, pool_roles, NULL,
         "operator (the pool, its desktops, sessions and entitlements: a pool admin) or "
         "helpdesk (its sessions and desktops' reboot/reset)."},
};

static const Field terminal_fields[] = {
        NAME_FIELD("terminal (the id a thin client connects with)"),
        DESC_FIELD,
        {"pool", FIELD_REF, F_LIST | F_FILTER, NULL, 0, 0, NULL, "pool",
         "Fixed pool: connects from the terminal go there."},
        {"desktop", FIELD_REF, F_LIST | F_FILTER, NULL, 0, 0, NULL, "desktop",
         "Fixed desktop: connects from the terminal go to it."},
        {"key_version", FIELD_INT, F_LIST | F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Which key it connects with: POST /terminals/{id}/key issues a new one (the older "
         "stops working); 0: none issued yet."},
        {"last_seen", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "When it last connected (UTC)."},
};

static const Field desktop_fields[] = {
        NAME_FIELD("desktop"),
        {"pool", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "pool",
         "Pool it belongs to."},
        {"host", FIELD_REF, F_LIST | F_FILTER, NULL, 0, 0, NULL, "host", "Host it runs on."},
        {"user", FIELD_REF, F_LIST | F_FILTER, NULL, 0, 0, NULL, "user", "User it is assigned to."},
        {"terminal", FIELD_REF, F_FILTER | F_READONLY, NULL, 0, 0, NULL, "terminal",
         "Kiosk terminal it is assigned to."},
        {"state", FIELD_ENUM, F_LIST | F_FILTER, "stopped", 0, 0, desktop_state_names, NULL,
         "Provisioning or power state."},
        {"maintenance", FIELD_BOOL, F_FILTER, "false", 0, 0, NULL, NULL,
         "No new connections to this desktop."},
        {"template_version", FIELD_REF, F_FILTER | F_READONLY, NULL, 0, 0, NULL,
         "template-version", "Template version its disk is an overlay of."},
        {"volume", FIELD_REF, F_READONLY, NULL, 0, 0, NULL, "volume",
         "Volume holding its overlay (the template's)."},
        {"disk", FIELD_TEXT, F_READONLY, "", 0, 255, NULL, NULL,
         "Its overlay: a qcow2 file in the volume backed by the template version's image."},
        {"disk_bytes", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Bytes its overlay used on disk when last made."},
        {"dirty", FIELD_BOOL, F_READONLY, "false", 0, 0, NULL, NULL,
         "Used by a session since it was last made fresh (a stateless desktop is then reset)."},
        {"failure", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "Why it is failed or unavailable."},
        {"state_since", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Unix time of its last state change."},
        {"epoch", FIELD_INT, F_READONLY, "1", 1, G_MAXINT64, NULL, NULL,
         "Placement epoch: bumped whenever its host changes; every command to an agent "
         "carries it and an agent refuses an older one."},
        {"recovery", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "What the last recovery from a host failure did to it, and when (UTC)."},
        {"migrating_to", FIELD_REF, F_READONLY, NULL, 0, 0, NULL, "host",
         "Host it is being live-migrated to (none: no migration in progress)."},
        {"migrating_epoch", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Placement epoch it takes on that host when the migration switches over."},
};

static const Field session_fields[] = {
        {"user", FIELD_REF, F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL, "user",
         "User of the session (none: a kiosk session of a terminal)."},
        {"desktop", FIELD_REF, F_REQUIRED | F_LIST | F_FILTER | F_IMMUTABLE, NULL, 0, 0, NULL,
         "desktop", "Desktop of the session."},
        {"state", FIELD_ENUM, F_LIST | F_FILTER, "connected", 0, 0, session_state_names, NULL,
         "connected or disconnected."},
        {"protocol", FIELD_ENUM, F_LIST, "spice", 0, 0, console_protocol_names, NULL, "spice or vnc."},
        {"terminal", FIELD_REF, F_FILTER | F_IMMUTABLE | F_READONLY, NULL, 0, 0, NULL, "terminal",
         "Terminal it was opened from."},
        {"started_at", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Unix time it began."},
        {"state_since", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "Unix time of its last state change."},
        {"end_reason", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "Why it is ending (state ending)."},
        {"timing", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL,
         "Milliseconds from the connect request to each step, as JSON: placed, running, ready, "
         "ticket, opened."},
};

static const Field event_fields[] = {
        {"time", FIELD_TEXT, F_LIST | F_READONLY, NULL, 0, 0, NULL, NULL, "When (UTC)."},
        {"actor", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "Who: a user name, or 'system'."},
        {"address", FIELD_TEXT, F_READONLY, NULL, 0, 0, NULL, NULL, "From where."},
        {"action", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "create, update, delete, login, login_failed, logout, ..."},
        {"object_kind", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "Kind of object changed."},
        {"object_id", FIELD_INT, F_READONLY, NULL, 0, G_MAXINT64, NULL, NULL, "Its id."},
        {"object_name", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "Its name."},
        {"detail", FIELD_TEXT, F_LIST | F_READONLY, NULL, 0, 0, NULL, NULL,
         "What changed (secrets never shown)."},
};

static const Field operation_fields[] = {
        {"kind", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "pool_create, pool_resize, pool_delete, recompose, rollout, migrate or drain."},
        {"object_kind", FIELD_TEXT, F_FILTER | F_READONLY, NULL, 0, 0, NULL, NULL,
         "Kind of object it works on."},
        {"object_id", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL, "Its id."},
        {"object_name", FIELD_TEXT, F_LIST | F_FILTER | F_READONLY, "", 0, 0, NULL, NULL,
         "Its name."},
        {"state", FIELD_ENUM, F_LIST | F_FILTER | F_READONLY, "running", 0, 0, operation_state_names,
         NULL, "running, done or failed."},
        {"percent", FIELD_INT, F_LIST | F_READONLY, "0", 0, 100, NULL, NULL, "Progress."},
        {"message", FIELD_TEXT, F_LIST | F_READONLY, "", 0, 0, NULL, NULL,
         "What it is doing or why it failed."},
        {"created_by", FIELD_TEXT, F_READONLY, "", 0, 0, NULL, NULL, "Who started it."},
        {"bytes_total", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "A migration: bytes of memory to send (grows when the guest dirties memory)."},
        {"bytes_remaining", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "A migration: bytes left to send."},
        {"iteration", FIELD_INT, F_READONLY, "0", 0, G_MAXINT64, NULL, NULL,
         "A migration: passes over the guest's memory so far."},
};

static gboolean get_int(JsonObject *o, const char *k, gint64 *v)
{
        JsonNode *n = json_object_get_member(o, k);
        if (!n || !JSON_NODE_HOLDS_VALUE(n))
                return FALSE;
        *v = json_node_get_int(n);
        return TRUE;
}

static gboolean pool_check(const Resource *res, JsonObject *o, GError **error)
{
        gint64 size = 0, spares = 0, max = 0;
        JsonNode *pattern = json_object_get_member(o, "name_pattern");

        if (pattern && JSON_NODE_HOLDS_VALUE(pattern) &&
            json_node_get_value_type(pattern) == G_TYPE_STRING &&
            json_node_get_string(pattern)[0] &&
            !pool_pattern_valid(json_node_get_string(pattern), error)) {
                g_prefix_error(error, "field 'name_pattern' of a pool: ");
                if (error)
                        atrium_error_set_field(*error, "name_pattern");
                return FALSE;
        }

        get_int(o, "size", &size);
        get_int(o, "spares", &spares);
        get_int(o, "max_size", &max);
        if (spares > size) {
                atrium_set_field_error(error, ATRIUM_ERROR_INVALID, "spares",
                            "field 'spares' of a pool: a pool cannot keep more spares "
                            "(%" G_GINT64_FORMAT
                            ") than it has desktops (size %" G_GINT64_FORMAT ")",
                            spares, size);
                return FALSE;
        }
        if (max != 0 && max < size) {
                atrium_set_field_error(error, ATRIUM_ERROR_INVALID, "max_size",
                            "field 'max_size' of a pool: a pool's max_size (%" G_GINT64_FORMAT
                            ") cannot be below its size (%" G_GINT64_FORMAT ")",
                            max, size);
                return FALSE;
        }
        return TRUE;
}

static gboolean entitlement_check(const Resource *res, JsonObject *o, GError **error)
{
        JsonNode *u = json_object_get_member(o, "user"), *g = json_object_get_member(o, "group");
        gboolean has_u = u && !JSON_NODE_HOLDS_NULL(u), has_g = g && !JSON_NODE_HOLDS_NULL(g);

        JsonNode *t = json_object_get_member(o, "terminal");
        gboolean has_t = t && !JSON_NODE_HOLDS_NULL(t);

        if (has_u + has_g + has_t != 1) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "an entitlement names exactly one of 'user', 'group' or 'terminal'");
                return FALSE;
        }
        return TRUE;
}

static gboolean permission_check(const Resource *res, JsonObject *o, GError **error)
{
        JsonNode *u = json_object_get_member(o, "user"), *g = json_object_get_member(o, "group");

        if ((u && !JSON_NODE_HOLDS_NULL(u)) + (g && !JSON_NODE_HOLDS_NULL(g)) != 1) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a permission names exactly one of 'user' or 'group'");
                return FALSE;
        }
        return TRUE;
}

/* clang-format off */
#define RES(k, p, t, c, T, h, f) .kind = k, .plural = p, .table = t, .cli = c, .title = T, \
        .help = h, .fields = f, .n_fields = N(f)
/* clang-format on */

static const Resource users = {RES("user", "users", "users", "user", "User",
                                   "Local accounts: who may log in, with which role.", user_fields),
                               .named = TRUE, .read_role = ROLE_ADMIN, .write_role = ROLE_ADMIN};
static const Resource groups = {RES("group", "groups", "groups", "group", "Group",
                                    "Groups of users, entitled to pools as a whole.", group_fields),
                                .named = TRUE, .read_role = ROLE_ADMIN, .write_role = ROLE_ADMIN};
static const Resource hosts = {RES("host", "hosts", "hosts", "host", "Host",
                                   "Hypervisor hosts: added by an agent joining with a token.",
                                   host_fields),
                               .named = TRUE, .no_create = TRUE, .read_role = ROLE_OPERATOR,
                               .write_role = ROLE_OPERATOR};
static const Resource join_tokens = {
        RES("join-token", "join-tokens", "join_tokens", NULL, "JoinToken",
            "Single-use, expiring tokens with which a new host's agent joins.", join_token_fields),
        .no_create = TRUE, .no_update = TRUE, .read_role = ROLE_ADMIN, .write_role = ROLE_ADMIN};
static const Resource storages = {
        RES("storage", "storages", "image_storages", "storage", "ImageStorage",
            "Image storages: sets of volumes shared by hosts.", storage_fields),
        .named = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR};
static const Resource volumes = {
        RES("volume", "volumes", "volumes", "volume", "Volume",
            "Volumes of an image storage: directories holding disk images.", volume_fields),
        .named = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR};
static const Resource media = {RES("media", "media", "media_storages", "media", "MediaStorage",
                                   "Media storages: ISO libraries.", media_fields),
                               .named = TRUE, .read_role = ROLE_OPERATOR,
                               .write_role = ROLE_OPERATOR};
static const Resource guests = {
        RES("guest", "guests", "guests", "guest", "Guest",
            "Standalone virtual machines, and the sources of templates.", guest_fields),
        .named = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR};
static const Resource templates = {
        RES("template", "templates", "templates", "template", "Template",
            "Frozen, versioned disks and hardware that desktops are cloned from.", template_fields),
        .named = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR};
static const Resource template_versions = {
        RES("template-version", "template-versions", "template_versions", "template-version",
            "TemplateVersion",
            "Versions of templates: read-only base images; one nobody uses can be deleted.",
            template_version_fields),
        .named = TRUE, .no_create = TRUE, .no_update = TRUE, .read_role = ROLE_OPERATOR,
        .write_role = ROLE_OPERATOR};
static const Resource pools = {RES("pool", "pools", "pools", "pool", "Pool",
                                   "Pools of desktops cloned from one template.", pool_fields),
                               .named = TRUE, .read_role = ROLE_OPERATOR,
                               .write_role = ROLE_OPERATOR, .check = pool_check};
static const Resource entitlements = {
        RES("entitlement", "entitlements", "entitlements", "entitlement", "Entitlement",
            "Who may use a pool: a user, a group or a terminal.", entitlement_fields),
        .no_update = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR,
        .check = entitlement_check};
static const Resource permissions = {
        RES("permission", "permissions", "permissions", "permission", "Permission",
            "A role on one pool only (a pool admin): operator or helpdesk, for a user or a group.",
            permission_fields),
        .no_update = TRUE, .read_role = ROLE_ADMIN, .write_role = ROLE_ADMIN,
        .check = permission_check};
static const Resource desktops = {RES("desktop", "desktops", "desktops", "desktop", "Desktop",
                                      "Desktops: clones of a pool's template.", desktop_fields),
                                  .named = TRUE, .owner_field = "user", .read_role = ROLE_USER,
                                  .write_role = ROLE_OPERATOR};
static const Resource terminals = {
        RES("terminal", "terminals", "terminals", "terminal", "Terminal",
            "Registered terminals (thin clients), with an optional fixed pool or desktop.",
            terminal_fields),
        .named = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_OPERATOR};
static const Resource sessions = {RES("session", "sessions", "sessions", "session", "Session",
                                      "Sessions: a user connected to a desktop.", session_fields),
                                  .owner_field = "user", .read_role = ROLE_USER,
                                  .write_role = ROLE_OPERATOR};
static const Resource operations = {
        RES("operation", "operations", "operations", "operation", "Operation",
            "Long operations (pool create, resize, delete, recompose, template roll-out) with "
            "their progress.",
            operation_fields),
        .read_only = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_ADMIN};
static const Resource events = {
        RES("event", "events", "events", "event", "Event",
            "Audit trail: who changed what, when, from where.", event_fields),
        .read_only = TRUE, .read_role = ROLE_OPERATOR, .write_role = ROLE_ADMIN};

/* Order matters only for display (help, OpenAPI). */
static const Resource *const all[] = {
        &users, &groups,       &hosts,    &join_tokens, &storages, &volumes, &media,
        &guests, &templates, &template_versions, &pools, &entitlements, &permissions, &terminals, &desktops, &sessions,
        &operations, &events};

const Resource *const *resources_all(gsize *n)
{
        *n = N(all);
        return all;
}

const Resource *resource_by_kind(const char *kind)
{
        for (gsize i = 0; i < N(all); i++)
                if (g_str_equal(all[i]->kind, kind))
                        return all[i];
        return NULL;
}

const Resource *resource_by_plural(const char *plural)
{
        for (gsize i = 0; i < N(all); i++)
                if (g_str_equal(all[i]->plural, plural))
                        return all[i];
        return NULL;
}
