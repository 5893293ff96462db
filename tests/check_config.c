/* Options, YAML loading and validation: every bad input gets one line that
 * names the file, line and column (or the field), and nothing is half-set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkt.h"

static char yaml_path[256];

static void write_yaml(const char *text)
{
    FILE *fp;

    snprintf(yaml_path, sizeof(yaml_path), "%s/tkm-config-XXXXXX.yaml",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemps(yaml_path, 5);
    ck_assert_int_ge(fd, 0);
    fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
}

/* Load text; return the status, with the message in err. */
static tkm_code load(const char *text, tkm_options *o, char *err, size_t len)
{
    tkm_code rc;

    tkm_options_init(o);
    write_yaml(text);
    err[0] = '\0';
    rc = tkm_config_load_file(yaml_path, o, err, len);
    unlink(yaml_path);
    if (rc != TKM_OK) {
        /* One line that starts with the file's name. */
        ck_assert_ptr_null(strchr(err, '\n'));
        ck_assert_msg(strncmp(err, yaml_path, strlen(yaml_path)) == 0,
                      "message does not name the file: %s", err);
    }
    return rc;
}

static void expect_error(const char *text, const char *where, const char *words)
{
    tkm_options o;
    char err[512];

    ck_assert_int_eq(load(text, &o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_msg(strstr(err, where) != NULL, "'%s' lacks '%s'", err, where);
    ck_assert_msg(strstr(err, words) != NULL, "'%s' lacks '%s'", err, words);
}

START_TEST(test_defaults)
{
    tkm_options o;
    char err[256];

    tkm_options_init(&o);
    ck_assert_str_eq(o.pool, "keepa");
    ck_assert_int_eq(o.timeout_ms, 500);
    ck_assert_int_eq(o.bucket.refill_period_ms, 60000);
    ck_assert_int_eq(o.bucket.soft_floor, 20);
    ck_assert_int_eq(o.bucket.recharge_target, 50);
    ck_assert_int_eq(o.bucket.max_deficit, -180);
    ck_assert_int_eq(o.bucket.recharge_timeout_s, 3600);
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_OK);
}
END_TEST

START_TEST(test_shipped_example_loads)
{
    tkm_options o;
    char err[512];

    tkm_options_init(&o);
    ck_assert_msg(tkm_config_load_file(TKM_SOURCE_DIR "/conf/tokenmgr.yaml", &o,
                                       err, sizeof(err)) == TKM_OK,
                  "%s", err);
    ck_assert_str_eq(o.pool, "keepa");
    ck_assert_int_eq(o.bucket.soft_floor, 20);
}
END_TEST

START_TEST(test_values_loaded)
{
    tkm_options o;
    char err[512];

    ck_assert_int_eq(load("pool: my-pool.2\n"
                          "redis:\n  url: unix:///run/r.sock?db=3\n"
                          "  timeout_ms: 250\n"
                          "bucket:\n  capacity: 1500\n  soft_floor: -5\n"
                          "  max_deficit: -10\n",
                          &o, err, sizeof(err)),
                     TKM_OK);
    ck_assert_str_eq(o.pool, "my-pool.2");
    ck_assert_str_eq(o.redis_url, "unix:///run/r.sock?db=3");
    ck_assert_int_eq(o.timeout_ms, 250);
    ck_assert_int_eq(o.bucket.capacity, 1500);
    ck_assert_int_eq(o.bucket.soft_floor, -5);
    ck_assert_int_eq(o.bucket.recharge_target, 50); /* untouched */
    ck_assert_int_eq(load("", &o, err, sizeof(err)), TKM_OK);
}
END_TEST

START_TEST(test_malformed_yaml)
{
    expect_error("bucket:\n  capacity: [1, 2\n", ":3:", "malformed YAML");
    expect_error("pool: keepa\n  bad indent: 1\n", ":2:", "malformed YAML");
}
END_TEST

START_TEST(test_unknown_key)
{
    expect_error("pool: keepa\nbucket:\n  capacty: 300\n", ":3:3:",
                 "unknown option 'bucket.capacty' (did you mean "
                 "'bucket.capacity'?)");
    expect_error("pools: keepa\n", ":1:1:", "unknown option 'pools'");
    expect_error("bucket:\n  soft_flor: 3\n",
                 ":2:3:", "did you mean 'bucket.soft_floor'?");
}
END_TEST

START_TEST(test_wrong_types)
{
    expect_error("bucket:\n  capacity: lots\n", ":2:13:",
                 "bucket.capacity must be a whole number of tokens, "
                 "not 'lots'");
    expect_error("bucket:\n  capacity: \"300\"\n",
                 ":2:", "must be a whole number of tokens, not '\"300\"'");
    expect_error("bucket:\n  soft_floor: 2.5\n",
                 ":2:", "must be a whole number");
    expect_error(
        "bucket:\n  soft_floor: 20x\n",
        ":2:", "bucket.soft_floor must be a whole number of tokens, not '20x'");
    expect_error("recovery:\n  dry_run: maybe\n",
                 ":2:", "recovery.dry_run must be true or false, not 'maybe'");
    expect_error("bucket: 5\n", ":1:9:", "bucket section must be a mapping");
    expect_error("redis:\n  url: [a]\n",
                 ":2:", "redis.url must be a single value, not a list");
    expect_error("recovery:\n  exec: /bin/true\n",
                 ":2:", "recovery.exec must be a list");
    expect_error("- a\n- b\n", ":1:1:", "the document must be a mapping");
}
END_TEST

START_TEST(test_out_of_range)
{
    expect_error("bucket:\n  capacity: -300\n",
                 ":2:13:", "bucket.capacity is -300, outside 0..");
    expect_error("bucket:\n  max_deficit: 5\n", ":2:", "outside");
    expect_error("redis:\n  timeout_ms: 0\n", ":2:", "redis.timeout_ms");
    expect_error("bucket:\n  capacity: 99999999999999999999\n",
                 ":2:", "must be a whole number");
}
END_TEST

/* Two values the user set that contradict each other: named as written,
 * at the line of one of them. */
START_TEST(test_relations)
{
    expect_error("bucket:\n  recharge_target: 50\n  soft_floor: 60\n", ":3:15:",
                 "bucket.soft_floor 60 is above bucket.recharge_target 50: "
                 "recharge would end below the floor that starts it");
    expect_error("bucket:\n  max_deficit: -10\n  soft_floor: -20\n", ":2:",
                 "bucket.max_deficit -10 is above bucket.soft_floor -20");
    expect_error(
        "bucket:\n  low_cost_target: 70\n  recharge_target: 60\n",
        ":2:", "low_cost_target 70 is above bucket.recharge_target 60");
    expect_error("recovery:\n  exec: [/bin/true]\n  webhook: http://h/x\n", ":",
                 "recovery.exec and recovery.webhook are both set");
    expect_error("stall:\n  tokens: 290\n  tokens_ratio: 0.9\n", ":",
                 "stall.tokens and stall.tokens_ratio are both set");
}
END_TEST

/* A default never contradicts a value the user set: it follows. */
START_TEST(test_derived_defaults)
{
    tkm_options o;
    char err[512];

    ck_assert_msg(
        load("bucket:\n  recharge_target: 1\n", &o, err, sizeof(err)) == TKM_OK,
        "%s", err);
    ck_assert_int_eq(o.bucket.recharge_target, 1);
    ck_assert_int_eq(o.bucket.low_cost_target, 1);
    ck_assert_int_eq(o.bucket.soft_floor, 1);
    ck_assert_int_eq(o.bucket.max_deficit, -180);
    ck_assert_int_eq(tkm_options_source(&o, "bucket.low_cost_target"),
                     TKM_SOURCE_DEFAULT);
    ck_assert_int_eq(tkm_options_source(&o, "bucket.recharge_target"),
                     TKM_SOURCE_FILE);
    ck_assert_msg(load("bucket:\n  soft_floor: -300\n", &o, err, sizeof(err)) ==
                      TKM_OK,
                  "%s", err);
    ck_assert_int_eq(o.bucket.max_deficit, -300);
    ck_assert_msg(load("bucket:\n  low_cost_target: 70\n", &o, err,
                       sizeof(err)) == TKM_OK,
                  "%s", err);
    ck_assert_int_eq(o.bucket.recharge_target, 70);
    /* The stall age is the one threshold: liveness and retention follow. */
    ck_assert_msg(load("stall:\n  heartbeat_age_s: 172800\n", &o, err,
                       sizeof(err)) == TKM_OK,
                  "%s", err);
    ck_assert_int_eq(o.heartbeat.stale_after_s, 172800);
    ck_assert_int_eq(o.heartbeat.retention_s, 172800);
    /* Set back: the followers return to their own defaults. */
    tkm_options_init(&o);
    ck_assert_int_eq(
        tkm_options_set(&o, "bucket.recharge_target", "5", err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(o.bucket.soft_floor, 5);
    ck_assert_int_eq(
        tkm_options_set(&o, "bucket.recharge_target", "500", err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(o.bucket.soft_floor, 20);
    ck_assert_int_eq(o.bucket.low_cost_target, 20);
}
END_TEST

/* Values just outside an option's documented range ("1..600000",
 * "(0, 1]", "[1, 1000]"); 0 when it has none. */
static int outside(const tkm_option_info *info, char *lo, char *hi, size_t len)
{
    long long a, b;
    double x, y;

    if (sscanf(info->range, "%lld..%lld", &a, &b) == 2) {
        snprintf(lo, len, "%lld", a - 1);
        snprintf(hi, len, "%lld", b + 1);
        return 1;
    }
    if (sscanf(info->range + 1, "%lf, %lf]", &x, &y) == 2) {
        if (info->range[0] == '(')
            snprintf(lo, len, "%g", x);
        else
            snprintf(lo, len, "%g", x - 0.5);
        snprintf(hi, len, "%g", y + 0.5);
        return 1;
    }
    return 0;
}

/* "a.b" as YAML: "a:\n  b: v\n". */
static void yaml_of(const char *key, const char *v, char *buf, size_t len)
{
    const char *dot = strchr(key, '.');

    if (dot == NULL)
        snprintf(buf, len, "%s: %s\n", key, v);
    else
        snprintf(buf, len, "%.*s:\n  %s: %s\n", (int)(dot - key), key, dot + 1,
                 v);
}

/* Every option at its minimum - 1 and maximum + 1, through the file, the
 * environment and tkm_options_set: one refusal, in the same words, naming
 * the option as each source spells it (collectd and the CLI's --set are
 * checked in their suites). */
START_TEST(test_every_option_out_of_range)
{
    size_t checked = 0;

    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_info info;
        char lo[32], hi[32], text[256], want[256], err[512];
        const char *bad[2] = {lo, hi};
        tkm_options o;

        ck_assert_int_eq(tkm_option_describe(i, &info), TKM_OK);
        if (!outside(&info, lo, hi, sizeof(lo)))
            continue;
        for (int k = 0; k < 2; k++) {
            tkm_options_init(&o);
            yaml_of(info.key, bad[k], text, sizeof(text));
            snprintf(want, sizeof(want), "%s is %s, outside %s", info.key,
                     bad[k], info.range);
            expect_error(text, ":2:", want);
            ck_assert_int_eq(
                tkm_options_set(&o, info.key, bad[k], err, sizeof(err)),
                TKM_ECONFIG);
            ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                          "'%s' is not '%s'", err, want);
            ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)),
                             TKM_OK); /* untouched */
            if (info.env[0] != '\0') {
                snprintf(want, sizeof(want), "%s is %s, outside %s", info.env,
                         bad[k], info.range);
                setenv(info.env, bad[k], 1);
                ck_assert_int_eq(tkm_options_from_env(&o, err, sizeof(err)),
                                 TKM_ECONFIG);
                unsetenv(info.env);
                ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                              "'%s' is not '%s'", err, want);
            }
            checked++;
        }
    }
    ck_assert_uint_ge(checked, 2 * 30);
}
END_TEST

