/*
 * flowdex status: prints the counters flowdex collect last wrote to its
 * status file (one "key=value ..." line per object; see
 * flowdex-collect(8)), as they are or as JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_STATUS "/var/lib/flowdex/collect.status"
#define STATUS_HEADER "# flowdex collect status"
#define STATUS_LINE_MAX 1024

static void status_usage(FILE *f)
{
    fprintf(f,
        "usage: flowdex status [--status FILE] [--json]\n"
        "\n"
        "      --status FILE  the collector's status file\n"
        "                     (default " DEFAULT_STATUS ")\n"
        "      --json         JSON output\n"
        "  -h, --help         this help\n");
}

static void json_string(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* One line as a JSON object: digits become numbers, the rest strings. */
static void json_line(FILE *out, char *line, int first)
{
    char *tok, *save = NULL;
    int n = 0;

    fprintf(out, "%s\n  {", first ? "" : ",");
    for (tok = strtok_r(line, " \n", &save); tok != NULL;
         tok = strtok_r(NULL, " \n", &save)) {
        char *eq = strchr(tok, '=');
        const char *v = eq ? eq + 1 : "";
        size_t klen = eq ? (size_t)(eq - tok) : strlen(tok);

        fprintf(out, "%s", n++ ? ", " : "");
        json_string(out, tok, klen);
        fputs(": ", out);
        if (*v != '\0' && strspn(v, "0123456789") == strlen(v))
            fputs(v, out);
        else
            json_string(out, v, strlen(v));
    }
    fputc('}', out);
}

static int print_status(FILE *f, const char *path, int json)
{
    char line[STATUS_LINE_MAX];
    int first = 1;

    if (fgets(line, sizeof(line), f) == NULL ||
        strncmp(line, STATUS_HEADER, strlen(STATUS_HEADER)) != 0) {
        cli_errorf("status: %s: not a flowdex collect status file", path);
        return EX_DATAERR;
    }
    if (json)
        fputc('[', stdout);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#')
            continue;
        if (json)
            json_line(stdout, line, first);
        else
            fputs(line, stdout);
        first = 0;
    }
    if (json)
        fputs("\n]\n", stdout);
    return 0;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *path = DEFAULT_STATUS;
    int c, json = 0, rc;
    FILE *f;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': path = optarg; break;
        case 'j': json = 1; break;
        case 'h': status_usage(stdout); return 0;
        default: return cli_bad_option("status", argv);
        }
    }
    if (optind < argc) {
        cli_errorf("status: unexpected argument '%s'", argv[optind]);
        return EX_USAGE;
    }
    if ((f = fopen(path, "r")) == NULL) {
        cli_errorf("status: %s: %s", path, strerror(errno));
        return EX_NOINPUT;
    }
    rc = print_status(f, path, json);
    fclose(f);
    return rc;
}
