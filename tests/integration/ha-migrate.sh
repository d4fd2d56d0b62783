# Live migration and hosts that drain themselves, on test-ha.sh's rig (sourced by it, with its
# helpers, manager and pools): every host's libvirtd on TLS with the certificates the manager
# issued at join, QEMU's migration stream inside TLS with the same certificates, real QEMU
# (TCG) running the test desktop image.
#   migrate:    pp1, with a counter appended once a second on its serial console, goes to
#               another host: the counter has no gap or repeat, one QEMU writes its disk at
#               every sample (100 ms), the domain is defined only on the destination, the
#               epoch moved, the operation showed progress
#   bad input:  to its own host, an unknown host, a host in maintenance, one that does not
#               reach the volume, a stopped desktop, two migrations at once, a malformed body
#   cancel, timeout, destination's libvirtd killed mid-migration: it runs on the source still
#   drain:      a host with desktops, a spare and a desktop on its own disk: what can move
#               moves, the rest is listed; then the host ends empty in maintenance
mhost_other() { # D: a host up, other than D's, not in maintenance
        local h
        for h in h1 h2 h3; do
                [ "$h" != "$(dhost "$1")" ] && is_state "$h" up && { echo "$h"; return; }
        done
}
op_state() { q "SELECT state FROM operations WHERE id = $1"; }
op_ended() { [ "$(op_state "$1")" != running ]; }
reload_conf() { kill -HUP "$MPID"; sleep 0.5; }
set_conf() { # KEY VALUE in [manager]
        sed -i "/^$1 = /d" "$CONF"
        sed -i "/^\[manager\]/a $1 = $2" "$CONF"
        reload_conf
}
disk_of() { echo "$RIG_SHARED/$(q "SELECT disk FROM desktops WHERE name = '$1'")"; }
defined_on() { hvirsh "$(hnum "$2")" list --all --name 2>/dev/null | grep -qx "$(ddom "$1")"; }

running_somewhere() { [ -n "$(dhost "$1")" ] && running_on "$1" "$(dhost "$1")"; }

# ---- the counter ----
SINCE=0
wait_for 90 running_somewhere pp1; is "pp1 runs" "$?" 0
SRC_H=$(dhost pp1)
serial pp1 "rm -f /root/counter; (i=0; while :; do i=\$((i+1)); echo \$i >>/root/counter; sync; sleep 1; done) >/dev/null 2>&1 & echo STARTED-\$((6*7))" STARTED-42 >/dev/null
is "a counter is appended on pp1 once a second" "$?" 0
EPOCH0=$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")

# ---- bad input ----
http POST /desktops/pp1/migrate "{\"to\":\"$SRC_H\"}"; is "migrate to its own host: 400" "$CODE" 400
like "... saying so" "$(jget .error.message)" "runs on host $SRC_H already"
http POST /desktops/pp1/migrate '{"to":"nohost"}'; is "migrate to an unknown host: 404" "$CODE" 404
http POST /desktops/pp1/migrate '{"to":7,"x":1}'; is "a malformed body: 400" "$CODE" 400
DST=$(mhost_other pp1)
"$ATRIUM" host maintenance "$DST" on >/dev/null
http POST /desktops/pp1/migrate "{\"to\":\"$DST\"}"; is "migrate to a host in maintenance: 409" "$CODE" 409
like "... saying so" "$(jget .error.message)" "in maintenance"
"$ATRIUM" host maintenance "$DST" off >/dev/null
running_on lp1 h1 || check "lp1 (its disk on h1's own volume) starts on h1" "$ATRIUM" desktop start lp1
wait_for 60 running_on lp1 h1
http POST /desktops/lp1/migrate '{"to":"h2"}'; is "migrate to a host that does not reach the volume: 409" "$CODE" 409
like "... saying so" "$(jget .error.message)" "does not reach the volume"
check "lp1 stops" "$ATRIUM" desktop stop lp1 --force
wait_for 30 sh -c "[ \"\$(sqlite3 '$STATE/atrium.db' \"SELECT state FROM desktops WHERE name = 'lp1'\")\" = stopped ]"
OUT=$("$ATRIUM" desktop migrate lp1 --to h2 2>&1); RC=$?
is "migrate a stopped desktop: refused" "$RC" 1
like "... saying why" "$OUT" "only a running desktop migrates"
is "nothing was recorded by the refusals" "$(q "SELECT count(*) FROM desktops WHERE migrating_to_id IS NOT NULL")" 0

