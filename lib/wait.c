/*
 * The blocking acquire: an attempt in line (acquire.lua, which keeps the
 * waiter's ticket in the pool's wait queue), then a sleep until the turn
 * the script expects for it, beating only as often as staying alive needs
 * (a waiter in line costs Redis its attempts, not a heartbeat a slice).  No
 * polling: each attempt is followed by the sleep the script asked for.  A
 * worker whose last call waited starts with the place its completion took
 * (complete.lua): a sleep until that turn, then the attempt.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* acquire.lua writes the same phase when an attempt in line is the
 * heartbeat. */
#define PHASE_WAITING "waiting for tokens"

static int canceled(const tkm_client *c)
{
    return c->cancel != NULL && *c->cancel != 0;
}

/* A signal ends the sleep early only when it raised the cancel flag. */
static void sleep_ms(const tkm_client *c, int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR &&
           !canceled(c))
        ;
}

int64_t tkm__random(tkm_client *c, int64_t n)
{
    if (n <= 1)
        return 0;
    return (int64_t)((uint64_t)rand_r(&c->jitter_seed) % (uint64_t)n);
}

/* An error from a heartbeat (Redis down) ends the wait, as does cancel. */
tkm_code tkm__sleep_beating(tkm_client *c, int64_t ms, const char *phase)
{
    int64_t end = tkm__monotonic_ms() + ms;
    int64_t left;

    int64_t every = c->opts.heartbeat.stale_after_s * 1000 / 4;

    if (every > 60000)
        every = 60000;
    if (every < c->opts.heartbeat.min_interval_ms)
        every = c->opts.heartbeat.min_interval_ms;
    while ((left = end - tkm__monotonic_ms()) > 0) {
        tkm_code rc;
        if (canceled(c))
            return tkm__fail(c, TKM_ECANCELED, "wait canceled (%s)", phase);
        rc = tkm__heartbeat_within(c, phase, every);
        if (rc != TKM_OK)
            return rc;
        sleep_ms(c, left < c->opts.heartbeat.wait_slice_ms
                        ? left
                        : c->opts.heartbeat.wait_slice_ms);
    }
    return canceled(c)
               ? tkm__fail(c, TKM_ECANCELED, "wait canceled (%s)", phase)
               : TKM_OK;
}

tkm_code tkm__queue_weight(tkm_client *c, const char *name, int64_t *weight)
{
    const tkm_queue_options *q = &c->opts.queue;

    if (name == NULL || name[0] == '\0')
        name = q->class_name;
    *weight = 1; /* "default", unless listed */
    for (int i = 0; i < q->nclasses && i < TKM_QUEUE_CLASSES_MAX; i++) {
        const char *item = q->classes[i];
        size_t n = strcspn(item, "=");
        if (strlen(name) == n && strncmp(item, name, n) == 0 && item[n] == '=')
            return tkm_parse_int(item + n + 1, 1, TKM_QUEUE_WEIGHT_MAX,
                                 weight) == TKM_OK
                       ? TKM_OK
                       : tkm__fail(c, TKM_ECONFIG,
                                   "queue.classes: '%.80s' has no weight in "
                                   "1..%d",
                                   item, TKM_QUEUE_WEIGHT_MAX);
    }
    if (strcmp(name, "default") == 0)
        return TKM_OK;
    return tkm__fail(c, TKM_ECONFIG,
                     "queue class '%.80s' is not one of queue.classes (nor "
                     "\"default\")",
                     name);
}

void tkm__keep_place(tkm_client *c, const char *ticket, const char *cls,
                     int64_t wait_ms)
{
    if (tkm__copy(c->place.ticket, sizeof(c->place.ticket), ticket) != 0 ||
        tkm__copy(c->place.cls, sizeof(c->place.cls), cls) != 0)
        c->place.ticket[0] = '\0';
    c->place.due_ms = tkm__monotonic_ms() + wait_ms;
}

/* A grant to a call that held a place in line: its completion takes the
 * worker's place for the next one (tkm_complete).  Any other clears it. */
static void note_grant(tkm_client *c, const tkm_grant *g, int in_line,
                       const char *cls, int64_t cost, int64_t max_wait_ms)
{
    if (!in_line || tkm__copy(c->waited.id, sizeof(c->waited.id), g->id) != 0 ||
        tkm__copy(c->waited.cls, sizeof(c->waited.cls), cls) != 0) {
        c->waited.id[0] = '\0';
        return;
    }
    c->waited.cost = cost;
    c->waited.max_wait_ms = max_wait_ms;
}

