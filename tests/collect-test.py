#!/usr/bin/env python3
"""End-to-end tests of flowdex collect, on loopback addresses only.

usage: collect-test.py FLOWDEX CATALOG EXPORTS_DIR TEST
TEST is one of:
  e2e        replay the UDP payloads of the v5, v9 and IPFIX sample
             exports to a collector; after SIGTERM its store must hold
             the hosts, OS claims and packages `flowdex scan` gives
  allow      datagrams from 127.0.0.2 are dropped and counted while
             127.0.0.1's are used (--allow 127.0.0.1)
  flood      random datagrams and a template flood: the collector keeps
             running, counts them, and VmRSS stays under RSS_BOUND_KIB
  kill       SIGKILL in the middle of a replay, restart, replay the
             rest: the store passes PRAGMA integrity_check and holds
             the claims of a clean run
  config     the example etc/flowdex.conf runs; a bad line exits 78, a
             bound port 71; SIGHUP with the same and a changed catalog
  metrics    --metrics: /metrics parses as Prometheus text and says what
             the status file says; 404, 405, 400, 431; a slow client and
             a burst of 50 connections stop neither the datagrams nor
             the answers
  fulldisk   (root) the store on a full tmpfs: each failed commit is
             logged naming the store, the collector keeps receiving,
             the store passes integrity_check, and once there is room
             the next commit writes the claims; flowdex scan --store on
             the full disk exits 74 naming the store, its store intact
  shared     the sample's hosts copied to 8 sites, exported by two
             exporters split by site and then connection by connection:
             two collectors sharing one store (PostgreSQL when
             FLOWDEX_TEST_SHARED is set) give the hosts, OS claims (to
             the confidence) and packages one collector gives
  retention  sites two days apart and --retention-days 5: the older
             evidence is pruned at the last commit, the claims stay
  live       real exporters (softflowd v5, v9, IPFIX; pmacctd nfprobe v9,
             IPFIX) meter a traffic capture and send to a relay that
             records every datagram and forwards it to a collector; the
             store must hold what `flowdex scan` gives on the recording.
             The capture is FLOWDEX_LIVE_TRAFFIC, by default
             ../shared/corpus/debian-downloads/traffic.pcap beside the
             source tree; FLOWDEX_LIVE_CATALOG replaces CATALOG.  Skips
             when the capture, softflowd or pmacctd is missing (fails
             instead with FLOWDEX_LIVE_REQUIRED=1, as CI sets it).
Every step has a timeout; exit 0 pass, 1 fail, 77 skip.
"""
import calendar
import csv
import errno
import http.client
import io
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

# Documented in flowdex-collect(8): the sample catalog inflated in memory
# (36 MB) plus the decoder's worst case (33 MiB) plus the stream's tables
# for a flood that makes no connections.
RSS_BOUND_KIB = 160 * 1024


def rss_bound(flowdex):
    """The bound for this binary: AddressSanitizer's shadow memory and
    quarantine (up to 256 MiB of freed blocks) come on top of flowdex's
    own, so an ASan build gets 3 times the bound plus the quarantine."""
    try:
        libs = subprocess.run(["ldd", flowdex], stdout=subprocess.PIPE,
                              text=True).stdout
    except OSError:
        libs = ""
    if "libasan" in libs:
        return 3 * RSS_BOUND_KIB + 256 * 1024
    return RSS_BOUND_KIB
STEP_TIMEOUT = 60
EXPORTS = ["softflowd-netflow-v5.pcap", "softflowd-netflow-v9.pcap",
           "softflowd-ipfix.pcap", "pmacctd-netflow-v9.pcap",
           "pmacctd-ipfix.pcap"]


RUNNING = []   # collectors to kill should a test fail


def fail(msg):
    print("not ok - " + msg)
    for p in RUNNING:
        if p.poll() is None:
            p.kill()
            p.wait()
    sys.exit(1)


