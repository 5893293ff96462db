/* The collectd plugin's <Pool> checks without collectd: config trees are
 * built by hand as liboconfig would parse them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "pool_config.h"
#include "suite.h"

/* ---- building oconfig trees -------------------------------------------- */

#define MAX_CHILDREN 16
#define MAX_VALUES   24 /* Exec with more words than allowed */

static oconfig_item_t *item_init(oconfig_item_t *it, const char *key)
{
    memset(it, 0, sizeof(*it));
    it->key = strdup(key);
    it->values = calloc(MAX_VALUES, sizeof(*it->values));
    it->children = calloc(MAX_CHILDREN, sizeof(*it->children));
    return it;
}

static oconfig_item_t *add(oconfig_item_t *parent, const char *key)
{
    ck_assert_int_lt(parent->children_num, MAX_CHILDREN);
    oconfig_item_t *it =
        item_init(&parent->children[parent->children_num++], key);
    it->parent = parent;
    return it;
}

static oconfig_item_t *str(oconfig_item_t *it, const char *s)
{
    ck_assert_int_lt(it->values_num, MAX_VALUES);
    oconfig_value_t *v = &it->values[it->values_num++];

    v->type = OCONFIG_TYPE_STRING;
    v->value.string = strdup(s);
    return it;
}

static oconfig_item_t *num(oconfig_item_t *it, double n)
{
    oconfig_value_t *v = &it->values[it->values_num++];

    v->type = OCONFIG_TYPE_NUMBER;
    v->value.number = n;
    return it;
}

static oconfig_item_t *boolean(oconfig_item_t *it, int b)
{
    oconfig_value_t *v = &it->values[it->values_num++];

    v->type = OCONFIG_TYPE_BOOLEAN;
    v->value.boolean = b;
    return it;
}

static void item_free(oconfig_item_t *it)
{
    for (int i = 0; i < it->values_num; i++) {
        if (it->values[i].type == OCONFIG_TYPE_STRING)
            free(it->values[i].value.string);
    }
    for (int i = 0; i < it->children_num; i++)
        item_free(&it->children[i]);
    free(it->values);
    free(it->children);
    free(it->key);
}

/* <Pool "name"> with RedisURL (NULL: none). */
static oconfig_item_t *pool_block(const char *name, const char *url)
{
    oconfig_item_t *b = item_init(malloc(sizeof(*b)), "Pool");

    if (name != NULL)
        str(b, name);
    if (url != NULL)
        str(add(b, "RedisURL"), url);
    return b;
}

static void block_free(oconfig_item_t *b)
{
    item_free(b);
    free(b);
}

static char err[2048];

static tkm__pool_conf parse_ok(oconfig_item_t *b)
{
    tkm__pool_conf c;

    err[0] = '\0';
    ck_assert_msg(tkm__pool_conf_parse(b, &c, err, sizeof(err)) == 0,
                  "rejected: %s", err);
    return c;
}

/* The block is refused with a message holding every word given. */
static void parse_fails(oconfig_item_t *b, const char *w1, const char *w2)
{
    tkm__pool_conf c;

    err[0] = '\0';
    ck_assert_msg(tkm__pool_conf_parse(b, &c, err, sizeof(err)) == -1,
                  "accepted a block that should fail on '%s'", w1);
    ck_assert_msg(strstr(err, w1) != NULL, "'%s' lacks '%s'", err, w1);
    ck_assert_msg(w2 == NULL || strstr(err, w2) != NULL, "'%s' lacks '%s'", err,
                  w2);
    ck_assert_msg(strchr(err, '\n') == NULL, "not one line: %s", err);
    block_free(b);
}

static char yaml_path[64];

static const char *yaml(const char *text)
{
    FILE *fp;

    snprintf(yaml_path, sizeof(yaml_path), "/tmp/tkm-plugin-yaml-XXXXXX");
    close(mkstemp(yaml_path));
    fp = fopen(yaml_path, "w");
    fputs(text, fp);
    fclose(fp);
    return yaml_path;
}

/* ---- accepted blocks --------------------------------------------------- */

