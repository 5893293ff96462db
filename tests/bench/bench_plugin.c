/*
 * bench_plugin: what one read of the collectd plugin costs.
 *
 * A plugin read is one tkm_status() (native layout) or one tkm_legacy_read()
 * + tkm_legacy_project() (legacy layout).  Against a private redis-server,
 * for a pool with 1 worker, 100 and 1000 live workers and 1000 stale ones
 * (status counts the alive ones from the heartbeat index and the busy
 * index, never walking the departed), this prints per read:
 *
 *   round trips   tkm_client_round_trips() delta (target: 1)
 *   wall us       p50 / p99 / mean of the call, client side
 *   cpu us        this process' CPU (CLOCK_PROCESS_CPUTIME_ID) per call
 *   redis us      Redis' own time per call (INFO commandstats, evalsha)
 *   alloc         bytes and blocks malloc'ed per call by the library and
 *                 hiredis (counted by interposing malloc; not under ASan)
 *   heap growth   mallinfo2() in-use bytes after all calls minus before
 *
 * Then collectd's resident memory (VmRSS from /proc after ~5 s at Interval 1)
 * with the plugin reading 10 pools, and without the plugin (the same config
 * minus tokenmgr): collectd -f with a private BaseDir, started by the
 * collectd fixture (tests/fixtures/collectd.h) as tests/check_plugin.c
 * starts it.
 *
 *   bench_plugin [--iterations N] [--json FILE]
 *
 * Figures, not a test: exit status 0 when measured, 1 when something could
 * not run, 2 on a bad command line.  Target: one round trip and under
 * 1 ms wall for 1000 workers.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench_util.h"

#ifdef TKT_HAVE_COLLECTD
#include "collectd.h"
#endif
#include "redis.h"
#include "tokenmgr.h"

#define PROG               "bench_plugin"
#define POOL               "bench"
#define DEFAULT_ITERATIONS 2000
#define WARMUP             50
#define TARGET_US          1000.0

/* ---- counting allocations ----------------------------------------------
 *
 * The executable's malloc family interposes libc's for the whole process,
 * libtokenmgr and hiredis included.  ASan brings its own allocator, so the
 * sanitizer build counts nothing.
 */
#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static size_t alloc_bytes, alloc_blocks;

void *malloc(size_t n)
{
    alloc_bytes += n;
    alloc_blocks++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    alloc_bytes += n * size;
    alloc_blocks++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    alloc_bytes += n;
    alloc_blocks++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static int64_t ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Redis' total microseconds and calls of EVALSHA so far. */
static void evalsha_stats(redisContext *r, double *usec, double *calls)
{
    redisReply *rep = redisCommand(r, "INFO commandstats");
    const char *p;

    *usec = *calls = 0;
    if (rep == NULL)
        return;
    p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "cmdstat_evalsha:")
                                        : NULL;
    if (p != NULL) {
        const char *c = strstr(p, "calls="), *u = strstr(p, "usec=");
        if (c != NULL)
            tkm_parse_double(strndupa(c + 6, strcspn(c + 6, ",\r\n")), 0, 1e18,
                             calls);
        if (u != NULL)
            tkm_parse_double(strndupa(u + 5, strcspn(u + 5, ",\r\n")), 0, 1e18,
                             usec);
    }
    freeReplyObject(rep);
}

typedef struct figures {
    double round_trips, p50_us, p99_us, mean_us, cpu_us, redis_us;
    double alloc_bytes, alloc_blocks;
    long long heap_growth;
} figures;

typedef enum layout { NATIVE, LEGACY } layout;

static int one_read(tkm_client *c, layout l)
{
    if (l == NATIVE) {
        tkm_pool_status st;
        return tkm_status(c, &st) == TKM_OK ? 0 : -1;
    } else {
        tkm_legacy_raw raw;
        tkm_legacy_status st;
        if (tkm_legacy_read(c, &raw) != TKM_OK)
            return -1;
        return tkm_legacy_project(&raw, 0, &st) == TKM_OK ? 0 : -1;
    }
}

