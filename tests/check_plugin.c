/*
 * The collectd plugin end to end: a real collectd loads build/plugin/
 * tokenmgr.so beside the stock csv and logfile plugins, reads a private
 * redis-server (a native pool driven by the tokenmgr command, a legacy pool
 * written the way the Python system wrote it), and the values land in csv
 * files that the tests read back.  Redis is killed and restarted under the
 * running daemon; bad configurations are refused by `collectd -T`.
 * collectd, its main collectd.conf (tests/fixtures/collectd.conf.in) and
 * Redis are the fixtures of tests/fixtures/; each test writes its own
 * <Plugin tokenmgr> file, which that main config Includes.
 *
 * The suite runs without forking (CK_NOFORK) so that each test's checked
 * teardown stops its collectd and redis-server even when an assertion
 * failed.  The soak (--soak) is its own CTest test, labelled soak.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectd.h"
#include "tkt.h"

#define HOST "tkmtest"

static tkt_collectd cd;

/* ---- the test's Redis ---------------------------------------------------- */

/* The tokenmgr command on the test's Redis ($TOKENMGR_REDIS_URL), which
 * must succeed. */
#define cli(...) cli_ok(tkt_cli(__VA_ARGS__))

static void cli_ok(const tkt_output *o)
{
    ck_assert_msg(o->status == 0, "tokenmgr exited %d: %s%s", o->status, o->out,
                  o->err);
}

static double redis_now(void)
{
    redisContext *r = tkt_raw();
    redisReply *t = tkt_cmd(r, "TIME");
    double now;

    now = (double)strtoll(t->element[0]->str, NULL, 10) +
          (double)strtoll(t->element[1]->str, NULL, 10) / 1e6;
    freeReplyObject(t);
    redisFree(r);
    return now;
}

/* The legacy keys as the Python system left them, relative to Redis' now. */
static void write_legacy(const char *tokens, double sync_ago, double beat_ago,
                         int recharge)
{
    double now = redis_now();

    tkt_do("SET keepa_tokens_left %s", tokens);
    tkt_do("SET keepa_refill_rate 5.0");
    tkt_do("SET keepa_token_timestamp %.6f", now - sync_ago);
    tkt_do("SET keepa_worker_last_heartbeat %.6f", now - beat_ago);
    if (recharge) {
        tkt_do("SET keepa_recharge_mode_active 1");
        tkt_do("SET keepa_recharge_start_time %.6f", now - 60);
    }
}

/* ---- collectd ------------------------------------------------------------ */

/* A native pool "native1" and a legacy pool "old" on the test's Redis. */
static const char *both_pools(void)
{
    static char text[2048];

    snprintf(text, sizeof(text),
             "  <Pool \"native1\">\n"
             "    RedisURL \"%s\"\n"
             "    Timeout 300\n"
             "    WorkerMetrics true\n"
             "  </Pool>\n"
             "  <Pool \"old\">\n"
             "    RedisURL \"%s\"\n"
             "    Layout \"legacy\"\n"
             "    Timeout 300\n"
             "  </Pool>\n",
             tkt_server.url, tkt_server.url);
    return text;
}

/* The main config around a plugin config: <Plugin tokenmgr> with `pools`,
 * then `more` (other plugins). */
static void configure(double interval, const char *pools, const char *more)
{
    tkt_collectd_opts o = {.interval = interval, .unixsock = 1};

    ck_assert_int_eq(
        tkt_collectd_plugin_conf(&cd, "<Plugin tokenmgr>\n%s</Plugin>\n%s",
                                 pools, more != NULL ? more : ""),
        0);
    ck_assert_int_eq(tkt_collectd_render(&cd, &o), 0);
}

static void start_collectd_with(double interval, int under_valgrind,
                                const char *pools, const char *more)
{
    configure(interval, pools, more);
    ck_assert_int_eq(tkt_collectd_start(&cd, under_valgrind), 0);
    if (!tkt_collectd_ready(&cd, 30000)) {
        tkt_collectd_dump(&cd);
        ck_abort_msg("collectd did not start");
    }
}

static void start_collectd(double interval, int under_valgrind)
{
    start_collectd_with(interval, under_valgrind, both_pools(), NULL);
}

/* ---- reading csv --------------------------------------------------------- */

static int last_value(const char *pool, const char *metric, double *t,
                      double *v)
{
    return tkt_collectd_last(&cd, pool, metric, t, v);
}

/* Wait for a line stamped after `after`; 1 when it came in time. */
static int wait_line(const char *pool, const char *metric, double after,
                     double timeout_s, double *t, double *v)
{
    return tkt_collectd_wait(&cd, pool, metric, after, timeout_s, NAN, 0, t, v);
}

/* Wait for `want` (within tol) on a line stamped after `after`; returns
 * that line's time. */
static double wait_value(const char *pool, const char *metric, double after,
                         double timeout_s, double want, double tol)
{
    double t, v;

    if (!tkt_collectd_wait(&cd, pool, metric, after, timeout_s, want, tol, &t,
                           &v)) {
        tkt_collectd_dump(&cd);
        ck_abort_msg("%s %s: %s %g after %.3f, expected %g", pool, metric,
                     t > 0 ? "last value" : "no line", v, after, want);
    }
    return t;
}

/* Every metric's last line comes from one read: one timestamp.  csv
 * writes a read's values one file at a time, so a file may lag behind the
 * one the caller waited for: look again, for up to 2 s. */
