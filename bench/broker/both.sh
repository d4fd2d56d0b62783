#!/bin/bash
# The broker benchmark (bench/broker/run.sh) on SQLite, then on PostgreSQL (a server the run
# starts itself), at the same scale on the same machine, and the two compared (issue: several
# managers): PostgreSQL's connects/s within 30 % of SQLite's, its broker p99 <= 100 ms.
# Usage: bench/broker/both.sh [BUILD_DIR]   (make bench; the BENCH_* of run.sh scale both runs)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/atrium-bench-both-XXXXXX)
trap 'rm -rf "$out"' EXIT
rate() { sed -n 's/.* = \([0-9]*\) connects\/s sustained.*/\1/p' "$1"; }
p99() { sed -n "s/^broker's own work.*p99 \([0-9]*\) ms.*/\1/p" "$1"; }
for store in sqlite postgresql; do
        BENCH_STORE=$store "$here/run.sh" "$@" | tee "$out/$store"
        echo
done
S=$(rate "$out/sqlite") P=$(rate "$out/postgresql") Q=$(p99 "$out/postgresql")
if [ -z "$S" ] || [ -z "$P" ]; then
        echo "== SQLite and PostgreSQL compared: a run gave no figure (see above)"
        exit 1
fi
echo "== SQLite and PostgreSQL compared (same scale, same machine, one run after the other)"
awk -v s="$S" -v p="$P" -v q="${Q:-?}" 'BEGIN {
        printf "connects/s: SQLite %d, PostgreSQL %d (%.0f %% of SQLite); PostgreSQL broker p99 %s ms\n", s, p, 100 * p / s, q
        printf "targets: PostgreSQL >= 70 %% of SQLite'"'"'s connects/s (%s), broker p99 <= 100 ms (%s)\n",
                (p >= 0.7 * s ? "met" : "not met"), ((q != "?" && q <= 100) ? "met" : "not met") }'
