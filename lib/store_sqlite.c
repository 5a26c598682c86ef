/*
 * The SQLite backend of the store (sqlite:PATH).
 *
 * The database runs in WAL mode, so one writer and any number of readers
 * (other processes included) work at once; a writer waits busy_timeout_ms
 * for another.  The schema is created and migrated on open by the steps
 * of migrations[], each run once in order, the version kept in
 * schema_version; flowdex-store(5) documents the tables.  Every batch is
 * one IMMEDIATE transaction, and every read one snapshot.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "store_int.h"

/*
 * migrations[i] takes the schema from version i to i + 1.  Steps are
 * only ever appended: a store written by an older flowdex is brought up
 * to date by the steps it lacks.
 */
static const char *const migrations[] = {
    /* 1: hosts, their claims, the evidence and the history */
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (0);"
    "CREATE TABLE hosts ("
    " id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL UNIQUE,"
    " address_key BLOB NOT NULL,"
    " first_seen_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL,"
    " os_family TEXT, os_release TEXT, os_codename TEXT, os_arch TEXT,"
    " os_confidence REAL, os_arch_confidence REAL,"
    " sampled_flows INTEGER NOT NULL DEFAULT 0,"
    " collector TEXT);"
    "CREATE INDEX hosts_by_key ON hosts (address_key);"
    "CREATE TABLE evidence ("
    " id INTEGER PRIMARY KEY,"
    " host_id INTEGER NOT NULL REFERENCES hosts (id),"
    " first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    " exporter TEXT,"
    " server TEXT NOT NULL, server_port INTEGER NOT NULL,"
    " client_port INTEGER NOT NULL,"
    " octets INTEGER NOT NULL, packets INTEGER NOT NULL,"
    " req_octets INTEGER NOT NULL, req_packets INTEGER NOT NULL,"
    " records INTEGER NOT NULL,"
    " kind TEXT NOT NULL, transport TEXT NOT NULL,"
    " est_files INTEGER NOT NULL,"
    " win_lo INTEGER NOT NULL, win_hi INTEGER NOT NULL,"
    " path_lo INTEGER NOT NULL, path_hi INTEGER NOT NULL,"
    " file_path TEXT, file_size INTEGER,"
    " candidates_total INTEGER NOT NULL,"
    " collector TEXT,"
    " UNIQUE (host_id, server, server_port, client_port, first_ms));"
    "CREATE TABLE packages ("
    " id INTEGER PRIMARY KEY,"
    " host_id INTEGER NOT NULL REFERENCES hosts (id),"
    " name TEXT NOT NULL, version TEXT NOT NULL, arch TEXT NOT NULL,"
    " suite TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
    " confidence REAL NOT NULL,"
    " evidence_id INTEGER REFERENCES evidence (id),"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " collector TEXT,"
    " UNIQUE (host_id, name, arch));"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY,"
    " host_id INTEGER NOT NULL REFERENCES hosts (id),"
    " time_ms INTEGER NOT NULL,"
    " what TEXT NOT NULL CHECK (what IN ('os', 'package')),"
    " name TEXT, old_value TEXT, new_value TEXT,"
    " collector TEXT);",
    /* 2: every candidate of a connection, not only the matched file */
    "CREATE TABLE candidates ("
    " evidence_id INTEGER NOT NULL REFERENCES evidence (id),"
    " rank INTEGER NOT NULL,"
    " name TEXT NOT NULL, version TEXT NOT NULL, arch TEXT NOT NULL,"
    " suite TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
    " PRIMARY KEY (evidence_id, rank));"
    "CREATE INDEX history_by_host ON history (host_id, time_ms);",
    /* 3: each collector's OS scores of a host, and evidence by age */
    "CREATE TABLE host_scores ("
    " host_id INTEGER NOT NULL REFERENCES hosts (id),"
    " collector TEXT NOT NULL,"
    " scores TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (host_id, collector));"
    "CREATE INDEX evidence_by_age ON evidence (last_ms);",
    /* 4: the package an evidence row backs, found without a scan (a
     * host's evidence lists whether each row backs a package) */
    "CREATE INDEX packages_by_evidence ON packages (evidence_id);",
};

#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

