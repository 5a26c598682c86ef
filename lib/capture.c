/*
 * Capture reader: NetFlow v5/v9 and IPFIX export datagrams from a pcap or
 * pcapng file (libpcap reads both).
 *
 * Each frame is unwrapped down to its UDP payload: Ethernet (802.1Q and
 * QinQ tags), Linux cooked (SLL, SLL2), raw IP and BSD loopback link
 * layers; IPv4 and IPv6; UDP only, IP fragments skipped.  A payload whose
 * header is that of a NetFlow v5, v9 or IPFIX datagram of its length (not
 * just a first 16-bit word of 5, 9 or 10: DNS transaction ids are that too)
 * is handed to one fdx_nf_decoder per file, received at the frame's
 * capture time; everything else is counted as a skipped frame, and so are
 * export datagrams cut by the capture's snap length (counted apart).
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "flowdex/flow.h"
#include "internal.h"

#define CAP_MAX_VLAN_TAGS 4

/* State of one file being read. */
typedef struct cap_ctx {
    pcap_t *p;
    const char *path;
    int dlt;
    fdx_nf_decoder *dec;
    fdx_flow_fn fn;
    void *ud;
    int stop;         /* fn's non-zero return value */
    uint64_t packets; /* frames read */
    uint64_t skipped; /* frames that were not export datagrams */
    uint64_t exports; /* frames handed to the decoder */
    uint64_t other_versions;  /* frames of NetFlow 1, 6, 7 or 8 */
    uint64_t first_other;     /* frame number of the first of those */
    unsigned first_version;   /* and its version */
    uint64_t cut;             /* export datagrams cut by the snap length */
    uint64_t first_cut;       /* frame number of the first of those */
    uint32_t snaplen;
} cap_ctx;

/*
 * A frame's UDP payload and where it came from: len bytes by the UDP
 * header, of which avail were captured (fewer only in a frame cut by the
 * snap length).
 */
typedef struct cap_dgram {
    fdx_addr src;
    uint16_t sport;
    const uint8_t *data;
    size_t len, avail;
} cap_dgram;

/*
 * Finds the network-layer header of a frame.  Returns its offset and sets
 * *ethertype (0x0800 or 0x86DD, or 0 when the link layer does not say and
 * the IP version nibble must), or returns -1 for frames to skip.
 */
static long cap_ether(const uint8_t *p, size_t len, unsigned *ethertype)
{
    size_t off = 12;
    unsigned type;

    for (int tags = 0;; tags++) {
        if (len < off + 2)
            return -1;
        type = fdx__be16(p + off);
        if (type != 0x8100 && type != 0x88A8 && type != 0x9100)
            break;
        if (tags == CAP_MAX_VLAN_TAGS)
            return -1;
        off += 4;
    }
    *ethertype = type;
    return (long)off + 2;
}

static long cap_link(int dlt, const uint8_t *p, size_t len,
                     unsigned *ethertype)
{
    *ethertype = 0;
    switch (dlt) {
    case DLT_EN10MB:
        return cap_ether(p, len, ethertype);
    case DLT_LINUX_SLL:
        if (len < 16)
            return -1;
        *ethertype = fdx__be16(p + 14);
        return 16;
    case DLT_LINUX_SLL2:
        if (len < 20)
            return -1;
        *ethertype = fdx__be16(p);
        return 20;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return 0;
    case DLT_NULL:
    case DLT_LOOP:
        /* address family in either byte order: trust the IP version */
        return len < 4 ? -1 : 4;
    }
    return -1;
}

/*
 * A UDP segment: its start, the length its IP header gives it and how
 * much of that was captured.
 */
typedef struct cap_l4 {
    const uint8_t *p;
    size_t len, avail;
} cap_l4;

/*
 * IPv4 header at p[0..len): UDP segment and source address, or -1 to
 * skip.  A total length beyond the frame is allowed only in a frame cut
 * by the snap length (cut): what the datagram was is still told.
 */
