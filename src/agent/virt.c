#define G_LOG_DOMAIN "virt"

#include "agent/virt.h"
#include "common/error.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/vocab.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#define POLL_MS 250

struct _Virt {
        char *uri;
        char *installation; /* domains of other installations are not ours; under lock */
        GMutex lock; /* conn, callbacks, migrating */
        virConnectPtr conn;
        GHashTable *migrating; /* domain name -> its Migration, while one runs */
        int cb_ids[3];
        GMainContext *ctx;
        VirtEventFunc cb;
        gpointer cb_data;
};

/* ---- libvirt's event loop ----------------------------------------------------------------
 * libvirt 9's default event implementation is built on GLib and attaches its sources to the
 * process's default main context. So no thread of its own here (a second thread iterating the
 * default context would dispatch the agent's sources too, on the wrong thread): the agent's
 * loop, which runs the default context, dispatches libvirt's events. */

static void event_loop_once(void)
{
        static gsize done;

        if (g_once_init_enter(&done)) {
                virEventRegisterDefaultImpl();
                g_once_init_leave(&done, 1);
        }
}

static void set_virt_error(GError **error, int code, const char *what)
{
        const char *m = virGetLastErrorMessage();

        g_set_error(error, ATRIUM_ERROR, code, "%s: %s", what, m ? m : "unknown libvirt error");
}

static void silence(void *data, virErrorPtr e)
{
        /* libvirt's default handler prints every error to stderr; we report them ourselves */
}

/* ---- events (libvirt's thread) ----------------------------------------------------------- */

/* Carries the callback itself: the Virt may be closed before the loop delivers. */
typedef struct {
        VirtEventFunc cb;
        gpointer cb_data;
        JsonObject *event;
} Handoff;

static gboolean deliver(gpointer data)
{
        Handoff *h = data;

        h->cb(h->event, h->cb_data);
        g_free(h);
        return G_SOURCE_REMOVE;
}

/* TRUE when NAME is a domain name of this agent's installation. */
static gboolean ours_name(Virt *v, const char *name)
{
        const char *kind;
        gint64 id;
        gboolean r;

        g_mutex_lock(&v->lock);
        r = v->installation && agent_domain_parse(name, v->installation, &kind, &id);
        g_mutex_unlock(&v->lock);
        return r;
}

void virt_set_installation(Virt *v, const char *installation)
{
        g_mutex_lock(&v->lock);
        g_free(v->installation);
        v->installation = g_strdup(installation);
        g_mutex_unlock(&v->lock);
}

static JsonObject *event_for(Virt *v, virDomainPtr dom, const char *what)
{
        const char *name = virDomainGetName(dom);
        JsonObject *e;

        if (!ours_name(v, name))
                return NULL;
        e = json_object_new();
        json_object_set_string_member(e, "event", what);
        json_object_set_string_member(e, "domain", name);
        return e;
}

static void hand_off(Virt *v, JsonObject *e)
{
        Handoff *h = g_new0(Handoff, 1);

        h->cb = v->cb;
        h->cb_data = v->cb_data;
        h->event = e;
        g_main_context_invoke(v->ctx, deliver, h);
}

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
        static const char *const stopped[] = {"shutdown", "destroyed", "crashed", "migrated",
                                              "saved",    "failed",    "snapshot"};
        const char *state = NULL, *reason = "";
        JsonObject *e;

        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED:
                state = domain_state_to_string(DOMAIN_RUNNING);
                reason = "started";
                break;
        case VIR_DOMAIN_EVENT_RESUMED:
                state = domain_state_to_string(DOMAIN_RUNNING);
                reason = "resumed";
                break;
        case VIR_DOMAIN_EVENT_SUSPENDED:
                state = domain_state_to_string(DOMAIN_PAUSED);
                reason = "paused";
                break;
        case VIR_DOMAIN_EVENT_STOPPED:
                state = domain_state_to_string(DOMAIN_SHUTOFF);
                reason = detail >= 0 && detail < (int)G_N_ELEMENTS(stopped) ? stopped[detail]
                                                                            : "stopped";
                break;
        case VIR_DOMAIN_EVENT_CRASHED:
                state = domain_state_to_string(DOMAIN_CRASHED);
                reason = "crashed";
                break;
        case VIR_DOMAIN_EVENT_UNDEFINED:
                state = domain_state_to_string(DOMAIN_SHUTOFF);
                reason = "undefined";
                break;
        default:
                return 0;
        }
        if (!(e = event_for(opaque, dom, "lifecycle")))
                return 0;
        json_object_set_string_member(e, "state", state);
        json_object_set_string_member(e, "reason", reason);
        hand_off(opaque, e);
        return 0;
}

