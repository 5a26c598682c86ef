/*
 * The overhead model, and its calibration per server.
 *
 * A download over HTTP/1.1 puts on the wire, from server to client,
 *
 *     octets = size + packets * hdr + H
 *
 * where hdr is the IP and TCP header of every packet (52 bytes for IPv4
 * with TCP timestamps, 40 without, 20 more for IPv6) and H is the HTTP
 * response header plus the few option bytes the SYN-ACK carries beyond a
 * data segment.  H is nearly constant per server and content type, but
 * for one byte per decimal digit of Content-Length.  So for every server
 * endpoint and file class this module learns
 *
 *     base = octets - packets * hdr - size - digits(size)
 *
 * by letting each connection vote, for every catalog file it might have
 * carried, for the base that file would imply.  Wrong candidates spread
 * their votes thinly; the real downloads pile up on one value.  Over TLS
 * the record layer adds overhead that grows with the size; no such vote
 * converges on a few downloads, so a fixed profile is used (scan_int.h).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scan_int.h"

#define FDX__VOTE_H_MIN 40
#define FDX__VOTE_H_MAX 2000
#define FDX__VOTE_MAX_CAND 64
#define FDX__VOTE_SCAN_MAX 8192
/* see voters_in() */
#define FDX__VOTE_MIN_OCTETS 100000
#define FDX__EXPLAIN_CAP 4096
/* how far from the learned header size a secondary one may lie */
#define FDX__ALT_RANGE 32

typedef struct vote {
    uint32_t conn;
    int32_t d;
    uint8_t variant, cls;
    double w;
} vote;

typedef struct votes {
    vote *v;
    size_t n, cap;
} votes;

/*
 * Compares with powers of ten rather than dividing: calibration, matching
 * and the keep-alive pair search ask this for every size they try.  The
 * bit length of v tells its digits to within one: bits * 1233 / 4096 is
 * floor(log10(2^bits)), and one comparison settles it.
 */
int fdx__digits(uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL};
    int n = 1;

    if (v < 10)
        return 1;
#if defined(__GNUC__)
    n = ((64 - __builtin_clzll(v)) * 1233) >> 12;
    return n + (v >= pow10[n]);
#else
    while (n <= 19 && v >= pow10[n])
        n++;
    return n;
#endif
}

/*
 * t - k runs over the twelve values t - 12 .. t - 1, whose digits are
 * those of its two ends and any between; a k outside that range never
 * equals the digits of t - k.
 */
