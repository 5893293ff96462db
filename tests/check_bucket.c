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

    /* Estimated 10, costing 40: from 55 five grants, not 23. */
    tkt_sync(c, 55, 5, 30000, -1);
    for (n = 0; n < 8; n++) {
        g[n] = tkt_acquire(c, 10);
        if (!g[n].granted)
            break;
    }
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(g[5].reason, TKM_REASON_DEFICIT_LIMIT);
    ck_assert_int_eq(g[5].tokens, 5);
    /* What cures it is a completion: retry within a second, not when
     * refill would (28 minutes). */
    ck_assert_int_gt(g[5].retry_after_ms, 0);
    ck_assert_int_le(g[5].retry_after_ms, 1000);
    /* Worst case 5 - 150 = -145: the real deficit stays above -180. */
    ck_assert_int_eq(tkt_status(c).inflight_reserve, 150);
    /* A call of 60 (never seen: the pool's ratio, 180 more) needs 60 even
     * with that reserve freed: 11 ticks of refill, and the retry says so
     * instead of polling each second. */
    g[6] = tkt_acquire(c, 60);
    ck_assert_int_eq(g[6].reason, TKM_REASON_DEFICIT_LIMIT);
    ck_assert_int_gt(g[6].retry_after_ms, 28000 + 10 * MINUTE);
    ck_assert_int_le(g[6].retry_after_ms, 30000 + 10 * MINUTE);

    /* Cheaper than feared: the ratio decays slowly, the reserve at once. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(tkm_complete(c, g[i].id, 10, NULL, &r), TKM_OK);
    ck_assert_int_eq(r.tokens, 5);
    ck_assert(tkt_status(c).estimate_ratio < 4.0);
    ck_assert(tkt_status(c).estimate_ratio > 3.5);
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
    tkt_add_tests(tkt_redis_tcase(s, "refill", 30),
                  test_discrete_refill_aligned_to_refill_in,
                  test_ticks_align_to_sync_without_refill_in,
                  test_refill_capped_at_capacity, test_configured_capacity,
                  NULL);
    tkt_add_tests(
        tkt_redis_tcase(s, "leases", 30), test_complete_applies_difference,
        test_complete_with_report_keeps_inflight, test_stale_report_ignored,
        test_sync_keeps_inflight_reservations, test_release_returns_estimate,
        test_estimate_errors_are_learned,
        test_reserve_revalued_as_the_pool_learns,
        test_reserve_never_blocks_a_grantable_cost, test_unknown_grant,
        test_lease_expires_keeping_cost, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "admin", 30), test_recharge_on_off,
                  test_reset_deletes_only_this_pool, NULL);
    return tkt_run_suite(s, 0);
}
