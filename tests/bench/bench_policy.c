/*
 * bench_policy: how well a spending policy uses a Keepa token bucket.
 *
 * A private fake_keepa (rate 20 per 1000 ms "minute" unless --period-ms,
 * capacity 1200, starting full, latency 50-500 ms) and a private redis-server.
 * W worker threads (1, 4, 16, 64) each make calls for a fixed number of periods
 * from a realistic mix: half /deal pages (estimate 5, cost 5), half /product
 * batches of 2 ASINs with offers=40 (estimate 12 = one offers page per ASIN,
 * actual 12..48: up to x4).  Policies:
 *
 *   tokenmgr   the library: one tkm_client + tkm_keepa per thread,
 *              tkm_keepa_request with default bucket settings, one forced
 *              tkm_keepa_sync before the workers start
 *   retry429   what the official clients do: no shared budget; call, and on
 *              429 sleep refillIn from the body and retry (libcurl)
 *   seed       the original system (shared/SEED.md): check-then-act on a
 *              Redis float key (MGET, INCRBYFLOAT, revert), soft floor 20,
 *              recharge target 50 (20 for calls <= 10), max deficit -180,
 *              after each call a sync that overwrites the balance with
 *              tokensLeft; a 429 drops the call (read as "no data")
 *   ideal      the physical limit: initial balance + tokens refilled
 *
 * Per run: useful tokens (charged by the server, minus any debt left at
 * the end) over the ideal, 429s, the server's minimum balance, wait per
 * call (wall time minus the successful request's processing time) p50/p99,
 * Redis round trips per call, /token calls.
 *
 * The line (issue 18), per run: Jain's index of the tokens granted to the
 * workers (their calls' estimates), and each completed call's wait against
 * what the line ahead of it explains: the calls waiting or in flight when
 * it arrived and itself, at their actual costs, refilled at the rate, plus
 * one period and the recharge target's worth of refill; the bound is twice
 * that, and the worst wait / bound is printed.  --classes A:B splits the
 * workers in two halves, classes "interactive" (weight A) and "backfill"
 * (weight B) where the library has classes (tkm_acquire_ex), plain halves
 * otherwise: the tokens each half was granted, and the longest and the
 * mean time the second half (the lower class) went without a grant, and
 * its worst wait (8 workers of a class sharing a quarter of the tokens
 * wait about 8 of its calls' worth at that quarter: the line ahead).
 *
 *   bench_policy [--periods N] [--workers 1,4,16,64] [--initial N]
 *                [--period-ms MS] [--policy tokenmgr|retry429|seed]
 *                [--classes A:B] [--heartbeats on|off] [--max-wait S]
 *                [--mix mixed|deal] [--json FILE]
 *
 * --mix deal makes every call a /deal page (5, exact): with --classes 3:1
 * the lower class is due about once a period, so its longest drought
 * measures the line's own bound (target 3 periods), where the mixed calls
 * of the lower class come every 3.5 periods on average.
 *
 * --heartbeats off runs tokenmgr's workers as tools (no heartbeat while they
 * wait), so rt/call counts the decisions alone.  --max-wait sets
 * bucket.max_wait_s (default 600: a line of 64 saturated workers is about a
 * "minute" of this clock long, and a worker told to free itself would
 * re-queue at the back).
 *
 * --initial sets the starting balance (default: full, 1200); a low one
 * shows the steady state without the first drain of a full bucket.
 * --period-ms shortens the "minute" (default 1000), so that a long steady
 * state (60 periods: an hour of Keepa time) fits in a few seconds.
 *
 * Exit status 0 when measured (targets met or not), 1 when something could
 * not run, 2 on a bad command line.
 */
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "bench_util.h"
#include "fake_keepa.h"
#include "redis.h"
#include "tokenmgr.h"

#define PROG              "bench_policy"
#define KEY               "benchkey"
#define POOL              "policy"
#define RATE              20
#define PERIOD_MS_DEFAULT 1000

/* The fake Keepa's "minute" (--period-ms). */
static int period_ms = PERIOD_MS_DEFAULT;
#define CAPACITY        (60 * RATE)
#define LATENCY         "50-500"
#define DEAL_COST       5
#define PRODUCT_ASINS   2
#define PRODUCT_EST     (6 * PRODUCT_ASINS)
#define PRODUCT_MAX     (4 * PRODUCT_EST)
#define MAX_EST_ERROR   (PRODUCT_MAX - PRODUCT_EST)
#define MAX_DEFICIT     (-180)
#define SOFT_FLOOR      20
#define RECHARGE_TARGET 50
#define LOW_COST_MAX    10
#define LOW_COST_TARGET 20
#define MAX_WORKERS     256
#define MAX_COUNTS      8
#define BODY_MAX        (256 * 1024)
#define TARGET_UTIL     0.97
#define TARGET_JAIN     0.95
#define TARGET_DROUGHT  3 /* periods */

typedef enum policy { P_TOKENMGR, P_RETRY429, P_SEED, P_COUNT } policy;
static const char *const policy_names[P_COUNT] = {"tokenmgr", "retry429",
                                                  "seed"};

/* --classes, --heartbeats, --max-wait, --mix. */
static int class_w[2] = {0, 0}; /* 0: one class */
static int mix_deal = 0;        /* --mix deal: every call a /deal page */
static int heartbeats = 1;
static int64_t max_wait_s = 600;

/* Shared by the threads of one run. */
typedef struct run_ctx {
    policy pol;
    const char *keepa_url;
    const char *redis_url;
    const char *redis_sock;
    volatile sig_atomic_t stop;
    int nworkers;
    /* The line as the bench sees it: who is waiting or in flight since
     * when (ns, 0: nobody), with which of its calls. */
    pthread_mutex_t mu;
    int64_t *active_since;
    int64_t *active_call;
} run_ctx;

/* One call: when it started and ended, what it cost, and the calls that
 * were ahead of it when it started (ahead[ahead_off..+ahead_n] of its
 * worker, pairs of worker index and call number). */
typedef struct call_rec {
    int64_t t0, t1, proc_ns, est, actual;
    int ok;
    size_t ahead_off, ahead_n;
} call_rec;

