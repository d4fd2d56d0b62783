/* Atrium error domain: one code per kind of failure, each with a stable string (used in the
 * JSON error body and by the CLI) and the HTTP status the API answers with. */
#pragma once
#include <glib.h>

#define ATRIUM_ERROR (atrium_error_quark())
GQuark atrium_error_quark(void);

typedef enum {
        ATRIUM_ERROR_INTERNAL,           /* 500 a bug or an I/O failure on our side */
        ATRIUM_ERROR_INVALID,            /* 400 malformed request or value */
        ATRIUM_ERROR_INVALID_JSON,       /* 400 body is not JSON */
        ATRIUM_ERROR_INVALID_UTF8,       /* 400 body or value is not UTF-8 */
        ATRIUM_ERROR_UNKNOWN_FIELD,      /* 400 field the object does not have */
        ATRIUM_ERROR_WRONG_TYPE,         /* 400 field of the wrong JSON type */
        ATRIUM_ERROR_MISSING_FIELD,      /* 400 required field absent */
        ATRIUM_ERROR_READ_ONLY_FIELD,    /* 400 field set by the server only */
        ATRIUM_ERROR_TOO_DEEP,           /* 400 JSON nested past the limit */
        ATRIUM_ERROR_TOO_LARGE,          /* 413 body past the route's limit */
        ATRIUM_ERROR_UNAUTHORIZED,       /* 401 no, bad, expired or revoked token */
        ATRIUM_ERROR_BAD_CREDENTIALS,    /* 401 wrong user name or password */
        ATRIUM_ERROR_FORBIDDEN,          /* 403 role too low */
        ATRIUM_ERROR_NOT_FOUND,          /* 404 object or route not there */
        ATRIUM_ERROR_METHOD_NOT_ALLOWED, /* 405 */
        ATRIUM_ERROR_DUPLICATE,          /* 409 name already taken */
        ATRIUM_ERROR_IN_USE,             /* 409 object still referenced */
        ATRIUM_ERROR_CONFLICT,           /* 409 state does not allow it */
        ATRIUM_ERROR_UNSUPPORTED_MEDIA,  /* 415 body not application/json */
        ATRIUM_ERROR_BAD_REFERENCE,      /* 422 a field names an object that does not exist */
        ATRIUM_ERROR_RATE_LIMITED,       /* 429 too many attempts */
        ATRIUM_ERROR_UNAVAILABLE,        /* 503 overloaded or shutting down */
        ATRIUM_ERROR_OTP_REQUIRED,       /* 401 password right, one-time code needed */
        ATRIUM_ERROR_LAST
} AtriumErrorCode;

/* An error about one field of a request body: the API's error body names it ("field"), for
 * forms to show the message beside it. Carried as the domain's extended data (GLib
 * G_DEFINE_EXTENDED_ERROR), so it survives g_prefix_error and g_error_copy. */
void atrium_set_field_error(GError **error, int code, const char *field, const char *fmt, ...)
        G_GNUC_PRINTF(4, 5);
/* Sets the field of an error of ATRIUM_ERROR (nothing for another domain). */
void atrium_error_set_field(GError *error, const char *field);
/* The field an error is about, or NULL. */
const char *atrium_error_field(const GError *error);

const char *atrium_error_code_to_string(int code);
int atrium_error_code_from_string(const char *s); /* -1 when unknown */
guint atrium_error_http_status(int code);
