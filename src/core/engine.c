/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "engine-internal.h"
#include "guard.h"
#include "engine.h"
#include "escape.h"
#include "fault.h"
#include "fileio.h"
#include "list.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"
#include "quota.h"
#include "state.h"

/*
 * The protection engine: protect, unprotect, exact restore, reconcile.
 *
 * Order of every protect: identify, record (state "applying"), persist,
 * then touch (the slice's or the held cgroups' memory protection, the
 * scope, oom_score_adj), then "active". A failure after persisting rolls
 * back what was done and forgets the record. Order of every unprotect:
 * state "restoring", persist, restore, then forget and persist. A SIGKILL at
 * any instant thus leaves a record for everything that may have been
 * touched, and the next start finishes what the record's state says:
 * applying and active records are applied again, restoring ones restored.
 *
 * Backend operations complete through callbacks (see backend.h), so every
 * engine operation is a chain of steps held in an EngineOp; with cgroupfs
 * the whole chain runs before engine_protect() returns, with systemd it
 * runs as PID 1's jobs end.
 */

/* Descriptors kept for everything but pidfds: the bus, ctl.sock's 64 clients, files, inotify. */
#define ENGINE_FD_RESERVE 128U

typedef struct Batch Batch;

typedef struct EngineOp {
        Engine *engine;
        Protection *p; /* in the registry while the op runs */
        EngineDone done;
        void *userdata;
        EngineResult result;
        char *reason;
        int pidfd;      /* protect: the pidfd identify() opened, handed to p when active */
        bool newly;     /* protect: a new record (else: applied again, or settings changed) */
        bool update;    /* protect: the settings of an active record changed; on failure they go back */
        Protection old; /* ...and these were its settings */
        bool alive;     /* restore: p->pid still is the recorded process */
        bool rollback;  /* restore: undoing a failed protect, result.err is the protect's */
        bool quiet;     /* restore: no "changed" callback (nothing was announced) */
        Batch *batch;
        Joiner join;    /* hold writes under way */
        void (*after_join)(struct EngineOp *op);
        struct EngineOp *prev, *next; /* in engine->ops */
} EngineOp;

/* Many restores (or revivals) under way together: one persist and one completion when all are done. */
struct Batch {
        Engine *engine;
        EngineDone done;
        void *userdata;
        unsigned pending;
        unsigned count; /* succeeded */
        bool start;     /* engine_start's: count is the live protections */
        /* An unprotect-many starts its restores a turn of the loop at a time (batch_turn()): these are to come. */
        pid_t *todo;
        uint64_t *todo_starttimes;
        size_t n_todo, next_todo;
        char *reason;
        sd_event_source *turn;
        struct Batch *prev, *next; /* in engine->starting while some are to come */
};

/*
 * Restores an unprotect-many starts per turn of the loop: the bus (a Ping,
 * another client's call) is served between turns, not after 10,000 of them.
 */
#define BATCH_STARTS_PER_TURN 16U

typedef bool (*MatchFunc)(const Protection *p, const void *arg);

/* An unprotect-many waiting for the operations under way (a protect being applied must not be left out). */
typedef struct WaitingBatch WaitingBatch;
struct WaitingBatch {
        WaitingBatch *prev, *next;
        MatchFunc match;
        char *tag;
        uid_t owner;
        char *reason;
        EngineDone done;
        void *userdata;
};

static void batch_todo_free(Batch *b) {
        b->turn = sd_event_source_disable_unref(b->turn);
        free(b->todo);
        free(b->todo_starttimes);
        free(b->reason);
        b->todo = NULL;
        b->todo_starttimes = NULL;
        b->reason = NULL;
        b->n_todo = b->next_todo = 0;
}

static WaitingBatch *waiting_batch_free(WaitingBatch *w) {
        free(w->tag);
        free(w->reason);
        free(w);
        return NULL;
}

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

static int restore_begin(Engine *e, Protection *p, bool alive, bool quiet, const char *reason, Batch *batch,
                         EngineDone done, void *userdata, OpError *err);

/* Someone else stopped our scope: the process is elsewhere now. Its adj goes back, the record goes; said in the log. */
static void on_scope_gone(Backend *b, pid_t pid, void *userdata) {
        Engine *e = userdata;
        Protection *p = registry_get(&e->registry, pid);

        if (!p || p->pending || p->kind != PROTECTION_MOVED || p->state != PROTECTION_ACTIVE)
                return;
        log_warning("The scope of protected PID %d (%s) was removed outside oomprotectd; dropping its protection.",
                    (int) pid, p->comm);
        (void) restore_begin(e, p, true, false, "scope removed by someone else", NULL, NULL, NULL, NULL);
}

static void on_unit_gone(Backend *b, const char *unit, void *userdata) {
        engine_unit_gone(userdata, unit);
}

int engine_new(const Config *c, sd_event *event, const EngineCallbacks *cb, void *userdata, Engine **ret,
               OpError *err) {
        _cleanup_(engine_freep) Engine *e = NULL;
        struct stat st = {};
        struct rlimit rl;
        int r;

        e = calloc(1, sizeof(Engine));
        if (!e)
                return -ENOMEM;
        e->config = c;
        e->procfd = e->statefd = -EBADF;
        state_file_init(&e->state, -EBADF);
        e->backend.rootfd = -EBADF;
        e->self = getpid();
        if (cb)
                e->callbacks = *cb;
        e->userdata = userdata;
        e->budget = config_budget_bytes(c, physical_memory());
        e->budget_per_user = config_budget_per_user_bytes(c, physical_memory());
        e->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : UINT64_MAX;
        if (event)
                e->event = sd_event_ref(event);
        else {
                r = sd_event_default(&e->event);
                if (r < 0)
                        return op_error_set(err, r, NULL, "Cannot allocate an event loop: %s", strerror(-r));
        }

        e->procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->procfd < 0)
                return op_error_set(err, negative_errno(), NULL, "Cannot open /proc: %m");
        r = mkdir_p(c->state_directory, 0755);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot create StateDirectory=%s: %s", c->state_directory,
                                    strerror(-r));
        r = open_private_directory(c->state_directory, &e->statefd, &st);
        if (r == -ELOOP)
                return op_error_set(err, r, NULL, "StateDirectory=%s is or goes through a symbolic link; "
                                    "refusing it.", c->state_directory);
        if (r == -EPERM)
                return op_error_set(err, r, NULL, "StateDirectory=%s belongs to uid %u with mode %04o: it must "
                                    "be root's and not writable by group or others.", c->state_directory,
                                    (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot open StateDirectory=%s: %s", c->state_directory,
                                    strerror(-r));
        e->state.dirfd = e->statefd;
        r = remove_stale_temp_files_at(e->statefd, OOMPROTECT_STATE_FILE);
        if (r > 0)
                log_info("Removed %d temporary file(s) that killed daemons left in %s.", r, c->state_directory);
        r = backend_open(&e->backend, c, e->event, e->procfd, &e->backend_note, err);
        if (r < 0)
                return r;
        e->backend.scope_gone = on_scope_gone;
        e->backend.scope_gone_userdata = e;
        e->backend.unit_gone = on_unit_gone;
        *ret = TAKE_PTR(e);
        return 0;
}

