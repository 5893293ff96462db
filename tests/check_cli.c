/* The tokenmgr command as scripts use it: exit codes, one-line errors and
 * the JSON keys of CONTRACT.md, against a real redis-server. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

/* What a run of the CLI printed, and its exit status. */
typedef tkt_output run_result;

/* Run the CLI with the arguments (NULL-terminated), stdout/stderr
 * captured: a copy of tkt_cli's result. */
#define run_cli(...) copy_of(tkt_cli(__VA_ARGS__))

static run_result copy_of(const tkt_output *o)
{
    return *o;
}

/* Errors are one line on stderr, prefixed by the program's name. */
static void expect_fail(run_result r, int status, const char *words)
{
    ck_assert_msg(r.status == status, "exit %d, expected %d; stderr: %s",
                  r.status, status, r.err);
    ck_assert_msg(strncmp(r.err, "tokenmgr: ", 10) == 0, "stderr: %s", r.err);
    ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                  "not one line: %s", r.err);
    ck_assert_msg(strstr(r.err, words) != NULL, "'%s' lacks '%s'", r.err,
                  words);
}

static void use_server(void)
{
    tkt_flush();
    setenv("TOKENMGR_REDIS_URL", tkt_server.url, 1);
    /* Empty: no file, not even /etc/tokenmgr/tokenmgr.yaml. */
    setenv("TOKENMGR_CONFIG", "", 1);
}

START_TEST(test_usage_errors)
{
    ck_assert_int_eq(run_cli("--help", NULL).status, 0);
    ck_assert_ptr_nonnull(strstr(run_cli("--version", NULL).out, TKM_VERSION));
    expect_fail(run_cli(NULL), 64, "no command");
    expect_fail(run_cli("frobnicate", NULL), 64,
                "unknown command 'frobnicate'");
    expect_fail(run_cli("--colour", "status", NULL), 64, "unknown option");
    expect_fail(run_cli("--pool", NULL), 64, "--pool needs a value");
    expect_fail(run_cli("acquire", "abc", NULL), 64,
                "COST: 'abc' is not a whole number");
    expect_fail(run_cli("acquire", "-3", NULL), 64, "'-3'");
    expect_fail(run_cli("acquire", "5x", NULL), 64, "'5x'");
    expect_fail(run_cli("acquire", NULL), 64, "needs COST");
    expect_fail(run_cli("acquire", "5", "--bogus", NULL), 64, "--bogus");
    expect_fail(run_cli("sync", "--tokens", "ten", "--rate", "5", NULL), 64,
                "--tokens: 'ten'");
    expect_fail(run_cli("sync", "--tokens", "10", NULL), 64, "--rate");
    expect_fail(run_cli("sync", "--tokens", "10", "--rate", "-1", NULL), 64,
                "refill rate -1 is negative");
    expect_fail(run_cli("complete", "1-2", NULL), 64, "--consumed");
    expect_fail(run_cli("complete", "1-2", "--consumed", "1", "--tokens-left",
                        "5", NULL),
                64, "go together");
    expect_fail(run_cli("recharge", "maybe", NULL), 64, "'on' or 'off'");
    expect_fail(run_cli("release", NULL), 64, "GRANT");
}
END_TEST

/* --help lists every command and flag from the command table; each
 * command's own usage is one call away; --version. */
START_TEST(test_help)
{
    static const char *const every[] = {"status",
                                        "sync",
                                        "--from-keepa",
                                        "--force",
                                        "acquire COST",
                                        "--wait SECONDS",
                                        "--worker ID",
                                        "complete GRANT",
                                        "--consumed N",
                                        "release GRANT",
                                        "recharge on|off",
                                        "reset",
                                        "--yes",
                                        "--all",
                                        "heartbeat",
                                        "--busy-for",
                                        "workers",
                                        "workers forget ID",
                                        "recovery status",
                                        "recovery reset",
                                        "recovery pause",
                                        "--for DURATION",
                                        "recovery resume",
                                        "recovery log",
                                        "--count N",
                                        "recover",
                                        "--reason TEXT",
                                        "config check",
                                        "config show",
                                        "help",
                                        "--set KEY=VALUE",
                                        "--config FILE",
                                        "--pool NAME",
                                        "--redis URL",
                                        "--version",
                                        "/etc/tokenmgr/tokenmgr.yaml",
                                        "75"};
    run_result r = run_cli("--help", NULL);

    ck_assert_int_eq(r.status, 0);
    for (size_t i = 0; i < sizeof(every) / sizeof(every[0]); i++)
        ck_assert_msg(strstr(r.out, every[i]) != NULL, "--help lacks '%s'",
                      every[i]);
    r = run_cli("help", "acquire", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(
        strstr(r.out, "usage: tokenmgr [GLOBAL OPTIONS] acquire COST [--wait "
                      "SECONDS] [--worker ID] [--json]"));
    ck_assert_ptr_null(strstr(r.out, "recovery"));
    r = run_cli("acquire", "--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "acquire COST"));
    r = run_cli("recovery", "pause", "--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "--for DURATION"));
    r = run_cli("help", "recovery", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "recovery log"));
    r = run_cli("help", "options", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "bucket.soft_floor"));
    ck_assert_ptr_nonnull(strstr(r.out, "TOKENMGR_BUCKET_SOFT_FLOOR"));
    r = run_cli("help", "--man", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, ".TH TOKENMGR 1"));
    ck_assert_ptr_nonnull(strstr(r.out, "\\-\\-from\\-keepa"));
    r = run_cli("--version", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "tokenmgr " TKM_VERSION));
    expect_fail(run_cli("help", "frob", NULL), 64, "no command 'frob'");
    expect_fail(run_cli("recovery", NULL), 64,
                "recovery needs one of: status reset pause resume log");
    expect_fail(run_cli("recovery", "frob", NULL), 64, "not frob");
}
END_TEST

