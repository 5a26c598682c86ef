/*
 * The input dispatcher: fdx_read_path() takes a file or a directory and
 * hands every file to the reader its first bytes call for (nfcapd file,
 * pcap or pcapng capture, IPFIX file).  Names are never trusted for the
 * format.  IPFIX files (RFC 5655) are read here: a sequence of IPFIX
 * messages, fed to one fdx_nf_decoder as if from exporter :: port 0.
 *
 * A directory is read in name order (strcmp), one level deep, hidden
 * entries and anything but regular files skipped; a file of unknown or
 * empty content there is skipped with an info line, since collectors
 * leave other files beside their flow files.  A damaged file in a
 * directory does not stop the others: the error is logged, and the first
 * one is returned once every file was read.  A file nfcapd is still
 * writing (nfcapd.current.*) that ends inside a block is expected and
 * only logged.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowdex/flow.h"
#include "internal.h"

/* entries of one directory that are kept in memory to be sorted */
#define FDX_INPUT_MAX_ENTRIES 1000000

enum input_kind {
    INPUT_EMPTY,
    INPUT_UNKNOWN,
    INPUT_NFCAPD,
    INPUT_CAPTURE,
    INPUT_IPFIX
};

/* Tells the format from the first bytes of a file. */
static enum input_kind input_classify(const uint8_t *b, size_t n)
{
    uint32_t m;

    if (n == 0)
        return INPUT_EMPTY;
    if (n >= 2 && fdx__le16(b) == 0xA50C)
        return INPUT_NFCAPD;
    if (n < 4)
        return INPUT_UNKNOWN;
    m = fdx__be32(b);
    if (m == 0xa1b2c3d4u || m == 0xd4c3b2a1u || m == 0xa1b23c4du ||
        m == 0x4d3cb2a1u || m == 0x0a0d0d0au)
        return INPUT_CAPTURE;
    if (fdx__be16(b) == 10 && fdx__be16(b + 2) >= 16)
        return INPUT_IPFIX;
    return INPUT_UNKNOWN;
}

/* Reads the first bytes of path into *kind. */
static int input_sniff(const char *path, enum input_kind *kind,
                       fdx_error *err)
{
    uint8_t b[4];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0)
        return fdx_error_set(err, fdx__errno_code(errno), "%s: open: %s",
                             path, strerror(errno));
    do
        n = read(fd, b, sizeof(b));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int e = errno;

        close(fd);
        return fdx_error_set(err, FDX_EIO, "%s: read: %s", path,
                             strerror(e));
    }
    close(fd);
    *kind = input_classify(b, (size_t)n);
    return 0;
}

/* ---------------------------------------------------------------- */
/* IPFIX files (RFC 5655): IPFIX messages one after the other         */
/* ---------------------------------------------------------------- */

#define IPFIX_HDR_LEN 16

typedef struct ipfix_file {
    fdx_flow_fn fn;
    void *ud;
    int stop;           /* non-zero value fn returned */
} ipfix_file;

static int ipfix_file_fn(void *ud, const fdx_flow *f)
{
    ipfix_file *x = ud;

    x->stop = x->fn(x->ud, f);
    return x->stop;
}

static void input_add_stats(fdx_read_stats *to, const fdx_read_stats *s)
{
    to->files += s->files;
    to->packets += s->packets;
    to->datagrams += s->datagrams;
    to->flows += s->flows;
    to->skipped_frames += s->skipped_frames;
    to->bad_datagrams += s->bad_datagrams;
    to->bad_records += s->bad_records;
    to->no_template += s->no_template;
    to->seq_lost += s->seq_lost;
    to->limit_hits += s->limit_hits;
    to->refused += s->refused;
    to->sessions_evicted += s->sessions_evicted;
    to->sessions_expired += s->sessions_expired;
}

/*
 * Reads the next message into buf (65535 bytes); *len 0 at the end.
 * off is the message's file offset, for messages.
 */
static int ipfix_next(FILE *fp, const char *path, uint64_t off,
                      uint8_t *buf, size_t *len, fdx_error *err)
{
    size_t n = fread(buf, 1, IPFIX_HDR_LEN, fp), mlen;

    *len = 0;
    if (n == 0 && !ferror(fp))
        return 0;
    if (n < IPFIX_HDR_LEN)
        return fdx_error_set(err, ferror(fp) ? FDX_EIO : FDX_ETRUNC,
                             "%s: offset %llu: file ends inside an IPFIX "
                             "message header", path,
                             (unsigned long long)off);
    mlen = fdx__be16(buf + 2);
    if (fdx__be16(buf) != 10 || mlen < IPFIX_HDR_LEN)
        return fdx_error_set(err, FDX_ECORRUPT,
                             "%s: offset %llu: not an IPFIX message "
                             "(version %u, length %zu)", path,
                             (unsigned long long)off, fdx__be16(buf), mlen);
    if (fread(buf + IPFIX_HDR_LEN, 1, mlen - IPFIX_HDR_LEN, fp) !=
        mlen - IPFIX_HDR_LEN)
        return fdx_error_set(err, ferror(fp) ? FDX_EIO : FDX_ETRUNC,
                             "%s: offset %llu: file ends inside an IPFIX "
                             "message of %zu bytes", path,
                             (unsigned long long)off, mlen);
    *len = mlen;
    return 0;
}

