/*
 * Private helpers shared by the library's modules: allocation through the
 * hooks, logging through the caller's logger, and explicit-endian reads of
 * untrusted bytes.  Never included by the tools or installed.
 */
#ifndef FLOWDEX_INTERNAL_H
#define FLOWDEX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/common.h"

void *fdx__malloc(size_t n);
void *fdx__calloc(size_t count, size_t size);
void *fdx__realloc(void *p, size_t n);
void fdx__free(void *p);
char *fdx__strdup(const char *s);

/* True when a message at level would be passed on; test before building. */
int fdx__log_enabled(const fdx_logger *log, int level);

/* Formats one line and passes it to log->fn when the level is enabled. */
void fdx__log(const fdx_logger *log, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Opens path read-only and checks it is a regular file; sets *fd and
 * *size.  On failure returns FDX_ENOENT, FDX_EIO or FDX_EFORMAT (not a
 * regular file) with err naming the file; nothing is left open.
 */
int fdx__open_regular(const char *path, int *fd, uint64_t *size,
                      fdx_error *err);

/* The FDX_E* code for an errno value from opening or reading a file. */
int fdx__errno_code(int e);

/*
 * Makes room for one more element in a growable array *v of *cap elements
 * of elem bytes, n of them used.  Returns 0 or FDX_ENOMEM (*v untouched).
 */
int fdx__grow(void *v, size_t *cap, size_t n, size_t elem);

/*
 * Sorts idx[0..n) by keys[0..n) (moved along), stably, by least
 * significant byte first.  Returns 0 or FDX_ENOMEM (arrays untouched).
 * The scan groups millions of records this way, where qsort()'s calls
 * through a comparison function would cost several times more.
 */
int fdx__radix_sort(uint64_t *keys, uint32_t *idx, size_t n);

/*
 * Orders the indexes 0..n-1 by key(ctx, i) with fdx__radix_sort(), then
 * calls run(ctx, idx, len) on each run of indexes with equal keys (a hash
 * may put two groups in one run: run sorts it out; NULL leaves that to
 * the caller).  *out is fdx__malloc'd.  Returns 0 or FDX_ENOMEM.
 */
typedef uint64_t (*fdx__key_fn)(const void *ctx, size_t i);
typedef void (*fdx__run_fn)(const void *ctx, uint32_t *idx, size_t n);

int fdx__order_by_key(size_t n, fdx__key_fn key, fdx__run_fn run,
                      const void *ctx, uint32_t **out);

/* The same without the runs: *out the indexes and *out_keys their keys
 * in that order, both fdx__malloc'd, for a caller that walks the runs
 * itself. */
int fdx__sort_by_key(size_t n, fdx__key_fn key, const void *ctx,
                     uint32_t **out, uint64_t **out_keys);

/*
 * Runs fn(ctx, 1) on a second thread and fn(ctx, 0) on this one, and
 * returns once both returned.  Only with the C library's allocator, whose
 * calls are thread-safe: with hooks set (tests failing the n-th
 * allocation), or when no thread can be started, fn(ctx, 0) and then
 * fn(ctx, 1) run here, in that order.  fn splits its work by the worker
 * number; what the two write must not overlap.
 */
typedef void (*fdx__work_fn)(void *ctx, unsigned worker);

void fdx__run2(fdx__work_fn fn, void *ctx);

/* Mixes v into the running 64-bit hash h (for grouping keys). */
static inline uint64_t fdx__mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

/* Asks for the cache lines of *p ahead of a random access (a no-op where
 * the compiler has no such builtin). */
#if defined(__GNUC__)
#define fdx__prefetch(p) __builtin_prefetch(p)
#else
#define fdx__prefetch(p) ((void)(p))
#endif

/* CRC-32 (zlib's) of a buffer of any length. */
uint32_t fdx__crc32(const uint8_t *p, size_t n);

/* Reads from packet memory without casting it to a struct. */
static inline uint16_t fdx__be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t fdx__be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t fdx__be64(const uint8_t *p)
{
    return ((uint64_t)fdx__be32(p) << 32) | fdx__be32(p + 4);
}

static inline uint16_t fdx__le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fdx__le32(const uint8_t *p)
{
    return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t fdx__le64(const uint8_t *p)
{
    return fdx__le32(p) | ((uint64_t)fdx__le32(p + 4) << 32);
}

/*
 * Orders two addresses as memcmp() would, in two 64-bit steps: the sorts
 * and searches of the scan do this millions of times.
 */
static inline int fdx__addr_order(const fdx_addr *x, const fdx_addr *y)
{
    uint64_t a = fdx__be64(x->b), b = fdx__be64(y->b);

    if (a == b) {
        a = fdx__be64(x->b + 8);
        b = fdx__be64(y->b + 8);
    }
    return (a > b) - (a < b);
}

/* Big-endian unsigned integer of 1 to 8 bytes (reduced-size encoding). */
static inline uint64_t fdx__beN(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif /* FLOWDEX_INTERNAL_H */
