/* Helpers shared by the Check suites. */
#ifndef TKM_TKT_H
#define TKM_TKT_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <stdint.h>

#include "redis_fixture.h"
#include "tokenmgr.h"

/* The suite's redis-server (started by tkt_redis_setup). */
extern tkt_redis tkt_server;

/* Unchecked fixture: start/stop tkt_server once per TCase. */
void tkt_redis_setup(void);
void tkt_redis_teardown(void);
/* Checked fixture: FLUSHALL before each test. */
void tkt_flush(void);

/* Options on tkt_server, pool "t", with the defaults otherwise. */
tkm_options tkt_options(void);
/* Open a client (fails the test on error). */
tkm_client *tkt_open(const tkm_options *o);
/* Sync: tokens, rate, refill_in_ms (-1 none), timestamp_ms (-1 none). */
void tkt_sync(tkm_client *c, int64_t tokens, int64_t rate, int64_t refill_in,
              int64_t ts);
/* tkt_sync after teaching the pool that its estimates are exact (one call
 * estimated at 1 completed at 1): grants near max_deficit then hold no
 * reserve for estimate errors. */
void tkt_sync_exact(tkm_client *c, int64_t tokens, int64_t rate,
                    int64_t refill_in, int64_t ts);
tkm_pool_status tkt_status(tkm_client *c);
/* Acquire; fails the test on an error status. */
tkm_grant tkt_acquire(tkm_client *c, int64_t cost);
/* A raw hiredis connection to tkt_server, for inspecting keys. */
redisContext *tkt_raw(void);
/* Run a command on a raw connection and return the reply (caller frees). */
redisReply *tkt_cmd(redisContext *r, const char *fmt, ...);
/* Monotonic milliseconds and a sleep. */
int64_t tkt_now_ms(void);
void tkt_sleep_ms(int64_t ms);

#endif
