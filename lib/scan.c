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

fdx_scan *fdx_scan_new(const fdx_catalog *cat, const fdx_scan_opts *opts)
{
    fdx_scan *s = fdx__calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->cat = cat;
    if (opts != NULL)
        s->opts = *opts;
    if (s->opts.join_gap_ms == 0)
        s->opts.join_gap_ms = FDX__DEFAULT_GAP_MS;
    if (fdx__hyps_build(s) < 0 || fdx__path_hist_build(s) < 0 ||
        (s->expected = fdx__calloc(s->nhyps + 1, sizeof(double))) == NULL) {
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
    fdx__free(s->expected);
    fdx__free(s->path_len);
    fdx__free(s->file_class);
    fdx__free(s);
}

int fdx_scan_add(void *ud, const fdx_flow *flow)
{
    fdx_scan *s = ud;
    int rc;

    s->st.flows++;
    if ((flow->flags & FDX_FLOW_SAMPLED) || flow->sampling > 1)
        s->st.flows_sampled++;
    rc = fdx__halves_add(&s->halves, flow);
    if (rc == 0)
        s->st.flows_ignored++;
    return rc < 0 ? rc : 0;
}

/* Keeps one more piece of evidence: its record, connection and scores. */
static int ev_keep(fdx_scan *s, size_t *cap, const fdx_evidence *ev,
                   const double *lr, fdx__conn *c)
{
    size_t nh = s->nhyps ? s->nhyps : 1, c1 = *cap, c2 = *cap;

    if (fdx__grow(&s->ev, cap, s->nev, sizeof(*s->ev)) < 0 ||
        fdx__grow(&s->ev_conn, &c1, s->nev, sizeof(*s->ev_conn)) < 0 ||
        fdx__grow(&s->lr, &c2, s->nev, nh * sizeof(*s->lr)) < 0)
        return FDX_ENOMEM;
    s->ev[s->nev] = *ev;
    s->ev_conn[s->nev] = c;
    memcpy(&s->lr[s->nev * nh], lr, nh * sizeof(*lr));
    s->nev++;
    return 0;
}

/*
 * Most connections of a large input are no download: evidence and its
 * scores are kept only for those that are, so memory follows the
 * downloads, not the flows.
 */
static int match_all(fdx_scan *s)
{
    size_t nh = s->nhyps ? s->nhyps : 1, cap = 0;
    uint32_t *scratch = fdx__malloc(FDX__SCRATCH * sizeof(*scratch));
    double *lr = fdx__calloc(nh, sizeof(*lr));
    int rc = 0;

    if (scratch == NULL || lr == NULL)
        rc = FDX_ENOMEM;
    for (size_t i = 0; i < s->nconns && rc == 0; i++) {
        fdx_evidence ev;

        fdx__match_conn(s, &s->conns[i], &ev, lr, scratch, FDX__SCRATCH);
        if (ev.kind == 0)
            continue;
        s->st.downloads += ev.kind != FDX_EV_SAMPLED;
        s->st.identified += ev.kind == FDX_EV_FILE;
        s->st.ambiguous += ev.kind == FDX_EV_AMBIGUOUS;
        s->st.multi += ev.kind == FDX_EV_MULTI;
        s->st.unmatched += ev.kind == FDX_EV_UNMATCHED;
        rc = ev_keep(s, &cap, &ev, lr, &s->conns[i]);
    }
    fdx__free(scratch);
    fdx__free(lr);
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

/* Moves evidence i of each array to position k of the new ones. */
static int ev_permute(fdx_scan *s, const uint32_t *order)
{
    size_t nh = s->nhyps ? s->nhyps : 1, n = s->nev ? s->nev : 1;
    fdx_evidence *ev = fdx__malloc(n * sizeof(*ev));
    fdx__conn **ec = fdx__malloc(n * sizeof(*ec));
    double *lr = fdx__malloc(n * nh * sizeof(*lr));

    if (ev == NULL || ec == NULL || lr == NULL) {
        fdx__free(ev);
        fdx__free(ec);
        fdx__free(lr);
        return FDX_ENOMEM;
    }
    for (size_t k = 0; k < s->nev; k++) {
        ev[k] = s->ev[order[k]];
        ec[k] = s->ev_conn[order[k]];
        memcpy(&lr[k * nh], &s->lr[order[k] * nh], nh * sizeof(*lr));
    }
    fdx__free(s->ev);
    fdx__free(s->ev_conn);
    fdx__free(s->lr);
    s->ev = ev;
    s->ev_conn = ec;
    s->lr = lr;
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