_Static_assert(NMIGRATIONS == FDX_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* The prepared statements, made once per open store. */
#define STMT_TABLE(X)                                                       \
    X(HOST_GET, "SELECT id, first_seen_ms, last_seen_ms, os_family,"       \
      " os_release, os_codename, os_arch FROM hosts WHERE address = ?1")   \
    X(HOST_ADD, "INSERT INTO hosts (address, address_key, first_seen_ms,"  \
      " last_seen_ms, os_family, os_release, os_codename, os_arch,"        \
      " os_confidence, os_arch_confidence, sampled_flows, collector)"      \
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")       \
    X(HOST_SEEN, "UPDATE hosts SET first_seen_ms = min(first_seen_ms, ?2),"\
      " last_seen_ms = max(last_seen_ms, ?3), sampled_flows = ?4,"         \
      " collector = coalesce(?5, collector) WHERE id = ?1")                \
    X(HOST_OS, "UPDATE hosts SET os_family = ?2, os_release = ?3,"         \
      " os_codename = ?4, os_arch = ?5, os_confidence = ?6,"               \
      " os_arch_confidence = ?7 WHERE id = ?1")                            \
    X(EV_ADD, "INSERT OR IGNORE INTO evidence (host_id, first_ms, last_ms,"\
      " server, server_port, client_port, octets, packets, req_octets,"    \
      " req_packets, records, kind, transport, est_files, win_lo, win_hi," \
      " path_lo, path_hi, file_path, file_size, candidates_total,"         \
      " collector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"  \
      " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)")           \
    X(EV_ID, "SELECT id FROM evidence WHERE host_id = ?1 AND server = ?2"  \
      " AND server_port = ?3 AND client_port = ?4 AND first_ms = ?5")      \
    X(EV_SET, "UPDATE evidence SET kind = ?12, transport = ?13,"           \
      " est_files = ?14, win_lo = ?15, win_hi = ?16, path_lo = ?17,"       \
      " path_hi = ?18, file_path = ?19, file_size = ?20,"                  \
      " candidates_total = ?21 WHERE id = ?1")                             \
    X(CAND_DEL, "DELETE FROM candidates WHERE evidence_id = ?1")           \
    X(CAND_ADD, "INSERT INTO candidates (evidence_id, rank, name, version,"\
      " arch, suite, path, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)") \
    X(PKG_GET, "SELECT id, version FROM packages WHERE host_id = ?1"       \
      " AND name = ?2 AND arch = ?3")                                      \
    X(PKG_ADD, "INSERT INTO packages (host_id, name, version, arch, suite,"\
      " path, size, confidence, evidence_id, first_seen_ms, last_seen_ms," \
      " collector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"  \
      " ?12)")                                                             \
    X(PKG_SET, "UPDATE packages SET version = ?2, suite = ?3, path = ?4,"  \
      " size = ?5, confidence = ?6, evidence_id = ?7,"                     \
      " first_seen_ms = min(first_seen_ms, ?8),"                           \
      " last_seen_ms = max(last_seen_ms, ?9),"                             \
      " collector = coalesce(?10, collector) WHERE id = ?1")               \
    X(HIST_ADD, "INSERT INTO history (host_id, time_ms, what, name,"       \
      " old_value, new_value, collector) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"  \
      " ?7)")                                                              \
    X(HOSTS_ALL, "SELECT id, address, first_seen_ms, last_seen_ms,"        \
      " os_family, os_release, os_codename, os_arch, os_confidence,"       \
      " os_arch_confidence, sampled_flows, collector FROM hosts"           \
      " ORDER BY address_key")                                             \
    X(HOSTS_ONE, "SELECT id, address, first_seen_ms, last_seen_ms,"        \
      " os_family, os_release, os_codename, os_arch, os_confidence,"       \
      " os_arch_confidence, sampled_flows, collector FROM hosts"           \
      " WHERE address = ?1")                                               \
    X(COUNT_PKG, "SELECT count(*) FROM packages WHERE host_id = ?1")       \
    X(COUNT_EV, "SELECT count(*) FROM evidence WHERE host_id = ?1")        \
    X(COUNT_HIST, "SELECT count(*) FROM history WHERE host_id = ?1")       \
    X(PKG_LIST, "SELECT p.name, p.version, p.arch, p.suite, p.path,"       \
      " p.size, p.confidence, coalesce(e.first_ms, p.first_seen_ms),"      \
      " p.first_seen_ms, p.last_seen_ms, p.collector, p.evidence_id"        \
      " FROM packages p"      \
      " LEFT JOIN evidence e ON e.id = p.evidence_id WHERE p.host_id = ?1" \
      " ORDER BY 8, p.id")                                                 \
    X(EV_LIST, "SELECT id, first_ms, last_ms, exporter, server,"           \
      " server_port, client_port, octets, packets, req_octets,"            \
      " req_packets, records, kind, transport, est_files, win_lo, win_hi," \
      " path_lo, path_hi, candidates_total, collector, EXISTS (SELECT 1"   \
      " FROM packages p WHERE p.evidence_id = evidence.id),"               \
      " (SELECT count(*) FROM candidates c WHERE c.evidence_id ="          \
      " evidence.id) FROM evidence WHERE host_id = ?1"                     \
      " ORDER BY first_ms, id")                                            \
    X(CAND_LIST, "SELECT name, version, arch, suite, path, size"           \
      " FROM candidates WHERE evidence_id = ?1 ORDER BY rank")             \
    X(HIST_LIST, "SELECT time_ms, what, name, old_value, new_value,"       \
      " collector FROM history WHERE host_id = ?1 ORDER BY time_ms, id")   \
    X(SCORES_GET, "SELECT s.scores, s.collector = ?2 FROM host_scores s"  \
      " JOIN hosts h ON h.id = s.host_id WHERE h.address = ?1"             \
      " ORDER BY s.collector")                                             \
    X(SCORES_PUT, "INSERT INTO host_scores (host_id, collector, scores,"   \
      " updated_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (host_id,"         \
      " collector) DO UPDATE SET scores = excluded.scores,"                \
      " updated_ms = excluded.updated_ms")                                 \
    X(PRUNE_PKG, "UPDATE packages SET evidence_id = NULL WHERE"            \
      " evidence_id IN (SELECT id FROM evidence WHERE last_ms < ?1)")      \
    X(PRUNE_CAND, "DELETE FROM candidates WHERE evidence_id IN"            \
      " (SELECT id FROM evidence WHERE last_ms < ?1)")                     \
    X(PRUNE_EV, "DELETE FROM evidence WHERE last_ms < ?1")                 \
    X(STATS, "SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM"  \
      " packages), (SELECT count(*) FROM evidence), (SELECT count(*) FROM" \
      " history)")

enum {
#define STMT_ENUM(name, sql) S_##name,
    STMT_TABLE(STMT_ENUM)
#undef STMT_ENUM
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
#define STMT_SQL(name, sql) sql,
    STMT_TABLE(STMT_SQL)
#undef STMT_SQL
};

typedef struct sqlite_be {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
} sqlite_be;

static sqlite_be *be_of(fdx_store *st)
{
    return st->be;
}

/* The FDX_E* code for a SQLite result code. */
static int code_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return FDX_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return FDX_ECORRUPT;
    case SQLITE_CANTOPEN:
        return FDX_ENOENT;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return FDX_EACCES;
    default:
        return FDX_EIO;
    }
}

