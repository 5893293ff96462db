/* The bucket policy, against a real redis-server: grant rules, denials and
 * their retry_after_ms, Keepa's discrete refill, leases and reconciliation,
 * and the seed system's failures as regressions (SEED.md). */
#include <stdlib.h>
#include <string.h>

#include "tkt.h"

#define MINUTE 60000

/* A snapshot of the pool's keys, to prove that something wrote nothing. */
static char *snapshot(void)
{
    redisContext *r = tkt_raw();
    const char *keys[] = {"tokenmgr:{t}:bucket", "tokenmgr:{t}:leases",
                          "tokenmgr:{t}:lease_expiry"};
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);

    for (size_t k = 0; k < 3; k++) {
        redisReply *rep = tkt_cmd(r, "DUMP %s", keys[k]);
        len += (size_t)snprintf(out + len, cap - len, "%s=%zu:", keys[k],
                                rep->type == REDIS_REPLY_STRING ? rep->len : 0);
        for (size_t i = 0;
             rep->type == REDIS_REPLY_STRING && i < rep->len && len + 3 < cap;
             i++)
            len += (size_t)snprintf(out + len, cap - len, "%02x",
                                    (unsigned char)rep->str[i]);
        freeReplyObject(rep);
    }
    redisFree(r);
    return out;
}

/* ---- grant rules ------------------------------------------------------- */

START_TEST(test_need_sync_on_empty_pool)
{
    tkm_client *c = tkt_client();
    tkm_grant g = tkt_acquire(c, 5);
    tkm_pool_status st = tkt_status(c);
    redisContext *r = tkt_raw();
    redisReply *keys = tkt_cmd(r, "KEYS *");

    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_eq(st.synced, 0);
    /* No invented full bucket, and nothing written. */
    ck_assert_uint_eq(keys->elements, 0);
    freeReplyObject(keys);
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_insufficient_and_retry_after)
{
    tkm_client *c = tkt_client_synced(0, 5, 30000, -1);
    tkm_grant g;

    g = tkt_acquire(c, 1);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_INSUFFICIENT);
    /* One tick brings 5 >= 1: the wait is the time to the next tick. */
    ck_assert_int_gt(g.retry_after_ms, 28000);
    ck_assert_int_le(g.retry_after_ms, 30000);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_min_start_balance)
{
    tkm_options o = tkt_options();
    tkm_client *c;

    o.bucket.min_start_balance = 5;
    c = tkt_open(&o);
    tkt_sync(c, 4, 5, -1, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).reason, TKM_REASON_INSUFFICIENT);
    tkt_sync(c, 5, 5, -1, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_denial_writes_nothing)
{
    tkm_client *c = tkt_client_synced(30, 5, 30000, -1);
    char *before, *after;

    ck_assert_int_eq(tkt_acquire(c, 11).granted, 1); /* 19: recharge on */
    before = snapshot();
    ck_assert_int_eq(tkt_acquire(c, 11).reason, TKM_REASON_RECHARGING);
    ck_assert_int_eq(tkt_acquire(c, 300).reason, TKM_REASON_RECHARGING);
    after = snapshot();
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    tkm_client_free(c);
}
END_TEST

/* SEED failure 7: the soft-floor flag blocked the very call that set it. */
START_TEST(test_soft_floor_grant_proceeds_and_starts_recharge)
{
    tkm_client *c = tkt_client_synced(25, 5, 30000, -1);
    tkm_grant g;

    g = tkt_acquire(c, 11);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, 14);
    ck_assert_int_eq(g.recharge_mode, 1);
    g = tkt_acquire(c, 11);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_RECHARGING);
    /* Target 50 from 14 at 5 a tick: 8 ticks, the first in <= 30 s. */
    ck_assert_int_gt(g.retry_after_ms, 30000 - 2000 + 7 * MINUTE);
    ck_assert_int_le(g.retry_after_ms, 30000 + 7 * MINUTE);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_low_cost_target)
{
    tkm_client *c = tkt_client_synced(22, 5, 30000, -1);
    tkm_grant g;

    ck_assert_int_eq(tkm_recharge(c, 1), TKM_OK);
    /* 22 < 50, but a call costing <= 10 may leave recharge at 20. */
    ck_assert_int_eq(tkt_acquire(c, 11).reason, TKM_REASON_RECHARGING);
    g = tkt_acquire(c, 10);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, 12);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_recharge_ends_at_target)
{
    tkm_client *c = tkt_client_synced(40, 5, 30000, -1);
    tkm_grant g;

    ck_assert_int_eq(tkm_recharge(c, 1), TKM_OK);
    ck_assert_int_eq(tkt_status(c).recharge_mode, 1);
    /* Idle at the target: the flag says what the next decision will see
     * (off), before any decision writes it down. */
    tkt_sync(c, 80, 5, 30000, -1);
    ck_assert_int_eq(tkt_status(c).recharge_mode, 0);
    ck_assert_int_eq(tkt_status(c).recharge_since_ms, -1);
    g = tkt_acquire(c, 11);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.recharge_mode, 0);
    ck_assert_int_eq(tkt_status(c).recharge_mode, 0);
    tkm_client_free(c);
}
END_TEST

/* SEED failure 4: a wait target above capacity never ended. */
START_TEST(test_target_above_capacity_is_clamped)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;

    o.bucket.recharge_target = 480; /* rate 5: capacity 300 */
    c = tkt_open(&o);
    tkt_sync(c, 290, 5, 30000, -1);
    ck_assert_int_eq(tkm_recharge(c, 1), TKM_OK);
    ck_assert_int_eq(tkt_status(c).recharge_target, 300);
    g = tkt_acquire(c, 50);
    ck_assert_int_eq(g.reason, TKM_REASON_RECHARGING);
    ck_assert_int_gt(g.retry_after_ms, 0);
    ck_assert_int_le(g.retry_after_ms, 2 * MINUTE); /* two ticks: 300 */
    tkt_sync(c, 300, 5, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 50).granted, 1);
    tkm_client_free(c);
}
END_TEST

