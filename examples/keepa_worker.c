/*
 * keepa_worker: an ingestion worker in the shape of the original
 * SmartIngestor, built on libtokenmgr's Keepa client.
 *
 *   keepa_worker --output FILE --state DIR [--config FILE] [--batch N]
 *                [--offers N] [--max-pages N] [--worker ID]
 *
 * It pages through /deal, then fetches the deals' products with /product in
 * batches and appends them to FILE as JSON lines.  Progress is checkpointed
 * in DIR so that a restart (even after kill -9) resumes without re-fetching
 * and without losing or repeating a product: every append is followed by a
 * checkpoint that records the output's length, and a restart first cuts the
 * output back to that length.  It beats in the pagination loop and in each
 * batch.  SIGTERM/SIGINT: the call in flight completes (and is accounted
 * for), a wait for tokens is abandoned, the checkpoint is saved, exit 0.
 * A 429 is never read as "no more data" (SEED failure 13): the client waits
 * for tokens and retries.  Redis unreachable means no call was made (the
 * client fails closed): it tries again each second for up to 60 s, then
 * exits 1 for the supervisor.
 *
 * Exit: 0 done or stopped by a signal; 1 an error (the checkpoint keeps the
 * position); 64 usage; 78 configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "tokenmgr.h"

#define PAGE_COST 5 /* /deal: 5 tokens a page */
#define ASIN_LEN  10
/* Redis unreachable (a restart, a pause): no call was made, the client
 * fails closed.  Try again each second for this long before exiting 1 for
 * the supervisor: a blip must not become a restart storm, nor spend
 * systemd's StartLimitBurst. */
#define REDIS_PATIENCE_S 60

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct checkpoint {
    int64_t deal_page;     /* next deal page to fetch; -1 when pages are done */
    int64_t asins_bytes;   /* valid length of the ASIN list */
    int64_t product_index; /* next ASIN to fetch */
    int64_t output_bytes;  /* valid length of the output */
} checkpoint;

typedef struct worker {
    const char *output;
    char state_path[4096];
    char asins_path[4096];
    int64_t batch;
    int64_t offers;
    int64_t max_pages;
    tkm_client *client;
    tkm_keepa *keepa;
    checkpoint cp;
    int64_t fetched;
} worker;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("keepa_worker: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- files ------------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Append and flush to disk; returns the new length or -1. */
static int64_t append(const char *path, int64_t at, const char *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    int64_t end = -1;

    if (fd < 0)
        return -1;
    /* Whatever lies past the checkpointed length is from a run that died
     * before its checkpoint: it is written again now, exactly once. */
    if (ftruncate(fd, at) == 0 && lseek(fd, at, SEEK_SET) == at &&
        write_all(fd, buf, len) == 0 && fsync(fd) == 0)
        end = at + (int64_t)len;
    close(fd);
    return end;
}

static int save_checkpoint(worker *w)
{
    char tmp[4200], text[256];
    int fd, n, ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", w->state_path);
    n = snprintf(text, sizeof(text),
                 "deal_page=%lld\nasins_bytes=%lld\nproduct_index=%lld\n"
                 "output_bytes=%lld\n",
                 (long long)w->cp.deal_page, (long long)w->cp.asins_bytes,
                 (long long)w->cp.product_index, (long long)w->cp.output_bytes);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ok = write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, w->state_path) != 0)
        return -1;
    return 0;
}

static int load_checkpoint(worker *w)
{
    FILE *fp = fopen(w->state_path, "r");
    char line[256];

    memset(&w->cp, 0, sizeof(w->cp));
    if (fp == NULL)
        return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *eq = strchr(line, '=');
        int64_t *field = NULL;
        if (eq == NULL)
            continue;
        *eq = '\0';
        eq[strcspn(eq + 1, "\n") + 1] = '\0';
        if (strcmp(line, "deal_page") == 0)
            field = &w->cp.deal_page;
        else if (strcmp(line, "asins_bytes") == 0)
            field = &w->cp.asins_bytes;
        else if (strcmp(line, "product_index") == 0)
            field = &w->cp.product_index;
        else if (strcmp(line, "output_bytes") == 0)
            field = &w->cp.output_bytes;
        if (field == NULL ||
            tkm_parse_int(eq + 1, -1, INT64_MAX / 2, field) != TKM_OK) {
            say("%s: bad line '%s'", w->state_path, line);
            fclose(fp);
            return -1;
        }
    }
    fclose(fp);
    return 0;
}

/* ---- the API ----------------------------------------------------------- */

