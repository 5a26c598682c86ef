/*
 * Small pieces of the collector's network side: parsing ADDR:PORT
 * endpoints, opening UDP sockets with large receive buffers, and an
 * allow-list of exporter addresses and CIDR prefixes.  Nothing here
 * knows about NetFlow; each function is usable on its own.
 */
#ifndef FLOWDEX_UDP_H
#define FLOWDEX_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "flowdex/common.h"

/* Parses "A.B.C.D:PORT", "[V6]:PORT" or ":PORT"/"PORT" (all of IPv6 and
 * IPv4) into *ss.  Returns 0, or -1 with *why set to a static reason. */
int udp_endpoint_parse(const char *text, struct sockaddr_storage *ss,
                       socklen_t *len, const char **why);

/* Text form "addr:port" / "[addr]:port" of a socket address. */
char *udp_endpoint_format(const struct sockaddr_storage *ss, char *buf,
                          size_t size);

/* The sender of a datagram as an fdx_addr (IPv4 mapped) and a port. */
void udp_sender(const struct sockaddr_storage *ss, fdx_addr *a,
                uint16_t *port);

/*
 * Opens a non-blocking UDP socket bound to ss, asking for rcvbuf_bytes
 * of receive buffer; *granted gets what the kernel gave (Linux reports
 * twice the usable size).  Returns the descriptor, or -1 with errno.
 */
int udp_open(const struct sockaddr_storage *ss, socklen_t len,
             int rcvbuf_bytes, int *granted);

/* An allow-list: a fixed array of prefixes, IPv4 held as mapped IPv6. */
#define UDP_ALLOW_MAX 256

typedef struct udp_allow {
    struct { fdx_addr net; unsigned bits; } p[UDP_ALLOW_MAX];
    size_t n;
} udp_allow;

/* Adds "ADDR" or "ADDR/BITS" (either family).  Returns 0, or -1 with
 * *why set (bad text, bad length, list full). */
int udp_allow_add(udp_allow *al, const char *text, const char **why);

/* 1 when a is inside one of the prefixes, or the list is empty. */
int udp_allow_match(const udp_allow *al, const fdx_addr *a);

#endif /* FLOWDEX_UDP_H */
