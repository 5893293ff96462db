/*
 * <Pool> blocks of the collectd plugin: types, ranges and relations of every
 * option, checked on liboconfig's plain structs so that the tests need no
 * daemon.  collectd's own cf_util_* helpers would tie this file to the
 * collectd executable's symbols; the few conversions they do are here.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool_config.h"

#define ERR_MAX 1024

typedef struct parser {
    const char *pool;    /* the block's name, for messages */
    const char *section; /* "<Recovery> " inside that block, else "" */
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(parser *p, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->err != NULL && p->errlen > 0)
        snprintf(p->err, p->errlen, "pool \"%.80s\": %s%s", p->pool, p->section,
                 msg);
    return -1;
}

static const char *type_name(const oconfig_item_t *ci)
{
    if (ci->values_num == 0)
        return "nothing";
    if (ci->values_num > 1)
        return "several values";
    switch (ci->values[0].type) {
    case OCONFIG_TYPE_STRING:
        return "a string";
    case OCONFIG_TYPE_NUMBER:
        return "a number";
    case OCONFIG_TYPE_BOOLEAN:
        return "a boolean";
    }
    return "an unknown type";
}

/* An option is a plain line: `Key value...`, never a <Key> block. */
static int plain(parser *p, const oconfig_item_t *ci)
{
    if (ci->children_num > 0)
        return fail(p, "%s is an option, not a <%s> block", ci->key, ci->key);
    return 0;
}

static int one_string(parser *p, const oconfig_item_t *ci, const char **out)
{
    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING)
        return fail(p, "%s needs one string in quotes, not %s", ci->key,
                    type_name(ci));
    *out = ci->values[0].value.string;
    return 0;
}

static int one_number(parser *p, const oconfig_item_t *ci, double *out)
{
    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_NUMBER)
        return fail(p, "%s needs one number, not %s", ci->key, type_name(ci));
    *out = ci->values[0].value.number;
    return 0;
}

static int whole(parser *p, const oconfig_item_t *ci, int64_t min, int64_t max,
                 const char *unit, int64_t *out)
{
    double v;

    if (one_number(p, ci, &v) != 0)
        return -1;
    if (!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max)
        return fail(p, "%s is %g: it must be a whole number%s%s in %lld..%lld",
                    ci->key, v, unit[0] ? " of " : "", unit, (long long)min,
                    (long long)max);
    *out = (int64_t)v;
    return 0;
}

/* A number in (min, max] when min_open, else [min, max]. */
static int real(parser *p, const oconfig_item_t *ci, double min, int min_open,
                double max, double *out)
{
    double v;

    if (one_number(p, ci, &v) != 0)
        return -1;
    if (!isfinite(v) || v > max || v < min || (min_open && v == min))
        return fail(p, "%s is %g: it must be in %s%g..%g]", ci->key, v,
                    min_open ? "(" : "[", min, max);
    *out = v;
    return 0;
}

