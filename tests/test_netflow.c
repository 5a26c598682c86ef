/*
 * Tests of the NetFlow v5 / v9 / IPFIX decoder: real exporters' captures
 * (tests/data/netflow, see its README.md) and crafted datagrams, among
 * them malformed ones that must be skipped without crashing.
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
#define DATA FDX_SOURCE_ROOT "/tests/data/netflow/"
#define CASES FDX_SOURCE_ROOT "/tests/data/exporters/"
#define MAX_FLOWS 512

typedef struct sink {
    fdx_flow f[MAX_FLOWS];
    size_t n;
    int stop_after; /* 0: never */
} sink;

static int collect(void *ud, const fdx_flow *f)
{
    sink *s = ud;

    if (s->n < MAX_FLOWS)
        s->f[s->n] = *f;
    s->n++;
    if (s->stop_after != 0 && s->n == (size_t)s->stop_after)
        return 42;
    return 0;
}

static sink *read_case(const char *name, fdx_read_stats *st)
{
    static sink s;
    char path[512];
    fdx_error err = {0, ""};
    int rc;

    memset(&s, 0, sizeof(s));
    memset(st, 0, sizeof(*st));
    snprintf(path, sizeof(path), DATA "%s.pcap", name);
    if (access(path, R_OK) != 0) /* the other real exporters' cases */
        snprintf(path, sizeof(path), CASES "%s.pcap", name);
    rc = fdx_read_capture(path, NULL, collect, &s, st, &err);
    if (rc != 0)
        fail_msg("%s: %d %s", name, rc, err.msg);
    assert_int_equal(st->flows, s.n);
    return &s;
}

/* ---------------------------------------------------------------- */
/* Real captures                                                     */
/* ---------------------------------------------------------------- */

/*
 * Every corpus export capture must give exactly the per-connection
 * octets/packets that nfpcapd wrote to the corpus nfcapd file.
 */
static void check_corpus(const char *name)
{
    char line[256], sa[64], da[64], fa[64], fb[64];
    unsigned sp, dp, pr;
    unsigned long long oct, pkt;
    fdx_read_stats st;
    sink *s = read_case(name, &st);
    FILE *fp = fopen(DATA "corpus-nfcapd.txt", "r");
    size_t found = 0;

    assert_non_null(fp);
    assert_int_equal(s->n, 200);
    while (fgets(line, sizeof(line), fp) != NULL) {
        assert_int_equal(sscanf(line, "%63s %u %63s %u %u %llu %llu", sa,
                                &sp, da, &dp, &pr, &oct, &pkt), 7);
        for (size_t i = 0; i < s->n; i++) {
            const fdx_flow *f = &s->f[i];
            fdx_addr_format(&f->src, fa, sizeof(fa));
            fdx_addr_format(&f->dst, fb, sizeof(fb));
            if (strcmp(fa, sa) || strcmp(fb, da) || f->sport != sp ||
                f->dport != dp || f->proto != pr)
                continue;
            assert_int_equal(f->octets, oct);
            assert_int_equal(f->packets, pkt);
            assert_false(f->flags & (FDX_FLOW_TIME_BAD | FDX_FLOW_SAMPLED));
            assert_true(f->first_ms >= 1796321100000ull);
            assert_true(f->last_ms <= 1796321400000ull);
            found++;
            break;
        }
    }
    fclose(fp);
    assert_int_equal(found, 200);
    assert_int_equal(st.bad_records + st.bad_datagrams + st.no_template, 0);
}

static void test_corpus_softflowd_v5(void **state)
{
    (void)state;
    check_corpus("softflowd-netflow-v5");
}

static void test_corpus_softflowd_v9(void **state)
{
    (void)state;
    check_corpus("softflowd-netflow-v9");
}

static void test_corpus_softflowd_ipfix(void **state)
{
    (void)state;
    check_corpus("softflowd-ipfix");
}

static void test_corpus_pmacctd_v9(void **state)
{
    (void)state;
    check_corpus("pmacctd-netflow-v9");
}

static void test_corpus_pmacctd_ipfix(void **state)
{
    (void)state;
    check_corpus("pmacctd-ipfix");
}

static void test_v5_count_mismatch(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("v5-corrupt-record-count", &st);

    (void)state;
    assert_int_equal(s->n, 60);           /* 30 that fit, twice */
    assert_int_equal(st.bad_records, 2);  /* each count mismatch */
    assert_int_equal(st.bad_datagrams, 0);
    assert_int_equal(s->f[0].octets, 3405774888u);
    assert_int_equal(s->f[0].source, FDX_SRC_NETFLOW5);
    assert_int_equal(s->f[0].domain, 67); /* engine id */
}

static void test_v5_sampling(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("graylog-softflowd-v5-pcap", &st);

    (void)state;
    assert_int_equal(s->n, 4);
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(s->f[i].sampling, 100);
        assert_true(s->f[i].flags & FDX_FLOW_SAMPLED);
    }
    assert_int_equal(s->f[0].octets, 84);
}

static void test_v9_header_count_ignored(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("softflowd-v9-header-count-data-only", &st);

    (void)state;
    assert_int_equal(s->n, 2);       /* header count says 2 flowsets */
    assert_int_equal(s->f[0].template_id, 2048);
    assert_false(fdx_addr_is_v4(&s->f[0].src));
    assert_int_equal(s->f[0].octets, 96);
    assert_int_equal(s->f[1].octets, 98);
    /* sampling announced by the options record ahead of the data */
    assert_int_equal(s->f[1].sampling, 100);
    assert_true(s->f[1].flags & FDX_FLOW_SAMPLED);

    s = read_case("graylog-softflowd-v9-concatenated", &st);
    assert_int_equal(s->n, 6);
    assert_int_equal(s->f[0].octets, 230);
    assert_int_equal(s->f[0].packets, 5);
}

static void test_v9_data_before_template(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("graylog-nprobe-v9-data-before-template-pcap", &st);

    (void)state;
    assert_int_equal(s->n, 15);
    assert_int_equal(st.no_template, 0);
    assert_int_equal(s->f[0].octets, 110);
    assert_int_equal(s->f[0].template_id, 257);
}

static void test_ipfix_varlen(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("netscaler-ipfix-varlen-enterprise", &st);

    (void)state;
    assert_int_equal(s->n, 3);
    assert_int_equal(s->f[0].octets, 40);
    assert_int_equal(s->f[1].octets, 1525);
    assert_int_equal(s->f[2].octets, 1541);
    assert_int_equal(st.no_template, 1);   /* set 280 never defined */
    /* microseconds fraction read as the exporter meant it */
    assert_int_equal(s->f[0].first_ms % 1000, 548);
}

static void test_v9_varlen_and_zero_len(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("h3c-v9-netstream-varstring", &st);

    (void)state;
    assert_int_equal(s->n, 1);
    assert_int_equal(s->f[0].octets, 702);
    assert_int_equal(s->f[0].packets, 9);
    assert_int_equal(s->f[0].sport, 137);

    s = read_case("v9-zero-length-template-fields", &st);
    assert_int_equal(s->n, 10);
    assert_int_equal(st.bad_records, 0);
}

static void test_v9_padding(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("cisco-aci-v9-zero-padded-templates", &st);

    (void)state;
    assert_int_equal(s->n, 3);
    assert_int_equal(st.bad_records, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s->f[i].octets, 99);
}

static void test_ipfix_reverse(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("ixia-ipfix-enterprise-fields", &st);

    (void)state;
    assert_int_equal(s->n, 3);
    assert_int_equal(s->f[2].rev_octets, 625);
    assert_int_equal(s->f[2].rev_packets, 6);
    assert_true(s->f[2].flags & FDX_FLOW_BIFLOW);
    assert_int_equal(s->f[1].domain, 1);
}

static void test_v9_nsel(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("cisco-asa-v9-nsel", &st);

    (void)state;
    assert_int_equal(s->n, 14);
    assert_int_equal(s->f[0].octets, 56);
    assert_int_equal(s->f[0].first_ms, 1444384067569ull);
    assert_int_equal(s->f[0].proto, 1);
}

static void test_ipfix_init_time(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("softflowd-ipfix-concatenated-capture", &st);

    (void)state;
    assert_int_equal(s->n, 12);
    assert_int_equal(s->f[0].octets, 260);
    /* IE 21/22 + systemInitTimeMilliseconds: 2015-05-13 */
    assert_true(s->f[0].first_ms > 1431500000000ull);
    assert_true(s->f[0].first_ms < 1431600000000ull);
    assert_false(s->f[0].flags & FDX_FLOW_TIME_BAD);
}

/* ---------------------------------------------------------------- */
/* Crafted datagrams                                                 */
/* ---------------------------------------------------------------- */

typedef struct buf {
    uint8_t b[2048];
    size_t n;
} buf;

static void put8(buf *b, unsigned v)
{
    b->b[b->n++] = (uint8_t)v;
}

static void put16(buf *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}

static void put32(buf *b, uint32_t v)
{
    put16(b, v >> 16);
    put16(b, v & 0xFFFF);
}

static void v9_header(buf *b, uint32_t seq, uint32_t source_id)
{
    b->n = 0;
    put16(b, 9);
    put16(b, 1);
    put32(b, 100000);      /* sysUptime ms */
    put32(b, 1700000000);  /* unix secs */
    put32(b, seq);
    put32(b, source_id);
}

static void ipfix_header(buf *b, uint32_t seq, uint32_t domain)
{
    b->n = 0;
    put16(b, 10);
    put16(b, 0); /* length, set by ipfix_done */
    put32(b, 1700000000);
    put32(b, seq);
    put32(b, domain);
}

