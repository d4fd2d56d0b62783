/* atrium-guest: the Atrium guest tools daemon. Static, no GLib: it runs in any Linux guest.
 *
 *   atrium-guest [--port PATH] [--console DEV] [--heartbeat SECS] [--root DIR] [--simulate]
 *   atrium-guest login USER | logout | banner
 *
 * PATH is the virtio-serial port (default /dev/virtio-ports/org.atrium.guest.0) or, for tests,
 * unix:SOCKET. When the port goes away (host closed it, device gone) the daemon reopens it
 * every second until SIGTERM. */
#include "guest/guest.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT "/dev/virtio-ports/org.atrium.guest.0"

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
        unsigned char c = (unsigned char)sig;
        int saved = errno;
        if (write(sig_pipe[1], &c, 1) < 0) {
                /* the pipe is full: a signal is already pending */
        }
        errno = saved;
}

static int open_port(const char *port)
{
        int fd;

        if (strncmp(port, "unix:", 5) == 0) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                if (strlen(port + 5) >= sizeof(sa.sun_path))
                        return -1;
                memcpy(sa.sun_path, port + 5, strlen(port + 5) + 1);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                        close(fd);
                        fd = -1;
                }
                return fd;
        }
        return open(port, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static bool send_all(int fd, const char *s)
{
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t w = write(fd, s, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return false;
                s += w;
                n -= (size_t)w;
        }
        return true;
}

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

typedef struct {
        char buf[GUEST_LINE_MAX + 1];
        size_t len;
        bool discarding; /* inside a line that is too long: drop up to its newline */
} LineReader;

/* Feed bytes; each complete line is handled and its reply sent. false: the port failed. */
static bool feed(Guest *g, LineReader *lr, int fd, const char *data, size_t n)
{
        static char reply[GUEST_LINE_MAX * 2];

        for (size_t i = 0; i < n; i++) {
                char c = data[i];
                if (c == '\n') {
                        if (lr->discarding) {
                                lr->discarding = false;
                        } else {
                                lr->buf[lr->len] = '\0';
                                if (lr->len > 0 && lr->buf[lr->len - 1] == '\r')
                                        lr->buf[--lr->len] = '\0';
                                if (lr->len > 0) {
                                        guest_handle_line(g, lr->buf, lr->len, reply,
                                                          sizeof(reply));
                                        if (!send_all(fd, reply))
                                                return false;
                                        guest_do_after(g);
                                }
                        }
                        lr->len = 0;
                        continue;
                }
                if (lr->discarding)
                        continue;
                if (lr->len >= GUEST_LINE_MAX - 1) {
                        lr->discarding = true;
                        lr->len = 0;
                        guest_too_long(reply, sizeof(reply));
                        if (!send_all(fd, reply))
                                return false;
                        continue;
                }
                lr->buf[lr->len++] = c;
        }
        return true;
}

/* Serve one connection of the port until it fails; returns false on SIGTERM. */
static bool serve(Guest *g, int fd, int heartbeat_s)
{
        static char out[GUEST_LINE_MAX];
        LineReader lr = {.len = 0};
        unsigned long seq = 0;
        long next_beat = now_ms() + heartbeat_s * 1000L;

        guest_ready(g, out, sizeof(out));
        if (!send_all(fd, out))
                return true;
        for (;;) {
                struct pollfd p[2] = {{fd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
                long wait = next_beat - now_ms();
                int r = poll(p, 2, wait < 0 ? 0 : (int)wait);

                if (r < 0 && errno != EINTR)
                        return true;
                if (r > 0 && (p[1].revents & POLLIN)) {
                        unsigned char sig;
                        while (read(sig_pipe[0], &sig, 1) == 1) {
                                if (sig == SIGTERM || sig == SIGINT)
                                        return false;
                                if (sig == SIGUSR1 && guest_user_changed(g, out, sizeof(out)) &&
                                    !send_all(fd, out))
                                        return true;
                        }
                }
                if (r > 0 && (p[0].revents & POLLIN)) {
                        char data[4096];
                        ssize_t n = read(fd, data, sizeof(data));
                        if (n <= 0 || !feed(g, &lr, fd, data, (size_t)n))
                                return true;
                        /* a login or logoff request changed the user: say so */
                        if (guest_user_changed(g, out, sizeof(out)) && !send_all(fd, out))
                                return true;
                } else if (r > 0 && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))) {
                        return true;
                }
                if (now_ms() >= next_beat) {
                        guest_heartbeat(g, ++seq, out, sizeof(out));
                        if (!send_all(fd, out))
                                return true;
                        next_beat = now_ms() + heartbeat_s * 1000L;
                }
        }
}

static void usage(FILE *to)
{
        fprintf(to, "Usage: atrium-guest [OPTIONS]           run the guest tools daemon\n"
                    "       atrium-guest login USER          a user logged in (test image)\n"
                    "       atrium-guest logout              the user logged out\n"
                    "       atrium-guest banner              print the console banner\n\n"
                    "  --port PATH       virtio-serial port, or unix:SOCKET (default %s)\n"
                    "  --console DEV     write the banner there (e.g. /dev/tty0)\n"
                    "  --heartbeat SECS  seconds between heartbeats (default 5)\n"
                    "  --root DIR        prefix of every file it reads or writes (tests)\n"
                    "  --simulate        never change the running system; record actions\n"
                    "                    in RUN_DIR/actions instead (tests)\n",
                DEFAULT_PORT);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"port", required_argument, NULL, 'p'},
                {"console", required_argument, NULL, 'c'},
                {"heartbeat", required_argument, NULL, 'b'},
                {"root", required_argument, NULL, 'r'},
                {"simulate", no_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *port = DEFAULT_PORT;
        int heartbeat = 5, c, fd;
        char pid[32], path[512];
        Guest g;

        guest_init(&g);
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                char *end;
                switch (c) {
                case 'p': port = optarg; break;
                case 'c': g.console = optarg; break;
                case 'r': g.root = optarg; break;
                case 's': g.simulate = true; break;
                case 'b':
                        heartbeat = (int)strtol(optarg, &end, 10);
                        if (*end || heartbeat < 1 || heartbeat > 3600) {
                                fprintf(stderr, "atrium-guest: --heartbeat takes 1 to 3600\n");
                                return 2;
                        }
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                const char *cmd = argv[optind];
                if (strcmp(cmd, "login") == 0 && optind + 2 == argc)
                        return guest_set_user(&g, argv[optind + 1]);
                if (strcmp(cmd, "logout") == 0 && optind + 1 == argc)
                        return guest_set_user(&g, NULL);
                if (strcmp(cmd, "banner") == 0 && optind + 1 == argc) {
                        char text[1024];
                        guest_start(&g);
                        guest_banner(&g, text, sizeof(text));
                        fputs(text, stdout);
                        return 0;
                }
                usage(stderr);
                return 2;
        }
        if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                perror("atrium-guest: pipe");
                return 1;
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGUSR1, on_signal);
        signal(SIGPIPE, SIG_IGN);
        guest_start(&g);
        snprintf(path, sizeof(path), "%s%s/pid", g.root, g.run_dir);
        snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                if (write(fd, pid, strlen(pid)) < 0)
                        perror("atrium-guest: pid file");
                close(fd);
        }
        guest_write_banner(&g);
        fprintf(stderr, "atrium-guest %s: boot %u, port %s\n", ATRIUM_VERSION, g.boots, port);
        for (;;) {
                bool again;
                fd = open_port(port);
                if (fd < 0) {
                        struct pollfd p = {sig_pipe[0], POLLIN, 0};
                        /* Not there yet, or gone: look again in a second. */
                        if (poll(&p, 1, 1000) > 0) {
                                unsigned char sig;
                                if (read(sig_pipe[0], &sig, 1) == 1 &&
                                    (sig == SIGTERM || sig == SIGINT))
                                        break;
                                if (sig == SIGUSR1) {
                                        char scratch[GUEST_LINE_MAX];
                                        guest_user_changed(&g, scratch, sizeof(scratch));
                                }
                        }
                        continue;
                }
                again = serve(&g, fd, heartbeat);
                close(fd);
                if (!again)
                        break;
                fprintf(stderr, "atrium-guest: port %s closed; reopening\n", port);
        }
        return 0;
}
