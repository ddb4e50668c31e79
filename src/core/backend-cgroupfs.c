/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/xattr.h>

#include "backend.h"
#include "cgroup.h"
#include "log.h"
#include "proc.h"
#include "oomprotect/protocol.h"

/*
 * The cgroupfs backend: direct I/O below a dirfd of the cgroup2 mount, for
 * hosts where nobody else owns the tree (containers, OpenRC, embedded).
 * The kernel answers every write at once, so every operation completes
 * before it returns, except freezing, which waits (from the event loop) for
 * cgroup.events to say "frozen 1".
 */

/* A freeze waiting for the kernel. */
typedef struct FreezeWait FreezeWait;
struct FreezeWait {
        FreezeWait *prev, *next;
        Backend *backend;
        int fd;
        sd_event_source *io, *timer;
        uint64_t deadline, step; /* µs, CLOCK_MONOTONIC */
        BackendDone done;
        void *userdata;
};

typedef struct CgroupfsData {
        FreezeWait *waits;
} CgroupfsData;

/* How often restore re-reads a scope that a fork keeps filling while it empties it. */
#define RESTORE_ATTEMPTS 16

static int cgroupfs_init(Backend *b, OpError *e) {
        int r;

        b->data = calloc(1, sizeof(CgroupfsData));
        if (!b->data)
                return -ENOMEM;
        r = cgroup_create(b->rootfd, b->slice_rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot create %s/%s: %s", b->root_path, b->slice_rel,
                                    strerror(-r));
        b->has_cgroup = true;

        if (!cgroup_has_controller(b->rootfd, ".", "memory")) {
                b->memory_note = strdup("the cgroup2 hierarchy has no memory controller (a hybrid host?): "
                                        "memory.min, memory.low and memory.oom.group are not set");
                return 0;
        }
        r = cgroup_enable_controller(b->rootfd, b->slice_rel, "memory");
        if (r < 0) {
                /* The note is informative: without memory for it, the backend still works, unexplained. */
                if (asprintf(&b->memory_note, "cannot enable the memory controller down to %s: %s", b->slice_rel,
                             strerror(-r)) < 0)
                        b->memory_note = NULL;
                return 0;
        }
        b->has_memory = true;
        return 0;
}

static FreezeWait *freeze_wait_free(FreezeWait *w) {
        CgroupfsData *d = w->backend->data;

        if (w->prev)
                w->prev->next = w->next;
        else
                d->waits = w->next;
        if (w->next)
                w->next->prev = w->prev;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        safe_close(w->fd);
        free(w);
        return NULL;
}

static void cgroupfs_done(Backend *b) {
        CgroupfsData *d = b->data;

        if (!d)
                return;
        while (d->waits)
                freeze_wait_free(d->waits);
        free(d);
        b->data = NULL;
}

static int scope_rel(const Protection *p, const char **ret) {
        const char *rel = cgroup_path_to_rel(p->scope_cgroup);

        if (!rel)
                return -EINVAL;
        *ret = rel;
        return 0;
}

static int write_oomd_preference(Backend *b, const char *rel, int pref);

/* Marks the scope for systemd-oomd (the cgroupfs-side equivalent of ManagedOOMPreference=) and facebook's oomd. */
static void mark_oomd_preference(Backend *b, const Protection *p, const char *rel) {
        if (b->config->managed_oom_preference != MANAGED_OOM_PREFERENCE_NONE)
                (void) write_oomd_preference(b, rel, (int) b->config->managed_oom_preference);
        backend_mark_scope(b, p->scope_cgroup);
}

static int tune_scope(Backend *b, const char *rel, const Protection *p, OpError *e) {
        int r;

        if (!b->has_memory)
                return 0;
        r = cgroup_write_u64(b->rootfd, rel, "memory.min", p->memory_min);
        if (r >= 0)
                r = cgroup_write_u64(b->rootfd, rel, "memory.low", p->memory_low);
        if (r >= 0)
                r = cgroup_write(b->rootfd, rel, "memory.oom.group", p->oom_group ? "1" : "0");
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot tune memory of %s: %s", p->scope_cgroup, strerror(-r));
        return 0;
}

/* p's own process still runs: its pidfd alive, else its PID with the recorded start time. */
static bool recorded_process_runs(Backend *b, const Protection *p) {
        if (p->pidfd >= 0)
                return proc_pidfd_alive(p->pidfd);
        return proc_same_process(b->procfd, p->pid, p->starttime);
}