START_TEST(test_defaults)
{
    oconfig_item_t *b = pool_block("keepa", "unix:///run/redis/redis.sock");
    tkm__pool_conf c = parse_ok(b);

    ck_assert_str_eq(c.opts.pool, "keepa");
    ck_assert_str_eq(c.opts.redis_url, "unix:///run/redis/redis.sock");
    ck_assert_int_eq(c.opts.timeout_ms, 500);
    ck_assert_int_eq(c.layout, TKM__LAYOUT_NATIVE);
    ck_assert_int_eq(c.opts.bucket.capacity, 0);
    ck_assert_int_eq(c.opts.stall.tokens, -1);
    ck_assert(c.opts.stall.tokens_ratio > 0.969 &&
              c.opts.stall.tokens_ratio < 0.971);
    ck_assert_int_eq(c.opts.stall.heartbeat_age_s, 900);
    ck_assert_int_eq(c.opts.heartbeat.stale_after_s, 900);
    ck_assert_int_eq(c.opts.stall.confirmations, 2);
    ck_assert(!c.recovery);
    ck_assert_int_eq(c.opts.recovery.exec_argc, 0);
    ck_assert_int_eq(c.nnotes, 0);
    tkm__pool_conf_clear(&c);
    block_free(b);
    /* Without RedisURL: Debian's redis-server as installed. */
    b = pool_block("keepa", NULL);
    c = parse_ok(b);
    ck_assert_str_eq(c.opts.redis_url, "redis://127.0.0.1:6379/0");
    tkm__pool_conf_clear(&c);
    block_free(b);
}
END_TEST

/* The example of CONTRACT.md, ConfigFile included. */
START_TEST(test_contract_example)
{
    const char *path = yaml("pool: other\n"
                            "redis:\n  url: redis://10.0.0.1:6380/2\n"
                            "  timeout_ms: 250\n"
                            "bucket:\n  capacity: 1500\n");
    oconfig_item_t *b = pool_block("keepa", NULL);
    oconfig_item_t *r;
    tkm__pool_conf c;

    str(add(b, "ConfigFile"), path);
    str(add(b, "RedisURL"), "unix:///run/redis/redis.sock");
    str(add(b, "Layout"), "native");
    num(add(b, "StallTokens"), 290);
    num(add(b, "StallHeartbeatAge"), 600);
    num(add(b, "StallConfirmations"), 3);
    r = add(b, "Recovery");
    str(str(add(r, "Exec"), "/bin/true"), "--graceful");
    num(add(r, "Timeout"), 60);
    num(add(r, "Cooldown"), 1800);
    num(add(r, "MaxActions"), 3);
    num(add(r, "Window"), 3600);
    boolean(add(r, "DryRun"), 0);
    c = parse_ok(b);
    /* The block's name and URL win over the file; the file's timeout stays.
     */
    ck_assert_str_eq(c.opts.pool, "keepa");
    ck_assert_str_eq(c.opts.redis_url, "unix:///run/redis/redis.sock");
    ck_assert_int_eq(c.opts.timeout_ms, 250);
    ck_assert_int_eq(c.opts.bucket.capacity, 1500);
    ck_assert_int_eq(c.opts.stall.tokens, 290);
    ck_assert_int_eq(c.opts.stall.heartbeat_age_s, 600);
    ck_assert_int_eq(c.opts.heartbeat.stale_after_s, 600);
    ck_assert_int_eq(c.opts.stall.confirmations, 3);
    ck_assert(c.recovery);
    ck_assert_int_eq(c.opts.recovery.exec_argc, 2);
    ck_assert_str_eq(c.opts.recovery.exec[0], "/bin/true");
    ck_assert_str_eq(c.opts.recovery.exec[1], "--graceful");
    ck_assert_int_eq(c.opts.recovery.timeout_s, 60);
    ck_assert_int_eq(c.opts.recovery.cooldown_s, 1800);
    ck_assert_int_eq(c.opts.recovery.max_actions, 3);
    ck_assert_int_eq(c.opts.recovery.window_s, 3600);
    ck_assert_int_eq(c.opts.recovery.dry_run, 0);
    /* The block overrode the file's URL: said once, both values shown. */
    ck_assert_int_eq(c.nnotes, 1);
    ck_assert_ptr_nonnull(strstr(c.notes[0], "<Pool \"keepa\"> RedisURL "
                                             "unix:///run/redis/redis.sock "
                                             "overrides redis.url "
                                             "redis://10.0.0.1:6380/2"));
    tkm__pool_conf_clear(&c);
    block_free(b);
    unlink(path);
}
END_TEST

