/* The client handle: options, key names, lifetime. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* "<hostname>:<pid>", with characters a worker id may not hold replaced. */
static void default_worker_id(char *buf, size_t len)
{
    char host[TKM_WORKER_ID_MAX];

    if (gethostname(host, sizeof(host)) != 0)
        tkm__copy(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++) {
        if (!tkm__worker_id_valid((char[]){*p, '\0'}))
            *p = '_';
    }
    tkm__fmt(buf, len, "%.100s:%ld", host[0] ? host : "localhost",
             (long)getpid());
}

TKM_EXPORT tkm_code tkm_client_open(const tkm_options *opts, tkm_client **out)
{
    tkm_client *c;
    char why[TKM__ERR_MAX];

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return TKM_ENOMEM;
    *out = c;
    c->opts = *opts;
    c->last_heartbeat_ms = -1;
    c->heartbeats = 1;
    /* Waiters on many hosts must not wake in step: seed per process and
     * per client. */
    c->jitter_seed = (unsigned int)getpid() ^ (unsigned int)(uintptr_t)c ^
                     (unsigned int)tkm__monotonic_ms();
    if (tkm_options_validate(&c->opts, why, sizeof(why)) != TKM_OK) {
        c->open_status = tkm__fail(c, TKM_ECONFIG, "%s", why);
        return TKM_ECONFIG;
    }
    tkm__url_parse(c->opts.redis_url, &c->url, NULL, 0);
    if (c->opts.redis_password_file[0] != '\0') {
        tkm_code rc = tkm__read_secret_file(
            "redis.password_file", c->opts.redis_password_file, c->url.password,
            sizeof(c->url.password), why, sizeof(why));
        if (rc != TKM_OK) {
            c->open_status = tkm__fail(c, rc, "%s", why);
            return rc;
        }
    }
    /* Sentinel: the addresses to ask and their password, read once (the
     * master's own credentials stay the URL's). */
    {
        tkm_code rc = tkm__sentinels_init(&c->sentinels, &c->opts.sentinel, why,
                                          sizeof(why));
        if (rc != TKM_OK) {
            c->open_status = tkm__fail(c, rc, "%s", why);
            return rc;
        }
    }
    if (c->opts.worker_id[0] == '\0')
        default_worker_id(c->opts.worker_id, sizeof(c->opts.worker_id));
    snprintf(c->key_bucket, sizeof(c->key_bucket), "tokenmgr:{%s}:bucket",
             c->opts.pool);
    snprintf(c->key_leases, sizeof(c->key_leases), "tokenmgr:{%s}:leases",
             c->opts.pool);
    snprintf(c->key_expiry, sizeof(c->key_expiry), "tokenmgr:{%s}:lease_expiry",
             c->opts.pool);
    snprintf(c->key_heartbeats, sizeof(c->key_heartbeats),
             "tokenmgr:{%s}:heartbeats", c->opts.pool);
    snprintf(c->key_workers, sizeof(c->key_workers), "tokenmgr:{%s}:workers",
             c->opts.pool);
    snprintf(c->key_token_sync, sizeof(c->key_token_sync),
             "tokenmgr:{%s}:token_sync", c->opts.pool);
    snprintf(c->key_busy, sizeof(c->key_busy), "tokenmgr:{%s}:busy",
             c->opts.pool);
    snprintf(c->key_queue, sizeof(c->key_queue), "tokenmgr:{%s}:queue",
             c->opts.pool);
    return TKM_OK;
}

TKM_EXPORT void tkm_client_free(tkm_client *c)
{
    if (c == NULL)
        return;
    /* A place in line for a call that will not come (tkm_complete took
     * it): others need not wait for it to be absent. */
    if (c->place.ticket[0] != '\0' && c->redis != NULL)
        tkm__leave(c, c->place.ticket);
    tkm__redis_close_all(c);
    /* The options may hold a Redis password, the sentinels theirs. */
    memset(c, 0, sizeof(*c));
    free(c);
}

TKM_EXPORT const char *tkm_errstr(const tkm_client *c)
{
    if (c == NULL)
        return "no client";
    return c->err;
}

TKM_EXPORT const tkm_options *tkm_client_options(const tkm_client *c)
{
    return &c->opts;
}

TKM_EXPORT const char *tkm_client_worker_id(const tkm_client *c)
{
    return c->opts.worker_id;
}

TKM_EXPORT void tkm_client_set_cancel(tkm_client *c,
                                      const volatile sig_atomic_t *flag)
{
    c->cancel = flag;
}

void tkm__note_failure(tkm_client *c, const char *kind)
{
    c->failure_ms = tkm__monotonic_ms();
    if (c->failure_ms == 0)
        c->failure_ms = 1;
    c->failure_kind = kind;
}

TKM_EXPORT void tkm_client_set_heartbeats(tkm_client *c, int on)
{
    c->heartbeats = on != 0;
}

TKM_EXPORT int64_t tkm_client_round_trips(const tkm_client *c)
{
    return c->round_trips;
}
