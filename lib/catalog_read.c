/*
 * Catalog reader: maps a catalog file and checks, once at open, everything
 * later accesses rely on: magic, version, both CRCs, that every section
 * lies inside the file, that every string offset lies inside the string
 * pool (whose last byte is NUL), that origins and kinds are in range and
 * that entries are sorted by size.  After that the accessors read the
 * mapping without further checks.  A catalog compressed with any format
 * decompress.c knows (the sample ships as .xz) is inflated into memory
 * first and checked the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "catalog_int.h"
#include "decompress.h"
#include "flowdex/catalog.h"
#include "internal.h"

struct fdx_catalog {
    const uint8_t *base;
    size_t len;
    int mapped;               /* munmap base, else fdx__free it */
    const uint8_t *origins;
    const uint8_t *entries;
    const char *strings;
    uint32_t nentries;
    uint32_t norigins;
    uint32_t entry_size;
    int64_t created;
    uint64_t *sizes;          /* every entry's size, contiguous: lookups
                               * search this, not the wider records */
    uint32_t *bucket;         /* see FDX__CAT_BUCKET_BITS */
};

/*
 * A size lookup first finds its bucket of 2^FDX__CAT_BUCKET_BITS bytes:
 * bucket[k] is the first entry of size k << FDX__CAT_BUCKET_BITS or more,
 * for the FDX__CAT_NBUCKET buckets below 16 MiB (1 MiB of table), so the
 * binary search runs over a few entries instead of the whole catalog.
 * Larger sizes are rare and searched above bucket[FDX__CAT_NBUCKET].
 */
#define FDX__CAT_BUCKET_BITS 6
#define FDX__CAT_NBUCKET ((size_t)1 << (24 - FDX__CAT_BUCKET_BITS))


/* Checks magic, version and both checksums. */
static int check_header(const uint8_t *b, size_t len, const char *path,
                        fdx_error *err)
{
    uint32_t hsize;

    if (len < FDX__CAT_MAGIC_LEN ||
        memcmp(b, FDX__CAT_MAGIC, FDX__CAT_MAGIC_LEN) != 0)
        return fdx_error_set(err, FDX_EFORMAT, "%s: not a flowdex catalog",
                             path);
    if (len < FDX__CAT_HEADER_SIZE)
        return fdx_error_set(err, FDX_ECORRUPT, "%s: truncated header "
                             "(%zu bytes)", path, len);
    if (fdx__le32(b + FDX__CAT_H_VERSION) != FDX__CAT_VERSION)
        return fdx_error_set(err, FDX_EVERSION, "%s: catalog format %u, "
                             "this flowdex reads %u", path,
                             fdx__le32(b + FDX__CAT_H_VERSION),
                             FDX__CAT_VERSION);
    if (fdx__crc32(b, FDX__CAT_H_HEADER_CRC) !=
        fdx__le32(b + FDX__CAT_H_HEADER_CRC))
        return fdx_error_set(err, FDX_ECHECKSUM, "%s: header checksum "
                             "mismatch", path);
    hsize = fdx__le32(b + FDX__CAT_H_HSIZE);
    if (hsize != FDX__CAT_HEADER_SIZE)
        return fdx_error_set(err, FDX_ECORRUPT, "%s: header size %u",
                             path, hsize);
    if (fdx__crc32(b + hsize, len - hsize) !=
        fdx__le32(b + FDX__CAT_H_BODY_CRC))
        return fdx_error_set(err, FDX_ECHECKSUM, "%s: body checksum "
                             "mismatch (file damaged or truncated)", path);
    return 0;
}

/* Section [off, off + size) within the body of a len-byte file. */
static int section_ok(const uint8_t *b, int field, size_t len,
                      uint64_t want)
{
    uint64_t off = fdx__le64(b + field), size = fdx__le64(b + field + 8);

    return off >= FDX__CAT_HEADER_SIZE && off <= len && size <= len - off &&
           size == want;
}