/*
 * Writes pid into rel's cgroup.procs only for the process meant, checked
 * before and after the write through a handle on it (proc.h): its start
 * time must be starttime (if not 0), and it must sit in `from` (if not
 * NULL: the scope being emptied); it still holds its PID after the write,
 * so the write reached it and not a newcomer. *ret_starttime: its start
 * time. -ESRCH: not that process, or it exited; nothing of it was moved.
 */
static int attach_checked(Backend *b, const char *rel, pid_t pid, uint64_t starttime, const char *from,
                          uint64_t *ret_starttime) {
        _cleanup_close_ int h = proc_handle_open(b->procfd, pid);
        _cleanup_free_ char *now = NULL;
        uint64_t st;
        int r;

        if (h < 0)
                return h;
        r = proc_handle_starttime(h, &st);
        if (r < 0)
                return r;
        if (starttime != 0 && st != starttime)
                return -ESRCH;
        if (from) {
                r = proc_handle_cgroup(h, &now);
                if (r < 0)
                        return r;
                if (!streq(strempty(cgroup_path_to_rel(now)), from))
                        return -ESRCH; /* not in the scope (any more): not ours to move */
        }
        if (ret_starttime)
                *ret_starttime = st;
        r = cgroup_attach(b->rootfd, rel, pid);
        if (r < 0)
                return r;
        if (!proc_handle_alive(h))
                log_debug("PID %d was reaped while being moved to %s.", (int) pid, rel);
        return 0;
}

