/*
 * bench_decide: decision speed with concurrent clients.
 *
 * Against a private redis-server on a Unix socket, N threads (1, 8, 32), each
 * with its own tkm_client, run tkm_try_acquire(1) + tkm_complete(1) pairs for
 * a fixed time; then redis-benchmark -c N sends the very EVALSHA of the
 * acquire script (the library's own argument builder, from its internal static
 * copy) with the same concurrency.  The ratio compares the library's round
 * trips per second (2 per pair) with redis-benchmark's requests per second.
 *
 *   bench_decide [--seconds S] [--threads 1,8,32] [--json FILE]
 *   bench_decide --sentinel 1 [--seconds S] [--threads 1,8] [--json FILE]
 *
 * Targets: ratio >= 0.9 with 1 connection, >= 0.8 with 8.
 *
 * With --sentinel 1, the cost of Redis Sentinel support in the steady
 * state: a master, a replica and three redis-sentinel processes
 * (tests/fixtures/sentinel.c), and the same pairs against that master over
 * TCP through redis.sentinels and through a plain redis.url, alternately,
 * seven rounds each; the ratios of the medians (pairs/s, and p50 latency).
 * Target: >= 0.95 (no extra round trip per call once connected).
 *
 * Exit status 0 when measured, 1 when something could not run, 2 on a bad
 * command line.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "internal.h"
#include "redis.h"
#include "sentinel.h"
#include "tokenmgr.h"

#define PROG        "bench_decide"
#define POOL        "decide"
#define LEASE_TTL_S 86400 /* redis-benchmark's grants stay live */
#define MAX_THREADS 64
#define MAX_COUNTS  8
#define MAX_SAMPLES 2000000

typedef struct thr {
    pthread_t tid;
    const char *url;
    const tkm_sentinel_options *sentinel; /* NULL: the plain URL */
    int index;
    const volatile int *go, *stop;
    int64_t pairs;
    int64_t *lat;
    size_t nlat;
    int failed;
} thr;

typedef struct row {
    int threads;
    double pairs_per_s, trips_per_s, p50_us, p99_us, evalsha_rps, ratio;
    double target;
} row;

static int pair(tkm_client *c)
{
    tkm_grant g;

    if (tkm_try_acquire(c, 1, &g) != TKM_OK || !g.granted)
        return -1;
    return tkm_complete(c, g.id, 1, NULL, NULL) == TKM_OK ? 0 : -1;
}

static void *thr_main(void *arg)
{
    thr *t = arg;
    tkm_client *c = NULL;
    tkm_options o;
    char id[32];

    snprintf(id, sizeof(id), "d%d", t->index);
    bench_never_deny(&o, POOL, t->url, id, LEASE_TTL_S);
    if (t->sentinel != NULL)
        o.sentinel = *t->sentinel;
    if (tkm_client_open(&o, &c) != TKM_OK) {
        t->failed = 1;
        tkm_client_free(c);
        return NULL;
    }
    for (int i = 0; i < 200; i++) /* warm-up: connect, load scripts */
        if (pair(c) != 0) {
            fprintf(stderr, PROG ": %s\n", tkm_errstr(c));
            t->failed = 1;
            break;
        }
    while (!*t->go && !t->failed)
        bench_sleep_ms(1);
    while (!*t->stop && !t->failed && !bench_interrupted) {
        int64_t t0 = bench_now_ns();
        if (pair(c) != 0) {
            fprintf(stderr, PROG ": %s\n", tkm_errstr(c));
            t->failed = 1;
            break;
        }
        if (t->nlat < MAX_SAMPLES)
            t->lat[t->nlat++] = bench_now_ns() - t0;
        t->pairs++;
    }
    tkm_client_free(c);
    return NULL;
}

typedef struct evalsha_cmd {
    tkm__call call;
    const char *argv[3 + TKM__ARGV_MAX];
    char numkeys[16];
    int argc;
} evalsha_cmd;

/* The acquire command exactly as tkm_try_acquire(c, 1, ...) sends it. */
static void evalsha_init(evalsha_cmd *e, tkm_client *c)
{
    /* A try of the client's class (weight 1: "default"), no ticket. */
    tkm__acquire_args(&e->call, c, 1, tkm_client_options(c)->queue.class_name,
                      1, "", -1, "");
    snprintf(e->numkeys, sizeof(e->numkeys), "%d", e->call.nkeys);
    e->argc = 0;
    e->argv[e->argc++] = "EVALSHA";
    e->argv[e->argc++] = tkm__scripts[TKM__SCRIPT_ACQUIRE].sha1;
    e->argv[e->argc++] = e->numkeys;
    for (int i = 0; i < e->call.argc; i++)
        e->argv[e->argc++] = e->call.argv[i];
}

