/*
 * The options table: every option's YAML path, collectd name, environment
 * variable, flag, type, range, default and one line of documentation, once.
 * Defaults, tkm_options_set(), the environment, validation and the
 * documentation walk it; the YAML loader (config.c) and the collectd
 * plugin's <Pool> parser hand it text.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "internal.h"

#define BIG INT64_C(1000000000)

typedef enum opt_type { OT_INT, OT_REAL, OT_BOOL, OT_TEXT, OT_LIST } opt_type;

/* Checks a text value; on failure *why says what is wrong with it (not
 * which option: the caller names that). */
typedef int (*text_check)(const char *v, char *why, size_t len);

typedef struct optdef {
    const char *key;      /* YAML path */
    const char *collectd; /* collectd option name, or NULL */
    const char *block;    /* "Recovery", or NULL: the <Pool> block */
    const char *flag;     /* a dedicated CLI flag, or NULL */
    opt_type type;
    size_t off;  /* the field in tkm_options */
    size_t size; /* OT_TEXT: its buffer; OT_LIST: one item's buffer */
    int64_t min, max;
    double dmin, dmax;
    int lo_open; /* OT_REAL: dmin excluded */
    int64_t idef;
    double ddef;
    const char *sdef;
    const char *unit;
    int no_env;
    text_check check;       /* every item of a list */
    text_check check_first; /* OT_LIST: the first item */
    size_t count_off;       /* OT_LIST: the int that counts the items */
    int max_items;
    const char *doc;
} optdef;

static int check_pool(const char *v, char *why, size_t len);
static int check_redis_url(const char *v, char *why, size_t len);
static int check_base_url(const char *v, char *why, size_t len);
static int check_webhook_url(const char *v, char *why, size_t len);
static int check_exec_argv0(const char *v, char *why, size_t len);
static int check_sentinel(const char *v, char *why, size_t len);
static int check_master_name(const char *v, char *why, size_t len);
static int check_queue_item(const char *v, char *why, size_t len);
static int check_queue_class(const char *v, char *why, size_t len);

#define FIELD_OFF(f) .off = offsetof(tkm_options, f)
#define ITEM(f)                                                                \
    .off = offsetof(tkm_options, f), .size = sizeof(((tkm_options *)0)->f[0])
#define MAXOF(f)                                                               \
    ((int)(sizeof(((tkm_options *)0)->f) / sizeof(((tkm_options *)0)->f[0])))
#define INTC(k, cd, f, lo, hi, d, u, doc_)                                     \
    {                                                                          \
        .key = k, .collectd = cd, .type = OT_INT, FIELD_OFF(f), .min = lo,     \
        .max = hi, .idef = d, .unit = u, .doc = doc_                           \
    }
#define INT(k, f, lo, hi, d, u, doc_) INTC(k, NULL, f, lo, hi, d, u, doc_)

