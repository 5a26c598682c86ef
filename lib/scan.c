/*
 * The scan pipeline: collect records, join connections, calibrate the
 * servers, match, infer.  See include/flowdex/scan.h.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scan_int.h"

#define FDX__SCRATCH 4096
#define FDX__DEFAULT_GAP_MS 300000

/*
 * The hypotheses and the table of path lengths are built from the
 * catalog independently, each into its own members of the scan: on two
 * threads, as both walk every entry of the catalog.
 */
typedef struct new_work {
    fdx_scan *s;
    int rc[2];
} new_work;

static void new_worker(void *ctx, unsigned worker)
{
    new_work *w = ctx;

    w->rc[worker] = worker == 0 ? fdx__hyps_build(w->s)
                                : fdx__path_hist_build(w->s);
}

fdx_scan *fdx_scan_new(const fdx_catalog *cat, const fdx_scan_opts *opts)
{
    new_work w;
    fdx_scan *s = fdx__calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->cat = cat;
    if (opts != NULL)
        s->opts = *opts;
    if (s->opts.join_gap_ms == 0)
        s->opts.join_gap_ms = FDX__DEFAULT_GAP_MS;
    w.s = s;
    fdx__run2(new_worker, &w);
    if (w.rc[0] < 0 || w.rc[1] < 0) {
        fdx_scan_free(s);
        return NULL;
    }
    return s;
}

void fdx_scan_free(fdx_scan *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nhosts; i++)
        fdx__free(s->hosts[i].packages);
    fdx__free(s->hosts);
    fdx__free(s->ev);
    fdx__free(s->ev_conn);
    fdx__free(s->lr);
    fdx__free(s->servers);
    fdx__free(s->conns);
    fdx__halves_free(&s->halves);
    fdx__hyps_free(s);
    fdx__free(s->path_cum);
    fdx__free(s->path_len);
    fdx__free(s->by_len);
    fdx__free(s->len_start);
    fdx__free(s->file_class);
    fdx__free(s);
}

/*
 * Counts no packet can carry: an IP packet holds at most 65535 bytes, and
 * no flow meter sees 2^40 packets in one record.  A corrupt record (or
 * file) gives such values; they are dropped before any arithmetic that
 * would overflow on them.
 */
#define FDX__MAX_RECORD_PACKETS (1ULL << 40)

#define FDX__MAX_RECORD_OCTETS (FDX__MAX_RECORD_PACKETS * 65535)

/* A record without a packet count is kept: some templates carry none. */
static int counts_possible(uint64_t octets, uint64_t packets)
{
    if (packets == 0)
        return octets <= FDX__MAX_RECORD_OCTETS;
    return packets <= FDX__MAX_RECORD_PACKETS && octets / packets <= 65535;
}

int fdx__flow_possible(const fdx_flow *flow)
{
    return counts_possible(flow->octets, flow->packets) &&
           (!(flow->flags & FDX_FLOW_BIFLOW) ||
            counts_possible(flow->rev_octets, flow->rev_packets));
}

int fdx_scan_add(void *ud, const fdx_flow *flow)
{
    fdx_scan *s = ud;
    int rc;

    s->st.flows++;
    if (!fdx__flow_possible(flow)) {
        s->st.flows_invalid++;
        return 0;
    }
    if ((flow->flags & FDX_FLOW_SAMPLED) || flow->sampling > 1)
        s->st.flows_sampled++;
    rc = fdx__halves_add(&s->halves, flow);
    if (rc == 0)
        s->st.flows_ignored++;
    return rc < 0 ? rc : 0;
}

static void count_kind(fdx_scan_stats *st, const fdx_evidence *ev)
{
    st->downloads += ev->kind != FDX_EV_SAMPLED;
    st->identified += ev->kind == FDX_EV_FILE;
    st->ambiguous += ev->kind == FDX_EV_AMBIGUOUS;
    st->multi += ev->kind == FDX_EV_MULTI;
    st->unmatched += ev->kind == FDX_EV_UNMATCHED;
}

static void count_add(fdx_scan_stats *st, const fdx_scan_stats *from)
{
    st->downloads += from->downloads;
    st->identified += from->identified;
    st->ambiguous += from->ambiguous;
    st->multi += from->multi;
    st->unmatched += from->unmatched;
}

/*
 * Only connections to a repository server, and sampled web connections,
 * can give evidence (fdx__match_conn()).  The others are given back
 * before matching, so that the evidence is not kept alongside them.
 */
static void conns_matchable(fdx_scan *s)
{
    size_t m = 0;
    fdx__conn *shrunk;

    for (size_t i = 0; i < s->nconns; i++) {
        const fdx__conn *c = &s->conns[i];

        if ((c->sampled && (c->sport == 80 || c->sport == 443)) ||
            fdx__server_find(s, &c->server, c->sport) != NULL)
            s->conns[m++] = *c;
    }
    s->nconns = m;
    shrunk = fdx__realloc(s->conns, (m ? m : 1) * sizeof(*shrunk));
    if (shrunk != NULL)
        s->conns = shrunk;
}