typedef struct worker {
    pthread_t tid;
    run_ctx *run;
    int index;
    uint64_t rng, rng0; /* rng0: its first state */
    int64_t *waits;
    size_t nwaits, capwaits;
    int64_t calls, errors, dropped, trips, cut;
    int64_t
        cut_trips; /* tokenmgr: the round trips of the call cut at the stop */
    int first_denied; /* tokenmgr: its first call took more than 2 */
    char first_error[256];
    int cls; /* 0 or 1 (--classes) */
    call_rec *recs;
    size_t nrecs, caprecs;
    int64_t *ahead; /* pairs */
    size_t nahead, capahead;
} worker;

typedef struct run_result {
    policy pol;
    int workers;
    int64_t calls, errors, dropped, cut;
    int64_t charged, useful, ideal, final_balance, min_balance;
    int64_t n429, token_calls, elapsed_ms;
    double util, p50_ms, p99_ms, trips_per_call;
    double trips_done;  /* the completed calls' own round trips, per call */
    double trips_floor; /* the fewest any line could make in this run */
    int drained;
    char first_error[256];
    /* The line. */
    double jain;
    double jain_dealt; /* the same draws dealt to the fewest tokens first */
    int64_t worst_wait_ms, worst_bound_ms; /* the call of the worst ratio */
    double worst_ratio;
    int64_t max_wait_ms;  /* the longest wait of any completed call */
    double share[2];      /* --classes: tokens granted per half */
    int64_t gap_ms;       /* --classes: the second class's longest drought */
    int64_t mean_gap_ms;  /* --classes: its mean time between grants */
    int64_t low_worst_ms; /* --classes: the second half's worst wait */
} run_result;

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void note_error(worker *w, const char *what)
{
    w->errors++;
    if (w->first_error[0] == '\0')
        snprintf(w->first_error, sizeof(w->first_error), "%s", what);
}

