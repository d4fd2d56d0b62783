#!/usr/bin/env python3
"""Count test results from meson's testlog.json files.

A TAP test counts each of its 'ok' / 'not ok' lines (a '# SKIP' directive counts as
skipped); a test that printed no TAP lines counts once, by its result. A TAP test that
crashed or exited non-zero after its last case adds one failure, so nothing is lost."""
import json
import re
import sys

passed = failed = skipped = 0
tap = re.compile(r'^(not ok|ok)\b(.*)$')
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            result = t.get('result')
            cases = [tap.match(l) for l in (t.get('stdout') or '').splitlines()]
            cases = [m for m in cases if m]
            if cases:
                for m in cases:
                    if '# SKIP' in m.group(2).upper():
                        skipped += 1
                    elif m.group(1) == 'ok':
                        passed += 1
                    else:
                        failed += 1
                if result not in ('OK', 'EXPECTEDFAIL', 'SKIP') and \
                        not any(m.group(1) == 'not ok' for m in cases):
                    failed += 1
                    print(f"FAILED: {t['name']} ({result}) after its last test case")
            elif result == 'SKIP':
                skipped += 1
            elif result in ('OK', 'EXPECTEDFAIL'):
                passed += 1
            else:
                failed += 1
                print(f"FAILED: {t['name']} ({result})")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