START_TEST(test_config_file_alone)
{
    const char *path = yaml("redis:\n  url: unix:///tmp/r.sock\n");
    oconfig_item_t *b = pool_block("p1", NULL);
    tkm__pool_conf c;

    /* The options override the file wherever ConfigFile appears. */
    num(add(b, "Timeout"), 1500);
    str(add(b, "ConfigFile"), path);
    c = parse_ok(b);
    ck_assert_str_eq(c.opts.redis_url, "unix:///tmp/r.sock");
    ck_assert_int_eq(c.opts.timeout_ms, 1500);
    tkm__pool_conf_clear(&c);
    block_free(b);
    unlink(path);
}
END_TEST

START_TEST(test_legacy)
{
    const char *path =
        yaml("redis:\n  url: unix:///tmp/r.sock\nbucket:\n  capacity: 400\n");
    oconfig_item_t *b = pool_block("old", NULL);
    tkm__pool_conf c;

    str(add(b, "ConfigFile"), path);
    str(add(b, "Layout"), "legacy");
    c = parse_ok(b);
    ck_assert_int_eq(c.layout, TKM__LAYOUT_LEGACY);
    ck_assert_int_eq(c.opts.bucket.capacity, 400); /* the file's */
    tkm__pool_conf_clear(&c);
    num(add(b, "Capacity"), 300);
    c = parse_ok(b);
    ck_assert_int_eq(c.opts.bucket.capacity, 300);
    tkm__pool_conf_clear(&c);
    block_free(b);
    unlink(path);
}
END_TEST

/* `Recovery true`: collectd 5.12 drops an empty <Recovery> block, so the
 * shipped drop-in turns recovery on with a line and leaves the rest to the
 * ConfigFile's recovery: section. */
START_TEST(test_recovery_line)
{
    const char *path = yaml("recovery:\n  exec: [\"/bin/true\", \"-x\"]\n"
                            "  cooldown_s: 900\n");
    oconfig_item_t *b = pool_block("keepa", NULL);
    oconfig_item_t *line;
    tkm__pool_conf c;

    str(add(b, "ConfigFile"), path);
    line = boolean(add(b, "Recovery"), 1);
    c = parse_ok(b);
    ck_assert(c.recovery);
    ck_assert_int_eq(c.opts.recovery.exec_argc, 2);
    ck_assert_int_eq(c.opts.recovery.cooldown_s, 900);
    tkm__pool_conf_clear(&c);
    line->values[0].value.boolean = 0;
    c = parse_ok(b);
    ck_assert(!c.recovery);
    tkm__pool_conf_clear(&c);
    str(add(line, "Timeout"), "5");
    parse_fails(b, "<Recovery false> takes no options", NULL);
    unlink(path);
    /* On without an action anywhere: refused now, not at 3 a.m. */
    b = pool_block("keepa", NULL);
    boolean(add(b, "Recovery"), 1);
    parse_fails(b, "<Recovery> needs Exec", NULL);
}
END_TEST

START_TEST(test_booleans_and_ratio)
{
    oconfig_item_t *b = pool_block("p", "unix:///tmp/r.sock");
    oconfig_item_t *r = add(b, "Recovery");
    oconfig_item_t *dry;
    tkm__pool_conf c;

    num(add(b, "StallTokensRatio"), 0.97);
    str(add(r, "Exec"), "/bin/true");
    dry = str(add(r, "DryRun"), "yes");
    c = parse_ok(b);
    ck_assert(c.opts.stall.tokens_ratio > 0.969 &&
              c.opts.stall.tokens_ratio < 0.971);
    ck_assert_int_eq(c.opts.recovery.dry_run, 1);
    ck_assert_int_eq(c.opts.recovery.timeout_s, 60); /* the defaults */
    ck_assert_int_eq(c.opts.recovery.cooldown_s, 1800);
    tkm__pool_conf_clear(&c);
    free(dry->values[0].value.string);
    dry->values_num = 0;
    boolean(dry, 1);
    c = parse_ok(b);
    ck_assert_int_eq(c.opts.recovery.dry_run, 1);
    tkm__pool_conf_clear(&c);
    block_free(b);
}
END_TEST