static int apply_scope(Backend *b, const Protection *p, OpError *e) {
        const char *rel;
        bool created;
        int r;

        r = scope_rel(p, &rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Bad scope path %s.", strna(p->scope_cgroup));
        r = cgroup_create(b->rootfd, rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot create %s: %s", p->scope_cgroup, strerror(-r));
        created = r > 0;
        r = tune_scope(b, rel, p, e);
        if (r < 0)
                return r;
        mark_oomd_preference(b, p, rel);
        /* A daemon killed in the middle of a restore leaves the scope frozen: re-applying thaws it. A scope
         * made just now was never frozen. */
        if (!created)
                (void) cgroup_freeze(b->rootfd, rel, false, NULL);

        /*
         * By pid: so right before each move, the pid must still name the
         * recorded process (not a reused PID), and, where there is a pidfd,
         * right after it too: alive then, it held the PID throughout, and the
         * move reached it. (cgroup.procs takes no pidfd.)
         */
        r = recorded_process_runs(b, p) ? cgroup_attach(b->rootfd, rel, p->pid) : -ESRCH;
        if (r >= 0 && p->pidfd >= 0 && !proc_pidfd_alive(p->pidfd))
                r = -ESRCH;
        if (r < 0)
                return op_error_set(e, r == -ESRCH ? -ESRCH : r, NULL, "Cannot move PID %d into %s: %s",
                                    (int) p->pid, p->scope_cgroup, strerror(-r));
        for (size_t i = 0; i < p->n_members; i++) {
                r = attach_checked(b, rel, p->members[i].pid, p->members[i].starttime, NULL, NULL);
                if (r < 0 && r != -ESRCH) /* a member that exited, or whose PID names another process now */
                        return op_error_set(e, r, NULL, "Cannot move PID %d into %s: %s",
                                            (int) p->members[i].pid, p->scope_cgroup, strerror(-r));
        }
        return 0;
}

static void cgroupfs_apply(Backend *b, const Protection *p, BackendDone done, void *userdata) {
        OpError e = {};
        int r = apply_scope(b, p, &e);

        backend_complete(b, done, r, &e, userdata);
}

/*
 * Moves pid, found in the scope at scope, back to its original cgroup, or
 * to the nearest ancestor that still exists; only if it still is in the
 * scope (a newcomer at its PID elsewhere is left where it is).
 */
static int move_back(Backend *b, const Protection *p, const char *scope, pid_t pid, RestoreReport *report) {
        _cleanup_free_ char *nearest = NULL;
        const char *target;
        uint64_t st = 0;
        int r;

        r = proc_read_starttime(b->procfd, pid, &st);
        if (r < 0)
                return r == -ESRCH ? 0 : r;
        target = cgroup_path_to_rel(protection_restore_cgroup(p, pid, st));
        if (!target)
                target = ".";
        r = attach_checked(b, target, pid, st, scope, NULL);
        if (r == -ESRCH)
                return 0;
        if (r >= 0 || r != -ENOENT)
                return r < 0 ? r : restore_report_add(report, pid, st);

        r = cgroup_nearest_existing(b->rootfd, target, &nearest);
        if (r < 0)
                return r;
        r = attach_checked(b, nearest, pid, st, scope, NULL);
        if (r < 0)
                return r == -ESRCH ? 0 : r;
        report->fallback = true;
        free(report->fallback_path);
        report->fallback_path = NULL;
        if (asprintf(&report->fallback_path, "/%s", streq(nearest, ".") ? "" : nearest) < 0)
                return -ENOMEM;
        return restore_report_add(report, pid, st);
}

#define FREEZE_TIMEOUT_USEC (500 * 1000ULL)
/* The first look at cgroup.events after the write; each later one waits twice as long. */
#define FREEZE_FIRST_LOOK_USEC 50ULL

static void freeze_wait_finish(FreezeWait *w, int r) {
        Backend *b = w->backend;
        BackendDone done = w->done;
        void *userdata = w->userdata;

        freeze_wait_free(w);
        backend_complete(b, done, r, NULL, userdata);
}

static int on_freeze_events(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FreezeWait *w = userdata;

        if (cgroup_events_frozen(w->fd))
                freeze_wait_finish(w, 0);
        return 0;
}

/*
 * The kernel sends cgroup.events' notification at most once per 10 ms per cgroup, and the Protect just before
 * (the scope was populated) has often used it up: the scope is frozen long before anyone is told. So the
 * file is also read again at 50 µs, 100 µs, 200 µs... after the write, until the timeout.
 */
static int on_freeze_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        FreezeWait *w = userdata;
        int r;

        if (cgroup_events_frozen(w->fd)) {
                freeze_wait_finish(w, 0);
                return 0;
        }
        if (usec >= w->deadline) {
                freeze_wait_finish(w, -ETIMEDOUT);
                return 0;
        }
        w->step *= 2;
        r = sd_event_source_set_time(s, MIN(usec + w->step, w->deadline));
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (r < 0)
                freeze_wait_finish(w, r);
        return 0;
}

/* Waits from the event loop for cgroup.events (fd, taken) to say frozen; done then, or after a timeout. */
static int wait_frozen(Backend *b, int fd, BackendDone done, void *userdata) {
        CgroupfsData *d = b->data;
        FreezeWait *w;
        int r;

        if (!b->event) {
                safe_close(fd);
                return -ETIMEDOUT; /* nothing to wait with: restore without the freeze */
        }
        w = calloc(1, sizeof(FreezeWait));
        if (!w) {
                safe_close(fd);
                return -ENOMEM;
        }
        *w = (FreezeWait) { .backend = b, .fd = fd, .done = done, .userdata = userdata, .next = d->waits };
        if (w->next)
                w->next->prev = w;
        d->waits = w;
        r = sd_event_add_io(b->event, &w->io, fd, EPOLLPRI, on_freeze_events, w);
        if (r >= 0)
                r = sd_event_now(b->event, CLOCK_MONOTONIC, &w->deadline);
        if (r >= 0) {
                w->step = FREEZE_FIRST_LOOK_USEC;
                w->deadline += FREEZE_TIMEOUT_USEC;
                r = sd_event_add_time_relative(b->event, &w->timer, CLOCK_MONOTONIC, w->step, 1, on_freeze_timeout,
                                               w);
        }
        if (r < 0) {
                freeze_wait_free(w);
                return r;
        }
        return 0;
}

static void cgroupfs_freeze(Backend *b, const Protection *p, bool freeze, BackendDone done, void *userdata) {
        const char *rel;
        int fd = -EBADF, r;

        r = scope_rel(p, &rel);
        if (r >= 0)
                r = cgroup_freeze(b->rootfd, rel, freeze, &fd);
        if (r == 1) {
                r = wait_frozen(b, fd, done, userdata);
                if (r >= 0)
                        return;
        }
        backend_complete(b, done, r, NULL, userdata);
}

static int cgroupfs_list_pids(Backend *b, const Protection *p, pid_t **ret, size_t *ret_n) {
        const char *rel;
        int r;

        r = scope_rel(p, &rel);
        if (r < 0)
                return r;
        r = cgroup_get_pids(b->rootfd, rel, ret, ret_n);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return r;
}

static int empty_scope(Backend *b, const Protection *p, const char *rel, RestoreReport *report) {
        /* One more read than moves: the last pass may have emptied it. */
        for (unsigned attempt = 0; attempt <= RESTORE_ATTEMPTS; attempt++) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n;
                int r;

                r = cgroup_get_pids(b->rootfd, rel, &pids, &n);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                if (n == 0)
                        return 0;
                if (attempt == RESTORE_ATTEMPTS)
                        break;
                for (size_t i = 0; i < n; i++) {
                        r = move_back(b, p, rel, pids[i], report);
                        if (r < 0)
                                return r;
                }
        }
        return -EBUSY;
}

