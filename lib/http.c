/*
 * HTTP over libcurl: the only file that includes curl/curl.h.  It knows
 * nothing of Keepa or of recovery; it moves bytes within bounds (a whole
 * request within its timeout, a body within its size) and keeps secrets
 * out of what it says.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "internal.h"

#define CONNECT_MAX_MS 10000

struct tkm__http {
    CURL *curl;
    int64_t timeout_ms;
    size_t body_max;
    char err[CURL_ERROR_SIZE];
    /* The GET in progress. */
    int64_t deadline_ms; /* monotonic */
    char *body;
    size_t len, cap;
    int too_big, nomem, late;
    tkm__http_sink sink;
    void *ctx;
    int sink_stopped;
};

/* ---- messages ---------------------------------------------------------- */

void tkm__http_redact(char *out, size_t len, const char *in, const char *secret,
                      const char *withheld)
{
    size_t o = 0;

    if (out == NULL || len == 0)
        return;
    for (const char *p = in ? in : ""; *p && o + 1 < len;) {
        if (strncmp(p, "key=", 4) == 0 && o + 8 < len) {
            memcpy(out + o, "key=***", 7);
            o += 7;
            p += 4;
            while (*p && *p != '&' && !isspace((unsigned char)*p))
                p++;
        } else if (strncmp(p, "://", 3) == 0 && o + 8 < len) {
            /* The authority ends where the path, query or the quoted text
             * does; credentials end at its last '@'. */
            size_t n = strcspn(p + 3, "/?#'\" \t\r\n");
            const char *at = NULL;
            for (size_t i = 0; i < n; i++)
                if (p[3 + i] == '@')
                    at = p + 3 + i;
            memcpy(out + o, "://", 3);
            o += 3;
            p += 3;
            if (at != NULL) {
                memcpy(out + o, "***", 3);
                o += 3;
                p = at;
            }
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    if (secret != NULL && secret[0] != '\0' && strstr(out, secret) != NULL)
        tkm__fmt(out, len, "%s", withheld ? withheld : "(message withheld)");
}

/* scheme://host/path only: no user, password, query or fragment. */
static void shown_url(const char *url, char *out, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL;

    tkm__fmt(out, len, "(unparsable URL)");
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        tkm__fmt(out, len, "%s://%s%s", scheme, host, path ? path : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_url_cleanup(u);
}

tkm_code tkm__http_url_check(const char *what, const char *url, int flags,
                             char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, shown[TKM__ERR_MAX];
    tkm_code rc = TKM_OK;

    if (u == NULL)
        return TKM_ENOMEM;
    tkm__http_redact(shown, sizeof(shown), url, NULL, NULL);
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        tkm__fmt(errbuf, errlen, "%s '%.200s' is not a URL", what, shown);
        rc = TKM_ECONFIG;
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        tkm__fmt(errbuf, errlen, "%s '%.200s': scheme %s is not http or https",
                 what, shown, scheme);
        rc = TKM_ECONFIG;
    } else if ((flags & TKM__URL_NO_QUERY) &&
               (strchr(url, '?') != NULL || strchr(url, '#') != NULL)) {
        tkm__fmt(errbuf, errlen,
                 "%s '%.200s' may not carry a query or fragment", what, shown);
        rc = TKM_ECONFIG;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* ---- what every request shares --------------------------------------- */

/* libcurl's own timeout is checked between our callbacks, not during
 * them: the deadline is checked here too, as often as curl calls. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    const int64_t *deadline_ms = ud;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return tkm__monotonic_ms() > *deadline_ms;
}

static void common_options(CURL *curl, int64_t timeout_ms, char *errbuf,
                           int64_t *deadline_ms)
{
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "tokenmgr/" TKM_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(
        curl, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(timeout_ms < CONNECT_MAX_MS ? timeout_ms : CONNECT_MAX_MS));
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, deadline_ms);
}

/* ---- GET --------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    tkm__http *h = ud;
    size_t n = size * nmemb;

    if (tkm__monotonic_ms() > h->deadline_ms) {
        h->late = 1;
        return 0; /* abort the transfer */
    }
    if (h->len + n + 1 > h->body_max) {
        h->too_big = 1;
        return 0;
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        char *p;
        while (cap < h->len + n + 1)
            cap *= 2;
        if (cap > h->body_max)
            cap = h->body_max;
        p = realloc(h->body, cap);
        if (p == NULL) {
            h->nomem = 1;
            return 0;
        }
        h->body = p;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, n);
    h->len += n;
    h->body[h->len] = '\0';
    if (h->sink != NULL && !h->sink_stopped && h->sink(h->ctx, data, n) != 0)
        h->sink_stopped = 1;
    if (tkm__monotonic_ms() > h->deadline_ms) {
        h->late = 1;
        return 0;
    }
    return n;
}

tkm_code tkm__http_open(int64_t timeout_ms, size_t body_max, tkm__http **out)
{
    tkm__http *h;

    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return TKM_ENOMEM;
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->curl = curl_easy_init()) == NULL) {
        free(h);
        curl_global_cleanup();
        return TKM_ENOMEM;
    }
    h->timeout_ms = timeout_ms;
    h->body_max = body_max;
    common_options(h->curl, timeout_ms, h->err, &h->deadline_ms);
    curl_easy_setopt(h->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
    *out = h;
    return TKM_OK;
}

void tkm__http_free(tkm__http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    free(h->body);
    free(h);
    curl_global_cleanup();
}

char *tkm__http_escape(tkm__http *h, const char *s)
{
    char *esc = curl_easy_escape(h->curl, s, 0);
    char *copy = esc != NULL ? strdup(esc) : NULL;

    curl_free(esc);
    return copy;
}

tkm__http_end tkm__http_get(tkm__http *h, const char *url, tkm__http_sink sink,
                            void *ctx, long *status, char *why, size_t whylen)
{
    CURLcode cc;

    h->len = 0;
    if (h->body != NULL)
        h->body[0] = '\0';
    h->too_big = h->nomem = h->late = h->sink_stopped = 0;
    h->sink = sink;
    h->ctx = ctx;
    h->err[0] = '\0';
    tkm__fmt(why, whylen, "%s", "");
    h->deadline_ms = tkm__monotonic_ms() + h->timeout_ms;
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    cc = curl_easy_perform(h->curl);
    h->sink = NULL;
    *status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
    if (h->too_big) {
        tkm__fmt(why, whylen, "response larger than %zu bytes", h->body_max);
        return TKM__HTTP_TOO_BIG;
    }
    if (h->nomem) {
        tkm__fmt(why, whylen, "out of memory");
        return TKM__HTTP_NOMEM;
    }
    if (h->late || cc == CURLE_ABORTED_BY_CALLBACK) {
        tkm__fmt(why, whylen,
                 "no whole answer within %lld ms (%zu bytes received)",
                 (long long)h->timeout_ms, h->len);
        return TKM__HTTP_BROKEN;
    }
    if (cc != CURLE_OK) {
        tkm__fmt(why, whylen, "%s",
                 h->err[0] ? h->err : curl_easy_strerror(cc));
        if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
            cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR)
            return TKM__HTTP_UNSENT;
        return TKM__HTTP_BROKEN;
    }
    return TKM__HTTP_ANSWERED;
}

