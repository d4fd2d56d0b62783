/* The real atrium-guest binary (ATRIUM_GUEST) against a host end on a UNIX socket, read with
 * the host protocol library: ready, requests and bad lines, user login, reconnect after the
 * host goes away, SIGTERM. Simulate mode and a temporary root: nothing on this machine
 * changes. */
#include "guesthost.h"
#include "testutil.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <string.h>

typedef struct {
        char *dir;
        char *sock_path;
        GSocket *listener;
        GSubprocess *proc;
        GSocket *conn;
        GuestHost gh;
} Host;

static void host_accept(Host *h)
{
        g_autoptr(GError) error = NULL;

        g_clear_object(&h->conn);
        h->conn = g_socket_accept(h->listener, NULL, &error); /* blocking, with a timeout */
        g_assert_no_error(error);
        g_socket_set_timeout(h->conn, 10);
        guest_host_init(&h->gh, h->conn);
}

static GuestMsg *host_read(Host *h)
{
        return guest_host_read(&h->gh);
}

static void host_send(Host *h, const char *line)
{
        guest_host_send(h->conn, line);
}

/* Send a line and wait for its reply (heartbeats may come first). */
static GuestMsg *host_ask(Host *h, const char *line)
{
        host_send(h, line);
        return guest_host_expect(&h->gh, GUEST_MSG_REPLY);
}

static void test_daemon(void)
{
        Host h = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(GSocketAddress) addr = NULL;
        g_autofree char *port = NULL, *root = NULL, *console = NULL, *banner = NULL;
        g_autofree char *big = NULL;
        const char *guest_bin = g_getenv("ATRIUM_GUEST");

        g_assert_nonnull(guest_bin);
        h.dir = testutil_tmpdir();
        h.sock_path = g_build_filename(h.dir, "port.sock", NULL);
        root = g_build_filename(h.dir, "root", NULL);
        console = g_build_filename(h.dir, "tty0", NULL);
        {
                g_autofree char *etc = g_build_filename(root, "etc", NULL);
                g_mkdir_with_parents(etc, 0755);
        }
        h.listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, &error);
        addr = g_unix_socket_address_new(h.sock_path);
        g_assert_true(g_socket_bind(h.listener, addr, FALSE, &error));
        g_assert_true(g_socket_listen(h.listener, &error));
        g_socket_set_timeout(h.listener, 10);
        port = g_strdup_printf("unix:%s", h.sock_path);
        h.proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, guest_bin, "--port",
                                  port, "--root", root, "--console", console, "--simulate",
                                  "--heartbeat", "1", NULL);
        g_assert_no_error(error);

        host_accept(&h);
        {
                g_autoptr(GuestMsg) m = host_read(&h);
                g_assert_cmpint(m->type, ==, GUEST_MSG_READY);
                g_assert_cmpint(m->boots, ==, 1);
                g_assert_null(m->user);
        }
        {
                g_autoptr(GuestMsg) m = host_ask(&h, "{\"v\":1,\"id\":\"a\",\"op\":\"ping\"}\n");
                g_assert_true(m->ok);
                g_assert_cmpstr(m->result, ==, "{\"pong\":true}");
        }
        /* Bad lines get error replies, and the daemon keeps serving. */
        {
                g_autoptr(GuestMsg) m = host_ask(&h, "\x01\x02 garbage\n");
                g_assert_false(m->ok);
                g_assert_cmpstr(m->error_code, ==, "invalid_json");
        }
        big = g_strnfill(10000, 'x');
        host_send(&h, big);
        {
                g_autoptr(GuestMsg) m = host_ask(&h, "\n");
                g_assert_cmpstr(m->error_code, ==, "line_too_long");
        }
        {
                g_autoptr(GuestMsg) m = host_ask(&h, "{\"id\":\"b\",\"op\":\"set-hostname\","
                                                     "\"hostname\":\"desk-9\"}\n");
                g_assert_true(m->ok);
        }
        g_assert_true(g_file_get_contents(console, &banner, NULL, NULL));
        g_assert_nonnull(strstr(banner, "hostname: desk-9"));
        /* A user logs in: the guest says so at once. */
        {
                const char *argv[] = {guest_bin, "--root", root, "login", "alice", NULL};
                g_autoptr(GSubprocess) login = g_subprocess_newv(argv, 0, &error);
                g_assert_true(g_subprocess_wait_check(login, NULL, &error));
        }
        for (;;) {
                g_autoptr(GuestMsg) m = host_read(&h);
                if (m->type == GUEST_MSG_HEARTBEAT)
                        continue;
                g_assert_cmpint(m->type, ==, GUEST_MSG_USER_LOGIN);
                g_assert_cmpstr(m->user, ==, "alice");
                break;
        }
        /* The host end goes away: the guest comes back and says ready again. */
        g_socket_close(h.conn, NULL);
        host_accept(&h);
        {
                g_autoptr(GuestMsg) m = host_read(&h);
                g_assert_cmpint(m->type, ==, GUEST_MSG_READY);
                g_assert_cmpstr(m->user, ==, "alice");
                g_assert_cmpstr(m->hostname, ==, "desk-9");
        }
        g_subprocess_send_signal(h.proc, SIGTERM);
        g_assert_true(g_subprocess_wait_check(h.proc, NULL, &error));

        g_clear_object(&h.conn);
        g_clear_object(&h.listener);
        g_clear_object(&h.proc);
        guest_host_clear(&h.gh);
        testutil_rmdir(h.dir);
        g_free(h.dir);
        g_free(h.sock_path);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/guest-daemon/serve", test_daemon);
        return g_test_run();
}
