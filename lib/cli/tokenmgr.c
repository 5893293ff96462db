/*
 * tokenmgr: the command-line tool.  Built on the public header only, as
 * collectdctl is built on libcollectdclient.  Exit codes (CONTRACT.md):
 * 0 ok, 64 usage, 69 Redis unavailable, 75 denied for now, 78 configuration,
 * 1 anything else.  Errors are one line on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenmgr.h"

enum {
    EXIT_OK = 0,
    EXIT_OTHER = 1,
    EXIT_USAGE = 64,
    EXIT_UNAVAILABLE = 69,
    EXIT_DENIED = 75,
    EXIT_CONFIG = 78
};

#define TOKENS_MAX INT64_C(1000000000000)

static const char usage_text[] =
    "usage: tokenmgr [--config FILE] [--pool NAME] [--redis URL] COMMAND "
    "[ARGS]\n"
    "\n"
    "commands:\n"
    "  status [--json]                        the pool's state, refill "
    "projected to now\n"
    "  sync --tokens N --rate R [--refill-in MS] [--timestamp MS]\n"
    "                                         set the balance the API "
    "reported\n"
    "  acquire COST [--json]                  reserve COST tokens (never "
    "sleeps)\n"
    "  complete GRANT --consumed N [--tokens-left N --timestamp MS]\n"
    "                                         the call was made: reconcile\n"
    "  release GRANT                          the call was not made: give "
    "back\n"
    "  recharge on|off                        force recharge mode\n"
    "  reset                                  delete this pool's keys\n"
    "  heartbeat [--worker ID] [--phase TEXT] [--busy-for SECONDS]\n"
    "                                         record that a worker is alive\n"
    "  workers [--json]                       each worker's heartbeat age and "
    "phase\n"
    "\n"
    "The configuration file is --config, else $TOKENMGR_CONFIG; "
    "$TOKENMGR_REDIS_URL\n"
    "overrides its Redis URL, and --pool/--redis override both.\n"
    "Exit: 0 ok, 64 usage, 69 Redis unavailable, 75 denied for now,\n"
    "78 configuration error, 1 other.\n";

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("tokenmgr: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static int usage(const char *fmt, const char *arg)
{
    fputs("tokenmgr: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (tokenmgr --help for usage)\n", stderr);
    return EXIT_USAGE;
}

/* Exit status for a library failure, with its message. */
static int lib_fail(tkm_client *c, tkm_code rc, const char *what)
{
    int code = EXIT_OTHER;

    if (rc == TKM_EREDIS)
        code = EXIT_UNAVAILABLE;
    else if (rc == TKM_ECONFIG)
        code = EXIT_CONFIG;
    return fail(code, "%s: %s", what,
                c && tkm_errstr(c)[0] ? tkm_errstr(c) : tkm_strerror(rc));
}

