/* The host side of the atrium-guest protocol (version 1): parse what a guest says, build what
 * the agent asks. One JSON object per line, at most GUEST_PROTO_LINE_MAX bytes. The guest side
 * is src/guest/ (static, no GLib); docs/guest-tools.md describes the messages. */
#pragma once
#include <glib.h>

#define GUEST_PROTO_VERSION 1
#define GUEST_PROTO_LINE_MAX 4096
#define GUEST_PROTO_PORT "org.atrium.guest.0"

typedef enum {
        GUEST_MSG_READY,
        GUEST_MSG_HEARTBEAT,
        GUEST_MSG_USER_LOGIN,
        GUEST_MSG_USER_LOGOUT,
        GUEST_MSG_REPLY,
        GUEST_MSG_LAST
} GuestMsgType;

typedef enum {
        GUEST_OP_PING,
        GUEST_OP_SET_HOSTNAME,
        GUEST_OP_LOGOFF,
        GUEST_OP_REBOOT,
        GUEST_OP_SHUTDOWN,
        GUEST_OP_SEAL,
        GUEST_OP_LOGIN,
        GUEST_OP_LAST
} GuestOp;

const char *guest_msg_type_to_string(GuestMsgType t);
int guest_msg_type_from_string(const char *s); /* -1 when unknown */
const char *guest_op_to_string(GuestOp op);
int guest_op_from_string(const char *s); /* -1 when unknown */

typedef struct {
        GuestMsgType type;
        gint64 version;      /* ready */
        char *agent;         /* ready */
        char *hostname;      /* ready */
        char *os;            /* ready */
        GStrv ips;           /* ready */
        gint64 boots;        /* ready */
        gint64 seq;          /* heartbeat */
        gint64 idle;         /* heartbeat: seconds since the last input; -1 when not said */
        char *user;          /* ready, heartbeat, user-login, user-logout; NULL: nobody */
        char *id;            /* reply; NULL when the guest could not read the request's id */
        gboolean ok;         /* reply */
        char *error_code;    /* reply, !ok */
        char *error_message; /* reply, !ok */
        char *result;        /* reply, ok: the result object as JSON text */
} GuestMsg;

void guest_msg_free(GuestMsg *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestMsg, guest_msg_free)

/* Parse one line from a guest (without its newline). Anything malformed, unknown or missing a
 * field its type needs is an ATRIUM_ERROR_INVALID* error naming the problem. */
GuestMsg *guest_msg_parse(const char *line, gsize len, GError **error);
/* One line describing the message, fields in a fixed order (golden tests, logs). */
char *guest_msg_describe(const GuestMsg *m);

/* A request line, newline included. arg: the host name of GUEST_OP_SET_HOSTNAME, the user of
 * GUEST_OP_LOGIN; ignored otherwise. */
char *guest_request_line(const char *id, GuestOp op, const char *arg);
