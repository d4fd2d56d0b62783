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
echo "1..1"
[ "$bad" -eq 0 ]
