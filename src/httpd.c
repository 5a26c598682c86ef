/*
 * The tiny HTTP server of httpd.h.  Every socket is non-blocking and
 * every connection has a fixed slot, a request buffer of fixed size and
 * a deadline, so that no client (slow, garbage-sending or opening many
 * connections) can hold the caller's loop or grow its memory: when all
 * slots are taken the oldest connection is closed for the new one.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"

#define ACCEPT_BACKLOG 16

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void httpd_init(httpd *h, const char *path, const char *content_type,
                httpd_page_fn page, void *ud)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    h->path = path;
    h->content_type = content_type;
    h->page = page;
    h->ud = ud;
    for (size_t i = 0; i < HTTPD_CONN_MAX; i++)
        h->conn[i].fd = -1;
}

int httpd_listen(httpd *h, const struct sockaddr_storage *ss,
                 socklen_t len)
{
    int fd, on = 1, off = 0, e;

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        return -1;
    /* a restart must not wait for the old connections' TIME_WAIT */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss->ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
        listen(fd, ACCEPT_BACKLOG) < 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    h->fd = fd;
    return 0;
}

static void conn_close(httpd_conn *c)
{
    close(c->fd);
    free(c->resp);
    c->fd = -1;
    c->rlen = c->resp_len = c->resp_off = 0;
    c->resp = NULL;
}

void httpd_close(httpd *h)
{
    for (size_t i = 0; i < HTTPD_CONN_MAX; i++)
        if (h->conn[i].fd >= 0)
            conn_close(&h->conn[i]);
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

size_t httpd_pollfds(const httpd *h, struct pollfd *pfd)
{
    size_t n = 0;

    if (h->fd < 0)
        return 0;
    pfd[n++] = (struct pollfd){h->fd, POLLIN, 0};
    for (size_t i = 0; i < HTTPD_CONN_MAX; i++) {
        const httpd_conn *c = &h->conn[i];

        if (c->fd >= 0)
            pfd[n++] = (struct pollfd){c->fd,
                                       c->resp ? POLLOUT : POLLIN, 0};
    }
    return n;
}

int64_t httpd_wait_ms(const httpd *h)
{
    uint64_t now = mono_ms();
    int64_t least = -1;

    for (size_t i = 0; i < HTTPD_CONN_MAX; i++) {
        const httpd_conn *c = &h->conn[i];
        uint64_t end = c->opened_ms + HTTPD_TIMEOUT_MS;
        int64_t left = end > now ? (int64_t)(end - now) : 0;

        if (c->fd >= 0 && (least < 0 || left < least))
            least = left;
    }
    return least;
}

/* A free slot, or the oldest connection's, closed for the newcomer. */
static httpd_conn *slot_take(httpd *h)
{
    httpd_conn *oldest = &h->conn[0];

    for (size_t i = 0; i < HTTPD_CONN_MAX; i++) {
        if (h->conn[i].fd < 0)
            return &h->conn[i];
        if (h->conn[i].serial < oldest->serial)
            oldest = &h->conn[i];
    }
    conn_close(oldest);
    h->evicted++;
    return oldest;
}

/* At most one round of slots per wakeup: the loop has datagrams to read. */
static void accept_some(httpd *h)
{
    for (int i = 0; i < HTTPD_CONN_MAX; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        httpd_conn *c;

        if (fd < 0)
            return;
        c = slot_take(h);
        c->fd = fd;
        c->opened_ms = mono_ms();
        c->serial = h->accepted++;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

/* The page into a buffer: 0, or -1 (the answer becomes a 500). */
static int page_body(httpd *h, char **body, size_t *blen)
{
    FILE *f = open_memstream(body, blen);
    int rc;

    if (f == NULL)
        return -1;
    rc = h->page(h->ud, f);
    if (fclose(f) != 0 || rc < 0) {
        free(*body);
        *body = NULL;
        return -1;
    }
    return 0;
}

/* Status line, headers and (unless head) body into c->resp. */
static void answer(httpd *h, httpd_conn *c, int status, int head)
{
    char hdr[512], msg[64], *body = NULL;
    const char *src;
    size_t blen = 0;
    int n;

    if (status == 200 && page_body(h, &body, &blen) < 0)
        status = 500;
    src = body;
    if (status != 200) {
        blen = (size_t)snprintf(msg, sizeof(msg), "%s\n", reason(status));
        src = msg;
    }
    n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                 status, reason(status), status == 200 ? h->content_type
                 : "text/plain; charset=utf-8", blen,
                 status == 405 ? "Allow: GET, HEAD\r\n" : "");
    c->resp_len = (size_t)n + (head ? 0 : blen);
    if ((c->resp = malloc(c->resp_len)) == NULL) {
        free(body);
        conn_close(c);
        return;
    }
    memcpy(c->resp, hdr, (size_t)n);
    if (!head && blen > 0)
        memcpy(c->resp + n, src, blen);
    free(body);
}

/* A method token: 1 to 16 capital letters. */
static int is_method(const char *m, size_t n)
{
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

/* The status for the request line "METHOD TARGET HTTP/1.x". */
static int route(const httpd *h, char *line, int *head)
{
    char *sp1 = strchr(line, ' '), *sp2, *target;
    size_t plen = strlen(h->path);

    if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
        !is_method(line, (size_t)(sp1 - line)) ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' ||
        sp2[8] > '9' || sp2[9] != '\0')
        return 400;
    *sp1 = *sp2 = '\0';
    target = sp1 + 1;
    *head = strcmp(line, "HEAD") == 0;
    if (!*head && strcmp(line, "GET") != 0)
        return 405;
    if (strncmp(target, h->path, plen) != 0 ||
        (target[plen] != '\0' && target[plen] != '?'))
        return 404;
    return 200;
}

/* Whether req holds the whole head, ended by an empty line. */
static int head_complete(const char *req, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (req[i] == '\n' && (req[i - 1] == '\n' ||
                               (i >= 2 && req[i - 1] == '\r' &&
                                req[i - 2] == '\n')))
            return 1;
    return 0;
}

/* The request is read: picks the answer from its first line (a NUL
 * in it is garbage). */
static void request_done(httpd *h, httpd_conn *c)
{
    char *eol = memchr(c->req, '\n', c->rlen);
    size_t n = eol ? (size_t)(eol - c->req) : 0;
    int head = 0, status = 400;

    h->requests++;
    if (n > 0 && c->req[n - 1] == '\r')
        n--;
    if (eol != NULL && memchr(c->req, '\0', n) == NULL) {
        c->req[n] = '\0';
        status = route(h, c->req, &head);
    }
    answer(h, c, status, head);
}

/* Reads what has come; answers once the head is whole or too long. */
static void conn_read(httpd *h, httpd_conn *c)
{
    while (c->rlen < sizeof(c->req)) {
        ssize_t n = recv(c->fd, c->req + c->rlen, sizeof(c->req) - c->rlen,
                         0);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);      /* gone before asking: nothing to say */
            return;
        }
        if (n < 0)
            return;
        c->rlen += (size_t)n;
        if (head_complete(c->req, c->rlen)) {
            request_done(h, c);
            return;
        }
    }
    h->requests++;
    answer(h, c, 431, 0);
}