# ---- pp1 migrates, the counter running ----
DISK=$(disk_of pp1)
rm -f "$T/watch.stop"
python3 "$SRC/tests/integration/ha-watch.py" "$RIG_SHARED" "$STATE/atrium.db" "$T/mwatch.log" "$T/watch.stop" "$DISK" &
WPID=$!
sleep 1
DST=$(mhost_other pp1)
SINCE=$(last_event_id)
"$ATRIUM" desktop migrate pp1 --to "$DST" --wait >"$T/migrate.out" 2>&1 &
CPID=$!
wait_for 5 sh -c "[ \"\$(sqlite3 '$STATE/atrium.db' \"SELECT count(*) FROM desktops WHERE name = 'pp1' AND migrating_to_id IS NOT NULL\")\" = 1 ]"
http POST /desktops/pp1/migrate '{}'; is "a second migration of pp1 meanwhile: 409" "$CODE" 409
like "... saying it is migrating already" "$(jget .error.message)" "migrating already"
wait "$CPID"; is "atrium desktop migrate pp1 --to $DST --wait: done" "$?" 0
like "... with a progress bar" "$(cat "$T/migrate.out")" "100%"
wait_for 20 running_on pp1 "$DST"; is "pp1 runs on $DST" "$?" 0
defined_on pp1 "$SRC_H"; is "... its domain is gone from $SRC_H (not even defined)" "$?" 1
is "... and persistent on $DST" "$(hvirsh "$(hnum "$DST")" dominfo "$(ddom pp1)" | awk '/^Persistent/ {print $2}')" yes
EPOCH1=$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")
[ "$EPOCH1" -gt "$EPOCH0" ]; is "the epoch moved ($EPOCH0 -> $EPOCH1)" "$?" 0
like "... and its domain's metadata carries it" "$(hvirsh "$(hnum "$DST")" metadata "$(ddom pp1)" https://atrium-vdi.org/xmlns/domain/1)" "epoch=\"$EPOCH1\""
OP=$(q "SELECT max(id) FROM operations WHERE kind = 'migrate' AND object_name = 'pp1'")
is "the operation is done" "$(op_state "$OP")" done
[ "$(q "SELECT bytes_total FROM operations WHERE id = $OP")" -gt 0 ]; is "... and told bytes on the way" "$?" 0
is "an event desktop_migrated" "$(events_since "$SINCE" desktop_migrated pp1)" 1
like "... placed on $DST at the switch-over, when $DST reported its copy running" \
        "$(grep "desktop $(q "SELECT id FROM desktops WHERE name = 'pp1'"): switched over to host" "$T/manager.err" | tail -1)" "switched over to host $DST"
is "... its source's last reports (old epoch) not taken for a stale domain" "$(events_since "$SINCE" stale_domain_removed pp1)" 0
sleep 3
counter_seq() { serial pp1 "awk 'NR != \$1 {bad=1} END {print (bad ? \"GAP\" : \"SEQ\") \"-OK\"}' /root/counter" SEQ-OK GAP-OK; }
is "the counter has no gap or repeat across the migration" "$(counter_seq)" SEQ-OK
is "... and went on (more than 5 lines)" "$(serial pp1 "[ \$(wc -l </root/counter) -gt 5 ] && echo MANY-\$((6*7)) || echo FEW-\$((6*7))" MANY-42 FEW-42)" MANY-42
touch "$T/watch.stop"; wait "$WPID"; WPID=
is "never two QEMUs writing pp1's disk" "$(tail -1 "$T/mwatch.log" | awk '{print $4}')" 0
echo "# migration watch: $(tail -1 "$T/mwatch.log")"

# ---- bob's browser console follows pp1 to its next host ----
if [ -e "$WEB/index.html" ]; then
        mkdir -p "$SHOTS"
        rm -f "$T/follow.ready" "$T/follow.png"
        (cd "$SRC/tests/browser" && timeout 300 node portal.mjs follow "$(cat "$STATE/gateway.url")" "$SHOTS" \
                bob bob-pass-1 "$(q "SELECT id FROM desktops WHERE name = 'pp1'")" "$T/follow.ready" "$T/follow.png" >"$T/follow.out" 2>&1) &
        FPID=$!
        wait_for 150 test -s "$T/follow.ready"; is "bob's browser console of pp1 is open" "$?" 0
        DST=$(mhost_other pp1)
        check "pp1 migrates to $DST with it open" "$ATRIUM" desktop migrate pp1 --to "$DST" --wait
        wait "$FPID"
        tap_relay "portal: " <"$T/follow.out"
        like "... the console shows pp1's screen again (OCR)" "$(tesseract "$T/follow.png" - --psm 6 2>/dev/null)" "ATRIUM TEST DESKTOP"
