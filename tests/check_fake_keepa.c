/* The fake Keepa server, over real HTTP on loopback: the token model of
 * KEEPA.md (free /token, admission at a positive balance, the full cost
 * charged at completion, 429 otherwise, discrete refill up to capacity), the
 * costs of /product and /deal, real concurrency, every fault switch, gzip,
 * and its command line. */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fake_keepa.h"
#include "proc.h"
#include "suite.h"

#define BODY_LEN 65536

static tkt_keepa ks;

/* Wall-clock milliseconds, as the server stamps its answers. */
static int64_t real_ms(void)
{
    return (int64_t)(tkt_wall_now() * 1000);
}

/* ---- fixtures ------------------------------------------------------------ */

static void start_with(const char *const *args)
{
    if (tkt_keepa_start(&ks, args) != 0) {
        fprintf(stderr, "cannot start %s\n", tkt_keepa_binary());
        _exit(2);
    }
}

static void start_default(void)
{
    start_with(NULL);
}

static void start_refill(void)
{
    static const char *const args[] = {"--rate",    "5", "--period-ms", "500",
                                       "--balance", "0", NULL};
    start_with(args);
}

static void start_deals(void)
{
    static const char *const args[] = {"--deals", "400", "--seed", "7", NULL};
    start_with(args);
}

static void stop_server(void)
{
    tkt_keepa_stop(&ks);
}

/* ---- helpers ------------------------------------------------------------- */

/* GET the server's path (a format); returns the HTTP status. */
__attribute__((format(printf, 3, 4))) static long get(char *body, size_t len,
                                                      const char *fmt, ...)
{
    char url[8192];
    int n = snprintf(url, sizeof(url), "%s", ks.url);
    long status;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(url + n, sizeof(url) - (size_t)n, fmt, ap);
    va_end(ap);
    ck_assert_msg(tkt_http_get(url, &status, body, len) == 0, "GET %s failed",
                  url);
    return status;
}

/* One field of /admin/state for key. */
static int64_t state(const char *key, const char *field)
{
    char body[4096];
    int64_t v;

    ck_assert_int_eq(get(body, sizeof(body), "/admin/state?key=%s", key), 200);
    v = tkt_json_int(body, field);
    ck_assert_msg(v != INT64_MIN, "no %s in %s", field, body);
    return v;
}

