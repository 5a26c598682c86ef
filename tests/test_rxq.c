/*
 * The collector's receive queue (src/rxq.c): datagrams come out whole,
 * in order and counted, through wraps at the ring's end and the early
 * wraps of an empty ring, with the reader sometimes far behind; a full
 * ring drops and counts; the depth and peak are what was held.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rxq.h"
#include "udp.h"

#define RING (4u << 20)

typedef struct pair {
    int rx, tx;
    struct sockaddr_in to;
} pair;

static void pair_open(pair *p)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    socklen_t len = sizeof(p->to);
    int granted = 0;

    memset(&ss, 0, sizeof(ss));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in->sin_port = 0;           /* any free port */
    p->rx = udp_open(&ss, sizeof(*in), 8 << 20, &granted);
    assert_true(p->rx >= 0);
    assert_int_equal(getsockname(p->rx, (struct sockaddr *)&p->to, &len), 0);
    p->tx = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(p->tx >= 0);
}

static void pair_close(pair *p)
{
    close(p->rx);
    close(p->tx);
}

/* Datagram i: its number, then bytes that follow from it. */
static size_t dgram_make(uint32_t i, uint8_t *buf)
{
    size_t len = 8 + (size_t)(i * 2654435761u % 9000);

    memcpy(buf, &i, sizeof(i));
    for (size_t k = 4; k < len; k++)
        buf[k] = (uint8_t)(i * 31 + k);
    return len;
}

static void dgram_check(uint32_t want, const rxq_item *it)
{
    uint8_t buf[9100];
    size_t len = dgram_make(want, buf);

    assert_int_equal(it->len, len);
    assert_memory_equal(it->data, buf, len);
}

