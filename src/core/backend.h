/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "cgroup.h"
#include "config.h"
#include "op-error.h"
#include "protection.h"

/*
 * Who moves processes between cgroups and tunes memory.*: a table of
 * functions, one file per implementation, chosen once at start (like crun's
 * cgroup managers). oom_score_adj is not the backend's business: the engine
 * sets it the same way on every host.
 *
 * The operations that change something are asynchronous: each takes a
 * completion and calls it exactly once, either before it returns (cgroupfs,
 * adj-only: the kernel answers at once) or later from the event loop
 * (systemd: a job of PID 1 ends with JobRemoved). A caller therefore touches
 * nothing it does not own after starting one. backend_close() (through the
 * vtable's done) cancels what is still pending without calling the
 * completions.
 */

typedef struct Backend Backend;

/* What a restore did: every pid it found in the scope and where they went. */
typedef struct RestoreReport {
        pid_t *pids; /* the processes that were in the scope, moved back */
        uint64_t *starttimes; /* ...and their start times then (0: unknown) */
        size_t n_pids;
        bool fallback;       /* the original cgroup was gone: another place took them */
        char *fallback_path; /* that place, "/a/b" */
} RestoreReport;

void restore_report_done(RestoreReport *r);
/* Adds pid once, with its start time (0: unknown) (-ENOMEM). */
int restore_report_add(RestoreReport *r, pid_t pid, uint64_t starttime);

/* r < 0: failed, *err (never NULL then) says why. */
typedef void (*BackendDone)(int r, const OpError *err, void *userdata);
/* report is the callee's: take what you need (TAKE_PTR) before returning. */
typedef void (*BackendRestoreDone)(int r, const OpError *err, RestoreReport *report, void *userdata);

/* facebook oomd's mark: it picks a cgroup carrying this xattr last, whatever its value (trusted.oomd_prefer wins). */
#define OOMD_AVOID_XATTR "trusted.oomd_avoid"

typedef enum MarkAction {
        MARK_LEAVE,   /* do not touch it */
        MARK_SET,     /* write "1" */
        MARK_RESTORE, /* put the recorded original back (remove it if it was absent) */
} MarkAction;

/* What a cgroup that is not ours is given: memory protection, and the userspace OOM killers' marks. */
typedef struct CgroupProtection {
        uint64_t min, low;
        int oomd_preference; /* a ManagedOOMPreference, or -1: leave it as it is */
        /* OOMD_AVOID_XATTR; only where the backend writes the cgroup itself (never a systemd unit's) */
        MarkAction avoid;
        const XattrValue *avoid_original; /* MARK_RESTORE: what goes back */
        /* systemd's runtime drop-ins for a unit are not the backend's: the engine puts them back (engine-hold.c). */
} CgroupProtection;

typedef struct BackendVTable {
        const char *name;
        /* Create the slice, enable the memory controller where needed, fill has_cgroup/has_memory. Synchronous. */
        int (*init)(Backend *b, OpError *e);
        void (*done)(Backend *b);
        /* Moved protections: put p->pid (and p->members) into the scope and tune it. Idempotent. */
        void (*apply)(Backend *b, const Protection *p, BackendDone done, void *userdata);
        /* Freeze (or thaw) the processes of p's scope, so that none forks while it is restored. */
        void (*freeze)(Backend *b, const Protection *p, bool freeze, BackendDone done, void *userdata);
        /* The processes p covers now: those in its scope (in place, adj-only: the process's descendants). */
        int (*list_pids)(Backend *b, const Protection *p, pid_t **ret, size_t *ret_n);
        /* Moved protections: everything left in the scope back to where it came from, then the scope gone. */
        void (*restore)(Backend *b, const Protection *p, BackendRestoreDone done, void *userdata);
        /*
         * memory.min/memory.low (and systemd-oomd's preference) of a cgroup
         * that is not ours (an in-place target, its ancestors) or of the
         * slice; unit: its systemd unit when it is one (NULL inside a
         * delegated subtree, on cgroupfs).
         */
        void (*set_memory_protection)(Backend *b, const char *cgroup, const char *unit, const CgroupProtection *want,
                                      BackendDone done, void *userdata);
        /* memory.events' oom_kill count of the slice (-EOPNOTSUPP without the memory controller). */
        int (*read_oom_kills)(Backend *b, uint64_t *ret);
} BackendVTable;

