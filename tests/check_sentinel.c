/*
 * Redis Sentinel: a client finds the master through real sentinels (a
 * master, a replica, three redis-sentinel processes: fixtures/sentinel.c),
 * follows a failover, grants nothing from a balance it cannot trust until
 * a sync grounds it, never writes to an old master, and says clearly why
 * when no master can be found.  Links the library's internal static copy
 * (the discovery rules of sentinel.c are tested directly too).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "sentinel.h"
#include "tkt.h"

static tkt_sentinels S;

static void start_sentinels(void)
{
    if (tkt_sentinels_start(&S) != 0) {
        fprintf(stderr, "cannot start the sentinels for the tests\n");
        _exit(2);
    }
}

static void stop_sentinels(void)
{
    tkt_sentinels_stop(&S);
}

/* Options naming the fixture's sentinels (or the addresses given). */
static tkm_options sentinel_options(const char *addrs)
{
    char list[600] = "", one[64], err[256];
    tkm_options o;

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    o.timeout_ms = 300;
    if (addrs == NULL) {
        for (int i = 0; i < TKT_SENTINELS; i++) {
            tkt_sentinel_addr(&S, i, one, sizeof(one));
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                     i ? "," : "", one);
        }
        addrs = list;
    }
    ck_assert_msg(tkm_options_set(&o, "redis.sentinels", addrs, err,
                                  sizeof(err)) == TKM_OK,
                  "%s", err);
    ck_assert_int_eq(tkm_options_set(&o, "redis.master_name",
                                     S.name[0] ? S.name : "tkt", err,
                                     sizeof(err)),
                     TKM_OK);
    return o;
}

static tkm_client *sentinel_client(void)
{
    tkm_options o = sentinel_options(NULL);

    return tkt_open(&o);
}

/* calls= of a command in node n's INFO commandstats (0 when never run). */
static long calls_on(int n, const char *cmd)
{
    char field[64], v[256];
    const char *p;

    snprintf(field, sizeof(field), "cmdstat_%s", cmd);
    tkt_node_info(&S, n, "commandstats", field, v, sizeof(v));
    p = strstr(v, "calls=");
    return p ? atol(p + 6) : 0;
}

static long scripts_on(int n)
{
    return calls_on(n, "evalsha") + calls_on(n, "eval") +
           calls_on(n, "evalsha_ro") + calls_on(n, "eval_ro");
}

static void kill_node(int n)
{
    kill(S.node[n].pid, SIGKILL);
    tkt_stop_process(S.node[n].pid, SIGKILL, 2000);
    S.node[n].pid = 0;
}

/* Wait until the replica has what the master has (WAIT 1). */
static void replicated(int master)
{
    char out[64];

    tkt_node_cli(&S, master, out, sizeof(out), "WAIT", "1", "2000", NULL);
    ck_assert_msg(atoi(out) == 1, "WAIT answered %s", out);
}

/* ---- the rules, without I/O --------------------------------------------
 */

START_TEST(test_round_order)
{
    tkm__sentinel_round r;
    tkm__endpoint a = {.host = "10.0.0.1", .port = 6379};
    tkm__endpoint b = {.host = "10.0.0.2", .port = 6379};
    tkm__endpoint v6 = {.host = "::1", .port = 6380};
    int order[TKM_SENTINELS_MAX];
    const char *fields[] = {"name", "m",     "config-epoch",
                            "7",    "flags", "master"};
    const size_t lens[] = {4, 1, 12, 1, 5, 6};
    int64_t epoch = -1;

    tkm__round_init(&r, 3);
    tkm__round_vote(&r, 0, "s0", &b, 0);
    tkm__round_note(&r, "s1", "cannot be reached (Connection refused)");
    tkm__round_vote(&r, 2, "s2", &a, 0);
    ck_assert_int_eq(tkm__round_order(&r, order), 2);
    ck_assert_str_eq(r.cand[order[0]].ep.host, "10.0.0.2"); /* first named */
    ck_assert_int_eq(tkm__round_vote(&r, 1, "s1", &a, 0), 2);
    tkm__round_order(&r, order);
    ck_assert_str_eq(r.cand[order[0]].ep.host, "10.0.0.1"); /* most votes */
    ck_assert_int_eq(r.cand[order[0]].first_voter, 2);
    ck_assert_str_eq(r.report,
                     "s0 named 10.0.0.2:6379 (epoch 0); s1 cannot be reached "
                     "(Connection refused); s2 named 10.0.0.1:6379 (epoch 0); "
                     "s1 named 10.0.0.1:6379 (epoch 0)");
    /* A failover: one sentinel knows, two are behind; epoch wins. */
    tkm__round_init(&r, 3);
    tkm__round_vote(&r, 0, "s0", &a, 3);
    tkm__round_vote(&r, 1, "s1", &a, 3);
    tkm__round_vote(&r, 2, "s2", &v6, 4);
    tkm__round_order(&r, order);
    ck_assert_str_eq(r.cand[order[0]].ep.host, "::1");
    ck_assert_int_eq(r.cand[order[0]].first_voter, 2);
    ck_assert_ptr_nonnull(strstr(r.report, "s2 named [::1]:6380 (epoch 4)"));
    ck_assert(tkm__field_int(fields, lens, 6, "config-epoch", &epoch));
    ck_assert_int_eq(epoch, 7);
    ck_assert(!tkm__field_int(fields, lens, 6, "quorum", &epoch));
    ck_assert(!tkm__field_int(fields, lens, 6, "flags", &epoch));
}
END_TEST

