/* The atrium-guest protocol, both sides: the host library (src/proto/guestproto.c) against
 * golden files, and the guest engine (src/guest/) answering requests the host library builds. */
#include "common/error.h"
#include "guest/guest.h"
#include "proto/guestproto.h"
#include "testutil.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static char *lines_result(const char *in_name, char *(*each)(char *line, gpointer), gpointer data)
{
        g_autofree char *rel = g_build_filename("tests", "data", in_name, NULL);
        g_autofree char *path = testutil_source_path(rel);
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        GString *out = g_string_new(NULL);

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_autofree char *copy = g_strdup(*l);
                g_autofree char *r = NULL;
                if (!**l || **l == '#')
                        continue;
                r = each(copy, data);
                g_string_append_printf(out, "%s\n  -> %s\n", *l, r);
        }
        return g_string_free(out, FALSE);
}

static char *parse_one(char *line, gpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GuestMsg) m = guest_msg_parse(line, strlen(line), &error);

        if (!m)
                return g_strdup_printf("error %s: %s", atrium_error_code_to_string(error->code),
                                       error->message);
        return guest_msg_describe(m);
}

static void test_host_parse_golden(void)
{
        g_autofree char *out = lines_result("guest-messages.in", parse_one, NULL);
        testutil_golden("guest-messages.out", out);
}

static Guest *sim_guest(char **dir)
{
        Guest *g = g_new0(Guest, 1);
        g_autofree char *etc = NULL;

        *dir = testutil_tmpdir();
        etc = g_build_filename(*dir, "etc", NULL);
        g_mkdir(etc, 0755);
        guest_init(g);
        g->root = *dir;
        g->simulate = TRUE;
        guest_start(g);
        return g;
}

static char *answer_one(char *line, gpointer data)
{
        char reply[GUEST_LINE_MAX * 2];

        guest_handle_line(data, line, strlen(line), reply, sizeof(reply));
        guest_do_after(data);
        reply[strcspn(reply, "\n")] = '\0';
        return g_strdup(reply);
}

/* Every bad request gets a clear error reply, and the engine goes on serving. */
static void test_guest_requests_golden(void)
{
        g_autofree char *dir = NULL;
        g_autofree Guest *g = sim_guest(&dir);
        g_autofree char *out = lines_result("guest-requests.in", answer_one, g);
        g_autofree char *actions_path = g_build_filename(dir, "run/atrium-guest/actions", NULL);
        g_autofree char *hostname_path = g_build_filename(dir, "etc/hostname", NULL);
        g_autofree char *actions = NULL, *hostname = NULL;

        testutil_golden("guest-requests.out", out);
        g_assert_true(g_file_get_contents(actions_path, &actions, NULL, NULL));
        g_assert_cmpstr(actions, ==,
                        "set-hostname desk-042\nset-hostname a.b.c\nseal\nreboot\nshutdown\nlogin "
                        "alice\nlogoff\n");
        g_assert_true(g_file_get_contents(hostname_path, &hostname, NULL, NULL));
        g_assert_cmpstr(hostname, ==, "localhost\n"); /* sealed last */
        testutil_rmdir(dir);
}

/* The host builds requests, the guest answers, the host reads the answers. */
static void test_round_trip(void)
{
        g_autofree char *dir = NULL;
        g_autofree Guest *g = sim_guest(&dir);
        char out[GUEST_LINE_MAX * 2];

        for (GuestOp op = 0; op < GUEST_OP_LAST; op++) {
                g_autofree char *id = g_strdup_printf("req-%d", op);
                g_autofree char *line = guest_request_line(id, op, "clone-7");
                g_autoptr(GError) error = NULL;
                g_autoptr(GuestMsg) m = NULL;

                line[strlen(line) - 1] = '\0';
                guest_handle_line(g, line, strlen(line), out, sizeof(out));
                guest_do_after(g);
                g_assert_true(g_str_has_suffix(out, "\n"));
                out[strlen(out) - 1] = '\0';
                m = guest_msg_parse(out, strlen(out), &error);
                g_assert_no_error(error);
                g_assert_cmpint(m->type, ==, GUEST_MSG_REPLY);
                g_assert_cmpstr(m->id, ==, id);
                /* logoff with nobody logged in is the one expected refusal */
                g_assert_cmpint(m->ok, ==, op != GUEST_OP_LOGOFF);
        }
        /* ready and heartbeat, as the guest writes them, read by the host. */
        g_assert_cmpint(guest_set_user(g, "alice"), ==, 0);
        g_assert_true(guest_user_changed(g, out, sizeof(out)));
        g_assert_cmpstr(out, ==, "{\"type\":\"user-login\",\"user\":\"alice\"}\n");
        g_assert_false(guest_user_changed(g, out, sizeof(out)));
        guest_ready(g, out, sizeof(out));
        {
                g_autoptr(GError) error = NULL;
                g_autoptr(GuestMsg) m = guest_msg_parse(out, strlen(out) - 1, &error);
                g_assert_no_error(error);
                g_assert_cmpint(m->type, ==, GUEST_MSG_READY);
                g_assert_cmpstr(m->user, ==, "alice");
                g_assert_cmpint(m->boots, ==, 1);
                g_assert_cmpstr(m->hostname, ==, "localhost"); /* seal ran after set-hostname */
        }
        guest_heartbeat(g, 3, out, sizeof(out));
        {
                g_autoptr(GuestMsg) m = guest_msg_parse(out, strlen(out) - 1, NULL);
                g_assert_nonnull(m);
                g_assert_cmpint(m->seq, ==, 3);
        }
        g_assert_cmpint(guest_set_user(g, "bad user"), ==, 2);
        testutil_rmdir(dir);
}

