/* The legacy layout: the float parser, the pure judgement and projection of
 * the Python system's keys, and tkm_legacy_read against a real
 * redis-server. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkt.h"

#define NOW 1732000000.0 /* a Redis TIME in the legacy system's era */

/* ---- the parser --------------------------------------------------------- */

static void parses(const char *text, double want)
{
    double v = -12345;

    ck_assert_msg(tkm_parse_double(text, -1e12, 1e12, &v) == TKM_OK,
                  "'%s' rejected", text);
    ck_assert_msg(fabs(v - want) < 1e-9 * fmax(1, fabs(want)),
                  "'%s' gave %g, expected %g", text, v, want);
}

static void rejects(const char *text)
{
    double v = -12345;

    ck_assert_msg(tkm_parse_double(text, -1e12, 1e12, &v) == TKM_EINVAL,
                  "'%s' accepted as %g", text ? text : "(null)", v);
    ck_assert_msg(v == -12345, "'%s' wrote the output", text);
}

START_TEST(test_parse_double)
{
    double v;

    parses("54.0", 54);
    parses("54", 54);
    parses("-3", -3);
    parses("-150.5", -150.5);
    parses("0.5", 0.5);
    parses(".5", 0.5);
    parses("1e-05", 1e-05);
    parses("1.7e+09", 1.7e+09);
    parses("1732000000.123456", 1732000000.123456);
    parses("5.3999999999999995", 5.4);
    rejects("abc");
    rejects("nan");
    rejects("NaN");
    rejects("inf");
    rejects("-inf");
    rejects("Infinity");
    rejects("1e400");
    rejects("-1e400");
    rejects("1e-400");
    rejects("");
    rejects(" 5");
    rejects("5 ");
    rejects("5\n");
    rejects("0x10");
    rejects("1,5");
    rejects("5e");
    rejects("--5");
    rejects("-");
    rejects(".");
    rejects("54.0abc");
    rejects(NULL);
    /* The range is the caller's sanity check. */
    ck_assert_int_eq(tkm_parse_double("10", 0, 9.5, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_double("-1", 0, 10, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_double("9.5", 0, 9.5, &v), TKM_OK);
    ck_assert_int_eq(tkm_parse_double("1", 0, 1, NULL), TKM_EINVAL);
}
END_TEST

/* ---- the projection ---------------------------------------------------- */

static tkm_legacy_raw raw_at(double now_s)
{
    tkm_legacy_raw r;

    memset(&r, 0, sizeof(r));
    r.now_us = (int64_t)llround(now_s * 1e6);
    return r;
}

static void put(tkm_legacy_raw *r, tkm_legacy_key k, const char *text)
{
    r->value[k].present = 1;
    r->value[k].len = strlen(text);
    snprintf(r->value[k].text, sizeof(r->value[k].text), "%s", text);
}

static void put_f(tkm_legacy_raw *r, tkm_legacy_key k, double v)
{
    char text[64];

    snprintf(text, sizeof(text), "%.6f", v);
    put(r, k, text);
}

/* What the Python system leaves behind: a sync `ago` seconds before now. */
static tkm_legacy_raw synced(const char *tokens, const char *rate, double ago)
{
    tkm_legacy_raw r = raw_at(NOW);

    put(&r, TKM_LEGACY_TOKENS_LEFT, tokens);
    put(&r, TKM_LEGACY_REFILL_RATE, rate);
    put_f(&r, TKM_LEGACY_TOKEN_TIMESTAMP, NOW - ago);
    return r;
}

static tkm_legacy_status project(const tkm_legacy_raw *r, int64_t cap)
{
    tkm_legacy_status st;

    ck_assert_int_eq(tkm_legacy_project(r, cap, &st), TKM_OK);
    return st;
}

#define ck_near(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-6, "%g != %g", a, b)

/* A sync of tokens at rate, `ago` seconds before now, projected to now
 * with the capacity override cap (0: none). */
static tkm_legacy_status synced_project(const char *tokens, const char *rate,
                                        double ago, int64_t cap)
{
    tkm_legacy_raw r = synced(tokens, rate, ago);

    return project(&r, cap);
}

START_TEST(test_project_full)
{
    tkm_legacy_raw r = synced("54.0", "5.0", 130.5);
    tkm_legacy_status st;

    put(&r, TKM_LEGACY_RECHARGE_ACTIVE, "1");
    put_f(&r, TKM_LEGACY_RECHARGE_START, NOW - 600);
    put_f(&r, TKM_LEGACY_HEARTBEAT, NOW - 30.25);
    st = project(&r, 0);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        ck_assert_msg(st.check[k] == TKM_LEGACY_OK, "%s: %d",
                      tkm_legacy_key_name(k), st.check[k]);
    ck_near(st.now_s, NOW);
    ck_assert(st.has_tokens);
    ck_near(st.tokens, 64.0); /* two whole minutes of 5 */
    ck_assert(st.has_capacity);
    ck_near(st.capacity, 300.0);
    ck_assert(st.has_refill_rate);
    ck_near(st.refill_rate, 5.0);
    ck_assert(st.has_recharge_mode);
    ck_assert_int_eq(st.recharge_mode, 1);
    ck_assert(st.has_recharge_age);
    ck_near(st.recharge_age_s, 600.0);
    ck_assert(st.has_heartbeat_age);
    ck_near(st.heartbeat_age_s, 30.25);
    ck_assert(st.has_last_sync_age);
    ck_near(st.last_sync_age_s, 130.5);
}
END_TEST

START_TEST(test_project_discrete_minutes)
{
    tkm_legacy_status st;

    ck_near(synced_project("10", "5", 0, 0).tokens, 10.0);
    ck_near(synced_project("10", "5", 59.999, 0).tokens, 10.0);
    ck_near(synced_project("10", "5", 60, 0).tokens, 15.0);
    ck_near(synced_project("10", "5", 119.9, 0).tokens, 15.0);
    ck_near(synced_project("10", "5", 120, 0).tokens, 20.0);
    /* A deficit refills the same way. */
    ck_near(synced_project("-150.5", "20", 180, 0).tokens, -90.5);
    /* Rate 0: nothing refills, the balance is still known. */
    st = synced_project("7", "0", 3600, 0);
    ck_assert(st.has_tokens);
    ck_near(st.tokens, 7.0);
    /* A sync stamped in the future (a worker's clock ahead): no refill,
     * age 0. */
    st = synced_project("10", "5", -300, 0);
    ck_near(st.tokens, 10.0);
    ck_near(st.last_sync_age_s, 0.0);
}
END_TEST

START_TEST(test_project_capacity)
{
    tkm_legacy_status st;

    /* Refill stops at 60 x rate. */
    ck_near(synced_project("290", "5", 600, 0).tokens, 300.0);
    /* Exactly at capacity: stays. */
    ck_near(synced_project("300", "5", 6000, 0).tokens, 300.0);
    /* Above capacity already (a larger plan, a manual SET): kept, not cut. */
    st = synced_project("350", "5", 600, 0);
    ck_near(st.tokens, 350.0);
    ck_near(st.capacity, 300.0);
    /* The override replaces 60 x rate. */
    st = synced_project("290", "5", 600, 1000);
    ck_near(st.tokens, 340.0);
    ck_near(st.capacity, 1000.0);
    ck_near(synced_project("290", "5", 600, 295).tokens, 295.0);
    /* A month without a sync: still the capacity, no overflow. */
    ck_near(synced_project("-100", "5", 30 * 86400.0, 0).tokens, 300.0);
}
END_TEST

START_TEST(test_project_missing)
{
    tkm_legacy_raw r = raw_at(NOW);
    tkm_legacy_status st = project(&r, 0);

    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        ck_assert_int_eq(st.check[k], TKM_LEGACY_MISSING);
    ck_assert(!st.has_tokens && !st.has_capacity && !st.has_refill_rate);
    ck_assert(!st.has_heartbeat_age && !st.has_last_sync_age);
    ck_assert(!st.has_recharge_age);
    /* An absent flag is the legacy system's "off". */
    ck_assert(st.has_recharge_mode);
    ck_assert_int_eq(st.recharge_mode, 0);
    /* The override alone gives a capacity. */
    ck_assert(project(&r, 300).has_capacity);

    /* A balance without its sync time is stale, not "now": unknown. */
    r = raw_at(NOW);
    put(&r, TKM_LEGACY_TOKENS_LEFT, "54.0");
    put(&r, TKM_LEGACY_REFILL_RATE, "5.0");
    st = project(&r, 0);
    ck_assert(!st.has_tokens);
    ck_assert(st.has_refill_rate && st.has_capacity);
    ck_assert_int_eq(st.check[TKM_LEGACY_TOKEN_TIMESTAMP], TKM_LEGACY_MISSING);
    /* ...and without a rate. */
    r = raw_at(NOW);
    put(&r, TKM_LEGACY_TOKENS_LEFT, "54.0");
    put_f(&r, TKM_LEGACY_TOKEN_TIMESTAMP, NOW - 10);
    st = project(&r, 0);
    ck_assert(!st.has_tokens && !st.has_capacity);
    ck_assert(st.has_last_sync_age);
    /* Recharge on without a start time: mode known, age not. */
    r = raw_at(NOW);
    put(&r, TKM_LEGACY_RECHARGE_ACTIVE, "1");
    st = project(&r, 0);
    ck_assert(st.has_recharge_mode && st.recharge_mode);
    ck_assert(!st.has_recharge_age);
}
END_TEST

/* Garbage in `key` marks it invalid and leaves the unrelated fields. */
static tkm_legacy_status with_garbage(tkm_legacy_key key, const char *text)
{
    tkm_legacy_raw r = synced("54.0", "5.0", 130.5);
    tkm_legacy_status st;

    put(&r, TKM_LEGACY_RECHARGE_ACTIVE, "1");
    put_f(&r, TKM_LEGACY_RECHARGE_START, NOW - 600);
    put_f(&r, TKM_LEGACY_HEARTBEAT, NOW - 30);
    put(&r, key, text);
    st = project(&r, 0);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        ck_assert_msg(st.check[k] ==
                          (k == (int)key ? TKM_LEGACY_INVALID : TKM_LEGACY_OK),
                      "%s='%s': check of %s is %d", tkm_legacy_key_name(key),
                      text, tkm_legacy_key_name(k), st.check[k]);
    return st;
}

START_TEST(test_project_garbage)
{
    static const char *const junk[] = {"abc",   "nan", "inf",   "-inf",
                                       "1e400", "",    " 54.0", "54.0 tokens"};
    tkm_legacy_status st;

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        st = with_garbage(TKM_LEGACY_TOKENS_LEFT, junk[i]);
        ck_assert(!st.has_tokens);
        ck_assert(st.has_refill_rate && st.has_capacity);
        ck_assert(st.has_heartbeat_age && st.has_last_sync_age);
        ck_assert(st.has_recharge_mode && st.recharge_mode);

        st = with_garbage(TKM_LEGACY_REFILL_RATE, junk[i]);
        ck_assert(!st.has_refill_rate && !st.has_capacity && !st.has_tokens);
        ck_assert(st.has_heartbeat_age && st.has_last_sync_age);

        st = with_garbage(TKM_LEGACY_TOKEN_TIMESTAMP, junk[i]);
        ck_assert(!st.has_last_sync_age && !st.has_tokens);
        ck_assert(st.has_refill_rate && st.has_heartbeat_age);

        st = with_garbage(TKM_LEGACY_HEARTBEAT, junk[i]);
        ck_assert(!st.has_heartbeat_age);
        ck_assert(st.has_tokens);
        ck_near(st.tokens, 64.0);

        st = with_garbage(TKM_LEGACY_RECHARGE_START, junk[i]);
        ck_assert(!st.has_recharge_age);
        ck_assert(st.has_recharge_mode && st.recharge_mode);

        st = with_garbage(TKM_LEGACY_RECHARGE_ACTIVE, junk[i]);
        ck_assert(!st.has_recharge_mode && !st.has_recharge_age);
        ck_assert(st.has_tokens);
    }
    /* Only "1" means on: Python truthiness would read "0" as on too, so
     * anything else is reported, not guessed. */
    st = with_garbage(TKM_LEGACY_RECHARGE_ACTIVE, "0");
    ck_assert(!st.has_recharge_mode);
    st = with_garbage(TKM_LEGACY_RECHARGE_ACTIVE, "1.0");
    ck_assert(!st.has_recharge_mode);
}
END_TEST

START_TEST(test_project_absurd)
{
    tkm_legacy_status st;

    with_garbage(TKM_LEGACY_TOKENS_LEFT, "1e12");
    with_garbage(TKM_LEGACY_TOKENS_LEFT, "-2000000000");
    with_garbage(TKM_LEGACY_REFILL_RATE, "-5");
    with_garbage(TKM_LEGACY_REFILL_RATE, "5e7");
    /* Milliseconds where seconds belong, 1970, the 22nd century. */
    with_garbage(TKM_LEGACY_TOKEN_TIMESTAMP, "1732000000000");
    with_garbage(TKM_LEGACY_HEARTBEAT, "5");
    with_garbage(TKM_LEGACY_RECHARGE_START, "5000000000");
    /* Big but sane values pass. */
    st = with_garbage(TKM_LEGACY_HEARTBEAT, "x");
    ck_assert(st.has_tokens);
    {
        tkm_legacy_raw r = synced("-999999999", "1000000", 0);
        st = project(&r, 0);
        ck_assert(st.has_tokens);
        ck_near(st.tokens, -999999999.0);
        ck_near(st.capacity, 60e6);
    }
}
END_TEST

START_TEST(test_project_cut_values)
{
    tkm_legacy_raw r = synced("54.0", "5.0", 0);
    tkm_legacy_status st;

    /* Longer than the buffer: the visible prefix is a number, the value
     * is not. */
    memset(r.value[TKM_LEGACY_TOKENS_LEFT].text, '1', TKM_LEGACY_VALUE_MAX);
    r.value[TKM_LEGACY_TOKENS_LEFT].text[0] = '0';
    r.value[TKM_LEGACY_TOKENS_LEFT].text[1] = '.';
    r.value[TKM_LEGACY_TOKENS_LEFT].text[TKM_LEGACY_VALUE_MAX] = '\0';
    r.value[TKM_LEGACY_TOKENS_LEFT].len = 500;
    st = project(&r, 0);
    ck_assert_int_eq(st.check[TKM_LEGACY_TOKENS_LEFT], TKM_LEGACY_INVALID);
    /* A NUL byte inside: "54" followed by more. */
    r = synced("54", "5.0", 0);
    r.value[TKM_LEGACY_TOKENS_LEFT].len = 6;
    st = project(&r, 0);
    ck_assert_int_eq(st.check[TKM_LEGACY_TOKENS_LEFT], TKM_LEGACY_INVALID);
    r = synced("1", "5.0", 0);
    put(&r, TKM_LEGACY_RECHARGE_ACTIVE, "1");
    r.value[TKM_LEGACY_RECHARGE_ACTIVE].len = 2;
    st = project(&r, 0);
    ck_assert_int_eq(st.check[TKM_LEGACY_RECHARGE_ACTIVE], TKM_LEGACY_INVALID);
}
END_TEST

START_TEST(test_project_args)
{
    tkm_legacy_raw r = raw_at(NOW);
    tkm_legacy_status st;

    ck_assert_int_eq(tkm_legacy_project(NULL, 0, &st), TKM_EINVAL);
    ck_assert_int_eq(tkm_legacy_project(&r, 0, NULL), TKM_EINVAL);
    ck_assert_int_eq(tkm_legacy_project(&r, -1, &st), TKM_EINVAL);
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_TOKENS_LEFT),
                     "keepa_tokens_left");
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_REFILL_RATE),
                     "keepa_refill_rate");
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_TOKEN_TIMESTAMP),
                     "keepa_token_timestamp");
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_RECHARGE_ACTIVE),
                     "keepa_recharge_mode_active");
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_RECHARGE_START),
                     "keepa_recharge_start_time");
    ck_assert_str_eq(tkm_legacy_key_name(TKM_LEGACY_HEARTBEAT),
                     "keepa_worker_last_heartbeat");
    ck_assert_ptr_null(tkm_legacy_key_name(TKM_LEGACY_NKEYS));
    ck_assert_ptr_null(tkm_legacy_key_name((tkm_legacy_key)-1));
}
END_TEST

