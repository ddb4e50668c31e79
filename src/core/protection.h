/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/*
 * One protection: what was there before (so that it can be put back
 * exactly) and what was applied. Persisted in state.json; the fields under
 * "runtime" are not.
 */

/* A process of the tree moved along with Descendants=true: it may have come from another cgroup. */
typedef struct ProtectionMember {
        pid_t pid;
        uint64_t starttime;
        char *original_cgroup;
        int original_adj;
} ProtectionMember;

typedef struct Protection {
        pid_t pid;
        uint64_t starttime; /* /proc/PID/stat field 22: with pid, the identity */
        char comm[16];
        uid_t uid;             /* the process's real uid when protected */
        char *original_cgroup; /* as in /proc/PID/cgroup ("/user.slice/..."); NULL on adj-only */
        char *scope_cgroup;    /* "/protected.slice/oomprotect-PID.scope"; NULL on adj-only */
        int original_adj;
        int applied_adj;
        uint64_t memory_min;
        uint64_t memory_low;
        bool oom_group;
        bool descendants;
        uint64_t since_usec; /* CLOCK_REALTIME */
        char *source;        /* "dbus", "ctl", "ctl.sock", ... */
        char *tag;           /* may be NULL */
        ProtectionMember *members;
        size_t n_members;

        /* runtime */
        int pidfd;
        void *watch; /* the daemon's event source for pidfd */
} Protection;

Protection *protection_new(void);
Protection *protection_free(Protection *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Protection *, protection_free);
/* protection_free() on each of the n elements, then free(a). Accepts NULL. */
void protection_array_free(Protection **a, size_t n);

/*
 * Restore planning, pure. Where pid goes back to: a member's own original
 * cgroup, else (the protected process, or a child born in its scope) the
 * protection's. NULL on adj-only.
 */
const char *protection_restore_cgroup(const Protection *p, pid_t pid);

/*
 * What oom_score_adj a process found in the scope gets back, given its
 * current one: the recorded original for the process and its members; for a
 * child born in the scope, the protected process's original only if it still
 * carries the applied value (it inherited it; a value it set itself stays).
 * Returns false when nothing is to be written.
 */
bool protection_restore_adj(const Protection *p, pid_t pid, int current_adj, int *ret_adj);

/* Protection options a client may ask for; unset fields take the configured defaults. */
typedef struct ProtectOptions {
        bool has_memory_min, has_memory_low, has_adj, has_oom_group;
        uint64_t memory_min;
        uint64_t memory_low;
        int adj;
        bool oom_group;
        bool descendants;
        bool in_place;
        const char *tag;
} ProtectOptions;
