/*
 * Prints collectd-tokenmgr(5) in roff, at build time (not installed): every
 * <Pool> option from the two tables the parser itself reads, the library's
 * options table (rows with a collectd name) and the plugin's own options
 * (pool_config.c), so the page cannot drift from what collectd accepts.
 * Exits 1, failing the build, when an option has no documentation or when
 * a name the parser knows did not make it onto the page.
 *
 * usage: gen_man SYSCONFDIR PLUGINDIR LIBEXECDIR DOCDIR   (absolute paths)
 */
#include <stdio.h>
#include <string.h>

#include "pool_config.h"
#include "roff.h"

#define NAMES_MAX 128

/* A line of text as one sentence (the table's docs may end in "..."). */
static void sentence(FILE *out, const char *s)
{
    size_t n = strlen(s);

    tkm__roff_text(out, s);
    if (n == 0 || s[n - 1] != '.')
        fputc('.', out);
}

/* What a value looks like in collectd's syntax, by the table's type. */
static const char *placeholder(const char *type)
{
    if (strcmp(type, "integer") == 0)
        return "N";
    if (strcmp(type, "number") == 0)
        return "X";
    if (strcmp(type, "boolean") == 0)
        return "true|false";
    if (strcmp(type, "list") == 0)
        return "\"WORD\" ...";
    return "\"TEXT\"";
}

static int printed(const char **seen, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(seen[i], name) == 0)
            return 1;
    }
    return 0;
}

/* The library's rows that collectd spells, inside `block` (NULL: the
 * <Pool> block itself).  Returns -1 on an undocumented row. */
static int table_rows(FILE *out, const char *block, const char **seen,
                      size_t *nseen)
{
    tkm_option_info info;

    for (size_t i = 0; i < tkm_option_count(); i++) {
        if (tkm_option_describe(i, &info) != TKM_OK)
            return -1;
        if (info.collectd == NULL)
            continue;
        if ((block == NULL) != (info.collectd_block == NULL) ||
            (block != NULL && strcmp(block, info.collectd_block) != 0))
            continue;
        if (info.doc == NULL || info.doc[0] == '\0') {
            fprintf(stderr, "gen_man: option %s has no documentation\n",
                    info.key);
            return -1;
        }
        fputs(".TP\n.BI \"", out);
        tkm__roff_arg(out, info.collectd);
        fputs(" \" \"", out);
        tkm__roff_arg(out, placeholder(info.type));
        fputs("\"\n", out);
        sentence(out, info.doc);
        fputc('\n', out);
        fputs("YAML: \\fB", out);
        tkm__roff_text(out, info.key);
        fputs("\\fR.", out);
        if (info.range[0] != '\0') {
            fputs(" Range: ", out);
            tkm__roff_text(out, info.range);
            if (info.unit[0] != '\0') {
                fputc(' ', out);
                tkm__roff_text(out, info.unit);
            }
            fputc('.', out);
        } else if (info.unit[0] != '\0') {
            fputs(" Unit: ", out);
            tkm__roff_text(out, info.unit);
            fputc('.', out);
        }
        fputs(" Default: ", out);
        tkm__roff_text(out, info.default_text);
        fputc('.', out);
        if (strcmp(info.type, "list") == 0 && block == NULL)
            fputs(" Repeatable: the lines add up.", out);
        fputc('\n', out);
        if (*nseen < NAMES_MAX)
            seen[(*nseen)++] = info.collectd;
    }
    return 0;
}