/* ---- reading a real Redis --------------------------------------------- */

static int64_t redis_time_us(redisContext *r)
{
    redisReply *t = tkt_cmd(r, "TIME");
    int64_t us = strtoll(t->element[0]->str, NULL, 10) * 1000000 +
                 strtoll(t->element[1]->str, NULL, 10);

    freeReplyObject(t);
    return us;
}

static void set_key(redisContext *r, const char *key, const char *value)
{
    freeReplyObject(tkt_cmd(r, "SET %s %s", key, value));
}

static char *dump(redisContext *r, const char *key)
{
    redisReply *rep = tkt_cmd(r, "DUMP %s", key);
    char *copy = rep->type == REDIS_REPLY_STRING
                     ? memcpy(calloc(1, rep->len + 1), rep->str, rep->len)
                     : NULL;

    freeReplyObject(rep);
    return copy;
}

START_TEST(test_read_redis)
{
    redisContext *r = tkt_raw();
    tkm_client *c = tkt_client();
    tkm_legacy_raw raw;
    tkm_legacy_status st;
    char ts[64], *before[TKM_LEGACY_NKEYS];
    int64_t t0, t1, trips;
    redisReply *rep;

    /* As the Python system wrote them: SET/INCRBYFLOAT float strings. */
    t0 = redis_time_us(r);
    set_key(r, "keepa_tokens_left", "50");
    freeReplyObject(tkt_cmd(r, "INCRBYFLOAT keepa_tokens_left 4.0"));
    set_key(r, "keepa_refill_rate", "5.0");
    snprintf(ts, sizeof(ts), "%.6f", (double)t0 / 1e6 - 130.5);
    set_key(r, "keepa_token_timestamp", ts);
    set_key(r, "keepa_recharge_mode_active", "1");
    snprintf(ts, sizeof(ts), "%.6f", (double)t0 / 1e6 - 30);
    set_key(r, "keepa_worker_last_heartbeat", ts);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        before[k] = dump(r, tkm_legacy_key_name(k));

    ck_assert_int_eq(tkm_legacy_read(c, &raw), TKM_OK);
    t1 = redis_time_us(r);
    ck_assert(raw.now_us >= t0 && raw.now_us <= t1);
    ck_assert(raw.value[TKM_LEGACY_TOKENS_LEFT].present);
    ck_assert_str_eq(raw.value[TKM_LEGACY_TOKENS_LEFT].text, "54");
    ck_assert_uint_eq(raw.value[TKM_LEGACY_TOKENS_LEFT].len, 2);
    ck_assert_str_eq(raw.value[TKM_LEGACY_REFILL_RATE].text, "5.0");
    ck_assert_str_eq(raw.value[TKM_LEGACY_RECHARGE_ACTIVE].text, "1");
    ck_assert(!raw.value[TKM_LEGACY_RECHARGE_START].present);
    ck_assert(raw.value[TKM_LEGACY_HEARTBEAT].present);

    st = project(&raw, 0);
    ck_assert(st.has_tokens);
    ck_near(st.tokens, 64.0);
    ck_assert(st.recharge_mode);
    ck_assert(st.heartbeat_age_s >= 30 && st.heartbeat_age_s < 32);
    ck_assert(st.last_sync_age_s >= 130.5 && st.last_sync_age_s < 132.5);

    /* One round trip once the script is cached. */
    trips = tkm_client_round_trips(c);
    ck_assert_int_eq(tkm_legacy_read(c, &raw), TKM_OK);
    ck_assert_int_eq(tkm_client_round_trips(c) - trips, 1);

    /* Nothing written: same keys, same values, same encodings. */
    rep = tkt_cmd(r, "DBSIZE");
    ck_assert_int_eq(rep->integer, 5);
    freeReplyObject(rep);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++) {
        char *after = dump(r, tkm_legacy_key_name(k));
        ck_assert_msg((before[k] == NULL) == (after == NULL) &&
                          (before[k] == NULL || strcmp(before[k], after) == 0),
                      "%s changed", tkm_legacy_key_name(k));
        free(before[k]);
        free(after);
    }
    tkm_client_free(c);
    redisFree(r);
}
END_TEST

