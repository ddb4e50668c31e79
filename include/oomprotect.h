/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * liboomprotect: ask oomprotectd to keep processes alive when memory runs
 * out. A client of org.oomprotect.Manager on the system bus
 * ($DBUS_SYSTEM_BUS_ADDRESS is honoured); link with `pkg-config --libs
 * liboomprotect`. What a C program of the 2006 module did with the ioctl on
 * /dev/oom_protect is oomprotect_set_self(1).
 *
 * Every function returns 0 (or a positive count) on success and a negative
 * errno on failure; output parameters are only written on success. The
 * daemon's refusals map to errno values as follows (oomprotect_strerror()
 * gives the daemon's own sentence):
 *
 *   -ESRCH         org.oomprotect.Error.NoSuchProcess     no such process, or a zombie
 *   -ESRCH         org.oomprotect.Error.NoSuchUnit        the unit is not running (since 0.3)
 *   -ENOENT        org.oomprotect.Error.NotProtected      unprotect of a process that is not protected
 *   -EEXIST        org.oomprotect.Error.AlreadyProtected
 *   -ENOSPC        org.oomprotect.Error.OverBudget        MemoryMinBudget= would be exceeded
 *   -EUSERS        org.oomprotect.Error.TooManyProtected  MaxProtected= reached
 *   -EPERM         org.oomprotect.Error.PermissionDenied  not root and not in AllowGroup=, or not your process
 *   -EINVAL        org.oomprotect.Error.InvalidProcess    PID 1, a kernel thread, oomprotectd itself
 *   -EINVAL        org.oomprotect.Error.InvalidArgument   a bad PID, adj, size or tag
 *   -EIO           org.oomprotect.Error.BackendFailure    the cgroup or /proc write failed
 *   -EACCES        the bus policy refused the call
 *   -ECONNREFUSED  oomprotectd is not running, or the system bus cannot be reached
 *   -ETIMEDOUT     oomprotectd did not answer in time
 *   -EPROTO        an answer this library does not understand (a newer or older daemon)
 *   -ENOMEM, ...   local failures
 *
 * The functions are thread-safe: each call makes its own bus connection.
 * The last error is kept per thread.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which fields of struct oomprotect_options are set; unset ones take the daemon's configured defaults. */
#define OOMPROTECT_OPTION_MEMORY_MIN (UINT64_C(1) << 0)
#define OOMPROTECT_OPTION_MEMORY_LOW (UINT64_C(1) << 1)
#define OOMPROTECT_OPTION_OOM_SCORE_ADJ (UINT64_C(1) << 2)
#define OOMPROTECT_OPTION_OOM_GROUP (UINT64_C(1) << 3)
#define OOMPROTECT_OPTION_DESCENDANTS (UINT64_C(1) << 4)
#define OOMPROTECT_OPTION_TAG (UINT64_C(1) << 5)
#define OOMPROTECT_OPTION_IN_PLACE (UINT64_C(1) << 6) /* since 0.2: in_place below */

/*
 * Options of oomprotect_protect(). It grows at its end only: set size to
 * sizeof(struct oomprotect_options) as your program was compiled
 * (OOMPROTECT_OPTIONS_INIT does), so an older library refuses fields it does
 * not know (-E2BIG unless they are zero) and a newer one leaves them unset.
 */
struct oomprotect_options {
        size_t size;
        uint64_t set;          /* OOMPROTECT_OPTION_* */
        uint64_t memory_min;   /* bytes, memory.min of the scope */
        uint64_t memory_low;   /* bytes, memory.low of the scope */
        int oom_score_adj;     /* -1000..1000 */
        int oom_group;         /* memory.oom.group: an OOM kill takes the whole scope */
        int descendants;       /* move the process's current children too */
        const char *tag;       /* a label, for UnprotectTag */
        /* since 0.2 */
        int in_place;          /* 1: never move it (its own cgroup protected); 0: a scope of its own (root only
                                  where that would take it out of a limit); unset: the daemon decides */
};

