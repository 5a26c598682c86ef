/*
 * The scan pipeline run incrementally (include/flowdex/stream.h).
 *
 * Open connections sit in a hash table by 5-tuple and are joined record
 * by record with conn.c's steps.  Closed ones go to their server
 * endpoint's sample, from which model.c's calibration relearns the
 * endpoint each time the sample has doubled; they are matched by
 * match.c once the endpoint is a known repository server, waiting in a
 * queue until then.  Each host keeps its evidence and the running sum of
 * its log-likelihoods per hypothesis, and infer.c recomputes the claims
 * of the hosts that got new evidence from those alone.
 *
 * The stream holds an fdx_scan for the tables matching and inference
 * read (hypotheses, path lengths, known servers in s->servers); it never
 * runs the batch pipeline on it.
 */
#include <stdlib.h>
#include <string.h>

#include "flowdex/stream.h"
#include "internal.h"
#include "scan_int.h"

#define FDX__NONE UINT32_MAX
#define FDX__SCRATCH 4096
/* a connection closed both ways lingers so that a second exporter's
 * copy of its last record is still taken for the duplicate it is */
#define FDX__FIN_LINGER_MS 10000

/* ---------------------------------------------------------------- */

/*
 * Chained hash index over slots 0..cap of a caller's array: head[] per
 * bucket, next[] and the hash per slot.  The caller compares keys.
 */
typedef struct smap {
    uint32_t *head, *next;
    uint64_t *hash;
    size_t nb, cap;
} smap;

static void smap_free(smap *m)
{
    fdx__free(m->head);
    fdx__free(m->next);
    fdx__free(m->hash);
    memset(m, 0, sizeof(*m));
}

/* Room for slots below cap; buckets double with them and are rebuilt
 * from the slots in use (used(ctx, i)). */
static int smap_reserve(smap *m, size_t cap, int (*used)(void *, size_t),
                        void *ctx)
{
    size_t nb = m->nb ? m->nb : 64;
    uint32_t *head, *next;
    uint64_t *hash;

    if (cap <= m->cap)
        return 0;
    while (nb < cap)
        nb *= 2;
    next = fdx__realloc(m->next, nb * sizeof(*next));
    if (next != NULL)
        m->next = next;
    hash = fdx__realloc(m->hash, nb * sizeof(*hash));
    if (hash != NULL)
        m->hash = hash;
    head = fdx__malloc(nb * sizeof(*head));
    if (next == NULL || hash == NULL || head == NULL) {
        fdx__free(head);
        return FDX_ENOMEM;
    }
    memset(head, 0xff, nb * sizeof(*head));
    for (size_t i = 0; i < m->cap; i++)
        if (used(ctx, i)) {
            size_t b = m->hash[i] & (nb - 1);

            m->next[i] = head[b];
            head[b] = (uint32_t)i;
        }
    fdx__free(m->head);
    m->head = head;
    m->nb = m->cap = nb;
    return 0;
}

static void smap_insert(smap *m, uint64_t h, uint32_t slot)
{
    size_t b = h & (m->nb - 1);

    m->hash[slot] = h;
    m->next[slot] = m->head[b];
    m->head[b] = slot;
}

static void smap_remove(smap *m, uint32_t slot)
{
    uint32_t *p = &m->head[m->hash[slot] & (m->nb - 1)];

    while (*p != slot)
        p = &m->next[*p];
    *p = m->next[slot];
}

/* First slot of hash h at or after *it (FDX__NONE to start); iterate
 * with the slot returned until FDX__NONE. */
static uint32_t smap_next(const smap *m, uint64_t h, uint32_t it)
{
    uint32_t i = it == FDX__NONE ? (m->nb ? m->head[h & (m->nb - 1)]
                                          : FDX__NONE)
                                 : m->next[it];

    while (i != FDX__NONE && m->hash[i] != h)
        i = m->next[i];
    return i;
}

/* ---------------------------------------------------------------- */

typedef struct oconn {
    fdx__conn c;
    fdx__half last[2];
    uint8_t has_last[2], closed[2], used;
} oconn;

/* A server endpoint and its sample of connections. */
typedef struct endpoint {
    fdx_addr addr;
    uint16_t port;
    uint8_t used, known;
    fdx__conn *sample;
    size_t n, cap;
    uint64_t seen, tried;       /* connections seen; at the last try */
    uint64_t last_ms;
} endpoint;

typedef struct shost {
    fdx_addr addr;
    uint8_t dirty;
    double *score;              /* per hypothesis */
    fdx_evidence *ev;
    uint8_t *pos;               /* per evidence, row bytes: bit h set when
                                 * its lr for h is > 0 */
    fdx__pair_memo *memo;       /* per evidence: its pair search */
    size_t nev, cap;
} shost;

typedef struct cvec {
    fdx__conn *v;
    size_t n, cap;
} cvec;

