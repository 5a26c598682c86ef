/*
 * Tests of the capture reader: link layers, IPv4/IPv6, what is skipped,
 * pcapng, and the errors for files that are not captures or are cut short.
 * Synthetic captures are written to a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "flowdex/flow.h"

#ifndef FDX_SOURCE_ROOT
#define FDX_SOURCE_ROOT "."
#endif
#define DATA FDX_SOURCE_ROOT "/tests/data/"

typedef struct sink {
    fdx_flow last;
    size_t n;
    int stop_after;
} sink;

static int collect(void *ud, const fdx_flow *f)
{
    sink *s = ud;

    s->last = *f;
    s->n++;
    return s->stop_after != 0 && s->n == (size_t)s->stop_after ? -77 : 0;
}

typedef struct buf {
    uint8_t b[512];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put16(buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 2);
}

static void put32(buf *b, uint32_t v)
{
    put16(b, v >> 16);
    put16(b, v & 0xFFFF);
}

static void put32le(buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* A NetFlow v5 datagram with one record of 1500 octets. */
static void v5_payload(buf *b, unsigned version)
{
    size_t start = b->n;

    put16(b, version); put16(b, 1);
    put32(b, 10000); put32(b, 1700000000); put32(b, 0);
    put32(b, 0); put32(b, 0);
    memset(b->b + b->n, 0, 48);
    b->b[b->n + 19] = 3;                           /* packets */
    b->b[b->n + 22] = 1500 >> 8;                   /* octets */
    b->b[b->n + 23] = 1500 & 0xFF;
    b->n += 48;
    (void)start;
}

enum { IP4 = 4, IP6 = 6, IP4_FRAG = 40, IP4_TCP = 41, NOT_NF = 42,
       OTHER_UDP = 43, DNS = 100 };

/*
 * A DNS response with transaction id txid and four A records: ids 5, 9
 * and 10 make it start like a NetFlow or IPFIX header (the review's
 * dns-id5.pcap became flows and exporter sessions).
 */
static void dns_payload(buf *b, unsigned txid)
{
    static const uint8_t q[] = "\7example\3com";

    put16(b, txid); put16(b, 0x8180); put16(b, 1); put16(b, 4);
    put32(b, 0);
    put(b, q, sizeof(q));
    put16(b, 1); put16(b, 1);
    for (int i = 0; i < 4; i++) {
        put16(b, 0xC00C); put16(b, 1); put16(b, 1); put32(b, 300);
        put16(b, 4); put32(b, 0x5DB8D81Eu + (uint32_t)i);
    }
}

/* IP + UDP (from 192.0.2.9 / 2001:db8::9, port 4321) + payload. */
static void ip_udp(buf *b, int kind)
{
    buf pl = {{0}, 0};
    size_t ulen;

    if (kind >= DNS)
        dns_payload(&pl, (unsigned)kind - DNS);
    else
        v5_payload(&pl, kind == NOT_NF ? 1 : kind == OTHER_UDP ? 0x1234
                                                                : 5);
    ulen = 8 + pl.n;
    if (kind == IP6) {
        static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};
        static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
        put32(b, 0x60000000); put16(b, (unsigned)ulen);
        put16(b, 17 << 8 | 64);
        put(b, src, 16); put(b, dst, 16);
    } else {
        put16(b, 0x4500); put16(b, (unsigned)(20 + ulen));
        put16(b, 1); put16(b, kind == IP4_FRAG ? 0x2000 : 0x4000);
        put16(b, 64 << 8 | (kind == IP4_TCP ? 6 : 17)); put16(b, 0);
        put32(b, 0xC0000209); put32(b, 0xC6336401);
    }
    put16(b, 4321); put16(b, 2055); put16(b, (unsigned)ulen); put16(b, 0);
    put(b, pl.b, pl.n);
}

/* Writes a one-frame pcap of linktype with frame f; returns its path. */
static const char *write_pcap(unsigned linktype, const buf *f)
{
    static char path[256];
    buf h = {{0}, 0};
    FILE *fp;

    snprintf(path, sizeof(path), "/tmp/fdx-test-capture-%d.pcap",
             (int)getpid());
    put32le(&h, 0xa1b2c3d4); put32le(&h, 0x00040002); put32le(&h, 0);
    put32le(&h, 0); put32le(&h, 65535); put32le(&h, linktype);
    put32le(&h, 1700000001); put32le(&h, 250000);
    put32le(&h, (uint32_t)f->n); put32le(&h, (uint32_t)f->n);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(h.b, 1, h.n, fp), h.n);
    assert_int_equal(fwrite(f->b, 1, f->n, fp), f->n);
    fclose(fp);
    return path;
}

static int read_one(unsigned linktype, const buf *f, sink *s,
                    fdx_read_stats *st)
{
    const char *path = write_pcap(linktype, f);
    fdx_error err = {0, ""};
    int rc;

    memset(s, 0, sizeof(*s));
    memset(st, 0, sizeof(*st));
    rc = fdx_read_capture(path, NULL, collect, s, st, &err);
    unlink(path);
    return rc;
}

