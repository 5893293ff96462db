/*
 * tokenmgr.h: the one public header of libtokenmgr.
 *
 * libtokenmgr shares one rate-limited API budget (a Keepa-style token bucket)
 * across many worker processes on many hosts.  Every decision is one atomic
 * Lua script inside Redis, on Redis' clock; this header is the whole public
 * API.
 *
 * Thread safety: a tkm_client is NOT thread-safe.  Use one client per thread
 * (they may all point at the same pool).  Functions that take no client are
 * thread-safe.
 *
 * Ownership: every object returned through an out-parameter by a function
 * named *_open is freed with the matching *_free, which accepts NULL.
 * Strings returned as `const char *` belong to the library and stay valid
 * until the next call on the same handle (or forever, for tkm_strerror and
 * tkm_reason_str).
 */
#ifndef TOKENMGR_H
#define TOKENMGR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TKM_BUILDING_LIBRARY)
#define TKM_EXPORT __attribute__((visibility("default")))
#else
#define TKM_EXPORT
#endif

/* The version, defined once: CMake reads it from here. */
#define TKM_VERSION_MAJOR 0
#define TKM_VERSION_MINOR 1
#define TKM_VERSION_PATCH 0
#define TKM_VERSION       "0.1.0"

/* Return the library's version string ("MAJOR.MINOR.PATCH"). */
TKM_EXPORT const char *tkm_version(void);

/*
 * Status codes returned by every fallible function.  0 is success; the list
 * only grows (new codes are appended, none is renumbered).
 */
typedef enum tkm_code {
    TKM_OK = 0,
    TKM_EINVAL = 1,  /* an argument was invalid (negative cost, bad id...) */
    TKM_ECONFIG = 2, /* configuration invalid (file, key, value) */
    TKM_EREDIS = 3,  /* Redis unreachable, timed out or failed: fail closed */
    TKM_EPROTO = 4,  /* Redis answered something this library cannot read */
    TKM_ESTATE =
        5, /* the pool's state in Redis holds garbage; nothing written */
    TKM_ENOGRANT =
        6, /* no such reservation (never granted, already ended, expired) */
    TKM_ENOMEM = 7,     /* out of memory */
    TKM_EIO = 8,        /* a file could not be read */
    TKM_EHTTP = 9,      /* the API could not be reached or answered garbage,
                           retries exhausted */
    TKM_EAPI = 10,      /* the API refused the request (400, 402, 404, 405) */
    TKM_EWAIT = 11,     /* tokens not available within the wait limit: free
                           the worker and retry later */
    TKM_ECANCELED = 12, /* the cancel flag was raised during a wait */
    TKM_ENOTFOUND = 13  /* no such worker (or other named record) */
} tkm_code;

/* A static, one-line description of a status code.  Never NULL. */
TKM_EXPORT const char *tkm_strerror(tkm_code code);

/* ------------------------------------------------------------------------
 * Options and configuration
 * ---------------------------------------------------------------------- */

#define TKM_POOL_MAX      64  /* pool names: [A-Za-z0-9_.-]{1,64} */
#define TKM_WORKER_ID_MAX 128 /* worker ids: [A-Za-z0-9_.:@-]{1,128} */
#define TKM_URL_MAX       1024

/* The bucket policy (YAML section `bucket:`); see conf/tokenmgr.yaml. */
typedef struct tkm_bucket_options {
    int64_t refill_period_ms;  /* one refill tick per period (60000) */
    int64_t capacity;          /* 0 = 60 x refill rate */
    int64_t min_start_balance; /* a call starts only at >= this balance (1) */
    int64_t soft_floor;        /* a grant leaving less turns recharge on (20) */
    int64_t recharge_target;   /* recharge ends at this balance (50) */
    int64_t low_cost_max;      /* calls costing at most this... (10) */
    int64_t low_cost_target;   /* ...may leave recharge at this balance (20) */
    int64_t recharge_timeout_s; /* recharge cleared after this long (3600) */
    int64_t max_deficit; /* no grant takes the balance below this (-180) */
    int64_t lease_ttl_s; /* reservations expire after this (120) */
    int64_t max_wait_s;  /* blocking acquires refuse longer waits (60) */
    /* Before any call of its estimate (or any call at all) completed, a
     * call is valued at this many times its estimate (4: SEED's 386
     * charged for 100, rounded up); 1 trusts estimates.  A single
     * completion far above its estimate counts at most this much once 3
     * refill periods have passed (see tkm_try_acquire). */
    double estimate_prior;
} tkm_bucket_options;

/* Worker liveness (YAML section `heartbeat:`). */
typedef struct tkm_heartbeat_options {
    int64_t min_interval_ms; /* closer heartbeats are coalesced (1000) */
    int64_t stale_after_s;   /* silent this long: not alive (900) */
    int64_t retention_s;     /* records older than this are pruned (86400) */
    int64_t wait_slice_ms; /* blocking waits beat at least this often (2000) */
} tkm_heartbeat_options;

#define TKM_PATH_MAX 4096

/* The Keepa client (YAML section `keepa:`). */
typedef struct tkm_keepa_options {
    char base_url[TKM_URL_MAX + 1];    /* "https://api.keepa.com" */
    char key_file[TKM_PATH_MAX];       /* "": $TOKENMGR_KEEPA_KEY */
    int64_t timeout_ms;                /* one HTTP request, whole (30000) */
    int64_t max_retries;               /* after the first attempt (5) */
    int64_t token_sync_min_interval_s; /* /token at most this often (300) */
} tkm_keepa_options;

/* The stall rule's thresholds (collectd: StallTokens, StallTokensRatio...). */
typedef struct tkm_stall_options {
    int64_t tokens;          /* StallTokens; < 0: use the ratio */
    double tokens_ratio;     /* StallTokensRatio x capacity (0.97) */
    int64_t heartbeat_age_s; /* StallHeartbeatAge (900) */
    int64_t confirmations;   /* StallConfirmations (2) */
    /* SharedCauseEscalate: a stall held back on evidence of a shared cause
     * acts once it lasted this long (3 x heartbeat_age_s). */
    int64_t shared_cause_escalate_s;
} tkm_stall_options;

/* Fill *o with the defaults above.  Thread-safe. */
TKM_EXPORT void tkm_stall_options_init(tkm_stall_options *o);

#define TKM_EXEC_ARGS_MAX 16
#define TKM_EXEC_ARG_MAX  256

/* The guard (collectd: the <Recovery> block). */
typedef struct tkm_recovery_options {
    int64_t timeout_s;   /* the action's deadline (60) */
    int64_t cooldown_s;  /* after each action, doubling with each (1800) */
    int64_t max_actions; /* per window, then escalate (3) */
    int64_t window_s;    /* (3600) */
    int64_t grace_s;     /* not judged after an action (300) */
    int dry_run;         /* decisions audited, nothing run */
    int exec_argc;       /* the command (no shell): argv[0] absolute */
    char exec[TKM_EXEC_ARGS_MAX][TKM_EXEC_ARG_MAX];
    char webhook[TKM_URL_MAX + 1]; /* or an http(s) URL to POST to */
} tkm_recovery_options;

TKM_EXPORT void tkm_recovery_options_init(tkm_recovery_options *o);

#define TKM_SENTINELS_MAX 8
#define TKM_ADDR_MAX      256

/* Redis Sentinel (YAML `redis.sentinels`, `redis.master_name`,
 * `redis.sentinel_password_file`): when count > 0 the master is asked of
 * the sentinels and redis_url only supplies the database and credentials. */
typedef struct tkm_sentinel_options {
    int count;                                  /* 0: no Sentinel */
    char addr[TKM_SENTINELS_MAX][TKM_ADDR_MAX]; /* host:port or unix:///p */
    char master_name[128];                      /* "mymaster" */
    char password_file[TKM_PATH_MAX];           /* "": no AUTH */
} tkm_sentinel_options;

/* Queue classes: names [A-Za-z0-9_.-]{1,32}; weights 1..1000. */
#define TKM_QUEUE_CLASS_MAX   32
#define TKM_QUEUE_CLASSES_MAX 16
#define TKM_QUEUE_WEIGHT_MAX  1000

/*
 * The wait queue (YAML section `queue:`): blocking acquires wait in one line
 * per pool, shared by every worker; priority classes share the tokens in
 * proportion to their weights (see tkm_acquire_ex).
 */
typedef struct tkm_queue_options {
    /* `queue.classes`: "name=weight" items ("interactive=3"); the class
     * "default" always exists, with weight 1 unless listed. */
    int nclasses;
    char classes[TKM_QUEUE_CLASSES_MAX][TKM_QUEUE_CLASS_MAX + 8];
    /* `queue.class`: this client's class ("default"): "default" or one of
     * `classes`. */
    char class_name[TKM_QUEUE_CLASS_MAX + 1];
} tkm_queue_options;

