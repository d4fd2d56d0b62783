/* Host commands: see hostcmd.h. */
#include "manager/hostcmd.h"
#include "manager/rows.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/naming.h"

#include <string.h>

void host_cmd_free(HostCmd *cmd)
{
        if (!cmd)
                return;
        if (cmd->args)
                json_object_unref(cmd->args);
        g_free(cmd);
}

gboolean hostcmd_send(const HostCall *call, HostCmd *cmd, GError **error)
{
        gboolean sent =
                agentlink_call(call->agents, call->host_id, cmd->op, g_steal_pointer(&cmd->args),
                               call->timeout_s, call->cb, call->data, error);

        host_cmd_free(cmd);
        return sent;
}

static HostCmd *cmd_new(AgentOp op, JsonObject *args)
{
        HostCmd *cmd = g_new0(HostCmd, 1);

        cmd->op = op;
        cmd->args = args ? args : json_object_new();
        return cmd;
}

static HostCmd *on_domain(AgentOp op, const char *domain)
{
        HostCmd *cmd = cmd_new(op, NULL);

        json_object_set_string_member(cmd->args, "domain", domain);
        return cmd;
}

/* ---- domain descriptions ----------------------------------------------------------------- */

JsonObject *hostcmd_desktop_spec(const char *installation, JsonObject *d, JsonObject *pool,
                                 JsonObject *ver, const char *volume_path)
{
        gint64 id = row_id(d);
        g_autofree char *domain = agent_domain_name(installation, "desktop", id);
        g_autofree char *disk = desktop_overlay_name(installation, id);
        JsonObject *a = json_object_new();

        json_object_set_string_member(a, "domain", domain);
        json_object_set_string_member(a, "title", row_str(d, "name"));
        json_object_set_int_member(a, "vcpus", row_int(ver, "cpus"));
        json_object_set_int_member(a, "ram_mb", row_int(ver, "ram_mb"));
        json_object_set_string_member(a, "volume", volume_path);
        json_object_set_string_member(a, "disk", disk);
        json_object_set_string_member(a, "base", row_str(ver, "image"));
        json_object_set_string_member(a, "clipboard", row_str(pool, "clipboard"));
        json_object_set_boolean_member(a, "file_transfer", row_bool(pool, "file_transfer"));
        json_object_set_boolean_member(a, "audio", row_bool(pool, "audio"));
        json_object_set_int_member(a, "usb_redir", row_int(pool, "usb_redir"));
        json_object_set_int_member(a, "monitors", row_int(pool, "monitors"));
        return a;
}

JsonObject *hostcmd_desktop_spec_of(Store *st, const char *installation, JsonObject *d,
                                    GError **error)
{
        g_autoptr(JsonObject) pool = row_get(st, "pool", row_ref(d, "pool_id"), error);
        g_autoptr(JsonObject) ver =
                pool ? row_get(st, "template-version", row_ref(d, "template_version_id"), error)
                     : NULL;
        g_autoptr(JsonObject) vol =
                ver ? row_get(st, "volume", row_ref(ver, "volume_id"), error) : NULL;

        if (!vol) {
                g_prefix_error(error, "desktop '%s': ", row_str(d, "name"));
                return NULL;
        }
        return hostcmd_desktop_spec(installation, d, pool, ver, row_str(vol, "path"));
}

JsonObject *hostcmd_guest_spec(const char *domain, JsonObject *g, const char *volume_path,
                               const char *media_path)
{
        JsonObject *a = json_object_new();
        const char *iso = row_str(g, "iso");

        json_object_set_string_member(a, "domain", domain);
        json_object_set_string_member(a, "title", row_str(g, "name"));
        json_object_set_int_member(a, "vcpus", row_int(g, "cpus"));
        json_object_set_int_member(a, "ram_mb", row_int(g, "ram_mb"));
        json_object_set_string_member(a, "volume", volume_path);
        json_object_set_string_member(a, "disk", row_str(g, "disk"));
        json_object_set_int_member(a, "disk_gb", row_int(g, "disk_gb"));
        if (media_path && iso[0]) {
                json_object_set_string_member(a, "media", media_path);
                json_object_set_string_member(a, "iso", iso);
        }
        json_object_set_boolean_member(a, "boot_cdrom", row_bool(g, "boot_cdrom"));
        json_object_set_string_member(a, "network", row_str(g, "network"));
        json_object_set_string_member(a, "block_device", row_str(g, "block_device"));
        return a;
}

/* ---- domain life cycle ------------------------------------------------------------------- */

HostCmd *hostcmd_start(JsonObject *spec)
{
        return cmd_new(AGENT_OP_DOMAIN_START, spec);
}

HostCmd *hostcmd_shutdown(const char *domain, gint64 timeout_s, gboolean force)
{
        HostCmd *cmd = on_domain(AGENT_OP_DOMAIN_SHUTDOWN, domain);

        json_object_set_int_member(cmd->args, "timeout", timeout_s);
        json_object_set_boolean_member(cmd->args, "force", force);
        return cmd;
}

HostCmd *hostcmd_reboot(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_REBOOT, domain);
}

HostCmd *hostcmd_reset(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_RESET, domain);
}

HostCmd *hostcmd_destroy(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_DESTROY, domain);
}

HostCmd *hostcmd_undefine(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_UNDEFINE, domain);
}

HostCmd *hostcmd_remove(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_REMOVE, domain);
}