static int on_graphics(virConnectPtr c, virDomainPtr dom, int phase,
                       const virDomainEventGraphicsAddress *local,
                       const virDomainEventGraphicsAddress *remote, const char *scheme,
                       const virDomainEventGraphicsSubject *subject, void *opaque)
{
        JsonObject *e;

        if (phase == VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE ||
            !(e = event_for(opaque, dom, "graphics")))
                return 0;
        json_object_set_string_member(e, "phase", phase == VIR_DOMAIN_EVENT_GRAPHICS_CONNECT
                                                          ? "connect"
                                                          : "disconnect");
        json_object_set_string_member(e, "client", remote && remote->node ? remote->node : "");
        json_object_set_string_member(e, "port", local && local->service ? local->service : "");
        json_object_set_string_member(e, "auth", scheme ? scheme : "");
        hand_off(opaque, e);
        return 0;
}

static int on_io_error(virConnectPtr c, virDomainPtr dom, const char *path, const char *alias,
                       int action, const char *reason, void *opaque)
{
        JsonObject *e = event_for(opaque, dom, "disk-error");

        if (!e)
                return 0;
        json_object_set_string_member(e, "path", path ? path : "");
        json_object_set_string_member(e, "device", alias ? alias : "");
        json_object_set_string_member(e, "reason", reason ? reason : "");
        hand_off(opaque, e);
        return 0;
}

/* ---- connection -------------------------------------------------------------------------- */

static gboolean connect_locked(Virt *v, GError **error)
{
        v->conn = virConnectOpen(v->uri);
        if (!v->conn) {
                set_virt_error(error, ATRIUM_ERROR_UNAVAILABLE, "cannot open libvirt");
                g_prefix_error(error, "%s: ", v->uri);
                return FALSE;
        }
        v->cb_ids[0] = virConnectDomainEventRegisterAny(
                v->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
                v, NULL);
        v->cb_ids[1] = virConnectDomainEventRegisterAny(
                v->conn, NULL, VIR_DOMAIN_EVENT_ID_GRAPHICS, VIR_DOMAIN_EVENT_CALLBACK(on_graphics),
                v, NULL);
        v->cb_ids[2] = virConnectDomainEventRegisterAny(v->conn, NULL,
                                                        VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON,
                                                        VIR_DOMAIN_EVENT_CALLBACK(on_io_error), v,
                                                        NULL);
        return TRUE;
}

static void disconnect_locked(Virt *v)
{
        if (!v->conn)
                return;
        for (gsize i = 0; i < G_N_ELEMENTS(v->cb_ids); i++)
                if (v->cb_ids[i] >= 0)
                        virConnectDomainEventDeregisterAny(v->conn, v->cb_ids[i]);
        virConnectClose(v->conn);
        v->conn = NULL;
}

/* The shared connection, reopened when it died (libvirtd restarted); the caller closes its
 * reference. */
static virConnectPtr conn_get(Virt *v, GError **error)
{
        virConnectPtr c = NULL;

        g_mutex_lock(&v->lock);
        if (v->conn && virConnectIsAlive(v->conn) != 1) {
                g_warning("libvirt connection %s lost; reconnecting", v->uri);
                disconnect_locked(v);
        }
        if (v->conn || connect_locked(v, error)) {
                c = v->conn;
                virConnectRef(c);
        }
        g_mutex_unlock(&v->lock);
        return c;
}

Virt *virt_open(const char *uri, GMainContext *ctx, VirtEventFunc cb, gpointer data,
                GError **error)
{
        Virt *v = g_new0(Virt, 1);
        virConnectPtr c;

        event_loop_once();
        virSetErrorFunc(NULL, silence);
        v->uri = g_strdup(uri);
        g_mutex_init(&v->lock);
        v->migrating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        v->ctx = g_main_context_ref(ctx);
        v->cb = cb;
        v->cb_data = data;
        for (gsize i = 0; i < G_N_ELEMENTS(v->cb_ids); i++)
                v->cb_ids[i] = -1;
        c = conn_get(v, error);
        if (!c) {
                virt_close(v);
                return NULL;
        }
        virConnectClose(c);
        return v;
}

void virt_close(Virt *v)
{
        if (!v)
                return;
        g_mutex_lock(&v->lock);
        disconnect_locked(v);
        g_mutex_unlock(&v->lock);
        g_mutex_clear(&v->lock);
        g_hash_table_destroy(v->migrating);
        g_main_context_unref(v->ctx);
        g_free(v->installation);
        g_free(v->uri);
        g_free(v);
}

const char *virt_uri(Virt *v)
{
        return v->uri;
}

/* ---- domains ----------------------------------------------------------------------------- */

static gboolean is_ours(virDomainPtr dom)
{
        char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_XMLNS, 0);

        if (!meta)
                return FALSE;
        free(meta);
        return TRUE;
}

