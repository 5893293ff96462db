/*
 * HTTP (http.c): the only file that includes curl/curl.h.  GETs on a
 * reused handle for the Keepa client, one-shot JSON POSTs for webhooks, one
 * URL check for both, and the masking of secrets in every message.
 */
#ifndef TKM_HTTP_H
#define TKM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "tokenmgr.h"

/* tkm__http_url_check flags. */
#define TKM__URL_NO_QUERY 1 /* refuse a query or a fragment (a base URL) */

/*
 * The one check of a URL we will request: parsable, http or https, and with
 * TKM__URL_NO_QUERY neither '?' nor '#'.  `what` names the setting in the
 * one-line message ("keepa.base_url", "Webhook"); the URL is shown with its
 * user and password masked.  Returns TKM_OK, TKM_ECONFIG or TKM_ENOMEM.
 * Thread-safe.
 */
tkm_code tkm__http_url_check(const char *what, const char *url, int flags,
                             char *errbuf, size_t errlen);

/*
 * Copy the message `in` into out (len bytes) with the value of every
 * "key=" and the user:password of every "scheme://user:password@" replaced
 * by "***".  When `secret` (NULL or "" for none) still shows after that,
 * out gets `withheld` instead.  Thread-safe.
 */
void tkm__http_redact(char *out, size_t len, const char *in, const char *secret,
                      const char *withheld);

/* A GET client: one handle, its connection reused between requests.  Not
 * thread-safe. */
typedef struct tkm__http tkm__http;

/*
 * timeout_ms bounds each request as a whole (connecting, every byte and the
 * sink's work on them); body_max bounds the decoded (gunzipped) body.
 * Returns TKM_OK or TKM_ENOMEM (*out NULL).
 */
tkm_code tkm__http_open(int64_t timeout_ms, size_t body_max, tkm__http **out);
void tkm__http_free(tkm__http *h);

/* `s` URL-encoded; malloc'ed (free it), NULL when out of memory. */
char *tkm__http_escape(tkm__http *h, const char *s);

/* Receives each decoded piece of a body as it arrives; returns 0, or -1 to
 * stop looking at the rest (the body is still collected). */
typedef int (*tkm__http_sink)(void *ctx, const char *data, size_t len);

/* How a GET ended. */
typedef enum tkm__http_end {
    TKM__HTTP_ANSWERED, /* a whole answer arrived: see status */
    TKM__HTTP_UNSENT,   /* could not resolve or connect: never reached the
                           server */
    TKM__HTTP_BROKEN,   /* failed or timed out once it may have reached it */
    TKM__HTTP_TOO_BIG,  /* the decoded body grew past body_max */
    TKM__HTTP_NOMEM     /* out of memory */
} tkm__http_end;

/*
 * GET url with gzip and deflate accepted.  The body (decoded, NUL-
 * terminated) is kept in h until the next GET; `sink` (may be NULL) sees
 * it piece by piece meanwhile.  *status gets the HTTP status (0 when none
 * came); why gets a short reason unless the answer came whole.  URLs may
 * hold a secret: callers pass why through tkm__http_redact.
 */
tkm__http_end tkm__http_get(tkm__http *h, const char *url, tkm__http_sink sink,
                            void *ctx, long *status, char *why, size_t whylen);

/* The last GET's body and its length (never NULL: "" when none). */
const char *tkm__http_body(const tkm__http *h, size_t *len);
/* The same, handed over (free it); NULL when there was none. */
char *tkm__http_take_body(tkm__http *h, size_t *len);

/*
 * POST body (JSON) to url within timeout_ms; the answer's body is read and
 * dropped.  *status gets the HTTP status (0 when none).  errbuf gets
 * "webhook scheme://host/path: HTTP 200" or the reason it failed, never the
 * URL's user, password, query or fragment.  Returns TKM_OK when an answer
 * came (whatever its status), TKM_EHTTP or TKM_ENOMEM.  Thread-safe.
 */
tkm_code tkm__http_post_json(const char *url, const char *body,
                             int64_t timeout_ms, long *status, char *errbuf,
                             size_t errlen);

#endif
