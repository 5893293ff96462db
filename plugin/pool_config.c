/*
 * <Pool> blocks of the collectd plugin, checked on liboconfig's plain
 * structs so that the tests need no daemon.  Every option that the library
 * knows is looked up in its options table by its collectd name and handed
 * over as text: its type, range and relations are the table's, written
 * once.  Only what is the plugin's own (ConfigFile, Layout, WorkerMetrics,
 * the <Recovery> block itself) is read here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool_config.h"

#define ERR_MAX   1024
#define ITEMS_MAX 64

typedef struct parser {
    char where[TKM_POOL_MAX + 16]; /* `<Pool "keepa"> ` */
    const char *config_file;       /* for notes */
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(parser *p, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->err != NULL && p->errlen > 0)
        snprintf(p->err, p->errlen, "%s%s", p->where, msg);
    return -1;
}

/* The plugin's own options; every other name is the library's. */
enum own_option {
    OWN_CONFIG_FILE,
    OWN_LAYOUT,
    OWN_WORKER_METRICS,
    OWN_RECOVERY,
    OWN_COUNT
};
static const char *const own_names[OWN_COUNT] = {"ConfigFile", "Layout",
                                                 "WorkerMetrics", "Recovery"};

/* Their documentation, by the same index: collectd-tokenmgr(5) prints it
 * (plugin/gen_man.c) beside the library table's rows. */
static const struct {
    const char *value, *default_text, *doc;
} own_docs[OWN_COUNT] = {
    [OWN_CONFIG_FILE] = {"FILE", "none",
                         "a tokenmgr YAML file (the workers' own), applied "
                         "first wherever the line appears; the block's other "
                         "options override it, and the block's name, not "
                         "the file's pool:, names the pool"},
    [OWN_LAYOUT] = {"native|legacy", "native",
                    "native reads tokenmgr's keys (tokenmgr:{POOL}:*); legacy "
                    "reads the original Python system's keys, never writing "
                    "them, and publishes what they allow"},
    [OWN_WORKER_METRICS] = {"true|false", "false",
                            "also publish each worker's heartbeat age "
                            "(type_instance: the worker id), one more round "
                            "trip per read"},
    [OWN_RECOVERY] = {"true|false", "false",
                      "lets the plugin run the guarded recovery action when "
                      "the stall rule holds (`Recovery true`, or a "
                      "<Recovery> block of the options under RECOVERY "
                      "BLOCK); it needs Exec or Webhook, here or in the "
                      "ConfigFile's recovery:; off, the stall rule is judged "
                      "and published, and nothing runs"},
};

static int own_index(const char *key)
{
    for (int i = 0; i < OWN_COUNT; i++) {
        if (strcasecmp(key, own_names[i]) == 0)
            return i;
    }
    return -1;
}

/* An option is a plain line: `Key value...`, never a <Key> block. */
static int plain(parser *p, const oconfig_item_t *ci)
{
    if (ci->children_num > 0)
        return fail(p, "%s is an option, not a <%s> block", ci->key, ci->key);
    return 0;
}

static const char *type_name(const oconfig_item_t *ci)
{
    if (ci->values_num == 0)
        return "nothing";
    if (ci->values_num > 1)
        return "several values";
    switch (ci->values[0].type) {
    case OCONFIG_TYPE_STRING:
        return "a string";
    case OCONFIG_TYPE_NUMBER:
        return "a number";
    case OCONFIG_TYPE_BOOLEAN:
        return "a boolean";
    }
    return "an unknown type";
}

static int one_string(parser *p, const oconfig_item_t *ci, const char **out)
{
    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING)
        return fail(p, "%s needs one string in quotes, not %s", ci->key,
                    type_name(ci));
    *out = ci->values[0].value.string;
    return 0;
}

/*
 * A value as the table takes it.  A quoted value for a number is shown
 * quoted, as the YAML loader shows one, so that it is refused in the same
 * words; a boolean may be written bare or as "yes"/"no".
 */
static void value_text(const oconfig_value_t *v, const tkm_option_info *info,
                       char *buf, size_t len)
{
    int numeric =
        strcmp(info->type, "integer") == 0 || strcmp(info->type, "number") == 0;

    switch (v->type) {
    case OCONFIG_TYPE_NUMBER:
        snprintf(buf, len, "%.15g", v->value.number);
        break;
    case OCONFIG_TYPE_BOOLEAN:
        snprintf(buf, len, "%s", v->value.boolean ? "true" : "false");
        break;
    default:
        snprintf(buf, len, numeric ? "\"%s\"" : "%s", v->value.string);
        break;
    }
}

