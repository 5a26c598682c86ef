/*
 * Host inference.
 *
 * An OS hypothesis is one release of one distribution on one architecture
 * (Debian 12 on amd64).  Each connection scored, for each hypothesis, the
 * log of how much likelier its candidates are if the host is of that kind
 * than by chance (match.c).  A host's score for a hypothesis is the sum
 * over its connections; the scores become probabilities against a null
 * hypothesis, "no evidence of any of these", whose score FDX__NULL_SCORE
 * sets how much evidence a claim needs.  So large files and index files,
 * which almost never fit by chance, count most; a host whose connections
 * fit the catalog only as often as chance predicts gets no OS.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scan_int.h"

#define FDX__NULL_SCORE 3.0
#define FDX__OS_MIN_P 0.5
#define FDX__ARCH_MIN_P 0.6
#define FDX__MAX_ARCHES 32

typedef struct group {
    const char *family, *release, *codename;
} group;

static int is_arch_neutral(const char *arch)
{
    return arch[0] == '\0' || strcmp(arch, "all") == 0;
}

int fdx__entry_in_hyp(const fdx_scan *s, size_t entry, size_t h)
{
    int a = s->entry_arch[entry];

    if (s->entry_group[entry] != s->hyps[h].group)
        return 0;
    return a == -1 || (a >= 0 && (size_t)a == h % s->narches);
}

static size_t count_sizes(const uint64_t *v, size_t nv, uint64_t lo,
                          uint64_t hi)
{
    size_t a = 0, b = nv, c;

    while (a < b) {
        size_t m = (a + b) / 2;
        if (v[m] < lo)
            a = m + 1;
        else
            b = m;
    }
    c = a;
    b = nv;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (v[m] <= hi)
            a = m + 1;
        else
            b = m;
    }
    return a - c;
}

/*
 * Files per byte of h's packages (or index files) around size center:
 * counted within 2 % (at least 2000 bytes) either side, so that the
 * estimate follows the catalog's size distribution without being thrown
 * by the file that matched.
 */
static double density_at(const fdx__hyp *h, double center, int index)
{
    double w = fmax(2000.0, 0.02 * center);
    uint64_t a = center > w ? (uint64_t)(center - w) : 0;
    size_t n = index ? count_sizes(h->isizes, h->nisizes, a,
                                   (uint64_t)(center + w))
                     : count_sizes(h->sizes, h->nsizes, a,
                                   (uint64_t)(center + w));

    return (double)n / (center + w - (double)a + 1.0);
}

/* Densities are tabulated once per hypothesis on log-spaced sizes. */
static void hyp_densities(fdx__hyp *h)
{
    double c = FDX__BUCKET_MIN;

    for (int b = 0; b < FDX__NBUCKET; b++, c *= FDX__BUCKET_RATIO) {
        h->density[0][b] = (float)density_at(h, c, 0);
        h->density[1][b] = (float)density_at(h, c, 1);
    }
}

/* The bucket of center by its definition: the nearest power of the
 * ratio, from the least size up. */
static int bucket_by_log(double center)
{
    int b = center <= FDX__BUCKET_MIN
                ? 0
                : (int)(log(center / FDX__BUCKET_MIN) /
                        log(FDX__BUCKET_RATIO) + 0.5);

    return b < FDX__NBUCKET ? b : FDX__NBUCKET - 1;
}

/* bucket_low[b]: the least double bucket_by_log() puts in bucket b, so
 * that a binary search gives its very answer without a log (a pair
 * search asks for thousands of buckets). */
static double bucket_low[FDX__NBUCKET];
static pthread_once_t bucket_once = PTHREAD_ONCE_INIT;

static void bucket_table(void)
{
    bucket_low[0] = -INFINITY;
    for (int b = 1; b < FDX__NBUCKET; b++) {
        double c = FDX__BUCKET_MIN * pow(FDX__BUCKET_RATIO, b - 0.5);

        /* a few ulps either way of the exact boundary */
        while (bucket_by_log(c) >= b)
            c = nextafter(c, 0.0);
        while (bucket_by_log(c) < b)
            c = nextafter(c, INFINITY);
        bucket_low[b] = c;
    }
}

