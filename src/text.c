/*
 * Safe output of untrusted strings; see text.h.  One UTF-8 decoder
 * serves both forms: it accepts only well-formed sequences (no overlong
 * forms, surrogates or code points past U+10FFFF), so what passes through
 * is valid UTF-8 whatever the input.
 */
#include <stdint.h>
#include <string.h>

#include "text.h"

/*
 * Length of the well-formed UTF-8 sequence at s (1 to 4) with its code
 * point in *cp, or 0 when s does not start one.  s is NUL-terminated, so
 * a sequence cut by the end fails on the NUL.
 */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
             : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7f >> n);

    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (n == 0 || c < min[n] || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
        return 0;
    *cp = c;
    return n;
}

/* C0, DEL and C1: what a terminal may act on. */
static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

void text_json(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    fputc('"', f);
    while (*p) {
        uint32_t cp;
        size_t n = utf8_seq(p, &cp);

        if (n == 0) {
            fputs("\\ufffd", f);
            n = 1;
        } else if (cp == '"' || cp == '\\') {
            fprintf(f, "\\%c", (int)cp);
        } else if (is_control(cp)) {
            fprintf(f, "\\u%04x", (unsigned)cp);
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
    fputc('"', f);
}

/* The table and CSV form; csv doubles each double quote. */
static size_t plain(FILE *f, const unsigned char *p, int csv)
{
    size_t chars = 0;

    for (; *p; chars++) {
        uint32_t cp;
        size_t n = utf8_seq(p, &cp);

        if (n == 0 || is_control(cp))
            fputc('?', f);
        else if (csv && cp == '"')
            fputs("\"\"", f);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
    return chars;
}

size_t text_plain(FILE *f, const char *s)
{
    return plain(f, (const unsigned char *)(s ? s : ""), 0);
}

void text_pad(FILE *f, const char *s, size_t width)
{
    for (size_t n = text_plain(f, s); n < width; n++)
        fputc(' ', f);
}

void text_csv(FILE *f, const char *s)
{
    int quote = s != NULL && strpbrk(s, ",\"") != NULL;

    if (quote)
        fputc('"', f);
    plain(f, (const unsigned char *)(s ? s : ""), quote);
    if (quote)
        fputc('"', f);
}
