/* Worker liveness against a real redis-server: per-worker heartbeats on
 * Redis' clock, coalescing, busy periods, and the blocking acquire. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tkt.h"

/*
 * A skewed wall clock for this whole process, library included: the
 * executable's definitions interpose libc's.  Ages must not move with it,
 * because every age is computed on Redis' clock.
 */
static long skew_s;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, id, ts);

    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += skew_s;
    return rc;
}

time_t time(time_t *t)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (t != NULL)
        *t = ts.tv_sec;
    return ts.tv_sec;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;

    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

static tkm_client *worker(const char *id, int64_t min_interval_ms)
{
    tkm_options o = tkt_options();

    snprintf(o.worker_id, sizeof(o.worker_id), "%s", id);
    o.heartbeat.min_interval_ms = min_interval_ms;
    return tkt_open(&o);
}

static const tkm_worker *find(const tkm_worker *w, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i].id, id) == 0)
            return &w[i];
    }
    ck_abort_msg("worker %s not listed", id);
    return NULL;
}

static int64_t evalsha_calls(void)
{
    redisContext *r = tkt_raw();
    redisReply *rep = tkt_cmd(r, "INFO commandstats");
    const char *p = strstr(rep->str, "cmdstat_evalsha:calls=");
    char digits[32] = "0";
    int64_t n = 0;

    if (p != NULL)
        snprintf(digits, sizeof(digits), "%.*s", (int)strcspn(p + 22, ","),
                 p + 22);
    ck_assert_int_eq(tkm_parse_int(digits, 0, INT64_MAX, &n), TKM_OK);
    freeReplyObject(rep);
    redisFree(r);
    return n;
}

/* ---- heartbeats ---------------------------------------------------------- */