void fdx__digit_range(int64_t t, int *klo, int *khi)
{
    int hi;

    *klo = 1;
    *khi = 0;
    if (t < 2)
        return;
    *klo = fdx__digits((uint64_t)(t > 13 ? t - 12 : 1));
    hi = fdx__digits((uint64_t)(t - 1));
    *khi = hi < 12 ? hi : 12;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int fdx__file_class(const char *path)
{
    if (ends_with(path, ".deb") || ends_with(path, ".udeb"))
        return FDX__CLASS_DEB;
    if (ends_with(path, "InRelease"))
        return FDX__CLASS_INRELEASE;
    if (ends_with(path, ".xz"))
        return FDX__CLASS_XZ;
    if (ends_with(path, ".gz"))
        return FDX__CLASS_GZ;
    return FDX__CLASS_OTHER;
}

int fdx__hdr_octets(int v4, int variant)
{
    return (v4 ? 40 : 60) + (variant == 0 ? 12 : 0);
}

static int calibrate_one(fdx_scan *s, fdx__server *sv, const uint32_t *idx,
                         size_t n);

static int is_tls_port(uint16_t port)
{
    return port == 443 || port == 8443;
}

static int votes_push(votes *vs, const vote *v)
{
    if (fdx__grow(&vs->v, &vs->cap, vs->n, sizeof(*vs->v)) < 0)
        return FDX_ENOMEM;
    vs->v[vs->n++] = *v;
    return 0;
}

static int vote_cmp(const void *a, const void *b)
{
    const vote *x = a, *y = b;

    if (x->variant != y->variant)
        return x->variant - y->variant;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->conn < y->conn ? -1 : x->conn > y->conn;
}

/*
 * Sorts votes as vote_cmp() does.  They are pushed connection by
 * connection, in increasing id, so a stable sort by variant, class and d
 * alone gives vote_cmp()'s order; the radix sort does that without a call
 * per comparison (a busy server's calibration sorts hundreds of thousands
 * of votes).  Few votes, votes out of connection order, or no memory for
 * the keys: qsort().
 */
#define FDX__VOTE_RADIX_MIN 256

static int votes_radix(vote *v, size_t n, uint64_t *keys, uint32_t *idx,
                       vote *tmp)
{
    for (size_t i = 0; i < n; i++) {
        keys[i] = (uint64_t)v[i].variant << 40 | (uint64_t)v[i].cls << 32 |
                  ((uint32_t)v[i].d ^ 0x80000000u);
        idx[i] = (uint32_t)i;
    }
    if (fdx__radix_sort(keys, idx, n) != 0)
        return FDX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        tmp[i] = v[idx[i]];
    memcpy(v, tmp, n * sizeof(*v));
    return 0;
}

static void votes_sort(vote *v, size_t n)
{
    uint64_t *keys = NULL;
    uint32_t *idx = NULL;
    vote *tmp = NULL;
    int ok = n >= FDX__VOTE_RADIX_MIN;

    for (size_t i = 1; i < n && ok; i++)
        ok = v[i - 1].conn <= v[i].conn;
    if (ok) {
        keys = fdx__malloc(n * sizeof(*keys));
        idx = fdx__malloc(n * sizeof(*idx));
        tmp = fdx__malloc(n * sizeof(*tmp));
        ok = keys != NULL && idx != NULL && tmp != NULL &&
             votes_radix(v, n, keys, idx, tmp) == 0;
    }
    if (!ok)
        qsort(v, n, sizeof(*v), vote_cmp);
    fdx__free(keys);
    fdx__free(idx);
    fdx__free(tmp);
}

/*
 * The path length the request side asks for, when a request constant is
 * known (req) and the request was seen; 0 when any length fits.
 */
static int wanted_path_len(const fdx__modes *req, const fdx__conn *c,
                           int hdr, int64_t *len)
{
    int64_t q;

    if (req == NULL || req->n == 0 || !fdx__request_octets(c, hdr, &q))
        return 0;
    *len = q - req->d[0];
    return 1;
}

/* Path lengths are kept in 16 bits (fdx__path_hist_build). */
#define FDX__NLEN ((size_t)UINT16_MAX + 1)

/*
 * The catalog's entries by path length, each length's in catalog order:
 * the second round of votes wants the files of one path length in a
 * window of sizes, and would otherwise look at every file of the window
 * (thousands, for small files).  A counting sort, once per scan.
 */
static int len_index_build(fdx_scan *s)
{
    size_t n = fdx_catalog_count(s->cat);

    s->len_start = fdx__calloc(FDX__NLEN + 1, sizeof(*s->len_start));
    s->by_len = fdx__malloc((n ? n : 1) * sizeof(*s->by_len));
    if (s->len_start == NULL || s->by_len == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        s->len_start[s->path_len[i] + 1]++;
    for (size_t l = 1; l <= FDX__NLEN; l++)
        s->len_start[l] += s->len_start[l - 1];
    /* each length's start moves to its end, which is the next's start */
    for (size_t i = 0; i < n; i++)
        s->by_len[s->len_start[s->path_len[i]]++] = (uint32_t)i;
    memmove(s->len_start + 1, s->len_start,
            FDX__NLEN * sizeof(*s->len_start));
    s->len_start[0] = 0;
    return 0;
}

/* Appends to keep, from m on, the entries of [first, first + n) whose
 * path has length l; stops past FDX__VOTE_MAX_CAND.  Returns the count. */
static size_t len_window(const fdx_scan *s, size_t l, size_t first,
                         size_t n, uint32_t *keep, size_t m)
{
    const uint32_t *b = s->by_len + s->len_start[l];
    const uint32_t *e = s->by_len + s->len_start[l + 1];

    while (b < e) {
        const uint32_t *mid = b + (e - b) / 2;

        if (*mid < first)
            b = mid + 1;
        else
            e = mid;
    }
    e = s->by_len + s->len_start[l + 1];
    for (; b < e && *b < first + n && m <= FDX__VOTE_MAX_CAND; b++)
        keep[m++] = *b;
    return m;
}

/* The few kept entries back in catalog order (three sorted lists). */
static void keep_sort(uint32_t *keep, size_t m)
{
    for (size_t a = 1; a < m; a++)
        for (size_t b = a; b > 0 && keep[b - 1] > keep[b]; b--) {
            uint32_t t = keep[b];

            keep[b] = keep[b - 1];
            keep[b - 1] = t;
        }
}

/*
 * The catalog files of [first, first + n) a connection may have carried,
 * into keep; more than FDX__VOTE_MAX_CAND of them (small files) say too
 * little to vote, and 0 is returned for them as for none.  With every path
 * length allowed that is known from n alone, without a look at the files;
 * with one length wanted (within a byte), from the index by length.
 */
static size_t vote_cands(const fdx_scan *s, const fdx__modes *req,
                         const fdx__conn *c, int hdr, size_t first, size_t n,
                         uint32_t *keep)
{
    int64_t len;
    size_t m = 0;

    if (!wanted_path_len(req, c, hdr, &len)) {
        if (n > FDX__VOTE_MAX_CAND)
            return 0;
        for (size_t i = 0; i < n; i++)
            keep[i] = (uint32_t)(first + i);
        return n;
    }
    for (int64_t l = len - FDX__REQ_TOL_HTTP;
         l <= len + FDX__REQ_TOL_HTTP && m <= FDX__VOTE_MAX_CAND; l++)
        if (l >= 0 && l < (int64_t)FDX__NLEN)
            m = len_window(s, (size_t)l, first, n, keep, m);
    if (m > FDX__VOTE_MAX_CAND)
        return 0;
    keep_sort(keep, m);
    return m;
}

/*
 * One connection's votes, for each header size tried.  With the request
 * constant known (req), only files of the requested path's length vote,
 * which lets smaller files vote too.
 */
static int conn_votes(const fdx_scan *s, const fdx__conn *c, uint32_t id,
                      const fdx__modes *req, uint32_t *keep, votes *vs)
{
    int v4 = fdx_addr_is_v4(&c->server);

    for (int variant = 0; variant < 2; variant++) {
        int hdr = fdx__hdr_octets(v4, variant);
        uint64_t p, lo, hi;
        size_t first, n, m;

        if (c->s2c_packets * (uint64_t)hdr + FDX__VOTE_H_MIN >= c->s2c_octets ||
            (req == NULL && c->s2c_octets < FDX__VOTE_MIN_OCTETS))
            continue;
        p = c->s2c_octets - c->s2c_packets * (uint64_t)hdr;
        lo = p > FDX__VOTE_H_MAX ? p - FDX__VOTE_H_MAX : 0;
        hi = p - FDX__VOTE_H_MIN;
        n = fdx_catalog_range(s->cat, lo, hi, &first);
        if (n > FDX__VOTE_SCAN_MAX ||
            (m = vote_cands(s, req, c, hdr, first, n, keep)) == 0)
            continue;
        for (size_t i = 0; i < m; i++) {
            uint64_t size = fdx_catalog_size(s->cat, keep[i]);
            vote v;

            v.conn = id;
            v.variant = (uint8_t)variant;
            v.cls = (uint8_t)fdx__entry_class(s, keep[i]);
            v.d = (int32_t)(p - size) - fdx__digits(size);
            v.w = 1.0 / (double)m;
            if (votes_push(vs, &v) < 0)
                return FDX_ENOMEM;
        }
    }
    return 0;
}

/* The strongest value of a run of votes sorted by d. */
typedef struct mode {
    int32_t d;
    double w;
    uint32_t conns;
} mode;

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Distinct connections voting within hw of d (v sorted by d). */
static uint32_t window_conns(const vote *v, size_t n, int32_t d, int32_t hw)
{
    uint32_t *ids = fdx__malloc((n ? n : 1) * sizeof(*ids));
    size_t m = 0;
    uint32_t distinct = 0;

    if (ids == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].d >= d - hw && v[i].d <= d + hw)
            ids[m++] = v[i].conn;
    qsort(ids, m, sizeof(*ids), u32_cmp);
    for (size_t i = 0; i < m; i++)
        distinct += i == 0 || ids[i] != ids[i - 1];
    fdx__free(ids);
    return distinct;
}

/* The single value within hw of d that carries the most weight, so that
 * a window's centre is not pulled to its edge by ties. */
static int32_t heaviest_value(const vote *v, size_t n, int32_t d, int32_t hw)
{
    int32_t best = d;
    double best_w = -1, w = 0;

    for (size_t i = 0; i < n; i++) {
        if (v[i].d < d - hw || v[i].d > d + hw)
            continue;
        w = (i > 0 && v[i].d == v[i - 1].d) ? w + v[i].w : v[i].w;
        if (w > best_w) {
            best_w = w;
            best = v[i].d;
        }
    }
    return best;
}

/*
 * Finds the d whose votes within hw either side weigh most, among the
 * values backed by at least min_conns connections.  The weights come from
 * one sliding window (the run is sorted by d); only the heaviest few
 * values are checked for their number of connections.  Returns 1 if found.
 */
#define FDX__MODE_TRIES 8

static int find_mode(const vote *v, size_t n, int32_t hw, uint32_t min_conns,
                     mode *out)
{
    mode top[FDX__MODE_TRIES];
    size_t ntop = 0, lo = 0, hi = 0;
    double w = 0;

    for (size_t k = 0; k < n; k++) {
        if (k > 0 && v[k].d == v[k - 1].d)
            continue;
        while (hi < n && v[hi].d <= v[k].d + hw)
            w += v[hi++].w;
        while (v[lo].d < v[k].d - hw)
            w -= v[lo++].w;
        for (size_t t = 0; t < FDX__MODE_TRIES; t++) {
            if (t < ntop && top[t].w >= w)
                continue;
            if (ntop < FDX__MODE_TRIES)
                ntop++;
            memmove(&top[t + 1], &top[t], (ntop - 1 - t) * sizeof(top[0]));
            top[t].d = v[k].d;
            top[t].w = w;
            break;
        }
    }
    for (size_t t = 0; t < ntop; t++) {
        top[t].conns = window_conns(v, n, top[t].d, hw);
        if (top[t].conns >= min_conns) {
            *out = top[t];
            out->d = heaviest_value(v, n, top[t].d, hw);
            return 1;
        }
    }
    return 0;
}

/* Removes the votes within hw of d, keeping the order. */
static size_t drop_near(vote *v, size_t n, int32_t d, int32_t hw)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++)
        if (v[i].d < d - hw || v[i].d > d + hw)
            v[m++] = v[i];
    return m;
}

