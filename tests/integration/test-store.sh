#!/bin/bash
# Integration test of the PostgreSQL store (run by with-pg.sh: a server of its own): an
# installation made on SQLite moved to PostgreSQL with `atriumd store migrate` and back, each
# time the whole API read before and after and compared; the manager's refusals of a wrong
# URL, password, certificate, server version, schema or installation; the server stopped under
# a running manager (503 with Retry-After, logged once, served again when it is back).
# Usage: with-pg.sh test-store.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/atrium-store-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
n=0 failed=0 MPID= APID= FPID=

cleanup() {
        for p in $MPID $APID $FPID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
        rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"
if ! on_pg; then
        echo "1..0 # SKIP run through with-pg.sh (it starts the PostgreSQL server)"
        exit 0
fi

# start_manager CONF [STATE]: a manager (pid MPID) answering at $URL, or its exit code in RC.
start_manager() {
        local st=${2:-$STATE}
        rm -f "$st/manager.url"
        "$ATRIUMD" -c "$1" --state-dir "$st" >"$T/manager.out" 2>"$T/manager.err" &
        MPID=$!
        RC=
        for _ in $(seq 1 150); do
                [ -s "$st/manager.url" ] && curl -sk "$(cat "$st/manager.url")/api/v1/version" >/dev/null 2>&1 && break
                kill -0 "$MPID" 2>/dev/null || { wait "$MPID"; RC=$?; MPID=; return 1; }
                sleep 0.1
        done
        URL=$(cat "$st/manager.url") API=$(cat "$st/manager.url")/api/v1
}
stop_manager() { kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; MPID=; }
# refused CONF [STATE]: the manager exits 1 at start; its words in $OUT
refused() {
        OUT=$(timeout 60 "$ATRIUMD" -c "$1" --state-dir "${2:-$T/refused}" 2>&1)
        RC=$?
        [ "$RC" = 1 ]
}
# api_dump: every collection of the API, sorted keys (the same token throughout, so reading
# writes no login event). A host's liveness (state, last_seen, updated_at) is left out: it
# moves with time since its agent was stopped (suspect after host_suspect_after), not with the
# copy; store migrate itself compares every row of every table.
api_dump() {
        local p
        for p in users groups hosts storages volumes media guests templates template-versions pools \
                entitlements permissions terminals desktops sessions operations events join-tokens; do
                http GET "/$p?limit=1000"
                echo "== $p $CODE"
                if [ "$p" = hosts ]; then
                        jq -S '.items[] |= del(.state, .last_seen, .updated_at)' <<<"$BODY"
                else
                        jq -S . <<<"$BODY"
                fi
        done
}
# conf STORE_SECTION: a manager's configuration on that store (the host's silence is not
# judged for 10 minutes after a start, so that nothing changes between two dumps)
conf() {
        { printf '[daemon]\nlog_level = info\n[gateway]\nlisten = 127.0.0.1:0\n'; printf '%s\n' "$1"
          printf '[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\ninitial_admin_password = admin-pass-1\nstartup_grace = 600\nreconcile_interval = 1\nheartbeat_interval = 1\n'; }
}

# ---- an installation on SQLite, with something of everything ----
conf "" >"$CONF"
start_manager "$CONF"
is "a manager on SQLite starts" "$RC" ""
TOKEN=$(curl -sk "$API/auth/login" -H 'Content-Type: application/json' \
        -d '{"name":"admin","password":"admin-pass-1"}' | jq -r .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
testdriver_host
"$ATRIUM" user create --name alice --password alice-pass-1 >/dev/null
"$ATRIUM" group create --name devs >/dev/null
http PUT /groups/devs/members/alice
check "a pool on it" "$ATRIUM" pool create --name office --template tpl --size 2 --spares 1
"$ATRIUM" entitlement create --pool office --group devs >/dev/null
check "a permission on it" "$ATRIUM" permission create --pool office --user alice --role operator
sq() { sqlite3 "$STATE/atrium.db" "$1"; } # (dbq reads PostgreSQL here)
two_desktops() { [ "$(sq "SELECT count(*) FROM desktops WHERE state = 'running'")" = 1 ] && [ "$(sq "SELECT count(*) FROM desktops")" = 2 ]; }
wait_for 60 two_desktops; is "... its desktops made, one spare started" "$?" 0
ROWS=$(sq "SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM desktops) || '/' || (SELECT count(*) FROM events)")
kill "$APID"; wait "$APID" 2>/dev/null; APID=
api_dump >"$T/before.txt"
is "the API dump reads every collection (18 answers 200)" "$(grep -c '^== .* 200$' "$T/before.txt")" 18
is "... the two desktops among them" "$(sed -n '/^== desktops/,/^== /p' "$T/before.txt" | grep -c '"template_version":')" 2
stop_manager

# ---- SQLite -> PostgreSQL ----
pg_createdb moved
OUT=$("$ATRIUMD" store migrate --from "sqlite:$STATE/atrium.db" --to "$(pg_url moved)" --password-file "$ATRIUM_TEST_PG_PWFILE" 2>&1); RC=$?
is "store migrate SQLite -> PostgreSQL: exit 0" "$RC" 0
like "... says what it copied, verified" "$OUT" "every table's count and checksum match"
like "... table by table" "$OUT" "desktops                    2 rows"
OUT=$("$ATRIUMD" store migrate --from "sqlite:$STATE/atrium.db" --to "$(pg_url moved)" --password-file "$ATRIUM_TEST_PG_PWFILE" 2>&1); RC=$?
is "bad input: a target that is not empty is refused (exit 1)" "$RC" 1
like "... saying so" "$OUT" "is not empty (table users has"
is "... and it is left as it was" "$(pg_psql moved -c "SELECT count(*) FROM users")" "${ROWS%%/*}"
conf "$(store_conf moved)" >"$T/pg.conf"
start_manager "$T/pg.conf"
is "the manager starts on the copy in PostgreSQL" "$RC" ""
like "... and says where its state is" "$(cat "$T/manager.err")" "state in postgresql://127.0.0.1:$ATRIUM_TEST_PG_PORT/moved (postgresql)"
api_dump >"$T/after.txt"
if diff "$T/before.txt" "$T/after.txt" >"$T/diff.txt"; then ok "the whole API reads the same after the move"; else not_ok "the whole API reads the same after the move" "$(head -20 "$T/diff.txt")"; fi
http POST /users '{"name":"carol","password":"carol-pass-1"}'
is "a new row gets a new id after the copied ones" "$CODE:$(jget .id)" "201:$(( $(pg_psql moved -c "SELECT max(id) FROM users WHERE name <> 'carol'") + 1 ))"
http DELETE /users/carol
api_dump >"$T/before2.txt"
stop_manager

# ---- PostgreSQL -> SQLite ----
OUT=$("$ATRIUMD" store migrate --from "$(pg_url moved)" --to "sqlite:$T/back.db" --password-file "$ATRIUM_TEST_PG_PWFILE" 2>&1); RC=$?
is "store migrate PostgreSQL -> SQLite: exit 0" "$RC" 0
conf "[store]
path = $T/back.db" >"$T/back.conf"
start_manager "$T/back.conf"
api_dump >"$T/after2.txt"
if diff "$T/before2.txt" "$T/after2.txt" >"$T/diff.txt"; then ok "... the whole API reads the same again"; else not_ok "... the whole API reads the same again" "$(head -40 "$T/diff.txt")"; fi
stop_manager

# ---- store migrate: bad input ----
OUT=$("$ATRIUMD" store migrate --from "sqlite:$T/none.db" --to "$(pg_url x)" 2>&1); RC=$?
is "bad input: a source file that does not exist (exit 1)" "$RC:$OUT" "1:atriumd store migrate: there is no SQLite database at $T/none.db"
OUT=$("$ATRIUMD" store migrate --from "mysql://db/atrium" --to "sqlite:$T/y.db" 2>&1); RC=$?
like "bad input: a database of no known kind (exit 1)" "$RC:$OUT" "1:atriumd store migrate: 'mysql://db/atrium' is neither sqlite:PATH nor a postgresql:// URL"
OUT=$("$ATRIUMD" store migrate --from "sqlite:$T/back.db" 2>&1); RC=$?
is "bad input: no --to (exit 2)" "$RC" 2
OUT=$("$ATRIUMD" store migrate --from "sqlite:$T/back.db" --to "sqlite:$T/back.db" 2>&1); RC=$?
like "bad input: the same database twice (exit 2)" "$RC:$OUT" "2:atriumd store migrate: --from and --to name the same database"
check "atriumd store migrate --help" "$ATRIUMD" store migrate --help

# ---- the manager's refusals ----
PGURL="postgresql://atrium@127.0.0.1:$ATRIUM_TEST_PG_PORT"
TLS="sslmode=verify-full&sslrootcert=$ATRIUM_TEST_PG_CA"
conf "[store]
backend = postgresql
url = $PGURL/moved?$TLS
password_file = $T/wrong.pw" >"$T/bad.conf"
echo not-the-password >"$T/wrong.pw"
refused "$T/bad.conf"; is "bad input: a wrong password: the manager exits 1" "$RC" 1
like "... saying so" "$OUT" "password authentication failed for user \"atrium\""
conf "[store]
backend = postgresql
url = postgresql://atrium@127.0.0.1:1/moved
password_file = $ATRIUM_TEST_PG_PWFILE" >"$T/bad.conf"
refused "$T/bad.conf"; is "bad input: a URL where no server listens: exit 1" "$RC" 1
like "... saying so" "$OUT" "cannot connect to the database: connection to server at \"127.0.0.1\", port 1 failed: Connection refused"
conf "[store]
backend = postgresql
url = postgresql://atrium:secret-in-url@127.0.0.1:$ATRIUM_TEST_PG_PORT/moved" >"$T/bad.conf"
refused "$T/bad.conf"; like "bad input: a password in the URL is refused" "$OUT" "the database URL holds a password: give it in a file instead"
case "$OUT" in *secret-in-url*) not_ok "... without repeating it";; *) ok "... without repeating it";; esac
conf "[store]
backend = postgresql
url = $PGURL/moved?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt
password_file = $ATRIUM_TEST_PG_PWFILE" >"$T/bad.conf"
refused "$T/bad.conf"; like "bad input: a server whose certificate does not verify is refused" "$OUT" "certificate verify failed"
conf "[store]
backend = postgresql" >"$T/bad.conf"
refused "$T/bad.conf"; like "bad input: backend postgresql with no URL" "$OUT" "store.backend is postgresql but store.url is empty"
conf "[store]
url = $PGURL/moved" >"$T/bad.conf"
refused "$T/bad.conf"; like "bad input: a URL with the SQLite backend" "$OUT" "store.url is set but store.backend is sqlite"
python3 "$SRC/tests/integration/fake-pg.py" "$T/fake.port" 11.22 &
FPID=$!
wait_for 10 test -s "$T/fake.port"
conf "[store]
backend = postgresql
url = postgresql://atrium@127.0.0.1:$(cat "$T/fake.port")/x?sslmode=disable" >"$T/bad.conf"
refused "$T/bad.conf"; like "bad input: a server of an unsupported version (11) is refused" "$OUT" "the database server runs PostgreSQL 11.22, which Atrium does not support: it needs PostgreSQL 13 or newer"
kill "$FPID"; wait "$FPID" 2>/dev/null; FPID=
# A database of another installation: another state directory made its own on database other.
conf "$(store_conf other)" >"$T/other.conf"
start_manager "$T/other.conf" "$T/otherstate"; stop_manager
sed "s|/other?|/moved?|" "$T/other.conf" >"$T/cross.conf"
refused "$T/cross.conf" "$T/otherstate"
like "bad input: a database of another installation is refused" "$OUT" "belongs to installation $(pg_psql moved -c "SELECT value FROM settings WHERE key = 'installation'")"
like "... naming this state directory's" "$OUT" "but this manager's state directory $T/otherstate to installation $(cat "$T/otherstate/installation")"
pg_psql other -c "UPDATE atrium_schema SET version = 999"
refused "$T/other.conf" "$T/otherstate"
like "bad input: a database of a newer atriumd is refused" "$OUT" "has schema version 999, newer than this atriumd understands"
pg_psql other -c "UPDATE atrium_schema SET version = $(pg_psql moved -c "SELECT version FROM atrium_schema")"