/* SEED failure 5: recharge without a timeout stalled the system for good. */
START_TEST(test_recharge_timeout_clears)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;

    o.bucket.recharge_timeout_s = 1;
    o.bucket.capacity = 100;
    c = tkt_open(&o);
    tkt_sync(c, 30, 0, -1, -1); /* rate 0: refill can never end it */
    ck_assert_int_eq(tkm_recharge(c, 1), TKM_OK);
    g = tkt_acquire(c, 11);
    ck_assert_int_eq(g.reason, TKM_REASON_RECHARGING);
    /* The timeout is what ends this wait. */
    ck_assert_int_gt(g.retry_after_ms, 0);
    ck_assert_int_le(g.retry_after_ms, 1000);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(tkt_status(c).recharge_mode, 0);
    g = tkt_acquire(c, 5);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.recharge_expired, 1);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_deficit_limit)
{
    tkm_client *c = tkt_client();
    tkm_grant g;

    tkt_sync_exact(c, 5, 5, 30000, -1);
    g = tkt_acquire(c, 200); /* 5 - 200 = -195 < -180 */
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_DEFICIT_LIMIT);
    /* Needs 20 (= -180 + 200): 3 ticks of 5. */
    ck_assert_int_gt(g.retry_after_ms, 28000 + 2 * MINUTE);
    ck_assert_int_le(g.retry_after_ms, 30000 + 2 * MINUTE);
    g = tkt_acquire(c, 185); /* -180 exactly: allowed */
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, -180);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_rate_zero_is_never)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;

    o.bucket.capacity = 100;
    c = tkt_open(&o);
    tkt_sync(c, 0, 0, -1, -1);
    g = tkt_acquire(c, 1);
    ck_assert_int_eq(g.reason, TKM_REASON_INSUFFICIENT);
    ck_assert_int_eq(g.retry_after_ms, TKM_RETRY_NEVER);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_bad_costs)
{
    tkm_client *c = tkt_client_synced(100, 5, -1, -1);
    tkm_grant g;

    ck_assert_int_eq(tkm_try_acquire(c, -1, &g), TKM_EINVAL);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "negative"));
    /* Capacity 300 - max_deficit -180: nothing above 480 can ever pass. */
    ck_assert_int_eq(tkm_try_acquire(c, 481, &g), TKM_EINVAL);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "480"));
    ck_assert_int_eq(tkt_status(c).tokens, 100);
    tkm_client_free(c);
}
END_TEST

/* ---- refill ------------------------------------------------------------ */

START_TEST(test_discrete_refill_aligned_to_refill_in)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_pool_status st;

    o.bucket.refill_period_ms = 1000;
    c = tkt_open(&o);
    tkt_sync(c, 10, 5, 300, -1);
    st = tkt_status(c);
    ck_assert_int_eq(st.tokens, 10);
    ck_assert_int_le(st.refill_in_ms, 300);
    tkt_sleep_ms(500); /* one tick at 300 ms, the next at 1300 ms */
    st = tkt_status(c);
    ck_assert_int_eq(st.tokens, 15);
    ck_assert_int_gt(st.refill_in_ms, 300);
    ck_assert_int_le(st.refill_in_ms, 800);
    tkt_sleep_ms(1000);
    ck_assert_int_eq(tkt_status(c).tokens, 20);
    tkm_client_free(c);
}
END_TEST

/* The API's phase: a sync carrying the API's timestamp puts the next tick
 * at timestamp + refillIn (on the API's clock), not at the sync's arrival
 * + refillIn (late by the response's latency). */
START_TEST(test_phase_from_the_report)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_pool_status st;

    o.bucket.refill_period_ms = 3000;
    c = tkt_open(&o);
    tkt_sync(c, 10, 5, -1, 1000); /* an old report: any later one stands */
    st = tkt_status(c);
    /* Measured 400 ms ago, the API's next tick 1000 ms after that; the
     * pool's 50 ms after the API's (a fiftieth of the period, at most
     * 50 ms). */
    tkt_sync(c, 10, 5, 1000, st.now_ms - 400);
    st = tkt_status(c);
    ck_assert_int_le(st.refill_in_ms, 650);
    ck_assert_int_gt(st.refill_in_ms, 600);
    tkm_client_free(c);
}
END_TEST

/* A pool of 100 tokens, 10 a period of 1000 ms, the next tick 300 ms after
 * the sync (with the API's timestamp when `api_phase`, a little ahead of
 * the syncs that teach the estimates; else an operator's refill_in alone);
 * one call of 5 granted, then completed past the pool's tick with a report
 * measured 30 ms before the API's tick (the pool's less 20 ms, a fiftieth
 * of the period): 60 at the API then.  *r: what the completion answered. */
static tkm_client *report_before_tick(int api_phase, tkm_reconcile *r)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_pool_status st;
    tkm_grant g;
    tkm_report before;

    o.bucket.refill_period_ms = 1000;
    c = tkt_open(&o);
    tkt_sync_exact(c, 100, 10, 300,
                   api_phase ? tkt_status(c).now_ms + 100 : -1);
    st = tkt_status(c);
    before.tokens_left = 60;
    before.timestamp_ms = st.now_ms + st.refill_in_ms - 20 - 30;
    g = tkt_acquire(c, 5);
    tkt_sleep_ms(st.refill_in_ms + 100);
    ck_assert_int_eq(tkm_complete(c, g.id, 5, &before, r), TKM_OK);
    ck_assert_int_eq(r->report_applied, 1);
    return c;
}

/* A report is the API's balance at its timestamp: a tick the pool applied
 * after that time is added to it, and a tick the API made before it (the
 * pool's next, a little late) is not counted again when the pool's
 * schedule reaches it. */
START_TEST(test_report_and_ticks_counted_once)
{
    tkm_client *c;
    tkm_pool_status st;
    tkm_grant g;
    tkm_reconcile r;
    int64_t tick;

    /* 60 at the API before its tick, 70 now (the tick), 5 of it the
     * call's (in flight no more). */
    c = report_before_tick(1, &r);
    ck_assert_int_eq(r.tokens, 70);
    /* The next tick: a report measured 10 ms after the API's (10 ms
     * before the pool's), applied before the pool's schedule reaches it. */
    st = tkt_status(c);
    tick = st.now_ms + st.refill_in_ms;
    tkt_sleep_ms(st.refill_in_ms > 200 ? st.refill_in_ms - 200 : 0);
    g = tkt_acquire(c, 5);
    {
        tkm_report after = {50, tick - 10}; /* the tick is in it */
        ck_assert_int_eq(tkm_complete(c, g.id, 5, &after, &r), TKM_OK);
        ck_assert_int_eq(r.report_applied, 1);
        ck_assert_int_eq(r.tokens, 50);
    }
    tkt_sleep_ms(400); /* past the tick: not counted twice */
    st = tkt_status(c);
    ck_assert_int_eq(st.tokens, 50);
    ck_assert_int_gt(st.refill_in_ms, 400);
    tkm_client_free(c);
}
END_TEST