/* A note when the block overrides a value the ConfigFile set. */
static void note_override(parser *p, tkm__pool_conf *c,
                          const tkm_option_info *info, const char *block,
                          const char *before, tkm_option_source was)
{
    char now[TKM_URL_MAX + 8];

    if (was != TKM_SOURCE_FILE || c->nnotes >= TKM__NOTES_MAX ||
        tkm_options_get(&c->opts, info->key, now, sizeof(now)) != TKM_OK ||
        strcmp(now, before) == 0)
        return;
    snprintf(c->notes[c->nnotes++], sizeof(c->notes[0]),
             "%s%s%s %.60s overrides %s %.60s from the ConfigFile %.80s",
             p->where, block ? "<Recovery> " : "", info->collectd, now,
             info->key, before, p->config_file);
}

/* Hand `n` values (from one line, or gathered from repeated lines) of the
 * table's option `index` to the library. */
static int set_values(parser *p, tkm__pool_conf *c, int index,
                      const char *block, const oconfig_value_t *const *vals,
                      int n)
{
    tkm_option_info info;
    char text[ITEMS_MAX][TKM_EXEC_ARG_MAX + 8];
    const char *items[ITEMS_MAX];
    char before[TKM_URL_MAX + 8], why[ERR_MAX];
    tkm_option_source was;
    int list;

    tkm_option_describe((size_t)index, &info);
    list = strcmp(info.type, "list") == 0;
    if (n == 0)
        return fail(p, "%s%s needs a value", block ? "<Recovery> " : "",
                    info.collectd);
    for (int i = 0; i < n; i++) {
        /* No shell runs a command: every word is data, in quotes. */
        if (list && vals[i]->type != OCONFIG_TYPE_STRING)
            return fail(p,
                        "%s%s: argument %d is not a string in quotes (no "
                        "shell runs it; quote every word)",
                        block ? "<Recovery> " : "", info.collectd, i + 1);
        value_text(vals[i], &info, text[i], sizeof(text[i]));
        items[i] = text[i];
    }
    was = tkm_options_source(&c->opts, info.key);
    if (tkm_options_get(&c->opts, info.key, before, sizeof(before)) != TKM_OK)
        before[0] = '\0';
    if (tkm_options_set_list_from(&c->opts, info.key, items, (size_t)n,
                                  TKM_SOURCE_COLLECTD, p->where, why,
                                  sizeof(why)) != TKM_OK) {
        if (p->err != NULL && p->errlen > 0)
            snprintf(p->err, p->errlen, "%s", why);
        return -1;
    }
    note_override(p, c, &info, block, before, was);
    return 0;
}

/* One line of the library's options inside <Pool> or <Recovery>. */
static int table_line(parser *p, tkm__pool_conf *c, int index,
                      const char *block, const oconfig_item_t *ci)
{
    const oconfig_value_t *vals[ITEMS_MAX];

    if (plain(p, ci) != 0)
        return -1;
    if (ci->values_num > ITEMS_MAX)
        return fail(p, "%s%s has more than %d values",
                    block ? "<Recovery> " : "", ci->key, ITEMS_MAX);
    for (int i = 0; i < ci->values_num; i++)
        vals[i] = &ci->values[i];
    return set_values(p, c, index, block, vals, ci->values_num);
}

/* An unknown name, with what it may have meant. */
static int unknown(parser *p, const char *key, const char *block)
{
    char hint[128];

    tkm_option_lookup(key, TKM_SOURCE_COLLECTD, block, hint, sizeof(hint));
    if (hint[0] == '\0' && block == NULL) {
        for (int i = 0; i < OWN_COUNT; i++) {
            if (strncasecmp(key, own_names[i], 4) == 0)
                snprintf(hint, sizeof(hint), " (did you mean '%s'?)",
                         own_names[i]);
        }
    }
    return fail(p, "%sunknown option '%.80s'%s", block ? "<Recovery> " : "",
                key, hint);
}

/* Options given twice are refused, but for repeatable lists (Sentinel),
 * whose lines add up. */
static int repeatable(int index)
{
    tkm_option_info info;

    tkm_option_describe((size_t)index, &info);
    return strcmp(info.type, "list") == 0 && info.collectd_block == NULL;
}

/*
 * `Recovery true` (a line: collectd 5.12 drops an empty block, so a block
 * cannot say it alone) or `<Recovery>` with options: the plugin may act.
 */
