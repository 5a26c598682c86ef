/*
 * Tests of the scan pipeline (connection joining, server calibration,
 * matching, inference) on a synthetic mirror: two releases on two
 * architectures, flows built with the overhead model's own arithmetic,
 * hosts of known kinds.  Checks that each host gets the right OS, that no
 * package is claimed that was not fetched, and that hosts without
 * evidence, sampled flows and keep-alive connections are reported as such.
 */
#include <math.h>
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
#include <openssl/evp.h>

#include "flowdex/flowdex.h"
#include "internal.h"
#include "scan_int.h"

#define NPKG 600
#define NPKG_ALL 40     /* the last packages of each list are "all" */
#define SERVER "192.0.2.80"

/* the server add_download() talks to */
static const char *server = SERVER;

typedef struct pkg {
    char name[32], version[16], arch[8], path[128];
    uint64_t size;
} pkg;

typedef struct world {
    char dir[64];
    char catpath[96];
    pkg pk[2][2][NPKG];          /* [release][arch][i] */
    fdx_catalog *cat;
} world;

static const char *rel_name[2] = {"alpha", "beta"};
static const char *rel_ver[2] = {"1.4", "2.1"};
static const char *arch_name[2] = {"amd64", "i386"};

static uint64_t rng_state = 42;

static uint64_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 33;
}