TKM_EXPORT tkm_code tkm_acquire(tkm_client *c, int64_t cost,
                                int64_t max_wait_ms, tkm_grant *g)
{
    return tkm_acquire_ex(c, cost, max_wait_ms, NULL, g);
}

TKM_EXPORT tkm_code tkm_acquire_ex(tkm_client *c, int64_t cost,
                                   int64_t max_wait_ms,
                                   const tkm_acquire_opts *opts, tkm_grant *g)
{
    return tkm__acquire(c, cost, max_wait_ms, opts, NULL, g);
}

tkm_code tkm__acquire(tkm_client *c, int64_t cost, int64_t max_wait_ms,
                      const tkm_acquire_opts *opts, const char *phase,
                      tkm_grant *g)
{
    const char *cls = opts != NULL && opts->queue_class != NULL &&
                              opts->queue_class[0] != '\0'
                          ? opts->queue_class
                          : c->opts.queue.class_name;
    char ticket[TKM__TICKET_MAX] = "";
    int64_t deadline, weight, nap_ms = -1; /* -1: an attempt first */
    tkm_code rc;

    memset(g, 0, sizeof(*g));
    if (max_wait_ms > TKM_MAX_WAIT_MS)
        return tkm__fail(c, TKM_EINVAL,
                         "max_wait_ms %lld is above %lld (a day; -1: "
                         "bucket.max_wait_s)",
                         (long long)max_wait_ms, (long long)TKM_MAX_WAIT_MS);
    rc = tkm__queue_weight(c, cls, &weight);
    if (rc != TKM_OK)
        return rc;
    if (max_wait_ms < 0)
        max_wait_ms = c->opts.bucket.max_wait_s * 1000;
    deadline = tkm__monotonic_ms() + max_wait_ms;
    if (c->place.ticket[0] != '\0') {
        /* The place the worker's last completion took: its turn, then an
         * attempt with it (for a call of another cost, the attempt tells
         * whether the turn holds).  One for another class goes with the
         * first attempt, which takes a place of its own. */
        int64_t until = c->place.due_ms - tkm__monotonic_ms();
        memcpy(ticket, c->place.ticket, sizeof(ticket));
        c->place.ticket[0] = '\0';
        if (strcmp(c->place.cls, cls) == 0 && until > 0 && until <= max_wait_ms)
            nap_ms = until;
    }
    for (;;) {
        int64_t left;
        int in_line;
        if (nap_ms >= 0) {
            /* The line tells each waiter its own time: no jitter needed,
             * but a millisecond so that Redis' clock has passed the tick. */
            rc = tkm__sleep_beating(c, nap_ms + 1, PHASE_WAITING);
            if (rc != TKM_OK) {
                /* Canceled or closed: nobody waits for it.  When Redis
                 * failed (a heartbeat timed out), a leave would only wait
                 * as long again: the ticket expires within
                 * bucket.lease_ttl_s. */
                if (rc != TKM_EREDIS)
                    tkm__leave(c, ticket);
                return rc;
            }
        }
        left = deadline - tkm__monotonic_ms();
        in_line = ticket[0] != '\0';
        if (canceled(c)) {
            rc = tkm__fail(c, TKM_ECANCELED, "acquire canceled");
            tkm__leave(c, ticket);
            return rc;
        }
        rc = tkm__attempt(c, cost, cls, weight, ticket, sizeof(ticket),
                          left > 0 ? left : 0, phase, g, NULL);
        if (rc == TKM_OK && g->granted)
            note_grant(c, g, in_line, cls, cost, max_wait_ms);
        if (rc != TKM_OK || g->granted || g->retry_after_ms == TKM_RETRY_NEVER)
            return rc;
        left = deadline - tkm__monotonic_ms();
        if (g->retry_after_ms > left ||
            (ticket[0] == '\0' && g->reason != TKM_REASON_NEED_SYNC)) {
            /* Not in line: its turn is later than the caller would wait.
             * The caller frees the worker instead of holding it.  (A pool
             * being re-grounded after a failover answers need_sync with
             * no ticket and a short wait: another caller's /token sync.) */
            tkm__leave(c, ticket);
            g->reason = TKM_REASON_WAIT_TOO_LONG;
            return TKM_OK;
        }
        nap_ms = g->retry_after_ms;
    }
}
