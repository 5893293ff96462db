/*
 * Options: defaults, validation, the environment, and the YAML loader (the
 * only file that talks to libyaml).  One table describes every numeric key,
 * so the loader and tkm_options_validate() check the same ranges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "internal.h"

#define BIG INT64_C(1000000000)

typedef struct int_key {
    const char *section; /* "redis", "bucket" */
    const char *name;
    size_t offset; /* of an int64_t in tkm_options */
    int64_t min, max;
} int_key;

#define OPT(field) offsetof(tkm_options, field)

static const int_key int_keys[] = {
    {"redis", "timeout_ms", OPT(timeout_ms), 1, 600000},
    {"bucket", "refill_period_ms", OPT(bucket.refill_period_ms), 1, 86400000},
    {"bucket", "capacity", OPT(bucket.capacity), 0, BIG},
    {"bucket", "min_start_balance", OPT(bucket.min_start_balance), 1, BIG},
    {"bucket", "soft_floor", OPT(bucket.soft_floor), -BIG, BIG},
    {"bucket", "recharge_target", OPT(bucket.recharge_target), -BIG, BIG},
    {"bucket", "low_cost_max", OPT(bucket.low_cost_max), 0, BIG},
    {"bucket", "low_cost_target", OPT(bucket.low_cost_target), -BIG, BIG},
    {"bucket", "recharge_timeout_s", OPT(bucket.recharge_timeout_s), 1, 604800},
    {"bucket", "max_deficit", OPT(bucket.max_deficit), -BIG, 0},
    {"bucket", "lease_ttl_s", OPT(bucket.lease_ttl_s), 1, 86400},
    {"bucket", "max_wait_s", OPT(bucket.max_wait_s), 0, 86400},
    {"heartbeat", "min_interval_ms", OPT(heartbeat.min_interval_ms), 0,
     3600000},
    {"heartbeat", "stale_after_s", OPT(heartbeat.stale_after_s), 1, 604800},
    {"heartbeat", "retention_s", OPT(heartbeat.retention_s), 60, 2592000},
    {"heartbeat", "wait_slice_ms", OPT(heartbeat.wait_slice_ms), 10, 60000},
    {"keepa", "timeout_ms", OPT(keepa.timeout_ms), 100, 600000},
    {"keepa", "max_retries", OPT(keepa.max_retries), 0, 100},
    {"keepa", "token_sync_min_interval_s", OPT(keepa.token_sync_min_interval_s),
     0, 86400},
    {"stall", "tokens", OPT(stall.tokens), -1, BIG},
    {"stall", "heartbeat_age_s", OPT(stall.heartbeat_age_s), 1, 604800},
    {"stall", "confirmations", OPT(stall.confirmations), 1, 1000},
    {"stall", "shared_cause_window_s", OPT(stall.shared_cause_window_s), 1,
     86400},
    {"stall", "shared_cause_min_workers", OPT(stall.shared_cause_min_workers),
     2, 1000000},
    {"recovery", "timeout_s", OPT(recovery.timeout_s), 1, 86400},
    {"recovery", "cooldown_s", OPT(recovery.cooldown_s), 0, 604800},
    {"recovery", "max_actions", OPT(recovery.max_actions), 1, 1000},
    {"recovery", "window_s", OPT(recovery.window_s), 60, 2592000},
    {"recovery", "grace_s", OPT(recovery.grace_s), 0, 86400},
};

/* Fractions: the stall ratio and the shared-cause share, in (0, 1]. */
typedef struct ratio_key {
    const char *section;
    const char *name;
    size_t offset; /* of a double in tkm_options */
} ratio_key;

static const ratio_key ratio_keys[] = {
    {"stall", "tokens_ratio", OPT(stall.tokens_ratio)},
    {"stall", "shared_cause_share", OPT(stall.shared_cause_share)},
};
#define N_INT_KEYS (sizeof(int_keys) / sizeof(int_keys[0]))

static int64_t *int_field(tkm_options *o, const int_key *k)
{
    return (int64_t *)(void *)((char *)o + k->offset);
}

