/* A small JSON reader and writer for atrium-guest, which is static and has no GLib.
 * It reads one flat object per line: members whose values are strings, numbers, booleans or
 * null are kept; nested objects and arrays are checked and skipped (depth-limited). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define MJ_MAX_MEMBERS 16
#define MJ_MAX_DEPTH 8

typedef enum { MJ_STRING, MJ_NUMBER, MJ_BOOL, MJ_NULL, MJ_NESTED } MjType;

typedef struct {
        char *key;   /* points into the caller's buffer, unescaped in place */
        char *value; /* MJ_STRING: unescaped text; MJ_NUMBER: its text; else NULL */
        MjType type;
        bool boolean;
} MjMember;

typedef struct {
        MjMember members[MJ_MAX_MEMBERS];
        int n;
} MjObject;

/* Parse the NUL-terminated text (modified in place). Returns 0, or -1 with a message in err
 * (static text). */
int mj_parse(char *text, MjObject *out, const char **err);
const MjMember *mj_get(const MjObject *o, const char *key);
/* The string member key, or NULL when absent or not a string. */
const char *mj_get_string(const MjObject *o, const char *key);

/* True when the len bytes at s are valid UTF-8 with no NUL. */
bool mj_utf8_valid(const char *s, size_t len);

/* Append s as a JSON string literal to buf (size cap, length *len); false when it does not
 * fit. */
bool mj_put_string(char *buf, size_t cap, size_t *len, const char *s);
bool mj_put_raw(char *buf, size_t cap, size_t *len, const char *s);
