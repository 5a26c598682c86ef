/*
 * flowdex scan and flowdex explain: read flow inputs, run the scan
 * pipeline against a catalog, print the inventory.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "flowdex/flowdex.h"
#include "readahead.h"
#include "report.h"

typedef struct scan_args {
    const char *catalog;
    const char *store;      /* --store URI, or NULL */
    enum report_format fmt;
    int explain;
    fdx_addr host;
    char **inputs;
    int ninputs;
} scan_args;

static void scan_usage(FILE *f, int explain)
{
    if (explain)
        fprintf(f, "usage: flowdex explain [-c CATALOG] [--json|--csv] "
                   "[-v|-q] HOST INPUT...\n");
    else
        fprintf(f, "usage: flowdex scan [-c CATALOG] [--json|--csv] "
                   "[--store URI] [-v|-q] INPUT...\n");
    fprintf(f,
        "\n"
        "  -c, --catalog FILE  catalog built by 'flowdex catalog build'\n"
        "                      (default " CLI_DEFAULT_CATALOG ")\n"
        "      --json          JSON output\n"
        "      --csv           CSV output, one line per claim\n"
        "      --store URI     also write the results to a store\n"
        "                      (sqlite:PATH or postgresql://...)\n"
        "  -v, --verbose       more messages on stderr (repeatable)\n"
        "  -q, --quiet         errors only\n"
        "  -h, --help          this help\n"
        "\n"
        "INPUT is an nfcapd file, an IPFIX file (RFC 5655), a pcap or\n"
        "pcapng capture of NetFlow v5, v9 or IPFIX export datagrams, or a\n"
        "directory of such files.\n");
}

static int parse_args(int argc, char **argv, scan_args *a)
{
    static const struct option opts[] = {
        {"catalog", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"csv", no_argument, NULL, 'C'},
        {"store", required_argument, NULL, 'S'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->catalog = optarg; break;
        case 'S': a->store = optarg; break;
        case 'j':
        case 'C':
            if (a->fmt != REPORT_TABLE)
                return cli_format_conflict(a->explain ? "explain" : "scan");
            a->fmt = c == 'j' ? REPORT_JSON : REPORT_CSV;
            break;
        case 'v': cli_verbosity(1); break;
        case 'q': cli_verbosity(-1); break;
        case 'h': scan_usage(stdout, a->explain); return 1;
        default: return cli_bad_option(a->explain ? "explain" : "scan", argv);
        }
    }
    if (a->explain) {
        if (optind >= argc) {
            cli_errorf("explain: expected a host address and inputs; "
                       "try 'flowdex explain --help'");
            return EX_USAGE;
        }
        if (fdx_addr_parse(&a->host, argv[optind]) < 0) {
            cli_errorf("explain: '%s' is not an IPv4 or IPv6 address",
                       argv[optind]);
            return EX_USAGE;
        }
        optind++;
    }
    if (optind >= argc) {
        cli_errorf("%s: no input given; try 'flowdex %s --help'",
                   a->explain ? "explain" : "scan",
                   a->explain ? "explain" : "scan");
        return EX_USAGE;
    }
    a->inputs = argv + optind;
    a->ninputs = argc - optind;
    return 0;
}

/*
 * The reading thread's state: the records read go to fn (the queue to
 * the scan), and on a terminal a progress line counts them.
 */
typedef struct reading {
    const scan_args *a;
    fdx_read_stats *rs;
    int *failed;
    fdx_flow_fn fn;
    void *fn_ud;
    uint64_t flows;
    int tty;
} reading;

#define PROGRESS_EVERY 1000000

static int count_flow(void *ud, const fdx_flow *flow)
{
    reading *r = ud;

    if (r->tty && ++r->flows % PROGRESS_EVERY == 0)
        fprintf(stderr, "\rflowdex: %" PRIu64 " flows read", r->flows);
    return r->fn(r->fn_ud, flow);
}

/*
 * Reads every input, on the reading thread.  An input that cannot be
 * read is reported and the others are still read and analysed; *failed
 * gets the exit code of the first such error.  Returns non-zero only
 * when nothing can go on (out of memory).
 */
static int read_all(void *ud, fdx_flow_fn fn, void *fn_ud)
{
    reading *r = ud;
    fdx_read_opts ro = {&cli_logger, NULL, NULL, NULL};

    r->fn = fn;
    r->fn_ud = fn_ud;
    for (int i = 0; i < r->a->ninputs; i++) {
        fdx_error err = {0, ""};
        int rc = fdx_read_path(r->a->inputs[i], &ro, count_flow, r, r->rs,
                               &err);

        if (rc >= 0)
            continue;
        if (r->tty && r->flows >= PROGRESS_EVERY)
            fputc('\n', stderr);
        cli_errorf("%s", err.msg[0] ? err.msg : fdx_strerror(rc));
        if (*r->failed == 0)
            *r->failed = cli_exit_code(rc);
        if (rc == FDX_ENOMEM)
            return EX_OSERR;
    }
    return 0;
}

