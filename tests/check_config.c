/* Options, YAML loading and validation: every bad input gets one line that
 * names the file, line and column (or the field), and nothing is half-set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    expect_error("pool: keepa\nbucket:\n  capacty: 300\n",
                 ":3:3:", "unknown key 'bucket.capacty'");
    expect_error("pools: keepa\n", ":1:1:", "unknown key 'pools'");
}
END_TEST

START_TEST(test_wrong_types)
{
    expect_error("bucket:\n  capacity: lots\n",
                 ":2:13:", "bucket.capacity must be an integer");
    expect_error("bucket:\n  capacity: \"300\"\n", ":2:", "must be an integer");
    expect_error("bucket:\n  soft_floor: 2.5\n", ":2:", "must be an integer");
    expect_error("bucket: 5\n", ":1:9:", "bucket section must be a mapping");
    expect_error("redis:\n  url: [a]\n", ":2:", "redis.url must be a string");
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
                 ":2:", "must be an integer");
}
END_TEST

START_TEST(test_relations)
{
    expect_error("bucket:\n  soft_floor: 60\n", "",
                 "soft_floor 60 is above "
                 "bucket.recharge_target 50");
    expect_error("bucket:\n  max_deficit: -10\n  soft_floor: -20\n", "",
                 "below bucket.max_deficit");
    expect_error("bucket:\n  low_cost_target: 70\n", "",
                 "low_cost_target 70 is above");
}
END_TEST

START_TEST(test_pool_names)
{
    tkm_options o;
    char err[256];

    expect_error("pool: my pool\n", ":1:7:", "pool name 'my pool' is invalid");
    expect_error("pool: \"\"\n", ":1:7:", "invalid");
    expect_error("pool: a{b}\n", ":1:", "invalid");
    tkm_options_init(&o);
    memset(o.pool, 'a', TKM_POOL_MAX);
    o.pool[TKM_POOL_MAX] = '\0';
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_OK);
    strcpy(o.pool, "a/b");
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "pool name 'a/b'"));
}
END_TEST

START_TEST(test_duplicate_key)
{
    expect_error("pool: a\npool: b\n", ":2:1:", "duplicate key 'pool'");
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
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "pool name 'bad pool'"));
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_ECONFIG);
    tkm_client_free(c);
    tkm_client_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *yaml = tcase_create("yaml");
    TCase *validate = tcase_create("validate");
    SRunner *sr;
    int failed;

    tcase_add_test(yaml, test_defaults);
    tcase_add_test(yaml, test_shipped_example_loads);
    tcase_add_test(yaml, test_values_loaded);
    tcase_add_test(yaml, test_malformed_yaml);
    tcase_add_test(yaml, test_unknown_key);
    tcase_add_test(yaml, test_wrong_types);
    tcase_add_test(yaml, test_out_of_range);
    tcase_add_test(yaml, test_relations);
    tcase_add_test(yaml, test_duplicate_key);
    tcase_add_test(yaml, test_missing_file);
    tcase_add_test(validate, test_pool_names);
    tcase_add_test(validate, test_redis_urls);
    tcase_add_test(validate, test_env_overrides_url);
    tcase_add_test(validate, test_parse_int);
    tcase_add_test(validate, test_strerror_and_reasons);
    tcase_add_test(validate, test_open_with_bad_options);
    suite_add_tcase(s, yaml);
    suite_add_tcase(s, validate);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