static int recovery(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    unsigned char seen[TKM_OPTION_SLOTS] = {0};

    if (ci->values_num == 1 && ci->values[0].type == OCONFIG_TYPE_BOOLEAN)
        c->recovery = ci->values[0].value.boolean != 0;
    else if (ci->values_num == 0)
        c->recovery = 1;
    else
        return fail(p, "Recovery takes true or false (or is a <Recovery> "
                       "block of options)");
    if (!c->recovery && ci->children_num > 0)
        return fail(p, "<Recovery false> takes no options");
    for (int i = 0; i < ci->children_num; i++) {
        const oconfig_item_t *o = &ci->children[i];
        int k =
            tkm_option_lookup(o->key, TKM_SOURCE_COLLECTD, "Recovery", NULL, 0);
        if (k < 0)
            return unknown(p, o->key, "Recovery");
        if (seen[k]++)
            return fail(p, "<Recovery> %s is given twice", o->key);
        if (table_line(p, c, k, "Recovery", o) != 0)
            return -1;
    }
    return 0;
}

static int set_layout(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    const char *v;

    if (one_string(p, ci, &v) != 0)
        return -1;
    if (strcasecmp(v, "native") == 0)
        c->layout = TKM__LAYOUT_NATIVE;
    else if (strcasecmp(v, "legacy") == 0)
        c->layout = TKM__LAYOUT_LEGACY;
    else
        return fail(p, "Layout \"%.40s\" is neither \"native\" nor \"legacy\"",
                    v);
    return 0;
}

/* WorkerMetrics is the plugin's; booleans are read as the table reads
 * them (true/false, yes/no, on/off). */
static int set_worker_metrics(parser *p, const oconfig_item_t *ci,
                              tkm__pool_conf *c)
{
    const oconfig_value_t *v = ci->values_num == 1 ? &ci->values[0] : NULL;

    if (plain(p, ci) != 0)
        return -1;
    if (v != NULL && v->type == OCONFIG_TYPE_BOOLEAN) {
        c->worker_metrics = v->value.boolean != 0;
        return 0;
    }
    if (v != NULL && v->type == OCONFIG_TYPE_STRING) {
        static const char *const yes[] = {"true", "yes", "on"};
        static const char *const no[] = {"false", "no", "off"};
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(v->value.string, yes[i]) == 0 ||
                strcasecmp(v->value.string, no[i]) == 0) {
                c->worker_metrics = strcasecmp(v->value.string, yes[i]) == 0;
                return 0;
            }
        }
    }
    return fail(p, "WorkerMetrics must be true or false, not %s",
                type_name(ci));
}

static int load_file(parser *p, const oconfig_item_t *ci, tkm__pool_conf *c)
{
    const char *path;
    char why[ERR_MAX];

    if (one_string(p, ci, &path) != 0)
        return -1;
    if (tkm_config_load_file(path, &c->opts, why, sizeof(why)) != TKM_OK)
        return fail(p, "ConfigFile: %s", why);
    p->config_file = path;
    return 0;
}

/* The block's name is the pool's: [A-Za-z0-9_.-]{1,64}. */
static int set_name(parser *p, const oconfig_item_t *block, tkm__pool_conf *c)
{
    char why[ERR_MAX];

    if (block->values_num != 1 ||
        block->values[0].type != OCONFIG_TYPE_STRING) {
        snprintf(p->where, sizeof(p->where), "<Pool> ");
        return fail(p, "needs one name in quotes: <Pool \"keepa\">");
    }
    snprintf(p->where, sizeof(p->where), "<Pool \"%.*s\"> ", TKM_POOL_MAX,
             block->values[0].value.string);
    if (strlen(block->values[0].value.string) > TKM_POOL_MAX)
        return fail(p, "the pool name is longer than %d characters",
                    TKM_POOL_MAX);
    /* The block names the pool, whatever the file's `pool:` says. */
    if (tkm_options_set_from(&c->opts, "pool", block->values[0].value.string,
                             TKM_SOURCE_COLLECTD, "", why,
                             sizeof(why)) != TKM_OK)
        return fail(p, "%s", why);
    return 0;
}

/* Repeated lines of one list option (Sentinel) make one list. */
static int gather(parser *p, const oconfig_item_t *block, tkm__pool_conf *c,
                  int index)
{
    const oconfig_value_t *vals[ITEMS_MAX];
    int n = 0;

    for (int i = 0; i < block->children_num; i++) {
        const oconfig_item_t *ci = &block->children[i];
        if (own_index(ci->key) >= 0 ||
            tkm_option_lookup(ci->key, TKM_SOURCE_COLLECTD, NULL, NULL, 0) !=
                index)
            continue;
        if (plain(p, ci) != 0)
            return -1;
        for (int v = 0; v < ci->values_num; v++) {
            if (n == ITEMS_MAX)
                return fail(p, "%s is given more than %d times", ci->key,
                            ITEMS_MAX);
            vals[n++] = &ci->values[v];
        }
    }
    return set_values(p, c, index, NULL, vals, n);
}