/* A numeric argument: whole-string integer in range, else exit 64. */
static int number(const char *flag, const char *text, int64_t min, int64_t max,
                  int64_t *out)
{
    if (text == NULL)
        return usage("%s needs a value", flag);
    if (tkm_parse_int(text, min, max, out) != TKM_OK) {
        fprintf(stderr, "tokenmgr: %s: '%s' is not an integer in %lld..%lld\n",
                flag, text, (long long)min, (long long)max);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

typedef struct cmd_args {
    int argc;
    char **argv;
    int json;
} cmd_args;

/* Print a JSON string (phases are free text). */
static void json_str(const char *key, const char *v, const char *sep)
{
    printf("\"%s\":\"", key);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    printf("\"%s", sep);
}

/* Print a nullable integer or seconds value as JSON. */
static void json_int_or_null(const char *key, int64_t v, int is_null,
                             const char *sep)
{
    if (is_null)
        printf("\"%s\":null%s", key, sep);
    else
        printf("\"%s\":%lld%s", key, (long long)v, sep);
}

static void json_secs_or_null(const char *key, int64_t ms, const char *sep)
{
    if (ms < 0)
        printf("\"%s\":null%s", key, sep);
    else
        printf("\"%s\":%.3f%s", key, (double)ms / 1000.0, sep);
}

static int cmd_status(tkm_client *c, cmd_args *a)
{
    const tkm_options *o = tkm_client_options(c);
    tkm_pool_status st;
    tkm_code rc = tkm_status(c, &st);
    int ns = !st.synced;

    if (rc != TKM_OK)
        return lib_fail(c, rc, "status");
    if (a->json) {
        printf("{\"pool\":\"%s\",", o->pool);
        json_int_or_null("tokens", st.tokens, ns, ",");
        json_int_or_null("capacity", st.capacity, ns, ",");
        json_int_or_null("refill_rate", st.refill_rate, ns, ",");
        printf("\"refill_period_ms\":%lld,", (long long)st.refill_period_ms);
        json_int_or_null("refill_in_ms", st.refill_in_ms, ns, ",");
        printf("\"recharge_mode\":%s,", st.recharge_mode ? "true" : "false");
        json_int_or_null("recharge_since_ms", st.recharge_since_ms,
                         !st.recharge_mode, ",");
        json_int_or_null("recharge_target", st.recharge_target, ns, ",");
        printf("\"inflight\":%lld,\"inflight_tokens\":%lld,"
               "\"inflight_reserve\":%lld,",
               (long long)st.inflight, (long long)st.inflight_tokens,
               (long long)st.inflight_reserve);
        if (st.estimate_ratio > 0)
            printf("\"estimate_ratio\":%.3f,", st.estimate_ratio);
        else
            printf("\"estimate_ratio\":null,");
        printf("\"synced\":%s,", st.synced ? "true" : "false");
        json_secs_or_null("last_sync_age_s", st.last_sync_age_ms, ",");
        printf("\"workers_alive\":%lld,\"workers_total\":%lld,",
               (long long)st.workers_alive, (long long)st.workers_total);
        json_secs_or_null("heartbeat_age_s", st.heartbeat_age_ms, "");
        printf("}\n");
        return EXIT_OK;
    }
    printf("pool       %s\n", o->pool);
    if (st.heartbeat_age_ms >= 0)
        printf("workers    %lld alive of %lld, freshest heartbeat %.1f s ago\n",
               (long long)st.workers_alive, (long long)st.workers_total,
               (double)st.heartbeat_age_ms / 1000.0);
    else
        printf("workers    none has sent a heartbeat\n");
    if (!st.synced) {
        printf("state      none: no sync yet (run tokenmgr sync)\n");
        return EXIT_OK;
    }
    printf("tokens     %lld / %lld\n", (long long)st.tokens,
           (long long)st.capacity);
    printf("refill     %lld per %lld ms, next in %lld ms\n",
           (long long)st.refill_rate, (long long)st.refill_period_ms,
           (long long)st.refill_in_ms);
    if (st.recharge_mode)
        printf("recharge   on for %.1f s (target %lld)\n",
               (double)(st.now_ms - st.recharge_since_ms) / 1000.0,
               (long long)st.recharge_target);
    else
        printf("recharge   off\n");
    printf("inflight   %lld reservations, %lld tokens, %lld held for "
           "estimate errors\n",
           (long long)st.inflight, (long long)st.inflight_tokens,
           (long long)st.inflight_reserve);
    if (st.estimate_ratio > 0)
        printf("estimates  calls cost up to %.2f x their estimate lately\n",
               st.estimate_ratio);
    else
        printf("estimates  no call completed yet: valued at 4 x their "
               "estimate\n");
    printf("last sync  %.1f s ago\n", (double)st.last_sync_age_ms / 1000.0);
    return EXIT_OK;
}

/* sync --from-keepa: the free /token call, throttled across the pool. */
static int sync_from_keepa(tkm_client *c, int force)
{
    tkm_keepa *kc = NULL;
    tkm_keepa_sync_result r;
    tkm_code rc = tkm_keepa_open(c, &kc);
    int e = EXIT_OK;

    if (rc == TKM_OK)
        rc = tkm_keepa_sync(kc, force, &r);
    if (rc != TKM_OK) {
        e = fail(rc == TKM_ECONFIG || rc == TKM_EIO ? EXIT_CONFIG
                 : rc == TKM_EREDIS                 ? EXIT_UNAVAILABLE
                                                    : EXIT_OTHER,
                 "sync --from-keepa: %s", tkm_keepa_errstr(kc));
    } else if (r.throttled) {
        e = fail(EXIT_DENIED,
                 "sync --from-keepa: throttled: /token was called for this "
                 "pool recently; next allowed in %lld s (--force bypasses)",
                 (long long)((r.next_allowed_ms + 999) / 1000));
    } else {
        printf("synced from Keepa; balance %lld, refill rate %lld\n",
               (long long)r.tokens, (long long)r.refill_rate);
    }
    tkm_keepa_free(kc);
    return e;
}

static int cmd_sync(tkm_client *c, cmd_args *a)
{
    tkm_sync_info in = {
        .tokens = 0, .rate = -1, .refill_in_ms = -1, .timestamp_ms = -1};
    int have_tokens = 0;
    tkm_reconcile out;
    tkm_code rc;
    int e;

    int from_keepa = 0, force = 0;

    for (int i = 0; i < a->argc; i++) {
        const char *f = a->argv[i];
        const char *v = i + 1 < a->argc ? a->argv[i + 1] : NULL;
        if (strcmp(f, "--from-keepa") == 0) {
            from_keepa = 1;
            continue;
        }
        if (strcmp(f, "--force") == 0) {
            force = 1;
            continue;
        }
        if (strcmp(f, "--tokens") == 0) {
            e = number(f, v, -TOKENS_MAX, TOKENS_MAX, &in.tokens);
            have_tokens = 1;
        } else if (strcmp(f, "--rate") == 0) {
            e = number(f, v, 0, TOKENS_MAX, &in.rate);
        } else if (strcmp(f, "--refill-in") == 0) {
            e = number(f, v, 0, INT64_C(86400000), &in.refill_in_ms);
        } else if (strcmp(f, "--timestamp") == 0) {
            e = number(f, v, 0, INT64_MAX / 2, &in.timestamp_ms);
        } else {
            return usage("sync: unknown argument '%s'", f);
        }
        if (e != EXIT_OK)
            return e;
        i++;
    }
    if (from_keepa) {
        if (have_tokens || in.rate >= 0 || in.refill_in_ms >= 0 ||
            in.timestamp_ms >= 0)
            return usage("%s", "sync --from-keepa takes no --tokens, --rate, "
                               "--refill-in or --timestamp");
        return sync_from_keepa(c, force);
    }
    if (force)
        return usage("%s", "sync: --force goes with --from-keepa");
    if (!have_tokens || in.rate < 0)
        return usage("%s",
                     "sync needs --tokens N and --rate R (or --from-keepa)");
    rc = tkm_sync(c, &in, &out);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "sync");
    if (out.report_stale)
        printf("stale report ignored (older than the last applied); balance "
               "%lld\n",
               (long long)out.tokens);
    else
        printf("synced; balance %lld\n", (long long)out.tokens);
    return EXIT_OK;
}

static int cmd_acquire(tkm_client *c, cmd_args *a)
{
    const char *cost_text = NULL;
    int64_t cost, wait_s = -1;
    tkm_grant g;
    tkm_code rc;
    int e;

    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--wait") == 0) {
            e = number("--wait", i + 1 < a->argc ? a->argv[i + 1] : NULL, 0,
                       86400, &wait_s);
            if (e != EXIT_OK)
                return e;
            i++;
            continue;
        }
        if (a->argv[i][0] == '-' && a->argv[i][1] == '-')
            return usage("acquire: unknown argument '%s'", a->argv[i]);
        if (cost_text != NULL)
            return usage("acquire: unexpected argument '%s'", a->argv[i]);
        cost_text = a->argv[i];
    }
    if (cost_text == NULL)
        return usage("%s", "acquire needs COST");
    e = number("COST", cost_text, 0, TOKENS_MAX, &cost);
    if (e != EXIT_OK)
        return e;
    if (wait_s >= 0)
        rc = tkm_acquire(c, cost, wait_s * 1000, &g);
    else
        rc = tkm_try_acquire(c, cost, &g);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "acquire");
    if (a->json) {
        printf("{\"granted\":%s,", g.granted ? "true" : "false");
        if (g.granted)
            printf("\"grant\":\"%s\",", g.id);
        else
            printf("\"grant\":null,");
        printf("\"tokens\":%lld,\"reason\":\"%s\",\"retry_after_ms\":%lld,"
               "\"recharge_mode\":%s}\n",
               (long long)g.tokens, tkm_reason_str(g.reason),
               (long long)g.retry_after_ms, g.recharge_mode ? "true" : "false");
    } else if (g.granted) {
        printf("%s\n", g.id);
    }
    if (g.granted)
        return EXIT_OK;
    if (!a->json) {
        if (g.reason == TKM_REASON_WAIT_TOO_LONG)
            return fail(EXIT_DENIED,
                        "acquire %lld: the wait (%lld ms) is longer than "
                        "--wait %lld s; balance %lld",
                        (long long)cost, (long long)g.retry_after_ms,
                        (long long)wait_s, (long long)g.tokens);
        if (g.retry_after_ms == TKM_RETRY_NEVER)
            return fail(EXIT_DENIED,
                        "acquire %lld: denied (%s), balance %lld; refill "
                        "cannot cure it (rate 0 or no sync)",
                        (long long)cost, tkm_reason_str(g.reason),
                        (long long)g.tokens);
        return fail(EXIT_DENIED,
                    "acquire %lld: denied (%s), balance %lld; retry in "
                    "%lld ms",
                    (long long)cost, tkm_reason_str(g.reason),
                    (long long)g.tokens, (long long)g.retry_after_ms);
    }
    return EXIT_DENIED;
}

