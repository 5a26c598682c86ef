/*
 * Catalog builder: reads Debian repository metadata and writes a catalog
 * file (layout in catalog_int.h and flowdex-catalog(5)).
 *
 * For each suite it records the InRelease file, every index file the
 * InRelease lists in its SHA256 field (whether or not the mirror copy
 * holds it: the size is known from the list), and every package of the
 * Packages files it can read, after checking their size and SHA-256
 * against the InRelease.  A package listed by several Packages files of
 * one suite (Architecture: all) gives one entry; the same file in another
 * suite gives another entry, as its origin differs.  Strings go into one
 * deduplicated pool.  The file is written to a temporary name in the
 * target directory, synced and renamed, so a failed build leaves nothing.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "catalog_int.h"
#include "debian.h"
#include "decompress.h"
#include "flowdex/catalog.h"
#include "internal.h"

/* Largest index file fetched or inflated (a Packages file is ~70 MB). */
#define MAX_INDEX_BYTES ((size_t)1 << 30)
/* Deepest directory level searched for <archive>/dists below a source. */
#define MAX_SCAN_DEPTH 3
#define PATH_MAX_LEN 4096
#define NONE UINT32_MAX

/* Suites fetched from a mirror URL when no --suite is given. */
static const char *const default_url_suites[] = {
    "oldstable", "stable", "testing", "unstable", NULL};
/* Architectures fetched from a mirror URL when no --arch is given. */
static const char *const default_url_arches[] = {"amd64", NULL};

typedef struct ent {
    uint64_t size;
    uint32_t path, package, version, arch;
    uint16_t origin;
    uint8_t kind;
} ent;

typedef struct builder {
    char *pool;              /* string pool being built */
    size_t plen, pcap;
    uint32_t *stab;          /* open-addressing table of pool offsets */
    size_t stab_cap, stab_n;
    uint32_t (*origins)[FDX__CAT_ORIGIN_FIELDS];
    size_t norigins, ocap;
    ent *ents;
    size_t nents, ecap;
    uint64_t *seen;          /* (origin << 32 | path) + 1, 0 = empty */
    size_t seen_cap, seen_n;
    const fdx_build_opts *opts;
    fdx_build_stats *stats;
    fdx_error *err;
    CURL *curl;
    uint8_t *named_found;    /* per --suite name: some source had it */
    size_t nnamed;
} builder;

/* Where the files of one archive come from: a directory or a URL. */
typedef struct fetcher {
    const char *root;        /* no trailing slash */
    int is_url;
} fetcher;

/* One suite being read. */
typedef struct suite_ctx {
    builder *b;
    const char *archive;
    uint16_t origin;
    const char *file;        /* Packages file being parsed, for messages */
} suite_ctx;

