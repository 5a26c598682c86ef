/*
 * flowdex catalog: build a catalog from repository metadata, or describe
 * one.  See flowdex-catalog(5).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "flowdex/catalog.h"
#include "text.h"

#define MAX_FILTERS 64

static void usage(FILE *f)
{
    fprintf(f,
        "usage: flowdex catalog build -o FILE [--suite S]... [--arch A]...\n"
        "                             [--no-verify] [-v|-q] SOURCE...\n"
        "       flowdex catalog info [-j|--json] FILE\n"
        "\n"
        "A SOURCE is a directory holding a Debian mirror tree\n"
        "(<archive>/dists/<suite>/InRelease), an http(s):// mirror URL\n"
        "(suites oldstable stable testing unstable, arch amd64, component\n"
        "main unless --suite/--arch say otherwise) or one Packages file.\n"
        "\n"
        "  -o, --output FILE  catalog to write (replaced atomically)\n"
        "  -s, --suite S      only suite S (directory, Suite or Codename)\n"
        "  -a, --arch A       only architecture A (\"all\" always kept;\n"
        "                     --arch all alone: only the \"all\" packages)\n"
        "      --no-verify    do not check index files against InRelease\n"
        "  -v, --verbose      more messages; -q, --quiet fewer\n"
        "  -j, --json         info: print JSON\n"
        "\n"
        "See flowdex-catalog(5).\n");
}

/* A status line rewritten in place, only when stderr is a terminal. */
static void progress(void *ud, const char *file, uint64_t entries)
{
    (void)ud;
    fprintf(stderr, "\r%s: catalog: %" PRIu64 " entries, reading %.50s\033[K",
            cli_progname, entries, file);
    fflush(stderr);
}

typedef struct build_args {
    const char *out;
    const char *suites[MAX_FILTERS + 1];
    const char *arches[MAX_FILTERS + 1];
    int nsuites, narches, verify, quiet;
} build_args;

static int add_filter(const char **list, int *n, const char *v)
{
    if (*n >= MAX_FILTERS) {
        cli_errorf("catalog build: more than %d --suite or --arch",
                   MAX_FILTERS);
        return -1;
    }
    list[(*n)++] = v;
    list[*n] = NULL;
    return 0;
}

static int parse_build(int argc, char **argv, build_args *a)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"suite", required_argument, NULL, 's'},
        {"arch", required_argument, NULL, 'a'},
        {"no-verify", no_argument, NULL, 'N'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "o:s:a:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': a->out = optarg; break;
        case 's':
            if (add_filter(a->suites, &a->nsuites, optarg) != 0)
                return EX_USAGE;
            break;
        case 'a':
            if (add_filter(a->arches, &a->narches, optarg) != 0)
                return EX_USAGE;
            break;
        case 'N': a->verify = 0; break;
        case 'v': cli_verbosity(1); break;
        case 'q': cli_verbosity(-1); a->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option("catalog build", argv);
        }
    }
    if (a->out == NULL || optind >= argc) {
        cli_errorf("catalog build: need -o FILE and at least one SOURCE");
        return EX_USAGE;
    }
    return 0;
}

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static int cmd_build(int argc, char **argv)
{
    build_args a;
    fdx_build_opts o;
    fdx_build_stats st;
    fdx_error err = {0, ""};
    int rc;

    memset(&a, 0, sizeof(a));
    a.verify = 1;
    if ((rc = parse_build(argc, argv, &a)) != 0)
        return rc < 0 ? 0 : rc;
    memset(&o, 0, sizeof(o));
    o.suites = a.nsuites ? a.suites : NULL;
    o.arches = a.narches ? a.arches : NULL;
    o.log = &cli_logger;
    o.verify = a.verify;
    if (!a.quiet && isatty(STDERR_FILENO))
        o.progress = progress;
    rc = fdx_catalog_build((const char *const *)argv + optind,
                           (size_t)(argc - optind), a.out, &o, &st, &err);
    if (o.progress != NULL)
        fprintf(stderr, "\r\033[K");
    if (rc != 0) {
        cli_errorf("%s", err.msg);
        return cli_exit_code(rc);
    }
    if (st.packages == 0)
        cli_warn("event=catalog_empty file=%s note=\"no package matched "
                 "the sources%s; only index files were written\"", a.out,
                 a.narches ? " and --arch" : "");
    if (!a.quiet)
        fprintf(stderr, "%s: wrote %s: %" PRIu64 " package%s and %" PRIu64
                " index file%s from %" PRIu64 " suite%s (%" PRIu64
                " Packages file%s read, %" PRIu64 " duplicate%s merged)\n",
                cli_progname, a.out, st.packages, plural(st.packages),
                st.index_entries, plural(st.index_entries), st.suites,
                plural(st.suites), st.index_files, plural(st.index_files),
                st.duplicates, plural(st.duplicates));
    return 0;
}

