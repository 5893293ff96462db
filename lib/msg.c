/*
 * Messages: the fixed texts callers print (version, status codes, reasons)
 * and the bounded formatting every message goes through.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    case TKM_ENOTFOUND:
        return "not found";
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
    case TKM_REASON_LINE_AHEAD:
        return "line_ahead";
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
    /* A failed Redis call is what the next heartbeat reports. */
    if (code == TKM_EREDIS)
        tkm__note_failure(c, "redis");
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
