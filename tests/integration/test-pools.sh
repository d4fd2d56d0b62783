#!/bin/bash
# Integration test of templates, pools and the pool reconciler at scale, on libvirt's test
# driver (test:///default inside the agent: domains are defined and "run" in memory) with real
# qcow2 overlays made by qemu-img, a real manager and a real agent. A 200-desktop pool
# converges, shrinks and grows, resets a desktop whose session ended, rolls onto a new
# template version, and converges again after a kill -9 of the manager in the middle of
# provisioning; after each step the overlay files, the libvirt domains and the database rows
# agree. Then the bad inputs, disk full included. Output is TAP.
# Usage: test-pools.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2 SIGN=${3:-}
GWC="python3 $(dirname "$0")/gwclient.py"
XPIDS=()
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (a small tmpfs for disk full)"; exit 0; fi
command -v qemu-img >/dev/null || { echo "1..0 # SKIP no qemu-img"; exit 0; }

T=$(mktemp -d /tmp/atrium-pools-XXXXXX)
STATE=$T/manager CONF=$T/manager.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
MPID= APID=

cleanup() {
        for p in "${XPIDS[@]}"; do kill "$p" 2>/dev/null; done
        [ -n "$APID" ] && kill -9 "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
        [ -n "${H2PID:-}" ] && kill -9 "$H2PID" 2>/dev/null && wait "$H2PID" 2>/dev/null
        [ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
        umount "$T/tiny" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

q() { dbq "$1"; }
# A live agent's heartbeats update its host row every second: refusals are checked without it.
dbdump() { dbdump_all | grep -v '^INSERT INTO api_tokens\|^INSERT INTO hosts'; }
op_ended() { http GET "/operations/$1"; [ "$(jget .state)" != running ]; }
event_count() { q "SELECT count(*) FROM events WHERE action = '$1' AND object_name = '$2'"; }

# The three views of the desktops, one name per line, sorted: database rows (all pools),
# libvirt domains on the host, overlay files in the volume.
db_names() { q "SELECT 'atrium-$INST-desktop-' || id FROM desktops WHERE disk != '' OR state NOT IN ('provisioning','failed')" | sort; }
dom_names() { http GET /hosts/h1/domains; jq -r '.domains[].domain' <<<"$BODY" | grep -- "-desktop-" | sort; }
file_names() { (cd "$T/vol" && ls atrium-"$INST"-desktop-*.qcow2 2>/dev/null | sed 's/\.qcow2$//' | sort); }
# agree DESC: the three views are the same set
agree() {
        local db doms files
        db=$(db_names) doms=$(dom_names) files=$(file_names)
        if [ "$db" = "$doms" ] && [ "$db" = "$files" ]; then
                ok "$1 ($(wc -l <<<"$db") desktops: rows, domains and overlays agree)"
        else
                not_ok "$1" "rows $(wc -l <<<"$db"), domains $(wc -l <<<"$doms"), files $(wc -l <<<"$files")" \
                        "rows not domains: $(comm -23 <(echo "$db") <(echo "$doms") | head -3 | tr '\n' ' ')" \
                        "domains not rows: $(comm -13 <(echo "$db") <(echo "$doms") | head -3 | tr '\n' ' ')" \
                        "files not rows: $(comm -13 <(echo "$db") <(echo "$files") | head -3 | tr '\n' ' ')"
        fi
}
pool_count() { q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = '$1' AND d.state != 'deleting'"; }
pool_state_count() { q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = '$1' AND d.state = '$2'"; }
converged() { # POOL SIZE SPARES
        [ "$(pool_count "$1")" = "$2" ] &&
        [ "$(q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = '$1' AND d.state NOT IN ('stopped','running')")" = 0 ] &&
        [ "$(pool_state_count "$1" running)" = "$3" ]
}

start_manager() {
        "$ATRIUMD" -c "$CONF" --state-dir "$STATE" >>"$T/manager.out" 2>>"$T/manager.err" &
        MPID=$!
}

# ---- a manager and one agent on the test driver ----
cat >"$CONF" <<CONF
[daemon]
log_level = info
[gateway]
listen = 127.0.0.1:0
$(store_conf)
[manager]
listen = 127.0.0.1:0
password_cost = min
initial_admin_password = admin-pass-1
heartbeat_interval = 1
startup_grace = 0
reconcile_interval = 1
provision_retries = 2
agent_command_timeout = 60
connect_ready_timeout = 5
CONF
start_manager
wait_for 10 test -s "$STATE/manager.url"
PORT=$(sed 's/.*://' "$STATE/manager.url")
# Restarts keep the port: the agent knows this URL.
sed -i "/^\[manager\]/,/^\[/ s/^listen = .*/listen = 127.0.0.1:$PORT/" "$CONF"
URL=https://127.0.0.1:$PORT API=$URL/api/v1 TOKEN=
INST=$(q "SELECT value FROM settings WHERE key = 'installation'")
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
is "CLI logs in" "$?" 0

mkdir -p "$T/vol" "$T/tiny"
cat >"$T/h1.conf" <<CONF
[daemon]
log_level = info
[agent]
libvirt_uri = test:///default
storage_roots = $T
name = h1
workers = 4
CONF
"$ATRIUM" storage create --name local >/dev/null
"$ATRIUM" volume create --name vol --storage local --path "$T/vol" >/dev/null
JT=$("$ATRIUM" --json host join-token create | jq -r .token)
"$ATRIUMD" -c "$T/h1.conf" --state-dir "$T/h1" --role agent --manager "$URL" --join-token "$JT" \
        >>"$T/h1.out" 2>>"$T/h1.err" &
APID=$!
wait_for 30 api_is /hosts/h1 .state up; is "host h1 (test driver) is up" "$(jget .state)" up

# ---- a template from a stopped guest ----
qemu-img create -q -f qcow2 "$T/vol/gold.qcow2" 1G
check "a guest with a disk" "$ATRIUM" guest create --name g0 --volume vol --disk gold.qcow2 --ram_mb 256
check "template version 1 from the guest" "$ATRIUM" template create --name tpl --volume vol --from-guest g0

# ---- bad inputs: each refused, nothing made ----
refuse "size above max_size" POST /pools '{"name":"p1","template":"tpl","size":5,"max_size":3}' 400 invalid_value
refuse "negative size" POST /pools '{"name":"p1","template":"tpl","size":-2}' 400 invalid_value
refuse "absurd size" POST /pools '{"name":"p1","template":"tpl","size":100000000}' 400 invalid_value
refuse "negative spares" POST /pools '{"name":"p1","template":"tpl","size":2,"spares":-1}' 400 invalid_value
refuse "more monitors than 4" POST /pools '{"name":"p1","template":"tpl","monitors":5}' 400 invalid_value
refuse "a clipboard policy that does not exist" POST /pools '{"name":"p1","template":"tpl","clipboard":"sideways"}' 400 invalid_value
refuse "a name pattern that would give every desktop one name" POST /pools '{"name":"p1","template":"tpl","size":3,"name_pattern":"desk"}' 400 invalid_value
"$ATRIUM" host maintenance h1 on >/dev/null
refuse "a pool on a template no up host can reach" POST /pools '{"name":"p1","template":"tpl","size":2}' 503 unavailable
like "... says why" "$(jget .error.message)" "no host that is up and not in maintenance"
refuse "a pool placed on hosts that do not exist" POST /pools '{"name":"p1","template":"tpl","size":2,"hosts":"nosuch"}' 503 unavailable
"$ATRIUM" host maintenance h1 off >/dev/null
wait_for 10 api_is /hosts/h1 .state up

# ---- a 200-desktop stateless pool ----
OUT=$("$ATRIUM" pool create --name big --template tpl --size 200 --spares 3 --max_size 400 \
        --name_pattern 'big{n:3}' --wait 2>&1); RC=$?
is "pool create --wait ends well" "$RC" 0
like "... with a progress bar" "$OUT" "] 100%"
like "... and the operation's outcome" "$OUT" "200 desktops ready"
is "200 desktops, none failed" "$(pool_count big)/$(pool_state_count big failed)" 200/0
wait_for 30 converged big 200 3; is "3 spares running" "$(pool_state_count big running)" 3
agree "the pool converged"
is "desktops are named from the pattern" "$(q "SELECT group_concat(name) FROM (SELECT name FROM desktops ORDER BY name LIMIT 2) AS x")" "big001,big002"
B=$(qemu-img info --output=json "$T/vol/atrium-$INST-desktop-1.qcow2" | jq -r '.["backing-filename"]')
like "an overlay is backed by the version's base image" "$B" "tpl-tpl-v1.qcow2"
is "overlays are tiny next to the base" "$(( $(stat -c %s "$T/vol/atrium-$INST-desktop-1.qcow2") < 1048576 ))" 1
OUT=$("$ATRIUM" pool show big 2>&1)
like "pool show reports the disk the overlays save" "$OUT" "200 overlays; a full copy per desktop would take"
http GET /pools/big/disk
is "... overlay bytes against a full copy each" "$(jget '.full_copy_bytes == .base_bytes * 200 and .overlay_bytes > 0')" true
like "operations are listed" "$("$ATRIUM" operation list 2>&1)" "pool_create"
is "a version lists the desktops using it" "$("$ATRIUM" --json template-version show tpl-v1 | jq '.desktops | length')" 200
like "template-version desktops filter" "$("$ATRIUM" --json desktop list --template_version tpl-v1 --limit 1 | jq -r '.items[0].template_version')" "tpl-v1"

# ---- resize down (never a desktop in use) and up ----
http POST /users '{"name":"alice","password":"alice-pass-1"}'
U=$(q "SELECT name FROM desktops WHERE state = 'stopped' ORDER BY id DESC LIMIT 1")
http POST /sessions "{\"user\":\"alice\",\"desktop\":\"$U\"}"
is "a session on the last desktop" "$CODE" 201
SES=$(jget .id)
OUT=$("$ATRIUM" pool update big --size 150 --wait 2>&1); RC=$?
is "resize down to 150" "$RC" 0
wait_for 30 converged big 150 3
is "150 desktops" "$(pool_count big)" 150
is "the desktop in use was kept" "$(q "SELECT count(*) FROM desktops WHERE name = '$U'")" 1
agree "after shrinking"
is "a resize above max_size is refused" "$("$ATRIUM" pool update big --size 500 >/dev/null 2>&1; echo $?)" 1
check "resize up to 220" "$ATRIUM" pool update big --size 220 --wait
wait_for 30 converged big 220 3
is "220 desktops" "$(pool_count big)" 220
agree "after growing"

# ---- a stateless desktop is reset when its session ends ----
INO=$(stat -c %z "$T/vol/atrium-$INST-desktop-$(q "SELECT id FROM desktops WHERE name = '$U'").qcow2")
is "the session made it dirty" "$(q "SELECT dirty FROM desktops WHERE name = '$U'")" 1
http DELETE "/sessions/$SES"
reset_seen() { [ "$(event_count desktop_reset "$U")" -ge 1 ]; }
wait_for 30 reset_seen
is "it is reset once its session ended" "$(event_count desktop_reset "$U")" 1
wait_for 30 converged big 220 3
is "... clean again" "$(q "SELECT dirty || state FROM desktops WHERE name = '$U'")" 0stopped
isnt_same() { if [ "$2" != "$3" ]; then ok "$1"; else not_ok "$1" "both $2"; fi; }
isnt_same "... with a fresh overlay" "$INO" "$(stat -c %z "$T/vol/atrium-$INST-desktop-$(q "SELECT id FROM desktops WHERE name = '$U'").qcow2")"
agree "after the reset"

# ---- a new template version rolls out to the idle stateless desktops ----
OUT=$("$ATRIUM" template update tpl --from-guest g0 --wait 2>&1); RC=$?
is "template update --wait follows the roll-out" "$RC" 0
like "... to every desktop" "$OUT" "220 desktops ready"
is "every desktop is on version 2" "$(q "SELECT count(*) FROM desktops d JOIN template_versions v ON v.id = d.template_version_id WHERE v.version = 2")" 220
wait_for 30 converged big 220 3
http GET /volumes/vol/images
is "every overlay is backed by version 2's image" "$(jget "[.images[] | select(.name | startswith(\"atrium-$INST-desktop-\")) | select(.backing | endswith(\"tpl-tpl-v2.qcow2\"))] | length")" 220
agree "after the roll-out"
http DELETE /template-versions/tpl-v1
is "version 1, used by none now, can be deleted" "$CODE" 204

# ---- kill -9 of the manager in the middle of provisioning 200 desktops ----
http POST /pools '{"name":"crash","template":"tpl","size":200,"spares":2}'
is "a second 200-desktop pool" "$CODE" 201
OPC=$(jget .operation)
for _ in $(seq 1 3000); do [ "$(pool_state_count crash stopped)" -ge 20 ] && break; done
kill -9 "$MPID"; wait "$MPID" 2>/dev/null
MADE=$(pool_state_count crash stopped)
is "killed while provisioning (made $MADE of 200)" "$(( MADE < 200 ))" 1
rm -f "$STATE/manager.url"
start_manager
wait_for 20 test -s "$STATE/manager.url"
TOKEN=
login() { http POST /auth/login '{"name":"admin","password":"admin-pass-1"}' ""; [ "$CODE" = 200 ]; }
wait_for 20 login; TOKEN=$(jget .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
wait_for 120 op_ended "$OPC"
is "after the restart the pool's operation finishes" "$(jget .state)" done
wait_for 60 converged crash 200 2
is "the pool converged: 200 desktops" "$(pool_count crash)/$(pool_state_count crash running)" 200/2
is "no duplicated row (names unique, ids 1:1)" "$(q "SELECT count(*) - count(DISTINCT name) FROM desktops")" 0
agree "after kill -9 and restart: no orphan overlay, no duplicate domain, no lost row"

# ---- the broker: entitlements, connect, no double assignment ----
"$ATRIUM" group create --name staff >/dev/null
"$ATRIUM" group add-member staff alice >/dev/null
"$ATRIUM" entitlement create --pool crash --group staff >/dev/null
http POST /users '{"name":"bob","password":"bob-pass-12"}'
user_token() { http POST /auth/login "{\"name\":\"$1\",\"password\":\"$2\"}" ""; jget .token; }
ALICE=$(user_token alice alice-pass-1) BOB=$(user_token bob bob-pass-12)
http GET /me/desktops "" "$ALICE"
is "alice sees the pool she is entitled to through a group" "$(jget '[.items[].pool] | join(",")')" crash
http GET /me/desktops "" "$BOB"
is "bob sees none" "$(jget '.items | length')" 0
SINCE=$(q "SELECT max(id) FROM events")
http POST /pools/crash/connect '{}' "$BOB"
is "bob, not entitled, is refused" "$CODE/$(jget .error.code)" 403/forbidden
is "... with an event, nothing assigned" "$(q "SELECT count(*) FROM events WHERE id > $SINCE AND action = 'connect_refused'")/$(q "SELECT count(*) FROM desktops WHERE user_id IS NOT NULL")" 1/0
http POST /pools/crash/connect '{"protocol":"spice"}' "$ALICE"
is "alice connects" "$CODE" 200
AD=$(jget .desktop)
is "... to a started spare" "$(q "SELECT state FROM desktops WHERE name = '$AD'")" running
like "... with a signed console ticket" "$(jget .ticket)" "atk1."
PAYLOAD=$(jget .ticket | cut -d. -f2 | tr '_-' '/+'); while [ $(( ${#PAYLOAD} % 4 )) -ne 0 ]; do PAYLOAD="$PAYLOAD="; done
is "... naming her desktop and its console" "$(base64 -d <<<"$PAYLOAD" | jq -r '"\(.desktop) \(.user) \(.proto)"')" "$(q "SELECT id FROM desktops WHERE name = '$AD'") $(q "SELECT id FROM users WHERE name = 'alice'") spice"
like "... a .vv file whose proxy is the gateway" "$(jget .vv)" "proxy=https://"
like "... and a browser console URL" "$(jget .console_url)" "/console?ticket=atk1."
is "a session is recorded" "$(q "SELECT count(*) FROM sessions s JOIN desktops d ON d.id = s.desktop_id WHERE d.name = '$AD'")" 1
http POST /pools/crash/connect '{}' "$ALICE"
is "connecting again takes over the same desktop and session" "$(jget .desktop) $(jget .session)" "$AD $(q "SELECT s.id FROM sessions s JOIN desktops d ON d.id = s.desktop_id WHERE d.name = '$AD'")"
http POST "/desktops/$AD/connect" '{}' "$BOB"
is "bob cannot connect to alice's desktop" "$CODE" 404
"$ATRIUM" pool update crash --maintenance true >/dev/null
http POST /pools/crash/connect '{}' "$ALICE"
is "a pool in maintenance takes no new connection" "$CODE/$(jget .error.code)" 409/conflict
"$ATRIUM" pool update crash --maintenance false >/dev/null
http POST /pools/crash/connect '{"protocol":"rdp"}' "$ALICE"
is "an unknown protocol is refused" "$CODE" 400
test -s "$STATE/ticket-public.key"; is "the manager writes the tickets' public key for gateways" "$?" 0
is "its signing key is 0600" "$(stat -c %a "$STATE/ticket.key")" 600

# A stopped desktop is started on connect; on the test driver no atrium-guest ever says ready.
http POST /pools '{"name":"cold","template":"tpl","size":1,"spares":0}'
CO=$(jget .operation); wait_for 60 op_ended "$CO"
"$ATRIUM" entitlement create --pool cold --user alice >/dev/null
http POST /pools/cold/connect '{}' "$ALICE"
is "connect to a stopped desktop starts it, and times out without ready" "$CODE/$(jget .error.code)" 503/unavailable
like "... saying so" "$(jget .error.message)" "did not report ready"
is "... its session is ended again" "$(q "SELECT count(*) FROM sessions s JOIN desktops d ON d.id = s.desktop_id JOIN pools p ON p.id = d.pool_id WHERE p.name = 'cold'")" 0
is "... with a connect_failed event" "$(q "SELECT count(*) FROM events WHERE action = 'connect_failed'")" 1

# 50 users connect at once to a pool of 20: 20 get distinct desktops, 30 "pool exhausted".
http POST /pools '{"name":"twenty","template":"tpl","size":20,"spares":20,"max_size":20}'
TW=$(jget .operation)
wait_for 60 op_ended "$TW"
twenty_up() { [ "$(pool_state_count twenty running)" = 20 ]; }
wait_for 60 twenty_up
"$ATRIUM" group create --name crowd >/dev/null
"$ATRIUM" entitlement create --pool twenty --group crowd >/dev/null
for i in $(seq 1 50); do
        http POST /users "{\"name\":\"u$i\",\"password\":\"pass-word-$i\"}"
        "$ATRIUM" group add-member crowd "u$i" >/dev/null
done
mkdir -p "$T/crowd"
for i in $(seq 1 50); do user_token "u$i" "pass-word-$i" >"$T/crowd/$i.tok"; done
CURLS=()
for i in $(seq 1 50); do
        curl -sk -o "$T/crowd/$i.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$T/crowd/$i.tok")" \
                -H 'Content-Type: application/json' --data-binary '{}' "$API/pools/twenty/connect" >"$T/crowd/$i.code" &
        CURLS+=($!)
done
wait "${CURLS[@]}" # (not the manager and agent)
is "20 connects succeed" "$(grep -l '^200$' "$T"/crowd/*.code | wc -l)" 20
is "... to 20 different desktops" "$(cat "$T"/crowd/*.out | jq -r 'select(.desktop) | .desktop' | sort -u | wc -l)" 20
is "30 are told the pool is exhausted" "$(cat "$T"/crowd/*.out | jq -r '.error.message // empty' | grep -c "exhausted")" 30
is "no desktop has two users or two sessions" "$(q "SELECT count(*) FROM (SELECT desktop_id FROM sessions GROUP BY desktop_id HAVING count(DISTINCT user_id) > 1) AS x")" 0
check "the pool of 20 is deleted with its sessions (room for the next pools)" "$ATRIUM" pool delete twenty --force --wait

# ---- connects claim desktops beside each other: one caller's at once make one session; a
# free desktop another transaction holds is skipped (PostgreSQL: FOR UPDATE SKIP LOCKED) ----
http POST /pools '{"name":"trio","template":"tpl","size":3,"spares":3,"max_size":3}'
TR=$(jget .operation); wait_for 60 op_ended "$TR"
trio_up() { [ "$(pool_state_count trio running)" = 3 ]; }
wait_for 60 trio_up
"$ATRIUM" entitlement create --pool trio --group crowd >/dev/null
mkdir -p "$T/trio"
CURLS=()
for k in 1 2 3; do
        curl -sk -o "$T/trio/$k.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$T/crowd/4.tok")" \
                -H 'Content-Type: application/json' --data-binary '{}' "$API/pools/trio/connect" >"$T/trio/$k.code" &
        CURLS+=($!)
done
wait "${CURLS[@]}"
is "one user's three connects at once all succeed" "$(grep -l '^200$' "$T"/trio/*.code | wc -l)" 3
is "... on one desktop" "$(cat "$T"/trio/*.out | jq -r '.desktop // empty' | sort -u | wc -l)" 1
is "... with one session" "$(q "SELECT count(*) FROM sessions s JOIN desktops d ON d.id = s.desktop_id JOIN pools p ON p.id = d.pool_id WHERE p.name = 'trio'")" 1
# while that desktop is being recovered (set here by hand), its user is told so, not given one
# of the two free desktops
OWN=$(cat "$T"/trio/1.out | jq -r '.desktop // empty')
q "UPDATE desktops SET state = 'recovering' WHERE name = '$OWN'" >/dev/null
http POST /pools/trio/connect '{}' "$(cat "$T/crowd/4.tok")"
q "UPDATE desktops SET state = 'running' WHERE name = '$OWN'" >/dev/null
is "a user whose desktop is being recovered is told so" "$CODE/$(jget .error.code)" 503/unavailable
like "... saying why" "$(jget .error.message)" "being restarted on another host"
is "... and given no other desktop" "$(q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id JOIN users u ON u.id = d.user_id WHERE p.name = 'trio' AND u.name = 'u4'")" 1
if on_pg; then
        HELD=$(q "SELECT d.name FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = 'trio' AND d.user_id IS NULL ORDER BY d.id LIMIT 1")
        printf "BEGIN;\nSELECT id FROM desktops WHERE name = '%s' FOR UPDATE;\nSELECT pg_sleep(8);\nCOMMIT;\n" "$HELD" |
                pg_psql atrium -f - >/dev/null &
        LOCKER=$!
        held() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(8)%' AND pid != pg_backend_pid()")" = 1 ]; }
        wait_for 10 held
        http POST /pools/trio/connect '{}' "$(cat "$T/crowd/5.tok")"
        is "a connect skips the free desktop another transaction holds, and takes the next" \
                "$CODE/$([ -n "$(jget .desktop)" ] && [ "$(jget .desktop)" != "$HELD" ] && echo next)" 200/next
        wait "$LOCKER"
        is "... the held one is still free" "$(q "SELECT count(*) FROM desktops WHERE name = '$HELD' AND user_id IS NULL")" 1
fi
check "the pool of 3 is deleted with its sessions" "$ATRIUM" pool delete trio --force --wait

# ---- a pool below its max_size grows for a connect that finds it exhausted ----
http POST /pools '{"name":"grow","template":"tpl","size":1,"spares":1,"max_size":2}'
GR=$(jget .operation); wait_for 60 op_ended "$GR"
grow_spare() { [ "$(pool_state_count grow running)" = 1 ]; }
wait_for 30 grow_spare
"$ATRIUM" entitlement create --pool grow --group crowd >/dev/null
U1=$(cat "$T/crowd/1.tok") U2=$(cat "$T/crowd/2.tok") U3=$(cat "$T/crowd/3.tok")
http POST /pools/grow/connect '{}' "$U1"; G1=$(jget .desktop)
is "u1 takes the pool's one desktop" "$CODE" 200; [ "$CODE" = 200 ] || { echo "# $BODY"; q "select id,name,state,user_id,terminal_id,dirty,maintenance,host_id from desktops d where pool_id=(select id from pools where name='grow')" | sed "s|^|# |"; q "select id,desktop_id,state from sessions" | sed "s|^|# S |" | tail -5; q "select id,name,state,maintenance from hosts" | sed "s|^|# H |"; }
http POST /pools/grow/connect '{}' "$U2"; G2=$(jget .desktop)
is "u2 finds it exhausted below max_size: the pool grows and u2 gets the new desktop" "$CODE" 200
is "... a different one" "$([ -n "$G2" ] && [ "$G1" != "$G2" ] && echo yes)" yes
is "... the pool's size is now 2, with a pool_grow event" "$(q "SELECT size FROM pools WHERE name = 'grow'")/$(event_count pool_grow grow)" 2/1
http POST /pools/grow/connect '{}' "$U3"
is "u3 at max_size: exhausted" "$CODE/$(jget .error.code)" 503/unavailable
like "... saying the maximum" "$(jget .error.message)" "maximum 2"

# ---- sessions: timing, admin view, disconnect, end; user actions ----
S1=$(q "SELECT s.id FROM sessions s JOIN desktops d ON d.id = s.desktop_id WHERE d.name = '$G1'")
OUT=$("$ATRIUM" session show "$S1" 2>&1)
like "session show prints the connect's timing" "$OUT" "console ticket issued"
like "... step by step" "$OUT" "desktop chosen and assigned"
is "... from the timing kept in the session" "$(q "SELECT CAST(json_extract(timing, '$.ticket') >= json_extract(timing, '$.placed') AS INTEGER) FROM sessions WHERE id = $S1")" 1
like "the connect event carries the timing too" "$(q "SELECT detail FROM events WHERE action = 'connect' AND object_name = '$G1'")" '"ticket":'
http GET /sessions "" "$U1"
is "a user lists only their own sessions" "$(jget '[.items[].id] | join(",")')" "$S1"
http GET /sessions
is "an admin sees every session" "$(jget "([.items[].id] | index($S1) != null) and (.items | length) >= 2")" true
http POST "/sessions/$S1/end" "" "$U2"
is "u2 cannot end u1's session" "$CODE" 404
# Tunnels to that desktop through the gateway in the manager's process and through a gateway
# alone (the test driver has no consoles: an echo server stands in, with a ticket for it).
$GWC target "$T/echo.port" echo & XPIDS+=($!)
wait_for 10 test -s "$T/echo.port"
G1ID=$(q "SELECT id FROM desktops WHERE name = '$G1'")
mkdir -p "$T/gw2"; cp "$STATE/gateway.key" "$STATE/ticket-public.key" "$T/gw2/"
printf '[gateway]\nlisten = 127.0.0.1:0\n' >"$T/gw2.conf"
"$ATRIUMD" -c "$T/gw2.conf" --state-dir "$T/gw2" --role gateway --manager "$URL" \
        --manager-fingerprint "$(openssl x509 -in "$STATE/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)" \
        >"$T/gw2.out" 2>&1 & XPIDS+=($!)
wait_for 10 test -s "$T/gw2/gateway.url"
sleep 2.5 # the gateway alone has polled the manager once (it then takes only newer orders)
for g in "$(cat "$STATE/gateway.url")" "$(cat "$T/gw2/gateway.url")"; do
        $GWC ws "${g#https://}" "$("$SIGN" "$STATE/ticket.key" 127.0.0.1 "$(cat "$T/echo.port")" vnc "$G1ID" 0 60)" \
                --hold 20 >>"$T/held" 2>&1 & XPIDS+=($!)
done
two_open() { [ "$(grep -c 'echo ok' "$T/held")" = 2 ]; }
wait_for 10 two_open; is "u1's desktop has a tunnel through each gateway" "$?" 0
http POST "/sessions/$S1/disconnect" "" "$U1"
is "u1 disconnects their console" "$CODE/$(jget .state)" 200/disconnected
two_closed() { [ "$(grep -c 'closed by the gateway' "$T/held")" = 2 ]; }
wait_for 10 two_closed; is "... and both gateways closed the desktop's tunnels (VNC clients too)" "$?" 0
[ "$(grep -c 'closed by the gateway' "$T/held")" = 2 ] || sed 's/^/# /' "$T/held" "$T/gw2.out"
is "... with an event" "$(q "SELECT count(*) FROM events WHERE action = 'session_disconnect' AND object_id = $S1")" 1
http POST "/desktops/$G1/reboot" '{}' "$U1"
is "a user may not reboot their desktop unless the pool allows it" "$CODE/$(jget .error.code)" 403/forbidden
"$ATRIUM" pool update grow --user_actions true >/dev/null
http POST "/desktops/$G1/reboot" '{}' "$U1"
is "... with user_actions on, u1 reboots their own desktop" "$CODE" 200
http POST "/desktops/$G1/reset" '{}' "$U1"
is "... and resets it" "$CODE" 200
http POST "/desktops/$G1/reboot" '{}' "$U2"
is "... not someone else's" "$CODE" 404
http POST "/desktops/$G1/stop" '{}' "$U1"
is "... and stopping it stays an operator's" "$CODE" 403
G1_SINCE=$(q "SELECT state_since FROM desktops WHERE name = '$G1'")
http POST "/sessions/$S1/end" "" "$U1"
is "u1 ends their own session" "$CODE/$(jget .state)" 202/ending
like "... an event says who ended it" "$(q "SELECT detail FROM events WHERE action = 'session_end' AND object_id = $S1")" "ended by its user u1"
session_gone() { [ "$(q "SELECT count(*) FROM sessions WHERE id = $1")" = 0 ]; }
wait_for 30 session_gone "$S1"; is "... logoff, shutdown, then the session is gone" "$?" 0
g1_reset() { [ "$(q "SELECT CAST(user_id IS NULL AS INTEGER) || '' || dirty FROM desktops WHERE name = '$G1'")" = 10 ]; }
wait_for 30 g1_reset; is "... and the stateless desktop is reset (clean, unassigned)" "$?" 0
S2=$(q "SELECT s.id FROM sessions s JOIN desktops d ON d.id = s.desktop_id WHERE d.name = '$G2'")
http POST "/sessions/$S2/end"
is "an admin ends anyone's session" "$CODE" 202
wait_for 30 session_gone "$S2"; is "... it ends" "$?" 0

# ---- timeouts: max_session, then disconnect_grace ----
http POST /pools '{"name":"brief","template":"tpl","size":1,"spares":1,"max_session":3}'
BR=$(jget .operation); wait_for 60 op_ended "$BR"
brief_spare() { [ "$(pool_state_count brief running)" = 1 ] && [ "$(q "SELECT dirty FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = 'brief'")" = 0 ]; }
wait_for 30 brief_spare
"$ATRIUM" entitlement create --pool brief --user alice >/dev/null
http POST /pools/brief/connect '{}' "$ALICE"; BS=$(jget .session)
is "alice connects to a pool with max_session 3" "$CODE" 200
wait_for 30 session_gone "$BS"; is "... the session ends after max_session" "$?" 0
like "... saying why" "$(q "SELECT detail FROM events WHERE action = 'session_end' AND object_id = $BS")" "max_session (3 s)"
"$ATRIUM" pool update brief --max_session 0 --disconnect_grace 2 >/dev/null
wait_for 30 brief_spare
http POST /pools/brief/connect '{}' "$ALICE"; BS=$(jget .session)
is "alice connects again (disconnect_grace 2)" "$CODE/$(q "SELECT state FROM sessions WHERE id = $BS")" 200/disconnected
wait_for 30 session_gone "$BS"; is "... a session left disconnected ends after the grace" "$?" 0
like "... saying why" "$(q "SELECT detail FROM events WHERE action = 'session_end' AND object_id = $BS")" "disconnect_grace"

# ---- terminals and kiosk ----
"$ATRIUM" pool update brief --disconnect_grace 0 >/dev/null
"$ATRIUM" terminal create --name thin1 --pool brief >/dev/null
http POST /kiosk/connect '{"terminal":"thin1","terminal_key":"x"}' ""
is "a terminal without a key issued is refused" "$CODE/$(jget .error.code)" 403/forbidden
KEY=$("$ATRIUM" --json terminal key thin1 | jq -r .key)
is "a key is issued once" "${#KEY}" 43
NSESS=$(q "SELECT count(*) FROM sessions")
http POST /kiosk/connect '{"terminal":"thin9","terminal_key":"abc"}' ""
is "a kiosk connect from an unregistered terminal is refused" "$CODE/$(jget .error.code)" 403/forbidden
http POST /kiosk/connect "{\"terminal\":\"thin1\",\"terminal_key\":\"${KEY%?}A\"}" ""
is "... with a wrong key too" "$CODE/$(jget .error.code)" 403/forbidden
http POST /kiosk/connect '{}' ""
is "... and without naming a terminal" "$CODE/$(jget .error.code)" 400/invalid_value
http POST /kiosk/connect "{\"terminal\":\"thin1\",\"terminal_key\":\"$KEY\"}" ""
is "a registered terminal to a pool that is not a kiosk pool is refused" "$CODE/$(jget .error.code)" 403/forbidden
is "... nothing assigned" "$(q "SELECT count(*) FROM sessions")/$(q "SELECT count(*) FROM desktops WHERE terminal_id IS NOT NULL")" "$NSESS/0"
is "... every refusal an event" "$(q "SELECT count(*) FROM events WHERE action = 'connect_refused' AND object_name IN ('thin1','thin9','brief','kiosk')")" 5
"$ATRIUM" pool update brief --kiosk true >/dev/null
wait_for 30 brief_spare
http POST /kiosk/connect "{\"terminal\":\"thin1\",\"terminal_key\":\"$KEY\"}" ""
is "a kiosk connect from the registered terminal to its fixed kiosk pool" "$CODE" 200
KS=$(jget .session)
is "... the session is the terminal's, with no user" "$(q "SELECT CAST(user_id IS NULL AS INTEGER) || t.name FROM sessions s JOIN terminals t ON t.id = s.terminal_id WHERE s.id = $KS")" 1thin1
like "... the terminal was seen" "$(q "SELECT last_seen FROM terminals WHERE name = 'thin1'")" "T"
http POST /kiosk/connect "{\"terminal\":\"thin1\",\"terminal_key\":\"$KEY\"}" ""
is "... a reconnect takes over the same session" "$(jget .session)" "$KS"
OLD=$KEY KEY=$("$ATRIUM" --json terminal key thin1 | jq -r .key)
http POST /kiosk/connect "{\"terminal\":\"thin1\",\"terminal_key\":\"$OLD\"}" ""
is "a new key retires the old one" "$CODE" 403
http POST "/sessions/$KS/end"; wait_for 30 session_gone "$KS"
"$ATRIUM" terminal create --name thin2 >/dev/null
K2=$("$ATRIUM" --json terminal key thin2 | jq -r .key)
"$ATRIUM" entitlement create --pool brief --terminal thin2 >/dev/null
wait_for 30 brief_spare
http POST /pools/brief/connect "{\"terminal\":\"thin2\",\"terminal_key\":\"$K2\"}" "$BOB"
is "bob, not entitled himself, connects from a terminal entitled to the pool" "$CODE" 200
is "... his session records the terminal" "$(q "SELECT t.name FROM sessions s JOIN terminals t ON t.id = s.terminal_id WHERE s.id = $(jget .session)")" thin2
http POST /pools/brief/connect "{\"terminal\":\"thin2\",\"terminal_key\":\"nope\"}" "$BOB"
is "... not with a wrong terminal key" "$CODE" 403
http POST "/sessions/$(q "SELECT s.id FROM sessions s JOIN terminals t ON t.id = s.terminal_id WHERE t.name = 'thin2'")/end"

# ---- placement at connect: a stopped desktop whose host cannot start it moves to another ----
printf '[daemon]\nlog_level = info\n[agent]\nlibvirt_uri = test:///default\nstorage_roots = %s\nname = h2\nworkers = 2\n' "$T" >"$T/h2.conf"
JT2=$("$ATRIUM" --json host join-token create | jq -r .token)
"$ATRIUMD" -c "$T/h2.conf" --state-dir "$T/h2" --role agent --manager "$URL" --join-token "$JT2" \
        >>"$T/h2.out" 2>>"$T/h2.err" &
H2PID=$!
wait_for 30 api_is /hosts/h2 .state up; is "a second host h2 (test driver) is up" "$(jget .state)" up
http POST /pools '{"name":"move","template":"tpl","size":1,"spares":0,"mode":"persistent"}'
MV=$(jget .operation); wait_for 60 op_ended "$MV"
MD=$(q "SELECT d.name FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = 'move'")
FROM=$(q "SELECT h.name FROM desktops d JOIN hosts h ON h.id = d.host_id WHERE d.name = '$MD'")
TO=$([ "$FROM" = h1 ] && echo h2 || echo h1)
"$ATRIUM" entitlement create --pool move --user alice >/dev/null
"$ATRIUM" host maintenance "$TO" on >/dev/null
"$ATRIUM" host maintenance "$FROM" on >/dev/null
NS=$(q "SELECT count(*) FROM sessions")
http POST /pools/move/connect '{}' "$ALICE"
is "with every host in maintenance, a stopped desktop cannot be placed" "$CODE/$(jget .error.code)" 503/unavailable
like "... the scheduler says why" "$(jget .error.message)" "maintenance"
is "... nothing assigned, nothing started" "$(q "SELECT count(*) FROM sessions")/$(q "SELECT CAST(user_id IS NULL AS INTEGER) || state FROM desktops WHERE name = '$MD'")" "$NS/1stopped"
"$ATRIUM" host maintenance "$TO" off >/dev/null
http POST /pools/move/connect '{}' "$ALICE"
is "its host $FROM in maintenance: the connect places it on $TO" "$(q "SELECT h.name FROM desktops d JOIN hosts h ON h.id = d.host_id WHERE d.name = '$MD'")" "$TO"
is "... with a desktop_placed event" "$(event_count desktop_placed "$MD")" 1
MDOM=atrium-$INST-desktop-$(q "SELECT id FROM desktops WHERE name = '$MD'")
http GET "/hosts/$TO/domains"
is "... and started there (the test driver never says ready: 503 after the wait)" "$(jq -r --arg d "$MDOM" '[.domains[] | select(.domain == $d) | .state] | join(",")' <<<"$BODY")" running
"$ATRIUM" host maintenance "$FROM" off >/dev/null
check "the pool on two hosts is deleted" "$ATRIUM" pool delete move --force --wait
kill "$H2PID" 2>/dev/null; wait "$H2PID" 2>/dev/null
check "h2 is removed" "$ATRIUM" host remove h2

# ---- deleting a pool with a session: refused unless forced ----
http POST /pools '{"name":"small","template":"tpl","size":2,"mode":"persistent","spares":0}'
SM=$(jget .operation)
wait_for 30 op_ended "$SM"
D=$(q "SELECT d.name FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = 'small' LIMIT 1")
NS=$(q "SELECT count(*) FROM sessions")
http POST /sessions "{\"user\":\"alice\",\"desktop\":\"$D\"}"
refuse "deleting a pool with an active session is refused" DELETE /pools/small "" 409 in_use
like "... saying --force ends them" "$(jget .error.message)" "--force"
OUT=$("$ATRIUM" pool delete small --force --wait 2>&1); RC=$?
is "pool delete --force --wait" "$RC" 0
is "the pool is gone" "$(q "SELECT count(*) FROM pools WHERE name = 'small'")" 0
is "its sessions ended" "$(q "SELECT count(*) FROM sessions")" "$NS"
agree "after deleting a pool"

# ---- recompose: a warning, then a fresh disk; a failed desktop is retried the same way ----
OUT=$("$ATRIUM" desktop recompose big001 2>&1); RC=$?
is "recompose without --yes refused" "$RC" 1
like "... with the warning" "$OUT" "every change made on it is lost"
check "desktop recompose --yes --wait" "$ATRIUM" desktop recompose big001 --yes --wait
is "a recompose event" "$(q "SELECT count(*) FROM events WHERE action = 'update' AND object_name = 'big001'")" 1

# ---- a desktop stuck in a transition is failed after transition_timeout ----
# (fault injection: a stop whose reply the manager never got, 1,000 s ago)
q "UPDATE desktops SET state = 'stopping', state_since = $(( $(date +%s) - 1000 )) WHERE name = 'big002'"
stuck_failed() { [ "$(q "SELECT state FROM desktops WHERE name = 'big002'")" = failed ]; }
wait_for 20 stuck_failed; is "a desktop stuck 'stopping' is failed" "$?" 0
like "... saying why" "$(q "SELECT failure FROM desktops WHERE name = 'big002'")" "stuck stopping for more than 600 s"
is "... with an event" "$(event_count desktop_failed big002)" 1
check "recompose retries a failed desktop" "$ATRIUM" desktop recompose big002 --yes --wait
is "... it is back" "$(q "SELECT state || failure FROM desktops WHERE name = 'big002'")" stopped

# ---- disk full while provisioning: failed desktops with the reason, nothing half-made ----
mount -t tmpfs -o size=1400k tmpfs "$T/tiny"
qemu-img create -q -f qcow2 "$T/tiny/small.qcow2" 64M
"$ATRIUM" volume create --name tiny --storage local --path "$T/tiny" >/dev/null
"$ATRIUM" guest create --name g2 --volume tiny --disk small.qcow2 --ram_mb 128 >/dev/null
check "a template on a small volume" "$ATRIUM" template create --name tinyt --volume tiny --from-guest g2
OUT=$("$ATRIUM" pool create --name full --template tinyt --size 8 --wait 2>&1); RC=$?
is "pool create on a full disk fails" "$RC" 1
like "... saying which desktops and why" "$OUT" "desktops failed"
like "... the reason is the disk" "$OUT" "No space left on device"
FAILED=$(pool_state_count full failed) MADE=$(pool_state_count full stopped)
is "some desktops made, the others failed: $MADE + $FAILED" "$(( MADE + FAILED == 8 && FAILED > 0 ))" 1
like "a failed desktop says why" "$(q "SELECT failure FROM desktops WHERE state = 'failed' LIMIT 1")" "No space left"
is "one overlay per made desktop, no partial file" "$(ls "$T/tiny" | grep -c "desktop-")" "$MADE"
like "pool status counts the failed ones" "$("$ATRIUM" --json pool show full | jq -r .status)" "failed)"
is "a desktop_failed event" "$(event_count desktop_failed "$(q "SELECT name FROM desktops WHERE state = 'failed' LIMIT 1")")" 1

# ---- a silent host: suspect after host_suspect_after (3 s), down after host_down_after (5 s) ----
# Its agent is frozen (SIGSTOP): no heartbeat, no close. Then thawed: heard again, up.
H1ID=$(q "SELECT id FROM hosts WHERE name = 'h1'")
hev() { q "SELECT count(*) FROM events WHERE action = '$1' AND object_kind = 'host' AND object_id = $H1ID"; }
SUS0=$(hev host_suspect) DOWN0=$(hev host_down) UP0=$(hev host_up)
kill -STOP "$APID"
sleep 1.5
http GET /hosts/h1; is "a host silent for 1.5 s is still up" "$(jget .state)" up
wait_for 10 api_is /hosts/h1 .state suspect; is "a silent host becomes suspect" "$(jget .state)" suspect
is "... with a host_suspect event" "$(( $(hev host_suspect) - SUS0 ))" 1
like "... saying why" "$(q "SELECT detail FROM events WHERE action = 'host_suspect' AND object_id = $H1ID ORDER BY id DESC LIMIT 1")" "no word from its agent"
wait_for 10 api_is /hosts/h1 .state down; is "... then down" "$(jget .state)" down
is "... with a host_down event after the suspect one" "$(( $(hev host_down) - DOWN0 )):$(q "SELECT CAST((SELECT max(id) FROM events WHERE action = 'host_down' AND object_id = $H1ID) > (SELECT max(id) FROM events WHERE action = 'host_suspect' AND object_id = $H1ID) AS INTEGER)")" 1:1
"$ATRIUM" host list >"$T/hosts.txt" 2>&1
like "atrium host list shows it down" "$(grep h1 "$T/hosts.txt")" "down"
kill -CONT "$APID"
wait_for 20 api_is /hosts/h1 .state up; is "its agent heard again: up" "$(jget .state)" up
is "... with a host_up event" "$(( $(hev host_up) - UP0 ))" 1

# ---- timings that would judge a live host silent are refused at start ----
printf '[manager]\nlisten = 127.0.0.1:0\nhost_suspect_after = 5\nhost_down_after = 5\n' >"$T/unsafe.conf"
OUT=$("$ATRIUMD" -c "$T/unsafe.conf" --state-dir "$T/unsafe" 2>&1); RC=$?
is "a manager with host_suspect_after = host_down_after refuses to start" "$RC" 1
like "... naming the keys" "$OUT" "manager.host_suspect_after (5 s), and that below manager.host_down_after (5 s)"
printf '[manager]\nlisten = 127.0.0.1:0\nheartbeat_interval = 5\n' >"$T/unsafe2.conf"
OUT=$("$ATRIUMD" -c "$T/unsafe2.conf" --state-dir "$T/unsafe2" 2>&1); RC=$?
is "a heartbeat as slow as the suspect time is refused" "$RC:$(echo "$OUT" | grep -c 'must be below manager.host_suspect_after')" 1:1
{ store_conf old; printf '[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\nhost_missed_heartbeats = 3\n'; } >"$T/old.conf"
"$ATRIUMD" -c "$T/old.conf" --state-dir "$T/old" >"$T/old.out" 2>&1 &
OLDPID=$!
wait_for 20 test -s "$T/old/manager.url"; is "a configuration naming the old host_missed_heartbeats still starts" "$?" 0
kill "$OLDPID" 2>/dev/null; wait "$OLDPID" 2>/dev/null

echo "1..$n"
[ "$failed" -eq 0 ]
