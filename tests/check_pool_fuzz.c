/* Issue 17: no single bad value may break a pool.  A seeded loop of calls
 * through the C API with numbers drawn from the ranges' edges and beyond
 * (and plain small ones), against a real redis-server; after every call the
 * pool still answers status, what it says is in flight is what the leases
 * say, and every number of its state is one its scripts read back.  A
 * failing seed and step are printed, so a run can be replayed. */
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkt.h"

/* Before the fix the library had no such constants. */
#ifndef TKM_TOKENS_MAX
#define TKM_TOKENS_MAX       INT64_C(1000000000)
#define TKM_RATE_MAX         INT64_C(1000000)
#define TKM_TIMESTAMP_MS_MAX INT64_C(4102444800000)
#define TKM_MAX_WAIT_MS      INT64_C(86400000)
#endif

#define STEPS      1500
#define MAX_GRANTS 48

static const int64_t edges[] = {
    0,
    1,
    -1,
    -2,
    2,
    5,
    10,
    30,
    100,
    299,
    300,
    480,
    481,
    1000,
    60000,
    60001,
    INT32_MAX,
    TKM_TOKENS_MAX - 1,
    TKM_TOKENS_MAX,
    TKM_TOKENS_MAX + 1,
    -TKM_TOKENS_MAX,
    -TKM_TOKENS_MAX - 1,
    TKM_RATE_MAX,
    TKM_RATE_MAX + 1,
    INT64_C(1700000000000),
    TKM_TIMESTAMP_MS_MAX,
    TKM_TIMESTAMP_MS_MAX + 1,
    INT64_C(1000000000000000),
    INT64_C(9007199254740993), /* 2^53 + 1: no double holds it */
    INT64_C(1795928436074000000),
    INT64_MAX,
    INT64_MIN,
};

typedef struct fuzz {
    unsigned seed0; /* the run's seed, printed on failure */
    unsigned seed;  /* rand_r's state */
    int step;
    const char *op;
    char grants[MAX_GRANTS][TKM_GRANT_ID_MAX + 1];
    int ngrants;
    int64_t now_ms; /* Redis' clock at the last status */
} fuzz;

static int64_t pick(fuzz *f)
{
    int r = rand_r(&f->seed) % 8;

    if (r < 4) /* small, the common case */
        return (int64_t)(rand_r(&f->seed) % 600) - 60;
    if (r < 7)
        return edges[(size_t)rand_r(&f->seed) %
                     (sizeof(edges) / sizeof(edges[0]))];
    /* a timestamp near Redis' clock: reports that race and go stale */
    return f->now_ms + (int64_t)(rand_r(&f->seed) % 400000) - 200000;
}

/* Every numeric field of the state as the scripts' loader reads it: an
 * integer of at most 16 digits. */
static void check_state_fields(const fuzz *f)
{
    static const char *const numeric[] = {
        "tokens",    "rate",    "period_ms",         "anchor_ms",
        "report_ts", "sync_ms", "recharge_since_ms", "inflight_tokens",
        "leases",    "seq"};
    redisContext *r = tkt_raw();
    regex_t re;

    ck_assert_int_eq(regcomp(&re, "^-?[0-9]{1,16}$", REG_EXTENDED | REG_NOSUB),
                     0);
    for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
        redisReply *v = tkt_cmd(r, "HGET tokenmgr:{t}:bucket %s", numeric[i]);
        if (v->type == REDIS_REPLY_STRING)
            ck_assert_msg(regexec(&re, v->str, 0, NULL, 0) == 0,
                          "seed %u step %d (%s): %s = '%s'", f->seed0, f->step,
                          f->op, numeric[i], v->str);
        freeReplyObject(v);
    }
    regfree(&re);
    redisFree(r);
}

/* The pool answers; inflight and inflight_tokens are the leases that have
 * not expired by its clock. */
static void check_pool(tkm_client *c, fuzz *f)
{
    redisContext *r;
    redisReply *leases;
    tkm_pool_status st;
    int64_t n = 0, tokens = 0;
    tkm_code rc = tkm_status(c, &st);

    ck_assert_msg(rc == TKM_OK, "seed %u step %d (%s): status: %s", f->seed0,
                  f->step, f->op, tkm_errstr(c));
    f->now_ms = st.now_ms;
    r = tkt_raw();
    leases = tkt_cmd(r, "HGETALL tokenmgr:{t}:leases");
    for (size_t i = 0; i + 1 < leases->elements; i += 2) {
        redisReply *exp = tkt_cmd(r, "ZSCORE tokenmgr:{t}:lease_expiry %s",
                                  leases->element[i]->str);
        ck_assert_int_eq(exp->type, REDIS_REPLY_STRING);
        if (strtod(exp->str, NULL) > (double)st.now_ms) {
            n++;
            tokens += strtoll(leases->element[i + 1]->str, NULL, 10);
        }
        freeReplyObject(exp);
    }
    freeReplyObject(leases);
    redisFree(r);
    ck_assert_msg(
        st.inflight == n && st.inflight_tokens == tokens,
        "seed %u step %d (%s): status says %" PRId64 " in flight (%" PRId64
        " tokens), the leases %" PRId64 " (%" PRId64 ")",
        f->seed0, f->step, f->op, st.inflight, st.inflight_tokens, n, tokens);
    check_state_fields(f);
}