/*
 * The inputs are decoded on a second thread while the scan stores the
 * records already read; they reach the scan in the order read, so the
 * result is the one of reading and adding them on one thread.
 */
static int read_inputs(const scan_args *a, fdx_scan *s, fdx_read_stats *rs,
                       int *failed)
{
    int tty = isatty(STDERR_FILENO) && cli_logger.max_level >= FDX_LOG_WARN;
    reading r = {a, rs, failed, NULL, NULL, 0, tty};
    int rc;

    readahead_run(read_all, &r, fdx_scan_add, s, &rc);
    if (r.tty && r.flows >= PROGRESS_EVERY)
        fprintf(stderr, "\rflowdex: %" PRIu64 " flows read, analysing\n",
                r.flows);
    return rc;
}

static void log_summary(const fdx_scan *s, const fdx_read_stats *rs)
{
    fdx_scan_stats st;

    fdx_scan_get_stats(s, &st);
    cli_info("event=scan files=%" PRIu64 " flows=%" PRIu64
                  " bad_datagrams=%" PRIu64 " connections=%" PRIu64
                  " downloads=%" PRIu64 " identified=%" PRIu64
                  " ambiguous=%" PRIu64 " several_files=%" PRIu64,
                  rs->files, st.flows, rs->bad_datagrams, st.connections,
                  st.downloads, st.identified, st.ambiguous, st.multi);
    if (st.flows_invalid > 0)
        cli_warn("event=invalid-counts flows=%" PRIu64
                 " note=\"records whose byte count no packet count can "
                 "carry were ignored\"", st.flows_invalid);
    if (st.flows_sampled > 0)
        cli_warn("event=sampled flows=%" PRIu64
                      " note=\"byte counts of sampled flows are estimates; "
                      "they were not used for size matching\"",
                      st.flows_sampled);
}

static int run(scan_args *a)
{
    fdx_catalog *cat = NULL;
    fdx_scan *s = NULL;
    fdx_error err = {0, ""};
    fdx_read_stats rs;
    fdx_scan_opts so = {&cli_logger, 0};
    int rc, failed = 0;

    memset(&rs, 0, sizeof(rs));
    rc = fdx_catalog_open(a->catalog, &cat, &err);
    if (rc < 0) {
        cli_errorf("%s", err.msg);
        return cli_exit_code(rc);
    }
    s = fdx_scan_new(cat, &so);
    if (s == NULL) {
        rc = EX_OSERR;
        cli_errorf("out of memory");
        goto out;
    }
    if ((rc = read_inputs(a, s, &rs, &failed)) != 0)
        goto out;
    if ((rc = fdx_scan_finish(s)) < 0) {
        cli_errorf("scan: %s", fdx_strerror(rc));
        rc = cli_exit_code(rc);
        goto out;
    }
    log_summary(s, &rs);
    if (a->explain && a->fmt != REPORT_TABLE) {
        rc = report_hosts(stdout, s, cat, a->fmt, &a->host);
    } else if (a->explain) {
        for (size_t i = 0; i < fdx_scan_host_count(s); i++)
            if (fdx_addr_cmp(&fdx_scan_host(s, i)->addr, &a->host) == 0) {
                rc = report_explain(stdout, fdx_scan_host(s, i), cat);
                goto out;
            }
        printf("no evidence for this host\n");
    } else {
        rc = report_hosts(stdout, s, cat, a->fmt, NULL);
    }
    if (rc == 0 && a->store != NULL)
        rc = cli_store_scan(a->store, cat, s);
out:
    if (rc < 0) {
        cli_errorf("%s", fdx_strerror(rc));
        rc = cli_exit_code(rc);
    }
    fdx_scan_free(s);
    fdx_catalog_close(cat);
    return rc != 0 ? rc : failed;  /* main() checks standard output */
}

static int scan_main(int argc, char **argv, int explain)
{
    scan_args a;
    int rc;

    memset(&a, 0, sizeof(a));
    a.catalog = CLI_DEFAULT_CATALOG;
    a.explain = explain;
    rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    return run(&a);
}

int cmd_scan(int argc, char **argv)
{
    return scan_main(argc, argv, 0);
}

int cmd_explain(int argc, char **argv)
{
    return scan_main(argc, argv, 1);
}
