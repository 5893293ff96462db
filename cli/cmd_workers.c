/* Worker liveness: heartbeat, workers, workers forget. */
#include <stdio.h>

#include "cli.h"

int cmd_heartbeat(cli_ctx *ctx, const cli_args *a)
{
    const char *phase = cli_arg(a, "--phase");
    int64_t busy = 0;
    tkm_code rc;
    int e;

    if (cli_arg(a, "--busy-for") != NULL &&
        (e = cli_number("--busy-for", cli_arg(a, "--busy-for"), 1, 86400,
                        &busy)) != EXIT_OK)
        return e;
    rc = busy > 0 ? tkm_heartbeat_busy(ctx->client, phase, busy)
                  : tkm_heartbeat(ctx->client, phase);
    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "heartbeat");
    printf("heartbeat from %s recorded%s\n", ctx->opts.worker_id,
           busy > 0 ? " (busy)" : "");
    return EXIT_OK;
}

int cmd_workers(cli_ctx *ctx, const cli_args *a)
{
    tkm_client *c = ctx->client;
    tkm_worker *w = NULL;
    size_t n = 0;
    tkm_pool_status st;
    tkm_code rc;
    char *json;

    if (cli_arg(a, "--json") != NULL)
        return cli_json(c, tkm_workers_json(c, &json), &json, "workers");
    rc = tkm_workers(c, &w, &n);
    if (rc == TKM_OK)
        rc = tkm_status(c, &st); /* Redis' now, for busy periods */
    if (rc != TKM_OK) {
        tkm_workers_free(w);
        return cli_lib_fail(c, rc, "workers");
    }
    if (n == 0) {
        printf("no worker has sent a heartbeat in pool %s\n", ctx->opts.pool);
    } else {
        printf("%-32s %10s  %-10s %s\n", "WORKER", "AGE", "BUSY", "PHASE");
        for (size_t i = 0; i < n; i++) {
            char busy[32] = "-";
            if (w[i].busy_until_ms >= 0)
                snprintf(busy, sizeof(busy), "%.0f s",
                         (double)(w[i].busy_until_ms - st.now_ms) / 1000.0);
            printf("%-32s %8.1f s  %-10s %s%s\n", w[i].id,
                   (double)w[i].heartbeat_age_ms / 1000.0, busy, w[i].phase,
                   w[i].alive ? "" : "  (stale)");
        }
    }
    tkm_workers_free(w);
    return EXIT_OK;
}

int cmd_workers_forget(cli_ctx *ctx, const cli_args *a)
{
    tkm_code rc = tkm_worker_forget(ctx->client, a->pos[0]);

    if (rc != TKM_OK)
        return cli_lib_fail(ctx->client, rc, "workers forget");
    printf("forgot worker %s of pool %s\n", a->pos[0], ctx->opts.pool);
    return EXIT_OK;
}