static int parse(parser *p, const oconfig_item_t *block, tkm__pool_conf *c)
{
    const oconfig_item_t *own[OWN_COUNT] = {NULL};
    unsigned char seen[TKM_OPTION_SLOTS] = {0};
    char why[ERR_MAX];

    if (set_name(p, block, c) != 0)
        return -1;
    /* Names first: an unknown or doubled option is refused before any
     * file is read. */
    for (int i = 0; i < block->children_num; i++) {
        const oconfig_item_t *ci = &block->children[i];
        int o = own_index(ci->key), k;
        if (o >= 0) {
            if (own[o] != NULL)
                return fail(p, "%s is given twice", own_names[o]);
            own[o] = ci;
            continue;
        }
        k = tkm_option_lookup(ci->key, TKM_SOURCE_COLLECTD, NULL, NULL, 0);
        if (k < 0)
            return unknown(p, ci->key, NULL);
        if (seen[k]++ && !repeatable(k))
            return fail(p, "%s is given twice", ci->key);
    }
    /* The file first, wherever it appears: the block's options override
     * it (and the block's name stays the pool's). */
    if (own[OWN_CONFIG_FILE] != NULL) {
        if (load_file(p, own[OWN_CONFIG_FILE], c) != 0 ||
            set_name(p, block, c) != 0)
            return -1;
    }
    for (int i = 0; i < block->children_num; i++) {
        const oconfig_item_t *ci = &block->children[i];
        int o = own_index(ci->key), k;
        int rc = 0;
        if (o == OWN_LAYOUT)
            rc = set_layout(p, ci, c);
        else if (o == OWN_WORKER_METRICS)
            rc = set_worker_metrics(p, ci, c);
        else if (o == OWN_RECOVERY)
            rc = recovery(p, ci, c);
        else if (o < 0) {
            k = tkm_option_lookup(ci->key, TKM_SOURCE_COLLECTD, NULL, NULL, 0);
            if (!repeatable(k))
                rc = table_line(p, c, k, NULL, ci);
            else if (seen[k] != 0xff) {
                rc = gather(p, block, c, k);
                seen[k] = 0xff; /* once, at its first line */
            }
        }
        if (rc != 0)
            return -1;
    }
    if (c->recovery && c->opts.recovery.exec_argc == 0 &&
        c->opts.recovery.webhook[0] == '\0')
        return fail(p, "<Recovery> needs Exec (the recovery command) or "
                       "Webhook, here or in the ConfigFile's recovery:");
    if (c->recovery && c->opts.recovery.exec_argc > 0) {
        const char *argv[TKM_EXEC_ARGS_MAX + 1];
        for (int i = 0; i < c->opts.recovery.exec_argc; i++)
            argv[i] = c->opts.recovery.exec[i];
        argv[c->opts.recovery.exec_argc] = NULL;
        /* Refused now, not at 3 a.m. when the pool stalls. */
        if (tkm_action_check_argv(argv, why, sizeof(why)) != TKM_OK)
            return fail(p, "<Recovery> Exec: %s", why);
    }
    if (tkm_options_validate(&c->opts, why, sizeof(why)) != TKM_OK)
        return fail(p, "%s", why);
    /* The monitor counts workers alive with the age its stall rule uses
     * (CONTRACT.md: workers_alive). */
    c->opts.heartbeat.stale_after_s = c->opts.stall.heartbeat_age_s;
    return 0;
}

int tkm__pool_conf_parse(const oconfig_item_t *block, tkm__pool_conf *out,
                         char *err, size_t errlen)
{
    parser p = {.where = "", .config_file = "", .err = err, .errlen = errlen};

    memset(out, 0, sizeof(*out));
    tkm_options_init(&out->opts);
    out->layout = TKM__LAYOUT_NATIVE;
    if (parse(&p, block, out) != 0) {
        tkm__pool_conf_clear(out);
        return -1;
    }
    return 0;
}

void tkm__pool_conf_clear(tkm__pool_conf *c)
{
    if (c == NULL)
        return;
    /* The options may hold a Redis password. */
    memset(c, 0, sizeof(*c));
}

size_t tkm__pool_conf_names(const char **out, size_t max)
{
    size_t n = 0;
    tkm_option_info info;

    for (size_t i = 0; i < OWN_COUNT && n < max; i++)
        out[n++] = own_names[i];
    for (size_t i = 0; i < tkm_option_count() && n < max; i++) {
        tkm_option_describe(i, &info);
        if (info.collectd != NULL)
            out[n++] = info.collectd;
    }
    return n;
}

int tkm__pool_conf_own_describe(size_t index, tkm__pool_own_doc *out)
{
    if (index >= OWN_COUNT)
        return -1;
    out->name = own_names[index];
    out->value = own_docs[index].value;
    out->default_text = own_docs[index].default_text;
    out->doc = own_docs[index].doc;
    return 0;
}
