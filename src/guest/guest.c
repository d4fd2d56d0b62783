#include "guest/guest.h"
#include "guest/minijson.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT "atrium-guest/" ATRIUM_VERSION

/* ---- files --------------------------------------------------------------------------------- */

static void path_of(const Guest *g, char *buf, size_t cap, const char *dir, const char *name)
{
        snprintf(buf, cap, "%s%s%s%s", g->root, dir ? dir : "", dir ? "/" : "", name);
}

static bool read_small(const char *path, char *buf, size_t cap)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = read(fd, buf, cap - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        return true;
}

static bool write_small(const char *path, const char *text)
{
        char tmp[512];
        int fd;
        size_t n = strlen(text);
        bool ok;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return false;
        ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
        close(fd);
        return ok && rename(tmp, path) == 0;
}

static void mkdirs(const char *path)
{
        char buf[512];

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        mkdir(buf, 0755);
                        *p = '/';
                }
        }
        mkdir(buf, 0755);
}

static void record_action(Guest *g, const char *what)
{
        char path[512];
        int fd;

        path_of(g, path, sizeof(path), g->run_dir, "actions");
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                if (write(fd, what, strlen(what)) < 0 || write(fd, "\n", 1) < 0)
                        perror("atrium-guest: recording an action");
                close(fd);
        }
}

/* ---- facts about this machine -------------------------------------------------------------- */

static void hostname_now(Guest *g, char *buf, size_t cap)
{
        char path[512];

        path_of(g, path, sizeof(path), "/etc", "hostname");
        if (g->simulate ? !read_small(path, buf, cap) : gethostname(buf, cap) != 0)
                snprintf(buf, cap, "localhost");
        buf[cap - 1] = '\0';
}

/* IPv4 addresses other than loopback, space-separated into buf; as JSON strings into json. */
static void addresses(char *buf, size_t cap, char *json, size_t jcap)
{
        struct ifaddrs *ifs = NULL, *i;
        size_t len = 0, jlen = 0;

        buf[0] = '\0';
        mj_put_raw(json, jcap, &jlen, "[");
        if (getifaddrs(&ifs) == 0) {
                for (i = ifs; i; i = i->ifa_next) {
                        char a[INET_ADDRSTRLEN];
                        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                                continue;
                        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
                                  sizeof(a));
                        if (strncmp(a, "127.", 4) == 0)
                                continue;
                        if (len)
                                mj_put_raw(buf, cap, &len, " ");
                        mj_put_raw(buf, cap, &len, a);
                        if (jlen > 1)
                                mj_put_raw(json, jcap, &jlen, ",");
                        mj_put_string(json, jcap, &jlen, a);
                }
                freeifaddrs(ifs);
        }
        mj_put_raw(json, jcap, &jlen, "]");
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

void guest_init(Guest *g)
{
        memset(g, 0, sizeof(*g));
        g->root = "";
        g->state_dir = "/var/lib/atrium-guest";
        g->run_dir = "/run/atrium-guest";
}

static void load_user(Guest *g, char *user, size_t cap)
{
        char path[512];

        path_of(g, path, sizeof(path), g->run_dir, "user");
        if (!read_small(path, user, cap) || !guest_user_valid(user))
                user[0] = '\0';
}

void guest_start(Guest *g)
{
        char dir[512], marker[512], counter[512], text[32] = "";

        path_of(g, dir, sizeof(dir), NULL, g->state_dir);
        mkdirs(dir);
        path_of(g, dir, sizeof(dir), NULL, g->run_dir);
        mkdirs(dir);
        path_of(g, counter, sizeof(counter), g->state_dir, "boots");
        path_of(g, marker, sizeof(marker), g->run_dir, "booted");
        read_small(counter, text, sizeof(text));
        g->boots = (unsigned)strtoul(text, NULL, 10);
        if (access(marker, F_OK) != 0) {
                /* First start in this boot: /run is empty after every boot. */
                g->boots++;
                snprintf(text, sizeof(text), "%u\n", g->boots);
                write_small(counter, text);
                write_small(marker, "");
        }
        load_user(g, g->user, sizeof(g->user));
}

