/*
 * Connection assembly.  Exporters cut long flows at their active timeout
 * and report the two directions of a connection as separate records (or,
 * for RFC 5103 biflows, as one).  This module reduces every TCP record to
 * one or two "halves" oriented client/server, then sorts them so that the
 * records of one connection are adjacent, and joins them.
 */
#include <stdlib.h>
#include <string.h>

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

static int halves_push(fdx__halves *hv, const fdx__half *h)
{
    if (fdx__grow(&hv->v, &hv->cap, hv->n, sizeof(*hv->v)) < 0)
        return FDX_ENOMEM;
    hv->v[hv->n++] = *h;
    return 0;
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

int fdx__halves_add(fdx__halves *hv, const fdx_flow *f)
{
    fdx__half h;
    int rc;

    if (f->proto != FDX__TCP)
        return 0;
    memset(&h, 0, sizeof(h));
    half_orient(&h, &f->src, &f->dst, f->sport, f->dport);
    h.octets = f->octets;
    h.packets = f->packets;
    h.first_ms = f->first_ms;
    h.last_ms = f->last_ms < f->first_ms ? f->first_ms : f->last_ms;
    h.tcp_flags = f->tcp_flags;
    h.sampled = (f->flags & FDX_FLOW_SAMPLED) || f->sampling > 1;
    if ((rc = halves_push(hv, &h)) < 0)
        return rc;
    if (!(f->flags & FDX_FLOW_BIFLOW) || f->rev_packets == 0)
        return 1;
    h.to_client = !h.to_client;
    h.octets = f->rev_octets;
    h.packets = f->rev_packets;
    if ((rc = halves_push(hv, &h)) < 0)
        return rc;
    return 1;
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

static uint64_t tuple_hash(const void *ctx, size_t i)
{
    const fdx__half *h = &((const fdx__halves *)ctx)->v[i];
    uint64_t k = addr_hash(addr_hash(0, &h->client), &h->server);

    return fdx__mix64(k, ((uint64_t)h->sport << 16) | h->cport);
}

/* A run of one tuple's halves (a few records): insertion sort by time. */
static void tuple_run(const void *ctx, uint32_t *idx, size_t n)
{
    const fdx__half *v = ((const fdx__halves *)ctx)->v;

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
    int same = c != NULL && same_tuple(j->prev, h);

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
 * visits the halves in hash order, a cache miss each otherwise.
 */
#define FDX__PREFETCH 8

/*
 * The halves are ordered by a hash of their 5-tuple; a run of one hash
 * (one tuple, or two that share a hash) is put in full order, by tuple
 * and time, just before it is joined, while its halves are in the cache.
 */
static void join_all(joiner *j, const fdx__halves *hv, uint32_t *order)
{
    size_t pf = 0;
    uint64_t next = tuple_hash(hv, order[0]);

    for (size_t i = 0; i < hv->n;) {
        size_t e = i + 1;
        uint64_t key = next;

        /* the keys are hashed again rather than kept: 8 bytes a half */
        while (e < hv->n && (next = tuple_hash(hv, order[e])) == key)
            e++;
        for (; pf < e + FDX__PREFETCH && pf < hv->n; pf++) {
            const fdx__half *h = &hv->v[order[pf]];

            fdx__prefetch(h);
            fdx__prefetch((const char *)(h + 1) - 1);
        }
        if (e - i > 1)
            tuple_run(hv, order + i, e - i);
        for (; i < e; i++)
            join_half(j, &hv->v[order[i]]);
    }
}

int fdx__conns_build(fdx__halves *hv, uint64_t gap_ms, fdx__conn **out,
                     size_t *nout, uint64_t *dups)
{
    joiner j;
    uint32_t *order;
    int rc;

    *out = NULL;
    *nout = 0;
    if (hv->n == 0)
        return 0;
    /* the runs are sorted by join_all(), when their halves are cached */
    if ((rc = fdx__order_by_key(hv->n, tuple_hash, NULL, hv, &order)) != 0)
        return rc;
    memset(&j, 0, sizeof(j));
    j.gap_ms = gap_ms;
    j.dups = dups;
    /* not zeroed: conn_start() clears each one used, and the pages of
     * the ones joining leaves unused are never touched */
    j.cv = fdx__malloc(hv->n * sizeof(*j.cv));
    if (j.cv != NULL)
        join_all(&j, hv, order);
    fdx__free(order);
    if (j.cv == NULL)
        return FDX_ENOMEM;
    /* most halves pair up: give back what joining did not use */
    if (j.n < hv->n) {
        fdx__conn *shrunk = fdx__realloc(j.cv, j.n * sizeof(*j.cv));

        if (shrunk != NULL)
            j.cv = shrunk;
    }
    *out = j.cv;
    *nout = j.n;
    return 0;
}
