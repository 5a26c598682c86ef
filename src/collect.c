/*
 * The collector's state: datagrams in, records through the decoder into
 * the stream, recomputed hosts batched and written to the store in one
 * transaction per commit, and a status file of counters after each.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"

uint64_t collect_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Exporters gone silent for this long (not even a template refresh,
 * 10 to 30 minutes by default) are forgotten with their templates. */
#define COLLECT_SESSION_IDLE_S 3600

int collect_init(collect *c, const fdx_catalog *cat, const fdx_logger *log)
{
    fdx_nf_limits lim;
    fdx_stream_opts so;

    memset(c, 0, sizeof(*c));
    memset(&lim, 0, sizeof(lim));
    lim.max_idle_s = COLLECT_SESSION_IDLE_S;
    memset(&so, 0, sizeof(so));
    so.log = log;
    so.for_merge = 1;   /* the store applies the merged claim */
    c->cat = cat;
    c->log = log;
    c->started_ms = collect_wall_ms();
    c->dec = fdx_nf_decoder_new(&lim, log);
    c->stream = fdx_stream_new(cat, &so);
    if (c->dec == NULL || c->stream == NULL) {
        collect_free(c);
        return FDX_ENOMEM;
    }
    return 0;
}

static void batch_clear(collect *c)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        free(c->batch[i].packages);
        free(c->batch[i].evidence);
        free((void *)c->batch[i].scores);
    }
    c->nbatch = 0;
}

void collect_free(collect *c)
{
    batch_clear(c);
    free(c->batch);
    c->batch = NULL;
    c->batch_cap = 0;
    fdx_stream_free(c->stream);
    fdx_nf_decoder_free(c->dec);
    c->stream = NULL;
    c->dec = NULL;
}

static size_t exporter_slot(const fdx_addr *a, uint16_t port)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ port;

    for (size_t i = 0; i < sizeof(a->b); i++)
        h = (h ^ a->b[i]) * 0x100000001b3ULL;
    return (size_t)(h ^ (h >> 29)) % (2 * COLLECT_EXPORTERS_MAX);
}

/* The counters of sender addr:port; past the table, the shared row.
 * Rows are never removed, so the index only grows; at most half full,
 * a probe ends at an empty slot.  A sender the allow-list refuses gets
 * a new row only while a quarter of the table is still free, so that
 * refused senders cannot take every row from the exporters. */
static collect_exporter *exporter_get(collect *c, const fdx_addr *a,
                                      uint16_t port, int refused)
{
    size_t n = 2 * COLLECT_EXPORTERS_MAX, i = exporter_slot(a, port);

    for (; c->exp_index[i] != 0; i = (i + 1) % n) {
        collect_exporter *e = &c->exp[c->exp_index[i] - 1];

        if (e->port == port && fdx_addr_cmp(&e->addr, a) == 0)
            return e;
    }
    if (c->nexp == COLLECT_EXPORTERS_MAX ||
        (refused && c->nexp >= COLLECT_EXPORTERS_MAX / 4 * 3))
        return &c->other;
    memset(&c->exp[c->nexp], 0, sizeof(c->exp[0]));
    c->exp[c->nexp].addr = *a;
    c->exp[c->nexp].port = port;
    c->exp_index[i] = (uint16_t)(c->nexp + 1);
    return &c->exp[c->nexp++];
}

/* Feeds the stream and moves the flow clock. */
static int feed_flow(void *ud, const fdx_flow *f)
{
    collect *c = ud;

    if (!(f->flags & (FDX_FLOW_TIME_BAD | FDX_FLOW_NO_TIME)) &&
        f->last_ms > c->clock_ms) {
        uint64_t wall = collect_wall_ms();

        /* a clock far ahead of ours would close everything at once:
         * one record stamped ahead moves it for every exporter */
        if (f->last_ms <= wall + COLLECT_CLOCK_AHEAD_MS) {
            c->clock_ms = f->last_ms;
            c->clock_wall_ms = wall;
        }
    }
    return fdx_stream_add(c->stream, f);
}

void collect_datagram(collect *c, const fdx_addr *sender, uint16_t port,
                      const uint8_t *buf, size_t len)
{
    int refused = c->allow != NULL && !udp_allow_match(c->allow, sender);
    collect_exporter *e = exporter_get(c, sender, port, refused);
    char a[FDX_ADDRSTRLEN];
    int rc;

    if (refused) {
        e->dropped++;
        return;
    }
    e->received++;
    rc = fdx_nf_decode(c->dec, sender, port, buf, len, collect_wall_ms(),
                       feed_flow, c);
    if (rc >= 0) {
        e->records += (uint64_t)rc;
        return;
    }
    e->malformed++;
    if (c->log != NULL && c->log->max_level >= FDX_LOG_DEBUG) {
        char line[256];

        snprintf(line, sizeof(line), "event=malformed exporter=%s port=%u "
                 "bytes=%zu error=%s", fdx_addr_format(sender, a, sizeof(a)),
                 port, len, fdx_error_name(rc));
        c->log->fn(c->log->ud, FDX_LOG_DEBUG, line);
    }
}

