/*
 * bench_acquire: how close libtokenmgr's round trips come to Redis itself.
 *
 * Starts a private redis-server on a Unix socket, times N rounds of
 * tkm_try_acquire(cost 1) + tkm_release through the library (each call timed
 * on its own), then has redis-benchmark send the very same EVALSHA of the
 * acquire script (same keys, policy and operation arguments as bucket.c
 * builds them) N times on one connection, and compares the two rates.
 *
 *   bench_acquire [--iterations N] [--warmup N] [--json]
 *
 * Exit status: 0 when the figures were measured (whether or not the ratio
 * reaches the target), 1 when something could not run, 2 on a bad command
 * line.  TKM_REDIS_SERVER and TKM_REDIS_BENCHMARK name other binaries.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "redis_fixture.h"
#include "tokenmgr.h"

#define PROG               "bench_acquire"
#define POOL               "bench"
#define WORKER             "benchworker"
#define DEFAULT_ITERATIONS 20000
#define DEFAULT_WARMUP     1000
#define MAX_ITERATIONS     10000000
#define TARGET_RATIO       0.90
#define OUTPUT_MAX         65536

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct bench_opts {
    int64_t iterations;
    int64_t warmup;
    int json;
} bench_opts;

typedef struct results {
    double tkm_round_trips_per_s;
    double tkm_acquire_per_s; /* acquires alone, from their own times */
    double acquire_p50_us, acquire_p99_us;
    double release_p50_us, release_p99_us;
    double evalsha_rps;
    double ping_rps;
    int have_ping;
} results;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: " PROG " [--iterations N] [--warmup N] [--json]\n"
            "  --iterations N  acquire+release rounds, and redis-benchmark "
            "requests (%d)\n"
            "  --warmup N      untimed rounds first (%d)\n"
            "  --json          print one JSON object instead of the table\n",
            DEFAULT_ITERATIONS, DEFAULT_WARMUP);
}

/* Returns 0, 1 (--help: exit 0) or -1 (bad command line). */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    o->iterations = DEFAULT_ITERATIONS;
    o->warmup = DEFAULT_WARMUP;
    o->json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t *target = NULL;
        int64_t min = 0;

        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--iterations") == 0) {
            target = &o->iterations;
            min = 1;
        } else if (strcmp(a, "--warmup") == 0) {
            target = &o->warmup;
            min = 0;
        } else {
            fprintf(stderr, PROG ": unknown argument '%s'\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, PROG ": %s needs a value\n", a);
            return -1;
        }
        i++;
        if (tkm_parse_int(argv[i], min, MAX_ITERATIONS, target) != TKM_OK) {
            fprintf(stderr, PROG ": %s '%s' is not an integer in %lld..%d\n", a,
                    argv[i], (long long)min, MAX_ITERATIONS);
            return -1;
        }
    }
    return 0;
}

/* Whether `name` would be found by execvp (a path, or a file in PATH). */
static int program_found(const char *name)
{
    const char *path = getenv("PATH");
    char file[4096];

    if (strchr(name, '/') != NULL)
        return access(name, X_OK) == 0;
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (;;) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);

        if (len == 0)
            snprintf(file, sizeof(file), "%s", name);
        else
            snprintf(file, sizeof(file), "%.*s/%s", (int)len, path, name);
        if (access(file, X_OK) == 0)
            return 1;
        if (end == NULL)
            return 0;
        path = end + 1;
    }
}