static int cap_ipv4(const uint8_t *p, size_t len, int cut, cap_dgram *d,
                    cap_l4 *l4)
{
    size_t ihl, tot;

    if (len < 20 || (p[0] >> 4) != 4)
        return -1;
    ihl = (size_t)(p[0] & 0x0F) * 4;
    tot = fdx__be16(p + 2);
    if (tot == 0)
        tot = len; /* segmentation offload leaves it zero */
    if (ihl < 20 || tot < ihl || ihl > len || (tot > len && !cut))
        return -1;
    if ((fdx__be16(p + 6) & 0x3FFF) != 0 || p[9] != 17)
        return -1; /* a fragment, or not UDP */
    fdx_addr_from_v4(&d->src, p + 12);
    l4->p = p + ihl;
    l4->len = tot - ihl;
    l4->avail = (tot < len ? tot : len) - ihl;
    return 0;
}

/* IPv6: follows hop-by-hop, routing and destination options headers. */
static int cap_ipv6(const uint8_t *p, size_t len, int cut, cap_dgram *d,
                    cap_l4 *l4)
{
    size_t off = 40, plen;
    unsigned nh;

    if (len < 40 || (p[0] >> 4) != 6)
        return -1;
    plen = fdx__be16(p + 4);
    if (plen > len - 40 && !cut)
        return -1;
    if (plen < len - 40)
        len = 40 + plen;
    nh = p[6];
    while (nh == 0 || nh == 43 || nh == 60) {
        size_t hlen;
        if (len - off < 8)
            return -1;
        hlen = ((size_t)p[off + 1] + 1) * 8;
        if (hlen > len - off)
            return -1;
        nh = p[off];
        off += hlen;
    }
    if (nh != 17) /* fragments (44) and everything but UDP */
        return -1;
    fdx_addr_from_v6(&d->src, p + 8);
    l4->p = p + off;
    l4->len = 40 + plen - off;
    l4->avail = len - off;
    return 0;
}

/*
 * Unwraps one frame of len captured bytes down to its UDP payload; -1
 * for frames to skip.  cut: the snap length cut the frame.
 */
static int cap_unwrap(int dlt, const uint8_t *p, size_t len, int cut,
                      cap_dgram *d)
{
    unsigned ethertype;
    cap_l4 l4;
    size_t ulen;
    long off = cap_link(dlt, p, len, &ethertype);
    int rc;

    if (off < 0 || (size_t)off >= len)
        return -1;
    p += off;
    len -= (size_t)off;
    if (ethertype == 0x0800 || (ethertype == 0 && (p[0] >> 4) == 4))
        rc = cap_ipv4(p, len, cut, d, &l4);
    else if (ethertype == 0x86DD || (ethertype == 0 && (p[0] >> 4) == 6))
        rc = cap_ipv6(p, len, cut, d, &l4);
    else
        rc = -1;
    if (rc != 0 || l4.avail < 8)
        return -1;
    ulen = fdx__be16(l4.p + 4);
    if (ulen < 8 || ulen > l4.len)
        return -1;
    d->sport = fdx__be16(l4.p);
    d->data = l4.p + 8;
    d->len = ulen - 8;
    d->avail = (ulen < l4.avail ? ulen : l4.avail) - 8;
    return 0;
}

/*
 * v5: a 24-byte header and 1 to 30 records of 48 bytes, by the header's
 * count or, when the count lies (v5-corrupt-record-count of the exporter
 * cases), by a length of whole records.
 */
static int cap_v5_plausible(const uint8_t *p, size_t len)
{
    size_t count = fdx__be16(p + 2), fit;

    if (len < 24 + 48)
        return 0;
    fit = (len - 24) / 48;
    if (count >= 1 && count <= 30 && count <= fit)
        return 1;
    return fit <= 30 && (len - 24) % 48 == 0;
}

