/* The stall rule (pure, table-driven), the recovery guard against a real
 * redis-server, and the supervised actions. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

/* ---- the rule
 * ---------------------------------------------------------------- */

typedef struct rule_case {
    const char *name;
    int readable;
    int64_t tokens, capacity, hb_age_ms, busy;
    int64_t stall_tokens; /* -1: ratio 0.97 */
    int reads;            /* judged this many times in a row */
    int64_t monitor_lost; /* the monitor lost Redis this long ago; -1 never */
    tkm_stall_state want;
} rule_case;

#define MIN (60 * 1000)

static const rule_case rule_cases[] = {
    {"all hold, confirmed", 1, 290, 300, 16 * MIN, 0, 290, 2, -1,
     TKM_STALL_STALLED},
    {"all hold, one read", 1, 290, 300, 16 * MIN, 0, 290, 1, -1,
     TKM_STALL_PENDING},
    {"tokens below", 1, 289, 300, 16 * MIN, 0, 290, 3, -1, TKM_STALL_OK},
    {"tokens above", 1, 350, 300, 16 * MIN, 0, 290, 2, -1, TKM_STALL_STALLED},
    {"ratio: at 0.97 x 1500", 1, 1455, 1500, 16 * MIN, 0, -1, 2, -1,
     TKM_STALL_STALLED},
    {"ratio: below (the old 290 rule misfired here)", 1, 1454, 1500, 16 * MIN,
     0, -1, 2, -1, TKM_STALL_OK},
    {"heartbeat fresh", 1, 300, 300, 14 * MIN, 0, 290, 3, -1, TKM_STALL_OK},
    {"heartbeat a ms short of the age", 1, 300, 300, 15 * MIN - 1, 0, 290, 3,
     -1, TKM_STALL_OK},
    {"heartbeat exactly at the age", 1, 300, 300, 15 * MIN, 0, 290, 2, -1,
     TKM_STALL_STALLED},
    {"a busy worker", 1, 300, 300, 20 * MIN, 1, 290, 3, -1, TKM_STALL_OK},
    {"redis unreadable", 0, 300, 300, 20 * MIN, 0, 290, 3, -1,
     TKM_STALL_UNKNOWN},
    {"no heartbeat ever", 1, 300, 300, -1, 0, 290, 3, -1, TKM_STALL_UNKNOWN},
    {"ratio without capacity", 1, 300, 0, 20 * MIN, 0, -1, 3, -1,
     TKM_STALL_UNKNOWN},
    /* The monitor's own loss of Redis is evidence, within the stall age. */
    {"monitor lost Redis 5 min ago: held back", 1, 300, 300, 16 * MIN, 0, 290,
     3, 5 * MIN, TKM_STALL_SHARED_CAUSE},
    {"monitor lost Redis exactly a stall age ago: held back", 1, 300, 300,
     16 * MIN, 0, 290, 3, 15 * MIN, TKM_STALL_SHARED_CAUSE},
    {"monitor lost Redis a ms before that: a stall", 1, 300, 300, 16 * MIN, 0,
     290, 3, 15 * MIN + 1, TKM_STALL_STALLED},
    {"monitor lost Redis but tokens are spent: ok", 1, 100, 300, 16 * MIN, 0,
     290, 3, 1000, TKM_STALL_OK},
    /* Held back longer than 3 x the stall age (45 min) past it: acts. */
    {"held back 44:59 past the age", 1, 300, 300, 60 * MIN - 1000, 0, 290, 3,
     1000, TKM_STALL_SHARED_CAUSE},
    {"held back 45:00 past the age: escalates", 1, 300, 300, 60 * MIN, 0, 290,
     3, 1000, TKM_STALL_STALLED},
};

START_TEST(test_rule_table)
{
    const rule_case *rc = &rule_cases[_i];
    tkm_stall_options o;
    tkm_stall_tracker t = {0};
    tkm_stall_input in = {.readable = rc->readable,
                          .tokens = rc->tokens,
                          .capacity = rc->capacity,
                          .heartbeat_age_ms = rc->hb_age_ms,
                          .workers_busy = rc->busy,
                          .monitor_lost_redis = rc->monitor_lost >= 0,
                          .monitor_lost_redis_age_ms = rc->monitor_lost};
    tkm_stall_verdict v;

    tkm_stall_options_init(&o);
    ck_assert_int_eq(o.shared_cause_escalate_s, 2700); /* 3 x 900 */
    o.tokens = rc->stall_tokens;
    for (int i = 0; i < rc->reads; i++)
        tkm_stall_judge(&o, &t, &in, &v);
    ck_assert_msg(v.state == rc->want, "%s: %s, want %s (%s)", rc->name,
                  tkm_stall_state_str(v.state), tkm_stall_state_str(rc->want),
                  v.why);
    if (rc->want == TKM_STALL_SHARED_CAUSE)
        ck_assert_msg(strstr(v.why, "could not read Redis") != NULL &&
                          strstr(v.evidence, "monitor") != NULL,
                      "%s: %s", rc->name, v.why);
}
END_TEST

