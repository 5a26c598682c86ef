#!/usr/bin/env python3
"""Send generated NetFlow v5 export datagrams to a collector on 127.0.0.1.

Usage: bench/gen-v5.py --port PORT [--flows N] [--seed S] [--rate DGRAMS/S]
                       [--mirror-share F] [--templates CSV]

Sends exactly N flow records (default 3,000,000), 30 per datagram, to
127.0.0.1:PORT only, at most RATE datagrams per second, then prints the
number of records and datagrams sent.  The same seed gives the same
records.

The mix, one hour of simulated traffic of an office network:
  - background connections between 20,000 client addresses in 10.0.0.0/10
    and 50,000 public servers (popularity skewed): HTTPS, HTTP, QUIC, DNS,
    NTP, SSH and high ports, both directions as two records, byte counts
    from skewed distributions, some SYN-only probes (one record);
  - a share (--mirror-share, default 0.15 of the records) of TCP
    connections of 3,000 of those clients to four mirror servers, replaying
    real downloads: each connection of --templates (the CSV of
    `flowdex flows --csv sample/flows`: real Debian downloads) is replayed
    with its byte and packet counts, flags and timing, in both directions.
"""
import argparse, csv, datetime, random, socket, struct, sys, time

HDR = struct.Struct("!HHIIIIBBH")              # 24 bytes
REC = struct.Struct("!IIIHHIIIIHHBBBBHHBBH")   # 48 bytes
PER_DGRAM = 30
MIRRORS = ("203.0.113.80", "203.0.113.81", "198.51.100.20", "192.0.2.10")
SPAN_MS = 3600 * 1000
BASE = datetime.datetime(2026, 12, 3, 17, 0, tzinfo=datetime.timezone.utc)
BOOT_MS = int(BASE.timestamp() * 1000) - 86400 * 1000
U32 = 0xFFFFFFFF
# (proto, server port or 0 for a random high port, weight)
SERVICES = ((6, 443, 45), (6, 80, 10), (17, 443, 10), (17, 53, 15),
            (17, 123, 5), (6, 22, 3), (6, 0, 7), (17, 0, 5))


def ip4(s):
    return struct.unpack("!I", socket.inet_aton(s))[0]


def load_templates(path):
    """Connections of a flowdex flows CSV as lists of relative records."""
    conns = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["proto"] != "6":
                continue
            sp, dp = int(r["sport"]), int(r["dport"])
            to_client = sp < dp
            key = (r["dst"], dp, r["src"], sp) if to_client else \
                  (r["src"], sp, r["dst"], dp)
            t0 = datetime.datetime.fromisoformat(r["first"].replace("Z", "+00:00"))
            t1 = datetime.datetime.fromisoformat(r["last"].replace("Z", "+00:00"))
            conns.setdefault(key, []).append(
                (to_client, int(r["octets"]), int(r["packets"]),
                 int(r["tcp_flags"]), t0.timestamp(), t1.timestamp()))
    out = []
    for (cli, cport, srv, sport), recs in sorted(conns.items()):
        start = min(x[4] for x in recs)
        out.append((sport, [(tc, o, p, fl, int((a - start) * 1000),
                             int((b - start) * 1000))
                            for tc, o, p, fl, a, b in recs]))
    return out