static int cmd_complete(tkm_client *c, cmd_args *a)
{
    const char *grant = NULL;
    int64_t consumed = -1;
    tkm_report rep = {0, -1};
    int have_left = 0;
    tkm_reconcile out;
    tkm_code rc;
    int e = EXIT_OK;

    for (int i = 0; i < a->argc; i++) {
        const char *f = a->argv[i];
        const char *v = i + 1 < a->argc ? a->argv[i + 1] : NULL;
        if (strcmp(f, "--consumed") == 0)
            e = number(f, v, 0, TOKENS_MAX, &consumed), i++;
        else if (strcmp(f, "--tokens-left") == 0)
            e = number(f, v, -TOKENS_MAX, TOKENS_MAX, &rep.tokens_left),
            have_left = 1, i++;
        else if (strcmp(f, "--timestamp") == 0)
            e = number(f, v, 0, INT64_MAX / 2, &rep.timestamp_ms), i++;
        else if (f[0] == '-' && f[1] == '-')
            return usage("complete: unknown argument '%s'", f);
        else if (grant == NULL)
            grant = f;
        else
            return usage("complete: unexpected argument '%s'", f);
        if (e != EXIT_OK)
            return e;
    }
    if (grant == NULL || consumed < 0)
        return usage("%s", "complete needs GRANT and --consumed N");
    if (have_left != (rep.timestamp_ms >= 0))
        return usage("%s",
                     "complete: --tokens-left and --timestamp go together");
    rc = tkm_complete(c, grant, consumed, have_left ? &rep : NULL, &out);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "complete");
    printf("completed %s; balance %lld%s\n", grant, (long long)out.tokens,
           out.report_stale     ? " (stale report ignored)"
           : out.report_applied ? " (from the report)"
                                : "");
    return EXIT_OK;
}

