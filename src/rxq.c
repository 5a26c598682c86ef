/*
 * The receive thread and its ring (rxq.h).
 *
 * The ring is one byte array with two running offsets: head, written by
 * the receive thread only, and tail, by the main thread only; each
 * publishes its own with a release store and reads the other's with an
 * acquire load.  An entry is a header and the datagram, padded to 8
 * bytes, never split over the end: when one does not fit before the end,
 * a wrap marker sends the reader back to the start.  A full ring drops
 * the datagram and counts it, as a full socket buffer would.  The
 * writer also wraps early when it finds the ring empty past its first
 * MiB and the reader waiting for it (rxq_idle()): the ring is mapped
 * whole but its pages are touched only as deep as the backlog ever got,
 * so a large queue costs resident memory only after a burst that needed
 * it.  (A reader busy elsewhere would leave the skipped end counted as
 * held until it came back, and the writer short of room.)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sock_diag.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rxq.h"
#include "udp.h"

#define RXQ_BATCH 64            /* datagrams per recvmmsg() */
#define RXQ_DGRAM_MAX 65535
#define RXQ_WRAP UINT32_MAX     /* header len of the wrap marker */
#define RXQ_RING_MIN (1u << 20)
#define RXQ_EARLY_WRAP (1u << 20)

typedef struct rxq_hdr {
    uint32_t len;
    uint16_t port, sock;
    fdx_addr sender;
} rxq_hdr;

typedef struct rxq_sock {
    int fd;
    _Atomic uint64_t datagrams, queue_drops, kernel_drops;
} rxq_sock;

struct rxq {
    uint8_t *ring;
    size_t cap;                 /* a multiple of 8 */
    _Atomic uint64_t head, tail;
    _Atomic uint64_t held;      /* bytes of the entries in the ring */
    _Atomic uint64_t peak;      /* most held at once */
    _Atomic int idle;           /* the reader waits for datagrams */
    _Atomic int wrapping;       /* the writer may be wrapping early */
    uint64_t taken;             /* bytes the item taken spans */

    rxq_sock socks[RXQ_SOCKETS_MAX];
    size_t nsocks;
    int wake_fd, stop_fd;
    pthread_t thread;
    int running;                /* the thread was started, not joined */

    /* the receive thread's batch buffers */
    struct mmsghdr msgs[RXQ_BATCH];
    struct iovec iov[RXQ_BATCH];
    struct sockaddr_storage from[RXQ_BATCH];
    union {
        struct cmsghdr align;
        uint8_t b[CMSG_SPACE(sizeof(uint32_t))];
    } ctl[RXQ_BATCH];
    uint8_t *bufs;              /* RXQ_BATCH * RXQ_DGRAM_MAX */
};

static size_t entry_size(size_t len)
{
    return (sizeof(rxq_hdr) + len + 7) & ~(size_t)7;
}

/* Receive thread: appends one datagram, or counts it dropped. */
static void ring_put(rxq *q, rxq_sock *s, uint16_t sock,
                     const struct sockaddr_storage *from,
                     const uint8_t *data, size_t len)
{
    uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    size_t pos = (size_t)(head % q->cap), sz = entry_size(len);
    size_t to_end = q->cap - pos;
    /* an empty ring starts over at the front, so that only as many of
     * its pages are touched as the deepest backlog needed; only while
     * the reader waits, for until it passes the marker the space
     * skipped counts as held */
    int wrap = sz > to_end, early = 0;
    size_t need;
    uint64_t held;
    rxq_hdr h;

    /* Said before idle is read, both sequentially consistent: either
     * the reader, waking, sees wrapping and waits until the marker is
     * published (rxq_idle()), or this sees the reader awake. */
    if (!wrap && head == tail && pos >= RXQ_EARLY_WRAP && pos >= sz) {
        atomic_store(&q->wrapping, 1);
        if (atomic_load(&q->idle))
            wrap = early = 1;
        else
            atomic_store(&q->wrapping, 0);
    }
    need = wrap ? to_end + sz : sz;
    if (need > q->cap - (size_t)(head - tail)) {
        if (early)
            atomic_store(&q->wrapping, 0);
        atomic_fetch_add_explicit(&s->queue_drops, 1, memory_order_relaxed);
        return;
    }
    if (wrap) {                 /* to_end >= 8: room for the marker */
        uint32_t marker = RXQ_WRAP;

        memcpy(q->ring + pos, &marker, sizeof(marker));
        head += to_end;
        pos = 0;
    }
    memset(&h, 0, sizeof(h));
    h.len = (uint32_t)len;
    h.sock = sock;
    udp_sender(from, &h.sender, &h.port);
    memcpy(q->ring + pos, &h, sizeof(h));
    memcpy(q->ring + pos + sizeof(h), data, len);
    held = atomic_fetch_add_explicit(&q->held, sz, memory_order_relaxed) +
           sz;
    atomic_store_explicit(&q->head, head + sz, memory_order_release);
    if (early)
        atomic_store(&q->wrapping, 0);
    if (held > atomic_load_explicit(&q->peak, memory_order_relaxed))
        atomic_store_explicit(&q->peak, held, memory_order_relaxed);
}

