/* The wait queue (issue 18), against a real redis-server with several
 * processes: one line per pool shared by every waiter, first come first
 * served within a class, classes sharing tokens by weight, large calls not
 * starved by small ones (the seed's failure 19), dead waiters passed and
 * freed, a try that never passes a line and writes nothing, a reset under
 * waiters, and the bad inputs.  Timing bounds are generous: the figures are
 * in bench_policy. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

/* What a child waiter reports through its pipe. */
typedef struct result {
    int rc;               /* of the last call */
    int granted;          /* the last acquire's */
    int reason;           /* the last acquire's */
    int64_t at_ms;        /* monotonic (shared by the processes) at grant */
    int64_t trips;        /* Redis round trips in all */
    int64_t grants;       /* loops: grants made */
    int64_t ticket_order; /* its place when it joined (waiters before it) */
} result;

typedef struct child {
    pid_t pid;
    int fd;
} child;

/* What a child does with its own client, filling *r. */
typedef void (*child_fn)(tkm_client *c, const void *arg, result *r);

static child spawn(const tkm_options *o, child_fn fn, const void *arg)
{
    int p[2];
    child ch = {-1, -1};

    ck_assert_int_eq(pipe(p), 0);
    ch.pid = fork();
    ck_assert_int_ge(ch.pid, 0);
    if (ch.pid == 0) {
        tkm_client *c = NULL;
        result r;
        memset(&r, 0, sizeof(r));
        close(p[0]);
        if (tkm_client_open(o, &c) != TKM_OK)
            _exit(3);
        fn(c, arg, &r);
        r.trips = tkm_client_round_trips(c);
        if (write(p[1], &r, sizeof(r)) != sizeof(r))
            _exit(2);
        tkm_client_free(c);
        _exit(0);
    }
    close(p[1]);
    ch.fd = p[0];
    return ch;
}

