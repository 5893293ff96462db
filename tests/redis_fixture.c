#include "redis_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int accepts(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int ok;

    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static int spawn(tkt_redis *r)
{
    const char *bin = getenv("TKM_REDIS_SERVER");
    char logfile[400];

    if (bin == NULL)
        bin = "redis-server";
    snprintf(logfile, sizeof(logfile), "%s/redis.log", r->dir);
    unlink(r->sock);
    r->pid = fork();
    if (r->pid < 0)
        return -1;
    if (r->pid == 0) {
        execlp(bin, bin, "--port", "0", "--unixsocket", r->sock,
               "--unixsocketperm", "700", "--dir", r->dir, "--save", "",
               "--appendonly", "no", "--logfile", logfile, "--daemonize", "no",
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int status;
        if (accepts(r->sock))
            return 0;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            fprintf(stderr, "redis-server exited at start (see %s)\n", logfile);
            r->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

int tkt_redis_start(tkt_redis *r)
{
    const char *tmp = getenv("TMPDIR");

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/tkm-redis-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(r->dir) == NULL)
        return -1;
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
    return spawn(r);
}

void tkt_redis_kill(tkt_redis *r)
{
    int status;

    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &status, 0);
    r->pid = 0;
}

int tkt_redis_restart(tkt_redis *r)
{
    tkt_redis_kill(r);
    return spawn(r);
}

void tkt_redis_stop(tkt_redis *r)
{
    char path[400];

    tkt_redis_kill(r);
    unlink(r->sock);
    snprintf(path, sizeof(path), "%s/redis.log", r->dir);
    unlink(path);
    rmdir(r->dir);
}