const char *tkm__http_body(const tkm__http *h, size_t *len)
{
    *len = h->body != NULL ? h->len : 0;
    return h->body != NULL ? h->body : "";
}

char *tkm__http_take_body(tkm__http *h, size_t *len)
{
    char *body = h->body;

    *len = h->len;
    if (body == NULL || h->len == 0) {
        *len = 0;
        return NULL;
    }
    h->body = NULL;
    h->len = h->cap = 0;
    return body;
}

/* ---- POST -------------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    (void)ud;
    return size * nmemb;
}

tkm_code tkm__http_post_json(const char *url, const char *body,
                             int64_t timeout_ms, long *status, char *errbuf,
                             size_t errlen)
{
    char shown[512], cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    int64_t deadline_ms = tkm__monotonic_ms() + timeout_ms;
    CURL *h;
    CURLcode cc;

    *status = 0;
    shown_url(url, shown, sizeof(shown));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return TKM_ENOMEM;
    if ((h = curl_easy_init()) == NULL) {
        curl_global_cleanup();
        tkm__fmt(errbuf, errlen, "webhook %s: libcurl unavailable", shown);
        return TKM_ENOMEM;
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    common_options(h, timeout_ms, cerr, &deadline_ms);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    if (cc != CURLE_OK) {
        /* curl's message may hold the URL: name the host only. */
        tkm__fmt(errbuf, errlen, "webhook %s: %s", shown,
                 cc == CURLE_OPERATION_TIMEDOUT ||
                         cc == CURLE_ABORTED_BY_CALLBACK
                     ? "timed out"
                     : curl_easy_strerror(cc));
        return TKM_EHTTP;
    }
    tkm__fmt(errbuf, errlen, "webhook %s: HTTP %ld", shown, *status);
    return TKM_OK;
}
