/*
 * Output of inventories.  JSON is written by hand: the schema is small
 * and fixed (documented in flowdex(1)).  Every string from the catalog
 * or a store goes through text.h, as either may hold any bytes.  The
 * writers take resolved records (fdx_store_host), so that a scan and a
 * store print through the same code.
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

/* The fields naming a catalog file, without braces. */
static void json_file_fields(FILE *f, const fdx_store_file *e)
{
    fputs("\"name\": ", f);
    text_json(f, e->name);
    fputs(", \"version\": ", f);
    text_json(f, e->version);
    fputs(", \"arch\": ", f);
    text_json(f, e->arch);
    fputs(", \"suite\": ", f);
    text_json(f, e->suite);
    fprintf(f, ", \"size\": %" PRIu64 ", \"path\": ", e->size);
    text_json(f, e->path);
}

static void json_os(FILE *f, const fdx_store_host *h)
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

static void json_candidates(FILE *f, const fdx_store_evidence *ev)
{
    fprintf(f, ", \"candidates_total\": %u, \"candidates\": [",
            ev->ncand_total);
    for (uint32_t k = 0; k < ev->ncand; k++) {
        fputs(k ? ", {" : "{", f);
        json_file_fields(f, &ev->cand[k]);
        fputc('}', f);
    }
    fputc(']', f);
}

static void json_evidence(FILE *f, const fdx_store_host *h,
                          const fdx_store_evidence *ev)
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
    if (ev->ncand_total > 0)
        json_candidates(f, ev);
    fputc('}', f);
}

static void json_packages(FILE *f, const fdx_store_host *h)
{
    fputs("\"packages\": [", f);
    for (size_t i = 0; i < h->npackages; i++) {
        const fdx_store_package *p = &h->packages[i];
        char t[40];

        fputs(i ? ",\n      {" : "\n      {", f);
        json_file_fields(f, &p->file);
        fprintf(f, ", \"confidence\": %.3f, \"time\": \"%s\"}",
                p->confidence, report_time(p->time_ms, t, sizeof(t)));
    }
    fputs("]", f);
}

/* Evidence that is neither a claim's nor without a file to fit. */
static int unresolved(const fdx_store_evidence *ev)
{
    return !ev->claimed && ev->kind != FDX_EV_SAMPLED &&
           ev->kind != FDX_EV_UNMATCHED;
}

static void json_evidence_lists(FILE *f, const fdx_store_host *h)
{
    int first = 1;

    fputs(",\n     \"ambiguous\": [", f);
    for (size_t i = 0; i < h->nevidence; i++) {
        if (!unresolved(&h->evidence[i]))
            continue;
        fputs(first ? "\n      " : ",\n      ", f);
        json_evidence(f, h, &h->evidence[i]);
        first = 0;
    }
    fputs("],\n     \"evidence\": [", f);
    for (size_t i = 0; i < h->nevidence; i++) {
        fputs(i ? ",\n      " : "\n      ", f);
        json_evidence(f, h, &h->evidence[i]);
    }
    fputc(']', f);
}

static void json_host(FILE *f, const fdx_store_host *h)
{
    char a[FDX_ADDRSTRLEN];

    fprintf(f, "    {\"address\": \"%s\",\n     \"os\": ",
            fdx_addr_format(&h->addr, a, sizeof(a)));
    json_os(f, h);
    fputs(",\n     ", f);
    json_packages(f, h);
    json_evidence_lists(f, h);
    fprintf(f, ",\n     \"sampled_flows\": %" PRIu64, h->sampled_flows);
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

static void csv_host(FILE *f, const fdx_store_host *h)
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
        const fdx_store_file *e = &h->packages[i].file;

        fprintf(f, "%s,package,", a);
        csv_fields(f, e->name, e->version, e->arch, e->suite);
        fprintf(f, ",%.3f,", h->packages[i].confidence);
        text_csv(f, e->path);
        fputc('\n', f);
    }
}

static void table_os(FILE *f, const fdx_store_host *h)
{
    if (!h->os.known) {
        fputs("unknown\n", f);
        return;
    }
    text_plain(f, h->os.family);
    fputc(' ', f);
    text_plain(f, h->os.release);
    fputs(" (", f);
    text_plain(f, h->os.codename);
    fputs(") ", f);
    text_plain(f, h->os.arch ? h->os.arch : "arch?");
    fprintf(f, "  conf %.2f\n", h->os.confidence);
}

