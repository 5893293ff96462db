/* config check [FILE] and config show: the options table, applied. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_config_check(cli_ctx *ctx, const cli_args *a)
{
    char err[1024];
    tkm_code rc;
    int e;

    if (a->npos == 0) {
        /* The configuration this command reads: file, environment, flags. */
        if ((e = cli_load_options(ctx->inv, ctx)) != EXIT_OK)
            return e;
        printf("configuration OK (file: %s%s%s)\n",
               ctx->config_path ? ctx->config_path : "none",
               ctx->config_path ? ", from " : "",
               ctx->config_path ? ctx->config_how : "");
        return EXIT_OK;
    }
    tkm_options_init(&ctx->opts);
    rc = tkm_config_load_file(a->pos[0], &ctx->opts, err, sizeof(err));
    if (rc == TKM_OK)
        rc = tkm_options_validate(&ctx->opts, err, sizeof(err));
    if (rc != TKM_OK)
        return cli_fail(cli_exit_code(rc), "%s", err);
    printf("%s: configuration OK\n", a->pos[0]);
    return EXIT_OK;
}

int cmd_config_show(cli_ctx *ctx, const cli_args *a)
{
    int json = cli_arg(a, "--json") != NULL;
    char value[TKM_PATH_MAX + 64], def[TKM_PATH_MAX + 64];
    tkm_options defaults;
    tkm_option_info info;

    tkm_options_init(&defaults);
    if (json) {
        printf("{\"file\":");
        if (ctx->config_path == NULL)
            printf("null");
        else
            cli_json_string(ctx->config_path);
        printf(",\"options\":[");
    } else
        printf("# file: %s%s%s\n", ctx->config_path ? ctx->config_path : "none",
               ctx->config_path ? ", from " : "",
               ctx->config_path ? ctx->config_how : "");
    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_source src;
        const char *how;
        tkm_option_describe(i, &info);
        tkm_options_get(&ctx->opts, info.key, value, sizeof(value));
        tkm_options_get(&defaults, info.key, def, sizeof(def));
        src = tkm_options_source(&ctx->opts, info.key);
        /* A default that follows another option says so. */
        how = src == TKM_SOURCE_DEFAULT && strcmp(value, def) != 0
                  ? "default, derived"
                  : tkm_option_source_name(src);
        if (json) {
            printf("%s{\"key\":\"%s\",\"value\":", i ? "," : "", info.key);
            cli_json_string(value);
            printf(",\"source\":\"%s\"}", how);
        } else {
            printf("%-36s %-30s # %s\n", info.key, value, how);
        }
    }
    if (json)
        printf("]}\n");
    return EXIT_OK;
}
