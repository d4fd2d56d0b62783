# Shared by the benchmarks (sourced): a real manager in $T/m, and a helper for its API.
# Sets MPID, URL and TOK, and adds MPID to PIDS (the caller's cleanup kills them).
# Usage: bench_manager "key = value\n..."   (extra [manager] keys, printf-escaped)
bench_manager() {
        printf '[daemon]\nlog_level = warning\n[gateway]\nlisten = 127.0.0.1:0\n[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\ninitial_admin_password = bench-pass-1\n'"$1" >"$T/m.conf"
        "$build/src/atriumd" -c "$T/m.conf" --state-dir "$T/m" >/dev/null 2>"$T/m.err" &
        MPID=$!
        PIDS+=($MPID)
        for _ in $(seq 1 100); do [ -s "$T/m/manager.url" ] && break; sleep 0.1; done
        URL=$(cat "$T/m/manager.url")
        TOK=$(curl -sk "$URL/api/v1/auth/login" -H 'Content-Type: application/json' -d '{"name":"admin","password":"bench-pass-1"}' | jq -r .token)
}
api() { # METHOD PATH [BODY]
        curl -sk -X "$1" "$URL/api/v1$2" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