/*
 * The values most votes agree on (within hw), at most max of them, each
 * backed by min_conns connections and min_w votes' worth of weight.
 * Consumes the votes.
 */
static void find_modes(vote *v, size_t n, int32_t hw, uint32_t min_conns,
                       int max, double min_w, fdx__modes *out)
{
    mode m;

    out->n = 0;
    while (out->n < max && find_mode(v, n, hw, min_conns, &m)) {
        if (m.w < min_w)
            break;
        out->d[out->n] = m.d;
        out->conns[out->n] = m.conns;
        out->n++;
        n = drop_near(v, n, m.d, 2 * hw + 2);
    }
}

/* Adds to each learned (variant, class) the other sizes votes agree on. */
static void pick_alternates(fdx__server *sv, vote *v, size_t n)
{
    votes_sort(v, n);
    for (size_t i = 0; i < n;) {
        size_t j = i, k = 0;
        fdx__modes *b = &sv->base[v[i].variant][v[i].cls], alt;

        while (j < n && v[j].variant == v[i].variant && v[j].cls == v[i].cls)
            j++;
        if (b->n == 1) {
            for (size_t m = i; m < j; m++)
                if (v[m].d >= b->d[0] - FDX__ALT_RANGE &&
                    v[m].d <= b->d[0] + FDX__ALT_RANGE)
                    v[i + k++] = v[m];
            find_modes(v + i, k, 1, 3, FDX__MAX_MODES - 1, 0.3, &alt);
            for (int a = 0; a < alt.n && b->n < FDX__MAX_MODES; a++) {
                b->d[b->n] = alt.d[a];
                b->conns[b->n++] = alt.conns[a];
            }
        }
        i = j;
    }
}