START_TEST(test_run_id_from_info)
{
    const char info[] = "# Server\r\nredis_version:7.0.15\r\nrun_id:"
                        "3f9b471cbf977e459fe47d2c02ca0712ec66e6fe\r\n"
                        "tcp_port:6379\r\n";
    char id[48];

    ck_assert(tkm__info_run_id(info, sizeof(info) - 1, id, sizeof(id)));
    ck_assert_str_eq(id, "3f9b471cbf977e459fe47d2c02ca0712ec66e6fe");
    ck_assert(!tkm__info_run_id("run_id:\r\n", 9, id, sizeof(id)));
    ck_assert(!tkm__info_run_id("run_id:zz\r\n", 11, id, sizeof(id)));
    ck_assert(!tkm__info_run_id("x:1\r\n", 5, id, sizeof(id)));
}
END_TEST

/* ---- the re-grounding rule in the scripts (a plain Redis) ----------------
 */

/* What a new master's first connection does: origin.lua with its id. */
static int64_t mark_origin(tkm_client *c, const char *run_id)
{
    tkm__value v[TKM__ORIGIN_NFIELDS];
    tkm__call k;

    tkm__call_init(&k, c, TKM__CALL_ORIGIN);
    tkm__call_str(&k, run_id);
    ck_assert_int_eq(tkm__call_run(c, &k, v, TKM__ORIGIN_NFIELDS, NULL),
                     TKM_OK);
    return v[TKM__ORIGIN_MARKED].i;
}

START_TEST(test_reground_rules)
{
    tkm_client *c = tkt_client(), *d = tkt_client();
    tkm_options o = tkt_options();
    tkm_client *throttled;
    tkm_grant g, kept;
    int claimed;
    int64_t next;

    /* A pool without state only records its master. */
    ck_assert_int_eq(mark_origin(c, "aaaa"), 0);
    tkt_sync(c, 1000, 10, 30000, -1);
    ck_assert_int_eq(mark_origin(d, "aaaa"), 0);
    kept = tkt_acquire(c, 100);
    ck_assert_int_eq(kept.granted, 1);
    /* A throttle claim made before the change of master. */
    o.keepa.token_sync_min_interval_s = 600;
    throttled = tkt_open(&o);
    ck_assert_int_eq(tkm__sync_claim(throttled, 600000, 0, &claimed, &next),
                     TKM_OK);
    ck_assert_int_eq(claimed, 1);
    tkt_sleep_ms(5);
    /* Another master: marked once, nothing granted, sync now. */
    ck_assert_int_eq(mark_origin(c, "bbbb"), 1);
    ck_assert_int_eq(mark_origin(d, "bbbb"), 0);
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_OK);
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_eq(g.retry_after_ms, TKM_RETRY_NEVER);
    /* The old claim does not hold the re-grounding back; the new one holds
     * the others, briefly: they wait instead of calling /token too. */
    ck_assert_int_eq(tkm__sync_claim(c, 600000, 0, &claimed, &next), TKM_OK);
    ck_assert_int_eq(claimed, 1);
    ck_assert_int_eq(tkm__sync_claim(d, 600000, 0, &claimed, &next), TKM_OK);
    ck_assert_int_eq(claimed, 0);
    ck_assert_int_le(next, 2000);
    ck_assert_int_eq(tkm_try_acquire(d, 1, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_gt(g.retry_after_ms, 0);
    ck_assert_int_le(g.retry_after_ms, 250);
    /* The API's balance grounds it; the lease that survived stays out. */
    tkt_sync(c, 600, 10, 30000, -1);
    g = tkt_acquire(d, 1);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, 600 - 100 - 1);
    ck_assert_int_eq(tkm_complete(c, kept.id, 100, NULL, NULL), TKM_OK);
    tkm_client_free(throttled);
    tkm_client_free(d);
    tkm_client_free(c);
}
END_TEST

