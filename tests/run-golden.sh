#!/bin/sh
# Golden tests of the CLI on the shipped sample: the output of each command
# must equal the stored file, and each bad input must give its documented
# exit code and one error line naming the file.
# Usage: run-golden.sh path/to/flowdex   (run from tests/)
set -u
FLOWDEX=$1
CAT=../sample/catalog.fdxc.xz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

golden() {  # name, expected file, command...
    name=$1 want=$2
    shift 2
    if "$@" >"$tmp/out" 2>"$tmp/err" && cmp -s "$tmp/out" "$want"; then
        ok "$name"
    else
        bad "$name"
        diff "$want" "$tmp/out" | head -20
        cat "$tmp/err"
    fi
}

status() {  # name, expected exit code, text the error must contain, cmd...
    name=$1 code=$2 text=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq "$code" ] && grep -q -- "$text" "$tmp/err" &&
       [ "$(wc -l <"$tmp/err")" -le "${MAXLINES:-2}" ]; then
        ok "$name"
    else
        bad "$name (exit $rc, want $code)"
        cat "$tmp/err"
    fi
}

golden "scan json, nfcapd" golden/scan-nfcapd.json \
    "$FLOWDEX" scan --json -c "$CAT" ../sample/flows
golden "scan csv, nfcapd" golden/scan-nfcapd.csv \
    "$FLOWDEX" scan --csv -c "$CAT" ../sample/flows
for f in ../sample/exports/*.pcap; do
    n=$(basename "$f" .pcap)
    golden "scan csv, $n" "golden/scan-$n.csv" \
        "$FLOWDEX" scan --csv -c "$CAT" "$f"
done

# flows: every field, in the three formats, on real exporters' captures
# (NSEL events and biflow counters, v5 header sampling, IPFIX reverse
# elements), and --stats on standard error
EX=data/exporters
for fmt in text json csv; do
    opt=""
    [ "$fmt" != text ] && opt="--$fmt"
    golden "flows $fmt" "golden/flows.$fmt" \
        "$FLOWDEX" flows $opt $EX/cisco-asa-v9-many-templates.pcap \
        $EX/graylog-softflowd-v5-pcap.pcap \
        $EX/ixia-ipfix-enterprise-fields.pcap
done
golden "flows --stats" golden/flows-stats.txt \
    sh -c '"$1" flows --stats "$2" "$3" 2>&1 >/dev/null' sh "$FLOWDEX" \
    $EX/h3c-v9-netstream-varstring.pcap ../sample/flows

# bad input
status "missing catalog" 66 "nope.fdxc" \
    "$FLOWDEX" scan -c "$tmp/nope.fdxc" ../sample/flows
printf 'not a catalog at all\n' >"$tmp/junk.fdxc"
status "catalog of the wrong type" 65 "junk.fdxc" \
    "$FLOWDEX" scan -c "$tmp/junk.fdxc" ../sample/flows
status "input of the wrong type" 65 "run-golden.sh" \
    "$FLOWDEX" scan -c "$CAT" run-golden.sh
head -c 3000 ../sample/flows/nfcapd.202612031805 >"$tmp/cut.nfcapd"
status "truncated nfcapd file" 65 "cut.nfcapd" \
    "$FLOWDEX" scan -c "$CAT" "$tmp/cut.nfcapd"
# a damaged file among good ones: reported, the others still give results
mkdir -p "$tmp/mixed/sub"
cp ../sample/flows/nfcapd.202612031805 "$tmp/mixed/sub/"
cp "$tmp/cut.nfcapd" "$tmp/mixed/"
"$FLOWDEX" scan --csv -c "$CAT" "$tmp/mixed" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 65 ] && cmp -s "$tmp/out" golden/scan-nfcapd.csv &&
   grep -q "cut.nfcapd" "$tmp/err"; then
    ok "damaged file in a directory"
else
    bad "damaged file in a directory (exit $rc)"
    cat "$tmp/err"
fi

status "missing input" 66 "no-such-file" \
    "$FLOWDEX" scan -c "$CAT" "$tmp/no-such-file"
status "no input given" 64 "no input given" "$FLOWDEX" scan -c "$CAT"
status "unknown command" 64 "unknown command" "$FLOWDEX" frobnicate
mkdir -p "$tmp/mirror/debian/dists/x"
printf 'Origin: Debian\nSuite: x\nCodename: x\nSHA256:\n %s 5 main/binary-amd64/Packages\n' \
    0000000000000000000000000000000000000000000000000000000000000000 \
    >"$tmp/mirror/debian/dists/x/InRelease"
mkdir -p "$tmp/mirror/debian/dists/x/main/binary-amd64"
printf 'Package: a\n' >"$tmp/mirror/debian/dists/x/main/binary-amd64/Packages"
status "checksum mismatch" 65 "Packages" \
    "$FLOWDEX" catalog build -o "$tmp/out.fdxc" "$tmp/mirror"
if [ -e "$tmp/out.fdxc" ]; then bad "no partial catalog left"; else ok "no partial catalog left"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
