#!/bin/bash
# Host failure recovery on the multi-host rig (tests/rig/rig.sh): three hosts, each in its own
# network and mount namespace with its own libvirtd, virtlogd and virtlockd (lock_manager =
# "lockd", the lockspace on the shared directory), a real manager and gateway, real QEMU (TCG)
# running the test desktop image. A watcher checks the invariants every 100 ms all along.
#   crash:      kill -9 everything of a host: its persistent desktop (a file written on it) runs
#               elsewhere, the stateless pool is refilled and its session ended, a desktop whose
#               disk only that host sees is unavailable; the host comes back owning nothing stale
#   isolation:  a host's link down with its QEMU running: the lease refuses the start elsewhere
#               until the host fences itself; back, it destroys nothing that is not its own
#   freeze:     SIGSTOP an agent for 20 s: once thawed it does not fence (witnesses answer) and
#               its stale domain is removed by epoch
#   manager:    kill -9 the manager for 30 s: no agent fences, no desktop moves
#   bad input:  fence without --yes, fence of a down host, unsafe timings, no capacity left
#   TLS:        the libvirt certificates the manager issued at join: libvirtd to libvirtd
#   portal:     bob's browser console (chromium, noVNC through the gateway) says his desktop is
#               being restarted on another host while its host is cut off, then reconnects
#   migration:  live migration, its bad inputs, cancel, timeout, a destination lost, drains
#               (tests/integration/ha-migrate.sh, on the same rig)
# Output is TAP. Usage: test-ha.sh ATRIUMD ATRIUM IMAGE WEB_DIR [SHOTS]
set -u
ATRIUMD=$1 ATRIUM=$2 IMAGE=$3 WEB=${4:-} SHOTS=${5:-$(dirname "$1")/../meson-logs/screenshots}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
RIG_LIB=1 . "$SRC/tests/rig/rig.sh"
export ATRIUMD

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (namespaces, libvirt)"; exit 0; fi
if [ ! -f "$IMAGE" ]; then echo "1..0 # SKIP no test desktop image (make images)"; exit 0; fi
command -v virtlockd >/dev/null || { echo "1..0 # SKIP no virtlockd (libvirt-daemon)"; exit 0; }

T=$(mktemp -d /tmp/atrium-ha-XXXXXX)
chmod 755 "$T"
R=$T/rig STATE=$T/manager CONF=$T/manager.conf
mkdir -p "$R"
export XDG_CONFIG_HOME=$T/cli HOME=$T
MPID= WPID= VPID= XPID= G2PID=
CA_FILE=/usr/local/share/ca-certificates/atrium-test-ha-$$.crt # the gateway's, for remote-viewer

stop_all() {
        touch "$T/watch.stop"
        [ -n "$VPID$XPID$G2PID" ] && kill $VPID $XPID $G2PID 2>/dev/null
        if [ -f "$CA_FILE" ]; then rm -f "$CA_FILE"; update-ca-certificates --fresh >/dev/null 2>&1; fi
        [ -n "$WPID" ] && wait "$WPID" 2>/dev/null
        [ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
        rig_down "$R"
}
cleanup() { stop_all; rm -rf "$T"; }
trap cleanup EXIT
# On a failure, the story so far (set HA_KEEP=1 to keep the directory).
diag() {
        sqlite3 "$STATE/atrium.db" "SELECT id, actor, action, object_name, substr(detail, 1, 160) FROM events WHERE action NOT IN ('update', 'create', 'delete', 'login') ORDER BY id DESC LIMIT 25" 2>/dev/null | sed 's/^/# /'
}
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; [ "$failed" -le 3 ] && diag; }
[ -n "${HA_KEEP-}" ] && cleanup() { stop_all; echo "# kept $T"; }