static int measure(tkm_client *c, redisContext *r, layout l, int64_t n,
                   figures *f)
{
    int64_t *wall = calloc((size_t)n, sizeof(*wall));
    int64_t trips0, cpu0, sum = 0;
    double usec0, calls0, usec1, calls1;
    size_t bytes0 = 0, blocks0 = 0;
    struct mallinfo2 m0, m1;

    if (wall == NULL)
        return -1;
    for (int i = 0; i < WARMUP; i++) {
        if (bench_interrupted || one_read(c, l) != 0) {
            fprintf(stderr, PROG ": read failed: %s\n", tkm_errstr(c));
            free(wall);
            return -1;
        }
    }
    evalsha_stats(r, &usec0, &calls0);
    m0 = mallinfo2();
    trips0 = tkm_client_round_trips(c);
#if COUNTING
    bytes0 = alloc_bytes;
    blocks0 = alloc_blocks;
#endif
    cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int64_t i = 0; i < n; i++) {
        int64_t t0 = ns(CLOCK_MONOTONIC);
        if (bench_interrupted || one_read(c, l) != 0) {
            fprintf(stderr, PROG ": read failed: %s\n", tkm_errstr(c));
            free(wall);
            return -1;
        }
        wall[i] = ns(CLOCK_MONOTONIC) - t0;
        sum += wall[i];
    }
    f->cpu_us = (double)(ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e3 / (double)n;
#if COUNTING
    f->alloc_bytes = (double)(alloc_bytes - bytes0) / (double)n;
    f->alloc_blocks = (double)(alloc_blocks - blocks0) / (double)n;
#else
    (void)bytes0;
    (void)blocks0;
    f->alloc_bytes = f->alloc_blocks = -1;
#endif
    f->round_trips = (double)(tkm_client_round_trips(c) - trips0) / (double)n;
    m1 = mallinfo2();
    f->heap_growth = (long long)m1.uordblks - (long long)m0.uordblks;
    evalsha_stats(r, &usec1, &calls1);
    f->redis_us = calls1 > calls0 ? (usec1 - usec0) / (calls1 - calls0) : -1;
    qsort(wall, (size_t)n, sizeof(*wall), cmp_i64);
    f->p50_us = (double)wall[n / 2] / 1e3;
    f->p99_us = (double)wall[(n * 99) / 100] / 1e3;
    f->mean_us = (double)sum / 1e3 / (double)n;
    free(wall);
    return 0;
}

/* Register `count` workers w0..w(count-1) through the library. */
static int add_workers(const char *url, int count)
{
    for (int i = 0; i < count; i++) {
        tkm_options o;
        tkm_client *c;
        tkm_code rc;

        tkm_options_init(&o);
        snprintf(o.pool, sizeof(o.pool), POOL);
        snprintf(o.redis_url, sizeof(o.redis_url), "%s", url);
        snprintf(o.worker_id, sizeof(o.worker_id), "worker-%d", i);
        if (tkm_client_open(&o, &c) != TKM_OK) {
            fprintf(stderr, PROG ": %s\n", tkm_errstr(c));
            tkm_client_free(c);
            return -1;
        }
        rc = tkm_heartbeat(c, "bench");
        if (rc != TKM_OK)
            fprintf(stderr, PROG ": heartbeat: %s\n", tkm_errstr(c));
        tkm_client_free(c);
        if (rc != TKM_OK)
            return -1;
    }
    return 0;
}

/* ---- collectd's resident memory ---------------------------------------- */

/* VmRSS of pid in kB, -1 when unreadable. */
static long long vm_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *p = line + 6, *end;
            int64_t v;
            p += strspn(p, " \t");
            end = p + strspn(p, "0123456789");
            *end = '\0';
            if (tkm_parse_int(p, 0, INT64_MAX, &v) == TKM_OK)
                kb = (long long)v;
            break;
        }
    }
    fclose(f);
    return kb;
}