static void same_read(const char *pool, const char *const *metrics)
{
    const char *missing = NULL;

    for (int attempt = 0; attempt < 20; attempt++) {
        double t0 = -1, t, v;
        int same = 1;

        missing = NULL;
        for (const char *const *m = metrics; *m != NULL && !missing; m++) {
            if (!last_value(pool, *m, &t, &v)) {
                missing = *m;
                break;
            }
            if (t0 < 0)
                t0 = t;
            same = same && t == t0;
        }
        if (!missing && same)
            return;
        tkt_sleep_ms(100); /* a read was being written: look again */
    }
    if (missing)
        ck_abort_msg("%s %s missing", pool, missing);
    ck_abort_msg("%s: the metrics of one read carry different timestamps",
                 pool);
}

static int has_metric(const char *pool, const char *metric)
{
    double t, v;

    return last_value(pool, metric, &t, &v);
}

static int count_in_log(const char *needle)
{
    return tkt_count_in(cd.log, needle);
}

/* ---- fixtures ------------------------------------------------------------ */

static void setup(void)
{
    if (tkt_redis_start(&tkt_server) != 0)
        ck_abort_msg("cannot start redis-server");
    ck_assert_int_eq(tkt_collectd_init(&cd, HOST), 0);
    setenv("TOKENMGR_REDIS_URL", tkt_server.url, 1);
    /* No configuration file, not even the host's /etc/tokenmgr one. */
    setenv("TOKENMGR_CONFIG", "", 1);
}

static void teardown(void)
{
    tkt_collectd_cleanup(&cd);
    tkt_redis_stop(&tkt_server);
}

/* ---- tests --------------------------------------------------------------- */

static const char *const native_metrics[] = {"tokens",        "capacity",
                                             "refill_rate",   "recharge_mode",
                                             "inflight",      "workers_alive",
                                             "heartbeat_age", "last_sync_age",
                                             "redis_up",      NULL};

static const char *const legacy_metrics[] = {
    "tokens",        "capacity",      "refill_rate", "recharge_mode",
    "heartbeat_age", "last_sync_age", "redis_up",    NULL};

START_TEST(test_values)
{
    double before, after, t, v, t1, now;

    cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5", NULL);
    cli("--pool", "native1", "acquire", "3", NULL);
    before = tkt_wall_now();
    cli("--pool", "native1", "heartbeat", "--worker", "w1", NULL);
    cli("--pool", "native1", "heartbeat", "--worker", "w2", NULL);
    after = tkt_wall_now();
    write_legacy("54.0", 130.5, 30, 1);
    now = redis_now();
    /* A worker last heard from 1000 s ago: listed (within the retention),
     * not alive (past the stall age, 900 s). */
    tkt_do("ZADD tokenmgr:{native1}:heartbeats %.0f w3", (now - 1000) * 1000);
    tkt_do("HSET tokenmgr:{native1}:workers w3 0||gone");
    start_collectd(1, 0);

    /* Native: what the tokenmgr command did. */
    t = wait_value("native1", "tokens", 0, 10, 117, 0);
    same_read("native1", native_metrics);
    ck_assert(last_value("native1", "capacity", &t1, &v) && v == 300);
    ck_assert(last_value("native1", "refill_rate", &t1, &v) && v == 5);
    ck_assert(last_value("native1", "recharge_mode", &t1, &v) && v == 0);
    ck_assert(last_value("native1", "inflight", &t1, &v) && v == 1);
    ck_assert(last_value("native1", "inflight#2", &t1, &v) && v == 3);
    ck_assert(last_value("native1", "workers_alive", &t1, &v) && v == 2);
    /* The thresholds in force, for alert rules to compare with: dispatched
     * after the bucket's values in the same read, so their csv lines may
     * come a moment later on a loaded machine. */
    wait_value("native1", "stall_heartbeat_age", 0, 10, 900, 0);
    wait_value("native1", "stall_tokens", 0, 10, 291, 0);
    wait_value("native1", "shared_cause", 0, 10, 0, 0);
    ck_assert(last_value("native1", "redis_up", &t1, &v) && v == 1);
    /* The freshest heartbeat's age, within one interval of the truth. */
    ck_assert(last_value("native1", "heartbeat_age", &t1, &v));
    ck_assert_msg(v >= t1 - after - 1.0 && v <= t1 - before + 0.05,
                  "heartbeat age %g at %.3f; beats between %.3f and %.3f", v,
                  t1, before, after);
    ck_assert(last_value("native1", "last_sync_age", &t1, &v));
    ck_assert(v >= 0 && v <= t1 - before + 5);
    /* Each worker's own age, in seconds too (WorkerMetrics). */
    ck_assert(last_value("native1", "worker_heartbeat_age-w2", &t1, &v));
    ck_assert_msg(v >= t1 - after - 1.0 && v <= t1 - before + 0.05,
                  "w2's heartbeat age %g at %.3f; it beat between %.3f and "
                  "%.3f",
                  v, t1, before, after);
    ck_assert(has_metric("native1", "worker_heartbeat_age-w1"));
    ck_assert(last_value("native1", "worker_heartbeat_age-w3", &t1, &v));
    ck_assert_msg(v >= 1000 + (t1 - now) - 1.0 && v <= 1000 + (t1 - now) + 0.05,
                  "w3's heartbeat age %g at %.3f, written at %.3f - 1000", v,
                  t1, now);
    /* The daemon's own cache (unixsock, as collectdctl reads it) agrees. */
    ck_assert(tkt_collectd_getval(&cd, "native1", "tokens", &v));
    ck_assert_msg(v == 117, "GETVAL tokens: %g", v);

    /* Legacy: the Python system's keys, projected to now. */
    wait_value("old", "tokens", 0, 10, 64, 0);
    same_read("old", legacy_metrics);
    ck_assert(last_value("old", "capacity", &t1, &v) && v == 300);
    ck_assert(last_value("old", "refill_rate", &t1, &v) && v == 5);
    ck_assert(last_value("old", "recharge_mode", &t1, &v) && v == 1);
    ck_assert(last_value("old", "heartbeat_age", &t1, &v));
    ck_assert_msg(v >= 30 + (t1 - now) - 1.0 && v <= 30 + (t1 - now) + 0.05,
                  "legacy heartbeat age %g at %.3f, written at %.3f - 30", v,
                  t1, now);
    ck_assert(last_value("old", "last_sync_age", &t1, &v));
    ck_assert(v >= 130.5 + (t1 - now) - 1.0 && v <= 130.5 + (t1 - now) + 0.05);
    /* What the legacy keys cannot tell is not invented. */
    ck_assert(!has_metric("old", "inflight"));
    ck_assert(!has_metric("old", "workers_alive"));

    /* Ages far from 0, so that their unit shows: every heartbeat 600 s old
     * and the last sync 700 s old, rewritten on Redis' clock. */
    now = redis_now();
    tkt_do("ZADD tokenmgr:{native1}:heartbeats XX %.0f w1 %.0f w2",
           (now - 600) * 1000, (now - 600) * 1000);
    tkt_do("HSET tokenmgr:{native1}:bucket sync_ms %.0f", (now - 700) * 1000);
    t = tkt_wall_now();
    ck_assert(wait_line("native1", "heartbeat_age", t + 0.05, 5, &t1, &v));
    ck_assert_msg(v >= 600 + (t1 - now) - 1.0 && v <= 600 + (t1 - now) + 0.05,
                  "heartbeat age %g at %.3f, every beat at %.3f - 600", v, t1,
                  now);
    same_read("native1", native_metrics);
    ck_assert(last_value("native1", "last_sync_age", &t1, &v));
    ck_assert_msg(v >= 700 + (t1 - now) - 1.0 && v <= 700 + (t1 - now) + 0.05,
                  "last sync age %g at %.3f, synced at %.3f - 700", v, t1, now);
    ck_assert(
        wait_line("native1", "worker_heartbeat_age-w2", t + 0.05, 5, &t1, &v));
    ck_assert_msg(v >= 600 + (t1 - now) - 1.0 && v <= 600 + (t1 - now) + 0.05,
                  "w2's heartbeat age %g at %.3f, its beat at %.3f - 600", v,
                  t1, now);
    ck_assert(last_value("native1", "workers_alive", &t1, &v) && v == 2);

    /* Changes show within an interval or two.  Recharge shows as the next
     * decision would see it: on below the target (50) only. */
    cli("--pool", "native1", "sync", "--tokens", "30", "--rate", "5", NULL);
    t = tkt_wall_now();
    cli("--pool", "native1", "recharge", "on", NULL);
    wait_value("native1", "recharge_mode", t, 5, 1, 0);
    t = tkt_wall_now();
    tkt_do("DEL keepa_recharge_mode_active");
    wait_value("old", "recharge_mode", t, 5, 0, 0);
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
    ck_assert_int_eq(tkt_count_in(cd.out, "AddressSanitizer"), 0);
}
END_TEST