/* log-uniform sizes between 5 kB and 5 MB */
static uint64_t rand_size(void)
{
    double u = (double)(rng() % 1000000) / 1e6;

    return (uint64_t)(5000.0 * __builtin_pow(1000.0, u));
}

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void sha256_hex(const char *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;

    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void make_packages(world *w, int r, int a, char *buf, size_t cap)
{
    size_t off = 0;

    for (int i = 0; i < NPKG; i++) {
        pkg *p = &w->pk[r][a][i];

        snprintf(p->name, sizeof(p->name), "pkg%c%d", 'a' + r * 2 + a, i);
        snprintf(p->version, sizeof(p->version), "%d.%d-%d", r + 1, i % 7,
                 (int)(rng() % 9));
        snprintf(p->arch, sizeof(p->arch), "%s",
                 i >= NPKG - NPKG_ALL ? "all" : arch_name[a]);
        p->size = rand_size();
        snprintf(p->path, sizeof(p->path),
                 "pool/main/p/%s/%s_%s_%s.deb", p->name, p->name,
                 p->version, p->arch);
        off += (size_t)snprintf(buf + off, cap - off,
                                "Package: %s\nVersion: %s\nArchitecture: %s\n"
                                "Filename: %s\nSize: %llu\n\n",
                                p->name, p->version, p->arch, p->path,
                                (unsigned long long)p->size);
        assert_true(off < cap);
    }
}

static void make_suite(world *w, int r)
{
    char d[256], path[320], rel[4096], sum[2][65];
    static char buf[2][NPKG * 200];
    size_t len[2], off;

    for (int a = 0; a < 2; a++) {
        snprintf(d, sizeof(d), "%s/debian/dists/%s/main/binary-%s", w->dir,
                 rel_name[r], arch_name[a]);
        snprintf(path, sizeof(path), "mkdir -p %s", d);
        assert_int_equal(system(path), 0);
        make_packages(w, r, a, buf[a], sizeof(buf[a]));
        len[a] = strlen(buf[a]);
        snprintf(path, sizeof(path), "%s/Packages", d);
        write_file(path, buf[a], len[a]);
        sha256_hex(buf[a], len[a], sum[a]);
    }
    off = (size_t)snprintf(rel, sizeof(rel),
                           "Origin: Debian\nSuite: %s\nCodename: %s\n"
                           "Version: %s\nArchitectures: amd64 i386\n"
                           "Components: main\nSHA256:\n",
                           rel_name[r], rel_name[r], rel_ver[r]);
    for (int a = 0; a < 2; a++)
        off += (size_t)snprintf(rel + off, sizeof(rel) - off,
                                " %s %zu main/binary-%s/Packages\n", sum[a],
                                len[a], arch_name[a]);
    snprintf(path, sizeof(path), "%s/debian/dists/%s/InRelease", w->dir,
             rel_name[r]);
    write_file(path, rel, off);
}

static int setup(void **state)
{
    static world w;
    const char *src[1];
    fdx_build_opts bo;
    fdx_error err;

    memset(&bo, 0, sizeof(bo));
    bo.verify = 1;
    snprintf(w.dir, sizeof(w.dir), "/tmp/fdx-infer-XXXXXX");
    assert_non_null(mkdtemp(w.dir));
    for (int r = 0; r < 2; r++)
        make_suite(&w, r);
    snprintf(w.catpath, sizeof(w.catpath), "%s/cat.fdxc", w.dir);
    src[0] = w.dir;
    assert_int_equal(fdx_catalog_build(src, 1, w.catpath, &bo, NULL, &err), 0);
    assert_int_equal(fdx_catalog_open(w.catpath, &w.cat, &err), 0);
    *state = &w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    char cmd[128];

    fdx_catalog_close(w->cat);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    return system(cmd);
}

/* ---------------------------------------------------------------- */

static int digits(uint64_t v)
{
    int n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static uint64_t clock_ms = 1764000000000ULL;

/* Adds the two records of one HTTP download of a file of size bytes whose
 * catalog path has path_len characters; requests: how many GETs. */
static void add_download(fdx_scan *s, const char *client, uint16_t cport,
                         uint64_t size, size_t path_len, int requests,
                         int split, uint32_t sampling)
{
    fdx_flow f;
    uint64_t payload = size + 135 + (uint64_t)digits(size);
    uint64_t pkts = payload / 1448 + 4;
    uint64_t octets = payload + pkts * 52;

    memset(&f, 0, sizeof(f));
    f.proto = 6;
    f.sampling = sampling;
    f.flags = sampling > 1 ? FDX_FLOW_SAMPLED : 0;
    assert_int_equal(fdx_addr_parse(&f.src, server), 0);
    assert_int_equal(fdx_addr_parse(&f.dst, client), 0);
    f.sport = 80;
    f.dport = cport;
    f.first_ms = clock_ms;
    /* an exporter's active timeout (60 s) cuts a download into pieces */
    for (int i = 0; i < split; i++) {
        f.octets = octets / (uint64_t)split +
                   (i == 0 ? octets % (uint64_t)split : 0);
        f.packets = pkts / (uint64_t)split +
                    (i == 0 ? pkts % (uint64_t)split : 0);
        f.last_ms = f.first_ms + 60000;
        f.tcp_flags = i == split - 1 ? 0x19 : 0x18;
        assert_int_equal(fdx_scan_add(s, &f), 0);
        f.first_ms = f.last_ms + 1;
    }
    memset(&f.src, 0, sizeof(f.src));
    assert_int_equal(fdx_addr_parse(&f.src, client), 0);
    assert_int_equal(fdx_addr_parse(&f.dst, server), 0);
    f.sport = cport;
    f.dport = 80;
    f.first_ms = clock_ms;
    f.packets = 6 + (uint64_t)requests;
    f.octets = f.packets * 52 + (uint64_t)requests * 101 + path_len;
    f.tcp_flags = 0x19;
    assert_int_equal(fdx_scan_add(s, &f), 0);
    clock_ms += 5000 + 60000 * (uint64_t)split;
}

static const fdx_host *find_host(const fdx_scan *s, const char *addr)
{
    fdx_addr a;

    assert_int_equal(fdx_addr_parse(&a, addr), 0);
    for (size_t i = 0; i < fdx_scan_host_count(s); i++)
        if (fdx_addr_cmp(&fdx_scan_host(s, i)->addr, &a) == 0)
            return fdx_scan_host(s, i);
    return NULL;
}

/* fetch n packages of release r, arch a, starting at package first */
static void fetch(fdx_scan *s, const world *w, const char *client, int r,
                  int a, int first, int n, uint16_t *port)
{
    for (int i = first; i < first + n; i++) {
        const pkg *p = &w->pk[r][a][i];

        add_download(s, client, (*port)++, p->size,
                     strlen("debian/") + strlen(p->path), 1, i == first ? 3 : 1,
                     0);
    }
}

static int fetched(const world *w, int r, int a, int first, int n,
                   const fdx_entry *e)
{
    for (int i = first; i < first + n; i++)
        if (strcmp(w->pk[r][a][i].name, e->package) == 0 &&
            strcmp(w->pk[r][a][i].version, e->version) == 0)
            return 1;
    return 0;
}

/*
 * One keep-alive connection carrying two files: the response is both
 * files, each with its header; the request side two requests.
 */
static void add_pair(fdx_scan *s, const char *client, uint16_t port,
                     const pkg *a, const pkg *b)
{
    uint64_t target = a->size + (uint64_t)digits(a->size) + b->size +
                      (uint64_t)digits(b->size) + 135, x = target;
    size_t paths = 2 * strlen("debian/") + strlen(a->path) + strlen(b->path);

    /* add_download() adds one header, 135 + digits(x), to x */
    while (x + (uint64_t)digits(x) != target)
        x--;
    add_download(s, client, port, x, paths, 2, 1, 0);
}

static void test_keepalive_pair(void **state)
{
    world *w = *state;
    fdx_scan *s = fdx_scan_new(w->cat, NULL);
    const fdx_host *h;
    uint16_t port = 45000;
    int found = 0;

    assert_non_null(s);
    fetch(s, w, "10.0.0.6", 0, 0, 20, 8, &port);
    add_pair(s, "10.0.0.6", port++, &w->pk[0][0][400], &w->pk[0][0][401]);
    assert_int_equal(fdx_scan_finish(s), 0);
    h = find_host(s, "10.0.0.6");
    assert_non_null(h);
    assert_true(h->os.known);
    for (size_t i = 0; i < h->npackages; i++) {
        fdx_entry e;

        fdx_catalog_entry(w->cat, h->packages[i].entry, &e);
        if (h->evidence[h->packages[i].evidence].kind == FDX_EV_MULTI) {
            assert_true(fetched(w, 0, 0, 400, 2, &e));
            found++;
        }
    }
    assert_int_equal(found, 2);
    fdx_scan_free(s);
}

static void test_hosts(void **state)
{
    world *w = *state;
    fdx_scan *s = fdx_scan_new(w->cat, NULL);
    const fdx_host *h;
    uint16_t port = 40000;
    int multi = 0;

    assert_non_null(s);
    fetch(s, w, "10.0.0.1", 0, 0, 0, 12, &port);      /* alpha amd64 */
    fetch(s, w, "10.0.0.2", 1, 1, 100, 12, &port);    /* beta i386 */
    for (int i = 0; i < 12; i++)                      /* nothing known */
        add_download(s, "10.0.0.3", port++, 7000 + rng() % 3000000, 60, 1,
                     1, 0);
    for (int i = 0; i < 6; i++)                       /* sampled */
        add_download(s, "10.0.0.4", port++, w->pk[0][0][200 + i].size,
                     70, 1, 1, 100);
    /* one keep-alive connection of three files, then two singles */
    add_download(s, "10.0.0.5", port++,
                 w->pk[0][1][300].size + w->pk[0][1][301].size +
                     w->pk[0][1][302].size + 2 * 141,
                 200, 3, 1, 0);
    fetch(s, w, "10.0.0.5", 0, 1, 310, 2, &port);
    assert_int_equal(fdx_scan_finish(s), 0);

    h = find_host(s, "10.0.0.1");
    assert_non_null(h);
    assert_true(h->os.known);
    assert_string_equal(h->os.release, "1");
    assert_string_equal(h->os.codename, "alpha");
    assert_non_null(h->os.arch);
    assert_string_equal(h->os.arch, "amd64");
    assert_true(h->npackages >= 8);
    for (size_t i = 0; i < h->npackages; i++) {
        fdx_entry e;

        fdx_catalog_entry(w->cat, h->packages[i].entry, &e);
        assert_true(fetched(w, 0, 0, 0, 12, &e));
        assert_true(h->packages[i].confidence >= 0.7);
        assert_true(h->packages[i].confidence <= 1.0);
    }

    h = find_host(s, "10.0.0.2");
    assert_non_null(h);
    assert_true(h->os.known);
    assert_string_equal(h->os.release, "2");
    assert_string_equal(h->os.arch, "i386");
    for (size_t i = 0; i < h->npackages; i++) {
        fdx_entry e;

        fdx_catalog_entry(w->cat, h->packages[i].entry, &e);
        assert_true(fetched(w, 1, 1, 100, 12, &e));
    }

    h = find_host(s, "10.0.0.3");
    assert_true(h == NULL || (!h->os.known && h->npackages == 0));

    h = find_host(s, "10.0.0.4");
    assert_non_null(h);
    assert_false(h->os.known);
    assert_int_equal(h->sampled_flows, 6);

    h = find_host(s, "10.0.0.5");
    assert_non_null(h);
    for (size_t i = 0; i < h->nevidence; i++)
        if (h->evidence[i].kind == FDX_EV_MULTI) {
            multi++;
            assert_int_equal(h->evidence[i].est_files, 3);
        }
    assert_int_equal(multi, 1);
    fdx_scan_free(s);
}

/*
 * Packages of "all" name a release but no architecture, even when the
 * catalog holds only one architecture; packages of that architecture do.
 */
static void test_arch_from_all(void **state)
{
    world *w = *state;
    const char *src[1] = {w->dir}, *arches[] = {"amd64", NULL};
    char path[128];
    fdx_build_opts bo;
    fdx_catalog *cat;
    fdx_error err;
    fdx_scan *s;
    const fdx_host *h;
    uint16_t port = 52000;

    memset(&bo, 0, sizeof(bo));
    bo.verify = 1;
    bo.arches = arches;
    snprintf(path, sizeof(path), "%s/amd64.fdxc", w->dir);
    assert_int_equal(fdx_catalog_build(src, 1, path, &bo, NULL, &err), 0);
    assert_int_equal(fdx_catalog_open(path, &cat, &err), 0);
    s = fdx_scan_new(cat, NULL);
    assert_non_null(s);
    fetch(s, w, "10.0.0.7", 0, 0, NPKG - NPKG_ALL, 12, &port);
    fetch(s, w, "10.0.0.8", 0, 0, 30, 12, &port);
    assert_int_equal(fdx_scan_finish(s), 0);
    h = find_host(s, "10.0.0.7");
    assert_non_null(h);
    assert_true(h->os.known);
    assert_string_equal(h->os.codename, "alpha");
    assert_null(h->os.arch);
    h = find_host(s, "10.0.0.8");
    assert_non_null(h);
    assert_true(h->os.known);
    assert_non_null(h->os.arch);
    assert_string_equal(h->os.arch, "amd64");
    fdx_scan_free(s);
    fdx_catalog_close(cat);
}

/* One download over TLS (port 443), as the TLS profile predicts it. */
static void add_tls_download(fdx_scan *s, const char *client, uint16_t cport,
                             uint64_t size)
{
    uint64_t payload = size + 2451 + 53 * ((size + 16383) / 16384 - 1);
    uint64_t pkts = payload / 1448 + 4;
    fdx_flow f;

    memset(&f, 0, sizeof(f));
    f.proto = 6;
    assert_int_equal(fdx_addr_parse(&f.src, server), 0);
    assert_int_equal(fdx_addr_parse(&f.dst, client), 0);
    f.sport = 443;
    f.dport = cport;
    f.first_ms = clock_ms;
    f.last_ms = clock_ms + 1000;
    f.octets = payload + pkts * 52;
    f.packets = pkts;
    f.tcp_flags = 0x19;
    assert_int_equal(fdx_scan_add(s, &f), 0);
    clock_ms += 5000;
}

/*
 * HTTPS is matched on the addresses of calibrated HTTP servers: with
 * several such servers each one's TLS port is found, whatever order they
 * were learned in.
 */
static void test_tls_on_servers(void **state)
{
    static const char *servers[] = {"203.0.113.9", "192.0.2.80",
                                    "198.51.100.7", "192.0.2.3"};
    world *w = *state;
    fdx_scan *s = fdx_scan_new(w->cat, NULL);
    uint16_t port = 53000;
    const fdx_host *h;
    char client[32];

    assert_non_null(s);
    for (int k = 0; k < 4; k++) {
        server = servers[k];
        snprintf(client, sizeof(client), "10.0.1.%d", k);
        fetch(s, w, client, 0, 0, 440 + 10 * k, 8, &port);
        add_tls_download(s, client, port++, w->pk[0][0][500 + k].size);
    }
    server = SERVER;
    assert_int_equal(fdx_scan_finish(s), 0);
    for (int k = 0; k < 4; k++) {
        int tls = 0;

        snprintf(client, sizeof(client), "10.0.1.%d", k);
        h = find_host(s, client);
        assert_non_null(h);
        for (size_t i = 0; i < h->nevidence; i++)
            tls += h->evidence[i].transport == FDX_TR_TLS;
        assert_int_equal(tls, 1);
    }
    fdx_scan_free(s);
}

/* A split download and its request side join into one connection. */
static void test_join(void **state)
{
    world *w = *state;
    fdx_scan *s = fdx_scan_new(w->cat, NULL);
    fdx_scan_stats st;

    assert_non_null(s);
    add_download(s, "10.0.0.9", 50000, 123456, 60, 1, 4, 0);
    add_download(s, "10.0.0.9", 50001, 654321, 60, 1, 1, 0);
    /* the same download reported again, by a second exporter */
    clock_ms -= 5000 + 60000;
    add_download(s, "10.0.0.9", 50001, 654321, 60, 1, 1, 0);
    assert_int_equal(fdx_scan_finish(s), 0);
    fdx_scan_get_stats(s, &st);
    assert_int_equal(st.flows, 4 + 1 + 1 + 1 + 2);
    assert_int_equal(st.connections, 2);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(fdx_scan_finish(s), FDX_EUSAGE);
    fdx_scan_free(s);
}

static void test_model_helpers(void **state)
{
    (void)state;
    assert_int_equal(fdx__digits(0), 1);
    assert_int_equal(fdx__digits(9), 1);
    assert_int_equal(fdx__digits(10), 2);
    assert_int_equal(fdx__digits(8790396), 7);
    assert_int_equal(fdx__file_class("debian/pool/main/j/jq/jq_1.6_amd64.deb"),
                     FDX__CLASS_DEB);
    assert_int_equal(fdx__file_class("debian/dists/bookworm/InRelease"),
                     FDX__CLASS_INRELEASE);
    assert_int_equal(fdx__file_class("x/main/binary-amd64/Packages.xz"),
                     FDX__CLASS_XZ);
    assert_int_equal(fdx__file_class("x/main/binary-amd64/Packages.gz"),
                     FDX__CLASS_GZ);
    assert_int_equal(fdx__file_class("x/main/binary-amd64/Packages"),
                     FDX__CLASS_OTHER);
    assert_int_equal(fdx__hdr_octets(1, 0), 52);
    assert_int_equal(fdx__hdr_octets(1, 1), 40);
    assert_int_equal(fdx__hdr_octets(0, 0), 72);
    assert_int_equal(fdx__hdr_octets(0, 1), 60);
}

/* Biflow records count in both directions. */
static void test_biflow(void **state)
{
    fdx__halves hv;
    fdx__conn *cv = NULL;
    size_t n = 0;
    uint64_t dups = 0;
    fdx_flow f;

    (void)state;
    memset(&hv, 0, sizeof(hv));
    memset(&f, 0, sizeof(f));
    f.proto = 6;
    fdx_addr_parse(&f.src, "10.0.0.1");
    fdx_addr_parse(&f.dst, SERVER);
    f.sport = 43210;
    f.dport = 80;
    f.octets = 500;
    f.packets = 7;
    f.rev_octets = 90000;
    f.rev_packets = 70;
    f.flags = FDX_FLOW_BIFLOW;
    assert_int_equal(fdx__halves_add(&hv, &f), 1);
    f.proto = 17;
    assert_int_equal(fdx__halves_add(&hv, &f), 0);
    assert_int_equal(fdx__conns_build(&hv, 1000, &cv, &n, &dups), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cv[0].s2c_octets, 90000);
    assert_int_equal(cv[0].c2s_octets, 500);
    assert_int_equal(cv[0].sport, 80);
    fdx__free(cv);
    fdx__free(hv.v);
}

/* The bucket by its definition, which fdx__bucket() looks up. */
static int bucket_by_log(double c)
{
    int b = c <= FDX__BUCKET_MIN ? 0
                                 : (int)(log(c / FDX__BUCKET_MIN) /
                                         log(FDX__BUCKET_RATIO) + 0.5);

    return b < FDX__NBUCKET ? b : FDX__NBUCKET - 1;
}

/* The table agrees with the log everywhere, the boundaries' neighbours
 * (an ulp either side) included. */
static void test_bucket_table(void **state)
{
    (void)state;
    for (int b = 0; b < FDX__NBUCKET + 5; b++) {
        double c = FDX__BUCKET_MIN * pow(FDX__BUCKET_RATIO, b - 0.5);
        double probe[5] = {c, nextafter(c, 0), nextafter(c, INFINITY),
                           nextafter(nextafter(c, 0), 0),
                           nextafter(nextafter(c, INFINITY), INFINITY)};

        for (int k = 0; k < 5; k++)
            assert_int_equal(fdx__bucket(probe[k]), bucket_by_log(probe[k]));
    }
    for (uint64_t v = 0; v < 200000000; v = v * 3 / 2 + 7)
        assert_int_equal(fdx__bucket((double)v), bucket_by_log((double)v));
    assert_int_equal(fdx__bucket(-5.0), 0);
    assert_int_equal(fdx__bucket(1e300), FDX__NBUCKET - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_helpers),
        cmocka_unit_test(test_bucket_table),
        cmocka_unit_test(test_biflow),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_keepalive_pair),
        cmocka_unit_test(test_arch_from_all),
        cmocka_unit_test(test_tls_on_servers),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