static int prepare(tkm_client *c)
{
    tkm_sync_info info = {
        .tokens = 900000000, .rate = 0, .refill_in_ms = -1, .timestamp_ms = -1};

    if (tkm_reset(c, NULL) != TKM_OK || tkm_sync(c, &info, NULL) != TKM_OK ||
        pair(c) != 0) {
        fprintf(stderr, PROG ": preparing the pool: %s\n", tkm_errstr(c));
        return -1;
    }
    return 0;
}

/* nthreads clients run pairs for `seconds` on url (or through the
 * sentinels): *pairs_per_s, and the pairs' p50 and p99 in us.  0, or -1. */
static int run_pairs(const char *url, const tkm_sentinel_options *sentinel,
                     int nthreads, int64_t seconds, int64_t *pairs,
                     double *pairs_per_s, double *p50_us, double *p99_us)
{
    volatile int go = 0, stop = 0;
    thr *ts = calloc((size_t)nthreads, sizeof(*ts));
    int64_t total = 0, t0, t1, *all = NULL;
    size_t nall = 0;
    int started = 0, failed = 0, ret = -1;

    if (ts == NULL)
        goto out;
    for (int i = 0; i < nthreads; i++) {
        ts[i].url = url;
        ts[i].sentinel = sentinel;
        ts[i].index = i;
        ts[i].go = &go;
        ts[i].stop = &stop;
        ts[i].lat = malloc(MAX_SAMPLES / (size_t)nthreads * sizeof(int64_t));
        if (ts[i].lat == NULL ||
            pthread_create(&ts[i].tid, NULL, thr_main, &ts[i]) != 0)
            break;
        started++;
    }
    bench_sleep_ms(300);
    t0 = bench_now_ns();
    go = 1;
    while (!bench_interrupted && bench_now_ns() - t0 < seconds * 1000000000)
        bench_sleep_ms(10);
    stop = 1;
    for (int i = 0; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    t1 = bench_now_ns();
    for (int i = 0; i < started; i++) {
        total += ts[i].pairs;
        nall += ts[i].nlat;
        failed |= ts[i].failed;
    }
    if (bench_interrupted || failed || started < nthreads)
        goto out;
    all = malloc((nall ? nall : 1) * sizeof(*all));
    if (all == NULL)
        goto out;
    nall = 0;
    for (int i = 0; i < started; i++) {
        memcpy(all + nall, ts[i].lat, ts[i].nlat * sizeof(*all));
        nall += ts[i].nlat;
    }
    bench_sort(all, nall);
    *pairs = total;
    *pairs_per_s = (double)total * 1e9 / (double)(t1 - t0);
    *p50_us = bench_pct_us(all, nall, 500);
    *p99_us = bench_pct_us(all, nall, 990);
    ret = 0;
out:
    for (int i = 0; i < nthreads && ts != NULL; i++)
        free(ts[i].lat);
    free(ts);
    free(all);
    return ret;
}

static int measure(const tkt_redis *srv, tkm_client *main_c, int nthreads,
                   int64_t seconds, row *out)
{
    int64_t total = 0;
    evalsha_cmd cmd;

    out->threads = nthreads;
    if (prepare(main_c) != 0 ||
        run_pairs(srv->url, NULL, nthreads, seconds, &total, &out->pairs_per_s,
                  &out->p50_us, &out->p99_us) != 0)
        return -1;
    out->trips_per_s = 2 * out->pairs_per_s;

    /* The same acquire through redis-benchmark, as many requests as the
     * library made round trips (at least 20000). */
    if (prepare(main_c) != 0)
        return -1;
    evalsha_init(&cmd, main_c);
    if (bench_redis_benchmark(srv->sock, nthreads,
                              total * 2 > 20000 ? total * 2 : 20000, cmd.argv,
                              cmd.argc, &out->evalsha_rps) != 0)
        return -1;
    out->ratio = out->trips_per_s / out->evalsha_rps;
    return 0;
}

/* ---- --sentinel: redis.sentinels against a plain URL, same master ------ */

#define ROUNDS 7

static double median(double *v)
{
    for (int i = 1; i < ROUNDS; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return v[ROUNDS / 2];
}

static int sentinel_compare(int64_t seconds, const int *counts, int ncounts,
                            const char *json_path)
{
    tkt_sentinels sen;
    tkm_sentinel_options so;
    tkm_options o;
    tkm_client *c = NULL;
    char url[64];
    double plain[MAX_COUNTS][ROUNDS], sent[MAX_COUNTS][ROUNDS];
    double p50s[MAX_COUNTS][ROUNDS], p50p[MAX_COUNTS][ROUNDS];
    double lat_ratio[MAX_COUNTS];
    int status = 1;
    FILE *jf;

    memset(&sen, 0, sizeof(sen));
    memset(&so, 0, sizeof(so));
    if (tkt_sentinels_start(&sen) != 0) {
        fprintf(stderr, PROG ": the sentinels did not start\n");
        return 1;
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", sen.node[0].port);
    so.count = TKT_SENTINELS;
    for (int i = 0; i < TKT_SENTINELS; i++)
        tkt_sentinel_addr(&sen, i, so.addr[i], sizeof(so.addr[i]));
    snprintf(so.master_name, sizeof(so.master_name), "%s", sen.name);
    bench_never_deny(&o, POOL, url, "decide-main", LEASE_TTL_S);
    if (tkm_client_open(&o, &c) != TKM_OK || prepare(c) != 0) {
        fprintf(stderr, PROG ": %s\n", c ? tkm_errstr(c) : "out of memory");
        goto out;
    }
    /* A first client through the sentinels records the master in the pool
     * (origin.lua: a state it did not see grounded is marked), and its
     * sync grounds it: the pairs of both kinds then measure decisions. */
    tkm_client_free(c);
    c = NULL;
    o.sentinel = so;
    {
        tkm_sync_info info = {.tokens = 900000000,
                              .rate = 0,
                              .refill_in_ms = -1,
                              .timestamp_ms = -1};
        if (tkm_client_open(&o, &c) != TKM_OK ||
            tkm_sync(c, &info, NULL) != TKM_OK || pair(c) != 0) {
            fprintf(stderr, PROG ": through the sentinels: %s\n",
                    c ? tkm_errstr(c) : "out of memory");
            goto out;
        }
    }
    printf("bench_decide --sentinel: tkm_try_acquire(1)+tkm_complete pairs "
           "against one master over TCP,\n  through redis.sentinels (3 "
           "sentinels) and a plain redis.url, alternately, %d rounds of "
           "%llds\n",
           ROUNDS, (long long)seconds);
    printf("%7s %14s %14s %10s %10s %7s %7s %s\n", "threads", "plain pairs/s",
           "sentinel p/s", "plain p50", "sent. p50", "ratio", "p50 r.",
           "target");
    for (int k = 0; k < ncounts; k++) {
        double ratio, p99;
        int64_t n;
        /* Which goes first alternates: a drift in the machine's load
         * weighs on both alike. */
        for (int r = 0; r < ROUNDS; r++) {
            for (int which = 0; which < 2; which++) {
                int sen_now = (r + which) % 2;
                if (run_pairs(url, sen_now ? &so : NULL, counts[k], seconds, &n,
                              sen_now ? &sent[k][r] : &plain[k][r],
                              sen_now ? &p50s[k][r] : &p50p[k][r], &p99) != 0)
                    goto out;
            }
        }
        ratio = median(sent[k]) / median(plain[k]);
        lat_ratio[k] = median(p50p[k]) / median(p50s[k]);
        printf("%7d %14.0f %14.0f %10.1f %10.1f %7.3f %7.3f %s\n", counts[k],
               plain[k][ROUNDS / 2], sent[k][ROUNDS / 2], p50p[k][ROUNDS / 2],
               p50s[k][ROUNDS / 2], ratio, lat_ratio[k],
               ratio >= 0.95 || lat_ratio[k] >= 0.95 ? "ok" : "MISS");
        fflush(stdout);
    }
    printf("target: ratio >= 0.95, pairs/s (sentinel/plain) or p50 "
           "(plain/sentinel), medians of %d rounds\n",
           ROUNDS);
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf, "{\"seconds\":%lld,\"rounds\":%d,\"sentinel\":[",
                (long long)seconds, ROUNDS);
        for (int k = 0; k < ncounts; k++)
            fprintf(jf,
                    "%s{\"threads\":%d,\"plain_pairs_per_s\":%.1f,"
                    "\"sentinel_pairs_per_s\":%.1f,\"ratio\":%.4f,"
                    "\"p50_ratio\":%.4f,\"target\":0.95}",
                    k ? "," : "", counts[k], plain[k][ROUNDS / 2],
                    sent[k][ROUNDS / 2],
                    sent[k][ROUNDS / 2] / plain[k][ROUNDS / 2], lat_ratio[k]);
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    status = 0;
out:
    tkm_client_free(c);
    tkt_sentinels_stop(&sen);
    return status;
}

int main(int argc, char **argv)
{
    int counts[MAX_COUNTS] = {1, 8, 32}, ncounts = 3;
    int64_t seconds = 3, sentinel = 0;
    const char *json_path = NULL;
    row rows[MAX_COUNTS];
    tkm_client *c = NULL;
    tkm_options o;
    tkt_redis srv;
    FILE *jf;
    int status = 1;

    const bench_opt opts[] = {
        {.name = "--seconds", .min = 1, .max = 3600, .num = &seconds},
        {.name = "--threads",
         .max = MAX_THREADS,
         .counts = counts,
         .cap = MAX_COUNTS,
         .n = &ncounts},
        {.name = "--json", .text = &json_path},
        {.name = "--sentinel", .min = 0, .max = 1, .num = &sentinel},
        {.name = NULL}};

    if (bench_parse_args(argc, argv, PROG,
                         "[--sentinel 1] [--seconds S] [--threads 1,8,32] "
                         "[--json FILE]",
                         opts) != 0)
        return 2;
    if (sentinel) {
        bench_signals();
        return sentinel_compare(seconds, counts, ncounts, json_path);
    }
    if (!bench_program_found(
            bench_env_or("TKM_REDIS_BENCHMARK", "redis-benchmark"))) {
        fprintf(stderr, PROG ": redis-benchmark not found (redis-tools)\n");
        return 1;
    }
    bench_signals();
    if (bench_redis_start(&srv, PROG) != 0)
        return 1;
    bench_never_deny(&o, POOL, srv.url, "decide-main", LEASE_TTL_S);
    if (tkm_client_open(&o, &c) != TKM_OK) {
        fprintf(stderr, PROG ": %s\n", c ? tkm_errstr(c) : "out of memory");
        goto out;
    }
    printf("bench_decide: tkm_try_acquire(1)+tkm_complete pairs, one "
           "tkm_client per thread, %llds each,\n  vs redis-benchmark -c N "
           "EVALSHA acquire (Unix socket)\n",
           (long long)seconds);
    printf("%7s %12s %12s %9s %9s %14s %7s %s\n", "threads", "pairs/s",
           "trips/s", "p50 us", "p99 us", "EVALSHA rps", "ratio", "target");
    for (int i = 0; i < ncounts; i++) {
        row *r = &rows[i];
        if (measure(&srv, c, counts[i], seconds, r) != 0)
            goto out;
        r->target = counts[i] == 1 ? 0.9 : counts[i] == 8 ? 0.8 : 0;
        printf("%7d %12.0f %12.0f %9.1f %9.1f %14.0f %7.3f %s\n", r->threads,
               r->pairs_per_s, r->trips_per_s, r->p50_us, r->p99_us,
               r->evalsha_rps, r->ratio,
               r->target == 0          ? "-"
               : r->ratio >= r->target ? "ok"
                                       : "MISS");
        fflush(stdout);
    }
    printf("targets: ratio >= 0.9 with 1 thread, >= 0.8 with 8\n");
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf, "{\"seconds\":%lld,\"rows\":[", (long long)seconds);
        for (int i = 0; i < ncounts; i++)
            fprintf(jf,
                    "%s{\"threads\":%d,\"pairs_per_s\":%.1f,"
                    "\"round_trips_per_s\":%.1f,\"pair_p50_us\":%.2f,"
                    "\"pair_p99_us\":%.2f,\"redis_benchmark_evalsha_rps\":%.1f,"
                    "\"ratio\":%.4f,\"target\":%.2f}",
                    i ? "," : "", rows[i].threads, rows[i].pairs_per_s,
                    rows[i].trips_per_s, rows[i].p50_us, rows[i].p99_us,
                    rows[i].evalsha_rps, rows[i].ratio, rows[i].target);
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    status = 0;
out:
    tkm_client_free(c);
    return bench_finish(status, PROG, &srv);
}
