/*
 * Private layout of the NetFlow v5 / v9 / IPFIX decoder (lib/netflow.c).
 *
 * A decoder keeps one session per exporter address, UDP port, protocol
 * version and source id / observation domain.  A session holds the
 * templates it announced (sorted by id), what its options records said
 * about sampling and the system init time, the next expected sequence
 * number and a few data sets that arrived before their template.
 * Everything is bounded by fdx_nf_limits.  Sessions are kept most
 * recently used first; when the table is full the last one makes room if
 * it has been idle long enough, and with max_idle_s set the idle ones are
 * freed from the end as datagrams arrive.
 */
#ifndef FLOWDEX_NETFLOW_INT_H
#define FLOWDEX_NETFLOW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/flow.h"

#define NF_DEF_EXPORTERS 256
#define NF_DEF_TEMPLATES 1024
#define NF_DEF_FIELDS 256
#define NF_DEF_PENDING (64u * 1024u)
#define NF_DEF_TEMPLATE_BYTES (16u * 1024u * 1024u)
#define NF_EXPORTER_SHARE 8 /* an address may hold 1/8 of the templates */
#define NF_EXPORTER_MIN_BYTES (1024u * 1024u) /* ... or at least 1 MiB */
/* A session this long without a datagram may make room for a new one:
 * exporters resend their templates every 10 minutes by default (IPFIX,
 * RFC 6728 templateRefreshTimeout; Juniper; Cisco Flexible NetFlow) or
 * more often, so a session silent for that long has most likely gone
 * (a restart takes a new source port), and one that has not will resend
 * its templates soon after it speaks again. */
#define NF_EVICT_IDLE_MS (600u * 1000u)
#define NF_MAX_PENDING_SETS 16 /* early data sets kept per session */
#define NF_PENDING_MAX_AGE 64  /* ... for at most this many datagrams */
#define NF_MAX_SAMPLERS 32     /* sampler ids remembered per session */
#define NF_LOG_BURST 50        /* malformed-input lines logged in full */
#define NF_LOG_EVERY 1000      /* then one line per this many */

#define NF_PEN_REVERSE 29305u /* RFC 5103 reverse information elements */
#define NF_PEN_IXIA 3054u    /* Ixia: reverse counts as 176/177 */
#define NF_VARLEN 0xFFFFu     /* field length meaning "variable" */
#define NF_FW_TEARDOWN 2      /* NSEL firewall events (IE 233 / 40005) */
#define NF_FW_UPDATE 5
#define NF_V9_SCOPE_IF 2      /* v9 options scope type: interface */

/* One field specifier of a template. */
typedef struct nf_field {
    uint16_t type; /* element id, enterprise bit cleared */
    uint16_t len;  /* NF_VARLEN: variable length */
    uint32_t pen;  /* private enterprise number, 0 for IANA */
} nf_field;

typedef struct nf_template {
    uint16_t id;
    uint16_t nfields;
    uint16_t nscope;  /* leading scope fields of an options template */
    uint8_t options;  /* 1: options template, records are not flows */
    uint32_t min_len; /* record length, a variable field counted as 1 */
    nf_field *fields; /* nfields entries, owned */
} nf_template;

/* What a data record needs to know of the message that carried it. */
typedef struct nf_hdr {
    uint64_t export_ms; /* header export time, UTC ms */
    uint64_t recv_ms;
    uint32_t uptime_ms; /* v9/v5 header sysUptime */
    uint8_t version;
} nf_hdr;

/* A sampling interval announced by an options record, and its scope. */
typedef struct nf_sampler {
    uint64_t id;       /* sampler / selector id, or interface index */
    uint32_t interval;
    uint8_t by_if;     /* 1: scoped on an interface (v9 scope 2, IE 10) */
} nf_sampler;

/* A copy of a data set whose template was not known yet. */
typedef struct nf_pending {
    uint8_t *body; /* set content after the 4-byte set header, owned */
    size_t len;
    uint16_t set_id;
    nf_hdr hdr;
    uint64_t dgram; /* the session's datagrams decoded before this one */
} nf_pending;

typedef struct nf_session {
    fdx_addr exporter;
    uint16_t port;
    uint8_t version;
    uint32_t domain;

    nf_template *tpl; /* sorted by id */
    size_t ntpl, captpl;

    nf_sampler smp[NF_MAX_SAMPLERS];
    size_t nsmp;
    uint32_t def_sampling; /* sampling announced without a sampler id;
                            * for interface scopes, the largest one */
    uint64_t init_ms;      /* systemInitTimeMilliseconds (IE 160) */
    uint8_t has_init;

    uint32_t next_seq;
    uint8_t has_seq;
    fdx_nf_session_stats st; /* counters; identity filled at creation */

    nf_pending pend[NF_MAX_PENDING_SETS];
    size_t npend, pend_bytes;

    uint64_t last_ms;  /* latest receive time of its datagrams */
    size_t tpl_bytes;  /* its part of the decoder's tpl_bytes */
} nf_session;

struct fdx_nf_decoder {
    fdx_nf_limits lim;
    fdx_logger log;
    fdx_read_stats st;
    /* nsess entries, at most lim.max_exporters, most recently used
     * first: the last one is the one to evict or expire */
    nf_session **sess;
    size_t nsess, capsess;
    size_t tpl_bytes;  /* template arrays and fields, all sessions */
    uint64_t nbad_logged;
};

#endif /* FLOWDEX_NETFLOW_INT_H */