START_TEST(test_read_odd_values)
{
    redisContext *r = tkt_raw();
    tkm_client *c = tkt_client();
    char big[200];
    tkm_legacy_raw raw;
    tkm_legacy_status st;

    memset(big, '7', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[1] = '.';
    set_key(r, "keepa_tokens_left", big);
    freeReplyObject(
        tkt_cmd(r, "SET keepa_refill_rate %b", "5\0junk", (size_t)6));
    freeReplyObject(tkt_cmd(r, "HSET keepa_token_timestamp a 1"));
    set_key(r, "keepa_worker_last_heartbeat", "nan");
    ck_assert_int_eq(tkm_legacy_read(c, &raw), TKM_OK);
    ck_assert(raw.value[TKM_LEGACY_TOKENS_LEFT].present);
    ck_assert_uint_eq(raw.value[TKM_LEGACY_TOKENS_LEFT].len, sizeof(big) - 1);
    ck_assert_uint_eq(strlen(raw.value[TKM_LEGACY_TOKENS_LEFT].text),
                      TKM_LEGACY_VALUE_MAX);
    ck_assert_uint_eq(raw.value[TKM_LEGACY_REFILL_RATE].len, 6);
    /* A key of another type reads as absent (MGET's nil). */
    ck_assert(!raw.value[TKM_LEGACY_TOKEN_TIMESTAMP].present);
    st = project(&raw, 0);
    ck_assert_int_eq(st.check[TKM_LEGACY_TOKENS_LEFT], TKM_LEGACY_INVALID);
    ck_assert_int_eq(st.check[TKM_LEGACY_REFILL_RATE], TKM_LEGACY_INVALID);
    ck_assert_int_eq(st.check[TKM_LEGACY_TOKEN_TIMESTAMP], TKM_LEGACY_MISSING);
    ck_assert_int_eq(st.check[TKM_LEGACY_HEARTBEAT], TKM_LEGACY_INVALID);
    ck_assert_int_eq(st.check[TKM_LEGACY_RECHARGE_ACTIVE], TKM_LEGACY_MISSING);
    tkm_client_free(c);
    redisFree(r);
}
END_TEST

START_TEST(test_read_redis_down)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_legacy_raw raw;
    int64_t t0;

    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s.gone",
             tkt_server.sock);
    c = tkt_open(&o);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_legacy_read(c, &raw), TKM_EREDIS);
    ck_assert(tkt_now_ms() - t0 < 1000);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "cannot connect"));
    tkm_client_free(c);
}
END_TEST

