/*
 * flowdex flows: print the decoded flow records of any input scan reads,
 * one per line, as text, JSON lines or CSV.  It is the window into what
 * the decoders see.
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
        "usage: flowdex flows [--json|--csv] [-v|-q] INPUT...\n"
        "\n"
        "Prints every decoded flow record: exporter, version, domain,\n"
        "template, addresses, ports, protocol, TCP flags, octets, packets,\n"
        "first and last time (UTC), sampling, reverse counters.\n");
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

static int print_flow(void *ud, const fdx_flow *f)
{
    const enum report_format *fmt = ud;
    char ex[FDX_ADDRSTRLEN], sa[FDX_ADDRSTRLEN], da[FDX_ADDRSTRLEN];
    char t1[40], t2[40];

    static const fdx_addr none;

    /* nfcapd files and IPFIX files may not name the exporter */
    if (fdx_addr_cmp(&f->exporter, &none) == 0)
        snprintf(ex, sizeof(ex), "-");
    else
        fdx_addr_format(&f->exporter, ex, sizeof(ex));
    fdx_addr_format(&f->src, sa, sizeof(sa));
    fdx_addr_format(&f->dst, da, sizeof(da));
    report_time(f->first_ms, t1, sizeof(t1));
    report_time(f->last_ms, t2, sizeof(t2));
    if (*fmt == REPORT_JSON)
        printf("{\"exporter\": \"%s\", \"exporter_port\": %u, "
               "\"version\": \"%s\", \"domain\": %" PRIu32 ", "
               "\"template\": %u, \"src\": \"%s\", \"dst\": \"%s\", "
               "\"sport\": %u, \"dport\": %u, \"proto\": %u, "
               "\"tcp_flags\": %u, \"octets\": %" PRIu64 ", "
               "\"packets\": %" PRIu64 ", \"first\": \"%s\", "
               "\"last\": \"%s\", \"sampling\": %" PRIu32 ", "
               "\"rev_octets\": %" PRIu64 ", \"rev_packets\": %" PRIu64
               ", \"flags\": %u}\n",
               ex, f->exporter_port, version_name(f->source), f->domain,
               f->template_id, sa, da, f->sport, f->dport, f->proto,
               f->tcp_flags, f->octets, f->packets, t1, t2, f->sampling,
               f->rev_octets, f->rev_packets, f->flags);
    else
        printf(*fmt == REPORT_CSV
                   ? "%s,%u,%s,%" PRIu32 ",%u,%s,%s,%u,%u,%u,%u,%" PRIu64
                     ",%" PRIu64 ",%s,%s,%" PRIu32 ",%" PRIu64 ",%" PRIu64
                     "\n"
                   : "%s:%u %s dom=%" PRIu32 " tpl=%u %s -> %s %u -> %u "
                     "proto=%u flags=0x%02x octets=%" PRIu64
                     " packets=%" PRIu64 " %s %s sampling=%" PRIu32
                     " rev_octets=%" PRIu64 " rev_packets=%" PRIu64 "\n",
               ex, f->exporter_port, version_name(f->source), f->domain,
               f->template_id, sa, da, f->sport, f->dport, f->proto,
               f->tcp_flags, f->octets, f->packets, t1, t2, f->sampling,
               f->rev_octets, f->rev_packets);
    return 0;
}

int cmd_flows(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"csv", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    enum report_format fmt = REPORT_TABLE;
    fdx_read_opts ro = {&cli_logger, NULL, NULL, NULL};
    int c, failed = 0;

    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
        case 'C':
            if (fmt != REPORT_TABLE)
                return cli_format_conflict("flows");
            fmt = c == 'j' ? REPORT_JSON : REPORT_CSV;
            break;
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
               "sampling,rev_octets,rev_packets\n");
    /* an input that cannot be read is reported; the others still are */
    for (int i = optind; i < argc; i++) {
        fdx_error err = {0, ""};
        int rc = fdx_read_path(argv[i], &ro, print_flow, &fmt, NULL, &err);

        if (rc >= 0)
            continue;
        cli_errorf("%s", err.msg[0] ? err.msg : fdx_strerror(rc));
        if (failed == 0)
            failed = cli_exit_code(rc);
        if (rc == FDX_ENOMEM)
            break;
    }
    return fflush(stdout) == 0 ? failed : EX_IOERR;
}
