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

        if (!rel || cgroup_read(e->backend.rootfd, rel, "memory.current", &s) < 0)
                return 0;
        s[strcspn(s, "\n")] = '\0'; /* the kernel's line ends with one */
        if (parse_u64_base0(s, &v) < 0)
                return 0;
        return v;
}

static uint64_t protection_rss(Engine *e, const Protection *p) {
        uint64_t sum = process_rss(e->procfd, p->pid);

        for (size_t i = 0; i < p->n_members; i++)
                sum += process_rss(e->procfd, p->members[i].pid);
        return sum;
}

/*
 * Counting each cgroup and each process once. With the memory controller an
 * in-place protection and a unit by name count their cgroup's memory.current,
 * which holds its whole subtree: a cgroup that is (or is below) another
 * counted one is in that one's figure already (two in-place protections in
 * one cgroup, an in-place PID inside a protected unit). Without it, RSS
 * counts, by process: a process protected in its own right and also one of
 * a unit's is one process.
 */

/* The end of a path first, then '/', then every other byte: "/a" < "/a/b" < "/a-b". */
static int path_key(unsigned char c) {
        return c == '\0' ? 0 : c == '/' ? 1 : c + 1;
}

/* Path order with '/' first: a cgroup's descendants come right after it ("/a", "/a/b", "/a-b"). */
static int path_cmp(const void *a, const void *b) {
        const unsigned char *x = *(const unsigned char *const *) a, *y = *(const unsigned char *const *) b;

        for (; *x && *x == *y; x++, y++)
                ;
        return path_key(*x) - path_key(*y);
}

/* Whether cgroup is one of the counted ones or below one. */
static bool covered(const char *counted, const char *cgroup) {
        return streq(counted, cgroup) || cgroup_is_ancestor(counted, cgroup);
}

/* memory.current of the outermost of paths (n of them, sorted in place): each subtree once. */
static uint64_t outermost_current(Engine *e, const char **paths, size_t n) {
        const char *last = NULL;
        uint64_t sum = 0;

        if (n > 1)
                qsort(paths, n, sizeof(char *), path_cmp);
        for (size_t i = 0; i < n; i++) {
                if (last && covered(last, paths[i]))
                        continue;
                sum += cgroup_current(e, paths[i]);
                last = paths[i];
        }
        return sum;
}

/* The cgroups counted by memory.current: the in-place protections' and the units'; NULL on ENOMEM. */
static const char **counted_cgroups(Engine *e, size_t *ret_n) {
        const char **paths = calloc(e->registry.n + e->units.n + 1, sizeof(char *));
        size_t n = 0;

        if (!paths)
                return NULL;
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                if (p->kind == PROTECTION_IN_PLACE && p->original_cgroup)
                        paths[n++] = p->original_cgroup;
        }
        for (size_t i = 0; i < e->units.n; i++)
                paths[n++] = e->units.items[i]->cgroup;
        *ret_n = n;
        return paths;
}

/* What cgroup (a candidate's, not counted yet) adds: nothing where it is counted, else what is not below. */
static uint64_t cgroup_added(Engine *e, const char *cgroup) {
        _cleanup_free_ const char **all = NULL, **below = NULL;
        size_t n = 0, k = 0;
        uint64_t cur, inner;

        all = counted_cgroups(e, &n);
        if (!all)
                return cgroup_current(e, cgroup);
        below = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                if (covered(all[i], cgroup))
                        return 0;
                if (below && cgroup_is_ancestor(cgroup, all[i]))
                        below[k++] = all[i];
        }
        cur = cgroup_current(e, cgroup);
        inner = below ? outermost_current(e, below, k) : 0;
        return cur > inner ? cur - inner : 0;
}

static uint64_t moved_usage(Engine *e, const Protection *p) {
        uint64_t rss = protection_rss(e, p), cur = cgroup_current(e, p->scope_cgroup);

        return MAX(rss, cur);
}

static uint64_t usage_by_cgroup(Engine *e) {
        _cleanup_free_ const char **paths = NULL;
        uint64_t sum = 0;
        size_t n = 0;

        for (size_t i = 0; i < e->registry.n; i++)
                if (e->registry.items[i]->kind != PROTECTION_IN_PLACE)
                        sum += moved_usage(e, e->registry.items[i]);
        paths = counted_cgroups(e, &n);
        if (paths)
                return sum + outermost_current(e, paths, n);
        for (size_t i = 0; i < e->registry.n; i++) /* out of memory: every one, some twice (too much, never too little) */
                if (e->registry.items[i]->kind == PROTECTION_IN_PLACE)
                        sum += cgroup_current(e, e->registry.items[i]->original_cgroup);
        for (size_t i = 0; i < e->units.n; i++)
                sum += cgroup_current(e, e->units.items[i]->cgroup);
        return sum;
}