static virDomainPtr lookup(Virt *v, virConnectPtr c, const char *name, GError **error)
{
        const char *kind;
        gint64 id;
        virDomainPtr dom;

        if (!agent_domain_parse(name, NULL, &kind, &id)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "'%s' is not the name of an Atrium domain (atrium-INST-KIND-ID)",
                            name);
                return NULL;
        }
        if (!ours_name(v, name)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "domain '%s' belongs to another Atrium installation: refused", name);
                return NULL;
        }
        dom = virDomainLookupByName(c, name);
        if (!dom) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "there is no domain '%s' on this host", name);
                return NULL;
        }
        if (!is_ours(dom)) {
                virDomainFree(dom);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "domain '%s' is not managed by Atrium (no Atrium metadata): refused",
                            name);
                return NULL;
        }
        return dom;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)

/* A domain of ours by name, on the shared connection (the domain keeps its connection alive
 * until it is freed): the one way the operations below reach a domain. */
static virDomainPtr domain_open(Virt *v, const char *name, GError **error)
{
        virConnectPtr c = conn_get(v, error);
        virDomainPtr dom;

        if (!c)
                return NULL;
        dom = lookup(v, c, name, error);
        virConnectClose(c);
        return dom;
}

static const char *state_name(int state)
{
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
        case VIR_DOMAIN_SHUTDOWN:
                return domain_state_to_string(DOMAIN_RUNNING);
        case VIR_DOMAIN_PAUSED:
        case VIR_DOMAIN_PMSUSPENDED:
                return domain_state_to_string(DOMAIN_PAUSED);
        case VIR_DOMAIN_CRASHED:
                return domain_state_to_string(DOMAIN_CRASHED);
        default:
                return domain_state_to_string(DOMAIN_SHUTOFF);
        }
}

static int dom_state(virDomainPtr dom)
{
        int state = VIR_DOMAIN_NOSTATE, reason;

        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return VIR_DOMAIN_NOSTATE;
        return state;
}

static gboolean active(virDomainPtr dom)
{
        return virDomainIsActive(dom) == 1;
}

/* What the live XML tells: console ports and listen address, the guest channel's socket,
 * disk sources. */
typedef struct {
        gint64 spice_port, vnc_port;
        char *listen;
        char *channel;
        GPtrArray *disks;
        /* parser state */
        gboolean in_channel, in_disk, disk_is_disk;
        char *source_path, *target_name;
} XmlFacts;

static const char *attr(const char **names, const char **values, const char *key)
{
        for (int i = 0; names[i]; i++)
                if (g_str_equal(names[i], key))
                        return values[i];
        return NULL;
}

static void xml_start(GMarkupParseContext *ctx, const char *el, const char **names,
                      const char **values, gpointer data, GError **error)
{
        XmlFacts *f = data;

        if (g_str_equal(el, "graphics")) {
                const char *type = attr(names, values, "type"), *port = attr(names, values, "port");
                const char *listen = attr(names, values, "listen");
                gint64 p = port ? g_ascii_strtoll(port, NULL, 10) : 0;
                if (type && g_str_equal(type, "spice"))
                        f->spice_port = p > 0 ? p : 0;
                else if (type && g_str_equal(type, "vnc"))
                        f->vnc_port = p > 0 ? p : 0;
                if (listen && !f->listen)
                        f->listen = g_strdup(listen);
        } else if (g_str_equal(el, "channel")) {
                f->in_channel = TRUE;
        } else if (g_str_equal(el, "disk")) {
                const char *device = attr(names, values, "device");
                f->in_disk = TRUE;
                f->disk_is_disk = device && g_str_equal(device, "disk");
        } else if (g_str_equal(el, "source") && (f->in_channel || f->in_disk)) {
                const char *p = attr(names, values, f->in_channel ? "path" : "file");
                g_free(f->source_path);
                f->source_path = g_strdup(p);
        } else if (g_str_equal(el, "target") && f->in_channel) {
                g_free(f->target_name);
                f->target_name = g_strdup(attr(names, values, "name"));
        }
}

static void xml_end(GMarkupParseContext *ctx, const char *el, gpointer data, GError **error)
{
        XmlFacts *f = data;

        if (g_str_equal(el, "channel")) {
                if (f->target_name && g_str_equal(f->target_name, "org.atrium.guest.0") &&
                    f->source_path && !f->channel)
                        f->channel = g_strdup(f->source_path);
                f->in_channel = FALSE;
        } else if (g_str_equal(el, "disk")) {
                if (f->disk_is_disk && f->source_path)
                        g_ptr_array_add(f->disks, g_strdup(f->source_path));
                f->in_disk = FALSE;
        } else {
                return;
        }
        g_clear_pointer(&f->source_path, g_free);
        g_clear_pointer(&f->target_name, g_free);
}