else
        not_ok "the portal is built" "no $WEB/index.html: make web"
fi

# ---- bob's stock remote-viewer (SPICE through the gateway's CONNECT) follows pp1 too ----
# SPICE's seamless migration: the source's QEMU tells the client where the copy listens, the
# client connects there through the same proxy with the same ticket, and the gateway admits
# that target for pp1's ticket only because the manager said pp1's console moved there.
PP1=$(q "SELECT id FROM desktops WHERE name = 'pp1'")
cp "$STATE/tls/cert.pem" "$CA_FILE" && update-ca-certificates >/dev/null 2>&1
Xvfb :77 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
XPID=$!
http POST /desktops/pp1/connect '{"protocol":"spice"}' "$BOBT"
is "bob connects to pp1 for SPICE: a .vv file" "$CODE" 200
jget .vv >"$T/pp1.vv"
TKT=$(jget .ticket)
# Stock remote-viewer runs without the tests' G_DEBUG=fatal-criticals: its own harmless
# criticals under Xvfb (try_keyboard_grab) would abort it, and a client vanishing during a
# seamless SPICE migration crashes the spice-server 0.15 of the QEMU it was on.
DISPLAY=:77 env -u G_DEBUG remote-viewer "$T/pp1.vv" >"$T/rv.log" 2>&1 &
VPID=$!
rv_shows() { rm -f "$T/rv.ppm"; DISPLAY=:77 xwd -root -silent 2>/dev/null | xwdtopnm >"$T/rv.ppm" 2>/dev/null && tesseract "$T/rv.ppm" - --psm 6 2>/dev/null | tr -s ' ' | grep -q "$1"; }
wait_for 60 rv_shows "ATRIUM TEST DESKTOP"; is "stock remote-viewer (under Xvfb) shows pp1 through the gateway" "$?" 0
DST=$(mhost_other pp1)
check "pp1 migrates to $DST with remote-viewer connected" "$ATRIUM" desktop migrate pp1 --to "$DST" --wait
wait_for 20 running_on pp1 "$DST"
serial pp1 "printf '\\n  SEEN AFTER THE MOVE\\n' >/dev/tty1; echo TOLD-\$((6*7))" TOLD-42 >/dev/null
wait_for 30 rv_shows "SEEN AFTER THE MOVE"; SEEN=$?; is "... then shows what pp1 writes on $DST, nobody doing anything" "$SEEN" 0
[ "$SEEN" = 0 ] || { cp "$T/rv.ppm" "$SHOTS/remote-viewer-follow.ppm" 2>/dev/null; sed 's/^/# rv: /' "$T/rv.log" | tail -5; }
kill -0 "$VPID" 2>/dev/null; is "... the same remote-viewer, still running" "$?" 0
like "... the gateway let it follow pp1 to $DST, from the manager's move order" "$(grep "a client follows desktop $PP1 to" "$T/manager.err" | tail -1)" "$(q "SELECT address FROM hosts WHERE name = '$DST'")"
DADDR=$(q "SELECT address FROM hosts WHERE name = '$DST'") DPORT=$(grep -o "a client follows desktop $PP1 to [0-9.]*:[0-9]*" "$T/manager.err" | tail -1 | sed 's/.*://')
GWA=$(sed 's|^https://||' "$STATE/gateway.url")
like "bad input: with that ticket, another console on $DST than pp1's (port $((DPORT + 1))): 403" \
        "$(python3 "$SRC/tests/integration/gwclient.py" connect "$GWA" "$DADDR:$((DPORT + 1))" "$TKT")" "403 Forbidden"
like "bad input: that ticket for pp1's new console, from another client address: 403" \
        "$(python3 "$SRC/tests/integration/gwclient.py" connect "$GWA" "$DADDR:$DPORT" "$TKT" --source 127.0.0.2)" "403 Forbidden"