START_TEST(test_rule_unknown_resets_confirmations)
{
    tkm_stall_options o;
    tkm_stall_tracker t = {0};
    tkm_stall_input ok = {.readable = 1,
                          .tokens = 300,
                          .capacity = 300,
                          .heartbeat_age_ms = 20 * MIN};
    tkm_stall_input blind = {.heartbeat_age_ms = -1};
    tkm_stall_verdict v;

    tkm_stall_options_init(&o);
    tkm_stall_judge(&o, &t, &ok, &v);
    tkm_stall_judge(&o, &t, &blind, &v);
    ck_assert_int_eq(v.state, TKM_STALL_UNKNOWN);
    tkm_stall_judge(&o, &t, &ok, &v);
    ck_assert_int_eq(v.state, TKM_STALL_PENDING); /* counting starts over */
}
END_TEST

static tkm_worker worker(const char *id, int64_t age_ms, int64_t busy_until)
{
    tkm_worker w;

    memset(&w, 0, sizeof(w));
    snprintf(w.id, sizeof(w.id), "%s", id);
    w.heartbeat_age_ms = age_ms;
    w.busy_until_ms = busy_until;
    return w;
}

/* A worker whose last heartbeat reported `kind` failing `before_ms`
 * before it went silent. */
static tkm_worker erring(const char *id, int64_t age_ms, const char *kind,
                         int64_t before_ms)
{
    tkm_worker w = worker(id, age_ms, -1);

    snprintf(w.error, sizeof(w.error), "%s", kind);
    w.error_age_ms = age_ms + before_ms;
    return w;
}

static tkm_stall_state judge_twice(tkm_worker *ws, size_t n,
                                   tkm_stall_verdict *v)
{
    tkm_stall_options o;
    tkm_stall_tracker t = {0};
    tkm_stall_input in = {.readable = 1,
                          .tokens = 300,
                          .capacity = 300,
                          .heartbeat_age_ms = 16 * MIN,
                          .workers = ws,
                          .nworkers = n};

    tkm_stall_options_init(&o);
    o.tokens = 290;
    tkm_stall_judge(&o, &t, &in, v);
    tkm_stall_judge(&o, &t, &in, v);
    return v->state;
}

/* The seed's stall: every worker silent together, tokens unused, Redis
 * readable.  Simultaneity alone is no evidence of a shared cause. */
START_TEST(test_rule_every_worker_silent_is_a_stall)
{
    tkm_worker ws[4];
    tkm_stall_verdict v;

    ws[0] = worker("h1:10", 16 * MIN + 10, -1);
    ws[1] = worker("h1:11", 16 * MIN + 20, -1);
    ws[2] = worker("h2:12", 16 * MIN, -1);
    ck_assert_int_eq(judge_twice(ws, 3, &v), TKM_STALL_STALLED);
    ck_assert_uint_eq(v.stale, 3);
    ck_assert_str_eq(v.stale_workers, "h1:10,h1:11,h2:12");
    ck_assert_str_eq(v.evidence, "");
    /* A stale worker among live ones: listed; the freshest beat decides. */
    ws[1] = worker("h1:11", 1000, -1);
    {
        tkm_stall_options o;
        tkm_stall_tracker t = {0};
        tkm_stall_input in = {.readable = 1,
                              .tokens = 300,
                              .capacity = 300,
                              .heartbeat_age_ms = 1000,
                              .workers = ws,
                              .nworkers = 3};
        tkm_stall_options_init(&o);
        tkm_stall_judge(&o, &t, &in, &v);
        ck_assert_int_eq(v.state, TKM_STALL_OK);
        ck_assert_uint_eq(v.stale, 2);
    }
    /* A busy worker is not stale. */
    ws[0] = worker("h1:10", 16 * MIN, 99);
    ws[1] = worker("h1:11", 16 * MIN, -1);
    ck_assert_int_eq(judge_twice(ws, 3, &v), TKM_STALL_OK);
    ck_assert_int_eq(v.busy, 1);
    /* Nor listed among the stale ones, whom an action would restart. */
    ck_assert_uint_eq(v.stale, 2);
    ck_assert_str_eq(v.stale_workers, "h1:11,h2:12");
}
END_TEST