q() { sqlite3 "$STATE/atrium.db" "$1"; }
last_event_id() { q "SELECT coalesce(max(id),0) FROM events"; }
events_since() { q "SELECT count(*) FROM events WHERE id > $1 AND action = '$2' AND object_name = '$3'"; }
event_seen() { [ "$(events_since "$1" "$2" "$3")" -gt 0 ]; }
hvirsh() { local i=$1; shift; rig_in "$R" "$i" virsh -c qemu:///system "$@"; }
hnum() { echo "${1#h}"; } # h2 -> 2
dhost() { q "SELECT coalesce(h.name, '') FROM desktops d LEFT JOIN hosts h ON h.id = d.host_id WHERE d.name = '$1'"; }
dstate() { q "SELECT state FROM desktops WHERE name = '$1'"; }
ddom() { echo "atrium-$INST-desktop-$(q "SELECT id FROM desktops WHERE name = '$1'")"; }
running_on() { # D H: D's row says running on H, and H's libvirt runs it
        [ "$(dstate "$1")" = running ] && [ "$(dhost "$1")" = "$2" ] &&
                [ "$(hvirsh "$(hnum "$2")" domstate "$(ddom "$1")" 2>/dev/null | head -1)" = running ]
}
running_elsewhere() { # D H: running on a host other than H
        local h
        h=$(dhost "$1")
        [ -n "$h" ] && [ "$h" != "$2" ] && running_on "$1" "$h"
}
host_state() { q "SELECT state FROM hosts WHERE name = '$1'"; }
is_state() { [ "$(host_state "$1")" = "$2" ]; }
qemu_alive() { rig_pids "$R" "$(hnum "$1")" | while read -r p; do grep -q qemu-system "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | grep -q .; }
our_domains() { hvirsh "$(hnum "$1")" list --all --name 2>/dev/null | grep "^atrium-$INST-" ; }
running_domains() { hvirsh "$(hnum "$1")" list --name 2>/dev/null | grep -c "^atrium-$INST-"; }
serial() { # D CMD MARKERS...: on D's serial console, wherever it runs
        local d=$1 c=$2 h
        shift 2
        h=$(hnum "$(dhost "$d")")
        "$SRC/tests/integration/serial.py" "$(hvirsh "$h" ttyconsole "$(ddom "$d")")" 60 "$c" "$@"
}
# D has booted since event SINCE (atrium-guest said ready): its shell is up on the serial line.
booted_since() { event_seen "$1" guest_agent_ready "$2"; }
has_marker() { wait_for 90 booted_since "$SINCE" "$1"; serial "$1" "ls /root/ha-marker >/dev/null 2>&1 && echo HAS-\$((6*7)) || echo NONE-\$((6*7))" HAS-42 NONE-42; }
since() { echo $(( $(date +%s) - $1 )); }

# ---- the rig, the manager, three hosts ----
if ! rig_up "$R" 3 >"$T/rig.out" 2>&1; then # the Makefile installs what it needs: a failure
        sed 's/^/# /' "$T/rig.out"
        not_ok "the rig starts"
        echo "1..$n"
        exit 1
fi
rig_env "$R"
ok "the rig: three hosts, each its own namespaces and libvirt daemons"
U1=$(hvirsh 1 capabilities | grep -m1 -o '<uuid>[^<]*'); U2=$(hvirsh 2 capabilities | grep -m1 -o '<uuid>[^<]*')
[ -n "$U1" ] && [ "$U1" != "$U2" ]; is "... with distinct host UUIDs" "$?" 0
like "... lock_manager = lockd on the shared lockspace" "$(rig_in "$R" 1 cat /etc/libvirt/qemu-lockd.conf)" "$RIG_SHARED/lockspace"
[ "$(readlink "/proc/$(rig_holder "$R" 1)/ns/mnt")" != "$(readlink "/proc/$(rig_holder "$R" 2)/ns/mnt")" ]
is "... and a mount namespace each (own /run/libvirt)" "$?" 0

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
reconcile_interval = 1
agent_command_timeout = 60
CONF
start_manager() {
        "$ATRIUMD" -c "$CONF" --state-dir "$STATE" >>"$T/manager.out" 2>>"$T/manager.err" &
        MPID=$!
}
start_manager
wait_for 15 test -s "$STATE/manager.url"
PORT=$(sed 's/.*://' "$STATE/manager.url")
sed -i "/^\[manager\]/,/^\[/ s/^listen = .*/listen = 0.0.0.0:$PORT/" "$CONF"
URL=https://127.0.0.1:$PORT API=$URL/api/v1 TOKEN=
AURL=https://$RIG_NET.1:$PORT # the agents' way to the manager, over the rig's bridge
INST=$(q "SELECT value FROM settings WHERE key = 'installation'")
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
is "CLI logs in" "$?" 0
FP=$("$ATRIUM" --json host join-token create | jq -r .manager_fingerprint)
rig_agent "$R" 1 "$AURL" "$FP" "$("$ATRIUM" --json host join-token create | jq -r .token)"
fence_said() { grep -q "self-fencing $2" "$R/h$1/agent.err"; }
wait_for 30 fence_said 1 off; is "the only host is told it never fences itself (no other could take over)" "$?" 0
for i in 2 3; do
        rig_agent "$R" "$i" "$AURL" "$FP" "$("$ATRIUM" --json host join-token create | jq -r .token)"
done
wait_for 30 fence_said 1 on; is "... and may once other hosts joined" "$?" 0
for i in 1 2 3; do wait_for 60 is_state "h$i" up; is "host h$i joins from its namespace" "$(host_state "h$i")" up; done

"$ATRIUM" storage create --name san >/dev/null
"$ATRIUM" volume create --name shared --storage san --path "$RIG_SHARED" >/dev/null
"$ATRIUM" volume create --name loc --storage san --path "$R/h1/local" >/dev/null
cp "$IMAGE" "$RIG_SHARED/gold.qcow2"; cp "$IMAGE" "$R/h1/local/lgold.qcow2"
chmod 644 "$RIG_SHARED/gold.qcow2" "$R/h1/local/lgold.qcow2"
check "a guest on the shared volume" "$ATRIUM" guest create --name gold --volume shared --disk gold.qcow2 --ram_mb 256
check "a template from it" "$ATRIUM" template create --name deb --volume shared --from-guest gold
check "a guest on h1's own disk" "$ATRIUM" guest create --name lgold --volume loc --disk lgold.qcow2 --ram_mb 256
check "a template from it (only h1 reaches it)" "$ATRIUM" template create --name ldeb --volume loc --from-guest lgold
for u in bob ann; do echo "$u-pass-1" | "$ATRIUM" user create --name "$u" --password-stdin >/dev/null; done
BOBT=$(curl -sk "$API/auth/login" -H 'Content-Type: application/json' -d '{"name":"bob","password":"bob-pass-1"}' | jq -r .token)

# Everything starts on h1 (the pools' host hint), then the hints are lifted: recovery may go
# to any host.
# The stateless pool first: its desktops have the lower ids, pp's ha_priority puts pp1 first.
check "a stateless pool of 2 with 2 spares" "$ATRIUM" pool create --name sl --template deb --size 2 --spares 2 --name_pattern 'sl{n}' --hosts h1 --wait
check "a persistent pool of 1" "$ATRIUM" pool create --name pp --template deb --size 1 --mode persistent --name_pattern 'pp{n}' --hosts h1 --ha_priority 10 --wait
check "a persistent pool on h1's own disk" "$ATRIUM" pool create --name lp --template ldeb --size 1 --mode persistent --name_pattern 'lp{n}' --hosts h1 --wait
"$ATRIUM" desktop update pp1 --user bob >/dev/null
"$ATRIUM" desktop update lp1 --user bob >/dev/null
for p in pp lp sl; do "$ATRIUM" entitlement create --pool "$p" --user bob >/dev/null; done
cp "$IMAGE" "$RIG_SHARED/vm1.qcow2"; chmod 644 "$RIG_SHARED/vm1.qcow2"
check "a guest on the shared volume" "$ATRIUM" guest create --name vm1 --volume shared --disk vm1.qcow2 --ram_mb 256
http POST /guests/vm1/start '{"host":"h1"}'; is "... runs on h1" "$CODE:$(jget .host)" 200:h1
check "pp1 starts" "$ATRIUM" desktop start pp1
check "lp1 starts" "$ATRIUM" desktop start lp1
sl_spares_on() { [ "$(q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id JOIN hosts h ON h.id = d.host_id WHERE p.name = 'sl' AND d.state = 'running' AND h.name = '$1'")" = 2 ]; }
wait_for 60 sl_spares_on h1; is "the stateless spares run on h1" "$?" 0
for p in pp sl; do "$ATRIUM" pool update "$p" --hosts '' >/dev/null; done
is "pp1 runs on h1" "$(dhost pp1):$(dstate pp1)" h1:running
wait_for 30 running_on lp1 h1; is "lp1 runs on h1" "$(dhost lp1):$(dstate lp1)" h1:running
is "it has a placement epoch" "$(q "SELECT epoch > 0 FROM desktops WHERE name = 'pp1'")" 1
like "... written in its domain's metadata" "$(hvirsh 1 metadata "$(ddom pp1)" https://atrium-vdi.org/xmlns/domain/1)" "epoch=\"$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")\""
http POST /pools/sl/connect '{}' "$BOBT"; is "bob connects to the stateless pool" "$CODE" 200
SLD=$(jget .desktop)
SINCE=0; wait_for 90 booted_since 0 pp1
is "a file is written on pp1 over its serial console" "$(serial pp1 "touch /root/ha-marker && sync && echo DONE-\$((6*7))" DONE-42)" DONE-42

python3 "$SRC/tests/integration/ha-watch.py" "$RIG_SHARED" "$STATE/atrium.db" "$T/watch.log" "$T/watch.stop" &
WPID=$!

# ---- bad input first: timings, fence without --yes ----
for bad in "self_fence_after = 5" "self_fence_after = 0
storage_lease = 90" "storage_lease = 20"; do
        printf '[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\n%s\n' "$bad" >"$T/unsafe.conf"
        OUT=$(timeout 20 "$ATRIUMD" -c "$T/unsafe.conf" --state-dir "$T/unsafe" 2>&1); RC=$?
        is "unsafe timings refused at start ($(tr '\n' ' ' <<<"$bad"))" "$RC" 1
        like "... saying why" "$OUT" "unsafe host timings"
done
OUT=$("$ATRIUM" host fence h3 2>&1); RC=$?
is "host fence without --yes is refused" "$RC" 1
like "... saying what it does" "$OUT" "Add --yes"
http POST /hosts/h3/fence '{}'; is "POST /hosts/h3/fence without yes: 400" "$CODE" 400
is "... h3 still up" "$(host_state h3)" up

# ---- crash: kill -9 h1's agent, libvirtd and QEMUs together ----
SINCE=$(last_event_id)
T0=$(date +%s)
rig_crash "$R" 1; is "h1's processes are all gone" "$?" 0
wait_for 20 is_state h1 down; is "h1 is marked down" "$(host_state h1)" down
echo "# crash: down after $(since "$T0") s"
wait_for 40 running_elsewhere pp1 h1; RC=$?
is "pp1 runs on another host" "$RC" 0
echo "# crash: pp1 running on $(dhost pp1) after $(since "$T0") s"
is "... with an event saying so" "$(events_since "$SINCE" desktop_recovered pp1)" 1
is "... recovered first: its pool's ha_priority is the highest" \
        "$(q "SELECT object_name FROM events WHERE id > $SINCE AND action IN ('desktop_recovering', 'desktop_reset', 'desktop_unavailable') ORDER BY id LIMIT 1")" pp1
like "... and its row telling the story" "$(q "SELECT recovery FROM desktops WHERE name = 'pp1'")" "after h1 went down"
is "the file written before the crash is there" "$(has_marker pp1)" HAS-42
guest_elsewhere() { local h; h=$(q "SELECT h.name FROM guests g JOIN hosts h ON h.id = g.host_id WHERE g.name = 'vm1' AND g.state = 'running'"); [ -n "$h" ] && [ "$h" != h1 ] && [ "$(hvirsh "$(hnum "$h")" domstate "atrium-$INST-guest-$(q "SELECT id FROM guests WHERE name = 'vm1'")" 2>/dev/null | head -1)" = running ]; }
wait_for 40 guest_elsewhere; is "the guest vm1 runs on another host too" "$?" 0
is "... with an event" "$(events_since "$SINCE" guest_recovered vm1)" 1
sl_back() { [ "$(q "SELECT count(*) FROM desktops d JOIN pools p ON p.id = d.pool_id JOIN hosts h ON h.id = d.host_id WHERE p.name = 'sl' AND d.state = 'running' AND h.name != 'h1'")" = 2 ]; }
wait_for 60 sl_back; is "the stateless pool is back at size, both spares started elsewhere" "$?" 0
is "bob's stateless session was ended" "$(q "SELECT count(*) FROM sessions s JOIN desktops d ON d.id = s.desktop_id WHERE d.name = '$SLD'")" 0
like "... with an event saying why" "$(q "SELECT detail FROM events WHERE id > $SINCE AND action = 'session_end' AND object_name = '$SLD'")" "its host h1 went down"
wait_for 10 sh -c "[ \"\$(sqlite3 '$STATE/atrium.db' \"SELECT state FROM desktops WHERE name = 'lp1'\")\" = unavailable ]"
is "lp1, whose disk only h1 sees, is unavailable" "$(dstate lp1)" unavailable
like "... saying why" "$(q "SELECT detail FROM events WHERE id > $SINCE AND action = 'desktop_unavailable' AND object_name = 'lp1'")" "no other host reaches its disk"
is "no other desktop row points at the dead host" "$(q "SELECT count(*) FROM desktops d JOIN hosts h ON h.id = d.host_id WHERE h.name = 'h1' AND d.name != 'lp1'")" 0
recovery_done() { http GET /hosts/h1; case $(jget .recovery) in done*) return 0;; esac; return 1; }
wait_for 30 recovery_done; like "GET /hosts/h1 tells the recovery: done, what is back" "$(jget .recovery)" "back on other hosts, 1 unavailable"
http POST /desktops/lp1/connect '{}' "$BOBT"; like "connecting to the unavailable desktop says why" "$(jget .error.message)" "unavailable"
# h1 returns: its libvirt and agent start again; it finds its old domains stale.
SINCE=$(last_event_id)
rig_libvirt "$R" 1 >/dev/null
rig_agent "$R" 1 "$AURL" "$FP" -
wait_for 60 is_state h1 up; is "h1 comes back up" "$(host_state h1)" up
stale_gone() { ! our_domains h1 | grep -qx "$(ddom pp1)"; }
wait_for 30 stale_gone; is "its stale domain of pp1 is removed" "$?" 0
is "... with an event" "$(events_since "$SINCE" stale_domain_removed pp1)" 1
is "h1 runs no desktop of its own after its return" "$(running_domains h1)" 0
wait_for 20 sh -c "[ \"\$(sqlite3 '$STATE/atrium.db' \"SELECT state FROM desktops WHERE name = 'lp1'\")\" = stopped ]"
is "lp1 is stopped again (its disk is back), not recreated" "$(dstate lp1)" stopped

# ---- isolation: pp1's host cut off from the network, its QEMU running ----
# bob has pp1's console open in the browser meanwhile.
BPID=
if [ -e "$WEB/index.html" ]; then
        mkdir -p "$SHOTS"
        rm -f "$T/browser.ready"
        (cd "$SRC/tests/browser" && timeout 400 node portal.mjs recover "$(cat "$STATE/gateway.url")" "$SHOTS" \
                bob bob-pass-1 "$(q "SELECT id FROM desktops WHERE name = 'pp1'")" "$T/browser.ready" >"$T/browser.out" 2>&1) &
        BPID=$!
        wait_for 150 test -s "$T/browser.ready"; is "bob's browser console of pp1 is open" "$?" 0
else
        not_ok "the portal is built" "no $WEB/index.html: make web"
fi
X=$(dhost pp1)
SINCE=$(last_event_id)
T0=$(date +%s)
rig_isolate "$R" "$(hnum "$X")"
wait_for 20 is_state "$X" down; is "the isolated host $X is marked down" "$(host_state "$X")" down
echo "# isolation: down after $(since "$T0") s"
lease_refused() { event_seen "$SINCE" recovery_attempt pp1; }
wait_for 20 lease_refused; is "a start elsewhere is refused while its QEMU lives" "$?" 0
like "... by the disk's lease" "$(q "SELECT detail FROM events WHERE id > $SINCE AND action = 'recovery_attempt' AND object_name = 'pp1' LIMIT 1")" "lease busy"
qemu_alive "$X"; is "... that QEMU still runs, cut off" "$?" 0
wait_for 40 running_elsewhere pp1 "$X"; RC=$?
is "after $X fenced itself, pp1 runs elsewhere" "$RC" 0
echo "# isolation: pp1 running on $(dhost pp1) after $(since "$T0") s"
fenced_log() { grep -q "fenced itself" "$R/h$(hnum "$X")/agent.err"; }
wait_for 20 fenced_log; is "$X's agent says it fenced itself" "$?" 0
is "the file is still there" "$(has_marker pp1)" HAS-42
declare -A BEFORE
for h in h1 h2 h3; do [ "$h" = "$X" ] || BEFORE[$h]=$(running_domains "$h"); done
SINCE=$(last_event_id)
rig_rejoin "$R" "$(hnum "$X")"
wait_for 40 is_state "$X" up; is "$X back on the network is up" "$(host_state "$X")" up
wait_for 10 event_seen "$SINCE" host_self_fenced "$X"; is "... saying it fenced itself" "$?" 0
wait_for 20 sh -c "! '$SRC/tests/rig/rig.sh' exec '$R' $(hnum "$X") virsh -c qemu:///system list --all --name | grep -qx '$(ddom pp1)'"
is "... its stale domain of pp1 removed" "$?" 0
is "... it resumed nothing" "$(running_domains "$X")" 0
for h in "${!BEFORE[@]}"; do is "$h's running desktops untouched" "$(running_domains "$h")" "${BEFORE[$h]}"; done
is "pp1 still runs where it went" "$(dstate pp1)" running
if [ -n "$BPID" ]; then
        wait "$BPID"
        tap_relay "portal: " <"$T/browser.out"
fi

# ---- freeze: pp1's agent stopped for 20 s (its QEMU runs on) ----
Y=$(dhost pp1)
YP=$(cat "$R/h$(hnum "$Y")/agent.pid")
SINCE=$(last_event_id)
kill -STOP "$YP"
STOPPED=$(date +%s)
wait_for 20 is_state "$Y" down; is "the frozen host $Y is marked down" "$(host_state "$Y")" down
wait_for 20 lease_refused; is "the start elsewhere is refused by the lease meanwhile" "$?" 0
while [ $(( $(date +%s) - STOPPED )) -lt 20 ]; do sleep 0.5; done # frozen 20 s in all
kill -CONT "$YP"
running_somewhere() { [ -n "$(dhost "$1")" ] && running_on "$1" "$(dhost "$1")"; }
wait_for 40 running_somewhere pp1; is "thawed, its stale domain goes by epoch; pp1 runs" "$?" 0
like "... where its recovery was placed, not on the frozen host's old domain" "$(q "SELECT detail FROM events WHERE id > $SINCE AND action = 'desktop_recovered' AND object_name = 'pp1'")" "restarted on"
is "... a stale domain removed on $Y" "$(q "SELECT count(*) FROM events WHERE id > $SINCE AND action = 'stale_domain_removed' AND object_name = 'pp1' AND actor = 'host:$Y'")" 1
like "$Y did not fence: its witnesses answered" "$(cat "$R/h$(hnum "$Y")/agent.err")" "not fencing"
is "... it runs none of pp1" "$(hvirsh "$(hnum "$Y")" domstate "$(ddom pp1)" 2>/dev/null | head -1)" ""
is "the file is still there" "$(has_marker pp1)" HAS-42

# ---- the manager alone down for 30 s: nothing moves ----
Z=$(dhost pp1)
EPOCH=$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")
sed -i 's/^startup_grace = 0$/startup_grace = 30/' "$CONF"
for i in 1 2 3; do echo "$i $(grep -c 'fenced itself' "$R/h$i/agent.err")"; done >"$T/fences.before"
kill -9 "$MPID"; wait "$MPID" 2>/dev/null
sleep 30
qemu_alive "$Z"; is "manager down 30 s: pp1's QEMU still runs on $Z" "$?" 0
for i in 1 2 3; do echo "$i $(grep -c 'fenced itself' "$R/h$i/agent.err")"; done >"$T/fences.after"
is "... no agent fenced itself" "$(cat "$T/fences.after")" "$(cat "$T/fences.before")"
SINCE=$(last_event_id)
start_manager
wait_for 15 test -S "$STATE/api.sock"
for h in h1 h2 h3; do wait_for 40 is_state "$h" up; is "$h up again with the manager" "$(host_state "$h")" up; done
sleep 3
is "pp1 did not move" "$(dhost pp1):$(dstate pp1):$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")" "$Z:running:$EPOCH"
is "... no recovery began" "$(q "SELECT count(*) FROM events WHERE id > $SINCE AND action IN ('desktop_recovering', 'host_down')")" 0