/* ---- a fake sentinel: names whatever port `fake_port` holds -------------
 */

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static int fake_port; /* the master it names; 0: "unknown master" */
static int fake_listen_fd = -1;

static void *fake_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096], reply[128];
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
        int port;
        buf[n] = '\0';
        pthread_mutex_lock(&fake_lock);
        port = fake_port;
        pthread_mutex_unlock(&fake_lock);
        if (strstr(buf, "AUTH") != NULL)
            snprintf(reply, sizeof(reply), "+OK\r\n");
        else if (strstr(buf, "get-master-addr-by-name") == NULL)
            snprintf(reply, sizeof(reply), "-ERR unknown command\r\n");
        else if (port == 0)
            snprintf(reply, sizeof(reply), "*-1\r\n");
        else
            snprintf(reply, sizeof(reply),
                     "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%d\r\n",
                     port >= 10000  ? 5
                     : port >= 1000 ? 4
                                    : 3,
                     port);
        if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0)
            break;
    }
    close(fd);
    return NULL;
}

static void *fake_accept(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_t t;
        int fd = accept(fake_listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_create(&t, NULL, fake_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

/* Start the fake sentinel; its "127.0.0.1:PORT" into addr. */
static void fake_sentinel(int names_port, char *addr, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sa);
    pthread_t t;

    fake_port = names_port;
    fake_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fake_listen_fd, (struct sockaddr *)&sa, sizeof(sa)),
                     0);
    ck_assert_int_eq(listen(fake_listen_fd, 16), 0);
    getsockname(fake_listen_fd, (struct sockaddr *)&sa, &slen);
    snprintf(addr, len, "127.0.0.1:%d", ntohs(sa.sin_port));
    pthread_create(&t, NULL, fake_accept, NULL);
    pthread_detach(t);
}

static void fake_names(int port)
{
    pthread_mutex_lock(&fake_lock);
    fake_port = port;
    pthread_mutex_unlock(&fake_lock);
}

/* ---- discovery and the steady state --------------------------------------
 */

START_TEST(test_finds_the_master)
{
    tkm_client *c = sentinel_client();
    long before;
    int64_t trips;
    tkm_grant g;

    tkt_sync(c, 1000, 10, 30000, -1);
    g = tkt_acquire(c, 1);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(tkm_complete(c, g.id, 1, NULL, NULL), TKM_OK);
    before = scripts_on(0);
    trips = tkm_client_round_trips(c);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_OK);
        ck_assert_int_eq(g.granted, 1);
        ck_assert_int_eq(tkm_complete(c, g.id, 1, NULL, NULL), TKM_OK);
    }
    /* Once connected, one round trip per call, as with a plain URL, and
     * every one on the master. */
    ck_assert_int_eq(tkm_client_round_trips(c) - trips, 40);
    ck_assert_int_eq(scripts_on(0) - before, 40);
    ck_assert_int_eq(scripts_on(1), 0);
    tkm_client_free(c);
}
END_TEST

/* A client's first connection writes nothing before its first script that
 * writes: status is served under CLIENT PAUSE WRITE, as with a plain URL. */
