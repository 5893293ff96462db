/*
 * Recovery actions that can neither block the monitor nor be lost.
 *
 * A command runs under a supervising child: collectd's read thread only
 * forks; the supervisor starts the command in a process group of its own,
 * captures its output, kills the whole group at the deadline, and sends the
 * result back through a socket.  The command is the supervisor's child, not
 * the daemon's, so a daemon that reaps every child (collectd's exec plugin)
 * cannot take its exit status.  Everything between fork and exec is
 * async-signal-safe: the daemon is multi-threaded.
 *
 * A webhook runs in a detached thread that reports the same way.
 *
 * Freeing an action that still runs asks its supervisor, through the same
 * socket, to kill the command's group at once: only the supervisor knows
 * the group, and killing the supervisor alone would leave the command
 * running with nobody to enforce its deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "internal.h"
#include "jsonw.h"

#define MAX_ARGV 64
#define ENV_MAX  8
#define ENV_LEN  2048
/* What tkm_action_free sends the supervisor: kill the group now. */
#define CANCEL_BYTE 'K'
/* How long tkm_action_free waits for the supervisor to have done it. */
#define CANCEL_WAIT_MS 2000

struct tkm_action {
    int fd;    /* our end of the result socket */
    pid_t pid; /* the supervisor (exec), 0 for a webhook */
    int64_t started_ms;
    tkm_action_result result;
    int finished;
    int reaped;   /* the supervisor was waited for (or by someone else) */
    int detached; /* tkm__action_detach: left to its deadline */
    int threaded; /* a webhook: its thread, joined once it has reported */
    pthread_t thread;
};

TKM_EXPORT tkm_code tkm_action_check_argv(const char *const *argv, char *errbuf,
                                          size_t errlen)
{
    struct stat st;
    size_t n = 0;

    while (argv != NULL && argv[n] != NULL)
        n++;
    if (n == 0 || argv[0][0] == '\0') {
        tkm__fmt(errbuf, errlen, "Exec needs a command");
        return TKM_ECONFIG;
    }
    if (n >= MAX_ARGV) {
        tkm__fmt(errbuf, errlen, "Exec has more than %d arguments",
                 MAX_ARGV - 1);
        return TKM_ECONFIG;
    }
    if (argv[0][0] != '/') {
        tkm__fmt(errbuf, errlen,
                 "Exec \"%s\": the command must be an absolute path (no "
                 "PATH lookup, no shell)",
                 argv[0]);
        return TKM_ECONFIG;
    }
    if (stat(argv[0], &st) != 0) {
        tkm__fmt(errbuf, errlen, "Exec \"%s\": %s", argv[0], strerror(errno));
        return TKM_ECONFIG;
    }
    if (!S_ISREG(st.st_mode) || access(argv[0], X_OK) != 0) {
        tkm__fmt(errbuf, errlen, "Exec \"%s\" is not an executable file",
                 argv[0]);
        return TKM_ECONFIG;
    }
    return TKM_OK;
}

/* Keep only what may be passed on: printable text, valid ids. */
static void clean_text(const char *in, char *out, size_t len)
{
    size_t n = 0;

    for (const char *p = in ? in : ""; *p && n + 1 < len; p++)
        out[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    out[n] = '\0';
}

static void clean_workers(const char *in, char *out, size_t len)
{
    char id[TKM_WORKER_ID_MAX + 2];
    size_t n = 0;

    out[0] = '\0';
    while (in != NULL && *in) {
        size_t k = strcspn(in, ",");
        if (k < sizeof(id)) {
            memcpy(id, in, k);
            id[k] = '\0';
            if (tkm__worker_id_valid(id) && n + k + 2 < len) {
                if (n > 0)
                    out[n++] = ',';
                memcpy(out + n, id, k + 1);
                n += k;
            }
        }
        in += k + (in[k] == ',');
    }
}

/* Validated copies of the context, shared by both kinds of action. */
typedef struct context {
    char pool[TKM_POOL_MAX + 1];
    char reason[512];
    char workers[1024];
    char action_id[64];
    int64_t tokens;
    int64_t heartbeat_age_s;
} context;

static tkm_code make_context(const tkm_action_env *env, context *ctx,
                             char *errbuf, size_t errlen)
{
    if (env->pool == NULL || !tkm__pool_name_valid(env->pool)) {
        tkm__fmt(errbuf, errlen, "action: invalid pool name");
        return TKM_EINVAL;
    }
    tkm__fmt(ctx->pool, sizeof(ctx->pool), "%s", env->pool);
    clean_text(env->reason, ctx->reason, sizeof(ctx->reason));
    clean_workers(env->stale_workers, ctx->workers, sizeof(ctx->workers));
    clean_text(env->action_id, ctx->action_id, sizeof(ctx->action_id));
    for (char *p = ctx->action_id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              *p == '-'))
            *p = '_';
    }
    ctx->tokens = env->tokens;
    ctx->heartbeat_age_s = env->heartbeat_age_s;
    return TKM_OK;
}