static void on_started(Engine *e, const EngineResult *res, void *userdata);

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        /* Pending backend work is cancelled: no completion runs after this. */
        backend_close(&e->backend);
        while (e->ops) {
                EngineOp *op = e->ops;
                LIST_REMOVE(e->ops, op);
                if (op->batch && --op->batch->pending == 0) {
                        if (op->batch->done == on_started)
                                free(op->batch->userdata); /* engine_start's caller record */
                        free(op->batch);
                }
                /* A restore waiting for its hold writes took p out of the registry already. */
                if (op->p && registry_get(&e->registry, op->p->pid) != op->p)
                        protection_free(op->p);
                safe_close(op->pidfd);
                free(op->reason);
                unprotect_report_done(&op->result.report);
                free(op);
        }
        while (e->writes) {
                HoldWrite *w = e->writes;
                LIST_REMOVE(e->writes, w);
                free(w->cgroup);
                free(w);
        }
        while (e->starting) {
                Batch *b = e->starting;
                LIST_REMOVE(e->starting, b);
                batch_todo_free(b);
                if (--b->pending == 0) /* its restores under way were freed above */
                        free(b);
        }
        while (e->waiting) {
                WaitingBatch *w = e->waiting;
                LIST_REMOVE(e->waiting, w);
                waiting_batch_free(w);
        }
        engine_units_free(e);
        registry_done(&e->registry);
        hold_table_done(&e->holds);
        free(e->backend_note);
        safe_close(e->procfd);
        state_file_done(&e->state);
        safe_close(e->statefd);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}

Protection *engine_get(Engine *e, pid_t pid) {
        return registry_get(&e->registry, pid);
}

int engine_persist(Engine *e) {
        return state_file_rewrite(&e->state, &e->registry, &e->holds, &e->units);
}

int engine_persist_pid(Engine *e, pid_t pid) {
        int r;

        r = state_file_stage(&e->state, pid);
        if (r < 0)
                return r;
        return state_file_commit(&e->state, &e->registry, &e->holds, &e->units);
}

int engine_persist_unit(Engine *e, const char *unit) {
        int r;

        r = state_file_stage_unit(&e->state, unit);
        if (r < 0)
                return r;
        return state_file_commit(&e->state, &e->registry, &e->holds, &e->units);
}

void engine_persist_later(Engine *e, pid_t pid) {
        (void) state_file_stage(&e->state, pid); /* on failure the next commit writes everything */
}

int engine_persist_changes(Engine *e) {
        return state_file_commit(&e->state, &e->registry, &e->holds, &e->units);
}

static void notify(Engine *e, Protection *p, bool protected, const char *reason) {
        if (e->callbacks.changed)
                e->callbacks.changed(e, p, protected, reason, e->userdata);
}

/* Whether pid still is the process that was recorded with starttime. */
static bool same_process(Engine *e, pid_t pid, uint64_t starttime) {
        return proc_same_process(e->procfd, pid, starttime);
}

/*
 * Gives the process at pid the oom_score_adj the plan says, judged and
 * written through one handle, so that both concern the same process even if
 * the PID is reused meanwhile. starttime, when known (the protected process
 * and its members, or what a restore saw in the scope), must be its start
 * time: else it is a newcomer at that PID and left as it is.
 */
static void restore_adj(Engine *e, const Protection *p, pid_t pid, uint64_t starttime) {
        _cleanup_close_ int h = -EBADF;
        uint64_t st;
        int current, adj;

        if (pid != p->pid && registry_get(&e->registry, pid))
                return; /* protected in its own right */
        h = proc_handle_open(e->procfd, pid);
        if (h < 0 || proc_handle_starttime(h, &st) < 0 || (starttime != 0 && st != starttime))
                return;
        if (proc_handle_read_adj(h, &current) < 0)
                return;
        if (protection_restore_adj(p, pid, st, current, &adj))
                (void) proc_handle_write_adj(h, adj);
}

/* oom_score_adj back for the process, its members, and every pid given (those found in its scope). */
static void restore_all_adj(Engine *e, const Protection *p, bool alive, const pid_t *pids, const uint64_t *starttimes,
                            size_t n) {
        if (alive)
                restore_adj(e, p, p->pid, p->starttime);
        for (size_t i = 0; i < p->n_members; i++)
                restore_adj(e, p, p->members[i].pid, p->members[i].starttime);
        for (size_t i = 0; i < n; i++)
                if (pids[i] != p->pid || !alive)
                        restore_adj(e, p, pids[i], starttimes ? starttimes[i] : 0);
}

/* ---- operations ---- */

static EngineOp *op_new(Engine *e, Protection *p, EngineDone done, void *userdata, const char *reason) {
        EngineOp *op = calloc(1, sizeof(EngineOp));

        if (!op)
                return NULL;
        *op = (EngineOp) { .engine = e, .p = p, .done = done, .userdata = userdata, .pidfd = -EBADF };
        op->result.pid = p->pid;
        if (reason && !(op->reason = strdup(reason))) {
                free(op);
                return NULL;
        }
        p->pending = op;
        e->n_pending++;
        LIST_PREPEND(e->ops, op);
        return op;
}

static void batch_step_done(Batch *b, bool ok);
static void run_waiting(Engine *e);

/* The end of an operation: its completion, then it is gone. p, if still given, is no longer pending. */
static void op_finish(EngineOp *op) {
        Engine *e = op->engine;
        Batch *batch = op->batch;
        bool ok = op->result.r >= 0;

        if (op->p)
                op->p->pending = NULL;
        e->n_pending--;
        LIST_REMOVE(e->ops, op);
        if (op->done)
                op->done(e, &op->result, op->userdata);
        safe_close(op->pidfd);
        free(op->reason);
        free(op->old.tag);
        unprotect_report_done(&op->result.report);
        free(op);
        if (batch)
                batch_step_done(batch, ok);
        run_waiting(e);
}

static void on_op_joined(Joiner *j) {
        EngineOp *op = (EngineOp *) ((char *) j - offsetof(EngineOp, join));

        op->after_join(op);
}

static void op_settle_holds(EngineOp *op, void (*after)(EngineOp *op)) {
        op->after_join = after;
        op->join.after = on_op_joined;
        engine_holds_settle(op->engine, &op->join);
}

/* ---- protect ---- */

/*
 * pidfd_open(2), or -EBADF where the kernel has none (ENOSYS: Linux before
 * 5.3, or valgrind before 3.20, which does not know the call): the process is
 * then known by (pid, start time) alone, checked after every read and before
 * every write, and its exit found by the manager's look every second.
 */