START_TEST(test_reads_under_pause_write)
{
    tkm_client *c = sentinel_client(), *reader;
    tkm_pool_status st;

    tkt_sync(c, 1000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    ck_assert_int_eq(
        tkt_node_cli(&S, 0, NULL, 0, "CLIENT", "PAUSE", "3000", "WRITE", NULL),
        0);
    reader = sentinel_client();
    ck_assert_msg(tkm_status(reader, &st) == TKM_OK, "%s", tkm_errstr(reader));
    ck_assert_int_eq(st.inflight_tokens, 1);
    ck_assert_int_eq(tkt_node_cli(&S, 0, NULL, 0, "CLIENT", "UNPAUSE", NULL),
                     0);
    /* Its first write tells the pool its master, which the pool knew. */
    ck_assert_int_eq(tkt_acquire(reader, 1).granted, 1);
    tkm_client_free(reader);
    tkm_client_free(c);
}
END_TEST

/* After the promotion: EREDIS while no master answers, then need_sync (the
 * balance may miss grants lost with the replication) until a sync grounds
 * it; the lease that reached the replica survives, the one that did not
 * is unknown (complete: ENOGRANT). */
START_TEST(test_failover_regrounds)
{
    tkm_client *c = sentinel_client(), *other = sentinel_client();
    tkm_grant kept, lost, g;
    tkm_pool_status st;
    int64_t t0, denied_at = -1, answered_at = -1;
    tkm_code rc;

    tkt_sync(c, 1000, 10, 30000, -1);
    kept = tkt_acquire(c, 30);
    ck_assert_int_eq(kept.granted, 1);
    replicated(0);
    /* A grant the replica never sees: its link cut while it is frozen, so
     * that it cannot come back before the master dies. */
    kill(S.node[1].pid, SIGSTOP);
    ck_assert_int_eq(
        tkt_node_cli(&S, 0, NULL, 0, "CLIENT", "KILL", "TYPE", "replica", NULL),
        0);
    lost = tkt_acquire(c, 40);
    ck_assert_int_eq(lost.granted, 1);
    ck_assert_int_eq(tkt_acquire(other, 1).granted, 1); /* other connects */
    kill_node(0);
    kill(S.node[1].pid, SIGCONT);
    t0 = tkt_now_ms();
    while ((rc = tkm_try_acquire(c, 1, &g)) == TKM_EREDIS) {
        if (denied_at < 0)
            denied_at = tkt_now_ms();
        ck_assert_msg(tkt_now_ms() - t0 < 30000, "no failover: %s",
                      tkm_errstr(c));
        tkt_sleep_ms(50);
    }
    answered_at = tkt_now_ms();
    ck_assert_int_eq(rc, TKM_OK);
    ck_assert_int_ge(denied_at, 0);
    fprintf(stderr, "failover: first answer %lld ms after the kill\n",
            (long long)(answered_at - t0));
    ck_assert(tkt_sentinels_wait_master(&S, 1, 10000));
    /* Nothing granted from the old balance: need_sync, sync now. */
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_eq(g.retry_after_ms, TKM_RETRY_NEVER);
    ck_assert_int_eq(tkm_try_acquire(other, 1, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    /* The state itself (and the surviving lease) is there. */
    st = tkt_status(c);
    if (st.synced != 1 || st.inflight_tokens != 30) {
        char at[96], why[160];
        tkm__endpoint_str(&c->sentinels.master, at, sizeof(at));
        snprintf(why, sizeof(why),
                 "the client on %s: synced %d, %lld in flight", at, st.synced,
                 (long long)st.inflight_tokens);
        tkt_sentinels_dump(&S, why);
    }
    ck_assert_int_eq(st.synced, 1);
    ck_assert_int_eq(st.inflight_tokens, 30);
    /* The lost grant is unknown; the kept one completes. */
    ck_assert_int_eq(tkm_complete(c, lost.id, 40, NULL, NULL), TKM_ENOGRANT);
    /* The API's balance grounds the pool: grants again, the surviving
     * lease still held out of it. */
    tkt_sync(other, 500, 10, 30000, -1);
    g = tkt_acquire(c, 10);
    ck_assert_int_eq(g.granted, 1);
    ck_assert_int_eq(g.tokens, 500 - 30 - 10);
    ck_assert_int_eq(tkm_complete(c, kept.id, 30, NULL, NULL), TKM_OK);
    tkm_client_free(other);
    tkm_client_free(c);
}
END_TEST

/* While the old master, restarted, is a master again (until the sentinels
 * turn it into a replica, some 10 s), nothing is sent to it.  The bound
 * leaves room for a sentinel's TILT mode (30 s without acting), which a
 * sentinel starved of CPU for 2 s enters: a loaded CI machine. */
START_TEST(test_old_master_gets_nothing)
{
    tkm_client *c = sentinel_client(), *idle = sentinel_client();
    int64_t t0;
    tkm_grant g;
    char out[256];

    tkt_sync(c, 100000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(idle, 1).granted, 1);
    kill_node(0);
    ck_assert(tkt_sentinels_wait_master(&S, 1, 30000));
    while (tkm_try_acquire(c, 1, &g) == TKM_EREDIS)
        tkt_sleep_ms(50);
    tkt_sync(c, 100000, 10, 30000, -1);
    ck_assert_int_eq(tkt_redis_spawn(&S.node[0]), 0);
    ck_assert_str_eq(tkt_node_role(&S, 0), "master");
    t0 = tkt_now_ms();
    while (strcmp(tkt_node_role(&S, 0), "slave") != 0) {
        if (tkt_now_ms() - t0 >= 75000) {
            tkt_sentinels_dump(&S, "the old master stays one");
            ck_abort_msg("the old master stays one");
        }
        if (tkm_try_acquire(c, 1, &g) == TKM_OK && g.granted)
            ck_assert_int_eq(tkm_release(c, g.id, NULL), TKM_OK);
        tkt_sleep_ms(100);
    }
    /* The client idle since before the kill goes to the new master too. */
    ck_assert_int_eq(tkm_try_acquire(idle, 1, &g), TKM_OK);
    ck_assert_int_eq(scripts_on(0), 0);
    /* Demoted: a write there would fail. */
    tkt_node_cli(&S, 0, out, sizeof(out), "SET", "x", "1", NULL);
    ck_assert_msg(strstr(out, "READONLY") != NULL, "%s", out);
    tkm_client_free(idle);
    tkm_client_free(c);
}
END_TEST

/* CLIENT PAUSE on the master longer than a failover: the sentinels promote
 * the replica; the old master wakes still a master.  A client idle across
 * the pause asks a sentinel before using its connection, and an active one
 * timed out and left: the old master runs no script after it wakes. */
START_TEST(test_pause_failover)
{
    tkm_client *active = sentinel_client(), *idle = sentinel_client();
    long before;
    int64_t t0;
    tkm_grant g;
    char pause_ms[16];

    tkt_sync(active, 100000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(idle, 1).granted, 1);
    replicated(0);
    snprintf(pause_ms, sizeof(pause_ms), "%d", 6000);
    before = scripts_on(0); /* INFO waits while all is paused */
    ck_assert_int_eq(
        tkt_node_cli(&S, 0, NULL, 0, "CLIENT", "PAUSE", pause_ms, "ALL", NULL),
        0);
    t0 = tkt_now_ms();
    while (tkt_sentinels_master(&S) != 1) {
        ck_assert_msg(tkt_now_ms() - t0 < 6000, "no failover during the pause");
        (void)tkm_try_acquire(active, 1, &g);
        tkt_sleep_ms(100);
    }
    /* Wait for the old master to wake, a master still. */
    while (tkt_now_ms() - t0 < 6500)
        tkt_sleep_ms(100);
    ck_assert_str_eq(tkt_node_role(&S, 0), "master");
    ck_assert_int_eq(tkm_try_acquire(idle, 1, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC); /* the new master */
    ck_assert_int_eq(tkm_try_acquire(active, 1, &g), TKM_OK);
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    tkt_sleep_ms(200);
    ck_assert_int_eq(scripts_on(0), before);
    ck_assert(tkt_node_wait_role(&S, 0, "slave", 30000));
    tkm_client_free(idle);
    tkm_client_free(active);
}
END_TEST

/* The master turns into a replica under an open connection (no sentinel
 * reconfigured it, so nobody killed the connection): the script answered
 * READONLY did not run, so it goes once more, to the master the sentinel
 * now names, within the same call. */
START_TEST(test_readonly_retried_on_new_master)
{
    tkt_redis a, b;
    tkm_options o;
    tkm_client *c;
    tkm_grant g;
    char fake[64], port[16];
    long before;

    a.port = b.port = 0;
    ck_assert_int_eq(tkt_redis_init(&a), 0);
    a.port = tkt_free_port();
    ck_assert_int_eq(tkt_redis_spawn(&a), 0);
    ck_assert_int_eq(tkt_redis_init(&b), 0);
    b.port = tkt_free_port();
    ck_assert_int_eq(tkt_redis_spawn(&b), 0);
    fake_sentinel(a.port, fake, sizeof(fake));
    o = sentinel_options(fake);
    c = tkt_open(&o);
    tkt_sync(c, 1000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    /* b has a pool of its own, which a copies once it follows b: whatever
     * a holds when the call comes, the write is refused (READONLY, or
     * LOADING while it copies). */
    {
        tkm_options p;
        tkm_client *on_b;
        tkm_options_init(&p);
        snprintf(p.pool, sizeof(p.pool), "t");
        snprintf(p.redis_url, sizeof(p.redis_url), "%s", b.url);
        on_b = tkt_open(&p);
        tkt_sync(on_b, 777, 10, 30000, -1);
        tkm_client_free(on_b);
    }
    /* a follows b now; the sentinel names b. */
    snprintf(port, sizeof(port), "%d", b.port);
    S.node[0] = a; /* for tkt_node_cli */
    S.node[1] = b;
    ck_assert_int_eq(
        tkt_node_cli(&S, 0, NULL, 0, "REPLICAOF", "127.0.0.1", port, NULL), 0);
    fake_names(b.port);
    before = calls_on(1, "evalsha") + calls_on(1, "eval");
    ck_assert_int_eq(tkm_try_acquire(c, 1, &g), TKM_OK);
    /* Served by b, a master new to this client: need_sync. */
    ck_assert_int_eq(g.reason, TKM_REASON_NEED_SYNC);
    ck_assert_int_eq(g.tokens, 777);
    ck_assert_int_gt(calls_on(1, "evalsha") + calls_on(1, "eval"), before);
    tkm_client_free(c);
    memset(&S, 0, sizeof(S));
    tkt_redis_stop(&a);
    tkt_redis_stop(&b);
}
END_TEST

/* ---- bad input -----------------------------------------------------------
 */

static void expect_no_master(tkm_client *c, const char *needle)
{
    tkm_grant g;
    int64_t t0 = tkt_now_ms(), took;
    tkm_code rc = tkm_try_acquire(c, 1, &g);

    took = tkt_now_ms() - t0;
    ck_assert_msg(rc == TKM_EREDIS, "%d: %s", rc, tkm_errstr(c));
    ck_assert_int_eq(g.granted, 0);
    ck_assert_int_lt(took, tkm_client_options(c)->timeout_ms + 500);
    ck_assert_ptr_null(strchr(tkm_errstr(c), '\n'));
    ck_assert_msg(strstr(tkm_errstr(c), needle) != NULL, "'%s' not in: %s",
                  needle, tkm_errstr(c));
}

START_TEST(test_no_sentinel_reachable)
{
    char addrs[128];
    int p1 = tkt_free_port(), p2 = tkt_free_port();
    tkm_options o;
    tkm_client *c;
    const tkt_output *out;
    char a1[32], a2[32];

    snprintf(a1, sizeof(a1), "127.0.0.1:%d", p1);
    snprintf(a2, sizeof(a2), "127.0.0.1:%d", p2);
    snprintf(addrs, sizeof(addrs), "%s,%s", a1, a2);
    o = sentinel_options(addrs);
    c = tkt_open(&o);
    expect_no_master(c, a1);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), a2));
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "cannot be reached"));
    tkm_client_free(c);
    /* The command: exit 69, one line naming the sentinels tried. */
    setenv("TOKENMGR_REDIS_SENTINELS", addrs, 1);
    setenv("TOKENMGR_REDIS_MASTER_NAME", "tkt", 1);
    setenv("TOKENMGR_CONFIG", "", 1);
    out = tkt_cli("--pool", "t", "status", NULL);
    ck_assert_int_eq(out->status, 69);
    ck_assert_ptr_nonnull(strstr(out->err, a1));
    ck_assert_ptr_nonnull(strstr(out->err, a2));
    ck_assert_ptr_eq(strchr(out->err, '\n'), out->err + strlen(out->err) - 1);
}
END_TEST

