/*
 * flowdex scan: from flow records to a per-host inventory.
 *
 * Records are added one at a time (fdx_scan_add() is an fdx_flow_fn).
 * fdx_scan_finish() then joins the records of each TCP connection (active
 * timeout splits, both directions, RFC 5103 biflows), learns each server's
 * overhead model from the downloads that identify themselves, matches every
 * download against the catalog, and infers per client host its operating
 * system and the packages it fetched, each with a confidence and the
 * evidence behind it.
 *
 * fdx_scan_new() and fdx_scan_finish() run parts of their work on a
 * second thread, which they start and join before returning, unless
 * allocation hooks are set (fdx_set_allocator()): then everything runs on
 * the caller's thread.  The results are the same either way.
 */
#ifndef FLOWDEX_SCAN_H
#define FLOWDEX_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/catalog.h"
#include "flowdex/flow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one connection's evidence is. */
enum fdx_evidence_kind {
    FDX_EV_FILE = 1,      /* one file, identified (ncand groups == 1) */
    FDX_EV_AMBIGUOUS = 2, /* one file, several catalog entries fit */
    FDX_EV_MULTI = 3,     /* several files in one connection (keep-alive) */
    FDX_EV_SAMPLED = 4,   /* sampled flow: sizes unusable, server noted */
    FDX_EV_UNMATCHED = 5  /* a repository server, but no file fits */
};

/* Transport the model assumed for a match. */
enum fdx_transport {
    FDX_TR_HTTP = 1,
    FDX_TR_TLS = 2
};

/*
 * One connection that carried at least one candidate download.  cand
 * lists catalog entry indexes (sorted, at most FDX_MAX_CANDIDATES kept;
 * ncand_total says how many fitted).
 */
#define FDX_MAX_CANDIDATES 16

typedef struct fdx_evidence {
    uint64_t first_ms, last_ms;
    fdx_addr server;
    uint16_t server_port, client_port;
    uint64_t octets, packets;          /* server to client */
    uint64_t req_octets, req_packets;  /* client to server, 0 if unseen */
    uint32_t records;                  /* flow records joined */
    uint8_t kind;                      /* enum fdx_evidence_kind */
    uint8_t transport;                 /* enum fdx_transport */
    uint8_t hdr_octets;                /* IP+TCP header per packet assumed */
    uint8_t est_files;                 /* files estimated from the requests */
    int32_t residual;                  /* bytes left over by the best fit */
    uint64_t win_lo, win_hi;           /* file sizes the model allowed */
    uint16_t path_lo, path_hi;         /* path lengths the request side
                                        * allowed; 0, 0: not used */
    double weight;                     /* how much it counts for the OS */
    uint32_t ncand, ncand_total;
    uint32_t cand[FDX_MAX_CANDIDATES];
} fdx_evidence;

/* A package the host fetched, as far as flowdex stands behind it. */
typedef struct fdx_package_claim {
    uint32_t entry;       /* catalog entry index */
    double confidence;
    uint32_t evidence;    /* index into fdx_host.evidence */
} fdx_package_claim;

typedef struct fdx_os_claim {
    int known;            /* 0: no evidence, the other fields are unset */
    const char *family;   /* strings point into the catalog */
    const char *release;
    const char *codename;
    const char *arch;     /* NULL when no architecture-specific evidence */
    double confidence;
    double arch_confidence;
} fdx_os_claim;

/*
 * What one host's evidence says of one OS hypothesis (a release of a
 * family on one architecture): the sum of its connections'
 * log-likelihood ratios, and whether one of them fitted a file of that
 * very architecture.  Scores of the same host from several collectors
 * add up; fdx_os_merge() turns the sums into the claim one collector
 * seeing all of the evidence would make.
 */
typedef struct fdx_os_score {
    const char *family, *release, *codename, *arch;
    double score;
    int arch_evidence;
} fdx_os_score;

typedef struct fdx_host {
    fdx_addr addr;
    fdx_os_claim os;
    fdx_package_claim *packages;
    size_t npackages;
    fdx_evidence *evidence;
    size_t nevidence;
    uint64_t sampled_flows;     /* flows skipped for size matching */
    /* one per hypothesis, when kept (the stream engine's hosts); NULL
     * otherwise: fdx_scan_host_scores() gives a scan's */
    const fdx_os_score *scores;
    size_t nscores;
} fdx_host;

typedef struct fdx_scan_opts {
    const fdx_logger *log;
    /* Records further apart than this (same 5-tuple) are separate
     * connections; 0: default 300000 ms. */
    uint64_t join_gap_ms;
} fdx_scan_opts;

typedef struct fdx_scan_stats {
    uint64_t flows;             /* records added */
    uint64_t flows_ignored;     /* not TCP, or too small to be a download */
    uint64_t flows_sampled;     /* skipped for size matching */
    uint64_t duplicates;        /* the same record again, dropped */
    uint64_t connections;       /* after joining */
    uint64_t downloads;         /* connections considered as downloads */
    uint64_t identified, ambiguous, multi, unmatched;
    uint64_t servers_calibrated;
    uint64_t flows_invalid;     /* impossible counts (more bytes than
                                 * packets can carry), ignored */
} fdx_scan_stats;

typedef struct fdx_scan fdx_scan;

/* Creates a scan against cat (which must outlive it); NULL if no memory. */
fdx_scan *fdx_scan_new(const fdx_catalog *cat, const fdx_scan_opts *opts);
void fdx_scan_free(fdx_scan *s);

/* Adds one record; ud is the fdx_scan.  Returns 0, or FDX_ENOMEM. */
int fdx_scan_add(void *ud, const fdx_flow *flow);

/* Runs the analysis.  Returns 0 or a negative FDX_E* code. */
int fdx_scan_finish(fdx_scan *s);

/* Results, valid after fdx_scan_finish() until fdx_scan_free(). Hosts
 * are sorted by address. */
size_t fdx_scan_host_count(const fdx_scan *s);
const fdx_host *fdx_scan_host(const fdx_scan *s, size_t i);
void fdx_scan_get_stats(const fdx_scan *s, fdx_scan_stats *st);

/* The number of OS hypotheses of the scan's catalog. */
size_t fdx_scan_hyp_count(const fdx_scan *s);

/*
 * Fills out[0 .. fdx_scan_hyp_count()) with host i's score for each
 * hypothesis (strings point into the catalog).  Returns the count, or 0
 * when i is out of range.
 */
size_t fdx_scan_host_scores(const fdx_scan *s, size_t i, fdx_os_score *out);

/*
 * The OS claim that scores sc[0 .. n) make, summed per hypothesis (the
 * same family, release, codename and architecture may appear several
 * times, once per collector): the decision fdx_scan_finish() makes on a
 * host's own evidence.  out's strings point into sc.
 */
void fdx_os_merge(const fdx_os_score *sc, size_t n, fdx_os_claim *out);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_SCAN_H */
