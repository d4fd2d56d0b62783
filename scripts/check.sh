#!/bin/bash
# Run every test: the normal build (unit + integration), then the sanitizer build (unit tests
# under ASan/UBSan/LSan, and the fuzzers for a bounded number of runs). Ends with the line
# "N passed, N failed" (", N skipped" when any), counting each TAP test case.
set -uo pipefail
build=$1 fuzzbuild=$2
top=$(cd "$(dirname "$0")/.." && pwd)
rc=0

echo "== tests (build: $build)"
meson test -C "$build" --no-rebuild --print-errorlogs || rc=1
echo "== unit tests under AddressSanitizer/LeakSanitizer, and fuzzers ($fuzzbuild)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$fuzzbuild" --no-rebuild --print-errorlogs --suite unit --suite fuzz || rc=1

python3 "$top/scripts/summarize.py" "$build/meson-logs/testlog.json" \
        "$fuzzbuild/meson-logs/testlog.json" || rc=1
exit $rc