static int cmd_release(tkm_client *c, cmd_args *a)
{
    tkm_reconcile out;
    tkm_code rc;

    if (a->argc != 1 || a->argv[0][0] == '-')
        return usage("%s", "release needs exactly one GRANT");
    rc = tkm_release(c, a->argv[0], &out);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "release");
    printf("released %s; balance %lld\n", a->argv[0], (long long)out.tokens);
    return EXIT_OK;
}

static int cmd_recharge(tkm_client *c, cmd_args *a)
{
    int on;
    tkm_code rc;

    if (a->argc != 1 ||
        (strcmp(a->argv[0], "on") != 0 && strcmp(a->argv[0], "off") != 0))
        return usage("%s", "recharge needs 'on' or 'off'");
    on = strcmp(a->argv[0], "on") == 0;
    rc = tkm_recharge(c, on);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recharge");
    printf("recharge mode %s\n", on ? "on" : "off");
    return EXIT_OK;
}

static int cmd_reset(tkm_client *c, cmd_args *a)
{
    int64_t n = 0;
    tkm_code rc;

    if (a->argc != 0)
        return usage("reset: unexpected argument '%s'", a->argv[0]);
    rc = tkm_reset(c, &n);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "reset");
    printf("deleted %lld key%s of pool %s\n", (long long)n, n == 1 ? "" : "s",
           tkm_client_options(c)->pool);
    return EXIT_OK;
}

static int cmd_heartbeat(tkm_client *c, cmd_args *a)
{
    const char *phase = "";
    int64_t busy = 0;
    tkm_code rc;
    int e;

    /* Every argument is a flag and its value. */
    for (int i = 0; i < a->argc; i += 2) {
        const char *f = a->argv[i];
        const char *v = i + 1 < a->argc ? a->argv[i + 1] : NULL;
        if (strcmp(f, "--phase") == 0) {
            if (v == NULL)
                return usage("%s", "--phase needs a value");
            phase = v;
        } else if (strcmp(f, "--busy-for") == 0) {
            e = number(f, v, 1, 86400, &busy);
            if (e != EXIT_OK)
                return e;
        } else {
            return usage("heartbeat: unknown argument '%s'", f);
        }
    }
    rc =
        busy > 0 ? tkm_heartbeat_busy(c, phase, busy) : tkm_heartbeat(c, phase);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "heartbeat");
    printf("heartbeat from %s recorded%s\n", tkm_client_options(c)->worker_id,
           busy > 0 ? " (busy)" : "");
    return EXIT_OK;
}

