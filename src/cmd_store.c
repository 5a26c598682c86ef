/*
 * flowdex hosts and flowdex host: print the inventory kept in a store;
 * and the writing half of flowdex scan --store.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flowdex/flowdex.h"
#include "report.h"

typedef struct store_args {
    const char *store;
    enum report_format fmt;
    int one;                 /* flowdex host ADDR */
    fdx_addr host;
} store_args;

static void store_usage(FILE *f, int one)
{
    if (one)
        fprintf(f, "usage: flowdex host --store URI [--json] [-v|-q] "
                   "ADDRESS\n");
    else
        fprintf(f, "usage: flowdex hosts --store URI [--json|--csv] "
                   "[-v|-q]\n");
    fprintf(f,
        "\n"
        "  -s, --store URI     the store: sqlite:PATH or postgresql://...\n"
        "                      (see flowdex-store(5))\n"
        "      --json          JSON output\n"
        "%s"
        "  -v, --verbose       more messages on stderr (repeatable)\n"
        "  -q, --quiet         errors only\n"
        "  -h, --help          this help\n",
        one ? "" : "      --csv           CSV output, one line per claim\n");
}

/* The one-line error for a failed store call, and its exit code. */
static int store_failed(int rc, const fdx_error *err)
{
    cli_errorf("%s", err->msg[0] ? err->msg : fdx_strerror(rc));
    return cli_exit_code(rc);
}

static int parse_host(store_args *a, int argc, char **argv, const char *cmd)
{
    if (optind >= argc) {
        cli_errorf("%s: expected a host address; try 'flowdex %s --help'",
                   cmd, cmd);
        return EX_USAGE;
    }
    if (fdx_addr_parse(&a->host, argv[optind]) < 0) {
        cli_errorf("%s: '%s' is not an IPv4 or IPv6 address", cmd,
                   argv[optind]);
        return EX_USAGE;
    }
    optind++;
    return 0;
}

static int parse_args(int argc, char **argv, store_args *a)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"csv", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *cmd = a->one ? "host" : "hosts";
    int c, rc;

    while ((c = getopt_long(argc, argv, "s:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 's': a->store = optarg; break;
        case 'j':
        case 'C':
            if (a->fmt != REPORT_TABLE)
                return cli_format_conflict(cmd);
            if (c == 'C' && a->one)
                return cli_bad_option(cmd, argv);
            a->fmt = c == 'j' ? REPORT_JSON : REPORT_CSV;
            break;
        case 'v': cli_verbosity(1); break;
        case 'q': cli_verbosity(-1); break;
        case 'h': store_usage(stdout, a->one); return 1;
        default: return cli_bad_option(cmd, argv);
        }
    }
    if (a->store == NULL) {
        cli_errorf("%s: no store given (--store URI); try 'flowdex %s "
                   "--help'", cmd, cmd);
        return EX_USAGE;
    }
    if (a->one && (rc = parse_host(a, argc, argv, cmd)) != 0)
        return rc;
    if (optind < argc) {
        cli_errorf("%s: unexpected argument '%s'", cmd, argv[optind]);
        return EX_USAGE;
    }
    return 0;
}

typedef struct print_ctx {
    enum report_format fmt;
    size_t shown;
} print_ctx;

static int print_host(void *ud, const fdx_store_host *h)
{
    print_ctx *p = ud;

    report_host(stdout, h, p->fmt, p->shown++);
    return 0;
}

static int list_hosts(fdx_store *st, enum report_format fmt, fdx_error *err)
{
    print_ctx p = {fmt, 0};
    fdx_store_stats stats;
    int rc;

    report_begin(stdout, fmt);
    if ((rc = fdx_store_each_host(st, print_host, &p, err)) < 0)
        return rc;
    if ((rc = fdx_store_get_stats(st, &stats, err)) < 0)
        return rc;
    report_end_store(stdout, fmt, &stats, fdx_store_schema_version(st));
    return 0;
}

static int show_host(fdx_store *st, const store_args *a, fdx_error *err)
{
    fdx_store_host h;
    int rc = fdx_store_get_host(st, &a->host, &h, err);

    if (rc < 0)
        return rc;
    report_store_host(stdout, &h, a->fmt);
    fdx_store_host_free(&h);
    return 0;
}

static int store_main(int argc, char **argv, int one)
{
    store_args a;
    fdx_store_opts so = {&cli_logger, 1, 0, 0};
    fdx_store *st = NULL;
    fdx_error err = {0, ""};
    int rc;

    memset(&a, 0, sizeof(a));
    a.one = one;
    if ((rc = parse_args(argc, argv, &a)) != 0)
        return rc == 1 ? 0 : rc;
    if ((rc = fdx_store_open(a.store, &so, &st, &err)) < 0)
        return store_failed(rc, &err);
    rc = one ? show_host(st, &a, &err) : list_hosts(st, a.fmt, &err);
    fdx_store_close(st);
    if (rc == FDX_ENOTFOUND) {
        cli_errorf("%s", err.msg);
        return EX_NOINPUT;  /* documented: a host the store lacks */
    }
    return rc < 0 ? store_failed(rc, &err) : 0;
}

int cmd_hosts(int argc, char **argv)
{
    return store_main(argc, argv, 0);
}

int cmd_host(int argc, char **argv)
{
    return store_main(argc, argv, 1);
}

int cli_store_scan(const char *uri, const fdx_catalog *cat,
                   const fdx_scan *s)
{
    fdx_store_opts so = {&cli_logger, 0, 0, 0};
    fdx_store *st = NULL;
    fdx_error err = {0, ""};
    int rc;

    if ((rc = fdx_store_open(uri, &so, &st, &err)) < 0)
        return store_failed(rc, &err);
    rc = fdx_store_put_scan(st, cat, s, NULL, &err);
    fdx_store_close(st);
    return rc < 0 ? store_failed(rc, &err) : 0;
}