/* Slots of tkm_options.sources_ (one per option of the table). */
#define TKM_OPTION_SLOTS 128

/* Everything a client needs.  Fill with tkm_options_init(), then override
 * fields, or better set them by name with tkm_options_set(), which checks
 * the value and lets defaults that depend on it follow. */
typedef struct tkm_options {
    char pool[TKM_POOL_MAX + 1];           /* "keepa" */
    char redis_url[TKM_URL_MAX + 1];       /* "redis://127.0.0.1:6379/0" */
    int64_t timeout_ms;                    /* bound of every Redis call (500) */
    char worker_id[TKM_WORKER_ID_MAX + 1]; /* "" = "<hostname>:<pid>" */
    tkm_bucket_options bucket;
    tkm_heartbeat_options heartbeat;
    tkm_keepa_options keepa;
    tkm_stall_options stall;       /* YAML `stall:` */
    tkm_recovery_options recovery; /* YAML `recovery:` */
    /* YAML `redis.password_file`: "" = the URL's password, else the AUTH
     * password, read once by tkm_client_open() from a file only its owner
     * may read (trailing newline stripped); it replaces the URL's. */
    char redis_password_file[TKM_PATH_MAX];
    tkm_sentinel_options sentinel; /* YAML `redis.sentinels`... */
    tkm_queue_options queue;       /* YAML `queue:` */
    /* Private: where each option's value came from (tkm_options_source). */
    unsigned char sources_[TKM_OPTION_SLOTS];
} tkm_options;

/* Fill *opts with the documented defaults.  Thread-safe. */
TKM_EXPORT void tkm_options_init(tkm_options *opts);

/* A tkm_options on the heap, filled with the defaults, for callers that
 * must not depend on the struct's layout (language bindings).  Free with
 * tkm_options_free().  Returns TKM_OK or TKM_ENOMEM. */
TKM_EXPORT tkm_code tkm_options_new(tkm_options **out);

/* Free what tkm_options_new() made (the memory is wiped first: the options
 * may hold a password).  NULL is fine. */
TKM_EXPORT void tkm_options_free(tkm_options *opts);

/* Where an option's value came from. */
typedef enum tkm_option_source {
    TKM_SOURCE_DEFAULT = 0,  /* the default (or derived from another) */
    TKM_SOURCE_FILE = 1,     /* a YAML file */
    TKM_SOURCE_ENV = 2,      /* an environment variable */
    TKM_SOURCE_FLAG = 3,     /* a command-line flag */
    TKM_SOURCE_COLLECTD = 4, /* a collectd <Pool> block */
    TKM_SOURCE_API = 5       /* tkm_options_set() */
} tkm_option_source;

/* "default", "file", "environment", "flag", "collectd", "api". */
TKM_EXPORT const char *tkm_option_source_name(tkm_option_source source);

/*
 * The options table: every option the configuration knows, in one place.
 * The YAML loader, the environment, the CLI's flags, the collectd plugin's
 * <Pool> parser, tkm_options_set() and the documentation all walk it.
 */
typedef struct tkm_option_info {
    const char *key;      /* YAML path: "bucket.soft_floor" */
    const char *collectd; /* collectd option ("StallHeartbeatAge"), or NULL */
    const char *collectd_block; /* "Recovery" for <Recovery> Exec, or NULL */
    const char *flag;       /* a CLI flag ("--redis"), or NULL: --set KEY=V */
    const char *type;       /* "integer", "number", "boolean", "string",
                               "list" */
    const char *unit;       /* "ms", "s", "tokens", "" */
    const char *doc;        /* one line */
    char env[96];           /* TOKENMGR_<KEY>, or "" when none */
    char range[64];         /* "1..600000", "(0, 1]", "" */
    char default_text[192]; /* "20", "\"\"", "50, at least bucket.soft_floor
                               when that is set, ..." */
} tkm_option_info;

/* How many options the table holds. */
TKM_EXPORT size_t tkm_option_count(void);

/* Describe option `index` (0..tkm_option_count()-1) into *out.  Returns
 * TKM_OK or TKM_EINVAL.  Thread-safe. */
TKM_EXPORT tkm_code tkm_option_describe(size_t index, tkm_option_info *out);

/* The index of the option with YAML path `key`, or -1. */
TKM_EXPORT int tkm_option_index(const char *key);

/*
 * The index of the option that `source` spells `name`: the collectd option
 * (case-insensitive) inside `block` (NULL: the <Pool> block itself,
 * "Recovery"), the environment variable, or else the YAML path.  -1 when
 * none; then `hint` (may be NULL) gets " (did you mean 'X'?)" when a known
 * name is close, else "".
 */
TKM_EXPORT int tkm_option_lookup(const char *name, tkm_option_source source,
                                 const char *block, char *hint, size_t hintlen);

/*
 * Set the option `key` (its YAML path: "bucket.soft_floor") from text
 * ("20", "true", "0.97", "redis://host"), checked against the table exactly
 * as the YAML loader checks it: "20x", a value outside the range, an
 * unknown key are refused with a one-line message naming the key.  A list
 * option ("recovery.exec", "redis.sentinels") takes its items separated by
 * commas here (or use tkm_options_set_list).  Defaults derived from this
 * option follow it (an unset bucket.low_cost_target never exceeds a set
 * bucket.recharge_target).  Returns TKM_OK or TKM_ECONFIG; *o is unchanged
 * on failure.  Thread-safe on distinct options.
 */
TKM_EXPORT tkm_code tkm_options_set(tkm_options *o, const char *key,
                                    const char *value, char *errbuf,
                                    size_t errlen);

/* The same for a list option, item by item. */
TKM_EXPORT tkm_code tkm_options_set_list(tkm_options *o, const char *key,
                                         const char *const *items, size_t n,
                                         char *errbuf, size_t errlen);

/*
 * What the loaders use: set `key` from `value` on behalf of `source`.  The
 * message names the option as that source spells it (the collectd option,
 * the environment variable, the flag, the YAML path), prefixed with
 * `where` ("file:line:col: ", "<Pool \"x\"> ", may be NULL).
 */
TKM_EXPORT tkm_code tkm_options_set_from(tkm_options *o, const char *key,
                                         const char *value,
                                         tkm_option_source source,
                                         const char *where, char *errbuf,
                                         size_t errlen);

/*
 * Set the worker id (the `worker_id` field, which is not in the options
 * table: it names one process, not a configuration).  NULL or "" means
 * "<hostname>:<pid>", filled in by tkm_client_open().  An id outside
 * [A-Za-z0-9_.:@-]{1,128} is refused with a one-line message and *o left
 * unchanged.  For callers that must not depend on the struct's layout
 * (language bindings).  Returns TKM_OK or TKM_ECONFIG.  Thread-safe.
 */
TKM_EXPORT tkm_code tkm_options_set_worker_id(tkm_options *o, const char *id,
                                              char *errbuf, size_t errlen);

/* The list form of tkm_options_set_from. */
TKM_EXPORT tkm_code tkm_options_set_list_from(
    tkm_options *o, const char *key, const char *const *items, size_t n,
    tkm_option_source source, const char *where, char *errbuf, size_t errlen);

/*
 * The value of `key` as text, as tkm_options_set() takes it (a list:
 * items joined by commas); a password in a URL is shown as "***".
 * Returns TKM_OK, TKM_EINVAL (unknown key) or TKM_ECONFIG (buffer too
 * small: the text is cut).
 */
TKM_EXPORT tkm_code tkm_options_get(const tkm_options *o, const char *key,
                                    char *buf, size_t len);

/* Where the value of `key` came from (TKM_SOURCE_DEFAULT for unknown). */
TKM_EXPORT tkm_option_source tkm_options_source(const tkm_options *o,
                                                const char *key);

/*
 * Load a YAML configuration file over *opts (keys absent from the file keep
 * their current value), then its overrides: every *.yaml (or *.yml) in the
 * folder named like the file without its extension plus ".d"
 * (/etc/tokenmgr/tokenmgr.yaml: /etc/tokenmgr/tokenmgr.d/), in name order,
 * each over the ones before.  Unknown keys, wrong types and out-of-range
 * values are rejected; the one-line message in errbuf names the file, line
 * and column.
 * The result is validated as tkm_options_validate() does.  On failure *opts
 * may be partly updated.  Returns TKM_OK, TKM_EIO (unreadable file) or
 * TKM_ECONFIG.  errbuf may be NULL.  Thread-safe.
 */
TKM_EXPORT tkm_code tkm_config_load_file(const char *path, tkm_options *opts,
                                         char *errbuf, size_t errlen);

/*
 * Check every field of *opts: pool name, Redis URL, ranges, and the relations
 * between them (max_deficit <= soft_floor <= recharge_target, ...).  Returns
 * TKM_OK or TKM_ECONFIG with a one-line message naming the field in errbuf.
 */
TKM_EXPORT tkm_code tkm_options_validate(const tkm_options *opts, char *errbuf,
                                         size_t errlen);