uint64_t collect_now_ms(const collect *c)
{
    uint64_t wall = collect_wall_ms();

    if (c->clock_ms == 0)
        return 0;
    return c->clock_ms + (wall > c->clock_wall_ms ? wall - c->clock_wall_ms
                                                  : 0);
}

/* Deep copy of h into the batch, replacing an older copy of its host. */
static int batch_add(void *ud, const fdx_host *h)
{
    collect *c = ud;
    fdx_host cp = *h, *slot = NULL;
    size_t pb = h->npackages * sizeof(*h->packages);
    size_t eb = h->nevidence * sizeof(*h->evidence);
    size_t sb = h->nscores * sizeof(*h->scores);
    fdx_os_score *sc = sb ? malloc(sb) : NULL;

    cp.packages = pb ? malloc(pb) : NULL;
    cp.evidence = eb ? malloc(eb) : NULL;
    cp.scores = sc;
    if ((pb && cp.packages == NULL) || (eb && cp.evidence == NULL) ||
        (sb && sc == NULL))
        goto nomem;
    if (pb)
        memcpy(cp.packages, h->packages, pb);
    if (eb)
        memcpy(cp.evidence, h->evidence, eb);
    if (sb)
        memcpy(sc, h->scores, sb);

    /* Only a batch a failed commit kept can hold the host already. */
    for (size_t i = 0; i < c->nbatch && c->commit_failures > 0; i++)
        if (fdx_addr_cmp(&c->batch[i].addr, &h->addr) == 0)
            slot = &c->batch[i];
    if (slot != NULL) {
        free(slot->packages);
        free(slot->evidence);
        free((void *)slot->scores);
        *slot = cp;
        return 0;
    }
    if (c->nbatch == c->batch_cap) {
        size_t cap = c->batch_cap ? c->batch_cap * 2 : 64;
        fdx_host *nb = realloc(c->batch, cap * sizeof(*nb));

        if (nb == NULL)
            goto nomem;
        c->batch = nb;
        c->batch_cap = cap;
    }
    c->batch[c->nbatch++] = cp;
    return 0;
nomem:
    free(cp.packages);
    free(cp.evidence);
    free(sc);
    return FDX_ENOMEM;
}

int collect_commit(collect *c, fdx_store *st, int final, fdx_error *err)
{
    int rc;

    rc = final ? fdx_stream_flush(c->stream, batch_add, c)
               : fdx_stream_advance(c->stream, collect_now_ms(c),
                                    batch_add, c);
    if (rc < 0)
        return fdx_error_set(err, rc, "stream: %s", fdx_strerror(rc));

    if (c->nbatch == 0) {
        c->last_commit_ms = collect_wall_ms();
        c->commit_failing = 0;
        return 0;
    }
    rc = fdx_store_put_hosts(st, c->cat, c->batch, c->nbatch,
                             c->collector_id, err);
    if (rc < 0) {
        c->commit_failures++;
        c->commit_failing++;
        return rc;
    }
    c->commit_failing = 0;
    c->commits++;
    c->hosts_written += c->nbatch;
    c->last_commit_ms = collect_wall_ms();
    batch_clear(c);
    return 0;
}

int collect_set_catalog(collect *c, const fdx_catalog *cat, fdx_store *st,
                        fdx_error *err)
{
    fdx_stream_opts so;
    fdx_stream *ns;
    int rc;

    if ((rc = collect_commit(c, st, 1, err)) < 0)
        return rc;
    memset(&so, 0, sizeof(so));
    so.log = c->log;
    so.for_merge = 1;
    if ((ns = fdx_stream_new(cat, &so)) == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "stream: out of memory");
    fdx_stream_free(c->stream);
    c->stream = ns;
    c->cat = cat;
    fdx_store_rebase(st);  /* the new engine's sums start from zero */
    return 0;
}

/* Copies the decoder's per-session counters onto the senders' rows. */
static void session_to_exporter(void *ud, const fdx_nf_session_stats *s)
{
    collect *c = ud;

    for (size_t i = 0; i < c->nexp; i++)
        if (c->exp[i].port == s->port &&
            fdx_addr_cmp(&c->exp[i].addr, &s->exporter) == 0) {
            c->exp[i].seq_lost += s->seq_lost;
            c->exp[i].bad_records += s->bad_records;
            return;
        }
}

static void status_exporter(FILE *f, const char *name,
                            const collect_exporter *e)
{
    fprintf(f, "%s received=%" PRIu64 " records=%" PRIu64
            " malformed=%" PRIu64 " dropped=%" PRIu64 " seq_lost=%" PRIu64
            " bad_records=%" PRIu64 "\n", name, e->received, e->records,
            e->malformed, e->dropped, e->seq_lost, e->bad_records);
}

