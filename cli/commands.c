/*
 * The command table: every command, its operands and flags, with one line
 * of documentation each.  The parser checks arguments against it, and the
 * help texts and the man page are printed from it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "roff.h"

#define JSON_FLAG                                                              \
    {                                                                          \
        "--json", NULL, "print one JSON object (CONTRACT.md keys)", 0          \
    }

const cli_command cli_commands[] = {
    {"status",
     "",
     0,
     0,
     "the pool's state, refill projected to now",
     {JSON_FLAG},
     NEEDS_CLIENT,
     cmd_status},
    {"sync",
     "",
     0,
     0,
     "set the authoritative balance the API reported (or fetch it from "
     "Keepa's free /token)",
     {{"--tokens", "N", "the balance (tokensLeft; may be negative)", 0},
      {"--rate", "R", "tokens per refill period (refillRate)", 0},
      {"--refill-in", "MS", "milliseconds to the next refill (refillIn)", 0},
      {"--timestamp", "MS", "the API's time of the report, Unix ms", 0},
      {"--from-keepa", NULL,
       "call Keepa's /token instead, throttled across the pool", 0},
      {"--force", NULL, "with --from-keepa: bypass the throttle", 0},
      JSON_FLAG},
     NEEDS_CLIENT,
     cmd_sync},
    {"acquire",
     "COST",
     1,
     1,
     "reserve COST tokens and print the grant id; without --wait it never "
     "sleeps",
     {{"--wait", "SECONDS",
       "wait up to SECONDS for the tokens instead of failing at once", 0},
      {"--worker", "ID", "beat as worker ID while waiting (else no heartbeat)",
       0},
      JSON_FLAG},
     NEEDS_CLIENT,
     cmd_acquire},
    {"complete",
     "GRANT",
     1,
     1,
     "the call of GRANT was made: reconcile its estimate with what it cost",
     {{"--consumed", "N", "tokens the call cost (tokensConsumed)", 1},
      {"--tokens-left", "N", "the balance the API reported with it", 0},
      {"--timestamp", "MS", "the API's time of that report, Unix ms", 0},
      JSON_FLAG},
     NEEDS_CLIENT,
     cmd_complete},
    {"release",
     "GRANT",
     1,
     1,
     "the call of GRANT was not made: give its reservation back",
     {JSON_FLAG},
     NEEDS_CLIENT,
     cmd_release},
    {"recharge",
     "on|off",
     1,
     1,
     "force recharge mode on or off",
     {{0}},
     NEEDS_CLIENT,
     cmd_recharge},
    {"reset",
     "",
     0,
     0,
     "delete the pool's state (the recovery guard and audit trail only with "
     "--all)",
     {{"--yes", NULL, "really delete (without it: say what would go, exit 64)",
       0},
      {"--all", NULL, "the recovery guard and its audit trail too", 0}},
     NEEDS_CLIENT,
     cmd_reset},
    {"heartbeat",
     "",
     0,
     0,
     "record that worker ID is alive (and, optionally, busy for a while)",
     {{"--worker", "ID",
       "the worker ([A-Za-z0-9_.:@-]{1,128}): the command never records "
       "itself",
       1},
      {"--phase", "TEXT", "what it is doing", 0},
      {"--busy-for", "SECONDS",
       "legitimately busy without calling the API for this long", 0}},
     NEEDS_CLIENT,
     cmd_heartbeat},
    {"workers",
     "",
     0,
     0,
     "every worker heard from: heartbeat age, phase, busy period",
     {JSON_FLAG},
     NEEDS_CLIENT,
     cmd_workers},
    {"workers forget",
     "ID",
     1,
     1,
     "remove the records of a departed worker (exit 1 when unknown)",
     {{0}},
     NEEDS_CLIENT,
     cmd_workers_forget},
    {"recovery status",
     "",
     0,
     0,
     "the guard: last action, actions in the window, cooldown, escalation, "
     "kill switch",
     {JSON_FLAG},
     NEEDS_CLIENT,
     cmd_recovery_status},
    {"recovery reset",
     "",
     0,
     0,
     "clear an escalation after an operator has looked",
     {{0}},
     NEEDS_CLIENT,
     cmd_recovery_reset},
    {"recovery pause",
     "",
     0,
     0,
     "the kill switch: decisions are still audited, no action runs",
     {{"--for", "DURATION",
       "resume by itself after DURATION (90s, 15m, 2h, 1d)", 0}},
     NEEDS_CLIENT,
     cmd_recovery_pause},
    {"recovery resume",
     "",
     0,
     0,
     "lift the kill switch",
     {{0}},
     NEEDS_CLIENT,
     cmd_recovery_resume},
    {"recovery log",
     "",
     0,
     0,
     "the audit trail, newest first: every decision, and each action's "
     "outcome",
     {{"--count", "N", "this many entries (1..1000, default 20)", 0},
      JSON_FLAG},
     NEEDS_CLIENT,
     cmd_recovery_log},
    {"recover",
     "",
     0,
     0,
     "run the guarded recovery action now (obeys cooldown, limit, lease and "
     "kill switch)",
     {{"--reason", "TEXT", "why, for the audit trail and the action", 1}},
     NEEDS_CLIENT,
     cmd_recover},
    {"config check",
     "[FILE]",
     0,
     1,
     "validate a configuration (FILE, else the one this command would read)",
     {{0}},
     NEEDS_NOTHING,
     cmd_config_check},
    {"config show",
     "",
     0,
     0,
     "every effective option, its value and where it came from",
     {JSON_FLAG},
     NEEDS_OPTIONS,
     cmd_config_show},
    {"help",
     "[COMMAND...]",
     0,
     2,
     "this help, a command's (`help acquire`), every option (`help "
     "options`)",
     {{"--man", NULL, "the tokenmgr(1) manual page, in roff", 0},
      {"--markdown", NULL, "with `help options`: the README's table", 0}},
     NEEDS_NOTHING,
     cmd_help},
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

static const cli_flag global_flags[] = {
    {"--config", "FILE",
     "the YAML configuration (else $TOKENMGR_CONFIG, else " CLI_DEFAULT_CONFIG
     " when it exists)",
     0},
    {"--pool", "NAME", "the pool (option pool)", 0},
    {"--redis", "URL", "the Redis URL (option redis.url)", 0},
    {"--set", "KEY=VALUE",
     "any option by its YAML path, e.g. --set bucket.soft_floor=30 "
     "(repeatable)",
     0},
    {"--help", NULL, "this help; `COMMAND --help` for one command", 0},
    {"--version", NULL, "the version", 0},
};

static const struct {
    int code;
    const char *meaning;
} exit_codes[] = {
    {EXIT_OK, "success"},
    {EXIT_OTHER, "anything else (no such grant, a failed recovery action...)"},
    {EXIT_USAGE, "usage error: unknown command or flag, bad argument"},
    {EXIT_UNAVAILABLE, "Redis unavailable"},
    {EXIT_DENIED,
     "denied for now: recharging, insufficient balance, deficit limit, needs "
     "a sync, wait too long, throttled, cooldown"},
    {EXIT_CONFIG, "configuration error"},
};

/* ---- help ------------------------------------------------------------- */