#ifdef TKT_HAVE_COLLECTD
/* Run collectd -f (the collectd fixture, as tests/check_plugin.c starts it)
 * for ~5 s at Interval 1, with (10 pools) or without the plugin; *rss_kb
 * its VmRSS then.  The sanitizer build's plugin runs with the ASan runtime
 * preloaded, so its RSS is not the normal build's.  0, or -1 when it could
 * not run. */
static int collectd_rss(const char *url, int with_plugin, long long *rss_kb)
{
    tkt_collectd cd;
    tkt_collectd_opts opts = {.interval = 1, .without_tokenmgr = !with_plugin};
    char pools[4096] = "";
    int ret = -1;

    *rss_kb = -1;
    if (tkt_collectd_init(&cd, "bench") != 0)
        return -1;
    for (int i = 0; i < 10 && with_plugin; i++) {
        size_t n = strlen(pools);
        snprintf(pools + n, sizeof(pools) - n,
                 "  <Pool \"p%d\">\n    RedisURL \"%s\"\n"
                 "    Timeout 300\n  </Pool>\n",
                 i, url);
    }
    if ((with_plugin ? tkt_collectd_plugin_conf(
                           &cd, "<Plugin tokenmgr>\n%s</Plugin>\n", pools)
                     : tkt_collectd_plugin_conf(&cd, "# no plugin\n")) != 0 ||
        tkt_collectd_render(&cd, &opts) != 0 || tkt_collectd_start(&cd, 0) != 0)
        goto out;
    for (int i = 0; i < 50 && !bench_interrupted; i++)
        bench_sleep_ms(100);
    if (!tkt_collectd_alive(&cd)) {
        fprintf(stderr, PROG ": collectd exited early:\n");
        tkt_collectd_dump(&cd);
        goto out;
    }
    *rss_kb = vm_rss_kb(cd.pid);
    tkt_collectd_stop(&cd);
    ret = bench_interrupted || *rss_kb < 0 ? -1 : 0;
out:
    tkt_collectd_cleanup(&cd);
    return ret;
}
#endif

static void print_row(const char *name, const figures *f)
{
    char alloc[48];

    if (f->alloc_bytes < 0)
        snprintf(alloc, sizeof(alloc), "%18s", "n/a (ASan)");
    else
        snprintf(alloc, sizeof(alloc), "%8.0f B %4.1f blk", f->alloc_bytes,
                 f->alloc_blocks);
    printf("%-30s %6.2f %8.1f %8.1f %8.1f %8.1f %8.1f %s %+8lld B  %s\n", name,
           f->round_trips, f->p50_us, f->p99_us, f->mean_us, f->cpu_us,
           f->redis_us, alloc, f->heap_growth,
           f->round_trips <= 1.0 && f->p99_us < TARGET_US ? "ok" : "MISS");
}

static void json_fig(FILE *jf, const char *name, const figures *f, int first)
{
    if (jf == NULL)
        return;
    fprintf(jf,
            "%s\"%s\":{\"round_trips\":%.3f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
            "\"mean_us\":%.2f,\"cpu_us\":%.2f,\"redis_us\":%.2f,"
            "\"alloc_bytes\":%.1f}",
            first ? "" : ",", name, f->round_trips, f->p50_us, f->p99_us,
            f->mean_us, f->cpu_us, f->redis_us, f->alloc_bytes);
}

