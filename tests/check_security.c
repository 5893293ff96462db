/*
 * Security: the least-privilege ACL users of conf/redis-acl.conf enforced
 * by a real redis-server (worker and monitor operations pass, anything else
 * is refused), secrets kept out of messages, argv and a recovery command's
 * environment, secret files refused when group or others may read them,
 * and the size limits on text from outside.
 *
 * The server listens on a Unix socket (the test's own unauthenticated
 * administrator, `default`) and on a free loopback TCP port (the users
 * authenticate through redis://user:password@127.0.0.1:port URLs).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tkt.h"

#define WORKER_PW  "wOrkerPassw0rd7"
#define MONITOR_PW "m0nitorPassw0rd9"
#define KEEPA_KEY  "SecretKeepaKey1234567890abcdef"

/* The suite's server (tkt_server), named srv in the tests: its folder
 * (dir), Unix socket (sock) and loopback TCP port (port). */
#define srv tkt_server

/* conf/redis-acl.conf with the two passwords put in, and the test's own
 * administrator on the default user. */
static void write_acl_file(const char *path)
{
    char line[2048];
    FILE *in = fopen(TKM_SOURCE_DIR "/conf/redis-acl.conf", "r");
    FILE *out = fopen(path, "w");

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while (fgets(line, sizeof(line), in) != NULL) {
        char *p;
        if (line[0] == '#' || line[0] == '\n')
            continue; /* Redis' ACL files take no comments */
        if ((p = strstr(line, "@WORKER_PASSWORD@")) != NULL)
            fprintf(out, "%.*s%s%s", (int)(p - line), line, WORKER_PW,
                    p + strlen("@WORKER_PASSWORD@"));
        else if ((p = strstr(line, "@MONITOR_PASSWORD@")) != NULL)
            fprintf(out, "%.*s%s%s", (int)(p - line), line, MONITOR_PW,
                    p + strlen("@MONITOR_PASSWORD@"));
        else
            fputs(line, out);
    }
    fputs("user default on nopass ~* &* +@all\n", out);
    fclose(in);
    fclose(out);
}

/* The redis fixture with the ACL file, on a free loopback port too. */
static void acl_setup(void)
{
    static char acl[320];
    static const char *args[] = {"--aclfile", acl, NULL};

    if (tkt_redis_init(&srv) != 0)
        _exit(2);
    snprintf(acl, sizeof(acl), "%s/users.acl", srv.dir);
    write_acl_file(acl);
    srv.port = tkt_free_port();
    srv.args = args;
    if (tkt_redis_spawn(&srv) != 0) {
        fprintf(stderr, "redis-server with the ACL file did not start\n");
        _exit(2);
    }
}

static redisContext *admin(void)
{
    return tkt_raw();
}

static int free_port(void)
{
    return tkt_free_port();
}

static tkm_options user_options(const char *user, const char *pw)
{
    tkm_options o;

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "redis://%s:%s@127.0.0.1:%d/0",
             user, pw, srv.port);
    return o;
}

/* A raw TCP connection authenticated as `user`. */
static redisContext *raw_as(const char *user, const char *pw)
{
    redisContext *r = redisConnect("127.0.0.1", srv.port);
    redisReply *rep;

    ck_assert(r != NULL && r->err == 0);
    rep = redisCommand(r, "AUTH %s %s", user, pw);
    ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    return r;
}

/* The command is refused by the ACL: NOPERM for a command; "can't
 * access", "can't run" or "no permissions" for what a script calls, as
 * Redis 7 words them. */
static void refused(redisContext *r, const char *what, int argc,
                    const char **argv)
{
    redisReply *rep = redisCommandArgv(r, argc, argv, NULL);

    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(rep->type == REDIS_REPLY_ERROR &&
                      (strstr(rep->str, "NOPERM") != NULL ||
                       strstr(rep->str, "can't access") != NULL ||
                       strstr(rep->str, "can't run") != NULL ||
                       strstr(rep->str, "no permissions") != NULL),
                  "%s was not refused: %s", what,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "(allowed)");
    freeReplyObject(rep);
}

#define REFUSED(r, ...)                                                        \
    do {                                                                       \
        const char *argv_[] = {__VA_ARGS__};                                   \
        refused(r, #__VA_ARGS__, (int)(sizeof(argv_) / sizeof(argv_[0])),      \
                argv_);                                                        \
    } while (0)

