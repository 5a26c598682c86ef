#!/usr/bin/env python3
"""The streaming engine against flowdex scan on a large mix.

Usage: stream-mix.py FLOWDEX TEST_STREAM [RECORDS]

Makes RECORDS (default 300,000) NetFlow v5 records with bench/gen-v5.py
(seed 1: random traffic of 20,000 clients, 15 % of the records the real
downloads of sample/flows replayed from four mirrors to 3,000 clients),
writes them as a capture of export datagrams, and runs TEST_STREAM's
test_other_file on it with FDX_STREAM_STRICT set: the engine, advanced
every 10 s of flow time, must make every host's claims as scan does.
Many rounds and many endpoint recalibrations happen on the way, so a
connection matched with an early server model and never matched again
shows here (45 of 2,998 hosts differed before evidence was matched
again when a model changed).
"""
import importlib.util
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_gen():
    spec = importlib.util.spec_from_file_location(
        "gen_v5", os.path.join(ROOT, "bench", "gen-v5.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pcap_write(path, dgrams):
    """A classic pcap of Ethernet/IPv4/UDP packets, one per datagram."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for n, p in enumerate(dgrams):
            udp = struct.pack("!HHHH", 40000, 2055, 8 + len(p), 0) + p
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp),
                             n & 0xffff, 0, 64, 17, 0, bytes([192, 0, 2, 1]),
                             bytes([192, 0, 2, 2])) + udp
            eth = b"\0" * 12 + b"\x08\x00" + ip
            out.write(struct.pack("<IIII", 1796300000 + n // 1000,
                                  (n % 1000) * 1000, len(eth), len(eth)))
            out.write(eth)


def main():
    flowdex, test_stream = sys.argv[1], sys.argv[2]
    records = int(sys.argv[3]) if len(sys.argv) > 3 else 300000
    gen = load_gen()
    with tempfile.TemporaryDirectory() as tmp:
        tpl = os.path.join(tmp, "templates.csv")
        with open(tpl, "w") as f:
            subprocess.run([flowdex, "flows", "--csv",
                            os.path.join(ROOT, "sample", "flows")],
                           stdout=f, check=True)
        g = gen.Gen(1, gen.load_templates(tpl), 0.15)
        dgrams, batch, seq, bnow = [], [], 0, 0
        for now, rec in g.records(records):
            batch.append(rec)
            bnow = now
            if len(batch) == gen.PER_DGRAM:
                dgrams.append(bytes(gen.datagram(batch, seq, bnow)))
                seq, batch = seq + len(batch), []
        if batch:
            dgrams.append(bytes(gen.datagram(batch, seq, bnow)))
        pcap = os.path.join(tmp, "mix.pcap")
        pcap_write(pcap, dgrams)
        env = dict(os.environ, FDX_STREAM_FLOWS=pcap, FDX_STREAM_STRICT="1",
                   FDX_SOURCE_ROOT=ROOT)
        r = subprocess.run([test_stream], env=env)
        return r.returncode


if __name__ == "__main__":
    sys.exit(main())
