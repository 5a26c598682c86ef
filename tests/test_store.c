/*
 * Tests of the store: schema creation and migration, refusal of foreign
 * and newer databases, idempotent upserts, history rows for a changed OS
 * and package, all-or-nothing batches under injected allocation failure,
 * a read-only store, and SQLite's integrity check after every write.
 * Hosts are built by hand against a catalog of four files built from a
 * Packages file written here.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#ifdef FDX_HAVE_POSTGRESQL
#include <libpq-fe.h>
#endif

#include "flowdex/flowdex.h"

static char tmpdir[256];
static fdx_catalog *cat;

/* The catalog's entries, found by package and version. */
static uint32_t entry_of(const char *pkg, const char *version)
{
    for (size_t i = 0; i < fdx_catalog_count(cat); i++) {
        fdx_entry e;

        fdx_catalog_entry(cat, i, &e);
        if (strcmp(e.package, pkg) == 0 && strcmp(e.version, version) == 0)
            return (uint32_t)i;
    }
    fail_msg("no entry %s %s", pkg, version);
    return 0;
}

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static const char packages_file[] =
    "Package: alpha\nVersion: 1.0-1\nArchitecture: amd64\n"
    "Filename: pool/main/a/alpha_1.0-1_amd64.deb\nSize: 10000\n\n"
    "Package: alpha\nVersion: 1.0-2\nArchitecture: amd64\n"
    "Filename: pool/main/a/alpha_1.0-2_amd64.deb\nSize: 20000\n\n"
    "Package: beta\nVersion: 3\nArchitecture: all\n"
    "Filename: pool/main/b/beta_3_all.deb\nSize: 30000\n\n";