static result reap(child ch)
{
    result r;
    int status;

    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(read(ch.fd, &r, sizeof(r)), sizeof(r));
    close(ch.fd);
    waitpid(ch.pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return r;
}

/* One blocking acquire of *(int64_t *)arg tokens (wait up to 20 s). */
static void one_acquire(tkm_client *c, const void *arg, result *r)
{
    tkm_grant g;

    r->rc = tkm_acquire(c, *(const int64_t *)arg, 20000, &g);
    r->granted = g.granted;
    r->reason = (int)g.reason;
    r->at_ms = tkt_now_ms();
}

static int64_t waiters(tkm_client *c)
{
    tkm_pool_status st;

    return tkm_status(c, &st) == TKM_OK ? st.queue_waiters : -1;
}

typedef struct count_arg {
    tkm_client *c;
    int64_t n;
} count_arg;

static int has_waiters(void *arg)
{
    count_arg *a = arg;

    return waiters(a->c) >= a->n;
}

/* Wait until the line holds n waiters (fails the test after 5 s). */
static void await_waiters(tkm_client *c, int64_t n)
{
    count_arg a = {c, n};

    ck_assert_msg(tkt_wait_until(has_waiters, &a, 5000, 10),
                  "the line holds %lld waiters, not %lld",
                  (long long)waiters(c), (long long)n);
}

/* The defaults but timings: a refill every `period_ms`, a waiter's sleep
 * cut in slices of 100 ms (so that its end is seen promptly). */
static tkm_options timed(int64_t period_ms)
{
    tkm_options o = tkt_options();

    o.bucket.refill_period_ms = period_ms;
    o.heartbeat.wait_slice_ms = 100;
    return o;
}

/* ---- order ----------------------------------------------------------- */

#define FIFO 6

/* Equal costs (10, a refill's worth; the default recharge makes it a
 * grant every second refill): the grants come in ticket order, and nobody
 * wakes for nothing (a herd would cost each waiter a try per tick). */
START_TEST(test_fifo_within_class)
{
    tkm_options o = timed(300);
    tkm_client *c = tkt_open(&o);
    child ch[FIFO];
    result r[FIFO];
    int64_t cost = 10;

    tkt_sync_exact(c, 0, 10, 200, -1);
    for (int i = 0; i < FIFO; i++) {
        tkm_options mine = o;
        snprintf(mine.worker_id, sizeof(mine.worker_id), "fifo%d", i);
        ch[i] = spawn(&mine, one_acquire, &cost);
        await_waiters(c, i + 1);
    }
    for (int i = 0; i < FIFO; i++) {
        r[i] = reap(ch[i]);
        ck_assert_int_eq(r[i].rc, TKM_OK);
        ck_assert_msg(r[i].granted, "waiter %d: %s", i,
                      tkm_reason_str((tkm_reason)r[i].reason));
    }
    for (int i = 1; i < FIFO; i++)
        ck_assert_msg(r[i].at_ms > r[i - 1].at_ms,
                      "waiter %d granted before waiter %d", i, i - 1);
    for (int i = 0; i < FIFO; i++)
        /* A try, a heartbeat per slice second, the grant: never one try per
         * tick for each waiter ahead (the herd: 6 waiters, 6 ticks). */
        ck_assert_int_le(r[i].trips, 4 + (r[i].at_ms - r[0].at_ms) / 1000 + 4);
    ck_assert_int_eq(waiters(c), 0);
    tkm_client_free(c);
}
END_TEST

/* Loops of acquire + complete for `ms` milliseconds, in the client's class;
 * r->grants counts them. */
static void loop_for(tkm_client *c, const void *arg, result *r)
{
    int64_t end = tkt_now_ms() + *(const int64_t *)arg;

    while (tkt_now_ms() < end) {
        tkm_grant g;
        r->rc = tkm_acquire(
            c, 5, end - tkt_now_ms() > 0 ? end - tkt_now_ms() : 0, &g);
        if (r->rc != TKM_OK)
            return;
        if (!g.granted)
            break;
        r->rc = tkm_complete(c, g.id, 5, NULL, NULL);
        if (r->rc != TKM_OK)
            return;
        r->grants++;
    }
}

#define PER_CLASS 3

/* Two classes, weights 3 and 1, both saturated for 40 refills: the
 * heavier one gets about three quarters of the tokens, the lighter one is
 * never starved. */
START_TEST(test_weights_honoured)
{
    tkm_options o = timed(200);
    tkm_client *c;
    child ch[2 * PER_CLASS];
    int64_t grants[2] = {0, 0}, run_ms = 40 * 200;

    ck_assert_int_eq(tkm_options_set(&o, "queue.classes",
                                     "interactive=3,backfill=1", NULL, 0),
                     TKM_OK);
    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 20, 100, -1);
    for (int i = 0; i < 2 * PER_CLASS; i++) {
        tkm_options mine = o;
        snprintf(mine.worker_id, sizeof(mine.worker_id), "w%d", i);
        ck_assert_int_eq(tkm_options_set(&mine, "queue.class",
                                         i % 2 ? "backfill" : "interactive",
                                         NULL, 0),
                         TKM_OK);
        ch[i] = spawn(&mine, loop_for, &run_ms);
    }
    for (int i = 0; i < 2 * PER_CLASS; i++) {
        result r = reap(ch[i]);
        ck_assert_int_eq(r.rc, TKM_OK);
        grants[i % 2] += r.grants;
    }
    /* 40 refills of 20 tokens: 160 grants of 5 (less the last ones). */
    ck_assert_int_ge(grants[0] + grants[1], 100);
    ck_assert_msg(grants[0] * 100 >= 60 * (grants[0] + grants[1]) &&
                      grants[0] * 100 <= 88 * (grants[0] + grants[1]),
                  "interactive %lld, backfill %lld grants: not about 3:1",
                  (long long)grants[0], (long long)grants[1]);
    tkm_client_free(c);
}
END_TEST

/* ---- large calls (the seed's failure 19) ---------------------------- */

/* Small callers saturating the pool, with the default floor and recharge
 * (cheap calls may leave recharge at 20, others wait for 50): a call of 100
 * arriving among them is granted in the time its tokens take (5 refills),
 * not starved by bursts it never catches; the small ones keep going
 * meanwhile, behind it or where they do not delay it. */
