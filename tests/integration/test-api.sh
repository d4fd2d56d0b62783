#!/bin/bash
# Integration test: the real atriumd on a loopback port with a temporary state directory,
# driven through raw HTTP (curl) and the atrium CLI. Output is TAP.
# Usage: test-api.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2
T=$(mktemp -d /tmp/atrium-it-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
n=0 failed=0 PID=

cleanup() {
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"

start_daemon() {
        "$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/stdout" 2>"$T/stderr" &
        PID=$!
        for _ in $(seq 1 100); do
                [ -s "$STATE/manager.url" ] && curl -sk "$(cat "$STATE/manager.url")/api/v1/version" >/dev/null 2>&1 && break
                kill -0 "$PID" 2>/dev/null || break
                sleep 0.1
        done
        URL=$(cat "$STATE/manager.url" 2>/dev/null)
        API=$URL/api/v1
}
stop_daemon() {
        kill -TERM "$PID" 2>/dev/null
        wait "$PID"
        STOP_RC=$?
        PID=
}

cat >"$CONF" <<CONF
[daemon]
log_level = info
[gateway]
listen = 127.0.0.1:0
$(store_conf)
[manager]
listen = 127.0.0.1:0
password_cost = min
login_attempts_per_user = 3
login_attempts_per_address = 50
login_window = 60
max_connections = 32
CONF

echo "# starting $ATRIUMD"
start_daemon
like "daemon prints the first admin's credentials once" "$(cat "$T/stdout")" "user 'admin', password '"
PW=$(cat "$STATE/initial-admin-password")
is "initial admin password file is private" "$(stat -c %a "$STATE/initial-admin-password")" 600
TOKEN=
check "API answers over HTTPS" curl -sfk "$API/version"
like "stderr logs one line per event" "$(cat "$T/stderr")" "info manager: REST API listening on https://127.0.0.1:"
on_pg && like "the state is on the test's PostgreSQL server" "$(cat "$T/stderr")" "state in postgresql://127.0.0.1:$ATRIUM_TEST_PG_PORT/atrium (postgresql)"
case "$(cat "$T/stderr")" in *"$PW"*) not_ok "password never logged";; *) ok "password never logged";; esac
is "private key generated 0600" "$(stat -c %a "$STATE/tls/key.pem")" 600
is "plain HTTP on the TLS port gets nothing" "$(curl -s -o /dev/null -w '%{http_code}' "http://${URL#https://}/api/v1/version")" 000

# ---- login, tokens, rate limiting ----
http POST /auth/login '{"name":"admin","password":"wrong-password"}' ""
is "wrong password: 401" "$CODE" 401
is "wrong password: bad_credentials" "$(jget .error.code)" bad_credentials
http POST /auth/login '{"name":"nobody","password":"x"}' ""
is "unknown user: same answer" "$(jget .error.message)" "wrong user name or password"
http POST /auth/login "{\"name\":\"admin\",\"password\":\"$PW\"}" ""
is "login works" "$CODE" 200
TOKEN=$(jget .token)
like "login returns a role" "$(jget .user.role)" admin
is "token stored only as a hash" "$(dbq "SELECT count(*) FROM api_tokens WHERE hash = '$TOKEN'")" 0
http GET /pools "" ""
is "no token: 401" "$CODE" 401
http GET /pools "" "not-a-token"
is "bad token: 401" "$CODE" 401
is "bad token: error body" "$(jget .error.code)" unauthorized

# ---- CLI: login, TLS trust ----
OUT=$(echo "$PW" | "$ATRIUM" login "$URL" --password-stdin 2>&1); RC=$?
is "CLI refuses an untrusted certificate (exit 1)" "$RC" 1
like "CLI says how to trust it" "$OUT" "--ca FILE"
OUT=$(echo "$PW" | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin 2>&1); RC=$?
is "CLI login with the generated CA" "$RC" 0
is "CLI token file is 0600" "$(stat -c %a "$XDG_CONFIG_HOME/atrium/client.conf")" 600
like "CLI whoami" "$("$ATRIUM" whoami)" admin
"$ATRIUM" nosuchcommand >/dev/null 2>&1; is "CLI unknown command exits 2" "$?" 2
"$ATRIUM" pool create --bogus 1 >/dev/null 2>&1; is "CLI unknown field exits 2" "$?" 2
like "CLI --help on a family lists fields" "$("$ATRIUM" pool --help)" "--spares"
like "CLI --help on a verb" "$("$ATRIUM" user create --help)" "--password-stdin"
like "CLI completion script" "$("$ATRIUM" completion bash)" "complete -F _atrium atrium"