/*
 * Records the connection's last error, naming the store and what failed.
 * SQLite says only "disk I/O error" when a file cannot be created or
 * grown; the system's reason ("No space left on device") is added.
 */
static int db_error(fdx_store *st, int rc, const char *what, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    const char *msg = be->db != NULL ? sqlite3_errmsg(be->db)
                                     : sqlite3_errstr(rc);
    int sys = be->db != NULL ? sqlite3_system_errno(be->db) : 0;

    if (sys != 0 && ((rc & 0xff) == SQLITE_IOERR ||
                     (rc & 0xff) == SQLITE_FULL ||
                     (rc & 0xff) == SQLITE_CANTOPEN))
        return fdx_error_set(err, code_of(rc), "%s: %s: %s (%s)", st->uri,
                             what, msg, strerror(sys));
    return fdx_error_set(err, code_of(rc), "%s: %s: %s", st->uri, what, msg);
}

static int exec(fdx_store *st, const char *sql, const char *what,
                fdx_error *err)
{
    int rc = sqlite3_exec(be_of(st)->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : db_error(st, rc, what, err);
}

/* One integer from a statement without parameters; -1 if no row. */
static int query_int(fdx_store *st, const char *sql, int64_t *out,
                     fdx_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(be_of(st)->db, sql, -1, &s, NULL);

    if (rc != SQLITE_OK)
        return db_error(st, rc, "reading the schema", err);
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(st, rc, "reading the schema", err);
    return 0;
}

/*
 * The schema version: 0 for an empty database.  A database holding
 * tables but no schema_version is someone else's: FDX_ECORRUPT.
 */
static int read_version(fdx_store *st, int64_t *version, fdx_error *err)
{
    int64_t tables, has_version;
    int rc;

    rc = query_int(st, "SELECT count(*) FROM sqlite_master", &tables, err);
    if (rc < 0)
        return rc;
    rc = query_int(st, "SELECT count(*) FROM sqlite_master WHERE type ="
                   " 'table' AND name = 'schema_version'", &has_version,
                   err);
    if (rc < 0)
        return rc;
    *version = 0;
    if (tables == 0)
        return 0;
    if (has_version == 0)
        return fdx_error_set(err, FDX_ECORRUPT, "%s: a SQLite database, "
                             "but not a flowdex store", st->uri);
    rc = query_int(st, "SELECT max(version) FROM schema_version", version,
                   err);
    if (rc == 0 && *version < 0)
        return fdx_error_set(err, FDX_ECORRUPT, "%s: schema_version is "
                             "empty", st->uri);
    return rc;
}

/* Runs the steps from version to the newest, in one transaction. */
static int run_migrations(fdx_store *st, int64_t version, fdx_error *err)
{
    char sql[96];
    int rc;

    for (int64_t v = version; v < (int64_t)NMIGRATIONS; v++) {
        if ((rc = exec(st, migrations[v], "migrating the schema", err)) < 0)
            return rc;
        fdx__log(st->opts.log, FDX_LOG_INFO, "event=store-migrate store=%s "
                 "version=%lld", st->uri, (long long)v + 1);
    }
    snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d",
             (int)NMIGRATIONS);
    return exec(st, sql, "migrating the schema", err);
}

/*
 * Checks the version and, in a writable open, brings the schema up to
 * date.  The IMMEDIATE transaction keeps two writers opening a new store
 * at once from both creating it.
 */
static int migrate(fdx_store *st, fdx_error *err)
{
    int64_t version;
    int rc;

    if (!st->opts.read_only &&
        (rc = exec(st, "BEGIN IMMEDIATE", "starting the migration", err)) < 0)
        return rc;
    if ((rc = read_version(st, &version, err)) < 0)
        goto out;
    rc = FDX_EVERSION;
    if (version > (int64_t)NMIGRATIONS)
        fdx_error_set(err, rc, "%s: schema version %lld is newer than this "
                      "flowdex's (%d)", st->uri, (long long)version,
                      (int)NMIGRATIONS);
    else if (version < (int64_t)NMIGRATIONS && st->opts.read_only)
        fdx_error_set(err, rc, "%s: schema version %lld needs migrating to "
                      "%d; open it for writing once", st->uri,
                      (long long)version, (int)NMIGRATIONS);
    else if (version < (int64_t)NMIGRATIONS)
        rc = run_migrations(st, version, err);
    else
        rc = 0;
    if (rc == 0 && !st->opts.read_only)
        rc = exec(st, "COMMIT", "migrating the schema", err);
out:
    if (rc < 0 && !st->opts.read_only)
        sqlite3_exec(be_of(st)->db, "ROLLBACK", NULL, NULL, NULL);
    st->schema_version = (int)NMIGRATIONS;
    return rc;
}

static int prepare_all(fdx_store *st, fdx_error *err)
{
    sqlite_be *be = be_of(st);

    for (int i = 0; i < S_COUNT; i++) {
        int rc = sqlite3_prepare_v3(be->db, stmt_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT,
                                    &be->stmt[i], NULL);

        if (rc != SQLITE_OK)
            return db_error(st, rc, "preparing statements", err);
    }
    return 0;
}

/* Connection settings: WAL (kept in the file), waits, integrity. */
static int configure(fdx_store *st, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    int rc;

    sqlite3_busy_timeout(be->db, (int)st->opts.busy_timeout_ms);
    sqlite3_extended_result_codes(be->db, 1);
    if ((rc = exec(st, "PRAGMA foreign_keys = ON", "opening", err)) < 0)
        return rc;
    if (st->opts.read_only)
        return exec(st, "PRAGMA query_only = ON", "opening", err);
    if ((rc = exec(st, "PRAGMA journal_mode = WAL", "opening", err)) < 0)
        return rc;
    return exec(st, "PRAGMA synchronous = NORMAL", "opening", err);
}

