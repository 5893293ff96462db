/*
 * Opening the files a configuration names (a YAML file, a password or key
 * file): only regular files, and never a blocking open.  A FIFO opened for
 * reading waits for a writer for ever, and a device may act on being
 * opened, so neither is ever waited on or read.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a plain file";
}

static int not_regular(const char *path, mode_t mode, char *errbuf,
                       size_t errlen)
{
    tkm__fmt(errbuf, errlen, "%s: not a regular file (%s)", path, kind(mode));
    errno = EINVAL;
    return -1;
}

int tkm__open_regular(const char *path, int flags, char *errbuf, size_t errlen)
{
    struct stat st;
    int fd, saved;

    /* Look first, so a device is not even opened... */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return not_regular(path, st.st_mode, errbuf, errlen);
    /* ...then check what was opened: the name may have changed meanwhile,
     * and O_NONBLOCK keeps that open from waiting on a FIFO. */
    fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        saved = errno;
        tkm__fmt(errbuf, errlen, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        close(fd);
        tkm__fmt(errbuf, errlen, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return not_regular(path, st.st_mode, errbuf, errlen);
    }
    /* A regular file ignores O_NONBLOCK; the caller's flags are restored
     * all the same. */
    if (!(flags & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}
