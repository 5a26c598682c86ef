/*
 * Tests of the catalog: decompression of every supported format, the
 * Debian metadata parsers, building from the tiny mirror in
 * tests/data/catalog (see make-mirror.py there), lookups, filters, build
 * failures that must leave no file behind, and damaged catalog files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <bzlib.h>
#include <lz4frame.h>
#include <lzma.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "catalog_int.h"
#include "debian.h"
#include "decompress.h"
#include "flowdex/catalog.h"
#include "internal.h"

#ifndef FDX_SOURCE_ROOT
#define FDX_SOURCE_ROOT "."
#endif
#define MIRROR FDX_SOURCE_ROOT "/tests/data/catalog/mirror"
#define TINY MIRROR "/debian/dists/tiny"

static char tmpdir[256];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fdx-test-catalog-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmp(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* No catalog and no temporary file may be left in tmpdir/out. */
static void assert_nothing_left(const char *out)
{
    char cmd[600];

    assert_false(file_exists(out));
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q tmp", tmpdir);
    assert_int_not_equal(system(cmd), 0);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *buf;
    fdx_error err;

    assert_int_equal(fdx__read_file(path, 1 << 30, &buf, n, &err), 0);
    return buf;
}

/* ---------------------------------------------------------------- */
/* Decompression                                                     */
/* ---------------------------------------------------------------- */

static const char sample_text[] =
    "Package: alpha\nVersion: 1.0\nArchitecture: amd64\n"
    "Filename: pool/main/a/alpha/alpha_1.0_amd64.deb\nSize: 1000\n\n";

/* Text of n bytes, compressible but not trivially. */
static char *make_text(size_t n)
{
    char *t = malloc(n);

    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        t[i] = sample_text[i % (sizeof(sample_text) - 1)] ^
               (char)((i / 977) & 1);
    return t;
}

static size_t compress_as(enum fdx__comp c, const char *in, size_t n,
                          uint8_t *out, size_t cap)
{
    size_t pos = 0;
    uLongf zl = cap;
    unsigned bl = (unsigned)cap;

    switch (c) {
    case FDX__COMP_GZIP: {
        z_stream z;

        memset(&z, 0, sizeof(z));
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        zl = z.total_out;
        deflateEnd(&z);
        return zl;
    }
    case FDX__COMP_XZ:
        assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL,
                                                 (const uint8_t *)in, n, out,
                                                 &pos, cap), LZMA_OK);
        return pos;
    case FDX__COMP_LZ4:
        pos = LZ4F_compressFrame(out, cap, in, n, NULL);
        assert_false(LZ4F_isError(pos));
        return pos;
    case FDX__COMP_BZ2:
        assert_int_equal(BZ2_bzBuffToBuffCompress((char *)out, &bl,
                                                  (char *)in, (unsigned)n,
                                                  9, 0, 0), BZ_OK);
        return bl;
    case FDX__COMP_ZSTD:
        pos = ZSTD_compress(out, cap, in, n, 3);
        assert_false(ZSTD_isError(pos));
        return pos;
    default:
        memcpy(out, in, n);
        return n;
    }
}

static void test_decompress_roundtrip(void **state)
{
    const size_t n = 300000;
    char *text = make_text(n);
    uint8_t *packed = malloc(2 * n), *out;
    size_t plen, olen;
    fdx_error err;

    (void)state;
    for (int c = FDX__COMP_PLAIN; c <= FDX__COMP_ZSTD; c++) {
        plen = compress_as(c, text, n, packed, 2 * n);
        assert_int_equal(fdx__comp_detect(packed, plen), c);
        assert_int_equal(fdx__decompress(packed, plen, n, &out, &olen,
                                         "t", &err), 0);
        assert_int_equal(olen, n);
        assert_memory_equal(out, text, n);
        assert_int_equal(out[n], 0);
        fdx__free(out);
        /* One byte under the output cap must be refused. */
        assert_int_equal(fdx__decompress(packed, plen, n - 1, &out, &olen,
                                         "t", &err), FDX_ELIMIT);
        assert_null(out);
        if (c == FDX__COMP_PLAIN)
            continue;
        /* Cut in half: an error, never a short success. */
        int rc = fdx__decompress(packed, plen / 2, n, &out, &olen, "cut",
                                 &err);
        assert_true(rc == FDX_ETRUNC || rc == FDX_ECORRUPT);
        assert_non_null(strstr(err.msg, "cut"));
    }
    free(text);
    free(packed);
}

