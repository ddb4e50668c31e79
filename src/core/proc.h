/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "op-error.h"

/*
 * What the engine reads about a process from /proc. Every function takes a
 * dirfd of the proc mount (normally /proc), so that nothing here hard-codes it.
 */

#define PF_KTHREAD_FLAG 0x00200000U /* include/linux/sched.h */

typedef struct ProcStat {
        char comm[16];
        char state;
        pid_t ppid;
        unsigned flags;
        uint64_t starttime; /* field 22, clock ticks since boot */
} ProcStat;

typedef struct ProcInfo {
        pid_t pid;
        ProcStat stat;
        uid_t uid;        /* real */
        uid_t uids[4];    /* real, effective, saved, filesystem */
        uid_t dump_owner; /* owner of /proc/PID/stat: the effective uid if dumpable, else root */
        unsigned threads; /* Threads: of status; > 1 with a zombie leader: still alive */
        char *cgroup; /* the "0::" line's path; NULL where the process has none (a v1-only host) */
        int oom_score_adj;
} ProcInfo;

void proc_info_done(ProcInfo *i);

/* Pure: a /proc/PID/stat line; the comm may contain spaces and parentheses. */
int proc_parse_stat(const char *text, ProcStat *ret);

/* Pure: the cgroup v2 path from /proc/PID/cgroup ("0::/a/b" -> "/a/b"); -ENODATA if there is none. */
int proc_parse_cgroup_v2(const char *text, char **ret);

/* Pure: the real uid from /proc/PID/status ("Uid:\t0\t0\t0\t0"). */
int proc_parse_status_uid(const char *text, uid_t *ret);

/* Pure: the four uids of the Uid: line (real, effective, saved, filesystem). */
int proc_parse_status_uids(const char *text, uid_t ret[4]);

/* Pure: the Threads: line of /proc/PID/status. */
int proc_parse_status_threads(const char *text, unsigned *ret);

/*
 * Pure: may a caller of uid owner (not root) protect this process? Only
 * where every uid is owner's and the process is dumpable (a setuid program
 * is not: its /proc entries belong to root), so that protection never
 * changes what the caller could not have changed itself. Fills e.
 */
int proc_check_owned_by(const ProcInfo *i, uid_t owner, OpError *e);

/* Pure: the thread group id from /proc/PID/status ("Tgid:\t1234"): for a thread, its process. */
int proc_parse_status_tgid(const char *text, pid_t *ret);
int proc_read_tgid(int procfd, pid_t pid, pid_t *ret);

/* pid's cgroup v2 path ("/a/b"). */
int proc_read_cgroup(int procfd, pid_t pid, char **ret);

/* Reads stat, status, cgroup and oom_score_adj of pid. -ESRCH when it is gone. */
int proc_read_info(int procfd, pid_t pid, ProcInfo *ret);

/* Reads field 22 alone: cheaper check that (pid, starttime) still names the same process. */
int proc_read_starttime(int procfd, pid_t pid, uint64_t *ret);

/* Whether pid still names the process recorded with starttime: checked right before each write by pid. */
bool proc_same_process(int procfd, pid_t pid, uint64_t starttime);

/*
 * May this process be protected? Fills e with a distinct reason for PID 1,
 * kernel threads, zombies (and dying processes) and the daemon itself. A
 * zombie thread-group leader with live threads (its main thread called
 * pthread_exit) is alive.
 */
int proc_check_protectable(const ProcInfo *i, pid_t self, OpError *e);

int proc_read_oom_score_adj(int procfd, pid_t pid, int *ret);
int proc_write_oom_score_adj(int procfd, pid_t pid, int adj);
/*
 * The same, for the process identified by pidfd (>= 0), else by starttime
 * (0: any process at pid): the file is opened first and the identity
 * checked after, so the write reaches that process or none (-ESRCH), even
 * when its PID is reused meanwhile.
 */
int proc_write_oom_score_adj_of(int procfd, pid_t pid, int pidfd, uint64_t starttime, int adj);

/*
 * A handle on the process that has pid now: its /proc directory (O_PATH),
 * bound to that process for as long as it is open. What is read or written
 * through it belongs to that process, or fails with -ESRCH once it is
 * reaped, even when its PID names another process by then. So a check made
 * through a handle ("is it the one recorded?") holds for the writes made
 * through it; a write that names the PID elsewhere (cgroup.procs) reached
 * it if the handle is still alive after that write (a process keeps its PID
 * until it is reaped).
 */
int proc_handle_open(int procfd, pid_t pid);
int proc_handle_starttime(int handle, uint64_t *ret);
int proc_handle_cgroup(int handle, char **ret);
int proc_handle_read_adj(int handle, int *ret);
int proc_handle_write_adj(int handle, int adj);
/* Not reaped yet (running, stopped or a zombie): it still holds its PID. */
bool proc_handle_alive(int handle);

/* pidfd_open(2); and the pid a pidfd refers to (from /proc/self/fdinfo, -ESRCH once it exited). */
int proc_pidfd_open(pid_t pid);
int proc_pidfd_get_pid(int procfd, int pidfd, pid_t *ret);

/*
 * Pure: the descendants of root in a list of (pid, ppid) pairs, depth first,
 * root excluded. Cycles and duplicates cannot loop.
 */
typedef struct PidPair {
        pid_t pid;
        pid_t ppid;
} PidPair;
int proc_descendants_from_pairs(const PidPair *pairs, size_t n, pid_t root, pid_t **ret, size_t *ret_n);

/* Scans procfd for every process's parent and returns the descendants of root. */
int proc_get_descendants(int procfd, pid_t root, pid_t **ret, size_t *ret_n);

/* Whether the process behind pidfd still runs (pidfd_send_signal with signal 0). */
bool proc_pidfd_alive(int pidfd);