/* The socket's drop counter, when the kernel attached one. */
static void note_drops(rxq_sock *s, struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL;
         c = CMSG_NXTHDR(m, c)) {
        uint32_t d;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
            continue;
        memcpy(&d, CMSG_DATA(c), sizeof(d));
        /* a running total of the socket's drops */
        if (d > atomic_load_explicit(&s->kernel_drops,
                                     memory_order_relaxed))
            atomic_store_explicit(&s->kernel_drops, d,
                                  memory_order_relaxed);
    }
}

/* Receive thread: one recvmmsg() of socket i; returns the count read. */
static int read_batch(rxq *q, size_t i)
{
    rxq_sock *s = &q->socks[i];
    int n;

    for (int k = 0; k < RXQ_BATCH; k++) {
        struct msghdr *m = &q->msgs[k].msg_hdr;

        q->iov[k].iov_base = q->bufs + (size_t)k * RXQ_DGRAM_MAX;
        q->iov[k].iov_len = RXQ_DGRAM_MAX;
        memset(m, 0, sizeof(*m));
        m->msg_name = &q->from[k];
        m->msg_namelen = sizeof(q->from[k]);
        m->msg_iov = &q->iov[k];
        m->msg_iovlen = 1;
        m->msg_control = q->ctl[k].b;
        m->msg_controllen = sizeof(q->ctl[k].b);
    }
    n = recvmmsg(s->fd, q->msgs, RXQ_BATCH, MSG_DONTWAIT, NULL);
    for (int k = 0; k < n; k++) {
        note_drops(s, &q->msgs[k].msg_hdr);
        ring_put(q, s, (uint16_t)i, &q->from[k], q->iov[k].iov_base,
                 q->msgs[k].msg_len);
    }
    if (n > 0)
        atomic_fetch_add_explicit(&s->datagrams, (uint64_t)n,
                                  memory_order_relaxed);
    return n;
}

