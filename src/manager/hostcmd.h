/* Host commands: the only place in the manager that names an agent operation and builds its
 * arguments (proto/agentproto.h, docs/architecture.md "Agent link"). A builder makes one
 * command with the rules of its operation (a console password fits its protocol, a shutdown
 * has a bounded wait); hostcmd_send() sends it over the host's link (agentlink.h).
 *
 *   HostCall call = {mgr->agents, host_id, timeout_s, on_reply, data};
 *   if (!hostcmd_send(&call, hostcmd_shutdown(domain, 60, TRUE), error))
 *           return FALSE;                 // the host has no link; on_reply is not called
 */
#pragma once
#include "manager/agentlink.h"
#include "proto/guestproto.h"
#include "proto/vocab.h"

typedef struct {
        AgentOp op;
        JsonObject *args;
} HostCmd;
void host_cmd_free(HostCmd *cmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostCmd, host_cmd_free)

/* Where a command goes, how long its reply may take, and who hears it (on the caller's
 * thread-default context). */
typedef struct {
        Agents *agents;
        gint64 host_id;
        guint timeout_s;
        AgentReplyFunc cb;
        gpointer data;
} HostCall;

/* Sends cmd (taken). FALSE with an error, cb not called, when the host has no link. A command
 * on a desktop's or guest's domain is stamped on its way with the object's placement epoch
 * (agentlink.c), unless it carries one already (hostcmd_at_epoch). */
gboolean hostcmd_send(const HostCall *call, HostCmd *cmd, GError **error);

/* The description of a domain the agent defines (its DomainSpec): a desktop from its rows (the
 * pool's policies, the version's hardware and base image, the version's volume path), or a
 * guest from its row and the paths of its volume and media storage (media NULL: none). */
JsonObject *hostcmd_desktop_spec(const char *installation, JsonObject *desktop, JsonObject *pool,
                                 JsonObject *version, const char *volume_path);
/* A desktop's description from its row and the rows it names (its pool, version and the
 * version's volume); NULL with an error when one of them is gone. */
JsonObject *hostcmd_desktop_spec_of(Store *st, const char *installation, JsonObject *desktop,
                                    GError **error);
JsonObject *hostcmd_guest_spec(const char *domain, JsonObject *guest, const char *volume_path,
                               const char *media_path);

/* Domain life cycle. spec is taken. */
HostCmd *hostcmd_start(JsonObject *spec);
HostCmd *hostcmd_shutdown(const char *domain, gint64 timeout_s, gboolean force);
HostCmd *hostcmd_reboot(const char *domain);
HostCmd *hostcmd_reset(const char *domain);
HostCmd *hostcmd_destroy(const char *domain);
HostCmd *hostcmd_undefine(const char *domain);
/* Destroyed and undefined (an orphan, or a stale domain). */
HostCmd *hostcmd_remove(const char *domain);
/* The command for a domain at that placement epoch (the domain's own, as its host reported
 * it), not the object's: a stale or orphan domain is removed at its own epoch. Returns cmd. */
HostCmd *hostcmd_at_epoch(HostCmd *cmd, gint64 epoch);
/* Live migration to the host at to_address, where the domain takes placement epoch
 * new_epoch; aborted after timeout_s; the switch-over pauses it at most max_downtime_ms; at
 * most bandwidth_mib MiB/s (0: no limit). */
HostCmd *hostcmd_migrate(const char *domain, const char *to_address, gint64 new_epoch,
                         gint64 timeout_s, gint64 max_downtime_ms, gint64 bandwidth_mib);
/* The domain's migration in progress aborted (it keeps running where it is). */
HostCmd *hostcmd_migrate_cancel(const char *domain);
/* {domain, state, ports, epoch} of the domain as its host sees it. */
HostCmd *hostcmd_describe(const char *domain);
/* The CD-ROM: the ISO iso of the media storage at media_path; iso "" ejects. */
HostCmd *hostcmd_media(const char *domain, const char *media_path, const char *iso);

/* A one-time console password valid until expires_at, made here by the protocol's rule (VNC
 * takes 8 characters) and returned in *password. */
HostCmd *hostcmd_console(const char *domain, ConsoleProtocol protocol, gint64 expires_at,
                         char **password);
/* The console's password expired and its clients disconnected. */
HostCmd *hostcmd_console_drop(const char *domain, ConsoleProtocol protocol);

/* A request to atrium-guest in the domain; arg: the host name of GUEST_OP_SET_HOSTNAME, the
 * user of GUEST_OP_LOGIN, NULL otherwise. */
HostCmd *hostcmd_guest_request(const char *domain, GuestOp op, const char *arg);

/* Pool desktops: the overlay made and the domain defined (spec is taken); the domain and
 * the overlay DISK in the volume removed. */
HostCmd *hostcmd_provision(JsonObject *spec);
HostCmd *hostcmd_desktop_delete(const char *domain, const char *volume, const char *disk);

/* Images in a volume: a base image NAME copied from SOURCE in SOURCE_VOLUME, or deleted. */
HostCmd *hostcmd_image_base(const char *volume, const char *name, const char *source_volume,
                            const char *source);
HostCmd *hostcmd_image_delete(const char *volume, const char *name);

/* What a host holds: a volume's images, a media storage's ISOs, its Atrium domains. */
HostCmd *hostcmd_volume_list(const char *volume);
HostCmd *hostcmd_media_list(const char *media);
HostCmd *hostcmd_inventory(void);
