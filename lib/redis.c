/*
 * The connection to Redis: the only file that talks to hiredis.  Connects
 * lazily, bounds every connect and reply by timeout_ms, drops a broken
 * connection so the next call reconnects, and runs the Lua scripts with
 * EVALSHA (EVAL when Redis answers NOSCRIPT).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

#define MAX_ARGS 64

static struct timeval timeout_tv(const tkm_client *c)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(c->opts.timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)((c->opts.timeout_ms % 1000) * 1000);
    return tv;
}

/* Where we connect, for messages (never the password). */
static void endpoint(const tkm_client *c, char *buf, size_t len)
{
    if (c->url.unix_socket)
        tkm__fmt(buf, len, "unix:%s", c->url.path);
    else
        tkm__fmt(buf, len, "%s:%d", c->url.host, c->url.port);
}

void tkm__redis_close(tkm_client *c)
{
    if (c->redis != NULL) {
        redisFree(c->redis);
        c->redis = NULL;
    }
}

/* A reply failure on the connection: say why, drop it (reconnect later). */
static tkm_code conn_failed(tkm_client *c, const char *what)
{
    redisContext *ctx = c->redis;
    char where[600];
    int timed_out =
        ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

    endpoint(c, where, sizeof(where));
    if (timed_out)
        tkm__fail(c, TKM_EREDIS, "Redis at %s did not answer %s within %lld ms",
                  where, what, (long long)c->opts.timeout_ms);
    else
        tkm__fail(c, TKM_EREDIS, "Redis at %s failed during %s: %s", where,
                  what, ctx->errstr[0] ? ctx->errstr : "connection lost");
    tkm__redis_close(c);
    return TKM_EREDIS;
}

/*
 * A connection whose peer went away (Redis restarted) is readable with EOF
 * before we write to it.  Noticing that here lets the next call reconnect
 * instead of failing, without ever resending a command that may have run.
 */
static int connection_dead(redisContext *ctx)
{
    struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};
    char byte;

    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
        return 1;
    /* Readable with no request outstanding: EOF, an error or stray bytes. */
    return recv(ctx->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != -1 ||
           (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Run a setup command (AUTH, SELECT) on a fresh connection. */
static tkm_code setup_command(tkm_client *c, int argc, const char **argv,
                              const char *what)
{
    redisReply *r = redisCommandArgv(c->redis, argc, argv, NULL);
    char where[600];

    if (r == NULL)
        return conn_failed(c, what);
    if (r->type == REDIS_REPLY_ERROR) {
        endpoint(c, where, sizeof(where));
        tkm__fail(c, TKM_EREDIS, "Redis at %s refused %s: %.200s", where, what,
                  r->str);
        freeReplyObject(r);
        tkm__redis_close(c);
        return TKM_EREDIS;
    }
    freeReplyObject(r);
    return TKM_OK;
}

static tkm_code ensure_connected(tkm_client *c)
{
    struct timeval tv = timeout_tv(c);
    redisContext *ctx;
    char where[600];
    char db[24];

    if (c->redis != NULL && !connection_dead(c->redis))
        return TKM_OK;
    tkm__redis_close(c);
    if (c->url.unix_socket)
        ctx = redisConnectUnixWithTimeout(c->url.path, tv);
    else
        ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (ctx == NULL)
        return tkm__fail(c, TKM_ENOMEM, "out of memory connecting to Redis");
    if (ctx->err) {
        endpoint(c, where, sizeof(where));
        tkm__fail(c, TKM_EREDIS, "cannot connect to Redis at %s: %s", where,
                  ctx->errstr);
        redisFree(ctx);
        return TKM_EREDIS;
    }
    c->redis = ctx;
    if (redisSetTimeout(ctx, tv) != REDIS_OK)
        return conn_failed(c, "setting the timeout");
    if (c->url.password[0] != '\0') {
        const char *auth_user[] = {"AUTH", c->url.user, c->url.password};
        const char *auth[] = {"AUTH", c->url.password};
        tkm_code rc = c->url.user[0] ? setup_command(c, 3, auth_user, "AUTH")
                                     : setup_command(c, 2, auth, "AUTH");
        if (rc != TKM_OK)
            return rc;
    }
    if (c->url.db > 0) {
        const char *select[] = {"SELECT", db};
        snprintf(db, sizeof(db), "%lld", (long long)c->url.db);
        return setup_command(c, 2, select, "SELECT");
    }
    return TKM_OK;
}

/* Map a script's error reply ("TKMSTATE ...") to a status code. */
static tkm_code script_error(tkm_client *c, const redisReply *r,
                             const char *name)
{
    static const struct {
        const char *prefix;
        tkm_code code;
        const char *lead;
    } map[] = {
        {"TKMSTATE ", TKM_ESTATE, ""},
        {"TKMNOGRANT ", TKM_ENOGRANT, ""},
        {"TKMCOST ", TKM_EINVAL, ""},
        {"WRONGTYPE ", TKM_ESTATE,
         "a key of this pool (tokenmgr:{pool}:*) was written by something "
         "else: "},
    };
    const char *msg = r->str;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *hit = strstr(msg, map[i].prefix);
        if (hit != NULL)
            return tkm__fail(c, map[i].code, "%s%s", map[i].lead,
                             hit + strlen(map[i].prefix));
    }
    return tkm__fail(c, TKM_EREDIS, "Redis refused the %s script: %.300s", name,
                     msg);
}

static tkm_code copy_reply(tkm_client *c, const redisReply *r, tkm__value *out,
                           int maxout, int *nout)
{
    if (r->elements > (size_t)maxout)
        return tkm__fail(c, TKM_EPROTO,
                         "a tokenmgr script answered %zu values, at most %d "
                         "expected",
                         r->elements, maxout);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        tkm__value *v = &out[i];
        memset(v, 0, sizeof(*v));
        if (e->type == REDIS_REPLY_INTEGER) {
            v->is_int = 1;
            v->i = (int64_t)e->integer;
        } else if (e->type == REDIS_REPLY_STRING ||
                   e->type == REDIS_REPLY_STATUS) {
            tkm__fmt(v->s, sizeof(v->s), "%.*s", (int)e->len, e->str);
            v->len = e->len;
        } else if (e->type == REDIS_REPLY_NIL) {
            v->is_nil = 1;
        } else {
            return tkm__fail(c, TKM_EPROTO,
                             "unexpected element type %d in a script reply",
                             e->type);
        }
    }
    *nout = (int)r->elements;
    return TKM_OK;
}

