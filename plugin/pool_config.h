/*
 * The collectd plugin's <Pool> block, checked without collectd: this file
 * only reads liboconfig's plain structs (oconfig_item_t), so the unit tests
 * build config trees by hand and never load the daemon.
 */
#ifndef TKM_PLUGIN_POOL_CONFIG_H
#define TKM_PLUGIN_POOL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "liboconfig/oconfig.h"
#include "tokenmgr.h"

typedef enum tkm__layout {
    TKM__LAYOUT_NATIVE = 0, /* tokenmgr:{pool}:* through tkm_status() */
    TKM__LAYOUT_LEGACY = 1  /* the Python system's keys (SEED.md) */
} tkm__layout;

#define TKM__NOTES_MAX 8

/* Everything one <Pool> block says, defaults filled in. */
typedef struct tkm__pool_conf {
    tkm_options opts;   /* everything the library takes, resolved: the
                           ConfigFile, then the block's options over it */
    tkm__layout layout; /* Layout (native) */
    int worker_metrics; /* WorkerMetrics: each worker's heartbeat age */
    int recovery;       /* a <Recovery> block was given: actions may run */
    /* Values of the ConfigFile that the block overrode with another value,
     * one line each, for the log at startup. */
    char notes[TKM__NOTES_MAX][512];
    int nnotes;
} tkm__pool_conf;

/*
 * Read one <Pool "name"> block: ConfigFile first (wherever it appears), then
 * every other option over it, each checked by the library's options table
 * (so a value is refused in the same words as in the YAML file).  Returns
 * 0, or -1 with a one-line message that names the pool and the option as
 * written (`<Pool "keepa"> <Recovery> Window is 30, outside ...`).  Unknown
 * options, wrong types, out-of-range values, options given twice, values
 * that contradict each other are all errors.  Messages never show a Redis
 * password (the library redacts URLs in its own).  On error *out holds nothing
 * to free. Thread-safe.
 */
int tkm__pool_conf_parse(const oconfig_item_t *block, tkm__pool_conf *out,
                         char *err, size_t errlen);

/* Free what tkm__pool_conf_parse() allocated; NULL is fine. */
void tkm__pool_conf_clear(tkm__pool_conf *conf);

/* The option names a <Pool> block knows, then those of <Recovery>: up to
 * max of them into out; returns how many (the fuzzer's vocabulary). */
size_t tkm__pool_conf_names(const char **out, size_t max);

/* One of the plugin's own options (ConfigFile, Layout, WorkerMetrics, the
 * <Recovery> block), documented for collectd-tokenmgr(5).  Static strings. */
typedef struct tkm__pool_own_doc {
    const char *name;         /* as written in <Pool>: "ConfigFile" */
    const char *value;        /* what it takes ("FILE"); NULL for a block */
    const char *default_text; /* when the line is absent */
    const char *doc;          /* one line */
} tkm__pool_own_doc;

/* Describe own option `index` into *out: 0, or -1 past the end.
 * Thread-safe. */
int tkm__pool_conf_own_describe(size_t index, tkm__pool_own_doc *out);

#endif
