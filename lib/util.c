/*
 * Small shared services: allocation hooks, the logging front end and
 * address helpers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

static fdx_allocator fdx__alloc = {malloc, realloc, free};

void fdx_set_allocator(const fdx_allocator *a)
{
    if (a == NULL) {
        fdx__alloc.malloc_fn = malloc;
        fdx__alloc.realloc_fn = realloc;
        fdx__alloc.free_fn = free;
        return;
    }
    fdx__alloc = *a;
}

void *fdx__malloc(size_t n)
{
    return fdx__alloc.malloc_fn(n ? n : 1);
}

void *fdx__calloc(size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    p = fdx__malloc(count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

void *fdx__realloc(void *p, size_t n)
{
    return fdx__alloc.realloc_fn(p, n ? n : 1);
}

void fdx__free(void *p)
{
    if (p != NULL)
        fdx__alloc.free_fn(p);
}

static int default_allocator(void)
{
    return fdx__alloc.malloc_fn == malloc &&
           fdx__alloc.realloc_fn == realloc && fdx__alloc.free_fn == free;
}

typedef struct work2 {
    fdx__work_fn fn;
    void *ctx;
} work2;

static void *work2_second(void *arg)
{
    work2 *w = arg;

    w->fn(w->ctx, 1);
    return NULL;
}

void fdx__run2(fdx__work_fn fn, void *ctx)
{
    work2 w = {fn, ctx};
    pthread_t th;

    if (!default_allocator() ||
        pthread_create(&th, NULL, work2_second, &w) != 0) {
        fn(ctx, 0);
        fn(ctx, 1);
        return;
    }
    fn(ctx, 0);
    pthread_join(th, NULL);
}

char *fdx__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fdx__malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

int fdx__log_enabled(const fdx_logger *log, int level)
{
    return log != NULL && log->fn != NULL && level <= log->max_level;
}

void fdx__log(const fdx_logger *log, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!fdx__log_enabled(log, level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log->fn(log->ud, level, line);
}

static const uint8_t fdx__v4prefix[12] = {0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0xff, 0xff};

void fdx_addr_from_v4(fdx_addr *a, const uint8_t v4[4])
{
    memcpy(a->b, fdx__v4prefix, 12);
    memcpy(a->b + 12, v4, 4);
}

void fdx_addr_from_v6(fdx_addr *a, const uint8_t v6[16])
{
    memcpy(a->b, v6, 16);
}

int fdx_addr_is_v4(const fdx_addr *a)
{
    return memcmp(a->b, fdx__v4prefix, 12) == 0;
}

char *fdx_addr_format(const fdx_addr *a, char *buf, size_t len)
{
    const char *r;

    if (fdx_addr_is_v4(a))
        r = inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len);
    else
        r = inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
    if (r == NULL && len > 0)
        buf[0] = '\0';
    return buf;
}

int fdx_addr_parse(fdx_addr *a, const char *text)
{
    uint8_t v[16];

    if (inet_pton(AF_INET, text, v) == 1) {
        fdx_addr_from_v4(a, v);
        return 0;
    }
    if (inet_pton(AF_INET6, text, v) == 1) {
        fdx_addr_from_v6(a, v);
        return 0;
    }
    return FDX_EUSAGE;
}

int fdx_addr_cmp(const fdx_addr *x, const fdx_addr *y)
{
    return memcmp(x->b, y->b, 16);
}

int fdx__open_regular(const char *path, int *fd, uint64_t *size,
                      fdx_error *err)
{
    struct stat st;
    /* non-blocking, so that a FIFO or device cannot stall the open */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    *fd = -1;
    if (f < 0)
        return fdx_error_set(err, fdx__errno_code(errno), "%s: open: %s",
                             path, strerror(errno));
    if (fstat(f, &st) != 0) {
        int e = errno;

        close(f);
        return fdx_error_set(err, FDX_EIO, "%s: stat: %s", path,
                             strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return fdx_error_set(err, FDX_EFORMAT, "%s: not a regular file",
                             path);
    }
    if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK) != 0) {
        int e = errno;

        close(f);
        return fdx_error_set(err, FDX_EIO, "%s: fcntl: %s", path,
                             strerror(e));
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int fdx__errno_code(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FDX_ENOENT;
    case EACCES:
    case EPERM:
        return FDX_EACCES;
    case ENOMEM:
        return FDX_ENOMEM;
    }
    return FDX_EIO;
}

