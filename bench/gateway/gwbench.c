/* Load generator and console stand-ins for the gateway benchmark (bench/gateway/run.sh).
 *
 *   gwbench target PORTFILE source|echo   TCP console on 127.0.0.1: endless data, or echo
 *   gwbench bulk  GW TICKETS N SECONDS [plain]   N tunnels read what a 'source' console sends
 *                                                for 1 + SECONDS s: prints bytes and seconds
 *   gwbench latency GW TICKETS COUNT [plain]     one tunnel to an 'echo' console: COUNT round
 *                                                trips of 64 bytes, prints p50/p99 in us
 *   gwbench direct HOST:PORT COUNT               the same round trips without a gateway
 *   gwbench idle  GW TICKETS N [plain]           opens N tunnels, prints "open N", holds them
 *                                                until its standard input closes
 *   gwbench churn GW TICKETS N [plain]           opens N tunnels, closes them, prints "done"
 *
 * GW is HOST:PORT; TICKETS a file of tickets, one per line, used in turn (the gateway limits
 * tunnels per ticket). Tunnels are WebSocket (binary subprotocol) over TLS, or plain with
 * 'plain'. The same client drives websockify, which ignores the ticket. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
        int fd;
        SSL *ssl;
} Conn;

static SSL_CTX *ctx;
static char **tickets;
static int n_tickets;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
        fprintf(stderr, "gwbench: %s: %s\n", what, strerror(errno));
        exit(1);
}

static int tcp_connect(const char *hostport)
{
        char host[64];
        const char *colon = strrchr(hostport, ':');
        struct sockaddr_in a = {.sin_family = AF_INET};
        int fd, one = 1;

        if (!colon || (size_t)(colon - hostport) >= sizeof(host))
                die("bad HOST:PORT");
        memcpy(host, hostport, (size_t)(colon - hostport));
        host[colon - hostport] = '\0';
        a.sin_port = htons((uint16_t)atoi(colon + 1));
        inet_pton(AF_INET, host, &a.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                die("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static int cwrite(Conn *c, const void *buf, int len)
{
        return c->ssl ? SSL_write(c->ssl, buf, len) : (int)write(c->fd, buf, (size_t)len);
}

static int cread(Conn *c, void *buf, int len)
{
        return c->ssl ? SSL_read(c->ssl, buf, len) : (int)read(c->fd, buf, (size_t)len);
}

static void load_tickets(const char *path)
{
        FILE *f = fopen(path, "r");
        char line[2048];

        if (!f)
                die(path);
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (!line[0])
                        continue;
                tickets = realloc(tickets, sizeof(char *) * (size_t)(n_tickets + 1));
                tickets[n_tickets++] = strdup(line);
        }
        fclose(f);
        if (!n_tickets)
                die("no tickets");
}

/* A WebSocket tunnel through the gateway; the head's answer read byte by byte (nothing of
 * the stream after it is consumed). */
static Conn ws_open(const char *gw, int i, int plain)
{
        Conn c = {tcp_connect(gw), NULL};
        char req[4096], head[4096];
        int n = 0;

        if (!plain) {
                c.ssl = SSL_new(ctx);
                SSL_set_fd(c.ssl, c.fd);
                if (SSL_connect(c.ssl) != 1) {
                        ERR_print_errors_fp(stderr);
                        die("TLS handshake");
                }
        }
        snprintf(req, sizeof(req),
                 "GET /console?ticket=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
                 tickets[i % n_tickets], gw);
        cwrite(&c, req, (int)strlen(req));
        while (n < (int)sizeof(head) - 1) {
                if (cread(&c, head + n, 1) != 1)
                        die("handshake answer");
                n++;
                if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
                        break;
        }
        head[n] = '\0';
        if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "gwbench: tunnel %d refused: %.60s\n", i, head);
                exit(1);
        }
        return c;
}

static void conn_close(Conn *c)
{
        if (c->ssl) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        close(c->fd);
}

/* ---- consoles ---- */

static void target(const char *portfile, int source)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        int ep = epoll_create1(EPOLL_CLOEXEC);
        static char buf[65536];
        struct epoll_event ev = {.events = EPOLLIN}, evs[256];
        FILE *f;
        char tmp[4096];

        setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(srv, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv, 4096) < 0)
                die("listen");
        getsockname(srv, (struct sockaddr *)&a, &alen);
        snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
        f = fopen(tmp, "w");
        fprintf(f, "%d\n", ntohs(a.sin_port));
        fclose(f);
        rename(tmp, portfile);
        memset(buf, 'x', sizeof(buf));
        ev.data.fd = srv;
        epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev);
        for (;;) {
                int n = epoll_wait(ep, evs, 256, -1);
                for (int i = 0; i < n; i++) {
                        int fd = evs[i].data.fd;
                        if (fd == srv) {
                                int c = accept4(srv, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                                if (c < 0)
                                        continue;
                                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                                ev.events = EPOLLIN | EPOLLRDHUP;
                                ev.data.fd = c;
                                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                                continue;
                        }
                        if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                                close(fd);
                                continue;
                        }
                        if (evs[i].events & EPOLLIN) {
                                ssize_t r = read(fd, buf, sizeof(buf));
                                if (r <= 0) {
                                        close(fd);
                                        continue;
                                }
                                if (!source) {
                                        if (write(fd, buf, (size_t)r) < 0)
                                                close(fd);
                                } else if (!(evs[i].events & EPOLLOUT)) {
                                        /* the first bytes (any) start the flow */
                                        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
                                        ev.data.fd = fd;
                                        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                                }
                                memset(buf, 'x', sizeof(buf));
                        }
                        if (source && (evs[i].events & EPOLLOUT))
                                if (write(fd, buf, sizeof(buf)) < 0 && errno != EAGAIN)
                                        close(fd);
                }
        }
}

