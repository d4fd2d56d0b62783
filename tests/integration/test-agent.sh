#!/bin/bash
# Integration test of the host agent with real libvirt and QEMU (TCG): a manager and agents,
# all real atriumd processes. Part 1, one host on the system libvirtd (started here when not
# running): join, a guest from the test desktop image, ready from atrium-guest, a console
# screenshot with a one-time password, media, kill -9 of the agent and of QEMU, maintenance,
# removal and re-join, and the bad inputs. Part 2, two hosts in two network namespaces, each
# agent with its own embedded libvirt (qemu:///embed), sharing one directory as a volume.
# Output is TAP. Usage: test-agent.sh ATRIUMD ATRIUM IMAGE ISO WEB_DIR [SHOTS]
set -u
ATRIUMD=$1 ATRIUM=$2 IMAGE=$3 ISO=$4 WEB=${5:-} SHOTS=${6:-$(dirname "$1")/../meson-logs/screenshots}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (libvirt, network namespaces)"; exit 0; fi
if [ ! -f "$IMAGE" ]; then echo "1..0 # SKIP no test desktop image (make images)"; exit 0; fi

T=$(mktemp -d /tmp/atrium-agent-XXXXXX)
chmod 755 "$T" # QEMU runs as libvirt-qemu: it must reach the disks
STATE=$T/manager CONF=$T/manager.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
MPID= PIDS=() NETNS=()
declare -A APID