/*
 * Apply the environment: each option's variable (tkm_option_info.env:
 * TOKENMGR_ and the YAML path in capitals, dots as underscores, e.g.
 * TOKENMGR_REDIS_URL, TOKENMGR_BUCKET_SOFT_FLOOR) replaces its value when
 * set and not empty.  Returns TKM_OK or TKM_ECONFIG with the variable named.
 */
TKM_EXPORT tkm_code tkm_options_from_env(tkm_options *opts, char *errbuf,
                                         size_t errlen);

/*
 * The one checked integer parser: the whole of `text` (optional sign, decimal
 * digits, no spaces) must be an integer within [min, max].  Returns TKM_OK or
 * TKM_EINVAL; *out is written only on success.  Thread-safe.
 */
TKM_EXPORT tkm_code tkm_parse_int(const char *text, int64_t min, int64_t max,
                                  int64_t *out);

/*
 * The one checked float parser: the whole of `text` must be a decimal number
 * as Python's str(float) or Redis' INCRBYFLOAT write it (optional sign,
 * digits with an optional '.', an optional exponent: "54.0", "-3", "1e-05",
 * "1.7e+09"), finite and within [min, max].  Rejected: spaces, hex, "inf",
 * "nan", overflow and underflow ("1e400", "1e-400"), trailing text.
 * Returns TKM_OK or TKM_EINVAL; *out is written only on success.
 * Thread-safe.
 */
TKM_EXPORT tkm_code tkm_parse_double(const char *text, double min, double max,
                                     double *out);

/* ------------------------------------------------------------------------
 * The client
 * ---------------------------------------------------------------------- */

typedef struct tkm_client tkm_client;

/*
 * Create a client for opts->pool (the options are copied).  Connects lazily:
 * the first call that needs Redis connects, and any broken connection is
 * replaced on the next call.  Like hiredis' redisConnect, a handle is handed
 * out even when the options are invalid (so tkm_errstr() can say why); only
 * TKM_ENOMEM leaves *out NULL.  The caller frees *out with tkm_client_free().
 * A redis.password_file that cannot be opened or is not a regular file is
 * TKM_ECONFIG.
 *
 * Whatever the server on the Redis port does, each call that talks to it
 * (connecting, AUTH, SELECT and the script together) ends within
 * opts->timeout_ms with TKM_EREDIS, and a reply that declares more than
 * 50000 elements (nested ones counted), a string over 1 MiB, a line over
 * 64 KiB, or that runs past 16 MiB fails with TKM_EPROTO before it is
 * read further; either way the connection is dropped and the next call
 * reconnects.
 */
TKM_EXPORT tkm_code tkm_client_open(const tkm_options *opts, tkm_client **out);

/* Close the connection and free the client (a place in line that its
 * last tkm_complete() took for a next call is given up first: one round
 * trip).  NULL is fine. */
TKM_EXPORT void tkm_client_free(tkm_client *client);

/* One line that says what the last failed call on this client did wrong. */
TKM_EXPORT const char *tkm_errstr(const tkm_client *client);

/* The options the client runs with (worker_id filled in). */
TKM_EXPORT const tkm_options *tkm_client_options(const tkm_client *client);

/* The client's worker id (the default "<hostname>:<pid>" filled in).
 * Belongs to the client. */
TKM_EXPORT const char *tkm_client_worker_id(const tkm_client *client);

/*
 * Let a signal handler interrupt this client's waits: once *flag is non-zero
 * a blocking acquire, a back-off or a wait for tokens returns TKM_ECANCELED
 * within a slice (at once when the signal interrupts the sleep).  A call in
 * flight is never cut: it completes and is accounted for.  NULL clears it.
 */
TKM_EXPORT void tkm_client_set_cancel(tkm_client *client,
                                      const volatile sig_atomic_t *flag);

/*
 * on = 0: this client is a tool, not a worker: it never records a
 * heartbeat (tkm_heartbeat() and tkm_heartbeat_busy() do nothing and
 * return TKM_OK, and a blocking wait does not beat).  Clients beat by
 * default.
 */
TKM_EXPORT void tkm_client_set_heartbeats(tkm_client *client, int on);

/* Redis round trips this client has made (for benchmarks and tests). */
TKM_EXPORT int64_t tkm_client_round_trips(const tkm_client *client);

/* Why an acquire was (or was not) granted. */
typedef enum tkm_reason {
    TKM_REASON_OK = 0,
    TKM_REASON_RECHARGING = 1,    /* recharge mode: waiting for the target */
    TKM_REASON_INSUFFICIENT = 2,  /* balance below min_start_balance */
    TKM_REASON_DEFICIT_LIMIT = 3, /* the grant would pass max_deficit */
    TKM_REASON_NEED_SYNC = 4,     /* the pool has no state: sync first */
    TKM_REASON_WAIT_TOO_LONG = 5, /* a blocking wait would exceed max_wait */
    TKM_REASON_LINE_AHEAD = 6     /* waiters are in line before this call:
                                     retry_after_ms is its expected turn */
} tkm_reason;

/* "ok", "recharging", "insufficient", "deficit_limit", "need_sync",
 * "wait_too_long" (the JSON names of CONTRACT.md), "line_ahead".  Never
 * NULL. */
TKM_EXPORT const char *tkm_reason_str(tkm_reason reason);

#define TKM_GRANT_ID_MAX 32

/*
 * The ranges of the numbers a pool takes, from the C API (tkm_try_acquire,
 * tkm_complete, tkm_sync), the command-line tool and the API's replies
 * alike.  A value outside them is refused where it enters: TKM_EINVAL (the
 * message names the value and its range) and nothing is sent to Redis; a
 * reply from the API that holds one is a bad reply, not applied.  Far
 * beyond any real pool (Keepa's plans refill at most a few thousand tokens
 * a minute), and small enough that whatever the scripts compute from them
 * stays an integer the pool's state holds exactly.
 */
#define TKM_TOKENS_MAX INT64_C(1000000000) /* |balance|, cost, consumed */
#define TKM_RATE_MAX   INT64_C(1000000)    /* refill rate, per period */
/* Timestamps: Unix milliseconds, 0 up to 2100-01-01T00:00:00Z (a
 * microsecond or nanosecond clock is refused, not read as a far future). */
#define TKM_TIMESTAMP_MS_MAX INT64_C(4102444800000)

/* retry_after_ms of a denial that refill cannot cure (rate 0, no state). */
#define TKM_RETRY_NEVER INT64_C(-1)

/* The answer to an acquire. */
typedef struct tkm_grant {
    int granted;                   /* 1 when the reservation was made */
    char id[TKM_GRANT_ID_MAX + 1]; /* grant id when granted, else "" */
    int64_t tokens;                /* balance after the decision */
    tkm_reason reason;
    int64_t
        retry_after_ms;   /* denial: when refill may cure it; TKM_RETRY_NEVER */
    int recharge_mode;    /* recharge mode after the decision */
    int recharge_expired; /* 1 when this call cleared a timed-out recharge */
} tkm_grant;

/*
 * Try to reserve `cost` tokens, never sleeping.  One round trip.  A denial
 * (grant->granted == 0) is not an error: it returns TKM_OK with the reason
 * and retry_after_ms, and writes nothing except recharge transitions.
 * A cost outside 0..TKM_TOKENS_MAX, or that no balance could ever allow
 * (above capacity - max_deficit), is TKM_EINVAL.  The deficit limit counts
 * what calls may really cost: every tkm_complete() teaches the pool how far
 * the actual cost exceeded the estimate (per estimate class, estimates
 * within a factor of 2, and for the pool), and a call is valued at the
 * second largest actual/estimate of the last 8 completions, the largest
 * counting only for 3 refill periods after it (one outlier holds the pool
 * back that long, a repeated one for as long as it repeats);
 * bucket.estimate_prior before anything completed.  A grant needs the
 * balance minus the calls in flight at that error, and this call at its
 * own, to stay above max_deficit.  While waiters are in line
 * (tkm_acquire_ex), a try never passes them: it is denied with
 * TKM_REASON_LINE_AHEAD and the wait its turn would take (unless its class
 * is ahead of them by the classes' weights), and still writes nothing.
 * Its class is the client's queue.class.  A grant is a lease: end it with
 * tkm_complete() or tkm_release() within lease_ttl_s, or it expires keeping
 * its cost.  A script that cannot finish (a key of the wrong type, a Redis
 * user without the permission) is refused before its first write: no
 * operation leaves a half-written pool.
 */
TKM_EXPORT tkm_code tkm_try_acquire(tkm_client *client, int64_t cost,
                                    tkm_grant *grant);

/* What the API reported with a response (KEEPA.md: tokensLeft, timestamp). */
typedef struct tkm_report {
    int64_t tokens_left;
    int64_t timestamp_ms;
} tkm_report;