static int own_rows(FILE *out, const char **seen, size_t *nseen)
{
    tkm__pool_own_doc d;

    for (size_t i = 0; tkm__pool_conf_own_describe(i, &d) == 0; i++) {
        if (d.doc == NULL || d.default_text == NULL) {
            fprintf(stderr,
                    "gen_man: the plugin's option %s has no "
                    "documentation (plugin/pool_config.c)\n",
                    d.name);
            return -1;
        }
        fputs(".TP\n", out);
        if (d.value != NULL) {
            fputs(".BI \"", out);
            tkm__roff_arg(out, d.name);
            fputs(" \" \"", out);
            tkm__roff_arg(out, d.value);
            fputs("\"\n", out);
        } else {
            fputs(".B <", out);
            tkm__roff_text(out, d.name);
            fputs(">\n", out);
        }
        sentence(out, d.doc);
        fputs("\nDefault: ", out);
        tkm__roff_text(out, d.default_text);
        fputs(".\n", out);
        if (*nseen < NAMES_MAX)
            seen[(*nseen)++] = d.name;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *seen[NAMES_MAX], *names[NAMES_MAX];
    size_t nseen = 0, n;
    FILE *out = stdout;

    if (argc != 5) {
        fputs("usage: gen_man SYSCONFDIR PLUGINDIR LIBEXECDIR DOCDIR\n",
              stderr);
        return 64;
    }
    const char *etc = argv[1], *plugindir = argv[2], *libexec = argv[3],
               *doc = argv[4];

    fprintf(out,
            ".TH COLLECTD\\-TOKENMGR 5 \"\" \"tokenmgr %s\" "
            "\"File Formats\"\n",
            tkm_version());
    fputs(".SH NAME\ncollectd\\-tokenmgr \\- the tokenmgr plugin for "
          "collectd: token pools, worker heartbeats, the stall rule and its "
          "guarded recovery\n.SH SYNOPSIS\n.nf\nLoadPlugin tokenmgr\n"
          "<Plugin tokenmgr>\n  <Pool \"keepa\">\n    ConfigFile \"",
          out);
    tkm__roff_text(out, etc);
    fputs("/tokenmgr/tokenmgr.yaml\"\n    RedisURL "
          "\"unix:///run/redis/redis.sock\"\n    StallTokensRatio 0.97\n"
          "    StallHeartbeatAge 900\n    <Recovery>\n      Exec \"",
          out);
    tkm__roff_text(out, libexec);
    fputs("/tokenmgr/restart\\-workers\" \"\\-\\-graceful\"\n"
          "    </Recovery>\n  </Pool>\n</Plugin>\n.fi\n"
          ".SH DESCRIPTION\n"
          "The \\fBtokenmgr\\fR plugin publishes the state of each token "
          "pool that workers share through libtokenmgr (balance, recharge "
          "mode, heartbeat ages, reservations in flight) and judges the "
          "stall rule: tokens unused and no heartbeat means the workers are "
          "stuck.  With a \\fB<Recovery>\\fR block it then runs one guarded "
          "recovery action (cooldown, limit, escalation), never a restart "
          "storm.\n.PP\n"
          "Each \\fB<Pool \"\\fINAME\\fB\">\\fR block watches one pool "
          "(\\fINAME\\fR is the pool, [A\\-Za\\-z0\\-9_.\\-]{1,64}) with its "
          "own read callback at the plugin's interval; several blocks, in "
          "one or several \\fB<Plugin tokenmgr>\\fR sections, are read "
          "independently.  Option names are case\\-insensitive.  An option "
          "not given takes the \\fBConfigFile\\fR's value, else the default "
          "shown.  The environment variables of \\fBtokenmgr\\fR(1) are not "
          "read: each block says where its pool lives.\n.PP\n"
          "Unknown options, wrong types, out\\-of\\-range values, an option "
          "given twice, values that contradict each other: collectd refuses "
          "the configuration (it exits 1, \"Parsing the config file "
          "failed\") and the ERROR line names the pool and the option.\n"
          ".SH POOL OPTIONS\n",
          out);
    if (own_rows(out, seen, &nseen) != 0 ||
        table_rows(out, NULL, seen, &nseen) != 0)
        return 1;
    fputs(".SH RECOVERY BLOCK\nInside \\fB<Recovery>\\fR; options not given "
          "come from the \\fBConfigFile\\fR's \\fBrecovery:\\fR section.  A "
          "command runs without a shell, its context in the environment "
          "(TOKENMGR_POOL, TOKENMGR_REASON, TOKENMGR_TOKENS, "
          "TOKENMGR_HEARTBEAT_AGE, TOKENMGR_STALE_WORKERS, "
          "TOKENMGR_ACTION_ID).\n",
          out);
    if (table_rows(out, "Recovery", seen, &nseen) != 0)
        return 1;
    fputs(".SH FILES\n.TP\n.I ", out);
    tkm__roff_text(out, etc);
    fputs("/collectd/collectd.conf.d/tokenmgr.conf\nthe drop\\-in that "
          "loads and configures the plugin (a conffile: your edits are kept "
          "on upgrade); Debian's collectd.conf includes that folder's "
          "*.conf files\n.TP\n.I ",
          out);
    tkm__roff_text(out, plugindir);
    fputs("/tokenmgr.so\nthe plugin; collectd refuses a symlinked plugin, "
          "so it must be a real file in the PluginDir\n.TP\n.I ",
          out);
    tkm__roff_text(out, etc);
    fputs("/tokenmgr/tokenmgr.yaml\nthe workers' configuration, a "
          "ConfigFile\n.TP\n.I ",
          out);
    tkm__roff_text(out, libexec);
    fputs("/tokenmgr/restart\\-workers\nthe recovery command for "
          "keepa\\-worker@.service units\n.TP\n.I ",
          out);
    tkm__roff_text(out, doc);
    fputs("/RUNBOOK.md\nthe metric names, alerts and what to do when they "
          "fire\n.SH NOTES\nA new or edited drop\\-in takes effect when "
          "collectd restarts (\\fBsystemctl restart collectd\\fR).  Removing "
          "the plugin while collectd runs does not stop collectd: the loaded "
          "plugin keeps reading until collectd restarts.\n"
          ".SH SEE ALSO\n.BR tokenmgr (1),\n.BR collectd.conf (5),\n"
          ".BR collectd (1)\n",
          out);

    /* Every name the parser knows is on the page. */
    n = tkm__pool_conf_names(names, NAMES_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!printed(seen, nseen, names[i])) {
            fprintf(stderr, "gen_man: <Pool> option %s is not documented\n",
                    names[i]);
            return 1;
        }
    }
    if (fflush(out) != 0 || ferror(out)) {
        perror("gen_man");
        return 1;
    }
    return 0;
}
