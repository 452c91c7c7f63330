#!/usr/bin/env bash
# Install the system Chromium that tools/check_book.py drives, when it is missing.
# We use the distribution's package (Debian/Ubuntu: apt) and never `playwright install`,
# which downloads a browser build of its own from outside the package registries.
set -euo pipefail

for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
        echo "chromium: $(command -v "$candidate")"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no chromium on PATH and no apt-get; install Chromium with your" \
         "system's package manager (or set CHROMIUM=/path/to/chromium)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
echo "chromium: $(command -v chromium)"
