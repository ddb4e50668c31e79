/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "engine.h"
#include "fault.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"
#include "state.h"

/*
 * The protection engine: protect, unprotect, exact restore, reconcile.
 * Order of every protect: identify, record, persist, then touch (slice
 * budget, scope, oom_score_adj); a failure after persisting rolls back what
 * was done and forgets the record. Order of every unprotect: restore, then
 * forget and persist. A SIGKILL at any instant thus leaves a record for
 * everything that may have been touched, and the next start re-applies it.
 */

void unprotect_report_done(UnprotectReport *r) {
        free(r->fallback_path);
        *r = (UnprotectReport) {};
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char c = *s;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = c;
                if (c == '\0')
                        return 0;
        }
}

int engine_new(const Config *c, const EngineCallbacks *cb, void *userdata, Engine **ret, OpError *err) {
        _cleanup_(engine_freep) Engine *e = NULL;
        int r;

        e = calloc(1, sizeof(Engine));
        if (!e)
                return -ENOMEM;
        e->config = c;
        e->procfd = e->statefd = -EBADF;
        e->backend.rootfd = -EBADF;
        e->self = getpid();
        if (cb)
                e->callbacks = *cb;
        e->userdata = userdata;
        e->budget = config_budget_bytes(c, physical_memory());

        e->procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->procfd < 0)
                return op_error_set(err, negative_errno(), NULL, "Cannot open /proc: %m");
        r = mkdir_p(c->state_directory, 0755);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot create StateDirectory=%s: %s", c->state_directory,
                                    strerror(-r));
        e->statefd = open(c->state_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->statefd < 0)
                return op_error_set(err, negative_errno(), NULL, "Cannot open StateDirectory=%s: %m",
                                    c->state_directory);
        r = backend_open(&e->backend, c, e->procfd, &e->backend_note, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        registry_done(&e->registry);
        backend_close(&e->backend);
        free(e->backend_note);
        safe_close(e->procfd);
        safe_close(e->statefd);
        free(e);
        return NULL;
}

Protection *engine_get(Engine *e, pid_t pid) {
        return registry_get(&e->registry, pid);
}

static int persist(Engine *e) {
        return state_save(e->statefd, e->registry.items, e->registry.n);
}

static void notify(Engine *e, Protection *p, bool protected, const char *reason) {
        if (e->callbacks.changed)
                e->callbacks.changed(e, p, protected, reason, e->userdata);
}

/* Whether pid still is the process that was recorded with starttime. */
static bool same_process(Engine *e, pid_t pid, uint64_t starttime) {
        uint64_t st;

        return proc_read_starttime(e->procfd, pid, &st) >= 0 && st == starttime;
}

/*
 * Gives pid the oom_score_adj the plan says. starttime, when known (the
 * protected process and its members), guards against a reused PID.
 */
static void restore_adj(Engine *e, const Protection *p, pid_t pid, uint64_t starttime) {
        int current, adj;

        if (pid != p->pid && registry_get(&e->registry, pid))
                return; /* protected in its own right */
        if (starttime != 0 && !same_process(e, pid, starttime))
                return;
        if (proc_read_oom_score_adj(e->procfd, pid, &current) < 0)
                return;
        if (protection_restore_adj(p, pid, current, &adj))
                (void) proc_write_oom_score_adj(e->procfd, pid, adj);
}

/* oom_score_adj back for the process, its members, and every pid given (those found in its scope). */
static void restore_all_adj(Engine *e, const Protection *p, bool alive, const pid_t *pids, size_t n) {
        if (alive)
                restore_adj(e, p, p->pid, p->starttime);
        for (size_t i = 0; i < p->n_members; i++)
                restore_adj(e, p, p->members[i].pid, p->members[i].starttime);
        for (size_t i = 0; i < n; i++)
                if (pids[i] != p->pid)
                        restore_adj(e, p, pids[i], 0);
}

