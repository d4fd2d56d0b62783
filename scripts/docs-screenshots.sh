#!/bin/bash
# Copy the screenshots the browser tests took (test-web.sh, test-agent.sh: BUILD/meson-logs/
# screenshots) into docs/images, where the user and admin guides show them.
#   scripts/docs-screenshots.sh [BUILD]     after make check
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
shots=$build/meson-logs/screenshots
mkdir -p "$top/docs/images"
for f in login login-error portal portal-states console console-reconnecting admin-overview \
        admin-overview-phone admin-pool-wizard admin-pool admin-hosts admin-media-upload \
        admin-user-form-error admin-events admin-sessions account-totp; do
        if [ -s "$shots/$f.png" ]; then
                cp "$shots/$f.png" "$top/docs/images/$f.png"
        else
                echo "missing: $shots/$f.png (run make check first)" >&2
        fi
done