/* ---- refused blocks ---------------------------------------------------- */

START_TEST(test_unknown_options)
{
    oconfig_item_t *b = pool_block("keepa", "unix:///tmp/r.sock");

    num(add(b, "Bogus"), 3);
    parse_fails(b, "<Pool \"keepa\"> unknown option 'Bogus'", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(add(b, "StallHeartbeatAg"), 3);
    parse_fails(b,
                "unknown option 'StallHeartbeatAg' (did you mean "
                "'StallHeartbeatAge'?)",
                NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(add(b, "Recovery"), "Shell"), "/bin/sh");
    parse_fails(b, "<Recovery> unknown option 'Shell'", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(add(add(b, "Recovery"), "Windw"), 3);
    parse_fails(b, "'Windw' (did you mean 'Window'?)", NULL);
    /* Options are lines, not blocks. */
    b = pool_block("keepa", NULL);
    add(add(b, "RedisURL"), "Nested");
    parse_fails(b, "RedisURL", "block");
}
END_TEST

START_TEST(test_bad_values)
{
    static const struct {
        const char *option;
        double value;
    } bad[] = {
        {"Timeout", 0},
        {"Timeout", -5},
        {"Timeout", 1.5},
        {"Timeout", 600001},
        {"Capacity", -1},
        {"StallTokens", -2},
        {"StallTokensRatio", 0},
        {"StallTokensRatio", 1.5},
        {"StallTokensRatio", -0.5},
        {"StallHeartbeatAge", 0},
        {"StallHeartbeatAge", 12.5},
        {"StallConfirmations", 0},
    };
    oconfig_item_t *b;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = pool_block("keepa", "unix:///tmp/r.sock");
        str(add(b, "Layout"), "legacy");
        num(add(b, bad[i].option), bad[i].value);
        parse_fails(b, bad[i].option, "<Pool \"keepa\">");
    }
    /* Wrong types. */
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(b, "Timeout"), "500");
    parse_fails(b,
                "Timeout must be a whole number of milliseconds, not "
                "'\"500\"'",
                NULL);
    b = pool_block("keepa", NULL);
    num(add(b, "RedisURL"), 5);
    parse_fails(b, "RedisURL", "'5' is not redis://");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(b, "Layout"), "sideways");
    parse_fails(b, "Layout", "sideways");
    b = pool_block("keepa", "http://example.com");
    parse_fails(b, "RedisURL", "is not redis://");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(num(add(b, "StallTokens"), 1), 2);
    parse_fails(b, "StallTokens takes one value, not 2", NULL);
}
END_TEST