/* true/false as collectd writes booleans, or their usual spellings. */
static int boolean(parser *p, const oconfig_item_t *ci, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num == 1 && ci->values[0].type == OCONFIG_TYPE_BOOLEAN) {
        *out = ci->values[0].value.boolean != 0;
        return 0;
    }
    if (ci->values_num == 1 && ci->values[0].type == OCONFIG_TYPE_STRING) {
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(ci->values[0].value.string, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (strcasecmp(ci->values[0].value.string, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
    }
    return fail(p, "%s needs true or false, not %s", ci->key, type_name(ci));
}

/* ---- <Recovery> ---------------------------------------------------------
 */

static int recovery_exec(parser *p, const oconfig_item_t *ci,
                         tkm__recovery_conf *r)
{
    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num < 1)
        return fail(p, "Exec needs the command: an absolute path, then its "
                       "arguments, each in quotes");
    for (int i = 0; i < ci->values_num; i++) {
        if (ci->values[i].type != OCONFIG_TYPE_STRING)
            return fail(p,
                        "Exec: argument %d is not a string in quotes (no "
                        "shell runs it; quote every word)",
                        i + 1);
    }
    /* No shell and no PATH search: the watchdog's relative
     * ./kill_everything_force.sh ran whatever the working directory held. */
    if (ci->values[0].value.string[0] != '/')
        return fail(p,
                    "Exec \"%.200s\" is not an absolute path (no shell and "
                    "no PATH search run it)",
                    ci->values[0].value.string);
    if (ci->values_num > TKM_EXEC_ARGS_MAX)
        return fail(p, "Exec has more than %d words", TKM_EXEC_ARGS_MAX);
    for (int i = 0; i < ci->values_num; i++) {
        const char *word = ci->values[i].value.string;

        if (strlen(word) >= TKM_EXEC_ARG_MAX)
            return fail(p, "Exec word %d is longer than %d bytes", i + 1,
                        TKM_EXEC_ARG_MAX - 1);
        memcpy(r->exec[i], word, strlen(word) + 1);
    }
    r->exec_argc = ci->values_num;
    return 0;
}

static int webhook(parser *p, const oconfig_item_t *ci, tkm__recovery_conf *r);

enum { NNAMES = 8 };
static const char *const recovery_names[NNAMES] = {
    "Exec",   "Timeout", "Cooldown", "MaxActions",
    "Window", "DryRun",  "Grace",    "Webhook"};

static int recovery(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    const char *const *names = recovery_names;
    tkm__recovery_conf *r = &c->recovery;
    int seen[NNAMES] = {0};

    if (ci->values_num != 0)
        return fail(p, "<Recovery> takes no value, only options inside");
    r->configured = 1;
    p->section = "<Recovery> ";
    for (int i = 0; i < ci->children_num; i++) {
        const oconfig_item_t *o = &ci->children[i];
        size_t k;
        int rc;

        for (k = 0; k < NNAMES && strcasecmp(o->key, names[k]) != 0; k++)
            ;
        if (k == NNAMES)
            return fail(p,
                        "unknown option '%.80s' (known: Exec, Webhook, "
                        "Timeout, Cooldown, MaxActions, Window, Grace, "
                        "DryRun)",
                        o->key);
        if (seen[k]++)
            return fail(p, "%s is given twice", names[k]);
        switch (k) {
        case 0:
            rc = recovery_exec(p, o, r);
            break;
        case 1:
            rc = whole(p, o, 1, 3600, "seconds", &r->timeout_s);
            break;
        case 2:
            rc = whole(p, o, 0, 604800, "seconds", &r->cooldown_s);
            break;
        case 3:
            rc = whole(p, o, 1, 1000, "", &r->max_actions);
            break;
        case 4:
            rc = whole(p, o, 1, 604800, "seconds", &r->window_s);
            break;
        case 5:
            rc = boolean(p, o, &r->dry_run);
            break;
        case 6:
            rc = whole(p, o, 0, 86400, "seconds", &r->grace_s);
            break;
        default:
            rc = webhook(p, o, r);
            break;
        }
        if (rc != 0)
            return -1;
    }
    if (r->exec_argc > 0 && r->webhook[0] != '\0')
        return fail(p, "Exec and Webhook exclude each other: give one");
    p->section = "";
    return 0;
}

static int webhook(parser *p, const oconfig_item_t *ci, tkm__recovery_conf *r)
{
    const char *url;

    if (one_string(p, ci, &url) != 0)
        return -1;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return fail(p, "Webhook must be an http:// or https:// URL");
    if (strlen(url) >= sizeof(r->webhook))
        return fail(p, "Webhook is longer than %d bytes", TKM_URL_MAX);
    memcpy(r->webhook, url, strlen(url) + 1);
    return 0;
}

/* ---- <Pool> -------------------------------------------------------------
 */

enum pool_option {
    OPT_CONFIG_FILE,
    OPT_REDIS_URL,
    OPT_LAYOUT,
    OPT_TIMEOUT,
    OPT_CAPACITY,
    OPT_STALL_TOKENS,
    OPT_STALL_RATIO,
    OPT_STALL_AGE,
    OPT_STALL_CONFIRM,
    OPT_RECOVERY,
    OPT_SHARED_SHARE,
    OPT_SHARED_WINDOW,
    OPT_SHARED_MIN,
    OPT_WORKER_METRICS,
    OPT_COUNT
};

static const char *const option_names[OPT_COUNT] = {
    "ConfigFile",
    "RedisURL",
    "Layout",
    "Timeout",
    "Capacity",
    "StallTokens",
    "StallTokensRatio",
    "StallHeartbeatAge",
    "StallConfirmations",
    "Recovery",
    "SharedCauseShare",
    "SharedCauseWindow",
    "SharedCauseMinWorkers",
    "WorkerMetrics",
};

static int option_index(const char *key)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        if (strcasecmp(key, option_names[i]) == 0)
            return i;
    }
    return -1;
}