HostCmd *hostcmd_at_epoch(HostCmd *cmd, gint64 epoch)
{
        json_object_set_int_member(cmd->args, "epoch", epoch);
        return cmd;
}

HostCmd *hostcmd_migrate(const char *domain, const char *to_address, gint64 new_epoch,
                         gint64 timeout_s, gint64 max_downtime_ms, gint64 bandwidth_mib)
{
        HostCmd *cmd = on_domain(AGENT_OP_DOMAIN_MIGRATE, domain);

        json_object_set_string_member(cmd->args, "to_address", to_address);
        json_object_set_int_member(cmd->args, "new_epoch", new_epoch);
        json_object_set_int_member(cmd->args, "timeout", timeout_s);
        json_object_set_int_member(cmd->args, "max_downtime_ms", max_downtime_ms);
        if (bandwidth_mib > 0)
                json_object_set_int_member(cmd->args, "bandwidth", bandwidth_mib);
        return cmd;
}

HostCmd *hostcmd_migrate_cancel(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_MIGRATE_CANCEL, domain);
}

HostCmd *hostcmd_describe(const char *domain)
{
        return on_domain(AGENT_OP_DOMAIN_DESCRIBE, domain);
}

HostCmd *hostcmd_media(const char *domain, const char *media_path, const char *iso)
{
        HostCmd *cmd = on_domain(AGENT_OP_DOMAIN_MEDIA, domain);

        if (media_path)
                json_object_set_string_member(cmd->args, "media", media_path);
        json_object_set_string_member(cmd->args, "iso", iso);
        return cmd;
}

/* ---- consoles ---------------------------------------------------------------------------- */

static HostCmd *console(const char *domain, ConsoleProtocol protocol, const char *password,
                        gint64 expires_at, gboolean disconnect)
{
        HostCmd *cmd = on_domain(AGENT_OP_DOMAIN_CONSOLE, domain);

        json_object_set_string_member(cmd->args, "protocol", console_protocol_to_string(protocol));
        json_object_set_string_member(cmd->args, "password", password);
        json_object_set_int_member(cmd->args, "expires_at", expires_at);
        if (disconnect)
                json_object_set_boolean_member(cmd->args, "disconnect", TRUE);
        return cmd;
}

/* A random password of the length the protocol takes. */
static char *console_password(ConsoleProtocol protocol)
{
        char *pw = util_random_password();
        gsize max = console_protocol_password_max(protocol);

        if (max && strlen(pw) > max)
                pw[max] = '\0';
        return pw;
}

HostCmd *hostcmd_console(const char *domain, ConsoleProtocol protocol, gint64 expires_at,
                         char **password)
{
        char *pw = console_password(protocol);

        *password = pw;
        return console(domain, protocol, pw, expires_at, FALSE);
}

HostCmd *hostcmd_console_drop(const char *domain, ConsoleProtocol protocol)
{
        g_autofree char *pw = console_password(protocol);

        return console(domain, protocol, pw, row_now() - 1, TRUE);
}

/* ---- guest tools, pool desktops, images, listings ---------------------------------------- */

HostCmd *hostcmd_guest_request(const char *domain, GuestOp op, const char *arg)
{
        HostCmd *cmd = on_domain(AGENT_OP_GUEST_REQUEST, domain);

        json_object_set_string_member(cmd->args, "op", guest_op_to_string(op));
        if (arg && op == GUEST_OP_SET_HOSTNAME)
                json_object_set_string_member(cmd->args, "hostname", arg);
        else if (arg && op == GUEST_OP_LOGIN)
                json_object_set_string_member(cmd->args, "user", arg);
        return cmd;
}

HostCmd *hostcmd_provision(JsonObject *spec)
{
        return cmd_new(AGENT_OP_DESKTOP_PROVISION, spec);
}

HostCmd *hostcmd_desktop_delete(const char *domain, const char *volume, const char *disk)
{
        HostCmd *cmd = on_domain(AGENT_OP_DESKTOP_DELETE, domain);

        json_object_set_string_member(cmd->args, "volume", volume);
        json_object_set_string_member(cmd->args, "disk", disk);
        return cmd;
}

static HostCmd *image(AgentOp op, const char *volume, const char *name)
{
        HostCmd *cmd = cmd_new(op, NULL);

        json_object_set_string_member(cmd->args, "volume", volume);
        json_object_set_string_member(cmd->args, "name", name);
        return cmd;
}

HostCmd *hostcmd_image_base(const char *volume, const char *name, const char *source_volume,
                            const char *source)
{
        HostCmd *cmd = image(AGENT_OP_IMAGE_BASE, volume, name);

        json_object_set_string_member(cmd->args, "source_volume", source_volume);
        json_object_set_string_member(cmd->args, "source", source);
        return cmd;
}

HostCmd *hostcmd_image_delete(const char *volume, const char *name)
{
        return image(AGENT_OP_IMAGE_DELETE, volume, name);
}

HostCmd *hostcmd_volume_list(const char *volume)
{
        HostCmd *cmd = cmd_new(AGENT_OP_VOLUME_LIST, NULL);

        json_object_set_string_member(cmd->args, "volume", volume);
        return cmd;
}

HostCmd *hostcmd_media_list(const char *media)
{
        HostCmd *cmd = cmd_new(AGENT_OP_MEDIA_LIST, NULL);

        json_object_set_string_member(cmd->args, "media", media);
        return cmd;
}

HostCmd *hostcmd_inventory(void)
{
        return cmd_new(AGENT_OP_INVENTORY, NULL);
}
