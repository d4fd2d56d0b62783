/* TOTP second factor (RFC 6238) for local and directory users:
 *   POST /me/totp              a new secret (pending) and its otpauth:// URI
 *   POST /me/totp/confirm      {code}: turned on; ten recovery codes, shown once
 *   POST /me/totp/disable      {code}: a current code or a recovery code turns it off
 *   POST /users/{id}/totp-reset (admin) turns it off for someone who lost the device
 * and at login (totp_login_check): the code, or a recovery code, in "otp". */
#define G_LOG_DOMAIN "api"

#include "manager/api.h"
#include "manager/rows.h"
#include "auth/totp.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

gboolean totp_required_for(Manager *mgr, Role role, gboolean user_required)
{
        g_auto(GStrv) roles = g_strsplit_set(
                config_get_string(mgr->config, "manager", "totp_required_roles"), " ,", -1);

        return user_required || g_strv_contains((const char *const *)roles, role_to_string(role));
}

TotpCheck totp_login_check(ApiRequest *req, gint64 user_id, Role role, const char *otp,
                           GError **error)
{
        TotpState t = {0};
        TotpCheck out = TOTP_PASS;
        gint64 step;

        if (!store_totp_get(req->store, user_id, &t, error))
                return TOTP_REFUSED;
        if (!t.enabled) {
                out = totp_required_for(req->mgr, role, t.required) ? TOTP_MUST_ENROL : TOTP_PASS;
                totp_state_clear(&t);
                return out;
        }
        step = t.last_step;
        if (!otp || !otp[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_OTP_REQUIRED,
                            "enter the one-time code from your authenticator app (or a "
                            "recovery code) as 'otp'");
                out = TOTP_REFUSED;
        } else if (totp_verify(t.secret, otp, row_now(), &step)) {
                store_totp_used(req->store, user_id, step, NULL);
        } else {
                g_autofree char *h = totp_recovery_hash(otp);
                if (strlen(otp) == 11 && store_recovery_use(req->store, user_id, h)) {
                        store_event_add(req->store, &req->actor, "recovery_code", "user", user_id,
                                        "", "a recovery code was used to log in", NULL);
                } else {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS,
                                    "wrong one-time code (check the device's clock) or "
                                    "recovery code");
                        out = TOTP_REFUSED;
                }
        }
        totp_state_clear(&t);
        return out;
}

static const char *body_code(ApiRequest *req, GError **error)
{
        JsonNode *n = json_object_get_member(req->body, "code");

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING ||
            !json_node_get_string(n)[0]) {
                atrium_set_field_error(error, ATRIUM_ERROR_MISSING_FIELD, "code",
                            "the field 'code' is required: the 6 digits the app shows");
                return NULL;
        }
        return json_node_get_string(n);
}

void api_totp_enrol(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *secret = NULL, *uri = NULL;
        TotpState t = {0};
        JsonObject *out;
        gboolean on;

        if (!store_totp_get(req->store, req->caller.user_id, &t, &error)) {
                api_reply_error(req, error);
                return;
        }
        on = t.enabled;
        totp_state_clear(&t);
        if (on) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "TOTP is already on for '%s': turn it off first (POST "
                            "/api/v1/me/totp/disable with a code)",
                            req->caller.user_name);
                api_reply_error(req, error);
                return;
        }
        secret = totp_secret_new();
        if (!store_totp_pending(req->store, &req->actor, req->caller.user_id, secret, &error)) {
                api_reply_error(req, error);
                return;
        }
        uri = totp_uri("Atrium", req->caller.user_name, secret);
        out = json_object_new();
        json_object_set_string_member(out, "secret", secret);
        json_object_set_string_member(out, "uri", uri);
        json_object_set_int_member(out, "digits", TOTP_DIGITS);
        json_object_set_int_member(out, "period", TOTP_STEP);
        api_reply_object(req, 201, out);
}

void api_totp_confirm(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) codes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) hashes = g_ptr_array_new_with_free_func(g_free);
        const char *code = body_code(req, &error);
        TotpState t = {0};
        JsonArray *list;
        JsonObject *out;
        gint64 step = 0;

        if (!code || !store_totp_get(req->store, req->caller.user_id, &t, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (t.enabled || !t.secret[0])
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            t.enabled ? "TOTP is already on"
                                      : "no TOTP secret to confirm: start "
                                        "with POST /api/v1/me/totp");
        else if (!totp_verify(t.secret, code, row_now(), &step))
                atrium_set_field_error(&error, ATRIUM_ERROR_INVALID, "code",
                            "field 'code': not the code the app shows now (check the device's "
                            "clock, and that it holds the secret just issued)");
        totp_state_clear(&t);
        if (error) {
                api_reply_error(req, error);
                return;
        }
        list = json_array_new();
        for (int i = 0; i < TOTP_RECOVERY_CODES; i++) {
                char *c = totp_recovery_new();
                json_array_add_string_element(list, c);
                g_ptr_array_add(hashes, totp_recovery_hash(c));
                g_ptr_array_add(codes, c);
        }
        g_ptr_array_add(hashes, NULL);
        if (!store_totp_enable(req->store, &req->actor, req->caller.user_id, step,
                               (const char *const *)hashes->pdata, req->token_hash, &error)) {
                json_array_unref(list);
                api_reply_error(req, error);
                return;
        }
        out = json_object_new();
        json_object_set_boolean_member(out, "totp_enabled", TRUE);
        json_object_set_array_member(out, "recovery_codes", list);
        api_reply_object(req, 200, out);
}

void api_totp_disable(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        const char *code = body_code(req, &error);
        TotpState t = {0};
        gint64 step;
        gboolean ok = FALSE, required;

        if (!code || !store_totp_get(req->store, req->caller.user_id, &t, &error)) {
                api_reply_error(req, error);
                return;
        }
        step = t.last_step;
        required = totp_required_for(req->mgr, req->caller.role, t.required);
        if (!t.enabled) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT, "TOTP is not on");
        } else if (required) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "your account must use TOTP: it cannot be turned off (an admin can "
                            "reset it for a new device)");
        } else {
                g_autofree char *h = totp_recovery_hash(code);
                ok = totp_verify(t.secret, code, row_now(), &step) ||
                     store_recovery_use(req->store, req->caller.user_id, h);
                if (!ok)
                        atrium_set_field_error(&error, ATRIUM_ERROR_INVALID, "code",
                                    "field 'code': wrong code");
        }
        totp_state_clear(&t);
        if (!ok || !store_totp_disable(req->store, &req->actor, req->caller.user_id,
                                       "turned off by the user", &error)) {
                api_reply_error(req, error);
                return;
        }
        api_reply_empty(req, 204);
}

void api_totp_reset(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) u =
                store_get(req->store, resource_by_kind("user"), req->params[0], 0, &error);

        if (!u || !store_totp_disable(req->store, &req->actor, row_int(u, "id"),
                                      "reset by an admin (enrol again)", &error)) {
                api_reply_error(req, error);
                return;
        }
        api_reply_empty(req, 204);
}
