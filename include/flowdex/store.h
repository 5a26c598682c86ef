/*
 * flowdex store: a durable inventory of hosts, their claims, the evidence
 * behind them and the history of what changed.
 *
 * A store is named by a URI: "sqlite:PATH" is a SQLite database (WAL
 * mode: one writer, readers at any time), "postgresql://..." a
 * PostgreSQL one (libpq's URI; in builds with libpq) that several
 * collectors may share.  The schema is versioned and
 * migrated when a store is opened for writing; it is described in
 * flowdex-store(5).  Scan results are written with fdx_store_put_hosts()
 * and read back as fdx_store_host records, whose strings are resolved
 * (no catalog is needed to read a store).
 */
#ifndef FLOWDEX_STORE_H
#define FLOWDEX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/catalog.h"
#include "flowdex/common.h"
#include "flowdex/error.h"
#include "flowdex/scan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this library writes (see flowdex-store(5)). */
#define FDX_STORE_SCHEMA_VERSION 4

typedef struct fdx_store fdx_store;

/* Options of fdx_store_open(), copied; *log must outlive the store. */
typedef struct fdx_store_opts {
    const fdx_logger *log;
    int read_only;             /* no creation, no migration, no writes */
    uint32_t busy_timeout_ms;  /* wait for another writer; 0: 5000 */
    /* Non-zero for a collector, whose hosts' scores are running sums
     * of one process's evidence: the sums this collector's name wrote
     * before (an earlier run of it) are added to them, so that a
     * restart loses nothing.  Zero (a scan): the writer's scores replace
     * its old ones, and writing the same scan twice counts it once. */
    int accumulate_scores;
} fdx_store_opts;

/* A catalog file, resolved to its strings. */
typedef struct fdx_store_file {
    const char *name;      /* package name, or the path of an index file */
    const char *version;
    const char *arch;
    const char *suite;     /* codename of the origin ("bookworm-security") */
    const char *path;
    uint64_t size;
} fdx_store_file;

typedef struct fdx_store_os {
    int known;             /* 0: no claim, the other fields are unset */
    const char *family;
    const char *release;
    const char *codename;
    const char *arch;      /* NULL when unknown */
    double confidence;
    double arch_confidence;
} fdx_store_os;

typedef struct fdx_store_package {
    fdx_store_file file;
    double confidence;
    uint64_t time_ms;          /* start of the download behind the claim */
    uint64_t first_seen_ms, last_seen_ms;
    int64_t evidence;          /* index into the host's evidence, -1 none */
    const char *collector;     /* NULL when written without one */
} fdx_store_package;

typedef struct fdx_store_evidence {
    uint64_t first_ms, last_ms;
    int has_exporter;
    fdx_addr exporter;
    fdx_addr server;
    uint16_t server_port, client_port;
    uint64_t octets, packets;          /* server to client */
    uint64_t req_octets, req_packets;  /* client to server */
    uint32_t records;
    uint8_t kind;                      /* enum fdx_evidence_kind */
    uint8_t transport;                 /* enum fdx_transport */
    uint8_t est_files;
    uint8_t claimed;                   /* a package claim rests on it */
    uint64_t win_lo, win_hi;
    uint16_t path_lo, path_hi;
    uint32_t ncand, ncand_total;
    fdx_store_file *cand;              /* ncand of them */
    const char *collector;
} fdx_store_evidence;

enum fdx_store_change_kind {
    FDX_CHANGE_OS = 1,        /* old/new: "family release codename arch" */
    FDX_CHANGE_PACKAGE = 2    /* name: "package:arch", old/new: versions */
};

typedef struct fdx_store_change {
    uint64_t time_ms;
    uint8_t what;              /* enum fdx_store_change_kind */
    const char *name;          /* NULL for an OS change */
    const char *old_value;
    const char *new_value;
    const char *collector;
} fdx_store_change;

/*
 * One host as the store (or a resolved scan result) has it.  Packages
 * are in the order of their downloads, evidence by start time, history
 * oldest first.  Everything is owned by the record: free it with
 * fdx_store_host_free().
 */