static int apply_protection(Engine *e, const Protection *p, OpError *err);

/*
 * Puts back oom_score_adj and cgroup of everything p covers. alive: p->pid
 * is still the recorded process. The scope is frozen first, so that nothing
 * in it forks meanwhile (a fork in flight would copy the applied adj and
 * land wherever its parent is by then); its processes get their adj back
 * while still in the scope, then move out, thawing as they leave. Where
 * freezing is not possible, the second adj pass over what the backend moved
 * catches children born in the scope meanwhile. If the backend cannot move
 * them all, a live process is protected again as it was, so that nothing is
 * left half-restored.
 */
static int restore_protection(Engine *e, const Protection *p, bool alive, UnprotectReport *ret) {
        _cleanup_free_ pid_t *covered = NULL;
        RestoreReport rr = {};
        size_t n_covered = 0;
        int r;

        if (alive && p->pidfd >= 0 && !proc_pidfd_alive(p->pidfd))
                alive = false;
        (void) e->backend.vtable->freeze(&e->backend, p, true);
        if (e->backend.vtable->list_pids(&e->backend, p, &covered, &n_covered) < 0)
                n_covered = 0;
        restore_all_adj(e, p, alive, covered, n_covered);
        fault_point("unprotect:adj-restored");

        r = e->backend.vtable->restore(&e->backend, p, &rr);
        if (r < 0) {
                (void) e->backend.vtable->freeze(&e->backend, p, false);
                if (alive)
                        (void) apply_protection(e, p, NULL);
                return r;
        }
        fault_point("unprotect:cgroup-restored");
        restore_all_adj(e, p, alive, rr.pids, rr.n_pids);

        if (ret)
                *ret = (UnprotectReport) { .n_moved = rr.n_pids, .fallback = rr.fallback,
                                           .fallback_path = TAKE_PTR(rr.fallback_path) };
        restore_report_done(&rr);
        return 0;
}

static void update_slice_min(Engine *e) {
        (void) e->backend.vtable->set_slice_memory_min(&e->backend, e->registry.memory_min_sum);
}

/*
 * Forgets p (which is in the registry) after restoring it; p is freed. When
 * the restore fails, a live process keeps its record (the caller may retry);
 * the record of one that exited is forgotten all the same, since nothing
 * could ever complete it, and what stays in its scope is logged.
 */
static int finish_protection(Engine *e, Protection *p, bool alive, const char *reason, UnprotectReport *ret,
                             OpError *err) {
        int r;

        r = restore_protection(e, p, alive, ret);
        if (r < 0 && alive)
                return op_error_set(err, r, NULL, "Cannot restore PID %d from %s: %s", (int) p->pid,
                                    strna(p->scope_cgroup), strerror(-r));
        if (r < 0)
                log_warning_errno(r, "PID %d exited, but what it left in %s cannot be moved back, leaving it: %m",
                                  (int) p->pid, strna(p->scope_cgroup));
        p = registry_remove(&e->registry, p->pid);
        update_slice_min(e);
        r = persist(e);
        if (r < 0)
                log_warning_errno(r, "Failed to save state after unprotecting PID %d, ignoring: %m", (int) p->pid);
        fault_point("unprotect:forgotten");
        notify(e, p, false, reason);
        protection_free(p);
        return 0;
}