static const optdef table[] = {
    {.key = "pool",
     .flag = "--pool",
     .type = OT_TEXT,
     FIELD_OFF(pool),
     .size = sizeof(((tkm_options *)0)->pool),
     .sdef = "keepa",
     .check = check_pool,
     .doc = "the pool: one API key's bucket, shared by every worker; "
            "[A-Za-z0-9_.-]{1,64}"},
    {.key = "redis.url",
     .collectd = "RedisURL",
     .flag = "--redis",
     .type = OT_TEXT,
     FIELD_OFF(redis_url),
     .size = sizeof(((tkm_options *)0)->redis_url),
     .sdef = "redis://127.0.0.1:6379/0",
     .check = check_redis_url,
     .doc = "redis://[[user]:password@]host[:port][/db] or "
            "unix:///path/redis.sock[?db=N]"},
    INTC("redis.timeout_ms", "Timeout", timeout_ms, 1, 600000, 500,
         "milliseconds", "bound of every connect and every Redis call"),
    {.key = "redis.password_file",
     .collectd = "RedisPasswordFile",
     .type = OT_TEXT,
     FIELD_OFF(redis_password_file),
     .size = sizeof(((tkm_options *)0)->redis_password_file),
     .sdef = "",
     .doc = "the AUTH password, read from a file only its owner may read "
            "(instead of the URL's)"},
    {.key = "redis.sentinels",
     .collectd = "Sentinel",
     .type = OT_LIST,
     ITEM(sentinel.addr),
     .count_off = offsetof(tkm_options, sentinel.count),
     .max_items = MAXOF(sentinel.addr),
     .check = check_sentinel,
     .doc = "Redis Sentinel addresses (host:port or unix:///path): the "
            "master is asked of them"},
    {.key = "redis.master_name",
     .collectd = "MasterName",
     .type = OT_TEXT,
     FIELD_OFF(sentinel.master_name),
     .size = sizeof(((tkm_options *)0)->sentinel.master_name),
     .sdef = "",
     .check = check_master_name,
     .doc = "the master's name in the sentinels' configuration"},
    {.key = "redis.sentinel_password_file",
     .collectd = "SentinelPasswordFile",
     .type = OT_TEXT,
     FIELD_OFF(sentinel.password_file),
     .size = sizeof(((tkm_options *)0)->sentinel.password_file),
     .sdef = "",
     .doc = "the sentinels' AUTH password, read from a file only its owner "
            "may read"},

    INT("bucket.refill_period_ms", bucket.refill_period_ms, 1, 86400000, 60000,
        "milliseconds", "one refill tick per period (Keepa: a minute)"),
    INTC("bucket.capacity", "Capacity", bucket.capacity, 0, BIG, 0, "tokens",
         "the bucket's size; 0 = 60 x the refill rate (Keepa's one-hour "
         "expiry)"),
    INT("bucket.min_start_balance", bucket.min_start_balance, 1, BIG, 1,
        "tokens",
        "a call starts only when the balance less the reserve of the calls "
        "in flight is at least this"),
    INT("bucket.soft_floor", bucket.soft_floor, -BIG, BIG, 20, "tokens",
        "the grant that leaves the balance below this proceeds; recharge "
        "starts"),
    INT("bucket.recharge_target", bucket.recharge_target, -BIG, BIG, 50,
        "tokens", "recharge ends at this balance (clamped to the capacity)"),
    INT("bucket.low_cost_max", bucket.low_cost_max, 0, BIG, 10, "tokens",
        "calls costing at most this..."),
    INT("bucket.low_cost_target", bucket.low_cost_target, -BIG, BIG, 20,
        "tokens", "...may leave recharge at this balance"),
    INT("bucket.recharge_timeout_s", bucket.recharge_timeout_s, 1, 604800, 3600,
        "seconds", "recharge is cleared after this long (livelock guard)"),
    INT("bucket.max_deficit", bucket.max_deficit, -BIG, 0, -180, "tokens",
        "no grant takes the balance below this, counting calls in flight at "
        "their learned estimate error"),
    INT("bucket.lease_ttl_s", bucket.lease_ttl_s, 1, 86400, 120, "seconds",
        "a reservation not completed by then expires, keeping its cost"),
    INT("bucket.max_wait_s", bucket.max_wait_s, 0, 86400, 60, "seconds",
        "a blocking acquire refuses longer waits (the worker is freed)"),
    {.key = "bucket.estimate_prior",
     .type = OT_REAL,
     FIELD_OFF(bucket.estimate_prior),
     .dmin = 1,
     .dmax = 1000,
     .ddef = 4,
     .unit = "times the estimate",
     .doc = "a call whose estimate nothing has taught yet is valued at this "
            "multiple of it (1: estimates are exact)"},

    INT("heartbeat.min_interval_ms", heartbeat.min_interval_ms, 0, 3600000,
        1000, "milliseconds", "closer heartbeats are coalesced on the client"),
    INT("heartbeat.stale_after_s", heartbeat.stale_after_s, 1, 604800, 900,
        "seconds",
        "a worker silent this long is not alive (unless busy); follows "
        "stall.heartbeat_age_s"),
    INT("heartbeat.retention_s", heartbeat.retention_s, 60, 2592000, 86400,
        "seconds", "worker records older than this are pruned"),
    INT("heartbeat.wait_slice_ms", heartbeat.wait_slice_ms, 10, 60000, 2000,
        "milliseconds",
        "a blocking acquire's sleep sees its cancel flag at least this often "
        "(while in line it beats every quarter of heartbeat.stale_after_s, "
        "at most a minute apart)"),

    {.key = "keepa.base_url",
     .type = OT_TEXT,
     FIELD_OFF(keepa.base_url),
     .size = sizeof(((tkm_options *)0)->keepa.base_url),
     .sdef = "https://api.keepa.com",
     .check = check_base_url,
     .doc = "the API's address (http or https)"},
    {.key = "keepa.key_file",
     .type = OT_TEXT,
     FIELD_OFF(keepa.key_file),
     .size = sizeof(((tkm_options *)0)->keepa.key_file),
     .sdef = "",
     .doc = "the access key's file (only its owner may read it); \"\": "
            "$TOKENMGR_KEEPA_KEY"},
    INT("keepa.timeout_ms", keepa.timeout_ms, 100, 600000, 30000,
        "milliseconds", "one whole HTTP request, body included"),
    INT("keepa.max_retries", keepa.max_retries, 0, 100, 5, "retries",
        "network errors, 5xx, garbage bodies: tries after the first"),
    INT("keepa.token_sync_min_interval_s", keepa.token_sync_min_interval_s, 0,
        86400, 300, "seconds", "/token at most this often across the pool"),

    {.key = "stall.tokens",
     .collectd = "StallTokens",
     .type = OT_INT,
     FIELD_OFF(stall.tokens),
     .min = -1,
     .max = BIG,
     .idef = -1,
     .unit = "tokens",
     .doc = "the bucket counts as unused at or above this balance; -1: "
            "stall.tokens_ratio instead"},
    {.key = "stall.tokens_ratio",
     .collectd = "StallTokensRatio",
     .type = OT_REAL,
     FIELD_OFF(stall.tokens_ratio),
     .dmin = 0,
     .dmax = 1,
     .lo_open = 1,
     .ddef = 0.97,
     .unit = "of the capacity",
     .doc = "...or at or above this fraction of the capacity (follows the "
            "plan)"},
    {.key = "stall.heartbeat_age_s",
     .collectd = "StallHeartbeatAge",
     .type = OT_INT,
     FIELD_OFF(stall.heartbeat_age_s),
     .min = 1,
     .max = 604800,
     .idef = 900,
     .unit = "seconds",
     .doc = "no heartbeat from any worker for this long (and nobody busy)"},
    {.key = "stall.confirmations",
     .collectd = "StallConfirmations",
     .type = OT_INT,
     FIELD_OFF(stall.confirmations),
     .min = 1,
     .max = 1000,
     .idef = 2,
     .unit = "reads",
     .doc = "consecutive reads the condition must hold before acting"},
    {.key = "stall.shared_cause_escalate_s",
     .collectd = "SharedCauseEscalate",
     .type = OT_INT,
     FIELD_OFF(stall.shared_cause_escalate_s),
     .min = 0,
     .max = 2592000,
     .idef = 2700,
     .unit = "seconds",
     .doc = "a stall held back on evidence of a shared cause acts once it "
            "lasted this long"},

    {.key = "queue.classes",
     .type = OT_LIST,
     ITEM(queue.classes),
     .count_off = offsetof(tkm_options, queue.nclasses),
     .max_items = MAXOF(queue.classes),
     .check = check_queue_item,
     .doc = "priority classes of the wait queue as name=weight items "
            "(interactive=3): backlogged classes share tokens by weight; "
            "\"default\" has weight 1 unless listed"},
    {.key = "queue.class",
     .type = OT_TEXT,
     FIELD_OFF(queue.class_name),
     .size = sizeof(((tkm_options *)0)->queue.class_name),
     .sdef = "default",
     .check = check_queue_class,
     .doc = "this client's class in the wait queue: \"default\" or one of "
            "queue.classes"},

    {.key = "recovery.exec",
     .collectd = "Exec",
     .block = "Recovery",
     .type = OT_LIST,
     ITEM(recovery.exec),
     .count_off = offsetof(tkm_options, recovery.exec_argc),
     .max_items = TKM_EXEC_ARGS_MAX,
     .no_env = 1,
     .check_first = check_exec_argv0,
     .doc = "the recovery command: an absolute path, then its arguments (no "
            "shell)"},
    {.key = "recovery.webhook",
     .collectd = "Webhook",
     .block = "Recovery",
     .type = OT_TEXT,
     FIELD_OFF(recovery.webhook),
     .size = sizeof(((tkm_options *)0)->recovery.webhook),
     .sdef = "",
     .check = check_webhook_url,
     .doc = "or an http(s) URL that gets the context as a JSON POST"},
    {.key = "recovery.timeout_s",
     .collectd = "Timeout",
     .block = "Recovery",
     .type = OT_INT,
     FIELD_OFF(recovery.timeout_s),
     .min = 1,
     .max = 86400,
     .idef = 60,
     .unit = "seconds",
     .doc = "the action's deadline: then its whole process group is killed"},
    {.key = "recovery.cooldown_s",
     .collectd = "Cooldown",
     .block = "Recovery",
     .type = OT_INT,
     FIELD_OFF(recovery.cooldown_s),
     .min = 0,
     .max = 604800,
     .idef = 1800,
     .unit = "seconds",
     .doc = "no new action for this long; doubles with each action in the "
            "window"},
    {.key = "recovery.max_actions",
     .collectd = "MaxActions",
     .block = "Recovery",
     .type = OT_INT,
     FIELD_OFF(recovery.max_actions),
     .min = 1,
     .max = 1000,
     .idef = 3,
     .unit = "actions",
     .doc = "per window; then escalated until clear for a window or reset"},
    {.key = "recovery.window_s",
     .collectd = "Window",
     .block = "Recovery",
     .type = OT_INT,
     FIELD_OFF(recovery.window_s),
     .min = 60,
     .max = 2592000,
     .idef = 3600,
     .unit = "seconds",
     .doc = "the window of max_actions"},
    {.key = "recovery.grace_s",
     .collectd = "Grace",
     .block = "Recovery",
     .type = OT_INT,
     FIELD_OFF(recovery.grace_s),
     .min = 0,
     .max = 86400,
     .idef = 300,
     .unit = "seconds",
     .doc = "after an action the pool is not judged; no heartbeat by then: "
            "it failed"},
    {.key = "recovery.dry_run",
     .collectd = "DryRun",
     .block = "Recovery",
     .type = OT_BOOL,
     FIELD_OFF(recovery.dry_run),
     .idef = 0,
     .doc = "decisions are audited, nothing runs"},
};