static void add_wait(worker *w, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    if (w->nwaits == w->capwaits) {
        size_t cap = w->capwaits ? 2 * w->capwaits : 1024;
        int64_t *p = realloc(w->waits, cap * sizeof(*p));
        if (p == NULL)
            return;
        w->waits = p;
        w->capwaits = cap;
    }
    w->waits[w->nwaits++] = ns;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? 2 * *cap : 256;
    while (cap2 < need)
        cap2 *= 2;
    void *q = realloc(*p, cap2 * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

/* A call arrives: note who is ahead of it (waiting or in flight). */
static void line_enter(worker *w, int64_t t0, int64_t est)
{
    run_ctx *run = w->run;
    call_rec *r;

    if (grow((void **)&w->recs, &w->caprecs, w->nrecs + 1, sizeof(*w->recs)))
        return;
    r = &w->recs[w->nrecs];
    memset(r, 0, sizeof(*r));
    r->t0 = t0;
    r->est = est;
    r->ahead_off = w->nahead;
    pthread_mutex_lock(&run->mu);
    if (grow((void **)&w->ahead, &w->capahead,
             w->nahead + 2 * (size_t)run->nworkers, sizeof(*w->ahead)) == 0) {
        for (int j = 0; j < run->nworkers; j++) {
            if (j == w->index || run->active_since[j] == 0 ||
                run->active_since[j] > t0)
                continue;
            w->ahead[w->nahead++] = j;
            w->ahead[w->nahead++] = run->active_call[j];
            r->ahead_n++;
        }
    }
    run->active_since[w->index] = t0;
    run->active_call[w->index] = (int64_t)w->nrecs;
    pthread_mutex_unlock(&run->mu);
    w->nrecs++;
}

/* It ends (ok: completed; actual: its cost, or -1 when unknown). */
static void line_leave(worker *w, int64_t t1, int64_t proc_ns, int ok,
                       int64_t actual)
{
    run_ctx *run = w->run;

    pthread_mutex_lock(&run->mu);
    run->active_since[w->index] = 0;
    pthread_mutex_unlock(&run->mu);
    if (w->nrecs == 0)
        return;
    call_rec *r = &w->recs[w->nrecs - 1];
    r->t1 = t1;
    r->proc_ns = proc_ns;
    r->ok = ok;
    r->actual = actual >= 0 ? actual : r->est;
}

/* One call of the mix: path, params (name/value pairs), estimate. */
typedef struct call {
    const char *path;
    const char *params[8];
    char a[32], b[32];
    int64_t estimate;
} call;

static void pick_call(worker *w, call *c)
{
    uint64_t r = next_rand(&w->rng);

    if (mix_deal || r % 2 == 0) {
        c->path = "/deal";
        snprintf(c->a, sizeof(c->a), "%u", (unsigned)((r >> 8) % 5));
        c->params[0] = "domain";
        c->params[1] = "1";
        c->params[2] = "page";
        c->params[3] = c->a;
        c->params[4] = NULL;
        c->estimate = DEAL_COST;
    } else {
        uint64_t x = next_rand(&w->rng);
        c->path = "/product";
        snprintf(c->a, sizeof(c->a), "B%09u,B%09u", (unsigned)(x % 1000000000u),
                 (unsigned)((x >> 32) % 1000000000u));
        c->params[0] = "domain";
        c->params[1] = "1";
        c->params[2] = "asin";
        c->params[3] = c->a;
        c->params[4] = "offers";
        c->params[5] = "40";
        c->params[6] = NULL;
        c->estimate = PRODUCT_EST;
    }
}

static void call_url(const run_ctx *run, const call *c, char *url, size_t len)
{
    size_t n =
        (size_t)snprintf(url, len, "%s%s?key=" KEY, run->keepa_url, c->path);

    for (int i = 0; c->params[i] != NULL && n < len; i += 2)
        n += (size_t)snprintf(url + n, len - n, "&%s=%s", c->params[i],
                              c->params[i + 1]);
}

/* Sleep ms in slices, returning early when the run stops. */
static void nap(const run_ctx *run, int64_t ms)
{
    while (ms > 0 && !run->stop && !bench_interrupted) {
        int64_t slice = ms < 50 ? ms : 50;
        bench_sleep_ms(slice);
        ms -= slice;
    }
}

/* ---- tokenmgr ----------------------------------------------------------- */

static void tkm_opts(const run_ctx *run, int index, tkm_options *o)
{
    tkm_options_init(o);
    snprintf(o->pool, sizeof(o->pool), POOL);
    snprintf(o->redis_url, sizeof(o->redis_url), "%s", run->redis_url);
    if (index >= 0)
        snprintf(o->worker_id, sizeof(o->worker_id), "w%d", index);
    else
        snprintf(o->worker_id, sizeof(o->worker_id), "main");
    snprintf(o->keepa.base_url, sizeof(o->keepa.base_url), "%s",
             run->keepa_url);
    o->bucket.refill_period_ms = period_ms;
    o->keepa.timeout_ms = 5000;
    o->heartbeat.wait_slice_ms = 100; /* the run's stop is seen promptly */
    o->bucket.max_wait_s = max_wait_s;
#ifdef TKM_QUEUE_CLASS_MAX
    if (class_w[0] > 0) {
        char list[64], err[256];
        snprintf(list, sizeof(list), "interactive=%d,backfill=%d", class_w[0],
                 class_w[1]);
        if (tkm_options_set(o, "queue.classes", list, err, sizeof(err)) !=
                TKM_OK ||
            (index >= 0 &&
             tkm_options_set(o, "queue.class",
                             (index % 2) == 0 ? "interactive" : "backfill", err,
                             sizeof(err)) != TKM_OK))
            fprintf(stderr, PROG ": %s\n", err);
    }
#endif
}

static void run_tokenmgr(worker *w)
{
    run_ctx *run = w->run;
    tkm_client *c = NULL;
    tkm_keepa *kc = NULL;
    tkm_options o;

    tkm_opts(run, w->index, &o);
    if (tkm_client_open(&o, &c) != TKM_OK || tkm_keepa_open(c, &kc) != TKM_OK) {
        note_error(w, c ? tkm_errstr(c) : "out of memory");
        goto out;
    }
    tkm_client_set_cancel(c, &run->stop);
    if (!heartbeats)
        tkm_client_set_heartbeats(c, 0);
    while (!run->stop && !bench_interrupted) {
        tkm_keepa_response resp;
        call cl;
        int64_t t0, t1, trips0;
        tkm_code rc;

        pick_call(w, &cl);
        t0 = bench_now_ns();
        line_enter(w, t0, cl.estimate);
        trips0 = tkm_client_round_trips(c);
        rc = tkm_keepa_request(kc, cl.path, cl.params, cl.estimate, &resp);
        t1 = bench_now_ns();
        if (w->nrecs == 1 && rc == TKM_OK && resp.http_status == 200)
            w->first_denied = tkm_client_round_trips(c) - trips0 > 2;
        line_leave(w, t1, resp.processing_ms * 1000000,
                   rc == TKM_OK && resp.http_status == 200,
                   resp.has_tokens ? resp.tokens_consumed : -1);
        if (rc == TKM_OK && resp.http_status == 200) {
            w->calls++;
            add_wait(w, t1 - t0 - resp.processing_ms * 1000000);
        } else if (rc == TKM_ECANCELED) {
            /* Still waiting at the stop: its wait so far is a lower bound,
             * its round trips (a place in line, its leave) no call's. */
            w->cut++;
            w->cut_trips += tkm_client_round_trips(c) - trips0;
            add_wait(w, t1 - t0);
            tkm_keepa_response_free(&resp);
            break;
        } else {
            note_error(w, tkm_keepa_errstr(kc));
        }
        tkm_keepa_response_free(&resp);
    }
out:
    w->trips = c ? tkm_client_round_trips(c) : 0;
    tkm_keepa_free(kc);
    tkm_client_free(c);
}

/* ---- retry on 429 ------------------------------------------------------- */

static void run_retry429(worker *w)
{
    run_ctx *run = w->run;
    char *body = malloc(BODY_MAX);
    char url[512];

    if (body == NULL) {
        note_error(w, "out of memory");
        return;
    }
    while (!run->stop && !bench_interrupted) {
        int64_t t0 = bench_now_ns();
        call cl;

        pick_call(w, &cl);
        call_url(run, &cl, url, sizeof(url));
        line_enter(w, t0, cl.estimate);
        for (;;) {
            long status = 0;
            if (tkt_http_get(url, &status, body, BODY_MAX) != 0) {
                note_error(w, "HTTP transport error");
                line_leave(w, bench_now_ns(), 0, 0, -1);
                break;
            }
            if (status == 429) {
                int64_t refill = tkt_json_int(body, "refillIn");
                nap(run, refill > 0 ? refill : 100);
                if (run->stop || bench_interrupted) {
                    w->cut++;
                    add_wait(w, bench_now_ns() - t0);
                    line_leave(w, bench_now_ns(), 0, 0, -1);
                    break;
                }
                continue;
            }
            if (status == 200) {
                int64_t proc = tkt_json_int(body, "processingTimeInMs");
                int64_t used = tkt_json_int(body, "tokensConsumed");
                w->calls++;
                add_wait(w,
                         bench_now_ns() - t0 - (proc > 0 ? proc * 1000000 : 0));
                line_leave(w, bench_now_ns(), proc > 0 ? proc * 1000000 : 0, 1,
                           used);
            } else {
                line_leave(w, bench_now_ns(), 0, 0, -1);
                note_error(w, "unexpected HTTP status");
            }
            break;
        }
    }
    free(body);
}

/* ---- the seed's policy -------------------------------------------------- */

static double wall_s(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double reply_double(const redisReply *r, double fallback)
{
    double v;

    if (r == NULL || r->type != REDIS_REPLY_STRING ||
        tkm_parse_double(r->str, -1e15, 1e15, &v) != TKM_OK)
        return fallback;
    return v;
}

/* One command, counted; NULL on a transport error (message noted). */
static redisReply *seed_cmd(worker *w, redisContext *rc, int argc,
                            const char **argv)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);

    w->trips++;
    if (r == NULL)
        note_error(w, rc->errstr);
    return r;
}

static int seed_simple(worker *w, redisContext *rc, int argc, const char **argv)
{
    redisReply *r = seed_cmd(w, rc, argc, argv);

    freeReplyObject(r);
    return r ? 0 : -1;
}

/* The seed's sync: the shared balance becomes tokensLeft (reservations of
 * calls still in flight are wiped: its failure 2). */
static int seed_sync(worker *w, redisContext *rc, const char *body)
{
    int64_t left = tkt_json_int(body, "tokensLeft");
    int64_t rate = tkt_json_int(body, "refillRate");
    char tl[32], rt[32], ts[32];
    const char *argv[] = {
        "MSET", "keepa_tokens_left",     tl, "keepa_refill_rate",
        rt,     "keepa_token_timestamp", ts};

    if (left == INT64_MIN || rate == INT64_MIN)
        return -1;
    snprintf(tl, sizeof(tl), "%lld.0", (long long)left);
    snprintf(rt, sizeof(rt), "%lld.0", (long long)rate);
    snprintf(ts, sizeof(ts), "%.3f", wall_s());
    return seed_simple(w, rc, 7, argv);
}

/* Check-then-act reservation.  0 when reserved, -1 when the run stopped. */
static int seed_acquire(worker *w, redisContext *rc, int64_t cost)
{
    static const char *mget[] = {"MGET",
                                 "keepa_tokens_left",
                                 "keepa_refill_rate",
                                 "keepa_token_timestamp",
                                 "keepa_recharge_mode_active",
                                 "keepa_recharge_start_time"};
    const double period_s = period_ms / 1000.0;
    const double timeout_s = 60 * period_s; /* its 60 "minutes" */

    while (!w->run->stop && !bench_interrupted) {
        redisReply *r = seed_cmd(w, rc, 6, mget);
        double tokens, rate, ts, since, now = wall_s(), projected;
        int mode;
        char buf[32];

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
            freeReplyObject(r);
            return -1;
        }
        tokens = reply_double(r->element[0], 0);
        rate = reply_double(r->element[1], 0);
        ts = reply_double(r->element[2], now);
        mode = r->element[3]->type == REDIS_REPLY_STRING;
        since = reply_double(r->element[4], now);
        freeReplyObject(r);
        projected = tokens + rate * (now - ts) / period_s;
        if (projected > CAPACITY)
            projected = CAPACITY;
        if (mode) {
            double target =
                cost <= LOW_COST_MAX ? LOW_COST_TARGET : RECHARGE_TARGET;
            const char *del[] = {"DEL", "keepa_recharge_mode_active"};
            if (now - since > timeout_s) {
                seed_simple(w, rc, 2, del);
            } else if (projected < target) {
                double need = rate > 0 ? (target - projected) / rate : 1;
                nap(w->run, (int64_t)(need * period_ms) + 10);
                continue;
            } else {
                seed_simple(w, rc, 2, del);
            }
        }
        if (projected < 1 || projected - (double)cost < MAX_DEFICIT) {
            double need = rate > 0 ? (1 - projected) / rate : 1;
            if (need * period_ms < 50)
                need = 0.05;
            nap(w->run, (int64_t)(need * period_ms));
            continue;
        }
        {
            const char *incr[] = {"INCRBYFLOAT", "keepa_tokens_left", buf};
            double left;
            snprintf(buf, sizeof(buf), "%lld", (long long)-cost);
            r = seed_cmd(w, rc, 3, incr);
            if (r == NULL)
                return -1;
            left = reply_double(r, 0) + rate * (now - ts) / period_s;
            freeReplyObject(r);
            if (left < MAX_DEFICIT) {
                snprintf(buf, sizeof(buf), "%lld", (long long)cost);
                seed_simple(w, rc, 3, incr); /* revert */
                nap(w->run, 50);
                continue;
            }
            if (left < SOFT_FLOOR) {
                /* This call still goes ("graceful stop"); later ones wait. */
                char nowbuf[32];
                const char *set[] = {"MSET", "keepa_recharge_mode_active", "1",
                                     "keepa_recharge_start_time", nowbuf};
                snprintf(nowbuf, sizeof(nowbuf), "%.3f", now);
                seed_simple(w, rc, 5, set);
            }
        }
        return 0;
    }
    return -1;
}

