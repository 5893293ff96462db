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
    c_complain_t redis_down;
    c_complain_t bad_state;                     /* native: TKM_ESTATE */
    c_complain_t bad_key[TKM_LEGACY_NKEYS];     /* legacy: garbage */
    c_complain_t missing_key[TKM_LEGACY_NKEYS]; /* legacy: absent */
} pool;

static void pool_free(void *arg)
{
    pool *p = arg;

    if (p == NULL)
        return;
    tkm_client_free(p->client);
    tkm__pool_conf_clear(&p->conf);
    free(p);
}

static const char *name(const pool *p)
{
    return p->conf.opts.pool;
}

/* ---- dispatch ----------------------------------------------------------
 */

static void submit(const pool *p, cdtime_t t, const char *type,
                   const char *type_instance, gauge_t v)
{
    value_list_t vl = VALUE_LIST_INIT;
    value_t value = {.gauge = v};

    vl.values = &value;
    vl.values_len = 1;
    vl.time = t;
    sstrncpy(vl.plugin, PLUGIN, sizeof(vl.plugin));
    sstrncpy(vl.plugin_instance, name(p), sizeof(vl.plugin_instance));
    sstrncpy(vl.type, type, sizeof(vl.type));
    sstrncpy(vl.type_instance, type_instance, sizeof(vl.type_instance));
    plugin_dispatch_values(&vl);
}

/* Redis could not be read: say so once per outage, publish only that. */
static void redis_down(pool *p, cdtime_t t)
{
    c_complain_once(LOG_ERR, &p->redis_down,
                    PLUGIN " plugin: pool \"%s\": Redis unavailable, "
                           "publishing redis_up 0 only: %s",
                    name(p), tkm_errstr(p->client));
    submit(p, t, "bool", "redis_up", 0);
}

static void redis_up(pool *p, cdtime_t t)
{
    c_release(LOG_NOTICE, &p->redis_down,
              PLUGIN " plugin: pool \"%s\": OKAY: Redis answers again",
              name(p));
    submit(p, t, "bool", "redis_up", 1);
}

/* ---- native layout -----------------------------------------------------
 */

static void read_native(pool *p)
{
    tkm_pool_status st;
    tkm_code rc = tkm_status(p->client, &st);
    cdtime_t t = cdtime();

    if (rc != TKM_OK && rc != TKM_ESTATE) {
        redis_down(p, t);
        return;
    }
    redis_up(p, t);
    if (rc == TKM_ESTATE) {
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
        submit(p, t, "gauge", "tokens", (gauge_t)st.tokens);
        submit(p, t, "gauge", "capacity", (gauge_t)st.capacity);
        submit(p, t, "gauge", "refill_rate", (gauge_t)st.refill_rate);
        submit(p, t, "bool", "recharge_mode", st.recharge_mode ? 1 : 0);
        submit(p, t, "count", "inflight", (gauge_t)st.inflight);
    }
    if (st.last_sync_age_ms >= 0)
        submit(p, t, "duration", "last_sync_age",
               (gauge_t)st.last_sync_age_ms / 1000.0);
    if (st.heartbeat_age_ms >= 0)
        submit(p, t, "duration", "heartbeat_age",
               (gauge_t)st.heartbeat_age_ms / 1000.0);
    submit(p, t, "count", "workers_alive", (gauge_t)st.workers_alive);
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
        return;
    }
    redis_up(p, t);
    tkm_legacy_project(&raw, p->conf.capacity, &st);
    judge_keys(p, &raw, &st);
    if (st.has_tokens)
        submit(p, t, "gauge", "tokens", st.tokens);
    if (st.has_capacity)
        submit(p, t, "gauge", "capacity", st.capacity);
    if (st.has_refill_rate)
        submit(p, t, "gauge", "refill_rate", st.refill_rate);
    if (st.has_recharge_mode)
        submit(p, t, "bool", "recharge_mode", st.recharge_mode);
    if (st.has_heartbeat_age)
        submit(p, t, "duration", "heartbeat_age", st.heartbeat_age_s);
    if (st.has_last_sync_age)
        submit(p, t, "duration", "last_sync_age", st.last_sync_age_s);
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
    plugin_register_complex_config(PLUGIN, tokenmgr_config);
}
