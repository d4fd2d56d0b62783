#include "agent/domxml.h"
#include "common/error.h"
#include "common/util.h"

#include <gio/gio.h>
#include <string.h>

#define GUEST_PORT "org.atrium.guest.0"

static gboolean invalid(GError **error, const char *field, const char *why)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "domain spec: %s %s", field, why);
        return FALSE;
}

static gboolean path_ok(const char *p)
{
        return p && g_path_is_absolute(p) && !strstr(p, "/../") &&
               util_text_valid("path", p, 4096, NULL);
}

static gboolean mac_ok(const char *mac)
{
        if (strlen(mac) != 17)
                return FALSE;
        for (int i = 0; i < 17; i++)
                if (i % 3 == 2 ? mac[i] != ':' : !g_ascii_isxdigit(mac[i]))
                        return FALSE;
        return TRUE;
}

static gboolean check(const DomainSpec *s, GError **error)
{
        g_autoptr(GInetAddress) listen = s->listen ? g_inet_address_new_from_string(s->listen)
                                                   : NULL;

        if (!s->name || !util_name_valid(s->name, NULL))
                return invalid(error, "name", "must be a valid Atrium name");
        if (s->uuid && !g_uuid_string_is_valid(s->uuid))
                return invalid(error, "uuid", "is not a UUID");
        if (s->vcpus < 1 || s->vcpus > 256)
                return invalid(error, "vcpus", "must be 1 to 256");
        if (s->ram_mb < 64 || s->ram_mb > (1ULL << 22))
                return invalid(error, "ram_mb", "must be 64 MiB to 4 TiB");
        if (!path_ok(s->disk))
                return invalid(error, "disk", "must be an absolute path");
        if (s->block_device && !path_ok(s->block_device))
                return invalid(error, "block_device", "must be an absolute path");
        if (s->cdrom && !path_ok(s->cdrom))
                return invalid(error, "cdrom", "must be an absolute path");
        if (s->boot_cdrom && !s->cdrom)
                return invalid(error, "boot_cdrom", "needs a cdrom");
        if (s->network && s->bridge)
                return invalid(error, "network", "and bridge are exclusive");
        if ((s->network && !util_name_valid(s->network, NULL)) ||
            (s->bridge && !util_name_valid(s->bridge, NULL)))
                return invalid(error, "network or bridge", "must be a valid name");
        if (s->mac && !mac_ok(s->mac))
                return invalid(error, "mac", "must look like 52:54:00:12:34:56");
        if (!listen)
                return invalid(error, "listen", "must be an IP address (the management address)");
        if (g_inet_address_get_is_any(listen))
                return invalid(error, "listen",
                               "must be the host's management address, not every address");
        if (s->guest_channel && !path_ok(s->guest_channel))
                return invalid(error, "guest_channel", "must be an absolute path (or unset)");
        if (s->console_password &&
            (!s->console_password[0] || strlen(s->console_password) > 8 || !s->console_valid_to ||
             strlen(s->console_valid_to) != 19))
                return invalid(error, "console_password",
                               "must be 1 to 8 characters, with a console_valid_to time");
        if (s->monitors < 1 || s->monitors > DOMXML_MAX_MONITORS)
                return invalid(error, "monitors", "must be 1 to 4");
        if (s->usb_redir > DOMXML_MAX_USB_REDIR)
                return invalid(error, "usb_redir", "must be 0 to 8");
        if (s->clipboard > DOMXML_CLIPBOARD_BOTH)
                return invalid(error, "clipboard", "is not a clipboard policy");
        return TRUE;
}

/* Append printf-style text with every %s argument escaped for XML: arguments are values,
 * never markup. */
