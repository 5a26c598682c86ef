/*
 * Test helper, not a test: prints every flow record of the captures named
 * on the command line, one line each, then the reader's counters on stderr.
 * tests/check-cases.py compares its output with the exporter cases.
 *
 * Line: file src sport dst dport proto octets packets rev_octets
 *       rev_packets first_ms last_ms sampling flags source domain template
 *       exporter:port
 */
#include <inttypes.h>
#include <stdio.h>

#include "flowdex/flow.h"

static int print_flow(void *ud, const fdx_flow *f)
{
    char s[FDX_ADDRSTRLEN], d[FDX_ADDRSTRLEN], e[FDX_ADDRSTRLEN];

    printf("%s %s %u %s %u %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %" PRIu64 " %u %u %u %u %u %s:%u\n",
           (const char *)ud, fdx_addr_format(&f->src, s, sizeof(s)),
           f->sport, fdx_addr_format(&f->dst, d, sizeof(d)), f->dport,
           f->proto, f->octets, f->packets, f->rev_octets, f->rev_packets,
           f->first_ms, f->last_ms, f->sampling, f->flags, f->source,
           f->domain, f->template_id,
           fdx_addr_format(&f->exporter, e, sizeof(e)), f->exporter_port);
    return 0;
}

static void log_line(void *ud, int level, const char *line)
{
    (void)ud;
    fprintf(stderr, "log %d %s\n", level, line);
}

int main(int argc, char **argv)
{
    fdx_logger log = {log_line, NULL, FDX_LOG_DEBUG};
    fdx_read_opts opts = {&log, NULL, NULL, NULL};
    int status = 0;

    for (int i = 1; i < argc; i++) {
        fdx_read_stats st = {0};
        fdx_error err = {0, ""};
        int rc = fdx_read_capture(argv[i], &opts, print_flow, argv[i], &st,
                                  &err);

        if (rc < 0) {
            fprintf(stderr, "error %s\n", err.msg);
            status = 1;
        }
        fprintf(stderr, "stats %s packets=%" PRIu64 " datagrams=%" PRIu64
                " flows=%" PRIu64 " skipped=%" PRIu64 " bad_datagrams=%"
                PRIu64 " bad_records=%" PRIu64 " no_template=%" PRIu64
                " seq_lost=%" PRIu64 " limit_hits=%" PRIu64 " refused=%" PRIu64 "\n", argv[i],
                st.packets, st.datagrams, st.flows, st.skipped_frames,
                st.bad_datagrams, st.bad_records, st.no_template,
                st.seq_lost, st.limit_hits, st.refused);
    }
    return status;
}
