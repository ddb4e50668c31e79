/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
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

/*
 * One write(2) of s to an existing file (cgroup and /proc files), no O_CREAT,
 * no O_TRUNC: the kernel's errno comes back as is.
 */
int write_string_file_at(int dirfd, const char *name, const char *s);

/* Reads a whole file (at most max bytes, else -EFBIG), NUL-terminated. */
int read_full_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/* Reads the first line without its newline. */
int read_one_line_at(int dirfd, const char *name, char **ret);
