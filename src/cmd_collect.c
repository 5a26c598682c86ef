/*
 * flowdex collect: a NetFlow v5/v9/IPFIX collector keeping a durable
 * inventory.  UDP sockets feed one decoder (the exporter is the sender's
 * address and port), the records feed a stream (stream.h), and every
 * commit interval the hosts it recomputed are written to the store in
 * one transaction.  Options come from defaults, then the configuration
 * file (config.h), then the command line; SIGHUP reads the last two
 * again.  See flowdex-collect(8) and flowdex.conf(5).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "cli.h"
#include "collect.h"
#include "config.h"
#include "flowdex/flowdex.h"
#include "httpd.h"
#include "metrics.h"
#include "rxq.h"
#include "udp.h"

#define DEFAULT_CONFIG "/etc/flowdex/flowdex.conf"
#define LISTEN_MAX 16
#define STRINGS_MAX 512
/* datagrams taken from the receive queue before the commit clock and
 * the signals are looked at again */
#define QUEUE_BURST 1024
#define WORKER_NICE_STEP 5      /* the matcher's nice above the receiver's */
#define WORKER_NICE_MAX 19
#define QUEUE_DEFAULT (256ull << 20)
#define QUEUE_MIN (1ull << 20)
#define QUEUE_MAX (64ull << 30)

/* Everything a configuration file or the command line can set. */
typedef struct collect_opts {
    const char *config;
    int config_given;           /* --config: the file must exist */
    const char *listen[LISTEN_MAX];
    size_t nlisten;
    const char *catalog, *store, *collector_id, *user, *status_file;
    const char *metrics;        /* --metrics ADDR:PORT, or NULL */
    udp_allow allow;
    unsigned commit_interval_s;
    unsigned retention_days;    /* evidence kept; 0: all of it */
    int rcvbuf_bytes;
    unsigned long long queue_bytes;
    int use_syslog;
    int log_level;
    int verbosity;              /* -v/-q steps from the command line */
    int from_file_lists;        /* listen/allow set by the file so far */
    char *strings[STRINGS_MAX]; /* copies of the file's values */
    size_t nstrings;
} collect_opts;

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_stop = sig;
}

static void opts_free(collect_opts *o)
{
    for (size_t i = 0; i < o->nstrings; i++)
        free(o->strings[i]);
    o->nstrings = 0;
}

static void opts_defaults(collect_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->config = DEFAULT_CONFIG;
    o->catalog = CLI_DEFAULT_CATALOG;
    o->commit_interval_s = 10;
    o->retention_days = 90;
    o->rcvbuf_bytes = 8 << 20;
    o->queue_bytes = QUEUE_DEFAULT;
    o->log_level = FDX_LOG_WARN;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
    char *end;

    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    *out = strtoul(v, &end, 10);
    return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

/* BYTES, or a number with K, M or G (powers of 1024). */
static int parse_size(const char *v, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    unsigned long long n;
    unsigned shift = 0;
    char *end;

    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end != '\0' || n > (max >> shift))
        return -1;
    n <<= shift;
    if (n < min)
        return -1;
    *out = n;
    return 0;
}

static int parse_level(const char *v, int *level)
{
    static const struct { const char *name; int level; } names[] = {
        {"error", FDX_LOG_ERR}, {"warning", FDX_LOG_WARN},
        {"info", FDX_LOG_INFO}, {"debug", FDX_LOG_DEBUG}};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(v, names[i].name) == 0) {
            *level = names[i].level;
            return 0;
        }
    return -1;
}

static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "1") == 0)
        return *out = 1, 0;
    if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
        strcmp(v, "0") == 0)
        return *out = 0, 0;
    return -1;
}

