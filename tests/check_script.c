/* Script calls (lib/script.c): what each Lua script declares (@keys,
 * @policy, @call) is what the library sends and what the script answers.
 * Links the library's internal static copy. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tkt.h"

/* ---- the generated tables ---------------------------------------------- */

START_TEST(test_scripts_table)
{
    int calls[TKM__SCRIPT_COUNT] = {0};

    for (int s = 0; s < TKM__SCRIPT_COUNT; s++) {
        const tkm__script *sc = &tkm__scripts[s];
        ck_assert_uint_eq(strlen(sc->sha1), 40);
        ck_assert_uint_eq(strspn(sc->sha1, "0123456789abcdef"), 40);
        ck_assert_msg((sc->keys & ~(TKM__KEYS_POOL | TKM__KEYS_GUARD)) == 0,
                      "%s: keys %u", sc->name, sc->keys);
        /* The prelude (policy) reads the pool's keys, and only the scripts
         * that take the policy carry it. */
        ck_assert(!sc->policy || (sc->keys & TKM__KEYS_POOL));
        ck_assert_int_eq(strstr(sc->text, "local cfg = {") != NULL, sc->policy);
    }
    for (int i = 0; i < TKM__CALL_COUNT; i++) {
        const tkm__call_decl *d = &tkm__calls[i];
        const char *script = tkm__scripts[d->script].name;
        size_t len = strlen(script);
        calls[d->script]++;
        ck_assert_msg(strncmp(d->name, script, len) == 0, "%s", d->name);
        if (d->command == NULL)
            ck_assert_str_eq(d->name, script);
        else
            ck_assert_msg(d->name[len] == '.' &&
                              strcmp(d->name + len + 1, d->command) == 0,
                          "%s sends %s", d->name, d->command);
        ck_assert_int_eq(d->fields != NULL, d->nfields > 0);
        ck_assert_int_eq(d->row != NULL, d->nrow > 0);
        ck_assert(!(d->open && d->nrow > 0));
        ck_assert_int_le(d->nargs + (d->command != NULL), TKM__MAX_OP_ARGS);
        for (int f = 0; f < d->nfields; f++)
            for (int g = f + 1; g < d->nfields; g++)
                ck_assert_str_ne(d->fields[f], d->fields[g]);
    }
    for (int s = 0; s < TKM__SCRIPT_COUNT; s++)
        ck_assert_msg(calls[s] > 0, "%s declares no call",
                      tkm__scripts[s].name);
    /* The read-only scripts say so in their first line (Redis then runs
     * them under CLIENT PAUSE WRITE); the others have no shebang. */
    for (int s = 0; s < TKM__SCRIPT_COUNT; s++) {
        const tkm__script *sc = &tkm__scripts[s];
        int ro = strcmp(sc->name, "status") == 0 ||
                 strcmp(sc->name, "workers") == 0 ||
                 strcmp(sc->name, "legacy") == 0 ||
                 strcmp(sc->name, "recovery_log") == 0;
        ck_assert_msg(sc->no_writes == ro, "%s: no_writes %d", sc->name,
                      sc->no_writes);
        ck_assert_int_eq(strncmp(sc->text, "#!lua flags=no-writes\n", 22) == 0,
                         ro);
        ck_assert_int_eq(strncmp(sc->text, "#!", 2) == 0, ro);
    }
}
END_TEST

/* ---- what a call sends ------------------------------------------------- */

static tkm_client *offline_client(void)
{
    tkm_options o;
    tkm_client *c = NULL;

    tkm_options_init(&o);
    snprintf(o.pool, sizeof(o.pool), "t");
    snprintf(o.redis_url, sizeof(o.redis_url), "unix:///nonexistent.sock");
    ck_assert_int_eq(tkm_client_open(&o, &c), TKM_OK);
    return c;
}

