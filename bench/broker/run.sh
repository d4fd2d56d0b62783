#!/bin/bash
# Broker benchmark (issue: broker). A real manager and H real agents (default 200), each on its
# own libvirt test driver (domains "run" in memory), sharing one volume; P pools (default 100)
# of D/P desktops (default 10,000 in all), every desktop a started spare; U users (default
# 10,000) in P groups, each group entitled to one pool. Then:
#   1. a login storm: every user logs in (argon2id at password_cost 'min'; reported apart);
#   2. a list + connect storm: every user lists their desktops and connects to their pool, C
#      (default 16) clients at once. Figures: connects per second sustained, client-side latency
#      p50/p99, and the broker's own work per connect from each session's timing (request to
#      ticket issued, no boot: every desktop is a started spare);
#   3. sessions tracked: the manager's memory with those sessions, then with 20,000.
# Anchors printed alongside (no peer runs here): Citrix XenDesktop 5 handled 2,500 logons in 30
# minutes with a 2.5 s average launch; a Horizon connection server is tested at 4,000 sessions.
# The state is in SQLite (the default) or, with BENCH_STORE=postgresql, in a PostgreSQL server
# the benchmark starts itself (tests/integration/pg.sh: initdb + pg_ctl on loopback, TLS);
# bench/broker/both.sh runs it on each in turn and compares them.
# Usage: bench/broker/run.sh [BUILD_DIR]   (make bench; BENCH_HOSTS, BENCH_DESKTOPS,
#        BENCH_POOLS, BENCH_USERS, BENCH_CLIENTS scale it down or up; BENCH_STORE)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
H=${BENCH_HOSTS:-200} D=${BENCH_DESKTOPS:-10000} P=${BENCH_POOLS:-100}
U=${BENCH_USERS:-10000} C=${BENCH_CLIENTS:-16}
PER=$((D / P))
STORE=${BENCH_STORE:-sqlite}
T=$(mktemp -d /tmp/atrium-bench-broker-XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        [ "$STORE" != postgresql ] || pg_stop "$T/pg"
        rm -rf "$T"
}
trap cleanup EXIT
exec 3>&2 2>/dev/null # no "Killed" lines from bash at the end

now_ms() { date +%s%3N; }
calc() { awk "BEGIN { print $1 }"; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
. "$top/bench/lib.sh"
# q SQL: a query on the manager's database; bulk_accounts HASH: U users u0…, P groups g0…
# (user uN in group g(N mod P)), every user with password hash HASH; fill_sessions N: old
# sessions copied until there are N.
case $STORE in
sqlite)
        q() { sqlite3 "$T/m/atrium.db" "$1"; }
        bulk_accounts() {
                q "BEGIN; WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $U)
                   INSERT INTO users (name, role, enabled, password_hash, created_at, updated_at)
                   SELECT 'u' || i, 'user', 1, '$1', '$STAMP', '$STAMP' FROM n;
                   WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $P)
                   INSERT INTO groups (name, description, created_at, updated_at) SELECT 'g' || i, '', '$STAMP', '$STAMP' FROM n;
                   INSERT INTO group_members (group_id, user_id) SELECT g.id, u.id FROM users u JOIN groups g
                   ON g.name = 'g' || (CAST(substr(u.name, 2) AS INTEGER) % $P) WHERE u.name GLOB 'u[0-9]*'; COMMIT"
        }
        fill_sessions() {
                q "INSERT INTO sessions (user_id, desktop_id, state, protocol, started_at, state_since, created_at, updated_at)
                   SELECT user_id, desktop_id, 'disconnected', 'spice', strftime('%s','now'), strftime('%s','now'), created_at,
                   updated_at FROM sessions LIMIT $1 - (SELECT count(*) FROM sessions)"
        }
        TICKET_MS="json_extract(timing, '$.ticket')"
        ;;
postgresql)
        . "$top/tests/integration/pg.sh"
        mkdir "$T/pg"
        pg_start "$T/pg" >/dev/null || { echo "bench/broker: no PostgreSQL server here (install postgresql-15)"; exit 1; }
        pg_createdb bench >/dev/null
        BENCH_STORE_CONF=$(printf '[store]\nbackend = postgresql\nurl = %s\npassword_file = %s' "$(pg_url bench)" "$ATRIUM_TEST_PG_PWFILE")
        q() { pg_psql bench -c "$1"; }
        bulk_accounts() {
                q "BEGIN; INSERT INTO users (name, role, enabled, password_hash, created_at, updated_at)
                   SELECT 'u' || i, 'user', 1, '$1', '$STAMP', '$STAMP' FROM generate_series(0, $U - 1) i;
                   INSERT INTO groups (name, description, created_at, updated_at)
                   SELECT 'g' || i, '', '$STAMP', '$STAMP' FROM generate_series(0, $P - 1) i;
                   INSERT INTO group_members (group_id, user_id) SELECT g.id, u.id FROM users u JOIN groups g
                   ON g.name = 'g' || (CAST(substr(u.name, 2) AS INTEGER) % $P) WHERE u.name COLLATE \"C\" ~ '^u[0-9]+$'; COMMIT"
        }
        fill_sessions() {
                q "INSERT INTO sessions (user_id, desktop_id, state, protocol, started_at, state_since, created_at, updated_at)
                   SELECT user_id, desktop_id, 'disconnected', 'spice', extract(epoch FROM now())::bigint,
                   extract(epoch FROM now())::bigint, created_at, updated_at FROM sessions
                   LIMIT greatest(0, $1 - (SELECT count(*) FROM sessions))"
        }
        TICKET_MS="timing::json->>'ticket'"
        ;;
