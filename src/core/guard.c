/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup.h"
#include "config.h"
#include "engine.h"
#include "fileio.h"
#include "guard.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"
#include "unit-protection.h"

int guard_parse_status_rss(const char *text, uint64_t *ret) {
        const char *l = text;
        unsigned long long kb;

        while (l && !strneq(l, "VmRSS:", strlen("VmRSS:"))) {
                l = strchr(l, '\n');
                l = l ? l + 1 : NULL;
        }
        if (!l)
                return -ENODATA;
        if (sscanf(l + strlen("VmRSS:"), " %llu kB", &kb) != 1 || kb > UINT64_MAX / 1024)
                return -EINVAL;
        *ret = (uint64_t) kb * 1024;
        return 0;
}

bool guard_ceiling_allows(uint64_t in_use, uint64_t want, uint64_t ceiling) {
        return ceiling == 0 || (want <= ceiling && in_use <= ceiling - want);
}

static uint64_t process_rss(int procfd, pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char name[32];
        uint64_t rss = 0;

        snprintf(name, sizeof(name), "%d/status", (int) pid);
        if (read_full_file_at(procfd, name, 65536, &text, NULL) < 0 || guard_parse_status_rss(text, &rss) < 0)
                return 0; /* gone, or a zombie: holds nothing */
        return rss;
}

static uint64_t cgroup_current(Engine *e, const char *cgroup) {
        _cleanup_free_ char *s = NULL;
        const char *rel = cgroup ? cgroup_path_to_rel(cgroup) : NULL;
        uint64_t v;

        if (!rel || cgroup_read(e->backend.rootfd, rel, "memory.current", &s) < 0 || parse_u64_base0(s, &v) < 0)
                return 0;
        return v;
}

static uint64_t protection_rss(Engine *e, const Protection *p) {
        uint64_t sum = process_rss(e->procfd, p->pid);

        for (size_t i = 0; i < p->n_members; i++)
                sum += process_rss(e->procfd, p->members[i].pid);
        return sum;
}

/* Whether an in-place protection before index i shares p's cgroup: counted once. */
static bool cgroup_counted(const Engine *e, size_t i, const Protection *p) {
        for (size_t k = 0; k < i; k++) {
                const Protection *q = e->registry.items[k];
                if (q->kind == PROTECTION_IN_PLACE && q->original_cgroup && p->original_cgroup &&
                    streq(q->original_cgroup, p->original_cgroup))
                        return true;
        }
        return false;
}