/* ---- messages ------------------------------------------------------------------------------ */

#define PUT(s) mj_put_raw(out, cap, &len, (s))
#define PUTS(s) mj_put_string(out, cap, &len, (s))

void guest_ready(Guest *g, char *out, size_t cap)
{
        char host[256], ips[256], ipsj[512], os[600];
        struct utsname u;
        size_t len = 0;

        hostname_now(g, host, sizeof(host));
        addresses(ips, sizeof(ips), ipsj, sizeof(ipsj));
        if (uname(&u) == 0)
                snprintf(os, sizeof(os), "%s %s %s", u.sysname, u.release, u.machine);
        else
                snprintf(os, sizeof(os), "unknown");
        snprintf(out, cap, "{\"type\":\"ready\",\"v\":%d,\"agent\":", GUEST_PROTOCOL_VERSION);
        len = strlen(out);
        PUTS(AGENT);
        PUT(",\"hostname\":");
        PUTS(host);
        PUT(",\"ips\":");
        PUT(ipsj);
        PUT(",\"os\":");
        PUTS(os);
        PUT(",\"user\":");
        if (g->user[0])
                PUTS(g->user);
        else
                PUT("null");
        snprintf(os, sizeof(os), ",\"boots\":%u}\n", g->boots);
        PUT(os);
}

/* Seconds since the last input: the newest of the user's login (the user file) and the
 * access times of the terminals, which the kernel moves when a program reads input from them
 * (what `w` shows as IDLE). */
long guest_idle_seconds(Guest *g, time_t now)
{
        static const char *const ttys[] = {"tty1", "tty2", "tty3", "tty4", "tty5",
                                           "tty6", "ttyS0", "hvc0", "pts/0", "pts/1"};
        char path[512];
        struct stat st;
        time_t last = 0;

        path_of(g, path, sizeof(path), g->run_dir, "user");
        if (stat(path, &st) == 0)
                last = st.st_mtime;
        for (size_t i = 0; i < sizeof(ttys) / sizeof(ttys[0]); i++) {
                path_of(g, path, sizeof(path), "/dev", ttys[i]);
                if (stat(path, &st) == 0 && st.st_atime > last)
                        last = st.st_atime;
        }
        if (last == 0 || last > now)
                return 0;
        return (long)(now - last);
}

void guest_heartbeat(Guest *g, unsigned long seq, char *out, size_t cap)
{
        size_t len;
        char idle[48];

        snprintf(out, cap, "{\"type\":\"heartbeat\",\"seq\":%lu,\"user\":", seq);
        len = strlen(out);
        if (g->user[0])
                PUTS(g->user);
        else
                PUT("null");
        snprintf(idle, sizeof(idle), ",\"idle\":%ld}\n", guest_idle_seconds(g, time(NULL)));
        PUT(idle);
}

bool guest_user_changed(Guest *g, char *out, size_t cap)
{
        char now[GUEST_USER_MAX];
        size_t len = 0;

        load_user(g, now, sizeof(now));
        if (strcmp(now, g->user) == 0)
                return false;
        if (g->user[0]) {
                PUT("{\"type\":\"user-logout\",\"user\":");
                PUTS(g->user);
                PUT("}\n");
        }
        if (now[0]) {
                PUT("{\"type\":\"user-login\",\"user\":");
                PUTS(now);
                PUT("}\n");
        }
        snprintf(g->user, sizeof(g->user), "%s", now);
        guest_write_banner(g);
        return true;
}

static void reply_start(char *out, size_t cap, size_t *lenp, const char *id)
{
        size_t len = 0;

        PUT("{\"type\":\"reply\",\"id\":");
        if (id)
                PUTS(id);
        else
                PUT("null");
        *lenp = len;
}

