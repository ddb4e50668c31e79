/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileio.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

void proc_info_done(ProcInfo *i) {
        free(i->cgroup);
        i->cgroup = NULL;
}

int proc_parse_stat(const char *text, ProcStat *ret) {
        const char *open, *close;
        ProcStat s = {};
        size_t len;

        /* The comm sits between the first '(' and the last ')': it may contain either. */
        open = strchr(text, '(');
        close = strrchr(text, ')');
        if (!open || !close || close < open)
                return -EINVAL;
        len = MIN((size_t) (close - open - 1), sizeof(s.comm) - 1);
        memcpy(s.comm, open + 1, len);
        s.comm[len] = '\0';

        if (sscanf(close + 1,
                   " %c %d %*s %*s %*s %*s %u %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %" SCNu64,
                   &s.state, &s.ppid, &s.flags, &s.starttime) != 4)
                return -EINVAL;
        *ret = s;
        return 0;
}

int proc_parse_cgroup_v2(const char *text, char **ret) {
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (!strneq(l, "0::", 3))
                        continue;
                l += 3;
                size_t n = strcspn(l, "\n");
                if (n == 0 || l[0] != '/')
                        return -EINVAL;
                char *p = strndup(l, n);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        return -ENODATA;
}

int proc_parse_status_uid(const char *text, uid_t *ret) {
        const char *l = strstr(text, "\nUid:");
        unsigned long uid;

        if (!l && strneq(text, "Uid:", 4))
                l = text - 1;
        if (!l || sscanf(l + 5, "%lu", &uid) != 1)
                return -EINVAL;
        *ret = (uid_t) uid;
        return 0;
}

/* The value after "\nKEY" (or KEY at the very start) of a status text, NULL if there is none. */
static const char *status_field(const char *text, const char *key) {
        size_t n = strlen(key);
        const char *l;

        if (strneq(text, key, n))
                return text + n;
        for (l = strchr(text, '\n'); l; l = strchr(l + 1, '\n'))
                if (strneq(l + 1, key, n))
                        return l + 1 + n;
        return NULL;
}

int proc_parse_status_uids(const char *text, uid_t ret[4]) {
        const char *l = status_field(text, "Uid:");
        unsigned long u[4];
        int end = 0;

        if (!l || sscanf(l, "%lu %lu %lu %lu%n", &u[0], &u[1], &u[2], &u[3], &end) != 4 || end == 0)
                return -EINVAL;
        l += end;
        if (*l != '\n' && *l != '\0')
                return -EINVAL;
        for (size_t i = 0; i < 4; i++) {
                if (u[i] >= (unsigned long) UINT32_MAX)
                        return -EINVAL;
                ret[i] = (uid_t) u[i];
        }
        return 0;
}

int proc_parse_status_threads(const char *text, unsigned *ret) {
        const char *l = status_field(text, "Threads:");
        unsigned long n;

        if (!l || sscanf(l, "%lu", &n) != 1 || n > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) n;
        return 0;
}

int proc_check_owned_by(const ProcInfo *i, uid_t owner, OpError *e) {
        static const char *const names[4] = { "real", "effective", "saved", "filesystem" };

        for (size_t k = 0; k < 4; k++)
                if (i->uids[k] != owner)
                        return op_error_set(e, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                            "PID %d runs with %s uid %u (uids %u %u %u %u): you may only protect "
                                            "processes whose every uid is yours.",
                                            (int) i->pid, names[k], (unsigned) i->uids[k], (unsigned) i->uids[0],
                                            (unsigned) i->uids[1], (unsigned) i->uids[2], (unsigned) i->uids[3]);
        if (i->dump_owner != owner)
                return op_error_set(e, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "PID %d is not dumpable (a setuid or setgid program, or one that asked for it): "
                                    "only root may protect it.", (int) i->pid);
        return 0;
}

#define PID_FILE_FIRST_READ 4096

