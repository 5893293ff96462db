/*
 * The blocking acquire: the atomic try, then a sleep of the wait the bucket
 * computed (plus a little jitter), in slices that each carry a heartbeat.
 * No polling: each try is followed by the sleep the script asked for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define PHASE_WAITING "waiting for tokens"

static int canceled(const tkm_client *c)
{
    return c->cancel != NULL && *c->cancel != 0;
}

/* A signal ends the sleep early only when it raised the cancel flag. */
static void sleep_ms(const tkm_client *c, int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR &&
           !canceled(c))
        ;
}

int64_t tkm__random(tkm_client *c, int64_t n)
{
    if (n <= 1)
        return 0;
    return (int64_t)((uint64_t)rand_r(&c->jitter_seed) % (uint64_t)n);
}

/* Up to 5% of the wait, at most 100 ms, at least 1 ms. */
static int64_t jitter(tkm_client *c, int64_t wait_ms)
{
    int64_t span = wait_ms / 20;

    if (span > 100)
        span = 100;
    return 1 + tkm__random(c, span);
}

/* An error from a heartbeat (Redis down) ends the wait, as does cancel. */
tkm_code tkm__sleep_beating(tkm_client *c, int64_t ms, const char *phase)
{
    int64_t end = tkm__monotonic_ms() + ms;
    int64_t left;

    while ((left = end - tkm__monotonic_ms()) > 0) {
        tkm_code rc;
        if (canceled(c))
            return tkm__fail(c, TKM_ECANCELED, "wait canceled (%s)", phase);
        rc = tkm_heartbeat(c, phase);
        if (rc != TKM_OK)
            return rc;
        sleep_ms(c, left < c->opts.heartbeat.wait_slice_ms
                        ? left
                        : c->opts.heartbeat.wait_slice_ms);
    }
    return canceled(c)
               ? tkm__fail(c, TKM_ECANCELED, "wait canceled (%s)", phase)
               : TKM_OK;
}

TKM_EXPORT tkm_code tkm_acquire(tkm_client *c, int64_t cost,
                                int64_t max_wait_ms, tkm_grant *g)
{
    int64_t deadline;
    tkm_code rc;

    memset(g, 0, sizeof(*g));
    if (max_wait_ms > TKM_MAX_WAIT_MS)
        return tkm__fail(c, TKM_EINVAL,
                         "max_wait_ms %lld is above %lld (a day; -1: "
                         "bucket.max_wait_s)",
                         (long long)max_wait_ms, (long long)TKM_MAX_WAIT_MS);
    if (max_wait_ms < 0)
        max_wait_ms = c->opts.bucket.max_wait_s * 1000;
    deadline = tkm__monotonic_ms() + max_wait_ms;
    for (;;) {
        int64_t wait, left;
        if (canceled(c))
            return tkm__fail(c, TKM_ECANCELED, "acquire canceled");
        rc = tkm_try_acquire(c, cost, g);
        if (rc != TKM_OK || g->granted || g->retry_after_ms == TKM_RETRY_NEVER)
            return rc;
        wait = g->retry_after_ms + jitter(c, g->retry_after_ms);
        left = deadline - tkm__monotonic_ms();
        if (wait > left) {
            /* The caller frees the worker instead of holding it. */
            g->reason = TKM_REASON_WAIT_TOO_LONG;
            return TKM_OK;
        }
        rc = tkm__sleep_beating(c, wait, PHASE_WAITING);
        if (rc != TKM_OK)
            return rc;
    }
}