/* A session the decoder evicts or expires takes its seq_lost and
 * bad_records along, so a sender's row can go down after an hour idle
 * (docs/known-limitations.md, Decoders). */
void collect_sessions_refresh(collect *c)
{
    for (size_t i = 0; i < c->nexp; i++)
        c->exp[i].seq_lost = c->exp[i].bad_records = 0;
    fdx_nf_decoder_sessions(c->dec, session_to_exporter, c);
}

static void status_exporters(FILE *f, collect *c)
{
    collect_exporter tot;
    char a[FDX_ADDRSTRLEN], name[FDX_ADDRSTRLEN + 32];

    collect_sessions_refresh(c);
    tot = c->other;
    for (size_t i = 0; i < c->nexp; i++) {
        const collect_exporter *e = &c->exp[i];

        fdx_addr_format(&e->addr, a, sizeof(a));
        snprintf(name, sizeof(name), strchr(a, ':') ? "exporter=[%s]:%u"
                 : "exporter=%s:%u", a, e->port);
        status_exporter(f, name, e);
        tot.received += e->received;
        tot.records += e->records;
        tot.malformed += e->malformed;
        tot.dropped += e->dropped;
        tot.seq_lost += e->seq_lost;
        tot.bad_records += e->bad_records;
    }
    if (c->other.received + c->other.dropped > 0)
        status_exporter(f, "exporter=other", &c->other);
    status_exporter(f, "total=all", &tot);
}

static void count_session(void *ud, const fdx_nf_session_stats *s)
{
    (void)s;
    ++*(size_t *)ud;
}

size_t collect_session_count(const collect *c)
{
    size_t n = 0;

    fdx_nf_decoder_sessions(c->dec, count_session, &n);
    return n;
}

static void status_decoder(FILE *f, const collect *c)
{
    fdx_read_stats r;
    size_t n = collect_session_count(c);

    fdx_nf_decoder_stats(c->dec, &r);
    fprintf(f, "decoder=counters sessions=%zu datagrams=%" PRIu64
            " flows=%" PRIu64 " bad_datagrams=%" PRIu64
            " bad_records=%" PRIu64 " no_template=%" PRIu64
            " seq_lost=%" PRIu64 " limit_hits=%" PRIu64
            " refused=%" PRIu64 " sessions_evicted=%" PRIu64
            " sessions_expired=%" PRIu64 "\n", n, r.datagrams, r.flows,
            r.bad_datagrams, r.bad_records, r.no_template, r.seq_lost,
            r.limit_hits, r.refused, r.sessions_evicted,
            r.sessions_expired);
}

static void status_stream(FILE *f, const collect *c)
{
    fdx_stream_stats s;

    fdx_stream_get_stats(c->stream, &s);
    fprintf(f, "stream=counters flows=%" PRIu64 " open=%" PRIu64
            " connections=%" PRIu64 " downloads=%" PRIu64
            " identified=%" PRIu64 " hosts=%" PRIu64
            " servers_known=%" PRIu64 " pending=%" PRIu64
            " conns_dropped=%" PRIu64 " hosts_dropped=%" PRIu64
            " evidence_dropped=%" PRIu64 "\n", s.flows, s.open,
            s.connections, s.downloads, s.identified, s.hosts,
            s.servers_known, s.pending, s.conns_dropped, s.hosts_dropped,
            s.evidence_dropped);
}

static void status_body(FILE *f, collect *c,
                        const collect_socket_info *socks, size_t nsocks)
{
    fprintf(f, "# flowdex collect status (flowdex-collect(8))\n");
    fprintf(f, "collector=%s pid=%ld started_ms=%" PRIu64
            " written_ms=%" PRIu64 " commits=%" PRIu64
            " commit_failures=%" PRIu64 " hosts_written=%" PRIu64
            " last_commit_ms=%" PRIu64 " batch_hosts=%zu"
            " queue_size=%" PRIu64 " queue_bytes=%" PRIu64
            " queue_peak=%" PRIu64 "\n",
            c->collector_id ? c->collector_id : "-", (long)getpid(),
            c->started_ms, collect_wall_ms(), c->commits,
            c->commit_failures, c->hosts_written, c->last_commit_ms,
            c->nbatch, c->queue_size, c->queue_bytes, c->queue_peak);
    for (size_t i = 0; i < nsocks; i++)
        fprintf(f, "listen=%s rcvbuf=%d datagrams=%" PRIu64
                " queue_drops=%" PRIu64 " kernel_drops=%" PRIu64 "\n",
                socks[i].listen, socks[i].rcvbuf_bytes, socks[i].datagrams,
                socks[i].queue_drops, socks[i].kernel_drops);
    status_exporters(f, c);
    status_decoder(f, c);
    status_stream(f, c);
}

int collect_write_status(collect *c, const char *path,
                         const collect_socket_info *socks, size_t nsocks)
{
    char tmp[4096];
    FILE *f;
    int e;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((f = fopen(tmp, "w")) == NULL)
        return -1;
    status_body(f, c, socks, nsocks);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}
