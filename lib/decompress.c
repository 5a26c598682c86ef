/*
 * Whole-buffer decompression of the formats repository metadata comes in:
 * gzip (zlib), xz (liblzma), lz4 frames (liblz4), bzip2 (libbz2) and zstd.
 * Each decoder writes into one growing output buffer whose size is capped
 * by the caller; the buffer always keeps room for a terminating NUL so
 * that text formats can be parsed in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bzlib.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"
#include "internal.h"

/* Output buffer with a hard cap: len never exceeds max. */
typedef struct outbuf {
    uint8_t *p;
    size_t len;
    size_t cap;     /* usable bytes; one more is allocated for the NUL */
    size_t max;
    const char *name;
    fdx_error *err;
} outbuf;

static const uint8_t magic_gzip[] = {0x1f, 0x8b};
static const uint8_t magic_xz[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
static const uint8_t magic_lz4[] = {0x04, 0x22, 0x4d, 0x18};
static const uint8_t magic_bz2[] = {'B', 'Z', 'h'};
static const uint8_t magic_zstd[] = {0x28, 0xb5, 0x2f, 0xfd};

static int has_magic(const uint8_t *p, size_t n, const uint8_t *m, size_t mn)
{
    return n >= mn && memcmp(p, m, mn) == 0;
}

enum fdx__comp fdx__comp_detect(const uint8_t *p, size_t n)
{
    if (has_magic(p, n, magic_gzip, sizeof(magic_gzip)))
        return FDX__COMP_GZIP;
    if (has_magic(p, n, magic_xz, sizeof(magic_xz)))
        return FDX__COMP_XZ;
    if (has_magic(p, n, magic_lz4, sizeof(magic_lz4)))
        return FDX__COMP_LZ4;
    if (has_magic(p, n, magic_bz2, sizeof(magic_bz2)) && n >= 4 &&
        p[3] >= '1' && p[3] <= '9')
        return FDX__COMP_BZ2;
    if (has_magic(p, n, magic_zstd, sizeof(magic_zstd)))
        return FDX__COMP_ZSTD;
    return FDX__COMP_PLAIN;
}

const char *fdx__comp_name(enum fdx__comp c)
{
    static const char *const names[] = {"plain", "gzip", "xz",
                                        "lz4",   "bzip2", "zstd"};

    if ((unsigned)c < sizeof(names) / sizeof(names[0]))
        return names[c];
    return "unknown";
}

/*
 * Makes room for more output.  The buffer doubles up to max + 1 bytes:
 * the extra byte lets a decoder that produces more than max be told apart
 * from one that ends exactly at max.
 */
static int out_grow(outbuf *o)
{
    size_t want;
    uint8_t *np;

    if (o->cap > o->max)
        return fdx_error_set(o->err, FDX_ELIMIT,
                             "%s: decompressed size exceeds %zu bytes",
                             o->name, o->max);
    want = o->cap < 65536 ? 65536 : o->cap * 2;
    if (want < o->cap || want > o->max + 1)
        want = o->max + 1;
    np = fdx__realloc(o->p, want + 1);
    if (np == NULL)
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: out of memory",
                             o->name);
    o->p = np;
    o->cap = want;
    return 0;
}

static int out_check(outbuf *o)
{
    if (o->len > o->max)
        return fdx_error_set(o->err, FDX_ELIMIT,
                             "%s: decompressed size exceeds %zu bytes",
                             o->name, o->max);
    return 0;
}

static int trunc_error(outbuf *o, const char *what)
{
    return fdx_error_set(o->err, FDX_ETRUNC, "%s: %s stream ends early",
                         o->name, what);
}

static int corrupt_error(outbuf *o, const char *what)
{
    return fdx_error_set(o->err, FDX_ECORRUPT, "%s: corrupt %s data",
                         o->name, what);
}