START_TEST(test_wrong_master_name)
{
    tkm_options o = sentinel_options(NULL);
    char err[128];
    tkm_client *c;

    tkm_options_set(&o, "redis.master_name", "nope", err, sizeof(err));
    c = tkt_open(&o);
    expect_no_master(c, "does not know a master named 'nope'");
    tkm_client_free(c);
}
END_TEST

/* A sentinel names another server (configured for another master of the
 * same name): asked first, it is outvoted by the two real ones. */
START_TEST(test_sentinels_disagree)
{
    tkt_redis rogue;
    char fake[64], addrs[256], a[64], b[64];
    tkm_options o;
    tkm_client *c;

    ck_assert_int_eq(tkt_redis_init(&rogue), 0);
    rogue.port = tkt_free_port();
    ck_assert_int_eq(tkt_redis_spawn(&rogue), 0);
    fake_sentinel(rogue.port, fake, sizeof(fake));
    tkt_sentinel_addr(&S, 0, a, sizeof(a));
    tkt_sentinel_addr(&S, 1, b, sizeof(b));
    snprintf(addrs, sizeof(addrs), "%s,%s,%s", fake, a, b);
    o = sentinel_options(addrs);
    c = tkt_open(&o);
    tkt_sync(c, 1000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    ck_assert_int_gt(scripts_on(0), 0);
    {
        const char *argv[] = {"redis-cli", "-s", rogue.sock, "DBSIZE", NULL};
        tkt_output out;
        tkt_run(argv, 5000, NULL, &out);
        ck_assert_int_eq(atoi(out.out), 0);
    }
    tkm_client_free(c);
    tkt_redis_stop(&rogue);
}
END_TEST

/* The only sentinel names the replica: ROLE says so. */
START_TEST(test_sentinel_names_a_replica)
{
    char fake[64];
    tkm_options o;
    tkm_client *c;

    fake_sentinel(S.node[1].port, fake, sizeof(fake));
    o = sentinel_options(fake);
    c = tkt_open(&o);
    expect_no_master(c, "is no master (ROLE: slave)");
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), fake));
    ck_assert_int_eq(scripts_on(1), 0);
    tkm_client_free(c);
}
END_TEST

