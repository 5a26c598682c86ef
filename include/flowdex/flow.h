/*
 * flowdex flow records and the readers that produce them.
 *
 * Every input (nfcapd files, pcap/pcapng captures of NetFlow v5, v9 and
 * IPFIX export datagrams, and datagrams received live) is turned into the
 * same fdx_flow record and handed to a callback, one record at a time.
 * Decoders never depend on the catalog or the matcher.
 */
#ifndef FLOWDEX_FLOW_H
#define FLOWDEX_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fdx_flow.flags */
enum {
    FDX_FLOW_SAMPLED = 1u << 0,   /* byte counts are a sampled estimate */
    FDX_FLOW_BIFLOW = 1u << 1,    /* rev_octets/rev_packets are valid */
    FDX_FLOW_TIME_BAD = 1u << 2,  /* first_ms/last_ms could not be trusted */
    FDX_FLOW_NO_TIME = 1u << 3,   /* the record carried no time at all */
    FDX_FLOW_NO_ADDR = 1u << 4    /* the record carried no IP address
                                   * (src and dst are ::) */
};

/* fdx_flow.source: what kind of input the record came from */
enum fdx_flow_source {
    FDX_SRC_NFCAPD = 1,
    FDX_SRC_NETFLOW5 = 5,
    FDX_SRC_NETFLOW9 = 9,
    FDX_SRC_IPFIX = 10
};

/*
 * One unidirectional flow record (or an RFC 5103 biflow, see flags).
 * Times are UTC milliseconds since the epoch.  octets count whole IP
 * packets (IP header included), as every exporter reports them.
 * fw_event is 1 create, 2 teardown, 3 denied, 4 alert, 5 update (Cisco
 * NSEL); the NSEL counters count only on teardown and update events, so
 * the other events carry octets and packets 0 unless IE 1/2 said more.
 */
typedef struct fdx_flow {
    fdx_addr src, dst;
    fdx_addr exporter;        /* exporter address, :: when unknown */
    uint64_t octets, packets;
    uint64_t rev_octets, rev_packets;
    uint64_t first_ms, last_ms;
    uint32_t sampling;        /* 1-in-N packet sampling; 0 or 1: none known */
    uint32_t domain;          /* v9 source id / IPFIX observation domain */
    uint16_t sport, dport;
    uint16_t exporter_port;
    uint16_t template_id;     /* 0 for v5 and nfcapd */
    uint8_t proto;
    uint8_t tcp_flags;
    uint8_t source;           /* enum fdx_flow_source */
    uint8_t flags;            /* FDX_FLOW_* */
    uint8_t fw_event;         /* firewall event (NSEL, IE 233), 0: none */
} fdx_flow;

/*
 * Called once per decoded record.  The record is only valid during the
 * call.  Returning non-zero stops the reader, which then returns that value.
 */
typedef int (*fdx_flow_fn)(void *ud, const fdx_flow *flow);

/* Counters kept by readers and decoders; all monotonic. */
typedef struct fdx_read_stats {
    uint64_t files;
    uint64_t packets;          /* capture frames read */
    uint64_t datagrams;        /* export datagrams decoded */
    uint64_t flows;            /* records handed to the callback */
    uint64_t skipped_frames;   /* frames that were not export datagrams */
    uint64_t bad_datagrams;    /* datagrams rejected as malformed */
    uint64_t bad_records;      /* records or sets skipped as malformed */
    uint64_t no_template;      /* data sets still without a template */
    uint64_t seq_lost;         /* records/datagrams missing by sequence */
    uint64_t limit_hits;       /* a documented cap was reached */
    uint64_t refused;          /* datagrams refused at the session cap */
    uint64_t sessions_evicted; /* idle sessions freed for a new one */
    uint64_t sessions_expired; /* sessions freed after max_idle_s */
} fdx_read_stats;

/*
 * Counters of one exporter session of a NetFlow/IPFIX decoder: exporter
 * address and port, version and source id / observation domain.
 * seq_lost counts what the exporter's sequence numbers say is missing:
 * datagrams for v9, records for v5 and IPFIX.
 */
typedef struct fdx_nf_session_stats {
    fdx_addr exporter;
    uint16_t port;
    uint8_t version;           /* 5, 9 or 10 */
    uint32_t domain;
    uint32_t templates;        /* templates and options templates held */
    uint64_t datagrams;        /* IPFIX: messages (several may share one) */
    uint64_t flows;
    uint64_t bad_records;
    uint64_t no_template;      /* data sets dropped or still waiting */
    uint64_t seq_lost;
    uint64_t limit_hits;       /* caps this session reached */
} fdx_nf_session_stats;

/* Called once per session; the record is only valid during the call. */
typedef void (*fdx_nf_session_fn)(void *ud, const fdx_nf_session_stats *s);

/* ---------------------------------------------------------------- */
/* NetFlow v5 / v9 / IPFIX datagram decoder                          */
/* ---------------------------------------------------------------- */

