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

/* Stale workers: list their ids, and count those whose last heartbeat
 * reported an error shortly before they went silent (within the stall age
 * before it). */
static void stale_workers(const tkm_stall_options *o, const tkm_stall_input *in,
                          tkm_stall_verdict *v)
{
    int64_t limit = o->heartbeat_age_s * 1000;
    size_t len = 0;

    for (size_t i = 0; i < in->nworkers; i++) {
        const tkm_worker *w = &in->workers[i];
        size_t idlen = strlen(w->id);
        int64_t before;
        if (w->busy_until_ms >= 0)
            v->busy++;
        if (w->heartbeat_age_ms < limit || w->busy_until_ms >= 0)
            continue;
        v->stale++;
        before = w->error_age_ms - w->heartbeat_age_ms;
        if (w->error[0] != '\0' && before >= 0 && before <= limit)
            v->stale_errors++;
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
}

/*
 * Positive evidence that the workers' silence has a cause a restart would
 * not cure.  Simultaneity alone is none: a hung shared dependency freezes
 * every worker together, and a restart is the cure.
 */
static void evidence(const tkm_stall_options *o, const tkm_stall_input *in,
                     tkm_stall_verdict *v)
{
    int64_t window = o->heartbeat_age_s * 1000;

    if (in->monitor_lost_redis && in->monitor_lost_redis_age_ms <= window)
        tkm__fmt(v->evidence, sizeof(v->evidence),
                 "the monitor itself could not read Redis %.0f s ago",
                 (double)in->monitor_lost_redis_age_ms / 1000.0);
    else if (v->stale > 0 && 2 * v->stale_errors > v->stale)
        tkm__fmt(v->evidence, sizeof(v->evidence),
                 "%zu of %zu silent workers reported Redis or API errors "
                 "before going silent",
                 v->stale_errors, v->stale);
}

TKM_EXPORT void tkm_stall_judge(const tkm_stall_options *o,
                                tkm_stall_tracker *t, const tkm_stall_input *in,
                                tkm_stall_verdict *v)
{
    int holds;
    int64_t held_ms;

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
    evidence(o, in, v);
    /* Held back since the silence reached the stall age. */
    held_ms = in->heartbeat_age_ms - o->heartbeat_age_s * 1000;
    v->escalated =
        v->evidence[0] != '\0' && held_ms >= o->shared_cause_escalate_s * 1000;
    if (v->evidence[0] != '\0' && !v->escalated) {
        v->state = TKM_STALL_SHARED_CAUSE;
        tkm__fmt(v->why, sizeof(v->why),
                 "tokens %lld >= %lld and no heartbeat for %.0f s, held back: "
                 "%s",
                 (long long)in->tokens, (long long)v->threshold,
                 (double)in->heartbeat_age_ms / 1000.0, v->evidence);
        return;
    }
    v->state = t->consecutive >= o->confirmations ? TKM_STALL_STALLED
                                                  : TKM_STALL_PENDING;
    if (v->escalated)
        tkm__fmt(v->why, sizeof(v->why),
                 "tokens %lld >= %lld and no heartbeat for %.0f s: held back "
                 "for %.0f s (%s), longer than %lld s: acting",
                 (long long)in->tokens, (long long)v->threshold,
                 (double)in->heartbeat_age_ms / 1000.0,
                 (double)held_ms / 1000.0, v->evidence,
                 (long long)o->shared_cause_escalate_s);
    else
        tkm__fmt(v->why, sizeof(v->why),
                 "tokens %lld >= %lld and no heartbeat for %.0f s (%lld of "
                 "%lld reads)",
                 (long long)in->tokens, (long long)v->threshold,
                 (double)in->heartbeat_age_ms / 1000.0,
                 (long long)t->consecutive, (long long)o->confirmations);
}
