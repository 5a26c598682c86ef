/*
 * The store front end: picks the backend from the URI, runs each batch
 * of hosts in one transaction, and turns scan results into resolved
 * records (catalog indexes to strings) that the backends and the tools'
 * writers share.
 */
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scan_int.h"
#include "store_int.h"

struct fdx__pool {
    struct fdx__pool *next;
    alignas(max_align_t) unsigned char data[];
};

void *fdx__pool_alloc(fdx_store_host *h, size_t n)
{
    struct fdx__pool *p;

    if (n > SIZE_MAX - sizeof(*p))
        return NULL;
    p = fdx__calloc(1, sizeof(*p) + n);
    if (p == NULL)
        return NULL;
    p->next = h->pool;
    h->pool = p;
    return p->data;
}

const char *fdx__pool_strdup(fdx_store_host *h, const char *s, int *failed)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = fdx__pool_alloc(h, n);
    if (d == NULL) {
        *failed = 1;
        return NULL;
    }
    memcpy(d, s, n);
    return d;
}

void fdx_store_host_free(fdx_store_host *h)
{
    if (h == NULL)
        return;
    while (h->pool != NULL) {
        struct fdx__pool *next = h->pool->next;

        fdx__free(h->pool);
        h->pool = next;
    }
    memset(h, 0, sizeof(*h));
}

static void resolve_file(const fdx_catalog *cat, uint32_t i,
                         fdx_store_file *f)
{
    fdx_entry e;
    fdx_origin o;

    fdx_catalog_entry(cat, i, &e);
    fdx_catalog_origin(cat, e.origin, &o);
    f->name = e.kind == FDX_KIND_PACKAGE ? e.package : e.path;
    f->version = e.version;
    f->arch = e.arch;
    f->suite = o.codename;
    f->path = e.path;
    f->size = e.size;
}

static int resolve_evidence(const fdx_catalog *cat, const fdx_evidence *ev,
                            fdx_store_host *out, fdx_store_evidence *r)
{
    r->first_ms = ev->first_ms;
    r->last_ms = ev->last_ms;
    r->server = ev->server;
    r->server_port = ev->server_port;
    r->client_port = ev->client_port;
    r->octets = ev->octets;
    r->packets = ev->packets;
    r->req_octets = ev->req_octets;
    r->req_packets = ev->req_packets;
    r->records = ev->records;
    r->kind = ev->kind;
    r->transport = ev->transport;
    r->est_files = ev->est_files;
    r->win_lo = ev->win_lo;
    r->win_hi = ev->win_hi;
    r->path_lo = ev->path_lo;
    r->path_hi = ev->path_hi;
    r->ncand_total = ev->ncand_total;
    r->ncand = ev->ncand < FDX_MAX_CANDIDATES ? ev->ncand
                                              : FDX_MAX_CANDIDATES;
    if (r->ncand == 0)
        return 0;
    r->cand = fdx__pool_alloc(out, r->ncand * sizeof(*r->cand));
    if (r->cand == NULL)
        return FDX_ENOMEM;
    for (uint32_t k = 0; k < r->ncand; k++)
        resolve_file(cat, ev->cand[k], &r->cand[k]);
    return 0;
}

static void resolve_os(const fdx_os_claim *os, fdx_store_os *r)
{
    r->known = os->known;
    if (!os->known)
        return;
    r->family = os->family;
    r->release = os->release;
    r->codename = os->codename;
    r->arch = os->arch;
    r->confidence = os->confidence;
    r->arch_confidence = os->arch_confidence;
}

static int resolve_packages(const fdx_catalog *cat, const fdx_host *h,
                            fdx_store_host *out)
{
    if (h->npackages == 0)
        return 0;
    out->packages = fdx__pool_alloc(out,
                                    h->npackages * sizeof(*out->packages));
    if (out->packages == NULL)
        return FDX_ENOMEM;
    out->npackages = h->npackages;
    for (size_t i = 0; i < h->npackages; i++) {
        const fdx_package_claim *pc = &h->packages[i];
        fdx_store_package *p = &out->packages[i];

        resolve_file(cat, pc->entry, &p->file);
        p->confidence = pc->confidence;
        p->evidence = -1;
        if (pc->evidence < h->nevidence) {
            const fdx_evidence *ev = &h->evidence[pc->evidence];

            p->time_ms = p->first_seen_ms = ev->first_ms;
            p->last_seen_ms = ev->last_ms;
            p->evidence = (int64_t)pc->evidence;
            out->evidence[pc->evidence].claimed = 1;
        }
    }
    return 0;
}

int fdx_store_host_resolve(const fdx_catalog *cat, const fdx_host *h,
                           fdx_store_host *out)
{
    int rc = FDX_ENOMEM;

    memset(out, 0, sizeof(*out));
    out->addr = h->addr;
    out->sampled_flows = h->sampled_flows;
    out->scores = h->scores;
    out->nscores = h->nscores;
    resolve_os(&h->os, &out->os);
    if (h->nevidence > 0) {
        out->evidence = fdx__pool_alloc(out,
                                        h->nevidence * sizeof(*out->evidence));
        if (out->evidence == NULL)
            goto fail;
        out->nevidence = h->nevidence;
    }
    for (size_t i = 0; i < h->nevidence; i++) {
        const fdx_evidence *ev = &h->evidence[i];

        if ((rc = resolve_evidence(cat, ev, out, &out->evidence[i])) < 0)
            goto fail;
        if (i == 0 || ev->first_ms < out->first_seen_ms)
            out->first_seen_ms = ev->first_ms;
        if (ev->last_ms > out->last_seen_ms)
            out->last_seen_ms = ev->last_ms;
    }
    if ((rc = resolve_packages(cat, h, out)) < 0)
        goto fail;
    return 0;
fail:
    fdx_store_host_free(out);
    return rc;
}

