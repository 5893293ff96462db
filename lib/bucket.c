/*
 * The bucket operations: each one is one script call (script.c) inside
 * Redis.  This file checks the caller's arguments and turns replies into the
 * public structs; the policy is in lib/lua.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
        TKM_REASON_NEED_SYNC,    TKM_REASON_WAIT_TOO_LONG,
        TKM_REASON_LINE_AHEAD};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(tkm_reason_str(all[i]), s) == 0)
            return all[i];
    }
    return TKM_REASON_INSUFFICIENT;
}

void tkm__acquire_args(tkm__call *k, tkm_client *c, int64_t cost,
                       const char *cls, int64_t weight, const char *ticket,
                       int64_t max_wait_ms, const char *beat)
{
    tkm__call_init(k, c, TKM__CALL_ACQUIRE);
    tkm__call_int_in(k, "cost", cost, 0, TKM_TOKENS_MAX, "tokens");
    tkm__call_str(k, c->opts.worker_id);
    tkm__call_str(k, cls);
    tkm__call_int_in(k, "weight", weight, 1, TKM_QUEUE_WEIGHT_MAX, "");
    tkm__call_str(k, ticket);
    if (max_wait_ms < 0)
        tkm__call_str(k, "");
    else
        tkm__call_int_in(k, "max_wait_ms", max_wait_ms, 0, TKM_MAX_WAIT_MS,
                         "ms");
    tkm__call_str(k, beat);
}

/*
 * One attempt (acquire.lua): a try when max_wait_ms < 0 (nothing written
 * on a denial), else in line as class `cls` with *ticket (updated: "" when
 * the call holds no place in line).  With a `phase`, the attempt is the
 * worker's heartbeat too (of `phase` when granted, of waiting while in
 * line): carried by the attempt when it can be, else a grant's is sent
 * after it.
 */
tkm_code tkm__attempt(tkm_client *c, int64_t cost, const char *cls,
                      int64_t weight, char *ticket, size_t ticket_len,
                      int64_t max_wait_ms, const char *phase, tkm_grant *g,
                      int64_t *ahead)
{
    char beat[TKM_PHASE_MAX + 1] = "";
    tkm__call k;
    tkm__value v[TKM__ACQUIRE_NFIELDS];
    tkm_code rc;

    memset(g, 0, sizeof(*g));
    if (phase != NULL)
        tkm__carried_beat(c, phase, beat);
    tkm__acquire_args(&k, c, cost, cls, weight, ticket, max_wait_ms, beat);
    rc = tkm__call_run(c, &k, v, TKM__ACQUIRE_NFIELDS, NULL);
    if (rc != TKM_OK)
        return rc;
    g->granted = v[TKM__ACQUIRE_GRANTED].i != 0;
    tkm__copy(g->id, sizeof(g->id), v[TKM__ACQUIRE_ID].s);
    g->tokens = v[TKM__ACQUIRE_TOKENS].i;
    g->reason = reason_from(v[TKM__ACQUIRE_REASON].s);
    g->retry_after_ms = v[TKM__ACQUIRE_RETRY_AFTER_MS].i < 0
                            ? TKM_RETRY_NEVER
                            : v[TKM__ACQUIRE_RETRY_AFTER_MS].i;
    g->recharge_mode = v[TKM__ACQUIRE_RECHARGE_MODE].i != 0;
    g->recharge_expired = v[TKM__ACQUIRE_RECHARGE_EXPIRED].i != 0;
    if (ticket != NULL &&
        tkm__copy(ticket, ticket_len, v[TKM__ACQUIRE_TICKET].s) != 0)
        ticket[0] = '\0';
    if (ahead != NULL)
        *ahead = v[TKM__ACQUIRE_AHEAD].i;
    /* The script wrote the heartbeat: granted, or waiting in line. */
    if (beat[0] != '\0' &&
        (g->granted || (ticket != NULL && ticket[0] != '\0')))
        c->last_heartbeat_ms = tkm__monotonic_ms();
    else if (g->granted && phase != NULL)
        (void)tkm_heartbeat(c, phase);
    return TKM_OK;
}

void tkm__leave(tkm_client *c, const char *ticket)
{
    char err[sizeof(c->err)];
    tkm__call k;
    tkm__value v[TKM__LEAVE_NFIELDS];

    if (ticket[0] == '\0')
        return;
    memcpy(err, c->err, sizeof(err));
    tkm__call_init(&k, c, TKM__CALL_LEAVE);
    tkm__call_str(&k, ticket);
    (void)tkm__call_run(c, &k, v, TKM__LEAVE_NFIELDS, NULL);
    memcpy(c->err, err, sizeof(err));
}

