/* The test desktop image under QEMU (TCG), end to end: atrium-guest's ready over the
 * virtio-serial port, the console banner read off the screen (QEMU's screendump, OCR by
 * tesseract), set-hostname, a user login through the serial console, a reboot that keeps the
 * overlay's changes and counts the boot, and a fresh overlay that starts at boot 1.
 * Needs ATRIUM_TEST_IMAGE (the qcow2) and qemu-system-x86_64; skipped without the image. */
#include "guesthost.h"
#include "testutil.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>

typedef enum { SCREEN_DUMP, SCREEN_SPICE, SCREEN_VNC } ScreenVia;

typedef struct {
        char *dir;
        guint spice_port;
        guint vnc_display;
        GSubprocess *qemu;
        GSocket *agent;   /* the virtio-serial port's host end */
        GSocket *serial;  /* the guest's serial console (a shell) */
        GSocket *monitor; /* QEMU's human monitor */
        GuestHost gh;
} Vm;

static GSocket *connect_unix(const char *path)
{
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

        for (int i = 0; i < 100; i++) {
                g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0,
                                                    NULL);
                if (g_socket_connect(s, addr, NULL, NULL)) {
                        g_socket_set_timeout(s, 60);
                        return g_steal_pointer(&s);
                }
                g_usleep(100 * 1000);
        }
        g_error("cannot connect to %s", path);
}

/* A loopback TCP port free right now: port itself if it is free (0 if not), or any free one
 * when port is 0. */
static guint free_port(guint port)
{
        g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
        g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(lo, port);
        g_autoptr(GSocketAddress) bound = NULL;

        if (!g_socket_bind(s, sa, FALSE, NULL))
                return 0;
        bound = g_socket_get_local_address(s, NULL);
        return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

static void die_with_parent(gpointer data)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave a VM behind */
}

static GSubprocess *spawn_qemu(GError **error, ...) G_GNUC_NULL_TERMINATED;

static GSubprocess *spawn_qemu(GError **error, ...)
{
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
                G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        va_list ap;
        const char *a;

        va_start(ap, error);
        while ((a = va_arg(ap, const char *)))
                g_ptr_array_add(argv, (gpointer)a);
        va_end(ap);
        g_ptr_array_add(argv, NULL);
        g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
        return g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, error);
}

/* Boot from overlay (a qcow2 disk), or from iso as a CD when overlay is NULL. */
static void vm_start(Vm *vm, const char *overlay, const char *iso)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *drive = overlay ? g_strdup_printf("file=%s,if=virtio", overlay)
                                         : g_strdup_printf("file=%s,media=cdrom", iso);
        g_autofree char *agent = g_strdup_printf(
                "socket,id=ag,path=%s/agent.sock,server=on,wait=off", vm->dir);
        g_autofree char *serial = g_strdup_printf("unix:%s/serial.sock,server=on,wait=off",
                                                  vm->dir);
        g_autofree char *mon = g_strdup_printf("unix:%s/mon.sock,server=on,wait=off", vm->dir);
        g_autofree char *p = NULL, *spice = NULL, *vnc = NULL;

        /* Consoles on loopback only, as the agent will set them up (minus the tickets). */
        vm->spice_port = free_port(0);
        vm->vnc_display = 0;
        while (vm->vnc_display == 0) {
                guint d = g_random_int_range(100, 1000);
                if (free_port(5900 + d))
                        vm->vnc_display = d;
        }
        spice = g_strdup_printf("port=%u,addr=127.0.0.1,disable-ticketing=on", vm->spice_port);
        vnc = g_strdup_printf("127.0.0.1:%u", vm->vnc_display);

        vm->qemu = spawn_qemu(&error, "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256",
                                    "-drive", drive, "-device", "virtio-serial", "-chardev", agent,
                                    "-device",
                                    "virtserialport,chardev=ag,name=" GUEST_PROTO_PORT, "-nic",
                                    "user,model=virtio-net-pci", "-vga", "qxl", "-display",
                                    "none", "-spice", spice, "-vnc", vnc, "-serial", serial,
                                    "-monitor", mon, NULL);
        g_assert_no_error(error);
        p = g_strdup_printf("%s/agent.sock", vm->dir);
        vm->agent = connect_unix(p);
        guest_host_init(&vm->gh, vm->agent);
        g_free(p);
        p = g_strdup_printf("%s/serial.sock", vm->dir);
        vm->serial = connect_unix(p);
        g_free(p);
        p = g_strdup_printf("%s/mon.sock", vm->dir);
        vm->monitor = connect_unix(p);
}

static void vm_stop(Vm *vm)
{
        g_subprocess_force_exit(vm->qemu);
        g_subprocess_wait(vm->qemu, NULL, NULL);
        g_clear_object(&vm->qemu);
        g_clear_object(&vm->agent);
        g_clear_object(&vm->serial);
        g_clear_object(&vm->monitor);
        guest_host_clear(&vm->gh);
}

