/*
 * The Keepa response parser: the only file that talks to yajl.  Streaming,
 * so a body of megabytes is parsed as it arrives; it keeps only the token
 * fields and the error object of the top level.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "keepa_json.h"

struct tkm__json {
    yajl_handle h;
    tkm__keepa_fields *out;
    int depth;    /* 1 inside the top-level object */
    int in_error; /* inside the top-level "error" object */
    char key[32]; /* the current key at depth 1 or 2 */
};

static void take_key(tkm__json *j, const unsigned char *k, size_t len)
{
    if (len >= sizeof(j->key))
        len = sizeof(j->key) - 1; /* long keys match nothing we want */
    memcpy(j->key, k, len);
    j->key[len] = '\0';
}

static int on_key(void *ctx, const unsigned char *k, size_t len)
{
    tkm__json *j = ctx;

    if (j->depth == 1 || (j->depth == 2 && j->in_error))
        take_key(j, k, len);
    return 1;
}

static int on_start_map(void *ctx)
{
    tkm__json *j = ctx;

    j->depth++;
    if (j->depth == 2 && strcmp(j->key, "error") == 0)
        j->in_error = 1;
    return 1;
}

static int on_end_map(void *ctx)
{
    tkm__json *j = ctx;

    if (j->depth == 2)
        j->in_error = 0;
    j->depth--;
    j->key[0] = '\0';
    return 1;
}

static int on_start_array(void *ctx)
{
    tkm__json *j = ctx;

    j->depth++;
    return 1;
}

static int on_end_array(void *ctx)
{
    tkm__json *j = ctx;

    j->depth--;
    return 1;
}

/* A number at the top level: one of the token fields, or nothing. */
static void number(tkm__json *j, double d, long long i, int is_int)
{
    static const struct {
        const char *name;
        int bit;
        size_t offset;
    } fields[] = {
        {"tokensLeft", TKM__F_TOKENS_LEFT,
         offsetof(tkm__keepa_fields, tokens_left)},
        {"tokensConsumed", TKM__F_CONSUMED,
         offsetof(tkm__keepa_fields, tokens_consumed)},
        {"refillIn", TKM__F_REFILL_IN,
         offsetof(tkm__keepa_fields, refill_in_ms)},
        {"refillRate", TKM__F_RATE, offsetof(tkm__keepa_fields, refill_rate)},
        {"timestamp", TKM__F_TIMESTAMP,
         offsetof(tkm__keepa_fields, timestamp_ms)},
        {"processingTimeInMs", TKM__F_PROCESSING,
         offsetof(tkm__keepa_fields, processing_ms)},
    };

    if (j->depth != 1)
        return;
    if (strcmp(j->key, "tokenFlowReduction") == 0) {
        j->out->token_flow_reduction = is_int ? (double)i : d;
        j->out->present |= TKM__F_FLOW;
        return;
    }
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        if (strcmp(j->key, fields[f].name) != 0)
            continue;
        if (!is_int) {
            /* 5.0 is an integer; 5.5, NaN or 1e300 are not. */
            if (!isfinite(d) || d != floor(d) || fabs(d) > 9e15)
                return;
            i = (long long)d;
        }
        *(int64_t *)(void *)((char *)j->out + fields[f].offset) = i;
        j->out->present |= fields[f].bit;
    }
}

static int on_integer(void *ctx, long long i)
{
    number(ctx, 0, i, 1);
    return 1;
}

static int on_double(void *ctx, double d)
{
    number(ctx, d, 0, 0);
    return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    tkm__json *j = ctx;
    char *dst = NULL;
    size_t cap = 0;

    if (j->depth == 2 && j->in_error && strcmp(j->key, "message") == 0) {
        dst = j->out->error_message;
        cap = sizeof(j->out->error_message);
    } else if (j->depth == 2 && j->in_error && strcmp(j->key, "type") == 0) {
        dst = j->out->error_type;
        cap = sizeof(j->out->error_type);
    }
    if (dst != NULL) {
        if (len >= cap)
            len = cap - 1;
        memcpy(dst, s, len);
        dst[len] = '\0';
    }
    return 1;
}

static const yajl_callbacks callbacks = {
    NULL,                           /* null */
    NULL,                           /* boolean */
    on_integer, on_double,    NULL, /* number: integer and double are used
                                       instead */
    on_string,  on_start_map, on_key, on_end_map, on_start_array, on_end_array,
};

tkm__json *tkm__json_new(tkm__keepa_fields *out)
{
    tkm__json *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    memset(out, 0, sizeof(*out));
    j->out = out;
    j->h = yajl_alloc(&callbacks, NULL, j);
    if (j->h == NULL) {
        free(j);
        return NULL;
    }
    return j;
}

int tkm__json_feed(tkm__json *j, const char *buf, size_t len)
{
    return yajl_parse(j->h, (const unsigned char *)buf, len) == yajl_status_ok
               ? 0
               : -1;
}

int tkm__json_finish(tkm__json *j)
{
    return yajl_complete_parse(j->h) == yajl_status_ok ? 0 : -1;
}

void tkm__json_free(tkm__json *j)
{
    if (j == NULL)
        return;
    yajl_free(j->h);
    free(j);
}