/* ---------------------------------------------------------------- */
/* info                                                              */
/* ---------------------------------------------------------------- */

/* Per origin and architecture: packages and other files. */
typedef struct arch_count {
    uint32_t origin;
    const char *arch;   /* points into the catalog: compared by address */
    uint64_t packages;
    uint64_t files;
} arch_count;

typedef struct counts {
    arch_count *v;
    size_t n, cap;
} counts;

static arch_count *count_slot(counts *c, uint32_t origin, const char *arch)
{
    for (size_t i = c->n; i-- > 0;)
        if (c->v[i].origin == origin && (c->v[i].arch == arch ||
                                         strcmp(c->v[i].arch, arch) == 0))
            return &c->v[i];
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        arch_count *nv = realloc(c->v, ncap * sizeof(*nv));

        if (nv == NULL)
            return NULL;
        c->v = nv;
        c->cap = ncap;
    }
    c->v[c->n] = (arch_count){origin, arch, 0, 0};
    return &c->v[c->n++];
}

static int cmp_count(const void *x, const void *y)
{
    const arch_count *a = x, *b = y;

    if (a->origin != b->origin)
        return a->origin < b->origin ? -1 : 1;
    return strcmp(a->arch, b->arch);
}

static int tally(const fdx_catalog *cat, counts *c, uint64_t *npkg)
{
    arch_count *last = NULL;
    fdx_entry e;

    *npkg = 0;
    for (size_t i = 0; i < fdx_catalog_count(cat); i++) {
        fdx_catalog_entry(cat, i, &e);
        if (last == NULL || last->origin != e.origin || last->arch != e.arch)
            last = count_slot(c, e.origin, e.arch);
        if (last == NULL)
            return -1;
        if (e.kind == FDX_KIND_PACKAGE) {
            last->packages++;
            (*npkg)++;
        } else {
            last->files++;
        }
    }
    qsort(c->v, c->n, sizeof(*c->v), cmp_count);
    return 0;
}

static void json_field(const char *key, const char *val, int comma)
{
    printf("%s\"%s\": ", comma ? ", " : "", key);
    text_json(stdout, val);
}

static void info_json(const char *path, const fdx_catalog *cat,
                      const counts *c, uint64_t npkg)
{
    size_t k = 0;

    printf("{\"file\": ");
    text_json(stdout, path);
    printf(", \"format\": %" PRIu32 ", \"created\": %" PRId64
           ", \"entries\": %zu, \"packages\": %" PRIu64 ",\n \"origins\": [",
           fdx_catalog_format(cat), fdx_catalog_created(cat),
           fdx_catalog_count(cat), npkg);
    for (uint32_t i = 0; i < fdx_catalog_origin_count(cat); i++) {
        fdx_origin o;

        fdx_catalog_origin(cat, i, &o);
        printf("%s\n  {\"index\": %" PRIu32 ", ", i ? "," : "", i);
        json_field("family", o.family, 0);
        json_field("archive", o.archive, 1);
        json_field("suite", o.suite, 1);
        json_field("codename", o.codename, 1);
        json_field("version", o.version, 1);
        json_field("release", o.release, 1);
        printf(",\n   \"arches\": {");
        for (int first = 1; k < c->n && c->v[k].origin == i; k++, first = 0) {
            printf("%s", first ? "" : ", ");
            text_json(stdout, c->v[k].arch);
            printf(": {\"packages\": %" PRIu64 ", \"index\": %" PRIu64 "}",
                   c->v[k].packages, c->v[k].files);
        }
        printf("}}");
    }
    printf("\n]}\n");
}

