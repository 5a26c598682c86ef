/*
 * flowdex flows: print the decoded flow records of any input scan reads,
 * one per line, as text, JSON lines or CSV.  It is the window into what
 * the decoders see.  With --stats, the readers' counters follow on
 * standard error: per input, and per exporter session (sequence gaps per
 * observation domain).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flowdex/flowdex.h"
#include "report.h"

static void flows_usage(FILE *f)
{
    fprintf(f,
        "usage: flowdex flows [--json|--csv] [--stats] [-v|-q] INPUT...\n"
        "\n"
        "Prints every decoded flow record: exporter, version, domain,\n"
        "template, addresses, ports, protocol, TCP flags, octets, packets,\n"
        "first and last time (UTC), sampling, reverse counters of biflows,\n"
        "flags and firewall event.\n"
        "\n"
        "      --json     one JSON object per record (JSON Lines)\n"
        "      --csv      CSV with a header line\n"
        "      --stats    the readers' counters on standard error, per\n"
        "                 input and per exporter session\n"
        "  -v, --verbose  more messages on stderr (repeatable)\n"
        "  -q, --quiet    errors only\n"
        "  -h, --help     this help\n"
        "\n"
        "INPUT is an nfcapd file, an IPFIX file (RFC 5655), a pcap or\n"
        "pcapng capture of NetFlow v5, v9 or IPFIX export datagrams, or a\n"
        "directory of such files.\n");
}

static const char *version_name(int src)
{
    switch (src) {
    case FDX_SRC_NFCAPD: return "nfcapd";
    case FDX_SRC_NETFLOW5: return "v5";
    case FDX_SRC_NETFLOW9: return "v9";
    case FDX_SRC_IPFIX: return "ipfix";
    }
    return "?";
}

/* The record's text fields, formatted once for every output format. */
typedef struct flow_text {
    char ex[FDX_ADDRSTRLEN], sa[FDX_ADDRSTRLEN], da[FDX_ADDRSTRLEN];
    char t1[40], t2[40];
    char smp[16], roct[24], rpkt[24]; /* empty when unknown / no biflow */
    char flags[48];                   /* names joined by '|' */
} flow_text;

static void flag_names(unsigned flags, char *buf, size_t len)
{
    static const char *const names[] = {"sampled", "biflow", "time-bad",
                                        "no-time", "no-addr"};
    size_t n = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((flags & (1u << i)) && n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "",
                                  names[i]);
}

static void flow_format(const fdx_flow *f, flow_text *t)
{
    static const fdx_addr none;
    int bi = (f->flags & FDX_FLOW_BIFLOW) != 0;

    /* nfcapd files and IPFIX files may not name the exporter */
    if (fdx_addr_cmp(&f->exporter, &none) == 0)
        snprintf(t->ex, sizeof(t->ex), "-");
    else
        fdx_addr_format(&f->exporter, t->ex, sizeof(t->ex));
    fdx_addr_format(&f->src, t->sa, sizeof(t->sa));
    fdx_addr_format(&f->dst, t->da, sizeof(t->da));
    report_time(f->first_ms, t->t1, sizeof(t->t1));
    report_time(f->last_ms, t->t2, sizeof(t->t2));
    t->smp[0] = t->roct[0] = t->rpkt[0] = '\0';
    if (f->sampling != 0)
        snprintf(t->smp, sizeof(t->smp), "%" PRIu32, f->sampling);
    if (bi) {
        snprintf(t->roct, sizeof(t->roct), "%" PRIu64, f->rev_octets);
        snprintf(t->rpkt, sizeof(t->rpkt), "%" PRIu64, f->rev_packets);
    }
    flag_names(f->flags, t->flags, sizeof(t->flags));
}

/* A JSON value: the text, or null when it is empty. */
static const char *json_or_null(const char *s)
{
    return s[0] ? s : "null";
}

static void print_json(const fdx_flow *f, const flow_text *t)
{
    printf("{\"exporter\": \"%s\", \"exporter_port\": %u, "
           "\"version\": \"%s\", \"domain\": %" PRIu32 ", "
           "\"template\": %u, \"src\": \"%s\", \"dst\": \"%s\", "
           "\"sport\": %u, \"dport\": %u, \"proto\": %u, "
           "\"tcp_flags\": %u, \"octets\": %" PRIu64 ", "
           "\"packets\": %" PRIu64 ", \"first\": \"%s\", \"last\": \"%s\", "
           "\"sampling\": %s, \"rev_octets\": %s, \"rev_packets\": %s, "
           "\"flags\": %u, \"fw_event\": %u}\n",
           t->ex, f->exporter_port, version_name(f->source), f->domain,
           f->template_id, t->sa, t->da, f->sport, f->dport, f->proto,
           f->tcp_flags, f->octets, f->packets, t->t1, t->t2,
           json_or_null(t->smp), json_or_null(t->roct),
           json_or_null(t->rpkt), f->flags, f->fw_event);
}

