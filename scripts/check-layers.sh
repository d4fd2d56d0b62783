#!/bin/bash
# Layering rule (shared CONVENTIONS.md): lower layers never include higher ones, and manager,
# agent, gateway and cli never include each other. Prints each offending include; TAP output.
set -u
src=$(cd "$(dirname "$0")/../src" && pwd)
rank() { case $1 in common) echo 0;; proto) echo 1;; store) echo 2;; auth) echo 3;;
        manager|agent|gateway|cli|guest) echo 4;; daemon) echo 5;; *) echo 9;; esac; }
n=0 bad=0
for f in $(cd "$src" && find . -name '*.[ch]' | sort); do
        layer=$(echo "$f" | cut -d/ -f2)
        while read -r inc; do
                target=${inc%%/*}
                [ "$target" = "$layer" ] && continue
                if [ "$(rank "$target")" -ge "$(rank "$layer")" ] && [ "$layer" != daemon ]; then
                        echo "# $f includes $inc: $layer may not include $target"
                        bad=$((bad + 1))
                fi
        done < <(grep -oE '^#include "[a-z]+/[^"]+"' "$src/$f" | sed 's/#include "//; s/"$//')
        n=$((n + 1))
done
if [ "$bad" -eq 0 ]; then echo "ok 1 - layering: $n files include only lower layers"; else echo "not ok 1 - layering: $bad bad includes"; fi

# The manager's floors (docs/architecture.md, "The manager's floors"): a file includes the
# headers of its own module and of lower floors only, so no circle can form among the
# manager's modules. A module is a header's name; the route handlers (api-*.c, routes.c) are
# "routes", the request machinery (http.c, router.c, openapi.c) is "api", and the
# reconciler's recovery.c and private header are "reconciler".
mfloor() {
        case $1 in
        manager | rows | scheduler) echo 0 ;;
        leader) echo 1 ;;
        httpserver) echo 1 ;;
        api | agentlink) echo 2 ;;
        tunnels | operations | dirlink | terminals | hostcmd | placement) echo 3 ;;
        hostsync | sessions | migration) echo 4 ;;
        broker) echo 5 ;;
        reconciler) echo 6 ;;
        routes) echo 7 ;;
        lifecycle) echo 8 ;;
        esac
}
mmodule() {
        case $1 in
        server) echo httpserver ;;
        http | router | openapi) echo api ;;
        reconciler-private | recovery) echo reconciler ;;
        api-* | routes) echo routes ;;
        *) echo "$1" ;;
        esac
}
mbad=0 mn=0
for f in $(cd "$src/manager" && ls ./*.[ch] | sort); do
        f=${f#./}
        mod=$(mmodule "${f%.[ch]}")
        floor=$(mfloor "$mod")
        if [ -z "$floor" ]; then
                echo "# manager/$f: module '$mod' has no floor in scripts/check-layers.sh"
                mbad=$((mbad + 1))
                continue
        fi
        while read -r inc; do
                tmod=$(mmodule "${inc%.h}")
                [ "$tmod" = "$mod" ] && continue
                tfloor=$(mfloor "$tmod")
                if [ -z "$tfloor" ] || [ "$tfloor" -ge "$floor" ]; then
                        echo "# manager/$f ($mod, floor $floor) includes manager/$inc (floor ${tfloor:-none})"
                        mbad=$((mbad + 1))
                fi
        done < <(grep -oE '^#include "manager/[^"]+"' "$src/manager/$f" | sed 's/#include "manager\///; s/"$//')
        mn=$((mn + 1))
done
if [ "$mbad" -eq 0 ]; then echo "ok 2 - manager floors: $mn files include only their module and lower floors"; else echo "not ok 2 - manager floors: $mbad bad includes"; fi

# Agent operations are spelled once, in proto/vocab.c: the manager and the agent use AgentOp.
# (Those with a dot: "inventory" is also the key of the hello message's domain list.)
ops=$(sed -n 's/^ *\[AGENT_OP_[A-Z_]*\] = \("[a-z]*\.[a-z.]*"\),$/\1/p' "$src/proto/vocab.c")
spelled=$(for o in $ops; do grep -lF "$o" "$src"/manager/*.[ch] "$src"/agent/*.[ch] | sed "s|^$src/||; s|\$| spells $o|"; done)
nops=$(echo "$ops" | grep -c .)
if [ -z "$spelled" ] && [ "$nops" -gt 10 ]; then echo "ok 3 - the $nops agent operations are spelled only in proto/vocab.c"; else echo "$spelled" | sed 's/^/# /'; echo "not ok 3 - agent operations spelled outside proto/vocab.c (or none found there)"; fi
echo "1..3"
[ "$bad" -eq 0 ] && [ "$mbad" -eq 0 ] && [ -z "$spelled" ] && [ "$nops" -gt 10 ]
