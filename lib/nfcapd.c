/*
 * Reader of nfdump's nfcapd files: layout 2 (nfdump 1.7, V3 records made
 * of extension elements) and layout 1 (nfdump 1.6, common records decoded
 * through extension maps), uncompressed or with any of the block
 * compressions nfdump writes (LZO, bzip2, LZ4, zstd).
 *
 * The file is read block by block into one buffer that grows up to
 * nfdump's own 5 MB cap and is reused; records are decoded in place into
 * one fdx_flow on the stack, so nothing is allocated per record.  Every
 * size read from the file is checked against what remains of the file or
 * block before it is used.  Damage stops the reader after the records in
 * front of it were delivered, with FDX_ETRUNC or FDX_ECORRUPT naming the
 * file offset.  The byte layout is in nfcapd_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bzlib.h>
#include <lz4.h>
#include <lzo/lzo1x.h>
#include <zstd.h>

#include "flowdex/flow.h"
#include "internal.h"
#include "nfcapd_int.h"

/* sysids and 1.6 map ids at or above these are not tracked */
#define NFC_MAX_SYSID 1024
#define NFC_MAX_MAPS 1024
/* bytes of optional 1.6 extensions a map may describe */
#define NFC_MAP_EXT_MAX 4096

typedef struct nfc_exporter {
    fdx_addr addr;
    uint32_t id;
    uint32_t sampling;
    uint8_t known;
} nfc_exporter;

/* A 1.6 extension map, reduced to what flowdex reads from it. */
typedef struct nfc_map {
    uint16_t ext_len;      /* bytes of optional extensions */
    uint16_t opkt_off, obyt_off;
    uint8_t opkt_len, obyt_len; /* 0: absent */
    uint8_t known;
} nfc_map;

typedef struct nfc_reader {
    const char *path;
    const fdx_logger *log;
    fdx_flow_fn fn;
    void *ud;
    fdx_read_stats *st;
    fdx_error *err;
    int fd;
    int layout;             /* 1 or 2 */
    int comp;               /* enum nfc_comp */
    uint64_t file_size;
    uint64_t off;           /* offset of the next byte read */
    uint64_t appx_off;      /* 0: no appendix */
    uint32_t num_blocks;    /* data blocks announced, 0: unknown */
    uint32_t blocks_read;
    int appx_seen;          /* the appendix block was read */
    uint64_t block_off;     /* offset of the block being decoded */
    int block_compressed;
    uint8_t *raw;           /* block as read */
    size_t raw_cap;
    uint8_t *out;           /* decompressed block */
    size_t out_cap;
    nfc_exporter *exp;      /* NFC_MAX_SYSID entries, lazily */
    nfc_map *maps;          /* NFC_MAX_MAPS entries, lazily */
} nfc_reader;

/* Size of each 1.6 optional extension, by id (nfdump 1.6 nfx.c). */
static const uint8_t nfc_ext_size[NFC_MAX_EXT_ID + 1] = {
    0, 0, 0, 0, 4, 8, 4, 8, 4, 4,          /* 0-9 */
    16, 4, 16, 4, 4, 8, 4, 8, 4, 8,        /* 10-19 */
    16, 16, 40, 4, 16, 4, 8, 8, 0, 0,      /* 20-29 */
    0, 0, 0, 0, 0, 0, 0, 20, 4, 8,         /* 30-39 */
    32, 24, 24, 72, 0, 24, 12, 0, 8, 0     /* 40-49 */
};

/* Offset for messages: where in the file the damaged byte is. */
static int nfc_fail(nfc_reader *r, int code, size_t pos, const char *what)
{
    if (r->block_compressed)
        return fdx_error_set(r->err, code,
                             "%s: offset %llu: %s (byte %zu of the block "
                             "once decompressed)",
                             r->path, (unsigned long long)r->block_off,
                             what, pos);
    return fdx_error_set(r->err, code, "%s: offset %llu: %s", r->path,
                         (unsigned long long)(r->block_off + pos), what);
}

/* Reads up to n bytes; returns how many arrived, or -1 on an I/O error. */
static ssize_t nfc_read(nfc_reader *r, uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = read(r->fd, buf + got, n - got);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->off += got;
    return (ssize_t)got;
}