static void run_seed(worker *w)
{
    run_ctx *run = w->run;
    char *body = malloc(BODY_MAX);
    redisContext *rc = redisConnectUnix(run->redis_sock);
    char url[512];

    if (body == NULL || rc == NULL || rc->err) {
        note_error(w, "cannot connect to Redis");
        goto out;
    }
    while (!run->stop && !bench_interrupted) {
        int64_t t0 = bench_now_ns();
        long status = 0;
        call cl;

        pick_call(w, &cl);
        line_enter(w, t0, cl.estimate);
        if (seed_acquire(w, rc, cl.estimate) != 0) {
            w->cut++;
            add_wait(w, bench_now_ns() - t0);
            line_leave(w, bench_now_ns(), 0, 0, -1);
            break;
        }
        call_url(run, &cl, url, sizeof(url));
        if (tkt_http_get(url, &status, body, BODY_MAX) != 0) {
            note_error(w, "HTTP transport error");
            line_leave(w, bench_now_ns(), 0, 0, -1);
            continue;
        }
        if (status == 200 || status == 429)
            seed_sync(w, rc, body);
        if (status == 200) {
            int64_t proc = tkt_json_int(body, "processingTimeInMs");
            w->calls++;
            add_wait(w, bench_now_ns() - t0 - (proc > 0 ? proc * 1000000 : 0));
            line_leave(w, bench_now_ns(), proc > 0 ? proc * 1000000 : 0, 1,
                       tkt_json_int(body, "tokensConsumed"));
        } else if (status == 429) {
            w->dropped++; /* its failure 13: a 429 read as "no more data" */
            line_leave(w, bench_now_ns(), 0, 0, -1);
        } else {
            note_error(w, "unexpected HTTP status");
            line_leave(w, bench_now_ns(), 0, 0, -1);
        }
    }
out:
    if (rc != NULL)
        redisFree(rc);
    free(body);
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    switch (w->run->pol) {
    case P_TOKENMGR:
        run_tokenmgr(w);
        break;
    case P_RETRY429:
        run_retry429(w);
        break;
    default:
        run_seed(w);
        break;
    }
    return NULL;
}

/* ---- one run --------------------------------------------------------------
 */

static int admin(const tkt_keepa *k, const char *path_query, char *body,
                 size_t len)
{
    char url[512];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", k->url, path_query);
    if (tkt_http_get(url, &status, body, len) != 0 || status != 200) {
        fprintf(stderr, PROG ": %s: HTTP %ld %s\n", path_query, status, body);
        return -1;
    }
    return 0;
}

/* The fresh state every run starts from: Redis empty, the bucket full, the
 * refill phase restarted, the counters zeroed. */
static int reset_all(const tkt_keepa *k, redisContext *r, int64_t initial)
{
    char body[4096], set[256];
    redisReply *rep = redisCommand(r, "FLUSHALL");

    if (rep == NULL) {
        fprintf(stderr, PROG ": FLUSHALL: %s\n", r->errstr);
        return -1;
    }
    freeReplyObject(rep);
    snprintf(set, sizeof(set),
             "/admin/set?key=" KEY "&balance=%lld&rate=%d&period_ms=%d",
             (long long)initial, RATE, period_ms);
    if (admin(k, set, body, sizeof(body)) != 0)
        return -1;
    return admin(k, "/admin/reset_counters?key=" KEY, body, sizeof(body));
}

