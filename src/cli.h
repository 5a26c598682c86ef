/*
 * Shared pieces of the flowdex command: exit codes, the stderr logger and
 * the subcommand entry points.
 */
#ifndef FLOWDEX_CLI_H
#define FLOWDEX_CLI_H

#include <sysexits.h>

#include "flowdex/common.h"

/*
 * Exit codes, documented in flowdex(1).  They follow sysexits(3):
 *   0  success
 *   64 EX_USAGE     bad command line
 *   65 EX_DATAERR   an input or catalog file is malformed, truncated,
 *                   of the wrong type, over a size limit, or fails its
 *                   checksum
 *   66 EX_NOINPUT   an input or catalog file does not exist or may not be
 *                   read
 *   69 EX_UNAVAILABLE  a mirror URL could not be fetched
 *   70 EX_SOFTWARE  internal error
 *   71 EX_OSERR     out of memory or another system error
 *   73 EX_CANTCREAT an output file can't be created
 *   74 EX_IOERR     read or write error (standard output too)
 */

/* Maps a library error code to the exit code above. */
int cli_exit_code(int fdx_code);

/* A logger printing "flowdex: level: line" to stderr. */
extern fdx_logger cli_logger;

/* Raise the logger's level by one step per -v, lower it with -q. */
void cli_verbosity(int delta);

/* The program name used in messages ("flowdex"). */
extern const char *cli_progname;

/* Prints "flowdex: msg" to stderr. */
void cli_errorf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Log through cli_logger at info / warning level. */
void cli_info(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cli_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Default catalog path when -c is not given. */
#define CLI_DEFAULT_CATALOG "/var/lib/flowdex/catalog.fdxc"

/*
 * One error line for an option getopt_long() rejected (opterr is off):
 * names the option and points to --help.  Returns EX_USAGE.
 */
int cli_bad_option(const char *cmd, char **argv);

/* One error line for two output formats given at once; EX_USAGE. */
int cli_format_conflict(const char *cmd);

/*
 * Flushes and closes standard output once the command is done.  Returns
 * rc, or EX_IOERR after one error line when something written to it was
 * lost.
 */
int cli_close_stdout(int rc);

int cmd_scan(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_flows(int argc, char **argv);
int cmd_catalog(int argc, char **argv);
int cmd_hosts(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_collect(int argc, char **argv);
int cmd_status(int argc, char **argv);

/*
 * flowdex scan --store: writes a finished scan's hosts to the store at
 * uri.  Returns 0, or an exit code after one error line naming the store.
 */
struct fdx_catalog;
struct fdx_scan;
int cli_store_scan(const char *uri, const struct fdx_catalog *cat,
                   const struct fdx_scan *s);

#endif /* FLOWDEX_CLI_H */
