# Shared by the integration tests (sourced): TAP output and HTTP helpers. The test sets T (its
# temporary directory), STATE (the manager's state directory), API and TOKEN.
n=0 failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
# check DESC CMD...: passes when CMD succeeds
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d" "command failed: $*"; fi; }
# is DESC GOT WANT
is() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got:  $2" "want: $3"; fi; }
# like DESC GOT SUBSTRING
like() { case "$2" in *"$3"*) ok "$1";; *) not_ok "$1" "got:  $2" "want substring: $3";; esac; }

# http METHOD PATH [BODY] [TOKEN] -> sets CODE and BODY
http() {
        local m=$1 p=$2 b=${3-} tok=${4-$TOKEN}
        local args=(-sk -o "$T/body" -w '%{http_code}' -X "$m")
        [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
        [ -n "$b" ] && args+=(-H 'Content-Type: application/json' --data-binary "$b")
        CODE=$(curl "${args[@]}" "$API$p")
        BODY=$(cat "$T/body")
}
jget() { jq -r "$1" <<<"$BODY"; }

# The store the test runs on: SQLite in the state directory (the default), or PostgreSQL when
# the test runs under with-pg.sh (ATRIUM_TEST_STORE=postgresql, its server in ATRIUM_TEST_PG_*).
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
on_pg() { [ "${ATRIUM_TEST_STORE:-sqlite}" = postgresql ]; }
# store_conf [DB]: the [store] section of a manager's configuration: nothing on SQLite; on
# PostgreSQL, database DB (default atrium: the one dbq reads), made when missing.
store_conf() {
        on_pg || return 0
        pg_createdb "${1:-atrium}" >/dev/null
        printf '[store]\nbackend = postgresql\nurl = %s\npassword_file = %s\n' "$(pg_url "${1:-atrium}")" \
                "$ATRIUM_TEST_PG_PWFILE"
}
# dbq SQL: a query on the test's database (the manager's at $STATE), rows as "a|b".
# (SQLite's group_concat is PostgreSQL's string_agg there, json_extract(col, '$.key') its ->>.)
dbq() {
        if on_pg; then
                pg_psql atrium -c "$(sed -e "s/group_concat(\([a-z_.]*\))/string_agg(\1::text, ',')/g" \
                        -e "s/group_concat(\([a-z_.]*\), /string_agg(\1::text, /g" \
                        -e "s/json_extract(\([a-z_.]*\), '\$\.\([a-z_]*\)')/(\1::json->>'\2')::numeric/g" <<<"$1")"
        else
                sqlite3 "$STATE/atrium.db" "$1"
        fi
}
# db_schema_set N: the schema version the database records (a newer atriumd's, say).
db_schema_set() {
        if on_pg; then dbq "UPDATE atrium_schema SET version = $1"; else sqlite3 "$STATE/atrium.db" "PRAGMA user_version = $1"; fi
}
# dbdump_all: the database as text (a line per row, INSERT INTO table …), to compare; on
# PostgreSQL without the leader's lease and the managers' roll call (renewed every second).
dbdump_all() {
        local out
        if on_pg; then
                # (a failed dump differs from every other, so that no comparison passes on it;
                # its warning about the desktops/terminals reference circle is not news)
                out=$(pg_dump -h "$ATRIUM_TEST_PG_DIR" -p "$ATRIUM_TEST_PG_PORT" -U postgres --data-only \
                        --inserts --exclude-table-data=leader --exclude-table-data=managers atrium 2>/dev/null) || { echo "pg_dump failed $RANDOM$RANDOM"; return; }
                grep '^INSERT' <<<"$out" | sed 's/^INSERT INTO public\./INSERT INTO /'
        else
                sqlite3 "$STATE/atrium.db" .dump
        fi
}
# The whole database as text, to prove a refused request changed nothing.
dbdump() { dbdump_all | grep -v '^INSERT INTO api_tokens'; }
# refuse DESC METHOD PATH BODY STATUS CODE: refused with that error, database unchanged
refuse() {
        local before after
        before=$(dbdump)
        http "$2" "$3" "$4"
        after=$(dbdump)
        if [ "$CODE" = "$5" ] && [ "$(jget .error.code)" = "$6" ] && [ -n "$(jget .error.message)" ] && [ "$before" = "$after" ]; then
                ok "$1"
        else
                not_ok "$1" "status $CODE (want $5), body $BODY (want code $6)" \
                        "database unchanged: $([ "$before" = "$after" ] && echo yes || echo NO)"
        fi
}

# wait_for SECONDS CMD...: until CMD succeeds (bounded). CMD runs each time: wrap a check
# with a command substitution in a function, or it is evaluated once.
wait_for() {
        local s=$1; shift
        for _ in $(seq 1 $((s * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
        return 1
}
# api_is PATH JQ WANT: GET PATH and compare one value
api_is() { http GET "$1"; [ "$(jget "$2")" = "$3" ]; }

# tap_relay [PREFIX]: the "ok - ..." / "not ok - ..." lines on stdin (tests/browser/portal.mjs
# prints them) become cases here, the rest comments.
tap_relay() {
        local line
        while IFS= read -r line; do
                case $line in
                "ok - "*) ok "${1:-}${line#ok - }" ;;
                "not ok - "*) not_ok "${1:-}${line#not ok - }" ;;
                *) echo "# $line" ;;
                esac
        done
}

# browser_run BASE_URL SHOTS SCENARIO ARGS...: tests/browser/portal.mjs drives the portal in
# chromium; each case it prints is one case here (needs $SRC).
browser_run() {
        local base=$1 shots=$2 s=$3
        shift 3
        tap_relay < <(cd "$SRC/tests/browser" && timeout 300 node portal.mjs "$s" "$base" "$shots" "$@" 2>&1)
}

# testdriver_host: host h1 on libvirt's test driver (agent pid in APID; domains "run" in
# memory, overlays are real qcow2 files in $T/vol), joined to the manager at $URL, with storage
# 'local', volume 'vol', guest g0 and template tpl made from it. Needs $ATRIUM logged in as an
# admin, $ATRIUMD, $T and the http/jget helpers.
testdriver_host() {
        local jt
        mkdir -p "$T/vol"
        printf '[daemon]\nlog_level = info\n[agent]\nlibvirt_uri = test:///default\nstorage_roots = %s\nname = h1\n' \
                "$T" >"$T/h1.conf"
        "$ATRIUM" storage create --name local >/dev/null
        "$ATRIUM" volume create --name vol --storage local --path "$T/vol" >/dev/null
        jt=$("$ATRIUM" --json host join-token create | jq -r .token)
        "$ATRIUMD" -c "$T/h1.conf" --state-dir "$T/h1" --role agent --manager "$URL" --join-token "$jt" \
                >"$T/h1.out" 2>"$T/h1.err" &
        APID=$!
        wait_for 30 api_is /hosts/h1 .state up; is "host h1 (test driver) is up" "$(jget .state)" up
        qemu-img create -q -f qcow2 "$T/vol/gold.qcow2" 1G
        check "a guest" "$ATRIUM" guest create --name g0 --volume vol --disk gold.qcow2 --ram_mb 256
        check "a template from it" "$ATRIUM" template create --name tpl --volume vol --from-guest g0
}

# test_conf FILE [LOG_LEVEL [DB]]: the configuration every test starts from (manager and gateway on
# loopback ports chosen by the system, cheap password hashes, admin's password admin-pass-1);
# DB: the PostgreSQL database under with-pg.sh (default atrium; another state directory, another DB);
# [manager] is its last section, so that a test appends manager keys, then sections of its own.
test_conf() {
        { printf '[daemon]\nlog_level = %s\n[gateway]\nlisten = 127.0.0.1:0\n' "${2:-info}"; store_conf "${3:-}"
          printf '[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\ninitial_admin_password = admin-pass-1\n'; } >"$1"
}

# totp_code SECRET [OFFSET_STEPS]: the RFC 6238 code now (or N 30 s steps away), with Python.
totp_code() {
        python3 - "$1" "${2:-0}" <<'PY'
import base64, hmac, struct, sys, time
s = sys.argv[1]; key = base64.b32decode(s + "=" * (-len(s) % 8))
c = int(time.time()) // 30 + int(sys.argv[2])
d = hmac.new(key, struct.pack(">Q", c), "sha1").digest(); o = d[-1] & 15
print("%06d" % ((struct.unpack(">I", d[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