static tkm_action *new_action(int fd)
{
    tkm_action *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->fd = fd;
    a->started_ms = tkm__monotonic_ms();
    return a;
}

/* ---- exec -----------------------------------------------------------------
 */

/*
 * The supervisor's loop: only async-signal-safe calls from here on.  It
 * ends when the command ends, at the deadline, or when the parent sends
 * CANCEL_BYTE on result_fd; the last two kill the command's whole group.
 * A parent that goes away without a word leaves the deadline in charge.
 */
static void supervise(pid_t child, int out_fd, int result_fd, int64_t deadline)
{
    tkm_action_result r;
    int status = -1, reaped = 0, eof = 0, parent_gone = 0, canceled = 0;
    size_t used = 0;

    memset(&r, 0, sizeof(r));
    r.done = 1;
    while (!reaped) {
        int64_t left = deadline - tkm__monotonic_ms();
        int slice = eof ? 20 : 50;
        struct pollfd p[2] = {
            {.fd = eof ? -1 : out_fd, .events = POLLIN},
            {.fd = parent_gone ? -1 : result_fd, .events = POLLIN}};
        if (left <= 0 || canceled) {
            kill(-child, SIGKILL); /* the whole group, descendants too */
            r.timed_out = !canceled;
            if (waitpid(child, &status, 0) != child)
                status = -1;
            reaped = 1;
            break;
        }
        if (poll(p, 2, left < slice ? (int)left : slice) > 0) {
            if (p[1].revents != 0) {
                char cmd;
                ssize_t n = recv(result_fd, &cmd, 1, MSG_DONTWAIT);
                if (n == 1 && cmd == CANCEL_BYTE)
                    canceled = 1;
                else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                    parent_gone = 1;
            }
            if (p[0].revents != 0) {
                char buf[512];
                ssize_t n = read(out_fd, buf, sizeof(buf));
                if (n <= 0) {
                    eof = 1;
                } else if (used + 1 < sizeof(r.output)) {
                    size_t take = (size_t)n;
                    if (take > sizeof(r.output) - 1 - used)
                        take = sizeof(r.output) - 1 - used;
                    memcpy(r.output + used, buf, take);
                    used += take;
                }
            }
        }
        if (waitpid(child, &status, WNOHANG) == child)
            reaped = 1;
    }
    if (status != -1 && WIFEXITED(status)) {
        r.exit_status = WEXITSTATUS(status);
    } else {
        r.exit_status = -1;
        r.signal = status != -1 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    /* Leftovers of the group (it may have forked) go with it. */
    kill(-child, SIGKILL);
    r.output[used] = '\0';
    r.duration_ms = 0; /* the parent measures it */
    (void)!send(result_fd, &r, sizeof(r), MSG_NOSIGNAL);
}

TKM_EXPORT tkm_code tkm_action_exec(const char *const *argv,
                                    const tkm_action_env *env,
                                    int64_t timeout_ms, tkm_action **out,
                                    char *errbuf, size_t errlen)
{
    char envbuf[ENV_MAX][ENV_LEN];
    char *envp[ENV_MAX + 1];
    char *args[MAX_ARGV];
    context ctx;
    int sv[2], outp[2], devnull;
    long maxfd = sysconf(_SC_OPEN_MAX);
    int64_t deadline;
    pid_t pid;
    size_t n = 0;
    tkm_action *a;
    tkm_code rc;

    *out = NULL;
    rc = tkm_action_check_argv(argv, errbuf, errlen);
    if (rc == TKM_OK)
        rc = make_context(env, &ctx, errbuf, errlen);
    if (rc != TKM_OK)
        return rc;
    for (; argv[n] != NULL; n++)
        args[n] = (char *)argv[n];
    args[n] = NULL;
    snprintf(envbuf[0], ENV_LEN, "TOKENMGR_POOL=%s", ctx.pool);
    snprintf(envbuf[1], ENV_LEN, "TOKENMGR_REASON=%s", ctx.reason);
    snprintf(envbuf[2], ENV_LEN, "TOKENMGR_TOKENS=%lld", (long long)ctx.tokens);
    snprintf(envbuf[3], ENV_LEN, "TOKENMGR_HEARTBEAT_AGE=%lld",
             (long long)ctx.heartbeat_age_s);
    snprintf(envbuf[4], ENV_LEN, "TOKENMGR_STALE_WORKERS=%s", ctx.workers);
    snprintf(envbuf[5], ENV_LEN, "TOKENMGR_ACTION_ID=%s", ctx.action_id);
    snprintf(envbuf[6], ENV_LEN,
             "PATH=/usr/local/sbin:/usr/local/bin:"
             "/usr/sbin:/usr/bin:/sbin:/bin");
    for (int i = 0; i < 7; i++)
        envp[i] = envbuf[i];
    envp[7] = NULL;
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;

    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(outp, O_CLOEXEC) != 0) {
        tkm__fmt(errbuf, errlen, "action: %s", strerror(errno));
        if (devnull >= 0)
            close(devnull);
        return TKM_EIO;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        tkm__fmt(errbuf, errlen, "action: %s", strerror(errno));
        close(devnull);
        close(outp[0]);
        close(outp[1]);
        return TKM_EIO;
    }
    a = new_action(sv[0]);
    if (a == NULL) {
        close(devnull);
        close(outp[0]);
        close(outp[1]);
        close(sv[0]);
        close(sv[1]);
        return TKM_ENOMEM;
    }
    deadline = tkm__monotonic_ms() + timeout_ms;
    pid = fork();
    if (pid == 0) {
        sigset_t none;
        pid_t child;
        struct sigaction dfl;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* The daemon's handlers do not apply here; a SIGCHLD handler that
         * reaps everything would take the command's status. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        child = fork();
        if (child == 0) {
            setpgid(0, 0);
            dup2(devnull, 0);
            dup2(outp[1], 1);
            dup2(outp[1], 2);
            for (long fd = 3; fd < maxfd; fd++)
                close((int)fd);
            execve(args[0], args, envp);
            _exit(127);
        }
        if (child < 0)
            _exit(1);
        setpgid(child, child);
        close(outp[1]);
        supervise(child, outp[0], sv[1], deadline);
        _exit(0);
    }
    close(devnull);
    close(outp[0]);
    close(outp[1]);
    close(sv[1]);
    if (pid < 0) {
        tkm__fmt(errbuf, errlen, "action: fork: %s", strerror(errno));
        close(sv[0]);
        free(a);
        return TKM_EIO;
    }
    a->pid = pid;
    *out = a;
    return TKM_OK;
}

