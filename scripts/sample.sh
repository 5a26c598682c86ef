#!/bin/sh
# Installs what is missing, builds, and scans the shipped sample: real
# flow records of real Debian downloads, against a catalog built from the
# same day's Debian mirror metadata.
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/flowdex scan -c sample/catalog.fdxc.xz "$@" sample/flows
