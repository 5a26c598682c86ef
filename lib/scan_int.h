/*
 * Private interfaces of the scan pipeline: connection assembly (conn.c),
 * the per-server overhead model (model.c), catalog matching (match.c) and
 * host inference (infer.c), glued together by scan.c.
 */
#ifndef FLOWDEX_SCAN_INT_H
#define FLOWDEX_SCAN_INT_H

#include "flowdex/scan.h"

/* A flow record reduced to what the pipeline needs, one direction. */
typedef struct fdx__half {
    fdx_addr client, server;
    uint64_t octets, packets, first_ms, last_ms;
    uint16_t cport, sport;
    uint8_t to_client;   /* 1: server to client direction */
    uint8_t tcp_flags;
    uint8_t sampled;
} fdx__half;

/* One TCP connection after joining and pairing. */
typedef struct fdx__conn {
    fdx_addr client, server;
    uint64_t s2c_octets, s2c_packets, c2s_octets, c2s_packets;
    uint64_t first_ms, last_ms;
    uint32_t records;
    uint16_t cport, sport;
    uint8_t sampled;
} fdx__conn;

/*
 * The halves, kept in FDX__NPART parts by the top bits of a hash of
 * their 5-tuple, so that each part can be ordered and joined on its own,
 * in the cache, and given back once joined.
 */
#define FDX__NPART_BITS 8
#define FDX__NPART (1u << FDX__NPART_BITS)

typedef struct fdx__part {
    fdx__half *v;
    size_t n, cap;
} fdx__part;

typedef struct fdx__halves {
    fdx__part *v;        /* FDX__NPART of them, from the first add */
    size_t n;            /* halves in all */
} fdx__halves;

/* False when flow's counts are impossible (more bytes than its packets
 * can carry): such records are counted invalid and dropped (scan.c). */
int fdx__flow_possible(const fdx_flow *flow);

/* Adds the one or two directions of flow to hv; ignores non-TCP. Returns
 * 1 if kept, 0 if ignored, FDX_ENOMEM. */
int fdx__halves_add(fdx__halves *hv, const fdx_flow *flow);

/* The one or two halves of flow (0 when not TCP), oriented client and
 * server: the reduction fdx__halves_add() keeps, for a caller that joins
 * records as they come (stream.c). */
int fdx__flow_halves(const fdx_flow *flow, fdx__half h[2]);

/*
 * The steps of the join, for a caller that holds one open connection per
 * 5-tuple (stream.c) instead of sorting them all: starts c with h; adds h
 * to c; true when h repeats prev (the same record from a second exporter,
 * see conn.c); true when h closes its direction (FIN or RST).
 */
void fdx__conn_start(fdx__conn *c, const fdx__half *h);
void fdx__conn_add(fdx__conn *c, const fdx__half *h);
int fdx__half_duplicate(const fdx__half *h, const fdx__half *prev);
int fdx__half_closes(const fdx__half *h);

/* Frees what hv holds; hv is then empty. */
void fdx__halves_free(fdx__halves *hv);

/* Groups hv by 5-tuple and joins it into connections, which come out
 * grouped by 5-tuple (not by client); *out is fdx__malloc'd.  Adds
 * the number of duplicate records dropped to *dups.  Consumes hv: each
 * part is freed once joined, and hv is left empty. */
int fdx__conns_build(fdx__halves *hv, uint64_t gap_ms, fdx__conn **out,
                     size_t *nout, uint64_t *dups);

/* File classes: the HTTP response header differs by content type. */
enum {
    FDX__CLASS_DEB,
    FDX__CLASS_INRELEASE,
    FDX__CLASS_XZ,
    FDX__CLASS_GZ,
    FDX__CLASS_OTHER,
    FDX__NCLASS
};

int fdx__file_class(const char *path);

/* Decimal digits of v (Content-Length grows the header by one a digit). */
int fdx__digits(uint64_t v);