static void test_decompress_garbage(void **state)
{
    uint8_t bad[64];
    uint8_t *out;
    size_t olen;
    fdx_error err;

    (void)state;
    memset(bad, 0x5a, sizeof(bad));
    memcpy(bad, "\xfd" "7zXZ\0", 6);
    assert_int_equal(fdx__decompress(bad, sizeof(bad), 1000, &out, &olen,
                                     "g", &err), FDX_ECORRUPT);
    memcpy(bad, "\x28\xb5\x2f\xfd", 4);
    assert_int_not_equal(fdx__decompress(bad, sizeof(bad), 1000, &out,
                                         &olen, "g", &err), 0);
    /* An empty plain input is an empty, NUL-terminated output. */
    assert_int_equal(fdx__decompress(bad, 0, 10, &out, &olen, "e", &err), 0);
    assert_int_equal(olen, 0);
    assert_int_equal(out[0], 0);
    fdx__free(out);
}

static void test_decompress_file(void **state)
{
    uint8_t *out;
    size_t olen;
    fdx_error err;

    (void)state;
    assert_int_equal(fdx__decompress_file(TINY "/main/binary-i386/"
                                          "Packages.gz", 1 << 20, &out,
                                          &olen, &err), 0);
    assert_int_equal(olen, 673); /* as InRelease lists */
    assert_non_null(strstr((char *)out, "Package: common-data\r\n"));
    fdx__free(out);
    assert_int_equal(fdx__decompress_file(TINY "/nonexistent", 100, &out,
                                          &olen, &err), FDX_ENOENT);
    assert_non_null(strstr(err.msg, "nonexistent"));
}

/* ---------------------------------------------------------------- */
/* Debian parsers                                                    */
/* ---------------------------------------------------------------- */

static void test_release_parse(void **state)
{
    size_t n;
    char *buf = (char *)slurp(TINY "/InRelease", &n);
    fdx__release r;
    fdx_error err;
    char out[64];
    const fdx__release_file *f;

    (void)state;
    assert_int_equal(fdx__release_parse(buf, n, "tiny", &r, &err), 0);
    assert_string_equal(r.origin, "Debian");
    assert_string_equal(r.suite, "stable");
    assert_string_equal(r.codename, "tiny");
    assert_string_equal(r.version, "42.1");
    assert_string_equal(r.architectures, "amd64 i386");
    assert_int_equal(r.nfiles, 8);
    f = fdx__release_find(&r, "main/binary-amd64/Packages");
    assert_non_null(f);
    assert_int_equal(f->size, 1080);
    assert_int_equal(f->sha256[0], 0x3c);
    assert_int_equal(f->sha256[31], 0x61);
    assert_null(fdx__release_find(&r, "main/binary-amd64/Packages.gz"));
    fdx__release_major(&r, out, sizeof(out));
    assert_string_equal(out, "42");
    fdx__release_family(&r, out, sizeof(out));
    assert_string_equal(out, "debian");
    fdx__release_free(&r);
    fdx__free(buf);
}