def read_pcap(path):
    """Yields (time, src, sport, payload) of the UDP datagrams of a
    classic pcap (Ethernet, Linux cooked or raw IP; IPv4 and IPv6)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}[magic]
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII",
                                           data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        udp = udp_of(frame, linktype)
        if udp is not None:
            yield (t,) + udp


def udp_of(frame, linktype):
    if linktype == 1:
        etype, ip = struct.unpack(">H", frame[12:14])[0], frame[14:]
        while etype == 0x8100:
            etype, ip = struct.unpack(">H", ip[2:4])[0], ip[4:]
    elif linktype == 113:
        etype, ip = struct.unpack(">H", frame[14:16])[0], frame[16:]
    elif linktype in (101, 12):
        etype = 0x0800 if frame[0] >> 4 == 4 else 0x86DD
        ip = frame
    else:
        return None
    if etype == 0x0800 and ip[9] == 17:
        hl = (ip[0] & 15) * 4
        src, l4 = socket.inet_ntop(socket.AF_INET, ip[12:16]), ip[hl:]
    elif etype == 0x86DD and ip[6] == 17:
        src, l4 = socket.inet_ntop(socket.AF_INET6, ip[8:24]), ip[40:]
    else:
        return None
    sport, _, ulen = struct.unpack(">HHH", l4[:6])
    return src, sport, l4[8:ulen]


def store_uri(store):
    """A path is a SQLite store; a URI is taken as it is."""
    return store if ":" in store else "sqlite:" + store


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Collector:
    """One flowdex collect process on 127.0.0.1 with its status file."""

    def __init__(self, flowdex, catalog, store, tmp, extra=(),
                 config=os.devnull):
        self.port = free_port()
        self.status = os.path.join(tmp, "status-%d" % self.port)
        self.errlog = open(os.path.join(tmp, "collect-%d.log" % self.port),
                           "w+")
        args = [flowdex, "collect", "--listen", "127.0.0.1:%d" % self.port,
                "--store", store_uri(store), "--commit-interval", "1",
                "--status-file", self.status, "--config", config, "-v"]
        if catalog is not None:
            args += ["--catalog", catalog]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=self.errlog)
        RUNNING.append(self.proc)
        self.wait_for(lambda: os.path.exists(self.status), "first commit")

    def wait_for(self, cond, what, timeout=STEP_TIMEOUT):
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            if self.proc.poll() is not None:
                self.dump()
                fail("collector exited (%d) waiting for %s"
                     % (self.proc.returncode, what))
            time.sleep(0.05)
        self.dump()
        fail("timeout waiting for " + what)

    def counters(self):
        rows = {}
        with open(self.status) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                kv = dict(t.split("=", 1) for t in line.split())
                first = line.split("=", 1)[0]
                rows[first + "=" + kv[first]] = kv
        return rows

    def wait_commit(self):
        """Waits for a status file written after now (a whole commit)."""
        t = time.time()
        self.wait_for(lambda: os.path.getmtime(self.status) > t + 0.01,
                      "a commit")

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("collector did not stop on signal %d" % sig)
        return rc

    def log_text(self):
        self.errlog.flush()
        self.errlog.seek(0)
        return self.errlog.read()

    def dump(self):
        self.errlog.seek(0)
        sys.stdout.write(self.errlog.read()[-4000:])


def replay(datagrams, port, src="127.0.0.1", pace_s=0.002):
    """Sends the datagrams in order, one socket per original exporter
    address and port, so that each keeps its own session."""
    socks = {}
    for _, esrc, esport, payload in datagrams:
        key = (esrc, esport)
        if key not in socks:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((src, 0))
            socks[key] = s
        socks[key].sendto(payload, ("127.0.0.1", port))
        time.sleep(pace_s)
    for s in socks.values():
        s.close()


def normalise(doc):
    """Hosts, OS claims and package sets; counts and order left out."""
    out = {}
    for h in doc["hosts"]:
        os_ = h.get("os") or {}
        os_claim = tuple(os_.get(k) for k in
                         ("family", "release", "codename", "arch"))
        pkgs = sorted((p["name"], p["version"], p["arch"], p["suite"],
                       p["path"]) for p in h.get("packages", []))
        out[h["address"]] = (os_claim, pkgs)
    return out


def run_json(args):
    r = subprocess.run(args, stdout=subprocess.PIPE, timeout=STEP_TIMEOUT)
    if r.returncode != 0:
        fail("%s exited %d" % (" ".join(args), r.returncode))
    return json.loads(r.stdout)


def compare(flowdex, catalog, pcap, store, what):
    want = normalise(run_json([flowdex, "scan", "-q", "-c", catalog,
                               "--json", pcap]))
    got = normalise(run_json([flowdex, "hosts", "-q", "--store",
                              store_uri(store), "--json"]))
    if want != got:
        for a in sorted(set(want) | set(got)):
            if want.get(a) != got.get(a):
                print("# %s: scan %s\n#   collect %s"
                      % (a, want.get(a), got.get(a)))
        fail("%s: the store differs from flowdex scan" % what)
    if not want:
        fail("%s: no hosts at all" % what)
    print("ok - %s: %d hosts as flowdex scan" % (what, len(want)))
    return want


def test_e2e(flowdex, catalog, exports, tmp):
    for name in EXPORTS:
        pcap = os.path.join(exports, name)
        store = os.path.join(tmp, name + ".db")
        c = Collector(flowdex, catalog, store, tmp)
        replay(list(read_pcap(pcap)), c.port)
        c.wait_commit()
        rc = c.stop()
        if rc != 0:
            c.dump()
            fail("%s: collector exited %d on SIGTERM" % (name, rc))
        compare(flowdex, catalog, pcap, store, name)


def test_allow(flowdex, catalog, exports, tmp):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(
            ("127.0.0.2", 0))
    except OSError:
        print("# 127.0.0.2 cannot be bound here")
        sys.exit(77)
    pcap = os.path.join(exports, "softflowd-netflow-v9.pcap")
    store = os.path.join(tmp, "allow.db")
    c = Collector(flowdex, catalog, store, tmp, ["--allow", "127.0.0.1"])
    dgrams = list(read_pcap(pcap))
    replay(dgrams, c.port, src="127.0.0.2")
    replay(dgrams, c.port, src="127.0.0.1")
    c.wait_commit()
    rows = c.counters()
    if c.stop() != 0:
        fail("allow: collector failed")
    dropped = sum(int(r["dropped"]) for k, r in rows.items()
                  if k.startswith("exporter=127.0.0.2:"))
    used = sum(int(r["records"]) for k, r in rows.items()
               if k.startswith("exporter=127.0.0.1:"))
    if dropped != len(dgrams) or used == 0:
        print("# " + json.dumps(rows))
        fail("allow: dropped %d of %d, used %d records"
             % (dropped, len(dgrams), used))
    print("ok - allow: %d datagrams from 127.0.0.2 dropped" % dropped)
    compare(flowdex, catalog, pcap, store, "allow")
    many_senders(flowdex, catalog, tmp)


def many_senders(flowdex, catalog, tmp):
    """1,100 senders (source ports), one datagram each, over a first
    one sent again: 1,024 rows of their own, then the shared row, and
    the first one's row found again among them."""
    c = Collector(flowdex, catalog, os.path.join(tmp, "senders.db"), tmp)
    junk = b"\x00\x05\x00\x00" + bytes(20)     # v5, no records
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    first.bind(("127.0.0.1", 0))
    first.sendto(junk, ("127.0.0.1", c.port))
    for _ in range(1099):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.sendto(junk, ("127.0.0.1", c.port))
        s.close()
        time.sleep(0.0005)
    first.sendto(junk, ("127.0.0.1", c.port))
    c.wait_commit()
    rows = c.counters()
    if c.stop() != 0:
        fail("senders: collector failed")
    own = [k for k in rows if k.startswith("exporter=127.0.0.1:")]
    mine = rows.get("exporter=127.0.0.1:%d" % first.getsockname()[1])
    other = rows.get("exporter=other")
    total = sum(int(rows[k]["received"]) for k in own)
    if (len(own) != 1024 or mine is None or int(mine["received"]) != 2 or
            other is None or total + int(other["received"]) != 1101):
        fail("senders: %d rows, first %s, other %s" % (len(own), mine,
                                                      other))
    print("ok - senders: 1,024 rows of their own, %s datagrams in the "
          "shared row" % other["received"])