START_TEST(test_large_call_not_starved)
{
    tkm_options o = timed(250);
    tkm_client *c = tkt_open(&o);
    child small[4], big;
    int64_t run_ms = 30 * 250, big_cost = 100, t0;
    result rb;

    tkt_sync_exact(c, 0, 20, 100, -1);
    for (int i = 0; i < 4; i++) {
        tkm_options mine = o;
        snprintf(mine.worker_id, sizeof(mine.worker_id), "small%d", i);
        small[i] = spawn(&mine, loop_for, &run_ms);
    }
    tkt_sleep_ms(5 * 250); /* the small ones own the pool */
    t0 = tkt_now_ms();
    big = spawn(&o, one_acquire, &big_cost);
    rb = reap(big);
    ck_assert_int_eq(rb.rc, TKM_OK);
    ck_assert_msg(rb.granted, "the call of 100 was not granted: %s",
                  tkm_reason_str((tkm_reason)rb.reason));
    /* 100 tokens are 5 refills, the recharge band 2 or 3 more, the line
     * ahead of it a few: 20 refills is generous, and far from starved. */
    ck_assert_int_le(rb.at_ms - t0, 20 * 250);
    for (int i = 0; i < 4; i++) {
        result r = reap(small[i]);
        ck_assert_int_eq(r.rc, TKM_OK);
        ck_assert_int_gt(r.grants, 3);
    }
    tkm_client_free(c);
}
END_TEST

/* ---- dead waiters ---------------------------------------------------- */

/* A waiter SIGKILLed in line: the one behind it is granted when its own
 * turn comes (the dead one is passed, not waited for), and the dead one's
 * ticket is gone within bucket.lease_ttl_s. */
START_TEST(test_abandoned_ticket)
{
    tkm_options o = timed(300);
    tkm_client *c;
    child dead, live;
    result r;
    int64_t cost = 10, t0;
    tkm_queue_class *q = NULL;
    size_t n = 0;
    redisContext *raw;
    redisReply *rep;

    o.bucket.lease_ttl_s = 2;
    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 10, 250, -1);
    dead = spawn(&o, one_acquire, &cost);
    await_waiters(c, 1);
    live = spawn(&o, one_acquire, &cost);
    await_waiters(c, 2);
    t0 = tkt_now_ms();
    kill(dead.pid, SIGKILL);
    waitpid(dead.pid, NULL, 0);
    close(dead.fd);
    r = reap(live);
    ck_assert_int_eq(r.rc, TKM_OK);
    ck_assert_int_eq(r.granted, 1);
    /* Its turn was the second refill (0.55 s); the dead one's grace is
     * 0.25 s: far less than the ticket's 2 s life. */
    ck_assert_int_lt(r.at_ms - t0, 1800);
    ck_assert_int_eq(tkm_queue_status(c, NULL, &q, &n), TKM_OK);
    ck_assert_str_eq(q[0].name, "default");
    ck_assert_int_eq(q[0].waiters, 0); /* the dead one is not counted */
    ck_assert_int_eq(q[0].absent, 1);  /* but kept until it expires */
    tkm_queue_status_free(q);
    tkt_sleep_ms(2000 - (tkt_now_ms() - t0) + 300);
    ck_assert_int_eq(tkm_queue_status(c, NULL, &q, &n), TKM_OK);
    ck_assert_int_eq(q[0].absent, 0);
    tkm_queue_status_free(q);
    /* The next decision that writes drops it: the key goes with it. */
    tkt_sync(c, 100, 10, -1, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    raw = tkt_raw();
    rep = tkt_cmd(raw, "EXISTS tokenmgr:{t}:queue");
    ck_assert_int_eq(rep->integer, 0);
    freeReplyObject(rep);
    redisFree(raw);
    tkm_client_free(c);
}
END_TEST

/* ---- try, reset ------------------------------------------------------ */