/* Feeds every message to one decoder; the exporter is unknown (::). */
static int ipfix_messages(FILE *fp, const char *path, fdx_nf_decoder *dec,
                          ipfix_file *x, uint8_t *buf, fdx_error *err)
{
    uint64_t off = 0;

    for (;;) {
        size_t len;
        int rc = ipfix_next(fp, path, off, buf, &len, err);

        if (rc != 0 || len == 0)
            return rc;
        fdx_nf_decode(dec, NULL, 0, buf, len,
                      (uint64_t)fdx__be32(buf + 4) * 1000, ipfix_file_fn,
                      x);
        if (x->stop != 0)
            return x->stop;
        off += len;
    }
}

static int input_read_ipfix(const char *path, const fdx_read_opts *opts,
                            fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                            fdx_error *err)
{
    ipfix_file x = {fn, ud, 0};
    fdx_read_stats st;
    fdx_nf_decoder *dec = NULL;
    uint8_t *buf = NULL;
    FILE *fp = fopen(path, "rb");
    int rc;

    if (fp == NULL)
        return fdx_error_set(err, errno == ENOENT ? FDX_ENOENT : FDX_EIO,
                             "%s: open: %s", path, strerror(errno));
    dec = fdx_nf_decoder_new(opts != NULL ? opts->limits : NULL,
                             opts != NULL ? opts->log : NULL);
    buf = fdx__malloc(65536);
    if (dec == NULL || buf == NULL) {
        rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    rc = ipfix_messages(fp, path, dec, &x, buf, err);
    if (stats != NULL) {
        fdx_nf_decoder_stats(dec, &st);
        st.files = 1;
        input_add_stats(stats, &st);
    }
    if (opts != NULL && opts->session_fn != NULL)
        fdx_nf_decoder_sessions(dec, opts->session_fn, opts->session_ud);
out:
    fdx__free(buf);
    fdx_nf_decoder_free(dec);
    fclose(fp);
    return rc;
}

/* Reads one file of a known kind. */
static int input_read_kind(const char *path, enum input_kind kind,
                           const fdx_read_opts *opts, fdx_flow_fn fn,
                           void *ud, fdx_read_stats *stats, fdx_error *err)
{
    switch (kind) {
    case INPUT_NFCAPD:
        return fdx_read_nfcapd(path, opts, fn, ud, stats, err);
    case INPUT_CAPTURE:
        return fdx_read_capture(path, opts, fn, ud, stats, err);
    case INPUT_IPFIX:
        return input_read_ipfix(path, opts, fn, ud, stats, err);
    case INPUT_EMPTY:
        return fdx_error_set(err, FDX_EFORMAT, "%s: empty file", path);
    default:
        return fdx_error_set(err, FDX_EFORMAT,
                             "%s: offset 0: unrecognised file format "
                             "(neither nfcapd, pcap, pcapng nor IPFIX)",
                             path);
    }
}

static int input_read_file(const char *path, const fdx_read_opts *opts,
                           fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                           fdx_error *err)
{
    enum input_kind kind;
    int rc = input_sniff(path, &kind, err);

    if (rc != 0)
        return rc;
    return input_read_kind(path, kind, opts, fn, ud, stats, err);
}

static int input_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void input_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fdx__free(names[i]);
    fdx__free(names);
}

/* Collects the visible entry names of dir, sorted; caller frees them. */
static int input_list(const char *dir, char ***out, size_t *count,
                      fdx_error *err)
{
    char **names = NULL, **p;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d = opendir(dir);
    int rc = 0;

    if (d == NULL)
        return fdx_error_set(err, errno == ENOENT ? FDX_ENOENT : FDX_EIO,
                             "%s: opendir: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == FDX_INPUT_MAX_ENTRIES) {
            rc = fdx_error_set(err, FDX_ELIMIT, "%s: more than %d entries",
                               dir, FDX_INPUT_MAX_ENTRIES);
            goto fail;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            p = fdx__realloc(names, cap * sizeof(*names));
            if (p == NULL)
                goto nomem;
            names = p;
        }
        names[n] = fdx__strdup(de->d_name);
        if (names[n] == NULL)
            goto nomem;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), input_cmp);
    *out = names;
    *count = n;
    return 0;
nomem:
    rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", dir);
fail:
    closedir(d);
    input_free_names(names, n);
    return rc;
}

