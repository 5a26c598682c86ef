/*
 * The state of flowdex collect, apart from its sockets and options:
 * the decoder and stream it feeds, per-exporter counters, the batch of
 * hosts waiting for the next store transaction, and the status file.
 * cmd_collect.c drives it; everything here is usable without sockets
 * (a test can feed datagrams to collect_datagram() directly).
 */
#ifndef FLOWDEX_COLLECT_H
#define FLOWDEX_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/flowdex.h"
#include "udp.h"

/* Exporters counted one by one; further senders share one row. */
#define COLLECT_EXPORTERS_MAX 1024

/* How far ahead of the wall clock a record may move the flow clock:
 * exporters keeping time by NTP are within seconds. */
#define COLLECT_CLOCK_AHEAD_MS (5 * 60 * 1000)

typedef struct collect_exporter {
    fdx_addr addr;
    uint16_t port;
    uint64_t received;     /* datagrams from this sender */
    uint64_t records;      /* records the decoder made of them */
    uint64_t malformed;    /* datagrams rejected whole */
    uint64_t dropped;      /* datagrams refused by the allow-list */
    uint64_t seq_lost;     /* from the decoder's session counters */
    uint64_t bad_records;  /* likewise */
} collect_exporter;

typedef struct collect {
    const fdx_catalog *cat;
    fdx_nf_decoder *dec;
    fdx_stream *stream;
    const fdx_logger *log;
    const udp_allow *allow;
    const char *collector_id;

    collect_exporter exp[COLLECT_EXPORTERS_MAX];
    size_t nexp;
    /* exp's rows by sender, open addressing: row + 1, 0 for empty */
    uint16_t exp_index[2 * COLLECT_EXPORTERS_MAX];
    collect_exporter other;        /* senders beyond the table */

    /* The flow clock: the latest record end seen, and the wall time
     * at which it was seen (see collect_now_ms()). */
    uint64_t clock_ms, clock_wall_ms;

    /* Hosts recomputed since the last successful store transaction. */
    fdx_host *batch;
    size_t nbatch, batch_cap;

    /* The receive queue, as the daemon last read it (bytes). */
    uint64_t queue_size, queue_bytes, queue_peak;

    uint64_t commits, commit_failures, hosts_written;
    uint64_t commit_failing;       /* failures since the last success */
    /* last_commit_ms: the end of the last commit that left nothing
     * behind (0: none yet), so a failing store shows as its age. */
    uint64_t started_ms, last_commit_ms;
} collect;

/* Milliseconds of the wall clock. */
uint64_t collect_wall_ms(void);

/*
 * Sets up c over cat (which must outlive the stream; see
 * collect_set_catalog()).  Returns 0 or FDX_ENOMEM.  collect_free()
 * frees what it holds (not c).
 */
int collect_init(collect *c, const fdx_catalog *cat, const fdx_logger *log);
void collect_free(collect *c);

/* Decodes one datagram from sender (or drops it by the allow-list). */
void collect_datagram(collect *c, const fdx_addr *sender, uint16_t port,
                      const uint8_t *buf, size_t len);

/*
 * The time the stream is advanced to: the flow clock moved on by the
 * wall time since it last moved, so that a replay of old exports (whose
 * records carry old times) closes connections as live traffic would.
 */
uint64_t collect_now_ms(const collect *c);

/*
 * Advances (or, with final, flushes) the stream and writes the hosts it
 * recomputed, with those a failed transaction left, to st in one
 * transaction.  Returns 0, or the store's negative code (the batch is
 * then kept for the next try).
 */
int collect_commit(collect *c, fdx_store *st, int final, fdx_error *err);

/*
 * Replaces the catalog: flushes and commits first (the stream holds the
 * old catalog's indexes), then starts a new stream over cat.  Returns
 * the commit's code; on failure nothing is replaced.
 */
int collect_set_catalog(collect *c, const fdx_catalog *cat, fdx_store *st,
                        fdx_error *err);

/*
 * Copies the decoder's per-session seq_lost and bad_records onto the
 * exporter rows, for a reader of c->exp (the status file, /metrics).
 */
void collect_sessions_refresh(collect *c);

/* Sessions the decoder holds now. */
size_t collect_session_count(const collect *c);

/* One line "key=value ..." per sender, totals and stream counters. */
typedef struct collect_socket_info {
    const char *listen;
    int rcvbuf_bytes;
    uint64_t datagrams;        /* read by the receive thread */
    uint64_t queue_drops;      /* read, but its queue was full */
    uint64_t kernel_drops;     /* lost in the socket buffer */
} collect_socket_info;

/*
 * Writes the status file at path atomically (a temporary file renamed
 * over it).  Returns 0 or -1 with errno.
 */
int collect_write_status(collect *c, const char *path,
                         const collect_socket_info *socks, size_t nsocks);

#endif /* FLOWDEX_COLLECT_H */