/* The outcome of a complete, release or sync. */
typedef struct tkm_reconcile {
    int64_t tokens;     /* balance after */
    int report_applied; /* 1 when the report set the balance */
    int report_stale;   /* 1 when the report was older than the last applied */
} tkm_reconcile;

/*
 * The call of `grant_id` was made and cost `consumed`.  With a report newer
 * than the last one applied, the balance becomes report->tokens_left minus
 * the estimates of reservations still outstanding; otherwise the difference
 * between estimate and consumed is applied.  report may be NULL; out may be
 * NULL.  TKM_ENOGRANT when the id is unknown, ended or expired; TKM_EINVAL
 * for consumed outside 0..TKM_TOKENS_MAX, tokens_left outside
 * -TKM_TOKENS_MAX..TKM_TOKENS_MAX or timestamp_ms outside
 * 0..TKM_TIMESTAMP_MS_MAX (nothing changed).  The grant of a blocking
 * acquire that waited in line takes the worker's place for its next call
 * (see tkm_acquire_ex()).
 */
TKM_EXPORT tkm_code tkm_complete(tkm_client *client, const char *grant_id,
                                 int64_t consumed, const tkm_report *report,
                                 tkm_reconcile *out);

/* The call of `grant_id` was not made: return its estimate.  out may be NULL.
 */
TKM_EXPORT tkm_code tkm_release(tkm_client *client, const char *grant_id,
                                tkm_reconcile *out);

/* An authoritative balance, as the API reported it. */
typedef struct tkm_sync_info {
    int64_t tokens;       /* tokensLeft, -TKM_TOKENS_MAX..TKM_TOKENS_MAX */
    int64_t rate;         /* refillRate, tokens per period, 0..TKM_RATE_MAX */
    int64_t refill_in_ms; /* refillIn, 0..refill_period_ms, or -1: unknown */
    int64_t timestamp_ms; /* the API's, 0..TKM_TIMESTAMP_MS_MAX, or -1:
                             Redis' now */
} tkm_sync_info;

/*
 * Set the pool's balance, rate and refill phase from an API report.  The
 * balance becomes tokens minus the estimates still in flight; a report older
 * than the last one applied is ignored (out->report_stale).  out may be NULL.
 * A value outside its range above is TKM_EINVAL, naming it: nothing changed.
 */
TKM_EXPORT tkm_code tkm_sync(tkm_client *client, const tkm_sync_info *info,
                             tkm_reconcile *out);

/* A pool's state, refill projected to now; nothing consumed or written. */
typedef struct tkm_pool_status {
    int synced; /* 0: no state yet (other fields 0 / -1) */
    int64_t tokens;
    int64_t capacity;
    int64_t refill_rate;
    int64_t refill_period_ms;
    int64_t refill_in_ms;
    int recharge_mode;
    int64_t recharge_since_ms; /* Redis time (Unix ms), -1 when off */
    int64_t recharge_target;   /* effective: clamped to capacity */
    int64_t inflight;          /* outstanding reservations */
    int64_t inflight_tokens;   /* their estimates */
    int64_t last_sync_age_ms;  /* -1 when never synced */
    int64_t now_ms;            /* Redis' clock at the read */
    int64_t workers_total;     /* workers heard from within the retention */
    int64_t workers_alive;     /* fresh heartbeat, or inside a busy period */
    int64_t heartbeat_age_ms;  /* freshest heartbeat's age; -1 when none */
    /* What the calls in flight may cost beyond their estimates, going by
     * what completed calls cost (see tkm_try_acquire). */
    int64_t inflight_reserve;
    double estimate_ratio; /* the pool's learned actual/estimate; 0: none */
    int64_t queue_waiters; /* waiters in line, every class */
    int64_t queue_oldest_wait_ms; /* the oldest one's wait so far; -1: none */
} tkm_pool_status;

/* Read the pool's state (and its workers' summary) in one round trip. */
TKM_EXPORT tkm_code tkm_status(tkm_client *client, tkm_pool_status *out);

/* Force recharge mode on (1) or off (0). */
TKM_EXPORT tkm_code tkm_recharge(tkm_client *client, int on);

/* Delete every key of this pool (tokenmgr:{pool}:*) and nothing else,
 * the recovery guard and its audit trail included: tkm_reset_pool() with
 * TKM_RESET_ALL.  *deleted (may be NULL) receives the number of keys
 * removed. */
TKM_EXPORT tkm_code tkm_reset(tkm_client *client, int64_t *deleted);

/* tkm_reset_pool() flags. */
#define TKM_RESET_ALL 1u /* the recovery guard and audit trail too */

/*
 * Delete the pool's state: the bucket, its leases, its workers'
 * records, the /token throttle and the wait queue; with TKM_RESET_ALL also
 * the recovery guard and its audit trail (kept otherwise, so an escalation
 * and the history survive a reset).  The keys are known by name: no
 * keyspace scan, so Redis is never blocked by other pools' keys.
 */
TKM_EXPORT tkm_code tkm_reset_pool(tkm_client *client, unsigned flags,
                                   int64_t *deleted);

/* ------------------------------------------------------------------------
 * Worker liveness and waiting
 * ---------------------------------------------------------------------- */

/*
 * Phase texts longer than this many bytes are truncated (at a UTF-8
 * character boundary); control characters become spaces.
 */
#define TKM_PHASE_MAX 120

/*
 * Record that this client's worker (options.worker_id) is alive, doing
 * `phase` (NULL = ""), on Redis' clock.  One round trip; calls closer than
 * heartbeat.min_interval_ms to the previous one are coalesced on the client
 * (TKM_OK, nothing sent), so a tight loop may call it every iteration.  A
 * plain heartbeat ends an earlier busy period.
 */
TKM_EXPORT tkm_code tkm_heartbeat(tkm_client *client, const char *phase);

/*
 * Declare the worker legitimately busy without calling the API for
 * `seconds` (1..86400), e.g. a long database write: the stall rule counts
 * it alive until then.  Never coalesced.  TKM_EINVAL for a bad duration.
 */
TKM_EXPORT tkm_code tkm_heartbeat_busy(tkm_client *client, const char *phase,
                                       int64_t seconds);

/* One worker, as tkm_workers() reports it. */
typedef struct tkm_worker {
    char id[TKM_WORKER_ID_MAX + 1];
    int64_t heartbeat_age_ms; /* on Redis' clock */
    char phase[TKM_PHASE_MAX + 1];
    int64_t busy_until_ms; /* Redis time (Unix ms) when busy; -1 when not */
    int alive;             /* fresh heartbeat or busy */
    /* The last failure its heartbeats reported (a Redis call or an API
     * call that failed): "redis" or "api", "" when none, and its age. */
    char error[16];
    int64_t error_age_ms;
} tkm_worker;

/*
 * Every worker heard from within heartbeat.retention_s, freshest first (at
 * most TKM_WORKERS_MAX).  *list is allocated (free it with
 * tkm_workers_free) and may be NULL when *count is 0.
 */
#define TKM_WORKERS_MAX 10000
TKM_EXPORT tkm_code tkm_workers(tkm_client *client, tkm_worker **list,
                                size_t *count);

/* Free a list from tkm_workers().  NULL is fine. */
TKM_EXPORT void tkm_workers_free(tkm_worker *list);

/* Remove a departed worker's records (its heartbeat, phase, busy period).
 * TKM_ENOTFOUND when the pool has no worker of that id; TKM_EINVAL for an
 * id that is not one. */
TKM_EXPORT tkm_code tkm_worker_forget(tkm_client *client, const char *id);

/*
 * Blocking acquire: tkm_acquire_ex() in the client's class (queue.class).
 * When the wait would end after max_wait_ms (< 0: bucket.max_wait_s) from
 * the call, returns at once with granted 0, reason TKM_REASON_WAIT_TOO_LONG
 * and the wait in retry_after_ms.  Denials that refill cannot cure
 * (need_sync, rate 0) return at once with their own reason.  Redis failures
 * return their error within the timeout.  max_wait_ms above
 * TKM_MAX_WAIT_MS (a day, bucket.max_wait_s' largest) is TKM_EINVAL.
 */
#define TKM_MAX_WAIT_MS INT64_C(86400000)
TKM_EXPORT tkm_code tkm_acquire(tkm_client *client, int64_t cost,
                                int64_t max_wait_ms, tkm_grant *grant);

/* How a blocking acquire waits.  Zero-initialise; NULL means all
 * defaults. */
typedef struct tkm_acquire_opts {
    /* The call's priority class: "default" or one of queue.classes;
     * NULL or "": the client's queue.class. */
    const char *queue_class;
} tkm_acquire_opts;

