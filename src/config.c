/*
 * The key = value file reader of flowdex.conf(5).  Lines are read into
 * a fixed buffer: a line over CONFIG_LINE_MAX is refused rather than
 * split, so that the tail of a long line never reads as a setting.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Splits one line; returns 0 (blank or comment: *key NULL), or -1. */
static int split_line(char *line, char **key, char **value,
                      const char **why)
{
    char *s = trim(line), *eq;

    *key = NULL;
    if (*s == '\0' || *s == '#')
        return 0;
    if ((eq = strchr(s, '=')) == NULL) {
        *why = "expected 'key = value'";
        return -1;
    }
    *eq = '\0';
    *key = trim(s);
    *value = trim(eq + 1);
    if (**key == '\0') {
        *why = "no key before '='";
        return -1;
    }
    return 0;
}

int config_read(const char *path, config_fn fn, void *ud, char *msg,
                size_t size)
{
    char line[CONFIG_LINE_MAX + 2], *key, *value;
    const char *why = NULL;
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");
    int rc = 0;

    if (f == NULL && errno == ENOENT)
        return 1;
    if (f == NULL) {
        snprintf(msg, size, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            why = "line too long (at most 1024 bytes)";
            rc = -1;
        } else if ((rc = split_line(line, &key, &value, &why)) == 0 &&
                   key != NULL) {
            rc = fn(ud, key, value, &why);
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(msg, size, "%s: read error", path);
        rc = -1;
    } else if (rc != 0) {
        snprintf(msg, size, "%s:%u: %s", path, lineno, why);
    }
    fclose(f);
    return rc;
}