START_TEST(test_garbage)
{
    double t, t1, v;

    cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5", NULL);
    write_legacy("54.0", 130.5, 30, 0);
    start_collectd(1, 0);
    wait_value("native1", "tokens", 0, 10, 120, 0);
    wait_value("old", "tokens", 0, 10, 64, 0);

    /* A garbage legacy key: its metric stops, the others flow, a warning
     * names the key. */
    t = tkt_wall_now();
    tkt_do("SET keepa_tokens_left abc");
    ck_assert(wait_line("old", "refill_rate", t + 1.5, 5, &t1, &v));
    ck_assert(last_value("old", "tokens", &t1, &v));
    ck_assert_msg(t1 < t + 0.5, "tokens still published at %.3f", t1);
    ck_assert(last_value("old", "heartbeat_age", &t1, &v));
    ck_assert(t1 > t + 1.5);
    ck_assert_int_ge(count_in_log("legacy key keepa_tokens_left holds "
                                  "'abc'"),
                     1);
    t = tkt_wall_now();
    tkt_do("SET keepa_tokens_left 70");
    wait_value("old", "tokens", t, 5, 80, 0); /* + 2 minutes of 5 */
    ck_assert_int_eq(count_in_log("OKAY: legacy key keepa_tokens_left is "
                                  "sane again"),
                     1);
    t = tkt_wall_now();
    tkt_do("SET keepa_refill_rate nan");
    ck_assert(wait_line("old", "heartbeat_age", t + 1.5, 5, &t1, &v));
    ck_assert(last_value("old", "refill_rate", &t1, &v) && t1 < t + 0.5);
    ck_assert(last_value("old", "tokens", &t1, &v) && t1 < t + 0.5);
    ck_assert_int_ge(count_in_log("keepa_refill_rate holds 'nan'"), 1);

    /* Garbage in the native pool's hash: Redis is up, the bucket metrics
     * are skipped with a warning, and come back with a sync. */
    t = tkt_wall_now();
    tkt_do("HSET tokenmgr:{native1}:bucket tokens abc");
    ck_assert(wait_line("native1", "redis_up", t + 1.5, 5, &t1, &v));
    ck_assert(v == 1);
    ck_assert(last_value("native1", "tokens", &t1, &v) && t1 < t + 0.5);
    ck_assert_int_ge(count_in_log("pool \"native1\": pool state "
                                  "unreadable"),
                     1);
    ck_assert_int_ge(count_in_log("'tokens'"), 1);
    t = tkt_wall_now();
    cli("--pool", "native1", "reset", "--yes", NULL);
    cli("--pool", "native1", "sync", "--tokens", "42", "--rate", "5", NULL);
    wait_value("native1", "tokens", t, 5, 42, 0);
    ck_assert_int_eq(count_in_log("OKAY: pool state readable again"), 1);
    ck_assert(tkt_collectd_alive(&cd));
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
}
END_TEST

