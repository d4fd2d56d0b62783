#!/bin/bash
# Agent benchmark (issue: host agent). One agent with N (default 1,000) domains on libvirt's
# test driver:
#   1. bench-agent: the full inventory and the heartbeat figures with the agent's model (one
#      loop + a bounded worker pool), against VDSM's thread-per-VM model, same run;
#   2. end to end, real atriumd processes: the manager with N guest records, the agent joining
#      with N domains: time from the agent's hello to the manager's reconciled event (every
#      record updated), and the agent's CPU, memory and threads over 30 s of 1 s heartbeats.
# Usage: bench/agent/run.sh [BUILD_DIR]   (make bench)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
N=${BENCH_DOMAINS:-1000}
T=$(mktemp -d /tmp/atrium-bench-agent-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT

# node.xml for libvirt's test driver: N running domains of installation $1
gen_node() {
        echo "<node>"
        for i in $(seq 1 "$N"); do
                echo "<domain type='test'><name>atrium-$1-guest-$i</name><metadata><atrium:domain xmlns:atrium='https://atrium-vdi.org/xmlns/domain/1' version='1'/></metadata><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
        done
        echo "</node>"
}
node=$T/node.xml
gen_node 0badc0de >"$node"

echo "== 1. libvirt side, $N domains (bench-agent, 10 s of the thread-per-VM model)"
"$build/src/bench-agent" "$node" 0badc0de 10

echo
echo "== 2. end to end: manager + agent processes, $N guests"
printf '[daemon]\nlog_level = info\n[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\ninitial_admin_password = bench-pass-1\nheartbeat_interval = 1\n' >"$T/m.conf"
"$build/src/atriumd" -c "$T/m.conf" --state-dir "$T/m" >/dev/null 2>"$T/m.err" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/m/manager.url" ] && break; sleep 0.1; done
URL=$(cat "$T/m/manager.url")
node=$T/node-e2e.xml
gen_node "$(sqlite3 "$T/m/atrium.db" "SELECT value FROM settings WHERE key = 'installation'")" >"$node"
sqlite3 "$T/m/atrium.db" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO guests (id, name, state, created_at, updated_at)
SELECT i, 'g' || i, 'stopped', 'now', 'now' FROM n;
COMMIT;
SQL
TOK=$(curl -sk "$URL/api/v1/auth/login" -H 'Content-Type: application/json' -d '{"name":"admin","password":"bench-pass-1"}' | jq -r .token)
JT=$(curl -sk -X POST "$URL/api/v1/join-tokens" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' -d '{}')
printf '[daemon]\nlog_level = info\n[agent]\nname = bench\nlibvirt_uri = test://%s\nstorage_roots = %s\naddress = 127.0.0.1\n' "$node" "$T" >"$T/a.conf"
"$build/src/atriumd" -c "$T/a.conf" --state-dir "$T/a" --role agent --manager "$URL" \
        --manager-fingerprint "$(jq -r .manager_fingerprint <<<"$JT")" --join-token "$(jq -r .token <<<"$JT")" \
        >/dev/null 2>"$T/a.err" &
APID=$!
PIDS+=($APID)
for _ in $(seq 1 300); do
        [ "$(sqlite3 "$T/m/atrium.db" "SELECT count(*) FROM events WHERE action = 'reconciled'")" -gt 0 ] && break
        sleep 0.1
done
python3 - "$T/m.err" "$T/m/atrium.db" "$N" <<'PY'
import re, sqlite3, sys
from datetime import datetime
log, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = lambda s: datetime.fromisoformat(s.rstrip('Z'))
linked = next(t(l.split()[0]) for l in open(log) if 'linked (agent' in l)
con = sqlite3.connect(db)
rec = t(con.execute("SELECT time FROM events WHERE action = 'reconciled'").fetchone()[0])
running = con.execute("SELECT count(*) FROM guests WHERE state = 'running' AND host_id IS NOT NULL").fetchone()[0]
print(f"  hello received -> every record reconciled: {(rec - linked).total_seconds() * 1000:.0f} ms "
      f"({running} of {n} guests now recorded running on the host; target: inventory sync <= 1 s)")
PY
stat() { awk '{print $14 + $15}' /proc/$APID/stat; }
hz=$(getconf CLK_TCK)
c0=$(stat); sleep 30; c1=$(stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$APID/status)
threads=$(awk '/Threads/ {print $2}' /proc/$APID/status)
beats=$(sqlite3 "$T/m/atrium.db" "SELECT count(*) FROM hosts WHERE state = 'up'")
echo "  agent over 30 s of 1 s heartbeats with $N domains: CPU $(( (c1 - c0) * 1000 / hz )) ms ($(awk -v c=$((c1 - c0)) -v hz=$hz 'BEGIN {printf "%.2f", c / hz / 30 * 100}') % of a core), RSS ${rss} KiB, ${threads} threads (host up: $beats)"
