/* fake_keepa: a local stand-in for the Keepa API, for tests, the demo and
 * benchmarks.  It implements the token model of shared/KEEPA.md: a balance
 * per API key refilled by discrete ticks, admission at a positive balance,
 * the full cost charged at completion (into deficit), 429 otherwise, and the
 * token fields on every JSON response.  Requests run concurrently (a thread
 * per connection), so requests in flight overdraw together, as on Keepa.
 *
 * /admin/... endpoints (no key needed) read and set the state and switch
 * faults on; see the README of the fake-keepa branch or fake_keepa --help. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "jsonw.h"

#define EXIT_USAGE     64
#define MAX_KEY_LEN    256
#define MAX_ASINS      100
#define ASIN_LEN       10
#define DEALS_PER_PAGE 150
#define MAX_LATENCY_MS 600000
#define MAX_BALANCE    1000000000000LL
#define MAX_RATE       1000000
#define MAX_PERIOD_MS  86400000
#define MAX_DEALS      100000000

enum fault_id {
    F_503,
    F_502HTML,
    F_504HTML,
    F_TRUNCATED,
    F_MISSING_FIELDS,
    F_SLOW,
    F_SKEW,
    F_JITTER,
    F_FLOW_REDUCTION,
    F_ECHO_KEY,
    F_COUNT
};

static const char *const fault_names[F_COUNT] = {
    "503",  "502html", "504html", "truncated",      "missing_fields",
    "slow", "skew",    "jitter",  "flow_reduction", "echo_key"};

typedef struct fk_fault {
    bool on;
    int64_t remaining; /* affected requests left; -1: until switched off */
    double value;
} fk_fault;

/* One API key.  Refill ticks fall at anchor_ms + n * period_ms, n >= 1. */
typedef struct fk_key {
    struct fk_key *next;
    char name[MAX_KEY_LEN + 1];
    int64_t balance, rate, period_ms, capacity;
    int64_t anchor_ms; /* monotonic clock */
    int64_t ticks;     /* ticks applied since the anchor */
    int64_t lat_min_ms, lat_max_ms;
    /* counters for /admin/state */
    int64_t requests, served, denied, tokens_charged, min_balance;
    int64_t token_calls, inflight, max_inflight;
} fk_key;

/* Everything the server knows, handed to libmicrohttpd as its closure.  mu
 * guards every field below it; cond wakes latency sleeps at shutdown. */
typedef struct fk_server {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    /* command-line settings: defaults for new keys */
    int64_t port, rate, period_ms, balance, lat_min_ms, lat_max_ms, deals;
    bool balance_given;
    uint64_t rng;
    fk_key *keys, *last_key; /* in creation order */
    fk_fault faults[F_COUNT];
} fk_server;

/* The token fields of one response, captured under the lock. */
typedef struct fk_tokens {
    int64_t timestamp, left, refill_in, rate, consumed, proc_ms;
    double flow;
    bool missing, truncated; /* faults that shape the body */
} fk_tokens;

/* ---- small utilities ------------------------------------------------ */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* The one number parser: the whole string, base 10, within [lo, hi]. */
static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* "MIN" or "MIN-MAX", both in [0, hi], MIN <= MAX. */
static int parse_range(const char *s, int64_t hi, int64_t *a, int64_t *b)
{
    const char *dash;
    char first[32];

    if (s == NULL || *s == '\0')
        return -1;
    dash = strchr(s + 1, '-');
    if (dash == NULL) {
        if (parse_i64(s, 0, hi, a) != 0)
            return -1;
        *b = *a;
        return 0;
    }
    if ((size_t)(dash - s) >= sizeof(first))
        return -1;
    memcpy(first, s, (size_t)(dash - s));
    first[dash - s] = '\0';
    if (parse_i64(first, 0, hi, a) != 0 || parse_i64(dash + 1, 0, hi, b) != 0)
        return -1;
    return *a <= *b ? 0 : -1;
}

/* xorshift64*: reproducible for a given --seed; called under the lock. */
static uint64_t rng_next(fk_server *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ULL;
}

