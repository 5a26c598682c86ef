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

golden "explain, table" golden/explain-10.1.0.15.txt \
    "$FLOWDEX" explain -c "$CAT" 10.1.0.15 ../sample/flows
golden "explain, json, IPFIX export" golden/explain-10.1.0.11.json \
    "$FLOWDEX" explain --json -c "$CAT" 10.1.0.11 \
    ../sample/exports/softflowd-ipfix.pcap
golden "catalog info" golden/catalog-info.txt \
    "$FLOWDEX" catalog info "$CAT"

# The store: what scan --store writes, hosts --store prints as scan does
# (the summary block aside: the store keeps no flow counts), however
# often the same scan is written; host --store adds first/last seen and
# the history.
ST="sqlite:$tmp/inv.db"
"$FLOWDEX" scan -q --store "$ST" -c "$CAT" ../sample/flows >/dev/null
"$FLOWDEX" scan -q --store "$ST" -c "$CAT" ../sample/flows >/dev/null
sed '$d' golden/scan-nfcapd.json >"$tmp/scan-hosts.json"
golden "hosts --store --json equals scan --json" "$tmp/scan-hosts.json" \
    sh -c '"$1" hosts --store "$2" --json | sed "\$d"' sh "$FLOWDEX" "$ST"
golden "hosts --store --csv equals scan --csv" golden/scan-nfcapd.csv \
    "$FLOWDEX" hosts --store "$ST" --csv
golden "host --store" golden/store-host-10.1.0.11.txt \
    "$FLOWDEX" host 10.1.0.11 --store "$ST"
golden "host --store --json" golden/store-host-10.1.0.11.json \
    "$FLOWDEX" host 10.1.0.11 --store "$ST" --json
if "$FLOWDEX" hosts --store "$ST" --json | tail -1 |
   grep -q '"summary": {"hosts": 10, "packages": 50, "evidence": 100, "history": 0'; then
    ok "hosts --store summary"
else
    bad "hosts --store summary"
fi
status "store that cannot be opened" 66 "sqlite:$tmp/none.db" \
    "$FLOWDEX" hosts --store "sqlite:$tmp/none.db"
status "host not in the store" 66 "no host 10.9.9.9" \
    "$FLOWDEX" host 10.9.9.9 --store "$ST"
printf 'not a database, and long enough to be read as one by sqlite, %s\n' \
    "surely not at all; nothing but a few words of text here and there" \
    >"$tmp/junk.db"
status "corrupt store" 65 "junk.db: .*not a database" \
    "$FLOWDEX" hosts --store "sqlite:$tmp/junk.db"
status "scan into a corrupt store" 65 "junk.db" \
    "$FLOWDEX" scan -q --store "sqlite:$tmp/junk.db" -c "$CAT" ../sample/flows
status "store opened read-only" 74 "inv.db?mode=ro: .*readonly" \
    "$FLOWDEX" scan -q --store "sqlite:file:$tmp/inv.db?mode=ro" -c "$CAT" \
    ../sample/flows
# a file size limit stands in for a full disk
status "store on a full disk" 74 "full.db: .*disk I/O error" \
    sh -c 'trap "" XFSZ; ulimit -f 64; exec "$@"' sh \
    "$FLOWDEX" scan -q --store "sqlite:$tmp/full.db" -c "$CAT" ../sample/flows
status "unknown store scheme" 64 "mysql://x: unknown store" \
    "$FLOWDEX" hosts --store mysql://x
status "hosts without a store" 64 "no store given" "$FLOWDEX" hosts
if python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sys.exit(db.execute("PRAGMA integrity_check").fetchone()[0] != "ok")' \
    "$tmp/inv.db"; then
    ok "store integrity_check"
else
    bad "store integrity_check"
fi

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

# A forged catalog holding invalid UTF-8, ESC, C1 CSI and DEL in a
# codename and a package name: every output stays valid UTF-8 without
# control characters, and JSON stays valid JSON.
python3 forge-catalog.py forge "$CAT" "$tmp/forged.fdxc"
forged() {  # name, json|text, command...
    name=$1 kind=$2
    shift 2
    if "$@" >"$tmp/out" 2>"$tmp/err" &&
       python3 forge-catalog.py check "$kind" "$tmp/out"; then
        ok "forged catalog: $name"
    else
        bad "forged catalog: $name"
        cat "$tmp/err"
    fi
}
FC="$tmp/forged.fdxc"
forged "scan table" text "$FLOWDEX" scan -c "$FC" ../sample/flows
forged "scan csv" text "$FLOWDEX" scan --csv -c "$FC" ../sample/flows
forged "scan json" json "$FLOWDEX" scan --json -c "$FC" ../sample/flows
forged "explain" text "$FLOWDEX" explain -c "$FC" 10.1.0.15 ../sample/flows
forged "explain json" json "$FLOWDEX" explain --json -c "$FC" 10.1.0.15 \
    ../sample/flows
