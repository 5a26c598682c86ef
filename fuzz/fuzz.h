/*
 * Shared pieces of the fuzz targets: the libFuzzer entry point, the memory
 * file the file readers are pointed at, and the record callback that reads
 * every field of each fdx_flow and checks what flow.h promises about it.
 * A broken promise aborts, so the fuzzer reports it like a crash.
 */
#ifndef FDX_FUZZ_H
#define FDX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/flowdex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message on stderr: an invariant of the API was broken. */
void fuzz_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

/*
 * Replaces the content of the process's memory file with data[0..size)
 * and returns a path that opens it (/proc/self/fd/N, or a temporary file
 * when memfd_create() is missing).  Aborts when that fails.
 */
const char *fuzz_file(const uint8_t *data, size_t size);

/*
 * Makes the library's n-th allocation from now, and every one after it,
 * fail (n counts from 1); n = 0 lets every allocation succeed.  Installs
 * the counting allocator hooks on first use.
 */
void fuzz_fail_alloc(unsigned n);

/* Picks the allocation failure (or none) for a whole-file input from its
 * size, so that about one input in eleven runs out of memory somewhere. */
void fuzz_fail_alloc_by_size(size_t size);

/*
 * Fills the stack below the caller with 0xA5 bytes, so that a local the
 * library reads before setting holds the same garbage on every run (a
 * pointer of 0xA5A5... faults when used or freed) instead of whatever
 * the previous input left there.  Call it right before each entry point.
 */
void fuzz_dirty_stack(void);

/* A logger that formats every message and reads the line it gets. */
extern const fdx_logger fuzz_logger;

/* Counts records and asks the reader to stop after stop_after of them. */
typedef struct fuzz_flows {
    uint64_t calls;
    uint64_t stop_after;      /* 0: never stop */
    int stopped;
} fuzz_flows;

#define FUZZ_STOP_RC 77

/* fdx_flow_fn: reads every field of *f; ud is a fuzz_flows. */
int fuzz_flow_cb(void *ud, const fdx_flow *f);

/* Checks a reader's return value against its contract in flow.h. */
void fuzz_check_read(int rc, const fdx_error *err, const fuzz_flows *ff,
                     const fdx_read_stats *st);

#endif /* FDX_FUZZ_H */
