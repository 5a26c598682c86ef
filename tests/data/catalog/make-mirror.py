#!/usr/bin/env python3
"""Writes the tiny mirror tree used by tests/test_catalog.c.

Two suites of a made-up archive "debian" under mirror/: "tiny" (Suite
stable, Version 42.1; amd64 list as .xz, i386 list as .gz, the i386 one
with CRLF line ends) and "sid" (Suite unstable, no Version; amd64 list as
.lz4).  Each InRelease is a Release text inside a PGP clearsign armor
with a dummy signature, listing the right size and SHA-256 of every index
file, plus files this copy does not hold.  Run from this directory; needs
the lz4 command.  The output is committed, so tests need nothing of this.
"""
import gzip
import hashlib
import lzma
import os
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirror")


def stanza(pkg, ver, arch, size, extra=""):
    fn = "pool/main/%s/%s/%s_%s_%s.deb" % (pkg[0], pkg, pkg, ver, arch)
    return ("Package: %s\nVersion: %s\nInstalled-Size: 12\n"
            "Maintainer: Nobody <nobody@example.org>\n"
            "Architecture: %s\n%s"
            "Description: test package %s\n a continuation line\n .\n"
            " another one\nFilename: %s\nSize: %d\n"
            "SHA256: %s\n\n" % (pkg, ver, arch, extra, pkg, fn, size,
                                "0" * 64))


TINY_AMD64 = (stanza("alpha", "1.0-1", "amd64", 1000) +
              stanza("common-data", "2:3.1-2", "all", 5000,
                     "Multi-Arch: foreign\n") +
              stanza("gamma", "0.9", "amd64", 123456789) +
              # no Size: skipped with a warning
              "Package: broken\nVersion: 1\nArchitecture: amd64\n"
              "Filename: pool/main/b/broken/broken_1_amd64.deb\n\n")
TINY_I386 = (stanza("alpha", "1.0-1", "i386", 990) +
             stanza("common-data", "2:3.1-2", "all", 5000))
SID_AMD64 = (stanza("common-data", "2:3.1-2", "all", 5000) +
             stanza("beta", "7", "amd64", 1000))


def lz4(data):
    return subprocess.run(["lz4", "-q", "-c", "-9"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def release(fields, files):
    text = "".join("%s: %s\n" % kv for kv in fields)
    text += "SHA256:\n"
    for path, data in sorted(files.items()):
        if isinstance(data, tuple):   # (size, sha) of a file not copied
            size, sha = data
        else:
            size, sha = len(data), hashlib.sha256(data).hexdigest()
        text += " %s %8d %s\n" % (sha, size, path)
    return ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + text +
            "-----BEGIN PGP SIGNATURE-----\n\nZHVtbXkgc2lnbmF0dXJl\n"
            "=abcd\n-----END PGP SIGNATURE-----\n")


def write(path, data):
    path = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def suite(name, fields, lists, absent):
    files = dict(absent)
    held = {}
    for arch, (text, comp) in lists.items():
        raw = text.encode()
        base = "main/binary-%s/Packages" % arch
        files[base] = raw
        data = {"xz": lambda d: lzma.compress(d, preset=6),
                "gz": lambda d: gzip.compress(d, mtime=0),
                "lz4": lz4}[comp](raw)
        files[base + "." + comp] = data
        held[base + "." + comp] = data
    write("debian/dists/%s/InRelease" % name,
          release(fields, files).encode())
    for path, data in held.items():
        write("debian/dists/%s/%s" % (name, path), data)


suite("tiny",
      [("Origin", "Debian"), ("Label", "Debian"), ("Suite", "stable"),
       ("Version", "42.1"), ("Codename", "tiny"),
       ("Date", "Sat, 01 Jan 2026 00:00:00 UTC"),
       ("Architectures", "amd64 i386"), ("Components", "main")],
      {"amd64": (TINY_AMD64, "xz"),
       "i386": (TINY_I386.replace("\n", "\r\n"), "gz")},
      {"main/i18n/Translation-en.xz": (4242, "1" * 64),
       "main/Contents-amd64.gz": (777777, "2" * 64),
       "main/binary-i386/Packages.xz": (600, "3" * 64),
       "main/binary-arm64/Packages.xz": (3333, "4" * 64)})
suite("sid",
      [("Origin", "Debian"), ("Label", "Debian"), ("Suite", "unstable"),
       ("Codename", "sid"), ("Date", "Sat, 01 Jan 2026 00:00:00 UTC"),
       ("Architectures", "amd64"), ("Components", "main")],
      {"amd64": (SID_AMD64, "lz4")},
      {"main/i18n/Translation-en.xz": (4343, "5" * 64)})