/*
 * The connections whose votes in v[0..n) lie within a byte of a learned
 * size, as a sorted list of ids (*out, fdx__malloc'd; NULL if none).
 */
static size_t explained_conns(const fdx__server *sv, const vote *v, size_t n,
                              uint32_t **out)
{
    uint32_t *ids = fdx__malloc((n ? n : 1) * sizeof(*ids));
    size_t m = 0;

    *out = ids;
    if (ids == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const fdx__modes *b = &sv->base[v[i].variant][v[i].cls];

        for (int k = 0; k < b->n; k++)
            if (v[i].d >= b->d[k] - 1 && v[i].d <= b->d[k] + 1) {
                ids[m++] = v[i].conn;
                break;
            }
    }
    qsort(ids, m, sizeof(*ids), u32_cmp);
    return m;
}

static int id_in(const uint32_t *ids, size_t n, uint32_t id)
{
    return n > 0 && bsearch(&id, ids, n, sizeof(*ids), u32_cmp) != NULL;
}

/*
 * For each (variant, class), the header size within one byte.  Every
 * connection votes under both per-packet header sizes; under the wrong
 * one its votes are noise, so the second header size (no TCP timestamps)
 * hears only connections the first one leaves unexplained, and needs
 * three of them.
 */
static void pick_bases(fdx__server *sv, vote *v, size_t n)
{
    uint32_t *ids = NULL;
    size_t first_end, nids = 0;

    votes_sort(v, n);
    for (first_end = 0; first_end < n && v[first_end].variant == 0;)
        first_end++;
    for (size_t i = 0; i < n;) {
        size_t j = i, m = i;

        while (j < n && v[j].variant == v[i].variant && v[j].cls == v[i].cls)
            j++;
        if (v[i].variant > 0 && ids == NULL)
            nids = explained_conns(sv, v, first_end, &ids);
        if (v[i].variant > 0) {
            for (size_t k = i; k < j; k++)
                if (!id_in(ids, nids, v[k].conn))
                    v[m++] = v[k];
        } else {
            m = j;
        }
        find_modes(v + i, m - i, 1, v[i].variant > 0 ? 3 : 2, 1, 1.0,
                   &sv->base[v[i].variant][v[i].cls]);
        i = j;
    }
    fdx__free(ids);
}

static int conn_server_cmp(const void *a, const void *b, void *arg)
{
    const fdx__conn *cv = arg;
    const fdx__conn *x = &cv[*(const uint32_t *)a];
    const fdx__conn *y = &cv[*(const uint32_t *)b];
    int c = fdx__addr_order(&x->server, &y->server);

    if (c != 0)
        return c;
    return (int)x->sport - (int)y->sport;
}

/* The hash of connection i's server endpoint, which groups them. */
static uint64_t server_hash(const void *ctx, size_t i)
{
    const fdx__conn *c = &((const fdx_scan *)ctx)->conns[i];

    return fdx__mix64(fdx__mix64(fdx__mix64(c->sport, fdx__be64(c->server.b)),
                                 fdx__be64(c->server.b + 8)), 1);
}

/*
 * One server endpoint's connections: idx[start .. start + n), and how
 * many of them (at most two) could vote, counted while they are cached.
 */