/* The policy's first look at the balance, before the workers start. */
static int first_sync(run_ctx *run, const tkt_keepa *k)
{
    if (run->pol == P_TOKENMGR) {
        tkm_client *c = NULL;
        tkm_keepa *kc = NULL;
        tkm_keepa_sync_result sr;
        tkm_options o;
        int ret = 0;

        tkm_opts(run, -1, &o);
        if (tkm_client_open(&o, &c) != TKM_OK ||
            tkm_keepa_open(c, &kc) != TKM_OK ||
            tkm_keepa_sync(kc, 1, &sr) != TKM_OK) {
            fprintf(stderr, PROG ": first sync: %s / %s\n",
                    c ? tkm_errstr(c) : "", kc ? tkm_keepa_errstr(kc) : "");
            ret = -1;
        }
        tkm_keepa_free(kc);
        tkm_client_free(c);
        return ret;
    }
    if (run->pol == P_SEED) {
        worker w = {.run = run};
        char body[4096], url[256];
        long status = 0;
        redisContext *rc = redisConnectUnix(run->redis_sock);
        int ret = -1;

        snprintf(url, sizeof(url), "%s/token?key=" KEY, k->url);
        if (rc != NULL && !rc->err &&
            tkt_http_get(url, &status, body, sizeof(body)) == 0 &&
            status == 200 && seed_sync(&w, rc, body) == 0)
            ret = 0;
        if (rc != NULL)
            redisFree(rc);
        if (ret != 0)
            fprintf(stderr, PROG ": seed's first sync failed\n");
        return ret;
    }
    return 0;
}

/* A call's cost as the bench knows it after the run (its estimate when it
 * never completed). */
static int64_t cost_of(const worker *ws, int j, int64_t k)
{
    const worker *w = &ws[j];

    if (k < 0 || (size_t)k >= w->nrecs)
        return PRODUCT_EST;
    return w->recs[k].ok ? w->recs[k].actual : w->recs[k].est;
}

/* Jain's index had a line served as many calls (`calls`), each worker
 * drawing its own calls as it did, always to the worker granted the fewest
 * tokens so far: how even the calls' costs let a run of this length be. */
static double jain_dealt(const worker *ws, int n, int64_t calls)
{
    double sum = 0, sq = 0;
    double *tok = calloc((size_t)n, sizeof(*tok));
    worker *draw = calloc((size_t)n, sizeof(*draw));

    if (tok == NULL || draw == NULL || calls <= 0) {
        free(tok);
        free(draw);
        return 0;
    }
    for (int i = 0; i < n; i++)
        draw[i].rng = ws[i].rng0;
    for (int64_t k = 0; k < calls; k++) {
        int least = 0;
        call c;
        for (int i = 1; i < n; i++)
            if (tok[i] < tok[least])
                least = i;
        pick_call(&draw[least], &c);
        tok[least] += (double)c.estimate;
    }
    for (int i = 0; i < n; i++) {
        sum += tok[i];
        sq += tok[i] * tok[i];
    }
    free(tok);
    free(draw);
    return sq > 0 ? sum * sum / ((double)n * sq) : 0;
}

/* Jain's index, the worst wait against the line ahead of it, the classes'
 * shares and the second class's longest drought. */
static void line_figures(const worker *ws, int n, int64_t t_set, int64_t t_end,
                         run_result *out)
{
    double sum = 0, sq = 0, tok[2] = {0, 0};
    const double period_ns = (double)period_ms * 1e6;
    int64_t *grants = NULL;
    size_t ngrants = 0, cap = 0;

    out->worst_ratio = 0;
    for (int i = 0; i < n; i++) {
        const worker *w = &ws[i];
        double x = 0;
        for (size_t c = 0; c < w->nrecs; c++) {
            const call_rec *r = &w->recs[c];
            double explained, bound_ns, wait_ns;
            /* A call still waiting at the end counts with its wait so far
             * (a worker that is never served shows here). */
            if (!r->ok && r->t1 != 0 && c + 1 != w->nrecs)
                continue;
            /* Every grant of the second class counts for its droughts,
             * its workers' first ones too. */
            if (w->cls == 1 && r->ok &&
                grow((void **)&grants, &cap, ngrants + 1, sizeof(*grants)) == 0)
                grants[ngrants++] = r->t1 - r->proc_ns;
            /* Each worker's first call is left out of the waits: the
             * threads start together, and which first call reached Redis
             * first, the bench cannot see. */
            if (c == 0) {
                if (r->ok)
                    x += (double)r->est;
                continue;
            }
            if (r->ok)
                x += (double)r->est;
            explained = (double)r->actual;
            for (size_t a = 0; a < r->ahead_n; a++)
                explained +=
                    (double)cost_of(ws, (int)w->ahead[r->ahead_off + 2 * a],
                                    w->ahead[r->ahead_off + 2 * a + 1]);
            bound_ns =
                2 * (explained / RATE + 1.0 + (double)RECHARGE_TARGET / RATE) *
                period_ns;
            wait_ns = (double)((r->t1 ? r->t1 : t_end) - r->t0 - r->proc_ns);
            if (wait_ns / 1e6 > (double)out->max_wait_ms)
                out->max_wait_ms = (int64_t)(wait_ns / 1e6);
            if (wait_ns / bound_ns > out->worst_ratio) {
                out->worst_ratio = wait_ns / bound_ns;
                out->worst_wait_ms = (int64_t)(wait_ns / 1e6);
                out->worst_bound_ms = (int64_t)(bound_ns / 1e6);
            }
            if (w->cls == 1 && (int64_t)(wait_ns / 1e6) > out->low_worst_ms)
                out->low_worst_ms = (int64_t)(wait_ns / 1e6);
        }
        sum += x;
        sq += x * x;
        tok[w->cls] += x;
    }
    out->jain = sq > 0 ? sum * sum / ((double)n * sq) : 0;
    out->share[0] = sum > 0 ? tok[0] / sum : 0;
    out->share[1] = sum > 0 ? tok[1] / sum : 0;
    if (class_w[0] > 0) {
        int64_t prev = t_set;
        bench_sort(grants, ngrants);
        for (size_t g = 0; g < ngrants; g++) {
            if (grants[g] - prev > out->gap_ms * 1000000)
                out->gap_ms = (grants[g] - prev) / 1000000;
            prev = grants[g];
        }
        if (ngrants > 0)
            out->mean_gap_ms = (prev - t_set) / 1000000 / (int64_t)ngrants;
    }
    free(grants);
}

