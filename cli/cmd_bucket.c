/* The bucket's commands: status, sync, acquire, complete, release,
 * recharge, reset. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The line: one line per class, the oldest waiter's wait so far. */
static void print_queue(const tkm_queue_class *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char weight[32] = "weight ?";
        if (q[i].weight > 0)
            snprintf(weight, sizeof(weight), "weight %lld",
                     (long long)q[i].weight);
        if (q[i].waiters > 0)
            printf("queue      %s (%s): %lld waiting for %lld tokens, "
                   "oldest for %.1f s",
                   q[i].name, weight, (long long)q[i].waiters,
                   (long long)q[i].tokens,
                   (double)q[i].oldest_wait_ms / 1000.0);
        else
            printf("queue      %s (%s): nobody waiting", q[i].name, weight);
        if (q[i].absent > 0)
            printf(", %lld absent", (long long)q[i].absent);
        printf("\n");
    }
}

int cmd_status(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    tkm_pool_status st;
    tkm_queue_class *q = NULL;
    size_t nq = 0;
    tkm_code rc;
    char *json;

    if (cli_arg(a, "--json") != NULL)
        return cli_json(c, tkm_status_json(c, &json), &json, "status");
    rc = tkm_queue_status(c, &st, &q, &nq);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "status");
    printf("pool       %s\n", ctx->opts.pool);
    if (st.heartbeat_age_ms >= 0)
        printf("workers    %lld alive of %lld, freshest heartbeat %.1f s ago\n",
               (long long)st.workers_alive, (long long)st.workers_total,
               (double)st.heartbeat_age_ms / 1000.0);
    else
        printf("workers    none has sent a heartbeat\n");
    if (!st.synced) {
        printf("state      none: no sync yet (tokenmgr sync --from-keepa)\n");
        print_queue(q, nq);
        tkm_queue_status_free(q);
        return EXIT_OK;
    }
    printf("tokens     %lld / %lld\n", (long long)st.tokens,
           (long long)st.capacity);
    printf("refill     %lld per %lld ms, next in %lld ms\n",
           (long long)st.refill_rate, (long long)st.refill_period_ms,
           (long long)st.refill_in_ms);
    if (st.recharge_mode)
        printf("recharge   on for %.1f s (target %lld)\n",
               (double)(st.now_ms - st.recharge_since_ms) / 1000.0,
               (long long)st.recharge_target);
    else
        printf("recharge   off\n");
    printf("inflight   %lld reservations, %lld tokens, %lld held for "
           "estimate errors\n",
           (long long)st.inflight, (long long)st.inflight_tokens,
           (long long)st.inflight_reserve);
    if (st.estimate_ratio > 0)
        printf("estimates  calls cost up to %.2f x their estimate lately\n",
               st.estimate_ratio);
    else
        printf("estimates  no call completed yet: valued at %g x their "
               "estimate\n",
               ctx->opts.bucket.estimate_prior);
    printf("last sync  %.1f s ago\n", (double)st.last_sync_age_ms / 1000.0);
    print_queue(q, nq);
    tkm_queue_status_free(q);
    return EXIT_OK;
}

/* sync --from-keepa: the free /token call, throttled across the pool. */
static int sync_from_keepa(cli_ctx *ctx, int force, int json)
{
    tkm_keepa *kc = NULL;
    tkm_keepa_sync_result r;
    tkm_code rc = tkm_keepa_open(ctx->client, &kc);
    char *text = NULL;
    int e = EXIT_OK;

    if (rc == TKM_OK)
        rc = json ? tkm_keepa_sync_json(kc, force, &text)
                  : tkm_keepa_sync(kc, force, &r);
    if (rc != TKM_OK) {
        e = cli_fail(cli_exit_code(rc), "sync --from-keepa: %s",
                     tkm_keepa_errstr(kc));
    } else if (json) {
        puts(text);
        tkm_free(text);
    } else if (r.throttled) {
        e = cli_fail(EXIT_DENIED,
                     "sync --from-keepa: throttled: /token was called for "
                     "this pool recently; next allowed in %lld s (--force "
                     "bypasses)",
                     (long long)((r.next_allowed_ms + 999) / 1000));
    } else {
        printf("synced from Keepa; balance %lld, refill rate %lld\n",
               (long long)r.tokens, (long long)r.refill_rate);
    }
    tkm_keepa_free(kc);
    return e;
}