START_TEST(test_call_layout)
{
    tkm_client *c = offline_client();
    tkm__call k;

    /* The pool's 8 keys, the 13 policy numbers, then op[]. */
    tkm__acquire_args(&k, c, 5, "default", 1, "", -1, "");
    ck_assert_int_eq(k.nkeys, TKM__NKEYS_POOL);
    ck_assert_int_eq(k.argc, TKM__NKEYS_POOL + TKM__NPOLICY + 7);
    ck_assert_str_eq(k.argv[0], "tokenmgr:{t}:bucket");
    ck_assert_str_eq(k.argv[6], "tokenmgr:{t}:busy");
    ck_assert_str_eq(k.argv[7], "tokenmgr:{t}:queue");
    ck_assert_str_eq(k.argv[TKM__NKEYS_POOL + TKM__NPOLICY], "5");
    ck_assert_str_eq(k.argv[TKM__NKEYS_POOL + TKM__NPOLICY + 1],
                     tkm_client_options(c)->worker_id);

    /* The guard's keys after the pool's, the command first in op[]. */
    tkm__call_init(&k, c, TKM__CALL_RECOVERY_STATUS);
    ck_assert_int_eq(k.nkeys, TKM__NKEYS_POOL + TKM__NKEYS_GUARD);
    ck_assert_str_eq(k.argv[8], "tokenmgr:{t}:recovery");
    ck_assert_str_eq(k.argv[11], "tokenmgr:{t}:recovery_log");
    ck_assert_str_eq(k.argv[k.nkeys + TKM__NPOLICY], "status");

    /* The audit log: the guard's keys alone, no policy. */
    tkm__call_init(&k, c, TKM__CALL_RECOVERY_LOG);
    tkm__call_int(&k, 3);
    ck_assert_int_eq(k.nkeys, TKM__NKEYS_GUARD);
    ck_assert_str_eq(k.argv[3], "tokenmgr:{t}:recovery_log");
    ck_assert_int_eq(k.argc, TKM__NKEYS_GUARD + 1);

    /* The legacy read: no keys, no policy, only the names to read. */
    tkm__call_init(&k, c, TKM__CALL_LEGACY);
    tkm__call_str(&k, "a");
    ck_assert_int_eq(k.nkeys, 0);
    ck_assert_int_eq(k.argc, 1);
    tkm_client_free(c);
}
END_TEST

START_TEST(test_call_bounds)
{
    tkm_client *c = offline_client();
    tkm__value v[4];
    tkm__call k;

    /* Past the argument array: refused, nothing written past it, nothing
     * sent. */
    tkm__call_init(&k, c, TKM__CALL_LEGACY);
    for (int i = 0; i < TKM__MAX_OP_ARGS + 5; i++)
        tkm__call_int(&k, i);
    ck_assert_int_eq(k.argc, TKM__MAX_OP_ARGS);
    ck_assert_int_eq(tkm__call_run(c, &k, v, 4, NULL), TKM_EINVAL);
    ck_assert_ptr_nonnull(strstr(tkm_errstr(c), "more than 20 arguments"));
    ck_assert_int_eq(tkm_client_round_trips(c), 0);

    /* Fewer or more arguments than declared: a bug, refused unsent. */
    tkm__call_init(&k, c, TKM__CALL_ACQUIRE);
    tkm__call_int(&k, 1);
    ck_assert_int_eq(tkm__call_run(c, &k, v, 4, NULL), TKM_EINVAL);
    ck_assert_str_eq(tkm_errstr(c),
                     "the acquire call takes 7 arguments, was given 1");
    for (int i = 0; i < 7; i++)
        tkm__call_str(&k, "extra");
    ck_assert_int_eq(tkm__call_run(c, &k, v, 4, NULL), TKM_EINVAL);
    ck_assert_int_eq(tkm_client_round_trips(c), 0);
    tkm_client_free(c);
}
END_TEST

/* ---- what each script answers ------------------------------------------ */

#define GRANT "$grant" /* the id of the last acquire */

typedef struct step {
    tkm__call_id id;
    const char *args[16]; /* NULL-terminated */
} step;

