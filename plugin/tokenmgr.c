/*
 * tokenmgr.so: the collectd plugin.  Glue only: <Pool> blocks become
 * instances (pool_config.c checks them), one complex read callback per
 * instance makes one Redis round trip through libtokenmgr and dispatches
 * what it learned under one timestamp.  All state lives in the instance;
 * the file holds no mutable state.
 *
 * Redis down or slow: bool-redis_up 0 and nothing else, one ERROR per
 * outage, a NOTICE when it is back; the read still returns 0 so collectd
 * keeps the interval (a non-zero return would suspend the callback).
 */
#include "collectd/core/daemon/collectd.h"

#include <math.h>

#include "collectd/core/daemon/plugin.h"
#include "collectd/core/daemon/utils_complain.h"
#include "collectd/core/utils/common/common.h"

#include "pool_config.h"
#include "tokenmgr.h"

#define PLUGIN "tokenmgr"

/* The plugin's one export: everything else is hidden (and the version
 * script says so too). */
__attribute__((visibility("default"))) void module_register(void);

typedef struct pool {
    tkm__pool_conf conf;
    tkm_client *client; /* used by this pool's read callback only */
    tkm_stall_tracker tracker;
    tkm_stall_state last_state; /* for notifications on transitions */
    tkm_recovery_run *run;      /* a recovery action still running */
    tkm_recovery_ticket ticket; /* the guard's last decision */
    c_complain_t redis_down;
    cdtime_t lost_redis;    /* the last read that could not reach Redis; 0 */
    c_complain_t bad_state; /* native: TKM_ESTATE */
    c_complain_t bad_key[TKM_LEGACY_NKEYS];     /* legacy: garbage */
    c_complain_t missing_key[TKM_LEGACY_NKEYS]; /* legacy: absent */
} pool;

static const char *name(const pool *p)
{
    return p->conf.opts.pool;
}

static void pool_free(void *arg)
{
    pool *p = arg;

    if (p == NULL)
        return;
    /* collectd stops: every action's end is audited.  One still running
     * is recorded "abandoned" and left to its deadline, keeping the actor
     * lease until then, so that no other monitor acts meanwhile. */
    if (p->run != NULL) {
        tkm_recovery_settle(p->client, &p->run, TKM_SETTLE_ABANDON, NULL);
        INFO(PLUGIN " plugin: pool \"%s\": collectd stops; recovery action "
                    "%s recorded",
             name(p), p->ticket.action_id);
    }
    tkm_client_free(p->client);
    tkm__pool_conf_clear(&p->conf);
    free(p);
}

/* ---- the plugin's types and dispatch -------------------------------------
 */

/*
 * One collectd type per meaning (CONTRACT.md, "Metrics"), so that
 * write_prometheus makes one family of each: collectd_tokenmgr_tokens,
 * collectd_tokenmgr_heartbeat_age_seconds, collectd_tokenmgr_recoveries_total.
 * Registered from the plugin: no TypesDB line (which would stop collectd
 * from reading its default types.db).  `capacity` is the stock type of the
 * same shape; no stock type is redefined.
 */
static const struct {
    const char *type;
    const char *ds[2]; /* one or two data sources */
    int ds_type;
    double min, max; /* NAN: unbounded */
} types[] = {
    {"tokens", {"value"}, DS_TYPE_GAUGE, NAN, NAN},
    {"refill_rate", {"value"}, DS_TYPE_GAUGE, 0, NAN},
    {"recharge_mode", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"heartbeat_age", {"seconds"}, DS_TYPE_GAUGE, 0, NAN},
    {"workers_alive", {"value"}, DS_TYPE_GAUGE, 0, NAN},
    {"inflight", {"calls", "tokens"}, DS_TYPE_GAUGE, 0, NAN},
    {"last_sync_age", {"seconds"}, DS_TYPE_GAUGE, 0, NAN},
    {"stalled", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"shared_cause", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"redis_up", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"recoveries", {"value"}, DS_TYPE_DERIVE, 0, NAN},
    {"escalated", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"recovery_paused", {"value"}, DS_TYPE_GAUGE, 0, 1},
    {"stall_heartbeat_age", {"seconds"}, DS_TYPE_GAUGE, 0, NAN},
    {"stall_tokens", {"value"}, DS_TYPE_GAUGE, NAN, NAN},
    {"worker_heartbeat_age", {"seconds"}, DS_TYPE_GAUGE, 0, NAN},
    {"queue_waiters", {"value"}, DS_TYPE_GAUGE, 0, NAN},
    {"queue_oldest_wait", {"seconds"}, DS_TYPE_GAUGE, 0, NAN},
};

