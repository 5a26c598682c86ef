#!/bin/sh
# Configures (once) and builds flowdex into ./build.
set -e
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