#define OK(c, call)                                                            \
    ck_assert_msg((call) == TKM_OK, "%s: %s", #call, tkm_errstr(c))

START_TEST(test_worker_acl)
{
    tkm_options o = user_options("tokenmgr-worker", WORKER_PW);
    tkm_client *c = tkt_open(&o);
    tkm_sync_info in = {300, 5, 60000, -1};
    tkm_recovery_options ro;
    tkm_recovery_ticket t;
    tkm_worker *w = NULL;
    size_t nw = 0;
    tkm_grant g;
    int64_t deleted = 0;
    redisContext *r;

    OK(c, tkm_sync(c, &in, NULL));
    OK(c, tkm_try_acquire(c, 10, &g));
    ck_assert_int_eq(g.granted, 1);
    OK(c, tkm_complete(c, g.id, 8, NULL, NULL));
    OK(c, tkm_try_acquire(c, 5, &g));
    OK(c, tkm_release(c, g.id, NULL));
    OK(c, tkm_heartbeat(c, "batch 1/2"));
    OK(c, tkm_heartbeat_busy(c, "writing", 30));
    OK(c, tkm_workers(c, &w, &nw));
    ck_assert_uint_eq(nw, 1);
    tkm_workers_free(w);
    tkm_recovery_options_init(&ro);
    ro.dry_run = 1;
    OK(c, tkm_recovery_decide(c, &ro, "manual", "host", "alert", "", "", &t));
    OK(c, tkm_reset(c, &deleted));
    ck_assert_int_gt(deleted, 0);
    tkm_client_free(c);

    r = raw_as("tokenmgr-worker", WORKER_PW);
    REFUSED(r, "FLUSHALL");
    /* SET is the /token throttle's: allowed on tokenmgr:* only (an ACL
     * cannot confine a command to scripts; SECURITY.md). */
    REFUSED(r, "SET", "other", "x");
    REFUSED(r, "HSET", "keepa_tokens_left", "a", "1");
    REFUSED(r, "KEYS", "*");
    REFUSED(r, "CONFIG", "GET", "*");
    REFUSED(r, "GET", "keepa_tokens_left"); /* no legacy keys */
    /* Scripts run with the caller's rights: no key outside tokenmgr:*. */
    REFUSED(r, "EVAL", "return redis.call('SET', 'other', '1')", "0");
    REFUSED(r, "EVAL", "return redis.call('FLUSHALL')", "0");
    redisFree(r);
}
END_TEST

START_TEST(test_monitor_acl)
{
    tkm_options wo = user_options("tokenmgr-worker", WORKER_PW);
    tkm_options mo = user_options("tokenmgr-monitor", MONITOR_PW);
    tkm_client *worker = tkt_open(&wo), *c = tkt_open(&mo);
    tkm_sync_info in = {300, 5, 60000, -1};
    tkm_recovery_options ro;
    tkm_recovery_ticket t;
    tkm_recovery_state rs;
    tkm_pool_status st;
    tkm_legacy_raw raw;
    tkm_worker *w = NULL;
    size_t nw = 0;
    redisContext *r = admin();

    freeReplyObject(tkt_cmd(r, "SET keepa_tokens_left 295.0"));
    freeReplyObject(tkt_cmd(r, "SET keepa_refill_rate 5.0"));
    redisFree(r);
    OK(worker, tkm_sync(worker, &in, NULL));
    OK(worker, tkm_heartbeat(worker, "working"));

    OK(c, tkm_status(c, &st));
    ck_assert_int_eq(st.synced, 1);
    OK(c, tkm_workers(c, &w, &nw));
    ck_assert_uint_eq(nw, 1);
    tkm_workers_free(w);
    OK(c, tkm_legacy_read(c, &raw));
    ck_assert_int_eq(raw.value[TKM_LEGACY_TOKENS_LEFT].present, 1);
    tkm_recovery_options_init(&ro);
    OK(c, tkm_recovery_observe(c, &ro, "host", TKM_STALL_OK, 1000, &rs));
    OK(c, tkm_recovery_decide(c, &ro, "stalled", "host", "stalled", "in",
                              "/bin/true", &t));
    ck_assert_int_eq(t.decision, TKM_DECIDE_ACT);
    OK(c, tkm_recovery_finish(c, &t, "host", "ok", 0, 12, "done"));
    tkm_client_free(c);
    tkm_client_free(worker);

    r = raw_as("tokenmgr-monitor", MONITOR_PW);
    REFUSED(r, "FLUSHALL");
    REFUSED(r, "SCAN", "0"); /* it never resets a pool */
    REFUSED(r, "SET", "keepa_tokens_left", "1000");
    REFUSED(r, "EVAL", "return redis.call('SET', KEYS[1], '1')", "1",
            "keepa_tokens_left"); /* legacy keys: read only */
    REFUSED(r, "EVAL", "return redis.call('DEL', 'other')", "0");
    REFUSED(r, "SUBSCRIBE", "x");
    redisFree(r);
}
END_TEST

/* A refused AUTH says so, without the password. */
START_TEST(test_auth_error_hides_password)
{
    tkm_options o = user_options("tokenmgr-worker", "Wr0ngPassw0rdXYZ");
    tkm_client *c = tkt_open(&o);
    tkm_pool_status st;

    ck_assert_int_eq(tkm_status(c, &st), TKM_EREDIS);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "AUTH"));
    ck_assert_ptr_null(strstr(tkm_errstr(c), "Wr0ngPassw0rdXYZ"));
    tkm_client_free(c);
}
END_TEST