/* A phase set without the API's timestamp (an operator's sync with a
 * refill_in) is late by the response's unknown latency: a report from just
 * before the pool's tick may already hold the API's tick, so none is added
 * to it (a tick lost until the next report at most; never one counted
 * twice, and a grant the API has no tokens for). */
START_TEST(test_phase_without_timestamp_adds_no_tick)
{
    tkm_reconcile r;
    tkm_client *c = report_before_tick(0, &r);

    ck_assert_int_eq(r.tokens, 60);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_ticks_align_to_sync_without_refill_in)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_pool_status st;

    o.bucket.refill_period_ms = 1000;
    c = tkt_open(&o);
    tkt_sync(c, 10, 5, -1, -1);
    st = tkt_status(c);
    ck_assert_int_gt(st.refill_in_ms, 800);
    ck_assert_int_le(st.refill_in_ms, 1000);
    ck_assert_int_eq(st.refill_period_ms, 1000);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_refill_capped_at_capacity)
{
    tkm_options o = tkt_options();
    tkm_client *c;

    o.bucket.refill_period_ms = 200;
    c = tkt_open(&o);
    tkt_sync(c, 298, 5, 100, -1); /* capacity 60 x 5 = 300 */
    ck_assert_int_eq(tkt_status(c).capacity, 300);
    tkt_sleep_ms(450);
    ck_assert_int_eq(tkt_status(c).tokens, 300);
    /* A balance the API reports above capacity is not cut by refill. */
    tkt_sync(c, 350, 5, 100, -1);
    tkt_sleep_ms(250);
    ck_assert_int_eq(tkt_status(c).tokens, 350);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_configured_capacity)
{
    tkm_options o = tkt_options();
    tkm_client *c;

    o.bucket.refill_period_ms = 200;
    o.bucket.capacity = 100;
    c = tkt_open(&o);
    tkt_sync(c, 98, 5, 100, -1);
    tkt_sleep_ms(250);
    ck_assert_int_eq(tkt_status(c).tokens, 100);
    ck_assert_int_eq(tkt_status(c).capacity, 100);
    tkm_client_free(c);
}
END_TEST

/* ---- leases, complete, release, sync ---------------------------------- */

/* SEED failure 3: estimates far below actual costs are reconciled. */
START_TEST(test_complete_applies_difference)
{
    tkm_client *c = tkt_client_synced(290, 5, 30000, -1);
    tkm_grant g;
    tkm_reconcile r;

    g = tkt_acquire(c, 100);
    ck_assert_int_eq(g.tokens, 190);
    ck_assert_int_eq(tkm_complete(c, g.id, 386, NULL, &r), TKM_OK);
    ck_assert_int_eq(r.tokens, 290 - 386);
    ck_assert_int_eq(r.report_applied, 0);
    ck_assert_int_eq(tkt_status(c).inflight, 0);
    ck_assert_int_eq(tkt_status(c).inflight_tokens, 0);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_complete_with_report_keeps_inflight)
{
    tkm_client *c = tkt_client_synced(200, 5, 30000, 500);
    tkm_grant a, b;
    tkm_reconcile r;
    tkm_report rep = {50, 1000};

    a = tkt_acquire(c, 10);
    b = tkt_acquire(c, 20);
    ck_assert_int_eq(b.granted, 1);
    ck_assert_int_eq(tkm_complete(c, a.id, 12, &rep, &r), TKM_OK);
    /* The API says 50 after call a; call b (20) is still to be charged. */
    ck_assert_int_eq(r.report_applied, 1);
    ck_assert_int_eq(r.tokens, 30);
    ck_assert_int_eq(tkt_status(c).inflight_tokens, 20);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_stale_report_ignored)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, 2000);
    tkm_grant a;
    tkm_reconcile r;
    tkm_report old = {5, 1500};
    tkm_sync_info stale = {3, 5, -1, 1000};

    a = tkt_acquire(c, 10);
    ck_assert_int_eq(tkm_complete(c, a.id, 15, &old, &r), TKM_OK);
    ck_assert_int_eq(r.report_stale, 1);
    ck_assert_int_eq(r.report_applied, 0);
    ck_assert_int_eq(r.tokens, 85); /* the difference rule instead */
    ck_assert_int_eq(tkm_sync(c, &stale, &r), TKM_OK);
    ck_assert_int_eq(r.report_stale, 1);
    ck_assert_int_eq(tkt_status(c).tokens, 85);
    /* Older by more than a lease can live: the API's clock went back (or
     * the last report was skewed); freezing the balance would be worse. */
    {
        tkm_sync_info ahead = {50, 5, -1, 10000000};
        tkm_sync_info back = {40, 5, -1, 2000};
        ck_assert_int_eq(tkm_sync(c, &ahead, &r), TKM_OK);
        ck_assert_int_eq(tkm_sync(c, &back, &r), TKM_OK);
        ck_assert_int_eq(r.report_applied, 1);
        ck_assert_int_eq(tkt_status(c).tokens, 40);
    }
    tkm_client_free(c);
}
END_TEST

/* Two reports of the same millisecond, in either order: the API's balance
 * only falls between ticks, so the lower one is the later and stands (one
 * applied in arrival order used to lift the balance back, and a grant
 * then met a 429). */