static int cmd_workers(tkm_client *c, cmd_args *a)
{
    tkm_worker *w = NULL;
    size_t n = 0;
    tkm_pool_status st;
    tkm_code rc;

    if (a->argc != 0)
        return usage("workers: unexpected argument '%s'", a->argv[0]);
    rc = tkm_workers(c, &w, &n);
    if (rc == TKM_OK)
        rc = tkm_status(c, &st); /* Redis' now, for busy periods */
    if (rc != TKM_OK) {
        tkm_workers_free(w);
        return lib_fail(c, rc, "workers");
    }
    if (a->json) {
        printf("{\"pool\":\"%s\",\"workers\":[", tkm_client_options(c)->pool);
        for (size_t i = 0; i < n; i++) {
            printf("%s{", i ? "," : "");
            json_str("id", w[i].id, ",");
            json_secs_or_null("heartbeat_age_s", w[i].heartbeat_age_ms, ",");
            json_str("phase", w[i].phase, ",");
            json_int_or_null("busy_until_ms", w[i].busy_until_ms,
                             w[i].busy_until_ms < 0, ",");
            json_secs_or_null(
                "busy_for_s",
                w[i].busy_until_ms < 0 ? -1 : w[i].busy_until_ms - st.now_ms,
                ",");
            printf("\"alive\":%s}", w[i].alive ? "true" : "false");
        }
        printf("]}\n");
    } else if (n == 0) {
        printf("no worker has sent a heartbeat in pool %s\n",
               tkm_client_options(c)->pool);
    } else {
        printf("%-32s %10s  %-10s %s\n", "WORKER", "AGE", "BUSY", "PHASE");
        for (size_t i = 0; i < n; i++) {
            char busy[32] = "-";
            if (w[i].busy_until_ms >= 0)
                snprintf(busy, sizeof(busy), "%.0f s",
                         (double)(w[i].busy_until_ms - st.now_ms) / 1000.0);
            printf("%-32s %8.1f s  %-10s %s%s\n", w[i].id,
                   (double)w[i].heartbeat_age_ms / 1000.0, busy, w[i].phase,
                   w[i].alive ? "" : "  (stale)");
        }
    }
    tkm_workers_free(w);
    return EXIT_OK;
}

static void host_name(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "unknown");
    buf[len - 1] = '\0';
}

static void print_age(const char *label, int64_t now, int64_t at)
{
    if (at <= 0)
        printf("%-18s never\n", label);
    else
        printf("%-18s %.0f s ago\n", label, (double)(now - at) / 1000.0);
}

static int recovery_status(tkm_client *c, cmd_args *a)
{
    const tkm_options *o = tkm_client_options(c);
    tkm_recovery_state st;
    tkm_pool_status ps;
    tkm_code rc = tkm_recovery_status(c, &o->recovery, &st);

    if (rc == TKM_OK)
        rc = tkm_status(c, &ps); /* Redis' now */
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recovery status");
    if (a->json) {
        printf("{\"pool\":\"%s\",\"paused\":%s,\"escalated\":%s,", o->pool,
               st.paused ? "true" : "false", st.escalated ? "true" : "false");
        json_int_or_null("escalated_since_ms", st.escalated_ms, !st.escalated,
                         ",");
        json_int_or_null("last_action_ms", st.last_action_ms,
                         st.last_action_ms <= 0, ",");
        printf("\"actions_in_window\":%lld,\"max_actions\":%lld,"
               "\"window_s\":%lld,\"cooldown_left_s\":%.3f,"
               "\"grace_left_s\":%.3f,\"actions_total\":%lld,"
               "\"actions_failed\":%lld,\"lease_held\":%s,\"dry_run\":%s}\n",
               (long long)st.actions_in_window,
               (long long)o->recovery.max_actions,
               (long long)o->recovery.window_s,
               (double)st.cooldown_left_ms / 1000.0,
               (double)st.grace_left_ms / 1000.0, (long long)st.total,
               (long long)st.failed, st.lease_ttl_ms > 0 ? "true" : "false",
               o->recovery.dry_run ? "true" : "false");
        return EXIT_OK;
    }
    printf("%-18s %s\n", "pool", o->pool);
    printf("%-18s %s\n", "kill switch",
           st.paused ? "PAUSED (decisions audited, nothing runs)" : "off");
    if (st.escalated)
        printf("%-18s YES for %.0f s: run `tokenmgr recovery reset` after "
               "looking\n",
               "escalated", (double)(ps.now_ms - st.escalated_ms) / 1000.0);
    else
        printf("%-18s no\n", "escalated");
    print_age("last action", ps.now_ms, st.last_action_ms);
    printf("%-18s %lld of %lld per %lld s\n", "actions in window",
           (long long)st.actions_in_window, (long long)o->recovery.max_actions,
           (long long)o->recovery.window_s);
    printf("%-18s %.0f s\n", "cooldown left",
           (double)st.cooldown_left_ms / 1000.0);
    printf("%-18s %lld (%lld failed)\n", "actions ever", (long long)st.total,
           (long long)st.failed);
    if (st.lease_ttl_ms > 0)
        printf("%-18s held by an actor for %.0f s more\n", "lease",
               (double)st.lease_ttl_ms / 1000.0);
    return EXIT_OK;
}

