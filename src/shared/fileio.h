/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Replace dirfd/name atomically: write a temporary file beside it, fsync,
 * rename over the old one, fsync the directory. Readers see the old or the
 * new content, never a mix; a crash leaves the old one.
 */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/*
 * The same without the two fsyncs: readers still see the old or the new
 * content, never a mix, but a crash may leave either. For files that are a
 * view rebuilt at every start (the compat status), not for state.
 */
int write_file_replace_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* write(2) until all of data is written (EINTR and short writes retried); negative errno. */
int loop_write(int fd, const void *data, size_t len);

/*
 * The temporary file the two above write before their rename: ".#NAME.PID.N"
 * in dirfd, created exclusively with mode (whatever the umask), O_WRONLY
 * plus flags, never through a symbolic link; its name in ret_tmp. Returns
 * the fd. remove_stale_temp_files_at() knows these names.
 */
int open_temp_file_at(int dirfd, const char *name, int flags, mode_t mode, char *ret_tmp, size_t size);

/*
 * One write(2) of s to an existing file (cgroup and /proc files), no O_CREAT,
 * no O_TRUNC: the kernel's errno comes back as is.
 */
int write_string_file_at(int dirfd, const char *name, const char *s);

/* Reads a whole file (at most max bytes, else -EFBIG), NUL-terminated. */
int read_full_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/* The same from an open fd, from where it stands. */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Reads the first line without its newline. */
int read_one_line_at(int dirfd, const char *name, char **ret);

/*
 * Opens dirfd/name for reading without blocking (a FIFO), refusing all but
 * a regular file: -EISDIR for a directory, -EBADFD for anything else. flags
 * are added (O_NOFOLLOW). Returns the fd.
 */
int open_regular_file_at(int dirfd, const char *name, int flags);

/* opendir() of dirfd/name ("." for dirfd itself) through a new descriptor. */
int opendir_at(int dirfd, const char *name, DIR **ret);

/*
 * Like read_full_file_at() for a file that someone else could have planted
 * something at: the last component is not followed (-ELOOP for a symbolic
 * link), the open does not block (a FIFO), a directory is -EISDIR and
 * anything else but a regular file -EBADFD.
 */
int read_regular_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/*
 * Opens an absolute path as a directory without following a symbolic link
 * in any component (openat2 RESOLVE_NO_SYMLINKS; where the kernel lacks it,
 * O_NOFOLLOW on the last one): -ELOOP if there is one. Then checks that it
 * is ours to trust: owned by our euid and not writable by group or others
 * (-EPERM, with the mode and owner found in *ret_st when given).
 */
int open_private_directory(const char *path, int *ret_fd, struct stat *ret_st);

/*
 * Removes the temporary files write_file_atomic_at() left for name in dirfd
 * when a writer was killed between open and rename: those of processes that
 * no longer run (and our own pid's). Returns how many were removed.
 */
int remove_stale_temp_files_at(int dirfd, const char *name);