static int open_pidfd(Engine *e, pid_t pid) {
        int fd = proc_pidfd_open(pid);

        if (fd != -ENOSYS)
                return fd;
        if (!e->no_pidfd)
                log_warning("pidfd_open() is not available (Linux before 5.3, or a tool such as valgrind that does "
                            "not know it): processes are identified by PID and start time alone, and their exits "
                            "found by a look every second.");
        e->no_pidfd = true;
        return -EBADF;
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
                pidfd = open_pidfd(e, pid);
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
                if (pidfd < 0 && !(pidfd == -EBADF && e->no_pidfd))
                        return op_error_set(err, pidfd, NULL, "Cannot open PID %d: %s", (int) pid,
                                            strerror(-pidfd));
        }

        r = proc_read_info(e->procfd, pid, &info);
        /* After the last read: the same process still (without a pidfd, still the same start time)? */
        if (r >= 0 && (pidfd >= 0 ? !proc_pidfd_alive(pidfd) : !same_process(e, pid, info.stat.starttime))) {
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

/*
 * Moved or in place (DESIGN.md section 1): a process whose cgroup, or an
 * ancestor below the top level, enforces a limit stays where it is, and so
 * does a process of any systemd unit but a scope (services are where limits
 * and sandboxing live); else it gets a scope of its own. An explicit
 * InPlace=false from root moves it all the same; from anyone else it is
 * refused where a move would take the process out of a limit.
 */
static int choose_kind(Engine *e, const ProtectRequest *req, const char *cgroup, Protection *p, OpError *err) {
        const ProtectOptions *o = &req->options;
        const char *limit = NULL, *unit_kind = NULL;
        char **paths = NULL, **units = NULL;
        size_t n = 0;
        bool contained = false;

        p->kind = PROTECTION_MOVED;
        if (!e->backend.has_cgroup)
                return 0; /* adj-only: nothing moves either way */
        if (hold_chain(cgroup, &paths, &units, &n) < 0) /* the root cgroup: no unit, no limit */
                return o->has_in_place && o->in_place
                               ? op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                              "PID %d is in the root cgroup, which cannot be protected in place.",
                                              (int) p->pid)
                               : 0;
        for (size_t i = 0; i < n; i++) {
                if (units[i]) {
                        free(p->original_unit);
                        p->original_unit = strdup(units[i]);
                }
                if (i > 0 && !limit && cgroup_find_limit(e->backend.rootfd, cgroup_path_to_rel(paths[i]),
                                                         e->backend.pids_floor, &limit) <= 0)
                        limit = NULL;
        }
        if (e->backend.vtable == &backend_systemd_vtable) {
                const char *last = units[n - 1];
                if (!last)
                        unit_kind = "a delegated subtree";
                else if (!endswith(last, ".scope") && !endswith(last, ".slice"))
                        unit_kind = "a systemd service";
        }
        hold_chain_free(paths, units, n);
        /*
         * Under systemd a unit may restrict a process with cgroup BPF programs
         * (IPAddressDeny=, DevicePolicy=, SocketBind*=) that no cgroup file
         * shows: for a caller who is not root nothing is moved at all.
         */
        if (!limit && !unit_kind && req->owner != UID_ANY && e->backend.vtable == &backend_systemd_vtable)
                unit_kind = "its unit (which may filter its network or devices)";
        contained = limit || unit_kind;

        if (o->has_in_place && o->in_place)
                p->kind = PROTECTION_IN_PLACE;
        else if (o->has_in_place && contained && req->owner != UID_ANY)
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "Moving PID %d would take it out of %s (%s): only root may ask for that; "
                                    "leave InPlace unset to protect it where it is.",
                                    (int) p->pid, limit ? "a limit of its cgroup" : unit_kind,
                                    limit ? limit : cgroup);
        else if (!o->has_in_place && contained)
                p->kind = PROTECTION_IN_PLACE;
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
        /* Its real uid alone is not enough: a setuid program the caller started has the caller's real uid. */
        if (req->owner != UID_ANY)
                return proc_check_owned_by(info, req->owner, err);
        return 0;
}

/* Whether a cgroup path ("/a/b") is our slice or below it. */
bool engine_inside_slice(const Engine *e, const char *cgroup) {
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
        if (engine_inside_slice(e, info->cgroup))
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

        if (p->applied_adj < OOMPROTECT_OOM_SCORE_ADJ_MIN || p->applied_adj > OOMPROTECT_OOM_SCORE_ADJ_MAX)
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "OOMScoreAdjust %d is out of range (-1000 to 1000).", p->applied_adj);
        if (o->drop_in)
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "DropIn applies to a unit (ProtectUnit), not to a process.");
        if (ram > 0 && (p->memory_min > ram || p->memory_low > ram))
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "A memory protection of %" PRIu64 " bytes is more than this machine's RAM "
                                    "(%" PRIu64 " bytes).",
                                    MAX(p->memory_min, p->memory_low), ram);
        if (o->tag) {
                if (strlen(o->tag) > 255 || !text_is_safe(o->tag))
                        return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                            "A tag must be at most 255 bytes of UTF-8 without control characters.");
                p->tag = strdup(o->tag);
                if (!p->tag)
                        return -ENOMEM;
        }
        if (!budget_allows(engine_memory_min_in_use(e), p->memory_min, e->budget)) {
                char want[FORMAT_BYTES_MAX], used[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX];
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "memory.min %s on top of %s in use exceeds MemoryMinBudget=%s.",
                                    format_bytes(want, sizeof(want), p->memory_min),
                                    format_bytes(used, sizeof(used), engine_memory_min_in_use(e)),
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
                    engine_inside_slice(e, info.cgroup) || (owner != UID_ANY && proc_check_owned_by(&info, owner, NULL) < 0)) {
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
        p->state = PROTECTION_APPLYING;
        p->source = strdup(req->source ? req->source : "unknown");
        if (!p->source)
                return -ENOMEM;
        r = resolve_options(e, &req->options, p, err);
        if (r < 0)
                return r;
        if (e->backend.has_cgroup) {
                r = choose_kind(e, req, info->cgroup, p, err);
                if (r < 0)
                        return r;
                p->original_cgroup = TAKE_PTR(info->cgroup);
                if (p->kind == PROTECTION_MOVED) {
                        r = backend_scope_path(&e->backend, p->pid, &p->scope_cgroup);
                        if (r < 0)
                                return r;
                }
        }
        if (p->descendants) {
                r = collect_members(e, p, req->owner);
                if (r < 0)
                        return op_error_set(err, r, NULL, "Cannot list the children of PID %d: %s",
                                            (int) p->pid, strerror(-r));
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* The applied adj to p's process (identified by pidfd, else its start time) and to its members. */
static int apply_adj(Engine *e, const Protection *p, int pidfd, OpError *err) {
        int r;

        r = proc_write_oom_score_adj_of(e->procfd, p->pid, pidfd, p->starttime, p->applied_adj);
        if (r == -EACCES || r == -EPERM)
                return op_error_set(err, r, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "Cannot set oom_score_adj of PID %d to %d: lowering it needs CAP_SYS_RESOURCE.",
                                    (int) p->pid, p->applied_adj);
        if (r == -ESRCH)
                return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d exited while being protected.",
                                    (int) p->pid);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot set oom_score_adj of PID %d: %s", (int) p->pid,
                                    strerror(-r));
        for (size_t i = 0; i < p->n_members; i++)
                (void) proc_write_oom_score_adj_of(e->procfd, p->members[i].pid, -EBADF, p->members[i].starttime,
                                                   p->applied_adj);
        return 0;
}

static void restore_start(EngineOp *op);

/* Applying failed after the record was persisted: undo, forget, and report the first error. */
static void slice_update(Engine *e, BackendDone done, void *userdata);
static void on_slice_update_logged(int r, const OpError *err, void *userdata);
static void on_scope_reapplied(int r, const OpError *err, void *userdata);

static void protect_failed(EngineOp *op, int r, const OpError *err) {
        Protection *p = op->p;

        if (err && err->code < 0)
                op->result.err = *err;
        else
                op_error_set(&op->result.err, r < 0 ? r : -EIO, NULL, "Cannot protect PID %d: %s", (int) p->pid,
                             strerror(r < 0 ? -r : EIO));
        op->result.r = op->result.err.code;
        if (op->update) {
                /* The settings of an active protection: put them back and leave it as it was. */
                Engine *e = op->engine;
                registry_account(&e->registry, p, false);
                p->memory_min = op->old.memory_min;
                p->memory_low = op->old.memory_low;
                p->applied_adj = op->old.applied_adj;
                p->oom_group = op->old.oom_group;
                registry_account(&e->registry, p, true);
                (void) apply_adj(e, p, p->pidfd, NULL);
                (void) engine_persist_pid(e, p->pid);
                /* What was written for the new settings goes back to the old ones. */
                if (p->kind == PROTECTION_IN_PLACE)
                        engine_holds_settle_detached(e);
                else {
                        slice_update(e, on_slice_update_logged, NULL);
                        e->backend.vtable->apply(&e->backend, p, on_scope_reapplied, (void *) (intptr_t) p->pid);
                }
                op_finish(op);
                return;
        }
        if (!op->newly)
                log_warning("Failed to apply the protection of PID %d (%s) again, restoring it: %s", (int) p->pid,
                            p->comm, op->result.err.message);
        op->rollback = op->newly;
        op->quiet = op->newly || !p->watch; /* never announced */
        op->alive = true;
        restore_start(op);
}