class Gen:
    def __init__(self, seed, templates, mirror_share):
        self.r = random.Random(seed)
        r = self.r
        self.clients = [(10 << 24) | r.getrandbits(22) for _ in range(20000)]
        self.servers = []
        while len(self.servers) < 50000:
            a = r.getrandbits(32)
            if (a >> 24) not in (0, 10, 127) and (a >> 24) < 224:
                self.servers.append(a)
        self.mclients = self.clients[:3000]
        self.mirrors = [ip4(m) for m in MIRRORS]
        self.templates = templates
        self.mirror_share = mirror_share if templates else 0.0
        self.svc = [s for s in SERVICES for _ in range(s[2])]
        self.nextport = {}

    def cport(self, client):
        p = self.nextport.get(client, self.r.randrange(28000))
        self.nextport[client] = p + 1
        return 32768 + p % 28000

    def background(self, now):
        r = self.r
        cli = r.choice(self.clients)
        srv = self.servers[int(len(self.servers) * r.random() ** 3)]
        proto, port, _ = r.choice(self.svc)
        port = port or r.randrange(1024, 65535)
        cp = self.cport(cli)
        end = now - r.randrange(2000)
        if proto == 17 and port in (53, 123):
            q, a = r.randrange(60, 90), r.randrange(76, 520)
            dur = r.randrange(50)
            return [(cli, srv, cp, port, 17, 0, 1, q, end - dur, end),
                    (srv, cli, port, cp, 17, 0, 1, a, end - dur, end)]
        dur = int(r.expovariate(1 / 8000.0))
        if proto == 6 and r.random() < 0.03:
            return [(cli, srv, cp, port, 6, 0x02, 1, 60, end, end)]
        up = 1 + int(r.paretovariate(1.2) * 4)
        down = max(1, int(up * r.uniform(0.5, 4.0) *
                          (r.paretovariate(1.1) if r.random() < 0.3 else 1)))
        flags = 0x1b if proto == 6 and r.random() < 0.9 else \
                (0x18 if proto == 6 else 0)
        return [(cli, srv, cp, port, proto, flags, up,
                 min(U32, up * r.randrange(52, 400)), end - dur, end),
                (srv, cli, port, cp, proto, flags, down,
                 min(U32, down * r.randrange(100, 1461)), end - dur, end)]

    def mirror(self, now):
        r = self.r
        cli = r.choice(self.mclients)
        srv = r.choice(self.mirrors)
        sport, recs = r.choice(self.templates)
        cp = self.cport(cli)
        length = max(x[5] for x in recs)
        start = now - length - r.randrange(2000)
        out = []
        for tc, o, p, fl, a, b in recs:
            if tc:
                out.append((srv, cli, sport, cp, 6, fl, p, o, start + a, start + b))
            else:
                out.append((cli, srv, cp, sport, 6, fl, p, o, start + a, start + b))
        return out

    def records(self, n):
        ndg = (n + PER_DGRAM - 1) // PER_DGRAM
        sent = 0
        while sent < n:
            now = BOOT_MS + 86400 * 1000 + SPAN_MS * sent // n
            if self.r.random() < self.mirror_share:
                conn = self.mirror(now)
            else:
                conn = self.background(now)
            for rec in conn[:n - sent]:
                yield now, rec
            sent += len(conn)


def datagram(recs, seq, now):
    up = now - BOOT_MS
    buf = bytearray(HDR.size + REC.size * len(recs))
    HDR.pack_into(buf, 0, 5, len(recs), up, now // 1000,
                  (now % 1000) * 1000000, seq, 0, 0, 0)
    off = HDR.size
    for src, dst, sp, dp, proto, fl, pk, oc, first, last in recs:
        REC.pack_into(buf, off, src, dst, 0, 1, 2, pk, oc,
                      max(0, first - BOOT_MS), max(0, last - BOOT_MS),
                      sp, dp, 0, fl, proto, 0, 0, 0, 24, 24, 0)
        off += REC.size
    return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--flows", type=int, default=3000000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=5000.0,
                    help="datagrams per second (default 5000)")
    ap.add_argument("--mirror-share", type=float, default=0.15)
    ap.add_argument("--templates", help="flowdex flows --csv of downloads")
    a = ap.parse_args()
    tpl = load_templates(a.templates) if a.templates else []
    g = Gen(a.seed, tpl, a.mirror_share)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = ("127.0.0.1", a.port)         # loopback only, by design
    t0 = time.monotonic()
    seq = ndg = nrec = 0
    batch, bnow = [], 0
    for now, rec in g.records(a.flows):
        batch.append(rec)
        bnow = now
        if len(batch) < PER_DGRAM:
            continue
        sock.sendto(datagram(batch, seq, bnow), dest)
        seq, ndg, nrec, batch = seq + len(batch), ndg + 1, nrec + len(batch), []
        ahead = ndg / a.rate - (time.monotonic() - t0)
        if ahead > 0.005:
            time.sleep(ahead)
    if batch:
        sock.sendto(datagram(batch, seq, bnow), dest)
        ndg, nrec = ndg + 1, nrec + len(batch)
    print(f"sent {nrec} records in {ndg} datagrams "
          f"in {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
