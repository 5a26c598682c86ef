#!/bin/sh
# Installs what is missing, builds, and runs every test.
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
meson test -C build --print-errorlogs "$@"