static void reply_error(char *out, size_t cap, const char *id, const char *code, const char *msg)
{
        size_t len;

        reply_start(out, cap, &len, id);
        PUT(",\"ok\":false,\"error\":{\"code\":");
        PUTS(code);
        PUT(",\"message\":");
        PUTS(msg);
        PUT("}}\n");
}

static void reply_ok(char *out, size_t cap, const char *id, const char *result_json)
{
        size_t len;

        reply_start(out, cap, &len, id);
        PUT(",\"ok\":true,\"result\":");
        PUT(result_json ? result_json : "{}");
        PUT("}\n");
}

void guest_too_long(char *out, size_t cap)
{
        char msg[96];

        snprintf(msg, sizeof(msg), "a line may be at most %d bytes", GUEST_LINE_MAX);
        reply_error(out, cap, NULL, "line_too_long", msg);
}

/* ---- requests ------------------------------------------------------------------------------ */

bool guest_hostname_valid(const char *name)
{
        size_t total = strlen(name), label = 0;

        if (total == 0 || total > 253)
                return false;
        for (const char *p = name;; p++) {
                if (*p == '.' || *p == '\0') {
                        if (label == 0 || label > 63 || p[-1] == '-')
                                return false;
                        if (*p == '\0')
                                return true;
                        label = 0;
                        continue;
                }
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      (*p == '-' && label > 0)))
                        return false;
                label++;
        }
}

bool guest_user_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n >= GUEST_USER_MAX || name[0] == '-')
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

static void op_set_hostname(Guest *g, const MjObject *req, const char *id, char *out, size_t cap)
{
        const char *name = mj_get_string(req, "hostname");
        char path[512], text[300], result[320];
        size_t rlen = 0;

        if (!name) {
                reply_error(out, cap, id, "missing_field", "set-hostname needs a \"hostname\"");
                return;
        }
        if (!guest_hostname_valid(name)) {
                reply_error(out, cap, id, "invalid_hostname",
                            "a host name is 1 to 253 characters: labels of a-z, 0-9 and '-' "
                            "(not first or last), 63 at most, separated by dots");
                return;
        }
        path_of(g, path, sizeof(path), "/etc", "hostname");
        snprintf(text, sizeof(text), "%s\n", name);
        if (!write_small(path, text) || (!g->simulate && sethostname(name, strlen(name)) != 0)) {
                reply_error(out, cap, id, "failed", strerror(errno));
                return;
        }
        if (g->simulate) {
                snprintf(text, sizeof(text), "set-hostname %s", name);
                record_action(g, text);
        }
        guest_write_banner(g);
        mj_put_raw(result, sizeof(result), &rlen, "{\"hostname\":");
        mj_put_string(result, sizeof(result), &rlen, name);
        mj_put_raw(result, sizeof(result), &rlen, "}");
        reply_ok(out, cap, id, result);
}

/* Remove what ties this disk to one machine before it is frozen into a template. */
static void op_seal(Guest *g, const char *id, char *out, size_t cap)
{
        static const char *const files[] = {"/etc/machine-id",
                                            "/var/lib/dbus/machine-id",
                                            "/etc/ssh/ssh_host_rsa_key",
                                            "/etc/ssh/ssh_host_rsa_key.pub",
                                            "/etc/ssh/ssh_host_ecdsa_key",
                                            "/etc/ssh/ssh_host_ecdsa_key.pub",
                                            "/etc/ssh/ssh_host_ed25519_key",
                                            "/etc/ssh/ssh_host_ed25519_key.pub",
                                            "/var/lib/dhcp/dhclient.leases",
                                            NULL};
        char path[512], result[2048];
        size_t rlen = 0;
        int n = 0;

        mj_put_raw(result, sizeof(result), &rlen, "{\"removed\":[");
        for (const char *const *f = files; *f; f++) {
                path_of(g, path, sizeof(path), NULL, *f);
                if (unlink(path) == 0) {
                        if (n++)
                                mj_put_raw(result, sizeof(result), &rlen, ",");
                        mj_put_string(result, sizeof(result), &rlen, *f);
                }
        }
        /* A clone starts counting its own boots, with a neutral name until personalised. */
        path_of(g, path, sizeof(path), g->state_dir, "boots");
        if (unlink(path) == 0) {
                if (n++)
                        mj_put_raw(result, sizeof(result), &rlen, ",");
                mj_put_string(result, sizeof(result), &rlen, "boot counter");
        }
        path_of(g, path, sizeof(path), "/etc", "hostname");
        write_small(path, "localhost\n");
        mj_put_raw(result, sizeof(result), &rlen, "]}");
        if (g->simulate)
                record_action(g, "seal");
        reply_ok(out, cap, id, result);
}