START_TEST(test_redis_outage)
{
    char needle[128];

    cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5", NULL);
    write_legacy("54.0", 130.5, 30, 1);
    start_collectd(1, 0);
    wait_value("native1", "tokens", 0, 10, 120, 0);
    wait_value("old", "tokens", 0, 10, 64, 0);
    tkt_do("SAVE"); /* the restart reloads the keys */

    for (int outage = 1; outage <= 2; outage++) {
        double killed, back, t, t1, v;

        killed = tkt_wall_now();
        tkt_redis_kill(&tkt_server);
        t = wait_value("native1", "redis_up", killed, 4, 0, 0);
        ck_assert_msg(t - killed <= 2.25, "redis_up 0 after %.3f s",
                      t - killed);
        t = wait_value("old", "redis_up", killed, 4, 0, 0);
        ck_assert_msg(t - killed <= 2.25, "legacy redis_up 0 after %.3f s",
                      t - killed);
        tkt_sleep_ms(2500); /* a few reads into the outage */
        /* Nothing but redis_up while down. */
        ck_assert(last_value("native1", "tokens", &t1, &v));
        ck_assert_msg(t1 < killed + 0.5, "tokens published at %.3f", t1);
        ck_assert(last_value("old", "tokens", &t1, &v));
        ck_assert(t1 < killed + 0.5);
        /* One ERROR per outage, however many reads fail. */
        snprintf(needle, sizeof(needle), "pool \"native1\": Redis unavailable");
        ck_assert_int_eq(count_in_log(needle), outage);
        snprintf(needle, sizeof(needle), "pool \"old\": Redis unavailable");
        ck_assert_int_eq(count_in_log(needle), outage);

        back = tkt_wall_now();
        ck_assert_int_eq(tkt_redis_restart(&tkt_server), 0);
        wait_value("native1", "redis_up", back, 5, 1, 0);
        wait_value("native1", "tokens", back, 5, 120, 0);
        wait_value("old", "tokens", back, 5, 64, 0);
        ck_assert_int_eq(
            count_in_log("pool \"native1\": OKAY: Redis answers again"),
            outage);
    }
    /* The same daemon all along. */
    ck_assert(tkt_collectd_alive(&cd));
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
}
END_TEST

/*
 * A Redis that accepts connections and never answers (stopped, swapping,
 * stuck in a slow script): each read gives up after the pool's Timeout
 * (300 ms here), so reads keep their interval and report redis_up 0.
 */
START_TEST(test_redis_hung)
{
    double stopped, resumed, t, t1, v;
    int lines = 0;

    cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5", NULL);
    write_legacy("54.0", 130.5, 30, 1);
    start_collectd(1, 0);
    wait_value("native1", "tokens", 0, 10, 120, 0);
    stopped = tkt_wall_now();
    kill(tkt_server.pid, SIGSTOP);
    t = wait_value("native1", "redis_up", stopped, 4, 0, 0);
    ck_assert_msg(t - stopped <= 2.25, "redis_up 0 after %.3f s", t - stopped);
    wait_value("old", "redis_up", stopped, 4, 0, 0);
    /* The read thread is not stuck: one redis_up 0 per interval. */
    for (double after = t; lines < 3; lines++) {
        ck_assert_msg(wait_line("native1", "redis_up", after, 1.6, &t1, &v),
                      "no read for %.3f s while Redis hangs",
                      tkt_wall_now() - after);
        ck_assert(v == 0);
        after = t1;
    }
    ck_assert_int_eq(
        count_in_log("pool \"native1\": Redis unavailable (check RedisURL, "
                     "or redis.url in the ConfigFile), publishing redis_up 0 "
                     "only: Redis at unix:"),
        1);
    ck_assert_int_ge(count_in_log("did not answer"), 1);
    resumed = tkt_wall_now();
    kill(tkt_server.pid, SIGCONT);
    wait_value("native1", "redis_up", resumed, 5, 1, 0);
    wait_value("native1", "tokens", resumed, 5, 120, 0);
    wait_value("old", "tokens", resumed, 5, 64, 0);
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
}
END_TEST

/* ---- the stall rule and the recovery, end to end ------------------------ */

/* The action cd.dir/NAME (its path into script): it records its argv,
 * environment and start in cd.dir/actions (that path into record), then
 * does what `then` says (a shell line: "restart the workers"). */
static void recovery_script(const char *name, const char *then,
                            char script[400], char record[400])
{
    char text[4096];

    snprintf(script, 400, "%s/%s", cd.dir, name);
    snprintf(record, 400, "%s/actions", cd.dir);
    snprintf(text, sizeof(text),
             "echo \"start=$(date +%%s.%%N) argv=$* pool=$TOKENMGR_POOL "
             "tokens=$TOKENMGR_TOKENS age=$TOKENMGR_HEARTBEAT_AGE "
             "stale=$TOKENMGR_STALE_WORKERS id=$TOKENMGR_ACTION_ID "
             "reason=$TOKENMGR_REASON\" >> %s\n"
             "%s",
             record, then);
    ck_assert_int_eq(tkt_write_script(script, text), 0);
}