typedef struct span {
    uint32_t start, n;
    uint8_t voters;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static size_t voters_in(const fdx_scan *s, const uint32_t *idx, size_t n);

static int span_push(const fdx_scan *s, const uint32_t *idx, spans *sp,
                     size_t start, size_t n)
{
    if (fdx__grow(&sp->v, &sp->cap, sp->n, sizeof(*sp->v)) < 0)
        return FDX_ENOMEM;
    sp->v[sp->n].start = (uint32_t)start;
    sp->v[sp->n].n = (uint32_t)n;
    sp->v[sp->n++].voters = (uint8_t)voters_in(s, idx + start, n);
    return 0;
}

/*
 * A run of one hash is one endpoint's connections, unless two endpoints
 * share the hash: those are sorted apart, by address and port, and split.
 */
static int run_spans(const fdx_scan *s, uint32_t *idx, size_t start,
                     size_t n, spans *sp)
{
    fdx__conn *cv = s->conns;
    size_t k = 1, end = start + n;
    int rc = 0;

    while (k < n && conn_server_cmp(&idx[start], &idx[start + k], cv) == 0)
        k++;
    if (k == n)
        return span_push(s, idx, sp, start, n);
    qsort_r(idx + start, n, sizeof(*idx), conn_server_cmp, cv);
    for (size_t i = start; i < end && rc == 0;) {
        size_t j = i + 1;

        while (j < end && conn_server_cmp(&idx[i], &idx[j], cv) == 0)
            j++;
        rc = span_push(s, idx, sp, i, j - i);
        i = j;
    }
    return rc;
}

/*
 * How many connections ahead of the grouping are fetched into the cache:
 * it visits them in hash order, a cache miss each otherwise.
 */
#define FDX__PREFETCH_CONNS 16

/*
 * The connections' indexes grouped by server endpoint (*idx, by a hash
 * of it), and the span of each endpoint (*sp), found once for both
 * passes of the calibration.  Both are fdx__malloc'd.
 */
static int conns_by_server(const fdx_scan *s, uint32_t **idx, spans *sp)
{
    uint64_t *keys;
    size_t pf = 0;
    int rc = fdx__sort_by_key(s->nconns, server_hash, s, idx, &keys);

    for (size_t i = 0; i < s->nconns && rc == 0;) {
        size_t j = i + 1;

        while (j < s->nconns && keys[j] == keys[i])
            j++;
        for (; pf < j + FDX__PREFETCH_CONNS && pf < s->nconns; pf++) {
            const fdx__conn *c = &s->conns[(*idx)[pf]];

            fdx__prefetch(c);
            fdx__prefetch((const char *)(c + 1) - 1);
        }
        rc = run_spans(s, *idx, i, j - i, sp);
        i = j;
    }
    fdx__free(keys);
    return rc;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median request bytes of the server's connections: most carry one file. */
static double median_request(const fdx__conn *cv, const uint32_t *idx,
                             size_t n)
{
    double *q = fdx__malloc(n * sizeof(*q));
    size_t m = 0;
    double med = 0;

    if (q == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const fdx__conn *c = &cv[idx[i]];
        uint64_t hdr = (uint64_t)fdx__hdr_octets(fdx_addr_is_v4(&c->server), 0);

        if (c->c2s_packets == 0 || c->c2s_octets <= c->c2s_packets * hdr)
            continue;
        q[m++] = (double)(c->c2s_octets - c->c2s_packets * hdr);
    }
    if (m >= 3) {
        qsort(q, m, sizeof(*q), dbl_cmp);
        med = q[m / 2];
    }
    fdx__free(q);
    return med;
}

/*
 * One connection's votes for the server's request constant: for each
 * file its size fits, the request bytes beyond that file's path length.
 */
static int conn_req_votes(const fdx_scan *s, const fdx__server *sv,
                          const fdx__conn *c, uint32_t id, uint32_t *scratch,
                          votes *vs)
{
    fdx__cands cs;
    int64_t q;

    memset(&cs, 0, sizeof(cs));
    cs.v = scratch;
    cs.cap = FDX__VOTE_MAX_CAND;
    fdx__size_cands(s, sv, c, &cs);
    if (cs.n == 0 || cs.total > FDX__VOTE_MAX_CAND ||
        !fdx__request_octets(c, cs.hdr, &q))
        return 0;
    for (size_t i = 0; i < cs.n; i++) {
        vote v;

        v.conn = id;
        v.variant = 0;
        v.cls = 0;
        v.d = (int32_t)(q - (int64_t)fdx__entry_path_len(s, cs.v[i]));
        v.w = 1.0 / (double)cs.n;
        if (votes_push(vs, &v) < 0)
            return FDX_ENOMEM;
    }
    return 0;
}

/*
 * The request constant of an HTTP server: exact within a byte, backed by
 * two connections.
 */
static int calibrate_request(fdx_scan *s, fdx__server *sv,
                             const uint32_t *idx, size_t n)
{
    uint32_t scratch[FDX__VOTE_MAX_CAND];
    votes vs = {NULL, 0, 0};
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdx__conn *c = &s->conns[idx[i]];

        if (!c->sampled)
            rc = conn_req_votes(s, sv, c, idx[i], scratch, &vs);
    }
    if (rc == 0 && vs.n > 0) {
        votes_sort(vs.v, vs.n);
        /* one value: a second one is mostly lost segments, whose
         * duplicate ACKs carry SACK options, not another client */
        find_modes(vs.v, vs.n, FDX__REQ_TOL_HTTP, 2, 1, 1.0, &sv->req);
    }
    fdx__free(vs.v);
    return rc;
}

/*
 * Secondary header sizes: a CDN's other nodes or cache states answer some
 * downloads with a header a few bytes off.  Only connections the learned
 * sizes do not explain vote, only within FDX__ALT_RANGE of the learned
 * size, and a value needs three connections, so that lost segments
 * (which inflate a flow at random) seldom add one.
 */
static int vote_alternates(const fdx_scan *s, fdx__server *sv,
                           const uint32_t *idx, size_t n)
{
    uint32_t keep[FDX__VOTE_MAX_CAND + 1], *scratch;
    votes vs = {NULL, 0, 0};
    int rc = 0;

    scratch = fdx__malloc(FDX__EXPLAIN_CAP * sizeof(*scratch));
    if (scratch == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdx__conn *c = &s->conns[idx[i]];

        if (!c->sampled &&
            !fdx__conn_explained(s, sv, c, scratch, FDX__EXPLAIN_CAP))
            rc = conn_votes(s, c, idx[i], &sv->req, keep, &vs);
    }
    fdx__free(scratch);
    if (rc == 0 && vs.n > 0)
        pick_alternates(sv, vs.v, vs.n);
    fdx__free(vs.v);
    return rc;
}

/* Votes of all the server's connections, and the header sizes they give. */
static int vote_bases(const fdx_scan *s, fdx__server *sv, const uint32_t *idx,
                      size_t n, const fdx__modes *req)
{
    uint32_t keep[FDX__VOTE_MAX_CAND + 1];
    votes vs = {NULL, 0, 0};
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const fdx__conn *c = &s->conns[idx[i]];

        if (!c->sampled)
            rc = conn_votes(s, c, idx[i], req, keep, &vs);
    }
    if (rc == 0 && vs.n > 0)
        pick_bases(sv, vs.v, vs.n);
    fdx__free(vs.v);
    return rc;
}