static void ipfix_done(buf *b)
{
    b->b[2] = (uint8_t)(b->n >> 8);
    b->b[3] = (uint8_t)b->n;
}

/* Sets the length of the set that starts at off. */
static void set_done(buf *b, size_t off)
{
    size_t len = b->n - off;

    b->b[off + 2] = (uint8_t)(len >> 8);
    b->b[off + 3] = (uint8_t)len;
}

static fdx_nf_decoder *dec_new(const fdx_nf_limits *lim)
{
    fdx_nf_decoder *d = fdx_nf_decoder_new(lim, NULL);

    assert_non_null(d);
    return d;
}

static int feed(fdx_nf_decoder *d, const buf *b, sink *s)
{
    fdx_addr a;

    fdx_addr_parse(&a, "192.0.2.1");
    return fdx_nf_decode(d, &a, 2055, b->b, b->n, 1700000001000ull,
                         collect, s);
}

/* v9 template 256: src, dst (4), octets (2 bytes: reduced size), octets
 * again, pkts (4), first/last switched, proto, 85 total octets */
static void v9_template_256(buf *b)
{
    size_t off = b->n;

    put16(b, 0);
    put16(b, 0);
    put16(b, 256);
    put16(b, 8);
    put16(b, 8); put16(b, 4);
    put16(b, 12); put16(b, 4);
    put16(b, 1); put16(b, 2);
    put16(b, 1); put16(b, 4);
    put16(b, 2); put16(b, 4);
    put16(b, 22); put16(b, 4);
    put16(b, 21); put16(b, 4);
    put16(b, 4); put16(b, 1);
    set_done(b, off);
}

static void v9_data_256(buf *b, unsigned octets)
{
    size_t off = b->n;

    put16(b, 256);
    put16(b, 0);
    put32(b, 0x0A000001);
    put32(b, 0x0A000002);
    put16(b, octets);
    put32(b, 999999); /* the same element again: ignored */
    put32(b, 7);
    put32(b, 90000);  /* 10 s before the header uptime */
    put32(b, 99000);
    put8(b, 6);
    put8(b, 0);       /* padding */
    put8(b, 0);
    put8(b, 0);
    set_done(b, off);
}

static void test_crafted_v9_basic(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    fdx_read_stats st;
    sink *s = calloc(1, sizeof(*s));
    buf b;

    (void)state;
    v9_header(&b, 1, 7);
    v9_template_256(&b);
    v9_data_256(&b, 1234);
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].octets, 1234);
    assert_int_equal(s->f[0].packets, 7);
    assert_int_equal(s->f[0].proto, 6);
    assert_int_equal(s->f[0].domain, 7);
    assert_int_equal(s->f[0].exporter_port, 2055);
    assert_int_equal(s->f[0].first_ms, 1700000000000ull - 10000);
    assert_int_equal(s->f[0].last_ms, 1700000000000ull - 1000);
    assert_int_equal(s->f[0].flags, 0);

    /* sequence 1 -> 4: two datagrams lost */
    v9_header(&b, 4, 7);
    v9_data_256(&b, 5);
    assert_int_equal(feed(d, &b, s), 1);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.seq_lost, 2);
    assert_int_equal(st.datagrams, 2);

    /* another source id: its own session, no template there */
    v9_header(&b, 1, 8);
    v9_data_256(&b, 5);
    assert_int_equal(feed(d, &b, s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.no_template, 1);
    fdx_nf_decoder_free(d);
    free(s);
}

/* IPFIX: options record with systemInitTimeMilliseconds and a sampler,
 * then a record with uptime times and the sampler id. */
static void test_crafted_ipfix_options(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    size_t off;
    buf b;

    (void)state;
    ipfix_header(&b, 0, 3);
    off = b.n;                        /* options template 300 */
    put16(&b, 3); put16(&b, 0);
    put16(&b, 300); put16(&b, 4); put16(&b, 1);
    put16(&b, 302); put16(&b, 2);     /* scope: selectorId */
    put16(&b, 160); put16(&b, 8);     /* systemInitTimeMilliseconds */
    put16(&b, 305); put16(&b, 4);     /* samplingPacketInterval */
    put16(&b, 306); put16(&b, 4);     /* samplingPacketSpace */
    set_done(&b, off);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 301); put16(&b, 4);
    put16(&b, 1); put16(&b, 8);
    put16(&b, 22); put16(&b, 4);
    put16(&b, 21); put16(&b, 4);
    put16(&b, 302); put16(&b, 2);
    set_done(&b, off);
    off = b.n;
    put16(&b, 300); put16(&b, 0);
    put16(&b, 5);                     /* selector 5 */
    put32(&b, 0x0000018B); put32(&b, 0xCFE56800u); /* init ms */
    put32(&b, 1);                     /* 1 packet taken ... */
    put32(&b, 99);                    /* ... 99 skipped: 1 in 100 */
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 0); /* options are not flows */

    ipfix_header(&b, 1, 3);
    off = b.n;
    put16(&b, 301); put16(&b, 0);
    put32(&b, 0); put32(&b, 5000);
    put32(&b, 1000); put32(&b, 2000);
    put16(&b, 5);
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].octets, 5000);
    assert_int_equal(s->f[0].source, FDX_SRC_IPFIX);
    assert_int_equal(s->f[0].first_ms, 0x0000018BCFE56800ull + 1000);
    assert_int_equal(s->f[0].last_ms, 0x0000018BCFE56800ull + 2000);
    assert_int_equal(s->f[0].sampling, 100);
    assert_true(s->f[0].flags & FDX_FLOW_SAMPLED);
    fdx_nf_decoder_free(d);
    free(s);
}

static void test_crafted_ipfix_withdraw(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    ipfix_header(&b, 0, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 400); put16(&b, 2);
    put16(&b, 1); put16(&b, 4);
    put16(&b, 0x8000 | 1); put16(&b, 4); put32(&b, 29305); /* reverse */
    set_done(&b, off);
    off = b.n;
    put16(&b, 400); put16(&b, 0);
    put32(&b, 10); put32(&b, 20);
    put32(&b, 11); put32(&b, 21);
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 2);
    assert_int_equal(s->f[1].rev_octets, 21);
    assert_true(s->f[1].flags & FDX_FLOW_BIFLOW);
    assert_true(s->f[1].flags & FDX_FLOW_NO_TIME);

    /* withdraw 400, then data for it waits for a template again */
    ipfix_header(&b, 2, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 400); put16(&b, 0);
    set_done(&b, off);
    off = b.n;
    put16(&b, 400); put16(&b, 0);
    put32(&b, 10); put32(&b, 20);
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.no_template, 1);
    assert_int_equal(st.seq_lost, 0);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * A template with both address families (as Cisco IOS XR and Procera
 * send): the family holding a non-zero address is reported, and where
 * both do, the one ipVersion (IE 60) names, else the first.
 */
static void dual_record(buf *b, uint32_t v4, int v6_set, unsigned ipver)
{
    put32(b, v4);                       /* 8 */
    put32(b, v4 ? v4 + 1 : 0);          /* 12 */
    for (int i = 0; i < 16; i++)        /* 27 */
        put8(b, v6_set && i == 15 ? 1 : v6_set && i == 0 ? 0x20 : 0);
    for (int i = 0; i < 16; i++)        /* 28 */
        put8(b, v6_set && i == 15 ? 2 : v6_set && i == 0 ? 0x20 : 0);
    put8(b, ipver);                     /* 60 */
    put32(b, 1000);                     /* 1 */
}

static void test_crafted_dual_family(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    static const unsigned ies[][2] = {{8, 4}, {12, 4}, {27, 16}, {28, 16},
                                      {60, 1}, {1, 4}};
    char a[FDX_ADDRSTRLEN];
    size_t off;
    buf b;

    (void)state;
    ipfix_header(&b, 0, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 300); put16(&b, 6);
    for (int i = 0; i < 6; i++) {
        put16(&b, ies[i][0]);
        put16(&b, ies[i][1]);
    }
    set_done(&b, off);
    off = b.n;
    put16(&b, 300); put16(&b, 0);
    dual_record(&b, 0xC0000201, 0, 0);  /* v4 only */
    dual_record(&b, 0, 1, 0);           /* v6 only */
    dual_record(&b, 0xC0000205, 1, 4);  /* both, ipVersion 4 */
    dual_record(&b, 0xC0000209, 1, 0);  /* both: v4 came first */
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 4);
    assert_string_equal(fdx_addr_format(&s->f[0].src, a, sizeof(a)),
                        "192.0.2.1");
    assert_string_equal(fdx_addr_format(&s->f[0].dst, a, sizeof(a)),
                        "192.0.2.2");
    assert_string_equal(fdx_addr_format(&s->f[1].src, a, sizeof(a)),
                        "2000::1");
    assert_string_equal(fdx_addr_format(&s->f[1].dst, a, sizeof(a)),
                        "2000::2");
    assert_string_equal(fdx_addr_format(&s->f[2].src, a, sizeof(a)),
                        "192.0.2.5");
    assert_string_equal(fdx_addr_format(&s->f[3].src, a, sizeof(a)),
                        "192.0.2.9");
    fdx_nf_decoder_free(d);
    free(s);
}

/* NSEL counters count only on teardown and update events. */
static void test_nsel_events(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("cisco-asa-v9-many-templates", &st);
    size_t creates = 0;

    (void)state;
    assert_int_equal(s->n, 19);
    for (size_t i = 0; i < s->n; i++) {
        if (s->f[i].fw_event == 1) {
            creates++;
            assert_int_equal(s->f[i].octets, 0);
            continue;
        }
        assert_true(s->f[i].fw_event == 2 || s->f[i].fw_event == 5);
        assert_true(s->f[i].flags & FDX_FLOW_BIFLOW);
    }
    assert_int_equal(creates, 4);
    assert_int_equal(s->f[0].fw_event, 2);
    assert_int_equal(s->f[0].octets, 81);      /* IE 231 */
    assert_int_equal(s->f[0].rev_octets, 763); /* IE 232 */
}

