#include "fake_keepa_fixture.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_PREFIX "fake_keepa listening on http://127.0.0.1:"

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

const char *tkt_keepa_binary(void)
{
    return TKM_FAKE_KEEPA;
}

/* Read the first line from fd within the deadline; 0 on success. */
static int read_line(int fd, char *line, size_t len, int64_t deadline)
{
    size_t used = 0;

    while (used + 1 < len) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - now_ms();
        ssize_t n;

        if (left <= 0)
            return -1;
        if (poll(&p, 1, (int)left) <= 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        n = read(fd, line + used, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[used] == '\n') {
            line[used] = '\0';
            return 0;
        }
        used++;
    }
    return -1;
}

int tkt_keepa_start(tkt_keepa *k, const char *const *extra_args)
{
    const char *argv[64];
    char line[128];
    size_t n = 0;
    int fds[2], rc;
    char *end;
    long port;

    memset(k, 0, sizeof(*k));
    argv[n++] = TKM_FAKE_KEEPA;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (n + 1 >= sizeof(argv) / sizeof(argv[0]))
            return -1;
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;
    if (pipe(fds) != 0)
        return -1;
    k->pid = fork();
    if (k->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        k->pid = 0;
        return -1;
    }
    if (k->pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    rc = read_line(fds[0], line, sizeof(line), now_ms() + 5000);
    close(fds[0]);
    if (rc != 0 || strncmp(line, READY_PREFIX, strlen(READY_PREFIX)) != 0) {
        tkt_keepa_stop(k);
        return -1;
    }
    errno = 0;
    port = strtol(line + strlen(READY_PREFIX), &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port > 65535) {
        tkt_keepa_stop(k);
        return -1;
    }
    k->port = (int)port;
    snprintf(k->url, sizeof(k->url), "http://127.0.0.1:%d", k->port);
    return 0;
}

void tkt_keepa_stop(tkt_keepa *k)
{
    int status;

    if (k->pid <= 0)
        return;
    kill(k->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
            k->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(k->pid, SIGKILL);
    waitpid(k->pid, &status, 0);
    k->pid = 0;
}

typedef struct body_buf {
    char *p;
    size_t len, cap; /* cap includes the NUL */
} body_buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *cls)
{
    body_buf *b = cls;
    size_t n = size * nmemb, room = b->cap - 1 - b->len;
    size_t take = n < room ? n : room;

    memcpy(b->p + b->len, data, take);
    b->len += take;
    b->p[b->len] = '\0';
    return n;
}

int tkt_http_get(const char *url, long *status, char *body, size_t len)
{
    body_buf b = {body, 0, len};
    CURL *c;
    CURLcode rc;

    if (len == 0)
        return -1;
    body[0] = '\0';
    *status = 0;
    c = curl_easy_init();
    if (c == NULL)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

int64_t tkt_json_int(const char *json, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
        const char *q = p + 1;
        char *end;
        long long v;

        if (strncmp(q, key, klen) != 0 || q[klen] != '"')
            continue;
        q += klen + 1;
        q += strspn(q, " \t\r\n");
        if (*q != ':')
            continue;
        q++;
        q += strspn(q, " \t\r\n");
        if (*q != '-' && (*q < '0' || *q > '9'))
            return INT64_MIN;
        errno = 0;
        v = strtoll(q, &end, 10);
        if (errno != 0 || end == q || *end == '.' || *end == 'e' || *end == 'E')
            return INT64_MIN;
        return v;
    }
    return INT64_MIN;
}
