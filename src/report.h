/*
 * Printing inventories: a readable table, JSON and CSV.  Scan results
 * and store rows go through the same writers, on fdx_store_host records
 * (a scan's hosts are resolved against the catalog first).
 */
#ifndef FLOWDEX_REPORT_H
#define FLOWDEX_REPORT_H

#include <stdio.h>

#include "flowdex/scan.h"
#include "flowdex/store.h"

enum report_format { REPORT_TABLE, REPORT_JSON, REPORT_CSV };

/*
 * Prints every host of s (or only the one equal to only, if not NULL).
 * Returns 0, or FDX_ENOMEM when a host could not be resolved.
 */
int report_hosts(FILE *f, const fdx_scan *s, const fdx_catalog *cat,
                 enum report_format fmt, const fdx_addr *only);

/* Prints one host's claims and every piece of evidence, for people.
 * Returns 0 or FDX_ENOMEM. */
int report_explain(FILE *f, const fdx_host *h, const fdx_catalog *cat);

/*
 * The pieces report_hosts() is made of, for other sources of records:
 * report_begin(), report_host() for each host (index counts from 0),
 * then one of the report_end_*() calls.
 */
void report_begin(FILE *f, enum report_format fmt);
void report_host(FILE *f, const fdx_store_host *h, enum report_format fmt,
                 size_t index);
void report_end_scan(FILE *f, enum report_format fmt, const fdx_scan *s);
/* The summary of an inventory read from a store. */
void report_end_store(FILE *f, enum report_format fmt,
                      const fdx_store_stats *st, int schema_version);

/*
 * One host of a store with its first and last times and its history:
 * the table of report_explain() followed by the history, or a JSON
 * document {"host": {...}} whose host object has, besides the fields of
 * report_host(), first_seen, last_seen and history.
 */
void report_store_host(FILE *f, const fdx_store_host *h,
                       enum report_format fmt);

/* Formats UTC milliseconds as 2026-12-03T18:06:40.776Z. */
char *report_time(uint64_t ms, char *buf, size_t len);

#endif /* FLOWDEX_REPORT_H */