/* `tokenmgr --pool POOL recovery log --json`: its output. */
static const char *recovery_log(const char *pool)
{
    const tkt_output *o =
        tkt_cli("--pool", pool, "recovery", "log", "--json", NULL);

    ck_assert_msg(o->status == 0, "recovery log exited %d: %s", o->status,
                  o->err);
    return o->out;
}

/* collectd's exec plugin reaps every child of the daemon (COLLECTD.md);
 * with it loaded the action's exit status must still be recorded. */
#define EXEC_PLUGIN                                                            \
    "LoadPlugin exec\n"                                                        \
    "<Plugin exec>\n"                                                          \
    "  Exec \"nobody\" \"/bin/sleep\" \"3600\"\n"                              \
    "</Plugin>\n"

START_TEST(test_stall_recovered_once)
{
    char script[400], record[400], then[1024], pools[4096], *text;
    double t0, t;

    /* "Restarting" the workers: they beat again. */
    snprintf(then, sizeof(then),
             "TOKENMGR_REDIS_URL=%s %s --pool stall1 heartbeat --worker "
             "w1:restarted --phase restarted >/dev/null\nexit 0",
             tkt_server.url, TKM_CLI);
    recovery_script("restart-workers", then, script, record);
    snprintf(pools, sizeof(pools),
             "  <Pool \"stall1\">\n"
             "    RedisURL \"%s\"\n"
             "    Timeout 300\n"
             "    StallTokens 100\n"
             "    StallHeartbeatAge 2\n"
             "    StallConfirmations 2\n"
             "    <Recovery>\n"
             "      Exec \"%s\" \"--graceful\" \"a b;c\"\n"
             "      Timeout 10\n"
             "      Cooldown 3600\n"
             "      Grace 2\n"
             "    </Recovery>\n"
             "  </Pool>\n",
             tkt_server.url, script);
    cli("--pool", "stall1", "sync", "--tokens", "200", "--rate", "5", NULL);
    cli("--pool", "stall1", "heartbeat", "--worker", "w1:1", NULL);
    cli("--pool", "stall1", "heartbeat", "--worker", "w2:2", "--busy-for", "4",
        NULL);
    t0 = tkt_wall_now();
    start_collectd_with(0.5, 0, pools, EXEC_PLUGIN);
    /* Busy for 4 s: not stalled before that, whatever the heartbeat age. */
    wait_value("stall1", "stalled", t0, 10, 0, 0);
    tkt_sleep_ms(2500);
    ck_assert_msg(access(record, F_OK) != 0, "acted while a worker was busy");
    /* Then silence: stalled, acted on once, cleared by the new heartbeat. */
    t = wait_value("stall1", "stalled", t0, 15, 1, 0);
    wait_value("stall1", "stalled", t, 15, 0, 0);
    tkt_sleep_ms(3000); /* more reads: still once */
    ck_assert_int_eq(tkt_lines_in(record), 1);
    text = tkt_slurp(record);
    ck_assert_msg(strstr(text, "argv=--graceful a b;c pool=stall1 "
                               "tokens=200") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "stale=w2:2,w1:1 ") != NULL ||
                      strstr(text, "stale=w1:1,w2:2 ") != NULL,
                  "%s", text);
    free(text);
    wait_value("stall1", "recoveries", t, 5, 1, 0);
    wait_value("stall1", "escalated", t, 5, 0, 0);
    /* Audited with its exit status although the exec plugin reaps. */
    {
        const char *out = recovery_log("stall1");
        ck_assert_msg(strstr(out, "\"outcome\":\"ok\"") != NULL, "%s", out);
        ck_assert_msg(strstr(out, "\"exit\":0") != NULL, "%s", out);
        ck_assert_msg(strstr(out, "\"decision\":\"act\"") != NULL, "%s", out);
    }
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
    ck_assert_int_ge(count_in_log("pool stall1 stalled"), 1);
    ck_assert_int_ge(count_in_log("OKAY: no longer stalled"), 1);
}
END_TEST

START_TEST(test_stall_action_killed_at_timeout)
{
    char script[400], record[400], pools[4096], then[512];
    double t0, t, prev = 0, worst = 0;

    snprintf(then, sizeof(then), "sleep 60 &\nsleep 60");
    recovery_script("hang", then, script, record);
    snprintf(pools, sizeof(pools),
             "  <Pool \"stall2\">\n"
             "    RedisURL \"%s\"\n"
             "    Timeout 300\n"
             "    StallTokens 100\n"
             "    StallHeartbeatAge 1\n"
             "    StallConfirmations 1\n"
             "    <Recovery>\n"
             "      Exec \"%s\"\n"
             "      Timeout 2\n"
             "      Cooldown 3600\n"
             "    </Recovery>\n"
             "  </Pool>\n"
             "  <Pool \"other\">\n"
             "    RedisURL \"%s\"\n"
             "    Timeout 300\n"
             "  </Pool>\n",
             tkt_server.url, script, tkt_server.url);
    cli("--pool", "stall2", "sync", "--tokens", "200", "--rate", "5", NULL);
    cli("--pool", "stall2", "heartbeat", "--worker", "w1", NULL);
    cli("--pool", "other", "sync", "--tokens", "10", "--rate", "5", NULL);
    t0 = tkt_wall_now();
    start_collectd_with(0.5, 0, pools, NULL);
    t = wait_value("stall2", "stalled", t0, 10, 1, 0);
    /* The action hangs; collectd's reads go on meanwhile. */
    while (tkt_wall_now() < t + 4) {
        double tt, v;
        if (last_value("other", "tokens", &tt, &v) && tt != prev) {
            if (prev > 0 && tt - prev > worst)
                worst = tt - prev;
            prev = tt;
        }
        tkt_sleep_ms(50);
    }
    ck_assert_msg(worst < 1.6, "a read of another pool waited %.2f s", worst);
    ck_assert_int_eq(tkt_lines_in(record), 1);
    {
        const char *out = recovery_log("stall2");
        ck_assert_msg(strstr(out, "\"outcome\":\"timeout\"") != NULL, "%s",
                      out);
    }
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
    ck_assert_int_ge(count_in_log("killed at its deadline"), 1);
}
END_TEST