static int64_t rng_between(fk_server *s, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static uint32_t fnv1a32(const char *p, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- a growable string ---------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A JSON string (keys and messages are checked, but the escaping is the
 * library's own: valid JSON whatever the bytes). */
static void sb_json_str(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *esc = malloc(TKM__JSONW_MAX(n));

    if (esc == NULL) {
        b->oom = true;
        return;
    }
    tkm__jsonw_escape(esc, TKM__JSONW_MAX(n), s, n, NULL);
    sb_printf(b, "\"%s\"", esc);
    free(esc);
}

/* ---- faults and keys (callers hold mu) ------------------------------- */

/* Whether fault f affects this request; uses one of its count. */
static bool fault_take(fk_server *s, enum fault_id f, double *value)
{
    fk_fault *ft = &s->faults[f];

    if (!ft->on)
        return false;
    if (value != NULL)
        *value = ft->value;
    if (ft->remaining > 0 && --ft->remaining == 0) {
        ft->on = false;
        ft->remaining = -1;
    }
    return true;
}

static void set_balance(fk_key *k, int64_t balance)
{
    k->balance = balance;
    if (balance < k->min_balance)
        k->min_balance = balance;
}

/* Apply the refill ticks due by now.  Refill never lifts the balance above
 * capacity (and never lowers a balance an admin set above it). */
static void refresh(fk_server *s, fk_key *k, int64_t now)
{
    int64_t due = now > k->anchor_ms ? (now - k->anchor_ms) / k->period_ms : 0;

    if (due <= k->ticks)
        return;
    if (!s->faults[F_JITTER].on) {
        int64_t n = due - k->ticks;
        if (k->balance < k->capacity && k->rate > 0) {
            int64_t room = k->capacity - k->balance;
            if (n >= (room + k->rate - 1) / k->rate)
                k->balance = k->capacity;
            else
                k->balance += n * k->rate;
        }
        k->ticks = due;
        return;
    }
    while (k->ticks < due && k->balance < k->capacity) {
        int64_t add = k->rate;
        double v;
        if (fault_take(s, F_JITTER, &v)) {
            int64_t j = (int64_t)llround(fabs(v));
            add += rng_between(s, -j, j);
            if (add < 0)
                add = 0;
        }
        k->balance =
            k->capacity - k->balance <= add ? k->capacity : k->balance + add;
        k->ticks++;
    }
    k->ticks = due;
}

static int64_t refill_in(const fk_key *k, int64_t now)
{
    int64_t since = now > k->anchor_ms ? now - k->anchor_ms : 0;

    return k->period_ms - since % k->period_ms;
}

static fk_key *find_key(fk_server *s, const char *name)
{
    for (fk_key *k = s->keys; k != NULL; k = k->next)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* The key named name, created with the defaults on first use (NULL: out of
 * memory). */
static fk_key *get_key(fk_server *s, const char *name, int64_t now)
{
    fk_key *k = find_key(s, name);

    if (k != NULL) {
        refresh(s, k, now);
        return k;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->rate = s->rate;
    k->period_ms = s->period_ms;
    k->capacity = 60 * s->rate;
    k->balance = s->balance_given ? s->balance : k->capacity;
    k->min_balance = k->balance;
    k->anchor_ms = now;
    k->lat_min_ms = s->lat_min_ms;
    k->lat_max_ms = s->lat_max_ms;
    if (s->last_key != NULL)
        s->last_key->next = k;
    else
        s->keys = k;
    s->last_key = k;
    return k;
}

/* Token fields for a response now; k NULL: no valid key was given. */
static void snapshot(fk_server *s, const fk_key *k, int64_t now, fk_tokens *t)
{
    double v;

    t->timestamp = clock_ms(CLOCK_REALTIME);
    if (fault_take(s, F_SKEW, &v))
        t->timestamp += (int64_t)llround(v);
    t->flow = fault_take(s, F_FLOW_REDUCTION, &v) ? v : 0.0;
    if (k != NULL) {
        t->left = k->balance;
        t->refill_in = refill_in(k, now);
        t->rate = k->rate;
    } else {
        t->left = 0;
        t->refill_in = s->period_ms;
        t->rate = s->rate;
    }
}

/* Sleep ms outside the lock (the condition wait releases mu); cut short
 * when the server stops.  Called with mu held. */
static void sleep_locked(fk_server *s, int64_t ms)
{
    struct timespec until;

    if (ms <= 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!s->stopping &&
           pthread_cond_timedwait(&s->cond, &s->mu, &until) != ETIMEDOUT)
        ;
}

/* ---- responses ------------------------------------------------------- */

typedef struct fk_request {
    fk_server *srv;
    struct MHD_Connection *conn;
    int64_t start_ms;
    bool gzip;
} fk_request;

static const char *arg(const fk_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int gzip_body(const char *in, size_t len, char **out, size_t *out_len)
{
    z_stream z;
    size_t cap;
    char *buf;
    int rc;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    cap = deflateBound(&z, (uLong)len);
    buf = malloc(cap);
    if (buf == NULL) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Queue body (consumed: freed here or by libmicrohttpd). */
static enum MHD_Result send_body(const fk_request *r, unsigned status,
                                 const char *type, sbuf *body)
{
    static const char oom[] = "out of memory\n";
    struct MHD_Response *resp;
    enum MHD_Result ret;
    bool gz = false;

    if (body->oom) {
        free(body->p);
        resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        ret = MHD_queue_response(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r->gzip) {
        char *z;
        size_t zlen;
        if (gzip_body(body->p ? body->p : "", body->len, &z, &zlen) == 0) {
            free(body->p);
            body->p = z;
            body->len = zlen;
            gz = true;
        }
    }
    resp = MHD_create_response_from_buffer(body->len, body->p,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body->p);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gz)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const char json_type[] = "application/json; charset=utf-8";

/* The opening brace and the token fields; the caller adds the rest. */
static void put_tokens(sbuf *b, const fk_tokens *t)
{
    sb_printf(b, "{");
    if (!t->missing)
        sb_printf(b,
                  "\"timestamp\":%" PRId64 ",\"tokensLeft\":%" PRId64
                  ",\"refillIn\":%" PRId64 ",",
                  t->timestamp, t->left, t->refill_in);
    sb_printf(b,
              "\"refillRate\":%" PRId64 ",\"tokenFlowReduction\":%.15g"
              ",\"tokensConsumed\":%" PRId64 ",\"processingTimeInMs\":%" PRId64,
              t->rate, t->flow, t->consumed, t->proc_ms);
}

/* A token body with an optional payload (",..." members) and error. */
static enum MHD_Result send_tokens(const fk_request *r, unsigned status,
                                   const fk_tokens *t, const sbuf *payload,
                                   const char *err_type, const char *err_msg)
{
    sbuf b = {0};

    put_tokens(&b, t);
    if (payload != NULL && payload->len > 0)
        sb_printf(&b, "%.*s", (int)payload->len, payload->p);
    if (err_type != NULL) {
        sb_printf(&b, ",\"error\":{\"type\":");
        sb_json_str(&b, err_type);
        sb_printf(&b, ",\"message\":");
        sb_json_str(&b, err_msg);
        sb_printf(&b, "}");
    }
    sb_printf(&b, "}");
    if (t->truncated && !b.oom)
        b.len /= 2;
    return send_body(r, status, json_type, &b);
}

/*
 * The echo_key fault: an error that quotes the caller's key back, as an API
 * or a proxy quoting the request does.  Value 0 quotes the query string
 * ("GET /product?key=KEY&..."), value 1 the bare key ("API key KEY"), so
 * that a client's redaction of "key=..." and its last resort (withholding a
 * message that still holds the key) are each exercised.  Writes the quote
 * into out ("" when the fault is off or there is no key); called with mu
 * held.
 */
static void echo_key(fk_server *s, const char *key, char *out, size_t len)
{
    double v = 0;

    out[0] = '\0';
    if (key == NULL || !fault_take(s, F_ECHO_KEY, &v))
        return;
    if (v >= 1)
        snprintf(out, len, " (API key %s)", key);
    else
        snprintf(out, len, " (request ?key=%s&...)", key);
}

/* A 400/404/405 with token fields: those of the key if one was given (it is
 * never charged), otherwise the command-line defaults with no balance. */
static enum MHD_Result send_error(const fk_request *r, const char *key,
                                  unsigned status, const char *type,
                                  const char *msg)
{
    fk_server *s = r->srv;
    fk_tokens t = {0};
    int64_t now = mono_ms();
    char echo[MAX_KEY_LEN + 32], text[512];

    pthread_mutex_lock(&s->mu);
    snapshot(s, key != NULL ? get_key(s, key, now) : NULL, now, &t);
    echo_key(s, key, echo, sizeof(echo));
    pthread_mutex_unlock(&s->mu);
    t.proc_ms = now - r->start_ms;
    snprintf(text, sizeof(text), "%s%s", msg, echo);
    return send_tokens(r, status, &t, NULL, type, text);
}

/* A proxy's HTML error page; echo: the echo_key fault's quote, or "". */
static enum MHD_Result send_html(const fk_request *r, unsigned status,
                                 const char *echo)
{
    sbuf b = {0};

    sb_printf(&b, "<html>%s%s</html>",
              status == MHD_HTTP_BAD_GATEWAY ? "Bad Gateway"
                                             : "Gateway Timeout",
              echo);
    return send_body(r, status, "text/html", &b);
}

/* 0 if key is a usable API key: 1..256 printable ASCII characters. */
static int check_key(const char *key)
{
    size_t n;

    if (key == NULL || (n = strlen(key)) == 0 || n > MAX_KEY_LEN)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return -1;
    return 0;
}

/* ---- Keepa endpoints ------------------------------------------------- */

/* A 502/504 proxy fault, checked under the lock; 0 when none applies. */
static unsigned proxy_fault(fk_server *s)
{
    if (fault_take(s, F_502HTML, NULL))
        return MHD_HTTP_BAD_GATEWAY;
    if (fault_take(s, F_504HTML, NULL))
        return MHD_HTTP_GATEWAY_TIMEOUT;
    return 0;
}

static enum MHD_Result do_token(const fk_request *r, const char *key)
{
    fk_server *s = r->srv;
    fk_tokens t = {0};
    fk_key *k;
    unsigned proxy;
    double slow = 0;
    int64_t now = mono_ms();

    pthread_mutex_lock(&s->mu);
    k = get_key(s, key, now);
    if (k == NULL) {
        pthread_mutex_unlock(&s->mu);
        return MHD_NO;
    }
    k->token_calls++;
    proxy = proxy_fault(s);
    if (proxy != 0) {
        char echo[MAX_KEY_LEN + 32];
        echo_key(s, key, echo, sizeof(echo));
        pthread_mutex_unlock(&s->mu);
        return send_html(r, proxy, echo);
    }
    if (fault_take(s, F_SLOW, &slow))
        sleep_locked(s, (int64_t)slow);
    now = mono_ms();
    refresh(s, k, now);
    snapshot(s, k, now, &t);
    t.missing = fault_take(s, F_MISSING_FIELDS, NULL);
    t.truncated = fault_take(s, F_TRUNCATED, NULL);
    pthread_mutex_unlock(&s->mu);
    t.proc_ms = now - r->start_ms;
    return send_tokens(r, MHD_HTTP_OK, &t, NULL, NULL, NULL);
}

/* A priced request whose parameters are valid: admission at a positive
 * balance, latency outside the lock, the full cost charged at completion. */
static enum MHD_Result do_priced(const fk_request *r, const char *key,
                                 int64_t cost, const sbuf *payload)
{
    fk_server *s = r->srv;
    fk_tokens t = {0};
    fk_key *k;
    unsigned proxy;
    double slow = 0;
    int64_t latency, now = mono_ms();

    pthread_mutex_lock(&s->mu);
    k = get_key(s, key, now);
    if (k == NULL) {
        pthread_mutex_unlock(&s->mu);
        return MHD_NO;
    }
    k->requests++;
    proxy = proxy_fault(s);
    if (proxy != 0) {
        char echo[MAX_KEY_LEN + 32];
        echo_key(s, key, echo, sizeof(echo));
        pthread_mutex_unlock(&s->mu);
        return send_html(r, proxy, echo);
    }
    if (k->balance <= 0) {
        unsigned status = fault_take(s, F_503, NULL)
                              ? MHD_HTTP_SERVICE_UNAVAILABLE
                              : MHD_HTTP_TOO_MANY_REQUESTS;
        char echo[MAX_KEY_LEN + 32], text[MAX_KEY_LEN + 64];
        echo_key(s, key, echo, sizeof(echo));
        k->denied++;
        snapshot(s, k, now, &t);
        pthread_mutex_unlock(&s->mu);
        t.proc_ms = now - r->start_ms;
        snprintf(text, sizeof(text), "out of tokens%s", echo);
        return send_tokens(r, status, &t, NULL,
                           echo[0] ? "tokensExhausted" : NULL,
                           echo[0] ? text : NULL);
    }
    k->inflight++;
    if (k->inflight > k->max_inflight)
        k->max_inflight = k->inflight;
    latency = rng_between(s, k->lat_min_ms, k->lat_max_ms);
    if (fault_take(s, F_SLOW, &slow))
        latency += (int64_t)slow;
    sleep_locked(s, latency);

    now = mono_ms();
    refresh(s, k, now);
    set_balance(k, k->balance - cost);
    k->served++;
    k->tokens_charged += cost;
    k->inflight--;
    snapshot(s, k, now, &t);
    t.consumed = cost;
    t.missing = fault_take(s, F_MISSING_FIELDS, NULL);
    t.truncated = fault_take(s, F_TRUNCATED, NULL);
    pthread_mutex_unlock(&s->mu);
    t.proc_ms = now - r->start_ms;
    return send_tokens(r, MHD_HTTP_OK, &t, payload, NULL, NULL);
}

/* "0"/absent or "1"; -1 otherwise. */
static int flag_arg(const fk_request *r, const char *name)
{
    const char *v = arg(r, name);

    if (v == NULL || strcmp(v, "0") == 0)
        return 0;
    return strcmp(v, "1") == 0 ? 1 : -1;
}

static enum MHD_Result do_product(const fk_request *r, const char *key)
{
    const char *asins = arg(r, "asin");
    const char *offers_s = arg(r, "offers");
    int64_t domain = 1, offers = 0, cost = 0, n = 0;
    int buybox = flag_arg(r, "buybox"), rating = flag_arg(r, "rating");
    int stock = flag_arg(r, "stock");
    sbuf payload = {0};
    enum MHD_Result ret;

    if (arg(r, "domain") != NULL && parse_i64(arg(r, "domain"), 1, 12, &domain))
        return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "domain must be an integer in 1..12");
    if (offers_s != NULL && parse_i64(offers_s, 20, 100, &offers) != 0)
        return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "offers must be an integer in 20..100");
    if (buybox < 0 || rating < 0 || stock < 0)
        return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "buybox, rating and stock must be 0 or 1");
    if (asins == NULL || *asins == '\0')
        return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "asin is required");

    sb_printf(&payload, ",\"products\":[");
    for (const char *p = asins;; p += ASIN_LEN + 1) {
        size_t len = strcspn(p, ",");
        int64_t pages = 0, c;
        bool ok = len == ASIN_LEN;
        for (size_t i = 0; ok && i < len; i++)
            ok = (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9');
        if (!ok || ++n > MAX_ASINS) {
            free(payload.p);
            return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                              !ok ? "each asin must match [A-Z0-9]{10}"
                                  : "at most 100 asins per request");
        }
        if (offers > 0) {
            pages =
                1 + (int64_t)(fnv1a32(p, len) % (uint64_t)((offers + 9) / 10));
            c = 6 * pages;
        } else {
            c = 1;
        }
        cost += c + 2 * buybox + rating + 2 * stock;
        sb_printf(&payload,
                  "%s{\"asin\":\"%.10s\",\"title\":\"Synthetic product "
                  "%.10s\",\"domainId\":%" PRId64 ",\"offerPages\":%" PRId64
                  "}",
                  n > 1 ? "," : "", p, p, domain, pages);
        if (p[len] == '\0')
            break;
    }
    sb_printf(&payload, "]");
    ret = do_priced(r, key, cost, &payload);
    free(payload.p);
    return ret;
}

/* The page of a /deal request: page=P, else "page":P inside selection=, else
 * 0; -1 if malformed. */
static int64_t deal_page(const fk_request *r)
{
    const char *page = arg(r, "page"), *sel = arg(r, "selection"), *p;
    int64_t v;
    char num[24];
    size_t len;

    if (page != NULL)
        return parse_i64(page, 0, 1000000000, &v) == 0 ? v : -1;
    if (sel == NULL || (p = strstr(sel, "\"page\"")) == NULL)
        return 0;
    p += strlen("\"page\"");
    p += strspn(p, " \t\r\n");
    if (*p++ != ':')
        return -1;
    p += strspn(p, " \t\r\n");
    len = strspn(p, "0123456789");
    if (len == 0 || len >= sizeof(num))
        return -1;
    memcpy(num, p, len);
    num[len] = '\0';
    return parse_i64(num, 0, 1000000000, &v) == 0 ? v : -1;
}

static enum MHD_Result do_deal(const fk_request *r, const char *key)
{
    int64_t page = deal_page(r), deals = r->srv->deals;
    int64_t total = (deals + DEALS_PER_PAGE - 1) / DEALS_PER_PAGE;
    sbuf payload = {0};
    enum MHD_Result ret;

    if (page < 0)
        return send_error(r, key, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "page must be an integer >= 0");
    sb_printf(&payload, ",\"deals\":{\"dr\":[");
    for (int64_t i = page * DEALS_PER_PAGE;
         page < total && i < deals && i < (page + 1) * DEALS_PER_PAGE; i++) {
        /* i -> i * odd mod 10^9 is a bijection: stable, distinct ASINs. */
        int64_t digits =
            (int64_t)(((uint64_t)i * 2654435761u + 12345u) % 1000000000u);
        sb_printf(&payload,
                  "%s{\"asin\":\"B%09" PRId64 "\",\"title\":\"Synthetic deal "
                  "%" PRId64 "\",\"dealIndex\":%" PRId64 "}",
                  i > page * DEALS_PER_PAGE ? "," : "", digits, i, i);
    }
    sb_printf(&payload, "],\"page\":%" PRId64 ",\"totalPages\":%" PRId64 "}",
              page, total);
    ret = do_priced(r, key, 5, &payload);
    free(payload.p);
    return ret;
}

/* ---- admin endpoints ------------------------------------------------- */

static void put_state(sbuf *b, const fk_key *k, int64_t now)
{
    sb_printf(b, "{\"key\":");
    sb_json_str(b, k->name);
    sb_printf(b,
              ",\"balance\":%" PRId64 ",\"rate\":%" PRId64
              ",\"period_ms\":%" PRId64 ",\"capacity\":%" PRId64
              ",\"refill_in_ms\":%" PRId64 ",\"requests\":%" PRId64
              ",\"served\":%" PRId64 ",\"requests_429\":%" PRId64
              ",\"tokens_charged\":%" PRId64 ",\"min_balance\":%" PRId64
              ",\"token_calls\":%" PRId64 ",\"inflight\":%" PRId64
              ",\"max_inflight\":%" PRId64 ",\"latency_min_ms\":%" PRId64
              ",\"latency_max_ms\":%" PRId64 "}",
              k->balance, k->rate, k->period_ms, k->capacity, refill_in(k, now),
              k->requests, k->served, k->denied, k->tokens_charged,
              k->min_balance, k->token_calls, k->inflight, k->max_inflight,
              k->lat_min_ms, k->lat_max_ms);
}

static void put_faults(sbuf *b, const fk_server *s)
{
    sb_printf(b, "{\"faults\":{");
    for (int f = 0; f < F_COUNT; f++)
        sb_printf(
            b, "%s\"%s\":{\"on\":%s,\"value\":%.15g,\"remaining\":%" PRId64 "}",
            f ? "," : "", fault_names[f], s->faults[f].on ? "true" : "false",
            s->faults[f].value, s->faults[f].remaining);
    sb_printf(b, "}}");
}

static enum MHD_Result admin_error(const fk_request *r, unsigned status,
                                   const char *type, const char *msg)
{
    sbuf b = {0};

    sb_printf(&b, "{\"error\":{\"type\":");
    sb_json_str(&b, type);
    sb_printf(&b, ",\"message\":");
    sb_json_str(&b, msg);
    sb_printf(&b, "}}");
    return send_body(r, status, json_type, &b);
}

/* Unknown query parameters of an admin call are errors (typos are silent
 * otherwise); allowed is a NULL-terminated list. */
typedef struct arg_check {
    const char *const *allowed;
    const char *unknown;
} arg_check;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind,
                                 const char *name, const char *value)
{
    arg_check *ac = cls;

    (void)kind;
    (void)value;
    for (const char *const *a = ac->allowed; *a != NULL; a++)
        if (strcmp(*a, name) == 0)
            return MHD_YES;
    ac->unknown = name;
    return MHD_NO;
}

static int unknown_args(const fk_request *r, const char *const *allowed)
{
    arg_check ac = {allowed, NULL};

    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, &ac);
    return ac.unknown != NULL;
}

/* The key an admin call is about: key=, else the first key ever created,
 * else (created now) the key named "default".  Called with mu held. */
static fk_key *admin_key(fk_server *s, const char *key, int64_t now)
{
    if (key != NULL)
        return get_key(s, key, now);
    if (s->keys != NULL) {
        refresh(s, s->keys, now);
        return s->keys;
    }
    return get_key(s, "default", now);
}

static enum MHD_Result do_admin_state(const fk_request *r, const char *path)
{
    static const char *const set_args[] = {"key",       "balance",    "rate",
                                           "period_ms", "latency_ms", NULL};
    static const char *const key_args[] = {"key", NULL};
    fk_server *s = r->srv;
    const char *key = arg(r, "key");
    bool set = strcmp(path, "set") == 0;
    bool reset = strcmp(path, "reset_counters") == 0;
    int64_t balance = 0, rate = 0, period = 0, lat_a = 0, lat_b = 0;
    const char *bs = arg(r, "balance"), *rs = arg(r, "rate");
    const char *ps = arg(r, "period_ms"), *ls = arg(r, "latency_ms");
    int64_t now = mono_ms();
    sbuf b = {0};
    fk_key *k;

    if (unknown_args(r, set ? set_args : key_args))
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           set ? "allowed: key, balance, rate, period_ms, "
                                 "latency_ms"
                               : "allowed: key");
    if (key != NULL && check_key(key) != 0)
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "key must be 1..256 printable characters");
    if (set && ((bs && parse_i64(bs, -MAX_BALANCE, MAX_BALANCE, &balance)) ||
                (rs && parse_i64(rs, 0, MAX_RATE, &rate)) ||
                (ps && parse_i64(ps, 1, MAX_PERIOD_MS, &period)) ||
                (ls && parse_range(ls, MAX_LATENCY_MS, &lat_a, &lat_b))))
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "balance, rate, period_ms or latency_ms out of "
                           "range");

    pthread_mutex_lock(&s->mu);
    k = admin_key(s, key, now);
    if (k == NULL) {
        pthread_mutex_unlock(&s->mu);
        return MHD_NO;
    }
    if (set) {
        if (rs != NULL) {
            k->rate = rate;
            k->capacity = 60 * rate;
        }
        if (ps != NULL)
            k->period_ms = period;
        if (rs != NULL || ps != NULL) {
            k->anchor_ms = now;
            k->ticks = 0;
        }
        if (bs != NULL)
            set_balance(k, balance);
        if (ls != NULL) {
            k->lat_min_ms = lat_a;
            k->lat_max_ms = lat_b;
        }
    }
    if (reset) {
        k->requests = k->served = k->denied = k->tokens_charged = 0;
        k->token_calls = 0;
        k->min_balance = k->balance;
        k->max_inflight = k->inflight;
    }
    put_state(&b, k, now);
    pthread_mutex_unlock(&s->mu);
    return send_body(r, MHD_HTTP_OK, json_type, &b);
}