static void write_file(const char *path, const char *text, mode_t mode)
{
    ck_assert_int_eq(tkt_write_file(path, text, mode), 0);
}

START_TEST(test_password_file)
{
    char path[400], yaml[400], err[512];
    tkm_options o;
    tkm_client *c = NULL;
    tkm_pool_status st;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/redis.password", srv.dir);
    snprintf(yaml, sizeof(yaml), "%s/tokenmgr.yaml", srv.dir);
    write_file(path, WORKER_PW "\n", 0600);
    fp = fopen(yaml, "w");
    fprintf(fp,
            "pool: t\nredis:\n  url: redis://tokenmgr-worker:@127.0.0.1:%d/0\n"
            "  password_file: %s\n",
            srv.port, path);
    fclose(fp);
    tkm_options_init(&o);
    ck_assert_int_eq(tkm_config_load_file(yaml, &o, err, sizeof(err)), TKM_OK);
    ck_assert_str_eq(o.redis_password_file, path);
    c = tkt_open(&o);
    OK(c, tkm_status(c, &st));
    tkm_client_free(c);

    /* Readable by the group: refused, and said so in one line. */
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "redis.password_file"));
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "group or others"));
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "chmod 600"));
    ck_assert_ptr_null(strstr(tkm_errstr(c), WORKER_PW));
    ck_assert_ptr_null(strchr(tkm_errstr(c), '\n'));
    tkm_client_free(c);
    ck_assert_int_eq(chmod(path, 0604), 0);
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    tkm_client_free(c);

    /* A wrong password from the file: refused by Redis, never shown. */
    write_file(path, "n0tTheRightOne99\n", 0600);
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_status(c, &st), TKM_EREDIS);
    ck_assert_ptr_null(strstr(tkm_errstr(c), "n0tTheRightOne99"));
    tkm_client_free(c);
    unlink(path);
    unlink(yaml);
}
END_TEST

START_TEST(test_key_file_mode)
{
    char path[400];
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc = NULL;

    snprintf(path, sizeof(path), "%s/keepa.key", srv.dir);
    tkm_options_init(&o);
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s", srv.sock);
    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:1");
    snprintf(o.keepa.key_file, sizeof(o.keepa.key_file), "%s", path);
    c = tkt_open(&o);

    write_file(path, KEEPA_KEY "\n", 0644);
    ck_assert_int_eq(tkm_keepa_open(c, &kc), TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "keepa.key_file"));
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "(mode 0644)"));
    ck_assert_ptr_null(strstr(tkm_keepa_errstr(kc), KEEPA_KEY));
    tkm_keepa_free(kc);
    kc = NULL;

    ck_assert_int_eq(chmod(path, 0400), 0);
    ck_assert_int_eq(tkm_keepa_open(c, &kc), TKM_OK);
    tkm_keepa_free(kc);
    tkm_client_free(c);
    unlink(path);
}
END_TEST

