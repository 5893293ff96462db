/*
 * Hostile peers: whatever a server on the Redis port or the Keepa API
 * answers (garbage, a header announcing a billion elements, a gzip bomb, a
 * 20 MB JSON token, a reply trickled a byte at a time, nothing at all), a
 * call returns within its timeout and a margin, having grown the process
 * by a bounded amount.  The peers are tests/fixtures/hostile_redis.c and
 * hostile_keepa.c, real servers over loopback; each call runs in a forked
 * child that measures its own peak RSS (getrusage).
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

#define REDIS_TIMEOUT_MS 500
#define MARGIN_MS        1500 /* generous: 2 shared cores, sanitizers */
#define KEY              "HostileTestKey123"

/* A hostile server, started per test. */
static struct {
    pid_t pid;
    int port;
} peer;

static void stop_peer(void);

static void start_peer(const char *binary, const char *mode)
{
    const char *argv[] = {binary, mode, NULL};
    char line[256];

    /* Its ready line; making a bomb takes it a second or so. */
    peer.pid = tkt_spawn_ready(argv, line, sizeof(line), 60000);
    peer.port = 0;
    for (size_t i = strlen(line);
         peer.pid > 0 && i > 0 && line[i - 1] != ' ' && line[i - 1] != ':'; i--)
        peer.port = atoi(line + i - 1);
    if (peer.port <= 0)
        stop_peer();
    ck_assert_msg(peer.port > 0, "%s %s did not start: '%s'", binary, mode,
                  line);
}

static void stop_peer(void)
{
    if (peer.pid > 0) {
        kill(peer.pid, SIGKILL);
        waitpid(peer.pid, NULL, 0);
    }
    peer.pid = 0;
    peer.port = 0;
}

/* What one call did, measured by the child that made it. */
typedef struct measured {
    int reported; /* the child reported (else it died: see rc) */
    int started;  /* the client (and Keepa client) opened */
    int rc;
    int64_t ms;
    long rss_growth_kb;
    size_t body_len;
    int has_tokens;
    char err[512];
} measured;

typedef void (*call_fn)(const tkm_options *o, measured *m);

