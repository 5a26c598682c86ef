/*
 * Connection assembly.  Exporters cut long flows at their active timeout
 * and report the two directions of a connection as separate records (or,
 * for RFC 5103 biflows, as one).  This module reduces every TCP record to
 * one or two "halves" oriented client/server, then sorts them so that the
 * records of one connection are adjacent, and joins them.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#include <pthread.h>
#endif

#include "internal.h"
#include "scan_int.h"

#define FDX__TCP 6
#define FDX__FIN 0x01
#define FDX__RST 0x04

/*
 * Which end is the server: the one on a well-known port, otherwise the
 * one on the lower port.  Download servers listen on low ports; clients
 * use ephemeral ones.
 */
static int src_is_server(uint16_t sport, uint16_t dport)
{
    int slow = sport < 1024, dlow = dport < 1024;

    if (slow != dlow)
        return slow;
    return sport < dport;
}

static uint64_t half_hash(const fdx__half *h);

/* Into the part of its tuple's hash: the parts are joined in hash order. */
static int halves_push(fdx__halves *hv, const fdx__half *h)
{
    fdx__part *p;

    if (hv->v == NULL &&
        (hv->v = fdx__calloc(FDX__NPART, sizeof(*hv->v))) == NULL)
        return FDX_ENOMEM;
    p = &hv->v[half_hash(h) >> (64 - FDX__NPART_BITS)];
    if (fdx__grow(&p->v, &p->cap, p->n, sizeof(*p->v)) < 0)
        return FDX_ENOMEM;
    p->v[p->n++] = *h;
    hv->n++;
    return 0;
}

void fdx__halves_free(fdx__halves *hv)
{
    for (size_t i = 0; hv->v != NULL && i < FDX__NPART; i++)
        fdx__free(hv->v[i].v);
    fdx__free(hv->v);
    memset(hv, 0, sizeof(*hv));
}

static void half_orient(fdx__half *h, const fdx_addr *src,
                        const fdx_addr *dst, uint16_t sport, uint16_t dport)
{
    int srv = src_is_server(sport, dport);

    h->client = srv ? *dst : *src;
    h->server = srv ? *src : *dst;
    h->cport = srv ? dport : sport;
    h->sport = srv ? sport : dport;
    h->to_client = (uint8_t)srv;
}

int fdx__flow_halves(const fdx_flow *f, fdx__half h[2])
{
    if (f->proto != FDX__TCP)
        return 0;
    memset(&h[0], 0, sizeof(h[0]));
    half_orient(&h[0], &f->src, &f->dst, f->sport, f->dport);
    h[0].octets = f->octets;
    h[0].packets = f->packets;
    h[0].first_ms = f->first_ms;
    h[0].last_ms = f->last_ms < f->first_ms ? f->first_ms : f->last_ms;
    h[0].tcp_flags = f->tcp_flags;
    h[0].sampled = (f->flags & FDX_FLOW_SAMPLED) || f->sampling > 1;
    if (!(f->flags & FDX_FLOW_BIFLOW) || f->rev_packets == 0)
        return 1;
    h[1] = h[0];
    h[1].to_client = !h[0].to_client;
    h[1].octets = f->rev_octets;
    h[1].packets = f->rev_packets;
    return 2;
}

int fdx__halves_add(fdx__halves *hv, const fdx_flow *f)
{
    fdx__half h[2];
    int n = fdx__flow_halves(f, h), rc;

    for (int i = 0; i < n; i++)
        if ((rc = halves_push(hv, &h[i])) < 0)
            return rc;
    return n > 0;
}

static int half_cmp(const void *a, const void *b)
{
    const fdx__half *x = a, *y = b;
    int c;

    if ((c = fdx__addr_order(&x->client, &y->client)) != 0)
        return c;
    if ((c = fdx__addr_order(&x->server, &y->server)) != 0)
        return c;
    if (x->sport != y->sport)
        return x->sport < y->sport ? -1 : 1;
    if (x->cport != y->cport)
        return x->cport < y->cport ? -1 : 1;
    if (x->first_ms != y->first_ms)
        return x->first_ms < y->first_ms ? -1 : 1;
    return (int)x->to_client - (int)y->to_client;
}

