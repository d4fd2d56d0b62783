/* The agent's commands (proto/agentproto.h), run in its worker threads: domain lifecycle
 * through virt.c, images through storage.c, and the desktop steps the manager's pool
 * reconciler asks for. */
#define G_LOG_DOMAIN "agent"

#include "agent/agent.h"
#include "agent/agent-private.h"
#include "agent/storage.h"
#include "agent/virt.h"
#include "common/error.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/vocab.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* ---- the work (worker threads) ----------------------------------------------------------- */

static gboolean net_from(const char *net, DomainSpec *s)
{
        if (!net || !net[0])
                return TRUE;
        if (g_str_has_prefix(net, "bridge:"))
                s->bridge = net + strlen("bridge:");
        else
                s->network = net;
        return TRUE;
}

const char *agent_domain_arg(JsonObject *args, GError **error)
{
        const char *d = agent_arg_string(args, "domain", TRUE, error), *kind;
        gint64 id;

        if (d && !agent_domain_parse(d, NULL, &kind, &id)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not the name of an Atrium domain (atrium-INST-KIND-ID)", d);
                return NULL;
        }
        return d;
}

static JsonObject *done_obj(const char *domain, const char *state)
{
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "domain", domain);
        if (state)
                json_object_set_string_member(o, "state", state);
        return o;
}

/* A domain spec from a command's arguments, with the strings it points to. */
typedef struct {
        DomainSpec s;
        char *disk, *cdrom, *pw, *bdev;
} SpecHold;

static void spec_hold_clear(SpecHold *h)
{
        g_free(h->disk);
        g_free(h->cdrom);
        g_free(h->pw);
        g_free(h->bdev);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpecHold, spec_hold_clear)

static gboolean spec_from_args(Agent *a, JsonObject *args, SpecHold *h, GError **error)
{
        static const char *const policies[] = {"none", "to-guest", "from-guest", "both"};
        DomainSpec *s = &h->s;
        const char *block, *clip;
        gint64 vcpus, ram, disk_gb, usb, monitors;
        const char *volume, *disk_name, *media, *iso, *net;

        if (!(s->name = agent_domain_arg(args, error)) ||
            !agent_arg_int(args, "vcpus", 1, 256, 1, &vcpus, error) ||
            !agent_arg_int(args, "ram_mb", 64, 1LL << 22, 1024, &ram, error) ||
            !agent_arg_int(args, "disk_gb", 0, 65536, 0, &disk_gb, error) ||
            !agent_arg_int(args, "usb_redir", 0, DOMXML_MAX_USB_REDIR, 0, &usb, error) ||
            !agent_arg_int(args, "monitors", 1, DOMXML_MAX_MONITORS, 1, &monitors, error) ||
            !(volume = agent_arg_string(args, "volume", TRUE, error)) ||
            !(disk_name = agent_arg_string(args, "disk", TRUE, error)))
                return FALSE;
        s->title = agent_arg_string(args, "title", FALSE, NULL);
        media = agent_arg_string(args, "media", FALSE, NULL);
        iso = agent_arg_string(args, "iso", FALSE, NULL);
        net = agent_arg_string(args, "network", FALSE, NULL);
        if (!net || !net[0])
                net = config_get_string(a->config, "agent", "network");
        h->disk = storage_path((const char *const *)a->roots, volume, disk_name, disk_gb == 0,
                               error);
        if (!h->disk)
                return FALSE;
        if (!g_file_test(h->disk, G_FILE_TEST_EXISTS) &&
            !storage_blank_create(h->disk, disk_gb, error))
                return FALSE;
        if (iso && iso[0]) {
                if (!media) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "argument 'media' is missing for the ISO");
                        return FALSE;
                }
                h->cdrom = storage_path((const char *const *)a->roots, media, iso, TRUE, error);
                if (!h->cdrom)
                        return FALSE;
        }
        block = agent_arg_string(args, "block_device", FALSE, NULL);
        if (block && block[0]) {
                g_auto(GStrv) allowed =
                        g_strsplit(config_get_string(a->config, "agent", "block_devices"), ":", -1);
                if (!(h->bdev = storage_block_device((const char *const *)allowed, block, error)))
                        return FALSE;
                s->block_device = h->bdev;
        }
        s->vcpus = vcpus;
        s->ram_mb = ram;
        s->disk = h->disk;
        s->cdrom = h->cdrom;
        s->boot_cdrom = h->cdrom && agent_arg_bool(args, "boot_cdrom", FALSE);
        net_from(net, s);
        s->listen = a->address;
        h->pw = util_random_password();
        h->pw[8] = '\0';
        s->console_password = h->pw; /* expired at once: a console needs a one-time password */
        s->console_valid_to = "2000-01-01T00:00:00";
        s->accel = a->accel.accel;
        clip = agent_arg_string(args, "clipboard", FALSE, NULL);
        s->clipboard = DOMXML_CLIPBOARD_BOTH;
        for (gsize i = 0; clip && i < G_N_ELEMENTS(policies); i++)
                if (g_str_equal(clip, policies[i]))
                        s->clipboard = (DomxmlClipboard)i;
        if (clip && !g_str_equal(clip, policies[s->clipboard])) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "argument 'clipboard' must be none, to-guest, from-guest or both");
                return FALSE;
        }
        s->file_transfer = agent_arg_bool(args, "file_transfer", TRUE);
        if (!agent_arg_int(args, "epoch", 0, G_MAXINT64, 0, &s->epoch, error))
                return FALSE;
        s->recoverable = agent_arg_bool(args, "recoverable", FALSE);
        s->audio = agent_arg_bool(args, "audio", FALSE);
        s->usb_redir = usb;
        s->monitors = monitors;
        return TRUE;
}

