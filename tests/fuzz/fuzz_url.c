/* The Redis URL parser; its messages never show a password. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

/* The password a redis:// URL carries ("user:PASS@" or "PASS@"), as the
 * parser would cut it; NULL when there is none. */
static const char *password_of(const char *url, size_t *len, const char **after)
{
    const char *rest, *slash, *at = NULL, *colon;
    size_t alen;

    if (strncmp(url, "redis://", 8) != 0)
        return NULL;
    rest = url + 8;
    slash = strchr(rest, '/');
    alen = slash ? (size_t)(slash - rest) : strlen(rest);
    for (size_t i = 0; i < alen; i++) {
        if (rest[i] == '@')
            at = rest + i;
    }
    if (at == NULL)
        return NULL;
    colon = memchr(rest, ':', (size_t)(at - rest));
    colon = colon ? colon + 1 : rest;
    *len = (size_t)(at - colon);
    *after = at + 1;
    return colon;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char err[TKM__ERR_MAX] = "";
    char pw[256];
    const char *p, *after;
    size_t plen = 0;
    tkm__url u;
    tkm_code rc;

    if (text == NULL)
        return 0;
    rc = tkm__url_parse(text, &u, err, sizeof(err));
    if (rc == TKM_OK) {
        FUZZ_ASSERT(u.unix_socket
                        ? u.path[0] == '/'
                        : u.host[0] != '\0' && u.port >= 1 && u.port <= 65535);
        FUZZ_ASSERT(u.db >= 0);
    } else {
        FUZZ_ASSERT(rc == TKM_ECONFIG && err[0] != '\0');
        /* A password long enough to be recognised, and not also part of
         * what legitimately follows it, must not be in the message. */
        p = password_of(text, &plen, &after);
        if (p != NULL && plen >= 10 && plen < sizeof(pw)) {
            memcpy(pw, p, plen);
            pw[plen] = '\0';
            int alnum = 1;
            for (size_t i = 0; i < plen; i++)
                alnum &= isalnum((unsigned char)pw[i]) != 0;
            /* Letters and digits only: the message's own punctuation
             * cannot complete a partial echo of the host or port; ten of
             * them at least: the messages' longest word ("password") is
             * not one. */
            if (alnum && strstr(after, pw) == NULL && strstr(text, pw) == p)
                FUZZ_ASSERT(strstr(err, pw) == NULL);
        }
    }
    free(text);
    return 0;
}