static enum MHD_Result do_admin_fault(const fk_request *r)
{
    static const char *const allowed[] = {"name", "on", "value", "count", NULL};
    fk_server *s = r->srv;
    const char *name = arg(r, "name"), *vs = arg(r, "value");
    const char *cs = arg(r, "count");
    int64_t on = 0, count = -1;
    double value = 0;
    int f;
    sbuf b = {0};

    if (unknown_args(r, allowed))
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "allowed: name, on, value, count");
    if (name == NULL && arg(r, "on") == NULL && vs == NULL && cs == NULL) {
        pthread_mutex_lock(&s->mu);
        put_faults(&b, s);
        pthread_mutex_unlock(&s->mu);
        return send_body(r, MHD_HTTP_OK, json_type, &b);
    }
    for (f = 0; name != NULL && f < F_COUNT; f++)
        if (strcmp(name, fault_names[f]) == 0)
            break;
    if (name == NULL || f == F_COUNT)
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "unknown fault name");
    if (parse_i64(arg(r, "on"), 0, 1, &on) != 0)
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "on must be 0 or 1");
    if (vs != NULL && parse_double(vs, &value) != 0)
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "value must be a finite number");
    if ((f == F_SLOW && (value < 0 || value > MAX_LATENCY_MS)) ||
        (f == F_JITTER && (value < 0 || value > MAX_RATE)) ||
        (f == F_SKEW && fabs(value) > 1e12) ||
        (f == F_ECHO_KEY && value != 0 && value != 1))
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "value out of range for this fault");
    if (cs != NULL && parse_i64(cs, 1, 1000000000, &count) != 0)
        return admin_error(r, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                           "count must be an integer in 1..1000000000");

    pthread_mutex_lock(&s->mu);
    s->faults[f].on = on != 0;
    s->faults[f].value = on ? value : 0;
    s->faults[f].remaining = on ? count : -1;
    put_faults(&b, s);
    pthread_mutex_unlock(&s->mu);
    return send_body(r, MHD_HTTP_OK, json_type, &b);
}

