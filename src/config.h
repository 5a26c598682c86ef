/*
 * A reader of "key = value" configuration files (flowdex.conf(5)): one
 * setting a line, '#' starts a comment (at the start of a line or after
 * blanks), blank lines are skipped, a key may repeat.  It knows no keys:
 * the caller's function decides what each means.
 */
#ifndef FLOWDEX_CONFIG_H
#define FLOWDEX_CONFIG_H

#include <stddef.h>

/* Longest line accepted; a longer one is an error, not truncated. */
#define CONFIG_LINE_MAX 1024

/* Called per setting; returns 0, or -1 with *why set to a reason. */
typedef int (*config_fn)(void *ud, const char *key, const char *value,
                         const char **why);

/*
 * Reads path and calls fn for each setting in order.  Returns 0, 1 when
 * the file does not exist (nothing called), or -1 with msg (size bytes)
 * naming the file, the line and the reason.
 */
int config_read(const char *path, config_fn fn, void *ud, char *msg,
                size_t size);

#endif /* FLOWDEX_CONFIG_H */