START_TEST(test_same_ms_reports_lower_wins)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, 2000);
    tkm_grant a, b, d;
    tkm_reconcile r;
    tkm_report later = {70, 3000}, earlier = {80, 3000}, lower = {50, 3000};

    a = tkt_acquire(c, 10);
    b = tkt_acquire(c, 10);
    d = tkt_acquire(c, 10);
    /* b's report (70, a and d still in flight) arrives first. */
    ck_assert_int_eq(tkm_complete(c, b.id, 10, &later, &r), TKM_OK);
    ck_assert_int_eq(r.report_applied, 1);
    ck_assert_int_eq(r.tokens, 50);
    /* a's, of the same millisecond and higher: the earlier state. */
    ck_assert_int_eq(tkm_complete(c, a.id, 10, &earlier, &r), TKM_OK);
    ck_assert_int_eq(r.report_stale, 1);
    ck_assert_int_eq(r.tokens, 50);
    /* d's, of the same millisecond and lower: the later state. */
    ck_assert_int_eq(tkm_complete(c, d.id, 10, &lower, &r), TKM_OK);
    ck_assert_int_eq(r.report_applied, 1);
    ck_assert_int_eq(r.tokens, 50);
    /* A sync of that millisecond with a higher balance: earlier too. */
    {
        tkm_sync_info same = {90, 5, -1, 3000};
        ck_assert_int_eq(tkm_sync(c, &same, &r), TKM_OK);
        ck_assert_int_eq(r.report_stale, 1);
        ck_assert_int_eq(tkt_status(c).tokens, 50);
    }
    tkm_client_free(c);
}
END_TEST

/* SEED failure 2: a sync wiped the reservations of calls in flight. */
START_TEST(test_sync_keeps_inflight_reservations)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, -1);
    tkm_grant g;
    tkm_pool_status st;

    g = tkt_acquire(c, 30);
    ck_assert_int_eq(g.tokens, 70);
    /* The API has not charged the call yet and still says 100. */
    tkt_sync(c, 100, 5, 30000, -1);
    st = tkt_status(c);
    ck_assert_int_eq(st.tokens, 70);
    ck_assert_int_eq(st.inflight, 1);
    ck_assert_int_eq(st.inflight_tokens, 30);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_release_returns_estimate)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, -1);
    tkm_grant g;
    tkm_reconcile r;

    g = tkt_acquire(c, 30);
    ck_assert_int_eq(tkm_release(c, g.id, &r), TKM_OK);
    ck_assert_int_eq(r.tokens, 100);
    ck_assert_int_eq(tkm_release(c, g.id, &r), TKM_ENOGRANT);
    ck_assert_int_eq(tkm_complete(c, g.id, 1, NULL, &r), TKM_ENOGRANT);
    ck_assert_int_eq(tkt_status(c).tokens, 100);
    tkm_client_free(c);
}
END_TEST

/* SEED failure 3: estimates far below actual costs let the calls in flight
 * add their errors past the deficit limit.  The pool learns the error and
 * holds it for every call in flight. */
START_TEST(test_estimate_errors_are_learned)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g[8];
    tkm_reconcile r;
    int n = 0;

    o.bucket.soft_floor = -180; /* no recharge: only the deficit limit */
    o.bucket.low_cost_target = -180;
    c = tkt_open(&o);
    tkt_sync(c, 300, 5, 30000, -1);
    ck_assert(tkt_status(c).estimate_ratio == 0.0);
    g[0] = tkt_acquire(c, 10);
    /* Nothing learned yet: a call counts as 4 times its estimate. */
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 30);
    ck_assert_int_eq(tkm_complete(c, g[0].id, 40, NULL, NULL), TKM_OK);
    ck_assert(tkt_status(c).estimate_ratio == 4.0);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 0);

    /* Estimated 10, costing 40: from 55 two grants, not 55 / 10.  A call
     * starts only when the balance covers what those in flight may cost
     * beyond their estimates: 55, 45 (30 held), then 35 with 60 held. */
    tkt_sync(c, 55, 5, 30000, -1);
    for (n = 0; n < 8; n++) {
        g[n] = tkt_acquire(c, 10);
        if (!g[n].granted)
            break;
    }
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(g[2].reason, TKM_REASON_INSUFFICIENT);
    ck_assert_int_eq(g[2].tokens, 35);
    /* What cures it is a completion: retry within a second, not when
     * refill would (28 minutes). */
    ck_assert_int_gt(g[2].retry_after_ms, 0);
    ck_assert_int_le(g[2].retry_after_ms, 1000);
    /* Worst case 35 - 60 = -25: the API's balance once both are charged
     * 40, and it was positive when each arrived. */
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 60);
    /* A call of 60 (never seen: the pool's ratio, 180 more) needs a
     * balance of 60 even with that reserve freed: 5 ticks of refill from
     * 35, and the retry says so instead of polling each second. */
    g[6] = tkt_acquire(c, 60);
    ck_assert_int_eq(g[6].granted, 0);
    ck_assert_int_gt(g[6].retry_after_ms, 28000 + 4 * MINUTE);
    ck_assert_int_le(g[6].retry_after_ms, 30000 + 4 * MINUTE);

    /* Cheaper than feared: the reserve goes at once; the one call that
     * cost 4 times its estimate still counts for 3 refill periods
     * (test_outlier_costs_a_few_periods). */
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(tkm_complete(c, g[i].id, 10, NULL, &r), TKM_OK);
    ck_assert_int_eq(r.tokens, 35);
    ck_assert(tkt_status(c).estimate_ratio == 4.0);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 0);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_reserve_revalued_as_the_pool_learns)
{
    tkm_client *c = tkt_client_synced(300, 5, 30000, -1);
    tkm_grant a, b, d;

    a = tkt_acquire(c, 10);
    b = tkt_acquire(c, 10);
    d = tkt_acquire(c, 7);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 30 + 30 + 21);
    /* a cost what it was estimated at: b (same estimate) and d (an
     * estimate never seen, valued at the pool's ratio) are revalued. */
    ck_assert_int_eq(tkm_complete(c, a.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 0);
    ck_assert_int_eq(tkm_release(c, b.id, NULL), TKM_OK);
    ck_assert_int_eq(tkm_complete(c, d.id, 14, NULL, NULL), TKM_OK);
    ck_assert(tkt_status(c).estimate_ratio == 2.0);
    d = tkt_acquire(c, 7);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 7);
    b = tkt_acquire(c, 10);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 7); /* 10 costs 10 */
    tkm_client_free(c);
}
END_TEST