#define NOPTS (sizeof(table) / sizeof(table[0]))
_Static_assert(sizeof(table) / sizeof(table[0]) <= TKM_OPTION_SLOTS,
               "tkm_options.sources_ has a slot per option");

/*
 * Defaults that give way: when the user sets one side of a relation and
 * leaves the other to its default, the default follows instead of
 * contradicting a value the user set.  Applied in this order to options
 * still at their default.
 */
typedef enum derive_kind {
    D_FOLLOW, /* target = other */
    D_MIN,    /* target = min(its default, other) */
    D_MAX,    /* target = max(its default, other) */
    D_TRIPLE  /* target = 3 x other */
} derive_kind;

static const struct derive {
    const char *target;
    derive_kind kind;
    const char *other;
} derives[] = {
    {"heartbeat.stale_after_s", D_FOLLOW, "stall.heartbeat_age_s"},
    {"stall.shared_cause_escalate_s", D_TRIPLE, "stall.heartbeat_age_s"},
    {"bucket.recharge_target", D_MAX, "bucket.soft_floor"},
    {"bucket.recharge_target", D_MAX, "bucket.low_cost_target"},
    {"bucket.soft_floor", D_MIN, "bucket.recharge_target"},
    {"bucket.low_cost_target", D_MIN, "bucket.recharge_target"},
    {"bucket.max_deficit", D_MIN, "bucket.soft_floor"},
    {"heartbeat.retention_s", D_MAX, "heartbeat.stale_after_s"},
    {"heartbeat.retention_s", D_MAX, "stall.heartbeat_age_s"},
};

/* ---- field access ------------------------------------------------------ */

static void *field(tkm_options *o, const optdef *d)
{
    return (char *)o + d->off;
}

static const void *cfield(const tkm_options *o, const optdef *d)
{
    return (const char *)o + d->off;
}

static int64_t get_int(const tkm_options *o, const optdef *d)
{
    int64_t v;

    memcpy(&v, cfield(o, d), sizeof(v));
    return v;
}

static void put_int(tkm_options *o, const optdef *d, int64_t v)
{
    memcpy(field(o, d), &v, sizeof(v));
}

static double get_real(const tkm_options *o, const optdef *d)
{
    double v;

    memcpy(&v, cfield(o, d), sizeof(v));
    return v;
}

static int get_bool(const tkm_options *o, const optdef *d)
{
    int v;

    memcpy(&v, cfield(o, d), sizeof(v));
    return v;
}

static int list_count(const tkm_options *o, const optdef *d)
{
    int n;

    memcpy(&n, (const char *)o + d->count_off, sizeof(n));
    return n;
}

static const char *list_item(const tkm_options *o, const optdef *d, int i)
{
    return (const char *)cfield(o, d) + (size_t)i * d->size;
}