static JsonObject *op_start(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        g_auto(SpecHold) h = {0};

        if (!spec_from_args(a, args, &h, error))
                return NULL;
        return virt_define(a->virt, &h.s, TRUE, error);
}

/* A desktop made fresh: its domain powered off, its overlay replaced by a new one on the base
 * image, its domain (re)defined, not started. Each step may be repeated (the manager retries
 * after a crash); on failure nothing of it is left: no overlay, no domain. */
static JsonObject *op_provision(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        const char *const *roots = (const char *const *)a->roots;
        const char *domain = agent_domain_arg(args, error);
        const char *vol = domain ? agent_arg_string(args, "volume", TRUE, error) : NULL;
        const char *disk = vol ? agent_arg_string(args, "disk", TRUE, error) : NULL;
        const char *base = disk ? agent_arg_string(args, "base", TRUE, error) : NULL;
        g_auto(SpecHold) h = {0};
        g_autofree char *path = NULL;
        g_autoptr(JsonObject) o = NULL;
        GError *local = NULL;
        GStatBuf st;

        if (!base || !(path = storage_path(roots, vol, disk, FALSE, error)))
                return NULL;
        if (!virt_simple(a->virt, domain, "remove", error))
                return NULL;
        if (g_unlink(path) < 0 && errno != ENOENT) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot delete '%s': %s",
                            path, g_strerror(errno));
                return NULL;
        }
        if (!storage_overlay_create(roots, vol, disk, base, &local) ||
            !spec_from_args(a, args, &h, &local) ||
            !(o = virt_define(a->virt, &h.s, FALSE, &local))) {
                virt_simple(a->virt, domain, "remove", NULL);
                g_unlink(path); /* qemu-img may leave a partial file (disk full) */
                g_propagate_error(error, local);
                return NULL;
        }
        json_object_set_string_member(o, "disk", disk);
        json_object_set_int_member(o, "disk_bytes",
                                   g_stat(path, &st) == 0 ? (gint64)st.st_blocks * 512 : 0);
        return g_steal_pointer(&o);
}

/* A desktop removed: its domain destroyed and undefined, its overlay deleted. Done when
 * already gone. */
static JsonObject *op_desktop_delete(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        const char *domain = agent_domain_arg(args, error);
        const char *vol = domain ? agent_arg_string(args, "volume", TRUE, error) : NULL;
        const char *disk = vol ? agent_arg_string(args, "disk", TRUE, error) : NULL;
        g_autofree char *path = NULL;

        if (!disk || !virt_simple(a->virt, domain, "remove", error))
                return NULL;
        if (disk[0]) {
                if (!(path = storage_path((const char *const *)a->roots, vol, disk, FALSE, error)))
                        return NULL;
                if (g_unlink(path) < 0 && errno != ENOENT) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                    "cannot delete '%s': %s", path, g_strerror(errno));
                        return NULL;
                }
        }
        return done_obj(domain, "deleted");
}

