/*
 * A guarded recovery, whole: the guard decides (recovery.c), the action
 * runs (action.c), its outcome is recorded.  The collectd plugin and the
 * command-line tool both go through this pair, so the sequence, the argv
 * shown in the audit and the outcome's name are written once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct tkm_recovery_run {
    tkm_recovery_ticket ticket;
    tkm_action *action;
    char host[64];
};

TKM_EXPORT const char *tkm_recovery_mode_name(tkm_recovery_mode m)
{
    static const char *const names[] = {"stalled", "unknown", "shared_cause",
                                        "manual"};

    return (size_t)m < sizeof(names) / sizeof(names[0]) ? names[m] : "invalid";
}

TKM_EXPORT const char *tkm_recovery_outcome_name(tkm_recovery_outcome o)
{
    static const char *const names[] = {"ok", "failed", "timeout", "abandoned"};

    return (size_t)o < sizeof(names) / sizeof(names[0]) ? names[o] : "invalid";
}

TKM_EXPORT const char *tkm_recovery_event_name(tkm_recovery_event e)
{
    static const char *const names[] = {"", "recovered", "failed",
                                        "deescalated"};

    return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "invalid";
}

/* The action as the audit shows it: the argv joined, or "webhook". */
static void action_text(const tkm_recovery_options *o, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (o->exec_argc == 0) {
        tkm__fmt(buf, len, "webhook");
        return;
    }
    for (int i = 0; i < o->exec_argc && n + 1 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "",
                              o->exec[i]);
}

TKM_EXPORT tkm_code tkm_recovery_begin(tkm_client *c,
                                       const tkm_recovery_options *o,
                                       const tkm_recovery_request *req,
                                       tkm_recovery_ticket *t,
                                       tkm_recovery_run **out, char *err,
                                       size_t errlen)
{
    const char *argv[TKM_EXEC_ARGS_MAX + 1];
    char text[1100];
    tkm_action_env env;
    tkm_recovery_run *run;
    tkm_code rc;

    *out = NULL;
    memset(t, 0, sizeof(*t));
    if (o->exec_argc == 0 && o->webhook[0] == '\0') {
        tkm__fmt(err, errlen,
                 "no action configured (recovery.exec or "
                 "recovery.webhook; <Recovery> Exec or Webhook)");
        return TKM_ECONFIG;
    }
    for (int i = 0; i < o->exec_argc; i++)
        argv[i] = o->exec[i];
    argv[o->exec_argc] = NULL;
    action_text(o, text, sizeof(text));
    rc = tkm_recovery_decide(c, o, tkm_recovery_mode_name(req->mode), req->host,
                             req->reason, req->inputs, text, t);
    if (rc != TKM_OK) {
        tkm__fmt(err, errlen, "the recovery guard is unreachable: %s",
                 tkm_errstr(c));
        return rc;
    }
    if (t->decision != TKM_DECIDE_ACT)
        return TKM_OK;
    run = calloc(1, sizeof(*run));
    if (run == NULL) {
        tkm_recovery_finish(c, t, req->host, "failed", -1, 0, "out of memory");
        tkm__fmt(err, errlen, "out of memory");
        return TKM_ENOMEM;
    }
    run->ticket = *t;
    tkm__copy(run->host, sizeof(run->host), req->host ? req->host : "");
    env = (tkm_action_env){
        .pool = c->opts.pool,
        .reason = req->reason,
        .tokens = req->tokens,
        .heartbeat_age_s =
            req->heartbeat_age_ms < 0 ? -1 : req->heartbeat_age_ms / 1000,
        .stale_workers = req->stale_workers,
        .action_id = t->action_id};
    rc = o->exec_argc > 0
             ? tkm_action_exec(argv, &env, o->timeout_s * 1000, &run->action,
                               err, errlen)
             : tkm_action_webhook(o->webhook, &env, o->timeout_s * 1000,
                                  &run->action, err, errlen);
    if (rc != TKM_OK) {
        tkm_recovery_finish(c, t, req->host, "failed", -1, 0, err);
        free(run);
        return TKM_EIO;
    }
    *out = run;
    return TKM_OK;
}

static tkm_recovery_outcome outcome_of(const tkm_action_result *r)
{
    if (r->timed_out)
        return TKM_OUTCOME_TIMEOUT;
    return r->exit_status == 0 ? TKM_OUTCOME_OK : TKM_OUTCOME_FAILED;
}

TKM_EXPORT tkm_code tkm_recovery_settle(tkm_client *c, tkm_recovery_run **runp,
                                        tkm_settle how,
                                        tkm_action_result *result)
{
    tkm_recovery_run *run = *runp;
    tkm_recovery_ticket ticket;
    tkm_recovery_outcome oc;
    tkm_action_result r;
    tkm_code rc;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (run == NULL)
        return TKM_OK;
    memset(&r, 0, sizeof(r));
    rc = how == TKM_SETTLE_WAIT ? tkm_action_wait(run->action, &r)
                                : tkm_action_poll(run->action, &r);
    if (rc != TKM_OK)
        r.done = 1, r.exit_status = -1;
    if (!r.done && how == TKM_SETTLE_POLL)
        return TKM_OK;
    ticket = run->ticket;
    if (r.done) {
        oc = outcome_of(&r);
    } else {
        /* Abandoned: it runs on until its deadline, in its own process
         * group; the lease is kept (it expires then) so that no other
         * monitor starts a second action meanwhile. */
        oc = TKM_OUTCOME_ABANDONED;
        ticket.lease_token[0] = '\0';
        r.exit_status = -1;
        tkm__fmt(r.output, sizeof(r.output),
                 "the monitor stopped while it ran: it runs on until its "
                 "deadline, exit status unknown");
        tkm__action_detach(run->action);
    }
    rc = tkm_recovery_finish(c, &ticket, run->host,
                             tkm_recovery_outcome_name(oc), r.exit_status,
                             r.duration_ms, r.output);
    tkm_action_free(run->action);
    free(run);
    *runp = NULL;
    if (result != NULL)
        *result = r;
    return rc;
}