static void cgroupfs_restore(Backend *b, const Protection *p, BackendRestoreDone done, void *userdata) {
        _cleanup_(restore_report_done) RestoreReport report = {};
        OpError e = {};
        const char *rel;
        int r;

        r = scope_rel(p, &rel);
        if (r >= 0)
                r = empty_scope(b, p, rel, &report);
        if (r >= 0)
                r = cgroup_remove(b->rootfd, rel);
        if (r < 0)
                op_error_set(&e, r, NULL, "Cannot move everything out of %s: %s", strna(p->scope_cgroup),
                             strerror(-r));
        backend_complete_restore(b, done, r, &e, &report, userdata);
}

static const char *const oomd_xattrs[_MANAGED_OOM_PREFERENCE_MAX] = {
        [MANAGED_OOM_PREFERENCE_AVOID] = "user.oomd_avoid",
        [MANAGED_OOM_PREFERENCE_OMIT] = "user.oomd_omit",
};

/* systemd-oomd's preference as xattrs, as systemd itself writes them for ManagedOOMPreference=. */
static int write_oomd_preference(Backend *b, const char *rel, int pref) {
        _cleanup_close_ int fd = openat(b->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        for (int i = 0; i < _MANAGED_OOM_PREFERENCE_MAX; i++) {
                if (!oomd_xattrs[i])
                        continue;
                if (i == pref)
                        (void) fsetxattr(fd, oomd_xattrs[i], "1", 1, 0); /* older kernels refuse user.* here */
                else
                        (void) fremovexattr(fd, oomd_xattrs[i]);
        }
        return 0;
}

int backend_read_oomd_preference(Backend *b, const char *cgroup) {
        const char *rel = cgroup_path_to_rel(cgroup);
        _cleanup_close_ int fd = rel ? openat(b->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        char buf[8];

        if (fd < 0)
                return -1;
        for (int i = 0; i < _MANAGED_OOM_PREFERENCE_MAX; i++) {
                char trusted[32];
                if (!oomd_xattrs[i])
                        continue;
                snprintf(trusted, sizeof(trusted), "trusted.%s", oomd_xattrs[i] + strlen("user."));
                if (fgetxattr(fd, oomd_xattrs[i], buf, sizeof(buf)) > 0 || fgetxattr(fd, trusted, buf, sizeof(buf)) > 0)
                        return i;
        }
        return MANAGED_OOM_PREFERENCE_NONE;
}

/* Direct writes: on cgroupfs nobody else owns the tree. The marks first: they need no memory controller. */
int backend_write_memory_protection(Backend *b, const char *cgroup, const CgroupProtection *want, OpError *e) {
        const char *rel = cgroup_path_to_rel(cgroup);
        int r;

        if (!rel)
                return op_error_set(e, -EINVAL, NULL, "Bad cgroup path %s.", strna(cgroup));
        if (want->oomd_preference >= 0)
                (void) write_oomd_preference(b, rel, want->oomd_preference);
        (void) backend_mark_oomd_avoid(b, cgroup, want->avoid, want->avoid_original);
        if (!b->has_memory)
                return 0;
        r = cgroup_write_u64(b->rootfd, rel, "memory.min", want->min);
        if (r >= 0)
                r = cgroup_write_u64(b->rootfd, rel, "memory.low", want->low);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot set memory.min/memory.low of %s: %s", cgroup, strerror(-r));
        return 0;
}

static void cgroupfs_set_memory_protection(Backend *b, const char *cgroup, const char *unit,
                                           const CgroupProtection *want, BackendDone done, void *userdata) {
        OpError e = {};
        int r = backend_write_memory_protection(b, cgroup, want, &e);

        backend_complete(b, done, r, &e, userdata);
}

static int cgroupfs_read_oom_kills(Backend *b, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (!b->has_memory)
                return -EOPNOTSUPP;
        r = cgroup_read(b->rootfd, b->slice_rel, "memory.events", &text);
        if (r < 0)
                return r;
        return cgroup_parse_keyed(text, "oom_kill", ret);
}

const BackendVTable backend_cgroupfs_vtable = {
        .name = "cgroupfs",
        .init = cgroupfs_init,
        .done = cgroupfs_done,
        .apply = cgroupfs_apply,
        .freeze = cgroupfs_freeze,
        .list_pids = cgroupfs_list_pids,
        .restore = cgroupfs_restore,
        .set_memory_protection = cgroupfs_set_memory_protection,
        .read_oom_kills = cgroupfs_read_oom_kills,
};
