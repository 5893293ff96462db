/*
 * bench_failover: failover time as workers see it.
 *
 * A master, a replica and three redis-sentinel processes
 * (tests/fixtures/sentinel.c: down-after-milliseconds 1000); N client
 * threads, each with its own tkm_client through redis.sentinels, run
 * tkm_try_acquire(1) + tkm_complete pairs, retrying every 20 ms after a
 * failure.  The master is SIGKILLed.  Each thread notes its first denial
 * (a call that fails: EREDIS) and its first grant after it; a need_sync on
 * the new master is answered as tkm_keepa would, by a sync (the fake /token
 * answers at once here).  Per run: the time from the kill to the promotion
 * (the first sentinel naming the replica), and per thread from its first
 * denial to its first grant; the slowest thread is the run's figure.
 * Runs are repeated (fresh servers each time) and their medians printed.
 *
 *   bench_failover [--runs N] [--threads N] [--json FILE]
 *
 * Exit status 0 when measured, 1 when something could not run, 2 on a bad
 * command line.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "proc.h"
#include "sentinel.h"
#include "tokenmgr.h"

#define PROG        "bench_failover"
#define POOL        "failover"
#define MAX_THREADS 32
#define MAX_RUNS    20
#define RETRY_MS    20

typedef struct thr {
    pthread_t tid;
    tkm_options o;
    volatile int *killed, *stop;
    int64_t denied_ns, granted_ns; /* after the kill; -1: not yet */
    int64_t syncs;
    int failed;
} thr;

static void *thr_main(void *arg)
{
    thr *t = arg;
    tkm_client *c = NULL;
    tkm_sync_info info = {
        .tokens = 900000000, .rate = 0, .refill_in_ms = -1, .timestamp_ms = -1};

    t->denied_ns = t->granted_ns = -1;
    if (tkm_client_open(&t->o, &c) != TKM_OK) {
        t->failed = 1;
        tkm_client_free(c);
        return NULL;
    }
    while (!*t->stop && !bench_interrupted) {
        tkm_grant g;
        tkm_code rc = tkm_try_acquire(c, 1, &g);
        int killed = *t->killed;
        if (rc == TKM_OK && g.reason == TKM_REASON_NEED_SYNC) {
            t->syncs++;
            rc = tkm_sync(c, &info, NULL);
            if (rc == TKM_OK)
                continue;
        }
        if (rc == TKM_OK && g.granted)
            rc = tkm_complete(c, g.id, 1, NULL, NULL);
        if (rc == TKM_OK && g.granted) {
            if (killed && t->denied_ns >= 0 && t->granted_ns < 0)
                t->granted_ns = bench_now_ns();
            continue;
        }
        if (rc == TKM_OK) {
            fprintf(stderr, PROG ": denied: %s\n", tkm_reason_str(g.reason));
            t->failed = 1;
            break;
        }
        if (killed && t->denied_ns < 0)
            t->denied_ns = bench_now_ns();
        bench_sleep_ms(RETRY_MS);
    }
    tkm_client_free(c);
    return NULL;
}

typedef struct run_figures {
    double promoted_ms;   /* kill to the first sentinel naming the replica */
    double slowest_ms;    /* the slowest thread: first denial to first grant */
    double median_ms;     /* the median thread */
    double kill_grant_ms; /* kill to the last thread's first grant */
} run_figures;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int promoted(void *arg)
{
    const tkt_sentinels *s = arg;

    for (int i = 0; i < TKT_SENTINELS; i++)
        if (tkt_sentinel_named(s, i) == s->node[1].port)
            return 1;
    return 0;
}

