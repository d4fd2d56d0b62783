/* Small helpers shared by every binary. */
#pragma once
#include <glib.h>

#define ATRIUM_NAME_MAX 64
#define ATRIUM_TEXT_MAX 1024

/* Current UTC time as ISO 8601 with milliseconds, "2026-11-22T14:00:00.000Z". */
char *util_now_iso(void);
/* Same format for a unix time in seconds. */
char *util_time_iso(gint64 unix_seconds);

/* Object names: 1..64 of [A-Za-z0-9._-], starting with a letter, so a name can never be
 * mistaken for a numeric id. */
gboolean util_name_valid(const char *name, GError **error);
/* Free text: valid UTF-8, no control characters but tab, at most max_len bytes. */
gboolean util_text_valid(const char *what, const char *text, gsize max_len, GError **error);
/* Client text made safe to quote in a message or a log line: control characters and
 * non-UTF-8 bytes escaped, cut to 64 characters. */
char *util_quote(const char *s);
/* An id as text, for store calls taking an id or a name. */
char *util_id_text(gint64 id);
/* TRUE when s is a decimal integer id (1..G_MAXINT64). */
gboolean util_parse_id(const char *s, gint64 *out);

/* url-safe base64 of n random bytes, no padding. */
char *util_random_token(gsize n);
/* Human-friendly random password: 20 chars from an unambiguous alphabet. */
char *util_random_password(void);

/* Write a file atomically with the given mode. */
gboolean util_write_file(const char *path, const char *data, gssize len, int mode, GError **error);
/* The first line of a secret file (a password: g_free after wiping it), or NULL with an error. */
char *util_read_first_line(const char *path, GError **error);

/* Take an exclusive lock on DIR/atriumd.pid and write our pid in it; the fd stays open for
 * the life of the process. Fails with a message naming the holder's pid if another process
 * holds it. */
int util_pidfile_lock(const char *state_dir, GError **error);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit. */
guint64 util_raise_nofile(void);

/* TRUE when addr ("127.0.0.1", "::1", "localhost") is a loopback address. */
gboolean util_addr_is_loopback(const char *host);
/* Split "HOST:PORT" or "[V6]:PORT". */
gboolean util_split_hostport(const char *s, char **host, guint16 *port, GError **error);