static void table_host(FILE *f, const fdx_store_host *h)
{
    char a[FDX_ADDRSTRLEN];
    size_t amb = 0, unmatched = 0;

    for (size_t i = 0; i < h->nevidence; i++) {
        unmatched += h->evidence[i].kind == FDX_EV_UNMATCHED;
        amb += unresolved(&h->evidence[i]);
    }
    fprintf(f, "%-16s ", fdx_addr_format(&h->addr, a, sizeof(a)));
    table_os(f, h);
    for (size_t i = 0; i < h->npackages; i++) {
        const fdx_store_file *e = &h->packages[i].file;

        fprintf(f, "%-16s   ", "");
        text_plain(f, e->name);
        fputc(' ', f);
        text_plain(f, e->version);
        fputc(' ', f);
        text_plain(f, e->arch);
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

void report_begin(FILE *f, enum report_format fmt)
{
    if (fmt == REPORT_JSON)
        fputs("{\"hosts\": [\n", f);
    else if (fmt == REPORT_CSV)
        fputs("host,claim,name,version,arch,suite,confidence,path\n", f);
}

void report_host(FILE *f, const fdx_store_host *h, enum report_format fmt,
                 size_t index)
{
    if (fmt == REPORT_JSON) {
        fputs(index > 0 ? ",\n" : "", f);
        json_host(f, h);
        fputc('}', f);
    } else if (fmt == REPORT_CSV) {
        csv_host(f, h);
    } else {
        table_host(f, h);
    }
}

void report_end_scan(FILE *f, enum report_format fmt, const fdx_scan *s)
{
    fdx_scan_stats st;

    if (fmt != REPORT_JSON)
        return;
    fdx_scan_get_stats(s, &st);
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

void report_end_store(FILE *f, enum report_format fmt,
                      const fdx_store_stats *st, int schema_version)
{
    if (fmt != REPORT_JSON)
        return;
    fprintf(f, "\n  ],\n \"summary\": {\"hosts\": %" PRIu64
            ", \"packages\": %" PRIu64 ", \"evidence\": %" PRIu64
            ", \"history\": %" PRIu64 ", \"schema_version\": %d}}\n",
            st->hosts, st->packages, st->evidence, st->history,
            schema_version);
}

int report_hosts(FILE *f, const fdx_scan *s, const fdx_catalog *cat,
                 enum report_format fmt, const fdx_addr *only)
{
    size_t shown = 0;

    report_begin(f, fmt);
    for (size_t i = 0; i < fdx_scan_host_count(s); i++) {
        const fdx_host *h = fdx_scan_host(s, i);
        fdx_store_host r;

        if (only != NULL && fdx_addr_cmp(only, &h->addr) != 0)
            continue;
        if (fdx_store_host_resolve(cat, h, &r) < 0)
            return FDX_ENOMEM;
        report_host(f, &r, fmt, shown++);
        fdx_store_host_free(&r);
    }
    report_end_scan(f, fmt, s);
    return 0;
}

static void explain_evidence(FILE *f, const fdx_store_evidence *ev)
{
    char t[40], a[FDX_ADDRSTRLEN];

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
        const fdx_store_file *e = &ev->cand[k];

        fprintf(f, "      %s", ev->claimed ? "* " : "");
        text_plain(f, e->path);
        fprintf(f, " %" PRIu64 " ", e->size);
        text_plain(f, e->arch);
        fputs(" (", f);
        text_plain(f, e->suite);
        fputs(")\n", f);
    }
}

static void explain_record(FILE *f, const fdx_store_host *h)
{
    table_host(f, h);
    fputs("\nevidence:\n", f);
    for (size_t i = 0; i < h->nevidence; i++)
        explain_evidence(f, &h->evidence[i]);
}

int report_explain(FILE *f, const fdx_host *h, const fdx_catalog *cat)
{
    fdx_store_host r;

    if (fdx_store_host_resolve(cat, h, &r) < 0)
        return FDX_ENOMEM;
    explain_record(f, &r);
    fdx_store_host_free(&r);
    return 0;
}

static const char *change_name(const fdx_store_change *c)
{
    return c->what == FDX_CHANGE_OS ? "os" : "package";
}

static void table_history(FILE *f, const fdx_store_host *h)
{
    char t[40];

    fputs("\nhistory:\n", f);
    if (h->nhistory == 0)
        fputs("  no changes\n", f);
    for (size_t i = 0; i < h->nhistory; i++) {
        const fdx_store_change *c = &h->history[i];

        fprintf(f, "  %s %s ", report_time(c->time_ms, t, sizeof(t)),
                change_name(c));
        if (c->name != NULL) {
            text_plain(f, c->name);
            fputc(' ', f);
        }
        text_plain(f, c->old_value ? c->old_value : "-");
        fputs(" -> ", f);
        text_plain(f, c->new_value ? c->new_value : "-");
        fputc('\n', f);
    }
}

/* A string or null. */
static void json_opt(FILE *f, const char *s)
{
    if (s != NULL)
        text_json(f, s);
    else
        fputs("null", f);
}

static void json_history(FILE *f, const fdx_store_host *h)
{
    char t[40];

    fputs(",\n     \"history\": [", f);
    for (size_t i = 0; i < h->nhistory; i++) {
        const fdx_store_change *c = &h->history[i];

        fprintf(f, "%s{\"time\": \"%s\", \"what\": \"%s\", \"name\": ",
                i ? ",\n      " : "\n      ",
                report_time(c->time_ms, t, sizeof(t)), change_name(c));
        json_opt(f, c->name);
        fputs(", \"old\": ", f);
        json_opt(f, c->old_value);
        fputs(", \"new\": ", f);
        json_opt(f, c->new_value);
        fputs(", \"collector\": ", f);
        json_opt(f, c->collector);
        fputc('}', f);
    }
    fputc(']', f);
}

void report_store_host(FILE *f, const fdx_store_host *h,
                       enum report_format fmt)
{
    char t[40], t2[40];

    if (fmt != REPORT_JSON) {
        explain_record(f, h);
        fprintf(f, "\nseen %s to %s\n",
                report_time(h->first_seen_ms, t, sizeof(t)),
                report_time(h->last_seen_ms, t2, sizeof(t2)));
        table_history(f, h);
        return;
    }
    fputs("{\"host\":\n", f);
    json_host(f, h);
    fprintf(f, ",\n     \"first_seen\": \"%s\", \"last_seen\": \"%s\"",
            report_time(h->first_seen_ms, t, sizeof(t)),
            report_time(h->last_seen_ms, t2, sizeof(t2)));
    fputs(",\n     \"collector\": ", f);
    json_opt(f, h->collector);
    json_history(f, h);
    fputs("}}\n", f);
}