static void nsel_record(buf *b, unsigned event, uint32_t fwd, uint32_t rev)
{
    put32(b, 0x0A000001);
    put32(b, 0x0A000002);
    put8(b, event);
    put32(b, fwd); put32(b, rev);
    put32(b, 3); put32(b, 4);
}

/* Crafted: a create event with counters, teardown, a denied flow. */
static void test_crafted_nsel_events(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    size_t off;
    buf b;

    (void)state;
    v9_header(&b, 1, 0);
    off = b.n;
    put16(&b, 0); put16(&b, 0);
    put16(&b, 300); put16(&b, 7);
    put16(&b, 8); put16(&b, 4);
    put16(&b, 12); put16(&b, 4);
    put16(&b, 40005); put16(&b, 1);   /* NF_F_FW_EVENT */
    put16(&b, 231); put16(&b, 4);
    put16(&b, 232); put16(&b, 4);
    put16(&b, 298); put16(&b, 4);
    put16(&b, 299); put16(&b, 4);
    set_done(&b, off);
    off = b.n;
    put16(&b, 300); put16(&b, 0);
    nsel_record(&b, 1, 60, 0);        /* create: first packet only */
    nsel_record(&b, 2, 6000, 9000);   /* teardown */
    nsel_record(&b, 3, 40, 0);        /* denied */
    nsel_record(&b, 5, 100, 200);     /* update */
    set_done(&b, off);
    assert_int_equal(feed(d, &b, s), 4);
    assert_int_equal(s->f[0].fw_event, 1);
    assert_int_equal(s->f[0].octets, 0);
    assert_int_equal(s->f[0].packets, 0);
    assert_false(s->f[0].flags & FDX_FLOW_BIFLOW);
    assert_int_equal(s->f[1].octets, 6000);
    assert_int_equal(s->f[1].packets, 3);
    assert_int_equal(s->f[1].rev_octets, 9000);
    assert_int_equal(s->f[1].rev_packets, 4);
    assert_true(s->f[1].flags & FDX_FLOW_BIFLOW);
    assert_int_equal(s->f[2].octets, 0);
    assert_int_equal(s->f[3].octets, 100);
    assert_int_equal(s->f[3].rev_octets, 200);
    fdx_nf_decoder_free(d);
    free(s);
}

typedef struct sessions {
    fdx_nf_session_stats s[8];
    size_t n;
} sessions;

static void collect_session(void *ud, const fdx_nf_session_stats *st)
{
    sessions *ss = ud;

    if (ss->n < 8)
        ss->s[ss->n] = *st;
    ss->n++;
}

static const fdx_nf_session_stats *session_of(const sessions *ss,
                                              uint32_t domain)
{
    for (size_t i = 0; i < ss->n && i < 8; i++)
        if (ss->s[i].domain == domain)
            return &ss->s[i];
    fail_msg("no session of domain %u", (unsigned)domain);
    return NULL;
}

/* Sequence gaps per domain: v9 counts datagrams, IPFIX records. */
static void test_seq_per_domain(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    sessions ss = {0};
    const fdx_nf_session_stats *a, *c;
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    v9_header(&b, 1, 7);
    v9_template_256(&b);
    v9_data_256(&b, 1);
    feed(d, &b, s);
    v9_header(&b, 1, 8);
    v9_template_256(&b);
    feed(d, &b, s);
    v9_header(&b, 5, 7);                /* 2, 3 and 4 lost */
    v9_data_256(&b, 1);
    feed(d, &b, s);
    v9_header(&b, 2, 8);                /* nothing lost */
    v9_data_256(&b, 1);
    feed(d, &b, s);
    for (uint32_t seq = 0; seq < 40; seq += 30) {
        ipfix_header(&b, seq, 9);       /* 2 records, then 28 lost */
        off = b.n;
        put16(&b, 2); put16(&b, 0);
        put16(&b, 400); put16(&b, 1); put16(&b, 1); put16(&b, 4);
        set_done(&b, off);
        off = b.n;
        put16(&b, 400); put16(&b, 0); put32(&b, 1); put32(&b, 2);
        set_done(&b, off);
        ipfix_done(&b);
        assert_int_equal(feed(d, &b, s), 2);
    }
    fdx_nf_decoder_sessions(d, collect_session, &ss);
    assert_int_equal(ss.n, 3);
    a = session_of(&ss, 7);
    assert_int_equal(a->seq_lost, 3);
    assert_int_equal(a->datagrams, 2);
    assert_int_equal(a->flows, 2);
    assert_int_equal(a->templates, 1);
    assert_int_equal(a->version, 9);
    assert_int_equal(a->port, 2055);
    assert_int_equal(session_of(&ss, 8)->seq_lost, 0);
    c = session_of(&ss, 9);
    assert_int_equal(c->seq_lost, 28);
    assert_int_equal(c->version, 10);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.seq_lost, 31);
    fdx_nf_decoder_free(d);
    free(s);
}

/* The same through the capture reader, on softflowd's IPFIX export. */
static void test_seq_sessions_capture(void **state)
{
    sessions ss = {0};
    fdx_read_opts ro = {NULL, NULL, collect_session, &ss};
    fdx_read_stats st = {0};
    fdx_error err = {0, ""};
    sink *s = calloc(1, sizeof(*s));

    (void)state;
    assert_int_equal(fdx_read_capture(DATA "softflowd-ipfix.pcap", &ro,
                                      collect, s, &st, &err), 0);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.s[0].version, 10);
    assert_int_equal(ss.s[0].datagrams, 7);
    assert_int_equal(ss.s[0].flows, 200);
    /* softflowd counts the current message's records too: see
     * docs/decoder-errata.md, "Sequence numbers" */
    assert_int_equal(ss.s[0].seq_lost, 7);
    assert_int_equal(st.seq_lost, 7);

    memset(&ss, 0, sizeof(ss));            /* v5: records are numbered */
    assert_int_equal(fdx_read_capture(DATA "softflowd-netflow-v5.pcap",
                                      &ro, collect, s, &st, &err), 0);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.s[0].version, 5);
    assert_int_equal(ss.s[0].flows, 200);
    assert_int_equal(ss.s[0].seq_lost, 0);
    free(s);
}

typedef struct log_sink {
    unsigned lines;
    char last[512];
} log_sink;

static void log_collect(void *ud, int level, const char *line)
{
    log_sink *ls = ud;

    (void)level;
    ls->lines++;
    snprintf(ls->last, sizeof(ls->last), "%s", line);
}

/*
 * A malformed datagram's message names the exporter, port, version and
 * offset; a flood of them is rate-limited but every one is counted.
 */