/* The settings taking a number or a word. */
static int opt_set_scalar(collect_opts *o, const char *key, const char *v,
                          const char **why)
{
    unsigned long n;

    if (strcmp(key, "commit-interval") == 0) {
        *why = "commit-interval: expected seconds from 1 to 86400";
        if (parse_uint(v, 86400, &n) < 0 || n == 0)
            return -1;
        o->commit_interval_s = (unsigned)n;
    } else if (strcmp(key, "retention-days") == 0) {
        *why = "retention-days: expected days from 0 (keep all) to 36500";
        if (parse_uint(v, 36500, &n) < 0)
            return -1;
        o->retention_days = (unsigned)n;
    } else if (strcmp(key, "rcvbuf") == 0) {
        *why = "rcvbuf: expected bytes from 65536 to 1073741824";
        if (parse_uint(v, 1u << 30, &n) < 0 || n < 65536)
            return -1;
        o->rcvbuf_bytes = (int)n;
    } else if (strcmp(key, "queue-size") == 0) {
        *why = "queue-size: expected bytes (or K, M, G) from 1M to 64G";
        if (parse_size(v, QUEUE_MIN, QUEUE_MAX, &o->queue_bytes) < 0)
            return -1;
    } else if (strcmp(key, "syslog") == 0) {
        *why = "syslog: expected yes or no";
        return parse_bool(v, &o->use_syslog);
    } else if (strcmp(key, "log-level") == 0) {
        *why = "log-level: expected error, warning, info or debug";
        return parse_level(v, &o->log_level);
    } else {
        *why = "unknown setting";
        return -1;
    }
    return 0;
}

/* A collector id goes into the store, the status file's key=value
 * lines and the metrics' labels: printable, no blanks. */
static int id_ok(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] == 0x7f)
            return 0;
    return 1;
}

/* The settings taking a path, a name or a list element. */
static int opt_set_text(collect_opts *o, const char *key, const char *v,
                        const char **why)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (strcmp(key, "listen") == 0) {
        if (udp_endpoint_parse(v, &ss, &len, why) < 0)
            return -1;
        *why = "at most 16 listen addresses";
        if (o->nlisten == LISTEN_MAX)
            return -1;
        o->listen[o->nlisten++] = v;
    } else if (strcmp(key, "allow") == 0) {
        return udp_allow_add(&o->allow, v, why);
    } else if (strcmp(key, "catalog") == 0) {
        o->catalog = v;
    } else if (strcmp(key, "store") == 0) {
        o->store = v;
    } else if (strcmp(key, "collector-id") == 0) {
        *why = "collector-id: expected 1 to 64 printable characters, no "
               "blanks";
        if (!id_ok(v))
            return -1;
        o->collector_id = v;
    } else if (strcmp(key, "user") == 0) {
        o->user = v;
    } else if (strcmp(key, "status-file") == 0) {
        o->status_file = v;
    } else if (strcmp(key, "metrics") == 0) {
        if (udp_endpoint_parse(v, &ss, &len, why) < 0)
            return -1;
        o->metrics = v;
    } else {
        return opt_set_scalar(o, key, v, why);
    }
    return 0;
}

/* config_fn: a setting of the file; its value is copied. */
static int opt_from_file(void *ud, const char *key, const char *value,
                         const char **why)
{
    collect_opts *o = ud;
    char *v;

    *why = "too many settings";
    if (o->nstrings == STRINGS_MAX || (v = strdup(value)) == NULL)
        return -1;
    o->strings[o->nstrings++] = v;
    return opt_set_text(o, key, v, why);
}

static void collect_usage(FILE *f)
{
    fprintf(f,
        "usage: flowdex collect --listen ADDR:PORT [--listen ...] "
        "[-c CATALOG]\n"
        "                       --store URI [--allow PREFIX ...] "
        "[options]\n"
        "\n"
        "      --listen ADDR:PORT  UDP address to receive exports on\n"
        "                          (A.B.C.D:PORT, [V6]:PORT, or PORT: all)\n"
        "  -c, --catalog FILE      catalog (default " CLI_DEFAULT_CATALOG
        ")\n"
        "  -s, --store URI         sqlite:PATH or postgresql://...\n"
        "      --allow PREFIX      accept exports only from ADDR or "
        "ADDR/BITS\n"
        "                          (repeatable; default: from anyone)\n"
        "      --commit-interval S seconds between store commits (10)\n"
        "      --retention-days N  evidence kept, by flow time (90; 0: "
        "all)\n"
        "      --collector-id NAME name written with each claim\n"
        "      --status-file FILE  counters written at each commit\n"
        "      --metrics ADDR:PORT serve them as Prometheus text on\n"
        "                          http://ADDR:PORT/metrics (TCP)\n"
        "      --rcvbuf BYTES      receive buffer asked for (8 MiB)\n"
        "      --queue-size SIZE   datagrams held for the decoder, in\n"
        "                          bytes or with K, M, G (256M)\n"
        "      --user NAME         drop privileges after binding\n"
        "      --syslog            log to syslog instead of stderr\n"
        "      --log-level LEVEL   error, warning, info or debug\n"
        "      --config FILE       settings file (default "
        DEFAULT_CONFIG ",\n"
        "                          read only if it exists)\n"
        "  -v, --verbose / -q, --quiet  more or fewer messages\n"
        "  -h, --help              this help\n"
        "\n"
        "Command-line options override the file; see flowdex-collect(8)\n"
        "and flowdex.conf(5).\n");
}