struct fdx_stream {
    fdx_scan *scan;
    fdx_stream_opts o;
    fdx_stream_stats st;
    size_t nh;                  /* hypotheses, at least 1 */
    size_t row;                 /* bytes of a host's pos per evidence */
    oconn *oc;
    size_t noc, ocap;
    uint32_t *ofree;
    size_t nofree;
    smap omap;
    cvec done;                  /* closed, not yet handed on */
    endpoint *ep;
    size_t nep, epcap;
    uint32_t *efree;            /* forgotten slots below nep, max_servers */
    size_t nefree;
    smap emap;
    uint64_t sample_total;
    uint64_t rng;
    cvec pending;
    int newly_known;            /* an endpoint became known this round */
    shost *hosts;
    size_t nhosts, hcap;
    size_t ev_total;            /* evidence kept, all hosts */
    smap hmap;
    uint32_t *dirty;
    size_t ndirty, dcap;
    uint32_t *scratch;
    double *lr;
    double *lr_old;             /* a rematch's: the evidence as it was */
    fdx_evidence *hev;          /* recomputation scratch */
    fdx__conn *hconn;
    fdx__conn **hconnp;
    fdx_os_score *hscores;      /* the recomputed host's, nh of them */
};

static uint64_t addr_hash(uint64_t h, const fdx_addr *a)
{
    return fdx__mix64(fdx__mix64(h, fdx__be64(a->b)), fdx__be64(a->b + 8));
}

static size_t or_default(size_t v, size_t d)
{
    return v ? v : d;
}

static void opts_defaults(fdx_stream_opts *o)
{
    o->idle_ms = or_default(o->idle_ms, 60000);
    o->join_gap_ms = or_default(o->join_gap_ms, 300000);
    o->max_open = or_default(o->max_open, 1u << 20);
    o->max_servers = or_default(o->max_servers, 4096);
    o->server_sample = or_default(o->server_sample, 8192);
    o->max_sample_total = or_default(o->max_sample_total, 1u << 20);
    o->max_pending = or_default(o->max_pending, 65536);
    o->max_hosts = or_default(o->max_hosts, 65536);
    o->max_evidence = or_default(o->max_evidence, 4096);
    o->max_evidence_total = or_default(o->max_evidence_total, 1u << 20);
}

fdx_stream *fdx_stream_new(const fdx_catalog *cat,
                           const fdx_stream_opts *opts)
{
    fdx_stream *st = fdx__calloc(1, sizeof(*st));
    fdx_scan_opts so;

    if (st == NULL)
        return NULL;
    if (opts != NULL)
        st->o = *opts;
    opts_defaults(&st->o);
    memset(&so, 0, sizeof(so));
    so.log = st->o.log;
    so.join_gap_ms = st->o.join_gap_ms;
    st->rng = 0x9e3779b97f4a7c15ULL;
    if ((st->scan = fdx_scan_new(cat, &so)) == NULL)
        goto fail;
    st->nh = st->scan->nhyps ? st->scan->nhyps : 1;
    st->row = (st->nh + 7) / 8;
    st->scratch = fdx__malloc(FDX__SCRATCH * sizeof(*st->scratch));
    /* lr, then the expected counts fdx__match_conn works in */
    st->lr = fdx__calloc(2 * st->nh, sizeof(*st->lr));
    st->lr_old = fdx__calloc(2 * st->nh, sizeof(*st->lr_old));
    st->efree = fdx__malloc((st->o.max_servers ? st->o.max_servers : 1) *
                            sizeof(*st->efree));
    if (st->scratch == NULL || st->lr == NULL || st->lr_old == NULL ||
        st->efree == NULL)
        goto fail;
    return st;
fail:
    fdx_stream_free(st);
    return NULL;
}

static void hosts_free(fdx_stream *st)
{
    for (size_t i = 0; i < st->nhosts; i++) {
        fdx__free(st->hosts[i].score);
        fdx__free(st->hosts[i].ev);
        fdx__free(st->hosts[i].pos);
        fdx__free(st->hosts[i].memo);
    }
    fdx__free(st->hosts);
}

void fdx_stream_free(fdx_stream *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nep; i++)
        fdx__free(st->ep[i].sample);
    fdx__free(st->ep);
    fdx__free(st->efree);
    smap_free(&st->emap);
    hosts_free(st);
    smap_free(&st->hmap);
    fdx__free(st->oc);
    fdx__free(st->ofree);
    smap_free(&st->omap);
    fdx__free(st->done.v);
    fdx__free(st->pending.v);
    fdx__free(st->dirty);
    fdx__free(st->scratch);
    fdx__free(st->lr);
    fdx__free(st->lr_old);
    fdx__free(st->hev);
    fdx__free(st->hconn);
    fdx__free(st->hconnp);
    fdx__free(st->hscores);
    fdx_scan_free(st->scan);
    fdx__free(st);
}

/* ---------------------------------------------------------------- */
/* Joining */

static uint64_t tuple_hash(const fdx_addr *client, const fdx_addr *server,
                           uint16_t cport, uint16_t sport)
{
    uint64_t k = addr_hash(addr_hash(0, client), server);

    return fdx__mix64(k, ((uint64_t)sport << 16) | cport);
}

static uint64_t oconn_hash(const fdx__conn *c)
{
    return tuple_hash(&c->client, &c->server, c->cport, c->sport);
}

static int oconn_used(void *ctx, size_t i)
{
    fdx_stream *st = ctx;

    return i < st->noc && st->oc[i].used;
}

