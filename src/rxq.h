/*
 * The collector's receive thread and its queue.  One thread reads every
 * listening socket with recvmmsg() into a byte ring; the collector's
 * main thread takes the datagrams from the ring, in the order read, and
 * does everything else (decoding, the stream, commits).  So a commit
 * that takes seconds, or a burst faster than the matcher, leaves no
 * socket unread: the datagrams wait in the ring (queue-size, 256 MiB by
 * default) instead of overflowing the kernel's buffer, and the main
 * thread catches up after.  One producer, one consumer, no locks.
 */
#ifndef FLOWDEX_RXQ_H
#define FLOWDEX_RXQ_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/common.h"

#define RXQ_SOCKETS_MAX 16

typedef struct rxq rxq;

/* One datagram taken from the ring; data stays valid until
 * rxq_release(). */
typedef struct rxq_item {
    fdx_addr sender;
    uint16_t port;
    uint16_t sock;              /* index into the fds given to start */
    uint32_t len;
    const uint8_t *data;
} rxq_item;

/* Counters of one socket, as the receive thread last updated them. */
typedef struct rxq_counters {
    uint64_t datagrams;         /* read from the socket */
    uint64_t queue_drops;       /* read, but the ring was full */
    uint64_t kernel_drops;      /* SO_RXQ_OVFL: the socket buffer was */
} rxq_counters;

/*
 * Starts the receive thread over fds[0..nfds) (non-blocking UDP sockets,
 * which stay the caller's to close after rxq_stop()) with a ring of
 * about ring_bytes (at least 1 MiB).  Returns 0 and *out, or
 * FDX_ENOMEM / FDX_EIO (no thread or eventfd).
 */
int rxq_start(rxq **out, const int *fds, size_t nfds, size_t ring_bytes);

/* Stops and joins the thread; what the ring holds can still be taken.
 * rxq_free() stops it too and frees q; both take NULL. */
void rxq_stop(rxq *q);
void rxq_free(rxq *q);

/* A descriptor that polls readable when datagrams may be waiting.
 * Call rxq_wake_clear() before taking them, so none is missed. */
int rxq_wake_fd(const rxq *q);
void rxq_wake_clear(rxq *q);

/* The oldest datagram: 1 with *it filled, or 0 when the ring is empty.
 * Each item taken must be given back with rxq_release() before the next
 * rxq_take(). */
int rxq_take(rxq *q, rxq_item *it);
void rxq_release(rxq *q);

/* The reader says it is about to wait on the wake descriptor (1) with
 * nothing left to take, or has woken (0). */
void rxq_idle(rxq *q, int idle);

/* How full the ring is, in bytes (headers and padding included). */
typedef struct rxq_depth {
    uint64_t size;              /* the ring's capacity */
    uint64_t bytes;             /* held now */
    uint64_t peak;              /* most held at once since the start */
} rxq_depth;

void rxq_get_depth(const rxq *q, rxq_depth *out);

/* Counters of socket i (an index into the fds given to start). */
void rxq_get_counters(const rxq *q, size_t i, rxq_counters *out);

#endif /* FLOWDEX_RXQ_H */