/* The table itself: names unique per source, every option described,
 * every value read back as it was set. */
START_TEST(test_table)
{
    size_t n = tkm_option_count();
    tkm_options o;
    char err[512], buf[512];

    ck_assert_uint_ge(n, 40);
    ck_assert_int_eq(tkm_option_describe(n, &(tkm_option_info){0}), TKM_EINVAL);
    tkm_options_init(&o);
    for (size_t i = 0; i < n; i++) {
        tkm_option_info a;
        ck_assert_int_eq(tkm_option_describe(i, &a), TKM_OK);
        ck_assert_int_eq(tkm_option_index(a.key), (int)i);
        ck_assert_msg(a.doc != NULL && a.doc[0] != '\0', "%s: no doc", a.key);
        ck_assert_msg(a.default_text[0] != '\0', "%s: no default", a.key);
        for (size_t j = 0; j < i; j++) {
            tkm_option_info b;
            tkm_option_describe(j, &b);
            ck_assert_str_ne(a.key, b.key);
            if (a.env[0])
                ck_assert_str_ne(a.env, b.env);
            if (a.collectd && b.collectd &&
                (a.collectd_block == NULL) == (b.collectd_block == NULL))
                ck_assert_str_ne(a.collectd, b.collectd);
        }
        /* What get() prints, set() takes back unchanged. */
        ck_assert_int_eq(tkm_options_get(&o, a.key, buf, sizeof(buf)), TKM_OK);
        if (strcmp(a.type, "list") != 0 || buf[0] != '\0')
            ck_assert_msg(tkm_options_set(&o, a.key, buf, err, sizeof(err)) ==
                              TKM_OK,
                          "%s = '%s': %s", a.key, buf, err);
    }
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_OK);
    ck_assert_int_eq(tkm_option_index("bucket.nope"), -1);
}
END_TEST