/* A grant id: one of ours (live, ended or expired) or none. */
static const char *grant(fuzz *f, int *index)
{
    *index = -1;
    if (f->ngrants == 0 || rand_r(&f->seed) % 8 == 0)
        return rand_r(&f->seed) % 2 ? "1-1" : "999999-1700000000000";
    *index = rand_r(&f->seed) % f->ngrants;
    return f->grants[*index];
}

static void forget_grant(fuzz *f, int index)
{
    if (index >= 0 && rand_r(&f->seed) % 4 != 0) /* sometimes ended twice */
        memcpy(f->grants[index], f->grants[--f->ngrants], sizeof(f->grants[0]));
}

static tkm_code one_call(tkm_client *c, fuzz *f)
{
    tkm_grant g;
    tkm_code rc;
    int i;

    switch (rand_r(&f->seed) % 10) {
    case 0:
    case 1: {
        tkm_sync_info in = {pick(f), pick(f), pick(f), pick(f)};
        f->op = "sync";
        if (rand_r(&f->seed) % 4 != 0) { /* plausible: calls get granted */
            in.tokens = 200 + rand_r(&f->seed) % 800;
            in.rate = rand_r(&f->seed) % 30;
            in.refill_in_ms = -1;
        }
        return tkm_sync(c, &in, NULL);
    }
    case 2:
    case 3:
    case 8:
        f->op = "acquire";
        rc = tkm_try_acquire(
            c, rand_r(&f->seed) % 4 != 0 ? rand_r(&f->seed) % 30 : pick(f), &g);
        if (rc == TKM_OK && g.granted && f->ngrants < MAX_GRANTS)
            memcpy(f->grants[f->ngrants++], g.id, sizeof(g.id));
        return rc;
    case 4:
    case 5: {
        const char *id = grant(f, &i);
        tkm_report rep = {pick(f), pick(f)};
        f->op = "complete";
        rc = tkm_complete(c, id, pick(f), rand_r(&f->seed) % 2 ? &rep : NULL,
                          NULL);
        if (rc != TKM_EINVAL)
            forget_grant(f, i);
        return rc;
    }
    case 6: {
        const char *id = grant(f, &i);
        f->op = "release";
        rc = tkm_release(c, id, NULL);
        forget_grant(f, i);
        return rc;
    }
    case 7:
        f->op = "recharge";
        return tkm_recharge(c, rand_r(&f->seed) % 2);
    default: {
        /* Waits of a few ms at most, and limits past a day. */
        static const int64_t waits[] = {0, 5, TKM_MAX_WAIT_MS + 1, INT64_MAX};
        f->op = "blocking acquire";
        rc = tkm_acquire(c, pick(f), waits[rand_r(&f->seed) % 4], &g);
        if (rc == TKM_OK && g.granted && f->ngrants < MAX_GRANTS)
            memcpy(f->grants[f->ngrants++], g.id, sizeof(g.id));
        return rc;
    }
    }
}

static void run(tkm_options *o, unsigned seed)
{
    tkm_client *c;
    fuzz f;

    /* $TKM_FUZZ_SEED runs another seed (a failure prints its own). */
    if (getenv("TKM_FUZZ_SEED") != NULL)
        seed += (unsigned)strtoul(getenv("TKM_FUZZ_SEED"), NULL, 10);
    memset(&f, 0, sizeof(f));
    f.seed0 = f.seed = seed;

    o->heartbeat.wait_slice_ms = 10;
    c = tkt_open(o);
    tkm_client_set_heartbeats(c, 0);
    tkt_flush();
    check_pool(c, &f);
    for (f.step = 0; f.step < STEPS; f.step++) {
        tkm_code rc = one_call(c, &f);
        /* Refused arguments, unknown grants and the wait that would be too
         * long are the caller's; nothing else may fail. */
        ck_assert_msg(rc == TKM_OK || rc == TKM_EINVAL || rc == TKM_ENOGRANT,
                      "seed %u step %d (%s): %s: %s", seed, f.step, f.op,
                      tkm_strerror(rc), tkm_errstr(c));
        check_pool(c, &f);
    }
    tkm_client_free(c);
}

START_TEST(test_fuzz_defaults)
{
    tkm_options o = tkt_options();

    run(&o, 17u);
}
END_TEST

/* Refill and expiry at work: ticks of 20 ms, leases of a second. */
START_TEST(test_fuzz_fast_clock)
{
    tkm_options o = tkt_options();

    o.bucket.refill_period_ms = 20;
    o.bucket.lease_ttl_s = 1;
    o.bucket.capacity = 1000;
    o.bucket.recharge_timeout_s = 1;
    run(&o, 4242u);
}
END_TEST

/* Estimates trusted, no deficit, a tiny bucket: the edges of the policy. */
START_TEST(test_fuzz_tight_policy)
{
    tkm_options o = tkt_options();

    o.bucket.estimate_prior = 1;
    o.bucket.max_deficit = 0;
    o.bucket.capacity = 10;
    o.bucket.soft_floor = 5;
    o.bucket.recharge_target = 8;
    o.bucket.low_cost_target = 5;
    o.bucket.max_wait_s = 0;
    run(&o, 99u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool_fuzz");
    TCase *tc = tcase_create("c_api");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(tc, tkt_redis_setup, tkt_redis_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fuzz_defaults);
    tcase_add_test(tc, test_fuzz_fast_clock);
    tcase_add_test(tc, test_fuzz_tight_policy);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
