/*
 * The Keepa client: the only file that talks to libcurl.  Every request is
 * paid for through the bucket (acquire, then complete or release) and every
 * token report the API sends is applied, so the shared balance follows what
 * Keepa says.  The access key never reaches a message.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keepa_json.h"

#define KEY_MAX          256
#define BODY_MAX         ((size_t)256 << 20) /* a Keepa answer is megabytes at most */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   30000

struct tkm_keepa {
    tkm_client *client;
    CURL *curl;
    char key[KEY_MAX];
    char base[TKM_URL_MAX + 1]; /* without a trailing '/' */
    char err[TKM__ERR_MAX];
    char curl_err[CURL_ERROR_SIZE];
    /* The response being received. */
    char *body;
    size_t len, cap;
    int too_big;
    tkm__json *json;
    int json_bad;
    tkm__keepa_fields fields;
};

static tkm_code kfail(tkm_keepa *kc, tkm_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a message with every "key=..." masked, whatever produced it. */
static tkm_code kfail(tkm_keepa *kc, tkm_code code, const char *fmt, ...)
{
    char raw[TKM__ERR_MAX];
    size_t o = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    for (const char *p = raw; *p && o + 1 < sizeof(kc->err);) {
        if (strncmp(p, "key=", 4) == 0 && o + 8 < sizeof(kc->err)) {
            memcpy(kc->err + o, "key=***", 7);
            o += 7;
            p += 4;
            while (*p && *p != '&' && !isspace((unsigned char)*p))
                p++;
        } else {
            kc->err[o++] = *p++;
        }
    }
    kc->err[o] = '\0';
    if (kc->key[0] != '\0' && strstr(kc->err, kc->key) != NULL)
        tkm__fmt(kc->err, sizeof(kc->err),
                 "%s (message withheld: it "
                 "contained the access key)",
                 tkm_strerror(code));
    return code;
}

TKM_EXPORT const char *tkm_keepa_errstr(const tkm_keepa *kc)
{
    return kc == NULL ? "no Keepa client" : kc->err;
}

static tkm_code read_key(tkm_keepa *kc, const tkm_keepa_options *o)
{
    size_t n;

    if (o->key_file[0] != '\0') {
        char why[TKM__ERR_MAX];
        tkm_code rc =
            tkm__read_secret_file("keepa.key_file", o->key_file, kc->key,
                                  sizeof(kc->key), why, sizeof(why));
        if (rc != TKM_OK)
            return kfail(kc, rc, "%s", why);
    } else {
        const char *env = getenv("TOKENMGR_KEEPA_KEY");
        if (env == NULL || env[0] == '\0')
            return kfail(kc, TKM_ECONFIG,
                         "no Keepa access key: set keepa.key_file or "
                         "$TOKENMGR_KEEPA_KEY");
        if (tkm__copy(kc->key, sizeof(kc->key), env) != 0)
            return kfail(kc, TKM_ECONFIG,
                         "$TOKENMGR_KEEPA_KEY is longer than %d bytes",
                         KEY_MAX - 1);
    }
    n = strlen(kc->key);
    while (n > 0 && isspace((unsigned char)kc->key[n - 1]))
        kc->key[--n] = '\0'; /* "echo KEY > file" leaves a newline */
    if (n == 0)
        return kfail(kc, TKM_ECONFIG, "the Keepa access key %s is empty",
                     o->key_file[0] ? o->key_file : "($TOKENMGR_KEEPA_KEY)");
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)kc->key[i])) {
            memset(kc->key, 0, sizeof(kc->key));
            return kfail(kc, TKM_ECONFIG,
                         "the Keepa access key %s holds a character other "
                         "than letters and digits",
                         o->key_file[0] ? o->key_file
                                        : "($TOKENMGR_KEEPA_KEY)");
        }
    }
    return TKM_OK;
}

