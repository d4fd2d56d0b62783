#!/bin/bash
# Gateway benchmark: atriumd's gateway and websockify (Debian's, the relay oVirt and Proxmox
# use) relaying the same traffic to the same consoles, in the same run, on this machine.
# Consoles and load are bench-gateway (bench/gateway/gwbench.c): WebSocket tunnels with the
# binary subprotocol, over TLS or plain. Prints a table. Usage: bench/gateway/run.sh [BUILD]
set -u
build=${1:-build}
B=$build/src/bench-gateway SIGN=$build/tests/sign-ticket
T=$(mktemp -d /tmp/atrium-bench-gw-XXXXXX)
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v websockify >/dev/null || { echo "websockify is not installed (make deps)"; exit 1; }

"$B" target "$T/source.port" source & PIDS+=($!)
"$B" target "$T/echo.port" echo & PIDS+=($!)
for _ in $(seq 50); do [ -s "$T/source.port" ] && [ -s "$T/echo.port" ] && break; sleep 0.1; done
SRC=$(cat "$T/source.port") ECHO=$(cat "$T/echo.port")

# Two gateways (atriumd, all-in-one): one with TLS, one plain on loopback.
start_gw() { # NAME PLAIN
        printf '[daemon]\nlog_level = warning\n[gateway]\nlisten = 127.0.0.1:0\nplain = %s\ntunnels_per_ticket = 256\ntunnels_per_user = 100000\n[manager]\nlisten = 127.0.0.1:0\npassword_cost = min\n' "$2" >"$T/$1.conf"
        "$build/src/atriumd" -c "$T/$1.conf" --state-dir "$T/$1" >/dev/null 2>"$T/$1.err" &
        PIDS+=($!)
        eval "${1}_PID=$!"
        for _ in $(seq 100); do [ -s "$T/$1/gateway.url" ] && break; sleep 0.1; done
        for target in "$SRC" "$ECHO"; do
                for i in $(seq 64); do "$SIGN" "$T/$1/ticket.key" 127.0.0.1 "$target" vnc "$i" 1 7200; done >"$T/$1.$target.tickets"
        done
}
start_gw tls false
start_gw plain true
GW_TLS=$(sed 's|https://||' "$T/tls/gateway.url") GW_PLAIN=$(sed 's|http://||' "$T/plain/gateway.url")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# websockify: one process per console and per TLS setting (it takes its target on the command line)
start_wsk() { # NAME TARGET_PORT TLS
        local port; port=$(free_port)
        local tls=()
        [ "$3" = yes ] && tls=(--cert "$T/tls/tls/cert.pem" --key "$T/tls/tls/key.pem" --ssl-only)
        websockify "${tls[@]}" "127.0.0.1:$port" "127.0.0.1:$2" >"$T/wsk-$1.log" 2>&1 &
        PIDS+=($!)
        eval "WSK_${1}_PID=$! WSK_${1}=127.0.0.1:$port"
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}
start_wsk src_tls "$SRC" yes
start_wsk src_plain "$SRC" no
start_wsk echo_tls "$ECHO" yes
start_wsk echo_idle "$ECHO" yes
echo "dummy" >"$T/none.tickets"