cleanup() {
        for p in "${APID[@]}" ; do kill -9 "$p" 2>/dev/null; done
        [ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
        for d in $(virsh -c qemu:///system list --all --name 2>/dev/null | grep "^atrium-"); do
                grep -q "$T" <(virsh -c qemu:///system dumpxml "$d" 2>/dev/null) || continue
                virsh -c qemu:///system destroy "$d" >/dev/null 2>&1
                virsh -c qemu:///system undefine "$d" >/dev/null 2>&1
        done
        pkill -9 -f "qemu-system.*$T" 2>/dev/null
        virsh -c qemu:///system undefine atrium-ffffffff-guest-1 >/dev/null 2>&1
        for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
        ip link del "atr$$v1" 2>/dev/null; ip link del "atr$$v2" 2>/dev/null
        if [ -f "$CA_FILE" ]; then rm -f "$CA_FILE"; update-ca-certificates --fresh >/dev/null 2>&1; fi
        rm -rf "$T"
}
trap cleanup EXIT

event_seen() { # ACTION OBJECT_NAME [SINCE_ID]
        http GET "/events?action=$1&limit=1000"
        [ "$(jq --arg o "$2" --argjson s "${3:-0}" '[.items[] | select(.object_name == $o and .id > $s)] | length' <<<"$BODY")" -gt 0 ]
}
last_event_id() { sqlite3 "$STATE/atrium.db" "SELECT coalesce(max(id),0) FROM events"; }
domstate() { virsh -c qemu:///system domstate "$1" 2>/dev/null | head -1; }
dbdump_noev() { sqlite3 "$STATE/atrium.db" .dump | grep -v '^INSERT INTO api_tokens\|^INSERT INTO events'; }
# refuse_ev DESC METHOD PATH BODY STATUS CODE EVENT: refused, nothing changed but an event
refuse_ev() {
        local before after since
        since=$(last_event_id)
        before=$(dbdump_noev)
        http "$2" "$3" "$4" "${8-$TOKEN}"
        after=$(dbdump_noev)
        if [ "$CODE" = "$5" ] && [ "$(jget .error.code)" = "$6" ] && [ "$before" = "$after" ] &&
                [ "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE id > $since AND action = '$7'")" -gt 0 ]; then
                ok "$1"
        else
                not_ok "$1" "status $CODE (want $5), body $BODY (want code $6, event $7)" \
                        "database unchanged: $([ "$before" = "$after" ] && echo yes || echo NO)"
        fi
}

"$SRC/scripts/libvirt-up.sh" >/dev/null || { echo "1..0 # SKIP libvirt cannot be started here"; exit 0; }
# The domain of the guest with id N: its name carries this installation's id, so that the
# domains of another installation on the same libvirt (make demo's, say) are never touched.
dom() { echo "atrium-$INST-guest-$1"; }

# ---- the manager ----
# The gateway serves the built portal (make web): bob opens his desktop in it.
CA_FILE=/usr/local/share/ca-certificates/atrium-test-$$.crt
mkdir -p "$SHOTS"
cat >"$CONF" <<CONF
[daemon]
log_level = info
[gateway]
listen = 127.0.0.1:0
web_root = $WEB
[manager]
listen = 0.0.0.0:0
password_cost = min
initial_admin_password = admin-pass-1
heartbeat_interval = 1
startup_grace = 0
host_missed_heartbeats = 3
agent_command_timeout = 60
CONF
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/manager.out" 2>"$T/manager.err" &
MPID=$!
wait_for 10 test -s "$STATE/manager.url"
PORT=$(sed 's/.*://' "$STATE/manager.url")
URL=https://127.0.0.1:$PORT API=$URL/api/v1 TOKEN=
INST=$(sqlite3 "$STATE/atrium.db" "SELECT value FROM settings WHERE key = 'installation'")
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token)
is "admin logs in" "$CODE" 200
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
is "CLI logs in" "$?" 0

# ---- join tokens ----
OUT=$("$ATRIUM" host join-token create --ttl 600 2>&1)
like "CLI issues a join token with the command to run" "$OUT" "atriumd --role agent --manager https://"
JT=$(grep -o 'atj1\.[A-Za-z0-9_.-]*' <<<"$OUT" | head -1)
FP=$("$ATRIUM" --json host join-token create | jq -r .manager_fingerprint)
like "the token carries the manager's certificate fingerprint" "$JT" ".$(tr -d : <<<"$FP" | tr A-F a-f)"
like "join token list" "$("$ATRIUM" host join-token list 2>&1)" "admin"

# Bad joins: each refused with a clear error and an event, nothing else changes.
refuse_ev "unknown join token refused" POST /agent/register '{"join_token":"atj1.nope","name":"hx"}' 401 unauthorized join_refused ""
http POST /join-tokens '{"ttl_seconds":60}'; OLD=$(jget .token)
sqlite3 "$STATE/atrium.db" "UPDATE join_tokens SET expires_at = 1000 WHERE id = $(jget .id)"
refuse_ev "expired join token refused" POST /agent/register "{\"join_token\":\"$OLD\",\"name\":\"hx\"}" 401 unauthorized join_refused ""
like "the expired token's message says so" "$(jget .error.message)" "expired"
http POST /join-tokens '{"ttl_seconds":5}'; is "a join token lives at least 60 s" "$CODE" 400
http POST /join-tokens '{"ttl_seconds":60,"bogus":1}'; is "join token: unknown field refused" "$CODE" 400
http POST /join-tokens '{}' ""; is "join token: needs a login" "$CODE" 401
refuse_ev "join with a bad host name refused" POST /agent/register "{\"join_token\":\"$JT\",\"name\":\"../etc\"}" 400 invalid_value join_refused ""
http POST /agent/register "{\"join_token\":\"$JT\",\"name\":\"h\",\"cpus\":-1}" ""
is "join with absurd facts refused" "$CODE" 400

# An agent with a wrong fingerprint does not join.
AC=$T/h1.conf
cat >"$AC" <<CONF
[daemon]
log_level = info
[agent]
libvirt_uri = qemu:///system
storage_roots = $T
name = h1
CONF
"$ATRIUMD" -c "$AC" --state-dir "$T/h1" --role agent --manager "$URL" \
        --manager-fingerprint "00:11:22" --join-token "$JT" >"$T/h1.out" 2>"$T/h1.err"
is "agent refuses a manager whose certificate is not the pinned one" "$?" 1
is "no credential stored after a failed join" "$(ls "$T/h1/agent-credential.json" 2>/dev/null)" ""

# A domain of another installation on the same libvirt: this one must never touch it.
cat >"$T/other.xml" <<XML
<domain type='qemu'><name>atrium-ffffffff-guest-1</name><metadata><atrium:domain
xmlns:atrium='https://atrium-vdi.org/xmlns/domain/1' version='1'/></metadata>
<memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>
XML
virsh -c qemu:///system define "$T/other.xml" >/dev/null

# ---- join for real ----
start_agent() { # NAME [ARGS...]
        local name=$1; shift
        "$ATRIUMD" -c "$T/$name.conf" --state-dir "$T/$name" --role agent "$@" >>"$T/$name.out" 2>>"$T/$name.err" &
        APID[$name]=$!
}
start_agent h1 --manager "$URL" --join-token "$JT" # the pin comes with the token
wait_for 30 api_is /hosts/h1 .state up; is "host h1 joins and is up" "$(jget .state)" up
is "its credential is kept 0600" "$(stat -c %a "$T/h1/agent-credential.json" 2>/dev/null)" 600
is "host reports TCG (no usable KVM here)" "$(jget .accel)" qemu
like "host reports why" "$(jget .accel_reason)" "TCG"
is "host reports its libvirt version" "$(jget '.libvirt_version | test("^[0-9]+\\.[0-9]+")')" true
is "host reports its CPUs" "$(jget '.cpus > 0')" true
is "host reports its management address" "$(jget .address)" 127.0.0.1
refuse_ev "a used join token is refused" POST /agent/register "{\"join_token\":\"$JT\",\"name\":\"h9\"}" 401 unauthorized join_refused ""
like "... saying it was used" "$(jget .error.message)" "already used"
like "CLI host list" "$("$ATRIUM" host list 2>&1)" "h1"

# ---- storage and a guest from the test desktop image ----
mkdir -p "$T/vol" "$T/iso" "$T/outside"
chmod 755 "$T/vol" "$T/iso"
cp "$IMAGE" "$T/vol/desk1.qcow2"
cp "$ISO" "$T/iso/live.iso"
echo secret >"$T/outside/secret.iso"
ln -s "$T/outside/secret.iso" "$T/iso/link.iso"
"$ATRIUM" storage create --name local >/dev/null
"$ATRIUM" volume create --name vol --storage local --path "$T/vol" >/dev/null
"$ATRIUM" media create --name isos --path "$T/iso" >/dev/null
"$ATRIUM" volume create --name outside --storage local --path / >/dev/null
check "create a guest" "$ATRIUM" guest create --name g1 --volume vol --disk desk1.qcow2 --ram_mb 256
http GET /volumes/vol/images
is "volume images listed by a host" "$(jget '.images[] | select(.name == "desk1.qcow2") | .format')" qcow2
is "volume free space reported" "$(jget '.free_bytes > 0')" true
http GET /media/isos/isos
is "media ISOs listed by a host (not links)" "$(jget '[.isos[].name] | join(",")')" "live.iso"
http GET /volumes/outside/images
is "a volume outside the storage roots is refused" "$CODE" 403

SINCE=$(last_event_id)
OUT=$("$ATRIUM" guest start g1 2>&1); RC=$?
is "CLI guest start" "$RC" 0
http GET /guests/g1
is "guest runs" "$(jget .state)" running
is "on h1" "$(jget .host)" h1
is "with a SPICE port" "$(jget '.spice_port > 0')" true
SPORT=$(jget .spice_port)
is "libvirt runs it" "$(domstate $(dom 1))" running
http POST /templates '{"name":"hot","volume":"vol","from_guest":"g1"}'
is "a template from a running guest is refused" "$(jget .error.code)" conflict
wait_for 90 event_seen guest_agent_ready g1 "$SINCE"; is "atrium-guest says ready (event)" "$?" 0

# Consoles: no password, no console; a one-time password opens it and shows the banner.
spicy-screenshot -h 127.0.0.1 -p "$SPORT" -o "$T/none.ppm" >/dev/null 2>&1
is "console without a password is refused" "$?" 1
http POST /guests/g1/console '{"protocol":"spice","ttl":60}'
is "one-time console password set" "$CODE" 200
PW=$(jget .password)
is "console reported at host:port" "$(jget '.host + ":" + (.port|tostring)')" "127.0.0.1:$SPORT"
screen_text() {
        rm -f "$T/shot.ppm"
        spicy-screenshot -h 127.0.0.1 -p "$SPORT" -w "$1" -o "$T/shot.ppm" >/dev/null 2>&1 || return 1
        tesseract "$T/shot.ppm" - --psm 6 2>/dev/null
}
banner() { screen_text "$PW" | grep -q "ATRIUM TEST DESKTOP"; }
wait_for 60 banner; is "screenshot with the one-time password shows the desktop banner" "$?" 0
http POST /guests/g1/tools '{"op":"set-hostname","hostname":"desk-one"}'
is "atrium-guest set-hostname through the agent" "$CODE" 200
named() { screen_text "$PW" | grep -q "desk-one"; }
wait_for 30 named; is "... and the desktop's screen shows its new name" "$?" 0
http POST /guests/g1/tools '{"op":"fly"}'; is "a request atrium-guest does not know is refused" "$(jget .error.code)" invalid_value
http POST /guests/g1/tools '{"op":"set-hostname","hostname":"bad name!"}'; is "a bad host name is refused" "$CODE" 400
check "CLI guest tools ping" "$ATRIUM" guest tools g1 --op ping
spicy-screenshot -h 127.0.0.1 -p "$SPORT" -w wrong-password -o "$T/wrong.ppm" >/dev/null 2>&1
is "a wrong console password is refused" "$?" 1
http POST /guests/g1/console '{"protocol":"vnc"}'
is "VNC one-time password has at most 8 characters" "$(jget '.password | length')" 8
http POST /guests/g1/console '{"protocol":"rdp"}'; is "unknown console protocol refused" "$CODE" 400
wait_for 10 event_seen console_connect g1 "$SINCE"; is "console connections are events" "$?" 0

# Media: attach and eject while running; paths out of the media storage refused.
check "attach an ISO while running" "$ATRIUM" guest attach-iso g1 --media isos --iso live.iso
like "the CD-ROM holds it" "$(virsh -c qemu:///system domblklist $(dom 1))" "$T/iso/live.iso"
check "eject" "$ATRIUM" guest eject g1
for bad in "../outside/secret.iso" "/etc/passwd" "link.iso" ".hidden.iso"; do
        SINCE=$(last_event_id)
        http POST /guests/g1/attach-iso "{\"media\":\"isos\",\"iso\":\"$bad\"}"
        is "ISO '$bad' refused" "$(jget .error.code)" "$([ "$bad" = link.iso ] && echo forbidden || echo invalid_value)"
        wait_for 5 event_seen command_refused h1 "$SINCE"; is "... with an event" "$?" 0
done

# ---- kill -9 the agent: the guest keeps running, and is reconciled when it is back ----
kill -9 "${APID[h1]}"; wait "${APID[h1]}" 2>/dev/null
wait_for 15 api_is /hosts/h1 .state down; is "host marked down after missed heartbeats" "$(jget .state)" down
is "the guest kept running" "$(domstate $(dom 1))" running
sqlite3 "$STATE/atrium.db" "UPDATE guests SET state = 'stopped', spice_port = 0 WHERE name = 'g1'"
SINCE=$(last_event_id)
start_agent h1
wait_for 30 api_is /hosts/h1 .state up; is "agent back: host up" "$(jget .state)" up
wait_for 10 api_is /guests/g1 .state running; is "reconciled: the record says running again" "$(jget .state)" running
is "reconciled: console port known again" "$(jget '.spice_port > 0')" true
wait_for 5 event_seen reconciled h1 "$SINCE"; is "reconciliation is an event" "$?" 0

# ---- kill the QEMU process: the manager marks the guest stopped, with an event ----
SINCE=$(last_event_id)
pkill -9 -f "guest=$(dom 1)," ; sleep 0.5
wait_for 20 api_is /guests/g1 .state stopped; is "QEMU killed: guest marked stopped" "$(jget .state)" stopped
wait_for 5 event_seen guest_stopped g1 "$SINCE"; is "... with an event" "$?" 0

# ---- lifecycle: start, reboot, reset, ACPI shutdown with timeout then destroy ----
check "start again" "$ATRIUM" guest start g1
check "reboot" "$ATRIUM" guest reboot g1
check "reset" "$ATRIUM" guest reset g1
http POST /guests/g1/stop '{"timeout":3}'
is "stop: ACPI shutdown then destroy after the timeout" "$(jget .state)" stopped
is "libvirt agrees" "$(domstate $(dom 1))" "shut off"
http POST /guests/g1/reboot ''; is "reboot of a stopped guest refused" "$(jget .error.code)" conflict
http POST /guests/g1/stop '{}'; is "stopping a stopped guest is harmless" "$CODE:$(jget .state)" "200:stopped"
http POST /guests/g1/stop '{"timeout":0}'; is "stop with a zero timeout refused" "$CODE" 400

# ---- bad guest specs ----
http POST /guests '{"name":"huge","volume":"vol","disk":"x.qcow2","ram_mb":99999999999}'
is "absurd memory refused" "$CODE" 400
http POST /guests '{"name":"many","volume":"vol","disk":"x.qcow2","cpus":100000}'
is "absurd CPU count refused" "$CODE" 400
"$ATRIUM" guest create --name esc --volume vol --disk ../../etc/shadow >/dev/null 2>&1
http POST /guests/esc/start ''
is "a disk path escaping the volume is refused" "$(jget .error.code)" invalid_value
is "... and nothing was defined" "$(domstate $(dom 2))" ""
"$ATRIUM" guest create --name far --volume outside --disk etc.qcow2 --disk_gb 1 >/dev/null 2>&1
http POST /guests/far/start ''
is "a volume outside the storage roots is refused" "$(jget .error.code)" forbidden
# A domain with an Atrium name that Atrium did not make is never touched.
cat >"$T/foreign.xml" <<XML
<domain type='qemu'><name>$(dom 4)</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
virsh -c qemu:///system define "$T/foreign.xml" >/dev/null
"$ATRIUM" guest create --name foreign --volume vol --disk f.qcow2 --disk_gb 1 >/dev/null
http POST /guests/foreign/start ''
is "a domain not made by Atrium is refused" "$(jget .error.code)" forbidden
is "... and left alone" "$(domstate $(dom 4))" "shut off"
virsh -c qemu:///system undefine $(dom 4) >/dev/null

# ---- templates from a stopped guest ----
cp "$IMAGE" "$T/vol/gold.qcow2"
"$ATRIUM" guest create --name gold --volume vol --disk gold.qcow2 --cpus 2 --ram_mb 512 >/dev/null
check "template from a stopped guest (version 1)" "$ATRIUM" template create --name deb --volume vol --from-guest gold
http GET /templates/deb
is "... version 1 with the guest's hardware" "$(jget '[.version, .cpus, .ram_mb] | map(tostring) | join(" ")')" "1 2 512"
is "its base image is read-only in the volume" "$(stat -c %a "$T/vol/tpl-deb-v1.qcow2" 2>&1)" 444
like "... a qcow2 copy of the guest's disk" "$(qemu-img info "$T/vol/tpl-deb-v1.qcow2" 2>&1)" "file format: qcow2"
check "update from the guest: version 2" "$ATRIUM" template update deb --from-guest gold
is "template at version 2" "$("$ATRIUM" --json template show deb | jq -r .version)" 2
is "versions listed" "$("$ATRIUM" --json template-version list --template deb | jq -r '[.items[].name] | join(",")')" "deb-v1,deb-v2"
http DELETE /template-versions/deb-v2 ''; is "the newest version cannot be deleted" "$(jget .error.code)" conflict
check "a version nobody uses is deleted" "$ATRIUM" template-version delete deb-v1
is "... with its image" "$(ls "$T/vol/tpl-deb-v1.qcow2" 2>/dev/null)" ""
tpl_rows() { sqlite3 "$STATE/atrium.db" "SELECT * FROM templates; SELECT * FROM template_versions"; }
check "template update again: version 3" "$ATRIUM" template update deb --from-guest gold
check "delete a template: its versions and images go" "$ATRIUM" template delete deb
is "... no version left" "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM template_versions WHERE name LIKE 'deb-v%'")" 0
is "... no image left" "$(ls "$T/vol" | grep -c '^tpl-deb')" 0
check "template again from the guest" "$ATRIUM" template create --name deb --volume vol --from-guest gold
SINCE_DB=$(tpl_rows)
http POST /templates '{"name":"deb","volume":"vol","from_guest":"gold"}'; is "template name taken: refused" "$(jget .error.code)" duplicate_name
http POST /templates '{"name":"deb9","volume":"vol","from_guest":"nobody"}'; is "template from an unknown guest refused" "$(jget .error.code)" bad_reference
is "... nothing made" "$(ls "$T/vol/" | grep -c deb9):$([ "$SINCE_DB" = "$(tpl_rows)" ] && echo same)" "0:same"

# ---- sealing and freezing in one step ----
http PATCH /templates/deb '{"from_guest":"gold","seal":true}'
is "--seal needs the guest running" "$(jget .error.code)" conflict
SINCE=$(last_event_id)
check "start the template's guest" "$ATRIUM" guest start gold
wait_for 120 event_seen guest_agent_ready gold "$SINCE"; is "... it is ready" "$?" 0
OUT=$("$ATRIUM" template update deb --from-guest gold --seal 2>&1)
is "template update --seal: sealed, shut down, frozen" "$?" 0
is "... a new version" "$("$ATRIUM" --json template show deb | jq -r .version)" 2
is "... the guest is stopped" "$("$ATRIUM" --json guest show gold | jq -r .state)" stopped
is "... with a seal event" "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE action = 'seal'")" 1

# ---- pools on this host: desktops cloned from the template, really booted ----
"$ATRIUM" user create --name bob --password bob-pass-1 >/dev/null
ddom() { echo "atrium-$INST-desktop-$(sqlite3 "$STATE/atrium.db" "SELECT id FROM desktops WHERE name = '$1'")"; }
# serial D CMD MARKER...: run CMD on desktop D's serial console, print the marker seen
serial() { local d=$1 c=$2; shift 2
        "$SRC/tests/integration/serial.py" "$(virsh -c qemu:///system ttyconsole "$(ddom "$d")")" 40 "$c" "$@"; }
has_marker() { serial "$1" "ls /root/marker >/dev/null 2>&1 && echo HAS-\$((6*7)) || echo NONE-\$((6*7))" HAS-42 NONE-42; }
ready_boots() { # D: the boot counter of D's last ready event since $SINCE
        http GET "/events?action=guest_agent_ready&object_name=$1&limit=1000"
        jq -r --argjson s "$SINCE" '[.items[] | select(.id > $s)][0].detail // "{}" | fromjson | .boots // empty' <<<"$BODY"; }
desk_screen() { # D: OCR of its console through a one-time password
        http POST "/desktops/$1/console" '{"protocol":"spice"}'
        rm -f "$T/d.ppm"
        spicy-screenshot -h 127.0.0.1 -p "$(jget .port)" -w "$(jget .password)" -o "$T/d.ppm" >/dev/null 2>&1 || return 1
        tesseract "$T/d.ppm" - --psm 6 2>/dev/null; }
screen_has() { desk_screen "$1" | tr -s ' ' | grep -q "$2"; }
running_desktop() { sqlite3 "$STATE/atrium.db" "SELECT d.name FROM desktops d JOIN pools p ON p.id = d.pool_id WHERE p.name = '$1' AND d.state = 'running' LIMIT 1"; }

SINCE=$(last_event_id)
OUT=$("$ATRIUM" pool create --name sl --template deb --size 2 --spares 1 --name_pattern 'sl{n}' --wait 2>&1)
is "a stateless pool of 2 with 1 spare" "$?" 0
has_running() { [ -n "$(running_desktop "$1")" ]; }
booted() { [ -n "$(ready_boots "$1")" ]; }
wait_for 60 has_running sl; S=$(running_desktop sl)
is "the spare is started" "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM desktops WHERE state = 'running'")" 1
like "... by libvirt" "$(domstate "$(ddom "$S")")" running
wait_for 120 booted "$S"; is "the spare boots: atrium-guest ready at boot 1" "$(ready_boots "$S")" 1
wait_for 60 screen_has "$S" "ATRIUM TEST DESKTOP"; is "its screen shows the desktop banner" "$?" 0
is "... named by set-hostname at first boot" "$(serial "$S" "[ \"\$(hostname)\" = $S ] && echo NAMED-\$((6*7))" NAMED-42)" NAMED-42
http POST /sessions "{\"user\":\"bob\",\"desktop\":\"$S\"}"; SES=$(jget .id)
is "bob has a session on it" "$CODE" 201
is "a file is written on the desktop" "$(serial "$S" "touch /root/marker && sync && echo DONE-\$((6*7))" DONE-42)" DONE-42
is "... and is there" "$(has_marker "$S")" HAS-42
SINCE=$(last_event_id)
http DELETE "/sessions/$SES"
is "the session ends" "$CODE" 204
wait_for 60 event_seen desktop_reset "$S" "$SINCE"; is "the desktop is reset" "$?" 0
wait_for 60 api_is "/desktops/$S" .state stopped
if [ "$(running_desktop sl)" != "$S" ]; then "$ATRIUM" desktop start "$S" >/dev/null 2>&1; fi
wait_for 120 booted "$S"; is "it boots from a fresh overlay: boot 1" "$(ready_boots "$S")" 1
wait_for 60 screen_has "$S" "boot: 1"; is "its screen shows boot 1" "$?" 0
is "... and the file is gone" "$(has_marker "$S")" NONE-42
OUT=$("$ATRIUM" pool show sl 2>&1)
like "pool show: the disk saved by overlays" "$OUT" "2 overlays; a full copy per desktop would take"
# The broker: bob, entitled, connects and gets connection data that opens the console.
"$ATRIUM" entitlement create --pool sl --user bob >/dev/null
"$ATRIUM" pool update sl --idle_timeout 40 >/dev/null
http POST /auth/login '{"name":"bob","password":"bob-pass-1"}' ""; BOBT=$(jget .token)
http POST /pools/sl/connect '{"protocol":"spice"}' "$BOBT"
is "bob connects to the stateless pool" "$CODE" 200
is "... and gets its started spare" "$(jget .desktop)" "$(running_desktop sl)"
VV=$(jget .vv)
vv() { sed -n "s/^$1=//p" <<<"$VV"; }
GWURL=$(cat "$STATE/gateway.url")
is "the .vv file's proxy is the gateway, with the ticket as its password" "$(vv proxy)" \
        "${GWURL/https:\/\//https://ticket:$(jget .ticket)@}"
