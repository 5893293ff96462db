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
    tkm__args a;
    tkm__value v[2];
    tkm_code rc;

    clean_phase(phase, text);
    tkm__args_init(&a, c);
    tkm__push_str(&a, c->opts.worker_id);
    tkm__push_str(&a, text);
    tkm__push_int(&a, busy_ms);
    rc = tkm__run(c, TKM__SCRIPT_HEARTBEAT, &a, v, 2, NULL);
    if (rc == TKM_OK)
        c->last_heartbeat_ms = tkm__monotonic_ms();
    return rc;
}

TKM_EXPORT tkm_code tkm_heartbeat(tkm_client *c, const char *phase)
{
    if (c->last_heartbeat_ms >= 0 &&
        tkm__monotonic_ms() - c->last_heartbeat_ms <
            c->opts.heartbeat.min_interval_ms)
        return TKM_OK;
    return beat(c, phase, 0);
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
    tkm__args a;
    tkm__value *v = NULL;
    tkm_worker *w;
    int n = 0;
    size_t rows;
    tkm_code rc;

    *list = NULL;
    *count = 0;
    if (c->open_status != TKM_OK)
        return c->open_status;
    tkm__args_init(&a, c);
    tkm__push_int(&a, TKM_WORKERS_MAX);
    rc = tkm__script_run_alloc(c, TKM__SCRIPT_WORKERS, a.nkeys, a.argv, a.argc,
                               &v, &n);
    if (rc == TKM_OK && (n < 2 || (n - 2) % 4 != 0))
        rc = tkm__fail(c, TKM_EPROTO, "the workers script answered %d values",
                       n);
    if (rc != TKM_OK) {
        free(v);
        return rc;
    }
    rows = (size_t)(n - 2) / 4;
    w = calloc(rows ? rows : 1, sizeof(*w));
    if (w == NULL) {
        free(v);
        return tkm__fail(c, TKM_ENOMEM, "out of memory listing workers");
    }
    for (size_t i = 0; i < rows; i++) {
        const tkm__value *r = &v[2 + 4 * i];
        int64_t now = v[0].i;
        tkm__copy(w[i].id, sizeof(w[i].id), r[0].s);
        w[i].heartbeat_age_ms = now > r[1].i ? now - r[1].i : 0;
        w[i].busy_until_ms = r[2].i > now ? r[2].i : -1;
        clean_phase(r[3].s, w[i].phase);
        w[i].alive =
            w[i].busy_until_ms > 0 ||
            w[i].heartbeat_age_ms <= c->opts.heartbeat.stale_after_s * 1000;
    }
    free(v);
    *list = w;
    *count = rows;
    return TKM_OK;
}

TKM_EXPORT void tkm_workers_free(tkm_worker *list)
{
    free(list);
}