typedef struct fdx_store_host {
    fdx_addr addr;
    uint64_t first_seen_ms, last_seen_ms;
    fdx_store_os os;
    fdx_store_package *packages;
    size_t npackages;
    fdx_store_evidence *evidence;
    size_t nevidence;
    fdx_store_change *history;
    size_t nhistory;
    uint64_t sampled_flows;
    const char *collector;     /* the last collector that wrote it */
    /* the writer's OS scores, merged with the other collectors' when
     * written (fdx_os_merge()); not read back */
    const fdx_os_score *scores;
    size_t nscores;
    struct fdx__pool *pool;    /* private: strings read from a store */
} fdx_store_host;

/*
 * Resolves one scan result against its catalog into *out (strings point
 * into the catalog, which must outlive the record; times are taken from
 * the evidence).  Returns 0 or FDX_ENOMEM (*out then holds nothing to
 * free).  Free with fdx_store_host_free().
 */
int fdx_store_host_resolve(const fdx_catalog *cat, const fdx_host *h,
                           fdx_store_host *out);

/* Frees what a record holds (not the record itself); NULL is a no-op. */
void fdx_store_host_free(fdx_store_host *h);

/*
 * Opens (and, unless read-only, creates and migrates) the store named by
 * uri.  Returns 0 and sets *out, or FDX_EUSAGE (unknown scheme),
 * FDX_EUNSUPPORTED (a scheme this build lacks), FDX_ENOENT / FDX_EACCES
 * (cannot be opened), FDX_ECORRUPT (not a store, or damaged),
 * FDX_EVERSION (a schema newer than this library, or older in a
 * read-only open) or FDX_EIO, with err naming the store.  Close with
 * fdx_store_close().
 */
int fdx_store_open(const char *uri, const fdx_store_opts *opts,
                   fdx_store **out, fdx_error *err);
void fdx_store_close(fdx_store *st);

/* The store's URI as given to fdx_store_open(). */
const char *fdx_store_uri(const fdx_store *st);

/* The schema version of the open store. */
int fdx_store_schema_version(const fdx_store *st);

/*
 * Writes the hosts of a finished scan in one transaction: all of them or,
 * on any failure, none.  Per host: the OS claim is replaced when it
 * differs (with a history row when one was known before); a package
 * claim (keyed by name and architecture) is added, or replaced with a
 * history row when its version changed; packages not in the new claims
 * are kept.  Evidence is added once per connection (client, server,
 * ports, start time): writing the same scan twice changes nothing but
 * last_seen.  collector may be NULL.  Returns 0 or FDX_ENOMEM, FDX_EIO
 * (write failure, store full or read-only), FDX_EUSAGE (read-only open).
 */
int fdx_store_put_hosts(fdx_store *st, const fdx_catalog *cat,
                        const fdx_host *hosts, size_t n,
                        const char *collector, fdx_error *err);

/* The same for every host of a finished scan. */
int fdx_store_put_scan(fdx_store *st, const fdx_catalog *cat,
                       const fdx_scan *scan, const char *collector,
                       fdx_error *err);

/*
 * Calls fn for every host in address order; the record is only valid
 * during the call.  fn returns 0 to go on, non-zero to stop (returned
 * as is).  Returns the number of hosts, or a negative FDX_E* code.
 */
typedef int (*fdx_store_host_fn)(void *ud, const fdx_store_host *h);

int fdx_store_each_host(fdx_store *st, fdx_store_host_fn fn, void *ud,
                        fdx_error *err);

/*
 * Reads one host into *out (free with fdx_store_host_free()).  Returns
 * 0, FDX_ENOTFOUND or another negative code.
 */
int fdx_store_get_host(fdx_store *st, const fdx_addr *addr,
                       fdx_store_host *out, fdx_error *err);

/*
 * Removes the evidence whose connection ended before before_ms (and its
 * candidates) in one transaction; the claims it backed are kept, with
 * no evidence.  *removed: the evidence rows removed.  Returns 0,
 * FDX_EUSAGE (read-only open) or FDX_EIO.
 */
int fdx_store_prune(fdx_store *st, uint64_t before_ms, uint64_t *removed,
                    fdx_error *err);

/*
 * For an accumulating store (fdx_store_opts.accumulate_scores): the
 * writer's running sums start again from zero (its engine was reset),
 * so what it wrote so far becomes the base of the new sums.
 */
void fdx_store_rebase(fdx_store *st);

/* Counts of what the store holds. */
typedef struct fdx_store_stats {
    uint64_t hosts, packages, evidence, history;
} fdx_store_stats;

int fdx_store_get_stats(fdx_store *st, fdx_store_stats *out, fdx_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_STORE_H */