START_TEST(test_reserve_never_blocks_a_grantable_cost)
{
    tkm_client *c = tkt_client();
    tkm_grant g;

    /* Capacity 300 - max_deficit -180: 480 is the largest cost, and a full
     * bucket grants it even though its error is unknown. */
    tkt_sync(c, 300, 5, 30000, -1);
    g = tkt_acquire(c, 480);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, -180);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_unknown_grant)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, -1);
    tkm_reconcile r;

    ck_assert_int_eq(tkm_complete(c, "12-34", 1, NULL, &r), TKM_ENOGRANT);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "12-34"));
    ck_assert_int_eq(tkm_release(c, "bogus id", &r), TKM_ENOGRANT);
    ck_assert_int_eq(tkm_release(c, "", &r), TKM_ENOGRANT);
    ck_assert_int_eq(tkt_status(c).tokens, 100);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_lease_expires_keeping_cost)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;
    tkm_pool_status st;
    tkm_reconcile r;

    o.bucket.lease_ttl_s = 1;
    c = tkt_open(&o);
    tkt_sync(c, 100, 5, 30000, -1);
    g = tkt_acquire(c, 10);
    ck_assert_int_eq(tkt_status(c).inflight, 1);
    tkt_sleep_ms(1100);
    st = tkt_status(c);
    ck_assert_int_eq(st.inflight, 0);
    ck_assert_int_eq(st.inflight_tokens, 0);
    ck_assert_int_eq(st.tokens, 90); /* the call may have happened */
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, &r), TKM_ENOGRANT);
    /* A later sync does not subtract the expired lease again. */
    tkt_sync(c, 80, 5, 30000, -1);
    ck_assert_int_eq(tkt_status(c).tokens, 80);
    tkm_client_free(c);
}
END_TEST

/* ---- admin ----------------------------------------------------------------
 */

START_TEST(test_recharge_on_off)
{
    /* Below the target (50). */
    tkm_client *c = tkt_client_synced(30, 5, 30000, -1);
    tkm_pool_status st;

    ck_assert_int_eq(tkm_recharge(c, 1), TKM_OK);
    st = tkt_status(c);
    ck_assert_int_eq(st.recharge_mode, 1);
    ck_assert_int_le(st.now_ms - st.recharge_since_ms, 1000);
    ck_assert_int_eq(tkm_recharge(c, 0), TKM_OK);
    st = tkt_status(c);
    ck_assert_int_eq(st.recharge_mode, 0);
    ck_assert_int_eq(st.recharge_since_ms, -1);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_reset_deletes_only_this_pool)
{
    tkm_options o = tkt_options();
    tkm_options other = tkt_options();
    tkm_client *c, *d;
    redisContext *r = tkt_raw();
    redisReply *rep;
    int64_t n = -1;

    snprintf(other.pool, sizeof(other.pool), "t2");
    c = tkt_open(&o);
    d = tkt_open(&other);
    tkt_sync(c, 100, 5, 30000, -1);
    tkt_acquire(c, 5);
    tkt_sync(d, 100, 5, 30000, -1);
    freeReplyObject(tkt_cmd(r, "SET unrelated 1"));
    freeReplyObject(tkt_cmd(r, "SET tokenmgr:{t}x 1"));
    ck_assert_int_eq(tkm_reset(c, &n), TKM_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(tkt_status(c).synced, 0);
    ck_assert_int_eq(tkt_status(d).tokens, 100);
    rep = tkt_cmd(r, "EXISTS unrelated tokenmgr:{t}x");
    ck_assert_int_eq(rep->integer, 2);
    freeReplyObject(rep);
    redisFree(r);
    tkm_client_free(c);
    tkm_client_free(d);
}
END_TEST

/* ---- hostile inputs (issue 17) --------------------------------------------
 * No single bad value, reply or key may break a pool: what cannot be
 * applied is refused before anything is written, and counters that drifted
 * from the leases are counted again from them. */

/* Before the fix the library had no such constants. */
#ifndef TKM_TOKENS_MAX
#define TKM_TOKENS_MAX       INT64_C(1000000000)
#define TKM_RATE_MAX         INT64_C(1000000)
#define TKM_TIMESTAMP_MS_MAX INT64_C(4102444800000)
#endif

/* The pool's leases as Redis holds them: how many, and their estimates. */
static void raw_leases(int64_t *n, int64_t *tokens)
{
    redisContext *r = tkt_raw();
    redisReply *rep = tkt_cmd(r, "HVALS tokenmgr:{t}:leases");

    *n = 0;
    *tokens = 0;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements;
         i++) {
        *n += 1;
        *tokens += strtoll(rep->element[i]->str, NULL, 10);
    }
    freeReplyObject(rep);
    redisFree(r);
}

/* The pool answers, and what it says is in flight is what the leases say. */
static tkm_pool_status usable(tkm_client *c)
{
    tkm_pool_status st = tkt_status(c);
    int64_t n, tokens;

    raw_leases(&n, &tokens);
    ck_assert_int_eq(st.inflight, n);
    ck_assert_int_eq(st.inflight_tokens, tokens);
    return st;
}

static void expect_refused(tkm_client *c, tkm_code rc, const char *says)
{
    ck_assert_msg(rc == TKM_EINVAL, "accepted (%d): %s", rc, tkm_errstr(c));
    ck_assert_msg(strstr(tkm_errstr(c), says) != NULL &&
                      strstr(tkm_errstr(c), "allowed") != NULL,
                  "'%s' does not say '%s' and the range", tkm_errstr(c), says);
}

/* Class 1: a number out of range is refused where it enters, naming it and
 * its range, and changes nothing; the pool answers after each one (the
 * timestamp in nanoseconds used to poison it until a reset). */