static int set_url(parser *p, const oconfig_item_t *ci, tkm_options *o)
{
    const char *url;
    tkm_options probe;
    char why[ERR_MAX];

    if (one_string(p, ci, &url) != 0)
        return -1;
    if (strlen(url) >= sizeof(o->redis_url))
        return fail(p, "RedisURL is longer than %d bytes", TKM_URL_MAX);
    /* Checked alone, so the message is about the URL and nothing else; the
     * library's message never shows a password. */
    tkm_options_init(&probe);
    snprintf(probe.redis_url, sizeof(probe.redis_url), "%s", url);
    if (tkm_options_validate(&probe, why, sizeof(why)) != TKM_OK)
        return fail(p, "RedisURL: %s", why);
    memcpy(o->redis_url, probe.redis_url, sizeof(o->redis_url));
    return 0;
}

static int set_layout(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    const char *v;

    if (one_string(p, ci, &v) != 0)
        return -1;
    if (strcasecmp(v, "native") == 0)
        c->layout = TKM__LAYOUT_NATIVE;
    else if (strcasecmp(v, "legacy") == 0)
        c->layout = TKM__LAYOUT_LEGACY;
    else
        return fail(p, "Layout \"%.40s\" is neither \"native\" nor \"legacy\"",
                    v);
    return 0;
}

static int set_option(parser *p, int opt, const oconfig_item_t *ci,
                      tkm__pool_conf *c)
{
    switch (opt) {
    case OPT_REDIS_URL:
        return set_url(p, ci, &c->opts);
    case OPT_LAYOUT:
        return set_layout(p, ci, c);
    case OPT_TIMEOUT:
        return whole(p, ci, 1, 600000, "milliseconds", &c->opts.timeout_ms);
    case OPT_CAPACITY:
        return whole(p, ci, 1, 1000000000, "tokens", &c->capacity);
    case OPT_STALL_TOKENS:
        return real(p, ci, 0, 0, 1e9, &c->stall_tokens);
    case OPT_STALL_RATIO:
        return real(p, ci, 0, 1, 1, &c->stall_ratio);
    case OPT_STALL_AGE:
        return whole(p, ci, 1, 604800, "seconds", &c->stall_age_s);
    case OPT_STALL_CONFIRM:
        return whole(p, ci, 1, 1000, "reads", &c->stall_confirm);
    case OPT_RECOVERY:
        return recovery(p, ci, c);
    case OPT_SHARED_SHARE:
        return real(p, ci, 0, 1, 1, &c->opts.stall.shared_cause_share);
    case OPT_SHARED_WINDOW:
        return whole(p, ci, 1, 86400, "seconds",
                     &c->opts.stall.shared_cause_window_s);
    case OPT_SHARED_MIN:
        return whole(p, ci, 2, 1000000, "workers",
                     &c->opts.stall.shared_cause_min_workers);
    case OPT_WORKER_METRICS:
        return boolean(p, ci, &c->worker_metrics);
    }
    return 0;
}

static int load_file(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    const char *path;
    char why[ERR_MAX];

    if (one_string(p, ci, &path) != 0)
        return -1;
    if (tkm_config_load_file(path, &c->opts, why, sizeof(why)) != TKM_OK)
        return fail(p, "ConfigFile: %s", why);
    return 0;
}