static int recovery_log(tkm_client *c, cmd_args *a)
{
    int64_t count = 20;
    tkm_audit_entry *e = NULL;
    size_t n = 0;
    tkm_code rc;

    for (int i = 1; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--count") == 0) {
            int x = number("--count", i + 1 < a->argc ? a->argv[i + 1] : NULL,
                           1, 1000, &count);
            if (x != EXIT_OK)
                return x;
            i++;
        } else {
            return usage("recovery log: unknown argument '%s'", a->argv[i]);
        }
    }
    rc = tkm_recovery_log(c, count, &e, &n);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recovery log");
    if (a->json)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        if (a->json) {
            printf("%s{\"id\":\"%s\",\"time_ms\":%lld,", i ? "," : "", e[i].id,
                   (long long)e[i].time_ms);
            json_str("host", e[i].host, ",");
            json_str("decision", e[i].decision, ",");
            json_str("reason", e[i].reason, ",");
            json_str("inputs", e[i].inputs, ",");
            json_str("argv", e[i].argv, ",");
            json_str("action_id", e[i].action_id, ",");
            json_str("outcome", e[i].outcome, ",");
            json_int_or_null("exit", e[i].exit_status, e[i].exit_status < 0,
                             ",");
            json_int_or_null("duration_ms", e[i].duration_ms,
                             e[i].duration_ms < 0, ",");
            json_str("output", e[i].output, ",");
            printf("\"repeats\":%lld}", (long long)e[i].repeats);
        } else {
            printf("%s  %-10s %-12s %s%s%s%s%s\n", e[i].id, e[i].host,
                   e[i].decision, e[i].reason,
                   e[i].outcome[0] ? " outcome=" : "", e[i].outcome,
                   e[i].inputs[0] ? " " : "", e[i].inputs);
        }
    }
    if (a->json)
        printf("]\n");
    else if (n == 0)
        printf("no recovery decision recorded for pool %s\n",
               tkm_client_options(c)->pool);
    free(e);
    return EXIT_OK;
}

static int cmd_recovery(tkm_client *c, cmd_args *a)
{
    const char *sub = a->argc > 0 ? a->argv[0] : "";
    char host[256];
    tkm_code rc;

    host_name(host, sizeof(host));
    if (strcmp(sub, "status") == 0 && a->argc == 1)
        return recovery_status(c, a);
    if (strcmp(sub, "log") == 0)
        return recovery_log(c, a);
    if (a->argc != 1)
        return usage("%s",
                     "recovery needs status, reset, pause, resume or log");
    if (strcmp(sub, "reset") == 0)
        rc = tkm_recovery_reset(c, host,
                                "operator reset (tokenmgr recovery "
                                "reset)");
    else if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)
        rc = tkm_recovery_pause(c, host, strcmp(sub, "pause") == 0,
                                "operator (tokenmgr recovery)");
    else
        return usage("recovery: unknown subcommand '%s'", sub);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recovery");
    printf("recovery %s: done for pool %s\n", sub, tkm_client_options(c)->pool);
    return EXIT_OK;
}