/* ---- webhook --------------------------------------------------------------
 */

typedef struct webhook_job {
    char url[TKM_URL_MAX + 1];
    /* Every text field of a context, escaped at worst 6 times over, and
     * the rest of the object: never cut. */
    char body[6 * sizeof(context) + 256];
    int64_t timeout_ms;
    int fd;
} webhook_job;

static void *webhook_thread(void *arg)
{
    webhook_job *job = arg;
    tkm_action_result r;

    memset(&r, 0, sizeof(r));
    r.done = 1;
    if (tkm__http_post_json(job->url, job->body, job->timeout_ms,
                            &r.http_status, r.output,
                            sizeof(r.output)) == TKM_OK &&
        r.http_status >= 200 && r.http_status < 300)
        r.exit_status = 0;
    else
        r.exit_status = 1;
    r.timed_out = strstr(r.output, "timed out") != NULL;
    (void)!send(job->fd, &r, sizeof(r), MSG_NOSIGNAL);
    close(job->fd);
    free(job);
    return NULL;
}

TKM_EXPORT tkm_code tkm_action_webhook(const char *url,
                                       const tkm_action_env *env,
                                       int64_t timeout_ms, tkm_action **out,
                                       char *errbuf, size_t errlen)
{
    context ctx;
    char reason[TKM__JSONW_MAX(sizeof(ctx.reason))];
    char workers[TKM__JSONW_MAX(sizeof(ctx.workers))];
    char pool[TKM__JSONW_MAX(sizeof(ctx.pool))];
    char id[TKM__JSONW_MAX(sizeof(ctx.action_id))];
    webhook_job *job;
    int sv[2];
    tkm_action *a;
    tkm_code rc;

    *out = NULL;
    rc = tkm__http_url_check("Webhook", url, 0, errbuf, errlen);
    if (rc == TKM_OK)
        rc = make_context(env, &ctx, errbuf, errlen);
    if (rc != TKM_OK)
        return rc;
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return TKM_ENOMEM;
    tkm__jsonw_escape(pool, sizeof(pool), ctx.pool, strlen(ctx.pool), NULL);
    tkm__jsonw_escape(reason, sizeof(reason), ctx.reason, strlen(ctx.reason),
                      NULL);
    tkm__jsonw_escape(workers, sizeof(workers), ctx.workers,
                      strlen(ctx.workers), NULL);
    tkm__jsonw_escape(id, sizeof(id), ctx.action_id, strlen(ctx.action_id),
                      NULL);
    snprintf(job->body, sizeof(job->body),
             "{\"pool\":\"%s\",\"reason\":\"%s\",\"tokens\":%lld,"
             "\"heartbeat_age_s\":%lld,\"stale_workers\":\"%s\","
             "\"action_id\":\"%s\"}",
             pool, reason, (long long)ctx.tokens,
             (long long)ctx.heartbeat_age_s, workers, id);
    tkm__fmt(job->url, sizeof(job->url), "%s", url);
    job->timeout_ms = timeout_ms;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        tkm__fmt(errbuf, errlen, "webhook: %s", strerror(errno));
        free(job);
        return TKM_EIO;
    }
    job->fd = sv[1];
    a = new_action(sv[0]);
    if (a == NULL) {
        close(sv[0]);
        close(sv[1]);
        free(job);
        return TKM_ENOMEM;
    }
    if (pthread_create(&a->thread, NULL, webhook_thread, job) != 0) {
        tkm__fmt(errbuf, errlen, "webhook: cannot start a thread");
        close(sv[0]);
        close(sv[1]);
        free(job);
        free(a);
        return TKM_EIO;
    }
    a->threaded = 1;
    *out = a;
    return TKM_OK;
}

