/*
 * Script calls: KEYS and ARGV built as each script declares them (@keys,
 * @policy, @call in lib/lua), and replies checked against the declared
 * shape, so that callers read fields by their generated names.  No policy
 * here: it is in lib/lua.  Nothing is allocated but by tkm__call_run_alloc.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/*
 * Bounds: init pushes at most TKM__NKEYS_POOL + TKM__NKEYS_GUARD keys and
 * TKM__NPOLICY numbers, which TKM__ARGV_MAX and num[] count; every other
 * push is an operation argument, refused past TKM__MAX_OP_ARGS.
 */
_Static_assert(TKM__NUM_LEN >= sizeof("-9223372036854775808"),
               "a number slot holds any int64_t");
_Static_assert(TKM__CALL_ARGS_MAX <= TKM__MAX_OP_ARGS,
               "a script declares more arguments than tkm__call holds");
_Static_assert(sizeof(((tkm_client *)0)->key_guard) /
                       sizeof(((tkm_client *)0)->key_guard[0]) ==
                   TKM__NKEYS_GUARD,
               "one name per guard key");

static void push(tkm__call *k, const char *s)
{
    k->argv[k->argc++] = s;
}

static void push_num(tkm__call *k, int64_t v)
{
    char *slot = k->num[k->nnum++];

    snprintf(slot, TKM__NUM_LEN, "%lld", (long long)v);
    push(k, slot);
}

/* prelude.lua's KEYS[1..8]. */
static void push_pool_keys(tkm__call *k, const tkm_client *c)
{
    const char *const keys[] = {
        c->key_bucket,  c->key_leases,     c->key_expiry, c->key_heartbeats,
        c->key_workers, c->key_token_sync, c->key_busy,   c->key_queue};

    _Static_assert(sizeof(keys) / sizeof(keys[0]) == TKM__NKEYS_POOL,
                   "the pool's key set");
    for (int i = 0; i < TKM__NKEYS_POOL; i++)
        push(k, keys[i]);
}

/* recovery.lua's keys, after the pool's (recovery_log.lua takes them
 * alone).  Named per call: only the calls of the guard need them. */
static void push_guard_keys(tkm__call *k, tkm_client *c)
{
    static const char *const names[TKM__NKEYS_GUARD] = {
        "recovery", "recovery_actions", "recovery_lease", "recovery_log"};

    for (int i = 0; i < TKM__NKEYS_GUARD; i++) {
        snprintf(c->key_guard[i], sizeof(c->key_guard[i]), "tokenmgr:{%s}:%s",
                 c->opts.pool, names[i]);
        push(k, c->key_guard[i]);
    }
}

/* prelude.lua's ARGV[1..13], in its order. */
static void push_policy(tkm__call *k, const tkm_options *o)
{
    const tkm_bucket_options *b = &o->bucket;
    /* In thousandths, as the scripts count estimate errors (options.c
     * holds it to 1..1000, so this is 1000..1000000). */
    double prior = b->estimate_prior >= 1 && b->estimate_prior <= 1000
                       ? b->estimate_prior * 1000.0 + 0.5
                       : 4000;
    const int64_t policy[] = {b->capacity,
                              b->min_start_balance,
                              b->soft_floor,
                              b->recharge_target,
                              b->low_cost_max,
                              b->low_cost_target,
                              b->recharge_timeout_s * 1000,
                              b->max_deficit,
                              b->lease_ttl_s * 1000,
                              b->refill_period_ms,
                              o->heartbeat.stale_after_s * 1000,
                              o->heartbeat.retention_s * 1000,
                              (int64_t)prior};

    _Static_assert(sizeof(policy) / sizeof(policy[0]) == TKM__NPOLICY,
                   "the policy arguments");
    for (int i = 0; i < TKM__NPOLICY; i++)
        push_num(k, policy[i]);
}