__attribute__((format(printf, 1, 2))) static void admin(const char *fmt, ...)
{
    char path[1024], body[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    ck_assert_msg(get(body, sizeof(body), "%s", path) == 200, "%s: %s", path,
                  body);
}

static int64_t field(const char *body, const char *name)
{
    int64_t v = tkt_json_int(body, name);

    ck_assert_msg(v != INT64_MIN, "no %s in %s", name, body);
    return v;
}

static void assert_token_fields(const char *body)
{
    static const char *const names[] = {
        "\"timestamp\":",          "\"tokensLeft\":",
        "\"refillIn\":",           "\"refillRate\":",
        "\"tokenFlowReduction\":", "\"tokensConsumed\":",
        "\"processingTimeInMs\":"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(strstr(body, names[i]) != NULL, "no %s in %s", names[i],
                      body);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* ---- /token and errors ----------------------------------------------------
 */

START_TEST(test_token_is_free_and_counted)
{
    char body[4096];
    int64_t before = real_ms();

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get(body, sizeof(body), "/token?key=tok"), 200);
        assert_token_fields(body);
        ck_assert_int_eq(field(body, "tokensLeft"), 1200);
        ck_assert_int_eq(field(body, "refillRate"), 20);
        ck_assert_int_eq(field(body, "tokensConsumed"), 0);
        ck_assert_int_gt(field(body, "refillIn"), 0);
        ck_assert_int_le(field(body, "refillIn"), 60000);
        ck_assert_int_ge(field(body, "timestamp"), before - 1000);
        ck_assert_int_le(field(body, "timestamp"), real_ms() + 1000);
        ck_assert_ptr_nonnull(strstr(body, "\"tokenFlowReduction\":0,"));
    }
    ck_assert_int_eq(state("tok", "token_calls"), 3);
    ck_assert_int_eq(state("tok", "requests"), 0);
    ck_assert_int_eq(state("tok", "balance"), 1200);
    ck_assert_int_eq(state("tok", "capacity"), 1200);
    ck_assert_int_eq(state("tok", "period_ms"), 60000);
}
END_TEST

START_TEST(test_errors_carry_token_fields_and_cost_nothing)
{
    char body[4096];

    ck_assert_int_eq(get(body, sizeof(body), "/token"), 400);
    assert_token_fields(body);
    ck_assert_ptr_nonnull(strstr(body, "\"type\":\"invalidParameter\""));
    ck_assert_int_eq(get(body, sizeof(body), "/product?key=&asin=B000000001"),
                     400);
    ck_assert_int_eq(get(body, sizeof(body), "/nope?key=err"), 404);
    assert_token_fields(body);
    ck_assert_ptr_nonnull(strstr(body, "\"type\":\"notFound\""));
    ck_assert_int_eq(field(body, "tokensConsumed"), 0);
    ck_assert_int_eq(get(body, sizeof(body), "/product?key=err&asin=short"),
                     400);
    assert_token_fields(body);
    ck_assert_int_eq(state("err", "balance"), 1200);
    ck_assert_int_eq(state("err", "requests"), 0);
}
END_TEST

/* ---- admin -----------------------------------------------------------------
 */

START_TEST(test_admin_default_key_and_set)
{
    char body[4096];

    /* The default key of admin calls is the first key ever used. */
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=first"), 200);
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=second"), 200);
    ck_assert_int_eq(get(body, sizeof(body), "/admin/state"), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"key\":\"first\""));
    ck_assert_int_eq(field(body, "token_calls"), 1);

    ck_assert_int_eq(get(body, sizeof(body),
                         "/admin/set?key=second&balance=-7&rate=3&period_ms="
                         "1000&latency_ms=5-9"),
                     200);
    ck_assert_ptr_nonnull(strstr(body, "\"key\":\"second\""));
    ck_assert_int_eq(field(body, "balance"), -7);
    ck_assert_int_eq(field(body, "rate"), 3);
    ck_assert_int_eq(field(body, "capacity"), 180);
    ck_assert_int_eq(field(body, "period_ms"), 1000);
    ck_assert_int_eq(field(body, "min_balance"), -7);
    ck_assert_int_eq(field(body, "latency_min_ms"), 5);
    ck_assert_int_eq(field(body, "latency_max_ms"), 9);
    ck_assert_int_ge(field(body, "refill_in_ms"), 900);

    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/reset_counters?key=second"), 200);
    ck_assert_int_eq(field(body, "token_calls"), 0);
    ck_assert_int_eq(field(body, "min_balance"), -7);

    /* Typos and bad values are refused, and change nothing. */
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/set?key=second&ballance=1"), 400);
    ck_assert_int_eq(get(body, sizeof(body), "/admin/set?key=second&rate=x"),
                     400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/set?key=second&latency_ms=9-5"), 400);
    ck_assert_int_eq(state("second", "balance"), -7);
    ck_assert_int_eq(get(body, sizeof(body), "/admin/nope"), 404);
}
END_TEST

/* ---- admission -------------------------------------------------------------
 */

START_TEST(test_admit_positive_charge_into_deficit)
{
    char body[4096];

    admin("/admin/set?key=adm&balance=1");
    ck_assert_int_eq(get(body, sizeof(body),
                         "/product?key=adm&domain=1&asin=B000000001,"
                         "B000000002,B000000003,B000000004,B000000005"),
                     200);
    ck_assert_int_eq(field(body, "tokensConsumed"), 5);
    ck_assert_int_eq(field(body, "tokensLeft"), -4);

    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=adm&domain=1&asin=B000000001"),
        429);
    assert_token_fields(body);
    ck_assert_int_eq(field(body, "tokensConsumed"), 0);
    ck_assert_int_eq(field(body, "tokensLeft"), -4);

    /* Zero is not positive. */
    admin("/admin/set?key=adm&balance=0");
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=adm&page=0"), 429);

    ck_assert_int_eq(state("adm", "requests"), 3);
    ck_assert_int_eq(state("adm", "served"), 1);
    ck_assert_int_eq(state("adm", "requests_429"), 2);
    ck_assert_int_eq(state("adm", "tokens_charged"), 5);
    ck_assert_int_eq(state("adm", "min_balance"), -4);
}
END_TEST