static int setup(void **state)
{
    char src[300], out[300];
    const char *sources[1] = {src};
    fdx_error err = {0, ""};
    FILE *f;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fdx-store-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    tmp_path(src, sizeof(src), "Packages");
    tmp_path(out, sizeof(out), "cat.fdxc");
    if ((f = fopen(src, "w")) == NULL)
        return -1;
    fputs(packages_file, f);
    fclose(f);
    if (fdx_catalog_build(sources, 1, out, NULL, NULL, &err) < 0 ||
        fdx_catalog_open(out, &cat, &err) < 0) {
        fprintf(stderr, "catalog: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    fdx_catalog_close(cat);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh store URI (and its path) under the temporary directory. */
static void new_store(const char *name, char *uri, char *path, size_t n)
{
    size_t len;

    snprintf(path, n, "%s/%s", tmpdir, name);
    len = strlen(path);
    assert_true(len + 8 <= n);
    memcpy(uri, "sqlite:", 7);
    memcpy(uri + 7, path, len + 1);
    unlink(path);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void assert_intact(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *s;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
                                        &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* A host that fetched one file, in a connection starting at t_ms. */
typedef struct test_host {
    fdx_host h;
    fdx_package_claim pc;
    fdx_evidence ev;
} test_host;

static void make_host(test_host *t, const char *addr, const char *codename,
                      uint32_t entry, uint64_t t_ms)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(fdx_addr_parse(&t->h.addr, addr), 0);
    t->h.os.known = 1;
    t->h.os.family = "debian";
    t->h.os.release = strcmp(codename, "trixie") == 0 ? "13" : "12";
    t->h.os.codename = codename;
    t->h.os.arch = "amd64";
    t->h.os.confidence = 0.9;
    t->ev.first_ms = t_ms;
    t->ev.last_ms = t_ms + 500;
    assert_int_equal(fdx_addr_parse(&t->ev.server, "192.0.2.80"), 0);
    t->ev.server_port = 80;
    t->ev.client_port = 40000;
    t->ev.octets = fdx_catalog_size(cat, entry) + 700;
    t->ev.packets = 20;
    t->ev.records = 2;
    t->ev.kind = FDX_EV_FILE;
    t->ev.transport = FDX_TR_HTTP;
    t->ev.ncand = t->ev.ncand_total = 1;
    t->ev.cand[0] = entry;
    t->pc.entry = entry;
    t->pc.confidence = 0.95;
    t->pc.evidence = 0;
    t->h.packages = &t->pc;
    t->h.npackages = 1;
    t->h.evidence = &t->ev;
    t->h.nevidence = 1;
}

static fdx_store *open_ok(const char *uri, int read_only)
{
    fdx_store_opts o = {NULL, read_only, 0, 0};
    fdx_error err = {0, ""};
    fdx_store *st = NULL;
    int rc = fdx_store_open(uri, &o, &st, &err);

    if (rc < 0)
        fail_msg("%s", err.msg);
    return st;
}

static void put_ok(fdx_store *st, const fdx_host *h, size_t n)
{
    fdx_error err = {0, ""};

    if (fdx_store_put_hosts(st, cat, h, n, "test", &err) < 0)
        fail_msg("%s", err.msg);
}

static fdx_store_stats stats_of(fdx_store *st)
{
    fdx_store_stats s;
    fdx_error err = {0, ""};

    assert_int_equal(fdx_store_get_stats(st, &s, &err), 0);
    return s;
}

static void test_create(void **state)
{
    char uri[300], path[300];
    fdx_store *st;

    (void)state;
    new_store("create.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    assert_int_equal(fdx_store_schema_version(st), FDX_STORE_SCHEMA_VERSION);
    assert_string_equal(fdx_store_uri(st), uri);
    fdx_store_close(st);
    assert_int_equal(sql_int(path, "SELECT version FROM schema_version"),
                     FDX_STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master "
                     "WHERE type = 'table' AND name IN ('hosts', 'packages',"
                     " 'evidence', 'history', 'candidates')"), 5);
    /* WAL is a property of the file: a second open finds it */
    assert_int_equal(sql_int(path, "SELECT journal_mode = 'wal' FROM "
                     "pragma_journal_mode"), 1);
    /* opening again migrates nothing and keeps one version row */
    fdx_store_close(open_ok(uri, 0));
    assert_int_equal(sql_int(path, "SELECT count(*) FROM schema_version"),
                     1);
    assert_intact(path);
}

/* Version 1 as flowdex 0.1 wrote it, made by hand, with one host. */
static const char schema_v1[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE hosts (id INTEGER PRIMARY KEY, address TEXT NOT NULL "
    "UNIQUE, address_key BLOB NOT NULL, first_seen_ms INTEGER NOT NULL, "
    "last_seen_ms INTEGER NOT NULL, os_family TEXT, os_release TEXT, "
    "os_codename TEXT, os_arch TEXT, os_confidence REAL, "
    "os_arch_confidence REAL, sampled_flows INTEGER NOT NULL DEFAULT 0, "
    "collector TEXT);"
    "CREATE INDEX hosts_by_key ON hosts (address_key);"
    "CREATE TABLE evidence (id INTEGER PRIMARY KEY, host_id INTEGER NOT "
    "NULL REFERENCES hosts (id), first_ms INTEGER NOT NULL, last_ms INTEGER"
    " NOT NULL, exporter TEXT, server TEXT NOT NULL, server_port INTEGER "
    "NOT NULL, client_port INTEGER NOT NULL, octets INTEGER NOT NULL, "
    "packets INTEGER NOT NULL, req_octets INTEGER NOT NULL, req_packets "
    "INTEGER NOT NULL, records INTEGER NOT NULL, kind TEXT NOT NULL, "
    "transport TEXT NOT NULL, est_files INTEGER NOT NULL, win_lo INTEGER "
    "NOT NULL, win_hi INTEGER NOT NULL, path_lo INTEGER NOT NULL, path_hi "
    "INTEGER NOT NULL, file_path TEXT, file_size INTEGER, candidates_total"
    " INTEGER NOT NULL, collector TEXT, UNIQUE (host_id, server, "
    "server_port, client_port, first_ms));"
    "CREATE TABLE packages (id INTEGER PRIMARY KEY, host_id INTEGER NOT "
    "NULL REFERENCES hosts (id), name TEXT NOT NULL, version TEXT NOT NULL,"
    " arch TEXT NOT NULL, suite TEXT NOT NULL, path TEXT NOT NULL, size "
    "INTEGER NOT NULL, confidence REAL NOT NULL, evidence_id INTEGER "
    "REFERENCES evidence (id), first_seen_ms INTEGER NOT NULL, "
    "last_seen_ms INTEGER NOT NULL, collector TEXT, UNIQUE (host_id, name,"
    " arch));"
    "CREATE TABLE history (id INTEGER PRIMARY KEY, host_id INTEGER NOT "
    "NULL REFERENCES hosts (id), time_ms INTEGER NOT NULL, what TEXT NOT "
    "NULL CHECK (what IN ('os', 'package')), name TEXT, old_value TEXT, "
    "new_value TEXT, collector TEXT);"
    "INSERT INTO hosts VALUES (1, '10.9.9.9', x'00000000000000000000ffff0a"
    "090909', 1000, 2000, 'debian', '12', 'bookworm', 'amd64', 0.5, 0.5, 0,"
    " 'old');";

static void test_migrate_v1(void **state)
{
    char uri[300], path[300];
    fdx_store_host h;
    fdx_addr a;
    fdx_error err = {0, ""};
    fdx_store *st;

    (void)state;
    new_store("v1.db", uri, path, sizeof(path));
    sql_exec(path, schema_v1);
    /* a read-only open does not migrate, and says so */
    {
        fdx_store_opts o = {NULL, 1, 0, 0};

        assert_int_equal(fdx_store_open(uri, &o, &st, &err), FDX_EVERSION);
        assert_non_null(strstr(err.msg, "v1.db"));
    }
    st = open_ok(uri, 0);
    assert_int_equal(sql_int(path, "SELECT version FROM schema_version"),
                     FDX_STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master "
                     "WHERE name = 'host_scores'"), 1);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master "
                     "WHERE name = 'candidates'"), 1);
    /* version 4: a host's evidence list finds its packages by index */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master "
                     "WHERE name = 'packages_by_evidence'"), 1);
    fdx_addr_parse(&a, "10.9.9.9");
    assert_int_equal(fdx_store_get_host(st, &a, &h, &err), 0);
    assert_string_equal(h.os.codename, "bookworm");
    assert_int_equal(h.first_seen_ms, 1000);
    assert_string_equal(h.collector, "old");
    fdx_store_host_free(&h);
    fdx_store_close(st);
    assert_intact(path);
}

static void test_refused(void **state)
{
    char uri[300], path[300];
    fdx_error err = {0, ""};
    fdx_store *st = NULL;
    FILE *f;

    (void)state;
    new_store("newer.db", uri, path, sizeof(path));
    fdx_store_close(open_ok(uri, 0));
    sql_exec(path, "UPDATE schema_version SET version = 99");
    assert_int_equal(fdx_store_open(uri, NULL, &st, &err), FDX_EVERSION);
    assert_non_null(strstr(err.msg, "99"));

    new_store("foreign.db", uri, path, sizeof(path));
    sql_exec(path, "CREATE TABLE t (x)");
    assert_int_equal(fdx_store_open(uri, NULL, &st, &err), FDX_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a flowdex store"));

    new_store("junk.db", uri, path, sizeof(path));
    f = fopen(path, "w");
    fputs("this is not a database, not even a little bit, at all.\n", f);
    fclose(f);
    assert_int_equal(fdx_store_open(uri, NULL, &st, &err), FDX_ECORRUPT);
    assert_non_null(strstr(err.msg, "junk.db"));

    new_store("missing.db", uri, path, sizeof(path));
    {
        fdx_store_opts o = {NULL, 1, 0, 0};

        assert_int_equal(fdx_store_open(uri, &o, &st, &err), FDX_ENOENT);
    }
    assert_int_equal(fdx_store_open("mysql://x", NULL, &st, &err),
                     FDX_EUSAGE);
#ifdef FDX_HAVE_POSTGRESQL
    assert_int_equal(fdx_store_open("postgresql://127.0.0.1:1/x?"
                                    "connect_timeout=2", NULL, &st, &err),
                     FDX_ENOENT);
    assert_non_null(strstr(err.msg, "127.0.0.1:1/x"));
#else
    assert_int_equal(fdx_store_open("postgresql://localhost/x", NULL, &st,
                                    &err), FDX_EUNSUPPORTED);
#endif
    assert_null(st);
}

static void test_idempotent(void **state)
{
    char uri[300], path[300];
    test_host t[2];
    fdx_host hosts[2];
    fdx_store_stats s1, s2;
    fdx_store_host h;
    fdx_error err = {0, ""};
    fdx_store *st;

    (void)state;
    new_store("idem.db", uri, path, sizeof(path));
    make_host(&t[0], "10.0.0.2", "bookworm", entry_of("alpha", "1.0-1"),
              1000000);
    make_host(&t[1], "2001:db8::1", "bookworm", entry_of("beta", "3"),
              2000000);
    hosts[0] = t[0].h;
    hosts[1] = t[1].h;
    st = open_ok(uri, 0);
    put_ok(st, hosts, 2);
    s1 = stats_of(st);
    put_ok(st, hosts, 2);
    s2 = stats_of(st);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    assert_int_equal(s1.hosts, 2);
    assert_int_equal(s1.packages, 2);
    assert_int_equal(s1.evidence, 2);
    assert_int_equal(s1.history, 0);
    assert_int_equal(fdx_store_get_host(st, &t[1].h.addr, &h, &err), 0);
    assert_int_equal(h.npackages, 1);
    assert_string_equal(h.packages[0].file.name, "beta");
    assert_int_equal(h.packages[0].time_ms, 2000000);
    assert_int_equal(h.packages[0].evidence, 0);
    assert_int_equal(h.nevidence, 1);
    assert_true(h.evidence[0].claimed);
    assert_int_equal(h.evidence[0].ncand, 1);
    assert_string_equal(h.evidence[0].cand[0].path,
                        "pool/main/b/beta_3_all.deb");
    assert_string_equal(h.evidence[0].collector, "test");
    assert_int_equal(h.last_seen_ms, 2000500);
    fdx_store_host_free(&h);
    fdx_store_close(st);
    assert_intact(path);
}

static void test_history(void **state)
{
    char uri[300], path[300];
    test_host t;
    fdx_store_host h;
    fdx_error err = {0, ""};
    fdx_store *st;

    (void)state;
    new_store("hist.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    make_host(&t, "10.0.0.3", "bookworm", entry_of("alpha", "1.0-1"),
              1000000);
    put_ok(st, &t.h, 1);
    /* a day later: upgraded to trixie, and a new alpha */
    make_host(&t, "10.0.0.3", "trixie", entry_of("alpha", "1.0-2"),
              87400000);
    put_ok(st, &t.h, 1);
    assert_int_equal(fdx_store_get_host(st, &t.h.addr, &h, &err), 0);
    assert_int_equal(h.first_seen_ms, 1000000);
    assert_int_equal(h.last_seen_ms, 87400500);
    assert_string_equal(h.os.codename, "trixie");
    assert_int_equal(h.npackages, 1);
    assert_string_equal(h.packages[0].file.version, "1.0-2");
    assert_int_equal(h.nevidence, 2);
    assert_false(h.evidence[0].claimed);   /* the old download */
    assert_true(h.evidence[1].claimed);
    assert_int_equal(h.nhistory, 2);
    assert_int_equal(h.history[0].what, FDX_CHANGE_OS);
    assert_string_equal(h.history[0].old_value, "debian 12 bookworm amd64");
    assert_string_equal(h.history[0].new_value, "debian 13 trixie amd64");
    assert_int_equal(h.history[1].what, FDX_CHANGE_PACKAGE);
    assert_string_equal(h.history[1].name, "alpha:amd64");
    assert_string_equal(h.history[1].old_value, "1.0-1");
    assert_string_equal(h.history[1].new_value, "1.0-2");
    assert_int_equal(h.history[1].time_ms, 87400500);
    fdx_store_host_free(&h);
    /* the same again: no new history */
    put_ok(st, &t.h, 1);
    assert_int_equal(stats_of(st).history, 2);
    fdx_store_close(st);
    assert_intact(path);
}

/* An allocator failing from the n-th call on, counting down. */
static long alloc_left;

static void *fail_malloc(size_t n)
{
    return alloc_left-- > 0 ? malloc(n) : NULL;
}

static void *fail_realloc(void *p, size_t n)
{
    return alloc_left-- > 0 ? realloc(p, n) : NULL;
}

static void test_rollback(void **state)
{
    static const fdx_allocator failing = {fail_malloc, fail_realloc, free};
    char uri[300], path[300];
    test_host t[2];
    fdx_host hosts[2];
    fdx_error err = {0, ""};
    fdx_store *st;
    int rc = -1, failures = 0;

    (void)state;
    new_store("rollback.db", uri, path, sizeof(path));
    make_host(&t[0], "10.0.0.4", "bookworm", entry_of("alpha", "1.0-1"), 1);
    make_host(&t[1], "10.0.0.5", "bookworm", entry_of("beta", "3"), 2);
    hosts[0] = t[0].h;
    hosts[1] = t[1].h;
    st = open_ok(uri, 0);
    for (long n = 0; n < 100 && rc != 0; n++) {
        alloc_left = n;
        fdx_set_allocator(&failing);
        rc = fdx_store_put_hosts(st, cat, hosts, 2, NULL, &err);
        fdx_set_allocator(NULL);
        if (rc == 0)
            break;
        assert_int_equal(rc, FDX_ENOMEM);
        assert_non_null(strstr(err.msg, "rollback.db"));
        /* nothing of the batch is left, the first host's rows neither */
        assert_int_equal(stats_of(st).hosts, 0);
        assert_int_equal(stats_of(st).evidence, 0);
        failures++;
    }
    assert_int_equal(rc, 0);
    assert_true(failures >= 4);   /* failures inside the second host too */
    assert_int_equal(stats_of(st).hosts, 2);
    fdx_store_close(st);
    assert_intact(path);
}

/* A store that may not be written (mode=ro holds even for root). */
static void test_read_only(void **state)
{
    char uri[300], path[300], ro[400];
    test_host t;
    fdx_error err = {0, ""};
    fdx_store *st;

    (void)state;
    new_store("ro.db", uri, path, sizeof(path));
    make_host(&t, "10.0.0.6", "bookworm", entry_of("beta", "3"), 5);
    st = open_ok(uri, 0);
    put_ok(st, &t.h, 1);
    fdx_store_close(st);
    snprintf(ro, sizeof(ro), "sqlite:file:%s?mode=ro", path);
    st = open_ok(ro, 0);
    make_host(&t, "10.0.0.7", "bookworm", entry_of("beta", "3"), 6);
    assert_int_equal(fdx_store_put_hosts(st, cat, &t.h, 1, NULL, &err),
                     FDX_EIO);
    assert_non_null(strstr(err.msg, "ro.db"));
    assert_int_equal(stats_of(st).hosts, 1);
    fdx_store_close(st);
    /* and a read-only open refuses writes before trying */
    st = open_ok(uri, 1);
    assert_int_equal(fdx_store_put_hosts(st, cat, &t.h, 1, NULL, &err),
                     FDX_EUSAGE);
    fdx_store_close(st);
    assert_intact(path);
}

static int count_host(void *ud, const fdx_store_host *h)
{
    (void)h;
    ++*(int *)ud;
    return 0;
}

/* A reader sees the committed hosts while a writer holds its lock. */
static void test_reader_during_write(void **state)
{
    char uri[300], path[300];
    test_host t;
    fdx_error err = {0, ""};
    fdx_store *w, *r;
    sqlite3 *db;
    int n = 0;

    (void)state;
    new_store("wal.db", uri, path, sizeof(path));
    make_host(&t, "10.0.0.8", "bookworm", entry_of("beta", "3"), 5);
    w = open_ok(uri, 0);
    put_ok(w, &t.h, 1);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; DELETE FROM "
                                  "history", NULL, NULL, NULL), SQLITE_OK);
    r = open_ok(uri, 1);
    assert_int_equal(fdx_store_each_host(r, count_host, &n, &err), 1);
    assert_int_equal(n, 1);
    fdx_store_close(r);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    fdx_store_close(w);
}