/* ---- dispatch ----------------------------------------------------------- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    fk_request r = {cls, conn, mono_ms(), false};
    const char *ae, *key;

    (void)version;
    (void)upload;
    /* The first call only announces the request; answer once it is read
     * (an upload, which no endpoint takes, is discarded). */
    if (*con_cls == NULL) {
        *con_cls = cls;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_ACCEPT_ENCODING);
    r.gzip = ae != NULL && strcasestr(ae, "gzip") != NULL;

    if (strncmp(url, "/admin/", 7) == 0) {
        const char *path = url + 7;
        if (strcmp(method, "GET") != 0)
            return admin_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "methodNotAllowed", "use GET");
        if (strcmp(path, "state") == 0 || strcmp(path, "set") == 0 ||
            strcmp(path, "reset_counters") == 0)
            return do_admin_state(&r, path);
        if (strcmp(path, "fault") == 0)
            return do_admin_fault(&r);
        return admin_error(&r, MHD_HTTP_NOT_FOUND, "notFound",
                           "no such admin endpoint");
    }

    key = arg(&r, "key");
    if (check_key(key) != 0)
        key = NULL;
    if (strcmp(method, "GET") != 0)
        return send_error(&r, key, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "methodNotAllowed", "only GET is supported");
    if (strcmp(url, "/token") != 0 && strcmp(url, "/product") != 0 &&
        strcmp(url, "/deal") != 0)
        return send_error(&r, key, MHD_HTTP_NOT_FOUND, "notFound",
                          "no such endpoint");
    if (key == NULL)
        return send_error(&r, NULL, MHD_HTTP_BAD_REQUEST, "invalidParameter",
                          "key is required (1..256 printable characters)");
    if (strcmp(url, "/token") == 0)
        return do_token(&r, key);
    if (strcmp(url, "/product") == 0)
        return do_product(&r, key);
    return do_deal(&r, key);
}