static void protect_activate(EngineOp *op) {
        Engine *e = op->engine;
        Protection *p = op->p;
        OpError err = {};
        int r;

        r = apply_adj(e, p, op->pidfd >= 0 ? op->pidfd : p->pidfd, &err);
        if (r < 0)
                return protect_failed(op, r, &err);
        fault_point("protect:adj-applied");
        if ((op->pidfd >= 0 && !proc_pidfd_alive(op->pidfd)) || (p->pidfd >= 0 && !proc_pidfd_alive(p->pidfd)) ||
            !same_process(e, p->pid, p->starttime)) {
                /* It exited while being protected, and its PID may already name another process. */
                op_error_set(&err, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d exited while being protected.",
                             (int) p->pid);
                return protect_failed(op, -ESRCH, &err);
        }
        p->state = PROTECTION_ACTIVE;
        if (p->pidfd < 0)
                p->pidfd = TAKE_FD(op->pidfd);
        if (op->newly || !p->watch)
                notify(e, p, true, op->reason ? op->reason : "protected");
        op->result.r = op->newly ? 1 : 0;
        op_finish(op);
}

static void on_scope_applied(int r, const OpError *err, void *userdata) {
        EngineOp *op = userdata;

        if (r < 0)
                return protect_failed(op, r, err);
        fault_point("protect:scope-applied");
        protect_activate(op);
}

static void protect_after_memory(EngineOp *op) {
        Engine *e = op->engine;

        if (op->join.error < 0)
                return protect_failed(op, op->join.error, &op->join.err);
        fault_point("protect:slice-raised");
        if (op->p->kind == PROTECTION_MOVED && e->backend.has_cgroup)
                e->backend.vtable->apply(&e->backend, op->p, on_scope_applied, op);
        else
                on_scope_applied(0, NULL, op);
}

static void on_slice_written(int r, const OpError *err, void *userdata) {
        EngineOp *op = userdata;

        op->join.error = r;
        if (r < 0)
                op->join.err = *err;
        protect_after_memory(op);
}

/* The slice's own protection, kept >= the sum of its scopes' (the kernel caps a child's by its parent's). */
static void slice_update(Engine *e, BackendDone done, void *userdata) {
        _cleanup_free_ char *path = NULL;

        if (!e->backend.has_memory || asprintf(&path, "/%s", e->backend.slice_rel) < 0) {
                if (done)
                        done(0, NULL, userdata);
                return;
        }
        uint64_t umin, ulow;
        engine_units_slice_sums(e, &umin, &ulow);
        e->backend.vtable->set_memory_protection(&e->backend, path, NULL,
                                                 &(CgroupProtection) { e->registry.slice_min_sum + umin,
                                                                       e->registry.slice_low_sum + ulow, -1,
                                                                       MARK_LEAVE, NULL },
                                                 done, userdata);
}

void engine_slice_update_detached(Engine *e) {
        slice_update(e, on_slice_update_logged, NULL);
}

static void on_slice_update_logged(int r, const OpError *err, void *userdata) {
        if (r < 0)
                log_warning("Failed to update the memory protection of the slice, ignoring: %s", err->message);
}

/* Members that exited or whose PID now names another process: not moved, not given an adj, not sent to systemd. */
static void prune_members(Engine *e, Protection *p) {
        size_t k = 0;

        for (size_t i = 0; i < p->n_members; i++) {
                if (same_process(e, p->members[i].pid, p->members[i].starttime))
                        p->members[k++] = p->members[i];
                else
                        free(p->members[i].original_cgroup);
        }
        p->n_members = k;
}

/* Touches the system for a persisted record: memory protection, scope, oom_score_adj; idempotent. */
static void protect_apply(EngineOp *op) {
        Engine *e = op->engine;

        prune_members(e, op->p);
        if (op->p->pidfd < 0 && op->pidfd >= 0)
                op->p->pidfd = TAKE_FD(op->pidfd); /* systemd may take it (PIDFDs=) instead of a racy PID */

        if (op->p->kind == PROTECTION_IN_PLACE)
                op_settle_holds(op, protect_after_memory);
        else
                slice_update(e, on_slice_written, op);
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

/*
 * A caller who is not root (owner) may add want_min of memory.min, and a
 * new protection when adding: its uid's share and all non-root uids' share,
 * counted over the protected processes' uids.
 */
static int check_quota(Engine *e, uid_t owner, uint64_t want_min, bool adding, OpError *err) {
        QuotaLimits l = { .max_total = e->config->max_protected, .max_per_user = e->config->max_protected_per_user,
                          .budget = e->budget, .budget_per_user = e->budget_per_user };
        QuotaUsage u = {};

        if (owner == UID_ANY)
                return 0;
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                if (p->uid == owner) {
                        u.user_count++;
                        u.user_min += p->memory_min;
                }
                if (p->uid != 0) {
                        u.nonroot_count++;
                        u.nonroot_min += p->memory_min;
                }
        }
        return quota_check(&l, &u, (unsigned) owner, want_min, adding, err);
}

/* ProtectWithOptions on a protected process: its new settings, applied again. */
static int protect_update(Engine *e, Protection *p, const ProtectRequest *req, EngineDone done, void *userdata,
                          OpError *err) {
        const ProtectOptions *o = &req->options;
        Protection want = *p;
        EngineOp *op;
        int r;

        if (!o->has_memory_min && !o->has_memory_low && !o->has_adj && !o->has_oom_group)
                return 0; /* nothing asked: protected already */
        want.memory_min = o->has_memory_min ? o->memory_min : p->memory_min;
        want.memory_low = o->has_memory_low ? o->memory_low : p->memory_low;
        want.applied_adj = o->has_adj ? o->adj : p->applied_adj;
        want.oom_group = o->has_oom_group ? o->oom_group : p->oom_group;
        if (want.memory_min == p->memory_min && want.memory_low == p->memory_low &&
            want.applied_adj == p->applied_adj && want.oom_group == p->oom_group)
                return 0;
        if (want.memory_min > p->memory_min &&
            !budget_allows(engine_memory_min_in_use(e), want.memory_min - p->memory_min, e->budget))
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "Raising memory.min of PID %d exceeds MemoryMinBudget=.", (int) p->pid);
        if (want.memory_min > p->memory_min) {
                r = check_quota(e, req->owner, want.memory_min - p->memory_min, false, err);
                if (r < 0)
                        return r;
        }
        r = guard_check_protect_update(e, p, want.applied_adj, err); /* the last killable process, as a Protect */
        if (r < 0)
                return r;
        op = op_new(e, p, done, userdata, "updated");
        if (!op)
                return -ENOMEM;
        op->update = true;
        op->old = (Protection) { .memory_min = p->memory_min, .memory_low = p->memory_low,
                                 .applied_adj = p->applied_adj, .oom_group = p->oom_group };
        registry_account(&e->registry, p, false);
        p->memory_min = want.memory_min;
        p->memory_low = want.memory_low;
        p->applied_adj = want.applied_adj;
        p->oom_group = want.oom_group;
        registry_account(&e->registry, p, true);
        r = engine_persist_pid(e, p->pid);
        if (r < 0) {
                OpError perr = {};
                op_error_set(&perr, r, NULL, "Cannot save the state to %s: %s; nothing was changed.",
                             e->config->state_directory, strerror(-r));
                protect_failed(op, r, &perr);
                return 1;
        }
        protect_apply(op);
        return 1;
}

