/*
 * Tests of the nfcapd reader (lib/nfcapd.c) and the input dispatcher
 * (lib/input.c).
 *
 * The files in tests/data/nfcapd/ were written by nfdump 1.7.1 (nfpcapd,
 * nfcapd, and nfdump -J to change the compression); each *.expect holds
 * nfdump's own reading of it (`nfdump -o json` through
 * tests/check-nfcapd.py canon), so the reader is compared with nfdump
 * record by record without needing nfdump at run time.  nfdump16.* and
 * nfcapd16-* come from nfdump 1.6.25 built from source.  zstd files (which
 * nfdump 1.7.1 cannot write) and more 1.6 files are built byte by byte
 * below.  softflowd.ipfix is an RFC 5655 IPFIX
 * file (softflowd's export messages back to back).
 *
 * Also a tool: `test_nfcapd --dump PATH...` prints the canonical lines
 * (plus exporter, sampling and flags) and `test_nfcapd --bench PATH`
 * counts flows per second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>
#include <zstd.h>

#include "flowdex/flow.h"
#include "nfcapd_int.h"

#ifndef FDX_SOURCE_ROOT
#define FDX_SOURCE_ROOT "."
#endif
#define DATA FDX_SOURCE_ROOT "/tests/data/nfcapd/"

/* ---------------------------------------------------------------- */
/* Helpers                                                           */
/* ---------------------------------------------------------------- */

/* Collects canonical lines of the flows read. */
typedef struct sink {
    char *text;
    size_t len, cap;
    size_t n;
    size_t stop_after;   /* 0: never stop */
    fdx_flow last;
} sink;

static void canon_line(const fdx_flow *f, char *buf, size_t len)
{
    char sa[FDX_ADDRSTRLEN], da[FDX_ADDRSTRLEN];

    fdx_addr_format(&f->src, sa, sizeof(sa));
    fdx_addr_format(&f->dst, da, sizeof(da));
    snprintf(buf, len,
             "%llu %llu %s %s %u %u %u 0x%02x %llu %llu %llu %llu\n",
             (unsigned long long)f->first_ms,
             (unsigned long long)f->last_ms, sa, da, f->sport, f->dport,
             f->proto, f->tcp_flags, (unsigned long long)f->packets,
             (unsigned long long)f->octets,
             (unsigned long long)f->rev_packets,
             (unsigned long long)f->rev_octets);
}

static int sink_fn(void *ud, const fdx_flow *f)
{
    sink *s = ud;
    char line[512];
    size_t n;

    canon_line(f, line, sizeof(line));
    n = strlen(line);
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->text = realloc(s->text, s->cap);
        assert_non_null(s->text);
    }
    memcpy(s->text + s->len, line, n + 1);
    s->len += n;
    s->n++;
    s->last = *f;
    if (s->stop_after != 0 && s->n == s->stop_after)
        return 7;
    return 0;
}

static void sink_free(sink *s)
{
    free(s->text);
    memset(s, 0, sizeof(*s));
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static char tmpdir[64];

static void spill(const char *name, const uint8_t *buf, size_t len,
                  char *path, size_t plen)
{
    FILE *fp;

    snprintf(path, plen, "%s/%s", tmpdir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

static int read_file(const char *path, sink *s, fdx_error *err)
{
    fdx_read_stats st;

    memset(&st, 0, sizeof(st));
    memset(err, 0, sizeof(*err));
    return fdx_read_path(path, NULL, sink_fn, s, &st, err);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff), put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32));
}

