/*
 * A tiny HTTP/1.x server for one read-only page (flowdex collect's
 * /metrics), run from the caller's poll loop: it never blocks and never
 * holds more than HTTPD_CONN_MAX connections, each for at most
 * HTTPD_TIMEOUT_MS, reading at most HTTPD_REQ_MAX bytes of request.
 * One request per connection (the answer says Connection: close); GET
 * and HEAD of the page are answered 200, other paths 404, other methods
 * 405, anything unparsable 400.  It knows nothing of what the page says:
 * a callback writes the body.
 */
#ifndef FLOWDEX_HTTPD_H
#define FLOWDEX_HTTPD_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define HTTPD_CONN_MAX 8
#define HTTPD_REQ_MAX 4096
#define HTTPD_TIMEOUT_MS 5000
#define HTTPD_POLL_MAX (1 + HTTPD_CONN_MAX)

/* Writes the page to out; returns 0, or -1 for a 500 answer. */
typedef int (*httpd_page_fn)(void *ud, FILE *out);

typedef struct httpd_conn {
    int fd;                     /* -1: a free slot */
    uint64_t opened_ms;         /* monotonic clock */
    uint64_t serial;            /* accept order: the oldest goes first */
    size_t rlen;                /* request bytes read */
    char req[HTTPD_REQ_MAX];
    char *resp;                 /* the answer, once the request is read */
    size_t resp_len, resp_off;
} httpd_conn;

typedef struct httpd {
    int fd;                     /* listening socket, -1: none */
    const char *path;           /* the page's path, "/metrics" */
    const char *content_type;
    httpd_page_fn page;
    void *ud;
    httpd_conn conn[HTTPD_CONN_MAX];
    uint64_t accepted;
    /* what happened, for the page itself to show */
    uint64_t requests, evicted, timed_out;
} httpd;

/* An httpd with no socket: every call below is then a no-op. */
void httpd_init(httpd *h, const char *path, const char *content_type,
                httpd_page_fn page, void *ud);

/* Listens on ss (non-blocking).  Returns 0, or -1 with errno. */
int httpd_listen(httpd *h, const struct sockaddr_storage *ss,
                 socklen_t len);

/* Fills pfd (HTTPD_POLL_MAX entries) with what to wait for; returns
 * how many entries it used. */
size_t httpd_pollfds(const httpd *h, struct pollfd *pfd);

/* Milliseconds until the first connection times out; -1: none open. */
int64_t httpd_wait_ms(const httpd *h);

/* Accepts, reads, answers and closes what pfd (from httpd_pollfds(),
 * after poll) says is ready, and closes connections past their time. */
void httpd_service(httpd *h, const struct pollfd *pfd, size_t n);

void httpd_close(httpd *h);

#endif /* FLOWDEX_HTTPD_H */
