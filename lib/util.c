/* Small shared helpers: messages, name checks, the checked number parser. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

TKM_EXPORT const char *tkm_version(void)
{
    return TKM_VERSION;
}

TKM_EXPORT const char *tkm_strerror(tkm_code code)
{
    switch (code) {
    case TKM_OK:
        return "success";
    case TKM_EINVAL:
        return "invalid argument";
    case TKM_ECONFIG:
        return "configuration error";
    case TKM_EREDIS:
        return "Redis unavailable";
    case TKM_EPROTO:
        return "unexpected reply from Redis";
    case TKM_ESTATE:
        return "pool state in Redis is corrupt";
    case TKM_ENOGRANT:
        return "no such reservation";
    case TKM_ENOMEM:
        return "out of memory";
    case TKM_EIO:
        return "file could not be read";
    case TKM_EHTTP:
        return "API unreachable or answering garbage";
    case TKM_EAPI:
        return "API refused the request";
    case TKM_EWAIT:
        return "tokens not available within the wait limit";
    case TKM_ECANCELED:
        return "canceled";
    }
    return "unknown status code";
}

TKM_EXPORT const char *tkm_reason_str(tkm_reason reason)
{
    switch (reason) {
    case TKM_REASON_OK:
        return "ok";
    case TKM_REASON_RECHARGING:
        return "recharging";
    case TKM_REASON_INSUFFICIENT:
        return "insufficient";
    case TKM_REASON_DEFICIT_LIMIT:
        return "deficit_limit";
    case TKM_REASON_NEED_SYNC:
        return "need_sync";
    case TKM_REASON_WAIT_TOO_LONG:
        return "wait_too_long";
    }
    return "unknown";
}

void tkm__fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

tkm_code tkm__fail(tkm_client *c, tkm_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return code;
}

int tkm__copy(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstlen)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static int name_valid(const char *s, size_t max, const char *extra)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (!isalnum(ch) && strchr(extra, ch) == NULL)
            return 0;
        if (n >= max)
            return 0;
    }
    return n > 0 && n <= max;
}

int tkm__pool_name_valid(const char *name)
{
    return name_valid(name, TKM_POOL_MAX, "_.-");
}

int tkm__worker_id_valid(const char *id)
{
    return name_valid(id, TKM_WORKER_ID_MAX, "_.:@-");
}

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

tkm_code tkm__read_secret_file(const char *what, const char *path, char *buf,
                               size_t len, char *errbuf, size_t errlen)
{
    struct stat st;
    size_t n = 0;
    ssize_t r;
    char extra, why[TKM__ERR_MAX];
    int fd;

    buf[0] = '\0';
    /* A missing file is a configuration error; a FIFO is never waited on. */
    fd = tkm__open_regular(path, O_RDONLY, why, sizeof(why));
    if (fd < 0) {
        tkm__fmt(errbuf, errlen, "%s %s", what, why);
        return TKM_ECONFIG;
    }
    /* The mode of what was opened, not of what the name points to later. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        tkm__fmt(errbuf, errlen, "%s %s: not a regular file", what, path);
        return TKM_ECONFIG;
    }
    if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
        close(fd);
        tkm__fmt(errbuf, errlen,
                 "%s %s is readable or writable by group or others (mode "
                 "%04o): refused, run chmod 600 on it",
                 what, path, (unsigned)(st.st_mode & 07777));
        return TKM_ECONFIG;
    }
    while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            memset(buf, 0, len);
            tkm__fmt(errbuf, errlen, "%s %s: cannot read: %s", what, path,
                     strerror(errno));
            return TKM_EIO;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (n + 1 >= len && read(fd, &extra, 1) == 1) {
        close(fd);
        memset(buf, 0, len);
        tkm__fmt(errbuf, errlen, "%s %s: longer than %zu bytes", what, path,
                 len - 1);
        return TKM_ECONFIG;
    }
    close(fd);
    /* "echo SECRET > file" leaves a newline. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0 || strlen(buf) != n) {
        memset(buf, 0, len);
        tkm__fmt(errbuf, errlen, "%s %s: %s", what, path,
                 n == 0 ? "is empty" : "holds a NUL byte");
        return TKM_ECONFIG;
    }
    return TKM_OK;
}