/* A request that fails (nothing listens) reports it without the key. */
START_TEST(test_keepa_errors_hide_key)
{
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc = NULL;
    tkm_keepa_response resp;
    const char *params[] = {"asin", KEEPA_KEY, NULL};

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s", srv.sock);
    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:1");
    o.keepa.max_retries = 0;
    setenv("TOKENMGR_KEEPA_KEY", KEEPA_KEY, 1);
    c = tkt_open(&o);
    tkt_sync(c, 300, 5, 60000, -1);
    ck_assert_int_eq(tkm_keepa_open(c, &kc), TKM_OK);
    memset(&resp, 0, sizeof(resp));
    ck_assert_int_ne(tkm_keepa_request(kc, "/product", params, 1, &resp),
                     TKM_OK);
    ck_assert_str_ne(tkm_keepa_errstr(kc), "");
    ck_assert_ptr_null(strstr(tkm_keepa_errstr(kc), KEEPA_KEY));
    ck_assert_ptr_null(strstr(tkm_errstr(c), KEEPA_KEY));
    tkm_keepa_response_free(&resp);
    tkm_keepa_free(kc);
    tkm_client_free(c);
    unsetenv("TOKENMGR_KEEPA_KEY");
}
END_TEST

/* A recovery command sees the contract's variables and PATH, nothing of
 * the monitor's environment (its Keepa key, its Redis URL). */