/* Opens (or dups) a pidfd and reads the process, race-free: the pidfd is checked alive after the read. */
static int identify(Engine *e, const ProtectRequest *req, int *ret_pidfd, ProcInfo *ret_info, OpError *err) {
        _cleanup_close_ int pidfd = -EBADF;
        ProcInfo info;
        pid_t pid = req->pid;
        int r;

        if (req->pidfd >= 0) {
                r = proc_pidfd_get_pid(e->procfd, req->pidfd, &pid);
                if (r == -ESRCH)
                        return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_PROCESS,
                                            "The process behind the pidfd has exited.");
                if (r < 0)
                        return op_error_set(err, -EBADF, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "The file descriptor is not a pidfd.");
                pidfd = fcntl(req->pidfd, F_DUPFD_CLOEXEC, 3);
                if (pidfd < 0)
                        return op_error_set(err, negative_errno(), NULL, "Cannot duplicate the pidfd: %m");
        } else {
                if (pid <= 0 || pid > OOMPROTECT_PID_MAX_LIMIT)
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "PID %d is not a valid process ID.", (int) pid);
                pidfd = proc_pidfd_open(pid);
                if (pidfd == -ESRCH)
                        return op_error_set(err, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS,
                                            "No process with PID %d.", (int) pid);
                if (pidfd == -EINVAL || pidfd == -ENOENT) {
                        /* No thread-group leader by that number: a thread (its /proc entry exists) or nothing. */
                        pid_t tgid;
                        if (proc_read_tgid(e->procfd, pid, &tgid) >= 0 && tgid != pid)
                                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_PROCESS,
                                                    "PID %d is a thread of process %d: protect the process instead.",
                                                    (int) pid, (int) tgid);
                        return op_error_set(err, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS,
                                            "No process with PID %d.", (int) pid);
                }
                if (pidfd < 0)
                        return op_error_set(err, pidfd, NULL, "Cannot open PID %d: %s", (int) pid,
                                            strerror(-pidfd));
        }

        r = proc_read_info(e->procfd, pid, &info);
        if (r >= 0 && !proc_pidfd_alive(pidfd)) {
                proc_info_done(&info);
                r = -ESRCH;
        }
        if (r == -ESRCH)
                return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d has exited.", (int) pid);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot read /proc/%d: %s", (int) pid, strerror(-r));
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_info = info;
        return 0;
}

static int check_target(Engine *e, const ProtectRequest *req, const ProcInfo *info, OpError *err) {
        int r;

        r = proc_check_protectable(info, e->self, err);
        if (r < 0)
                return r;
        if (req->owner != UID_ANY && info->uid != req->owner)
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "PID %d belongs to uid %u: you may only protect your own processes.",
                                    (int) info->pid, (unsigned) info->uid);
        return 0;
}

/* Whether a cgroup path ("/a/b") is our slice or below it. */
static bool inside_slice(const Engine *e, const char *cgroup) {
        const char *rel = cgroup_path_to_rel(cgroup);
        size_t n;

        if (!e->backend.has_cgroup || !rel)
                return false;
        n = strlen(e->backend.slice_rel);
        return strneq(rel, e->backend.slice_rel, n) && (rel[n] == '/' || rel[n] == '\0');
}

/* A process inside our slice that has no record of its own: a child born in a protected scope. */
static int check_not_inside_slice(Engine *e, const ProcInfo *info, OpError *err) {
        if (!e->backend.has_cgroup)
                return 0;
        if (!info->cgroup)
                return op_error_set(err, -EMEDIUMTYPE, NULL, "PID %d is in no cgroup v2 hierarchy.",
                                    (int) info->pid);
        if (!cgroup_path_to_rel(info->cgroup))
                return op_error_set(err, -EXDEV, OOMPROTECT_ERROR_INVALID_PROCESS,
                                    "PID %d is in cgroup %s, outside oomprotectd's cgroup namespace.",
                                    (int) info->pid, info->cgroup);
        if (inside_slice(e, info->cgroup))
                return op_error_set(err, -EEXIST, OOMPROTECT_ERROR_ALREADY_PROTECTED,
                                    "PID %d is inside %s already: a child of a protected process is covered "
                                    "by its parent's protection.",
                                    (int) info->pid, info->cgroup);
        return 0;
}