static void xml_facts_clear(XmlFacts *f)
{
        g_free(f->listen);
        g_free(f->channel);
        g_free(f->source_path);
        g_free(f->target_name);
        if (f->disks)
                g_ptr_array_unref(f->disks);
}

static gboolean read_xml(virDomainPtr dom, XmlFacts *f, GError **error)
{
        static const GMarkupParser parser = {xml_start, xml_end, NULL, NULL, NULL};
        char *xml = virDomainGetXMLDesc(dom, 0);
        GMarkupParseContext *ctx;
        gboolean ok;

        memset(f, 0, sizeof(*f));
        f->disks = g_ptr_array_new_with_free_func(g_free);
        if (!xml) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot read the domain's XML");
                return FALSE;
        }
        ctx = g_markup_parse_context_new(&parser, 0, f, NULL);
        ok = g_markup_parse_context_parse(ctx, xml, -1, error) &&
             g_markup_parse_context_end_parse(ctx, error);
        g_markup_parse_context_free(ctx);
        free(xml);
        return ok;
}

/* The ownership the domain's Atrium metadata records: its placement epoch (0: none) and
 * whether the manager may restart it elsewhere. */
static void ownership(virDomainPtr dom, JsonObject *o)
{
        char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_XMLNS, 0);
        const char *e = meta ? strstr(meta, "epoch=") : NULL;
        gint64 epoch = e && (e[6] == '\'' || e[6] == '"') ? g_ascii_strtoll(e + 7, NULL, 10) : 0;

        json_object_set_int_member(o, "epoch", MAX(epoch, 0));
        json_object_set_boolean_member(o, "recoverable",
                                       meta && (strstr(meta, "recoverable='yes'") ||
                                                strstr(meta, "recoverable=\"yes\"")));
        free(meta);
}

static JsonObject *describe(virDomainPtr dom, GError **error)
{
        XmlFacts f;
        JsonObject *o;
        gboolean running = active(dom);

        if (!read_xml(dom, &f, error)) {
                xml_facts_clear(&f);
                return NULL;
        }
        o = json_object_new();
        json_object_set_string_member(o, "domain", virDomainGetName(dom));
        json_object_set_string_member(o, "state", state_name(dom_state(dom)));
        json_object_set_int_member(o, "spice_port", running ? f.spice_port : 0);
        json_object_set_int_member(o, "vnc_port", running ? f.vnc_port : 0);
        json_object_set_string_member(o, "channel", f.channel ? f.channel : "");
        ownership(dom, o);
        xml_facts_clear(&f);
        return o;
}

JsonObject *virt_describe(Virt *v, const char *name, GError **error)
{
        g_autoptr(virDomain) dom = domain_open(v, name, error);

        return dom ? describe(dom, error) : NULL;
}

JsonObject *virt_define(Virt *v, const DomainSpec *spec, gboolean start, GError **error)
{
        g_autofree char *xml = domxml_build(spec, error);
        virConnectPtr c;
        virDomainPtr dom;
        JsonObject *o = NULL;
        gboolean defined_now = FALSE;

        if (!xml || !(c = conn_get(v, error)))
                return NULL;
        dom = virDomainLookupByName(c, spec->name);
        if (dom && !is_ours(dom)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "a domain named '%s' exists and is not managed by Atrium: refused",
                            spec->name);
                goto out;
        }
        if (dom && active(dom)) {
                if (start) {
                        o = describe(dom, error);
                        goto out;
                }
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is running: it cannot be redefined", spec->name);
                goto out;
        }
        defined_now = dom == NULL;
        if (dom) { /* redefine in place: the same UUID, or libvirt refuses the name */
                char uuid[VIR_UUID_STRING_BUFLEN];
                DomainSpec again = *spec;
                if (virDomainGetUUIDString(dom, uuid) == 0 && !spec->uuid) {
                        again.uuid = uuid;
                        g_free(xml);
                        if (!(xml = domxml_build(&again, error)))
                                goto out;
                }
                virDomainFree(dom);
        }
        dom = virDomainDefineXML(c, xml);
        if (!dom) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot define the domain");
                goto out;
        }
        if (start && virDomainCreate(dom) < 0) {
                const char *m = virGetLastErrorMessage();
                /* The disk's lease (virtlockd) or QEMU's own image lock is held: another
                 * host's QEMU still has the disk. Busy, not broken: the manager retries. */
                if (m && (strstr(m, "is locked") || strstr(m, "Failed to get \"write\" lock") ||
                          strstr(m, "Failed to get shared \"write\" lock")))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "cannot start the domain: its disk is in use by another "
                                    "QEMU (lease busy): %s",
                                    m);
                else
                        set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot start the domain");
                if (defined_now) /* leave nothing half-made */
                        virDomainUndefine(dom);
                goto out;
        }
        o = describe(dom, error);