static int64_t int_value(const tkm_options *o, const int_key *k)
{
    return *(const int64_t *)(const void *)((const char *)o + k->offset);
}

TKM_EXPORT void tkm_options_init(tkm_options *o)
{
    memset(o, 0, sizeof(*o));
    tkm__copy(o->pool, sizeof(o->pool), "keepa");
    tkm__copy(o->redis_url, sizeof(o->redis_url), "redis://127.0.0.1:6379/0");
    o->timeout_ms = 500;
    o->bucket.refill_period_ms = 60000;
    o->bucket.capacity = 0;
    o->bucket.min_start_balance = 1;
    o->bucket.soft_floor = 20;
    o->bucket.recharge_target = 50;
    o->bucket.low_cost_max = 10;
    o->bucket.low_cost_target = 20;
    o->bucket.recharge_timeout_s = 3600;
    o->bucket.max_deficit = -180;
    o->bucket.lease_ttl_s = 120;
    o->bucket.max_wait_s = 60;
    o->heartbeat.min_interval_ms = 1000;
    o->heartbeat.stale_after_s = 900;
    o->heartbeat.retention_s = 86400;
    o->heartbeat.wait_slice_ms = 2000;
    tkm__copy(o->keepa.base_url, sizeof(o->keepa.base_url),
              "https://api.keepa.com");
    o->keepa.timeout_ms = 30000;
    o->keepa.max_retries = 5;
    o->keepa.token_sync_min_interval_s = 300;
    tkm_stall_options_init(&o->stall);
    tkm_recovery_options_init(&o->recovery);
}