/* Every call, in an order where each can succeed. */
static const step steps[] = {
    {TKM__CALL_SYNC, {"1000", "10", "", ""}},
    {TKM__CALL_ACQUIRE, {"1", "w1", "default", "1", "", "", ""}},
    {TKM__CALL_COMPLETE, {GRANT, "1", "", "", "w1", "", "1", "", ""}},
    {TKM__CALL_ACQUIRE, {"1", "w1", "default", "1", "", "1000", "keepa /x"}},
    {TKM__CALL_COMPLETE,
     {GRANT, "1", "", "", "w1", "default", "1", "1", "1000"}},
    {TKM__CALL_ACQUIRE, {"1", "w1", "default", "1", "", "1000", "keepa /x"}},
    {TKM__CALL_RELEASE, {GRANT}},
    {TKM__CALL_LEAVE, {"1-1000"}},
    {TKM__CALL_STATUS, {NULL}},
    {TKM__CALL_RECHARGE, {"1"}},
    {TKM__CALL_HEARTBEAT, {"w1", "checking", "0", "redis", "10"}},
    {TKM__CALL_WORKERS, {"10"}},
    {TKM__CALL_SYNC_CLAIM, {"1000", "0"}},
    {TKM__CALL_RECOVERY_DECIDE,
     {"h", "why", "in", "argv", "token", "1000", "3", "3600000", "60000",
      "300000", "1", "manual"}},
    {TKM__CALL_RECOVERY_FINISH,
     {"h", "dry-1", "token", "ok", "0", "5", "output"}},
    {TKM__CALL_RECOVERY_OBSERVE, {"h", "clear", "100", "3600000"}},
    {TKM__CALL_RECOVERY_STATUS, {"h", "1000", "3600000"}},
    {TKM__CALL_RECOVERY_PAUSE, {"h", "why", "0"}},
    {TKM__CALL_RECOVERY_RESUME, {"h", "why"}},
    {TKM__CALL_RECOVERY_RESET, {"h", "why"}},
    {TKM__CALL_RECOVERY_LOG, {"10"}},
    {TKM__CALL_LEGACY,
     {"keepa_tokens_left", "keepa_refill_rate", "keepa_token_timestamp",
      "keepa_recharge_mode_active", "keepa_recharge_start_time",
      "keepa_worker_last_heartbeat"}},
    {TKM__CALL_RESET, {"1"}},
    {TKM__CALL_FORGET, {"w1"}},
    {TKM__CALL_ORIGIN, {"0123abcd"}},
};

START_TEST(test_every_call_answers_its_declaration)
{
    tkm_client *c = tkt_client();
    int covered[TKM__CALL_COUNT] = {0};
    char grant[TKM_GRANT_ID_MAX + 1] = "";

    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        const tkm__call_decl *d = &tkm__calls[steps[s].id];
        tkm__value *v = NULL;
        tkm__call k;
        int n = 0;
        tkm_code rc;

        tkm__call_init(&k, c, steps[s].id);
        for (const char *const *a = steps[s].args; *a != NULL; a++)
            tkm__call_str(&k, strcmp(*a, GRANT) == 0 ? grant : *a);
        rc = tkm__call_run_alloc(c, &k, &v, &n);
        ck_assert_msg(rc == TKM_OK, "%s: %s", d->name, tkm_errstr(c));
        /* The shape tkm__call_run_alloc accepted, stated once more. */
        if (d->nrow > 0)
            ck_assert_msg(n > d->nfields && (n - d->nfields) % d->nrow == 0,
                          "%s answered %d values", d->name, n);
        else if (d->open)
            ck_assert_msg(n > d->nfields, "%s answered %d", d->name, n);
        else
            ck_assert_msg(n == d->nfields, "%s answered %d values, declares %d",
                          d->name, n, d->nfields);
        if (steps[s].id == TKM__CALL_ACQUIRE) {
            ck_assert_int_eq(v[TKM__ACQUIRE_GRANTED].i, 1);
            ck_assert_str_eq(v[TKM__ACQUIRE_REASON].s, "ok");
            tkm__copy(grant, sizeof(grant), v[TKM__ACQUIRE_ID].s);
        }
        if (steps[s].id == TKM__CALL_LEGACY)
            ck_assert_int_eq(n, TKM__LEGACY_NFIELDS + TKM_LEGACY_NKEYS);
        covered[steps[s].id] = 1;
        free(v);
    }
    for (int i = 0; i < TKM__CALL_COUNT; i++)
        ck_assert_msg(covered[i], "the %s call was not run",
                      tkm__calls[i].name);
    tkm_client_free(c);
}
END_TEST