static int protect_existing(Engine *e, Protection *existing, const ProcInfo *info, const ProtectRequest *req,
                            EngineDone done, void *userdata, OpError *err) {
        if (existing->pending)
                return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BUSY,
                                    "Another operation on PID %d is under way; try again when it is done.",
                                    (int) existing->pid);
        if (existing->starttime == info->stat.starttime)
                return protect_update(e, existing, req, done, userdata, err);
        /* The recorded process is gone and its PID reused: finish it before protecting the new one. */
        (void) engine_process_exited(e, info->pid); /* may free existing at once */
        if (registry_get(&e->registry, info->pid))
                return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BUSY,
                                    "The earlier protection of PID %d (a process that exited) is being cleaned "
                                    "up; try again.", (int) info->pid);
        return -ENOENT; /* gone: go on with the new one */
}

/* Everything up to persisting the new record; *ret is in the registry, applying. */
static int protect_prepare(Engine *e, const ProtectRequest *req, ProcInfo *info, Protection **ret, OpError *err) {
        _cleanup_(protection_freep) Protection *p = NULL;
        int r;

        r = check_not_inside_slice(e, info, err);
        if (r < 0)
                return r;
        if (engine_count_all(e) >= e->config->max_protected)
                return op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                    "%zu processes and units are protected already (MaxProtected=%u).",
                                    engine_count_all(e), e->config->max_protected);
        /* Refused before descriptors run out, not with an EMFILE from somewhere in the middle. */
        if (e->registry.n + ENGINE_FD_RESERVE >= e->fd_limit)
                return op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                    "%zu processes are protected, and oomprotectd may open %" PRIu64 " files "
                                    "(one per protection, %u kept for the rest): raise LimitNOFILE=.",
                                    e->registry.n, e->fd_limit, ENGINE_FD_RESERVE);
        r = build_protection(e, req, info, &p, err);
        if (r < 0)
                return r;
        r = check_quota(e, req->owner, p->memory_min, true, err);
        if (r < 0)
                return r;
        r = guard_check_protect(e, p, err); /* MaxProtectedMemory=, and the last killable process (guard.c) */
        if (r < 0)
                return r;
        if (p->kind == PROTECTION_MOVED) {
                r = check_scope_unused(e, p, err);
                if (r < 0)
                        return r;
        }
        r = engine_holds_prepare(e, p, err);
        if (r < 0)
                return r;
        r = registry_add(&e->registry, p);
        if (r < 0)
                return r;
        r = engine_persist_pid(e, p->pid);
        if (r < 0) {
                registry_remove(&e->registry, p->pid);
                return op_error_set(err, r, NULL, "Cannot save the state to %s: %s; nothing was changed.",
                                    e->config->state_directory, strerror(-r));
        }
        fault_point("protect:persisted");
        *ret = TAKE_PTR(p);
        return 0;
}


static void complete_now(Engine *e, EngineDone done, void *userdata, int r, const OpError *err, pid_t pid) {
        EngineResult res = { .r = r, .pid = pid };

        if (err)
                res.err = *err;
        if (done)
                done(e, &res, userdata);
}

int engine_protect(Engine *e, const ProtectRequest *req, EngineDone done, void *userdata) {
        _cleanup_close_ int pidfd = -EBADF;
        OpError err = {};
        Protection *p = NULL, *existing;
        ProcInfo info;
        EngineOp *op;
        int r;

        r = identify(e, req, &pidfd, &info, &err);
        if (r < 0) {
                complete_now(e, done, userdata, r, &err, req->pid);
                return 0;
        }
        r = check_target(e, req, &info, &err);
        if (r >= 0 && (existing = registry_get(&e->registry, info.pid))) {
                r = protect_existing(e, existing, &info, req, done, userdata, &err);
                if (r != -ENOENT) {
                        pid_t pid = info.pid;
                        proc_info_done(&info);
                        if (r < 0)
                                complete_now(e, done, userdata, r, &err, pid);
                        else if (r == 0)
                                complete_now(e, done, userdata, 0, NULL, pid); /* protected already */
                        return 0; /* 1: an update is under way and completes by itself */
                }
                r = 0; /* the stale record is gone: protect the new process */
        }
        if (r >= 0)
                r = protect_prepare(e, req, &info, &p, &err);
        if (r < 0) {
                engine_holds_drop_unused(e);
                complete_now(e, done, userdata, r, &err, info.pid);
                proc_info_done(&info);
                return 0;
        }
        proc_info_done(&info);
        op = op_new(e, p, done, userdata, "protected");
        if (!op) {
                /* Nothing was touched yet: forget it again. */
                pid_t pid = p->pid;
                protection_free(registry_remove(&e->registry, pid));
                engine_holds_drop_unused(e);
                (void) engine_persist_pid(e, pid);
                complete_now(e, done, userdata, -ENOMEM, NULL, req->pid);
                return 0;
        }
        op->newly = true;
        op->pidfd = TAKE_FD(pidfd);
        protect_apply(op);
        return 0;
}

/* ---- restore ---- */

static void restore_forget(EngineOp *op);

static void on_thawed(int r, const OpError *err, void *userdata) {
}

static void on_scope_reapplied(int r, const OpError *err, void *userdata) {
        if (r < 0)
                log_warning("Failed to protect PID %d again after a failed restore: %s", (int) (intptr_t) userdata,
                            err->message);
}

/* A restore failed with the process alive: it and what is left in its scope get the applied adj again. */
static void on_reprotected(int r, const OpError *err, void *userdata) {
        EngineOp *op = userdata;
        Engine *e = op->engine;
        Protection *p = op->p;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (r < 0)
                log_warning("Failed to protect PID %d again after a failed restore: %s", (int) p->pid, err->message);
        (void) apply_adj(e, p, p->pidfd, NULL);
        if (p->kind == PROTECTION_MOVED && e->backend.vtable->list_pids(&e->backend, p, &pids, &n) >= 0)
                for (size_t i = 0; i < n; i++)
                        if (pids[i] != p->pid && !registry_get(&e->registry, pids[i]))
                                (void) proc_write_oom_score_adj(e->procfd, pids[i], p->applied_adj);
        if (!p->watch)
                notify(e, p, true, "protected"); /* a rollback that could not roll back: watched from now on */
        op_finish(op);
}

static void on_scope_restored(int r, const OpError *err, RestoreReport *rr, void *userdata) {
        EngineOp *op = userdata;
        Engine *e = op->engine;
        Protection *p = op->p;

        if (r < 0 && op->alive) {
                /*
                 * Nothing is left half-restored: the process, and whatever is
                 * still in its scope, go back under its protection; the
                 * operation ends when that is done.
                 */
                if (!op->rollback) {
                        op->result.r = r;
                        op_error_set(&op->result.err, r, err->name, "Cannot restore PID %d from %s: %s", (int) p->pid,
                                     strna(p->scope_cgroup), err->message);
                }
                p->state = PROTECTION_ACTIVE;
                (void) engine_persist_pid(e, p->pid);
                e->backend.vtable->freeze(&e->backend, p, false, on_thawed, NULL);
                e->backend.vtable->apply(&e->backend, p, on_reprotected, op);
                return;
        }
        if (r < 0)
                log_warning("PID %d exited, but what it left in %s cannot be moved back, leaving it: %s",
                            (int) p->pid, strna(p->scope_cgroup), err->message);
        else {
                fault_point("unprotect:cgroup-restored");
                restore_all_adj(e, p, op->alive, rr->pids, rr->starttimes, rr->n_pids);
                op->result.report = (UnprotectReport) { .n_moved = rr->n_pids, .fallback = rr->fallback,
                                                        .fallback_path = TAKE_PTR(rr->fallback_path) };
        }
        restore_forget(op);
}