/*
 * Only the connections with evidence are needed after matching: they are
 * moved to the front, in order, and the rest given back, so that the
 * connection of evidence k is conns[k].
 */
static void conns_keep(fdx_scan *s)
{
    fdx__conn *shrunk;

    s->nconns = s->nev;
    shrunk = fdx__realloc(s->conns, (s->nev ? s->nev : 1) * sizeof(*shrunk));
    if (shrunk != NULL)
        s->conns = shrunk;
    for (size_t k = 0; k < s->nev; k++)
        s->ev_conn[k] = &s->conns[k];
}

/*
 * One worker's share of the matching: the connections [lo, hi), and the
 * evidence they give, kept in its own arrays and counted in its own
 * statistics until the two shares are put together in order.
 */
typedef struct match_share {
    size_t lo, hi;
    fdx_evidence *ev;
    double *lr;
    size_t nev, cap;
    fdx_scan_stats st;
    int rc;
} match_share;

/* Keeps one more piece of evidence: its record and scores. */
static int ev_keep(match_share *m, size_t nh, const fdx_evidence *ev,
                   const double *lr)
{
    size_t c1 = m->cap;

    if (fdx__grow(&m->ev, &m->cap, m->nev, sizeof(*m->ev)) < 0 ||
        fdx__grow(&m->lr, &c1, m->nev, nh * sizeof(*m->lr)) < 0)
        return FDX_ENOMEM;
    m->ev[m->nev] = *ev;
    memcpy(&m->lr[m->nev * nh], lr, nh * sizeof(*lr));
    m->nev++;
    return 0;
}

/*
 * Matches the share's connections; the one of evidence k is moved to
 * conns[lo + k] (within the share, so the workers never meet).
 */
static int match_range(fdx_scan *s, match_share *m, size_t nh)
{
    uint32_t *scratch = fdx__malloc(FDX__SCRATCH * sizeof(*scratch));
    double *lr = fdx__calloc(2 * nh, sizeof(*lr));
    int rc = 0;

    if (scratch == NULL || lr == NULL)
        rc = FDX_ENOMEM;
    for (size_t i = m->lo; i < m->hi && rc == 0; i++) {
        fdx_evidence ev;

        /* lr + nh: the expected counts, scratch of this worker */
        fdx__match_conn(s, &s->conns[i], &ev, lr, lr + nh, scratch,
                        FDX__SCRATCH);
        if (ev.kind == 0)
            continue;
        count_kind(&m->st, &ev);
        if ((rc = ev_keep(m, nh, &ev, lr)) == 0)
            s->conns[m->lo + m->nev - 1] = s->conns[i];
    }
    fdx__free(scratch);
    fdx__free(lr);
    return rc;
}

typedef struct match_work {
    fdx_scan *s;
    match_share share[2];
} match_work;

static void match_worker(void *ctx, unsigned worker)
{
    match_work *w = ctx;
    size_t nh = w->s->nhyps ? w->s->nhyps : 1;

    w->share[worker].rc = match_range(w->s, &w->share[worker], nh);
}

/*
 * The second share's evidence after the first's, as one thread matching
 * the connections in order would have kept it.  Takes the first share's
 * arrays over; the second's are freed.
 */
static int shares_join(fdx_scan *s, match_share *a, match_share *b)
{
    size_t nh = s->nhyps ? s->nhyps : 1, n = a->nev + b->nev;
    fdx_evidence *ev = fdx__realloc(a->ev, (n ? n : 1) * sizeof(*ev));
    double *lr;

    if (ev == NULL)
        return FDX_ENOMEM;
    a->ev = ev;
    if ((lr = fdx__realloc(a->lr, (n ? n : 1) * nh * sizeof(*lr))) == NULL)
        return FDX_ENOMEM;
    a->lr = lr;
    s->ev = ev;
    s->lr = lr;
    a->cap = 0;     /* s owns them now */
    if (b->nev > 0) {
        memcpy(ev + a->nev, b->ev, b->nev * sizeof(*ev));
        memcpy(lr + a->nev * nh, b->lr, b->nev * nh * sizeof(*lr));
        memmove(&s->conns[a->nev], &s->conns[b->lo],
                b->nev * sizeof(*s->conns));
    }
    s->nev = n;
    s->ev_conn = fdx__malloc((n ? n : 1) * sizeof(*s->ev_conn));
    return s->ev_conn != NULL ? 0 : FDX_ENOMEM;
}

/*
 * Most connections of a large input are no download: evidence and its
 * scores are kept only for those that are, so memory follows the
 * downloads, not the flows.  Two workers match half of the connections
 * each (fdx__match_conn() only reads the scan).
 */