/* "acquire COST [--wait SECONDS] [--worker ID] [--json]" */
static void synopsis(const cli_command *c, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s%s%s", c->name,
                                c->operands[0] ? " " : "", c->operands);

    for (int i = 0; i < CLI_FLAGS_MAX && c->flags[i].name && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " %s%s%s%s%s",
                              c->flags[i].required ? "" : "[", c->flags[i].name,
                              c->flags[i].value ? " " : "",
                              c->flags[i].value ? c->flags[i].value : "",
                              c->flags[i].required ? "" : "]");
}

static void flag_lines(FILE *out, const cli_flag *f, int n, const char *indent)
{
    char left[64];

    for (int i = 0; i < n && f[i].name; i++) {
        snprintf(left, sizeof(left), "%s%s%s", f[i].name, f[i].value ? " " : "",
                 f[i].value ? f[i].value : "");
        fprintf(out, "%s%-22s %s\n", indent, left, f[i].help);
    }
}

void cli_help(FILE *out, const cli_command *cmd)
{
    char syn[256];

    if (cmd != NULL) {
        synopsis(cmd, syn, sizeof(syn));
        fprintf(out, "usage: tokenmgr [GLOBAL OPTIONS] %s\n\n%s\n", syn,
                cmd->summary);
        if (cmd->flags[0].name) {
            fputc('\n', out);
            flag_lines(out, cmd->flags, CLI_FLAGS_MAX, "  ");
        }
        fprintf(out, "\nGlobal options: tokenmgr --help.\n");
        return;
    }
    fprintf(out, "usage: tokenmgr [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
                 "global options:\n");
    flag_lines(out, global_flags,
               (int)(sizeof(global_flags) / sizeof(global_flags[0])), "  ");
    fprintf(out, "\ncommands:\n");
    for (size_t i = 0; i < cli_ncommands; i++) {
        synopsis(&cli_commands[i], syn, sizeof(syn));
        fprintf(out, "  %s\n      %s\n", syn, cli_commands[i].summary);
    }
    fprintf(out,
            "\nOptions come from the defaults, then the YAML file (--config, "
            "else\n$TOKENMGR_CONFIG, else %s when it exists), then the\n"
            "environment (TOKENMGR_<OPTION>, e.g. TOKENMGR_REDIS_URL), then "
            "--pool,\n--redis and --set: `tokenmgr config show` prints each "
            "value and its source,\n`tokenmgr help options` every option.\n"
            "`tokenmgr help COMMAND` (or COMMAND --help) shows one command.\n"
            "\nexit status:\n",
            CLI_DEFAULT_CONFIG);
    for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
        fprintf(out, "  %-3d %s\n", exit_codes[i].code, exit_codes[i].meaning);
}