static const struct option collect_longopts[] = {
    {"listen", required_argument, NULL, 0},
    {"allow", required_argument, NULL, 0},
    {"catalog", required_argument, NULL, 'c'},
    {"store", required_argument, NULL, 's'},
    {"commit-interval", required_argument, NULL, 0},
    {"retention-days", required_argument, NULL, 0},
    {"collector-id", required_argument, NULL, 0},
    {"status-file", required_argument, NULL, 0},
    {"metrics", required_argument, NULL, 0},
    {"rcvbuf", required_argument, NULL, 0},
    {"queue-size", required_argument, NULL, 0},
    {"user", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"syslog", no_argument, NULL, 'S'},
    {"config", required_argument, NULL, 'F'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* First pass: --config and --help only.  Returns 1 for --help. */
static int scan_config_flag(int argc, char **argv, collect_opts *o)
{
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:s:vqh", collect_longopts,
                            NULL)) != -1) {
        if (c == 'F') {
            o->config = optarg;
            o->config_given = 1;
        } else if (c == 'h') {
            collect_usage(stdout);
            return 1;
        } else if (c == '?') {
            return cli_bad_option("collect", argv);
        }
    }
    if (optind < argc) {
        cli_errorf("collect: unexpected argument '%s'", argv[optind]);
        return EX_USAGE;
    }
    return 0;
}

/* One flag; the lists given on the command line replace the file's. */
static int apply_flag(collect_opts *o, const char *key, const char *v,
                      int *lists_seen)
{
    const char *why = NULL;

    if (strcmp(key, "listen") == 0 && !(*lists_seen & 1)) {
        o->nlisten = 0;
        *lists_seen |= 1;
    } else if (strcmp(key, "allow") == 0 && !(*lists_seen & 2)) {
        o->allow.n = 0;
        *lists_seen |= 2;
    }
    if (opt_set_text(o, key, v, &why) == 0)
        return 0;
    cli_errorf("collect: --%s %s: %s", key, v, why);
    return EX_USAGE;
}

/* Second pass: every flag, over what the file set. */
static int apply_flags(int argc, char **argv, collect_opts *o)
{
    int c, idx, lists_seen = 0, rc = 0;

    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "c:s:vqh",
                                       collect_longopts, &idx)) != -1) {
        switch (c) {
        case 0:
            rc = apply_flag(o, collect_longopts[idx].name, optarg,
                            &lists_seen);
            break;
        case 'c': o->catalog = optarg; break;
        case 's': o->store = optarg; break;
        case 'S': o->use_syslog = 1; break;
        case 'v': o->verbosity++; break;
        case 'q': o->verbosity--; break;
        default: break;
        }
    }
    return rc;
}

/*
 * Defaults, then the file, then the flags.  Returns 0, 1 (--help done),
 * EX_USAGE (bad flag) or EX_CONFIG (bad or unreadable file).
 */
