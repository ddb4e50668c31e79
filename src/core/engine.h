/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "config.h"
#include "hold.h"
#include "op-error.h"
#include "protection.h"
#include "registry.h"
#include "unit-protection.h"
#include "state.h"

#define UID_ANY ((uid_t) -1)

typedef struct Engine Engine;

typedef struct EngineCallbacks {
        /*
         * A protection began (protected = true: arm its watches) or ended
         * (false: disarm; p is freed right after). reason says why
         * ("protected", "restored at start", "unprotected", "exited", ...).
         */
        void (*changed)(Engine *e, Protection *p, bool protected, const char *reason, void *userdata);
        /* A unit protected by name began (protected), gained processes (protected, "new processes") or ended. */
        void (*unit_changed)(Engine *e, const UnitProtection *u, bool protected, const char *reason, void *userdata);
} EngineCallbacks;

typedef struct ProtectRequest {
        pid_t pid;   /* 0 when pidfd is given */
        int pidfd;   /* -1, or a pidfd from the client (borrowed; the engine keeps a dup) */
        ProtectOptions options;
        const char *source; /* "dbus", "ctl", ... */
        uid_t owner;        /* UID_ANY, or: refuse processes whose real uid differs */
} ProtectRequest;

/*
 * A unit protected by name (engine-unit.c): in place, whatever the
 * backend; root's only (owner must be UID_ANY): a unit is the system's, not
 * one user's. options: MemoryMin, MemoryLow, OOMScoreAdjust and Tag apply;
 * Descendants (every process of the unit is covered anyway), OOMGroup and
 * InPlace=false are refused.
 */
typedef struct UnitProtectRequest {
        const char *unit; /* "nginx.service"; on cgroupfs the cgroup of that name in the tree */
        ProtectOptions options;
        const char *source; /* "dbus", "drop-in" (oomprotectctl drop-in), "rule", ... */
        uid_t owner;
} UnitProtectRequest;

typedef struct UnprotectReport {
        size_t n_moved;      /* processes moved out of the scope */
        bool fallback;       /* the original cgroup was gone */
        char *fallback_path; /* where they went instead */
} UnprotectReport;

void unprotect_report_done(UnprotectReport *r);

/*
 * How an operation ended. r < 0: it failed, err says why, and nothing was
 * changed (or everything it changed was put back). Else, for protect: 1
 * newly protected, 0 protected already (its settings updated where asked);
 * for the unprotect of many: the number unprotected.
 */
typedef struct EngineResult {
        int r;
        OpError err;
        pid_t pid;
        UnprotectReport report; /* unprotect of one: where its processes went */
} EngineResult;

/*
 * Every operation that changes something is asynchronous: it takes a
 * completion, called exactly once, either before the call returns (the
 * cgroupfs and adj-only backends) or later from the event loop (systemd
 * jobs). The completion may be NULL (nobody waits). While an operation is
 * under way on a record, another one on the same PID is refused with
 * -EBUSY; the loop goes on serving everything else.
 */
typedef void (*EngineDone)(Engine *e, const EngineResult *result, void *userdata);

struct EngineOp;
struct UnitOp;
struct HoldWrite;
struct WaitingBatch;
struct Batch;

struct Engine {
        const Config *config;
        sd_event *event;
        Backend backend;
        char *backend_note; /* why a weaker backend than asked was chosen, NULL if none */
        int procfd;
        int statefd;
        StateFile state; /* state.json in statefd, journaled */
        Registry registry;
        HoldTable holds;
        UnitTable units;         /* units protected by name */
        struct UnitOp *unit_ops; /* operations on them under way */
        uint64_t budget; /* MemoryMinBudget= in bytes, 0 = no limit */
        uint64_t budget_per_user; /* MemoryMinBudgetPerUser= in bytes, 0 = no limit */
        uint64_t fd_limit; /* RLIMIT_NOFILE when the engine started: one pidfd per protection */
        uint64_t oom_kills;
        unsigned n_pending; /* operations under way */
        struct EngineOp *ops;    /* ...those, for engine_free() */
        struct HoldWrite *writes; /* hold writes under way, likewise */
        struct WaitingBatch *waiting; /* unprotect-many (and stop) waiting for the operations under way */
        struct Batch *starting;       /* unprotect-many still starting their restores, a turn at a time */
        bool holds_dirty;  /* the hold values must be recomputed and written */
        bool no_pidfd;     /* pidfd_open(2) said ENOSYS (Linux < 5.3, valgrind): (pid, start time) alone */
        pid_t self;
        uint64_t guard_usage, guard_usage_usec; /* guard.c: what protections hold, and when it was summed */
        EngineCallbacks callbacks;
        void *userdata;
};

