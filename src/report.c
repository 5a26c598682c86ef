/*
 * Output of scan results.  JSON is written by hand: the schema is small
 * and fixed (documented in flowdex(1)).  Every string from the catalog
 * goes through text.h, as a catalog file may hold any bytes.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "text.h"

static const char *kind_name(int kind)
{
    switch (kind) {
    case FDX_EV_FILE:
        return "file";
    case FDX_EV_AMBIGUOUS:
        return "ambiguous";
    case FDX_EV_MULTI:
        return "several-files";
    case FDX_EV_SAMPLED:
        return "sampled";
    case FDX_EV_UNMATCHED:
        return "unmatched";
    }
    return "none";
}

char *report_time(uint64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char tmp[32];

    gmtime_r(&t, &tm);
    strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", tmp, (unsigned)(ms % 1000));
    return buf;
}

/* The fields naming catalog entry i, without braces. */
static void json_entry_fields(FILE *f, const fdx_catalog *cat, uint32_t i)
{
    fdx_entry e;
    fdx_origin o;

    fdx_catalog_entry(cat, i, &e);
    fdx_catalog_origin(cat, e.origin, &o);
    fputs("\"name\": ", f);
    text_json(f, e.kind == FDX_KIND_PACKAGE ? e.package : e.path);
    fputs(", \"version\": ", f);
    text_json(f, e.version);
    fputs(", \"arch\": ", f);
    text_json(f, e.arch);
    fputs(", \"suite\": ", f);
    text_json(f, o.codename);
    fprintf(f, ", \"size\": %" PRIu64 ", \"path\": ", e.size);
    text_json(f, e.path);
}

static void json_entry(FILE *f, const fdx_catalog *cat, uint32_t i)
{
    fputc('{', f);
    json_entry_fields(f, cat, i);
    fputc('}', f);
}

static void json_os(FILE *f, const fdx_host *h)
{
    if (!h->os.known) {
        fputs("null", f);
        return;
    }
    fputs("{\"family\": ", f);
    text_json(f, h->os.family);
    fputs(", \"release\": ", f);
    text_json(f, h->os.release);
    fputs(", \"codename\": ", f);
    text_json(f, h->os.codename);
    fputs(", \"arch\": ", f);
    if (h->os.arch != NULL)
        text_json(f, h->os.arch);
    else
        fputs("null", f);
    fprintf(f, ", \"confidence\": %.3f}", h->os.confidence);
}

static int claimed(const fdx_host *h, size_t ev)
{
    for (size_t i = 0; i < h->npackages; i++)
        if (h->packages[i].evidence == ev)
            return 1;
    return 0;
}

static void json_evidence(FILE *f, const fdx_host *h, const fdx_evidence *ev,
                          const fdx_catalog *cat)
{
    char t[40], a[FDX_ADDRSTRLEN];

    fprintf(f, "{\"time\": \"%s\", \"server\": \"%s\", \"port\": %u, ",
            report_time(ev->first_ms, t, sizeof(t)),
            fdx_addr_format(&ev->server, a, sizeof(a)), ev->server_port);
    fprintf(f, "\"bytes\": %" PRIu64 ", \"packets\": %" PRIu64
            ", \"request_bytes\": %" PRIu64 ", \"records\": %u, ",
            ev->octets, ev->packets, ev->req_octets, ev->records);
    fprintf(f, "\"transport\": \"%s\", \"kind\": \"%s\"",
            ev->transport == FDX_TR_TLS ? "tls" : "http",
            kind_name(ev->kind));
    if (ev->kind == FDX_EV_MULTI && ev->est_files > 0)
        fprintf(f, ", \"files\": %u", ev->est_files);
    /* several files from a mirror of the host's own release: they are
     * attributed to it, though not told apart */
    if (ev->kind == FDX_EV_MULTI && h->os.known) {
        fputs(", \"attributed_to\": ", f);
        text_json(f, h->os.codename);
    }
    if (ev->ncand_total > 0)
        fprintf(f, ", \"sizes\": [%" PRIu64 ", %" PRIu64 "]", ev->win_lo,
                ev->win_hi);
    if (ev->path_hi > 0)
        fprintf(f, ", \"path_length\": [%u, %u]", ev->path_lo,
                ev->path_hi);
    if (ev->ncand_total > 0) {
        fprintf(f, ", \"candidates_total\": %u, \"candidates\": [",
                ev->ncand_total);
        for (uint32_t k = 0; k < ev->ncand; k++) {
            fputs(k ? ", " : "", f);
            json_entry(f, cat, ev->cand[k]);
        }
        fputc(']', f);
    }
    fputc('}', f);
}