static int register_types(void)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        data_source_t src[2];
        data_set_t set = {.ds_num = types[i].ds[1] ? 2 : 1, .ds = src};
        memset(src, 0, sizeof(src));
        sstrncpy(set.type, types[i].type, sizeof(set.type));
        for (size_t k = 0; k < set.ds_num; k++) {
            sstrncpy(src[k].name, types[i].ds[k], sizeof(src[k].name));
            src[k].type = types[i].ds_type;
            src[k].min = types[i].min;
            src[k].max = types[i].max;
        }
        if (plugin_register_data_set(&set) != 0) {
            ERROR(PLUGIN " plugin: registering the type %s failed",
                  types[i].type);
            return -1;
        }
    }
    return 0;
}

static void dispatch_values(const pool *p, cdtime_t t, const char *type,
                            const char *type_instance, value_t *values,
                            size_t n)
{
    value_list_t vl = VALUE_LIST_INIT;

    vl.values = values;
    vl.values_len = n;
    vl.time = t;
    sstrncpy(vl.plugin, PLUGIN, sizeof(vl.plugin));
    sstrncpy(vl.plugin_instance, name(p), sizeof(vl.plugin_instance));
    sstrncpy(vl.type, type, sizeof(vl.type));
    sstrncpy(vl.type_instance, type_instance, sizeof(vl.type_instance));
    plugin_dispatch_values(&vl);
}

/* A gauge of the pool (type_instance: a worker or a class, else ""). */
static void submit(const pool *p, cdtime_t t, const char *type,
                   const char *type_instance, gauge_t v)
{
    dispatch_values(p, t, type, type_instance, &(value_t){.gauge = v}, 1);
}