static int one_run(int nthreads, run_figures *f)
{
    tkt_sentinels s;
    thr ts[MAX_THREADS];
    volatile int killed = 0, stop = 0;
    int started = 0, ret = -1;
    int64_t kill_ns, end;
    double took[MAX_THREADS];
    tkm_sentinel_options so;

    memset(&s, 0, sizeof(s));
    memset(ts, 0, sizeof(ts));
    memset(&so, 0, sizeof(so));
    if (tkt_sentinels_start(&s) != 0)
        return -1;
    so.count = TKT_SENTINELS;
    for (int i = 0; i < TKT_SENTINELS; i++)
        tkt_sentinel_addr(&s, i, so.addr[i], sizeof(so.addr[i]));
    snprintf(so.master_name, sizeof(so.master_name), "%s", s.name);
    for (int i = 0; i < nthreads; i++) {
        char id[32];
        snprintf(id, sizeof(id), "f%d", i);
        bench_never_deny(&ts[i].o, POOL, "redis://127.0.0.1/0", id, 60);
        ts[i].o.sentinel = so;
        ts[i].o.timeout_ms = 300;
        ts[i].killed = &killed;
        ts[i].stop = &stop;
        if (pthread_create(&ts[i].tid, NULL, thr_main, &ts[i]) != 0)
            break;
        started++;
    }
    bench_sleep_ms(1500); /* every thread synced and granting */
    kill(s.node[0].pid, SIGKILL);
    kill_ns = bench_now_ns();
    killed = 1;
    tkt_stop_process(s.node[0].pid, SIGKILL, 2000);
    s.node[0].pid = 0;
    if (!tkt_wait_until(promoted, &s, 30000, 10)) {
        fprintf(stderr, PROG ": no promotion within 30 s\n");
        goto out;
    }
    f->promoted_ms = (double)(bench_now_ns() - kill_ns) / 1e6;
    end = bench_now_ns() + 20000000000LL;
    for (;;) {
        int all = 1;
        for (int i = 0; i < started; i++)
            all &= ts[i].granted_ns >= 0 || ts[i].failed;
        if (all || bench_now_ns() > end || bench_interrupted)
            break;
        bench_sleep_ms(10);
    }
    f->kill_grant_ms = 0;
    for (int i = 0; i < started; i++) {
        if (ts[i].failed || ts[i].granted_ns < 0 || ts[i].denied_ns < 0) {
            fprintf(stderr, PROG ": thread %d did not come back\n", i);
            goto out;
        }
        took[i] = (double)(ts[i].granted_ns - ts[i].denied_ns) / 1e6;
        if ((double)(ts[i].granted_ns - kill_ns) / 1e6 > f->kill_grant_ms)
            f->kill_grant_ms = (double)(ts[i].granted_ns - kill_ns) / 1e6;
    }
    qsort(took, (size_t)started, sizeof(took[0]), cmp_double);
    f->slowest_ms = took[started - 1];
    f->median_ms = took[started / 2];
    ret = started == nthreads ? 0 : -1;
out:
    stop = 1;
    for (int i = 0; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    tkt_sentinels_stop(&s);
    return ret;
}

static double median_of(const run_figures *r, int n, size_t off)
{
    double v[MAX_RUNS];

    for (int i = 0; i < n; i++)
        v[i] = *(const double *)(const void *)((const char *)&r[i] + off);
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    int64_t runs = 5, threads = 4;
    const char *json_path = NULL;
    run_figures r[MAX_RUNS];
    FILE *jf;
    const bench_opt opts[] = {
        {.name = "--runs", .min = 1, .max = MAX_RUNS, .num = &runs},
        {.name = "--threads", .min = 1, .max = MAX_THREADS, .num = &threads},
        {.name = "--json", .text = &json_path},
        {.name = NULL}};

    if (bench_parse_args(argc, argv, PROG,
                         "[--runs N] [--threads N] [--json FILE]", opts) != 0)
        return 2;
    bench_signals();
    printf("bench_failover: %lld client threads through 3 sentinels "
           "(down-after-milliseconds 1000), master SIGKILLed;\n  per thread: "
           "first denial to first grant (retry every %d ms, need_sync "
           "answered by a sync)\n",
           (long long)threads, RETRY_MS);
    printf("%4s %12s %14s %14s %14s\n", "run", "promoted ms", "median thr ms",
           "slowest thr ms", "kill-to-all ms");
    for (int i = 0; i < runs; i++) {
        if (one_run((int)threads, &r[i]) != 0)
            return 1;
        printf("%4d %12.0f %14.0f %14.0f %14.0f\n", i + 1, r[i].promoted_ms,
               r[i].median_ms, r[i].slowest_ms, r[i].kill_grant_ms);
        fflush(stdout);
    }
    printf("%4s %12.0f %14.0f %14.0f %14.0f\n", "med",
           median_of(r, (int)runs, offsetof(run_figures, promoted_ms)),
           median_of(r, (int)runs, offsetof(run_figures, median_ms)),
           median_of(r, (int)runs, offsetof(run_figures, slowest_ms)),
           median_of(r, (int)runs, offsetof(run_figures, kill_grant_ms)));
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf, "{\"threads\":%lld,\"runs\":[", (long long)threads);
        for (int i = 0; i < runs; i++)
            fprintf(jf,
                    "%s{\"promoted_ms\":%.1f,\"median_thread_ms\":%.1f,"
                    "\"slowest_thread_ms\":%.1f,\"kill_to_all_ms\":%.1f}",
                    i ? "," : "", r[i].promoted_ms, r[i].median_ms,
                    r[i].slowest_ms, r[i].kill_grant_ms);
        fprintf(jf, "],\"median_slowest_thread_ms\":%.1f}\n",
                median_of(r, (int)runs, offsetof(run_figures, slowest_ms)));
        fclose(jf);
    }
    return 0;
}
