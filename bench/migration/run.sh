#!/bin/bash
# Live migration benchmark (issue 19), on the multi-host rig (tests/rig/rig.sh): 3 hosts, each
# its own namespaces and libvirt daemons (TLS with the certificates the manager issued at
# join), a real manager; the test desktop image with 256 MiB of RAM, QEMU under TCG.
#   1. idle: a running desktop migrated h1 -> h2, five times;
#   2. dirty: the same while its guest rewrites 32 MiB of memory in a loop;
#   3. drain: a host running N (default 10) desktops drained into maintenance.
# For each migration: the time the API's operation took, and QEMU's own figures from the
# destination (virsh domjobinfo --completed: total time, downtime, bytes sent). Beside them
# the physical bound (RAM size / the rig's bandwidth, measured here) and the published
# figures of oVirt's "Minimal downtime" policy (downtime 100 ms rising to 500 ms, 2
# migrations at once, auto-converge) and vSphere vMotion (switch-over "stun" under 1 s).
# Needs root and the image (make images).
# Usage: bench/migration/run.sh [BUILD_DIR]   (make bench; BENCH_DRAIN_DESKTOPS=N)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
N=${BENCH_DRAIN_DESKTOPS:-10}
IMAGE=$build/images/atrium-test-desktop.qcow2
. "$top/bench/lib.sh"
bench_rig migration 256 1
api POST /pools "{\"name\":\"one\",\"template\":\"deb\",\"mode\":\"persistent\",\"size\":1,\"spares\":1,\"name_pattern\":\"m{n}\",\"hosts\":\"h1\"}" >/dev/null
running() { [ "$(q "SELECT count(*) FROM desktops WHERE state = 'running' AND pool_id = (SELECT id FROM pools WHERE name = '$1')")" = "$2" ]; }
for _ in $(seq 1 600); do running one 1 && break; sleep 0.5; done
running one 1 || { echo "bench/migration: the desktop did not start" >&3; exit 1; }
api PATCH /pools/one '{"hosts":""}' >/dev/null
INST=$(q "SELECT value FROM settings WHERE key = 'installation'")
DOM=atrium-$INST-desktop-$(q "SELECT id FROM desktops WHERE name = 'm1'")
ready() { [ "$(q "SELECT count(*) FROM events WHERE action = 'guest_agent_ready' AND object_name = 'm1'")" -gt 0 ]; }
for _ in $(seq 1 300); do ready && break; sleep 0.5; done

# the rig's bandwidth between two hosts (through the bridge), the bound of a migration
BW=$("$top/tests/rig/rig.sh" exec "$R" 2 python3 -c "
import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('$RIG_NET.12', 45999)); s.listen(1)
c,_=s.accept(); n=0; t=time.time()
while True:
    b=c.recv(1<<20)
    if not b: break
    n+=len(b)
print(int(n/(time.time()-t)/(1<<20)))
" & sleep 0.5; "$top/tests/rig/rig.sh" exec "$R" 1 python3 -c "
import socket,time
c=socket.create_connection(('$RIG_NET.12', 45999)); b=b'x'*(1<<20); t=time.time()
while time.time()-t < 2: c.sendall(b)
c.close()
" ; wait)
echo "bench/migration: the test desktop (256 MiB RAM, TCG) between rig hosts; their link carries ${BW:-?} MiB/s (one TCP stream, no TLS): 256 MiB take $(awk -v b="${BW:-1}" 'BEGIN {printf "%.2f", 256 / b}') s at best"

# one migration of m1 to H: API time, then QEMU's figures on the destination
migrate() { # LABEL HOST
        local t0 t1 op info
        t0=$(date +%s%3N)
        op=$(api POST /desktops/m1/migrate "{\"to\":\"$2\"}" | jq -r .id)
        for _ in $(seq 1 1200); do [ "$(q "SELECT state FROM operations WHERE id = $op")" != running ] && break; sleep 0.1; done
        t1=$(date +%s%3N)
        info=$("$top/tests/rig/rig.sh" exec "$R" "${2#h}" virsh -c qemu:///system domjobinfo "$DOM" --completed 2>/dev/null)
        awk -v l="$1" -v s="$(q "SELECT state FROM operations WHERE id = $op")" -v ms=$((t1 - t0)) \
                -v it="$(q "SELECT iteration FROM operations WHERE id = $op")" '
                /^Time elapsed:/ && !e {e = $3} /^Total downtime:/ {d = $3}
                /^Memory processed:/ {m = $3 " " $4}
                END {printf "  %-6s %-5s  API %6.2f s   QEMU total %6s ms  downtime %5s ms  memory sent %s  passes %s\n",
                        l, s, ms / 1000, e, d, m, it}' <<<"$info"
}
echo "  kind    state  time (API: request to operation done; QEMU: its own job figures on the destination; passes: the last the source reported)"
for k in 1 2 3 4 5; do [ $((k % 2)) = 1 ] && migrate idle h2 || migrate idle h1; done
"$top/tests/integration/serial.py" "$("$top/tests/rig/rig.sh" exec "$R" "$(q "SELECT substr(h.name, 2) FROM desktops d JOIN hosts h ON h.id = d.host_id WHERE d.name = 'm1'")" virsh -c qemu:///system ttyconsole "$DOM")" 60 \
        "mkdir -p /run/dirty && mount -t tmpfs -o size=48m tmpfs /run/dirty; (while :; do dd if=/dev/urandom of=/run/dirty/x bs=1048576 count=32; done) >/dev/null 2>&1 & echo DIRTY-\$((6*7))" DIRTY-42 >/dev/null
sleep 5
H=$(q "SELECT h.name FROM desktops d JOIN hosts h ON h.id = d.host_id WHERE d.name = 'm1'")
for k in 1 2 3; do [ "$H" = h1 ] && H=h2 || H=h1; migrate dirty "$H"; done

# a drain: N desktops on h3, then h3 in maintenance with --drain
api POST /pools "{\"name\":\"many\",\"template\":\"deb\",\"mode\":\"persistent\",\"size\":$N,\"spares\":$N,\"name_pattern\":\"d{n}\",\"hosts\":\"h3\"}" >/dev/null
for _ in $(seq 1 1200); do running many "$N" && break; sleep 0.5; done
running many "$N" || { echo "bench/migration: the $N desktops did not all start on h3" >&3; exit 1; }
api PATCH /pools/many '{"hosts":""}' >/dev/null
t0=$(date +%s%3N)
op=$(api PUT /hosts/h3/maintenance '{"maintenance":true,"drain":true}' | jq -r .operation)
for _ in $(seq 1 6000); do [ "$(q "SELECT state FROM operations WHERE id = $op")" != running ] && break; sleep 0.1; done
t1=$(date +%s%3N)
echo "  drain  $(q "SELECT state FROM operations WHERE id = $op")   $N desktops off h3 in $(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f", ms / 1000}') s ($(q "SELECT message FROM operations WHERE id = $op"); manager.migrations_per_host = 2)"
echo "  peers (published): oVirt's Minimal downtime policy allows 100 ms of downtime rising to 500 ms, 2 migrations"
echo "                     at once, auto-converge; vSphere vMotion's switch-over (stun) is typically under 1 s"
