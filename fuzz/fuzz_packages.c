/*
 * Fuzz target: the Debian metadata parsers of lib/debian.h.  Every input
 * is handed both to fdx__release_parse() (Release and InRelease, PGP
 * armor included) and to fdx__packages_parse() (Packages stanzas), each
 * on its own copy of exactly size + 1 bytes (the parsers want the NUL).
 * A parsed Release is then queried for each file it lists and for its
 * family and major release into buffers of several sizes.  Some sizes
 * also make an allocation fail (fuzz_fail_alloc_by_size()).
 */
#include <stdlib.h>
#include <string.h>

#include "debian.h"
#include "fuzz.h"

static uint64_t sink;

static char *copy_text(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);

    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    return buf;
}

static void check_error(int rc, const fdx_error *err, const char *what)
{
    if (rc < FDX_ENOTFOUND || err->code != rc || err->msg[0] == '\0')
        fuzz_fail("%s returned %d, error %d \"%s\"", what, rc, err->code,
                  err->msg);
}

static void query_release(const fdx__release *r)
{
    static const size_t sizes[] = { 1, 2, 3, 16, 64 };
    char out[64];

    sink += strlen(r->origin) + strlen(r->label) + strlen(r->suite) +
            strlen(r->codename) + strlen(r->version) + strlen(r->date) +
            strlen(r->architectures) + strlen(r->components);
    for (size_t i = 0; i < r->nfiles; i++) {
        const fdx__release_file *f = fdx__release_find(r, r->files[i].path);

        if (f == NULL || f > &r->files[i] || strcmp(f->path,
                                                    r->files[i].path) != 0)
            fuzz_fail("release file %zu not found by its path", i);
        sink += f->size + f->sha256[31];
    }
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        memset(out, 'x', sizeof(out));
        fdx__release_family(r, out, sizes[k]);
        if (memchr(out, '\0', sizes[k]) == NULL)
            fuzz_fail("family not terminated within %zu bytes", sizes[k]);
        memset(out, 'x', sizeof(out));
        fdx__release_major(r, out, sizes[k]);
        if (memchr(out, '\0', sizes[k]) == NULL)
            fuzz_fail("major not terminated within %zu bytes", sizes[k]);
    }
}

static void fuzz_release(const uint8_t *data, size_t size)
{
    char *buf = copy_text(data, size);
    fdx__release r;
    fdx_error err;
    int rc;

    memset(&err, 0, sizeof(err));
    fuzz_dirty_stack();
    rc = fdx__release_parse(buf, size, "InRelease", &r, &err);
    if (rc == 0) {
        query_release(&r);
        fdx__release_free(&r);
    } else {
        check_error(rc, &err, "release_parse");
    }
    free(buf);
}

typedef struct pkg_state {
    uint64_t calls, stop_after;
} pkg_state;

static int pkg_cb(void *ud, const fdx__pkg *p)
{
    pkg_state *ps = ud;

    if (*p->package == '\0' || *p->filename == '\0' || p->line == 0)
        fuzz_fail("stanza without package or filename handed out");
    sink += strlen(p->version) + strlen(p->arch) + p->size;
    return ++ps->calls == ps->stop_after ? FUZZ_STOP_RC : 0;
}

static void fuzz_packages(const uint8_t *data, size_t size)
{
    char *buf = copy_text(data, size);
    pkg_state ps = { 0, 1 + (size & 7) };
    uint64_t skipped = 0;
    fdx_error err;
    int rc;

    if ((size & 0x18) != 0x18)
        ps.stop_after = 0;
    memset(&err, 0, sizeof(err));
    fuzz_dirty_stack();
    rc = fdx__packages_parse(buf, size, "Packages", pkg_cb, &ps, &skipped,
                             &fuzz_logger, &err);
    if (rc == FUZZ_STOP_RC) {
        if (ps.calls != ps.stop_after)
            fuzz_fail("packages_parse stopped by itself with our code");
    } else if (rc != 0) {
        check_error(rc, &err, "packages_parse");
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fail_alloc_by_size(size);
    fuzz_release(data, size);
    fuzz_packages(data, size);
    return 0;
}