static int match_all(fdx_scan *s)
{
    match_work w;
    int rc;

    conns_matchable(s);
    memset(&w, 0, sizeof(w));
    w.s = s;
    w.share[0].hi = w.share[1].lo = s->nconns / 2;
    w.share[1].hi = s->nconns;
    fdx__run2(match_worker, &w);
    rc = w.share[0].rc != 0 ? w.share[0].rc : w.share[1].rc;
    if (rc == 0)
        rc = shares_join(s, &w.share[0], &w.share[1]);
    for (int k = 0; k < 2; k++) {
        count_add(&s->st, &w.share[k].st);
        if (w.share[k].cap != 0) {
            fdx__free(w.share[k].ev);
            fdx__free(w.share[k].lr);
        }
    }
    if (rc == 0)
        conns_keep(s);
    return rc;
}

static int ev_client_cmp(const void *a, const void *b, void *arg)
{
    const fdx_scan *s = arg;
    const fdx__conn *x = s->ev_conn[*(const uint32_t *)a];
    const fdx__conn *y = s->ev_conn[*(const uint32_t *)b];
    int c = fdx__addr_order(&x->client, &y->client);

    if (c != 0)
        return c;
    return (x->first_ms > y->first_ms) - (x->first_ms < y->first_ms);
}

/* Evidence from, its connection and scores, to position to. */
static void ev_move(fdx_scan *s, size_t to, size_t from, size_t nh)
{
    s->ev[to] = s->ev[from];
    s->ev_conn[to] = s->ev_conn[from];
    memcpy(&s->lr[to * nh], &s->lr[from * nh], nh * sizeof(*s->lr));
}

/*
 * Moves evidence order[k] of each array to position k, in place, one
 * cycle of the permutation at a time through one spare element: a second
 * copy of the evidence and its scores would be the scan's peak of memory.
 * The positions done are marked in order itself.
 */
static int ev_permute(fdx_scan *s, uint32_t *order)
{
    size_t nh = s->nhyps ? s->nhyps : 1;
    double *lr = fdx__malloc(nh * sizeof(*lr));

    if (lr == NULL)
        return FDX_ENOMEM;
    for (size_t k = 0; k < s->nev; k++) {
        fdx_evidence ev;
        fdx__conn *ec;
        size_t j = k;

        if (order[k] == k)
            continue;
        ev = s->ev[k];
        ec = s->ev_conn[k];
        memcpy(lr, &s->lr[k * nh], nh * sizeof(*lr));
        while (order[j] != k) {
            size_t from = order[j];

            ev_move(s, j, from, nh);
            order[j] = (uint32_t)j;
            j = from;
        }
        s->ev[j] = ev;
        s->ev_conn[j] = ec;
        memcpy(&s->lr[j * nh], lr, nh * sizeof(*lr));
        order[j] = (uint32_t)j;
    }
    fdx__free(lr);
    return 0;
}

/* Puts each client's evidence together, in time order. */
static uint64_t client_hash(const void *ctx, size_t i)
{
    const fdx_addr *a = &((const fdx_scan *)ctx)->ev_conn[i]->client;

    return fdx__mix64(fdx__mix64(2, fdx__be64(a->b)), fdx__be64(a->b + 8));
}

static void client_run(const void *ctx, uint32_t *idx, size_t n)
{
    qsort_r(idx, n, sizeof(*idx), ev_client_cmp, (void *)ctx);
}

static int evidence_by_client(fdx_scan *s)
{
    uint32_t *order;
    int rc = fdx__order_by_key(s->nev, client_hash, client_run, s, &order);

    if (rc == 0)
        rc = ev_permute(s, order);
    fdx__free(order);
    return rc;
}

int fdx_scan_finish(fdx_scan *s)
{
    int rc;

    if (s->finished)
        return FDX_EUSAGE;
    s->finished = 1;
    rc = fdx__conns_build(&s->halves, s->opts.join_gap_ms, &s->conns,
                          &s->nconns, &s->st.duplicates);
    fdx__halves_free(&s->halves);
    if (rc < 0)
        return rc;
    s->st.connections = s->nconns;
    fdx__log(s->opts.log, FDX_LOG_INFO, "event=joined connections=%zu",
             s->nconns);
    if ((rc = fdx__servers_calibrate(s)) < 0)
        return rc;
    fdx__servers_log(s);
    if ((rc = match_all(s)) < 0)
        return rc;
    if ((rc = evidence_by_client(s)) < 0)
        return rc;
    return fdx__infer_hosts(s);
}

size_t fdx_scan_host_count(const fdx_scan *s)
{
    return s->nhosts;
}

const fdx_host *fdx_scan_host(const fdx_scan *s, size_t i)
{
    return i < s->nhosts ? &s->hosts[i] : NULL;
}

void fdx_scan_get_stats(const fdx_scan *s, fdx_scan_stats *st)
{
    *st = s->st;
}