#define OOMPROTECT_OPTIONS_INIT { .size = sizeof(struct oomprotect_options) }

/* Protect (protect != 0) or unprotect the calling process: the module's OOMSETPROTECTCMD. */
int oomprotect_set_self(int protect);
/* *ret_protected = 1 if the calling process is protected, else 0: the module's OOMGETPROTECTCMD. */
int oomprotect_get_self(int *ret_protected);

/* Protect pid; options may be NULL for the daemon's defaults. Protecting again changes the settings given. */
int oomprotect_protect(pid_t pid, const struct oomprotect_options *options);
/* Put pid back exactly as it was. */
int oomprotect_unprotect(pid_t pid);
int oomprotect_is_protected(pid_t pid, int *ret_protected);

/* Unprotect every protection (the caller's own, unless root), or those with this tag: the number removed. */
int oomprotect_unprotect_all(void);
int oomprotect_unprotect_tag(const char *tag);

/* One protection, as ListProtected reports it. Strings are "" when unknown. */
struct oomprotect_entry {
        pid_t pid;
        const char *comm;
        const char *original_cgroup;
        const char *scope_cgroup;
        int original_adj;
        int applied_adj;
        uint64_t memory_min;
        uint64_t since_usec; /* CLOCK_REALTIME */
        const char *source;  /* "dbus", "ctl", ... */
        const char *tag;
};

/* since 0.3: one unit protected by name, as ListProtectedUnits reports it. */
struct oomprotect_unit_entry {
        const char *unit;    /* "nginx.service" */
        const char *cgroup;  /* "/system.slice/nginx.service" */
        int running;         /* it has processes now */
        uint64_t memory_min;
        uint64_t memory_low;
        int applied_adj;
        uint64_t since_usec; /* CLOCK_REALTIME */
        const char *source;
        const char *tag;
        size_t n_pids;
        const pid_t *pids;   /* its processes now, each given applied_adj */
};

/* The daemon's state. */
struct oomprotect_status {
        const char *version;
        const char *backend;
        const char *backend_note; /* why cgroup or memory protection is unavailable, "" if nothing is */
        const char *slice;
        unsigned protected_count;
        uint64_t memory_min_budget; /* 0: no limit */
        uint64_t memory_min_in_use;
        size_t n_entries;
        const struct oomprotect_entry *const *entries;
        /* appended (0 from an older daemon): what protected processes hold together (at most 1 s old), and
           MaxProtectedMemory= */
        uint64_t protected_memory;
        uint64_t max_protected_memory; /* 0: no ceiling */
        /* since 0.3: units protected by name (none from an older daemon) */
        size_t n_units;
        const struct oomprotect_unit_entry *const *units;
};

/* The daemon's state and every protection, in one allocation for oomprotect_status_free(). */
int oomprotect_get_status(struct oomprotect_status **ret);
struct oomprotect_status *oomprotect_status_free(struct oomprotect_status *s);

/*
 * The daemon's sentence for the last failure of this thread when error is
 * what that call returned, else strerror(-error). Valid until the next call
 * of this library in the same thread.
 */
const char *oomprotect_strerror(int error);

/*
 * since 0.3: protect a unit by name ("nginx.service"), in place: its cgroup
 * and ancestors get memory.min/low, every process of it the adj, now and
 * after each restart, until oomprotect_unprotect_unit(). Root only. options
 * may be NULL; memory_min, memory_low, oom_score_adj and tag apply.
 */
int oomprotect_protect_unit(const char *unit, const struct oomprotect_options *options);
int oomprotect_unprotect_unit(const char *unit);

/* since 0.2: how long this thread's calls wait for oomprotectd (0: sd-bus's default, 25 s); then -ETIMEDOUT. */
void oomprotect_set_timeout(uint64_t usec);

#ifdef __cplusplus
}
#endif
