#!/bin/sh
# Installs what is missing, builds, and runs every test.  Extra arguments
# go to meson test (a test name, --suite, ...).  BUILD names another
# build directory.
set -e
cd "$(dirname "$0")/.."
build=${BUILD:-build}
scripts/deps.sh
[ "$build" = build ] && scripts/build.sh
meson test -C "$build" --print-errorlogs "$@"
# One closing line with the count of meson tests.
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
res = [json.loads(l)["result"] for l in open(sys.argv[1]) if l.strip()]
ok = sum(r in ("OK", "EXPECTEDFAIL") for r in res)
skip = sum(r == "SKIP" for r in res)
print(f"tests: {ok} passed, {len(res) - ok - skip} failed, {skip} skipped")
PY
