/*
 * The legacy layout: the original Python system's keys, read as it wrote
 * them (float strings, Unix seconds on the workers' clocks) and never
 * written.  Reading is one script run; judging and projecting is a pure
 * function of the raw values, so it is tested without Redis.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* The names live here once; legacy.lua receives them as arguments. */
static const char *const key_names[TKM_LEGACY_NKEYS] = {
    "keepa_tokens_left",         "keepa_refill_rate",
    "keepa_token_timestamp",     "keepa_recharge_mode_active",
    "keepa_recharge_start_time", "keepa_worker_last_heartbeat",
};

/* Keepa refills once a minute (the legacy system had no other period). */
#define LEGACY_PERIOD_S 60.0

TKM_EXPORT const char *tkm_legacy_key_name(tkm_legacy_key key)
{
    if ((int)key < 0 || key >= TKM_LEGACY_NKEYS)
        return NULL;
    return key_names[key];
}

TKM_EXPORT tkm_code tkm_legacy_read(tkm_client *c, tkm_legacy_raw *out)
{
    enum { NVALUES = TKM__LEGACY_NFIELDS + TKM_LEGACY_NKEYS };
    tkm__call call;
    tkm__value v[NVALUES];
    const tkm__value *sec = &v[TKM__LEGACY_TIME_S];
    const tkm__value *usec = &v[TKM__LEGACY_TIME_US];
    int n = 0;
    tkm_code rc;

    _Static_assert(TKM_LEGACY_NKEYS <= TKM__MAX_OP_ARGS, "a call's arguments");
    _Static_assert(TKM__LEGACY_ROW_NFIELDS == 1, "one value a key");
    memset(out, 0, sizeof(*out));
    tkm__call_init(&call, c, TKM__CALL_LEGACY);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        tkm__call_str(&call, key_names[k]);
    rc = tkm__call_run(c, &call, v, NVALUES, &n);
    if (rc == TKM_OK && n != NVALUES)
        rc = tkm__fail(c, TKM_EPROTO,
                       "the legacy script answered %d values for %d keys", n,
                       TKM_LEGACY_NKEYS);
    if (rc != TKM_OK)
        return rc;
    if (!sec->is_int || !usec->is_int || sec->i < 0 || usec->i < 0 ||
        usec->i >= 1000000)
        return tkm__fail(c, TKM_EPROTO,
                         "the legacy script answered no usable TIME");
    out->now_us = sec->i * 1000000 + usec->i;
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++) {
        const tkm__value *src = &v[TKM__LEGACY_NFIELDS + k];
        tkm_legacy_value *dst = &out->value[k];
        if (src->is_nil)
            continue;
        if (src->is_int)
            return tkm__fail(c, TKM_EPROTO,
                             "the legacy script answered an integer for %s",
                             key_names[k]);
        dst->present = 1;
        dst->len = src->len;
        tkm__fmt(dst->text, sizeof(dst->text), "%s", src->s);
    }
    return TKM_OK;
}

/*
 * A value is whole when nothing was cut and it holds no NUL byte: a value
 * judged by its first bytes only could pass for a number it is not.
 */
static int whole(const tkm_legacy_value *v)
{
    return v->len <= TKM_LEGACY_VALUE_MAX && strlen(v->text) == v->len;
}

static tkm_legacy_check parse(const tkm_legacy_value *v, double min, double max,
                              double *out)
{
    if (!v->present)
        return TKM_LEGACY_MISSING;
    if (!whole(v) || tkm_parse_double(v->text, min, max, out) != TKM_OK)
        return TKM_LEGACY_INVALID;
    return TKM_LEGACY_OK;
}

static double age(double now, double then)
{
    return now > then ? now - then : 0.0;
}