START_TEST(test_relations)
{
    const char *path = yaml("heartbeat:\n  retention_s: 3600\n"
                            "  stale_after_s: 600\n");
    oconfig_item_t *b;

    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(add(b, "StallTokens"), 290);
    num(add(b, "StallTokensRatio"), 0.97);
    parse_fails(b,
                "<Pool \"keepa\"> StallTokens and StallTokensRatio are "
                "both set",
                NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(add(b, "Timeout"), 100);
    num(add(b, "Timeout"), 200);
    parse_fails(b, "Timeout is given twice", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(b, "ConfigFile"), path);
    num(add(b, "StallHeartbeatAge"), 7200);
    parse_fails(b,
                "<Pool \"keepa\"> StallHeartbeatAge 7200 is above "
                "heartbeat.retention_s 3600",
                NULL);
    unlink(path);
}
END_TEST

START_TEST(test_recovery_errors)
{
    oconfig_item_t *b, *r;

    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(add(add(b, "Recovery"), "Timeout"), 60);
    parse_fails(b, "<Recovery>", "Exec");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(add(b, "Recovery"), "Exec"), "./kill_everything_force.sh");
    parse_fails(b, "Exec", "absolute path");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    num(str(add(add(b, "Recovery"), "Exec"), "/bin/kill"), 9);
    parse_fails(b, "Exec", "argument 2");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    add(add(b, "Recovery"), "Exec");
    parse_fails(b, "<Recovery> Exec needs a value", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    r = str(add(add(b, "Recovery"), "Exec"), "/bin/echo");
    for (int i = 1; i < TKM_EXEC_ARGS_MAX + 1; i++)
        str(r, "word");
    parse_fails(b, "<Recovery> Exec has more than 16 items", NULL);
    {
        char word[TKM_EXEC_ARG_MAX + 1];

        memset(word, 'x', TKM_EXEC_ARG_MAX);
        word[TKM_EXEC_ARG_MAX] = '\0';
        b = pool_block("keepa", "unix:///tmp/r.sock");
        str(str(add(add(b, "Recovery"), "Exec"), "/bin/echo"), word);
        parse_fails(b, "<Recovery> Exec item 2 is longer than 255 bytes", NULL);
    }

    static const char *const opts[] = {"Timeout", "Cooldown", "MaxActions",
                                       "Window"};
    static const double vals[] = {0, -1, 0, 0};
    for (size_t i = 0; i < 4; i++) {
        b = pool_block("keepa", "unix:///tmp/r.sock");
        r = add(b, "Recovery");
        str(add(r, "Exec"), "/bin/true");
        num(add(r, opts[i]), vals[i]);
        parse_fails(b, opts[i], "<Recovery>");
    }
    b = pool_block("keepa", "unix:///tmp/r.sock");
    r = add(b, "Recovery");
    str(add(r, "Exec"), "/bin/true");
    str(add(r, "DryRun"), "maybe");
    parse_fails(b, "DryRun", "true or false");
    b = pool_block("keepa", "unix:///tmp/r.sock");
    r = add(b, "Recovery");
    str(add(r, "Exec"), "/bin/true");
    str(add(r, "Exec"), "/bin/false");
    parse_fails(b, "Exec is given twice", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(add(b, "Recovery"), "Exec"), "/bin/true");
    str(add(add(b, "Recovery"), "Exec"), "/bin/true");
    parse_fails(b, "Recovery is given twice", NULL);
    b = pool_block("keepa", "unix:///tmp/r.sock");
    str(add(b, "Recovery"), "x");
    parse_fails(b, "Recovery takes true or false", NULL);
}
END_TEST

/* Every option the table gives a collectd name, at its minimum - 1 and
 * maximum + 1: refused in the words of tkm_options_set(), the option named
 * as written inside its block. */
START_TEST(test_every_option_out_of_range)
{
    size_t checked = 0;

    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_info info;
        long long a, b2;
        double x, y;
        double bad[2];
        char want[256];
        oconfig_item_t *b, *line;

        ck_assert_int_eq(tkm_option_describe(i, &info), TKM_OK);
        if (info.collectd == NULL)
            continue;
        if (sscanf(info.range, "%lld..%lld", &a, &b2) == 2) {
            bad[0] = (double)(a - 1);
            bad[1] = (double)(b2 + 1);
        } else if (sscanf(info.range + 1, "%lf, %lf]", &x, &y) == 2) {
            bad[0] = info.range[0] == '(' ? x : x - 0.5;
            bad[1] = y + 0.5;
        } else {
            continue;
        }
        for (int k = 0; k < 2; k++) {
            b = pool_block("keepa", NULL);
            if (info.collectd_block != NULL) {
                oconfig_item_t *r = add(b, info.collectd_block);
                str(add(r, "Exec"), "/bin/true");
                line = add(r, info.collectd);
            } else {
                line = add(b, info.collectd);
            }
            num(line, bad[k]);
            snprintf(want, sizeof(want),
                     "<Pool \"keepa\"> %s%s%s%s is %.15g, "
                     "outside %s",
                     info.collectd_block ? "<" : "",
                     info.collectd_block ? info.collectd_block : "",
                     info.collectd_block ? "> " : "", info.collectd, bad[k],
                     info.range);
            parse_fails(b, want, NULL);
            checked++;
        }
    }
    ck_assert_uint_ge(checked, 2 * 10);
}
END_TEST

