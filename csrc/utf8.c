/* utf8.c - UTF-8 decoding with Go's unicode/utf8 rules (an invalid or cut
 * sequence is U+FFFD of width 1; surrogates and overlongs are invalid),
 * for the scanner's scan_runes and scan_words in bufio.c. */
#include "utf8.h"

/* The length of the sequence b0 starts (0: invalid) and the range its
 * second byte must fall in. */
static int utf8_need(unsigned char b0, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b0 < 0x80) return 1;
    if (b0 < 0xC2) return 0;
    if (b0 < 0xE0) return 2;
    if (b0 < 0xF0) {
        if (b0 == 0xE0) *lo = 0xA0;
        if (b0 == 0xED) *hi = 0x9F;
        return 3;
    }
    if (b0 < 0xF5) {
        if (b0 == 0xF0) *lo = 0x90;
        if (b0 == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* utf8_full: whether s[0..n) starts with a whole rune or an invalid one
 * (utf8.FullRune): only a valid but cut sequence needs more bytes. */
int utf8_full(const unsigned char *s, size_t n) {
    unsigned char lo, hi;
    if (n == 0) return 0;
    int need = utf8_need(s[0], &lo, &hi);
    if (need <= 1 || n >= (size_t)need) return 1;
    if (n >= 2 && (s[1] < lo || s[1] > hi)) return 1;
    if (n >= 3 && (s[2] < 0x80 || s[2] > 0xBF)) return 1;
    return 0;
}

/* utf8_decode: the rune at s[0..n) and its width; an invalid or cut
 * sequence is U+FFFD of width 1 (utf8.DecodeRune). */
long utf8_decode(const unsigned char *s, size_t n, int *width) {
    unsigned char lo, hi;
    *width = 1;
    if (n == 0) return 0xFFFD;
    int need = utf8_need(s[0], &lo, &hi);
    if (need == 1) return s[0];
    if (need == 0 || n < (size_t)need || s[1] < lo || s[1] > hi) return 0xFFFD;
    long cp = (long)(s[0] & (0xFF >> (need + 1)));
    cp = (cp << 6) | (s[1] & 0x3F);
    for (int i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *width = need;
    return cp;
}

/* utf8_space: Go's bufio.isSpace (unicode.IsSpace without the table). */
int utf8_space(long r) {
    if (r <= 0xFF)
        return r == ' ' || (r >= '\t' && r <= '\r') || r == 0x85 || r == 0xA0;
    if (r >= 0x2000 && r <= 0x200A) return 1;
    return r == 0x1680 || r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F ||
           r == 0x3000;
}
