/*
 * Printing scan results: a readable table, JSON and CSV.
 */
#ifndef FLOWDEX_REPORT_H
#define FLOWDEX_REPORT_H

#include <stdio.h>

#include "flowdex/scan.h"

enum report_format { REPORT_TABLE, REPORT_JSON, REPORT_CSV };

/* Prints every host of s (or only the one equal to only, if not NULL). */
void report_hosts(FILE *f, const fdx_scan *s, const fdx_catalog *cat,
                  enum report_format fmt, const fdx_addr *only);

/* Prints one host's claims and every piece of evidence, for people. */
void report_explain(FILE *f, const fdx_host *h, const fdx_catalog *cat);

/* Formats UTC milliseconds as 2026-12-03T18:06:40.776Z. */
char *report_time(uint64_t ms, char *buf, size_t len);

#endif /* FLOWDEX_REPORT_H */