static void sqlite_close(fdx_store *st)
{
    sqlite_be *be = be_of(st);

    if (be == NULL)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(be->stmt[i]);
    sqlite3_close(be->db);
    fdx__free(be);
    st->be = NULL;
}

static int sqlite_open(fdx_store *st, const char *path, fdx_error *err)
{
    int flags = st->opts.read_only
                    ? SQLITE_OPEN_READONLY
                    : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite_be *be;
    int rc;

    if (path[0] == '\0')
        return fdx_error_set(err, FDX_EUSAGE, "%s: no path after sqlite:",
                             st->uri);
    if ((be = fdx__calloc(1, sizeof(*be))) == NULL)
        return fdx_error_set(err, FDX_ENOMEM, "%s: out of memory", st->uri);
    st->be = be;
    rc = sqlite3_open_v2(path, &be->db,
                         flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK)
        rc = db_error(st, rc, "cannot open", err);
    else if ((rc = configure(st, err)) == 0 && (rc = migrate(st, err)) == 0)
        rc = prepare_all(st, err);
    if (rc < 0)
        sqlite_close(st);
    return rc;
}

static int sqlite_begin(fdx_store *st, fdx_error *err)
{
    return exec(st, "BEGIN IMMEDIATE", "starting a write", err);
}

static int sqlite_commit(fdx_store *st, fdx_error *err)
{
    return exec(st, "COMMIT", "committing", err);
}

static void sqlite_rollback(fdx_store *st)
{
    sqlite_be *be = be_of(st);

    if (!sqlite3_get_autocommit(be->db))
        sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---------------------------------------------------------------- */
/* Writing                                                           */
/* ---------------------------------------------------------------- */

static const char *const kind_names[] = {
    "none", "file", "ambiguous", "several-files", "sampled", "unmatched"};

static const char *kind_name(int kind)
{
    return kind > 0 && kind <= FDX_EV_UNMATCHED ? kind_names[kind] : "none";
}

static int kind_of(const char *name)
{
    for (int k = 1; k <= FDX_EV_UNMATCHED; k++)
        if (name != NULL && strcmp(name, kind_names[k]) == 0)
            return k;
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    sqlite3_bind_int64(s, i, (sqlite3_int64)v);
}

/* Steps a write statement to its end; resets it either way. */
static int step_done(fdx_store *st, sqlite3_stmt *s, const char *what,
                     fdx_error *err)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : db_error(st, rc, what, err);
}

/* Steps a query expected to give at most one row: 1 row, 0 none. */
static int step_row(fdx_store *st, sqlite3_stmt *s, const char *what,
                    fdx_error *err)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW)
        return 1;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : db_error(st, rc, what, err);
}

static void done_row(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static int add_history(fdx_store *st, int64_t host, uint64_t time_ms,
                       const char *what, const char *name,
                       const char *old_value, const char *new_value,
                       const char *collector, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_HIST_ADD];

    sqlite3_bind_int64(s, 1, host);
    bind_u64(s, 2, time_ms);
    bind_text(s, 3, what);
    bind_text(s, 4, name);
    bind_text(s, 5, old_value);
    bind_text(s, 6, new_value);
    bind_text(s, 7, collector);
    return step_done(st, s, "writing history", err);
}

/* "debian 12 bookworm amd64", the value an OS change records. */
static void os_text(char *buf, size_t len, const char *family,
                    const char *release, const char *codename,
                    const char *arch)
{
    snprintf(buf, len, "%s %s %s %s", family ? family : "?",
             release ? release : "?", codename ? codename : "?",
             arch ? arch : "?");
}

static void bind_os(sqlite3_stmt *s, int first, const fdx_store_os *os)
{
    bind_text(s, first, os->family);
    bind_text(s, first + 1, os->release);
    bind_text(s, first + 2, os->codename);
    bind_text(s, first + 3, os->arch);
    sqlite3_bind_double(s, first + 4, os->confidence);
    sqlite3_bind_double(s, first + 5, os->arch_confidence);
}

static int host_insert(fdx_store *st, const fdx_store_host *h,
                       const char *addr, const char *collector,
                       int64_t *id, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *s = be->stmt[S_HOST_ADD];
    int rc;

    bind_text(s, 1, addr);
    sqlite3_bind_blob(s, 2, h->addr.b, sizeof(h->addr.b), SQLITE_STATIC);
    bind_u64(s, 3, h->first_seen_ms);
    bind_u64(s, 4, h->last_seen_ms);
    if (h->os.known)
        bind_os(s, 5, &h->os);
    bind_u64(s, 11, h->sampled_flows);
    bind_text(s, 12, collector);
    if ((rc = step_done(st, s, "writing a host", err)) < 0)
        return rc;
    *id = sqlite3_last_insert_rowid(be->db);
    return 0;
}

/* Replaces a known host's OS claim when the new one differs. */
static int host_os_update(fdx_store *st, int64_t id, sqlite3_stmt *old,
                          const fdx_store_host *h, const char *collector,
                          fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_HOST_OS];
    char was[256], now[256];
    int had = sqlite3_column_type(old, 3) != SQLITE_NULL;
    int rc;

    os_text(was, sizeof(was), (const char *)sqlite3_column_text(old, 3),
            (const char *)sqlite3_column_text(old, 4),
            (const char *)sqlite3_column_text(old, 5),
            (const char *)sqlite3_column_text(old, 6));
    os_text(now, sizeof(now), h->os.family, h->os.release, h->os.codename,
            h->os.arch);
    sqlite3_bind_int64(s, 1, id);
    bind_os(s, 2, &h->os);
    if ((rc = step_done(st, s, "writing a host", err)) < 0)
        return rc;
    if (!had || strcmp(was, now) == 0)
        return 0;
    return add_history(st, id, h->last_seen_ms, "os", NULL, was, now,
                       collector, err);
}