*) echo "bench/broker: BENCH_STORE is sqlite or postgresql, not '$STORE'" >&3; exit 2 ;;
esac
STAMP=2026-01-01T00:00:00Z

bench_manager 'heartbeat_interval = 5\nhost_suspect_after = 15\nhost_down_after = 20\nself_fence_after = 0\nreconcile_interval = 5\nprovision_parallel = 16\novercommit_percent = 1000\n'
mkdir -p "$T/vol"
api POST /storages '{"name":"local"}' >/dev/null
api POST /volumes "{\"name\":\"vol\",\"storage\":\"local\",\"path\":\"$T/vol\"}" >/dev/null

echo "== setup ($STORE): $H hosts (agents on the libvirt test driver), $P pools x $PER desktops, $U users"
t0=$(now_ms)
for i in $(seq 1 "$H"); do
        JT=$(api POST /join-tokens '{}' | jq -r .token)
        printf '[daemon]\nlog_level = warning\n[agent]\nname = h%d\nlibvirt_uri = test:///default\nstorage_roots = %s\naddress = 127.0.0.1\nworkers = 1\n' "$i" "$T" >"$T/a$i.conf"
        "$build/src/atriumd" -c "$T/a$i.conf" --state-dir "$T/a$i" --role agent --manager "$URL" \
                --join-token "$JT" >/dev/null 2>"$T/a$i.err" &
        PIDS+=($!)
done
for _ in $(seq 1 600); do [ "$(q "SELECT count(*) FROM hosts WHERE state = 'up'")" = "$H" ] && break; sleep 0.2; done
echo "hosts up: $(q "SELECT count(*) FROM hosts WHERE state = 'up'") in $(( ($(now_ms) - t0) / 1000 )) s"
qemu-img create -q -f qcow2 "$T/vol/gold.qcow2" 1G
api POST /guests '{"name":"g0","volume":"vol","disk":"gold.qcow2","ram_mb":64}' >/dev/null
api POST /templates '{"name":"tpl","volume":"vol","from_guest":"g0"}' >/dev/null
for_tpl=$(api GET /templates/tpl | jq -r .id)
[ "$for_tpl" != null ] || { echo "no template: $(cat "$T/m.err" | tail -3)"; exit 1; }
# Users in bulk: one real account's hash copied (the same password), groups and entitlements.
api POST /users '{"name":"seed","password":"user-pass-1"}' >/dev/null
bulk_accounts "$(q "SELECT password_hash FROM users WHERE name = 'seed'")" >/dev/null
t0=$(now_ms)
for k in $(seq 0 $((P - 1))); do
        api POST /pools "{\"name\":\"p$k\",\"template\":\"tpl\",\"size\":$PER,\"spares\":$PER}" >/dev/null
        api POST /entitlements "{\"pool\":\"p$k\",\"group\":\"g$k\"}" >/dev/null
done
for _ in $(seq 1 3000); do
        [ "$(q "SELECT count(*) FROM desktops WHERE state = 'running' AND dirty = 0")" -ge "$D" ] && break
        sleep 0.5
done
echo "desktops running as spares: $(q "SELECT count(*) FROM desktops WHERE state = 'running'") of $D in $(( ($(now_ms) - t0) / 1000 )) s"
RSS0=$(rss_mib "$MPID")
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
agents_cpu() { local s=0; for p in "${PIDS[@]:1}"; do s=$(calc "$s + $(cpu_s "$p")"); done; echo "$s"; }
# the database server's processes (PostgreSQL: on the same 2 cores as the rest)
db_cpu() { local s=0; for p in $(pgrep -u postgres); do s=$(calc "$s + $(cpu_s "$p")"); done; echo "$s"; }
M0=$(cpu_s "$MPID") A0=$(agents_cpu) G0=$(db_cpu)

python3 - "$URL" "$U" "$P" "$C" >"$T/storm.json" <<'PY'
import concurrent.futures, http.client, json, ssl, sys, threading, time
url, users, pools, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
host, port = url.split("//")[1].split(":")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
local = threading.local()
def call(method, path, body=None, token=None):
    if not hasattr(local, "c"):
        local.c = http.client.HTTPSConnection(host, int(port), context=ctx)
    h = {"Content-Type": "application/json"}
    if token: h["Authorization"] = "Bearer " + token
    t = time.perf_counter()
    local.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = local.c.getresponse(); data = r.read()
    return r.status, json.loads(data or b"{}"), (time.perf_counter() - t) * 1000
def login(i):
    s, b, ms = call("POST", "/api/v1/auth/login", {"name": "u%d" % i, "password": "user-pass-1"})
    return b.get("token"), ms