static void man_flags(FILE *out, const cli_flag *f, int n)
{
    for (int i = 0; i < n && f[i].name; i++) {
        /* .BI alternates bold and italic: the flag, then its value. */
        fputs(f[i].value ? ".TP\n.BI \"" : ".TP\n.B ", out);
        (f[i].value ? tkm__roff_arg : tkm__roff_text)(out, f[i].name);
        if (f[i].value) {
            fputs(" \" ", out);
            tkm__roff_text(out, f[i].value);
        }
        fputc('\n', out);
        tkm__roff_text(out, f[i].help);
        fputc('\n', out);
    }
}

void cli_help_man(FILE *out)
{
    tkm_option_info info;

    fprintf(out, ".TH TOKENMGR 1 \"\" \"tokenmgr %s\" \"User Commands\"\n",
            tkm_version());
    fputs(".SH NAME\ntokenmgr \\- share a rate\\-limited API budget across "
          "workers, watch and recover them\n"
          ".SH SYNOPSIS\n.B tokenmgr\n[\\fIGLOBAL OPTIONS\\fR] "
          "\\fICOMMAND\\fR [\\fIARGS\\fR]\n"
          ".SH DESCRIPTION\n"
          "The command\\-line tool of libtokenmgr: it reads and changes a "
          "pool's token bucket in Redis (one atomic script per operation, on "
          "Redis' clock), lists its workers, and drives the guarded recovery "
          "that the collectd plugin also uses.\n"
          ".SH GLOBAL OPTIONS\n",
          out);
    man_flags(out, global_flags,
              (int)(sizeof(global_flags) / sizeof(global_flags[0])));
    fputs(".SH COMMANDS\n", out);
    for (size_t i = 0; i < cli_ncommands; i++) {
        const cli_command *c = &cli_commands[i];
        fputs(c->operands[0] ? ".TP\n.BI \"" : ".TP\n.B ", out);
        (c->operands[0] ? tkm__roff_arg : tkm__roff_text)(out, c->name);
        if (c->operands[0]) {
            fputs(" \" \"", out);
            tkm__roff_arg(out, c->operands);
            fputc('"', out);
        }
        fputc('\n', out);
        tkm__roff_text(out, c->summary);
        fputc('\n', out);
        if (c->flags[0].name) {
            fputs(".RS\n", out);
            man_flags(out, c->flags, CLI_FLAGS_MAX);
            fputs(".RE\n", out);
        }
    }
    fputs(".SH EXIT STATUS\n", out);
    for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++) {
        fprintf(out, ".TP\n.B %d\n", exit_codes[i].code);
        tkm__roff_text(out, exit_codes[i].meaning);
        fputc('\n', out);
    }
    fputs(".SH ENVIRONMENT\n.TP\n.B TOKENMGR_CONFIG\nthe YAML file when "
          "\\-\\-config is not given\n.TP\n.B TOKENMGR_KEEPA_KEY\nthe Keepa "
          "access key when keepa.key_file is empty\n",
          out);
    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_describe(i, &info);
        if (info.env[0] == '\0')
            continue;
        fputs(".TP\n.B ", out);
        tkm__roff_text(out, info.env);
        fputs("\noverrides the option ", out);
        tkm__roff_text(out, info.key);
        fputc('\n', out);
    }
    fputs(".SH FILES\n.TP\n.I " CLI_DEFAULT_CONFIG "\nthe configuration, "
          "read when neither \\-\\-config nor $TOKENMGR_CONFIG names one; "
          "`tokenmgr help options` lists every option\n"
          ".SH SEE ALSO\n.BR collectd\\-tokenmgr (5),\n.BR collectd (1)\n",
          out);
}