def template_flood(port, count):
    """v9 datagrams each defining 50 new templates (ids 256..65535)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    tid = 256
    for seq in range(count):
        body = b""
        for _ in range(50):
            fields = [(8, 4), (12, 4), (1, 8), (2, 8), (7, 2), (11, 2)]
            body += struct.pack(">HH", tid, len(fields))
            body += b"".join(struct.pack(">HH", t, n) for t, n in fields)
            tid = tid + 1 if tid < 65535 else 256
        fs = struct.pack(">HH", 0, 4 + len(body)) + body
        hdr = struct.pack(">HHIIII", 9, 50, 1000, int(time.time()), seq, 7)
        s.sendto(hdr + fs, ("127.0.0.1", port))
    s.close()


def random_datagrams(port, count, rng, head_fn):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    for i in range(count):
        n = rng.randrange(0, 1500)
        s.sendto(head_fn(rng) + bytes(rng.getrandbits(8) for _ in range(n)),
                 ("127.0.0.1", port))
        if i % 200 == 0:
            time.sleep(0.01)
    s.close()


def garbage_head(rng):
    """Random bytes behind a version no decoder takes (no session)."""
    return struct.pack(">H", rng.choice([0, 1, 6, 7, 8, 11, 0xffff]))


def session_head(rng):
    """A v9 or IPFIX header with a random source id: a new session."""
    if rng.random() < 0.5:
        return struct.pack(">HHIIII", 9, 1, 0, 0, 0, rng.getrandbits(32))
    return struct.pack(">HHIII", 10, 16, 0, 0, rng.getrandbits(32))


def test_flood(flowdex, catalog, exports, tmp):
    rng = random.Random(2055)
    store = os.path.join(tmp, "flood.db")
    pcap = os.path.join(exports, "softflowd-ipfix.pcap")
    c = Collector(flowdex, catalog, store, tmp)
    template_flood(c.port, 2000)
    random_datagrams(c.port, 3000, rng, garbage_head)
    c.wait_commit()
    c.wait_commit()
    rss, rows = c.rss_kib(), c.counters()
    total = rows["total=all"]
    print("# total %s rss %d KiB" % (json.dumps(total), rss))
    if int(total["malformed"]) == 0 or int(total["received"]) != 5000:
        fail("flood: the datagrams were not counted")
    if rss > rss_bound(flowdex):
        fail("flood: VmRSS %d KiB over the bound %d KiB"
             % (rss, rss_bound(flowdex)))
    print("ok - flood: still running, %s datagrams counted, VmRSS %d KiB"
          % (total["received"], rss))
    replay(list(read_pcap(pcap)), c.port)
    c.wait_commit()

    # Random source ids fill the decoder's session table (256): what
    # comes next from a new session is refused, and counted.
    random_datagrams(c.port, 2000, rng, session_head)
    c.wait_commit()
    rss, rows = c.rss_kib(), c.counters()
    dec = rows["decoder=counters"]
    print("# decoder %s rss %d KiB" % (json.dumps(dec), rss))
    if int(dec["refused"]) == 0 or int(dec["sessions"]) > 256:
        fail("flood: the session table's cap did not show")
    if rss > rss_bound(flowdex):
        fail("flood: VmRSS %d KiB over the bound" % rss)
    if c.stop() != 0:
        fail("flood: collector failed after the flood")
    print("ok - session flood: %s datagrams refused at the cap, VmRSS %d "
          "KiB" % (dec["refused"], rss))
    compare(flowdex, catalog, pcap, store, "after the flood")


def integrity(store):
    db = sqlite3.connect(store)
    try:
        r = db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()
    return r == [("ok",)]


def test_kill(flowdex, catalog, exports, tmp):
    pcap = os.path.join(exports, "pmacctd-netflow-v9.pcap")
    dgrams = list(read_pcap(pcap))
    store = os.path.join(tmp, "kill.db")
    half = len(dgrams) // 2
    c = Collector(flowdex, catalog, store, tmp)
    replay(dgrams[:half], c.port)
    c.wait_commit()
    c.proc.kill()
    c.proc.wait(STEP_TIMEOUT)
    if not integrity(store):
        fail("kill: integrity_check failed after SIGKILL")
    c = Collector(flowdex, catalog, store, tmp)
    replay(dgrams[half:], c.port)
    c.wait_commit()
    if c.stop() != 0:
        fail("kill: restarted collector failed")
    if not integrity(store):
        fail("kill: integrity_check failed after the restart")
    print("ok - kill: integrity_check ok after SIGKILL and restart")
    subset(flowdex, catalog, pcap, store)

    # What the killed process held in memory (open connections, the
    # templates) is lost; the whole export again brings the store to a
    # clean run's claims, the evidence already stored being kept once.
    c = Collector(flowdex, catalog, store, tmp)
    replay(dgrams, c.port)
    c.wait_commit()
    if c.stop() != 0:
        fail("kill: third collector failed")
    compare(flowdex, catalog, pcap, store, "kill, restart, full replay")


def subset(flowdex, catalog, pcap, store):
    want = normalise(run_json([flowdex, "scan", "-q", "-c", catalog,
                               "--json", pcap]))
    got = normalise(run_json([flowdex, "hosts", "-q", "--store",
                              store_uri(store), "--json"]))
    missing = 0
    for a, (os_claim, pkgs) in got.items():
        if a not in want:
            fail("kill: host %s not in a clean run" % a)
        w_os, w_pkgs = want[a]
        if os_claim != w_os or not set(pkgs) <= set(w_pkgs):
            fail("kill: %s has claims a clean run lacks: %s vs %s"
                 % (a, (os_claim, pkgs), want[a]))
    for a, (_, w_pkgs) in want.items():
        missing += len(w_pkgs) - len(got.get(a, (None, []))[1])
    print("ok - kill: the store holds only a clean run's claims "
          "(%d packages of the killed process's open connections missing)"
          % missing)


def exit_code(args):
    r = subprocess.run(args, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=STEP_TIMEOUT)
    return r.returncode, r.stderr.decode(errors="replace")


def test_config(flowdex, catalog, exports, tmp):
    """The example configuration, SIGHUP, and the documented exit codes."""
    example = os.path.join(os.path.dirname(exports), "..", "etc",
                           "flowdex.conf")
    store = os.path.join(tmp, "config.db")
    c = Collector(flowdex, catalog, store, tmp, config=example)
    rc, err = exit_code([flowdex, "collect", "--listen",
                         "127.0.0.1:%d" % c.port, "-c", catalog, "--store",
                         "sqlite:" + store, "--config", os.devnull])
    if rc != 71 or "event=bind-failed" not in err:
        fail("config: a port in use gave %d, not 71: %s" % (rc, err))
    if c.stop() != 0:
        fail("config: the example configuration did not run")
    print("ok - config: etc/flowdex.conf runs; a bound port exits 71")

    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("listen = 127.0.0.1:2055\nnot a setting\n")
    rc, err = exit_code([flowdex, "collect", "--config", bad, "--store",
                         "sqlite:" + store])
    if rc != 78 or "bad.conf:2:" not in err:
        fail("config: a bad line gave %d, not 78: %s" % (rc, err))
    print("ok - config: a bad line exits 78 naming file and line")
    bad_values = [("collector-id", v) for v in ("two words", "new\nline",
                                                 "")] + \
                 [("queue-size", v) for v in ("12X", "512K", "65G", "-1",
                                              "M")]
    for opt, value in bad_values:
        rc, err = exit_code([flowdex, "collect", "--listen",
                             "127.0.0.1:%d" % free_port(),
                             "--store", "sqlite:" + os.path.join(tmp,
                                                                 "i.db"),
                             "-c", catalog, "--config", os.devnull,
                             "--" + opt, value])
        if rc != 64 or opt not in err:
            fail("config: --%s %r gave %d: %s" % (opt, value, rc, err))
    print("ok - config: a collector id with blanks or empty, and a bad "
          "queue size, exit 64")
    c = Collector(flowdex, catalog, os.path.join(tmp, "q.db"), tmp,
                  extra=["--queue-size", "48M"])
    replay(list(read_pcap(os.path.join(exports,
                                       "softflowd-netflow-v5.pcap"))),
           c.port)
    c.wait_commit()
    c.wait_commit()
    col = next(v for k, v in c.counters().items()
               if k.startswith("collector="))
    size, held, peak = (int(col[k]) for k in ("queue_size", "queue_bytes",
                                               "queue_peak"))
    # never less than asked, nor than the socket buffer granted (16 MiB
    # at most here); the replay went through it and it drained
    if size < 48 << 20 or not 0 < peak <= size or held != 0:
        fail("config: queue_size=%d queue_bytes=%d queue_peak=%d after "
             "--queue-size 48M and a replay" % (size, held, peak))
    if c.stop() != 0:
        fail("config: the collector with --queue-size failed")
    print("ok - config: --queue-size 48M gives a queue of %d bytes, peak "
          "%d, empty once drained" % (size, peak))

    # the queue is mapped once: a changed queue-size is said to need a
    # restart at every reload until the running size is set again
    qconf = os.path.join(tmp, "queue.conf")
    with open(qconf, "w") as f:
        f.write("queue-size = 32M\nlog-level = info\n")
    c = Collector(flowdex, catalog, os.path.join(tmp, "q.db"), tmp,
                  config=qconf)
    with open(qconf, "w") as f:
        f.write("queue-size = 64M\nlog-level = info\n")
    for n in (1, 2, 3):
        if n == 3:
            with open(qconf, "w") as f:
                f.write("queue-size = 32M\nlog-level = info\n")
        c.proc.send_signal(signal.SIGHUP)
        c.wait_for(lambda: c.log_text().count("catalog=unchanged") == n,
                   "reload %d" % n)
    if c.log_text().count("setting=queue-size") != 2:
        fail("config: queue-size warnings after three reloads: %d, not 2"
             % c.log_text().count("setting=queue-size"))
    if c.stop() != 0:
        fail("config: the collector failed after the reloads")
    print("ok - config: a changed queue-size on SIGHUP warns at each "
          "reload, the running size is kept")

    forged = os.path.join(tmp, "forged.fdxc")
    subprocess.run([sys.executable, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "forge-catalog.py"), "forge", catalog,
        forged], check=True, timeout=STEP_TIMEOUT)
    conf = os.path.join(tmp, "hup.conf")
    with open(conf, "w") as f:
        f.write("catalog = %s\nlog-level = info\n" % catalog)
    c = Collector(flowdex, None, store, tmp, config=conf)
    pcap = os.path.join(exports, "softflowd-netflow-v9.pcap")
    dgrams = list(read_pcap(pcap))
    replay(dgrams[:len(dgrams) // 2], c.port)
    c.proc.send_signal(signal.SIGHUP)
    c.wait_for(lambda: "catalog=unchanged" in c.log_text(), "a reload")
    with open(conf, "w") as f:
        f.write("catalog = %s\n" % forged)
    c.proc.send_signal(signal.SIGHUP)
    c.wait_for(lambda: "catalog=changed stream=reset" in c.log_text(),
               "a catalog reset")
    replay(dgrams, c.port)
    c.wait_commit()
    if c.stop() != 0:
        fail("config: the collector failed after the reloads")
    print("ok - config: SIGHUP keeps the engine for the same catalog, "
          "resets it (logged) for a changed one")


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if m is None:
            fail("metrics: bad labels {%s}" % text)
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return tuple(sorted(labels.items()))


def parse_prometheus(text):
    """{name: {labels: value}} of exposition format 0.0.4, checking that
    every sample's family has one HELP and one TYPE line before it and
    that counters end in _total."""
    types, helps, samples = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split(" ", 3)[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            if name in types or kind not in ("counter", "gauge"):
                fail("metrics: bad or repeated TYPE line: " + line)
            if (kind == "counter") != name.endswith("_total"):
                fail("metrics: %s: a counter is what ends in _total" % name)
            types[name] = kind
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            fail("metrics: not a sample line: %r" % line)
        name = m.group(1)
        if name not in types or name not in helps:
            fail("metrics: %s has no HELP or TYPE before it" % name)
        samples.setdefault(name, {})[parse_labels(m.group(2) or "")] = \
            float(m.group(3))
    return samples


def fetch(url, method="GET", data=None):
    """(status, headers, body) of one request, errors included."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def raw_request(port, data):
    """The status line the server answers raw bytes with."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    answer = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    s.close()
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


# The status file's keys and the metrics of the same numbers.
STATUS_METRICS = {
    "collector": [("commits", "flowdex_collect_commits_total"),
                  ("commit_failures",
                   "flowdex_collect_commit_failures_total"),
                  ("hosts_written", "flowdex_collect_hosts_written_total"),
                  ("batch_hosts", "flowdex_collect_batch_hosts"),
                  ("queue_size", "flowdex_queue_size_bytes"),
                  ("queue_peak", "flowdex_queue_peak_bytes")],
    "decoder": [(k, "flowdex_decoder_" + v) for k, v in [
        ("sessions", "sessions"), ("datagrams", "datagrams_total"),
        ("flows", "flows_total"), ("bad_datagrams", "bad_datagrams_total"),
        ("bad_records", "bad_records_total"),
        ("no_template", "no_template_total"),
        ("seq_lost", "sequence_lost_total"),
        ("limit_hits", "limit_hits_total"),
        ("refused", "refused_datagrams_total"),
        ("sessions_evicted", "sessions_evicted_total"),
        ("sessions_expired", "sessions_expired_total")]],
    "stream": [(k, "flowdex_stream_" + v) for k, v in [
        ("flows", "flows_total"), ("open", "open_connections"),
        ("connections", "connections_total"),
        ("downloads", "downloads_total"),
        ("identified", "identified_total"), ("hosts", "hosts"),
        ("servers_known", "servers_known"),
        ("pending", "pending_connections"),
        ("conns_dropped", "conns_dropped_total"),
        ("hosts_dropped", "hosts_dropped_total"),
        ("evidence_dropped", "evidence_dropped_total")]],
    "exporter": [("received", "flowdex_exporter_datagrams_total"),
                 ("records", "flowdex_exporter_records_total"),
                 ("malformed", "flowdex_exporter_malformed_datagrams_total"),
                 ("dropped", "flowdex_exporter_dropped_datagrams_total"),
                 ("seq_lost", "flowdex_exporter_sequence_lost_total"),
                 ("bad_records", "flowdex_exporter_bad_records_total")],
}


def one(samples, name, labels=()):
    if name not in samples or tuple(labels) not in samples[name]:
        fail("metrics: no sample %s%s" % (name, dict(labels)))
    return samples[name][tuple(labels)]


def exporter_labels(key):
    """(("exporter", addr), ("port", port)) of "exporter=ADDR:PORT"."""
    addr, port = key.split("=", 1)[1].rsplit(":", 1)
    return (("exporter", addr.strip("[]")), ("port", port))


def compare_status(rows, samples):
    """Every status counter against its metric; the exporters' sum
    against total=all.  Returns how many numbers were compared."""
    n = 0
    for key, row in rows.items():
        kind = key.split("=", 1)[0]
        if key == "exporter=other" or kind not in STATUS_METRICS:
            continue
        labels = exporter_labels(key) if kind == "exporter" else ()
        for field, metric in STATUS_METRICS[kind]:
            if one(samples, metric, labels) != int(row[field]):
                fail("metrics: %s %s=%s but %s %s" % (key, field,
                     row[field], metric, one(samples, metric, labels)))
            n += 1
    for field, metric in STATUS_METRICS["exporter"]:
        if sum(samples[metric].values()) != int(rows["total=all"][field]):
            fail("metrics: %s does not sum to total=all" % metric)
    col = [r for k, r in rows.items() if k.startswith("collector=")][0]
    last = one(samples, "flowdex_collect_last_commit_timestamp_seconds")
    if round(last * 1000) != int(col["last_commit_ms"]):
        fail("metrics: last commit %s, status %s" % (last,
             col["last_commit_ms"]))
    for key, row in rows.items():
        if key.startswith("listen="):
            lab = (("listener", key.split("=", 1)[1]),)
            for field, metric in (("rcvbuf", "flowdex_listen_rcvbuf_bytes"),
                                  ("datagrams",
                                   "flowdex_listen_datagrams_total"),
                                  ("queue_drops",
                                   "flowdex_listen_queue_drops_total"),
                                  ("kernel_drops",
                                   "flowdex_listen_kernel_drops_total")):
                if one(samples, metric, lab) != int(row[field]):
                    fail("metrics: %s of %s differs" % (field, key))
                n += 1
    return n + 1


def snapshot(c, url):
    """The status file and /metrics between two commits: read again
    while a commit came between them."""
    for _ in range(20):
        before = os.stat(c.status).st_mtime_ns
        rows = c.counters()
        status, headers, body = fetch(url)
        if status != 200:
            fail("metrics: GET /metrics gave %d" % status)
        if os.stat(c.status).st_mtime_ns == before:
            return rows, headers, parse_prometheus(body)
    fail("metrics: no quiet moment between commits")


def test_metrics_paths(port, url):
    status, _, _ = fetch("http://127.0.0.1:%d/nothing" % port)
    if status != 404:
        fail("metrics: /nothing gave %d, not 404" % status)
    status, headers, _ = fetch(url, method="POST", data=b"x=1")
    if status != 405 or "GET" not in headers.get("Allow", ""):
        fail("metrics: POST gave %d, not 405 with Allow" % status)
    status, _, body = fetch(url, method="HEAD")
    if status != 200 or body != "":
        fail("metrics: HEAD gave %d with %d bytes" % (status, len(body)))
    for data, want in [(b"\x00\xff\x16\x03garbage\r\n\r\n", "400"),
                       (b"GET /metrics\r\n\r\n", "400"),
                       (b"GET /metrics HTTP/1.0\n\n", "200"),
                       (b"A" * 4096, "431")]:
        line = raw_request(port, data)
        if line.split(" ")[1:2] != [want]:
            fail("metrics: %r... answered %r, not %s"
                 % (data[:20], line, want))
    print("ok - metrics: 404, 405 (Allow), HEAD, 400 for garbage and "
          "HTTP/0.9, 431 past 4 KiB, HTTP/1.0")


def test_metrics_clients(c, port, url, dgrams):
    """50 idle connections and a slow client, during a replay."""
    burst = []
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        burst.append(s)
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    _, _, before = snapshot(c, url)
    replay(dgrams, c.port)
    random_datagrams(c.port, 1000, random.Random(9100), garbage_head)
    c.wait_commit()
    rows, _, after = snapshot(c, url)
    got = sum(after["flowdex_exporter_datagrams_total"].values()) - \
        sum(before["flowdex_exporter_datagrams_total"].values())
    if got != len(dgrams) + 1000:
        fail("metrics: %d of %d datagrams counted during the burst"
             % (got, len(dgrams) + 1000))
    compare_status(rows, after)
    try:
        left = slow.recv(100)          # the server closes it at 5 s
    except (socket.timeout, ConnectionResetError):
        left = b"timeout"
    if left != b"" or time.time() - t0 > 9:
        fail("metrics: the slow client was not closed (%r)" % left)
    for s in burst + [slow]:
        s.close()
    _, _, final = snapshot(c, url)
    evicted = one(final, "flowdex_metrics_connections_evicted_total")
    timed = one(final, "flowdex_metrics_connections_timed_out_total")
    if evicted < 40 or timed < 1:
        fail("metrics: evicted %d, timed out %d" % (evicted, timed))
    print("ok - metrics: with 50 idle connections and a slow client, "
          "%d datagrams counted, answers kept coming, %d evicted, %d "
          "timed out" % (got, evicted, timed))


def test_metrics(flowdex, catalog, exports, tmp):
    port = free_tcp_port()
    url = "http://127.0.0.1:%d/metrics" % port
    store = os.path.join(tmp, "metrics.db")
    cid = 'edge"1"\\a'
    c = Collector(flowdex, catalog, store, tmp,
                  ["--metrics", "127.0.0.1:%d" % port, "--collector-id",
                   cid])
    replay(list(read_pcap(os.path.join(exports,
                                       "softflowd-netflow-v9.pcap"))),
           c.port)
    c.wait_commit()
    rows, headers, samples = snapshot(c, url)
    if headers.get("Content-Type") != \
            "text/plain; version=0.0.4; charset=utf-8":
        fail("metrics: Content-Type %s" % headers.get("Content-Type"))
    n = compare_status(rows, samples)
    if one(samples, "flowdex_collect_info", (("collector", cid),
                                              ("version", "0.1.0"))) != 1:
        fail("metrics: the collector id did not come back unescaped")
    if sum(samples["flowdex_exporter_records_total"].values()) == 0:
        fail("metrics: no records counted")
    print("ok - metrics: %d numbers as the status file, %d families, the "
          "collector id's quote and backslash escaped" % (n, len(samples)))
    test_metrics_paths(port, url)
    test_metrics_clients(c, port, url, list(read_pcap(
        os.path.join(exports, "pmacctd-ipfix.pcap"))))
    args = [flowdex, "collect", "--listen", "127.0.0.1:%d" % free_port(),
            "-c", catalog, "--store", "sqlite:" + store, "--config",
            os.devnull, "--metrics"]
    rc, err = exit_code(args + ["127.0.0.1:%d" % port])
    if rc != 71 or "event=bind-failed metrics=127.0.0.1:%d" % port \
            not in err:
        fail("metrics: a --metrics port in use gave %d: %s" % (rc, err))
    if c.stop() != 0:
        fail("metrics: the collector failed")
    rc, err = exit_code(args + ["nonsense"])
    if rc != 64:
        fail("metrics: --metrics nonsense gave %d, not 64" % rc)
    print("ok - metrics: a --metrics port in use exits 71, a bad one 64")


# What SQLite or the system says of a full disk.
FULL_RE = r"disk is full|No space left on device"


def fill(directory, name):
    """Writes a file until the file system is full."""
    with open(os.path.join(directory, name), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def store_hosts(flowdex, store):
    return normalise(run_json([flowdex, "hosts", "-q", "--store",
                               "sqlite:" + store, "--json"]))


def fulldisk_collect(flowdex, catalog, pcap, mnt, tmp):
    """Full while a collector runs; then room again."""
    store = os.path.join(mnt, "full.db")
    c = Collector(flowdex, catalog, store, tmp)
    fill(mnt, "filler")
    replay(list(read_pcap(pcap)), c.port)
    c.wait_for(lambda: "event=commit-failed" in c.log_text(),
               "a failed commit")
    c.wait_commit()
    c.wait_commit()
    lines = [l for l in c.log_text().splitlines()
             if "event=commit-failed" in l]
    col = [r for k, r in c.counters().items()
           if k.startswith("collector=")][0]
    print("# " + lines[0])
    if "store=sqlite:" + store not in lines[0] or \
            not re.search(FULL_RE, lines[0]):
        fail("fulldisk: the error does not name the store and the cause")
    if int(col["commit_failures"]) < 2 or int(col["batch_hosts"]) == 0 \
            or len(lines) != int(col["commit_failures"]):
        fail("fulldisk: %d lines for %s failures, batch %s" % (
            len(lines), col["commit_failures"], col["batch_hosts"]))
    if not integrity(store):
        fail("fulldisk: integrity_check failed on the full disk")
    print("ok - fulldisk: %s failed commits, one line each, %s hosts kept, "
          "integrity_check ok, still running" % (col["commit_failures"],
                                                  col["batch_hosts"]))
    subprocess.run(["mount", "-o", "remount,size=8m", mnt], check=True)
    c.wait_for(lambda: int([r for k, r in c.counters().items()
                            if k.startswith("collector=")][0]
                           ["batch_hosts"]) == 0, "a commit with room")
    c.wait_for(lambda: "event=commit-recovered" in c.log_text(),
               "the recovery's log line")
    if c.stop() != 0:
        fail("fulldisk: the collector failed once there was room")
    if not integrity(store):
        fail("fulldisk: integrity_check failed after the commit")
    compare(flowdex, catalog, pcap, store, "fulldisk, then room")


def fulldisk_scan(flowdex, catalog, exports, mnt):
    """flowdex scan --store into an existing and a new store, full."""
    store = os.path.join(mnt, "scan.db")
    rc, err = exit_code([flowdex, "scan", "-q", "-c", catalog, "--store",
                         "sqlite:" + store, os.path.join(
                             exports, "softflowd-netflow-v9.pcap")])
    if rc != 0:
        fail("fulldisk: scan --store with room exited %d: %s" % (rc, err))
    want = store_hosts(flowdex, store)
    fill(mnt, "filler2")
    for path in (store, os.path.join(mnt, "new.db")):
        rc, err = exit_code([flowdex, "scan", "-q", "-c", catalog,
                             "--store", "sqlite:" + path, os.path.join(
                                 exports, "pmacctd-ipfix.pcap")])
        print("# " + err.strip().splitlines()[-1] if err.strip() else "#")
        if rc != 74 or "sqlite:" + path not in err or \
                not re.search(FULL_RE, err):
            fail("fulldisk: scan --store %s exited %d: %s" % (path, rc, err))
    os.unlink(os.path.join(mnt, "filler2"))
    for path in (store, os.path.join(mnt, "new.db")):
        if os.path.exists(path) and not integrity(path):
            fail("fulldisk: scan left %s corrupt" % path)
    if store_hosts(flowdex, store) != want:
        fail("fulldisk: the failed scan changed the store")
    print("ok - fulldisk: scan --store on a full disk exits 74 naming the "
          "store; the existing store is intact, a new one not corrupt")


def test_fulldisk(flowdex, catalog, exports, tmp):
    if os.geteuid() != 0:
        print("# not root: no tmpfs to fill")
        sys.exit(77)
    mnt = tempfile.mkdtemp(prefix="flowdex-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs",
                        mnt], stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print("# cannot mount a tmpfs: " + r.stderr.strip())
        os.rmdir(mnt)
        sys.exit(77)
    pcap = os.path.join(exports, "softflowd-netflow-v9.pcap")
    try:
        fulldisk_collect(flowdex, catalog, pcap, mnt, tmp)
        fulldisk_scan(flowdex, catalog, exports, mnt)
    finally:
        for p in RUNNING:
            if p.poll() is None:
                p.kill()
                p.wait()
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)


# ---------------------------------------------------------------------
# Two collectors sharing one store

SITES = 8           # copies of the sample's hosts, one address block each
SITE_SHIFT_S = 600  # each copy ten minutes after the one before
V5_HDR = struct.Struct(">HHIIIIBBH")
V5_REC = struct.Struct(">4s4s4sHHIIIIHHBBBBHHBBH")


def iso_ms(text):
    """Milliseconds since the epoch of flowdex's 2026-12-03T18:06:40.776Z."""
    t = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    frac = text[20:-1] if len(text) > 20 else "0"
    return calendar.timegm(t) * 1000 + int(frac.ljust(3, "0")[:3])