def connect(i, tok):
    s1, b1, ms1 = call("GET", "/api/v1/me/desktops", token=tok)
    s2, b2, ms2 = call("POST", "/api/v1/pools/p%d/connect" % (i % pools), {"protocol": "spice"}, tok)
    return s1, s2, ms1, ms2
def pct(a, p): a = sorted(a); return a[min(len(a) - 1, int(len(a) * p))] if a else 0
out = {}
with concurrent.futures.ThreadPoolExecutor(clients) as ex:
    t = time.perf_counter(); res = list(ex.map(login, range(users))); dt = time.perf_counter() - t
    toks = [r[0] for r in res]
    out["login"] = {"n": len(res), "ok": sum(1 for r in res if r[0]), "s": dt,
                    "p50": pct([r[1] for r in res], .5), "p99": pct([r[1] for r in res], .99)}
    t = time.perf_counter(); res = list(ex.map(connect, range(users), toks)); dt = time.perf_counter() - t
    out["connect"] = {"n": len(res), "ok": sum(1 for r in res if r[1] == 200), "s": dt,
                      "list_p50": pct([r[2] for r in res], .5), "list_p99": pct([r[2] for r in res], .99),
                      "p50": pct([r[3] for r in res], .5), "p99": pct([r[3] for r in res], .99),
                      "codes": sorted({r[1] for r in res})}
print(json.dumps(out))
PY
M1=$(cpu_s "$MPID") A1=$(agents_cpu) G1=$(db_cpu)
L=$(jq .login "$T/storm.json") K=$(jq .connect "$T/storm.json")
echo
echo "== 1. login storm ($C clients)"
printf 'logins: %d of %d in %.1f s = %.0f/s; latency p50 %.1f ms, p99 %.1f ms (argon2id at cost min, on 2 cores)\n' \
        "$(jq .ok <<<"$L")" "$(jq .n <<<"$L")" "$(jq .s <<<"$L")" "$(calc "$(jq .ok <<<"$L") / $(jq .s <<<"$L")")" \
        "$(jq .p50 <<<"$L")" "$(jq .p99 <<<"$L")"
echo
echo "== 2. list + connect storm ($C clients; every desktop a started spare)"
printf 'connects: %d of %d (statuses %s) in %.1f s = %.0f connects/s sustained (each with a list)\n' \
        "$(jq .ok <<<"$K")" "$(jq .n <<<"$K")" "$(jq -c .codes <<<"$K")" "$(jq .s <<<"$K")" \
        "$(calc "$(jq .ok <<<"$K") / $(jq .s <<<"$K")")"
printf 'client latency: list p50 %.1f / p99 %.1f ms; connect p50 %.1f / p99 %.1f ms\n' \
        "$(jq .list_p50 <<<"$K")" "$(jq .list_p99 <<<"$K")" "$(jq .p50 <<<"$K")" "$(jq .p99 <<<"$K")"
q "SELECT $TICKET_MS FROM sessions WHERE timing != ''" | sort -n >"$T/ticket.ms"
n=$(wc -l <"$T/ticket.ms")
if [ "$n" -gt 0 ]; then
        printf "broker's own work, request to ticket (session timing, %d connects): p50 %d ms, p99 %d ms\n" "$n" \
                "$(sed -n "$(( (n + 1) / 2 ))p" "$T/ticket.ms")" "$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$T/ticket.ms")"
fi
printf 'CPU during both storms (logins and connects, one machine of 2 cores): manager %.1f s, the %d simulated agents %.1f s%s\n' \
        "$(calc "$M1 - $M0")" "$H" "$(calc "$A1 - $A0")" \
        "$([ "$STORE" != postgresql ] || printf ', the PostgreSQL server %.1f s' "$(calc "$G1 - $G0")")"
echo "double assignments: $(q "SELECT count(*) FROM (SELECT desktop_id FROM sessions GROUP BY desktop_id HAVING count(*) > 1) AS twice")"
echo
echo "== 3. sessions tracked"
S1=$(q "SELECT count(*) FROM sessions")
printf 'manager RSS: %s MiB before the storm, %s MiB with %d sessions\n' "$RSS0" "$(rss_mib "$MPID")" "$S1"
n=$(q "SELECT count(*) FROM sessions")
while [ "$n" -gt 0 ] && [ "$n" -lt 20000 ]; do fill_sessions 20000 >/dev/null; n=$(q "SELECT count(*) FROM sessions"); done
sleep 6 # a few reconciler passes over them
t0=$(now_ms); api GET "/sessions?limit=1" >/dev/null; t1=$(now_ms)
printf 'with %d sessions: manager RSS %s MiB; a sessions page in %d ms\n' "$(q "SELECT count(*) FROM sessions")" "$(rss_mib "$MPID")" "$((t1 - t0))"
echo "targets: >= 200 connects/s, broker p99 <= 100 ms, connect to ticket with a started spare <= 50 ms p99, 20,000 sessions tracked"
echo "anchors: Citrix XD5 2,500 logons in 30 min (1.4/s) with 2.5 s average launch; Horizon connection server tested at 4,000 sessions"