static void expect_flow(unsigned linktype, const buf *f, const char *src)
{
    char a[FDX_ADDRSTRLEN];
    fdx_read_stats st;
    sink s;

    assert_int_equal(read_one(linktype, f, &s, &st), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.last.octets, 1500);
    assert_int_equal(s.last.packets, 3);
    assert_int_equal(s.last.exporter_port, 4321);
    assert_string_equal(fdx_addr_format(&s.last.exporter, a, sizeof(a)),
                        src);
    assert_int_equal(st.packets, 1);
    assert_int_equal(st.datagrams, 1);
    assert_int_equal(st.skipped_frames, 0);
    assert_int_equal(st.files, 1);
}

/* A file of one frame that is no export datagram: skipped, and since the
 * file then holds none, refused as not a capture of flow exports. */
static void expect_skip(unsigned linktype, const buf *f)
{
    fdx_read_stats st;
    sink s;

    assert_int_equal(read_one(linktype, f, &s, &st), FDX_EFORMAT);
    assert_int_equal(s.n, 0);
    assert_int_equal(st.packets, 1);
    assert_int_equal(st.skipped_frames, 1);
    assert_int_equal(st.bad_datagrams, 0);
}

static void ether(buf *b, unsigned vlan_tags, unsigned ethertype)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};

    b->n = 0;
    put(b, macs, 12);
    for (unsigned i = 0; i < vlan_tags; i++) {
        put16(b, i == 0 && vlan_tags > 1 ? 0x88A8 : 0x8100);
        put16(b, 100 + i);
    }
    put16(b, ethertype);
}

static void test_ethernet(void **state)
{
    buf f;

    (void)state;
    ether(&f, 0, 0x0800);
    ip_udp(&f, IP4);
    expect_flow(1, &f, "192.0.2.9");
    ether(&f, 2, 0x0800);           /* QinQ */
    ip_udp(&f, IP4);
    expect_flow(1, &f, "192.0.2.9");
    ether(&f, 1, 0x86DD);
    ip_udp(&f, IP6);
    expect_flow(1, &f, "2001:db8::9");
}

static void test_cooked_raw_null(void **state)
{
    buf f = {{0}, 0};

    (void)state;
    put16(&f, 0); put16(&f, 772); put16(&f, 6);   /* SLL */
    put32(&f, 0); put32(&f, 0); put16(&f, 0x0800);
    ip_udp(&f, IP4);
    expect_flow(113, &f, "192.0.2.9");

    f.n = 0;                                      /* SLL2 */
    put16(&f, 0x86DD); put16(&f, 0); put32(&f, 1);
    put16(&f, 1); put16(&f, 0); put32(&f, 0); put32(&f, 0);
    ip_udp(&f, IP6);
    expect_flow(276, &f, "2001:db8::9");

    f.n = 0;                                      /* LINKTYPE_RAW */
    ip_udp(&f, IP4);
    expect_flow(101, &f, "192.0.2.9");
    f.n = 0;                                      /* LINKTYPE_IPV6 */
    ip_udp(&f, IP6);
    expect_flow(229, &f, "2001:db8::9");

    f.n = 0;                                      /* BSD NULL, LE AF */
    put32le(&f, 2);
    ip_udp(&f, IP4);
    expect_flow(0, &f, "192.0.2.9");
    f.n = 0;                                      /* OpenBSD LOOP */
    put32(&f, 24);
    ip_udp(&f, IP6);
    expect_flow(108, &f, "2001:db8::9");
}

static void test_skipped(void **state)
{
    buf f;

    (void)state;
    ether(&f, 0, 0x0800);
    ip_udp(&f, IP4_FRAG);
    expect_skip(1, &f);
    ether(&f, 0, 0x0800);
    ip_udp(&f, IP4_TCP);
    expect_skip(1, &f);
    ether(&f, 0, 0x0800);
    ip_udp(&f, OTHER_UDP);          /* UDP of another protocol */
    expect_skip(1, &f);
    ether(&f, 0, 0x0800);
    ip_udp(&f, NOT_NF);             /* NetFlow v1: counted, then refused */
    {
        fdx_read_stats st;
        sink s;

        assert_int_equal(read_one(1, &f, &s, &st), FDX_EUNSUPPORTED);
        assert_int_equal(s.n, 0);
        assert_int_equal(st.skipped_frames, 1);
    }
    for (int id = 5; id <= 10; id++) { /* DNS ids that look like versions */
        ether(&f, 0, 0x0800);
        ip_udp(&f, DNS + id);
        expect_skip(1, &f);
    }
    ether(&f, 0, 0x0806);           /* ARP */
    put32(&f, 0);
    expect_skip(1, &f);
    ether(&f, 0, 0x0800);           /* frame cut inside the IP header */
    expect_skip(1, &f);
}

