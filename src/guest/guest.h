/* atrium-guest: the guest tools' protocol engine, separate from the I/O loop so that tests and
 * the fuzzer drive it directly. Protocol (version 1, docs/guest-tools.md): one JSON object per
 * line, at most GUEST_LINE_MAX bytes with its newline.
 *   guest → host: ready, heartbeat, user-login, user-logout, reply
 *   host → guest: {"v":1,"id":"...","op":"ping|set-hostname|login|logoff|reboot|shutdown|seal", ...}
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define GUEST_PROTOCOL_VERSION 1
#define GUEST_LINE_MAX 4096
#define GUEST_USER_MAX 64

typedef enum { GUEST_AFTER_NONE, GUEST_AFTER_REBOOT, GUEST_AFTER_SHUTDOWN } GuestAfter;

typedef struct {
        const char *root;      /* prefix of every file path ("" on a real guest) */
        const char *state_dir; /* below root: boot counter */
        const char *run_dir;   /* below root: logged-in user, pid, booted marker */
        const char *console;   /* banner device (/dev/tty0), or NULL */
        bool simulate;         /* never change the running system: record actions instead */
        char user[GUEST_USER_MAX];
        unsigned boots;
        GuestAfter after;      /* what to do once the reply is sent */
} Guest;

void guest_init(Guest *g);
/* Count this boot (once per boot: a marker in run_dir) and load the logged-in user. */
void guest_start(Guest *g);

/* Handle one request line (no newline; modified in place); the reply line, newline included,
 * goes to out. Never fails: bad input gets an error reply. */
void guest_handle_line(Guest *g, char *line, size_t len, char *out, size_t cap);
/* The error reply for a line past GUEST_LINE_MAX. */
void guest_too_long(char *out, size_t cap);

void guest_ready(Guest *g, char *out, size_t cap);
void guest_heartbeat(Guest *g, unsigned long seq, char *out, size_t cap);
/* Seconds since the last input (login or a terminal read), at now. */
long guest_idle_seconds(Guest *g, time_t now);
/* Re-read the logged-in user (after atrium-guest login/logout); when it changed, the
 * user-login / user-logout line goes to out and true is returned. */
bool guest_user_changed(Guest *g, char *out, size_t cap);

/* The console banner: hostname, IP, user, boot counter. */
void guest_banner(Guest *g, char *out, size_t cap);
void guest_write_banner(Guest *g);

/* RFC 1123 host name: labels of [a-z0-9-], 1..63 each, no leading or trailing '-', at most
 * 253 in all. */
bool guest_hostname_valid(const char *name);
/* A login name: 1..63 of [A-Za-z0-9._-], not starting with '-'. */
bool guest_user_valid(const char *name);

/* Carry out g->after (reboot or power off); returns only in simulate mode or on failure. */
void guest_do_after(Guest *g);

/* atrium-guest login USER / logout: write the user file and tell the daemon. */
int guest_set_user(Guest *g, const char *user);
