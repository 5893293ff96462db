/*
 * The Keepa response parser: the only file that talks to yajl.  Streaming,
 * so a body of megabytes is parsed as it arrives; it keeps only the token
 * fields and the error object of the top level.
 *
 * yajl lexes a token that spans two chunks again from its start with every
 * chunk, so one long token costs time quadratic in its length (a 20 MB
 * string took seconds, a 250 MB one minutes).  A small lexer in front of
 * it bounds what yajl ever sees of one token: a string is passed on up to
 * its first TKM__JSON_STRING_KEEP bytes (cut between two characters, then
 * closed), and a number or literal longer than TKM__JSON_BARE_MAX bytes
 * ends the parse as not JSON.
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
    /* The lexer in front of yajl. */
    int in_string;
    int escape;     /* 1 after a backslash, 2..5 in the hex of a \u */
    unsigned int u; /* that \u's value */
    int after_high; /* the last unit was a \u high surrogate */
    size_t string_len;
    int eliding;     /* the rest of this string is not passed on */
    size_t bare_len; /* of the number or literal being read */
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
            /* 5.0 and 1e18 are integers (keepa.c then holds each field to
             * its range); 5.5, NaN or 1e300 are not. */
            if (!isfinite(d) || d != floor(d) || fabs(d) > 9e18) {
                j->out->present &= ~fields[f].bit;
                j->out->not_integer |= fields[f].bit;
                return;
            }
            i = (long long)d;
        }
        *(int64_t *)(void *)((char *)j->out + fields[f].offset) = i;
        j->out->present |= fields[f].bit;
        j->out->not_integer &= ~fields[f].bit;
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

static int yajl_feed(tkm__json *j, const char *buf, size_t len)
{
    if (len == 0)
        return 0;
    return yajl_parse(j->h, (const unsigned char *)buf, len) == yajl_status_ok
               ? 0
               : -1;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return 0; /* not hex: yajl refuses the escape itself */
}

/*
 * Whether a string may be cut before byte c: between two characters, so
 * yajl still sees well-formed text.  Before an ASCII character or a UTF-8
 * lead byte, and before a backslash unless it may start the low half of a
 * surrogate pair.
 */
static int cut_here(const tkm__json *j, unsigned char c)
{
    if (c == '\\')
        return !j->after_high;
    return (c >= 0x20 && c < 0x80) || (c >= 0xC2 && c <= 0xF4);
}

int tkm__json_feed(tkm__json *j, const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t from = 0; /* where the part still to pass on begins */

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (j->in_string) {
            if (j->escape == 1) {
                j->escape = c == 'u' ? 2 : 0;
                j->u = 0;
                j->after_high = 0;
            } else if (j->escape >= 2) {
                j->u = j->u * 16 + (unsigned int)hex_digit(c);
                if (++j->escape == 6) {
                    j->escape = 0;
                    j->after_high = (j->u & 0xFC00) == 0xD800;
                }
            } else if (c == '"') {
                j->in_string = 0;
                if (j->eliding) {
                    j->eliding = 0;
                    from = i; /* the closing quote goes on */
                }
            } else {
                if (!j->eliding && j->string_len >= TKM__JSON_STRING_KEEP &&
                    cut_here(j, c)) {
                    if (yajl_feed(j, buf + from, i - from) != 0)
                        return -1;
                    j->eliding = 1;
                }
                if (c == '\\')
                    j->escape = 1;
                else
                    j->after_high = 0;
            }
            j->string_len++;
        } else if (c == '"') {
            j->in_string = 1;
            j->escape = 0;
            j->after_high = 0;
            j->string_len = 0;
            j->bare_len = 0;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                   c == '{' || c == '}' || c == '[' || c == ']' || c == ':' ||
                   c == ',') {
            j->bare_len = 0;
        } else if (++j->bare_len > TKM__JSON_BARE_MAX) {
            /* What came before is parsed, as it would be in any split. */
            (void)yajl_feed(j, buf + from, i - from);
            return -1;
        }
    }
    if (j->eliding)
        return 0;
    return yajl_feed(j, buf + from, len - from);
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