#ifdef FDX_HAVE_POSTGRESQL
/*
 * The same writes on PostgreSQL, against the server named by
 * FLOWDEX_TEST_POSTGRESQL (a libpq URI; default: the local socket's
 * flowdex_test database).  Skipped when no server answers there.  The
 * store's tables in that database are dropped first.
 */
static const char *pg_uri(void)
{
    const char *u = getenv("FLOWDEX_TEST_POSTGRESQL");

    return u != NULL && u[0] ? u
                             : "postgresql:///flowdex_test?connect_timeout=2";
}

static void pg_reset(const char *uri)
{
    PGconn *c = PQconnectdb(uri);

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning; DROP TABLE IF "
                   "EXISTS candidates, history, packages, evidence, hosts,"
                   " schema_version CASCADE"));
    PQfinish(c);
}

static void test_postgresql(void **state)
{
    static const fdx_allocator failing = {fail_malloc, fail_realloc, free};
    const char *uri = pg_uri();
    PGconn *probe = PQconnectdb(uri);
    test_host t[2];
    fdx_host hosts[2];
    fdx_store_host h;
    fdx_error err = {0, ""};
    fdx_store *st;
    int rc = -1;

    (void)state;
    if (PQstatus(probe) != CONNECTION_OK) {
        fprintf(stderr, "skipped: no PostgreSQL server at %s (set "
                "FLOWDEX_TEST_POSTGRESQL to a libpq URI to test one): %s",
                uri, PQerrorMessage(probe));
        PQfinish(probe);
        skip();
    }
    PQfinish(probe);
    pg_reset(uri);
    make_host(&t[0], "10.0.0.2", "bookworm", entry_of("alpha", "1.0-1"),
              1000000);
    make_host(&t[1], "2001:db8::1", "bookworm", entry_of("beta", "3"),
              2000000);
    hosts[0] = t[0].h;
    hosts[1] = t[1].h;
    st = open_ok(uri, 0);
    assert_int_equal(fdx_store_schema_version(st), FDX_STORE_SCHEMA_VERSION);
    /* all or nothing under allocation failure */
    for (long n = 0; n < 100 && rc != 0; n++) {
        alloc_left = n;
        fdx_set_allocator(&failing);
        rc = fdx_store_put_hosts(st, cat, hosts, 2, "pg", &err);
        fdx_set_allocator(NULL);
        if (rc != 0)
            assert_int_equal(stats_of(st).hosts, 0);
    }
    assert_int_equal(rc, 0);
    put_ok(st, hosts, 2);
    assert_int_equal(stats_of(st).hosts, 2);
    assert_int_equal(stats_of(st).evidence, 2);
    assert_int_equal(stats_of(st).packages, 2);
    /* an upgrade: OS and package history */
    make_host(&t[0], "10.0.0.2", "trixie", entry_of("alpha", "1.0-2"),
              87400000);
    put_ok(st, &t[0].h, 1);
    put_ok(st, &t[0].h, 1);
    assert_int_equal(fdx_store_get_host(st, &t[0].h.addr, &h, &err), 0);
    assert_string_equal(h.os.codename, "trixie");
    assert_int_equal(h.first_seen_ms, 1000000);
    assert_int_equal(h.nevidence, 2);
    assert_int_equal(h.npackages, 1);
    assert_int_equal(h.packages[0].evidence, 1);
    assert_int_equal(h.nhistory, 2);
    assert_string_equal(h.history[0].new_value, "debian 13 trixie amd64");
    assert_string_equal(h.history[1].old_value, "1.0-1");
    assert_string_equal(h.history[1].collector, "test");
    fdx_store_host_free(&h);
    fdx_store_close(st);
    /* a reader on a store of this version */
    st = open_ok(uri, 1);
    assert_int_equal(stats_of(st).history, 2);
    fdx_store_close(st);
}
#endif