# remote-viewer trusts the gateway through the system's store (the admin hands out its CA)
cp "$STATE/tls/cert.pem" "$CA_FILE" && update-ca-certificates >/dev/null 2>&1
vv_screen() { rm -f "$T/vv.ppm"; SPICE_PROXY="$(vv proxy)" spicy-screenshot -h "$(vv host)" -p "$(vv port)" -w "$(vv password)" -o "$T/vv.ppm" >/dev/null 2>&1 &&
        tesseract "$T/vv.ppm" - --psm 6 2>/dev/null | grep -q "ATRIUM TEST DESKTOP"; }
wait_for 30 vv_screen; is "a SPICE screenshot with exactly those parameters, through the gateway (CONNECT), shows the desktop" "$?" 0
BS=$(jget .session) BD=$(jget .desktop) BDID=$(jget .desktop_id)
vv_user() { vv_screen && tesseract "$T/vv.ppm" - --psm 6 2>/dev/null | tr -s ' ' | grep -q "user: bob"; }
wait_for 30 vv_user; is "... with the user's name on its banner (atrium-guest login)" "$?" 0
gw_tunnels() { [ "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE action = 'console_connected' AND object_id = $BDID AND object_name = '$BD' AND actor = 'gateway local' AND detail LIKE 'connect tunnel%'")" -ge 1 ]; }
wait_for 10 gw_tunnels; is "the gateway reported bob's SPICE tunnels to the manager" "$?" 0
# The browser: stock noVNC in Debian's chromium, through the gateway's WebSocket.
http POST /pools/sl/connect '{"protocol":"vnc"}' "$BOBT"
is "bob connects again, for a VNC console: the same desktop" "$CODE $(jget .desktop)" "200 $BD"
VV=$(jget .vv)
like "... with a browser console URL on the gateway" "$(jget .console_url)" "$GWURL/console?ticket=atk1."
# The portal in Debian's chromium: bob logs in, Connect opens his desktop with noVNC through
# the gateway's WebSocket, and the banner on the console's canvas carries his name.
if [ -e "$WEB/index.html" ]; then
        browser_run "$GWURL" "$SHOTS" connect bob bob-pass-1 "$T/novnc.png"
        browser_user() { tesseract "$T/novnc.png" - --psm 6 2>/dev/null | tr -s ' ' | grep -q "user: bob"; }
        browser_user; is "the console in the browser shows the desktop banner with bob's name" "$?" 0
else
        not_ok "the portal is built" "no $WEB/index.html: make web"
fi
ws_tunnel() { [ "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE action = 'console_connected' AND object_id = $BDID AND detail LIKE 'websocket tunnel%'")" -ge 1 ]; }
wait_for 10 ws_tunnel; is "... and the gateway reported that tunnel" "$?" 0
disconnected() { [ "$(sqlite3 "$STATE/atrium.db" "SELECT state FROM sessions WHERE id = $BS")" = disconnected ]; }
wait_for 10 disconnected; is "bob's session is disconnected once the last tunnel closed" "$?" 0
SINCE=$(last_event_id)
session_idle_end() { [ "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE id > $SINCE AND action = 'session_end' AND object_id = $BS AND detail LIKE 'idle for %'")" = 1 ]; }
wait_for 120 session_idle_end; is "the pool's idle timeout (40 s without input) ends bob's session" "$?" 0
bs_gone() { [ "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM sessions WHERE id = $BS")" = 0 ]; }
wait_for 120 bs_gone; is "... logoff, shutdown, session gone" "$?" 0
wait_for 60 event_seen desktop_reset "$BD" "$SINCE"; R=$?; is "... and the desktop is reset" "$R" 0
[ "$R" = 0 ] || sqlite3 "$STATE/atrium.db" "SELECT id, actor, action, object_name, detail FROM events WHERE id > $SINCE AND action NOT LIKE 'console%'" | sed 's/^/# /'

SINCE=$(last_event_id)
check "a persistent pool of 1" "$ATRIUM" pool create --name ps --template deb --size 1 --mode persistent --name_pattern 'ps{n}' --wait
P=ps1
check "assigned to bob" "$ATRIUM" desktop update "$P" --user bob
"$ATRIUM" entitlement create --pool ps --user bob >/dev/null
check "started" "$ATRIUM" desktop start "$P"
wait_for 120 booted "$P"; is "the persistent desktop boots (boot 1)" "$(ready_boots "$P")" 1
is "a file is written on it" "$(serial "$P" "touch /root/marker && sync && echo DONE-\$((6*7))" DONE-42)" DONE-42
SINCE=$(last_event_id)
check "it reboots (atrium-guest)" "$ATRIUM" desktop tools "$P" --op reboot
wait_for 120 booted "$P"; is "... boot 2" "$(ready_boots "$P")" 2
is "the file survived the reboot" "$(has_marker "$P")" HAS-42
SINCE=$(last_event_id)
check "recompose --yes --wait" "$ATRIUM" desktop recompose "$P" --yes --wait
is "still bob's" "$("$ATRIUM" --json desktop show "$P" | jq -r .user)" bob
http POST "/desktops/$P/connect" '{}' "$BOBT"
is "bob's connect starts his stopped desktop and waits for it to be ready" "$CODE" 200
like "... then answers with a ticket" "$(jget .ticket)" "atk1."
wait_for 120 booted "$P"; is "recomposed: boot 1" "$(ready_boots "$P")" 1
is "the file is gone after the recompose" "$(has_marker "$P")" NONE-42
check "delete the persistent pool (ending bob's session)" "$ATRIUM" pool delete ps --force --wait
check "delete the stateless pool (ending bob's session)" "$ATRIUM" pool delete sl --force --wait
is "no desktop domain left" "$(virsh -c qemu:///system list --all --name | grep -c "^atrium-$INST-desktop-")" 0
is "no overlay left" "$(ls "$T/vol" | grep -c "desktop-")" 0

# ---- maintenance ----
check "CLI host maintenance on" "$ATRIUM" host maintenance h1 on
http GET /hosts/h1; is "host in maintenance" "$(jget .state)" maintenance
"$ATRIUM" guest create --name g2 --volume vol --disk g2.qcow2 --disk_gb 1 --ram_mb 128 >/dev/null
G2=$("$ATRIUM" --json guest show g2 | jq -r .id)
http POST /guests/g2/start ''; is "no guest placed on a host in maintenance" "$CODE" 503
check "CLI host maintenance off" "$ATRIUM" host maintenance h1 off
http GET /hosts/h1; is "host up again" "$(jget .state)" up

# ---- an orphan domain is removed when its host comes back ----
check "start g2" "$ATRIUM" guest start g2
check "stop g2" "$ATRIUM" guest stop g2 --force
kill -9 "${APID[h1]}"; wait "${APID[h1]}" 2>/dev/null
wait_for 15 api_is /hosts/h1 .state down
check "delete g2 while its host is down" "$ATRIUM" guest delete g2
is "its domain is still on the host" "$(domstate $(dom $G2))" "shut off"
SINCE=$(last_event_id)
start_agent h1
wait_for 30 api_is /hosts/h1 .state up
wait_for 15 sh -c "! virsh -c qemu:///system domstate $(dom $G2)"; is "orphan domain removed on reconnect" "$?" 0
wait_for 5 event_seen orphan_removed $(dom $G2) "$SINCE"; is "... with an event" "$?" 0
is "a domain of another installation is left alone" "$(domstate atrium-ffffffff-guest-1)" "shut off"
check "delete g1 (undefined on its host)" "$ATRIUM" guest delete g1
is "g1's domain is gone" "$(domstate $(dom 1))" ""

# ---- remove the host: its agent's credential stops working; it can join again ----
like "a host still holding a guest is not removed" "$("$ATRIUM" host remove h1 2>&1)" "still used by 1 guest"
check "delete the template and its guest (the last things on h1)" sh -c "'$ATRIUM' template delete deb && '$ATRIUM' guest delete gold"
check "CLI host remove" "$ATRIUM" host remove h1
wait "${APID[h1]}"; RC=$?
is "the agent of a removed host stops with an error" "$RC" 1
like "... saying what to do" "$(cat "$T/h1.err")" "Join it again with a new token"
JT2=$("$ATRIUM" --json host join-token create | jq -r .token)
start_agent h1 --manager "$URL" --manager-fingerprint "$FP" --join-token "$JT2"
wait_for 30 api_is /hosts/h1 .state up; is "a removed host joins again" "$(jget .state)" up
kill "${APID[h1]}"; wait "${APID[h1]}" 2>/dev/null; unset 'APID[h1]'

# ---- the manager's side with a scripted agent (tests/integration/fake-agent.py) ----
"$ATRIUM" template create --name t1 --volume vol >/dev/null
"$ATRIUM" pool create --name p1 --template t1 --size 1 >/dev/null
"$ATRIUM" desktop create --name d1 --pool p1 >/dev/null
echo ann-pass-1 | "$ATRIUM" user create --name ann --password-stdin >/dev/null
"$ATRIUM" session create --user ann --desktop d1 --state disconnected >/dev/null
DID=$("$ATRIUM" --json desktop show d1 | jq -r .id)
http POST /join-tokens '{}'; JTF=$(jget .token)
http POST /agent/register "{\"join_token\":\"$JTF\",\"name\":\"fa\",\"address\":\"127.0.0.1\"}" ""
CRED=$(jget .credential)
is "a scripted agent joins" "$CODE" 201
OUT=$(python3 "$SRC/tests/integration/fake-agent.py" 127.0.0.1 "$PORT" "ath1.wrong" "$DID")
like "a wrong host credential is refused before the link opens" "$OUT" "status 401"
python3 "$SRC/tests/integration/fake-agent.py" 127.0.0.1 "$PORT" "$CRED" "$DID" >"$T/fake.out" 2>&1 &
FPID=$!
wait_for 10 api_is /desktops/d1 .state running; is "hello: a desktop the host runs is recorded running" "$(jget .state)" running
is "... on that host" "$(jget .host)" fa
wait_for 10 api_is /sessions/1 .state connected; is "console connected: its session is connected" "$(jget .state)" connected
wait_for 10 api_is /sessions/1 .state disconnected; is "console gone: its session is disconnected" "$(jget .state)" disconnected
http GET /hosts/fa; is "bad frames did not break the link (host up)" "$(jget .state)" up
"$ATRIUM" guest create --name gf --volume vol --disk gf.qcow2 >/dev/null
START=$(date +%s)
http POST /guests/gf/start '{"host":"fa"}' # the scripted agent never answers, then leaves
is "a command whose link closes fails then, not at the command timeout" \
        "$CODE:$(( $(date +%s) - START < 20 ))" "503:1"
like "... saying so" "$(jget .error.message)" "closed before it answered"
wait "$FPID"
like "the scripted agent played to the end" "$(cat "$T/fake.out")" "closed"
is "no event about another installation's domain" \
        "$(sqlite3 "$STATE/atrium.db" "SELECT count(*) FROM events WHERE object_name LIKE 'atrium-ffffffff%' OR detail LIKE '%ffffffff%'")" 0
wait_for 15 api_is /hosts/fa .state down; is "its link closed and heartbeats gone: host down" "$(jget .state)" down
"$ATRIUM" host remove fa >/dev/null 2>&1 || true

# ---- two hosts in two network namespaces, each with its own libvirt, one shared volume ----
net() { echo "10.$((200 + $1)).$(($$ % 250))"; }
mkdir -p "$T/shared"; chmod 755 "$T/shared"
cp "$IMAGE" "$T/shared/a.qcow2"; cp "$IMAGE" "$T/shared/b.qcow2"
"$ATRIUM" volume create --name shared --storage local --path "$T/shared" >/dev/null
for i in 1 2; do
        ns=atr-ns$i-$$
        ip netns add "$ns" && NETNS+=("$ns")
        # names and subnets from the test's pid: two runs at once do not meet
        ip link add "atr$$v$i" type veth peer name eth0 netns "$ns"
        ip addr add "$(net $i).1/24" dev "atr$$v$i"; ip link set "atr$$v$i" up
        ip -n "$ns" addr add "$(net $i).2/24" dev eth0
        ip -n "$ns" link set eth0 up; ip -n "$ns" link set lo up
        name=n$i
        mkdir -p "$T/$name-embed"
        cat >"$T/$name.conf" <<CONF
[daemon]
log_level = info
[agent]
libvirt_uri = qemu:///embed?root=$T/$name-embed
storage_roots = $T
name = $name
CONF
        jt=$("$ATRIUM" --json host join-token create | jq -r .token)
        ip netns exec "$ns" "$ATRIUMD" -c "$T/$name.conf" --state-dir "$T/$name" --role agent \
                --manager "https://$(net $i).1:$PORT" --manager-fingerprint "$FP" --join-token "$jt" \
                >"$T/$name.out" 2>"$T/$name.err" &
        APID[$name]=$!
done
wait_for 40 api_is /hosts/n1 .state up; is "namespace host n1 joins" "$(jget .state)" up
is "n1's consoles listen on its own address" "$(jget .address)" "$(net 1).2"
wait_for 40 api_is /hosts/n2 .state up; is "namespace host n2 joins" "$(jget .state)" up
"$ATRIUM" guest create --name ga --volume shared --disk a.qcow2 --ram_mb 256 >/dev/null
"$ATRIUM" guest create --name gb --volume shared --disk b.qcow2 --ram_mb 256 >/dev/null
http POST /guests/ga/start '{"host":"n1"}'; is "a guest runs on n1" "$(jget .state):$(jget .host)" running:n1
http POST /guests/gb/start '{"host":"n2"}'; is "a guest runs on n2" "$(jget .state):$(jget .host)" running:n2
http POST /guests/gb/console '{"protocol":"spice"}'; is "n2's console is on n2's address" "$(jget .host)" "$(net 2).2"
SINCE=$(last_event_id)
START=$(date +%s)
kill -9 "${APID[n2]}"; pkill -9 -f "qemu-system.*$T/n2-embed"
wait_for 15 api_is /hosts/n2 .state down; RC=$?
is "n2 (agent and QEMUs killed) is marked down within 15 s" "$RC:$(jget .state)" "0:down"
echo "# n2 marked down after $(( $(date +%s) - START )) s"
http GET /hosts/n1; is "n1 stays up" "$(jget .state)" up
http POST /guests/ga/stop '{"force":true}'; is "n1 still takes orders" "$(jget .state)" stopped

echo "1..$n"
[ "$failed" -eq 0 ]