/* snprintf that fails with FDX_ELIMIT instead of truncating. */
static int pathf(builder *b, char *out, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int pathf(builder *b, char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return fdx_error_set(b->err, FDX_ELIMIT, "path too long: %.200s...",
                             out);
    return 0;
}

static int oom(builder *b)
{
    return fdx_error_set(b->err, FDX_ENOMEM, "out of memory building the "
                         "catalog");
}

/* Makes room for one more element in a growing array. */
static int grow(builder *b, void *pp, size_t n, size_t *cap, size_t elem)
{
    void **p = pp;
    size_t ncap;
    void *np;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 1024;
    if (ncap > SIZE_MAX / elem)
        return oom(b);
    np = fdx__realloc(*p, ncap * elem);
    if (np == NULL)
        return oom(b);
    *p = np;
    *cap = ncap;
    return 0;
}

/* ---------------------------------------------------------------- */
/* String pool                                                       */
/* ---------------------------------------------------------------- */

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int stab_rehash(builder *b)
{
    size_t ncap = b->stab_cap ? b->stab_cap * 2 : 1 << 16;
    uint32_t *nt = fdx__malloc(ncap * sizeof(*nt));

    if (nt == NULL)
        return oom(b);
    memset(nt, 0xff, ncap * sizeof(*nt));
    for (size_t i = 0; i < b->stab_cap; i++) {
        uint32_t off = b->stab[i];
        const char *s = b->pool + off;
        size_t j;

        if (off == NONE)
            continue;
        j = hash_str(s, strlen(s)) & (ncap - 1);
        while (nt[j] != NONE)
            j = (j + 1) & (ncap - 1);
        nt[j] = off;
    }
    fdx__free(b->stab);
    b->stab = nt;
    b->stab_cap = ncap;
    return 0;
}

static int pool_append(builder *b, const char *s, size_t n, uint32_t *off)
{
    if ((uint64_t)b->plen + n + 1 > UINT32_MAX)
        return fdx_error_set(b->err, FDX_ELIMIT, "string pool exceeds "
                             "4 GiB");
    while (b->plen + n + 1 > b->pcap) {
        size_t ncap = b->pcap ? b->pcap * 2 : 1 << 20;
        char *np = fdx__realloc(b->pool, ncap);

        if (np == NULL)
            return oom(b);
        b->pool = np;
        b->pcap = ncap;
    }
    memcpy(b->pool + b->plen, s, n);
    b->pool[b->plen + n] = '\0';
    *off = (uint32_t)b->plen;
    b->plen += n + 1;
    return 0;
}

/* Pool offset of s[0..n), adding it once. */
static int intern_n(builder *b, const char *s, size_t n, uint32_t *off)
{
    size_t j;
    int rc;

    if (n == 0) {
        *off = 0; /* the pool starts with "" */
        return 0;
    }
    if (memchr(s, '\0', n) != NULL)
        n = strlen(s);
    if (2 * (b->stab_n + 1) > b->stab_cap && (rc = stab_rehash(b)) != 0)
        return rc;
    j = hash_str(s, n) & (b->stab_cap - 1);
    for (; b->stab[j] != NONE; j = (j + 1) & (b->stab_cap - 1)) {
        const char *t = b->pool + b->stab[j];

        if (strncmp(t, s, n) == 0 && t[n] == '\0') {
            *off = b->stab[j];
            return 0;
        }
    }
    if ((rc = pool_append(b, s, n, off)) != 0)
        return rc;
    b->stab[j] = *off;
    b->stab_n++;
    return 0;
}

static int intern(builder *b, const char *s, uint32_t *off)
{
    return intern_n(b, s, strlen(s), off);
}

/* ---------------------------------------------------------------- */
/* Origins and entries                                               */
/* ---------------------------------------------------------------- */

static int add_origin(builder *b, const char *const f[6], uint16_t *idx)
{
    int rc;

    if (b->norigins >= 65535)
        return fdx_error_set(b->err, FDX_ELIMIT, "more than 65535 suites");
    if ((rc = grow(b, &b->origins, b->norigins, &b->ocap,
                   sizeof(*b->origins))) != 0)
        return rc;
    for (int i = 0; i < FDX__CAT_ORIGIN_FIELDS; i++)
        if ((rc = intern(b, f[i], &b->origins[b->norigins][i])) != 0)
            return rc;
    *idx = (uint16_t)b->norigins++;
    return 0;
}

static int seen_rehash(builder *b)
{
    size_t ncap = b->seen_cap ? b->seen_cap * 2 : 1 << 16;
    uint64_t *nt = fdx__calloc(ncap, sizeof(*nt));

    if (nt == NULL)
        return oom(b);
    for (size_t i = 0; i < b->seen_cap; i++) {
        uint64_t k = b->seen[i];
        size_t j;

        if (k == 0)
            continue;
        j = (size_t)(hash_str((const char *)&k, sizeof(k)) & (ncap - 1));
        while (nt[j] != 0)
            j = (j + 1) & (ncap - 1);
        nt[j] = k;
    }
    fdx__free(b->seen);
    b->seen = nt;
    b->seen_cap = ncap;
    return 0;
}

/* Returns 1 when (origin, path) was added before, else records it. */
static int seen_before(builder *b, uint16_t origin, uint32_t path, int *rc)
{
    uint64_t k = ((uint64_t)origin << 32 | path) + 1;
    size_t j;

    *rc = 0;
    if (2 * (b->seen_n + 1) > b->seen_cap && (*rc = seen_rehash(b)) != 0)
        return 0;
    j = (size_t)(hash_str((const char *)&k, sizeof(k)) & (b->seen_cap - 1));
    for (; b->seen[j] != 0; j = (j + 1) & (b->seen_cap - 1))
        if (b->seen[j] == k)
            return 1;
    b->seen[j] = k;
    b->seen_n++;
    return 0;
}

static int add_entry(builder *b, const ent *e)
{
    int rc;

    if (seen_before(b, e->origin, e->path, &rc)) {
        b->stats->duplicates++;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (b->nents >= UINT32_MAX)
        return fdx_error_set(b->err, FDX_ELIMIT, "more than 2^32 entries");
    if ((rc = grow(b, &b->ents, b->nents, &b->ecap, sizeof(*b->ents))) != 0)
        return rc;
    b->ents[b->nents++] = *e;
    if (e->kind == FDX_KIND_PACKAGE)
        b->stats->packages++;
    else
        b->stats->index_entries++;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Filters                                                           */
/* ---------------------------------------------------------------- */

static int in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* Files of the whole suite and of "all" are kept whatever is asked. */
static int arch_wanted(const builder *b, const char *arch)
{
    const char *const *want = b->opts->arches;

    return want == NULL || *arch == '\0' || strcmp(arch, "all") == 0 ||
           in_list(want, arch);
}

/* --arch all alone: only packages of "all" (and suite-wide files). */
static int only_all(const builder *b)
{
    const char *const *want = b->opts->arches;

    if (want == NULL || *want == NULL)
        return 0;
    for (; *want != NULL; want++)
        if (strcmp(*want, "all") != 0)
            return 0;
    return 1;
}

/*
 * The Packages lists to read.  Packages of "all" are listed in every
 * binary-<arch> list (binary-all is newer and not on every mirror), so
 * for --arch all alone every list is read; on_package() then keeps only
 * the "all" packages, and duplicates merge.
 */
static int list_wanted(const builder *b, const char *arch)
{
    return arch_wanted(b, arch) || only_all(b);
}

static int suite_wanted(const builder *b, const char *name)
{
    return b->opts->suites == NULL || in_list(b->opts->suites, name);
}

/* Marks the --suite names that a suite read answers to. */
static void suite_found(builder *b, const char *dir, const fdx__release *r)
{
    for (size_t i = 0; i < b->nnamed; i++) {
        const char *n = b->opts->suites[i];

        if (strcmp(n, dir) == 0 || strcmp(n, r->suite) == 0 ||
            strcmp(n, r->codename) == 0)
            b->named_found[i] = 1;
    }
}

/*
 * The architecture an index file is for, from its path: binary-<arch>/,
 * installer-<arch>/, Contents-[udeb-]<arch>, Components-<arch>; Sources
 * are "source"; "" for the rest (Translation-*, ...).
 */
static void index_arch(const char *path, char *out, size_t size)
{
    static const char *const prefixes[] = {
        "binary-", "installer-", "Contents-udeb-", "Contents-",
        "Components-"};
    const char *p = path;

    *out = '\0';
    while (*p != '\0') {
        size_t n = strcspn(p, "/");

        for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
            size_t pl = strlen(prefixes[i]);
            size_t al;

            if (n <= pl || strncmp(p, prefixes[i], pl) != 0)
                continue;
            al = strcspn(p + pl, "./");
            if (al >= size)
                al = size - 1;
            memcpy(out, p + pl, al);
            out[al] = '\0';
            return;
        }
        if (strncmp(p, "Sources", 7) == 0 && n >= 7) {
            snprintf(out, size, "source");
            return;
        }
        p += n + (p[n] == '/');
    }
}

/* ---------------------------------------------------------------- */
/* Fetching                                                          */
/* ---------------------------------------------------------------- */

typedef struct capbuf {
    uint8_t *p;
    size_t len, cap;
    int over;
} capbuf;

static size_t curl_write(char *data, size_t size, size_t nmemb, void *ud)
{
    capbuf *c = ud;
    size_t n = size * nmemb;

    if (n > MAX_INDEX_BYTES - c->len) {
        c->over = 1;
        return 0;
    }
    if (c->len + n + 1 > c->cap) {
        size_t ncap = c->cap ? c->cap : 1 << 16;
        uint8_t *np;

        while (ncap < c->len + n + 1)
            ncap *= 2;
        np = fdx__realloc(c->p, ncap);
        if (np == NULL)
            return 0;
        c->p = np;
        c->cap = ncap;
    }
    memcpy(c->p + c->len, data, n);
    c->len += n;
    return n;
}

static int curl_setup(builder *b)
{
    if (b->curl != NULL)
        return 0;
    b->curl = curl_easy_init();
    if (b->curl == NULL)
        return fdx_error_set(b->err, FDX_ENET, "cannot start libcurl");
    curl_easy_setopt(b->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(b->curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(b->curl, CURLOPT_USERAGENT, "flowdex/" FDX_VERSION);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(b->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(b->curl, CURLOPT_LOW_SPEED_TIME, 60L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(b->curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(b->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, curl_write);
    return 0;
}

static int fetch_url(builder *b, const char *url, uint8_t **buf,
                     size_t *len)
{
    capbuf c = {NULL, 0, 0, 0};
    long status = 0;
    CURLcode cr;
    int rc = 0;

    if ((rc = curl_setup(b)) != 0)
        return rc;
    curl_easy_setopt(b->curl, CURLOPT_URL, url);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, &c);
    cr = curl_easy_perform(b->curl);
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    if (c.over)
        rc = fdx_error_set(b->err, FDX_ELIMIT, "%s: larger than %zu bytes",
                           url, MAX_INDEX_BYTES);
    else if (cr == CURLE_FILE_COULDNT_READ_FILE || status == 404 ||
             status == 410)
        rc = fdx_error_set(b->err, FDX_ENOENT, "%s: not found", url);
    else if (cr != CURLE_OK || status >= 400)
        rc = fdx_error_set(b->err, FDX_ENET, "%s: %s (HTTP %ld)", url,
                           curl_easy_strerror(cr), status);
    else if (c.p == NULL && (c.p = fdx__malloc(1)) == NULL)
        rc = oom(b);
    if (rc != 0) {
        fdx__free(c.p);
        return rc;
    }
    c.p[c.len] = '\0';
    *buf = c.p;
    *len = c.len;
    return 0;
}

/* Reads root/rel; where receives the full path or URL for messages. */
static int fetch(builder *b, const fetcher *f, const char *rel,
                 uint8_t **buf, size_t *len, char *where, size_t wsize)
{
    if ((size_t)snprintf(where, wsize, "%s/%s", f->root, rel) >= wsize)
        return fdx_error_set(b->err, FDX_ELIMIT, "%s/%s: path too long",
                             f->root, rel);
    if (f->is_url)
        return fetch_url(b, where, buf, len);
    return fdx__read_file(where, MAX_INDEX_BYTES, buf, len, b->err);
}

/* ---------------------------------------------------------------- */
/* Packages files                                                    */
/* ---------------------------------------------------------------- */

/* Forms tried for each Packages list, the smallest download first. */
static const char *const pkg_suffixes[] = {".xz", ".gz", ".lz4", ".bz2",
                                           ""};

static int on_package(void *ud, const fdx__pkg *p)
{
    suite_ctx *s = ud;
    builder *b = s->b;
    char path[PATH_MAX_LEN];
    ent e;
    int n, rc;

    if (!arch_wanted(b, p->arch))
        return 0;
    n = *s->archive ? snprintf(path, sizeof(path), "%s/%s", s->archive,
                               p->filename)
                    : snprintf(path, sizeof(path), "%s", p->filename);
    if (n < 0 || (size_t)n >= sizeof(path))
        return fdx_error_set(b->err, FDX_ECORRUPT, "%s:%zu: Filename too "
                             "long", s->file, p->line);
    memset(&e, 0, sizeof(e));
    e.size = p->size;
    e.origin = s->origin;
    e.kind = FDX_KIND_PACKAGE;
    if ((rc = intern_n(b, path, (size_t)n, &e.path)) != 0 ||
        (rc = intern(b, p->package, &e.package)) != 0 ||
        (rc = intern(b, p->version, &e.version)) != 0 ||
        (rc = intern(b, p->arch, &e.arch)) != 0)
        return rc;
    return add_entry(b, &e);
}

static int verify_file(builder *b, const fdx__release_file *rf,
                       const uint8_t *buf, size_t len, const char *where)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    if ((uint64_t)len != rf->size)
        return fdx_error_set(b->err, FDX_ECHECKSUM, "%s: size %zu, "
                             "InRelease lists %llu", where, len,
                             (unsigned long long)rf->size);
    if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != 32)
        return fdx_error_set(b->err, FDX_EIO, "%s: SHA-256 failed", where);
    if (memcmp(md, rf->sha256, 32) != 0)
        return fdx_error_set(b->err, FDX_ECHECKSUM, "%s: SHA-256 differs "
                             "from InRelease", where);
    return 0;
}

/* Inflates one Packages file (raw is NUL-terminated) and adds its rows. */
static int parse_index(suite_ctx *s, uint8_t *raw, size_t n,
                       const char *where, size_t cap)
{
    builder *b = s->b;
    uint8_t *text = raw;
    size_t len = n;
    uint64_t skipped = 0;
    int rc;

    if (fdx__comp_detect(raw, n) != FDX__COMP_PLAIN &&
        (rc = fdx__decompress(raw, n, cap, &text, &len, where, b->err)))
        return rc;
    s->file = where;
    rc = fdx__packages_parse((char *)text, len, where, on_package, s,
                             &skipped, b->opts->log, b->err);
    if (text != raw)
        fdx__free(text);
    if (rc != 0)
        return rc;
    b->stats->index_files++;
    if (skipped > 0)
        fdx__log(b->opts->log, FDX_LOG_WARN, "file=%s skipped=%llu stanzas "
                 "lacking Package, Version, Architecture, Filename or "
                 "Size, or with bytes outside printable ASCII in them",
                 where, (unsigned long long)skipped);
    return 0;
}

/* Output cap: the uncompressed size InRelease lists, when checking. */
static size_t inflate_cap(const builder *b, const fdx__release *r,
                          const char *base)
{
    const fdx__release_file *plain = fdx__release_find(r, base);

    if (b->opts->verify && plain != NULL && plain->size < MAX_INDEX_BYTES)
        return (size_t)plain->size;
    return MAX_INDEX_BYTES;
}

/*
 * Reads the first form of the Packages list base ("main/binary-amd64/
 * Packages") that InRelease lists and the source holds.  None is fine:
 * a partial mirror need not hold every list.
 */
static int read_packages(suite_ctx *s, const fetcher *f,
                         const fdx__release *r, const char *dists,
                         const char *base)
{
    builder *b = s->b;
    char name[PATH_MAX_LEN], rel[PATH_MAX_LEN], where[PATH_MAX_LEN];

    for (size_t i = 0; i < sizeof(pkg_suffixes) / sizeof(*pkg_suffixes);
         i++) {
        const fdx__release_file *rf;
        uint8_t *buf = NULL;
        size_t len;
        int rc;

        if (pathf(b, name, sizeof(name), "%s%s", base, pkg_suffixes[i]) ||
            (rf = fdx__release_find(r, name)) == NULL)
            continue;
        if ((rc = pathf(b, rel, sizeof(rel), "%s/%s", dists, name)) != 0)
            return rc;
        if (b->opts->progress != NULL)
            b->opts->progress(b->opts->progress_ud, rel, b->nents);
        rc = fetch(b, f, rel, &buf, &len, where, sizeof(where));
        if (rc == FDX_ENOENT)
            continue;
        if (rc == 0 && b->opts->verify)
            rc = verify_file(b, rf, buf, len, where);
        if (rc == 0)
            rc = parse_index(s, buf, len, where, inflate_cap(b, r, base));
        fdx__free(buf);
        return rc;
    }
    fdx__log(b->opts->log, FDX_LOG_DEBUG, "list=%s/%s not in this copy",
             dists, base);
    return 0;
}

/*
 * When path is "<component>/binary-<arch>/Packages[.ext]" (installer
 * lists aside), sets the length of "<...>/Packages" and the arch.
 */
static int packages_base(const char *path, size_t *baselen, char *arch,
                         size_t asize)
{
    const char *name = strrchr(path, '/'), *dir;
    size_t i, n;

    if (name == NULL || strncmp(name + 1, "Packages", 8) != 0 ||
        strstr(path, "debian-installer/") != NULL)
        return 0;
    for (i = 0; i < sizeof(pkg_suffixes) / sizeof(*pkg_suffixes); i++)
        if (strcmp(name + 9, pkg_suffixes[i]) == 0)
            break;
    if (i == sizeof(pkg_suffixes) / sizeof(*pkg_suffixes))
        return 0;
    for (dir = name; dir > path && dir[-1] != '/'; dir--)
        ;
    if (strncmp(dir, "binary-", 7) != 0)
        return 0;
    n = (size_t)(name - dir) - 7;
    if (n == 0 || n >= asize)
        return 0;
    memcpy(arch, dir + 7, n);
    arch[n] = '\0';
    *baselen = (size_t)(name + 9 - path);
    return 1;
}

/*
 * A mirror URL is read for component main and the asked arches only;
 * for --arch all alone, the default arches' lists, which hold them.
 */
static int url_list_wanted(const builder *b, const char *path,
                           const char *arch)
{
    const char *const *want = b->opts->arches && !only_all(b)
                                  ? b->opts->arches : default_url_arches;

    return strncmp(path, "main/", 5) == 0 && in_list(want, arch);
}

/* Reads every Packages list of the suite, each once. */
static int read_all_packages(suite_ctx *s, const fetcher *f,
                             const fdx__release *r, const char *dists)
{
    builder *b = s->b;
    struct {
        const char *path; /* a listed file of the list, base is a prefix */
        size_t len;
    } done[512];
    size_t ndone = 0;

    for (size_t i = 0; i < r->nfiles; i++) {
        const char *path = r->files[i].path;
        char base[PATH_MAX_LEN], arch[64];
        size_t blen, j;
        int rc;

        if (!packages_base(path, &blen, arch, sizeof(arch)) ||
            blen >= sizeof(base) || !list_wanted(b, arch) ||
            (f->is_url && !url_list_wanted(b, path, arch)))
            continue;
        for (j = 0; j < ndone; j++)
            if (done[j].len == blen && strncmp(done[j].path, path, blen) == 0)
                break;
        if (j < ndone)
            continue;
        memcpy(base, path, blen);
        base[blen] = '\0';
        if ((rc = read_packages(s, f, r, dists, base)) != 0)
            return rc;
        /* Past 512 lists one may be read twice; its entries still merge. */
        if (ndone < sizeof(done) / sizeof(*done)) {
            done[ndone].path = path;
            done[ndone++].len = blen;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Suites                                                            */
/* ---------------------------------------------------------------- */

static int add_file_entry(builder *b, uint16_t origin, const char *path,
                          uint64_t size, uint8_t kind, const char *arch)
{
    ent e;
    int rc;

    memset(&e, 0, sizeof(e));
    e.size = size;
    e.origin = origin;
    e.kind = kind;
    if ((rc = intern(b, path, &e.path)) != 0 ||
        (rc = intern(b, arch, &e.arch)) != 0)
        return rc;
    return add_entry(b, &e);
}

/* One entry per file InRelease lists (by-hash copies aside). */
static int add_index_entries(builder *b, uint16_t origin, const char *pfx,
                             const fdx__release *r)
{
    char path[PATH_MAX_LEN], arch[64];
    int rc;

    for (size_t i = 0; i < r->nfiles; i++) {
        const fdx__release_file *rf = &r->files[i];

        if (strstr(rf->path, "/by-hash/") != NULL)
            continue;
        index_arch(rf->path, arch, sizeof(arch));
        if (!arch_wanted(b, arch))
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", pfx, rf->path) >=
            sizeof(path))
            continue;
        rc = add_file_entry(b, origin, path, rf->size, FDX_KIND_INDEX, arch);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int make_origin(builder *b, const fdx__release *r, const char *archive,
                       const char *dir, uint16_t *origin)
{
    char family[64], major[128];
    const char *f[FDX__CAT_ORIGIN_FIELDS];

    fdx__release_family(r, family, sizeof(family));
    fdx__release_major(r, major, sizeof(major));
    f[0] = family;
    f[1] = archive;
    f[2] = *r->suite ? r->suite : dir;
    f[3] = *r->codename ? r->codename : dir;
    f[4] = r->version;
    f[5] = *major ? major : dir;
    return add_origin(b, f, origin);
}

/*
 * Reads <archive>/dists/<dir>/InRelease and what it lists.  A suite that
 * --suite does not name (by directory, Suite or Codename) is skipped.
 */
static int read_suite(builder *b, const fetcher *f, const char *archive,
                      const char *dir)
{
    char dists[PATH_MAX_LEN], rel[PATH_MAX_LEN], where[PATH_MAX_LEN];
    char pfx[PATH_MAX_LEN];
    fdx__release r;
    suite_ctx s = {b, archive, 0, NULL};
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    if ((rc = pathf(b, dists, sizeof(dists), "dists/%s", dir)) != 0 ||
        (rc = pathf(b, rel, sizeof(rel), "%s/InRelease", dists)) != 0 ||
        (rc = pathf(b, pfx, sizeof(pfx), "%s%s%s", archive,
                    *archive ? "/" : "", dists)) != 0)
        return rc;
    if (b->opts->progress != NULL)
        b->opts->progress(b->opts->progress_ud, rel, b->nents);
    if ((rc = fetch(b, f, rel, &buf, &len, where, sizeof(where))) != 0)
        return rc;
    if ((rc = fdx__release_parse((char *)buf, len, where, &r, b->err)))
        goto cleanup_buf;
    if (!suite_wanted(b, dir) && !suite_wanted(b, r.suite) &&
        !suite_wanted(b, r.codename))
        goto cleanup;
    if ((rc = pathf(b, rel, sizeof(rel), "%s/InRelease", pfx)) != 0 ||
        (rc = make_origin(b, &r, archive, dir, &s.origin)) != 0 ||
        (rc = add_file_entry(b, s.origin, rel, len, FDX_KIND_INRELEASE,
                             "")) != 0 ||
        (rc = add_index_entries(b, s.origin, pfx, &r)) != 0 ||
        (rc = read_all_packages(&s, f, &r, dists)) != 0)
        goto cleanup;
    b->stats->suites++;
    suite_found(b, dir, &r);
    fdx__log(b->opts->log, FDX_LOG_INFO, "archive=%s suite=%s codename=%s "
             "version=%s entries=%zu", archive, r.suite, r.codename,
             r.version, b->nents);
cleanup:
    fdx__release_free(&r);
cleanup_buf:
    fdx__free(buf);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Sources                                                           */
/* ---------------------------------------------------------------- */

typedef struct job {
    char *root;     /* the archive directory */
    char *archive;  /* its name */
    char *dir;      /* the suite directory under dists/ */
} job;

typedef struct joblist {
    job *v;
    size_t n, cap;
} joblist;

static int is_dir(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int add_job(builder *b, joblist *jl, const char *root,
                   const char *dir)
{
    const char *slash = strrchr(root, '/');
    job *j;
    int rc;

    if ((rc = grow(b, &jl->v, jl->n, &jl->cap, sizeof(*jl->v))) != 0)
        return rc;
    j = &jl->v[jl->n];
    j->root = fdx__strdup(root);
    j->archive = fdx__strdup(slash ? slash + 1 : root);
    j->dir = fdx__strdup(dir);
    jl->n++;
    if (j->root == NULL || j->archive == NULL || j->dir == NULL)
        return oom(b);
    return 0;
}

/* Every dists/<dir>/InRelease of one archive; symlinked suites aside. */
static int scan_archive(builder *b, joblist *jl, const char *root)
{
    char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    struct dirent *d;
    DIR *dh;
    int rc = 0;

    if (pathf(b, path, sizeof(path), "%s/dists", root) != 0)
        return 0;
    if ((dh = opendir(path)) == NULL)
        return 0;
    while (rc == 0 && (d = readdir(dh)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        if (pathf(b, sub, sizeof(sub), "%s/%s", path, d->d_name) != 0 ||
            !is_dir(sub))
            continue;
        if (pathf(b, sub, sizeof(sub), "%s/%s/InRelease", path,
                  d->d_name) == 0 && is_file(sub))
            rc = add_job(b, jl, root, d->d_name);
    }
    closedir(dh);
    return rc;
}

/* Finds archives (directories holding dists/) up to a few levels down. */
static int scan_tree(builder *b, joblist *jl, const char *path, int depth)
{
    char sub[PATH_MAX_LEN];
    struct dirent *d;
    DIR *dh;
    int rc = 0;

    if (pathf(b, sub, sizeof(sub), "%s/dists", path) != 0)
        return 0;
    if (is_dir(sub))
        return scan_archive(b, jl, path);
    if (depth >= MAX_SCAN_DEPTH || (dh = opendir(path)) == NULL)
        return 0;
    while (rc == 0 && (d = readdir(dh)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        if (pathf(b, sub, sizeof(sub), "%s/%s", path, d->d_name) == 0 &&
            is_dir(sub))
            rc = scan_tree(b, jl, sub, depth + 1);
    }
    closedir(dh);
    return rc;
}

static int cmp_job(const void *x, const void *y)
{
    const job *a = x, *c = y;
    int d = strcmp(a->root, c->root);

    return d != 0 ? d : strcmp(a->dir, c->dir);
}

static void free_jobs(joblist *jl)
{
    for (size_t i = 0; i < jl->n; i++) {
        fdx__free(jl->v[i].root);
        fdx__free(jl->v[i].archive);
        fdx__free(jl->v[i].dir);
    }
    fdx__free(jl->v);
}

static int source_tree(builder *b, const char *src)
{
    joblist jl = {NULL, 0, 0};
    char *root = realpath(src, NULL);
    int rc;

    if (root == NULL)
        return fdx_error_set(b->err, FDX_ENOENT, "%s: %s", src,
                             strerror(errno));
    rc = scan_tree(b, &jl, root, 0);
    if (rc == 0 && jl.n == 0)
        rc = fdx_error_set(b->err, FDX_ENOENT, "%s: no <archive>/dists/"
                           "<suite>/InRelease found below it", src);
    if (rc == 0)
        qsort(jl.v, jl.n, sizeof(*jl.v), cmp_job);
    for (size_t i = 0; rc == 0 && i < jl.n; i++) {
        fetcher f = {jl.v[i].root, 0};

        rc = read_suite(b, &f, jl.v[i].archive, jl.v[i].dir);
    }
    free_jobs(&jl);
    free(root);
    return rc;
}

/*
 * A mirror URL names one archive (http://deb.debian.org/debian): its
 * name is the URL's last path element.  Suites the mirror lacks are
 * passed over (several archives are often read together, each with its
 * own suites); a suite named by --suite must be found in some source.
 */
static int source_url(builder *b, const char *url)
{
    const char *const *suites = b->opts->suites ? b->opts->suites
                                                : default_url_suites;
    char root[PATH_MAX_LEN];
    const char *archive;
    size_t n = strlen(url);
    int rc = 0;

    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= sizeof(root))
        return fdx_error_set(b->err, FDX_EUSAGE, "%s: URL too long", url);
    memcpy(root, url, n);
    root[n] = '\0';
    archive = strrchr(root, '/');
    archive = archive && archive[-1] != '/' ? archive + 1 : "";
    for (; rc == 0 && *suites != NULL; suites++) {
        fetcher f = {root, 1};

        rc = read_suite(b, &f, archive, *suites);
        if (rc == FDX_ENOENT) {
            fdx__log(b->opts->log, FDX_LOG_INFO, "url=%s suite=%s absent",
                     root, *suites);
            rc = 0;
        }
    }
    return rc;
}

/*
 * Copies into out the path element that ends at end (exclusive), or ""
 * when there is none.
 */
static void element_before(const char *start, const char *end, char *out,
                           size_t size)
{
    const char *p = end;
    size_t n;

    while (p > start && p[-1] != '/')
        p--;
    n = (size_t)(end - p);
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/*
 * A lone Packages file.  Its archive and suite are read from a path like
 * .../<archive>/dists/<suite>/main/binary-amd64/Packages.xz when it has
 * one; otherwise the archive is "" (paths are the Filename fields) and
 * the suite is the first --suite or "unknown".
 */
static int source_packages(builder *b, const char *src)
{
    char archive[256] = "", dir[256] = "unknown";
    const char *f[FDX__CAT_ORIGIN_FIELDS];
    const char *d = NULL, *p;
    suite_ctx s = {b, archive, 0, NULL};
    uint8_t *buf;
    size_t len;
    int rc;

    for (p = strstr(src, "/dists/"); p != NULL; p = strstr(p + 1, "/dists/"))
        d = p;
    if (d != NULL) {
        element_before(src, d, archive, sizeof(archive));
        p = d + 7;
        element_before(p, p + strcspn(p, "/"), dir, sizeof(dir));
    }
    if (b->opts->suites != NULL && b->opts->suites[0] != NULL)
        snprintf(dir, sizeof(dir), "%s", b->opts->suites[0]);
    f[0] = "debian";
    f[1] = archive;
    f[2] = f[3] = f[5] = dir;
    f[4] = "";
    if ((rc = add_origin(b, f, &s.origin)) != 0)
        return rc;
    if (b->opts->progress != NULL)
        b->opts->progress(b->opts->progress_ud, src, b->nents);
    if ((rc = fdx__read_file(src, MAX_INDEX_BYTES, &buf, &len, b->err)))
        return rc;
    rc = parse_index(&s, buf, len, src, MAX_INDEX_BYTES);
    fdx__free(buf);
    if (rc == 0)
        b->stats->suites++;
    return rc;
}

static int is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0 ||
           strncmp(s, "file://", 7) == 0;
}

static int add_source(builder *b, const char *src)
{
    struct stat st;

    if (is_url(src))
        return source_url(b, src);
    if (stat(src, &st) != 0)
        return fdx_error_set(b->err, errno == ENOENT ? FDX_ENOENT : FDX_EIO,
                             "%s: %s", src, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return source_tree(b, src);
    return source_packages(b, src);
}

/* ---------------------------------------------------------------- */
/* Writing                                                           */
/* ---------------------------------------------------------------- */

static _Thread_local const char *sort_pool;

static int cmp_ent(const void *x, const void *y)
{
    const ent *a = x, *c = y;
    int d;

    if (a->size != c->size)
        return a->size < c->size ? -1 : 1;
    d = strcmp(sort_pool + a->path, sort_pool + c->path);
    if (d != 0)
        return d;
    if (a->origin != c->origin)
        return a->origin < c->origin ? -1 : 1;
    return (int)a->kind - (int)c->kind;
}

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

/* Build time: SOURCE_DATE_EPOCH when set, for reproducible catalogs. */
static int64_t build_time(void)
{
    const char *e = getenv("SOURCE_DATE_EPOCH");
    char *end;
    long long v;

    if (e != NULL && *e != '\0') {
        errno = 0;
        v = strtoll(e, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 0)
            return v;
    }
    return (int64_t)time(NULL);
}

static void fill_body(const builder *b, uint8_t *body)
{
    uint8_t *p = body;

    for (size_t i = 0; i < b->norigins; i++)
        for (int f = 0; f < FDX__CAT_ORIGIN_FIELDS; f++, p += 4)
            put32(p, b->origins[i][f]);
    for (size_t i = 0; i < b->nents; i++, p += FDX__CAT_ENTRY_SIZE) {
        const ent *e = &b->ents[i];

        put64(p + FDX__CAT_E_SIZE, e->size);
        put32(p + FDX__CAT_E_PATH, e->path);
        put32(p + FDX__CAT_E_PACKAGE, e->package);
        put32(p + FDX__CAT_E_VERSION, e->version);
        put32(p + FDX__CAT_E_ARCH, e->arch);
        p[FDX__CAT_E_ORIGIN] = (uint8_t)e->origin;
        p[FDX__CAT_E_ORIGIN + 1] = (uint8_t)(e->origin >> 8);
        p[FDX__CAT_E_KIND] = e->kind;
        p[FDX__CAT_E_KIND + 1] = 0;
    }
    memcpy(p, b->pool, b->plen);
}


static void fill_header(const builder *b, uint8_t *h, const uint8_t *body,
                        size_t blen)
{
    uint64_t osize = (uint64_t)b->norigins * FDX__CAT_ORIGIN_SIZE;
    uint64_t esize = (uint64_t)b->nents * FDX__CAT_ENTRY_SIZE;

    memset(h, 0, FDX__CAT_HEADER_SIZE);
    memcpy(h, FDX__CAT_MAGIC, FDX__CAT_MAGIC_LEN);
    put32(h + FDX__CAT_H_VERSION, FDX__CAT_VERSION);
    put32(h + FDX__CAT_H_HSIZE, FDX__CAT_HEADER_SIZE);
    put64(h + FDX__CAT_H_CREATED, (uint64_t)build_time());
    put32(h + FDX__CAT_H_NENTRIES, (uint32_t)b->nents);
    put32(h + FDX__CAT_H_NORIGINS, (uint32_t)b->norigins);
    put64(h + FDX__CAT_H_ORIGINS, FDX__CAT_HEADER_SIZE);
    put64(h + FDX__CAT_H_ORIGINS + 8, osize);
    put64(h + FDX__CAT_H_ENTRIES, FDX__CAT_HEADER_SIZE + osize);
    put64(h + FDX__CAT_H_ENTRIES + 8, esize);
    put64(h + FDX__CAT_H_STRINGS, FDX__CAT_HEADER_SIZE + osize + esize);
    put64(h + FDX__CAT_H_STRINGS + 8, b->plen);
    put32(h + FDX__CAT_H_ENTRY_SIZE, FDX__CAT_ENTRY_SIZE);
    put32(h + FDX__CAT_H_BODY_CRC, fdx__crc32(body, blen));
    put32(h + FDX__CAT_H_HEADER_CRC, fdx__crc32(h, FDX__CAT_H_HEADER_CRC));
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * rename() would replace whatever out names, and a device node, a FIFO or
 * a socket replaced by a regular file breaks the system (-o /dev/null run
 * as root): only a regular file, or nothing, may be there.
 */
static int output_check(fdx_error *err, const char *out)
{
    struct stat st;

    if (stat(out, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    return fdx_error_set(err, FDX_ECANTCREAT, "%s: exists and is not a "
                         "regular file; not replaced", out);
}

/*
 * Writes header and body to a temporary file, then renames it.  Errors
 * name out, the file the user asked for: the temporary name means nothing
 * to them and is gone once the function returns.
 */
static int write_file(builder *b, const char *out, const uint8_t *h,
                      const uint8_t *body, size_t blen)
{
    char tmp[PATH_MAX_LEN];
    int fd, rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", out) >=
        sizeof(tmp))
        return fdx_error_set(b->err, FDX_EUSAGE, "%s: path too long", out);
    if ((fd = mkstemp(tmp)) < 0)
        return fdx_error_set(b->err, FDX_ECANTCREAT, "%s: cannot create: "
                             "%s", out, strerror(errno));
    if (fchmod(fd, 0644) != 0 ||
        write_all(fd, h, FDX__CAT_HEADER_SIZE) != 0 ||
        write_all(fd, body, blen) != 0 || fsync(fd) != 0)
        rc = fdx_error_set(b->err, FDX_EIO, "%s: write error: %s", out,
                           strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = fdx_error_set(b->err, FDX_EIO, "%s: close: %s", out,
                           strerror(errno));
    if (rc == 0)
        rc = output_check(b->err, out);  /* it may have appeared since */
    if (rc == 0 && rename(tmp, out) != 0)
        rc = fdx_error_set(b->err, FDX_EIO, "%s: cannot rename the "
                           "temporary file into place: %s", out,
                           strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int write_catalog(builder *b, const char *out)
{
    uint8_t h[FDX__CAT_HEADER_SIZE];
    size_t blen = b->norigins * FDX__CAT_ORIGIN_SIZE +
                  b->nents * FDX__CAT_ENTRY_SIZE + b->plen;
    uint8_t *body;
    int rc;

    sort_pool = b->pool;
    qsort(b->ents, b->nents, sizeof(*b->ents), cmp_ent);
    if ((body = fdx__malloc(blen)) == NULL)
        return oom(b);
    fill_body(b, body);
    fill_header(b, h, body, blen);
    rc = write_file(b, out, h, body, blen);
    fdx__free(body);
    return rc;
}

static void builder_free(builder *b)
{
    fdx__free(b->pool);
    fdx__free(b->stab);
    fdx__free(b->origins);
    fdx__free(b->ents);
    fdx__free(b->seen);
    fdx__free(b->named_found);
    if (b->curl != NULL)
        curl_easy_cleanup(b->curl);
}

static int named_suites_init(builder *b)
{
    const char *const *v = b->opts->suites;

    while (v != NULL && v[b->nnamed] != NULL)
        b->nnamed++;
    if (b->nnamed == 0)
        return 0;
    b->named_found = fdx__calloc(b->nnamed, 1);
    return b->named_found != NULL ? 0 : fdx_error_set(b->err, FDX_ENOMEM,
                                                      "out of memory");
}

/* A suite asked for by name that no source had is an error. */
static int named_suites_check(builder *b)
{
    for (size_t i = 0; i < b->nnamed; i++)
        if (!b->named_found[i])
            return fdx_error_set(b->err, FDX_ENOENT, "--suite %s: no "
                                 "source has this suite",
                                 b->opts->suites[i]);
    return 0;
}

/*
 * Nothing was read.  A suite named by --suite and not found has been
 * reported by named_suites_check(); what is left is a mirror URL read
 * with the default suites, none of which it has (an archive such as
 * debian-security names its suites differently): say what was looked for.
 */
static int no_suite_error(builder *b, const char *const *src, size_t n)
{
    char names[256] = "";
    size_t len = 0;
    size_t i = 0;

    while (i < n && !is_url(src[i]))
        i++;
    if (b->opts->suites != NULL || i == n)
        return fdx_error_set(b->err, FDX_ENOENT, "%s: no suite found in "
                             "the source%s", src[0], n > 1 ? "s" : "");
    for (const char *const *v = default_url_suites; *v != NULL; v++)
        len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                len ? ", " : "", *v);
    return fdx_error_set(b->err, FDX_ENOENT, "%s: none of the suites %s "
                         "found; name them with --suite", src[i], names);
}

int fdx_catalog_build(const char *const *sources, size_t nsources,
                      const char *out_path, const fdx_build_opts *opts,
                      fdx_build_stats *stats, fdx_error *err)
{
    static const fdx_build_opts defaults = {NULL, NULL, NULL, 1, NULL, NULL};
    fdx_build_stats ignored;
    builder b;
    uint32_t empty;
    int rc;

    memset(&b, 0, sizeof(b));
    b.opts = opts != NULL ? opts : &defaults;
    b.stats = stats != NULL ? stats : &ignored;
    b.err = err;
    memset(b.stats, 0, sizeof(*b.stats));
    if (nsources == 0 || out_path == NULL)
        return fdx_error_set(err, FDX_EUSAGE, "catalog build: no source or "
                             "no output file");
    /* checked first, so that a bad -o costs no download */
    if ((rc = output_check(err, out_path)) != 0 ||
        (rc = pool_append(&b, "", 0, &empty)) != 0 ||
        (rc = named_suites_init(&b)) != 0)
        goto cleanup;
    for (size_t i = 0; i < nsources; i++)
        if ((rc = add_source(&b, sources[i])) != 0)
            goto cleanup;
    if ((rc = named_suites_check(&b)) != 0)
        goto cleanup;
    if (b.norigins == 0) {
        rc = no_suite_error(&b, sources, nsources);
        goto cleanup;
    }
    rc = write_catalog(&b, out_path);
cleanup:
    builder_free(&b);
    return rc;
}