static uInt cap_uint(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/*
 * Runs inflate until the stream ends.  Z_OK with all input consumed and
 * room left in the output means the stream stopped early.
 */
static int run_gzip(outbuf *o, const uint8_t *in, size_t n)
{
    z_stream z;
    int rc = 0, zr;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: zlib init", o->name);
    z.next_in = (Bytef *)in;
    for (;;) {
        uInt chunk = cap_uint(n);

        if (o->len == o->cap && (rc = out_grow(o)) != 0)
            goto cleanup;
        z.avail_in = chunk;
        z.next_out = o->p + o->len;
        z.avail_out = cap_uint(o->cap - o->len);
        zr = inflate(&z, Z_NO_FLUSH);
        o->len = (size_t)(z.next_out - o->p);
        n -= chunk - z.avail_in;
        if (zr == Z_STREAM_END) {
            /* Concatenated gzip members form one stream. */
            if (!has_magic(z.next_in, n, magic_gzip, sizeof(magic_gzip)))
                break;
            inflateReset(&z);
            continue;
        }
        if ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_out == 0)
            continue;
        if (zr == Z_OK && n > 0)
            continue;
        rc = zr == Z_OK || zr == Z_BUF_ERROR
                 ? trunc_error(o, "gzip")
                 : corrupt_error(o, "gzip");
        goto cleanup;
    }
cleanup:
    inflateEnd(&z);
    return rc;
}

static int run_xz(outbuf *o, const uint8_t *in, size_t n)
{
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_ret lr;
    int rc = 0;

    if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: lzma init", o->name);
    s.next_in = in;
    s.avail_in = n;
    for (;;) {
        if (o->len == o->cap && (rc = out_grow(o)) != 0)
            goto cleanup;
        s.next_out = o->p + o->len;
        s.avail_out = o->cap - o->len;
        lr = lzma_code(&s, LZMA_FINISH);
        o->len = (size_t)(s.next_out - o->p);
        if (lr == LZMA_STREAM_END)
            break;
        if (lr == LZMA_OK)
            continue;
        if (lr == LZMA_BUF_ERROR && s.avail_out != 0)
            rc = trunc_error(o, "xz");
        else if (lr == LZMA_MEM_ERROR)
            rc = fdx_error_set(o->err, FDX_ENOMEM, "%s: out of memory",
                               o->name);
        else if (lr != LZMA_BUF_ERROR)
            rc = corrupt_error(o, "xz");
        else
            continue;
        goto cleanup;
    }
cleanup:
    lzma_end(&s);
    return rc;
}

/*
 * The lz4 frame decoder may hold output back when the buffer is full, so
 * it is called until it has neither input to take nor output to give.
 */
static int run_lz4(outbuf *o, const uint8_t *in, size_t n)
{
    LZ4F_dctx *d = NULL;
    size_t hint = 1;
    int rc = 0;

    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: lz4 init", o->name);
    for (;;) {
        size_t outn, inn = n;

        if (o->len == o->cap && (rc = out_grow(o)) != 0)
            goto cleanup;
        outn = o->cap - o->len;
        hint = LZ4F_decompress(d, o->p + o->len, &outn, in, &inn, NULL);
        if (LZ4F_isError(hint)) {
            rc = corrupt_error(o, "lz4");
            goto cleanup;
        }
        o->len += outn;
        in += inn;
        n -= inn;
        if (hint == 0 && n == 0)
            break;
        if (n == 0 && outn == 0) {
            rc = trunc_error(o, "lz4");
            goto cleanup;
        }
    }
cleanup:
    LZ4F_freeDecompressionContext(d);
    return rc;
}

/* One bzip2 stream; *used is set to the input bytes it took. */
static int run_bz2_one(outbuf *o, const uint8_t *in, size_t n, size_t *used)
{
    bz_stream b;
    int rc = 0, br;
    size_t left = n;

    memset(&b, 0, sizeof(b));
    if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK)
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: bzip2 init", o->name);
    b.next_in = (char *)in;
    for (;;) {
        unsigned chunk = cap_uint(left);

        if (o->len == o->cap && (rc = out_grow(o)) != 0)
            goto cleanup;
        b.avail_in = chunk;
        b.next_out = (char *)o->p + o->len;
        b.avail_out = cap_uint(o->cap - o->len);
        br = BZ2_bzDecompress(&b);
        o->len = (size_t)((uint8_t *)b.next_out - o->p);
        left -= chunk - b.avail_in;
        if (br == BZ_STREAM_END)
            break;
        if (br == BZ_OK && (b.avail_out == 0 || left > 0))
            continue;
        rc = br == BZ_OK
                 ? trunc_error(o, "bzip2")
                 : corrupt_error(o, "bzip2");
        goto cleanup;
    }
    *used = n - left;
cleanup:
    BZ2_bzDecompressEnd(&b);
    return rc;
}

static int run_bz2(outbuf *o, const uint8_t *in, size_t n)
{
    int rc;
    size_t used;

    do {
        used = 0;
        if ((rc = run_bz2_one(o, in, n, &used)) != 0)
            return rc;
        in += used;
        n -= used;
    } while (fdx__comp_detect(in, n) == FDX__COMP_BZ2);
    return 0;
}