/* Scores of two hypotheses, bookworm and trixie on amd64. */
static void two_scores(fdx_os_score *sc, double bookworm, double trixie,
                       int arch_ev)
{
    sc[0] = (fdx_os_score){"debian", "12", "bookworm", "amd64", bookworm,
                           arch_ev};
    sc[1] = (fdx_os_score){"debian", "13", "trixie", "amd64", trixie, 0};
}

/* The confidence in bookworm those scores give (the null hypothesis
 * scores 3), whether or not it is enough for a claim. */
static double bookworm_p(double bookworm, double trixie)
{
    return 1.0 / (exp(3.0 - bookworm) + 1.0 + exp(trixie - bookworm));
}

/* Writes host 10.5.5.5 as collector col: scores sc, one package claim
 * of entry with confidence conf, no OS claim of its own. */
static void put_scored(fdx_store *st, const char *col, fdx_os_score *sc,
                       uint32_t entry, double conf, uint64_t t_ms)
{
    fdx_error err = {0, ""};
    test_host t;

    make_host(&t, "10.5.5.5", "bookworm", entry, t_ms);
    t.h.os.known = 0;
    t.pc.confidence = conf;
    t.h.scores = sc;
    t.h.nscores = 2;
    if (fdx_store_put_hosts(st, cat, &t.h, 1, col, &err) < 0)
        fail_msg("%s", err.msg);
}

