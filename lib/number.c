/*
 * The one checked number parser (integers and decimals) for YAML scalars,
 * Redis replies, HTTP bodies and command-line arguments.
 */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

TKM_EXPORT tkm_code tkm_parse_int(const char *text, int64_t min, int64_t max,
                                  int64_t *out)
{
    char *end = NULL;
    long long v;
    const char *p = text;

    if (text == NULL || out == NULL)
        return TKM_EINVAL;
    /* strtoll skips leading spaces and takes "+": we want the bare number. */
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return TKM_EINVAL;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return TKM_EINVAL;
    if (v < min || v > max)
        return TKM_EINVAL;
    *out = (int64_t)v;
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_parse_double(const char *text, double min, double max,
                                     double *out)
{
    const char *p = text;
    char *end = NULL;
    locale_t c_locale;
    double v;
    int saved;

    if (text == NULL || out == NULL)
        return TKM_EINVAL;
    /*
     * strtod also takes leading spaces, hex, "inf", "nan" and locale
     * separators; none of them is a number the legacy system or a config
     * file writes, so only the plain decimal alphabet gets that far.
     */
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p) &&
        !(*p == '.' && isdigit((unsigned char)p[1])))
        return TKM_EINVAL;
    if (text[strspn(text, "0123456789.eE+-")] != '\0')
        return TKM_EINVAL;
    /* The C locale: a host process (collectd, a worker) may have set one
     * whose decimal separator is not '.'. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return TKM_EINVAL;
    errno = 0;
    v = strtod_l(text, &end, c_locale);
    saved = errno;
    freelocale(c_locale);
    if (saved != 0 || end == text || *end != '\0' || !isfinite(v))
        return TKM_EINVAL;
    if (v < min || v > max)
        return TKM_EINVAL;
    *out = v;
    return TKM_OK;
}
