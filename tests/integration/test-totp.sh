#!/bin/bash
# TOTP second factor through the API: enrolment and confirmation, login with the code, a code
# used twice, recovery codes (once each), turning it off, required per user (a login that may
# only enrol) and per role, and an admin's reset. Codes are computed here with Python's hmac
# (RFC 6238); the algorithm itself is tested with a fixed clock in test-auth. Output is TAP.
# Usage: test-totp.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2
. "$(dirname "$0")/lib.sh"

T=$(mktemp -d /tmp/atrium-totp-XXXXXX)
export XDG_CONFIG_HOME=$T/cli HOME=$T
STATE=$T/state CONF=$T/atrium.conf
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
test_conf "$CONF"
echo "totp_required_roles =" >>"$CONF"
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/out" 2>"$T/err" &
PID=$!
wait_for 10 test -s "$STATE/manager.url"
API=$(cat "$STATE/manager.url")/api/v1 TOKEN=
q() { dbq "$1"; }
code() { totp_code "$@"; }
login() { http POST /auth/login "$1" ""; }
login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token) ADMIN=$(jget .token)
http POST /users '{"name":"carol","password":"carol-pass-1"}'

# ---- enrolment ----
login '{"name":"carol","password":"carol-pass-1"}'; CT=$(jget .token)
http POST /me/totp "" "$CT"
SECRET=$(jget .secret)
is "enrolment gives a secret" "$CODE $(grep -cE '^[A-Z2-7]{32}$' <<<"$SECRET")" "201 1"
is "... and the URI an authenticator app scans" "$(jget .uri)" \
        "otpauth://totp/Atrium:carol?secret=$SECRET&issuer=Atrium&algorithm=SHA1&digits=6&period=30"
is "the secret is never listed with the user" "$(curl -sk -H "Authorization: Bearer $ADMIN" "$API/users/carol" | grep -c "$SECRET")" 0
login '{"name":"carol","password":"carol-pass-1"}'
is "not on until confirmed: the login needs no code" "$CODE" 200
http POST /me/totp/confirm '{"code":"000000"}' "$CT"
is "a wrong confirmation code: refused beside the field" "$CODE $(jget .error.field)" "400 code"
http POST /me/totp/confirm '{}' "$CT"
is "... no code: refused" "$CODE" 400
http POST /me/totp/confirm "{\"code\":\"$(code "$SECRET")\"}" "$CT"
is "the right code turns it on" "$CODE $(jget .totp_enabled)" "200 true"
RC1=$(jget '.recovery_codes[0]') RC2=$(jget '.recovery_codes[1]')
is "... with ten recovery codes" "$(jget '.recovery_codes | length')" 10
is "... stored hashed only" "$(q "SELECT count(*) FROM recovery_codes WHERE hash = '$RC1'")" 0
is "... recorded" "$(q "SELECT count(*) FROM events WHERE action = 'totp_on' AND actor = 'carol'")" 1
http POST /me/totp "" "$CT"
is "enrolling again while on: 409" "$CODE" 409

# ---- login with a code ----
login '{"name":"carol","password":"carol-pass-1"}'
is "the password alone no longer logs in: otp_required" "$CODE $(jget .error.code)" "401 otp_required"
login '{"name":"carol","password":"carol-pass-1","otp":"123456"}'
is "a wrong code: 401" "$CODE $(jget .error.code)" "401 bad_credentials"
login '{"name":"carol","password":"wrong-pass-1","otp":"'"$(code "$SECRET" 1)"'"}'
is "a right code with a wrong password: 401" "$CODE" 401
C=$(code "$SECRET" 1)
login '{"name":"carol","password":"carol-pass-1","otp":"'"$C"'"}'
is "the code of the next step (clock skew) logs in" "$CODE" 200
login '{"name":"carol","password":"carol-pass-1","otp":"'"$C"'"}'
is "... once only (replayed: 401)" "$CODE" 401
login '{"name":"carol","password":"carol-pass-1","otp":"'"$(code "$SECRET" -1)"'"}'
is "an older code after a newer one was used: 401" "$CODE" 401
login '{"name":"carol","password":"carol-pass-1","otp":"'"$RC1"'"}'
is "a recovery code logs in" "$CODE" 200
login '{"name":"carol","password":"carol-pass-1","otp":"'"$RC1"'"}'
is "... once only" "$CODE" 401
login '{"name":"carol","password":"carol-pass-1","otp":{"x":1}}'
is "an otp that is not a string: 400" "$CODE" 400