static GuestMsg *vm_expect(Vm *vm, GuestMsgType t)
{
        return guest_host_expect(&vm->gh, t);
}

static void send_line(GSocket *s, const char *line)
{
        guest_host_send(s, line);
}

/* Run a command on the serial console and wait for want in its output. */
static void vm_console_shows(Vm *vm, const char *cmd, const char *want)
{
        g_autoptr(GString) seen = g_string_new(NULL);
        gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

        send_line(vm->serial, cmd);
        while (!strstr(seen->str, want)) {
                char chunk[1024];
                g_autoptr(GError) error = NULL;
                gssize n;
                if (g_get_monotonic_time() > deadline)
                        g_error("the console never showed '%s' after '%s'; it showed:\n%s", want,
                                cmd, seen->str);
                g_socket_set_timeout(vm->serial, 2);
                n = g_socket_receive(vm->serial, chunk, sizeof(chunk), NULL, &error);
                if (n > 0)
                        g_string_append_len(seen, chunk, n);
        }
}

static void run_ok(const char *const *argv)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                             G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                     &error);
        g_assert_no_error(error);
        g_subprocess_wait(p, NULL, NULL);
}

/* The screen as text, read by tesseract from a screenshot taken by QEMU itself, by a SPICE
 * client (spicy-screenshot) or by a VNC client (gvnccapture). */
static char *vm_screen_text_via(Vm *vm, ScreenVia via)
{
        g_autofree char *ppm = g_strdup_printf("%s/screen.%s", vm->dir,
                                               via == SCREEN_VNC ? "png" : "ppm");
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) ocr = NULL;
        char *text = NULL;

        g_unlink(ppm);
        if (via == SCREEN_DUMP) {
                g_autofree char *cmd = g_strdup_printf("screendump %s\n", ppm);
                send_line(vm->monitor, cmd);
                for (int i = 0; i < 50 && !g_file_test(ppm, G_FILE_TEST_EXISTS); i++)
                        g_usleep(100 * 1000);
                g_usleep(300 * 1000); /* let QEMU finish writing it */
        } else if (via == SCREEN_SPICE) {
                g_autofree char *port = g_strdup_printf("%u", vm->spice_port);
                run_ok((const char *const[]){"spicy-screenshot", "-h", "127.0.0.1", "-p", port,
                                             "-o", ppm, NULL});
        } else {
                g_autofree char *display = g_strdup_printf("127.0.0.1:%u", vm->vnc_display);
                run_ok((const char *const[]){"gvnccapture", display, ppm, NULL});
        }
        if (!g_file_test(ppm, G_FILE_TEST_EXISTS))
                return g_strdup("(no screenshot)");
        ocr = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                               &error, "tesseract", ppm, "-", "--psm", "6", NULL);
        g_assert_no_error(error);
        g_subprocess_communicate_utf8(ocr, NULL, NULL, &text, NULL, &error);
        g_assert_no_error(error);
        return text;
}

/* Wait until the screen shows every one of the texts (OCR, so a few tries). */
static void vm_screen_shows_via(Vm *vm, ScreenVia via, const char *const *texts)
{
        g_autofree char *last = NULL;

        for (int attempt = 0; attempt < 20; attempt++) {
                gboolean all = TRUE;
                g_free(last);
                last = vm_screen_text_via(vm, via);
                for (const char *const *t = texts; *t; t++)
                        all = all && strstr(last, *t) != NULL;
                if (all)
                        return;
                g_usleep(500 * 1000);
        }
        g_error("the screen (%s) does not show what it should; OCR read:\n%s",
                via == SCREEN_DUMP ? "screendump" : via == SCREEN_SPICE ? "SPICE" : "VNC", last);
}

static void vm_screen_shows(Vm *vm, const char *const *texts)
{
        vm_screen_shows_via(vm, SCREEN_DUMP, texts);
}

