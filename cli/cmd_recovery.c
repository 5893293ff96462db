/* The recovery guard: recovery status|reset|pause|resume|log, recover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_age(const char *label, int64_t now, int64_t at)
{
    char iso[40];

    if (at <= 0) {
        printf("%-18s never\n", label);
        return;
    }
    cli_iso8601(at, iso, sizeof(iso));
    printf("%-18s %s (%.0f s ago)\n", label, iso, (double)(now - at) / 1000.0);
}

int cmd_recovery_status(cli_ctx *ctx, const cli_args *a)
{
    const tkm_recovery_options *o = &ctx->opts.recovery;
    tkm_client *c = ctx->client;
    tkm_recovery_state st;
    tkm_pool_status ps;
    tkm_code rc;
    char *json;

    if (cli_arg(a, "--json") != NULL)
        return cli_json(c, tkm_recovery_status_json(c, &json), &json,
                        "recovery status");
    rc = tkm_recovery_status(c, o, &st);
    if (rc == TKM_OK)
        rc = tkm_status(c, &ps); /* Redis' now */
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "recovery status");
    printf("%-18s %s\n", "pool", ctx->opts.pool);
    if (st.paused && st.paused_left_ms > 0)
        printf("%-18s PAUSED for %.0f s more (decisions audited, nothing "
               "runs)\n",
               "kill switch", (double)st.paused_left_ms / 1000.0);
    else
        printf("%-18s %s\n", "kill switch",
               st.paused ? "PAUSED (decisions audited, nothing runs)" : "off");
    if (st.escalated)
        printf("%-18s YES for %.0f s: run `tokenmgr recovery reset` after "
               "looking\n",
               "escalated", (double)(ps.now_ms - st.escalated_ms) / 1000.0);
    else
        printf("%-18s no\n", "escalated");
    print_age("last action", ps.now_ms, st.last_action_ms);
    printf("%-18s %lld of %lld per %lld s\n", "actions in window",
           (long long)st.actions_in_window, (long long)o->max_actions,
           (long long)o->window_s);
    printf("%-18s %.0f s\n", "cooldown left",
           (double)st.cooldown_left_ms / 1000.0);
    printf("%-18s %lld taken, %lld of them failed\n", "actions ever",
           (long long)st.total, (long long)st.failed);
    if (st.lease_ttl_ms > 0)
        printf("%-18s held by an actor for %.0f s more\n", "lease",
               (double)st.lease_ttl_ms / 1000.0);
    return EXIT_OK;
}

/* An operator's call on the guard, audited with this host and `why`. */
static int operator_call(cli_ctx *ctx, const char *what,
                         tkm_code (*call)(tkm_client *, const char *,
                                          const char *),
                         const char *why, const char *done)
{
    char host[256];
    tkm_code rc;

    cli_host(host, sizeof(host));
    rc = call(ctx->client, host, why);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, what);
    printf("%s for pool %s\n", done, ctx->opts.pool);
    return EXIT_OK;
}

int cmd_recovery_reset(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    return operator_call(ctx, "recovery reset", tkm_recovery_reset,
                         "operator reset (tokenmgr recovery reset)",
                         "recovery reset: escalation cleared");
}

static tkm_code resume(tkm_client *c, const char *host, const char *why)
{
    return tkm_recovery_pause(c, host, 0, why);
}

int cmd_recovery_resume(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    return operator_call(ctx, "recovery resume", resume,
                         "operator (tokenmgr recovery resume)",
                         "recovery resumed");
}

int cmd_recovery_pause(cli_ctx *ctx, const cli_args *a)
{
    const char *for_text = cli_arg(a, "--for");
    int64_t secs = 0;
    char host[256], why[128];
    tkm_code rc;
    int e;

    if (for_text != NULL &&
        (e = cli_duration("--for", for_text, 30 * 86400, &secs)) != EXIT_OK)
        return e;
    cli_host(host, sizeof(host));
    if (secs > 0)
        snprintf(why, sizeof(why),
                 "operator (tokenmgr recovery pause --for %lld s)",
                 (long long)secs);
    else
        snprintf(why, sizeof(why), "operator (tokenmgr recovery pause)");
    rc = tkm_recovery_pause_for(ctx->client, host, secs, why);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "recovery pause");
    if (secs > 0)
        printf("recovery paused for pool %s for %lld s\n", ctx->opts.pool,
               (long long)secs);
    else
        printf("recovery paused for pool %s until `tokenmgr recovery "
               "resume`\n",
               ctx->opts.pool);
    return EXIT_OK;
}