START_TEST(test_action_environment)
{
    const char *argv[] = {"/usr/bin/env", NULL};
    tkm_action_env env = {"t", "stalled", 300, 900, "h:1", "a1"};
    tkm_action *a = NULL;
    tkm_action_result res;
    char err[256];

    setenv("TOKENMGR_KEEPA_KEY", KEEPA_KEY, 1);
    setenv("TOKENMGR_REDIS_URL",
           "redis://tokenmgr-worker:" WORKER_PW "@127.0.0.1:1/0", 1);
    ck_assert_int_eq(tkm_action_exec(argv, &env, 10000, &a, err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_action_wait(a, &res), TKM_OK);
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_ptr_nonnull(strstr(res.output, "TOKENMGR_POOL=t"));
    ck_assert_ptr_null(strstr(res.output, KEEPA_KEY));
    ck_assert_ptr_null(strstr(res.output, WORKER_PW));
    ck_assert_ptr_null(strstr(res.output, "TOKENMGR_REDIS_URL"));
    tkm_action_free(a);
    unsetenv("TOKENMGR_KEEPA_KEY");
    unsetenv("TOKENMGR_REDIS_URL");
}
END_TEST

/* A webhook that fails names scheme, host and path: never user:password. */
START_TEST(test_webhook_error_hides_credentials)
{
    char url[200], err[256];
    tkm_action_env env = {"t", "stalled", 300, 900, "", "a1"};
    tkm_action *a = NULL;
    tkm_action_result res;

    snprintf(url, sizeof(url), "http://hookuser:H00kPassw0rd@127.0.0.1:%d/x",
             free_port());
    ck_assert_int_eq(tkm_action_webhook(url, &env, 5000, &a, err, sizeof(err)),
                     TKM_OK);
    ck_assert_int_eq(tkm_action_wait(a, &res), TKM_OK);
    ck_assert_int_ne(res.exit_status, 0);
    ck_assert_ptr_nonnull(strstr(res.output, "127.0.0.1"));
    ck_assert_ptr_null(strstr(res.output, "H00kPassw0rd"));
    ck_assert_ptr_null(strstr(res.output, "hookuser"));
    tkm_action_free(a);
}
END_TEST

/* ---- the command-line tool -------------------------------------------- */

typedef struct cli_result {
    int status; /* exit status; -1 killed by a signal, -2 still running
                   after 10 s (killed then) */
    char err[2048];
} cli_result;

/* Run the tokenmgr command with argv (NULL-terminated), without a
 * configuration from the environment; stderr captured. */
static cli_result run_cli(const char *const *args)
{
    const char *argv[16] = {TKM_CLI};
    cli_result r;
    size_t len = 0;
    int64_t t0 = tkt_now_ms();
    int p[2], status;
    pid_t pid;

    memset(&r, 0, sizeof(r));
    for (int i = 0; args[i] != NULL && i < 14; i++)
        argv[i + 1] = args[i];
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(p[1], 2);
        close(p[0]);
        unsetenv("TOKENMGR_CONFIG");
        unsetenv("TOKENMGR_REDIS_URL");
        execv(TKM_CLI, (char **)argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (tkt_now_ms() - t0 < 10000) {
        ssize_t n = read(p[0], r.err + len, sizeof(r.err) - 1 - len);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t)n;
        else
            tkt_sleep_ms(10);
        if (len + 1 >= sizeof(r.err))
            break;
    }
    close(p[0]);
    r.err[len] = '\0';
    /* Its stderr closed as it exits: the exit itself may still be under
     * way on a loaded machine, so wait for it (within the 10 s). */
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (tkt_now_ms() - t0 >= 10000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            r.status = -2;
            return r;
        }
        tkt_sleep_ms(5);
    }
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

#define UNIX_PW "Un1xS0cketPassw0rd"

static void hides(const char *where, const char *msg, const char *secret)
{
    ck_assert_msg(msg[0] != '\0', "%s: no message", where);
    ck_assert_msg(strstr(msg, secret) == NULL, "%s shows the password: %s",
                  where, msg);
}

/* A unix:// URL may carry a password (unix://[user]:password@/path); no
 * message it can reach shows it: a malformed URL, nothing listening, AUTH
 * refused, through the library, a YAML file and the command. */
START_TEST(test_unix_url_password_hidden)
{
    char url[700], yaml[400], err[512];
    const char *cli_args[] = {"--pool", "t", "--redis", url, "status", NULL};
    const char *cli_config[] = {"--config", yaml, "status", NULL};
    tkm_options o;
    tkm_client *c = NULL;
    tkm_pool_status st;
    cli_result r;
    FILE *fp;

    /* The form works: the worker authenticates through the socket. */
    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://tokenmgr-worker:%s@%s",
             WORKER_PW, srv.sock);
    c = tkt_open(&o);
    OK(c, tkm_status(c, &st));
    tkm_client_free(c);

    /* Malformed (a relative path): the parser's message, everywhere. */
    snprintf(url, sizeof(url), "unix://:%s@relative/redis.sock", UNIX_PW);
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", url);
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    hides("tkm_options_validate", err, UNIX_PW);
    ck_assert_ptr_nonnull(strstr(err, "absolute socket path"));
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
    hides("tkm_client_open", tkm_errstr(c), UNIX_PW);
    tkm_client_free(c);
    /* A password that lost its '@' (unix://PASSWORD/path): still hidden. */
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s%s", UNIX_PW,
             srv.sock);
    ck_assert_int_eq(tkm_options_validate(&o, err, sizeof(err)), TKM_ECONFIG);
    hides("tkm_options_validate", err, UNIX_PW);
    ck_assert_ptr_nonnull(strstr(err, "'unix://***/"));
    snprintf(yaml, sizeof(yaml), "%s/unix.yaml", srv.dir);
    fp = fopen(yaml, "w");
    fprintf(fp, "pool: t\nredis:\n  url: \"%s\"\n", url);
    fclose(fp);
    tkm_options_init(&o);
    ck_assert_int_eq(tkm_config_load_file(yaml, &o, err, sizeof(err)),
                     TKM_ECONFIG);
    hides("tkm_config_load_file", err, UNIX_PW);
    r = run_cli(cli_args);
    ck_assert_msg(r.status == 78, "exit %d: %s", r.status, r.err);
    hides("tokenmgr --redis", r.err, UNIX_PW);
    r = run_cli(cli_config);
    ck_assert_msg(r.status == 78, "exit %d: %s", r.status, r.err);
    hides("tokenmgr --config", r.err, UNIX_PW);
    unlink(yaml);

    /* Nothing listens on the socket. */
    snprintf(url, sizeof(url), "unix://:%s@%s/nothing.sock", UNIX_PW, srv.dir);
    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", url);
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_status(c, &st), TKM_EREDIS);
    hides("connection refused", tkm_errstr(c), UNIX_PW);
    tkm_client_free(c);
    r = run_cli(cli_args);
    ck_assert_msg(r.status == 69, "exit %d: %s", r.status, r.err);
    hides("tokenmgr, connection refused", r.err, UNIX_PW);

    /* AUTH refused (a wrong password for the worker). */
    snprintf(url, sizeof(url), "unix://tokenmgr-worker:%s@%s", UNIX_PW,
             srv.sock);
    snprintf(o.redis_url, sizeof(o.redis_url), "%s", url);
    c = tkt_open(&o);
    ck_assert_int_eq(tkm_status(c, &st), TKM_EREDIS);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "AUTH"));
    hides("AUTH refused", tkm_errstr(c), UNIX_PW);
    tkm_client_free(c);
    r = run_cli(cli_args);
    ck_assert_msg(r.status == 69, "exit %d: %s", r.status, r.err);
    hides("tokenmgr, AUTH refused", r.err, UNIX_PW);
}
END_TEST

