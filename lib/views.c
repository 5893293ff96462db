/*
 * JSON views: the answers of the library's calls as JSON objects with the
 * keys of CONTRACT.md, written once here for the command-line tool's
 * --json output and for language bindings (which pass scalars and read
 * JSON, so they never mirror a C struct's layout).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jsonw.h"

/* A growing buffer with one comma rule: a value after another at the same
 * depth gets a comma. */
typedef struct jbuf {
    char *s;
    size_t len, cap;
    int oom;
    int depth;
    unsigned char filled[16]; /* a value was written at this depth */
} jbuf;

static void put(jbuf *j, const char *p, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 512;
        char *q;
        while (cap < j->len + n + 1)
            cap *= 2;
        q = realloc(j->s, cap);
        if (q == NULL) {
            j->oom = 1;
            return;
        }
        j->s = q;
        j->cap = cap;
    }
    memcpy(j->s + j->len, p, n);
    j->len += n;
    j->s[j->len] = '\0';
}

static void putf(jbuf *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(jbuf *j, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void quoted(jbuf *j, const char *v)
{
    size_t n = strlen(v), done = 0;
    char out[256];

    put(j, "\"", 1);
    while (done < n) {
        size_t used = 0;
        size_t w =
            tkm__jsonw_escape(out, sizeof(out), v + done, n - done, &used);
        put(j, out, w);
        if (used == 0)
            break;
        done += used;
    }
    put(j, "\"", 1);
}

/* The key of the next member (NULL inside an array). */
static void key(jbuf *j, const char *k)
{
    if (j->filled[j->depth])
        put(j, ",", 1);
    j->filled[j->depth] = 1;
    if (k != NULL) {
        quoted(j, k);
        put(j, ":", 1);
    }
}

static void open_(jbuf *j, const char *k, char c)
{
    key(j, k);
    put(j, &c, 1);
    if (j->depth + 1 < (int)sizeof(j->filled))
        j->filled[++j->depth] = 0;
}

static void close_(jbuf *j, char c)
{
    put(j, &c, 1);
    if (j->depth > 0)
        j->depth--;
}

static void str_(jbuf *j, const char *k, const char *v)
{
    key(j, k);
    quoted(j, v);
}

static void int_(jbuf *j, const char *k, int64_t v)
{
    key(j, k);
    putf(j, "%lld", (long long)v);
}

static void bool_(jbuf *j, const char *k, int v)
{
    key(j, k);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

static void null_(jbuf *j, const char *k)
{
    key(j, k);
    put(j, "null", 4);
}

static void int_or_null(jbuf *j, const char *k, int64_t v, int is_null)
{
    if (is_null)
        null_(j, k);
    else
        int_(j, k, v);
}

/* Milliseconds as seconds, null when negative (unknown). */
static void secs_or_null(jbuf *j, const char *k, int64_t ms)
{
    if (ms < 0) {
        null_(j, k);
    } else {
        key(j, k);
        putf(j, "%.3f", (double)ms / 1000.0);
    }
}

/* Hand the text over, or fail with ENOMEM. */
static tkm_code done(tkm_client *c, jbuf *j, char **json)
{
    if (j->oom || j->s == NULL) {
        free(j->s);
        *json = NULL;
        return c ? tkm__fail(c, TKM_ENOMEM, "out of memory writing JSON")
                 : TKM_ENOMEM;
    }
    *json = j->s;
    return TKM_OK;
}

TKM_EXPORT void tkm_free(void *p)
{
    free(p);
}

/* ---- the bucket ---------------------------------------------------------- */

static void grant_members(jbuf *j, const tkm_grant *g)
{
    bool_(j, "granted", g->granted);
    if (g->granted)
        str_(j, "grant", g->id);
    else
        null_(j, "grant");
    int_(j, "tokens", g->tokens);
    str_(j, "reason", tkm_reason_str(g->reason));
    int_(j, "retry_after_ms", g->retry_after_ms);
    bool_(j, "recharge_mode", g->recharge_mode);
    bool_(j, "recharge_expired", g->recharge_expired);
}

TKM_EXPORT tkm_code tkm_grant_json(const tkm_grant *g, char **json)
{
    jbuf j = {0};

    open_(&j, NULL, '{');
    grant_members(&j, g);
    close_(&j, '}');
    return done(NULL, &j, json);
}

TKM_EXPORT tkm_code tkm_acquire_json(tkm_client *c, int64_t cost,
                                     int64_t wait_ms, char **json)
{
    tkm_grant g;
    tkm_code rc = wait_ms == 0 ? tkm_try_acquire(c, cost, &g)
                               : tkm_acquire(c, cost, wait_ms, &g);

    *json = NULL;
    if (rc != TKM_OK)
        return rc;
    rc = tkm_grant_json(&g, json);
    return rc == TKM_OK ? TKM_OK
                        : tkm__fail(c, rc, "out of memory writing JSON");
}

static tkm_code reconcile_json(tkm_client *c, const tkm_reconcile *r,
                               char **json)
{
    jbuf j = {0};

    open_(&j, NULL, '{');
    int_(&j, "tokens", r->tokens);
    bool_(&j, "report_applied", r->report_applied);
    bool_(&j, "report_stale", r->report_stale);
    close_(&j, '}');
    return done(c, &j, json);
}

TKM_EXPORT tkm_code tkm_complete_json(tkm_client *c, const char *grant_id,
                                      int64_t consumed, int has_report,
                                      int64_t tokens_left, int64_t timestamp_ms,
                                      char **json)
{
    tkm_report rep = {tokens_left, timestamp_ms};
    tkm_reconcile r;
    tkm_code rc =
        tkm_complete(c, grant_id, consumed, has_report ? &rep : NULL, &r);

    *json = NULL;
    return rc == TKM_OK ? reconcile_json(c, &r, json) : rc;
}

TKM_EXPORT tkm_code tkm_release_json(tkm_client *c, const char *grant_id,
                                     char **json)
{
    tkm_reconcile r;
    tkm_code rc = tkm_release(c, grant_id, &r);

    *json = NULL;
    return rc == TKM_OK ? reconcile_json(c, &r, json) : rc;
}

TKM_EXPORT tkm_code tkm_sync_json(tkm_client *c, int64_t tokens, int64_t rate,
                                  int64_t refill_in_ms, int64_t timestamp_ms,
                                  char **json)
{
    tkm_sync_info in = {tokens, rate, refill_in_ms, timestamp_ms};
    tkm_reconcile r;
    tkm_code rc = tkm_sync(c, &in, &r);

    *json = NULL;
    return rc == TKM_OK ? reconcile_json(c, &r, json) : rc;
}

TKM_EXPORT tkm_code tkm_status_json(tkm_client *c, char **json)
{
    tkm_pool_status st;
    tkm_queue_class *q = NULL;
    size_t nq = 0;
    tkm_code rc = tkm_queue_status(c, &st, &q, &nq);
    int ns;
    jbuf j = {0};

    *json = NULL;
    if (rc != TKM_OK)
        return rc;
    ns = !st.synced;
    open_(&j, NULL, '{');
    str_(&j, "pool", c->opts.pool);
    int_or_null(&j, "tokens", st.tokens, ns);
    int_or_null(&j, "capacity", st.capacity, ns);
    int_or_null(&j, "refill_rate", st.refill_rate, ns);
    int_(&j, "refill_period_ms", st.refill_period_ms);
    int_or_null(&j, "refill_in_ms", st.refill_in_ms, ns);
    bool_(&j, "recharge_mode", st.recharge_mode);
    int_or_null(&j, "recharge_since_ms", st.recharge_since_ms,
                !st.recharge_mode);
    int_or_null(&j, "recharge_target", st.recharge_target, ns);
    int_(&j, "inflight", st.inflight);
    int_(&j, "inflight_tokens", st.inflight_tokens);
    int_(&j, "inflight_reserve", st.inflight_reserve);
    if (st.estimate_ratio > 0) {
        key(&j, "estimate_ratio");
        putf(&j, "%.3f", st.estimate_ratio);
    } else {
        null_(&j, "estimate_ratio");
    }
    bool_(&j, "synced", st.synced);
    secs_or_null(&j, "last_sync_age_s", st.last_sync_age_ms);
    int_(&j, "workers_alive", st.workers_alive);
    int_(&j, "workers_total", st.workers_total);
    secs_or_null(&j, "heartbeat_age_s", st.heartbeat_age_ms);
    int_(&j, "queue_waiters", st.queue_waiters);
    secs_or_null(&j, "queue_oldest_wait_s", st.queue_oldest_wait_ms);
    open_(&j, "queue", '[');
    for (size_t i = 0; i < nq; i++) {
        open_(&j, NULL, '{');
        str_(&j, "class", q[i].name);
        int_or_null(&j, "weight", q[i].weight, q[i].weight <= 0);
        int_(&j, "waiters", q[i].waiters);
        int_(&j, "tokens", q[i].tokens);
        secs_or_null(&j, "oldest_wait_s", q[i].oldest_wait_ms);
        int_(&j, "absent", q[i].absent);
        close_(&j, '}');
    }
    close_(&j, ']');
    close_(&j, '}');
    tkm_queue_status_free(q);
    return done(c, &j, json);
}

/* ---- workers ------------------------------------------------------------- */

TKM_EXPORT tkm_code tkm_workers_json(tkm_client *c, char **json)
{
    tkm_worker *w = NULL;
    size_t n = 0;
    tkm_pool_status st;
    tkm_code rc;
    jbuf j = {0};

    *json = NULL;
    rc = tkm_workers(c, &w, &n);
    if (rc == TKM_OK)
        rc = tkm_status(c, &st); /* Redis' now, for busy periods */
    if (rc != TKM_OK) {
        tkm_workers_free(w);
        return rc;
    }
    open_(&j, NULL, '{');
    str_(&j, "pool", c->opts.pool);
    open_(&j, "workers", '[');
    for (size_t i = 0; i < n; i++) {
        open_(&j, NULL, '{');
        str_(&j, "id", w[i].id);
        secs_or_null(&j, "heartbeat_age_s", w[i].heartbeat_age_ms);
        str_(&j, "phase", w[i].phase);
        int_or_null(&j, "busy_until_ms", w[i].busy_until_ms,
                    w[i].busy_until_ms < 0);
        secs_or_null(&j, "busy_for_s",
                     w[i].busy_until_ms < 0 ? -1
                                            : w[i].busy_until_ms - st.now_ms);
        bool_(&j, "alive", w[i].alive);
        close_(&j, '}');
    }
    close_(&j, ']');
    close_(&j, '}');
    tkm_workers_free(w);
    return done(c, &j, json);
}

/* ---- recovery ------------------------------------------------------------ */

TKM_EXPORT tkm_code tkm_recovery_status_json(tkm_client *c, char **json)
{
    const tkm_recovery_options *o = &c->opts.recovery;
    tkm_recovery_state st;
    tkm_code rc = tkm_recovery_status(c, o, &st);
    jbuf j = {0};

    *json = NULL;
    if (rc != TKM_OK)
        return rc;
    open_(&j, NULL, '{');
    str_(&j, "pool", c->opts.pool);
    bool_(&j, "paused", st.paused);
    bool_(&j, "escalated", st.escalated);
    int_or_null(&j, "escalated_since_ms", st.escalated_ms, !st.escalated);
    int_or_null(&j, "last_action_ms", st.last_action_ms,
                st.last_action_ms <= 0);
    int_(&j, "actions_in_window", st.actions_in_window);
    int_(&j, "max_actions", o->max_actions);
    int_(&j, "window_s", o->window_s);
    secs_or_null(&j, "cooldown_left_s", st.cooldown_left_ms);
    secs_or_null(&j, "grace_left_s", st.grace_left_ms);
    int_(&j, "actions_total", st.total);
    int_(&j, "actions_failed", st.failed);
    bool_(&j, "lease_held", st.lease_ttl_ms > 0);
    bool_(&j, "dry_run", o->dry_run);
    close_(&j, '}');
    return done(c, &j, json);
}

TKM_EXPORT tkm_code tkm_recovery_log_json(tkm_client *c, int64_t count,
                                          char **json)
{
    tkm_audit_entry *e = NULL;
    size_t n = 0;
    tkm_code rc = tkm_recovery_log(c, count, &e, &n);
    jbuf j = {0};

    *json = NULL;
    if (rc != TKM_OK)
        return rc;
    open_(&j, NULL, '[');
    for (size_t i = 0; i < n; i++) {
        open_(&j, NULL, '{');
        str_(&j, "id", e[i].id);
        int_(&j, "time_ms", e[i].time_ms);
        str_(&j, "host", e[i].host);
        str_(&j, "decision", e[i].decision);
        str_(&j, "reason", e[i].reason);
        str_(&j, "inputs", e[i].inputs);
        str_(&j, "argv", e[i].argv);
        str_(&j, "action_id", e[i].action_id);
        str_(&j, "outcome", e[i].outcome);
        int_or_null(&j, "exit", e[i].exit_status, e[i].exit_status < 0);
        int_or_null(&j, "duration_ms", e[i].duration_ms, e[i].duration_ms < 0);
        str_(&j, "output", e[i].output);
        int_(&j, "repeats", e[i].repeats);
        close_(&j, '}');
    }
    close_(&j, ']');
    free(e);
    return done(c, &j, json);
}

/* ---- Keepa -----------------------------------------------------------------
 */

static void keepa_members(jbuf *j, const tkm_keepa_response *r)
{
    int_(j, "http_status", r->http_status);
    bool_(j, "has_tokens", r->has_tokens);
    int_or_null(j, "tokens_left", r->tokens_left, !r->has_tokens);
    int_or_null(j, "tokens_consumed", r->tokens_consumed, !r->has_tokens);
    int_or_null(j, "refill_in_ms", r->refill_in_ms, !r->has_tokens);
    int_or_null(j, "refill_rate", r->refill_rate, !r->has_tokens);
    int_or_null(j, "timestamp_ms", r->timestamp_ms, !r->has_tokens);
    int_(j, "processing_ms", r->processing_ms);
    key(j, "token_flow_reduction");
    putf(j, "%.6g", r->token_flow_reduction);
    str_(j, "error", r->error);
    int_(j, "attempts", r->attempts);
    int_(j, "http_429s", r->http_429s);
}

TKM_EXPORT tkm_code tkm_keepa_request_json(tkm_keepa *kc, const char *path,
                                           const char *const *params,
                                           int64_t estimated_cost, char **json,
                                           char **body, size_t *body_len)
{
    tkm_keepa_response r;
    tkm_code rc;
    jbuf j = {0};

    *json = NULL;
    *body = NULL;
    *body_len = 0;
    memset(&r, 0, sizeof(r));
    rc = tkm_keepa_request(kc, path, params, estimated_cost, &r);
    if (rc == TKM_OK) {
        open_(&j, NULL, '{');
        keepa_members(&j, &r);
        close_(&j, '}');
        if (j.oom || j.s == NULL) {
            free(j.s);
            tkm_keepa_response_free(&r);
            return TKM_ENOMEM;
        }
        *json = j.s;
        *body = r.body; /* handed over: freed with tkm_free() */
        *body_len = r.body_len;
        r.body = NULL;
    }
    tkm_keepa_response_free(&r);
    return rc;
}

TKM_EXPORT tkm_code tkm_keepa_sync_json(tkm_keepa *kc, int force, char **json)
{
    tkm_keepa_sync_result r;
    tkm_code rc = tkm_keepa_sync(kc, force, &r);
    jbuf j = {0};

    *json = NULL;
    if (rc != TKM_OK)
        return rc;
    open_(&j, NULL, '{');
    bool_(&j, "throttled", r.throttled);
    int_or_null(&j, "next_allowed_ms", r.next_allowed_ms, !r.throttled);
    int_or_null(&j, "tokens", r.tokens, r.throttled);
    int_or_null(&j, "refill_rate", r.refill_rate, r.throttled);
    close_(&j, '}');
    return done(NULL, &j, json);
}

/* ---- the options table ------------------------------------------------------
 */

static void str_or_null(jbuf *j, const char *k, const char *v)
{
    if (v == NULL || v[0] == '\0')
        null_(j, k);
    else
        str_(j, k, v);
}

TKM_EXPORT tkm_code tkm_options_table_json(char **json)
{
    size_t n = tkm_option_count();
    jbuf j = {0};

    *json = NULL;
    open_(&j, NULL, '[');
    for (size_t i = 0; i < n; i++) {
        tkm_option_info d;
        if (tkm_option_describe(i, &d) != TKM_OK)
            continue;
        open_(&j, NULL, '{');
        str_(&j, "key", d.key);
        str_(&j, "type", d.type);
        str_(&j, "unit", d.unit);
        str_(&j, "doc", d.doc);
        str_or_null(&j, "env", d.env);
        str_or_null(&j, "collectd", d.collectd);
        str_or_null(&j, "collectd_block", d.collectd_block);
        str_or_null(&j, "flag", d.flag);
        str_(&j, "range", d.range);
        str_(&j, "default", d.default_text);
        close_(&j, '}');
    }
    close_(&j, ']');
    return done(NULL, &j, json);
}