/* What the collectd plugin does each interval is one round trip, for either
 * layout, however many workers the pool has. */
START_TEST(test_plugin_read_round_trips)
{
    tkm_client *reader = tkt_client();
    tkm_pool_status st;
    tkm_legacy_raw raw;
    int64_t trips;

    tkt_sync(reader, 100, 5, -1, -1);
    for (int i = 0; i < 50; i++) {
        tkm_options w = tkt_options();
        tkm_client *c;
        snprintf(w.worker_id, sizeof(w.worker_id), "w%d", i);
        c = tkt_open(&w);
        ck_assert_int_eq(i % 5 ? tkm_heartbeat(c, "loop")
                               : tkm_heartbeat_busy(c, "db", 60),
                         TKM_OK);
        tkm_client_free(c);
    }
    ck_assert_int_eq(tkm_status(reader, &st), TKM_OK); /* loads the script */
    ck_assert_int_eq(tkm_legacy_read(reader, &raw), TKM_OK);
    for (int i = 0; i < 3; i++) {
        trips = tkm_client_round_trips(reader);
        ck_assert_int_eq(tkm_status(reader, &st), TKM_OK);
        ck_assert_int_eq(tkm_client_round_trips(reader) - trips, 1);
        ck_assert_int_eq(st.workers_total, 50);
        ck_assert_int_eq(st.workers_alive, 50);
        ck_assert_int_ge(st.heartbeat_age_ms, 0);
        trips = tkm_client_round_trips(reader);
        ck_assert_int_eq(tkm_legacy_read(reader, &raw), TKM_OK);
        ck_assert_int_eq(tkm_client_round_trips(reader) - trips, 1);
    }
    tkm_client_free(reader);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("legacy");

    tkt_add_tests(tkt_tcase(s, "parse", 0), test_parse_double, NULL);
    tkt_add_tests(tkt_tcase(s, "project", 0), test_project_full,
                  test_project_discrete_minutes, test_project_capacity,
                  test_project_missing, test_project_garbage,
                  test_project_absurd, test_project_cut_values,
                  test_project_args, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "read", 30), test_read_redis,
                  test_read_odd_values, test_read_redis_down,
                  test_plugin_read_round_trips, NULL);
    return tkt_run_suite(s, 0);
}