static int index_of(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (strcmp(table[i].key, key) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- checks of text values --------------------------------------------- */

static int check_pool(const char *v, char *why, size_t len)
{
    if (tkm__pool_name_valid(v))
        return 0;
    tkm__fmt(why, len,
             "'%.80s' is not a pool name: it must match "
             "[A-Za-z0-9_.-]{1,64}",
             v);
    return -1;
}

static int check_redis_url(const char *v, char *why, size_t len)
{
    tkm__url url;

    return tkm__url_parse(v, &url, why, len) == TKM_OK ? 0 : -1;
}

static int check_base_url(const char *v, char *why, size_t len)
{
    return tkm__http_url_check("URL", v, TKM__URL_NO_QUERY, why, len) == TKM_OK
               ? 0
               : -1;
}

static int check_webhook_url(const char *v, char *why, size_t len)
{
    if (v[0] == '\0')
        return 0; /* none */
    return tkm__http_url_check("URL", v, 0, why, len) == TKM_OK ? 0 : -1;
}

/* No shell and no PATH search: the watchdog's relative
 * ./kill_everything_force.sh ran whatever the working directory held. */
static int check_exec_argv0(const char *v, char *why, size_t len)
{
    if (v[0] == '/')
        return 0;
    tkm__fmt(why, len,
             "\"%.200s\" is not an absolute path (no shell and no PATH "
             "search run it)",
             v);
    return -1;
}

static int check_sentinel(const char *v, char *why, size_t len)
{
    const char *colon;
    int64_t port;

    if (strncmp(v, "unix://", 7) == 0) {
        if (v[7] == '/' && v[8] != '\0')
            return 0;
        tkm__fmt(why, len,
                 "'%.200s' needs an absolute socket path (unix:///path)", v);
        return -1;
    }
    colon = strrchr(v, ':');
    if (colon == NULL || colon == v ||
        tkm_parse_int(colon + 1, 1, 65535, &port) != TKM_OK) {
        tkm__fmt(why, len,
                 "'%.200s' is not host:port (port 1..65535) or unix:///path",
                 v);
        return -1;
    }
    for (const char *p = v; p < colon; p++) {
        if (!(isalnum((unsigned char)*p) || strchr(".-_[]:", *p))) {
            tkm__fmt(why, len, "'%.200s': the host holds '%c'", v, *p);
            return -1;
        }
    }
    return 0;
}

static int check_master_name(const char *v, char *why, size_t len)
{
    for (const char *p = v; *p; p++) {
        if (!(isalnum((unsigned char)*p) || strchr("._-", *p))) {
            tkm__fmt(why, len,
                     "'%.80s' is not a master name: [A-Za-z0-9_.-] only", v);
            return -1;
        }
    }
    return 0;
}

static int queue_name_valid(const char *v, size_t n)
{
    if (n == 0 || n > TKM_QUEUE_CLASS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(isalnum((unsigned char)v[i]) || strchr("_.-", v[i])))
            return 0;
    }
    return 1;
}

static int check_queue_class(const char *v, char *why, size_t len)
{
    if (queue_name_valid(v, strlen(v)))
        return 0;
    tkm__fmt(why, len,
             "'%.80s' is not a class name: it must match "
             "[A-Za-z0-9_.-]{1,%d}",
             v, TKM_QUEUE_CLASS_MAX);
    return -1;
}

/* "name=weight", weight 1..TKM_QUEUE_WEIGHT_MAX. */
static int check_queue_item(const char *v, char *why, size_t len)
{
    const char *eq = strchr(v, '=');
    int64_t w;

    if (eq == NULL || !queue_name_valid(v, (size_t)(eq - v))) {
        tkm__fmt(why, len,
                 "'%.80s' is not name=weight (a class name "
                 "[A-Za-z0-9_.-]{1,%d} and its weight)",
                 v, TKM_QUEUE_CLASS_MAX);
        return -1;
    }
    if (tkm_parse_int(eq + 1, INT64_MIN, INT64_MAX, &w) != TKM_OK || w < 1 ||
        w > TKM_QUEUE_WEIGHT_MAX) {
        tkm__fmt(why, len,
                 "'%.80s': the weight of class %.*s must be a whole number "
                 "in 1..%d",
                 v, (int)(eq - v), v, TKM_QUEUE_WEIGHT_MAX);
        return -1;
    }
    return 0;
}

/* ---- names and messages ------------------------------------------------ */

/* TOKENMGR_ + the key in capitals, dots as underscores. */
static void env_name(const optdef *d, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (d->no_env)
        return;
    n = (size_t)snprintf(buf, len, "TOKENMGR_");
    for (const char *p = d->key; *p && n + 1 < len; p++)
        buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    buf[n] = '\0';
}

/* The option as `source` spells it; `where` decides for flags (NULL: the
 * dedicated flag, else the key as written after --set). */
static void spelled(const optdef *d, tkm_option_source source,
                    const char *where, char *buf, size_t len)
{
    if (source == TKM_SOURCE_COLLECTD && d->collectd != NULL)
        tkm__fmt(buf, len, "%s%s%s%s", d->block ? "<" : "",
                 d->block ? d->block : "", d->block ? "> " : "", d->collectd);
    else if (source == TKM_SOURCE_ENV && !d->no_env)
        env_name(d, buf, len);
    else if (source == TKM_SOURCE_FLAG && d->flag != NULL &&
             (where == NULL || where[0] == '\0'))
        tkm__fmt(buf, len, "%s", d->flag);
    else
        tkm__fmt(buf, len, "%s", d->key);
}

/* The option as its current value's source spells it; one still at its
 * default as `like` (the source of the option it is compared with). */
static void spelled_like(const tkm_options *o, size_t i, size_t like, char *buf,
                         size_t len)
{
    tkm_option_source s = (tkm_option_source)o->sources_[i];

    if (s == TKM_SOURCE_DEFAULT)
        s = (tkm_option_source)o->sources_[like];
    spelled(&table[i], s, NULL, buf, len);
}

static void spelled_now(const tkm_options *o, size_t i, char *buf, size_t len)
{
    spelled_like(o, i, i, buf, len);
}

static void range_text(const optdef *d, char *buf, size_t len)
{
    switch (d->type) {
    case OT_INT:
        tkm__fmt(buf, len, "%lld..%lld", (long long)d->min, (long long)d->max);
        break;
    case OT_REAL:
        tkm__fmt(buf, len, "%s%g, %g]", d->lo_open ? "(" : "[", d->dmin,
                 d->dmax);
        break;
    default:
        buf[0] = '\0';
    }
}

static unsigned edit_distance(const char *a, const char *b)
{
    unsigned row[64];
    size_t lb = strlen(b);

    if (lb >= 63 || strlen(a) >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; a[i - 1]; i++) {
        unsigned prev = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            unsigned sub = prev + (tolower((unsigned char)a[i - 1]) !=
                                   tolower((unsigned char)b[j - 1]));
            unsigned best =
                row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The name `source` would use for d ("" when it has none). */
static void lookup_name(const optdef *d, tkm_option_source source, char *buf,
                        size_t len)
{
    if (source == TKM_SOURCE_COLLECTD)
        tkm__fmt(buf, len, "%s", d->collectd ? d->collectd : "");
    else if (source == TKM_SOURCE_ENV)
        env_name(d, buf, len);
    else
        tkm__fmt(buf, len, "%s", d->key);
}

static int same_block(const optdef *d, const char *block)
{
    if (block == NULL || d->block == NULL)
        return block == NULL && d->block == NULL;
    return strcasecmp(block, d->block) == 0;
}

TKM_EXPORT int tkm_option_lookup(const char *name, tkm_option_source source,
                                 const char *block, char *hint, size_t hintlen)
{
    unsigned best = 3;
    char cand[96], pick[96] = "";
    int collectd = source == TKM_SOURCE_COLLECTD;

    if (hint != NULL && hintlen > 0)
        hint[0] = '\0';
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < NOPTS; i++) {
        const optdef *d = &table[i];
        if (collectd && !same_block(d, block))
            continue;
        lookup_name(d, source, cand, sizeof(cand));
        if (cand[0] == '\0')
            continue;
        if (collectd ? strcasecmp(name, cand) == 0 : strcmp(name, cand) == 0)
            return (int)i;
        unsigned dist = edit_distance(name, cand);
        const char *nl = strrchr(name, '.'), *cl = strrchr(cand, '.');
        /* "bucket.floor": a word of "bucket.soft_floor" in its section. */
        if (nl != NULL && cl != NULL && nl - name == cl - cand &&
            strncmp(name, cand, (size_t)(nl - name)) == 0 && nl[1] != '\0' &&
            strstr(cl + 1, nl + 1) != NULL && dist > 2)
            dist = 2;
        if (dist < best) {
            best = dist;
            tkm__fmt(pick, sizeof(pick), "%s", cand);
        }
    }
    if (pick[0] && hint != NULL)
        tkm__fmt(hint, hintlen, " (did you mean '%s'?)", pick);
    return -1;
}

/* ---- parsing one value --------------------------------------------------- */

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/*
 * Parse `v` for the scalar option d into *o (the caller's copy).  The
 * message is "<where><name> ..." in the same words for every source.
 */
static tkm_code set_scalar(tkm_options *o, const optdef *d, const char *v,
                           const char *where, const char *name, char *err,
                           size_t errlen)
{
    char why[TKM__ERR_MAX], range[64];
    const char *u = d->unit ? d->unit : "";

    range_text(d, range, sizeof(range));
    switch (d->type) {
    case OT_INT: {
        int64_t n;
        if (tkm_parse_int(v, INT64_MIN, INT64_MAX, &n) != TKM_OK) {
            tkm__fmt(err, errlen,
                     "%s%s must be a whole number%s%s, not '%.40s'", where,
                     name, u[0] ? " of " : "", u, v);
            return TKM_ECONFIG;
        }
        if (n < d->min || n > d->max) {
            tkm__fmt(err, errlen, "%s%s is %lld, outside %s%s%s%s", where, name,
                     (long long)n, range, u[0] ? " (" : "", u, u[0] ? ")" : "");
            return TKM_ECONFIG;
        }
        put_int(o, d, n);
        return TKM_OK;
    }
    case OT_REAL: {
        double x;
        if (tkm_parse_double(v, -1e15, 1e15, &x) != TKM_OK) {
            tkm__fmt(err, errlen, "%s%s must be a number, not '%.40s'", where,
                     name, v);
            return TKM_ECONFIG;
        }
        if (x > d->dmax || x < d->dmin || (d->lo_open && x == d->dmin)) {
            tkm__fmt(err, errlen, "%s%s is %g, outside %s%s%s%s", where, name,
                     x, range, u[0] ? " (" : "", u, u[0] ? ")" : "");
            return TKM_ECONFIG;
        }
        memcpy(field(o, d), &x, sizeof(x));
        return TKM_OK;
    }
    case OT_BOOL: {
        int b;
        if (parse_bool(v, &b) != 0) {
            tkm__fmt(err, errlen, "%s%s must be true or false, not '%.40s'",
                     where, name, v);
            return TKM_ECONFIG;
        }
        memcpy(field(o, d), &b, sizeof(b));
        return TKM_OK;
    }
    case OT_TEXT:
        if (strlen(v) >= d->size) {
            tkm__fmt(err, errlen, "%s%s is longer than %zu bytes", where, name,
                     d->size - 1);
            return TKM_ECONFIG;
        }
        if (d->check != NULL && d->check(v, why, sizeof(why)) != 0) {
            tkm__fmt(err, errlen, "%s%s: %s", where, name, why);
            return TKM_ECONFIG;
        }
        memcpy(field(o, d), v, strlen(v) + 1);
        return TKM_OK;
    case OT_LIST:
        break;
    }
    tkm__fmt(err, errlen, "%s%s is a list", where, name);
    return TKM_ECONFIG;
}

static tkm_code set_items(tkm_options *o, const optdef *d,
                          const char *const *items, size_t n, const char *where,
                          const char *name, char *err, size_t errlen)
{
    char why[TKM__ERR_MAX];
    int count = (int)n;

    if (n > (size_t)d->max_items) {
        tkm__fmt(err, errlen, "%s%s has more than %d items", where, name,
                 d->max_items);
        return TKM_ECONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(items[i]) >= d->size) {
            tkm__fmt(err, errlen, "%s%s item %zu is longer than %zu bytes",
                     where, name, i + 1, d->size - 1);
            return TKM_ECONFIG;
        }
        if ((d->check != NULL && d->check(items[i], why, sizeof(why)) != 0) ||
            (i == 0 && d->check_first != NULL &&
             d->check_first(items[i], why, sizeof(why)) != 0)) {
            tkm__fmt(err, errlen, "%s%s: %s", where, name, why);
            return TKM_ECONFIG;
        }
    }
    memset(field(o, d), 0, d->size * (size_t)d->max_items);
    for (size_t i = 0; i < n; i++)
        memcpy((char *)field(o, d) + i * d->size, items[i],
               strlen(items[i]) + 1);
    memcpy((char *)o + d->count_off, &count, sizeof(count));
    return TKM_OK;
}

/* ---- defaults and derived defaults --------------------------------------- */

static void set_default(tkm_options *o, const optdef *d)
{
    int zero = 0;

    switch (d->type) {
    case OT_INT:
        put_int(o, d, d->idef);
        break;
    case OT_REAL:
        memcpy(field(o, d), &d->ddef, sizeof(d->ddef));
        break;
    case OT_BOOL: {
        int b = (int)d->idef;
        memcpy(field(o, d), &b, sizeof(b));
        break;
    }
    case OT_TEXT:
        tkm__copy(field(o, d), d->size, d->sdef ? d->sdef : "");
        break;
    case OT_LIST:
        memset(field(o, d), 0, d->size * (size_t)d->max_items);
        memcpy((char *)o + d->count_off, &zero, sizeof(zero));
        break;
    }
}

/* Options still at their default take their base value again, then give
 * way to the options they depend on. */
static void derive(tkm_options *o)
{
    for (size_t k = 0; k < sizeof(derives) / sizeof(derives[0]); k++) {
        int t = index_of(derives[k].target);
        if (t >= 0 && o->sources_[t] == TKM_SOURCE_DEFAULT)
            put_int(o, &table[t], table[t].idef);
    }
    for (size_t k = 0; k < sizeof(derives) / sizeof(derives[0]); k++) {
        const struct derive *r = &derives[k];
        int t = index_of(r->target), s = index_of(r->other);
        int64_t tv, sv;
        if (t < 0 || s < 0 || o->sources_[t] != TKM_SOURCE_DEFAULT)
            continue;
        tv = get_int(o, &table[t]);
        sv = get_int(o, &table[s]);
        if (r->kind == D_FOLLOW)
            tv = sv;
        else if (r->kind == D_TRIPLE)
            tv = 3 * sv;
        else if (r->kind == D_MIN && sv < tv)
            tv = sv;
        else if (r->kind == D_MAX && sv > tv)
            tv = sv;
        /* A derived value stays inside the target's own range. */
        if (tv < table[t].min)
            tv = table[t].min;
        if (tv > table[t].max)
            tv = table[t].max;
        put_int(o, &table[t], tv);
    }
}

TKM_EXPORT void tkm_options_init(tkm_options *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < NOPTS; i++)
        set_default(o, &table[i]);
    derive(o);
}