/* ---- command line ------------------------------------------------------- */

static const char usage[] =
    "usage: fake_keepa [--port N] [--rate R] [--period-ms MS] [--balance N]\n"
    "                  [--latency-ms MIN[-MAX]] [--deals N] [--seed N]\n"
    "Listens on 127.0.0.1; prints 'fake_keepa listening on "
    "http://127.0.0.1:PORT'\n"
    "when ready.  Admin: /admin/state, /admin/set, /admin/reset_counters,\n"
    "/admin/fault?name=NAME&on=1|0[&value=V][&count=N].\n";

static int bad_option(const char *opt, const char *what, const char *got)
{
    fprintf(stderr, "fake_keepa: %s: %s, got '%s'\n", opt, what, got);
    return -1;
}

/* 0 on success, 1 for --help, -1 after a one-line error. */
static int parse_args(int argc, char **argv, fk_server *s)
{
    int64_t seed = 1;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
            return 1;
        if (strncmp(opt, "--", 2) != 0 ||
            (strcmp(opt, "--port") && strcmp(opt, "--rate") &&
             strcmp(opt, "--period-ms") && strcmp(opt, "--balance") &&
             strcmp(opt, "--latency-ms") && strcmp(opt, "--deals") &&
             strcmp(opt, "--seed"))) {
            fprintf(stderr, "fake_keepa: unknown option '%s' (try --help)\n",
                    opt);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "fake_keepa: %s needs a value\n", opt);
            return -1;
        }
        val = argv[++i];
        if (strcmp(opt, "--port") == 0) {
            if (parse_i64(val, 0, 65535, &s->port))
                return bad_option(opt, "expected an integer in 0..65535", val);
        } else if (strcmp(opt, "--rate") == 0) {
            if (parse_i64(val, 0, MAX_RATE, &s->rate))
                return bad_option(opt, "expected an integer in 0..1000000",
                                  val);
        } else if (strcmp(opt, "--period-ms") == 0) {
            if (parse_i64(val, 1, MAX_PERIOD_MS, &s->period_ms))
                return bad_option(opt, "expected an integer in 1..86400000",
                                  val);
        } else if (strcmp(opt, "--balance") == 0) {
            if (parse_i64(val, -MAX_BALANCE, MAX_BALANCE, &s->balance))
                return bad_option(opt, "expected an integer within +-10^12",
                                  val);
            s->balance_given = true;
        } else if (strcmp(opt, "--latency-ms") == 0) {
            if (parse_range(val, MAX_LATENCY_MS, &s->lat_min_ms,
                            &s->lat_max_ms))
                return bad_option(opt, "expected MIN or MIN-MAX in 0..600000",
                                  val);
        } else if (strcmp(opt, "--deals") == 0) {
            if (parse_i64(val, 0, MAX_DEALS, &s->deals))
                return bad_option(opt, "expected an integer in 0..100000000",
                                  val);
        } else if (parse_i64(val, 0, INT64_MAX, &seed)) {
            return bad_option(opt, "expected a non-negative integer", val);
        }
    }
    /* splitmix64 of the seed: a non-zero xorshift state for every seed. */
    uint64_t z = (uint64_t)seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    s->rng = (z ^ (z >> 31)) | 1;
    return 0;
}