/* Everything the pool holds, as text, to compare before and after. */
static void pool_dump(char *buf, size_t len)
{
    static const char *const keys[] = {"bucket", "leases", "queue"};
    redisContext *raw = tkt_raw();
    size_t n = 0;

    buf[0] = '\0';
    for (size_t k = 0; k < 3; k++) {
        redisReply *r = tkt_cmd(raw, "HGETALL tokenmgr:{t}:%s", keys[k]);
        for (size_t i = 0; i < r->elements && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s ", r->element[i]->str);
        freeReplyObject(r);
    }
    redisFree(raw);
}

/* With a waiter in line, a try is refused even when the balance would
 * allow it, says so and how long the line would take, and writes nothing;
 * the waiter is then served first. */
START_TEST(test_try_refused_while_line)
{
    tkm_options o = timed(400);
    tkm_client *c;
    child w;
    int64_t cost = 10;
    tkm_grant g;
    char before[4096], after[4096];
    result r;

    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 10, 350, -1);
    w = spawn(&o, one_acquire, &cost);
    await_waiters(c, 1);
    tkt_sync(c, 30, 10, 350, -1); /* tokens for both, before its turn */
    pool_dump(before, sizeof(before));
    ck_assert_int_eq(tkm_try_acquire(c, 5, &g), TKM_OK);
    pool_dump(after, sizeof(after));
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_LINE_AHEAD);
    ck_assert_str_eq(tkm_reason_str(g.reason), "line_ahead");
    ck_assert_int_gt(g.retry_after_ms, 0);
    ck_assert_int_le(g.retry_after_ms, 400);
    ck_assert_str_eq(before, after);
    r = reap(w);
    ck_assert_int_eq(r.granted, 1);
    /* The line is empty again: a try goes. */
    ck_assert_int_eq(tkt_acquire(c, 5).granted, 1);
    tkm_client_free(c);
}
END_TEST

/* A pool reset while a waiter holds a ticket: the waiter's next attempt
 * finds no state and answers need_sync (no crash, no stale place). */
START_TEST(test_reset_with_waiters)
{
    tkm_options o = timed(1000);
    tkm_client *c = tkt_open(&o);
    child w;
    int64_t cost = 10;
    result r;

    tkt_sync_exact(c, 0, 10, 900, -1);
    w = spawn(&o, one_acquire, &cost);
    await_waiters(c, 1);
    ck_assert_int_eq(tkm_reset_pool(c, 0, NULL), TKM_OK);
    r = reap(w);
    ck_assert_int_eq(r.rc, TKM_OK);
    ck_assert_int_eq(r.granted, 0);
    ck_assert_int_eq(r.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_eq(waiters(c), 0);
    tkm_client_free(c);
}
END_TEST

/* ---- status ---------------------------------------------------------- */

/* Waiters and the oldest one's wait per class, in the status, its JSON and
 * the command's text. */
START_TEST(test_status_per_class)
{
    tkm_options o = timed(3000);
    tkm_client *c;
    child w[3];
    int64_t cost = 10;
    tkm_queue_class *q = NULL;
    tkm_pool_status st;
    size_t n = 0;
    char *json = NULL;
    const tkt_output *out;

    ck_assert_int_eq(
        tkm_options_set(&o, "queue.classes", "interactive=3", NULL, 0), TKM_OK);
    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 10, 2900, -1);
    for (int i = 0; i < 3; i++) {
        tkm_options mine = o;
        if (i == 2)
            ck_assert_int_eq(
                tkm_options_set(&mine, "queue.class", "interactive", NULL, 0),
                TKM_OK);
        w[i] = spawn(&mine, one_acquire, &cost);
        await_waiters(c, i + 1);
    }
    tkt_sleep_ms(300);
    ck_assert_int_eq(tkm_queue_status(c, &st, &q, &n), TKM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(q[0].name, "default");
    ck_assert_int_eq(q[0].weight, 1);
    ck_assert_int_eq(q[0].waiters, 2);
    ck_assert_int_eq(q[0].tokens, 20);
    ck_assert_int_ge(q[0].oldest_wait_ms, 300);
    ck_assert_str_eq(q[1].name, "interactive");
    ck_assert_int_eq(q[1].weight, 3);
    ck_assert_int_eq(q[1].waiters, 1);
    ck_assert_int_eq(st.queue_waiters, 3);
    ck_assert_int_eq(st.queue_oldest_wait_ms, q[0].oldest_wait_ms);
    tkm_queue_status_free(q);
    ck_assert_int_eq(tkm_status_json(c, &json), TKM_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"queue_waiters\":3"));
    ck_assert_ptr_nonnull(strstr(json, "\"queue\":[{\"class\":\"default\","
                                       "\"weight\":1,\"waiters\":2,"
                                       "\"tokens\":20,\"oldest_wait_s\":"));
    ck_assert_ptr_nonnull(
        strstr(json, "{\"class\":\"interactive\",\"weight\":3,\"waiters\":1,"));
    tkm_free(json);
    setenv("TOKENMGR_REDIS_URL", o.redis_url, 1);
    setenv("TOKENMGR_POOL", "t", 1);
    out = tkt_cli("status", NULL);
    ck_assert_int_eq(out->status, 0);
    ck_assert_msg(strstr(out->out, "queue      default (weight 1): 2 waiting "
                                   "for 20 tokens, oldest for ") != NULL,
                  "%s", out->out);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(reap(w[i]).granted, 1);
    tkm_client_free(c);
}
END_TEST