# ---- off ----
http POST /me/totp/disable '{"code":"000000"}' "$CT"
is "turning it off needs a right code" "$CODE" 400
http POST /me/totp/disable "{\"code\":\"$RC2\"}" "$CT"
is "a recovery code turns it off" "$CODE" 204
login '{"name":"carol","password":"carol-pass-1"}'
is "then the password alone logs in again" "$CODE" 200
is "... and no recovery code is left" "$(q "SELECT count(*) FROM recovery_codes")" 0

# ---- required for a user: a login that may only enrol ----
http PATCH /users/carol '{"totp_required":true}' "$ADMIN"
is "an admin requires TOTP for carol" "$CODE $(jget .totp_required)" "200 true"
login '{"name":"carol","password":"carol-pass-1"}'; CT=$(jget .token)
is "her login says she must enrol" "$CODE $(jget .totp_enrolment_required)" "200 true"
http GET /me/desktops "" "$CT"
is "... that token may do nothing else" "$CODE" 403
like "... and says what to do" "$(jget .error.message)" "enrol first"
http GET /me "" "$CT"
is "... but may read /me" "$CODE" 200
http POST /me/totp "" "$CT"; SECRET=$(jget .secret)
http POST /me/totp/confirm "{\"code\":\"$(code "$SECRET")\"}" "$CT"
is "she enrols with it" "$CODE" 200
http GET /me/desktops "" "$CT"
is "... and the same token now works" "$CODE" 200
http POST /me/totp/disable "{\"code\":\"$(code "$SECRET" 1)\"}" "$CT"
is "required: she cannot turn it off" "$CODE" 409
http POST /users/carol/totp-reset "" "$CT"
is "she cannot reset it either (admins only)" "$CODE" 403
http POST /users/carol/totp-reset "" "$ADMIN"
is "an admin resets it (lost device)" "$CODE" 204
login '{"name":"carol","password":"carol-pass-1"}'
is "... and her next login must enrol again" "$(jget .totp_enrolment_required)" true

# ---- the CLI ----
http POST /users '{"name":"dave","password":"dave-pass-12"}' "$ADMIN"
URL=$(cat "$STATE/manager.url")
echo dave-pass-12 | "$ATRIUM" login "$URL" --user dave --password-stdin --insecure >/dev/null
OUT=$("$ATRIUM" totp enrol)
SECRET=$(sed -n 's/^secret: //p' <<<"$OUT")
like "atrium totp enrol prints the secret and the URI" "$OUT" "uri:    otpauth://totp/Atrium:dave?secret=$SECRET"
OUT=$("$ATRIUM" totp confirm "$(code "$SECRET")")
like "atrium totp confirm prints the recovery codes" "$OUT" "TOTP is on. Recovery codes"
OUT=$(echo dave-pass-12 | "$ATRIUM" login "$URL" --user dave --password-stdin --insecure 2>&1)
like "atrium login without --otp: the server's message" "$OUT" "one-time code"
OUT=$(echo dave-pass-12 | "$ATRIUM" login "$URL" --user dave --password-stdin --insecure --otp "$(code "$SECRET" 1)" 2>&1)
like "atrium login --otp CODE" "$OUT" "Logged in"
OUT=$("$ATRIUM" totp confirm 12 2>&1)
like "atrium totp confirm while on: refused" "$OUT" "already on"

# ---- required for a role ----
sed -i 's/^totp_required_roles =.*/totp_required_roles = admin operator/' "$CONF"
kill -HUP "$PID"; sleep 0.5
login '{"name":"admin","password":"admin-pass-1"}'
is "totp_required_roles = admin: the admin's next login may only enrol" "$CODE $(jget .totp_enrolment_required)" "200 true"
http GET /users "" "$(jget .token)"
is "... and cannot manage users until enrolled" "$CODE" 403
echo "1..$n"
[ "$failed" -eq 0 ]