static void json_packages(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    fputs("\"packages\": [", f);
    for (size_t i = 0; i < h->npackages; i++) {
        const fdx_package_claim *pc = &h->packages[i];
        char t[40];

        fputs(i ? ",\n      {" : "\n      {", f);
        json_entry_fields(f, cat, pc->entry);
        fprintf(f, ", \"confidence\": %.3f, \"time\": \"%s\"}",
                pc->confidence,
                report_time(h->evidence[pc->evidence].first_ms, t,
                            sizeof(t)));
    }
    fputs("]", f);
}

static void json_host(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    char a[FDX_ADDRSTRLEN];
    int first = 1;

    fprintf(f, "    {\"address\": \"%s\",\n     \"os\": ",
            fdx_addr_format(&h->addr, a, sizeof(a)));
    json_os(f, h);
    fputs(",\n     ", f);
    json_packages(f, h, cat);
    fputs(",\n     \"ambiguous\": [", f);
    for (size_t i = 0; i < h->nevidence; i++) {
        const fdx_evidence *ev = &h->evidence[i];

        if (claimed(h, i) || ev->kind == FDX_EV_SAMPLED ||
            ev->kind == FDX_EV_UNMATCHED)
            continue;
        fputs(first ? "\n      " : ",\n      ", f);
        json_evidence(f, h, ev, cat);
        first = 0;
    }
    fputs("],\n     \"evidence\": [", f);
    for (size_t i = 0; i < h->nevidence; i++) {
        fputs(i ? ",\n      " : "\n      ", f);
        json_evidence(f, h, &h->evidence[i], cat);
    }
    fprintf(f, "],\n     \"sampled_flows\": %" PRIu64 "}", h->sampled_flows);
}

static void report_json(FILE *f, const fdx_scan *s, const fdx_catalog *cat,
                        const fdx_addr *only)
{
    fdx_scan_stats st;
    int first = 1;

    fdx_scan_get_stats(s, &st);
    fputs("{\"hosts\": [\n", f);
    for (size_t i = 0; i < fdx_scan_host_count(s); i++) {
        const fdx_host *h = fdx_scan_host(s, i);

        if (only != NULL && fdx_addr_cmp(only, &h->addr) != 0)
            continue;
        fputs(first ? "" : ",\n", f);
        json_host(f, h, cat);
        first = 0;
    }
    fprintf(f, "\n  ],\n \"summary\": {\"flows\": %" PRIu64
            ", \"sampled_flows\": %" PRIu64 ", \"connections\": %" PRIu64
            ", \"downloads\": %" PRIu64 ", \"identified\": %" PRIu64
            ", \"ambiguous\": %" PRIu64 ", \"several_files\": %" PRIu64
            ", \"unmatched\": %" PRIu64 ", \"duplicates\": %" PRIu64
            ", \"servers_calibrated\": %" PRIu64
            ", \"invalid_flows\": %" PRIu64 "}}\n",
            st.flows, st.flows_sampled, st.connections, st.downloads,
            st.identified, st.ambiguous, st.multi, st.unmatched,
            st.duplicates, st.servers_calibrated, st.flows_invalid);
}

/* CSV: one line per claim, OS claims and package claims alike. */
static void csv_fields(FILE *f, const char *name, const char *version,
                       const char *arch, const char *suite)
{
    text_csv(f, name);
    fputc(',', f);
    text_csv(f, version);
    fputc(',', f);
    text_csv(f, arch);
    fputc(',', f);
    text_csv(f, suite);
}

static void csv_host(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    char a[FDX_ADDRSTRLEN];

    fdx_addr_format(&h->addr, a, sizeof(a));
    if (h->os.known) {
        fprintf(f, "%s,os,", a);
        csv_fields(f, h->os.family, h->os.release, h->os.arch,
                   h->os.codename);
        fprintf(f, ",%.3f,\n", h->os.confidence);
    } else {
        /* listed as in the table and JSON, with no claim to make */
        fprintf(f, "%s,os,,,,,,\n", a);
    }
    for (size_t i = 0; i < h->npackages; i++) {
        fdx_entry e;
        fdx_origin o;

        fdx_catalog_entry(cat, h->packages[i].entry, &e);
        fdx_catalog_origin(cat, e.origin, &o);
        fprintf(f, "%s,package,", a);
        csv_fields(f, e.package, e.version, e.arch, o.codename);
        fprintf(f, ",%.3f,", h->packages[i].confidence);
        text_csv(f, e.path);
        fputc('\n', f);
    }
}