static int resolve_options(Engine *e, const ProtectOptions *o, Protection *p, OpError *err) {
        const Config *c = e->config;
        uint64_t ram = physical_memory();

        p->memory_min = o->has_memory_min ? o->memory_min : c->default_memory_min;
        p->memory_low = o->has_memory_low ? o->memory_low : c->default_memory_low;
        p->applied_adj = o->has_adj ? o->adj : c->oom_score_adjust;
        p->oom_group = o->has_oom_group ? o->oom_group : c->oom_group;
        p->descendants = o->descendants;

        if (o->in_place)
                return op_error_set(err, -EOPNOTSUPP, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "In-place protection is not available in this version.");
        if (p->applied_adj < OOMPROTECT_OOM_SCORE_ADJ_MIN || p->applied_adj > OOMPROTECT_OOM_SCORE_ADJ_MAX)
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "OOMScoreAdjust %d is out of range (-1000 to 1000).", p->applied_adj);
        if (ram > 0 && (p->memory_min > ram || p->memory_low > ram))
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "A memory protection of %" PRIu64 " bytes is more than this machine's RAM "
                                    "(%" PRIu64 " bytes).",
                                    MAX(p->memory_min, p->memory_low), ram);
        if (o->tag) {
                if (strlen(o->tag) > 255 || strpbrk(o->tag, "\n\r\t"))
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "A tag must be at most 255 bytes without control characters.");
                p->tag = strdup(o->tag);
                if (!p->tag)
                        return -ENOMEM;
        }
        if (!budget_allows(e->registry.memory_min_sum, p->memory_min, e->budget)) {
                char want[FORMAT_BYTES_MAX], used[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX];
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "memory.min %s on top of %s in use exceeds MemoryMinBudget=%s.",
                                    format_bytes(want, sizeof(want), p->memory_min),
                                    format_bytes(used, sizeof(used), e->registry.memory_min_sum),
                                    format_bytes(budget, sizeof(budget), e->budget));
        }
        return 0;
}

/*
 * Descendants=true: the tree as it is now, each with where it came from.
 * Only processes the caller may protect on their own: of its uid (owner),
 * not kernel threads, not what another protection covers already.
 */
static int collect_members(Engine *e, Protection *p, uid_t owner) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        r = proc_get_descendants(e->procfd, p->pid, &pids, &n);
        if (r < 0)
                return r;
        p->members = calloc(n ? n : 1, sizeof(ProtectionMember));
        if (!p->members)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                ProcInfo info;
                if (proc_read_info(e->procfd, pids[i], &info) < 0)
                        continue; /* exited meanwhile */
                if (proc_check_protectable(&info, e->self, NULL) < 0 || registry_get(&e->registry, pids[i]) ||
                    inside_slice(e, info.cgroup) || (owner != UID_ANY && info.uid != owner)) {
                        proc_info_done(&info);
                        continue;
                }
                p->members[p->n_members++] = (ProtectionMember) {
                        .pid = pids[i],
                        .starttime = info.stat.starttime,
                        .original_cgroup = TAKE_PTR(info.cgroup),
                        .original_adj = info.oom_score_adj,
                };
        }
        return 0;
}