/*
 * The sizes s with s + digits(s) = t: the only k in 1..12 for which
 * s = t - k can have k digits lie in [*klo, *khi] (empty when *klo >
 * *khi), so loops over k need not ask digits() twelve times.
 */
void fdx__digit_range(int64_t t, int *klo, int *khi);

/*
 * Values a server was seen to use, strongest first.  A CDN's nodes and
 * cache states answer with headers of a few sizes, and clients of several
 * kinds send requests of a few sizes, so each is a short list.
 */
#define FDX__MAX_MODES 4

typedef struct fdx__modes {
    uint8_t n;
    int32_t d[FDX__MAX_MODES];
    uint32_t conns[FDX__MAX_MODES];    /* connections backing each */
} fdx__modes;

/* What was learned of one server endpoint. */
typedef struct fdx__server {
    fdx_addr addr;
    uint16_t port;
    uint8_t tls;
    /* HTTP: header bytes beyond digits(size), per header size and class */
    fdx__modes base[2][FDX__NCLASS];
    double req_single;         /* median request bytes, one file; 0: unknown */
    /* request side: bytes beyond the path's length of one request */
    fdx__modes req;
} fdx__server;

/* Per-packet IP+TCP header sizes tried: [0] timestamps on, [1] off. */
int fdx__hdr_octets(int v4, int variant);

/* The default TLS profile (see docs/matching.md). */
/*
 * The TLS profile (docs/matching.md): the first response costs
 * FDX__TLS_FIRST bytes beyond the file (handshake, certificates, headers),
 * every further FDX__TLS_UNIT bytes of file FDX__TLS_PER_UNIT more (an
 * HTTP/2 frame of 16 KiB sent as two TLS records), within FDX__TLS_TOL.
 */
#define FDX__TLS_FIRST 2451
#define FDX__TLS_UNIT 16384
#define FDX__TLS_PER_UNIT 53
#define FDX__TLS_TOL 24

/* Default HTTP header window when a server could not be calibrated. */
#define FDX__HTTP_H_MIN 100
#define FDX__HTTP_H_MAX 700
#define FDX__HTTP_TOL 2
#define FDX__HTTP_TOL_BORROWED 8

/* Request-side tolerance, bytes: an HTTP request's size is exact. */
#define FDX__REQ_TOL_HTTP 1
/* Longer than any one request's path: more means several requests. */
#define FDX__MAX_PATH 300

/* Candidate files of one connection, and the size windows searched. */
#define FDX__MAX_WINDOWS 24

typedef struct fdx__cands {
    uint32_t *v;             /* catalog entry indexes, caller's buffer */
    size_t n, cap, total;
    uint64_t lo, hi;         /* hull of the windows, for display */
    double center;
    uint8_t hdr;             /* per-packet header the fit assumed */
    size_t nwin;             /* windows, to estimate chance matches */
    uint64_t win[FDX__MAX_WINDOWS][3];   /* lo, hi, index class */
} fdx__cands;

/* Fills cs with the files whose size fits c under sv's model. */
void fdx__size_cands(const fdx_scan *s, const fdx__server *sv,
                     const fdx__conn *c, fdx__cands *cs);

/*
 * True when c's request side is long enough for two requests of the
 * catalog's shortest paths: a connection that fits no single file may
 * then be a keep-alive connection of two files, which the request size
 * alone cannot tell from one long path (infer.c tries the pairs).
 */
int fdx__two_requests(const fdx_scan *s, const fdx__server *sv,
                      const fdx__conn *c);

/* True when some file fits c under sv's model, request side included. */
int fdx__conn_explained(const fdx_scan *s, const fdx__server *sv,
                        const fdx__conn *c, uint32_t *scratch, size_t cap);

/* Request-side payload of c with hdr bytes of header per packet; returns
 * 0 when the connection's request side was not seen. */
int fdx__request_octets(const fdx__conn *c, int hdr, int64_t *q);

/* log((n + eps) / (e + eps)), clamped: one connection's evidence. */
double fdx__lr(double n, double e);

