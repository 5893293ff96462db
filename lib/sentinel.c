/*
 * Redis Sentinel: which address to trust as the master.  No I/O here:
 * redis.c asks the sentinels and the candidates, this file keeps the rules.
 *
 * - Every sentinel is asked, in turn, starting with the one that named the
 *   master last time, for the master's address and the configuration epoch
 *   it knows; a sentinel that is down, refuses AUTH or does not know the
 *   master name is noted and skipped.
 * - The addresses named are tried the highest epoch first, then most votes:
 *   a sentinel that has not heard of a failover yet names the old master at
 *   the old epoch, and may be the majority for a second or two (a restarted
 *   old master is then a master again, with nothing); a sentinel configured
 *   for another master of the same name is outvoted.  Any address is used
 *   only once ROLE says master there.
 * - What each sentinel said goes into the one-line message of a failed
 *   discovery.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* "host:port", "[v6]:port" or "unix:///path" (options.c checked the form). */
static int parse_addr(const char *text, tkm__endpoint *ep)
{
    const char *colon;
    int64_t port;
    size_t hlen;

    memset(ep, 0, sizeof(*ep));
    if (strncmp(text, "unix://", 7) == 0) {
        ep->unix_socket = 1;
        return tkm__copy(ep->path, sizeof(ep->path), text + 7);
    }
    colon = strrchr(text, ':');
    if (colon == NULL || tkm_parse_int(colon + 1, 1, 65535, &port) != TKM_OK)
        return -1;
    hlen = (size_t)(colon - text);
    if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
        text++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(ep->host))
        return -1;
    memcpy(ep->host, text, hlen);
    ep->host[hlen] = '\0';
    ep->port = (int)port;
    return 0;
}

tkm_code tkm__sentinels_init(tkm__sentinels *s, const tkm_sentinel_options *o,
                             char *why, size_t whylen)
{
    memset(s, 0, sizeof(*s));
    if (o->count <= 0)
        return TKM_OK;
    for (int i = 0; i < o->count && i < TKM_SENTINELS_MAX; i++) {
        if (parse_addr(o->addr[i], &s->addr[i]) != 0) {
            tkm__fmt(why, whylen,
                     "redis.sentinels: '%.200s' is not host:port or "
                     "unix:///path",
                     o->addr[i]);
            return TKM_ECONFIG;
        }
        s->count++;
    }
    if (o->password_file[0] != '\0')
        return tkm__read_secret_file("redis.sentinel_password_file",
                                     o->password_file, s->password,
                                     sizeof(s->password), why, whylen);
    return TKM_OK;
}

void tkm__endpoint_str(const tkm__endpoint *ep, char *buf, size_t len)
{
    if (ep->unix_socket)
        tkm__fmt(buf, len, "unix:%s", ep->path);
    else if (strchr(ep->host, ':') != NULL)
        tkm__fmt(buf, len, "[%s]:%d", ep->host, ep->port);
    else
        tkm__fmt(buf, len, "%s:%d", ep->host, ep->port);
}

int tkm__endpoint_eq(const tkm__endpoint *a, const tkm__endpoint *b)
{
    if (a->unix_socket != b->unix_socket)
        return 0;
    if (a->unix_socket)
        return strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

void tkm__round_init(tkm__sentinel_round *r, int count)
{
    memset(r, 0, sizeof(*r));
    r->count = count;
}

/* Append "; text" (or text) to the report, cut at its end. */
static void report(tkm__sentinel_round *r, const char *text)
{
    size_t n = strlen(r->report);

    if (n + 1 < sizeof(r->report))
        tkm__fmt(r->report + n, sizeof(r->report) - n, "%s%s", n ? "; " : "",
                 text);
}

int tkm__round_vote(tkm__sentinel_round *r, int i, const char *sentinel,
                    const tkm__endpoint *ep, int64_t epoch)
{
    char where[300], line[400];
    int k;

    tkm__endpoint_str(ep, where, sizeof(where));
    if (epoch >= 0)
        tkm__fmt(line, sizeof(line), "%s named %s (epoch %lld)", sentinel,
                 where, (long long)epoch);
    else
        tkm__fmt(line, sizeof(line), "%s named %s", sentinel, where);
    report(r, line);
    for (k = 0; k < r->ncand; k++) {
        if (tkm__endpoint_eq(&r->cand[k].ep, ep)) {
            if (epoch > r->cand[k].epoch)
                r->cand[k].epoch = epoch;
            return ++r->cand[k].votes;
        }
    }
    if (k >= TKM_SENTINELS_MAX)
        return 0;
    r->cand[k].ep = *ep;
    r->cand[k].epoch = epoch;
    r->cand[k].votes = 1;
    r->cand[k].first_voter = i;
    r->ncand++;
    return 1;
}

void tkm__round_note(tkm__sentinel_round *r, const char *who, const char *why)
{
    char line[TKM__ERR_MAX];

    tkm__fmt(line, sizeof(line), "%s %s", who, why);
    report(r, line);
}

/* Whether candidate a goes before b. */
static int before(const tkm__sentinel_cand *a, const tkm__sentinel_cand *b)
{
    if (a->epoch != b->epoch)
        return a->epoch > b->epoch;
    return a->votes > b->votes;
}

int tkm__round_order(const tkm__sentinel_round *r, int order[TKM_SENTINELS_MAX])
{
    int n = r->ncand;

    for (int k = 0; k < n; k++)
        order[k] = k;
    /* Insertion sort, stable: the highest epoch, then the most votes, then
     * the order named. */
    for (int k = 1; k < n; k++) {
        int v = order[k], j = k;
        while (j > 0 && before(&r->cand[v], &r->cand[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    return n;
}

int tkm__field_int(const char *const *fields, const size_t *lens, size_t n,
                   const char *field, int64_t *out)
{
    size_t flen = strlen(field);

    for (size_t i = 0; i + 1 < n; i += 2) {
        char num[32];
        if (lens[i] != flen || memcmp(fields[i], field, flen) != 0)
            continue;
        if (lens[i + 1] == 0 || lens[i + 1] >= sizeof(num))
            return 0;
        memcpy(num, fields[i + 1], lens[i + 1]);
        num[lens[i + 1]] = '\0';
        return tkm_parse_int(num, 0, INT64_MAX / 2, out) == TKM_OK;
    }
    return 0;
}

int tkm__info_run_id(const char *info, size_t len, char *out, size_t outlen)
{
    static const char key[] = "run_id:";
    const char *p = info, *end = info + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol ? eol : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > sizeof(key) - 1 && memcmp(p, key, sizeof(key) - 1) == 0) {
            size_t idlen = n - (sizeof(key) - 1);
            const char *id = p + sizeof(key) - 1;
            if (idlen == 0 || idlen >= outlen)
                return 0;
            for (size_t i = 0; i < idlen; i++) {
                if (!((id[i] >= '0' && id[i] <= '9') ||
                      (id[i] >= 'a' && id[i] <= 'f')))
                    return 0;
            }
            memcpy(out, id, idlen);
            out[idlen] = '\0';
            return 1;
        }
        p = stop + 1;
    }
    return 0;
}