static int build_protection(Engine *e, const ProtectRequest *req, ProcInfo *info, Protection **ret,
                            OpError *err) {
        _cleanup_(protection_freep) Protection *p = protection_new();
        int r;

        if (!p)
                return -ENOMEM;
        p->pid = info->pid;
        p->starttime = info->stat.starttime;
        memcpy(p->comm, info->stat.comm, sizeof(p->comm));
        p->uid = info->uid;
        p->original_adj = info->oom_score_adj;
        p->since_usec = now_usec();
        p->source = strdup(req->source ? req->source : "unknown");
        if (!p->source)
                return -ENOMEM;
        if (e->backend.has_cgroup) {
                p->original_cgroup = TAKE_PTR(info->cgroup);
                r = backend_scope_path(&e->backend, p->pid, &p->scope_cgroup);
                if (r < 0)
                        return r;
        }
        r = resolve_options(e, &req->options, p, err);
        if (r < 0)
                return r;
        if (p->descendants) {
                r = collect_members(e, p, req->owner);
                if (r < 0)
                        return op_error_set(err, r, NULL, "Cannot list the children of PID %d: %s",
                                            (int) p->pid, strerror(-r));
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static int apply_adj(Engine *e, const Protection *p, OpError *err) {
        int r;

        r = proc_write_oom_score_adj(e->procfd, p->pid, p->applied_adj);
        if (r == -EACCES || r == -EPERM)
                return op_error_set(err, r, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "Cannot set oom_score_adj of PID %d to %d: lowering it needs CAP_SYS_RESOURCE.",
                                    (int) p->pid, p->applied_adj);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot set oom_score_adj of PID %d: %s", (int) p->pid,
                                    strerror(-r));
        for (size_t i = 0; i < p->n_members; i++)
                if (same_process(e, p->members[i].pid, p->members[i].starttime))
                        (void) proc_write_oom_score_adj(e->procfd, p->members[i].pid, p->applied_adj);
        return 0;
}

/* Touches the system for a persisted record: slice budget, scope, oom_score_adj. */
static int apply_protection(Engine *e, const Protection *p, OpError *err) {
        int r;

        r = e->backend.vtable->set_slice_memory_min(&e->backend,
                                                     MAX(e->registry.memory_min_sum, e->slice_min_floor));
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot raise memory.min of %s: %s", e->backend.slice_rel,
                                    strerror(-r));
        fault_point("protect:slice-raised");
        r = e->backend.vtable->apply(&e->backend, p, err);
        if (r < 0)
                return r;
        fault_point("protect:scope-applied");
        r = apply_adj(e, p, err);
        if (r < 0)
                return r;
        fault_point("protect:adj-applied");
        return 0;
}

/* The record is persisted but applying failed: undo what was done, forget it, persist again. */
static void roll_back(Engine *e, Protection *p) {
        (void) restore_protection(e, p, true, NULL);
        p = registry_remove(&e->registry, p->pid);
        update_slice_min(e);
        (void) persist(e);
        protection_free(p);
}

/*
 * A scope of this name with processes but no record is what an earlier
 * protection could not empty (its process exited, its children could not go
 * back). Joining it would hand those to this protection's restore.
 */
static int check_scope_unused(Engine *e, const Protection *p, OpError *err) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (!e->backend.has_cgroup || e->backend.vtable->list_pids(&e->backend, p, &pids, &n) < 0 || n == 0)
                return 0;
        return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BACKEND,
                            "%s still holds %zu process(es) of an earlier protection of PID %d; "
                            "move them out (or end them) first.",
                            p->scope_cgroup, n, (int) p->pid);
}

static int protect_existing(Engine *e, Protection *existing, const ProcInfo *info, Protection **ret) {
        if (existing->starttime == info->stat.starttime) {
                *ret = existing;
                return 0;
        }
        /* The recorded process is gone and its PID reused: finish it before protecting the new one. */
        (void) finish_protection(e, existing, false, "exited", NULL, NULL);
        return 1;
}

