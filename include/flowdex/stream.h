/*
 * flowdex stream: the scan pipeline run incrementally, for a collector.
 *
 * Records are added as they arrive (fdx_stream_add() is an fdx_flow_fn,
 * so a decoder can feed it directly).  Open TCP connections are joined
 * as fdx_scan joins them, one record at a time; fdx_stream_advance()
 * closes those idle for opts.idle_ms, lets each server endpoint's model
 * learn from its closed connections (recalibrating as its sample grows),
 * matches them against the catalog, adds their evidence to their host's
 * running scores, and then recomputes the OS and package claims of the
 * hosts that got new evidence, and only those, handing each to a
 * callback.  Matching and inference are fdx_scan's own code.
 *
 * Memory is bounded whatever arrives: every table has a cap (the
 * fdx_stream_opts fields below, each with its default), and what a full
 * table turns away is counted in fdx_stream_stats.
 */
#ifndef FLOWDEX_STREAM_H
#define FLOWDEX_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/catalog.h"
#include "flowdex/flow.h"
#include "flowdex/scan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fdx_stream_opts {
    const fdx_logger *log;
    /* A connection with no record for this long is closed and matched;
     * 0: 60000 ms.  Must exceed the exporters' active timeout, or the
     * pieces of a long download are matched apart.  One closed by FIN or
     * RST in both directions closes 10 s after its last record (a
     * second exporter's copy of a record is still recognised). */
    uint64_t idle_ms;
    /* Records of one 5-tuple further apart than this are separate
     * connections, as in fdx_scan_opts; 0: 300000 ms. */
    uint64_t join_gap_ms;
    /* Open connections, and closed ones awaiting fdx_stream_advance();
     * 0: 1048576 (about 360 MiB at most).  The records of a new
     * connection over the cap are dropped, each counted in
     * stats.conns_dropped. */
    size_t max_open;
    /* Server endpoints tracked (each with a sample of its connections);
     * 0: 4096.  When full, the least recently active endpoint that is
     * not yet a known repository server is forgotten
     * (stats.servers_evicted); when all are known, the new endpoint is
     * not tracked (stats.servers_dropped). */
    size_t max_servers;
    /* Connections kept per endpoint to calibrate it, the cap model.c
     * calibrates with; 0: 8192.  Beyond it, a reservoir sample. */
    size_t server_sample;
    /* Connections kept in all endpoints' samples together; 0: 1048576
     * (about 90 MiB).  Beyond it an endpoint's sample stops growing and
     * is replaced in (stats.sample_full counts the connections). */
    size_t max_sample_total;
    /* Closed connections of endpoints not yet calibrated, waiting to be
     * matched once they are; 0: 65536.  When full the oldest eighth is
     * dropped (stats.pending_dropped); so are those still waiting at
     * fdx_stream_flush(). */
    size_t max_pending;
    /* Hosts with evidence; 0: 65536 (each 8 bytes a hypothesis of
     * scores, besides its evidence).  Evidence of a new host over the
     * cap is dropped (stats.hosts_dropped). */
    size_t max_hosts;
    /* Evidence kept per host; 0: 4096.  When full the oldest eighth is
     * forgotten (stats.evidence_dropped): its scores stay in the host's
     * sums, and the packages it showed were handed over already, but
     * the claims handed over from then on no longer list them. */
    size_t max_evidence;
    /* Evidence kept by all hosts together, 200 bytes each; 0: 1048576.
     * When full, the host that gets more forgets its oldest eighth, and
     * a host with none drops the new (stats.evidence_dropped). */
    size_t max_evidence_total;
    /* Non-zero: the hosts handed over are for a store that merges what
     * several collectors saw (fdx_store_put_hosts()).  Each carries its
     * scores, and its package claims are made under its best hypothesis
     * even when its own evidence makes no OS claim, without the least
     * confidence: the store applies both to the merged claim.  Zero: the
     * claims fdx_scan_finish() would make. */
    int for_merge;
} fdx_stream_opts;

typedef struct fdx_stream_stats {
    uint64_t flows, flows_ignored, flows_sampled, flows_invalid;
    uint64_t duplicates;        /* the same record again, dropped */
    uint64_t connections;       /* closed and handed on */
    uint64_t open;              /* open now */
    uint64_t downloads, identified, ambiguous, multi, unmatched;
    uint64_t servers_tracked;   /* endpoints tracked now */
    uint64_t servers_known;     /* repository servers now (HTTP + TLS) */
    uint64_t calibrations;      /* endpoint calibrations run */
    uint64_t rematched;         /* evidence matched again after its
                                 * server's model changed */
    uint64_t rematch_hosts;     /* hosts whose evidence that changed */
    uint64_t pending;           /* connections waiting now */
    uint64_t hosts;             /* hosts with evidence now */
    uint64_t evidence;          /* evidence kept now, all hosts */
    uint64_t recomputes;        /* host claims recomputed */
    /* caps hit */
    uint64_t conns_dropped, servers_evicted, servers_dropped, sample_full;
    uint64_t pending_dropped, hosts_dropped, evidence_dropped;
} fdx_stream_stats;

typedef struct fdx_stream fdx_stream;

/*
 * Called once per host whose claims were recomputed.  host and all it
 * points to are valid during the call only; its strings point into the
 * catalog.  A non-zero return stops the advance and is returned by it.
 */
typedef int (*fdx_stream_host_fn)(void *ud, const fdx_host *host);

/* Creates a stream against cat (which must outlive it); opts may be NULL.
 * Returns NULL if out of memory.  Free with fdx_stream_free(). */
fdx_stream *fdx_stream_new(const fdx_catalog *cat,
                           const fdx_stream_opts *opts);
void fdx_stream_free(fdx_stream *st);

/* Adds one record; ud is the fdx_stream.  Returns 0 (a record a full
 * table turns away is counted, not an error). */
int fdx_stream_add(void *ud, const fdx_flow *flow);

/*
 * Closes the connections idle at now_ms (flow time), calibrates, matches
 * and infers as above, and calls fn (may be NULL) for each host with new
 * evidence.  Returns 0, fn's non-zero value, or FDX_ENOMEM.
 */
int fdx_stream_advance(fdx_stream *st, uint64_t now_ms,
                       fdx_stream_host_fn fn, void *ud);

/* As fdx_stream_advance() with every connection closed, for the end of
 * the input or a shutdown; what still waits for a calibration is
 * dropped and counted. */
int fdx_stream_flush(fdx_stream *st, fdx_stream_host_fn fn, void *ud);

void fdx_stream_get_stats(const fdx_stream *st, fdx_stream_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_STREAM_H */