static void test_desktop(void)
{
        const char *image = g_getenv("ATRIUM_TEST_IMAGE");
        g_autofree char *dir = NULL, *ov1 = NULL, *ov2 = NULL;
        Vm vm = {0};

        if (!image || !g_file_test(image, G_FILE_TEST_EXISTS)) {
                g_test_skip("no test desktop image (make images)");
                return;
        }
        dir = testutil_tmpdir();
        vm.dir = dir;
        ov1 = g_build_filename(dir, "desk-1.qcow2", NULL);
        ov2 = g_build_filename(dir, "desk-2.qcow2", NULL);
        for (int i = 0; i < 2; i++) {
                const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                                      "-b", image, i ? ov2 : ov1, NULL};
                g_autoptr(GError) error = NULL;
                g_autoptr(GSubprocess) p = g_subprocess_newv(argv, 0, &error);
                g_assert_true(g_subprocess_wait_check(p, NULL, &error));
        }

        /* A fresh clone: boot 1, its IP, nobody logged in — on the channel and on screen. */
        vm_start(&vm, ov1, NULL);
        g_test_message("booting a fresh clone");
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_READY);
                g_assert_cmpint(m->boots, ==, 1);
                g_assert_null(m->user);
                g_assert_true(g_strv_contains((const char *const *)m->ips, "10.0.2.15"));
        }
        g_test_message("ready; reading the screen");
        vm_screen_shows(&vm, (const char *const[]){"ATRIUM TEST DESKTOP", "10.0.2.15",
                                                    "no user", "boot: 1", NULL});
        g_test_message("banner seen; through SPICE and VNC too");
        vm_screen_shows_via(&vm, SCREEN_SPICE, (const char *const[]){"ATRIUM TEST DESKTOP",
                                                                      "boot: 1", NULL});
        vm_screen_shows_via(&vm, SCREEN_VNC, (const char *const[]){"ATRIUM TEST DESKTOP",
                                                                    "boot: 1", NULL});
        g_test_message("set-hostname");
        /* Personalise it. */
        send_line(vm.agent, "{\"v\":1,\"id\":\"h\",\"op\":\"set-hostname\","
                            "\"hostname\":\"desk-alpha\"}\n");
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_REPLY);
                g_assert_true(m->ok);
        }
        vm_screen_shows(&vm, (const char *const[]){"desk-alpha", NULL});
        g_test_message("hostname on screen; login at the console");
        /* A user logs in at the console, and writes a file to the desktop's disk. */
        vm_console_shows(&vm, "\necho kept-$((40+2)) > /root/marker; cat /root/marker\n",
                         "kept-42");
        send_line(vm.serial, "\natrium-guest-login alice\n");
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_USER_LOGIN);
                g_assert_cmpstr(m->user, ==, "alice");
        }
        vm_screen_shows(&vm, (const char *const[]){"alice", NULL});
        g_test_message("user on screen; reboot");
        /* Reboot: the name written to its disk stays, the boot is counted, the login is gone. */
        send_line(vm.agent, "{\"v\":1,\"id\":\"r\",\"op\":\"reboot\"}\n");
        {
                g_autoptr(GuestMsg) reply = vm_expect(&vm, GUEST_MSG_REPLY);
                g_autoptr(GuestMsg) m = NULL;
                g_assert_true(reply->ok);
                m = vm_expect(&vm, GUEST_MSG_READY);
                g_assert_cmpint(m->boots, ==, 2);
                g_assert_cmpstr(m->hostname, ==, "desk-alpha");
                g_assert_null(m->user);
        }
        vm_screen_shows(&vm, (const char *const[]){"desk-alpha", "no user", "boot: 2", NULL});
        vm_console_shows(&vm, "\ncat /root/marker\n", "kept-42");
        vm_stop(&vm);

        /* Another fresh overlay of the same image: none of that happened to it. */
        vm_start(&vm, ov2, NULL);
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_READY);
                g_assert_cmpint(m->boots, ==, 1);
                g_assert_cmpstr(m->hostname, ==, "localhost");
        }
        vm_console_shows(&vm, "\nls /root/marker || echo no-marker-$((1+1))\n", "no-marker-2");
        vm_stop(&vm);
        testutil_rmdir(dir);
}

/* The live ISO boots as a CD, with no disk at all, and its guest tools answer. */
static void test_live_iso(void)
{
        const char *image = g_getenv("ATRIUM_TEST_IMAGE");
        g_autofree char *dir = NULL, *iso = NULL, *base = NULL;
        Vm vm = {0};

        if (!image || !g_file_test(image, G_FILE_TEST_EXISTS)) {
                g_test_skip("no test images (make images)");
                return;
        }
        base = g_path_get_dirname(image);
        iso = g_build_filename(base, "atrium-test-live.iso", NULL);
        g_assert_true(g_file_test(iso, G_FILE_TEST_EXISTS));
        dir = testutil_tmpdir();
        vm.dir = dir;
        vm_start(&vm, NULL, iso);
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_READY);
                g_assert_cmpint(m->boots, ==, 1);
                g_assert_true(g_strv_contains((const char *const *)m->ips, "10.0.2.15"));
        }
        send_line(vm.agent, "{\"v\":1,\"id\":\"p\",\"op\":\"ping\"}\n");
        {
                g_autoptr(GuestMsg) m = vm_expect(&vm, GUEST_MSG_REPLY);
                g_assert_true(m->ok);
        }
        vm_screen_shows(&vm, (const char *const[]){"ATRIUM TEST DESKTOP", "boot: 1", NULL});
        vm_stop(&vm);
        testutil_rmdir(dir);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/desktop/live-iso", test_live_iso);
        g_test_add_func("/desktop/boot-banner-hostname-login-reboot-reset", test_desktop);
        return g_test_run();
}