static void op_logoff(Guest *g, const char *id, char *out, size_t cap)
{
        char path[512], user[GUEST_USER_MAX];

        load_user(g, user, sizeof(user)); /* the file: a login just made counts */
        if (!user[0]) {
                reply_error(out, cap, id, "no_user", "nobody is logged in");
                return;
        }
        /* The test image's sessions are this file; a desktop with logind ends the user's
         * session through loginctl (docs/guest-tools.md). */
        if (!g->simulate && access("/bin/loginctl", X_OK) == 0) {
                pid_t pid = fork();
                if (pid == 0) {
                        execl("/bin/loginctl", "loginctl", "terminate-user", user,
                              (char *)NULL);
                        _exit(127);
                }
                if (pid > 0)
                        waitpid(pid, NULL, 0);
        }
        path_of(g, path, sizeof(path), g->run_dir, "user");
        unlink(path);
        if (g->simulate)
                record_action(g, "logoff");
        reply_ok(out, cap, id, NULL);
}

/* The broker says who connects: the test image logs that user in (the user file, which a
 * display manager's autologin hook reads on a full desktop; docs/guest-tools.md). The daemon
 * notices the change and says user-login. */
static void op_login(Guest *g, const MjObject *req, const char *id, char *out, size_t cap)
{
        const char *user = mj_get_string(req, "user");
        char path[512], text[GUEST_USER_MAX + 2];

        if (!user) {
                reply_error(out, cap, id, "missing_field", "login needs a \"user\"");
                return;
        }
        if (!guest_user_valid(user)) {
                reply_error(out, cap, id, "invalid_user",
                            "a user name is 1 to 63 of A-Z, a-z, 0-9, '.', '_' and '-', not "
                            "starting with '-'");
                return;
        }
        path_of(g, path, sizeof(path), g->run_dir, "user");
        snprintf(text, sizeof(text), "%s\n", user);
        if (!write_small(path, text)) {
                reply_error(out, cap, id, "failed", strerror(errno));
                return;
        }
        if (g->simulate) {
                snprintf(path, sizeof(path), "login %s", user);
                record_action(g, path);
        }
        reply_ok(out, cap, id, NULL);
}

