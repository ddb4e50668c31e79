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

/*
 * moved: the process has its own scope under the slice. in place: nothing
 * moves; its own cgroup (a unit's, a container's) gets memory.min/low, held
 * in the engine's CgroupHold table with its ancestors.
 */
typedef enum ProtectionKind {
        PROTECTION_MOVED,
        PROTECTION_IN_PLACE,
        _PROTECTION_KIND_MAX,
} ProtectionKind;

/*
 * Where a protection is in its life, persisted so that a restart in the
 * middle of a backend job knows what to finish: an applying record is
 * applied again (idempotently), a restoring one restored.
 */
typedef enum ProtectionState {
        PROTECTION_APPLYING,
        PROTECTION_ACTIVE,
        PROTECTION_RESTORING,
        _PROTECTION_STATE_MAX,
} ProtectionState;

const char *protection_kind_to_string(ProtectionKind k);
ProtectionKind protection_kind_from_string(const char *s); /* _PROTECTION_KIND_MAX if unknown */
const char *protection_state_to_string(ProtectionState s);
ProtectionState protection_state_from_string(const char *s);

typedef struct Protection {
        pid_t pid;
        uint64_t starttime; /* /proc/PID/stat field 22: with pid, the identity */
        char comm[16];
        uid_t uid;             /* the process's real uid when protected */
        char *original_cgroup; /* as in /proc/PID/cgroup ("/user.slice/..."); NULL on adj-only */
        char *scope_cgroup;    /* moved: "/protected.slice/oomprotect-PID.scope"; NULL in place and on adj-only */
        char *original_unit;   /* the systemd unit of original_cgroup ("nginx.service"), NULL if none known */
        ProtectionKind kind;
        ProtectionState state;
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
        void *watch;   /* non-NULL while the daemon watches pidfd for the exit (its token) */
        void *pending; /* the engine operation under way on this record, NULL if none */
} Protection;

Protection *protection_new(void);
Protection *protection_free(Protection *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Protection *, protection_free);
/* protection_free() on each of the n elements, then free(a). Accepts NULL. */
void protection_array_free(Protection **a, size_t n);

/*
 * Restore planning, pure. A process is the protected one or a member only
 * if both its pid and its start time are the recorded ones: a newcomer at a
 * member's reused PID (a child born in the scope since) is a child.
 *
 * Where the process goes back to: a member's own original cgroup, else
 * (the protected process, or a child born in its scope) the protection's.
 * NULL on adj-only.
 */
const char *protection_restore_cgroup(const Protection *p, pid_t pid, uint64_t starttime);

/*
 * What oom_score_adj a process found in the scope gets back, given its
 * current one: the recorded original for the process and its members; for a
 * child born in the scope, the protected process's original only if it still
 * carries the applied value (it inherited it; a value it set itself stays).
 * Returns false when nothing is to be written.
 */
bool protection_restore_adj(const Protection *p, pid_t pid, uint64_t starttime, int current_adj, int *ret_adj);

/* Protection options a client may ask for; unset fields take the configured defaults. */
typedef struct ProtectOptions {
        bool has_memory_min, has_memory_low, has_adj, has_oom_group;
        uint64_t memory_min;
        uint64_t memory_low;
        int adj;
        bool oom_group;
        bool descendants;
        bool has_in_place;
        bool in_place;   /* with has_in_place: asked for explicitly (else the engine decides) */
        bool drop_in;    /* ProtectUnit only: the unit is protected by oomprotectctl drop-in's file too */
        const char *tag;
} ProtectOptions;