static int load_opts(int argc, char **argv, collect_opts *o)
{
    char msg[CONFIG_LINE_MAX + 256];
    int rc;

    opts_defaults(o);
    if ((rc = scan_config_flag(argc, argv, o)) != 0)
        return rc;
    rc = config_read(o->config, opt_from_file, o, msg, sizeof(msg));
    if (rc < 0 || (rc == 1 && o->config_given)) {
        if (rc == 1)
            snprintf(msg, sizeof(msg), "%s: no such file", o->config);
        cli_errorf("collect: %s", msg);
        return EX_CONFIG;
    }
    if ((rc = apply_flags(argc, argv, o)) != 0)
        return rc;
    if (o->nlisten == 0 || o->store == NULL) {
        cli_errorf("collect: %s; try 'flowdex collect --help'",
                   o->nlisten == 0 ? "no --listen address given"
                                   : "no --store given");
        return EX_USAGE;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Logging                                                           */
/* ---------------------------------------------------------------- */

static void syslog_line(void *ud, int level, const char *line)
{
    (void)ud;
    syslog(level, "%s", line);
}

static void log_setup(const collect_opts *o)
{
    static int syslog_open;

    cli_logger.max_level = o->log_level;
    cli_verbosity(o->verbosity);
    if (o->use_syslog && !syslog_open) {
        openlog("flowdex-collect", LOG_PID, LOG_DAEMON);
        syslog_open = 1;
    }
    cli_logger.fn = o->use_syslog ? syslog_line : cli_logger.fn;
}

static void log_at(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void log_at(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > cli_logger.max_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cli_logger.fn(cli_logger.ud, level, line);
}

/* ---------------------------------------------------------------- */
/* The daemon                                                        */
/* ---------------------------------------------------------------- */

typedef struct daemon_state {
    collect_opts opts;
    int argc;
    char **argv;
    int fds[LISTEN_MAX];
    collect_socket_info socks[LISTEN_MAX];
    char names[LISTEN_MAX][64];
    size_t nfds;
    fdx_catalog *cat;
    fdx_store *store;
    collect col;
    httpd http;                 /* --metrics; fd -1 without */
    char metrics_name[64];
    uint64_t pruned_wall_ms;    /* when evidence was last pruned */
    rxq *rx;                    /* the receive thread over fds */
} daemon_state;

/* Binds every --listen address; a failure is EX_OSERR (71). */
static int open_sockets(daemon_state *d)
{
    const collect_opts *o = &d->opts;

    for (size_t i = 0; i < o->nlisten; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        const char *why;
        int granted;

        (void)udp_endpoint_parse(o->listen[i], &ss, &len, &why);
        d->fds[i] = udp_open(&ss, len, o->rcvbuf_bytes, &granted);
        if (d->fds[i] < 0) {
            log_at(FDX_LOG_ERR, "event=bind-failed listen=%s error=\"%s\"",
                   o->listen[i], strerror(errno));
            return EX_OSERR;
        }
        d->nfds++;
        udp_endpoint_format(&ss, d->names[i], sizeof(d->names[i]));
        d->socks[i].listen = d->names[i];
        d->socks[i].rcvbuf_bytes = granted;
        log_at(granted < o->rcvbuf_bytes ? FDX_LOG_WARN : FDX_LOG_INFO,
               "event=listen listen=%s rcvbuf_asked=%d rcvbuf_granted=%d%s",
               d->names[i], o->rcvbuf_bytes, granted,
               granted < o->rcvbuf_bytes ? " note=\"raise "
               "net.core.rmem_max for a larger buffer\"" : "");
    }
    return 0;
}

/* httpd_page_fn of /metrics. */
static int metrics_page(void *ud, FILE *out)
{
    daemon_state *d = ud;

    return metrics_write(out, &d->col, d->socks, d->nfds, &d->http);
}

/* Binds --metrics, like the UDP sockets before dropping privileges. */
static int open_metrics(daemon_state *d)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;

    if (d->opts.metrics == NULL)
        return 0;
    (void)udp_endpoint_parse(d->opts.metrics, &ss, &len, &why);
    if (httpd_listen(&d->http, &ss, len) < 0) {
        log_at(FDX_LOG_ERR, "event=bind-failed metrics=%s error=\"%s\"",
               d->opts.metrics, strerror(errno));
        return EX_OSERR;
    }
    udp_endpoint_format(&ss, d->metrics_name, sizeof(d->metrics_name));
    log_at(FDX_LOG_INFO, "event=metrics-listen metrics=%s path=/metrics",
           d->metrics_name);
    return 0;
}

/* setgid/initgroups/setuid to --user once the sockets are bound. */
static int drop_privileges(const collect_opts *o)
{
    struct passwd *pw;

    if (o->user == NULL) {
        if (geteuid() == 0)
            log_at(FDX_LOG_WARN, "event=running-as-root note=\"give "
                   "--user to drop privileges after binding\"");
        return 0;
    }
    if ((pw = getpwnam(o->user)) == NULL) {
        log_at(FDX_LOG_ERR, "event=no-such-user user=%s", o->user);
        return EX_NOUSER;
    }
    if (setgroups(0, NULL) < 0 && errno != EPERM)
        return EX_OSERR;
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
        setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_at(FDX_LOG_ERR, "event=setuid-failed user=%s error=\"%s\"",
               o->user, strerror(errno));
        return EX_OSERR;
    }
    log_at(FDX_LOG_INFO, "event=privileges-dropped user=%s uid=%ld",
           o->user, (long)pw->pw_uid);
    return 0;
}

static int open_catalog(const char *path, fdx_catalog **out)
{
    fdx_error err = {0, ""};
    int rc = fdx_catalog_open(path, out, &err);

    if (rc < 0)
        log_at(FDX_LOG_ERR, "event=catalog-failed catalog=%s error=\"%s\"",
               path, err.msg);
    return rc;
}

static int open_store(daemon_state *d)
{
    /* a collector's scores add up across its restarts */
    fdx_store_opts so = {&cli_logger, 0, 0, 1};
    fdx_error err = {0, ""};
    int rc = fdx_store_open(d->opts.store, &so, &d->store, &err);

    if (rc < 0)
        log_at(FDX_LOG_ERR, "event=store-failed store=%s error=\"%s\"",
               d->opts.store, err.msg);
    return rc;
}

/* The receive thread's counters into the status file's lines. */
static void socket_counters(daemon_state *d)
{
    for (size_t i = 0; i < d->nfds && d->rx != NULL; i++) {
        rxq_counters c;

        rxq_get_counters(d->rx, i, &c);
        d->socks[i].datagrams = c.datagrams;
        d->socks[i].queue_drops = c.queue_drops;
        d->socks[i].kernel_drops = c.kernel_drops;
    }
    if (d->rx != NULL) {
        rxq_depth q;

        rxq_get_depth(d->rx, &q);
        d->col.queue_size = q.size;
        d->col.queue_bytes = q.bytes;
        d->col.queue_peak = q.peak;
    }
}

/* Advances or flushes, writes the store and the status file. */
/* Evidence is pruned after a commit, once an hour, and at the last. */
#define PRUNE_EVERY_MS (3600 * 1000ull)

/*
 * Removes the evidence older than the retention, by the flow clock (a
 * replay of old exports keeps what it brings); the claims stay.  A
 * failure is logged and tried again at the next hour.
 */
static void prune(daemon_state *d, int final)
{
    uint64_t keep_ms = d->opts.retention_days * 86400000ull;
    uint64_t now = collect_now_ms(&d->col), wall = collect_wall_ms();
    uint64_t removed = 0;
    fdx_error err = {0, ""};

    if (keep_ms == 0 || now <= keep_ms ||
        (!final && wall - d->pruned_wall_ms < PRUNE_EVERY_MS))
        return;
    d->pruned_wall_ms = wall;
    if (fdx_store_prune(d->store, now - keep_ms, &removed, &err) < 0)
        log_at(FDX_LOG_ERR, "event=prune-failed store=%s error=\"%s\"",
               d->opts.store, err.msg);
    else if (removed > 0)
        log_at(FDX_LOG_INFO, "event=pruned store=%s evidence=%" PRIu64
               " retention_days=%u", d->opts.store, removed,
               d->opts.retention_days);
}

static int commit(daemon_state *d, int final)
{
    fdx_error err = {0, ""};
    uint64_t before = d->col.hosts_written, failing = d->col.commit_failing;
    uint64_t t0 = collect_wall_ms();
    int rc = collect_commit(&d->col, d->store, final, &err);

    if (rc < 0)
        log_at(FDX_LOG_ERR, "event=commit-failed store=%s hosts=%zu "
               "failures=%" PRIu64 " error=\"%s\" note=\"kept for the "
               "next commit\"", d->opts.store, d->col.nbatch,
               d->col.commit_failing, err.msg);
    else if (failing > 0)
        log_at(FDX_LOG_WARN, "event=commit-recovered store=%s hosts=%"
               PRIu64 " failed_commits=%" PRIu64, d->opts.store,
               d->col.hosts_written - before, failing);
    else
        log_at(FDX_LOG_DEBUG, "event=commit hosts=%" PRIu64 " final=%d "
               "duration_ms=%" PRIu64, d->col.hosts_written - before, final,
               collect_wall_ms() - t0);
    if (rc == 0)
        prune(d, final);
    socket_counters(d);
    if (d->opts.status_file != NULL &&
        collect_write_status(&d->col, d->opts.status_file, d->socks,
                             d->nfds) < 0)
        log_at(FDX_LOG_WARN, "event=status-failed file=%s error=\"%s\"",
               d->opts.status_file, strerror(errno));
    return rc;
}

/* Feeds up to max queued datagrams to the collector; returns 1 when
 * more are waiting. */
static int take_queued(daemon_state *d, size_t max)
{
    rxq_item it;

    for (size_t i = 0; i < max; i++) {
        if (!rxq_take(d->rx, &it))
            return 0;
        collect_datagram(&d->col, &it.sender, it.port, it.data, it.len);
        rxq_release(d->rx);
    }
    return 1;
}

static int same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int origin_same(const fdx_catalog *a, const fdx_catalog *b,
                       uint32_t i)
{
    fdx_origin x, y;

    fdx_catalog_origin(a, i, &x);
    fdx_catalog_origin(b, i, &y);
    return same_text(x.family, y.family) && same_text(x.archive, y.archive)
           && same_text(x.suite, y.suite) &&
           same_text(x.codename, y.codename) &&
           same_text(x.version, y.version) &&
           same_text(x.release, y.release);
}

static int entry_same(const fdx_catalog *a, const fdx_catalog *b,
                      size_t i)
{
    fdx_entry x, y;

    fdx_catalog_entry(a, i, &x);
    fdx_catalog_entry(b, i, &y);
    return x.size == y.size && x.origin == y.origin && x.kind == y.kind &&
           same_text(x.path, y.path) && same_text(x.package, y.package) &&
           same_text(x.version, y.version) && same_text(x.arch, y.arch);
}

/* Whether two catalogs hold the same origins and entries, in the same
 * order (the engine holds entry indexes).  A compressed copy of a
 * catalog is the same as the catalog. */
static int catalog_same(const fdx_catalog *a, const fdx_catalog *b)
{
    size_t n = fdx_catalog_count(a), no = fdx_catalog_origin_count(a);

    if (n != fdx_catalog_count(b) || no != fdx_catalog_origin_count(b) ||
        fdx_catalog_format(a) != fdx_catalog_format(b))
        return 0;
    for (uint32_t i = 0; i < no; i++)
        if (!origin_same(a, b, i))
            return 0;
    for (size_t i = 0; i < n; i++)
        if (!entry_same(a, b, i))
            return 0;
    return 1;
}

/* Settings that only a restart can change: said, not applied. */
static void reload_warn_fixed(const collect_opts *old,
                              const collect_opts *neu)
{
    int same = old->nlisten == neu->nlisten;

    for (size_t i = 0; same && i < old->nlisten; i++)
        same = strcmp(old->listen[i], neu->listen[i]) == 0;
    if (!same)
        log_at(FDX_LOG_WARN, "event=reload setting=listen "
               "note=\"needs a restart; the sockets are kept\"");
    if (strcmp(old->store, neu->store) != 0)
        log_at(FDX_LOG_WARN, "event=reload setting=store "
               "note=\"needs a restart; the store is kept\"");
    if (!same_text(old->metrics, neu->metrics))
        log_at(FDX_LOG_WARN, "event=reload setting=metrics "
               "note=\"needs a restart; the endpoint is kept\"");
    if (old->queue_bytes != neu->queue_bytes)
        log_at(FDX_LOG_WARN, "event=reload setting=queue-size "
               "note=\"needs a restart; the queue is kept\"");
    if (!same_text(old->collector_id, neu->collector_id))
        log_at(FDX_LOG_WARN, "event=reload setting=collector-id "
               "note=\"needs a restart; the name is kept\"");
}

/*
 * Swaps in the new catalog.  The stream holds the old one's entry
 * indexes, so a changed catalog means a new stream: what it held is
 * flushed and committed first, and the open connections, endpoint
 * models and waiting connections start afresh.
 */
static int reload_catalog(daemon_state *d, const char *path)
{
    fdx_catalog *cat = NULL;
    fdx_error err = {0, ""};
    fdx_stream_stats s;

    if (open_catalog(path, &cat) < 0)
        return -1;
    if (catalog_same(cat, d->cat)) {
        fdx_catalog_close(cat);
        log_at(FDX_LOG_INFO, "event=reload catalog=unchanged stream=kept");
        return 0;
    }
    fdx_stream_get_stats(d->col.stream, &s);
    if (collect_set_catalog(&d->col, cat, d->store, &err) < 0) {
        log_at(FDX_LOG_ERR, "event=reload-failed catalog=%s error=\"%s\" "
               "note=\"the old catalog is kept\"", path, err.msg);
        fdx_catalog_close(cat);
        return -1;
    }
    fdx_catalog_close(d->cat);
    d->cat = cat;
    log_at(FDX_LOG_WARN, "event=reload catalog=changed stream=reset "
           "open_connections=%" PRIu64 " servers=%" PRIu64 " hosts=%" PRIu64
           " note=\"open connections were flushed and committed; endpoint "
           "models and host scores start afresh\"", s.open,
           s.servers_tracked, s.hosts);
    return 0;
}

/* SIGHUP: the file and flags again, then the catalog. */
static void reload(daemon_state *d)
{
    collect_opts neu;
    int rc = load_opts(d->argc, d->argv, &neu);

    if (rc != 0) {
        log_at(FDX_LOG_ERR, "event=reload-failed config=%s "
               "note=\"the running settings are kept\"", d->opts.config);
        opts_free(&neu);
        return;
    }
    reload_warn_fixed(&d->opts, &neu);
    if (reload_catalog(d, neu.catalog) < 0)
        neu.catalog = d->opts.catalog;   /* kept: still the one in use */
    /* the sockets and the store stay as opened */
    memcpy(neu.listen, d->opts.listen, sizeof(neu.listen));
    neu.nlisten = d->opts.nlisten;
    neu.store = d->opts.store;
    neu.metrics = d->opts.metrics;
    /* the store holds this name's running sums: a new name would count
     * the engine's evidence again */
    neu.collector_id = d->opts.collector_id;
    neu.user = d->opts.user;
    neu.queue_bytes = d->opts.queue_bytes;     /* the ring is mapped */
    /* the strings of the old settings still in use move over */
    for (size_t i = 0; i < d->opts.nstrings && neu.nstrings < STRINGS_MAX;
         i++)
        neu.strings[neu.nstrings++] = d->opts.strings[i];
    d->opts = neu;
    d->col.collector_id = d->opts.collector_id;
    log_setup(&d->opts);
    log_at(FDX_LOG_INFO, "event=reloaded config=%s allow=%zu "
           "commit_interval_s=%u", d->opts.config, d->opts.allow.n,
           d->opts.commit_interval_s);
}

/* Signals are blocked but while waiting in ppoll(): no wakeup is lost. */
static void signals_setup(sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGHUP);
}