static measured in_child(call_fn fn, const tkm_options *o)
{
    measured m;
    int p[2], status;
    size_t got = 0;
    pid_t pid;

    memset(&m, 0, sizeof(m));
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        struct rusage ru;
        long before;
        close(p[0]);
        getrusage(RUSAGE_SELF, &ru);
        before = ru.ru_maxrss;
        fn(o, &m);
        getrusage(RUSAGE_SELF, &ru);
        m.rss_growth_kb = ru.ru_maxrss - before;
        m.reported = 1;
        (void)!write(p[1], &m, sizeof(m));
        _exit(0);
    }
    close(p[1]);
    while (got < sizeof(m)) {
        ssize_t n = read(p[0], (char *)&m + got, sizeof(m) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    waitpid(pid, &status, 0);
    if (got != sizeof(m)) {
        memset(&m, 0, sizeof(m));
        m.rc = status;
    }
    return m;
}

/* Checked once the peer is stopped (a failed check ends the test). */
static void check_reported(const char *mode, const measured *m)
{
    ck_assert_msg(m->reported, "%s: the calling child died (status %d)", mode,
                  m->rc);
    ck_assert_msg(m->started, "%s: could not open the client: %s", mode,
                  m->err);
}

/* ---- a hostile Redis ------------------------------------------------- */

static tkm_options redis_options(const char *password)
{
    tkm_options o;

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    if (password != NULL)
        snprintf(o.redis_url, sizeof(o.redis_url), "redis://:%s@127.0.0.1:%d",
                 password, peer.port);
    else
        snprintf(o.redis_url, sizeof(o.redis_url), "redis://127.0.0.1:%d",
                 peer.port);
    o.timeout_ms = REDIS_TIMEOUT_MS;
    return o;
}

/* Two calls: the first breaks the connection, the second reconnects and
 * must be bounded as well.  ms: the slower of the two. */
static void redis_calls(const tkm_options *o, measured *m)
{
    tkm_client *c = NULL;
    tkm_pool_status st;

    if (tkm_client_open(o, &c) != TKM_OK) {
        snprintf(m->err, sizeof(m->err), "%s", tkm_errstr(c));
        tkm_client_free(c);
        return;
    }
    m->started = 1;
    for (int i = 0; i < 2; i++) {
        int64_t t0 = tkt_now_ms(), ms;
        int rc = tkm_status(c, &st);
        ms = tkt_now_ms() - t0;
        if (ms > m->ms)
            m->ms = ms;
        if (i == 0) {
            m->rc = rc;
            snprintf(m->err, sizeof(m->err), "%s", tkm_errstr(c));
        } else if (rc != m->rc) {
            snprintf(m->err, sizeof(m->err), "second call: %s (%d)",
                     tkm_errstr(c), rc);
            m->rc = -rc;
        }
    }
    tkm_client_free(c);
}

/* The call fails with `code` within the timeout and a margin, grows the
 * process by less than 64 MiB, and says `words`. */
static void redis_bounded(const char *mode, const char *password, tkm_code code,
                          const char *words)
{
    tkm_options o;
    measured m;

    start_peer(TKM_HOSTILE_REDIS, mode);
    o = redis_options(password);
    m = in_child(redis_calls, &o);
    stop_peer();
    check_reported(mode, &m);
    ck_assert_msg(m.rc == (int)code, "%s: status %d, not %d: %s", mode, m.rc,
                  code, m.err);
    ck_assert_msg(m.ms < REDIS_TIMEOUT_MS + MARGIN_MS,
                  "%s: a call took %lld ms with a %d ms timeout", mode,
                  (long long)m.ms, REDIS_TIMEOUT_MS);
    ck_assert_msg(m.rss_growth_kb < 64 * 1024,
                  "%s: the process grew by %ld KiB", mode, m.rss_growth_kb);
    ck_assert_msg(strstr(m.err, words) != NULL, "%s: '%s' does not say '%s'",
                  mode, m.err, words);
    ck_assert_ptr_null(strchr(m.err, '\n'));
}

START_TEST(test_redis_garbage)
{
    redis_bounded("garbage", NULL, TKM_EPROTO, "not Redis' protocol");
}
END_TEST

START_TEST(test_redis_huge_array_header)
{
    redis_bounded("huge_array", NULL, TKM_EPROTO,
                  "an array of 1000000000 elements");
}
END_TEST

START_TEST(test_redis_huge_bulk_header)
{
    redis_bounded("huge_bulk", NULL, TKM_EPROTO,
                  "a string of 2000000000 bytes");
}
END_TEST

START_TEST(test_redis_reply_too_many_bytes)
{
    redis_bounded("fat_array", NULL, TKM_EPROTO, "more than 16777216 bytes");
}
END_TEST

START_TEST(test_redis_nested_elements_counted)
{
    redis_bounded("nested", NULL, TKM_EPROTO,
                  "40000 more elements after 40000");
}
END_TEST

START_TEST(test_redis_endless_line)
{
    redis_bounded("long_line", NULL, TKM_EPROTO, "a line longer than");
}
END_TEST

START_TEST(test_redis_trickle)
{
    redis_bounded("trickle", NULL, TKM_EREDIS, "did not answer status within");
}
END_TEST

/* AUTH (and any setup command) shares the call's deadline. */
START_TEST(test_redis_trickle_during_auth)
{
    redis_bounded("trickle", "Passw0rdOfTheTest", TKM_EREDIS,
                  "did not answer AUTH within");
}
END_TEST

START_TEST(test_redis_silent)
{
    redis_bounded("silent", NULL, TKM_EREDIS, "did not answer status within");
}
END_TEST

/* ---- a hostile Keepa ------------------------------------------------- */

static tkm_options keepa_options(int64_t timeout_ms)
{
    tkm_options o = tkt_options();

    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:%d",
             peer.port);
    o.keepa.timeout_ms = timeout_ms;
    o.keepa.max_retries = 0;
    return o;
}

static void keepa_request(const tkm_options *o, measured *m)
{
    const char *params[] = {"asin", "B000000000", NULL};
    tkm_client *c = NULL;
    tkm_keepa *kc = NULL;
    tkm_keepa_response resp;
    int64_t t0;

    memset(&resp, 0, sizeof(resp));
    if (tkm_client_open(o, &c) != TKM_OK || tkm_keepa_open(c, &kc) != TKM_OK) {
        snprintf(m->err, sizeof(m->err), "%s / %s", tkm_errstr(c),
                 tkm_keepa_errstr(kc));
        tkm_keepa_free(kc);
        tkm_client_free(c);
        return;
    }
    m->started = 1;
    t0 = tkt_now_ms();
    m->rc = tkm_keepa_request(kc, "/product", params, 1, &resp);
    m->ms = tkt_now_ms() - t0;
    m->body_len = resp.body_len;
    m->has_tokens = resp.has_tokens;
    snprintf(m->err, sizeof(m->err), "%s", tkm_keepa_errstr(kc));
    tkm_keepa_response_free(&resp);
    tkm_keepa_free(kc);
    tkm_client_free(c);
}

