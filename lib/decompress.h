/*
 * Private interface: reading whole files and undoing their compression.
 *
 * The format is told by the first bytes (gzip, xz, lz4 frame, bzip2,
 * zstd), not by the file name; anything else is taken as plain.  Output
 * is capped by the caller so that a small hostile file cannot expand into
 * gigabytes: going beyond the cap fails with FDX_ELIMIT.
 */
#ifndef FLOWDEX_DECOMPRESS_H
#define FLOWDEX_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/error.h"

enum fdx__comp {
    FDX__COMP_PLAIN = 0,
    FDX__COMP_GZIP,
    FDX__COMP_XZ,
    FDX__COMP_LZ4,
    FDX__COMP_BZ2,
    FDX__COMP_ZSTD
};

/* The compression of a buffer, from its magic bytes. */
enum fdx__comp fdx__comp_detect(const uint8_t *p, size_t n);

/* "plain", "gzip", "xz", "lz4", "bzip2" or "zstd". */
const char *fdx__comp_name(enum fdx__comp c);

/*
 * Decompresses in[0..n) into a new buffer *out of *out_len bytes (plus a
 * NUL byte not counted, so text can be parsed in place), which the caller
 * frees with fdx__free().  Plain input is copied.  name labels errors.
 * Returns 0, FDX_ELIMIT beyond max_out bytes, FDX_ETRUNC for a stream
 * that ends early, FDX_ECORRUPT for bad data or FDX_ENOMEM.
 */
int fdx__decompress(const uint8_t *in, size_t n, size_t max_out,
                    uint8_t **out, size_t *out_len, const char *name,
                    fdx_error *err);

/*
 * Reads a whole file into a new NUL-terminated buffer (the NUL is not
 * counted in *len).  Fails with FDX_ENOENT, FDX_EIO or FDX_ELIMIT for a
 * file larger than max bytes.
 */
int fdx__read_file(const char *path, size_t max, uint8_t **buf, size_t *len,
                   fdx_error *err);

/* fdx__read_file() then fdx__decompress(); plain files are not copied. */
int fdx__decompress_file(const char *path, size_t max_out, uint8_t **out,
                         size_t *out_len, fdx_error *err);

#endif /* FLOWDEX_DECOMPRESS_H */
