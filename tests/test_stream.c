/*
 * Tests of the streaming engine (lib/stream.c): the shared sample fed in
 * time order, with an advance every simulated 10 s, must give every host
 * the OS and package claims fdx_scan gives; a host's claims are
 * recomputed only when it gets new evidence; every cap hit is counted;
 * memory stays bounded on random flows.
 *
 * FDX_STREAM_FLOWS (and FDX_STREAM_CATALOG) name another flow file to
 * compare on, printing the differences.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flowdex/flowdex.h"
#include "internal.h"
#include "scan_int.h"

#ifndef FDX_SOURCE_ROOT
#define FDX_SOURCE_ROOT "."
#endif

#define TICK_MS 10000

/* What is compared of a host: its OS claim and its package set. */
typedef struct hclaim {
    fdx_addr addr;
    int known;
    const char *family, *release, *arch;
    uint32_t *pkg;
    size_t npkg;
} hclaim;

typedef struct claims {
    hclaim *v;
    size_t n, cap;
    uint64_t calls;
} claims;

typedef struct flows {
    fdx_flow *v;
    size_t n, cap;
} flows;

static const char *root(void)
{
    const char *r = getenv("FDX_SOURCE_ROOT");

    return r != NULL ? r : FDX_SOURCE_ROOT;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

static hclaim *claim_slot(claims *c, const fdx_addr *a)
{
    for (size_t i = 0; i < c->n; i++)
        if (fdx_addr_cmp(&c->v[i].addr, a) == 0) {
            free(c->v[i].pkg);
            return &c->v[i];
        }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    return &c->v[c->n++];
}

/* Keeps the latest claims of h (a host handed over again replaces). */
static void claim_keep(claims *c, const fdx_host *h)
{
    hclaim *k = claim_slot(c, &h->addr);

    k->addr = h->addr;
    k->known = h->os.known;
    k->family = h->os.family;
    k->release = h->os.release;
    k->arch = h->os.arch;
    k->npkg = h->npackages;
    k->pkg = calloc(h->npackages + 1, sizeof(*k->pkg));
    assert_non_null(k->pkg);
    for (size_t i = 0; i < h->npackages; i++)
        k->pkg[i] = h->packages[i].entry;
    qsort(k->pkg, k->npkg, sizeof(*k->pkg), u32_cmp);
}

static int on_host(void *ud, const fdx_host *h)
{
    claims *c = ud;

    c->calls++;
    claim_keep(c, h);
    return 0;
}

static void claims_free(claims *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].pkg);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static int flow_keep(void *ud, const fdx_flow *f)
{
    flows *fl = ud;

    if (fl->n == fl->cap) {
        fl->cap = fl->cap ? 2 * fl->cap : 1024;
        fl->v = realloc(fl->v, fl->cap * sizeof(*fl->v));
        assert_non_null(fl->v);
    }
    fl->v[fl->n++] = *f;
    return 0;
}

/* FDX_STREAM_ORDER=last: records come in the order of their end, as an
 * exporter sends them, and the stream's clock is their end. */
static int by_last;

static uint64_t flow_time(const fdx_flow *f)
{
    return by_last ? f->last_ms : f->first_ms;
}

/* By time; ties in file order (the pointers into the array follow it). */
static int flow_cmp(const void *a, const void *b)
{
    const fdx_flow *x = *(const fdx_flow *const *)a;
    const fdx_flow *y = *(const fdx_flow *const *)b;

    if (by_last && x->last_ms != y->last_ms)
        return x->last_ms < y->last_ms ? -1 : 1;
    if (x->first_ms != y->first_ms)
        return x->first_ms < y->first_ms ? -1 : 1;
    return (x > y) - (x < y);
}

/*
 * FDX_STREAM_COPIES=n: the records n times, copy k two hours later with
 * its clients moved to other addresses, so that servers see more
 * downloads and are recalibrated while the stream runs.
 */
