/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "backend.h"
#include "cgroup.h"
#include "proc.h"
#include "oomprotect/protocol.h"

/*
 * The cgroupfs backend: direct I/O below a dirfd of the cgroup2 mount, for
 * hosts where nobody else owns the tree (containers, OpenRC, embedded) and,
 * until the systemd backend exists, everywhere.
 */

/* How often restore re-reads a scope that a fork keeps filling while it empties it. */
#define RESTORE_ATTEMPTS 16

static int cgroupfs_init(Backend *b, OpError *e) {
        int r;

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

static void cgroupfs_done(Backend *b) {
}

static int scope_rel(const Protection *p, const char **ret) {
        const char *rel = cgroup_path_to_rel(p->scope_cgroup);

        if (!rel)
                return -EINVAL;
        *ret = rel;
        return 0;
}

/* Marks the scope for systemd-oomd as its cgroupfs-side equivalent of ManagedOOMPreference=. */
static void mark_oomd_preference(Backend *b, const char *rel) {
        const char *xattr;
        int fd;

        switch (b->config->managed_oom_preference) {
        case MANAGED_OOM_PREFERENCE_OMIT:
                xattr = "user.oomd_omit";
                break;
        case MANAGED_OOM_PREFERENCE_AVOID:
                xattr = "user.oomd_avoid";
                break;
        default:
                return;
        }
        fd = openat(b->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        (void) fsetxattr(fd, xattr, "1", 1, 0); /* best effort: older kernels refuse user.* on cgroupfs */
        safe_close(fd);
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

static int cgroupfs_apply(Backend *b, const Protection *p, OpError *e) {
        const char *rel;
        int r;

        r = scope_rel(p, &rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Bad scope path %s.", strna(p->scope_cgroup));
        r = cgroup_create(b->rootfd, rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot create %s: %s", p->scope_cgroup, strerror(-r));
        r = tune_scope(b, rel, p, e);
        if (r < 0)
                return r;
        mark_oomd_preference(b, rel);
        /* A daemon killed in the middle of a restore leaves the scope frozen: re-applying thaws it. */
        (void) cgroup_freeze(b->rootfd, rel, false, 0);

        r = cgroup_attach(b->rootfd, rel, p->pid);
        if (r < 0)
                return op_error_set(e, r == -ESRCH ? -ESRCH : r, NULL, "Cannot move PID %d into %s: %s",
                                    (int) p->pid, p->scope_cgroup, strerror(-r));
        for (size_t i = 0; i < p->n_members; i++) {
                r = cgroup_attach(b->rootfd, rel, p->members[i].pid);
                if (r < 0 && r != -ESRCH) /* a member that exited meanwhile is not an error */
                        return op_error_set(e, r, NULL, "Cannot move PID %d into %s: %s",
                                            (int) p->members[i].pid, p->scope_cgroup, strerror(-r));
        }
        return 0;
}

static int report_add(RestoreReport *r, pid_t pid) {
        for (size_t i = 0; i < r->n_pids; i++)
                if (r->pids[i] == pid)
                        return 0;
        pid_t *n = realloc(r->pids, (r->n_pids + 1) * sizeof(pid_t));
        if (!n)
                return -ENOMEM;
        r->pids = n;
        r->pids[r->n_pids++] = pid;
        return 0;
}

/* Moves pid to its original cgroup, or to the nearest ancestor that still exists. */
static int move_back(Backend *b, const Protection *p, pid_t pid, RestoreReport *report) {
        const char *target = cgroup_path_to_rel(protection_restore_cgroup(p, pid));
        _cleanup_free_ char *nearest = NULL;
        int r;

        if (!target)
                target = ".";
        r = cgroup_attach(b->rootfd, target, pid);
        if (r != -ENOENT)
                return r == -ESRCH ? 0 : r;

        r = cgroup_nearest_existing(b->rootfd, target, &nearest);
        if (r < 0)
                return r;
        r = cgroup_attach(b->rootfd, nearest, pid);
        if (r < 0)
                return r == -ESRCH ? 0 : r;
        report->fallback = true;
        free(report->fallback_path);
        report->fallback_path = NULL;
        return asprintf(&report->fallback_path, "/%s", streq(nearest, ".") ? "" : nearest) < 0 ? -ENOMEM : 0;
}

#define FREEZE_TIMEOUT_MS 500

static int cgroupfs_freeze(Backend *b, const Protection *p, bool freeze) {
        const char *rel;
        int r;

        r = scope_rel(p, &rel);
        if (r < 0)
                return r;
        return cgroup_freeze(b->rootfd, rel, freeze, FREEZE_TIMEOUT_MS);
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
                        r = report_add(report, pids[i]);
                        if (r >= 0)
                                r = move_back(b, p, pids[i], report);
                        if (r < 0)
                                return r;
                }
        }
        return -EBUSY;
}

static int cgroupfs_restore(Backend *b, const Protection *p, RestoreReport *ret) {
        RestoreReport report = {};
        const char *rel;
        int r;

        r = scope_rel(p, &rel);
        if (r < 0)
                return r;
        r = empty_scope(b, p, rel, &report);
        if (r >= 0)
                r = cgroup_remove(b->rootfd, rel);
        if (r < 0) {
                restore_report_done(&report);
                return r;
        }
        *ret = report;
        return 0;
}

static int cgroupfs_set_slice_memory_min(Backend *b, uint64_t bytes) {
        if (!b->has_memory)
                return 0;
        return cgroup_write_u64(b->rootfd, b->slice_rel, "memory.min", bytes);
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
        .set_slice_memory_min = cgroupfs_set_slice_memory_min,
        .read_oom_kills = cgroupfs_read_oom_kills,
};
