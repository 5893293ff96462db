/*
 * The connection to Redis: the only file that talks to hiredis.  Connects
 * lazily, drops a broken connection so the next call reconnects, and runs
 * the Lua scripts with EVALSHA (EVAL when Redis answers NOSCRIPT).
 *
 * Whatever the peer on the Redis port does, a call ends within timeout_ms
 * and a reply stays small:
 * - a call has one deadline for all it does (connecting, AUTH, SELECT, the
 *   script and its NOSCRIPT retry): hiredis bounds each read, so a peer
 *   trickling a byte every 200 ms held a 500 ms call for seconds;
 * - we read the socket ourselves and check every reply header against the
 *   bounds below before hiredis' reader sees the bytes: hiredis 0.14 has no
 *   element limit and allocates an array as soon as it reads "*N" (a peer
 *   answering *1000000000 made it ask for 8 GB).
 * A call that breaks a bound drops the connection.
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

static tkm_code timed_out(tkm_client *c, const char *what)
{
    return drop(c, TKM_EREDIS, "did not answer %s within %lld ms", what,
                (long long)c->opts.timeout_ms);
}

/* hiredis failed (ctx->err): a write, the reader, or memory. */
static tkm_code hiredis_failed(tkm_client *c, const char *what)
{
    redisContext *ctx = c->redis;
    int again =
        ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

    if (again)
        return timed_out(c, what);
    if (ctx->err == REDIS_ERR_PROTOCOL)
        return drop(c, TKM_EPROTO,
                    "answered %s with something that is not Redis' "
                    "protocol: %s",
                    what, ctx->errstr);
    return drop(c, ctx->err == REDIS_ERR_OOM ? TKM_ENOMEM : TKM_EREDIS,
                "failed during %s: %s", what,
                ctx->errstr[0] ? ctx->errstr : "connection lost");
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
 * Send argv and read its reply by `deadline` (monotonic ms).  *out gets
 * the reply (caller frees); on failure the connection is dropped.
 */
static tkm_code call(tkm_client *c, int argc, const char **argv,
                     int64_t deadline, const char *what, redisReply **out)
{
    redisContext *ctx = c->redis;
    reply_scan scan = {.state = S_TYPE, .pending = 1};
    char why[TKM__ERR_MAX];
    int done = 0;

    *out = NULL;
    if (redisAppendCommandArgv(ctx, argc, argv, NULL) != REDIS_OK)
        return hiredis_failed(c, what);
    while (!done) {
        /* A write blocks at most until the deadline. */
        struct timeval tv = ms_tv(deadline - tkm__monotonic_ms());
        if (deadline <= tkm__monotonic_ms())
            return timed_out(c, what);
        (void)setsockopt(ctx->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (redisBufferWrite(ctx, &done) != REDIS_OK)
            return hiredis_failed(c, what);
    }
    for (;;) {
        struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
        void *reply = NULL;
        char buf[16384];
        int64_t left;
        ssize_t n;
        int ready;

        if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
            return hiredis_failed(c, what);
        if (reply != NULL) {
            *out = reply;
            return TKM_OK;
        }
        left = deadline - tkm__monotonic_ms();
        if (left <= 0)
            return timed_out(c, what);
        ready = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return drop(c, TKM_EREDIS, "failed during %s: %s", what,
                        strerror(errno));
        if (ready == 0)
            return timed_out(c, what);
        n = recv(ctx->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 &&
            (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return drop(c, TKM_EREDIS, "failed during %s: %s", what,
                        n == 0 ? "the server closed the connection"
                               : strerror(errno));
        if (scan_reply(&scan, buf, (size_t)n, why, sizeof(why)) != 0)
            return drop(c, TKM_EPROTO,
                        "answered %s with %s: connection dropped", what, why);
        if (redisReaderFeed(ctx->reader, buf, (size_t)n) != REDIS_OK)
            return hiredis_failed(c, what);
    }
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

static tkm_code ensure_connected(tkm_client *c, int64_t deadline)
{
    struct timeval tv = ms_tv(c->opts.timeout_ms);
    struct timeval left = ms_tv(deadline - tkm__monotonic_ms());
    redisContext *ctx;
    char where[600];
    char db[24];

    if (c->redis != NULL && !connection_dead(c->redis))
        return TKM_OK;
    tkm__redis_close(c);
    if (c->url.unix_socket)
        ctx = redisConnectUnixWithTimeout(c->url.path, left);
    else
        ctx = redisConnectWithTimeout(c->url.host, c->url.port, left);
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
    int64_t deadline = tkm__monotonic_ms() + c->opts.timeout_ms;
    char numkeys[16];
    redisReply *r;
    tkm_code rc;

    *reply = NULL;
    if (nargs + 3 > MAX_ARGS)
        return tkm__fail(c, TKM_EINVAL, "too many script arguments");
    rc = ensure_connected(c, deadline);
    if (rc != TKM_OK)
        return rc;
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
    if (rc != TKM_OK)
        return rc;
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