/* ---- refill
 * ------------------------------------------------------------------ */

START_TEST(test_discrete_refill)
{
    char body[4096];
    int64_t r;

    /* --rate 5 --period-ms 500 --balance 0: the key starts empty. */
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=r1"), 200);
    ck_assert_int_eq(field(body, "tokensLeft"), 0);
    ck_assert_int_eq(field(body, "refillRate"), 5);
    r = field(body, "refillIn");
    ck_assert_int_gt(r, 0);
    ck_assert_int_le(r, 500);

    tkt_sleep_ms(r / 2);
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=r1"), 200);
    ck_assert_int_eq(field(body, "tokensLeft"), 0);
    ck_assert_int_le(field(body, "refillIn"), r);

    tkt_sleep_ms(field(body, "refillIn") + 250);
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=r1"), 200);
    ck_assert_int_eq(field(body, "tokensLeft"), 5);

    /* A new rate or period re-anchors the ticks to now. */
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/set?key=r1&rate=10&period_ms=400"),
        200);
    ck_assert_int_ge(field(body, "refill_in_ms"), 350);
    ck_assert_int_eq(field(body, "capacity"), 600);
}
END_TEST

START_TEST(test_refill_stops_at_capacity)
{
    char body[4096];

    ck_assert_int_eq(get(body, sizeof(body), "/admin/set?key=r2&balance=297"),
                     200);
    ck_assert_int_eq(field(body, "capacity"), 300);
    tkt_sleep_ms(field(body, "refill_in_ms") + 250);
    ck_assert_int_eq(state("r2", "balance"), 300);
    tkt_sleep_ms(500);
    ck_assert_int_eq(state("r2", "balance"), 300);

    /* Above capacity (set by hand): refill neither adds nor takes. */
    admin("/admin/set?key=r2&balance=310");
    tkt_sleep_ms(600);
    ck_assert_int_eq(state("r2", "balance"), 310);
}
END_TEST

/* ---- costs
 * ------------------------------------------------------------------- */

static int64_t product_cost(const char *query)
{
    char body[BODY_LEN];

    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=p&domain=1&%s", query), 200);
    return field(body, "tokensConsumed");
}

