/*
 * flowdex: identify operating systems and software from flow records.
 * This file only dispatches to the subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: flowdex <command> [options] ...\n"
        "\n"
        "commands:\n"
        "  scan     infer each host's OS and packages from flow files\n"
        "  explain  print the evidence for one host\n"
        "  flows    print the decoded flow records of flow files\n"
        "  catalog  build or describe a catalog of repository files\n"
        "  hosts    print the inventory kept in a store\n"
        "  host     print one host of a store, with its history\n"
        "  collect  receive NetFlow/IPFIX exports into a store (daemon)\n"
        "  status   print the counters a collector last wrote\n"
        "\n"
        "Run 'flowdex <command> --help' for a command's options,\n"
        "and see flowdex(1).\n");
}

static int run(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    opterr = 0;        /* each command reports a bad option in one line */
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("flowdex %s\n", FDX_VERSION);
        return 0;
    }
    if (strcmp(cmd, "scan") == 0)
        return cmd_scan(argc - 1, argv + 1);
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(argc - 1, argv + 1);
    if (strcmp(cmd, "flows") == 0)
        return cmd_flows(argc - 1, argv + 1);
    if (strcmp(cmd, "catalog") == 0)
        return cmd_catalog(argc - 1, argv + 1);
    if (strcmp(cmd, "hosts") == 0)
        return cmd_hosts(argc - 1, argv + 1);
    if (strcmp(cmd, "host") == 0)
        return cmd_host(argc - 1, argv + 1);
    if (strcmp(cmd, "collect") == 0)
        return cmd_collect(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    cli_errorf("unknown command '%s'; try 'flowdex --help'", cmd);
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    return cli_close_stdout(run(argc, argv));
}
