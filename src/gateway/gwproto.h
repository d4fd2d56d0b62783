/* The gateway's wire formats, as pure functions (unit-tested and fuzzed): an HTTP/1.x request
 * head, the ticket carried by a console request (`?ticket=` of a WebSocket upgrade, or the
 * password of a CONNECT's `Proxy-Authorization: Basic`), the CONNECT target, and RFC 6455
 * WebSocket frames (the handshake's accept key, client frames in, server frames out).
 * No allocation per byte: a head is parsed in place, a frame is unmasked in place. */
#pragma once
#include <glib.h>

#define GW_MAX_HEADERS 48

typedef struct {
        const char *name, *value; /* NUL-terminated, inside the parsed buffer */
} GwHeader;

typedef struct {
        char *method, *target, *version; /* inside the parsed buffer */
        GwHeader headers[GW_MAX_HEADERS];
        guint n_headers;
} GwHead;

/* Parses the request head at the start of buf[0..len) (the buffer is modified: NULs end the
 * strings). Returns the head's length including its final empty line, 0 when more bytes are
 * needed, or -1 with error (malformed, a head longer than max_head bytes, too many headers,
 * bytes no HTTP/1.x request head may hold). */
gssize gw_head_parse(char *buf, gsize len, gsize max_head, GwHead *out, GError **error);
/* The value of a header (case-insensitive name), or NULL. */
const char *gw_head_get(const GwHead *h, const char *name);
/* TRUE when the comma-separated header value holds token (case-insensitive). */
gboolean gw_header_has_token(const char *value, const char *token);

/* The path part of a request target (before '?'), copied into out; FALSE when too long. */
gboolean gw_target_path(const char *target, char *out, gsize cap);
/* The percent-decoded value of a query parameter of target, or NULL (absent, or invalid
 * percent-encoding, or longer than max). Free with g_free(). */
char *gw_query_param(const char *target, const char *name, gsize max);
/* The password of a "Basic base64(user:password)" credential, or NULL. Free with g_free(). */
char *gw_basic_password(const char *value, gsize max);
/* "host:port" or "[v6]:port" of a CONNECT; FALSE when malformed. */
gboolean gw_connect_target(const char *target, char *host, gsize host_cap, guint16 *port);
/* TRUE when a CONNECT's requested host:port names the ticket's host:port. */
gboolean gw_target_matches(const char *host, guint16 port, const char *ticket_host,
                           guint16 ticket_port);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (which must be 24 base64 characters decoding
 * to 16 bytes); FALSE when the key is not one. out: at least 29 bytes. */
gboolean gw_ws_accept(const char *key, char *out, gsize cap);

enum {
        GW_WS_CONT = 0x0,
        GW_WS_TEXT = 0x1,
        GW_WS_BINARY = 0x2,
        GW_WS_CLOSE = 0x8,
        GW_WS_PING = 0x9,
        GW_WS_PONG = 0xA,
};

typedef struct {
        guint8 opcode;
        gboolean fin;
        gsize header_len; /* bytes before the payload */
        guint64 payload_len;
} GwFrame;

/* Parses one client frame at buf[0..len). Returns the whole frame's length (header_len +
 * payload_len) once all of it is in buf, having unmasked the payload in place; 0 when more
 * bytes are needed; -1 with error for a protocol violation (unmasked client frame, reserved
 * bits or opcodes, a control frame that is fragmented or longer than 125 bytes, a payload
 * longer than max_payload). */
gssize gw_ws_frame_parse(guint8 *buf, gsize len, guint64 max_payload, GwFrame *out, GError **error);
/* Writes a server frame header (FIN set, no mask) for a payload of len bytes into out (at
 * least 10 bytes); returns its length. */
gsize gw_ws_frame_header(guint8 opcode, guint64 len, guint8 *out);