static void send_one(pair *p, uint32_t i)
{
    uint8_t buf[9100];
    size_t len = dgram_make(i, buf);

    assert_int_equal(sendto(p->tx, buf, len, 0, (struct sockaddr *)&p->to,
                            sizeof(p->to)), (ssize_t)len);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* Takes what is queued, checking each against the next number. */
static uint32_t take_all(rxq *q, uint32_t next)
{
    rxq_item it;

    while (rxq_take(q, &it)) {
        dgram_check(next++, &it);
        rxq_release(q);
    }
    return next;
}

/* Waits until the receive thread has read n datagrams in all. */
static void wait_read(rxq *q, uint64_t n)
{
    rxq_counters c;

    for (int tries = 0; tries < 5000; tries++) {
        rxq_get_counters(q, 0, &c);
        if (c.datagrams >= n)   /* the dropped ones included */
            return;
        sleep_ms(1);
    }
    fail_msg("the receive thread read %llu of %llu datagrams",
             (unsigned long long)c.datagrams,
             (unsigned long long)n);
}

/* Takes all but keep of what is queued (the queue never empties). */
static uint32_t take_leaving(rxq *q, uint32_t next, uint32_t upto,
                             uint32_t keep)
{
    rxq_item it;

    while (next + keep < upto && rxq_take(q, &it)) {
        dgram_check(next++, &it);
        rxq_release(q);
    }
    return next;
}

/*
 * First rounds of 300 datagrams (about 1.35 MB) with the reader taking
 * all but the last three after each: the ring never empties, so its
 * writer goes round the 4 MiB end again and again.  Then rounds of 50
 * taken whole: the ring is empty at the start of each, and its writer
 * starts over at the front once past the first MiB.
 */
static void test_order_through_wraps(void **state)
{
    pair p;
    rxq *q;
    uint32_t sent = 0, next = 0;
    rxq_counters c;
    rxq_depth d;

    (void)state;
    pair_open(&p);
    assert_int_equal(rxq_start(&q, &p.rx, 1, RING), 0);
    for (int round = 0; round < 30; round++) {
        for (uint32_t k = 0; k < 300; k++)
            send_one(&p, sent++);
        wait_read(q, sent);
        rxq_get_depth(q, &d);
        assert_true(d.bytes > 0 && d.bytes <= d.size);
        next = take_leaving(q, next, sent, 3);
        rxq_get_depth(q, &d);
        assert_true(d.bytes > 0);
    }
    next = take_all(q, next);
    for (int round = 0; round < 40; round++) {
        rxq_idle(q, 1);
        for (uint32_t k = 0; k < 50; k++)
            send_one(&p, sent++);
        wait_read(q, sent);
        rxq_idle(q, 0);
        next = take_all(q, next);
        rxq_get_depth(q, &d);
        assert_int_equal(d.bytes, 0);
    }
    rxq_get_counters(q, 0, &c);
    assert_int_equal(c.queue_drops, 0);
    assert_int_equal(c.datagrams, sent);
    assert_int_equal(next, sent);
    rxq_get_depth(q, &d);
    assert_int_equal(d.size, RING);
    /* 300 datagrams of 4.5 kB on average: more than a MiB at once, less
     * than the ring */
    assert_true(d.peak > (1u << 20));
    assert_true(d.peak <= RING);
    rxq_free(q);
    pair_close(&p);
}

/*
 * The reader empties the ring 1.4 MB in and goes off (a commit) without
 * waiting: the writer must keep the whole ring's room, not start over
 * at the front with the end skipped (and counted as held until the
 * reader came back).  2.7 MB then fit in the 4 MiB ring.
 */
static void test_busy_reader_keeps_room(void **state)
{
    pair p;
    rxq *q;
    uint32_t sent = 0, next = 0;
    rxq_counters c;

    (void)state;
    pair_open(&p);
    assert_int_equal(rxq_start(&q, &p.rx, 1, RING), 0);
    for (uint32_t k = 0; k < 300; k++)
        send_one(&p, sent++);
    wait_read(q, sent);
    next = take_all(q, next);
    for (uint32_t k = 0; k < 600; k++)
        send_one(&p, sent++);
    wait_read(q, sent);
    rxq_get_counters(q, 0, &c);
    assert_int_equal(c.queue_drops, 0);
    next = take_all(q, next);
    assert_int_equal(next, sent);
    rxq_free(q);
    pair_close(&p);
}

/* A reader that takes nothing: the ring fills, the rest is dropped and
 * counted, and what was kept comes out whole and in order. */
static void test_full_ring_drops(void **state)
{
    pair p;
    rxq *q;
    uint32_t sent = 0, next = 0, kept = 0;
    rxq_counters c;
    rxq_depth d;
    rxq_item it;

    (void)state;
    pair_open(&p);
    assert_int_equal(rxq_start(&q, &p.rx, 1, 1u << 20), 0);
    while (sent < 600) {
        send_one(&p, sent++);
        if (sent % 50 == 0)
            wait_read(q, sent);
    }
    wait_read(q, sent);
    rxq_get_counters(q, 0, &c);
    assert_true(c.queue_drops > 0);
    assert_int_equal(c.datagrams, sent);
    rxq_get_depth(q, &d);
    assert_true(d.bytes <= d.size);
    assert_int_equal(d.peak, d.bytes);
    /* once full, a smaller datagram may still fit: the kept ones come
     * out in order, each whole */
    while (rxq_take(q, &it)) {
        uint32_t i;

        assert_true(it.len >= sizeof(i));
        memcpy(&i, it.data, sizeof(i));
        assert_true(i >= next && i < sent);
        dgram_check(i, &it);
        next = i + 1;
        kept++;
        rxq_release(q);
    }
    assert_int_equal(kept + c.queue_drops, sent);
    rxq_free(q);
    pair_close(&p);
}

/*
 * Datagrams the kernel drops before the thread reads any (the socket
 * buffer full): they are counted though no datagram read carries a
 * drop count past them (the socket's own counter).
 */
static void test_kernel_drops_counted(void **state)
{
    pair p;
    rxq *q;
    rxq_counters c;
    uint32_t sent = 0;
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    socklen_t len = sizeof(p.to);
    int granted = 0;

    (void)state;
    memset(&ss, 0, sizeof(ss));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p.rx = udp_open(&ss, sizeof(*in), 65536, &granted);
    assert_true(p.rx >= 0);
    assert_int_equal(getsockname(p.rx, (struct sockaddr *)&p.to, &len), 0);
    p.tx = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(p.tx >= 0);
    /* 400 datagrams of 4.5 kB on average into a buffer of 64-128 KiB */
    while (sent < 400)
        send_one(&p, sent++);
    assert_int_equal(rxq_start(&q, &p.rx, 1, RING), 0);
    for (int tries = 0; tries < 5000; tries++) {
        rxq_get_counters(q, 0, &c);
        if (c.datagrams + c.kernel_drops >= sent)
            break;
        sleep_ms(1);
    }
    rxq_get_counters(q, 0, &c);
    assert_true(c.kernel_drops > 0);
    assert_int_equal(c.datagrams + c.kernel_drops, sent);
    rxq_free(q);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_through_wraps),
        cmocka_unit_test(test_busy_reader_keeps_room),
        cmocka_unit_test(test_kernel_drops_counted),
        cmocka_unit_test(test_full_ring_drops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