/* `where` prefixes messages ("file:line:col: " or ""). */
static tkm_code check_relations(const tkm_options *o, const char *where,
                                char *errbuf, size_t errlen)
{
    const tkm_bucket_options *b = &o->bucket;

    if (b->soft_floor < b->max_deficit) {
        tkm__fmt(errbuf, errlen,
                 "%sbucket.soft_floor %lld is below bucket.max_deficit %lld",
                 where, (long long)b->soft_floor, (long long)b->max_deficit);
        return TKM_ECONFIG;
    }
    if (b->soft_floor > b->recharge_target) {
        tkm__fmt(errbuf, errlen,
                 "%sbucket.soft_floor %lld is above bucket.recharge_target "
                 "%lld: recharge would end below the floor that starts it",
                 where, (long long)b->soft_floor,
                 (long long)b->recharge_target);
        return TKM_ECONFIG;
    }
    if (o->recovery.exec_argc > 0 && o->recovery.webhook[0] != '\0') {
        tkm__fmt(errbuf, errlen,
                 "%srecovery.exec and recovery.webhook are both set: choose "
                 "one action",
                 where);
        return TKM_ECONFIG;
    }
    if (o->heartbeat.stale_after_s > o->heartbeat.retention_s) {
        tkm__fmt(errbuf, errlen,
                 "%sheartbeat.stale_after_s %lld is above "
                 "heartbeat.retention_s %lld: records would vanish while "
                 "still judged",
                 where, (long long)o->heartbeat.stale_after_s,
                 (long long)o->heartbeat.retention_s);
        return TKM_ECONFIG;
    }
    if (b->low_cost_target > b->recharge_target) {
        tkm__fmt(errbuf, errlen,
                 "%sbucket.low_cost_target %lld is above "
                 "bucket.recharge_target %lld",
                 where, (long long)b->low_cost_target,
                 (long long)b->recharge_target);
        return TKM_ECONFIG;
    }
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_options_validate(const tkm_options *o, char *errbuf,
                                         size_t errlen)
{
    tkm__url url;

    if (!tkm__pool_name_valid(o->pool)) {
        tkm__fmt(errbuf, errlen,
                 "pool name '%.80s' is invalid: it must match "
                 "[A-Za-z0-9_.-]{1,64}",
                 o->pool);
        return TKM_ECONFIG;
    }
    if (o->worker_id[0] != '\0' && !tkm__worker_id_valid(o->worker_id)) {
        tkm__fmt(errbuf, errlen,
                 "worker id '%.140s' is invalid: it must match "
                 "[A-Za-z0-9_.:@-]{1,128}",
                 o->worker_id);
        return TKM_ECONFIG;
    }
    if (tkm__url_parse(o->redis_url, &url, errbuf, errlen) != TKM_OK)
        return TKM_ECONFIG;
    for (size_t i = 0; i < N_INT_KEYS; i++) {
        const int_key *k = &int_keys[i];
        int64_t v = int_value(o, k);
        if (v < k->min || v > k->max) {
            tkm__fmt(errbuf, errlen, "%s.%s is %lld, outside %lld..%lld",
                     k->section, k->name, (long long)v, (long long)k->min,
                     (long long)k->max);
            return TKM_ECONFIG;
        }
    }
    return check_relations(o, "", errbuf, errlen);
}

TKM_EXPORT tkm_code tkm_options_from_env(tkm_options *o, char *errbuf,
                                         size_t errlen)
{
    const char *url = getenv("TOKENMGR_REDIS_URL");

    if (url != NULL && url[0] != '\0' &&
        tkm__copy(o->redis_url, sizeof(o->redis_url), url) != 0) {
        tkm__fmt(errbuf, errlen, "TOKENMGR_REDIS_URL is longer than %d bytes",
                 TKM_URL_MAX);
        return TKM_ECONFIG;
    }
    return TKM_OK;
}

/* ---- YAML ------------------------------------------------------------- */

typedef struct loader {
    const char *path;
    yaml_document_t *doc;
    tkm_options *opts;
    char *errbuf;
    size_t errlen;
} loader;

static tkm_code at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tkm_code at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[TKM__ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tkm__fmt(ld->errbuf, ld->errlen, "%s:%zu:%zu: %s", ld->path,
             node->start_mark.line + 1, node->start_mark.column + 1, msg);
    return TKM_ECONFIG;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static tkm_code set_string(loader *ld, const yaml_node_t *v, const char *key,
                           char *dst, size_t dstlen)
{
    if (v->type != YAML_SCALAR_NODE)
        return at(ld, v, "%s must be a string", key);
    if (tkm__copy(dst, dstlen, scalar(v)) != 0)
        return at(ld, v, "%s is longer than %zu bytes", key, dstlen - 1);
    return TKM_OK;
}

static tkm_code set_int(loader *ld, const yaml_node_t *v, const int_key *k)
{
    int64_t n;

    if (v->type != YAML_SCALAR_NODE ||
        v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        tkm_parse_int(scalar(v), INT64_MIN, INT64_MAX, &n) != TKM_OK)
        return at(ld, v, "%s.%s must be an integer, not '%.40s'", k->section,
                  k->name,
                  v->type == YAML_SCALAR_NODE ? scalar(v) : "(a collection)");
    if (n < k->min || n > k->max)
        return at(ld, v, "%s.%s is %lld, outside %lld..%lld", k->section,
                  k->name, (long long)n, (long long)k->min, (long long)k->max);
    *int_field(ld->opts, k) = n;
    return TKM_OK;
}

static tkm_code set_ratio(loader *ld, const yaml_node_t *v, const ratio_key *k)
{
    double d;

    if (v->type != YAML_SCALAR_NODE ||
        v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        tkm_parse_double(scalar(v), -1e9, 1e9, &d) != TKM_OK)
        return at(ld, v, "%s.%s must be a number, not '%.40s'", k->section,
                  k->name,
                  v->type == YAML_SCALAR_NODE ? scalar(v) : "(a collection)");
    if (!(d > 0.0 && d <= 1.0))
        return at(ld, v, "%s.%s is %g, outside (0, 1]", k->section, k->name, d);
    *(double *)(void *)((char *)ld->opts + k->offset) = d;
    return TKM_OK;
}

static tkm_code set_bool(loader *ld, const yaml_node_t *v, const char *key,
                         int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    if (v->type == YAML_SCALAR_NODE &&
        v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; i < 3; i++) {
            if (strcmp(scalar(v), yes[i]) == 0 ||
                strcmp(scalar(v), no[i]) == 0) {
                *out = strcmp(scalar(v), yes[i]) == 0;
                return TKM_OK;
            }
        }
    }
    return at(ld, v, "%s must be true or false", key);
}

/* recovery.exec: a sequence of strings, the argv of the command. */
static tkm_code set_exec(loader *ld, const yaml_node_t *v)
{
    tkm_recovery_options *r = &ld->opts->recovery;
    yaml_node_item_t *it;
    int n = 0;

    if (v->type != YAML_SEQUENCE_NODE)
        return at(ld, v, "recovery.exec must be a list: [\"/path\", \"arg\"]");
    for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        const yaml_node_t *e = yaml_document_get_node(ld->doc, *it);
        if (e->type != YAML_SCALAR_NODE)
            return at(ld, e, "recovery.exec items must be strings");
        if (n >= TKM_EXEC_ARGS_MAX)
            return at(ld, e, "recovery.exec has more than %d items",
                      TKM_EXEC_ARGS_MAX);
        if (tkm__copy(r->exec[n], sizeof(r->exec[n]), scalar(e)) != 0)
            return at(ld, e, "recovery.exec item longer than %d bytes",
                      TKM_EXEC_ARG_MAX - 1);
        n++;
    }
    if (n == 0)
        return at(ld, v, "recovery.exec is empty");
    if (r->exec[0][0] != '/')
        return at(ld, v, "recovery.exec: \"%s\" is not an absolute path",
                  r->exec[0]);
    r->exec_argc = n;
    return TKM_OK;
}