static void test_bad_datagram_messages(void **state)
{
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_WARN};
    fdx_nf_decoder *d = fdx_nf_decoder_new(NULL, &log);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    buf b;

    (void)state;
    v9_header(&b, 1, 3);
    b.n = 12;                        /* v9 header cut short */
    assert_int_equal(feed(d, &b, s), FDX_ETRUNC);
    assert_non_null(strstr(ls.last, "exporter=192.0.2.1 port=2055 "
                                    "version=9 length=12 offset=0"));
    v9_header(&b, 2, 3);
    put16(&b, 256); put16(&b, 4000); /* set beyond the datagram */
    assert_int_equal(feed(d, &b, s), 0);
    assert_non_null(strstr(ls.last, "exporter=192.0.2.1 port=2055 "
                                    "version=9 domain=3 template=256 "
                                    "offset=20"));
    b.n = 12;
    for (int i = 0; i < 1998; i++)
        (void)feed(d, &b, s);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.bad_datagrams, 1999);
    assert_int_equal(st.bad_records, 1);
    assert_int_equal(st.datagrams, 1);
    /* 50 lines in full, then one per 1000 events (the 1000th) */
    assert_int_equal(ls.lines, 51);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * Sampling from v9 options records, matched by scope: per interface
 * (softflowd's layout: scope 2 = interface, IE 34/35) and per sampler id
 * (the layout of v9-ie150-ie151-flow-seconds' template 257: IE 48/49/50).
 */
static void test_crafted_v9_sampling_scope(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    static const unsigned ifs[] = {1, 2, 3};
    size_t off;
    buf b;

    (void)state;
    v9_header(&b, 1, 0);
    off = b.n;                        /* options templates 256 and 257 */
    put16(&b, 1); put16(&b, 0);
    put16(&b, 256); put16(&b, 4); put16(&b, 8);
    put16(&b, 2); put16(&b, 4);       /* scope: interface */
    put16(&b, 34); put16(&b, 4); put16(&b, 35); put16(&b, 1);
    put16(&b, 257); put16(&b, 4); put16(&b, 12);
    put16(&b, 1); put16(&b, 4);       /* scope: system */
    put16(&b, 48); put16(&b, 1); put16(&b, 49); put16(&b, 1);
    put16(&b, 50); put16(&b, 4);
    set_done(&b, off);
    off = b.n;                        /* if 1: 1 in 100, if 2: none */
    put16(&b, 256); put16(&b, 0);
    put32(&b, 1); put32(&b, 100); put8(&b, 1);
    put32(&b, 2); put32(&b, 1); put8(&b, 1);
    put8(&b, 0); put8(&b, 0);         /* padding */
    set_done(&b, off);
    off = b.n;                        /* sampler 7: 1 in 50 */
    put16(&b, 257); put16(&b, 0);
    put32(&b, 0); put8(&b, 7); put8(&b, 2); put32(&b, 50);
    set_done(&b, off);
    off = b.n;                        /* flows: IE 10, 1, 48 */
    put16(&b, 0); put16(&b, 0);
    put16(&b, 300); put16(&b, 3);
    put16(&b, 10); put16(&b, 2); put16(&b, 1); put16(&b, 4);
    put16(&b, 48); put16(&b, 1);
    set_done(&b, off);
    off = b.n;
    put16(&b, 300); put16(&b, 0);
    for (int i = 0; i < 3; i++) {
        put16(&b, ifs[i]); put32(&b, 1000); put8(&b, 0);
    }
    put16(&b, 2); put32(&b, 1000); put8(&b, 7);
    set_done(&b, off);
    assert_int_equal(feed(d, &b, s), 4);
    assert_int_equal(s->f[0].sampling, 100);   /* interface 1 */
    assert_true(s->f[0].flags & FDX_FLOW_SAMPLED);
    assert_int_equal(s->f[1].sampling, 1);     /* interface 2 */
    assert_false(s->f[1].flags & FDX_FLOW_SAMPLED);
    assert_int_equal(s->f[2].sampling, 100);   /* never announced */
    assert_true(s->f[2].flags & FDX_FLOW_SAMPLED);
    assert_int_equal(s->f[3].sampling, 50);    /* sampler id 7 first */
    fdx_nf_decoder_free(d);
    free(s);
}

/* 8-byte first/last switched holding epoch ms; reverse total counts. */
static void test_crafted_abs_switched_rev_totals(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    size_t off;
    buf b;

    (void)state;
    v9_header(&b, 1, 0);
    off = b.n;
    put16(&b, 0); put16(&b, 0);
    put16(&b, 256); put16(&b, 3);
    put16(&b, 1); put16(&b, 4);
    put16(&b, 22); put16(&b, 8); put16(&b, 21); put16(&b, 8);
    set_done(&b, off);
    off = b.n;
    put16(&b, 256); put16(&b, 0);
    put32(&b, 10);                        /* epoch ms: absolute */
    put32(&b, 0x0000018B); put32(&b, 0xCFE56800u);
    put32(&b, 0x0000018B); put32(&b, 0xCFE56800u + 500);
    put32(&b, 11);                        /* 8 bytes of uptime ms */
    put32(&b, 0); put32(&b, 90000);
    put32(&b, 0); put32(&b, 99000);
    set_done(&b, off);
    assert_int_equal(feed(d, &b, s), 2);
    assert_int_equal(s->f[0].first_ms, 0x0000018BCFE56800ull);
    assert_int_equal(s->f[0].last_ms, 0x0000018BCFE56800ull + 500);
    assert_int_equal(s->f[1].first_ms, 1700000000000ull - 10000);
    assert_int_equal(s->f[1].last_ms, 1700000000000ull - 1000);

    ipfix_header(&b, 0, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 400); put16(&b, 4);
    put16(&b, 85); put16(&b, 4);
    put16(&b, 0x8000 | 85); put16(&b, 4); put32(&b, 29305);
    put16(&b, 0x8000 | 86); put16(&b, 4); put32(&b, 29305);
    put16(&b, 0x8000 | 1); put16(&b, 4); put32(&b, 29305);
    set_done(&b, off);
    off = b.n;
    put16(&b, 400); put16(&b, 0);
    put32(&b, 100); put32(&b, 5000); put32(&b, 7); put32(&b, 4000);
    set_done(&b, off);
    ipfix_done(&b);
    s->n = 0;
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].octets, 100);
    assert_int_equal(s->f[0].rev_octets, 4000);  /* delta over total */
    assert_int_equal(s->f[0].rev_packets, 7);
    assert_true(s->f[0].flags & FDX_FLOW_BIFLOW);
    fdx_nf_decoder_free(d);
    free(s);
}

/* Time forms of real exporters: IE 150/151 seconds, 0xFFFFFFFF uptime. */
static void test_time_forms_real(void **state)
{
    fdx_read_stats st;
    sink *s = read_case("v9-ie150-ie151-flow-seconds", &st);

    (void)state;
    assert_int_equal(s->n, 2);
    assert_int_equal(s->f[0].first_ms, 1512147866000ull); /* 17:04:26 */
    assert_int_equal(s->f[1].last_ms, 1512147869000ull);
    assert_int_equal(s->f[0].flags, 0);

    s = read_case("softflowd-v5-concatenated-capture", &st);
    assert_true(s->f[0].flags & FDX_FLOW_TIME_BAD);   /* 0xFFFFFFFF */
    assert_false(s->f[2].flags & FDX_FLOW_TIME_BAD);
    assert_int_equal(s->f[2].first_ms, 1430591888275ull);
}

/* Crafted: nanosecond NTP times (156/157), start/end deltas (158/159). */
static void test_crafted_ntp_and_deltas(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    size_t off;
    buf b;

    (void)state;
    ipfix_header(&b, 0, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0);
    put16(&b, 300); put16(&b, 3);
    put16(&b, 1); put16(&b, 4); put16(&b, 156); put16(&b, 8);
    put16(&b, 157); put16(&b, 8);
    put16(&b, 301); put16(&b, 3);
    put16(&b, 1); put16(&b, 4); put16(&b, 158); put16(&b, 4);
    put16(&b, 159); put16(&b, 4);
    set_done(&b, off);
    off = b.n;
    put16(&b, 300); put16(&b, 0);
    put32(&b, 1);
    put32(&b, 3908988800u); put32(&b, 0x80000000u); /* .5 s */
    put32(&b, 3908988801u); put32(&b, 0x40000000u); /* 1.25 s */
    set_done(&b, off);
    off = b.n;
    put16(&b, 301); put16(&b, 0);
    put32(&b, 2); put32(&b, 2000000); put32(&b, 1000000);
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 2);
    assert_int_equal(s->f[0].first_ms, 1700000000500ull);
    assert_int_equal(s->f[0].last_ms, 1700000001250ull);
    assert_int_equal(s->f[1].first_ms, 1699999998000ull);
    assert_int_equal(s->f[1].last_ms, 1699999999000ull);
    /* no address fields: only the no-address flag may be set */
    assert_int_equal((s->f[0].flags | s->f[1].flags) & ~FDX_FLOW_NO_ADDR, 0);
    fdx_nf_decoder_free(d);
    free(s);
}

/* A template redefined under the same id: later data use the new one. */
static void test_crafted_redefinition(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    for (int k = 0; k < 2; k++) {
        v9_header(&b, 1 + (uint32_t)k, 1);
        off = b.n;
        put16(&b, 0); put16(&b, 0);
        put16(&b, 256); put16(&b, 2);
        put16(&b, k ? 2 : 1); put16(&b, 4);    /* octets, packets ... */
        put16(&b, k ? 1 : 2); put16(&b, 4);    /* ... then swapped */
        set_done(&b, off);
        off = b.n;
        put16(&b, 256); put16(&b, 0);
        put32(&b, 1000); put32(&b, 3);
        set_done(&b, off);
        assert_int_equal(feed(d, &b, s), 1);
    }
    assert_int_equal(s->f[0].octets, 1000);
    assert_int_equal(s->f[1].octets, 3);
    assert_int_equal(s->f[1].packets, 1000);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.bad_records + st.limit_hits, 0);

    fdx_nf_decoder_free(d);
    free(s);

    /* the real exporter resending its templates in every datagram */
    s = read_case("streamcore-v9-template-per-datagram", &st);
    assert_int_equal(s->n, 4);
    assert_int_equal(s->f[0].octets, 3943);
}

/*
 * A v5 count below the records present (the review's v5-count0.pcap and
 * v5-count-lt-fit.pcap: counts 0 and 2 for 3 and 5 records) decodes what
 * is counted, as before, but is now counted and logged like a count above
 * them, rate-limited the same way.
 */
static void test_v5_count_below_fit(void **state)
{
    static const unsigned count[2] = {0, 2}, nrec[2] = {3, 5};
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_WARN};
    fdx_nf_decoder *d = fdx_nf_decoder_new(NULL, &log);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    buf b;

    (void)state;
    for (int k = 0; k < 2; k++) {
        b.n = 0;
        put16(&b, 5); put16(&b, count[k]);
        put32(&b, 5000); put32(&b, 1700000000); put32(&b, 0);
        put32(&b, 10 * (uint32_t)k); put16(&b, 0); put16(&b, 0);
        memset(b.b + b.n, 0, 48 * nrec[k]);
        b.n += 48 * nrec[k];
        assert_int_equal(feed(d, &b, s), (int)count[k]);
        assert_int_equal(ls.lines, k + 1);
        assert_non_null(strstr(ls.last, "v5 count below the records in "
                                        "the datagram exporter=192.0.2.1 "
                                        "port=2055 version=5"));
    }
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.bad_records, 2);
    assert_int_equal(st.flows, 2);
    fdx_nf_decoder_free(d);
    free(s);
}

