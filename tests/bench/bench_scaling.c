/*
 * bench_scaling: does a decision or a read get slower as a pool grows?
 *
 * Against a private redis-server, for 1, 100, 1000 and 10000 registered
 * workers (fresh heartbeats) and 1, 100 and 1000 outstanding leases, times
 * tkm_try_acquire(1) (+ tkm_release, so the lease count stays put) and
 * tkm_status.  A last row reads the pool with all 10000 workers stale (a
 * reader whose stale_after_s is 1 s): status counts alive workers from the
 * heartbeat index and the busy index, so the departed cost nothing.
 *
 *   bench_scaling [--iterations N] [--json FILE]
 *
 * Exit status 0 when measured, 1 when something could not run, 2 on a bad
 * command line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "redis.h"
#include "tokenmgr.h"

#define PROG       "bench_scaling"
#define POOL       "scaling"
#define MAX_LEASES 1000
#define NW         4
#define NL         3

static const int worker_steps[NW] = {1, 100, 1000, 10000};
static const int lease_steps[NL] = {1, 100, 1000};

typedef struct cell {
    int workers, leases, stale;
    double acq_p50, acq_p99, rel_p50, st_p50, st_p99;
} cell;

/* Workers w<from>..w<to-1> send one heartbeat each. */
static int add_workers(const char *url, int from, int to)
{
    for (int i = from; i < to && !bench_interrupted; i++) {
        tkm_client *c = NULL;
        tkm_options o;
        char id[32];
        tkm_code rc;

        snprintf(id, sizeof(id), "w%d", i);
        bench_never_deny(&o, POOL, url, id, 3600);
        rc = tkm_client_open(&o, &c);
        if (rc == TKM_OK)
            rc = tkm_heartbeat(c, "bench");
        if (rc != TKM_OK)
            fprintf(stderr, PROG ": worker %s: %s\n", id,
                    c ? tkm_errstr(c) : "out of memory");
        tkm_client_free(c);
        if (rc != TKM_OK)
            return -1;
    }
    return bench_interrupted ? -1 : 0;
}

static int time_calls(tkm_client *c, tkm_client *reader, int64_t n, cell *out)
{
    int64_t *acq = malloc((size_t)n * sizeof(*acq));
    int64_t *rel = malloc((size_t)n * sizeof(*rel));
    int64_t *st = malloc((size_t)n * sizeof(*st));
    int ret = -1;

    if (acq == NULL || rel == NULL || st == NULL)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        tkm_pool_status s;
        tkm_grant g;
        int64_t t0, t1, t2, t3;

        if (bench_interrupted)
            goto out;
        t0 = bench_now_ns();
        if (c != NULL) {
            if (tkm_try_acquire(c, 1, &g) != TKM_OK || !g.granted)
                goto fail;
            t1 = bench_now_ns();
            if (tkm_release(c, g.id, NULL) != TKM_OK)
                goto fail;
        } else {
            t1 = t0;
        }
        t2 = bench_now_ns();
        if (tkm_status(reader, &s) != TKM_OK) {
            fprintf(stderr, PROG ": status: %s\n", tkm_errstr(reader));
            goto out;
        }
        t3 = bench_now_ns();
        acq[i] = t1 - t0;
        rel[i] = t2 - t1;
        st[i] = t3 - t2;
    }
    bench_sort(acq, (size_t)n);
    bench_sort(rel, (size_t)n);
    bench_sort(st, (size_t)n);
    out->acq_p50 = c ? bench_pct_us(acq, (size_t)n, 500) : -1;
    out->acq_p99 = c ? bench_pct_us(acq, (size_t)n, 990) : -1;
    out->rel_p50 = c ? bench_pct_us(rel, (size_t)n, 500) : -1;
    out->st_p50 = bench_pct_us(st, (size_t)n, 500);
    out->st_p99 = bench_pct_us(st, (size_t)n, 990);
    ret = 0;
    goto out;
fail:
    fprintf(stderr, PROG ": acquire/release: %s\n", tkm_errstr(c));
out:
    free(acq);
    free(rel);
    free(st);
    return ret;
}