/* Grows *buf to at least n bytes; n was capped by the caller. */
static int nfc_reserve(uint8_t **buf, size_t *cap, size_t n)
{
    uint8_t *p;
    size_t want;

    if (*cap >= n)
        return 0;
    want = *cap ? *cap : 65536;
    while (want < n)
        want *= 2;
    if (want > NFC_BLOCK_MAX)
        want = NFC_BLOCK_MAX;
    p = fdx__realloc(*buf, want);
    if (p == NULL)
        return FDX_ENOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

/* ---------------------------------------------------------------- */
/* File header                                                       */
/* ---------------------------------------------------------------- */

static int nfc_header_v2(nfc_reader *r, const uint8_t *h)
{
    r->layout = 2;
    r->comp = h[NFC_V2_OFF_COMPRESSION];
    if (r->comp > NFC_COMP_ZSTD)
        return fdx_error_set(r->err, FDX_EUNSUPPORTED,
                             "%s: offset %d: unknown compression %d",
                             r->path, NFC_V2_OFF_COMPRESSION, r->comp);
    if (h[NFC_V2_OFF_ENCRYPTION] != 0)
        return fdx_error_set(r->err, FDX_EUNSUPPORTED,
                             "%s: offset %d: encrypted file (%u)", r->path,
                             NFC_V2_OFF_ENCRYPTION,
                             h[NFC_V2_OFF_ENCRYPTION]);
    r->num_blocks = fdx__le32(h + NFC_V2_OFF_NUMBLOCKS);
    if (fdx__le16(h + NFC_V2_OFF_APPX_BLOCKS) != 0) {
        r->appx_off = fdx__le64(h + NFC_V2_OFF_APPX_OFF);
        if (r->appx_off < NFC_V2_HDR_LEN)
            return fdx_error_set(r->err, FDX_ECORRUPT,
                                 "%s: offset %d: appendix offset %llu "
                                 "inside the header", r->path,
                                 NFC_V2_OFF_APPX_OFF,
                                 (unsigned long long)r->appx_off);
    }
    return 0;
}

/*
 * Layout 1: the rest of the 140-byte header (its flags and block count
 * were taken from the first 40 bytes) and the 136-byte stat record.
 */
static int nfc_header_v1(nfc_reader *r)
{
    uint8_t h[NFC_V1_HDR_LEN + NFC_V1_STAT_LEN - NFC_V2_HDR_LEN];
    ssize_t n = nfc_read(r, h, sizeof(h));

    if (n < 0)
        return fdx_error_set(r->err, FDX_EIO, "%s: read: %s", r->path,
                             strerror(errno));
    if ((size_t)n < sizeof(h))
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: file ends inside the "
                             "nfdump 1.6 header", r->path,
                             (unsigned long long)r->off);
    r->layout = 1;
    return 0;
}

static int nfc_v1_comp(uint32_t flags)
{
    if (flags & NFC_V1_FLAG_LZO)
        return NFC_COMP_LZO;
    if (flags & NFC_V1_FLAG_BZ2)
        return NFC_COMP_BZ2;
    if (flags & NFC_V1_FLAG_LZ4)
        return NFC_COMP_LZ4;
    return NFC_COMP_NONE;
}

static int nfc_open_header(nfc_reader *r)
{
    uint8_t h[NFC_V2_HDR_LEN];
    ssize_t n = nfc_read(r, h, sizeof(h));
    unsigned version;

    if (n < 0)
        return fdx_error_set(r->err, FDX_EIO, "%s: read: %s", r->path,
                             strerror(errno));
    if (n == 0)
        return fdx_error_set(r->err, FDX_EFORMAT, "%s: empty file",
                             r->path);
    if (n < 4 || fdx__le16(h) != NFC_MAGIC)
        return fdx_error_set(r->err, FDX_EFORMAT,
                             "%s: offset 0: not an nfcapd file (no magic "
                             "0xA50C)", r->path);
    version = fdx__le16(h + NFC_V2_OFF_VERSION);
    if (version != 1 && version != 2)
        return fdx_error_set(r->err, FDX_EVERSION,
                             "%s: offset 2: nfdump layout version %u",
                             r->path, version);
    if ((size_t)n < sizeof(h))
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %zd: file ends inside the header",
                             r->path, n);
    if (version == 2)
        return nfc_header_v2(r, h);
    r->comp = nfc_v1_comp(fdx__le32(h + NFC_V1_OFF_FLAGS));
    r->num_blocks = fdx__le32(h + NFC_V1_OFF_NUMBLOCKS);
    return nfc_header_v1(r);
}