/* Most silent workers reported errors before going silent: held back, the
 * evidence named.  Half is not most. */
START_TEST(test_rule_worker_errors_are_evidence)
{
    tkm_worker ws[4];
    tkm_stall_verdict v;

    ws[0] = erring("h1:10", 16 * MIN, "redis", 30000);
    ws[1] = erring("h1:11", 16 * MIN, "api", 1000);
    ws[2] = worker("h2:12", 16 * MIN, -1);
    ck_assert_int_eq(judge_twice(ws, 3, &v), TKM_STALL_SHARED_CAUSE);
    ck_assert_uint_eq(v.stale_errors, 2);
    ck_assert_str_eq(v.evidence, "2 of 3 silent workers reported Redis or "
                                 "API errors before going silent");
    ck_assert_ptr_nonnull(strstr(v.why, "held back"));
    /* 2 of 4: exactly half, not most. */
    ws[3] = worker("h2:13", 16 * MIN, -1);
    ck_assert_int_eq(judge_twice(ws, 4, &v), TKM_STALL_STALLED);
    ck_assert_uint_eq(v.stale_errors, 2);
    /* An error a stall age before the last beat still counts; older not. */
    ws[0] = erring("h1:10", 16 * MIN, "redis", 15 * MIN);
    ws[1] = erring("h1:11", 16 * MIN, "redis", 15 * MIN);
    ck_assert_int_eq(judge_twice(ws, 3, &v), TKM_STALL_SHARED_CAUSE);
    ws[0] = erring("h1:10", 16 * MIN, "redis", 15 * MIN + 1);
    ck_assert_int_eq(judge_twice(ws, 3, &v), TKM_STALL_STALLED);
    ck_assert_uint_eq(v.stale_errors, 1);
}
END_TEST

/* ---- the guard
 * ------------------------------------------------------------------ */

static tkm_recovery_options guard(int64_t cooldown_s, int64_t max_actions,
                                  int64_t window_s, int64_t grace_s)
{
    tkm_recovery_options r;

    tkm_recovery_options_init(&r);
    r.cooldown_s = cooldown_s;
    r.max_actions = max_actions;
    r.window_s = window_s;
    r.grace_s = grace_s;
    r.timeout_s = 5;
    return r;
}

static tkm_decision decide(tkm_client *c, const tkm_recovery_options *r,
                           const char *mode, tkm_recovery_ticket *t)
{
    tkm_code rc = tkm_recovery_decide(c, r, mode, "host-a", "test",
                                      "tokens=300", "/bin/true", t);

    ck_assert_msg(rc == TKM_OK, "decide: %s", tkm_errstr(c));
    return t->decision;
}

START_TEST(test_guard_cooldown_limit_escalation_reset)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r = guard(1, 2, 3600, 0);
    tkm_recovery_ticket t;
    tkm_recovery_state st;

    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 12, "done"),
                     TKM_OK);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_COOLDOWN);
    ck_assert_int_gt(t.cooldown_left_ms, 0);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 5, ""),
                     TKM_OK);
    /* The cooldown doubles with the second action in the window. */
    tkt_sleep_ms(1100);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_COOLDOWN);
    tkt_sleep_ms(1000);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_LIMIT);
    ck_assert_int_eq(t.escalated, 1);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ESCALATED);
    ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
    ck_assert_int_eq(st.escalated, 1);
    ck_assert_int_eq(st.total, 2);
    ck_assert_int_eq(tkm_recovery_reset(c, "host-b", "looked at it"), TKM_OK);
    ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
    ck_assert_int_eq(st.escalated, 0);
    ck_assert_int_eq(st.total, 2); /* the counter stays monotonic */
    tkm_client_free(c);
}
END_TEST