/* redis.password_file missing, a FIFO or a directory: a configuration
 * error (the command exits 78), said at once. */
START_TEST(test_password_file_not_usable)
{
    static const struct {
        const char *name, *words;
    } files[] = {
        {"missing.pw", "cannot open: No such file"},
        {"fifo.pw", "not a regular file (a FIFO)"},
        {".", "not a regular file (a directory)"},
    };
    char path[400], yaml[400];
    const char *cli_config[] = {"--config", yaml, "status", NULL};
    tkm_options o;
    tkm_client *c = NULL;
    cli_result r;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/fifo.pw", srv.dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    snprintf(yaml, sizeof(yaml), "%s/pwfile.yaml", srv.dir);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", srv.dir, files[i].name);
        tkm_options_init(&o);
        snprintf(o.pool, sizeof(o.pool), "t");
        snprintf(o.redis_url, sizeof(o.redis_url), "unix://tokenmgr-worker:@%s",
                 srv.sock);
        snprintf(o.redis_password_file, sizeof(o.redis_password_file), "%s",
                 path);
        alarm(10); /* a FIFO once hung here */
        ck_assert_int_eq(tkm_client_open(&o, &c), TKM_ECONFIG);
        alarm(0);
        ck_assert_msg(strstr(tkm_errstr(c), "redis.password_file") != NULL &&
                          strstr(tkm_errstr(c), files[i].words) != NULL,
                      "%s: %s", files[i].name, tkm_errstr(c));
        tkm_client_free(c);
        fp = fopen(yaml, "w");
        fprintf(fp, "pool: t\nredis:\n  password_file: %s\n", path);
        fclose(fp);
        r = run_cli(cli_config);
        ck_assert_msg(r.status == 78, "%s: exit %d: %s", files[i].name,
                      r.status, r.err);
        ck_assert_msg(strstr(r.err, files[i].words) != NULL, "%s: %s",
                      files[i].name, r.err);
    }
    snprintf(path, sizeof(path), "%s/fifo.pw", srv.dir);
    unlink(path);
    unlink(yaml);
}
END_TEST

/* keepa.key_file a FIFO: refused at once, not waited on. */
START_TEST(test_key_file_fifo)
{
    char path[400];
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc = NULL;

    snprintf(path, sizeof(path), "%s/keepa.fifo", srv.dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    tkm_options_init(&o);
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s", srv.sock);
    snprintf(o.keepa.key_file, sizeof(o.keepa.key_file), "%s", path);
    c = tkt_open(&o);
    alarm(10);
    ck_assert_int_eq(tkm_keepa_open(c, &kc), TKM_ECONFIG);
    alarm(0);
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "keepa.key_file"));
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "(a FIFO)"));
    tkm_keepa_free(kc);
    tkm_client_free(c);
    unlink(path);
}
END_TEST

