/* The client against real processes: concurrency across processes, Redis
 * down, slow, restarted or holding garbage. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

#define WORKERS 8

typedef struct result {
    int64_t grants;
    int64_t min_tokens;
} result;

/*
 * WORKERS processes start together and acquire `cost` until denied; each
 * writes its grant count and the lowest balance it saw to a pipe.
 */
static result hammer(const tkm_options *o, int64_t cost)
{
    int go[2], out[2];
    result total = {0, INT64_MAX};
    pid_t pids[WORKERS];

    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(out), 0);
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        ck_assert_int_ge(pids[w], 0);
        if (pids[w] == 0) {
            result mine = {0, INT64_MAX};
            tkm_client *c = NULL;
            char byte;
            close(go[1]);
            if (tkm_client_open(o, &c) != TKM_OK)
                _exit(3);
            if (read(go[0], &byte, 1) != 0) /* EOF: everyone starts */
                _exit(4);
            for (;;) {
                tkm_grant g;
                if (tkm_try_acquire(c, cost, &g) != TKM_OK)
                    _exit(5);
                if (!g.granted)
                    break;
                mine.grants++;
                if (g.tokens < mine.min_tokens)
                    mine.min_tokens = g.tokens;
            }
            if (write(out[1], &mine, sizeof(mine)) != sizeof(mine))
                _exit(6);
            tkm_client_free(c);
            _exit(0);
        }
    }
    close(go[0]);
    close(out[1]);
    tkt_sleep_ms(100); /* let every worker connect */
    close(go[1]);
    for (int w = 0; w < WORKERS; w++) {
        int status;
        result r;
        ck_assert_int_eq(read(out[0], &r, sizeof(r)), sizeof(r));
        total.grants += r.grants;
        if (r.min_tokens < total.min_tokens)
            total.min_tokens = r.min_tokens;
        waitpid(pids[w], &status, 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "worker %d failed (status %d)", w, status);
    }
    close(out[0]);
    return total;
}

/* SEED failure 1: check-then-act drove four workers to -150 and -340. */
START_TEST(test_concurrent_grants_are_exact)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    result r;

    o.bucket.capacity = 1000; /* rate 0: no refill during the test */
    c = tkt_open(&o);
    tkt_sync_exact(c, 100, 0, -1, -1);
    r = hammer(&o, 7);
    /* 100 -> 16 in 12 grants; the 12th crosses the floor 20 and recharge
     * stops everyone else. */
    ck_assert_int_eq(r.grants, 12);
    ck_assert_int_eq(tkt_status(c).tokens, 16);
    ck_assert_int_eq(tkt_status(c).inflight, 12);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_concurrent_grants_respect_deficit)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    result r;

    o.bucket.capacity = 1000;
    o.bucket.soft_floor = -180; /* no recharge: only the hard limits */
    o.bucket.low_cost_target = -180;
    c = tkt_open(&o);
    tkt_sync_exact(c, 100, 0, -1, -1);
    r = hammer(&o, 7);
    /* Grants while the balance is >= 1: 100, 93, ..., 2 -> 15 grants. */
    ck_assert_int_eq(r.grants, 15);
    ck_assert_int_eq(r.min_tokens, -5);
    ck_assert_int_eq(tkm_reset(c, NULL), TKM_OK);
    tkt_sync_exact(c, 20, 0, -1, -1);
    r = hammer(&o, 150);
    /* 20 - 150 = -130 passes; then the balance is not positive. */
    ck_assert_int_eq(r.grants, 1);
    ck_assert_int_ge(r.min_tokens, o.bucket.max_deficit);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_redis_not_running)
{
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_pool_status st;
    int64_t t0;

    strcpy(o.redis_url, "unix:///nonexistent/redis.sock");
    o.timeout_ms = 200;
    c = tkt_open(&o);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_status(c, &st), TKM_EREDIS);
    ck_assert_int_lt(tkt_now_ms() - t0, 2000);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "cannot connect"));
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "/nonexistent/redis.sock"));
    tkm_client_free(c);
}
END_TEST