START_TEST(test_product_costs)
{
    static const char *const asins[] = {"B000000001", "B000000002",
                                        "B000000003", "0123456789"};
    char body[BODY_LEN], many[2048];
    int64_t expect20 = 0, expect100 = 0, charged = 0, c;
    size_t n = 0;

    c = product_cost("asin=B000000001,B000000002,B000000003");
    ck_assert_int_eq(c, 3);
    charged += c;

    for (int i = 0; i < 4; i++) {
        expect20 += 6 * (1 + fnv1a32(asins[i]) % 2);
        expect100 += 6 * (1 + fnv1a32(asins[i]) % 10);
    }
    c = product_cost("offers=20&asin=B000000001,B000000002,B000000003,"
                     "0123456789");
    ck_assert_int_eq(c, expect20);
    charged += c;
    /* Deterministic: the same request costs the same. */
    c = product_cost("offers=100&asin=B000000001,B000000002,B000000003,"
                     "0123456789");
    ck_assert_int_eq(c, expect100);
    charged += c;
    c = product_cost("offers=100&asin=B000000001,B000000002,B000000003,"
                     "0123456789");
    ck_assert_int_eq(c, expect100);
    charged += c;

    c = product_cost("buybox=1&rating=1&stock=1&asin=B000000001,B000000002");
    ck_assert_int_eq(c, 2 * (1 + 2 + 1 + 2));
    charged += c;
    c = product_cost("offers=20&buybox=1&asin=B000000001");
    ck_assert_int_eq(c, 6 * (1 + fnv1a32("B000000001") % 2) + 2);
    charged += c;

    ck_assert_int_eq(get(body, sizeof(body),
                         "/product?key=p&domain=1&asin=B000000001&offers=20"),
                     200);
    ck_assert_ptr_nonnull(strstr(body, "\"products\":[{\"asin\":\"B000000001\","
                                       "\"title\":\"Synthetic product "
                                       "B000000001\""));
    charged += field(body, "tokensConsumed");

    /* 100 ASINs are fine, 101 are refused uncharged. */
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%sB%09d",
                              i ? "," : "", i);
    c = product_cost(strcat(strcpy(body, "asin="), many));
    ck_assert_int_eq(c, 100);
    charged += c;
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=p&asin=%s,B999999999", many),
        400);
    ck_assert_ptr_nonnull(strstr(body, "\"type\":\"invalidParameter\""));
    ck_assert_int_eq(field(body, "tokensConsumed"), 0);

    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=p&asin=B000000001&offers=10"),
        400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=p&asin=B000000001&offers=101"),
        400);
    ck_assert_int_eq(get(body, sizeof(body), "/product?key=p&asin=b000000001"),
                     400);
    ck_assert_int_eq(get(body, sizeof(body), "/product?key=p&asin=B000000001,"),
                     400);
    ck_assert_int_eq(get(body, sizeof(body), "/product?key=p"), 400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=p&asin=B000000001&stock=2"), 400);

    ck_assert_int_eq(state("p", "tokens_charged"), charged);
    ck_assert_int_eq(state("p", "balance"), 1200 - charged);
    ck_assert_int_eq(state("p", "served"), 8);
}
END_TEST

/* The "dr":[...] list of a /deal body (copied into out). */
static void deal_list(const char *body, char *out, size_t len)
{
    const char *a = strstr(body, "\"dr\":["), *b;

    ck_assert_ptr_nonnull(a);
    b = strstr(a, "],\"page\":");
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_lt((size_t)(b - a), len);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
}

START_TEST(test_deal_pages)
{
    static char body[BODY_LEN], first[BODY_LEN], again[BODY_LEN];

    /* --deals 400: pages of 150, 150 and 100, then empty ones. */
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=0"), 200);
    ck_assert_int_eq(field(body, "tokensConsumed"), 5);
    ck_assert_int_eq(field(body, "totalPages"), 3);
    ck_assert_int_eq(count_of(body, "\"asin\":\"B"), 150);
    ck_assert_ptr_nonnull(strstr(body, "\"dr\":[{\"asin\":\"B000012345\""));
    deal_list(body, first, sizeof(first));
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=0"), 200);
    deal_list(body, again, sizeof(again));
    ck_assert_str_eq(first, again);

    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=1"), 200);
    deal_list(body, first, sizeof(first));
    ck_assert_int_eq(get(body, sizeof(body),
                         "/deal?key=d&selection=%%7B%%22page%%22%%3A1%%7D"),
                     200);
    deal_list(body, again, sizeof(again));
    ck_assert_str_eq(first, again);
    ck_assert_int_eq(field(body, "page"), 1);

    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=2"), 200);
    ck_assert_int_eq(count_of(body, "\"asin\":\"B"), 100);
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=3"), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"dr\":[]"));
    ck_assert_int_eq(field(body, "tokensConsumed"), 5);

    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=-1"), 400);
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=d&page=abc"), 400);
    ck_assert_int_eq(state("d", "tokens_charged"), 6 * 5);
    ck_assert_int_eq(state("d", "served"), 6);
}
END_TEST

/* ---- concurrency
 * -------------------------------------------------------------- */

typedef struct capture {
    char body[BODY_LEN];
    size_t len;
    bool gzip_header;
} capture;

