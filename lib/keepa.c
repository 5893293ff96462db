/*
 * The Keepa client: the protocol only (what to request, the token fields,
 * what a 429 or a 5xx means, acquire then complete or release).  HTTP is
 * http.c's.  Every request is paid for through the bucket and every token
 * report the API sends is applied, so the shared balance follows what Keepa
 * says.  The access key never reaches a message.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "internal.h"
#include "keepa_json.h"

#define KEY_MAX 256
/*
 * The largest decoded (gunzipped) answer taken.  Keepa's largest are
 * /product answers for 100 ASINs with history and offers: a product with
 * years of price history and 100 offers is a few hundred KB of JSON, so
 * tens of MB for a full request.  64 MiB leaves room for that and bounds a
 * compression bomb (255 KB on the wire can inflate to 250 MB) to what a
 * worker can hold: the body is kept whole for the caller.
 */
#define BODY_MAX         ((size_t)64 << 20)
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   30000

struct tkm_keepa {
    tkm_client *client;
    tkm__http *http;
    char key[KEY_MAX];
    char base[TKM_URL_MAX + 1]; /* without a trailing '/' */
    char err[TKM__ERR_MAX];
    /* The response being received. */
    tkm__json *json;
    int json_bad;
    tkm__keepa_fields fields;
    char bad_field[160]; /* a token field out of its range, or "" */
};

static tkm_code kfail(tkm_keepa *kc, tkm_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a message with every "key=..." masked, whatever produced it. */
static tkm_code kfail(tkm_keepa *kc, tkm_code code, const char *fmt, ...)
{
    char raw[TKM__ERR_MAX], withheld[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    tkm__fmt(withheld, sizeof(withheld),
             "%s (message withheld: it contained the access key)",
             tkm_strerror(code));
    tkm__http_redact(kc->err, sizeof(kc->err), raw, kc->key, withheld);
    return code;
}

TKM_EXPORT const char *tkm_keepa_errstr(const tkm_keepa *kc)
{
    return kc == NULL ? "no Keepa client" : kc->err;
}

/* The key: `given` (a binding's), else keepa.key_file, else the
 * environment. */
static tkm_code read_key(tkm_keepa *kc, const tkm_keepa_options *o,
                         const char *given)
{
    const char *where = given != NULL    ? "(given to tkm_keepa_open_key)"
                        : o->key_file[0] ? o->key_file
                                         : "($TOKENMGR_KEEPA_KEY)";
    size_t n;

    if (given != NULL) {
        if (tkm__copy(kc->key, sizeof(kc->key), given) != 0)
            return kfail(kc, TKM_ECONFIG,
                         "the Keepa access key %s is longer than %d bytes",
                         where, KEY_MAX - 1);
    } else if (o->key_file[0] != '\0') {
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
                     where);
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)kc->key[i])) {
            memset(kc->key, 0, sizeof(kc->key));
            return kfail(kc, TKM_ECONFIG,
                         "the Keepa access key %s holds a character other "
                         "than letters and digits",
                         where);
        }
    }
    return TKM_OK;
}

static tkm_code check_base_url(tkm_keepa *kc, const char *url)
{
    char why[TKM__ERR_MAX];
    size_t n;
    tkm_code rc = tkm__http_url_check("keepa.base_url", url, TKM__URL_NO_QUERY,
                                      why, sizeof(why));

    if (rc != TKM_OK)
        return kfail(kc, rc, "%s", rc == TKM_ENOMEM ? "out of memory" : why);
    tkm__copy(kc->base, sizeof(kc->base), url);
    n = strlen(kc->base);
    while (n > 0 && kc->base[n - 1] == '/')
        kc->base[--n] = '\0';
    return TKM_OK;
}

/* The body goes to the parser as it arrives. */
static int feed_json(void *ctx, const char *data, size_t len)
{
    tkm_keepa *kc = ctx;

    if (tkm__json_feed(kc->json, data, len) != 0) {
        kc->json_bad = 1;
        return -1;
    }
    return 0;
}

TKM_EXPORT tkm_code tkm_keepa_open(tkm_client *client, tkm_keepa **out)
{
    return tkm_keepa_open_key(client, NULL, out);
}

