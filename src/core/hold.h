/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "unit-dropin.h"

/*
 * The cgroups that in-place protections raise: each target's own cgroup and
 * every ancestor up to the top level, since the kernel caps a cgroup's
 * memory.min/low by its ancestors' (cgroup-v2.rst, "effective min boundary
 * is limited by memory.min values of ancestor cgroups"). One entry per
 * cgroup, whatever number of protections lean on it, with the values it had
 * before the first of them: those go back when the last one ends.
 *
 * What each gets, pure arithmetic: a target gets max(original, the sum its
 * protections ask for); every ancestor its original plus what the targets
 * below it were raised by, and at least the sum of what those targets have
 * (else a target whose own original covered its demand would still be
 * capped by an ancestor that never covered it). Never lower than the
 * original, so whatever a cgroup covered before stays covered.
 */

typedef struct CgroupHold {
        char *cgroup; /* "/system.slice/nginx.service" */
        char *unit;   /* "nginx.service"; NULL when it is no unit of its own (inside a delegated one) */
        uint64_t original_min, original_low;
        int original_preference; /* systemd-oomd's (a ManagedOOMPreference) before; -1 unknown */
        /* facebook oomd's trusted.oomd_avoid before we marked it; state -1: no mark of ours here (never read) */
        XattrValue original_avoid;
        /* systemd's runtime drop-ins of unit before our first SetUnitProperties (unit-dropin.h); state -1: none */
        XattrValue original_dropins[UNIT_DROPINS];
        /* runtime */
        bool loaded;  /* read from state.json: an earlier daemon may have raised it, so it is put back */
        bool applied; /* the values below were written */
        uint64_t applied_min, applied_low;
        int applied_preference; /* -1: never written */
        bool avoid_applied;     /* our trusted.oomd_avoid was written */
        bool released; /* nothing leans on it: its original is back (or on its way), not persisted */
        bool dropins_pending; /* released, its original_dropins not back yet (a failed try): tried again */
        uint64_t raised_min, raised_low; /* what it had before its release, to tell a stale read */
} CgroupHold;

typedef struct HoldTable {
        CgroupHold *items;
        size_t n, alloc;
} HoldTable;

/* What one in-place protection asks of its own cgroup. */
typedef struct HoldDemand {
        const char *cgroup;
        uint64_t min, low;
} HoldDemand;

/* Copies its arguments; -EEXIST when the cgroup is held already (the first originals stay). */
int hold_table_add(HoldTable *t, const char *cgroup, const char *unit, uint64_t original_min, uint64_t original_low);
CgroupHold *hold_table_get(const HoldTable *t, const char *cgroup);
void hold_table_remove(HoldTable *t, size_t i);
void hold_table_done(HoldTable *t);

/* Pure: whether cgroup a is a strict ancestor of b ("/a" of "/a/b", not of "/ab"). */
bool cgroup_is_ancestor(const char *a, const char *b);

/*
 * Pure: "/a.slice/a-b.slice/x.service" -> its n prefixes from the top level
 * down ("/a.slice", ..., itself), each with its unit name where it is one of
 * PID 1's: a run of slices and at most one leaf unit after them; NULL below
 * (a delegated subtree, whose names are another manager's). -EINVAL for "/"
 * or a relative path. Free with hold_chain_free().
 */
int hold_chain(const char *cgroup, char ***ret_paths, char ***ret_units, size_t *ret_n);
void hold_chain_free(char **paths, char **units, size_t n);

/* Pure: whether name is a systemd unit name that can own a cgroup ("x.service", "y.slice", ...). */
bool unit_name_owns_cgroup(const char *name);

/*
 * Pure: the properties (bits 1 << UnitDropInProperty) whose runtime drop-ins
 * h's release puts back: MemoryMin and MemoryLow, which every write sets,
 * and ManagedOOMPreference once h ever had one written (or an earlier
 * daemon may have: a hold from state.json), whether or not the release
 * itself sends one.
 */
unsigned hold_dropin_mask(const CgroupHold *h);

/* Pure: ret_min[i], ret_low[i] for t->items[i] given every demand. */
void hold_compute(const HoldTable *t, const HoldDemand *d, size_t n_demands, uint64_t *ret_min, uint64_t *ret_low);