/* Free text reaching the audit stream is bounded (255 bytes a field). */
START_TEST(test_audit_fields_bounded)
{
    tkm_options o;
    tkm_client *c;
    tkm_recovery_options ro;
    tkm_recovery_ticket t;
    tkm_audit_entry *e = NULL;
    size_t n = 0;
    static char big[100000];
    redisContext *r;
    redisReply *rep;

    memset(big, 'r', sizeof(big) - 1);
    big[5] = '\x01';
    memcpy(big + 253, "\xc3\xa9", 2); /* é across the cut at 255 */
    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s", srv.sock);
    c = tkt_open(&o);
    tkm_recovery_options_init(&ro);
    ro.dry_run = 1;
    OK(c, tkm_recovery_decide(c, &ro, "manual", big, big, big, big, &t));
    OK(c, tkm_recovery_log(c, 1, &e, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_le(strlen(e[0].reason), 255);
    ck_assert_int_eq(e[0].reason[5], ' ');
    free(e);
    tkm_client_free(c);

    /* In Redis itself: no field of the entry is longer than 255 bytes. */
    r = admin();
    rep = tkt_cmd(r, "XREVRANGE tokenmgr:{t}:recovery_log + - COUNT 1");
    ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(rep->elements, 1);
    redisReply *fields = rep->element[0]->element[1];
    for (size_t i = 1; i < fields->elements; i += 2) {
        ck_assert_uint_le(fields->element[i]->len, 255);
        /* the cut never splits a character: no lone lead byte at the end */
        ck_assert(
            (unsigned char)fields->element[i]
                ->str[fields->element[i]->len ? fields->element[i]->len - 1
                                              : 0] != 0xc3);
    }
    freeReplyObject(rep);
    redisFree(r);
}
END_TEST

/* An HTTP server that answers one request with an endless body of JSON
 * whitespace (a Keepa that never stops talking). */
static void *endless_body(void *arg)
{
    int lfd = *(int *)arg, fd;
    static char chunk[65536];
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Connection: close\r\n\r\n";
    char req[4096];

    memset(chunk, ' ', sizeof(chunk));
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (read(fd, req, sizeof(req)) > 0 &&
        write(fd, head, strlen(head)) == (ssize_t)strlen(head)) {
        /* 1 GiB at most: the client must hang up long before. */
        for (int i = 0; i < 16384; i++) {
            if (write(fd, chunk, sizeof(chunk)) < 0)
                break;
        }
    }
    close(fd);
    return NULL;
}

/* A response body is bounded (BODY_MAX, 64 MiB): the transfer is cut and
 * the request fails, it does not eat the worker's memory. */
START_TEST(test_http_body_bounded)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t th;
    tkm_options o;
    tkm_client *c;
    tkm_keepa *kc = NULL;
    tkm_keepa_response resp;
    const char *params[] = {"asin", "B000000000", NULL};

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, endless_body, &lfd), 0);

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "unix://%s", srv.sock);
    snprintf(o.keepa.base_url, sizeof(o.keepa.base_url), "http://127.0.0.1:%d",
             ntohs(sa.sin_port));
    o.keepa.max_retries = 0;
    o.keepa.timeout_ms = 60000;
    setenv("TOKENMGR_KEEPA_KEY", KEEPA_KEY, 1);
    c = tkt_open(&o);
    tkt_sync(c, 300, 5, 60000, -1);
    ck_assert_int_eq(tkm_keepa_open(c, &kc), TKM_OK);
    memset(&resp, 0, sizeof(resp));
    ck_assert_int_eq(tkm_keepa_request(kc, "/product", params, 1, &resp),
                     TKM_EHTTP);
    ck_assert_ptr_nonnull(strstr(tkm_keepa_errstr(kc), "larger than"));
    tkm_keepa_response_free(&resp);
    tkm_keepa_free(kc);
    tkm_client_free(c);
    pthread_join(th, NULL);
    close(lfd);
    unsetenv("TOKENMGR_KEEPA_KEY");
}
END_TEST

/* A TCase on the ACL server, emptied before each test. */
static TCase *tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tkt_tcase(s, name, timeout_s);

    tcase_add_unchecked_fixture(tc, acl_setup, tkt_redis_teardown);
    tcase_add_checked_fixture(tc, tkt_flush, NULL);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("security");

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tcase(s, "acl", 0), test_worker_acl, test_monitor_acl, NULL);
    tkt_add_tests(tcase(s, "secrets", 30), test_auth_error_hides_password,
                  test_password_file, test_key_file_mode,
                  test_keepa_errors_hide_key, test_action_environment,
                  test_webhook_error_hides_credentials,
                  test_unix_url_password_hidden, test_password_file_not_usable,
                  test_key_file_fifo, NULL);
    tkt_add_tests(tcase(s, "limits", 120), test_audit_fields_bounded,
                  test_http_body_bounded, NULL);
    return tkt_run_suite(s, 0);
}