/*
 * In place, after the protected process exited: the children it left were
 * reparented, so they are looked for in its cgroup, among the processes
 * started after it (restore_adj() then touches only those that still carry
 * the applied value).
 */
static int in_place_orphans(Engine *e, const Protection *p, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *pids = NULL;
        const char *rel = cgroup_path_to_rel(p->original_cgroup);
        size_t n = 0, k = 0;
        int r;

        if (!rel || !e->backend.has_cgroup) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        r = cgroup_get_pids(e->backend.rootfd, rel, &pids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                uint64_t st;
                if (proc_read_starttime(e->procfd, pids[i], &st) >= 0 && st > p->starttime)
                        pids[k++] = pids[i];
        }
        *ret = TAKE_PTR(pids);
        *ret_n = k;
        return 0;
}

static void on_scope_frozen(int r, const OpError *err, void *userdata) {
        EngineOp *op = userdata;
        Engine *e = op->engine;
        Protection *p = op->p;
        _cleanup_free_ pid_t *covered = NULL;
        size_t n = 0;

        /* A scope that cannot be frozen is restored all the same: the second adj pass catches late children. */
        if (p->kind == PROTECTION_MOVED) {
                if (e->backend.vtable->list_pids(&e->backend, p, &covered, &n) < 0)
                        n = 0;
        } else if (op->alive) {
                if (proc_get_descendants(e->procfd, p->pid, &covered, &n) < 0)
                        n = 0;
        } else if (in_place_orphans(e, p, &covered, &n) < 0) /* its PID may be another process's now */
                n = 0;
        restore_all_adj(e, p, op->alive, covered, NULL, n);
        fault_point("unprotect:adj-restored");
        if (p->kind == PROTECTION_MOVED && e->backend.has_cgroup)
                e->backend.vtable->restore(&e->backend, p, on_scope_restored, op);
        else {
                RestoreReport none = {};
                on_scope_restored(0, NULL, &none, op);
        }
}

/* Puts back oom_score_adj and cgroup of everything p covers; then forgets p. */
static void restore_start(EngineOp *op) {
        Engine *e = op->engine;
        Protection *p = op->p;

        if (op->alive && p->pidfd >= 0 && !proc_pidfd_alive(p->pidfd))
                op->alive = false;
        if (op->alive && !same_process(e, p->pid, p->starttime))
                op->alive = false;
        p->state = PROTECTION_RESTORING;
        if (p->kind == PROTECTION_MOVED && e->backend.has_cgroup)
                e->backend.vtable->freeze(&e->backend, p, true, on_scope_frozen, op);
        else
                on_scope_frozen(0, NULL, op);
}

static void restore_done(EngineOp *op) {
        Engine *e = op->engine;
        Protection *p = op->p;
        int r;

        if (op->join.error < 0)
                log_warning("Failed to put back the memory protection of a cgroup PID %d was protected in, "
                            "ignoring: %s", (int) p->pid, op->join.err.message);
        if (!op->batch) {
                r = engine_persist_pid(e, p->pid);
                if (r < 0)
                        log_warning_errno(r, "Failed to save state after unprotecting PID %d, ignoring: %m",
                                          (int) p->pid);
        } else
                engine_persist_later(e, p->pid); /* the batch persists once at its end */
        fault_point("unprotect:forgotten");
        if (!op->quiet)
                notify(e, p, false, op->reason ? op->reason : "unprotected");
        op->p = NULL;
        protection_free(p);
        if (!op->rollback)
                op->result.r = 0;
        op_finish(op);
}

static void restore_forget(EngineOp *op) {
        Engine *e = op->engine;
        Protection *p = op->p;

        registry_remove(&e->registry, p->pid);
        if (p->kind == PROTECTION_IN_PLACE)
                op_settle_holds(op, restore_done);
        else {
                slice_update(e, on_slice_update_logged, NULL);
                op->join.error = 0;
                restore_done(op);
        }
}

/* Starts the restore of p: persisted as restoring first, unless a batch persists for all. */
static int restore_begin(Engine *e, Protection *p, bool alive, bool quiet, const char *reason, Batch *batch,
                         EngineDone done, void *userdata, OpError *err) {
        ProtectionState was = p->state;
        EngineOp *op;
        int r;

        if (p->pending)
                return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BUSY,
                                    "Another operation on PID %d is under way; try again when it is done.",
                                    (int) p->pid);
        if (!batch) {
                p->state = PROTECTION_RESTORING;
                r = engine_persist_pid(e, p->pid);
                if (r < 0) {
                        p->state = was;
                        return op_error_set(err, r, NULL, "Cannot save the state to %s: %s; PID %d stays protected.",
                                            e->config->state_directory, strerror(-r), (int) p->pid);
                }
        }
        op = op_new(e, p, done, userdata, reason);
        if (!op) {
                p->state = was;
                return op_error_set(err, -ENOMEM, NULL, "Out of memory.");
        }
        op->alive = alive;
        op->quiet = quiet;
        op->batch = batch;
        if (batch)
                batch->pending++;
        restore_start(op);
        return 0;
}

static int check_owner(const Protection *p, uid_t owner, OpError *err) {
        if (owner != UID_ANY && p->uid != owner)
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "PID %d belongs to uid %u: you may only unprotect your own processes.",
                                    (int) p->pid, (unsigned) p->uid);
        return 0;
}

int engine_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, EngineDone done, void *userdata) {
        Protection *p = registry_get(&e->registry, pid);
        OpError err = {};
        int r;

        if (!p)
                r = op_error_set(&err, -ENOENT, OOMPROTECT_ERROR_NOT_PROTECTED, "PID %d is not protected.",
                                 (int) pid);
        else
                r = check_owner(p, owner, &err);
        if (r >= 0)
                r = restore_begin(e, p, true, false, reason, NULL, done, userdata, &err);
        if (r < 0)
                complete_now(e, done, userdata, r, &err, pid);
        return 0;
}

/* ---- many at once ---- */

static void batch_finish(Batch *b) {
        Engine *e = b->engine;
        EngineResult res = { .r = (int) b->count };
        int r;

        r = engine_persist_changes(e);
        if (r < 0)
                log_warning_errno(r, "Failed to save the state, ignoring: %m");
        if (b->done)
                b->done(e, &res, b->userdata);
        free(b);
}

static void batch_step_done(Batch *b, bool ok) {
        if (ok)
                b->count++;
        if (--b->pending == 0)
                batch_finish(b);
}

static Batch *batch_new(Engine *e, EngineDone done, void *userdata) {
        Batch *b = calloc(1, sizeof(Batch));

        if (!b)
                return NULL;
        /* One for the caller until every step is started: a step that completes at once cannot end the batch. */
        *b = (Batch) { .engine = e, .done = done, .userdata = userdata, .pending = 1 };
        return b;
}

static int unprotect_matching(Engine *e, MatchFunc match, const void *arg, uid_t owner, const char *reason,
                              EngineDone done, void *userdata);