out:
        if (dom)
                virDomainFree(dom);
        virConnectClose(c);
        return o;
}

gboolean virt_shutdown(Virt *v, const char *name, guint timeout_s, gboolean force,
                       GError **error)
{
        g_autoptr(virDomain) dom = domain_open(v, name, error);
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

        if (!dom)
                return FALSE;
        if (!active(dom))
                return TRUE;
        if (!force && virDomainShutdown(dom) == 0) {
                while (active(dom) && g_get_monotonic_time() < deadline)
                        g_usleep(POLL_MS * 1000);
        }
        if (active(dom) && virDomainDestroy(dom) < 0 && active(dom)) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot power the domain off");
                return FALSE;
        }
        return TRUE;
}

gboolean virt_simple(Virt *v, const char *name, const char *op, GError **error)
{
        GError *local = NULL;
        g_autoptr(virDomain) dom = domain_open(v, name, &local);
        gboolean remove = g_str_equal(op, "remove");
        int rc = 0;

        if (!dom) {
                if (remove && g_error_matches(local, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND)) {
                        g_error_free(local); /* nothing to remove: done */
                        return TRUE;
                }
                g_propagate_error(error, local);
                return FALSE;
        }
        if (g_str_equal(op, "undefine") && active(dom)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is running: stop it before removing it", name);
                return FALSE;
        }
        if (!active(dom) && (g_str_equal(op, "reboot") || g_str_equal(op, "reset"))) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is not running", name);
                return FALSE;
        }
        if (g_str_equal(op, "reboot"))
                rc = virDomainReboot(dom, 0);
        else if (g_str_equal(op, "reset"))
                rc = virDomainReset(dom, 0);
        else if ((g_str_equal(op, "destroy") || remove) && active(dom))
                rc = virDomainDestroy(dom);
        if (rc == 0 && (remove || g_str_equal(op, "undefine")))
                rc = virDomainUndefine(dom);
        if (rc < 0) {
                g_autofree char *what = g_strdup_printf("cannot %s '%s'", op, name);
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, what);
                return FALSE;
        }
        return TRUE;
}

gint64 virt_console(Virt *v, const char *name, const char *protocol, const char *password,
                    gint64 expires_at, gboolean disconnect, GError **error)
{
        g_autoptr(virDomain) dom = domain_open(v, name, error);
        XmlFacts f = {0};
        g_autofree char *until = NULL, *xml = NULL;
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(expires_at);
        gint64 port = 0;

        if (!dom)
                return 0;
        if (!active(dom)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is not running: no console", name);
                goto out;
        }
        if (!read_xml(dom, &f, error))
                goto out;
        port = g_str_equal(protocol, "vnc") ? f.vnc_port : f.spice_port;
        if (port <= 0 && g_str_has_prefix(virt_uri(v), "test:")) {
                /* libvirt's test driver gives no ports: consoles are simulated there (the
                 * broker's tests), with a port that tells domains apart. */
                port = 5900 + virDomainGetID(dom);
                goto out;
        }
        if (port <= 0 || !f.listen) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' has no %s console", name, protocol);
                port = 0;
                goto out;
        }
        until = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
        xml = g_markup_printf_escaped(
                "<graphics type='%s' port='%" G_GINT64_FORMAT "' autoport='yes' listen='%s' "
                "passwd='%s' passwdValidTo='%s' connected='%s'><listen type='address' "
                "address='%s'/></graphics>",
                protocol, port, f.listen, password, until,
                disconnect && g_str_equal(protocol, "spice") ? "disconnect" : "keep", f.listen);
        if (virDomainUpdateDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot set the console password");
                port = 0;
        }
        memset(xml, 0, strlen(xml));
out:
        xml_facts_clear(&f);
        return port;
}

/* ---- live migration ---------------------------------------------------------------------- */

typedef struct {
        Virt *v;
        virDomainPtr dom;
        const MigrateSpec *m;
        GMutex mu;
        GCond cond;
        gboolean stop;
        gint cancelled, timed_out;
        gint64 started;
} Migration;

static guint64 job_ull(virTypedParameterPtr p, int n, const char *key)
{
        unsigned long long v = 0;

        virTypedParamsGetULLong(p, n, key, &v);
        return v;
}

/* Progress 100 ms after the start (an idle guest may be sent in a second), then every
 * 250 ms, and the timeout. */