/* Finds or adds the host's row and brings its own columns up to date. */
static int host_upsert(fdx_store *st, const fdx_store_host *h,
                       const char *collector, int64_t *id, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *s = be->stmt[S_HOST_GET], *u = be->stmt[S_HOST_SEEN];
    char addr[FDX_ADDRSTRLEN];
    int rc;

    fdx_addr_format(&h->addr, addr, sizeof(addr));
    bind_text(s, 1, addr);
    if ((rc = step_row(st, s, "reading a host", err)) <= 0) {
        sqlite3_clear_bindings(s);
        return rc < 0 ? rc : host_insert(st, h, addr, collector, id, err);
    }
    *id = sqlite3_column_int64(s, 0);
    rc = h->os.known ? host_os_update(st, *id, s, h, collector, err) : 0;
    done_row(s);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(u, 1, *id);
    bind_u64(u, 2, h->first_seen_ms);
    bind_u64(u, 3, h->last_seen_ms);
    bind_u64(u, 4, h->sampled_flows);
    bind_text(u, 5, collector);
    return step_done(st, u, "writing a host", err);
}

static int add_candidates(fdx_store *st, int64_t ev_id,
                          const fdx_store_evidence *ev, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_CAND_ADD];
    int rc;

    for (uint32_t k = 0; k < ev->ncand; k++) {
        const fdx_store_file *f = &ev->cand[k];

        sqlite3_bind_int64(s, 1, ev_id);
        sqlite3_bind_int(s, 2, (int)k);
        bind_text(s, 3, f->name);
        bind_text(s, 4, f->version);
        bind_text(s, 5, f->arch);
        bind_text(s, 6, f->suite);
        bind_text(s, 7, f->path);
        bind_u64(s, 8, f->size);
        if ((rc = step_done(st, s, "writing evidence", err)) < 0)
            return rc;
    }
    return 0;
}

static void bind_evidence(sqlite3_stmt *s, const fdx_store_evidence *ev,
                          const char *server)
{
    bind_u64(s, 2, ev->first_ms);
    bind_u64(s, 3, ev->last_ms);
    bind_text(s, 4, server);
    sqlite3_bind_int(s, 5, ev->server_port);
    sqlite3_bind_int(s, 6, ev->client_port);
    bind_u64(s, 7, ev->octets);
    bind_u64(s, 8, ev->packets);
    bind_u64(s, 9, ev->req_octets);
    bind_u64(s, 10, ev->req_packets);
    sqlite3_bind_int64(s, 11, ev->records);
    bind_text(s, 12, kind_name(ev->kind));
    bind_text(s, 13, ev->transport == FDX_TR_TLS ? "tls" : "http");
    sqlite3_bind_int(s, 14, ev->est_files);
    bind_u64(s, 15, ev->win_lo);
    bind_u64(s, 16, ev->win_hi);
    sqlite3_bind_int(s, 17, ev->path_lo);
    sqlite3_bind_int(s, 18, ev->path_hi);
    if (ev->ncand_total == 1 && ev->ncand == 1) {
        bind_text(s, 19, ev->cand[0].path);
        bind_u64(s, 20, ev->cand[0].size);
    }
    sqlite3_bind_int64(s, 21, ev->ncand_total);
}

/* Rewrites row id's match (and candidates) with ev's. */
static int evidence_refresh(fdx_store *st, int64_t id,
                            const fdx_store_evidence *ev, const char *server,
                            fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *u = be->stmt[S_EV_SET], *d = be->stmt[S_CAND_DEL];
    int rc;

    sqlite3_bind_int64(u, 1, id);
    bind_evidence(u, ev, server);
    if ((rc = step_done(st, u, "writing evidence", err)) < 0)
        return rc;
    sqlite3_bind_int64(d, 1, id);
    if ((rc = step_done(st, d, "writing evidence", err)) < 0)
        return rc;
    return add_candidates(st, id, ev, err);
}

/*
 * Adds one connection's evidence unless it is there already (the UNIQUE
 * key makes the insert a no-op); *id is its row either way.  With
 * refresh, a row there already gets ev's match.
 */
static int evidence_put(fdx_store *st, int64_t host,
                        const fdx_store_evidence *ev, const char *collector,
                        int refresh, int64_t *id, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *s = be->stmt[S_EV_ADD], *q = be->stmt[S_EV_ID];
    char server[FDX_ADDRSTRLEN];
    int rc;

    fdx_addr_format(&ev->server, server, sizeof(server));
    sqlite3_bind_int64(s, 1, host);
    bind_evidence(s, ev, server);
    bind_text(s, 22, collector);
    if ((rc = step_done(st, s, "writing evidence", err)) < 0)
        return rc;
    if (sqlite3_changes(be->db) == 1) {
        *id = sqlite3_last_insert_rowid(be->db);
        return add_candidates(st, *id, ev, err);
    }
    sqlite3_bind_int64(q, 1, host);
    bind_text(q, 2, server);
    sqlite3_bind_int(q, 3, ev->server_port);
    sqlite3_bind_int(q, 4, ev->client_port);
    bind_u64(q, 5, ev->first_ms);
    if ((rc = step_row(st, q, "reading evidence", err)) <= 0)
        return rc < 0 ? rc : db_error(st, SQLITE_CORRUPT, "evidence", err);
    *id = sqlite3_column_int64(q, 0);
    done_row(q);
    return refresh ? evidence_refresh(st, *id, ev, server, err) : 0;
}

static void bind_package(sqlite3_stmt *s, const fdx_store_package *p,
                         int64_t ev_id)
{
    bind_text(s, 2, p->file.version);
    bind_text(s, 3, p->file.suite);
    bind_text(s, 4, p->file.path);
    bind_u64(s, 5, p->file.size);
    sqlite3_bind_double(s, 6, p->confidence);
    if (ev_id > 0)
        sqlite3_bind_int64(s, 7, ev_id);
    else
        sqlite3_bind_null(s, 7);
    bind_u64(s, 8, p->first_seen_ms);
    bind_u64(s, 9, p->last_seen_ms);
}