/*
 * v9: the header's count (of sets or of records: exporters differ, but
 * each takes a byte at least) fits, and so does the first set, whose id
 * is a template (0), options template (1) or data (256 and up) set.
 */
static int cap_v9_plausible(const uint8_t *p, size_t len)
{
    unsigned id, slen;

    if (len < 24 || fdx__be16(p + 2) > len - 20)
        return 0;
    id = fdx__be16(p + 20);
    slen = fdx__be16(p + 22);
    return (id <= 1 || id >= 256) && slen >= 4 && slen <= len - 20;
}

/*
 * IPFIX: the message length is at most the payload's (several messages
 * may follow each other), and the first set, if any, fits in it and is a
 * template (2), options template (3) or data set.
 */
static int cap_ipfix_plausible(const uint8_t *p, size_t len)
{
    size_t mlen = fdx__be16(p + 2);
    unsigned id, slen;

    if (mlen < 16 || mlen > len)
        return 0;
    if (mlen == 16)
        return len == 16;
    if (mlen < 20)
        return 0;
    id = fdx__be16(p + 16);
    slen = fdx__be16(p + 18);
    return (id == 2 || id == 3 || id >= 256) && slen >= 4 &&
           slen <= mlen - 16;
}

/*
 * Whether the payload of len bytes, of which avail were captured, is an
 * export datagram.  Only its first 24 bytes are looked at, so that one
 * cut by the snap length is still recognised.  A first 16-bit word of
 * 5, 9 or 10 is not enough: DNS transaction ids take those values too.
 */
static int cap_is_export(const uint8_t *p, size_t avail, size_t len)
{
    if (avail < (len < 24 ? len : 24) || len < 16)
        return 0;
    switch (fdx__be16(p)) {
    case 5: return cap_v5_plausible(p, len);
    case 9: return cap_v9_plausible(p, len);
    case 10: return cap_ipfix_plausible(p, len);
    }
    return 0;
}

/*
 * NetFlow versions that existed but are not decoded (1, 6, 7 and 8).  Any
 * other UDP payload is taken for unrelated traffic in the capture; these
 * are remembered so that a capture of them is reported rather than read
 * as empty.
 */
static int cap_is_other_version(const uint8_t *p, size_t len)
{
    unsigned v;
    size_t count;

    if (len < 24)
        return 0;
    v = fdx__be16(p);
    count = fdx__be16(p + 2);
    /* records of these versions take 16 bytes or more, after a header of
     * 16 or more: a DNS id of 7 with its flags for a count is not one */
    if (count == 0 || count > (len - 16) / 16)
        return 0;
    return v == 1 || v == 6 || v == 7 || v == 8;
}

static void cap_note_other(cap_ctx *c, const cap_dgram *d)
{
    if (c->other_versions++ == 0) {
        c->first_other = c->packets;
        c->first_version = fdx__be16(d->data);
    }
}

/* Passes records on and remembers a stop request from the caller's fn. */
static int cap_flow(void *ud, const fdx_flow *flow)
{
    cap_ctx *c = ud;

    if (c->fn == NULL)
        return 0;
    c->stop = c->fn(c->ud, flow);
    return c->stop;
}

/*
 * An export datagram the snap length cut short is not decoded (its sets
 * and records would read as malformed) but counted, so that a capture of
 * nothing else is reported rather than read as empty.
 */
static void cap_note_cut(cap_ctx *c)
{
    if (c->cut++ == 0)
        c->first_cut = c->packets;
}

static void cap_frame(cap_ctx *c, const struct pcap_pkthdr *ph,
                      const uint8_t *data)
{
    cap_dgram d;
    uint64_t recv_ms;
    int cut = ph->caplen < ph->len;

    c->packets++;
    if (cap_unwrap(c->dlt, data, ph->caplen, cut, &d) != 0) {
        c->skipped++;
        return;
    }
    if (!cap_is_export(d.data, d.avail, d.len)) {
        if (d.avail == d.len && cap_is_other_version(d.data, d.len))
            cap_note_other(c, &d);
        c->skipped++;
        return;
    }
    if (d.avail < d.len) {
        cap_note_cut(c);
        c->skipped++;
        return;
    }
    c->exports++;
    recv_ms = (uint64_t)ph->ts.tv_sec * 1000 + (uint64_t)ph->ts.tv_usec / 1000;
    fdx_nf_decode(c->dec, &d.src, d.sport, d.data, d.len, recv_ms,
                  cap_flow, c);
}