static gpointer migration_watch(gpointer data)
{
        Migration *mig = data;
        gint64 deadline = mig->started + (gint64)mig->m->timeout_s * G_USEC_PER_SEC;
        gint64 wait_us = 100 * 1000;

        g_mutex_lock(&mig->mu);
        while (!mig->stop) {
                virTypedParameterPtr p = NULL;
                int n = 0, type = 0;

                g_cond_wait_until(&mig->cond, &mig->mu, g_get_monotonic_time() + wait_us);
                wait_us = 250 * 1000;
                if (mig->stop)
                        break;
                g_mutex_unlock(&mig->mu);
                if (mig->m->timeout_s && g_get_monotonic_time() > deadline &&
                    !g_atomic_int_get(&mig->timed_out)) {
                        g_atomic_int_set(&mig->timed_out, 1);
                        g_message("migration of %s outlived its %u s: aborted", mig->m->name,
                                  mig->m->timeout_s);
                        virDomainAbortJob(mig->dom);
                }
                if (virDomainGetJobStats(mig->dom, &type, &p, &n, 0) == 0 &&
                    type != VIR_DOMAIN_JOB_NONE && g_atomic_int_get(&mig->cancelled))
                        virDomainAbortJob(mig->dom);
                if (type != VIR_DOMAIN_JOB_NONE && mig->m->progress) {
                        JsonObject *o = json_object_new();
                        guint64 total = job_ull(p, n, VIR_DOMAIN_JOB_DATA_TOTAL);
                        guint64 rem = job_ull(p, n, VIR_DOMAIN_JOB_DATA_REMAINING);
                        json_object_set_string_member(o, "domain", mig->m->name);
                        json_object_set_int_member(
                                o, "percent", total ? MIN(99, (total - MIN(rem, total)) * 100 / total) : 0);
                        json_object_set_int_member(o, "data_total", total);
                        json_object_set_int_member(o, "data_remaining", rem);
                        json_object_set_int_member(o, "data_processed",
                                                   job_ull(p, n, VIR_DOMAIN_JOB_DATA_PROCESSED));
                        json_object_set_int_member(o, "iteration",
                                                   job_ull(p, n, VIR_DOMAIN_JOB_MEMORY_ITERATION));
                        json_object_set_int_member(o, "dirty_rate",
                                                   job_ull(p, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE));
                        json_object_set_int_member(o, "elapsed_ms",
                                                   (g_get_monotonic_time() - mig->started) / 1000);
                        mig->m->progress(o, mig->m->progress_data);
                }
                virTypedParamsFree(p, n);
                g_mutex_lock(&mig->mu);
        }
        g_mutex_unlock(&mig->mu);
        return NULL;
}

static char *xml_of(virDomainPtr dom, unsigned int flags, const char *what, GError **error)
{
        char *x = virDomainGetXMLDesc(dom, flags | VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
        char *copy;

        if (!x) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, what);
                return NULL;
        }
        copy = g_strdup(x);
        free(x);
        return copy;
}