static void print_cell(const cell *x)
{
    if (x->acq_p50 < 0)
        printf("%8d%s %7d %10s %10s %10s %10.1f %10.1f\n", x->workers,
               x->stale ? "s" : " ", x->leases, "-", "-", "-", x->st_p50,
               x->st_p99);
    else
        printf("%8d%s %7d %10.1f %10.1f %10.1f %10.1f %10.1f\n", x->workers,
               x->stale ? "s" : " ", x->leases, x->acq_p50, x->acq_p99,
               x->rel_p50, x->st_p50, x->st_p99);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int64_t n = 1000;
    const char *json_path = NULL;
    cell cells[NW * NL + 1];
    int ncells = 0, have = 0, status = 1;
    char(*ids)[TKM_GRANT_ID_MAX + 1] = NULL;
    int nids = 0;
    tkm_client *c = NULL, *strict = NULL;
    tkm_sync_info info = {900000000, 0, -1, -1};
    tkm_options o;
    tkt_redis srv;
    FILE *jf;

    if (bench_parse_iterations(argc, argv, PROG, 10, &n, &json_path) != 0)
        return 2;
    bench_signals();
    if (bench_redis_start(&srv, PROG) != 0)
        return 1;
    ids = calloc(MAX_LEASES, sizeof(*ids));
    bench_never_deny(&o, POOL, srv.url, "scaling-main", 3600);
    if (ids == NULL || tkm_client_open(&o, &c) != TKM_OK ||
        tkm_reset(c, NULL) != TKM_OK || tkm_sync(c, &info, NULL) != TKM_OK) {
        fprintf(stderr, PROG ": %s\n", c ? tkm_errstr(c) : "out of memory");
        goto out;
    }
    o.heartbeat.stale_after_s = 1;
    if (tkm_client_open(&o, &strict) != TKM_OK)
        goto out;

    printf("bench_scaling: per-call wall time (us) as the pool grows, %lld "
           "calls per cell\n",
           (long long)n);
    printf("%9s %7s %10s %10s %10s %10s %10s\n", "workers", "leases", "acq p50",
           "acq p99", "rel p50", "status p50", "status p99");
    for (int w = 0; w < NW; w++) {
        if (add_workers(srv.url, have, worker_steps[w]) != 0)
            goto out;
        have = worker_steps[w];
        for (int l = 0; l < NL; l++) {
            cell *x = &cells[ncells];
            /* One lease is the timed acquire's own; hold leases - 1. */
            while (nids < lease_steps[l] - 1) {
                tkm_grant g;
                if (tkm_try_acquire(c, 1, &g) != TKM_OK || !g.granted)
                    goto out;
                snprintf(ids[nids++], sizeof(ids[0]), "%s", g.id);
            }
            memset(x, 0, sizeof(*x));
            x->workers = have;
            x->leases = lease_steps[l];
            if (time_calls(c, c, n, x) != 0)
                goto out;
            print_cell(x);
            ncells++;
        }
        while (nids > 0)
            if (tkm_release(c, ids[--nids], NULL) != TKM_OK)
                goto out;
    }
    /* Every heartbeat older than the strict reader's 1 s. */
    bench_sleep_ms(2100);
    memset(&cells[ncells], 0, sizeof(cells[0]));
    cells[ncells].workers = have;
    cells[ncells].leases = 0;
    cells[ncells].stale = 1;
    if (time_calls(NULL, strict, n / 4 > 10 ? n / 4 : 10, &cells[ncells]) != 0)
        goto out;
    print_cell(&cells[ncells]);
    ncells++;
    printf("s: every worker stale (status looks only at workers inside a "
           "busy period)\n");
    jf = bench_json_open(json_path, PROG);
    if (jf != NULL) {
        fprintf(jf, "{\"iterations\":%lld,\"cells\":[", (long long)n);
        for (int i = 0; i < ncells; i++)
            fprintf(jf,
                    "%s{\"workers\":%d,\"leases\":%d,\"stale\":%s,"
                    "\"acquire_p50_us\":%.2f,\"acquire_p99_us\":%.2f,"
                    "\"release_p50_us\":%.2f,\"status_p50_us\":%.2f,"
                    "\"status_p99_us\":%.2f}",
                    i ? "," : "", cells[i].workers, cells[i].leases,
                    cells[i].stale ? "true" : "false", cells[i].acq_p50,
                    cells[i].acq_p99, cells[i].rel_p50, cells[i].st_p50,
                    cells[i].st_p99);
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    status = 0;
out:
    free(ids);
    tkm_client_free(c);
    tkm_client_free(strict);
    return bench_finish(status, PROG, &srv);
}