/* From op_finish(): when nothing is under way any more, the first waiting batch starts. */
static void run_waiting(Engine *e) {
        WaitingBatch *w = e->waiting;

        if (!w || e->n_pending > 0 || e->unit_ops)
                return;
        while (w->next) /* the oldest: new ones are prepended */
                w = w->next;
        LIST_REMOVE(e->waiting, w);
        (void) unprotect_matching(e, w->match, w->tag, w->owner, w->reason, w->done, w->userdata);
        waiting_batch_free(w);
}

static int wait_for_pending(Engine *e, MatchFunc match, const char *tag, uid_t owner, const char *reason,
                            EngineDone done, void *userdata) {
        WaitingBatch *w = calloc(1, sizeof(WaitingBatch));

        if (!w || (tag && !(w->tag = strdup(tag))) || !(w->reason = strdup(reason ? reason : "unprotected"))) {
                if (w)
                        waiting_batch_free(w);
                complete_now(e, done, userdata, -ENOMEM, NULL, 0);
                return 0;
        }
        w->match = match;
        w->owner = owner;
        w->done = done;
        w->userdata = userdata;
        LIST_PREPEND(e->waiting, w);
        return 0;
}

static bool match_all(const Protection *p, const void *arg);

static void on_unit_in_batch(Engine *e, const EngineResult *res, void *userdata) {
        batch_step_done(userdata, res->r >= 0);
}

void engine_unit_op_ended(Engine *e) {
        run_waiting(e);
}

void engine_unit_op_abandoned(EngineDone done, void *userdata) {
        Batch *b = userdata;

        if (done == on_unit_in_batch && --b->pending == 0) /* no completion runs from engine_free() */
                free(b);
}

/*
 * The units protected by name in an unprotect-many too (all, or those of
 * tag), counted with the processes; not those a drop-in protects: the
 * drop-in is the administrator's configuration, and `drop-in --remove`
 * takes it away. The caller holds a share of b across this.
 */
static void unprotect_units_matching(Engine *e, const char *tag, Batch *b, const char *reason) {
        char **names = calloc(e->units.n + 1, sizeof(char *));
        size_t n = 0;

        if (!names) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < e->units.n; i++) {
                const UnitProtection *u = e->units.items[i];
                if (u->pending || streq(strempty(u->source), "drop-in") || (tag && !(u->tag && streq(u->tag, tag))))
                        continue;
                if (!(names[n] = strdup(u->unit))) {
                        log_oom();
                        break;
                }
                n++;
        }
        for (size_t i = 0; i < n; i++) {
                b->pending++;
                (void) engine_unprotect_unit(e, names[i], UID_ANY, reason ? reason : "unprotected", on_unit_in_batch,
                                             b);
                free(names[i]);
        }
        free(names);
}

static int on_batch_turn(sd_event_source *s, void *userdata);

/*
 * The next few of b's records: marked restoring, persisted together, then
 * their restores started; the rest at the next turn. A record gone, busy,
 * or protected anew (another start time) since the call is left out.
 * Persisting fails: on the first turn the call fails and nothing changed;
 * later, those not yet started stay protected (logged, and not counted).
 */
static int batch_turn(Batch *b, OpError *err) {
        Engine *e = b->engine;
        pid_t chunk[BATCH_STARTS_PER_TURN];
        ProtectionState was[BATCH_STARTS_PER_TURN];
        size_t n = 0;
        bool first = b->next_todo == 0;
        int r;

        while (b->next_todo < b->n_todo && n < BATCH_STARTS_PER_TURN) {
                size_t i = b->next_todo++;
                Protection *p = registry_get(&e->registry, b->todo[i]);
                if (!p || p->pending || p->starttime != b->todo_starttimes[i])
                        continue;
                chunk[n] = p->pid;
                was[n++] = p->state;
                p->state = PROTECTION_RESTORING;
                engine_persist_later(e, p->pid);
        }
        r = n > 0 ? engine_persist_changes(e) : 0;
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        registry_get(&e->registry, chunk[i])->state = was[i];
                if (!first)
                        log_warning("Cannot save the state to %s: %s; %zu protections stay protected.",
                                    e->config->state_directory, strerror(-r), n + b->n_todo - b->next_todo);
                b->next_todo = b->n_todo;
                if (first)
                        return op_error_set(err, r, NULL, "Cannot save the state to %s: %s; nothing was unprotected.",
                                            e->config->state_directory, strerror(-r));
        } else
                for (size_t i = 0; i < n; i++) {
                        Protection *p = registry_get(&e->registry, chunk[i]);
                        if (p)
                                (void) restore_begin(e, p, true, false, b->reason, b, NULL, NULL, NULL);
                }
        if (b->next_todo < b->n_todo) {
                if (!b->turn) {
                        r = sd_event_add_defer(e->event, &b->turn, on_batch_turn, b);
                        if (r >= 0)
                                (void) sd_event_source_set_priority(b->turn, SD_EVENT_PRIORITY_IDLE);
                        if (r < 0) { /* no turns to be had: all now */
                                log_debug_errno(r, "Cannot wait for the next turn, starting the rest now: %m");
                                return batch_turn(b, err);
                        }
                        LIST_PREPEND(e->starting, b);
                } else
                        (void) sd_event_source_set_enabled(b->turn, SD_EVENT_ONESHOT);
                return 0;
        }
        if (b->turn)
                LIST_REMOVE(e->starting, b);
        batch_todo_free(b);
        batch_step_done(b, false); /* the caller's share: every restore is started */
        return 0;
}

static int on_batch_turn(sd_event_source *s, void *userdata) {
        (void) batch_turn(userdata, &(OpError) {});
        return 0;
}

/*
 * Unprotects every record for which match() says yes when it is called:
 * BATCH_STARTS_PER_TURN at a time, each turn's marked restoring and
 * persisted together, then restored; one completion when all are done.
 */
static int unprotect_matching(Engine *e, MatchFunc match, const void *arg, uid_t owner, const char *reason,
                              EngineDone done, void *userdata) {
        /* A ProtectUnit under way too: its unit is in the table only once it is applied. */
        if (e->n_pending > 0 || e->unit_ops)
                return wait_for_pending(e, match, arg, owner, reason, done, userdata);

        size_t want = e->registry.n ? e->registry.n : 1;
        Batch *b = batch_new(e, done, userdata);
        OpError err = {};
        int r;

        if (!b || !(b->todo = calloc(want, sizeof(pid_t))) || !(b->todo_starttimes = calloc(want, sizeof(uint64_t))) ||
            !(b->reason = strdup(reason ? reason : "unprotected"))) {
                if (b)
                        batch_todo_free(b);
                free(b);
                complete_now(e, done, userdata, -ENOMEM, NULL, 0);
                return 0;
        }
        for (size_t i = 0; i < e->registry.n; i++) {
                Protection *p = e->registry.items[i];
                if ((owner == UID_ANY || p->uid == owner) && !p->pending && match(p, arg)) {
                        b->todo[b->n_todo] = p->pid;
                        b->todo_starttimes[b->n_todo++] = p->starttime;
                }
        }
        b->pending++; /* a share for the units below: the first turn may end the processes' part at once */
        r = batch_turn(b, &err);
        if (r < 0) {
                batch_todo_free(b);
                free(b);
                complete_now(e, done, userdata, r, &err, 0);
                return 0;
        }
        if (owner == UID_ANY)
                unprotect_units_matching(e, match == match_all ? NULL : arg, b, reason);
        batch_step_done(b, false);
        return 0;
}

static bool match_all(const Protection *p, const void *arg) {
        return true;
}

static bool match_tag(const Protection *p, const void *arg) {
        return p->tag && streq(p->tag, (const char *) arg);
}

int engine_unprotect_all(Engine *e, uid_t owner, const char *reason, EngineDone done, void *userdata) {
        return unprotect_matching(e, match_all, NULL, owner, reason, done, userdata);
}