def sample_records(flowdex, exports):
    """The sample's flow records (`flowdex flows --csv` of sample/flows)."""
    flows = os.path.join(os.path.dirname(exports), "flows")
    r = subprocess.run([flowdex, "flows", "--csv", flows],
                       stdout=subprocess.PIPE, text=True,
                       timeout=STEP_TIMEOUT)
    if r.returncode != 0:
        fail("flowdex flows exited %d" % r.returncode)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    if not rows:
        fail("no sample flow records")
    return rows


def site_connections(rows, shift_s=SITE_SHIFT_S):
    """The sample's connections copied to SITES sites: the client
    10.1.0.H of site s is 10.(10+s).0.H, its times shifted by s *
    shift_s.  Yields (site, client, index of the connection within
    its host, records); a record is (src, dst, sport, dport, octets,
    packets, flags, first_ms, last_ms)."""
    conns = {}
    for r in rows:
        sp, dp = int(r["sport"]), int(r["dport"])
        to_client = sp < dp
        key = (r["dst"], dp, r["src"], sp) if to_client else \
            (r["src"], sp, r["dst"], dp)
        conns.setdefault(key, []).append(r)
    per_host = {}
    for key in sorted(conns, key=lambda k: min(iso_ms(r["first"])
                                               for r in conns[k])):
        per_host.setdefault(key[0], []).append(conns[key])
    for s in range(SITES):
        for client, cl in sorted(per_host.items()):
            o = client.split(".")
            new = "10.%d.0.%s" % (10 + s, o[3])
            for i, recs in enumerate(cl):
                out = []
                for r in recs:
                    src = new if r["src"] == client else r["src"]
                    dst = new if r["dst"] == client else r["dst"]
                    out.append((src, dst, int(r["sport"]), int(r["dport"]),
                                int(r["octets"]), int(r["packets"]),
                                int(r["tcp_flags"]),
                                iso_ms(r["first"]) + s * shift_s * 1000,
                                iso_ms(r["last"]) + s * shift_s * 1000))
                yield s, new, i, out


