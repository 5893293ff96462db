/*
 * The command line of `tokenmgr`: the input is its arguments, separated by
 * NUL bytes.  The CLI's own parser (global options, the command table, each
 * command's flags) runs, then the options it would open a client with are
 * built and validated, and every argument goes through the one integer and
 * float parsers the commands use.  Nothing connects: the CLI's sources are
 * compiled in without cli/main.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "fuzz.h"

#define ARGS_MAX 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Only the fuzz bytes decide: no configuration file, no URL. */
    setenv("TOKENMGR_CONFIG", "", 1); /* empty: no file, not even /etc's */
    unsetenv("TOKENMGR_REDIS_URL");
    return 0;
}

static void numbers(const char *s)
{
    int64_t i;
    double d;

    if (tkm_parse_int(s, -TOKENS_MAX, TOKENS_MAX, &i) == TKM_OK)
        FUZZ_ASSERT(i >= -TOKENS_MAX && i <= TOKENS_MAX);
    if (tkm_parse_int(s, INT64_MIN, INT64_MAX, &i) == TKM_OK)
        FUZZ_ASSERT(tkm_parse_double(s, -1e300, 1e300, &d) == TKM_OK ||
                    strlen(s) > 300);
    if (tkm_parse_double(s, -1e9, 1e9, &d) == TKM_OK)
        FUZZ_ASSERT(isfinite(d) && d >= -1e9 && d <= 1e9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    char *buf = fuzz_cstr(data, size);
    char *argv[ARGS_MAX + 2];
    int argc = 1, e;
    cli_invocation inv;

    if (!initialised) {
        LLVMFuzzerInitialize(NULL, NULL);
        initialised = 1;
    }
    if (buf == NULL)
        return 0;
    argv[0] = "tokenmgr";
    for (size_t o = 0; o <= size && argc <= ARGS_MAX; argc++) {
        argv[argc] = buf + o;
        o += strlen(buf + o) + 1;
    }
    argv[argc] = NULL;
    e = cli_parse(argc, argv, &inv);
    if (e < 0) {
        const cli_args *a = &inv.args;
        cli_ctx ctx = {.inv = &inv};
        char err[512];
        FUZZ_ASSERT(a->cmd != NULL && a->npos >= a->cmd->min_pos &&
                    a->npos <= a->cmd->max_pos);
        e = EXIT_OK;
        if (a->cmd->needs >= NEEDS_OPTIONS) {
            e = cli_load_options(&inv, &ctx);
            if (e == EXIT_OK)
                FUZZ_ASSERT(tkm_options_validate(&ctx.opts, err, sizeof(err)) ==
                            TKM_OK);
        }
        for (int k = 0; k < a->npos; k++)
            numbers(a->pos[k]);
        for (int k = 0; k < CLI_FLAGS_MAX; k++)
            if (a->value[k] != NULL)
                numbers(a->value[k]);
    }
    FUZZ_ASSERT(e == -1 || e == EXIT_OK || e == EXIT_USAGE ||
                e == EXIT_CONFIG || e == EXIT_OTHER);
    free(buf);
    return 0;
}