/* A notification about the pool's stall state, with its inputs as meta. */
static void notify(const pool *p, cdtime_t t, int severity,
                   const tkm_stall_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void notify(const pool *p, cdtime_t t, int severity,
                   const tkm_stall_verdict *v, const char *fmt, ...)
{
    notification_t n = {.severity = severity, .time = t};
    va_list ap;

    sstrncpy(n.host, hostname_g, sizeof(n.host));
    sstrncpy(n.plugin, PLUGIN, sizeof(n.plugin));
    sstrncpy(n.plugin_instance, name(p), sizeof(n.plugin_instance));
    sstrncpy(n.type, "stalled", sizeof(n.type));
    va_start(ap, fmt);
    vsnprintf(n.message, sizeof(n.message), fmt, ap);
    va_end(ap);
    if (v != NULL) {
        plugin_notification_meta_add_string(&n, "state",
                                            tkm_stall_state_str(v->state));
        plugin_notification_meta_add_string(&n, "why", v->why);
        plugin_notification_meta_add_string(&n, "stale_workers",
                                            v->stale_workers);
        plugin_notification_meta_add_signed_int(&n, "threshold", v->threshold);
        if (v->evidence[0] != '\0')
            plugin_notification_meta_add_string(&n, "evidence", v->evidence);
    }
    plugin_dispatch_notification(&n);
    if (n.meta != NULL)
        plugin_notification_meta_free(n.meta);
}

/* Redis could not be read: say so once per outage (naming the option
 * that points at it), publish only that, and remember it: the workers may
 * have lost Redis too, which is evidence against restarting them. */
static void redis_down(pool *p, cdtime_t t)
{
    c_complain_once(LOG_ERR, &p->redis_down,
                    PLUGIN " plugin: pool \"%s\": Redis unavailable (check "
                           "%s in the ConfigFile), publishing redis_up 0 "
                           "only: %s",
                    name(p),
                    p->conf.opts.sentinel.count > 0
                        ? "Sentinel and MasterName, or redis.sentinels and "
                          "redis.master_name"
                        : "RedisURL, or redis.url",
                    tkm_errstr(p->client));
    p->lost_redis = t;
    submit(p, t, "redis_up", "", 0);
}

static void redis_up(pool *p, cdtime_t t)
{
    c_release(LOG_NOTICE, &p->redis_down,
              PLUGIN " plugin: pool \"%s\": OKAY: Redis answers again",
              name(p));
    submit(p, t, "redis_up", "", 1);
}

/* ---- native layout -----------------------------------------------------
 */

static void judge(pool *p, cdtime_t t, const tkm_stall_input *in);

/* worker_heartbeat_age-<id>: each worker's heartbeat age (WorkerMetrics). */
static void submit_workers(pool *p, cdtime_t t, const tkm_worker *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        submit(p, t, "worker_heartbeat_age", w[i].id,
               (gauge_t)w[i].heartbeat_age_ms / 1000.0);
}

/*
 * The rule needs the worker list (stale ids, busy periods, a shared cause)
 * only once heartbeats are silent: a second round trip, in that case alone
 * (or every read with WorkerMetrics).
 */
static void judge_native(pool *p, cdtime_t t, const tkm_pool_status *st)
{
    tkm_stall_input in = {.readable = st->synced,
                          .tokens = st->tokens,
                          .capacity = st->capacity,
                          .heartbeat_age_ms = st->heartbeat_age_ms};
    tkm_worker *w = NULL;
    size_t n = 0;
    int silent =
        st->heartbeat_age_ms >= p->conf.opts.stall.heartbeat_age_s * 1000;

    if ((silent || p->conf.worker_metrics) && st->heartbeat_age_ms >= 0) {
        if (tkm_workers(p->client, &w, &n) != TKM_OK)
            in.readable = 0;
        in.workers = w;
        in.nworkers = n;
        if (p->conf.worker_metrics)
            submit_workers(p, t, w, n);
    }
    judge(p, t, &in);
    tkm_workers_free(w);
}

/*
 * The wait queue per class: "default", the classes of queue.classes (from
 * ConfigFile) and any other class holding a ticket, each published every
 * interval (0 waiters, oldest wait 0 when nobody waits) so that a rule
 * never meets an absent series.
 */
static void submit_queue(pool *p, cdtime_t t, const tkm_queue_class *q,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        submit(p, t, "queue_waiters", q[i].name, (gauge_t)q[i].waiters);
        submit(p, t, "queue_oldest_wait", q[i].name,
               q[i].oldest_wait_ms > 0 ? (gauge_t)q[i].oldest_wait_ms / 1000.0
                                       : 0);
    }
}

static void read_native(pool *p)
{
    tkm_pool_status st;
    tkm_queue_class *queue = NULL;
    size_t nqueue = 0;
    tkm_code rc = tkm_queue_status(p->client, &st, &queue, &nqueue);
    cdtime_t t = cdtime();

    if (rc != TKM_OK && rc != TKM_ESTATE) {
        redis_down(p, t);
        judge(p, t, &(tkm_stall_input){.readable = 0});
        return;
    }
    redis_up(p, t);
    if (rc == TKM_ESTATE) {
        judge(p, t, &(tkm_stall_input){.readable = 0});
        /* Redis answered, the pool's hash did not make sense: the script
         * refused before computing anything, so nothing else is known.
         * tkm_errstr names the field and its value. */
        c_complain(LOG_WARNING, &p->bad_state,
                   PLUGIN " plugin: pool \"%s\": pool state unreadable, "
                          "bucket metrics skipped: %s",
                   name(p), tkm_errstr(p->client));
        return;
    }
    c_release(LOG_NOTICE, &p->bad_state,
              PLUGIN " plugin: pool \"%s\": OKAY: pool state readable again",
              name(p));
    if (st.synced) {
        submit(p, t, "tokens", "", (gauge_t)st.tokens);
        submit(p, t, "capacity", "", (gauge_t)st.capacity);
        submit(p, t, "refill_rate", "", (gauge_t)st.refill_rate);
        submit(p, t, "recharge_mode", "", st.recharge_mode ? 1 : 0);
        dispatch_values(p, t, "inflight", "",
                        (value_t[]){{.gauge = (gauge_t)st.inflight},
                                    {.gauge = (gauge_t)st.inflight_tokens}},
                        2);
    }
    if (st.last_sync_age_ms >= 0)
        submit(p, t, "last_sync_age", "",
               (gauge_t)st.last_sync_age_ms / 1000.0);
    if (st.heartbeat_age_ms >= 0)
        submit(p, t, "heartbeat_age", "",
               (gauge_t)st.heartbeat_age_ms / 1000.0);
    submit(p, t, "workers_alive", "", (gauge_t)st.workers_alive);
    submit_queue(p, t, queue, nqueue);
    tkm_queue_status_free(queue);
    judge_native(p, t, &st);
}

