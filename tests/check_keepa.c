/* The Keepa client against the fake Keepa server over loopback and a real
 * redis-server: no 429s once synced, waits instead of storms, every fault
 * switch, the /token throttle across processes, the worker's exactly-once
 * output, and bad configuration. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_keepa.h"
#include "tkt.h"

#define KEY     "SECRETKEY123"
#define WORKERS 8

static tkt_keepa fake;

static void start_fake(const char *const *args)
{
    ck_assert_msg(tkt_keepa_start(&fake, args) == 0, "fake_keepa start");
}

static void admin(const char *path_query, char *out, size_t len)
{
    char url[512];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", fake.url, path_query);
    ck_assert_int_eq(tkt_http_get(url, &status, out, len), 0);
    ck_assert_msg(status == 200, "%s: HTTP %ld: %s", path_query, status, out);
}

static int64_t state_of(const char *field)
{
    char body[4096];

    admin("/admin/state?key=" KEY, body, sizeof(body));
    return tkt_json_int(body, field);
}

static tkm_options keepa_options(int64_t period_ms)
{
    tkm_options o = tkt_options();

    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "%s", fake.url);
    o.keepa.timeout_ms = 5000;
    o.keepa.max_retries = 3;
    o.bucket.refill_period_ms = period_ms;
    o.heartbeat.wait_slice_ms = 200;
    return o;
}

static tkm_keepa *open_keepa(tkm_client *c)
{
    tkm_keepa *kc = NULL;
    tkm_code rc = tkm_keepa_open(c, &kc);

    ck_assert_msg(rc == TKM_OK, "keepa open: %s", tkm_keepa_errstr(kc));
    return kc;
}

static void setup(void)
{
    tkt_redis_setup();
    setenv("TOKENMGR_KEEPA_KEY", KEY, 1);
}

static void teardown(void)
{
    tkt_keepa_stop(&fake);
    tkt_redis_teardown();
}

/* WORKERS processes each make `calls` /product calls (2 ASINs with
 * offers: estimated 12, charged 12 to 24). */
static void run_workers(const tkm_options *o, int calls)
{
    pid_t pids[WORKERS];

    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            tkm_options mine = *o;
            tkm_client *c = NULL;
            tkm_keepa *kc = NULL;
            int failed = 0;
            snprintf(mine.worker_id, sizeof(mine.worker_id), "w%d", w);
            if (tkm_client_open(&mine, &c) != TKM_OK ||
                tkm_keepa_open(c, &kc) != TKM_OK)
                _exit(3);
            for (int i = 0; i < calls; i++) {
                char asins[32];
                const char *params[] = {"domain", "1",  "asin", asins,
                                        "offers", "20", NULL};
                tkm_keepa_response r;
                snprintf(asins, sizeof(asins), "B%09d,B%09d", w * 100 + i,
                         w * 100 + i + 50);
                if (tkm_keepa_request(kc, "/product", params, 12, &r) !=
                    TKM_OK) {
                    fprintf(stderr, "worker %d: %s\n", w, tkm_keepa_errstr(kc));
                    failed = 1;
                }
                tkm_keepa_response_free(&r);
            }
            tkm_keepa_free(kc);
            tkm_client_free(c);
            _exit(failed);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "worker %d failed", w);
    }
}

