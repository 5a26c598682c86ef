/*
 * Writing strings that come from a catalog or a command line.  A catalog
 * file can be forged and hold any bytes, so no string read from one is
 * printed as it is: JSON gets escapes and U+FFFD for bytes that are not
 * UTF-8, the table and CSV get '?' for control characters and such bytes,
 * so that no output is invalid JSON or drives the terminal (ESC, CSI).
 */
#ifndef FLOWDEX_TEXT_H
#define FLOWDEX_TEXT_H

#include <stdio.h>

/* Writes s (NULL as "") as a quoted JSON string (RFC 8259). */
void text_json(FILE *f, const char *s);

/*
 * Writes s (NULL as "") for people: printable ASCII and UTF-8 other than
 * control characters as they are, each other byte or control character
 * as '?'.  Returns the number of characters written.
 */
size_t text_plain(FILE *f, const char *s);

/* text_plain() padded with spaces to width characters. */
void text_pad(FILE *f, const char *s, size_t width);

/* Writes s as one CSV field (RFC 4180): as text_plain(), quoted when it
 * holds a comma or a double quote. */
void text_csv(FILE *f, const char *s);

#endif /* FLOWDEX_TEXT_H */