START_TEST(test_no_action_without_redis)
{
    char script[400], record[400], pools[4096];
    double t0, t;

    recovery_script("restart", "exit 0", script, record);
    cli("--pool", "stall3", "sync", "--tokens", "200", "--rate", "5", NULL);
    cli("--pool", "stall3", "heartbeat", "--worker", "w1", NULL);
    snprintf(pools, sizeof(pools),
             "  <Pool \"stall3\">\n"
             "    RedisURL \"%s\"\n"
             "    Timeout 200\n"
             "    StallTokens 100\n"
             "    StallHeartbeatAge 5\n"
             "    StallConfirmations 1\n"
             "    <Recovery>\n"
             "      Exec \"%s\"\n"
             "    </Recovery>\n"
             "  </Pool>\n",
             tkt_server.url, script);
    tkt_redis_kill(&tkt_server);
    t0 = tkt_wall_now();
    start_collectd_with(0.5, 0, pools, NULL);
    wait_value("stall3", "redis_up", t0, 10, 0, 0);
    tkt_sleep_ms(3000);
    ck_assert_msg(access(record, F_OK) != 0, "acted on missing data");
    ck_assert(!has_metric("stall3", "stalled"));

    /* Redis is back, every worker silent past the stall age, tokens
     * unused: the monitor lost Redis moments ago, so the workers may have
     * too, and a restart would not help: held back, saying why... */
    ck_assert_int_eq(tkt_redis_restart(&tkt_server), 0);
    cli("--pool", "stall3", "sync", "--tokens", "200", "--rate", "5", NULL);
    t = tkt_wall_now();
    tkt_do("ZADD tokenmgr:{stall3}:heartbeats %.0f w1",
           (redis_now() - 10) * 1000);
    wait_value("stall3", "shared_cause", t, 10, 1, 0);
    ck_assert_msg(access(record, F_OK) != 0, "acted although the monitor "
                                             "itself had just lost Redis");
    ck_assert_int_ge(count_in_log("stall held back, no restart: the monitor "
                                  "itself could not read Redis"),
                     1);
    /* ...until that loss is older than the stall age: then it acts. */
    wait_value("stall3", "stalled", t, 15, 1, 0);
    for (int i = 0; i < 50 && access(record, F_OK) != 0; i++)
        tkt_sleep_ms(100);
    ck_assert_msg(access(record, F_OK) == 0, "no action once the evidence "
                                             "was older than the stall age");
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
}
END_TEST

START_TEST(test_legacy_stall_recovered_once)
{
    char script[400], record[400], then[1024], pools[4096];
    double t0, t;

    /* The original workers, restarted, write their one heartbeat key. */
    snprintf(then, sizeof(then),
             "redis-cli -s %s SET keepa_worker_last_heartbeat "
             "\"$(date +%%s.%%N)\" >/dev/null\nexit 0",
             tkt_server.sock);
    recovery_script("restart-legacy", then, script, record);
    write_legacy("295.0", 10, 30, 0);
    snprintf(pools, sizeof(pools),
             "  <Pool \"old\">\n"
             "    RedisURL \"%s\"\n"
             "    Layout \"legacy\"\n"
             "    Timeout 300\n"
             "    StallTokens 290\n"
             "    StallHeartbeatAge 20\n"
             "    StallConfirmations 2\n"
             "    <Recovery>\n"
             "      Exec \"%s\"\n"
             "      Cooldown 3600\n"
             "      Grace 1\n"
             "    </Recovery>\n"
             "  </Pool>\n",
             tkt_server.url, script);
    t0 = tkt_wall_now();
    start_collectd_with(0.5, 0, pools, NULL);
    t = wait_value("old", "stalled", t0, 10, 1, 0);
    wait_value("old", "stalled", t, 10, 0, 0);
    tkt_sleep_ms(2000);
    ck_assert_int_eq(tkt_lines_in(record), 1);
    ck_assert_int_eq(tkt_collectd_stop(&cd), 0);
    /* Never a write to the legacy system's own keys but the script's. */
    {
        redisContext *r = tkt_raw();
        redisReply *rep = tkt_cmd(r, "GET keepa_tokens_left");
        ck_assert_str_eq(rep->str, "295.0");
        freeReplyObject(rep);
        redisFree(r);
    }
}
END_TEST

/* `collectd -T` on a configuration with `pools`: exit status, output (and
 * log). */
static int test_config(const char *pools, char *out, size_t outlen)
{
    configure(1, pools, NULL);
    return tkt_collectd_check(&cd, out, outlen);
}