static int run_one(policy pol, int nworkers, int periods, int64_t initial,
                   const tkt_keepa *k, const tkt_redis *srv, redisContext *r,
                   run_result *out)
{
    run_ctx run = {.pol = pol,
                   .keepa_url = k->url,
                   .redis_url = srv->url,
                   .redis_sock = srv->sock};
    worker *ws = calloc((size_t)nworkers, sizeof(*ws));
    int64_t *active = calloc(2 * (size_t)nworkers, sizeof(*active));
    int64_t t_set, t_end, started = 0, sum_trips = 0, cut_trips = 0,
                          first_denied = 0;
    int64_t *all = NULL;
    size_t nall = 0;
    char state[4096];
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->pol = pol;
    out->workers = nworkers;
    run.nworkers = nworkers;
    run.active_since = active;
    run.active_call = active ? active + nworkers : NULL;
    pthread_mutex_init(&run.mu, NULL);
    if (ws == NULL || active == NULL) {
        free(ws);
        free(active);
        return -1;
    }
    if (reset_all(k, r, initial) != 0)
        goto out;
    t_set = bench_now_ns();
    if (first_sync(&run, k) != 0)
        goto out;
    for (int i = 0; i < nworkers; i++) {
        ws[i].run = &run;
        ws[i].index = i;
        ws[i].rng = ws[i].rng0 =
            0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) + (uint64_t)pol;
        ws[i].cls = class_w[0] > 0 ? i % 2 : 0;
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, PROG ": pthread_create failed\n");
            run.stop = 1;
            break;
        }
        started++;
    }
    t_end = t_set + (int64_t)periods * period_ms * 1000000;
    while (!bench_interrupted && bench_now_ns() < t_end)
        bench_sleep_ms(20);
    run.stop = 1;
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    if (bench_interrupted || started < nworkers)
        goto out;
    if (admin(k, "/admin/state?key=" KEY, state, sizeof(state)) != 0)
        goto out;
    out->elapsed_ms = (bench_now_ns() - t_set) / 1000000;

    for (int i = 0; i < nworkers; i++) {
        out->calls += ws[i].calls;
        out->errors += ws[i].errors;
        out->dropped += ws[i].dropped;
        out->cut += ws[i].cut;
        sum_trips += ws[i].trips;
        cut_trips += ws[i].cut_trips;
        first_denied += ws[i].first_denied;
        nall += ws[i].nwaits;
        if (out->first_error[0] == '\0' && ws[i].first_error[0] != '\0')
            snprintf(out->first_error, sizeof(out->first_error), "%s",
                     ws[i].first_error);
    }
    all = malloc((nall ? nall : 1) * sizeof(*all));
    if (all == NULL)
        goto out;
    nall = 0;
    for (int i = 0; i < nworkers; i++) {
        memcpy(all + nall, ws[i].waits, ws[i].nwaits * sizeof(*all));
        nall += ws[i].nwaits;
    }
    bench_sort(all, nall);
    out->p50_ms = bench_pct_us(all, nall, 500) / 1000.0;
    out->p99_ms = bench_pct_us(all, nall, 990) / 1000.0;
    out->trips_per_call =
        out->calls ? (double)sum_trips / (double)out->calls : 0;
    out->trips_done =
        out->calls ? (double)(sum_trips - cut_trips) / (double)out->calls : 0;
    /* Whatever the line, a completed call is granted and completed (2
     * round trips), a call cut at the stop entered or leaves the line (1),
     * and a worker's first call that could not start when it came told
     * Redis so once more (no completion before it could take its place). */
    out->trips_floor =
        pol == P_TOKENMGR && out->calls
            ? (double)(2 * out->calls + out->cut + first_denied) /
                  (double)out->calls
            : 0;
    out->charged = tkt_json_int(state, "tokens_charged");
    out->final_balance = tkt_json_int(state, "balance");
    out->min_balance = tkt_json_int(state, "min_balance");
    out->n429 = tkt_json_int(state, "requests_429");
    out->token_calls = tkt_json_int(state, "token_calls");
    /* Every tick from the reset to the final read (calls in flight at the
     * stop complete inside it). */
    out->ideal = initial + RATE * (out->elapsed_ms / period_ms);
    out->useful =
        out->charged - (out->final_balance < 0 ? -out->final_balance : 0);
    out->util = (double)out->useful / (double)out->ideal;
    out->drained = out->min_balance < SOFT_FLOOR;
    line_figures(ws, nworkers, t_set, bench_now_ns(), out);
    out->jain_dealt = jain_dealt(ws, nworkers, out->calls);
    ret = 0;
out:
    for (int i = 0; i < nworkers; i++) {
        free(ws[i].waits);
        free(ws[i].recs);
        free(ws[i].ahead);
    }
    free(ws);
    free(active);
    free(all);
    pthread_mutex_destroy(&run.mu);
    return ret;
}

/* ---- output -----------------------------------------------------------------
 */

static const char *verdict_429(const run_result *r)
{
    return r->n429 == 0 ? "ok" : "MISS";
}

static const char *verdict_util(const run_result *r)
{
    if (!r->drained)
        return "n/a";
    return r->util >= TARGET_UTIL ? "ok" : "MISS";
}

/* --classes: the first half's share within 10 points of its weight's. */
static int share_ok(const run_result *r)
{
    double d =
        100 * r->share[0] - 100.0 * class_w[0] / (class_w[0] + class_w[1]);

    return d >= -10 && d <= 10;
}

static const char *verdict_min(const run_result *r)
{
    return r->min_balance >= MAX_DEFICIT - MAX_EST_ERROR ? "ok" : "MISS";
}

static void print_header(int periods, int64_t initial)
{
    printf("bench_policy: fake Keepa rate %d per %d ms, capacity %d, "
           "starting at %lld, latency %s ms,\n"
           "  %d periods per run; ",
           RATE, period_ms, CAPACITY, (long long)initial, LATENCY, periods);
    if (mix_deal)
        printf("mix: /deal pages only (5)\n");
    else
        printf("mix: 1/2 /deal (5), 1/2 /product 2 ASINs offers=40 (estimate "
               "%d, actual %d..%d)\n",
               PRODUCT_EST, PRODUCT_EST, PRODUCT_MAX);
    printf("%-9s %4s %6s %7s %6s %6s %5s %6s %6s %8s %8s %7s %6s %4s %4s "
           "%s\n",
           "policy", "wrk", "calls", "useful", "ideal", "util", "429s",
           "minbal", "final", "wait p50", "wait p99", "rt/call", "/token",
           "cut", "drop", "errors");
}

