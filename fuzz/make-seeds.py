#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/ (python3 stdlib only).

    fuzz/make-seeds.py [--shared DIR] [--flowdex PATH]

netflow/   the UDP payloads of the exporters' captures in
           DIR/cases/exporters/*.pcap and DIR/corpus/debian-downloads/*.pcap,
           framed the way fuzz_netflow.c reads them
capture/   a few small captures, plus one capture rewritten onto every link
           layer capture.c unwraps (pcapng, SLL, SLL2, raw IP, loopback,
           VLAN tags, IPv6)
nfcapd/    the nfcapd files of tests/data/nfcapd and of the corpus, and a
           truncated copy
input/     IPFIX files (RFC 5655) made of the IPFIX messages of the
           exporters' captures, tests/data/nfcapd/softflowd.ipfix, a cut
           copy, and one small file of every other kind fdx_read_path takes
catalog/   a catalog built by `flowdex catalog build` from
           tests/data/catalog/mirror, plain and compressed
packages/  InRelease and Packages texts from the test mirror and short
           hand-written ones for the edge cases of lib/debian.c

Only files this script writes are replaced; reproducers (crash-*) stay.
"""
import argparse
import bz2
import glob
import gzip
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
NETFLOW_SEED_MAX = 8192


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read_pcap(path):
    """(linktype, [(sec, usec, frame)]) of a classic pcap or a pcapng."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data)
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        raise ValueError(path + ": not a pcap")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frames.append((sec, usec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype, frames


def read_pcapng(data):
    frames, linktype, off = [], 1, 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack("<II", data[off:off + 8])
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            linktype = struct.unpack("<H", body[:2])[0]
        elif btype == 6:
            _, hi, lo, cap, _ = struct.unpack("<IIIII", body[:20])
            ts = hi << 32 | lo
            frames.append((ts // 1000000, ts % 1000000, body[20:20 + cap]))
        off += blen
    return linktype, frames


def udp_of(linktype, frame):
    """(src ip bytes, sport, ip header, udp payload) or None."""
    if linktype != 1 or len(frame) < 14:
        return None
    off, etype = 12, struct.unpack(">H", frame[12:14])[0]
    while etype in (0x8100, 0x88A8):
        off += 4
        etype = struct.unpack(">H", frame[off:off + 2])[0]
    ip = frame[off + 2:]
    if etype != 0x0800 or len(ip) < 20 or ip[9] != 17:
        return None
    ihl = (ip[0] & 15) * 4
    tot = struct.unpack(">H", ip[2:4])[0] or len(ip)
    udp = ip[ihl:tot]
    if len(udp) < 8:
        return None
    ulen = struct.unpack(">H", udp[4:6])[0]
    return ip[12:16], struct.unpack(">H", udp[:2])[0], ip[:ihl], udp[8:ulen]


def netflow_seed(path):
    linktype, frames = read_pcap(path)
    out, exporters, last = bytearray(b"\x00"), {}, None
    for sec, _, frame in frames:
        u = udp_of(linktype, frame)
        if u is None:
            continue
        src, sport, _, payload = u
        idx = exporters.setdefault((src, sport), len(exporters) % 4)
        delta = 0 if last is None else max(0, min(63, sec - last))
        last = sec
        rec = struct.pack(">BH", delta << 2 | idx, len(payload)) + payload
        if len(out) > 1 and len(out) + len(rec) > NETFLOW_SEED_MAX:
            break
        out += rec
    return bytes(out) if len(out) > 1 else None


def make_netflow(shared):
    pcaps = sorted(glob.glob(os.path.join(shared, "cases/exporters/*.pcap")))
    pcaps += sorted(glob.glob(os.path.join(shared,
                                           "corpus/debian-downloads/*.pcap")))
    pcaps = [p for p in pcaps if os.path.basename(p) != "traffic.pcap"]
    n = 0
    for p in pcaps:
        seed = netflow_seed(p)
        if seed is not None:
            name = os.path.basename(p)[:-5]
            if "debian-downloads" in p:
                name = "corpus-" + name
            write("netflow", name, seed)
            n += 1
    # tiny limits (option bit 0) on two of them, no logger on one
    for name, opt in (("cisco-asa-v9-many-templates", 1),
                      ("netscaler-ipfix-varlen-enterprise", 1),
                      ("graylog-nprobe-v5-v9-mixed-pcap", 2)):
        f = os.path.join(CORPUS, "netflow", name)
        if os.path.exists(f):
            seed = bytearray(open(f, "rb").read())
            seed[0] = opt
            write("netflow", name + "-opt%d" % opt, bytes(seed))
    return n


def pcap_file(linktype, frames, snaplen=65535):
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0,
                                snaplen, linktype))
    for sec, usec, frame in frames:
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame))
        out += frame
    return bytes(out)


def pcapng_file(linktype, frames):
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for sec, usec, frame in frames:
        ts = sec * 1000000 + usec
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                    len(frame), len(frame)) + frame)
    return out


def ipv6_frame(src4, sport, payload):
    src = b"\x20\x01\x0d\xb8" + b"\0" * 8 + src4
    dst = b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01"
    udp = struct.pack(">HHHH", sport, 2055, len(payload) + 8, 0) + payload
    # a hop-by-hop options header (PadN) in front of UDP
    hbh = bytes([17, 0, 1, 4, 0, 0, 0, 0])
    ip = struct.pack(">IHBB", 6 << 28, len(hbh) + len(udp), 0, 64)
    return ip + src + dst + hbh + udp


def make_capture(shared):
    exp = os.path.join(shared, "cases/exporters")
    for name in ("graylog-softflowd-v5-pcap", "softflowd-v9-template-and-data",
                 "barracuda-ipfix", "cisco-asa-v9-nsel",
                 "h3c-v9-netstream-varstring", "juniper-mx240-ipfix-options",
                 "v5-corrupt-record-count", "netscaler-ipfix-varlen-enterprise",
                 "graylog-nprobe-v5-v9-mixed-pcap"):
        p = os.path.join(exp, name + ".pcap")
        if os.path.exists(p):
            write("capture", name + ".pcap", open(p, "rb").read())
    png = os.path.join(ROOT, "tests/data/capture/softflowd-v5.pcapng")
    write("capture", "softflowd-v5.pcapng", open(png, "rb").read())

    linktype, frames = read_pcap(os.path.join(
        exp, "softflowd-v9-template-and-data.pcap"))
    eth = [(s, u, f) for s, u, f in frames if udp_of(linktype, f)]
    ips = [(s, u, f[14:]) for s, u, f in eth]
    write("capture", "link-pcapng.pcapng", pcapng_file(1, eth))
    write("capture", "link-raw.pcap", pcap_file(101, ips))
    write("capture", "link-ipv4.pcap", pcap_file(228, ips))
    write("capture", "link-null.pcap",
          pcap_file(0, [(s, u, b"\x02\0\0\0" + f) for s, u, f in ips]))
    write("capture", "link-loop.pcap",
          pcap_file(108, [(s, u, b"\0\0\0\x02" + f) for s, u, f in ips]))
    sll = b"\0\0\0\x01\0\x06" + b"\x02\0\0\0\0\x01\0\0" + b"\x08\0"
    write("capture", "link-sll.pcap",
          pcap_file(113, [(s, u, sll + f) for s, u, f in ips]))
    sll2 = b"\x08\0\0\0" + b"\0\0\0\x02" + b"\0\x01\0\x06" + \
        b"\x02\0\0\0\0\x01\0\0"
    write("capture", "link-sll2.pcap",
          pcap_file(276, [(s, u, sll2 + f) for s, u, f in ips]))
    vlan = [(s, u, f[:12] + b"\x88\xa8\0\x0a\x81\0\0\x14" + f[12:])
            for s, u, f in eth]
    write("capture", "link-qinq.pcap", pcap_file(1, vlan))
    v6 = []
    for s, u, f in eth:
        src, sport, _, payload = udp_of(1, f)
        v6.append((s, u, ipv6_frame(src, sport, payload)))
    write("capture", "link-ipv6-raw.pcap", pcap_file(101, v6))
    write("capture", "link-ipv6-eth.pcap", pcap_file(
        1, [(s, u, eth[0][2][:12] + b"\x86\xdd" + f) for s, u, f in v6]))


def make_nfcapd(shared):
    src = os.path.join(ROOT, "tests/data/nfcapd")
    for p in sorted(glob.glob(os.path.join(src, "*"))):
        if not p.endswith(".expect"):
            write("nfcapd", os.path.basename(p), open(p, "rb").read())
    for p in sorted(glob.glob(os.path.join(
            shared, "corpus/debian-downloads/nfcapd/nfcapd.*"))):
        data = open(p, "rb").read()
        write("nfcapd", "corpus-" + os.path.basename(p), data)
        write("nfcapd", "corpus-truncated", data[:len(data) // 2])
    plain = os.path.join(src, "nfpcapd.plain")
    if os.path.exists(plain):
        data = open(plain, "rb").read()
        write("nfcapd", "nfpcapd-truncated", data[:3000])
        if shutil.which("zstd"):
            write("nfcapd", "nfpcapd.zstd", nfcapd_zstd(data))


def ipfix_file(path):
    """The IPFIX messages of a capture, one after the other, or None."""
    linktype, frames = read_pcap(path)
    out = bytearray()
    for _, _, frame in frames:
        u = udp_of(linktype, frame)
        if u is not None and u[3][:2] == b"\x00\x0a":
            out += u[3]
    return bytes(out[:NETFLOW_SEED_MAX]) or None


def make_input(shared):
    for p in sorted(glob.glob(os.path.join(shared,
                                           "cases/exporters/*ipfix*.pcap"))):
        data = ipfix_file(p)
        if data is not None:
            write("input", os.path.basename(p)[:-5] + ".ipfix", data)
    src = os.path.join(ROOT, "tests/data/nfcapd")
    data = open(os.path.join(src, "softflowd.ipfix"), "rb").read()
    write("input", "softflowd.ipfix", data)
    write("input", "softflowd-cut.ipfix", data[:len(data) - 100])
    for name in ("nfpcapd.lz4", "nfdump16.lzo"):
        write("input", name, open(os.path.join(src, name), "rb").read())
    write("input", "softflowd-v5.pcapng", open(os.path.join(
        ROOT, "tests/data/capture/softflowd-v5.pcapng"), "rb").read())


def nfcapd_zstd(data):
    """A layout 2 nfcapd file recompressed with zstd blocks, which the
    installed nfdump cannot write."""
    magic, version, comp = struct.unpack("<HHxxxxxxxxxxxxB", data[:17])
    assert magic == 0xA50C and version == 2 and comp == 0
    appx_off = struct.unpack("<Q", data[24:32])[0]
    out, off, new_appx = bytearray(data[:40]), 40, 0
    while off + 12 <= len(data):
        nrec, size, btype, flags = struct.unpack("<IIHH", data[off:off + 12])
        body = subprocess.run(["zstd", "-q", "-c"], input=data[off + 12:
                              off + 12 + size], stdout=subprocess.PIPE,
                              check=True).stdout
        if off == appx_off:
            new_appx = len(out)
        out += struct.pack("<IIHH", nrec, len(body), btype, flags) + body
        off += 12 + size
    out[16] = 4
    if appx_off:
        out[24:32] = struct.pack("<Q", new_appx)
    return bytes(out)


def make_catalog(flowdex):
    mirror = os.path.join(ROOT, "tests/data/catalog/mirror")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mirror.fdxc")
        subprocess.run([flowdex, "catalog", "build", "-q", "-o", out, mirror],
                       check=True)
        data = open(out, "rb").read()
        single = os.path.join(tmp, "one.fdxc")
        subprocess.run([flowdex, "catalog", "build", "-q", "-o", single,
                        "--suite", "sid", mirror], check=True)
        one = open(single, "rb").read()
        for tool, ext in (("zstd", "zst"), ("lz4", "lz4")):
            if shutil.which(tool):
                r = subprocess.run([tool, "-c", "-q", out],
                                   stdout=subprocess.PIPE, check=True)
                write("catalog", "mirror.fdxc." + ext, r.stdout)
    write("catalog", "mirror.fdxc", data)
    write("catalog", "sid.fdxc", one)
    write("catalog", "mirror.fdxc.xz", lzma.compress(data))
    write("catalog", "mirror.fdxc.gz", gzip.compress(data, mtime=0))
    write("catalog", "mirror.fdxc.bz2", bz2.compress(data))
    half = len(data) // 2
    write("catalog", "mirror.fdxc.2members.gz",
          gzip.compress(data[:half], mtime=0) +
          gzip.compress(data[half:], mtime=0))


PACKAGES_SNIPPETS = {
    "release-plain": b"Origin: Ubuntu\nSuite: jammy-updates\n"
                     b"Version: 22.04\nCodename: jammy\nSHA256:\n"
                     b" " + b"ab" * 32 + b" 123 main/binary-amd64/Packages\n"
                     b" " + b"CD" * 32 + b"\t45 main/binary-amd64/Packages\n",
    "release-suite-only": b"Suite: unstable\r\nDate: now\r\n",
    "release-dash-escaped": b"-----BEGIN PGP SIGNED MESSAGE-----\n"
                            b"Hash: SHA256\n\n- Suite: stable\n"
                            b"Version: 12.15\nSHA256:\n - " + b"0" * 64 +
                            b" 1 x\n-----BEGIN PGP SIGNATURE-----\nzz\n",
    "packages-edge": b"Package: a\nVersion: 1\nArchitecture: all\n"
                     b"Filename: pool/a.deb\nSize: 9999999999999999999\n"
                     b"Description: d\n continued\n\n\n"
                     b"Package: b\nSize: 1\n\nPackage:\nFilename: x\n"
                     b"Version: 1\nArchitecture: all\nSize: 2\r\n\r\n"
                     b"package: c\nversion: 2\narchitecture: amd64\n"
                     b"filename: c.deb\nsize: 3",
}


def make_packages(shared):
    mirror = os.path.join(ROOT, "tests/data/catalog/mirror/debian/dists")
    write("packages", "inrelease-tiny",
          open(os.path.join(mirror, "tiny/InRelease"), "rb").read())
    write("packages", "inrelease-sid",
          open(os.path.join(mirror, "sid/InRelease"), "rb").read())
    write("packages", "packages-tiny-amd64", lzma.decompress(open(
        os.path.join(mirror, "tiny/main/binary-amd64/Packages.xz"),
        "rb").read()))
    write("packages", "packages-tiny-i386", gzip.decompress(open(
        os.path.join(mirror, "tiny/main/binary-i386/Packages.gz"),
        "rb").read()))
    for name, data in PACKAGES_SNIPPETS.items():
        write("packages", name, data)
    real = os.path.join(shared, "catalog/debian-2026-12-03/debian/dists/"
                        "bookworm/InRelease")
    if os.path.exists(real):
        lines = open(real, "rb").read().split(b"\n")
        write("packages", "inrelease-bookworm-head",
              b"\n".join(lines[:40]) + b"\n")
    for p in sorted(glob.glob(os.path.join(
            shared, "catalog/debian-2026-12-03/debian/dists/bookworm/main/"
            "binary-amd64/Packages.xz")))[:1]:
        text = lzma.LZMADecompressor().decompress(open(p, "rb").read(),
                                                  max_length=20000)
        write("packages", "packages-bookworm-head",
              text[:text.find(b"\n\n", 6000) + 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="/work/shared")
    ap.add_argument("--flowdex", default=os.path.join(ROOT, "build/flowdex"))
    a = ap.parse_args()
    print("netflow seeds:", make_netflow(a.shared))
    make_capture(a.shared)
    make_nfcapd(a.shared)
    make_input(a.shared)
    make_catalog(a.flowdex)
    make_packages(a.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