/* ---------------------------------------------------------------- */
/* Blocks                                                            */
/* ---------------------------------------------------------------- */

/* Undoes the file's block compression; *len in: size read, out: size. */
static int nfc_decompress(nfc_reader *r, size_t *len)
{
    size_t cap = r->out_cap;
    int n;

    switch (r->comp) {
    case NFC_COMP_LZO: {
        lzo_uint olen = cap;

        if (lzo1x_decompress_safe(r->raw, *len, r->out, &olen, NULL) !=
            LZO_E_OK)
            return -1;
        *len = olen;
        return 0;
    }
    case NFC_COMP_BZ2: {
        unsigned int olen = (unsigned int)cap;

        if (BZ2_bzBuffToBuffDecompress((char *)r->out, &olen,
                                       (char *)r->raw, (unsigned int)*len,
                                       0, 0) != BZ_OK)
            return -1;
        *len = olen;
        return 0;
    }
    case NFC_COMP_LZ4:
        n = LZ4_decompress_safe((const char *)r->raw, (char *)r->out,
                                (int)*len, (int)cap);
        if (n <= 0)
            return -1;
        *len = (size_t)n;
        return 0;
    default: {
        size_t z = ZSTD_decompress(r->out, cap, r->raw, *len);

        if (ZSTD_isError(z) || z == 0)
            return -1;
        *len = z;
        return 0;
    }
    }
}

/* Reads the data of the block whose header was just read. */
static int nfc_block_data(nfc_reader *r, uint32_t size, const uint8_t **data,
                          size_t *len)
{
    ssize_t n;

    if (nfc_reserve(&r->raw, &r->raw_cap, size) != 0)
        return fdx_error_set(r->err, FDX_ENOMEM, "%s: out of memory",
                             r->path);
    n = nfc_read(r, r->raw, size);
    if (n < 0)
        return fdx_error_set(r->err, FDX_EIO, "%s: read: %s", r->path,
                             strerror(errno));
    if ((size_t)n < size)
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: file ends inside a block "
                             "of %u bytes", r->path,
                             (unsigned long long)r->off, size);
    *len = size;
    *data = r->raw;
    if (r->comp == NFC_COMP_NONE)
        return 0;
    if (nfc_reserve(&r->out, &r->out_cap, NFC_BLOCK_MAX) != 0)
        return fdx_error_set(r->err, FDX_ENOMEM, "%s: out of memory",
                             r->path);
    if (nfc_decompress(r, len) != 0)
        return fdx_error_set(r->err, FDX_ECORRUPT,
                             "%s: offset %llu: block does not decompress",
                             r->path, (unsigned long long)r->block_off);
    *data = r->out;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Exporters and samplers                                            */
/* ---------------------------------------------------------------- */

static nfc_exporter *nfc_exporter_slot(nfc_reader *r, unsigned sysid)
{
    if (sysid >= NFC_MAX_SYSID) {
        if (r->st != NULL)
            r->st->limit_hits++;
        return NULL;
    }
    if (r->exp == NULL) {
        r->exp = fdx__calloc(NFC_MAX_SYSID, sizeof(*r->exp));
        if (r->exp == NULL)
            return NULL;
    }
    return &r->exp[sysid];
}

static void nfc_rec_exporter(nfc_reader *r, const uint8_t *p, size_t size)
{
    nfc_exporter *e;
    uint8_t b[16];
    unsigned family;

    if (size < NFC_EXP_LEN)
        return;
    e = nfc_exporter_slot(r, fdx__le16(p + 26));
    if (e == NULL)
        return;
    family = fdx__le16(p + 24);
    if (family == 10) {   /* AF_INET6: two host-order u64 halves */
        uint64_t hi = fdx__le64(p + 8), lo = fdx__le64(p + 16);

        for (int i = 0; i < 8; i++) {
            b[i] = (uint8_t)(hi >> (56 - 8 * i));
            b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
        }
        fdx_addr_from_v6(&e->addr, b);
    } else {
        uint32_t v4 = fdx__le32(p + 16);

        b[0] = (uint8_t)(v4 >> 24), b[1] = (uint8_t)(v4 >> 16);
        b[2] = (uint8_t)(v4 >> 8), b[3] = (uint8_t)v4;
        fdx_addr_from_v4(&e->addr, b);
    }
    e->id = fdx__le32(p + 28);
    e->known = 1;
}