START_TEST(test_bad_configs)
{
    static const struct {
        const char *body; /* inside <Plugin tokenmgr>, %s = the URL */
        const char *words;
    } bad[] = {
        {"<Pool \"p\">\n RedisURL \"%s\"\n Bogus 3\n</Pool>\n", "'Bogus'"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n Timeout -5\n</Pool>\n", "Timeout"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n Layout \"sideways\"\n</Pool>\n",
         "Layout"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n StallTokensRatio 1.5\n</Pool>\n",
         "StallTokensRatio"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n StallHeartbeatAg 900\n</Pool>\n",
         "<Pool \"p\"> unknown option 'StallHeartbeatAg' (did you mean "
         "'StallHeartbeatAge'?)"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n</Pool>\n<Pool \"p\">\n RedisURL "
         "\"%s\"\n</Pool>\n",
         "pool \"p\" is configured twice"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n StallTokens 290\n StallTokensRatio "
         "0.97\n</Pool>\n",
         "StallTokens and StallTokensRatio"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec \"restart.sh\"\n"
         " </Recovery>\n</Pool>\n",
         "Exec"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec "
         "\"/nonexistent/restart\"\n </Recovery>\n</Pool>\n",
         "No such file"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec \"/dev/null\"\n"
         " </Recovery>\n</Pool>\n",
         "not an executable"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec \"\"\n"
         " </Recovery>\n</Pool>\n",
         "not an absolute path"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec \"/bin/true\"\n"
         "  Cooldown -5\n </Recovery>\n</Pool>\n",
         "Cooldown"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Exec \"/bin/true\"\n"
         "  MaxActions 0\n </Recovery>\n</Pool>\n",
         "MaxActions"},
        {"<Pool \"p\">\n RedisURL \"%s\"\n <Recovery>\n  Webhook "
         "\"ftp://x/hook\"\n </Recovery>\n</Pool>\n",
         "<Recovery> Webhook: URL 'ftp://x/hook': scheme ftp is not http "
         "or https"},
        {"Frobnicate 1\n", "'Frobnicate'"},
    };
    char pools[2048], out[8192];
    int rc;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(pools, sizeof(pools), bad[i].body, tkt_server.url,
                 tkt_server.url);
        rc = test_config(pools, out, sizeof(out));
        ck_assert_msg(rc != 0, "collectd -T accepted:\n%s", pools);
        ck_assert_msg(strstr(out, bad[i].words) != NULL,
                      "collectd -T output lacks '%s':\n%s", bad[i].words, out);
        ck_assert_msg(strstr(out, "tokenmgr plugin: ") != NULL, "%s", out);
        ck_assert_int_eq(tkt_count_in(cd.out, "AddressSanitizer"), 0);
        ck_assert_msg(strstr(out, "AddressSanitizer") == NULL, "%s", out);
    }
    /* The contract's example passes (and reads once). */
    snprintf(pools, sizeof(pools),
             "<Pool \"keepa\">\n"
             "  RedisURL \"%s\"\n"
             "  Layout \"native\"\n"
             "  StallTokensRatio 0.97\n"
             "  StallHeartbeatAge 900\n"
             "  StallConfirmations 2\n"
             "  <Recovery>\n"
             "    Exec \"/bin/true\" "
             "\"--graceful\"\n"
             "    Timeout 60\n"
             "    Cooldown 1800\n"
             "    MaxActions 3\n"
             "    Window 3600\n"
             "    DryRun false\n"
             "  </Recovery>\n"
             "</Pool>\n",
             tkt_server.url);
    rc = test_config(pools, out, sizeof(out));
    ck_assert_msg(rc == 0, "collectd -T refused the example (%d):\n%s", rc,
                  out);
}
END_TEST

/*
 * Reads every 0.1 s for about a minute while Redis restarts again and
 * again, and the keys turn to garbage and back: no crash, no leak, no
 * memory error (ASan in the sanitizer build, valgrind otherwise), and the
 * values always come back.
 */
START_TEST(test_soak)
{
    const char *env = getenv("TKM_SOAK_SECONDS");
    double seconds = 50, start, t, t1, v;
    int restarts = 0, rc;

    if (env != NULL)
        ck_assert_msg(tkm_parse_double(env, 5, 600, &seconds) == TKM_OK,
                      "TKM_SOAK_SECONDS '%s' is not a number in 5..600", env);
    cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5", NULL);
    cli("--pool", "native1", "heartbeat", "--worker", "w1", NULL);
    write_legacy("54.0", 130.5, 30, 1);
    tkt_do("SAVE");
    start_collectd(0.1, 1);
    wait_value("native1", "tokens", 0, 20, 120, 0);
    start = tkt_wall_now();
    while (tkt_wall_now() - start < seconds - 6) {
        double back;

        tkt_sleep_ms(2500);
        switch (restarts % 3) {
        case 1: /* garbage everywhere, for a while */
            tkt_do("SET keepa_tokens_left nan");
            tkt_do("SET keepa_worker_last_heartbeat 1e400");
            tkt_do("HSET tokenmgr:{native1}:bucket rate x");
            tkt_sleep_ms(1500);
            tkt_do("SAVE");
            break;
        case 2: /* and back */
            write_legacy("54.0", 130.5, 30, 1);
            cli("--pool", "native1", "reset", "--yes", NULL);
            cli("--pool", "native1", "sync", "--tokens", "120", "--rate", "5",
                NULL);
            tkt_do("SAVE");
            break;
        }
        tkt_redis_kill(&tkt_server);
        tkt_sleep_ms(800);
        back = tkt_wall_now();
        ck_assert_int_eq(tkt_redis_restart(&tkt_server), 0);
        restarts++;
        wait_value("native1", "redis_up", back, 10, 1, 0);
        wait_value("old", "redis_up", back, 10, 1, 0);
        ck_assert(tkt_collectd_alive(&cd));
    }
    /* The pools are sane again and their values flow. */
    write_legacy("54.0", 130.5, 30, 1);
    cli("--pool", "native1", "reset", "--yes", NULL);
    cli("--pool", "native1", "sync", "--tokens", "99", "--rate", "5", NULL);
    t = tkt_wall_now();
    wait_value("native1", "tokens", t, 10, 99, 0);
    wait_value("old", "tokens", t, 10, 64, 0);
    ck_assert(wait_line("old", "heartbeat_age", t, 10, &t1, &v));
    ck_assert_int_ge(restarts, 5);
    ck_assert(tkt_collectd_alive(&cd));
    rc = tkt_collectd_stop(&cd);
    if (rc != 0 || tkt_count_in(cd.out, "AddressSanitizer") > 0 ||
        tkt_count_in(cd.out, "runtime error") > 0)
        tkt_collectd_dump(&cd);
    ck_assert_msg(rc == 0, "collectd exited %d after the soak%s", rc,
                  rc == 99 ? " (valgrind found errors)" : "");
    ck_assert_int_eq(tkt_count_in(cd.out, "AddressSanitizer"), 0);
    ck_assert_int_eq(tkt_count_in(cd.out, "runtime error"), 0);
    fprintf(stderr,
            "soak: %.0f s at Interval 0.1, %d Redis restarts, %s; "
            "%d 'Redis unavailable' errors logged\n",
            tkt_wall_now() - start, restarts, tkt_collectd_checker(&cd),
            count_in_log("Redis unavailable"));
}
END_TEST

