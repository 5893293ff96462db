/*
 * tokenmgr: the command-line tool.  Exit codes (CONTRACT.md): 0 ok, 64
 * usage, 69 Redis unavailable, 75 denied for now, 78 configuration, 1
 * anything else.  Errors are one line on stderr.
 */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
    cli_invocation inv;
    cli_ctx ctx = {.inv = &inv};
    const cli_command *cmd;
    tkm_code rc;
    int e = cli_parse(argc, argv, &inv);

    if (e >= 0)
        return e;
    cmd = inv.args.cmd;
    if (cmd->needs >= NEEDS_OPTIONS &&
        (e = cli_load_options(&inv, &ctx)) != EXIT_OK)
        return e;
    if (cmd->needs == NEEDS_CLIENT) {
        rc = tkm_client_open(&ctx.opts, &ctx.client);
        if (rc != TKM_OK) {
            e = cli_lib_fail(ctx.client, rc, "cannot create the client");
            tkm_client_free(ctx.client);
            return e;
        }
        /* A tool is not a worker: it records no heartbeat of its own
         * (a blocking acquire beats only as the --worker it was given). */
        tkm_client_set_heartbeats(ctx.client,
                                  cli_arg(&inv.args, "--worker") != NULL);
    }
    e = cmd->run(&ctx, &inv.args);
    tkm_client_free(ctx.client);
    return e;
}
