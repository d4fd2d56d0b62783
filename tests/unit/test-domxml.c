/* Domain XML: golden files (tests/data/domxml/), every one valid for libvirt's schema
 * (virt-xml-validate), and every bad spec refused with the field named. */
#include "agent/domxml.h"
#include "common/error.h"
#include "testutil.h"

#include <gio/gio.h>
#include <string.h>

static DomainSpec minimal(void)
{
        return (DomainSpec){
                .name = "office-1",
                .vcpus = 1,
                .ram_mb = 1024,
                .accel = DOMXML_ACCEL_QEMU,
                .disk = "/srv/atrium/vol1/office-1.qcow2",
                .listen = "192.0.2.10",
                .guest_channel = "/run/atrium/agent/office-1.guest.sock",
                .monitors = 1,
        };
}

static void validate(const char *xml)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *path = g_build_filename(dir, "domain.xml", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autofree char *out = NULL;

        g_assert_true(g_file_set_contents(path, xml, -1, NULL));
        p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                             &error, "virt-xml-validate", path, "domain", NULL);
        g_assert_no_error(error);
        g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error);
        if (!g_subprocess_get_successful(p))
                g_error("virt-xml-validate refused the XML:\n%s\n%s", out, xml);
        testutil_rmdir(dir);
}

static void golden(const char *name, const DomainSpec *spec)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = domxml_build(spec, &error);
        g_autofree char *file = g_strdup_printf("domxml/%s.xml", name);

        g_assert_no_error(error);
        testutil_golden(file, xml);
        validate(xml);
}

static void test_minimal(void)
{
        DomainSpec s = minimal();
        golden("minimal", &s);
}

static void test_full(void)
{
        DomainSpec s = minimal();

        s.name = "cad-7";
        s.uuid = "6f1c8f2e-8c1b-4a7e-9d3a-2b1f0c9e4d55";
        s.vcpus = 4;
        s.ram_mb = 8192;
        s.accel = DOMXML_ACCEL_KVM;
        s.cdrom = "/srv/atrium/iso/tools.iso";
        s.block_device = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4";
        s.network = "atrium-net";
        s.mac = "52:54:00:12:34:56";
        s.clipboard = DOMXML_CLIPBOARD_BOTH;
        s.file_transfer = TRUE;
        s.usb_redir = 2;
        s.console_password = "Xy7pQ2zK";
        s.console_valid_to = "2000-01-01T00:00:00";
        s.monitors = 4;
        s.audio = TRUE;
        golden("full", &s);
}

static void test_live_cd_bridge(void)
{
        DomainSpec s = minimal();

        s.name = "live-1";
        s.cdrom = "/srv/atrium/iso/atrium-test-live.iso";
        s.boot_cdrom = TRUE;
        s.bridge = "br0";
        s.listen = "::1";
        s.clipboard = DOMXML_CLIPBOARD_TO_GUEST;
        golden("live-cd-bridge", &s);
}

/* Paths and names are escaped, never able to break out of their attribute. */
static void test_escaping(void)
{
        DomainSpec s = minimal();
        g_autofree char *xml = NULL;

        s.disk = "/srv/atrium/o'brien&<x>.qcow2";
        xml = domxml_build(&s, NULL);
        g_assert_nonnull(strstr(xml, "/srv/atrium/o&apos;brien&amp;&lt;x&gt;.qcow2"));
        validate(xml);
}

static void test_bad_specs(void)
{
        {
                struct {
                        const char *needle;
                        DomainSpec s;
                } bad[24];
                int n = 0;
                DomainSpec base = minimal();
#define BAD(needle_, stmt)                                                                         \
        do {                                                                                       \
                bad[n].needle = needle_;                                                           \
                bad[n].s = base;                                                                   \
                {                                                                                  \
                        DomainSpec *s = &bad[n].s;                                                 \
                        stmt;                                                                      \
                }                                                                                  \
                n++;                                                                               \
        } while (0)
                BAD("name", s->name = "1bad");
                BAD("name", s->name = "a b");
                BAD("uuid", s->uuid = "not-a-uuid");
                BAD("vcpus", s->vcpus = 0);
                BAD("ram_mb", s->ram_mb = 16);
                BAD("disk", s->disk = "relative.qcow2");
                BAD("disk", s->disk = NULL);
                BAD("cdrom", s->cdrom = "x.iso");
                BAD("block_device", s->block_device = "sdb");
                BAD("boot_cdrom", s->boot_cdrom = TRUE);
                BAD("network", (s->network = "n1", s->bridge = "br0"));
                BAD("mac", s->mac = "52:54:00:12:34");
                BAD("listen", s->listen = "0.0.0.0");
                BAD("listen", s->listen = "host.example");
                BAD("guest_channel", s->guest_channel = "relative.sock");
                BAD("monitors", s->monitors = 5);
                BAD("usb_redir", s->usb_redir = 9);
                BAD("console_password", (s->console_password = "123456789", s->console_valid_to = "2000-01-01T00:00:00"));
                BAD("console_password", s->console_password = "abc");
                for (int i = 0; i < n; i++) {
                        g_autoptr(GError) error = NULL;
                        g_assert_null(domxml_build(&bad[i].s, &error));
                        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
                        if (!strstr(error->message, bad[i].needle))
                                g_error("case %d: '%s' does not name '%s'", i, error->message,
                                        bad[i].needle);
                }
        }
}

