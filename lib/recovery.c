/*
 * The recovery guard: cooldown, limit and escalation, one actor per pool
 * (a Redis lease with a random token), the kill switch, and the audit
 * stream.  Its state lives in Redis so every monitor and the CLI share it;
 * each call is one script run.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LEASE_MARGIN_MS 30000 /* the lease outlives the action's deadline */

TKM_EXPORT const char *tkm_decision_str(tkm_decision d)
{
    static const char *const names[] = {
        "act",   "dry_run", "cooldown", "limit",   "escalated",
        "lease", "paused",  "grace",    "unknown", "shared_cause"};

    if ((size_t)d < sizeof(names) / sizeof(names[0]))
        return names[d];
    return "invalid";
}

static tkm_decision decision_from(const char *s)
{
    for (int d = TKM_DECIDE_ACT; d <= TKM_DECIDE_SHARED_CAUSE; d++) {
        if (strcmp(tkm_decision_str((tkm_decision)d), s) == 0)
            return (tkm_decision)d;
    }
    return TKM_DECIDE_UNKNOWN;
}

/*
 * Free text bound for the audit stream (anyone who can run `tokenmgr
 * recover --reason` writes it): at most len - 1 bytes, cut at a UTF-8
 * character boundary, control characters but newlines made spaces.
 */