/* ---- legacy layout -----------------------------------------------------
 */

/* A value for a log line: at most 40 bytes, control bytes shown as '?'. */
static void printable(const tkm_legacy_value *v, char *buf, size_t len)
{
    size_t n = 0;

    for (; v->text[n] != '\0' && n < 40 && n + 1 < len; n++) {
        unsigned char ch = (unsigned char)v->text[n];
        buf[n] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    buf[n] = '\0';
}

/* Without these three there is no balance to show: their absence is worth
 * a warning (wrong database?); the others are absent in normal operation. */
static int needed(tkm_legacy_key k)
{
    return k == TKM_LEGACY_TOKENS_LEFT || k == TKM_LEGACY_REFILL_RATE ||
           k == TKM_LEGACY_TOKEN_TIMESTAMP;
}

static void judge_keys(pool *p, const tkm_legacy_raw *raw,
                       const tkm_legacy_status *st)
{
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++) {
        const char *key = tkm_legacy_key_name(k);
        char shown[48];

        if (st->check[k] == TKM_LEGACY_INVALID) {
            printable(&raw->value[k], shown, sizeof(shown));
            c_complain(LOG_WARNING, &p->bad_key[k],
                       PLUGIN " plugin: pool \"%s\": legacy key %s holds "
                              "'%s'%s, not a sane value; what depends on it "
                              "is skipped",
                       name(p), key, shown,
                       raw->value[k].len > 40 ? "..." : "");
        } else {
            c_release(LOG_NOTICE, &p->bad_key[k],
                      PLUGIN " plugin: pool \"%s\": OKAY: legacy key %s is "
                             "sane again",
                      name(p), key);
        }
        if (st->check[k] == TKM_LEGACY_MISSING && needed(k))
            c_complain_once(LOG_WARNING, &p->missing_key[k],
                            PLUGIN " plugin: pool \"%s\": legacy key %s is "
                                   "missing (no legacy system on this "
                                   "database?); what depends on it is "
                                   "skipped",
                            name(p), key);
        else if (st->check[k] != TKM_LEGACY_MISSING)
            c_release(LOG_NOTICE, &p->missing_key[k],
                      PLUGIN " plugin: pool \"%s\": OKAY: legacy key %s "
                             "is present",
                      name(p), key);
    }
}