TKM_EXPORT tkm_code tkm_legacy_project(const tkm_legacy_raw *raw,
                                       int64_t capacity_override,
                                       tkm_legacy_status *st)
{
    const tkm_legacy_value *val;
    double tokens = 0, rate = 0, sync = 0, start = 0, beat = 0;
    tkm_legacy_check *ck;

    if (raw == NULL || st == NULL || capacity_override < 0)
        return TKM_EINVAL;
    memset(st, 0, sizeof(*st));
    val = raw->value;
    ck = st->check;
    st->now_s = (double)raw->now_us / 1e6;

    ck[TKM_LEGACY_TOKENS_LEFT] =
        parse(&val[TKM_LEGACY_TOKENS_LEFT], -TKM_LEGACY_TOKENS_ABS_MAX,
              TKM_LEGACY_TOKENS_ABS_MAX, &tokens);
    ck[TKM_LEGACY_REFILL_RATE] =
        parse(&val[TKM_LEGACY_REFILL_RATE], 0, TKM_LEGACY_RATE_MAX, &rate);
    ck[TKM_LEGACY_TOKEN_TIMESTAMP] =
        parse(&val[TKM_LEGACY_TOKEN_TIMESTAMP], TKM_LEGACY_TIME_MIN,
              TKM_LEGACY_TIME_MAX, &sync);
    ck[TKM_LEGACY_RECHARGE_START] =
        parse(&val[TKM_LEGACY_RECHARGE_START], TKM_LEGACY_TIME_MIN,
              TKM_LEGACY_TIME_MAX, &start);
    ck[TKM_LEGACY_HEARTBEAT] =
        parse(&val[TKM_LEGACY_HEARTBEAT], TKM_LEGACY_TIME_MIN,
              TKM_LEGACY_TIME_MAX, &beat);

    /* The Python side set "1" and deleted the key to end recharge. */
    val = &raw->value[TKM_LEGACY_RECHARGE_ACTIVE];
    if (!val->present)
        ck[TKM_LEGACY_RECHARGE_ACTIVE] = TKM_LEGACY_MISSING;
    else if (whole(val) && strcmp(val->text, "1") == 0)
        ck[TKM_LEGACY_RECHARGE_ACTIVE] = TKM_LEGACY_OK;
    else
        ck[TKM_LEGACY_RECHARGE_ACTIVE] = TKM_LEGACY_INVALID;
    st->has_recharge_mode =
        ck[TKM_LEGACY_RECHARGE_ACTIVE] != TKM_LEGACY_INVALID;
    st->recharge_mode = ck[TKM_LEGACY_RECHARGE_ACTIVE] == TKM_LEGACY_OK;
    if (st->recharge_mode && ck[TKM_LEGACY_RECHARGE_START] == TKM_LEGACY_OK) {
        st->has_recharge_age = 1;
        st->recharge_age_s = age(st->now_s, start);
    }

    if (ck[TKM_LEGACY_REFILL_RATE] == TKM_LEGACY_OK) {
        st->has_refill_rate = 1;
        st->refill_rate = rate;
    }
    if (capacity_override > 0) {
        st->has_capacity = 1;
        st->capacity = (double)capacity_override;
    } else if (st->has_refill_rate) {
        st->has_capacity = 1;
        st->capacity = LEGACY_PERIOD_S * rate;
    }
    if (ck[TKM_LEGACY_TOKEN_TIMESTAMP] == TKM_LEGACY_OK) {
        st->has_last_sync_age = 1;
        st->last_sync_age_s = age(st->now_s, sync);
    }
    if (ck[TKM_LEGACY_HEARTBEAT] == TKM_LEGACY_OK) {
        st->has_heartbeat_age = 1;
        st->heartbeat_age_s = age(st->now_s, beat);
    }

    /*
     * A balance is only "now" with its refill: without a rate or a sync
     * time the stored number is stale (the old watchdog's blind spot), so
     * it stays unknown rather than frozen.
     */
    if (ck[TKM_LEGACY_TOKENS_LEFT] == TKM_LEGACY_OK && st->has_refill_rate &&
        st->has_last_sync_age && st->has_capacity) {
        double ticks = floor(st->last_sync_age_s / LEGACY_PERIOD_S);
        st->has_tokens = 1;
        st->tokens = tokens;
        if (ticks > 0 && tokens < st->capacity)
            st->tokens = fmin(st->capacity, tokens + ticks * rate);
    }
    return TKM_OK;
}