/* The first line of a text, at most `len` - 1 bytes. */
static void first_line(const char *s, char *buf, size_t len)
{
    size_t n = strcspn(s, "\r\n");

    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

int cmd_recovery_log(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    int64_t count = 20;
    tkm_audit_entry *e = NULL;
    size_t n = 0;
    tkm_code rc;
    char *json;
    int x;

    if (cli_arg(a, "--count") != NULL &&
        (x = cli_number("--count", cli_arg(a, "--count"), 1, 1000, &count)) !=
            EXIT_OK)
        return x;
    if (cli_arg(a, "--json") != NULL)
        return cli_json(c, tkm_recovery_log_json(c, count, &json), &json,
                        "recovery log");
    rc = tkm_recovery_log(c, count, &e, &n);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "recovery log");
    if (n == 0) {
        printf("no recovery decision recorded for pool %s\n", ctx->opts.pool);
        free(e);
        return EXIT_OK;
    }
    printf("%-24s  %-16s %-12s %-9s %4s %9s %7s  %s\n", "TIME", "HOST",
           "DECISION", "OUTCOME", "EXIT", "DURATION", "REPEATS", "DETAIL");
    for (size_t i = 0; i < n; i++) {
        char iso[40], exit_s[24] = "-", dur[24] = "-", detail[256];
        cli_iso8601(e[i].time_ms, iso, sizeof(iso));
        if (e[i].exit_status >= 0)
            snprintf(exit_s, sizeof(exit_s), "%lld",
                     (long long)e[i].exit_status);
        if (e[i].duration_ms >= 0)
            snprintf(dur, sizeof(dur), "%.2fs",
                     (double)e[i].duration_ms / 1000.0);
        /* A finished action shows its output; a decision, its reason. */
        first_line(e[i].outcome[0] ? e[i].output : e[i].reason, detail,
                   sizeof(detail));
        printf("%-24s  %-16.16s %-12s %-9s %4s %9s %7lld  %s\n", iso,
               e[i].host[0] ? e[i].host : "-", e[i].decision,
               e[i].outcome[0] ? e[i].outcome : "-", exit_s, dur,
               (long long)e[i].repeats, detail[0] ? detail : "-");
    }
    free(e);
    return EXIT_OK;
}

/* Why the guard said no, for an operator. */
static const char *refusal(tkm_decision d)
{
    switch (d) {
    case TKM_DECIDE_COOLDOWN:
        return "the cooldown after the last action is running";
    case TKM_DECIDE_GRACE:
        return "the last action's grace period is running";
    case TKM_DECIDE_LEASE:
        return "another monitor is acting now";
    case TKM_DECIDE_PAUSED:
        return "the kill switch is on (tokenmgr recovery resume)";
    default:
        return "escalated: too many actions in the window; tokenmgr recovery "
               "reset after looking";
    }
}

/* The guarded action, from outside collectd: the same guard, audit and
 * action as the plugin's (one library call pair). */
int cmd_recover(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    const tkm_options *o = &ctx->opts;
    const char *reason = cli_arg(a, "--reason");
    char host[256], inputs[256], err[512];
    tkm_recovery_ticket t;
    tkm_recovery_run *run = NULL;
    tkm_action_result res;
    tkm_pool_status st;
    tkm_worker *w = NULL;
    size_t nw = 0;
    tkm_stall_tracker tr = {0};
    tkm_stall_input in;
    tkm_stall_verdict v;
    tkm_code rc;

    if (reason[0] == '\0')
        return cli_usage(a->cmd, "--reason needs a text");
    rc = tkm_status(c, &st);
    if (rc == TKM_OK)
        rc = tkm_workers(c, &w, &nw);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "recover");
    /* The inputs the monitor would log, for the audit and the action. */
    in = (tkm_stall_input){.readable = st.synced,
                           .tokens = st.tokens,
                           .capacity = st.capacity,
                           .heartbeat_age_ms = st.heartbeat_age_ms,
                           .workers = w,
                           .nworkers = nw};
    tkm_stall_judge(&o->stall, &tr, &in, &v);
    tkm_workers_free(w);
    snprintf(inputs, sizeof(inputs),
             "tokens=%lld heartbeat_age_ms=%lld stale=%zu rule=%s",
             (long long)st.tokens, (long long)st.heartbeat_age_ms, v.stale,
             tkm_stall_state_str(v.state));
    cli_host(host, sizeof(host));
    rc = tkm_recovery_begin(
        c, &o->recovery,
        &(tkm_recovery_request){.mode = TKM_MODE_MANUAL,
                                .host = host,
                                .reason = reason,
                                .inputs = inputs,
                                .tokens = st.tokens,
                                .heartbeat_age_ms = st.heartbeat_age_ms,
                                .stale_workers = v.stale_workers},
        &t, &run, err, sizeof(err));
    if (rc != TKM_OK)
        return cli_fail(cli_exit_code(rc), "recover: %s", err);
    if (t.decision == TKM_DECIDE_DRY_RUN) {
        printf("dry run: the action was audited, not run\n");
        return EXIT_OK;
    }
    if (run == NULL)
        return cli_fail(EXIT_DENIED, "recover: not run (%s): %s",
                        tkm_decision_str(t.decision), refusal(t.decision));
    rc = tkm_recovery_settle(c, &run, TKM_SETTLE_WAIT, &res);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "recover");
    if (res.timed_out)
        return cli_fail(EXIT_OTHER,
                        "recover: action %s killed at its %lld s "
                        "deadline",
                        t.action_id, (long long)o->recovery.timeout_s);
    if (res.exit_status != 0)
        return cli_fail(EXIT_OTHER,
                        "recover: action %s failed (exit %d): "
                        "%.200s",
                        t.action_id, res.exit_status, res.output);
    printf("recovery action %s ran in %lld ms\n", t.action_id,
           (long long)res.duration_ms);
    return EXIT_OK;
}