START_TEST(test_ages_on_redis_clock)
{
    tkm_client *a = worker("host-a:1", 0);
    tkm_client *b = worker("host-b:2", 0);
    tkm_worker *w = NULL;
    size_t n = 0;
    tkm_pool_status st;

    ck_assert_int_eq(tkm_heartbeat(a, "paginating deals p3"), TKM_OK);
    skew_s = 3600; /* b's clock is an hour fast */
    ck_assert(time(NULL) > (time_t)syscall(SYS_time, NULL) + 3000);
    ck_assert_int_eq(tkm_heartbeat(b, "batch 4/10"), TKM_OK);
    skew_s = -7200;
    ck_assert_int_eq(tkm_workers(a, &w, &n), TKM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_lt(find(w, n, "host-a:1")->heartbeat_age_ms, 1000);
    ck_assert_int_lt(find(w, n, "host-b:2")->heartbeat_age_ms, 1000);
    ck_assert_str_eq(find(w, n, "host-b:2")->phase, "batch 4/10");
    tkm_workers_free(w);
    skew_s = 0;

    /* a stops beating; b goes on: a's age grows, b's stays fresh. */
    for (int i = 0; i < 6; i++) {
        tkt_sleep_ms(250);
        ck_assert_int_eq(tkm_heartbeat(b, "batch 5/10"), TKM_OK);
    }
    ck_assert_int_eq(tkm_workers(a, &w, &n), TKM_OK);
    ck_assert_int_ge(find(w, n, "host-a:1")->heartbeat_age_ms, 1400);
    ck_assert_int_lt(find(w, n, "host-b:2")->heartbeat_age_ms, 500);
    ck_assert_str_eq(w[0].id, "host-b:2"); /* freshest first */
    tkm_workers_free(w);
    st = tkt_status(a);
    ck_assert_int_eq(st.workers_total, 2);
    ck_assert_int_eq(st.workers_alive, 2);
    ck_assert_int_lt(st.heartbeat_age_ms, 500);
    tkm_client_free(a);
    tkm_client_free(b);
}
END_TEST

/*
 * Clocks wrong either way, when beating and when reading.  A heartbeat
 * dated by a fast clock would keep a silent worker fresh (ages clamp at 0),
 * one dated by a slow clock would make a live worker look an hour dead, and
 * a reader's own clock would do the same to every worker: the seed's
 * heartbeat on the worker's clock did all of these.
 */
static void expect_ages(tkm_client *c, int64_t lo_ms, int64_t hi_ms)
{
    static const long reader_skews[] = {0, 7200, -7200};

    for (size_t i = 0; i < sizeof(reader_skews) / sizeof(reader_skews[0]);
         i++) {
        tkm_worker *w = NULL;
        size_t n = 0;
        tkm_pool_status st;
        const char *ids[] = {"host-fast:1", "host-slow:2"};

        skew_s = reader_skews[i];
        ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
        ck_assert_uint_eq(n, 2);
        for (size_t k = 0; k < 2; k++) {
            const tkm_worker *x = find(w, n, ids[k]);
            ck_assert_msg(
                x->heartbeat_age_ms >= lo_ms && x->heartbeat_age_ms <= hi_ms,
                "%s read with the clock %+ld s off: age %lld ms, "
                "not in %lld..%lld",
                ids[k], reader_skews[i], (long long)x->heartbeat_age_ms,
                (long long)lo_ms, (long long)hi_ms);
            ck_assert_int_eq(x->alive, 1);
        }
        tkm_workers_free(w);
        ck_assert_int_eq(tkm_status(c, &st), TKM_OK);
        ck_assert_msg(st.heartbeat_age_ms >= lo_ms &&
                          st.heartbeat_age_ms <= hi_ms,
                      "pool read with the clock %+ld s off: freshest age "
                      "%lld ms, not in %lld..%lld",
                      reader_skews[i], (long long)st.heartbeat_age_ms,
                      (long long)lo_ms, (long long)hi_ms);
        ck_assert_int_eq(st.workers_alive, 2);
        ck_assert_int_eq(st.workers_total, 2);
    }
    skew_s = 0;
}

START_TEST(test_skew_either_way)
{
    tkm_client *fast = worker("host-fast:1", 0);
    tkm_client *slow = worker("host-slow:2", 0);

    skew_s = 3600; /* an hour fast */
    ck_assert_int_eq(tkm_heartbeat(fast, "fast clock"), TKM_OK);
    skew_s = -3600; /* an hour slow */
    ck_assert_int_eq(tkm_heartbeat(slow, "slow clock"), TKM_OK);
    skew_s = 0;
    expect_ages(fast, 0, 999);
    /* Both fall silent: both ages grow, whatever anyone's clock says. */
    tkt_sleep_ms(1200);
    expect_ages(slow, 1150, 60000);
    tkm_client_free(fast);
    tkm_client_free(slow);
}
END_TEST

START_TEST(test_stale_worker_not_alive)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_worker *w = NULL;
    size_t n = 0;

    o.heartbeat.stale_after_s = 1;
    strcpy(o.worker_id, "w1");
    c = tkt_open(&o);
    ck_assert_int_eq(tkt_status(c).heartbeat_age_ms, -1);
    ck_assert_int_eq(tkm_heartbeat(c, "x"), TKM_OK);
    ck_assert_int_eq(tkt_status(c).workers_alive, 1);
    tkt_sleep_ms(1300);
    ck_assert_int_eq(tkt_status(c).workers_alive, 0);
    ck_assert_int_eq(tkt_status(c).workers_total, 1);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_int_eq(w[0].alive, 0);
    tkm_workers_free(w);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_coalescing)
{
    tkm_client *c = worker("tight-loop", 1000);
    int64_t before = evalsha_calls();

    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(tkm_heartbeat(c, "tight loop"), TKM_OK);
    /* The loop takes milliseconds: one write, a handful at most. */
    ck_assert_int_le(evalsha_calls() - before, 3);
    ck_assert_int_le(tkm_client_round_trips(c), 4);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_busy_until)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_worker *w = NULL;
    size_t n = 0;

    o.heartbeat.stale_after_s = 1;
    o.heartbeat.min_interval_ms = 0;
    strcpy(o.worker_id, "db-writer");
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_heartbeat_busy(c, "bulk insert", 5), TKM_OK);
    tkt_sleep_ms(1500); /* heartbeat stale, but busy */
    ck_assert_int_eq(tkt_status(c).workers_alive, 1);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_int_eq(w[0].alive, 1);
    ck_assert_int_gt(w[0].busy_until_ms, 0);
    ck_assert_int_ge(w[0].heartbeat_age_ms, 1400);
    tkm_workers_free(w);
    tkt_sleep_ms(4000); /* the 5 s have passed */
    ck_assert_int_eq(tkt_status(c).workers_alive, 0);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_int_eq(w[0].alive, 0);
    ck_assert_int_eq(w[0].busy_until_ms, -1);
    tkm_workers_free(w);
    /* A plain heartbeat ends a busy period early: once that heartbeat is
     * stale too, the worker no longer counts as alive. */
    ck_assert_int_eq(tkm_heartbeat_busy(c, "again", 60), TKM_OK);
    ck_assert_int_eq(tkm_heartbeat(c, "done"), TKM_OK);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_int_eq(w[0].busy_until_ms, -1);
    tkm_workers_free(w);
    tkt_sleep_ms(1500);
    ck_assert_int_eq(tkt_status(c).workers_alive, 0);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_retention_prunes_departed)
{
    tkm_client *c = worker("current", 0);
    redisContext *r = tkt_raw();
    redisReply *rep;
    size_t n = 0;
    tkm_worker *w = NULL;

    /* A worker last heard from two days ago. */
    freeReplyObject(tkt_cmd(r, "ZADD tokenmgr:{t}:heartbeats 1000 departed"));
    freeReplyObject(tkt_cmd(r, "HSET tokenmgr:{t}:workers departed 0|gone"));
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_uint_eq(n, 0); /* outside the retention: not listed */
    tkm_workers_free(w);
    ck_assert_int_eq(tkm_heartbeat(c, "x"), TKM_OK);
    rep = tkt_cmd(r, "HEXISTS tokenmgr:{t}:workers departed");
    ck_assert_int_eq(rep->integer, 0);
    freeReplyObject(rep);
    rep = tkt_cmd(r, "ZCARD tokenmgr:{t}:heartbeats");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_bad_heartbeat_input)
{
    tkm_options o = tkt_options();
    tkm_client *c = NULL;
    tkm_worker *w = NULL;
    size_t n = 0;
    char phase[300];

    strcpy(o.worker_id, "bad id");
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "worker id 'bad id'"));
    tkm_client_free(c);
    memset(o.worker_id, 'w', TKM_WORKER_ID_MAX + 1);
    o.worker_id[TKM_WORKER_ID_MAX] = '\0'; /* 128: the longest allowed */
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_heartbeat_busy(c, "x", -5), TKM_EINVAL);
    ck_assert_int_eq(tkm_heartbeat_busy(c, "x", 0), TKM_EINVAL);
    ck_assert_int_eq(tkm_heartbeat_busy(c, "x", 86401), TKM_EINVAL);
    /* Too long: cut at 120 bytes, back to a UTF-8 boundary; controls
     * become spaces. */
    memset(phase, 'p', 119);
    strcpy(phase + 119, "\xc3\xa9tail");
    phase[3] = '\n';
    ck_assert_int_eq(tkm_heartbeat(c, phase), TKM_OK);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_uint_eq(strlen(w[0].phase), 119);
    ck_assert_int_eq(w[0].phase[3], ' ');
    ck_assert_str_eq(w[0].id, o.worker_id);
    tkm_workers_free(w);
    tkm_client_free(c);
}
END_TEST

