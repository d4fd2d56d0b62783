#!/bin/sh
# Run a libFuzzer harness for a bounded number of iterations over the seed corpus, writing
# what it finds to a scratch directory (never into the source tree). The seed is fixed
# (FUZZ_SEED, default 1) so that make check is repeatable; set FUZZ_SEED=0 for a random one
# when fuzzing for longer by hand.
set -eu
exe=$1 runs=$2 seeds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$exe" -seed="${FUZZ_SEED:-1}" -runs="$runs" -max_len=8192 -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$scratch/" "$scratch" "$seeds"