/* The guarded action, from outside collectd: same guard, same audit. */
static int cmd_recover(tkm_client *c, cmd_args *a)
{
    const tkm_options *o = tkm_client_options(c);
    const tkm_recovery_options *r = &o->recovery;
    const char *reason = NULL;
    const char *argv[TKM_EXEC_ARGS_MAX + 1];
    char host[256], inputs[256], argv_text[1024] = "", err[512];
    tkm_recovery_ticket t;
    tkm_pool_status st;
    tkm_worker *w = NULL;
    size_t nw = 0;
    tkm_stall_tracker tr = {0};
    tkm_stall_input in;
    tkm_stall_verdict v;
    tkm_action *act = NULL;
    tkm_action_result res;
    tkm_action_env env;
    tkm_code rc;

    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--reason") == 0 && i + 1 < a->argc)
            reason = a->argv[++i];
        else
            return usage("recover: unexpected argument '%s'", a->argv[i]);
    }
    if (reason == NULL || reason[0] == '\0')
        return usage("%s", "recover needs --reason TEXT");
    if (r->exec_argc == 0 && r->webhook[0] == '\0')
        return fail(EXIT_CONFIG, "recover: no action configured (recovery.exec "
                                 "or recovery.webhook in the YAML)");
    for (int i = 0; i < r->exec_argc; i++) {
        argv[i] = r->exec[i];
        snprintf(argv_text + strlen(argv_text),
                 sizeof(argv_text) - strlen(argv_text), "%s%s", i ? " " : "",
                 r->exec[i]);
    }
    argv[r->exec_argc] = NULL;
    if (r->exec_argc > 0 && tkm_action_check_argv(argv, err, sizeof(err)))
        return fail(EXIT_CONFIG, "recover: recovery.exec: %s", err);
    rc = tkm_status(c, &st);
    if (rc == TKM_OK)
        rc = tkm_workers(c, &w, &nw);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recover");
    /* The same inputs the monitor would log, for the audit and the env. */
    in = (tkm_stall_input){.readable = st.synced,
                           .tokens = st.tokens,
                           .capacity = st.capacity,
                           .heartbeat_age_ms = st.heartbeat_age_ms,
                           .workers = w,
                           .nworkers = nw};
    tkm_stall_judge(&o->stall, &tr, &in, &v);
    snprintf(inputs, sizeof(inputs),
             "tokens=%lld heartbeat_age_ms=%lld stale=%zu rule=%s",
             (long long)st.tokens, (long long)st.heartbeat_age_ms, v.stale,
             tkm_stall_state_str(v.state));
    host_name(host, sizeof(host));
    rc = tkm_recovery_decide(c, r, "manual", host, reason, inputs,
                             r->exec_argc ? argv_text : "(webhook)", &t);
    if (rc != TKM_OK) {
        tkm_workers_free(w);
        return lib_fail(c, rc, "recover");
    }
    if (t.decision != TKM_DECIDE_ACT) {
        tkm_workers_free(w);
        if (t.decision == TKM_DECIDE_DRY_RUN) {
            printf("dry run: would run %s (audited)\n",
                   r->exec_argc ? argv_text : "the webhook");
            return EXIT_OK;
        }
        return fail(EXIT_DENIED, "recover: not run (%s): %s",
                    tkm_decision_str(t.decision),
                    t.decision == TKM_DECIDE_COOLDOWN
                        ? "the cooldown after the last action is running"
                    : t.decision == TKM_DECIDE_GRACE
                        ? "the last action's grace period is running"
                    : t.decision == TKM_DECIDE_LEASE
                        ? "another monitor is acting now"
                    : t.decision == TKM_DECIDE_PAUSED
                        ? "the kill switch is on (tokenmgr recovery resume)"
                        : "escalated: too many actions in the window; "
                          "tokenmgr recovery reset after looking");
    }
    env = (tkm_action_env){.pool = o->pool,
                           .reason = reason,
                           .tokens = st.tokens,
                           .heartbeat_age_s = st.heartbeat_age_ms < 0
                                                  ? -1
                                                  : st.heartbeat_age_ms / 1000,
                           .stale_workers = v.stale_workers,
                           .action_id = t.action_id};
    rc = r->exec_argc > 0
             ? tkm_action_exec(argv, &env, r->timeout_s * 1000, &act, err,
                               sizeof(err))
             : tkm_action_webhook(r->webhook, &env, r->timeout_s * 1000, &act,
                                  err, sizeof(err));
    tkm_workers_free(w);
    if (rc != TKM_OK) {
        tkm_recovery_finish(c, &t, host, "failed", -1, 0, err);
        return fail(EXIT_OTHER, "recover: %s", err);
    }
    tkm_action_wait(act, &res);
    tkm_action_free(act);
    rc = tkm_recovery_finish(c, &t, host,
                             res.timed_out          ? "timeout"
                             : res.exit_status == 0 ? "ok"
                                                    : "failed",
                             res.exit_status, res.duration_ms, res.output);
    if (rc != TKM_OK)
        return lib_fail(c, rc, "recover");
    if (res.timed_out)
        return fail(EXIT_OTHER,
                    "recover: action %s killed at its %lld s "
                    "deadline",
                    t.action_id, (long long)r->timeout_s);
    if (res.exit_status != 0)
        return fail(EXIT_OTHER, "recover: action %s failed (exit %d): %.200s",
                    t.action_id, res.exit_status, res.output);
    printf("recovery action %s ran in %lld ms\n", t.action_id,
           (long long)res.duration_ms);
    return EXIT_OK;
}

typedef struct command {
    const char *name;
    int (*run)(tkm_client *c, cmd_args *a);
    int takes_json;
    int takes_worker; /* --worker ID sets the client's worker id */
} command;

static const command commands[] = {
    {"status", cmd_status, 1, 0},   {"sync", cmd_sync, 0, 0},
    {"acquire", cmd_acquire, 1, 0}, {"complete", cmd_complete, 0, 0},
    {"release", cmd_release, 0, 0}, {"recharge", cmd_recharge, 0, 0},
    {"reset", cmd_reset, 0, 0},     {"heartbeat", cmd_heartbeat, 0, 1},
    {"workers", cmd_workers, 1, 0}, {"recovery", cmd_recovery, 1, 0},
    {"recover", cmd_recover, 0, 0},
};