/* ---- bad input ------------------------------------------------------- */

START_TEST(test_bad_classes)
{
    tkm_options o = tkt_options();
    tkm_client *c = NULL;
    tkm_acquire_opts ao = {"nosuch"};
    tkm_grant g;
    char err[512];

    /* Weights 0, negative, not numbers; names; duplicates. */
    ck_assert_int_eq(
        tkm_options_set(&o, "queue.classes", "a=0", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_str_eq(err, "queue.classes: 'a=0': the weight of class a must "
                          "be a whole number in 1..1000");
    ck_assert_int_eq(
        tkm_options_set(&o, "queue.classes", "a=-2", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_int_eq(
        tkm_options_set(&o, "queue.classes", "a=x", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_int_eq(
        tkm_options_set(&o, "queue.classes", "a b=1", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "is not name=weight"));
    ck_assert_int_eq(tkm_options_set(&o, "queue.classes", "a=1,a=2", NULL, 0),
                     TKM_OK);
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_str_eq(err, "queue.classes names class a twice");

    /* An unknown class: the client's, or a call's. */
    o = tkt_options();
    ck_assert_int_eq(tkm_options_set(&o, "queue.class", "gold", NULL, 0),
                     TKM_OK);
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    ck_assert_str_eq(tkm_errstr(c), "queue.class 'gold' is not a class of "
                                    "queue.classes (nor \"default\")");
    tkm_client_free(c);
    setenv("TOKENMGR_QUEUE_CLASSES", "gold=2,lead=1", 1);
    o = tkt_options();
    ck_assert_int_eq(tkm_options_from_env(&o, err, sizeof(err)), TKM_OK);
    unsetenv("TOKENMGR_QUEUE_CLASSES");
    ck_assert_int_eq(o.queue.nclasses, 2);
    c = tkt_open(&o);
    tkt_sync(c, 100, 10, -1, -1);
    ck_assert_int_eq(tkm_acquire_ex(c, 5, 1000, &ao, &g), TKM_ECONFIG);
    ck_assert_str_eq(tkm_errstr(c), "queue class 'nosuch' is not one of "
                                    "queue.classes (nor \"default\")");
    ck_assert_int_eq(g.granted, 0);
    ao.queue_class = "lead";
    ck_assert_int_eq(tkm_acquire_ex(c, 5, 1000, &ao, &g), TKM_OK);
    ck_assert_int_eq(g.granted, 1);
    tkm_client_free(c);
}
END_TEST

/* The class list changes while waiters hold tickets: their tickets are
 * served in their place, and status names their class (weight unknown to
 * the new configuration). */
START_TEST(test_class_list_changes)
{
    tkm_options old = timed(500), now = timed(500);
    tkm_client *c;
    child w;
    int64_t cost = 10;
    tkm_queue_class *q = NULL;
    size_t n = 0;
    result r;
    tkm_grant g;

    ck_assert_int_eq(tkm_options_set(&old, "queue.classes", "gold=2", NULL, 0),
                     TKM_OK);
    ck_assert_int_eq(tkm_options_set(&old, "queue.class", "gold", NULL, 0),
                     TKM_OK);
    c = tkt_open(&now);
    tkt_sync_exact(c, 0, 10, 450, -1);
    w = spawn(&old, one_acquire, &cost);
    await_waiters(c, 1);
    ck_assert_int_eq(tkm_queue_status(c, NULL, &q, &n), TKM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(q[1].name, "gold");
    ck_assert_int_eq(q[1].weight, 0);
    ck_assert_int_eq(q[1].waiters, 1);
    tkm_queue_status_free(q);
    /* A newcomer of the new configuration waits behind it. */
    ck_assert_int_eq(tkm_acquire(c, 10, 5000, &g), TKM_OK);
    ck_assert_int_eq(g.granted, 1);
    r = reap(w);
    ck_assert_int_eq(r.granted, 1);
    ck_assert_int_lt(r.at_ms, tkt_now_ms());
    tkm_client_free(c);
}
END_TEST

/* A queue key written by something else: a clear error, no grant, nothing
 * changed; reset cures it. */
START_TEST(test_queue_key_wrong_type)
{
    tkm_client *c = tkt_client_synced(100, 10, -1, -1);
    tkm_grant g;

    tkt_do("SET tokenmgr:{t}:queue garbage");
    ck_assert_int_eq(tkm_try_acquire(c, 5, &g), TKM_ESTATE);
    ck_assert_msg(strstr(tkm_errstr(c), "tokenmgr:{t}:queue is not a hash") !=
                      NULL,
                  "%s", tkm_errstr(c));
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(tkm_acquire(c, 5, 1000, &g), TKM_ESTATE);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(tkm_reset_pool(c, 0, NULL), TKM_OK);
    tkt_sync(c, 100, 10, -1, -1);
    ck_assert_int_eq(tkt_acquire(c, 5).granted, 1);
    tkm_client_free(c);
}
END_TEST

/* A waiter whose turn is later than it would wait leaves at once, holding
 * no place. */
START_TEST(test_too_long_holds_no_place)
{
    tkm_options o = timed(1000);
    tkm_client *c = tkt_open(&o);
    tkm_grant g;

    /* 250 tokens from 0, the deficit limit -180: 7 refills at least. */
    tkt_sync_exact(c, 0, 10, 900, -1);
    ck_assert_int_eq(tkm_acquire(c, 250, 2000, &g), TKM_OK);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_WAIT_TOO_LONG);
    ck_assert_int_gt(g.retry_after_ms, 2000);
    ck_assert_int_eq(waiters(c), 0);
    tkm_client_free(c);
}
END_TEST

/* A waiter whose wait is canceled (tkm_client_set_cancel, raised by a
 * signal 300 ms in) takes its ticket out of the line as it returns: the
 * waiter behind it is not held up by it, even for the grace of an absent
 * one, and nothing of it is left to expire. */
static volatile sig_atomic_t cancel_flag;

static void raise_cancel(int sig)
{
    (void)sig;
    cancel_flag = 1;
}

static void canceled_acquire(tkm_client *c, const void *arg, result *r)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = raise_cancel; /* no SA_RESTART: the sleep ends */
    sigaction(SIGALRM, &sa, NULL);
    tkm_client_set_cancel(c, &cancel_flag);
    ualarm(300000, 0);
    one_acquire(c, arg, r);
}

START_TEST(test_canceled_leaves)
{
    tkm_options o = timed(3000);
    tkm_client *c;
    child gone, live;
    result r;
    int64_t cost = 10;
    tkm_queue_class *q = NULL;
    size_t n = 0;

    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 10, 2900, -1);
    gone = spawn(&o, canceled_acquire, &cost);
    await_waiters(c, 1);
    live = spawn(&o, one_acquire, &cost);
    await_waiters(c, 2);
    r = reap(gone);
    ck_assert_int_eq(r.rc, TKM_ECANCELED);
    ck_assert_int_eq(r.granted, 0);
    ck_assert_int_eq(tkm_queue_status(c, NULL, &q, &n), TKM_OK);
    ck_assert_int_eq(q[0].waiters, 1);
    ck_assert_int_eq(q[0].absent, 0);
    tkm_queue_status_free(q);
    r = reap(live);
    ck_assert_int_eq(r.granted, 1);
    ck_assert_int_eq(waiters(c), 0);
    tkm_client_free(c);
}
END_TEST

/* Redis hangs while a waiter sleeps in line: its heartbeat times out and
 * the wait ends with TKM_EREDIS after that one timeout, without waiting as
 * long again to leave the line (its ticket expires by itself). */
START_TEST(test_hung_redis_ends_wait)
{
    tkm_options o = timed(10000);
    tkm_client *c;
    child ch;
    result r;
    int64_t cost = 10, t0;
    pid_t dog;

    /* The defaults but timings: a 10 s period, a waiter beating every
     * second, a 2 s Redis timeout. */
    o.heartbeat.stale_after_s = 4;
    o.timeout_ms = 2000;
    c = tkt_open(&o);
    tkt_sync_exact(c, 0, 10, 9900, -1);
    ch = spawn(&o, one_acquire, &cost);
    await_waiters(c, 1);
    /* Whatever fails below, the server is continued within 10 s. */
    dog = fork();
    ck_assert_int_ge(dog, 0);
    if (dog == 0) {
        sleep(10);
        kill(tkt_server.pid, SIGCONT);
        _exit(0);
    }
    kill(tkt_server.pid, SIGSTOP);
    t0 = tkt_now_ms();
    r = reap(ch);
    kill(tkt_server.pid, SIGCONT);
    kill(dog, SIGKILL);
    waitpid(dog, NULL, 0);
    ck_assert_int_eq(r.rc, TKM_EREDIS);
    /* Its next beat within a second, then the 2 s timeout (3 s at most);
     * a leave would have added 2 s more (4 s at least). */
    ck_assert_int_lt(r.at_ms - t0, 3900);
    tkm_client_free(c);
}
END_TEST

/* ---- the next call's place ------------------------------------------- */

/* The defaults but timings (a 1 s period), worker `id`: its grants come
 * from an empty bucket at the ticks, in line. */
static tkm_client *worker(const char *id, tkm_options *o)
{
    *o = timed(1000);
    snprintf(o->worker_id, sizeof(o->worker_id), "%s", id);
    ck_assert_int_eq(tkm_options_set(o, "queue.classes", "bulk=1", NULL, 0),
                     TKM_OK);
    return tkt_open(o);
}

/* A blocking acquire of `cost` that is granted (within 10 s). */
static tkm_grant granted(tkm_client *c, int64_t cost, const char *cls)
{
    tkm_acquire_opts ao = {.queue_class = cls};
    tkm_grant g;

    ck_assert_msg(tkm_acquire_ex(c, cost, 10000, &ao, &g) == TKM_OK, "%s",
                  tkm_errstr(c));
    ck_assert_int_eq(g.granted, 1);
    return g;
}

/* One class's present and absent waiters, from status. */
static void line_of(tkm_client *c, const char *cls, int64_t *present,
                    int64_t *absent)
{
    tkm_queue_class *q = NULL;
    size_t n = 0;

    *present = *absent = 0;
    ck_assert_int_eq(tkm_queue_status(c, NULL, &q, &n), TKM_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(q[i].name, cls) == 0) {
            *present = q[i].waiters;
            *absent = q[i].absent;
        }
    tkm_queue_status_free(q);
}

/* A worker whose call waited in line is back for another as soon as it is
 * done: its completion takes that call's place (status counts it waiting)
 * and the next call is granted at its turn in one round trip (place, grant
 * and complete were three).  The place also serves a call of another cost:
 * the turn holds for a cheaper one, and a dearer one goes ahead of a worker
 * who came after the place. */
START_TEST(test_completion_takes_next_place)
{
    tkm_options o;
    tkm_client *c = worker("a", &o);
    int64_t trips, present, absent, t0, cost = 10, mine;
    tkm_grant g;
    tkm_options ob;
    child b;
    result r;

    tkt_sync_exact(c, 0, 10, 900, -1);
    g = granted(c, 10, NULL);
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    /* The balance is 0 and recharging: the next call (10) waits for 20. */
    ck_assert_int_eq(waiters(c), 1);
    t0 = tkt_now_ms();
    trips = tkm_client_round_trips(c);
    g = granted(c, 10, NULL);
    ck_assert_int_eq(tkm_client_round_trips(c) - trips, 1);
    ck_assert_int_ge(tkt_now_ms() - t0, 900); /* two ticks away */
    line_of(c, "default", &present, &absent);
    ck_assert_int_eq(present + absent, 0);
    /* Again, the next call costing 5: the place serves it. */
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(waiters(c), 1);
    trips = tkm_client_round_trips(c);
    g = granted(c, 5, NULL);
    ck_assert_int_eq(tkm_client_round_trips(c) - trips, 1);
    line_of(c, "default", &present, &absent);
    ck_assert_int_eq(present + absent, 0);
    /* And a dearer one (15: recharge to 50) with worker b in line behind
     * the place: it keeps the place, and goes first. */
    ck_assert_int_eq(tkm_complete(c, g.id, 5, NULL, NULL), TKM_OK);
    ck_assert_int_eq(waiters(c), 1);
    tkm_client_free(worker("b", &ob));
    b = spawn(&ob, one_acquire, &cost);
    await_waiters(c, 2);
    g = granted(c, 15, NULL);
    mine = tkt_now_ms();
    ck_assert_int_eq(tkm_complete(c, g.id, 15, NULL, NULL), TKM_OK);
    r = reap(b);
    ck_assert_int_eq(r.granted, 1);
    ck_assert_int_gt(r.at_ms, mine);
    tkm_client_free(c);
}
END_TEST

/* A place for a call that does not come: a call of another class does not
 * keep it (nothing of it is left, present or absent), and a client freed
 * with one takes it out of the line. */
START_TEST(test_place_not_used)
{
    tkm_options o;
    tkm_client *c = worker("a", &o), *tool;
    int64_t present, absent;
    tkm_grant g;

    tkt_sync_exact(c, 0, 10, 900, -1);
    g = granted(c, 10, NULL);
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(waiters(c), 1);
    g = granted(c, 10, "bulk");
    line_of(c, "default", &present, &absent);
    ck_assert_int_eq(present + absent, 0);
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    line_of(c, "bulk", &present, &absent);
    ck_assert_int_eq(present, 1); /* its next bulk call's */
    snprintf(o.worker_id, sizeof(o.worker_id), "tool");
    tool = tkt_open(&o);
    tkm_client_set_heartbeats(tool, 0);
    tkm_client_free(c);
    ck_assert_int_eq(waiters(tool), 0);
    line_of(tool, "bulk", &present, &absent);
    ck_assert_int_eq(absent, 0);
    tkm_client_free(tool);
}
END_TEST

/* No place is taken for a call that did not wait (though its next call
 * would: the balance is 0 and recharging after it), nor when the next call
 * would be granted at once (the tokens stay for whoever asks first). */
START_TEST(test_no_place_without_a_wait)
{
    tkm_options o;
    tkm_client *c = worker("a", &o);
    tkm_grant g;
    int64_t trips;

    tkt_sync_exact(c, 10, 10, 900, -1);
    trips = tkm_client_round_trips(c);
    g = granted(c, 10, NULL);
    ck_assert_int_eq(tkm_client_round_trips(c) - trips, 1); /* no wait */
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(waiters(c), 0);
    tkt_sync(c, 0, 10, 900, -1);
    g = granted(c, 10, NULL); /* in line until the tick */
    tkt_sync(c, 1000, 10, 900, -1);
    ck_assert_int_eq(tkm_complete(c, g.id, 10, NULL, NULL), TKM_OK);
    ck_assert_int_eq(waiters(c), 0);
    tkm_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue");

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tkt_redis_tcase(s, "order", 60), test_fifo_within_class,
                  test_weights_honoured, test_large_call_not_starved, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "waiters", 60), test_abandoned_ticket,
                  test_try_refused_while_line, test_reset_with_waiters,
                  test_status_per_class, test_too_long_holds_no_place,
                  test_canceled_leaves, test_hung_redis_ends_wait, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "next", 60),
                  test_completion_takes_next_place, test_place_not_used,
                  test_no_place_without_a_wait, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "bad_input", 30), test_bad_classes,
                  test_class_list_changes, test_queue_key_wrong_type, NULL);
    return tkt_run_suite(s, 0);
}
