/*
 * flowdex common types: addresses, logging and allocation hooks.
 */
#ifndef FLOWDEX_COMMON_H
#define FLOWDEX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "flowdex/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An IPv4 or IPv6 address.  IPv4 addresses are stored IPv4-mapped
 * (::ffff:a.b.c.d) so that every address is 16 bytes and compares with
 * memcmp().
 */
typedef struct fdx_addr {
    uint8_t b[16];
} fdx_addr;

/* Longest text form of an address, with the NUL. */
#define FDX_ADDRSTRLEN 46

void fdx_addr_from_v4(fdx_addr *a, const uint8_t v4[4]);
void fdx_addr_from_v6(fdx_addr *a, const uint8_t v6[16]);
int fdx_addr_is_v4(const fdx_addr *a);
/* Writes the dotted or RFC 5952 text form into buf; returns buf. */
char *fdx_addr_format(const fdx_addr *a, char *buf, size_t len);
/* Parses text into *a; returns 0 or FDX_EUSAGE. */
int fdx_addr_parse(fdx_addr *a, const char *text);
int fdx_addr_cmp(const fdx_addr *x, const fdx_addr *y);

/* Log levels, in the order of syslog's. */
enum fdx_log_level {
    FDX_LOG_ERR = 3,
    FDX_LOG_WARN = 4,
    FDX_LOG_INFO = 6,
    FDX_LOG_DEBUG = 7
};

/*
 * The library never prints.  It formats one line per event, with key=value
 * context, and passes it to fn when level <= max_level.  A NULL logger or a
 * NULL fn discards everything.
 */
typedef void (*fdx_log_fn)(void *ud, int level, const char *line);

typedef struct fdx_logger {
    fdx_log_fn fn;
    void *ud;
    int max_level;
} fdx_logger;

/*
 * Allocation hooks.  Every allocation in the library goes through these, so
 * tests can inject failure.  Passing NULL restores the C library's.
 * Not thread-safe: set once before any other call.
 */
typedef struct fdx_allocator {
    void *(*malloc_fn)(size_t);
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
} fdx_allocator;

void fdx_set_allocator(const fdx_allocator *a);

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_COMMON_H */