def v5_datagrams(records):
    """NetFlow v5 datagrams of records in order of their end, 30 each,
    as sent at the end of their last record; returns (time, payload)."""
    records = sorted(records, key=lambda r: r[8])
    boot_ms = records[0][7] - 86400 * 1000
    out, seq = [], 0
    for i in range(0, len(records), 30):
        chunk = records[i:i + 30]
        now = chunk[-1][8] + 1000
        body = b"".join(V5_REC.pack(
            socket.inet_aton(r[0]), socket.inet_aton(r[1]), bytes(4), 0, 0,
            r[5], r[4], r[7] - boot_ms, r[8] - boot_ms, r[2], r[3], 0,
            r[6], 6, 0, 0, 0, 0, 0, 0) for r in chunk)
        hdr = V5_HDR.pack(5, len(chunk), now - boot_ms, now // 1000,
                          (now % 1000) * 1000000, seq, 0, 0, 0)
        seq += len(chunk)
        out.append((now / 1000.0, hdr + body))
    return out


def split_exports(flowdex, exports, how):
    """The sites' records as exporters' v5 datagrams: two by site (half
    of the sites behind each), two connection by connection (every host
    seen half by each), or three connection by connection ("thirds")."""
    n = 3 if how == "thirds" else 2
    recs = [[] for _ in range(n)]
    for site, _, i, conn in site_connections(sample_records(flowdex,
                                                            exports)):
        side = (site >= SITES // 2) if how == "sites" else (i % n)
        recs[side].extend(conn)
    return [v5_datagrams(r) for r in recs]


def send_merged(parts, pace_s=0.001):
    """Sends (datagrams, source address, port) interleaved in time order,
    one socket per source address."""
    events = sorted((t, src, port, p) for dgs, src, port in parts
                    for t, p in dgs)
    socks = {}
    for _, src, port, payload in events:
        if src not in socks:
            socks[src] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks[src].bind((src, 0))
        socks[src].sendto(payload, ("127.0.0.1", port))
        time.sleep(pace_s)
    for s in socks.values():
        s.close()


def shared_stores(tmp, how):
    """The stores of the one-collector and two-collector runs: with
    FLOWDEX_TEST_SHARED, a libpq URI with "{}" where the database name
    goes, PostgreSQL databases flowdex_one_HOW and flowdex_two_HOW (made
    empty by the caller); otherwise two SQLite files."""
    uri = os.environ.get("FLOWDEX_TEST_SHARED", "")
    if "{}" in uri:
        return [uri.replace("{}", "flowdex_%s_%s" % (w, how))
                for w in ("one", "two")]
    return [os.path.join(tmp, "%s-%s.db" % (w, how)) for w in ("one", "two")]


def hosts_of(flowdex, store):
    """normalise() with the OS confidence to three places: merged scores
    must give the very claim one collector makes, not a near one."""
    doc = run_json([flowdex, "hosts", "-q", "--store", store_uri(store),
                    "--json"])
    out = normalise(doc)
    for h in doc["hosts"]:
        conf = (h.get("os") or {}).get("confidence")
        os_claim, pkgs = out[h["address"]]
        out[h["address"]] = (os_claim + (None if conf is None
                                         else round(conf, 3),), pkgs)
    return out


def test_shared(flowdex, catalog, exports, tmp):
    for how in ("sites", "connections", "thirds"):
        one, two = shared_stores(tmp, how)
        parts = split_exports(flowdex, exports, how)
        srcs = ["127.0.0.%d" % (k + 1) for k in range(len(parts))]
        c = Collector(flowdex, catalog, one, tmp)
        send_merged([(p, s, c.port) for p, s in zip(parts, srcs)])
        c.wait_commit()
        if c.stop() != 0:
            c.dump()
            fail("%s: the single collector failed" % how)
        cols = [Collector(flowdex, catalog, two, tmp,
                          extra=["--collector-id", "site-%d" % k])
                for k in range(len(parts))]
        send_merged([(p, s, x.port) for p, s, x in zip(parts, srcs, cols)])
        for x in cols:
            x.wait_commit()
        for x in cols:
            if x.stop() != 0:
                x.dump()
                fail("%s: a shared collector failed" % how)
        want, got = hosts_of(flowdex, one), hosts_of(flowdex, two)
        known = sum(1 for v in want.values() if v[0][0] is not None)
        if known < SITES * 5:
            fail("%s: only %d hosts with an OS claim from one collector"
                 % (how, known))
        note = ""
        if how == "thirds":
            # a third of a host's evidence may leave a collector without
            # the architecture, and then without the claims that need it
            # (keep-alive pairs): OS claims must agree, packages may only
            # be missing, and few
            want, got, note = thirds_check(want, got)
        if want != got:
            for addr in sorted(set(want) | set(got)):
                if want.get(addr) != got.get(addr):
                    print("# %s: one %s\n#   two %s"
                          % (addr, want.get(addr), got.get(addr)))
            fail("%s: %d collectors' store differs from one's"
                 % (how, len(parts)))
        print("ok - split by %s: %d hosts (%d with an OS), %d packages, "
              "the same from %d collectors as from one%s"
              % (how, len(want), known,
                 sum(len(v[1]) for v in want.values()), len(parts), note))
    shared_restart(flowdex, catalog, exports, tmp)


def thirds_check(want, got):
    """Fails unless got has want's hosts and OS claims and no package
    want lacks, missing at most 2 % of want's; returns the two with the
    missing packages taken out of want, so that they compare equal, and
    a note of how many."""
    if set(want) != set(got) or any(want[a][0] != got[a][0] for a in want):
        return want, got, ""
    missing, total, trimmed = 0, 0, {}
    for a, (os_claim, pkgs) in want.items():
        extra = set(got[a][1]) - set(pkgs)
        if extra:
            fail("thirds: %s gained %s" % (a, sorted(extra)))
        kept = [p for p in pkgs if p in set(got[a][1])]
        missing += len(pkgs) - len(kept)
        total += len(pkgs)
        trimmed[a] = (os_claim, kept)
    if missing > total // 50:
        fail("thirds: %d of %d package claims missing" % (missing, total))
    return trimmed, got, (", missing %d of its %d package claims"
                          % (missing, total))


def shared_restart(flowdex, catalog, exports, tmp):
    """A collector restarted between the first and the second half of
    every host's connections: its scores and claims add up across the
    restart, so every host's OS claim and packages are those a collector
    without the restart makes."""
    per = {}
    for _, client, _, conn in site_connections(sample_records(flowdex,
                                                              exports)):
        per.setdefault(client, []).append(conn)
    halves = ([], [])
    for conns in per.values():
        for j, conn in enumerate(conns):
            halves[j >= len(conns) // 2].extend(conn)
    parts = [v5_datagrams(h) for h in halves]
    one, two = shared_stores(tmp, "restart")
    c = Collector(flowdex, catalog, one, tmp, extra=["--collector-id", "a"])
    send_merged([(parts[0], "127.0.0.1", c.port)])
    send_merged([(parts[1], "127.0.0.1", c.port)])
    c.wait_commit()
    c.stop()
    for part in parts:
        c = Collector(flowdex, catalog, two, tmp,
                      extra=["--collector-id", "a"])
        send_merged([(part, "127.0.0.1", c.port)])
        c.wait_commit()
        if c.stop() != 0:
            c.dump()
            fail("restart: the collector failed")
    want, got = hosts_of(flowdex, one), hosts_of(flowdex, two)
    differ = [a for a in sorted(set(want) | set(got))
              if want.get(a) != got.get(a)]
    for a in differ[:5]:
        print("# %s: without restart %s\n#   restarted %s"
              % (a, want.get(a), got.get(a)))
    if differ or not want:
        fail("restart: %d of %d hosts differ" % (len(differ), len(want)))
    print("ok - restart: %d hosts, every OS claim (to the confidence) and "
          "package as without the restart" % len(want))



def test_retention(flowdex, catalog, exports, tmp):
    """The sites two days apart, each before the one before it (a clock
    far ahead of the collector's is not taken), a collector keeping 5
    days of evidence: at its last commit the older evidence goes, the
    claims stay."""
    recs = []
    for _, _, _, conn in site_connections(sample_records(flowdex, exports),
                                          shift_s=-2 * 86400):
        recs.extend(conn)
    newest = max(r[8] for r in recs)
    store = os.path.join(tmp, "retention.db")
    c = Collector(flowdex, catalog, store, tmp,
                  extra=["--retention-days", "5"])
    send_merged([(v5_datagrams(recs), "127.0.0.1", c.port)])
    c.wait_commit()
    if c.stop() != 0:
        c.dump()
        fail("retention: the collector failed")
    db = sqlite3.connect(store)
    oldest = db.execute("SELECT min(last_ms) FROM evidence").fetchone()[0]
    orphans = db.execute("SELECT count(*) FROM packages WHERE evidence_id"
                         " IS NULL").fetchone()[0]
    db.close()
    if oldest is None or oldest < newest - 5 * 86400 * 1000:
        fail("retention: evidence older than 5 days is left (%s)" % oldest)
    if "event=pruned" not in c.log_text():
        fail("retention: no pruning logged")
    doc = run_json([flowdex, "hosts", "-q", "--store", "sqlite:" + store,
                    "--json"])
    old = [h for h in doc["hosts"] if h["address"].startswith("10.17.")]
    if not any(h.get("os") for h in old) or orphans == 0:
        fail("retention: the oldest site's claims went with its evidence")
    print("ok - retention: evidence of the last 5 days kept, %d package "
          "claims without evidence, %d hosts" % (orphans, len(doc["hosts"])))


# The live exporters: (name, program, version).  softflowd's -v 10 is
# IPFIX; pmacctd's nfprobe plugin takes 9 or 10.
LIVE_EXPORTERS = [("softflowd -v 5", "softflowd", "5"),
                  ("softflowd -v 9", "softflowd", "9"),
                  ("softflowd -v 10", "softflowd", "10"),
                  ("pmacctd nfprobe v9", "pmacctd", "9"),
                  ("pmacctd nfprobe v10", "pmacctd", "10")]
# softflowd -r reads the capture and exits at its end after expiring
# every flow; pmacctd with pcap_savefile_wait false exits at the end too
# (after a 2 s pause of its own).  Either is killed past this bound.
EXPORTER_TIMEOUT = 20
# The relay takes the exporter's sending as done once it exited and
# nothing came for this long.
QUIET_S = 1.0


class Relay:
    """A UDP relay on 127.0.0.1 between an exporter and a collector.

    Every datagram received is kept with its time and source address
    and port, and forwarded at once to the collector from a socket of
    the relay's own for that source, so that each exporter session stays
    one session at the collector.  Loopback UDP can drop under load: what
    the relay received is what was sent, and its recording (pcap()) is
    what flowdex scan is compared with, which leaves the collector alone
    under test."""

    def __init__(self, collector_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", collector_port)
        self.datagrams = []      # (time, src, sport, payload)
        self.out = {}            # (src, sport) -> forwarding socket
        self.via = {}            # (src, sport) -> forwarding port
        self.forwarded = {}      # forwarding port -> datagrams sent
        self.last = time.time()
        self.done = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.done.is_set():
                r, _, _ = select.select([self.sock], [], [], 0.05)
                if r:
                    self._relay_one()
        except OSError as e:
            self.error = e

    def _relay_one(self):
        payload, (src, sport) = self.sock.recvfrom(65535)
        self.last = time.time()
        self.datagrams.append((self.last, src, sport, payload))
        out = self.out.get((src, sport))
        if out is None:
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.bind(("127.0.0.1", 0))
            self.out[(src, sport)] = out
            self.via[(src, sport)] = out.getsockname()[1]
        out.sendto(payload, self.target)
        port = self.via[(src, sport)]
        self.forwarded[port] = self.forwarded.get(port, 0) + 1

    def wait_quiet(self):
        """Returns once nothing has come for QUIET_S seconds."""
        end = time.time() + STEP_TIMEOUT
        while time.time() - self.last < QUIET_S:
            if time.time() > end:
                fail("relay: the exporter did not stop sending")
            time.sleep(0.1)

    def stop(self):
        self.done.set()
        self.thread.join(STEP_TIMEOUT)
        for s in self.out.values():
            s.close()
        self.sock.close()
        if self.error is not None:
            fail("relay: %s" % self.error)

    def write_pcap(self, path):
        """The received datagrams as a pcap of raw IPv4 (link type 101),
        each from its source address and port to the relay's port."""
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0,
                                65535, 101))
            for t, src, sport, payload in self.datagrams:
                udp = struct.pack(">HHHH", sport, self.port,
                                  8 + len(payload), 0) + payload
                ip = ipv4_header(src, "127.0.0.1", len(udp)) + udp
                f.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6),
                                    len(ip), len(ip)) + ip)


