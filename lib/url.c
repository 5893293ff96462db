/*
 * Redis URLs: redis://[[user]:password@]host[:port][/db] and
 * unix://[[user]:password@]/path/to/redis.sock[?db=N].  Pure parsing;
 * redis.c connects.  No message shows a password: every one names the URL
 * as tkm__url_redact() shows it.
 */
#include <string.h>

#include "internal.h"

static tkm_code parse_db(const char *text, const char *url, tkm__url *out,
                         char *errbuf, size_t errlen)
{
    if (tkm_parse_int(text, 0, 1000000, &out->db) != TKM_OK) {
        tkm__fmt(errbuf, errlen,
                 "Redis URL '%s': database '%s' is not a number >= 0", url,
                 text);
        return TKM_ECONFIG;
    }
    return TKM_OK;
}

/*
 * The URL with any credentials masked, for messages: everything between
 * "://" and the last '@' (a password may hold '@' or '/'), and in a
 * unix:// URL without '@' whatever precedes the socket path.
 */
void tkm__url_redact(const char *url, char *buf, size_t len)
{
    const char *at = strrchr(url, '@');
    const char *scheme = strstr(url, "://");

    if (scheme != NULL && at != NULL && at > scheme) {
        tkm__fmt(buf, len, "%.*s***%s", (int)(scheme + 3 - url), url, at);
    } else if (strncmp(url, "unix://", 7) == 0 && url[7] != '/' &&
               url[7] != '\0') {
        const char *slash = strchr(url + 7, '/');
        tkm__fmt(buf, len, "unix://***%s", slash ? slash : "");
    } else {
        tkm__fmt(buf, len, "%s", url);
    }
}

static tkm_code parse_auth(const char *url, const char *auth, size_t n,
                           tkm__url *out, char *errbuf, size_t errlen)
{
    const char *colon = memchr(auth, ':', n);
    size_t ulen, plen;

    if (colon == NULL) {
        /* redis://password@host is common enough to accept. */
        ulen = 0;
        colon = auth - 1;
    } else {
        ulen = (size_t)(colon - auth);
    }
    plen = n - (size_t)(colon + 1 - auth);
    if (ulen >= sizeof(out->user) || plen >= sizeof(out->password)) {
        (void)url;
        tkm__fmt(errbuf, errlen, "Redis URL: user name or password too long");
        return TKM_ECONFIG;
    }
    memcpy(out->user, auth, ulen);
    out->user[ulen] = '\0';
    memcpy(out->password, colon + 1, plen);
    out->password[plen] = '\0';
    return TKM_OK;
}

static tkm_code parse_unix(const char *url, const char *rest, tkm__url *out,
                           char *errbuf, size_t errlen)
{
    char shown[TKM_URL_MAX + 8];
    const char *q;
    size_t n;

    tkm__url_redact(url, shown, sizeof(shown));
    if (rest[0] != '\0' && rest[0] != '/') {
        /* Credentials end with the '@' before the socket path. */
        const char *slash = strchr(rest, '/');
        if (slash == NULL || slash == rest || slash[-1] != '@') {
            tkm__fmt(errbuf, errlen,
                     "Redis URL '%s': a unix:// URL needs an absolute socket "
                     "path (unix:///path/to/redis.sock, with a password "
                     "unix://:password@/path/to/redis.sock)",
                     shown);
            return TKM_ECONFIG;
        }
        if (parse_auth(url, rest, (size_t)(slash - 1 - rest), out, errbuf,
                       errlen) != TKM_OK)
            return TKM_ECONFIG;
        rest = slash;
    }
    q = strchr(rest, '?');
    n = q ? (size_t)(q - rest) : strlen(rest);
    if (n == 0 || rest[0] != '/') {
        tkm__fmt(errbuf, errlen,
                 "Redis URL '%s': a unix:// URL needs an absolute socket path "
                 "(unix:///path/to/redis.sock)",
                 shown);
        return TKM_ECONFIG;
    }
    if (n >= sizeof(out->path)) {
        tkm__fmt(errbuf, errlen, "Redis URL '%s': socket path too long", shown);
        return TKM_ECONFIG;
    }
    memcpy(out->path, rest, n);
    out->path[n] = '\0';
    out->unix_socket = 1;
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0) {
            tkm__fmt(errbuf, errlen,
                     "Redis URL '%s': the only query parameter is ?db=N",
                     shown);
            return TKM_ECONFIG;
        }
        return parse_db(q + 4, shown, out, errbuf, errlen);
    }
    return TKM_OK;
}

static tkm_code parse_tcp(const char *url, const char *rest, tkm__url *out,
                          char *errbuf, size_t errlen)
{
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *at = memchr(rest, '@', hostlen);
    const char *host = rest;
    const char *colon;
    char shown[TKM_URL_MAX + 8];
    int64_t port = 6379;

    tkm__url_redact(url, shown, sizeof(shown));
    if (at != NULL) {
        /* Credentials may contain '@' and ':'; the host starts after the last
         * '@'. */
        const char *last = at;
        const char *p;
        while ((p = memchr(last + 1, '@', hostlen - (size_t)(last + 1 - rest))))
            last = p;
        at = last;
        if (parse_auth(url, rest, (size_t)(at - rest), out, errbuf, errlen))
            return TKM_ECONFIG;
        host = at + 1;
        hostlen -= (size_t)(host - rest);
    }
    colon = memchr(host, ':', hostlen);
    if (colon != NULL) {
        char portbuf[16];
        size_t plen = hostlen - (size_t)(colon + 1 - host);
        if (plen == 0 || plen >= sizeof(portbuf)) {
            tkm__fmt(errbuf, errlen, "Redis URL '%s': bad port", shown);
            return TKM_ECONFIG;
        }
        memcpy(portbuf, colon + 1, plen);
        portbuf[plen] = '\0';
        if (tkm_parse_int(portbuf, 1, 65535, &port) != TKM_OK) {
            tkm__fmt(errbuf, errlen,
                     "Redis URL '%s': port '%s' is not a number in 1..65535",
                     shown, portbuf);
            return TKM_ECONFIG;
        }
        hostlen = (size_t)(colon - host);
    }
    if (hostlen == 0 || hostlen >= sizeof(out->host)) {
        tkm__fmt(errbuf, errlen, "Redis URL '%s': missing or too long host",
                 shown);
        return TKM_ECONFIG;
    }
    for (size_t i = 0; i < hostlen; i++) {
        if (strchr("/?#[] \t", host[i]) != NULL) {
            tkm__fmt(errbuf, errlen,
                     "Redis URL '%s': character '%c' not allowed in the host",
                     shown, host[i]);
            return TKM_ECONFIG;
        }
    }
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    out->port = (int)port;
    if (slash != NULL && slash[1] != '\0')
        return parse_db(slash + 1, shown, out, errbuf, errlen);
    return TKM_OK;
}

tkm_code tkm__url_parse(const char *text, tkm__url *out, char *errbuf,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0') {
        tkm__fmt(errbuf, errlen, "Redis URL is empty");
        return TKM_ECONFIG;
    }
    if (strncmp(text, "unix://", 7) == 0)
        return parse_unix(text, text + 7, out, errbuf, errlen);
    if (strncmp(text, "redis://", 8) == 0)
        return parse_tcp(text, text + 8, out, errbuf, errlen);
    tkm__fmt(
        errbuf, errlen,
        "Redis URL '%.60s' is not redis://[[user]:password@]host[:port][/db] "
        "or unix://[[user]:password@]/path/to/redis.sock[?db=N]",
        strchr(text, '@') ? "(redacted)" : text);
    return TKM_ECONFIG;
}
