/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "op-error.h"
#include "protection.h"

/*
 * Who moves processes between cgroups and tunes memory.*: a table of
 * functions, one file per implementation, chosen once at start (like crun's
 * cgroup managers). oom_score_adj is not the backend's business: the engine
 * sets it the same way on every host.
 *
 * Every operation is synchronous and returns 0 or a negative errno. A backend
 * that must wait for someone else (systemd's job queue) will return 1 from
 * apply/restore and complete later through engine_backend_done(); the engine
 * keeps the record in a pending state meanwhile.
 */

typedef struct Backend Backend;

/* What a restore did: every pid it found in the scope and where they went. */
typedef struct RestoreReport {
        pid_t *pids; /* the processes that were in the scope, moved back */
        size_t n_pids;
        bool fallback;       /* the original cgroup was gone: an ancestor took them */
        char *fallback_path; /* that ancestor, "/a/b" */
} RestoreReport;

void restore_report_done(RestoreReport *r);

typedef struct BackendVTable {
        const char *name;
        /* Create the slice, enable the memory controller where needed, fill has_cgroup/has_memory. */
        int (*init)(Backend *b, OpError *e);
        void (*done)(Backend *b);
        /* Put p->pid (and p->members) into the scope and tune it. Idempotent: reconcile re-applies. */
        int (*apply)(Backend *b, const Protection *p, OpError *e);
        /* Freeze (or thaw) the processes of p's scope, so that none forks while it is restored. Best effort. */
        int (*freeze)(Backend *b, const Protection *p, bool freeze);
        /* The processes p covers now: those in its scope (adj-only: the process's descendants). */
        int (*list_pids)(Backend *b, const Protection *p, pid_t **ret, size_t *ret_n);
        /* Move everything left in the scope back to where it came from, then remove the scope. */
        int (*restore)(Backend *b, const Protection *p, RestoreReport *ret);
        /* The slice's own memory.min, kept >= the sum of its scopes. */
        int (*set_slice_memory_min)(Backend *b, uint64_t bytes);
        /* memory.events' oom_kill count of the slice (-EOPNOTSUPP without the memory controller). */
        int (*read_oom_kills)(Backend *b, uint64_t *ret);
} BackendVTable;

struct Backend {
        const BackendVTable *vtable;
        const Config *config;
        int procfd;
        int rootfd;         /* cgroup2 mount, -EBADF on adj-only */
        char *root_path;    /* "/sys/fs/cgroup" */
        char *slice_rel;    /* "protected.slice" or "a.slice/a-protected.slice", relative to root */
        bool has_cgroup;    /* processes are moved into scopes */
        bool has_memory;    /* memory.min/low/oom.group are written */
        char *memory_note;  /* why has_memory is false, for status and logs */
};

extern const BackendVTable backend_cgroupfs_vtable;
extern const BackendVTable backend_adj_only_vtable;

/*
 * Chooses and initializes the backend for c->backend. With "auto": cgroupfs
 * where a writable cgroup2 is found, adj-only elsewhere (the reason is in
 * *ret_note). The systemd backend is not built yet: Backend=systemd is
 * refused, and auto does not pick it.
 */
int backend_open(Backend *b, const Config *c, int procfd, char **ret_note, OpError *e);
void backend_close(Backend *b);

/* "/protected.slice/oomprotect-PID.scope" for this backend's slice. */
int backend_scope_path(const Backend *b, pid_t pid, char **ret);