/*
 * Header sizes first from sizes alone, then the request constant, then
 * the header sizes again with the request side narrowing the votes, which
 * finds the rarer sizes a CDN also answers with.
 */
static int calibrate_one(fdx_scan *s, fdx__server *sv, const uint32_t *idx,
                         size_t n)
{
    int rc;

    sv->req_single = median_request(s->conns, idx, n);
    rc = vote_bases(s, sv, idx, n, NULL);
    if (rc == 0 && fdx__server_calibrated(sv))
        rc = calibrate_request(s, sv, idx, n);
    if (rc == 0 && sv->req.n > 0) {
        fdx__server again = *sv;

        memset(again.base, 0, sizeof(again.base));
        rc = vote_bases(s, &again, idx, n, &sv->req);
        /* the narrowed votes refine and add classes of the per-packet
         * header sizes already seen; a new one would rest on the few
         * votes that survive narrowing, which chance also gives.  The
         * second header size (no timestamps) is kept only where the
         * request side confirms it: its first votes come from the
         * connections the first leaves unexplained, and with a catalog
         * that lacks a client's release those are many, so three of
         * them agree by chance */
        for (int v = 0; v < 2 && rc == 0; v++) {
            int seen = 0;

            for (int c = 0; c < FDX__NCLASS; c++)
                seen |= sv->base[v][c].n > 0;
            for (int c = 0; c < FDX__NCLASS && seen; c++)
                if (again.base[v][c].n > 0 || v > 0)
                    sv->base[v][c] = again.base[v][c];
        }
        if (rc == 0)
            rc = vote_alternates(s, sv, idx, n);
    }
    return rc;
}

static int server_push(fdx_scan *s, const fdx__server *sv, size_t *cap)
{
    if (fdx__grow(&s->servers, cap, s->nservers, sizeof(*s->servers)) < 0)
        return FDX_ENOMEM;
    s->servers[s->nservers++] = *sv;
    return 0;
}

static int server_cmp(const void *a, const void *b)
{
    const fdx__server *x = a, *y = b;
    int c = fdx__addr_order(&x->addr, &y->addr);

    return c != 0 ? c : (int)x->port - (int)y->port;
}

/*
 * The first round of votes hears only connections that fit at most
 * FDX__VOTE_MAX_CAND files within the 2000-byte header window, and none
 * below FDX__VOTE_MIN_OCTETS does in a catalog of Debian's size (files
 * there are too dense).  A server without two such connections cannot be
 * calibrated, and is passed over without a vote.
 */
static size_t voters_in(const fdx_scan *s, const uint32_t *idx, size_t n)
{
    size_t d = 0;

    for (size_t i = 0; i < n && d < 2; i++)
        d += !s->conns[idx[i]].sampled &&
             s->conns[idx[i]].s2c_octets >= FDX__VOTE_MIN_OCTETS;
    return d;
}