static int package_insert(fdx_store *st, int64_t host,
                          const fdx_store_package *p, int64_t ev_id,
                          const char *collector, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_PKG_ADD];

    sqlite3_bind_int64(s, 1, host);
    bind_text(s, 2, p->file.name);
    bind_text(s, 3, p->file.version);
    bind_text(s, 4, p->file.arch);
    bind_text(s, 5, p->file.suite);
    bind_text(s, 6, p->file.path);
    bind_u64(s, 7, p->file.size);
    sqlite3_bind_double(s, 8, p->confidence);
    if (ev_id > 0)
        sqlite3_bind_int64(s, 9, ev_id);
    bind_u64(s, 10, p->first_seen_ms);
    bind_u64(s, 11, p->last_seen_ms);
    bind_text(s, 12, collector);
    return step_done(st, s, "writing a package", err);
}

/* Adds or replaces a package claim; a new version is history. */
static int package_put(fdx_store *st, int64_t host,
                       const fdx_store_package *p, int64_t ev_id,
                       const char *collector, uint64_t time_ms,
                       fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *q = be->stmt[S_PKG_GET], *u = be->stmt[S_PKG_SET];
    char old[256], key[256];
    int64_t id;
    int rc;

    sqlite3_bind_int64(q, 1, host);
    bind_text(q, 2, p->file.name);
    bind_text(q, 3, p->file.arch);
    if ((rc = step_row(st, q, "reading a package", err)) <= 0) {
        sqlite3_clear_bindings(q);
        return rc < 0 ? rc
                      : package_insert(st, host, p, ev_id, collector, err);
    }
    id = sqlite3_column_int64(q, 0);
    snprintf(old, sizeof(old), "%s", sqlite3_column_text(q, 1));
    done_row(q);
    sqlite3_bind_int64(u, 1, id);
    bind_package(u, p, ev_id);
    bind_text(u, 10, collector);
    if ((rc = step_done(st, u, "writing a package", err)) < 0)
        return rc;
    if (strcmp(old, p->file.version) == 0)
        return 0;
    snprintf(key, sizeof(key), "%s:%s", p->file.name, p->file.arch);
    return add_history(st, host, time_ms, "package", key, old,
                       p->file.version, collector, err);
}

/* ---------------------------------------------------------------- */
/* Reading                                                           */
/* ---------------------------------------------------------------- */

/* Column i as a string owned by h's pool (NULL stays NULL). */
static const char *col_text(fdx_store_host *h, sqlite3_stmt *s, int i,
                            int *failed)
{
    return fdx__pool_strdup(h, (const char *)sqlite3_column_text(s, i),
                            failed);
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
    return (uint64_t)sqlite3_column_int64(s, i);
}

/* Runs a count(*) of the host's rows. */
static int count_rows(fdx_store *st, int which, int64_t host, size_t *n,
                      fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[which];
    int rc;

    sqlite3_bind_int64(s, 1, host);
    if ((rc = step_row(st, s, "reading the store", err)) < 0)
        return rc;
    *n = rc > 0 ? (size_t)sqlite3_column_int64(s, 0) : 0;
    done_row(s);
    return 0;
}

static void *alloc_rows(fdx_store_host *h, size_t n, size_t elem)
{
    if (n == 0)
        return NULL;
    return n > SIZE_MAX / elem ? NULL : fdx__pool_alloc(h, n * elem);
}

static int read_file(fdx_store_host *h, sqlite3_stmt *s, int first,
                     fdx_store_file *f)
{
    int failed = 0;

    f->name = col_text(h, s, first, &failed);
    f->version = col_text(h, s, first + 1, &failed);
    f->arch = col_text(h, s, first + 2, &failed);
    f->suite = col_text(h, s, first + 3, &failed);
    f->path = col_text(h, s, first + 4, &failed);
    f->size = col_u64(s, first + 5);
    return failed ? FDX_ENOMEM : 0;
}

static int read_candidates(fdx_store *st, int64_t ev_id, uint32_t n,
                           fdx_store_host *h, fdx_store_evidence *ev,
                           fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_CAND_LIST];
    int rc = 0;

    if (n == 0)
        return 0;
    if ((ev->cand = alloc_rows(h, n, sizeof(*ev->cand))) == NULL)
        return FDX_ENOMEM;
    sqlite3_bind_int64(s, 1, ev_id);
    while (rc == 0 && ev->ncand < n &&
           (rc = step_row(st, s, "reading candidates", err)) > 0)
        rc = read_file(h, s, 0, &ev->cand[ev->ncand++]);
    done_row(s);
    return rc < 0 ? rc : 0;
}

static int parse_addr(fdx_store *st, const unsigned char *text,
                      fdx_addr *a, fdx_error *err)
{
    if (text != NULL && fdx_addr_parse(a, (const char *)text) == 0)
        return 0;
    return fdx_error_set(err, FDX_ECORRUPT, "%s: bad address '%s'",
                         st->uri, text ? (const char *)text : "");
}