/*
 * Waits for the receive thread, a metrics client, a signal or the next
 * commit, serves the metrics clients, then takes a burst of what the
 * thread queued.  When a burst left more, the wait is only a look at
 * the signals and clients.  Returns 1 when more are waiting.
 */
static int wait_queue(daemon_state *d, uint64_t next_ms, int busy,
                      const sigset_t *mask)
{
    struct pollfd pfd[1 + HTTPD_POLL_MAX];
    uint64_t now = collect_wall_ms();
    uint64_t left = busy || next_ms <= now ? 0 : next_ms - now;
    int64_t http_ms = httpd_wait_ms(&d->http);
    struct timespec ts;
    size_t nhttp;
    int rc;

    if (http_ms >= 0 && (uint64_t)http_ms < left)
        left = (uint64_t)http_ms;
    ts = (struct timespec){(time_t)(left / 1000),
                           (long)(left % 1000) * 1000000};
    pfd[0] = (struct pollfd){rxq_wake_fd(d->rx), POLLIN, 0};
    nhttp = httpd_pollfds(&d->http, pfd + 1);
    rxq_idle(d->rx, !busy);
    rc = ppoll(pfd, 1 + nhttp, &ts, mask);
    rxq_idle(d->rx, 0);
    /* with rc 0 it closes the clients past due */
    if (rc >= 0)
        httpd_service(&d->http, pfd + 1, nhttp);
    if (rc < 0 && !busy)
        return 0;
    rxq_wake_clear(d->rx);
    return take_queued(d, QUEUE_BURST);
}