START_TEST(test_guard_unknown_and_pause_and_dry_run)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r = guard(0, 5, 3600, 0);
    tkm_recovery_ticket t;
    tkm_audit_entry *e = NULL;
    size_t n = 0;
    int seen_paused = 0, seen_dry = 0, seen_unknown = 0, seen_shared = 0;

    ck_assert_int_eq(decide(c, &r, "unknown", &t), TKM_DECIDE_UNKNOWN);
    ck_assert_int_eq(decide(c, &r, "shared_cause", &t),
                     TKM_DECIDE_SHARED_CAUSE);
    ck_assert_int_eq(tkm_recovery_pause(c, "host-a", 1, "maintenance"), TKM_OK);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_PAUSED);
    ck_assert_int_eq(tkm_recovery_pause(c, "host-a", 0, "done"), TKM_OK);
    r.dry_run = 1;
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_DRY_RUN);
    ck_assert_int_eq(tkm_recovery_log(c, 50, &e, &n), TKM_OK);
    for (size_t i = 0; i < n; i++) {
        seen_paused += strcmp(e[i].decision, "paused") == 0;
        seen_dry += strcmp(e[i].decision, "dry_run") == 0;
        seen_unknown += strcmp(e[i].decision, "unknown") == 0;
        seen_shared += strcmp(e[i].decision, "shared_cause") == 0;
        ck_assert_str_eq(e[i].host, "host-a");
    }
    ck_assert_int_eq(seen_paused, 1);
    ck_assert_int_eq(seen_dry, 1);
    ck_assert_int_eq(seen_unknown, 1);
    ck_assert_int_eq(seen_shared, 1);
    ck_assert_str_eq(e[0].decision, "dry_run"); /* newest first */
    ck_assert_str_eq(e[0].argv, "/bin/true");
    ck_assert_str_eq(e[0].inputs, "tokens=300");
    free(e);
    /* Real actions: nothing was run, nothing counted. */
    {
        tkm_recovery_state st;
        ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
        ck_assert_int_eq(st.total, 0);
    }
    tkm_client_free(c);
}
END_TEST

START_TEST(test_guard_quiet_repeats)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r = guard(0, 5, 3600, 0);
    tkm_recovery_ticket t;
    tkm_audit_entry *e = NULL;
    size_t n = 0;

    for (int i = 0; i < 10; i++)
        decide(c, &r, "unknown", &t);
    ck_assert_int_eq(tkm_recovery_log(c, 50, &e, &n), TKM_OK);
    ck_assert_uint_eq(n, 1); /* one entry, nine repeats folded */
    free(e);
    tkm_client_free(c);
}
END_TEST

#define MONITORS 6

START_TEST(test_guard_one_actor_among_monitors)
{
    tkm_options o = tkt_options();
    tkm_recovery_options r = guard(0, 100, 3600, 0);
    int out[2];
    int acted = 0, leased = 0;
    pid_t pids[MONITORS];

    ck_assert_int_eq(pipe(out), 0);
    for (int m = 0; m < MONITORS; m++) {
        pids[m] = fork();
        if (pids[m] == 0) {
            tkm_client *c = NULL;
            tkm_recovery_ticket t;
            char d;
            if (tkm_client_open(&o, &c) != TKM_OK ||
                tkm_recovery_decide(c, &r, "stalled", "host", "race", "",
                                    "/bin/true", &t) != TKM_OK)
                _exit(2);
            d = t.decision == TKM_DECIDE_ACT     ? 'A'
                : t.decision == TKM_DECIDE_LEASE ? 'L'
                                                 : '?';
            if (write(out[1], &d, 1) != 1)
                _exit(3);
            _exit(0);
        }
    }
    close(out[1]);
    for (int m = 0; m < MONITORS; m++) {
        char d;
        int status;
        ck_assert_int_eq(read(out[0], &d, 1), 1);
        acted += d == 'A';
        leased += d == 'L';
        waitpid(pids[m], &status, 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "monitor %d failed (status %d)", m, status);
    }
    close(out[0]);
    ck_assert_int_eq(acted, 1);
    ck_assert_int_eq(leased, MONITORS - 1);
}
END_TEST

