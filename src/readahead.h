/*
 * Reading on a second thread: the records of the inputs are decoded on
 * one thread and handed, in batches and in their order, to the callback
 * on the calling thread, so that decoding and the scan overlap.
 */
#ifndef FLOWDEX_READAHEAD_H
#define FLOWDEX_READAHEAD_H

#include "flowdex/flow.h"

/* Reads everything, calling fn(fn_ud, flow) per record; returns a code. */
typedef int (*readahead_reader)(void *ud, fdx_flow_fn fn, void *fn_ud);

/*
 * Runs reader(reader_ud, ...) on a second thread and calls fn(ud, flow)
 * on this one for every record, in the order read.  Once fn returns
 * non-zero it is not called again, and the reader's callback returns
 * that value from then on (the reader stops as it would have without the
 * thread, a batch later).  *reader_rc gets the reader's return value.
 * Without a thread (pthread_create failed) the reader runs here, with fn.
 */
void readahead_run(readahead_reader reader, void *reader_ud, fdx_flow_fn fn,
                   void *ud, int *reader_rc);

#endif /* FLOWDEX_READAHEAD_H */