gboolean virt_migrate(Virt *v, const MigrateSpec *m, GError **error)
{
        g_autoptr(virDomain) dom = domain_open(v, m->name, error);
        g_autofree char *live = NULL, *inactive = NULL, *dxml = NULL, *pxml = NULL;
        virTypedParameterPtr params = NULL;
        int np = 0, maxp = 0;
        unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                             VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_ABORT_ON_ERROR |
                             VIR_MIGRATE_TLS | VIR_MIGRATE_AUTO_CONVERGE;
        Migration mig = {0};
        GThread *watch;
        int rc;

        if (!dom)
                return FALSE;
        if (!active(dom)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is not running: only a running domain migrates", m->name);
                return FALSE;
        }
        if (!(live = xml_of(dom, 0, "cannot read the domain's XML", error)) ||
            !(inactive = xml_of(dom, VIR_DOMAIN_XML_INACTIVE, "cannot read the domain's XML", error)) ||
            !(dxml = domxml_migrated(live, m->from_address, m->to_address, m->epoch, error)) ||
            !(pxml = domxml_migrated(inactive, m->from_address, m->to_address, m->epoch, error)))
                return FALSE;
        {
                /* a connected SPICE client follows with the password it holds: valid on the
                 * copy for as long as the migration may take, and a little more */
                g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(
                        g_get_real_time() / G_USEC_PER_SEC + m->timeout_s + 120);
                g_autofree char *until = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
                char *x = domxml_console_valid_until(dxml, until);
                memset(dxml, 0, strlen(dxml));
                g_free(dxml);
                dxml = x;
        }
        if (m->unsafe)
                flags |= VIR_MIGRATE_UNSAFE;
        if (virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_URI, m->data_uri) < 0 ||
            virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_DEST_XML, dxml) < 0 ||
            virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_PERSIST_XML, pxml) < 0 ||
            (m->bandwidth_mib &&
             virTypedParamsAddULLong(&params, &np, &maxp, VIR_MIGRATE_PARAM_BANDWIDTH,
                                     m->bandwidth_mib) < 0)) {
                virTypedParamsFree(params, np);
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot build the migration's parameters");
                return FALSE;
        }
        if (m->max_downtime_ms && virDomainMigrateSetMaxDowntime(dom, m->max_downtime_ms, 0) < 0)
                g_message("%s: cannot set the maximum downtime: %s", m->name,
                          virGetLastErrorMessage());
        mig.v = v;
        mig.dom = dom;
        mig.m = m;
        mig.started = g_get_monotonic_time();
        g_mutex_init(&mig.mu);
        g_cond_init(&mig.cond);
        g_mutex_lock(&v->lock);
        if (g_hash_table_contains(v->migrating, m->name)) {
                g_mutex_unlock(&v->lock);
                virTypedParamsFree(params, np);
                g_mutex_clear(&mig.mu);
                g_cond_clear(&mig.cond);
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "domain '%s' is migrating already", m->name);
                return FALSE;
        }
        g_hash_table_insert(v->migrating, g_strdup(m->name), &mig);
        g_mutex_unlock(&v->lock);
        g_info("migrating %s to %s (memory over %s)", m->name, m->dest_uri, m->data_uri);
        watch = g_thread_new("migration", migration_watch, &mig);
        rc = virDomainMigrateToURI3(dom, m->dest_uri, params, np, flags);
        if (rc < 0) {
                const char *msg = virGetLastErrorMessage();
                virErrorPtr e = virGetLastError();
                if (g_atomic_int_get(&mig.cancelled))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the migration was cancelled");
                else if (g_atomic_int_get(&mig.timed_out))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the migration outlived its timeout of %u s and was aborted",
                                    m->timeout_s);
                else if (e && (e->code == VIR_ERR_SYSTEM_ERROR || e->code == VIR_ERR_NO_CONNECT ||
                               e->code == VIR_ERR_AUTH_FAILED || e->code == VIR_ERR_RPC))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "cannot reach the destination's libvirt (%s): %s", m->dest_uri,
                                    msg ? msg : "unknown error");
                else
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                    "the migration failed: %s", msg ? msg : "unknown libvirt error");
        }
        g_mutex_lock(&mig.mu);
        mig.stop = TRUE;
        g_cond_signal(&mig.cond);
        g_mutex_unlock(&mig.mu);
        g_thread_join(watch);
        g_mutex_lock(&v->lock);
        g_hash_table_remove(v->migrating, m->name);
        g_mutex_unlock(&v->lock);
        g_mutex_clear(&mig.mu);
        g_cond_clear(&mig.cond);
        virTypedParamsFree(params, np);
        if (rc == 0)
                g_info("migrated %s to %s in %" G_GINT64_FORMAT " ms", m->name, m->dest_uri,
                       (g_get_monotonic_time() - mig.started) / 1000);
        return rc == 0;
}

gboolean virt_migrate_cancel(Virt *v, const char *name, GError **error)
{
        Migration *mig;
        gboolean ok = TRUE;

        g_mutex_lock(&v->lock);
        mig = g_hash_table_lookup(v->migrating, name);
        if (!mig) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "domain '%s' has no migration in progress on this host", name);
                ok = FALSE;
        } else {
                /* before libvirt's job began the abort fails: the watch aborts it then */
                g_atomic_int_set(&mig->cancelled, 1);
                if (virDomainAbortJob(mig->dom) < 0)
                        g_message("%s: abort: %s (tried again)", name, virGetLastErrorMessage());
        }
        g_mutex_unlock(&v->lock);
        return ok;
}

gboolean virt_media(Virt *v, const char *name, const char *iso, GError **error)
{
        g_autoptr(virDomain) dom = domain_open(v, name, error);
        g_autofree char *xml = NULL;
        unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;

        if (!dom)
                return FALSE;
        if (active(dom))
                flags |= VIR_DOMAIN_AFFECT_LIVE;
        if (iso)
                xml = g_markup_printf_escaped(
                        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                        "<source file='%s'/><target dev='sda' bus='sata'/><readonly/></disk>",
                        iso);
        else
                xml = g_strdup("<disk type='file' device='cdrom'><driver name='qemu' "
                               "type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>");
        if (virDomainUpdateDeviceFlags(dom, xml, flags) < 0) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL,
                               iso ? "cannot insert the ISO" : "cannot eject the CD-ROM");
                return FALSE;
        }
        return TRUE;
}

/* ---- host -------------------------------------------------------------------------------- */

static char *cpu_model(void)
{
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL))
                return g_strdup("");
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, "model name")) {
                        const char *colon = strchr(*l, ':');
                        if (colon)
                                return g_strstrip(g_strdup(colon + 1));
                }
        return g_strdup("");
}

