/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "protection.h"

/*
 * A unit protected by name ("nginx.service"): what is protected is the
 * unit, not one PID. Its cgroup gets memory.min/low (held with its
 * ancestors, as for in-place protections: hold.h), and every process in it
 * the applied oom_score_adj, now and whenever the unit starts processes
 * again (a restart: its new main process comes from PID 1). Persisted in
 * state.json under "units"; the fields under "runtime" are not.
 *
 * Each process the protection changed is a member, with the oom_score_adj
 * it had: an unprotect puts exactly that back. A process found carrying the
 * applied value already (a child of a member: it inherited it) gets
 * base_adj back, the value the first process seen without it had.
 */

typedef struct UnitMember {
        pid_t pid;
        uint64_t starttime;
        int original_adj;
} UnitMember;

typedef struct UnitProtection {
        char *unit;   /* "nginx.service" */
        char *cgroup; /* where it was found: "/system.slice/nginx.service" */
        ProtectionState state;
        int applied_adj;
        int base_adj;
        bool has_base_adj; /* base_adj was seen (a process without the applied value); kept across restarts */
        uint64_t memory_min;
        uint64_t memory_low;
        uint64_t since_usec; /* CLOCK_REALTIME */
        char *source;        /* "dbus", "rule", ... */
        char *tag;           /* may be NULL */
        UnitMember *members;
        size_t n_members, alloc_members;

        /* runtime */
        void *events_watch; /* inotify on its cgroup.events (sd_event_source) */
        void *parent_watch; /* inotify on its parent cgroup: the cgroup made again */
        void *recheck;      /* a one-shot timer after new processes were found (see engine-unit.c) */
        size_t recheck_from; /* ...for the members from this index on */
        unsigned recheck_round; /* how many of those ran for them */
        void *pending;      /* the operation under way, NULL if none */
} UnitProtection;

typedef struct UnitTable {
        UnitProtection **items;
        size_t n, alloc;
        uint64_t memory_min_sum; /* counted in MemoryMinBudget= with the registry's */
} UnitTable;

UnitProtection *unit_protection_new(void);
UnitProtection *unit_protection_free(UnitProtection *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(UnitProtection *, unit_protection_free);

/* Takes ownership on success; -EEXIST if the unit is there already. */
int unit_table_add(UnitTable *t, UnitProtection *u);
UnitProtection *unit_table_get(const UnitTable *t, const char *unit);
/* Gives ownership back; NULL if absent. */
UnitProtection *unit_table_remove(UnitTable *t, const char *unit);
/* Frees every record (their runtime watches must be gone already). */
void unit_table_done(UnitTable *t);

/* Adds (or takes away) u's memory_min to the table's sum: around a change of it. */
void unit_table_account(UnitTable *t, const UnitProtection *u, bool add);

/* The member of that identity, or NULL. */
UnitMember *unit_member_get(const UnitProtection *u, pid_t pid, uint64_t starttime);
int unit_member_add(UnitProtection *u, pid_t pid, uint64_t starttime, int original_adj);
/* Drops the members alive() says are gone. */
void unit_members_prune(UnitProtection *u, bool (*alive)(const UnitMember *m, void *userdata), void *userdata);

/*
 * Pure: what a process first seen in the unit's cgroup is recorded with: its
 * own value, unless it carries the applied one already (inherited), then
 * base_adj (the first such process's, has_base_adj), or its own where none
 * is known yet. Members gone with a restart do not make it unknown again.
 */
int unit_original_adj_for(const UnitProtection *u, int current_adj);

/*
 * Pure: whether name is a unit that can be protected by name: a valid
 * systemd unit name (systemd.unit(5): at most 255 bytes of ASCII letters,
 * digits, ":-_.\@", a template instance after '@') whose type has processes
 * of its own in a cgroup (.service, .scope, .socket, .mount, .swap). A slice
 * is refused: it has no processes of its own.
 */
bool unit_name_is_protectable(const char *name);