int fdx__bucket(double center)
{
    int lo = 0, hi = FDX__NBUCKET - 1;

    pthread_once(&bucket_once, bucket_table);
    if (!(center == center))
        return bucket_by_log(center);
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;

        if (bucket_low[mid] <= center)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

double fdx__hyp_expected(const fdx__hyp *h, uint64_t lo, uint64_t hi,
                         int index)
{
    double width = (double)(hi - lo + 1);
    int b = fdx__bucket(((double)lo + (double)hi) / 2.0);

    return (double)h->density[index != 0][b] * width;
}

/* Origins with the same family and release form one group. */
static int build_groups(fdx_scan *s, group *g, size_t *ng)
{
    size_t no = fdx_catalog_origin_count(s->cat);

    *ng = 0;
    s->origin_group = fdx__calloc(no ? no : 1, sizeof(uint32_t));
    if (s->origin_group == NULL)
        return FDX_ENOMEM;
    for (uint32_t i = 0; i < no; i++) {
        fdx_origin o;
        size_t k;

        fdx_catalog_origin(s->cat, i, &o);
        for (k = 0; k < *ng; k++)
            if (strcmp(g[k].family, o.family) == 0 &&
                strcmp(g[k].release, o.release) == 0)
                break;
        if (k == *ng) {
            g[k].family = o.family;
            g[k].release = o.release;
            g[k].codename = o.codename;
            (*ng)++;
        }
        /* the main suite names the release, not -security/-updates */
        if (strchr(o.codename, '-') == NULL)
            g[k].codename = o.codename;
        s->origin_group[i] = (uint32_t)k;
    }
    return 0;
}

static int push_size(uint64_t **v, size_t *n, size_t *cap, uint64_t size)
{
    if (fdx__grow(v, cap, *n, sizeof(**v)) < 0)
        return FDX_ENOMEM;
    (*v)[(*n)++] = size;
    return 0;
}

/* caps[0] and caps[1]: capacities of h's package and index arrays */
static int hyp_push_size(fdx__hyp *h, const fdx_entry *e, size_t *caps)
{
    if (e->kind == FDX_KIND_PACKAGE)
        return push_size(&h->sizes, &h->nsizes, &caps[0], e->size);
    return push_size(&h->isizes, &h->nisizes, &caps[1], e->size);
}

static size_t find_arch(const char **arches, size_t n, const char *a)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(arches[i], a) == 0)
            return i;
    return n;
}

static int make_hyps(fdx_scan *s, const group *g, size_t ng,
                     const char **arches, size_t na)
{
    s->hyps = fdx__calloc(ng * na > 0 ? ng * na : 1, sizeof(*s->hyps));
    if (s->hyps == NULL)
        return FDX_ENOMEM;
    s->nhyps = ng * na;
    for (size_t i = 0; i < ng; i++)
        for (size_t j = 0; j < na; j++) {
            fdx__hyp *h = &s->hyps[i * na + j];

            h->family = g[i].family;
            h->release = g[i].release;
            h->codename = g[i].codename;
            h->arch = arches[j];
            h->group = (uint32_t)i;
        }
    return 0;
}

static int fill_hyps(fdx_scan *s, size_t na, const char **arches)
{
    size_t n = fdx_catalog_count(s->cat);
    size_t *caps = fdx__calloc(s->nhyps ? 2 * s->nhyps : 1, sizeof(*caps));
    int rc = 0;

    s->narches = na;
    s->entry_group = fdx__malloc((n ? n : 1) * sizeof(*s->entry_group));
    s->entry_arch = fdx__malloc((n ? n : 1) * sizeof(*s->entry_arch));
    if (caps == NULL || s->entry_group == NULL || s->entry_arch == NULL) {
        fdx__free(caps);
        return FDX_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        fdx_entry e;
        size_t base, a;

        fdx_catalog_entry(s->cat, i, &e);
        s->entry_group[i] = s->origin_group[e.origin];
        s->entry_arch[i] = -1;
        base = s->origin_group[e.origin] * na;
        if (!is_arch_neutral(e.arch)) {
            a = find_arch(arches, na, e.arch);
            s->entry_arch[i] = (int16_t)(a < na ? (int)a : -2);
            if (a < na)
                rc = hyp_push_size(&s->hyps[base + a], &e,
                                   &caps[2 * (base + a)]);
            continue;
        }
        for (a = 0; a < na && rc == 0; a++)
            rc = hyp_push_size(&s->hyps[base + a], &e, &caps[2 * (base + a)]);
    }
    fdx__free(caps);
    return rc;
}