static int check_layout(fdx_catalog *c, const char *path, fdx_error *err)
{
    const uint8_t *b = c->base;
    uint64_t ssize = fdx__le64(b + FDX__CAT_H_STRINGS + 8);

    c->nentries = fdx__le32(b + FDX__CAT_H_NENTRIES);
    c->norigins = fdx__le32(b + FDX__CAT_H_NORIGINS);
    c->entry_size = fdx__le32(b + FDX__CAT_H_ENTRY_SIZE);
    c->created = (int64_t)fdx__le64(b + FDX__CAT_H_CREATED);
    if (c->entry_size < FDX__CAT_ENTRY_SIZE || c->entry_size > 4096 ||
        c->norigins > 65536 ||
        !section_ok(b, FDX__CAT_H_ORIGINS, c->len,
                    (uint64_t)c->norigins * FDX__CAT_ORIGIN_SIZE) ||
        !section_ok(b, FDX__CAT_H_ENTRIES, c->len,
                    (uint64_t)c->nentries * c->entry_size) ||
        !section_ok(b, FDX__CAT_H_STRINGS, c->len, ssize) || ssize == 0 ||
        ssize > UINT32_MAX + (uint64_t)1)
        return fdx_error_set(err, FDX_ECORRUPT, "%s: section offsets or "
                             "counts out of range", path);
    c->origins = b + fdx__le64(b + FDX__CAT_H_ORIGINS);
    c->entries = b + fdx__le64(b + FDX__CAT_H_ENTRIES);
    c->strings = (const char *)b + fdx__le64(b + FDX__CAT_H_STRINGS);
    if (c->strings[ssize - 1] != '\0')
        return fdx_error_set(err, FDX_ECORRUPT, "%s: string pool not "
                             "terminated", path);
    return 0;
}

static int str_ok(const fdx_catalog *c, const uint8_t *p, uint64_t ssize)
{
    return fdx__le32(p) < ssize;
}

/* Every string offset, origin index and kind; entries in size order. */
static int check_records(const fdx_catalog *c, const char *path,
                         fdx_error *err)
{
    uint64_t ssize = fdx__le64(c->base + FDX__CAT_H_STRINGS + 8), prev = 0;

    for (uint32_t i = 0; i < c->norigins; i++)
        for (int f = 0; f < FDX__CAT_ORIGIN_FIELDS; f++)
            if (!str_ok(c, c->origins + i * FDX__CAT_ORIGIN_SIZE + 4 * f,
                        ssize))
                return fdx_error_set(err, FDX_ECORRUPT, "%s: origin %u: "
                                     "string offset out of range", path, i);
    for (uint32_t i = 0; i < c->nentries; i++) {
        const uint8_t *e = c->entries + (size_t)i * c->entry_size;
        uint64_t size = fdx__le64(e + FDX__CAT_E_SIZE);
        uint8_t kind = e[FDX__CAT_E_KIND];

        if (!str_ok(c, e + FDX__CAT_E_PATH, ssize) ||
            !str_ok(c, e + FDX__CAT_E_PACKAGE, ssize) ||
            !str_ok(c, e + FDX__CAT_E_VERSION, ssize) ||
            !str_ok(c, e + FDX__CAT_E_ARCH, ssize) ||
            fdx__le16(e + FDX__CAT_E_ORIGIN) >= c->norigins ||
            kind < FDX_KIND_PACKAGE || kind > FDX_KIND_INDEX || size < prev)
            return fdx_error_set(err, FDX_ECORRUPT, "%s: entry %u (offset "
                                 "%zu) invalid", path, i,
                                 (size_t)(e - c->base));
        prev = size;
    }
    return 0;
}

/* Maps path, or reads and inflates it when it is compressed. */
static int load(fdx_catalog *c, const char *path, fdx_error *err)
{
    void *m;
    uint64_t size;
    int fd, rc;
    uint8_t head[8] = {0};

    if ((rc = fdx__open_regular(path, &fd, &size, err)) != 0)
        return rc;
    if (pread(fd, head, sizeof(head), 0) < 0 ||
        fdx__comp_detect(head, sizeof(head)) != FDX__COMP_PLAIN ||
        size == 0) {
        uint8_t *buf = NULL;
        size_t n = 0;

        rc = fdx__decompress_file(path, FDX__CAT_MAX_INFLATED, &buf, &n,
                                  err);
        c->base = buf;
        c->len = n;
        goto cleanup;
    }
    m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        rc = fdx_error_set(err, FDX_EIO, "%s: mmap: %s", path,
                           strerror(errno));
        goto cleanup;
    }
    c->base = m;
    c->len = (size_t)size;
    c->mapped = 1;
cleanup:
    close(fd);
    return rc;
}