START_TEST(test_guard_lease_released_only_by_holder)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r = guard(0, 100, 3600, 0);
    tkm_recovery_ticket t, other;
    tkm_recovery_state st;

    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    other = t;
    snprintf(other.lease_token, sizeof(other.lease_token), "not-the-holder");
    ck_assert_int_eq(tkm_recovery_finish(c, &other, "host-b", "ok", 0, 1, ""),
                     TKM_OK);
    ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
    ck_assert_int_gt(st.lease_ttl_ms, 0); /* still held */
    ck_assert_int_eq(decide(c, &r, "stalled", &other), TKM_DECIDE_LEASE);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 1, ""),
                     TKM_OK);
    ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
    ck_assert_int_eq(st.lease_ttl_ms, 0);
    /* The lease outlives the action's deadline. */
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_status(c, &r, &st), TKM_OK);
    ck_assert_int_gt(st.lease_ttl_ms, r.timeout_s * 1000);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_guard_grace_and_deescalation)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r = guard(0, 1, 1, 1);
    tkm_recovery_ticket t;
    tkm_recovery_state st;

    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 1, ""),
                     TKM_OK);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_GRACE);
    tkt_sleep_ms(1100);
    /* No heartbeat came after the action: it failed. */
    ck_assert_int_eq(
        tkm_recovery_observe(c, &r, "host-a", TKM_STALL_STALLED, 5000000, &st),
        TKM_OK);
    ck_assert_str_eq(st.event, "failed");
    ck_assert_int_eq(st.failed, 1);
    /* Again: the limit (1 per window) escalates. */
    ck_assert_int_eq(tkm_recovery_reset(c, "host-a", "test"), TKM_OK);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 1, ""),
                     TKM_OK);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(
        tkm_recovery_observe(c, &r, "host-a", TKM_STALL_OK, 100, &st), TKM_OK);
    ck_assert_str_eq(st.event, "recovered");
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 1, ""),
                     TKM_OK);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_ACT);
    r.window_s = 60;
    ck_assert_int_eq(tkm_recovery_finish(c, &t, "host-a", "ok", 0, 1, ""),
                     TKM_OK);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(decide(c, &r, "stalled", &t), TKM_DECIDE_LIMIT);
    /* Clear for a full window lifts the escalation. */
    r.window_s = 1;
    ck_assert_int_eq(
        tkm_recovery_observe(c, &r, "host-a", TKM_STALL_OK, 100, &st), TKM_OK);
    ck_assert_int_eq(st.escalated, 1);
    tkt_sleep_ms(1100);
    ck_assert_int_eq(
        tkm_recovery_observe(c, &r, "host-a", TKM_STALL_OK, 100, &st), TKM_OK);
    ck_assert_str_eq(st.event, "deescalated");
    ck_assert_int_eq(st.escalated, 0);
    tkm_client_free(c);
}
END_TEST

/* ---- actions
 * ----------------------------------------------------------------------- */

static char dir[64];

/* The script NAME in the test's folder dir (its path into path). */
static void make_script(const char *name, const char *body, char *path,
                        size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    ck_assert_int_eq(tkt_write_script(path, body), 0);
}

static void action_dir(void)
{
    ck_assert_int_eq(tkt_make_dir(dir, sizeof(dir), "tkm-action"), 0);
}

static void slurp(const char *path, char *buf, size_t len)
{
    tkt_read_file(path, buf, len);
}