/* The URI schemes and their backends. */
static const struct {
    const char *scheme;
    const fdx__store_ops *ops;
} backends[] = {
    {"sqlite", &fdx__store_sqlite},
#ifdef FDX_HAVE_POSTGRESQL
    {"postgresql", &fdx__store_postgresql},
    {"postgres", &fdx__store_postgresql},
#endif
};

/* The backend for uri and what it is given (after "scheme:"). */
static const fdx__store_ops *find_backend(const char *uri,
                                          const char **target)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t n = strlen(backends[i].scheme);

        if (strncmp(uri, backends[i].scheme, n) == 0 && uri[n] == ':') {
            *target = uri + n + 1;
            return backends[i].ops;
        }
    }
    return NULL;
}

static int open_error(const char *uri, fdx_error *err)
{
    if (strncmp(uri, "postgresql://", 13) == 0 ||
        strncmp(uri, "postgres://", 11) == 0)
        return fdx_error_set(err, FDX_EUNSUPPORTED,
                             "%s: PostgreSQL stores are not supported by "
                             "this build", uri);
    return fdx_error_set(err, FDX_EUSAGE,
                         "%s: unknown store; expected sqlite:PATH%s", uri,
#ifdef FDX_HAVE_POSTGRESQL
                         " or postgresql://..."
#else
                         ""
#endif
                         );
}

