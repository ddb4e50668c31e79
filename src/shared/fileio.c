/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

int loop_write(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int open_temp_file_at(int dirfd, const char *name, int flags, mode_t mode, char *ret_tmp, size_t size) {
        static unsigned counter;
        int fd, r;

        r = snprintf(ret_tmp, size, ".#%s.%d.%u", name, (int) getpid(), counter++);
        if (r < 0 || (size_t) r >= size)
                return -ENAMETOOLONG;

        flags |= O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
        fd = openat(dirfd, ret_tmp, flags, mode);
        if (fd < 0 && errno == EEXIST) {
                /* Our pid is in the name: the file is a dead process's, killed between open and rename. */
                (void) unlinkat(dirfd, ret_tmp, 0);
                fd = openat(dirfd, ret_tmp, flags, mode);
        }
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0) { /* whatever the umask */
                r = negative_errno();
                (void) unlinkat(dirfd, ret_tmp, 0);
                safe_close(fd);
                return r;
        }
        return fd;
}

static int replace_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync) {
        char tmp[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = open_temp_file_at(dirfd, name, 0, mode, tmp, sizeof(tmp));
        if (fd < 0)
                return fd;
        r = loop_write(fd, data, len);
        if (r >= 0 && sync && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (sync)
                (void) fsync(dirfd); /* the rename itself; not fatal on filesystems that refuse */
        return 0;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        return replace_file_at(dirfd, name, data, len, mode, true);
}

int write_file_replace_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        return replace_file_at(dirfd, name, data, len, mode, false);
}

int write_string_file_at(int dirfd, const char *name, const char *s) {
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(s);
        ssize_t n;

        fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        do
                n = write(fd, s, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if ((size_t) n != len)
                return -EIO;
        return 0;
}


int read_full_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return read_full_fd(fd, max, ret, ret_len);
}

int open_regular_file_at(int dirfd, const char *name, int flags) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* O_NONBLOCK: a FIFO must not hang the open; it is refused below (a regular file ignores the flag). */
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return TAKE_FD(fd);
}

int read_regular_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open_regular_file_at(dirfd, name, O_NOFOLLOW);

        if (fd < 0)
                return fd;
        return read_full_fd(fd, max, ret, ret_len);
}

int opendir_at(int dirfd, const char *name, DIR **ret) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

int open_private_directory(const char *path, int *ret_fd, struct stat *ret_st) {
        /* No O_NOFOLLOW here: with O_DIRECTORY it turns a link into ENOTDIR, not the ELOOP of RESOLVE_NO_SYMLINKS. */
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS) { /* before Linux 5.6: the last component at least */
                fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 && errno == ENOTDIR && lstat(path, &st) >= 0 && S_ISLNK(st.st_mode))
                        return -ELOOP;
        }
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (ret_st)
                *ret_st = st;
        if (st.st_uid != geteuid() || (st.st_mode & 0022))
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int remove_stale_temp_files_at(int dirfd, const char *name) {
        _cleanup_free_ char *prefix = NULL;
        struct dirent *de;
        size_t n;
        int r, removed = 0;
        DIR *d;

        if (asprintf(&prefix, ".#%s.", name) < 0)
                return -ENOMEM;
        n = strlen(prefix);
        r = opendir_at(dirfd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                char *end = NULL;
                long pid;

                if (strncmp(de->d_name, prefix, n) != 0)
                        continue;
                errno = 0;
                pid = strtol(de->d_name + n, &end, 10);
                if (errno != 0 || !end || *end != '.' || pid <= 0 || pid > INT_MAX)
                        continue; /* not one of ours */
                if (pid != getpid() && (kill((pid_t) pid, 0) >= 0 || errno != ESRCH))
                        continue; /* its writer may still run */
                if (unlinkat(dirfd, de->d_name, 0) >= 0)
                        removed++;
        }
        closedir(d);
        return removed;
}

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        for (;;) {
                if (size + 1 >= alloc) {
                        size_t want = alloc ? alloc * 2 : 4096;
                        char *n;
                        if (alloc > max + 1)
                                return -EFBIG;
                        n = realloc(buf, want);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc = want;
                }
                ssize_t k = read(fd, buf + size, alloc - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max)
                        return -EFBIG;
        }
        buf[size] = '\0';
        if (ret_len)
                *ret_len = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_one_line_at(int dirfd, const char *name, char **ret) {
        char *buf;
        int r;

        r = read_full_file_at(dirfd, name, 64 * 1024, &buf, NULL);
        if (r < 0)
                return r;
        buf[strcspn(buf, "\n")] = '\0';
        *ret = buf;
        return 0;
}