static size_t on_write(char *data, size_t size, size_t nmemb, void *cls)
{
    capture *c = cls;
    size_t n = size * nmemb, take = n;

    if (take > sizeof(c->body) - 1 - c->len)
        take = sizeof(c->body) - 1 - c->len;
    memcpy(c->body + c->len, data, take);
    c->len += take;
    c->body[c->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *cls)
{
    capture *c = cls;
    size_t n = size * nmemb;

    if (n >= 22 && strncasecmp(data, "Content-Encoding: gzip", 22) == 0)
        c->gzip_header = true;
    return n;
}

START_TEST(test_parallel_requests_overdraw_together)
{
    static capture got[4];
    CURL *h[4];
    CURLM *m = curl_multi_init();
    char url[4][256];
    int running = 0;
    int64_t t0, min_left = INT64_MAX;

    admin("/admin/set?key=c&balance=1&latency_ms=300");
    /* Costs 1, 2, 3 and 5 (a deal page): all admitted at balance 1, so the
     * balance ends at 1 - 11. */
    snprintf(url[0], sizeof(url[0]), "%s/product?key=c&asin=B000000001",
             ks.url);
    snprintf(url[1], sizeof(url[1]),
             "%s/product?key=c&asin=B000000001,B000000002", ks.url);
    snprintf(url[2], sizeof(url[2]),
             "%s/product?key=c&asin=B000000001,B000000002,B000000003", ks.url);
    snprintf(url[3], sizeof(url[3]), "%s/deal?key=c&page=0", ks.url);
    for (int i = 0; i < 4; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url[i]);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &got[i]);
        curl_multi_add_handle(m, h[i]);
    }
    t0 = tkt_now_ms();
    do {
        ck_assert_int_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running);
    ck_assert_int_ge(tkt_now_ms() - t0, 290);

    for (int i = 0; i < 4; i++) {
        long status = 0;
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &status);
        ck_assert_msg(status == 200, "request %d: %ld %s", i, status,
                      got[i].body);
        if (field(got[i].body, "tokensLeft") < min_left)
            min_left = field(got[i].body, "tokensLeft");
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    curl_multi_cleanup(m);

    ck_assert_int_eq(min_left, 1 - 11);
    ck_assert_int_eq(state("c", "balance"), 1 - 11);
    ck_assert_int_eq(state("c", "min_balance"), 1 - 11);
    ck_assert_int_eq(state("c", "max_inflight"), 4);
    ck_assert_int_eq(state("c", "inflight"), 0);
    ck_assert_int_eq(state("c", "served"), 4);
}
END_TEST

/* ---- faults
 * -------------------------------------------------------------------- */

static const char *const fault_names[] = {
    "503",  "502html", "504html", "truncated",     "missing_fields",
    "slow", "skew",    "jitter",  "flow_reduction"};

static void faults_off(void)
{
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
        admin("/admin/fault?name=%s&on=0", fault_names[i]);
}

/* Whether fault name is on, from the fault listing. */
static bool fault_on(const char *name)
{
    char body[4096], needle[64];

    ck_assert_int_eq(get(body, sizeof(body), "/admin/fault"), 200);
    snprintf(needle, sizeof(needle), "\"%s\":{\"on\":true", name);
    return strstr(body, needle) != NULL;
}

START_TEST(test_fault_503_instead_of_429)
{
    char body[4096];

    admin("/admin/set?key=f503&balance=0");
    admin("/admin/fault?name=503&on=1&count=1");
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=f503&asin=B000000001"), 503);
    assert_token_fields(body);
    ck_assert_int_eq(field(body, "tokensConsumed"), 0);
    ck_assert(!fault_on("503"));
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=f503&asin=B000000001"), 429);
}
END_TEST

START_TEST(test_fault_proxy_html)
{
    char body[4096];

    admin("/admin/set?key=fpx&balance=10");
    admin("/admin/fault?name=502html&on=1&count=2");
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fpx&asin=B000000001"), 502);
    ck_assert_str_eq(body, "<html>Bad Gateway</html>");
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=fpx"), 502);
    ck_assert(!fault_on("502html"));

    admin("/admin/fault?name=504html&on=1&count=1");
    ck_assert_int_eq(get(body, sizeof(body), "/deal?key=fpx&page=0"), 504);
    ck_assert_str_eq(body, "<html>Gateway Timeout</html>");

    /* Not admitted, nothing charged. */
    ck_assert_int_eq(state("fpx", "balance"), 10);
    ck_assert_int_eq(state("fpx", "served"), 0);
    ck_assert_int_eq(state("fpx", "requests"), 2);
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fpx&asin=B000000001"), 200);
}
END_TEST