/* A numeric flag, when given: -1 stays when it is not. */
static int opt_number(const cli_args *a, const char *flag, int64_t min,
                      int64_t max, int64_t *out)
{
    const char *v = cli_arg(a, flag);

    return v == NULL ? EXIT_OK : cli_number(flag, v, min, max, out);
}

int cmd_sync(cli_ctx *ctx, const cli_args *a)
{
    tkm_sync_info in = {0, -1, -1, -1};
    int json = cli_arg(a, "--json") != NULL;
    tkm_reconcile out;
    tkm_code rc;
    char *text;
    int e;

    if (cli_arg(a, "--from-keepa") != NULL) {
        if (cli_arg(a, "--tokens") || cli_arg(a, "--rate") ||
            cli_arg(a, "--refill-in") || cli_arg(a, "--timestamp"))
            return cli_usage(a->cmd, "--from-keepa takes no --tokens, --rate, "
                                     "--refill-in or --timestamp");
        return sync_from_keepa(ctx, cli_arg(a, "--force") != NULL, json);
    }
    if (cli_arg(a, "--force") != NULL)
        return cli_usage(a->cmd, "--force goes with --from-keepa");
    if (cli_arg(a, "--tokens") == NULL || cli_arg(a, "--rate") == NULL)
        return cli_usage(a->cmd, "needs --tokens N and --rate R (or "
                                 "--from-keepa)");
    /* The library checks the values' ranges (one rule for the CLI, the C
     * API and the API's replies); these only need to be integers. */
    if ((e = opt_number(a, "--tokens", INT64_MIN, INT64_MAX, &in.tokens)) ||
        (e = opt_number(a, "--rate", INT64_MIN, INT64_MAX, &in.rate)) ||
        (e = opt_number(a, "--refill-in", INT64_MIN, INT64_MAX,
                        &in.refill_in_ms)) ||
        (e = opt_number(a, "--timestamp", INT64_MIN, INT64_MAX,
                        &in.timestamp_ms)))
        return e;
    if (json)
        return cli_json(ctx->client,
                        tkm_sync_json(ctx->client, in.tokens, in.rate,
                                      in.refill_in_ms, in.timestamp_ms, &text),
                        &text, "sync");
    rc = tkm_sync(ctx->client, &in, &out);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "sync");
    if (out.report_stale)
        printf("stale report ignored (older than the last applied); balance "
               "%lld\n",
               (long long)out.tokens);
    else
        printf("synced; balance %lld\n", (long long)out.tokens);
    return EXIT_OK;
}

int cmd_acquire(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    int64_t cost, wait_s = -1;
    tkm_grant g;
    tkm_code rc;
    char *json;
    int e;

    if ((e = cli_number("COST", a->pos[0], 0, TOKENS_MAX, &cost)) ||
        (e = opt_number(a, "--wait", 0, 86400, &wait_s)))
        return e;
    rc = wait_s >= 0 ? tkm_acquire(c, cost, wait_s * 1000, &g)
                     : tkm_try_acquire(c, cost, &g);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "acquire");
    if (cli_arg(a, "--json") != NULL) {
        if (tkm_grant_json(&g, &json) != TKM_OK)
            return cli_fail(EXIT_OTHER, "acquire: out of memory");
        puts(json);
        tkm_free(json);
        return g.granted ? EXIT_OK : EXIT_DENIED;
    }
    if (g.granted) {
        printf("%s\n", g.id);
        return EXIT_OK;
    }
    if (g.reason == TKM_REASON_WAIT_TOO_LONG)
        return cli_fail(
            EXIT_DENIED,
            "acquire %lld: the wait (%lld ms) is longer than --wait "
            "%lld s; balance %lld",
            (long long)cost, (long long)g.retry_after_ms, (long long)wait_s,
            (long long)g.tokens);
    if (g.retry_after_ms == TKM_RETRY_NEVER)
        return cli_fail(EXIT_DENIED,
                        "acquire %lld: denied (%s), balance %lld; refill "
                        "cannot cure it (rate 0 or no sync)",
                        (long long)cost, tkm_reason_str(g.reason),
                        (long long)g.tokens);
    return cli_fail(EXIT_DENIED,
                    "acquire %lld: denied (%s), balance %lld; retry in %lld ms",
                    (long long)cost, tkm_reason_str(g.reason),
                    (long long)g.tokens, (long long)g.retry_after_ms);
}

