/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * `oomprotectctl doctor`'s reasoning, without I/O: what decides whether a
 * process survives when memory runs out. src/cli/doctor.c reads /proc and
 * cgroupfs and fills these structures; everything here is arithmetic and
 * rules, so the unit tests can feed it hand-worked chains.
 */

#define DOCTOR_MAX UINT64_MAX /* "max" in memory.min / memory.low */

/* One cgroup on the way from the root (excluded) down to the process's cgroup. */
typedef struct DoctorLink {
        char *path;     /* "/protected.slice/oomprotect-42.scope" (not owned by the computation) */
        uint64_t min;   /* memory.min */
        uint64_t low;   /* memory.low */
        uint64_t usage; /* memory.current */
        /*
         * The parent's children_min_usage / children_low_usage: over every child
         * of this link's parent, this one included, the sum of
         * min(memory.current, memory.min) (resp. memory.low). Unused at the top level.
         */
        uint64_t siblings_min_usage;
        uint64_t siblings_low_usage;
        /* Filled by doctor_compute_protection(). */
        uint64_t emin;
        uint64_t elow;
} DoctorLink;

/*
 * The kernel's effective_protection() (mm/memcontrol.c in 6.1, mm/page_counter.c
 * later) for one cgroup below the top level: its claim min(usage, setting),
 * shared in proportion to the siblings' claims when together they claim more
 * than the parent's effective protection; with memory_recursiveprot, plus a
 * share of what the parent's protection leaves unclaimed, in proportion to
 * this cgroup's unprotected usage.
 */
uint64_t doctor_effective_protection(uint64_t usage, uint64_t parent_usage, uint64_t setting,
                                     uint64_t parent_effective, uint64_t siblings_protected, bool recursiveprot);

/*
 * Fills emin/elow of links[0..n) (links[0] a child of the root, links[n-1]
 * the process's cgroup) as global reclaim computes them: a top-level cgroup
 * gets its own setting, a cgroup with nothing charged gets nothing.
 */
void doctor_compute_protection(DoctorLink *links, size_t n, bool recursiveprot);

typedef enum DoctorCapReason {
        DOCTOR_CAP_NONE,          /* the process's cgroup gets all it claims */
        DOCTOR_CAP_SETTING,       /* the capping link's own memory.min/low (or usage) is smaller */
        DOCTOR_CAP_SHARED,        /* its siblings together claim more than their parent affords: a share */
        DOCTOR_CAP_NOTHING_CHARGED, /* the process's cgroup has no memory charged: nothing to protect */
} DoctorCapReason;

typedef struct DoctorCap {
        size_t link; /* index in links; meaningless for DOCTOR_CAP_NONE and _NOTHING_CHARGED */
        DoctorCapReason reason;
} DoctorCap;

/*
 * Which link caps the effective memory.min (low = false) or memory.low of the
 * last link: the topmost link whose effective protection equals the last
 * link's, when that is less than the last link claims. Call after
 * doctor_compute_protection().
 */
DoctorCap doctor_find_cap(const DoctorLink *links, size_t n, bool low);

/* Rank 1 is the kernel's first choice: 1 + how many of scores[] are higher than score. */
size_t doctor_oom_rank(const int *scores, size_t n, int score);

/* ---- the OOM killers and whether each honours the protection ---- */

typedef enum DoctorKiller {
        DOCTOR_KILLER_KERNEL,
        DOCTOR_KILLER_SYSTEMD_OOMD,
        DOCTOR_KILLER_EARLYOOM,
        DOCTOR_KILLER_NOHANG,
        DOCTOR_KILLER_FB_OOMD,
        _DOCTOR_KILLER_MAX,
} DoctorKiller;

const char *doctor_killer_name(DoctorKiller k);

/* The process names of the running killers, as in /proc/PID/comm; NULL for the kernel. */
const char *doctor_killer_comm(DoctorKiller k);

typedef enum DoctorVerdict {
        DOCTOR_VERDICT_HONOURED,     /* it will not kill this process (or only last) */
        DOCTOR_VERDICT_NOT_HONOURED, /* it may kill this process */
        DOCTOR_VERDICT_NOT_WATCHED,  /* it runs, but does not act on this process's cgroups now */
        DOCTOR_VERDICT_NOT_RUNNING,
        DOCTOR_VERDICT_UNKNOWN,      /* cannot tell from here */
} DoctorVerdict;

const char *doctor_verdict_name(DoctorVerdict v);

/* What the killers look at, for the process in question. */
typedef struct DoctorTarget {
        pid_t pid;
        const char *comm;
        int oom_score;
        int oom_score_adj;
        bool pgrp_shared;       /* other processes are in its process group */
        bool cgroup_root_owned; /* its cgroup directory belongs to root */
        bool oomd_omit;         /* user.oomd_omit=1 on its cgroup */
        bool oomd_avoid;        /* user.oomd_avoid=1 on its cgroup */
        int oomd_watched;       /* a unit on its chain has ManagedOOM*=kill: 1, none: 0, unknown: -1 */
        const char *oomd_watched_by; /* "UNIT (ManagedOOMSwap=kill), ..." */
        /* facebook oomd tests these for presence, on the cgroups it compares (an ancestor's have no effect) */
        bool fb_avoid;      /* trusted.oomd_avoid on its own cgroup */
        bool fb_avoid_user; /* user.oomd_avoid there, which recent oomd read as well */
        bool fb_prefer;     /* trusted.oomd_prefer or user.oomd_prefer there: oomd takes it over avoid */
        bool fb_unreadable; /* no CAP_SYS_ADMIN: the kernel hides trusted.* xattrs, fb_avoid says nothing */
} DoctorTarget;

/* A running user-space killer: its pid (0: not running) and command line. */
typedef struct DoctorKillerProcess {
        pid_t pid;
        char **argv; /* NULL-terminated; may be NULL */
} DoctorKillerProcess;

typedef struct DoctorJudgement {
        DoctorVerdict verdict;
        char *why;    /* a sentence */
        char *advice; /* what to change, NULL if nothing */
} DoctorJudgement;

void doctor_judgement_done(DoctorJudgement *j);

/* Pure: whether killer k (running as p; the kernel always runs) spares the target, and why. */
int doctor_judge(DoctorKiller k, const DoctorKillerProcess *p, const DoctorTarget *t, DoctorJudgement *ret);

/* Pure: earlyoom's options that matter here, from its argv (getopt_long's syntax). */
typedef struct EarlyoomOptions {
        bool kill_group;    /* -g */
        const char *prefer; /* --prefer REGEX (points into argv) */
        const char *avoid;  /* --avoid REGEX */
} EarlyoomOptions;

void doctor_parse_earlyoom_argv(char **argv, EarlyoomOptions *ret);