/*
 * Reads /proc/PID/NAME (stat, status, cgroup, oom_score_adj); a vanished process is -ESRCH whatever the
 * kernel said. The kernel makes each of these files whole at the first read, so a read that comes back
 * shorter than asked for has all of it: the second read, which would only see the end of the file, is
 * saved (a Protect+Unprotect pair reads 12 of them). One that fills the buffer is read whole from the start.
 */
static int read_pid_file(int procfd, pid_t pid, const char *name, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        char path[64];
        ssize_t k;
        int r;

        snprintf(path, sizeof(path), "%d/%s", (int) pid, name);
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT || errno == ESRCH ? -ESRCH : negative_errno();
        buf = malloc(PID_FILE_FIRST_READ);
        if (!buf)
                return -ENOMEM;
        do
                k = read(fd, buf, PID_FILE_FIRST_READ - 1);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == ENOENT || errno == ESRCH ? -ESRCH : negative_errno();
        if ((size_t) k < PID_FILE_FIRST_READ - 1) {
                buf[k] = '\0';
                *ret = TAKE_PTR(buf);
                return 0;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        r = read_full_fd(fd, 1 << 20, ret, NULL);
        if (r == -ENOENT || r == -ESRCH)
                return -ESRCH;
        return r;
}

int proc_handle_open(int procfd, pid_t pid) {
        char name[16];
        int fd;

        if (pid <= 0)
                return -ESRCH;
        snprintf(name, sizeof(name), "%d", (int) pid);
        fd = openat(procfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        return fd;
}

static int read_handle_file(int handle, const char *name, char **ret) {
        int r = read_full_file_at(handle, name, 1 << 20, ret, NULL);

        return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

int proc_handle_starttime(int handle, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        ProcStat s;
        int r;

        r = read_handle_file(handle, "stat", &text);
        if (r >= 0)
                r = proc_parse_stat(text, &s);
        if (r < 0)
                return r;
        *ret = s.starttime;
        return 0;
}

int proc_handle_cgroup(int handle, char **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_handle_file(handle, "cgroup", &text);
        return r < 0 ? r : proc_parse_cgroup_v2(text, ret);
}

int proc_handle_read_adj(int handle, int *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_handle_file(handle, "oom_score_adj", &text);
        if (r < 0)
                return r;
        text[strcspn(text, "\n")] = '\0';
        return parse_int_range(text, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX, ret);
}

int proc_handle_write_adj(int handle, int adj) {
        char value[16];
        int r;

        snprintf(value, sizeof(value), "%d", adj);
        r = write_string_file_at(handle, "oom_score_adj", value);
        return r == -ENOENT ? -ESRCH : r;
}

bool proc_handle_alive(int handle) {
        return faccessat(handle, "stat", F_OK, 0) == 0;
}

int proc_parse_status_tgid(const char *text, pid_t *ret) {
        const char *l = strstr(text, "\nTgid:");
        int tgid;

        if (!l || sscanf(l + 6, "%d", &tgid) != 1 || tgid <= 0)
                return -EINVAL;
        *ret = tgid;
        return 0;
}

int proc_read_tgid(int procfd, pid_t pid, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_pid_file(procfd, pid, "status", &text);
        if (r < 0)
                return r;
        return proc_parse_status_tgid(text, ret);
}

int proc_read_starttime(int procfd, pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        ProcStat s;
        int r;

        r = read_pid_file(procfd, pid, "stat", &text);
        if (r < 0)
                return r;
        r = proc_parse_stat(text, &s);
        if (r < 0)
                return r;
        *ret = s.starttime;
        return 0;
}

bool proc_same_process(int procfd, pid_t pid, uint64_t starttime) {
        uint64_t st;

        return proc_read_starttime(procfd, pid, &st) >= 0 && st == starttime;
}

int proc_read_oom_score_adj(int procfd, pid_t pid, int *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_pid_file(procfd, pid, "oom_score_adj", &text);
        if (r < 0)
                return r;
        text[strcspn(text, "\n")] = '\0';
        return parse_int_range(text, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX, ret);
}

int proc_write_oom_score_adj(int procfd, pid_t pid, int adj) {
        char path[64], value[16];
        int r;

        snprintf(path, sizeof(path), "%d/oom_score_adj", (int) pid);
        snprintf(value, sizeof(value), "%d", adj);
        r = write_string_file_at(procfd, path, value);
        return r == -ENOENT ? -ESRCH : r;
}

int proc_write_oom_score_adj_of(int procfd, pid_t pid, int pidfd, uint64_t starttime, int adj) {
        _cleanup_close_ int fd = -EBADF;
        char path[64], value[16];
        int n;

        snprintf(path, sizeof(path), "%d/oom_score_adj", (int) pid);
        fd = openat(procfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        /* The open file is bound to the process that had pid then: is that still the one we mean? */
        if (pidfd >= 0 ? !proc_pidfd_alive(pidfd) : starttime != 0 && !proc_same_process(procfd, pid, starttime))
                return -ESRCH;
        n = snprintf(value, sizeof(value), "%d", adj);
        if (write(fd, value, (size_t) n) != n)
                return errno == ESRCH ? -ESRCH : negative_errno(); /* ESRCH: it exited since */
        return 0;
}

/*
 * The kernel gives a non-dumpable process's /proc files to root
 * (task_dump_owner(); the /proc/PID directory itself keeps the euid).
 */
static int read_dump_owner(int procfd, pid_t pid, uid_t *ret) {
        char name[32];
        struct stat st;

        snprintf(name, sizeof(name), "%d/stat", (int) pid);
        if (fstatat(procfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        *ret = st.st_uid;
        return 0;
}

int proc_read_info(int procfd, pid_t pid, ProcInfo *ret) {
        _cleanup_free_ char *stat = NULL, *status = NULL, *cgroup_text = NULL, *cgroup = NULL;
        ProcInfo i = { .pid = pid };
        int r;

        r = read_pid_file(procfd, pid, "stat", &stat);
        if (r < 0)
                return r;
        r = proc_parse_stat(stat, &i.stat);
        if (r < 0)
                return r;
        r = read_pid_file(procfd, pid, "status", &status);
        if (r < 0)
                return r;
        r = proc_parse_status_uids(status, i.uids);
        if (r < 0)
                return r;
        i.uid = i.uids[0];
        if (proc_parse_status_threads(status, &i.threads) < 0)
                i.threads = 1;
        r = read_dump_owner(procfd, pid, &i.dump_owner);
        if (r < 0)
                return r;
        r = read_pid_file(procfd, pid, "cgroup", &cgroup_text);
        if (r < 0)
                return r;
        r = proc_parse_cgroup_v2(cgroup_text, &cgroup);
        if (r < 0 && r != -ENODATA)
                return r;
        r = proc_read_oom_score_adj(procfd, pid, &i.oom_score_adj);
        if (r < 0)
                return r;
        i.cgroup = TAKE_PTR(cgroup);
        *ret = i;
        return 0;
}

int proc_check_protectable(const ProcInfo *i, pid_t self, OpError *e) {
        if (i->pid == 1)
                return op_error_set(e, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS,
                                    "PID 1 is the init process: the kernel never OOM-kills it.");
        if (i->stat.flags & PF_KTHREAD_FLAG)
                return op_error_set(e, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS,
                                    "PID %d (%s) is a kernel thread: it has no memory of its own to protect.",
                                    (int) i->pid, i->stat.comm);
        if ((i->stat.state == 'Z' && i->threads <= 1) || i->stat.state == 'X')
                return op_error_set(e, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS,
                                    "PID %d (%s) has already exited (it is a zombie).", (int) i->pid,
                                    i->stat.comm);
        if (i->pid == self)
                return op_error_set(e, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS,
                                    "PID %d is oomprotectd itself, which protects itself at start.",
                                    (int) i->pid);
        return 0;
}

int proc_pidfd_open(pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);

        return fd < 0 ? negative_errno() : fd;
}

int proc_pidfd_get_pid(int procfd, int pidfd, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        char path[64];
        const char *l;
        int pid, r;

        snprintf(path, sizeof(path), "self/fdinfo/%d", pidfd);
        r = read_full_file_at(procfd, path, 1 << 16, &text, NULL);
        if (r < 0)
                return r;
        l = strstr(text, "\nPid:");
        if (!l || sscanf(l + 5, "%d", &pid) != 1)
                return -EBADF; /* not a pidfd */
        if (pid <= 0)
                return -ESRCH; /* exited (-1) or in another pid namespace (0) */
        *ret = pid;
        return 0;
}

typedef struct PidList {
        pid_t *pids;
        size_t n, alloc;
} PidList;

static int pid_list_push(PidList *l, pid_t pid) {
        if (l->n == l->alloc) {
                size_t want = l->alloc ? l->alloc * 2 : 16;
                pid_t *n = realloc(l->pids, want * sizeof(pid_t));
                if (!n)
                        return -ENOMEM;
                l->pids = n;
                l->alloc = want;
        }
        l->pids[l->n++] = pid;
        return 0;
}

static bool pid_list_contains(const PidList *l, pid_t pid) {
        for (size_t i = 0; i < l->n; i++)
                if (l->pids[i] == pid)
                        return true;
        return false;
}

int proc_descendants_from_pairs(const PidPair *pairs, size_t n, pid_t root, pid_t **ret, size_t *ret_n) {
        PidList out = {};
        int r;

        /* Breadth-first over a growing list: each pid is added once, so a cycle ends. */
        for (size_t head = 0;; head++) {
                pid_t parent = head == 0 ? root : out.pids[head - 1];
                for (size_t i = 0; i < n; i++) {
                        if (pairs[i].ppid != parent || pairs[i].pid == root || pid_list_contains(&out, pairs[i].pid))
                                continue;
                        r = pid_list_push(&out, pairs[i].pid);
                        if (r < 0) {
                                free(out.pids);
                                return r;
                        }
                }
                if (head >= out.n)
                        break;
        }
        *ret = out.pids;
        *ret_n = out.n;
        return 0;
}

static int read_all_pairs(int procfd, PidPair **ret, size_t *ret_n) {
        _cleanup_free_ PidPair *pairs = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = opendir_at(procfd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                _cleanup_free_ char *text = NULL;
                ProcStat s;
                pid_t pid;

                if (parse_pid(de->d_name, &pid) < 0 || de->d_name[0] == '0')
                        continue;
                if (read_pid_file(procfd, pid, "stat", &text) < 0 || proc_parse_stat(text, &s) < 0)
                        continue; /* exited meanwhile */
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 256;
                        PidPair *p = realloc(pairs, alloc * sizeof(PidPair));
                        if (!p) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        pairs = p;
                }
                pairs[n++] = (PidPair) { .pid = pid, .ppid = s.ppid };
        }
        closedir(d);
        *ret = TAKE_PTR(pairs);
        *ret_n = n;
        return 0;
}

int proc_get_descendants(int procfd, pid_t root, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ PidPair *pairs = NULL;
        size_t n;
        int r;

        r = read_all_pairs(procfd, &pairs, &n);
        if (r < 0)
                return r;
        return proc_descendants_from_pairs(pairs, n, root, ret, ret_n);
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

bool proc_pidfd_alive(int pidfd) {
        return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
}

int proc_read_cgroup(int procfd, pid_t pid, char **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_pid_file(procfd, pid, "cgroup", &text);
        if (r < 0)
                return r;
        return proc_parse_cgroup_v2(text, ret);
}