forged "catalog info" text "$FLOWDEX" catalog info "$FC"
if "$FLOWDEX" catalog info --json "$FC" >"$tmp/out" &&
   python3 forge-catalog.py check text "$tmp/out" &&
   python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" &&
   grep -q 'b\\ufffd\\u001b\[2Jok' "$tmp/out"; then
    ok "forged catalog: catalog info json"
else
    bad "forged catalog: catalog info json"
fi

# a write error on standard output (ENOSPC from /dev/full) is exit 74
# with one error line, for every command that writes there
full() {  # name, command...
    name=$1
    shift
    MAXLINES=1 status "$name to a full disk" 74 "standard output: write error" \
        sh -c '"$@" >/dev/full' sh "$@"
}
if [ -c /dev/full ]; then
    full "scan" "$FLOWDEX" scan -c "$CAT" ../sample/flows
    full "scan --json" "$FLOWDEX" scan --json -c "$CAT" ../sample/flows
    full "explain" "$FLOWDEX" explain -c "$CAT" 10.1.0.15 ../sample/flows
    full "flows" "$FLOWDEX" flows ../sample/flows
    full "catalog info" "$FLOWDEX" catalog info "$CAT"
    full "catalog info --json" "$FLOWDEX" catalog info --json "$CAT"
    full "--help" "$FLOWDEX" catalog --help
fi

# help and manual pages name every option and input kind
helps() {  # name, text, command...
    name=$1 text=$2
    shift 2
    if "$@" 2>&1 | grep -q -- "$text"; then ok "$name"; else bad "$name"; fi
}
helps "explain --help: formats" "explain .*\[--json|--csv\]" \
    "$FLOWDEX" explain --help
for o in --json --csv --stats --verbose --quiet; do
    helps "flows --help: $o" "^ .*$o " "$FLOWDEX" flows --help
done
for c in scan flows; do
    helps "$c --help: IPFIX files" "IPFIX file (RFC 5655)" "$FLOWDEX" $c --help
done
for c in hosts host; do
    helps "$c --help: --store" "^ .*--store URI" "$FLOWDEX" $c --help
done
helps "scan --help: --store" "^ .*--store URI" "$FLOWDEX" scan --help
helps "flowdex.1: hosts and host" "^.Cm host$" cat ../man/flowdex.1
helps "flowdex-store.5: schema_version" "schema_version" \
    cat ../man/flowdex-store.5
helps "flowdex.1: IPFIX files" "IPFIX file (RFC 5655" cat ../man/flowdex.1
helps "flowdex.1: catalog info -j" "Op Fl j | Fl -json" cat ../man/flowdex.1
helps "flowdex-catalog.5: -j" "^.Fl j , Fl -json" cat ../man/flowdex-catalog.5
helps "one suite, singular" "from 1 suite (1 Packages file read, 0 duplicates" \
    "$FLOWDEX" catalog build -o "$tmp/one.fdxc" -s tiny -a i386 \
    data/catalog/mirror

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

# -o naming a FIFO or a directory: refused before anything is read, and
# left as it was (rename would have replaced a device node by a file)
mkfifo "$tmp/fifo"
MAXLINES=1 status "output is a FIFO" 73 "fifo: exists and is not a regular" \
    "$FLOWDEX" catalog build -o "$tmp/fifo" data/catalog/mirror
if [ -p "$tmp/fifo" ]; then ok "FIFO left in place"; else bad "FIFO left in place"; fi
mkdir "$tmp/outdir"
MAXLINES=1 status "output is a directory" 73 "outdir: exists and is not a" \
    "$FLOWDEX" catalog build -o "$tmp/outdir" data/catalog/mirror
if [ -d "$tmp/outdir" ]; then ok "directory left in place"; else bad "directory left in place"; fi

# a write error (a file size limit stands in for a full disk) names the
# output file, not the temporary file that is removed
status "write error names the output" 74 "c.fdxc: write error" \
    sh -c 'trap "" XFSZ; ulimit -f 1; exec "$@"' sh \
    "$FLOWDEX" catalog build -q -o "$tmp/c.fdxc" data/catalog/mirror
if grep -q "tmp[A-Za-z0-9]\{6\}" "$tmp/err"; then bad "no temporary name in the error"; cat "$tmp/err"; else ok "no temporary name in the error"; fi
if ls "$tmp" | grep -q "c.fdxc"; then bad "no file left by a write error"; else ok "no file left by a write error"; fi

# one record of packets=2^64-2^56 (a flipped byte): dropped with a warning,
# the rest analysed (this once made the TLS matcher loop for ever)
"$FLOWDEX" scan -c "$CAT" data/capture/invalid-packets.pcap >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "event=invalid-counts flows=1" "$tmp/err" &&
   grep -q "debian 12 (bookworm) amd64" "$tmp/out"; then
    ok "record with an impossible packet count"