/* One evidence row (EV_LIST's columns); *ev_id its row id. */
static int read_evidence_row(fdx_store *st, sqlite3_stmt *s,
                             fdx_store_host *h, fdx_store_evidence *ev,
                             int64_t *ev_id, fdx_error *err)
{
    int failed = 0, rc;

    *ev_id = sqlite3_column_int64(s, 0);
    ev->first_ms = col_u64(s, 1);
    ev->last_ms = col_u64(s, 2);
    if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
        ev->has_exporter = 1;
        if ((rc = parse_addr(st, sqlite3_column_text(s, 3), &ev->exporter,
                             err)) < 0)
            return rc;
    }
    if ((rc = parse_addr(st, sqlite3_column_text(s, 4), &ev->server,
                         err)) < 0)
        return rc;
    ev->server_port = (uint16_t)sqlite3_column_int(s, 5);
    ev->client_port = (uint16_t)sqlite3_column_int(s, 6);
    ev->octets = col_u64(s, 7);
    ev->packets = col_u64(s, 8);
    ev->req_octets = col_u64(s, 9);
    ev->req_packets = col_u64(s, 10);
    ev->records = (uint32_t)sqlite3_column_int64(s, 11);
    ev->kind = (uint8_t)kind_of((const char *)sqlite3_column_text(s, 12));
    ev->transport = strcmp((const char *)sqlite3_column_text(s, 13),
                           "tls") == 0 ? FDX_TR_TLS : FDX_TR_HTTP;
    ev->est_files = (uint8_t)sqlite3_column_int(s, 14);
    ev->win_lo = col_u64(s, 15);
    ev->win_hi = col_u64(s, 16);
    ev->path_lo = (uint16_t)sqlite3_column_int(s, 17);
    ev->path_hi = (uint16_t)sqlite3_column_int(s, 18);
    ev->ncand_total = (uint32_t)sqlite3_column_int64(s, 19);
    ev->collector = col_text(h, s, 20, &failed);
    ev->claimed = (uint8_t)sqlite3_column_int(s, 21);
    return failed ? FDX_ENOMEM : 0;
}

static int read_evidence(fdx_store *st, int64_t host, fdx_store_host *h,
                         int64_t *ids, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_EV_LIST];
    size_t n = h->nevidence;
    int rc = 0;

    h->nevidence = 0;
    sqlite3_bind_int64(s, 1, host);
    while (rc == 0 && h->nevidence < n &&
           (rc = step_row(st, s, "reading evidence", err)) > 0) {
        fdx_store_evidence *ev = &h->evidence[h->nevidence];
        uint32_t ncand = (uint32_t)sqlite3_column_int64(s, 22);

        rc = read_evidence_row(st, s, h, ev, &ids[h->nevidence], err);
        if (rc == 0)
            rc = read_candidates(st, ids[h->nevidence], ncand, h, ev, err);
        h->nevidence++;
    }
    done_row(s);
    return rc < 0 ? rc : 0;
}

/* The index of evidence row id among the host's, -1 if none. */
static int64_t evidence_index(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return (int64_t)i;
    return -1;
}

static int read_packages(fdx_store *st, int64_t host, fdx_store_host *h,
                         const int64_t *ev_ids, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_PKG_LIST];
    size_t n = h->npackages;
    int rc = 0, failed = 0;

    h->npackages = 0;
    sqlite3_bind_int64(s, 1, host);
    while (rc == 0 && h->npackages < n &&
           (rc = step_row(st, s, "reading packages", err)) > 0) {
        fdx_store_package *p = &h->packages[h->npackages++];

        rc = read_file(h, s, 0, &p->file);
        p->confidence = sqlite3_column_double(s, 6);
        p->time_ms = col_u64(s, 7);
        p->first_seen_ms = col_u64(s, 8);
        p->last_seen_ms = col_u64(s, 9);
        p->collector = col_text(h, s, 10, &failed);
        p->evidence = sqlite3_column_type(s, 11) == SQLITE_NULL
                          ? -1
                          : evidence_index(ev_ids, h->nevidence,
                                           sqlite3_column_int64(s, 11));
        if (failed)
            rc = FDX_ENOMEM;
    }
    done_row(s);
    return rc < 0 ? rc : 0;
}

static int read_history(fdx_store *st, int64_t host, fdx_store_host *h,
                        fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_HIST_LIST];
    size_t n = h->nhistory;
    int rc = 0, failed = 0;

    h->nhistory = 0;
    sqlite3_bind_int64(s, 1, host);
    while (rc == 0 && h->nhistory < n &&
           (rc = step_row(st, s, "reading history", err)) > 0) {
        fdx_store_change *c = &h->history[h->nhistory++];
        const char *what = (const char *)sqlite3_column_text(s, 1);

        c->time_ms = col_u64(s, 0);
        c->what = what != NULL && strcmp(what, "os") == 0
                      ? FDX_CHANGE_OS
                      : FDX_CHANGE_PACKAGE;
        c->name = col_text(h, s, 2, &failed);
        c->old_value = col_text(h, s, 3, &failed);
        c->new_value = col_text(h, s, 4, &failed);
        c->collector = col_text(h, s, 5, &failed);
        rc = failed ? FDX_ENOMEM : 0;
    }
    done_row(s);
    return rc < 0 ? rc : 0;
}

/* The host's own columns (HOSTS_ALL's). */
static int read_host_row(fdx_store *st, sqlite3_stmt *s, fdx_store_host *h,
                         fdx_error *err)
{
    int failed = 0, rc;

    if ((rc = parse_addr(st, sqlite3_column_text(s, 1), &h->addr, err)) < 0)
        return rc;
    h->first_seen_ms = col_u64(s, 2);
    h->last_seen_ms = col_u64(s, 3);
    h->os.known = sqlite3_column_type(s, 4) != SQLITE_NULL;
    h->os.family = col_text(h, s, 4, &failed);
    h->os.release = col_text(h, s, 5, &failed);
    h->os.codename = col_text(h, s, 6, &failed);
    h->os.arch = col_text(h, s, 7, &failed);
    h->os.confidence = sqlite3_column_double(s, 8);
    h->os.arch_confidence = sqlite3_column_double(s, 9);
    h->sampled_flows = col_u64(s, 10);
    h->collector = col_text(h, s, 11, &failed);
    return failed ? FDX_ENOMEM : 0;
}