int fdx_store_open(const char *uri, const fdx_store_opts *opts,
                   fdx_store **out, fdx_error *err)
{
    const char *target = NULL;
    const fdx__store_ops *ops = find_backend(uri, &target);
    fdx_store *st;
    int rc;

    *out = NULL;
    if (ops == NULL)
        return open_error(uri, err);
    st = fdx__calloc(1, sizeof(*st));
    if (st == NULL || (st->uri = fdx__strdup(uri)) == NULL) {
        fdx__free(st);
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", uri);
    }
    st->ops = ops;
    if (opts != NULL)
        st->opts = *opts;
    if (st->opts.busy_timeout_ms == 0)
        st->opts.busy_timeout_ms = 5000;
    if ((rc = ops->open(st, target, err)) < 0) {
        fdx__free(st->uri);
        fdx__free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void fdx_store_close(fdx_store *st)
{
    if (st == NULL)
        return;
    st->ops->close(st);
    fdx_store_rebase(st);
    fdx__free(st->ev_seen);
    fdx__free(st->ev_pend);
    fdx__free(st->uri);
    fdx__free(st);
}

const char *fdx_store_uri(const fdx_store *st)
{
    return st->uri;
}

int fdx_store_schema_version(const fdx_store *st)
{
    return st->schema_version;
}

/* ---------------------------------------------------------------- */

/*
 * A collector hands over a host with all the evidence it still holds
 * each time the host gets more, so most of a batch's evidence rows are
 * in the store already.  The handle remembers the fingerprints of the
 * rows it committed and writes such a row again only when a package
 * claim needs its id.  A row pruned since is not brought back.  The set
 * is bounded: when full it starts afresh (the rows are then written
 * once more, which changes nothing).
 */
#define EV_SEEN_MAX ((size_t)1 << 22)   /* slots: 32 MiB */
#define EV_PEND_MAX ((size_t)1 << 20)

static uint64_t text_hash(uint64_t k, const char *s)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */

    for (; s != NULL && *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return fdx__mix64(k, h);
}

/* The connection and its match: a connection matched again (its
 * server's model changed) has another key, and its row is rewritten. */
static uint64_t ev_key(const fdx_addr *host, const fdx_store_evidence *ev)
{
    uint64_t k = fdx__mix64(fdx__be64(host->b), fdx__be64(host->b + 8));

    k = fdx__mix64(k, fdx__be64(ev->server.b));
    k = fdx__mix64(k, fdx__be64(ev->server.b + 8));
    k = fdx__mix64(k, ((uint64_t)ev->server_port << 16) | ev->client_port);
    k = fdx__mix64(k, ev->first_ms);
    k = fdx__mix64(k, ((uint64_t)ev->kind << 56) |
                          ((uint64_t)ev->transport << 48) |
                          ((uint64_t)ev->est_files << 40) |
                          ((uint64_t)ev->path_lo << 16) | ev->path_hi);
    k = fdx__mix64(k, ev->win_lo);
    k = fdx__mix64(k, ev->win_hi);
    k = fdx__mix64(k, ((uint64_t)ev->ncand << 32) | ev->ncand_total);
    for (uint32_t i = 0; i < ev->ncand; i++)
        k = text_hash(fdx__mix64(k, ev->cand[i].size), ev->cand[i].path);
    return k ? k : 1;
}

static int ev_seen_has(const fdx_store *st, uint64_t k)
{
    if (st->ev_cap == 0)
        return 0;
    for (size_t i = k & (st->ev_cap - 1);; i = (i + 1) & (st->ev_cap - 1)) {
        if (st->ev_seen[i] == k)
            return 1;
        if (st->ev_seen[i] == 0)
            return 0;
    }
}

static void ev_seen_put(fdx_store *st, uint64_t k)
{
    size_t i = k & (st->ev_cap - 1);

    while (st->ev_seen[i] != 0 && st->ev_seen[i] != k)
        i = (i + 1) & (st->ev_cap - 1);
    if (st->ev_seen[i] == 0) {
        st->ev_seen[i] = k;
        st->ev_n++;
    }
}

/* Room for n more at most half full; forgets all at the bound. */
static int ev_seen_room(fdx_store *st, size_t n)
{
    size_t cap = st->ev_cap ? st->ev_cap : 4096;
    uint64_t *old = st->ev_seen, *nv;
    size_t ocap = st->ev_cap;

    while (cap < EV_SEEN_MAX && 2 * (st->ev_n + n) > cap)
        cap *= 2;
    if (2 * (st->ev_n + n) > cap) {     /* at the bound: start afresh */
        memset(st->ev_seen, 0, st->ev_cap * sizeof(*st->ev_seen));
        st->ev_n = 0;
        return 2 * n <= st->ev_cap ? 0 : -1;
    }
    if (cap == ocap)
        return 0;
    if ((nv = fdx__calloc(cap, sizeof(*nv))) == NULL)
        return -1;
    st->ev_seen = nv;
    st->ev_cap = cap;
    st->ev_n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != 0)
            ev_seen_put(st, old[i]);
    fdx__free(old);
    return 0;
}

/* The batch committed: its rows join the set. */
static void ev_batch_done(fdx_store *st, int committed)
{
    if (committed && st->ev_npend > 0 &&
        ev_seen_room(st, st->ev_npend) == 0)
        for (size_t i = 0; i < st->ev_npend; i++)
            ev_seen_put(st, st->ev_pend[i]);
    st->ev_npend = 0;
}

static void ev_pend_add(fdx_store *st, uint64_t k)
{
    if (st->ev_npend >= EV_PEND_MAX ||
        fdx__grow(&st->ev_pend, &st->ev_pcap, st->ev_npend,
                  sizeof(*st->ev_pend)) < 0)
        return;                /* only costs a rewrite later */
    st->ev_pend[st->ev_npend++] = k;
}

/* Where a batch's hosts come from: an array or a scan. */
typedef const fdx_host *(*host_at_fn)(const void *src, size_t i);

static const fdx_host *array_at(const void *src, size_t i)
{
    return (const fdx_host *)src + i;
}

static const fdx_host *scan_at(const void *src, size_t i)
{
    return fdx_scan_host(src, i);
}

/* A scan's host i with its scores in sc (room for every hypothesis). */
static const fdx_host *scan_scored_at(const fdx_scan *scan, size_t i,
                                      fdx_os_score *sc, fdx_host *tmp)
{
    *tmp = *fdx_scan_host(scan, i);
    tmp->nscores = fdx_scan_host_scores(scan, i, sc);
    tmp->scores = tmp->nscores > 0 ? sc : NULL;
    return tmp;
}

/* ---------------------------------------------------------------- */

/*
 * A host that several collectors see.  Each collector keeps its own OS
 * scores of the host in the store, one text per collector: a line per
 * hypothesis, "family TAB release TAB codename TAB arch TAB score TAB
 * arch_evidence".  The host's claim is made from the sum of all of them
 * (fdx_os_merge()), as one collector seeing every connection would make
 * it; a collector's package claims count only when its own evidence
 * named the same release, their confidence scaled to the merged one,
 * and the least confidence for a claim applied to that (a collector's
 * stream hands over claims under its best hypothesis even when its own
 * evidence is too little for an OS claim: fdx_stream_opts.for_merge).
 */
typedef struct merge {
    char **texts;              /* the other collectors' score texts */
    size_t ntexts, cap;
    char *own_old;             /* this collector's, as the store has it */
    char *old_claims;          /* a copy of it, split into m->claims */
    fdx_os_score *eff;         /* this collector's scores with its base */
    struct claim *claims;      /* every collector's package claims */
    size_t nclaims, ccap;
    fdx_os_score *all;         /* this collector's scores, then theirs */
    size_t nall;
    fdx_store_package *packages;
    char *own;                 /* this collector's text */
} merge;

static void merge_free(merge *m)
{
    for (size_t i = 0; i < m->ntexts; i++)
        fdx__free(m->texts[i]);
    fdx__free(m->texts);
    fdx__free(m->all);
    fdx__free(m->packages);
    fdx__free(m->own);
    fdx__free(m->own_old);
    fdx__free(m->old_claims);
    fdx__free(m->eff);
    fdx__free(m->claims);
    memset(m, 0, sizeof(*m));
}

static int merge_keep_text(void *ud, const char *text, int own)
{
    merge *m = ud;
    char *cp;

    if (own) {
        fdx__free(m->own_old);
        return (m->own_old = fdx__strdup(text)) != NULL ? 0 : FDX_ENOMEM;
    }
    if (fdx__grow(&m->texts, &m->cap, m->ntexts, sizeof(*m->texts)) < 0 ||
        (cp = fdx__strdup(text)) == NULL)
        return FDX_ENOMEM;
    m->texts[m->ntexts++] = cp;
    return 0;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* The text of n scores; NULL when out of memory.  A field holding a tab
 * or a newline (no catalog has one) would be read back wrong, so such a
 * hypothesis is left out. */
static char *scores_text(const fdx_os_score *sc, size_t n)
{
    size_t cap = 1, len = 0;
    char *buf;

    for (size_t i = 0; i < n; i++)
        cap += strlen(or_empty(sc[i].family)) +
               strlen(or_empty(sc[i].release)) +
               strlen(or_empty(sc[i].codename)) +
               strlen(or_empty(sc[i].arch)) + 40;
    if ((buf = fdx__malloc(cap)) == NULL)
        return NULL;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *f[4] = {or_empty(sc[i].family), or_empty(sc[i].release),
                            or_empty(sc[i].codename), or_empty(sc[i].arch)};
        int plain = isfinite(sc[i].score);

        for (int k = 0; k < 4; k++)
            plain = plain && strpbrk(f[k], "\t\n") == NULL;
        if (plain)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "%s\t%s\t%s\t%s\t%.17g\t%d\n", f[0],
                                    f[1], f[2], f[3], sc[i].score,
                                    sc[i].arch_evidence ? 1 : 0);
    }
    return buf;
}

