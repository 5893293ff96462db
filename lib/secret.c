/*
 * Secrets read from files (the Keepa key, the Redis password): only from a
 * file its owner alone may read, and never echoed into a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

tkm_code tkm__read_secret_file(const char *what, const char *path, char *buf,
                               size_t len, char *errbuf, size_t errlen)
{
    struct stat st;
    size_t n = 0;
    ssize_t r;
    char extra, why[TKM__ERR_MAX];
    int fd;

    buf[0] = '\0';
    /* A missing file is a configuration error; a FIFO is never waited on. */
    fd = tkm__open_regular(path, O_RDONLY, why, sizeof(why));
    if (fd < 0) {
        tkm__fmt(errbuf, errlen, "%s %s", what, why);
        return TKM_ECONFIG;
    }
    /* The mode of what was opened, not of what the name points to later. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        tkm__fmt(errbuf, errlen, "%s %s: not a regular file", what, path);
        return TKM_ECONFIG;
    }
    if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
        close(fd);
        tkm__fmt(errbuf, errlen,
                 "%s %s is readable or writable by group or others (mode "
                 "%04o): refused, run chmod 600 on it",
                 what, path, (unsigned)(st.st_mode & 07777));
        return TKM_ECONFIG;
    }
    while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            memset(buf, 0, len);
            tkm__fmt(errbuf, errlen, "%s %s: cannot read: %s", what, path,
                     strerror(errno));
            return TKM_EIO;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (n + 1 >= len && read(fd, &extra, 1) == 1) {
        close(fd);
        memset(buf, 0, len);
        tkm__fmt(errbuf, errlen, "%s %s: longer than %zu bytes", what, path,
                 len - 1);
        return TKM_ECONFIG;
    }
    close(fd);
    /* "echo SECRET > file" leaves a newline. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0 || strlen(buf) != n) {
        memset(buf, 0, len);
        tkm__fmt(errbuf, errlen, "%s %s: %s", what, path,
                 n == 0 ? "is empty" : "holds a NUL byte");
        return TKM_ECONFIG;
    }
    return TKM_OK;
}
