/* Private declarations shared by the files of libtokenmgr. */
#ifndef TKM_INTERNAL_H
#define TKM_INTERNAL_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "script.h" /* script calls: script.c */
#include "tokenmgr.h"

#define TKM__ERR_MAX 512
#define TKM__KEY_MAX (TKM_POOL_MAX + 32)

/* A parsed Redis URL (url.c). */
typedef struct tkm__url {
    int unix_socket; /* 1: path is set; 0: host and port */
    char host[256];
    int port;
    char path[512];
    int64_t db;         /* SELECT db when > 0 */
    char user[128];     /* AUTH user password when user[0] */
    char password[256]; /* AUTH password when password[0]; never logged */
} tkm__url;

/* A place to connect to: a host and port, or a Unix socket. */
typedef struct tkm__endpoint {
    int unix_socket; /* 1: path is set; 0: host and port */
    char host[256];
    int port;
    char path[512];
} tkm__endpoint;

/*
 * Redis Sentinel (sentinel.c keeps the rules, redis.c does the asking).
 * With count > 0 the master is the address a majority of the sentinels
 * give, confirmed by ROLE; the URL only supplies the database and the
 * master's credentials.
 */
typedef struct tkm__sentinels {
    int count; /* 0: a plain redis.url */
    tkm__endpoint addr[TKM_SENTINELS_MAX];
    void *ctx[TKM_SENTINELS_MAX]; /* redisContext * kept to each sentinel */
    char password[256];           /* the sentinels' AUTH; never logged */
    int first;                    /* asked first: it named the master */
    tkm__endpoint master;         /* the master of the open connection */
    char run_id[48];              /* INFO's run_id of the last master told */
    char pending[48];             /* a new master's, to tell (origin.lua) */
    int64_t last_reply_ms;        /* monotonic: the master's last reply */
} tkm__sentinels;

/* A ticket id as acquire.lua hands it out ("seq-ms"), with room. */
#define TKM__TICKET_MAX 48

struct tkm_client {
    tkm_options opts;
    tkm__url url;
    void *redis; /* redisContext *, owned by redis.c */
    tkm__sentinels sentinels;
    tkm_code open_status; /* TKM_OK unless the options were invalid */
    char key_bucket[TKM__KEY_MAX];
    char key_leases[TKM__KEY_MAX];
    char key_expiry[TKM__KEY_MAX];
    char key_heartbeats[TKM__KEY_MAX];
    char key_workers[TKM__KEY_MAX];
    char key_token_sync[TKM__KEY_MAX];
    char key_busy[TKM__KEY_MAX];
    char key_queue[TKM__KEY_MAX];
    char key_guard[TKM__NKEYS_GUARD][TKM__KEY_MAX]; /* script.c, per call */
    char audit_host[64]; /* recovery.c: the host of the call, cut */
    int64_t round_trips;
    int64_t last_heartbeat_ms; /* monotonic; -1 before the first */
    int heartbeats;            /* 0: a tool, never beats */
    /* The last failure (a Redis call, an API call), for the next
     * heartbeat to report: monotonic ms (0: none) and its kind. */
    int64_t failure_ms;
    const char *failure_kind;
    int64_t failure_reported_ms;
    unsigned int jitter_seed;
    /* wait.c: the grant of the last blocking acquire that waited in line
     * (its completion takes the worker's next place: complete.lua), and
     * that place, for the next blocking acquire of the same class (due:
     * monotonic ms). */
    struct {
        char id[TKM_GRANT_ID_MAX + 1];
        char cls[TKM_QUEUE_CLASS_MAX + 1];
        int64_t cost, max_wait_ms;
    } waited;
    struct {
        char ticket[TKM__TICKET_MAX];
        char cls[TKM_QUEUE_CLASS_MAX + 1];
        int64_t due_ms;
    } place;
    const volatile sig_atomic_t *cancel; /* set by tkm_client_set_cancel */
    char err[TKM__ERR_MAX];
};