# ---- ... and through a gateway in its own process (atriumd --role gateway) ----
# Its move orders come in the manager's answers to its reports (POST /gateway/events); it holds
# the client's CONNECT to the new target until the order is there.
kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; VPID=
mkdir -p "$T/gw2"; cp "$STATE/gateway.key" "$STATE/ticket-public.key" "$T/gw2/"
printf '[gateway]\nlisten = 127.0.0.1:0\ntls_cert = %s\ntls_key = %s\n' "$STATE/tls/cert.pem" "$STATE/tls/key.pem" >"$T/gw2.conf"
MFP=$(openssl x509 -in "$STATE/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
"$ATRIUMD" -c "$T/gw2.conf" --state-dir "$T/gw2" --role gateway --manager "$(cat "$STATE/manager.url")" \
        --manager-fingerprint "$MFP" >"$T/gw2.out" 2>&1 &
G2PID=$!
wait_for 15 test -s "$T/gw2/gateway.url"; is "a gateway alone (atriumd --role gateway) in front of the rig's manager" "$?" 0
G2=$(sed 's|^https://||' "$T/gw2/gateway.url")
http POST /desktops/pp1/connect '{"protocol":"spice"}' "$BOBT"
jget .vv | sed "s|@$GWA\$|@$G2|" >"$T/pp1-g2.vv"
like "... bob's .vv file rewritten to go through it" "$(grep '^proxy=' "$T/pp1-g2.vv")" "@$G2"
DISPLAY=:77 env -u G_DEBUG remote-viewer "$T/pp1-g2.vv" >"$T/rv2.log" 2>&1 &
VPID=$!
wait_for 60 rv_shows "SEEN AFTER THE MOVE"; is "stock remote-viewer shows pp1 through that gateway" "$?" 0
SRC_H=$(dhost pp1) DST=$(mhost_other pp1)
check "pp1 migrates to $DST with remote-viewer connected through it" "$ATRIUM" desktop migrate pp1 --to "$DST" --wait
wait_for 20 running_on pp1 "$DST"
serial pp1 "printf '\\n  CARRIED BY GATEWAY TWO\\n' >/dev/tty1; echo TOLD-\$((6*7))" TOLD-42 >/dev/null
wait_for 30 rv_shows "CARRIED BY GATEWAY TWO"; SEEN=$?; is "... then shows what pp1 writes on $DST" "$SEEN" 0
[ "$SEEN" = 0 ] || { cp "$T/rv.ppm" "$SHOTS/remote-viewer-follow-gw2.ppm" 2>/dev/null; sed 's/^/# rv: /' "$T/rv2.log" | tail -5; }
kill -0 "$VPID" 2>/dev/null; is "... the same remote-viewer, still running" "$?" 0
like "... that gateway let it follow pp1 to $DST, from the move order in the manager's answer" \
        "$(grep "a client follows desktop $PP1 to" "$T/gw2.out" | tail -1)" "$(q "SELECT address FROM hosts WHERE name = '$DST'")"
kill "$G2PID" 2>/dev/null; wait "$G2PID" 2>/dev/null; G2PID=
kill "$VPID" "$XPID" 2>/dev/null; wait "$VPID" "$XPID" 2>/dev/null; VPID= XPID=

# ---- cancel mid-way (memory filled, the bandwidth held down: there is a mid-way) ----
EPOCH2=$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")
is "pp1's memory filled with 48 MiB of random bytes" "$(serial pp1 "mkdir -p /run/fill && mount -t tmpfs -o size=64m tmpfs /run/fill && dd if=/dev/urandom of=/run/fill/x bs=1048576 count=48 2>/dev/null && echo FILLED-\$((6*7))" FILLED-42)" FILLED-42
set_conf migration_bandwidth 2
SRC_H=$(dhost pp1) DST=$(mhost_other pp1) SINCE=$(last_event_id)
http POST /desktops/pp1/migrate "{\"to\":\"$DST\"}"; is "a slow migration begins: 202" "$CODE" 202
OP=$(jget .id)
sleep 2
OUT=$("$ATRIUM" operation cancel "$OP" 2>&1); is "atrium operation cancel $OP" "$?" 0
wait_for 30 op_ended "$OP"; is "... the migration fails" "$(op_state "$OP")" failed
like "... saying it was cancelled" "$(q "SELECT message FROM operations WHERE id = $OP")" "cancelled"
wait_for 10 running_on pp1 "$SRC_H"; is "pp1 keeps running on $SRC_H" "$?" 0
is "... at the same epoch" "$(q "SELECT epoch FROM desktops WHERE name = 'pp1'")" "$EPOCH2"
wait_for 20 sh -c "! '$SRC/tests/rig/rig.sh' exec '$R' $(hnum "$DST") virsh -c qemu:///system list --all --name | grep -qx '$(ddom pp1)'"
is "... nothing of it left on $DST" "$?" 0
is "... an event saying why" "$(events_since "$SINCE" desktop_migration_failed pp1)" 1
http POST "/operations/$OP/cancel" '{}'; is "cancelling an ended operation: 409" "$CODE" 409

# ---- a migration outliving its timeout ----
set_conf migration_bandwidth 1
set_conf migration_timeout 10
http POST /desktops/pp1/migrate "{\"to\":\"$DST\"}"; OP=$(jget .id)
wait_for 40 op_ended "$OP"; is "a migration outliving its timeout fails" "$(op_state "$OP")" failed
like "... saying so" "$(q "SELECT message FROM operations WHERE id = $OP")" "timeout"
wait_for 10 running_on pp1 "$SRC_H"; is "... pp1 runs on $SRC_H still" "$?" 0

# ---- the destination's libvirtd killed mid-migration ----
set_conf migration_timeout 600
set_conf migration_bandwidth 2
SINCE=$(last_event_id)
http POST /desktops/pp1/migrate "{\"to\":\"$DST\"}"; OP=$(jget .id)
sleep 2
kill -9 "$(cat "$R/h$(hnum "$DST")/libvirtd.pid")"
wait_for 60 op_ended "$OP"; is "the destination's libvirtd killed mid-migration: it fails" "$(op_state "$OP")" failed
echo "# $(q "SELECT message FROM operations WHERE id = $OP")"
wait_for 10 running_on pp1 "$SRC_H"; is "... pp1 runs on $SRC_H still" "$?" 0
rig_tls "$R" "$(hnum "$DST")" "$R/h$(hnum "$DST")/state/pki" >/dev/null
wait_for 30 sh -c "! '$SRC/tests/rig/rig.sh' exec '$R' $(hnum "$DST") virsh -c qemu:///system list --all --name | grep -qx '$(ddom pp1)'"
is "... and its libvirtd back, nothing of pp1 on $DST" "$?" 0
set_conf migration_bandwidth 0
is "pp1's counter has no gap or repeat after all that" "$(counter_seq)" SEQ-OK

# ---- the dashboard: the guest vm1 moved from the Guests page ----
ghost() { q "SELECT h.name FROM guests g JOIN hosts h ON h.id = g.host_id WHERE g.name = '$1'"; }
if [ -e "$WEB/index.html" ]; then
        gstate() { q "SELECT state FROM guests WHERE name = '$1'"; }
        [ "$(gstate vm1)" = running ] || "$ATRIUM" guest start vm1 >/dev/null 2>&1
        vm1_running() { [ "$(gstate vm1)" = running ]; }
        wait_for 90 vm1_running
        GH0=$(ghost vm1)
        browser_run "$(cat "$STATE/gateway.url")" "$SHOTS" dash-migrate admin-pass-1 vm1
        GH1=$(ghost vm1)
        [ -n "$GH1" ] && [ "$GH1" != "$GH0" ]; is "vm1 runs on another host ($GH0 -> $GH1)" "$?" 0
        GDOM="atrium-$INST-guest-$(q "SELECT id FROM guests WHERE name = 'vm1'")"
        is "... running, and no longer defined on $GH0" "$(gstate vm1):$(hvirsh "$(hnum "$GH0")" list --all --name 2>/dev/null | grep -cx "$GDOM")" running:0
fi

# ---- drain ----
D=h1
is_state h1 up || D=$SRC_H
for p in pp sl; do "$ATRIUM" pool update "$p" --hosts '' >/dev/null; done
check "a persistent pool of 2, both spares, on $D" "$ATRIUM" pool create --name mp --template deb --size 2 --spares 2 --mode persistent --name_pattern 'mp{n}' --hosts "$D" --wait
check "a stateless pool of 1 with 1 spare on $D" "$ATRIUM" pool create --name ms --template deb --size 1 --spares 1 --name_pattern 'ms{n}' --hosts "$D" --wait
wait_for 60 running_on mp1 "$D"; wait_for 60 running_on mp2 "$D"
wait_for 60 running_on ms1 "$D"; is "3 desktops and a spare run on $D" "$?" 0
[ "$(dhost pp1)" = "$D" ] || "$ATRIUM" desktop migrate pp1 --to "$D" --wait >/dev/null 2>&1
for p in mp ms; do "$ATRIUM" pool update "$p" --hosts '' >/dev/null; done
[ "$D" = h1 ] && check "lp1 starts again on h1 (it cannot move)" "$ATRIUM" desktop start lp1
RUN0=$(running_domains "$D")
echo "# $D runs $RUN0 domains before its drain"
STAY=
[ "$D" = h1 ] && wait_for 60 running_on lp1 h1 && STAY=lp1
OUT=$("$ATRIUM" host maintenance "$D" on --drain --wait 2>&1); RC=$?
if [ -n "$STAY" ]; then
        is "drain with lp1 (its own disk) running on $D: it says what stays" "$RC" 1
        like "... lp1, and why" "$OUT" "desktop 'lp1' cannot move: no host can start the desktop"
        is "... lp1 still runs on $D (nothing stopped without --force)" "$(dhost lp1):$(dstate lp1)" "$D:running"
        is "... everything else left $D" "$(running_domains "$D")" 1
        OUT=$("$ATRIUM" host maintenance "$D" on --drain --force --wait 2>&1); RC=$?
        like "again with --force: lp1 is shut down" "$OUT" "1 shut down (forced)"
        is "... lp1 stopped, where it was" "$(dhost lp1):$(dstate lp1)" "$D:stopped"
fi
is "atrium host maintenance $D on --drain --wait: done" "$RC" 0
like "... the host is empty" "$OUT" "is empty"
is "$D runs nothing" "$(running_domains "$D")" 0
is "... and is in maintenance" "$(host_state "$D")" maintenance
for d in pp1 mp1 mp2 ms1; do running_elsewhere "$d" "$D"; is "$d runs elsewhere" "$?" 0; done
check "$D leaves maintenance" "$ATRIUM" host maintenance "$D" off
is "... up again" "$(host_state "$D")" up

# ---- rebalance ([scheduler] rebalance, off by default): idle desktops even out the hosts ----
set_sched() { # KEY VALUE in [scheduler]
        sed -i "/^$1 = /d" "$CONF"
        grep -q '^\[scheduler\]' "$CONF" || printf '[scheduler]\n' >>"$CONF"
        sed -i "/^\[scheduler\]/a $1 = $2" "$CONF"
        reload_conf
}
per_host() { q "SELECT group_concat(h.name || ':' || (SELECT count(*) FROM desktops d WHERE d.host_id = h.id AND d.state = 'running'), ' ') FROM hosts h WHERE h.state = 'up' AND h.maintenance = 0"; }
spread() { q "SELECT max(n) - min(n) FROM (SELECT (SELECT count(*) FROM desktops d WHERE d.host_id = h.id AND d.state = 'running') n FROM hosts h WHERE h.state = 'up' AND h.maintenance = 0)"; }
SPREAD0=$(spread)
echo "# running desktops before the rebalance: $(per_host)"
[ "$SPREAD0" -ge 2 ]; is "uneven hosts: $D empty, the others not (spread $SPREAD0)" "$?" 0
sleep 12
is "... and nothing moves while rebalance is off (the default)" "$(spread)" "$SPREAD0"
SINCE=$(last_event_id)
: >"$T/rebalance.log"
balanced() { # and the number migrating at once, sampled on the way
        q "SELECT count(*) FROM desktops WHERE migrating_to_id IS NOT NULL" >>"$T/rebalance.log"
        [ "$(spread)" -le 1 ] && [ "$(q "SELECT count(*) FROM desktops WHERE migrating_to_id IS NOT NULL")" = 0 ]
}
set_sched rebalance true
wait_for 180 balanced; is "rebalance = true: the hosts even out ($(per_host))" "$?" 0
[ "$(q "SELECT count(*) FROM events WHERE id > $SINCE AND action = 'desktop_migrating' AND actor = 'rebalance'")" -ge 1 ]
is "... by live migrations the rebalance policy began" "$?" 0
is "... never more than rebalance_max (1) at once" "$(sort -n "$T/rebalance.log" | tail -1)" 1
is "... none of them failed" "$(q "SELECT count(*) FROM events WHERE id > $SINCE AND action = 'desktop_migration_failed'")" 0
sed -i '/^rebalance = /d' "$CONF"; reload_conf
