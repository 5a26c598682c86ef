/*
 * flowdex catalog: the size of every file a client can download from the
 * software repositories it knows, with what each file is.
 *
 * A catalog is built once from repository metadata (a Debian mirror tree on
 * disk or over HTTP(S), or single Packages files) and written to one
 * versioned, checksummed file that is memory-mapped for lookups.  Entries
 * are kept sorted by size so that every file whose size lies in a window
 * is found with one binary search.  The file layout is described in
 * flowdex-catalog(5).
 */
#ifndef FLOWDEX_CATALOG_H
#define FLOWDEX_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a catalog entry is. */
enum fdx_file_kind {
    FDX_KIND_PACKAGE = 1,   /* a binary package (.deb, .udeb) */
    FDX_KIND_INRELEASE = 2, /* dists/<suite>/InRelease */
    FDX_KIND_RELEASE = 3,   /* dists/<suite>/Release or Release.gpg */
    FDX_KIND_INDEX = 4      /* Packages, Packages.xz, ... listed in InRelease */
};

/*
 * Where an entry comes from: one suite of one archive.  release is the
 * major version ("12" for 12.15) or, when the Release file has no
 * Version, the suite name ("unstable").  Strings point into the mapped
 * catalog and live as long as it.
 */
typedef struct fdx_origin {
    const char *family;    /* "debian" */
    const char *archive;   /* "debian", "debian-security" */
    const char *suite;     /* "bookworm", "stable", "unstable" */
    const char *codename;  /* "bookworm", "sid" */
    const char *version;   /* "12.15", "" when none */
    const char *release;   /* "12", "unstable" */
} fdx_origin;

/*
 * One downloadable file.  Strings point into the mapped catalog.  arch is
 * the package's architecture ("amd64", "all") or, for an index file, the
 * architecture it lists ("" for files of the whole suite).
 */
typedef struct fdx_entry {
    uint64_t size;
    const char *path;      /* relative to the mirror root */
    const char *package;   /* "" for index files */
    const char *version;   /* "" for index files */
    const char *arch;
    uint32_t origin;       /* index for fdx_catalog_origin() */
    uint8_t kind;          /* enum fdx_file_kind */
} fdx_entry;

typedef struct fdx_catalog fdx_catalog;

/*
 * Maps and verifies a catalog file.  Returns 0 and sets *out, or a
 * negative code (FDX_ENOENT, FDX_EFORMAT, FDX_EVERSION, FDX_ECHECKSUM,
 * FDX_ECORRUPT) with err naming the file.  Free with fdx_catalog_close().
 */
int fdx_catalog_open(const char *path, fdx_catalog **out, fdx_error *err);
void fdx_catalog_close(fdx_catalog *cat);

size_t fdx_catalog_count(const fdx_catalog *cat);
size_t fdx_catalog_origin_count(const fdx_catalog *cat);

/* Fills *e with entry i (0 <= i < count), entries ordered by size. */
void fdx_catalog_entry(const fdx_catalog *cat, size_t i, fdx_entry *e);

/* Fills *o with origin i (0 <= i < origin_count). */
void fdx_catalog_origin(const fdx_catalog *cat, uint32_t i, fdx_origin *o);

/* Size of entry i, cheaper than fdx_catalog_entry(). */
uint64_t fdx_catalog_size(const fdx_catalog *cat, size_t i);

/*
 * Finds the entries with lo <= size <= hi: sets *first and returns how
 * many there are (they are first, first+1, ...).
 */
size_t fdx_catalog_range(const fdx_catalog *cat, uint64_t lo, uint64_t hi,
                         size_t *first);

/* Build date (UTC seconds) and the catalog's own creation tool version. */
int64_t fdx_catalog_created(const fdx_catalog *cat);

/* The file format version of the catalog (1). */
uint32_t fdx_catalog_format(const fdx_catalog *cat);

/* ---------------------------------------------------------------- */
/* Building                                                          */
/* ---------------------------------------------------------------- */

typedef struct fdx_build_opts {
    const char *const *suites;   /* NULL-terminated list, NULL: all */
    const char *const *arches;   /* NULL-terminated list, NULL: all */
    const fdx_logger *log;
    int verify;                  /* check index files against InRelease */
    /*
     * Optional: called before each index file is read with its path (or
     * URL) and the number of entries gathered so far.
     */
    void (*progress)(void *ud, const char *file, uint64_t entries);
    void *progress_ud;
} fdx_build_opts;

typedef struct fdx_build_stats {
    uint64_t suites;
    uint64_t index_files;        /* Packages files read */
    uint64_t packages;           /* package entries written */
    uint64_t index_entries;      /* InRelease/index entries written */
    uint64_t duplicates;         /* same file listed again, merged */
} fdx_build_stats;

/*
 * Builds a catalog from sources and writes it to out_path atomically (a
 * temporary file renamed into place; nothing is left behind on failure).
 * A source is a directory holding a mirror tree (<archive>/dists/<suite>/
 * InRelease and the index files it lists), an http:// or https:// mirror
 * URL, or a single Packages file (plain, .gz, .xz, .lz4 or .bz2).
 * An out_path that exists and is not a regular file (a device, a FIFO, a
 * directory) is refused with FDX_ECANTCREAT before any source is read, as
 * is one whose temporary file cannot be created.
 */
int fdx_catalog_build(const char *const *sources, size_t nsources,
                      const char *out_path, const fdx_build_opts *opts,
                      fdx_build_stats *stats, fdx_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_CATALOG_H */