/* msg.c: vsnprintf into buf (nothing when buf is NULL or len 0). */
void tkm__fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record the client's error line (tkm_errstr) and return code. */
tkm_code tkm__fail(tkm_client *c, tkm_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy src whole into dst: 0, or -1 (dst untouched) when it does not fit. */
int tkm__copy(char *dst, size_t dstlen, const char *src);

/* names.c: [A-Za-z0-9_.-]{1,64} and [A-Za-z0-9_.:@-]{1,128}. */
int tkm__pool_name_valid(const char *name);
int tkm__worker_id_valid(const char *id);

/*
 * secret.c: read a secret (a key, a password) from a regular file that
 * neither group nor others may read or write: at most len - 1 bytes,
 * trailing newlines stripped.  Messages name `what` and the path, never the
 * contents.  Returns TKM_OK, TKM_ECONFIG (cannot open, not a regular file,
 * mode, empty, too long, a NUL byte: the configuration names a file that
 * will not do) or TKM_EIO (cannot read).
 */
tkm_code tkm__read_secret_file(const char *what, const char *path, char *buf,
                               size_t len, char *errbuf, size_t errlen);

/*
 * file.c: open a file that a configuration names, for open(2)'s `flags`
 * (O_RDONLY...; O_CLOEXEC and O_NOCTTY are added).  Only a regular file is
 * opened, and the open never blocks (a FIFO, a directory or a device is
 * refused without being waited on or read).  Returns the descriptor, or -1
 * with errno set (open's error, or EINVAL for a file that is not regular)
 * and a one-line message naming the path in errbuf ("PATH: cannot open:
 * REASON", "PATH: not a regular file (a FIFO)").  Thread-safe.
 */
int tkm__open_regular(const char *path, int flags, char *errbuf, size_t errlen);

/* config.c: the YAML loader on a buffer (tkm_config_load_file's code path);
 * `name` prefixes messages as the path does. */
tkm_code tkm__config_load_string(const char *name, const char *text, size_t len,
                                 tkm_options *opts, char *errbuf,
                                 size_t errlen);

/* url.c: parse and check a Redis URL; errbuf gets a one-line reason. */
tkm_code tkm__url_parse(const char *text, tkm__url *out, char *errbuf,
                        size_t errlen);
/* The URL with any password shown as "***", for messages. */
void tkm__url_redact(const char *url, char *buf, size_t len);

/* options.c: the options table, for the YAML loader. */
/* The relations between options (max_deficit <= soft_floor...); *culprit
 * (may be NULL) gets the index of the option to blame, -1 when none. */
tkm_code tkm__options_relations(const tkm_options *o, int *culprit,
                                char *errbuf, size_t errlen);
int tkm__option_is_list(int index);
int tkm__option_is_text(int index);

/* bucket.c: may this worker call the API's /token now?  One claim per
 * interval_ms per pool, unless force: *claimed, and when not, the wait in
 * *next_allowed_ms. */
tkm_code tkm__sync_claim(tkm_client *c, int64_t interval_ms, int force,
                         int *claimed, int64_t *next_allowed_ms);

/* client.c: remember a failure ("redis", "api") for the next heartbeat,
 * the stall rule's evidence of a shared cause. */
void tkm__note_failure(tkm_client *c, const char *kind);

/*
 * sentinel.c: the rules of Redis Sentinel discovery, without I/O.
 * tkm__sentinels_init parses the configured addresses and reads the
 * sentinels' password file: TKM_OK or TKM_ECONFIG/TKM_EIO with why.
 */
tkm_code tkm__sentinels_init(tkm__sentinels *s, const tkm_sentinel_options *o,
                             char *why, size_t whylen);
/* "host:port" or "unix:/path", for messages. */
void tkm__endpoint_str(const tkm__endpoint *ep, char *buf, size_t len);
int tkm__endpoint_eq(const tkm__endpoint *a, const tkm__endpoint *b);

/* One round of asking: each sentinel's answer (an address and the
 * configuration epoch it knows, or why not), then the addresses in the
 * order to try them. */
typedef struct tkm__sentinel_cand {
    tkm__endpoint ep;
    int64_t epoch;   /* the highest epoch of a sentinel naming it */
    int votes;       /* the sentinels naming it */
    int first_voter; /* the index of the first sentinel that named it */
} tkm__sentinel_cand;

typedef struct tkm__sentinel_round {
    int count; /* configured sentinels */
    tkm__sentinel_cand cand[TKM_SENTINELS_MAX];
    int ncand;
    char report[TKM__ERR_MAX]; /* what each sentinel said, for messages */
} tkm__sentinel_round;

void tkm__round_init(tkm__sentinel_round *r, int count);
/* Sentinel i (its address `sentinel`) named ep at configuration epoch
 * `epoch` (-1: unknown); returns ep's votes. */
int tkm__round_vote(tkm__sentinel_round *r, int i, const char *sentinel,
                    const tkm__endpoint *ep, int64_t epoch);
/* Sentinel (or master) `who` did not help: why. */
void tkm__round_note(tkm__sentinel_round *r, const char *who, const char *why);
/* The candidates' indices in the order to try them: the highest epoch
 * first (Sentinel's own rule: a sentinel left behind by a failover still
 * names the old master at the old epoch), then the most votes, then the
 * order named; returns their count. */
int tkm__round_order(const tkm__sentinel_round *r,
                     int order[TKM_SENTINELS_MAX]);
/* The value of `field` in a flat array of n field, value strings (with
 * their lengths: SENTINEL MASTER's reply) as an integer in 0..INT64_MAX/2
 * into *out: 1, or 0 when absent or no such integer. */
int tkm__field_int(const char *const *fields, const size_t *lens, size_t n,
                   const char *field, int64_t *out);
/* The master's INFO run_id in an INFO server text: 1 and copied, or 0. */
int tkm__info_run_id(const char *info, size_t len, char *out, size_t outlen);

/* clock.c: milliseconds on CLOCK_MONOTONIC (for intervals, not dates). */
int64_t tkm__monotonic_ms(void);

/* heartbeat.c: a heartbeat of `phase` unless the last one is younger than
 * interval_ms (tkm_heartbeat: heartbeat.min_interval_ms). */
tkm_code tkm__heartbeat_within(tkm_client *c, const char *phase,
                               int64_t interval_ms);
/* heartbeat.c: text (TKM_PHASE_MAX + 1 bytes) becomes `phase` as an
 * acquire attempt carries it as the worker's heartbeat, or "" when the
 * heartbeat cannot ride on the attempt: a tool, or a failure to report
 * (that heartbeat is sent on its own). */
void tkm__carried_beat(const tkm_client *c, const char *phase, char *text);
/* wait.c: sleep ms in slices of heartbeat.wait_slice_ms (each checks the
 * cancel flag), beating `phase` as often as staying alive needs: when the
 * last heartbeat is a quarter of heartbeat.stale_after_s old (at least
 * heartbeat.min_interval_ms, at most a minute apart).  An error from a
 * heartbeat, or the cancel flag, ends it early. */
tkm_code tkm__sleep_beating(tkm_client *c, int64_t ms, const char *phase);
/* wait.c: the weight of queue class `name` (NULL: the client's
 * queue.class); TKM_ECONFIG naming it when the configuration has no such
 * class. */
tkm_code tkm__queue_weight(tkm_client *c, const char *name, int64_t *weight);
/* bucket.c: the acquire call's arguments (max_wait_ms < 0: a try; `beat`
 * "" or the phase of the heartbeat the attempt carries). */
void tkm__acquire_args(tkm__call *k, tkm_client *c, int64_t cost,
                       const char *cls, int64_t weight, const char *ticket,
                       int64_t max_wait_ms, const char *beat);
/* bucket.c: one acquire attempt (a try when max_wait_ms < 0, else in line
 * with *ticket, which it updates); *ahead (may be NULL): waiters before it.
 * `phase` (NULL: none): the attempt is the worker's heartbeat, of that
 * phase when granted, of waiting while in line. */
tkm_code tkm__attempt(tkm_client *c, int64_t cost, const char *cls,
                      int64_t weight, char *ticket, size_t ticket_len,
                      int64_t max_wait_ms, const char *phase, tkm_grant *g,
                      int64_t *ahead);
/* wait.c: tkm_acquire_ex, a grant being the heartbeat of `phase` (NULL:
 * none; tkm_keepa_request's "keepa PATH"). */
tkm_code tkm__acquire(tkm_client *c, int64_t cost, int64_t max_wait_ms,
                      const tkm_acquire_opts *opts, const char *phase,
                      tkm_grant *g);
/* bucket.c: `ticket` leaves the line (a wait that ended without a grant),
 * best effort: the client's error line and code are kept whatever happens
 * (an abandoned ticket expires within bucket.lease_ttl_s anyway). */
void tkm__leave(tkm_client *c, const char *ticket);
/* wait.c: the worker's place in line for its next call, which complete.lua
 * took (ticket "": none), due in wait_ms. */
void tkm__keep_place(tkm_client *c, const char *ticket, const char *cls,
                     int64_t wait_ms);
/* A random number in [0, n) from the client's jitter seed (0 when n <= 1). */
int64_t tkm__random(tkm_client *c, int64_t n);

/* http.c, the libcurl file, declares its functions in http.h. */

/* action.c: free the action without killing it: its supervisor goes on
 * and kills the command's group at the deadline (a monitor that stops). */
void tkm__action_detach(tkm_action *a);

/* redis.c: the only file that talks to hiredis. */

/*
 * Run one script as EVALSHA (EVAL on NOSCRIPT) with keys/argv; the flat
 * array reply is copied into out[0..*nout).  Callers go through
 * tkm__call_run (script.c), which builds keys/argv and checks the reply. Errors
 * from the script are mapped by their prefix (TKMSTATE, TKMNOGRANT, TKMCOST,
 * WRONGTYPE) and recorded in c.
 */
tkm_code tkm__script_run(tkm_client *c, tkm__script_id id, int nkeys,
                         const char *const *args, int nargs, tkm__value *out,
                         int maxout, int *nout);
/* The same, with the values allocated to fit (caller frees *out). */
tkm_code tkm__script_run_alloc(tkm_client *c, tkm__script_id id, int nkeys,
                               const char *const *args, int nargs,
                               tkm__value **out, int *nout);
void tkm__redis_close(tkm_client *c);
/* The connections to the sentinels too (tkm_client_free). */
void tkm__redis_close_all(tkm_client *c);

#endif
