/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "config.h"
#include "op-error.h"
#include "protection.h"
#include "registry.h"

#define UID_ANY ((uid_t) -1)

typedef struct Engine Engine;

typedef struct EngineCallbacks {
        /*
         * A protection began (protected = true: arm its watches) or ended
         * (false: disarm; p is freed right after). reason says why
         * ("protected", "restored at start", "unprotected", "exited", ...).
         */
        void (*changed)(Engine *e, Protection *p, bool protected, const char *reason, void *userdata);
} EngineCallbacks;

typedef struct ProtectRequest {
        pid_t pid;   /* 0 when pidfd is given */
        int pidfd;   /* -1, or a pidfd from the client (borrowed; the engine keeps a dup) */
        ProtectOptions options;
        const char *source; /* "dbus", "ctl", ... */
        uid_t owner;        /* UID_ANY, or: refuse processes whose real uid differs */
} ProtectRequest;

typedef struct UnprotectReport {
        size_t n_moved;      /* processes moved out of the scope */
        bool fallback;       /* the original cgroup was gone */
        char *fallback_path; /* where they went instead */
} UnprotectReport;

void unprotect_report_done(UnprotectReport *r);

struct Engine {
        const Config *config;
        Backend backend;
        char *backend_note; /* why a weaker backend than asked was chosen, NULL if none */
        int procfd;
        int statefd;
        Registry registry;
        uint64_t budget; /* MemoryMinBudget= in bytes, 0 = no limit */
        uint64_t slice_min_floor; /* while reconciling: the slice's memory.min is not lowered below this */
        uint64_t oom_kills;
        pid_t self;
        EngineCallbacks callbacks;
        void *userdata;
};

/* Opens /proc, the state directory and the backend. Nothing is touched yet. */
int engine_new(const Config *c, const EngineCallbacks *cb, void *userdata, Engine **ret, OpError *e);
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free);

/*
 * Loads state.json and reconciles: records whose (pid, starttime) still
 * match are re-applied (idempotently) and re-armed; the others are forgotten
 * and whatever they left in their scopes is restored. Returns the number of
 * live protections.
 */
int engine_start(Engine *e);

/* 1 when newly protected, 0 when it was protected already (*ret is set in both cases). */
int engine_protect(Engine *e, const ProtectRequest *req, Protection **ret, OpError *err);

int engine_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, UnprotectReport *ret, OpError *err);
/* Both return the number of protections removed. owner as above (UID_ANY for all). */
int engine_unprotect_all(Engine *e, uid_t owner, const char *reason);
int engine_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason);

/* The daemon saw p's pidfd become readable: the process exited. */
int engine_process_exited(Engine *e, pid_t pid);

/* New oom_kill events in the slice since the last call (0 if none, -EOPNOTSUPP without memory controller). */
int engine_check_oom_kills(Engine *e, uint64_t *ret_new);

/* RestoreOnStop=: unprotect everything when true, else keep it all for the next start. */
int engine_stop(Engine *e);

Protection *engine_get(Engine *e, pid_t pid);
static inline size_t engine_count(const Engine *e) {
        return e->registry.n;
}
static inline uint64_t engine_memory_min_in_use(const Engine *e) {
        return e->registry.memory_min_sum;
}