static int cap_open_error(const char *path, const char *msg,
                          fdx_error *err)
{
    struct stat sb;

    if (stat(path, &sb) != 0) {
        int code = errno == ENOENT ? FDX_ENOENT : FDX_EIO;
        return fdx_error_set(err, code, "%s: %s", path, strerror(errno));
    }
    if (strstr(msg, "truncated") != NULL)
        return fdx_error_set(err, FDX_ETRUNC, "%s: offset 0: %s", path, msg);
    if (strstr(msg, "ermission") != NULL)
        return fdx_error_set(err, FDX_EIO, "%s: %s", path, msg);
    return fdx_error_set(err, FDX_EFORMAT, "%s: not a pcap or pcapng "
                         "capture (%s)", path, msg);
}

/* Reads frames until the end, a stop request or a read error. */
static int cap_loop(cap_ctx *c, fdx_error *err)
{
    struct pcap_pkthdr *ph;
    const u_char *data;
    int rc;

    while ((rc = pcap_next_ex(c->p, &ph, &data)) == 1) {
        cap_frame(c, ph, data);
        if (c->stop != 0)
            return c->stop;
    }
    if (rc == PCAP_ERROR_BREAK)
        return 0;
    {
        const char *msg = pcap_geterr(c->p);
        FILE *fp = pcap_file(c->p);
        long long off = fp != NULL ? (long long)ftello(fp) : -1;
        int code = strstr(msg, "truncated") ? FDX_ETRUNC : FDX_ECORRUPT;

        return fdx_error_set(err, code, "%s: offset %lld: %s", c->path,
                             off, msg);
    }
}

static void cap_add_stats(const cap_ctx *c, fdx_read_stats *stats)
{
    fdx_read_stats d;

    if (stats == NULL)
        return;
    fdx_nf_decoder_stats(c->dec, &d);
    stats->files++;
    stats->packets += c->packets;
    stats->skipped_frames += c->skipped;
    stats->datagrams += d.datagrams;
    stats->flows += d.flows;
    stats->bad_datagrams += d.bad_datagrams;
    stats->bad_records += d.bad_records;
    stats->no_template += d.no_template;
    stats->seq_lost += d.seq_lost;
    stats->limit_hits += d.limit_hits;
    stats->refused += d.refused;
    stats->sessions_evicted += d.sessions_evicted;
    stats->sessions_expired += d.sessions_expired;
}

/* The decoder's messages, with the capture file named at their end. */
typedef struct cap_log {
    const fdx_logger *inner;
    const char *path;
} cap_log;

static void cap_log_line(void *ud, int level, const char *line)
{
    const cap_log *cl = ud;
    char buf[1200];

    snprintf(buf, sizeof(buf), "%s file=%s", line, cl->path);
    cl->inner->fn(cl->inner->ud, level, buf);
}

/*
 * Export datagrams cut by the snap length: an error when no other one
 * could be decoded (the file would otherwise read as empty), else a
 * warning.  Returns 1 when it set the error.
 */
