/*
 * Tests of the nfcapd reader (lib/nfcapd.c) and the input dispatcher
 * (lib/input.c).
 *
 * The files in tests/data/nfcapd/ were written by nfdump 1.7.1 (nfpcapd,
 * nfcapd, and nfdump -J to change the compression); each *.expect holds
 * nfdump's own reading of it (`nfdump -o json` through
 * tests/check-nfcapd.py canon), so the reader is compared with nfdump
 * record by record without needing nfdump at run time.  zstd files (which
 * nfdump 1.7.1 cannot write) and nfdump 1.6 files (no nfdump 1.6 here)
 * are built byte by byte below.
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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfpcapd_plain),
        cmocka_unit_test(test_nfpcapd_lzo),
        cmocka_unit_test(test_nfpcapd_bz2),
        cmocka_unit_test(test_nfpcapd_lz4),
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
