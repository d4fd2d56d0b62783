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
agent_state=$state/agent agent_conf=$(dirname "$conf")/agent.conf
agent_pidfile=$agent_state/atriumd.pid

running() { local pid; pid=$(cat "${2:-$pidfile}" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
stop() { # PIDFILE WHAT
        if running x "$1"; then
                kill -TERM "$(cat "$1")"
                for _ in $(seq 1 50); do running x "$1" || break; sleep 0.1; done
                echo "$2 stopped."
        else
                echo "$2 is not running."
        fi
}

if [ "${1-}" = --stop ]; then
        stop "$agent_pidfile" "The host agent"
        stop "$pidfile" "Atrium"
        # Its desktops and guests would run on without it (as on a real install): a demo
        # powers them off. Only this installation's domains (their names carry its id).
        inst=$(sqlite3 "$state/atrium.db" "SELECT value FROM settings WHERE key = 'installation'" 2>/dev/null || true)
        if [ -n "$inst" ] && command -v virsh >/dev/null && [ "$(id -u)" -eq 0 ]; then
                for d in $(virsh -c qemu:///system list --name 2>/dev/null | grep "^atrium-$inst-" || true); do
                        virsh -c qemu:///system destroy "$d" >/dev/null 2>&1 && echo "Powered off $d."
                done
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
# The gateway serves the portal built by make web (an installed Atrium: share/atrium/web).
web=$top/$build/web
if ! grep -q '^web_root' "$conf"; then
        if grep -q '^#web_root' "$conf"; then
                sed -i "s|^#web_root =.*|web_root = $web|" "$conf"
        elif grep -q '^\[gateway\]' "$conf"; then # a file written before the key existed
                sed -i "/^\[gateway\]/a web_root = $web" "$conf"
        else
                printf '\n[gateway]\nweb_root = %s\n' "$web" >>"$conf"
        fi
        if running; then
                echo "Restarting Atrium to serve the portal from $web."
                stop "$pidfile" "Atrium" >/dev/null
        fi
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
gw=$(cat "$state/gateway.url" 2>/dev/null || echo "(not running: see $logdir/atriumd.log)")

# The host agent: this machine joins as host 'local' (root only: it drives the system libvirt).
# A demo guest from the test desktop image is started on it.
agent_note=""
demo_guest() {
        local api=$url/api/v1 pw tok jt hdr images=$state/storage/images isos=$state/storage/isos
        pw=$(cat "$state/initial-admin-password" 2>/dev/null) || return 1
        tok=$(curl -sk "$api/auth/login" -H 'Content-Type: application/json' \
                -d "{\"name\":\"admin\",\"password\":\"$pw\"}" | jq -r .token)
        [ -n "$tok" ] && [ "$tok" != null ] || return 1
        hdr=(-H "Authorization: Bearer $tok" -H 'Content-Type: application/json')
        "$top/scripts/libvirt-up.sh" >/dev/null
        mkdir -p "$images" "$isos" "$agent_state"
        chmod 755 "$state" "$state/storage" "$images" "$isos"
        if [ ! -e "$agent_conf" ]; then
                printf '[daemon]\nlog_level = info\n[agent]\nname = local\nstorage_roots = %s\n' \
                        "$state/storage" >"$agent_conf"
        fi
        if ! running x "$agent_pidfile"; then
                local join=()
                if [ ! -e "$agent_state/agent-credential.json" ]; then
                        jt=$(curl -sk "${hdr[@]}" -X POST "$api/join-tokens" -d '{}')
                        join=(--manager "$url" --join-token "$(jq -r .token <<<"$jt")")
                fi
                nohup "$atriumd" -c "$agent_conf" --state-dir "$agent_state" --role agent "${join[@]}" \
                        >/dev/null 2>>"$logdir/agent.log" &
                for _ in $(seq 1 100); do
                        [ "$(curl -sk "${hdr[@]}" "$api/hosts/local" | jq -r .state)" = up ] && break
                        sleep 0.3
                done
        fi
        [ -e "$images/demo.qcow2" ] || cp "$top/$build/images/atrium-test-desktop.qcow2" "$images/demo.qcow2"
        [ -e "$isos/atrium-live.iso" ] || cp "$top/$build/images/atrium-test-live.iso" "$isos/atrium-live.iso"
        curl -sk "${hdr[@]}" -X POST "$api/storages" -d '{"name":"local"}' >/dev/null
        curl -sk "${hdr[@]}" -X POST "$api/volumes" -d "{\"name\":\"images\",\"storage\":\"local\",\"path\":\"$images\"}" >/dev/null
        curl -sk "${hdr[@]}" -X POST "$api/media" -d "{\"name\":\"isos\",\"path\":\"$isos\"}" >/dev/null
        curl -sk "${hdr[@]}" -X POST "$api/guests" -d '{"name":"demo","volume":"images","disk":"demo.qcow2","ram_mb":256}' >/dev/null
        # A template from the (stopped) test desktop guest, and a stateless pool with a spare.
        local op i st
        if ! curl -sk "${hdr[@]}" "$api/templates/desktop" | jq -e .id >/dev/null 2>&1; then
                # (an older demo started the guest: a template is made from it stopped)
                curl -sk "${hdr[@]}" -X POST "$api/guests/demo/stop" -d '{"force":true}' >/dev/null
                curl -sk "${hdr[@]}" -X POST "$api/templates" -d '{"name":"desktop","volume":"images","from_guest":"demo"}' >/dev/null
        fi
        if ! curl -sk "${hdr[@]}" "$api/pools/office" | jq -e .id >/dev/null 2>&1; then
                op=$(curl -sk "${hdr[@]}" -X POST "$api/pools" -d '{"name":"office","template":"desktop","size":2,"spares":1,"max_size":4,"name_pattern":"office{n}","mode":"stateless","user_actions":true,"description":"The demo pool: stateless desktops from the test image"}' | jq -r .operation)
                for i in $(seq 1 300); do
                        st=$(curl -sk "${hdr[@]}" "$api/operations/$op" | jq -r .state)
                        [ "$st" != running ] && break
                        sleep 0.2
                done
        fi
        if ! curl -sk "${hdr[@]}" "$api/users/demo" | jq -e .id >/dev/null 2>&1; then
                demo_pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 12)
                curl -sk "${hdr[@]}" -X POST "$api/users" -d "{\"name\":\"demo\",\"display_name\":\"Demo User\",\"password\":\"$demo_pw\"}" >/dev/null
                curl -sk "${hdr[@]}" -X POST "$api/entitlements" -d '{"pool":"office","user":"demo"}' >/dev/null
                echo "$demo_pw" >"$state/demo-user-password"
                chmod 600 "$state/demo-user-password"
        fi
        for i in $(seq 1 150); do
                [ "$(curl -sk "${hdr[@]}" "$api/desktops?pool=office&state=running" | jq '.items | length')" -ge 1 ] && return 0
                sleep 0.2
        done
        return 1
}
if [ "$(id -u)" -eq 0 ]; then
        if demo_guest; then
                agent_note="  Host:       'local' (this machine; agent log $logdir/agent.log)
  Template:   'desktop', made from guest 'demo' (the test desktop image)
  Pool:       'office', stateless, 2 desktops, 1 spare started; see the spare with:
                $atrium desktop list --pool office
                $atrium desktop console office1   then   spicy -h HOST -p PORT -w PASSWORD
  Demo user:  'demo', password '$(cat "$state/demo-user-password" 2>/dev/null)' (entitled to 'office')"
        else
                agent_note="  Host:       not joined (the admin password was changed, or libvirt did not start):
                $atrium host join-token create   prints the command that joins a host"
        fi
fi
cat <<TXT

Atrium is running.
  Portal:     $gw/   (the one public port: portal, dashboard, API, consoles)
  REST API:   $url/api/v1   (OpenAPI: $url/api/v1/openapi.json; or through the gateway)
  Log:        $logdir/atriumd.log
  State:      $state
  TLS cert:   $state/tls/cert.pem (self-signed; hand it to clients with --ca)
$agent_note
TXT
if [ -s "$state/initial-admin-password" ]; then
        echo "  Admin:      user 'admin', password '$(cat "$state/initial-admin-password")' (first login; change it with 'atrium passwd')"
else
        echo "  Admin:      user 'admin' (its first password was already changed)"
fi
cat <<TXT

Open the portal in a browser (accept or install the self-signed certificate):
  $gw/
  as 'demo' for My desktops -> Connect (the desktop in the browser) or Download .vv,
  as 'admin' for the Dashboard (hosts, pools, sessions, events, live).

Log in with the CLI (through the gateway):
  $atrium login $gw --ca $state/tls/cert.pem
  $atrium pool show office
Connect as the demo user, with remote-viewer through the gateway:
  $atrium login $gw --user demo --ca $state/tls/cert.pem
  cp $state/tls/cert.pem /usr/local/share/ca-certificates/atrium.crt && update-ca-certificates
  $atrium --json pool connect office | jq -r .vv > office.vv && remote-viewer office.vv
Stop:  make demo-stop
TXT
