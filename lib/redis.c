/*
 * The connection to Redis: the only file that talks to hiredis.  Connects
 * lazily, drops a broken connection so the next call reconnects, and runs
 * the Lua scripts with EVALSHA (EVAL when Redis answers NOSCRIPT).
 *
 * Whatever the peer on the Redis port does, a call ends within timeout_ms
 * and a reply stays small:
 * - a call has one deadline for all it does (asking the sentinels,
 *   connecting, AUTH, SELECT, the script and its NOSCRIPT retry): hiredis
 *   bounds each read, so a peer trickling a byte every 200 ms held a 500 ms
 *   call for seconds;
 * - we read the socket ourselves and check every reply header against the
 *   bounds below before hiredis' reader sees the bytes: hiredis 0.14 has no
 *   element limit and allocates an array as soon as it reads "*N" (a peer
 *   answering *1000000000 made it ask for 8 GB).
 * A call that breaks a bound drops the connection.
 *
 * With Redis Sentinel (redis.sentinels) the master is found by asking the
 * sentinels and the epoch each knows (sentinel.c has the rules), confirmed
 * by ROLE, and named by its
 * INFO run_id: a new master is told to the pool's state once, before the
 * first script that writes (origin.lua), and the pool then grants nothing
 * until the balance is grounded again.  A
 * connection is given up, and the sentinels asked again, when it breaks or
 * times out, when the server answers that it is no master (READONLY,
 * MASTERDOWN, NOREPLICAS, LOADING: the script did not run, so it is sent
 * once more to the new master), and before a connection idle for
 * RECHECK_IDLE_MS is used, when a sentinel names another master: the old
 * master, paused long enough to be replaced, wakes up still believing it
 * is one.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

#define MAX_ARGS 64

/*
 * A master connection idle this long is confirmed with a sentinel before
 * use.  A client that made no call while its master was unreachable for
 * Sentinel's down-after-milliseconds (at least 1000 in any deployment: see
 * conf/sentinel/README.md) has been idle at least that long; one that made
 * a call then timed out and dropped the connection.
 */
#define RECHECK_IDLE_MS 1000

/*
 * Bounds of one reply.  The widest reply is tkm_workers': 2 + 4 values for
 * each of TKM_WORKERS_MAX workers (40002 elements, about 3 MB); the audit
 * log's is 1000 entries of about 26 values of at most 255 bytes (26000
 * elements, about 7 MB).  Elements count nested arrays' too.
 */
#define REPLY_ELEMENTS_MAX ((int64_t)5 * TKM_WORKERS_MAX)
#define REPLY_BULK_MAX     ((int64_t)1 << 20) /* one string: 1 MiB */
#define REPLY_LINE_MAX     ((size_t)64 << 10) /* a status, error, integer */
#define REPLY_BYTES_MAX    ((size_t)16 << 20) /* the whole reply: 16 MiB */

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv;

    if (ms < 1)
        ms = 1;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

