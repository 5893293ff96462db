/*
 * The legacy layout's judgement of raw values: lines of the input are the
 * Redis TIME (microseconds) and the six keys' values as tkm_legacy_read()
 * would store them ("~" alone: the key is absent; longer values are cut,
 * NUL bytes kept).  Whatever they hold, the projection is finite, the
 * ages are not negative and refill never passes capacity.
 */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "tokenmgr.h"

static void check(const tkm_legacy_raw *raw, int64_t cap)
{
    tkm_legacy_status st;

    FUZZ_ASSERT(tkm_legacy_project(raw, cap, &st) == TKM_OK);
    FUZZ_ASSERT(isfinite(st.now_s));
    if (st.has_tokens) {
        FUZZ_ASSERT(isfinite(st.tokens));
        FUZZ_ASSERT(st.has_capacity);
        FUZZ_ASSERT(st.tokens <= fmax(st.capacity, 1e9));
    }
    if (st.has_capacity)
        FUZZ_ASSERT(isfinite(st.capacity) && st.capacity >= 0);
    if (st.has_refill_rate)
        FUZZ_ASSERT(isfinite(st.refill_rate) && st.refill_rate >= 0);
    if (st.has_last_sync_age)
        FUZZ_ASSERT(isfinite(st.last_sync_age_s) && st.last_sync_age_s >= 0);
    if (st.has_heartbeat_age)
        FUZZ_ASSERT(isfinite(st.heartbeat_age_s) && st.heartbeat_age_s >= 0);
    if (st.has_recharge_age)
        FUZZ_ASSERT(isfinite(st.recharge_age_s) && st.recharge_age_s >= 0);
    for (int k = 0; k < TKM_LEGACY_NKEYS; k++)
        FUZZ_ASSERT(st.check[k] == TKM_LEGACY_OK ||
                    st.check[k] == TKM_LEGACY_MISSING ||
                    st.check[k] == TKM_LEGACY_INVALID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tkm_legacy_raw raw;
    const uint8_t *p = data, *end = data + size;
    char now[32];
    int64_t now_us = INT64_C(1700000000000000);

    memset(&raw, 0, sizeof(raw));
    for (int line = 0; line <= TKM_LEGACY_NKEYS && p <= end; line++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line == 0) {
            if (n < sizeof(now)) {
                memcpy(now, p, n);
                now[n] = '\0';
                if (tkm_parse_int(now, 0, INT64_C(4102444800000000), &now_us) !=
                    TKM_OK)
                    now_us = INT64_C(1700000000000000);
            }
        } else if (!(n == 1 && p[0] == '~')) {
            tkm_legacy_value *v = &raw.value[line - 1];
            size_t cut = n > TKM_LEGACY_VALUE_MAX ? TKM_LEGACY_VALUE_MAX : n;
            v->present = 1;
            v->len = n;
            memcpy(v->text, p, cut);
            v->text[cut] = '\0';
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    raw.now_us = now_us;
    check(&raw, 0);
    check(&raw, 5000);
    return 0;
}
