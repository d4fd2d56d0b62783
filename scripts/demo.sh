#!/bin/bash
# Start Atrium on this machine with its embedded defaults and say how to use it.
#   demo.sh BUILD_DIR   start (or show the running one)
#   demo.sh --stop      stop it
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then
        conf=/etc/atrium/atrium.conf state=/var/lib/atrium logdir=/var/log/atrium
else
        conf=$top/.demo/atrium.conf state=$top/.demo/state logdir=$top/.demo
fi
pidfile=$state/atriumd.pid

running() { local pid; pid=$(cat "$pidfile" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

if [ "${1-}" = --stop ]; then
        if running; then
                kill -TERM "$(cat "$pidfile")"
                for _ in $(seq 1 50); do running || break; sleep 0.1; done
                echo "Atrium stopped."
        else
                echo "Atrium is not running."
        fi
        exit 0
fi

build=${1:-build}
atriumd=$top/$build/src/atriumd atrium=$top/$build/src/atrium
mkdir -p "$(dirname "$conf")" "$logdir"
if [ ! -e "$conf" ]; then
        "$atriumd" --print-config >"$conf"
        echo "Wrote the default configuration to $conf (every key commented, at its default)."
fi
if running; then
        echo "Atrium is already running (pid $(cat "$pidfile"))."
else
        # stdout carries the first admin password: keep it out of the log file.
        nohup "$atriumd" -c "$conf" --state-dir "$state" >/dev/null 2>>"$logdir/atriumd.log" &
        for _ in $(seq 1 100); do
                [ -s "$state/manager.url" ] && [ "$state/manager.url" -nt "$conf" ] &&
                        curl -sk --max-time 2 "$(cat "$state/manager.url")/api/v1/version" >/dev/null && break
                sleep 0.2
        done
        if ! running; then
                echo "error: atriumd did not start; the end of $logdir/atriumd.log says:" >&2
                tail -n 5 "$logdir/atriumd.log" >&2
                exit 1
        fi
fi
url=$(cat "$state/manager.url")
cat <<TXT

Atrium is running.
  REST API:   $url/api/v1   (OpenAPI: $url/api/v1/openapi.json)
  Log:        $logdir/atriumd.log
  State:      $state
  TLS cert:   $state/tls/cert.pem (self-signed; hand it to clients with --ca)
TXT
if [ -s "$state/initial-admin-password" ]; then
        echo "  Admin:      user 'admin', password '$(cat "$state/initial-admin-password")' (first login; change it with 'atrium passwd')"
else
        echo "  Admin:      user 'admin' (its first password was already changed)"
fi
cat <<TXT

Log in with the CLI:
  $atrium login $url --ca $state/tls/cert.pem
  $atrium pool list
Stop:  make demo-stop
TXT
