/*
 * Fuzz target: fdx_nf_decode(), NetFlow v5, v9 and IPFIX datagrams.
 *
 * Input: one option byte, then datagrams, each as
 *     u8 sel | u16 length (big-endian) | length bytes
 * (the last one may be shorter than its length says).  All datagrams go
 * to one decoder so that templates learnt from one are used by the next.
 * sel's low two bits pick one of four exporters (two share an address
 * and differ by port, one is IPv6) so per-exporter state is exercised,
 * and its high six bits advance the receive clock by that many seconds.
 * Option bits: 0 tiny limits (every cap is hit quickly, the exporter
 * share of the template budget is half of it, and sessions expire after
 * 900 s: the clock's steps reach both eviction, of a session idle
 * 600 s in a full table, and expiry), 1 no logger,
 * 2-6 a count N and 7 what it counts: bit 7 clear, the callback stops
 * the decoder at its N-th record (N = 0: never); bit 7 set, the
 * library's N-th allocation and all after it fail.
 *
 * Each datagram is copied into a buffer of exactly its size, so reading
 * one byte past it is caught by AddressSanitizer.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const fdx_nf_limits tiny = { 2, 3, 12, 256, 1024, 512, 900 };

typedef struct exporter {
    uint8_t addr[16];
    int v6;
    uint16_t port;
} exporter;

static const exporter exporters[4] = {
    { { 192, 0, 2, 1 }, 0, 2055 },
    { { 192, 0, 2, 1 }, 0, 9995 },
    { { 198, 51, 100, 7 }, 0, 4739 },
    { { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 },
      1, 4739 },
};

static void decode_one(fdx_nf_decoder *dec, uint8_t sel,
                       const uint8_t *p, size_t n, uint64_t now,
                       fuzz_flows *ff)
{
    const exporter *e = &exporters[sel & 3];
    uint8_t *copy = malloc(n ? n : 1);
    uint64_t before = ff->calls;
    fdx_addr a;
    int rc, stopped = ff->stopped;

    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    if (e->v6)
        fdx_addr_from_v6(&a, e->addr);
    else
        fdx_addr_from_v4(&a, e->addr);
    fuzz_dirty_stack();
    rc = fdx_nf_decode(dec, &a, e->port, copy, n, now, fuzz_flow_cb, ff);
    free(copy);
    if (ff->stopped && !stopped) {
        if (rc != FUZZ_STOP_RC)
            fuzz_fail("stopped decode returned %d", rc);
    } else if (rc >= 0 && (uint64_t)rc != ff->calls - before) {
        fuzz_fail("decode returned %d, passed %llu records", rc,
                  (unsigned long long)(ff->calls - before));
    } else if (rc < FDX_ENOTFOUND) {
        fuzz_fail("decode returned %d", rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_flows ff = { 0, 0, 0 };
    fdx_read_stats st;
    fdx_nf_decoder *dec;
    uint64_t now = 1700000000000ull;
    size_t off = 1;

    if (size < 1)
        return 0;
    if (data[0] & 0x80) {
        fuzz_fail_alloc(1 + (data[0] >> 2 & 0x1f));
    } else {
        fuzz_fail_alloc(0);
        ff.stop_after = data[0] >> 2 & 0x1f;
    }
    fuzz_dirty_stack();
    dec = fdx_nf_decoder_new(data[0] & 1 ? &tiny : NULL,
                             data[0] & 2 ? NULL : &fuzz_logger);
    if (dec == NULL) {
        if (!(data[0] & 0x80))
            fuzz_fail("fdx_nf_decoder_new failed with memory to spare");
        return 0;
    }
    while (size - off >= 3) {
        uint8_t sel = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];

        off += 3;
        if (n > size - off)
            n = size - off;
        now += (uint64_t)(sel >> 2) * 1000;
        decode_one(dec, sel, data + off, n, now, &ff);
        off += n;
    }
    fdx_nf_decoder_stats(dec, &st);
    if (st.flows != ff.calls)
        fuzz_fail("stats count %llu flows, callback saw %llu",
                  (unsigned long long)st.flows,
                  (unsigned long long)ff.calls);
    fdx_nf_decoder_free(dec);
    return 0;
}