START_TEST(test_exec_env_argv_and_status)
{
    char script[128], record[128], body[512], got[2048];
    const char *argv[4];
    tkm_action_env env = {
        "keepa", "stalled: tokens 300\nheartbeat 900 s", 300,
        905,     "h1:10,h2:11;rm -rf /,$(reboot)",       "123-4"};
    tkm_action *a = NULL;
    tkm_action_result r;
    char err[256];

    action_dir();
    snprintf(record, sizeof(record), "%s/record", dir);
    snprintf(body, sizeof(body),
             "{ echo \"argv=$*\"; env | grep ^TOKENMGR_ | sort; } > %s\n"
             "echo restarted; exit 3",
             record);
    make_script("restart", body, script, sizeof(script));
    argv[0] = script;
    argv[1] = "--graceful";
    argv[2] = "a b;c";
    argv[3] = NULL;
    ck_assert_int_eq(tkm_action_exec(argv, &env, 5000, &a, err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_action_wait(a, &r), TKM_OK);
    tkm_action_free(a);
    ck_assert_int_eq(r.done, 1);
    ck_assert_int_eq(r.exit_status, 3);
    ck_assert_int_eq(r.timed_out, 0);
    ck_assert_str_eq(r.output, "restarted\n");
    slurp(record, got, sizeof(got));
    ck_assert_ptr_nonnull(strstr(got, "argv=--graceful a b;c\n"));
    ck_assert_ptr_nonnull(strstr(got, "TOKENMGR_POOL=keepa\n"));
    ck_assert_ptr_nonnull(strstr(got, "TOKENMGR_TOKENS=300\n"));
    ck_assert_ptr_nonnull(strstr(got, "TOKENMGR_HEARTBEAT_AGE=905\n"));
    ck_assert_ptr_nonnull(strstr(got, "TOKENMGR_ACTION_ID=123-4\n"));
    ck_assert_ptr_nonnull(
        strstr(got, "TOKENMGR_REASON=stalled: tokens 300 heartbeat 900 s\n"));
    /* Ids that are not worker ids are dropped, never interpreted. */
    ck_assert_ptr_nonnull(strstr(got, "TOKENMGR_STALE_WORKERS=h1:10\n"));
}
END_TEST

/* Running, not a zombie waiting for a parent that may never reap it. */
static int alive(pid_t pid)
{
    char path[64], stat[256];

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    slurp(path, stat, sizeof(stat));
    if (stat[0] == '\0')
        return 0;
    return strstr(stat, ") Z ") == NULL;
}

static void reap_everything(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

START_TEST(test_exec_timeout_kills_group_despite_reaper)
{
    char script[128], body[256], pidfile[128], got[64];
    const char *argv[] = {NULL, NULL};
    tkm_action_env env = {"keepa", "test", 0, 0, "", "1-1"};
    tkm_action *a = NULL;
    tkm_action_result r;
    char err[256];
    int64_t t0;
    struct sigaction sa;
    int64_t child;

    action_dir();
    snprintf(pidfile, sizeof(pidfile), "%s/child", dir);
    snprintf(body, sizeof(body), "sleep 60 & echo $! > %s\nsleep 60", pidfile);
    make_script("hang", body, script, sizeof(script));
    argv[0] = script;
    /* Like collectd's exec plugin: reap every child as soon as it ends. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = reap_everything;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    t0 = tkt_now_ms();
    ck_assert_int_eq(tkm_action_exec(argv, &env, 700, &a, err, sizeof(err)),
                     TKM_OK);
    /* Returns at once: the monitor never waits for the action. */
    ck_assert_int_lt(tkt_now_ms() - t0, 300);
    ck_assert_int_eq(tkm_action_poll(a, &r), TKM_OK);
    ck_assert_int_eq(r.done, 0);
    ck_assert_int_eq(tkm_action_wait(a, &r), TKM_OK);
    tkm_action_free(a);
    ck_assert_int_eq(r.timed_out, 1);
    ck_assert_int_eq(r.exit_status, -1);
    ck_assert_int_lt(r.duration_ms, 3000);
    slurp(pidfile, got, sizeof(got));
    got[strcspn(got, "\n")] = '\0';
    ck_assert_int_eq(tkm_parse_int(got, 1, INT32_MAX, &child), TKM_OK);
    tkt_sleep_ms(100);
    ck_assert_msg(!alive((pid_t)child), "the action's child %lld survived",
                  (long long)child); /* the whole group died */
    signal(SIGCHLD, SIG_DFL);
}
END_TEST

/* The process group of this process' grandchild named `comm` (the
 * command under its supervisor), or 0 when there is none (yet). */
static pid_t grandchild_group(const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    ck_assert_ptr_nonnull(d);
    while (found == 0 && (e = readdir(d)) != NULL) {
        char path[300], stat[512], name[64], ppath[64], pstat[512];
        int pid, ppid, pgrp, gppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        slurp(path, stat, sizeof(stat));
        if (sscanf(stat, "%d (%63[^)]) %*c %d %d", &pid, name, &ppid, &pgrp) !=
                4 ||
            strcmp(name, comm) != 0)
            continue;
        snprintf(ppath, sizeof(ppath), "/proc/%d/stat", ppid);
        slurp(ppath, pstat, sizeof(pstat));
        if (sscanf(pstat, "%*d (%*[^)]) %*c %d", &gppid) == 1 &&
            gppid == (int)getpid())
            found = (pid_t)pgrp;
    }
    closedir(d);
    return found;
}

/* Freed before its deadline, an action dies whole at once: its supervisor
 * must not leave the command running with nobody to enforce the deadline. */
START_TEST(test_exec_free_kills_group)
{
    const char *argv[] = {"/bin/sleep", "7", NULL};
    tkm_action_env env = {"keepa", "test", 0, 0, "", "1-2"};
    tkm_action *a = NULL;
    char err[256];
    pid_t pgid = 0;
    int64_t t0 = tkt_now_ms(), freed;

    ck_assert_int_eq(tkm_action_exec(argv, &env, 1000, &a, err, sizeof(err)),
                     TKM_OK);
    while (pgid == 0 && tkt_now_ms() - t0 < 150) {
        pgid = grandchild_group("sleep");
        if (pgid == 0)
            tkt_sleep_ms(5);
    }
    ck_assert_msg(pgid > 0, "the command did not start");
    ck_assert_int_eq(kill(-pgid, 0), 0);
    tkt_sleep_ms(200 - (tkt_now_ms() - t0));
    freed = tkt_now_ms();
    tkm_action_free(a);
    while (kill(-pgid, 0) == 0 && tkt_now_ms() - freed < 1000)
        tkt_sleep_ms(10);
    ck_assert_msg(kill(-pgid, 0) == -1 && errno == ESRCH,
                  "the action's process group %d outlived tkm_action_free "
                  "by a second",
                  (int)pgid);
    /* Not a zombie of ours either: the supervisor was waited for. */
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
}
END_TEST

/* Two monitors: the one that acted stops while its action runs (collectd
 * shutting down).  The action is recorded "abandoned" and left to run, but
 * never past its deadline, and the actor lease outlives that deadline: the
 * other monitor cannot start a second action meanwhile (issue 17). */
START_TEST(test_abandoned_action_no_overlap)
{
    tkm_options o = tkt_options();
    tkm_client *a = tkt_open(&o), *b = tkt_open(&o);
    tkm_recovery_options r;
    tkm_recovery_request req = {.mode = TKM_MODE_STALLED,
                                .host = "monitor-a",
                                .reason = "test",
                                .inputs = "tokens=300",
                                .tokens = 300,
                                .heartbeat_age_ms = 1000};
    tkm_recovery_ticket ta, tb;
    tkm_recovery_run *run = NULL, *second = NULL;
    tkm_recovery_state st;
    tkm_audit_entry *log = NULL;
    size_t n = 0;
    char err[256];
    pid_t pgid = 0;
    int64_t t0 = tkt_now_ms(), gone;
    int abandoned = 0;

    tkm_recovery_options_init(&r);
    r.exec_argc = 2;
    strcpy(r.exec[0], "/bin/sleep");
    strcpy(r.exec[1], "30");
    r.timeout_s = 2;
    r.cooldown_s = 0;
    r.grace_s = 0;
    ck_assert_int_eq(
        tkm_recovery_begin(a, &r, &req, &ta, &run, err, sizeof(err)), TKM_OK);
    ck_assert_int_eq(ta.decision, TKM_DECIDE_ACT);
    ck_assert_ptr_nonnull(run);
    while (pgid == 0 && tkt_now_ms() - t0 < 1000) {
        pgid = grandchild_group("sleep");
        if (pgid == 0)
            tkt_sleep_ms(5);
    }
    ck_assert_msg(pgid > 0, "the action did not start");
    /* Monitor a stops: abandoned, not killed. */
    ck_assert_int_eq(tkm_recovery_settle(a, &run, TKM_SETTLE_ABANDON, NULL),
                     TKM_OK);
    ck_assert_ptr_null(run);
    ck_assert_int_eq(kill(-pgid, 0), 0);
    /* Monitor b: the lease is a's. */
    req.host = "monitor-b";
    ck_assert_int_eq(
        tkm_recovery_begin(b, &r, &req, &tb, &second, err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(tb.decision, TKM_DECIDE_LEASE);
    ck_assert_ptr_null(second);
    /* The deadline still holds: the group dies at 2 s, not at 30. */
    while (kill(-pgid, 0) == 0 && tkt_now_ms() - t0 < 5000)
        tkt_sleep_ms(20);
    gone = tkt_now_ms() - t0;
    ck_assert_msg(kill(-pgid, 0) == -1 && errno == ESRCH,
                  "the abandoned action outlived its 2 s deadline");
    ck_assert_int_ge(gone, 1800);
    /* The lease outlives the deadline: still no second action. */
    ck_assert_int_eq(tkm_recovery_status(b, &r, &st), TKM_OK);
    ck_assert_int_gt(st.lease_ttl_ms, 0);
    ck_assert_int_eq(
        tkm_recovery_begin(b, &r, &req, &tb, &second, err, sizeof(err)),
        TKM_OK);
    ck_assert_int_eq(tb.decision, TKM_DECIDE_LEASE);
    ck_assert_int_eq(tkm_recovery_log(b, 20, &log, &n), TKM_OK);
    for (size_t i = 0; i < n; i++)
        abandoned += strcmp(log[i].outcome, "abandoned") == 0 &&
                     strcmp(log[i].action_id, ta.action_id) == 0;
    free(log);
    ck_assert_int_eq(abandoned, 1);
    while (waitpid(-1, NULL, WNOHANG) > 0) /* the detached supervisor */
        ;
    tkm_client_free(a);
    tkm_client_free(b);
}
END_TEST

START_TEST(test_exec_bad_argv)
{
    char script[128], err[256];
    const char *relative[] = {"restart-workers", NULL};
    const char *missing[] = {"/nonexistent/restart", NULL};
    const char *empty[] = {NULL};
    const char *blank[] = {"", NULL};
    const char *notexec[] = {NULL, NULL};
    const char *dirargv[] = {"/tmp", NULL};

    action_dir();
    make_script("plain", "true", script, sizeof(script));
    chmod(script, 0644);
    notexec[0] = script;
    ck_assert_int_eq(tkm_action_check_argv(relative, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "absolute path"));
    ck_assert_int_eq(tkm_action_check_argv(missing, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    ck_assert_int_eq(tkm_action_check_argv(empty, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_int_eq(tkm_action_check_argv(blank, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_int_eq(tkm_action_check_argv(notexec, err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "not an executable"));
    ck_assert_int_eq(tkm_action_check_argv(dirargv, err, sizeof(err)),
                     TKM_ECONFIG);
}
END_TEST

/* A one-shot HTTP server: answers `status` and keeps the request body. */
static int serve_once(int status, char *body_file, pid_t *pid)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    listen(fd, 1);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *pid = fork();
    if (*pid == 0) {
        char buf[8192], reply[128];
        size_t n = 0;
        int c = accept(fd, NULL, NULL);
        FILE *fp;
        for (;;) {
            ssize_t k = read(c, buf + n, sizeof(buf) - 1 - n);
            char *hdr_end, *cl;
            if (k <= 0)
                break;
            n += (size_t)k;
            buf[n] = '\0';
            hdr_end = strstr(buf, "\r\n\r\n");
            cl = strcasestr(buf, "Content-Length:");
            if (hdr_end && cl &&
                n >= (size_t)(hdr_end + 4 - buf) + strtoul(cl + 15, NULL, 10))
                break;
        }
        fp = fopen(body_file, "w");
        fputs(buf, fp);
        fclose(fp);
        snprintf(reply, sizeof(reply),
                 "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: "
                 "close\r\n\r\n",
                 status);
        (void)!write(c, reply, strlen(reply));
        close(c);
        _exit(0);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

START_TEST(test_webhook)
{
    char url[128], file[128], got[8192], err[256];
    tkm_action_env env = {"keepa", "stalled \"now\"", 300, 905, "h1:10", "9-9"};
    tkm_action *a = NULL;
    tkm_action_result r;
    pid_t pid;
    int port;

    action_dir();
    snprintf(file, sizeof(file), "%s/request", dir);
    port = serve_once(200, file, &pid);
    snprintf(url, sizeof(url), "http://user:hunter2@127.0.0.1:%d/hook", port);
    ck_assert_int_eq(tkm_action_webhook(url, &env, 3000, &a, err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_action_wait(a, &r), TKM_OK);
    tkm_action_free(a);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(r.exit_status, 0);
    ck_assert_int_eq(r.http_status, 200);
    ck_assert_ptr_null(strstr(r.output, "hunter2"));
    slurp(file, got, sizeof(got));
    ck_assert_ptr_nonnull(strstr(got, "POST /hook"));
    ck_assert_ptr_nonnull(strstr(got, "\"pool\":\"keepa\""));
    ck_assert_ptr_nonnull(strstr(got, "\"reason\":\"stalled \\\"now\\\"\""));
    ck_assert_ptr_nonnull(strstr(got, "\"stale_workers\":\"h1:10\""));
    /* A refusal is a failed action. */
    port = serve_once(503, file, &pid);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    ck_assert_int_eq(tkm_action_webhook(url, &env, 3000, &a, err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_action_wait(a, &r), TKM_OK);
    tkm_action_free(a);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(r.exit_status, 1);
    ck_assert_int_eq(r.http_status, 503);
    /* Only http(s). */
    ck_assert_int_eq(
        tkm_action_webhook("ftp://x/hook", &env, 1000, &a, err, sizeof(err)),
        TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "not http or https"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recovery");
    TCase *rule = tkt_tcase(s, "stall_rule", 0);

    signal(SIGPIPE, SIG_IGN);
    tcase_add_loop_test(rule, test_rule_table, 0,
                        sizeof(rule_cases) / sizeof(rule_cases[0]));
    tkt_add_tests(rule, test_rule_unknown_resets_confirmations,
                  test_rule_every_worker_silent_is_a_stall,
                  test_rule_worker_errors_are_evidence, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "guard", 30),
                  test_guard_cooldown_limit_escalation_reset,
                  test_guard_unknown_and_pause_and_dry_run,
                  test_guard_quiet_repeats, test_guard_one_actor_among_monitors,
                  test_guard_lease_released_only_by_holder,
                  test_guard_grace_and_deescalation,
                  test_abandoned_action_no_overlap, NULL);
    tkt_add_tests(tkt_tcase(s, "actions", 20), test_exec_env_argv_and_status,
                  test_exec_timeout_kills_group_despite_reaper,
                  test_exec_free_kills_group, test_exec_bad_argv, test_webhook,
                  NULL);
    return tkt_run_suite(s, 0);
}
