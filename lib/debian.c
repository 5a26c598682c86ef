/*
 * Debian repository metadata: the Release file of a suite and the stanzas
 * of its Packages files (deb822 control format).  Both are read in place:
 * line ends become NULs and the values handed out point into the buffer.
 * Release files come inside an InRelease clearsign armor whose signature
 * is stripped, not checked: a catalog records sizes the mirror published,
 * and the size and SHA-256 of each index file are checked against it.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "debian.h"
#include "internal.h"

#define ARMOR_BEGIN "-----BEGIN PGP SIGNED MESSAGE-----"
#define ARMOR_SIG "-----BEGIN PGP SIGNATURE-----"

/* Cuts buf into lines: each returned line is NUL-terminated, CR dropped. */
typedef struct lines {
    char *p;
    char *end;
    size_t no;       /* number of the line last returned, from 1 */
    size_t len;      /* its length up to the first NUL */
    int has_nul;     /* it held a NUL byte before its end */
} lines;

static char *next_line(lines *l)
{
    char *s = l->p, *nl;
    size_t n;

    if (s >= l->end)
        return NULL;
    nl = memchr(s, '\n', (size_t)(l->end - s));
    n = nl != NULL ? (size_t)(nl - s) : (size_t)(l->end - s);
    l->p = s + n + (nl != NULL);
    if (n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    l->len = strlen(s);
    l->has_nul = l->len != n;
    l->no++;
    return s;
}

/* Skips leading blanks and cuts trailing blanks. */
static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Strict unsigned decimal, at most 19 digits; returns 0 on success. */
static int parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;

    for (i = 0; isdigit((unsigned char)s[i]); i++) {
        if (i >= 19)
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || s[i] != '\0')
        return -1;
    *v = x;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses " <64 hex> <size> <path>" of the SHA256 field. */
static int parse_sum(fdx__release_file *f, char *s)
{
    char *size, *path;

    s = trim(s);
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[2 * i]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);

        if (lo < 0)
            return -1;
        f->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    if (s[64] != ' ' && s[64] != '\t')
        return -1;
    size = trim(s + 65);
    path = size + strcspn(size, " \t");
    if (*path == '\0')
        return -1;
    *path++ = '\0';
    path = trim(path);
    if (*path == '\0' || parse_u64(size, &f->size) != 0)
        return -1;
    f->path = path;
    return 0;
}

static int add_sum(fdx__release *r, size_t *cap, char *line, lines *l,
                   const char *name, fdx_error *err)
{
    if (r->nfiles == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        fdx__release_file *nf =
            fdx__realloc(r->files, ncap * sizeof(*nf));

        if (nf == NULL)
            return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", name);
        r->files = nf;
        *cap = ncap;
    }
    if (parse_sum(&r->files[r->nfiles], line) != 0)
        return fdx_error_set(err, FDX_ECORRUPT,
                             "%s:%zu: bad SHA256 line", name, l->no);
    r->nfiles++;
    return 0;
}

/* Stores a simple field's value; returns 1 for SHA256, which has lines. */
static int set_field(fdx__release *r, const char *key, const char *value)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"Origin", offsetof(fdx__release, origin)},
        {"Label", offsetof(fdx__release, label)},
        {"Suite", offsetof(fdx__release, suite)},
        {"Codename", offsetof(fdx__release, codename)},
        {"Version", offsetof(fdx__release, version)},
        {"Date", offsetof(fdx__release, date)},
        {"Architectures", offsetof(fdx__release, architectures)},
        {"Components", offsetof(fdx__release, components)},
    };

    if (strcasecmp(key, "SHA256") == 0)
        return 1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcasecmp(key, keys[i].key) == 0)
            memcpy((char *)r + keys[i].off, &value, sizeof(value));
    return 0;
}

/* Skips the armor header ("Hash: SHA256") up to its blank line. */
static int skip_armor(lines *l)
{
    char *line = next_line(l);

    if (line == NULL || strcmp(line, ARMOR_BEGIN) != 0)
        return -1;
    while ((line = next_line(l)) != NULL)
        if (*line == '\0')
            return 0;
    return -1;
}

static void release_init(fdx__release *r)
{
    memset(r, 0, sizeof(*r));
    r->origin = r->label = r->suite = r->codename = "";
    r->version = r->date = r->architectures = r->components = "";
}

int fdx__release_parse(char *buf, size_t len, const char *name,
                       fdx__release *r, fdx_error *err)
{
    lines l = {buf, buf + len, 0, 0, 0};
    int armored = len >= strlen(ARMOR_BEGIN) &&
                  memcmp(buf, ARMOR_BEGIN, strlen(ARMOR_BEGIN)) == 0;
    int in_sums = 0, rc = 0;
    size_t cap = 0;
    char *line;

    release_init(r);
    if (armored && skip_armor(&l) != 0)
        return fdx_error_set(err, FDX_EFORMAT, "%s: bad PGP armor", name);
    while ((line = next_line(&l)) != NULL) {
        char *colon;

        if (armored && strcmp(line, ARMOR_SIG) == 0)
            break;
        if (armored && line[0] == '-' && line[1] == ' ')
            line += 2; /* dash-escaped line */
        if (l.has_nul) {
            rc = fdx_error_set(err, FDX_ECORRUPT, "%s:%zu: NUL byte",
                               name, l.no);
            goto fail;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (in_sums && (rc = add_sum(r, &cap, line, &l, name, err)))
                goto fail;
            continue;
        }
        if (line[0] == '\0')
            continue;
        colon = strchr(line, ':');
        if (colon == NULL) {
            rc = fdx_error_set(err, FDX_ECORRUPT, "%s:%zu: not a field",
                               name, l.no);
            goto fail;
        }
        *colon = '\0';
        in_sums = set_field(r, trim(line), trim(colon + 1));
    }
    if (*r->suite == '\0' && *r->codename == '\0') {
        rc = fdx_error_set(err, FDX_EFORMAT,
                           "%s: no Suite or Codename: not a Release file",
                           name);
        goto fail;
    }
    return 0;
fail:
    fdx__release_free(r);
    return rc;
}

