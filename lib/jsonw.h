/*
 * JSON string writing (jsonw.c).  Dependency-free: it uses no other symbol
 * of the library, so the command-line tool and the fake Keepa server
 * compile the same file.
 */
#ifndef TKM_JSONW_H
#define TKM_JSONW_H

#include <stddef.h>

/* The most bytes tkm__jsonw_escape writes for n input bytes, NUL included
 * (a control character becomes the 6 bytes of \u00XX). */
#define TKM__JSONW_MAX(n) (6 * (size_t)(n) + 1)

/*
 * Write in[0..inlen) as the inside of a JSON string (no quotes) into out
 * (outlen bytes, NUL-terminated when outlen > 0): '"' and '\' escaped,
 * control characters (NUL included) as \u00XX, well-formed UTF-8 copied,
 * and each ill-formed UTF-8 sequence (a stray continuation byte, an
 * overlong form, a UTF-16 surrogate, a code point above U+10FFFF, a
 * sequence cut short, the bytes C0, C1 and F5..FF) replaced by U+FFFD, one
 * for each maximal ill-formed part as Unicode recommends.  The result is
 * always valid JSON.  Output stops before a character or an escape that
 * would not fit whole.  Returns the bytes written (NUL excluded);
 * *consumed (may be NULL) gets how many bytes of `in` were written out.
 * Thread-safe and async-signal-safe.
 */
size_t tkm__jsonw_escape(char *out, size_t outlen, const char *in, size_t inlen,
                         size_t *consumed);

#endif