/*
 * The wait queue per class, as an operator sees starvation coming: two
 * blocking acquires that cannot be served for minutes (an empty pool
 * refilling 10 tokens a minute) wait in line, one of class "interactive"
 * (named by the waiter's own configuration, not the plugin's), one of
 * "default"; the plugin publishes each class's waiters and its oldest
 * wait, and 0 for a class with nobody in line.
 */
START_TEST(test_queue)
{
    const char *argv[][12] = {
        {TKM_CLI, "--pool", "line", "acquire", "40", "--wait", "3600", NULL},
        {TKM_CLI, "--pool", "line", "--set", "queue.classes=interactive=3",
         "--set", "queue.class=interactive", "acquire", "30", "--wait", "3600",
         NULL}};
    pid_t waiter[2];
    double t, t1, v, started;
    char pools[512];

    cli("--pool", "line", "sync", "--tokens", "0", "--rate", "10", NULL);
    started = tkt_wall_now();
    for (int i = 0; i < 2; i++) {
        waiter[i] = tkt_spawn(argv[i], NULL, NULL);
        ck_assert_int_gt(waiter[i], 0);
    }
    snprintf(pools, sizeof(pools),
             "  <Pool \"line\">\n    RedisURL \"%s\"\n  </Pool>\n",
             tkt_server.url);
    start_collectd_with(1, 0, pools, NULL);

    t = wait_value("line", "queue_waiters-interactive", 0, 15, 1, 0);
    ck_assert(last_value("line", "queue_waiters-default", &t1, &v) && v == 1);
    ck_assert(last_value("line", "queue_oldest_wait-default", &t1, &v));
    ck_assert_msg(v > 0 && v <= t1 - started + 0.05,
                  "oldest wait %g s at %.3f; the waiters started at %.3f", v,
                  t1, started);
    /* The waiters leave: "default" reads 0 (its series stays); a class
     * the plugin's configuration does not list is published while it
     * holds tickets. */
    for (int i = 0; i < 2; i++)
        tkt_stop_process(waiter[i], SIGTERM, 5000);
    cli("--pool", "line", "reset", "--yes", NULL);
    cli("--pool", "line", "sync", "--tokens", "0", "--rate", "10", NULL);
    t = wait_value("line", "queue_waiters-default", t, 15, 0, 0);
    ck_assert(last_value("line", "queue_oldest_wait-default", &t1, &v) &&
              v == 0);
    ck_assert(last_value("line", "queue_waiters-interactive", &t1, &v) &&
              t1 < t);
}
END_TEST

/* A TCase of s whose tests each start their Redis and collectd. */
static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tkt_tcase(s, name, 0);

    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

/* check_plugin: the end-to-end TCases; check_plugin --soak: the soak. */
int main(int argc, char **argv)
{
    int soak = argc > 1 && strcmp(argv[1], "--soak") == 0;
    Suite *s = suite_create("plugin");

    if (argc > 1 && !soak) {
        fprintf(stderr, "usage: check_plugin [--soak]\n");
        return 2;
    }
    /* TCases by subject, so that one can run alone (CK_RUN_CASE=values). */
    if (soak) {
        tkt_add_tests(tcase(s, "soak"), test_soak, NULL);
    } else {
        tkt_add_tests(tcase(s, "values"), test_values, test_garbage, test_queue,
                      NULL);
        tkt_add_tests(tcase(s, "outages"), test_redis_outage, test_redis_hung,
                      test_bad_configs, NULL);
        tkt_add_tests(tcase(s, "recovery"), test_stall_recovered_once,
                      test_stall_action_killed_at_timeout,
                      test_no_action_without_redis,
                      test_legacy_stall_recovered_once, NULL);
    }
    /* No fork: the checked teardown then stops collectd and redis-server
     * even after a failed assertion. */
    return tkt_run_suite(s, 1);
}