typedef tkm_code (*pair_fn)(loader *ld, const char *section,
                            const yaml_node_t *key, const yaml_node_t *value);

/* Walk a mapping, rejecting duplicate and non-scalar keys. */
static tkm_code each_pair(loader *ld, const yaml_node_t *map,
                          const char *section, pair_fn fn)
{
    yaml_node_pair_t *p;

    if (map->type != YAML_MAPPING_NODE)
        return at(ld, map, "%s%s must be a mapping",
                  section[0] ? section : "the document",
                  section[0] ? " section" : "");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return at(ld, k, "keys must be plain names");
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *prev = yaml_document_get_node(ld->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE &&
                strcmp(scalar(prev), scalar(k)) == 0)
                return at(ld, k, "duplicate key '%s%s%s'", section,
                          section[0] ? "." : "", scalar(k));
        }
        tkm_code rc = fn(ld, section, k, v);
        if (rc != TKM_OK)
            return rc;
    }
    return TKM_OK;
}

static tkm_code section_pair(loader *ld, const char *section,
                             const yaml_node_t *k, const yaml_node_t *v)
{
    const char *name = scalar(k);

    if (strcmp(section, "redis") == 0 && strcmp(name, "url") == 0) {
        char why[TKM__ERR_MAX];
        tkm__url url;
        tkm_code rc = set_string(ld, v, "redis.url", ld->opts->redis_url,
                                 sizeof(ld->opts->redis_url));
        if (rc == TKM_OK && tkm__url_parse(ld->opts->redis_url, &url, why,
                                           sizeof(why)) != TKM_OK)
            return at(ld, v, "redis.url: %s", why);
        return rc;
    }
    if (strcmp(section, "redis") == 0 && strcmp(name, "password_file") == 0)
        return set_string(ld, v, "redis.password_file",
                          ld->opts->redis_password_file,
                          sizeof(ld->opts->redis_password_file));
    if (strcmp(section, "keepa") == 0 && strcmp(name, "base_url") == 0)
        return set_string(ld, v, "keepa.base_url", ld->opts->keepa.base_url,
                          sizeof(ld->opts->keepa.base_url));
    if (strcmp(section, "keepa") == 0 && strcmp(name, "key_file") == 0)
        return set_string(ld, v, "keepa.key_file", ld->opts->keepa.key_file,
                          sizeof(ld->opts->keepa.key_file));
    if (strcmp(section, "recovery") == 0 && strcmp(name, "exec") == 0)
        return set_exec(ld, v);
    if (strcmp(section, "recovery") == 0 && strcmp(name, "webhook") == 0)
        return set_string(ld, v, "recovery.webhook", ld->opts->recovery.webhook,
                          sizeof(ld->opts->recovery.webhook));
    if (strcmp(section, "recovery") == 0 && strcmp(name, "dry_run") == 0)
        return set_bool(ld, v, "recovery.dry_run", &ld->opts->recovery.dry_run);
    for (size_t i = 0; i < sizeof(ratio_keys) / sizeof(ratio_keys[0]); i++) {
        if (strcmp(ratio_keys[i].section, section) == 0 &&
            strcmp(ratio_keys[i].name, name) == 0)
            return set_ratio(ld, v, &ratio_keys[i]);
    }
    for (size_t i = 0; i < N_INT_KEYS; i++) {
        if (strcmp(int_keys[i].section, section) == 0 &&
            strcmp(int_keys[i].name, name) == 0)
            return set_int(ld, v, &int_keys[i]);
    }
    return at(ld, k, "unknown key '%s.%s'", section, name);
}