static void test_crafted_v5_times(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    buf b = {{0}, 0};

    (void)state;
    put16(&b, 5); put16(&b, 2);
    put32(&b, 5000);                 /* uptime 5 s */
    put32(&b, 1700000000); put32(&b, 250000000); /* .250 s */
    put32(&b, 0); put8(&b, 0); put8(&b, 1);
    put16(&b, 0x4000 | 10);          /* mode 1, 1 in 10 */
    for (int i = 0; i < 2; i++) {
        size_t start = b.n;
        memset(b.b + start, 0, 48);
        b.n += 16;
        put32(&b, 3); put32(&b, 300);
        put32(&b, i == 0 ? 0xFFFFFFFFu : 0xFFFFF000u); /* wraps */
        put32(&b, 4000);
        b.n = start + 48;
    }
    assert_int_equal(feed(d, &b, s), 2);
    assert_true(s->f[0].flags & FDX_FLOW_TIME_BAD);
    assert_int_equal(s->f[0].sampling, 10);
    assert_true(s->f[0].flags & FDX_FLOW_SAMPLED);
    /* 0xFFFFF000 is 4096 ms before uptime 0: 9096 ms before export */
    assert_int_equal(s->f[1].first_ms, 1700000000250ull - 9096);
    assert_int_equal(s->f[1].last_ms, 1700000000250ull - 1000);
    assert_false(s->f[1].flags & FDX_FLOW_TIME_BAD);
    fdx_nf_decoder_free(d);
    free(s);
}

/* ---------------------------------------------------------------- */
/* Hostile input                                                     */
/* ---------------------------------------------------------------- */

static void test_malformed_sets(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    /* truncated headers */
    b.n = 0;
    put16(&b, 9); put16(&b, 1); put32(&b, 0);
    assert_int_equal(feed(d, &b, s), FDX_ETRUNC);
    b.n = 3;
    b.b[0] = 0; b.b[1] = 10;
    assert_int_equal(feed(d, &b, s), FDX_ETRUNC);
    b.b[1] = 5;
    assert_int_equal(feed(d, &b, s), FDX_ETRUNC);
    b.b[1] = 7;
    assert_int_equal(feed(d, &b, s), FDX_EVERSION);

    /* template, then a set of length 0 with junk after it */
    v9_header(&b, 1, 1);
    v9_template_256(&b);
    put16(&b, 256); put16(&b, 0); put32(&b, 0xDEADBEEF);
    assert_int_equal(feed(d, &b, s), 0);

    /* a set longer than the datagram; the set before it still counts */
    v9_header(&b, 2, 1);
    v9_data_256(&b, 77);
    put16(&b, 256); put16(&b, 4000); put32(&b, 1);
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].octets, 77);

    /* template claiming 60000 fields in a 16-byte set */
    v9_header(&b, 3, 1);
    off = b.n;
    put16(&b, 0); put16(&b, 0);
    put16(&b, 300); put16(&b, 60000);
    put16(&b, 1); put16(&b, 4);
    put16(&b, 2); put16(&b, 4);
    set_done(&b, off);
    assert_int_equal(feed(d, &b, s), 0);

    /* v9 field of length 0xFFFF (variable), record cut short */
    v9_header(&b, 4, 1);
    off = b.n;
    put16(&b, 0); put16(&b, 0);
    put16(&b, 301); put16(&b, 2);
    put16(&b, 1); put16(&b, 4);
    put16(&b, 82); put16(&b, 0xFFFF);
    set_done(&b, off);
    off = b.n;
    put16(&b, 301); put16(&b, 0);
    put32(&b, 5); put8(&b, 255); put16(&b, 9000); put8(&b, 1);
    set_done(&b, off);
    assert_int_equal(feed(d, &b, s), 0);

    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.bad_datagrams, 4);
    assert_int_equal(st.bad_records, 4);
    fdx_nf_decoder_free(d);
    free(s);
}

static void test_limits(void **state)
{
    fdx_nf_limits lim = {1, 1, 4, 64, 0, 0, 0};
    fdx_nf_decoder *d = dec_new(&lim);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    v9_header(&b, 1, 1);
    v9_template_256(&b);             /* 8 fields > 4: refused */
    assert_int_equal(feed(d, &b, s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.limit_hits, 1);

    v9_header(&b, 2, 2);             /* a second session: refused */
    assert_int_equal(feed(d, &b, s), FDX_ELIMIT);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.datagrams, 1);
    assert_int_equal(st.bad_datagrams, 0);

    v9_header(&b, 2, 1);             /* two templates, one allowed */
    off = b.n;
    put16(&b, 0); put16(&b, 0);
    put16(&b, 260); put16(&b, 1); put16(&b, 1); put16(&b, 4);
    put16(&b, 261); put16(&b, 1); put16(&b, 2); put16(&b, 4);
    set_done(&b, off);
    for (int i = 0; i < 3; i++) {    /* 3 x 24 bytes of early data */
        off = b.n;
        put16(&b, 999); put16(&b, 0);
        for (int k = 0; k < 6; k++)
            put32(&b, 1);
        set_done(&b, off);
    }
    assert_int_equal(feed(d, &b, s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.limit_hits, 4);  /* + session, template, pending */
    assert_int_equal(st.no_template, 3); /* 1 dropped + 2 still waiting */
    fdx_nf_decoder_free(d);
    free(s);
}

/* IPFIX template set with one template of nfields 4-byte fields. */
static void ipfix_template_n(buf *b, uint16_t id, unsigned nfields)
{
    size_t off = b->n;

    put16(b, 2); put16(b, 0);
    put16(b, id); put16(b, nfields);
    for (unsigned f = 0; f < nfields; f++) {
        put16(b, 1 + f);
        put16(b, nfields ? 4 : 0);
    }
    set_done(b, off);
}

/*
 * max_template_bytes: a refreshed or redefined template is charged once,
 * a withdrawn one gives its bytes back.
 */
static void test_template_memory_cap(void **state)
{
    fdx_nf_limits lim = {0, 0, 0, 0, 2048, 0, 0};
    fdx_nf_decoder *d = dec_new(&lim);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    for (uint32_t i = 0; i < 100; i++) { /* 100 x 800 bytes of fields */
        ipfix_header(&b, 0, 1);
        ipfix_template_n(&b, 300, 100 - i % 2);
        ipfix_done(&b);
        feed(d, &b, s);
    }
    ipfix_header(&b, 0, 1);
    ipfix_template_n(&b, 301, 200);      /* 1600 more: over 2048 */
    ipfix_done(&b);
    feed(d, &b, s);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.limit_hits, 1);

    ipfix_header(&b, 0, 1);              /* withdraw 300, then 301 fits */
    off = b.n;
    put16(&b, 2); put16(&b, 0); put16(&b, 300); put16(&b, 0);
    set_done(&b, off);
    ipfix_template_n(&b, 301, 200);
    off = b.n;
    put16(&b, 301); put16(&b, 0);
    for (int f = 0; f < 200; f++)
        put32(&b, f == 0 ? 1234 : 0);
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].octets, 1234);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.limit_hits, 1);
    fdx_nf_decoder_free(d);
    free(s);
}

/* An IPFIX data set of template id: one record of nfields 4-byte values. */
static void ipfix_data_n(buf *b, uint16_t id, unsigned nfields)
{
    size_t off = b->n;

    put16(b, id); put16(b, 0);
    for (unsigned f = 0; f < nfields; f++)
        put32(b, 0x01020304u + f);
    set_done(b, off);
}

/*
 * A redefinition refused by a cap withdraws the template it would have
 * replaced: the data that follows is of the new layout, and reading it
 * with the old one gave junk records (v9-redefine-over-field-limit.pcap
 * of the 2026-12-04 review: 14 of them).  Both caps: max_fields and
 * max_template_bytes.
 */
static void test_refused_redefinition(void **state)
{
    fdx_nf_limits lim[2] = {{0, 0, 8, 0, 0, 0, 0},
                             {0, 0, 0, 0, 1024, 0, 0}};
    unsigned big[2] = {9, 120}; /* 9 > 8 fields; 960 bytes of fields */
    fdx_read_stats st;
    sink *s = calloc(1, sizeof(*s));
    buf b;

    (void)state;
    for (int k = 0; k < 2; k++) {
        fdx_nf_decoder *d = dec_new(&lim[k]);

        ipfix_header(&b, 0, 1);
        ipfix_template_n(&b, 300, 2);
        ipfix_data_n(&b, 300, 2);
        ipfix_done(&b);
        assert_int_equal(feed(d, &b, s), 1);
        ipfix_header(&b, 1, 1);
        ipfix_template_n(&b, 300, big[k]);   /* refused */
        ipfix_data_n(&b, 300, big[k]);
        ipfix_done(&b);
        assert_int_equal(feed(d, &b, s), 0); /* not with the old layout */
        fdx_nf_decoder_stats(d, &st);
        assert_int_equal(st.limit_hits, 1);
        assert_int_equal(st.no_template, 1);
        assert_int_equal(st.flows, 1);
        fdx_nf_decoder_free(d);
    }
    free(s);
}

/*
 * What follows the last record of a data set is padding only when it is
 * zero bytes or shorter than 4 (nprobe's stale alignment bytes); a longer
 * non-zero remainder is a cut record, counted and logged.  The review's
 * v9-truncated-last-record.pcap (20 bytes of a 21-byte third record) and
 * ipfix-setlen-odd.pcap (a set length one short of its only record) were
 * read as padding, without a trace.
 */
static void test_cut_last_record(void **state)
{
    static const struct { unsigned n, byte, bad; } tail[] = {
        {20, 0x41, 1}, {20, 0, 0}, {3, 0x41, 0}, {4, 0x41, 1},
    };
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_WARN};
    fdx_nf_decoder *d = fdx_nf_decoder_new(NULL, &log);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    uint64_t bad = 0;
    size_t off;
    buf b;

    (void)state;
    for (unsigned k = 0; k < 4; k++) {
        ipfix_header(&b, 2 * k, 1);
        ipfix_template_n(&b, 300, 6);    /* 24-byte records */
        off = b.n;
        put16(&b, 300); put16(&b, 0);
        for (int f = 0; f < 12; f++)
            put32(&b, 1);
        for (unsigned i = 0; i < tail[k].n; i++)
            put8(&b, tail[k].byte);
        set_done(&b, off);
        ipfix_done(&b);
        assert_int_equal(feed(d, &b, s), 2);
        fdx_nf_decoder_stats(d, &st);
        bad += tail[k].bad;
        assert_int_equal(st.bad_records, bad);
    }
    assert_int_equal(ls.lines, 2);
    assert_non_null(strstr(ls.last, "record overruns its set exporter="
                                    "192.0.2.1 port=2055 version=10 "
                                    "domain=1 template=300 offset=100"));
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * Integer elements longer than their type (the review's
 * ipfix-oversized-ints.pcap: 4-byte ports, a 2-byte protocol, 16-byte
 * octets, which read as truncated ports and 0 octets): read when the
 * value fits, else the record is bad; never a silently wrong value.
 */