static uint64_t addr_hash(uint64_t h, const fdx_addr *a)
{
    return fdx__mix64(fdx__mix64(h, fdx__be64(a->b)), fdx__be64(a->b + 8));
}

static uint64_t half_hash(const fdx__half *h)
{
    uint64_t k = addr_hash(addr_hash(0, &h->client), &h->server);

    return fdx__mix64(k, ((uint64_t)h->sport << 16) | h->cport);
}

/* The hash of half i of a part (ctx). */
static uint64_t tuple_hash(const void *ctx, size_t i)
{
    return half_hash(&((const fdx__part *)ctx)->v[i]);
}

/* A run of one tuple's halves (a few records): insertion sort by time. */
static void tuple_run(const void *ctx, uint32_t *idx, size_t n)
{
    const fdx__half *v = ((const fdx__part *)ctx)->v;

    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && half_cmp(&v[idx[b - 1]], &v[idx[b]]) > 0;
             b--) {
            uint32_t t = idx[b];

            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
}

static int same_tuple(const fdx__half *a, const fdx__half *b)
{
    return a->cport == b->cport && a->sport == b->sport &&
           fdx__addr_order(&a->client, &b->client) == 0 &&
           fdx__addr_order(&a->server, &b->server) == 0;
}

static void conn_start(fdx__conn *c, const fdx__half *h)
{
    memset(c, 0, sizeof(*c));
    c->client = h->client;
    c->server = h->server;
    c->cport = h->cport;
    c->sport = h->sport;
    c->first_ms = h->first_ms;
    c->last_ms = h->last_ms;
}

static void conn_add(fdx__conn *c, const fdx__half *h)
{
    if (h->to_client) {
        c->s2c_octets += h->octets;
        c->s2c_packets += h->packets;
    } else {
        c->c2s_octets += h->octets;
        c->c2s_packets += h->packets;
    }
    if (h->first_ms < c->first_ms)
        c->first_ms = h->first_ms;
    if (h->last_ms > c->last_ms)
        c->last_ms = h->last_ms;
    c->records++;
    c->sampled |= h->sampled;
}

/*
 * The same record twice: two exporters on the path, or the same input
 * given twice.  Same direction, bytes and packets, start and end within
 * FDX__DUP_MS of each other: exporters' clocks and time resolutions
 * differ by up to a second.  The pieces of a flow cut at an active
 * timeout are that timeout apart (a minute or more, in practice); a meter
 * cutting flows every two seconds or less would see equal pieces of a
 * steady transfer dropped.
 */
#define FDX__DUP_MS 2000