/* ---- parsing ------------------------------------------------------------ */

const char *cli_arg(const cli_args *a, const char *name)
{
    for (int i = 0; i < CLI_FLAGS_MAX && a->cmd->flags[i].name; i++) {
        if (strcmp(a->cmd->flags[i].name, name) == 0)
            return a->value[i];
    }
    return NULL;
}

static const cli_command *find(const char *name)
{
    for (size_t i = 0; i < cli_ncommands; i++) {
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    }
    return NULL;
}

/* The command at argv[*i] (one or two words); NULL after a usage error. */
static const cli_command *command_at(int argc, char **argv, int *i)
{
    char two[128];
    const cli_command *c;
    int groups = 0;

    if (*i + 1 < argc) {
        snprintf(two, sizeof(two), "%s %s", argv[*i], argv[*i + 1]);
        if ((c = find(two)) != NULL) {
            *i += 2;
            return c;
        }
    }
    if ((c = find(argv[*i])) != NULL) {
        *i += 1;
        return c;
    }
    /* "recovery" alone, or with an unknown word: list its commands. */
    for (size_t k = 0; k < cli_ncommands; k++) {
        size_t n = strlen(argv[*i]);
        if (strncmp(cli_commands[k].name, argv[*i], n) == 0 &&
            cli_commands[k].name[n] == ' ')
            groups++;
    }
    if (groups > 0) {
        fprintf(stderr, "tokenmgr: %s needs one of:", argv[*i]);
        for (size_t k = 0; k < cli_ncommands; k++) {
            size_t n = strlen(argv[*i]);
            if (strncmp(cli_commands[k].name, argv[*i], n) == 0 &&
                cli_commands[k].name[n] == ' ')
                fprintf(stderr, " %s", cli_commands[k].name + n + 1);
        }
        fprintf(stderr, "%s%s (tokenmgr help for usage)\n",
                *i + 1 < argc ? ", not " : "",
                *i + 1 < argc ? argv[*i + 1] : "");
        return NULL;
    }
    cli_fail(EXIT_USAGE, "unknown command '%s' (tokenmgr help for usage)",
             argv[*i]);
    return NULL;
}

/* The command's arguments: flags it knows, operands within its count. */
static int command_args(int argc, char **argv, int i, cli_args *a)
{
    const cli_command *c = a->cmd;

    for (; i < argc; i++) {
        const char *arg = argv[i];
        int f;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_help(stdout, c);
            return EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (a->npos >= c->max_pos)
                return cli_usage(c, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        for (f = 0; f < CLI_FLAGS_MAX && c->flags[f].name; f++) {
            if (strcmp(c->flags[f].name, arg) == 0)
                break;
        }
        if (f == CLI_FLAGS_MAX || c->flags[f].name == NULL)
            return cli_usage(c, "unknown flag '%s'", arg);
        if (a->value[f] != NULL)
            return cli_usage(c, "%s is given twice", arg);
        if (c->flags[f].value == NULL) {
            a->value[f] = "";
        } else {
            if (i + 1 >= argc)
                return cli_usage(c, "%s needs %s", arg, c->flags[f].value);
            a->value[f] = argv[++i];
        }
    }
    if (a->npos < c->min_pos)
        return cli_usage(c, "%s needs %s", c->name, c->operands);
    for (int f = 0; f < CLI_FLAGS_MAX && c->flags[f].name; f++) {
        if (c->flags[f].required && a->value[f] == NULL)
            return cli_usage(c, "needs %s %s", c->flags[f].name,
                             c->flags[f].value);
    }
    return -1;
}

int cli_parse(int argc, char **argv, cli_invocation *inv)
{
    int i;

    memset(inv, 0, sizeof(*inv));
    for (i = 1; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        const char *f = argv[i];
        const char **slot = NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            cli_help(stdout, NULL);
            return EXIT_OK;
        }
        if (strcmp(f, "--version") == 0) {
            printf("tokenmgr %s\n", tkm_version());
            return EXIT_OK;
        }
        if (strcmp(f, "--config") == 0)
            slot = &inv->config;
        else if (strcmp(f, "--pool") == 0)
            slot = &inv->pool;
        else if (strcmp(f, "--redis") == 0)
            slot = &inv->redis;
        else if (strcmp(f, "--set") == 0 && inv->nset < CLI_SET_MAX)
            slot = &inv->set[inv->nset++];
        else if (strcmp(f, "--set") == 0)
            return cli_fail(EXIT_USAGE, "--set is given more than %d times",
                            CLI_SET_MAX);
        else
            return cli_fail(EXIT_USAGE,
                            "unknown option '%s' (tokenmgr help for usage)", f);
        if (i + 1 >= argc)
            return cli_fail(EXIT_USAGE, "%s needs a value", f);
        if (*slot != NULL)
            return cli_fail(EXIT_USAGE, "%s is given twice", f);
        *slot = argv[++i];
    }
    if (i >= argc)
        return cli_fail(EXIT_USAGE,
                        "no command given (tokenmgr help for usage)");
    inv->args.cmd = command_at(argc, argv, &i);
    if (inv->args.cmd == NULL)
        return EXIT_USAGE;
    return command_args(argc, argv, i, &inv->args);
}