static void nfc_rec_sampler(nfc_reader *r, const uint8_t *p, size_t size,
                            int legacy)
{
    nfc_exporter *e;
    uint32_t rate;

    if (legacy) {
        if (size < NFC_SAMP_V0_LEN)
            return;
        rate = fdx__le32(p + 8);
        e = nfc_exporter_slot(r, fdx__le16(p + 14));
    } else {
        uint32_t pkt, space;

        if (size < NFC_SAMP_LEN)
            return;
        pkt = fdx__le32(p + 16);
        space = fdx__le32(p + 20);
        if (pkt == 0)
            return;
        rate = (uint32_t)(((uint64_t)pkt + space) / pkt);
        e = nfc_exporter_slot(r, fdx__le16(p + 4));
    }
    if (e != NULL && rate > 1)
        e->sampling = rate;
}

/*
 * Fills in the exporter of sysid.  A record flagged sampled had its
 * counts scaled by nfcapd; the rate comes from the exporter's sampler
 * record (0 when there was none).
 */
static void nfc_flow_exporter(nfc_reader *r, fdx_flow *f, unsigned sysid,
                              int sampled)
{
    const nfc_exporter *e = NULL;

    if (r->exp != NULL && sysid < NFC_MAX_SYSID && r->exp[sysid].known)
        e = &r->exp[sysid];
    if (sampled) {
        f->flags |= FDX_FLOW_SAMPLED;
        if (r->exp != NULL && sysid < NFC_MAX_SYSID)
            f->sampling = r->exp[sysid].sampling;
    }
    if (e == NULL)
        return;
    f->exporter = e->addr;
    f->domain = e->id;
}

/* ---------------------------------------------------------------- */
/* Flow records                                                      */
/* ---------------------------------------------------------------- */

/* An address stored as a host-order u32 (nfdump's IPv4). */
static void nfc_addr4(fdx_addr *a, const uint8_t *p)
{
    uint32_t v = fdx__le32(p);
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 8), (uint8_t)v};

    fdx_addr_from_v4(a, b);
}

