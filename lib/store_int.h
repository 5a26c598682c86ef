/*
 * Private interface between the store front end (store.c) and its
 * backends.  A backend fills in one fdx__store_ops table; the front end
 * parses the URI, runs the transaction around a batch and resolves scan
 * results, so a backend only maps records to its tables.
 */
#ifndef FLOWDEX_STORE_INT_H
#define FLOWDEX_STORE_INT_H

#include "flowdex/store.h"

/* Given each host read; may take the record over by moving it out and
 * zeroing *h (the backend frees what is left in *h after the call). */
typedef int (*fdx__store_row_fn)(void *ud, fdx_store_host *h);

/* Given each score text read, own set for the writer's own row;
 * returns 0 or a negative code to stop. */
typedef int (*fdx__store_text_fn)(void *ud, const char *text, int own);

typedef struct fdx__store_ops {
    const char *scheme;        /* "sqlite", for messages */
    /* target: the URI without "scheme:" (sqlite) or the whole URI */
    int (*open)(fdx_store *st, const char *target, fdx_error *err);
    void (*close)(fdx_store *st);
    int (*begin)(fdx_store *st, fdx_error *err);
    int (*commit)(fdx_store *st, fdx_error *err);
    void (*rollback)(fdx_store *st);
    /* The rows of one host, called between begin and commit by
     * store.c's writer, which walks the host's evidence and packages:
     * the host row (its id in *id), one evidence row (id in *id; the
     * same connection again gives the existing row, whose match --
     * kind, windows, file, candidates -- is rewritten when refresh is
     * set), one package row (ev_id: the evidence row backing it, 0 if
     * none). */
    int (*put_host_row)(fdx_store *st, const fdx_store_host *h,
                        const char *collector, int64_t *id, fdx_error *err);
    int (*put_evidence)(fdx_store *st, int64_t host,
                        const fdx_store_evidence *ev, const char *collector,
                        int refresh, int64_t *id, fdx_error *err);
    int (*put_package)(fdx_store *st, int64_t host,
                       const fdx_store_package *p, int64_t ev_id,
                       const char *collector, uint64_t time_ms,
                       fdx_error *err);
    int (*each_host)(fdx_store *st, const fdx_addr *only,
                     fdx__store_row_fn fn, void *ud, fdx_error *err);
    int (*stats)(fdx_store *st, fdx_store_stats *out, fdx_error *err);
    /* The OS scores of the host at addr, one text per collector (see
     * store.c for its form), own set for collector's (NULL: written
     * without one); then this collector's, replacing its old. */
    int (*get_scores)(fdx_store *st, const fdx_addr *addr,
                      const char *collector, fdx__store_text_fn fn, void *ud,
                      fdx_error *err);
    int (*put_scores)(fdx_store *st, int64_t host, const char *collector,
                      const char *text, uint64_t time_ms, fdx_error *err);
    /* Removes the evidence that ended before before_ms (between begin
     * and commit); *removed: how many rows. */
    int (*prune)(fdx_store *st, uint64_t before_ms, uint64_t *removed,
                 fdx_error *err);
} fdx__store_ops;

struct fdx_store {
    const fdx__store_ops *ops;
    void *be;                  /* the backend's handle */
    char *uri;
    fdx_store_opts opts;
    int schema_version;
    /* fingerprints of the evidence rows this handle has committed, an
     * open-addressing set (0: empty slot), and those of the batch in
     * progress (store.c) */
    uint64_t *ev_seen;
    size_t ev_cap, ev_n;
    uint64_t *ev_pend;
    size_t ev_npend, ev_pcap;
    /* accumulate_scores: per host, what this writer's name had written
     * when this handle first wrote the host (store.c) */
    struct fdx__base *base;
    size_t base_cap, base_n;
};

extern const fdx__store_ops fdx__store_sqlite;
extern const fdx__store_ops fdx__store_postgresql;  /* with libpq only */

/* Strings owned by a record read from a store. */
struct fdx__pool;

/* Copies s (NULL stays NULL) into h's pool; NULL with *failed set if no
 * memory. */
const char *fdx__pool_strdup(fdx_store_host *h, const char *s, int *failed);

/* Allocates n zeroed bytes owned by h's pool; NULL if no memory. */
void *fdx__pool_alloc(fdx_store_host *h, size_t n);

#endif /* FLOWDEX_STORE_INT_H */