# ---- no capacity left: recovery waits, nothing half-done ----
for h in h1 h2 h3; do [ "$h" = "$Z" ] || "$ATRIUM" host maintenance "$h" on >/dev/null; done
SINCE=$(last_event_id)
check "host fence $Z --yes (an admin powered it off)" "$ATRIUM" host fence "$Z" --yes
is "... it is down at once" "$(host_state "$Z")" down
is "... an event by the admin" "$(q "SELECT actor FROM events WHERE id > $SINCE AND action = 'host_fenced'")" admin
http POST "/hosts/$Z/fence" '{"yes":true}'; is "fencing a host already down: 409" "$CODE" 409
rig_crash "$R" "$(hnum "$Z")"
wait_for 15 event_seen "$SINCE" recovery_waiting pp1; is "no host has room: the recovery waits, with an event" "$?" 0
is "... pp1 untouched meanwhile (still placed on $Z, same epoch)" "$(dhost pp1):$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")" "$Z:$EPOCH"
for h in h1 h2 h3; do [ "$h" = "$Z" ] || "$ATRIUM" host maintenance "$h" off >/dev/null; done
wait_for 40 running_elsewhere pp1 "$Z"; is "room again: pp1 runs elsewhere" "$?" 0
is "the file is still there" "$(has_marker pp1)" HAS-42