START_TEST(test_config_errors)
{
    char path[] = "/tmp/tkm-cli-yaml-XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_eq(write(fd, "bucket:\n  floor: 3\n", 19), 19);
    close(fd);
    expect_fail(run_cli("--config", path, "status", NULL), 78,
                ":2:3: unknown option 'bucket.floor'");
    setenv("TOKENMGR_CONFIG", path, 1);
    expect_fail(run_cli("status", NULL), 78, "bucket.floor");
    expect_fail(run_cli("config", "check", NULL), 78, "bucket.floor");
    setenv("TOKENMGR_CONFIG", "", 1);
    expect_fail(run_cli("config", "check", path, NULL), 78,
                ":2:3: unknown option 'bucket.floor' (did you mean "
                "'bucket.soft_floor'?)");
    unlink(path);
    expect_fail(run_cli("--pool", "my pool", "status", NULL), 78,
                "--pool: 'my pool' is not a pool name");
    expect_fail(run_cli("--redis", "http://x", "status", NULL), 78,
                "Redis URL");
    expect_fail(run_cli("--config", "/nonexistent.yaml", "status", NULL), 78,
                "/nonexistent.yaml: cannot open");
}
END_TEST

/* config show: every effective value with its source; --set any option. */
START_TEST(test_config_show_and_set)
{
    char path[] = "/tmp/tkm-cli-show-XXXXXX";
    int fd = mkstemp(path);
    run_result r;

    ck_assert_int_eq(write(fd, "bucket:\n  soft_floor: 30\n", 25), 25);
    close(fd);
    setenv("TOKENMGR_CONFIG", path, 1);
    setenv("TOKENMGR_BUCKET_MAX_WAIT_S", "90", 1);
    r = run_cli("--set", "bucket.lease_ttl_s=300", "--pool", "shown", "config",
                "show", NULL);
    unsetenv("TOKENMGR_BUCKET_MAX_WAIT_S");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "# file: "));
    ck_assert_ptr_nonnull(strstr(r.out, "$TOKENMGR_CONFIG"));
    ck_assert_msg(strstr(r.out, "bucket.soft_floor") &&
                      strstr(strstr(r.out, "bucket.soft_floor"), "# file"),
                  "%s", r.out);
    ck_assert_ptr_nonnull(
        strstr(strstr(r.out, "bucket.max_wait_s"), "# environment"));
    ck_assert_ptr_nonnull(
        strstr(strstr(r.out, "bucket.lease_ttl_s"), "# flag"));
    ck_assert_ptr_nonnull(strstr(strstr(r.out, "pool "), "# flag"));
    ck_assert_ptr_nonnull(
        strstr(strstr(r.out, "bucket.capacity"), "# default"));
    r = run_cli("config", "show", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "{\"key\":\"bucket.soft_floor\","
                                        "\"value\":\"30\",\"source\":"
                                        "\"file\"}"));
    setenv("TOKENMGR_CONFIG", "", 1);
    unlink(path);
    expect_fail(run_cli("--set", "bucket.soft_floor", "status", NULL), 64,
                "--set needs KEY=VALUE");
    expect_fail(run_cli("--set", "bucket.sof_floor=3", "status", NULL), 78,
                "unknown option 'bucket.sof_floor'");
    expect_fail(
        run_cli("--set", "recovery.window_s=30", "config", "show", NULL), 78,
        "--set recovery.window_s is 30, outside 60..2592000");
    setenv("TOKENMGR_RECOVERY_WINDOW_S", "30", 1);
    expect_fail(run_cli("config", "show", NULL), 78,
                "TOKENMGR_RECOVERY_WINDOW_S is 30, outside 60..2592000");
    unsetenv("TOKENMGR_RECOVERY_WINDOW_S");
}
END_TEST