static void add(GString *x, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void add(GString *x, const char *fmt, ...)
{
        va_list ap;
        g_autofree char *s = NULL;

        va_start(ap, fmt);
        s = g_markup_vprintf_escaped(fmt, ap);
        va_end(ap);
        g_string_append(x, s);
}

static void add_disks(GString *x, const DomainSpec *s)
{
        add(x, "    <disk type='file' device='disk'>\n"
               "      <driver name='qemu' type='qcow2' discard='unmap'/>\n"
               "      <source file='%s'/>\n"
               "      <target dev='vda' bus='virtio'/>\n"
               "    </disk>\n",
            s->disk);
        if (s->block_device)
                add(x, "    <disk type='block' device='disk'>\n"
                       "      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
                       "      <source dev='%s'/>\n"
                       "      <target dev='vdb' bus='virtio'/>\n"
                       "    </disk>\n",
                    s->block_device);
        /* Always a drive, so that an ISO can be inserted while the guest runs. */
        add(x, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n");
        if (s->cdrom)
                add(x, "      <source file='%s'/>\n", s->cdrom);
        add(x, "      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>\n");
}

static void add_network(GString *x, const DomainSpec *s)
{
        if (s->network)
                add(x, "    <interface type='network'>\n      <source network='%s'/>\n",
                    s->network);
        else if (s->bridge)
                add(x, "    <interface type='bridge'>\n      <source bridge='%s'/>\n", s->bridge);
        else
                add(x, "    <interface type='user'>\n");
        if (s->mac)
                add(x, "      <mac address='%s'/>\n", s->mac);
        add(x, "      <model type='virtio'/>\n    </interface>\n");
}

/* SPICE and VNC on the management address only, ports picked by libvirt. SPICE's clipboard
 * switch is all or nothing: a one-way policy turns it on here and the direction is enforced
 * on the console path (the gateway). */
static void add_password(GString *x, const DomainSpec *s)
{
        if (s->console_password)
                add(x, " passwd='%s' passwdValidTo='%s'", s->console_password,
                    s->console_valid_to);
}

static void add_consoles(GString *x, const DomainSpec *s)
{
        add(x, "    <graphics type='spice' autoport='yes' listen='%s'", s->listen);
        add_password(x, s);
        add(x, ">\n      <listen type='address' address='%s'/>\n"
               "      <clipboard copypaste='%s'/>\n"
               "      <filetransfer enable='%s'/>\n"
               "    </graphics>\n"
               "    <graphics type='vnc' autoport='yes' listen='%s'",
            s->listen, s->clipboard == DOMXML_CLIPBOARD_NONE ? "no" : "yes",
            s->file_transfer ? "yes" : "no", s->listen);
        add_password(x, s);
        add(x, ">\n      <listen type='address' address='%s'/>\n    </graphics>\n", s->listen);
        add(x, "    <video>\n      <model type='qxl' heads='%u' primary='yes'/>\n    </video>\n",
            s->monitors);
}

static void add_channels(GString *x, const DomainSpec *s)
{
        add(x, "    <controller type='virtio-serial' index='0'/>\n    <channel type='unix'>\n");
        if (s->guest_channel) /* else libvirt puts the socket in its channel directory */
                add(x, "      <source mode='bind' path='%s'/>\n", s->guest_channel);
        else
                add(x, "      <source mode='bind'/>\n");
        add(x, "      <target type='virtio' name='" GUEST_PORT "'/>\n"
               "    </channel>\n"
               "    <channel type='spicevmc'>\n"
               "      <target type='virtio' name='com.redhat.spice.0'/>\n"
               "    </channel>\n");
        add(x, "    <controller type='usb' model='qemu-xhci'/>\n");
        for (guint i = 0; i < s->usb_redir; i++)
                add(x, "    <redirdev bus='usb' type='spicevmc'/>\n");
        if (s->audio)
                add(x, "    <sound model='ich9'/>\n    <audio id='1' type='spice'/>\n");
}

char *domxml_build(const DomainSpec *s, GError **error)
{
        GString *x;

        if (!check(s, error))
                return NULL;
        x = g_string_new(NULL);
        add(x, "<domain type='%s'>\n  <name>%s</name>\n",
            s->accel == DOMXML_ACCEL_KVM ? "kvm" : "qemu", s->name);
        if (s->uuid)
                add(x, "  <uuid>%s</uuid>\n", s->uuid);
        if (s->title)
                add(x, "  <title>%s</title>\n", s->title);
        /* Marks the domain as Atrium's: the agent touches no other. */
        add(x, "  <metadata>\n    <atrium:domain xmlns:atrium='%s' version='1'", DOMXML_XMLNS);
        if (s->epoch > 0)
                add(x, " epoch='%" G_GINT64_FORMAT "'", s->epoch);
        if (s->recoverable)
                add(x, " recoverable='yes'");
        add(x, "/>\n  </metadata>\n");
        add(x, "  <memory unit='MiB'>%" G_GUINT64_FORMAT "</memory>\n  <vcpu>%u</vcpu>\n",
            s->ram_mb, s->vcpus);
        add(x, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
        if (s->boot_cdrom)
                add(x, "    <boot dev='cdrom'/>\n");
        add(x, "    <boot dev='hd'/>\n  </os>\n");
        add(x, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
        if (s->accel == DOMXML_ACCEL_KVM)
                add(x, "  <cpu mode='host-passthrough'/>\n");
        add(x, "  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
               "  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n"
               "  <devices>\n");
        add_disks(x, s);
        add_network(x, s);
        add_channels(x, s);
        add_consoles(x, s);
        /* A serial console on a pty, for an administrator's "virsh console". */
        add(x, "    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n"
               "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n");
        add(x, "    <input type='tablet' bus='usb'/>\n    <memballoon model='virtio'/>\n"
               "  </devices>\n</domain>\n");
        return g_string_free(x, FALSE);
}

/* ---- the copy a migration takes ------------------------------------------------------------ */

/* The start tag around position at (the '<' before it and the '>' after it). */
static gboolean tag_around(const char *xml, const char *at, const char **start, const char **end)
{
        const char *s = at, *e = strchr(at, '>');

        while (s > xml && *s != '<')
                s--;
        if (*s != '<' || !e)
                return FALSE;
        *start = s;
        *end = e;
        return TRUE;
}

/* Replaces attribute NAME's value in the tag [start, end) of xml (appended to out up to end),
 * or adds it when the tag has none. */
static void tag_with_attr(GString *out, const char *start, const char *end, const char *name,
                          const char *value)
{
        g_autofree char *key = g_strdup_printf(" %s=", name);
        const char *a = g_strstr_len(start, end - start, key);

        if (a && (a[strlen(key)] == '\'' || a[strlen(key)] == '"')) {
                char q = a[strlen(key)];
                const char *v = a + strlen(key) + 1, *ve = memchr(v, q, end - v);
                if (ve) {
                        g_string_append_len(out, start, v - start);
                        g_string_append(out, value);
                        g_string_append_len(out, ve, end - ve);
                        return;
                }
        }
        /* none: before the end of the tag ("/>" or ">") */
        {
                const char *close = end > start && end[-1] == '/' ? end - 1 : end;
                g_string_append_len(out, start, close - start);
                g_string_append_printf(out, " %s='%s'", name, value);
                g_string_append_len(out, close, end - close);
        }
}

/* In the graphics elements, every listen or address attribute whose value is from. */
static char *graphics_moved(const char *xml, const char *from, const char *to)
{
        GString *out = g_string_new(NULL);
        const char *p = xml, *g;

        while ((g = strstr(p, "<graphics "))) {
                const char *te = strchr(g, '>'), *ge;
                if (!te)
                        break;
                ge = te[-1] == '/' ? te + 1 : strstr(te, "</graphics>");
                if (!ge)
                        break;
                g_string_append_len(out, p, g - p);
                for (const char *q = g; q < ge;) {
                        gboolean hit = FALSE;
                        for (int k = 0; k < 4 && !hit; k++) {
                                static const char *const keys[] = {"listen='", "listen=\"",
                                                                   "address='", "address=\""};
                                gsize kl = strlen(keys[k]), fl = strlen(from);
                                if (strncmp(q, keys[k], kl) == 0 && strncmp(q + kl, from, fl) == 0 &&
                                    q[kl + fl] == keys[k][kl - 1]) {
                                        g_string_append_len(out, q, kl);
                                        g_string_append(out, to);
                                        q += kl + fl;
                                        hit = TRUE;
                                }
                        }
                        if (!hit)
                                g_string_append_c(out, *q++);
                }
                p = ge;
        }
        g_string_append(out, p);
        return g_string_free(out, FALSE);
}

char *domxml_migrated(const char *xml, const char *from_address, const char *to_address,
                      gint64 epoch, GError **error)
{
        g_autoptr(GInetAddress) from = g_inet_address_new_from_string(from_address ? from_address : "");
        g_autoptr(GInetAddress) to = g_inet_address_new_from_string(to_address ? to_address : "");
        g_autofree char *moved = NULL, *ep = NULL;
        const char *ns, *start, *end;
        GString *out;

        if (!from || !to) {
                invalid(error, "listen", "must be an IP address (the management address)");
                return NULL;
        }
        if (epoch < 1) {
                invalid(error, "epoch", "must be at least 1");
                return NULL;
        }
        moved = graphics_moved(xml, from_address, to_address);
        ns = strstr(moved, DOMXML_XMLNS);
        if (!ns || !tag_around(moved, ns, &start, &end)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the domain's XML has no Atrium metadata: it is not ours");
                return NULL;
        }
        ep = g_strdup_printf("%" G_GINT64_FORMAT, epoch);
        out = g_string_new_len(moved, start - moved);
        tag_with_attr(out, start, end, "epoch", ep);
        g_string_append(out, end);
        return g_string_free(out, FALSE);
}

char *domxml_console_valid_until(const char *xml, const char *until)
{
        GString *out = g_string_new(NULL);
        const char *p = xml, *g;

        while ((g = strstr(p, "<graphics "))) {
                const char *te = strchr(g, '>');
                if (!te)
                        break;
                g_string_append_len(out, p, g - p);
                if (g_strstr_len(g, te - g, " passwdValidTo="))
                        tag_with_attr(out, g, te, "passwdValidTo", until);
                else
                        g_string_append_len(out, g, te - g);
                p = te;
        }
        g_string_append(out, p);
        return g_string_free(out, FALSE);
}