int fdx__hyps_build(fdx_scan *s)
{
    size_t no = fdx_catalog_origin_count(s->cat), n, ng, na = 0;
    const char *arches[FDX__MAX_ARCHES];
    group *g = fdx__calloc(no ? no : 1, sizeof(*g));
    int rc;

    if (g == NULL)
        return FDX_ENOMEM;
    rc = build_groups(s, g, &ng);
    n = fdx_catalog_count(s->cat);
    for (size_t i = 0; i < n && rc == 0; i++) {
        fdx_entry e;

        fdx_catalog_entry(s->cat, i, &e);
        /* only architectures whose packages the catalog holds can be
         * told apart; index files of others say nothing here */
        if (e.kind == FDX_KIND_PACKAGE && !is_arch_neutral(e.arch) &&
            na < FDX__MAX_ARCHES &&
            find_arch(arches, na, e.arch) == na)
            arches[na++] = e.arch;
    }
    if (rc == 0)
        rc = make_hyps(s, g, ng, arches, na);
    if (rc == 0)
        rc = fill_hyps(s, na, arches);
    for (size_t h = 0; rc == 0 && h < s->nhyps; h++)
        hyp_densities(&s->hyps[h]);
    fdx__free(g);
    return rc;
}

void fdx__hyps_free(fdx_scan *s)
{
    for (size_t i = 0; i < s->nhyps; i++) {
        fdx__free(s->hyps[i].sizes);
        fdx__free(s->hyps[i].isizes);
        fdx__free(s->hyps[i].debs);
    }
    fdx__free(s->hyps);
    fdx__free(s->origin_group);
    fdx__free(s->entry_group);
    fdx__free(s->entry_arch);
    s->entry_group = NULL;
    s->entry_arch = NULL;
    s->hyps = NULL;
    s->origin_group = NULL;
    s->nhyps = 0;
}

/*
 * Per-entry tables (path length, file class), and how the lengths of the
 * catalog's paths are spread: the request side tells a path's length, and
 * the chance that a random file has a length in the allowed window scales
 * the chance of a match.
 */
int fdx__path_hist_build(fdx_scan *s)
{
    size_t n = fdx_catalog_count(s->cat);
    double sum = 0;

    s->path_max = FDX__MAX_PATH;
    s->path_cum = fdx__calloc(s->path_max + 2, sizeof(*s->path_cum));
    s->path_len = fdx__malloc((n ? n : 1) * sizeof(*s->path_len));
    s->file_class = fdx__malloc(n ? n : 1);
    if (s->path_cum == NULL || s->path_len == NULL || s->file_class == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        fdx_entry e;
        size_t l;

        fdx_catalog_entry(s->cat, i, &e);
        l = strlen(e.path);
        s->path_len[i] = (uint16_t)(l < UINT16_MAX ? l : UINT16_MAX);
        s->file_class[i] = (uint8_t)fdx__file_class(e.path);
        sum += (double)l;
        s->path_cum[(l < s->path_max ? l : s->path_max) + 1]++;
    }
    s->path_min = s->path_max;
    for (size_t l = 1; l <= s->path_max + 1; l++) {
        if (s->path_cum[l] > 0 && l - 1 < s->path_min)
            s->path_min = l - 1;
        s->path_cum[l] += s->path_cum[l - 1];
    }
    s->path_mean = n ? sum / (double)n : 0;
    return 0;
}

double fdx__path_share(const fdx_scan *s, uint32_t lo, uint32_t hi)
{
    uint64_t total = s->path_cum[s->path_max + 1];

    if (total == 0 || lo > hi)
        return 1.0;
    if (hi > s->path_max)
        hi = (uint32_t)s->path_max;
    if (lo > s->path_max)
        lo = (uint32_t)s->path_max;
    return (double)(s->path_cum[hi + 1] - s->path_cum[lo]) / (double)total;
}

double fdx__path_mean(const fdx_scan *s)
{
    return s->path_mean;
}

/* ---------------------------------------------------------------- */

/* Sums the host's evidence per hypothesis into score[]. */
static void host_scores(const fdx_scan *s, const double *lr, size_t nev,
                        double *score)
{
    for (size_t h = 0; h < s->nhyps; h++) {
        score[h] = 0;
        for (size_t i = 0; i < nev; i++)
            score[h] += lr[i * s->nhyps + h];
    }
}