def ipv4_header(src, dst, payload_len):
    """A 20-byte IPv4 header of a UDP packet, with its checksum."""
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0,
                      64, 17, 0, socket.inet_aton(src),
                      socket.inet_aton(dst))
    words = sum(struct.unpack(">10H", hdr))
    while words >> 16:
        words = (words & 0xffff) + (words >> 16)
    return hdr[:10] + struct.pack(">H", ~words & 0xffff) + hdr[12:]


def find_program(name):
    """The program's path, looking in the sbin directories too (they are
    not in a user's PATH on Debian); None when absent."""
    path = os.environ.get("PATH", os.defpath) + ":/usr/local/sbin:/usr/sbin"
    return shutil.which(name, path=path)


def run_exporter(program, version, traffic, port, tmp, log):
    """Runs one exporter over the capture, sending to 127.0.0.1:port,
    bounded by EXPORTER_TIMEOUT (its whole process group is killed past
    it, as pmacctd forks its plugin).  Returns the exit code."""
    if os.path.basename(program) == "softflowd":
        args = [program, "-r", traffic, "-n", "127.0.0.1:%d" % port,
                "-v", version]
    else:
        # As ../shared/tools/make-corpus.py meter() makes the corpus.
        conf = os.path.join(tmp, "pmacctd-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("pcap_savefile: %s\nplugins: nfprobe\n"
                    "nfprobe_receiver: 127.0.0.1:%d\nnfprobe_version: %s\n"
                    "aggregate: src_host, dst_host, src_port, dst_port, "
                    "proto, tos\npcap_savefile_wait: false\n"
                    % (traffic, port, version))
        args = [program, "-f", conf]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        rc = p.wait(EXPORTER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        print("# %s timed out after %d s (killed)" % (program,
                                                     EXPORTER_TIMEOUT))
        return None
    # pmacctd's plugin may outlive the core for a moment: give it its
    # time to send, then end whatever of the group is left.
    end = time.time() + 5
    try:
        while time.time() < end:
            os.killpg(p.pid, 0)
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return rc


def collector_counts(c, what="received"):
    """A counter per exporter port (received, records, ...), from the
    collector's status file."""
    got = {}
    for key, row in c.counters().items():
        if key.startswith("exporter=127.0.0.1:"):
            got[int(key.rsplit(":", 1)[1])] = int(row[what])
    return got


def records_per_port(flowdex, pcap):
    """Flow records flowdex flows decodes from a capture, per source
    port."""
    r = subprocess.run([flowdex, "flows", "-q", "--json", pcap],
                       stdout=subprocess.PIPE, timeout=STEP_TIMEOUT,
                       text=True)
    if r.returncode != 0:
        fail("flowdex flows %s exited %d" % (pcap, r.returncode))
    got = {}
    for line in r.stdout.splitlines():
        port = json.loads(line)["exporter_port"]
        got[port] = got.get(port, 0) + 1
    return got


def test_live(flowdex, catalog, exports, tmp):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    traffic = os.environ.get("FLOWDEX_LIVE_TRAFFIC") or os.path.join(
        root, "..", "shared", "corpus", "debian-downloads", "traffic.pcap")
    catalog = os.environ.get("FLOWDEX_LIVE_CATALOG") or catalog
    programs = {p: find_program(p) for p in ("softflowd", "pmacctd")}
    # CI sets FLOWDEX_LIVE_REQUIRED=1: there a skip would hide the test.
    skip = 1 if os.environ.get("FLOWDEX_LIVE_REQUIRED") == "1" else 77
    if not os.path.isfile(traffic):
        print("# live: no traffic capture %s (set FLOWDEX_LIVE_TRAFFIC); "
              "%s" % (traffic, "required" if skip == 1 else "skipped"))
        sys.exit(skip)
    missing = [p for p, path in programs.items() if path is None]
    if missing:
        print("# live: %s not installed (apt-get install softflowd "
              "pmacct); %s" % (" and ".join(missing),
                               "required" if skip == 1 else "skipped"))
        sys.exit(skip)
    print("# live: traffic %s, catalog %s" % (traffic, catalog))
    for name, program, version in LIVE_EXPORTERS:
        tag = name.replace(" ", "_").replace("-", "")
        store = os.path.join(tmp, "live-%s.db" % tag)
        c = Collector(flowdex, catalog, store, tmp)
        relay = Relay(c.port)
        with open(os.path.join(tmp, "exporter-%s.log" % tag), "w+") as log:
            rc = run_exporter(programs[program], version, traffic,
                              relay.port, tmp, log)
            if rc not in (0, None):
                # pmacctd's core now and then exits 1 as its plugin
                # shuts down, after the export: what the relay got is
                # compared all the same, and nothing sent still fails
                log.seek(0)
                print("# %s exited %d; its log ends:" % (name, rc))
                for line in log.read()[-600:].splitlines():
                    print("#   " + line)
        relay.wait_quiet()
        relay.stop()
        sent = len(relay.datagrams)
        if sent == 0:
            fail("%s: the relay received nothing" % name)
        recording = os.path.join(tmp, "live-%s.pcap" % tag)
        relay.write_pcap(recording)

        # Every datagram the relay forwarded is counted by the collector
        # under the relay's sending port before it is stopped.
        end = time.time() + STEP_TIMEOUT
        while collector_counts(c) != relay.forwarded:
            if time.time() > end or c.proc.poll() is not None:
                c.dump()
                fail("%s: the collector counted %s datagrams per port, "
                     "the relay forwarded %s"
                     % (name, collector_counts(c), relay.forwarded))
            time.sleep(0.1)
        # ... and decoded into as many records as flowdex flows reads
        # from the recording (its ports are the exporter's own).
        decoded = collector_counts(c, "records")
        flows = records_per_port(flowdex, recording)
        mapped = {relay.via[("127.0.0.1", p)]: n for p, n in flows.items()}
        if decoded != mapped:
            fail("%s: the collector decoded %s records per port, "
                 "flowdex flows %s" % (name, decoded, mapped))
        rc = c.stop()
        if rc != 0:
            c.dump()
            fail("%s: collector exited %d on SIGTERM" % (name, rc))
        want = compare(flowdex, catalog, recording, store, name)
        claims = sum(1 for os_claim, _ in want.values() if os_claim[0])
        pkgs = sum(len(p) for _, p in want.values())
        if claims == 0:
            fail("%s: no OS claim at all" % name)
        print("ok - live %s: %d datagrams relayed, %d records, counted "
              "alike by the collector; %d hosts, %d OS claims, %d "
              "packages, equal to flowdex scan"
              % (name, sent, sum(decoded.values()), len(want), claims,
                 pkgs))


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    flowdex, catalog, exports, test = sys.argv[1:]
    tests = {"e2e": test_e2e, "allow": test_allow, "flood": test_flood,
             "kill": test_kill, "config": test_config,
             "metrics": test_metrics, "fulldisk": test_fulldisk,
             "shared": test_shared, "retention": test_retention,
             "live": test_live}
    with tempfile.TemporaryDirectory() as tmp:
        signal.signal(signal.SIGALRM, lambda *a: fail("test timed out"))
        signal.alarm(240)
        tests[test](flowdex, catalog, exports, tmp)


if __name__ == "__main__":
    main()
