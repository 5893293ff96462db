/*
 * Files a configuration names (lib/file.c's tkm__open_regular and the
 * secret reader built on it): a FIFO, a directory or a device is refused at
 * once with a message naming it, never waited on or read; a missing secret
 * file is a configuration error.  Every open runs under an alarm: a hang
 * is a failure, not a stuck suite.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "proc.h"
#include "suite.h"

static char dir[64];

static void make_dir(void)
{
    ck_assert_int_eq(tkt_make_dir(dir, sizeof(dir), "tkm-file"), 0);
}

static void remove_dir(void)
{
    static const char *const names[] = {"fifo", "file", "link", "pw"};
    char path[128];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    ck_assert_int_eq(tkt_write_file(path, text, mode), 0);
}

/* tkm__open_regular refuses `path` with EINVAL and says `kind`. */
static void refused(const char *path, const char *kind)
{
    char err[512] = "";
    int fd;

    alarm(5);
    errno = 0;
    fd = tkm__open_regular(path, O_RDONLY, err, sizeof(err));
    alarm(0);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err, path) != NULL && strstr(err, kind) != NULL,
                  "'%s' does not name %s and %s", err, path, kind);
    ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_open_regular)
{
    char fifo[128], file[128], err[512];
    int fd;

    make_dir();
    path_in_dir(fifo, sizeof(fifo), "fifo");
    path_in_dir(file, sizeof(file), "file");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    write_file(file, "text\n", 0600);

    refused(fifo, "not a regular file (a FIFO)");
    refused(dir, "not a regular file (a directory)");
    refused("/dev/null", "not a regular file (a character device)");

    fd = tkm__open_regular("/nonexistent/tkm.yaml", O_RDONLY, err, sizeof(err));
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(err, "/nonexistent/tkm.yaml: cannot open: No such file or "
                          "directory");

    /* A regular file opens, blocking as asked, closed on exec. */
    fd = tkm__open_regular(file, O_RDONLY, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);
    /* Through a symbolic link too: what it points to is what counts. */
    {
        char link[128];
        path_in_dir(link, sizeof(link), "link");
        ck_assert_int_eq(symlink(fifo, link), 0);
        refused(link, "(a FIFO)");
    }
    remove_dir();
}
END_TEST

/* The secret reader on the same files: TKM_ECONFIG, the setting named. */
START_TEST(test_secret_file_kinds)
{
    char fifo[128], file[128], err[512], buf[64];

    make_dir();
    path_in_dir(fifo, sizeof(fifo), "fifo");
    path_in_dir(file, sizeof(file), "pw");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);

    alarm(5);
    ck_assert_int_eq(tkm__read_secret_file("redis.password_file", fifo, buf,
                                           sizeof(buf), err, sizeof(err)),
                     TKM_ECONFIG);
    alarm(0);
    ck_assert_ptr_nonnull(strstr(err, "redis.password_file"));
    ck_assert_ptr_nonnull(strstr(err, "(a FIFO)"));
    ck_assert_int_eq(tkm__read_secret_file("keepa.key_file", dir, buf,
                                           sizeof(buf), err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "(a directory)"));
    ck_assert_int_eq(tkm__read_secret_file("keepa.key_file", "/dev/zero", buf,
                                           sizeof(buf), err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "(a character device)"));
    /* Missing: a configuration error too (the CLI exits 78, not 1). */
    ck_assert_int_eq(tkm__read_secret_file("redis.password_file", file, buf,
                                           sizeof(buf), err, sizeof(err)),
                     TKM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "redis.password_file"));
    ck_assert_ptr_nonnull(strstr(err, "cannot open: No such file"));
    /* And a good one still reads. */
    write_file(file, "s3cret\n", 0600);
    ck_assert_int_eq(tkm__read_secret_file("redis.password_file", file, buf,
                                           sizeof(buf), err, sizeof(err)),
                     TKM_OK);
    ck_assert_str_eq(buf, "s3cret");
    remove_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file");

    tkt_add_tests(tkt_tcase(s, "open", 20), test_open_regular,
                  test_secret_file_kinds, NULL);
    return tkt_run_suite(s, 0);
}
