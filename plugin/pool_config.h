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

/*
 * <Recovery>: the guarded action.  Options not given come from the
 * ConfigFile's `recovery:` section (else the defaults); the resolved values
 * are also in opts.recovery, which the library's guard takes.
 */
typedef struct tkm__recovery_conf {
    int configured; /* a <Recovery> block was given: actions may run */
    char exec[TKM_EXEC_ARGS_MAX][TKM_EXEC_ARG_MAX]; /* Exec: exec[0] absolute */
    int exec_argc;                 /* >= 1 when Exec was given */
    int64_t timeout_s;             /* Timeout: the command's deadline (60) */
    int64_t cooldown_s;            /* Cooldown: between two actions (1800) */
    int64_t max_actions;           /* MaxActions: per Window (3) */
    int64_t window_s;              /* Window (3600) */
    int64_t grace_s;               /* Grace: not judged after an action (300) */
    int dry_run;                   /* DryRun: audit only (false) */
    char webhook[TKM_URL_MAX + 1]; /* Webhook: instead of Exec */
} tkm__recovery_conf;

/* Everything one <Pool> block says, defaults filled in. */
typedef struct tkm__pool_conf {
    tkm_options opts;      /* pool, redis_url, timeout_ms, policy */
    tkm__layout layout;    /* Layout (native) */
    int64_t capacity;      /* legacy: Capacity, or the YAML's
                              bucket.capacity; 0 = 60 x rate */
    double stall_tokens;   /* StallTokens; < 0 when not given */
    double stall_ratio;    /* StallTokensRatio; < 0 when not given */
    int64_t stall_age_s;   /* StallHeartbeatAge (= heartbeat.stale_after_s) */
    int64_t stall_confirm; /* StallConfirmations (2) */
    int worker_metrics;    /* WorkerMetrics: duration-worker.<id> (false) */
    tkm__recovery_conf recovery;
} tkm__pool_conf;

/*
 * Read one <Pool "name"> block: ConfigFile first (wherever it appears), then
 * every other option over it.  Returns 0, or -1 with a one-line message
 * naming the pool and the option in err.  Unknown options, wrong types,
 * out-of-range values, options given twice, a missing Redis URL,
 * StallTokens together with StallTokensRatio, Capacity outside the legacy
 * layout are all errors.  Messages never show a Redis password (the
 * library redacts URLs in its own).  On error *out holds nothing to free.
 * Thread-safe.
 */
int tkm__pool_conf_parse(const oconfig_item_t *block, tkm__pool_conf *out,
                         char *err, size_t errlen);

/* Free what tkm__pool_conf_parse() allocated; NULL is fine. */
void tkm__pool_conf_clear(tkm__pool_conf *conf);

/* The option names a <Pool> block knows, then those of <Recovery>: up to
 * max of them into out; returns how many (the fuzzer's vocabulary). */
size_t tkm__pool_conf_names(const char **out, size_t max);

#endif