static void read_legacy(pool *p)
{
    tkm_legacy_raw raw;
    tkm_legacy_status st;
    tkm_code rc = tkm_legacy_read(p->client, &raw);
    cdtime_t t = cdtime();

    if (rc != TKM_OK) {
        redis_down(p, t);
        judge(p, t, &(tkm_stall_input){.readable = 0});
        return;
    }
    redis_up(p, t);
    tkm_legacy_project(&raw, p->conf.opts.bucket.capacity, &st);
    judge_keys(p, &raw, &st);
    {
        /* What its keys allow: each value only when it is known. */
        const struct {
            int known;
            const char *type;
            gauge_t value;
        } known[] = {
            {st.has_tokens, "tokens", st.tokens},
            {st.has_capacity, "capacity", st.capacity},
            {st.has_refill_rate, "refill_rate", st.refill_rate},
            {st.has_recharge_mode, "recharge_mode", st.recharge_mode},
            {st.has_heartbeat_age, "heartbeat_age", st.heartbeat_age_s},
            {st.has_last_sync_age, "last_sync_age", st.last_sync_age_s},
        };
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (known[i].known)
                submit(p, t, known[i].type, "", known[i].value);
        }
    }
    /* One global heartbeat: no worker list, no busy periods. */
    judge(p, t,
          &(tkm_stall_input){.readable = st.has_tokens && st.has_capacity,
                             .tokens = (int64_t)st.tokens,
                             .capacity = (int64_t)st.capacity,
                             .heartbeat_age_ms =
                                 st.has_heartbeat_age
                                     ? (int64_t)(st.heartbeat_age_s * 1000.0)
                                     : -1});
}

/* ---- the stall rule and the guarded recovery ----------------------------
 */

/* A running action is polled every read; its end is audited and logged. */
static void poll_action(pool *p, cdtime_t t)
{
    tkm_action_result r;

    if (p->run == NULL ||
        tkm_recovery_settle(p->client, &p->run, TKM_SETTLE_POLL, &r) !=
            TKM_OK ||
        p->run != NULL)
        return;
    notify(p, t, r.exit_status == 0 ? NOTIF_WARNING : NOTIF_FAILURE, NULL,
           "recovery action %s for pool %s %s (exit %d%s) in %lld ms: %.200s",
           p->ticket.action_id, name(p),
           r.exit_status == 0 ? "finished" : "FAILED", r.exit_status,
           r.timed_out ? ", killed at its deadline" : "",
           (long long)r.duration_ms, r.output);
}

/* The guard decides (one actor among every monitor), audits, and starts
 * the action when it grants. */
static void guard(pool *p, cdtime_t t, const tkm_stall_input *in,
                  const tkm_stall_verdict *v)
{
    const tkm_recovery_options *ro = &p->conf.opts.recovery;
    char inputs[512], err[512];
    tkm_recovery_request req = {
        .mode = v->state == TKM_STALL_STALLED   ? TKM_MODE_STALLED
                : v->state == TKM_STALL_UNKNOWN ? TKM_MODE_UNKNOWN
                                                : TKM_MODE_SHARED_CAUSE,
        .host = hostname_g,
        .reason = v->why,
        .inputs = inputs,
        .tokens = in->tokens,
        .heartbeat_age_ms = in->heartbeat_age_ms,
        .stale_workers = v->stale_workers};
    tkm_code rc;

    if (p->run != NULL)
        return; /* one action at a time per monitor */
    snprintf(inputs, sizeof(inputs),
             "tokens=%lld threshold=%lld heartbeat_age_ms=%lld busy=%lld "
             "stale=%zu confirmations=%lld/%lld",
             (long long)in->tokens, (long long)v->threshold,
             (long long)in->heartbeat_age_ms, (long long)v->busy, v->stale,
             (long long)v->confirmations,
             (long long)p->conf.opts.stall.confirmations);
    rc = tkm_recovery_begin(p->client, ro, &req, &p->ticket, &p->run, err,
                            sizeof(err));
    if (rc == TKM_EIO) {
        notify(p, t, NOTIF_FAILURE, v,
               "pool %s stalled; the recovery action could not start: %s",
               name(p), err);
        return;
    }
    if (rc != TKM_OK) {
        WARNING(PLUGIN " plugin: pool \"%s\": no recovery action: %s", name(p),
                err);
        return;
    }
    switch (p->ticket.decision) {
    case TKM_DECIDE_ACT:
        notify(p, t, NOTIF_FAILURE, v,
               "pool %s stalled (%s); recovery action %s started", name(p),
               v->why, p->ticket.action_id);
        break;
    case TKM_DECIDE_DRY_RUN:
        notify(p, t, NOTIF_WARNING, v,
               "pool %s stalled (%s); dry run: the action was audited, not "
               "run",
               name(p), v->why);
        break;
    case TKM_DECIDE_LIMIT:
        notify(p, t, NOTIF_FAILURE, v,
               "pool %s: recovery ESCALATED: %lld actions in %lld s did not "
               "clear the stall; no more actions until it clears for a "
               "window or `tokenmgr recovery reset`",
               name(p), (long long)p->ticket.actions_in_window,
               (long long)ro->window_s);
        break;
    default:
        break; /* cooldown, lease, paused, grace...: audited by the guard */
    }
}