TKM_EXPORT void tkm_stall_options_init(tkm_stall_options *o)
{
    tkm_options all;

    tkm_options_init(&all);
    *o = all.stall;
}

TKM_EXPORT void tkm_recovery_options_init(tkm_recovery_options *o)
{
    tkm_options all;

    tkm_options_init(&all);
    *o = all.recovery;
}

TKM_EXPORT tkm_code tkm_options_new(tkm_options **out)
{
    *out = malloc(sizeof(**out));
    if (*out == NULL)
        return TKM_ENOMEM;
    tkm_options_init(*out);
    return TKM_OK;
}

TKM_EXPORT void tkm_options_free(tkm_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof(*o)); /* may hold a Redis password */
    free(o);
}

/* ---- the public setters -------------------------------------------------- */

static tkm_code unknown(const char *key, tkm_option_source source,
                        const char *where, char *err, size_t errlen)
{
    char hint[128];

    tkm_option_lookup(key, TKM_SOURCE_API, NULL, hint, sizeof(hint));
    (void)source;
    tkm__fmt(err, errlen, "%sunknown option '%.80s'%s", where ? where : "", key,
             hint);
    return TKM_ECONFIG;
}

TKM_EXPORT tkm_code tkm_options_set_from(tkm_options *o, const char *key,
                                         const char *value,
                                         tkm_option_source source,
                                         const char *where, char *err,
                                         size_t errlen)
{
    int i = key ? index_of(key) : -1;
    const optdef *d;
    char name[128];
    tkm_options *copy;
    tkm_code rc;

    if (i < 0)
        return unknown(key ? key : "(null)", source, where, err, errlen);
    d = &table[i];
    spelled(d, source, where, name, sizeof(name));
    if (value == NULL) {
        tkm__fmt(err, errlen, "%s%s has no value", where ? where : "", name);
        return TKM_ECONFIG;
    }
    if (d->type == OT_LIST) {
        /* Text form: items separated by commas. */
        const char *items[64];
        char buf[TKM_SENTINELS_MAX * TKM_ADDR_MAX +
                 TKM_EXEC_ARGS_MAX * TKM_EXEC_ARG_MAX];
        size_t n = 0;
        if (strlen(value) >= sizeof(buf)) {
            tkm__fmt(err, errlen, "%s%s is too long", where ? where : "", name);
            return TKM_ECONFIG;
        }
        memcpy(buf, value, strlen(value) + 1);
        for (char *p = buf; *p && n < 64;) {
            items[n++] = p;
            p = strchr(p, ',');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        return tkm_options_set_list_from(o, key, items, n, source, where, err,
                                         errlen);
    }
    /* Parsed into a copy: on failure *o is untouched. */
    copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        tkm__fmt(err, errlen, "out of memory");
        return TKM_ENOMEM;
    }
    *copy = *o;
    rc = set_scalar(copy, d, value, where ? where : "", name, err, errlen);
    if (rc == TKM_OK) {
        copy->sources_[i] = (unsigned char)source;
        derive(copy);
        *o = *copy;
    }
    memset(copy, 0, sizeof(*copy));
    free(copy);
    return rc;
}