/* A script whose reply no longer matches its declaration fails loudly. */
START_TEST(test_reply_off_declaration)
{
    tkm_client *c = tkt_client();
    tkm__call_decl wider = tkm__calls[TKM__CALL_STATUS];
    tkm__value v[TKM__STATUS_NFIELDS + TKM__STATUS_ROW_NFIELDS];
    tkm__call k;

    wider.nfields++;
    tkm__call_init(&k, c, TKM__CALL_STATUS);
    k.decl = &wider;
    ck_assert_int_eq(
        tkm__call_run(c, &k, v, TKM__STATUS_NFIELDS + TKM__STATUS_ROW_NFIELDS,
                      NULL),
        TKM_EPROTO);
    ck_assert_str_eq(tkm_errstr(c),
                     "the status script answered 23 values, expected 19 "
                     "and rows of 5");
    tkm_client_free(c);
}
END_TEST

/* The audit log's entries, field by field (the table in recovery.c). */
START_TEST(test_recovery_log_fields)
{
    tkm_client *c = tkt_client();
    tkm_recovery_options r;
    tkm_recovery_ticket t;
    tkm_audit_entry *e = NULL;
    size_t n = 0;

    tkm_recovery_options_init(&r);
    ck_assert_int_eq(tkm_recovery_decide(c, &r, "manual", "host-a", "why",
                                         "tokens=1", "/bin/false", &t),
                     TKM_OK);
    ck_assert_int_eq(t.decision, TKM_DECIDE_ACT);
    ck_assert_int_eq(
        tkm_recovery_finish(c, &t, "host-b", "failed", 3, 1234, "said no"),
        TKM_OK);
    ck_assert_int_eq(tkm_recovery_log(c, 10, &e, &n), TKM_OK);
    ck_assert_uint_eq(n, 2);
    /* Newest first: the end of the action, then its decision. */
    ck_assert_str_eq(e[0].decision, "finished");
    ck_assert_str_eq(e[0].host, "host-b");
    ck_assert_str_eq(e[0].action_id, t.action_id);
    ck_assert_str_eq(e[0].outcome, "failed");
    ck_assert_int_eq(e[0].exit_status, 3);
    ck_assert_int_eq(e[0].duration_ms, 1234);
    ck_assert_str_eq(e[0].output, "said no");
    ck_assert_str_eq(e[1].decision, "act");
    ck_assert_str_eq(e[1].host, "host-a");
    ck_assert_str_eq(e[1].reason, "why");
    ck_assert_str_eq(e[1].inputs, "tokens=1");
    ck_assert_str_eq(e[1].argv, "/bin/false");
    ck_assert_str_eq(e[1].action_id, t.action_id);
    ck_assert_str_eq(e[1].outcome, "");
    ck_assert_int_eq(e[1].exit_status, -1); /* absent */
    ck_assert_int_eq(e[1].duration_ms, -1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_gt(e[i].time_ms, 1600000000000);
        ck_assert_int_eq(e[i].repeats, 0);
        ck_assert_uint_gt(strlen(e[i].id), 0);
    }
    free(e);
    tkm_client_free(c);
}
END_TEST

/* ---- hostile arguments, past the library's own checks -------------------
 * What a client of another version, or anything that can EVALSHA, may send:
 * the scripts refuse (TKMARG, TKMCOST) or apply what they are given, and
 * never write a value their loader would refuse: after every call the pool
 * answers status, agrees with its leases, and its numbers read back. */

