/*
 * The stall rule: a pure function of what one read observed.  A pool is
 * stalled when tokens sit unused, no worker has beaten for the stall age and
 * none is inside a declared busy period, for N reads in a row.  What cannot
 * be known is never a stall.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

TKM_EXPORT const char *tkm_stall_state_str(tkm_stall_state s)
{
    switch (s) {
    case TKM_STALL_OK:
        return "ok";
    case TKM_STALL_PENDING:
        return "pending";
    case TKM_STALL_STALLED:
        return "stalled";
    case TKM_STALL_UNKNOWN:
        return "unknown";
    case TKM_STALL_SHARED_CAUSE:
        return "shared_cause";
    }
    return "invalid";
}

static int cmp_age(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The most stale workers whose heartbeats stopped within one window. */
static size_t largest_cluster(int64_t *ages, size_t n, int64_t window_ms)
{
    size_t best = 0;

    qsort(ages, n, sizeof(*ages), cmp_age);
    for (size_t lo = 0, hi = 0; hi < n; hi++) {
        while (ages[hi] - ages[lo] > window_ms)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

/* Stale workers: list their ids and measure how together they went. */
static void stale_workers(const tkm_stall_options *o, const tkm_stall_input *in,
                          tkm_stall_verdict *v)
{
    int64_t limit = o->heartbeat_age_s * 1000;
    int64_t *ages = NULL;
    size_t len = 0;

    if (in->nworkers > 0)
        ages = calloc(in->nworkers, sizeof(*ages));
    for (size_t i = 0; i < in->nworkers; i++) {
        const tkm_worker *w = &in->workers[i];
        size_t idlen = strlen(w->id);
        if (w->busy_until_ms >= 0)
            v->busy++;
        if (w->heartbeat_age_ms < limit || w->busy_until_ms >= 0)
            continue;
        if (ages != NULL)
            ages[v->stale] = w->heartbeat_age_ms;
        v->stale++;
        /* Ids match [A-Za-z0-9_.:@-]: safe to pass on as data. */
        if (len + idlen + 2 < sizeof(v->stale_workers) - 4) {
            if (len > 0)
                v->stale_workers[len++] = ',';
            memcpy(v->stale_workers + len, w->id, idlen);
            len += idlen;
        } else if (len > 0 && strcmp(v->stale_workers + len - 4, ",...") != 0) {
            memcpy(v->stale_workers + len, ",...", 4);
            len += 4;
        }
        v->stale_workers[len] = '\0';
    }
    if (ages != NULL)
        v->stale_together =
            largest_cluster(ages, v->stale, o->shared_cause_window_s * 1000);
    free(ages);
}

TKM_EXPORT void tkm_stall_judge(const tkm_stall_options *o,
                                tkm_stall_tracker *t, const tkm_stall_input *in,
                                tkm_stall_verdict *v)
{
    int holds;

    memset(v, 0, sizeof(*v));
    v->threshold = -1;
    if (!in->readable) {
        t->consecutive = 0;
        v->state = TKM_STALL_UNKNOWN;
        tkm__fmt(v->why, sizeof(v->why), "pool state unreadable");
        return;
    }
    if (in->heartbeat_age_ms < 0) {
        t->consecutive = 0;
        v->state = TKM_STALL_UNKNOWN;
        tkm__fmt(v->why, sizeof(v->why), "no heartbeat was ever recorded");
        return;
    }
    if (o->tokens >= 0) {
        v->threshold = o->tokens;
    } else if (in->capacity > 0) {
        v->threshold = (int64_t)ceil(o->tokens_ratio * (double)in->capacity);
    } else {
        t->consecutive = 0;
        v->state = TKM_STALL_UNKNOWN;
        tkm__fmt(v->why, sizeof(v->why),
                 "capacity unknown: the ratio threshold cannot be applied");
        return;
    }
    stale_workers(o, in, v);
    v->busy += in->workers_busy;
    v->tokens_unused = in->tokens >= v->threshold;
    v->heartbeats_silent = in->heartbeat_age_ms >= o->heartbeat_age_s * 1000;
    holds = v->tokens_unused && v->heartbeats_silent && v->busy == 0;

    if (in->nworkers >= (size_t)o->shared_cause_min_workers &&
        v->stale_together >= 2 &&
        (double)v->stale_together >
            o->shared_cause_share * (double)in->nworkers) {
        /* Many workers stopped together: Redis, the network or the API,
         * not the workers.  Alert; restarting them would not help. */
        t->consecutive = 0;
        v->state = TKM_STALL_SHARED_CAUSE;
        tkm__fmt(v->why, sizeof(v->why),
                 "%zu of %zu workers went silent within %lld s: suspected "
                 "shared cause (Redis, network, the API)",
                 v->stale_together, in->nworkers,
                 (long long)o->shared_cause_window_s);
        return;
    }
    t->consecutive = holds ? t->consecutive + 1 : 0;
    v->confirmations = t->consecutive;
    if (!holds) {
        v->state = TKM_STALL_OK;
        tkm__fmt(v->why, sizeof(v->why), "%s",
                 v->busy                 ? "a worker is busy"
                 : !v->heartbeats_silent ? "heartbeats are fresh"
                                         : "tokens are being spent");
        return;
    }
    v->state = t->consecutive >= o->confirmations ? TKM_STALL_STALLED
                                                  : TKM_STALL_PENDING;
    tkm__fmt(v->why, sizeof(v->why),
             "tokens %lld >= %lld and no heartbeat for %.0f s (%lld of %lld "
             "reads)",
             (long long)in->tokens, (long long)v->threshold,
             (double)in->heartbeat_age_ms / 1000.0, (long long)t->consecutive,
             (long long)o->confirmations);
}
