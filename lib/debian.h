/*
 * Private interface: Debian repository metadata.
 *
 * Parses the Release file of a suite (InRelease is the same text inside a
 * PGP clearsign armor, which is stripped, not verified) and the stanzas of
 * Packages files.  Both parsers work in place on a NUL-terminated buffer
 * the caller owns: they cut it into strings, and every string they hand
 * out points into it, so the buffer must outlive the results.
 */
#ifndef FLOWDEX_DEBIAN_H
#define FLOWDEX_DEBIAN_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/common.h"

/* One "hash size path" line of the SHA256 field. */
typedef struct fdx__release_file {
    const char *path;        /* relative to dists/<suite>/ */
    uint64_t size;
    uint8_t sha256[32];
} fdx__release_file;

typedef struct fdx__release {
    const char *origin;      /* "Debian"; "" when absent, as all below */
    const char *label;
    const char *suite;       /* "oldstable", "unstable" */
    const char *codename;    /* "bookworm", "sid" */
    const char *version;     /* "12.15", "" */
    const char *date;
    const char *architectures;
    const char *components;
    fdx__release_file *files; /* owned; fdx__release_free() frees it */
    size_t nfiles;
} fdx__release;

/*
 * Parses a Release or InRelease text held in buf[0..len) (buf[len] must
 * be NUL; the buffer is modified).  name labels errors, which give the
 * line number.  Returns 0, FDX_EFORMAT (not a Release file), FDX_ECORRUPT
 * or FDX_ENOMEM.
 */
int fdx__release_parse(char *buf, size_t len, const char *name,
                       fdx__release *r, fdx_error *err);
void fdx__release_free(fdx__release *r);

/* The SHA256 entry for path, or NULL. */
const fdx__release_file *fdx__release_find(const fdx__release *r,
                                           const char *path);

/*
 * Writes the family ("debian": Origin lowercased, "debian" when absent)
 * and the release ("12" for Version 12.15 or 12-updates, the Suite when
 * there is no Version) into the buffers, truncating to their sizes.
 */
void fdx__release_family(const fdx__release *r, char *out, size_t size);
void fdx__release_major(const fdx__release *r, char *out, size_t size);

/* The fields of one Packages stanza flowdex keeps. */
typedef struct fdx__pkg {
    const char *package;
    const char *version;
    const char *arch;
    const char *filename;
    uint64_t size;
    size_t line;             /* first line of the stanza */
} fdx__pkg;

/* Called once per complete stanza; a non-zero return stops the parse. */
typedef int (*fdx__pkg_fn)(void *ud, const fdx__pkg *p);

/*
 * Parses the Packages text in buf[0..len) (buf[len] must be NUL; the
 * buffer is modified).  Stanzas missing one of Package, Version,
 * Architecture, Filename or Size, or with a byte outside printable ASCII
 * (0x21 to 0x7e) in one of the first four, are skipped and counted in
 * *skipped.
 * A line that is no field, a bad Size or a NUL byte is FDX_ECORRUPT with
 * name and line in err.  Returns 0, that error, or fn's return value.
 */
int fdx__packages_parse(char *buf, size_t len, const char *name,
                        fdx__pkg_fn fn, void *ud, uint64_t *skipped,
                        const fdx_logger *log, fdx_error *err);

#endif /* FLOWDEX_DEBIAN_H */
