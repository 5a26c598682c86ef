/*
 * Fuzz target: the scan pipeline (joining, calibration, matching,
 * inference) on flow records made from the input, against the small
 * catalog of the catalog target's seeds.
 *
 * The decoders hand the scan whatever a record says, so every count and
 * time here comes from the input: 32 bytes a record.  Addresses and ports
 * come from short lists, so that records join into connections and
 * servers get several of them; byte counts are either raw or a catalog
 * file's size plus the overhead model's own terms and a small error, so
 * that calibration, TLS steps and keep-alive pairs are reached.  After
 * the scan every host, claim and piece of evidence is checked against
 * what scan.h promises.  Some input sizes make an allocation fail.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define FUZZ_REC 32

static fdx_catalog *cat;
static uint64_t sink;

static void open_catalog(void)
{
    fdx_error err;

    if (cat != NULL)
        return;
    if (fdx_catalog_open(FDX_FUZZ_SCAN_CATALOG, &cat, &err) != 0)
        fuzz_fail("cannot open %s: %s", FDX_FUZZ_SCAN_CATALOG, err.msg);
}

static uint64_t get(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Byte counts: raw, or a catalog file over HTTP or TLS give or take. */
static uint64_t octets_of(const uint8_t *r, uint64_t packets)
{
    size_t n = fdx_catalog_count(cat);
    uint64_t pick = get(r + 6, 2), raw = get(r + 8, 8);
    int64_t err = (int8_t)r[15];

    if (pick == 0xFFFF || n == 0)
        return raw;
    raw = fdx_catalog_size(cat, pick % n) + packets * (r[5] & 1 ? 40 : 52);
    raw += (r[5] & 2) ? 2451 + 53 * (raw / 16384) : 135 + (uint64_t)(r[5] >> 4);
    return (uint64_t)((int64_t)raw + err);
}

static void make_flow(const uint8_t *r, fdx_flow *f)
{
    static const uint16_t sports[4] = {80, 443, 8080, 0};
    char a[32];
    int to_client = r[0] >> 4 & 1;
    uint16_t sport = sports[r[4] & 3] ? sports[r[4] & 3] : r[5];

    memset(f, 0, sizeof(*f));
    snprintf(a, sizeof(a), "10.0.0.%u", r[0] & 3);
    fdx_addr_parse(to_client ? &f->dst : &f->src, a);
    snprintf(a, sizeof(a), "%s", r[0] & 4 ? "2001:db8::80" : "192.0.2.80");
    fdx_addr_parse(to_client ? &f->src : &f->dst, a);
    f->sport = to_client ? sport : (uint16_t)get(r + 2, 2);
    f->dport = to_client ? (uint16_t)get(r + 2, 2) : sport;
    f->proto = r[0] & 0x80 ? 17 : 6;
    f->tcp_flags = r[1];
    f->packets = get(r + 16, 4);
    if (r[4] & 0x80)
        f->packets <<= 24;
    f->octets = octets_of(r, f->packets);
    f->first_ms = 1764000000000ULL + get(r + 20, 4);
    f->last_ms = f->first_ms + get(r + 24, 3);
    if (r[0] & 0x40) {
        f->sampling = r[27];
        f->flags |= FDX_FLOW_SAMPLED;
    }
    if (r[0] & 0x20) {
        f->flags |= FDX_FLOW_BIFLOW;
        f->rev_octets = get(r + 28, 2) * 97;
        f->rev_packets = get(r + 30, 2);
    }
}

static void check_confidence(double c, const char *what)
{
    if (!(c >= 0.0 && c <= 1.0 + 1e-9) || isnan(c))
        fuzz_fail("%s confidence %f out of [0, 1]", what, c);
}

static void check_host(const fdx_host *h)
{
    size_t n = fdx_catalog_count(cat);

    if (h->os.known) {
        check_confidence(h->os.confidence, "os");
        if (h->os.family == NULL || h->os.release == NULL)
            fuzz_fail("known OS without family or release");
    }
    for (size_t i = 0; i < h->npackages; i++) {
        const fdx_package_claim *pc = &h->packages[i];

        check_confidence(pc->confidence, "package");
        if (pc->entry >= n || pc->evidence >= h->nevidence)
            fuzz_fail("claim %zu points outside", i);
    }
    for (size_t i = 0; i < h->nevidence; i++) {
        const fdx_evidence *ev = &h->evidence[i];

        if (ev->ncand > FDX_MAX_CANDIDATES || ev->ncand > ev->ncand_total)
            fuzz_fail("evidence %zu: %u of %u candidates", i, ev->ncand,
                      ev->ncand_total);
        for (uint32_t k = 0; k < ev->ncand; k++)
            if (ev->cand[k] >= n)
                fuzz_fail("evidence %zu: candidate outside", i);
        sink += ev->octets + ev->win_lo + ev->win_hi;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdx_scan *s;
    fdx_flow f;
    int rc = 0;

    open_catalog();
    fuzz_fail_alloc_by_size(size);
    fuzz_dirty_stack();
    s = fdx_scan_new(cat, NULL);
    for (size_t off = 0; s != NULL && rc == 0 && off + FUZZ_REC <= size;
         off += FUZZ_REC) {
        make_flow(data + off, &f);
        rc = fdx_scan_add(s, &f);
    }
    if (s != NULL && rc == 0)
        rc = fdx_scan_finish(s);
    if (rc != 0 && rc != FDX_ENOMEM)
        fuzz_fail("scan returned %d", rc);
    for (size_t i = 0; s != NULL && rc == 0 && i < fdx_scan_host_count(s);
         i++)
        check_host(fdx_scan_host(s, i));
    fdx_scan_free(s);
    fuzz_fail_alloc(0);
    return 0;
}