START_TEST(test_out_of_range_numbers_refused)
{
    static const struct {
        tkm_sync_info in;
        const char *says;
    } bad_sync[] = {
        {{100, 5, -1, INT64_C(1795928436074000000)},
         "timestamp_ms 1795928436074000000"},
        {{100, 5, -1, TKM_TIMESTAMP_MS_MAX + 1}, "timestamp_ms 4102444800001"},
        {{100, 5, -1, -2}, "timestamp_ms -2"},
        {{100, 5, -1, INT64_MIN}, "timestamp_ms -9223372036854775808"},
        {{INT64_C(1000000000000000000), 5, -1, -1},
         "tokens 1000000000000000000"},
        {{-TKM_TOKENS_MAX - 1, 5, -1, -1}, "tokens -1000000001"},
        {{INT64_MAX, 5, -1, -1}, "tokens 9223372036854775807"},
        {{100, -1, -1, -1}, "refill rate -1 is negative"},
        {{100, TKM_RATE_MAX + 1, -1, -1}, "refill rate 1000001"},
        {{100, INT64_C(1000000000000000000), -1, -1}, "refill rate 1"},
        {{100, 5, -2, -1}, "refill_in_ms -2"},
        {{100, 5, 60001, -1}, "refill_in_ms 60001"},
    };
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    tkm_report bad_reports[] = {{INT64_C(1000000000000000000), 5000},
                                {-TKM_TOKENS_MAX - 1, 5000},
                                {50, INT64_C(1795928436074000000)},
                                {50, -1},
                                {50, TKM_TIMESTAMP_MS_MAX + 1}};
    const int64_t bad_consumed[] = {-1, TKM_TOKENS_MAX + 1, INT64_MAX,
                                    INT64_MIN};
    tkm_grant g, g2;
    tkm_pool_status st;
    char *before, *after;

    tkt_sync(c, 100, 5, 30000, 1000);
    g = tkt_acquire(c, 10);
    before = snapshot();
    for (size_t i = 0; i < sizeof(bad_sync) / sizeof(bad_sync[0]); i++) {
        expect_refused(c, tkm_sync(c, &bad_sync[i].in, NULL), bad_sync[i].says);
        ck_assert_int_eq(usable(c).tokens, 90);
    }
    for (size_t i = 0; i < sizeof(bad_consumed) / sizeof(bad_consumed[0]); i++)
        expect_refused(c, tkm_complete(c, g.id, bad_consumed[i], NULL, NULL),
                       "consumed");
    for (size_t i = 0; i < sizeof(bad_reports) / sizeof(bad_reports[0]); i++)
        expect_refused(c, tkm_complete(c, g.id, 10, &bad_reports[i], NULL),
                       bad_reports[i].tokens_left == 50 ? "timestamp_ms"
                                                        : "tokens_left");
    expect_refused(c, tkm_try_acquire(c, TKM_TOKENS_MAX + 1, &g2), "cost");
    expect_refused(c, tkm_try_acquire(c, INT64_MAX, &g2), "cost");
    ck_assert_int_eq(tkm_acquire(c, 1, INT64_MAX, &g2), TKM_EINVAL);
    after = snapshot();
    ck_assert_str_eq(before, after); /* nothing was written */
    free(before);
    free(after);
    st = usable(c);
    ck_assert_int_eq(st.tokens, 90);
    ck_assert_int_eq(st.inflight, 1);

    /* The edges of each range are taken, and the pool answers after them. */
    tkt_sync(c, TKM_TOKENS_MAX, TKM_RATE_MAX, 60000, TKM_TIMESTAMP_MS_MAX);
    ck_assert_int_eq(usable(c).tokens, TKM_TOKENS_MAX - 10);
    tkt_sync(c, -TKM_TOKENS_MAX, 0, 0, 0);
    ck_assert_int_eq(usable(c).tokens, -TKM_TOKENS_MAX - 10);
    {
        tkm_report edge = {-TKM_TOKENS_MAX, TKM_TIMESTAMP_MS_MAX};
        ck_assert_int_eq(tkm_complete(c, g.id, TKM_TOKENS_MAX, &edge, NULL),
                         TKM_OK);
    }
    ck_assert_int_eq(usable(c).tokens, -TKM_TOKENS_MAX);
    tkt_sync(c, 300, 5, -1, -1);
    ck_assert_int_eq(usable(c).tokens, 300);
    g = tkt_acquire(c, 480); /* the largest cost, even after that outlier */
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(tkm_release(c, g.id, NULL), TKM_OK);
    ck_assert_int_eq(usable(c).tokens, 300);
    tkm_client_free(c);
}
END_TEST

/* Class 3: a key of the wrong type makes every operation that touches it
 * refuse before its first write (acquire used to debit the balance, then
 * fail); once the key is gone the pool is as it was. */
START_TEST(test_wrong_key_type_writes_nothing)
{
    static const char *const keys[] = {"tokenmgr:{t}:leases",
                                       "tokenmgr:{t}:lease_expiry"};
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    redisContext *r = tkt_raw();

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        tkm_sync_info in = {100, 5, -1, -1};
        tkm_grant g, held;
        tkm_pool_status st;
        char *before, *after;

        tkt_flush();
        tkt_sync(c, 100, 5, -1, -1);
        held = tkt_acquire(c, 10);
        /* Its lease and expiry go with the key that is replaced. */
        freeReplyObject(tkt_cmd(r, "DEL %s", keys[k]));
        freeReplyObject(tkt_cmd(r, "SET %s x", keys[k]));
        before = snapshot();
        ck_assert_int_eq(tkm_try_acquire(c, 30, &g), TKM_ESTATE);
        ck_assert_msg(strstr(tkm_errstr(c), keys[k]) != NULL &&
                          strstr(tkm_errstr(c), "written by something else"),
                      "%s", tkm_errstr(c));
        ck_assert_int_eq(tkm_complete(c, held.id, 10, NULL, NULL), TKM_ESTATE);
        ck_assert_int_eq(tkm_release(c, held.id, NULL), TKM_ESTATE);
        ck_assert_int_eq(tkm_sync(c, &in, NULL), TKM_ESTATE);
        ck_assert_int_eq(tkm_recharge(c, 1), TKM_ESTATE);
        ck_assert_int_eq(tkm_status(c, &st), TKM_ESTATE);
        after = snapshot();
        ck_assert_str_eq(before, after);
        free(before);
        free(after);

        /* The key deleted by hand (the recipe): nothing held for a
         * call that never got a lease.  The call whose lease went is no
         * longer in flight; the one whose expiry went still is (it gets an
         * expiry again). */
        freeReplyObject(tkt_cmd(r, "DEL %s", keys[k]));
        st = usable(c);
        ck_assert_int_eq(st.inflight, k == 0 ? 0 : 1);
        ck_assert_int_eq(st.inflight_tokens, k == 0 ? 0 : 10);
        ck_assert_int_eq(st.tokens, 90);
        tkt_sync(c, 100, 5, -1, -1);
        /* Not "synced; balance 70": the refused acquire holds nothing. */
        ck_assert_int_eq(usable(c).tokens, k == 0 ? 100 : 90);
        if (k == 1)
            ck_assert_int_eq(tkm_release(c, held.id, NULL), TKM_OK);
        ck_assert_int_eq(usable(c).tokens, 100);
        g = tkt_acquire(c, 30);
        ck_assert_int_eq(tkm_complete(c, g.id, 30, NULL, NULL), TKM_OK);
        ck_assert_int_eq(usable(c).tokens, 70);
    }
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

