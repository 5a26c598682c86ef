/*
 * Fuzz target: fdx_read_path() on the input as a whole file, so the
 * format sniffing of lib/input.c and its reader of IPFIX files (RFC 5655,
 * IPFIX messages one after the other) are fuzzed; nfcapd files and
 * captures found by the sniffing go on to their own readers.
 */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_reader(fdx_read_path, data, size);
}
