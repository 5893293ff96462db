/*
 * The Keepa response parser behind gzip, as curl delivers it: the input
 * is inflated with zlib (gzip or zlib headers, as CURLOPT_ACCEPT_ENCODING
 * accepts) and each inflated chunk is fed as it comes.  The output is
 * bounded so that a compression bomb costs the fuzzer nothing (the client
 * bounds bodies at BODY_MAX).
 */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "keepa_json.h"

#define OUT_MAX ((size_t)4 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char out[4096];
    tkm__keepa_fields f;
    tkm__json *j;
    z_stream z;
    size_t total = 0;
    int zr = Z_OK, bad = 0;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK)
        return 0;
    j = tkm__json_new(&f);
    FUZZ_ASSERT(j != NULL);
    z.next_in = (unsigned char *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    while (zr == Z_OK && total < OUT_MAX && !bad) {
        z.next_out = out;
        z.avail_out = sizeof(out);
        zr = inflate(&z, Z_NO_FLUSH);
        size_t n = sizeof(out) - z.avail_out;
        if (n == 0 && zr == Z_OK)
            break; /* needs input it will not get */
        total += n;
        if (n > 0 && tkm__json_feed(j, (const char *)out, n) != 0)
            bad = 1;
    }
    if (zr == Z_STREAM_END && !bad)
        (void)tkm__json_finish(j);
    FUZZ_ASSERT(strlen(f.error_message) < sizeof(f.error_message));
    tkm__json_free(j);
    inflateEnd(&z);
    return 0;
}
