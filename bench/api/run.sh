#!/bin/bash
# API benchmark (issue: foundation). Starts atriumd on loopback with a seeded store of
# 10,000 desktops and 1,000 users, then measures with wrk:
#   authenticated GET /api/v1/pools and GET /api/v1/desktops?limit=100: throughput, p50, p99
#   login: end-to-end latency, against the bare argon2id verification time.
# Usage: bench/api/run.sh [BUILD_DIR]   (make bench)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
T=$(mktemp -d /tmp/atrium-bench-XXXXXX)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
DURATION=${BENCH_DURATION:-10}
CONNS_LIST=${BENCH_CONNECTIONS:-8 16}

printf '[daemon]\nlog_level = warning\n[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\nlogin_attempts_per_address = 10000\n' >"$T/atrium.conf"
"$build/src/atriumd" -c "$T/atrium.conf" --state-dir "$T/state" >"$T/stdout" 2>"$T/stderr" &
PID=$!
for _ in $(seq 1 100); do [ -s "$T/state/manager.url" ] && break; sleep 0.1; done
URL=$(cat "$T/state/manager.url")
PW=$(cat "$T/state/initial-admin-password")
DB=$T/state/atrium.db

echo "Seeding 1,000 users and 10,000 desktops in 10 pools..."
sqlite3 "$DB" <<SQL
BEGIN;
INSERT INTO image_storages (name, created_at, updated_at) VALUES ('bench', 'now', 'now');
INSERT INTO volumes (name, storage_id, path, created_at, updated_at) VALUES ('bench', 1, '/srv/bench', 'now', 'now');
INSERT INTO templates (name, volume_id, created_at, updated_at) VALUES ('bench', 1, 'now', 'now');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
  INSERT INTO pools (name, template_id, size, created_at, updated_at) SELECT 'pool' || i, 1, 1000, 'now', 'now' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
  INSERT INTO users (name, role, password_hash, created_at, updated_at)
  SELECT 'user' || i, 'user', (SELECT password_hash FROM users WHERE name = 'admin'), 'now', 'now' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
  INSERT INTO desktops (name, pool_id, user_id, state, created_at, updated_at)
  SELECT 'desk' || i, 1 + (i % 10), 2 + (i % 1000), CASE WHEN i % 3 = 0 THEN 'running' ELSE 'stopped' END, 'now', 'now' FROM n;
COMMIT;
SQL

TOKEN=$(curl -sk -H 'Content-Type: application/json' -d "{\"name\":\"admin\",\"password\":\"$PW\"}" "$URL/api/v1/auth/login" | jq -r .token)
[ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/desktops?limit=100")" = 200 ]

run_wrk() {
        local path=$1 CONNS=$2
        echo
        echo "== GET $path  ($CONNS connections, ${DURATION}s, 1 wrk thread, 2 cores shared with the server)"
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$URL$path" >"$T/wrk.out"
        awk '/Requests\/sec/ {print "throughput: " $2 " req/s"} /^ +50%/ {print "p50: " $2} /^ +99%/ {print "p99: " $2} /Non-2xx/ {print "NON-2xx: " $0}' "$T/wrk.out"
}
for c in $CONNS_LIST; do
        run_wrk /api/v1/pools "$c"
        run_wrk "/api/v1/desktops?limit=100" "$c"
done

echo
echo "== login (20 sequential, default cost 'interactive')"
start=$(date +%s%N)
for _ in $(seq 1 20); do
        curl -sk -o /dev/null -H 'Content-Type: application/json' -d "{\"name\":\"admin\",\"password\":\"$PW\"}" "$URL/api/v1/auth/login"
done
end=$(date +%s%N)
echo "login, end to end (curl, new TLS connection each): $(( (end - start) / 20000000 )) ms"
"$build/src/bench-password" 10
echo
echo "RSS of atriumd after the run: $(awk '/VmRSS/ {print $2 " " $3}' /proc/$PID/status)"