START_TEST(test_fault_truncated)
{
    char body[4096], whole[4096];

    admin("/admin/fault?name=truncated&on=1&count=1");
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=ftr&asin=B000000001"), 200);
    ck_assert_int_eq(
        get(whole, sizeof(whole), "/product?key=ftr&asin=B000000001"), 200);
    ck_assert_int_eq(whole[strlen(whole) - 1], '}');
    ck_assert_int_ne(body[strlen(body) - 1], '}');
    ck_assert_int_le(strlen(body), strlen(whole) / 2 + 2);
    ck_assert_int_ge(strlen(body), strlen(whole) / 2 - 2);
    ck_assert_int_eq(strncmp(body, whole, 10), 0);
    /* Charged all the same. */
    ck_assert_int_eq(state("ftr", "tokens_charged"), 2);
}
END_TEST

START_TEST(test_fault_missing_fields)
{
    char body[4096];

    admin("/admin/fault?name=missing_fields&on=1&count=1");
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fmf&asin=B000000001"), 200);
    ck_assert_ptr_null(strstr(body, "tokensLeft"));
    ck_assert_ptr_null(strstr(body, "refillIn"));
    ck_assert_ptr_null(strstr(body, "timestamp"));
    ck_assert_int_eq(field(body, "tokensConsumed"), 1);
    ck_assert_int_eq(state("fmf", "tokens_charged"), 1);
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=fmf"), 200);
    assert_token_fields(body);
}
END_TEST

START_TEST(test_fault_slow)
{
    char body[4096];
    int64_t t0;

    admin("/admin/fault?name=slow&on=1&value=400&count=1");
    t0 = tkt_now_ms();
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fsl&asin=B000000001"), 200);
    ck_assert_int_ge(tkt_now_ms() - t0, 395);
    ck_assert_int_ge(field(body, "processingTimeInMs"), 395);
    t0 = tkt_now_ms();
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fsl&asin=B000000001"), 200);
    ck_assert_int_lt(tkt_now_ms() - t0, 300);
}
END_TEST

START_TEST(test_fault_skew_and_flow_reduction)
{
    char body[4096];
    int64_t ts;

    admin("/admin/fault?name=skew&on=1&value=3600000&count=2");
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(get(body, sizeof(body), "/token?key=fsk"), 200);
        ts = field(body, "timestamp") - real_ms();
        ck_assert_int_ge(ts, 3600000 - 10000);
        ck_assert_int_le(ts, 3600000 + 10000);
    }
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=fsk"), 200);
    ts = field(body, "timestamp") - real_ms();
    ck_assert_int_ge(ts, -10000);
    ck_assert_int_le(ts, 10000);

    admin("/admin/fault?name=flow_reduction&on=1&value=2.5");
    ck_assert_int_eq(
        get(body, sizeof(body), "/product?key=fsk&asin=B000000001"), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"tokenFlowReduction\":2.5,"));
    admin("/admin/fault?name=flow_reduction&on=0");
    ck_assert_int_eq(get(body, sizeof(body), "/token?key=fsk"), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"tokenFlowReduction\":0,"));
}
END_TEST

/* Sleep into the middle of the next refill interval; the balance gained. */
static int64_t next_gain(const char *key, int64_t *balance)
{
    char body[4096];
    int64_t before = *balance;

    ck_assert_int_eq(get(body, sizeof(body), "/admin/state?key=%s", key), 200);
    tkt_sleep_ms(field(body, "refill_in_ms") + 100);
    *balance = state(key, "balance");
    return *balance - before;
}