static void keepa_setup(void)
{
    tkm_options o;
    tkm_client *c;

    tkt_redis_setup();
    setenv("TOKENMGR_KEEPA_KEY", KEY, 1);
    /* A pool with tokens: every request is sent at once. */
    o = tkt_options();
    c = tkt_open(&o);
    tkt_sync(c, 300, 5, 60000, -1);
    tkm_client_free(c);
}

/*
 * A request to the hostile Keepa `mode`: its status, within timeout_ms and
 * a margin, and the process grown by less than three times the 64 MiB body
 * bound (the sanitizers' quarantine keeps the buffer's earlier sizes).
 */
static measured keepa_bounded(const char *mode, int64_t timeout_ms,
                              tkm_code code)
{
    tkm_options o;
    measured m;

    start_peer(TKM_HOSTILE_KEEPA, mode);
    o = keepa_options(timeout_ms);
    m = in_child(keepa_request, &o);
    stop_peer();
    check_reported(mode, &m);
    ck_assert_msg(m.rc == (int)code, "%s: status %d, not %d: %s", mode, m.rc,
                  code, m.err);
    ck_assert_msg(m.ms < timeout_ms + MARGIN_MS,
                  "%s: the request took %lld ms with a %lld ms timeout", mode,
                  (long long)m.ms, (long long)timeout_ms);
    ck_assert_msg(m.rss_growth_kb < 3 * 64 * 1024,
                  "%s: the process grew by %ld KiB", mode, m.rss_growth_kb);
    ck_assert_ptr_null(strstr(m.err, KEY));
    return m;
}

/* 255 KB on the wire, 250 MB inflated: cut at 64 MiB. */
START_TEST(test_keepa_gzip_bomb)
{
    measured m = keepa_bounded("bomb", 10000, TKM_EHTTP);

    ck_assert_msg(strstr(m.err, "larger than 67108864 bytes") != NULL, "%s",
                  m.err);
}
END_TEST

/* An endless body at loopback speed: cut at 64 MiB as well. */
START_TEST(test_keepa_endless_body)
{
    measured m = keepa_bounded("endless", 10000, TKM_EHTTP);

    ck_assert_msg(strstr(m.err, "larger than 67108864 bytes") != NULL, "%s",
                  m.err);
}
END_TEST

/* One 20 MB string (yajl alone rescans it for seconds): read in linear
 * time, the token fields after it found, the body handed over whole. */
START_TEST(test_keepa_long_string)
{
    measured m = keepa_bounded("long_string", 2000, TKM_OK);

    ck_assert_int_eq(m.has_tokens, 1);
    ck_assert_uint_gt(m.body_len, 20u << 20);
}
END_TEST

/* A 20 MB number is not JSON to us: refused as soon as it is too long. */
START_TEST(test_keepa_long_number)
{
    measured m = keepa_bounded("long_number", 2000, TKM_EHTTP);

    ck_assert_msg(strstr(m.err, "not complete JSON") != NULL, "%s", m.err);
}
END_TEST

/* A byte every 200 ms: the whole request is bounded, not each read. */
START_TEST(test_keepa_trickle)
{
    measured m = keepa_bounded("trickle", 2000, TKM_EHTTP);

    ck_assert_msg(strstr(m.err, "imed out") != NULL ||
                      strstr(m.err, "within 2000 ms") != NULL,
                  "%s", m.err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *keepa;

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tkt_tcase(s, "redis", 60), test_redis_garbage,
                  test_redis_huge_array_header, test_redis_huge_bulk_header,
                  test_redis_reply_too_many_bytes,
                  test_redis_nested_elements_counted, test_redis_endless_line,
                  test_redis_trickle, test_redis_trickle_during_auth,
                  test_redis_silent, NULL);
    keepa = tkt_tcase(s, "keepa", 120);
    tcase_add_unchecked_fixture(keepa, keepa_setup, tkt_redis_teardown);
    tkt_add_tests(keepa, test_keepa_gzip_bomb, test_keepa_endless_body,
                  test_keepa_long_string, test_keepa_long_number,
                  test_keepa_trickle, NULL);
    return tkt_run_suite(s, 0);
}