int cmd_complete(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    const char *grant = a->pos[0];
    int64_t consumed = -1, left = 0, ts = -1;
    int have_left = cli_arg(a, "--tokens-left") != NULL;
    tkm_report rep;
    tkm_reconcile out;
    tkm_code rc;
    char *json;
    int e;

    if ((e = opt_number(a, "--consumed", INT64_MIN, INT64_MAX, &consumed)) ||
        (e = opt_number(a, "--tokens-left", INT64_MIN, INT64_MAX, &left)) ||
        (e = opt_number(a, "--timestamp", INT64_MIN, INT64_MAX, &ts)))
        return e;
    if (have_left != (cli_arg(a, "--timestamp") != NULL))
        return cli_usage(a->cmd, "--tokens-left and --timestamp go together");
    if (cli_arg(a, "--json") != NULL)
        return cli_json(
            c,
            tkm_complete_json(c, grant, consumed, have_left, left, ts, &json),
            &json, "complete");
    rep = (tkm_report){left, ts};
    rc = tkm_complete(c, grant, consumed, have_left ? &rep : NULL, &out);
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, "complete");
    printf("completed %s; balance %lld%s\n", grant, (long long)out.tokens,
           out.report_stale     ? " (stale report ignored)"
           : out.report_applied ? " (from the report)"
                                : "");
    return EXIT_OK;
}

int cmd_release(cli_ctx *ctx, const cli_args *a)
{
    tkm_reconcile out;
    tkm_code rc;
    char *json;

    if (cli_arg(a, "--json") != NULL)
        return cli_json(ctx->client,
                        tkm_release_json(ctx->client, a->pos[0], &json), &json,
                        "release");
    rc = tkm_release(ctx->client, a->pos[0], &out);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "release");
    printf("released %s; balance %lld\n", a->pos[0], (long long)out.tokens);
    return EXIT_OK;
}

int cmd_recharge(cli_ctx *ctx, const cli_args *a)
{
    int on = strcmp(a->pos[0], "on") == 0;
    tkm_code rc;

    if (!on && strcmp(a->pos[0], "off") != 0)
        return cli_usage(a->cmd, "needs 'on' or 'off', not '%.40s'", a->pos[0]);
    rc = tkm_recharge(ctx->client, on);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "recharge");
    printf("recharge mode %s\n", on ? "on" : "off");
    return EXIT_OK;
}

int cmd_reset(cli_ctx *ctx, const cli_args *a)
{
    int all = cli_arg(a, "--all") != NULL;
    tkm_pool_status st;
    int64_t n = 0;
    tkm_code rc;

    if (cli_arg(a, "--yes") == NULL) {
        /* Say what would go, from what the pool holds now. */
        rc = tkm_status(ctx->client, &st);
        if (rc != TKM_OK)
            return cli_lib_fail(ctx->client, rc, "reset");
        fprintf(stderr,
                "tokenmgr: reset: would delete pool %s's state: the bucket "
                "(%s%lld tokens), %lld reservation%s in flight, %lld "
                "worker record%s, the /token throttle%s; run again with "
                "--yes\n",
                ctx->opts.pool, st.synced ? "" : "no state, ",
                (long long)st.tokens, (long long)st.inflight,
                st.inflight == 1 ? "" : "s", (long long)st.workers_total,
                st.workers_total == 1 ? "" : "s",
                all ? ", the recovery guard and its audit trail"
                    : " (the recovery guard and its audit trail are kept: "
                      "--all deletes them too)");
        return EXIT_USAGE;
    }
    rc = tkm_reset_pool(ctx->client, all ? TKM_RESET_ALL : 0, &n);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "reset");
    printf("deleted %lld key%s of pool %s%s\n", (long long)n, n == 1 ? "" : "s",
           ctx->opts.pool,
           all ? "" : " (the recovery guard and audit trail kept)");
    return EXIT_OK;
}