/*
 * Two collectors each saw part of one host: neither's scores alone make
 * a claim, their sum does, and the store's host has the claim
 * fdx_os_merge() makes of the sum, whichever collector wrote last.  A
 * collector's package claims, made under its own best hypothesis, are
 * scaled to the merged confidence and kept when that reaches 0.7.
 */
static void test_merge(void **state)
{
    char uri[300], path[300];
    fdx_os_score a[2], b[2], both[4];
    fdx_os_claim want;
    fdx_store_host h;
    fdx_error err = {0, ""};
    fdx_addr addr;
    fdx_store *st;
    double pa = bookworm_p(2.0, -1.0), pb = bookworm_p(2.5, 0.5);

    (void)state;
    new_store("merge.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    assert_int_equal(fdx_addr_parse(&addr, "10.5.5.5"), 0);
    two_scores(a, 2.0, -1.0, 0);
    two_scores(b, 2.5, 0.5, 1);
    memcpy(both, a, sizeof(a));
    memcpy(both + 2, b, sizeof(b));
    fdx_os_merge(a, 2, &want);
    assert_false(want.known);
    fdx_os_merge(both, 4, &want);
    assert_true(want.known);
    assert_string_equal(want.codename, "bookworm");
    assert_string_equal(want.arch, "amd64");   /* b had arch evidence */
    assert_true(fabs(want.confidence - bookworm_p(4.5, -0.5)) < 1e-9);

    /* a alone: no OS, and its package (0.9 of its 0.265) is not kept */
    put_scored(st, "a", a, entry_of("alpha", "1.0-1"), 0.9 * pa, 1000);
    assert_int_equal(fdx_store_get_host(st, &addr, &h, &err), 0);
    assert_false(h.os.known);
    assert_int_equal(h.npackages, 0);
    fdx_store_host_free(&h);

    /* b: the merged claim; b's package at 0.95 of b's own confidence
     * becomes 0.95 of the merged one, and a's claim, too weak when a
     * wrote it, is judged again: 0.9 of the merged confidence */
    put_scored(st, "b", b, entry_of("beta", "3"), 0.95 * pb, 9000);
    assert_int_equal(fdx_store_get_host(st, &addr, &h, &err), 0);
    assert_true(h.os.known);
    assert_string_equal(h.os.codename, "bookworm");
    assert_string_equal(h.os.arch, "amd64");
    assert_true(fabs(h.os.confidence - want.confidence) < 1e-9);
    assert_int_equal(h.npackages, 2);
    assert_string_equal(h.packages[0].file.name, "alpha");
    assert_true(fabs(h.packages[0].confidence - 0.9 * want.confidence) <
                1e-9);
    assert_string_equal(h.packages[1].file.name, "beta");
    assert_true(fabs(h.packages[1].confidence - 0.95 * want.confidence) <
                1e-9);
    fdx_store_host_free(&h);

    /* a again: the same two; one score row per collector */
    put_scored(st, "a", a, entry_of("alpha", "1.0-1"), 0.9 * pa, 1000);
    assert_int_equal(fdx_store_get_host(st, &addr, &h, &err), 0);
    assert_true(fabs(h.os.confidence - want.confidence) < 1e-9);
    assert_int_equal(h.npackages, 2);
    assert_string_equal(h.packages[0].file.name, "alpha");
    assert_true(fabs(h.packages[0].confidence - 0.9 * want.confidence) <
                1e-9);
    fdx_store_host_free(&h);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM host_scores"), 2);
    fdx_store_close(st);
    assert_intact(path);
}

/* Pruning removes old evidence and its candidates, keeps the claims. */
static void test_prune(void **state)
{
    char uri[300], path[300];
    test_host t[2];
    fdx_store_host h;
    fdx_error err = {0, ""};
    uint64_t removed = 7;
    fdx_store *st;

    (void)state;
    new_store("prune.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    make_host(&t[0], "10.6.6.6", "bookworm", entry_of("alpha", "1.0-1"),
              1000);
    make_host(&t[1], "10.6.6.7", "bookworm", entry_of("beta", "3"), 50000);
    put_ok(st, &t[0].h, 1);
    put_ok(st, &t[1].h, 1);
    assert_int_equal(stats_of(st).evidence, 2);
    assert_int_equal(fdx_store_prune(st, 10000, &removed, &err), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(stats_of(st).evidence, 1);
    assert_int_equal(stats_of(st).packages, 2);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM candidates"), 1);
    assert_int_equal(fdx_store_get_host(st, &t[0].h.addr, &h, &err), 0);
    assert_int_equal(h.nevidence, 0);
    assert_int_equal(h.npackages, 1);
    assert_int_equal(h.packages[0].evidence, -1);
    fdx_store_host_free(&h);
    assert_int_equal(fdx_store_prune(st, 10000, &removed, &err), 0);
    assert_int_equal(removed, 0);
    fdx_store_close(st);
    st = open_ok(uri, 1);
    assert_int_equal(fdx_store_prune(st, 10000, &removed, &err), FDX_EUSAGE);
    fdx_store_close(st);
    assert_intact(path);
}

/*
 * A handle writes an evidence row it committed once only: written
 * again, unclaimed evidence that was pruned meanwhile stays pruned;
 * claimed evidence is written again (its package needs the row), and
 * so is everything through another handle.
 */
static void test_evidence_once(void **state)
{
    char uri[300], path[300];
    test_host t;
    uint64_t removed = 0;
    fdx_error err = {0, ""};
    fdx_store *st;

    (void)state;
    new_store("once.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    make_host(&t, "10.7.7.7", "bookworm", entry_of("alpha", "1.0-1"), 1000);
    t.h.npackages = 0;
    put_ok(st, &t.h, 1);
    assert_int_equal(fdx_store_prune(st, 10000, &removed, &err), 0);
    assert_int_equal(removed, 1);
    put_ok(st, &t.h, 1);
    assert_int_equal(stats_of(st).evidence, 0);
    t.h.npackages = 1;                 /* now a claim rests on it */
    put_ok(st, &t.h, 1);
    assert_int_equal(stats_of(st).evidence, 1);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM packages WHERE "
                     "evidence_id IS NOT NULL"), 1);
    assert_int_equal(fdx_store_prune(st, 10000, &removed, &err), 0);
    fdx_store_close(st);
    st = open_ok(uri, 0);
    t.h.npackages = 0;
    put_ok(st, &t.h, 1);
    assert_int_equal(stats_of(st).evidence, 1);
    fdx_store_close(st);
    assert_intact(path);
}

/*
 * A connection matched again (its server's model changed) comes with
 * another match: the row keeps its id and gets the new file and
 * candidates, the package claim resting on it follows.
 */
static void test_evidence_rematched(void **state)
{
    char uri[300], path[300];
    test_host t;
    fdx_store *st;
    uint32_t beta = entry_of("beta", "3");
    char want[600];
    fdx_entry e;

    (void)state;
    fdx_catalog_entry(cat, beta, &e);
    new_store("rematch.db", uri, path, sizeof(path));
    st = open_ok(uri, 0);
    make_host(&t, "10.7.7.8", "bookworm", entry_of("alpha", "1.0-1"), 1000);
    put_ok(st, &t.h, 1);
    t.ev.cand[0] = beta;
    t.pc.entry = beta;
    put_ok(st, &t.h, 1);
    assert_int_equal(stats_of(st).evidence, 1);
    snprintf(want, sizeof(want), "SELECT count(*) FROM evidence WHERE "
             "file_path = '%s'", e.path);
    assert_int_equal(sql_int(path, want), 1);
    snprintf(want, sizeof(want), "SELECT count(*) FROM candidates WHERE "
             "path = '%s'", e.path);
    assert_int_equal(sql_int(path, want), 1);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM candidates"), 1);
    /* the same match again, from a new handle: nothing changes */
    fdx_store_close(st);
    st = open_ok(uri, 0);
    put_ok(st, &t.h, 1);
    assert_int_equal(sql_int(path, want), 1);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM candidates"), 1);
    fdx_store_close(st);
    assert_intact(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_reader_during_write),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_evidence_once),
        cmocka_unit_test(test_evidence_rematched),
#ifdef FDX_HAVE_POSTGRESQL
        cmocka_unit_test(test_postgresql),
#endif
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