static void defaults(tkm__pool_conf *c)
{
    memset(c, 0, sizeof(*c));
    tkm_options_init(&c->opts);
    /* No URL until RedisURL or the file gives one: the library's default
     * (127.0.0.1:6379) is not a choice a monitor should make silently. */
    c->opts.redis_url[0] = '\0';
    c->layout = TKM__LAYOUT_NATIVE;
    c->stall_tokens = -1;
    c->stall_ratio = -1;
    c->stall_age_s = -1;
    /* -1: not given; resolved from the ConfigFile (or its defaults). */
    c->stall_confirm = -1;
    c->recovery.timeout_s = -1;
    c->recovery.cooldown_s = -1;
    c->recovery.max_actions = -1;
    c->recovery.window_s = -1;
    c->recovery.grace_s = -1;
    c->recovery.dry_run = -1;
}

/* What the block did not say comes from the file; the library's guard and
 * rule get the result. */
static int resolve(parser *p, tkm__pool_conf *c)
{
    tkm_stall_options *st = &c->opts.stall;
    tkm_recovery_options *ro = &c->opts.recovery;
    tkm__recovery_conf *r = &c->recovery;
    char why[ERR_MAX];

    if (c->stall_tokens >= 0) {
        st->tokens = (int64_t)c->stall_tokens;
    } else if (c->stall_ratio > 0) {
        st->tokens = -1;
        st->tokens_ratio = c->stall_ratio;
    }
    if (c->stall_confirm < 0)
        c->stall_confirm = st->confirmations;
    st->confirmations = c->stall_confirm;
    st->heartbeat_age_s = c->stall_age_s;
#define FROM_FILE(field)                                                       \
    do {                                                                       \
        if (r->field < 0)                                                      \
            r->field = ro->field;                                              \
        ro->field = r->field;                                                  \
    } while (0)
    FROM_FILE(timeout_s);
    FROM_FILE(cooldown_s);
    FROM_FILE(max_actions);
    FROM_FILE(window_s);
    FROM_FILE(grace_s);
    FROM_FILE(dry_run);
#undef FROM_FILE
    /* The block's Exec or Webhook replaces the file's, whichever it was. */
    if (r->webhook[0] != '\0' || r->exec_argc > 0) {
        memcpy(ro->webhook, r->webhook, sizeof(ro->webhook));
        memcpy(ro->exec, r->exec, sizeof(ro->exec));
        ro->exec_argc = r->exec_argc;
    }
    if (r->configured && ro->exec_argc == 0 && ro->webhook[0] == '\0')
        return fail(p, "<Recovery> needs Exec (the recovery command) or "
                       "Webhook, here or in the ConfigFile's recovery:");
    if (r->configured && ro->exec_argc > 0) {
        const char *argv[TKM_EXEC_ARGS_MAX + 1];
        for (int i = 0; i < ro->exec_argc; i++)
            argv[i] = ro->exec[i];
        argv[ro->exec_argc] = NULL;
        /* Refused now, not at 3 a.m. when the pool stalls. */
        if (tkm_action_check_argv(argv, why, sizeof(why)) != TKM_OK)
            return fail(p, "<Recovery> %s", why);
    }
    return 0;
}

/* The block's name is the pool's: [A-Za-z0-9_.-]{1,64}. */
static int check_name(parser *p, const oconfig_item_t *block,
                      char name_out[TKM_POOL_MAX + 1])
{
    const char *name;
    char why[ERR_MAX];
    tkm_options probe;

    if (block->values_num != 1 ||
        block->values[0].type != OCONFIG_TYPE_STRING) {
        p->pool = "?";
        return fail(p, "<Pool> needs one name in quotes: <Pool \"keepa\">");
    }
    name = block->values[0].value.string;
    p->pool = name;
    tkm_options_init(&probe);
    if (strlen(name) >= sizeof(probe.pool))
        return fail(p, "the pool name is longer than %d characters",
                    TKM_POOL_MAX);
    memcpy(probe.pool, name, strlen(name) + 1);
    if (tkm_options_validate(&probe, why, sizeof(why)) != TKM_OK)
        return fail(p, "%s", why);
    memcpy(name_out, probe.pool, TKM_POOL_MAX + 1);
    return 0;
}