TKM_EXPORT tkm_code tkm_options_set_list_from(
    tkm_options *o, const char *key, const char *const *items, size_t n,
    tkm_option_source source, const char *where, char *err, size_t errlen)
{
    int i = key ? index_of(key) : -1;
    const optdef *d;
    char name[128];
    tkm_code rc;

    if (i < 0)
        return unknown(key ? key : "(null)", source, where, err, errlen);
    d = &table[i];
    spelled(d, source, where, name, sizeof(name));
    if (d->type != OT_LIST) {
        if (n != 1) {
            tkm__fmt(err, errlen, "%s%s takes one value, not %zu",
                     where ? where : "", name, n);
            return TKM_ECONFIG;
        }
        return tkm_options_set_from(o, key, items[0], source, where, err,
                                    errlen);
    }
    rc = set_items(o, d, items, n, where ? where : "", name, err, errlen);
    if (rc == TKM_OK) {
        o->sources_[i] = (unsigned char)source;
        derive(o);
    }
    return rc;
}

TKM_EXPORT tkm_code tkm_options_set(tkm_options *o, const char *key,
                                    const char *value, char *err, size_t errlen)
{
    return tkm_options_set_from(o, key, value, TKM_SOURCE_API, NULL, err,
                                errlen);
}

TKM_EXPORT tkm_code tkm_options_set_list(tkm_options *o, const char *key,
                                         const char *const *items, size_t n,
                                         char *err, size_t errlen)
{
    return tkm_options_set_list_from(o, key, items, n, TKM_SOURCE_API, NULL,
                                     err, errlen);
}

