# Shared by the benchmarks (sourced): a real manager in $T/m, and a helper for its API.
# Sets MPID, URL and TOK, and adds MPID to PIDS (the caller's cleanup kills them).
# Usage: bench_manager "key = value\n..."   (extra [manager] keys, printf-escaped;
#        BENCH_LISTEN: the manager's listen address, 127.0.0.1:0 unless set; BENCH_STORE_CONF:
#        a [store] section, as is)
bench_manager() {
        printf '[daemon]\nlog_level = warning\n[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = '"${BENCH_LISTEN:-127.0.0.1:0}"'\npassword_cost = min\ninitial_admin_password = bench-pass-1\n'"$1" >"$T/m.conf"
        [ -z "${BENCH_STORE_CONF:-}" ] || printf '\n%s\n' "$BENCH_STORE_CONF" >>"$T/m.conf"
        "$build/src/atriumd" -c "$T/m.conf" --state-dir "$T/m" >/dev/null 2>"$T/m.err" &
        MPID=$!
        PIDS+=($MPID)
        for _ in $(seq 1 100); do [ -s "$T/m/manager.url" ] && break; sleep 0.1; done
        [ -s "$T/m/manager.url" ] || { echo "bench: the manager did not start: $(tail -3 "$T/m.err")"; exit 1; }
        URL=$(cat "$T/m/manager.url")
        TOK=$(curl -sk "$URL/api/v1/auth/login" -H 'Content-Type: application/json' -d '{"name":"admin","password":"bench-pass-1"}' | jq -r .token)
}
api() { # METHOD PATH [BODY]
        curl -sk -X "$1" "$URL/api/v1$2" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' ${3:+-d "$3"}
}

# The multi-host rig of the cluster benchmarks (tests/rig/rig.sh): 3 hosts joined to a manager
# (bench_manager), a shared volume, the test desktop image as guest "gold" and template "deb".
# Exits with a "skipped" line when not root or the image is missing. Sets T, R, PORT, DB, FP
# and q() (SQL on the manager's database); cleanup on exit.
# Usage: bench_rig NAME GUEST_RAM_MB TLS(0|1)   (needs top, build, IMAGE)
bench_rig() {
        local name=$1 ram=$2 tls=$3 i
        if [ "$(id -u)" != 0 ] || [ ! -f "$IMAGE" ]; then
                echo "bench/$name: skipped (needs root and $IMAGE: make images)"
                exit 0
        fi
        T=$(mktemp -d "/tmp/atrium-bench-$name-XXXXXX")
        chmod 755 "$T"
        R=$T/rig
        mkdir -p "$R"
        export ATRIUMD=$build/src/atriumd
        RIG_LIB=1 . "$top/tests/rig/rig.sh"
        PIDS=()
        trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rig_down "$R"; rm -rf "$T"' EXIT
        exec 3>&2 2>/dev/null
        rig_up "$R" 3 >/dev/null || { echo "bench/$name: the rig cannot start here" >&3; exit 1; }
        rig_env "$R"
        BENCH_LISTEN=0.0.0.0:0 bench_manager 'startup_grace = 0\nreconcile_interval = 1\nprovision_parallel = 32\n'
        PORT=${URL##*:}
        DB=$T/m/atrium.db
        FP=$(api POST /join-tokens '{}' | jq -r .manager_fingerprint)
        for i in 1 2 3; do rig_agent "$R" "$i" "https://$RIG_NET.1:$PORT" "$FP" "$(api POST /join-tokens '{}' | jq -r .token)" "workers = 16\n"; done
        for _ in $(seq 1 300); do bench_rig_up && break; sleep 0.2; done
        if [ "$tls" = 1 ]; then
                for i in 1 2 3; do rig_tls "$R" "$i" "$R/h$i/state/pki" >/dev/null || { echo "bench/$name: no TLS on h$i" >&3; exit 1; }; done
                for _ in $(seq 1 300); do bench_rig_up && break; sleep 0.2; done
        fi
        api POST /storages '{"name":"san"}' >/dev/null
        api POST /volumes "{\"name\":\"shared\",\"storage\":\"san\",\"path\":\"$RIG_SHARED\"}" >/dev/null
        cp "$IMAGE" "$RIG_SHARED/gold.qcow2"
        api POST /guests "{\"name\":\"gold\",\"volume\":\"shared\",\"disk\":\"gold.qcow2\",\"ram_mb\":$ram}" >/dev/null
        api POST /templates '{"name":"deb","volume":"shared","from_guest":"gold"}' >/dev/null
}
q() { sqlite3 "$DB" "$1"; }
bench_rig_up() { [ "$(q "SELECT count(*) FROM hosts WHERE state = 'up'")" = 3 ]; }