/* An address stored as two host-order u64 halves (nfdump's IPv6). */
static void nfc_addr6(fdx_addr *a, const uint8_t *p)
{
    uint64_t hi = fdx__le64(p), lo = fdx__le64(p + 8);

    for (int i = 0; i < 8; i++) {
        a->b[i] = (uint8_t)(hi >> (56 - 8 * i));
        a->b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
}

static void nfc_flow_times(fdx_flow *f)
{
    if (f->first_ms == 0 && f->last_ms == 0)
        f->flags |= FDX_FLOW_NO_TIME;
    else if (f->last_ms < f->first_ms)
        f->flags |= FDX_FLOW_TIME_BAD;
    if (f->rev_octets != 0 || f->rev_packets != 0)
        f->flags |= FDX_FLOW_BIFLOW;
}

/* One V3 element; returns -1 when it is too short for its type. */
static int nfc_v3_element(fdx_flow *f, unsigned type, const uint8_t *d,
                          size_t n)
{
    switch (type) {
    case NFC_EX_GENERIC:
        if (n < 46)
            return -1;
        f->first_ms = fdx__le64(d);
        f->last_ms = fdx__le64(d + 8);
        f->packets = fdx__le64(d + 24);
        f->octets = fdx__le64(d + 32);
        f->sport = fdx__le16(d + 40);
        f->dport = fdx__le16(d + 42);
        f->proto = d[44];
        f->tcp_flags = d[45];
        return 0;
    case NFC_EX_IPV4:
        if (n < 8)
            return -1;
        nfc_addr4(&f->src, d);
        nfc_addr4(&f->dst, d + 4);
        return 0;
    case NFC_EX_IPV6:
        if (n < 32)
            return -1;
        nfc_addr6(&f->src, d);
        nfc_addr6(&f->dst, d + 16);
        return 0;
    case NFC_EX_CNT:
        if (n < 24)
            return -1;
        f->rev_packets = fdx__le64(d + 8);
        f->rev_octets = fdx__le64(d + 16);
        return 0;
    default:
        return 0;
    }
}

/* Decodes a V3 record into *f; returns -1 when it is malformed. */
static int nfc_v3_record(nfc_reader *r, const uint8_t *p, size_t size,
                         fdx_flow *f)
{
    unsigned nelem, sysid;
    size_t pos = NFC_V3_HDR_LEN;

    if (size < NFC_V3_HDR_LEN)
        return -1;
    nelem = fdx__le16(p + 4);
    sysid = fdx__le16(p + 8);
    for (unsigned i = 0; i < nelem; i++) {
        unsigned type, len;

        if (size - pos < NFC_EL_HDR_LEN)
            return -1;
        type = fdx__le16(p + pos);
        len = fdx__le16(p + pos + 2);
        if (len < NFC_EL_HDR_LEN || len > size - pos)
            return -1;
        if (nfc_v3_element(f, type, p + pos + NFC_EL_HDR_LEN,
                           len - NFC_EL_HDR_LEN) != 0)
            return -1;
        pos += len;
    }
    nfc_flow_exporter(r, f, sysid, (p[10] & NFC_V3_FLAG_SAMPLED) != 0);
    return 0;
}

/* Records a 1.6 extension map: where out packets/bytes sit in records. */
static void nfc_rec_map(nfc_reader *r, const uint8_t *p, size_t size)
{
    nfc_map m = {0, 0, 0, 0, 0, 1};
    unsigned id;
    size_t pos;

    if (size < NFC_MAP_HDR_LEN + 2)
        goto bad;
    id = fdx__le16(p + 4);
    for (pos = NFC_MAP_HDR_LEN; pos + 2 <= size; pos += 2) {
        unsigned ext = fdx__le16(p + pos);

        if (ext == 0)
            break;
        if (ext > NFC_MAX_EXT_ID || m.ext_len > NFC_MAP_EXT_MAX)
            goto bad;
        if (ext == 14 || ext == 15)
            m.opkt_off = m.ext_len, m.opkt_len = nfc_ext_size[ext];
        if (ext == 16 || ext == 17)
            m.obyt_off = m.ext_len, m.obyt_len = nfc_ext_size[ext];
        m.ext_len = (uint16_t)(m.ext_len + nfc_ext_size[ext]);
    }
    if (pos + 2 > size || id >= NFC_MAX_MAPS)
        goto bad;
    if (r->maps == NULL)
        r->maps = fdx__calloc(NFC_MAX_MAPS, sizeof(*r->maps));
    if (r->maps != NULL)
        r->maps[id] = m;
    return;
bad:
    if (r->st != NULL)
        r->st->bad_records++;
    fdx__log(r->log, FDX_LOG_WARN,
             "nfcapd: bad extension map file=%s block_offset=%llu",
             r->path, (unsigned long long)r->block_off);
}

static uint64_t nfc_le_n(const uint8_t *p, unsigned n)
{
    return n == 8 ? fdx__le64(p) : fdx__le32(p);
}

/* Decodes a 1.6 common record (type 10); -1 when malformed. */
static int nfc_common_record(nfc_reader *r, const uint8_t *p, size_t size,
                             fdx_flow *f)
{
    unsigned flags, alen, plen, blen;
    const nfc_map *m;
    const uint8_t *d = p + NFC_COMMON_HDR_LEN;

    if (size < NFC_COMMON_HDR_LEN || r->maps == NULL ||
        fdx__le16(p + 6) >= NFC_MAX_MAPS)
        return -1;
    m = &r->maps[fdx__le16(p + 6)];
    flags = p[4];
    alen = (flags & NFC_CF_IPV6) ? 32 : 8;
    plen = (flags & NFC_CF_PKG64) ? 8 : 4;
    blen = (flags & NFC_CF_BYTES64) ? 8 : 4;
    if (!m->known ||
        size - NFC_COMMON_HDR_LEN < (size_t)alen + plen + blen + m->ext_len)
        return -1;
    f->first_ms = (uint64_t)fdx__le32(p + 12) * 1000 + fdx__le16(p + 8);
    f->last_ms = (uint64_t)fdx__le32(p + 16) * 1000 + fdx__le16(p + 10);
    f->tcp_flags = p[21];
    f->proto = p[22];
    f->sport = fdx__le16(p + 24);
    f->dport = fdx__le16(p + 26);
    if (alen == 32) {
        nfc_addr6(&f->src, d);
        nfc_addr6(&f->dst, d + 16);
    } else {
        nfc_addr4(&f->src, d);
        nfc_addr4(&f->dst, d + 4);
    }
    f->packets = nfc_le_n(d + alen, plen);
    f->octets = nfc_le_n(d + alen + plen, blen);
    d += alen + plen + blen;
    if (m->opkt_len)
        f->rev_packets = nfc_le_n(d + m->opkt_off, m->opkt_len);
    if (m->obyt_len)
        f->rev_octets = nfc_le_n(d + m->obyt_off, m->obyt_len);
    nfc_flow_exporter(r, f, fdx__le16(p + 28),
                      (flags & NFC_CF_SAMPLED) != 0);
    return 0;
}

/* Decodes one flow record and hands it on; returns fn's value or 0. */
static int nfc_flow_record(nfc_reader *r, unsigned type, const uint8_t *p,
                           size_t size, size_t pos)
{
    fdx_flow f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.source = FDX_SRC_NFCAPD;
    if (type == NFC_REC_V3)
        rc = nfc_v3_record(r, p, size, &f);
    else
        rc = nfc_common_record(r, p, size, &f);
    if (rc != 0) {
        if (r->st != NULL)
            r->st->bad_records++;
        if (fdx__log_enabled(r->log, FDX_LOG_WARN))
            fdx__log(r->log, FDX_LOG_WARN,
                     "nfcapd: malformed record skipped file=%s "
                     "block_offset=%llu record_pos=%zu type=%u",
                     r->path, (unsigned long long)r->block_off, pos, type);
        return 0;
    }
    nfc_flow_times(&f);
    if (r->st != NULL)
        r->st->flows++;
    return r->fn(r->ud, &f);
}

/* Walks the records of one data block. */
static int nfc_block_records(nfc_reader *r, const uint8_t *b, size_t len,
                             uint32_t nrec)
{
    size_t pos = 0;

    for (uint32_t i = 0; i < nrec; i++) {
        unsigned type, size;
        int rc = 0;

        if (len - pos < 4)
            return nfc_fail(r, FDX_ECORRUPT, NFC_BLOCK_HDR_LEN + pos,
                            "block holds fewer records than announced");
        type = fdx__le16(b + pos);
        size = fdx__le16(b + pos + 2);
        if (size < 4 || size > len - pos)
            return nfc_fail(r, FDX_ECORRUPT, NFC_BLOCK_HDR_LEN + pos,
                            "record size beyond its block");
        if (type == NFC_REC_V3 || type == NFC_REC_COMMON)
            rc = nfc_flow_record(r, type, b + pos, size, pos);
        else if (type == NFC_REC_EXTMAP)
            nfc_rec_map(r, b + pos, size);
        else if (type == NFC_REC_EXPORTER)
            nfc_rec_exporter(r, b + pos, size);
        else if (type == NFC_REC_SAMPLER || type == NFC_REC_SAMPLER_V0)
            nfc_rec_sampler(r, b + pos, size, type == NFC_REC_SAMPLER_V0);
        if (rc != 0)
            return rc;
        pos += size;
    }
    /* nfdump writes a block's records and nothing else: more bytes mean
     * its record count lies and hides records (a count of 0: all) */
    if (pos < len)
        return nfc_fail(r, FDX_ECORRUPT, NFC_BLOCK_HDR_LEN + pos,
                        "block holds more than its announced records");
    return 0;
}

/*
 * The appendix holds ident and stat records only.  Flow records in a
 * block at or after the announced appendix offset mean the header's
 * offset is wrong; skipping the block as the appendix would hide them.
 */
static int nfc_check_appendix(nfc_reader *r, const uint8_t *b, size_t len,
                              uint32_t nrec)
{
    size_t pos = 0;

    for (uint32_t i = 0; i < nrec && len - pos >= 4; i++) {
        unsigned type = fdx__le16(b + pos), size = fdx__le16(b + pos + 2);

        if (type == NFC_REC_V3 || type == NFC_REC_COMMON)
            return nfc_fail(r, FDX_ECORRUPT, NFC_BLOCK_HDR_LEN + pos,
                            "flow records in the block at the header's "
                            "appendix offset");
        if (size < 4 || size > len - pos)
            break; /* the appendix is not read further anyway */
        pos += size;
    }
    return 0;
}

/* At a clean end of file: were all announced blocks there? */
static int nfc_check_end(nfc_reader *r)
{
    if (r->num_blocks != 0 && r->blocks_read < r->num_blocks)
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: file ends after %u of %u "
                             "data blocks", r->path,
                             (unsigned long long)r->off, r->blocks_read,
                             r->num_blocks);
    if (r->appx_off != 0 && !r->appx_seen)
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: appendix announced at "
                             "offset %llu is missing", r->path,
                             (unsigned long long)r->off,
                             (unsigned long long)r->appx_off);
    return 0;
}