static JsonObject *op_domain(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        const char *d = agent_domain_arg(args, error);
        gint64 timeout, expires, port;

        if (!d)
                return NULL;
        if (op == AGENT_OP_DOMAIN_DESCRIBE)
                return virt_describe(a->virt, d, error);
        if (op == AGENT_OP_DOMAIN_SHUTDOWN) {
                if (!agent_arg_int(args, "timeout", 1, 3600, 60, &timeout, error) ||
                    !virt_shutdown(a->virt, d, timeout, agent_arg_bool(args, "force", FALSE),
                                   error))
                        return NULL;
                return done_obj(d, domain_state_to_string(DOMAIN_SHUTOFF));
        }
        if (op == AGENT_OP_DOMAIN_CONSOLE) {
                const char *proto = agent_arg_string(args, "protocol", TRUE, error);
                const char *pw = proto ? agent_arg_string(args, "password", TRUE, error) : NULL;
                int protocol = proto ? console_protocol_from_string(proto) : -1;
                gsize max = protocol >= 0 ? console_protocol_password_max(protocol) : 0;
                JsonObject *o;
                if (!pw || !agent_arg_int(args, "expires_at", 1, G_MAXINT64, 0, &expires, error))
                        return NULL;
                if (protocol < 0) {
                        g_autofree char *choices = vocab_alternatives(console_protocol_names);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "protocol must be %s", choices);
                        return NULL;
                }
                if (max && strlen(pw) > max) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "a %s password has at most %zu characters",
                                    protocol == PROTOCOL_VNC ? "VNC" : proto, max);
                        return NULL;
                }
                port = virt_console(a->virt, d, proto, pw, expires,
                                    agent_arg_bool(args, "disconnect", FALSE), error);
                if (!port)
                        return NULL;
                o = done_obj(d, NULL);
                json_object_set_int_member(o, "port", port);
                json_object_set_string_member(o, "address", a->address);
                return o;
        }
        if (op == AGENT_OP_DOMAIN_MEDIA) {
                const char *iso = agent_arg_string(args, "iso", FALSE, NULL);
                const char *media = agent_arg_string(args, "media", FALSE, NULL);
                g_autofree char *path = NULL;
                if (iso && iso[0]) {
                        if (!media) {
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "argument 'media' is missing for the ISO");
                                return NULL;
                        }
                        if (!(path = storage_path((const char *const *)a->roots, media, iso, TRUE,
                                                  error)))
                                return NULL;
                }
                if (!virt_media(a->virt, d, path, error))
                        return NULL;
                return done_obj(d, NULL);
        }
        if (!virt_simple(a->virt, d, strchr(agent_op_to_string(op), '.') + 1, error))
                return NULL;
        return done_obj(d, NULL);
}

static JsonObject *op_image(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        const char *const *roots = (const char *const *)a->roots;
        const char *vol = agent_arg_string(args, "volume", TRUE, error);
        const char *name = vol ? agent_arg_string(args, "name", TRUE, error) : NULL;
        gboolean ok = FALSE;

        if (!name)
                return NULL;
        if (op == AGENT_OP_IMAGE_OVERLAY) {
                const char *base = agent_arg_string(args, "base", TRUE, error);
                ok = base && storage_overlay_create(roots, vol, name, base, error);
        } else if (op == AGENT_OP_IMAGE_BASE) {
                const char *sv = agent_arg_string(args, "source_volume", TRUE, error);
                const char *sn = sv ? agent_arg_string(args, "source", TRUE, error) : NULL;
                ok = sn && storage_base_create(roots, vol, name, sv, sn, error);
        } else {
                g_auto(GStrv) in_use = virt_disks_in_use(a->virt, error);
                ok = in_use &&
                     storage_image_delete(roots, vol, name, (const char *const *)in_use, error);
        }
        if (!ok)
                return NULL;
        {
                JsonObject *o = json_object_new();
                json_object_set_string_member(o, "name", name);
                return o;
        }
}

static JsonObject *op_listing(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        gboolean vol = op == AGENT_OP_VOLUME_LIST;
        const char *dir = agent_arg_string(args, vol ? "volume" : "media", TRUE, error);

        if (!dir)
                return NULL;
        return vol ? storage_volume_list((const char *const *)a->roots, dir, error)
                   : storage_media_list((const char *const *)a->roots, dir, error);
}

static JsonObject *op_inventory(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        JsonArray *inv = virt_inventory(a->virt, TRUE, error);
        JsonObject *o;

        if (!inv)
                return NULL;
        o = json_object_new();
        json_object_set_array_member(o, "domains", inv);
        return o;
}

/* ---- live migration ---------------------------------------------------------------------- */

typedef struct {
        Agent *a;
        JsonObject *msg;
} ProgressSend;

static gboolean progress_send(gpointer data)
{
        ProgressSend *p = data;

        if (!p->a->stopping)
                agent_send_msg(p->a, p->msg);
        else
                json_object_unref(p->msg);
        g_free(p);
        return G_SOURCE_REMOVE;
}

/* On the migration's watch thread: an event {event: "migration", ...} to the manager. */
static void progress_out(JsonObject *progress, gpointer data)
{
        ProgressSend *p = g_new0(ProgressSend, 1);

        p->a = data;
        p->msg = progress;
        json_object_set_string_member(progress, "type", "event");
        json_object_set_string_member(progress, "event", "migration");
        g_main_context_invoke(p->a->ctx, progress_send, p);
}

/* An address in a URI: IPv6 in brackets. */
static char *uri_host(const char *address)
{
        return strchr(address, ':') ? g_strdup_printf("[%s]", address) : g_strdup(address);
}

/* domain.migrate {domain, epoch (this host's), to_address, new_epoch, timeout,
 * max_downtime_ms}: the domain goes to the host at to_address, whose libvirtd this host's
 * connects to over TLS with the certificates the manager issued (state_dir/pki). */
