/*
 * NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) datagram decoder.
 *
 * One datagram in, zero or more fdx_flow records out.  v9 and IPFIX are
 * walked by their set lengths only: the v9 header count is ignored because
 * exporters disagree on what it counts.  Templates, sampling announced in
 * options records and the IPFIX system init time are kept per session
 * (exporter address, port, version, source id / observation domain).  Data
 * sets that arrive before their template are copied (bounded) and decoded
 * when the template comes.  Every length read from the datagram is checked
 * against what remains before it is used; a malformed set or record is
 * counted, logged (rate-limited) and skipped.
 */
#include <string.h>

#include "internal.h"
#include "netflow_int.h"

/* What fdx_nf_limits promises a session takes besides its early data. */
_Static_assert(sizeof(nf_session) + 2 * sizeof(nf_session *) +
                   NF_MAX_PENDING_SETS * 32 <= FDX_NF_SESSION_BYTES,
               "nf_session outgrew FDX_NF_SESSION_BYTES");

/* Message context while one datagram (or one pending set) is decoded. */
typedef struct nf_ctx {
    fdx_nf_decoder *dec;
    nf_session *s;
    nf_hdr h;
    fdx_flow_fn fn;
    void *ud;
    int count;          /* records passed to fn */
    int stop;           /* fn's non-zero return value */
    uint32_t nrecords;  /* data records (options included) seen */
    int unknown_sets;   /* data sets without a template in this message */
    size_t addr_bytes;  /* template bytes of the exporter address ... */
    int has_addr_bytes; /* ... when known (see nf_exporter_bytes()) */
} nf_ctx;

/* Values of one data record, collected field by field. */
typedef struct nf_rec {
    fdx_flow f;
    uint64_t oct[4], pkt[4]; /* by preference: IE 1, 85, 23, 231/298 */
    uint8_t has_oct, has_pkt; /* bit per index */
    uint8_t has_sport, has_dport, has_proto, has_flags;
    /* addresses per direction (source, destination) and family (v4, v6):
     * a template may carry both families, the unused one as zeros */
    fdx_addr addr[2][2];
    uint8_t has_addr[2][2], addr_nonzero[2][2];
    uint8_t first_v6;       /* family of the first address field + 1 */
    uint8_t ip_version;     /* IE 60, 0 when absent */
    uint8_t has_rev;
    /* NSEL: firewall event (IE 233, v9 40005), 0 when absent, and the
     * responder counters 232/299, used only on some events */
    uint8_t fw_event, has_fw_event;
    uint64_t fw_rev_oct, fw_rev_pkt;
    uint8_t has_fw_rev;     /* bit 0 octets, bit 1 packets */
    /* times: 0 none, 1 sysUptime-relative, 2 absolute */
    uint8_t tkind[2];
    uint64_t tval[2];       /* ms (absolute) or uptime ms */
    uint8_t time_bad;
    /* sampling and options */
    uint64_t smp_id;
    uint8_t has_smp_id;
    uint64_t in_if;         /* IE 10, or a v9 interface scope */
    uint8_t has_in_if;
    uint32_t smp_interval;  /* 34, 50 or 305/306 */
    uint64_t pkt_interval, pkt_space;
    uint64_t init_ms;
    uint8_t has_init;
    /* an integer element too long for its value (the record is bad) */
    uint8_t bad_int;
} nf_rec;

static const uint64_t NF_NTP_UNIX = 2208988800u; /* 1900 -> 1970, seconds */
static const uint64_t NF_MIN_SANE_MS = 315532800000u; /* 1980-01-01 */
static const uint64_t NF_DAY_MS = 86400000u;

/* ---------------------------------------------------------------- */
/* Logging                                                           */
/* ---------------------------------------------------------------- */

/*
 * Hostile input can make every datagram malformed, so after a burst only
 * one malformed-input line in NF_LOG_EVERY is written.  Returns the
 * number of the event (from 1), or 0 when no line is to be written.
 */
static uint64_t nf_log_turn(fdx_nf_decoder *dec)
{
    uint64_t n = dec->nbad_logged++;

    if (!fdx__log_enabled(&dec->log, FDX_LOG_WARN))
        return 0;
    if (n >= NF_LOG_BURST && n % NF_LOG_EVERY != 0)
        return 0;
    return n + 1;
}

/*
 * Logs one malformed-input event with its context: exporter, port,
 * version, domain, template and offset within the datagram.  seen counts
 * the events so far, this one included.
 */
static void nf_warn(fdx_nf_decoder *dec, const nf_session *s,
                    unsigned tid, size_t off, const char *what)
{
    char ab[FDX_ADDRSTRLEN];
    uint64_t n = nf_log_turn(dec);

    if (n == 0)
        return;
    fdx__log(&dec->log, FDX_LOG_WARN, "netflow: %s exporter=%s port=%u "
             "version=%u domain=%lu template=%u offset=%zu seen=%llu",
             what, fdx_addr_format(&s->exporter, ab, sizeof(ab)),
             (unsigned)s->port, (unsigned)s->version,
             (unsigned long)s->domain, tid, off, (unsigned long long)n);
}

/* The same for a datagram refused before its session was known. */
static void nf_warn_dgram(fdx_nf_decoder *dec, const fdx_addr *a,
                          uint16_t port, const uint8_t *buf, size_t len,
                          const char *what)
{
    char ab[FDX_ADDRSTRLEN];
    uint64_t n = nf_log_turn(dec);

    if (n == 0)
        return;
    fdx__log(&dec->log, FDX_LOG_WARN, "netflow: %s exporter=%s port=%u "
             "version=%u length=%zu offset=0 seen=%llu", what,
             fdx_addr_format(a, ab, sizeof(ab)), (unsigned)port,
             len >= 2 ? (unsigned)fdx__be16(buf) : 0u, len,
             (unsigned long long)n);
}

static void nf_bad(nf_ctx *c, unsigned tid, size_t off, const char *what)
{
    c->dec->st.bad_records++;
    c->s->st.bad_records++;
    nf_warn(c->dec, c->s, tid, off, what);
}

/* A cap reached by the current session: counted there and in all. */
static void nf_limit(nf_ctx *c)
{
    c->dec->st.limit_hits++;
    c->s->st.limit_hits++;
}

/* ---------------------------------------------------------------- */
/* Decoder and sessions                                              */
/* ---------------------------------------------------------------- */

/*
 * One exporter address's share of the template budget: an eighth, so
 * that a flooding exporter leaves 7/8 to the others, but at least 1 MiB
 * (500 templates of the largest allowed size), and never more than the
 * budget itself.
 */
static void nf_limits_share(fdx_nf_limits *lim)
{
    uint32_t share = lim->max_template_bytes / NF_EXPORTER_SHARE;

    if (share < NF_EXPORTER_MIN_BYTES)
        share = NF_EXPORTER_MIN_BYTES;
    if (lim->max_exporter_template_bytes == 0)
        lim->max_exporter_template_bytes = share;
    if (lim->max_exporter_template_bytes > lim->max_template_bytes)
        lim->max_exporter_template_bytes = lim->max_template_bytes;
}

fdx_nf_decoder *fdx_nf_decoder_new(const fdx_nf_limits *limits,
                                   const fdx_logger *log)
{
    fdx_nf_decoder *dec = fdx__calloc(1, sizeof(*dec));

    if (dec == NULL)
        return NULL;
    if (limits != NULL)
        dec->lim = *limits;
    if (dec->lim.max_exporters == 0)
        dec->lim.max_exporters = NF_DEF_EXPORTERS;
    if (dec->lim.max_templates == 0)
        dec->lim.max_templates = NF_DEF_TEMPLATES;
    if (dec->lim.max_fields == 0)
        dec->lim.max_fields = NF_DEF_FIELDS;
    if (dec->lim.max_pending_bytes == 0)
        dec->lim.max_pending_bytes = NF_DEF_PENDING;
    if (dec->lim.max_template_bytes == 0)
        dec->lim.max_template_bytes = NF_DEF_TEMPLATE_BYTES;
    nf_limits_share(&dec->lim);
    if (log != NULL)
        dec->log = *log;
    return dec;
}