static void test_release_major(void **state)
{
    fdx__release r;
    char out[32];
    char text[] = "Origin: Debian\nSuite: unstable\nCodename: sid\n";
    char upd[] = "Suite: oldstable-updates\nVersion: 12-updates\n";
    char bad[] = "Origin: Debian\nthis is not a field\n";
    char none[] = "Origin: Debian\nLabel: x\n";
    fdx_error err;

    (void)state;
    assert_int_equal(fdx__release_parse(text, strlen(text), "t", &r, &err),
                     0);
    fdx__release_major(&r, out, sizeof(out));
    assert_string_equal(out, "unstable"); /* Suite, not Codename */
    fdx__release_free(&r);
    assert_int_equal(fdx__release_parse(upd, strlen(upd), "u", &r, &err), 0);
    fdx__release_major(&r, out, sizeof(out));
    assert_string_equal(out, "12");
    fdx__release_free(&r);
    assert_int_equal(fdx__release_parse(bad, strlen(bad), "b", &r, &err),
                     FDX_ECORRUPT);
    assert_string_equal(err.msg, "b:2: not a field");
    assert_int_equal(fdx__release_parse(none, strlen(none), "n", &r, &err),
                     FDX_EFORMAT);
}

typedef struct pkgs {
    fdx__pkg v[16];
    char names[16][32];
    size_t n;
} pkgs;

static int collect_pkg(void *ud, const fdx__pkg *p)
{
    pkgs *s = ud;

    if (s->n < 16) {
        s->v[s->n] = *p;
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", p->package);
    }
    s->n++;
    return 0;
}

