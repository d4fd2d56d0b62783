#include "common/error.h"

#include <string.h>

typedef struct {
        char *field;
} AtriumErrorPrivate;

static void atrium_error_private_init(AtriumErrorPrivate *p)
{
        p->field = NULL;
}

static void atrium_error_private_copy(const AtriumErrorPrivate *src, AtriumErrorPrivate *dst)
{
        dst->field = g_strdup(src->field);
}

static void atrium_error_private_clear(AtriumErrorPrivate *p)
{
        g_clear_pointer(&p->field, g_free);
}

/* Defines atrium_error_quark() and atrium_error_get_private(). */
G_DEFINE_EXTENDED_ERROR(AtriumError, atrium_error)

void atrium_error_set_field(GError *error, const char *field)
{
        AtriumErrorPrivate *p =
                error && error->domain == ATRIUM_ERROR ? atrium_error_get_private(error) : NULL;

        if (!p)
                return;
        g_free(p->field);
        p->field = g_strdup(field);
}

const char *atrium_error_field(const GError *error)
{
        AtriumErrorPrivate *p =
                error && error->domain == ATRIUM_ERROR ? atrium_error_get_private(error) : NULL;

        /* a client's own field name past 63 bytes is not echoed as one */
        return p && p->field && p->field[0] && strlen(p->field) < 64 ? p->field : NULL;
}

void atrium_set_field_error(GError **error, int code, const char *field, const char *fmt, ...)
{
        va_list ap;
        char *message;

        if (!error || *error)
                return;
        va_start(ap, fmt);
        message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        *error = g_error_new_literal(ATRIUM_ERROR, code, message);
        g_free(message);
        atrium_error_set_field(*error, field);
}

static const struct {
        const char *name;
        guint status;
} error_table[ATRIUM_ERROR_LAST] = {
        [ATRIUM_ERROR_INTERNAL] = {"internal", 500},
        [ATRIUM_ERROR_INVALID] = {"invalid_value", 400},
        [ATRIUM_ERROR_INVALID_JSON] = {"invalid_json", 400},
        [ATRIUM_ERROR_INVALID_UTF8] = {"invalid_utf8", 400},
        [ATRIUM_ERROR_UNKNOWN_FIELD] = {"unknown_field", 400},
        [ATRIUM_ERROR_WRONG_TYPE] = {"wrong_type", 400},
        [ATRIUM_ERROR_MISSING_FIELD] = {"missing_field", 400},
        [ATRIUM_ERROR_READ_ONLY_FIELD] = {"read_only_field", 400},
        [ATRIUM_ERROR_TOO_DEEP] = {"too_deep", 400},
        [ATRIUM_ERROR_TOO_LARGE] = {"body_too_large", 413},
        [ATRIUM_ERROR_UNAUTHORIZED] = {"unauthorized", 401},
        [ATRIUM_ERROR_BAD_CREDENTIALS] = {"bad_credentials", 401},
        [ATRIUM_ERROR_FORBIDDEN] = {"forbidden", 403},
        [ATRIUM_ERROR_NOT_FOUND] = {"not_found", 404},
        [ATRIUM_ERROR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
        [ATRIUM_ERROR_DUPLICATE] = {"duplicate_name", 409},
        [ATRIUM_ERROR_IN_USE] = {"in_use", 409},
        [ATRIUM_ERROR_CONFLICT] = {"conflict", 409},
        [ATRIUM_ERROR_UNSUPPORTED_MEDIA] = {"unsupported_media_type", 415},
        [ATRIUM_ERROR_BAD_REFERENCE] = {"bad_reference", 422},
        [ATRIUM_ERROR_RATE_LIMITED] = {"rate_limited", 429},
        [ATRIUM_ERROR_OTP_REQUIRED] = {"otp_required", 401},
        [ATRIUM_ERROR_UNAVAILABLE] = {"unavailable", 503},
};

const char *atrium_error_code_to_string(int code)
{
        if (code < 0 || code >= ATRIUM_ERROR_LAST)
                return "internal";
        return error_table[code].name;
}

int atrium_error_code_from_string(const char *s)
{
        for (int i = 0; s && i < ATRIUM_ERROR_LAST; i++)
                if (g_str_equal(error_table[i].name, s))
                        return i;
        return -1;
}

guint atrium_error_http_status(int code)
{
        if (code < 0 || code >= ATRIUM_ERROR_LAST)
                return 500;
        return error_table[code].status;
}