static int run_zstd(outbuf *o, const uint8_t *in, size_t n)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, n, 0};
    size_t zr = 1;
    int rc = 0;

    if (z == NULL)
        return fdx_error_set(o->err, FDX_ENOMEM, "%s: zstd init", o->name);
    while (ib.pos < ib.size || zr != 0) {
        ZSTD_outBuffer ob;

        if (o->len == o->cap && (rc = out_grow(o)) != 0)
            goto cleanup;
        ob.dst = o->p + o->len;
        ob.size = o->cap - o->len;
        ob.pos = 0;
        zr = ZSTD_decompressStream(z, &ob, &ib);
        o->len += ob.pos;
        if (ZSTD_isError(zr)) {
            rc = corrupt_error(o, "zstd");
            goto cleanup;
        }
        if (zr != 0 && ib.pos == ib.size && ob.pos < ob.size) {
            rc = trunc_error(o, "zstd");
            goto cleanup;
        }
    }
cleanup:
    ZSTD_freeDStream(z);
    return rc;
}

int fdx__decompress(const uint8_t *in, size_t n, size_t max_out,
                    uint8_t **out, size_t *out_len, const char *name,
                    fdx_error *err)
{
    outbuf o = {NULL, 0, 0, max_out, name, err};
    enum fdx__comp c = fdx__comp_detect(in, n);
    int rc;

    *out = NULL;
    *out_len = 0;
    switch (c) {
    case FDX__COMP_GZIP: rc = run_gzip(&o, in, n); break;
    case FDX__COMP_XZ: rc = run_xz(&o, in, n); break;
    case FDX__COMP_LZ4: rc = run_lz4(&o, in, n); break;
    case FDX__COMP_BZ2: rc = run_bz2(&o, in, n); break;
    case FDX__COMP_ZSTD: rc = run_zstd(&o, in, n); break;
    default:
        if (n > max_out) {
            rc = fdx_error_set(err, FDX_ELIMIT, "%s: size exceeds %zu "
                               "bytes", name, max_out);
            break;
        }
        o.cap = n;
        o.p = fdx__malloc(n + 1);
        rc = o.p == NULL ? fdx_error_set(err, FDX_ENOMEM, "%s: out of "
                                         "memory", name) : 0;
        if (rc == 0 && n > 0)
            memcpy(o.p, in, n);
        o.len = n;
        break;
    }
    if (rc == 0)
        rc = out_check(&o);
    if (rc == 0 && o.p == NULL)
        rc = out_grow(&o);
    if (rc != 0) {
        fdx__free(o.p);
        return rc;
    }
    o.p[o.len] = '\0';
    *out = o.p;
    *out_len = o.len;
    return 0;
}

int fdx__read_file(const char *path, size_t max, uint8_t **buf, size_t *len,
                   fdx_error *err)
{
    uint8_t *p = NULL;
    uint64_t size;
    size_t got = 0;
    int fd, rc;

    *buf = NULL;
    *len = 0;
    if ((rc = fdx__open_regular(path, &fd, &size, err)) != 0)
        return rc;
    if (size > max) {
        rc = fdx_error_set(err, FDX_ELIMIT, "%s: larger than %zu bytes",
                           path, max);
        goto cleanup;
    }
    p = fdx__malloc((size_t)size + 1);
    if (p == NULL) {
        rc = fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    while (got < (size_t)size) {
        ssize_t r = read(fd, p + got, (size_t)size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = fdx_error_set(err, FDX_EIO, "%s: read error at offset %zu",
                               path, got);
            goto cleanup;
        }
        got += (size_t)r;
    }
    p[got] = '\0';
    *buf = p;
    *len = got;
    p = NULL;
cleanup:
    fdx__free(p);
    close(fd);
    return rc;
}

int fdx__decompress_file(const char *path, size_t max_out, uint8_t **out,
                         size_t *out_len, fdx_error *err)
{
    uint8_t *raw;
    size_t n;
    int rc;

    *out = NULL;
    *out_len = 0;
    /* A compressed file is never larger than its output cap here. */
    rc = fdx__read_file(path, max_out, &raw, &n, err);
    if (rc != 0)
        return rc;
    if (fdx__comp_detect(raw, n) == FDX__COMP_PLAIN) {
        *out = raw;
        *out_len = n;
        return 0;
    }
    rc = fdx__decompress(raw, n, max_out, out, out_len, path, err);
    fdx__free(raw);
    return rc;
}