/* ---- blocking acquire ---------------------------------------------------- */

START_TEST(test_acquire_wakes_at_refill)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;
    int64_t t0, took;

    o.bucket.refill_period_ms = 1000;
    c = tkt_open(&o);
    tkt_sync(c, 0, 10, 600, -1);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_acquire(c, 5, 3000, &g), TKM_OK);
    took = tkt_now_ms() - t0;
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_ge(took, 550);
    ck_assert_int_lt(took, 600 + 1000); /* within one period of the refill */
    /* One try, one sleep, one try (and the heartbeats of the sleep). */
    ck_assert_int_le(tkm_client_round_trips(c), 2 + 1 + 4);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_acquire_wait_too_long_returns_at_once)
{
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    tkm_grant g;
    int64_t t0;

    tkt_sync(c, 0, 5, 30000, -1);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_acquire(c, 5, 1000, &g), TKM_OK);
    ck_assert_int_lt(tkt_now_ms() - t0, 500);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_WAIT_TOO_LONG);
    ck_assert_int_gt(g.retry_after_ms, 25000);
    /* The default limit is bucket.max_wait_s (60 s): 30 s is waited... */
    o.bucket.max_wait_s = 10;
    tkm_client_free(c);
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_acquire(c, 5, -1, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_WAIT_TOO_LONG);
    /* ...and need_sync is not a wait. */
    ck_assert_int_eq(tkm_reset(c, NULL), TKM_OK);
    ck_assert_int_eq(tkm_acquire(c, 5, 5000, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_waiting_worker_beats)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_worker *w = NULL;
    size_t n = 0;
    pid_t pid;
    int status;

    o.bucket.refill_period_ms = 3000;
    o.heartbeat.wait_slice_ms = 300;
    o.heartbeat.min_interval_ms = 0;
    o.heartbeat.stale_after_s = 1; /* in line, a beat every 250 ms */
    strcpy(o.worker_id, "waiter");
    c = tkt_open(&o);
    tkt_sync(c, 0, 10, 2500, -1);
    pid = fork();
    if (pid == 0) {
        tkm_client *me = tkt_open(&o);
        tkm_grant g;
        tkm_code rc = tkm_acquire(me, 5, 5000, &g);
        _exit(rc == TKM_OK && g.granted ? 0 : 1);
    }
    tkt_sleep_ms(1500);
    ck_assert_int_eq(tkm_workers(c, &w, &n), TKM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(w[0].phase, "waiting for tokens");
    ck_assert_int_lt(w[0].heartbeat_age_ms, 700);
    tkm_workers_free(w);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tkm_client_free(c);
}
END_TEST

#define WAITERS 4

START_TEST(test_waiters_share_one_refill)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    int out[2];
    pid_t pids[WAITERS];
    int64_t granted = 0;

    /* No floor and no recharge: every token of the refill may be granted. */
    o.bucket.soft_floor = 0;
    o.bucket.recharge_target = 0;
    o.bucket.low_cost_target = 0;
    o.bucket.refill_period_ms = 1000;
    c = tkt_open(&o);
    /* Estimates known to be exact: no reserve held for calls in flight. */
    tkt_sync_exact(c, 0, 20, 700, -1);
    ck_assert_int_eq(pipe(out), 0);
    for (int i = 0; i < WAITERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            tkm_client *me = tkt_open(&o);
            tkm_grant g;
            int64_t rec[2] = {0, 0};
            if (tkm_acquire(me, 5, 3000, &g) == TKM_OK && g.granted)
                rec[0] = 1;
            rec[1] = tkm_client_round_trips(me);
            if (write(out[1], rec, sizeof(rec)) != sizeof(rec))
                _exit(2);
            _exit(0);
        }
    }
    close(out[1]);
    for (int i = 0; i < WAITERS; i++) {
        int64_t rec[2];
        int status;
        ck_assert_int_eq(read(out[0], rec, sizeof(rec)), sizeof(rec));
        granted += rec[0];
        /* No spinning: a try, a sleep to the tick, a try, maybe one more
         * after a neighbour's jitter; plus a heartbeat per slice. */
        ck_assert_int_le(rec[1], 6);
        waitpid(pids[i], &status, 0);
    }
    close(out[0]);
    ck_assert_int_eq(granted, WAITERS); /* 20 tokens, 4 x 5 */
    ck_assert_int_eq(tkt_status(c).tokens, 0);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_redis_down_during_wait)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    int out[2];
    pid_t pid;
    int64_t rec[2];
    int status;

    o.heartbeat.wait_slice_ms = 300;
    o.heartbeat.min_interval_ms = 0;
    o.heartbeat.stale_after_s = 1; /* in line, a beat every 250 ms */
    o.timeout_ms = 300;
    c = tkt_open(&o);
    tkt_sync(c, 0, 10, 20000, -1);
    ck_assert_int_eq(pipe(out), 0);
    pid = fork();
    if (pid == 0) {
        tkm_client *me = tkt_open(&o);
        tkm_grant g;
        int64_t t0 = tkt_now_ms();
        rec[0] = tkm_acquire(me, 5, 30000, &g);
        rec[1] = tkt_now_ms() - t0;
        if (write(out[1], rec, sizeof(rec)) != sizeof(rec))
            _exit(2);
        _exit(0);
    }
    close(out[1]);
    tkt_sleep_ms(500);
    tkt_redis_kill(&tkt_server);
    ck_assert_int_eq(read(out[0], rec, sizeof(rec)), sizeof(rec));
    waitpid(pid, &status, 0);
    ck_assert_int_eq(rec[0], TKM_EREDIS);
    /* Noticed at the next slice, not at the end of the 20 s wait. */
    ck_assert_int_lt(rec[1], 3000);
    close(out[0]);
    tkm_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("heartbeat");

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tkt_redis_tcase(s, "heartbeats", 30),
                  test_ages_on_redis_clock, test_skew_either_way,
                  test_stale_worker_not_alive, test_coalescing, test_busy_until,
                  test_retention_prunes_departed, test_bad_heartbeat_input,
                  NULL);
    tkt_add_tests(tkt_redis_tcase(s, "blocking_acquire", 30),
                  test_acquire_wakes_at_refill,
                  test_acquire_wait_too_long_returns_at_once,
                  test_waiting_worker_beats, test_waiters_share_one_refill,
                  NULL);
    tkt_add_tests(tkt_own_redis_tcase(s, "redis_down", 30),
                  test_redis_down_during_wait, NULL);
    return tkt_run_suite(s, 0);
}