static void table_host(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    char a[FDX_ADDRSTRLEN];
    size_t amb = 0, unmatched = 0;

    fdx_addr_format(&h->addr, a, sizeof(a));
    for (size_t i = 0; i < h->nevidence; i++)
        unmatched += h->evidence[i].kind == FDX_EV_UNMATCHED;
    for (size_t i = 0; i < h->nevidence; i++)
        amb += !claimed(h, i) && h->evidence[i].kind != FDX_EV_SAMPLED &&
               h->evidence[i].kind != FDX_EV_UNMATCHED;
    fprintf(f, "%-16s ", a);
    if (h->os.known) {
        text_plain(f, h->os.family);
        fputc(' ', f);
        text_plain(f, h->os.release);
        fputs(" (", f);
        text_plain(f, h->os.codename);
        fputs(") ", f);
        text_plain(f, h->os.arch ? h->os.arch : "arch?");
        fprintf(f, "  conf %.2f\n", h->os.confidence);
    } else {
        fputs("unknown\n", f);
    }
    for (size_t i = 0; i < h->npackages; i++) {
        fdx_entry e;

        fdx_catalog_entry(cat, h->packages[i].entry, &e);
        fprintf(f, "%-16s   ", "");
        text_plain(f, e.package);
        fputc(' ', f);
        text_plain(f, e.version);
        fputc(' ', f);
        text_plain(f, e.arch);
        fprintf(f, "  conf %.2f\n", h->packages[i].confidence);
    }
    fprintf(f, "%-16s   %zu package(s), %zu unresolved download(s)", "",
            h->npackages, amb);
    if (unmatched > 0)
        fprintf(f, ", %zu repository connection(s) fitting no file",
                unmatched);
    if (h->sampled_flows > 0)
        fprintf(f, ", %" PRIu64 " sampled flow(s) not size-matched",
                h->sampled_flows);
    fputc('\n', f);
}

void report_hosts(FILE *f, const fdx_scan *s, const fdx_catalog *cat,
                  enum report_format fmt, const fdx_addr *only)
{
    if (fmt == REPORT_JSON) {
        report_json(f, s, cat, only);
        return;
    }
    if (fmt == REPORT_CSV)
        fputs("host,claim,name,version,arch,suite,confidence,path\n", f);
    for (size_t i = 0; i < fdx_scan_host_count(s); i++) {
        const fdx_host *h = fdx_scan_host(s, i);

        if (only != NULL && fdx_addr_cmp(only, &h->addr) != 0)
            continue;
        if (fmt == REPORT_CSV)
            csv_host(f, h, cat);
        else
            table_host(f, h, cat);
    }
}

void report_explain(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    char t[40], a[FDX_ADDRSTRLEN];

    table_host(f, h, cat);
    fputs("\nevidence:\n", f);
    for (size_t i = 0; i < h->nevidence; i++) {
        const fdx_evidence *ev = &h->evidence[i];

        fprintf(f, "  %s %s:%u %s %" PRIu64 " bytes %" PRIu64
                " pkts, request %" PRIu64 " bytes, %s",
                report_time(ev->first_ms, t, sizeof(t)),
                fdx_addr_format(&ev->server, a, sizeof(a)), ev->server_port,
                ev->transport == FDX_TR_TLS ? "tls" : "http", ev->octets,
                ev->packets, ev->req_octets, kind_name(ev->kind));
        if (ev->kind == FDX_EV_MULTI && ev->est_files > 0)
            fprintf(f, " (about %u files)", ev->est_files);
        if (ev->path_hi > 0)
            fprintf(f, ", path length %u-%u", ev->path_lo, ev->path_hi);
        if (ev->ncand_total)
            fprintf(f, ", sizes %" PRIu64 "-%" PRIu64 ", %u candidate(s)",
                    ev->win_lo, ev->win_hi, ev->ncand_total);
        fputc('\n', f);
        for (uint32_t k = 0; k < ev->ncand; k++) {
            fdx_entry e;
            fdx_origin o;

            fdx_catalog_entry(cat, ev->cand[k], &e);
            fdx_catalog_origin(cat, e.origin, &o);
            fprintf(f, "      %s", claimed(h, i) ? "* " : "");
            text_plain(f, e.path);
            fprintf(f, " %" PRIu64 " ", e.size);
            text_plain(f, e.arch);
            fputs(" (", f);
            text_plain(f, o.codename);
            fputs(")\n", f);
        }
    }
}