/* Where we connect, for messages (never the password). */
static void endpoint(const tkm_client *c, char *buf, size_t len)
{
    if (c->sentinels.count > 0)
        tkm__endpoint_str(&c->sentinels.master, buf, len);
    else if (c->url.unix_socket)
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

static void sentinel_close(tkm_client *c, int i)
{
    if (c->sentinels.ctx[i] != NULL) {
        redisFree(c->sentinels.ctx[i]);
        c->sentinels.ctx[i] = NULL;
    }
}

void tkm__redis_close_all(tkm_client *c)
{
    tkm__redis_close(c);
    for (int i = 0; i < TKM_SENTINELS_MAX; i++)
        sentinel_close(c, i);
}

/* The call failed on the connection: say why and drop it (the next call
 * reconnects).  `fmt` follows "Redis at HOST:PORT ". */
static tkm_code drop(tkm_client *c, tkm_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tkm_code drop(tkm_client *c, tkm_code code, const char *fmt, ...)
{
    char where[600], why[TKM__ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    endpoint(c, where, sizeof(where));
    tkm__fail(c, code, "Redis at %s %s", where, why);
    tkm__redis_close(c);
    return code;
}

/* hiredis failed (ctx->err): a write, the reader, or memory.  The code,
 * and in why what follows "Redis at HOST:PORT ". */
static tkm_code ctx_failed(redisContext *ctx, int64_t timeout_ms,
                           const char *what, char *why, size_t whylen)
{
    int again =
        ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

    if (again) {
        tkm__fmt(why, whylen, "did not answer %s within %lld ms", what,
                 (long long)timeout_ms);
        return TKM_EREDIS;
    }
    if (ctx->err == REDIS_ERR_PROTOCOL) {
        tkm__fmt(why, whylen,
                 "answered %s with something that is not Redis' "
                 "protocol: %s",
                 what, ctx->errstr);
        return TKM_EPROTO;
    }
    tkm__fmt(why, whylen, "failed during %s: %s", what,
             ctx->errstr[0] ? ctx->errstr : "connection lost");
    return ctx->err == REDIS_ERR_OOM ? TKM_ENOMEM : TKM_EREDIS;
}

static tkm_code hiredis_failed(tkm_client *c, const char *what)
{
    char why[TKM__ERR_MAX];
    tkm_code code =
        ctx_failed(c->redis, c->opts.timeout_ms, what, why, sizeof(why));

    return drop(c, code, "%s", why);
}

/* ---- the reply's shape, checked before hiredis reads it ------------------
 */

enum { S_TYPE, S_LINE, S_NUM, S_NUM_LF, S_BULK, S_DONE };

typedef struct reply_scan {
    int state;
    char type;         /* of the item being read: + - : $ * */
    int cr;            /* a line's last byte was '\r' */
    int neg, digits;   /* of the length being read */
    int64_t num;       /* the length being read */
    size_t line;       /* bytes of the line being read */
    int64_t bulk_left; /* bytes of the string (and its CRLF) to come */
    int64_t pending;   /* items of the reply still to come */
    int64_t elements;  /* elements declared so far */
    size_t bytes;      /* bytes of the reply so far */
} reply_scan;

static void item_done(reply_scan *s)
{
    s->pending--;
    s->state = s->pending == 0 ? S_DONE : S_TYPE;
}

/* A length header "*N" or "$N" has been read whole. */
static int header_done(reply_scan *s, char *why, size_t whylen)
{
    int64_t v = s->neg ? -s->num : s->num;

    if (v < -1) {
        tkm__fmt(why, whylen, "a length of %lld", (long long)v);
        return -1;
    }
    if (s->type == '$') {
        if (v > REPLY_BULK_MAX) {
            tkm__fmt(why, whylen,
                     "a string of %lld bytes (tokenmgr reads at most %lld)",
                     (long long)v, (long long)REPLY_BULK_MAX);
            return -1;
        }
        if (v == -1) {
            item_done(s);
        } else {
            s->bulk_left = v + 2;
            s->state = S_BULK;
        }
        return 0;
    }
    if (v > REPLY_ELEMENTS_MAX - s->elements) {
        if (s->elements == 0)
            tkm__fmt(why, whylen,
                     "an array of %lld elements (tokenmgr reads at most %lld "
                     "in a reply)",
                     (long long)v, (long long)REPLY_ELEMENTS_MAX);
        else
            tkm__fmt(why, whylen,
                     "%lld more elements after %lld (tokenmgr reads at most "
                     "%lld in a reply, nested ones included)",
                     (long long)v, (long long)s->elements,
                     (long long)REPLY_ELEMENTS_MAX);
        return -1;
    }
    if (v > 0) {
        s->elements += v;
        s->pending += v - 1;
        s->state = S_TYPE;
    } else {
        item_done(s);
    }
    return 0;
}

/* Check n more bytes of a reply; -1 with why set when they break a bound
 * or are not Redis' protocol. */
static int scan_reply(reply_scan *s, const char *buf, size_t n, char *why,
                      size_t whylen)
{
    s->bytes += n;
    if (s->bytes > REPLY_BYTES_MAX) {
        tkm__fmt(why, whylen,
                 "more than %zu bytes (tokenmgr reads at most "
                 "that in a reply)",
                 REPLY_BYTES_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];
        switch (s->state) {
        case S_TYPE:
            s->type = (char)ch;
            if (ch == '+' || ch == '-' || ch == ':') {
                s->state = S_LINE;
                s->line = 0;
                s->cr = 0;
            } else if (ch == '*' || ch == '$') {
                s->state = S_NUM;
                s->num = 0;
                s->neg = s->digits = 0;
            } else {
                tkm__fmt(why, whylen,
                         "the byte 0x%02x where a reply type belongs (not "
                         "Redis' protocol)",
                         ch);
                return -1;
            }
            break;
        case S_LINE:
            if (ch == '\n' && s->cr) {
                item_done(s);
            } else if (++s->line > REPLY_LINE_MAX) {
                tkm__fmt(why, whylen,
                         "a line longer than %zu bytes (tokenmgr reads at "
                         "most that)",
                         REPLY_LINE_MAX);
                return -1;
            }
            s->cr = ch == '\r';
            break;
        case S_NUM:
            if (ch == '-' && s->digits == 0 && !s->neg) {
                s->neg = 1;
            } else if (ch >= '0' && ch <= '9' && s->digits < 18) {
                s->num = s->num * 10 + (ch - '0');
                s->digits++;
            } else if (ch == '\r' && s->digits > 0) {
                s->state = S_NUM_LF;
            } else {
                tkm__fmt(why, whylen,
                         "a malformed length after '%c' (not Redis' protocol)",
                         s->type);
                return -1;
            }
            break;
        case S_NUM_LF:
            if (ch != '\n') {
                tkm__fmt(why, whylen,
                         "a malformed length after '%c' (not Redis' protocol)",
                         s->type);
                return -1;
            }
            if (header_done(s, why, whylen) != 0)
                return -1;
            break;
        case S_BULK: {
            size_t take = n - i;
            if ((int64_t)take > s->bulk_left)
                take = (size_t)s->bulk_left;
            s->bulk_left -= (int64_t)take;
            i += take - 1;
            if (s->bulk_left == 0)
                item_done(s);
            break;
        }
        default: /* S_DONE */
            tkm__fmt(why, whylen, "bytes after the end of its reply");
            return -1;
        }
    }
    return 0;
}

/* ---- one command ------------------------------------------------------ */

/*
 * Send argv on ctx and read its reply by `deadline` (monotonic ms).  *out
 * gets the reply (caller frees); on failure the code, and in why what
 * follows "Redis at HOST:PORT " (the caller drops the connection).
 */
static tkm_code exchange(redisContext *ctx, int64_t timeout_ms, int argc,
                         const char **argv, int64_t deadline, const char *what,
                         redisReply **out, char *why, size_t whylen)
{
    reply_scan scan = {.state = S_TYPE, .pending = 1};
    char bad[TKM__ERR_MAX];
    int done = 0;

    *out = NULL;
    if (redisAppendCommandArgv(ctx, argc, argv, NULL) != REDIS_OK)
        return ctx_failed(ctx, timeout_ms, what, why, whylen);
    while (!done) {
        /* A write blocks at most until the deadline. */
        struct timeval tv = ms_tv(deadline - tkm__monotonic_ms());
        if (deadline <= tkm__monotonic_ms())
            goto timeout;
        (void)setsockopt(ctx->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (redisBufferWrite(ctx, &done) != REDIS_OK)
            return ctx_failed(ctx, timeout_ms, what, why, whylen);
    }
    for (;;) {
        struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
        void *reply = NULL;
        char buf[16384];
        int64_t left;
        ssize_t n;
        int ready;

        if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
            return ctx_failed(ctx, timeout_ms, what, why, whylen);
        if (reply != NULL) {
            *out = reply;
            return TKM_OK;
        }
        left = deadline - tkm__monotonic_ms();
        if (left <= 0)
            goto timeout;
        ready = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            tkm__fmt(why, whylen, "failed during %s: %s", what,
                     strerror(errno));
            return TKM_EREDIS;
        }
        if (ready == 0)
            goto timeout;
        n = recv(ctx->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 &&
            (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0) {
            tkm__fmt(why, whylen, "failed during %s: %s", what,
                     n == 0 ? "the server closed the connection"
                            : strerror(errno));
            return TKM_EREDIS;
        }
        if (scan_reply(&scan, buf, (size_t)n, bad, sizeof(bad)) != 0) {
            tkm__fmt(why, whylen, "answered %s with %s: connection dropped",
                     what, bad);
            return TKM_EPROTO;
        }
        if (redisReaderFeed(ctx->reader, buf, (size_t)n) != REDIS_OK)
            return ctx_failed(ctx, timeout_ms, what, why, whylen);
    }
timeout:
    tkm__fmt(why, whylen, "did not answer %s within %lld ms", what,
             (long long)timeout_ms);
    return TKM_EREDIS;
}

/* A command on the master connection; on failure it is dropped. */
static tkm_code call(tkm_client *c, int argc, const char **argv,
                     int64_t deadline, const char *what, redisReply **out)
{
    char why[TKM__ERR_MAX];
    tkm_code rc = exchange(c->redis, c->opts.timeout_ms, argc, argv, deadline,
                           what, out, why, sizeof(why));

    if (rc != TKM_OK)
        return drop(c, rc, "%s", why);
    c->sentinels.last_reply_ms = tkm__monotonic_ms();
    return TKM_OK;
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
                              const char *what, int64_t deadline)
{
    redisReply *r;
    tkm_code rc = call(c, argc, argv, deadline, what, &r);

    if (rc != TKM_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = drop(c, TKM_EREDIS, "refused %s: %.200s", what, r->str);
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    return TKM_OK;
}

static redisContext *connect_to(const tkm__endpoint *ep, int64_t deadline)
{
    struct timeval left = ms_tv(deadline - tkm__monotonic_ms());

    if (ep->unix_socket)
        return redisConnectUnixWithTimeout(ep->path, left);
    return redisConnectWithTimeout(ep->host, ep->port, left);
}

/* Connect to ep as the master connection: AUTH and SELECT from the URL. */
static tkm_code open_master(tkm_client *c, const tkm__endpoint *ep,
                            int64_t deadline)
{
    struct timeval tv = ms_tv(c->opts.timeout_ms);
    redisContext *ctx;
    char where[600];
    char db[24];

    tkm__redis_close(c);
    ctx = connect_to(ep, deadline);
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
    /* Our reads are bounded by the call's deadline; this bounds hiredis'
     * own in any path we did not foresee. */
    if (redisSetTimeout(ctx, tv) != REDIS_OK)
        return hiredis_failed(c, "setting the timeout");
    if (c->url.password[0] != '\0') {
        const char *auth_user[] = {"AUTH", c->url.user, c->url.password};
        const char *auth[] = {"AUTH", c->url.password};
        tkm_code rc = c->url.user[0]
                          ? setup_command(c, 3, auth_user, "AUTH", deadline)
                          : setup_command(c, 2, auth, "AUTH", deadline);
        if (rc != TKM_OK)
            return rc;
    }
    if (c->url.db > 0) {
        const char *select[] = {"SELECT", db};
        snprintf(db, sizeof(db), "%lld", (long long)c->url.db);
        return setup_command(c, 2, select, "SELECT", deadline);
    }
    return TKM_OK;
}

/*
 * Run script id on the open master connection: EVALSHA, and EVAL when
 * the server does not know it yet.  *out: the reply, an error reply
 * included (caller frees).
 */
static tkm_code eval_script(tkm_client *c, tkm__script_id id, int nkeys,
                            const char *const *args, int nargs,
                            int64_t deadline, redisReply **out)
{
    const tkm__script *s = &tkm__scripts[id];
    const char *argv[MAX_ARGS];
    char numkeys[16];
    redisReply *r;
    tkm_code rc;

    *out = NULL;
    if (nargs + 3 > MAX_ARGS)
        return tkm__fail(c, TKM_EINVAL, "too many script arguments");
    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
    c->round_trips++;
    /* A read-only script goes as EVALSHA_RO: even uncached (a restarted
     * Redis, a new master), it is served under CLIENT PAUSE WRITE and on
     * replicas, where a plain EVAL of the same text would wait. */
    argv[0] = s->no_writes ? "EVALSHA_RO" : "EVALSHA";
    argv[1] = s->sha1;
    argv[2] = numkeys;
    memcpy(argv + 3, args, (size_t)nargs * sizeof(*args));
    rc = call(c, nargs + 3, argv, deadline, s->name, &r);
    if (rc == TKM_OK && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* First use on this server (or it restarted): send the text once. */
        freeReplyObject(r);
        c->round_trips++;
        argv[0] = s->no_writes ? "EVAL_RO" : "EVAL";
        argv[1] = s->text;
        rc = call(c, nargs + 3, argv, deadline, s->name, &r);
    }
    if (rc == TKM_OK)
        *out = r;
    return rc;
}

/* ---- Redis Sentinel ---------------------------------------------------- */

/* A command to sentinel i, connecting (and AUTH) first when needed.  On
 * failure why says what happened, and the connection is closed. */
static tkm_code sentinel_command(tkm_client *c, int i, int argc,
                                 const char **argv, int64_t deadline,
                                 const char *what, redisReply **out, char *why,
                                 size_t whylen)
{
    tkm__sentinels *s = &c->sentinels;
    redisContext *ctx = s->ctx[i];
    tkm_code rc;

    *out = NULL;
    if (ctx != NULL && connection_dead(ctx)) {
        sentinel_close(c, i);
        ctx = NULL;
    }
    if (ctx == NULL) {
        struct timeval tv = ms_tv(c->opts.timeout_ms);
        ctx = connect_to(&s->addr[i], deadline);
        if (ctx == NULL) {
            tkm__fmt(why, whylen, "(out of memory)");
            return TKM_ENOMEM;
        }
        if (ctx->err) {
            tkm__fmt(why, whylen, "cannot be reached (%s)", ctx->errstr);
            redisFree(ctx);
            return TKM_EREDIS;
        }
        (void)redisSetTimeout(ctx, tv);
        s->ctx[i] = ctx;
        if (s->password[0] != '\0') {
            const char *auth[] = {"AUTH", s->password};
            redisReply *r;
            rc = exchange(ctx, c->opts.timeout_ms, 2, auth, deadline, "AUTH",
                          &r, why, whylen);
            if (rc == TKM_OK && r->type == REDIS_REPLY_ERROR) {
                tkm__fmt(why, whylen,
                         "refused AUTH with redis.sentinel_password_file "
                         "(%.120s)",
                         r->str);
                rc = TKM_EREDIS;
            }
            if (r != NULL)
                freeReplyObject(r);
            if (rc != TKM_OK) {
                sentinel_close(c, i);
                return rc;
            }
        }
    }
    rc = exchange(ctx, c->opts.timeout_ms, argc, argv, deadline, what, out, why,
                  whylen);
    if (rc != TKM_OK)
        sentinel_close(c, i);
    return rc;
}

/* The configuration epoch sentinel i knows for the master (SENTINEL
 * MASTER's config-epoch), or -1 when it does not say. */
static int64_t sentinel_epoch(tkm_client *c, int i, int64_t deadline)
{
    const char *argv[] = {"SENTINEL", "MASTER", c->opts.sentinel.master_name};
    const char *fields[128];
    size_t lens[128];
    redisReply *r;
    int64_t epoch = -1;
    char why[TKM__ERR_MAX];

    if (sentinel_command(c, i, 3, argv, deadline, "SENTINEL MASTER", &r, why,
                         sizeof(why)) != TKM_OK)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements <= 128) {
        size_t n = 0;
        for (; n < r->elements; n++) {
            if (r->element[n]->type != REDIS_REPLY_STRING)
                break;
            fields[n] = r->element[n]->str;
            lens[n] = r->element[n]->len;
        }
        if (n == r->elements &&
            !tkm__field_int(fields, lens, n, "config-epoch", &epoch))
            epoch = -1;
    }
    freeReplyObject(r);
    return epoch;
}

/* Ask sentinel i where the master is: 1 and *ep (and the epoch it knows,
 * -1 when it does not say), or 0 and why not. */
static int ask_sentinel(tkm_client *c, int i, int64_t deadline,
                        tkm__endpoint *ep, int64_t *epoch, char *why,
                        size_t whylen)
{
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name",
                          c->opts.sentinel.master_name};
    redisReply *r;
    int64_t port;
    int ok = 0;

    if (sentinel_command(c, i, 3, argv, deadline, "SENTINEL", &r, why,
                         whylen) != TKM_OK)
        return 0;
    memset(ep, 0, sizeof(*ep));
    if (r->type == REDIS_REPLY_NIL) {
        tkm__fmt(why, whylen, "does not know a master named '%s'",
                 c->opts.sentinel.master_name);
    } else if (r->type == REDIS_REPLY_ERROR) {
        tkm__fmt(why, whylen, "refused: %.160s", r->str);
        if (strncmp(r->str, "NOAUTH", 6) == 0)
            sentinel_close(c, i); /* AUTH again next time */
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING ||
               r->element[0]->len == 0 ||
               r->element[0]->len >= sizeof(ep->host) ||
               tkm_parse_int(r->element[1]->str, 1, 65535, &port) != TKM_OK) {
        tkm__fmt(why, whylen, "answered something that is not an address");
    } else {
        memcpy(ep->host, r->element[0]->str, r->element[0]->len);
        ep->host[r->element[0]->len] = '\0';
        ep->port = (int)port;
        ok = 1;
    }
    freeReplyObject(r);
    if (ok && epoch != NULL)
        *epoch = sentinel_epoch(c, i, deadline);
    return ok;
}

/*
 * The master connection just opened: ROLE must say master, INFO names it,
 * and a master not seen before is noted, to be told to the pool.  On
 * failure the connection is dropped and c->err says why.
 */
static tkm_code confirm_master(tkm_client *c, int64_t deadline)
{
    const char *role[] = {"ROLE"};
    const char *info[] = {"INFO", "server"};
    char run_id[sizeof(c->sentinels.run_id)];
    redisReply *r;
    tkm_code rc;

    c->sentinels.pending[0] = '\0';
    c->round_trips++;
    rc = call(c, 1, role, deadline, "ROLE", &r);
    if (rc != TKM_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = drop(c, TKM_EREDIS,
                  "refused ROLE (%.160s), which Sentinel "
                  "discovery needs",
                  r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
               r->element[0]->type != REDIS_REPLY_STRING) {
        rc = drop(c, TKM_EPROTO, "answered ROLE with something unexpected");
    } else if (strcmp(r->element[0]->str, "master") != 0) {
        rc = drop(c, TKM_EREDIS, "is no master (ROLE: %.20s)",
                  r->element[0]->str);
    }
    freeReplyObject(r);
    if (rc != TKM_OK)
        return rc;
    c->round_trips++;
    rc = call(c, 2, info, deadline, "INFO", &r);
    if (rc != TKM_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = drop(c, TKM_EREDIS,
                  "refused INFO (%.160s), which Sentinel "
                  "discovery needs",
                  r->str);
    else if (r->type != REDIS_REPLY_STRING ||
             !tkm__info_run_id(r->str, r->len, run_id, sizeof(run_id)))
        rc = drop(c, TKM_EPROTO, "answered INFO server without a run_id");
    freeReplyObject(r);
    /* A master this client has not seen: told to the pool before the
     * first script that writes (reads are served under CLIENT PAUSE WRITE
     * and need no such write first). */
    if (rc == TKM_OK && strcmp(run_id, c->sentinels.run_id) != 0)
        tkm__copy(c->sentinels.pending, sizeof(c->sentinels.pending), run_id);
    return rc;
}

/* Tell the pool the master this connection reached (origin.lua), once:
 * the pool may have lost writes with the old one. */
static tkm_code tell_origin(tkm_client *c, int64_t deadline)
{
    tkm__sentinels *s = &c->sentinels;
    tkm__call k;
    redisReply *r;
    tkm_code rc;

    tkm__call_init(&k, c, TKM__CALL_ORIGIN);
    tkm__call_str(&k, s->pending);
    rc = eval_script(c, TKM__SCRIPT_ORIGIN, k.nkeys, k.argv, k.argc, deadline,
                     &r);
    if (rc != TKM_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = drop(c, TKM_EREDIS, "refused the origin script: %.200s", r->str);
    } else {
        tkm__copy(s->run_id, sizeof(s->run_id), s->pending);
        s->pending[0] = '\0';
    }
    freeReplyObject(r);
    return rc;
}

/* The time left until deadline, shared among `ways` (at least 1 ms). */
static int64_t share(int64_t deadline, int ways)
{
    int64_t left = deadline - tkm__monotonic_ms();

    return tkm__monotonic_ms() + (left > ways ? left / ways : 1);
}

/* Find the master: every sentinel's answer and epoch, then ROLE. */
static tkm_code discover(tkm_client *c, int64_t deadline)
{
    tkm__sentinels *s = &c->sentinels;
    tkm__sentinel_round r;
    int order[TKM_SENTINELS_MAX], n;
    char who[300], why[TKM__ERR_MAX];

    tkm__round_init(&r, s->count);
    for (int k = 0; k < s->count; k++) {
        int i = (s->first + k) % s->count;
        tkm__endpoint ep;
        int64_t epoch;
        tkm__endpoint_str(&s->addr[i], who, sizeof(who));
        if (deadline <= tkm__monotonic_ms()) {
            tkm__round_note(&r, who, "not asked: no time left");
            continue;
        }
        /* Each sentinel still to ask gets its share, and the master one. */
        if (ask_sentinel(c, i, share(deadline, s->count - k + 1), &ep, &epoch,
                         why, sizeof(why)))
            tkm__round_vote(&r, i, who, &ep, epoch);
        else
            tkm__round_note(&r, who, why);
    }
    n = tkm__round_order(&r, order);
    for (int k = 0; k < n; k++) {
        const tkm__endpoint *ep = &r.cand[order[k]].ep;
        int64_t until = share(deadline, n - k);
        tkm_code rc;
        s->master = *ep;
        rc = open_master(c, ep, until);
        if (rc == TKM_OK)
            rc = confirm_master(c, until);
        if (rc == TKM_OK) {
            s->first = r.cand[order[k]].first_voter;
            return TKM_OK;
        }
        if (rc == TKM_ENOMEM)
            return rc;
        tkm__round_note(&r, "then", c->err);
    }
    memset(&s->master, 0, sizeof(s->master));
    return tkm__fail(c, TKM_EREDIS,
                     "no Redis master named '%s' found through the "
                     "sentinels: %s",
                     c->opts.sentinel.master_name,
                     r.report[0] ? r.report : "none configured");
}

/*
 * Before an idle connection is used: does a sentinel still name its
 * server?  When one names another, the connection goes (the caller
 * rediscovers); when none answers, it stays: the master may well be fine.
 */
static void recheck(tkm_client *c, int64_t deadline)
{
    tkm__sentinels *s = &c->sentinels;
    int64_t until = share(deadline, 2);
    char why[TKM__ERR_MAX];

    for (int k = 0; k < s->count && tkm__monotonic_ms() < until; k++) {
        int i = (s->first + k) % s->count;
        tkm__endpoint ep;
        if (!ask_sentinel(c, i, share(until, s->count - k), &ep, NULL, why,
                          sizeof(why)))
            continue;
        if (!tkm__endpoint_eq(&ep, &s->master))
            tkm__redis_close(c);
        break;
    }
    s->last_reply_ms = tkm__monotonic_ms();
}

static tkm_code ensure_connected(tkm_client *c, int64_t deadline)
{
    tkm__endpoint plain;

    if (c->redis != NULL && connection_dead(c->redis))
        tkm__redis_close(c);
    if (c->sentinels.count > 0) {
        if (c->redis != NULL &&
            tkm__monotonic_ms() - c->sentinels.last_reply_ms >= RECHECK_IDLE_MS)
            recheck(c, deadline);
        return c->redis != NULL ? TKM_OK : discover(c, deadline);
    }
    if (c->redis != NULL)
        return TKM_OK;
    memset(&plain, 0, sizeof(plain));
    plain.unix_socket = c->url.unix_socket;
    tkm__copy(plain.host, sizeof(plain.host), c->url.host);
    plain.port = c->url.port;
    tkm__copy(plain.path, sizeof(plain.path), c->url.path);
    return open_master(c, &plain, deadline);
}

/* ---- scripts ----------------------------------------------------------- */

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
        {"TKMARG ", TKM_EINVAL, ""},
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

/* An error that says the server is no writable master, given before the
 * script wrote anything (a replica, a master without its replicas, a
 * server loading its data): the script did not run. */
static int not_master(const char *msg)
{
    static const char *const codes[] = {"READONLY ", "MASTERDOWN ",
                                        "NOREPLICAS ", "LOADING "};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strncmp(msg, codes[i], strlen(codes[i])) == 0)
            return 1;
    }
    return 0;
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
    int64_t deadline = tkm__monotonic_ms() + c->opts.timeout_ms;
    redisReply *r;
    tkm_code rc;

    *reply = NULL;
    if (nargs + 3 > MAX_ARGS)
        return tkm__fail(c, TKM_EINVAL, "too many script arguments");
    for (int attempt = 0;; attempt++) {
        rc = ensure_connected(c, deadline);
        if (rc == TKM_OK && c->sentinels.pending[0] != '\0' && !s->no_writes)
            rc = tell_origin(c, deadline);
        if (rc != TKM_OK)
            return rc;
        rc = eval_script(c, id, nkeys, args, nargs, deadline, &r);
        if (rc != TKM_OK)
            return rc;
        if (c->sentinels.count > 0 && attempt == 0 &&
            r->type == REDIS_REPLY_ERROR && not_master(r->str)) {
            /* Demoted, or cut off from its replicas: nothing ran, so the
             * script goes once more to the master the sentinels name. */
            char msg[160];
            tkm__fmt(msg, sizeof(msg), "%.150s", r->str);
            freeReplyObject(r);
            drop(c, TKM_EREDIS, "answered the %s script with %s", s->name, msg);
            continue;
        }
        break;
    }
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