static const char *audit_text(char *dst, size_t len, const char *src)
{
    size_t n = 0;

    if (src == NULL)
        src = "";
    while (src[n] != '\0' && n + 1 < len)
        n++;
    while (src[n] != '\0' && n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
        n--; /* src[n] continues a character: do not split it */
    for (size_t i = 0; i < n; i++)
        dst[i] =
            ((unsigned char)src[i] < 0x20 && src[i] != '\n') ? ' ' : src[i];
    dst[n] = '\0';
    return dst;
}

/* A call of recovery.lua: each takes the host that asks first. */
static void guard_call(tkm__call *k, tkm_client *c, tkm__call_id id,
                       const char *host)
{
    tkm__call_init(k, c, id);
    tkm__call_str(k, audit_text(c->audit_host, sizeof(c->audit_host), host));
}

/* 128 random bits as hex, for the lease: only its holder may release it. */
static void random_token(tkm_client *c, char *out, size_t len)
{
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    if (fd >= 0) {
        ssize_t n = read(fd, raw, sizeof(raw));
        got = n > 0 ? (size_t)n : 0;
        close(fd);
    }
    for (size_t i = got; i < sizeof(raw); i++)
        raw[i] = (unsigned char)tkm__random(c, 256);
    for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < len; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

TKM_EXPORT tkm_code tkm_recovery_decide(tkm_client *c,
                                        const tkm_recovery_options *o,
                                        const char *mode, const char *host,
                                        const char *reason, const char *inputs,
                                        const char *argv_text,
                                        tkm_recovery_ticket *t)
{
    tkm__call k;
    tkm__value v[TKM__RECOVERY_DECIDE_NFIELDS];
    tkm_code rc;
    char why[TKM__VALUE_STR_MAX], in[TKM__VALUE_STR_MAX];
    char argv_cut[TKM__VALUE_STR_MAX];

    memset(t, 0, sizeof(*t));
    random_token(c, t->lease_token, sizeof(t->lease_token));
    guard_call(&k, c, TKM__CALL_RECOVERY_DECIDE, host);
    tkm__call_str(&k, audit_text(why, sizeof(why), reason));
    tkm__call_str(&k, audit_text(in, sizeof(in), inputs));
    tkm__call_str(&k, audit_text(argv_cut, sizeof(argv_cut), argv_text));
    tkm__call_str(&k, t->lease_token);
    tkm__call_int(&k, o->cooldown_s * 1000);
    tkm__call_int(&k, o->max_actions);
    tkm__call_int(&k, o->window_s * 1000);
    tkm__call_int(&k, o->timeout_s * 1000 + LEASE_MARGIN_MS);
    tkm__call_int(&k, o->grace_s * 1000);
    tkm__call_str(&k, o->dry_run ? "1" : "0");
    tkm__call_str(&k, mode);
    rc = tkm__call_run(c, &k, v, TKM__RECOVERY_DECIDE_NFIELDS, NULL);
    if (rc != TKM_OK)
        return rc;
    t->decision = decision_from(v[TKM__RECOVERY_DECIDE_DECISION].s);
    tkm__copy(t->action_id, sizeof(t->action_id),
              v[TKM__RECOVERY_DECIDE_ACTION_ID].s);
    t->cooldown_left_ms = v[TKM__RECOVERY_DECIDE_COOLDOWN_LEFT_MS].i;
    t->actions_in_window = v[TKM__RECOVERY_DECIDE_ACTIONS_IN_WINDOW].i;
    t->escalated = v[TKM__RECOVERY_DECIDE_ESCALATED].i != 0;
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_recovery_finish(tkm_client *c,
                                        const tkm_recovery_ticket *t,
                                        const char *host, const char *outcome,
                                        int exit_status, int64_t duration_ms,
                                        const char *output)
{
    tkm__call k;
    tkm__value v[TKM__RECOVERY_FINISH_NFIELDS];
    char clean[TKM__VALUE_STR_MAX];

    audit_text(clean, sizeof(clean), output);
    guard_call(&k, c, TKM__CALL_RECOVERY_FINISH, host);
    tkm__call_str(&k, t->action_id);
    tkm__call_str(&k, t->lease_token);
    tkm__call_str(&k, outcome);
    tkm__call_int(&k, exit_status);
    tkm__call_int(&k, duration_ms);
    tkm__call_str(&k, clean);
    return tkm__call_run(c, &k, v, TKM__RECOVERY_FINISH_NFIELDS, NULL);
}

TKM_EXPORT tkm_code tkm_recovery_observe(tkm_client *c,
                                         const tkm_recovery_options *o,
                                         const char *host,
                                         tkm_stall_state stall_state,
                                         int64_t heartbeat_age_ms,
                                         tkm_recovery_state *out)
{
    tkm__call k;
    tkm__value v[TKM__RECOVERY_OBSERVE_NFIELDS];
    tkm_code rc;

    memset(out, 0, sizeof(*out));
    guard_call(&k, c, TKM__CALL_RECOVERY_OBSERVE, host);
    tkm__call_str(&k, stall_state == TKM_STALL_OK        ? "clear"
                      : stall_state == TKM_STALL_UNKNOWN ? "unknown"
                                                         : "stalled");
    tkm__call_int(&k, heartbeat_age_ms);
    tkm__call_int(&k, o->window_s * 1000);
    rc = tkm__call_run(c, &k, v, TKM__RECOVERY_OBSERVE_NFIELDS, NULL);
    if (rc != TKM_OK)
        return rc;
    tkm__copy(out->event, sizeof(out->event), v[TKM__RECOVERY_OBSERVE_EVENT].s);
    for (int e = TKM_EVENT_NONE; e <= TKM_EVENT_DEESCALATED; e++) {
        if (strcmp(out->event,
                   tkm_recovery_event_name((tkm_recovery_event)e)) == 0)
            out->ev = (tkm_recovery_event)e;
    }
    out->escalated = v[TKM__RECOVERY_OBSERVE_ESCALATED].i != 0;
    out->paused = v[TKM__RECOVERY_OBSERVE_PAUSED].i != 0;
    out->total = v[TKM__RECOVERY_OBSERVE_TOTAL].i;
    out->failed = v[TKM__RECOVERY_OBSERVE_FAILED].i;
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_recovery_status(tkm_client *c,
                                        const tkm_recovery_options *o,
                                        tkm_recovery_state *out)
{
    tkm__call k;
    tkm__value v[TKM__RECOVERY_STATUS_NFIELDS];
    int64_t lease_ttl;
    tkm_code rc;

    memset(out, 0, sizeof(*out));
    guard_call(&k, c, TKM__CALL_RECOVERY_STATUS, "");
    tkm__call_int(&k, o->cooldown_s * 1000);
    tkm__call_int(&k, o->window_s * 1000);
    rc = tkm__call_run(c, &k, v, TKM__RECOVERY_STATUS_NFIELDS, NULL);
    if (rc != TKM_OK)
        return rc;
    out->paused = v[TKM__RECOVERY_STATUS_PAUSED].i != 0;
    out->escalated = v[TKM__RECOVERY_STATUS_ESCALATED].i != 0;
    out->escalated_ms = v[TKM__RECOVERY_STATUS_ESCALATED_MS].i;
    out->last_action_ms = v[TKM__RECOVERY_STATUS_LAST_ACTION_MS].i;
    out->actions_in_window = v[TKM__RECOVERY_STATUS_ACTIONS_IN_WINDOW].i;
    out->cooldown_left_ms = v[TKM__RECOVERY_STATUS_COOLDOWN_LEFT_MS].i;
    out->total = v[TKM__RECOVERY_STATUS_TOTAL].i;
    out->failed = v[TKM__RECOVERY_STATUS_FAILED].i;
    out->grace_left_ms = v[TKM__RECOVERY_STATUS_GRACE_LEFT_MS].i;
    lease_ttl = v[TKM__RECOVERY_STATUS_LEASE_TTL_MS].i; /* PTTL: -2, -1 */
    out->lease_ttl_ms = lease_ttl > 0 ? lease_ttl : 0;
    out->paused_left_ms = v[TKM__RECOVERY_STATUS_PAUSED_LEFT_MS].i;
    return TKM_OK;
}

/* reset, pause and resume: (host, reason[, duration_ms]) -> {ok}. */
_Static_assert(TKM__RECOVERY_PAUSE_NFIELDS == TKM__RECOVERY_RESET_NFIELDS &&
                   TKM__RECOVERY_RESUME_NFIELDS == TKM__RECOVERY_RESET_NFIELDS,
               "one reply for the guard's simple calls");

static tkm_code simple(tkm_client *c, tkm__call_id id, const char *host,
                       const char *reason, int64_t duration_ms)
{
    tkm__call k;
    tkm__value v[TKM__RECOVERY_RESET_NFIELDS];
    char why[TKM__VALUE_STR_MAX];

    guard_call(&k, c, id, host);
    tkm__call_str(&k, audit_text(why, sizeof(why), reason));
    if (id == TKM__CALL_RECOVERY_PAUSE)
        tkm__call_int(&k, duration_ms);
    return tkm__call_run(c, &k, v, TKM__RECOVERY_RESET_NFIELDS, NULL);
}

TKM_EXPORT tkm_code tkm_recovery_reset(tkm_client *c, const char *host,
                                       const char *reason)
{
    return simple(c, TKM__CALL_RECOVERY_RESET, host, reason, 0);
}

TKM_EXPORT tkm_code tkm_recovery_pause(tkm_client *c, const char *host, int on,
                                       const char *reason)
{
    return simple(c, on ? TKM__CALL_RECOVERY_PAUSE : TKM__CALL_RECOVERY_RESUME,
                  host, reason, 0);
}

TKM_EXPORT tkm_code tkm_recovery_pause_for(tkm_client *c, const char *host,
                                           int64_t seconds, const char *reason)
{
    if (seconds < 0 || seconds > 2592000)
        return tkm__fail(c, TKM_EINVAL,
                         "pause duration %lld s is outside 0..2592000",
                         (long long)seconds);
    return simple(c, TKM__CALL_RECOVERY_PAUSE, host, reason, seconds * 1000);
}

/*
 * The audit stream's fields (recovery.lua's audit()) and where each goes in
 * an entry: text into its buffer, or a number, `absent` when missing or
 * unreadable.  The stream's "pool" field is the client's own pool: skipped.
 */
typedef struct audit_field {
    const char *name;
    size_t offset;
    size_t size; /* text: the buffer's size; 0: an int64_t */
    int64_t absent;
} audit_field;

#define AUDIT_TEXT(name, member)                                                    \
    {                                                                               \
        name,                                                                     \
     _Generic(((tkm_audit_entry *)0)->member,                                  \
         char *: offsetof(tkm_audit_entry, member)),                           \
     sizeof(((tkm_audit_entry *)0)->member), 0 \
    }
#define AUDIT_NUM(name, member, absent)                                        \
    {                                                                          \
        name,                                                                  \
            _Generic(((tkm_audit_entry *)0)->member, int64_t                   \
                     : offsetof(tkm_audit_entry, member)),                     \
            0, absent                                                          \
    }

static const audit_field audit_fields[] = {
    AUDIT_NUM("time", time_ms, 0),
    AUDIT_TEXT("host", host),
    AUDIT_TEXT("decision", decision),
    AUDIT_TEXT("reason", reason),
    AUDIT_TEXT("inputs", inputs),
    AUDIT_TEXT("argv", argv),
    AUDIT_TEXT("action_id", action_id),
    AUDIT_TEXT("outcome", outcome),
    AUDIT_NUM("exit", exit_status, -1),
    AUDIT_NUM("duration_ms", duration_ms, -1),
    AUDIT_TEXT("output", output),
    AUDIT_NUM("repeats", repeats, 0),
};
#define NAUDIT_FIELDS (sizeof(audit_fields) / sizeof(audit_fields[0]))

/* Set field f of e from val (NULL: absent). */
static void audit_set(tkm_audit_entry *e, const audit_field *f, const char *val)
{
    char *at = (char *)e + f->offset;
    int64_t num;

    if (f->size > 0) {
        tkm__fmt(at, f->size, "%s", val ? val : "");
        return;
    }
    if (val == NULL || tkm_parse_int(val, INT64_MIN, INT64_MAX, &num) != TKM_OK)
        num = f->absent;
    memcpy(at, &num, sizeof(num));
}

TKM_EXPORT tkm_code tkm_recovery_log(tkm_client *c, int64_t count,
                                     tkm_audit_entry **entries, size_t *n)
{
    tkm__call k;
    tkm__value *v = NULL;
    tkm_audit_entry *e;
    int nv = 0, i = 0;
    size_t rows = 0;
    tkm_code rc;

    *entries = NULL;
    *n = 0;
    if (count < 1 || count > 1000)
        return tkm__fail(c, TKM_EINVAL, "count %lld is outside 1..1000",
                         (long long)count);
    tkm__call_init(&k, c, TKM__CALL_RECOVERY_LOG);
    tkm__call_int(&k, count);
    rc = tkm__call_run_alloc(c, &k, &v, &nv);
    if (rc != TKM_OK)
        return rc;
    e = calloc((size_t)count, sizeof(*e));
    if (e == NULL) {
        free(v);
        return tkm__fail(c, TKM_ENOMEM, "out of memory reading the audit");
    }
    /* Each entry: its stream id, its number of fields, field, value... */
    while (i + 1 < nv && rows < (size_t)count) {
        tkm_audit_entry *r = &e[rows++];
        int64_t fields = v[i + 1].i;
        for (size_t a = 0; a < NAUDIT_FIELDS; a++)
            audit_set(r, &audit_fields[a], NULL);
        tkm__copy(r->id, sizeof(r->id), v[i].s);
        i += 2;
        for (int64_t f = 0; f < fields && i + 1 < nv; f++, i += 2) {
            for (size_t a = 0; a < NAUDIT_FIELDS; a++) {
                if (strcmp(v[i].s, audit_fields[a].name) == 0)
                    audit_set(r, &audit_fields[a], v[i + 1].s);
            }
        }
    }
    free(v);
    *entries = e;
    *n = rows;
    return TKM_OK;
}
