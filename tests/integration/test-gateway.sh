#!/bin/bash
# Integration test of the gateway: atriumd (manager + gateway, the default) on loopback, and a
# second gateway in its own process. Consoles are stand-ins run by gwclient.py (an echo and a
# flood TCP server); tickets for them are signed with the manager's own key (sign-ticket).
# Output is TAP. Usage: test-gateway.sh ATRIUMD ATRIUM SIGN_TICKET
set -u
ATRIUMD=$1 ATRIUM=$2 SIGN=$3
T=$(mktemp -d /tmp/atrium-gw-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
GWC="python3 $(dirname "$0")/gwclient.py"
export XDG_CONFIG_HOME=$T/cli HOME=$T
n=0 failed=0 PID= PIDS=()

cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/lib.sh"

mkdir -p "$T/web/assets"
echo '<!doctype html><title>Atrium test portal</title>' >"$T/web/index.html"
echo 'console.log("atrium");' >"$T/web/assets/app.js"
cat >"$CONF" <<CONF
[daemon]
log_level = info
[gateway]
listen = 127.0.0.1:0
web_root = $T/web
tunnels_per_ticket = 3
tunnels_per_user = 5
max_header_bytes = 2048
max_frame_bytes = 65536
handshake_timeout = 3
[manager]
listen = 127.0.0.1:0
password_cost = min
initial_admin_password = admin-pass-1
CONF

"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/stdout" 2>"$T/stderr" &
PID=$!
up() { [ -s "$STATE/gateway.url" ] && curl -sfk "$(cat "$STATE/gateway.url")/api/v1/version"; }
wait_for 10 up
GWURL=$(cat "$STATE/gateway.url")
GW=${GWURL#https://}
API=$GWURL/api/v1
like "the default roles are the manager and the gateway" "$(cat "$T/stderr")" "roles: manager gateway"
like "the gateway says where it listens and how many tunnels it can hold" "$(cat "$T/stderr")" "gateway listening on $GWURL (portal, API and consoles; open-file limit"
like "... and which certificate clients must trust" "$(cat "$T/stderr")" "clients trust $STATE/tls/cert.pem"

# ---- the API through the gateway ----
http GET /version "" ""
is "the API answers through the gateway" "$CODE $(jget .name)" "200 atrium"
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}' ""
TOKEN=$(jget .token)
is "login through the gateway" "$CODE" 200
CODE=$(curl -sk -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 10.9.9.9' -H 'Content-Type: application/json' \
        --data-binary '{"name":"admin","password":"admin-pass-1"}' "$API/auth/login")
http GET "/events?limit=200"
is "the manager sees the client's address, not one the client claims" \
        "$(jget '[.items[] | select(.action == "login") | .address] | unique | join(",")')" "127.0.0.1"
echo admin-pass-1 | "$ATRIUM" login "$GWURL" --user admin --password-stdin --ca "$STATE/tls/cert.pem" >/dev/null 2>&1
is "the CLI logs in through the gateway (checking its certificate)" "$?" 0
is "... and works through it" "$("$ATRIUM" --json user list | jq -r '.items[0].name')" admin

# ---- the portal's files ----
fetch() { curl -sk -o "$T/f" -D "$T/h" -w '%{http_code}' "$@"; }
is "GET / is the portal's index.html" "$(fetch "$GWURL/") $(cat "$T/f")" "200 <!doctype html><title>Atrium test portal</title>"
like "... with a content security policy" "$(cat "$T/h")" "Content-Security-Policy: default-src 'self'"
is "a file with its type" "$(fetch "$GWURL/assets/app.js") $(grep -i '^content-type' "$T/h" | tr -d '\r')" \
        "200 Content-Type: text/javascript; charset=utf-8"
is "a route of the single-page app gets index.html" "$(fetch "$GWURL/desktops/12") $(cat "$T/f")" "200 <!doctype html><title>Atrium test portal</title>"
is "a missing file: 404" "$(fetch "$GWURL/assets/missing.js")" 404
is "a path out of the web root: 400" "$(fetch --path-as-is "$GWURL/../../etc/passwd")" 400
is "an encoded path out of the web root: 400" "$(fetch --path-as-is "$GWURL/%2e%2e/%2e%2e/etc/passwd")" 400
is "POST to the portal: 405" "$(fetch -X POST "$GWURL/index.html")" 405
is "plain HTTP on the gateway's port gets nothing" "$(curl -s -o /dev/null -w '%{http_code}' "http://$GW/")" 000

# ---- consoles ----
$GWC target "$T/echo.port" echo & PIDS+=($!)
$GWC target "$T/flood.port" flood & PIDS+=($!)
wait_for 10 test -s "$T/echo.port"; wait_for 10 test -s "$T/flood.port"
EP=$(cat "$T/echo.port") FP=$(cat "$T/flood.port")
ticket() { "$SIGN" "$STATE/ticket.key" "${1:-127.0.0.1}" "${2:-$EP}" "${3:-vnc}" "${4:-7}" "${5:-3}" "${6:-60}"; }
TK=$(ticket)
is "a WebSocket tunnel with a ticket (binary subprotocol, as websockify)" "$($GWC ws "$GW" "$TK")" \
        "HTTP/1.1 101 Switching Protocols protocol binary: echo ok"
is "... its other channels from the same client pass until expiry" "$($GWC ws "$GW" "$TK" --proto '')" \
        "HTTP/1.1 101 Switching Protocols protocol none: echo ok"
is "the /websockify path works as well" "$($GWC ws "$GW" "$TK" --path /websockify)" \
        "HTTP/1.1 101 Switching Protocols protocol binary: echo ok"
TS=$(ticket 127.0.0.1 "$EP" spice 8 3)
is "a CONNECT tunnel with the ticket as the proxy password (spice-gtk)" "$($GWC connect "$GW" "127.0.0.1:$EP" "$TS")" \
        "HTTP/1.0 200 Connection established: echo ok"
events() { curl -sk -H "Authorization: Bearer $TOKEN" "$API/events?limit=1000" | jq -r "[.items[] | select($1)] | length"; }
connected_seen() { [ "$(events '.action == "console_connected" and .object_id == 7')" -ge 1 ] && [ "$(events '.action == "console_disconnected" and .object_id == 7')" -ge 1 ]; }
check "the manager hears of tunnels opened and closed (console_connected / console_disconnected)" wait_for 10 connected_seen
http GET "/events?limit=1000"
like "... with the byte counts" "$(jget '[.items[] | select(.action == "console_disconnected")][0].detail')" "bytes in"

# ---- refused tickets: each a clear error and an event ----
refused_before=$(events '.action == "ticket_refused"')
like "WebSocket without a ticket: 401" "$($GWC ws "$GW" "")" "HTTP/1.1 401 Unauthorized: no console ticket"
like "CONNECT without a ticket: 407 asking for one" "$($GWC connect "$GW" "127.0.0.1:$EP" -)" "HTTP/1.1 407 Proxy Authentication Required"
head -c 64 /dev/urandom >"$T/other.key"
like "a forged ticket (signed by another key): 403" "$($GWC ws "$GW" "$("$SIGN" "$T/other.key" 127.0.0.1 "$EP" vnc 7 3 60)")" \
        "403 Forbidden: console ticket refused: its signature does not verify"
ALT=$(python3 -c 'import sys,base64,json
t=sys.argv[1].split(".")
p=json.loads(base64.urlsafe_b64decode(t[1]+"=="))
p["port"]=1
b=base64.urlsafe_b64encode(json.dumps(p,separators=(",",":")).encode()).decode().rstrip("=")
print(t[0]+"."+b+"."+t[2])' "$TK")
like "an altered ticket (another target): 403" "$($GWC ws "$GW" "$ALT")" "403 Forbidden: console ticket refused: its signature does not verify"
like "an expired ticket: 403" "$($GWC ws "$GW" "$(ticket 127.0.0.1 "$EP" vnc 7 3 -5)")" "403 Forbidden: console ticket refused: it expired"
like "a CONNECT to another target than the ticket's: 403" "$($GWC connect "$GW" "127.0.0.1:22" "$TS")" \
        "403 Forbidden: the ticket is for another console than 127.0.0.1:22"
like "a ticket replayed from another client: 403" "$($GWC ws "$GW" "$TK" --source 127.0.0.2)" \
        "403 Forbidden: this console ticket was already used by another client"
like "not a ticket at all: 403" "$($GWC ws "$GW" "hello")" "403 Forbidden: not a valid console ticket"
refused_seen() { [ "$(events '.action == "ticket_refused"')" -ge $((refused_before + 8)) ]; }
check "each refusal is an event (ticket_refused)" wait_for 10 refused_seen
like "a console nobody listens on: 502" "$($GWC ws "$GW" "$(ticket 127.0.0.1 1)")" "502 Bad Gateway: cannot reach the desktop's console"

# ---- limits ----
TL=$(ticket 127.0.0.1 "$EP" vnc 9 4)
HOLDS=()
for i in 1 2 3; do $GWC ws "$GW" "$TL" --hold 6 >"$T/hold$i" & HOLDS+=($!); done
held() { grep -c "echo ok" "$T"/hold* | awk -F: '{s+=$2} END {exit !(s==3)}'; }
wait_for 10 held
like "a fourth tunnel with one ticket (tunnels_per_ticket = 3): 429" "$($GWC ws "$GW" "$TL")" \
        "429 Too Many Requests: too many tunnels open with this ticket"
TL2=$(ticket 127.0.0.1 "$EP" vnc 10 4)
for i in 4 5; do $GWC ws "$GW" "$TL2" --hold 6 >"$T/hold$i" & HOLDS+=($!); done
held5() { grep -c "echo ok" "$T"/hold* | awk -F: '{s+=$2} END {exit !(s==5)}'; }
wait_for 10 held5
like "a sixth tunnel for one user (tunnels_per_user = 5): 429" "$($GWC ws "$GW" "$(ticket 127.0.0.1 "$EP" vnc 11 4)")" \
        "429 Too Many Requests: too many tunnels open for this user"
wait "${HOLDS[@]}"
ok_again() { [ "$($GWC ws "$GW" "$TL")" = "HTTP/1.1 101 Switching Protocols protocol binary: echo ok" ]; }
check "once they closed, the ticket opens tunnels again" wait_for 10 ok_again
BIG=$(python3 -c 'print(("GET / HTTP/1.1\r\n" + "X-Filler: " + "a" * 3000 + "\r\n\r\n").encode().hex())')
like "a request head over max_header_bytes: 400" "$($GWC raw "$GW" "$BIG")" "HTTP/1.1 400 Bad Request: request head too long"
like "bytes that are not HTTP: 400" "$($GWC raw "$GW" "$(python3 -c 'print(b"SSH-2.0-OpenSSH\r\n\r\n".hex())')")" "HTTP/1.1 400 Bad Request"
like "a client that sends nothing is closed after handshake_timeout" "$($GWC idle "$GW")" "closed after 3 s"
like "... and one that never finishes its head too" "$($GWC idle "$GW" "$(python3 -c 'print(b"GET / HTTP/1.1\r\n".hex())')")" "closed after 3 s"
like "a WebSocket frame over max_frame_bytes: closed (1002)" "$($GWC frame "$GW" "$TK" 82ff0000000000020000aabbccdd)" \
        "close 1002: WebSocket frame larger than the gateway accepts"
like "an unmasked client frame: closed (1002)" "$($GWC frame "$GW" "$TK" 820161)" "close 1002: unmasked WebSocket frame"
like "a ping gets its pong" "$($GWC frame "$GW" "$TK" 8982000000006869)" "pong hi"
TF=$(ticket 127.0.0.1 "$FP" vnc 12 5)
echo "# a client stops reading for 30 s while its console floods it"
SLOW=$($GWC slow "$GW" "$TF" 30 "$STATE/atriumd.pid")
growth=$(echo "$SLOW" | sed -n 's/^growth \(-\?[0-9]*\) kB.*/\1/p')
if [ -n "$growth" ] && [ "$growth" -lt 4096 ]; then ok "a reader stopped for 30 s leaves the gateway's memory under the cap ($growth kB)"; else not_ok "a reader stopped for 30 s leaves the gateway's memory under the cap" "$SLOW"; fi
like "... and its tunnel goes on when it reads again" "$SLOW" "reading again gets data"

# ---- the manager's report route ----
before=$(dbdump)
CODE=$(curl -sk -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '{"events":[{"kind":"open","desktop":7}]}' "$API/gateway/events")
is "a tunnel report without the gateway key: 401" "$CODE $(jq -r .error.code "$T/body")" "401 unauthorized"
CODE=$(curl -sk -o /dev/null -w '%{http_code}' -H 'X-Atrium-Gateway-Key: wrong' -H 'Content-Type: application/json' \
        --data-binary '{"events":[{"kind":"open","desktop":7}]}' "$API/gateway/events")
is "... with a wrong key: 401" "$CODE" 401
is "... nothing recorded" "$(dbdump)" "$before"
CODE=$(curl -sk -o "$T/body" -w '%{http_code}' -H "X-Atrium-Gateway-Key: $(cat "$STATE/gateway.key")" -H 'Content-Type: application/json' \
        --data-binary '{"events":"nope"}' "$API/gateway/events")
is "... with the key but no event list: 400" "$CODE" 400
CODE=$(curl -sk -o "$T/body" -w '%{http_code}' -H "X-Atrium-Gateway-Key: $(cat "$STATE/gateway.key")" -H 'Content-Type: application/json' \
        --data-binary '{"events":[],"after":0}' "$API/gateway/events")
is "... with the key: 200 and the orders to carry out (none here)" "$CODE $(jq -c .orders "$T/body") $(jq -r '.last | type' "$T/body")" "200 [] number"
is "the gateway key is private" "$(stat -c %a "$STATE/gateway.key")" 600

# ---- a second gateway in its own process, in front of the same manager ----
MURL=$(cat "$STATE/manager.url")
MFP=$(openssl x509 -in "$STATE/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
mkdir -p "$T/g2"
printf '[gateway]\nlisten = 127.0.0.1:0\n' >"$T/g2.conf"
"$ATRIUMD" -c "$T/g2.conf" --state-dir "$T/g2" --role gateway --manager "$MURL" --manager-fingerprint "$MFP" >"$T/g2.out" 2>&1
like "a gateway alone without the manager's gateway key: says what to copy" "$(cat "$T/g2.out")" "copy the manager's state_dir/gateway.key"
cp "$STATE/gateway.key" "$T/g2/"
"$ATRIUMD" -c "$T/g2.conf" --state-dir "$T/g2" --role gateway --manager "$MURL" --manager-fingerprint "$MFP" >"$T/g2.out" 2>&1
like "... without the ticket public key: says what to copy" "$(cat "$T/g2.out")" "copy the manager's state_dir/ticket-public.key"
cp "$STATE/ticket-public.key" "$T/g2/"
"$ATRIUMD" -c "$T/g2.conf" --state-dir "$T/g2" --role gateway --manager "$MURL" --manager-fingerprint "$MFP" >"$T/g2.out" 2>&1 &
G2PID=$!; PIDS+=($G2PID)
up2() { [ -s "$T/g2/gateway.url" ] && curl -sfk "$(cat "$T/g2/gateway.url")/api/v1/version"; }
check "a second gateway starts in its own process (--role gateway)" wait_for 10 up2
G2=$(sed 's|https://||' "$T/g2/gateway.url")
is "the API through the second gateway (pinned manager certificate)" "$(curl -sk "https://$G2/api/v1/version" | jq -r .name)" atrium
T2=$(ticket 127.0.0.1 "$EP" vnc 21 3)
is "a console through the second gateway" "$($GWC ws "$G2" "$T2")" "HTTP/1.1 101 Switching Protocols protocol binary: echo ok"
is "... and through the first with the same key pair (a fresh ticket)" "$($GWC ws "$GW" "$(ticket 127.0.0.1 "$EP" vnc 22 3)")" \
        "HTTP/1.1 101 Switching Protocols protocol binary: echo ok"
g2_seen() { [ "$(events '.action == "console_connected" and .object_id == 21 and (.actor | startswith("gateway ")) and .actor != "gateway local"')" -ge 1 ]; }
check "the second gateway reports its tunnels to the manager" wait_for 10 g2_seen
mkdir -p "$T/g3"; cp "$T/g2/"*.key "$T/g3/"
"$ATRIUMD" -c "$T/g2.conf" --state-dir "$T/g3" --role gateway --manager "$MURL" \
        --manager-fingerprint "AA:BB:CC" >"$T/g3.out" 2>&1 &
PIDS+=($!)
up3() { [ -s "$T/g3/gateway.url" ]; }
wait_for 10 up3
is "a gateway whose manager certificate is not the pinned one relays no API call: 502" \
        "$(curl -sk -o /dev/null -w '%{http_code}' "$(cat "$T/g3/gateway.url")/api/v1/version")" 502

# ---- stopping with tunnels open ----
$GWC ws "$GW" "$(ticket 127.0.0.1 "$EP" vnc 30 6)" --hold 30 >/dev/null &
HOLD=$!
sleep 1
kill -TERM "$PID"
stopped() { ! kill -0 "$PID" 2>/dev/null; }
check "SIGTERM with a tunnel open stops the daemon promptly" wait_for 5 stopped
wait "$PID"; is "... cleanly" "$?" 0
PID=
kill "$HOLD" 2>/dev/null
kill -TERM "$G2PID"; wait "$G2PID"; is "the second gateway stops cleanly too" "$?" 0

echo "1..$n"
[ "$failed" -eq 0 ]