/* Expected chance count of each hypothesis's files in cs's windows:
 * fills e[0..nhyps). */
void fdx__cands_expected(const fdx_scan *s, const fdx__cands *cs, double *e);

#define FDX__NBUCKET 600
#define FDX__BUCKET_MIN 1000.0
#define FDX__BUCKET_RATIO 1.03

/* An OS hypothesis: one release of one family on one architecture. */
typedef struct fdx__hyp {
    const char *family, *release, *codename, *arch;
    uint32_t group;    /* release group: origins of one family+release */
    uint64_t *sizes;   /* every package a host of this kind can fetch, sorted */
    size_t nsizes;
    uint64_t *isizes;  /* every index file (InRelease, Packages...), sorted */
    size_t nisizes;
    /* files per byte around each size, for packages and index files:
     * bucket b is centred on FDX__BUCKET_MIN * FDX__BUCKET_RATIO^b */
    float density[2][FDX__NBUCKET];
    double score;
    /* its .deb entries in catalog order, made on the first keep-alive
     * pair search that needs them (infer.c); NULL until then */
    uint32_t *debs;
    size_t ndebs;
} fdx__hyp;

struct fdx_scan {
    const fdx_catalog *cat;
    fdx_scan_opts opts;
    fdx_scan_stats st;
    fdx__halves halves;
    fdx__conn *conns;
    size_t nconns;
    fdx__server *servers;
    size_t nservers;
    fdx__hyp *hyps;
    size_t nhyps;
    size_t pair_searches;     /* keep-alive pairs tried (infer.c) */
    uint32_t *origin_group;   /* origin index -> release group index */
    size_t narches;           /* hyps[g * narches + a]: group g, arch a */
    uint32_t *entry_group;    /* per catalog entry: its release group */
    int16_t *entry_arch;      /* per entry: arch index, -1 any, -2 none */
    uint16_t *path_len;       /* per catalog entry: its path's length */
    uint32_t *by_len;         /* entries by path length, then catalog order */
    uint32_t *len_start;      /* by_len[len_start[L]..]: length L (model.c) */
    uint8_t *file_class;      /* per catalog entry: FDX__CLASS_* */
    uint64_t *path_cum;       /* path_cum[L]: catalog paths shorter than L */
    size_t path_max;          /* longest path length counted */
    double path_mean;
    size_t path_min;          /* shortest path length in the catalog */
    double *lr;               /* per evidence, per hypothesis */
    fdx_evidence *ev;         /* one per connection with evidence */
    size_t nev;
    fdx__conn **ev_conn;
    fdx_host *hosts;
    size_t nhosts;
    int finished;
};

int fdx__hyps_build(fdx_scan *s);
void fdx__hyps_free(fdx_scan *s);
/* Hypothesis index set for an entry's arch and origin: calls fn per hyp. */
int fdx__entry_in_hyp(const fdx_scan *s, size_t entry, size_t h);

int fdx__servers_calibrate(fdx_scan *s);
/*
 * Learns one endpoint's model from cv[0 .. n), its connections, as
 * fdx__servers_calibrate() learns each endpoint's (the same code, an even
 * sample of at most 8192 of them): sv->addr and sv->port are the
 * caller's, the rest is overwritten.  An HTTP endpoint with fewer than
 * two connections that can vote stays uncalibrated (check with
 * fdx__server_calibrated()); a TLS endpoint gets its median request
 * only.  Does not touch s->servers.  Returns 0 or FDX_ENOMEM.
 */
int fdx__server_calibrate_conns(fdx_scan *s, fdx__server *sv,
                                fdx__conn *cv, size_t n);
/* Logs what was learned of each server, at info level. */
void fdx__servers_log(const fdx_scan *s);
/* True when the server's HTTP header size was learned for any class. */
int fdx__server_calibrated(const fdx__server *sv);
const fdx__server *fdx__server_find(const fdx_scan *s, const fdx_addr *a,
                                    uint16_t port);