START_TEST(test_fault_jitter)
{
    int64_t balance = 0, jittered = 0;

    /* rate 100, jitter 5: each tick adds 95..105, so the ticks in a gain
     * are round(gain / 100) even if a sample comes late. */
    admin("/admin/set?key=fj&balance=0&rate=100&period_ms=200");
    admin("/admin/fault?name=jitter&on=1&value=5");
    for (int i = 0; i < 5; i++) {
        int64_t d = next_gain("fj", &balance), ticks = (d + 50) / 100;
        ck_assert_int_ge(ticks, 1);
        ck_assert_int_le(llabs(d - 100 * ticks), 5 * ticks);
        jittered += d != 100 * ticks;
    }
    ck_assert_int_ge(jittered, 1);

    /* count=2: two ticks jittered, then exact again. */
    admin("/admin/fault?name=jitter&on=1&value=5&count=2");
    tkt_sleep_ms(700);
    balance = state("fj", "balance");
    ck_assert(!fault_on("jitter"));
    for (int i = 0; i < 3; i++) {
        int64_t d = next_gain("fj", &balance);
        ck_assert_int_eq(d % 100, 0);
        ck_assert_int_ge(d, 100);
    }
}
END_TEST

START_TEST(test_fault_switch_errors)
{
    char body[4096];

    ck_assert_int_eq(get(body, sizeof(body), "/admin/fault?name=bogus&on=1"),
                     400);
    ck_assert_int_eq(get(body, sizeof(body), "/admin/fault?name=503&on=2"),
                     400);
    ck_assert_int_eq(get(body, sizeof(body), "/admin/fault?name=503"), 400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/fault?name=503&on=1&count=0"), 400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/fault?name=slow&on=1&value=-1"), 400);
    ck_assert_int_eq(
        get(body, sizeof(body), "/admin/fault?name=skew&on=1&value=nan"), 400);
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
        ck_assert(!fault_on(fault_names[i]));
}
END_TEST

/* ---- gzip
 * ---------------------------------------------------------------------- */

START_TEST(test_gzip)
{
    static capture got, raw, plain;
    static char inflated[BODY_LEN];
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept-Encoding: gzip");
    char url[256];
    z_stream z;
    CURL *h;

    snprintf(url, sizeof(url), "%s/deal?key=gz&page=0", ks.url);
    /* libcurl asks for and decodes gzip. */
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &got);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    ck_assert(got.gzip_header);
    ck_assert_int_eq(field(got.body, "tokensConsumed"), 5);
    ck_assert_int_eq(count_of(got.body, "\"asin\":\"B"), 150);

    /* On the wire: a gzip member that zlib inflates to the JSON. */
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &raw);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    ck_assert_uint_gt(raw.len, 2);
    ck_assert_int_eq((unsigned char)raw.body[0], 0x1f);
    ck_assert_int_eq((unsigned char)raw.body[1], 0x8b);
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(inflateInit2(&z, 31), Z_OK);
    z.next_in = (Bytef *)raw.body;
    z.avail_in = (uInt)raw.len;
    z.next_out = (Bytef *)inflated;
    z.avail_out = sizeof(inflated) - 1;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    inflated[z.total_out] = '\0';
    inflateEnd(&z);
    assert_token_fields(inflated);
    ck_assert_int_eq(count_of(inflated, "\"asin\":\"B"), 150);

    /* Without Accept-Encoding: plain JSON. */
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &plain);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &plain);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    ck_assert(!plain.gzip_header);
    ck_assert_int_eq(plain.body[0], '{');
}
END_TEST

/* ---- command line
 * ---------------------------------------------------------------- */