/* A masked client frame (zero mask: the payload needs no XOR on our side). */
static int client_frame(uint8_t *out, const void *payload, int len)
{
        out[0] = 0x82;
        out[1] = 0x80 | (uint8_t)len;
        memset(out + 2, 0, 4);
        memcpy(out + 6, payload, (size_t)len);
        return len + 6;
}

/* ---- bulk ---- */

typedef struct {
        const char *gw;
        int i, plain;
        double until;
        unsigned long long bytes;
} Bulk;

static void *bulk_run(void *p)
{
        Bulk *b = p;
        Conn c = ws_open(b->gw, b->i, b->plain);
        uint8_t go[16], buf[65536];
        int n = client_frame(go, "go", 2);

        cwrite(&c, go, n);
        while (now() < b->until) {
                int r = cread(&c, buf, sizeof(buf));
                if (r <= 0)
                        break;
                b->bytes += (unsigned long long)r;
        }
        conn_close(&c);
        return NULL;
}

static void bulk(const char *gw, int n, double seconds, int plain)
{
        pthread_t *t = calloc((size_t)n, sizeof(*t));
        Bulk *b = calloc((size_t)n, sizeof(*b));
        double start = now(), warm = 1.0;
        unsigned long long total = 0;

        for (int i = 0; i < n; i++) {
                b[i] = (Bulk){gw, i, plain, start + warm + seconds, 0};
                pthread_create(&t[i], NULL, bulk_run, &b[i]);
        }
        for (int i = 0; i < n; i++) {
                pthread_join(t[i], NULL);
                total += b[i].bytes;
        }
        printf("%llu %.3f\n", total, now() - start);
}

/* ---- latency ---- */

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static void report_rtts(double *rtt, int count)
{
        qsort(rtt, (size_t)count, sizeof(double), cmp);
        printf("%.1f %.1f\n", rtt[count / 2] * 1e6, rtt[(int)(count * 0.99)] * 1e6);
}

/* COUNT round trips of 64 bytes (after 100 for warm-up): as a WebSocket frame, echoed back
 * in a server frame (2-byte header), or raw. */
static void round_trips(Conn *c, int count, int framed)
{
        uint8_t msg[64], out[128], buf[256];
        int len = framed ? client_frame(out, memset(msg, 'p', sizeof(msg)), sizeof(msg))
                         : (int)sizeof(msg);
        int want = (framed ? 2 : 0) + (int)sizeof(msg);
        double *rtt = calloc((size_t)count, sizeof(double));

        if (!framed)
                memset(out, 'p', sizeof(msg));
        for (int i = 0; i < count + 100; i++) {
                int got = 0;
                double t0 = now();
                cwrite(c, out, len);
                while (got < want) {
                        int r = cread(c, buf, sizeof(buf));
                        if (r <= 0)
                                die("echo");
                        got += r;
                }
                if (i >= 100)
                        rtt[i - 100] = now() - t0;
        }
        conn_close(c);
        report_rtts(rtt, count);
}

static void latency(const char *gw, int count, int plain)
{
        Conn c = ws_open(gw, 0, plain);

        round_trips(&c, count, 1);
}

static void direct(const char *hostport, int count)
{
        Conn c = {tcp_connect(hostport), NULL};

        round_trips(&c, count, 0);
}

/* ---- many tunnels ---- */

static Conn *open_many(const char *gw, int n, int plain)
{
        Conn *c = calloc((size_t)n, sizeof(*c));

        for (int i = 0; i < n; i++) {
                c[i] = ws_open(gw, i, plain);
                if (c[i].ssl) /* idle: give the TLS buffers back */
                        SSL_set_mode(c[i].ssl, SSL_MODE_RELEASE_BUFFERS);
        }
        return c;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";
        int plain = argc > 0 && strcmp(argv[argc - 1], "plain") == 0;

        signal(SIGPIPE, SIG_IGN); /* a console writing to a tunnel that just closed */
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        if (!strcmp(mode, "target") && argc == 4) {
                target(argv[2], !strcmp(argv[3], "source"));
        } else if (!strcmp(mode, "direct") && argc == 4) {
                direct(argv[2], atoi(argv[3]));
        } else if (argc >= 5) {
                load_tickets(argv[3]);
                if (!strcmp(mode, "bulk") && argc >= 6)
                        bulk(argv[2], atoi(argv[4]), atof(argv[5]), plain);
                else if (!strcmp(mode, "latency"))
                        latency(argv[2], atoi(argv[4]), plain);
                else if (!strcmp(mode, "idle") || !strcmp(mode, "churn")) {
                        int n = atoi(argv[4]);
                        Conn *c = open_many(argv[2], n, plain);
                        char b[16];
                        printf("open %d\n", n);
                        fflush(stdout);
                        if (!strcmp(mode, "idle"))
                                while (read(0, b, sizeof(b)) > 0)
                                        ;
                        for (int i = 0; i < n; i++)
                                conn_close(&c[i]);
                        printf("done\n");
                } else {
                        goto usage;
                }
        } else {
                goto usage;
        }
        return 0;
usage:
        fprintf(stderr, "usage: see the top of bench/gateway/gwbench.c\n");
        return 2;
}