/* Sends what the socket takes; closes once all is sent. */
static void conn_write(httpd_conn *c)
{
    while (c->resp_off < c->resp_len) {
        ssize_t n = send(c->fd, c->resp + c->resp_off,
                         c->resp_len - c->resp_off, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
        c->resp_off += (size_t)n;
    }
    conn_close(c);
}

static httpd_conn *conn_of(httpd *h, int fd)
{
    for (size_t i = 0; i < HTTPD_CONN_MAX; i++)
        if (h->conn[i].fd == fd)
            return &h->conn[i];
    return NULL;
}

/* Connections first: accepting may close one and reuse its number. */
void httpd_service(httpd *h, const struct pollfd *pfd, size_t n)
{
    uint64_t now;

    for (size_t i = 1; i < n; i++) {
        httpd_conn *c = conn_of(h, pfd[i].fd);

        if (c == NULL || pfd[i].revents == 0)
            continue;
        if (pfd[i].revents & (POLLERR | POLLNVAL))
            conn_close(c);
        else if (c->resp == NULL)
            conn_read(h, c);
        if (c->fd >= 0 && c->resp != NULL)
            conn_write(c);
    }
    if (n > 0 && (pfd[0].revents & POLLIN))
        accept_some(h);
    now = mono_ms();
    for (size_t i = 0; i < HTTPD_CONN_MAX; i++)
        if (h->conn[i].fd >= 0 &&
            now - h->conn[i].opened_ms >= HTTPD_TIMEOUT_MS) {
            conn_close(&h->conn[i]);
            h->timed_out++;
        }
}