/* Opens /proc, the state directory and the backend (event: the loop it completes from). Nothing is touched yet. */
int engine_new(const Config *c, sd_event *event, const EngineCallbacks *cb, void *userdata, Engine **ret,
               OpError *e);
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free);

/*
 * Loads state.json and reconciles: applying and active records whose
 * (pid, starttime) still match are applied again (idempotently) and
 * re-armed; restoring ones and those of exited processes are restored and
 * forgotten; the cgroups in-place protections raised get what the live ones
 * need, the others their original values. done's result r: the number of
 * live protections. A state directory that cannot be read at all is an
 * error returned at once, without calling done.
 */
int engine_start(Engine *e, EngineDone done, void *userdata);

int engine_protect(Engine *e, const ProtectRequest *req, EngineDone done, void *userdata);
int engine_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, EngineDone done, void *userdata);
/*
 * The result counts the protections removed. owner as above (UID_ANY for
 * all). While other operations are under way they wait for those to end
 * first, so that a protection being applied is not left out.
 */
int engine_unprotect_all(Engine *e, uid_t owner, const char *reason, EngineDone done, void *userdata);
int engine_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason, EngineDone done,
                         void *userdata);

/* The daemon saw p's pidfd become readable: the process exited. */
int engine_process_exited(Engine *e, pid_t pid);

/* New oom_kill events in the slice since the last call (0 if none, -EOPNOTSUPP without memory controller). */
int engine_check_oom_kills(Engine *e, uint64_t *ret_new);

/* RestoreOnStop=: unprotect everything when true (done when all is restored), else keep it all. */
int engine_stop(Engine *e, EngineDone done, void *userdata);

Protection *engine_get(Engine *e, pid_t pid);
static inline size_t engine_count(const Engine *e) {
        return e->registry.n;
}
static inline uint64_t engine_memory_min_in_use(const Engine *e) {
        uint64_t a = e->registry.memory_min_sum, b = e->units.memory_min_sum;
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
/* What MaxProtected= counts: protected processes and units protected by name. */
static inline size_t engine_count_all(const Engine *e) {
        return e->registry.n + e->units.n;
}

/*
 * Protect a unit by name (UnitProtectRequest): done's result r is 1 newly
 * protected, 0 protected already (its settings updated where asked). Its
 * processes get the adj now, and those it starts later (restarts) when
 * its cgroup comes back or gets populated (inotify on cgroup.events and on
 * the parent cgroup). The record stays while the unit is stopped; it ends
 * with engine_unprotect_unit() or when systemd unloads the unit.
 */
int engine_protect_unit(Engine *e, const UnitProtectRequest *req, EngineDone done, void *userdata);
/* Everything back as recorded: each process's oom_score_adj, the held cgroups' originals. */
/* Whether unit's protection is being taken away now (out of the table, its originals being put back). */
bool engine_unit_restoring(const Engine *e, const char *unit);
int engine_unprotect_unit(Engine *e, const char *unit, uid_t owner, const char *reason, EngineDone done,
                          void *userdata);
UnitProtection *engine_get_unit(Engine *e, const char *unit);
/* systemd unloaded the unit (UnitRemoved outside a reload): its protection ends, everything put back. */
void engine_unit_gone(Engine *e, const char *unit);
/* The processes in u's cgroup (and below it) now; -ENOENT while it is stopped. */
int engine_unit_pids(Engine *e, const UnitProtection *u, pid_t **ret, size_t *ret_n);
/* The unit protection whose cgroup holds pid now, or NULL. */
UnitProtection *engine_unit_of_pid(Engine *e, pid_t pid);
static inline unsigned engine_pending(const Engine *e) {
        return e->n_pending;
}