/* Reads and checks one block header; 1 at the end of the file. */
static int nfc_block_header(nfc_reader *r, uint32_t *nrec, uint32_t *size,
                            unsigned *type)
{
    uint8_t h[NFC_BLOCK_HDR_LEN];
    ssize_t n;

    r->block_off = r->off;
    r->block_compressed = 0;
    n = nfc_read(r, h, sizeof(h));
    if (n < 0)
        return fdx_error_set(r->err, FDX_EIO, "%s: read: %s", r->path,
                             strerror(errno));
    if (n == 0)
        return 1;
    if ((size_t)n < sizeof(h))
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: file ends inside a block "
                             "header", r->path,
                             (unsigned long long)r->block_off);
    *nrec = fdx__le32(h);
    *size = fdx__le32(h + 4);
    *type = fdx__le16(h + 8);
    if (*size > NFC_BLOCK_MAX)
        return nfc_fail(r, FDX_ECORRUPT, 4, "block size over 5 MB");
    if (r->off > r->file_size || *size > r->file_size - r->off)
        return fdx_error_set(r->err, FDX_ETRUNC,
                             "%s: offset %llu: block of %u bytes, file "
                             "ends %llu bytes later", r->path,
                             (unsigned long long)r->block_off, *size,
                             (unsigned long long)(r->off > r->file_size ?
                                 0 : r->file_size - r->off));
    return 0;
}