/* Send the script; on success *reply holds an array reply (caller frees). */
static tkm_code send_script(tkm_client *c, tkm__script_id id, int nkeys,
                            const char *const *args, int nargs,
                            redisReply **reply)
{
    const tkm__script *s = &tkm__scripts[id];
    const char *argv[MAX_ARGS];
    char numkeys[16];
    redisReply *r;
    tkm_code rc;

    *reply = NULL;
    if (nargs + 3 > MAX_ARGS)
        return tkm__fail(c, TKM_EINVAL, "too many script arguments");
    rc = ensure_connected(c);
    if (rc != TKM_OK)
        return rc;
    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
    c->round_trips++;
    argv[0] = "EVALSHA";
    argv[1] = s->sha1;
    argv[2] = numkeys;
    memcpy(argv + 3, args, (size_t)nargs * sizeof(*args));
    r = redisCommandArgv(c->redis, nargs + 3, argv, NULL);
    if (r != NULL && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* First use on this server (or it restarted): send the text once. */
        freeReplyObject(r);
        c->round_trips++;
        argv[0] = "EVAL";
        argv[1] = s->text;
        r = redisCommandArgv(c->redis, nargs + 3, argv, NULL);
    }
    if (r == NULL)
        return conn_failed(c, s->name);
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_error(c, r, s->name);
        freeReplyObject(r);
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        int type = r->type;
        freeReplyObject(r);
        return tkm__fail(c, TKM_EPROTO,
                         "unexpected reply type %d from the %s script", type,
                         s->name);
    }
    *reply = r;
    return TKM_OK;
}

tkm_code tkm__script_run(tkm_client *c, tkm__script_id id, int nkeys,
                         const char *const *args, int nargs, tkm__value *out,
                         int maxout, int *nout)
{
    redisReply *r;
    tkm_code rc = send_script(c, id, nkeys, args, nargs, &r);

    if (rc != TKM_OK)
        return rc;
    rc = copy_reply(c, r, out, maxout, nout);
    freeReplyObject(r);
    return rc;
}

tkm_code tkm__script_run_alloc(tkm_client *c, tkm__script_id id, int nkeys,
                               const char *const *args, int nargs,
                               tkm__value **out, int *nout)
{
    redisReply *r;
    tkm_code rc = send_script(c, id, nkeys, args, nargs, &r);

    *out = NULL;
    *nout = 0;
    if (rc != TKM_OK)
        return rc;
    *out = calloc(r->elements ? r->elements : 1, sizeof(**out));
    if (*out == NULL)
        rc = tkm__fail(c, TKM_ENOMEM, "out of memory reading a reply");
    else
        rc = copy_reply(c, r, *out, (int)r->elements, nout);
    freeReplyObject(r);
    return rc;
}
