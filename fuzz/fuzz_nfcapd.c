/*
 * Fuzz target: fdx_read_nfcapd() on the input as a whole nfcapd file
 * (nfdump 1.6 and 1.7 layouts, plain or with LZO, bzip2, LZ4 or zstd
 * blocks).
 */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_reader(fdx_read_nfcapd, data, size);
}
