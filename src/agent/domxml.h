/* Domain XML for a desktop or guest: a pure function from a spec to libvirt XML, so it is
 * tested with golden files and validated by virt-xml-validate (tests/unit/test-domxml.c). */
#pragma once
#include <glib.h>

typedef enum { DOMXML_ACCEL_QEMU, DOMXML_ACCEL_KVM } DomxmlAccel; /* TCG or KVM */
typedef enum {
        DOMXML_CLIPBOARD_NONE,
        DOMXML_CLIPBOARD_TO_GUEST,
        DOMXML_CLIPBOARD_FROM_GUEST,
        DOMXML_CLIPBOARD_BOTH,
} DomxmlClipboard;

#define DOMXML_XMLNS "https://atrium-vdi.org/xmlns/domain/1"
#define DOMXML_MAX_MONITORS 4
#define DOMXML_MAX_USB_REDIR 8

typedef struct {
        const char *name;           /* libvirt domain name */
        const char *uuid;           /* optional */
        const char *title;          /* optional: the guest's or desktop's name */
        guint vcpus;
        guint64 ram_mb;
        DomxmlAccel accel;
        const char *disk;           /* qcow2 overlay, absolute path */
        const char *cdrom;          /* ISO to attach, absolute path, or NULL */
        const char *block_device;   /* host block device as a second disk (vdb), or NULL */
        gboolean boot_cdrom;        /* boot from the CD first */
        const char *network;        /* libvirt network, or NULL */
        const char *bridge;         /* host bridge, or NULL; neither: user-mode networking */
        const char *mac;            /* or NULL: libvirt picks one */
        const char *listen;         /* management address the consoles listen on */
        /* Console password from the start (at most 8 characters, for VNC) and until when it is
         * valid ("2026-01-01T00:00:00", UTC). Without one QEMU starts SPICE and VNC with no
         * authentication and refuses to set a password later; the agent gives a random one
         * already expired, so a console opens only with a one-time password set per
         * connection. NULL: open consoles (tests of the XML only). */
        const char *console_password;
        const char *console_valid_to;
        const char *guest_channel;  /* UNIX socket of org.atrium.guest.0, or NULL: libvirt's */
        DomxmlClipboard clipboard;
        gboolean file_transfer;
        guint usb_redir;            /* 0..DOMXML_MAX_USB_REDIR */
        guint monitors;             /* 1..DOMXML_MAX_MONITORS */
        gboolean audio;
        /* Ownership: the placement epoch (0: none recorded) and whether the manager may start
         * it on another host when this one is lost (the agent destroys such domains when it
         * fences itself). Written in the domain's Atrium metadata. */
        gint64 epoch;
        gboolean recoverable;
} DomainSpec;

/* The domain XML, or NULL with an ATRIUM_ERROR_INVALID error naming the bad field. */
char *domxml_build(const DomainSpec *spec, GError **error);

/* The XML a running domain takes to another host (live migration): xml is libvirt's own
 * description of it (virDomainGetXMLDesc, migratable and secure); the copy listens for its
 * consoles on to_address instead of from_address and records placement epoch in its Atrium
 * metadata. NULL with an ATRIUM_ERROR_INVALID error when the XML has no Atrium metadata or
 * an address is not an IP address. */
char *domxml_migrated(const char *xml, const char *from_address, const char *to_address,
                      gint64 epoch, GError **error);
/* The same XML with the console passwords that expire valid until `until` (libvirt's
 * passwdValidTo form, UTC): the password a connected SPICE client holds lets it follow the
 * migration to the copy on the destination, whose QEMU applies the expiry anew. Passwords
 * without an expiry stay as they are. */
char *domxml_console_valid_until(const char *xml, const char *until);