static void print_csv(const fdx_flow *f, const flow_text *t)
{
    printf("%s,%u,%s,%" PRIu32 ",%u,%s,%s,%u,%u,%u,%u,%" PRIu64 ",%" PRIu64
           ",%s,%s,%s,%s,%s,%s,%u\n",
           t->ex, f->exporter_port, version_name(f->source), f->domain,
           f->template_id, t->sa, t->da, f->sport, f->dport, f->proto,
           f->tcp_flags, f->octets, f->packets, t->t1, t->t2, t->smp,
           t->roct, t->rpkt, t->flags, f->fw_event);
}

static void print_text(const fdx_flow *f, const flow_text *t)
{
    printf("%s:%u %s dom=%" PRIu32 " tpl=%u %s -> %s %u -> %u proto=%u "
           "flags=0x%02x octets=%" PRIu64 " packets=%" PRIu64 " %s %s",
           t->ex, f->exporter_port, version_name(f->source), f->domain,
           f->template_id, t->sa, t->da, f->sport, f->dport, f->proto,
           f->tcp_flags, f->octets, f->packets, t->t1, t->t2);
    if (t->smp[0])
        printf(" sampling=%s", t->smp);
    if (t->roct[0])
        printf(" rev_octets=%s rev_packets=%s", t->roct, t->rpkt);
    if (f->fw_event != 0)
        printf(" fw_event=%u", f->fw_event);
    if (t->flags[0])
        printf(" [%s]", t->flags);
    putchar('\n');
}

static int print_flow(void *ud, const fdx_flow *f)
{
    const enum report_format *fmt = ud;
    flow_text t;

    flow_format(f, &t);
    if (*fmt == REPORT_JSON)
        print_json(f, &t);
    else if (*fmt == REPORT_CSV)
        print_csv(f, &t);
    else
        print_text(f, &t);
    return 0;
}

/* --stats: one line per exporter session of a capture or IPFIX file. */
static void print_session(void *ud, const fdx_nf_session_stats *s)
{
    char a[FDX_ADDRSTRLEN];

    fprintf(stderr, "%s: session input=%s exporter=%s port=%u version=%u "
            "domain=%" PRIu32 " templates=%" PRIu32 " datagrams=%" PRIu64
            " flows=%" PRIu64 " seq_lost=%" PRIu64 " bad_records=%" PRIu64
            " no_template=%" PRIu64 "\n", cli_progname, (const char *)ud,
            fdx_addr_format(&s->exporter, a, sizeof(a)), s->port,
            s->version, s->domain, s->templates, s->datagrams, s->flows,
            s->seq_lost, s->bad_records, s->no_template);
}

static void print_stats(const char *input, const fdx_read_stats *st)
{
    fprintf(stderr, "%s: stats input=%s files=%" PRIu64 " frames=%" PRIu64
            " skipped_frames=%" PRIu64 " datagrams=%" PRIu64 " flows=%"
            PRIu64 " bad_datagrams=%" PRIu64 " bad_records=%" PRIu64
            " no_template=%" PRIu64 " seq_lost=%" PRIu64 " limit_hits=%"
            PRIu64 " refused=%" PRIu64 "\n", cli_progname, input,
            st->files, st->packets, st->skipped_frames, st->datagrams,
            st->flows, st->bad_datagrams, st->bad_records, st->no_template,
            st->seq_lost, st->limit_hits, st->refused);
}

/* Reads every input; one that cannot be read is reported, the others
 * still are.  Returns the exit code. */
static int flows_read(char **inputs, int n, enum report_format *fmt,
                      int stats)
{
    fdx_read_opts ro = {&cli_logger, NULL, NULL, NULL};
    int failed = 0;

    for (int i = 0; i < n; i++) {
        fdx_error err = {0, ""};
        fdx_read_stats st;
        int rc;

        memset(&st, 0, sizeof(st));
        ro.session_fn = stats ? print_session : NULL;
        ro.session_ud = inputs[i];
        rc = fdx_read_path(inputs[i], &ro, print_flow, fmt, &st, &err);
        if (stats)
            print_stats(inputs[i], &st);
        if (rc >= 0)
            continue;
        cli_errorf("%s", err.msg[0] ? err.msg : fdx_strerror(rc));
        if (failed == 0)
            failed = cli_exit_code(rc);
        if (rc == FDX_ENOMEM)
            break;
    }
    return failed;
}

int cmd_flows(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"csv", no_argument, NULL, 'C'},
        {"stats", no_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    enum report_format fmt = REPORT_TABLE;
    int c, stats = 0;

    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
        case 'C':
            if (fmt != REPORT_TABLE)
                return cli_format_conflict("flows");
            fmt = c == 'j' ? REPORT_JSON : REPORT_CSV;
            break;
        case 's': stats = 1; break;
        case 'v': cli_verbosity(1); break;
        case 'q': cli_verbosity(-1); break;
        case 'h': flows_usage(stdout); return 0;
        default: return cli_bad_option("flows", argv);
        }
    }
    if (optind >= argc) {
        cli_errorf("flows: no input given; try 'flowdex flows --help'");
        return EX_USAGE;
    }
    if (fmt == REPORT_CSV)
        printf("exporter,exporter_port,version,domain,template,src,dst,"
               "sport,dport,proto,tcp_flags,octets,packets,first,last,"
               "sampling,rev_octets,rev_packets,flags,fw_event\n");
    return flows_read(argv + optind, argc - optind, &fmt, stats);
}
