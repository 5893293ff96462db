/*
 * The collectd plugin's <Pool> block: liboconfig's parser is not a library
 * collectd-dev ships, so the input drives a small deterministic generator
 * of oconfig trees (keys from the plugin's vocabulary or raw bytes, values
 * of every type, nested blocks) handed to tkm__pool_conf_parse().
 */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "pool_config.h"

typedef struct src {
    const uint8_t *p;
    size_t n;
    int raw; /* raw bytes were used: they may spell anything */
} src;

static unsigned byte(src *s)
{
    if (s->n == 0)
        return 0;
    s->n--;
    return *s->p++;
}

/* The plugin's own option names, then names it must refuse. */
#define NKEYS_MAX 40
static const char *keys[NKEYS_MAX];
static size_t nkeys;

static void load_keys(void)
{
    if (nkeys > 0)
        return;
    nkeys = tkm__pool_conf_names(keys, NKEYS_MAX - 2);
    keys[nkeys++] = "timeout"; /* option names are case-insensitive */
    keys[nkeys++] = "Pool";    /* a block inside a block */
}

static const char *const strings[] = {
    "unix:///tmp/tokenmgr-fuzz.sock",
    "redis://worker:s3cretpassword@127.0.0.1:6379/0",
    "redis://127.0.0.1",
    "native",
    "legacy",
    "/bin/true",
    "relative/path",
    "http://user:s3cretpassword@127.0.0.1:9/hook",
    "https://example.invalid/hook",
    "ftp://example.invalid/",
    "/nonexistent/tokenmgr.yaml",
    "keepa",
    "",
    "true",
};

static const double numbers[] = {0,      1,   -1,   2,     60,     900,
                                 3600,   1e9, 0.5,  0.97,  1e300,  -1e300,
                                 600001, 1.5, -0.0, 86400, 604800, 1000};

static char *text(src *s)
{
    unsigned b = byte(s);
    char *t;

    if (b < 200)
        return strdup(strings[b % (sizeof(strings) / sizeof(strings[0]))]);
    /* Raw bytes: up to 63 of them. */
    s->raw = 1;
    size_t n = byte(s) % 64;
    if (n > s->n)
        n = s->n;
    t = malloc(n + 1);
    if (t == NULL)
        return NULL;
    memcpy(t, s->p, n);
    t[n] = '\0';
    s->p += n;
    s->n -= n;
    return t;
}

static double number(src *s)
{
    unsigned b = byte(s);
    uint64_t bits = 0;
    double d;

    if (b < 220)
        return numbers[b % (sizeof(numbers) / sizeof(numbers[0]))];
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | byte(s);
    memcpy(&d, &bits, sizeof(d));
    return d; /* any double, NaN and infinities included */
}

static void item_free(oconfig_item_t *ci)
{
    for (int i = 0; i < ci->values_num; i++) {
        if (ci->values[i].type == OCONFIG_TYPE_STRING)
            free(ci->values[i].value.string);
    }
    free(ci->values);
    for (int i = 0; i < ci->children_num; i++)
        item_free(&ci->children[i]);
    free(ci->children);
    free(ci->key);
}

static void item(src *s, oconfig_item_t *ci, oconfig_item_t *parent, int depth)
{
    unsigned b = byte(s);

    memset(ci, 0, sizeof(*ci));
    ci->parent = parent;
    if (b < 240) {
        ci->key = strdup(keys[b % nkeys]);
    } else {
        ci->key = text(s);
        s->raw = 1; /* "unknown option '<key>'" quotes it */
    }
    if (ci->key == NULL)
        ci->key = strdup("");
    ci->values_num = (int)(byte(s) % 4);
    ci->values = calloc((size_t)ci->values_num + 1, sizeof(*ci->values));
    for (int i = 0; i < ci->values_num; i++) {
        oconfig_value_t *v = &ci->values[i];
        switch (byte(s) % 3) {
        case 0:
            v->type = OCONFIG_TYPE_STRING;
            v->value.string = text(s);
            if (v->value.string == NULL)
                v->value.string = strdup("");
            break;
        case 1:
            v->type = OCONFIG_TYPE_NUMBER;
            v->value.number = number(s);
            break;
        default:
            v->type = OCONFIG_TYPE_BOOLEAN;
            v->value.boolean = (int)(byte(s) & 1);
            break;
        }
    }
    if (depth < 3 && (byte(s) & 3) == 0) {
        ci->children_num = (int)(byte(s) % 6);
        ci->children =
            calloc((size_t)ci->children_num + 1, sizeof(*ci->children));
        for (int i = 0; i < ci->children_num; i++)
            item(s, &ci->children[i], ci, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    src s = {data, size, 0};
    oconfig_item_t block;
    tkm__pool_conf conf;
    char err[1024];
    int n;

    load_keys();
    memset(&block, 0, sizeof(block));
    block.key = strdup("Pool");
    block.values_num = 1;
    block.values = calloc(1, sizeof(*block.values));
    block.values[0].type = OCONFIG_TYPE_STRING;
    if (byte(&s) & 7) {
        block.values[0].value.string = strdup("keepa");
    } else {
        /* Messages quote the pool name, whatever it spells. */
        block.values[0].value.string = text(&s);
        s.raw = 1;
    }
    if (block.values[0].value.string == NULL)
        block.values[0].value.string = strdup("");
    n = (int)(byte(&s) % 16);
    block.children = calloc((size_t)n + 1, sizeof(*block.children));
    block.children_num = n;
    for (int i = 0; i < n; i++)
        item(&s, &block.children[i], &block, 1);

    memset(err, 0, sizeof(err));
    if (tkm__pool_conf_parse(&block, &conf, err, sizeof(err)) == 0) {
        char why[512];
        FUZZ_ASSERT(tkm_options_validate(&conf.opts, why, sizeof(why)) ==
                    TKM_OK);
        FUZZ_ASSERT(conf.opts.stall.confirmations >= 1);
        FUZZ_ASSERT(conf.opts.recovery.exec_argc == 0 ||
                    conf.opts.recovery.exec[0][0] == '/');
        tkm__pool_conf_clear(&conf);
    } else {
        FUZZ_ASSERT(strncmp(err, "<Pool", 5) == 0);
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "%s\n", err);
        /* The passwords of the vocabulary's URLs never show in a message
         * about the options that take URLs (ConfigFile, Exec, Layout or an
         * unknown option's name may quote a URL given where a path, a word
         * or a name belongs; the pool is "keepa" unless s.raw). */
        const char *what = err + strlen("<Pool \"keepa\"> ");
        if (!s.raw && (strncmp(what, "RedisURL", 8) == 0 ||
                       strncmp(what, "<Recovery> Webhook", 18) == 0))
            FUZZ_ASSERT(strstr(err, "s3cretpassword") == NULL);
    }
    item_free(&block);
    return 0;
}