/* Joins dir and name into a new string; NULL when out of memory. */
static char *input_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *s = fdx__malloc(dl + slash + nl + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, dir, dl);
    if (slash)
        s[dl] = '/';
    memcpy(s + dl + slash, name, nl + 1);
    return s;
}

/* nfcapd -S keeps files in year/month/day/hour subdirectories */
#define INPUT_MAX_DEPTH 8

static int input_read_dir(const char *dir, int depth,
                          const fdx_read_opts *opts, fdx_flow_fn fn,
                          void *ud, fdx_read_stats *stats, fdx_error *err,
                          unsigned *bad);

/*
 * One directory entry.  Returns 0 to go on, a positive value from fn or
 * FDX_ENOMEM to stop, or another negative code to remember and go on.
 * Subdirectories are read in turn, down to INPUT_MAX_DEPTH levels.
 */
static int input_dir_entry(const char *path, const char *name, int depth,
                           const fdx_read_opts *opts, fdx_flow_fn fn,
                           void *ud, fdx_read_stats *stats, fdx_error *err,
                           unsigned *bad)
{
    const fdx_logger *log = opts != NULL ? opts->log : NULL;
    enum input_kind kind;
    struct stat sb;
    int rc;

    if (stat(path, &sb) != 0)
        return 0;
    if (S_ISDIR(sb.st_mode)) {
        if (depth < INPUT_MAX_DEPTH)
            return input_read_dir(path, depth + 1, opts, fn, ud, stats, err,
                                  bad);
        fdx__log(log, FDX_LOG_WARN, "input: skipped dir=%s reason=too-deep",
                 path);
        return 0;
    }
    if (!S_ISREG(sb.st_mode))
        return 0;
    rc = input_sniff(path, &kind, err);
    if (rc != 0)
        return rc;
    if (kind == INPUT_EMPTY || kind == INPUT_UNKNOWN) {
        fdx__log(log, FDX_LOG_WARN, "input: skipped file=%s reason=%s",
                 path, kind == INPUT_EMPTY ? "empty" : "not-a-flow-file");
        return 0;
    }
    rc = input_read_kind(path, kind, opts, fn, ud, stats, err);
    if (rc == FDX_ETRUNC && strncmp(name, "nfcapd.current.", 15) == 0) {
        fdx__log(log, FDX_LOG_INFO,
                 "input: file being written ends early file=%s", path);
        return 0;
    }
    if (rc < 0 && rc != FDX_ENOMEM) {
        fdx__log(log, FDX_LOG_WARN, "input: %s", err->msg);
        (*bad)++;
    }
    return rc;
}

/*
 * Reads every flow file below dir, in name order.  A damaged file is
 * logged and counted in *bad and the others are still read; the first
 * such code is returned at the end.
 */
static int input_read_dir(const char *dir, int depth,
                          const fdx_read_opts *opts, fdx_flow_fn fn,
                          void *ud, fdx_read_stats *stats, fdx_error *err,
                          unsigned *bad)
{
    char **names = NULL;
    size_t n = 0;
    int first = 0, rc = input_list(dir, &names, &n, err);
    fdx_error one;

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *path = input_join(dir, names[i]);

        if (path == NULL) {
            rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", dir);
            break;
        }
        memset(&one, 0, sizeof(one));
        rc = input_dir_entry(path, names[i], depth, opts, fn, ud, stats,
                             &one, bad);
        fdx__free(path);
        if (rc == FDX_ENOMEM && err != NULL)
            *err = one;
        if (rc < 0 && first == 0)
            first = rc;
        if (rc > 0 || rc == FDX_ENOMEM)
            break;
        rc = 0;
    }
    input_free_names(names, n);
    if (rc > 0)
        return rc;
    return rc != 0 ? rc : first;
}

int fdx_read_path(const char *path, const fdx_read_opts *opts,
                  fdx_flow_fn fn, void *ud, fdx_read_stats *stats,
                  fdx_error *err)
{
    struct stat sb;

    if (path == NULL || fn == NULL)
        return fdx_error_set(err, FDX_EUSAGE,
                             "fdx_read_path: path and fn are required");
    if (stat(path, &sb) != 0)
        return fdx_error_set(err, errno == ENOENT ? FDX_ENOENT : FDX_EIO,
                             "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        unsigned bad = 0;
        int rc = input_read_dir(path, 0, opts, fn, ud, stats, err, &bad);

        if (rc < 0 && rc != FDX_ENOMEM)
            fdx_error_set(err, rc, "%s: %u file(s) could not be read; the "
                          "others were", path, bad);
        return rc;
    }
    if (!S_ISREG(sb.st_mode))
        return fdx_error_set(err, FDX_EFORMAT, "%s: not a regular file",
                             path);
    return input_read_file(path, opts, fn, ud, stats, err);
}
