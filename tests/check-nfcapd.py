#!/usr/bin/env python3
"""Turns `nfdump -o json` output into the canonical lines that
test_nfcapd --dump prints, so the two can be compared with diff.

    TZ=UTC nfdump -r FILE -o json | tests/check-nfcapd.py canon
    tests/check-nfcapd.py compare BUILD/tests/test_nfcapd FILE...

One line per flow:
    first_ms last_ms src dst sport dport proto tcpflags(hex)
    in_packets in_bytes out_packets out_bytes
'compare' needs nfdump in PATH; the unit tests need neither it nor this
script (they use the stored *.expect files made by 'canon')."""
import calendar
import ipaddress
import json
import os
import subprocess
import sys
import time

FLAGS = "CEUAPRSF"


def ms(text):
    day, frac = (text.split(".") + ["0"])[:2]
    t = calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S"))
    return t * 1000 + int(frac.ljust(3, "0")[:3])


def tcpflags(text):
    if text.startswith("0x"):
        return int(text, 16)
    v = 0
    for i, c in enumerate(text[-8:]):
        if c != ".":
            v |= 0x80 >> i
    return v


def addr(rec, side):
    for k in (side + "4_addr", side + "6_addr"):
        if k in rec:
            return str(ipaddress.ip_address(rec[k]))
    return "::"


def canon(recs):
    out = []
    for r in recs:
        if r.get("type") != "FLOW":
            continue
        out.append("%d %d %s %s %d %d %d 0x%02x %d %d %d %d" % (
            ms(r["first"]), ms(r["last"]), addr(r, "src"), addr(r, "dst"),
            r.get("src_port", 0), r.get("dst_port", 0), r.get("proto", 0),
            tcpflags(r.get("tcp_flags", "........")),
            r.get("in_packets", 0), r.get("in_bytes", 0),
            r.get("out_packets", 0), r.get("out_bytes", 0)))
    return out


def nfdump_canon(path):
    env = dict(os.environ, TZ="UTC")
    txt = subprocess.run(["nfdump", "-r", path, "-o", "json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return canon(json.loads(txt) if txt.strip() else [])


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "canon":
        txt = sys.stdin.read()
        print("\n".join(canon(json.loads(txt) if txt.strip() else [])))
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "compare":
        bad = 0
        for path in sys.argv[3:]:
            want = nfdump_canon(path)
            got = subprocess.run([sys.argv[2], "--dump", path], check=False,
                                 capture_output=True, text=True).stdout
            got = [" ".join(l.split()[:12]) for l in got.splitlines()]
            same = got == want
            bad += not same
            print("%s %s: %d records (nfdump %d)" %
                  ("ok  " if same else "DIFF", path, len(got), len(want)))
        return 1 if bad else 0
    print(__doc__)
    return 2


sys.exit(main())