static void nf_pending_drop(nf_session *s, size_t i)
{
    s->pend_bytes -= s->pend[i].len;
    fdx__free(s->pend[i].body);
    memmove(&s->pend[i], &s->pend[i + 1],
            (s->npend - i - 1) * sizeof(s->pend[0]));
    s->npend--;
}

static void nf_session_free(nf_session *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ntpl; i++)
        fdx__free(s->tpl[i].fields);
    fdx__free(s->tpl);
    while (s->npend > 0)
        nf_pending_drop(s, s->npend - 1);
    fdx__free(s);
}

void fdx_nf_decoder_free(fdx_nf_decoder *dec)
{
    if (dec == NULL)
        return;
    for (size_t i = 0; i < dec->nsess; i++)
        nf_session_free(dec->sess[i]);
    fdx__free(dec->sess);
    fdx__free(dec);
}

void fdx_nf_decoder_stats(const fdx_nf_decoder *dec, fdx_read_stats *st)
{
    *st = dec->st;
    /* data sets still waiting for their template count as without one */
    for (size_t i = 0; i < dec->nsess; i++)
        st->no_template += dec->sess[i]->npend;
}

void fdx_nf_decoder_sessions(const fdx_nf_decoder *dec,
                             fdx_nf_session_fn fn, void *ud)
{
    fdx_nf_session_stats st;

    for (size_t i = 0; i < dec->nsess; i++) {
        const nf_session *s = dec->sess[i];

        st = s->st;
        st.templates = (uint32_t)s->ntpl;
        st.no_template += s->npend;
        fn(ud, &st);
    }
}

static int nf_session_match(const nf_session *s, const fdx_addr *a,
                            uint16_t port, uint8_t version, uint32_t domain)
{
    return s->port == port && s->version == version && s->domain == domain &&
           fdx_addr_cmp(&s->exporter, a) == 0;
}

/* Time since the session's last datagram; none if now_ms is earlier. */
static uint64_t nf_idle_ms(const nf_session *s, uint64_t now_ms)
{
    return now_ms > s->last_ms ? now_ms - s->last_ms : 0;
}

/* One line per session freed while the decoder runs, at info level. */
static void nf_session_log(const fdx_nf_decoder *dec, const nf_session *s,
                           uint64_t now_ms, const char *what)
{
    char ab[FDX_ADDRSTRLEN];

    if (!fdx__log_enabled(&dec->log, FDX_LOG_INFO))
        return;
    fdx__log(&dec->log, FDX_LOG_INFO, "netflow: session %s exporter=%s "
             "port=%u version=%u domain=%lu idle_s=%llu templates=%zu",
             what, fdx_addr_format(&s->exporter, ab, sizeof(ab)),
             (unsigned)s->port, (unsigned)s->version,
             (unsigned long)s->domain,
             (unsigned long long)(nf_idle_ms(s, now_ms) / 1000), s->ntpl);
}

/*
 * Frees the least recently used session (the last).  Its templates give
 * their bytes back to the budget, and its early data sets that still
 * waited for a template now count as without one for good, as
 * fdx_nf_decoder_stats() counted them while the session lived.
 */
static void nf_session_drop_last(fdx_nf_decoder *dec, uint64_t now_ms,
                                 const char *what)
{
    nf_session *s = dec->sess[dec->nsess - 1];

    nf_session_log(dec, s, now_ms, what);
    dec->tpl_bytes -= s->tpl_bytes;
    dec->st.no_template += s->npend;
    nf_session_free(s);
    dec->nsess--;
}

/*
 * With max_idle_s set, frees the sessions idle for longer, from the least
 * recently used end, stopping at the first that is not: a datagram costs
 * one comparison when nothing expires.  Receive times that go backwards
 * leave the list in arrival order, so an expired session may wait behind
 * a younger one for a while: freed lazily is all that is promised.
 */
static void nf_sessions_expire(fdx_nf_decoder *dec, uint64_t now_ms)
{
    uint64_t max_ms = (uint64_t)dec->lim.max_idle_s * 1000;

    if (max_ms == 0)
        return;
    while (dec->nsess > 0 &&
           nf_idle_ms(dec->sess[dec->nsess - 1], now_ms) > max_ms) {
        dec->st.sessions_expired++;
        nf_session_drop_last(dec, now_ms, "expired");
    }
}

/*
 * Makes room in a full table: the least recently used session, the last
 * (O(1): the list is kept in order of use), is freed if it has been idle
 * for NF_EVICT_IDLE_MS.  Returns 1 if it was.  Under a flood of new
 * sessions this frees at most max_exporters sessions per NF_EVICT_IDLE_MS,
 * which bounds the log lines too.
 */
static int nf_session_evict(fdx_nf_decoder *dec, uint64_t now_ms)
{
    if (dec->nsess == 0 ||
        nf_idle_ms(dec->sess[dec->nsess - 1], now_ms) < NF_EVICT_IDLE_MS)
        return 0;
    dec->st.sessions_evicted++;
    nf_session_drop_last(dec, now_ms, "evicted");
    return 1;
}

/*
 * The session of exporter a, moved to the front.  Sessions are few
 * (capped), so a linear search with move-to-front is enough.
 */
static nf_session *nf_session_find(fdx_nf_decoder *dec, const fdx_addr *a,
                                   uint16_t port, uint8_t version,
                                   uint32_t domain)
{
    for (size_t i = 0; i < dec->nsess; i++) {
        nf_session *s = dec->sess[i];

        if (!nf_session_match(s, a, port, version, domain))
            continue;
        memmove(&dec->sess[1], &dec->sess[0], i * sizeof(dec->sess[0]));
        dec->sess[0] = s;
        return s;
    }
    return NULL;
}