START_TEST(test_eight_workers_no_429)
{
    const char *args[] = {"--rate",       "60",        "--period-ms",
                          "500",          "--balance", "200",
                          "--latency-ms", "20-80",     NULL};
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_sync_result sr;
    int64_t charged, t0 = tkt_now_ms(), elapsed;

    start_fake(args);
    o = keepa_options(500);
    c = tkt_open(&o);
    kc = open_keepa(c);
    ck_assert_int_eq(tkm_keepa_sync(kc, 0, &sr), TKM_OK);
    ck_assert_int_eq(sr.throttled, 0);
    ck_assert_int_eq(sr.tokens, 200);
    run_workers(&o, 4);
    elapsed = tkt_now_ms() - t0;
    ck_assert_int_eq(state_of("requests_429"), 0);
    ck_assert_int_ge(state_of("min_balance"), o.bucket.max_deficit);
    /* Charged: what was there plus what refill brought, no more. */
    charged = state_of("tokens_charged");
    ck_assert_int_ge(charged, WORKERS * 4 * 12);
    ck_assert_int_le(charged,
                     200 + (elapsed / 500 + 1) * 60 - o.bucket.max_deficit);
    ck_assert_int_eq(state_of("served"), WORKERS * 4);
    ck_assert_int_eq(tkt_status(c).inflight, 0);
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_negative_balance_no_storm)
{
    const char *args[] = {"--rate",       "60",        "--period-ms",
                          "500",          "--balance", "300",
                          "--latency-ms", "10-30",     NULL};
    char body[4096];
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_sync_result sr;
    int64_t t0, refills, n429;

    start_fake(args);
    o = keepa_options(500);
    c = tkt_open(&o);
    kc = open_keepa(c);
    ck_assert_int_eq(tkm_keepa_sync(kc, 0, &sr), TKM_OK);
    /* An outside client spends far more than the pool knows. */
    admin("/admin/set?key=" KEY "&balance=-150", body, sizeof(body));
    t0 = tkt_now_ms();
    run_workers(&o, 2);
    refills = (tkt_now_ms() - t0) / 500 + 1;
    n429 = state_of("requests_429");
    ck_assert_int_ge(n429, 1);
    ck_assert_msg(n429 <= WORKERS * refills,
                  "%lld 429s for %d workers over %lld refills", (long long)n429,
                  WORKERS, (long long)refills);
    ck_assert_int_eq(state_of("served"), WORKERS * 2);
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

/* One request, with the pool synced first; returns the status code. */
static tkm_code one_request(tkm_keepa *kc, const char *asins,
                            tkm_keepa_response *r)
{
    const char *params[] = {"domain", "1", "asin", asins, NULL};

    return tkm_keepa_request(kc, "/product", params, 2, r);
}

static void fault(const char *query)
{
    char body[4096], path[256];

    snprintf(path, sizeof(path), "/admin/fault?%s", query);
    admin(path, body, sizeof(body));
}

/* The client's error after a refusal: never the key, masked or withheld
 * instead (the response body, the caller's own data, still has it). */
static void expect_hidden(tkm_keepa *kc, tkm_client *c, tkm_keepa_response *r,
                          const char *shown)
{
    const char *err = tkm_keepa_errstr(kc);

    ck_assert_msg(strstr(err, KEY) == NULL, "the key in '%s'", err);
    ck_assert_msg(strstr(tkm_errstr(c), KEY) == NULL, "the key in '%s'",
                  tkm_errstr(c));
    ck_assert_msg(strstr(err, shown) != NULL, "'%s' not in '%s'", shown, err);
    ck_assert_msg(r->body != NULL && strstr(r->body, KEY) != NULL,
                  "the fake did not echo the key: %s",
                  r->body ? r->body : "(no body)");
}

/* Keepa, or a proxy before it, quoting the key back in an error (the
 * echo_key fault, on every error answer): 4xx messages, 429 bodies, HTML
 * pages and /token. */
START_TEST(test_errors_never_carry_key)
{
    const char *args[] = {"--rate",    "60",  "--period-ms", "60000",
                          "--balance", "500", NULL};
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_sync_result sr;
    tkm_keepa_response r;
    char body[4096];

    start_fake(args);
    o = keepa_options(60000);
    o.keepa.max_retries = 0;
    c = tkt_open(&o);
    kc = open_keepa(c);
    ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_OK);
    fault("name=echo_key&on=1");

    /* A 400 whose message quotes "key=...": masked, the rest kept. */
    ck_assert_int_eq(one_request(kc, "not-an-asin", &r), TKM_EAPI);
    ck_assert_int_eq(r.http_status, 400);
    expect_hidden(kc, c, &r, "key=***");
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "Keepa refused it"));
    tkm_keepa_response_free(&r);

    /* A 400 quoting the bare key: the whole message withheld. */
    fault("name=echo_key&on=1&value=1");
    ck_assert_int_eq(one_request(kc, "not-an-asin", &r), TKM_EAPI);
    expect_hidden(kc, c, &r, "message withheld");
    tkm_keepa_response_free(&r);
    fault("name=echo_key&on=1&value=0");

    /* A 429 quoting it, retries exhausted. */
    admin("/admin/set?key=" KEY "&balance=0", body, sizeof(body));
    ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_EHTTP);
    ck_assert_int_eq(r.http_429s, 1);
    expect_hidden(kc, c, &r, "429");
    tkm_keepa_response_free(&r);

    /* A proxy's HTML page quoting it, on a call and on /token. */
    admin("/admin/set?key=" KEY "&balance=500", body, sizeof(body));
    ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_OK);
    fault("name=502html&on=1");
    ck_assert_int_eq(one_request(kc, "B000000002", &r), TKM_EHTTP);
    expect_hidden(kc, c, &r, "HTTP 502");
    tkm_keepa_response_free(&r);
    ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_EHTTP);
    ck_assert_ptr_null(strstr(tkm_keepa_errstr(kc), KEY));
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "HTTP 502"));
    fault("name=502html&on=0");
    fault("name=echo_key&on=0");
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_fault_switches)
{
    const char *args[] = {"--rate",    "60",  "--period-ms", "400",
                          "--balance", "500", NULL};
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_sync_result sr;
    tkm_keepa_response r;
    char body[4096];

    start_fake(args);
    o = keepa_options(400);
    o.keepa.timeout_ms = 400;
    c = tkt_open(&o);
    kc = open_keepa(c);
    ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_OK);

    /* A proxy error with an HTML body: released, retried, answered. */
    fault("name=502html&on=1&count=1");
    ck_assert_int_eq(one_request(kc, "B000000001,B000000002", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    ck_assert_int_eq(r.tokens_consumed, 2);
    tkm_keepa_response_free(&r);
    fault("name=504html&on=1&count=1");
    ck_assert_int_eq(one_request(kc, "B000000003", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    tkm_keepa_response_free(&r);

    /* Charged, but the body is cut or lacks the fields: retried. */
    fault("name=truncated&on=1&count=1");
    ck_assert_int_eq(one_request(kc, "B000000004", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    ck_assert_int_eq(r.has_tokens, 1);
    tkm_keepa_response_free(&r);
    fault("name=missing_fields&on=1&count=1");
    ck_assert_int_eq(one_request(kc, "B000000005", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    tkm_keepa_response_free(&r);

    /* Slower than the client's timeout: retried, never hangs. */
    fault("name=slow&on=1&value=1500&count=1");
    ck_assert_int_eq(one_request(kc, "B000000006", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    tkm_keepa_response_free(&r);

    /* tokenFlowReduction is passed on; skew does not break anything. */
    fault("name=flow_reduction&on=1&value=2.5");
    fault("name=skew&on=1&value=3600000");
    fault("name=jitter&on=1&value=5");
    ck_assert_int_eq(one_request(kc, "B000000007", &r), TKM_OK);
    ck_assert(r.token_flow_reduction > 2.4 && r.token_flow_reduction < 2.6);
    tkm_keepa_response_free(&r);
    fault("name=skew&on=0");
    fault("name=jitter&on=0");

    /* Out of tokens answered 503 with a token body: a 429 in disguise. */
    admin("/admin/set?key=" KEY "&balance=0", body, sizeof(body));
    fault("name=503&on=1");
    ck_assert_int_eq(one_request(kc, "B000000008", &r), TKM_OK);
    ck_assert_int_eq(r.http_429s, 1);
    ck_assert_int_eq(r.http_status, 200);
    tkm_keepa_response_free(&r);
    fault("name=503&on=0");

    /* The API refuses the request: at once, with its message, uncharged. */
    ck_assert_int_eq(one_request(kc, "not-an-asin", &r), TKM_EAPI);
    ck_assert_int_eq(r.http_status, 400);
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_msg(strstr(tkm_keepa_errstr(kc), "Keepa refused") != NULL, "%s",
                  tkm_keepa_errstr(kc));
    ck_assert_ptr_null(strstr(tkm_keepa_errstr(kc), KEY));
    tkm_keepa_response_free(&r);

    /* Retries exhausted: an error that names no key. */
    o.keepa.max_retries = 1;
    tkm_keepa_free(kc);
    tkm_client_free(c);
    c = tkt_open(&o);
    kc = open_keepa(c);
    fault("name=502html&on=1");
    ck_assert_int_eq(one_request(kc, "B000000009", &r), TKM_EHTTP);
    ck_assert_int_eq(r.attempts, 2);
    ck_assert_ptr_null(strstr(tkm_keepa_errstr(kc), KEY));
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "HTTP 502"));
    tkm_keepa_response_free(&r);
    fault("name=502html&on=0");

    /* Every reservation ended: nothing in flight. */
    ck_assert_int_eq(tkt_status(c).inflight, 0);
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

/* The worker's record in the workers view (fails the test when absent). */
static tkm_worker worker_seen(tkm_client *c, const char *id)
{
    tkm_worker *list = NULL, found;
    size_t n = 0;
    int seen = 0;

    ck_assert_int_eq(tkm_workers(c, &list, &n), TKM_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].id, id) == 0) {
            found = list[i];
            seen = 1;
        }
    }
    tkm_workers_free(list);
    ck_assert_msg(seen, "worker %s is not in the workers view", id);
    return found;
}

/* A call takes two round trips to Redis, its grant and its completion: the
 * grant is the worker's heartbeat of the call's phase.  A failure still to
 * report rides in a heartbeat of its own. */
START_TEST(test_grant_carries_heartbeat)
{
    const char *args[] = {"--rate", "60", "--balance", "500", NULL};
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_sync_result sr;
    tkm_keepa_response r;
    tkm_worker w;
    int64_t before;

    start_fake(args);
    o = keepa_options(60000);
    o.heartbeat.min_interval_ms = 0; /* no heartbeat is coalesced away */
    c = tkt_open(&o);
    kc = open_keepa(c);
    ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_OK);
    ck_assert_int_eq(tkm_heartbeat(c, "starting"), TKM_OK);
    ck_assert_str_eq(worker_seen(c, tkm_client_options(c)->worker_id).phase,
                     "starting");

    /* A worker departed a day ago: the grants' heartbeats prune it, as
     * heartbeat() does (a fleet whose beats all ride on grants would keep
     * every departed worker otherwise). */
    tkt_do("ZADD tokenmgr:{t}:heartbeats %lld ghost",
           (long long)(tkt_status(c).now_ms - 86400000LL - 60000));
    tkt_do("HSET tokenmgr:{t}:workers ghost 0||gone");
    for (int i = 0; i < 3; i++) {
        before = tkm_client_round_trips(c);
        ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_OK);
        tkm_keepa_response_free(&r);
        /* The first call loads the two scripts: one more each. */
        ck_assert_int_le(tkm_client_round_trips(c) - before, i == 0 ? 4 : 2);
    }
    ck_assert_int_eq(tkm_client_round_trips(c) - before, 2);
    {
        redisContext *raw = tkt_raw();
        redisReply *rp = tkt_cmd(raw, "HEXISTS tokenmgr:{t}:workers ghost");
        ck_assert_int_eq(rp->integer, 0);
        freeReplyObject(rp);
        rp = tkt_cmd(raw, "ZSCORE tokenmgr:{t}:heartbeats ghost");
        ck_assert_int_eq(rp->type, REDIS_REPLY_NIL);
        freeReplyObject(rp);
        redisFree(raw);
    }
    w = worker_seen(c, tkm_client_options(c)->worker_id);
    ck_assert_str_eq(w.phase, "keepa /product");
    ck_assert_int_lt(w.heartbeat_age_ms, 5000);
    ck_assert_int_eq(w.alive, 1);
    ck_assert_str_eq(w.error, "");

    /* A 5xx: released, retried; the retry's grant cannot carry the
     * failure, so its own heartbeat reports it. */
    fault("name=502html&on=1&count=1");
    ck_assert_int_eq(one_request(kc, "B000000002", &r), TKM_OK);
    ck_assert_int_eq(r.attempts, 2);
    tkm_keepa_response_free(&r);
    w = worker_seen(c, tkm_client_options(c)->worker_id);
    ck_assert_str_eq(w.error, "api");
    ck_assert_str_eq(w.phase, "keepa /product");

    /* Reported once: the next call is two round trips again, and its
     * grant keeps the failure in the record. */
    before = tkm_client_round_trips(c);
    ck_assert_int_eq(one_request(kc, "B000000003", &r), TKM_OK);
    tkm_keepa_response_free(&r);
    ck_assert_int_eq(tkm_client_round_trips(c) - before, 2);
    ck_assert_str_eq(worker_seen(c, tkm_client_options(c)->worker_id).error,
                     "api");

    /* A tool (no heartbeats) leaves no record. */
    snprintf(o.worker_id, sizeof(o.worker_id), "a-tool");
    tkm_keepa_free(kc);
    tkm_client_free(c);
    c = tkt_open(&o);
    tkm_client_set_heartbeats(c, 0);
    kc = open_keepa(c);
    ck_assert_int_eq(one_request(kc, "B000000004", &r), TKM_OK);
    tkm_keepa_response_free(&r);
    {
        tkm_worker *list = NULL;
        size_t n = 0;
        ck_assert_int_eq(tkm_workers(c, &list, &n), TKM_OK);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_ne(list[i].id, "a-tool");
        tkm_workers_free(list);
    }
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

/* A worker waiting in line: its attempts are its heartbeats ("waiting for
 * tokens" from its first one, then the call's phase), so the wait costs no
 * heartbeat of its own: a call through a drained pool takes three round
 * trips (its place in line, its grant, its completion). */
START_TEST(test_wait_carries_heartbeat)
{
    const char *args[] = {"--rate",    "5",   "--period-ms", "1500",
                          "--balance", "500", NULL};
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_response r;
    int seen = 0, status;
    pid_t pid;

    start_fake(args);
    o = keepa_options(1500);
    o.heartbeat.min_interval_ms = 0;
    c = tkt_open(&o);
    kc = open_keepa(c);
    tkt_sync(c, 100, 5, -1, -1);
    /* The scripts are loaded before the waiter counts its round trips. */
    ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_OK);
    tkm_keepa_response_free(&r);
    tkt_sync(c, 0, 5, -1, -1);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tkm_options mine = o;
        tkm_client *wc = NULL;
        tkm_keepa *wk = NULL;
        int64_t before;
        tkm_code rc;
        snprintf(mine.worker_id, sizeof(mine.worker_id), "waiter");
        if (tkm_client_open(&mine, &wc) != TKM_OK ||
            tkm_keepa_open(wc, &wk) != TKM_OK)
            _exit(100);
        before = tkm_client_round_trips(wc);
        rc = one_request(wk, "B000000002", &r);
        tkm_keepa_response_free(&r);
        _exit(rc == TKM_OK ? (int)(tkm_client_round_trips(wc) - before) : 101);
    }
    for (int i = 0; i < 100 && !seen; i++) {
        tkm_worker *list = NULL;
        size_t n = 0;
        ck_assert_int_eq(tkm_workers(c, &list, &n), TKM_OK);
        for (size_t j = 0; j < n; j++)
            seen |= strcmp(list[j].id, "waiter") == 0 &&
                    strcmp(list[j].phase, "waiting for tokens") == 0 &&
                    list[j].alive;
        tkm_workers_free(list);
        tkt_sleep_ms(20);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(seen, "the waiter never showed as waiting");
    ck_assert_int_eq(WIFEXITED(status), 1);
    ck_assert_int_eq(WEXITSTATUS(status), 3);
    ck_assert_str_eq(worker_seen(c, "waiter").phase, "keepa /product");
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_unreachable_api)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_keepa *kc;
    tkm_keepa_response r;
    int64_t t0;

    /* A port nothing listens on: released every time, bounded retries. */
    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:1");
    o.keepa.max_retries = 2;
    o.keepa.timeout_ms = 500;
    c = tkt_open(&o);
    tkt_sync(c, 100, 5, -1, -1);
    kc = open_keepa(c);
    t0 = tkt_now_ms();
    ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_EHTTP);
    ck_assert_int_lt(tkt_now_ms() - t0, 10000);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(tkt_status(c).tokens, 100); /* all released */
    ck_assert_int_eq(tkt_status(c).inflight, 0);
    tkm_keepa_response_free(&r);
    tkm_keepa_free(kc);
    tkm_client_free(c);
}
END_TEST

/* The CLI with this config; its exit status (stdout and stderr dropped). */
static int cli(const char *cfg, const char *const *args)
{
    const char *argv[16] = {TKM_CLI, "--config", cfg};
    int n = 3, status;
    pid_t pid;

    for (const char *const *a = args; *a != NULL && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(TKM_CLI, (char *const *)argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A one-answer server: every request gets `body` with status 200, from a
 * child process on a free loopback port (*url), until killed. */
static pid_t one_answer(const char *body, char *url, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    pid_t pid;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    snprintf(url, len, "http://127.0.0.1:%d", ntohs(a.sin_port));
    pid = fork();
    if (pid == 0) {
        char head[256], req[4096];
        for (;;) {
            int c = accept(fd, NULL, NULL);
            size_t got = 0;
            if (c < 0)
                _exit(0);
            while (got < sizeof(req) - 1) {
                ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
                if (n <= 0)
                    break;
                got += (size_t)n;
                req[got] = '\0';
                if (strstr(req, "\r\n\r\n") != NULL)
                    break;
            }
            snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));
            if (write(c, head, strlen(head)) < 0 ||
                write(c, body, strlen(body)) < 0)
                _exit(1);
            close(c);
        }
    }
    close(fd);
    return pid;
}

/* Issue 17, class 1: an answer with a token field out of its range (a
 * timestamp in nanoseconds used to poison the pool until a reset) is a bad
 * reply: not applied, saying which field; the command line refuses the
 * same numbers (exit 64, as for every usage error). */
START_TEST(test_out_of_range_reply_not_applied)
{
#define FIELDS_EXCEPT(f) "{\"processingTimeInMs\":1,\"tokensConsumed\":0," f "}"
    static const struct {
        const char *body, *says;
    } bad[] = {
        {FIELDS_EXCEPT("\"timestamp\":1000000000000000000,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "timestamp 1000000000000000000 is outside 0..4102444800000"},
        {FIELDS_EXCEPT("\"timestamp\":1795928436074000000,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "timestamp 1795928436074000000"},
        {FIELDS_EXCEPT("\"timestamp\":1e18,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "timestamp 1000000000000000000"},
        {FIELDS_EXCEPT("\"timestamp\":1e300,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "timestamp is not an integer"},
        {FIELDS_EXCEPT("\"timestamp\":-5,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "timestamp -5"},
        {FIELDS_EXCEPT("\"timestamp\":1700000000000,\"tokensLeft\":5000000000,"
                       "\"refillIn\":3000,\"refillRate\":5"),
         "tokensLeft 5000000000"},
        {FIELDS_EXCEPT("\"timestamp\":1700000000000,\"tokensLeft\":150,"
                       "\"refillIn\":3000,\"refillRate\":-5"),
         "refillRate -5"},
        {FIELDS_EXCEPT("\"timestamp\":1700000000000,\"tokensLeft\":150,"
                       "\"refillIn\":-3000,\"refillRate\":5"),
         "refillIn -3000"},
    };
    const char *status[] = {"status", NULL};
    const char *from_keepa[] = {"sync", "--from-keepa", "--force", NULL};
    const char *ns[] = {"sync",
                        "--tokens",
                        "100",
                        "--rate",
                        "5",
                        "--timestamp",
                        "1795928436074000000",
                        NULL};
    char cfg[] = "/tmp/tkm-keepa-cfg-XXXXXX";
    tkm_options o = keepa_options(60000);
    tkm_client *c;

    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:1");
    c = tkt_open(&o);
    tkt_sync(c, 200, 5, -1, -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tkm_options ko = o;
        tkm_client *kcl;
        tkm_keepa *kc;
        tkm_keepa_sync_result sr;
        tkm_keepa_response r;
        int fd = mkstemp(cfg);
        FILE *fp = fdopen(fd, "w");
        pid_t server = one_answer(bad[i].body, ko.keepa.base_url,
                                  sizeof(ko.keepa.base_url));

        fprintf(fp, "pool: t\nredis:\n  url: %s\nkeepa:\n  base_url: %s\n",
                tkt_server.url, ko.keepa.base_url);
        fclose(fp);
        ko.keepa.max_retries = 1;
        kcl = tkt_open(&ko);
        kc = open_keepa(kcl);
        ck_assert_int_eq(tkm_keepa_sync(kc, 1, &sr), TKM_EHTTP);
        ck_assert_msg(strstr(tkm_keepa_errstr(kc), bad[i].says) != NULL &&
                          strstr(tkm_keepa_errstr(kc), "not applied") != NULL,
                      "%s", tkm_keepa_errstr(kc));
        ck_assert_int_eq(tkt_status(c).tokens, 200);
        if (i < 6) {
            /* A priced call whose report (tokensLeft, timestamp) is bad:
             * retried, as for missing token fields, its estimate kept,
             * never the value. */
            ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_EHTTP);
            ck_assert_int_eq(r.attempts, 2);
            ck_assert_int_eq(tkt_status(c).tokens, 196);
        } else {
            /* The report is good, the sync fields are not needed. */
            ck_assert_int_eq(one_request(kc, "B000000001", &r), TKM_OK);
            ck_assert_int_eq(r.attempts, 1);
            ck_assert_int_eq(tkt_status(c).tokens, 150);
        }
        tkm_keepa_response_free(&r);
        ck_assert_int_eq(tkt_status(c).inflight, 0);
        /* The command line: exit 1 (the API's fault), the pool answers. */
        ck_assert_int_eq(cli(cfg, from_keepa), 1);
        ck_assert_int_eq(cli(cfg, status), 0);
        /* The same number given by hand: a usage error. */
        ck_assert_int_eq(cli(cfg, ns), 64);
        ck_assert_int_eq(cli(cfg, status), 0);
        tkt_sync(c, 200, 5, -1, -1);
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        unlink(cfg);
        tkm_keepa_free(kc);
        tkm_client_free(kcl);
        memcpy(cfg + strlen(cfg) - 6, "XXXXXX", 6);
    }
    tkm_client_free(c);
#undef FIELDS_EXCEPT
}
END_TEST

START_TEST(test_token_throttle_across_processes)
{
    const char *args[] = {"--rate", "20", NULL};
    char cfg[] = "/tmp/tkm-keepa-cfg-XXXXXX";
    int fd = mkstemp(cfg);
    FILE *fp = fdopen(fd, "w");
    int throttled = 0;

    start_fake(args);
    fprintf(fp, "pool: throttle\nredis:\n  url: %s\nkeepa:\n  base_url: %s\n",
            tkt_server.url, fake.url);
    fclose(fp);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        int status;
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(TKM_CLI, TKM_CLI, "--config", cfg, "sync", "--from-keepa",
                  (char *)NULL);
            _exit(127);
        }
        waitpid(pid, &status, 0);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 75)
            throttled++;
        else
            ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    unlink(cfg);
    ck_assert_int_eq(state_of("token_calls"), 1);
    ck_assert_int_eq(throttled, 19);
}
END_TEST

/* ---- the example worker ----------------------------------------------------
 */

static pid_t start_worker(const char *cfg, const char *dir, const char *out)
{
    const char *argv[] = {TKM_WORKER, "--config", cfg,       "--output", out,
                          "--state",  dir,        "--batch", "10",       NULL};

    return tkt_spawn(argv, NULL, NULL);
}

START_TEST(test_worker_exactly_once_after_kill)
{
    const char *args[] = {"--rate",  "600",          "--period-ms",
                          "500",     "--latency-ms", "10-30",
                          "--deals", "300",          NULL};
    char dir[] = "/tmp/tkm-worker-XXXXXX";
    char cfg[300], out[300], line[256];
    FILE *fp;
    pid_t pid;
    int status, lines = 0, dup = 0;
    static char seen[300][11];

    start_fake(args);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cfg, sizeof(cfg), "%s/tokenmgr.yaml", dir);
    snprintf(out, sizeof(out), "%s/products.jsonl", dir);
    fp = fopen(cfg, "w");
    fprintf(fp,
            "pool: worker\nredis:\n  url: %s\nbucket:\n  refill_period_ms: "
            "500\nkeepa:\n  base_url: %s\n",
            tkt_server.url, fake.url);
    fclose(fp);
    /* Killed twice without warning, once politely, then run to the end. */
    for (int round = 0; round < 3; round++) {
        pid = start_worker(cfg, dir, out);
        tkt_sleep_ms(300 + 150 * round);
        kill(pid, round == 2 ? SIGTERM : SIGKILL);
        waitpid(pid, &status, 0);
        if (round == 2)
            ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "SIGTERM: status %d", status);
    }
    pid = start_worker(cfg, dir, out);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fp = fopen(out, "r");
    ck_assert_ptr_nonnull(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *a = strstr(line, "\"asin\":\"");
        ck_assert_ptr_nonnull(a);
        for (int i = 0; i < lines && i < 300; i++) {
            if (strncmp(seen[i], a + 8, 10) == 0)
                dup++;
        }
        if (lines < 300)
            snprintf(seen[lines], sizeof(seen[lines]), "%.10s", a + 8);
        lines++;
    }
    fclose(fp);
    ck_assert_int_eq(dup, 0);
    ck_assert_int_eq(lines, 300); /* every deal's product, once */
    ck_assert_int_eq(state_of("requests_429"), 0);
}
END_TEST

/* ---- bad input
 * --------------------------------------------------------------- */

static tkm_code open_with(const char *base_url, const char *key_text,
                          int write_file, char *err, size_t len)
{
    tkm_options o = tkt_options();
    char path[] = "/tmp/tkm-key-XXXXXX";
    tkm_client *c = NULL;
    tkm_keepa *kc = NULL;
    tkm_code rc;

    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "%s", base_url);
    if (write_file) {
        int fd = mkstemp(path);
        ck_assert_int_eq(write(fd, key_text, strlen(key_text)),
                         (ssize_t)strlen(key_text));
        close(fd);
        snprintf(o.keepa.key_file, sizeof(o.keepa.key_file), "%s", path);
    } else if (key_text != NULL) {
        snprintf(o.keepa.key_file, sizeof(o.keepa.key_file), "%s", key_text);
    }
    /* The options are checked when the client opens (a bad base URL is a
     * configuration error), the key when the Keepa client opens. */
    rc = tkm_client_open(&o, &c);
    if (rc == TKM_OK) {
        rc = tkm_keepa_open(c, &kc);
        snprintf(err, len, "%s", tkm_keepa_errstr(kc));
    } else {
        snprintf(err, len, "%s", tkm_errstr(c));
    }
    tkm_keepa_free(kc);
    tkm_client_free(c);
    if (write_file)
        unlink(path);
    return rc;
}

/* The example worker explains itself, and refuses what it does not know. */
START_TEST(test_worker_usage)
{
    const tkt_output *o = tkt_runl(TKM_WORKER, "--help", NULL);

    ck_assert_int_eq(o->status, 0);
    ck_assert_ptr_nonnull(strstr(o->out, "usage: keepa_worker --output FILE "
                                         "--state DIR"));
    ck_assert_ptr_nonnull(strstr(o->out, "--worker ID"));
    o = tkt_runl(TKM_WORKER, "--output", NULL);
    ck_assert_int_eq(o->status, 64);
    ck_assert_ptr_nonnull(strstr(o->err, "every option takes a value"));
    o = tkt_runl(TKM_WORKER, "--colour", "red", NULL);
    ck_assert_int_eq(o->status, 64);
    ck_assert_ptr_nonnull(strstr(o->err, "unknown option"));
}
END_TEST

START_TEST(test_bad_keepa_config)
{
    char err[512];

    /* A key file that is not there: a configuration error. */
    ck_assert_int_eq(open_with("http://127.0.0.1:1", "/nonexistent/key", 0, err,
                               sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/key: cannot open"));
    ck_assert_int_eq(
        open_with("http://127.0.0.1:1", "ABCdef123\n", 1, err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(open_with("http://127.0.0.1:1", "\n", 1, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "is empty"));
    ck_assert_int_eq(
        open_with("http://127.0.0.1:1", "abc def", 1, err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_ptr_null(strstr(err, "abc def"));
    ck_assert_int_eq(open_with("not a url", NULL, 0, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "is not a URL"));
    ck_assert_int_eq(open_with("ftp://example.com", NULL, 0, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "scheme ftp is not http or https"));
    unsetenv("TOKENMGR_KEEPA_KEY");
    ck_assert_int_eq(open_with("http://127.0.0.1:1", NULL, 0, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "no Keepa access key"));
    setenv("TOKENMGR_KEEPA_KEY", KEY, 1);
}
END_TEST

/* A TCase whose tests each start their servers in their own process. */
static TCase *tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tkt_tcase(s, name, timeout_s);

    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("keepa");

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tcase(s, "workers", 90), test_eight_workers_no_429,
                  test_negative_balance_no_storm,
                  test_worker_exactly_once_after_kill, NULL);
    tkt_add_tests(tcase(s, "faults", 60), test_fault_switches,
                  test_grant_carries_heartbeat, test_wait_carries_heartbeat,
                  test_unreachable_api, test_token_throttle_across_processes,
                  test_out_of_range_reply_not_applied, NULL);
    tkt_add_tests(tcase(s, "bad_input", 0), test_bad_keepa_config,
                  test_worker_usage, NULL);
    tkt_add_tests(tcase(s, "redaction", 30), test_errors_never_carry_key, NULL);
    return tkt_run_suite(s, 0);
}