/*
 * One read's judgement.  Transitions are notified: stalled (WARNING),
 * unknown (WARNING), shared cause (FAILURE), clear again (OKAY); actions
 * and escalations by guard().
 */
static void judge(pool *p, cdtime_t t, const tkm_stall_input *seen)
{
    const tkm_stall_options *so = &p->conf.opts.stall;
    tkm_stall_input with = *seen, *in = &with;
    tkm_stall_verdict v;
    tkm_recovery_state gs;
    int have_guard;

    with.monitor_lost_redis = p->lost_redis != 0;
    with.monitor_lost_redis_age_ms =
        p->lost_redis ? (int64_t)CDTIME_T_TO_MS(t - p->lost_redis) : 0;
    tkm_stall_judge(so, &p->tracker, in, &v);
    /* The thresholds in force, so that alert rules compare against the
     * live configuration instead of copies of it. */
    submit(p, t, "stall_heartbeat_age", "", (gauge_t)so->heartbeat_age_s);
    if (v.threshold >= 0)
        submit(p, t, "stall_tokens", "", (gauge_t)v.threshold);
    if (in->readable) {
        submit(p, t, "stalled", "", v.state == TKM_STALL_STALLED);
        submit(p, t, "shared_cause", "", v.state == TKM_STALL_SHARED_CAUSE);
    }
    poll_action(p, t);
    if (v.state != p->last_state) {
        if (v.state == TKM_STALL_STALLED)
            notify(p, t, NOTIF_WARNING, &v, "pool %s stalled: %s", name(p),
                   v.why);
        else if (v.state == TKM_STALL_UNKNOWN)
            notify(p, t, NOTIF_WARNING, &v,
                   "pool %s: stall state unknown (%s): reported, never acted "
                   "on",
                   name(p), v.why);
        else if (v.state == TKM_STALL_SHARED_CAUSE)
            notify(p, t, NOTIF_FAILURE, &v,
                   "pool %s: stall held back, no restart: %s (acts anyway "
                   "after %lld s)",
                   name(p), v.evidence, (long long)so->shared_cause_escalate_s);
        else if (v.state == TKM_STALL_OK &&
                 (p->last_state == TKM_STALL_STALLED ||
                  p->last_state == TKM_STALL_SHARED_CAUSE))
            notify(p, t, NOTIF_OKAY, &v,
                   "pool %s: OKAY: no longer stalled (%s)", name(p), v.why);
        p->last_state = v.state;
    }
    if (!p->conf.recovery || !in->readable)
        return; /* Redis down: the guard is unreachable too, and moot */
    have_guard =
        tkm_recovery_observe(p->client, &p->conf.opts.recovery, hostname_g,
                             v.state, in->heartbeat_age_ms, &gs) == TKM_OK;
    if (have_guard) {
        dispatch_values(p, t, "recoveries", "",
                        &(value_t){.derive = (derive_t)gs.total}, 1);
        submit(p, t, "escalated", "", gs.escalated);
        submit(p, t, "recovery_paused", "", gs.paused);
        if (gs.ev == TKM_EVENT_FAILED)
            notify(p, t, NOTIF_FAILURE, &v,
                   "pool %s: the last recovery action failed: no heartbeat "
                   "within the grace period",
                   name(p));
        else if (gs.ev == TKM_EVENT_RECOVERED)
            notify(p, t, NOTIF_OKAY, &v,
                   "pool %s: OKAY: workers beat again after the recovery "
                   "action",
                   name(p));
        else if (gs.ev == TKM_EVENT_DEESCALATED)
            notify(p, t, NOTIF_OKAY, &v,
                   "pool %s: OKAY: recovery no longer escalated (clear for a "
                   "full window)",
                   name(p));
    }
    if (v.state == TKM_STALL_STALLED || v.state == TKM_STALL_UNKNOWN ||
        v.state == TKM_STALL_SHARED_CAUSE)
        guard(p, t, in, &v);
}

