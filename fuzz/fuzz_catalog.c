/*
 * Fuzz target: fdx_catalog_open() on the input as a catalog file (plain,
 * or compressed in any format decompress.c knows), then every accessor
 * on every entry and origin, and fdx_catalog_range() around each size.
 *
 * Checksums guard the catalog, so nearly every mutation would stop at
 * them.  For inputs of odd size that start with the catalog magic the
 * target writes both CRCs right before opening the file, so the checks
 * behind them are reached; inputs of even size are opened as they are,
 * which keeps the checksum checks themselves fuzzed.  Some sizes also
 * make an allocation fail (fuzz_fail_alloc_by_size()).
 */
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "fuzz.h"
#include "internal.h"

static uint64_t sink;

static void check_range(const fdx_catalog *cat, size_t i, uint64_t size)
{
    size_t first, n = fdx_catalog_range(cat, size, size, &first);

    if (n == 0 || i < first || i >= first + n)
        fuzz_fail("entry %zu (size %llu) not in its range [%zu, +%zu)",
                  i, (unsigned long long)size, first, n);
    n = fdx_catalog_range(cat, size ? size - 1 : 0, size + 1, &first);
    if (i < first || i >= first + n)
        fuzz_fail("entry %zu not in the range around its size", i);
}

static void walk_entries(const fdx_catalog *cat)
{
    size_t count = fdx_catalog_count(cat);
    size_t norigins = fdx_catalog_origin_count(cat);

    for (size_t i = 0; i < count; i++) {
        fdx_entry e;

        fdx_catalog_entry(cat, i, &e);
        if (e.size != fdx_catalog_size(cat, i) || e.origin >= norigins ||
            e.kind < FDX_KIND_PACKAGE || e.kind > FDX_KIND_INDEX)
            fuzz_fail("entry %zu: size, origin or kind inconsistent", i);
        sink += strlen(e.path) + strlen(e.package) + strlen(e.version) +
                strlen(e.arch);
        check_range(cat, i, e.size);
    }
}

static void walk_origins(const fdx_catalog *cat)
{
    size_t n = fdx_catalog_origin_count(cat);

    for (size_t i = 0; i < n; i++) {
        fdx_origin o;

        fdx_catalog_origin(cat, (uint32_t)i, &o);
        sink += strlen(o.family) + strlen(o.archive) + strlen(o.suite) +
                strlen(o.codename) + strlen(o.version) +
                strlen(o.release);
    }
}

static void walk(const fdx_catalog *cat)
{
    size_t first, n;

    walk_origins(cat);
    walk_entries(cat);
    n = fdx_catalog_range(cat, 0, UINT64_MAX, &first);
    if (first != 0 || n != fdx_catalog_count(cat))
        fuzz_fail("full range is [%zu, +%zu) of %zu", first, n,
                  fdx_catalog_count(cat));
    if (fdx_catalog_range(cat, 2, 1, &first) != 0)
        fuzz_fail("empty range is not empty");
    sink += (uint64_t)fdx_catalog_created(cat) + fdx_catalog_format(cat);
}

static const uint8_t *fix_crc(const uint8_t *data, size_t size,
                              uint8_t **copy)
{
    uint8_t *c;
    uint32_t crc;

    if (size < FDX__CAT_HEADER_SIZE ||
        memcmp(data, FDX__CAT_MAGIC, FDX__CAT_MAGIC_LEN) != 0)
        return data;
    if ((c = malloc(size)) == NULL)
        abort();
    memcpy(c, data, size);
    crc = fdx__crc32(c + FDX__CAT_HEADER_SIZE, size - FDX__CAT_HEADER_SIZE);
    for (int k = 0; k < 4; k++)
        c[FDX__CAT_H_BODY_CRC + k] = (uint8_t)(crc >> 8 * k);
    crc = fdx__crc32(c, FDX__CAT_H_HEADER_CRC);
    for (int k = 0; k < 4; k++)
        c[FDX__CAT_H_HEADER_CRC + k] = (uint8_t)(crc >> 8 * k);
    *copy = c;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdx_catalog *cat = NULL;
    const char *path;
    fdx_error err;
    uint8_t *copy = NULL;
    int rc;

    if (size & 1)
        data = fix_crc(data, size, &copy);
    memset(&err, 0, sizeof(err));
    fuzz_fail_alloc_by_size(size);
    path = fuzz_file(data, size);
    fuzz_dirty_stack();
    rc = fdx_catalog_open(path, &cat, &err);
    free(copy);
    if (rc != 0) {
        if (rc > 0 || rc < FDX_ENOTFOUND || err.code != rc ||
            err.msg[0] == '\0' || cat != NULL)
            fuzz_fail("open returned %d, error %d \"%s\"", rc, err.code,
                      err.msg);
        return 0;
    }
    walk(cat);
    fdx_catalog_close(cat);
    return 0;
}