/* What a unit protected by name holds: its cgroup's memory.current, or its processes' RSS (its whole subtree). */
static uint64_t unit_usage(Engine *e, const UnitProtection *u) {
        _cleanup_free_ pid_t *pids = NULL;
        uint64_t sum = 0;
        size_t n = 0;

        if (e->backend.has_memory)
                return cgroup_current(e, u->cgroup);
        if (engine_unit_pids(e, u, &pids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                sum += process_rss(e->procfd, pids[i]);
        return sum;
}

static uint64_t protection_usage(Engine *e, size_t i, const Protection *p) {
        uint64_t rss, cur;

        if (!e->backend.has_memory)
                return protection_rss(e, p);
        if (p->kind == PROTECTION_IN_PLACE)
                return cgroup_counted(e, i, p) ? 0 : cgroup_current(e, p->original_cgroup);
        rss = protection_rss(e, p);
        cur = cgroup_current(e, p->scope_cgroup);
        return MAX(rss, cur);
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t guard_protected_usage(Engine *e) {
        uint64_t sum = 0;

        for (size_t i = 0; i < e->registry.n; i++)
                sum += protection_usage(e, i, e->registry.items[i]);
        for (size_t i = 0; i < e->units.n; i++)
                sum += unit_usage(e, e->units.items[i]);
        e->guard_usage = sum;
        e->guard_usage_usec = monotonic_usec();
        return sum;
}

uint64_t guard_protected_usage_cached(Engine *e) {
        if (e->guard_usage_usec == 0 || monotonic_usec() - e->guard_usage_usec > GUARD_USAGE_MAX_AGE_USEC)
                return guard_protected_usage(e);
        return e->guard_usage;
}

uint64_t guard_ceiling(const Engine *e) {
        return config_max_protected_memory_bytes(e->config, physical_memory());
}

static bool excluded(const Protection *c, const pid_t *also, size_t n_also, pid_t pid) {
        for (size_t i = 0; i < n_also; i++)
                if (also[i] == pid)
                        return true;
        if (!c)
                return false;
        if (pid == c->pid)
                return true;
        for (size_t i = 0; i < c->n_members; i++)
                if (c->members[i].pid == pid)
                        return true;
        return false;
}

/* Whether pid is a process the kernel's OOM killer could pick: userspace, alive, adj above -1000. */
static bool killable(int procfd, pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char name[32];
        ProcStat st;
        int adj;

        snprintf(name, sizeof(name), "%d/stat", (int) pid);
        if (read_full_file_at(procfd, name, 4096, &text, NULL) < 0 || proc_parse_stat(text, &st) < 0)
                return false;
        if ((st.flags & PF_KTHREAD_FLAG) || st.state == 'Z' || st.state == 'X')
                return false;
        return proc_read_oom_score_adj(procfd, pid, &adj) >= 0 && adj > OOMPROTECT_OOM_SCORE_ADJ_MIN;
}

/* The first killable process but PID 1, the candidate's (c, or also[]), 0 if none: the scan stops there. */
static pid_t find_killable(Engine *e, const Protection *c, const pid_t *also, size_t n_also) {
        DIR *d = NULL;
        struct dirent *de;
        pid_t found = 0;

        if (opendir_at(e->procfd, ".", &d) < 0)
                return -1; /* cannot tell: not a reason to refuse */
        while (!found && (de = readdir(d))) {
                pid_t pid;
                if (parse_pid(de->d_name, &pid) < 0 || pid == 1 || excluded(c, also, n_also, pid))
                        continue;
                if (killable(e->procfd, pid))
                        found = pid;
        }
        closedir(d);
        return found;
}

static uint64_t candidate_usage(Engine *e, const Protection *c) {
        if (e->backend.has_memory && c->kind == PROTECTION_IN_PLACE) {
                for (size_t i = 0; i < e->registry.n; i++) {
                        const Protection *q = e->registry.items[i];
                        if (q->kind == PROTECTION_IN_PLACE && q->original_cgroup && c->original_cgroup &&
                            streq(q->original_cgroup, c->original_cgroup))
                                return 0; /* its cgroup is counted already */
                }
                return cgroup_current(e, c->original_cgroup);
        }
        return protection_rss(e, c); /* a moved one's scope does not exist yet */
}

/* MaxProtectedMemory=: what (a "PID N" or a unit) would add want to what is held now. */
static int check_ceiling(Engine *e, const char *what, uint64_t (*usage)(Engine *, const void *), const void *c,
                         OpError *err) {
        uint64_t ceiling = guard_ceiling(e), in_use, want;
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX], m[FORMAT_BYTES_MAX];

        if (ceiling == 0)
                return 0;
        in_use = guard_protected_usage_cached(e);
        want = usage(e, c);
        if (!guard_ceiling_allows(in_use, want, ceiling))
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "Protecting %s (holding %s) would bring what protected processes hold to more "
                                    "than MaxProtectedMemory=%s (%s now): the kernel must keep something to kill.",
                                    what, format_bytes(a, sizeof(a), want), format_bytes(b, sizeof(b), ceiling),
                                    format_bytes(m, sizeof(m), in_use));
        e->guard_usage = in_use + want; /* a burst of protects within the cache's second adds up */
        return 0;
}

static int refuse_deadlock(const char *what, OpError *err) {
        return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                            "Protecting %s would leave no process the kernel's OOM killer may pick (every other one "
                            "has oom_score_adj -1000): it would panic instead, \"System is deadlocked on memory\".",
                            what);
}

static uint64_t candidate_usage_of(Engine *e, const void *c) {
        return candidate_usage(e, c);
}

static uint64_t unit_usage_of(Engine *e, const void *u) {
        return unit_usage(e, u);
}

int guard_check_protect(Engine *e, const Protection *c, OpError *err) {
        char what[32];
        int r;

        snprintf(what, sizeof(what), "PID %d", (int) c->pid);
        r = check_ceiling(e, what, candidate_usage_of, c, err);
        if (r < 0)
                return r;
        if (c->applied_adj <= OOMPROTECT_OOM_SCORE_ADJ_MIN && find_killable(e, c, NULL, 0) == 0)
                return refuse_deadlock(what, err);
        return 0;
}

int guard_check_protect_update(Engine *e, const Protection *p, int adj, OpError *err) {
        char what[32];

        if (adj > OOMPROTECT_OOM_SCORE_ADJ_MIN || p->applied_adj <= OOMPROTECT_OOM_SCORE_ADJ_MIN)
                return 0; /* killable after, or not killable before: nothing the kernel may pick changes */
        snprintf(what, sizeof(what), "PID %d", (int) p->pid);
        if (find_killable(e, p, NULL, 0) == 0)
                return refuse_deadlock(what, err);
        return 0;
}

int guard_check_unit_killable(Engine *e, const UnitProtection *u, OpError *err) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (u->applied_adj > OOMPROTECT_OOM_SCORE_ADJ_MIN)
                return 0;
        /* Every process of the unit's subtree (a delegated unit keeps few or none in its own cgroup) is its own. */
        if (engine_unit_pids(e, u, &pids, &n) < 0)
                n = 0;
        if (find_killable(e, NULL, pids, n) == 0)
                return refuse_deadlock(u->unit, err);
        return 0;
}

int guard_check_unit(Engine *e, const UnitProtection *u, OpError *err) {
        int r;

        r = check_ceiling(e, u->unit, unit_usage_of, u, err);
        if (r < 0)
                return r;
        return guard_check_unit_killable(e, u, err);
}