/* A peer that accepts connections and never answers: calls must give up. */
START_TEST(test_silent_redis_times_out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    tkm_options o = tkt_options();
    tkm_client *c;
    tkm_grant g;
    int64_t t0, took;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    snprintf(o.redis_url, sizeof(o.redis_url), "redis://127.0.0.1:%d",
             ntohs(sa.sin_port));
    o.timeout_ms = 300;
    c = tkt_open(&o);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_EREDIS);
    took = tkt_now_ms() - t0;
    ck_assert_int_eq(g.granted, 0); /* fail closed */
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 3000);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "did not answer"));
    tkm_client_free(c);
    close(fd);
}
END_TEST

START_TEST(test_reconnects_after_restart)
{
    tkm_client *c = tkt_client_synced(100, 5, 30000, -1);

    ck_assert_int_eq(tkt_acquire(c, 10).granted, 1);
    ck_assert_int_eq(tkt_redis_restart(&tkt_server), 0);
    /* The new server is empty, knows no script, and the old connection is
     * dead: the next call reconnects, loads the script and answers. */
    ck_assert_int_eq(tkt_status(c).synced, 0);
    tkt_sync(c, 100, 5, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 10).tokens, 90);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_script_flush_falls_back_to_eval)
{
    tkm_client *c = tkt_client();
    redisContext *r = tkt_raw();

    tkt_sync(c, 100, 5, 30000, -1);
    freeReplyObject(tkt_cmd(r, "SCRIPT FLUSH"));
    ck_assert_int_eq(tkt_acquire(c, 10).tokens, 90);
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

static void expect_garbage(const char *field, const char *value)
{
    tkm_client *c = tkt_client();
    redisContext *r = tkt_raw();
    redisReply *rep;
    tkm_grant g;
    tkm_pool_status st;
    tkm_sync_info in = {100, 5, -1, -1};

    tkt_sync(c, 100, 5, 30000, -1);
    freeReplyObject(tkt_cmd(r, "HSET tokenmgr:{t}:bucket %s %s", field, value));
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_ESTATE);
    ck_assert_msg(strstr(tkm_errstr(c), field) != NULL, "%s", tkm_errstr(c));
    ck_assert_int_eq(tkm_status(c, &st), TKM_ESTATE);
    ck_assert_int_eq(tkm_sync(c, &in, NULL), TKM_ESTATE);
    /* Nothing overwritten. */
    rep = tkt_cmd(r, "HGET tokenmgr:{t}:bucket %s", field);
    ck_assert_str_eq(rep->str, value);
    freeReplyObject(rep);
    redisFree(r);
    tkm_client_free(c);
}

START_TEST(test_garbage_in_state)
{
    expect_garbage("tokens", "12abc");
    tkt_flush();
    expect_garbage("tokens", "nan");
    tkt_flush();
    expect_garbage("rate", "inf");
    tkt_flush();
    expect_garbage("anchor_ms", "1e5");
    tkt_flush();
    expect_garbage("inflight_tokens", "");
}
END_TEST

START_TEST(test_wrong_key_type)
{
    tkm_client *c = tkt_client();
    redisContext *r = tkt_raw();
    tkm_grant g;

    freeReplyObject(tkt_cmd(r, "SET tokenmgr:{t}:bucket 5"));
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_ESTATE);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "written by something else"));
    redisFree(r);
    tkm_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client");

    signal(SIGPIPE, SIG_IGN);
    /* The test restarts its own server: start and stop it in the test's
     * process, so no redis-server outlives it. */
    tkt_add_tests(tkt_own_redis_tcase(s, "redis_restart", 0),
                  test_reconnects_after_restart, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "concurrency", 60),
                  test_concurrent_grants_are_exact,
                  test_concurrent_grants_respect_deficit, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "redis_faults", 30),
                  test_redis_not_running, test_silent_redis_times_out,
                  test_script_flush_falls_back_to_eval, test_garbage_in_state,
                  test_wrong_key_type, NULL);
    return tkt_run_suite(s, 0);
}