static void test_oversized_ints(void **state)
{
    /* sport, dport, proto, octets (16 bytes), packets */
    static const uint32_t rec[4][4] = {
        {1234, 80, 6, 0},          /* fits: decoded */
        {0x12345678u, 80, 6, 0},   /* port beyond 16 bits */
        {1234, 80, 0x0106, 0},     /* protocol beyond 8 bits */
        {1234, 80, 6, 1},          /* octets beyond 64 bits */
    };
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    size_t off;
    buf b;

    (void)state;
    ipfix_header(&b, 0, 1);
    off = b.n;
    put16(&b, 2); put16(&b, 0); put16(&b, 256); put16(&b, 5);
    put16(&b, 7); put16(&b, 4); put16(&b, 11); put16(&b, 4);
    put16(&b, 4); put16(&b, 2); put16(&b, 1); put16(&b, 16);
    put16(&b, 2); put16(&b, 4);
    set_done(&b, off);
    off = b.n;
    put16(&b, 256); put16(&b, 0);
    for (int i = 0; i < 4; i++) {
        put32(&b, rec[i][0]); put32(&b, rec[i][1]); put16(&b, rec[i][2]);
        put32(&b, rec[i][3]); put32(&b, 0); put32(&b, 0); put32(&b, 5000);
        put32(&b, 3);
    }
    set_done(&b, off);
    ipfix_done(&b);
    assert_int_equal(feed(d, &b, s), 1);
    assert_int_equal(s->f[0].sport, 1234);
    assert_int_equal(s->f[0].dport, 80);
    assert_int_equal(s->f[0].proto, 6);
    assert_int_equal(s->f[0].octets, 5000);
    assert_int_equal(s->f[0].packets, 3);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.bad_records, 3);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * Several IPFIX messages in one datagram (RFC 7011 10.3.3) are each
 * decoded, in their own session; bytes after the last message that are
 * not a complete one are counted and logged.  The review's
 * ipfix-two-messages-one-dgram.pcap lost its second message unseen.
 */
static void test_ipfix_messages_in_datagram(void **state)
{
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_WARN};
    fdx_nf_decoder *d = fdx_nf_decoder_new(NULL, &log);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    buf b, m;

    (void)state;
    ipfix_header(&b, 0, 1);
    ipfix_template_n(&b, 300, 2);
    ipfix_data_n(&b, 300, 2);
    ipfix_done(&b);
    for (uint32_t dom = 1; dom <= 2; dom++) {  /* two more messages */
        ipfix_header(&m, dom == 1 ? 1 : 0, dom);
        ipfix_template_n(&m, 300, 2);
        ipfix_data_n(&m, 300, 2);
        ipfix_done(&m);
        memcpy(b.b + b.n, m.b, m.n);
        b.n += m.n;
    }
    assert_int_equal(feed(d, &b, s), 3);
    assert_int_equal(s->f[2].domain, 2);
    assert_int_equal(ls.lines, 0);
    memcpy(b.b + b.n, m.b, 20);                /* a cut fourth one */
    b.n += 20;
    assert_int_equal(feed(d, &b, s), 3);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.datagrams, 2);
    assert_int_equal(st.bad_records, 1);
    assert_int_equal(ls.lines, 1);
    assert_non_null(strstr(ls.last, "bytes after the IPFIX message"));
    assert_non_null(strstr(ls.last, "offset=132"));
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * Early data waits for its template through at most 64 datagrams of its
 * session (the real case: graylog-nprobe-v9-data-before-template-pcap,
 * where it waits two).
 */
static void test_pending_age(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    uint32_t seq = 1;
    buf b;

    (void)state;
    for (int late = 63; late <= 64; late++) {
        v9_header(&b, seq++, (uint32_t)late);
        v9_data_256(&b, 500);
        assert_int_equal(feed(d, &b, s), 0);
        for (int i = 1; i < late; i++) {
            v9_header(&b, seq++, (uint32_t)late);
            assert_int_equal(feed(d, &b, s), 0);
        }
        v9_header(&b, seq++, (uint32_t)late);
        v9_template_256(&b);
        s->n = 0;
        assert_int_equal(feed(d, &b, s), late == 63 ? 1 : 0);
    }
    assert_int_equal(s->n, 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.no_template, 1);  /* the one that expired */
    assert_int_equal(st.limit_hits, 0);
    fdx_nf_decoder_free(d);
    free(s);
}

static void test_stop(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    buf b;

    (void)state;
    s->stop_after = 1;
    v9_header(&b, 1, 1);
    v9_template_256(&b);
    v9_data_256(&b, 1);
    v9_data_256(&b, 2);
    assert_int_equal(feed(d, &b, s), 42);
    assert_int_equal(s->n, 1);
    fdx_nf_decoder_free(d);
    free(s);
}

/* Random corruption of real datagrams must never crash (run under ASan). */
static void test_fuzz_mutations(void **state)
{
    static const char *names[] = {
        "netscaler-ipfix-varlen-enterprise", "h3c-v9-netstream-varstring",
        "softflowd-v9-header-count-data-only", "ixia-ipfix-enterprise-fields",
        "cisco-asa-v9-nsel", "v5-corrupt-record-count"};
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    unsigned seed = 12345;
    buf b;

    (void)state;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char path[512];
        FILE *fp;
        uint8_t file[4096];
        size_t n;

        snprintf(path, sizeof(path), DATA "%s.pcap", names[k]);
        fp = fopen(path, "rb");
        assert_non_null(fp);
        n = fread(file, 1, sizeof(file), fp);
        fclose(fp);
        assert_true(n > 24 + 16 + 42);
        for (int it = 0; it < 3000; it++) {
            /* first frame's UDP payload: pcap hdr + rec hdr + eth/ip/udp */
            size_t plen = file[24 + 8] | (size_t)file[24 + 9] << 8;
            plen = plen > 42 ? plen - 42 : 0;
            if (plen > n - 82)
                plen = n - 82;
            memcpy(b.b, file + 82, plen);
            b.n = plen;
            for (int m = 0; m < 1 + it % 8 && b.n > 0; m++) {
                seed = seed * 1103515245u + 12345u;
                b.b[(seed >> 8) % b.n] = (uint8_t)(seed >> 20);
            }
            if (it % 7 == 0)
                b.n = (seed >> 4) % (b.n + 1);
            s->n = 0;
            (void)feed(d, &b, s);
        }
    }
    fdx_nf_decoder_free(d);
    free(s);
}

/* ---------------------------------------------------------------- */
/* Memory bound                                                      */
/* ---------------------------------------------------------------- */

/* Live and peak bytes allocated through the library's hooks. */
static size_t mem_live, mem_peak;

typedef union mem_hdr {
    size_t n;
    max_align_t align;
} mem_hdr;

static void *mem_malloc(size_t n)
{
    mem_hdr *h = malloc(sizeof(*h) + n);

    if (h == NULL)
        return NULL;
    h->n = n;
    mem_live += n;
    if (mem_live > mem_peak)
        mem_peak = mem_live;
    return h + 1;
}

static void mem_free(void *p)
{
    mem_hdr *h = p;

    if (p == NULL)
        return;
    h--;
    mem_live -= h->n;
    free(h);
}

static void *mem_realloc(void *p, size_t n)
{
    mem_hdr *h;
    void *q;

    if (p == NULL)
        return mem_malloc(n);
    h = (mem_hdr *)p - 1;
    q = mem_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, h->n < n ? h->n : n);
    mem_free(p);
    return q;
}

static uint32_t rnd_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/*
 * One IPFIX message of exporter port `port`: a template set of templates
 * with ids from *next_id, each of nfields fields, filling the message.
 */
static size_t flood_templates(uint8_t *m, uint16_t *next_id,
                              unsigned nfields)
{
    size_t n = 20, rec = 4 + 4 * (size_t)nfields;

    while (n + rec <= 65535 - 16) {
        uint8_t *r = m + n;

        r[0] = (uint8_t)(*next_id >> 8);
        r[1] = (uint8_t)*next_id;
        r[2] = (uint8_t)(nfields >> 8);
        r[3] = (uint8_t)nfields;
        for (unsigned f = 0; f < nfields; f++) {
            r[4 + 4 * f] = 0;
            r[5 + 4 * f] = (uint8_t)(1 + f % 200); /* IE, 4 bytes */
            r[6 + 4 * f] = 0;
            r[7 + 4 * f] = 4;
        }
        n += rec;
        *next_id = *next_id == 65535 ? 256 : *next_id + 1;
    }
    m[0] = 0; m[1] = 10;
    m[2] = (uint8_t)(n >> 8); m[3] = (uint8_t)n;
    memset(m + 4, 0, 12);
    m[16] = 0; m[17] = 2;                   /* template set */
    m[18] = (uint8_t)((n - 16) >> 8); m[19] = (uint8_t)(n - 16);
    return n;
}

/*
 * A random datagram: random bytes behind a plausible version, domain 0,
 * and for v9 and IPFIX mostly sets with plausible ids and lengths.
 */