static char *version_text(unsigned long v)
{
        return g_strdup_printf("%lu.%lu.%lu", v / 1000000, (v / 1000) % 1000, v % 1000);
}

JsonObject *virt_facts(Virt *v, GError **error)
{
        virConnectPtr c = conn_get(v, error);
        virNodeInfo info;
        unsigned long lib = 0, hv = 0;
        g_autofree char *model = cpu_model(), *lv = NULL, *qv = NULL;
        JsonObject *o;

        if (!c)
                return NULL;
        if (virNodeGetInfo(c, &info) < 0) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot read the host's facts");
                virConnectClose(c);
                return NULL;
        }
        virConnectGetLibVersion(c, &lib);
        virConnectGetVersion(c, &hv);
        lv = version_text(lib);
        qv = version_text(hv);
        o = json_object_new();
        json_object_set_int_member(o, "cpus", info.cpus);
        json_object_set_int_member(o, "ram_mb", (gint64)(info.memory / 1024));
        json_object_set_string_member(o, "cpu_model", model);
        json_object_set_string_member(o, "libvirt_version", lv);
        json_object_set_string_member(o, "qemu_version", qv);
        virConnectClose(c);
        return o;
}

/* Our running domains; *n gets their count. The caller frees each and the array. */
static virDomainPtr *ours_running(Virt *v, virConnectPtr c, int *n)
{
        virDomainPtr *doms = NULL;
        int all = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE), k = 0;

        for (int i = 0; i < all; i++) {
                if (ours_name(v, virDomainGetName(doms[i])))
                        doms[k++] = doms[i];
                else
                        virDomainFree(doms[i]);
        }
        *n = k;
        return doms;
}

JsonObject *virt_figures(Virt *v, GError **error)
{
        virConnectPtr c = conn_get(v, error);
        virDomainPtr *doms;
        unsigned long long free_b;
        virNodeInfo node;
        gint64 committed = 0;
        int n = 0;
        JsonObject *o;

        if (!c)
                return NULL;
        if (virNodeGetInfo(c, &node) < 0)
                memset(&node, 0, sizeof(node));
        free_b = virNodeGetFreeMemory(c);
        doms = ours_running(v, c, &n);
        for (int i = 0; i < n; i++) {
                virDomainInfo info;
                if (virDomainGetInfo(doms[i], &info) == 0)
                        committed += (gint64)info.memory / 1024;
                virDomainFree(doms[i]);
        }
        free(doms);
        o = json_object_new();
        json_object_set_int_member(o, "cpus", node.cpus);
        json_object_set_int_member(o, "ram_mb", (gint64)(node.memory / 1024));
        json_object_set_int_member(o, "ram_free_mb", (gint64)(free_b / (1024 * 1024)));
        json_object_set_int_member(o, "ram_committed_mb", committed);
        json_object_set_int_member(o, "running", n);
        virConnectClose(c);
        return o;
}

JsonArray *virt_inventory(Virt *v, gboolean with_details, GError **error)
{
        virConnectPtr c = conn_get(v, error);
        virDomainPtr *doms = NULL;
        JsonArray *a;
        int n;

        if (!c)
                return NULL;
        n = virConnectListAllDomains(c, &doms, 0);
        if (n < 0) {
                set_virt_error(error, ATRIUM_ERROR_INTERNAL, "cannot list domains");
                virConnectClose(c);
                return NULL;
        }
        a = json_array_new();
        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(doms[i]);
                if (ours_name(v, name) && is_ours(doms[i])) {
                        JsonObject *o = NULL;
                        if (with_details && active(doms[i]))
                                o = describe(doms[i], NULL);
                        if (!o) {
                                o = json_object_new();
                                json_object_set_string_member(o, "domain", name);
                                json_object_set_string_member(o, "state",
                                                              state_name(dom_state(doms[i])));
                                ownership(doms[i], o);
                        }
                        json_array_add_object_element(a, o);
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        virConnectClose(c);
        return a;
}

GStrv virt_disks_in_use(Virt *v, GError **error)
{
        virConnectPtr c = conn_get(v, error);
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        virDomainPtr *doms;
        int n = 0;

        if (!c)
                return NULL;
        doms = ours_running(v, c, &n);
        for (int i = 0; i < n; i++) {
                XmlFacts f;
                if (read_xml(doms[i], &f, NULL))
                        for (guint k = 0; k < f.disks->len; k++)
                                g_strv_builder_add(b, f.disks->pdata[k]);
                xml_facts_clear(&f);
                virDomainFree(doms[i]);
        }
        free(doms);
        virConnectClose(c);
        return g_strv_builder_end(b);
}