static const char *env_or(const char *var, const char *fallback)
{
    const char *v = getenv(var);

    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* Append to a bounded buffer, dropping the oldest bytes when it is full
 * (redis-benchmark's figure is at the end of its output). */
static void keep_tail(char *buf, size_t cap, size_t *len, const char *data,
                      size_t n)
{
    if (n >= cap) {
        data += n - (cap - 1);
        n = cap - 1;
        *len = 0;
    }
    if (*len + n > cap - 1) {
        size_t drop = *len + n - (cap - 1);
        memmove(buf, buf + drop, *len - drop);
        *len -= drop;
    }
    memcpy(buf + *len, data, n);
    *len += n;
    buf[*len] = '\0';
}

/*
 * Run argv (fork/execvp), its stdout and stderr read through a pipe into
 * out.  Returns 0 when it ran (*status from waitpid), -1 when it could not be
 * started (message printed).
 */
static int run_capture(const char *const *argv, char *out, size_t cap,
                       int *status)
{
    int outp[2], errp[2];
    int exec_errno = 0;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    out[0] = '\0';
    if (pipe2(outp, O_CLOEXEC) != 0)
        goto fail;
    if (pipe2(errp, O_CLOEXEC) != 0) {
        close(outp[0]);
        close(outp[1]);
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        goto fail;
    }
    if (pid == 0) {
        int e;
        ssize_t w;
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (dup2(outp[1], STDOUT_FILENO) >= 0 &&
            dup2(outp[1], STDERR_FILENO) >= 0)
            execvp(argv[0], (char *const *)argv);
        e = errno;
        w = write(errp[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    /* The exec-error pipe closes on a successful exec (O_CLOEXEC). */
    do {
        n = read(errp[0], &exec_errno, sizeof(exec_errno));
    } while (n < 0 && errno == EINTR);
    close(errp[0]);
    if (n == (ssize_t)sizeof(exec_errno)) {
        close(outp[0]);
        while (waitpid(pid, status, 0) < 0 && errno == EINTR)
            ;
        fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0],
                strerror(exec_errno));
        return -1;
    }
    for (;;) {
        char chunk[4096];

        n = read(outp[0], chunk, sizeof(chunk));
        if (n > 0) {
            keep_tail(out, cap, &len, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            if (interrupted)
                kill(pid, SIGTERM);
            continue;
        }
        break;
    }
    close(outp[0]);
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, PROG ": waitpid: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
fail:
    fprintf(stderr, PROG ": cannot start %s: %s\n", argv[0], strerror(errno));
    return -1;
}

/* The last line of its output, for messages: no progress lines, no \r. */
static const char *last_line(char *out)
{
    size_t len = strlen(out);
    char *p;

    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' ||
                       out[len - 1] == ' '))
        out[--len] = '\0';
    p = out + len;
    while (p > out && p[-1] != '\n' && p[-1] != '\r')
        p--;
    return p[0] ? p : "(no output)";
}

/* "EVALSHA ...: 49751.24 requests per second, p50=0.015 msec" -> 49751.24 */
static int parse_rps(const char *out, double *rps)
{
    const char *tag = " requests per second";
    const char *hit = NULL;
    const char *p;
    char *end;

    for (p = strstr(out, tag); p != NULL; p = strstr(p + 1, tag))
        hit = p;
    if (hit == NULL)
        return -1;
    p = hit;
    while (p > out && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == '.'))
        p--;
    if (p == hit)
        return -1;
    errno = 0;
    *rps = strtod(p, &end);
    if (errno != 0 || end != hit || !(*rps > 0))
        return -1;
    return 0;
}

/*
 * redis-benchmark -s SOCK -c 1 -n N -q CMD...; *rps from its summary line.
 * Returns 0, or -1 with a message (its own last line when it failed).
 */
static int redis_benchmark(const char *sock, int64_t n, const char *const *cmd,
                           int ncmd, double *rps)
{
    const char *argv[64];
    char nbuf[TKM__NUM_LEN];
    static char out[OUTPUT_MAX];
    int argc = 0;
    int status = 0;

    if (ncmd + 9 > (int)(sizeof(argv) / sizeof(argv[0])))
        return -1;
    snprintf(nbuf, sizeof(nbuf), "%lld", (long long)n);
    argv[argc++] = env_or("TKM_REDIS_BENCHMARK", "redis-benchmark");
    argv[argc++] = "-s";
    argv[argc++] = sock;
    argv[argc++] = "-c";
    argv[argc++] = "1";
    argv[argc++] = "-n";
    argv[argc++] = nbuf;
    argv[argc++] = "-q";
    for (int i = 0; i < ncmd; i++)
        argv[argc++] = cmd[i];
    argv[argc] = NULL;
    if (run_capture(argv, out, sizeof(out), &status) != 0)
        return -1;
    if (interrupted)
        return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, PROG ": redis-benchmark %s failed (status %d): %s\n",
                cmd[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                last_line(out));
        return -1;
    }
    if (parse_rps(out, rps) != 0) {
        fprintf(stderr,
                PROG ": no 'requests per second' figure in redis-benchmark's "
                     "output: %s\n",
                last_line(out));
        return -1;
    }
    return 0;
}