int main(int argc, char **argv)
{
    int64_t n = DEFAULT_ITERATIONS;
    const char *json_path = NULL;
    tkt_redis srv;
    tkm_options o;
    tkm_client *c = NULL, *strict = NULL;
    redisContext *r = NULL;
    figures f[5];
    static const char *const names[5] = {
        "native_1_worker", "native_100_workers", "native_1000_workers",
        "native_1000_stale", "legacy"};
    long long rss_with = -1, rss_without = -1;
    FILE *jf;
    int rc = 1;

    if (bench_parse_iterations(argc, argv, PROG, 1, &n, &json_path) != 0)
        return 2;
    bench_signals();
    if (bench_redis_start(&srv, PROG) != 0)
        return 1;
    r = redisConnectUnix(srv.sock);
    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), POOL);
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", srv.url);
    if (r == NULL || r->err || tkm_client_open(&o, &c) != TKM_OK) {
        fprintf(stderr, PROG ": cannot open clients\n");
        goto out;
    }
    /* A reader for which heartbeats go stale after 1 s: the same workers,
     * judged stale after a short wait. */
    o.heartbeat.stale_after_s = 1;
    if (tkm_client_open(&o, &strict) != TKM_OK) {
        fprintf(stderr, PROG ": cannot open clients\n");
        goto out;
    }
    {
        tkm_sync_info s = {250, 5, -1, -1};
        if (tkm_sync(c, &s, NULL) != TKM_OK)
            goto out;
    }
    freeReplyObject(redisCommand(r, "SET keepa_tokens_left 54.0"));
    freeReplyObject(redisCommand(r, "SET keepa_refill_rate 5.0"));
    freeReplyObject(redisCommand(r, "SET keepa_token_timestamp 1732000000.5"));
    freeReplyObject(
        redisCommand(r, "SET keepa_worker_last_heartbeat 1732000030.25"));

    printf(PROG ": one plugin read, %lld iterations each (redis-server %s)\n",
           (long long)n, srv.url);
    printf("%-30s %6s %8s %8s %8s %8s %8s %18s %10s\n", "scenario", "trips",
           "p50 us", "p99 us", "mean us", "cpu us", "redis us", "alloc/read",
           "heap");
    if (add_workers(srv.url, 1) != 0 || measure(c, r, NATIVE, n, &f[0]) != 0)
        goto out;
    print_row("native, 1 worker", &f[0]);
    if (add_workers(srv.url, 100) != 0 || measure(c, r, NATIVE, n, &f[1]) != 0)
        goto out;
    print_row("native, 100 workers alive", &f[1]);
    if (add_workers(srv.url, 1000) != 0 || measure(c, r, NATIVE, n, &f[2]) != 0)
        goto out;
    print_row("native, 1000 workers alive", &f[2]);
    for (int i = 0; i < 20 && !bench_interrupted; i++)
        bench_sleep_ms(100); /* every heartbeat is now older than 1 s */
    if (measure(strict, r, NATIVE, n, &f[3]) != 0)
        goto out;
    print_row("native, 1000 workers stale", &f[3]);
    if (measure(c, r, LEGACY, n, &f[4]) != 0)
        goto out;
    print_row("legacy (read + project)", &f[4]);
    printf("target: 1 round trip and p99 under %.0f us per read\n", TARGET_US);
    fflush(stdout);

#ifndef TKT_HAVE_COLLECTD
    printf("collectd RSS: n/a (collectd not found at build time)\n");
#else
    {
        for (int i = 0; i < 10; i++) {
            tkm_options po = o;
            tkm_client *pc = NULL;
            tkm_sync_info s = {250, 5, -1, -1};
            snprintf(po.pool, sizeof(po.pool), "p%d", i);
            if (tkm_client_open(&po, &pc) != TKM_OK ||
                tkm_sync(pc, &s, NULL) != TKM_OK) {
                tkm_client_free(pc);
                goto out;
            }
            tkm_client_free(pc);
        }
        if (collectd_rss(srv.url, 0, &rss_without) != 0 ||
            collectd_rss(srv.url, 1, &rss_with) != 0)
            goto out;
        printf("collectd VmRSS after ~5 s at Interval 1: %lld kB without the "
               "plugin, %lld kB with it and 10 pools (%+lld kB)\n",
               rss_without, rss_with, rss_with - rss_without);
    }
#endif
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf, "{\"iterations\":%lld,", (long long)n);
        for (int i = 0; i < 5; i++)
            json_fig(jf, names[i], &f[i], i == 0);
        fprintf(jf,
                ",\"collectd_rss_kb_without_plugin\":%lld,"
                "\"collectd_rss_kb_with_plugin_10_pools\":%lld}\n",
                rss_without, rss_with);
        fclose(jf);
    }
    rc = 0;
out:
    tkm_client_free(c);
    tkm_client_free(strict);
    if (r != NULL)
        redisFree(r);
    return bench_finish(rc, PROG, &srv);
}