static void flows_copy(flows *fl, size_t k)
{
    size_t n = fl->n;

    if (k < 2)
        return;
    fl->v = realloc(fl->v, (n * k + 1) * sizeof(*fl->v));
    assert_non_null(fl->v);
    for (size_t c = 1; c < k; c++)
        for (size_t i = 0; i < n; i++) {
            fdx_flow *f = &fl->v[c * n + i];

            *f = fl->v[i];
            f->first_ms += c * 7200000;
            f->last_ms += c * 7200000;
            /* the end on the higher port is the client */
            if (f->sport > f->dport)
                f->src.b[13] = (uint8_t)(f->src.b[13] + c);
            else
                f->dst.b[13] = (uint8_t)(f->dst.b[13] + c);
        }
    fl->n = n * k;
}

/* The file's records, copies times over, in time order. */
static void flows_read(const char *path, size_t copies, flows *fl)
{
    fdx_error err;
    const fdx_flow **p;
    fdx_flow *v;

    memset(fl, 0, sizeof(*fl));
    assert_int_equal(fdx_read_path(path, NULL, flow_keep, fl, NULL, &err),
                     0);
    flows_copy(fl, copies);
    p = malloc((fl->n + 1) * sizeof(*p));
    v = malloc((fl->n + 1) * sizeof(*v));
    assert_true(p != NULL && v != NULL);
    for (size_t i = 0; i < fl->n; i++)
        p[i] = &fl->v[i];
    qsort(p, fl->n, sizeof(*p), flow_cmp);
    for (size_t i = 0; i < fl->n; i++)
        v[i] = *p[i];
    free(p);
    free(fl->v);
    fl->v = v;
}

/* fdx_scan's claims of every host with evidence. */
static void scan_claims(const fdx_catalog *cat, const flows *fl, claims *c)
{
    fdx_scan *s = fdx_scan_new(cat, NULL);

    assert_non_null(s);
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < fl->n; i++)
        assert_int_equal(fdx_scan_add(s, &fl->v[i]), 0);
    assert_int_equal(fdx_scan_finish(s), 0);
    for (size_t i = 0; i < fdx_scan_host_count(s); i++)
        claim_keep(c, fdx_scan_host(s, i));
    fdx_scan_free(s);
}

/* The stream's: the records in order, an advance every TICK_MS of flow
 * time, then a flush. */
static void stream_claims(const fdx_catalog *cat, const flows *fl,
                          const fdx_stream_opts *o, claims *c,
                          fdx_stream_stats *out)
{
    fdx_stream *st = fdx_stream_new(cat, o);
    uint64_t tick = 0;

    assert_non_null(st);
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < fl->n; i++) {
        const fdx_flow *f = &fl->v[i];

        if (tick == 0)
            tick = flow_time(f) - flow_time(f) % TICK_MS + TICK_MS;
        for (; flow_time(f) >= tick; tick += TICK_MS)
            assert_int_equal(fdx_stream_advance(st, tick, on_host, c), 0);
        assert_int_equal(fdx_stream_add(st, f), 0);
    }
    assert_int_equal(fdx_stream_flush(st, on_host, c), 0);
    fdx_stream_get_stats(st, out);
    fdx_stream_free(st);
}

static const hclaim *claim_find(const claims *c, const fdx_addr *a)
{
    for (size_t i = 0; i < c->n; i++)
        if (fdx_addr_cmp(&c->v[i].addr, a) == 0)
            return &c->v[i];
    return NULL;
}

static int str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int os_same(const hclaim *a, const hclaim *b)
{
    if (a->known != b->known)
        return 0;
    return !a->known || (str_same(a->family, b->family) &&
                         str_same(a->release, b->release) &&
                         str_same(a->arch, b->arch));
}

static int pkgs_same(const hclaim *a, const hclaim *b)
{
    return a->npkg == b->npkg &&
           memcmp(a->pkg, b->pkg, a->npkg * sizeof(*a->pkg)) == 0;
}

/* Hosts whose claims differ (a host missing on one side counts as one
 * with no OS and no package); prints each when verbose. */