# ---- objects through the CLI ----
cli() { "$ATRIUM" "$@" 2>&1; }
# join_host NAME: a host record made the way an agent makes it (join token, then register)
join_host() {
        http POST /join-tokens '{}'
        local jt; jt=$(jget .token)
        http POST /agent/register "{\"join_token\":\"$jt\",\"name\":\"$1\",\"address\":\"10.0.0.1\",\"cpus\":8,\"ram_mb\":16384}" ""
        [ "$CODE" = 201 ]
}
check "create storage" "$ATRIUM" storage create --name local --description "Local disks"
check "create volume" "$ATRIUM" volume create --name vol1 --storage local --path /srv/atrium/vol1
check "create media storage" "$ATRIUM" media create --name isos --path /srv/atrium/iso
check "join host" join_host host1
check "create guest" "$ATRIUM" guest create --name golden --cpus 2 --ram-mb 2048 --host host1 --volume vol1
check "create template" "$ATRIUM" template create --name deb12 --volume vol1 --guest golden
check "create pool" "$ATRIUM" pool create --name office --template deb12 --size 3 --spares 1 --max_size 5
check "create group" "$ATRIUM" group create --name staff
check "create user alice" sh -c "echo alice-pass-1 | '$ATRIUM' user create --name alice --display_name 'Alice A' --password-stdin"
check "create operator olga" "$ATRIUM" user create --name olga --role operator --password olga-pass-1
check "add alice to staff" "$ATRIUM" group add-member staff alice
like "group members" "$(cli group members staff)" alice
check "entitle staff to office" "$ATRIUM" entitlement create --pool office --group staff
for i in 1 2 3; do "$ATRIUM" desktop create --name office-$i --pool office >/dev/null; done
check "assign a desktop to alice" "$ATRIUM" desktop update office-1 --user alice --state running
check "a session for alice" "$ATRIUM" session create --user alice --desktop office-1
like "pool list table" "$(cli pool list)" "office  deb12     stateless  3     1"
is "pool show --json" "$("$ATRIUM" --json pool show office | jq -r .template)" deb12
is "filter desktops by state" "$("$ATRIUM" --json desktop list --state running | jq '.items | length')" 1
is "filter desktops by name" "$("$ATRIUM" --json desktop list --name office-2 | jq -r '.items[0].name')" office-2
is "paging: first page" "$("$ATRIUM" --json desktop list --limit 2 | jq '.items | length')" 2
CUR=$("$ATRIUM" --json desktop list --limit 2 | jq -r .next_cursor)
is "paging: next page" "$("$ATRIUM" --json desktop list --limit 2 --cursor "$CUR" | jq -r '.items[0].name')" office-3
is "paging: --all follows cursors" "$("$ATRIUM" --json desktop list --limit 1 --all | jq '.items | length')" 3
check "update pool" "$ATRIUM" pool update office --size 4 --maintenance true
is "update stuck" "$("$ATRIUM" --json pool show office | jq -r '.size, .maintenance' | tr '\n' ' ')" "4 true "
OUT=$(cli template delete deb12); RC=$?
is "delete template in use: exit 1" "$RC" 1
is "delete template in use: server message as is" "$OUT" "atrium: template 'deb12' is still used by 1 pool (field 'template'); remove or change it first"
OUT=$(cli group delete staff)
like "delete group in an entitlement refused" "$OUT" "still used by 1 entitlement"
join_host tmp1 && "$ATRIUM" host delete tmp1 >/dev/null; is "join and remove a spare host" "$?" 0
OUT=$(cli host show tmp1); like "deleted object is gone" "$OUT" "there is no host 'tmp1'"
like "role list" "$(cli role list)" operator

# ---- every change shows in the event list ----
EV=$("$ATRIUM" --json event list --all)
for what in "create storage local" "create volume vol1" "create pool office" "update pool office" \
            "add_member group staff" "create entitlement" "delete host tmp1" "create user alice"; do
        set -- $what
        is "event: $what" "$(jq -r --arg a "$1" --arg k "$2" --arg o "${3-}" \
                '[.items[] | select(.action == $a and .object_kind == $k and ($o == "" or .object_name == $o))] | length > 0' <<<"$EV")" true