/* Every option at its minimum - 1 and maximum + 1 through --set: the same
 * refusal as in the file, the environment and the collectd block. */
START_TEST(test_every_option_via_set)
{
    size_t checked = 0;

    setenv("TOKENMGR_CONFIG", "", 1);
    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_info info;
        char bad[2][40], kv[160], want[200];
        long long a, b;
        double x, y;

        tkm_option_describe(i, &info);
        if (sscanf(info.range, "%lld..%lld", &a, &b) == 2) {
            snprintf(bad[0], sizeof(bad[0]), "%lld", a - 1);
            snprintf(bad[1], sizeof(bad[1]), "%lld", b + 1);
        } else if (sscanf(info.range + 1, "%lf, %lf]", &x, &y) == 2) {
            snprintf(bad[0], sizeof(bad[0]), "%g",
                     info.range[0] == '(' ? x : x - 0.5);
            snprintf(bad[1], sizeof(bad[1]), "%g", y + 0.5);
        } else {
            continue;
        }
        for (int k = 0; k < 2; k++) {
            snprintf(kv, sizeof(kv), "%s=%s", info.key, bad[k]);
            snprintf(want, sizeof(want), "--set %s is %s, outside %s", info.key,
                     bad[k], info.range);
            expect_fail(run_cli("--set", kv, "config", "show", NULL), 78, want);
            checked++;
        }
    }
    ck_assert_uint_ge(checked, 60);
}
END_TEST

START_TEST(test_redis_down_is_69)
{
    unsetenv("TOKENMGR_REDIS_URL");
    expect_fail(
        run_cli("--redis", "unix:///nonexistent/r.sock", "status", NULL), 69,
        "cannot connect to Redis");
    setenv("TOKENMGR_REDIS_URL", "unix:///nonexistent/r.sock", 1);
    expect_fail(run_cli("acquire", "1", NULL), 69, "cannot connect");
    unsetenv("TOKENMGR_REDIS_URL");
}
END_TEST

START_TEST(test_status_json_keys)
{
    static const char *keys[] = {
        "\"pool\":\"keepa\"",         "\"tokens\":100",
        "\"capacity\":300",           "\"refill_rate\":5",
        "\"refill_period_ms\":60000", "\"refill_in_ms\":",
        "\"recharge_mode\":false",    "\"recharge_since_ms\":null",
        "\"recharge_target\":50",     "\"inflight\":0",
        "\"inflight_tokens\":0",      "\"synced\":true",
        "\"last_sync_age_s\":",       "\"workers_alive\":0",
        "\"workers_total\":0",        "\"heartbeat_age_s\":null"};
    run_result r;

    use_server();
    r = run_cli("status", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"synced\":false"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"tokens\":null"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"last_sync_age_s\":null"));
    ck_assert_int_eq(
        run_cli("sync", "--tokens", "100", "--rate", "5", NULL).status, 0);
    r = run_cli("status", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(strstr(r.out, keys[i]) != NULL, "%s lacks %s", r.out,
                      keys[i]);
    r = run_cli("status", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "100 / 300"));
}
END_TEST

START_TEST(test_acquire_complete_release)
{
    run_result r;
    char grant[64];

    use_server();
    r = run_cli("acquire", "5", "--json", NULL);
    ck_assert_int_eq(r.status, 75);
    ck_assert_ptr_nonnull(strstr(r.out, "\"reason\":\"need_sync\""));
    run_cli("--pool", "p", "sync", "--tokens", "30", "--rate", "5",
            "--refill-in", "30000", "--timestamp", "1000", NULL);
    r = run_cli("--pool", "p", "acquire", "15", NULL);
    ck_assert_int_eq(r.status, 0);
    snprintf(grant, sizeof(grant), "%.*s", (int)strcspn(r.out, "\n"), r.out);
    r = run_cli("--pool", "p", "acquire", "11", "--json", NULL);
    ck_assert_int_eq(r.status, 75);
    ck_assert_ptr_nonnull(strstr(r.out, "\"granted\":false"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"grant\":null"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"tokens\":15"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"reason\":\"recharging\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"recharge_mode\":true"));
    expect_fail(run_cli("--pool", "p", "acquire", "11", NULL), 75,
                "denied (recharging), balance 15; retry in");
    r = run_cli("--pool", "p", "complete", grant, "--consumed", "20",
                "--tokens-left", "8", "--timestamp", "2000", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "balance 8"));
    expect_fail(run_cli("--pool", "p", "release", grant, NULL), 1,
                "no reservation");
    expect_fail(run_cli("--pool", "p", "acquire", "100000", NULL), 64,
                "can never be granted");
    ck_assert_int_eq(run_cli("--pool", "p", "recharge", "off", NULL).status, 0);
    /* reset says what it would delete, and deletes only with --yes. */
    expect_fail(run_cli("--pool", "p", "reset", NULL), 64,
                "would delete pool p's state: the bucket (8 tokens)");
    r = run_cli("--pool", "p", "reset", "--yes", NULL);
    ck_assert_int_eq(r.status, 0);
    /* Ended leases left no keys behind: only the bucket remained. */
    ck_assert_ptr_nonnull(strstr(r.out, "deleted 1 key of pool p"));
    ck_assert_ptr_nonnull(
        strstr(run_cli("--pool", "p", "status", NULL).out, "no sync yet"));
}
END_TEST