/* Defaults, then the YAML file, the environment, and the flags. */
static int load_options(tkm_options *o, const char *config, const char *pool,
                        const char *redis, const char *worker)
{
    char err[1024];

    tkm_options_init(o);
    if (config == NULL)
        config = getenv("TOKENMGR_CONFIG");
    if (config != NULL && config[0] != '\0') {
        tkm_code rc = tkm_config_load_file(config, o, err, sizeof(err));
        if (rc != TKM_OK)
            return fail(EXIT_CONFIG, "%s", err);
    }
    if (tkm_options_from_env(o, err, sizeof(err)) != TKM_OK)
        return fail(EXIT_CONFIG, "%s", err);
    if (pool != NULL && tkm_options_set_from(o, "pool", pool, TKM_SOURCE_FLAG,
                                             NULL, err, sizeof(err)) != TKM_OK)
        return fail(EXIT_CONFIG, "%s", err);
    if (redis != NULL &&
        tkm_options_set_from(o, "redis.url", redis, TKM_SOURCE_FLAG, NULL, err,
                             sizeof(err)) != TKM_OK)
        return fail(EXIT_CONFIG, "%s", err);
    if (worker != NULL && snprintf(o->worker_id, sizeof(o->worker_id), "%s",
                                   worker) >= (int)sizeof(o->worker_id))
        return fail(EXIT_USAGE, "--worker is longer than %d bytes",
                    TKM_WORKER_ID_MAX);
    if (tkm_options_validate(o, err, sizeof(err)) != TKM_OK)
        return fail(EXIT_CONFIG, "%s", err);
    return EXIT_OK;
}

/* What the command line asks for, before any configuration is read. */
typedef struct invocation {
    const char *config, *pool, *redis, *worker;
    const command *cmd;
    cmd_args a; /* a.argv is allocated: free it */
} invocation;

/*
 * The global options, the command and its arguments.  Returns -1 to go on,
 * or the exit status (--help, --version, a usage error).  Connects to
 * nothing and reads no file, so the fuzzer calls it (tests/fuzz/).
 */
static int parse_command_line(int argc, char **argv, invocation *inv)
{
    int i;

    memset(inv, 0, sizeof(*inv));
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *f = argv[i];
        const char **slot = NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(f, "--version") == 0) {
            printf("tokenmgr %s\n", tkm_version());
            return EXIT_OK;
        }
        if (strcmp(f, "--config") == 0)
            slot = &inv->config;
        else if (strcmp(f, "--pool") == 0)
            slot = &inv->pool;
        else if (strcmp(f, "--redis") == 0)
            slot = &inv->redis;
        else
            return usage("unknown option '%s'", f);
        if (i + 1 >= argc)
            return usage("%s needs a value", f);
        *slot = argv[++i];
    }
    if (i >= argc)
        return usage("%s", "no command given");
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(commands[k].name, argv[i]) == 0)
            inv->cmd = &commands[k];
    }
    if (inv->cmd == NULL)
        return usage("unknown command '%s'", argv[i]);
    /* --json is accepted anywhere after the command; the rest is the command's.
     */
    inv->a.argv = calloc((size_t)argc, sizeof(*inv->a.argv));
    if (inv->a.argv == NULL)
        return fail(EXIT_OTHER, "out of memory");
    for (int k = i + 1; k < argc; k++) {
        if (inv->cmd->takes_json && strcmp(argv[k], "--json") == 0) {
            inv->a.json = 1;
        } else if (inv->cmd->takes_worker && strcmp(argv[k], "--worker") == 0) {
            if (k + 1 >= argc)
                return usage("%s", "--worker needs a value");
            inv->worker = argv[++k];
        } else {
            inv->a.argv[inv->a.argc++] = argv[k];
        }
    }
    return -1;
}

#ifndef TKM_CLI_NO_MAIN
int main(int argc, char **argv)
{
    invocation inv;
    tkm_options opts;
    tkm_client *c = NULL;
    tkm_code rc;
    int e;

    e = parse_command_line(argc, argv, &inv);
    if (e >= 0) {
        free(inv.a.argv);
        return e;
    }
    e = load_options(&opts, inv.config, inv.pool, inv.redis, inv.worker);
    if (e == EXIT_OK) {
        rc = tkm_client_open(&opts, &c);
        if (rc != TKM_OK)
            e = lib_fail(c, rc, "cannot create the client");
        else
            e = inv.cmd->run(c, &inv.a);
    }
    tkm_client_free(c);
    free(inv.a.argv);
    return e;
}
#endif
