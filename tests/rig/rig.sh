#!/bin/bash
# The multi-host rig: N simulated hosts on this machine, for the cluster tests, the HA
# benchmark and by hand. Each host is a network namespace (its own address on a bridge of the
# root namespace, where the manager and the gateway run) and a mount namespace of its own, in
# which /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt
# are the host's own directories: so each host has its own libvirtd, virtlogd and virtlockd
# (lock_manager = "lockd"), a distinct host_uuid, and one lockspace on the shared directory,
# which every host sees at the same path (DIR/shared). Nothing outside DIR is written but the
# namespaces and links, which `down` removes.
#
#   rig.sh up DIR N               make hosts h1..hN (libvirt started in each); prints the rig's
#                                 variables (also in DIR/rig.env)
#   rig.sh agent DIR I URL FP TOKEN [CONF_EXTRA]
#                                 start host I's agent (atriumd from $ATRIUMD), joining the
#                                 manager at URL with fingerprint FP and join token TOKEN
#   rig.sh exec DIR I CMD...      run CMD inside host I (its network and mount namespaces)
#   rig.sh crash DIR I            kill -9 every process of host I (agent, libvirt, QEMUs)
#   rig.sh libvirt DIR I          start host I's libvirt daemons again (after a crash)
#   rig.sh tls DIR I PKI_DIR      restart host I's libvirtd listening for TLS on its address
#                                 (port 16514) with the certificates in PKI_DIR (what the
#                                 agent got from the manager at join: DIR/hI/state/pki)
#   rig.sh isolate DIR I          take host I's link down (it keeps running, cut off)
#   rig.sh rejoin DIR I           bring host I's link back
#   rig.sh pids DIR I             every process of host I
#   rig.sh down DIR               stop everything of the rig and remove its namespaces, links
#
# Every wait is bounded. Needs root, iproute2, util-linux (unshare, nsenter), libvirt-daemon.
# Sourced (RIG_LIB=1) it only defines the functions.
set -u

rig_env() { # DIR: loads DIR/rig.env
        # shellcheck disable=SC1091
        . "$1/rig.env"
}

rig_holder() { cat "$1/h$2/holder.pid"; }

# rig_in DIR I CMD...: CMD inside host I.
rig_in() {
        local dir=$1 i=$2
        shift 2
        nsenter -t "$(rig_holder "$dir" "$i")" -m -n -- "$@"
}