static const char *const hostile_args[] = {
    "",
    "0",
    "-0",
    "1",
    "-1",
    "5",
    "30",
    "300",
    "481",
    "1e18",
    "1e+18",
    "nan",
    "inf",
    "-inf",
    "0x10",
    " 5",
    "5 ",
    "1.5",
    "abc",
    "99999999999999999999",
    "1000000000000000",
    "-1000000000000000",
    "1000000000000001",
    "9007199254740993",
    "1795928436074000000",
    "4102444800000",
    "12|w",
    "1-2",
    "|",
    "-",
};

static const char *hostile_arg(unsigned *seed)
{
    return hostile_args[(size_t)rand_r(seed) %
                        (sizeof(hostile_args) / sizeof(hostile_args[0]))];
}

static void pool_still_usable(tkm_client *c, unsigned seed, int step,
                              const char *name)
{
    redisContext *r = tkt_raw();
    redisReply *vals = tkt_cmd(r, "HVALS tokenmgr:{t}:leases");
    redisReply *state = tkt_cmd(r, "HGETALL tokenmgr:{t}:bucket");
    tkm_pool_status st;
    int64_t tokens = 0;
    tkm_code rc = tkm_status(c, &st);

    ck_assert_msg(rc == TKM_OK, "seed %u step %d (%s): status: %s", seed, step,
                  name, tkm_errstr(c));
    for (size_t i = 0; i < vals->elements; i++)
        tokens += strtoll(vals->element[i]->str, NULL, 10);
    /* Nothing expires here (leases of 120 s). */
    ck_assert_msg(
        st.inflight == (int64_t)vals->elements && st.inflight_tokens == tokens,
        "seed %u step %d (%s): %lld in flight (%lld tokens), the "
        "leases %zu (%lld)",
        seed, step, name, (long long)st.inflight, (long long)st.inflight_tokens,
        vals->elements, (long long)tokens);
    for (size_t i = 0; i + 1 < state->elements; i += 2) {
        const char *f = state->element[i]->str, *v = state->element[i + 1]->str;
        if (strcmp(f, "inflight_est") == 0 || strncmp(f, "learn:", 6) == 0)
            continue;
        ck_assert_msg(strspn(v + (v[0] == '-'), "0123456789") ==
                              strlen(v + (v[0] == '-')) &&
                          strlen(v) <= 17 && strlen(v) > 0,
                      "seed %u step %d (%s): %s = '%s'", seed, step, name, f,
                      v);
    }
    freeReplyObject(vals);
    freeReplyObject(state);
    redisFree(r);
}

START_TEST(test_hostile_script_arguments)
{
    static const tkm__call_id ids[] = {
        TKM__CALL_SYNC,       TKM__CALL_ACQUIRE,  TKM__CALL_COMPLETE,
        TKM__CALL_RELEASE,    TKM__CALL_RECHARGE, TKM__CALL_HEARTBEAT,
        TKM__CALL_SYNC_CLAIM, TKM__CALL_WORKERS,  TKM__CALL_STATUS};
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    char grants[16][TKM_GRANT_ID_MAX + 1];
    int ngrants = 0;
    /* Printed on failure; $TKM_FUZZ_SEED runs another. */
    const unsigned seed0 =
        getenv("TKM_FUZZ_SEED")
            ? (unsigned)strtoul(getenv("TKM_FUZZ_SEED"), NULL, 10)
            : 1717u;
    unsigned seed = seed0;

    for (int step = 0; step < 3000; step++) {
        tkm__call_id id =
            ids[(size_t)rand_r(&seed) % (sizeof(ids) / sizeof(ids[0]))];
        const tkm__call_decl *d = &tkm__calls[id];
        tkm__value *v = NULL;
        tkm__call k;
        int n = 0;
        tkm_code rc;

        if (step % 10 == 0) { /* grants to end, and a balance to spend */
            tkm_sync_info in = {300 + rand_r(&seed) % 500, 5, -1, -1};
            tkm_grant g;
            ck_assert_int_eq(tkm_sync(c, &in, NULL), TKM_OK);
            if (tkm_try_acquire(c, rand_r(&seed) % 20, &g) == TKM_OK &&
                g.granted && ngrants < 16)
                memcpy(grants[ngrants++], g.id, sizeof(g.id));
        }
        tkm__call_init(&k, c, id);
        for (int a = 0; a < d->nargs; a++) {
            int r = rand_r(&seed) % 4;
            if ((id == TKM__CALL_COMPLETE || id == TKM__CALL_RELEASE) &&
                a == 0 && ngrants > 0 && r != 0)
                tkm__call_str(&k, grants[rand_r(&seed) % ngrants]);
            else if (id == TKM__CALL_HEARTBEAT && a == 0)
                tkm__call_str(&k, "w");
            else
                tkm__call_str(&k, hostile_arg(&seed));
        }
        rc = tkm__call_run_alloc(c, &k, &v, &n);
        free(v);
        /* Refusals name themselves; a script that broke part way would say
         * "user_script" (a Lua error) instead. */
        ck_assert_msg(
            rc == TKM_OK || rc == TKM_EINVAL || rc == TKM_ENOGRANT ||
                (rc == TKM_EREDIS && strstr(tkm_errstr(c), "TKMARG") != NULL),
            "seed %u step %d: %s: %s", seed0, step, d->name, tkm_errstr(c));
        pool_still_usable(c, seed0, step, d->name);
    }
    tkm_client_free(c);
}
END_TEST

