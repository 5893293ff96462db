/*
 * Scalar views of the hot calls, for language bindings: the answer of an
 * acquire or a complete through plain out-parameters, so that a binding
 * neither mirrors tkm_grant or tkm_reconcile nor parses JSON twice per API
 * call (the JSON views in views.c cover everything else).
 */
#include <string.h>

#include "internal.h"

TKM_EXPORT tkm_code tkm_acquire_into(tkm_client *c, int64_t cost,
                                     int64_t wait_ms, char *id, size_t idlen,
                                     int64_t *tokens, int *reason,
                                     int64_t *retry_after_ms, int *flags)
{
    tkm_grant g;
    tkm_code rc = wait_ms == 0 ? tkm_try_acquire(c, cost, &g)
                               : tkm_acquire(c, cost, wait_ms, &g);

    if (id != NULL && idlen > 0)
        id[0] = '\0';
    if (rc != TKM_OK)
        return rc;
    if (id != NULL && g.granted && tkm__copy(id, idlen, g.id) != 0) {
        /* The grant stands: a caller that cannot hold its id cannot end
         * it, so it is handed back rather than left to expire. */
        (void)tkm_release(c, g.id, NULL);
        return tkm__fail(c, TKM_EINVAL,
                         "grant id buffer of %zu bytes is "
                         "too small (%d needed)",
                         idlen, TKM_GRANT_ID_MAX + 1);
    }
    if (tokens != NULL)
        *tokens = g.tokens;
    if (reason != NULL)
        *reason = (int)g.reason;
    if (retry_after_ms != NULL)
        *retry_after_ms = g.retry_after_ms;
    if (flags != NULL)
        *flags = (g.granted ? TKM_INTO_GRANTED : 0) |
                 (g.recharge_mode ? TKM_INTO_RECHARGE_MODE : 0) |
                 (g.recharge_expired ? TKM_INTO_RECHARGE_EXPIRED : 0);
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_complete_into(tkm_client *c, const char *grant_id,
                                      int64_t consumed, int has_report,
                                      int64_t tokens_left, int64_t timestamp_ms,
                                      int64_t *tokens, int *flags)
{
    tkm_report rep = {tokens_left, timestamp_ms};
    tkm_reconcile r;
    tkm_code rc =
        tkm_complete(c, grant_id, consumed, has_report ? &rep : NULL, &r);

    if (rc != TKM_OK)
        return rc;
    if (tokens != NULL)
        *tokens = r.tokens;
    if (flags != NULL)
        *flags = (r.report_applied ? TKM_INTO_REPORT_APPLIED : 0) |
                 (r.report_stale ? TKM_INTO_REPORT_STALE : 0);
    return TKM_OK;
}
