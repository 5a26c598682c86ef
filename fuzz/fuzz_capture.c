/*
 * Fuzz target: fdx_read_capture() on the input as a whole pcap or pcapng
 * file (read by libpcap, then unwrapped down to the export datagrams).
 */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_reader(fdx_read_capture, data, size);
}