static tkm_code top_pair(loader *ld, const char *section, const yaml_node_t *k,
                         const yaml_node_t *v)
{
    const char *name = scalar(k);
    tkm_code rc;

    (void)section;
    if (strcmp(name, "pool") == 0) {
        rc = set_string(ld, v, "pool", ld->opts->pool, sizeof(ld->opts->pool));
        if (rc == TKM_OK && !tkm__pool_name_valid(ld->opts->pool))
            return at(ld, v,
                      "pool name '%s' is invalid: it must match "
                      "[A-Za-z0-9_.-]{1,64}",
                      ld->opts->pool);
        return rc;
    }
    if (strcmp(name, "redis") == 0 || strcmp(name, "bucket") == 0 ||
        strcmp(name, "heartbeat") == 0 || strcmp(name, "keepa") == 0 ||
        strcmp(name, "stall") == 0 || strcmp(name, "recovery") == 0)
        return each_pair(ld, v, name, section_pair);
    return at(ld, k, "unknown key '%s'", name);
}

/*
 * Both loaders share this: the parser's input is set (a file or a buffer),
 * the rest (YAML errors, every key, the relations) is one code path.
 */
static tkm_code load(yaml_parser_t *parser, const char *path, tkm_options *opts,
                     char *errbuf, size_t errlen)
{
    yaml_document_t doc;
    yaml_node_t *root;
    tkm_code rc;
    loader ld = {path, &doc, opts, errbuf, errlen};
    char where[TKM__ERR_MAX];

    if (!yaml_parser_load(parser, &doc)) {
        tkm__fmt(errbuf, errlen, "%s:%zu:%zu: malformed YAML: %s%s%s", path,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "syntax error",
                 parser->context ? " " : "",
                 parser->context ? parser->context : "");
        return TKM_ECONFIG;
    }
    root = yaml_document_get_root_node(&doc);
    rc = root == NULL ? TKM_OK : each_pair(&ld, root, "", top_pair);
    yaml_document_delete(&doc);
    if (rc != TKM_OK)
        return rc;
    tkm__fmt(where, sizeof(where), "%s: ", path);
    return check_relations(opts, where, errbuf, errlen);
}

tkm_code tkm__config_load_string(const char *name, const char *text, size_t len,
                                 tkm_options *opts, char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    tkm_code rc;

    if (!yaml_parser_initialize(&parser)) {
        tkm__fmt(errbuf, errlen, "%s: out of memory", name);
        return TKM_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rc = load(&parser, name, opts, errbuf, errlen);
    yaml_parser_delete(&parser);
    return rc;
}

TKM_EXPORT tkm_code tkm_config_load_file(const char *path, tkm_options *opts,
                                         char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    FILE *fp;
    tkm_code rc;

    fp = fopen(path, "rb");
    if (fp == NULL) {
        tkm__fmt(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        return TKM_EIO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        tkm__fmt(errbuf, errlen, "%s: out of memory", path);
        return TKM_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    rc = load(&parser, path, opts, errbuf, errlen);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}