/* Receive thread: wakes the main thread once per pass that read. */
static void wake(rxq *q)
{
    uint64_t one = 1;

    while (write(q->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Receive thread: a few batches of socket i, to let the others in. */
static int drain(rxq *q, size_t i)
{
    int n, got = 0;

    for (int b = 0; b < 16; b++) {
        if ((n = read_batch(q, i)) > 0)
            got = 1;
        if (n < RXQ_BATCH)
            break;
    }
    return got;
}

static void *rx_main(void *arg)
{
    rxq *q = arg;
    struct pollfd pfd[RXQ_SOCKETS_MAX + 1];

    for (size_t i = 0; i < q->nsocks; i++)
        pfd[i] = (struct pollfd){q->socks[i].fd, POLLIN, 0};
    pfd[q->nsocks] = (struct pollfd){q->stop_fd, POLLIN, 0};
    for (;;) {
        int got = 0;

        if (poll(pfd, q->nsocks + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[q->nsocks].revents != 0)
            break;
        /* POLLERR too: the read takes the error off the socket */
        for (size_t i = 0; i < q->nsocks; i++)
            if (pfd[i].revents != 0)
                got |= drain(q, i);
        if (got)
            wake(q);
    }
    return NULL;
}

/* The thread takes no signal: the main thread waits for them in
 * ppoll() and must be the one they wake. */
static int spawn(rxq *q)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&q->thread, NULL, rx_main, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void rxq_destroy(rxq *q)
{
    if (q->wake_fd >= 0)
        close(q->wake_fd);
    if (q->stop_fd >= 0)
        close(q->stop_fd);
    free(q->bufs);
    if (q->ring != NULL)
        munmap(q->ring, q->cap);
    free(q);
}

int rxq_start(rxq **out, const int *fds, size_t nfds, size_t ring_bytes)
{
    rxq *q = calloc(1, sizeof(*q));

    *out = NULL;
    if (q == NULL)
        return FDX_ENOMEM;
    q->wake_fd = q->stop_fd = -1;
    if (nfds > RXQ_SOCKETS_MAX)
        nfds = RXQ_SOCKETS_MAX;
    for (size_t i = 0; i < nfds; i++)
        q->socks[i].fd = fds[i];
    q->nsocks = nfds;
    q->cap = (ring_bytes < RXQ_RING_MIN ? RXQ_RING_MIN : ring_bytes) &
             ~(size_t)7;
    /* mapped, not malloc()ed: no allocator (or MALLOC_PERTURB_) touches
     * the pages before the ring needs them */
    q->ring = mmap(NULL, q->cap, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (q->ring == MAP_FAILED)
        q->ring = NULL;
    q->bufs = malloc((size_t)RXQ_BATCH * RXQ_DGRAM_MAX);
    if (q->ring == NULL || q->bufs == NULL) {
        rxq_destroy(q);
        return FDX_ENOMEM;
    }
    q->running = 1;
    q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->wake_fd < 0 || q->stop_fd < 0 || spawn(q) != 0) {
        q->running = 0;
        rxq_destroy(q);
        return FDX_EIO;
    }
    *out = q;
    return 0;
}

void rxq_stop(rxq *q)
{
    uint64_t one = 1;

    if (q == NULL || !q->running)
        return;
    while (write(q->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(q->thread, NULL);
    q->running = 0;
}

void rxq_free(rxq *q)
{
    if (q == NULL)
        return;
    rxq_stop(q);
    rxq_destroy(q);
}

int rxq_wake_fd(const rxq *q)
{
    return q->wake_fd;
}

void rxq_wake_clear(rxq *q)
{
    uint64_t v;

    (void)!read(q->wake_fd, &v, sizeof(v));
}

int rxq_take(rxq *q, rxq_item *it)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t pos;
    rxq_hdr h;

    if (tail == head)
        return 0;
    pos = (size_t)(tail % q->cap);
    memcpy(&h, q->ring + pos, sizeof(h.len));
    if (h.len == RXQ_WRAP) {    /* the entry is at the start */
        tail += q->cap - pos;
        atomic_store_explicit(&q->tail, tail, memory_order_release);
        pos = 0;
    }
    memcpy(&h, q->ring + pos, sizeof(h));
    it->sender = h.sender;
    it->port = h.port;
    it->sock = h.sock;
    it->len = h.len;
    it->data = q->ring + pos + sizeof(h);
    q->taken = entry_size(h.len);
    return 1;
}

void rxq_release(rxq *q)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);

    atomic_fetch_sub_explicit(&q->held, q->taken, memory_order_relaxed);
    atomic_store_explicit(&q->tail, tail + q->taken, memory_order_release);
    q->taken = 0;
}

void rxq_idle(rxq *q, int idle)
{
    atomic_store(&q->idle, idle != 0);
    /* an early wrap begun while this waited is finished before the
     * reader looks: a memcpy of one datagram */
    while (!idle && atomic_load(&q->wrapping))
        sched_yield();
}

void rxq_get_depth(const rxq *q, rxq_depth *out)
{
    rxq *m = (rxq *)q;

    out->size = q->cap;
    out->bytes = atomic_load_explicit(&m->held, memory_order_relaxed);
    out->peak = atomic_load_explicit(&m->peak, memory_order_relaxed);
}

void rxq_get_counters(const rxq *q, size_t i, rxq_counters *out)
{
    rxq_sock *s = (rxq_sock *)&q->socks[i];

    out->datagrams = atomic_load_explicit(&s->datagrams,
                                          memory_order_relaxed);
    out->queue_drops = atomic_load_explicit(&s->queue_drops,
                                            memory_order_relaxed);
    out->kernel_drops = atomic_load_explicit(&s->kernel_drops,
                                             memory_order_relaxed);
    /* SO_RXQ_OVFL comes with a datagram read: drops after the last one
     * read show only in the socket's own counter */
    {
        uint32_t mem[SK_MEMINFO_VARS];
        socklen_t len = sizeof(mem);

        if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
            len > SK_MEMINFO_DROPS * sizeof(mem[0]) &&
            mem[SK_MEMINFO_DROPS] > out->kernel_drops)
            out->kernel_drops = mem[SK_MEMINFO_DROPS];
    }
}
