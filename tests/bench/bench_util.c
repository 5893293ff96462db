/* Helpers shared by the benchmarks; see bench_util.h. */
#include "bench_util.h"

#include <stdio.h>

#include "proc.h"
#include "tokenmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t bench_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

void bench_signals(void)
{
    struct sigaction sa;

    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tkt_cancel = &bench_interrupted; /* children die with the benchmark */
}

int bench_redis_start(tkt_redis *srv, const char *prog)
{
    if (tkt_redis_start(srv) == 0)
        return 0;
    fprintf(stderr, "%s: cannot start redis-server\n", prog);
    tkt_redis_stop(srv);
    return -1;
}

int bench_finish(int status, const char *prog, tkt_redis *srv)
{
    if (status != 0 && bench_interrupted)
        fprintf(stderr, "%s: interrupted\n", prog);
    tkt_redis_stop(srv);
    return status;
}

int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

    if (ms <= 0)
        return;
    nanosleep(&ts, NULL); /* an interrupt cuts it short: callers re-check */
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

void bench_sort(int64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_i64);
}

double bench_pct_us(const int64_t *sorted, size_t n, int permille)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (n * (size_t)permille + 999) / 1000;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

int bench_program_found(const char *name)
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

const char *bench_env_or(const char *var, const char *fallback)
{
    const char *v = getenv(var);

    return v != NULL && v[0] != '\0' ? v : fallback;
}

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

int bench_redis_benchmark(const char *sock, int clients, int64_t n,
                          const char *const *cmd, int ncmd, double *rps)
{
    const char *argv[64];
    char nbuf[32], cbuf[16];
    static tkt_output o;
    int argc = 0;

    if (ncmd + 9 > (int)(sizeof(argv) / sizeof(argv[0])))
        return -1;
    snprintf(nbuf, sizeof(nbuf), "%lld", (long long)n);
    snprintf(cbuf, sizeof(cbuf), "%d", clients);
    argv[argc++] = bench_env_or("TKM_REDIS_BENCHMARK", "redis-benchmark");
    argv[argc++] = "-s";
    argv[argc++] = sock;
    argv[argc++] = "-c";
    argv[argc++] = cbuf;
    argv[argc++] = "-n";
    argv[argc++] = nbuf;
    argv[argc++] = "-q";
    for (int i = 0; i < ncmd; i++)
        argv[argc++] = cmd[i];
    argv[argc] = NULL;
    tkt_run(argv, 600000, NULL, &o);
    if (bench_interrupted)
        return -1;
    if (o.status != 0) {
        fprintf(stderr, "redis-benchmark %s failed (status %d): %s\n", cmd[0],
                o.status, last_line(o.err[0] ? o.err : o.out));
        return -1;
    }
    if (parse_rps(o.out, rps) != 0) {
        fprintf(stderr,
                "no 'requests per second' in redis-benchmark's "
                "output: %s\n",
                last_line(o.out));
        return -1;
    }
    return 0;
}

FILE *bench_json_open(const char *path, const char *prog)
{
    FILE *f;

    if (path == NULL || strcmp(path, "-") == 0)
        return NULL;
    f = fopen(path, "w");
    if (f == NULL)
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path,
                strerror(errno));
    return f;
}

void bench_redis_version(char *buf, size_t len)
{
    const char *argv[] = {bench_env_or("TKM_REDIS_SERVER", "redis-server"),
                          "--version", NULL};
    static tkt_output o;
    const char *v;

    snprintf(buf, len, "unknown");
    if (tkt_run(argv, 10000, NULL, &o) != 0)
        return;
    v = strstr(o.out, "v=");
    if (v != NULL)
        snprintf(buf, len, "%.*s", (int)strcspn(v + 2, " \n"), v + 2);
}

int bench_parse_counts(const char *s, int64_t max, int *v, int cap, int *n)
{
    char buf[128];
    char *save = NULL, *tok;

    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
        return -1;
    *n = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int64_t x;
        if (*n >= cap || tkm_parse_int(tok, 1, max, &x) != TKM_OK)
            return -1;
        v[(*n)++] = (int)x;
    }
    return *n > 0 ? 0 : -1;
}

void bench_never_deny(tkm_options *o, const char *pool, const char *url,
                      const char *id, int64_t lease_ttl_s)
{
    tkm_options_init(o);
    snprintf(o->pool, sizeof(o->pool), "%s", pool);
    snprintf(o->redis_url, sizeof(o->redis_url), "%s", url);
    snprintf(o->worker_id, sizeof(o->worker_id), "%s", id);
    o->bucket.capacity = 1000000000;
    o->bucket.max_deficit = -1000000000;
    o->bucket.soft_floor = -1000000000;
    o->bucket.lease_ttl_s = lease_ttl_s;
}

/* One value for o: 0, or -1 when it does not fit. */
static int parse_value(const bench_opt *o, const char *v)
{
    if (o->num != NULL)
        return tkm_parse_int(v, o->min, o->max, o->num) == TKM_OK ? 0 : -1;
    if (o->counts != NULL)
        return bench_parse_counts(v, o->max, o->counts, o->cap, o->n);
    *o->text = v;
    return 0;
}

int bench_parse_args(int argc, char **argv, const char *prog, const char *usage,
                     const bench_opt *opts)
{
    for (int i = 1; i < argc; i += 2) {
        const bench_opt *o = opts;

        while (o->name != NULL && strcmp(o->name, argv[i]) != 0)
            o++;
        if (o->name == NULL || i + 1 >= argc || parse_value(o, argv[i + 1])) {
            fprintf(stderr, "usage: %s %s\n", prog, usage);
            return 2;
        }
    }
    return 0;
}

int bench_parse_iterations(int argc, char **argv, const char *prog, int64_t min,
                           int64_t *n, const char **json_path)
{
    const bench_opt opts[] = {
        {.name = "--iterations", .min = min, .max = 10000000, .num = n},
        {.name = "--json", .text = json_path},
        {.name = NULL}};

    return bench_parse_args(argc, argv, prog, "[--iterations N] [--json FILE]",
                            opts);
}
