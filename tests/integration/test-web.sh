#!/bin/bash
# Browser test of the web portal and admin dashboard: atriumd (manager + gateway) serving the
# built portal, an agent on libvirt's test driver (its desktops "run" in memory; a real QEMU
# desktop's console in the browser is test-agent.sh's part), and Debian's chromium driven by
# playwright-core (tests/browser/portal.mjs, which prints the checks). Screenshots of each page
# are saved in SHOTS. Output is TAP.
# Usage: test-web.sh ATRIUMD ATRIUM WEB_DIR [SHOTS]
set -u
ATRIUMD=$1 ATRIUM=$2 WEB=$3 SHOTS=${4:-$(dirname "$1")/../meson-logs/screenshots}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

[ -e "$WEB/index.html" ] || { echo "1..0 # SKIP the portal is not built (make web)"; exit 0; }
[ -x /usr/bin/chromium ] && [ -d "$SRC/tests/browser/node_modules/playwright-core" ] ||
        { echo "1..0 # SKIP no chromium or playwright-core (make npm)"; exit 0; }
command -v qemu-img >/dev/null || { echo "1..0 # SKIP no qemu-img"; exit 0; }

T=$(mktemp -d /tmp/atrium-web-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
MPID= APID=
cleanup() {
        [ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
        [ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SHOTS"

test_conf "$CONF"
sed -i "/^\[gateway\]/a web_root = $WEB" "$CONF"
cat >>"$CONF" <<CONF
heartbeat_interval = 1
startup_grace = 0
reconcile_interval = 1
connect_ready_timeout = 5
max_upload_bytes = 1048576
CONF
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/manager.out" 2>"$T/manager.err" &
MPID=$!
up() { [ -s "$STATE/gateway.url" ] && curl -sfk "$(cat "$STATE/gateway.url")/api/v1/version" >/dev/null; }
wait_for 10 up
GWURL=$(cat "$STATE/gateway.url") URL=$(cat "$STATE/manager.url")
API=$GWURL/api/v1 TOKEN=
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
is "CLI logs in" "$?" 0

# ---- the server side of the portal ----
CODE=$(curl -sk -o "$T/index" -w '%{http_code}' "$GWURL/")
is "the gateway serves the built portal" "$CODE $(grep -c 'js/app.js' "$T/index")" "200 1"
is "... its scripts" "$(curl -sk -o /dev/null -w '%{http_code}' "$GWURL/js/app.js")" 200
is "... and noVNC from the pinned package (no CDN)" "$(curl -sk -o /dev/null -w '%{http_code}' "$GWURL/novnc/core/rfb.js")" 200
ls "$WEB"/js/*.js | xargs grep -l 'https\?://[a-z]' >"$T/remote" 2>/dev/null
is "no script of the portal loads anything from another site" "$(grep -c . "$T/remote")" 0
http POST /users '{"name":"b b","password":"bob-pass-12"}'
is "a refusal names the field it is about (for forms)" "$CODE $(jget .error.field)" "400 name"
http GET "/events?order=desc&limit=2"
is "events newest first (order=desc)" "$(jget '[.items[].id] | join(" ")')" \
        "$(dbq "SELECT group_concat(id, ' ') FROM (SELECT id FROM events ORDER BY id DESC LIMIT 2) AS x")"
refuse "order must be asc or desc" GET "/events?order=sideways" "" 400 invalid_value
stream() { curl -skN --max-time "$1" -H "Authorization: Bearer $TOKEN" "$API/stream${2:-}"; }
stream 3 >"$T/sse" &
SP=$!
sleep 1
http POST /groups '{"name":"sse-group"}'
wait "$SP"
like "the live stream says hello" "$(cat "$T/sse")" "event: hello"
like "... names the tables written" "$(cat "$T/sse")" '"tables":["groups","events"]'
like "... and sends the new audit events to operators" "$(grep '^data: \[' "$T/sse")" '"object_name":"sse-group"'
CODE=$(curl -sk -o /dev/null -w '%{http_code}' "$API/stream")
is "the stream needs a login" "$CODE" 401
refuse "a bad 'after' is refused" GET "/stream?after=x" "" 400 invalid_value

# ---- a host, a template, users ----
testdriver_host
check "user bob" "$ATRIUM" user create --name bob --password bob-pass-12 --display_name "Bob Smith"

# ---- ISO upload (PUT /media/{id}/isos/{file}), the body streamed to disk ----
mkdir -p "$T/isos"
check "a media storage" "$ATRIUM" media create --name isos --path "$T/isos"
check "a media storage the manager cannot reach" "$ATRIUM" media create --name far --path /nonexistent-atrium-media
head -c 700000 /dev/urandom >"$T/a.iso"
head -c 1100000 /dev/urandom >"$T/big.iso"
up() { curl -sk -o "$T/body" -w '%{http_code}' -X PUT "$@"; }
AUTH="Authorization: Bearer $TOKEN"
CODE=$(up --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/a.iso")
is "an ISO uploads" "$CODE $(jq -r .size_bytes "$T/body")" "201 700000"
cmp -s "$T/a.iso" "$T/isos/a.iso"; is "... byte for byte, readable by QEMU" "$? $(stat -c %a "$T/isos/a.iso")" "0 644"
is "... recorded in the audit trail" "$(dbq "SELECT detail FROM events WHERE action = 'upload'")" "a.iso (700000 bytes)"
upload_refused() { # DESC EXPECTED-STATUS CODE CURL-ARGS...
        local d=$1 st=$2 c=$3 before
        shift 3
        before=$(ls -a "$T/isos" | tr '\n' ' ')
        CODE=$(up "$@")
        if [ "$CODE" = "$st" ] && [ "$(jq -r .error.code "$T/body")" = "$c" ] && [ "$(ls -a "$T/isos" | tr '\n' ' ')" = "$before" ]; then
                ok "$d"
        else
                not_ok "$d" "status $CODE (want $st), body $(cat "$T/body")" "files: $(ls -a "$T/isos" | tr '\n' ' ')"
        fi
}
upload_refused "an upload never replaces a file" 409 duplicate_name --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/a.iso"
upload_refused "a file name with a space" 400 invalid_value --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/a%20b.iso"
CODE=$(up --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/..%2Fx.iso")
is "a file name out of the directory: refused (the gateway refuses the encoded path)" "$CODE $(ls "$T" | grep -c '^x.iso$')" "400 0"
upload_refused "a file that is not .iso" 400 invalid_value --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/a.qcow2"
upload_refused "no login" 401 unauthorized --data-binary @"$T/a.iso" "$API/media/isos/isos/b.iso"
upload_refused "a plain user" 403 forbidden --data-binary @"$T/a.iso" -H "Authorization: Bearer $(curl -sk "$API/auth/login" -H 'Content-Type: application/json' -d '{"name":"bob","password":"bob-pass-12"}' | jq -r .token)" "$API/media/isos/isos/b.iso"
upload_refused "above manager.max_upload_bytes (refused before the body is read)" 413 body_too_large --data-binary @"$T/big.iso" -H "$AUTH" "$API/media/isos/isos/big.iso"
upload_refused "without a Content-Length (chunked)" 400 invalid_value -H 'Transfer-Encoding: chunked' --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/c.iso"
upload_refused "an empty file" 400 invalid_value --data-binary "" -H "$AUTH" "$API/media/isos/isos/e.iso"
upload_refused "a media storage that does not exist" 404 not_found --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/nosuch/isos/b.iso"
upload_refused "a media directory the manager cannot reach: says so" 503 unavailable --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/far/isos/b.iso"
like "... and what to do" "$(jq -r .error.message "$T/body")" "mounted where the manager runs"
timeout 1 curl -sk -X PUT --limit-rate 200K --data-binary @"$T/a.iso" -H "$AUTH" "$API/media/isos/isos/cut.iso" >/dev/null
no_partial() { [ "$(ls -a "$T/isos" | tr '\n' ' ')" = ". .. a.iso " ]; }
wait_for 10 no_partial; is "an interrupted upload leaves no file behind" "$?" 0
head -c 600000 /dev/urandom >"$T/ui-test.iso"

# Pools bob sees in two states: one in maintenance, one full (no desktop, cannot grow).
check "a pool in maintenance" "$ATRIUM" pool create --name closed --template tpl --maintenance true
check "a pool that is full" "$ATRIUM" pool create --name full --template tpl --size 0
"$ATRIUM" entitlement create --pool closed --user bob >/dev/null
"$ATRIUM" entitlement create --pool full --user bob >/dev/null

run() { browser_run "$GWURL" "$SHOTS" "$@"; }

run login-bad bob
is "the failed login was recorded" "$(dbq "SELECT count(*) FROM events WHERE action = 'login_failed' AND object_name = 'bob'")" 1
run admin admin-pass-1 "$T/ui-test.iso"
is "the ISO uploaded in the browser is in the media storage" "$(cmp -s "$T/ui-test.iso" "$T/isos/ui-test.iso" && echo same)" same
is "the pool made in the browser is in the database, with its policies" \
        "$(dbq "SELECT name, size, spares, user_actions, description FROM pools WHERE name = 'web'")" \
        "web|2|1|1|Made in the browser"
is "... made by admin (the audit trail)" \
        "$(dbq "SELECT actor FROM events WHERE action = 'create' AND object_kind = 'pool' AND object_name = 'web'")" admin
http POST /desktops/web-1/console '{"protocol":"vnc"}'
is "an operator's console answer carries a gateway ticket and URL" \
        "$CODE $(jget '.ticket | startswith("atk1.")') $(jget '.console_url | startswith("'"$GWURL"'/console?ticket=atk1.")')" "200 true true"
is "the user made in the browser" "$("$ATRIUM" --json user show carol | jq -r .display_name)" "Carol Jones"
run user bob bob-pass-12
is "bob's connects from the browser were recorded (the first and the reconnects)" \
        "$([ "$(dbq "SELECT count(*) FROM events WHERE action = 'connect' AND actor = 'bob'")" -ge 3 ] && echo yes)" yes
check "user erin" "$ATRIUM" user create --name erin --password erin-pass-12
run totp erin erin-pass-12
is "erin's TOTP is on (in the database)" "$(dbq "SELECT totp_enabled FROM users WHERE name = 'erin'")" 1
check "user gina, who runs pool web" "$ATRIUM" user create --name gina --password gina-pass-12
check "... a permission on web" "$ATRIUM" permission create --pool web --user gina --role operator
run pooladmin gina gina-pass-12 web
is "erin entitled to web by gina, recorded as gina's" \
        "$(dbq "SELECT actor FROM events WHERE action = 'create' AND object_kind = 'entitlement' ORDER BY id DESC LIMIT 1")" gina
check "user fred, who must use TOTP" "$ATRIUM" user create --name fred --password fred-pass-12 --totp_required true
run totp-required fred fred-pass-12
for p in login login-error portal portal-states console-reconnecting admin-overview admin-pool-wizard admin-pool \
        admin-hosts admin-templates admin-users admin-events admin-overview-phone account-totp account-recovery account-required; do
        [ -s "$SHOTS/$p.png" ] || not_ok "screenshot $p.png saved" "missing in $SHOTS"
done
ok "screenshots saved in $SHOTS"
echo "1..$n"
[ "$failed" -eq 0 ]