static int parse(parser *p, const oconfig_item_t *block, tkm__pool_conf *c)
{
    const oconfig_item_t *given[OPT_COUNT] = {NULL};
    char name[TKM_POOL_MAX + 1];
    char why[ERR_MAX];

    if (check_name(p, block, name) != 0)
        return -1;
    for (int i = 0; i < block->children_num; i++) {
        const oconfig_item_t *ci = &block->children[i];
        int opt = option_index(ci->key);
        if (opt < 0)
            return fail(p,
                        "unknown option '%.80s' (known: ConfigFile, RedisURL, "
                        "Layout, Timeout, Capacity, StallTokens, "
                        "StallTokensRatio, StallHeartbeatAge, "
                        "StallConfirmations, SharedCauseShare, "
                        "SharedCauseWindow, SharedCauseMinWorkers, "
                        "WorkerMetrics, <Recovery>)",
                        ci->key);
        if (given[opt] != NULL)
            return fail(p, "%s is given twice", option_names[opt]);
        given[opt] = ci;
    }
    /* The file first, wherever it appears: the block's options override it.
     */
    if (given[OPT_CONFIG_FILE] != NULL &&
        load_file(p, given[OPT_CONFIG_FILE], c) != 0)
        return -1;
    /* The block names the pool, whatever the file's `pool:` says. */
    memcpy(c->opts.pool, name, sizeof(c->opts.pool));
    c->capacity = c->opts.bucket.capacity;
    for (int i = 0; i < block->children_num; i++) {
        const oconfig_item_t *ci = &block->children[i];
        int opt = option_index(ci->key);
        if (opt != OPT_CONFIG_FILE && set_option(p, opt, ci, c) != 0)
            return -1;
    }

    if (c->opts.redis_url[0] == '\0')
        return fail(p, "no Redis URL: give RedisURL, or a ConfigFile with "
                       "redis.url");
    if (given[OPT_STALL_TOKENS] != NULL && given[OPT_STALL_RATIO] != NULL)
        return fail(p, "StallTokens and StallTokensRatio exclude each other: "
                       "give one");
    if (given[OPT_CAPACITY] != NULL && c->layout != TKM__LAYOUT_LEGACY)
        return fail(p, "Capacity applies to Layout \"legacy\" only (the "
                       "native layout takes bucket.capacity from its "
                       "ConfigFile)");
    /* workers_alive counts heartbeats younger than the stall age, so the
     * library judges liveness with the same age the stall rule will use. */
    if (c->stall_age_s < 0)
        c->stall_age_s = c->opts.stall.heartbeat_age_s;
    if (c->stall_age_s > c->opts.heartbeat.retention_s)
        return fail(p,
                    "StallHeartbeatAge %lld is above heartbeat.retention_s "
                    "%lld: heartbeats would be pruned before they are judged",
                    (long long)c->stall_age_s,
                    (long long)c->opts.heartbeat.retention_s);
    c->opts.heartbeat.stale_after_s = c->stall_age_s;
    if (resolve(p, c) != 0)
        return -1;
    if (tkm_options_validate(&c->opts, why, sizeof(why)) != TKM_OK)
        return fail(p, "%s", why);
    return 0;
}

int tkm__pool_conf_parse(const oconfig_item_t *block, tkm__pool_conf *out,
                         char *err, size_t errlen)
{
    parser p = {"?", "", err, errlen};

    defaults(out);
    if (parse(&p, block, out) != 0) {
        tkm__pool_conf_clear(out);
        return -1;
    }
    return 0;
}

void tkm__pool_conf_clear(tkm__pool_conf *c)
{
    if (c == NULL)
        return;
    /* The options may hold a Redis password. */
    memset(c, 0, sizeof(*c));
}

size_t tkm__pool_conf_names(const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < OPT_COUNT && n < max; i++)
        out[n++] = option_names[i];
    for (size_t i = 0; i < NNAMES && n < max; i++)
        out[n++] = recovery_names[i];
    return n;
}