static void print_row(const run_result *r)
{
    printf("%-9s %4d %6lld %7lld %6lld %6.3f %5lld %6lld %6lld %8.1f %8.1f "
           "%7.2f %6lld %4lld %4lld %lld%s%s\n",
           policy_names[r->pol], r->workers, (long long)r->calls,
           (long long)r->useful, (long long)r->ideal, r->util,
           (long long)r->n429, (long long)r->min_balance,
           (long long)r->final_balance, r->p50_ms, r->p99_ms, r->trips_per_call,
           (long long)r->token_calls, (long long)r->cut, (long long)r->dropped,
           (long long)r->errors, r->first_error[0] ? " first: " : "",
           r->first_error);
}

static void print_line_header(void)
{
    printf("\nthe line: Jain's index of tokens granted per worker; the worst "
           "wait against twice what the line\nahead of it explains (tokens "
           "ahead and its own at the rate + 1 period + the recharge "
           "target);\n%s\n",
           class_w[0] > 0
               ? "classes: tokens granted per half (weights as "
                 "given), the second half's longest and mean drought and "
                 "worst wait"
               : "");
    printf("%-9s %4s %6s %9s %9s %6s %9s", "policy", "wrk", "jain", "worst s",
           "bound s", "ratio", "longest s");
    if (class_w[0] > 0)
        printf(" %7s %7s %9s %9s %9s", "share1", "share2", "drought",
               "mean gap", "low wait");
    printf("\n");
}

static void print_line_row(const run_result *r)
{
    printf("%-9s %4d %6.3f %9.1f %9.1f %6.2f %9.1f", policy_names[r->pol],
           r->workers, r->jain, r->worst_wait_ms / 1000.0,
           r->worst_bound_ms / 1000.0, r->worst_ratio, r->max_wait_ms / 1000.0);
    if (class_w[0] > 0)
        printf(" %6.1f%% %6.1f%% %7.2f p %7.2f p %7.2f p", 100 * r->share[0],
               100 * r->share[1], (double)r->gap_ms / period_ms,
               (double)r->mean_gap_ms / period_ms,
               (double)r->low_worst_ms / period_ms);
    printf("\n");
}

static void json_row(FILE *f, const run_result *r, int first)
{
    fprintf(
        f,
        "%s{\"policy\":\"%s\",\"workers\":%d,\"calls\":%lld,"
        "\"tokens_charged\":%lld,\"useful_tokens\":%lld,\"ideal\":%lld,"
        "\"utilisation\":%.4f,\"drained\":%s,\"http_429\":%lld,"
        "\"min_balance\":%lld,\"final_balance\":%lld,"
        "\"wait_p50_ms\":%.2f,\"wait_p99_ms\":%.2f,"
        "\"redis_round_trips_per_call\":%.3f,"
        "\"redis_round_trips_per_call_uncut\":%.3f,"
        "\"redis_round_trips_per_call_floor\":%.3f,\"token_calls\":%lld,"
        "\"cut\":%lld,\"dropped\":%lld,\"errors\":%lld,"
        "\"elapsed_ms\":%lld,\"jain\":%.4f,\"jain_dealt\":%.4f,"
        "\"worst_wait_ms\":%lld,"
        "\"worst_bound_ms\":%lld,\"worst_ratio\":%.3f,"
        "\"longest_wait_ms\":%lld,\"class_share\":[%.4f,%.4f],"
        "\"low_class_drought_ms\":%lld,\"low_class_mean_gap_ms\":%lld,"
        "\"low_class_worst_wait_ms\":%lld}",
        first ? "" : ",", policy_names[r->pol], r->workers, (long long)r->calls,
        (long long)r->charged, (long long)r->useful, (long long)r->ideal,
        r->util, r->drained ? "true" : "false", (long long)r->n429,
        (long long)r->min_balance, (long long)r->final_balance, r->p50_ms,
        r->p99_ms, r->trips_per_call, r->trips_done, r->trips_floor,
        (long long)r->token_calls, (long long)r->cut, (long long)r->dropped,
        (long long)r->errors, (long long)r->elapsed_ms, r->jain, r->jain_dealt,
        (long long)r->worst_wait_ms, (long long)r->worst_bound_ms,
        r->worst_ratio, (long long)r->max_wait_ms, r->share[0], r->share[1],
        (long long)r->gap_ms, (long long)r->mean_gap_ms,
        (long long)r->low_worst_ms);
}

/* A bad value on the command line: what, and what it may be. */
static int bad_arg(const char *name, const char *value, const char *want)
{
    fprintf(stderr, PROG ": %s '%.80s': want %s\n", name, value, want);
    return 2;
}

