/*
 * The bucket operations: each one is one script run inside Redis.  This file
 * only marshals arguments and replies; the policy is in lib/lua.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void push_int_slot(tkm__args *a, int64_t v, char *slot)
{
    snprintf(slot, TKM__NUM_LEN, "%lld", (long long)v);
    a->argv[a->argc++] = slot;
}

void tkm__push_int(tkm__args *a, int64_t v)
{
    push_int_slot(a, v, a->num[a->nnum++]);
}

void tkm__push_str(tkm__args *a, const char *s)
{
    a->argv[a->argc++] = s;
}

void tkm__args_init(tkm__args *a, const tkm_client *c)
{
    tkm__args_init_keys(a, c, NULL, 0);
}

void tkm__args_init_keys(tkm__args *a, const tkm_client *c,
                         const char *const *extra, int nextra)
{
    const tkm_bucket_options *b = &c->opts.bucket;
    const tkm_heartbeat_options *h = &c->opts.heartbeat;

    a->argc = 0;
    a->nnum = 0;
    tkm__push_str(a, c->key_bucket);
    tkm__push_str(a, c->key_leases);
    tkm__push_str(a, c->key_expiry);
    tkm__push_str(a, c->key_heartbeats);
    tkm__push_str(a, c->key_workers);
    tkm__push_str(a, c->key_token_sync);
    tkm__push_str(a, c->key_busy);
    for (int i = 0; i < nextra && i < TKM__MAX_EXTRA_KEYS; i++)
        tkm__push_str(a, extra[i]);
    a->nkeys = a->argc;
    tkm__push_int(a, b->capacity);
    tkm__push_int(a, b->min_start_balance);
    tkm__push_int(a, b->soft_floor);
    tkm__push_int(a, b->recharge_target);
    tkm__push_int(a, b->low_cost_max);
    tkm__push_int(a, b->low_cost_target);
    tkm__push_int(a, b->recharge_timeout_s * 1000);
    tkm__push_int(a, b->max_deficit);
    tkm__push_int(a, b->lease_ttl_s * 1000);
    tkm__push_int(a, b->refill_period_ms);
    tkm__push_int(a, h->stale_after_s * 1000);
    tkm__push_int(a, h->retention_s * 1000);
}

tkm_code tkm__run(tkm_client *c, tkm__script_id id, tkm__args *a,
                  tkm__value *out, int want, int *nout)
{
    int max = want < 0 ? -want : want;
    int n = 0;
    tkm_code rc;

    if (c->open_status != TKM_OK)
        return c->open_status;
    rc = tkm__script_run(c, id, a->nkeys, a->argv, a->argc, out, max, &n);
    if (rc == TKM_OK && want >= 0 && n != want)
        rc = tkm__fail(c, TKM_EPROTO,
                       "the %s script answered %d values, expected %d",
                       tkm__scripts[id].name, n, want);
    if (nout != NULL)
        *nout = n;
    return rc;
}

static tkm_code run(tkm_client *c, tkm__script_id id, tkm__args *a,
                    tkm__value *out, int want)
{
    return tkm__run(c, id, a, out, want, NULL);
}

static int valid_grant_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > TKM_GRANT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return 0;
    }
    return 1;
}

static tkm_reason reason_from(const char *s)
{
    static const tkm_reason all[] = {
        TKM_REASON_OK,           TKM_REASON_RECHARGING,
        TKM_REASON_INSUFFICIENT, TKM_REASON_DEFICIT_LIMIT,
        TKM_REASON_NEED_SYNC,    TKM_REASON_WAIT_TOO_LONG};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(tkm_reason_str(all[i]), s) == 0)
            return all[i];
    }
    return TKM_REASON_INSUFFICIENT;
}

TKM_EXPORT tkm_code tkm_try_acquire(tkm_client *c, int64_t cost, tkm_grant *g)
{
    tkm__args a;
    tkm__value v[7];
    tkm_code rc;

    memset(g, 0, sizeof(*g));
    if (cost < 0)
        return tkm__fail(c, TKM_EINVAL, "cost %lld is negative",
                         (long long)cost);
    tkm__args_init(&a, c);
    tkm__push_int(&a, cost);
    tkm__push_str(&a, c->opts.worker_id);
    rc = run(c, TKM__SCRIPT_ACQUIRE, &a, v, 7);
    if (rc != TKM_OK)
        return rc;
    g->granted = v[0].i != 0;
    tkm__copy(g->id, sizeof(g->id), v[1].s);
    g->tokens = v[2].i;
    g->reason = reason_from(v[3].s);
    g->retry_after_ms = v[4].i < 0 ? TKM_RETRY_NEVER : v[4].i;
    g->recharge_mode = v[5].i != 0;
    g->recharge_expired = v[6].i != 0;
    return TKM_OK;
}

static tkm_code reconcile_reply(tkm_client *c, tkm__script_id id, tkm__args *a,
                                tkm_reconcile *out)
{
    tkm__value v[3];
    tkm_code rc = run(c, id, a, v, 3);

    if (rc == TKM_OK && out != NULL) {
        out->tokens = v[0].i;
        out->report_applied = v[1].i != 0;
        out->report_stale = v[2].i != 0;
    }
    return rc;
}

static tkm_code check_grant_id(tkm_client *c, const char *id)
{
    if (!valid_grant_id(id))
        return tkm__fail(c, TKM_ENOGRANT,
                         "'%.40s' is not a grant id (digits and '-', as "
                         "acquire prints them)",
                         id ? id : "(null)");
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_complete(tkm_client *c, const char *grant_id,
                                 int64_t consumed, const tkm_report *report,
                                 tkm_reconcile *out)
{
    tkm__args a;

    if (check_grant_id(c, grant_id) != TKM_OK)
        return TKM_ENOGRANT;
    if (consumed < 0)
        return tkm__fail(c, TKM_EINVAL, "consumed %lld is negative",
                         (long long)consumed);
    tkm__args_init(&a, c);
    tkm__push_str(&a, grant_id);
    tkm__push_int(&a, consumed);
    if (report != NULL) {
        tkm__push_int(&a, report->tokens_left);
        tkm__push_int(&a, report->timestamp_ms);
    } else {
        tkm__push_str(&a, "");
        tkm__push_str(&a, "");
    }
    return reconcile_reply(c, TKM__SCRIPT_COMPLETE, &a, out);
}

TKM_EXPORT tkm_code tkm_release(tkm_client *c, const char *grant_id,
                                tkm_reconcile *out)
{
    tkm__args a;

    if (check_grant_id(c, grant_id) != TKM_OK)
        return TKM_ENOGRANT;
    tkm__args_init(&a, c);
    tkm__push_str(&a, grant_id);
    return reconcile_reply(c, TKM__SCRIPT_RELEASE, &a, out);
}

TKM_EXPORT tkm_code tkm_sync(tkm_client *c, const tkm_sync_info *info,
                             tkm_reconcile *out)
{
    tkm__args a;

    if (info->rate < 0)
        return tkm__fail(c, TKM_EINVAL, "refill rate %lld is negative",
                         (long long)info->rate);
    if (info->refill_in_ms > c->opts.bucket.refill_period_ms)
        return tkm__fail(c, TKM_EINVAL,
                         "refill_in_ms %lld is longer than the refill period "
                         "%lld ms",
                         (long long)info->refill_in_ms,
                         (long long)c->opts.bucket.refill_period_ms);
    tkm__args_init(&a, c);
    tkm__push_int(&a, info->tokens);
    tkm__push_int(&a, info->rate);
    if (info->refill_in_ms >= 0)
        tkm__push_int(&a, info->refill_in_ms);
    else
        tkm__push_str(&a, "");
    if (info->timestamp_ms >= 0)
        tkm__push_int(&a, info->timestamp_ms);
    else
        tkm__push_str(&a, "");
    return reconcile_reply(c, TKM__SCRIPT_SYNC, &a, out);
}

TKM_EXPORT tkm_code tkm_status(tkm_client *c, tkm_pool_status *st)
{
    tkm__args a;
    tkm__value v[18];
    tkm_code rc;

    memset(st, 0, sizeof(*st));
    tkm__args_init(&a, c);
    rc = run(c, TKM__SCRIPT_STATUS, &a, v, 18);
    if (rc != TKM_OK)
        return rc;
    st->synced = v[0].i != 0;
    st->tokens = v[1].i;
    st->capacity = v[2].i;
    st->refill_rate = v[3].i;
    st->refill_period_ms = v[4].i;
    st->refill_in_ms = v[5].i;
    st->recharge_mode = v[6].i != 0;
    st->recharge_since_ms = v[7].i;
    st->recharge_target = v[8].i;
    st->inflight = v[9].i;
    st->inflight_tokens = v[10].i;
    st->last_sync_age_ms = v[11].i;
    st->now_ms = v[12].i;
    st->workers_total = v[13].i;
    st->workers_alive = v[14].i;
    st->heartbeat_age_ms = v[15].i;
    st->inflight_reserve = v[16].i;
    st->estimate_ratio = (double)v[17].i / 1000.0;
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_recharge(tkm_client *c, int on)
{
    tkm__args a;
    tkm__value v[1];

    tkm__args_init(&a, c);
    tkm__push_str(&a, on ? "1" : "0");
    return run(c, TKM__SCRIPT_RECHARGE, &a, v, 1);
}

TKM_EXPORT tkm_code tkm_reset(tkm_client *c, int64_t *deleted)
{
    tkm__args a;
    tkm__value v[1];
    tkm_code rc;

    tkm__args_init(&a, c);
    tkm__push_str(&a, c->key_pattern);
    rc = run(c, TKM__SCRIPT_RESET, &a, v, 1);
    if (rc == TKM_OK && deleted != NULL)
        *deleted = v[0].i;
    return rc;
}

tkm_code tkm__sync_claim(tkm_client *c, int64_t interval_ms, int force,
                         int *claimed, int64_t *next_allowed_ms)
{
    tkm__args a;
    tkm__value v[2];
    tkm_code rc;

    *claimed = 0;
    *next_allowed_ms = 0;
    tkm__args_init(&a, c);
    tkm__push_int(&a, interval_ms);
    tkm__push_str(&a, force ? "1" : "0");
    rc = run(c, TKM__SCRIPT_SYNC_CLAIM, &a, v, 2);
    if (rc == TKM_OK) {
        *claimed = v[0].i != 0;
        *next_allowed_ms = v[1].i;
    }
    return rc;
}