static void password_file(const char *path, const char *pw)
{
    ck_assert_int_eq(tkt_write_file(path, pw, 0600), 0);
}

START_TEST(test_sentinel_password)
{
    char path[400], err[256];
    tkm_options o;
    tkm_client *c;

    snprintf(path, sizeof(path), "%s/sentinel.pw", S.dir);
    password_file(path, "badpass123\n");
    o = sentinel_options(NULL);
    ck_assert_int_eq(tkm_options_set(&o, "redis.sentinel_password_file", path,
                                     err, sizeof(err)),
                     TKM_OK);
    c = tkt_open(&o);
    expect_no_master(c, "refused AUTH");
    ck_assert_ptr_null(strstr(tkm_errstr(c), "badpass123"));
    tkm_client_free(c);
    password_file(path, "s3cret\n");
    c = tkt_open(&o);
    tkt_sync(c, 1000, 10, 30000, -1);
    ck_assert_int_eq(tkt_acquire(c, 1).granted, 1);
    tkm_client_free(c);
    /* None given, one required. */
    o = sentinel_options(NULL);
    c = tkt_open(&o);
    expect_no_master(c, "NOAUTH");
    tkm_client_free(c);
}
END_TEST

static void start_with_password(void)
{
    snprintf(S.password, sizeof(S.password), "s3cret");
    start_sentinels();
}

