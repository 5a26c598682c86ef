#!/bin/sh
# Runs the PostgreSQL store tests against a throwaway server: installs
# Debian's postgresql when it is missing, starts a private cluster in a
# temporary directory (Unix socket only, no TCP port), creates the test
# databases, runs test_store with FLOWDEX_TEST_POSTGRESQL pointing at one
# and the collectors' shared-store test (collect-test.py shared) on
# others, and stops and removes the cluster whatever happens.  Needs root (the
# server runs as the postgres user).  BUILD names the build directory.
set -e
cd "$(dirname "$0")/.."
build=${BUILD:-build}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "pg-test: installing postgresql" >&2
    if ! { apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
               >/dev/null; }; then
        echo "pg-test: skipped: postgresql could not be installed" >&2
        exit 0
    fi
fi
bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | tail -n 1)")
dir=$(mktemp -d /tmp/flowdex-pg.XXXXXX)
chown postgres "$dir"
stop() {
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop \
        >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT INT TERM
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres \
    >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -s -w -l "$dir/log" \
    -o "-k $dir -c listen_addresses=''" start
runuser -u postgres -- "$bin/createdb" -h "$dir" flowdex_test
FLOWDEX_TEST_POSTGRESQL="postgresql:///flowdex_test?host=$dir&user=postgres"
export FLOWDEX_TEST_POSTGRESQL
"$build/tests/test_store"
# two collectors sharing one PostgreSQL inventory, against one collector
for how in sites connections thirds restart; do
    for w in one two; do
        runuser -u postgres -- "$bin/createdb" -h "$dir" "flowdex_${w}_$how"
    done
done
FLOWDEX_TEST_SHARED="postgresql:///{}?host=$dir&user=postgres" \
    python3 tests/collect-test.py "$build/flowdex" sample/catalog.fdxc.xz \
    sample/exports shared
