#!/bin/sh
# Builds the libFuzzer targets with clang (installing clang and its
# libFuzzer runtime when they are missing) and fuzzes each target for a
# bounded time over a copy of its seed corpus; the tree's corpus is never
# written.  Fails, printing the reproducer, when any target finds a crash,
# a leak, undefined behaviour, a broken invariant, a timeout or an OOM.
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_TARGETS  which targets (default: all six)
#   FUZZ_BUILD    build directory (default build-fuzz)
#   FUZZ_MAX_LEN  largest input tried (default 32768)
#   FUZZ_JOBS     parallel compile jobs of the build (default 2: the
#                 machine is shared)
#   FUZZ_WORK     where corpus copies and artifacts go (default: a temp dir,
#                 removed when nothing was found)
#
# To replay a reproducer: build-fuzz/fuzz/fuzz_<target> FILE, or without
# clang: build/fuzz/replay-<target> FILE.  To keep it as a regression
# test, copy it to fuzz/corpus/<target>/crash-<what>.
set -e
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"netflow nfcapd capture input catalog packages scan"}
build=${FUZZ_BUILD:-build-fuzz}
max_len=${FUZZ_MAX_LEN:-32768}
jobs=${FUZZ_JOBS:-2}

have_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    t=$(mktemp -d)
    echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' \
        >"$t/t.c"
    clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" \
        >/dev/null 2>&1
    rc=$?
    rm -rf "$t"
    return $rc
}

if ! have_libfuzzer; then
    echo "fuzz: installing clang and libclang-rt-14-dev" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq clang libclang-rt-14-dev >/dev/null ||
        { $sudo apt-get update -qq &&
          $sudo apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; }
    have_libfuzzer || { echo "fuzz: clang cannot link libFuzzer" >&2; exit 1; }
fi

[ -f "$build/build.ninja" ] ||
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
bins=""
for t in $targets; do bins="$bins fuzz/fuzz_$t"; done
ninja -C "$build" -j"$jobs" $bins >/dev/null

work=${FUZZ_WORK:-$(mktemp -d /tmp/flowdex-fuzz.XXXXXX)}
mkdir -p "$work"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
failed=""
for t in $targets; do
    rm -rf "$work/$t" "$work/$t.artifacts"
    mkdir -p "$work/$t.artifacts"
    cp -R "fuzz/corpus/$t" "$work/$t"
    dict=""
    [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    echo "fuzz: $t for ${seconds}s" >&2
    rc=0
    "$build/fuzz/fuzz_$t" "$work/$t" $dict -max_total_time="$seconds" \
        -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$work/$t.artifacts/" \
        >"$work/$t.log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
    cov=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -1 |
          sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p')
    echo "fuzz: $t: ${runs:-?} runs, ${eps:-?} exec/s, $cov, exit $rc" >&2
    found=$(ls "$work/$t.artifacts")
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        failed="$failed $t"
        grep -A60 -E '^==[0-9]+==|^fuzz invariant|runtime error|ALARM|ERROR:' \
            "$work/$t.log" | head -80 >&2
        for f in "$work/$t.artifacts"/*; do
            [ -f "$f" ] || continue
            echo "fuzz: reproducer $f ($(wc -c <"$f") bytes):" >&2
            od -A x -t x1z -v "$f" | head -32 >&2
            echo "fuzz: replay: $build/fuzz/fuzz_$t $f; keep it as a" \
                "regression test: cp $f fuzz/corpus/$t/" >&2
        done
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (logs and reproducers in $work)" >&2
    exit 1
fi
[ -n "$FUZZ_WORK" ] || rm -rf "$work"
echo "fuzz: no findings" >&2