int main(void)
{
    Suite *s = suite_create("sentinel");
    TCase *tc;

    signal(SIGPIPE, SIG_IGN);
    tkt_add_tests(tkt_tcase(s, "rules", 10), test_round_order,
                  test_run_id_from_info, NULL);
    tkt_add_tests(tkt_redis_tcase(s, "reground", 30), test_reground_rules,
                  NULL);
    /* Each test gets its own sentinels: failovers change who is master. */
    tc = tkt_tcase(s, "discovery", 120);
    tcase_add_checked_fixture(tc, start_sentinels, stop_sentinels);
    tkt_add_tests(tc, test_finds_the_master, test_reads_under_pause_write,
                  test_wrong_master_name, test_sentinels_disagree,
                  test_sentinel_names_a_replica, NULL);
    tc = tkt_tcase(s, "failover", 120);
    tcase_add_checked_fixture(tc, start_sentinels, stop_sentinels);
    tkt_add_tests(tc, test_failover_regrounds, test_old_master_gets_nothing,
                  test_pause_failover, NULL);
    tkt_add_tests(tkt_tcase(s, "no_sentinel", 60),
                  test_readonly_retried_on_new_master,
                  test_no_sentinel_reachable, NULL);
    tc = tkt_tcase(s, "password", 60);
    tcase_add_checked_fixture(tc, start_with_password, stop_sentinels);
    tkt_add_tests(tc, test_sentinel_password, NULL);
    return tkt_run_suite(s, 0);
}