/* The acquire command exactly as tkm_try_acquire(c, 1, ...) sends it: the
 * library's own argument builder (linked from its internal static copy). */
typedef struct evalsha_cmd {
    tkm__args args;
    const char *argv[3 + TKM__NKEYS + TKM__MAX_EXTRA_KEYS + TKM__NPOLICY +
                     TKM__MAX_OP_ARGS];
    char numkeys[16];
    int argc;
} evalsha_cmd;

static void evalsha_init(evalsha_cmd *e, const tkm_client *c)
{
    tkm__args_init(&e->args, c);
    tkm__push_int(&e->args, 1);
    tkm__push_str(&e->args, tkm_client_options(c)->worker_id);
    snprintf(e->numkeys, sizeof(e->numkeys), "%d", TKM__NKEYS);
    e->argc = 0;
    e->argv[e->argc++] = "EVALSHA";
    e->argv[e->argc++] = tkm__scripts[TKM__SCRIPT_ACQUIRE].sha1;
    e->argv[e->argc++] = e->numkeys;
    for (int i = 0; i < e->args.argc; i++)
        e->argv[e->argc++] = e->args.argv[i];
}

/* n rounds of acquire(1) + release; timings stored when acq/rel are set. */
static int rounds(tkm_client *c, int64_t n, int64_t *acq, int64_t *rel,
                  double *elapsed_s)
{
    int64_t start = now_ns();

    for (int64_t i = 0; i < n; i++) {
        tkm_grant g;
        int64_t t0, t1, t2;
        tkm_code rc;

        if (interrupted)
            return -1;
        t0 = now_ns();
        rc = tkm_try_acquire(c, 1, &g);
        t1 = now_ns();
        if (rc != TKM_OK) {
            fprintf(stderr, PROG ": tkm_try_acquire: %s\n", tkm_errstr(c));
            return -1;
        }
        if (!g.granted) {
            fprintf(stderr, PROG ": tkm_try_acquire denied the grant (%s)\n",
                    tkm_reason_str(g.reason));
            return -1;
        }
        rc = tkm_release(c, g.id, NULL);
        t2 = now_ns();
        if (rc != TKM_OK) {
            fprintf(stderr, PROG ": tkm_release: %s\n", tkm_errstr(c));
            return -1;
        }
        if (acq != NULL) {
            acq[i] = t1 - t0;
            rel[i] = t2 - t1;
        }
    }
    if (elapsed_s != NULL)
        *elapsed_s = (double)(now_ns() - start) / 1e9;
    return 0;
}