/* Run fake_keepa with args (at most 5 s), its output into o. */
static int run_binary(const char *const *args, tkt_output *o)
{
    const char *argv[16];
    size_t n = 0;

    argv[n++] = tkt_keepa_binary();
    for (; *args != NULL && n + 1 < 16; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return tkt_run(argv, 5000, NULL, o);
}

START_TEST(test_bad_options)
{
    static const char *const cases[][4] = {
        {"--port", "abc", NULL},
        {"--port", "70000", NULL},
        {"--rate", "-1", NULL},
        {"--rate", "2x", NULL},
        {"--period-ms", "0", NULL},
        {"--latency-ms", "5-2", NULL},
        {"--latency-ms", "-5", NULL},
        {"--deals", "1e3", NULL},
        {"--seed", "", NULL},
        {"--balance", "99999999999999999999", NULL},
        {"--port", NULL},
        {"--bogus", "1", NULL},
        {"extra", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static tkt_output o;
        int rc = run_binary(cases[i], &o);
        const char *err = o.err, *out = o.out, *nl = strchr(err, '\n');
        ck_assert_msg(rc == 64, "%s %s: exit %d", cases[i][0],
                      cases[i][1] ? cases[i][1] : "", rc);
        ck_assert_msg(nl != NULL && nl[1] == '\0', "not one line: '%s'", err);
        ck_assert_msg(strncmp(err, "fake_keepa: ", 12) == 0, "%s", err);
        ck_assert_str_eq(out, "");
    }
}
END_TEST

START_TEST(test_options_and_clean_stop)
{
    static const char *const args[] = {"--rate",       "7",   "--balance", "-3",
                                       "--latency-ms", "0-2", NULL};
    char body[4096], url[256];
    tkt_keepa k;
    long st;
    int status;

    ck_assert_int_eq(tkt_keepa_start(&k, args), 0);
    ck_assert_int_gt(k.port, 0);
    snprintf(url, sizeof(url), "%s/token?key=o", k.url);
    ck_assert_int_eq(tkt_http_get(url, &st, body, sizeof(body)), 0);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(field(body, "refillRate"), 7);
    ck_assert_int_eq(field(body, "tokensLeft"), -3);

    ck_assert_int_eq(kill(k.pid, SIGTERM), 0);
    ck_assert_int_eq(waitpid(k.pid, &status, 0), k.pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);

    ck_assert_int_eq(tkt_keepa_start(&k, NULL), 0);
    ck_assert_int_eq(kill(k.pid, SIGINT), 0);
    ck_assert_int_eq(waitpid(k.pid, &status, 0), k.pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_json_int_helper)
{
    ck_assert_int_eq(tkt_json_int("{\"a\":1,\"ab\" : -22}", "ab"), -22);
    ck_assert_int_eq(tkt_json_int("{\"a\":1}", "b"), INT64_MIN);
    ck_assert_int_eq(tkt_json_int("{\"a\":1.5}", "a"), INT64_MIN);
    ck_assert_int_eq(tkt_json_int("{\"a\":\"1\"}", "a"), INT64_MIN);
}
END_TEST

/* A TCase whose tests share one server, started by setup (NULL: none). */
static TCase *tcase(Suite *s, const char *name, void (*setup)(void))
{
    TCase *tc = tkt_tcase(s, name, 30);

    if (setup != NULL)
        tcase_add_unchecked_fixture(tc, setup, stop_server);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("fake_keepa");
    TCase *faults;
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tkt_add_tests(tcase(s, "token", start_default),
                  test_token_is_free_and_counted,
                  test_errors_carry_token_fields_and_cost_nothing, NULL);
    tkt_add_tests(tcase(s, "admin", start_default),
                  test_admin_default_key_and_set, NULL);
    tkt_add_tests(tcase(s, "admission", start_default),
                  test_admit_positive_charge_into_deficit, NULL);
    tkt_add_tests(tcase(s, "refill", start_refill), test_discrete_refill,
                  test_refill_stops_at_capacity, NULL);
    tkt_add_tests(tcase(s, "costs", start_deals), test_product_costs,
                  test_deal_pages, NULL);
    tkt_add_tests(tcase(s, "concurrency", start_default),
                  test_parallel_requests_overdraw_together, NULL);
    faults = tcase(s, "faults", start_default);
    tcase_add_checked_fixture(faults, faults_off, NULL);
    tkt_add_tests(faults, test_fault_503_instead_of_429, test_fault_proxy_html,
                  test_fault_truncated, test_fault_missing_fields,
                  test_fault_slow, test_fault_skew_and_flow_reduction,
                  test_fault_jitter, test_fault_switch_errors, NULL);
    tkt_add_tests(tcase(s, "gzip", start_default), test_gzip, NULL);
    tkt_add_tests(tcase(s, "command_line", NULL), test_bad_options,
                  test_options_and_clean_stop, test_json_int_helper, NULL);
    rc = tkt_run_suite(s, 0);
    curl_global_cleanup();
    return rc;
}