TKM_EXPORT tkm_code tkm_try_acquire(tkm_client *c, int64_t cost, tkm_grant *g)
{
    int64_t weight;
    tkm_code rc = tkm__queue_weight(c, NULL, &weight);

    if (rc != TKM_OK) {
        memset(g, 0, sizeof(*g));
        return rc;
    }
    return tkm__attempt(c, cost, c->opts.queue.class_name, weight,
                        (char[1]){""}, 1, -1, NULL, g, NULL);
}

/* complete, release and sync answer one reply, read with complete's names
 * (complete's has the next call's place after it). */
#define SAME_FIELD(call, field) (TKM__##call##_##field == TKM__COMPLETE_##field)
_Static_assert(SAME_FIELD(RELEASE, TOKENS) &&
                   SAME_FIELD(RELEASE, REPORT_APPLIED) &&
                   SAME_FIELD(RELEASE, REPORT_STALE) &&
                   SAME_FIELD(SYNC, TOKENS) &&
                   SAME_FIELD(SYNC, REPORT_APPLIED) &&
                   SAME_FIELD(SYNC, REPORT_STALE) &&
                   TKM__RELEASE_NFIELDS == TKM__SYNC_NFIELDS &&
                   TKM__RELEASE_NFIELDS <= TKM__COMPLETE_NFIELDS,
               "release.lua and sync.lua answer as complete.lua begins");

