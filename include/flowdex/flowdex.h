/*
 * flowdex: identify operating systems and software from flow records.
 * The one header a program needs; see flowdex(3) for an overview of the
 * library: flow.h (readers and decoders), catalog.h (repository file
 * catalogs), scan.h (matching and inference), stream.h (the same,
 * incrementally) and store.h (the durable inventory).
 */
#ifndef FLOWDEX_FLOWDEX_H
#define FLOWDEX_FLOWDEX_H

#include "flowdex/catalog.h"
#include "flowdex/common.h"
#include "flowdex/error.h"
#include "flowdex/flow.h"
#include "flowdex/scan.h"
#include "flowdex/store.h"
#include "flowdex/stream.h"

#endif /* FLOWDEX_FLOWDEX_H */