typedef struct fdx_nf_decoder fdx_nf_decoder;

/*
 * Caps that bound a decoder's memory whatever arrives; 0 means default
 * (in brackets).  Each cap reached is counted in limit_hits (and in the
 * session's own) and logged:
 *   max_exporters       exporter sessions (address, port, version,
 *                       domain) [256].  When the table is full, a new
 *                       session replaces the least recently used one if
 *                       that one received nothing for 10 minutes (counted
 *                       in sessions_evicted); else its datagram is refused
 *   max_templates       templates and options templates per session [1024]
 *   max_fields          fields per template [256]; a longer one is refused
 *   max_pending_bytes   early data sets kept per session, at most 16 of
 *                       them, each for 64 datagrams [64 KiB]; the oldest
 *                       make room
 *   max_template_bytes  all templates of the decoder together [16 MiB]
 *   max_exporter_template_bytes
 *                       templates of all sessions of one exporter address
 *                       [max_template_bytes / 8, at least 1 MiB; 2 MiB
 *                       with the defaults], at most max_template_bytes,
 *                       so that one exporter cannot take the whole budget
 *   max_idle_s          a session that received nothing for longer is
 *                       freed with its templates (sessions_expired), by
 *                       the receive times given to fdx_nf_decode().
 *                       0 (the default): never, as a capture read later
 *                       may have gaps after which its templates still
 *                       hold; a collector should set it (flowdex collect:
 *                       3600)
 * A decoder never holds more than
 *   max_template_bytes + max_exporters * (max_pending_bytes + 4 KiB)
 * bytes: 33 MiB with the defaults.
 */
typedef struct fdx_nf_limits {
    uint32_t max_exporters;
    uint32_t max_templates;
    uint32_t max_fields;
    uint32_t max_pending_bytes;
    uint32_t max_template_bytes;
    uint32_t max_exporter_template_bytes;
    uint32_t max_idle_s;
} fdx_nf_limits;

/* Bytes of session state per exporter allowed for in that bound. */
#define FDX_NF_SESSION_BYTES 4096u

/*
 * Creates a decoder that keeps templates per exporter address, port and
 * observation domain.  limits and log may be NULL.  Returns NULL when out
 * of memory.  The caller frees it with fdx_nf_decoder_free().
 */
fdx_nf_decoder *fdx_nf_decoder_new(const fdx_nf_limits *limits,
                                   const fdx_logger *log);
void fdx_nf_decoder_free(fdx_nf_decoder *dec);

/*
 * Decodes one export datagram received from exporter:port at recv_ms
 * (UTC ms), which is also the clock by which sessions are idle (see
 * fdx_nf_limits; a time before a session's last datagram counts as no
 * idleness).  Malformed parts are skipped, counted and logged; whatever
 * can safely be decoded is still passed to fn.  Returns the number of
 * records passed to fn, a negative FDX_E* code when the whole datagram
 * was rejected, or the non-zero value fn returned to stop.
 */
int fdx_nf_decode(fdx_nf_decoder *dec, const fdx_addr *exporter,
                  uint16_t port, const uint8_t *buf, size_t len,
                  uint64_t recv_ms, fdx_flow_fn fn, void *ud);

/* Copies the decoder's counters into *st. */
void fdx_nf_decoder_stats(const fdx_nf_decoder *dec, fdx_read_stats *st);

/* Calls fn for every session the decoder holds, most recent first. */
void fdx_nf_decoder_sessions(const fdx_nf_decoder *dec,
                             fdx_nf_session_fn fn, void *ud);

/* ---------------------------------------------------------------- */
/* Files                                                             */
/* ---------------------------------------------------------------- */

/*
 * Options of the readers; every member may be NULL.  session_fn, when set,
 * is called for every exporter session of a capture or IPFIX file once
 * the file was read (nfcapd files have none).
 */
typedef struct fdx_read_opts {
    const fdx_logger *log;
    const fdx_nf_limits *limits;
    fdx_nf_session_fn session_fn;
    void *session_ud;
} fdx_read_opts;

/*
 * Reads one input path: an nfcapd file (nfdump 1.6 or 1.7 layout, any
 * compression), a pcap or pcapng capture of export datagrams, or a
 * directory of such files (read in name order, not recursively into
 * hidden entries).  The format is told from the file's first bytes, not
 * its name.  Calls fn for every record.  stats (may be NULL) is added to.
 *
 * Returns 0 at the end of the input, the non-zero value fn returned, or a
 * negative FDX_E* code with err naming the file and the byte offset.
 */
int fdx_read_path(const char *path, const fdx_read_opts *opts,
                  fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                  fdx_error *err);

/* Individual readers, used by fdx_read_path(). Same contract. */
int fdx_read_nfcapd(const char *path, const fdx_read_opts *opts,
                    fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                    fdx_error *err);
int fdx_read_capture(const char *path, const fdx_read_opts *opts,
                     fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                     fdx_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_FLOW_H */
