/*
 * The Keepa response parser on arbitrary bytes: the first byte seeds the
 * chunk splits, the rest is the body.  Parsed whole and in chunks, the
 * body must give the same fields: curl hands bodies over in any split.
 */
#include <string.h>

#include "fuzz.h"
#include "keepa_json.h"

typedef struct result {
    tkm__keepa_fields f;
    int fed, finished;
} result;

static void parse(const uint8_t *body, size_t len, unsigned seed, result *r)
{
    tkm__json *j = tkm__json_new(&r->f);
    size_t o = 0;

    FUZZ_ASSERT(j != NULL);
    r->fed = 0;
    while (o < len && r->fed == 0) {
        size_t n = len - o;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 17;
            if (n > len - o)
                n = len - o;
        }
        r->fed = tkm__json_feed(j, (const char *)body + o, n);
        o += n;
    }
    r->finished = r->fed == 0 ? tkm__json_finish(j) : -1;
    tkm__json_free(j);
}

static void same(const result *a, const result *b)
{
    FUZZ_ASSERT(a->fed == b->fed && a->finished == b->finished);
    FUZZ_ASSERT(a->f.present == b->f.present);
    FUZZ_ASSERT(a->f.tokens_left == b->f.tokens_left);
    FUZZ_ASSERT(a->f.tokens_consumed == b->f.tokens_consumed);
    FUZZ_ASSERT(a->f.refill_in_ms == b->f.refill_in_ms);
    FUZZ_ASSERT(a->f.refill_rate == b->f.refill_rate);
    FUZZ_ASSERT(a->f.timestamp_ms == b->f.timestamp_ms);
    FUZZ_ASSERT(a->f.processing_ms == b->f.processing_ms);
    FUZZ_ASSERT(strcmp(a->f.error_type, b->f.error_type) == 0);
    FUZZ_ASSERT(strcmp(a->f.error_message, b->f.error_message) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    result whole, split;

    if (size < 1)
        return 0;
    parse(data + 1, size - 1, 0, &whole);
    parse(data + 1, size - 1, data[0] | 1u, &split);
    same(&whole, &split);
    /* Strings are cut to their buffers. */
    FUZZ_ASSERT(strlen(whole.f.error_type) < sizeof(whole.f.error_type));
    FUZZ_ASSERT(strlen(whole.f.error_message) < sizeof(whole.f.error_message));
    return 0;
}
