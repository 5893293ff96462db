/* The Keepa response parser (json.c): token fields from a streamed body. */
#ifndef TKM_KEEPA_JSON_H
#define TKM_KEEPA_JSON_H

#include <stddef.h>
#include <stdint.h>

enum {
    TKM__F_TOKENS_LEFT = 1 << 0,
    TKM__F_CONSUMED = 1 << 1,
    TKM__F_REFILL_IN = 1 << 2,
    TKM__F_RATE = 1 << 3,
    TKM__F_TIMESTAMP = 1 << 4,
    TKM__F_PROCESSING = 1 << 5,
    TKM__F_FLOW = 1 << 6,
    /* What a token report needs to be applied. */
    TKM__F_REPORT = TKM__F_TOKENS_LEFT | TKM__F_TIMESTAMP,
    TKM__F_SYNC =
        TKM__F_TOKENS_LEFT | TKM__F_RATE | TKM__F_REFILL_IN | TKM__F_TIMESTAMP
};

typedef struct tkm__keepa_fields {
    int present; /* TKM__F_* bits */
    /* TKM__F_* bits of fields that were numbers but no integer (5.5,
     * 1e300): not present, and named as a bad reply. */
    int not_integer;
    int64_t tokens_left;
    int64_t tokens_consumed;
    int64_t refill_in_ms;
    int64_t refill_rate;
    int64_t timestamp_ms;
    int64_t processing_ms;
    double token_flow_reduction;
    char error_type[64];
    char error_message[256];
} tkm__keepa_fields;

/* The longest piece of one string passed to yajl (longer strings reach it
 * cut, so their values are cut too), and the longest number or literal
 * (true, false, null) taken as JSON. */
#ifndef TKM__JSON_STRING_KEEP /* the fuzz build sets small ones */
#define TKM__JSON_STRING_KEEP 4096
#define TKM__JSON_BARE_MAX    256
#endif

typedef struct tkm__json tkm__json;

/* A parser filling *out (cleared here); NULL when out of memory. */
tkm__json *tkm__json_new(tkm__keepa_fields *out);
/* Feed a chunk; -1 once the text is not JSON (later chunks are moot).  The
 * work is linear in the bytes fed, however they are split. */
int tkm__json_feed(tkm__json *j, const char *buf, size_t len);
/* End of body; -1 when the document is incomplete (truncated). */
int tkm__json_finish(tkm__json *j);
void tkm__json_free(tkm__json *j);

#endif