/* ---- results ----------------------------------------------------------------
 */

static tkm_code collect(tkm_action *a, int timeout, tkm_action_result *r)
{
    struct pollfd p = {.fd = a->fd, .events = POLLIN};

    if (!a->finished && poll(&p, 1, timeout) > 0) {
        ssize_t n = recv(a->fd, &a->result, sizeof(a->result), MSG_WAITALL);
        if (n != (ssize_t)sizeof(a->result)) {
            memset(&a->result, 0, sizeof(a->result));
            a->result.exit_status = -1;
            tkm__fmt(a->result.output, sizeof(a->result.output),
                     "the action's supervisor ended without a result");
        }
        a->result.done = 1;
        a->result.duration_ms = tkm__monotonic_ms() - a->started_ms;
        a->finished = 1;
        if (a->pid > 0 && waitpid(a->pid, NULL, WNOHANG) != 0)
            a->reaped = 1; /* by us, or (-1) elsewhere */
    }
    *r = a->result;
    if (!a->finished) {
        r->done = 0;
        r->duration_ms = tkm__monotonic_ms() - a->started_ms;
    }
    return TKM_OK;
}

TKM_EXPORT tkm_code tkm_action_poll(tkm_action *a, tkm_action_result *r)
{
    return collect(a, 0, r);
}

TKM_EXPORT tkm_code tkm_action_wait(tkm_action *a, tkm_action_result *r)
{
    return collect(a, -1, r);
}

void tkm__action_detach(tkm_action *a)
{
    if (a != NULL)
        a->detached = 1;
}

TKM_EXPORT void tkm_action_free(tkm_action *a)
{
    if (a == NULL)
        return;
    if (a->threaded) {
        /* Reported: the thread is ending, join it (so that its libraries'
         * per-thread state is freed before the caller may exit).  Else it
         * ends by its own timeout. */
        if (a->finished)
            pthread_join(a->thread, NULL);
        else
            pthread_detach(a->thread);
    }
    if (a->detached && !a->finished) {
        /* The supervisor sees us gone and keeps the deadline. */
        close(a->fd);
        free(a);
        return;
    }
    if (!a->finished && a->pid > 0) {
        struct pollfd p = {.fd = a->fd, .events = POLLIN};
        /* Readable: the supervisor already reported or died.  Otherwise it
         * kills the group on our word and reports once the group leader
         * is reaped; if it cannot (stopped, stuck), at least it dies. */
        if (poll(&p, 1, 0) == 0 && (send(a->fd, (char[]){CANCEL_BYTE}, 1,
                                         MSG_NOSIGNAL | MSG_DONTWAIT) != 1 ||
                                    poll(&p, 1, CANCEL_WAIT_MS) <= 0))
            kill(a->pid, SIGKILL);
    }
    /* It has reported or been killed: the wait is short.  (-1 when a
     * daemon that reaps every child took it.) */
    if (a->pid > 0 && !a->reaped)
        waitpid(a->pid, NULL, 0);
    close(a->fd);
    free(a);
}
