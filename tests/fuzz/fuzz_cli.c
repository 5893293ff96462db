/*
 * The command line of `tokenmgr`: the input is its arguments, separated by
 * NUL bytes.  The CLI's own parser (global options, the command table, the
 * --json and --worker split) runs, then the options it would open a client
 * with are built and validated, and every argument goes through the one
 * integer and float parsers the commands use.  Nothing connects: the file
 * is compiled without its main().
 */
#define TKM_CLI_NO_MAIN
#include "../../lib/cli/tokenmgr.c"

#include <math.h>

#include "fuzz.h"

#define ARGS_MAX 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Only the fuzz bytes decide: no configuration file, no URL. */
    unsetenv("TOKENMGR_CONFIG");
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
    invocation inv;

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
    e = parse_command_line(argc, argv, &inv);
    if (e < 0) {
        tkm_options o;
        char err[512];
        FUZZ_ASSERT(inv.cmd != NULL && inv.a.argc < argc);
        e = load_options(&o, NULL, inv.pool, inv.redis, inv.worker);
        if (e == EXIT_OK)
            FUZZ_ASSERT(tkm_options_validate(&o, err, sizeof(err)) == TKM_OK);
        for (int k = 0; k < inv.a.argc; k++)
            numbers(inv.a.argv[k]);
    }
    FUZZ_ASSERT(e == -1 || e == EXIT_OK || e == EXIT_USAGE ||
                e == EXIT_CONFIG || e == EXIT_OTHER);
    free(inv.a.argv);
    free(buf);
    return 0;
}