/* tkm_options_set: the setter the bindings use instead of the layout. */
START_TEST(test_set_by_name)
{
    tkm_options *o = NULL;
    char err[512], buf[64];
    const char *exec[] = {"/usr/bin/env", "--flag", "a,b"};

    ck_assert_int_eq(tkm_options_new(&o), TKM_OK);
    ck_assert_int_eq(
        tkm_options_set(o, "bucket.soft_floor", "25", err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(o->bucket.soft_floor, 25);
    ck_assert_int_eq(tkm_options_source(o, "bucket.soft_floor"),
                     TKM_SOURCE_API);
    ck_assert_int_eq(
        tkm_options_set(o, "bucket.sof_floor", "25", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_str_eq(err, "unknown option 'bucket.sof_floor' (did you mean "
                          "'bucket.soft_floor'?)");
    ck_assert_int_eq(
        tkm_options_set(o, "bucket.soft_floor", "20x", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_str_eq(err, "bucket.soft_floor must be a whole number of "
                          "tokens, not '20x'");
    ck_assert_int_eq(o->bucket.soft_floor, 25); /* unchanged */
    ck_assert_int_eq(
        tkm_options_set(o, "recovery.dry_run", "YES", err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(o->recovery.dry_run, 1);
    ck_assert_int_eq(
        tkm_options_set(o, "stall.tokens_ratio", "0.5", err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(tkm_options_get(o, "stall.tokens_ratio", buf, sizeof(buf)),
                     TKM_OK);
    ck_assert_str_eq(buf, "0.5");
    ck_assert_int_eq(
        tkm_options_set_list(o, "recovery.exec", exec, 3, err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(o->recovery.exec_argc, 3);
    ck_assert_str_eq(o->recovery.exec[2], "a,b");
    ck_assert_int_eq(
        tkm_options_set(o, "recovery.exec", "bin/x,-y", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_str_eq(err, "recovery.exec: \"bin/x\" is not an absolute path "
                          "(no shell and no PATH search run it)");
    ck_assert_int_eq(o->recovery.exec_argc, 3);
    ck_assert_int_eq(tkm_options_set(o, "redis.sentinels",
                                     "10.0.0.1:26379,unix:///run/s.sock", err,
                                     sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(o->sentinel.count, 2);
    ck_assert_int_eq(tkm_options_validate(o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "redis.master_name is not"));
    ck_assert_int_eq(
        tkm_options_set(o, "redis.sentinels", "host", err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "is not host:port"));
    ck_assert_int_eq(tkm_options_set(o, "redis.url", "redis://u:hunter2@h:1/0",
                                     err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_options_get(o, "redis.url", buf, sizeof(buf)), TKM_OK);
    ck_assert_str_eq(buf, "redis://***@h:1/0");
    tkm_options_free(o);
    tkm_options_free(NULL);
}
END_TEST

/* tkm_options_validate checks every field, not only the integers. */
START_TEST(test_validate_every_field)
{
    tkm_options o;
    char err[512];

    tkm_options_init(&o);
    o.stall.tokens_ratio = 5;
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_str_eq(err, "stall.tokens_ratio is 5, outside (0, 1] (of the "
                          "capacity)");
    tkm_options_init(&o);
    o.stall.shared_cause_escalate_s = -2;
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "stall.shared_cause_escalate_s is -2"));
    tkm_options_init(&o);
    o.recovery.exec_argc = 1;
    strcpy(o.recovery.exec[0], "restart.sh");
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "is not an absolute path"));
    tkm_options_init(&o);
    strcpy(o.recovery.webhook, "ftp://x/y");
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "recovery.webhook"));
    tkm_options_init(&o);
    o.bucket.estimate_prior = 0.5;
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "bucket.estimate_prior is 0.5"));
}
END_TEST

START_TEST(test_pool_names)
{
    tkm_options o;
    char err[256];

    expect_error("pool: my pool\n",
                 ":1:7:", "pool: 'my pool' is not a pool name");
    expect_error("pool: \"\"\n", ":1:7:", "is not a pool name");
    expect_error("pool: a{b}\n", ":1:", "is not a pool name");
    tkm_options_init(&o);
    memset(o.pool, 'a', TKM_POOL_MAX);
    o.pool[TKM_POOL_MAX] = '\0';
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_OK);
    strcpy(o.pool, "a/b");
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "'a/b' is not a pool name"));
}
END_TEST

START_TEST(test_duplicate_key)
{
    expect_error("pool: a\npool: b\n", ":2:1:", "duplicate key 'pool'");
}
END_TEST

/* The *.yaml of tokenmgr.d beside tokenmgr.yaml: overrides, in name
 * order. */
START_TEST(test_override_files)
{
    char dir[] = "/tmp/tkm-conf-XXXXXX", path[128], sub[128], f[160];
    tkm_options o;
    char err[512];
    FILE *fp;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tokenmgr.yaml", dir);
    snprintf(sub, sizeof(sub), "%s/tokenmgr.d", dir);
    fp = fopen(path, "w");
    fputs("bucket:\n  soft_floor: 30\n  lease_ttl_s: 60\n", fp);
    fclose(fp);
    tkm_options_init(&o);
    ck_assert_int_eq(tkm_config_load_file(path, &o, err, sizeof(err)), TKM_OK);
    ck_assert_int_eq(o.bucket.soft_floor, 30);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(f, sizeof(f), "%s/20-late.yaml", sub);
    fp = fopen(f, "w");
    fputs("bucket:\n  lease_ttl_s: 90\n", fp);
    fclose(fp);
    snprintf(f, sizeof(f), "%s/10-early.yaml", sub);
    fp = fopen(f, "w");
    fputs("bucket:\n  lease_ttl_s: 75\n  soft_floor: 25\n", fp);
    fclose(fp);
    snprintf(f, sizeof(f), "%s/ignored.conf", sub);
    fp = fopen(f, "w");
    fputs("this is not read\n", fp);
    fclose(fp);
    tkm_options_init(&o);
    ck_assert_msg(tkm_config_load_file(path, &o, err, sizeof(err)) == TKM_OK,
                  "%s", err);
    ck_assert_int_eq(o.bucket.soft_floor, 25);
    ck_assert_int_eq(o.bucket.lease_ttl_s, 90); /* name order */
    /* An override that breaks a relation is blamed at its own line. */
    snprintf(f, sizeof(f), "%s/30-bad.yaml", sub);
    fp = fopen(f, "w");
    fputs("bucket:\n  recharge_target: 10\n", fp);
    fclose(fp);
    tkm_options_init(&o);
    ck_assert_int_eq(tkm_config_load_file(path, &o, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_msg(strstr(err, "/tokenmgr.d/10-early.yaml:3:15: "
                              "bucket.soft_floor 25 is above "
                              "bucket.recharge_target 10") != NULL,
                  "%s", err);
    fp = fopen(f, "w");
    fputs("bucket:\n  recharge_targt: 10\n", fp);
    fclose(fp);
    ck_assert_int_eq(tkm_config_load_file(path, &o, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_msg(strstr(err, "/tokenmgr.d/30-bad.yaml:2:3: unknown option "
                              "'bucket.recharge_targt'") != NULL,
                  "%s", err);
    unlink(f);
    snprintf(f, sizeof(f), "%s/10-early.yaml", sub);
    unlink(f);
    snprintf(f, sizeof(f), "%s/20-late.yaml", sub);
    unlink(f);
    snprintf(f, sizeof(f), "%s/ignored.conf", sub);
    unlink(f);
    rmdir(sub);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_missing_file)
{
    tkm_options o;
    char err[256];

    tkm_options_init(&o);
    ck_assert_int_eq(
        tkm_config_load_file("/nonexistent/t.yaml", &o, err, sizeof(err)),
        TKM_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/t.yaml: cannot open"));
}
END_TEST

static void expect_url(const char *url, tkm_code want, const char *words)
{
    tkm_options o;
    char err[512] = "";

    tkm_options_init(&o);
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", url);
    ck_assert_msg(tkm_options_validate(&o, err, sizeof(err)) == want, "%s: %s",
                  url, err);
    if (words != NULL)
        ck_assert_msg(strstr(err, words) != NULL, "%s: '%s' lacks '%s'", url,
                      err, words);
}

START_TEST(test_redis_urls)
{
    expect_url("redis://127.0.0.1:6379/0", TKM_OK, NULL);
    expect_url("redis://localhost", TKM_OK, NULL);
    expect_url("redis://:secret@host:7000/2", TKM_OK, NULL);
    expect_url("redis://user:p@ss@host", TKM_OK, NULL);
    expect_url("unix:///run/redis/redis.sock", TKM_OK, NULL);
    expect_url("unix:///run/redis/redis.sock?db=4", TKM_OK, NULL);
    expect_url("http://localhost", TKM_ECONFIG, "is not redis://");
    expect_url("redis://host:99999", TKM_ECONFIG, "port '99999'");
    expect_url("redis://host:abc", TKM_ECONFIG, "port 'abc'");
    expect_url("redis://host/x", TKM_ECONFIG, "database 'x'");
    expect_url("redis://", TKM_ECONFIG, "host");
    expect_url("unix://relative.sock", TKM_ECONFIG, "absolute");
    expect_url("unix:///r.sock?database=1", TKM_ECONFIG, "?db=N");
    expect_url("", TKM_ECONFIG, "empty");
    /* A password never reaches a message. */
    expect_url("redis://:hunter2@host:bad", TKM_ECONFIG, "port");
    {
        tkm_options o;
        char err[512];
        tkm_options_init(&o);
        strcpy(o.redis_url, "redis://:hunter2@host:bad");
        tkm_options_validate(&o, err, sizeof(err));
        ck_assert_ptr_null(strstr(err, "hunter2"));
    }
    expect_error("redis:\n  url: redis://h:0\n", ":2:8:", "redis.url");
}
END_TEST

START_TEST(test_env_overrides_url)
{
    tkm_options o;
    char err[256];

    tkm_options_init(&o);
    setenv("TOKENMGR_REDIS_URL", "unix:///tmp/x.sock", 1);
    ck_assert_int_eq(tkm_options_from_env(&o, err, sizeof(err)), TKM_OK);
    unsetenv("TOKENMGR_REDIS_URL");
    ck_assert_str_eq(o.redis_url, "unix:///tmp/x.sock");
}
END_TEST

START_TEST(test_parse_int)
{
    int64_t v = 7;

    ck_assert_int_eq(tkm_parse_int("42", 0, 100, &v), TKM_OK);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(tkm_parse_int("-180", -200, 0, &v), TKM_OK);
    ck_assert_int_eq(v, -180);
    ck_assert_int_eq(tkm_parse_int("", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_int(" 4", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_int("+4", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_int("4x", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_int("0x10", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(tkm_parse_int("101", 0, 100, &v), TKM_EINVAL);
    ck_assert_int_eq(
        tkm_parse_int("99999999999999999999", INT64_MIN, INT64_MAX, &v),
        TKM_EINVAL);
    ck_assert_int_eq(v, -180); /* untouched by failures */
}
END_TEST

START_TEST(test_strerror_and_reasons)
{
    ck_assert_str_eq(tkm_strerror(TKM_OK), "success");
    ck_assert_str_eq(tkm_strerror(TKM_EREDIS), "Redis unavailable");
    ck_assert_str_eq(tkm_strerror((tkm_code)999), "unknown status code");
    ck_assert_str_eq(tkm_reason_str(TKM_REASON_DEFICIT_LIMIT), "deficit_limit");
    ck_assert_str_eq(tkm_reason_str(TKM_REASON_WAIT_TOO_LONG), "wait_too_long");
    ck_assert_str_eq(tkm_version(), TKM_VERSION);
}
END_TEST

START_TEST(test_open_with_bad_options)
{
    tkm_options o;
    tkm_client *c = NULL;
    tkm_grant g;

    tkm_options_init(&o);
    strcpy(o.pool, "bad pool");
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "'bad pool' is not a pool"));
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_ECONFIG);
    tkm_client_free(c);
    tkm_client_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");

    tkt_add_tests(tkt_tcase(s, "yaml", 0), test_defaults,
                  test_shipped_example_loads, test_values_loaded,
                  test_malformed_yaml, test_unknown_key, test_wrong_types,
                  test_out_of_range, test_relations, test_derived_defaults,
                  test_duplicate_key, test_override_files, test_missing_file,
                  NULL);
    tkt_add_tests(tkt_tcase(s, "validate", 0), test_every_option_out_of_range,
                  test_table, test_set_by_name, test_validate_every_field,
                  test_pool_names, test_redis_urls, test_env_overrides_url,
                  test_parse_int, test_strerror_and_reasons,
                  test_open_with_bad_options, NULL);
    return tkt_run_suite(s, 0);
}