static int copy_sizes(fdx_catalog *c, const char *path, fdx_error *err)
{
    c->sizes = fdx__malloc((c->nentries ? c->nentries : 1) *
                           sizeof(*c->sizes));
    if (c->sizes == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
    for (uint32_t i = 0; i < c->nentries; i++)
        c->sizes[i] = fdx__le64(c->entries + (size_t)i * c->entry_size +
                                FDX__CAT_E_SIZE);
    return 0;
}

/* The entries are sorted by size (check_records), so one walk fills it. */
static int build_buckets(fdx_catalog *c, const char *path, fdx_error *err)
{
    uint32_t i = 0;

    c->bucket = fdx__malloc((FDX__CAT_NBUCKET + 1) * sizeof(*c->bucket));
    if (c->bucket == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
    for (size_t k = 0; k <= FDX__CAT_NBUCKET; k++) {
        while (i < c->nentries &&
               c->sizes[i] < (uint64_t)k << FDX__CAT_BUCKET_BITS)
            i++;
        c->bucket[k] = i;
    }
    return 0;
}

int fdx_catalog_open(const char *path, fdx_catalog **out, fdx_error *err)
{
    fdx_catalog *c = fdx__calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (c == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", path);
    if ((rc = load(c, path, err)) != 0 ||
        (rc = check_header(c->base, c->len, path, err)) != 0 ||
        (rc = check_layout(c, path, err)) != 0 ||
        (rc = check_records(c, path, err)) != 0 ||
        (rc = copy_sizes(c, path, err)) != 0 ||
        (rc = build_buckets(c, path, err)) != 0) {
        fdx_catalog_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void fdx_catalog_close(fdx_catalog *cat)
{
    if (cat == NULL)
        return;
    if (cat->mapped)
        munmap((void *)cat->base, cat->len);
    else
        fdx__free((void *)cat->base);
    fdx__free(cat->sizes);
    fdx__free(cat->bucket);
    fdx__free(cat);
}

uint32_t fdx_catalog_format(const fdx_catalog *cat)
{
    return fdx__le32(cat->base + FDX__CAT_H_VERSION);
}

size_t fdx_catalog_count(const fdx_catalog *cat)
{
    return cat->nentries;
}

size_t fdx_catalog_origin_count(const fdx_catalog *cat)
{
    return cat->norigins;
}

int64_t fdx_catalog_created(const fdx_catalog *cat)
{
    return cat->created;
}

static const char *str_at(const fdx_catalog *c, const uint8_t *p)
{
    return c->strings + fdx__le32(p);
}

static const uint8_t *entry_at(const fdx_catalog *c, size_t i)
{
    return c->entries + i * c->entry_size;
}

uint64_t fdx_catalog_size(const fdx_catalog *cat, size_t i)
{
    return cat->sizes[i];
}

void fdx_catalog_entry(const fdx_catalog *cat, size_t i, fdx_entry *e)
{
    const uint8_t *r = entry_at(cat, i);

    e->size = fdx__le64(r + FDX__CAT_E_SIZE);
    e->path = str_at(cat, r + FDX__CAT_E_PATH);
    e->package = str_at(cat, r + FDX__CAT_E_PACKAGE);
    e->version = str_at(cat, r + FDX__CAT_E_VERSION);
    e->arch = str_at(cat, r + FDX__CAT_E_ARCH);
    e->origin = fdx__le16(r + FDX__CAT_E_ORIGIN);
    e->kind = r[FDX__CAT_E_KIND];
}

void fdx_catalog_origin(const fdx_catalog *cat, uint32_t i, fdx_origin *o)
{
    const uint8_t *r = cat->origins + (size_t)i * FDX__CAT_ORIGIN_SIZE;

    o->family = str_at(cat, r);
    o->archive = str_at(cat, r + 4);
    o->suite = str_at(cat, r + 8);
    o->codename = str_at(cat, r + 12);
    o->version = str_at(cat, r + 16);
    o->release = str_at(cat, r + 20);
}

/* First entry whose size is >= v (count when there is none). */
/* The first entry of size v or more, searched within v's bucket. */
static size_t lower_bound(const fdx_catalog *cat, uint64_t v)
{
    uint64_t k = v >> FDX__CAT_BUCKET_BITS;
    size_t lo, hi;

    if (k < FDX__CAT_NBUCKET) {
        lo = cat->bucket[k];
        hi = cat->bucket[k + 1];
    } else {
        lo = cat->bucket[FDX__CAT_NBUCKET];
        hi = cat->nentries;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cat->sizes[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t fdx_catalog_range(const fdx_catalog *cat, uint64_t lo, uint64_t hi,
                         size_t *first)
{
    size_t a, b;

    if (lo > hi) {
        *first = 0;
        return 0;
    }
    a = lower_bound(cat, lo);
    b = hi == UINT64_MAX ? cat->nentries : lower_bound(cat, hi + 1);
    *first = a;
    return b - a;
}