/*
 * One paid call.  Returns 0 with *tree, 1 when stopped, 2 for a request
 * Keepa refused (skip it), -1 on errors.
 */
static int call(worker *w, const char *path, const char *const *params,
                int64_t estimate, yajl_val *tree)
{
    int redis_waited = 0;

    for (;;) {
        tkm_keepa_response r;
        tkm_code rc = tkm_keepa_request(w->keepa, path, params, estimate, &r);
        char err[256];

        if (rc == TKM_OK) {
            *tree = yajl_tree_parse(r.body ? r.body : "", err, sizeof(err));
            tkm_keepa_response_free(&r);
            if (*tree == NULL) {
                say("%s: unreadable answer: %s", path, err);
                return -1;
            }
            return 0;
        }
        tkm_keepa_response_free(&r);
        if (rc == TKM_ECANCELED || stop)
            return 1;
        if (rc == TKM_EAPI) {
            say("%s", tkm_keepa_errstr(w->keepa));
            return 2;
        }
        if (rc == TKM_EREDIS && redis_waited < REDIS_PATIENCE_S) {
            if (redis_waited == 0)
                say("%s; trying again each second for up to %d s",
                    tkm_keepa_errstr(w->keepa), REDIS_PATIENCE_S);
            sleep(1);
            redis_waited++;
            continue;
        }
        if (rc != TKM_EWAIT) {
            say("%s", tkm_keepa_errstr(w->keepa));
            return -1;
        }
        /* Tokens are far away.  A Celery worker would be freed here; a
         * process of its own waits, visibly, and tries again. */
        say("%s; waiting", tkm_keepa_errstr(w->keepa));
        for (int i = 0; i < 10 && !stop; i++) {
            (void)tkm_heartbeat(w->client, "waiting for tokens (long)");
            sleep(1);
        }
    }
}

static const char *string_at(yajl_val v, const char *const *path)
{
    yajl_val s = yajl_tree_get(v, (const char **)path, yajl_t_string);

    return s ? YAJL_GET_STRING(s) : NULL;
}

static int valid_asin(const char *a)
{
    if (a == NULL || strlen(a) != ASIN_LEN)
        return 0;
    for (const char *p = a; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    }
    return 1;
}

/* Page through the deals, appending their ASINs to the list. */
static int paginate(worker *w)
{
    static const char *dr_path[] = {"deals", "dr", NULL};
    static const char *asin_path[] = {"asin", NULL};

    while (w->cp.deal_page >= 0 && !stop) {
        char selection[128], phase[64];
        const char *params[] = {"domain", "1", "selection", selection, NULL};
        yajl_val tree = NULL, list;
        char *buf;
        size_t len = 0, n;
        int rc;

        snprintf(selection, sizeof(selection), "{\"page\":%lld,\"domainId\":1}",
                 (long long)w->cp.deal_page);
        snprintf(phase, sizeof(phase), "paginating deals p%lld",
                 (long long)w->cp.deal_page);
        (void)tkm_heartbeat(w->client, phase);
        rc = call(w, "/deal", params, PAGE_COST, &tree);
        if (rc != 0)
            return rc == 2 ? -1 : rc;
        list = yajl_tree_get(tree, dr_path, yajl_t_array);
        n = list ? YAJL_GET_ARRAY(list)->len : 0;
        buf = malloc(n * (ASIN_LEN + 1) + 1);
        for (size_t i = 0; buf != NULL && i < n; i++) {
            const char *a =
                string_at(YAJL_GET_ARRAY(list)->values[i], asin_path);
            if (valid_asin(a)) {
                memcpy(buf + len, a, ASIN_LEN);
                buf[len + ASIN_LEN] = '\n';
                len += ASIN_LEN + 1;
            }
        }
        yajl_tree_free(tree);
        if (buf == NULL)
            return -1;
        if (len > 0) {
            int64_t end = append(w->asins_path, w->cp.asins_bytes, buf, len);
            if (end < 0) {
                free(buf);
                say("%s: %s", w->asins_path, strerror(errno));
                return -1;
            }
            w->cp.asins_bytes = end;
        }
        free(buf);
        /* An empty page is the end of the deals. */
        if (n == 0 || (w->max_pages > 0 && w->cp.deal_page + 1 >= w->max_pages))
            w->cp.deal_page = -1;
        else
            w->cp.deal_page++;
        if (save_checkpoint(w) != 0) {
            say("%s: %s", w->state_path, strerror(errno));
            return -1;
        }
    }
    return stop ? 1 : 0;
}