TKM_EXPORT tkm_code tkm_options_set_worker_id(tkm_options *o, const char *id,
                                              char *err, size_t errlen)
{
    if (id == NULL)
        id = "";
    if (id[0] != '\0' && !tkm__worker_id_valid(id)) {
        tkm__fmt(err, errlen,
                 "worker id '%.140s' is invalid: it must match "
                 "[A-Za-z0-9_.:@-]{1,128}",
                 id);
        return TKM_ECONFIG;
    }
    tkm__copy(o->worker_id, sizeof(o->worker_id), id);
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_options_get(const tkm_options *o, const char *key,
                                    char *buf, size_t len)
{
    int i = key ? index_of(key) : -1;
    const optdef *d;
    int n = 0;

    if (i < 0 || len == 0)
        return TKM_EINVAL;
    d = &table[i];
    switch (d->type) {
    case OT_INT:
        n = snprintf(buf, len, "%lld", (long long)get_int(o, d));
        break;
    case OT_REAL:
        n = snprintf(buf, len, "%g", get_real(o, d));
        break;
    case OT_BOOL:
        n = snprintf(buf, len, "%s", get_bool(o, d) ? "true" : "false");
        break;
    case OT_TEXT:
        if (d->check == check_redis_url)
            tkm__url_redact(cfield(o, d), buf, len);
        else
            n = snprintf(buf, len, "%s", (const char *)cfield(o, d));
        break;
    case OT_LIST:
        buf[0] = '\0';
        for (int k = 0; k < list_count(o, d) && n >= 0 && (size_t)n < len; k++)
            n += snprintf(buf + n, len - (size_t)n, "%s%s", k ? "," : "",
                          list_item(o, d, k));
        break;
    }
    return n >= 0 && (size_t)n < len ? TKM_OK : TKM_ECONFIG;
}

TKM_EXPORT tkm_option_source tkm_options_source(const tkm_options *o,
                                                const char *key)
{
    int i = key ? index_of(key) : -1;

    return i < 0 ? TKM_SOURCE_DEFAULT : (tkm_option_source)o->sources_[i];
}

TKM_EXPORT const char *tkm_option_source_name(tkm_option_source s)
{
    static const char *const names[] = {"default", "file",     "environment",
                                        "flag",    "collectd", "api"};

    return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ---- the table, described ---------------------------------------------- */

TKM_EXPORT size_t tkm_option_count(void)
{
    return NOPTS;
}

TKM_EXPORT int tkm_option_index(const char *key)
{
    return key ? index_of(key) : -1;
}

static const char *type_name(opt_type t)
{
    static const char *const names[] = {"integer", "number", "boolean",
                                        "string", "list"};

    return names[t];
}

/* The default as documentation shows it, with the rules deriving it. */
static void default_text(const optdef *d, char *buf, size_t len)
{
    size_t n;

    switch (d->type) {
    case OT_INT:
        tkm__fmt(buf, len, "%lld", (long long)d->idef);
        break;
    case OT_BOOL:
        tkm__fmt(buf, len, "%s", d->idef ? "true" : "false");
        break;
    case OT_REAL:
        tkm__fmt(buf, len, "%g", d->ddef);
        break;
    case OT_TEXT:
        tkm__fmt(buf, len, "\"%s\"", d->sdef ? d->sdef : "");
        break;
    case OT_LIST:
        tkm__fmt(buf, len, "[]");
        break;
    }
    for (size_t k = 0; k < sizeof(derives) / sizeof(derives[0]); k++) {
        const struct derive *r = &derives[k];
        if (strcmp(r->target, d->key) != 0)
            continue;
        n = strlen(buf);
        if (r->kind == D_FOLLOW)
            tkm__fmt(buf, len, "%s", r->other);
        else if (r->kind == D_TRIPLE)
            tkm__fmt(buf, len, "3 x %s", r->other);
        else
            snprintf(buf + n, len - n, ", %s %s when that is set",
                     r->kind == D_MIN ? "at most" : "at least", r->other);
    }
}

TKM_EXPORT tkm_code tkm_option_describe(size_t index, tkm_option_info *out)
{
    const optdef *d;

    if (index >= NOPTS || out == NULL)
        return TKM_EINVAL;
    d = &table[index];
    memset(out, 0, sizeof(*out));
    out->key = d->key;
    out->collectd = d->collectd;
    out->collectd_block = d->block;
    out->flag = d->flag;
    out->type = type_name(d->type);
    out->unit = d->unit ? d->unit : "";
    out->doc = d->doc;
    env_name(d, out->env, sizeof(out->env));
    range_text(d, out->range, sizeof(out->range));
    default_text(d, out->default_text, sizeof(out->default_text));
    return TKM_OK;
}

/* ---- the environment ----------------------------------------------------- */

TKM_EXPORT tkm_code tkm_options_from_env(tkm_options *o, char *err,
                                         size_t errlen)
{
    char name[96];

    for (size_t i = 0; i < NOPTS; i++) {
        const char *v;
        env_name(&table[i], name, sizeof(name));
        if (name[0] == '\0' || (v = getenv(name)) == NULL || v[0] == '\0')
            continue;
        tkm_code rc = tkm_options_set_from(o, table[i].key, v, TKM_SOURCE_ENV,
                                           NULL, err, errlen);
        if (rc != TKM_OK)
            return rc;
    }
    return TKM_OK;
}

/* ---- validation ---------------------------------------------------------- */

/* Each value against its own rule, as set_scalar would have checked it. */
static tkm_code check_value(const tkm_options *o, size_t i, char *err,
                            size_t errlen)
{
    const optdef *d = &table[i];
    char name[128], text[TKM_PATH_MAX + 32];
    tkm_options *scratch;
    tkm_code rc = TKM_OK;

    spelled_now(o, i, name, sizeof(name));
    if (d->type == OT_LIST) {
        const char *items[64];
        int n = list_count(o, d);
        if (n < 0 || n > d->max_items) {
            tkm__fmt(err, errlen, "%s has %d items, outside 0..%d", name, n,
                     d->max_items);
            return TKM_ECONFIG;
        }
        for (int k = 0; k < n; k++) {
            if (memchr(list_item(o, d, k), '\0', d->size) == NULL) {
                tkm__fmt(err, errlen, "%s item %d is not terminated", name,
                         k + 1);
                return TKM_ECONFIG;
            }
            items[k] = list_item(o, d, k);
        }
        scratch = malloc(sizeof(*scratch));
        if (scratch == NULL)
            return TKM_ENOMEM;
        *scratch = *o;
        rc = set_items(scratch, d, items, (size_t)n, "", name, err, errlen);
        free(scratch);
        return rc;
    }
    if (d->type == OT_TEXT && memchr(cfield(o, d), '\0', d->size) == NULL) {
        tkm__fmt(err, errlen, "%s is not terminated", name);
        return TKM_ECONFIG;
    }
    switch (d->type) {
    case OT_INT:
        snprintf(text, sizeof(text), "%lld", (long long)get_int(o, d));
        break;
    case OT_REAL:
        if (!isfinite(get_real(o, d))) {
            tkm__fmt(err, errlen, "%s is not a finite number", name);
            return TKM_ECONFIG;
        }
        snprintf(text, sizeof(text), "%.17g", get_real(o, d));
        break;
    case OT_BOOL:
        snprintf(text, sizeof(text), "%s", get_bool(o, d) ? "true" : "false");
        break;
    default:
        snprintf(text, sizeof(text), "%s", (const char *)cfield(o, d));
        break;
    }
    scratch = malloc(sizeof(*scratch));
    if (scratch == NULL)
        return TKM_ENOMEM;
    *scratch = *o;
    rc = set_scalar(scratch, d, text, "", name, err, errlen);
    memset(scratch, 0, sizeof(*scratch));
    free(scratch);
    return rc;
}

/* A relation broken: "A 60 is above B 50: why".  *culprit gets the index
 * of the option to blame (the one set from the more specific source). */
static tkm_code above(const tkm_options *o, int a, int b, const char *why,
                      int *culprit, char *err, size_t errlen)
{
    char na[128], nb[128];

    spelled_like(o, (size_t)a, (size_t)b, na, sizeof(na));
    spelled_like(o, (size_t)b, (size_t)a, nb, sizeof(nb));
    tkm__fmt(err, errlen, "%s %lld is above %s %lld%s%s", na,
             (long long)get_int(o, &table[a]), nb,
             (long long)get_int(o, &table[b]), why[0] ? ": " : "", why);
    if (culprit != NULL)
        *culprit = o->sources_[a] >= o->sources_[b] ? a : b;
    return TKM_ECONFIG;
}

static tkm_code both(const tkm_options *o, int a, int b, const char *why,
                     int *culprit, char *err, size_t errlen)
{
    char na[128], nb[128];

    spelled_now(o, (size_t)a, na, sizeof(na));
    spelled_now(o, (size_t)b, nb, sizeof(nb));
    tkm__fmt(err, errlen, "%s and %s are both set: %s", na, nb, why);
    if (culprit != NULL)
        *culprit = o->sources_[a] >= o->sources_[b] ? a : b;
    return TKM_ECONFIG;
}

tkm_code tkm__options_relations(const tkm_options *o, int *culprit, char *err,
                                size_t errlen)
{
    static const struct {
        const char *lo, *hi, *why;
    } order[] = {
        {"bucket.max_deficit", "bucket.soft_floor",
         "the floor that starts recharge would lie below the deficit limit"},
        {"bucket.soft_floor", "bucket.recharge_target",
         "recharge would end below the floor that starts it"},
        {"bucket.low_cost_target", "bucket.recharge_target",
         "cheap calls would wait for more than the others"},
        {"heartbeat.stale_after_s", "heartbeat.retention_s",
         "records would vanish while still judged"},
        {"stall.heartbeat_age_s", "heartbeat.retention_s",
         "heartbeats would be pruned before they are judged"},
    };
    int exec = index_of("recovery.exec"), hook = index_of("recovery.webhook");
    int tok = index_of("stall.tokens"), ratio = index_of("stall.tokens_ratio");
    int sent = index_of("redis.sentinels"),
        master = index_of("redis.master_name");

    if (culprit != NULL)
        *culprit = -1;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        int lo = index_of(order[k].lo), hi = index_of(order[k].hi);
        if (get_int(o, &table[lo]) > get_int(o, &table[hi]))
            return above(o, lo, hi, order[k].why, culprit, err, errlen);
    }
    {
        int classes = index_of("queue.classes"), cls = index_of("queue.class");
        int known = strcmp(o->queue.class_name, "default") == 0;
        char nl[128], nc[128];
        for (int k = 0; k < o->queue.nclasses && k < TKM_QUEUE_CLASSES_MAX;
             k++) {
            const char *a = o->queue.classes[k];
            size_t la = strcspn(a, "=");
            known |= strlen(o->queue.class_name) == la &&
                     strncmp(a, o->queue.class_name, la) == 0;
            for (int m = 0; m < k; m++) {
                if (strcspn(o->queue.classes[m], "=") == la &&
                    strncmp(o->queue.classes[m], a, la) == 0) {
                    spelled_now(o, (size_t)classes, nl, sizeof(nl));
                    tkm__fmt(err, errlen, "%s names class %.*s twice", nl,
                             (int)la, a);
                    if (culprit != NULL)
                        *culprit = classes;
                    return TKM_ECONFIG;
                }
            }
        }
        if (!known) {
            spelled_like(o, (size_t)cls, (size_t)classes, nc, sizeof(nc));
            spelled_like(o, (size_t)classes, (size_t)cls, nl, sizeof(nl));
            tkm__fmt(err, errlen,
                     "%s '%s' is not a class of %s (nor \"default\")", nc,
                     o->queue.class_name, nl);
            if (culprit != NULL)
                *culprit =
                    o->sources_[cls] >= o->sources_[classes] ? cls : classes;
            return TKM_ECONFIG;
        }
    }
    if (o->recovery.exec_argc > 0 && o->recovery.webhook[0] != '\0')
        return both(o, exec, hook, "choose one action", culprit, err, errlen);
    /* Both in one place: which was meant?  (A later source overriding a
     * file's threshold with the other kind is an override, not a clash.) */
    if (o->stall.tokens >= 0 && o->sources_[tok] != TKM_SOURCE_DEFAULT &&
        o->sources_[tok] == o->sources_[ratio])
        return both(o, tok, ratio, "give one threshold", culprit, err, errlen);
    if (o->sentinel.count > 0 && o->sentinel.master_name[0] == '\0') {
        char ns[128], nm[128];
        spelled_like(o, (size_t)sent, (size_t)master, ns, sizeof(ns));
        spelled_like(o, (size_t)master, (size_t)sent, nm, sizeof(nm));
        tkm__fmt(err, errlen,
                 "%s is set but %s is not: the sentinels need "
                 "the master's name",
                 ns, nm);
        if (culprit != NULL)
            *culprit = sent;
        return TKM_ECONFIG;
    }
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_options_validate(const tkm_options *o, char *err,
                                         size_t errlen)
{
    tkm_code rc;

    for (size_t i = 0; i < NOPTS; i++) {
        rc = check_value(o, i, err, errlen);
        if (rc != TKM_OK)
            return rc;
    }
    if (memchr(o->worker_id, '\0', sizeof(o->worker_id)) == NULL ||
        (o->worker_id[0] != '\0' && !tkm__worker_id_valid(o->worker_id))) {
        tkm__fmt(err, errlen,
                 "worker id '%.140s' is invalid: it must match "
                 "[A-Za-z0-9_.:@-]{1,128}",
                 o->worker_id);
        return TKM_ECONFIG;
    }
    return tkm__options_relations(o, NULL, err, errlen);
}

/* ---- for the YAML loader and the plugin -------------------------------- */

int tkm__option_is_list(int index)
{
    return index >= 0 && (size_t)index < NOPTS && table[index].type == OT_LIST;
}

int tkm__option_is_text(int index)
{
    return index >= 0 && (size_t)index < NOPTS &&
           (table[index].type == OT_TEXT || table[index].type == OT_LIST);
}