# CPU seconds (user + system, children included) of a process so far
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"; }
pss_kb() { awk '/^Pss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
# PSS of a process and all its children (websockify forks one per tunnel)
tree_pss_kb() {
        local total=0 p
        for p in $1 $(pgrep -P "$1"); do total=$((total + $(pss_kb "$p"))); done
        echo "$total"
}
# kernel memory for sockets: TCP buffer pages plus slab
kmem_kb() { echo $(( $(awk '/^TCP:/ { print $NF * 4 }' /proc/net/sockstat) + $(awk '/^Slab:/ { print $2 }' /proc/meminfo) )); }

row() { printf '%-58s %18s %18s\n' "$@"; }
echo
echo "Gateway benchmark on $(nproc) cores, $(date -u +%Y-%m-%d); atriumd gateway vs websockify $(dpkg-query -W -f='${Version}' websockify 2>/dev/null)"
row "measure" "atrium gateway" "websockify"
row "-------" "--------------" "----------"

throughput() { # RELAY_PID ADDR TICKETS N [plain] -> "MB/s CPU-s/GB"
        local c0 c1 bytes secs
        c0=$(cpu "$1")
        read -r bytes secs <<<"$("$B" bulk "$2" "$3" "$4" 5 ${5:-})"
        sleep 1
        c1=$(cpu "$1")
        awk -v b="${bytes:-0}" -v s="${secs:-1}" -v c0="$c0" -v c1="$c1" 'BEGIN { gb = b / 1e9; printf "%d MB/s, %.2f cpu-s/GB", b / s / 1e6, (gb > 0 ? (c1 - c0) / gb : 0) }'
}
for n in 1 50; do
        A=$(throughput "$tls_PID" "$GW_TLS" "$T/tls.$SRC.tickets" "$n")
        W=$(throughput "$WSK_src_tls_PID" "$WSK_src_tls" "$T/none.tickets" "$n")
        row "relay, $n busy tunnel(s), TLS" "$A" "$W"
        A=$(throughput "$plain_PID" "$GW_PLAIN" "$T/plain.$SRC.tickets" "$n" plain)
        W=$(throughput "$WSK_src_plain_PID" "$WSK_src_plain" "$T/none.tickets" "$n" plain)
        row "relay, $n busy tunnel(s), plain" "$A" "$W"
done

read -r D50 D99 <<<"$("$B" direct "127.0.0.1:$ECHO" 3000)"
read -r A50 A99 <<<"$("$B" latency "$GW_TLS" "$T/tls.$ECHO.tickets" 3000)"
read -r W50 W99 <<<"$("$B" latency "$WSK_echo_tls" "$T/none.tickets" 3000)"
added() { awk -v a="$1" -v d="$2" 'BEGIN { printf "%.0f us", a - d }'; }
row "added latency p50, TLS (direct: ${D50} us)" "$(added "$A50" "$D50")" "$(added "$W50" "$D50")"
row "added latency p99, TLS (direct: ${D99} us)" "$(added "$A99" "$D99")" "$(added "$W99" "$D99")"

# Idle TLS tunnels: memory per tunnel (PSS of the relay + its share of kernel socket memory:
# it holds 2 of the 4 socket ends of a tunnel on loopback).
idle_mem() { # RELAY_PID ADDR TICKETS N TREE -> "KiB/tunnel" or "failed at N"
        local p0 k0 p1 k1 out
        sync; echo 2 >/proc/sys/vm/drop_caches 2>/dev/null
        p0=$([ "$5" = tree ] && tree_pss_kb "$1" || pss_kb "$1"); k0=$(kmem_kb)
        mkfifo "$T/hold"
        "$B" idle "$2" "$3" "$4" <"$T/hold" >"$T/idle.out" 2>&1 &
        local pid=$!
        exec 7>"$T/hold"
        for _ in $(seq 600); do grep -q "^open" "$T/idle.out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        sleep 2
        if grep -q "^open" "$T/idle.out"; then
                p1=$([ "$5" = tree ] && tree_pss_kb "$1" || pss_kb "$1"); k1=$(kmem_kb)
                if [ -n "${6:-}" ]; then eval "$6"; fi
                out=$(awk -v p="$((p1 - p0))" -v k="$((k1 - k0))" -v n="$4" 'BEGIN { printf "%.1f KiB (%.1f + %.1f kernel)", (p + k / 2) / n, p / n, k / 2 / n }')
        else
                out="failed: $(grep -o 'tunnel [0-9]* refused\|[a-z ]*: [A-Za-z ]*$' "$T/idle.out" | tail -1)"
        fi
        exec 7>&-
        wait "$pid" 2>/dev/null
        rm -f "$T/hold"
        echo "$out"
}
A=$(idle_mem "$tls_PID" "$GW_TLS" "$T/tls.$ECHO.tickets" 1000 one)
W=$(idle_mem "$WSK_echo_idle_PID" "$WSK_echo_idle" "$T/none.tickets" 1000 tree)
row "memory per idle TLS tunnel, 1,000 tunnels" "$A" "$W"
sleep 2
# 9,900: the most one process holds under this machine's hard limit of 20,000 open files
# (two per tunnel). websockify is not run at this scale: a process per tunnel at ~2.5 MB each.
A=$(idle_mem "$tls_PID" "$GW_TLS" "$T/tls.$ECHO.tickets" 9900 one)
row "memory per idle TLS tunnel, 9,900 tunnels" "$A" "(not run)"
sleep 2

# 5,000 idle tunnels open: idle CPU over 10 s, and one bulk tunnel's throughput meanwhile
mkfifo "$T/hold5k"
"$B" idle "$GW_TLS" "$T/tls.$ECHO.tickets" 5000 <"$T/hold5k" >"$T/idle5k.out" 2>&1 &
H=$!
exec 8>"$T/hold5k"
for _ in $(seq 600); do grep -q "^open" "$T/idle5k.out" && break; sleep 0.1; done
sleep 2
c0=$(cpu "$tls_PID"); sleep 10; c1=$(cpu "$tls_PID")
row "CPU of the relay, 5,000 idle TLS tunnels, 10 s" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f cpu-s", b - a }')" "(not run)"
A=$(throughput "$tls_PID" "$GW_TLS" "$T/tls.$SRC.tickets" 1)
row "one bulk TLS tunnel while 5,000 idle are open" "$A" "-"
exec 8>&-
wait "$H" 2>/dev/null

# open and close 1,000 tunnels, 6 rounds: memory after each
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
ROUNDS=""
for r in 1 2 3 4 5 6; do
        "$B" churn "$GW_TLS" "$T/tls.$ECHO.tickets" 1000 >/dev/null 2>&1
        sleep 1
        ROUNDS="$ROUNDS $(( $(rss_kb "$tls_PID") / 1024 ))"
done
row "RSS (MiB) after each of 6 rounds of 1,000 tunnels" "${ROUNDS# }" "-"
