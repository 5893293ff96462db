/*
 * tokenmgr, the command-line tool: shared declarations.  Built on the public
 * header only, as collectdctl is built on libcollectdclient.  One command
 * table (commands.c) parses every command's flags and generates --help,
 * `tokenmgr help COMMAND` and the tokenmgr(1) man page, so they cannot
 * drift apart.
 */
#ifndef TKM_CLI_H
#define TKM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "tokenmgr.h"

/* Exit status (CONTRACT.md). */
enum {
    EXIT_OK = 0,
    EXIT_OTHER = 1,
    EXIT_USAGE = 64,
    EXIT_UNAVAILABLE = 69,
    EXIT_DENIED = 75,
    EXIT_CONFIG = 78
};

/* Read when neither --config nor $TOKENMGR_CONFIG names a file. */
#define CLI_DEFAULT_CONFIG "/etc/tokenmgr/tokenmgr.yaml"

#define CLI_FLAGS_MAX 8
#define CLI_POS_MAX   4
#define CLI_SET_MAX   32
#define TOKENS_MAX    INT64_C(1000000000000)

/* A flag of a command: "--wait" taking "SECONDS", or a switch (value
 * NULL); a required one is checked by the parser. */
typedef struct cli_flag {
    const char *name;
    const char *value;
    const char *help;
    int required;
} cli_flag;

struct cli_invocation;

/* What a command runs with. */
typedef struct cli_ctx {
    const struct cli_invocation *inv;
    tkm_options opts;
    tkm_client *client;      /* NULL for commands that need none */
    const char *config_path; /* the file read, NULL when none */
    const char *config_how;  /* "--config", "$TOKENMGR_CONFIG", "default" */
} cli_ctx;

/* What a command needs before it runs. */
typedef enum cli_needs {
    NEEDS_NOTHING = 0, /* reads nothing (help; config check loads its own) */
    NEEDS_OPTIONS = 1, /* the effective options */
    NEEDS_CLIENT = 2   /* a client on them */
} cli_needs;

struct cli_args;

typedef struct cli_command {
    const char *name;     /* "status", "recovery pause" */
    const char *operands; /* "COST", "[FILE]", "" */
    int min_pos, max_pos;
    const char *summary; /* one line */
    cli_flag flags[CLI_FLAGS_MAX];
    cli_needs needs;
    int (*run)(cli_ctx *ctx, const struct cli_args *a);
} cli_command;

/* One command's arguments, checked against its flags. */
typedef struct cli_args {
    const cli_command *cmd;
    int npos;
    const char *pos[CLI_POS_MAX];
    const char *value[CLI_FLAGS_MAX]; /* by flag; "" for a switch given */
} cli_args;

/* What the command line asks for, before anything is read. */
typedef struct cli_invocation {
    const char *config;           /* --config */
    const char *pool;             /* --pool */
    const char *redis;            /* --redis */
    const char *set[CLI_SET_MAX]; /* --set KEY=VALUE */
    int nset;
    cli_args args;
} cli_invocation;

extern const cli_command cli_commands[];
extern const size_t cli_ncommands;

/* commands.c: the table, parsing and help. */
/* Parse argv.  Returns -1 to go on, or the exit status (--help, --version,
 * a usage error already reported).  Reads no file and connects nowhere. */
int cli_parse(int argc, char **argv, cli_invocation *inv);
/* Usage of one command (NULL: every command and the global options). */
void cli_help(FILE *out, const cli_command *cmd);
/* tokenmgr(1) in roff. */
void cli_help_man(FILE *out);
/* The value of a command's flag ("" for a switch), NULL when not given. */
const char *cli_arg(const cli_args *a, const char *name);

/* options.c: defaults, the file, the environment, then the flags. */
int cli_load_options(const cli_invocation *inv, cli_ctx *ctx);

/* output.c: messages and exit codes. */
int cli_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cli_usage(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Exit status and message for a failed library call. */
int cli_lib_fail(tkm_client *c, tkm_code rc, const char *what);
int cli_exit_code(tkm_code rc);
/* A whole-string integer in [min, max], else a usage error naming flag. */
int cli_number(const char *flag, const char *text, int64_t min, int64_t max,
               int64_t *out);
/* "90", "90s", "15m", "2h", "1d": seconds in [1, max_s]. */
int cli_duration(const char *flag, const char *text, int64_t max_s,
                 int64_t *out);
/* Print the JSON a *_json call gave in *json (and free it), or fail;
 * *json is read after rc was computed. */
int cli_json(tkm_client *c, tkm_code rc, char **json, const char *what);
/* A JSON string, quoted and escaped (lib/jsonw.c, compiled in). */
void cli_json_string(const char *s);
/* Unix ms as ISO-8601 UTC ("2026-11-29T07:03:02.123Z"). */
void cli_iso8601(int64_t ms, char *buf, size_t len);
void cli_host(char *buf, size_t len);

/* The commands. */
int cmd_status(cli_ctx *ctx, const cli_args *a);
int cmd_sync(cli_ctx *ctx, const cli_args *a);
int cmd_acquire(cli_ctx *ctx, const cli_args *a);
int cmd_complete(cli_ctx *ctx, const cli_args *a);
int cmd_release(cli_ctx *ctx, const cli_args *a);
int cmd_recharge(cli_ctx *ctx, const cli_args *a);
int cmd_reset(cli_ctx *ctx, const cli_args *a);
int cmd_heartbeat(cli_ctx *ctx, const cli_args *a);
int cmd_workers(cli_ctx *ctx, const cli_args *a);
int cmd_workers_forget(cli_ctx *ctx, const cli_args *a);
int cmd_recovery_status(cli_ctx *ctx, const cli_args *a);
int cmd_recovery_reset(cli_ctx *ctx, const cli_args *a);
int cmd_recovery_pause(cli_ctx *ctx, const cli_args *a);
int cmd_recovery_resume(cli_ctx *ctx, const cli_args *a);
int cmd_recovery_log(cli_ctx *ctx, const cli_args *a);
int cmd_recover(cli_ctx *ctx, const cli_args *a);
int cmd_config_check(cli_ctx *ctx, const cli_args *a);
int cmd_config_show(cli_ctx *ctx, const cli_args *a);
int cmd_help(cli_ctx *ctx, const cli_args *a);

#endif
