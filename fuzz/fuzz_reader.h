/*
 * The body shared by fuzz_nfcapd and fuzz_capture: the input is the whole
 * file.  Which inputs also ask the reader to stop early, with which
 * limits and where the library runs out of memory, is told from the
 * input's size so the file bytes stay the file.
 */
#ifndef FDX_FUZZ_READER_H
#define FDX_FUZZ_READER_H

#include <string.h>

#include "fuzz.h"

typedef int (*fuzz_reader_fn)(const char *path, const fdx_read_opts *opts,
                              fdx_flow_fn fn, void *ud,
                              fdx_read_stats *stats, fdx_error *err);

static int fuzz_reader(fuzz_reader_fn read, const uint8_t *data,
                       size_t size)
{
    static const fdx_nf_limits tiny = { 2, 3, 12, 256, 1024, 0, 0 };
    fuzz_flows ff = { 0, 0, 0 };
    fdx_read_opts opts = { &fuzz_logger, NULL, NULL, NULL };
    fdx_read_stats st;
    fdx_error err;
    const char *path = fuzz_file(data, size);
    int rc;

    memset(&st, 0, sizeof(st));
    memset(&err, 0, sizeof(err));
    if ((size & 0x60) == 0x60)
        ff.stop_after = 1 + (size & 0x1f);
    if ((size & 0x180) == 0x180)
        opts.limits = &tiny;
    fuzz_fail_alloc_by_size(size);
    fuzz_dirty_stack();
    rc = read(path, &opts, fuzz_flow_cb, &ff, &st, &err);
    fuzz_check_read(rc, &err, &ff, &st);
    return 0;
}

#endif /* FDX_FUZZ_READER_H */