/* A fresh clone shows boot 1; each boot (an empty /run) adds one; seal starts over. */
static void test_boot_counter(void)
{
        g_autofree char *dir = NULL;
        g_autofree Guest *g = sim_guest(&dir);
        g_autofree char *run = g_build_filename(dir, "run/atrium-guest/booted", NULL);
        char out[GUEST_LINE_MAX];

        g_assert_cmpuint(g->boots, ==, 1);
        guest_start(g); /* the daemon restarted, same boot */
        g_assert_cmpuint(g->boots, ==, 1);
        g_unlink(run); /* rebooted */
        guest_start(g);
        g_assert_cmpuint(g->boots, ==, 2);
        guest_banner(g, out, sizeof(out));
        g_assert_nonnull(strstr(out, "boot:     2"));
        g_assert_nonnull(strstr(out, "user:     no user"));
        {
                char seal[] = "{\"id\":\"s\",\"op\":\"seal\"}";
                guest_handle_line(g, seal, strlen(seal), out, sizeof(out));
        }
        g_unlink(run);
        guest_start(g);
        g_assert_cmpuint(g->boots, ==, 1);
        testutil_rmdir(dir);
}

static void test_hostname_rules(void)
{
        const char *good[] = {"a", "desk-1", "a.b", "x123", "a-b.c-d"};
        const char *badn[] = {"", "-a", "a-", "A", "a_b", "a..b", ".a", "a.", "a b", "é"};

        for (gsize i = 0; i < G_N_ELEMENTS(good); i++)
                g_assert_true(guest_hostname_valid(good[i]));
        for (gsize i = 0; i < G_N_ELEMENTS(badn); i++)
                g_assert_false(guest_hostname_valid(badn[i]));
}

static void set_times(const char *path, time_t t)
{
        struct timespec ts[2] = {{t, 0}, {t, 0}};

        g_assert_cmpint(utimensat(AT_FDCWD, path, ts, 0), ==, 0);
}

/* Idle seconds: the newest of the login (user file) and the terminals' access times. */
static void test_idle_seconds(void)
{
        g_autofree char *dir = NULL;
        g_autofree Guest *g = sim_guest(&dir);
        g_autofree char *dev = g_build_filename(dir, "dev", NULL);
        g_autofree char *tty = g_build_filename(dir, "dev", "ttyS0", NULL);
        g_autofree char *user = g_build_filename(dir, "run/atrium-guest/user", NULL);
        char line[] = "{\"id\":\"1\",\"op\":\"login\",\"user\":\"alice\"}";
        char reply[GUEST_LINE_MAX];
        time_t now = 1700000000;

        g_assert_cmpint(guest_idle_seconds(g, now), ==, 0); /* nothing known: not idle */
        guest_handle_line(g, line, strlen(line), reply, sizeof(reply));
        g_assert_nonnull(strstr(reply, "\"ok\":true"));
        set_times(user, now - 300);
        g_assert_cmpint(guest_idle_seconds(g, now), ==, 300);
        g_mkdir(dev, 0755);
        g_assert_true(g_file_set_contents(tty, "", 0, NULL));
        set_times(tty, now - 40); /* input read on the serial console 40 s ago */
        g_assert_cmpint(guest_idle_seconds(g, now), ==, 40);
        set_times(tty, now + 100); /* a clock in the future is no input in the past */
        g_assert_cmpint(guest_idle_seconds(g, now), ==, 0);
        testutil_rmdir(dir);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/guestproto/host-parse-golden", test_host_parse_golden);
        g_test_add_func("/guestproto/guest-requests-golden", test_guest_requests_golden);
        g_test_add_func("/guestproto/round-trip", test_round_trip);
        g_test_add_func("/guestproto/boot-counter", test_boot_counter);
        g_test_add_func("/guestproto/hostname-rules", test_hostname_rules);
        g_test_add_func("/guestproto/idle-seconds", test_idle_seconds);
        return g_test_run();
}
