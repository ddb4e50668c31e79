/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * cgroup v2 I/O, every call relative to a dirfd of the cgroup2 mount (the
 * root the paths in /proc/PID/cgroup are relative to). "rel" paths have no
 * leading slash; "" or "." is the root itself. Errors are the kernel's errno.
 */

/* Where is cgroup2 mounted? libcgroup's controller list first, /proc/self/mountinfo for an empty hierarchy. */
int cgroup_find_mount(char **ret);

/* Pure: the first cgroup2 mount point in a mountinfo text; -ENOENT if there is none. */
int cgroup_parse_mountinfo_cgroup2(const char *text, char **ret);

/* Opens path as a directory and checks that it is a cgroup2 filesystem (-EMEDIUMTYPE if not). */
int cgroup_open_root(const char *path, int *ret_fd);

/*
 * Pure: "/a/b" -> "a/b", "/" -> "." (rel paths for the *at() calls). NULL for
 * a relative input or one with a ".." component (a cgroup outside our
 * cgroup namespace, which the *at() calls must never climb to).
 */
const char *cgroup_path_to_rel(const char *path);

/*
 * Pure: whether a cgroup path from a file (state.json) is one the kernel
 * could have written in /proc/PID/cgroup: absolute, no empty, "." or ".."
 * component, no trailing slash (but "/"), no control character.
 */
bool cgroup_path_is_clean(const char *path);

/* Pure: a systemd slice name to its cgroup path: "a-b.slice" -> "a.slice/a-b.slice". */
int cgroup_slice_to_path(const char *slice, char **ret);

/* Pure: whether a space-separated controller list ("cpu io memory") holds name. */
bool cgroup_controller_list_has(const char *list, const char *name);

/* Pure: a key's value in a flat-keyed file such as memory.events ("oom_kill 3"). */
int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret);

int cgroup_read(int rootfd, const char *rel, const char *file, char **ret);
int cgroup_write(int rootfd, const char *rel, const char *file, const char *value);
int cgroup_write_u64(int rootfd, const char *rel, const char *file, uint64_t value);

bool cgroup_has_controller(int rootfd, const char *rel, const char *name);

/* mkdir -p below the root; existing directories are fine. 1 when rel itself was made now, 0 when it was there. */
int cgroup_create(int rootfd, const char *rel);

/* Makes name available in rel's children: "+name" in the subtree_control of every ancestor and of rel itself. */
int cgroup_enable_controller(int rootfd, const char *rel, const char *name);

/* Moves pid into rel (write to cgroup.procs). */
int cgroup_attach(int rootfd, const char *rel, pid_t pid);

/* The pids in rel's cgroup.procs. */
int cgroup_get_pids(int rootfd, const char *rel, pid_t **ret, size_t *ret_n);

/*
 * cgroup.freeze: freeze or thaw rel, without waiting. Freezing returns 0
 * when the kernel reports every process frozen already, else 1 with
 * *ret_events_fd open on rel's cgroup.events: the kernel signals its
 * change with EPOLLPRI (at most once per 10 ms per cgroup), and
 * cgroup_events_frozen() tells when it is done. Frozen processes cannot
 * fork; a process moved out of a frozen cgroup thaws.
 */
int cgroup_freeze(int rootfd, const char *rel, bool freeze, int *ret_events_fd);
bool cgroup_events_frozen(int events_fd);

/* rmdir; a missing cgroup is fine (0), a populated one is -EBUSY. */
int cgroup_remove(int rootfd, const char *rel);

/* The deepest existing cgroup on the way from the root to rel ("." at worst): for a restore target that is gone. */
int cgroup_nearest_existing(int rootfd, const char *rel, char **ret);

/*
 * Pure: whether the text of a limit file (memory.max, pids.max, cpu.max,
 * io.max, ...) sets a limit. pids.max counts only below pids_floor: what the
 * process would be held to anyway where it is moved (systemd gives every
 * scope DefaultTasksMax=; UINT64_MAX: nothing, so any number counts).
 */
bool cgroup_limit_text_limits(const char *file, const char *text, uint64_t pids_floor);

/*
 * 1 when rel enforces a memory, swap, pids, cpu or io limit, or has a cgroup
 * BPF program attached that filters devices, sockets or sysctls (*ret_file:
 * which file, or which kind of program), 0 when none.
 */
int cgroup_find_limit(int rootfd, const char *rel, uint64_t pids_floor, const char **ret_file);

/*
 * 1 when a cgroup BPF program is attached to rel at one of the attach
 * points that restrict a process (BPF_PROG_QUERY; *ret_what names its
 * kind), 0 when none; -ENOSYS, -EPERM, -EOPNOTSUPP when the kernel cannot
 * tell (no bpf(2), no CAP_NET_ADMIN, none of the attach types known).
 */
int cgroup_find_bpf(int rootfd, const char *rel, const char **ret_what);

/* rel's memory.min and memory.low ("max" is UINT64_MAX). */
int cgroup_read_protection(int rootfd, const char *rel, uint64_t *ret_min, uint64_t *ret_low);

/*
 * An extended attribute of a cgroup directory as it was found: absent, or
 * present with these bytes. What a protection records before it marks a
 * cgroup, to put exactly that back.
 */
typedef struct XattrValue {
        int state;   /* -1 not recorded, 0 absent, 1 present */
        char *value; /* present: size bytes, then a NUL */
        size_t size;
} XattrValue;

#define XATTR_VALUE_MAX 4096 /* larger values are refused (-E2BIG): ours are a few bytes */

void xattr_value_done(XattrValue *v);
/* Pure: same state and, when present, the same bytes. */
bool xattr_value_equal(const XattrValue *a, const XattrValue *b);
/* Pure: a deep copy of v into *ret (ret is overwritten, not freed). */
int xattr_value_copy(const XattrValue *v, XattrValue *ret);

/* Name's value on rel into *ret (state 0 when it has none). */
int cgroup_read_xattr(int rootfd, const char *rel, const char *name, XattrValue *ret);
/* Name on rel set to v's bytes, or removed when v->state is 0 (absent already: fine); -EINVAL for state -1. */
int cgroup_write_xattr(int rootfd, const char *rel, const char *name, const XattrValue *v);