/* Until SIGTERM or SIGINT; then the stream is flushed and committed. */
static int run_loop(daemon_state *d)
{
    sigset_t mask;
    uint64_t next = collect_wall_ms() + d->opts.commit_interval_s * 1000ull;
    int busy = 0;

    signals_setup(&mask);
    while (!got_stop) {
        busy = wait_queue(d, next, busy, &mask);
        if (got_hup) {
            got_hup = 0;
            reload(d);
        }
        if (collect_wall_ms() >= next) {
            (void)commit(d, 0);
            next = collect_wall_ms() + d->opts.commit_interval_s * 1000ull;
        }
    }
    log_at(FDX_LOG_INFO, "event=stopping signal=%d", (int)got_stop);
    /* what the thread read before it stopped is counted in, not lost */
    rxq_stop(d->rx);
    /* a deep queue takes seconds: commits go on meanwhile, so that a
     * stop timeout's SIGKILL loses the least */
    while (take_queued(d, QUEUE_BURST))
        if (collect_wall_ms() >= next) {
            (void)commit(d, 0);
            next = collect_wall_ms() + d->opts.commit_interval_s * 1000ull;
        }
    return commit(d, 1) < 0 ? EX_IOERR : 0;
}

static void daemon_close(daemon_state *d)
{
    rxq_free(d->rx);
    for (size_t i = 0; i < d->nfds; i++)
        close(d->fds[i]);
    httpd_close(&d->http);
    collect_free(&d->col);
    fdx_store_close(d->store);
    fdx_catalog_close(d->cat);
    opts_free(&d->opts);
    free(d);
}