static size_t flood_random(uint8_t *m, uint32_t *x)
{
    static const unsigned versions[] = {5, 9, 10, 10, 9, 7};
    size_t n = rnd_next(x) % 1500, off;
    unsigned v = versions[rnd_next(x) % 6];

    for (size_t i = 0; i < n; i++)
        m[i] = (uint8_t)rnd_next(x);
    if (n < 20)
        return n;
    m[0] = 0;
    m[1] = (uint8_t)v;
    if (v == 10 && rnd_next(x) % 8 != 0) { /* a length that fits */
        m[2] = (uint8_t)(n >> 8);
        m[3] = (uint8_t)n;
    }
    memset(m + (v == 10 ? 12 : 16), 0, 4); /* domain / source id 0 */
    for (off = v == 10 ? 16 : 20; v != 5 && n - off >= 8;) {
        unsigned r = rnd_next(x), id = r % 4 ? 256 + (r >> 8) % 20000
                                             : (v == 10 ? 2 : 0) + r % 2;
        size_t len = 4 + rnd_next(x) % (n - off - 3);

        m[off] = (uint8_t)(id >> 8);
        m[off + 1] = (uint8_t)id;
        m[off + 2] = (uint8_t)(len >> 8);
        m[off + 3] = (uint8_t)len;
        off += len;
    }
    return n;
}

/*
 * A template flood (thousands of ids, from as many exporters as the cap
 * allows, each its own address since one address may take only an
 * eighth of the budget, with the largest field count allowed and more)
 * and a stream of random datagrams: the decoder's memory stays under the
 * bound documented in flow.h, and every datagram is counted exactly once.
 */
static void test_memory_bound(void **state)
{
    const fdx_allocator hooks = {mem_malloc, mem_realloc, mem_free};
    const size_t bound = 16u * 1024 * 1024 +
                         256u * (64u * 1024 + FDX_NF_SESSION_BYTES);
    uint8_t *m = malloc(65536);
    uint16_t next_id = 256;
    uint32_t x = 2463534242u;
    uint64_t fed = 0;
    fdx_read_stats st;
    fdx_nf_decoder *d;
    fdx_addr a;

    (void)state;
    assert_non_null(m);
    fdx_set_allocator(&hooks);
    mem_live = mem_peak = 0;
    d = fdx_nf_decoder_new(NULL, NULL);
    assert_non_null(d);
    for (unsigned port = 0; port < 200; port++) {
        const uint8_t v4[4] = {198, 51, 100, (uint8_t)port};

        fdx_addr_from_v4(&a, v4);
        for (int k = 0; k < 2; k++) {
            size_t n = flood_templates(m, &next_id, k ? 256 : 257);
            fdx_nf_decode(d, &a, (uint16_t)port, m, n, 0, NULL, NULL);
            fed++;
        }
    }
    for (int i = 0; i < 50000; i++) {
        size_t n = flood_random(m, &x);
        uint16_t port = (uint16_t)(rnd_next(&x) % 300);
        const uint8_t v4[4] = {198, 51, 100, (uint8_t)(port % 200)};

        fdx_addr_from_v4(&a, v4);
        fdx_nf_decode(d, &a, port, m, n, 0, NULL, NULL);
        fed++;
    }
    fdx_nf_decoder_stats(d, &st);
    print_message("peak %zu bytes (bound %zu), %llu datagrams, %llu bad, "
                  "%llu refused, %llu cap hits\n", mem_peak, bound,
                  (unsigned long long)st.datagrams,
                  (unsigned long long)st.bad_datagrams,
                  (unsigned long long)st.refused,
                  (unsigned long long)st.limit_hits);
    assert_true(mem_peak <= bound);
    assert_true(mem_peak >= 16u * 1024 * 1024 - 64u * 1024); /* filled */
    assert_int_equal(st.datagrams + st.bad_datagrams + st.refused, fed);
    assert_true(st.refused > 0);
    assert_true(st.datagrams > 10000);
    fdx_nf_decoder_free(d);
    assert_int_equal(mem_live, 0);
    fdx_set_allocator(NULL);
    free(m);
}

/* ---------------------------------------------------------------- */
/* Session eviction, expiry and the exporter's template share        */
/* ---------------------------------------------------------------- */

static const uint64_t T0_MS = 1700000000000ull;

/* Feeds b as received from addr:port at recv_ms. */
static int feed_from(fdx_nf_decoder *d, const char *addr, uint16_t port,
                     const void *m, size_t n, uint64_t recv_ms, sink *s)
{
    fdx_addr a;

    assert_int_equal(fdx_addr_parse(&a, addr), 0);
    return fdx_nf_decode(d, &a, port, m, n, recv_ms, collect, s);
}

static int feed_buf(fdx_nf_decoder *d, const char *addr, uint16_t port,
                    const buf *b, uint64_t recv_ms, sink *s)
{
    return feed_from(d, addr, port, b->b, b->n, recv_ms, s);
}

/* What the decoder's session list says about one exporter address;
 * probe() returns it in static storage, valid until its next call. */
typedef struct sess_probe {
    fdx_addr addr;
    size_t n, n_addr;          /* sessions; of addr */
    uint64_t templates, limit_hits, flows, datagrams; /* sums, of addr */
    uint8_t port_seen[65536];  /* of addr */
} sess_probe;

static void probe_session(void *ud, const fdx_nf_session_stats *st)
{
    sess_probe *p = ud;

    p->n++;
    if (fdx_addr_cmp(&st->exporter, &p->addr) != 0)
        return;
    p->n_addr++;
    p->templates += st->templates;
    p->limit_hits += st->limit_hits;
    p->flows += st->flows;
    p->datagrams += st->datagrams;
    p->port_seen[st->port] = 1;
}

static sess_probe *probe(const fdx_nf_decoder *d, const char *addr)
{
    static sess_probe p;

    memset(&p, 0, sizeof(p));
    assert_int_equal(fdx_addr_parse(&p.addr, addr), 0);
    fdx_nf_decoder_sessions(d, probe_session, &p);
    return &p;
}

/*
 * 300 sessions from new source ports, one every 10 s, beside one live
 * exporter sending every 10 s: once the 256 are full, each new one evicts
 * the least recently used (idle 2550 s), one info line each, and the
 * live exporter, the oldest created, keeps its session and template.
 * A port that was evicted comes back as a new session without template.
 */
static void test_session_evict_lru(void **state)
{
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_INFO};
    fdx_nf_decoder *d = fdx_nf_decoder_new(NULL, &log);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    sess_probe *p;
    buf b;

    (void)state;
    for (unsigned i = 0; i < 300; i++) {
        uint64_t t = T0_MS + i * 10000ull;

        v9_header(&b, i + 1, 1);
        v9_template_256(&b);
        v9_data_256(&b, 100 + i);
        assert_int_equal(feed_buf(d, "192.0.2.1", 2055, &b, t, s), 1);
        v9_header(&b, 1, 1);
        v9_template_256(&b);
        assert_int_equal(feed_buf(d, "198.51.100.9", (uint16_t)(10000 + i),
                                  &b, t, s), 0);
    }
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.sessions_evicted, 300 - 255);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.sessions_expired, 0);
    assert_int_equal(st.datagrams, 600);
    assert_int_equal(ls.lines, 45);
    assert_non_null(strstr(ls.last, "netflow: session evicted "
                           "exporter=198.51.100.9 port=10044 version=9 "
                           "domain=1 idle_s=2550 templates=1"));
    p = probe(d, "198.51.100.9");
    assert_int_equal(p->n, 256);
    assert_int_equal(p->n_addr, 255);
    for (unsigned i = 0; i < 300; i++)
        assert_int_equal(p->port_seen[10000 + i], i >= 45);
    p = probe(d, "192.0.2.1");
    assert_int_equal(p->n_addr, 1);
    assert_int_equal(p->datagrams, 300);
    assert_int_equal(p->flows, 300);
    assert_int_equal(p->templates, 1);

    v9_header(&b, 2, 1);                 /* port 10000 again: data only */
    v9_data_256(&b, 1);
    assert_int_equal(feed_buf(d, "198.51.100.9", 10000, &b,
                              T0_MS + 3000000, s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.sessions_evicted, 46);
    assert_int_equal(st.no_template, 1);
    assert_int_equal(st.flows, 300);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * A full table of sessions active within the last 10 minutes refuses a
 * new one (counted), up to the last millisecond; at 10 minutes of
 * idleness the oldest makes room.  A receive time earlier than the
 * sessions' own is no idleness at all.
 */
static void test_session_table_recent_refused(void **state)
{
    fdx_nf_decoder *d = dec_new(NULL);
    sink *s = calloc(1, sizeof(*s));
    fdx_read_stats st;
    buf b;

    (void)state;
    v9_header(&b, 1, 1);
    v9_template_256(&b);
    for (unsigned i = 0; i < 256; i++)
        assert_int_equal(feed_buf(d, "192.0.2.7", (uint16_t)(20000 + i),
                                  &b, T0_MS + i * 1000ull, s), 0);
    assert_int_equal(feed_buf(d, "192.0.2.7", 30000, &b, T0_MS + 300000,
                              s), FDX_ELIMIT);
    assert_int_equal(feed_buf(d, "192.0.2.7", 30000, &b, T0_MS + 599999,
                              s), FDX_ELIMIT);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.sessions_evicted, 0);
    assert_int_equal(st.limit_hits, 2);
    assert_int_equal(st.datagrams, 256);

    assert_int_equal(feed_buf(d, "192.0.2.7", 30000, &b, T0_MS + 600000,
                              s), 0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.sessions_evicted, 1);
    assert_int_equal(st.datagrams, 257);
    assert_int_equal(probe(d, "192.0.2.7")->port_seen[20000], 0);
    assert_int_equal(probe(d, "192.0.2.7")->port_seen[30000], 1);

    assert_int_equal(feed_buf(d, "192.0.2.7", 30001, &b, T0_MS, s),
                     FDX_ELIMIT);         /* time went backwards */
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.sessions_evicted, 1);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * Exporter A holds two templates (3392 of a 4096-byte budget), then goes
 * quiet.  B's template does not fit while A's session lives, at one hour
 * of A's idleness included; one millisecond later A's session has
 * expired, its bytes are back and B's template is taken.  A's data then
 * finds no template.  Without max_idle_s, A's template outlives any gap.
 */