/* Sets the hypotheses' scores to score[]; returns the best one. */
static size_t set_scores(fdx_scan *s, const double *score)
{
    size_t best = 0;

    for (size_t h = 0; h < s->nhyps; h++) {
        s->hyps[h].score = score[h];
        if (s->hyps[h].score > s->hyps[best].score)
            best = h;
    }
    return best;
}

/* True when evidence i of the host scored for hypothesis h. */
static int lr_positive(const fdx_scan *s, const fdx__host_in *in, size_t i,
                       size_t h)
{
    if (in->lr != NULL)
        return in->lr[i * s->nhyps + h] > 0;
    return (in->lr_pos[i * in->pos_row + h / 8] >> (h % 8)) & 1;
}

/*
 * True when some connection of the host that counts for hypothesis h
 * fitted a file of h's own architecture (a package or an index file of
 * it); files of "all" and of the whole suite say nothing of it.  Without
 * one the architecture is unknown, even when the catalog holds only one.
 */
static int arch_evidence(const fdx_scan *s, const fdx_host *host,
                         const fdx__host_in *in, size_t h)
{
    int a = (int)(h % s->narches);

    for (size_t i = 0; i < host->nevidence; i++) {
        const fdx_evidence *ev = &host->evidence[i];

        if (!lr_positive(s, in, i, h))
            continue;
        for (uint32_t k = 0; k < ev->ncand; k++)
            if (s->entry_arch[ev->cand[k]] == a &&
                s->entry_group[ev->cand[k]] == s->hyps[h].group)
                return 1;
    }
    return 0;
}

/*
 * The OS claim from the best hypothesis (its names in b) and the sums
 * against it: rel over its release group's hypotheses, total over all
 * and the null hypothesis, each exp(score - best's).  Below the least
 * for a claim out stays unset unless always (then out->known is 0).
 * Returns 1 when the architecture is likely enough to be claimed, if
 * the evidence names it (the caller's test, costlier than this).
 */
static int claim_from_sums(const fdx_os_score *b, double rel, double total,
                           int always, fdx_os_claim *out)
{
    if (rel / total < FDX__OS_MIN_P && !always)
        return 0;
    out->known = rel / total >= FDX__OS_MIN_P;
    out->family = b->family;
    out->release = b->release;
    out->codename = b->codename;
    out->confidence = rel / total;
    out->arch_confidence = 1.0 / rel;
    return out->arch_confidence >= FDX__ARCH_MIN_P;
}

static void host_os(fdx_scan *s, fdx_host *host, size_t best,
                    const fdx__host_in *in)
{
    const fdx__hyp *b = &s->hyps[best];
    const fdx_os_score names = {b->family, b->release, b->codename, b->arch,
                                b->score, 0};
    double total, rel = 0;

    if (s->nhyps == 0)
        return;
    total = exp(FDX__NULL_SCORE - b->score);
    for (size_t h = 0; h < s->nhyps; h++) {
        double p = exp(s->hyps[h].score - b->score);

        total += p;
        if (s->hyps[h].group == b->group)
            rel += p;
    }
    if (claim_from_sums(&names, rel, total, in->for_merge, &host->os) &&
        arch_evidence(s, host, in, best))
        host->os.arch = b->arch;
}