int engine_protect(Engine *e, const ProtectRequest *req, Protection **ret, OpError *err) {
        _cleanup_(protection_freep) Protection *p = NULL;
        _cleanup_close_ int pidfd = -EBADF;
        ProcInfo info;
        Protection *existing;
        int r;

        r = identify(e, req, &pidfd, &info, err);
        if (r < 0)
                return r;
        r = check_target(e, req, &info, err);
        if (r < 0)
                goto out;
        existing = registry_get(&e->registry, info.pid);
        if (existing && protect_existing(e, existing, &info, ret) == 0) {
                r = 0;
                goto out;
        }
        r = check_not_inside_slice(e, &info, err);
        if (r < 0)
                goto out;
        if (e->registry.n >= e->config->max_protected) {
                r = op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                 "%zu processes are protected already (MaxProtected=%u).", e->registry.n,
                                 e->config->max_protected);
                goto out;
        }
        r = build_protection(e, req, &info, &p, err);
        if (r < 0)
                goto out;
        r = check_scope_unused(e, p, err);
        if (r < 0)
                goto out;

        r = registry_add(&e->registry, p);
        if (r < 0)
                goto out;
        r = persist(e);
        if (r < 0) {
                registry_remove(&e->registry, p->pid);
                r = op_error_set(err, r, NULL, "Cannot save the state to %s: %s; nothing was changed.",
                                 e->config->state_directory, strerror(-r));
                goto out;
        }
        Protection *added = TAKE_PTR(p);
        fault_point("protect:persisted");

        r = apply_protection(e, added, err);
        if (r >= 0 && (!proc_pidfd_alive(pidfd) || !same_process(e, added->pid, added->starttime)))
                /* It exited while being protected, and its PID may already name another process. */
                r = op_error_set(err, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d exited while being protected.",
                                 (int) added->pid);
        if (r < 0) {
                roll_back(e, added);
                goto out;
        }
        added->pidfd = TAKE_FD(pidfd);
        notify(e, added, true, "protected");
        *ret = added;
        r = 1;
out:
        proc_info_done(&info);
        return r;
}

static int check_owner(const Protection *p, uid_t owner, OpError *err) {
        if (owner != UID_ANY && p->uid != owner)
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "PID %d belongs to uid %u: you may only unprotect your own processes.",
                                    (int) p->pid, (unsigned) p->uid);
        return 0;
}

int engine_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, UnprotectReport *ret, OpError *err) {
        Protection *p = registry_get(&e->registry, pid);
        int r;

        if (!p)
                return op_error_set(err, -ENOENT, OOMPROTECT_ERROR_NOT_PROTECTED, "PID %d is not protected.",
                                    (int) pid);
        r = check_owner(p, owner, err);
        if (r < 0)
                return r;
        return finish_protection(e, p, true, reason, ret, err);
}

/* Unprotects every record for which match() says yes; returns how many. */
static int unprotect_matching(Engine *e, bool (*match)(const Protection *p, const void *arg), const void *arg,
                              uid_t owner, const char *reason) {
        _cleanup_free_ pid_t *pids = calloc(e->registry.n ? e->registry.n : 1, sizeof(pid_t));
        size_t n = 0;
        int count = 0;

        if (!pids)
                return -ENOMEM;
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                if ((owner == UID_ANY || p->uid == owner) && match(p, arg))
                        pids[n++] = p->pid;
        }
        for (size_t i = 0; i < n; i++)
                if (engine_unprotect(e, pids[i], owner, reason, NULL, NULL) >= 0)
                        count++;
        return count;
}

static bool match_all(const Protection *p, const void *arg) {
        return true;
}

static bool match_tag(const Protection *p, const void *arg) {
        return p->tag && streq(p->tag, (const char *) arg);
}

int engine_unprotect_all(Engine *e, uid_t owner, const char *reason) {
        return unprotect_matching(e, match_all, NULL, owner, reason);
}

int engine_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason) {
        return unprotect_matching(e, match_tag, tag, owner, reason);
}

int engine_process_exited(Engine *e, pid_t pid) {
        Protection *p = registry_get(&e->registry, pid);

        if (!p)
                return -ENOENT;
        return finish_protection(e, p, false, "exited", NULL, NULL);
}

int engine_check_oom_kills(Engine *e, uint64_t *ret_new) {
        uint64_t count;
        int r;

        r = e->backend.vtable->read_oom_kills(&e->backend, &count);
        if (r < 0)
                return r;
        *ret_new = count > e->oom_kills ? count - e->oom_kills : 0;
        e->oom_kills = count;
        return 0;
}

int engine_stop(Engine *e) {
        if (!e->config->restore_on_stop)
                return 0;
        return engine_unprotect_all(e, UID_ANY, "daemon stopping");
}