# The processes of host I: those in its network namespace (the holder's), but the holder.
# Not its mount namespace: libvirt starts each QEMU in a mount namespace of its own.
rig_pids() {
        local dir=$1 i=$2 h ns p
        h=$(rig_holder "$dir" "$i" 2>/dev/null) || return 0
        ns=$(readlink "/proc/$h/ns/net" 2>/dev/null) || return 0
        for p in /proc/[0-9]*; do
                p=${p#/proc/}
                [ "$p" = "$h" ] && continue
                [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$ns" ] && echo "$p"
        done
}

rig_libvirt() { # DIR I: virtlogd, virtlockd, libvirtd of host I (started when not running)
        local dir=$1 i=$2 d=$1/h$2 n
        rig_in "$dir" "$i" virtlogd -d -p "$d/virtlogd.pid" || return 1
        rig_in "$dir" "$i" virtlockd -d -p "$d/virtlockd.pid" || return 1
        rig_in "$dir" "$i" libvirtd -d -p "$d/libvirtd.pid" || return 1
        for n in $(seq 1 100); do
                rig_in "$dir" "$i" virsh -c qemu:///system version >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        echo "rig: host h$i: libvirtd did not answer within 10 s" >&2
        return 1
}

rig_up() {
        local dir=$1 n=$2 tag i d ns br
        dir=$(cd "$dir" && pwd) || return 1
        tag=$(( $$ % 10000 ))
        br=atrb$tag
        # as udev would leave it: else each libvirtd probes QEMU again on every call (minutes)
        if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
                chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
        fi
        mkdir -p "$dir/shared/lockspace" "$dir/cache"
        chmod 755 "$dir" "$dir/shared"
        cat >"$dir/rig.env" <<ENV
RIG_DIR=$dir
RIG_N=$n
RIG_TAG=$tag
RIG_BRIDGE=$br
RIG_NET=10.$(( 100 + tag / 250 % 100 )).$(( tag % 250 ))
RIG_SHARED=$dir/shared
ENV
        rig_env "$dir"
        ip link add "$br" type bridge || return 1
        ip addr add "$RIG_NET.1/24" dev "$br"
        ip link set "$br" up
        for i in $(seq 1 "$n"); do
                d=$dir/h$i ns=atr$tag-h$i
                mkdir -p "$d"/{etc,run,lib/qemu,log,local,state}
                chmod 755 "$d" "$d/local"
                cp -a /etc/libvirt/. "$d/etc/"
                rm -rf "$d/etc/qemu/networks/autostart"
                {
                        echo "host_uuid = \"$(cat /proc/sys/kernel/random/uuid)\""
                        echo 'unix_sock_group = "root"'
                } >>"$d/etc/libvirtd.conf"
                {
                        echo 'lock_manager = "lockd"'
                        echo 'remember_owner = 0'
                } >>"$d/etc/qemu.conf"
                {
                        echo 'auto_disk_leases = 1'
                        echo 'require_lease_for_disks = 1'
                        echo "file_lockspace_dir = \"$RIG_SHARED/lockspace\""
                } >"$d/etc/qemu-lockd.conf"
                ip netns add "$ns" || return 1
                ip link add "atv${tag}h$i" type veth peer name eth0 netns "$ns"
                ip link set "atv${tag}h$i" master "$br" up
                ip -n "$ns" addr add "$RIG_NET.$((10 + i))/24" dev eth0
                ip -n "$ns" link set eth0 up
                ip -n "$ns" link set lo up
                # The holder: a process that keeps the host's mount namespace, with its own
                # libvirt directories bound over the system's.
                ip netns exec "$ns" unshare --mount --propagation private -- bash -c '
                        d=$1
                        mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
                        mount --bind "$d/etc" /etc/libvirt &&
                        mount --bind "$d/run" /run/libvirt &&
                        mount --bind "$d/lib" /var/lib/libvirt &&
                        mount --bind "$d/log" /var/log/libvirt &&
                        mount --bind "$d/../cache" /var/cache/libvirt || exit 1
                        echo $$ >"$d/holder.pid"
                        exec sleep infinity' rig-holder "$d" </dev/null >/dev/null 2>&1 &
                disown $!
                for _ in $(seq 1 50); do [ -s "$d/holder.pid" ] && break; sleep 0.1; done
                [ -s "$d/holder.pid" ] || { echo "rig: host h$i: no mount namespace" >&2; return 1; }
                echo "$ns" >"$d/netns"
        done
        # each libvirtd takes seconds to start (it probes QEMU): all at once
        local pids=() ok=0
        for i in $(seq 1 "$n"); do rig_libvirt "$dir" "$i" & pids+=($!); done
        for i in "${pids[@]}"; do wait "$i" || ok=1; done
        [ "$ok" = 0 ] || return 1
        cat "$dir/rig.env"
}

# rig_agent DIR I URL FP TOKEN [EXTRA]: host I's agent, storage roots the shared directory
# and the host's own local one (DIR/hI/local, which no other host reaches).
rig_agent() {
        local dir=$1 i=$2 url=$3 fp=$4 token=$5 extra=${6-} d=$1/h$2
        rig_env "$dir"
        # migrate_unsafe: the shared directory is a local file system libvirt cannot tell shared
        printf '[daemon]\nlog_level = info\n[agent]\nlibvirt_uri = qemu:///system\nstorage_roots = %s:%s\nname = h%s\naddress = %s\nmigrate_unsafe = true\n%b' \
                "$RIG_SHARED" "$d/local" "$i" "$RIG_NET.$((10 + i))" "$extra" >"$d/agent.conf"
        local join=(--join-token "$token")
        [ -s "$d/state/agent-credential.json" ] && join=() # joined already: its credential
        # nsenter itself, not a function in a subshell: $! is the agent's pid (nsenter execs it)
        nsenter -t "$(rig_holder "$dir" "$i")" -m -n -- "${ATRIUMD:?set ATRIUMD}" \
                -c "$d/agent.conf" --state-dir "$d/state" --role agent --manager "$url" \
                --manager-fingerprint "$fp" "${join[@]}" </dev/null >>"$d/agent.out" 2>>"$d/agent.err" &
        echo $! >"$d/agent.pid"
        disown $! # no "Killed" line from bash when a test crashes the host
}

rig_crash() {
        local p
        for p in $(rig_pids "$1" "$2"); do kill -9 "$p" 2>/dev/null; done
        for _ in $(seq 1 50); do [ -z "$(rig_pids "$1" "$2")" ] && return 0; sleep 0.1; done
        return 1
}

rig_tls() { # DIR I PKI: libvirtd of host I on TLS with PKI/{cacert,servercert,serverkey}.pem
        local dir=$1 i=$2 pki=$3 d=$1/h$2 p
        rig_env "$dir"
        sed -i '/^# rig tls$/,$d' "$d/etc/libvirtd.conf"
        cat >>"$d/etc/libvirtd.conf" <<CONF
# rig tls
listen_tls = 1
listen_tcp = 0
listen_addr = "$RIG_NET.$((10 + i))"
ca_file = "$pki/cacert.pem"
cert_file = "$pki/servercert.pem"
key_file = "$pki/serverkey.pem"
CONF
        # QEMU's migration stream inside TLS, with the same certificates under QEMU's names
        # (the agent's state_dir/pki-qemu beside PKI)
        sed -i '/^# rig tls$/,$d' "$d/etc/qemu.conf"
        printf '# rig tls\nmigrate_tls_x509_cert_dir = "%s"\nmigrate_tls_x509_verify = 1\n' "$pki-qemu" >>"$d/etc/qemu.conf"
        p=$(cat "$d/libvirtd.pid" 2>/dev/null) && kill "$p" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        rig_in "$dir" "$i" libvirtd -d -l -p "$d/libvirtd.pid" || return 1
        for _ in $(seq 1 100); do
                rig_in "$dir" "$i" virsh -c qemu:///system version >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

rig_isolate() { rig_env "$1"; ip link set "atv${RIG_TAG}h$2" down; }
rig_rejoin() { rig_env "$1"; ip link set "atv${RIG_TAG}h$2" up; }

rig_down() {
        local dir=$1 i p
        [ -f "$dir/rig.env" ] || return 0
        rig_env "$dir"
        for i in $(seq 1 "$RIG_N"); do
                if [ -f "$dir/h$i/holder.pid" ]; then
                        for p in $(rig_pids "$dir" "$i"); do kill -9 "$p" 2>/dev/null; done
                        kill -9 "$(rig_holder "$dir" "$i")" 2>/dev/null
                fi
                ip link del "atv${RIG_TAG}h$i" 2>/dev/null
                ip netns del "atr$RIG_TAG-h$i" 2>/dev/null
        done
        ip link del "$RIG_BRIDGE" 2>/dev/null
        rm -f "$dir/rig.env"
        return 0
}

if [ -z "${RIG_LIB-}" ]; then
        cmd=${1-}
        shift || true
        case $cmd in
        up) rig_up "$@" ;;
        agent) rig_agent "$@" ;;
        exec) rig_in "$@" ;;
        crash) rig_crash "$@" ;;
        libvirt) rig_libvirt "$@" ;;
        isolate) rig_isolate "$@" ;;
        tls) rig_tls "$@" ;;
        rejoin) rig_rejoin "$@" ;;
        pids) rig_pids "$@" ;;
        down) rig_down "$@" ;;
        *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
        esac
fi
