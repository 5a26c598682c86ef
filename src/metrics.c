/*
 * The Prometheus text exposition (format 0.0.4) of flowdex collect's
 * counters: "# HELP" and "# TYPE" lines, then one sample per line.
 * Counters end in _total; what can go down (open connections, hosts,
 * the uncommitted batch) is a gauge.  Every number is the status
 * file's, read at the time of the request rather than of the last
 * commit.
 */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "metrics.h"

/* One unlabelled sample of its own family. */
typedef struct scalar {
    const char *name, *type, *help;
    uint64_t v;
} scalar;

static void family(FILE *out, const char *name, const char *type,
                   const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_scalars(FILE *out, const scalar *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        family(out, s[i].name, s[i].type, s[i].help);
        fprintf(out, "%s %" PRIu64 "\n", s[i].name, s[i].v);
    }
}

void metrics_label_value(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void put_collector(FILE *out, const collect *c)
{
    family(out, "flowdex_collect_info", "gauge",
           "The collector's id (collector-id, \"-\" without) and version.");
    fputs("flowdex_collect_info{collector=", out);
    metrics_label_value(out, c->collector_id ? c->collector_id : "-");
    fputs(",version=\"" FDX_VERSION "\"} 1\n", out);
    family(out, "flowdex_collect_start_time_seconds", "gauge",
           "When the collector started, in seconds since the epoch.");
    fprintf(out, "flowdex_collect_start_time_seconds %" PRIu64 ".%03u\n",
            c->started_ms / 1000, (unsigned)(c->started_ms % 1000));
    family(out, "flowdex_collect_last_commit_timestamp_seconds", "gauge",
           "End of the last commit that left no host uncommitted "
           "(0: none yet).");
    fprintf(out, "flowdex_collect_last_commit_timestamp_seconds %" PRIu64
            ".%03u\n", c->last_commit_ms / 1000,
            (unsigned)(c->last_commit_ms % 1000));
}

static void put_commits(FILE *out, const collect *c)
{
    const scalar s[] = {
        {"flowdex_collect_commits_total", "counter",
         "Store transactions that wrote hosts.", c->commits},
        {"flowdex_collect_commit_failures_total", "counter",
         "Store transactions that failed (store errors); their hosts are "
         "kept for the next.", c->commit_failures},
        {"flowdex_collect_hosts_written_total", "counter",
         "Hosts written to the store.", c->hosts_written},
        {"flowdex_collect_batch_hosts", "gauge",
         "Hosts recomputed but not yet in the store.", c->nbatch},
        {"flowdex_queue_size_bytes", "gauge",
         "Capacity of the queue between the receive thread and the "
         "decoder.", c->queue_size},
        {"flowdex_queue_bytes", "gauge",
         "Bytes of datagrams waiting in that queue.", c->queue_bytes},
        {"flowdex_queue_peak_bytes", "gauge",
         "Most bytes the queue held at once since the start.",
         c->queue_peak},
    };

    put_scalars(out, s, sizeof(s) / sizeof(s[0]));
}

/* One counter of every listener: which 0 datagrams, 1 queue drops, 2
 * kernel drops. */
static void put_listener_counter(FILE *out, const collect_socket_info *socks,
                                 size_t n, const char *name,
                                 const char *help, int which)
{
    family(out, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = which == 0   ? socks[i].datagrams
                     : which == 1 ? socks[i].queue_drops
                                  : socks[i].kernel_drops;

        fprintf(out, "%s{listener=", name);
        metrics_label_value(out, socks[i].listen);
        fprintf(out, "} %" PRIu64 "\n", v);
    }
}

static void put_listeners(FILE *out, const collect_socket_info *socks,
                          size_t n)
{
    family(out, "flowdex_listen_rcvbuf_bytes", "gauge",
           "Receive buffer the kernel granted the UDP socket (Linux "
           "reports twice the usable size).");
    for (size_t i = 0; i < n; i++) {
        fputs("flowdex_listen_rcvbuf_bytes{listener=", out);
        metrics_label_value(out, socks[i].listen);
        fprintf(out, "} %d\n", socks[i].rcvbuf_bytes);
    }
    put_listener_counter(out, socks, n, "flowdex_listen_datagrams_total",
                         "Datagrams the receive thread read.", 0);
    put_listener_counter(out, socks, n, "flowdex_listen_queue_drops_total",
                         "Datagrams read but dropped: the queue to the "
                         "decoder was full.", 1);
    put_listener_counter(out, socks, n, "flowdex_listen_kernel_drops_total",
                         "Datagrams the kernel dropped, its socket buffer "
                         "full (SO_RXQ_OVFL).", 2);
}

/* The per-exporter families: each a field of collect_exporter. */
static const struct {
    const char *name, *help;
    size_t off;
} exporter_fields[] = {
    {"flowdex_exporter_datagrams_total", "Datagrams accepted from the "
     "exporter (status: received).", offsetof(collect_exporter, received)},
    {"flowdex_exporter_records_total", "Flow records decoded from them.",
     offsetof(collect_exporter, records)},
    {"flowdex_exporter_malformed_datagrams_total", "Datagrams the decoder "
     "rejected whole.", offsetof(collect_exporter, malformed)},
    {"flowdex_exporter_dropped_datagrams_total", "Datagrams refused by the "
     "allow-list.", offsetof(collect_exporter, dropped)},
    {"flowdex_exporter_sequence_lost_total", "Missing by the exporter's "
     "sequence numbers: datagrams for v9, records for v5 and IPFIX.",
     offsetof(collect_exporter, seq_lost)},
    {"flowdex_exporter_bad_records_total", "Records or sets skipped as "
     "malformed.", offsetof(collect_exporter, bad_records)},
};

static uint64_t field_of(const collect_exporter *e, size_t off)
{
    uint64_t v;

    memcpy(&v, (const char *)e + off, sizeof(v));
    return v;
}

/* One sample; e NULL is the shared row of senders past the table. */
static void put_exporter(FILE *out, const char *name, size_t off,
                         const collect_exporter *e, const collect *c)
{
    char a[FDX_ADDRSTRLEN];

    fprintf(out, "%s{exporter=", name);
    if (e == NULL) {
        fputs("\"other\",port=\"\"", out);
        e = &c->other;
    } else {
        metrics_label_value(out, fdx_addr_format(&e->addr, a, sizeof(a)));
        fprintf(out, ",port=\"%u\"", e->port);
    }
    fprintf(out, "} %" PRIu64 "\n", field_of(e, off));
}

static void put_exporters(FILE *out, collect *c)
{
    size_t nf = sizeof(exporter_fields) / sizeof(exporter_fields[0]);
    int other = c->other.received + c->other.dropped > 0;

    collect_sessions_refresh(c);
    for (size_t f = 0; f < nf; f++) {
        family(out, exporter_fields[f].name, "counter",
               exporter_fields[f].help);
        for (size_t i = 0; i < c->nexp; i++)
            put_exporter(out, exporter_fields[f].name,
                         exporter_fields[f].off, &c->exp[i], c);
        if (other)
            put_exporter(out, exporter_fields[f].name,
                         exporter_fields[f].off, NULL, c);
    }
}

static void put_decoder(FILE *out, const collect *c)
{
    fdx_read_stats r;

    fdx_nf_decoder_stats(c->dec, &r);
    const scalar s[] = {
        {"flowdex_decoder_sessions", "gauge", "Exporter sessions held "
         "(at most 256).", collect_session_count(c)},
        {"flowdex_decoder_datagrams_total", "counter", "Export datagrams "
         "decoded.", r.datagrams},
        {"flowdex_decoder_flows_total", "counter", "Flow records "
         "decoded.", r.flows},
        {"flowdex_decoder_bad_datagrams_total", "counter", "Datagrams "
         "rejected as malformed.", r.bad_datagrams},
        {"flowdex_decoder_bad_records_total", "counter", "Records or "
         "sets skipped as malformed.", r.bad_records},
        {"flowdex_decoder_no_template_total", "counter", "Data sets "
         "without a template.", r.no_template},
        {"flowdex_decoder_sequence_lost_total", "counter", "Records or "
         "datagrams missing by sequence.", r.seq_lost},
        {"flowdex_decoder_limit_hits_total", "counter", "Times a "
         "documented cap was reached.", r.limit_hits},
        {"flowdex_decoder_refused_datagrams_total", "counter", "Datagrams "
         "of a new session refused at the session cap.", r.refused},
        {"flowdex_decoder_sessions_evicted_total", "counter", "Sessions "
         "silent for 10 minutes freed for a new one at the session cap.",
         r.sessions_evicted},
        {"flowdex_decoder_sessions_expired_total", "counter", "Sessions "
         "freed after an hour of silence.", r.sessions_expired},
    };

    put_scalars(out, s, sizeof(s) / sizeof(s[0]));
}

static void put_stream(FILE *out, const collect *c)
{
    fdx_stream_stats t;

    fdx_stream_get_stats(c->stream, &t);
    const scalar s[] = {
        {"flowdex_stream_flows_total", "counter", "Records the engine "
         "took.", t.flows},
        {"flowdex_stream_open_connections", "gauge", "Connections open "
         "now.", t.open},
        {"flowdex_stream_connections_total", "counter", "Connections "
         "closed and matched.", t.connections},
        {"flowdex_stream_downloads_total", "counter", "Connections taken "
         "for downloads.", t.downloads},
        {"flowdex_stream_identified_total", "counter", "Downloads that "
         "fitted one catalog file.", t.identified},
        {"flowdex_stream_hosts", "gauge", "Hosts with evidence now.",
         t.hosts},
        {"flowdex_stream_servers_known", "gauge", "Repository servers "
         "known now (HTTP and TLS).", t.servers_known},
        {"flowdex_stream_pending_connections", "gauge", "Connections "
         "waiting for their server's calibration.", t.pending},
        {"flowdex_stream_conns_dropped_total", "counter", "Records of new "
         "connections dropped at the cap.", t.conns_dropped},
        {"flowdex_stream_hosts_dropped_total", "counter", "Hosts dropped "
         "at the cap.", t.hosts_dropped},
        {"flowdex_stream_evidence_dropped_total", "counter", "Evidence "
         "dropped at the cap.", t.evidence_dropped},
    };

    put_scalars(out, s, sizeof(s) / sizeof(s[0]));
}

static void put_http(FILE *out, const httpd *h)
{
    const scalar s[] = {
        {"flowdex_metrics_requests_total", "counter", "Requests to this "
         "endpoint, this one included.", h->requests},
        {"flowdex_metrics_connections_evicted_total", "counter",
         "Connections closed for a newer one, all 8 slots being taken.",
         h->evicted},
        {"flowdex_metrics_connections_timed_out_total", "counter",
         "Connections closed unanswered or unread after 5 s.",
         h->timed_out},
    };

    put_scalars(out, s, sizeof(s) / sizeof(s[0]));
}

int metrics_write(FILE *out, collect *c, const collect_socket_info *socks,
                  size_t nsocks, const httpd *http)
{
    put_collector(out, c);
    put_commits(out, c);
    put_listeners(out, socks, nsocks);
    put_exporters(out, c);
    put_decoder(out, c);
    put_stream(out, c);
    if (http != NULL)
        put_http(out, http);
    return ferror(out) ? -1 : 0;
}
