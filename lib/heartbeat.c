/*
 * Worker liveness: per-worker heartbeats on Redis' clock, busy periods, and
 * the workers view.  Coalescing happens here, on the client, so a tight loop
 * may beat every iteration without touching Redis.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * The rule for phase texts: at most TKM_PHASE_MAX bytes, cut back to the
 * start of a UTF-8 character, control characters replaced by spaces.
 */
static void clean_phase(const char *in, char *out)
{
    size_t n = in ? strlen(in) : 0;

    if (n > TKM_PHASE_MAX) {
        n = TKM_PHASE_MAX;
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[n] = '\0';
}

static tkm_code beat(tkm_client *c, const char *phase, int64_t busy_ms)
{
    char text[TKM_PHASE_MAX + 1];
    tkm__call k;
    tkm__value v[TKM__HEARTBEAT_NFIELDS];
    int64_t reported;
    tkm_code rc;

    if (!c->heartbeats)
        return TKM_OK; /* a tool, not a worker */
    clean_phase(phase, text);
    tkm__call_init(&k, c, TKM__CALL_HEARTBEAT);
    tkm__call_str(&k, c->opts.worker_id);
    tkm__call_str(&k, text);
    tkm__call_int(&k, busy_ms);
    /* A failure since the last report goes with it, dated on Redis' clock
     * by its age. */
    reported = c->failure_ms;
    if (reported > c->failure_reported_ms) {
        tkm__call_str(&k, c->failure_kind);
        tkm__call_int(&k, tkm__monotonic_ms() - reported);
    } else {
        tkm__call_str(&k, "");
        tkm__call_int(&k, 0);
    }
    rc = tkm__call_run(c, &k, v, TKM__HEARTBEAT_NFIELDS, NULL);
    if (rc == TKM_OK) {
        c->last_heartbeat_ms = tkm__monotonic_ms();
        c->failure_reported_ms = reported;
    }
    return rc;
}

void tkm__carried_beat(const tkm_client *c, const char *phase, char *text)
{
    text[0] = '\0';
    if (c->heartbeats && c->failure_ms <= c->failure_reported_ms)
        clean_phase(phase, text);
}

tkm_code tkm__heartbeat_within(tkm_client *c, const char *phase,
                               int64_t interval_ms)
{
    if (c->last_heartbeat_ms >= 0 &&
        tkm__monotonic_ms() - c->last_heartbeat_ms < interval_ms)
        return TKM_OK;
    return beat(c, phase, 0);
}

TKM_EXPORT tkm_code tkm_heartbeat(tkm_client *c, const char *phase)
{
    return tkm__heartbeat_within(c, phase, c->opts.heartbeat.min_interval_ms);
}

TKM_EXPORT tkm_code tkm_heartbeat_busy(tkm_client *c, const char *phase,
                                       int64_t seconds)
{
    if (seconds < 1 || seconds > 86400)
        return tkm__fail(c, TKM_EINVAL,
                         "busy duration %lld s is outside 1..86400",
                         (long long)seconds);
    return beat(c, phase, seconds * 1000);
}

TKM_EXPORT tkm_code tkm_workers(tkm_client *c, tkm_worker **list, size_t *count)
{
    tkm__call k;
    tkm__value *v = NULL;
    tkm_worker *w;
    int n = 0;
    size_t rows;
    tkm_code rc;

    *list = NULL;
    *count = 0;
    tkm__call_init(&k, c, TKM__CALL_WORKERS);
    tkm__call_int(&k, TKM_WORKERS_MAX);
    rc = tkm__call_run_alloc(c, &k, &v, &n);
    if (rc != TKM_OK)
        return rc;
    rows = (size_t)(n - TKM__WORKERS_NFIELDS) / TKM__WORKERS_ROW_NFIELDS;
    w = calloc(rows ? rows : 1, sizeof(*w));
    if (w == NULL) {
        free(v);
        return tkm__fail(c, TKM_ENOMEM, "out of memory listing workers");
    }
    for (size_t i = 0; i < rows; i++) {
        const tkm__value *r =
            &v[TKM__WORKERS_NFIELDS + TKM__WORKERS_ROW_NFIELDS * i];
        int64_t now = v[TKM__WORKERS_NOW].i;
        int64_t beat = r[TKM__WORKERS_ROW_HEARTBEAT_MS].i;
        int64_t busy = r[TKM__WORKERS_ROW_BUSY_UNTIL_MS].i;
        tkm__copy(w[i].id, sizeof(w[i].id), r[TKM__WORKERS_ROW_ID].s);
        w[i].heartbeat_age_ms = now > beat ? now - beat : 0;
        w[i].busy_until_ms = busy > now ? busy : -1;
        clean_phase(r[TKM__WORKERS_ROW_PHASE].s, w[i].phase);
        tkm__copy(w[i].error, sizeof(w[i].error), r[TKM__WORKERS_ROW_ERROR].s);
        w[i].error_age_ms = r[TKM__WORKERS_ROW_ERROR_MS].i > 0
                                ? now - r[TKM__WORKERS_ROW_ERROR_MS].i
                                : -1;
        w[i].alive =
            w[i].busy_until_ms > 0 ||
            w[i].heartbeat_age_ms <= c->opts.heartbeat.stale_after_s * 1000;
    }
    free(v);
    *list = w;
    *count = rows;
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_worker_forget(tkm_client *c, const char *id)
{
    tkm__call k;
    tkm__value v[TKM__FORGET_NFIELDS];
    tkm_code rc;

    if (id == NULL || !tkm__worker_id_valid(id))
        return tkm__fail(
            c, TKM_EINVAL,
            "'%.140s' is not a worker id ([A-Za-z0-9_.:@-]{1,128})",
            id ? id : "(null)");
    tkm__call_init(&k, c, TKM__CALL_FORGET);
    tkm__call_str(&k, id);
    rc = tkm__call_run(c, &k, v, TKM__FORGET_NFIELDS, NULL);
    if (rc == TKM_OK && v[TKM__FORGET_FOUND].i == 0)
        return tkm__fail(c, TKM_ENOTFOUND,
                         "pool %s has no worker '%s' (tokenmgr workers lists "
                         "them)",
                         c->opts.pool, id);
    return rc;
}

TKM_EXPORT void tkm_workers_free(tkm_worker *list)
{
    free(list);
}