/* Splits one line of a score text in place; 0, or -1 when malformed. */
static int score_line(char *line, fdx_os_score *out)
{
    char *f[6], *end;

    for (int k = 0; k < 6; k++) {
        f[k] = line;
        line = strchr(line, k < 5 ? '\t' : '\0');
        if (line == NULL)
            return -1;
        if (k < 5)
            *line++ = '\0';
    }
    out->family = f[0];
    out->release = f[1];
    out->codename = f[2];
    out->arch = f[3];
    out->score = strtod(f[4], &end);
    out->arch_evidence = f[5][0] == '1';
    for (int k = 0; k < 4; k++)
        if (f[k][0] == '\0')
            return -1;
    /* a host's sum stays far below this: each connection counts at most
     * a few units, and a collector keeps a few thousand per host */
    return end != f[4] && *end == '\0' && fabs(out->score) <= 1e9 ? 0 : -1;
}

/*
 * A package claim as a collector made it, under its own best
 * hypothesis (family, release), with fit: its confidence over the
 * collector's confidence in that hypothesis.  A merge judges every
 * collector's claims again, at the merged confidence: a claim too weak
 * when its collector wrote may count once others have raised the
 * host's confidence.  In the text, after the scores, a line
 * "P TAB family TAB release TAB name TAB version TAB arch TAB suite TAB
 * path TAB size TAB fit TAB time_ms TAB first_seen_ms TAB last_seen_ms".
 */
struct claim {
    const char *family, *release;
    fdx_store_package p;
    double fit;
};

#define CLAIM_FIELDS 13

static uint64_t field_u64(const char *s, int *bad)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    *bad |= end == s || *end != '\0' || s[0] == '-';
    return (uint64_t)v;
}

/* Splits one claim line in place; 0, or -1 when malformed. */
static int claim_line(char *line, struct claim *c)
{
    char *f[CLAIM_FIELDS], *end;
    int bad = 0;

    for (int k = 0; k < CLAIM_FIELDS; k++) {
        f[k] = line;
        line = strchr(line, k < CLAIM_FIELDS - 1 ? '\t' : '\0');
        if (line == NULL)
            return -1;
        if (k < CLAIM_FIELDS - 1)
            *line++ = '\0';
        if (f[k][0] == '\0')
            return -1;
    }
    memset(c, 0, sizeof(*c));
    c->family = f[1];
    c->release = f[2];
    c->p.file.name = f[3];
    c->p.file.version = f[4];
    c->p.file.arch = f[5];
    c->p.file.suite = f[6];
    c->p.file.path = f[7];
    c->p.file.size = field_u64(f[8], &bad);
    c->fit = strtod(f[9], &end);
    bad |= end == f[9] || *end != '\0' || !(c->fit > 0 && c->fit <= 1);
    c->p.time_ms = field_u64(f[10], &bad);
    c->p.first_seen_ms = field_u64(f[11], &bad);
    c->p.last_seen_ms = field_u64(f[12], &bad);
    c->p.evidence = -1;
    return bad ? -1 : 0;
}

static int claim_add(merge *m, const struct claim *c)
{
    if (fdx__grow(&m->claims, &m->ccap, m->nclaims, sizeof(*m->claims)) < 0)
        return FDX_ENOMEM;
    m->claims[m->nclaims++] = *c;
    return 0;
}

static int parse_text(merge *m, size_t *cap, char *text, int claims_only);

static int parse_scores(merge *m, size_t *cap, char *text)
{
    return parse_text(m, cap, text, 0);
}

/* Score lines read of one collector's text: more than any catalog has
 * hypotheses, few enough that the merge's pairwise sums stay cheap.
 * Claim lines: as many as a collector keeps per host. */