static size_t claims_diff(const claims *want, const claims *got,
                          int verbose)
{
    static const hclaim none;
    size_t bad = 0;

    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < (side ? got : want)->n; i++) {
            const hclaim *a = &(side ? got : want)->v[i];
            const hclaim *b = claim_find(side ? want : got, &a->addr);
            char s[FDX_ADDRSTRLEN];

            if (side && b != NULL)
                continue;
            b = b != NULL ? b : &none;
            if (os_same(a, b) && pkgs_same(a, b))
                continue;
            bad++;
            if (verbose)
                printf("# %s host=%s os %s/%s vs %s/%s packages %zu vs %zu\n",
                       side ? "stream-only" : "differs",
                       fdx_addr_format(&a->addr, s, sizeof(s)),
                       a->release ? a->release : "-",
                       a->arch ? a->arch : "-",
                       b->release ? b->release : "-",
                       b->arch ? b->arch : "-", a->npkg, b->npkg);
        }
    return bad;
}

/* ---------------------------------------------------------------- */
/* An allocator that counts the bytes in use, for the memory bound. */

static size_t mem_now, mem_peak;

static void *cnt_malloc(size_t n)
{
    size_t *p = malloc(n + 16);

    if (p == NULL)
        return NULL;
    p[0] = n;
    mem_now += n;
    if (mem_now > mem_peak)
        mem_peak = mem_now;
    return (char *)p + 16;
}

static void cnt_free(void *q)
{
    size_t *p;

    if (q == NULL)
        return;
    p = (size_t *)((char *)q - 16);
    mem_now -= p[0];
    free(p);
}

