/*
 * Exit codes and stderr logging shared by the subcommands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *cli_progname = "flowdex";

static void cli_log(void *ud, int level, const char *line)
{
    const char *name = level <= FDX_LOG_ERR    ? "error"
                       : level <= FDX_LOG_WARN ? "warning"
                       : level <= FDX_LOG_INFO ? "info"
                                               : "debug";
    (void)ud;
    fprintf(stderr, "%s: %s: %s\n", cli_progname, name, line);
}

fdx_logger cli_logger = {cli_log, NULL, FDX_LOG_WARN};

void cli_verbosity(int delta)
{
    int l = cli_logger.max_level + delta;

    if (delta > 0 && cli_logger.max_level == FDX_LOG_WARN)
        l = FDX_LOG_INFO + delta - 1;
    if (l < FDX_LOG_ERR)
        l = FDX_LOG_ERR;
    if (l > FDX_LOG_DEBUG)
        l = FDX_LOG_DEBUG;
    cli_logger.max_level = l;
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli_progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit_code(int code)
{
    switch (code) {
    case FDX_OK:
        return 0;
    case FDX_EUSAGE:
        return EX_USAGE;
    case FDX_ENOENT:
    case FDX_EACCES:
        return EX_NOINPUT;
    case FDX_EFORMAT:
    case FDX_ETRUNC:
    case FDX_ECORRUPT:
    case FDX_EVERSION:
    case FDX_ECHECKSUM:
    case FDX_EUNSUPPORTED:
    case FDX_ELIMIT:
        return EX_DATAERR;
    case FDX_ENET:
        return EX_UNAVAILABLE;
    case FDX_ENOMEM:
        return EX_OSERR;
    case FDX_EIO:
        return EX_IOERR;
    case FDX_ECANTCREAT:
        return EX_CANTCREAT;
    default:
        return EX_SOFTWARE;
    }
}

static void cli_vlog(int level, const char *fmt, va_list ap)
{
    char line[1024];

    if (level > cli_logger.max_level)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    cli_log(NULL, level, line);
}

void cli_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vlog(FDX_LOG_INFO, fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vlog(FDX_LOG_WARN, fmt, ap);
    va_end(ap);
}

int cli_bad_option(const char *cmd, char **argv)
{
    const char *opt = argv[optind - 1];

    if (optopt != 0 && (opt == NULL || opt[0] != '-' || opt[1] == '-' ||
                        opt[1] == '\0'))
        cli_errorf("%s: option '-%c' is unknown or lacks its argument; "
                   "try 'flowdex %s --help'", cmd, optopt, cmd);
    else
        cli_errorf("%s: option '%s' is unknown or lacks its argument; "
                   "try 'flowdex %s --help'", cmd, opt ? opt : "?", cmd);
    return EX_USAGE;
}

int cli_format_conflict(const char *cmd)
{
    cli_errorf("%s: --json and --csv exclude each other", cmd);
    return EX_USAGE;
}

/*
 * Output to a full disk or a broken file shows only when stdio flushes
 * it, after the command has returned; unchecked, the command exits 0 with
 * its output lost.  A lost output outweighs any other outcome: 74.
 */
int cli_close_stdout(int rc)
{
    int failed, e;

    errno = 0;
    failed = fflush(stdout) != 0 || ferror(stdout);
    e = errno;
    if (fclose(stdout) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    if (!failed)
        return rc;
    cli_errorf("standard output: write error%s%s", e ? ": " : "",
               e ? strerror(e) : "");
    return EX_IOERR;
}