/* Render one product as a JSON line (the fields this example keeps). */
static size_t product_line(yajl_val p, char *out, size_t cap)
{
    static const char *asin_path[] = {"asin", NULL};
    static const char *title_path[] = {"title", NULL};
    const char *asin = string_at(p, asin_path);
    const char *title = string_at(p, title_path);
    size_t n = 0;

    if (!valid_asin(asin))
        return 0;
    n += (size_t)snprintf(out + n, cap - n, "{\"asin\":\"%s\",\"title\":\"",
                          asin);
    for (const char *t = title ? title : ""; *t && n + 8 < cap; t++) {
        if (*t == '"' || *t == '\\')
            out[n++] = '\\';
        if ((unsigned char)*t >= 0x20)
            out[n++] = *t;
    }
    n += (size_t)snprintf(out + n, cap - n, "\"}\n");
    return n < cap ? n : 0;
}

static int fetch_products(worker *w)
{
    static const char *products_path[] = {"products", NULL};
    FILE *fp = fopen(w->asins_path, "r");
    char(*asins)[ASIN_LEN + 1] = NULL;
    int64_t total = 0, cap = 0;
    char line[64];
    int rc = 0;

    if (fp == NULL)
        return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof(line), fp) != NULL &&
           (total + 1) * (ASIN_LEN + 1) <= w->cp.asins_bytes) {
        if (total == cap) {
            cap = cap ? cap * 2 : 256;
            asins = realloc(asins, (size_t)cap * sizeof(*asins));
            if (asins == NULL) {
                fclose(fp);
                return -1;
            }
        }
        snprintf(asins[total++], ASIN_LEN + 1, "%.*s", ASIN_LEN, line);
    }
    fclose(fp);
    while (w->cp.product_index < total && !stop && rc == 0) {
        int64_t first = w->cp.product_index;
        int64_t n = total - first < w->batch ? total - first : w->batch;
        char *list = malloc((size_t)n * (ASIN_LEN + 1) + 1);
        char offers[24], phase[64];
        const char *params[] = {"domain", "1", "asin", list, NULL, NULL, NULL};
        yajl_val tree = NULL, products;
        char *out = NULL;
        size_t len = 0;

        if (list == NULL)
            break;
        list[0] = '\0';
        for (int64_t i = 0; i < n; i++) {
            strcat(list, asins[first + i]);
            if (i + 1 < n)
                strcat(list, ",");
        }
        if (w->offers > 0) {
            snprintf(offers, sizeof(offers), "%lld", (long long)w->offers);
            params[4] = "offers";
            params[5] = offers;
        }
        snprintf(phase, sizeof(phase), "batch %lld/%lld",
                 (long long)(first / w->batch + 1),
                 (long long)((total + w->batch - 1) / w->batch));
        (void)tkm_heartbeat(w->client, phase);
        /* The estimate: 1 per ASIN, or one page of offers (6) each; the
         * real cost is reconciled from tokensConsumed. */
        rc = call(w, "/product", params, n * (w->offers > 0 ? 6 : 1), &tree);
        free(list);
        if (rc == 2) {
            rc = 0; /* refused: skip the batch, keep going */
        } else if (rc == 0) {
            products = yajl_tree_get(tree, products_path, yajl_t_array);
            size_t np = products ? YAJL_GET_ARRAY(products)->len : 0;
            out = malloc(np * 512 + 1);
            for (size_t i = 0; out != NULL && i < np; i++)
                len += product_line(YAJL_GET_ARRAY(products)->values[i],
                                    out + len, 512);
            yajl_tree_free(tree);
            if (out == NULL) {
                rc = -1;
                break;
            }
            if (len > 0) {
                int64_t end = append(w->output, w->cp.output_bytes, out, len);
                if (end < 0) {
                    say("%s: %s", w->output, strerror(errno));
                    free(out);
                    rc = -1;
                    break;
                }
                w->cp.output_bytes = end;
            }
            free(out);
            w->fetched += (int64_t)np;
        } else {
            break;
        }
        w->cp.product_index = first + n;
        if (save_checkpoint(w) != 0) {
            say("%s: %s", w->state_path, strerror(errno));
            rc = -1;
        }
    }
    free(asins);
    return rc != 0 ? rc : (stop ? 1 : 0);
}

/* ---- main ------------------------------------------------------------------
 */