void fdx__host_os_scores(const fdx_scan *s, const fdx_host *host,
                         const fdx__host_in *in, fdx_os_score *out)
{
    for (size_t h = 0; h < s->nhyps; h++) {
        const fdx__hyp *y = &s->hyps[h];

        out[h].family = y->family;
        out[h].release = y->release;
        out[h].codename = y->codename;
        out[h].arch = y->arch;
        out[h].score = in->score[h];
        out[h].arch_evidence = arch_evidence(s, host, in, h);
    }
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int fdx__os_same_hyp(const fdx_os_score *a, const fdx_os_score *b)
{
    return same_text(a->family, b->family) &&
           same_text(a->release, b->release) &&
           same_text(a->codename, b->codename) &&
           same_text(a->arch, b->arch);
}

/*
 * host_os() on scores given as text rather than as the scan's
 * hypotheses: the same sums, the same null hypothesis and thresholds,
 * the same first-best tie rule, so that merged scores give the claim
 * one scan of all the evidence gives.  A hypothesis is the first entry
 * of its kind; later ones only add to it.
 */
void fdx_os_merge(const fdx_os_score *sc, size_t n, fdx_os_claim *out)
{
    fdx__os_merge_full(sc, n, 0, out);
}

/*
 * Entry i's hypothesis summed over every entry of it, with whether any
 * had architecture evidence; 0 when an earlier entry names the same
 * hypothesis (it was counted there).
 */
static int hyp_sum(const fdx_os_score *sc, size_t n, size_t i, double *sum,
                   int *arch_ev)
{
    for (size_t k = 0; k < i; k++)
        if (fdx__os_same_hyp(&sc[k], &sc[i]))
            return 0;
    *sum = 0;
    *arch_ev = 0;
    for (size_t j = i; j < n; j++)
        if (fdx__os_same_hyp(&sc[i], &sc[j])) {
            *sum += sc[j].score;
            *arch_ev |= sc[j].arch_evidence != 0;
        }
    return 1;
}

void fdx__os_merge_full(const fdx_os_score *sc, size_t n, int always,
                        fdx_os_claim *out)
{
    double top = 0, total, rel = 0, sum;
    size_t best = n;
    int arch_ev = 0, ev;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        if (hyp_sum(sc, n, i, &sum, &ev) && (best == n || sum > top)) {
            best = i;
            top = sum;
            arch_ev = ev;
        }
    if (best == n)
        return;
    total = exp(FDX__NULL_SCORE - top);
    for (size_t i = 0; i < n; i++) {
        if (!hyp_sum(sc, n, i, &sum, &ev))
            continue;
        total += exp(sum - top);
        if (same_text(sc[i].family, sc[best].family) &&
            same_text(sc[i].release, sc[best].release))
            rel += exp(sum - top);
    }
    if (claim_from_sums(&sc[best], rel, total, always, out) && arch_ev)
        out->arch = sc[best].arch;
}

/* The one candidate a host of hypothesis h could have fetched, if one. */
static int resolve(const fdx_scan *s, const fdx_evidence *ev, size_t h,
                   int any_arch, uint32_t *entry)
{
    int found = 0;
    fdx_entry first, e;

    if (ev->ncand_total > ev->ncand)
        return 0;
    for (uint32_t k = 0; k < ev->ncand; k++) {
        fdx_catalog_entry(s->cat, ev->cand[k], &e);
        if (any_arch ? s->entry_group[ev->cand[k]] != s->hyps[h].group
                     : !fdx__entry_in_hyp(s, ev->cand[k], h))
            continue;
        if (!found) {
            first = e;
            *entry = ev->cand[k];
            found = 1;
        } else if (strcmp(first.package, e.package) != 0 ||
                   strcmp(first.version, e.version) != 0 ||
                   strcmp(first.arch, e.arch) != 0) {
            return 0;
        }
    }
    return found;
}

/*
 * The same file fetched twice is one claim, backed by its more confident
 * piece of evidence.  Returns 1 when entry was claimed already.
 */
static int claimed_again(fdx_host *host, uint32_t entry, double conf,
                         size_t ev)
{
    for (size_t k = 0; k < host->npackages; k++) {
        fdx_package_claim *pc = &host->packages[k];

        if (pc->entry != entry)
            continue;
        if (conf > pc->confidence) {
            pc->confidence = conf;
            pc->evidence = (uint32_t)ev;
        }
        return 1;
    }
    return 0;
}

/*
 * A keep-alive connection of two files over HTTP: their sizes, each with
 * its own header, add up to the response bytes, and their paths' lengths,
 * each with the request constant, to the request bytes.  Every package of
 * the host's kind is tried as one of them and the other looked up by size
 * and path length; the pair is claimed when exactly one fits, with the
 * chance of a pair fitting by accident counted against it.  The search
 * runs through the whole catalog, so at most FDX__PAIR_MAX connections of
 * a scan are tried.
 */
#define FDX__PAIR_MAX 32
#define FDX__PAIR_TOL 2
/*
 * A connection that looks like two requests is as often one download that
 * lost segments (the duplicate ACKs' SACK options lengthen the request
 * side, the retransmissions the response), which the pair search cannot
 * tell apart; a pair is claimed only when an accidental fit is unlikely.
 */
#define FDX__PAIR_MAX_CHANCE 0.1

typedef struct pair {
    uint32_t a, b;
    int found;
    double chance;
} pair;

static void pair_try(const fdx_scan *s, size_t best, size_t a, int64_t rest,
                     int64_t lb, pair *pr)
{
    int k0, k1;

    fdx__digit_range(rest, &k0, &k1);
    for (int k = k0; k <= k1 && pr->found < 2; k++) {
        int64_t sb = rest - k;
        size_t first, n;

        if (sb <= 0 || fdx__digits((uint64_t)sb) != k)
            continue;
        pr->chance += fdx__hyp_expected(&s->hyps[best],
                                        (uint64_t)(sb - FDX__PAIR_TOL),
                                        (uint64_t)(sb + FDX__PAIR_TOL), 0) *
                      fdx__path_share(s, (uint32_t)(lb > FDX__PAIR_TOL
                                                        ? lb - FDX__PAIR_TOL
                                                        : 1),
                                      (uint32_t)(lb + FDX__PAIR_TOL)) / 2;
        n = fdx_catalog_range(s->cat, (uint64_t)(sb - FDX__PAIR_TOL),
                              (uint64_t)(sb + FDX__PAIR_TOL), &first);
        for (size_t b = first; b < first + n; b++) {
            int64_t l = (int64_t)fdx__entry_path_len(s, b);

            if (b <= a || fdx__entry_class(s, b) != FDX__CLASS_DEB ||
                !fdx__entry_in_hyp(s, b, best) ||
                l < lb - FDX__PAIR_TOL || l > lb + FDX__PAIR_TOL)
                continue;
            pr->a = (uint32_t)a;
            pr->b = (uint32_t)b;
            pr->found++;
        }
    }
}

/*
 * Hypothesis best's .deb entries, in catalog order, listed once: every
 * pair search would otherwise walk the whole catalog to find them.
 * Returns NULL when out of memory; the search then walks the catalog.
 */
static const uint32_t *hyp_debs(fdx_scan *s, size_t best, size_t *n)
{
    fdx__hyp *h = &s->hyps[best];
    size_t nc = fdx_catalog_count(s->cat), m = 0;
    uint32_t *debs;

    if (h->debs == NULL) {
        h->debs = fdx__malloc((nc ? nc : 1) * sizeof(*h->debs));
        if (h->debs == NULL)
            return NULL;
        for (size_t a = 0; a < nc; a++)
            if (fdx__entry_class(s, a) == FDX__CLASS_DEB &&
                fdx__entry_in_hyp(s, a, best))
                h->debs[m++] = (uint32_t)a;
        h->ndebs = m;
        debs = fdx__realloc(h->debs, (m ? m : 1) * sizeof(*debs));
        if (debs != NULL)
            h->debs = debs;
    }
    *n = h->ndebs;
    return h->debs;
}

/* Each .deb of best at most half of size_sum, smallest first, tried as
 * the smaller file of the pair.  The walk stops once the chance of an
 * accidental fit passes FDX__PAIR_MAX_CHANCE: it only grows, and past
 * that no pair is claimed whatever the walk would still find. */
static void pair_walk(fdx_scan *s, size_t best, int64_t size_sum,
                      int64_t len_sum, pair *pr)
{
    size_t nd = 0, n = fdx_catalog_count(s->cat);
    const uint32_t *debs = hyp_debs(s, best, &nd);

    for (size_t i = 0; i < (debs ? nd : n) && pr->found < 2 &&
                       pr->chance <= FDX__PAIR_MAX_CHANCE; i++) {
        size_t a = debs ? debs[i] : i;
        int64_t sa = (int64_t)fdx_catalog_size(s->cat, a);

        if (2 * sa > size_sum)
            break;
        if (debs == NULL && (fdx__entry_class(s, a) != FDX__CLASS_DEB ||
                             !fdx__entry_in_hyp(s, a, best)))
            continue;
        pair_try(s, best, a, size_sum - sa - fdx__digits((uint64_t)sa),
                 len_sum - (int64_t)fdx__entry_path_len(s, a), pr);
    }
}

static int pair_search(fdx_scan *s, const fdx__conn *c, size_t best,
                       pair *pr)
{
    const fdx__server *sv = fdx__server_find(s, &c->server, c->sport);
    int hdr = fdx__hdr_octets(fdx_addr_is_v4(&c->server), 0);
    int64_t q, p, len_sum, size_sum;

    memset(pr, 0, sizeof(*pr));
    if (sv == NULL || sv->tls || sv->req.n == 0 ||
        sv->base[0][FDX__CLASS_DEB].n == 0 ||
        !fdx__request_octets(c, hdr, &q) ||
        c->s2c_octets <= c->s2c_packets * (uint64_t)hdr)
        return 0;
    p = (int64_t)(c->s2c_octets - c->s2c_packets * (uint64_t)hdr);
    len_sum = q - 2 * (int64_t)sv->req.d[0];
    size_sum = p - 2 * (int64_t)sv->base[0][FDX__CLASS_DEB].d[0];
    /* the smaller file of the pair is at most half of both */
    pair_walk(s, best, size_sum, len_sum, pr);
    return pr->found == 1;
}

static void claim(fdx_host *host, uint32_t entry, double conf, size_t ev);

/*
 * pair_search(), or what it found the last time for the same hypothesis
 * and server constants when m (the evidence's memo) holds it: a host is
 * recomputed at every round it gets new evidence, and a search walks
 * every package of the release.
 */
static int pair_remembered(fdx_scan *s, const fdx__server *sv,
                           const fdx__conn *c, size_t best,
                           fdx__pair_memo *m, pair *pr)
{
    int32_t base = sv->base[0][FDX__CLASS_DEB].n
                       ? sv->base[0][FDX__CLASS_DEB].d[0] : 0;
    int32_t req = sv->req.n ? sv->req.d[0] : 0;

    if (m == NULL)
        return pair_search(s, c, best, pr);
    if (m->hyp1 != best + 1 || m->base != base || m->req != req) {
        m->found = (uint8_t)pair_search(s, c, best, pr);
        m->hyp1 = (uint32_t)best + 1;
        m->base = base;
        m->req = req;
        m->a = pr->a;
        m->b = pr->b;
        m->chance = pr->chance;
    }
    memset(pr, 0, sizeof(*pr));
    pr->a = m->a;
    pr->b = m->b;
    pr->chance = m->chance;
    pr->found = m->found;
    return m->found;
}

/*
 * Evidence that fits no single file, or was counted as two files, is
 * tried as a pair; when one pair alone fits, the evidence becomes a
 * two-file connection and both packages are claimed.
 */
static void pair_claims(fdx_scan *s, fdx_host *host, size_t best, size_t i,
                        const fdx__host_in *in)
{
    fdx_evidence *ev = &host->evidence[i];
    const fdx__conn *c = in->conn[i];
    const fdx__server *sv = fdx__server_find(s, &c->server, c->sport);
    pair pr;
    double conf;

    if (sv == NULL || s->pair_searches >= FDX__PAIR_MAX)
        return;
    if (!(ev->kind == FDX_EV_MULTI && ev->est_files == 2) &&
        !(ev->kind == FDX_EV_UNMATCHED && fdx__two_requests(s, sv, c)))
        return;
    s->pair_searches++;
    if (!pair_remembered(s, sv, c, best, in->memo ? &in->memo[i] : NULL,
                         &pr) ||
        pr.chance > FDX__PAIR_MAX_CHANCE)
        return;
    conf = host->os.confidence / (1.0 + pr.chance);
    if (conf < FDX__PKG_MIN_CONF && !in->for_merge)
        return;
    ev->kind = FDX_EV_MULTI;
    ev->est_files = 2;
    claim(host, pr.a, conf, i);
    claim(host, pr.b, conf, i);
}

static void claim(fdx_host *host, uint32_t entry, double conf, size_t ev)
{
    if (claimed_again(host, entry, conf, ev))
        return;
    host->packages[host->npackages].entry = entry;
    host->packages[host->npackages].confidence = conf;
    host->packages[host->npackages].evidence = (uint32_t)ev;
    host->npackages++;
}

static int host_packages(fdx_scan *s, fdx_host *host, size_t best,
                         const fdx__host_in *in)
{
    const fdx__hyp *h = &s->hyps[best];

    /* a keep-alive pair claims two packages from one connection */
    host->packages = fdx__calloc(host->nevidence ? 2 * host->nevidence : 1,
                                 sizeof(*host->packages));
    if (host->packages == NULL)
        return FDX_ENOMEM;
    if (!host->os.known && !(in->for_merge && host->os.family != NULL))
        return 0;
    for (size_t i = 0; i < host->nevidence; i++) {
        const fdx_evidence *ev = &host->evidence[i];
        uint32_t entry = 0;
        double e, conf;
        fdx_entry fe;

        if (host->os.arch != NULL)
            pair_claims(s, host, best, i, in);
        if (ev->kind != FDX_EV_FILE && ev->kind != FDX_EV_AMBIGUOUS)
            continue;
        if (!resolve(s, ev, best, host->os.arch == NULL, &entry))
            continue;
        fdx_catalog_entry(s->cat, entry, &fe);
        if (fe.kind != FDX_KIND_PACKAGE)
            continue;
        /* chance that another file of this kind fits as well */
        if (ev->transport == FDX_TR_TLS)
            e = fdx__hyp_expected(h, ev->win_lo, ev->win_hi, 0);
        else
            e = fdx__hyp_expected(h, fe.size - FDX__HTTP_TOL,
                                  fe.size + FDX__HTTP_TOL, 0);
        if (ev->path_hi != 0)
            e *= fdx__path_share(s, ev->path_lo, ev->path_hi);
        conf = host->os.confidence / (1.0 + e);
        if (conf >= FDX__PKG_MIN_CONF || in->for_merge)
            claim(host, entry, conf, i);
    }
    return 0;
}

static int host_push(fdx_scan *s, size_t *cap, const fdx_addr *a)
{
    if (fdx__grow(&s->hosts, cap, s->nhosts, sizeof(*s->hosts)) < 0)
        return FDX_ENOMEM;
    memset(&s->hosts[s->nhosts], 0, sizeof(s->hosts[0]));
    s->hosts[s->nhosts].addr = *a;
    s->nhosts++;
    return 0;
}

static int host_cmp(const void *a, const void *b)
{
    return fdx_addr_cmp(&((const fdx_host *)a)->addr,
                        &((const fdx_host *)b)->addr);
}

int fdx__host_claims(fdx_scan *s, fdx_host *host, const fdx__host_in *in)
{
    size_t best = set_scores(s, in->score);

    memset(&host->os, 0, sizeof(host->os));
    host->packages = NULL;
    host->npackages = 0;
    host_os(s, host, best, in);
    return host_packages(s, host, best, in);
}

size_t fdx_scan_hyp_count(const fdx_scan *s)
{
    return s->nhyps;
}

size_t fdx_scan_host_scores(const fdx_scan *s, size_t i, fdx_os_score *out)
{
    const fdx_host *host;
    fdx__host_in in;
    double *score;
    size_t first;

    if (i >= s->nhosts || s->nhyps == 0 || s->lr == NULL)
        return 0;
    host = &s->hosts[i];
    first = (size_t)(host->evidence - s->ev);
    if ((score = fdx__calloc(s->nhyps, sizeof(*score))) == NULL)
        return 0;
    host_scores(s, &s->lr[first * s->nhyps], host->nevidence, score);
    memset(&in, 0, sizeof(in));
    in.score = score;
    in.lr = &s->lr[first * s->nhyps];
    fdx__host_os_scores(s, host, &in, out);
    fdx__free(score);
    return s->nhyps;
}

/*
 * Evidence is grouped by client (scan.c), so each host is one run of it;
 * hosts are then put in address order.  fdx_host.evidence points into
 * s->ev.
 */
int fdx__infer_hosts(fdx_scan *s)
{
    size_t cap = 0;
    double *score = fdx__calloc(s->nhyps ? s->nhyps : 1, sizeof(*score));
    int rc = score != NULL ? 0 : FDX_ENOMEM;

    for (size_t i = 0; i < s->nev && rc == 0;) {
        const fdx_addr *a = &s->ev_conn[i]->client;
        size_t j = i + 1;
        fdx_host *host;
        fdx__host_in in;

        while (j < s->nev &&
               fdx__addr_order(&s->ev_conn[j]->client, a) == 0)
            j++;
        if ((rc = host_push(s, &cap, a)) < 0)
            break;
        host = &s->hosts[s->nhosts - 1];
        host->evidence = &s->ev[i];
        host->nevidence = j - i;
        for (size_t k = i; k < j; k++)
            host->sampled_flows += s->ev[k].kind == FDX_EV_SAMPLED;
        host_scores(s, &s->lr[i * s->nhyps], j - i, score);
        in.score = score;
        in.lr = &s->lr[i * s->nhyps];
        in.lr_pos = NULL;
        in.pos_row = 0;
        in.for_merge = 0;
        in.memo = NULL;
        in.conn = &s->ev_conn[i];
        rc = fdx__host_claims(s, host, &in);
        i = j;
    }
    fdx__free(score);
    if (rc == 0 && s->nhosts > 1)
        qsort(s->hosts, s->nhosts, sizeof(*s->hosts), host_cmp);
    return rc;
}