typedef struct PidSet {
        pid_t *pids;
        size_t n, alloc;
        bool failed;
} PidSet;

static void pid_set_add(PidSet *s, const pid_t *pids, size_t n) {
        if (s->failed || n == 0)
                return;
        if (s->n + n > s->alloc) {
                size_t want = MAX(s->alloc * 2, s->n + n);
                pid_t *grown = realloc(s->pids, want * sizeof(pid_t));
                if (!grown) {
                        s->failed = true;
                        return;
                }
                s->pids = grown;
                s->alloc = want;
        }
        memcpy(s->pids + s->n, pids, n * sizeof(pid_t));
        s->n += n;
}

static int pid_cmp(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;

        return (x > y) - (x < y);
}

/* Every protected process and member, and every process of a unit's subtree. */
static void protected_pids(Engine *e, PidSet *s) {
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                pid_set_add(s, &p->pid, 1);
                for (size_t k = 0; k < p->n_members; k++)
                        pid_set_add(s, &p->members[k].pid, 1);
        }
        for (size_t i = 0; i < e->units.n; i++) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                if (engine_unit_pids(e, e->units.items[i], &pids, &n) >= 0)
                        pid_set_add(s, pids, n);
        }
}

/* The RSS of a unit's processes (its whole subtree): the figure without the memory controller. */
static uint64_t unit_rss(Engine *e, const UnitProtection *u) {
        _cleanup_free_ pid_t *pids = NULL;
        uint64_t sum = 0;
        size_t n = 0;

        if (engine_unit_pids(e, u, &pids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                sum += process_rss(e->procfd, pids[i]);
        return sum;
}

static uint64_t usage_by_rss(Engine *e) {
        PidSet s = {};
        uint64_t sum = 0;

        protected_pids(e, &s);
        if (s.failed) { /* out of memory: every one, some twice (too much, never too little) */
                free(s.pids);
                for (size_t i = 0; i < e->registry.n; i++)
                        sum += protection_rss(e, e->registry.items[i]);
                for (size_t i = 0; i < e->units.n; i++)
                        sum += unit_rss(e, e->units.items[i]);
                return sum;
        }
        if (s.n > 0)
                qsort(s.pids, s.n, sizeof(pid_t), pid_cmp);
        for (size_t i = 0; i < s.n; i++)
                if (i == 0 || s.pids[i] != s.pids[i - 1])
                        sum += process_rss(e->procfd, s.pids[i]);
        free(s.pids);
        return sum;
}

/* Whether a process in cgroup is one of a protected unit's (its RSS counted with the unit's). */
static bool in_a_unit(const Engine *e, const char *cgroup) {
        for (size_t i = 0; cgroup && i < e->units.n; i++)
                if (covered(e->units.items[i]->cgroup, cgroup))
                        return true;
        return false;
}

/* A unit's candidate RSS: its processes not protected in their own right already. */
static uint64_t unit_added_rss(Engine *e, const UnitProtection *u) {
        _cleanup_free_ pid_t *pids = NULL;
        PidSet counted = {};
        uint64_t sum = 0;
        size_t n = 0;

        if (engine_unit_pids(e, u, &pids, &n) < 0)
                return 0;
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                pid_set_add(&counted, &p->pid, 1);
                for (size_t k = 0; k < p->n_members; k++)
                        pid_set_add(&counted, &p->members[k].pid, 1);
        }
        if (!counted.failed && counted.n > 0)
                qsort(counted.pids, counted.n, sizeof(pid_t), pid_cmp);
        for (size_t i = 0; i < n; i++)
                if (counted.failed || counted.n == 0 ||
                    !bsearch(&pids[i], counted.pids, counted.n, sizeof(pid_t), pid_cmp))
                        sum += process_rss(e->procfd, pids[i]);
        free(counted.pids);
        return sum;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t guard_protected_usage(Engine *e) {
        uint64_t sum = e->backend.has_memory ? usage_by_cgroup(e) : usage_by_rss(e);

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

/* What c would add to what is counted now (guard_protected_usage). */
static uint64_t candidate_usage(Engine *e, const Protection *c) {
        uint64_t sum = 0;

        if (e->backend.has_memory && c->kind == PROTECTION_IN_PLACE)
                return cgroup_added(e, c->original_cgroup);
        if (e->backend.has_memory)
                return protection_rss(e, c); /* a moved one's scope does not exist yet */
        if (!in_a_unit(e, c->original_cgroup))
                sum += process_rss(e->procfd, c->pid);
        for (size_t i = 0; i < c->n_members; i++)
                if (!in_a_unit(e, c->members[i].original_cgroup))
                        sum += process_rss(e->procfd, c->members[i].pid);
        return sum;
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
        const UnitProtection *unit = u;

        return e->backend.has_memory ? cgroup_added(e, unit->cgroup) : unit_added_rss(e, unit);
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
