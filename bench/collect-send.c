/*
 * collect-send: replays a file of export datagrams to 127.0.0.1:PORT at
 * a fixed rate, for bench/collect.  A Python loop tops out near the
 * rate the collectors take, so the sending is done here: sendmmsg() of
 * whatever is due, paced against CLOCK_MONOTONIC.
 *
 * usage: collect-send FILE PORT DATAGRAMS_PER_SECOND
 *
 * FILE holds datagrams, each a 2-byte big-endian length and the bytes.
 * Prints one line "sent=D seconds=S rate=R" (R in datagrams per second,
 * as reached) and exits 0, or 1 with a message on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 64            /* datagrams per sendmmsg() */

typedef struct dgram_set {
    uint8_t *bytes;             /* the whole file */
    struct iovec *iov;          /* one per datagram, into bytes */
    size_t n;
} dgram_set;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads FILE whole; returns 0, or -1 with a message printed. */
static int load_file(const char *path, uint8_t **out, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "collect-send: %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    *size = (size_t)n;
    *out = malloc(*size ? *size : 1);
    if (*out == NULL || fread(*out, 1, *size, f) != *size) {
        fprintf(stderr, "collect-send: %s: short read\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

/* Splits the loaded bytes into datagrams; a truncated tail is an error. */
static int index_dgrams(dgram_set *s, size_t size)
{
    size_t off = 0, cap = size / 3 + 1;

    s->iov = malloc(cap * sizeof(*s->iov));
    if (s->iov == NULL)
        return -1;
    while (off < size) {
        size_t len;

        if (size - off < 2)
            return -1;
        len = (size_t)s->bytes[off] << 8 | s->bytes[off + 1];
        off += 2;
        if (len > size - off || s->n == cap)
            return -1;
        s->iov[s->n].iov_base = s->bytes + off;
        s->iov[s->n++].iov_len = len;
        off += len;
    }
    return 0;
}

/* Sends iov[0..n) in one call or a few; returns 0 or -1 with errno. */
static int send_batch(int fd, struct iovec *iov, size_t n)
{
    struct mmsghdr m[BATCH_MAX];
    size_t done = 0;

    memset(m, 0, n * sizeof(m[0]));
    for (size_t i = 0; i < n; i++) {
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    while (done < n) {
        int r = sendmmsg(fd, m + done, (unsigned)(n - done), 0);

        if (r < 0 && errno != EINTR && errno != ENOBUFS)
            return -1;
        if (r > 0)
            done += (size_t)r;
    }
    return 0;
}

/*
 * Paces the datagrams: datagram i is due at t0 + i / rate.  Whatever is
 * due goes out at once (up to BATCH_MAX a call); when nothing is, the
 * loop sleeps to the next one, so a rate the sender can reach is held
 * without bursts longer than a batch.
 */
static int send_paced(int fd, dgram_set *s, double rate, double *secs)
{
    double t0 = now_s(), t;
    size_t i = 0;

    while (i < s->n) {
        size_t due;

        t = now_s() - t0;
        due = (size_t)(t * rate) + 1;
        if (due > s->n)
            due = s->n;
        if (due <= i) {
            double wait = (double)i / rate - t;
            struct timespec ts = {0, (long)(wait * 1e9)};

            if (wait > 50e-6)
                nanosleep(&ts, NULL);
            continue;
        }
        if (due - i > BATCH_MAX)
            due = i + BATCH_MAX;
        if (send_batch(fd, s->iov + i, due - i) < 0)
            return -1;
        i = due;
    }
    *secs = now_s() - t0;
    return 0;
}

static int open_socket(int port)
{
    struct sockaddr_in to;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), sndbuf = 4 << 20;

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* loopback only */
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    dgram_set s = {NULL, NULL, 0};
    size_t size;
    double rate, secs;
    int port, fd;

    if (argc != 4 || (port = atoi(argv[2])) <= 0 || port > 65535 ||
        (rate = atof(argv[3])) <= 0) {
        fprintf(stderr, "usage: collect-send FILE PORT DATAGRAMS_PER_S\n");
        return 1;
    }
    if (load_file(argv[1], &s.bytes, &size) < 0)
        return 1;
    if (index_dgrams(&s, size) < 0) {
        fprintf(stderr, "collect-send: %s: not a datagram file\n", argv[1]);
        return 1;
    }
    if ((fd = open_socket(port)) < 0 || send_paced(fd, &s, rate, &secs)) {
        fprintf(stderr, "collect-send: %s\n", strerror(errno));
        return 1;
    }
    printf("sent=%zu seconds=%.3f rate=%.0f\n", s.n, secs,
           secs > 0 ? (double)s.n / secs : 0.0);
    close(fd);
    free(s.iov);
    free(s.bytes);
    return 0;
}
