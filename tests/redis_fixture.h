/* A private redis-server on a Unix socket in a temporary folder, for tests
 * and benchmarks.  Never touches port 6379. */
#ifndef TKM_REDIS_FIXTURE_H
#define TKM_REDIS_FIXTURE_H

#include <sys/types.h>

typedef struct tkt_redis {
    char dir[256];  /* the temporary folder (removed by stop) */
    char sock[320]; /* its socket */
    char url[340];  /* unix:///.../redis.sock */
    pid_t pid;
} tkt_redis;

/* Start redis-server; returns 0 when it accepts connections. */
int tkt_redis_start(tkt_redis *r);
/* Stop the server (SIGTERM, then SIGKILL), keeping the folder. */
void tkt_redis_kill(tkt_redis *r);
/* Start the server again in the same folder, on the same socket. */
int tkt_redis_restart(tkt_redis *r);
/* Stop the server and remove its folder. */
void tkt_redis_stop(tkt_redis *r);

#endif