TKM_EXPORT tkm_code tkm_keepa_open_key(tkm_client *client, const char *key,
                                       tkm_keepa **out)
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
    rc = check_base_url(kc, o->base_url);
    if (rc == TKM_OK)
        rc = read_key(kc, o, key);
    if (rc != TKM_OK)
        return rc;
    if (tkm__http_open(o->timeout_ms, BODY_MAX, &kc->http) != TKM_OK)
        return kfail(kc, TKM_ENOMEM, "out of memory creating a curl handle");
    return TKM_OK;
}

TKM_EXPORT void tkm_keepa_free(tkm_keepa *kc)
{
    if (kc == NULL)
        return;
    tkm__http_free(kc->http);
    tkm__json_free(kc->json);
    memset(kc->key, 0, sizeof(kc->key));
    free(kc);
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

/*
 * The token fields held to the ranges of tokenmgr.h, which the pool's
 * scripts take (a reply is hostile input like any other): a field outside
 * its range, or a number that is no integer, is dropped as if absent, so
 * the report it belongs to is not applied, and kc->bad_field says which.
 */
static void check_ranges(tkm_keepa *kc)
{
    static const struct {
        int bit;
        const char *name;
        size_t offset;
        int64_t lo, hi;
    } ranges[] = {
        {TKM__F_TOKENS_LEFT, "tokensLeft",
         offsetof(tkm__keepa_fields, tokens_left), -TKM_TOKENS_MAX,
         TKM_TOKENS_MAX},
        {TKM__F_CONSUMED, "tokensConsumed",
         offsetof(tkm__keepa_fields, tokens_consumed), 0, TKM_TOKENS_MAX},
        {TKM__F_REFILL_IN, "refillIn",
         offsetof(tkm__keepa_fields, refill_in_ms), 0, TKM_MAX_WAIT_MS},
        {TKM__F_RATE, "refillRate", offsetof(tkm__keepa_fields, refill_rate), 0,
         TKM_RATE_MAX},
        {TKM__F_TIMESTAMP, "timestamp",
         offsetof(tkm__keepa_fields, timestamp_ms), 0, TKM_TIMESTAMP_MS_MAX},
    };
    tkm__keepa_fields *f = &kc->fields;

    kc->bad_field[0] = '\0';
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        int64_t v = *(const int64_t *)(const void *)((const char *)f +
                                                     ranges[i].offset);
        if ((f->not_integer & ranges[i].bit) && kc->bad_field[0] == '\0')
            tkm__fmt(kc->bad_field, sizeof(kc->bad_field),
                     "%s is not an integer", ranges[i].name);
        if (!(f->present & ranges[i].bit) ||
            (v >= ranges[i].lo && v <= ranges[i].hi))
            continue;
        f->present &= ~ranges[i].bit;
        if (kc->bad_field[0] == '\0')
            tkm__fmt(kc->bad_field, sizeof(kc->bad_field),
                     "%s %lld is outside %lld..%lld", ranges[i].name,
                     (long long)v, (long long)ranges[i].lo,
                     (long long)ranges[i].hi);
    }
}

/* GET url; fills kc->fields and *status.  *why gets a short reason. */
static outcome perform(tkm_keepa *kc, const char *url, long *status, char *why,
                       size_t whylen)
{
    tkm__http_end end;
    int complete;

    kc->json_bad = 0;
    tkm__json_free(kc->json);
    kc->json = tkm__json_new(&kc->fields);
    if (kc->json == NULL) {
        tkm__fmt(why, whylen, "out of memory");
        return OUT_FATAL;
    }
    end = tkm__http_get(kc->http, url, feed_json, kc, status, why, whylen);
    if (end == TKM__HTTP_TOO_BIG || end == TKM__HTTP_NOMEM)
        return OUT_FATAL;
    if (end == TKM__HTTP_UNSENT)
        return OUT_NOT_RUN;
    if (end != TKM__HTTP_ANSWERED)
        return OUT_MAYBE_RUN;
    complete = !kc->json_bad && tkm__json_finish(kc->json) == 0;
    check_ranges(kc);
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
        if (kc->bad_field[0] != '\0')
            tkm__fmt(why, whylen, "HTTP %ld with a bad token report (%s)",
                     *status, kc->bad_field);
        else
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
        char *esc = tkm__http_escape(kc->http, q[1]);
        if (esc == NULL) {
            free(url);
            return NULL;
        }
        p += snprintf(p, cap - (size_t)(p - url), "&%s=%s", q[0], esc);
        free(esc);
    }
    return url;
}