static int cap_check_cut(const cap_ctx *c, const fdx_logger *log,
                         fdx_error *err, int *rc)
{
    if (c->cut == 0)
        return 0;
    if (c->exports == 0) {
        *rc = fdx_error_set(err, FDX_ETRUNC, "%s: frame %llu: the snap "
                            "length (%u bytes) cut all %llu export "
                            "datagrams short, nothing could be decoded "
                            "(capture with a larger snap length, e.g. "
                            "tcpdump -s 0)", c->path,
                            (unsigned long long)c->first_cut, c->snaplen,
                            (unsigned long long)c->cut);
        return 1;
    }
    fdx__log(log, FDX_LOG_WARN,
             "event=snaplen-cut snaplen=%u frame=%llu count=%llu file=%s",
             c->snaplen, (unsigned long long)c->first_cut,
             (unsigned long long)c->cut, c->path);
    return 0;
}

/*
 * A capture of frames none of which is an export datagram is an error (the
 * user likely gave the traffic rather than its flow records), and so is one
 * whose only export datagrams are of NetFlow versions that are not decoded
 * or were all cut by the snap length; one that also holds decodable ones
 * gets a warning.
 */
static int cap_check_versions(const cap_ctx *c, const fdx_logger *log,
                              fdx_error *err)
{
    int rc = 0;

    if (cap_check_cut(c, log, err, &rc))
        return rc;
    if (c->exports == 0 && c->other_versions == 0 && c->cut == 0 &&
        c->packets > 0)
        return fdx_error_set(err, FDX_EFORMAT,
                             "%s: no NetFlow or IPFIX export datagram among "
                             "%llu frames (a capture of the traffic itself? "
                             "flowdex reads what flow exporters send)",
                             c->path, (unsigned long long)c->packets);
    if (c->other_versions == 0)
        return 0;
    if (c->exports == 0)
        return fdx_error_set(err, FDX_EUNSUPPORTED,
                             "%s: frame %llu: NetFlow version %u is not "
                             "supported (%llu such datagrams, none of "
                             "versions 5, 9 or 10)", c->path,
                             (unsigned long long)c->first_other,
                             c->first_version,
                             (unsigned long long)c->other_versions);
    fdx__log(log, FDX_LOG_WARN,
             "event=unsupported-version version=%u frame=%llu count=%llu "
             "file=%s", c->first_version,
             (unsigned long long)c->first_other,
             (unsigned long long)c->other_versions, c->path);
    return 0;
}

static int cap_link_known(int dlt)
{
    unsigned et;
    static const uint8_t zero[64];

    return cap_link(dlt, zero, sizeof(zero), &et) >= 0;
}

int fdx_read_capture(const char *path, const fdx_read_opts *opts,
                     fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                     fdx_error *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    const fdx_logger *log = opts ? opts->log : NULL;
    cap_log cl = {log, path};
    fdx_logger wrapped = {cap_log_line, &cl, 0};
    cap_ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.fn = fn;
    c.ud = ud;
    c.p = pcap_open_offline(path, ebuf);
    if (c.p == NULL)
        return cap_open_error(path, ebuf, err);
    c.dlt = pcap_datalink(c.p);
    c.snaplen = (uint32_t)pcap_snapshot(c.p);
    if (!cap_link_known(c.dlt)) {
        rc = fdx_error_set(err, FDX_EUNSUPPORTED,
                           "%s: link type %d (%s) is not supported", path,
                           c.dlt, pcap_datalink_val_to_name(c.dlt)
                                      ? pcap_datalink_val_to_name(c.dlt)
                                      : "unknown");
        pcap_close(c.p);
        return rc;
    }
    if (log != NULL && log->fn != NULL)
        wrapped.max_level = log->max_level;
    c.dec = fdx_nf_decoder_new(opts ? opts->limits : NULL,
                               log != NULL && log->fn != NULL ? &wrapped
                                                              : NULL);
    if (c.dec == NULL) {
        rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    rc = cap_loop(&c, err);
    if (rc == 0)
        rc = cap_check_versions(&c, log, err);
    cap_add_stats(&c, stats);
    if (opts != NULL && opts->session_fn != NULL)
        fdx_nf_decoder_sessions(c.dec, opts->session_fn, opts->session_ud);
out:
    fdx_nf_decoder_free(c.dec);
    pcap_close(c.p);
    return rc;
}