/* help [COMMAND...] [--man] | help options [--markdown] */
static void options_text(FILE *out, int markdown)
{
    tkm_option_info info;

    if (markdown)
        fputs("| option | default | range | environment | collectd | what it "
              "does |\n|---|---|---|---|---|---|\n",
              out);
    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_describe(i, &info);
        if (markdown) {
            fprintf(out, "| `%s` | %s | %s%s%s | %s%s%s | %s%s%s%s | %s |\n",
                    info.key, info.default_text, info.range,
                    info.range[0] && info.unit[0] ? " " : "",
                    info.range[0] ? info.unit : "", info.env[0] ? "`" : "",
                    info.env, info.env[0] ? "`" : "", info.collectd ? "`" : "",
                    info.collectd_block ? "<Recovery> " : "",
                    info.collectd ? info.collectd : "",
                    info.collectd ? "`" : "", info.doc);
        } else {
            fprintf(out, "%s (%s%s%s%s%s), default %s\n    %s\n", info.key,
                    info.type, info.range[0] ? " " : "", info.range,
                    info.unit[0] ? " " : "", info.unit, info.default_text,
                    info.doc);
            if (info.env[0] || info.collectd)
                fprintf(out, "    %s%s%s%s%s\n", info.env[0] ? "env " : "",
                        info.env, info.env[0] && info.collectd ? ", " : "",
                        info.collectd ? "collectd " : "",
                        info.collectd ? info.collectd : "");
        }
    }
}

int cmd_help(cli_ctx *ctx, const cli_args *a)
{
    char name[128];
    const cli_command *c;

    (void)ctx;
    if (cli_arg(a, "--man") != NULL) {
        if (a->npos != 0)
            return cli_usage(a->cmd, "--man goes alone");
        cli_help_man(stdout);
        return EXIT_OK;
    }
    if (a->npos == 1 && strcmp(a->pos[0], "options") == 0) {
        options_text(stdout, cli_arg(a, "--markdown") != NULL);
        return EXIT_OK;
    }
    if (cli_arg(a, "--markdown") != NULL)
        return cli_usage(a->cmd, "--markdown goes with `help options`");
    if (a->npos == 0) {
        cli_help(stdout, NULL);
        return EXIT_OK;
    }
    snprintf(name, sizeof(name), "%s%s%s", a->pos[0], a->npos > 1 ? " " : "",
             a->npos > 1 ? a->pos[1] : "");
    c = find(name);
    if (c != NULL) {
        cli_help(stdout, c);
        return EXIT_OK;
    }
    /* A group ("recovery"): each of its commands. */
    for (size_t k = 0; k < cli_ncommands; k++) {
        size_t n = strlen(name);
        if (strncmp(cli_commands[k].name, name, n) == 0 &&
            cli_commands[k].name[n] == ' ') {
            cli_help(stdout, &cli_commands[k]);
            c = &cli_commands[k];
            fputc('\n', stdout);
        }
    }
    return c != NULL ? EXIT_OK : cli_usage(a->cmd, "no command '%s'", name);
}