static void test_pcapng(void **state)
{
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    sink s = {0};

    (void)state;
    assert_int_equal(fdx_read_capture(DATA "capture/softflowd-v5.pcapng",
                                      NULL, collect, &s, &st, &err), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(st.packets, 3);
    assert_int_equal(s.last.octets, 58);
    assert_int_equal(s.last.sampling, 100);
}

static void test_errors(void **state)
{
    const char *path = "/tmp/fdx-test-capture-bad.txt";
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    FILE *fp = fopen(path, "w");
    sink s = {0};

    (void)state;
    assert_non_null(fp);
    fputs("this is not a capture file at all, just some text\n", fp);
    fclose(fp);
    assert_int_equal(fdx_read_capture(path, NULL, collect, &s, &st, &err),
                     FDX_EFORMAT);
    assert_non_null(strstr(err.msg, path));
    unlink(path);

    assert_int_equal(fdx_read_capture("/nonexistent/x.pcap", NULL, collect,
                                      &s, &st, &err), FDX_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/x.pcap"));
}

/* The records before the cut are delivered, then FDX_ETRUNC. */
static void test_truncated(void **state)
{
    const char *path = "/tmp/fdx-test-capture-trunc.pcap";
    uint8_t data[8192];
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    FILE *fp = fopen(DATA "netflow/graylog-softflowd-v5-pcap.pcap", "rb");
    sink s = {0};
    size_t n;

    (void)state;
    assert_non_null(fp);
    n = fread(data, 1, sizeof(data), fp);
    fclose(fp);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n - 30, fp), n - 30);
    fclose(fp);
    assert_int_equal(fdx_read_capture(path, NULL, collect, &s, &st, &err),
                     FDX_ETRUNC);
    assert_int_equal(s.n, 2);        /* frames 1 and 2 hold 1 record each */
    assert_int_equal(st.flows, 2);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "offset"));
    unlink(path);
}

/*
 * Writes a pcap with frame f cut to 100 bytes (its wire length kept),
 * then, when full, f whole; the snap length is 100, or 200 when full.
 */
static const char *write_cut_pcap(const buf *f, int full)
{
    static char path[256];
    buf h = {{0}, 0};
    FILE *fp;

    snprintf(path, sizeof(path), "/tmp/fdx-test-capture-cut-%d.pcap",
             (int)getpid());
    put32le(&h, 0xa1b2c3d4); put32le(&h, 0x00040002); put32le(&h, 0);
    put32le(&h, 0); put32le(&h, full ? 200 : 100); put32le(&h, 1);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(h.b, 1, h.n, fp), h.n);
    for (int i = 0; i < 1 + full; i++) {
        size_t cap = i == 0 ? 100 : f->n;
        buf r = {{0}, 0};

        put32le(&r, 1700000001); put32le(&r, 0);
        put32le(&r, (uint32_t)cap); put32le(&r, (uint32_t)f->n);
        assert_int_equal(fwrite(r.b, 1, r.n, fp), r.n);
        assert_int_equal(fwrite(f->b, 1, cap, fp), cap);
    }
    fclose(fp);
    return path;
}

static void log_count(void *ud, int level, const char *line)
{
    (void)level;
    if (strstr(line, "event=snaplen-cut") != NULL)
        ++*(int *)ud;
}

/*
 * Export datagrams cut by the snap length are counted and skipped: a
 * capture of nothing else is an error naming the file and the snap length
 * (the review's snaplen200-truncated.pcap read as 0 flows and exit 0);
 * with other datagrams decoded, a warning.
 */
static void test_snaplen_cut(void **state)
{
    int warned = 0;
    fdx_logger log = {log_count, &warned, FDX_LOG_WARN};
    fdx_read_opts opts = {&log, NULL, NULL, NULL};
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    const char *path;
    sink s = {0};
    buf f;

    (void)state;
    ether(&f, 0, 0x0800);
    ip_udp(&f, IP4);                 /* 14 + 20 + 8 + 72 = 114 bytes */
    path = write_cut_pcap(&f, 0);
    assert_int_equal(fdx_read_capture(path, &opts, collect, &s, &st, &err),
                     FDX_ETRUNC);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "snap length (100 bytes) cut all 1 "
                                    "export datagrams"));
    assert_int_equal(st.skipped_frames, 1);
    path = write_cut_pcap(&f, 1);
    memset(&st, 0, sizeof(st));
    assert_int_equal(fdx_read_capture(path, &opts, collect, &s, &st, &err),
                     0);
    assert_int_equal(s.n, 1);
    assert_int_equal(st.skipped_frames, 1);
    assert_int_equal(warned, 1);
    unlink(path);
}

static void test_stop(void **state)
{
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    sink s = {0};

    (void)state;
    s.stop_after = 2;
    assert_int_equal(fdx_read_capture(DATA "netflow/softflowd-ipfix.pcap",
                                      NULL, collect, &s, &st, &err), -77);
    assert_int_equal(s.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet),
        cmocka_unit_test(test_cooked_raw_null),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_pcapng),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_snaplen_cut),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