#define SCORE_LINES_MAX 1024
#define CLAIMS_KEPT_MAX 1024

/* Appends the scores of text (modified in place) to m->all and its
 * claims to m->claims; a line that does not parse is skipped, and so
 * is what follows the first SCORE_LINES_MAX + CLAIMS_KEPT_MAX lines. */
static int parse_text(merge *m, size_t *cap, char *text, int claims_only)
{
    size_t lines = 0;

    for (char *line = text; *line != '\0' &&
                            lines++ < SCORE_LINES_MAX + CLAIMS_KEPT_MAX;) {
        char *nl = strchr(line, '\n');

        if (nl != NULL)
            *nl = '\0';
        if (line[0] == 'P' && line[1] == '\t') {
            struct claim c;

            if (claim_line(line, &c) == 0 && claim_add(m, &c) < 0)
                return FDX_ENOMEM;
        } else if (!claims_only && lines <= SCORE_LINES_MAX) {
            if (fdx__grow(&m->all, cap, m->nall, sizeof(*m->all)) < 0)
                return FDX_ENOMEM;
            if (score_line(line, &m->all[m->nall]) == 0)
                m->nall++;
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return 0;
}

static int claim_same(const struct claim *a, const struct claim *b)
{
    return strcmp(a->p.file.name, b->p.file.name) == 0 &&
           strcmp(a->p.file.arch, b->p.file.arch) == 0;
}

/* This write's own claims into m->claims (first, so that they win over
 * older copies): h's packages under the collector's own best
 * hypothesis, whose confidence its engine's scores give again. */
static int own_claims(merge *m, const fdx_store_host *h)
{
    fdx_os_claim own;

    fdx__os_merge_full(h->scores, h->nscores, 1, &own);
    if (own.family == NULL || !(own.confidence > 0))
        return 0;
    for (size_t i = 0; i < h->npackages; i++) {
        struct claim c;

        memset(&c, 0, sizeof(c));
        c.family = own.family;
        c.release = own.release;
        c.p = h->packages[i];
        c.fit = h->packages[i].confidence / own.confidence;
        if (c.fit > 1.0)
            c.fit = 1.0;
        if (c.fit > 0 && claim_add(m, &c) < 0)
            return FDX_ENOMEM;
    }
    return 0;
}

/* Appends claim c as a text line to *buf (grown as needed); fields with
 * a tab or a newline are left out. */
static int claim_text(char **buf, size_t *len, size_t *cap,
                      const struct claim *c)
{
    const char *f[7] = {c->family, c->release, c->p.file.name,
                        c->p.file.version, c->p.file.arch, c->p.file.suite,
                        c->p.file.path};
    size_t need = 128;
    int n;

    for (int k = 0; k < 7; k++) {
        if (f[k] == NULL || f[k][0] == '\0' || strpbrk(f[k], "\t\n"))
            return 0;
        need += strlen(f[k]) + 1;
    }
    if (*len + need > *cap) {
        size_t ncap = 2 * (*len + need);
        char *nb = fdx__realloc(*buf, ncap);

        if (nb == NULL)
            return FDX_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    n = snprintf(*buf + *len, *cap - *len, "P\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t"
                 "%llu\t%.17g\t%llu\t%llu\t%llu\n", f[0], f[1], f[2], f[3],
                 f[4], f[5], f[6], (unsigned long long)c->p.file.size,
                 c->fit, (unsigned long long)c->p.time_ms,
                 (unsigned long long)c->p.first_seen_ms,
                 (unsigned long long)c->p.last_seen_ms);
    *len += (size_t)n;
    return 0;
}

/*
 * m->own (the scores) followed by this collector's claims: those of
 * this write, then, for an accumulating collector, its older ones not
 * made again (m->claims[0 .. nown) and [old_from .. old_to)).
 */
static int own_text(merge *m, size_t nown, size_t old_from, size_t old_to)
{
    size_t len = strlen(m->own), cap = len + 1, kept = 0;
    char *buf = m->own;
    int rc = 0;

    for (size_t i = 0; i < old_to && rc == 0 && kept < CLAIMS_KEPT_MAX;
         i++) {
        int dup = 0;

        if (i >= nown && i < old_from)
            continue;          /* another collector's */
        for (size_t k = 0; k < i && !dup; k++)
            dup = (k < nown || k >= old_from) &&
                  claim_same(&m->claims[k], &m->claims[i]);
        if (!dup) {
            rc = claim_text(&buf, &len, &cap, &m->claims[i]);
            kept++;
        }
    }
    m->own = buf;
    return rc;
}

/*
 * The package claims of the merged claim c: every collector's claim of
 * c's release whose fit at c's confidence reaches the least for a
 * claim, the first of each package (this write's own ahead of the
 * store's) taken.
 */
static int judge_claims(merge *m, const fdx_os_claim *c, fdx_store_host *out)
{
    out->npackages = 0;
    out->packages = NULL;
    if (!c->known || m->nclaims == 0)
        return 0;
    m->packages = fdx__calloc(m->nclaims, sizeof(*m->packages));
    if (m->packages == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < m->nclaims; i++) {
        const struct claim *cl = &m->claims[i];
        double conf = c->confidence * cl->fit;
        int dup = 0;

        if (strcmp(cl->family, c->family) != 0 ||
            strcmp(cl->release, c->release) != 0 ||
            conf < FDX__PKG_MIN_CONF)
            continue;
        for (size_t k = 0; k < out->npackages && !dup; k++)
            dup = strcmp(m->packages[k].file.name, cl->p.file.name) == 0 &&
                  strcmp(m->packages[k].file.arch, cl->p.file.arch) == 0;
        if (dup)
            continue;
        m->packages[out->npackages] = cl->p;
        m->packages[out->npackages].confidence = conf > 1.0 ? 1.0 : conf;
        out->npackages++;
    }
    out->packages = m->packages;
    return 0;
}

/*
 * A collector's base: what its name had written of a host when this
 * handle first wrote the host, aligned with the host's hypotheses then
 * (the catalog's, unchanged until fdx_store_rebase()).  The collector's
 * row is that plus its engine's running sums.
 */
struct fdx__base {
    fdx_addr addr;
    int used;
    size_t n;
    double *score;
    uint8_t *arch_ev;
};

static size_t base_hash(const fdx_addr *a, size_t cap)
{
    uint64_t h = fdx__mix64(fdx__be64(a->b), fdx__be64(a->b + 8));

    return (size_t)h & (cap - 1);
}

static struct fdx__base *base_find(fdx_store *st, const fdx_addr *a)
{
    if (st->base_cap == 0)
        return NULL;
    for (size_t i = base_hash(a, st->base_cap);;
         i = (i + 1) & (st->base_cap - 1)) {
        struct fdx__base *b = &st->base[i];

        if (!b->used)
            return NULL;
        if (fdx_addr_cmp(&b->addr, a) == 0)
            return b;
    }
}

static void base_free_all(fdx_store *st)
{
    for (size_t i = 0; i < st->base_cap; i++) {
        fdx__free(st->base[i].score);
        fdx__free(st->base[i].arch_ev);
    }
    fdx__free(st->base);
    st->base = NULL;
    st->base_cap = st->base_n = 0;
}

void fdx_store_rebase(fdx_store *st)
{
    base_free_all(st);
}

/* Room for one more entry at most half full; 0 or FDX_ENOMEM. */
static int base_room(fdx_store *st)
{
    size_t cap = st->base_cap ? 2 * st->base_cap : 1024;
    struct fdx__base *old = st->base, *nb;
    size_t ocap = st->base_cap;

    if (2 * (st->base_n + 1) <= st->base_cap)
        return 0;
    if ((nb = fdx__calloc(cap, sizeof(*nb))) == NULL)
        return FDX_ENOMEM;
    for (size_t i = 0; i < ocap; i++) {
        size_t j;

        if (!old[i].used)
            continue;
        for (j = base_hash(&old[i].addr, cap); nb[j].used;
             j = (j + 1) & (cap - 1))
            ;
        nb[j] = old[i];
    }
    fdx__free(old);
    st->base = nb;
    st->base_cap = cap;
    return 0;
}

/* The base of host h from its row as the store had it (own_old, NULL
 * when none): each of h's hypotheses gets the old row's score for it;
 * hypotheses of the old row that h lacks are dropped. */
static struct fdx__base *base_add(fdx_store *st, const fdx_store_host *h,
                                  char *own_old)
{
    struct fdx__base b = {h->addr, 1, h->nscores, NULL, NULL};
    merge old;
    size_t cap = 0, i;

    if (base_room(st) < 0 ||
        (b.score = fdx__calloc(b.n ? b.n : 1, sizeof(*b.score))) == NULL ||
        (b.arch_ev = fdx__calloc(b.n ? b.n : 1, 1)) == NULL) {
        fdx__free(b.score);
        return NULL;
    }
    memset(&old, 0, sizeof(old));
    if (own_old != NULL && parse_scores(&old, &cap, own_old) == 0)
        for (size_t j = 0; j < old.nall; j++)
            for (size_t k = 0; k < b.n; k++)
                if (fdx__os_same_hyp(&old.all[j], &h->scores[k])) {
                    b.score[k] += old.all[j].score;
                    b.arch_ev[k] |= old.all[j].arch_evidence != 0;
                    break;
                }
    fdx__free(old.all);
    fdx__free(old.claims);
    for (i = base_hash(&h->addr, st->base_cap); st->base[i].used;
         i = (i + 1) & (st->base_cap - 1))
        ;
    st->base[i] = b;
    st->base_n++;
    return &st->base[i];
}

/* m->eff: h's scores plus the collector's base for the host. */
static int add_base(fdx_store *st, const fdx_store_host *h, merge *m)
{
    struct fdx__base *b = base_find(st, &h->addr);

    m->eff = fdx__malloc((h->nscores ? h->nscores : 1) * sizeof(*m->eff));
    if (m->eff == NULL)
        return FDX_ENOMEM;
    memcpy(m->eff, h->scores, h->nscores * sizeof(*m->eff));
    if (!st->opts.accumulate_scores)
        return 0;
    if (b == NULL && (b = base_add(st, h, m->own_old)) == NULL)
        return FDX_ENOMEM;
    for (size_t k = 0; k < h->nscores && k < b->n; k++) {
        m->eff[k].score += b->score[k];
        m->eff[k].arch_evidence |= b->arch_ev[k];
    }
    return 0;
}

/*
 * Makes *out, a shallow copy of h with the claims the store's other
 * collectors' scores and h's give together; m owns what it adds.
 */
static int merge_host(fdx_store *st, const fdx_store_host *h,
                      const char *collector, merge *m, fdx_store_host *out,
                      fdx_error *err)
{
    size_t cap = 0, nown, old_from, old_to;
    fdx_os_claim c;
    int rc;

    *out = *h;
    rc = st->ops->get_scores(st, &h->addr, collector, merge_keep_text, m,
                             err);
    if (rc < 0)
        return rc;
    if (m->own_old != NULL &&
        (m->old_claims = fdx__strdup(m->own_old)) == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    if (own_claims(m, h) < 0 || add_base(st, h, m) < 0 ||
        (m->own = scores_text(m->eff, h->nscores)) == NULL ||
        fdx__grow(&m->all, &cap, h->nscores, sizeof(*m->all)) < 0)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    memcpy(m->all, m->eff, h->nscores * sizeof(*m->all));
    m->nall = h->nscores;
    nown = m->nclaims;
    for (size_t i = 0; i < m->ntexts; i++)
        if (parse_scores(m, &cap, m->texts[i]) < 0)
            return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory",
                                 st->uri);
    old_from = m->nclaims;
    /* a collector's earlier claims stay in play across its restarts */
    if (st->opts.accumulate_scores && m->old_claims != NULL &&
        parse_text(m, &cap, m->old_claims, 1) < 0)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    old_to = m->nclaims;
    fdx_os_merge(m->all, m->nall, &c);
    if (judge_claims(m, &c, out) < 0 ||
        own_text(m, nown, old_from, old_to) < 0)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    memset(&out->os, 0, sizeof(out->os));
    if (c.known) {
        out->os.known = 1;
        out->os.family = c.family;
        out->os.release = c.release;
        out->os.codename = c.codename;
        out->os.arch = c.arch;
        out->os.confidence = c.confidence;
        out->os.arch_confidence = c.arch_confidence;
    }
    return 0;
}

/* One host's rows: the host, its evidence, then its packages, each
 * package pointing at the evidence row that backs it; then the
 * collector's scores.  With scores, the claims are merged with those of
 * the store's other collectors first. */
static int store_put_host(fdx_store *st, const fdx_store_host *given,
                          const char *collector, fdx_error *err)
{
    const fdx__store_ops *ops = st->ops;
    int64_t host, *ev_ids = NULL;
    fdx_store_host merged, *h = &merged;
    merge m;
    int rc;

    memset(&m, 0, sizeof(m));
    merged = *given;
    if (given->nscores > 0 &&
        (rc = merge_host(st, given, collector, &m, &merged, err)) < 0)
        goto done;
    if ((rc = ops->put_host_row(st, h, collector, &host, err)) < 0)
        goto done;
    if (m.own != NULL &&
        (rc = ops->put_scores(st, host, collector, m.own, h->last_seen_ms,
                              err)) < 0)
        goto done;
    if (h->nevidence > 0 &&
        (ev_ids = fdx__calloc(h->nevidence, sizeof(*ev_ids))) == NULL) {
        rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
        goto done;
    }
    /* -1 marks the evidence a package claim needs the row id of */
    for (size_t i = 0; i < h->npackages; i++)
        if (h->packages[i].evidence >= 0 &&
            (size_t)h->packages[i].evidence < h->nevidence)
            ev_ids[h->packages[i].evidence] = -1;
    for (size_t i = 0; i < h->nevidence && rc == 0; i++) {
        uint64_t k = ev_key(&h->addr, &h->evidence[i]);

        int seen = ev_seen_has(st, k);

        if (ev_ids[i] != -1 && seen)
            continue;          /* in the store already, no id needed */
        /* not written so by this handle: the row may hold an older
         * match of the connection */
        rc = ops->put_evidence(st, host, &h->evidence[i], collector, !seen,
                               &ev_ids[i], err);
        ev_pend_add(st, k);
    }
    for (size_t i = 0; i < h->npackages && rc == 0; i++) {
        const fdx_store_package *p = &h->packages[i];
        int64_t ev = p->evidence >= 0 && (size_t)p->evidence < h->nevidence
                         ? ev_ids[p->evidence]
                         : 0;

        rc = ops->put_package(st, host, p, ev, collector, h->last_seen_ms,
                              err);
    }
done:
    fdx__free(ev_ids);
    merge_free(&m);
    return rc;
}

typedef struct host_order {
    fdx_addr addr;
    size_t i;
} host_order;

static int host_order_cmp(const void *a, const void *b)
{
    return fdx_addr_cmp(&((const host_order *)a)->addr,
                        &((const host_order *)b)->addr);
}

/* Indexes of src's hosts in address order: writers sharing a store take
 * their hosts' locks in one order, so two batches cannot deadlock.
 * NULL when out of memory. */
static size_t *batch_order(host_at_fn at, const void *src, size_t n)
{
    host_order *o = fdx__malloc((n ? n : 1) * sizeof(*o));
    size_t *idx = fdx__malloc((n ? n : 1) * sizeof(*idx));

    if (o == NULL || idx == NULL) {
        fdx__free(o);
        fdx__free(idx);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        o[i].addr = at(src, i)->addr;
        o[i].i = i;
    }
    qsort(o, n, sizeof(*o), host_order_cmp);
    for (size_t i = 0; i < n; i++)
        idx[i] = o[i].i;
    fdx__free(o);
    return idx;
}

/* Writes hosts 0..n of src in one transaction, or nothing; with sc
 * (room for every hypothesis), src is a scan whose scores go too. */
static int put_batch(fdx_store *st, const fdx_catalog *cat, host_at_fn at,
                     const void *src, size_t n, const char *collector,
                     fdx_os_score *sc, fdx_error *err)
{
    size_t *order;
    int rc;

    if (st->opts.read_only)
        return fdx_error_set(err, FDX_EUSAGE, "%s: opened read-only",
                             st->uri);
    if ((order = batch_order(at, src, n)) == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    if ((rc = st->ops->begin(st, err)) < 0) {
        fdx__free(order);
        return rc;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        const fdx_host *in = at(src, i);
        fdx_store_host h;
        fdx_host tmp;

        if (sc != NULL)
            in = scan_scored_at(src, i, sc, &tmp);
        if ((rc = fdx_store_host_resolve(cat, in, &h)) < 0) {
            fdx_error_set(err, rc, "%s: out of memory", st->uri);
            goto fail;
        }
        rc = store_put_host(st, &h, collector, err);
        fdx_store_host_free(&h);
        if (rc < 0)
            goto fail;
    }
    if ((rc = st->ops->commit(st, err)) < 0)
        goto fail;
    fdx__free(order);
    ev_batch_done(st, 1);
    fdx__log(st->opts.log, FDX_LOG_INFO, "event=store-write store=%s "
             "hosts=%zu", st->uri, n);
    return 0;
fail:
    fdx__free(order);
    st->ops->rollback(st);
    ev_batch_done(st, 0);
    return rc;
}

int fdx_store_put_hosts(fdx_store *st, const fdx_catalog *cat,
                        const fdx_host *hosts, size_t n,
                        const char *collector, fdx_error *err)
{
    return put_batch(st, cat, array_at, hosts, n, collector, NULL, err);
}

int fdx_store_put_scan(fdx_store *st, const fdx_catalog *cat,
                       const fdx_scan *scan, const char *collector,
                       fdx_error *err)
{
    size_t nh = fdx_scan_hyp_count(scan);
    fdx_os_score *sc = fdx__calloc(nh ? nh : 1, sizeof(*sc));
    int rc;

    if (sc == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    rc = put_batch(st, cat, scan_at, scan, fdx_scan_host_count(scan),
                   collector, sc, err);
    fdx__free(sc);
    return rc;
}

typedef struct each_ctx {
    fdx_store_host_fn fn;
    void *ud;
} each_ctx;

static int each_one(void *ud, fdx_store_host *h)
{
    const each_ctx *c = ud;

    return c->fn(c->ud, h);
}

int fdx_store_each_host(fdx_store *st, fdx_store_host_fn fn, void *ud,
                        fdx_error *err)
{
    each_ctx c = {fn, ud};

    return st->ops->each_host(st, NULL, each_one, &c, err);
}

/* Keeps the one host each_host() finds, for fdx_store_get_host(). */
typedef struct take_one {
    fdx_store_host *out;
    int found;
} take_one;

static int take(void *ud, fdx_store_host *h)
{
    take_one *t = ud;

    *t->out = *h;
    memset(h, 0, sizeof(*h));   /* the pool is the caller's now */
    t->found = 1;
    return 1;
}

int fdx_store_get_host(fdx_store *st, const fdx_addr *addr,
                       fdx_store_host *out, fdx_error *err)
{
    take_one t = {out, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    rc = st->ops->each_host(st, addr, take, &t, err);
    if (rc < 0)
        return rc;
    if (!t.found) {
        char a[FDX_ADDRSTRLEN];

        return fdx_error_set(err, FDX_ENOTFOUND, "%s: no host %s", st->uri,
                             fdx_addr_format(addr, a, sizeof(a)));
    }
    return 0;
}

int fdx_store_prune(fdx_store *st, uint64_t before_ms, uint64_t *removed,
                    fdx_error *err)
{
    int rc;

    *removed = 0;
    if (st->opts.read_only)
        return fdx_error_set(err, FDX_EUSAGE, "%s: opened read-only",
                             st->uri);
    if ((rc = st->ops->begin(st, err)) < 0)
        return rc;
    if ((rc = st->ops->prune(st, before_ms, removed, err)) < 0 ||
        (rc = st->ops->commit(st, err)) < 0) {
        st->ops->rollback(st);
        *removed = 0;
        return rc;
    }
    fdx__log(st->opts.log, FDX_LOG_INFO, "event=store-prune store=%s "
             "before_ms=%llu evidence_removed=%llu", st->uri,
             (unsigned long long)before_ms, (unsigned long long)*removed);
    return 0;
}

int fdx_store_get_stats(fdx_store *st, fdx_store_stats *out, fdx_error *err)
{
    memset(out, 0, sizeof(*out));
    return st->ops->stats(st, out, err);
}
