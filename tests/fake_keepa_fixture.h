/* A private fake Keepa server on a free loopback port, for tests, and small
 * HTTP and JSON helpers for talking to it.  Not thread-safe: one fixture per
 * test process. */
#ifndef TKM_FAKE_KEEPA_FIXTURE_H
#define TKM_FAKE_KEEPA_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tkt_keepa {
    pid_t pid;    /* the server process (0 when stopped) */
    int port;     /* its port on 127.0.0.1 */
    char url[64]; /* http://127.0.0.1:PORT (no trailing slash) */
} tkt_keepa;

/* The fake_keepa binary this build made (TKM_FAKE_KEEPA). */
const char *tkt_keepa_binary(void);

/* Start fake_keepa --port 0 with extra_args (NULL-terminated, may be NULL)
 * and wait at most 5 s for its ready line.  Returns 0 and fills k, or -1
 * (the process, if any, is reaped). */
int tkt_keepa_start(tkt_keepa *k, const char *const *extra_args);

/* SIGTERM, wait up to 3 s, then SIGKILL.  Safe on a stopped fixture. */
void tkt_keepa_stop(tkt_keepa *k);

/* GET url (5 s timeout; gzip accepted and decoded).  The body is copied
 * NUL-terminated into body (cut to len - 1 bytes).  Returns 0 with *status
 * the HTTP status, or -1 on a transport error. */
int tkt_http_get(const char *url, long *status, char *body, size_t len);

/* The integer after "key": in json (whitespace allowed around the colon);
 * INT64_MIN when absent or not an integer.  For tests: no JSON parsing. */
int64_t tkt_json_int(const char *json, const char *key);

#endif