/* Sizes the host's arrays from counts taken in the same snapshot. */
static int alloc_host(fdx_store *st, int64_t id, fdx_store_host *h,
                      int64_t **ev_ids, fdx_error *err)
{
    int rc;

    if ((rc = count_rows(st, S_COUNT_PKG, id, &h->npackages, err)) < 0 ||
        (rc = count_rows(st, S_COUNT_EV, id, &h->nevidence, err)) < 0 ||
        (rc = count_rows(st, S_COUNT_HIST, id, &h->nhistory, err)) < 0)
        return rc;
    h->packages = alloc_rows(h, h->npackages, sizeof(*h->packages));
    h->evidence = alloc_rows(h, h->nevidence, sizeof(*h->evidence));
    h->history = alloc_rows(h, h->nhistory, sizeof(*h->history));
    *ev_ids = alloc_rows(h, h->nevidence, sizeof(**ev_ids));
    if ((h->npackages > 0 && h->packages == NULL) ||
        (h->nevidence > 0 && (h->evidence == NULL || *ev_ids == NULL)) ||
        (h->nhistory > 0 && h->history == NULL))
        return FDX_ENOMEM;
    return 0;
}

static int read_host(fdx_store *st, sqlite3_stmt *s, fdx_store_host *h,
                     fdx_error *err)
{
    int64_t id = sqlite3_column_int64(s, 0), *ev_ids = NULL;
    int rc;

    memset(h, 0, sizeof(*h));
    if ((rc = read_host_row(st, s, h, err)) < 0 ||
        (rc = alloc_host(st, id, h, &ev_ids, err)) < 0 ||
        (rc = read_evidence(st, id, h, ev_ids, err)) < 0 ||
        (rc = read_packages(st, id, h, ev_ids, err)) < 0 ||
        (rc = read_history(st, id, h, err)) < 0) {
        if (rc == FDX_ENOMEM)
            fdx_error_set(err, rc, "%s: out of memory", st->uri);
        return rc;
    }
    return 0;
}

/* Walks the hosts (or the one host only) in one read snapshot. */
static int sqlite_each_host(fdx_store *st, const fdx_addr *only,
                            fdx__store_row_fn fn, void *ud, fdx_error *err)
{
    sqlite_be *be = be_of(st);
    sqlite3_stmt *s = be->stmt[only ? S_HOSTS_ONE : S_HOSTS_ALL];
    char addr[FDX_ADDRSTRLEN];
    int rc, n = 0;

    if ((rc = exec(st, "BEGIN", "reading the store", err)) < 0)
        return rc;
    if (only != NULL)
        bind_text(s, 1, fdx_addr_format(only, addr, sizeof(addr)));
    while ((rc = step_row(st, s, "reading hosts", err)) > 0) {
        fdx_store_host h;

        rc = read_host(st, s, &h, err);
        if (rc == 0 && (rc = fn(ud, &h)) == 0)
            n++;
        fdx_store_host_free(&h);
        if (rc != 0)
            break;
    }
    done_row(s);
    sqlite3_exec(be->db, "COMMIT", NULL, NULL, NULL);
    return rc < 0 ? rc : rc > 0 ? rc : n;
}

static int sqlite_stats(fdx_store *st, fdx_store_stats *out, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_STATS];
    int rc = step_row(st, s, "reading the store", err);

    if (rc <= 0)
        return rc;
    out->hosts = col_u64(s, 0);
    out->packages = col_u64(s, 1);
    out->evidence = col_u64(s, 2);
    out->history = col_u64(s, 3);
    done_row(s);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Collectors' scores and pruning                                    */
/* ---------------------------------------------------------------- */

static int sqlite_get_scores(fdx_store *st, const fdx_addr *addr,
                             const char *collector, fdx__store_text_fn fn,
                             void *ud, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_SCORES_GET];
    char a[FDX_ADDRSTRLEN];
    int rc;

    fdx_addr_format(addr, a, sizeof(a));
    bind_text(s, 1, a);
    bind_text(s, 2, collector ? collector : "");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(s, 0);

        if (text != NULL &&
            (rc = fn(ud, text, sqlite3_column_int(s, 1))) < 0) {
            done_row(s);
            return fdx_error_set(err, rc, "%s: out of memory", st->uri);
        }
    }
    done_row(s);
    return rc == SQLITE_DONE ? 0 : db_error(st, rc, "reading scores", err);
}

static int sqlite_put_scores(fdx_store *st, int64_t host,
                             const char *collector, const char *text,
                             uint64_t time_ms, fdx_error *err)
{
    sqlite3_stmt *s = be_of(st)->stmt[S_SCORES_PUT];

    sqlite3_bind_int64(s, 1, host);
    bind_text(s, 2, collector ? collector : "");
    bind_text(s, 3, text);
    bind_u64(s, 4, time_ms);
    return step_done(st, s, "writing scores", err);
}

/* Evidence that ended before before_ms goes, with its candidates; the
 * claims it backed stay, pointing at no evidence. */
static int sqlite_prune(fdx_store *st, uint64_t before_ms, uint64_t *removed,
                        fdx_error *err)
{
    static const int steps[] = {S_PRUNE_PKG, S_PRUNE_CAND, S_PRUNE_EV};
    sqlite_be *be = be_of(st);
    int rc = 0;

    for (size_t i = 0; i < 3 && rc == 0; i++) {
        sqlite3_stmt *s = be->stmt[steps[i]];

        bind_u64(s, 1, before_ms);
        rc = step_done(st, s, "pruning evidence", err);
    }
    if (rc == 0)
        *removed = (uint64_t)sqlite3_changes(be->db);
    return rc;
}

const fdx__store_ops fdx__store_sqlite = {
    "sqlite",
    sqlite_open,
    sqlite_close,
    sqlite_begin,
    sqlite_commit,
    sqlite_rollback,
    host_upsert,
    evidence_put,
    package_put,
    sqlite_each_host,
    sqlite_stats,
    sqlite_get_scores,
    sqlite_put_scores,
    sqlite_prune,
};