static bool id_valid(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > 64)
                return false;
        for (const unsigned char *p = (const unsigned char *)id; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

void guest_handle_line(Guest *g, char *line, size_t len, char *out, size_t cap)
{
        MjObject req;
        const MjMember *v, *idm;
        const char *err, *op, *id;

        if (!mj_utf8_valid(line, len)) {
                reply_error(out, cap, NULL, "invalid_utf8", "the line is not UTF-8 text");
                return;
        }
        if (mj_parse(line, &req, &err) < 0) {
                reply_error(out, cap, NULL, "invalid_json", err);
                return;
        }
        idm = mj_get(&req, "id");
        if (!idm || idm->type != MJ_STRING || !id_valid(idm->value)) {
                reply_error(out, cap, NULL, "missing_id",
                            "a request needs an \"id\": 1 to 64 printable characters");
                return;
        }
        id = idm->value;
        v = mj_get(&req, "v");
        if (v && (v->type != MJ_NUMBER || strtol(v->value, NULL, 10) != GUEST_PROTOCOL_VERSION)) {
                reply_error(out, cap, id, "unsupported_version",
                            "this atrium-guest speaks protocol version 1");
                return;
        }
        op = mj_get_string(&req, "op");
        if (!op) {
                reply_error(out, cap, id, "missing_op", "a request needs an \"op\"");
                return;
        }
        if (strcmp(op, "ping") == 0) {
                reply_ok(out, cap, id, "{\"pong\":true}");
        } else if (strcmp(op, "set-hostname") == 0) {
                op_set_hostname(g, &req, id, out, cap);
        } else if (strcmp(op, "logoff") == 0) {
                op_logoff(g, id, out, cap);
        } else if (strcmp(op, "login") == 0) {
                op_login(g, &req, id, out, cap);
        } else if (strcmp(op, "reboot") == 0 || strcmp(op, "shutdown") == 0) {
                g->after = op[0] == 'r' ? GUEST_AFTER_REBOOT : GUEST_AFTER_SHUTDOWN;
                reply_ok(out, cap, id, NULL);
        } else if (strcmp(op, "seal") == 0) {
                op_seal(g, id, out, cap);
        } else {
                reply_error(out, cap, id, "unknown_op",
                            "unknown op; this atrium-guest knows ping, set-hostname, login, "
                            "logoff, reboot, shutdown, seal");
        }
}

/* ---- console banner ------------------------------------------------------------------------ */

void guest_banner(Guest *g, char *out, size_t cap)
{
        char host[256], ips[256], ipsj[512];

        hostname_now(g, host, sizeof(host));
        addresses(ips, sizeof(ips), ipsj, sizeof(ipsj));
        snprintf(out, cap,
                 "\n  ATRIUM TEST DESKTOP\n\n  hostname: %s\n  ip:       %s\n  user:     %s\n"
                 "  boot:     %u\n\n",
                 host, ips[0] ? ips : "none", g->user[0] ? g->user : "no user", g->boots);
}

void guest_write_banner(Guest *g)
{
        char text[1024];
        int fd;

        if (!g->console)
                return;
        guest_banner(g, text, sizeof(text));
        fd = open(g->console, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_APPEND | O_CREAT, 0644);
        if (fd < 0)
                return;
        /* Clear the screen first, so the banner is all a screenshot shows. */
        if (write(fd, "\033[2J\033[H", 7) < 0 || write(fd, text, strlen(text)) < 0)
                perror("atrium-guest: writing the banner");
        close(fd);
}

/* ---- after a reply ------------------------------------------------------------------------- */

void guest_do_after(Guest *g)
{
        const char *cmd = g->after == GUEST_AFTER_REBOOT ? "/sbin/reboot" : "/sbin/poweroff";
        pid_t pid;
        int status;

        if (g->after == GUEST_AFTER_NONE)
                return;
        if (g->simulate) {
                record_action(g, g->after == GUEST_AFTER_REBOOT ? "reboot" : "shutdown");
                g->after = GUEST_AFTER_NONE;
                return;
        }
        sync();
        pid = fork();
        if (pid == 0) {
                execl(cmd, cmd, (char *)NULL);
                _exit(127);
        }
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
                return;
        /* No init to ask: do it directly. */
        reboot(g->after == GUEST_AFTER_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
}

int guest_set_user(Guest *g, const char *user)
{
        char path[512], pidtext[32] = "";
        long pid;

        if (user && !guest_user_valid(user)) {
                fprintf(stderr, "atrium-guest: '%s' is not a valid user name\n", user);
                return 2;
        }
        path_of(g, path, sizeof(path), NULL, g->run_dir);
        mkdirs(path);
        path_of(g, path, sizeof(path), g->run_dir, "user");
        if (user) {
                char text[GUEST_USER_MAX + 2];
                snprintf(text, sizeof(text), "%s\n", user);
                if (!write_small(path, text)) {
                        perror("atrium-guest: writing the user file");
                        return 1;
                }
        } else {
                unlink(path);
        }
        path_of(g, path, sizeof(path), g->run_dir, "pid");
        if (read_small(path, pidtext, sizeof(pidtext)) && (pid = strtol(pidtext, NULL, 10)) > 1)
                kill((pid_t)pid, SIGUSR1);
        return 0;
}