static void server_free(fk_server *s)
{
    fk_key *k = s->keys;

    while (k != NULL) {
        fk_key *next = k->next;
        free(k);
        k = next;
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
}

int main(int argc, char **argv)
{
    fk_server s;
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    pthread_condattr_t ca;
    sigset_t stop;
    int rc, sig;

    memset(&s, 0, sizeof(s));
    s.rate = 20;
    s.period_ms = 60000;
    s.deals = 1000;
    for (int f = 0; f < F_COUNT; f++)
        s.faults[f].remaining = -1;
    rc = parse_args(argc, argv, &s);
    if (rc != 0) {
        if (rc > 0)
            fputs(usage, stdout);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    pthread_mutex_init(&s.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s.cond, &ca);
    pthread_condattr_destroy(&ca);

    /* Blocked before any thread starts, so only sigwait below sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_AUTO | MHD_USE_ERROR_LOG,
        (uint16_t)s.port, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)120, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "fake_keepa: cannot listen on 127.0.0.1:%" PRId64 "\n",
                s.port);
        server_free(&s);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("fake_keepa listening on http://127.0.0.1:%u\n",
           info != NULL ? (unsigned)info->port : (unsigned)s.port);
    fflush(stdout);

    while (sigwait(&stop, &sig) != 0)
        ;
    pthread_mutex_lock(&s.mu);
    s.stopping = true;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.mu);
    MHD_stop_daemon(d);
    server_free(&s);
    return 0;
}
