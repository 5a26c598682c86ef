/*
 * UDP endpoints, sockets and the exporter allow-list of flowdex collect.
 * Like redis's anet.c: thin wrappers that turn the socket API's many
 * steps into one call each, with the error left in errno.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "udp.h"

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Splits "[v6]:port", "v4:port", ":port" or "port" into host and port. */
static int split_endpoint(const char *text, char *host, size_t size,
                          const char **port)
{
    const char *colon;
    size_t n;

    if (text[0] == '[') {
        colon = strstr(text, "]:");
        if (colon == NULL)
            return -1;
        n = (size_t)(colon - text - 1);
        text++;
        *port = colon + 2;
    } else if ((colon = strrchr(text, ':')) != NULL) {
        n = (size_t)(colon - text);
        *port = colon + 1;
    } else {
        n = 0;
        *port = text;
    }
    if (n >= size)
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    return 0;
}

int udp_endpoint_parse(const char *text, struct sockaddr_storage *ss,
                       socklen_t *len, const char **why)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    char host[64];
    const char *port_text;
    uint16_t port;

    memset(ss, 0, sizeof(*ss));
    *why = "expected ADDR:PORT, [IPV6]:PORT or PORT";
    if (split_endpoint(text, host, sizeof(host), &port_text) < 0)
        return -1;
    if (parse_port(port_text, &port) < 0) {
        *why = "the port must be a number from 1 to 65535";
        return -1;
    }
    if (host[0] != '\0' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof(*v4);
        return 0;
    }
    if (host[0] != '\0' && inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) {
        *why = "not an IPv4 or IPv6 address (IPv6 goes in brackets)";
        return -1;
    }
    v6->sin6_family = AF_INET6;   /* "" is in6addr_any: both families */
    v6->sin6_port = htons(port);
    *len = sizeof(*v6);
    return 0;
}

char *udp_endpoint_format(const struct sockaddr_storage *ss, char *buf,
                          size_t size)
{
    char a[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &v4->sin_addr, a, sizeof(a));
        snprintf(buf, size, "%s:%u", a, ntohs(v4->sin_port));
    } else {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &v6->sin6_addr, a, sizeof(a));
        snprintf(buf, size, "[%s]:%u", a, ntohs(v6->sin6_port));
    }
    return buf;
}

void udp_sender(const struct sockaddr_storage *ss, fdx_addr *a,
                uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;

        fdx_addr_from_v4(a, (const uint8_t *)&v4->sin_addr);
        *port = ntohs(v4->sin_port);
    } else {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;

        fdx_addr_from_v6(a, v6->sin6_addr.s6_addr);
        *port = ntohs(v6->sin6_port);
    }
}

int udp_open(const struct sockaddr_storage *ss, socklen_t len,
             int rcvbuf_bytes, int *granted)
{
    socklen_t glen = sizeof(*granted);
    int fd, off = 0, on = 1, e;

    fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;

    /* A wildcard IPv6 socket takes IPv4 too, as "[::]:2055" promises. */
    if (ss->ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));

    /* SO_RCVBUFFORCE passes rmem_max when privileged; else the cap. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes,
                   sizeof(rcvbuf_bytes)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes,
                         sizeof(rcvbuf_bytes));
    /* the kernel's drop count comes with each datagram (rxq.c) */
    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
    *granted = 0;
    (void)getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, &glen);

    if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int udp_allow_add(udp_allow *al, const char *text, const char **why)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    unsigned long bits;
    char *end;
    fdx_addr a;

    *why = "not an address or ADDR/BITS prefix";
    if (n >= sizeof(host))
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    if (fdx_addr_parse(&a, host) < 0)
        return -1;
    bits = 128;
    if (slash != NULL) {
        bits = strtoul(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' ||
            bits > (fdx_addr_is_v4(&a) ? 32u : 128u)) {
            *why = "the prefix length is out of range";
            return -1;
        }
        if (fdx_addr_is_v4(&a))
            bits += 96;
    }
    if (al->n >= UDP_ALLOW_MAX) {
        *why = "too many allow-list entries (at most 256)";
        return -1;
    }
    al->p[al->n].net = a;
    al->p[al->n++].bits = (unsigned)bits;
    return 0;
}

static int prefix_match(const fdx_addr *net, unsigned bits,
                        const fdx_addr *a)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(net->b, a->b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((net->b[whole] ^ a->b[whole]) & (0xffu << (8 - rest))) == 0;
}

int udp_allow_match(const udp_allow *al, const fdx_addr *a)
{
    if (al->n == 0)
        return 1;
    for (size_t i = 0; i < al->n; i++)
        if (prefix_match(&al->p[i].net, al->p[i].bits, a))
            return 1;
    return 0;
}