done
is "events name the actor" "$(jq -r '[.items[] | select(.action=="create" and .object_kind=="pool")][0].actor' <<<"$EV")" admin
is "events name the address" "$(jq -r '[.items[] | select(.action=="create" and .object_kind=="pool")][0].address' <<<"$EV")" 127.0.0.1
is "events never carry a password" "$(grep -c 'alice-pass-1\|olga-pass-1' <<<"$EV")" 0
is "event filter" "$("$ATRIUM" --json event list --action delete | jq -r '.items[0].object_name')" tmp1

# ---- concurrent writers on several HTTP worker threads ----
sleep 1.2 # let the CLI runs above be reaped: this daemon allows 32 connections
par() { # par N NAME-PREFIX: N parallel creates, prints the status codes sorted
        for i in $(seq 1 "$1"); do
                curl -sk -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
                        -H 'Content-Type: application/json' -d "{\"name\":\"$2$([ "$3" = same ] || echo "$i")\"}" "$API/groups" &
        done
        wait
}
is "20 parallel creates: all succeed" "$(par 20 par- distinct | sort | uniq -c | awk '{print $2 "x" $1}')" "201x20"
is "10 parallel creates of one name: one wins, the rest get 409" "$(par 10 same- same | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" "201x1 409x9 "
is "and each success has its event" "$(dbq "SELECT count(*) FROM events WHERE action = 'create' AND object_kind = 'group' AND (object_name LIKE 'par-%' OR object_name LIKE 'same-%')")" 21
for i in $(seq 1 20); do "$ATRIUM" group delete "par-$i" >/dev/null; done; "$ATRIUM" group delete same- >/dev/null