static uint32_t oconn_find(const fdx_stream *st, const fdx__half *h)
{
    uint64_t k = tuple_hash(&h->client, &h->server, h->cport, h->sport);

    for (uint32_t i = smap_next(&st->omap, k, FDX__NONE); i != FDX__NONE;
         i = smap_next(&st->omap, k, i)) {
        const fdx__conn *c = &st->oc[i].c;

        if (c->cport == h->cport && c->sport == h->sport &&
            fdx__addr_order(&c->client, &h->client) == 0 &&
            fdx__addr_order(&c->server, &h->server) == 0)
            return i;
    }
    return FDX__NONE;
}

static int cvec_push(cvec *v, const fdx__conn *c)
{
    if (fdx__grow(&v->v, &v->cap, v->n, sizeof(*v->v)) < 0)
        return FDX_ENOMEM;
    v->v[v->n++] = *c;
    return 0;
}

/* Hands connection i on to the next advance, and frees its slot.  The
 * closed ones waiting count against max_open with the open ones. */
static void oconn_close(fdx_stream *st, uint32_t i)
{
    oconn *o = &st->oc[i];

    if (cvec_push(&st->done, &o->c) < 0)
        st->st.conns_dropped++;
    smap_remove(&st->omap, i);
    o->used = 0;
    st->ofree[st->nofree++] = i;
    st->st.open--;
}

static int oconn_grow(fdx_stream *st)
{
    size_t cap = st->ocap ? 2 * st->ocap : 1024;
    oconn *oc;
    uint32_t *of;

    if (cap > st->o.max_open)
        cap = st->o.max_open;
    if ((of = fdx__realloc(st->ofree, cap * sizeof(*of))) == NULL)
        return FDX_ENOMEM;
    st->ofree = of;
    if ((oc = fdx__realloc(st->oc, cap * sizeof(*oc))) == NULL)
        return FDX_ENOMEM;
    st->oc = oc;
    if (smap_reserve(&st->omap, cap, oconn_used, st) < 0)
        return FDX_ENOMEM;
    st->ocap = cap;
    return 0;
}

/* A free slot for a new connection, or FDX__NONE at the cap. */
static uint32_t oconn_alloc(fdx_stream *st)
{
    if (st->st.open + st->done.n >= st->o.max_open)
        return FDX__NONE;
    if (st->nofree > 0)
        return st->ofree[--st->nofree];
    if (st->noc == st->ocap && oconn_grow(st) < 0)
        return FDX__NONE;
    return (uint32_t)st->noc++;
}

static void oconn_start(fdx_stream *st, const fdx__half *h)
{
    uint32_t i = oconn_alloc(st);
    oconn *o;

    if (i == FDX__NONE) {
        st->st.conns_dropped++;
        return;
    }
    o = &st->oc[i];
    memset(o, 0, sizeof(*o));
    o->used = 1;
    fdx__conn_start(&o->c, h);
    smap_insert(&st->omap, oconn_hash(&o->c), i);
    st->st.open++;
}

/*
 * conn.c's join, one record at a time: a record continues the open
 * connection of its 5-tuple when it starts within join_gap_ms of its
 * last activity and its direction was not closed by FIN or RST; a
 * duplicate of the direction's last record is dropped.
 */
static void join_half(fdx_stream *st, const fdx__half *h)
{
    uint32_t i = oconn_find(st, h);
    oconn *o = i != FDX__NONE ? &st->oc[i] : NULL;
    int d = h->to_client;

    if (o != NULL && o->has_last[d] && fdx__half_duplicate(h, &o->last[d])) {
        st->st.duplicates++;
        return;
    }
    if (o != NULL && (h->first_ms > o->c.last_ms + st->o.join_gap_ms ||
                      o->closed[d])) {
        oconn_close(st, i);
        o = NULL;
    }
    if (o == NULL) {
        oconn_start(st, h);
        if ((i = oconn_find(st, h)) == FDX__NONE)
            return;
        o = &st->oc[i];
    }
    o->last[d] = *h;
    o->has_last[d] = 1;
    fdx__conn_add(&o->c, h);
    if (fdx__half_closes(h))
        o->closed[d] = 1;
}

int fdx_stream_add(void *ud, const fdx_flow *flow)
{
    fdx_stream *st = ud;
    fdx__half h[2];
    int n;

    st->st.flows++;
    if (!fdx__flow_possible(flow)) {
        st->st.flows_invalid++;
        return 0;
    }
    if ((flow->flags & FDX_FLOW_SAMPLED) || flow->sampling > 1)
        st->st.flows_sampled++;
    if ((n = fdx__flow_halves(flow, h)) == 0)
        st->st.flows_ignored++;
    for (int k = 0; k < n; k++)
        join_half(st, &h[k]);
    return 0;
}

/* Closes what is idle at now_ms (every connection when all is set). */
static void close_idle(fdx_stream *st, uint64_t now_ms, int all)
{
    for (size_t i = 0; i < st->noc; i++) {
        const oconn *o = &st->oc[i];

        if (!o->used)
            continue;
        if (all || now_ms > o->c.last_ms + st->o.idle_ms ||
            (o->closed[0] && o->closed[1] &&
             now_ms > o->c.last_ms + FDX__FIN_LINGER_MS))
            oconn_close(st, (uint32_t)i);
    }
}

/* ---------------------------------------------------------------- */
/* Server endpoints: samples, calibration, the known servers */