/*
 * Blocking acquire in line.  A call that is denied takes a ticket in the
 * pool's wait queue (one line in Redis for every worker on every host) and
 * sleeps until its expected turn: the refill needed for every call ahead
 * of it and for itself, under the floor, recharge and deficit rules.
 * Waiters are told times a little apart, so they wake one after another,
 * not together; each sleep sees the cancel flag every
 * heartbeat.wait_slice_ms and beats ("waiting for tokens") every quarter of
 * heartbeat.stale_after_s, and each attempt renews the ticket.  A wait that
 * ends without a grant (canceled, Redis failing) takes its ticket out of
 * the line.  Never polls, never calls the API while waiting.
 *
 * The order: classes share the tokens in proportion to their weights
 * (queue.classes, start-time fair queueing on tokens: a backlogged heavy
 * class never starves a light one, nor the light one it), first come first
 * served within a class.  A grant goes to the head of the line; a call
 * behind it may go first only past waiters that cost more or are asleep
 * until later, and only when the head (and whoever is expected within the
 * refill it takes; for a call not yet in line, everyone) expects its grant
 * no later for it (backfilling), so a large call at the head is never
 * starved by small ones, and tokens are not left idle while a waiter told
 * a late turn sleeps.  A waiter that does not come
 * back when it said (it died, or gave up) is passed after a grace of half a
 * refill period (0.25 to 2 s) and its ticket is freed within
 * bucket.lease_ttl_s.  A wait longer than what is left of max_wait_ms
 * leaves the line (TKM_REASON_WAIT_TOO_LONG).  A pool reset while waiting
 * answers TKM_REASON_NEED_SYNC.  An unknown class is TKM_ECONFIG naming it.
 *
 * A worker that waited for a call is back for another as soon as it is
 * done: tkm_complete() of the grant (by this client) takes the place in
 * line of the worker's next call in the same class, when that call would
 * have to wait, and the next blocking acquire in that class sleeps until
 * the turn it was told and is granted in one round trip (a worker in a
 * saturated pool makes two round trips a call: its grant, and the
 * completion).  The place serves a call of another cost; an acquire in
 * another class gives it up; a worker that does not come back is passed
 * after the grace, and tkm_client_free() takes it out of the line.
 */
TKM_EXPORT tkm_code tkm_acquire_ex(tkm_client *client, int64_t cost,
                                   int64_t max_wait_ms,
                                   const tkm_acquire_opts *opts,
                                   tkm_grant *grant);

/* One class of the line, as tkm_queue_status() reports it. */
typedef struct tkm_queue_class {
    char name[TKM_QUEUE_CLASS_MAX + 1];
    int64_t weight;  /* this client's configuration; 0: a class it does not
                        know (tickets of another configuration) */
    int64_t waiters; /* calls waiting in line */
    int64_t tokens;  /* their estimates */
    int64_t oldest_wait_ms; /* the oldest waiter's wait so far; -1: none */
    int64_t absent; /* tickets whose waiter did not come back when due (it
                       died or gave up): passed by others, freed within
                       bucket.lease_ttl_s */
} tkm_queue_class;

/*
 * The line per class, and (when pool is not NULL) the pool's status
 * (tkm_status) from the same read: one round trip.  The classes are
 * "default", those of queue.classes in their order, then any other class
 * holding a ticket.  *classes is allocated (free it with
 * tkm_queue_status_free) and holds *count entries.
 */
TKM_EXPORT tkm_code tkm_queue_status(tkm_client *client, tkm_pool_status *pool,
                                     tkm_queue_class **classes, size_t *count);

/* Free a list from tkm_queue_status().  NULL is fine. */
TKM_EXPORT void tkm_queue_status_free(tkm_queue_class *classes);

/* ------------------------------------------------------------------------
 * The Keepa client
 * ---------------------------------------------------------------------- */

typedef struct tkm_keepa tkm_keepa;

/*
 * A Keepa client on top of `client` (which must outlive it and is used for
 * every reservation).  Reads options.keepa: the base URL (http or https
 * only), the access key from key_file (trailing whitespace ignored) or
 * else $TOKENMGR_KEEPA_KEY.  The key never reaches an error message, a log
 * line or an argv.  As with tkm_client_open, a handle is handed out on
 * failure too (free it); tkm_keepa_errstr() says why.  Not thread-safe.
 */
TKM_EXPORT tkm_code tkm_keepa_open(tkm_client *client, tkm_keepa **out);

/*
 * tkm_keepa_open with the access key given by the caller (a language
 * binding whose application holds the key) instead of keepa.key_file or
 * $TOKENMGR_KEEPA_KEY; NULL: as tkm_keepa_open.  The key is copied; like a
 * key read from a file it must be letters and digits, and it never reaches
 * a message.
 */
TKM_EXPORT tkm_code tkm_keepa_open_key(tkm_client *client, const char *key,
                                       tkm_keepa **out);

/* Free the client (not the tkm_client).  NULL is fine. */
TKM_EXPORT void tkm_keepa_free(tkm_keepa *kc);

/* One line on the last failure (any `key=` redacted). */
TKM_EXPORT const char *tkm_keepa_errstr(const tkm_keepa *kc);

/* The API's answer to one request. */
typedef struct tkm_keepa_response {
    long http_status;
    char *body; /* the whole body, NUL-terminated; owned */
    size_t body_len;
    int has_tokens; /* the token fields below were present */
    int64_t tokens_left;
    int64_t tokens_consumed;
    int64_t refill_in_ms;
    int64_t refill_rate;
    int64_t timestamp_ms;
    int64_t processing_ms;
    double token_flow_reduction;
    char error[256]; /* the API's error message, "" when none */
    int attempts;    /* HTTP requests sent for this call */
    int http_429s;   /* of which answered 429 */
} tkm_keepa_response;

/*
 * GET base_url + path with key= and `params` (name, value pairs, NULL
 * terminated; values are URL-encoded here), spending tokens the right way:
 * a blocking acquire of `estimated_cost` (with heartbeats), the request
 * (gzip accepted), then `complete` with tokensConsumed, tokensLeft and
 * timestamp.  On 429 (or 503 with a token body) the API's balance is
 * applied through tkm_sync and the wait is the bucket's, never a blind
 * sleep.  Network errors, 5xx and bodies without token fields end the
 * reservation (release when the call cannot have run, else complete with
 * the estimate) and are retried with exponential back-off and jitter, up to
 * keepa.max_retries.  400/402/404/405 fail at once with TKM_EAPI and the
 * API's message.  TKM_EWAIT when tokens would take longer than
 * bucket.max_wait_s.  Free *resp with tkm_keepa_response_free() whatever
 * the status.
 *
 * Bounds against a hostile or broken API, per HTTP request: the whole
 * request (connecting, every byte, reading the token fields) within
 * keepa.timeout_ms, however slowly the bytes come; the decoded (gunzipped)
 * body at most 64 MiB, else TKM_EHTTP at once ("larger than", not
 * retried); a JSON string is read for the token fields up to its first
 * 4 KiB only (resp->body keeps it whole), and a number or literal longer
 * than 256 bytes makes the body not JSON.  The work per request is linear
 * in the body's size.
 */
TKM_EXPORT tkm_code tkm_keepa_request(tkm_keepa *kc, const char *path,
                                      const char *const *params,
                                      int64_t estimated_cost,
                                      tkm_keepa_response *resp);

/* Free what a response owns (not the struct).  NULL is fine. */
TKM_EXPORT void tkm_keepa_response_free(tkm_keepa_response *resp);

/* The outcome of tkm_keepa_sync. */
typedef struct tkm_keepa_sync_result {
    int throttled;           /* 1: another sync ran recently; nothing sent */
    int64_t next_allowed_ms; /* when throttled: ms until the next is allowed */
    int64_t tokens;          /* when synced: the pool's balance after */
    int64_t refill_rate;
} tkm_keepa_sync_result;

/*
 * The free /token call applied through tkm_sync, throttled across every
 * worker of the pool by a shared Redis timestamp (at most once every
 * keepa.token_sync_min_interval_s) so no restart loop can hammer it.
 * force bypasses the throttle (and restarts its interval).
 */
TKM_EXPORT tkm_code tkm_keepa_sync(tkm_keepa *kc, int force,
                                   tkm_keepa_sync_result *out);

/* ------------------------------------------------------------------------
 * JSON views: each call's answer as one JSON object with the keys of
 * CONTRACT.md (the command-line tool's --json output).  Scalars in, JSON
 * out, so that language bindings never mirror a C struct.  *json is
 * allocated (free it with tkm_free()) on TKM_OK and NULL otherwise;
 * failures are those of the call named, with tkm_errstr() set.
 * ---------------------------------------------------------------------- */

/* Free what a *_json function (or tkm_keepa_request_json's body) gave. */
TKM_EXPORT void tkm_free(void *p);

/* {"granted", "grant", "tokens", "reason", "retry_after_ms",
 *  "recharge_mode", "recharge_expired"} of a grant. */
TKM_EXPORT tkm_code tkm_grant_json(const tkm_grant *g, char **json);

/* tkm_try_acquire (wait_ms 0) or tkm_acquire (wait_ms > 0, or < 0 for
 * bucket.max_wait_s), answered as tkm_grant_json. */