START_TEST(test_heartbeat_workers_wait)
{
    run_result r;

    use_server();
    r = run_cli("heartbeat", "--worker", "host1:42", "--phase",
                "batch \"4\"/10", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    r = run_cli("heartbeat", "--worker", "host2:7", "--busy-for", "30", NULL);
    ck_assert_int_eq(r.status, 0);
    r = run_cli("workers", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"id\":\"host1:42\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"phase\":\"batch \\\"4\\\"/10\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"heartbeat_age_s\":"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"busy_until_ms\":null"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"alive\":true"));
    r = run_cli("workers", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "host2:7"));
    r = run_cli("status", "--json", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "\"workers_alive\":2"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"workers_total\":2"));
    ck_assert_ptr_null(strstr(r.out, "\"heartbeat_age_s\":null"));
    expect_fail(run_cli("heartbeat", "--worker", "a b", NULL), 64,
                "worker id 'a b' is invalid");
    expect_fail(run_cli("heartbeat", "--phase", "x", NULL), 64,
                "needs --worker ID");
    expect_fail(run_cli("heartbeat", "--worker", "w", "--busy-for", "-1", NULL),
                64, "--busy-for: '-1'");
    expect_fail(run_cli("heartbeat", "--worker", NULL), 64, "--worker needs");
    expect_fail(run_cli("acquire", "5", "--wait", "x", NULL), 64,
                "--wait: 'x'");
    run_cli("sync", "--tokens", "0", "--rate", "5", "--refill-in", "30000",
            NULL);
    expect_fail(run_cli("acquire", "5", "--wait", "2", NULL), 75,
                "is longer than --wait 2 s");
    r = run_cli("acquire", "5", "--wait", "1", "--json", NULL);
    ck_assert_int_eq(r.status, 75);
    ck_assert_ptr_nonnull(strstr(r.out, "\"reason\":\"wait_too_long\""));
}
END_TEST

/* What an operator does: forget a departed worker, pause recovery for a
 * while; the tool itself never shows up as a worker. */
START_TEST(test_operator_commands)
{
    run_result r;

    use_server();
    run_cli("sync", "--tokens", "0", "--rate", "5", "--refill-in", "60000",
            NULL);
    /* A blocking acquire from the tool beats as nobody... */
    r = run_cli("acquire", "5", "--wait", "1", NULL);
    ck_assert_int_eq(r.status, 75);
    r = run_cli("workers", "--json", NULL);
    ck_assert_msg(strstr(r.out, "\"workers\":[]") != NULL, "%s", r.out);
    /* ...unless it is told whom. */
    run_cli("sync", "--tokens", "0", "--rate", "5", "--refill-in", "1500",
            NULL);
    r = run_cli("acquire", "5", "--wait", "3", "--worker", "cron:1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    r = run_cli("workers", "--json", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "\"id\":\"cron:1\""));
    r = run_cli("workers", "forget", "cron:1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "forgot worker cron:1"));
    r = run_cli("workers", "--json", NULL);
    ck_assert_ptr_null(strstr(r.out, "cron:1"));
    expect_fail(run_cli("workers", "forget", "cron:1", NULL), 1,
                "pool keepa has no worker 'cron:1'");
    expect_fail(run_cli("workers", "forget", "a b", NULL), 64,
                "is not a worker id");
    expect_fail(run_cli("workers", "forget", NULL), 64, "needs ID");
    /* The kill switch for a while. */
    r = run_cli("recovery", "pause", "--for", "15m", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    r = run_cli("recovery", "status", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "PAUSED for 900 s more"));
    r = run_cli("recovery", "status", "--json", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "\"paused\":true"));
    expect_fail(run_cli("recovery", "pause", "--for", "-5", NULL), 64,
                "--for: '-5' is not a duration");
    expect_fail(run_cli("recovery", "pause", "--for", "5y", NULL), 64,
                "--for: '5y'");
    ck_assert_int_eq(run_cli("recovery", "resume", NULL).status, 0);
    r = run_cli("recovery", "status", "--json", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "\"paused\":false"));
    /* The log in text: ISO-8601 times, one field per column. */
    r = run_cli("recovery", "log", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "TIME"));
    ck_assert_ptr_nonnull(strstr(r.out, "DECISION"));
    ck_assert_msg(strstr(r.out, "Z  ") != NULL && strstr(r.out, "T") != NULL,
                  "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, " resume "));
    ck_assert_ptr_nonnull(strstr(r.out, " pause "));
    /* reset --all also takes the guard and its audit trail. */
    r = run_cli("reset", "--yes", NULL);
    ck_assert_int_eq(r.status, 0);
    r = run_cli("recovery", "log", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, " resume "));
    r = run_cli("reset", "--yes", "--all", NULL);
    ck_assert_int_eq(r.status, 0);
    r = run_cli("recovery", "log", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "no recovery decision recorded"));
}
END_TEST