static uint64_t ms_apart(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

static int duplicate(const fdx__half *h, const fdx__half *prev)
{
    if (prev == NULL || h->octets != prev->octets ||
        h->packets != prev->packets)
        return 0;
    return ms_apart(h->first_ms, prev->first_ms) <= FDX__DUP_MS &&
           ms_apart(h->last_ms, prev->last_ms) <= FDX__DUP_MS;
}

void fdx__conn_start(fdx__conn *c, const fdx__half *h)
{
    conn_start(c, h);
}

void fdx__conn_add(fdx__conn *c, const fdx__half *h)
{
    conn_add(c, h);
}

int fdx__half_duplicate(const fdx__half *h, const fdx__half *prev)
{
    return duplicate(h, prev);
}

int fdx__half_closes(const fdx__half *h)
{
    return (h->tcp_flags & (FDX__FIN | FDX__RST)) != 0;
}

/* The walk through the ordered halves, joining them. */
typedef struct joiner {
    fdx__conn *cv;
    size_t n;
    uint8_t closed[2];
    const fdx__half *last[2], *prev;
    uint64_t gap_ms, *dups;
} joiner;

/*
 * A record continues the current connection when it has the same 5-tuple,
 * starts within gap_ms of the connection's last activity, and its own
 * direction has not already been closed by FIN or RST (port reuse).
 * Duplicate records are dropped and counted.
 */
static void join_half(joiner *j, const fdx__half *h)
{
    fdx__conn *c = j->n ? &j->cv[j->n - 1] : NULL;
    int same = c != NULL && j->prev != NULL && same_tuple(j->prev, h);

    j->prev = h;
    if (same && duplicate(h, j->last[h->to_client])) {
        (*j->dups)++;
        return;
    }
    if (!same || h->first_ms > c->last_ms + j->gap_ms ||
        j->closed[h->to_client]) {
        c = &j->cv[j->n++];
        conn_start(c, h);
        j->closed[0] = j->closed[1] = 0;
        j->last[0] = j->last[1] = NULL;
    }
    j->last[h->to_client] = h;
    conn_add(c, h);
    if (h->tcp_flags & (FDX__FIN | FDX__RST))
        j->closed[h->to_client] = 1;
}

/*
 * How many halves ahead of the walk are fetched into the cache: the walk
 * visits a part's halves in hash order.
 */
#define FDX__PREFETCH 8

/*
 * The halves of a part are ordered by a hash of their 5-tuple; a run of
 * one hash (one tuple, or two that share a hash) is put in full order, by
 * tuple and time, just before it is joined, while its halves are cached.
 */
static void join_part(joiner *j, const fdx__part *p, uint32_t *order,
                      const uint64_t *keys)
{
    size_t pf = 0;

    /* a tuple's halves are all in one part: none continues the last */
    j->prev = NULL;
    for (size_t i = 0; i < p->n;) {
        size_t e = i + 1;

        while (e < p->n && keys[e] == keys[i])
            e++;
        for (; pf < e + FDX__PREFETCH && pf < p->n; pf++) {
            const fdx__half *h = &p->v[order[pf]];

            fdx__prefetch(h);
            fdx__prefetch((const char *)(h + 1) - 1);
        }
        if (e - i > 1)
            tuple_run(p, order + i, e - i);
        for (; i < e; i++)
            join_half(j, &p->v[order[i]]);
    }
}

/*
 * The halves freed part by part lie in the middle of glibc's heap when
 * malloc served them from there (it does once the process has freed a
 * large block, as inflating a compressed catalog does), and stay resident
 * unless trimmed, while the connections grow elsewhere: every
 * FDX__TRIM_PARTS parts they are given back.
 */
#define FDX__TRIM_PARTS 16

#if defined(__GLIBC__)
/*
 * glibc sets up its heap on the first call into it, and marks it set up
 * before it is: a malloc_trim() on the other worker meanwhile walks bins
 * not yet initialised (a SEGV at address 8).  That first call is
 * malloc_trim() itself only when another allocator serves malloc
 * (AddressSanitizer's, or one preloaded), as in CI's sanitizer build;
 * once, before either worker trims, it is safe.
 */
static pthread_once_t trim_ready = PTHREAD_ONCE_INIT;

static void trim_first(void)
{
    malloc_trim(0);
}
#endif

static void give_back(void)
{
#if defined(__GLIBC__)
    pthread_once(&trim_ready, trim_first);
    malloc_trim(0);
#endif
}

/*
 * Each part is joined on its own: two workers take half of the parts
 * each, part k's connections going to cv + off[k] (a part cannot give
 * more connections than it has halves), and are then moved together in
 * part order, so that the result is the one of joining the parts in
 * order on one thread.
 */
typedef struct join_work {
    fdx__halves *hv;
    fdx__conn *cv;
    uint64_t gap_ms;
    size_t off[FDX__NPART];     /* first slot of part k's connections */
    size_t got[FDX__NPART];     /* connections joined from part k */
    uint64_t dups[2];
    int rc[2];
} join_work;

/* Sorts part k, joins it and frees it; returns 0 or FDX_ENOMEM. */
static int join_one(join_work *w, unsigned worker, size_t k)
{
    fdx__part *p = &w->hv->v[k];
    joiner j;
    uint32_t *order;
    uint64_t *keys;
    int rc;

    /* the runs are sorted by join_part(), when their halves are cached */
    if ((rc = fdx__sort_by_key(p->n, tuple_hash, p, &order, &keys)) != 0)
        return rc;
    memset(&j, 0, sizeof(j));
    j.cv = w->cv + w->off[k];
    j.gap_ms = w->gap_ms;
    j.dups = &w->dups[worker];
    join_part(&j, p, order, keys);
    w->got[k] = j.n;
    fdx__free(order);
    fdx__free(keys);
    fdx__free(p->v);
    memset(p, 0, sizeof(*p));
    return 0;
}

/*
 * One worker's half of the parts, in order, each freed once joined so
 * that its memory serves the connections.
 */
static void join_worker(void *ctx, unsigned worker)
{
    join_work *w = ctx;
    size_t half = FDX__NPART / 2, k0 = worker * half;

    for (size_t k = k0; k < k0 + half && w->rc[worker] == 0; k++) {
        if (w->hv->v[k].n != 0)
            w->rc[worker] = join_one(w, worker, k);
        if (k % FDX__TRIM_PARTS == FDX__TRIM_PARTS - 1)
            give_back();
    }
}

/*
 * The parts in order of the hash's top bits, each in order of the whole
 * hash, give the connections in the order of one sort of all the halves
 * by hash (stable, as the parts keep the order of arrival).
 */
static int join_parts(joiner *j, fdx__halves *hv)
{
    join_work w;
    size_t off = 0;

    memset(&w, 0, sizeof(w));
    w.hv = hv;
    w.cv = j->cv;
    w.gap_ms = j->gap_ms;
    for (size_t k = 0; k < FDX__NPART; k++) {
        w.off[k] = off;
        off += hv->v[k].n;
    }
    fdx__run2(join_worker, &w);
    *j->dups += w.dups[0] + w.dups[1];
    if (w.rc[0] != 0 || w.rc[1] != 0)
        return w.rc[0] != 0 ? w.rc[0] : w.rc[1];
    for (size_t k = 0; k < FDX__NPART; k++) {
        if (w.got[k] != 0 && w.off[k] != j->n)
            memmove(j->cv + j->n, j->cv + w.off[k],
                    w.got[k] * sizeof(*j->cv));
        j->n += w.got[k];
    }
    return 0;
}

int fdx__conns_build(fdx__halves *hv, uint64_t gap_ms, fdx__conn **out,
                     size_t *nout, uint64_t *dups)
{
    joiner j;
    int rc;

    *out = NULL;
    *nout = 0;
    if (hv->n == 0) {
        fdx__halves_free(hv);
        return 0;
    }
    memset(&j, 0, sizeof(j));
    j.gap_ms = gap_ms;
    j.dups = dups;
    /* not zeroed: conn_start() clears each one used, and the pages of
     * the ones joining leaves unused are never touched */
    j.cv = fdx__malloc(hv->n * sizeof(*j.cv));
    rc = j.cv != NULL ? join_parts(&j, hv) : FDX_ENOMEM;
    if (j.n < hv->n && rc == 0) {
        /* most halves pair up: give back what joining did not use */
        fdx__conn *shrunk = fdx__realloc(j.cv, j.n * sizeof(*j.cv));

        if (shrunk != NULL)
            j.cv = shrunk;
    }
    fdx__halves_free(hv);
    give_back();
    if (rc != 0) {
        fdx__free(j.cv);
        return rc;
    }
    *out = j.cv;
    *nout = j.n;
    return 0;
}
