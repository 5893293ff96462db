#include "tkt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

tkt_redis tkt_server;

void tkt_redis_setup(void)
{
    if (tkt_redis_start(&tkt_server) != 0) {
        fprintf(stderr, "cannot start redis-server for the tests\n");
        _exit(2);
    }
}

void tkt_redis_teardown(void)
{
    tkt_redis_stop(&tkt_server);
}

void tkt_flush(void)
{
    tkt_do("FLUSHALL");
}

TCase *tkt_redis_tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tkt_tcase(s, name, timeout_s);

    tcase_add_unchecked_fixture(tc, tkt_redis_setup, tkt_redis_teardown);
    tcase_add_checked_fixture(tc, tkt_flush, NULL);
    return tc;
}

TCase *tkt_own_redis_tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tkt_tcase(s, name, timeout_s);

    tcase_add_checked_fixture(tc, tkt_redis_setup, tkt_redis_teardown);
    return tc;
}

tkm_options tkt_options(void)
{
    tkm_options o;

    tkm_options_init(&o);
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", tkt_server.url);
    snprintf(o.pool, sizeof(o.pool), "t");
    return o;
}

tkm_client *tkt_open(const tkm_options *o)
{
    tkm_client *c = NULL;
    tkm_code rc = tkm_client_open(o, &c);

    ck_assert_msg(rc == TKM_OK, "open: %s", tkm_errstr(c));
    return c;
}

tkm_client *tkt_client(void)
{
    tkm_options o = tkt_options();

    return tkt_open(&o);
}

tkm_client *tkt_client_synced(int64_t tokens, int64_t rate, int64_t refill_in,
                              int64_t ts)
{
    tkm_client *c = tkt_client();

    tkt_sync(c, tokens, rate, refill_in, ts);
    return c;
}

void tkt_sync(tkm_client *c, int64_t tokens, int64_t rate, int64_t refill_in,
              int64_t ts)
{
    tkm_sync_info in = {tokens, rate, refill_in, ts};
    tkm_code rc = tkm_sync(c, &in, NULL);

    ck_assert_msg(rc == TKM_OK, "sync: %s", tkm_errstr(c));
}

void tkt_sync_exact(tkm_client *c, int64_t tokens, int64_t rate,
                    int64_t refill_in, int64_t ts)
{
    tkm_grant g;

    tkt_sync(c, 100, 0, -1, -1); /* far from the floor: no recharge */
    g = tkt_acquire(c, 1);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(tkm_complete(c, g.id, 1, NULL, NULL), TKM_OK);
    tkt_sync(c, tokens, rate, refill_in, ts);
}

tkm_pool_status tkt_status(tkm_client *c)
{
    tkm_pool_status st;
    tkm_code rc = tkm_status(c, &st);

    ck_assert_msg(rc == TKM_OK, "status: %s", tkm_errstr(c));
    return st;
}

tkm_grant tkt_acquire(tkm_client *c, int64_t cost)
{
    tkm_grant g;
    tkm_code rc = tkm_try_acquire(c, cost, &g);

    ck_assert_msg(rc == TKM_OK, "acquire: %s", tkm_errstr(c));
    return g;
}

redisContext *tkt_raw(void)
{
    redisContext *r = redisConnectUnix(tkt_server.sock);

    ck_assert_msg(r != NULL && !r->err, "raw connect to %s", tkt_server.sock);
    return r;
}

redisReply *tkt_cmd(redisContext *r, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = redisvCommand(r, fmt, ap);
    va_end(ap);
    ck_assert_msg(reply != NULL, "raw command %s failed", fmt);
    return reply;
}

void tkt_do(const char *fmt, ...)
{
    redisContext *r = tkt_raw();
    redisReply *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = redisvCommand(r, fmt, ap);
    va_end(ap);
    ck_assert_msg(reply != NULL, "raw command %s failed", fmt);
    freeReplyObject(reply);
    redisFree(r);
}

const tkt_output *tkt_cli(const char *first, ...)
{
    const tkt_output *o;
    va_list ap;

    va_start(ap, first);
    o = tkt_run_va(TKM_CLI, first, ap);
    va_end(ap);
    return o;
}