/* The origin's line; its strings come from the catalog file. */
static void info_origin(uint32_t i, const fdx_origin *o)
{
    const char *key[] = {" archive=", " suite=", " codename=", " version=",
                         " release="};
    const char *val[] = {o->archive, o->suite, o->codename,
                         *o->version ? o->version : "-", o->release};

    printf("\norigin %" PRIu32 ": ", i);
    text_plain(stdout, o->family);
    for (size_t k = 0; k < sizeof(key) / sizeof(key[0]); k++) {
        fputs(key[k], stdout);
        text_plain(stdout, val[k]);
    }
    putchar('\n');
}

static void info_text(const char *path, const fdx_catalog *cat,
                      const counts *c, uint64_t npkg)
{
    time_t t = (time_t)fdx_catalog_created(cat);
    struct tm tm;
    char when[64] = "?";
    size_t k = 0;

    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    fputs("file      ", stdout);
    text_plain(stdout, path);
    printf("\nformat    %" PRIu32 "\ncreated   %s\n"
           "entries   %zu (%" PRIu64 " packages, %zu index files)\n"
           "origins   %zu\n", fdx_catalog_format(cat), when,
           fdx_catalog_count(cat), npkg,
           fdx_catalog_count(cat) - (size_t)npkg,
           fdx_catalog_origin_count(cat));
    for (uint32_t i = 0; i < fdx_catalog_origin_count(cat); i++) {
        fdx_origin o;

        fdx_catalog_origin(cat, i, &o);
        info_origin(i, &o);
        printf("  %-12s %10s %10s\n", "arch", "packages", "index");
        for (; k < c->n && c->v[k].origin == i; k++) {
            fputs("  ", stdout);
            text_pad(stdout, *c->v[k].arch ? c->v[k].arch : "(suite)", 12);
            printf(" %10" PRIu64 " %10" PRIu64 "\n", c->v[k].packages,
                   c->v[k].files);
        }
    }
}

static int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    fdx_error err = {0, ""};
    fdx_catalog *cat;
    counts c = {NULL, 0, 0};
    uint64_t npkg;
    int ch, json = 0, rc;

    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = 1;
        } else if (ch == 'h') {
            usage(stdout);
            return 0;
        } else {
            return cli_bad_option("catalog info", argv);
        }
    }
    if (optind + 1 != argc) {
        cli_errorf("catalog info: need exactly one FILE");
        return EX_USAGE;
    }
    if ((rc = fdx_catalog_open(argv[optind], &cat, &err)) != 0) {
        cli_errorf("%s", err.msg);
        return cli_exit_code(rc);
    }
    if (tally(cat, &c, &npkg) != 0) {
        cli_errorf("out of memory");
        rc = EX_OSERR;
    } else if (json) {
        info_json(argv[optind], cat, &c, npkg);
    } else {
        info_text(argv[optind], cat, &c, npkg);
    }
    free(c.v);
    fdx_catalog_close(cat);
    return rc;
}

int cmd_catalog(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "build") == 0)
        return cmd_build(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    cli_errorf("catalog: unknown subcommand '%s'; try 'flowdex catalog "
               "--help'", argv[1]);
    return EX_USAGE;
}