# ---- libvirt TLS between hosts, from the certificates the manager issued at join ----
AB=()
for h in h1 h2 h3; do [ "$h" = "$Z" ] || AB+=("$(hnum "$h")"); done
A=${AB[0]} B=${AB[1]}
PA=$R/h$A/state/pki PB=$R/h$B/state/pki
openssl verify -CAfile "$PA/cacert.pem" "$PB/servercert.pem" >/dev/null 2>&1
is "h$B's libvirt certificate from its join verifies against the hosts' CA" "$?" 0
like "... names its address" "$(openssl x509 -in "$PB/servercert.pem" -noout -ext subjectAltName 2>/dev/null)" "IP Address:$RIG_NET.$((10 + B))"
is "... its key stays on the host (0600)" "$(stat -c %a "$PB/serverkey.pem")" 600
is "... the hosts' CA key stays with the manager (0600)" "$(stat -c %a "$STATE/tls/hosts-ca-key.pem")" 600
rig_tls "$R" "$A" "$PA" && rig_tls "$R" "$B" "$PB"; is "h$A's and h$B's libvirtd listen for TLS with them" "$?" 0
like "h$A reaches h$B's libvirtd over TLS (qemu+tls, no manual PKI step)" \
        "$(rig_in "$R" "$A" virsh -c "qemu+tls://$RIG_NET.$((10 + B))/system?pkipath=$PA" version 2>&1)" "Running hypervisor"