/* Class 3: counters kept beside the leases that disagree with them (a
 * script torn by an older version, a hand edit) are counted again from the
 * leases, by status at once and for good by the next write. */
START_TEST(test_drifted_counters_repaired)
{
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    redisContext *r = tkt_raw();
    tkm_grant g;

    /* What the old acquire left when its lease could not be written, in
     * the old version's state (no lease count; its estimate errors). */
    tkt_sync(c, 100, 5, -1, -1);
    freeReplyObject(tkt_cmd(r, "HDEL tokenmgr:{t}:bucket leases"));
    freeReplyObject(tkt_cmd(r, "HSET tokenmgr:{t}:bucket inflight_tokens 30 "
                               "reserve_mt 90000 unlearned_tokens 30 "
                               "ratio:* 4000 ratio:30 4000 n:30 1"));
    ck_assert_int_eq(usable(c).inflight_tokens, 0);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 0);
    tkt_sync(c, 100, 5, -1, -1);
    ck_assert_int_eq(usable(c).tokens, 100);
    {
        redisReply *rep = tkt_cmd(r, "HMGET tokenmgr:{t}:bucket reserve_mt "
                                     "unlearned_tokens ratio:* ratio:30 n:30");
        for (size_t i = 0; i < rep->elements; i++)
            ck_assert_int_eq(rep->element[i]->type, REDIS_REPLY_NIL);
        freeReplyObject(rep);
    }

    /* A lease without its expiry, an expiry without its lease, a lease
     * that is not ours, and an expiry a year away (longer than any lease:
     * Redis' clock moved back). */
    g = tkt_acquire(c, 10);
    freeReplyObject(tkt_cmd(r, "ZREM tokenmgr:{t}:lease_expiry %s", g.id));
    freeReplyObject(tkt_cmd(r, "ZADD tokenmgr:{t}:lease_expiry 1 9-9"));
    freeReplyObject(tkt_cmd(r, "HSET tokenmgr:{t}:leases 8-8 junk"));
    freeReplyObject(tkt_cmd(r, "HSET tokenmgr:{t}:leases 7-7 20|w"));
    freeReplyObject(tkt_cmd(r, "ZADD tokenmgr:{t}:lease_expiry %lld 7-7",
                            (long long)(tkt_status(c).now_ms + 31536000000)));
    tkt_sync(c, 100, 5, -1, -1);
    ck_assert_int_eq(tkt_status(c).inflight_tokens, 30);
    ck_assert_int_eq(tkt_status(c).tokens, 70);
    {
        redisReply *rep =
            tkt_cmd(r, "ZSCORE tokenmgr:{t}:lease_expiry %s", g.id);
        ck_assert_int_eq(rep->type, REDIS_REPLY_STRING); /* it expires */
        freeReplyObject(rep);
        rep = tkt_cmd(r, "ZSCORE tokenmgr:{t}:lease_expiry 7-7");
        /* Clamped to the longest lease any configuration gives. */
        ck_assert_int_le(strtoll(rep->str, NULL, 10),
                         tkt_status(c).now_ms + 86400000);
        freeReplyObject(rep);
        rep = tkt_cmd(r, "HEXISTS tokenmgr:{t}:leases 8-8");
        ck_assert_int_eq(rep->integer, 0);
        freeReplyObject(rep);
    }
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(tkm_release(c, "7-7", NULL), TKM_OK);
    ck_assert_int_eq(usable(c).inflight_tokens, 0);
    ck_assert_int_eq(usable(c).tokens, 90); /* g cost its 10 */
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

/* Class 3: a Redis user that may not run a command an operation needs gets
 * the operation refused before its first write (complete used to delete
 * the lease, then fail on HSET, leaving its tokens in flight for good). */
