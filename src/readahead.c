/*
 * A bounded queue of batches of records between the reading thread and
 * the calling one (see readahead.h).  The reader fills the batch at the
 * head while the caller empties the one at the tail; a batch changes
 * hands only under the lock, which orders its records for the other
 * thread.  Batches are reused, so memory stays at RA_SLOTS * RA_BATCH
 * records whatever the input's size.
 */
#include <pthread.h>
#include <stdlib.h>

#include "readahead.h"

/* records per batch: large enough that the lock is rare, small enough to
 * stay in the second-level cache */
#define RA_BATCH 1024
#define RA_SLOTS 4

typedef struct ra_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fdx_flow *slot[RA_SLOTS];
    size_t len[RA_SLOTS];
    unsigned head, tail;     /* batches filled and emptied so far */
    int done;                /* the reader returned */
    int stop;                /* fn's non-zero value, 0 while it goes on */
    readahead_reader reader;
    void *reader_ud;
    int reader_rc;
} ra_queue;

/* Hands the batch at the head over; waits while every slot is full. */
static int ra_publish(ra_queue *q, size_t len)
{
    int stop;

    pthread_mutex_lock(&q->mu);
    q->len[q->head % RA_SLOTS] = len;
    q->head++;
    pthread_cond_broadcast(&q->cv);
    while (q->head - q->tail == RA_SLOTS && q->stop == 0)
        pthread_cond_wait(&q->cv, &q->mu);
    stop = q->stop;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

/* The reader's callback: one record into the batch at the head. */
static int ra_push(void *ud, const fdx_flow *f)
{
    ra_queue *q = ud;
    unsigned h = q->head % RA_SLOTS;  /* only this thread changes head */
    size_t n = q->len[h];

    q->slot[h][n++] = *f;
    q->len[h] = n;
    return n == RA_BATCH ? ra_publish(q, n) : 0;
}

static void *ra_thread(void *arg)
{
    ra_queue *q = arg;
    unsigned h;

    q->reader_rc = q->reader(q->reader_ud, ra_push, q);
    h = q->head % RA_SLOTS;
    pthread_mutex_lock(&q->mu);
    if (q->len[h] > 0)
        q->head++;          /* the last, partly filled batch */
    q->done = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/*
 * Waits for a filled batch; returns its slot, or -1 once the reader is
 * done and every batch was emptied.
 */
static int ra_take(ra_queue *q)
{
    int t = -1;

    pthread_mutex_lock(&q->mu);
    while (q->tail == q->head && !q->done)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->tail != q->head)
        t = (int)(q->tail % RA_SLOTS);
    pthread_mutex_unlock(&q->mu);
    return t;
}

/* Gives the emptied slot back to the reader; stop is fn's value. */
static void ra_release(ra_queue *q, int stop)
{
    pthread_mutex_lock(&q->mu);
    q->len[q->tail % RA_SLOTS] = 0;
    q->tail++;
    if (q->stop == 0)
        q->stop = stop;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* The calling thread's part: every batch, in order, through fn. */
static void ra_consume(ra_queue *q, fdx_flow_fn fn, void *ud)
{
    int t, stop = 0;

    while ((t = ra_take(q)) >= 0) {
        for (size_t i = 0; i < q->len[t] && stop == 0; i++)
            stop = fn(ud, &q->slot[t][i]);
        ra_release(q, stop);
    }
}

static int ra_init(ra_queue *q)
{
    for (int i = 0; i < RA_SLOTS; i++)
        if ((q->slot[i] = malloc(RA_BATCH * sizeof(fdx_flow))) == NULL)
            return -1;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&q->cv, NULL) != 0) {
        pthread_mutex_destroy(&q->mu);
        return -1;
    }
    return 0;
}

void readahead_run(readahead_reader reader, void *reader_ud, fdx_flow_fn fn,
                   void *ud, int *reader_rc)
{
    ra_queue q = {0};
    pthread_t th;
    int ok = ra_init(&q) == 0;

    q.reader = reader;
    q.reader_ud = reader_ud;
    if (!ok || pthread_create(&th, NULL, ra_thread, &q) != 0) {
        /* one thread will do, only slower */
        *reader_rc = reader(reader_ud, fn, ud);
    } else {
        ra_consume(&q, fn, ud);
        pthread_join(th, NULL);
        *reader_rc = q.reader_rc;
    }
    if (ok) {
        pthread_cond_destroy(&q.cv);
        pthread_mutex_destroy(&q.mu);
    }
    for (int i = 0; i < RA_SLOTS; i++)
        free(q.slot[i]);
}
