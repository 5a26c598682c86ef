/*
 * Helpers shared by the fuzz targets; see fuzz.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

static volatile uint64_t fuzz_sink;

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("fuzz invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
void fuzz_dirty_stack(void)
{
    volatile uint8_t junk[32768];

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = 0xA5;
}

static int fuzz_fd = -1;
static char fuzz_path[64];

static void fuzz_open_file(void)
{
    char tmpl[] = "/tmp/flowdex-fuzz-XXXXXX";

#ifdef MFD_CLOEXEC
    fuzz_fd = memfd_create("flowdex-fuzz", MFD_CLOEXEC);
    if (fuzz_fd >= 0) {
        snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d",
                 fuzz_fd);
        if (access(fuzz_path, R_OK) == 0)
            return;
        close(fuzz_fd);
    }
#endif
    fuzz_fd = mkstemp(tmpl);
    if (fuzz_fd < 0)
        fuzz_fail("mkstemp: %s", strerror(errno));
    unlink(tmpl);
    snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
    if (access(fuzz_path, R_OK) != 0)
        fuzz_fail("%s: %s", fuzz_path, strerror(errno));
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (fuzz_fd < 0)
        fuzz_open_file();
    if (ftruncate(fuzz_fd, 0) != 0)
        fuzz_fail("ftruncate: %s", strerror(errno));
    while (done < size) {
        ssize_t k = pwrite(fuzz_fd, data + done, size - done, (off_t)done);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            fuzz_fail("pwrite: %s", strerror(errno));
        done += (size_t)k;
    }
    return fuzz_path;
}

static unsigned fuzz_alloc_left;   /* 0: never fail */

static int fuzz_alloc_ok(void)
{
    if (fuzz_alloc_left == 0)
        return 1;
    if (fuzz_alloc_left == 1)
        return 0;   /* stays at 1: the ones after fail too */
    fuzz_alloc_left--;
    return 1;
}

static void *fuzz_malloc(size_t n)
{
    return fuzz_alloc_ok() ? malloc(n) : NULL;
}

static void *fuzz_realloc(void *p, size_t n)
{
    return fuzz_alloc_ok() ? realloc(p, n) : NULL;
}

void fuzz_fail_alloc(unsigned n)
{
    static const fdx_allocator a = { fuzz_malloc, fuzz_realloc, free };
    static int installed;

    if (!installed) {
        fdx_set_allocator(&a);
        installed = 1;
    }
    fuzz_alloc_left = n;
}

void fuzz_fail_alloc_by_size(size_t size)
{
    fuzz_fail_alloc(size % 11 == 5 ? 1 + (unsigned)(size / 11 % 24) : 0);
}

static void fuzz_log(void *ud, int level, const char *line)
{
    (void)ud;
    if (level < FDX_LOG_ERR || level > FDX_LOG_DEBUG || line == NULL)
        fuzz_fail("log call with level %d, line %p", level,
                  (const void *)line);
    fuzz_sink += strlen(line);
}

const fdx_logger fuzz_logger = { fuzz_log, NULL, FDX_LOG_DEBUG };

static uint64_t fuzz_addr(const fdx_addr *a)
{
    char buf[FDX_ADDRSTRLEN];
    fdx_addr back;
    size_t n;

    fdx_addr_format(a, buf, sizeof(buf));
    n = strlen(buf);
    if (n == 0 || n >= sizeof(buf))
        fuzz_fail("address formatted to %zu chars", n);
    if (fdx_addr_parse(&back, buf) != 0 || fdx_addr_cmp(&back, a) != 0)
        fuzz_fail("address %s does not parse back", buf);
    return n + (uint64_t)fdx_addr_is_v4(a);
}

int fuzz_flow_cb(void *ud, const fdx_flow *f)
{
    fuzz_flows *ff = ud;
    uint64_t h;

    h = fuzz_addr(&f->src) + fuzz_addr(&f->dst) + fuzz_addr(&f->exporter);
    h ^= f->octets ^ f->packets ^ f->rev_octets ^ f->rev_packets;
    h ^= f->first_ms ^ f->last_ms ^ f->sampling ^ f->domain;
    h ^= (uint64_t)f->sport << 16 ^ f->dport ^ f->exporter_port;
    h ^= f->template_id ^ f->proto ^ f->tcp_flags;
    if (f->source != FDX_SRC_NFCAPD && f->source != FDX_SRC_NETFLOW5 &&
        f->source != FDX_SRC_NETFLOW9 && f->source != FDX_SRC_IPFIX)
        fuzz_fail("flow source %u", f->source);
    if ((f->flags & ~0x1Fu) != 0)
        fuzz_fail("flow flags 0x%x", f->flags);
    if (h == 0x5eed)           /* a branch on everything read */
        fuzz_sink++;
    fuzz_sink += h;
    ff->calls++;
    if (ff->stop_after != 0 && ff->calls == ff->stop_after) {
        ff->stopped = 1;
        return FUZZ_STOP_RC;
    }
    return 0;
}

void fuzz_check_read(int rc, const fdx_error *err, const fuzz_flows *ff,
                     const fdx_read_stats *st)
{
    if (ff->stopped && rc != FUZZ_STOP_RC)
        fuzz_fail("callback stopped the reader, which returned %d", rc);
    if (!ff->stopped && rc > 0)
        fuzz_fail("reader returned %d, nobody asked it to stop", rc);
    if (rc < 0 && (rc < FDX_ENOTFOUND || err->code != rc ||
                   err->msg[0] == '\0'))
        fuzz_fail("reader returned %d, error says %d \"%s\"", rc,
                  err->code, err->msg);
    if (st->flows < ff->calls)
        fuzz_fail("stats count %llu flows, callback saw %llu",
                  (unsigned long long)st->flows,
                  (unsigned long long)ff->calls);
}
