/* Helpers shared by the benchmarks (bench_policy, bench_decide,
 * bench_scaling, bench_plugin): clocks, percentiles, redis-benchmark's
 * figure, the private redis-server of tests/fixtures/redis.h, and the
 * SIGINT/SIGTERM flag every benchmark polls so that it always stops its
 * servers (child processes: tests/fixtures/proc.h).  Not part of the
 * library. */
#ifndef TKM_BENCH_UTIL_H
#define TKM_BENCH_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redis.h"

/* Raised by SIGINT or SIGTERM once bench_signals() is installed. */
extern volatile sig_atomic_t bench_interrupted;

/* SIGINT/SIGTERM raise bench_interrupted (which also stops the wait for a
 * child, tkt_cancel); SIGPIPE is ignored. */
void bench_signals(void);

int64_t bench_now_ns(void);
void bench_sleep_ms(int64_t ms);

/* Sort v (n values, in ns) and return the nearest-rank percentile in us
 * (permille: 500 = p50, 990 = p99); 0 when n is 0. */
/* "1,8,32": at most `cap` whole numbers in 1..max; 0, or -1 when malformed. */
int bench_parse_counts(const char *s, int64_t max, int *v, int cap, int *n);

void bench_sort(int64_t *v, size_t n);
double bench_pct_us(const int64_t *sorted, size_t n, int permille);

/* Whether execvp would find `name`. */
int bench_program_found(const char *name);
/* getenv(var), or fallback when unset or empty. */
const char *bench_env_or(const char *var, const char *fallback);

/* tkt_redis_start, with a message and the folder removed on failure: 0,
 * or -1. */
int bench_redis_start(tkt_redis *srv, const char *prog);
/* A benchmark's end: says so if it was interrupted, stops srv, returns
 * status. */
int bench_finish(int status, const char *prog, tkt_redis *srv);

/* redis-benchmark -s sock -c clients -n n -q CMD...: *rps from its summary.
 * Returns 0, or -1 with a message on stderr. */
int bench_redis_benchmark(const char *sock, int clients, int64_t n,
                          const char *const *cmd, int ncmd, double *rps);

/* Options for pool `pool` on `url` as worker `id` that never deny: recharge
 * never starts and no deficit limit is reachable, so a benchmark measures
 * decisions, not waits.  Leases live lease_ttl_s. */
struct tkm_options;
void bench_never_deny(struct tkm_options *o, const char *pool, const char *url,
                      const char *id, int64_t lease_ttl_s);

/* One "--name VALUE" option of a benchmark's command line: a whole number
 * in min..max into *num, or a list "1,8,32" of at most cap numbers in
 * 1..max into counts (their count into *n), or the text into *text. */
typedef struct bench_opt {
    const char *name;
    int64_t min, max;
    int64_t *num;
    int *counts, cap, *n;
    const char **text;
} bench_opt;

/* Parse argv[1..] against opts (ended by a NULL name): 0, or 2 after
 * "usage: PROG USAGE" on stderr. */
int bench_parse_args(int argc, char **argv, const char *prog, const char *usage,
                     const bench_opt *opts);

/* `--iterations N` (min..10 000 000) and `--json FILE`: 0, or 2 after a
 * usage line on stderr. */
int bench_parse_iterations(int argc, char **argv, const char *prog, int64_t min,
                           int64_t *n, const char **json_path);

/* Open path for the JSON figures ("-" = none: returns NULL quietly). */
FILE *bench_json_open(const char *path, const char *prog);

/* "redis-server v=7.0.15" -> "7.0.15" into buf ("unknown" on failure). */
void bench_redis_version(char *buf, size_t len);

#endif
