/*
 * JSON string escaping (lib/jsonw.c) against hostile input: every class of
 * ill-formed UTF-8, control characters, quotes and backslashes, and output
 * buffers that end inside a character or an escape.  Validity is checked
 * with glibc's own UTF-8 decoder (iconv), not with the code under test.
 */
#include <check.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "suite.h"

#define FFFD "\xef\xbf\xbd"

/* in (len bytes) escaped into a buffer that is large enough. */
static const char *esc(const char *in, size_t len)
{
    static char out[TKM__JSONW_MAX(256)];
    size_t consumed = 0, n;

    ck_assert_uint_le(len, 256);
    n = tkm__jsonw_escape(out, sizeof(out), in, len, &consumed);
    ck_assert_uint_eq(consumed, len);
    ck_assert_uint_eq(n, strlen(out));
    return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

/* Well-formed UTF-8 by glibc's decoder: overlongs, surrogates and code
 * points above U+10FFFF refused. */
static int utf8_valid(const char *s, size_t len)
{
    iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
    char buf[4096];
    char *in = (char *)s;
    size_t left = len;
    int ok = 1;

    ck_assert(cd != (iconv_t)-1);
    while (left > 0 && ok) {
        char *o = buf;
        size_t room = sizeof(buf);
        if (iconv(cd, &in, &left, &o, &room) == (size_t)-1 && errno != E2BIG)
            ok = 0;
    }
    iconv_close(cd);
    return ok;
}

/* The inside of a JSON string: valid UTF-8, no raw control character,
 * every '"' escaped and every escape one JSON knows. */
static int json_string_body_valid(const char *s, size_t len)
{
    if (!utf8_valid(s, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"')
            return 0;
        if (c != '\\')
            continue;
        if (i + 1 >= len)
            return 0;
        if (s[i + 1] == 'u') {
            if (i + 5 >= len || strspn(s + i + 2, "0123456789abcdefABCDEF") < 4)
                return 0;
            i += 5;
        } else if (strchr("\"\\/bfnrt", s[i + 1]) == NULL) {
            return 0;
        } else {
            i++;
        }
    }
    return 1;
}

START_TEST(test_escapes)
{
    ck_assert_str_eq(ESC("plain text"), "plain text");
    ck_assert_str_eq(ESC("say \"hi\""), "say \\\"hi\\\"");
    ck_assert_str_eq(ESC("C:\\dir\\"), "C:\\\\dir\\\\");
    ck_assert_str_eq(ESC("a\nb\tc\r\x01\x1f"),
                     "a\\u000ab\\u0009c\\u000d\\u0001\\u001f");
    ck_assert_str_eq(ESC("\x7f/"), "\x7f/"); /* valid in JSON as it is */
    /* A NUL inside the input is a control character like any other. */
    ck_assert_str_eq(esc("a\0b", 3), "a\\u0000b");
    ck_assert_str_eq(ESC(""), "");
}
END_TEST

START_TEST(test_valid_utf8_kept)
{
    static const char *const ok[] = {
        "\xc3\xa9",         /* U+00E9 */
        "\xc2\x80",         /* U+0080, the first 2-byte character */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800, the first 3-byte character */
        "\xe2\x82\xac",     /* U+20AC */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbf\xbd",     /* U+FFFD itself */
        "\xf0\x90\x80\x80", /* U+10000 */
        "\xf0\x9f\x98\x80", /* U+1F600 */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_str_eq(esc(ok[i], strlen(ok[i])), ok[i]);
    ck_assert_str_eq(ESC("na\xc3\xafve \xe2\x82\xac \"\xf0\x9f\x98\x80\""),
                     "na\xc3\xafve \xe2\x82\xac \\\"\xf0\x9f\x98\x80\\\"");
}
END_TEST

/* Each ill-formed class, with Unicode's "maximal subpart" count of
 * replacement characters. */
START_TEST(test_invalid_utf8_replaced)
{
    static const struct {
        const char *in, *want, *what;
    } cases[] = {
        {"\x80", FFFD, "a lone continuation byte"},
        {"a\xbf"
         "b",
         "a" FFFD "b", "a continuation byte between letters"},
        {"\x80\x80", FFFD FFFD, "two continuation bytes"},
        {"\xc0\xaf", FFFD FFFD, "an overlong '/' in 2 bytes (C0)"},
        {"\xc1\xbf", FFFD FFFD, "an overlong in 2 bytes (C1)"},
        {"\xe0\x80\xaf", FFFD FFFD FFFD, "an overlong '/' in 3 bytes"},
        {"\xe0\x9f\xbf", FFFD FFFD FFFD, "an overlong U+07FF in 3 bytes"},
        {"\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD, "an overlong in 4 bytes"},
        {"\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD, "an overlong U+FFFF"},
        {"\xed\xa0\x80", FFFD FFFD FFFD, "the surrogate U+D800"},
        {"\xed\xbf\xbf", FFFD FFFD FFFD, "the surrogate U+DFFF"},
        {"\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD,
         "a surrogate pair encoded as UTF-8 (CESU-8)"},
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, "U+110000"},
        {"\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD, "the lead byte F5"},
        {"\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD, "a 5-byte form"},
        {"\xfe", FFFD, "the byte FE"},
        {"\xff"
         "x",
         FFFD "x", "the byte FF"},
        {"\xc3", FFFD, "a 2-byte character cut at the end"},
        {"\xe2\x82", FFFD, "a 3-byte character cut at the end"},
        {"\xf0\x9f\x98", FFFD, "a 4-byte character cut at the end"},
        {"\xe2\x82"
         "a",
         FFFD "a", "a 3-byte character cut by a letter"},
        {"\xf0\x9f"
         "\"",
         FFFD "\\\"", "a 4-byte character cut by a quote"},
        {"\xc3"
         "\n",
         FFFD "\\u000a", "a 2-byte character cut by a newline"},
        {"\xe2\xc3\xa9", FFFD "\xc3\xa9", "a lead byte before a character"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = esc(cases[i].in, strlen(cases[i].in));
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s: wrong output",
                      cases[i].what);
        ck_assert_msg(json_string_body_valid(got, strlen(got)),
                      "%s: invalid JSON", cases[i].what);
    }
}
END_TEST

/*
 * Every output buffer size: the output is always a prefix of the whole
 * escape that ends between two units (never half a character, half an
 * escape or half a replacement), NUL-terminated, and `consumed` says where
 * to go on from.
 */
START_TEST(test_buffer_end_cuts_nothing_in_half)
{
    static const char in[] = "x\xf0\x9f\x98\x80y\x01\"\xe2\x82\xac\xc3\x28"
                             "\xf0\x9f\x98\\";
    char whole[TKM__JSONW_MAX(sizeof(in))], out[TKM__JSONW_MAX(sizeof(in))];
    char rest[TKM__JSONW_MAX(sizeof(in))];
    size_t len = sizeof(in) - 1, full, consumed;

    full = tkm__jsonw_escape(whole, sizeof(whole), in, len, &consumed);
    ck_assert_uint_eq(consumed, len);
    ck_assert(json_string_body_valid(whole, full));
    for (size_t cap = 1; cap <= full + 1; cap++) {
        size_t n, more;
        memset(out, 'Z', sizeof(out));
        n = tkm__jsonw_escape(out, cap, in, len, &consumed);
        ck_assert_uint_lt(n, cap);
        ck_assert_uint_eq(out[n], '\0');
        ck_assert_msg(memcmp(out, whole, n) == 0, "cap %zu: not a prefix", cap);
        ck_assert_msg(json_string_body_valid(out, n), "cap %zu: invalid", cap);
        /* What is left, escaped on its own, completes the whole. */
        more = tkm__jsonw_escape(rest, sizeof(rest), in + consumed,
                                 len - consumed, NULL);
        ck_assert_uint_eq(n + more, full);
        ck_assert_msg(memcmp(whole + n, rest, more) == 0,
                      "cap %zu: the rest does not follow on", cap);
    }
    /* The 4-byte character right at the end of the room: left out whole. */
    ck_assert_uint_eq(
        tkm__jsonw_escape(out, 5, "x\xf0\x9f\x98\x80", 5, &consumed), 1);
    ck_assert_str_eq(out, "x");
    ck_assert_uint_eq(consumed, 1);
    ck_assert_uint_eq(
        tkm__jsonw_escape(out, 6, "x\xf0\x9f\x98\x80", 5, &consumed), 5);
    /* An escape that does not fit whole is left out whole. */
    ck_assert_uint_eq(tkm__jsonw_escape(out, 7, "x\x01", 2, &consumed), 1);
    ck_assert_str_eq(out, "x");
    ck_assert_uint_eq(tkm__jsonw_escape(out, 2, "\"", 1, &consumed), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(consumed, 0);
    /* No room at all: nothing written, not even the NUL. */
    out[0] = 'Z';
    ck_assert_uint_eq(tkm__jsonw_escape(out, 0, "abc", 3, &consumed), 0);
    ck_assert_int_eq(out[0], 'Z');
    ck_assert_uint_eq(consumed, 0);
}
END_TEST

/* Random bytes, weighted toward the troublesome ones: always valid JSON,
 * and with room enough everything is consumed. */
START_TEST(test_random_bytes_always_valid)
{
    static const unsigned char pick[] = {
        0x00, 0x01, 0x1f, '"',  '\\', 'a',  0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2,
        0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90};
    unsigned int seed = 12345;
    char in[64], out[TKM__JSONW_MAX(64)];

    for (int round = 0; round < 20000; round++) {
        size_t len, n, consumed;
        seed = seed * 1103515245u + 12345u;
        len = (seed >> 16) % sizeof(in);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)((seed >> 20) & 1 ? pick[(seed >> 8) % sizeof(pick)]
                                            : (seed >> 8) & 0xff);
        }
        n = tkm__jsonw_escape(out, sizeof(out), in, len, &consumed);
        ck_assert_uint_eq(consumed, len);
        ck_assert_msg(json_string_body_valid(out, n), "round %d", round);
        /* A small buffer: still valid, just shorter. */
        n = tkm__jsonw_escape(out, 1 + round % 13, in, len, &consumed);
        ck_assert_msg(json_string_body_valid(out, n), "round %d cut", round);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonw");

    tkt_add_tests(tkt_tcase(s, "escape", 0), test_escapes, test_valid_utf8_kept,
                  test_invalid_utf8_replaced,
                  test_buffer_end_cuts_nothing_in_half,
                  test_random_bytes_always_valid, NULL);
    return tkt_run_suite(s, 0);
}