static const char usage_text[] =
    "usage: keepa_worker --output FILE --state DIR [--config FILE] "
    "[--batch N] [--offers N]\n"
    "                    [--max-pages N] [--worker ID]\n"
    "\n"
    "The example Keepa worker: deal pages, then product batches, as JSON "
    "lines in FILE,\n"
    "checkpointed in DIR (a restart, even after kill -9, loses and repeats "
    "nothing).\n"
    "  --output FILE   the products, one JSON line each\n"
    "  --state DIR     its checkpoint\n"
    "  --config FILE   tokenmgr's YAML (else $TOKENMGR_CONFIG)\n"
    "  --batch N       ASINs per /product call (1..100, 10)\n"
    "  --offers N      offers=N on /product (20..100; none by default)\n"
    "  --max-pages N   deal pages to read (all by default)\n"
    "  --worker ID     its worker id (else <hostname>:<pid>)\n"
    "The access key: keepa.key_file, else $TOKENMGR_KEEPA_KEY.  SIGTERM "
    "finishes the\n"
    "call in flight, then exits.  Redis unreachable: it tries each second "
    "for 60 s.\n"
    "Exit: 0 done or stopped, 1 an error (the checkpoint keeps the "
    "position), 64 usage,\n78 configuration.\n";

static int usage(const char *why)
{
    say("%s", why);
    fputs(usage_text, stderr);
    return 64;
}

int main(int argc, char **argv)
{
    const char *config = getenv("TOKENMGR_CONFIG"), *state = NULL;
    const char *worker_id = NULL;
    worker w = {.batch = 10};
    tkm_options o;
    char err[1024];
    struct sigaction sa;
    int rc;

    /* First: a SIGTERM that comes during start-up is a clean stop too. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: sleeps return at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (int i = 1; i < argc; i += 2) { /* --option value */
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *num = NULL, min = 1, max = 100;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (v == NULL)
            return usage("every option takes a value");
        if (strcmp(f, "--output") == 0)
            w.output = v;
        else if (strcmp(f, "--state") == 0)
            state = v;
        else if (strcmp(f, "--config") == 0)
            config = v;
        else if (strcmp(f, "--worker") == 0)
            worker_id = v;
        else if (strcmp(f, "--batch") == 0)
            num = &w.batch;
        else if (strcmp(f, "--offers") == 0)
            num = &w.offers, min = 20;
        else if (strcmp(f, "--max-pages") == 0)
            num = &w.max_pages, max = 1000000;
        else
            return usage("unknown option");
        if (num != NULL && tkm_parse_int(v, min, max, num) != TKM_OK) {
            say("%s: '%s' is not an integer in %lld..%lld", f, v,
                (long long)min, (long long)max);
            return 64;
        }
    }
    if (w.output == NULL || state == NULL)
        return usage("--output and --state are required");
    if (mkdir(state, 0755) != 0 && errno != EEXIST) {
        say("%s: %s", state, strerror(errno));
        return 1;
    }
    snprintf(w.state_path, sizeof(w.state_path), "%s/checkpoint", state);
    snprintf(w.asins_path, sizeof(w.asins_path), "%s/asins", state);

    tkm_options_init(&o);
    if (config != NULL && tkm_config_load_file(config, &o, err, sizeof(err))) {
        say("%s", err);
        return 78;
    }
    if (tkm_options_from_env(&o, err, sizeof(err)) != TKM_OK) {
        say("%s", err);
        return 78;
    }
    if (worker_id != NULL)
        snprintf(o.worker_id, sizeof(o.worker_id), "%s", worker_id);
    if (tkm_client_open(&o, &w.client) != TKM_OK ||
        tkm_keepa_open(w.client, &w.keepa) != TKM_OK) {
        say("%s", w.keepa ? tkm_keepa_errstr(w.keepa) : tkm_errstr(w.client));
        tkm_keepa_free(w.keepa);
        tkm_client_free(w.client);
        return 78;
    }
    tkm_client_set_cancel(w.client, &stop);

    if (load_checkpoint(&w) != 0) {
        rc = 1;
    } else {
        say("%s: starting at deal page %lld, product %lld",
            tkm_client_options(w.client)->worker_id, (long long)w.cp.deal_page,
            (long long)w.cp.product_index);
        rc = paginate(&w);
        if (rc == 0)
            rc = fetch_products(&w);
    }
    if (rc == 1)
        say("stopped by a signal; checkpoint saved at deal page %lld, "
            "product %lld",
            (long long)w.cp.deal_page, (long long)w.cp.product_index);
    else if (rc == 0)
        say("done: %lld products this run, %lld in all", (long long)w.fetched,
            (long long)w.cp.product_index);
    tkm_keepa_free(w.keepa);
    tkm_client_free(w.client);
    return rc < 0 ? 1 : 0;
}
