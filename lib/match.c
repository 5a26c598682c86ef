/*
 * Matching one connection against the catalog.
 *
 * The server's model turns the connection's byte and packet counts into
 * windows of file sizes; every catalog file of the right class inside them
 * is a candidate.  The request side then narrows them: one HTTP request is
 * a constant number of bytes plus the path it asks for (TLS adds a few
 * bytes of padding), so once a server's constant is learned the request's
 * size tells the length of the path, and candidates of another length are
 * dropped.  A request side clearly longer than one request is a keep-alive
 * connection of several files and is not matched as one file.  For each OS
 * hypothesis the connection then scores how many of its candidates that
 * kind of host could have fetched, against how many files of that kind
 * would fit by chance.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scan_int.h"

/*
 * FDX__LR_EPS is the share of connections that fit a file for a reason the
 * chance densities do not model (a wrong calibration, a file of another
 * repository with the same size).  It caps what one connection can prove:
 * log((1 + eps) / eps).  On the labelled corpora of docs/accuracy.md no
 * package claimed from a unique fit was wrong, so one in a hundred is
 * conservative; one in twenty kept a host whose only strong evidence was
 * one index file from any OS claim.
 */
#define FDX__LR_EPS 0.01
#define FDX__LR_MIN (-2.0)
#define FDX__LR_MAX 4.0

static void cands_add(fdx__cands *cs, uint32_t i)
{
    cs->total++;
    if (cs->n < cs->cap)
        cs->v[cs->n++] = i;
}

static void window_note(fdx__cands *cs, uint64_t lo, uint64_t hi, int index)
{
    if (cs->nwin < FDX__MAX_WINDOWS) {
        cs->win[cs->nwin][0] = lo;
        cs->win[cs->nwin][1] = hi;
        cs->win[cs->nwin][2] = (uint64_t)index;
        cs->nwin++;
    }
    if (cs->hi == 0 || lo < cs->lo)
        cs->lo = lo;
    if (hi > cs->hi)
        cs->hi = hi;
}

/* Candidates of class cls whose size s satisfies s + digits(s) = t. */
static void http_class(const fdx_scan *s, fdx__cands *cs, int64_t t, int cls,
                       int64_t tol)
{
    int k0, k1;

    fdx__digit_range(t, &k0, &k1);
    for (int k = k0; k <= k1; k++) {
        int64_t s0 = t - k;
        uint64_t lo, hi;
        size_t first, n;

        if (s0 <= 0 || fdx__digits((uint64_t)s0) != k)
            continue;
        lo = s0 > tol ? (uint64_t)(s0 - tol) : 0;
        hi = (uint64_t)(s0 + tol);
        window_note(cs, lo, hi, cls != FDX__CLASS_DEB);
        cs->center = (double)s0;
        n = fdx_catalog_range(s->cat, lo, hi, &first);
        for (size_t i = first; i < first + n; i++)
            if (fdx__entry_class(s, i) == cls)
                cands_add(cs, (uint32_t)i);
    }
}

static void http_cands(const fdx_scan *s, const fdx__server *sv,
                       const fdx__conn *c, fdx__cands *cs)
{
    int v4 = fdx_addr_is_v4(&c->server);

    for (int v = 0; v < 2; v++) {
        int64_t hdr = fdx__hdr_octets(v4, v);
        int64_t p = (int64_t)c->s2c_octets - (int64_t)c->s2c_packets * hdr;

        for (int cls = 0; cls < FDX__NCLASS && p > 0; cls++) {
            const fdx__modes *m = &sv->base[v][cls];
            int64_t tol = FDX__HTTP_TOL;

            /* index files share most of their header; a class seen too
             * rarely to learn borrows the learned one, less tightly */
            if (m->n == 0) {
                if (cls == FDX__CLASS_DEB)
                    continue;
                m = &sv->base[v][FDX__CLASS_XZ];
                tol = FDX__HTTP_TOL_BORROWED;
            }
            for (int k = 0; k < m->n; k++)
                http_class(s, cs, p - m->d[k], cls, tol);
            if (cs->total > 0 && cs->hdr == 0)
                cs->hdr = (uint8_t)hdr;
        }
    }
}

/*
 * Over TLS the overhead grows by a step every FDX__TLS_UNIT bytes, so the
 * size is solved for per step count: payload = size + first + k * per_unit
 * with k = ceil(size / unit) - 1.
 */