START_TEST(test_recovery_commands)
{
    char dir[] = "/tmp/tkm-cli-rec-XXXXXX";
    char cfg[128], script[128], record[128], got[1024] = "";
    run_result r;
    FILE *fp;

    use_server();
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(script, sizeof(script), "%s/restart", dir);
    snprintf(record, sizeof(record), "%s/ran", dir);
    fp = fopen(script, "w");
    fprintf(fp, "#!/bin/sh\necho \"$TOKENMGR_POOL $TOKENMGR_REASON\" >> %s\n",
            record);
    fclose(fp);
    chmod(script, 0755);
    snprintf(cfg, sizeof(cfg), "%s/t.yaml", dir);
    fp = fopen(cfg, "w");
    fprintf(fp,
            "pool: rec\nrecovery:\n  exec: [\"%s\", \"--graceful\"]\n"
            "  cooldown_s: 600\n",
            script);
    fclose(fp);

    expect_fail(run_cli("recover", NULL), 64, "--reason");
    expect_fail(run_cli("recover", "--reason", "x", NULL), 78,
                "no action configured");
    r = run_cli("--config", cfg, "recover", "--reason", "alert fired", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "recovery action"));
    expect_fail(run_cli("--config", cfg, "recover", "--reason", "again", NULL),
                75, "not run (grace)");
    fp = fopen(record, "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_ptr_nonnull(fgets(got, sizeof(got), fp));
    ck_assert_ptr_null(fgets(got + strlen(got), 100, fp)); /* exactly once */
    fclose(fp);
    ck_assert_str_eq(got, "rec alert fired\n");

    r = run_cli("--config", cfg, "recovery", "status", "--json", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"actions_total\":1"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"paused\":false"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"escalated\":false"));
    ck_assert_int_eq(run_cli("--config", cfg, "recovery", "pause", NULL).status,
                     0);
    r = run_cli("--config", cfg, "recovery", "status", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "PAUSED"));
    ck_assert_int_eq(
        run_cli("--config", cfg, "recovery", "resume", NULL).status, 0);
    ck_assert_int_eq(run_cli("--config", cfg, "recovery", "reset", NULL).status,
                     0);
    r = run_cli("--config", cfg, "recovery", "log", "--json", "--count", "10",
                NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"decision\":\"act\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"decision\":\"finished\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"outcome\":\"ok\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"decision\":\"paused\"")
                              ? "x"
                              : strstr(r.out, "\"decision\":\"pause\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"decision\":\"reset\""));
    expect_fail(
        run_cli("--config", cfg, "recovery", "log", "--count", "0", NULL), 64,
        "--count");
    expect_fail(run_cli("--config", cfg, "recovery", "frob", NULL), 64, "frob");
    unlink(script);
    unlink(record);
    unlink(cfg);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");

    tkt_add_tests(tkt_tcase(s, "arguments", 0), test_help, test_usage_errors,
                  test_config_show_and_set, test_every_option_via_set,
                  test_config_errors, test_redis_down_is_69, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "commands", 30), test_status_json_keys,
                  test_acquire_complete_release, test_heartbeat_workers_wait,
                  test_operator_commands, test_recovery_commands, NULL);
    return tkt_run_suite(s, 0);
}
