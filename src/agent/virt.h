/* The agent's use of libvirt (its C API only; never virsh). Every function here blocks and is
 * called from the agent's worker threads, never from its loop. One connection is shared by
 * the workers (libvirt connections are thread-safe) and reopened when it dies. libvirt's
 * events are dispatched by the loop of the process's default main context, which must be the
 * agent's (libvirt's GLib event implementation attaches there).
 *
 * Only domains named atrium-INST-KIND-ID with this agent's installation and carrying Atrium's
 * <metadata> element are touched: any other is refused as not ours. */
#pragma once
#include "agent/domxml.h"

#include <json-glib/json-glib.h>

typedef struct _Virt Virt;

/* Called on the agent's context with an event object:
 *   {event: "lifecycle", domain, state, reason}
 *   {event: "graphics", domain, phase: connect|disconnect, protocol, client}
 *   {event: "disk-error", domain, path, reason}
 * The callback takes the object. */
typedef void (*VirtEventFunc)(JsonObject *event, gpointer data);

Virt *virt_open(const char *uri, GMainContext *ctx, VirtEventFunc cb, gpointer data,
                GError **error);
void virt_close(Virt *v);
const char *virt_uri(Virt *v);
/* The installation whose domains are ours (from the manager's welcome); until it is set,
 * no domain is. */
void virt_set_installation(Virt *v, const char *installation);

/* {cpus, ram_mb, cpu_model, libvirt_version, qemu_version} */
JsonObject *virt_facts(Virt *v, GError **error);
/* {cpus, ram_mb, ram_free_mb, ram_committed_mb, running}: what a heartbeat carries */
JsonObject *virt_figures(Virt *v, GError **error);
/* [{domain, state}] of our domains; with_details adds the console ports of running ones. */
JsonArray *virt_inventory(Virt *v, gboolean with_details, GError **error);

/* Defines the domain (in place when it exists and is stopped) and, with start, starts it; a
 * running domain is described as it is (start) or refused (define only).
 * Returns {domain, state, spice_port, vnc_port, channel}. */
JsonObject *virt_define(Virt *v, const DomainSpec *spec, gboolean start, GError **error);
/* {domain, state, spice_port, vnc_port, channel} of a domain of ours. */
JsonObject *virt_describe(Virt *v, const char *name, GError **error);
/* ACPI shutdown, then destroy after timeout_s (at once with force). */
gboolean virt_shutdown(Virt *v, const char *name, guint timeout_s, gboolean force,
                       GError **error);
/* "reboot", "reset", "destroy", "undefine" (refused while running), "remove" (destroy and
 * undefine; a missing domain is fine). */
gboolean virt_simple(Virt *v, const char *name, const char *op, GError **error);
/* One-time console password valid until expires_at (Unix time); returns the port.
 * disconnect: SPICE clients connected now are dropped (libvirt's connected='disconnect'; VNC
 * has no such control: its tunnels are closed by the gateway). */
gint64 virt_console(Virt *v, const char *name, const char *protocol, const char *password,
                    gint64 expires_at, gboolean disconnect, GError **error);
/* Inserts an ISO (absolute path) in the CD-ROM drive, or ejects it (iso NULL). */
gboolean virt_media(Virt *v, const char *name, const char *iso, GError **error);
/* Disk paths of running domains of ours (NULL-terminated). */
GStrv virt_disks_in_use(Virt *v, GError **error);

/* Live migration of a running domain of ours to the libvirtd at dest_uri (peer to peer: this
 * host's libvirtd connects there with its TLS certificate), its memory over data_uri
 * (tcp://ADDRESS:PORT on the management network) inside QEMU's TLS, the domain defined only
 * on the destination afterwards. Blocks for the whole migration (a worker thread). 100 ms
 * after the start, then every 250 ms, progress gets {domain, percent, data_total, data_remaining, data_processed,
 * iteration, elapsed_ms, dirty_rate} (on the migration's thread: it must hand off). */
typedef void (*VirtProgressFunc)(JsonObject *progress, gpointer data); /* takes progress */
typedef struct {
        const char *name;
        const char *dest_uri;
        const char *data_uri;
        const char *from_address, *to_address; /* the consoles' listen address, here and there */
        gint64 epoch;                          /* the placement epoch there */
        guint64 max_downtime_ms;               /* 0: libvirt's default (300 ms) */
        guint timeout_s;                       /* aborted after that long */
        guint64 bandwidth_mib;                 /* MiB/s at most; 0: no limit */
        gboolean unsafe;                       /* a shared directory libvirt cannot tell shared */
        VirtProgressFunc progress;
        gpointer progress_data;
} MigrateSpec;
/* FALSE with ATRIUM_ERROR_CONFLICT when it was cancelled or outlived its timeout (the domain
 * runs here still), ATRIUM_ERROR_UNAVAILABLE when the destination cannot be reached. */
gboolean virt_migrate(Virt *v, const MigrateSpec *m, GError **error);
/* Aborts the domain's migration in progress; ATRIUM_ERROR_NOT_FOUND when there is none. */
gboolean virt_migrate_cancel(Virt *v, const char *name, GError **error);