/* A new session at the front; the caller made room.  NULL: no memory. */
static nf_session *nf_session_new(fdx_nf_decoder *dec, const fdx_addr *a,
                                  uint16_t port, uint8_t version,
                                  uint32_t domain)
{
    nf_session *s;

    if (dec->nsess == dec->capsess) {
        size_t cap = dec->capsess ? dec->capsess * 2 : 8;
        nf_session **n = fdx__realloc(dec->sess, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        dec->sess = n;
        dec->capsess = cap;
    }
    s = fdx__calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->exporter = s->st.exporter = *a;
    s->port = s->st.port = port;
    s->version = s->st.version = version;
    s->domain = s->st.domain = domain;
    memmove(&dec->sess[1], &dec->sess[0], dec->nsess * sizeof(dec->sess[0]));
    dec->sess[0] = s;
    dec->nsess++;
    return s;
}

/*
 * Finds or creates the session of exporter a for the message being
 * decoded, and stamps it with the receive time.  Returns NULL when the
 * table is full of sessions too recent to evict (counted) or memory runs
 * out.  The session a datagram's earlier message used is stamped with
 * the same time, so neither expiry nor eviction can free it here.
 */
static nf_session *nf_session_get(nf_ctx *c, const fdx_addr *a,
                                  uint16_t port, uint8_t version,
                                  uint32_t domain)
{
    fdx_nf_decoder *dec = c->dec;
    uint64_t now_ms = c->h.recv_ms;
    nf_session *s;

    c->has_addr_bytes = 0; /* sessions of the address may be freed */
    nf_sessions_expire(dec, now_ms);
    s = nf_session_find(dec, a, port, version, domain);
    if (s == NULL) {
        if (dec->nsess >= dec->lim.max_exporters) {
            dec->st.limit_hits++;
            if (!nf_session_evict(dec, now_ms))
                return NULL; /* logged by the caller, which knows more */
        }
        s = nf_session_new(dec, a, port, version, domain);
        if (s == NULL)
            return NULL;
    }
    if (now_ms > s->last_ms)
        s->last_ms = now_ms;
    return s;
}

/*
 * Counts records or datagrams missing by sequence number.  v5 and IPFIX
 * number records, v9 numbers datagrams; advance is what this message adds.
 * A jump backwards or of more than 2^28 is taken as a restart.
 */
static void nf_seq_check(fdx_nf_decoder *dec, nf_session *s, uint32_t seq)
{
    uint32_t gap = seq - s->next_seq;

    if (s->has_seq && gap != 0 && gap < (1u << 28)) {
        dec->st.seq_lost += gap;
        s->st.seq_lost += gap;
    }
}

/* Why nf_session_get() returned NULL: the cap, or memory. */
static int nf_session_fail(const fdx_nf_decoder *dec)
{
    return dec->nsess >= dec->lim.max_exporters ? FDX_ELIMIT : FDX_ENOMEM;
}

static void nf_seq_advance(nf_session *s, uint32_t seq, uint32_t advance)
{
    s->next_seq = seq + advance;
    s->has_seq = 1;
}

/* ---------------------------------------------------------------- */
/* Times, sampling and the finished record                           */
/* ---------------------------------------------------------------- */

/*
 * init + uptime, where uptime is a 32-bit millisecond counter: of the
 * values that differ by multiples of 2^32 ms, takes the latest one not
 * more than a day after the export time.  This also reads softflowd's
 * IPFIX uptimes, which are negative 32-bit values (flows that began before
 * the init time it announces), the way they were meant.
 */
static uint64_t nf_uptime_wrap(const nf_ctx *c, uint64_t abs_ms)
{
    const int64_t wrap = (int64_t)1 << 32;
    int64_t limit = (int64_t)(c->h.export_ms + NF_DAY_MS);
    int64_t v = (int64_t)abs_ms, k;

    if (c->h.export_ms == 0 || abs_ms > (uint64_t)INT64_MAX / 2)
        return abs_ms;
    if (v > limit)
        k = -((v - limit + wrap - 1) / wrap);
    else
        k = (limit - v) / wrap;
    v += k * wrap;
    return v < 0 ? abs_ms : (uint64_t)v;
}

/* Absolute time of a sysUptime value, relative to the header. */
static uint64_t nf_uptime_abs(const nf_ctx *c, const nf_rec *r,
                              uint32_t t, uint8_t *bad)
{
    int64_t age;

    if (t == 0xFFFFFFFFu)
        *bad = 1;
    if (c->h.version == 10) {
        if (r->has_init)
            return nf_uptime_wrap(c, r->init_ms + t);
        if (c->s->has_init)
            return nf_uptime_wrap(c, c->s->init_ms + t);
        *bad = 1; /* no reference: IPFIX has no sysUptime in its header */
        return c->h.export_ms;
    }
    /* 32-bit difference: survives the uptime counter's wrap */
    age = (int32_t)(c->h.uptime_ms - t);
    if ((int64_t)c->h.export_ms < age) {
        *bad = 1;
        return 0;
    }
    return (uint64_t)((int64_t)c->h.export_ms - age);
}

/*
 * Fills first_ms/last_ms.  A time that cannot be right (before 1980,
 * more than a day after the export or receive time, end before start) is
 * kept but flagged FDX_FLOW_TIME_BAD.
 */
static void nf_rec_times(const nf_ctx *c, nf_rec *r)
{
    uint64_t t[2], ref = c->h.export_ms;
    uint8_t bad = r->time_bad;

    if (r->tkind[0] == 0 && r->tkind[1] == 0) {
        r->f.first_ms = r->f.last_ms = c->h.export_ms;
        r->f.flags |= FDX_FLOW_NO_TIME;
        return;
    }
    for (int i = 0; i < 2; i++) {
        int k = r->tkind[i] ? i : 1 - i; /* a missing end uses the start */
        if (r->tkind[k] == 1)
            t[i] = nf_uptime_abs(c, r, (uint32_t)r->tval[k], &bad);
        else
            t[i] = r->tval[k];
    }
    if (c->h.recv_ms > ref)
        ref = c->h.recv_ms;
    if (t[0] > t[1] || t[0] < NF_MIN_SANE_MS || t[1] > ref + NF_DAY_MS)
        bad = 1;
    r->f.first_ms = t[0];
    r->f.last_ms = t[1];
    if (bad)
        r->f.flags |= FDX_FLOW_TIME_BAD;
}

static uint32_t nf_sampler_find(const nf_session *s, uint64_t id,
                                int by_if)
{
    for (size_t i = 0; i < s->nsmp; i++)
        if (s->smp[i].id == id && s->smp[i].by_if == by_if)
            return s->smp[i].interval;
    return 0;
}

/* 1-in-N from samplingPacketInterval/Space (RFC 5476), 0 if unknown. */
static uint32_t nf_interval_space(uint64_t interval, uint64_t space)
{
    uint64_t n;

    if (interval == 0 || interval > UINT32_MAX || space > UINT32_MAX)
        return 0;
    n = (interval + space) / interval;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static uint32_t nf_rec_interval(const nf_rec *r)
{
    if (r->smp_interval != 0)
        return r->smp_interval;
    return nf_interval_space(r->pkt_interval, r->pkt_space);
}

/*
 * The record's own interval, else that of its sampler id, else that of
 * its ingress interface, else the one announced for the whole session.
 */
static void nf_rec_sampling(const nf_ctx *c, nf_rec *r)
{
    uint32_t n = nf_rec_interval(r);

    if (n == 0 && r->has_smp_id)
        n = nf_sampler_find(c->s, r->smp_id, 0);
    if (n == 0 && r->has_in_if)
        n = nf_sampler_find(c->s, r->in_if, 1);
    if (n == 0)
        n = c->s->def_sampling;
    r->f.sampling = n;
    if (n > 1)
        r->f.flags |= FDX_FLOW_SAMPLED;
}

static uint64_t nf_pick(const uint64_t v[4], uint8_t has)
{
    for (int i = 0; i < 4; i++)
        if (has & (1u << i))
            return v[i];
    return 0;
}

/*
 * NSEL counters (231/232, 298/299) of a firewall event record count the
 * connection only on an update (5) or teardown (2) event: a create event
 * carries at most its first packet, a denied or alert event no
 * connection at all, and joining either with the teardown of the same
 * connection would inflate its size.  Records without an event keep them.
 */
static void nf_rec_fw_counters(nf_rec *r)
{
    r->f.fw_event = r->fw_event;
    if (r->has_fw_event && r->fw_event != NF_FW_TEARDOWN &&
        r->fw_event != NF_FW_UPDATE) {
        r->has_oct &= (uint8_t)~(1u << 3);
        r->has_pkt &= (uint8_t)~(1u << 3);
        return;
    }
    if (r->has_fw_rev & 1)
        r->f.rev_octets = r->fw_rev_oct;
    if (r->has_fw_rev & 2)
        r->f.rev_packets = r->fw_rev_pkt;
    if (r->has_fw_rev)
        r->has_rev = 1;
}

static void nf_rec_addrs(nf_rec *r);

/* Turns the collected values into the record handed to the callback. */
static int nf_rec_emit(nf_ctx *c, nf_rec *r, uint16_t tid)
{
    int rc;

    r->f.exporter = c->s->exporter;
    r->f.exporter_port = c->s->port;
    r->f.domain = c->s->domain;
    r->f.template_id = tid;
    r->f.source = c->h.version == 10 ? FDX_SRC_IPFIX : FDX_SRC_NETFLOW9;
    nf_rec_fw_counters(r);
    nf_rec_addrs(r);
    r->f.octets = nf_pick(r->oct, r->has_oct);
    r->f.packets = nf_pick(r->pkt, r->has_pkt);
    if (r->has_rev)
        r->f.flags |= FDX_FLOW_BIFLOW;
    nf_rec_times(c, r);
    nf_rec_sampling(c, r);
    c->dec->st.flows++;
    c->s->st.flows++;
    c->count++;
    rc = c->fn != NULL ? c->fn(c->ud, &r->f) : 0;
    if (rc != 0)
        c->stop = rc;
    return rc;
}

/* Stores the interval of a sampler id or interface, within the cap. */
static void nf_sampler_put(nf_ctx *c, uint64_t id, uint8_t by_if,
                           uint32_t n)
{
    nf_session *s = c->s;
    size_t i;

    for (i = 0; i < s->nsmp; i++)
        if (s->smp[i].id == id && s->smp[i].by_if == by_if)
            break;
    if (i == s->nsmp) {
        if (s->nsmp == NF_MAX_SAMPLERS) {
            nf_limit(c);
            nf_warn(c->dec, s, 0, 0, "sampler limit reached");
            return;
        }
        s->nsmp++;
    }
    s->smp[i].id = id;
    s->smp[i].by_if = by_if;
    s->smp[i].interval = n;
}

/* Remembers what an options record said about sampling and init time. */
static void nf_options_apply(nf_ctx *c, const nf_rec *r)
{
    nf_session *s = c->s;
    uint32_t n = nf_rec_interval(r);

    if (r->has_init) {
        s->init_ms = r->init_ms;
        s->has_init = 1;
    }
    if (n == 0)
        return;
    if (!r->has_smp_id && !r->has_in_if) {
        s->def_sampling = n;
        return;
    }
    /* flows of interfaces never announced are taken as sampled too */
    if (!r->has_smp_id && n > s->def_sampling)
        s->def_sampling = n;
    nf_sampler_put(c, r->has_smp_id ? r->smp_id : r->in_if,
                   !r->has_smp_id, n);
}

/* ---------------------------------------------------------------- */
/* Field values                                                      */
/* ---------------------------------------------------------------- */

/* The same element twice: the first one counts. */
static void nf_first_u16(uint16_t *dst, uint8_t *has, uint64_t v)
{
    if (!*has)
        *dst = (uint16_t)v;
    *has = 1;
}

static void nf_first_u8(uint8_t *dst, uint8_t *has, uint64_t v)
{
    if (!*has)
        *dst = (uint8_t)v;
    *has = 1;
}

static void nf_set_counter(uint64_t v[4], uint8_t *has, int i, uint64_t x)
{
    if (*has & (1u << i))
        return; /* the same element twice: the first one counts */
    v[i] = x;
    *has |= (uint8_t)(1u << i);
}

static void nf_set_time(nf_rec *r, int end, uint8_t kind, uint64_t v)
{
    if (r->tkind[end] > kind)
        return; /* absolute times win over uptime-relative ones */
    if (r->tkind[end] == kind && kind != 0)
        return;
    r->tkind[end] = kind;
    r->tval[end] = v;
}

/* NTP timestamp (RFC 5905 era 0) to UTC ms; usec_frac: NetScaler style. */
static uint64_t nf_ntp_ms(const uint8_t *p, int usec_frac, uint8_t *bad)
{
    uint64_t sec = fdx__be32(p), frac = fdx__be32(p + 4);

    if (sec < NF_NTP_UNIX) {
        *bad = 1;
        return 0;
    }
    if (usec_frac && frac < 1000000u)
        return (sec - NF_NTP_UNIX) * 1000 + frac / 1000;
    return (sec - NF_NTP_UNIX) * 1000 + ((frac * 1000) >> 32);
}

static int nf_all_zero(const uint8_t *p, size_t len);

/* Keeps the first address field of each direction and family. */
static void nf_addr_field(nf_rec *r, int dir, int v6, const uint8_t *p,
                          size_t len)
{
    if (r->has_addr[dir][v6] || len != (v6 ? 16u : 4u))
        return;
    if (v6)
        fdx_addr_from_v6(&r->addr[dir][v6], p);
    else
        fdx_addr_from_v4(&r->addr[dir][v6], p);
    r->has_addr[dir][v6] = 1;
    r->addr_nonzero[dir][v6] = !nf_all_zero(p, len);
    if (r->first_v6 == 0)
        r->first_v6 = (uint8_t)(v6 + 1);
}

/*
 * The family whose addresses the record reports: the one ipVersion (IE
 * 60) names, else the only one with a non-zero address (Cisco IOS XR and
 * Procera fill the unused family with zeros), else the one that came
 * first in the template.
 */
static void nf_rec_addrs(nf_rec *r)
{
    int nz4 = r->addr_nonzero[0][0] || r->addr_nonzero[1][0];
    int nz6 = r->addr_nonzero[0][1] || r->addr_nonzero[1][1];
    int v6;

    if (r->first_v6 == 0) {
        /* frame-section and wireless-station records carry none */
        r->f.flags |= FDX_FLOW_NO_ADDR;
        return;
    }
    if ((r->ip_version == 4 || r->ip_version == 6) &&
        (r->has_addr[0][r->ip_version == 6] ||
         r->has_addr[1][r->ip_version == 6]))
        v6 = r->ip_version == 6;
    else if (nz4 != nz6)
        v6 = nz6;
    else
        v6 = r->first_v6 - 1;
    for (int dir = 0; dir < 2; dir++) {
        fdx_addr *out = dir == 0 ? &r->f.src : &r->f.dst;

        if (r->has_addr[dir][v6])
            *out = r->addr[dir][v6];
        else if (r->has_addr[dir][!v6])
            *out = r->addr[dir][!v6];
    }
}

/*
 * Reverse counters among enterprise elements: RFC 5103 (PEN 29305, IE 1
 * and 2) and Ixia's own reverse octet/packet delta counts (PEN 3054, 176
 * and 177).  Every other enterprise element is skipped.
 */
static void nf_field_enterprise(nf_rec *r, const nf_field *f, uint64_t v)
{
    int rev = f->pen == NF_PEN_REVERSE;
    int rev_oct = (rev && (f->type == 1 || f->type == 85)) ||
                  (f->pen == NF_PEN_IXIA && f->type == 176);
    int rev_pkt = (rev && (f->type == 2 || f->type == 86)) ||
                  (f->pen == NF_PEN_IXIA && f->type == 177);

    /* a delta count (1/2) wins over a total count (85/86) */
    if (rev_oct && (f->type != 85 || !(r->has_rev & 1)))
        r->f.rev_octets = v;
    else if (rev_pkt && (f->type != 86 || !(r->has_rev & 2)))
        r->f.rev_packets = v;
    else
        return;
    r->has_rev |= rev_oct ? 1 : 2;
}

static void nf_field_counter(nf_rec *r, uint16_t type, uint64_t v)
{
    switch (type) {
    case 1: nf_set_counter(r->oct, &r->has_oct, 0, v); break;
    case 2: nf_set_counter(r->pkt, &r->has_pkt, 0, v); break;
    case 85: nf_set_counter(r->oct, &r->has_oct, 1, v); break;
    case 86: nf_set_counter(r->pkt, &r->has_pkt, 1, v); break;
    case 23: nf_set_counter(r->oct, &r->has_oct, 2, v); break;
    case 24: nf_set_counter(r->pkt, &r->has_pkt, 2, v); break;
    case 231: nf_set_counter(r->oct, &r->has_oct, 3, v); break;
    case 298: nf_set_counter(r->pkt, &r->has_pkt, 3, v); break;
    case 232:
        r->fw_rev_oct = v;
        r->has_fw_rev |= 1;
        break;
    case 299:
        r->fw_rev_pkt = v;
        r->has_fw_rev |= 2;
        break;
    case 233: case 40005: /* firewallEvent; NSEL NF_F_FW_EVENT in v9 */
        if (v > 0xFF)
            r->bad_int = 1;
        nf_first_u8(&r->fw_event, &r->has_fw_event, v);
        break;
    }
}


static void nf_field_time(const nf_ctx *c, nf_rec *r, uint16_t type,
                          const uint8_t *p, size_t len, uint64_t v)
{
    int end = type & 1; /* odd ids are the end of the pair, except 21/22 */

    switch (type) {
    case 21: case 22:
        /* 8 bytes that can only be epoch ms (over 10 years of uptime):
         * exporters that write absolute times into the switched fields */
        if (len == 8 && v >= NF_MIN_SANE_MS)
            nf_set_time(r, type == 21, 2, v);
        else
            nf_set_time(r, type == 21, 1, v & 0xFFFFFFFFu);
        break;
    case 150: case 151: nf_set_time(r, end, 2, v * 1000); break;
    case 152: case 153: nf_set_time(r, end, 2, v); break;
    case 154: case 155: case 156: case 157:
        if (len == 8)
            nf_set_time(r, end, 2, nf_ntp_ms(p, type <= 155,
                                             &r->time_bad));
        break;
    case 158: case 159:
        if (v / 1000 > c->h.export_ms)
            r->time_bad = 1;
        else
            nf_set_time(r, end, 2, c->h.export_ms - v / 1000);
        break;
    case 160:
        r->init_ms = v;
        r->has_init = 1;
        break;
    }
}

static void nf_field_sampling(nf_rec *r, uint16_t type, uint64_t v)
{
    uint32_t n = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;

    switch (type) {
    case 34: case 50:
        r->smp_interval = n;
        break;
    case 48: case 302:
        r->smp_id = v;
        r->has_smp_id = 1;
        break;
    case 305: r->pkt_interval = v; break;
    case 306: r->pkt_space = v; break;
    }
}

/*
 * The integer elements this decoder reads (others are skipped whatever
 * their length): only for these does a value too long to hold matter.
 */
static int nf_int_used(const nf_field *f)
{
    if (f->pen == NF_PEN_REVERSE)
        return f->type == 1 || f->type == 2 || f->type == 85 ||
               f->type == 86;
    if (f->pen != 0)
        return f->pen == NF_PEN_IXIA && (f->type == 176 || f->type == 177);
    switch (f->type) {
    case 1: case 2: case 4: case 6: case 7: case 10: case 11: case 60:
    case 21: case 22: case 23: case 24: case 34: case 48: case 50:
    case 85: case 86: case 150: case 151: case 152: case 153: case 154:
    case 155: case 156: case 157: case 158: case 159: case 160: case 231:
    case 232: case 233: case 298: case 299: case 302: case 305: case 306:
    case 40005:
        return 1;
    }
    return 0;
}

static int nf_all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/*
 * An unsigned integer of len bytes.  Shorter than its type is RFC 7011
 * 6.2 reduced-size encoding; longer is read when what lies above 64 bits
 * is zero (a 16-byte octet count of a small value), else *wide is set:
 * reading its low bytes would give a wrong value without a trace.
 */
static uint64_t nf_uint(const uint8_t *p, size_t len, int *wide)
{
    *wide = 0;
    if (len <= 8)
        return fdx__beN(p, len);
    if (!nf_all_zero(p, len - 8)) {
        *wide = 1;
        return 0;
    }
    return fdx__beN(p + len - 8, 8);
}

/* Ports and the protocol: a value beyond their type's width is bad. */
static void nf_field_narrow(nf_rec *r, uint16_t type, uint64_t v)
{
    if (v > (type == 4 ? 0xFFu : 0xFFFFu)) {
        r->bad_int = 1;
        return;
    }
    if (type == 7)
        nf_first_u16(&r->f.sport, &r->has_sport, v);
    else if (type == 11)
        nf_first_u16(&r->f.dport, &r->has_dport, v);
    else
        nf_first_u8(&r->f.proto, &r->has_proto, v);
}

/* Interprets one field value of len bytes (already bounds-checked). */
static void nf_field_value(const nf_ctx *c, nf_rec *r, const nf_field *f,
                     const uint8_t *p, size_t len)
{
    int wide;
    uint64_t v = nf_uint(p, len, &wide);

    switch (f->pen == 0 ? f->type : 0) {
    case 8: nf_addr_field(r, 0, 0, p, len); return;
    case 12: nf_addr_field(r, 1, 0, p, len); return;
    case 27: nf_addr_field(r, 0, 1, p, len); return;
    case 28: nf_addr_field(r, 1, 1, p, len); return;
    }
    if (len == 0 || !nf_int_used(f))
        return;
    if (wide) {
        r->bad_int = 1;
        return;
    }
    if (f->pen != 0) {
        nf_field_enterprise(r, f, v);
        return;
    }
    switch (f->type) {
    case 4: case 7: case 11: nf_field_narrow(r, f->type, v); return;
    case 60:
        if (r->ip_version == 0 && v <= 0xFF)
            r->ip_version = (uint8_t)v;
        return;
    case 10:
        if (!r->has_in_if)
            r->in_if = v;
        r->has_in_if = 1;
        return;
    /* RFC 7125's 16-bit tcpControlBits: only the classic 8 flags kept */
    case 6: nf_first_u8(&r->f.tcp_flags, &r->has_flags, v); return;
    }
    nf_field_counter(r, f->type, v);
    nf_field_time(c, r, f->type, p, len, v);
    nf_field_sampling(r, f->type, v);
}

/* ---------------------------------------------------------------- */
/* Data sets                                                         */
/* ---------------------------------------------------------------- */

/* A v9 options record scoped on an interface. */
static void nf_v9_scope_if(nf_rec *r, uint64_t ifindex)
{
    if (!r->has_in_if)
        r->in_if = ifindex;
    r->has_in_if = 1;
}

/*
 * Decodes one record of template t from p[0..len).  Returns the bytes it
 * used, or 0 when the record does not fit (a malformed or truncated one).
 */
static size_t nf_record(const nf_ctx *c, const nf_template *t,
                        const uint8_t *p, size_t len, nf_rec *r)
{
    size_t off = 0;

    for (size_t i = 0; i < t->nfields; i++) {
        const nf_field *f = &t->fields[i];
        size_t flen = f->len;

        if (flen == NF_VARLEN) {
            if (len - off < 1)
                return 0;
            flen = p[off++];
            if (flen == 255) {
                if (len - off < 2)
                    return 0;
                flen = fdx__be16(p + off);
                off += 2;
            }
        }
        if (len - off < flen)
            return 0;
        /* v9 scope fields are not information elements */
        if (!(c->h.version == 9 && i < t->nscope))
            nf_field_value(c, r, f, p + off, flen);
        else if (f->type == NF_V9_SCOPE_IF && flen >= 1 && flen <= 8)
            nf_v9_scope_if(r, fdx__beN(p + off, flen));
        off += flen;
    }
    return off;
}

/*
 * What is left of a data set after its last record is padding when it
 * is all zero bytes (RFC 7011 3.3.1, RFC 3954 5.3) or, whatever it holds,
 * shorter than 4 bytes: alignment padding, which nprobe fills with stale
 * buffer bytes (graylog-nprobe-v9-*, nprobe-v9-options-template-scope).
 */
static int nf_is_padding(const uint8_t *p, size_t len)
{
    return len < 4 || nf_all_zero(p, len);
}

/*
 * Walks the records of one data set.  A remainder shorter than the
 * shortest record that is not padding is a cut record (a set length that
 * lies, or a truncated export) and is counted rather than dropped unseen.
 * Returns fn's stop value or 0.
 */
static int nf_data_records(nf_ctx *c, const nf_template *t,
                           const uint8_t *p, size_t len, size_t off0)
{
    size_t off = 0, used;
    nf_rec r;

    if (t->min_len == 0) {
        nf_bad(c, t->id, off0, "template with zero record length");
        return 0;
    }
    while (len - off >= t->min_len) {
        memset(&r, 0, sizeof(r));
        used = nf_record(c, t, p + off, len - off, &r);
        if (used == 0) {
            nf_bad(c, t->id, off0 + off, "record overruns its set");
            return 0;
        }
        c->nrecords++;
        if (r.bad_int) {
            nf_bad(c, t->id, off0 + off,
                   "integer element longer than its type");
            off += used;
            continue;
        }
        off += used;
        if (t->options)
            nf_options_apply(c, &r);
        else if (nf_rec_emit(c, &r, t->id) != 0)
            return c->stop;
    }
    if (!nf_is_padding(p + off, len - off))
        nf_bad(c, t->id, off0 + off, "record overruns its set");
    return 0;
}

static const nf_template *nf_template_find(const nf_session *s,
                                           uint16_t id)
{
    size_t lo = 0, hi = s->ntpl;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->tpl[mid].id == id)
            return &s->tpl[mid];
        if (s->tpl[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Keeps a copy of a data set whose template is unknown.  The oldest copy
 * is dropped (and counted) to make room; a set larger than the whole
 * budget is dropped at once.
 */
/*
 * Drops the early data sets of the session that waited for their template
 * through NF_PENDING_MAX_AGE datagrams: an exporter that refreshes its
 * templates would have sent it by then.  Oldest first (FIFO).
 */
static void nf_pending_expire(nf_ctx *c)
{
    nf_session *s = c->s;

    while (s->npend > 0 &&
           s->st.datagrams - s->pend[0].dgram >= NF_PENDING_MAX_AGE) {
        nf_warn(c->dec, s, s->pend[0].set_id, 0,
                "early data set expired without its template");
        nf_pending_drop(s, 0);
        c->dec->st.no_template++;
        s->st.no_template++;
    }
}

static void nf_pending_add(nf_ctx *c, uint16_t set_id, const uint8_t *p,
                           size_t len)
{
    nf_session *s = c->s;
    size_t cap = c->dec->lim.max_pending_bytes;
    nf_pending *pe;

    if (len > cap) {
        c->dec->st.no_template++;
        s->st.no_template++;
        nf_limit(c);
        return;
    }
    while (s->npend > 0 && (s->npend == NF_MAX_PENDING_SETS ||
                            s->pend_bytes + len > cap)) {
        nf_pending_drop(s, 0);
        c->dec->st.no_template++;
        s->st.no_template++;
        nf_limit(c);
    }
    pe = &s->pend[s->npend];
    pe->body = fdx__malloc(len);
    if (pe->body == NULL) {
        c->dec->st.no_template++;
        s->st.no_template++;
        return;
    }
    memcpy(pe->body, p, len);
    pe->len = len;
    pe->set_id = set_id;
    pe->hdr = c->h;
    pe->dgram = s->st.datagrams;
    s->pend_bytes += len;
    s->npend++;
}

static int nf_data_set(nf_ctx *c, uint16_t set_id, const uint8_t *p,
                       size_t len, size_t off)
{
    const nf_template *t = nf_template_find(c->s, set_id);

    if (t == NULL) {
        c->unknown_sets++;
        nf_pending_add(c, set_id, p, len);
        return 0;
    }
    return nf_data_records(c, t, p, len, off);
}

/*
 * Decodes the data sets kept for template id, now that it is known, each
 * with the header of the message it came in.
 */
static int nf_pending_replay(nf_ctx *c, uint16_t id)
{
    nf_session *s = c->s;
    const nf_template *t;
    nf_hdr saved = c->h;
    int rc = 0;

    for (size_t i = 0; i < s->npend && rc == 0;) {
        if (s->pend[i].set_id != id) {
            i++;
            continue;
        }
        t = nf_template_find(s, id);
        if (t == NULL)
            break;
        c->h = s->pend[i].hdr;
        rc = nf_data_records(c, t, s->pend[i].body, s->pend[i].len, 0);
        nf_pending_drop(s, i);
    }
    c->h = saved;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Templates                                                         */
/* ---------------------------------------------------------------- */

/*
 * Reads fc field specifiers from p[0..len) into out (when not NULL).
 * Returns the bytes they take, or 0 when they do not fit.
 */
static size_t nf_parse_fields(int ipfix, const uint8_t *p, size_t len,
                              size_t fc, nf_field *out, uint32_t *min_len)
{
    size_t off = 0;
    uint32_t sum = 0;

    for (size_t i = 0; i < fc; i++) {
        nf_field f = {0, 0, 0};

        if (len - off < 4)
            return 0;
        f.type = fdx__be16(p + off);
        f.len = fdx__be16(p + off + 2);
        off += 4;
        if (ipfix && (f.type & 0x8000)) {
            if (len - off < 4)
                return 0;
            f.type &= 0x7FFF;
            f.pen = fdx__be32(p + off);
            off += 4;
        }
        sum += f.len == NF_VARLEN ? 1 : f.len;
        if (out != NULL)
            out[i] = f;
    }
    *min_len = sum;
    return off;
}

/* Bytes a template's fields take, as charged to max_template_bytes. */
static size_t nf_fields_bytes(size_t nfields)
{
    return (nfields ? nfields : 1) * sizeof(nf_field);
}

/*
 * Template bytes held by all sessions of the datagram's exporter address.
 * The sessions one datagram touches all have its sender's address, so the
 * sum is taken once per message that defines templates, by a linear scan
 * of at most max_exporters sessions (as finding the session is), and kept
 * up to date by nf_tpl_account() until the next message.
 */
static size_t nf_exporter_bytes(nf_ctx *c)
{
    const fdx_nf_decoder *dec = c->dec;

    if (c->has_addr_bytes)
        return c->addr_bytes;
    c->addr_bytes = 0;
    for (size_t i = 0; i < dec->nsess; i++)
        if (fdx_addr_cmp(&dec->sess[i]->exporter, &c->s->exporter) == 0)
            c->addr_bytes += dec->sess[i]->tpl_bytes;
    c->has_addr_bytes = 1;
    return c->addr_bytes;
}

/* Charges add and gives back sub template bytes of the current session. */
static void nf_tpl_account(nf_ctx *c, size_t add, size_t sub)
{
    c->dec->tpl_bytes = c->dec->tpl_bytes + add - sub;
    c->s->tpl_bytes = c->s->tpl_bytes + add - sub;
    if (c->has_addr_bytes)
        c->addr_bytes = c->addr_bytes + add - sub;
}

/*
 * True when growing the current session's templates by more bytes stays
 * within its exporter address's share and within max_template_bytes;
 * otherwise the cap is counted and logged.  A share as large as the
 * budget needs no sum.
 */
static int nf_template_budget(nf_ctx *c, uint16_t id, size_t more)
{
    fdx_nf_decoder *dec = c->dec;
    size_t share = dec->lim.max_exporter_template_bytes, held;

    if (share < dec->lim.max_template_bytes) {
        held = nf_exporter_bytes(c);
        if (held > share || more > share - held) {
            nf_limit(c);
            nf_warn(dec, c->s, id, 0,
                    "exporter template memory limit reached");
            return 0;
        }
    }
    if (more <= dec->lim.max_template_bytes - dec->tpl_bytes)
        return 1;
    nf_limit(c);
    nf_warn(dec, c->s, id, 0, "template memory limit reached");
    return 0;
}

static void nf_template_clear(nf_ctx *c, size_t i)
{
    nf_session *s = c->s;

    nf_tpl_account(c, 0, nf_fields_bytes(s->tpl[i].nfields));
    fdx__free(s->tpl[i].fields);
    memmove(&s->tpl[i], &s->tpl[i + 1],
            (s->ntpl - i - 1) * sizeof(s->tpl[0]));
    s->ntpl--;
}

/* IPFIX template withdrawal; id 2 or 3 withdraws all of that kind. */
static void nf_template_withdraw(nf_ctx *c, uint16_t id, int options)
{
    nf_session *s = c->s;
    int all = id == 2 || id == 3;

    for (size_t i = s->ntpl; i-- > 0;)
        if (all ? s->tpl[i].options == options : s->tpl[i].id == id)
            nf_template_clear(c, i);
}

/* Doubles the session's template array, within the memory cap. */
static int nf_template_grow(nf_ctx *c, uint16_t id)
{
    nf_session *s = c->s;
    size_t cap = s->captpl ? s->captpl * 2 : 8;
    nf_template *n;

    if (cap > c->dec->lim.max_templates)
        cap = c->dec->lim.max_templates;
    if (!nf_template_budget(c, id, (cap - s->captpl) * sizeof(*n)))
        return -1;
    n = fdx__realloc(s->tpl, cap * sizeof(*n));
    if (n == NULL)
        return -1;
    nf_tpl_account(c, (cap - s->captpl) * sizeof(*n), 0);
    s->tpl = n;
    s->captpl = cap;
    return 0;
}

/* Slot for template id, sorted; NULL at the per-session cap. */
static nf_template *nf_template_slot(nf_ctx *c, uint16_t id)
{
    nf_session *s = c->s;
    size_t i = 0;

    while (i < s->ntpl && s->tpl[i].id < id)
        i++;
    if (i < s->ntpl && s->tpl[i].id == id)
        return &s->tpl[i];
    if (s->ntpl >= c->dec->lim.max_templates) {
        nf_limit(c);
        nf_warn(c->dec, s, id, 0, "template limit reached");
        return NULL;
    }
    if (s->ntpl == s->captpl && nf_template_grow(c, id) != 0)
        return NULL;
    memmove(&s->tpl[i + 1], &s->tpl[i], (s->ntpl - i) * sizeof(s->tpl[0]));
    memset(&s->tpl[i], 0, sizeof(s->tpl[0]));
    s->tpl[i].id = id;
    s->ntpl++;
    return &s->tpl[i];
}

/*
 * A (re)definition of id that was refused: whatever id meant before no
 * longer describes what the exporter sends, so it is withdrawn and the
 * data sets that follow wait (and count) as without a template instead
 * of being decoded with the old layout.
 */
static int nf_template_refuse(nf_ctx *c, uint16_t id)
{
    nf_session *s = c->s;

    for (size_t i = 0; i < s->ntpl; i++)
        if (s->tpl[i].id == id) {
            nf_template_clear(c, i);
            break;
        }
    return 0;
}

/*
 * Stores (or refreshes, or redefines) a template whose field specifiers
 * are at p and already known to fit.  Returns fn's stop value from
 * decoding data that waited for it, or 0.
 */
static int nf_template_store(nf_ctx *c, uint16_t id, const uint8_t *p,
                             size_t len, size_t fc, size_t nscope,
                             int options)
{
    const nf_template *old = nf_template_find(c->s, id);
    size_t had = old != NULL ? nf_fields_bytes(old->nfields) : 0;
    size_t need = nf_fields_bytes(fc);
    nf_field *fields;
    nf_template *t;
    uint32_t min_len;

    if (fc > c->dec->lim.max_fields) {
        nf_limit(c);
        nf_warn(c->dec, c->s, id, 0, "template field limit reached");
        return nf_template_refuse(c, id);
    }
    /* a new template also needs room for a slot: checked when grown */
    if (need > had && !nf_template_budget(c, id, need - had))
        return nf_template_refuse(c, id);
    fields = fdx__calloc(fc ? fc : 1, sizeof(*fields));
    if (fields == NULL)
        return nf_template_refuse(c, id);
    nf_parse_fields(c->h.version == 10, p, len, fc, fields, &min_len);
    t = nf_template_slot(c, id);
    if (t == NULL) {
        fdx__free(fields);
        return 0; /* only a new id misses a slot: nothing to withdraw */
    }
    nf_tpl_account(c, need,
                   t->fields != NULL ? nf_fields_bytes(t->nfields) : 0);
    fdx__free(t->fields);
    t->fields = fields;
    t->nfields = (uint16_t)fc;
    t->nscope = (uint16_t)nscope;
    t->options = (uint8_t)options;
    t->min_len = min_len;
    return nf_pending_replay(c, id);
}

/* Template set: v9 id 0, IPFIX id 2. */
static int nf_template_set(nf_ctx *c, const uint8_t *p, size_t len,
                           size_t off0)
{
    int ipfix = c->h.version == 10;
    size_t off = 0, n;
    uint32_t min_len;
    int rc;

    while (len - off >= 4) {
        uint16_t id = fdx__be16(p + off), fc = fdx__be16(p + off + 2);

        if (id == 0 && fc == 0)
            return 0; /* padding */
        if (ipfix && fc == 0) {
            nf_template_withdraw(c, id, 0);
            off += 4;
            continue;
        }
        n = nf_parse_fields(ipfix, p + off + 4, len - off - 4, fc, NULL,
                            &min_len);
        if (id < 256 || n == 0) {
            nf_bad(c, id, off0 + off, "bad template record");
            return 0;
        }
        rc = nf_template_store(c, id, p + off + 4, n, fc, 0, 0);
        if (rc != 0)
            return rc;
        off += 4 + n;
    }
    return 0;
}

/* One v9 options template record at p; returns its length, 0 if bad. */
static size_t nf_v9_options_rec(nf_ctx *c, const uint8_t *p, size_t len,
                                size_t off0, int *rc)
{
    uint16_t id = fdx__be16(p), slen = fdx__be16(p + 2);
    uint16_t olen = fdx__be16(p + 4);
    size_t n, total = (size_t)slen + olen;
    uint32_t min_len;

    if (id < 256 || slen % 4 != 0 || olen % 4 != 0 || total > len - 6) {
        nf_bad(c, id, off0, "bad v9 options template");
        return 0;
    }
    n = nf_parse_fields(0, p + 6, total, total / 4, NULL, &min_len);
    if (n != total) {
        nf_bad(c, id, off0, "bad v9 options template");
        return 0;
    }
    *rc = nf_template_store(c, id, p + 6, n, total / 4, slen / 4, 1);
    return 6 + total;
}

/* v9 options template set (id 1). */
static int nf_v9_options_set(nf_ctx *c, const uint8_t *p, size_t len,
                             size_t off0)
{
    size_t off = 0, n;
    int rc = 0;

    while (len - off >= 6 && fdx__be16(p + off) != 0) {
        n = nf_v9_options_rec(c, p + off, len - off, off0 + off, &rc);
        if (n == 0 || rc != 0)
            return rc;
        off += n;
    }
    return 0;
}

/* IPFIX options template set (id 3). */
static int nf_ipfix_options_set(nf_ctx *c, const uint8_t *p, size_t len,
                                size_t off0)
{
    size_t off = 0, n;
    uint32_t min_len;
    int rc;

    while (len - off >= 4) {
        uint16_t id = fdx__be16(p + off), fc = fdx__be16(p + off + 2);
        uint16_t sc;

        if (id == 0 && fc == 0)
            return 0; /* padding */
        if (fc == 0) {
            nf_template_withdraw(c, id, 1);
            off += 4;
            continue;
        }
        if (len - off < 6)
            break;
        sc = fdx__be16(p + off + 4);
        n = nf_parse_fields(1, p + off + 6, len - off - 6, fc, NULL,
                            &min_len);
        if (id < 256 || n == 0 || sc > fc) {
            nf_bad(c, id, off0 + off, "bad IPFIX options template");
            return 0;
        }
        rc = nf_template_store(c, id, p + off + 6, n, fc, sc, 1);
        if (rc != 0)
            return rc;
        off += 6 + n;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Messages                                                          */
/* ---------------------------------------------------------------- */

static int nf_set(nf_ctx *c, uint16_t id, const uint8_t *p, size_t len,
                  size_t off)
{
    int ipfix = c->h.version == 10;

    if (id == (ipfix ? 2 : 0))
        return nf_template_set(c, p, len, off);
    if (id == (ipfix ? 3 : 1))
        return ipfix ? nf_ipfix_options_set(c, p, len, off)
                     : nf_v9_options_set(c, p, len, off);
    if (id >= 256)
        return nf_data_set(c, id, p, len, off);
    nf_bad(c, id, off, "reserved set id");
    return 0;
}

/*
 * Walks the sets of a v9 or IPFIX message from off to len by their own
 * lengths.  A set that claims less than its header or more than what is
 * left ends the walk: nothing after it can be located.
 */
static int nf_walk_sets(nf_ctx *c, const uint8_t *buf, size_t len,
                        size_t off)
{
    int rc;

    while (len - off >= 4) {
        uint16_t id = fdx__be16(buf + off), slen = fdx__be16(buf + off + 2);

        if (slen < 4) {
            if (!nf_all_zero(buf + off, len - off))
                nf_bad(c, id, off, "set length below 4");
            return 0;
        }
        if (slen > len - off) {
            nf_bad(c, id, off, "set length beyond datagram");
            return 0;
        }
        rc = nf_set(c, id, buf + off + 4, slen - 4u, off + 4);
        if (rc != 0)
            return rc;
        off += slen;
    }
    return 0;
}

static int nf_decode_v9(nf_ctx *c, const fdx_addr *a, uint16_t port,
                        const uint8_t *buf, size_t len)
{
    uint32_t seq;
    int rc;

    if (len < 20)
        return FDX_ETRUNC;
    c->h.uptime_ms = fdx__be32(buf + 4);
    c->h.export_ms = (uint64_t)fdx__be32(buf + 8) * 1000;
    seq = fdx__be32(buf + 12);
    c->s = nf_session_get(c, a, port, 9, fdx__be32(buf + 16));
    if (c->s == NULL)
        return nf_session_fail(c->dec);
    nf_seq_check(c->dec, c->s, seq);
    nf_seq_advance(c->s, seq, 1);
    nf_pending_expire(c);
    rc = nf_walk_sets(c, buf, len, 20);
    return rc != 0 ? rc : c->count;
}

/* One IPFIX message of mlen bytes (16 or more) at buf, its session's. */
static int nf_ipfix_message(nf_ctx *c, const fdx_addr *a, uint16_t port,
                            const uint8_t *buf, size_t mlen)
{
    uint32_t seq = fdx__be32(buf + 8);
    int rc;

    c->h.export_ms = (uint64_t)fdx__be32(buf + 4) * 1000;
    c->nrecords = 0;
    c->unknown_sets = 0;
    c->s = nf_session_get(c, a, port, 10, fdx__be32(buf + 12));
    if (c->s == NULL)
        return nf_session_fail(c->dec);
    nf_seq_check(c->dec, c->s, seq);
    nf_pending_expire(c);
    rc = nf_walk_sets(c, buf, mlen, 16);
    if (c->unknown_sets == 0)
        nf_seq_advance(c->s, seq, c->nrecords);
    else
        c->s->has_seq = 0; /* cannot tell how many records it held */
    return rc;
}

/*
 * Length of a complete IPFIX message at p[0..len), or 0.  RFC 7011 10.3.3
 * allows several messages in one datagram; anything else after the first
 * is not part of a message and is only counted.
 */
static size_t nf_ipfix_next(const uint8_t *p, size_t len)
{
    size_t mlen;

    if (len < 16 || fdx__be16(p) != 10)
        return 0;
    mlen = fdx__be16(p + 2);
    return mlen >= 16 && mlen <= len ? mlen : 0;
}

static int nf_decode_ipfix(nf_ctx *c, const fdx_addr *a, uint16_t port,
                           const uint8_t *buf, size_t len)
{
    size_t mlen, off;
    int rc;

    if (len < 16)
        return FDX_ETRUNC;
    mlen = fdx__be16(buf + 2);
    if (mlen < 16)
        return FDX_ECORRUPT;
    if (mlen > len) {
        rc = nf_ipfix_message(c, a, port, buf, len);
        if (rc == 0)
            nf_bad(c, 0, 2, "message length beyond datagram");
        return rc != 0 ? rc : c->count;
    }
    rc = nf_ipfix_message(c, a, port, buf, mlen);
    for (off = mlen; rc == 0; off += mlen) {
        nf_session *prev = c->s;

        mlen = nf_ipfix_next(buf + off, len - off);
        if (mlen == 0)
            break;
        prev->st.datagrams++; /* each message counts in its session */
        rc = nf_ipfix_message(c, a, port, buf + off, mlen);
        if (rc < 0) { /* a later message's session refused: only it */
            nf_warn_dgram(c->dec, a, port, buf + off, mlen,
                          fdx_strerror(rc));
            c->s = prev;
            return c->count;
        }
    }
    if (rc == 0 && off < len)
        nf_bad(c, 0, off, "bytes after the IPFIX message");
    return rc != 0 ? rc : c->count;
}

/* ---------------------------------------------------------------- */
/* NetFlow v5                                                        */
/* ---------------------------------------------------------------- */

static void nf_v5_record(nf_ctx *c, const uint8_t *p, uint32_t sampling,
                         fdx_flow *f)
{
    uint32_t first = fdx__be32(p + 24), last = fdx__be32(p + 28);
    nf_rec r;

    memset(&r, 0, sizeof(r));
    fdx_addr_from_v4(&r.f.src, p);
    fdx_addr_from_v4(&r.f.dst, p + 4);
    r.f.packets = fdx__be32(p + 16);
    r.f.octets = fdx__be32(p + 20);
    r.f.sport = fdx__be16(p + 32);
    r.f.dport = fdx__be16(p + 34);
    r.f.tcp_flags = p[37];
    r.f.proto = p[38];
    r.tkind[0] = r.tkind[1] = 1;
    r.tval[0] = first;
    r.tval[1] = last;
    nf_rec_times(c, &r);
    r.f.exporter = c->s->exporter;
    r.f.exporter_port = c->s->port;
    r.f.domain = c->s->domain;
    r.f.source = FDX_SRC_NETFLOW5;
    r.f.sampling = sampling;
    if (sampling > 1)
        r.f.flags |= FDX_FLOW_SAMPLED;
    *f = r.f;
}

/*
 * v5: a 24-byte header and count 48-byte records.  Only records that fit
 * in the datagram and are counted are decoded; a count that disagrees
 * either way is counted as a bad record and logged.
 */
static int nf_decode_v5(nf_ctx *c, const fdx_addr *a, uint16_t port,
                        const uint8_t *buf, size_t len)
{
    size_t count, fit;
    uint32_t seq, sampling;
    fdx_flow f;

    if (len < 24)
        return FDX_ETRUNC;
    count = fdx__be16(buf + 2);
    fit = (len - 24) / 48;
    c->h.uptime_ms = fdx__be32(buf + 4);
    c->h.export_ms = (uint64_t)fdx__be32(buf + 8) * 1000 +
                     fdx__be32(buf + 12) / 1000000u;
    seq = fdx__be32(buf + 16);
    sampling = fdx__be16(buf + 22) & 0x3FFF;
    c->s = nf_session_get(c, a, port, 5, fdx__be16(buf + 20));
    if (c->s == NULL)
        return nf_session_fail(c->dec);
    if (count > fit) {
        nf_bad(c, 0, 2, "v5 count beyond datagram");
        count = fit;
    } else if (count < fit) {
        /* the records past count are not decoded: say so */
        nf_bad(c, 0, 2, "v5 count below the records in the datagram");
    }
    nf_seq_check(c->dec, c->s, seq);
    nf_seq_advance(c->s, seq, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        nf_v5_record(c, buf + 24 + i * 48, sampling, &f);
        c->dec->st.flows++;
        c->s->st.flows++;
        c->count++;
        if (c->fn != NULL && (c->stop = c->fn(c->ud, &f)) != 0)
            return c->stop;
    }
    return c->count;
}

/*
 * Counts every datagram once: decoded (even partly, or stopped by fn),
 * refused at the session cap, or rejected as malformed.
 */
static void nf_count_datagram(nf_ctx *c, int rc, const fdx_addr *a,
                              uint16_t port, const uint8_t *buf, size_t len)
{
    fdx_nf_decoder *dec = c->dec;

    if (c->stop != 0 || rc >= 0) {
        dec->st.datagrams++;
        if (c->s != NULL)
            c->s->st.datagrams++;
    } else if (rc == FDX_ELIMIT) {
        dec->st.refused++;
        nf_warn_dgram(dec, a, port, buf, len,
                      "exporter session limit reached, datagram refused");
    } else {
        dec->st.bad_datagrams++;
        nf_warn_dgram(dec, a, port, buf, len, fdx_strerror(rc));
    }
}

int fdx_nf_decode(fdx_nf_decoder *dec, const fdx_addr *exporter,
                  uint16_t port, const uint8_t *buf, size_t len,
                  uint64_t recv_ms, fdx_flow_fn fn, void *ud)
{
    static const fdx_addr none = {{0}};
    nf_ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.dec = dec;
    c.fn = fn;
    c.ud = ud;
    c.h.recv_ms = recv_ms;
    if (exporter == NULL)
        exporter = &none;
    if (buf == NULL || len < 2) {
        rc = FDX_ETRUNC;
    } else {
        c.h.version = (uint8_t)fdx__be16(buf);
        switch (fdx__be16(buf)) {
        case 5: rc = nf_decode_v5(&c, exporter, port, buf, len); break;
        case 9: rc = nf_decode_v9(&c, exporter, port, buf, len); break;
        case 10: rc = nf_decode_ipfix(&c, exporter, port, buf, len); break;
        default: rc = FDX_EVERSION; break;
        }
    }
    nf_count_datagram(&c, rc, exporter, port, buf, len);
    return c.stop != 0 ? c.stop : rc;
}