/*
 * A busy server's model is learned from an even sample of at most
 * FDX__CALIBRATE_MAX of its connections: a few thousand downloads settle
 * it, and voting over millions would cost more than matching them.
 */
#define FDX__CALIBRATE_MAX 8192

static int calibrate_sampled(fdx_scan *s, fdx__server *sv,
                             const uint32_t *idx, size_t n)
{
    uint32_t *sub;
    int rc;

    if (n <= FDX__CALIBRATE_MAX)
        return calibrate_one(s, sv, idx, n);
    sub = fdx__malloc(FDX__CALIBRATE_MAX * sizeof(*sub));
    if (sub == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < FDX__CALIBRATE_MAX; i++)
        sub[i] = idx[i * n / FDX__CALIBRATE_MAX];
    rc = calibrate_one(s, sv, sub, FDX__CALIBRATE_MAX);
    fdx__free(sub);
    return rc;
}

/* True when an HTTP server at addr was calibrated (first pass). */
static int repository_addr(const fdx_scan *s, size_t n, const fdx_addr *a)
{
    for (size_t lo = 0, hi = n; lo < hi;) {
        size_t mid = (lo + hi) / 2;
        int c = fdx__addr_order(&s->servers[mid].addr, a);

        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* A server endpoint as the run of its connections idx[0 .. n) sees it. */
static void server_init(const fdx_scan *s, const uint32_t *idx,
                        fdx__server *sv)
{
    const fdx__conn *c = &s->conns[idx[0]];

    memset(sv, 0, sizeof(*sv));
    sv->addr = c->server;
    sv->port = c->sport;
    sv->tls = (uint8_t)is_tls_port(sv->port);
}

/*
 * The first pass learns HTTP servers, and keeps those it could
 * calibrate: only they are repository servers.  Two workers take the
 * spans FDX__SPAN_CHUNK at a time (the few busy mirrors cost nearly all
 * of it, and which worker gets them cannot be told beforehand), each
 * into its own list; sorted together, the lists give the servers one
 * thread would have found, in the same order.
 */
#define FDX__SPAN_CHUNK 64

typedef struct calib_work {
    fdx_scan *s;
    const uint32_t *idx;
    const spans *sp;
    atomic_size_t next;         /* first span not yet taken */
    fdx__server *found[2];
    size_t nfound[2], cap[2];
    int rc[2];
} calib_work;

/* One span of the first pass: 0, or FDX_ENOMEM. */
static int learn_span(calib_work *w, unsigned worker, const span *g)
{
    const uint32_t *idx = w->idx + g->start;
    fdx__server sv;
    int rc;

    server_init(w->s, idx, &sv);
    if (sv.tls || g->voters < 2)
        return 0;
    if ((rc = calibrate_sampled(w->s, &sv, idx, g->n)) != 0)
        return rc;
    if (!fdx__server_calibrated(&sv))
        return 0;
    if (fdx__grow(&w->found[worker], &w->cap[worker], w->nfound[worker],
                  sizeof(sv)) < 0)
        return FDX_ENOMEM;
    w->found[worker][w->nfound[worker]++] = sv;
    return 0;
}

static void learn_worker(void *ctx, unsigned worker)
{
    calib_work *w = ctx;

    while (w->rc[worker] == 0) {
        size_t g = atomic_fetch_add(&w->next, FDX__SPAN_CHUNK);
        size_t end = g + FDX__SPAN_CHUNK;

        if (g >= w->sp->n)
            return;
        for (; g < end && g < w->sp->n && w->rc[worker] == 0; g++)
            w->rc[worker] = learn_span(w, worker, &w->sp->v[g]);
    }
}

/* The first pass: s->servers the calibrated HTTP servers, sorted. */
static int learn_servers(fdx_scan *s, const uint32_t *idx, const spans *sp)
{
    calib_work w;
    size_t n;
    int rc;

    memset(&w, 0, sizeof(w));
    w.s = s;
    w.idx = idx;
    w.sp = sp;
    atomic_init(&w.next, 0);
    fdx__run2(learn_worker, &w);
    rc = w.rc[0] != 0 ? w.rc[0] : w.rc[1];
    n = w.nfound[0] + w.nfound[1];
    if (rc == 0 && n > 0) {
        fdx__server *v = fdx__realloc(w.found[0], n * sizeof(*v));

        if (v == NULL) {
            rc = FDX_ENOMEM;
        } else {
            if (w.nfound[1] > 0)    /* found[1] may be NULL */
                memcpy(v + w.nfound[0], w.found[1],
                       w.nfound[1] * sizeof(*v));
            qsort(v, n, sizeof(*v), server_cmp);
            s->servers = v;
            s->nservers = n;
            w.found[0] = NULL;
        }
    }
    fdx__free(w.found[0]);
    fdx__free(w.found[1]);
    return rc;
}

/*
 * The second pass keeps TLS ports on the addresses of the first's
 * servers; HTTPS elsewhere is no repository flowdex knows.
 */
static int tls_group(fdx_scan *s, const uint32_t *idx, size_t n,
                     size_t *cap)
{
    fdx__server sv;

    server_init(s, idx, &sv);
    if (!sv.tls || !repository_addr(s, s->st.servers_calibrated, &sv.addr))
        return 0;
    sv.req_single = median_request(s->conns, idx, n);
    return server_push(s, &sv, cap);
}

int fdx__servers_calibrate(fdx_scan *s)
{
    uint32_t *idx = NULL;
    spans sp = {NULL, 0, 0};
    size_t cap;
    int rc = 0;

    if (s->nconns == 0)
        return 0;
    if ((rc = len_index_build(s)) != 0)
        return rc;
    rc = conns_by_server(s, &idx, &sp);
    if (rc == 0)
        rc = learn_servers(s, idx, &sp);
    /* the second pass looks the first's servers up by address */
    s->st.servers_calibrated = s->nservers;
    cap = s->nservers;
    for (size_t g = 0; g < sp.n && rc == 0; g++)
        rc = tls_group(s, idx + sp.v[g].start, sp.v[g].n, &cap);
    fdx__free(idx);
    fdx__free(sp.v);
    if (s->nservers > 0)
        qsort(s->servers, s->nservers, sizeof(*s->servers), server_cmp);
    return rc;
}

/*
 * The model of one endpoint from the connections given, the way
 * server_group() learns it from all of a scan's: the calibration code
 * reads its connections from s->conns, so cv stands in for them during
 * the call.
 */
static int endpoint_calibrate(fdx_scan *s, fdx__server *sv, uint32_t *idx,
                              size_t n)
{
    if (sv->tls) {
        sv->req_single = median_request(s->conns, idx, n);
        return 0;
    }
    if (voters_in(s, idx, n) < 2)
        return 0;
    return calibrate_sampled(s, sv, idx, n);
}

int fdx__server_calibrate_conns(fdx_scan *s, fdx__server *sv,
                                fdx__conn *cv, size_t n)
{
    fdx__conn *conns = s->conns;
    size_t nconns = s->nconns;
    uint32_t *idx;
    int rc;

    memset(sv->base, 0, sizeof(sv->base));
    memset(&sv->req, 0, sizeof(sv->req));
    sv->req_single = 0;
    sv->tls = (uint8_t)is_tls_port(sv->port);
    if (n == 0)
        return 0;
    if (s->len_start == NULL || s->by_len == NULL) {
        /* built once; a build that ran out of memory is retried whole */
        fdx__free(s->len_start);
        fdx__free(s->by_len);
        s->len_start = NULL;
        s->by_len = NULL;
        if ((rc = len_index_build(s)) != 0)
            return rc;
    }
    if ((idx = fdx__malloc(n * sizeof(*idx))) == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    s->conns = cv;
    s->nconns = n;
    rc = endpoint_calibrate(s, sv, idx, n);
    s->conns = conns;
    s->nconns = nconns;
    fdx__free(idx);
    return rc;
}

int fdx__server_calibrated(const fdx__server *sv)
{
    for (int v = 0; v < 2; v++)
        for (int c = 0; c < FDX__NCLASS; c++)
            if (sv->base[v][c].n > 0)
                return 1;
    return 0;
}

const fdx__server *fdx__server_find(const fdx_scan *s, const fdx_addr *a,
                                    uint16_t port)
{
    size_t lo = 0, hi = s->nservers;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const fdx__server *sv = &s->servers[mid];
        int c = fdx__addr_order(&sv->addr, a);

        if (c == 0)
            c = (int)sv->port - (int)port;
        if (c == 0)
            return sv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void fdx__servers_log(const fdx_scan *s)
{
    static const char *names[FDX__NCLASS] = {"deb", "inrelease", "xz", "gz",
                                             "other"};

    for (size_t i = 0; i < s->nservers; i++) {
        const fdx__server *sv = &s->servers[i];
        char a[FDX_ADDRSTRLEN];

        if (!fdx__log_enabled(s->opts.log, FDX_LOG_INFO))
            return;
        fdx_addr_format(&sv->addr, a, sizeof(a));
        for (int k = 0; k < sv->req.n; k++)
            fdx__log(s->opts.log, FDX_LOG_INFO,
                     "event=calibrated server=%s port=%u request_octets=%d "
                     "connections=%u", a, sv->port, sv->req.d[k],
                     sv->req.conns[k]);
        for (int v = 0; v < 2; v++)
            for (int c = 0; c < FDX__NCLASS; c++)
                for (int k = 0; k < sv->base[v][c].n; k++)
                    fdx__log(s->opts.log, FDX_LOG_INFO,
                             "event=calibrated server=%s port=%u hdr=%d "
                             "class=%s header_octets=%d connections=%u",
                             a, sv->port, fdx__hdr_octets(1, v), names[c],
                             sv->base[v][c].d[k], sv->base[v][c].conns[k]);
    }
}