struct Backend {
        const BackendVTable *vtable;
        const Config *config;
        sd_event *event;    /* for what completes later */
        int procfd;
        int rootfd;         /* cgroup2 mount, -EBADF on adj-only */
        char *root_path;    /* "/sys/fs/cgroup" */
        char *slice_rel;    /* "protected.slice" or "a.slice/a-protected.slice", relative to root */
        bool has_cgroup;    /* processes are moved into scopes */
        bool has_memory;    /* memory.min/low/oom.group are written */
        char *memory_note;  /* why has_memory is false, or what systemd refused, for status and logs */
        bool avoid_refused; /* OOMD_AVOID_XATTR could not be written once (said once in the log) */
        uint64_t pids_floor; /* the pids.max a moved process gets anyway (systemd's DefaultTasksMax=), else UINT64_MAX */
        uint64_t test_delay_usec; /* $OOMPROTECT_TEST_BACKEND_DELAY_USEC: completions come this much later */
        void *data;         /* the implementation's own */
        /* Someone else removed the scope of pid (systemctl stop, a move by another tool): the engine's. */
        void (*scope_gone)(Backend *b, pid_t pid, void *userdata);
        void *scope_gone_userdata;
        /* systemd unloaded a unit (UnitRemoved, not during a reload): the engine's, with scope_gone_userdata. */
        void (*unit_gone)(Backend *b, const char *unit, void *userdata);
};

extern const BackendVTable backend_cgroupfs_vtable;
extern const BackendVTable backend_adj_only_vtable;
extern const BackendVTable backend_systemd_vtable;

/*
 * Chooses and initializes the backend for c->backend. With "auto": systemd
 * where PID 1 is systemd (a failure to reach it is an error, not a reason
 * to write systemd's tree behind its back) unless CgroupRoot= names a tree
 * of our own, cgroupfs where a writable cgroup2 is found, adj-only
 * elsewhere (the reason is in *ret_note).
 */
int backend_open(Backend *b, const Config *c, sd_event *event, int procfd, char **ret_note, OpError *e);
void backend_close(Backend *b);

/* "/protected.slice/oomprotect-PID.scope" for this backend's slice. */
int backend_scope_path(const Backend *b, pid_t pid, char **ret);

/*
 * memory.min and memory.low written directly (no-op without the memory
 * controller): cgroupfs's way, and the systemd backend's inside a
 * delegated subtree. Defined in backend-cgroupfs.c.
 */
int backend_write_memory_protection(Backend *b, const char *cgroup, const CgroupProtection *want, OpError *e);

/* The preference systemd-oomd reads from the cgroup's xattrs (user.oomd_omit, user.oomd_avoid; trusted.* too). */
int backend_read_oomd_preference(Backend *b, const char *cgroup);

/*
 * facebook oomd's mark on cgroup, written directly: a scope of ours, or a
 * cgroup the backend writes itself. A refusal (no CAP_SYS_ADMIN, a cgroup2
 * that keeps no trusted.* xattrs) is logged once, at notice level, and
 * returned; the protection goes on without the mark.
 */
int backend_mark_oomd_avoid(Backend *b, const char *cgroup, MarkAction action, const XattrValue *original);
/* A new scope's mark, when ManagedOOMPreference= asks for one (avoid or omit: oomd knows one degree). */
void backend_mark_scope(Backend *b, const char *scope_cgroup);
/* The mark's value on cgroup now, to record before the first write. */
int backend_read_oomd_avoid(Backend *b, const char *cgroup, XattrValue *ret);

/*
 * For the implementations: calls done now, or after test_delay_usec from
 * the event loop (the test hook that lets the build machine, which has no
 * systemd, see every front end wait for a backend that answers later).
 */

void backend_complete(Backend *b, BackendDone done, int r, const OpError *err, void *userdata);
void backend_complete_restore(Backend *b, BackendRestoreDone done, int r, const OpError *err, RestoreReport *report,
                              void *userdata);
