/*
 * JSON string writing, written once for the library (webhook bodies), the
 * command-line tool and the fake Keepa server.  No library symbol and no
 * libc call: any program can compile this file.
 */
#include "jsonw.h"

/*
 * The length of the well-formed UTF-8 character at p (n >= 1 bytes left),
 * or 0 with *bad the length of its maximal ill-formed prefix (>= 1).  The
 * ranges are those of Unicode's table 3-7: the second byte's range after
 * E0, ED, F0 and F4 excludes overlongs, surrogates and code points above
 * U+10FFFF.
 */
static size_t utf8_char(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        need = 1;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        need = 2;
        if (p[0] == 0xE0)
            lo = 0xA0;
        else if (p[0] == 0xED)
            hi = 0x9F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        need = 3;
        if (p[0] == 0xF0)
            lo = 0x90;
        else if (p[0] == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

size_t tkm__jsonw_escape(char *out, size_t outlen, const char *in, size_t inlen,
                         size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, i = 0;

    if (outlen == 0) {
        if (consumed != NULL)
            *consumed = 0;
        return 0;
    }
    while (i < inlen) {
        unsigned char unit[6];
        const unsigned char *src = unit;
        size_t ulen, take = 1, bad = 1;

        if (p[i] == '"' || p[i] == '\\') {
            unit[0] = '\\';
            unit[1] = p[i];
            ulen = 2;
        } else if (p[i] < 0x20) {
            unit[0] = '\\';
            unit[1] = 'u';
            unit[2] = '0';
            unit[3] = '0';
            unit[4] = (unsigned char)hex[p[i] >> 4];
            unit[5] = (unsigned char)hex[p[i] & 0xF];
            ulen = 6;
        } else if ((ulen = utf8_char(p + i, inlen - i, &bad)) > 0) {
            src = p + i;
            take = ulen;
        } else {
            unit[0] = 0xEF; /* U+FFFD */
            unit[1] = 0xBF;
            unit[2] = 0xBD;
            ulen = 3;
            take = bad;
        }
        if (o + ulen + 1 > outlen)
            break;
        for (size_t k = 0; k < ulen; k++)
            out[o + k] = (char)src[k];
        o += ulen;
        i += take;
    }
    out[o] = '\0';
    if (consumed != NULL)
        *consumed = i;
    return o;
}