int main(int argc, char **argv)
{
    char period_arg[24] = "";
    const char *fk_args[] = {
        "--rate",       "20",    "--period-ms", period_arg, "--balance", "1200",
        "--latency-ms", LATENCY, "--seed",      "7",        NULL};
    int counts[MAX_COUNTS] = {1, 4, 16, 64}, ncounts = 4;
    int64_t periods = 10, initial = CAPACITY, period = PERIOD_MS_DEFAULT;
    unsigned policies = (1u << P_COUNT) - 1;
    const char *json_path = NULL;
    run_result results[P_COUNT * MAX_COUNTS];
    int nresults = 0;
    tkt_keepa k = {0};
    tkt_redis srv;
    redisContext *r = NULL;
    FILE *jf = NULL;
    int status = 1;

    const char *policy_name = NULL, *classes = NULL, *beats = NULL, *mix = NULL;
    const bench_opt opts[] = {
        {.name = "--periods", .min = 2, .max = 600, .num = &periods},
        {.name = "--workers",
         .max = MAX_WORKERS,
         .counts = counts,
         .cap = MAX_COUNTS,
         .n = &ncounts},
        {.name = "--period-ms", .min = 100, .max = 60000, .num = &period},
        {.name = "--initial", .min = 0, .max = CAPACITY, .num = &initial},
        {.name = "--policy", .text = &policy_name},
        {.name = "--classes", .text = &classes},
        {.name = "--heartbeats", .text = &beats},
        {.name = "--max-wait", .min = 0, .max = 86400, .num = &max_wait_s},
        {.name = "--mix", .text = &mix},
        {.name = "--json", .text = &json_path},
        {.name = NULL}};
    static const char usage[] = "[--periods N] [--workers 1,4,16,64] "
                                "[--initial N] [--period-ms MS] "
                                "[--policy NAME] [--classes A:B] "
                                "[--heartbeats on|off] [--max-wait S] "
                                "[--mix mixed|deal] [--json FILE]";

    if (bench_parse_args(argc, argv, PROG, usage, opts) != 0)
        return 2;
    if (classes != NULL &&
        (sscanf(classes, "%d:%d", &class_w[0], &class_w[1]) != 2 ||
         class_w[0] < 1 || class_w[0] > 1000 || class_w[1] < 1 ||
         class_w[1] > 1000))
        return bad_arg("--classes", classes, "two weights A:B in 1..1000");
    if (beats != NULL && strcmp(beats, "on") != 0 && strcmp(beats, "off") != 0)
        return bad_arg("--heartbeats", beats, "on or off");
    if (mix != NULL && strcmp(mix, "mixed") != 0 && strcmp(mix, "deal") != 0)
        return bad_arg("--mix", mix, "mixed or deal");
    heartbeats = beats == NULL || strcmp(beats, "on") == 0;
    mix_deal = mix != NULL && strcmp(mix, "deal") == 0;
    if (policy_name != NULL) {
        policies = 0;
        for (int p = 0; p < P_COUNT; p++)
            if (strcmp(policy_name, policy_names[p]) == 0)
                policies = 1u << p;
        if (policies == 0)
            return bad_arg("--policy", policy_name,
                           "tokenmgr, retry429 or seed");
    }
    period_ms = (int)period;
    snprintf(period_arg, sizeof(period_arg), "%d", period_ms);
    bench_signals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("TOKENMGR_KEEPA_KEY", KEY, 1);
    if (bench_redis_start(&srv, PROG) != 0)
        return 1;
    if (tkt_keepa_start(&k, fk_args) != 0) {
        fprintf(stderr, PROG ": cannot start %s\n", tkt_keepa_binary());
        goto out;
    }
    r = redisConnectUnix(srv.sock);
    if (r == NULL || r->err) {
        fprintf(stderr, PROG ": cannot connect to %s\n", srv.sock);
        goto out;
    }
    print_header((int)periods, initial);
    for (int p = 0; p < P_COUNT; p++) {
        if (!(policies & (1u << p)))
            continue;
        for (int i = 0; i < ncounts; i++) {
            run_result *res = &results[nresults];
            if (run_one((policy)p, counts[i], (int)periods, initial, &k, &srv,
                        r, res) != 0)
                goto out;
            print_row(res);
            fflush(stdout);
            nresults++;
        }
    }
    printf("%-9s %4s %6s %7lld %6lld %6.3f %5d %6d (initial %d + %d per "
           "period; the most any policy can spend)\n",
           "ideal", "any", "-", (long long)results[0].ideal,
           (long long)results[0].ideal, 1.0, 0, 0, (int)initial, RATE);
    print_line_header();
    for (int i = 0; i < nresults; i++)
        print_line_row(&results[i]);
    printf("\ntargets for tokenmgr: 0 429s after the first sync; "
           "utilisation >= %.2f when drained\n  (min balance < %d); min "
           "balance >= max_deficit %d - largest estimate error %d = %d\n",
           TARGET_UTIL, SOFT_FLOOR, MAX_DEFICIT, MAX_EST_ERROR,
           MAX_DEFICIT - MAX_EST_ERROR);
    for (int i = 0; i < nresults; i++) {
        const run_result *x = &results[i];
        if (x->pol != P_TOKENMGR)
            continue;
        printf("  %3d workers: 429s %s, utilisation %s (%.3f%s), min balance "
               "%s (%lld), rt/call %.2f (%s; %.2f without the calls cut at "
               "the stop; at least %.2f for any line in this run), Jain %.3f "
               "(%s; %.3f dealing the same draws to the fewest tokens first), "
               "worst wait %.2f of its bound "
               "(%s)\n",
               x->workers, verdict_429(x), verdict_util(x), x->util,
               x->drained ? "" : ", not drained: latency-bound", verdict_min(x),
               (long long)x->min_balance, x->trips_per_call,
               x->trips_per_call <= 3 ? "ok" : "MISS", x->trips_done,
               x->trips_floor, x->jain,
               class_w[0] > 0           ? "n/a: two classes"
               : x->jain >= TARGET_JAIN ? "ok"
                                        : "MISS",
               x->jain_dealt, x->worst_ratio,
               class_w[0] > 0        ? "n/a: two classes"
               : x->worst_ratio <= 1 ? "ok"
                                     : "MISS");
        if (class_w[0] > 0)
            printf("       classes %d:%d: shares %.1f/%.1f (%s), the lower "
                   "class's longest drought %.2f periods (%s; its mean gap "
                   "%.2f)\n",
                   class_w[0], class_w[1], 100 * x->share[0], 100 * x->share[1],
                   share_ok(x) ? "ok" : "MISS", (double)x->gap_ms / period_ms,
                   x->gap_ms <= TARGET_DROUGHT * period_ms ? "ok" : "MISS",
                   (double)x->mean_gap_ms / period_ms);
    }
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf,
                "{\"rate\":%d,\"period_ms\":%d,\"capacity\":%d,"
                "\"classes\":[%d,%d],\"heartbeats\":%s,\"max_wait_s\":%lld,"
                "\"mix\":\"%s\",\"initial\":%d,\"latency_ms\":\"%s\","
                "\"periods\":%lld,"
                "\"target_utilisation\":%.2f,\"target_min_balance\":%d,"
                "\"runs\":[",
                RATE, period_ms, CAPACITY, class_w[0], class_w[1],
                heartbeats ? "true" : "false", (long long)max_wait_s,
                mix_deal ? "deal" : "mixed", (int)initial, LATENCY,
                (long long)periods, TARGET_UTIL, MAX_DEFICIT - MAX_EST_ERROR);
        for (int i = 0; i < nresults; i++)
            json_row(jf, &results[i], i == 0);
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    status = 0;
out:
    if (r != NULL)
        redisFree(r);
    tkt_keepa_stop(&k);
    curl_global_cleanup();
    return bench_finish(status, PROG, &srv);
}