int fdx__grow(void *v, size_t *cap, size_t n, size_t elem)
{
    void **pv = v;
    size_t ncap;
    void *p;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    if (ncap > SIZE_MAX / elem)
        return FDX_ENOMEM;
    p = fdx__realloc(*pv, ncap * elem);
    if (p == NULL)
        return FDX_ENOMEM;
    *pv = p;
    *cap = ncap;
    return 0;
}

uint32_t fdx__crc32(const uint8_t *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);

    while (n > 0) {
        uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;

        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

/* One pass of the radix sort: by byte `shift / 8` of the keys. */
static int radix_pass(const uint64_t *k, const uint32_t *ix, uint64_t *k2,
                      uint32_t *ix2, size_t n, unsigned shift)
{
    size_t count[256] = {0}, pos = 0;

    for (size_t i = 0; i < n; i++)
        count[(k[i] >> shift) & 0xff]++;
    for (int b = 0; b < 256; b++) {
        size_t c = count[b];

        if (c == n)
            return 0;        /* every key has this byte: nothing to do */
        count[b] = pos;
        pos += c;
    }
    for (size_t i = 0; i < n; i++) {
        size_t d = count[(k[i] >> shift) & 0xff]++;

        k2[d] = k[i];
        ix2[d] = ix[i];
    }
    return 1;
}

int fdx__radix_sort(uint64_t *keys, uint32_t *idx, size_t n)
{
    uint64_t *k2 = fdx__malloc((n ? n : 1) * sizeof(*k2));
    uint32_t *ix2 = fdx__malloc((n ? n : 1) * sizeof(*ix2));
    uint64_t *ka = keys, *kb = k2;
    uint32_t *ia = idx, *ib = ix2;

    if (k2 == NULL || ix2 == NULL) {
        fdx__free(k2);
        fdx__free(ix2);
        return FDX_ENOMEM;
    }
    for (unsigned shift = 0; shift < 64; shift += 8) {
        if (radix_pass(ka, ia, kb, ib, n, shift)) {
            uint64_t *tk = ka;
            uint32_t *ti = ia;

            ka = kb;
            kb = tk;
            ia = ib;
            ib = ti;
        }
    }
    if (ka != keys) {
        memcpy(keys, ka, n * sizeof(*keys));
        memcpy(idx, ia, n * sizeof(*idx));
    }
    fdx__free(k2);
    fdx__free(ix2);
    return 0;
}

int fdx__sort_by_key(size_t n, fdx__key_fn key, const void *ctx,
                     uint32_t **out, uint64_t **out_keys)
{
    uint64_t *keys = fdx__malloc((n ? n : 1) * sizeof(*keys));
    uint32_t *idx = fdx__malloc((n ? n : 1) * sizeof(*idx));
    int rc = FDX_ENOMEM;

    *out = NULL;
    *out_keys = NULL;
    if (keys == NULL || idx == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        keys[i] = key(ctx, i);
        idx[i] = (uint32_t)i;
    }
    if ((rc = fdx__radix_sort(keys, idx, n)) != 0)
        goto out;
    *out = idx;
    *out_keys = keys;
    return 0;
out:
    fdx__free(keys);
    fdx__free(idx);
    return rc;
}

int fdx__order_by_key(size_t n, fdx__key_fn key, fdx__run_fn run,
                      const void *ctx, uint32_t **out)
{
    uint64_t *keys;
    uint32_t *idx;
    int rc = fdx__sort_by_key(n, key, ctx, &idx, &keys);

    *out = NULL;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;

        while (j < n && keys[j] == keys[i])
            j++;
        if (j - i > 1 && run != NULL)
            run(ctx, idx + i, j - i);
        i = j;
    }
    fdx__free(keys);
    *out = idx;
    return 0;
}