void fdx__release_free(fdx__release *r)
{
    fdx__free(r->files);
    r->files = NULL;
    r->nfiles = 0;
}

const fdx__release_file *fdx__release_find(const fdx__release *r,
                                           const char *path)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].path, path) == 0)
            return &r->files[i];
    return NULL;
}

void fdx__release_family(const fdx__release *r, char *out, size_t size)
{
    const char *o = *r->origin ? r->origin : "debian";
    size_t i;

    if (size == 0)
        return;
    for (i = 0; o[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)o[i]);
    out[i] = '\0';
}

void fdx__release_major(const fdx__release *r, char *out, size_t size)
{
    const char *v = r->version;
    size_t n;

    if (size == 0)
        return;
    if (*v == '\0') {
        v = *r->suite ? r->suite : r->codename;
        n = strlen(v);
    } else if (strcasecmp(r->origin, "Ubuntu") == 0) {
        n = strcspn(v, " -"); /* "22.04" is the release itself */
    } else {
        n = strcspn(v, ".-~+ ");
        if (n == 0)
            n = strlen(v);
    }
    if (n >= size)
        n = size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* ---------------------------------------------------------------- */
/* Packages                                                          */
/* ---------------------------------------------------------------- */

enum {
    HAVE_PACKAGE = 1,
    HAVE_VERSION = 2,
    HAVE_ARCH = 4,
    HAVE_FILENAME = 8,
    HAVE_SIZE = 16,
    HAVE_ALL = 31
};

typedef struct stanza {
    fdx__pkg pkg;
    int have;
    int open;
} stanza;

static int key_is(const char *key, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(key, want, n) == 0;
}

/* Records one "Key: value" line; returns -1 for a bad Size. */
static int take_field(stanza *st, const char *key, size_t n, char *value)
{
    if (key_is(key, n, "Package")) {
        st->pkg.package = value;
        st->have |= HAVE_PACKAGE;
    } else if (key_is(key, n, "Version")) {
        st->pkg.version = value;
        st->have |= HAVE_VERSION;
    } else if (key_is(key, n, "Architecture")) {
        st->pkg.arch = value;
        st->have |= HAVE_ARCH;
    } else if (key_is(key, n, "Filename")) {
        st->pkg.filename = value;
        st->have |= HAVE_FILENAME;
    } else if (key_is(key, n, "Size")) {
        if (parse_u64(value, &st->pkg.size) != 0)
            return -1;
        st->have |= HAVE_SIZE;
    }
    return 0;
}

/*
 * Debian policy allows only printable ASCII without spaces in Package,
 * Version, Architecture and Filename (5.6.1, 5.6.7, 5.6.8).  Anything
 * else (0xff, an ESC sequence) is a forged or broken index, and such
 * bytes would reach every output that prints the catalog.
 */
static int plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int stanza_ok(const stanza *st, const char **why)
{
    const fdx__pkg *p = &st->pkg;

    *why = "lacks a required field";
    if ((st->have & HAVE_ALL) != HAVE_ALL || !*p->package || !*p->filename)
        return 0;
    *why = "has bytes outside printable ASCII in a name field";
    return plain_ascii(p->package) && plain_ascii(p->version) &&
           plain_ascii(p->arch) && plain_ascii(p->filename);
}

static int end_stanza(stanza *st, const char *name, fdx__pkg_fn fn,
                      void *ud, uint64_t *skipped, const fdx_logger *log)
{
    const char *why;

    if (!st->open)
        return 0;
    st->open = 0;
    if (stanza_ok(st, &why))
        return fn(ud, &st->pkg);
    (*skipped)++;
    if (fdx__log_enabled(log, FDX_LOG_DEBUG))
        fdx__log(log, FDX_LOG_DEBUG, "file=%s line=%zu stanza %s, skipped",
                 name, st->pkg.line, why);
    return 0;
}

static int bad_line(const char *name, size_t no, const char *why,
                    fdx_error *err)
{
    return fdx_error_set(err, FDX_ECORRUPT, "%s:%zu: %s", name, no, why);
}

int fdx__packages_parse(char *buf, size_t len, const char *name,
                        fdx__pkg_fn fn, void *ud, uint64_t *skipped,
                        const fdx_logger *log, fdx_error *err)
{
    lines l = {buf, buf + len, 0, 0, 0};
    stanza st;
    char *line;
    int rc;

    memset(&st, 0, sizeof(st));
    while ((line = next_line(&l)) != NULL) {
        char *colon;

        if (l.has_nul)
            return bad_line(name, l.no, "NUL byte in text", err);
        if (line[0] == '\0') {
            if ((rc = end_stanza(&st, name, fn, ud, skipped, log)) != 0)
                return rc;
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (!st.open)
                return bad_line(name, l.no, "continuation line outside "
                                "a stanza", err);
            continue;
        }
        colon = memchr(line, ':', l.len);
        if (colon == NULL || colon == line)
            return bad_line(name, l.no, "not a field", err);
        if (!st.open) {
            memset(&st, 0, sizeof(st));
            st.open = 1;
            st.pkg.line = l.no;
        }
        *colon = '\0';
        if (take_field(&st, line, (size_t)(colon - line), trim(colon + 1)))
            return bad_line(name, l.no, "bad Size", err);
    }
    return end_stanza(&st, name, fn, ud, skipped, log);
}