START_TEST(test_acl_refusal_writes_nothing)
{
    static const char *const denied[] = {"hset", "hdel", "zadd", "zrem"};
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    redisContext *r = tkt_raw();

    for (size_t d = 0; d < sizeof(denied) / sizeof(denied[0]); d++) {
        tkm_options lo = tkt_options();
        tkm_client *lc;
        tkm_sync_info in = {100, 5, -1, -1};
        tkm_grant g, g2;
        tkm_code rc[4];
        char *before, *after;

        freeReplyObject(tkt_cmd(r,
                                "ACL SETUSER limited reset on >pw ~* &* "
                                "+@all -%s",
                                denied[d]));
        snprintf(lo.redis_url, sizeof(lo.redis_url), "unix://limited:pw@%s",
                 tkt_server.sock);
        lc = tkt_open(&lo);
        tkt_flush();
        tkt_sync(c, 100, 5, -1, -1);
        g = tkt_acquire(c, 30);
        before = snapshot();
        rc[0] = tkm_complete(lc, g.id, 30, NULL, NULL);
        rc[1] = tkm_release(lc, g.id, NULL);
        rc[2] = tkm_try_acquire(lc, 5, &g2);
        rc[3] = tkm_sync(lc, &in, NULL);
        after = snapshot();
        for (int i = 0; i < 4; i++) {
            ck_assert_msg(rc[i] == TKM_EREDIS, "-%s: call %d: %d %s", denied[d],
                          i, rc[i], tkm_errstr(lc));
        }
        ck_assert_msg(strstr(tkm_errstr(lc), "nothing was changed") != NULL,
                      "%s", tkm_errstr(lc));
        ck_assert_str_eq(before, after);
        free(before);
        free(after);
        ck_assert_int_eq(usable(c).inflight_tokens, 30);
        ck_assert_int_eq(tkm_complete(c, g.id, 30, NULL, NULL), TKM_OK);
        ck_assert_int_eq(usable(c).tokens, 70);
        tkm_client_free(lc);
    }
    freeReplyObject(tkt_cmd(r, "ACL DELUSER limited"));
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

/* Class 4: one call far above its estimate holds the pool back for at most
 * 3 refill periods (it used to set a 1000x ratio that took some 585
 * completions to decay, granting anything only to a full bucket); the same
 * error repeated is still held. */
START_TEST(test_outlier_costs_a_few_periods)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;
    int64_t t0;

    o.bucket.refill_period_ms = 300;
    o.bucket.soft_floor = -180; /* only the deficit limit */
    o.bucket.low_cost_target = -180;
    o.bucket.recharge_target = -180;
    o.bucket.capacity = 300;
    c = tkt_open(&o);
    tkt_sync(c, 300, 0, -1, -1);
    g = tkt_acquire(c, 2);
    ck_assert_int_eq(tkm_complete(c, g.id, 2000, NULL, NULL), TKM_OK);
    t0 = tkt_now_ms();
    tkt_sync(c, 290, 0, -1, -1); /* a sync does not forget it */
    g = tkt_acquire(c, 50);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_DEFICIT_LIMIT);
    /* The denial says when the outlier stops counting. */
    ck_assert_int_gt(g.retry_after_ms, 0);
    ck_assert_int_le(g.retry_after_ms, 3 * 300);
    tkt_sleep_ms(3 * 300 - (tkt_now_ms() - t0) + 50);
    g = tkt_acquire(c, 50);
    ck_assert_msg(g.granted, "still denied (%s) after 3 periods",
                  tkm_reason_str(g.reason));
    ck_assert_int_eq(tkm_complete(c, g.id, 50, NULL, NULL), TKM_OK);
    /* Estimate 10 repeatedly costing 40: held after the 3 periods too. */
    for (int i = 0; i < 2; i++) {
        g = tkt_acquire(c, 10);
        ck_assert_int_eq(g.granted, 1);
        ck_assert_int_eq(tkm_complete(c, g.id, 40, NULL, NULL), TKM_OK);
    }
    tkt_sleep_ms(3 * 300 + 50);
    g = tkt_acquire(c, 10);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 30);
    ck_assert_int_eq(tkm_release(c, g.id, NULL), TKM_OK);
    /* One outlier after many exact calls: held 3 periods, then forgotten. */
    tkt_sync(c, 300, 0, -1, -1);
    for (int i = 0; i < 8; i++) {
        g = tkt_acquire(c, 100);
        ck_assert_int_eq(tkm_complete(c, g.id, i == 7 ? 1000 : 100, NULL, NULL),
                         TKM_OK);
        tkt_sync(c, 300, 0, -1, -1);
    }
    g = tkt_acquire(c, 100);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 900);
    ck_assert_int_eq(tkm_release(c, g.id, NULL), TKM_OK);
    tkt_sleep_ms(3 * 300 + 50);
    g = tkt_acquire(c, 100);
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 0);
    tkm_client_free(c);
}
END_TEST

/* Class 7: status and workers are read-only scripts, flagged so: they
 * answer while Redis pauses writes (CLIENT PAUSE WRITE, as a failover
 * does), where they used to block until the timeout. */
START_TEST(test_status_during_client_pause_write)
{
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    redisContext *r = tkt_raw();
    tkm_pool_status st;
    tkm_worker *w = NULL;
    size_t n = 0;
    redisReply *rep;

    tkt_sync(c, 100, 5, -1, -1);
    ck_assert_int_eq(tkm_heartbeat(c, "working"), TKM_OK);
    /* Known to this server, as they are to the plugin's after its first
     * read: an EVALSHA of a script Redis does not know yet is held by the
     * pause whatever its flags (only EVALSHA_RO is not). */
    ck_assert_int_eq(tkm_status(c, &st), TKM_OK);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    tkm_workers_free(w);
    rep = tkt_cmd(r, "CLIENT PAUSE 5000 WRITE");
    ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    ck_assert_msg(tkm_status(c, &st) == TKM_OK, "%s", tkm_errstr(c));
    ck_assert_int_eq(st.tokens, 100);
    ck_assert_msg(tkm_workers(c, &w, &n) == TKM_OK, "%s", tkm_errstr(c));
    ck_assert_uint_eq(n, 1);
    tkm_workers_free(w);
    freeReplyObject(tkt_cmd(r, "CLIENT UNPAUSE"));
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bucket");

    tkt_add_tests(
        tkt_redis_tcase(s, "grant_rules", 30), test_need_sync_on_empty_pool,
        test_insufficient_and_retry_after, test_min_start_balance,
        test_denial_writes_nothing,
        test_soft_floor_grant_proceeds_and_starts_recharge,
        test_low_cost_target, test_recharge_ends_at_target,
        test_target_above_capacity_is_clamped, test_recharge_timeout_clears,
        test_deficit_limit, test_rate_zero_is_never, test_bad_costs, NULL);
    tkt_add_tests(
        tkt_redis_tcase(s, "refill", 30),
        test_discrete_refill_aligned_to_refill_in, test_phase_from_the_report,
        test_report_and_ticks_counted_once,
        test_phase_without_timestamp_adds_no_tick,
        test_ticks_align_to_sync_without_refill_in,
        test_refill_capped_at_capacity, test_configured_capacity, NULL);
    tkt_add_tests(
        tkt_redis_tcase(s, "leases", 30), test_complete_applies_difference,
        test_complete_with_report_keeps_inflight, test_stale_report_ignored,
        test_same_ms_reports_lower_wins, test_sync_keeps_inflight_reservations,
        test_release_returns_estimate, test_estimate_errors_are_learned,
        test_reserve_revalued_as_the_pool_learns,
        test_reserve_never_blocks_a_grantable_cost, test_unknown_grant,
        test_lease_expires_keeping_cost, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "admin", 30), test_recharge_on_off,
                  test_reset_deletes_only_this_pool, NULL);
    tkt_add_tests(
        tkt_redis_tcase(s, "hostile", 30), test_out_of_range_numbers_refused,
        test_wrong_key_type_writes_nothing, test_drifted_counters_repaired,
        test_acl_refusal_writes_nothing, test_outlier_costs_a_few_periods,
        test_status_during_client_pause_write, NULL);
    return tkt_run_suite(s, 0);
}