/*
 * Matches one connection; fills ev (kind 0 when nothing fits) and, for
 * every hypothesis h, lr[h]: the log of how much likelier the connection
 * is if the host is h than by chance.  scratch holds cap entry indexes
 * and expected one double per hypothesis: the caller's, so that two
 * threads can match at once (s is only read).
 */
void fdx__match_conn(const fdx_scan *s, const fdx__conn *c, fdx_evidence *ev,
                     double *lr, double *expected, uint32_t *scratch,
                     size_t cap);

/* Expected count of hypothesis h's packages (index != 0: index files) in
 * [lo, hi] by chance, from their density around the window. */
double fdx__hyp_expected(const fdx__hyp *h, uint64_t lo, uint64_t hi,
                         int index);

/* The density bucket of a window centred on center. */
int fdx__bucket(double center);

/* What the claims of one host are made from, besides its evidence. */
/*
 * What a keep-alive pair search found for one piece of evidence, kept by
 * the stream between recomputations of its host: the search depends
 * only on the connection, the hypothesis and the server's header and
 * request constants, which the memo records.
 */
typedef struct fdx__pair_memo {
    uint32_t hyp1;          /* the hypothesis + 1; 0: not searched */
    int32_t base, req;      /* the server's constants it used */
    uint32_t a, b;          /* the pair's entries, when found */
    uint8_t found;
    double chance;
} fdx__pair_memo;

typedef struct fdx__host_in {
    const double *score;    /* per hypothesis: the sum of the host's lr */
    const double *lr;       /* per evidence and hypothesis, or NULL ... */
    const uint8_t *lr_pos;  /* ... then bit h of lr_pos[i * pos_row + h / 8]
                             * set when lr > 0 */
    size_t pos_row;
    fdx__conn *const *conn; /* per evidence: its connection */
    int for_merge;          /* claims for a merging store (stream.h) */
    fdx__pair_memo *memo;   /* per evidence, or NULL: search each time */
} fdx__host_in;

/*
 * The OS and package claims of one host from host->evidence[0 ..
 * nevidence) and in: fills host->os, and host->packages (fdx__malloc'd,
 * the caller frees it).  A keep-alive pair found rewrites its evidence
 * as FDX_EV_MULTI.  Keep-alive pair searches count against
 * s->pair_searches.  Returns 0 or FDX_ENOMEM.
 */
int fdx__host_claims(fdx_scan *s, fdx_host *host, const fdx__host_in *in);

int fdx__infer_hosts(fdx_scan *s);

/* The least confidence of a package claim (infer.c; a store merging
 * several collectors' claims applies it again). */
#define FDX__PKG_MIN_CONF 0.7

/*
 * fdx_os_merge(), and with always set the best hypothesis and its
 * confidence even below the least for a claim (out->known tells).
 */
void fdx__os_merge_full(const fdx_os_score *sc, size_t n, int always,
                        fdx_os_claim *out);

/* True when a and b name the same hypothesis. */
int fdx__os_same_hyp(const fdx_os_score *a, const fdx_os_score *b);

/* Fills out[0 .. s->nhyps) with host's score per hypothesis from in. */
void fdx__host_os_scores(const fdx_scan *s, const fdx_host *host,
                         const fdx__host_in *in, fdx_os_score *out);

/* Share of catalog paths whose length lies in [lo, hi]. */
double fdx__path_share(const fdx_scan *s, uint32_t lo, uint32_t hi);

/* Path length and file class of catalog entry i, from tables made once. */
static inline size_t fdx__entry_path_len(const fdx_scan *s, size_t i)
{
    return s->path_len[i];
}

static inline int fdx__entry_class(const fdx_scan *s, size_t i)
{
    return s->file_class[i];
}
/* Mean length of the catalog's paths. */
double fdx__path_mean(const fdx_scan *s);
int fdx__path_hist_build(fdx_scan *s);

#endif /* FLOWDEX_SCAN_INT_H */
