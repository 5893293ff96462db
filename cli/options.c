/*
 * The options a command runs with: the defaults, then the YAML file
 * (--config, else $TOKENMGR_CONFIG, else /etc/tokenmgr/tokenmgr.yaml when it
 * exists, so that the command and the collectd plugin see the same pool),
 * then the environment, then --pool, --redis and --set.  Each value is
 * checked by the library's options table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* --set KEY=VALUE */
static int set_flag(cli_ctx *ctx, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[128], err[1024];

    if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key))
        return cli_fail(EXIT_USAGE, "--set needs KEY=VALUE, not '%.80s'", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (tkm_options_set_from(&ctx->opts, key, eq + 1, TKM_SOURCE_FLAG, "--set ",
                             err, sizeof(err)) != TKM_OK)
        return cli_fail(EXIT_CONFIG, "%s", err);
    return EXIT_OK;
}

int cli_load_options(const cli_invocation *inv, cli_ctx *ctx)
{
    const char *path = inv->config, *how = "--config";
    const char *worker = cli_arg(&inv->args, "--worker");
    char err[1024];
    tkm_code rc;
    int e;

    tkm_options_init(&ctx->opts);
    if (path == NULL) {
        /* Set but empty: no file at all, not even the default. */
        const char *env = getenv("TOKENMGR_CONFIG");
        how = "$TOKENMGR_CONFIG";
        path = env != NULL && env[0] != '\0' ? env : NULL;
        if (env != NULL && env[0] == '\0')
            how = "none ($TOKENMGR_CONFIG is empty)";
    }
    if (path == NULL && getenv("TOKENMGR_CONFIG") == NULL &&
        access(CLI_DEFAULT_CONFIG, F_OK) == 0) {
        path = CLI_DEFAULT_CONFIG;
        how = "the default path";
    }
    ctx->config_path = path;
    ctx->config_how = path ? how : "none";
    if (path != NULL) {
        rc = tkm_config_load_file(path, &ctx->opts, err, sizeof(err));
        if (rc != TKM_OK)
            return cli_fail(cli_exit_code(rc), "%s", err);
    }
    if (tkm_options_from_env(&ctx->opts, err, sizeof(err)) != TKM_OK)
        return cli_fail(EXIT_CONFIG, "%s", err);
    if (inv->pool != NULL &&
        tkm_options_set_from(&ctx->opts, "pool", inv->pool, TKM_SOURCE_FLAG,
                             NULL, err, sizeof(err)) != TKM_OK)
        return cli_fail(EXIT_CONFIG, "%s", err);
    if (inv->redis != NULL &&
        tkm_options_set_from(&ctx->opts, "redis.url", inv->redis,
                             TKM_SOURCE_FLAG, NULL, err, sizeof(err)) != TKM_OK)
        return cli_fail(EXIT_CONFIG, "%s", err);
    for (int i = 0; i < inv->nset; i++) {
        if ((e = set_flag(ctx, inv->set[i])) != EXIT_OK)
            return e;
    }
    if (worker != NULL &&
        snprintf(ctx->opts.worker_id, sizeof(ctx->opts.worker_id), "%s",
                 worker) >= (int)sizeof(ctx->opts.worker_id))
        return cli_fail(EXIT_USAGE, "--worker is longer than %d bytes",
                        TKM_WORKER_ID_MAX);
    if (tkm_options_validate(&ctx->opts, err, sizeof(err)) != TKM_OK)
        return cli_fail(worker != NULL && strstr(err, "worker id") != NULL
                            ? EXIT_USAGE
                            : EXIT_CONFIG,
                        "%s", err);
    return EXIT_OK;
}