/* The ranges are the table's: what YAML takes, collectd takes. */
START_TEST(test_same_ranges_as_yaml)
{
    oconfig_item_t *b = pool_block("keepa", NULL), *r = add(b, "Recovery");
    tkm__pool_conf c;

    str(add(r, "Exec"), "/bin/true");
    num(add(r, "Timeout"), 7200);
    num(add(r, "Window"), 60);
    c = parse_ok(b);
    ck_assert_int_eq(c.opts.recovery.timeout_s, 7200);
    tkm__pool_conf_clear(&c);
    block_free(b);
    b = pool_block("keepa", NULL);
    r = add(b, "Recovery");
    str(add(r, "Exec"), "/bin/true");
    num(add(r, "Window"), 30);
    parse_fails(b,
                "<Pool \"keepa\"> <Recovery> Window is 30, outside "
                "60..2592000 (seconds)",
                NULL);
    /* Sentinel lines add up; MasterName goes with them. */
    b = pool_block("keepa", NULL);
    str(add(b, "Sentinel"), "10.0.0.1:26379");
    str(add(b, "Sentinel"), "10.0.0.2:26379");
    str(add(b, "MasterName"), "mymaster");
    c = parse_ok(b);
    ck_assert_int_eq(c.opts.sentinel.count, 2);
    ck_assert_str_eq(c.opts.sentinel.addr[1], "10.0.0.2:26379");
    tkm__pool_conf_clear(&c);
    block_free(b);
    b = pool_block("keepa", NULL);
    str(add(b, "Sentinel"), "10.0.0.1:26379");
    parse_fails(b, "<Pool \"keepa\"> Sentinel is set but MasterName is not",
                NULL);
}
END_TEST

START_TEST(test_pool_names)
{
    char long_name[80];
    oconfig_item_t *b;

    b = pool_block(NULL, "unix:///tmp/r.sock");
    parse_fails(b, "<Pool> needs one name", NULL);
    b = pool_block("a", "unix:///tmp/r.sock");
    str(b, "b");
    parse_fails(b, "<Pool> needs one name", NULL);
    b = pool_block("a b", "unix:///tmp/r.sock");
    parse_fails(b, "'a b' is not a pool name", NULL);
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    b = pool_block(long_name, "unix:///tmp/r.sock");
    parse_fails(b, "longer than 64", NULL);
}
END_TEST

START_TEST(test_config_file_errors)
{
    const char *path;
    oconfig_item_t *b;

    b = pool_block("keepa", NULL);
    str(add(b, "ConfigFile"), "/nonexistent/tokenmgr.yaml");
    parse_fails(b, "ConfigFile", "/nonexistent/tokenmgr.yaml");
    path = yaml("bucket:\n  floor: 3\n");
    b = pool_block("keepa", NULL);
    str(add(b, "ConfigFile"), path);
    parse_fails(b, "ConfigFile", ":2:3: unknown option 'bucket.floor'");
    unlink(path);
}
END_TEST

/* Secrets never reach a message (STYLE.md). */
START_TEST(test_password_not_shown)
{
    const char *path;
    oconfig_item_t *b;

    b = pool_block("keepa", "redis://user:hunter2@redis.example:99999/0");
    parse_fails(b, "RedisURL", "port");
    ck_assert_ptr_null(strstr(err, "hunter2"));
    b = pool_block("keepa", "rediss://user:hunter2@redis.example/0");
    parse_fails(b, "RedisURL", NULL);
    ck_assert_ptr_null(strstr(err, "hunter2"));
    path = yaml("redis:\n  url: redis://:hunter2@h:0/0\n");
    b = pool_block("keepa", NULL);
    str(add(b, "ConfigFile"), path);
    parse_fails(b, "ConfigFile", "redis.url");
    ck_assert_ptr_null(strstr(err, "hunter2"));
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_config");

    tkt_add_tests(tkt_tcase(s, "accepted", 0), test_defaults,
                  test_contract_example, test_config_file_alone, test_legacy,
                  test_recovery_line, test_booleans_and_ratio, NULL);
    tkt_add_tests(tkt_tcase(s, "refused", 0), test_unknown_options,
                  test_bad_values, test_relations, test_recovery_errors,
                  test_every_option_out_of_range, test_same_ranges_as_yaml,
                  test_pool_names, test_config_file_errors,
                  test_password_not_shown, NULL);
    return tkt_run_suite(s, 0);
}