static size_t ring_bytes(const daemon_state *d)
{
    size_t most = (size_t)d->opts.queue_bytes;

    for (size_t i = 0; i < d->nfds; i++)
        if ((size_t)d->socks[i].rcvbuf_bytes > most)
            most = (size_t)d->socks[i].rcvbuf_bytes;
    return most;
}

/*
 * The thread that decodes, matches and commits (this one) yields to the
 * receive thread: on a busy core the receive thread runs first and
 * the queue absorbs what the matcher has not reached yet.  On Linux a
 * thread's nice value is its own; the receive thread keeps the
 * process's.
 */
static void lower_worker(void)
{
    id_t self = (id_t)gettid();
    int now;

    errno = 0;
    now = getpriority(PRIO_PROCESS, self);
    if (errno == 0 && now < WORKER_NICE_MAX &&
        setpriority(PRIO_PROCESS, self,
                    now + WORKER_NICE_STEP > WORKER_NICE_MAX
                        ? WORKER_NICE_MAX : now + WORKER_NICE_STEP) < 0)
        log_at(FDX_LOG_DEBUG, "event=nice-failed error=\"%s\"",
               strerror(errno));
}

/* Catalog, store, sockets, then privileges: each refusal its own code. */
static int daemon_start(daemon_state *d)
{
    int rc;

    if ((rc = open_catalog(d->opts.catalog, &d->cat)) < 0)
        return cli_exit_code(rc);
    if ((rc = open_store(d)) < 0)
        return cli_exit_code(rc);
    if ((rc = open_sockets(d)) != 0 || (rc = open_metrics(d)) != 0 ||
        (rc = drop_privileges(&d->opts)) != 0)
        return rc;
    if (collect_init(&d->col, d->cat, &cli_logger) < 0)
        return EX_OSERR;
    /* the queue holds queue-size bytes, and no less than the kernel
     * granted a socket (twice what was asked) */
    if ((rc = rxq_start(&d->rx, d->fds, d->nfds, ring_bytes(d))) < 0) {
        log_at(FDX_LOG_ERR, "event=receive-thread-failed queue_size=%zu "
               "error=\"%s\"", ring_bytes(d),
               rc == FDX_ENOMEM ? "the queue could not be mapped: lower "
                                  "queue-size or raise the memory limit"
                                : strerror(errno));
        return EX_OSERR;
    }
    lower_worker();
    d->col.allow = &d->opts.allow;
    d->col.collector_id = d->opts.collector_id;
    if (d->opts.collector_id == NULL)
        log_at(FDX_LOG_WARN, "event=no-collector-id store=%s note=\"give "
               "each collector sharing a store its own --collector-id; "
               "without one it shares the unnamed scores with flowdex scan "
               "--store and other unnamed collectors\"", d->opts.store);
    if (d->opts.allow.n == 0)
        log_at(FDX_LOG_WARN, "event=allow-all note=\"exports are accepted "
               "from any sender; give --allow\"");
    log_at(FDX_LOG_INFO, "event=started catalog=%s store=%s sockets=%zu "
           "commit_interval_s=%u collector=%s", d->opts.catalog,
           d->opts.store, d->nfds, d->opts.commit_interval_s,
           d->opts.collector_id ? d->opts.collector_id : "-");
    return 0;
}

int cmd_collect(int argc, char **argv)
{
    daemon_state *d = calloc(1, sizeof(*d));
    int rc;

    if (d == NULL) {
        cli_errorf("out of memory");
        return EX_OSERR;
    }
    httpd_init(&d->http, "/metrics", METRICS_CONTENT_TYPE, metrics_page, d);
    d->argc = argc;
    d->argv = argv;
    if ((rc = load_opts(argc, argv, &d->opts)) != 0) {
        daemon_close(d);
        return rc == 1 ? 0 : rc;
    }
    log_setup(&d->opts);
    if ((rc = daemon_start(d)) == 0)
        rc = run_loop(d);
    daemon_close(d);
    return rc;
}