else
    bad "record with an impossible packet count (exit $rc)"
    cat "$tmp/err"
fi
status "packet capture instead of flow exports" 65 "no NetFlow or IPFIX export datagram" \
    "$FLOWDEX" scan -c "$CAT" data/capture/tcp-traffic.pcap
status "unsupported NetFlow version" 65 "netflow-v7.pcap: frame 1" \
    "$FLOWDEX" scan -c "$CAT" data/capture/netflow-v7.pcap
# the same datagrams among decodable ones: a warning, the rest is read
cat ../sample/exports/softflowd-netflow-v5.pcap >"$tmp/v5v7.pcap"
tail -c +25 data/capture/netflow-v7.pcap >>"$tmp/v5v7.pcap"
"$FLOWDEX" scan --csv -c "$CAT" "$tmp/v5v7.pcap" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$tmp/out" golden/scan-softflowd-netflow-v5.csv &&
   grep -q "unsupported-version version=7" "$tmp/err"; then
    ok "unsupported NetFlow version among v5 datagrams"
else
    bad "unsupported NetFlow version among v5 datagrams (exit $rc)"
    cat "$tmp/err"
fi
printf 'Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/a.deb\nSize: -5\n\n' \
    >"$tmp/Packages"
status "corrupt Packages file" 65 "Packages:5: bad Size" \
    "$FLOWDEX" catalog build -o "$tmp/bad.fdxc" "$tmp/Packages"
if [ -e "$tmp/bad.fdxc" ]; then bad "no catalog from a corrupt Packages file"; else ok "no catalog from a corrupt Packages file"; fi
head -c 100 data/catalog/mirror/debian/dists/tiny/main/binary-amd64/Packages.xz \
    >"$tmp/Packages.xz"
status "truncated Packages.xz" 65 "Packages.xz" \
    "$FLOWDEX" catalog build -o "$tmp/bad.fdxc" "$tmp/Packages.xz"
head -c 4000 "$CAT" >"$tmp/cut.fdxc.xz"
status "truncated catalog" 65 "cut.fdxc.xz" \
    "$FLOWDEX" scan -c "$tmp/cut.fdxc.xz" ../sample/flows

# A mirror over HTTP (a loopback server on a free port) gives the same
# catalog as the same tree read from disk.  A second archive that lacks
# one of the suites asked for is read for the other.
mkdir -p "$tmp/www/other"
cp -R data/catalog/mirror/debian "$tmp/www/"
cp -R data/catalog/mirror/debian/dists "$tmp/www/other/"
rm -rf "$tmp/www/other/dists/tiny"
python3 -c '
import http.server, os, sys
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
        http.server.SimpleHTTPRequestHandler)
print(s.server_address[1], flush=True)
s.serve_forever()' "$tmp/www" >"$tmp/port" 2>/dev/null &
server=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$tmp/port" ] && break; sleep 0.5; done
url="http://127.0.0.1:$(cat "$tmp/port")/debian"
"$FLOWDEX" catalog build -q -o "$tmp/url.fdxc" -s tiny -a amd64 -a i386 "$url" &&
"$FLOWDEX" catalog build -q -o "$tmp/dir.fdxc" -s tiny -a amd64 -a i386 data/catalog/mirror &&
"$FLOWDEX" catalog info "$tmp/url.fdxc" | sed 1,3d >"$tmp/url.info" &&
"$FLOWDEX" catalog info "$tmp/dir.fdxc" | sed 1,3d >"$tmp/dir.info"
if [ -s "$tmp/dir.info" ] && cmp -s "$tmp/url.info" "$tmp/dir.info"; then
    ok "catalog from an HTTP mirror equals the tree's"
else
    bad "catalog from an HTTP mirror equals the tree's"
    diff "$tmp/dir.info" "$tmp/url.info" | head
fi
if "$FLOWDEX" catalog build -q -o "$tmp/two.fdxc" -s tiny -s sid "$url" \
       "${url%/debian}/other" 2>"$tmp/err" &&
   [ "$("$FLOWDEX" catalog info "$tmp/two.fdxc" | grep -c '^origin [0-9]')" -eq 3 ]; then
    ok "two HTTP archives, a suite in only one of them"
else
    bad "two HTTP archives, a suite in only one of them"
    cat "$tmp/err"
fi
status "HTTP mirror without the suite" 66 "suite nosuch: no source has this suite" \
    "$FLOWDEX" catalog build -q -o "$tmp/none.fdxc" -s nosuch "$url"
MAXLINES=1 status "HTTP mirror without the default suites" 66 \
    "/debian: none of the suites oldstable, stable, testing, unstable found; name them with --suite" \
    "$FLOWDEX" catalog build -q -o "$tmp/none.fdxc" "$url"
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
status "HTTP mirror not reachable" 69 "127.0.0.1" \
    "$FLOWDEX" catalog build -q -o "$tmp/none.fdxc" -s tiny "$url"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