void tkm__call_init(tkm__call *k, tkm_client *c, tkm__call_id id)
{
    const tkm__call_decl *d = &tkm__calls[id];
    const tkm__script *s = &tkm__scripts[d->script];

    k->decl = d;
    k->argc = 0;
    k->nnum = 0;
    k->nop = 0;
    k->overflow = 0;
    k->refused[0] = '\0';
    if (s->keys & TKM__KEYS_POOL)
        push_pool_keys(k, c);
    if (s->keys & TKM__KEYS_GUARD)
        push_guard_keys(k, c);
    k->nkeys = k->argc;
    if (s->policy)
        push_policy(k, &c->opts);
    if (d->command != NULL)
        tkm__call_str(k, d->command);
}

void tkm__call_int(tkm__call *k, int64_t v)
{
    if (k->nop >= TKM__MAX_OP_ARGS) {
        k->overflow = 1;
        return;
    }
    k->nop++;
    push_num(k, v);
}

void tkm__call_int_in(tkm__call *k, const char *name, int64_t v, int64_t lo,
                      int64_t hi, const char *unit)
{
    if (v >= lo && v <= hi) {
        tkm__call_int(k, v);
        return;
    }
    if (k->refused[0] == '\0')
        tkm__fmt(k->refused, sizeof(k->refused),
                 "%s %lld is %s: allowed %lld..%lld%s%s; nothing was sent",
                 name, (long long)v,
                 v < 0 && lo == 0 ? "negative" : "out of range", (long long)lo,
                 (long long)hi, unit[0] ? " " : "", unit);
    /* A placeholder keeps the count the declaration checks. */
    tkm__call_str(k, "");
}

void tkm__call_str(tkm__call *k, const char *s)
{
    if (k->nop >= TKM__MAX_OP_ARGS) {
        k->overflow = 1;
        return;
    }
    k->nop++;
    push(k, s);
}

/* A call that does not match its declaration is a bug: say so, send
 * nothing. */
static tkm_code check_args(tkm_client *c, const tkm__call *k)
{
    const tkm__call_decl *d = k->decl;
    int want = d->nargs + (d->command != NULL);

    if (k->refused[0] != '\0')
        return tkm__fail(c, TKM_EINVAL, "%s", k->refused);
    if (k->overflow)
        return tkm__fail(c, TKM_EINVAL,
                         "the %s call was given more than %d arguments",
                         d->name, TKM__MAX_OP_ARGS);
    if (k->nop < want || (!d->args_open && k->nop > want))
        return tkm__fail(
            c, TKM_EINVAL, "the %s call takes %s%d arguments, was given %d",
            d->name, d->args_open ? "at least " : "", want, k->nop);
    return TKM_OK;
}

static tkm_code check_reply(tkm_client *c, const tkm__call_decl *d, int n)
{
    if (d->open       ? n >= d->nfields
        : d->nrow > 0 ? n >= d->nfields && (n - d->nfields) % d->nrow == 0
                      : n == d->nfields)
        return TKM_OK;
    if (d->nrow > 0)
        return tkm__fail(c, TKM_EPROTO,
                         "the %s script answered %d values, expected %d and "
                         "rows of %d",
                         d->name, n, d->nfields, d->nrow);
    return tkm__fail(c, TKM_EPROTO,
                     "the %s script answered %d values, expected %s%d", d->name,
                     n, d->open ? "at least " : "", d->nfields);
}

tkm_code tkm__call_run(tkm_client *c, tkm__call *k, tkm__value *out, int maxout,
                       int *nout)
{
    int n = 0;
    tkm_code rc = c->open_status;

    if (rc == TKM_OK)
        rc = check_args(c, k);
    if (rc == TKM_OK)
        rc = tkm__script_run(c, k->decl->script, k->nkeys, k->argv, k->argc,
                             out, maxout, &n);
    if (rc == TKM_OK)
        rc = check_reply(c, k->decl, n);
    if (nout != NULL)
        *nout = n;
    return rc;
}

tkm_code tkm__call_run_alloc(tkm_client *c, tkm__call *k, tkm__value **out,
                             int *nout)
{
    tkm_code rc = c->open_status;

    *out = NULL;
    *nout = 0;
    if (rc == TKM_OK)
        rc = check_args(c, k);
    if (rc == TKM_OK)
        rc = tkm__script_run_alloc(c, k->decl->script, k->nkeys, k->argv,
                                   k->argc, out, nout);
    if (rc == TKM_OK)
        rc = check_reply(c, k->decl, *nout);
    if (rc != TKM_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