static void *cnt_realloc(void *q, size_t n)
{
    size_t *p = q ? (size_t *)((char *)q - 16) : NULL, old = p ? p[0] : 0;

    p = realloc(p, n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    mem_now = mem_now - old + n;
    if (mem_now > mem_peak)
        mem_peak = mem_now;
    return (char *)p + 16;
}

static const fdx_allocator counting = {cnt_malloc, cnt_realloc, cnt_free};

/* With fail_at set, the fail_at-th allocation from then on fails. */
static size_t fail_at, allocs;

static void *fail_malloc(size_t n)
{
    return fail_at && ++allocs == fail_at ? NULL : cnt_malloc(n);
}

static void *fail_realloc(void *q, size_t n)
{
    return fail_at && ++allocs == fail_at ? NULL : cnt_realloc(q, n);
}

static const fdx_allocator failing = {fail_malloc, fail_realloc, cnt_free};

/* ---------------------------------------------------------------- */

typedef struct fixture {
    fdx_catalog *cat;
    flows fl;
} fixture;

static int setup(void **state)
{
    static fixture fx;
    char path[512];
    fdx_error err;
    const char *cat = getenv("FDX_STREAM_CATALOG");

    snprintf(path, sizeof(path), "%s/sample/catalog.fdxc.xz", root());
    if (fdx_catalog_open(cat ? cat : path, &fx.cat, &err) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/sample/flows/nfcapd.202612031805",
             root());
    flows_read(path, 1, &fx.fl);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    free(fx->fl.v);
    fdx_catalog_close(fx->cat);
    return 0;
}

static void assert_no_cap_hit(const fdx_stream_stats *s)
{
    assert_int_equal(s->conns_dropped + s->servers_evicted +
                     s->servers_dropped + s->sample_full +
                     s->hosts_dropped + s->evidence_dropped, 0);
}

static size_t copies(void)
{
    const char *e = getenv("FDX_STREAM_COPIES");

    return e != NULL && atoi(e) > 1 ? (size_t)atoi(e) : 1;
}

/* The sample (FDX_STREAM_COPIES times over): every host's OS claim and
 * package set as fdx_scan's. */
static void test_sample_agrees(void **state)
{
    fixture *fx = *state;
    claims want, got;
    fdx_stream_stats ss;
    char path[512];
    flows fl;

    snprintf(path, sizeof(path), "%s/sample/flows/nfcapd.202612031805",
             root());
    flows_read(path, copies(), &fl);
    scan_claims(fx->cat, &fl, &want);
    stream_claims(fx->cat, &fl, NULL, &got, &ss);
    printf("# sample: %zu hosts (scan), %zu (stream), %llu recomputes, "
           "%llu calibrations, %llu connections, %llu pending dropped\n",
           want.n, got.n, (unsigned long long)ss.recomputes,
           (unsigned long long)ss.calibrations,
           (unsigned long long)ss.connections,
           (unsigned long long)ss.pending_dropped);
    assert_true(want.n > 0);
    assert_int_equal(claims_diff(&want, &got, 1), 0);
    assert_no_cap_hit(&ss);
    claims_free(&want);
    claims_free(&got);
    free(fl.v);
}

/* Another flow file, when FDX_STREAM_FLOWS names one: the differences
 * are printed and counted, and failed on with FDX_STREAM_STRICT. */
static void test_other_file(void **state)
{
    fixture *fx = *state;
    const char *path = getenv("FDX_STREAM_FLOWS");
    claims want, got;
    fdx_stream_stats ss;
    flows fl;
    size_t bad, os = 0;

    if (path == NULL)
        skip();
    flows_read(path, copies(), &fl);
    scan_claims(fx->cat, &fl, &want);
    stream_claims(fx->cat, &fl, NULL, &got, &ss);
    bad = claims_diff(&want, &got, 1);
    for (size_t i = 0; i < want.n; i++)
        os += want.v[i].known;
    printf("# %s: %zu flows, %zu hosts (scan, %zu with an OS), %zu "
           "(stream), %zu differ; %llu pending dropped\n", path, fl.n,
           want.n, os, got.n, bad, (unsigned long long)ss.pending_dropped);
    /* tests/stream-mix.py: then the claims must be scan's */
    if (getenv("FDX_STREAM_STRICT") != NULL) {
        assert_true(want.n > 0);
        assert_int_equal(bad, 0);
    }
    claims_free(&want);
    claims_free(&got);
    free(fl.v);
}

/* Per host, the evidence it had when last handed over. */
typedef struct seen {
    fdx_addr addr[1024];
    size_t nev[1024], n;
    uint64_t calls, stale;
} seen;

static int on_host_seen(void *ud, const fdx_host *h)
{
    seen *s = ud;
    size_t i;

    s->calls++;
    for (i = 0; i < s->n; i++)
        if (fdx_addr_cmp(&s->addr[i], &h->addr) == 0)
            break;
    if (i == s->n) {
        assert_true(s->n < 1024);
        s->addr[s->n++] = h->addr;
        s->nev[i] = 0;
    }
    /* recomputed only with new evidence: it always has more */
    s->stale += h->nevidence <= s->nev[i];
    s->nev[i] = h->nevidence;
    return 0;
}

/*
 * All at once, each host is recomputed once; with an advance every
 * 10 s, only when it got new evidence, and never by an advance that
 * closed nothing.
 */
static void test_recompute_only_new(void **state)
{
    fixture *fx = *state;
    fdx_stream *st = fdx_stream_new(fx->cat, NULL);
    fdx_stream_stats ss;
    seen *s = calloc(1, sizeof(*s));
    uint64_t tick = 0;

    assert_true(st != NULL && s != NULL);
    for (size_t i = 0; i < fx->fl.n; i++)
        fdx_stream_add(st, &fx->fl.v[i]);
    assert_int_equal(fdx_stream_flush(st, on_host_seen, s), 0);
    fdx_stream_get_stats(st, &ss);
    assert_int_equal(ss.recomputes, s->n);
    assert_int_equal(ss.hosts, s->n);
    assert_int_equal(s->stale, 0);
    /* nothing new: nothing recomputed */
    assert_int_equal(fdx_stream_advance(st, UINT64_MAX / 2, on_host_seen, s),
                     0);
    assert_int_equal(fdx_stream_flush(st, on_host_seen, s), 0);
    fdx_stream_get_stats(st, &ss);
    assert_int_equal(ss.recomputes, s->n);
    fdx_stream_free(st);

    memset(s, 0, sizeof(*s));
    st = fdx_stream_new(fx->cat, NULL);
    for (size_t i = 0; i < fx->fl.n; i++) {
        const fdx_flow *f = &fx->fl.v[i];

        if (tick == 0)
            tick = f->first_ms - f->first_ms % TICK_MS + TICK_MS;
        for (; f->first_ms >= tick; tick += TICK_MS)
            fdx_stream_advance(st, tick, on_host_seen, s);
        fdx_stream_add(st, f);
    }
    fdx_stream_flush(st, on_host_seen, s);
    fdx_stream_get_stats(st, &ss);
    printf("# ticks: %llu recomputes of %zu hosts\n",
           (unsigned long long)ss.recomputes, s->n);
    assert_int_equal(ss.recomputes, s->calls);
    /* or with evidence matched again, its server's model changed */
    assert_true(s->stale <= ss.rematch_hosts);
    assert_true(ss.recomputes >= s->n);
    fdx_stream_free(st);
    free(s);
}

/* Tiny caps on the sample: each one hit is counted. */
static void test_caps_counted(void **state)
{
    fixture *fx = *state;
    fdx_stream_opts o;
    fdx_stream_stats ss;
    claims got;

    memset(&o, 0, sizeof(o));
    o.max_open = 8;
    stream_claims(fx->cat, &fx->fl, &o, &got, &ss);
    assert_true(ss.conns_dropped > 0);
    assert_true(ss.open <= 8);
    claims_free(&got);

    memset(&o, 0, sizeof(o));
    o.max_servers = 1;
    o.server_sample = 4;
    o.max_sample_total = 3;
    stream_claims(fx->cat, &fx->fl, &o, &got, &ss);
    assert_true(ss.servers_evicted + ss.servers_dropped > 0);
    assert_true(ss.sample_full > 0);
    assert_true(ss.servers_tracked <= 1);
    claims_free(&got);

    memset(&o, 0, sizeof(o));
    o.max_hosts = 1;
    o.max_evidence = 2;
    stream_claims(fx->cat, &fx->fl, &o, &got, &ss);
    assert_true(ss.hosts <= 1 && got.n <= 1);
    assert_true(ss.hosts_dropped > 0);
    assert_true(ss.evidence_dropped > 0);
    claims_free(&got);

    memset(&o, 0, sizeof(o));
    o.max_evidence_total = 3;
    stream_claims(fx->cat, &fx->fl, &o, &got, &ss);
    assert_true(ss.evidence <= 3 && ss.evidence_dropped > 0);
    claims_free(&got);

    memset(&o, 0, sizeof(o));
    o.max_pending = 1;
    stream_claims(fx->cat, &fx->fl, &o, &got, &ss);
    printf("# pending cap 1: %llu dropped\n",
           (unsigned long long)ss.pending_dropped);
    assert_true(ss.pending_dropped > 0);
    assert_true(ss.pending <= 1);
    claims_free(&got);
}

static uint64_t rstate = 7;

static uint64_t rnd(void)
{
    rstate = rstate * 6364136223846793005ULL + 1442695040888963407ULL;
    return rstate >> 33;
}

static void random_flow(fdx_flow *f, uint64_t t)
{
    memset(f, 0, sizeof(*f));
    f->src.b[10] = f->src.b[11] = 0xff;
    f->dst.b[10] = f->dst.b[11] = 0xff;
    f->src.b[12] = 10;
    f->src.b[13] = (uint8_t)rnd();
    f->src.b[14] = (uint8_t)rnd();
    f->src.b[15] = (uint8_t)rnd();
    f->dst.b[12] = 192;
    f->dst.b[15] = (uint8_t)(rnd() % 200);
    f->sport = (uint16_t)(1024 + rnd() % 60000);
    f->dport = rnd() % 2 ? 80 : (uint16_t)(rnd() % 2 ? 443 : rnd());
    f->proto = 6;
    f->packets = 1 + rnd() % 5000;
    f->octets = f->packets * (40 + rnd() % 1460);
    f->first_ms = t;
    f->last_ms = t + rnd() % 100000;
    f->tcp_flags = rnd() % 4 ? 0x18 : 0x19;
}

/* Bytes in use after n random flows, advancing every 10 s. */
/*
 * Every fifth record is one of the sample's, its client moved to an
 * address of its pass over the sample and its time to now, so that the mirror calibrates and
 * hosts gather evidence among the noise.
 */
static void sample_flow(const flows *fl, fdx_flow *f, size_t i, uint64_t t)
{
    const fdx_flow *g = &fl->v[i % fl->n];
    uint64_t d = g->last_ms - g->first_ms;
    fdx_addr *cl;

    *f = *g;
    cl = f->sport > f->dport ? &f->src : &f->dst;
    cl->b[13] = (uint8_t)(i / fl->n);
    cl->b[14] = (uint8_t)(i / fl->n >> 8);
    f->first_ms = t;
    f->last_ms = t + d;
}

static size_t random_run(const fdx_catalog *cat, const flows *fl, size_t n,
                         fdx_stream_stats *ss)
{
    fdx_stream_opts o;
    fdx_stream *st;
    size_t base, used;
    uint64_t t = 1700000000000ULL;

    memset(&o, 0, sizeof(o));
    o.max_open = 5000;
    o.max_servers = 64;
    o.server_sample = 256;
    o.max_sample_total = 4096;
    o.max_pending = 1000;
    o.max_hosts = 500;
    o.max_evidence = 16;
    o.max_evidence_total = 2000;
    base = mem_now;
    st = fdx_stream_new(cat, &o);
    assert_non_null(st);
    for (size_t i = 0; i < n; i++, t += 5) {
        fdx_flow f;

        if (i % 5 == 0)
            sample_flow(fl, &f, i / 5, t);
        else
            random_flow(&f, t);
        fdx_stream_add(st, &f);
        if (i % 2000 == 1999)
            assert_int_equal(fdx_stream_advance(st, t, NULL, NULL), 0);
    }
    used = mem_now - base;
    fdx_stream_get_stats(st, ss);
    assert_true(ss->open <= o.max_open);
    assert_true(ss->servers_tracked <= o.max_servers);
    assert_true(ss->pending <= o.max_pending);
    assert_true(ss->hosts <= o.max_hosts);
    assert_true(ss->evidence <= o.max_evidence_total);
    fdx_stream_free(st);
    return used;
}

/* Memory follows the caps, not the input: four times the flows, about
 * the same bytes in use. */
static void test_random_bounded(void **state)
{
    fixture *fx = *state;
    fdx_stream_stats a, b;
    size_t m1 = random_run(fx->cat, &fx->fl, 100000, &a);
    size_t m4 = random_run(fx->cat, &fx->fl, 400000, &b);

    printf("# random: %zu bytes after 100k flows, %zu after 400k; "
           "%llu hosts, %llu evidence kept, %llu dropped; dropped conns "
           "%llu, servers evicted %llu, pending %llu\n", m1, m4,
           (unsigned long long)b.hosts, (unsigned long long)b.evidence,
           (unsigned long long)b.evidence_dropped,
           (unsigned long long)b.conns_dropped,
           (unsigned long long)b.servers_evicted,
           (unsigned long long)b.pending_dropped);
    assert_true(b.conns_dropped > 0 && b.servers_evicted > 0);
    assert_true(b.hosts_dropped > 0 && b.evidence_dropped > 0);
    assert_true(m4 <= m1 + m1 / 2);
}

static void tcp_flow(fdx_flow *f, int to_client, uint16_t cport,
                     uint64_t first_s, uint64_t secs, uint64_t octets,
                     uint8_t flags)
{
    fdx_addr cl, sv;

    memset(f, 0, sizeof(*f));
    assert_int_equal(fdx_addr_parse(&cl, "10.1.1.1"), 0);
    assert_int_equal(fdx_addr_parse(&sv, "192.0.2.80"), 0);
    f->src = to_client ? sv : cl;
    f->dst = to_client ? cl : sv;
    f->sport = to_client ? 80 : cport;
    f->dport = to_client ? cport : 80;
    f->proto = 6;
    f->octets = octets;
    f->packets = octets / 1000 + 1;
    f->first_ms = 1700000000000ULL + first_s * 1000;
    f->last_ms = f->first_ms + secs * 1000;
    f->tcp_flags = flags;
}

/*
 * Joining as scan joins: pieces cut at a 60 s active timeout, the same
 * records again from a second exporter, a biflow, and a port reused
 * after FIN both ways give scan's connections and duplicates.
 */
static void test_join_as_scan(void **state)
{
    fixture *fx = *state;
    fdx_flow f[12];
    size_t n = 0;
    fdx_scan *sc = fdx_scan_new(fx->cat, NULL);
    fdx_stream *st = fdx_stream_new(fx->cat, NULL);
    fdx_scan_stats a;
    fdx_stream_stats b;

    for (int k = 0; k < 3; k++)
        tcp_flow(&f[n++], 1, 40000, 60 * k, 60, 5000000, k == 2 ? 0x19 : 0x18);
    tcp_flow(&f[n++], 0, 40000, 0, 180, 900, 0x19);
    f[n] = f[1];                        /* a second exporter's copy */
    f[n].first_ms += 500;
    f[n++].last_ms += 500;
    tcp_flow(&f[n], 0, 40001, 30, 2, 600, 0x1b);   /* a biflow */
    f[n].flags = FDX_FLOW_BIFLOW;
    f[n].rev_octets = 70000;
    f[n++].rev_packets = 60;
    tcp_flow(&f[n++], 1, 40002, 10, 5, 80000, 0x19);
    tcp_flow(&f[n++], 0, 40002, 10, 5, 700, 0x19);
    tcp_flow(&f[n++], 1, 40002, 20, 5, 90000, 0x19);  /* port reused */
    tcp_flow(&f[n++], 0, 40002, 20, 5, 710, 0x19);
    assert_true(sc != NULL && st != NULL);
    /* in time order, as they come: a second exporter's copy before the
     * next piece (insertion sort keeps ties in order) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && f[j - 1].first_ms > f[j].first_ms; j--) {
            fdx_flow t = f[j];

            f[j] = f[j - 1];
            f[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        fdx_scan_add(sc, &f[i]);
        fdx_stream_add(st, &f[i]);
        fdx_stream_advance(st, f[i].first_ms, NULL, NULL);
    }
    assert_int_equal(fdx_scan_finish(sc), 0);
    assert_int_equal(fdx_stream_flush(st, NULL, NULL), 0);
    fdx_scan_get_stats(sc, &a);
    fdx_stream_get_stats(st, &b);
    assert_int_equal(a.connections, 4);
    assert_int_equal(b.connections, a.connections);
    assert_int_equal(b.duplicates, a.duplicates);
    assert_int_equal(b.duplicates, 1);
    fdx_scan_free(sc);
    fdx_stream_free(st);
}

/* Out of memory anywhere: an error or a smaller result, never a crash
 * or a leak (run under ASan). */
static void test_out_of_memory(void **state)
{
    fixture *fx = *state;
    size_t before = mem_now;

    fdx_set_allocator(&failing);
    for (fail_at = 1; fail_at < 4000; fail_at += 3) {
        fdx_stream *st;
        uint64_t tick = 0;

        allocs = 0;
        if ((st = fdx_stream_new(fx->cat, NULL)) == NULL)
            continue;
        for (size_t i = 0; i < fx->fl.n; i++) {
            const fdx_flow *f = &fx->fl.v[i];

            if (tick == 0)
                tick = f->first_ms - f->first_ms % TICK_MS + TICK_MS;
            for (; f->first_ms >= tick; tick += TICK_MS)
                (void)fdx_stream_advance(st, tick, NULL, NULL);
            fdx_stream_add(st, f);
        }
        (void)fdx_stream_flush(st, NULL, NULL);
        fdx_stream_free(st);
        assert_int_equal(mem_now, before);
        if (allocs < fail_at)
            break;      /* the run needed fewer: every one was tried */
    }
    printf("# out of memory: failed allocations 1 to %zu, every third\n",
           fail_at);
    fail_at = 0;
    fdx_set_allocator(&counting);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_as_scan),
        cmocka_unit_test(test_sample_agrees),
        cmocka_unit_test(test_recompute_only_new),
        cmocka_unit_test(test_caps_counted),
        cmocka_unit_test(test_random_bounded),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_other_file),
    };

    by_last = getenv("FDX_STREAM_ORDER") != NULL &&
              strcmp(getenv("FDX_STREAM_ORDER"), "last") == 0;
    fdx_set_allocator(&counting);
    return cmocka_run_group_tests(tests, setup, teardown);
}
