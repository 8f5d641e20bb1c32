/* utf8.h - UTF-8 decoding as Go's unicode/utf8 does it (utf8.c). */
#ifndef CORONET_UTF8_H
#define CORONET_UTF8_H

#include <stddef.h>

/* utf8_full: whether s[0..n) starts with a whole rune or an invalid one
 * (utf8.FullRune): only a valid but cut sequence needs more bytes. */
int utf8_full(const unsigned char *s, size_t n);

/* utf8_decode: the rune at s[0..n) and its width in *width; an invalid
 * or cut sequence is U+FFFD of width 1 (utf8.DecodeRune). */
long utf8_decode(const unsigned char *s, size_t n, int *width);

/* utf8_space: whether r is a space for Go's bufio.ScanWords
 * (unicode.IsSpace). */
int utf8_space(long r);

#endif