static uint64_t ep_hash(const fdx_addr *a, uint16_t port)
{
    return fdx__mix64(addr_hash(1, a), port);
}

static int ep_used(void *ctx, size_t i)
{
    fdx_stream *st = ctx;

    return i < st->nep && st->ep[i].used;
}

static uint32_t ep_find(const fdx_stream *st, const fdx_addr *a,
                        uint16_t port)
{
    uint64_t k = ep_hash(a, port);

    for (uint32_t i = smap_next(&st->emap, k, FDX__NONE); i != FDX__NONE;
         i = smap_next(&st->emap, k, i))
        if (st->ep[i].port == port && fdx__addr_order(&st->ep[i].addr, a) == 0)
            return i;
    return FDX__NONE;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Forgets endpoint v, its slot going to the free list. */
static void ep_forget(fdx_stream *st, uint32_t v)
{
    smap_remove(&st->emap, v);
    st->sample_total -= st->ep[v].n;
    fdx__free(st->ep[v].sample);
    st->ep[v].sample = NULL;
    st->ep[v].used = 0;
    st->efree[st->nefree++] = v;
    st->st.servers_evicted++;
}

/*
 * Makes room in a full table: the least recently active eighth of the
 * endpoints that are not known servers is forgotten at once, so that
 * one scan of the table (and a sort of their times) pays for many new
 * endpoints; evicting one per new endpoint scanned the whole table each
 * time, a quarter of a busy collector's time.  Returns how many went;
 * 0 when every endpoint is a known server (or out of memory).
 */
static size_t ep_evict(fdx_stream *st)
{
    uint64_t *t = fdx__malloc(st->nep * sizeof(*t)), cut;
    size_t n = 0, want, gone = 0;

    if (t == NULL)
        return 0;
    for (size_t i = 0; i < st->nep; i++)
        if (st->ep[i].used && !st->ep[i].known)
            t[n++] = st->ep[i].last_ms;
    if (n > 0) {
        want = n / 8 > 0 ? n / 8 : 1;
        qsort(t, n, sizeof(*t), u64_cmp);
        cut = t[want - 1];
        for (size_t i = 0; i < st->nep && gone < want; i++) {
            const endpoint *e = &st->ep[i];

            if (e->used && !e->known && e->last_ms <= cut) {
                ep_forget(st, (uint32_t)i);
                gone++;
            }
        }
    }
    fdx__free(t);
    return gone;
}

/* A free endpoint slot: a forgotten one, a new one below the cap, or
 * one made by eviction; FDX__NONE when none can be had. */
static uint32_t ep_slot(fdx_stream *st)
{
    if (st->nefree == 0 && st->nep == st->o.max_servers &&
        ep_evict(st) == 0)
        return FDX__NONE;
    if (st->nefree > 0)
        return st->efree[--st->nefree];
    if (fdx__grow(&st->ep, &st->epcap, st->nep, sizeof(*st->ep)) < 0 ||
        smap_reserve(&st->emap, st->epcap, ep_used, st) < 0)
        return FDX__NONE;
    st->ep[st->nep].used = 0;
    return (uint32_t)st->nep++;
}

/* The endpoint of c, tracked from now on if it was not; FDX__NONE when
 * the table is full of known servers. */
static uint32_t ep_get(fdx_stream *st, const fdx__conn *c)
{
    uint32_t i = ep_find(st, &c->server, c->sport);
    endpoint *e;

    if (i != FDX__NONE)
        return i;
    if ((i = ep_slot(st)) == FDX__NONE) {
        st->st.servers_dropped++;
        return i;
    }
    e = &st->ep[i];
    memset(e, 0, sizeof(*e));
    e->used = 1;
    e->addr = c->server;
    e->port = c->sport;
    smap_insert(&st->emap, ep_hash(&c->server, c->sport), i);
    return i;
}

static uint64_t rng_next(fdx_stream *st)
{
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    return st->rng;
}

/*
 * Every closed connection joins its endpoint's sample, as every one of a
 * scan's does: the calibration counts the small ones too (the median
 * request, the narrowed second vote).  Past the caps, a reservoir keeps
 * the sample an even one of all seen.
 */
static void ep_note(fdx_stream *st, endpoint *e, const fdx__conn *c)
{
    size_t j;

    e->seen++;
    if (c->last_ms > e->last_ms)
        e->last_ms = c->last_ms;
    if (e->n < st->o.server_sample &&
        st->sample_total < st->o.max_sample_total) {
        if (fdx__grow(&e->sample, &e->cap, e->n, sizeof(*e->sample)) == 0) {
            e->sample[e->n++] = *c;
            st->sample_total++;
            return;
        }
    }
    if (e->n < st->o.server_sample)
        st->st.sample_full++;
    if (e->n > 0 && (j = rng_next(st) % e->seen) < e->n)
        e->sample[j] = *c;
}

/* Index in s->servers of the first server at or after (a, port). */
static size_t server_pos(const fdx_scan *s, const fdx_addr *a, uint16_t port)
{
    size_t lo = 0, hi = s->nservers;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fdx__addr_order(&s->servers[mid].addr, a);

        if (c == 0)
            c = (int)s->servers[mid].port - (int)port;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* True when an HTTP repository server listens at a: only there is an
 * HTTPS endpoint taken for a repository (model.c's second pass). */
static int http_known_at(const fdx_scan *s, const fdx_addr *a)
{
    for (size_t i = server_pos(s, a, 0); i < s->nservers; i++) {
        if (fdx__addr_order(&s->servers[i].addr, a) != 0)
            return 0;
        if (!s->servers[i].tls)
            return 1;
    }
    return 0;
}

/* Puts sv among the known servers, in order, or updates it there. */
static int server_set(fdx_stream *st, const fdx__server *sv)
{
    fdx_scan *s = st->scan;
    size_t i = server_pos(s, &sv->addr, sv->port), cap = s->nservers;
    fdx__server *v;

    if (i < s->nservers && s->servers[i].port == sv->port &&
        fdx__addr_order(&s->servers[i].addr, &sv->addr) == 0) {
        s->servers[i] = *sv;
        return 0;
    }
    v = fdx__realloc(s->servers, (cap + 1) * sizeof(*v));
    if (v == NULL)
        return FDX_ENOMEM;
    s->servers = v;
    memmove(&v[i + 1], &v[i], (s->nservers - i) * sizeof(*v));
    v[i] = *sv;
    s->nservers++;
    st->st.servers_known = s->nservers;
    return 0;
}

static int ep_rematch(fdx_stream *st, const fdx__server *old,
                      const fdx__server *neu);

/*
 * Relearns endpoint e from its sample with model.c's calibration.  An
 * HTTP endpoint becomes known once it calibrates; an HTTPS one once an
 * HTTP server at its address is known.  A later calibration that
 * learns nothing keeps the model the endpoint had.
 */
static int ep_calibrate(fdx_stream *st, endpoint *e)
{
    fdx__server sv;
    int rc;

    e->tried = e->seen;
    memset(&sv, 0, sizeof(sv));
    sv.addr = e->addr;
    sv.port = e->port;
    rc = fdx__server_calibrate_conns(st->scan, &sv, e->sample, e->n);
    st->st.calibrations++;
    if (rc < 0)
        return rc;
    if (sv.tls ? !http_known_at(st->scan, &e->addr)
               : !fdx__server_calibrated(&sv))
        return 0;
    if (!e->known)
        st->newly_known = 1;
    e->known = 1;
    {
        const fdx__server *cur = fdx__server_find(st->scan, &e->addr,
                                                  e->port);
        fdx__server old;
        int had = cur != NULL;

        if (had)
            old = *cur;
        if ((rc = server_set(st, &sv)) < 0)
            return rc;
        if (had && memcmp(&old, &sv, sizeof(sv)) != 0)
            rc = ep_rematch(st, &old, &sv);
    }
    return rc;
}

/* The HTTPS endpoints at a, once an HTTP server there is known. */
static int ep_tls_at(fdx_stream *st, const fdx_addr *a)
{
    int rc = 0;

    for (size_t i = 0; i < st->nep && rc == 0; i++) {
        endpoint *e = &st->ep[i];

        if (e->used && !e->known && (e->port == 443 || e->port == 8443) &&
            fdx__addr_order(&e->addr, a) == 0)
            rc = ep_calibrate(st, e);
    }
    return rc;
}

/* Recalibrates each endpoint whose sample has doubled since its last
 * try (every endpoint that grew at all when all is set). */
static int ep_calibrate_grown(fdx_stream *st, int all)
{
    int rc = 0;

    for (size_t i = 0; i < st->nep && rc == 0; i++) {
        endpoint *e = &st->ep[i];
        int was = e->known;

        if (!e->used || e->seen == e->tried ||
            (!all && e->seen < 2 * e->tried))
            continue;
        rc = ep_calibrate(st, e);
        if (rc == 0 && !was && e->known && e->port != 443 &&
            e->port != 8443)
            rc = ep_tls_at(st, &e->addr);
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* Hosts */

static int host_used(void *ctx, size_t i)
{
    return i < ((fdx_stream *)ctx)->nhosts;
}

static uint32_t host_find(const fdx_stream *st, const fdx_addr *a)
{
    uint64_t k = addr_hash(2, a);

    for (uint32_t i = smap_next(&st->hmap, k, FDX__NONE); i != FDX__NONE;
         i = smap_next(&st->hmap, k, i))
        if (fdx__addr_order(&st->hosts[i].addr, a) == 0)
            return i;
    return FDX__NONE;
}

/* The host at a, made if new; FDX__NONE at the cap or out of memory. */
static uint32_t host_get(fdx_stream *st, const fdx_addr *a)
{
    uint32_t i = host_find(st, a);
    shost *h;

    if (i != FDX__NONE)
        return i;
    if (st->nhosts >= st->o.max_hosts ||
        fdx__grow(&st->hosts, &st->hcap, st->nhosts, sizeof(*st->hosts)) < 0 ||
        smap_reserve(&st->hmap, st->hcap, host_used, st) < 0)
        return FDX__NONE;
    h = &st->hosts[st->nhosts];
    memset(h, 0, sizeof(*h));
    h->addr = *a;
    if ((h->score = fdx__calloc(st->nh, sizeof(*h->score))) == NULL)
        return FDX__NONE;
    i = (uint32_t)st->nhosts++;
    smap_insert(&st->hmap, addr_hash(2, a), i);
    st->st.hosts = st->nhosts;
    return i;
}

/* Room for one more piece of evidence and its bits. */
static int host_reserve(const fdx_stream *st, shost *h)
{
    size_t cap = h->cap;
    uint8_t *pos;
    fdx__pair_memo *memo;

    if (fdx__grow(&h->ev, &cap, h->nev, sizeof(*h->ev)) < 0)
        return FDX_ENOMEM;
    if (cap == h->cap)
        return 0;
    if ((pos = fdx__realloc(h->pos, cap * st->row)) == NULL)
        return FDX_ENOMEM;
    h->pos = pos;
    if ((memo = fdx__realloc(h->memo, cap * sizeof(*memo))) == NULL)
        return FDX_ENOMEM;
    h->memo = memo;
    h->cap = cap;
    return 0;
}

/*
 * A host at its evidence cap forgets its oldest eighth: its scores stay
 * in the host's sums (the OS rests on all it did), and the packages it
 * showed were handed over when it came; new evidence keeps coming in.
 */
static void host_forget(fdx_stream *st, shost *h)
{
    size_t k = h->nev / 8 ? h->nev / 8 : 1;

    memmove(h->ev, h->ev + k, (h->nev - k) * sizeof(*h->ev));
    memmove(h->pos, h->pos + k * st->row, (h->nev - k) * st->row);
    memmove(h->memo, h->memo + k, (h->nev - k) * sizeof(*h->memo));
    h->nev -= k;
    st->ev_total -= k;
    st->st.evidence_dropped += k;
}

static int host_dirty(fdx_stream *st, uint32_t i)
{
    shost *h = &st->hosts[i];

    if (h->dirty)
        return 0;
    if (fdx__grow(&st->dirty, &st->dcap, st->ndirty, sizeof(*st->dirty)) < 0)
        return FDX_ENOMEM;
    st->dirty[st->ndirty++] = i;
    h->dirty = 1;
    return 0;
}

/* Adds evidence ev, with its scores lr, to its client's host. */
static int host_add(fdx_stream *st, const fdx_addr *client,
                    const fdx_evidence *ev, const double *lr)
{
    uint32_t i = host_get(st, client);
    shost *h;

    if (i == FDX__NONE) {
        st->st.hosts_dropped++;
        return 0;
    }
    h = &st->hosts[i];
    if (h->nev >= st->o.max_evidence ||
        (st->ev_total >= st->o.max_evidence_total && h->nev > 0))
        host_forget(st, h);
    else if (st->ev_total >= st->o.max_evidence_total) {
        st->st.evidence_dropped++;
        return 0;
    }
    if (host_reserve(st, h) < 0)
        return FDX_ENOMEM;
    memset(&h->pos[h->nev * st->row], 0, st->row);
    memset(&h->memo[h->nev], 0, sizeof(*h->memo));
    for (size_t k = 0; k < st->scan->nhyps; k++) {
        h->score[k] += lr[k];
        if (lr[k] > 0)
            h->pos[h->nev * st->row + k / 8] |= (uint8_t)(1u << (k % 8));
    }
    h->ev[h->nev++] = *ev;
    st->ev_total++;
    if (!h->dirty && fdx__grow(&st->dirty, &st->dcap, st->ndirty,
                               sizeof(*st->dirty)) < 0)
        return FDX_ENOMEM;
    if (!h->dirty)
        st->dirty[st->ndirty++] = i;
    h->dirty = 1;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Matching */

static void count_kind(fdx_stream *st, const fdx_evidence *ev)
{
    st->st.downloads += ev->kind != FDX_EV_SAMPLED;
    st->st.identified += ev->kind == FDX_EV_FILE;
    st->st.ambiguous += ev->kind == FDX_EV_AMBIGUOUS;
    st->st.multi += ev->kind == FDX_EV_MULTI;
    st->st.unmatched += ev->kind == FDX_EV_UNMATCHED;
}

/* As scan.c's conns_matchable(): a repository server's connection, or a
 * sampled web one. */
static int matchable(const fdx_stream *st, const fdx__conn *c)
{
    return (c->sampled && (c->sport == 80 || c->sport == 443)) ||
           fdx__server_find(st->scan, &c->server, c->sport) != NULL;
}

static int match_one(fdx_stream *st, const fdx__conn *c)
{
    fdx_evidence ev;

    fdx__match_conn(st->scan, c, &ev, st->lr, st->lr + st->nh, st->scratch,
                    FDX__SCRATCH);
    if (ev.kind == 0)
        return 0;
    count_kind(st, &ev);
    return host_add(st, &c->client, &ev, st->lr);
}

/* Waits for its endpoint's calibration; the oldest eighth of the queue
 * makes room when it is full. */
static int pending_push(fdx_stream *st, const fdx__conn *c)
{
    cvec *p = &st->pending;

    if (p->n >= st->o.max_pending) {
        size_t k = p->n / 8 ? p->n / 8 : 1;

        memmove(p->v, p->v + k, (p->n - k) * sizeof(*p->v));
        p->n -= k;
        st->st.pending_dropped += k;
    }
    return cvec_push(p, c);
}

/* Matches the waiting connections whose endpoint is now known. */
static int pending_match(fdx_stream *st)
{
    cvec *p = &st->pending;
    size_t m = 0;
    int rc = 0;

    for (size_t i = 0; i < p->n; i++) {
        if (rc == 0 && matchable(st, &p->v[i]))
            rc = match_one(st, &p->v[i]);
        else
            p->v[m++] = p->v[i];
    }
    p->n = m;
    return rc;
}

/* The closed connections: into their endpoint's sample, then matched, or
 * queued while the endpoint may still become a repository server. */
static int done_sample(fdx_stream *st)
{
    for (size_t i = 0; i < st->done.n; i++) {
        uint32_t e = ep_get(st, &st->done.v[i]);

        if (e != FDX__NONE)
            ep_note(st, &st->ep[e], &st->done.v[i]);
    }
    st->st.connections += st->done.n;
    return 0;
}

static int done_match(fdx_stream *st)
{
    int rc = 0;

    for (size_t i = 0; i < st->done.n && rc == 0; i++) {
        const fdx__conn *c = &st->done.v[i];
        uint32_t e;

        if (matchable(st, c))
            rc = match_one(st, c);
        else if ((e = ep_find(st, &c->server, c->sport)) != FDX__NONE &&
                 !st->ep[e].known)
            rc = pending_push(st, c);
    }
    st->done.n = 0;
    return rc;
}

/*
 * The server at neu's address and port was calibrated again, and its
 * model changed: the evidence of its connections, matched with the old
 * model, is matched again with the new, as a scan matching with the
 * final model would.  Each host's sums lose what the old evidence
 * gave and take what the new gives.  An endpoint is recalibrated each
 * time its connections double, so all rematches of an endpoint match
 * about twice its evidence; but each walks every host's evidence to
 * find the server's (there is no index by server).
 */
static void conn_of(const fdx_addr *client, const fdx_evidence *ev,
                    fdx__conn *c);

/* The counts by kind, one piece of evidence moved from kind a to b. */
static void kinds_move(fdx_stream *st, uint8_t a, uint8_t b)
{
    st->st.identified += (b == FDX_EV_FILE) - (a == FDX_EV_FILE);
    st->st.ambiguous += (b == FDX_EV_AMBIGUOUS) - (a == FDX_EV_AMBIGUOUS);
    st->st.multi += (b == FDX_EV_MULTI) - (a == FDX_EV_MULTI);
    st->st.unmatched += (b == FDX_EV_UNMATCHED) - (a == FDX_EV_UNMATCHED);
}

static int ep_rematch(fdx_stream *st, const fdx__server *old,
                      const fdx__server *neu)
{
    fdx_scan *s = st->scan;
    size_t at = server_pos(s, &neu->addr, neu->port);
    fdx__server *slot = &s->servers[at];
    int rc = 0;

    for (size_t i = 0; i < st->nhosts && rc == 0; i++) {
        shost *h = &st->hosts[i];
        int changed = 0;

        for (size_t j = 0; j < h->nev; j++) {
            fdx_evidence *ev = &h->ev[j], was, now;
            fdx__conn c;

            if (ev->server_port != neu->port || ev->kind == FDX_EV_SAMPLED ||
                fdx__addr_order(&ev->server, &neu->addr) != 0)
                continue;
            conn_of(&h->addr, ev, &c);
            *slot = *old;
            fdx__match_conn(s, &c, &was, st->lr_old, st->lr_old + st->nh,
                            st->scratch, FDX__SCRATCH);
            *slot = *neu;
            fdx__match_conn(s, &c, &now, st->lr, st->lr + st->nh,
                            st->scratch, FDX__SCRATCH);
            st->st.rematched++;
            if (now.kind == 0 || was.kind == 0)
                continue;
            for (size_t k = 0; k < s->nhyps; k++) {
                uint8_t bit = (uint8_t)(1u << (k % 8));
                uint8_t *p = &h->pos[j * st->row + k / 8];

                /* the scores can move while the evidence reads the same
                 * (candidates past those kept, sizes within the window) */
                changed = changed || st->lr[k] != st->lr_old[k];
                h->score[k] += st->lr[k] - st->lr_old[k];
                *p = st->lr[k] > 0 ? (uint8_t)(*p | bit)
                                   : (uint8_t)(*p & ~bit);
            }
            memset(&h->memo[j], 0, sizeof(h->memo[j]));
            kinds_move(st, ev->kind, now.kind);
            changed = changed || memcmp(ev, &now, sizeof(now)) != 0;
            *ev = now;
        }
        if (changed) {
            st->st.rematch_hosts++;
            rc = host_dirty(st, (uint32_t)i);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* Inference */

/* Scratch for one host's recomputation: a copy of its evidence (infer.c
 * rewrites a keep-alive pair's) and the connections it came from. */
static int scratch_reserve(fdx_stream *st, size_t n)
{
    fdx_evidence *ev;
    fdx__conn *c, **cp;

    ev = fdx__realloc(st->hev, (n ? n : 1) * sizeof(*ev));
    if (ev != NULL)
        st->hev = ev;
    c = fdx__realloc(st->hconn, (n ? n : 1) * sizeof(*c));
    if (c != NULL)
        st->hconn = c;
    cp = fdx__realloc(st->hconnp, (n ? n : 1) * sizeof(*cp));
    if (cp != NULL)
        st->hconnp = cp;
    return ev && c && cp ? 0 : FDX_ENOMEM;
}

/* The connection evidence ev was made from: ev_init() in match.c keeps
 * every field of it the claims read. */
static void conn_of(const fdx_addr *client, const fdx_evidence *ev,
                    fdx__conn *c)
{
    memset(c, 0, sizeof(*c));
    c->client = *client;
    c->server = ev->server;
    c->cport = ev->client_port;
    c->sport = ev->server_port;
    c->s2c_octets = ev->octets;
    c->s2c_packets = ev->packets;
    c->c2s_octets = ev->req_octets;
    c->c2s_packets = ev->req_packets;
    c->first_ms = ev->first_ms;
    c->last_ms = ev->last_ms;
    c->records = ev->records;
    c->sampled = ev->kind == FDX_EV_SAMPLED;
}

/*
 * Recomputes host h's claims with infer.c from its scores and evidence,
 * and hands them to fn.  Each recomputation gets infer.c's budget of
 * keep-alive pair searches afresh (a scan has one for all its hosts).
 */
static int host_recompute(fdx_stream *st, shost *h, fdx_stream_host_fn fn,
                          void *ud)
{
    fdx__host_in in;
    fdx_host host;
    int rc;

    if ((rc = scratch_reserve(st, h->nev)) < 0)
        return rc;
    memset(&host, 0, sizeof(host));
    host.addr = h->addr;
    host.evidence = st->hev;
    host.nevidence = h->nev;
    for (size_t i = 0; i < h->nev; i++) {
        st->hev[i] = h->ev[i];
        host.sampled_flows += h->ev[i].kind == FDX_EV_SAMPLED;
        conn_of(&h->addr, &h->ev[i], &st->hconn[i]);
        st->hconnp[i] = &st->hconn[i];
    }
    in.score = h->score;
    in.lr = NULL;
    in.lr_pos = h->pos;
    in.pos_row = st->row;
    in.conn = st->hconnp;
    in.for_merge = st->o.for_merge;
    in.memo = h->memo;
    st->scan->pair_searches = 0;
    rc = fdx__host_claims(st->scan, &host, &in);
    st->st.recomputes++;
    if (rc == 0 && st->o.for_merge && st->scan->nhyps > 0) {
        /* the scores go out with the claims: a store that several
         * collectors share sums them (fdx_os_merge()) */
        if (st->hscores == NULL &&
            (st->hscores = fdx__calloc(st->scan->nhyps,
                                       sizeof(*st->hscores))) == NULL)
            rc = FDX_ENOMEM;
        if (rc == 0) {
            fdx__host_os_scores(st->scan, &host, &in, st->hscores);
            host.scores = st->hscores;
            host.nscores = st->scan->nhyps;
        }
    }
    if (rc == 0 && fn != NULL)
        rc = fn(ud, &host);
    fdx__free(host.packages);
    return rc;
}

static int hosts_recompute(fdx_stream *st, fdx_stream_host_fn fn, void *ud)
{
    int rc = 0;
    size_t i;

    for (i = 0; i < st->ndirty && rc == 0; i++) {
        shost *h = &st->hosts[st->dirty[i]];

        h->dirty = 0;
        rc = host_recompute(st, h, fn, ud);
    }
    /* a callback that stopped the round leaves the rest for the next */
    if (i < st->ndirty)
        memmove(st->dirty, st->dirty + i,
                (st->ndirty - i) * sizeof(*st->dirty));
    st->ndirty -= i;
    for (size_t k = 0; k < st->ndirty; k++)
        st->hosts[st->dirty[k]].dirty = 1;
    return rc;
}

/* ---------------------------------------------------------------- */

/*
 * One round: the closed connections join their endpoints' samples, the
 * endpoints that grew enough are recalibrated, what waited for them is
 * matched, then the new connections, and the hosts with new evidence
 * are recomputed.
 */
static int round_run(fdx_stream *st, int final, fdx_stream_host_fn fn,
                     void *ud)
{
    int rc;

    st->newly_known = 0;
    if ((rc = done_sample(st)) < 0 ||
        (rc = ep_calibrate_grown(st, final)) < 0)
        return rc;
    if (st->newly_known && (rc = pending_match(st)) < 0)
        return rc;
    if ((rc = done_match(st)) < 0)
        return rc;
    if (final) {
        st->st.pending_dropped += st->pending.n;
        st->pending.n = 0;
    }
    st->st.pending = st->pending.n;
    st->st.evidence = st->ev_total;
    st->st.servers_tracked = 0;
    for (size_t i = 0; i < st->nep; i++)
        st->st.servers_tracked += st->ep[i].used;
    return hosts_recompute(st, fn, ud);
}

int fdx_stream_advance(fdx_stream *st, uint64_t now_ms,
                       fdx_stream_host_fn fn, void *ud)
{
    close_idle(st, now_ms, 0);
    return round_run(st, 0, fn, ud);
}

int fdx_stream_flush(fdx_stream *st, fdx_stream_host_fn fn, void *ud)
{
    close_idle(st, 0, 1);
    return round_run(st, 1, fn, ud);
}

void fdx_stream_get_stats(const fdx_stream *st, fdx_stream_stats *out)
{
    *out = st->st;
}