static int pool_read(user_data_t *ud)
{
    pool *p = ud->data;

    if (p->conf.layout == TKM__LAYOUT_LEGACY)
        read_legacy(p);
    else
        read_native(p);
    return 0;
}

/* ---- configuration -----------------------------------------------------
 */

static int configure_pool(oconfig_item_t *ci)
{
    char err[1024];
    char cb_name[sizeof(PLUGIN) + TKM_POOL_MAX + 2];
    pool *p = calloc(1, sizeof(*p));
    int status;

    if (p == NULL) {
        ERROR(PLUGIN " plugin: out of memory");
        return -1;
    }
    if (tkm__pool_conf_parse(ci, &p->conf, err, sizeof(err)) != 0) {
        ERROR(PLUGIN " plugin: %s", err);
        pool_free(p);
        return -1;
    }
    /* The drop-in's explicit values win over the ConfigFile's: said once. */
    for (int i = 0; i < p->conf.nnotes; i++)
        NOTICE(PLUGIN " plugin: %s", p->conf.notes[i]);
    /* Connects lazily, on the first read, with timeout_ms on every step. */
    if (tkm_client_open(&p->conf.opts, &p->client) != TKM_OK) {
        ERROR(PLUGIN " plugin: pool \"%s\": %s", name(p),
              p->client ? tkm_errstr(p->client) : "out of memory");
        pool_free(p);
        return -1;
    }
    C_COMPLAIN_INIT(&p->redis_down);
    C_COMPLAIN_INIT(&p->bad_state);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++) {
        C_COMPLAIN_INIT(&p->bad_key[k]);
        C_COMPLAIN_INIT(&p->missing_key[k]);
    }
    ssnprintf(cb_name, sizeof(cb_name), PLUGIN "/%s", name(p));
    status = plugin_register_complex_read(
        PLUGIN, cb_name, pool_read, 0,
        &(user_data_t){.data = p, .free_func = pool_free});
    if (status != 0) {
        /*
         * Read callbacks are unique by name, so a second <Pool> of one name
         * lands here.  collectd 5.12 frees the user data on this failure
         * (older versions leaked it): never touch p again.
         */
        if (status == EINVAL)
            ERROR(PLUGIN " plugin: pool \"%s\" is configured twice: each "
                         "<Pool> needs its own name",
                  ci->values[0].value.string);
        else
            ERROR(PLUGIN " plugin: pool \"%s\": registering the read "
                         "callback failed (status %d)",
                  ci->values[0].value.string, status);
        return -1;
    }
    INFO(PLUGIN " plugin: pool \"%s\": %s layout, timeout %lld ms", name(p),
         p->conf.layout == TKM__LAYOUT_LEGACY ? "legacy" : "native",
         (long long)p->conf.opts.timeout_ms);
    return 0;
}

static int tokenmgr_config(oconfig_item_t *ci)
{
    int pools = 0;

    for (int i = 0; i < ci->children_num; i++) {
        oconfig_item_t *child = &ci->children[i];
        if (strcasecmp(child->key, "Pool") != 0) {
            ERROR(PLUGIN " plugin: unknown option '%s' in <Plugin tokenmgr>: "
                         "it holds <Pool \"name\"> blocks only",
                  child->key);
            return -1;
        }
        if (configure_pool(child) != 0)
            return -1;
        pools++;
    }
    if (pools == 0)
        WARNING(PLUGIN " plugin: <Plugin tokenmgr> has no <Pool> block: "
                       "nothing to read");
    return 0;
}

void module_register(void)
{
    /* At LoadPlugin, before any value is dispatched; collectd reads its
     * default types.db after the whole configuration, beside these. */
    if (register_types() != 0)
        return;
    plugin_register_complex_config(PLUGIN, tokenmgr_config);
}
