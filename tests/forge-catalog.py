#!/usr/bin/env python3
"""A forged catalog and checks of what flowdex prints from it.

forge IN OUT   copies catalog IN (plain or .xz) to OUT with bytes a
               catalog file may hold but no output may carry put into two
               strings: the codename "bookworm" becomes b"b\\xff\\x1b[2Jok"
               (invalid UTF-8, ESC) and the package name
               "libqgis-analysis3.22.16" gets C1 CSI (U+009B) and DEL.
               The CRCs are recomputed, so the file opens.
check json|text FILE
               exits 1 unless FILE is valid UTF-8 without control
               characters other than newline (text), or is valid JSON
               holding the forged strings escaped (json).
"""
import json
import lzma
import struct
import sys
import zlib

SWAPS = [(b"bookworm", b"b\xff\x1b[2Jok"),
         (b"libqgis-analysis3.22.16", b"libqgis\xc2\x9b2J\x7fysis3.22.16")]


def forge(src, dst):
    data = open(src, "rb").read()
    if data.startswith(b"\xfd7zXZ"):
        data = lzma.decompress(data)
    data = bytearray(data)
    off, size = struct.unpack_from("<QQ", data, 64)
    pool = bytes(data[off:off + size])
    for old, new in SWAPS:
        assert len(old) == len(new)
        assert b"\0" + old + b"\0" in pool, old
        pool = pool.replace(b"\0" + old + b"\0", b"\0" + new + b"\0")
    data[off:off + size] = pool
    struct.pack_into("<I", data, 84, zlib.crc32(bytes(data[96:])))
    struct.pack_into("<I", data, 92, zlib.crc32(bytes(data[:92])))
    open(dst, "wb").write(data)


def check_text(raw):
    text = raw.decode("utf-8")   # raises on invalid UTF-8
    bad = [c for c in text if c != "\n" and
           (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0)]
    if bad:
        sys.exit("control characters in output: %r" % bad[:5])


def check_json(raw):
    check_text(raw)              # escaped: no raw control bytes either
    text = json.dumps(json.loads(raw))
    for want in ("b\\ufffd\\u001b[2Jok", "libqgis\\u009b2J\\u007fysis"):
        if want not in text:
            sys.exit("missing %s in the JSON output" % want)


if __name__ == "__main__":
    if sys.argv[1] == "forge":
        forge(sys.argv[2], sys.argv[3])
    elif sys.argv[2] == "json":
        check_json(open(sys.argv[3], "rb").read())
    else:
        check_text(open(sys.argv[3], "rb").read())