static void test_packages_parse(void **state)
{
    char text[] =
        "Package: a\r\nVersion: 1\r\nArchitecture: all\r\n"
        "Description: x\r\n continued: with colon\r\n"
        "Filename: pool/a.deb\r\nSize: 42\r\n\r\n"
        "Package: nosize\nVersion: 1\nArchitecture: all\n"
        "Filename: pool/n.deb\n\n\n"
        "Package: b\nVersion: 2\nArchitecture: amd64\n"
        "Filename: pool/b.deb\nSize: 7";  /* no final newline */
    char corrupt[] = "Package: a\nVersion: 1\n\ngarbage line\n";
    char badsize[] = "Package: a\nSize: 12x\n";
    char cont[] = " leading continuation\n";
    /* bytes Debian policy does not allow in these fields: skipped */
    char forged[] =
        "Package: e\033[2Jvil\nVersion: 1\nArchitecture: all\n"
        "Filename: pool/e.deb\nSize: 1\n\n"
        "Package: f\nVersion: 1\xff\nArchitecture: all\n"
        "Filename: pool/f.deb\nSize: 1\n\n"
        "Package: g\nVersion: 1\nArchitecture: a ll\n"
        "Filename: pool/g.deb\nSize: 1\n\n"
        "Package: h\nVersion: 1\nArchitecture: all\n"
        "Filename: pool/h\x7f.deb\nSize: 1\n\n"
        "Package: ok\nVersion: 1:2.0~rc1+dfsg-3\nArchitecture: all\n"
        "Filename: pool/o/ok_2.0~rc1+dfsg-3_all.deb\nSize: 1\n"
        "Description: caf\xc3\xa9 is fine here\n";
    pkgs s;
    uint64_t skipped = 0;
    fdx_error err;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(fdx__packages_parse(text, strlen(text), "P",
                                         collect_pkg, &s, &skipped, NULL,
                                         &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(skipped, 1);
    assert_string_equal(s.names[0], "a");
    assert_int_equal(s.v[0].size, 42);
    assert_string_equal(s.v[1].filename, "pool/b.deb");
    assert_int_equal(s.v[1].size, 7);
    assert_int_equal(s.v[1].line, 15);
    assert_int_equal(fdx__packages_parse(corrupt, strlen(corrupt), "C",
                                         collect_pkg, &s, &skipped, NULL,
                                         &err), FDX_ECORRUPT);
    assert_string_equal(err.msg, "C:4: not a field");
    assert_int_equal(fdx__packages_parse(badsize, strlen(badsize), "S",
                                         collect_pkg, &s, &skipped, NULL,
                                         &err), FDX_ECORRUPT);
    assert_string_equal(err.msg, "S:2: bad Size");
    assert_int_equal(fdx__packages_parse(cont, strlen(cont), "L",
                                         collect_pkg, &s, &skipped, NULL,
                                         &err), FDX_ECORRUPT);
    memset(&s, 0, sizeof(s));
    skipped = 0;
    assert_int_equal(fdx__packages_parse(forged, strlen(forged), "F",
                                         collect_pkg, &s, &skipped, NULL,
                                         &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "ok");
    assert_int_equal(skipped, 4);
}

/* ---------------------------------------------------------------- */
/* Building                                                          */
/* ---------------------------------------------------------------- */

static int build(const char *src, const char *const *suites,
                 const char *const *arches, int verify, const char *out,
                 fdx_build_stats *st, fdx_error *err)
{
    fdx_build_opts o;
    const char *srcs[1] = {src};

    memset(&o, 0, sizeof(o));
    o.suites = suites;
    o.arches = arches;
    o.verify = verify;
    return fdx_catalog_build(srcs, 1, out, &o, st, err);
}

static fdx_catalog *build_open(const char *src, const char *const *suites,
                               const char *const *arches,
                               fdx_build_stats *st)
{
    char out[300];
    fdx_error err = {0, ""};
    fdx_catalog *cat = NULL;
    int rc;

    tmp_path(out, sizeof(out), "t.fdxc");
    rc = build(src, suites, arches, 1, out, st, &err);
    if (rc != 0)
        fail_msg("build: %d %s", rc, err.msg);
    rc = fdx_catalog_open(out, &cat, &err);
    if (rc != 0)
        fail_msg("open: %d %s", rc, err.msg);
    unlink(out);  /* the mapping stays valid */
    return cat;
}

static void assert_sorted(const fdx_catalog *cat)
{
    for (size_t i = 1; i < fdx_catalog_count(cat); i++)
        assert_true(fdx_catalog_size(cat, i - 1) <=
                    fdx_catalog_size(cat, i));
}

/* The only entry of exactly that size. */
static void entry_of_size(const fdx_catalog *cat, uint64_t size,
                          fdx_entry *e)
{
    size_t first;

    assert_int_equal(fdx_catalog_range(cat, size, size, &first), 1);
    fdx_catalog_entry(cat, first, e);
    assert_int_equal(e->size, size);
}

static void test_build_mirror(void **state)
{
    fdx_build_stats st;
    fdx_catalog *cat = build_open(MIRROR, NULL, NULL, &st);
    fdx_origin o;
    fdx_entry e;
    size_t first, n;
    struct stat sb;

    (void)state;
    assert_int_equal(st.suites, 2);
    assert_int_equal(st.index_files, 3);
    assert_int_equal(st.packages, 6);
    assert_int_equal(st.duplicates, 1);   /* common-data in 2 lists */
    assert_int_equal(st.index_entries, 2 + 8 + 3);
    assert_int_equal(fdx_catalog_count(cat), 19);
    assert_int_equal(fdx_catalog_format(cat), 1);
    assert_sorted(cat);
    assert_int_equal(fdx_catalog_origin_count(cat), 2);
    fdx_catalog_origin(cat, 0, &o);
    assert_string_equal(o.family, "debian");
    assert_string_equal(o.archive, "debian");
    assert_string_equal(o.suite, "unstable");
    assert_string_equal(o.codename, "sid");
    assert_string_equal(o.version, "");
    assert_string_equal(o.release, "unstable");
    fdx_catalog_origin(cat, 1, &o);
    assert_string_equal(o.suite, "stable");
    assert_string_equal(o.codename, "tiny");
    assert_string_equal(o.version, "42.1");
    assert_string_equal(o.release, "42");

    /* Two packages of 1000 bytes, in path order. */
    n = fdx_catalog_range(cat, 1000, 1000, &first);
    assert_int_equal(n, 2);
    fdx_catalog_entry(cat, first, &e);
    assert_string_equal(e.path, "debian/pool/main/a/alpha/"
                                "alpha_1.0-1_amd64.deb");
    assert_string_equal(e.package, "alpha");
    assert_string_equal(e.version, "1.0-1");
    assert_string_equal(e.arch, "amd64");
    assert_int_equal(e.kind, FDX_KIND_PACKAGE);
    assert_int_equal(e.origin, 1);
    fdx_catalog_entry(cat, first + 1, &e);
    assert_string_equal(e.package, "beta");
    assert_int_equal(e.origin, 0);

    /* The arch:all package: once per suite, not once per list. */
    n = fdx_catalog_range(cat, 5000, 5000, &first);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        fdx_catalog_entry(cat, first + i, &e);
        assert_string_equal(e.package, "common-data");
        assert_string_equal(e.arch, "all");
        assert_string_equal(e.version, "2:3.1-2");
        assert_int_equal(e.origin, i);
    }

    /* Window lookups. */
    assert_int_equal(fdx_catalog_range(cat, 989, 991, &first), 1);
    assert_int_equal(fdx_catalog_range(cat, 991, 999, &first), 0);
    assert_int_equal(fdx_catalog_range(cat, 0, UINT64_MAX, &first), 19);
    assert_int_equal(first, 0);
    assert_int_equal(fdx_catalog_range(cat, 10, 5, &first), 0);
    entry_of_size(cat, 123456789, &e);
    assert_string_equal(e.package, "gamma");

    /* InRelease and listed index files, present here or not. */
    assert_int_equal(stat(TINY "/InRelease", &sb), 0);
    entry_of_size(cat, (uint64_t)sb.st_size, &e);
    assert_int_equal(e.kind, FDX_KIND_INRELEASE);
    assert_string_equal(e.path, "debian/dists/tiny/InRelease");
    assert_string_equal(e.package, "");
    entry_of_size(cat, 777777, &e);
    assert_int_equal(e.kind, FDX_KIND_INDEX);
    assert_string_equal(e.path, "debian/dists/tiny/main/Contents-amd64.gz");
    assert_string_equal(e.arch, "amd64");
    entry_of_size(cat, 4242, &e);
    assert_string_equal(e.arch, "");
    entry_of_size(cat, 3333, &e);
    assert_string_equal(e.arch, "arm64");
    /* The stanza without Size was skipped, not guessed. */
    for (size_t i = 0; i < fdx_catalog_count(cat); i++) {
        fdx_catalog_entry(cat, i, &e);
        assert_string_not_equal(e.package, "broken");
    }
    fdx_catalog_close(cat);
}

static void test_build_narrowing(void **state)
{
    static const char *const unstable[] = {"unstable", NULL};
    static const char *const tiny[] = {"tiny", NULL};
    static const char *const i386[] = {"i386", NULL};
    static const char *const all[] = {"all", NULL};
    fdx_build_stats st;
    char url[512];
    fdx_catalog *cat;
    fdx_origin o;
    fdx_entry e;

    (void)state;
    cat = build_open(MIRROR, unstable, NULL, &st);
    assert_int_equal(fdx_catalog_origin_count(cat), 1);
    fdx_catalog_origin(cat, 0, &o);
    assert_string_equal(o.codename, "sid");
    assert_int_equal(st.packages, 2);
    fdx_catalog_close(cat);

    cat = build_open(MIRROR, tiny, i386, &st);
    assert_int_equal(fdx_catalog_origin_count(cat), 1);
    assert_int_equal(st.packages, 2);      /* alpha:i386, common-data */
    assert_int_equal(st.index_files, 1);
    assert_int_equal(st.index_entries, 1 + 3 + 1);
    for (size_t i = 0; i < fdx_catalog_count(cat); i++) {
        fdx_catalog_entry(cat, i, &e);
        assert_true(strcmp(e.arch, "i386") == 0 ||
                    strcmp(e.arch, "all") == 0 || *e.arch == '\0');
    }
    entry_of_size(cat, 5000, &e);
    assert_string_equal(e.arch, "all");
    fdx_catalog_close(cat);

    /* --arch all: the "all" packages of every list, nothing per arch */
    cat = build_open(MIRROR, tiny, all, &st);
    assert_int_equal(st.packages, 1);      /* common-data */
    for (size_t i = 0; i < fdx_catalog_count(cat); i++) {
        fdx_catalog_entry(cat, i, &e);
        assert_true(strcmp(e.arch, "all") == 0 || *e.arch == '\0');
    }
    entry_of_size(cat, 5000, &e);
    assert_string_equal(e.arch, "all");
    fdx_catalog_close(cat);
    snprintf(url, sizeof(url), "file://%s/debian/", MIRROR);
    cat = build_open(url, tiny, all, &st);
    assert_int_equal(st.packages, 1);
    fdx_catalog_close(cat);
}

static void test_build_url_and_file(void **state)
{
    static const char *const tiny[] = {"tiny", NULL};
    fdx_build_stats st;
    fdx_catalog *cat;
    fdx_origin o;
    fdx_entry e;
    char url[512];

    (void)state;
    /* file:// goes through the libcurl path: main, amd64 by default. */
    snprintf(url, sizeof(url), "file://%s/debian/", MIRROR);
    cat = build_open(url, tiny, NULL, &st);
    assert_int_equal(st.index_files, 1);
    assert_int_equal(st.packages, 3);
    fdx_catalog_origin(cat, 0, &o);
    assert_string_equal(o.archive, "debian");
    assert_string_equal(o.codename, "tiny");
    entry_of_size(cat, 1000, &e);
    assert_string_equal(e.path, "debian/pool/main/a/alpha/"
                                "alpha_1.0-1_amd64.deb");
    fdx_catalog_close(cat);

    /* A lone Packages file: archive and suite from its path. */
    cat = build_open(TINY "/main/binary-amd64/Packages.xz", NULL, NULL,
                     &st);
    assert_int_equal(fdx_catalog_count(cat), 3);
    fdx_catalog_origin(cat, 0, &o);
    assert_string_equal(o.family, "debian");
    assert_string_equal(o.archive, "debian");
    assert_string_equal(o.suite, "tiny");
    entry_of_size(cat, 123456789, &e);
    assert_string_equal(e.path, "debian/pool/main/g/gamma/"
                                "gamma_0.9_amd64.deb");
    fdx_catalog_close(cat);
}

/* A copy of the mirror in tmpdir/m whose amd64 list is replaced. */
static void copy_mirror_with(const uint8_t *xz, size_t n)
{
    char cmd[700], path[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s/m' && cp -r '%s' '%s/m'", tmpdir,
             MIRROR, tmpdir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/m/debian/dists/tiny/main/binary-amd64/"
             "Packages.xz", tmpdir);
    write_bytes(path, xz, n);
}

static void test_build_checksum_mismatch(void **state)
{
    size_t n;
    uint8_t *xz = slurp(TINY "/main/binary-amd64/Packages.xz", &n);
    char src[300], out[300];
    fdx_error err = {0, ""};

    (void)state;
    tmp_path(src, sizeof(src), "m");
    tmp_path(out, sizeof(out), "bad.fdxc");
    xz[n / 2] ^= 0x40;                 /* same size, other SHA-256 */
    copy_mirror_with(xz, n);
    assert_int_equal(build(src, NULL, NULL, 1, out, NULL, &err),
                     FDX_ECHECKSUM);
    assert_non_null(strstr(err.msg, "tiny/main/binary-amd64/Packages.xz"));
    assert_non_null(strstr(err.msg, "SHA-256"));
    assert_nothing_left(out);

    /* Unchecked, the damage shows in the xz stream, named. */
    assert_int_not_equal(build(src, NULL, NULL, 0, out, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "Packages.xz"));
    assert_nothing_left(out);

    /* Truncated: the size differs from InRelease... */
    xz[n / 2] ^= 0x40;
    copy_mirror_with(xz, n - 20);
    assert_int_equal(build(src, NULL, NULL, 1, out, NULL, &err),
                     FDX_ECHECKSUM);
    assert_non_null(strstr(err.msg, "size"));
    assert_nothing_left(out);
    /* ...and unchecked, the xz stream ends early. */
    assert_int_equal(build(src, NULL, NULL, 0, out, NULL, &err), FDX_ETRUNC);
    assert_non_null(strstr(err.msg, "tiny/main/binary-amd64/Packages.xz"));
    assert_nothing_left(out);
    fdx__free(xz);
}

static void test_build_corrupt_packages(void **state)
{
    static const char text[] = "Package: a\nVersion: 1\n\n%%% junk\n";
    char src[300], out[300];
    fdx_error err = {0, ""};

    (void)state;
    tmp_path(src, sizeof(src), "Packages");
    tmp_path(out, sizeof(out), "bad.fdxc");
    write_bytes(src, text, strlen(text));
    assert_int_equal(build(src, NULL, NULL, 1, out, NULL, &err),
                     FDX_ECORRUPT);
    assert_non_null(strstr(err.msg, "/Packages:4: not a field"));
    assert_nothing_left(out);
    unlink(src);
}

static void test_build_missing(void **state)
{
    char out[300];
    fdx_error err = {0, ""};
    static const char *const nosuch[] = {"nosuch", NULL};

    (void)state;
    tmp_path(out, sizeof(out), "x.fdxc");
    assert_int_equal(build(FDX_SOURCE_ROOT "/tests/data/catalog/nope", NULL,
                           NULL, 1, out, NULL, &err), FDX_ENOENT);
    assert_int_equal(build(FDX_SOURCE_ROOT "/man", NULL, NULL, 1, out, NULL,
                           &err), FDX_ENOENT);
    assert_non_null(strstr(err.msg, "InRelease"));
    assert_int_equal(build(MIRROR, nosuch, NULL, 1, out, NULL, &err),
                     FDX_ENOENT);
    assert_nothing_left(out);
}

/* ---------------------------------------------------------------- */
/* Damaged catalogs                                                  */
/* ---------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* Makes both checksums right again, as a careful forger would. */
static void reseal(uint8_t *b, size_t n)
{
    put32(b + FDX__CAT_H_BODY_CRC,
          (uint32_t)crc32(0, b + FDX__CAT_HEADER_SIZE,
                          (uInt)(n - FDX__CAT_HEADER_SIZE)));
    put32(b + FDX__CAT_H_HEADER_CRC,
          (uint32_t)crc32(0, b, FDX__CAT_H_HEADER_CRC));
}

/* Writes n bytes of b as a catalog and opens it; returns the code. */
static int open_bytes(const uint8_t *b, size_t n, fdx_error *err)
{
    char path[300];
    fdx_catalog *cat = NULL;
    int rc;

    tmp_path(path, sizeof(path), "damaged.fdxc");
    write_bytes(path, b, n);
    rc = fdx_catalog_open(path, &cat, err);
    if (rc == 0)
        fdx_catalog_close(cat);
    else
        assert_null(cat);
    unlink(path);
    return rc;
}

static uint8_t *good_catalog(size_t *n)
{
    char out[300];
    fdx_error err = {0, ""};
    uint8_t *b;

    tmp_path(out, sizeof(out), "good.fdxc");
    assert_int_equal(build(MIRROR, NULL, NULL, 1, out, NULL, &err), 0);
    b = slurp(out, n);
    unlink(out);
    return b;
}

static void test_open_damaged(void **state)
{
    size_t n;
    uint8_t *good = good_catalog(&n);
    uint8_t *b = malloc(n);
    fdx_error err = {0, ""};
    uint64_t entries = fdx__le64(good + FDX__CAT_H_ENTRIES);
    uint64_t strings = fdx__le64(good + FDX__CAT_H_STRINGS);

    (void)state;
    assert_int_equal(open_bytes(good, n, &err), 0);
#define FRESH() memcpy(b, good, n)
    FRESH();
    b[n - 3] ^= 1;                                 /* a string byte */
    assert_int_equal(open_bytes(b, n, &err), FDX_ECHECKSUM);
    assert_non_null(strstr(err.msg, "damaged.fdxc"));
    FRESH();
    b[FDX__CAT_H_CREATED] ^= 1;                    /* a header byte */
    assert_int_equal(open_bytes(b, n, &err), FDX_ECHECKSUM);
    assert_int_equal(open_bytes(good, n - 1, &err), FDX_ECHECKSUM);
    assert_int_equal(open_bytes(good, 40, &err), FDX_ECORRUPT);
    assert_int_equal(open_bytes(good, 0, &err), FDX_EFORMAT);
    FRESH();
    b[0] = 'X';
    assert_int_equal(open_bytes(b, n, &err), FDX_EFORMAT);
    FRESH();
    put32(b + FDX__CAT_H_VERSION, 2);
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_EVERSION);

    /* Resealed lies about the layout. */
    FRESH();
    put64(b + FDX__CAT_H_STRINGS, n + 100);
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    FRESH();
    put32(b + FDX__CAT_H_NENTRIES, fdx__le32(b + FDX__CAT_H_NENTRIES) + 1);
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    FRESH();
    put64(b + FDX__CAT_H_ENTRIES + 8, UINT64_MAX - 50);
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    FRESH();
    put32(b + entries + FDX__CAT_ENTRY_SIZE + FDX__CAT_E_PATH,
          (uint32_t)(n - strings));                /* one past the pool */
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    assert_non_null(strstr(err.msg, "entry 1"));
    FRESH();
    put64(b + entries + FDX__CAT_E_SIZE, UINT64_MAX); /* unsorted */
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    FRESH();
    b[entries + FDX__CAT_E_ORIGIN] = 9;           /* no such origin */
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
    FRESH();
    b[n - 1] = 'x';                                /* pool unterminated */
    reseal(b, n);
    assert_int_equal(open_bytes(b, n, &err), FDX_ECORRUPT);
#undef FRESH
    free(b);
    fdx__free(good);
}

static void test_open_compressed(void **state)
{
    size_t n, xn = 0;
    uint8_t *good = good_catalog(&n);
    uint8_t *xz = malloc(n + 1024);
    char path[300];
    fdx_catalog *cat;
    fdx_error err = {0, ""};
    fdx_entry e;

    (void)state;
    assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, good,
                                             n, xz, &xn, n + 1024), LZMA_OK);
    tmp_path(path, sizeof(path), "c.fdxc.xz");
    write_bytes(path, xz, xn);
    assert_int_equal(fdx_catalog_open(path, &cat, &err), 0);
    assert_int_equal(fdx_catalog_count(cat), 19);
    entry_of_size(cat, 123456789, &e);
    assert_string_equal(e.package, "gamma");
    fdx_catalog_close(cat);
    write_bytes(path, xz, xn - 30);
    assert_int_equal(fdx_catalog_open(path, &cat, &err), FDX_ETRUNC);
    assert_null(cat);
    unlink(path);
    assert_int_equal(fdx_catalog_open(path, &cat, &err), FDX_ENOENT);
    assert_non_null(strstr(err.msg, "c.fdxc.xz"));
    free(xz);
    fdx__free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decompress_roundtrip),
        cmocka_unit_test(test_decompress_garbage),
        cmocka_unit_test(test_decompress_file),
        cmocka_unit_test(test_release_parse),
        cmocka_unit_test(test_release_major),
        cmocka_unit_test(test_packages_parse),
        cmocka_unit_test(test_build_mirror),
        cmocka_unit_test(test_build_narrowing),
        cmocka_unit_test(test_build_url_and_file),
        cmocka_unit_test(test_build_checksum_mismatch),
        cmocka_unit_test(test_build_corrupt_packages),
        cmocka_unit_test(test_build_missing),
        cmocka_unit_test(test_open_damaged),
        cmocka_unit_test(test_open_compressed),
    };

    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