/* The copy a live migration takes: consoles listen on the destination's address, the metadata
 * carries the new placement epoch; nothing else changes. */
static void test_migrated(void)
{
        /* as libvirt formats a running domain (its metadata with double quotes) */
        static const char *libvirt_xml =
                "<domain type='qemu' id='3'>\n  <name>atrium-0a1b2c3d-desktop-7</name>\n"
                "  <metadata>\n    <atrium:domain xmlns:atrium=\"" DOMXML_XMLNS "\" "
                "version=\"1\" epoch=\"12\" recoverable=\"yes\"/>\n  </metadata>\n"
                "  <devices>\n    <interface type='user'><ip address='10.0.0.1'/></interface>\n"
                "    <graphics type='spice' port='5901' autoport='yes' listen='10.0.0.1'>\n"
                "      <listen type='address' address='10.0.0.1'/>\n    </graphics>\n"
                "    <graphics type='vnc' port='5902' autoport='yes' listen='10.0.0.10'/>\n"
                "  </devices>\n</domain>\n";
        g_autoptr(GError) error = NULL;
        g_autofree char *out = domxml_migrated(libvirt_xml, "10.0.0.1", "10.0.0.2", 13, &error);
        DomainSpec s = minimal();
        g_autofree char *ours = NULL, *moved = NULL;

        g_assert_no_error(error);
        g_assert_nonnull(strstr(out, "listen='10.0.0.2'>"));
        g_assert_nonnull(strstr(out, "<listen type='address' address='10.0.0.2'/>"));
        g_assert_nonnull(strstr(out, "listen='10.0.0.10'/>")); /* another address: kept */
        g_assert_nonnull(strstr(out, "<ip address='10.0.0.1'/>")); /* not a console: kept */
        g_assert_nonnull(strstr(out, "version=\"1\" epoch=\"13\" recoverable=\"yes\"/>"));
        g_assert_null(strstr(out, "epoch=\"12\""));
        g_assert_cmpuint(strlen(out), ==, strlen(libvirt_xml)); /* one digit each way */

        /* our own XML (single quotes), with and without an epoch */
        s.listen = "192.168.1.5";
        s.epoch = 4;
        ours = domxml_build(&s, &error);
        g_assert_no_error(error);
        moved = domxml_migrated(ours, "192.168.1.5", "192.168.1.6", 1234, &error);
        g_assert_no_error(error);
        g_assert_null(strstr(moved, "192.168.1.5"));
        g_assert_nonnull(strstr(moved, "epoch='1234'"));
        validate(moved);
        g_clear_pointer(&ours, g_free);
        g_clear_pointer(&moved, g_free);
        s.epoch = 0;
        ours = domxml_build(&s, &error);
        g_assert_null(strstr(ours, "epoch="));
        moved = domxml_migrated(ours, "192.168.1.5", "192.168.1.6", 9, &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(moved, "epoch='9'"));
        validate(moved);

        /* refused: not ours, bad addresses, no epoch */
        g_assert_null(domxml_migrated("<domain><name>x</name></domain>", "10.0.0.1", "10.0.0.2",
                                      2, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_assert_nonnull(strstr(error->message, "metadata"));
        g_clear_error(&error);
        g_assert_null(domxml_migrated(libvirt_xml, "10.0.0.1", "host.example", 2, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_null(domxml_migrated(libvirt_xml, NULL, "10.0.0.2", 2, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_clear_error(&error);
        g_assert_null(domxml_migrated(libvirt_xml, "10.0.0.1", "10.0.0.2", 0, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
}

/* The console password a SPICE client holds stays valid on the migrated copy. */
static void test_console_valid_until(void)
{
        static const char *xml =
                "<domain><devices>\n"
                "<graphics type='spice' port='5901' passwd='abc' passwdValidTo='2026-01-01T00:00:00' "
                "listen='10.0.0.1'><listen type='address' address='10.0.0.1'/></graphics>\n"
                "<graphics type=\"vnc\" port=\"5902\" passwd=\"xyz\" passwdValidTo=\"2026-01-01T00:00:05\"/>\n"
                "<graphics type='vnc' port='5903' passwd='never'/>\n"
                "</devices></domain>";
        g_autofree char *out = domxml_console_valid_until(xml, "2026-12-03T07:00:00");

        g_assert_nonnull(strstr(out, "passwd='abc' passwdValidTo='2026-12-03T07:00:00' listen='10.0.0.1'>"));
        g_assert_nonnull(strstr(out, "passwd=\"xyz\" passwdValidTo=\"2026-12-03T07:00:00\"/>"));
        g_assert_nonnull(strstr(out, "passwd='never'/>")); /* no expiry: none added */
        g_assert_null(strstr(out, "2026-01-01"));
        g_assert_cmpuint(strlen(out), ==, strlen(xml));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domxml/minimal", test_minimal);
        g_test_add_func("/domxml/full", test_full);
        g_test_add_func("/domxml/live-cd-bridge", test_live_cd_bridge);
        g_test_add_func("/domxml/escaping", test_escaping);
        g_test_add_func("/domxml/bad-specs", test_bad_specs);
        g_test_add_func("/domxml/migrated", test_migrated);
        g_test_add_func("/domxml/console-valid-until", test_console_valid_until);
        return g_test_run();
}