mkdir -p "$T/rogue"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue/clientkey.pem" \
        -out "$T/rogue/clientcert.pem" -subj /CN=rogue -days 1 >/dev/null 2>&1
cp "$PA/cacert.pem" "$T/rogue/"
OUT=$(rig_in "$R" "$A" virsh -c "qemu+tls://$RIG_NET.$((10 + B))/system?pkipath=$T/rogue" version 2>&1); RC=$?
is "a client certificate not from the hosts' CA is refused" "$RC" 1
for i in "$A" "$B"; do rig_in "$R" "$i" virsh -c qemu:///system list --name >/dev/null 2>&1; done
wait_for 20 is_state "h$A" up; is "the hosts stay up through their libvirtd restart" "$(host_state "h$A"):$(host_state "h$B")" up:up

# ---- the invariants held all along ----
touch "$T/watch.stop"; wait "$WPID"; WPID=
like "the watcher sampled all along" "$(tail -1 "$T/watch.log")" "samples"
[ "$(tail -1 "$T/watch.log" | awk '{print $2}')" -gt 500 ]; is "... every 100 ms (more than 500 samples)" "$?" 0
is "never two QEMUs writing one disk, never a desktop with two users" "$(tail -1 "$T/watch.log" | awk '{print $4}')" 0
grep -v '^samples' "$T/watch.log" | head -5 | sed 's/^/# /'

# ---- live migration and drains on the same rig (ha-migrate.sh): $Z back, every libvirtd on TLS
rig_libvirt "$R" "$(hnum "$Z")" >/dev/null
rig_tls "$R" "$(hnum "$Z")" "$R/h$(hnum "$Z")/state/pki"
rig_agent "$R" "$(hnum "$Z")" "$AURL" "$FP" -
wait_for 60 is_state "$Z" up; is "$Z is back for the migrations, its libvirtd on TLS" "$(host_state "$Z")" up
. "$SRC/tests/integration/ha-migrate.sh"

echo "1..$n"
[ "$failed" -eq 0 ]