/* The API's token state, applied as an authoritative sync: the sync's
 * status (a report it refuses, out of range or from a pool whose state is
 * garbage, is not applied, and the caller says so). */
static tkm_code apply_token_report(tkm_keepa *kc)
{
    const tkm__keepa_fields *f = &kc->fields;
    tkm_sync_info in;

    if ((f->present & TKM__F_SYNC) != TKM__F_SYNC)
        return TKM_OK;
    in.tokens = f->tokens_left;
    in.rate = f->refill_rate;
    in.refill_in_ms = f->refill_in_ms;
    in.timestamp_ms = f->timestamp_ms;
    if (in.refill_in_ms >
        tkm_client_options(kc->client)->bucket.refill_period_ms)
        in.refill_in_ms = -1;
    return tkm_sync(kc->client, &in, NULL); /* a stale report is fine */
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
static tkm_code reserve(tkm_keepa *kc, int64_t cost, const char *phase,
                        tkm_grant *g)
{
    tkm_client *c = kc->client;
    tkm_code rc;

    for (int synced = 0;; synced = 1) {
        rc = tkm__acquire(c, cost, -1, NULL, phase, g);
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
    if (kc->http == NULL)
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

        /* The grant is the worker's heartbeat of the call's phase. */
        rc = reserve(kc, estimated_cost, phase, &g);
        if (rc != TKM_OK)
            break;
        attempts++;
        out = perform(kc, url, &status, why, sizeof(why));
        if (out == OUT_OK) {
            tkm_report rep = {kc->fields.tokens_left, kc->fields.timestamp_ms};
            int64_t used = (kc->fields.present & TKM__F_CONSUMED)
                               ? kc->fields.tokens_consumed
                               : estimated_cost;
            /* An expired lease (a very slow call) still had its report. */
            if (tkm_complete(c, g.id, used, &rep, NULL) == TKM_ENOGRANT)
                (void)apply_token_report(kc);
            rc = TKM_OK;
            break;
        }
        if (out == OUT_DENIED) {
            /* Nothing was charged; Keepa's balance is the truth now. */
            n429++;
            (void)tkm_release(c, g.id, NULL);
            (void)apply_token_report(kc);
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
        /* The API failed (network, 5xx, garbage): reported by the next
         * heartbeat, the stall rule's evidence of a shared cause. */
        tkm__note_failure(c, "api");
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
    if (attempts > 0) /* handed over, not copied: it may be large */
        resp->body = tkm__http_take_body(kc->http, &resp->body_len);
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
    if (kc->http == NULL)
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
    if (res != OUT_OK || (kc->fields.present & TKM__F_SYNC) != TKM__F_SYNC) {
        if (res != OUT_API_ERROR)
            tkm__note_failure(c, "api");
        if (kc->bad_field[0] != '\0' && res != OUT_API_ERROR)
            return kfail(kc, TKM_EHTTP,
                         "GET /token: HTTP %ld with a bad token report (%s), "
                         "not applied",
                         status, kc->bad_field);
        return kfail(kc, res == OUT_API_ERROR ? TKM_EAPI : TKM_EHTTP,
                     "GET /token: %s", res == OUT_OK ? "no token fields" : why);
    }
    /* An apply that did not happen is a failure, with its reason: never
     * the pool's old balance shown as if it came from Keepa. */
    rc = apply_token_report(kc);
    if (rc != TKM_OK)
        return kfail(kc, rc,
                     "GET /token answered, but its report was not "
                     "applied: %s",
                     tkm_errstr(c));
    rc = tkm_status(c, &st);
    if (rc != TKM_OK)
        return kfail(kc, rc, "%s", tkm_errstr(c));
    out->tokens = st.tokens;
    out->refill_rate = st.refill_rate;
    return TKM_OK;
}