static tkm_code reconcile_reply(tkm_client *c, tkm__call *k, int n,
                                tkm__value *v, tkm_reconcile *out)
{
    tkm_code rc = tkm__call_run(c, k, v, n, NULL);

    if (rc == TKM_OK && out != NULL) {
        out->tokens = v[TKM__COMPLETE_TOKENS].i;
        out->report_applied = v[TKM__COMPLETE_REPORT_APPLIED].i != 0;
        out->report_stale = v[TKM__COMPLETE_REPORT_STALE].i != 0;
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

/* The ranges of tokenmgr.h, each with what its numbers are. */
#define TOKENS    -TKM_TOKENS_MAX, TKM_TOKENS_MAX, "tokens"
#define COST      0, TKM_TOKENS_MAX, "tokens"
#define RATE      0, TKM_RATE_MAX, "tokens per refill period"
#define TIMESTAMP 0, TKM_TIMESTAMP_MS_MAX, "(Unix milliseconds)"
#define TIMESTAMP1                                                             \
    0, TKM_TIMESTAMP_MS_MAX, "(Unix milliseconds; -1: Redis' clock)"

/* An optional number: -1 means absent, sent as '' (the scripts' arg_opt);
 * any other value is held to its range. */
static void push_opt(tkm__call *k, const char *name, int64_t v, int64_t lo,
                     int64_t hi, const char *unit)
{
    if (v == -1)
        tkm__call_str(k, "");
    else
        tkm__call_int_in(k, name, v, lo, hi, unit);
}

TKM_EXPORT tkm_code tkm_complete(tkm_client *c, const char *grant_id,
                                 int64_t consumed, const tkm_report *report,
                                 tkm_reconcile *out)
{
    tkm__call k;
    tkm__value v[TKM__COMPLETE_NFIELDS];
    /* The grant of a call that waited in line: the worker's next call is
     * expected, and takes its place now (complete.lua). */
    int next = c->waited.id[0] != '\0' && strcmp(c->waited.id, grant_id) == 0;
    int64_t weight = 1;
    tkm_code rc;

    if (check_grant_id(c, grant_id) != TKM_OK)
        return TKM_ENOGRANT;
    tkm__call_init(&k, c, TKM__CALL_COMPLETE);
    tkm__call_str(&k, grant_id);
    tkm__call_int_in(&k, "consumed", consumed, COST);
    if (report != NULL) {
        tkm__call_int_in(&k, "tokens_left", report->tokens_left, TOKENS);
        tkm__call_int_in(&k, "timestamp_ms", report->timestamp_ms, TIMESTAMP);
    } else {
        tkm__call_str(&k, "");
        tkm__call_str(&k, "");
    }
    /* The class's weight: its acquire found it (queue.classes). */
    next = next && tkm__queue_weight(c, c->waited.cls, &weight) == TKM_OK;
    tkm__call_str(&k, c->opts.worker_id);
    tkm__call_str(&k, next ? c->waited.cls : "");
    tkm__call_int_in(&k, "weight", weight, 1, TKM_QUEUE_WEIGHT_MAX, "");
    if (next) {
        tkm__call_int_in(&k, "cost", c->waited.cost, COST);
        tkm__call_int_in(&k, "max_wait_ms", c->waited.max_wait_ms, 0,
                         TKM_MAX_WAIT_MS, "ms");
    } else {
        tkm__call_str(&k, "");
        tkm__call_str(&k, "");
    }
    rc = reconcile_reply(c, &k, TKM__COMPLETE_NFIELDS, v, out);
    if (rc != TKM_OK || !next)
        return rc;
    c->waited.id[0] = '\0';
    tkm__keep_place(c, v[TKM__COMPLETE_TICKET].s, c->waited.cls,
                    v[TKM__COMPLETE_WAIT_MS].i);
    return rc;
}

TKM_EXPORT tkm_code tkm_release(tkm_client *c, const char *grant_id,
                                tkm_reconcile *out)
{
    tkm__call k;
    tkm__value v[TKM__RELEASE_NFIELDS];

    if (check_grant_id(c, grant_id) != TKM_OK)
        return TKM_ENOGRANT;
    tkm__call_init(&k, c, TKM__CALL_RELEASE);
    tkm__call_str(&k, grant_id);
    return reconcile_reply(c, &k, TKM__RELEASE_NFIELDS, v, out);
}

TKM_EXPORT tkm_code tkm_sync(tkm_client *c, const tkm_sync_info *info,
                             tkm_reconcile *out)
{
    tkm__call k;
    tkm__value v[TKM__SYNC_NFIELDS];

    tkm__call_init(&k, c, TKM__CALL_SYNC);
    tkm__call_int_in(&k, "tokens", info->tokens, TOKENS);
    tkm__call_int_in(&k, "refill rate", info->rate, RATE);
    push_opt(&k, "refill_in_ms", info->refill_in_ms, 0,
             c->opts.bucket.refill_period_ms,
             "ms (at most the refill period; -1: unknown)");
    push_opt(&k, "timestamp_ms", info->timestamp_ms, TIMESTAMP1);
    return reconcile_reply(c, &k, TKM__SYNC_NFIELDS, v, out);
}

/* The pool's fields of a status reply. */
static void pool_status_from(const tkm__value *v, tkm_pool_status *st)
{
    st->synced = v[TKM__STATUS_SYNCED].i != 0;
    st->tokens = v[TKM__STATUS_TOKENS].i;
    st->capacity = v[TKM__STATUS_CAPACITY].i;
    st->refill_rate = v[TKM__STATUS_RATE].i;
    st->refill_period_ms = v[TKM__STATUS_PERIOD_MS].i;
    st->refill_in_ms = v[TKM__STATUS_REFILL_IN_MS].i;
    st->recharge_mode = v[TKM__STATUS_RECHARGE_MODE].i != 0;
    st->recharge_since_ms = v[TKM__STATUS_RECHARGE_SINCE_MS].i;
    st->recharge_target = v[TKM__STATUS_RECHARGE_TARGET].i;
    st->inflight = v[TKM__STATUS_INFLIGHT].i;
    st->inflight_tokens = v[TKM__STATUS_INFLIGHT_TOKENS].i;
    st->last_sync_age_ms = v[TKM__STATUS_LAST_SYNC_AGE_MS].i;
    st->now_ms = v[TKM__STATUS_NOW].i;
    st->workers_total = v[TKM__STATUS_WORKERS_TOTAL].i;
    st->workers_alive = v[TKM__STATUS_WORKERS_ALIVE].i;
    st->heartbeat_age_ms = v[TKM__STATUS_HEARTBEAT_AGE_MS].i;
    st->inflight_reserve = v[TKM__STATUS_INFLIGHT_RESERVE].i;
    st->estimate_ratio = (double)v[TKM__STATUS_ESTIMATE_RATIO].i / 1000.0;
}

/* The classes to report: "default", the configured ones in their order,
 * then the others the reply names. */
static size_t class_slot(tkm_queue_class *list, size_t *n, const char *name)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if (strcmp(list[i].name, name) == 0)
            return i;
    }
    memset(&list[i], 0, sizeof(list[i]));
    tkm__copy(list[i].name, sizeof(list[i].name), name);
    list[i].oldest_wait_ms = -1;
    (*n)++;
    return i;
}