# ---- bad input: clear 4xx and the database as it was ----
refuse "malformed JSON" POST /pools '{"name":' 400 invalid_json
refuse "not an object" POST /pools '[1,2]' 400 invalid_json
refuse "two JSON objects" POST /groups '{"name":"g7"}{"name":"g8"}' 400 invalid_json
refuse "broken \\u escape" POST /groups '{"name":"g7","description":"\ud800"}' 400 invalid_json
refuse "unknown field" POST /pools '{"name":"p2","template":"deb12","colour":"red"}' 400 unknown_field
refuse "wrong type" POST /pools '{"name":"p2","template":"deb12","size":"3"}' 400 wrong_type
refuse "missing required field" POST /pools '{"name":"p2"}' 400 missing_field
refuse "a name pattern that makes one name for all" POST /pools '{"name":"p2","template":"deb12","name_pattern":"same"}' 400 invalid_value
refuse "a name pattern with two placeholders" POST /pools '{"name":"p2","template":"deb12","name_pattern":"d{n}-{n}"}' 400 invalid_value
refuse "a name pattern making bad names" POST /pools '{"name":"p2","template":"deb12","name_pattern":"1-{n}"}' 400 invalid_value
refuse "read-only field" POST /guests '{"name":"g2","state":"running"}' 400 read_only_field
refuse "value out of range" POST /pools '{"name":"p2","template":"deb12","size":-1}' 400 invalid_value
refuse "bad choice" POST /pools '{"name":"p2","template":"deb12","mode":"sometimes"}' 400 invalid_value
refuse "cross-field rule" PATCH /pools/office '{"spares":9}' 400 invalid_value
refuse "name with control characters" POST /groups '{"name":"bad\u0001name"}' 400 invalid_value
refuse "description with control characters" POST /groups '{"name":"g3","description":"a\u001bb"}' 400 invalid_value
refuse "name not starting with a letter" POST /groups '{"name":"9lives"}' 400 invalid_value
refuse "duplicate name" POST /pools '{"name":"office","template":"deb12"}' 409 duplicate_name
refuse "duplicate name, other case" POST /groups '{"name":"STAFF"}' 409 duplicate_name
refuse "duplicate path" POST /volumes '{"name":"vol2","storage":"local","path":"/srv/atrium/vol1"}' 409 duplicate_name
refuse "relative path" POST /volumes '{"name":"vol2","storage":"local","path":"srv"}' 400 invalid_value
refuse "reference to a missing object" POST /pools '{"name":"p2","template":"nosuch"}' 422 bad_reference
refuse "reference by a missing id" POST /pools '{"name":"p2","template":999}' 422 bad_reference
refuse "delete template with pools" DELETE /templates/deb12 "" 409 in_use
refuse "delete group in an entitlement" DELETE /groups/staff "" 409 in_use
refuse "delete user with a desktop" DELETE /users/alice "" 409 in_use
refuse "delete the last admin" DELETE /users/admin "" 409 conflict
refuse "demote the last admin" PATCH /users/admin '{"role":"user"}' 409 conflict
refuse "delete a missing object" DELETE /pools/nosuch "" 404 not_found
refuse "empty update" PATCH /pools/office '{}' 400 invalid_value
refuse "immutable field" PATCH /pools/office '{"mode":"persistent"}' 400 read_only_field
refuse "unknown route" GET /nothing "" 404 not_found
refuse "wrong method" PUT /pools "" 405 method_not_allowed
refuse "bad list limit" GET "/pools?limit=0" "" 400 invalid_value
refuse "bad cursor" GET "/pools?cursor=abc" "" 400 invalid_value
refuse "unknown filter" GET "/pools?colour=red" "" 400 invalid_value
refuse "short password" POST /users '{"name":"bob","password":"short"}' 400 invalid_value
printf '{"name":"bad\xff\xfe"}' >"$T/badutf8"
refuse "invalid UTF-8" POST /groups "$(cat "$T/badutf8")" 400 invalid_utf8
DEEP=$(python3 -c 'print("{\"name\":\"g4\",\"description\":" + "["*40 + "]"*40 + "}")')
refuse "deeply nested JSON" POST /groups "$DEEP" 400 too_deep
BIG=$(python3 -c 'print("{\"name\":\"g5\",\"description\":\"" + "a"*70000 + "\"}")')
refuse "oversized body for the route" POST /groups "$BIG" 413 body_too_large
before=$(dbdump)
head -c 2000000 /dev/zero | tr '\0' a >"$T/huge"
CODE=$(curl -sk -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @"$T/huge" "$API/groups")
is "body over max_body_bytes refused before reading: 413" "$CODE" 413
is "and the database unchanged" "$(dbdump)" "$before"
CODE=$(curl -sk -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain' --data '{"name":"g6"}' "$API/groups")
is "wrong content type: 415" "$CODE" 415

# ---- roles: a plain user and an operator ----
login_as() { curl -sk -H 'Content-Type: application/json' -d "{\"name\":\"$1\",\"password\":\"$2\"}" "$API/auth/login" | jq -r .token; }
ALICE=$(login_as alice alice-pass-1)
OLGA=$(login_as olga olga-pass-1)
http GET /users "" "$ALICE"; is "user cannot list users: 403" "$CODE" 403
like "403 says which role is needed" "$(jget .error.message)" "needs the admin role"
http GET /pools "" "$ALICE"; is "user cannot list pools" "$CODE" 403
http GET /desktops "" "$ALICE"; is "user sees only own desktops" "$(jget '[.items[].name] | join(",")')" office-1
http GET /desktops/office-2 "" "$ALICE"; is "user cannot see another's desktop" "$CODE" 404
http GET /sessions "" "$ALICE"; is "user sees own sessions" "$(jget '.items | length')" 1
http POST /desktops '{"name":"x1","pool":"office"}' "$ALICE"; is "user cannot create desktops" "$CODE" 403
http GET /me "" "$ALICE"; is "user reads own account" "$(jget .name)" alice
http POST /pools '{"name":"olgas","template":"deb12"}' "$OLGA"; is "operator manages pools" "$CODE" 201
http GET /users "" "$OLGA"; is "operator cannot manage users" "$CODE" 403
http GET /desktops "" "$OLGA"; is "operator sees all desktops" "$(jget '.items | length')" 3
http POST /groups/staff/members/olga "" "$OLGA"; is "operator cannot change groups" "$CODE" 405
http PUT /groups/staff/members/olga "" "$OLGA"; is "operator cannot change membership" "$CODE" 403

# ---- logout, password change, disabled user, stale tokens ----
http POST /auth/logout "" "$OLGA"; is "logout" "$CODE" 204
http GET /me "" "$OLGA"; is "revoked token refused" "$CODE" 401
http PUT /me/password '{"current_password":"nope","new_password":"alice-pass-2"}' "$ALICE"
is "password change needs the current password" "$CODE" 401
http PUT /me/password '{"current_password":"alice-pass-1","new_password":"alice-pass-2"}' "$ALICE"
is "password change" "$CODE" 204
http GET /me "" "$ALICE"; is "password change revokes tokens" "$CODE" 401
ALICE=$(login_as alice alice-pass-2)
is "new password works" "$([ -n "$ALICE" ] && [ "$ALICE" != null ] && echo yes)" yes
dbq "UPDATE api_tokens SET expires_at = 1 WHERE user_id = (SELECT id FROM users WHERE name = 'alice')"
http GET /me "" "$ALICE"; is "expired (stale) token refused" "$CODE" 401
like "expired token: says to log in again" "$(jget .error.message)" "log in again"
ALICE=$(login_as alice alice-pass-2)
check "disable alice" "$ATRIUM" user update alice --enabled false
http GET /me "" "$ALICE"; is "disabled user's token refused" "$CODE" 401
http POST /auth/login '{"name":"alice","password":"alice-pass-2"}' ""
like "disabled user cannot log in" "$(jget .error.message)" "disabled"
for i in 1 2 3; do http POST /auth/login '{"name":"olga","password":"bad"}' ""; done
http POST /auth/login '{"name":"olga","password":"olga-pass-1"}' ""
is "too many attempts: 429" "$CODE" 429
like "too many attempts: retry in N s" "$(jget .error.message)" "retry in"
is "rate limit is logged as an event" "$(dbq "SELECT CASE WHEN count(*) > 0 THEN 1 ELSE 0 END FROM events WHERE action = 'login_failed' AND object_name = 'olga'")" 1
OUT=$(cli logout); like "CLI logout" "$OUT" "Logged out"
OUT=$(cli pool list); RC=$?
is "CLI after logout: exit 1" "$RC" 1

# ---- the daemon itself ----
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/second" 2>&1; RC=$?
is "a second daemon on the same state dir refuses (exit 1)" "$RC" 1
like "and says why" "$(cat "$T/second")" "already in use by another atriumd (pid $PID)"
sed -i 's/log_level = info/log_level = debug/' "$CONF"
kill -HUP "$PID"; sleep 0.5
like "SIGHUP reloads reloadable keys" "$(cat "$T/stderr")" "configuration key daemon.log_level reloaded"
sed -i 's/^listen = .*/listen = 127.0.0.1:1/' "$CONF"
kill -HUP "$PID"; sleep 0.5
like "SIGHUP names keys that need a restart" "$(cat "$T/stderr")" "manager.listen changed; it takes effect at the next restart"
echo "[manager]" >"$T/bad.conf"; echo "max_connections = 1" >>"$T/bad.conf"
cp "$CONF" "$T/good.conf"; cp "$T/bad.conf" "$CONF"; kill -HUP "$PID"; sleep 0.5
like "SIGHUP with a bad file keeps the running config" "$(cat "$T/stderr")" "reload refused"
cp "$T/good.conf" "$CONF"; sed -i 's/^listen = .*/listen = 127.0.0.1:0/' "$CONF"
check "still serving after reloads" curl -sfk "$API/version"

# wait_log TEXT: wait up to 10 s for TEXT in the daemon's log
wait_log() { for _ in $(seq 1 100); do grep -q -- "$1" "$T/stderr" && return; sleep 0.1; done; }
# hold COUNT idle TCP connections for SECONDS in the background
hold() { pids=(); for i in $(seq 1 "$1"); do (exec 9<>/dev/tcp/127.0.0.1/${URL##*:}; sleep "$2") & pids+=($!); done; }

# Connection bound: hold more idle connections than max_connections, API still recovers.
hold 50 6
wait_log "the most allowed"
like "connections past max_connections are refused and logged" "$(cat "$T/stderr")" "the most allowed (manager.max_connections)"
wait "${pids[@]}" 2>/dev/null
check "API answers once they are gone" curl -sfk "$API/version"

stop_daemon
is "SIGTERM: graceful stop, exit 0" "$STOP_RC" 0
like "SIGTERM: logged" "$(cat "$T/stderr")" "stopping on signal"
is "pid file removed" "$([ -e "$STATE/atriumd.pid" ] && echo present || echo gone)" gone

# Restart (with one HTTP worker): data kept, no second admin created, password file kept.
sed -i 's/^max_connections = 32$/max_connections = 32\nthreads = 1/' "$CONF"
start_daemon
TOKEN=$(login_as admin "$PW")
http GET /pools; is "data survives a restart" "$(jget '[.items[].name] | sort | join(",")')" office,olgas
is "no new admin password printed on restart" "$(grep -c "password '" "$T/stdout")" 0
# Keep-alive clients that close between requests (every CLI run, every curl): libsoup 3.2
# leaves them in CLOSE-WAIT; the manager must reap them, free their connection slots and
# descriptors, and recycle soup's leftovers (past 256 of them, so this daemon runs one worker)
# without losing requests.
sleep 1.2
fds_before=$(ls /proc/$PID/fd | wc -l)
codes=""
for batch in $(seq 1 10); do
        for i in $(seq 1 30); do codes+=$(curl -sk -o /dev/null -w '%{http_code} ' "$API/version"); done
        sleep 1.1
done
is "300 short connections past max_connections (32): all served" "$(tr " " "\n" <<<"$codes" | grep -c "^200$")" 300
sleep 1.2
is "their descriptors are all closed again" "$(ls /proc/$PID/fd | wc -l)" "$fds_before"
like "soup's leftovers recycled with a new SoupServer" "$(cat "$T/stderr")" "new SoupServer after 256 abandoned"
check "and the API still answers" curl -sfk "$API/version"
http PUT /me/password "{\"current_password\":\"$PW\",\"new_password\":\"admin-pass-2\"}"
is "admin changes the first password" "$CODE" 204
is "the initial password file is then removed" "$([ -e "$STATE/initial-admin-password" ] && echo present || echo gone)" gone
stop_daemon

# Running out of file descriptors: accept() fails with EMFILE, the listener survives.
( ulimit -n 40; exec "$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/stdout" 2>"$T/stderr" ) &
PID=$!
for _ in $(seq 1 50); do curl -sk "$(cat "$STATE/manager.url")/api/v1/version" >/dev/null 2>&1 && break; sleep 0.1; done
URL=$(cat "$STATE/manager.url"); API=$URL/api/v1
hold 60 6
wait_log "retrying in"
like "EMFILE on accept is logged, not fatal" "$(cat "$T/stderr")" "retrying in"
wait "${pids[@]}" 2>/dev/null
sleep 0.3
check "listener accepts again after EMFILE" curl -sfk --max-time 5 "$API/version"
stop_daemon

# A database from a newer atriumd is refused with a clear message.
db_schema_set 999
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/newer" 2>&1; RC=$?
is "newer database refused (exit 1)" "$RC" 1
like "newer database: clear message" "$(cat "$T/newer")" "has schema version 999, newer than this atriumd understands"
db_schema_set 1

# plain HTTP only on loopback.
{ store_conf plain; printf '[manager]\nlisten = 0.0.0.0:0\nplain_http = true\n'; } >"$T/plain.conf"
"$ATRIUMD" -c "$T/plain.conf" --state-dir "$T/plainstate" >"$T/plain" 2>&1; RC=$?
is "plain HTTP on a public address refused" "$RC" 1
like "plain HTTP: clear message" "$(cat "$T/plain")" "only allowed when manager.listen is a loopback address"
{ store_conf plain; printf '[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\nplain_http = true\npassword_cost = min\n'; } >"$T/plain.conf"
"$ATRIUMD" -c "$T/plain.conf" --state-dir "$T/plainstate" >"$T/plain" 2>&1 &
PID=$!
for _ in $(seq 1 50); do [ -s "$T/plainstate/manager.url" ] && break; sleep 0.1; done
like "plain HTTP on loopback when configured" "$(cat "$T/plainstate/manager.url")" "http://127.0.0.1:"
check "plain HTTP answers" curl -sf "$(cat "$T/plainstate/manager.url")/api/v1/version"
stop_daemon

"$ATRIUMD" --print-config >"$T/sample.conf"
check "--print-config writes a loadable sample" "$ATRIUMD" -c "$T/sample.conf" --version
"$ATRIUMD" -c "$T/nonexistent.conf" >"$T/noconf" 2>&1; RC=$?
is "missing config file given with -c: exit 1" "$RC" 1
"$ATRIUMD" --bogus >/dev/null 2>&1; is "unknown option: exit 2" "$?" 2

echo "1..$n"
[ "$failed" -eq 0 ]