/* A record from state.json whose process still runs: re-open it and re-apply, idempotently. */
static int revive(Engine *e, Protection *p) {
        OpError err = {};
        int r;

        p->pidfd = proc_pidfd_open(p->pid);
        if (p->pidfd < 0 || !same_process(e, p->pid, p->starttime))
                return -ESRCH;
        r = apply_protection(e, p, &err);
        if (r < 0)
                return log_warning_errno(r, "Failed to re-apply the protection of PID %d (%s): %s", (int) p->pid,
                                         p->comm, err.message);
        return 0;
}

/* Scopes in the slice that no record names: remove the empty ones a crash may have left. */
static void remove_stray_scopes(Engine *e) {
        _cleanup_close_ int fd = -EBADF;
        struct dirent *de;
        DIR *d;

        if (!e->backend.has_cgroup)
                return;
        fd = openat(e->backend.rootfd, e->backend.slice_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d = fdopendir(fd)))
                return;
        TAKE_FD(fd);
        while ((de = readdir(d))) {
                char rel[4096];
                pid_t pid;
                int end = 0;
                if (sscanf(de->d_name, OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX "%n", &pid, &end) != 1 ||
                    end == 0 || de->d_name[end] != '\0' || registry_get(&e->registry, pid))
                        continue;
                snprintf(rel, sizeof(rel), "%s/%s", e->backend.slice_rel, de->d_name);
                if (cgroup_remove(e->backend.rootfd, rel) < 0)
                        log_warning("Scope %s has processes but no record; leaving it alone.", rel);
        }
        closedir(d);
}

static void reconcile_one(Engine *e, Protection *p, unsigned *alive) {
        int r;

        r = registry_add(&e->registry, p);
        if (r < 0) {
                protection_free(p);
                return;
        }
        if (same_process(e, p->pid, p->starttime) && revive(e, p) >= 0) {
                (*alive)++;
                notify(e, p, true, "restored at start");
                return;
        }
        log_info("PID %d (%s) exited while oomprotectd was not running; restoring what it left.", (int) p->pid,
                 p->comm);
        r = restore_protection(e, p, same_process(e, p->pid, p->starttime), NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to restore what PID %d left in %s: %m", (int) p->pid,
                                  strna(p->scope_cgroup));
        protection_free(registry_remove(&e->registry, p->pid));
}

int engine_start(Engine *e) {
        _cleanup_free_ Protection **records = NULL;
        _cleanup_free_ char *moved_to = NULL;
        const char *reason = NULL;
        size_t n = 0, skipped = 0;
        unsigned alive = 0;
        int r;

        r = state_load(e->statefd, &records, &n, &skipped, &moved_to, &reason);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/" OOMPROTECT_STATE_FILE ": %m",
                                       e->config->state_directory);
        if (moved_to)
                log_error("%s/" OOMPROTECT_STATE_FILE " is corrupt (%s); moved it aside to %s and starting empty.",
                          e->config->state_directory, strna(reason), moved_to);
        if (skipped > 0)
                log_warning("Skipped %zu unreadable record(s) in %s/" OOMPROTECT_STATE_FILE ".", skipped,
                            e->config->state_directory);

        /* Budget first: the slice covers every scope before any is re-applied, and is not lowered meanwhile. */
        for (size_t i = 0; i < n; i++)
                e->slice_min_floor += records[i]->memory_min;
        (void) e->backend.vtable->set_slice_memory_min(&e->backend, e->slice_min_floor);
        for (size_t i = 0; i < n; i++)
                reconcile_one(e, records[i], &alive);
        e->slice_min_floor = 0;

        remove_stray_scopes(e);
        update_slice_min(e);
        r = persist(e);
        if (r < 0)
                return log_error_errno(r, "Failed to save the state: %m");
        (void) engine_check_oom_kills(e, &(uint64_t) { 0 });
        return (int) alive;
}