TKM_EXPORT tkm_code tkm_queue_status(tkm_client *c, tkm_pool_status *st,
                                     tkm_queue_class **classes, size_t *count)
{
    tkm__call k;
    tkm__value *v = NULL;
    tkm_queue_class *list;
    size_t rows, n = 0;
    int nv = 0;
    tkm_code rc;

    if (st != NULL)
        memset(st, 0, sizeof(*st));
    *classes = NULL;
    *count = 0;
    tkm__call_init(&k, c, TKM__CALL_STATUS);
    rc = tkm__call_run_alloc(c, &k, &v, &nv);
    if (rc != TKM_OK)
        return rc;
    rows = (size_t)(nv - TKM__STATUS_NFIELDS) / TKM__STATUS_ROW_NFIELDS;
    list = calloc(rows + TKM_QUEUE_CLASSES_MAX + 1, sizeof(*list));
    if (list == NULL) {
        free(v);
        return tkm__fail(c, TKM_ENOMEM, "out of memory reading the queue");
    }
    list[class_slot(list, &n, "default")].weight = 1;
    for (int i = 0; i < c->opts.queue.nclasses; i++) {
        char name[TKM_QUEUE_CLASS_MAX + 1];
        int64_t w;
        const char *item = c->opts.queue.classes[i];
        tkm__fmt(name, sizeof(name), "%.*s", (int)strcspn(item, "="), item);
        if (tkm__queue_weight(c, name, &w) == TKM_OK)
            list[class_slot(list, &n, name)].weight = w;
    }
    if (st != NULL) {
        pool_status_from(v, st);
        st->queue_oldest_wait_ms = -1;
    }
    for (size_t r = 0; r < rows; r++) {
        const tkm__value *x =
            &v[TKM__STATUS_NFIELDS + TKM__STATUS_ROW_NFIELDS * r];
        tkm_queue_class *q =
            &list[class_slot(list, &n, x[TKM__STATUS_ROW_CLASS].s)];
        q->waiters = x[TKM__STATUS_ROW_WAITERS].i;
        q->tokens = x[TKM__STATUS_ROW_TOKENS].i;
        q->oldest_wait_ms = x[TKM__STATUS_ROW_OLDEST_WAIT_MS].i;
        q->absent = x[TKM__STATUS_ROW_ABSENT].i;
        if (st != NULL) {
            st->queue_waiters += q->waiters;
            if (q->oldest_wait_ms > st->queue_oldest_wait_ms)
                st->queue_oldest_wait_ms = q->oldest_wait_ms;
        }
    }
    free(v);
    *classes = list;
    *count = n;
    return TKM_OK;
}

TKM_EXPORT void tkm_queue_status_free(tkm_queue_class *classes)
{
    free(classes);
}

TKM_EXPORT tkm_code tkm_status(tkm_client *c, tkm_pool_status *st)
{
    tkm_queue_class *list = NULL;
    size_t n = 0;
    tkm_code rc = tkm_queue_status(c, st, &list, &n);

    tkm_queue_status_free(list);
    return rc;
}

TKM_EXPORT tkm_code tkm_recharge(tkm_client *c, int on)
{
    tkm__call k;
    tkm__value v[TKM__RECHARGE_NFIELDS];

    tkm__call_init(&k, c, TKM__CALL_RECHARGE);
    tkm__call_str(&k, on ? "1" : "0");
    return tkm__call_run(c, &k, v, TKM__RECHARGE_NFIELDS, NULL);
}

TKM_EXPORT tkm_code tkm_reset_pool(tkm_client *c, unsigned flags,
                                   int64_t *deleted)
{
    tkm__call k;
    tkm__value v[TKM__RESET_NFIELDS];
    tkm_code rc;

    tkm__call_init(&k, c, TKM__CALL_RESET);
    tkm__call_str(&k, (flags & TKM_RESET_ALL) ? "1" : "0");
    rc = tkm__call_run(c, &k, v, TKM__RESET_NFIELDS, NULL);
    if (rc == TKM_OK && deleted != NULL)
        *deleted = v[TKM__RESET_DELETED].i;
    return rc;
}

TKM_EXPORT tkm_code tkm_reset(tkm_client *c, int64_t *deleted)
{
    return tkm_reset_pool(c, TKM_RESET_ALL, deleted);
}

tkm_code tkm__sync_claim(tkm_client *c, int64_t interval_ms, int force,
                         int *claimed, int64_t *next_allowed_ms)
{
    tkm__call k;
    tkm__value v[TKM__SYNC_CLAIM_NFIELDS];
    tkm_code rc;

    *claimed = 0;
    *next_allowed_ms = 0;
    tkm__call_init(&k, c, TKM__CALL_SYNC_CLAIM);
    tkm__call_int(&k, interval_ms);
    tkm__call_str(&k, force ? "1" : "0");
    rc = tkm__call_run(c, &k, v, TKM__SYNC_CLAIM_NFIELDS, NULL);
    if (rc == TKM_OK) {
        *claimed = v[TKM__SYNC_CLAIM_CLAIMED].i != 0;
        *next_allowed_ms = v[TKM__SYNC_CLAIM_NEXT_ALLOWED_MS].i;
    }
    return rc;
}