TKM_EXPORT tkm_code tkm_acquire_json(tkm_client *client, int64_t cost,
                                     int64_t wait_ms, char **json);

/* tkm_complete (with the report when has_report), tkm_release and
 * tkm_sync (refill_in_ms, timestamp_ms -1: unknown), answered as
 * {"tokens", "report_applied", "report_stale"}. */
TKM_EXPORT tkm_code tkm_complete_json(tkm_client *client, const char *grant_id,
                                      int64_t consumed, int has_report,
                                      int64_t tokens_left, int64_t timestamp_ms,
                                      char **json);
TKM_EXPORT tkm_code tkm_release_json(tkm_client *client, const char *grant_id,
                                     char **json);
TKM_EXPORT tkm_code tkm_sync_json(tkm_client *client, int64_t tokens,
                                  int64_t rate, int64_t refill_in_ms,
                                  int64_t timestamp_ms, char **json);

/* `tokenmgr status --json`: {"pool", "tokens", "capacity", ...}. */
TKM_EXPORT tkm_code tkm_status_json(tkm_client *client, char **json);

/* `tokenmgr workers --json`: {"pool", "workers": [{"id",
 * "heartbeat_age_s", "phase", "busy_until_ms", "busy_for_s", "alive"}]}.
 * Two round trips (the list and Redis' clock). */
TKM_EXPORT tkm_code tkm_workers_json(tkm_client *client, char **json);

/* `tokenmgr recovery status --json` with the client's recovery options,
 * and `recovery log --json` (an array, newest first). */
TKM_EXPORT tkm_code tkm_recovery_status_json(tkm_client *client, char **json);
TKM_EXPORT tkm_code tkm_recovery_log_json(tkm_client *client, int64_t count,
                                          char **json);

/* tkm_keepa_request: the token fields as {"http_status", "has_tokens",
 * "tokens_left", "tokens_consumed", "refill_in_ms", "refill_rate",
 * "timestamp_ms", "processing_ms", "token_flow_reduction", "error",
 * "attempts", "http_429s"} in *json and the body in *body (*body_len
 * bytes, NUL-terminated; free with tkm_free()). */
TKM_EXPORT tkm_code tkm_keepa_request_json(tkm_keepa *kc, const char *path,
                                           const char *const *params,
                                           int64_t estimated_cost, char **json,
                                           char **body, size_t *body_len);

/* tkm_keepa_sync: {"throttled", "next_allowed_ms", "tokens",
 * "refill_rate"}. */
TKM_EXPORT tkm_code tkm_keepa_sync_json(tkm_keepa *kc, int force, char **json);

/* ------------------------------------------------------------------------
 * Scalar views of the hot calls: acquire and complete answered through
 * plain out-parameters (any may be NULL), for bindings that mirror no
 * struct and would rather not parse JSON twice per API call.
 * ---------------------------------------------------------------------- */

/* Bits of *flags: tkm_acquire_into's (granted, recharge mode on after the
 * decision, this call cleared a timed-out recharge) and tkm_complete_into's
 * (the report set the balance, the report was stale). */
#define TKM_INTO_GRANTED          1
#define TKM_INTO_RECHARGE_MODE    2
#define TKM_INTO_RECHARGE_EXPIRED 4
#define TKM_INTO_REPORT_APPLIED   1
#define TKM_INTO_REPORT_STALE     2

/*
 * tkm_acquire_json's call (wait_ms 0: try once; > 0: block up to; < 0:
 * bucket.max_wait_s) answered as scalars: the grant id into id (idlen at
 * least TKM_GRANT_ID_MAX + 1; "" when denied), the balance after into
 * *tokens, the tkm_reason into *reason, *retry_after_ms, and *flags
 * (TKM_INTO_GRANTED, TKM_INTO_RECHARGE_MODE, TKM_INTO_RECHARGE_EXPIRED).
 * A grant whose id does not fit is released and TKM_EINVAL returned.
 */
TKM_EXPORT tkm_code tkm_acquire_into(tkm_client *client, int64_t cost,
                                     int64_t wait_ms, char *id, size_t idlen,
                                     int64_t *tokens, int *reason,
                                     int64_t *retry_after_ms, int *flags);

/* tkm_complete_json's call answered as scalars: the balance after into
 * *tokens and *flags (TKM_INTO_REPORT_APPLIED, TKM_INTO_REPORT_STALE). */
TKM_EXPORT tkm_code tkm_complete_into(tkm_client *client, const char *grant_id,
                                      int64_t consumed, int has_report,
                                      int64_t tokens_left, int64_t timestamp_ms,
                                      int64_t *tokens, int *flags);

/* The options table as a JSON array, one object per option in table order
 * (tkm_option_describe's fields): {"key", "type", "unit", "doc", "env",
 * "collectd", "collectd_block", "flag" (null when none), "range" ("" when
 * none), "default"}.  Thread-safe; free *json with tkm_free(). */
TKM_EXPORT tkm_code tkm_options_table_json(char **json);

/* ------------------------------------------------------------------------
 * The stall rule (pure) and the recovery guard (shared in Redis)
 * ---------------------------------------------------------------------- */

typedef enum tkm_stall_state {
    TKM_STALL_OK = 0,
    TKM_STALL_PENDING = 1,     /* the condition holds, not yet confirmed */
    TKM_STALL_STALLED = 2,     /* held for `confirmations` reads: act */
    TKM_STALL_UNKNOWN = 3,     /* not enough data: alert, never act */
    TKM_STALL_SHARED_CAUSE = 4 /* held back: evidence of a shared cause */
} tkm_stall_state;

/* "ok", "pending", "stalled", "unknown", "shared_cause". */
TKM_EXPORT const char *tkm_stall_state_str(tkm_stall_state s);

/* What one read observed (ages on Redis' clock). */
typedef struct tkm_stall_input {
    int readable;              /* 0: Redis unreadable or garbage values */
    int64_t tokens;            /* balance projected to now */
    int64_t capacity;          /* 0 when unknown */
    int64_t heartbeat_age_ms;  /* freshest heartbeat; -1 when none ever */
    int64_t workers_busy;      /* busy workers not in `workers` (legacy: 0) */
    const tkm_worker *workers; /* may be NULL */
    size_t nworkers;
    /* The monitor itself failed to read Redis (then the workers may have
     * too): lost_redis 1, that long ago; 0 when it never did. */
    int monitor_lost_redis;
    int64_t monitor_lost_redis_age_ms;
} tkm_stall_input;

/* Consecutive reads the condition held: the caller keeps one per pool. */
typedef struct tkm_stall_tracker {
    int64_t consecutive;
} tkm_stall_tracker;

typedef struct tkm_stall_verdict {
    tkm_stall_state state;
    int64_t threshold;        /* tokens threshold applied (-1: none) */
    int tokens_unused;        /* tokens >= threshold */
    int heartbeats_silent;    /* freshest heartbeat >= the stall age */
    int64_t busy;             /* workers inside a declared busy period */
    int64_t confirmations;    /* consecutive reads the condition held */
    size_t stale;             /* workers silent for the stall age */
    size_t stale_errors;      /* of which reported an error before */
    char stale_workers[1024]; /* their ids, comma-separated (",..." cut) */
    char why[256];            /* one line for logs and notifications */
    /* The evidence of a shared cause, "" when none: the monitor lost
     * Redis, or most silent workers reported errors before going silent. */
    char evidence[192];
    int escalated; /* held back longer than shared_cause_escalate_s */
} tkm_stall_verdict;

/*
 * Judge one read.  Pure: no I/O, no clock; updates *tracker.  A stall is
 * tokens unused, no heartbeat for the stall age and nobody busy, for
 * `confirmations` reads: every worker silent together is a stall too (the
 * seed's own: a hung shared dependency freezes them all, and a restart is
 * the cure).  It is held back (TKM_STALL_SHARED_CAUSE) only on evidence of
 * a shared cause (verdict.evidence), and acted on anyway once the silence
 * outlasted the stall age by shared_cause_escalate_s.
 */
TKM_EXPORT void tkm_stall_judge(const tkm_stall_options *o,
                                tkm_stall_tracker *tracker,
                                const tkm_stall_input *in,
                                tkm_stall_verdict *v);

typedef enum tkm_decision {
    TKM_DECIDE_ACT = 0,     /* run the action (the lease is held) */
    TKM_DECIDE_DRY_RUN,     /* would act: audited only */
    TKM_DECIDE_COOLDOWN,    /* too soon after the last action */
    TKM_DECIDE_LIMIT,       /* MaxActions reached: escalated now */
    TKM_DECIDE_ESCALATED,   /* escalated earlier: waits for an operator */
    TKM_DECIDE_LEASE,       /* another monitor is acting */
    TKM_DECIDE_PAUSED,      /* kill switch */
    TKM_DECIDE_GRACE,       /* inside the grace period of an action */
    TKM_DECIDE_UNKNOWN,     /* missing data: never acted on */
    TKM_DECIDE_SHARED_CAUSE /* many workers at once: never acted on */
} tkm_decision;