/* Reads path and compares with the stored nfdump reading in expect. */
static void check_against(const char *path, const char *expect)
{
    sink s = {0};
    fdx_error err;
    size_t elen;
    uint8_t *want = slurp(expect, &elen);
    int rc = read_file(path, &s, &err);

    if (rc != 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(s.n > 0);
    assert_non_null(s.text);
    assert_string_equal(s.text, (const char *)want);
    free(want);
    sink_free(&s);
}

/* ---------------------------------------------------------------- */
/* --dump and --bench                                                */
/* ---------------------------------------------------------------- */

static int dump_fn(void *ud, const fdx_flow *f)
{
    char line[512], ex[FDX_ADDRSTRLEN];

    (void)ud;
    canon_line(f, line, sizeof(line));
    line[strlen(line) - 1] = '\0';
    fdx_addr_format(&f->exporter, ex, sizeof(ex));
    printf("%s exporter=%s domain=%u sampling=%u flags=0x%x\n", line, ex,
           f->domain, f->sampling, f->flags);
    return 0;
}

static int count_fn(void *ud, const fdx_flow *f)
{
    uint64_t *sum = ud;

    sum[0]++;
    sum[1] += f->octets;
    return 0;
}

static int tool(int argc, char **argv)
{
    int bench = strcmp(argv[1], "--bench") == 0, rc = 0;

    for (int i = 2; i < argc; i++) {
        fdx_error err = {0};
        uint64_t sum[2] = {0, 0};
        struct timespec t0, t1;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = fdx_read_path(argv[i], NULL, bench ? count_fn : dump_fn, sum,
                          NULL, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r != 0) {
            fprintf(stderr, "%s: %s\n", fdx_error_name(r), err.msg);
            rc = 1;
        }
        if (bench) {
            double s = (double)(t1.tv_sec - t0.tv_sec) +
                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
            printf("%s: %llu flows %llu bytes in %.3f s: %.0f flows/s\n",
                   argv[i], (unsigned long long)sum[0],
                   (unsigned long long)sum[1], s, (double)sum[0] / s);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* Files written by nfdump 1.7.1, compared with nfdump's reading      */
/* ---------------------------------------------------------------- */

static void test_nfpcapd_plain(void **state)
{
    (void)state;
    check_against(DATA "nfpcapd.plain", DATA "nfpcapd.expect");
}

static void test_nfpcapd_lzo(void **state)
{
    (void)state;
    check_against(DATA "nfpcapd.lzo", DATA "nfpcapd.expect");
}

static void test_nfpcapd_bz2(void **state)
{
    (void)state;
    check_against(DATA "nfpcapd.bz2", DATA "nfpcapd.expect");
}

static void test_nfpcapd_lz4(void **state)
{
    (void)state;
    check_against(DATA "nfpcapd.lz4", DATA "nfpcapd.expect");
}


static void test_nfcapd_netflow(void **state)
{
    sink s = {0};
    fdx_error err;
    char lo[FDX_ADDRSTRLEN];

    (void)state;
    /* nfcapd fed softflowd v5/v9/IPFIX and pmacctd v9/IPFIX on
     * loopback, then rewritten bz2 by nfdump -j */
    check_against(DATA "nfcapd-netflow.bz2", DATA "nfcapd-netflow.expect");
    assert_int_equal(read_file(DATA "nfcapd-netflow.bz2", &s, &err), 0);
    fdx_addr_format(&s.last.exporter, lo, sizeof(lo));
    assert_string_equal(lo, "127.0.0.1");
    assert_int_equal(s.last.source, FDX_SRC_NFCAPD);
    assert_int_equal(s.last.flags & FDX_FLOW_SAMPLED, 0);
    sink_free(&s);
}

static void test_nfcapd_sampled(void **state)
{
    sink s = {0};
    fdx_error err;

    (void)state;
    /* nfcapd -s 10 -y: counts already scaled, sampler record present */
    check_against(DATA "nfcapd-sampled.lz4", DATA "nfcapd-sampled.expect");
    assert_int_equal(read_file(DATA "nfcapd-sampled.lz4", &s, &err), 0);
    assert_int_equal(s.last.sampling, 10);
    assert_true(s.last.flags & FDX_FLOW_SAMPLED);
    assert_int_equal(s.last.flags & FDX_FLOW_BIFLOW, 0);
    sink_free(&s);
}

/*
 * nfdump 1.6.25 (built from source) files: nfcapd fed softflowd v5/v9
 * and pmacctd IPFIX, rewritten LZO and bz2 by nfdump 1.6 -z / -j; and
 * nfcapd 1.6 -s 10 -y (LZ4, sampled).  The expect files are nfdump
 * 1.7.1's reading, checked identical to nfdump 1.6.25's own.
 */
static void test_nfdump16_lzo(void **state)
{
    (void)state;
    check_against(DATA "nfdump16.lzo", DATA "nfdump16.expect");
}

static void test_nfdump16_bz2(void **state)
{
    (void)state;
    check_against(DATA "nfdump16.bz2", DATA "nfdump16.expect");
}

static void test_nfcapd16_sampled(void **state)
{
    sink s = {0};
    fdx_error err;
    char ex[FDX_ADDRSTRLEN];

    (void)state;
    check_against(DATA "nfcapd16-sampled.lz4",
                  DATA "nfcapd16-sampled.expect");
    assert_int_equal(read_file(DATA "nfcapd16-sampled.lz4", &s, &err), 0);
    assert_int_equal(s.last.sampling, 10);
    assert_true(s.last.flags & FDX_FLOW_SAMPLED);
    fdx_addr_format(&s.last.exporter, ex, sizeof(ex));
    assert_string_equal(ex, "127.0.0.1");
    sink_free(&s);
}

/* ---------------------------------------------------------------- */
/* Files built here                                                  */
/* ---------------------------------------------------------------- */

/*
 * Rewrites a layout-2 file with every block (appendix included)
 * compressed by comp (NFC_COMP_LZ4 or NFC_COMP_ZSTD).  Caller frees.
 */
static uint8_t *recompress(const uint8_t *in, size_t len, int comp,
                           size_t *olen)
{
    size_t cap = len * 2 + 65536, o = NFC_V2_HDR_LEN, i = NFC_V2_HDR_LEN;
    uint8_t *out = malloc(cap);
    uint64_t appx = 0, in_appx = 0;

    assert_non_null(out);
    assert_true(len >= NFC_V2_HDR_LEN);
    memcpy(out, in, NFC_V2_HDR_LEN);
    out[NFC_V2_OFF_COMPRESSION] = (uint8_t)comp;
    memcpy(&in_appx, in + NFC_V2_OFF_APPX_OFF, 8);   /* little-endian host */
    while (i + NFC_BLOCK_HDR_LEN <= len) {
        uint32_t size;
        size_t z;

        memcpy(&size, in + i + 4, 4);
        assert_true(size <= len - i - NFC_BLOCK_HDR_LEN);
        if (i == in_appx)
            appx = o;
        memcpy(out + o, in + i, NFC_BLOCK_HDR_LEN);
        if (comp == NFC_COMP_ZSTD)
            z = ZSTD_compress(out + o + NFC_BLOCK_HDR_LEN,
                              cap - o - NFC_BLOCK_HDR_LEN,
                              in + i + NFC_BLOCK_HDR_LEN, size, 3);
        else
            z = (size_t)LZ4_compress_default(
                (const char *)in + i + NFC_BLOCK_HDR_LEN,
                (char *)out + o + NFC_BLOCK_HDR_LEN, (int)size,
                (int)(cap - o - NFC_BLOCK_HDR_LEN));
        assert_false(comp == NFC_COMP_ZSTD && ZSTD_isError(z));
        assert_true(z > 0);
        put32(out + o + 4, (uint32_t)z);
        o += NFC_BLOCK_HDR_LEN + z;
        i += NFC_BLOCK_HDR_LEN + size;
    }
    put64(out + NFC_V2_OFF_APPX_OFF, appx);
    *olen = o;
    return out;
}

static void test_zstd(void **state)
{
    size_t len, zlen;
    uint8_t *plain = slurp(DATA "nfpcapd.plain", &len);
    uint8_t *z = recompress(plain, len, NFC_COMP_ZSTD, &zlen);
    char path[256];

    (void)state;
    spill("zstd.nfcapd", z, zlen, path, sizeof(path));
    check_against(path, DATA "nfpcapd.expect");
    free(plain);
    free(z);
}

/*
 * An nfdump 1.6 (layout 1) file, byte by byte; see nfcapd_int.h.
 *   header   140: magic, version 1, flags (compression), 1 block, ident
 *   stat     136: zeros
 *   block     12: 6 records, size, type 2, flags 0
 *   exporter  32: sysid 1 = 192.0.2.1, version 9, domain 77
 *   sampler   16: legacy, 1 in 100 for sysid 1
 *   map       16: id 0, extensions 4 (2-byte ifindex), 14 (4-byte out
 *                 packets), 17 (8-byte out bytes), 0
 *   record    64: IPv4, 32-bit counters, map 0, sysid 1
 *   record    96: IPv6, 64-bit counters, sampled, map 0, sysid 1
 *   record    32: map 5 (never defined): skipped as malformed
 */
static size_t v16_records(uint8_t *b)
{
    uint8_t *p = b;

    put16(p, NFC_REC_EXPORTER), put16(p + 2, 32), put32(p + 4, 9);
    put32(p + 16, 0xC0000201u), put16(p + 24, 2), put16(p + 26, 1);
    put32(p + 28, 77);
    p += 32;
    put16(p, NFC_REC_SAMPLER_V0), put16(p + 2, 16), put32(p + 4, 1);
    put32(p + 8, 100), put16(p + 14, 1);
    p += 16;
    put16(p, NFC_REC_EXTMAP), put16(p + 2, 16), put16(p + 4, 0);
    put16(p + 6, 16), put16(p + 8, 4), put16(p + 10, 14);
    put16(p + 12, 17), put16(p + 14, 0);
    p += 16;
    put16(p, NFC_REC_COMMON), put16(p + 2, 64), p[4] = 0;
    put16(p + 6, 0), put16(p + 8, 123), put16(p + 10, 456);
    put32(p + 12, 1700000000u), put32(p + 16, 1700000001u);
    p[21] = 0x1b, p[22] = 6, put16(p + 24, 40000), put16(p + 26, 80);
    put16(p + 28, 1);
    put32(p + 32, 0x0A000001u), put32(p + 36, 0xC6336407u);
    put32(p + 40, 10), put32(p + 44, 5000);
    put16(p + 48, 3), put16(p + 50, 4);     /* ifindex in/out */
    put32(p + 52, 8), put64(p + 56, 9000);  /* out packets, bytes */
    p += 64;
    put16(p, NFC_REC_COMMON), put16(p + 2, 96), p[4] = 0x87;
    put16(p + 6, 0), put32(p + 12, 1700000002u), put32(p + 16, 1700000003u);
    p[22] = 17, put16(p + 24, 53), put16(p + 26, 5353), put16(p + 28, 1);
    put64(p + 32, 0x20010db800000000ull), put64(p + 40, 1);
    put64(p + 48, 0x20010db800000000ull), put64(p + 56, 2);
    put64(p + 64, 1ull << 33), put64(p + 72, 1ull << 40);
    put16(p + 80, 1), put16(p + 82, 2), put32(p + 84, 0);
    put64(p + 88, 0);
    p += 96;
    put16(p, NFC_REC_COMMON), put16(p + 2, 32), put16(p + 6, 5);
    p += 32;
    return (size_t)(p - b);
}

static size_t v16_file(uint8_t *f, int lz4)
{
    uint8_t recs[512] = {0};
    size_t n = v16_records(recs), o = NFC_V1_HDR_LEN + NFC_V1_STAT_LEN;
    int z = (int)n;

    memset(f, 0, o);
    put16(f, NFC_MAGIC), put16(f + 2, 1);
    put32(f + NFC_V1_OFF_FLAGS, lz4 ? NFC_V1_FLAG_LZ4 : 0);
    put32(f + NFC_V1_OFF_NUMBLOCKS, 1);
    memcpy(f + NFC_V1_OFF_IDENT, "flowdex-test", 12);
    if (lz4)
        z = LZ4_compress_default((const char *)recs, (char *)f + o + 12,
                                 (int)n, 1024);
    else
        memcpy(f + o + 12, recs, n);
    assert_true(z > 0);
    put32(f + o, 6), put32(f + o + 4, (uint32_t)z);
    put16(f + o + 8, NFC_BLOCK_TYPE_2), put16(f + o + 10, 0);
    return o + 12 + (size_t)z;
}

static void check_v16(int lz4)
{
    uint8_t f[2048];
    size_t n = v16_file(f, lz4);
    char path[256];
    sink s = {0};
    fdx_error err;
    fdx_read_stats st;
    char ex[FDX_ADDRSTRLEN];

    spill(lz4 ? "v16-lz4" : "v16", f, n, path, sizeof(path));
    memset(&st, 0, sizeof(st));
    assert_int_equal(fdx_read_path(path, NULL, sink_fn, &s, &st, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(st.bad_records, 1);
    assert_string_equal(s.text,
        "1700000000123 1700000001456 10.0.0.1 198.51.100.7 40000 80 6 "
        "0x1b 10 5000 8 9000\n"
        "1700000002000 1700000003000 2001:db8::1 2001:db8::2 53 5353 17 "
        "0x00 8589934592 1099511627776 0 0\n");
    fdx_addr_format(&s.last.exporter, ex, sizeof(ex));
    assert_string_equal(ex, "192.0.2.1");
    assert_int_equal(s.last.domain, 77);
    assert_int_equal(s.last.sampling, 100);
    assert_int_equal(s.last.flags, FDX_FLOW_SAMPLED);
    sink_free(&s);
}

static void test_v16(void **state)
{
    (void)state;
    check_v16(0);
    check_v16(1);
}

/* The first flow of the v16 file is a biflow (out counters set). */
static void test_v16_biflow(void **state)
{
    uint8_t f[2048];
    size_t n = v16_file(f, 0);
    char path[256];
    sink s = {0};
    fdx_error err;

    (void)state;
    spill("v16-biflow", f, n, path, sizeof(path));
    s.stop_after = 1;
    assert_int_equal(read_file(path, &s, &err), 7);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.last.flags, FDX_FLOW_BIFLOW);
    assert_int_equal(s.last.rev_octets, 9000);
    assert_int_equal(s.last.sampling, 0);
    sink_free(&s);
}

/* ---------------------------------------------------------------- */
/* Hostile input                                                     */
/* ---------------------------------------------------------------- */

/* Reads buf as a file; checks no crash and a prefix of full was read. */
static int read_buf(const char *name, const uint8_t *buf, size_t len,
                    const char *full, size_t *nflows)
{
    char path[256];
    sink s = {0};
    fdx_error err;
    int rc;

    spill(name, buf, len, path, sizeof(path));
    rc = read_file(path, &s, &err);
    if (full != NULL && s.text != NULL)
        assert_memory_equal(s.text, full, s.len);
    if (rc < 0)
        assert_non_null(strstr(err.msg, path));
    if (nflows != NULL)
        *nflows = s.n;
    sink_free(&s);
    return rc;
}

static void check_cuts(const char *file, size_t step)
{
    size_t len, elen, n;
    uint8_t *buf = slurp(file, &len);
    uint8_t *want = slurp(DATA "nfpcapd.expect", &elen);

    for (size_t cut = 0; cut < len; cut += (cut < 300 ? 1 : step)) {
        int rc = read_buf("cut", buf, cut, (const char *)want, &n);

        if (cut < 4)
            assert_int_equal(rc, FDX_EFORMAT);
        else
            assert_int_equal(rc, FDX_ETRUNC);
    }
    /* whole file: everything */
    assert_int_equal(read_buf("cut", buf, len, (const char *)want, &n), 0);
    assert_int_equal(n, 200);
    free(buf);
    free(want);
}

static void test_truncated(void **state)
{
    (void)state;
    check_cuts(DATA "nfpcapd.plain", 13);
    check_cuts(DATA "nfpcapd.lz4", 7);
    check_cuts(DATA "nfpcapd.bz2", 11);
}

/* Offsets in nfpcapd.plain: one data block at 40, records from 52. */
#define BLK 40
#define REC (BLK + NFC_BLOCK_HDR_LEN)

static void test_corrupt_sizes(void **state)
{
    size_t len, elen, n;
    uint8_t *orig = slurp(DATA "nfpcapd.plain", &len);
    uint8_t *want = slurp(DATA "nfpcapd.expect", &elen);
    uint8_t *b = malloc(len);
    const char *w = (const char *)want;

    (void)state;
    assert_non_null(b);
    memcpy(b, orig, len);
    put32(b + BLK + 4, 0xFFFFFFFFu);    /* huge block */
    assert_int_equal(read_buf("c1", b, len, w, &n), FDX_ECORRUPT);
    memcpy(b, orig, len);
    put32(b + BLK + 4, 4u << 20);       /* 4 MB, beyond the file */
    assert_int_equal(read_buf("c2", b, len, w, &n), FDX_ETRUNC);
    memcpy(b, orig, len);
    put16(b + REC + 2, 0);              /* zero-length record */
    assert_int_equal(read_buf("c3", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 0);
    memcpy(b, orig, len);
    put16(b + REC + 76 + 2, 0xFFFF);    /* 2nd record beyond block */
    assert_int_equal(read_buf("c4", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 1);
    memcpy(b, orig, len);
    put32(b + BLK, 201);                /* one record more than held */
    assert_int_equal(read_buf("c5", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 200);
    memcpy(b, orig, len);
    put16(b + REC + 12 + 2, 0xFFF0);    /* element beyond record */
    assert_int_equal(read_buf("c6", b, len, NULL, &n), 0);
    assert_int_equal(n, 199);
    /* headers that lie and hide records, of the 2026-12-04 review: they
     * were read as 0 (or 100) flows with exit 0 */
    memcpy(b, orig, len);
    put32(b + BLK, 0);                  /* nfc-nrec0: 0 of 200 records */
    assert_int_equal(read_buf("c7", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 0);
    memcpy(b, orig, len);
    put32(b + BLK, 100);                /* nfc-nrec-small */
    assert_int_equal(read_buf("c8", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 100);
    memcpy(b, orig, len);               /* nfc-appx-at-40-numblocks0 */
    put64(b + NFC_V2_OFF_APPX_OFF, BLK);
    put32(b + NFC_V2_OFF_NUMBLOCKS, 0);
    assert_int_equal(read_buf("c9", b, len, w, &n), FDX_ECORRUPT);
    assert_int_equal(n, 0);
    free(b);
    free(orig);
    free(want);
}

static void test_bad_headers(void **state)
{
    size_t len, n;
    uint8_t *orig = slurp(DATA "nfpcapd.plain", &len);
    uint8_t *b = malloc(len);
    uint8_t junk[64];

    (void)state;
    assert_non_null(b);
    memcpy(b, orig, len);
    b[NFC_V2_OFF_COMPRESSION] = 9;
    assert_int_equal(read_buf("h1", b, len, NULL, &n), FDX_EUNSUPPORTED);
    memcpy(b, orig, len);
    put16(b + 2, 3);
    assert_int_equal(read_buf("h2", b, len, NULL, &n), FDX_EVERSION);
    memcpy(b, orig, len);
    put16(b, 0x0CA5);                   /* byte-swapped magic */
    assert_int_equal(read_buf("h3", b, len, NULL, &n), FDX_EFORMAT);
    memcpy(b, orig, len);
    b[NFC_V2_OFF_COMPRESSION] = NFC_COMP_LZ4;   /* plain data as LZ4 */
    assert_true(read_buf("h4", b, len, NULL, &n) < 0);
    assert_int_equal(read_buf("h5", b, 0, NULL, &n), FDX_EFORMAT);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(read_buf("h6", junk, sizeof(junk), NULL, &n),
                     FDX_EFORMAT);
    free(b);
    free(orig);
}

/* Random damage: every outcome allowed except a crash or a leak. */
static void fuzz_file(const char *file, unsigned seed, int rounds)
{
    size_t len, n;
    uint8_t *orig = slurp(file, &len);
    uint8_t *b = malloc(len);

    assert_non_null(b);
    srand(seed);
    for (int r = 0; r < rounds; r++) {
        int flips = 1 + rand() % 8;
        int rc;

        memcpy(b, orig, len);
        for (int k = 0; k < flips; k++)
            b[(size_t)rand() % len] = (uint8_t)rand();
        rc = read_buf("fuzz", b, len, NULL, &n);
        assert_true(rc <= 0);
        assert_true(rc >= FDX_ENOTFOUND);
    }
    free(b);
    free(orig);
}

static void test_random_damage(void **state)
{
    uint8_t rnd[4096];

    (void)state;
    fuzz_file(DATA "nfpcapd.plain", 1, 300);
    fuzz_file(DATA "nfpcapd.lz4", 2, 300);
    fuzz_file(DATA "nfpcapd.lzo", 3, 300);
    fuzz_file(DATA "nfpcapd.bz2", 4, 100);
    fuzz_file(DATA "nfcapd-sampled.lz4", 5, 200);
    fuzz_file(DATA "nfdump16.lzo", 7, 200);
    fuzz_file(DATA "nfcapd16-sampled.lz4", 8, 200);
    srand(6);
    for (int r = 0; r < 200; r++) {
        size_t n, len = (size_t)(rand() % (int)sizeof(rnd));

        for (size_t i = 0; i < len; i++)
            rnd[i] = (uint8_t)rand();
        if (len >= 4)
            put16(rnd, NFC_MAGIC), put16(rnd + 2, 1 + (unsigned)(r & 1));
        assert_true(read_buf("random", rnd, len, NULL, &n) < 0);
    }
}

/* Allocation failure: a clean FDX_ENOMEM, nothing leaked. */
static int alloc_budget;

static void *fail_malloc(size_t n)
{
    return alloc_budget-- > 0 ? malloc(n) : NULL;
}

static void *fail_realloc(void *p, size_t n)
{
    return alloc_budget-- > 0 ? realloc(p, n) : NULL;
}

static void test_enomem(void **state)
{
    const fdx_allocator a = {fail_malloc, fail_realloc, free};
    sink s = {0};
    fdx_error err;
    int rc;

    (void)state;
    fdx_set_allocator(&a);
    alloc_budget = 0;
    rc = read_file(DATA "nfpcapd.lz4", &s, &err);
    fdx_set_allocator(NULL);
    assert_int_equal(rc, FDX_ENOMEM);
    assert_int_equal(s.n, 0);
    sink_free(&s);
}

/* ---------------------------------------------------------------- */
/* The dispatcher                                                    */
/* ---------------------------------------------------------------- */

static void copy_to(const char *src, const char *dir, const char *name,
                    size_t cut)
{
    size_t len;
    uint8_t *b = slurp(src, &len);
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    if (cut != 0 && cut < len)
        len = cut;
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
    free(b);
}

static void test_directory(void **state)
{
    char dir[256], sub[300], want[98304];
    size_t l1, l2;
    uint8_t *e1 = slurp(DATA "nfcapd-sampled.expect", &l1);
    uint8_t *e2 = slurp(DATA "nfpcapd.expect", &l2);
    sink s = {0};
    fdx_error err;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/dir", tmpdir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    copy_to(DATA "nfpcapd.lz4", dir, "nfcapd.2", 0);
    copy_to(DATA "nfcapd-sampled.lz4", dir, "nfcapd.1", 0);
    copy_to(DATA "nfpcapd.plain", dir, ".hidden", 0);
    copy_to(DATA "nfpcapd.plain", sub, "nfcapd.3", 0);
    copy_to(DATA "nfpcapd.expect", dir, "notes.txt", 0);
    copy_to(DATA "nfpcapd.plain", dir, "nfcapd.current.999", 1000);
    /* name order; sub/ (a subdirectory, read in turn) sorts last */
    assert_true(l1 + 2 * l2 < sizeof(want));
    memcpy(want, e1, l1);
    memcpy(want + l1, e2, l2);
    memcpy(want + l1 + l2, e2, l2);
    want[l1 + 2 * l2] = '\0';
    assert_int_equal(read_file(dir, &s, &err), 0);
    assert_string_equal(s.text, want);
    sink_free(&s);
    /* a damaged file: the others are still read, its error returned with
     * the count of such files (each is logged by name as it is met) */
    copy_to(DATA "nfpcapd.plain", dir, "nfcapd.15", 5000);
    assert_int_equal(read_file(dir, &s, &err), FDX_ETRUNC);
    assert_non_null(strstr(err.msg, "1 file(s) could not be read"));
    assert_true(s.n >= 600);
    sink_free(&s);
    /* the callback stops a directory too */
    s.stop_after = 250;
    assert_int_equal(read_file(dir, &s, &err), 7);
    assert_int_equal(s.n, 250);
    sink_free(&s);
    free(e1);
    free(e2);
}

/*
 * An RFC 5655 IPFIX file: softflowd's IPFIX messages one after the other.
 * The expect file is nfdump's reading of the same messages collected by
 * nfcapd, without the times: nfcapd 1.7.1 gets softflowd's IPFIX times
 * wrong (last before first), so only the other columns are compared.
 */
static void test_ipfix_file(void **state)
{
    sink s = {0};
    fdx_error err;
    size_t elen, len, o = 0;
    uint8_t *want = slurp(DATA "softflowd.ipfix.expect", &elen);
    uint8_t *file = slurp(DATA "softflowd.ipfix", &len);
    char *line, *save = NULL, *cols = malloc(elen + 1);

    (void)state;
    assert_non_null(cols);
    assert_int_equal(read_file(DATA "softflowd.ipfix", &s, &err), 0);
    assert_int_equal(s.n, 200);
    assert_int_equal(s.last.source, FDX_SRC_IPFIX);
    for (line = strtok_r(s.text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        const char *c = strchr(strchr(line, ' ') + 1, ' ') + 1;
        size_t n = strlen(c);

        assert_true(o + n + 1 <= elen);
        memcpy(cols + o, c, n);
        cols[o + n] = '\n';
        o += n + 1;
    }
    cols[o] = '\0';
    assert_string_equal(cols, (const char *)want);
    sink_free(&s);
    /* cut inside the last message: what came before, then ETRUNC */
    assert_int_equal(read_buf("ipfix-cut", file, len - 100, NULL, &o),
                     FDX_ETRUNC);
    assert_true(o > 0 && o < 200);
    free(cols);
    free(file);
    free(want);
}

static void test_single_files(void **state)
{
    char path[256];
    sink s = {0};
    fdx_error err;
    const uint8_t ipfix[16] = {0, 10, 0, 16};

    (void)state;
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_int_equal(read_file(path, &s, &err), FDX_ENOENT);
    assert_non_null(strstr(err.msg, "missing"));
    spill("empty", ipfix, 0, path, sizeof(path));
    assert_int_equal(read_file(path, &s, &err), FDX_EFORMAT);
    assert_non_null(strstr(err.msg, "empty file"));
    assert_non_null(strstr(err.msg, path));
    spill("text", (const uint8_t *)"hello world\n", 12, path, sizeof(path));
    assert_int_equal(read_file(path, &s, &err), FDX_EFORMAT);
    assert_non_null(strstr(err.msg, path));
    spill("ipfix", ipfix, sizeof(ipfix), path, sizeof(path));
    assert_int_equal(read_file(path, &s, &err), 0);   /* empty message */
    assert_int_equal(s.n, 0);
    if (geteuid() != 0) {
        spill("noread", ipfix, sizeof(ipfix), path, sizeof(path));
        chmod(path, 0);
        assert_int_equal(read_file(path, &s, &err), FDX_EIO);
    }
    s.stop_after = 3;
    assert_int_equal(read_file(DATA "nfpcapd.bz2", &s, &err), 7);
    assert_int_equal(s.n, 3);
    sink_free(&s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfpcapd_plain),
        cmocka_unit_test(test_nfpcapd_lzo),
        cmocka_unit_test(test_nfpcapd_bz2),
        cmocka_unit_test(test_nfpcapd_lz4),
        cmocka_unit_test(test_nfcapd_netflow),
        cmocka_unit_test(test_nfcapd_sampled),
        cmocka_unit_test(test_nfdump16_lzo),
        cmocka_unit_test(test_nfdump16_bz2),
        cmocka_unit_test(test_nfcapd16_sampled),
        cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_v16),
        cmocka_unit_test(test_v16_biflow),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_sizes),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_enomem),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_single_files),
        cmocka_unit_test(test_ipfix_file),
    };
    int rc;

    if (argc >= 3 && (strcmp(argv[1], "--dump") == 0 ||
                      strcmp(argv[1], "--bench") == 0))
        return tool(argc, argv);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fdx-nfcapd-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc;
}