int engine_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason, EngineDone done,
                         void *userdata) {
        return unprotect_matching(e, match_tag, tag, owner, reason, done, userdata);
}

int engine_process_exited(Engine *e, pid_t pid) {
        Protection *p = registry_get(&e->registry, pid);

        if (!p)
                return -ENOENT;
        if (p->pending)
                return 0; /* the operation under way finds it gone and cleans up */
        return restore_begin(e, p, false, false, "exited", NULL, NULL, NULL, NULL);
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

int engine_stop(Engine *e, EngineDone done, void *userdata) {
        if (!e->config->restore_on_stop) {
                complete_now(e, done, userdata, 0, NULL, 0);
                return 0;
        }
        engine_units_stop(e);
        return engine_unprotect_all(e, UID_ANY, "daemon stopping", done, userdata);
}

/* ---- start ---- */

/* Scopes in the slice that no record names: remove the empty ones a crash may have left. */
static void remove_stray_scopes(Engine *e) {
        _cleanup_close_ int fd = -EBADF;
        struct dirent *de;
        DIR *d;

        /* Under systemd, empty scopes are systemd's to collect, never ours to remove. */
        if (!e->backend.has_cgroup || e->backend.vtable != &backend_cgroupfs_vtable)
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

/* A pid a record may act on: never PID 1, the daemon, or a kernel thread (checked where it still runs). */
static int check_record_pid(Engine *e, pid_t pid, OpError *err) {
        _cleanup_free_ char *text = NULL;
        char path[32];
        ProcStat st;

        if (pid == 1 || pid == e->self)
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS, "PID %d is %s", (int) pid,
                                    pid == 1 ? "the init process" : "oomprotectd itself");
        snprintf(path, sizeof(path), "%d/stat", (int) pid);
        if (read_full_file_at(e->procfd, path, 4096, &text, NULL) >= 0 && proc_parse_stat(text, &st) >= 0 &&
            (st.flags & PF_KTHREAD_FLAG))
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS, "PID %d is a kernel thread",
                                    (int) pid);
        return 0;
}

/*
 * A record from state.json is input like a Protect request: the file may
 * have been written by someone else. Its processes are checked like a
 * request's, its cgroup paths must be clean, and a moved record's scope must
 * be exactly the one this backend makes for its pid, inside the slice.
 */
static int check_record(Engine *e, const Protection *p, OpError *err) {
        _cleanup_free_ char *scope = NULL;
        int r;

        r = check_record_pid(e, p->pid, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_members; i++) {
                r = check_record_pid(e, p->members[i].pid, err);
                if (r < 0)
                        return r;
                if (p->members[i].original_cgroup && !cgroup_path_is_clean(p->members[i].original_cgroup))
                        return op_error_set(err, -EINVAL, NULL, "member %d has an unclean cgroup path",
                                            (int) p->members[i].pid);
        }
        if (!e->backend.has_cgroup)
                return 0;
        if (!cgroup_path_is_clean(p->original_cgroup) || !cgroup_path_to_rel(p->original_cgroup))
                return op_error_set(err, -EINVAL, NULL, "its original cgroup is not a clean absolute path");
        if (engine_inside_slice(e, p->original_cgroup))
                return op_error_set(err, -EINVAL, NULL, "its original cgroup %s is inside the slice",
                                    p->original_cgroup);
        if (p->kind == PROTECTION_IN_PLACE)
                return p->scope_cgroup ? op_error_set(err, -EINVAL, NULL, "an in-place record names a scope") : 0;
        r = backend_scope_path(&e->backend, p->pid, &scope);
        if (r < 0)
                return op_error_set(err, r, NULL, "out of memory");
        if (!p->scope_cgroup || !streq(p->scope_cgroup, scope))
                return op_error_set(err, -EINVAL, NULL, "its scope %s is not %s", strna(p->scope_cgroup), scope);
        return 0;
}

/* A record from state.json: applied again if its process still runs and it was not being restored. */
static void reconcile_one(Engine *e, Protection *p, Batch *b) {
        bool alive = same_process(e, p->pid, p->starttime);
        EngineOp *op;

        if (alive && p->state != PROTECTION_RESTORING) {
                p->pidfd = open_pidfd(e, p->pid);
                if ((p->pidfd >= 0 || e->no_pidfd) && same_process(e, p->pid, p->starttime) &&
                    (op = op_new(e, p, NULL, NULL, "restored at start"))) {
                        op->batch = b;
                        b->pending++;
                        protect_apply(op);
                        return;
                }
                alive = false;
        }
        if (!alive)
                log_info("PID %d (%s) exited while oomprotectd was not running; restoring what it left.",
                         (int) p->pid, p->comm);
        else
                log_info("PID %d (%s) was being unprotected when oomprotectd stopped; finishing that.", (int) p->pid,
                         p->comm);
        (void) restore_begin(e, p, alive, true, "restored at start", b, NULL, NULL, NULL);
}

static void on_started(Engine *e, const EngineResult *res, void *userdata) {
        Batch *start = userdata; /* the caller's done and userdata, nothing else */
        EngineResult out = { .r = (int) e->registry.n };

        remove_stray_scopes(e);
        /* Holds that no live record leans on any more (their process exited meanwhile): originals back. */
        engine_holds_settle_detached(e);
        (void) engine_check_oom_kills(e, &(uint64_t) { 0 });
        if (start->done)
                start->done(e, &out, start->userdata);
        free(start);
}

int engine_start(Engine *e, EngineDone done, void *userdata) {
        _cleanup_free_ Protection **records = NULL;
        _cleanup_(unit_table_done) UnitTable units = {};
        _cleanup_free_ char *moved_to = NULL;
        const char *reason = NULL;
        size_t n = 0, skipped = 0;
        Batch *b, *caller;
        int r;

        r = state_load_full(e->statefd, &records, &n, &e->holds, &units, &skipped, &moved_to, &reason);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/" OOMPROTECT_STATE_FILE ": %m",
                                       e->config->state_directory);
        if (moved_to)
                log_error("%s/" OOMPROTECT_STATE_FILE " is corrupt (%s); moved it aside to %s and starting empty.",
                          e->config->state_directory, strna(reason), moved_to);
        if (skipped > 0)
                log_warning("Skipped %zu unreadable record(s) in %s/" OOMPROTECT_STATE_FILE ".", skipped,
                            e->config->state_directory);

        caller = calloc(1, sizeof(Batch));
        b = batch_new(e, on_started, caller);
        if (!caller || !b) {
                free(caller);
                free(b);
                protection_array_free(TAKE_PTR(records), n);
                return log_oom();
        }
        caller->done = done;
        caller->userdata = userdata;
        /* Every record in the registry first: the slice and the holds cover them all before any is touched. */
        for (size_t i = 0; i < n; i++) {
                OpError err = {};
                if (check_record(e, records[i], &err) < 0) {
                        log_error("Ignoring the record of PID %d in %s/" OOMPROTECT_STATE_FILE ": %s; that process "
                                  "is left as it is.", (int) records[i]->pid, e->config->state_directory, err.message);
                        protection_free(TAKE_PTR(records[i]));
                } else if (registry_add(&e->registry, records[i]) < 0)
                        protection_free(TAKE_PTR(records[i]));
        }
        /* Units protected by name: in their table before anything settles the holds they lean on. */
        engine_units_start(e, units.items, units.n);
        units.n = 0;
        for (size_t i = 0; i < n; i++)
                if (records[i])
                        reconcile_one(e, records[i], b);
        batch_step_done(b, false);
        return 0;
}