static int nfc_blocks(nfc_reader *r)
{
    for (;;) {
        uint32_t nrec = 0, size = 0;
        unsigned type = 0;
        const uint8_t *data = NULL;
        size_t len = 0;
        int rc = nfc_block_header(r, &nrec, &size, &type);

        if (rc == 1)
            return nfc_check_end(r);
        if (rc != 0)
            return rc;
        if (size == 0)
            continue;
        rc = nfc_block_data(r, size, &data, &len);
        if (rc != 0)
            return rc;
        r->block_compressed = r->comp != NFC_COMP_NONE;
        if (r->appx_off != 0 && r->block_off >= r->appx_off) {
            r->appx_seen = 1;
            rc = nfc_check_appendix(r, data, len, nrec);
            if (rc != 0)
                return rc;
            continue;   /* appendix: ident and stat records */
        }
        r->blocks_read++;
        if (type != NFC_BLOCK_TYPE_2 && type != NFC_BLOCK_TYPE_3)
            continue;   /* e.g. type 4 array blocks */
        rc = nfc_block_records(r, data, len, nrec);
        if (rc != 0)
            return rc;
    }
}

int fdx_read_nfcapd(const char *path, const fdx_read_opts *opts,
                    fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                    fdx_error *err)
{
    nfc_reader r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.path = path;
    r.log = opts != NULL ? opts->log : NULL;
    r.fn = fn;
    r.ud = ud;
    r.st = stats;
    r.err = err;
    if ((rc = fdx__open_regular(path, &r.fd, &r.file_size, err)) != 0)
        return rc;
    if (lzo_init() != LZO_E_OK) {
        rc = fdx_error_set(err, FDX_EUNSUPPORTED, "%s: lzo_init failed",
                           path);
        goto out;
    }
    rc = nfc_open_header(&r);
    if (rc == 0) {
        if (stats != NULL)
            stats->files++;
        fdx__log(r.log, FDX_LOG_DEBUG,
                 "nfcapd: open file=%s layout=%d compression=%d blocks=%u",
                 path, r.layout, r.comp, r.num_blocks);
        rc = nfc_blocks(&r);
    }
out:
    fdx__free(r.raw);
    fdx__free(r.out);
    fdx__free(r.exp);
    fdx__free(r.maps);
    close(r.fd);
    return rc;
}