static void tls_cands(const fdx_scan *s, const fdx__conn *c, fdx__cands *cs)
{
    int64_t hdr = fdx__hdr_octets(fdx_addr_is_v4(&c->server), 0);
    int64_t p = (int64_t)c->s2c_octets - (int64_t)c->s2c_packets * hdr;
    int64_t rest = p - FDX__TLS_FIRST;
    /* the first step count whose window can reach its size range: the
     * loop then ends after two or three steps, whatever the size */
    int64_t k0 = (rest - FDX__TLS_TOL - FDX__TLS_UNIT) /
                 (FDX__TLS_UNIT + FDX__TLS_PER_UNIT);

    cs->hdr = (uint8_t)hdr;
    for (int64_t k = k0 > 0 ? k0 : 0; rest - k * FDX__TLS_PER_UNIT > 0;
         k++) {
        int64_t s0 = rest - k * FDX__TLS_PER_UNIT;
        int64_t lo = s0 - FDX__TLS_TOL, hi = s0 + FDX__TLS_TOL;
        size_t first, n;

        /* the window must hold sizes that give k steps */
        if (hi <= k * FDX__TLS_UNIT)
            break;
        if (lo > (k + 1) * FDX__TLS_UNIT)
            continue;
        lo = lo < k * FDX__TLS_UNIT + 1 ? k * FDX__TLS_UNIT + 1 : lo;
        hi = hi > (k + 1) * FDX__TLS_UNIT ? (k + 1) * FDX__TLS_UNIT : hi;
        cs->center = (double)s0;
        window_note(cs, (uint64_t)lo, (uint64_t)hi, 0);
        n = fdx_catalog_range(s->cat, (uint64_t)lo, (uint64_t)hi, &first);
        for (size_t i = first; i < first + n; i++)
            cands_add(cs, (uint32_t)i);
    }
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Up to this many candidates are sorted by insertion, without qsort()'s
 * call per comparison: the usual few windows of a connection give a few
 * sorted runs.
 */
#define FDX__SMALL_SORT 64

static void small_sort(uint32_t *v, size_t n)
{
    for (size_t a = 1; a < n; a++) {
        uint32_t x = v[a];
        size_t b = a;

        for (; b > 0 && v[b - 1] > x; b--)
            v[b] = v[b - 1];
        v[b] = x;
    }
}

/*
 * Windows of several classes and header sizes may overlap.  Most
 * connections fit one window, whose candidates come in catalog order:
 * those need no sort.
 */
static void cands_unique(fdx__cands *cs)
{
    size_t m = 0, up = 1;

    while (up < cs->n && cs->v[up - 1] < cs->v[up])
        up++;
    if (up >= cs->n)
        return;
    if (cs->n <= FDX__SMALL_SORT)
        small_sort(cs->v, cs->n);
    else
        qsort(cs->v, cs->n, sizeof(*cs->v), u32_cmp);
    for (size_t i = 0; i < cs->n; i++)
        if (i == 0 || cs->v[i] != cs->v[m - 1])
            cs->v[m++] = cs->v[i];
    cs->total -= cs->n - m;
    cs->n = m;
}

void fdx__size_cands(const fdx_scan *s, const fdx__server *sv,
                     const fdx__conn *c, fdx__cands *cs)
{
    if (sv->tls)
        tls_cands(s, c, cs);
    else
        http_cands(s, sv, c, cs);
    cands_unique(cs);
}

int fdx__request_octets(const fdx__conn *c, int hdr, int64_t *q)
{
    if (c->c2s_packets == 0 ||
        c->c2s_octets <= c->c2s_packets * (uint64_t)hdr)
        return 0;
    *q = (int64_t)(c->c2s_octets - c->c2s_packets * (uint64_t)hdr);
    return 1;
}

/*
 * Keeps the candidates whose path length the request side allows, and
 * notes that window of lengths.  Does nothing when the server's request
 * constant is unknown or the request side was not seen.
 */
static void request_filter(const fdx_scan *s, const fdx__server *sv,
                           const fdx__conn *c, fdx__cands *cs,
                           fdx_evidence *ev)
{
    int64_t q, lo = INT64_MAX, hi = INT64_MIN, tol = FDX__REQ_TOL_HTTP;
    size_t m = 0;

    if (sv->req.n == 0 || !fdx__request_octets(c, cs->hdr, &q))
        return;
    for (int k = 0; k < sv->req.n; k++) {
        lo = q - sv->req.d[k] - tol < lo ? q - sv->req.d[k] - tol : lo;
        hi = q - sv->req.d[k] + tol > hi ? q - sv->req.d[k] + tol : hi;
    }
    if (hi < 1 || lo > FDX__MAX_PATH)
        return;
    ev->path_lo = (uint16_t)(lo < 1 ? 1 : lo);
    ev->path_hi = (uint16_t)hi;
    for (size_t i = 0; i < cs->n; i++) {
        int64_t l = (int64_t)fdx__entry_path_len(s, cs->v[i]);

        for (int k = 0; k < sv->req.n; k++)
            if (l >= q - sv->req.d[k] - tol && l <= q - sv->req.d[k] + tol) {
                cs->v[m++] = cs->v[i];
                break;
            }
    }
    cs->total = cs->total > cs->n ? cs->total - cs->n + m : m;
    cs->n = m;
}

/*
 * A keep-alive connection: its request side holds more than one request.
 * With the server's request constant known the number of requests is
 * estimated from the mean path length; without it, from the server's
 * usual single request (over TLS the handshake dominates, so the margin
 * is absolute there).
 */
static int several_files(const fdx_scan *s, const fdx__server *sv,
                         const fdx__conn *c, uint8_t *est)
{
    int hdr = fdx__hdr_octets(fdx_addr_is_v4(&c->server), 0);
    int64_t q;

    *est = 1;
    if (!fdx__request_octets(c, hdr, &q))
        return 0;
    if (sv->req.n > 0) {
        int32_t base = sv->req.d[0];
        double per;

        for (int k = 1; k < sv->req.n; k++)
            base = sv->req.d[k] < base ? sv->req.d[k] : base;
        per = (double)base + fdx__path_mean(s);
        if (q - base <= FDX__MAX_PATH)
            return 0;
        *est = (uint8_t)fmin(255, fmax(2, floor((double)q / per + 0.5)));
        if (sv->tls)
            *est = 0;
        return 1;
    }
    if (sv->req_single <= 0)
        return 0;
    if (sv->tls) {
        if ((double)q <= sv->req_single + 150)
            return 0;
        *est = 0;
        return 1;
    }
    if ((double)q <= 1.6 * sv->req_single)
        return 0;
    *est = (uint8_t)fmin(255, floor((double)q / sv->req_single + 0.5));
    return 1;
}

double fdx__lr(double n, double e)
{
    double lr = log((n + FDX__LR_EPS) / (e + FDX__LR_EPS));

    return fmax(FDX__LR_MIN, fmin(FDX__LR_MAX, lr));
}

void fdx__cands_expected(const fdx_scan *s, const fdx__cands *cs, double *e)
{
    for (size_t h = 0; h < s->nhyps; h++)
        e[h] = 0;
    for (size_t w = 0; w < cs->nwin; w++) {
        double width = (double)(cs->win[w][1] - cs->win[w][0] + 1);
        int b = fdx__bucket(((double)cs->win[w][0] +
                             (double)cs->win[w][1]) / 2.0);
        int ix = cs->win[w][2] != 0;

        for (size_t h = 0; h < s->nhyps; h++)
            e[h] += (double)s->hyps[h].density[ix][b] * width;
    }
}

int fdx__two_requests(const fdx_scan *s, const fdx__server *sv,
                      const fdx__conn *c)
{
    int hdr = fdx__hdr_octets(fdx_addr_is_v4(&c->server), 0);
    int64_t q;

    if (sv->tls || sv->req.n != 1 || !fdx__request_octets(c, hdr, &q))
        return 0;
    return q - 2 * (int64_t)sv->req.d[0] >= 2 * (int64_t)s->path_min;
}

static void score_hyps(const fdx_scan *s, const fdx__cands *cs,
                       const fdx_evidence *ev, double *lr, double *expected)
{
    double share = ev->path_hi ? fdx__path_share(s, ev->path_lo, ev->path_hi)
                               : 1.0;

    for (size_t h = 0; h < s->nhyps; h++)
        lr[h] = 0;
    /* lr[] first counts, per hypothesis, the candidates it could fetch */
    for (size_t k = 0; k < cs->n; k++) {
        size_t g = s->entry_group[cs->v[k]], na = s->narches;
        int a = s->entry_arch[cs->v[k]];

        if (a == -1)
            for (size_t h = g * na; h < (g + 1) * na; h++)
                lr[h] += 1;
        else if (a >= 0)
            lr[g * na + (size_t)a] += 1;
    }
    fdx__cands_expected(s, cs, expected);
    for (size_t h = 0; h < s->nhyps; h++)
        lr[h] = fdx__lr(lr[h], expected[h] * share);
}

int fdx__conn_explained(const fdx_scan *s, const fdx__server *sv,
                        const fdx__conn *c, uint32_t *scratch, size_t cap)
{
    fdx__cands cs;
    fdx_evidence ev;

    memset(&cs, 0, sizeof(cs));
    memset(&ev, 0, sizeof(ev));
    cs.v = scratch;
    cs.cap = cap;
    fdx__size_cands(s, sv, c, &cs);
    request_filter(s, sv, c, &cs, &ev);
    return cs.n > 0;
}

static int same_file(const fdx_entry *a, const fdx_entry *b)
{
    if (a->kind != FDX_KIND_PACKAGE || b->kind != FDX_KIND_PACKAGE)
        return strcmp(a->path, b->path) == 0;
    return strcmp(a->package, b->package) == 0 &&
           strcmp(a->version, b->version) == 0 &&
           strcmp(a->arch, b->arch) == 0;
}

static int one_file(const fdx_scan *s, const fdx__cands *cs)
{
    fdx_entry first, e;

    fdx_catalog_entry(s->cat, cs->v[0], &first);
    for (size_t k = 1; k < cs->n; k++) {
        fdx_catalog_entry(s->cat, cs->v[k], &e);
        if (!same_file(&first, &e))
            return 0;
    }
    return cs->n == cs->total;
}

static void ev_init(fdx_evidence *ev, const fdx__conn *c)
{
    memset(ev, 0, sizeof(*ev));
    ev->first_ms = c->first_ms;
    ev->last_ms = c->last_ms;
    ev->server = c->server;
    ev->server_port = c->sport;
    ev->client_port = c->cport;
    ev->octets = c->s2c_octets;
    ev->packets = c->s2c_packets;
    ev->req_octets = c->c2s_octets;
    ev->req_packets = c->c2s_packets;
    ev->records = c->records;
    ev->est_files = 1;
}

static void ev_fill(const fdx_scan *s, const fdx__cands *cs,
                    fdx_evidence *ev)
{
    ev->hdr_octets = cs->hdr;
    ev->win_lo = cs->lo;
    ev->win_hi = cs->hi;
    ev->ncand_total = (uint32_t)cs->total;
    ev->ncand = (uint32_t)(cs->n < FDX_MAX_CANDIDATES ? cs->n
                                                      : FDX_MAX_CANDIDATES);
    memcpy(ev->cand, cs->v, ev->ncand * sizeof(ev->cand[0]));
    /* windows of both header sizes lie 12 bytes a packet apart, so the
     * first candidate may be far from the last window's centre */
    ev->residual = (int32_t)fmax(INT32_MIN, fmin(INT32_MAX, cs->center -
        (double)fdx_catalog_size(s->cat, cs->v[0])));
    ev->kind = one_file(s, cs) ? FDX_EV_FILE : FDX_EV_AMBIGUOUS;
}

void fdx__match_conn(const fdx_scan *s, const fdx__conn *c, fdx_evidence *ev,
                     double *lr, double *expected, uint32_t *scratch,
                     size_t cap)
{
    const fdx__server *sv = fdx__server_find(s, &c->server, c->sport);
    fdx__cands cs;

    memset(&cs, 0, sizeof(cs));
    cs.v = scratch;
    cs.cap = cap;
    ev_init(ev, c);
    for (size_t h = 0; h < s->nhyps; h++)
        lr[h] = 0;
    /* sampled byte counts cannot be matched; the host's sampled web
     * connections are noted, so that its "unknown" can be told apart */
    if (c->sampled) {
        if (c->sport == 80 || c->sport == 443 || sv != NULL)
            ev->kind = FDX_EV_SAMPLED;
        return;
    }
    /* only repository servers are listed (model.c) */
    if (sv == NULL || c->s2c_octets == 0)
        return;
    ev->transport = sv->tls ? FDX_TR_TLS : FDX_TR_HTTP;
    if (several_files(s, sv, c, &ev->est_files)) {
        ev->kind = FDX_EV_MULTI;
        return;
    }
    fdx__size_cands(s, sv, c, &cs);
    request_filter(s, sv, c, &cs, ev);
    if (cs.n == 0) {
        ev->kind = FDX_EV_UNMATCHED;
        return;
    }
    score_hyps(s, &cs, ev, lr, expected);
    ev_fill(s, &cs, ev);
}