/* complete's place for the next call, asked for with a bad class, weight,
 * cost or wait: refused by name, and the completion is not made either
 * (the lease is still in flight), so that a retry loses nothing. */
START_TEST(test_complete_next_refused)
{
    static const char *const bad[][5] = {
        {"no class!", "1", "5", "1000", "class 'no class!'"},
        {"", "1", "5", "1000", "class ''"},
        {"default", "0", "5", "1000", "weight '0'"},
        {"default", "1001", "5", "1000", "weight '1001'"},
        {"default", "1", "-1", "1000", "next_cost '-1'"},
        {"default", "1", "5", "", "max_wait_ms ''"},
        {"default", "1", "5", "86400001", "max_wait_ms '86400001'"},
    };
    tkm_options o = tkt_options();
    tkm_client *c = tkt_open(&o);
    tkm_grant g;

    tkt_sync(c, 1000, 10, -1, -1);
    g = tkt_acquire(c, 5);
    ck_assert_int_eq(g.granted, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tkm__value *v = NULL;
        tkm__call k;
        int n = 0;
        const char *args[] = {g.id,      "5",       "",        "",       "w1",
                              bad[i][0], bad[i][1], bad[i][2], bad[i][3]};

        tkm__call_init(&k, c, TKM__CALL_COMPLETE);
        for (size_t a = 0; a < sizeof(args) / sizeof(args[0]); a++)
            tkm__call_str(&k, args[a]);
        ck_assert_int_eq(tkm__call_run_alloc(c, &k, &v, &n), TKM_EINVAL);
        free(v);
        ck_assert_msg(strstr(tkm_errstr(c), bad[i][4]) != NULL, "%s",
                      tkm_errstr(c));
        ck_assert_int_eq(tkt_status(c).inflight, 1);
    }
    ck_assert_int_eq(tkm_complete(c, g.id, 5, NULL, NULL), TKM_OK);
    ck_assert_int_eq(tkt_status(c).inflight, 0);
    tkm_client_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("script");
    TCase *reply;

    tkt_add_tests(tkt_tcase(s, "declarations", 0), test_scripts_table, NULL);
    tkt_add_tests(tkt_tcase(s, "send", 0), test_call_layout, test_call_bounds,
                  NULL);
    reply = tkt_redis_tcase(s, "reply", 120);
    tkt_add_tests(reply, test_every_call_answers_its_declaration,
                  test_reply_off_declaration, test_recovery_log_fields,
                  test_hostile_script_arguments, test_complete_next_refused,
                  NULL);
    return tkt_run_suite(s, 0);
}