/* A record of ipfix_template_n(): octets (IE 1), then zeros. */
static void ipfix_data_octets(buf *b, uint16_t id, unsigned nfields,
                              uint32_t octets)
{
    size_t off = b->n;

    put16(b, id); put16(b, 0);
    for (unsigned f = 0; f < nfields; f++)
        put32(b, f == 0 ? octets : 0);
    set_done(b, off);
}

static void idle_exporter_a(fdx_nf_decoder *d, sink *s)
{
    buf b;

    ipfix_header(&b, 0, 1);
    ipfix_template_n(&b, 300, 200);
    ipfix_data_octets(&b, 300, 200, 1000);
    ipfix_done(&b);
    assert_int_equal(feed_buf(d, "192.0.2.1", 2055, &b, T0_MS, s), 1);
    ipfix_header(&b, 1, 1);
    ipfix_template_n(&b, 301, 200);
    ipfix_done(&b);
    assert_int_equal(feed_buf(d, "192.0.2.1", 2055, &b, T0_MS, s), 0);
}

static void test_session_idle_expiry(void **state)
{
    fdx_nf_limits lim = {0, 0, 0, 0, 4096, 0, 3600};
    log_sink ls = {0, ""};
    fdx_logger log = {log_collect, &ls, FDX_LOG_INFO};
    fdx_nf_decoder *d = fdx_nf_decoder_new(&lim, &log);
    sink *s = calloc(1, sizeof(*s));
    const uint64_t at[3] = {3000000, 3600000, 3600001};
    fdx_read_stats st;
    buf b;

    (void)state;
    idle_exporter_a(d, s);
    for (int k = 0; k < 3; k++) {
        ipfix_header(&b, 0, 1);
        ipfix_template_n(&b, 400, 200);
        ipfix_done(&b);
        feed_buf(d, "192.0.2.1", 2056, &b, T0_MS + at[k], s);
        fdx_nf_decoder_stats(d, &st);
        assert_int_equal(st.limit_hits, k < 2 ? k + 1 : 2);
        assert_int_equal(st.sessions_expired, k < 2 ? 0 : 1);
    }
    assert_non_null(strstr(ls.last, "netflow: session expired "
                           "exporter=192.0.2.1 port=2055 version=10 "
                           "domain=1 idle_s=3600 templates=2"));
    ipfix_header(&b, 0, 1);
    ipfix_data_octets(&b, 400, 200, 4000);
    ipfix_done(&b);
    assert_int_equal(feed_buf(d, "192.0.2.1", 2056, &b, T0_MS + at[2], s),
                     1);
    ipfix_header(&b, 2, 1);              /* A again: a new session */
    ipfix_data_octets(&b, 300, 200, 1000);
    ipfix_done(&b);
    assert_int_equal(feed_buf(d, "192.0.2.1", 2055, &b, T0_MS + at[2], s),
                     0);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.no_template, 1);
    assert_int_equal(st.flows, 2);
    assert_int_equal(probe(d, "192.0.2.1")->n, 2);
    assert_int_equal(probe(d, "192.0.2.1")->templates, 1);
    fdx_nf_decoder_free(d);

    lim.max_idle_s = 0;                  /* a capture: 10 days of gap */
    d = dec_new(&lim);
    idle_exporter_a(d, s);
    ipfix_header(&b, 2, 1);
    ipfix_data_octets(&b, 300, 200, 1000);
    ipfix_done(&b);
    s->n = 0;
    assert_int_equal(feed_buf(d, "192.0.2.1", 2055, &b,
                              T0_MS + 10 * 86400000ull, s), 1);
    assert_int_equal(s->f[0].octets, 1000);
    fdx_nf_decoder_stats(d, &st);
    assert_int_equal(st.sessions_expired + st.no_template, 0);
    fdx_nf_decoder_free(d);
    free(s);
}

/*
 * An exporter flooding templates over 8 observation domains (5 MB of
 * them) against a 4 MiB budget: held to its 1 MiB share, its cap hits
 * counted in its sessions, while a second exporter's 63 large templates
 * and one more are still taken and its data decoded.  With the share as
 * large as the budget, the flood takes it all and the second exporter's
 * templates are refused.
 */
static uint64_t flood_then_templates(fdx_nf_decoder *d, sink *s,
                                     uint8_t *m)
{
    uint16_t next_id = 256;
    fdx_read_stats st;
    size_t n;
    buf b;

    for (unsigned domain = 0; domain < 8; domain++)
        for (int k = 0; k < 5; k++) {
            n = flood_templates(m, &next_id, 256);
            m[15] = (uint8_t)domain;
            feed_from(d, "203.0.113.5", 4739, m, n, T0_MS, s);
        }
    next_id = 1000;
    n = flood_templates(m, &next_id, 256); /* 63 templates */
    feed_from(d, "192.0.2.1", 4739, m, n, T0_MS, s);
    ipfix_header(&b, 0, 0);
    ipfix_template_n(&b, 300, 100);
    ipfix_data_octets(&b, 300, 100, 5555);
    ipfix_done(&b);
    s->n = 0;
    feed_buf(d, "192.0.2.1", 4739, &b, T0_MS, s);
    fdx_nf_decoder_stats(d, &st);
    return st.limit_hits;
}

static void test_exporter_template_share(void **state)
{
    fdx_nf_limits lim = {0, 0, 0, 0, 4u << 20, 0, 0};
    uint8_t *m = malloc(65536);
    sink *s = calloc(1, sizeof(*s));
    fdx_nf_decoder *d = dec_new(&lim);
    uint64_t hits = flood_then_templates(d, s, m);
    sess_probe *p = probe(d, "203.0.113.5");

    (void)state;
    assert_int_equal(p->n_addr, 8);
    assert_true(p->limit_hits > 0);
    assert_int_equal(p->limit_hits, hits); /* all of them the flood's */
    assert_true(p->templates * 256 * 8 <= 1u << 20);
    assert_true(p->templates * 256 * 8 > (1u << 20) - 2 * 65536);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->f[0].octets, 5555);
    p = probe(d, "192.0.2.1");
    assert_int_equal(p->templates, 64);
    assert_int_equal(p->limit_hits, 0);
    fdx_nf_decoder_free(d);

    lim.max_exporter_template_bytes = lim.max_template_bytes;
    d = dec_new(&lim);
    flood_then_templates(d, s, m);
    assert_true(probe(d, "203.0.113.5")->templates * 256 * 8 >
                (4u << 20) - 2 * 65536);
    p = probe(d, "192.0.2.1");
    assert_true(p->templates < 16);
    assert_true(p->limit_hits > 48);
    fdx_nf_decoder_free(d);
    free(s);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_softflowd_v5),
        cmocka_unit_test(test_corpus_softflowd_v9),
        cmocka_unit_test(test_corpus_softflowd_ipfix),
        cmocka_unit_test(test_corpus_pmacctd_v9),
        cmocka_unit_test(test_corpus_pmacctd_ipfix),
        cmocka_unit_test(test_v5_count_mismatch),
        cmocka_unit_test(test_v5_sampling),
        cmocka_unit_test(test_v9_header_count_ignored),
        cmocka_unit_test(test_v9_data_before_template),
        cmocka_unit_test(test_ipfix_varlen),
        cmocka_unit_test(test_v9_varlen_and_zero_len),
        cmocka_unit_test(test_v9_padding),
        cmocka_unit_test(test_ipfix_reverse),
        cmocka_unit_test(test_v9_nsel),
        cmocka_unit_test(test_ipfix_init_time),
        cmocka_unit_test(test_crafted_v9_basic),
        cmocka_unit_test(test_crafted_ipfix_options),
        cmocka_unit_test(test_crafted_ipfix_withdraw),
        cmocka_unit_test(test_crafted_dual_family),
        cmocka_unit_test(test_nsel_events),
        cmocka_unit_test(test_crafted_nsel_events),
        cmocka_unit_test(test_seq_per_domain),
        cmocka_unit_test(test_seq_sessions_capture),
        cmocka_unit_test(test_bad_datagram_messages),
        cmocka_unit_test(test_cut_last_record),
        cmocka_unit_test(test_crafted_v9_sampling_scope),
        cmocka_unit_test(test_crafted_abs_switched_rev_totals),
        cmocka_unit_test(test_time_forms_real),
        cmocka_unit_test(test_crafted_ntp_and_deltas),
        cmocka_unit_test(test_crafted_redefinition),
        cmocka_unit_test(test_crafted_v5_times),
        cmocka_unit_test(test_v5_count_below_fit),
        cmocka_unit_test(test_malformed_sets),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_template_memory_cap),
        cmocka_unit_test(test_refused_redefinition),
        cmocka_unit_test(test_oversized_ints),
        cmocka_unit_test(test_ipfix_messages_in_datagram),
        cmocka_unit_test(test_pending_age),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_session_evict_lru),
        cmocka_unit_test(test_session_table_recent_refused),
        cmocka_unit_test(test_session_idle_expiry),
        cmocka_unit_test(test_exporter_template_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
