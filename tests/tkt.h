/* Helpers shared by the Check suites that talk to Redis through the
 * library: the suite's redis-server, clients on it, and the TCases that
 * start it.  The fixtures themselves are in tests/fixtures/. */
#ifndef TKM_TKT_H
#define TKM_TKT_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <stdint.h>

#include "proc.h"
#include "redis.h"
#include "suite.h"
#include "tokenmgr.h"

/* The suite's redis-server (started by tkt_redis_setup). */
extern tkt_redis tkt_server;

/* Unchecked fixture: start/stop tkt_server once per TCase. */
void tkt_redis_setup(void);
void tkt_redis_teardown(void);
/* Checked fixture: FLUSHALL before each test. */
void tkt_flush(void);
/* A TCase of s on tkt_server: one server for the whole TCase, emptied
 * before each test (tkt_redis_setup/teardown, tkt_flush). */
TCase *tkt_redis_tcase(Suite *s, const char *name, int timeout_s);
/* A TCase whose tests each start and stop tkt_server in their own process
 * (for tests that kill or restart it). */
TCase *tkt_own_redis_tcase(Suite *s, const char *name, int timeout_s);

/* Options on tkt_server, pool "t", with the defaults otherwise. */
tkm_options tkt_options(void);
/* Open a client (fails the test on error). */
tkm_client *tkt_open(const tkm_options *o);
/* A client with tkt_options(); and one synced (tkt_sync) as well. */
tkm_client *tkt_client(void);
tkm_client *tkt_client_synced(int64_t tokens, int64_t rate, int64_t refill_in,
                              int64_t ts);
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
/* The build's tokenmgr command (TKM_CLI) with the arguments (NULL-
 * terminated), run to completion; the result is valid until the next
 * call. */
const tkt_output *tkt_cli(const char *first, ...);
/* Run one command (hiredis format) on a new raw connection, reply dropped. */
void tkt_do(const char *fmt, ...);

#endif