# ---- the server stopped under a running manager ----
start_manager "$T/pg.conf"
USERS=$(pg_psql moved -c "SELECT count(*) FROM users")
pg_down "$ATRIUM_TEST_PG_DIR"
curl -sk -D "$T/h" -o "$T/b" -H "Authorization: Bearer $TOKEN" "$API/pools"
is "the database down: the API answers 503" "$(head -1 "$T/h" | tr -d '\r')" "HTTP/1.1 503 Service Unavailable"
like "... with a retry hint" "$(tr -d '\r' <"$T/h")" "Retry-After: 2"
like "... saying what is wrong, not where the server is" "$(cat "$T/b")" "the database is unreachable (while looking up a token); retry in a few seconds"
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}' ""
is "... a login too: 503, not a wrong password" "$CODE:$(jget .error.code)" "503:unavailable"
for _ in 1 2 3; do curl -sk -o /dev/null "$API/pools" -H "Authorization: Bearer $TOKEN"; done
is "... logged once" "$(grep -c "database postgresql://127.0.0.1:$ATRIUM_TEST_PG_PORT/moved unreachable" "$T/manager.err")" 1
pg_up "$ATRIUM_TEST_PG_DIR"
back() { http GET /pools; [ "$CODE" = 200 ]; }
wait_for 20 back; is "the server back: served again, nothing restarted" "$CODE" 200
is "... logged once too" "$(grep -c "reachable again" "$T/manager.err")" 1
is "... nothing lost" "$(pg_psql moved -c "SELECT count(*) FROM users")" "$USERS"
stop_manager

echo "1..$n"
[ "$failed" -eq 0 ]
