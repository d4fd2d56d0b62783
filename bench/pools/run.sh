#!/bin/bash
# Pool benchmark (issue: templates and pools). Real atriumd manager and agent on one host:
#   1. provision a pool of N (default 1,000) desktops: qcow2 overlays by qemu-img, libvirt
#      definitions, database rows; no boot. Time from the API call to the pool's operation
#      done, per desktop, and bytes on disk; against full clones (what a pool without overlays
#      does: a full copy of the base per desktop), measured in the same run on 20 desktops;
#   2. reset 100 stateless desktops whose sessions end (domain off, overlay replaced, domain
#      redefined), excluding guest shutdown and boot; and one reset alone.
# libvirt: the system libvirtd (qemu:///system, domains defined for real, never started) when
# it runs or can be started as root; else the test driver (BENCH_LIBVIRT=test forces it).
# The base image is the test desktop image when it is built (11 MiB of data), else empty.
# Usage: bench/pools/run.sh [BUILD_DIR]   (make bench)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
N=${BENCH_DESKTOPS:-1000}
T=$(mktemp -d /tmp/atrium-bench-pools-XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        if [ "$uri" = qemu:///system ]; then
                for d in $(virsh -c qemu:///system list --all --name 2>/dev/null | grep "^atrium-$INST-desktop-" || true); do
                        virsh -c qemu:///system undefine "$d" >/dev/null 2>&1 || true
                done
        fi
        rm -rf "$T"
}
uri=test:///default INST=none
trap cleanup EXIT
exec 3>&2 2>/dev/null # no "Killed" lines from bash at the end

if [ "${BENCH_LIBVIRT:-}" != test ] && [ "$(id -u)" = 0 ] && "$top/scripts/libvirt-up.sh" >/dev/null 2>&1; then
        uri=qemu:///system
fi

now_ms() { date +%s%3N; }
cpu_s() { # PID: CPU seconds used so far (user + system), children waited for included
        awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0
}
calc() { awk "BEGIN { print $1 }"; }
q() { sqlite3 "$T/m/atrium.db" "$1"; }
. "$top/bench/lib.sh"
op_wait() { # ID: until the operation ends; prints its state
        local s
        for _ in $(seq 1 6000); do
                s=$(api GET "/operations/$1" | jq -r .state)
                [ "$s" != running ] && { echo "$s"; return; }
                sleep 0.05
        done
        echo timeout
}

bench_manager 'heartbeat_interval = 1\nreconcile_interval = 1\nprovision_parallel = 32\n'
INST=$(q "SELECT value FROM settings WHERE key = 'installation'")
mkdir -p "$T/vol"
chmod 755 "$T/vol"
api POST /storages '{"name":"local"}' >/dev/null
api POST /volumes "{\"name\":\"vol\",\"storage\":\"local\",\"path\":\"$T/vol\"}" >/dev/null
JT=$(api POST /join-tokens '{}')
printf '[daemon]\nlog_level = warning\n[agent]\nname = bench\nlibvirt_uri = %s\nstorage_roots = %s\naddress = 127.0.0.1\nworkers = 4\n' "$uri" "$T" >"$T/a.conf"
"$build/src/atriumd" -c "$T/a.conf" --state-dir "$T/a" --role agent --manager "$URL" \
        --join-token "$(jq -r .token <<<"$JT")" >/dev/null 2>"$T/a.err" &
APID=$!
PIDS+=($APID)
for _ in $(seq 1 300); do [ "$(api GET /hosts/bench | jq -r .state)" = up ] && break; sleep 0.1; done

image=$build/images/atrium-test-desktop.qcow2
if [ -f "$image" ]; then cp "$image" "$T/vol/gold.qcow2"; else qemu-img create -q -f qcow2 "$T/vol/gold.qcow2" 1G; fi
api POST /guests '{"name":"g0","volume":"vol","disk":"gold.qcow2","ram_mb":256}' >/dev/null
api POST /templates '{"name":"tpl","volume":"vol","from_guest":"g0"}' >/dev/null
base_bytes=$(( $(stat -c %b "$T/vol/tpl-tpl-v1.qcow2") * 512 ))

echo "== 1. provision a pool of $N desktops on one host (libvirt: $uri; no boot)"
LPID=$(pgrep -x libvirtd | head -1 || true)
c_m=$(cpu_s "$MPID") c_a=$(cpu_s "$APID") c_l=$( [ -n "$LPID" ] && [ "$uri" = qemu:///system ] && cpu_s "$LPID" || echo 0)
t0=$(now_ms)
op=$(api POST /pools "{\"name\":\"bench\",\"template\":\"tpl\",\"size\":$N,\"spares\":0}" | jq -r .operation)
state=$(op_wait "$op")
t1=$(now_ms)
made=$(q "SELECT count(*) FROM desktops WHERE state = 'stopped'")
overlay_bytes=$(find "$T/vol" -name "atrium-$INST-desktop-*.qcow2" -printf '%b\n' | awk '{s += $1 * 512} END {print s + 0}')
domains=$(api GET /hosts/bench/domains | jq '[.domains[] | select(.domain | contains("-desktop-"))] | length')
total_ms=$((t1 - t0))
echo "operation $state: $made desktops, $domains libvirt domains, $(ls "$T/vol" | grep -c desktop-) overlays"
printf 'CPU seconds: manager %.2f, agent %.2f, libvirtd %.2f\n' \
        "$(calc "$(cpu_s "$MPID") - $c_m")" "$(calc "$(cpu_s "$APID") - $c_a")" \
        "$( [ "$c_l" != 0 ] && calc "$(cpu_s "$LPID") - $c_l" || echo 0)"
printf 'atrium   : %d desktops in %.2f s = %.1f ms per desktop; overlays %.1f MiB on disk (%.0f KiB each)\n' \
        "$made" "$(calc "$total_ms / 1000")" "$(calc "$total_ms / $made")" \
        "$(calc "$overlay_bytes / 1048576")" "$(calc "$overlay_bytes / $made / 1024")"

# Full clones, same run: a full copy of the base per desktop (qemu-img convert), 20 of them.
mkdir -p "$T/full"
t0=$(now_ms)
for i in $(seq 1 20); do qemu-img convert -O qcow2 "$T/vol/tpl-tpl-v1.qcow2" "$T/full/d$i.qcow2"; done
t1=$(now_ms)
full_bytes=$(find "$T/full" -name '*.qcow2' -printf '%b\n' | awk '{s += $1 * 512} END {print s}')
printf 'full copy: %.1f ms per desktop (qemu-img convert of the %.1f MiB base), %.1f MiB per desktop -> %.2f GiB for %d\n' \
        "$(calc "($t1 - $t0) / 20")" "$(calc "$base_bytes / 1048576")" \
        "$(calc "$full_bytes / 20 / 1048576")" "$(calc "$full_bytes / 20 * $N / 1073741824")" "$N"
echo "quoted peers: VMware instant clones about 1 clone/s; a Nutanix test 1.4 min per 100 desktops (840 ms each)"
rm -rf "$T/full"

echo
echo "== 2. reset 100 stateless desktops whose session ended (no guest shutdown, no boot)"
api POST /users '{"name":"u","password":"bench-pass-1"}' >/dev/null
ids=$(q "SELECT name FROM desktops ORDER BY id LIMIT 101")
sessions=()
for d in $ids; do sessions+=("$(api POST /sessions "{\"user\":\"u\",\"desktop\":\"$d\"}" | jq -r .id)"); done
resets() { q "SELECT count(*) FROM events WHERE action = 'desktop_reset'"; }
clean() { q "SELECT count(*) FROM desktops WHERE state = 'stopped' AND dirty = 0"; }
# One alone first.
t0=$(now_ms)
api DELETE "/sessions/${sessions[0]}" >/dev/null
for _ in $(seq 1 2000); do [ "$(clean)" = "$((N - 100))" ] && break; sleep 0.01; done
t1=$(now_ms)
printf 'one reset, session end to a fresh stopped desktop: %d ms (includes the reconciler wake-up)\n' "$((t1 - t0))"
urls=()
for s in "${sessions[@]:1}"; do urls+=("$URL/api/v1/sessions/$s"); done
t0=$(now_ms)
curl -sk -X DELETE -H "Authorization: Bearer $TOK" "${urls[@]}" >/dev/null # one connection
t_sent=$(now_ms)
for _ in $(seq 1 6000); do [ "$(clean)" = "$N" ] && break; sleep 0.02; done
t1=$(now_ms)
printf '100 resets: %.2f s from the first session end (ending the sessions took %.2f s) = %.1f ms per desktop; %d reset events\n' \
        "$(calc "($t1 - $t0) / 1000")" "$(calc "($t_sent - $t0) / 1000")" \
        "$(calc "($t1 - $t0) / 100")" "$(resets)"
echo "targets: 1,000 desktops <= 10 s; reset <= 50 ms each"

echo
echo "== cleanup: delete the pool"
t0=$(now_ms)
op=$(api DELETE /pools/bench | jq -r .operation)
state=$(op_wait "$op")
printf 'pool delete %s in %.2f s (%d overlays left)\n' "$state" "$(calc "($(now_ms) - $t0) / 1000")" \
        "$(ls "$T/vol" | grep -c desktop- || true)"