static JsonObject *op_migrate(Agent *a, AgentOp op, JsonObject *args, GError **error)
{
        const char *d = agent_domain_arg(args, error);
        const char *to;
        g_autofree char *host = NULL, *pki = NULL, *dest = NULL, *data = NULL;
        g_autoptr(GInetAddress) ip = NULL;
        gint64 epoch, timeout, downtime, bw;
        MigrateSpec m = {0};

        if (!d)
                return NULL;
        if (op == AGENT_OP_DOMAIN_MIGRATE_CANCEL)
                return virt_migrate_cancel(a->virt, d, error) ? done_obj(d, NULL) : NULL;
        if (!(to = agent_arg_string(args, "to_address", TRUE, error)) || !agent_arg_int(args, "new_epoch", 1, G_MAXINT64, 0, &epoch, error) ||
            !agent_arg_int(args, "timeout", 10, 86400, 600, &timeout, error) ||
            !agent_arg_int(args, "max_downtime_ms", 1, 60000, 300, &downtime, error) ||
            !agent_arg_int(args, "bandwidth", 0, 100000, 0, &bw, error))
                return NULL;
        if (!(ip = g_inet_address_new_from_string(to)) || g_inet_address_get_is_any(ip)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "argument 'to_address' must be the destination's management address");
                return NULL;
        }
        if (g_str_equal(to, a->address)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the destination is this host (%s)", to);
                return NULL;
        }
        host = uri_host(to);
        pki = g_build_filename(a->state_dir, "pki", NULL);
        if (!g_file_test(pki, G_FILE_TEST_IS_DIR)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "this host has no libvirt TLS certificate (%s): join it again", pki);
                return NULL;
        }
        dest = g_strdup_printf("qemu+tls://%s/system?pkipath=%s", host, pki);
        data = g_strdup_printf("tcp://%s", host);
        m.name = d;
        m.dest_uri = dest;
        m.data_uri = data;
        m.from_address = a->address;
        m.to_address = to;
        m.epoch = epoch;
        m.max_downtime_ms = downtime;
        m.timeout_s = timeout;
        m.bandwidth_mib = bw;
        m.unsafe = config_get_bool(a->config, "agent", "migrate_unsafe");
        m.progress = progress_out;
        m.progress_data = a;
        if (!virt_migrate(a->virt, &m, error))
                return NULL;
        {
                JsonObject *o = done_obj(d, "migrated");
                json_object_set_string_member(o, "to_address", to);
                json_object_set_int_member(o, "epoch", epoch);
                return o;
        }
}

/* What runs each operation in a worker thread. guest.request is answered on the loop
 * (guestlink.c), so it has none here. */
typedef JsonObject *(*OpFunc)(Agent *a, AgentOp op, JsonObject *args, GError **error);
static const OpFunc op_table[AGENT_OP_LAST] = {
        [AGENT_OP_DOMAIN_START] = op_start,
        [AGENT_OP_DOMAIN_SHUTDOWN] = op_domain,
        [AGENT_OP_DOMAIN_REBOOT] = op_domain,
        [AGENT_OP_DOMAIN_RESET] = op_domain,
        [AGENT_OP_DOMAIN_DESTROY] = op_domain,
        [AGENT_OP_DOMAIN_UNDEFINE] = op_domain,
        [AGENT_OP_DOMAIN_REMOVE] = op_domain,
        [AGENT_OP_DOMAIN_CONSOLE] = op_domain,
        [AGENT_OP_DOMAIN_MEDIA] = op_domain,
        [AGENT_OP_DOMAIN_DESCRIBE] = op_domain,
        [AGENT_OP_DOMAIN_MIGRATE] = op_migrate,
        [AGENT_OP_DOMAIN_MIGRATE_CANCEL] = op_migrate,
        [AGENT_OP_DESKTOP_PROVISION] = op_provision,
        [AGENT_OP_DESKTOP_DELETE] = op_desktop_delete,
        [AGENT_OP_IMAGE_OVERLAY] = op_image,
        [AGENT_OP_IMAGE_BASE] = op_image,
        [AGENT_OP_IMAGE_DELETE] = op_image,
        [AGENT_OP_VOLUME_LIST] = op_listing,
        [AGENT_OP_MEDIA_LIST] = op_listing,
        [AGENT_OP_INVENTORY] = op_inventory,
};

JsonObject *agent_run_op(Agent *a, const char *op, JsonObject *args, GError **error)
{
        int o = agent_op_from_string(op);

        if (o >= 0 && op_table[o])
                return op_table[o](a, o, args, error);
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                    "unknown command '%s' (this agent speaks protocol %d)", op,
                    AGENT_PROTO_VERSION);
        return NULL;
}