/* "act", "dry_run", "cooldown", "limit", "escalated", "lease", "paused",
 * "grace", "unknown", "shared_cause". */
TKM_EXPORT const char *tkm_decision_str(tkm_decision d);

/* An action granted by the guard; hand it back to tkm_recovery_finish. */
typedef struct tkm_recovery_ticket {
    tkm_decision decision;
    char action_id[40];
    char lease_token[40];
    int64_t cooldown_left_ms;
    int64_t actions_in_window;
    int escalated;
} tkm_recovery_ticket;

/*
 * Ask the guard whether to act on `mode` ("stalled", "unknown",
 * "shared_cause" or "manual") and audit the decision (host, reason, the
 * observed inputs and the argv as text).  One round trip; the decision is
 * atomic across every monitor of the pool.  On TKM_DECIDE_ACT the caller
 * runs the action and must call tkm_recovery_finish.
 */
TKM_EXPORT tkm_code tkm_recovery_decide(tkm_client *client,
                                        const tkm_recovery_options *o,
                                        const char *mode, const char *host,
                                        const char *reason, const char *inputs,
                                        const char *argv_text,
                                        tkm_recovery_ticket *ticket);

/* Record the action's outcome ("ok", "failed", "timeout"; "abandoned" when
 * the monitor stopped while it ran), release the lease if still ours (an
 * empty lease_token keeps it until it expires). */
TKM_EXPORT tkm_code tkm_recovery_finish(tkm_client *client,
                                        const tkm_recovery_ticket *ticket,
                                        const char *host, const char *outcome,
                                        int exit_status, int64_t duration_ms,
                                        const char *output);

/* What a read learned about the last action (tkm_recovery_observe). */
typedef enum tkm_recovery_event {
    TKM_EVENT_NONE = 0,
    TKM_EVENT_RECOVERED = 1,  /* a heartbeat came within the grace period */
    TKM_EVENT_FAILED = 2,     /* none came: the action did not help */
    TKM_EVENT_DEESCALATED = 3 /* clear for a full window: escalation over */
} tkm_recovery_event;

/* "", "recovered", "failed", "deescalated". */
TKM_EXPORT const char *tkm_recovery_event_name(tkm_recovery_event e);

/* The guard as one read sees it. */
typedef struct tkm_recovery_state {
    int paused;
    int escalated;
    int64_t escalated_ms;   /* Redis time; 0 when not */
    int64_t last_action_ms; /* Redis time; 0 when never */
    int64_t actions_in_window;
    int64_t cooldown_left_ms;
    int64_t total;  /* actions ever taken (monotonic) */
    int64_t failed; /* of which failed or timed out */
    int64_t grace_left_ms;
    int64_t lease_ttl_ms;   /* > 0 while an actor holds the lease */
    char event[16];         /* observe: "recovered", "failed",
                               "deescalated" or "" (tkm_recovery_event_name) */
    int64_t paused_left_ms; /* paused for a while: what is left; else 0 */
    tkm_recovery_event ev;  /* observe: `event` as an enum */
} tkm_recovery_state;

/*
 * Once per read: close the grace period of the last action (recovered when
 * a heartbeat came after it, else failed) and lift an escalation once the
 * pool stayed clear (`stall_state` TKM_STALL_OK) for a full window.
 */
TKM_EXPORT tkm_code tkm_recovery_observe(tkm_client *client,
                                         const tkm_recovery_options *o,
                                         const char *host,
                                         tkm_stall_state stall_state,
                                         int64_t heartbeat_age_ms,
                                         tkm_recovery_state *out);

TKM_EXPORT tkm_code tkm_recovery_status(tkm_client *client,
                                        const tkm_recovery_options *o,
                                        tkm_recovery_state *out);

/* Clear an escalation (and the window's count) after an operator looked. */
TKM_EXPORT tkm_code tkm_recovery_reset(tkm_client *client, const char *host,
                                       const char *reason);

/* The kill switch: on = 1 pauses (decisions audited, nothing runs). */
TKM_EXPORT tkm_code tkm_recovery_pause(tkm_client *client, const char *host,
                                       int on, const char *reason);

/* Pause for `seconds` (1..2592000), after which actions may run again by
 * themselves; 0 pauses until tkm_recovery_pause(..., 0, ...). */
TKM_EXPORT tkm_code tkm_recovery_pause_for(tkm_client *client, const char *host,
                                           int64_t seconds, const char *reason);

/* One audit entry; absent fields are "". */
typedef struct tkm_audit_entry {
    char id[32];
    int64_t time_ms;
    char host[64];
    char decision[32];
    char reason[256];
    char inputs[256];
    char argv[256];
    char action_id[40];
    char outcome[32];
    int64_t exit_status; /* -1 when absent */
    int64_t duration_ms; /* -1 when absent */
    char output[256];
    int64_t repeats; /* quiet repeats folded into the entry before it */
} tkm_audit_entry;

/* The newest `count` entries (1..1000), newest first; free with free(). */
TKM_EXPORT tkm_code tkm_recovery_log(tkm_client *client, int64_t count,
                                     tkm_audit_entry **entries, size_t *n);

/* ------------------------------------------------------------------------
 * Recovery actions: a command (no shell) or a webhook, never blocking
 * ---------------------------------------------------------------------- */

/* Context handed to the action (CONTRACT.md's environment variables). */
typedef struct tkm_action_env {
    const char *pool;          /* TOKENMGR_POOL */
    const char *reason;        /* TOKENMGR_REASON (control chars dropped) */
    int64_t tokens;            /* TOKENMGR_TOKENS */
    int64_t heartbeat_age_s;   /* TOKENMGR_HEARTBEAT_AGE (-1: unknown) */
    const char *stale_workers; /* TOKENMGR_STALE_WORKERS (validated ids) */
    const char *action_id;     /* TOKENMGR_ACTION_ID */
} tkm_action_env;

typedef struct tkm_action tkm_action;

typedef struct tkm_action_result {
    int done;         /* 0: still running */
    int exit_status;  /* exit code; -1 when killed or failed to start */
    int signal;       /* the signal that ended it, 0 when none */
    int timed_out;    /* killed (whole process group) at the deadline */
    long http_status; /* webhook: the answer's status; 0 otherwise */
    int64_t duration_ms;
    char output[1024]; /* the first bytes of its output (or error) */
} tkm_action_result;

/*
 * Check an Exec argv at configuration time: non-empty, argv[0] absolute,
 * existing, a regular executable file.  errbuf gets the reason.
 */
TKM_EXPORT tkm_code tkm_action_check_argv(const char *const *argv, char *errbuf,
                                          size_t errlen);

/*
 * Start argv (no shell; stdin from /dev/null; stdout and stderr captured)
 * with the environment of `env` and PATH only, in a process group of its
 * own, killed whole at timeout_ms.  Returns at once.  A supervising child
 * reports the result through a pipe, so a daemon that reaps every child
 * (collectd's exec plugin) cannot steal it.  Async-signal-safe after fork.
 */
TKM_EXPORT tkm_code tkm_action_exec(const char *const *argv,
                                    const tkm_action_env *env,
                                    int64_t timeout_ms, tkm_action **out,
                                    char *errbuf, size_t errlen);

/* POST env as a JSON object to an http(s) URL, in a thread of its own. */
TKM_EXPORT tkm_code tkm_action_webhook(const char *url,
                                       const tkm_action_env *env,
                                       int64_t timeout_ms, tkm_action **out,
                                       char *errbuf, size_t errlen);

/* Non-blocking: result->done tells whether it finished. */
TKM_EXPORT tkm_code tkm_action_poll(tkm_action *a, tkm_action_result *result);

/* Block until it finished (the CLI's `recover`). */
TKM_EXPORT tkm_code tkm_action_wait(tkm_action *a, tkm_action_result *result);

/* Free; an action still running is killed (its whole group). */
TKM_EXPORT void tkm_action_free(tkm_action *a);

/* ------------------------------------------------------------------------
 * A guarded recovery, whole: decide, run, record the outcome.  The collectd
 * plugin and `tokenmgr recover` both use this pair.
 * ---------------------------------------------------------------------- */

/* Why a recovery is asked for. */
typedef enum tkm_recovery_mode {
    TKM_MODE_STALLED = 0,      /* the stall rule confirmed a stall */
    TKM_MODE_UNKNOWN = 1,      /* data missing: audited, never acted on */
    TKM_MODE_SHARED_CAUSE = 2, /* held back on evidence: audited only */
    TKM_MODE_MANUAL = 3        /* an operator or an alert receiver */
} tkm_recovery_mode;