static tkm_code check_base_url(tkm_keepa *kc, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    tkm_code rc = TKM_OK;
    size_t n;

    if (u == NULL)
        return kfail(kc, TKM_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc =
            kfail(kc, TKM_ECONFIG, "keepa.base_url '%.200s' is not a URL", url);
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = kfail(kc, TKM_ECONFIG,
                   "keepa.base_url '%.200s': scheme %s is not http or https",
                   url, scheme);
    } else if (strchr(url, '?') != NULL || strchr(url, '#') != NULL) {
        rc = kfail(kc, TKM_ECONFIG,
                   "keepa.base_url '%.200s' may not carry a query or fragment",
                   url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (rc != TKM_OK)
        return rc;
    tkm__copy(kc->base, sizeof(kc->base), url);
    n = strlen(kc->base);
    while (n > 0 && kc->base[n - 1] == '/')
        kc->base[--n] = '\0';
    return TKM_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    tkm_keepa *kc = ctx;
    size_t n = size * nmemb;

    if (kc->len + n + 1 > BODY_MAX) {
        kc->too_big = 1;
        return 0; /* abort the transfer */
    }
    if (kc->len + n + 1 > kc->cap) {
        size_t cap = kc->cap ? kc->cap : 16384;
        char *p;
        while (cap < kc->len + n + 1)
            cap *= 2;
        p = realloc(kc->body, cap);
        if (p == NULL)
            return 0;
        kc->body = p;
        kc->cap = cap;
    }
    memcpy(kc->body + kc->len, data, n);
    kc->len += n;
    kc->body[kc->len] = '\0';
    if (!kc->json_bad && tkm__json_feed(kc->json, data, n) != 0)
        kc->json_bad = 1;
    return n;
}

TKM_EXPORT tkm_code tkm_keepa_open(tkm_client *client, tkm_keepa **out)
{
    const tkm_keepa_options *o = &tkm_client_options(client)->keepa;
    tkm_keepa *kc;
    tkm_code rc;

    *out = NULL;
    kc = calloc(1, sizeof(*kc));
    if (kc == NULL)
        return TKM_ENOMEM;
    *out = kc;
    kc->client = client;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return kfail(kc, TKM_ENOMEM, "libcurl could not be initialised");
    rc = check_base_url(kc, o->base_url);
    if (rc == TKM_OK)
        rc = read_key(kc, o);
    if (rc != TKM_OK)
        return rc;
    kc->curl = curl_easy_init();
    if (kc->curl == NULL)
        return kfail(kc, TKM_ENOMEM, "out of memory creating a curl handle");
    curl_easy_setopt(kc->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(kc->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(kc->curl, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(kc->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->timeout_ms < 10000 ? o->timeout_ms : 10000));
    curl_easy_setopt(kc->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(kc->curl, CURLOPT_USERAGENT, "tokenmgr/" TKM_VERSION);
    curl_easy_setopt(kc->curl, CURLOPT_ERRORBUFFER, kc->curl_err);
    curl_easy_setopt(kc->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(kc->curl, CURLOPT_WRITEDATA, kc);
    return TKM_OK;
}

TKM_EXPORT void tkm_keepa_free(tkm_keepa *kc)
{
    if (kc == NULL)
        return;
    if (kc->curl != NULL)
        curl_easy_cleanup(kc->curl);
    tkm__json_free(kc->json);
    free(kc->body);
    memset(kc->key, 0, sizeof(kc->key));
    free(kc);
    curl_global_cleanup();
}

TKM_EXPORT void tkm_keepa_response_free(tkm_keepa_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* What one HTTP exchange came to. */
typedef enum outcome {
    OUT_OK,        /* 2xx with the token fields */
    OUT_DENIED,    /* 429, or 503 with a token body: no tokens */
    OUT_API_ERROR, /* 4xx: the request itself is wrong */
    OUT_NOT_RUN,   /* the call cannot have reached Keepa: release */
    OUT_MAYBE_RUN, /* it may have run: keep the estimate */
    OUT_FATAL      /* out of memory, body too large */
} outcome;

/* GET url; fills kc->fields and *status.  *why gets a short reason. */
static outcome perform(tkm_keepa *kc, const char *url, long *status, char *why,
                       size_t whylen)
{
    CURLcode cc;
    int complete;

    kc->len = 0;
    kc->too_big = 0;
    kc->json_bad = 0;
    kc->curl_err[0] = '\0';
    tkm__json_free(kc->json);
    kc->json = tkm__json_new(&kc->fields);
    if (kc->json == NULL) {
        tkm__fmt(why, whylen, "out of memory");
        return OUT_FATAL;
    }
    curl_easy_setopt(kc->curl, CURLOPT_URL, url);
    cc = curl_easy_perform(kc->curl);
    *status = 0;
    curl_easy_getinfo(kc->curl, CURLINFO_RESPONSE_CODE, status);
    if (kc->too_big) {
        tkm__fmt(why, whylen, "response larger than %zu bytes", BODY_MAX);
        return OUT_FATAL;
    }
    if (cc != CURLE_OK) {
        tkm__fmt(why, whylen, "%s",
                 kc->curl_err[0] ? kc->curl_err : curl_easy_strerror(cc));
        if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
            cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR)
            return OUT_NOT_RUN;
        return OUT_MAYBE_RUN;
    }
    complete = !kc->json_bad && tkm__json_finish(kc->json) == 0;
    if (*status == 429 ||
        (*status == 503 && (kc->fields.present & TKM__F_TOKENS_LEFT))) {
        tkm__fmt(why, whylen, "HTTP %ld: out of tokens", *status);
        return OUT_DENIED;
    }
    if (*status >= 500 || *status < 200) {
        tkm__fmt(why, whylen, "HTTP %ld%s", *status,
                 complete ? "" : " with a body that is not JSON");
        /* A gateway error (HTML body) or 503 without tokens: Keepa did not
         * run the call.  A 500 with a token body did run. */
        return (kc->fields.present & TKM__F_TOKENS_LEFT) ? OUT_MAYBE_RUN
                                                         : OUT_NOT_RUN;
    }
    if (*status >= 400) {
        tkm__fmt(why, whylen, "HTTP %ld: %s", *status,
                 kc->fields.error_message[0] ? kc->fields.error_message
                                             : "request refused");
        return OUT_API_ERROR;
    }
    if (!complete) {
        tkm__fmt(why, whylen, "HTTP %ld with a body that is not complete JSON",
                 *status);
        return OUT_MAYBE_RUN;
    }
    if ((kc->fields.present & TKM__F_REPORT) != TKM__F_REPORT) {
        tkm__fmt(why, whylen, "HTTP %ld without the token fields", *status);
        return OUT_MAYBE_RUN;
    }
    return OUT_OK;
}

/* base + path + ?key=...&name=value...; NULL when out of memory. */
static char *build_url(tkm_keepa *kc, const char *path,
                       const char *const *params)
{
    size_t cap = strlen(kc->base) + strlen(path) + strlen(kc->key) + 16;
    char *url, *p;

    for (const char *const *q = params; q && q[0] && q[1]; q += 2)
        cap += strlen(q[0]) + 3 * strlen(q[1]) + 2;
    url = malloc(cap);
    if (url == NULL)
        return NULL;
    p = url + snprintf(url, cap, "%s%s%s?key=%s", kc->base,
                       path[0] == '/' ? "" : "/", path, kc->key);
    for (const char *const *q = params; q && q[0] && q[1]; q += 2) {
        char *esc = curl_easy_escape(kc->curl, q[1], 0);
        if (esc == NULL) {
            free(url);
            return NULL;
        }
        p += snprintf(p, cap - (size_t)(p - url), "&%s=%s", q[0], esc);
        curl_free(esc);
    }
    return url;
}

/* The API's token state, applied as an authoritative sync. */
static void apply_token_report(tkm_keepa *kc)
{
    const tkm__keepa_fields *f = &kc->fields;
    tkm_sync_info in;

    if ((f->present & TKM__F_SYNC) != TKM__F_SYNC)
        return;
    in.tokens = f->tokens_left;
    in.rate = f->refill_rate;
    in.refill_in_ms = f->refill_in_ms;
    in.timestamp_ms = f->timestamp_ms;
    if (in.refill_in_ms >
        tkm_client_options(kc->client)->bucket.refill_period_ms)
        in.refill_in_ms = -1;
    (void)tkm_sync(kc->client, &in, NULL); /* a stale report is fine */
}

static void fill_response(tkm_keepa *kc, long status, int attempts, int n429,
                          tkm_keepa_response *resp)
{
    const tkm__keepa_fields *f = &kc->fields;

    resp->http_status = status;
    resp->has_tokens = (f->present & TKM__F_TOKENS_LEFT) != 0;
    resp->tokens_left = f->tokens_left;
    resp->tokens_consumed = f->tokens_consumed;
    resp->refill_in_ms = f->refill_in_ms;
    resp->refill_rate = f->refill_rate;
    resp->timestamp_ms = f->timestamp_ms;
    resp->processing_ms = f->processing_ms;
    resp->token_flow_reduction = f->token_flow_reduction;
    tkm__copy(resp->error, sizeof(resp->error), f->error_message);
    resp->attempts = attempts;
    resp->http_429s = n429;
}

/* Reserve `cost`: blocking, with one throttled sync for a pool without state.
 */
static tkm_code reserve(tkm_keepa *kc, int64_t cost, tkm_grant *g)
{
    tkm_client *c = kc->client;
    tkm_code rc;

    for (int synced = 0;; synced = 1) {
        rc = tkm_acquire(c, cost, -1, g);
        if (rc != TKM_OK)
            return kfail(kc, rc, "acquire: %s", tkm_errstr(c));
        if (g->granted)
            return TKM_OK;
        if (g->reason == TKM_REASON_NEED_SYNC && !synced) {
            tkm_keepa_sync_result sr;
            rc = tkm_keepa_sync(kc, 0, &sr);
            if (rc != TKM_OK)
                return rc;
            continue;
        }
        if (g->reason == TKM_REASON_WAIT_TOO_LONG)
            return kfail(kc, TKM_EWAIT,
                         "%lld tokens are %lld ms away, more than "
                         "bucket.max_wait_s %lld s: free the worker and "
                         "retry later",
                         (long long)cost, (long long)g->retry_after_ms,
                         (long long)tkm_client_options(c)->bucket.max_wait_s);
        return kfail(kc, TKM_EWAIT, "%lld tokens cannot be reserved: %s",
                     (long long)cost, tkm_reason_str(g->reason));
    }
}

TKM_EXPORT tkm_code tkm_keepa_request(tkm_keepa *kc, const char *path,
                                      const char *const *params,
                                      int64_t estimated_cost,
                                      tkm_keepa_response *resp)
{
    tkm_client *c = kc->client;
    const tkm_options *o = tkm_client_options(c);
    char phase[TKM_PHASE_MAX + 1], why[TKM__ERR_MAX] = "";
    int attempts = 0, n429 = 0, failures = 0;
    long status = 0;
    char *url;
    tkm_code rc = TKM_OK;

    memset(resp, 0, sizeof(*resp));
    if (kc->curl == NULL)
        return kfail(kc, TKM_ECONFIG, "the Keepa client was not opened");
    if (estimated_cost < 0)
        return kfail(kc, TKM_EINVAL, "estimated cost %lld is negative",
                     (long long)estimated_cost);
    url = build_url(kc, path, params);
    if (url == NULL)
        return kfail(kc, TKM_ENOMEM, "out of memory building the URL");
    tkm__fmt(phase, sizeof(phase), "keepa %.100s", path);
    for (;;) {
        tkm_grant g;
        outcome out;

        rc = reserve(kc, estimated_cost, &g);
        if (rc != TKM_OK)
            break;
        (void)tkm_heartbeat(c, phase);
        attempts++;
        out = perform(kc, url, &status, why, sizeof(why));
        if (out == OUT_OK) {
            tkm_report rep = {kc->fields.tokens_left, kc->fields.timestamp_ms};
            int64_t used = (kc->fields.present & TKM__F_CONSUMED)
                               ? kc->fields.tokens_consumed
                               : estimated_cost;
            /* An expired lease (a very slow call) still had its report. */
            if (tkm_complete(c, g.id, used, &rep, NULL) == TKM_ENOGRANT)
                apply_token_report(kc);
            rc = TKM_OK;
            break;
        }
        if (out == OUT_DENIED) {
            /* Nothing was charged; Keepa's balance is the truth now. */
            n429++;
            (void)tkm_release(c, g.id, NULL);
            apply_token_report(kc);
            if (n429 > o->keepa.max_retries) {
                rc = kfail(kc, TKM_EHTTP, "%s %s: %d answers 429 in a row",
                           "GET", path, n429);
                break;
            }
            continue; /* the next acquire waits as the bucket says */
        }
        if (out == OUT_API_ERROR) {
            tkm_report rep = {kc->fields.tokens_left, kc->fields.timestamp_ms};
            int report = (kc->fields.present & TKM__F_REPORT) == TKM__F_REPORT;
            (void)tkm_complete(c, g.id,
                               (kc->fields.present & TKM__F_CONSUMED)
                                   ? kc->fields.tokens_consumed
                                   : 0,
                               report ? &rep : NULL, NULL);
            rc = kfail(kc, TKM_EAPI, "GET %s: Keepa refused it: %s", path, why);
            break;
        }
        if (out == OUT_NOT_RUN)
            (void)tkm_release(c, g.id, NULL);
        else
            (void)tkm_complete(c, g.id, estimated_cost, NULL, NULL);
        if (out == OUT_FATAL || failures >= o->keepa.max_retries) {
            rc = kfail(kc, TKM_EHTTP, "GET %s failed after %d attempts: %s",
                       path, attempts, why);
            break;
        }
        {
            int64_t backoff = BACKOFF_FIRST_MS << (failures < 6 ? failures : 6);
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            /* Full jitter in the upper half: retries do not march in step. */
            backoff = backoff / 2 + tkm__random(c, backoff / 2 + 1);
            failures++;
            rc = tkm__sleep_beating(c, backoff, "keepa retry back-off");
            if (rc != TKM_OK) {
                rc = kfail(kc, rc, "%s", tkm_errstr(c));
                break;
            }
        }
    }
    free(url);
    fill_response(kc, status, attempts, n429, resp);
    if (kc->len > 0 && attempts > 0) {
        resp->body = malloc(kc->len + 1);
        if (resp->body != NULL) {
            memcpy(resp->body, kc->body, kc->len + 1);
            resp->body_len = kc->len;
        }
    }
    return rc;
}

TKM_EXPORT tkm_code tkm_keepa_sync(tkm_keepa *kc, int force,
                                   tkm_keepa_sync_result *out)
{
    tkm_client *c = kc->client;
    const tkm_options *o = tkm_client_options(c);
    int claimed;
    int64_t next_ms;
    char why[TKM__ERR_MAX];
    long status;
    char *url;
    outcome res;
    tkm_pool_status st;
    tkm_code rc;

    memset(out, 0, sizeof(*out));
    if (kc->curl == NULL)
        return kfail(kc, TKM_ECONFIG, "the Keepa client was not opened");
    rc = tkm__sync_claim(c, o->keepa.token_sync_min_interval_s * 1000, force,
                         &claimed, &next_ms);
    if (rc != TKM_OK)
        return kfail(kc, rc, "/token throttle: %s", tkm_errstr(c));
    if (!claimed) {
        out->throttled = 1;
        out->next_allowed_ms = next_ms;
        return TKM_OK;
    }
    url = build_url(kc, "/token", NULL);
    if (url == NULL)
        return kfail(kc, TKM_ENOMEM, "out of memory building the URL");
    res = perform(kc, url, &status, why, sizeof(why));
    free(url);
    if (res != OUT_OK || (kc->fields.present & TKM__F_SYNC) != TKM__F_SYNC)
        return kfail(kc, res == OUT_API_ERROR ? TKM_EAPI : TKM_EHTTP,
                     "GET /token: %s", res == OUT_OK ? "no token fields" : why);
    apply_token_report(kc);
    rc = tkm_status(c, &st);
    if (rc != TKM_OK)
        return kfail(kc, rc, "%s", tkm_errstr(c));
    out->tokens = st.tokens;
    out->refill_rate = st.refill_rate;
    return TKM_OK;
}

/* ---- webhooks ---------------------------------------------------------------
 */

static size_t discard_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * nmemb;
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

tkm_code tkm__http_url_check(const char *url, char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    tkm_code rc = TKM_OK;

    if (u == NULL)
        return TKM_ENOMEM;
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        tkm__fmt(errbuf, errlen, "Webhook: not a URL");
        rc = TKM_ECONFIG;
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        tkm__fmt(errbuf, errlen, "Webhook: scheme %s is not http or https",
                 scheme);
        rc = TKM_ECONFIG;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

tkm_code tkm__http_post_json(const char *url, const char *body,
                             int64_t timeout_ms, long *status, char *errbuf,
                             size_t errlen)
{
    char shown[512], cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    CURL *h;
    CURLcode cc;

    *status = 0;
    shown_url(url, shown, sizeof(shown));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (h = curl_easy_init()) == NULL) {
        tkm__fmt(errbuf, errlen, "webhook %s: libcurl unavailable", shown);
        return TKM_ENOMEM;
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tokenmgr/" TKM_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    if (cc != CURLE_OK) {
        /* curl's message may hold the URL: name the host only. */
        tkm__fmt(errbuf, errlen, "webhook %s: %s", shown,
                 cc == CURLE_OPERATION_TIMEDOUT ? "timed out"
                                                : curl_easy_strerror(cc));
        return TKM_EHTTP;
    }
    tkm__fmt(errbuf, errlen, "webhook %s: HTTP %ld", shown, *status);
    return TKM_OK;
}
