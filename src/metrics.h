/*
 * flowdex collect's counters in the Prometheus text exposition format
 * 0.0.4: the same numbers as the status file (collect.h), one family
 * per counter, exporters and listen sockets as labels.  The names are
 * listed in flowdex-collect(8).
 */
#ifndef FLOWDEX_METRICS_H
#define FLOWDEX_METRICS_H

#include <stdio.h>

#include "collect.h"
#include "httpd.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes every family to out; http (may be NULL) adds the endpoint's
 * own counters.  Returns 0, or -1 when out failed. */
int metrics_write(FILE *out, collect *c, const collect_socket_info *socks,
                  size_t nsocks, const httpd *http);

/* Writes s as a label value: backslash, quote and newline escaped. */
void metrics_label_value(FILE *out, const char *s);

#endif /* FLOWDEX_METRICS_H */