/* "stalled", "unknown", "shared_cause", "manual". */
TKM_EXPORT const char *tkm_recovery_mode_name(tkm_recovery_mode m);

/* How an action ended. */
typedef enum tkm_recovery_outcome {
    TKM_OUTCOME_OK = 0,       /* exit status 0 (webhook: 2xx) */
    TKM_OUTCOME_FAILED = 1,   /* another status, or it could not start */
    TKM_OUTCOME_TIMEOUT = 2,  /* killed (its process group) at the deadline */
    TKM_OUTCOME_ABANDONED = 3 /* the monitor stopped while it ran */
} tkm_recovery_outcome;

/* "ok", "failed", "timeout", "abandoned". */
TKM_EXPORT const char *tkm_recovery_outcome_name(tkm_recovery_outcome o);

/* What the decision saw: audited, and handed to the action as
 * TOKENMGR_* variables. */
typedef struct tkm_recovery_request {
    tkm_recovery_mode mode;
    const char *host;          /* the monitor's host, for the audit */
    const char *reason;        /* TOKENMGR_REASON */
    const char *inputs;        /* "tokens=.. heartbeat_age_ms=..", audit */
    int64_t tokens;            /* TOKENMGR_TOKENS */
    int64_t heartbeat_age_ms;  /* TOKENMGR_HEARTBEAT_AGE; -1 unknown */
    const char *stale_workers; /* TOKENMGR_STALE_WORKERS (may be NULL) */
} tkm_recovery_request;

/* An action the guard granted, running. */
typedef struct tkm_recovery_run tkm_recovery_run;

/*
 * Ask the guard (tkm_recovery_decide, audited) and, when it grants, start
 * o's Exec or Webhook with the request's context: *run is then the running
 * action (end it with tkm_recovery_settle), else NULL and ticket->decision
 * says why not (cooldown, lease, paused...).  An action that cannot start
 * is recorded as failed and returned as TKM_EIO with the reason in errbuf;
 * no Exec and no Webhook is TKM_ECONFIG.  Never blocks on the action.
 */
TKM_EXPORT tkm_code tkm_recovery_begin(tkm_client *client,
                                       const tkm_recovery_options *o,
                                       const tkm_recovery_request *req,
                                       tkm_recovery_ticket *ticket,
                                       tkm_recovery_run **run, char *errbuf,
                                       size_t errlen);

/* How tkm_recovery_settle waits. */
typedef enum tkm_settle {
    TKM_SETTLE_POLL = 0,   /* never blocks: *run stays while it runs */
    TKM_SETTLE_WAIT = 1,   /* until it ends */
    TKM_SETTLE_ABANDON = 2 /* the monitor stops: an action still running is
                              recorded "abandoned" and left to its deadline
                              in its own process group; the actor lease is
                              kept until it expires, so no other monitor
                              acts meanwhile */
} tkm_settle;

/*
 * When the action of *run has ended (or is abandoned): record its outcome
 * with tkm_recovery_finish, free it and set *run to NULL; *result (may be
 * NULL) tells how it went.  Returns the status of recording the outcome
 * (the action is freed whatever it is); TKM_OK with *run unchanged while a
 * polled action still runs.  NULL *run is fine.
 */
TKM_EXPORT tkm_code tkm_recovery_settle(tkm_client *client,
                                        tkm_recovery_run **run, tkm_settle how,
                                        tkm_action_result *result);

/* ------------------------------------------------------------------------
 * The legacy layout: the original Python system's keys (read-only)
 * ---------------------------------------------------------------------- */

/* The keys, in the order of tkm_legacy_raw.value[]. */
typedef enum tkm_legacy_key {
    TKM_LEGACY_TOKENS_LEFT = 0,     /* keepa_tokens_left: balance, float */
    TKM_LEGACY_REFILL_RATE = 1,     /* keepa_refill_rate: tokens a minute */
    TKM_LEGACY_TOKEN_TIMESTAMP = 2, /* keepa_token_timestamp: last sync, s */
    TKM_LEGACY_RECHARGE_ACTIVE = 3, /* keepa_recharge_mode_active: "1" */
    TKM_LEGACY_RECHARGE_START = 4,  /* keepa_recharge_start_time: s */
    TKM_LEGACY_HEARTBEAT = 5,       /* keepa_worker_last_heartbeat: s */
    TKM_LEGACY_NKEYS = 6
} tkm_legacy_key;

/* The Redis key name of `key` ("keepa_tokens_left", ...); NULL when out of
 * range.  Static; thread-safe. */
TKM_EXPORT const char *tkm_legacy_key_name(tkm_legacy_key key);

/* Values longer than this are cut in tkm_legacy_value.text (and are never
 * valid numbers). */
#define TKM_LEGACY_VALUE_MAX 63

/* One legacy key as Redis holds it. */
typedef struct tkm_legacy_value {
    int present; /* 0: no such key (or not a string: MGET answers nil) */
    size_t len;  /* the value's length in Redis */
    char text[TKM_LEGACY_VALUE_MAX + 1]; /* the value, cut, NUL-terminated */
} tkm_legacy_value;

/* What one read of the legacy keys saw. */
typedef struct tkm_legacy_raw {
    int64_t now_us; /* Redis' TIME at the read (Unix microseconds) */
    tkm_legacy_value value[TKM_LEGACY_NKEYS]; /* by tkm_legacy_key */
} tkm_legacy_raw;

/*
 * Read the six legacy keys of the client's database and Redis' TIME in one
 * round trip (one read-only script; nothing is ever written to a legacy
 * key).  The client's pool name and policy are not used.  The keys have no
 * hash tag: this works on a standalone Redis, not on Redis Cluster.
 * Returns TKM_OK, TKM_EREDIS (unreachable, timed out), TKM_EPROTO.
 */
TKM_EXPORT tkm_code tkm_legacy_read(tkm_client *client, tkm_legacy_raw *out);

/* How a legacy key was judged by tkm_legacy_project(). */
typedef enum tkm_legacy_check {
    TKM_LEGACY_OK = 0,      /* present and valid */
    TKM_LEGACY_MISSING = 1, /* absent */
    TKM_LEGACY_INVALID = 2  /* present but garbage, absurd or cut */
} tkm_legacy_check;

/* Sane ranges: anything outside is TKM_LEGACY_INVALID. */
#define TKM_LEGACY_TOKENS_ABS_MAX 1e9          /* |keepa_tokens_left| */
#define TKM_LEGACY_RATE_MAX       1e6          /* keepa_refill_rate, 0..this */
#define TKM_LEGACY_TIME_MIN       946684800.0  /* timestamps: 2000-01-01 */
#define TKM_LEGACY_TIME_MAX       4102444800.0 /* ...to 2100-01-01 */

/* The legacy pool's state projected to Redis' now.  Each has_* says whether
 * the field beside it is known; an unknown field is 0. */
typedef struct tkm_legacy_status {
    double now_s;        /* Redis' clock (Unix seconds) */
    int has_tokens;      /* needs tokens_left, refill_rate, timestamp */
    double tokens;       /* balance with the refill projected to now */
    int has_capacity;    /* override, or needs refill_rate */
    double capacity;     /* capacity_override, else 60 x refill_rate */
    int has_refill_rate; /* tokens a minute */
    double refill_rate;
    int has_recharge_mode;  /* absent key: known, off */
    int recharge_mode;      /* 1 while keepa_recharge_mode_active is "1" */
    int has_recharge_age;   /* recharge on and a valid start time */
    double recharge_age_s;  /* since recharge began, >= 0 */
    int has_heartbeat_age;  /* a valid heartbeat */
    double heartbeat_age_s; /* since the last heartbeat, >= 0 */
    int has_last_sync_age;  /* a valid sync timestamp */
    double last_sync_age_s; /* since the last sync, >= 0 */
    tkm_legacy_check check[TKM_LEGACY_NKEYS]; /* by tkm_legacy_key */
} tkm_legacy_status;

/*
 * Judge and project a legacy read: a pure function of *raw (no I/O, no
 * clock).  Each value is parsed with tkm_parse_double() and checked against
 * its sane range; a bad value makes only the fields that need it unknown.
 * The balance is projected with Keepa's discrete refill: tokens +
 * floor(elapsed_s / 60) x rate since keepa_token_timestamp (a timestamp in
 * the future counts as now), never lifted above the capacity by refill (a
 * balance already above it is kept).  The capacity is capacity_override
 * when > 0, else 60 x rate.  Recharge mode is on when
 * keepa_recharge_mode_active is "1", off when absent (any other value is
 * invalid).  Ages are clamped to >= 0.
 * Returns TKM_OK, or TKM_EINVAL for NULL pointers or a negative override.
 * Thread-safe.
 */
TKM_EXPORT tkm_code tkm_legacy_project(const tkm_legacy_raw *raw,
                                       int64_t capacity_override,
                                       tkm_legacy_status *out);

#ifdef __cplusplus
}
#endif

#endif /* TOKENMGR_H */
