#!/bin/bash
# Install the Debian packages named on the command line that are not installed yet.
# Runs 'apt-get update' once, only when something is missing.
set -euo pipefail
missing=()
for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
        echo "error: installing packages needs root; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