static int64_t sum_ns(const int64_t *v, int64_t n)
{
    int64_t sum = 0;

    for (int64_t i = 0; i < n; i++)
        sum += v[i];
    return sum > 0 ? sum : 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile (in per mille) of sorted nanoseconds, in us. */
static double percentile_us(const int64_t *sorted, int64_t n, int permille)
{
    int64_t rank = (n * permille + 999) / 1000;

    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static int status_of(tkm_client *c, tkm_pool_status *st)
{
    if (tkm_status(c, st) != TKM_OK) {
        fprintf(stderr, PROG ": tkm_status: %s\n", tkm_errstr(c));
        return -1;
    }
    return 0;
}

static int measure(tkm_client *c, const tkt_redis *r, const bench_opts *o,
                   results *res)
{
    tkm_sync_info info = {
        .tokens = 900000000, .rate = 0, .refill_in_ms = -1, .timestamp_ms = -1};
    static const char *const ping[] = {"PING"};
    tkm_pool_status before, after;
    int64_t *acq = NULL, *rel = NULL;
    double elapsed = 0;
    evalsha_cmd cmd;
    int64_t n = o->iterations;
    int ret = -1;

    if (tkm_reset(c, NULL) != TKM_OK || tkm_sync(c, &info, NULL) != TKM_OK) {
        fprintf(stderr, PROG ": preparing pool '%s': %s\n", POOL,
                tkm_errstr(c));
        return -1;
    }
    acq = calloc((size_t)n, sizeof(*acq));
    rel = calloc((size_t)n, sizeof(*rel));
    if (acq == NULL || rel == NULL) {
        fprintf(stderr, PROG ": out of memory for %lld timings\n",
                (long long)n);
        goto out;
    }

    /* Warm-up: at least one round, so both scripts are loaded (the first
     * call answers NOSCRIPT and falls back to EVAL) before any timing. */
    if (rounds(c, o->warmup > 0 ? o->warmup : 1, NULL, NULL, NULL) != 0)
        goto out;
    if (rounds(c, n, acq, rel, &elapsed) != 0)
        goto out;
    res->tkm_round_trips_per_s = 2.0 * (double)n / elapsed;
    res->tkm_acquire_per_s = (double)n * 1e9 / (double)sum_ns(acq, n);
    qsort(acq, (size_t)n, sizeof(*acq), cmp_i64);
    qsort(rel, (size_t)n, sizeof(*rel), cmp_i64);
    res->acquire_p50_us = percentile_us(acq, n, 500);
    res->acquire_p99_us = percentile_us(acq, n, 990);
    res->release_p50_us = percentile_us(rel, n, 500);
    res->release_p99_us = percentile_us(rel, n, 990);

    /* The same acquire through redis-benchmark.  Its grants are never
     * released: check that exactly n of them were made (a refused or failed
     * script would make its figure meaningless), then reset the pool. */
    evalsha_init(&cmd, c);
    if (status_of(c, &before) != 0)
        goto out;
    if (redis_benchmark(r->sock, n, cmd.argv, cmd.argc, &res->evalsha_rps) != 0)
        goto out;
    if (status_of(c, &after) != 0)
        goto out;
    if (after.inflight - before.inflight != n) {
        fprintf(stderr,
                PROG ": redis-benchmark's EVALSHA made %lld grants, not %lld: "
                     "its arguments differ from the library's\n",
                (long long)(after.inflight - before.inflight), (long long)n);
        goto out;
    }
    if (tkm_reset(c, NULL) != TKM_OK) {
        fprintf(stderr, PROG ": tkm_reset: %s\n", tkm_errstr(c));
        goto out;
    }

    /* The floor: the cheapest command on the same path. */
    res->have_ping = redis_benchmark(r->sock, n, ping, 1, &res->ping_rps) == 0;
    if (!res->have_ping && interrupted)
        goto out;
    ret = 0;
out:
    free(acq);
    free(rel);
    return ret;
}

static void print_table(const bench_opts *o, const results *r)
{
    double ratio = r->tkm_round_trips_per_s / r->evalsha_rps;

    printf("libtokenmgr %s: %lld rounds of acquire(1)+release after %lld "
           "warm-up, 1 connection, Unix socket\n",
           tkm_version(), (long long)o->iterations, (long long)o->warmup);
    printf("  %-44s %12.0f\n", "tokenmgr round trips/s (acquire+release)",
           r->tkm_round_trips_per_s);
    printf("  %-44s %12.0f\n", "tokenmgr acquires/s (acquire times alone)",
           r->tkm_acquire_per_s);
    printf("  %-44s %12.0f\n", "redis-benchmark EVALSHA acquire requests/s",
           r->evalsha_rps);
    printf("  %-44s %12.3f  (target >= %.2f: %s)\n",
           "ratio (round trips/s / EVALSHA rps)", ratio, TARGET_RATIO,
           ratio >= TARGET_RATIO ? "met" : "NOT met");
    if (r->have_ping)
        printf("  %-44s %12.0f\n", "redis-benchmark PING requests/s (floor)",
               r->ping_rps);
    else
        printf("  %-44s %12s\n", "redis-benchmark PING requests/s (floor)",
               "n/a");
    printf("  %-44s %12.1f %9.1f\n", "acquire latency p50 / p99 (us)",
           r->acquire_p50_us, r->acquire_p99_us);
    printf("  %-44s %12.1f %9.1f\n", "release latency p50 / p99 (us)",
           r->release_p50_us, r->release_p99_us);
}

static void print_json(const bench_opts *o, const results *r)
{
    double ratio = r->tkm_round_trips_per_s / r->evalsha_rps;
    char ping[TKM__NUM_LEN + 8];

    if (r->have_ping)
        snprintf(ping, sizeof(ping), "%.2f", r->ping_rps);
    else
        snprintf(ping, sizeof(ping), "null");
    printf("{\"version\":\"%s\",\"iterations\":%lld,\"warmup\":%lld,"
           "\"tokenmgr_round_trips_per_s\":%.2f,"
           "\"tokenmgr_acquire_per_s\":%.2f,"
           "\"redis_benchmark_evalsha_rps\":%.2f,"
           "\"ratio\":%.4f,\"target_ratio\":%.2f,\"target_met\":%s,"
           "\"redis_benchmark_ping_rps\":%s,"
           "\"acquire_p50_us\":%.2f,\"acquire_p99_us\":%.2f,"
           "\"release_p50_us\":%.2f,\"release_p99_us\":%.2f}\n",
           tkm_version(), (long long)o->iterations, (long long)o->warmup,
           r->tkm_round_trips_per_s, r->tkm_acquire_per_s, r->evalsha_rps,
           ratio, TARGET_RATIO, ratio >= TARGET_RATIO ? "true" : "false", ping,
           r->acquire_p50_us, r->acquire_p99_us, r->release_p50_us,
           r->release_p99_us);
}

int main(int argc, char **argv)
{
    const char *server = env_or("TKM_REDIS_SERVER", "redis-server");
    const char *bench = env_or("TKM_REDIS_BENCHMARK", "redis-benchmark");
    struct sigaction sa;
    tkm_client *client = NULL;
    tkm_options opts;
    bench_opts o;
    results res;
    tkt_redis r;
    int status = 1;

    switch (parse_args(argc, argv, &o)) {
    case 1:
        usage(stdout);
        return 0;
    case -1:
        usage(stderr);
        return 2;
    default:
        break;
    }
    if (!program_found(server)) {
        fprintf(stderr,
                PROG ": %s not found (install redis-server, or set "
                     "TKM_REDIS_SERVER)\n",
                server);
        return 1;
    }
    if (!program_found(bench)) {
        fprintf(stderr,
                PROG ": %s not found (install redis-tools, or set "
                     "TKM_REDIS_BENCHMARK)\n",
                bench);
        return 1;
    }

    /* A dying server must fail a call, not kill us before cleanup; an
     * interrupt stops the run and still removes the server. */
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (tkt_redis_start(&r) != 0) {
        fprintf(stderr, PROG ": could not start %s on a Unix socket\n", server);
        tkt_redis_stop(&r);
        return 1;
    }

    tkm_options_init(&opts);
    snprintf(opts.pool, sizeof(opts.pool), "%s", POOL);
    snprintf(opts.worker_id, sizeof(opts.worker_id), "%s", WORKER);
    if (snprintf(opts.redis_url, sizeof(opts.redis_url), "%s", r.url) >=
        (int)sizeof(opts.redis_url)) {
        fprintf(stderr, PROG ": socket path too long: %s\n", r.sock);
        goto out;
    }
    /* Never deny: recharge never starts, no deficit limit is reachable. */
    opts.bucket.capacity = 1000000000;
    opts.bucket.max_deficit = -1000000000;
    opts.bucket.soft_floor = -1000000000;
    opts.bucket.lease_ttl_s = 86400; /* redis-benchmark's grants stay live */
    if (tkm_client_open(&opts, &client) != TKM_OK) {
        fprintf(stderr, PROG ": %s\n",
                client ? tkm_errstr(client) : "out of memory");
        goto out;
    }

    memset(&res, 0, sizeof(res));
    if (measure(client, &r, &o, &res) != 0) {
        if (interrupted)
            fprintf(stderr, PROG ": interrupted\n");
        goto out;
    }
    if (o.json)
        print_json(&o, &res);
    else
        print_table(&o, &res);
    status = 0;
out:
    tkm_client_free(client);
    tkt_redis_stop(&r);
    return status;
}
