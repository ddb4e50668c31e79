/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Units protected by name (unit-protection.h): found in the cgroup tree,
 * protected in place through the engine's holds (engine-hold.c), their
 * processes given the adj now and whenever the unit starts new ones.
 * Part of the engine; engine-internal.h is the seam.
 *
 * Finding a unit: every unit of PID 1 that has processes lives in
 * "<its slices>/<unit>" (systemd.slice(5)); a running unit's cgroup is
 * therefore the directory of its name reached through slice directories
 * from the root. The same walk serves the cgroupfs backend, where a unit
 * name simply means the cgroup of that name laid out the same way.
 *
 * Noticing new processes: a restart removes the unit's cgroup and makes it
 * again (inotify IN_CREATE on the parent), then fills it (the "populated"
 * line of cgroup.events changes: IN_MODIFY). Each time, processes not seen
 * before get the adj, their own value recorded. Children of a process that
 * has it inherit it from the kernel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "engine-internal.h"
#include "engine.h"
#include "escape.h"
#include "fault.h"
#include "fileio.h"
#include "guard.h"
#include "list.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"

#define UNIT_SEARCH_DEPTH 16
#define UNIT_SUBTREE_DEPTH 8

typedef struct UnitOp UnitOp;
struct UnitOp {
        Engine *engine;
        UnitProtection *u; /* in the table, except while a restore settles the holds (then ours) */
        EngineDone done;
        void *userdata;
        EngineResult result;
        char *reason;
        bool restoring;
        bool newly;
        bool update;            /* new settings for an active record */
        UnitProtection old;     /* ...and the settings to go back to on failure */
        Joiner join;
        UnitOp *prev, *next;    /* in engine->unit_ops */
};

static uint64_t unit_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static void unit_notify(Engine *e, const UnitProtection *u, bool protected, const char *reason) {
        if (e->callbacks.unit_changed)
                e->callbacks.unit_changed(e, u, protected, reason, e->userdata);
}

static void unit_complete_now(Engine *e, EngineDone done, void *userdata, int r, const OpError *err) {
        EngineResult res = { .r = r };

        if (err)
                res.err = *err;
        if (done)
                done(e, &res, userdata);
}

UnitProtection *engine_get_unit(Engine *e, const char *unit) {
        return unit_table_get(&e->units, unit);
}

bool engine_unit_restoring(const Engine *e, const char *unit) {
        for (const UnitOp *op = e->unit_ops; op; op = op->next)
                if (op->restoring && op->u && streq(op->u->unit, unit))
                        return true;
        return false;
}

UnitProtection *engine_unit_of_pid(Engine *e, pid_t pid) {
        _cleanup_free_ char *cgroup = NULL;

        if (e->units.n == 0 || proc_read_cgroup(e->procfd, pid, &cgroup) < 0)
                return NULL;
        for (size_t i = 0; i < e->units.n; i++) {
                UnitProtection *u = e->units.items[i];
                bool updating = u->state == PROTECTION_APPLYING && u->pending && ((UnitOp *) u->pending)->update;
                if ((u->state == PROTECTION_ACTIVE || updating) &&
                    (streq(u->cgroup, cgroup) || cgroup_is_ancestor(u->cgroup, cgroup)))
                        return u;
        }
        return NULL;
}

/* ---- the slice ---- */

bool engine_unit_in_slice(const Engine *e, const UnitProtection *u) {
        return engine_inside_slice(e, u->cgroup);
}

void engine_units_slice_sums(const Engine *e, uint64_t *ret_min, uint64_t *ret_low) {
        uint64_t min = 0, low = 0;

        for (size_t i = 0; i < e->units.n; i++)
                if (engine_unit_in_slice(e, e->units.items[i])) {
                        min += e->units.items[i]->memory_min;
                        low += e->units.items[i]->memory_low;
                }
        *ret_min = min;
        *ret_low = low;
}

/* A unit's cgroup inside the slice must be a unit of its own there, never one of our scopes. */
static bool unit_cgroup_allowed(const Engine *e, const char *cgroup) {
        const char *base = strrchr(cgroup, '/');
        _cleanup_free_ char *expect = NULL;

        if (!engine_inside_slice(e, cgroup))
                return true;
        if (!base || strneq(base + 1, OOMPROTECT_SCOPE_PREFIX, strlen(OOMPROTECT_SCOPE_PREFIX)) ||
            asprintf(&expect, "/%s%s", e->backend.slice_rel, base) < 0)
                return false;
        return streq(expect, cgroup);
}

/* Holds for its cgroup's chain; inside the slice, for its own cgroup only (the slice carries the rest). */
static int unit_hold(Engine *e, const char *cgroup, const char *unit, OpError *err) {
        CgroupHold *h;
        uint64_t min, low;
        int r;

        if (engine_inside_slice(e, cgroup)) {
                if (!e->backend.has_memory)
                        return 0;
                h = hold_table_get(&e->holds, cgroup);
                if (h) {
                        h->released = false;
                        return 0;
                }
                r = cgroup_read_protection(e->backend.rootfd, cgroup_path_to_rel(cgroup), &min, &low);
                if (r >= 0)
                        r = hold_table_add(&e->holds, cgroup, unit, min, low);
                if (r >= 0)
                        e->holds.items[e->holds.n - 1].original_preference =
                                backend_read_oomd_preference(&e->backend, cgroup);
                if (r < 0)
                        return op_error_set(err, r, NULL, "Cannot hold the memory protection of %s: %s", cgroup,
                                            strerror(-r));
                return engine_hold_record_dropins(e, &e->holds.items[e->holds.n - 1], err);
        }
        r = engine_holds_prepare_cgroup(e, cgroup, err);
        if (r < 0 && err->code == 0)
                op_error_set(err, r, NULL, "Cannot hold the memory protection of %s: %s", cgroup, strerror(-r));
        return r;
}

/* ---- finding the cgroup ---- */

/* Looks for a directory called unit below rel, through slice directories only. */
static int find_in(int rootfd, const char *rel, const char *unit, unsigned depth, char **ret) {
        DIR *d = NULL;
        struct dirent *de;
        int r = -ENOENT;

        if (depth > UNIT_SEARCH_DEPTH || opendir_at(rootfd, rel, &d) < 0)
                return -ENOENT;
        while (r == -ENOENT && (de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (asprintf(&child, "%s%s%s", streq(rel, ".") ? "" : rel, streq(rel, ".") ? "" : "/", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (streq(de->d_name, unit)) {
                        *ret = TAKE_PTR(child);
                        r = 0;
                } else if (endswith(de->d_name, ".slice"))
                        r = find_in(rootfd, child, unit, depth + 1, ret);
        }
        closedir(d);
        return r;
}

/* "/system.slice/nginx.service" for "nginx.service"; -ENOENT when it has no cgroup (not running). */
static int unit_find_cgroup(Engine *e, const char *unit, char **ret) {
        _cleanup_free_ char *rel = NULL;
        int r;

        r = find_in(e->backend.rootfd, ".", unit, 0, &rel);
        if (r < 0)
                return r;
        if (asprintf(ret, "/%s", rel) < 0)
                return -ENOMEM;
        return 0;
}

/* Every pid in rel's cgroup and the cgroups below it (a delegated unit has some). */
static int subtree_pids(int rootfd, const char *rel, unsigned depth, pid_t **pids, size_t *n) {
        _cleanup_free_ pid_t *here = NULL;
        size_t k = 0;
        DIR *d = NULL;
        struct dirent *de;
        int r;

        r = cgroup_get_pids(rootfd, rel, &here, &k);
        if (r < 0)
                return r;
        if (k > 0) {
                pid_t *grown = realloc(*pids, (*n + k) * sizeof(pid_t));
                if (!grown)
                        return -ENOMEM;
                memcpy(grown + *n, here, k * sizeof(pid_t));
                *pids = grown;
                *n += k;
        }
        if (depth >= UNIT_SUBTREE_DEPTH || opendir_at(rootfd, rel, &d) < 0)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (asprintf(&child, "%s/%s", rel, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                (void) subtree_pids(rootfd, child, depth + 1, pids, n); /* a child cgroup gone meanwhile */
        }
        closedir(d);
        return 0;
}

int engine_unit_pids(Engine *e, const UnitProtection *u, pid_t **ret, size_t *ret_n) {
        pid_t *pids = NULL;
        size_t n = 0;
        int r;

        r = subtree_pids(e->backend.rootfd, cgroup_path_to_rel(u->cgroup), 0, &pids, &n);
        if (r < 0) {
                free(pids);
                return r;
        }
        *ret = pids;
        *ret_n = n;
        return 0;
}

/* ---- the adj of its processes ---- */

static bool member_alive(const UnitMember *m, void *userdata) {
        Engine *e = userdata;

        return proc_same_process(e->procfd, m->pid, m->starttime);
}

/*
 * Gives every process of the unit not seen before the applied adj, its own
 * recorded first. Returns how many were added (the caller persists), or
 * the first write's error (EACCES: lowering needs CAP_SYS_RESOURCE).
 * Without write, the new ones are only recorded (an update records them,
 * persists, and only then writes: a crash in between leaves nothing
 * changed that the record does not know).
 */
static int unit_scan_as(Engine *e, UnitProtection *u, bool write, OpError *err) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int added = 0, r;

        unit_members_prune(u, member_alive, e);
        r = engine_unit_pids(e, u, &pids, &n);
        if (r == -ENOENT)
                return 0; /* stopped: nothing runs */
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot list the processes of %s: %s", u->unit, strerror(-r));
        for (size_t i = 0; i < n; i++) {
                uint64_t st;
                int cur;
                if (pids[i] == e->self || registry_get(&e->registry, pids[i]))
                        continue; /* protected in its own right */
                if (proc_read_starttime(e->procfd, pids[i], &st) < 0 || unit_member_get(u, pids[i], st) ||
                    proc_read_oom_score_adj(e->procfd, pids[i], &cur) < 0)
                        continue; /* exited meanwhile, or known */
                if (!u->has_base_adj && cur != u->applied_adj) {
                        u->base_adj = cur;
                        u->has_base_adj = true;
                }
                r = unit_member_add(u, pids[i], st, unit_original_adj_for(u, cur));
                if (r < 0)
                        return op_error_set(err, r, NULL, "Out of memory.");
                added++;
                r = cur == u->applied_adj || !write
                            ? 0
                            : proc_write_oom_score_adj_of(e->procfd, pids[i], -EBADF, st, u->applied_adj);
                if (r == -EACCES || r == -EPERM) {
                        u->n_members--; /* not changed: nothing to put back */
                        added--;
                        return op_error_set(err, r, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                            "Cannot set oom_score_adj of PID %d of %s to %d: lowering it needs "
                                            "CAP_SYS_RESOURCE.", (int) pids[i], u->unit, u->applied_adj);
                }
        }
        return added;
}

static int unit_scan(Engine *e, UnitProtection *u, OpError *err) {
        return unit_scan_as(e, u, true, err);
}

/* Every process it changed (and their children that inherited the value) gets its own value back. */
static void unit_restore_adj(Engine *e, UnitProtection *u) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        for (size_t i = 0; i < u->n_members; i++) {
                const UnitMember *m = &u->members[i];
                int cur;
                if (registry_get(&e->registry, m->pid) || !proc_same_process(e->procfd, m->pid, m->starttime) ||
                    proc_read_oom_score_adj(e->procfd, m->pid, &cur) < 0 || cur != u->applied_adj)
                        continue; /* gone, or someone set another value since: theirs stays */
                (void) proc_write_oom_score_adj_of(e->procfd, m->pid, -EBADF, m->starttime, m->original_adj);
        }
        if (!u->has_base_adj || engine_unit_pids(e, u, &pids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                uint64_t st;
                int cur;
                if (registry_get(&e->registry, pids[i]) || proc_read_starttime(e->procfd, pids[i], &st) < 0 ||
                    unit_member_get(u, pids[i], st) || proc_read_oom_score_adj(e->procfd, pids[i], &cur) < 0 ||
                    cur != u->applied_adj)
                        continue;
                (void) proc_write_oom_score_adj_of(e->procfd, pids[i], -EBADF, st, u->base_adj);
        }
}

/* ---- watches ---- */

static void unit_arm(Engine *e, UnitProtection *u);

static void unit_disarm_events(UnitProtection *u) {
        u->events_watch = sd_event_source_disable_unref(u->events_watch);
}

static void unit_disarm(UnitProtection *u) {
        unit_disarm_events(u);
        u->parent_watch = sd_event_source_disable_unref(u->parent_watch);
        u->recheck = sd_event_source_disable_unref(u->recheck);
}

/* The watches' userdata: the engine and the unit's name (the record may be replaced, the name stays). */
typedef struct UnitWatch {
        Engine *engine;
        char unit[];
} UnitWatch;

static void unit_watch_free(void *p) {
        free(p);
}

/*
 * A process is in the cgroup before it execs: PID 1's child sets the
 * unit's own OOMScoreAdjust= after joining it, and may do so after our
 * scan. A moment later (0.2 s, then 1 s and 4 s after that, for a loaded
 * machine) the new members are looked at again: one that has another value
 * now got it at its start: that is its original, and it gets the applied
 * one again; a scan then finds what they started meanwhile. After the last
 * round a changed value is someone's choice and stays. No timer runs while
 * nothing starts.
 */
static const uint64_t unit_recheck_usec[] = { 200 * 1000ULL, 1000 * 1000ULL, 4000 * 1000ULL };

static void log_persist_failure(int r);
static void unit_arm_recheck(Engine *e, UnitProtection *u, size_t from);

static int on_unit_recheck(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitWatch *w = userdata;
        Engine *e = w->engine;
        UnitProtection *u = unit_table_get(&e->units, w->unit);
        bool changed = false;

        if (!u || u->recheck != s)
                return 0;
        u->recheck = sd_event_source_disable_unref(u->recheck); /* frees w: nothing of it is used below */
        u->recheck_round++;
        for (size_t i = u->recheck_from; i < u->n_members && u->state == PROTECTION_ACTIVE; i++) {
                UnitMember *m = &u->members[i];
                int cur;
                if (!proc_same_process(e->procfd, m->pid, m->starttime) ||
                    proc_read_oom_score_adj(e->procfd, m->pid, &cur) < 0 || cur == u->applied_adj)
                        continue;
                m->original_adj = cur;
                if (!u->has_base_adj) {
                        u->base_adj = cur;
                        u->has_base_adj = true;
                }
                (void) proc_write_oom_score_adj_of(e->procfd, m->pid, -EBADF, m->starttime, u->applied_adj);
                changed = true;
        }
        /* ...and what they started meanwhile, before they had the applied value to hand down. */
        if (u->state == PROTECTION_ACTIVE && !u->pending && unit_scan(e, u, &(OpError) {}) > 0)
                changed = true;
        if (changed)
                log_persist_failure(engine_persist_unit(e, u->unit));
        /* Its processes as they are now (the intermediate ones of a start have gone): for the status file. */
        unit_notify(e, u, true, "processes changed");
        if (u->recheck_round < ELEMENTSOF(unit_recheck_usec))
                unit_arm_recheck(e, u, u->recheck_from);
        return 0;
}


static void unit_rescan(Engine *e, UnitProtection *u, const char *why) {
        OpError err = {};
        int r;

        if (u->pending || u->state != PROTECTION_ACTIVE)
                return;
        r = unit_scan(e, u, &err);
        if (r > 0)
                unit_arm_recheck(e, u, u->n_members - (size_t) r); /* the new ones are the last */
        if (r < 0)
                log_warning("Failed to protect the new processes of %s (%s): %s", u->unit, why, err.message);
        if (r > 0) {
                log_info("Protected %d new process(es) of %s (%s).", r, u->unit, why);
                log_persist_failure(engine_persist_unit(e, u->unit));
        }
        unit_notify(e, u, true, r > 0 ? "new processes" : "processes changed");
}

static int on_unit_events(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        UnitWatch *w = userdata;
        UnitProtection *u = unit_table_get(&w->engine->units, w->unit);

        if (!u)
                return 0;
        if (ev->mask & IN_IGNORED) { /* the cgroup went away: a stop; the parent's watch sees it come back */
                if (u->events_watch == s)
                        unit_disarm_events(u);
                return 0;
        }
        unit_rescan(w->engine, u, "its cgroup changed");
        return 0;
}

static int on_unit_parent(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        UnitWatch *w = userdata;
        Engine *e = w->engine;
        UnitProtection *u = unit_table_get(&e->units, w->unit);
        const char *base;
        CgroupHold *h;

        if (!u || !(ev->mask & (IN_CREATE | IN_MOVED_TO)) || ev->len == 0)
                return 0;
        base = strrchr(u->cgroup, '/');
        if (!base || !streq(ev->name, base + 1))
                return 0;
        log_info("%s started again: protecting it again.", u->unit);
        /* A new cgroup has the kernel's defaults: cgroupfs writes the hold again (systemd keeps the unit's). */
        h = hold_table_get(&e->holds, u->cgroup);
        if (h && e->backend.vtable == &backend_cgroupfs_vtable) {
                h->applied = false;
                engine_holds_settle_detached(e);
        }
        unit_arm(e, u);
        unit_rescan(e, u, "started again");
        return 0;
}

static int add_watch(Engine *e, const char *path, uint32_t mask, sd_event_inotify_handler_t handler,
                     const char *unit, sd_event_source **ret) {
        size_t len = strlen(unit);
        UnitWatch *w = malloc(sizeof(UnitWatch) + len + 1);
        int r;

        if (!w)
                return -ENOMEM;
        w->engine = e;
        memcpy(w->unit, unit, len + 1);
        r = sd_event_add_inotify(e->event, ret, path, mask, handler, w);
        if (r < 0) {
                free(w);
                return r;
        }
        (void) sd_event_source_set_destroy_callback(*ret, unit_watch_free);
        return 0;
}

static void unit_arm_recheck(Engine *e, UnitProtection *u, size_t from) {
        size_t len = strlen(u->unit);
        UnitWatch *w;
        sd_event_source *s;

        if (!e->event)
                return;
        if (u->recheck) { /* one under way: it covers these too, from its first round again */
                u->recheck_from = MIN(u->recheck_from, from);
                u->recheck_round = 0;
                return;
        }
        if (from != u->recheck_from || u->recheck_round >= ELEMENTSOF(unit_recheck_usec))
                u->recheck_round = 0; /* new members: the rounds start again */
        w = malloc(sizeof(UnitWatch) + len + 1);
        if (!w)
                return;
        w->engine = e;
        memcpy(w->unit, u->unit, len + 1);
        if (sd_event_add_time_relative(e->event, &s, CLOCK_MONOTONIC, unit_recheck_usec[u->recheck_round], 0,
                                       on_unit_recheck, w) < 0) {
                free(w);
                return;
        }
        (void) sd_event_source_set_destroy_callback(s, unit_watch_free);
        u->recheck = s;
        u->recheck_from = from;
}

/* Watches its cgroup's cgroup.events (where it exists) and its parent (for the cgroup made again). */
static void unit_arm(Engine *e, UnitProtection *u) {
        _cleanup_free_ char *events = NULL, *parent = NULL;
        sd_event_source *s = NULL;
        char *slash;
        int r;

        if (!e->event || !e->backend.root_path || asprintf(&events, "%s%s/cgroup.events", e->backend.root_path,
                                                            u->cgroup) < 0)
                return;
        parent = strdup(events);
        if (!parent)
                return;
        *strrchr(parent, '/') = '\0';
        slash = strrchr(parent, '/');
        *slash = '\0';
        if (!u->parent_watch) {
                r = add_watch(e, parent, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR, on_unit_parent, u->unit, &s);
                if (r < 0)
                        log_warning_errno(r, "Cannot watch %s for %s starting again, ignoring: %m", parent, u->unit);
                else
                        u->parent_watch = s;
        }
        unit_disarm_events(u);
        r = add_watch(e, events, IN_MODIFY, on_unit_events, u->unit, &s);
        if (r >= 0)
                u->events_watch = s;
        else if (r != -ENOENT)
                log_warning_errno(r, "Cannot watch %s for new processes of %s, ignoring: %m", events, u->unit);
}

/* ---- operations ---- */

/* Every member still running gets the applied adj (the identity checked at the write: a reused PID gets nothing). */
static void unit_members_write_adj(Engine *e, const UnitProtection *u) {
        for (size_t i = 0; i < u->n_members; i++)
                (void) proc_write_oom_score_adj_of(e->procfd, u->members[i].pid, -EBADF, u->members[i].starttime,
                                                   u->applied_adj);
}

static UnitOp *unit_op_new(Engine *e, UnitProtection *u, EngineDone done, void *userdata, const char *reason) {
        UnitOp *op = calloc(1, sizeof(UnitOp));

        if (!op)
                return NULL;
        *op = (UnitOp) { .engine = e, .u = u, .done = done, .userdata = userdata };
        if (reason && !(op->reason = strdup(reason))) {
                free(op);
                return NULL;
        }
        u->pending = op;
        LIST_PREPEND(e->unit_ops, op);
        return op;
}

static void unit_op_finish(UnitOp *op) {
        Engine *e = op->engine;

        if (op->u)
                op->u->pending = NULL;
        LIST_REMOVE(e->unit_ops, op);
        if (op->done)
                op->done(e, &op->result, op->userdata);
        free(op->reason);
        free(op);
        engine_unit_op_ended(e);
}

static void unit_op_settle(UnitOp *op, void (*after)(Joiner *j)) {
        op->join.after = after;
        engine_holds_settle(op->engine, &op->join);
}

static UnitOp *op_of(Joiner *j) {
        return (UnitOp *) ((char *) j - offsetof(UnitOp, join));
}

static void log_persist_failure(int r) {
        if (r < 0)
                log_warning_errno(r, "Failed to save the state, ignoring: %m");
}

/* A protect that failed: the record goes, the holds it raised go back; the first error is the result. */
static void on_rolled_back(Joiner *j) {
        UnitOp *op = op_of(j);

        log_persist_failure(engine_persist(op->engine)); /* whole: a rolled-back record went with its name */
        unit_op_finish(op);
}

/* A unit's memory and adj settings changed in memory, its share of the budget with them. */
static void unit_set_values(Engine *e, UnitProtection *u, const UnitProtection *v) {
        unit_table_account(&e->units, u, false);
        u->memory_min = v->memory_min;
        u->memory_low = v->memory_low;
        u->applied_adj = v->applied_adj;
        unit_table_account(&e->units, u, true);
}

static void unit_protect_failed(UnitOp *op, const OpError *err) {
        Engine *e = op->engine;
        UnitProtection *u = op->u;

        op->result.err = *err;
        op->result.r = err->code < 0 ? err->code : -EIO;
        if (op->update) {
                unit_set_values(e, u, &op->old);
                u->state = PROTECTION_ACTIVE;
                unit_members_write_adj(e, u);
                unit_op_settle(op, on_rolled_back);
                return;
        }
        unit_restore_adj(e, u);
        unit_table_remove(&e->units, u->unit);
        unit_disarm(u);
        unit_protection_free(u);
        op->u = NULL;
        unit_op_settle(op, on_rolled_back);
}

static void on_unit_holds_raised(Joiner *j) {
        UnitOp *op = op_of(j);
        Engine *e = op->engine;
        UnitProtection *u = op->u;
        OpError err = {};
        int r;

        if (j->error < 0)
                return unit_protect_failed(op, &j->err);
        if (op->update) {
                fault_point("unit:update-raised");
                /* New adj: the processes it changed get it (their originals stay recorded). */
                unit_members_write_adj(e, u);
        }
        r = unit_scan(e, u, &err);
        if (r < 0)
                return unit_protect_failed(op, &err);
        if (op->update)
                fault_point("unit:update-applied");
        u->state = PROTECTION_ACTIVE;
        r = engine_persist_unit(e, u->unit);
        if (r < 0) {
                op_error_set(&err, r, NULL, "Cannot save the state to %s: %s", e->config->state_directory,
                             strerror(-r));
                return unit_protect_failed(op, &err);
        }
        unit_arm(e, u);
        if (engine_unit_in_slice(e, u) || op->update)
                engine_slice_update_detached(e); /* the slice carries it (or carried it before it moved) */
        op->result.r = op->newly ? 1 : 0;
        unit_notify(e, u, true, op->newly ? "protected" : "updated");
        unit_op_finish(op);
}

/* The values asked for, with the configured defaults; checked as a Protect's are. */
static int unit_resolve(Engine *e, const UnitProtectRequest *req, UnitProtection *u, OpError *err) {
        const ProtectOptions *o = &req->options;
        const Config *c = e->config;
        uint64_t ram = physical_memory();

        if (o->descendants || o->has_oom_group || (o->has_in_place && !o->in_place))
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "A unit is protected in place with all its processes: Descendants, OOMGroup "
                                    "and InPlace=false do not apply to it.");
        u->memory_min = o->has_memory_min ? o->memory_min : c->default_memory_min;
        u->memory_low = o->has_memory_low ? o->memory_low : c->default_memory_low;
        u->applied_adj = o->has_adj ? o->adj : c->oom_score_adjust;
        if (u->applied_adj < OOMPROTECT_OOM_SCORE_ADJ_MIN || u->applied_adj > OOMPROTECT_OOM_SCORE_ADJ_MAX)
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "OOMScoreAdjust %d is out of range (-1000 to 1000).", u->applied_adj);
        if (ram > 0 && (u->memory_min > ram || u->memory_low > ram))
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "A memory protection of %" PRIu64 " bytes is more than this machine's RAM "
                                    "(%" PRIu64 " bytes).", MAX(u->memory_min, u->memory_low), ram);
        if (o->tag && (strlen(o->tag) > 255 || !text_is_safe(o->tag)))
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "A tag must be at most 255 bytes of UTF-8 without control characters.");
        return 0;
}

static int over_budget(Engine *e, uint64_t more, OpError *err) {
        char want[FORMAT_BYTES_MAX], used[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX];

        if (budget_allows(engine_memory_min_in_use(e), more, e->budget))
                return 0;
        return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                            "memory.min %s on top of %s in use exceeds MemoryMinBudget=%s.",
                            format_bytes(want, sizeof(want), more),
                            format_bytes(used, sizeof(used), engine_memory_min_in_use(e)),
                            format_bytes(budget, sizeof(budget), e->budget));
}

/*
 * ProtectUnit again: the unit may run in another cgroup now (a drop-in
 * gave it Slice=). 1 and that cgroup in *ret when it does; nothing changes.
 */
static int unit_find_moved(Engine *e, const UnitProtection *u, char **ret) {
        _cleanup_free_ char *now = NULL;

        if (unit_find_cgroup(e, u->unit, &now) < 0 || streq(now, u->cgroup) || !unit_cgroup_allowed(e, now))
                return 0;
        *ret = TAKE_PTR(now);
        return 1;
}

/*
 * The record follows the unit to its new cgroup (now, taken): the next
 * settle releases the old chain's holds (nothing leans on them) and raises
 * the new one. In memory only: the caller persists before that settle.
 */
static int unit_follow(Engine *e, UnitProtection *u, char *now, OpError *err) {
        _cleanup_free_ char *path = now;
        int r;

        /*
         * The unit's own hold goes with it: its MemoryMin= is the unit's,
         * wherever its cgroup is; only the old ancestors are released.
         */
        CgroupHold *own = hold_table_get(&e->holds, u->cgroup);
        _cleanup_free_ char *own_was = NULL; /* its old place, until the new chain is held */
        bool own_applied = false;
        if (own && !hold_table_get(&e->holds, path) && own->unit && streq(own->unit, u->unit)) {
                char *copy = strdup(path);
                if (!copy)
                        return -ENOMEM;
                own_was = own->cgroup;
                own_applied = own->applied;
                own->cgroup = copy;
                own->applied = false; /* written again at the new place */
        }
        r = unit_hold(e, path, u->unit, err);
        if (r < 0) {
                if (own_was) { /* as it was: the unit's MemoryMin= stays recorded where it was raised */
                        free(own->cgroup);
                        own->cgroup = TAKE_PTR(own_was);
                        own->applied = own_applied;
                }
                return r;
        }
        log_info("%s runs in %s now (it was in %s): its protection follows it.", u->unit, path, u->cgroup);
        unit_disarm(u);
        free(u->cgroup);
        u->cgroup = TAKE_PTR(path);
        u->n_members = 0; /* the old processes are gone with the old cgroup */
        return 0;
}

/* A drop-in's protection keeps "drop-in" as its source. 1: it changed. */
static int unit_take_source(UnitProtection *u, const UnitProtectRequest *req) {
        char *s;

        if (!req->source || !streq(req->source, "drop-in") || streq(strempty(u->source), "drop-in"))
                return 0;
        s = strdup("drop-in");
        if (!s)
                return -ENOMEM;
        free(u->source);
        u->source = s;
        return 1;
}

/*
 * ProtectUnit on a protected unit: the settings given, applied again. 0:
 * nothing to change. Every check comes before any change; then the new
 * settings, the new cgroup and the members with their originals are on
 * disk (state applying) before any process or cgroup gets them, so that
 * a daemon killed at any step restarts from a record that knows it all.
 */
static int unit_update(Engine *e, UnitProtection *u, const UnitProtectRequest *req, EngineDone done, void *userdata,
                       OpError *err) {
        const ProtectOptions *o = &req->options;
        UnitProtection want = *u, old;
        _cleanup_free_ char *moved = NULL;
        bool followed = false;
        UnitOp *op;
        int r;

        if (u->pending)
                return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BUSY,
                                    "Another operation on %s is under way; try again when it is done.", u->unit);
        if (o->descendants || o->has_oom_group || (o->has_in_place && !o->in_place))
                return unit_resolve(e, req, &want, err);
        want.memory_min = o->has_memory_min ? o->memory_min : u->memory_min;
        want.memory_low = o->has_memory_low ? o->memory_low : u->memory_low;
        want.applied_adj = o->has_adj ? o->adj : u->applied_adj;
        r = unit_take_source(u, req);
        if (r < 0)
                return r;
        bool source_changed = r > 0;
        r = unit_find_moved(e, u, &moved);
        if (want.memory_min == u->memory_min && want.memory_low == u->memory_low &&
            want.applied_adj == u->applied_adj && r == 0) {
                if (source_changed)
                        log_persist_failure(engine_persist_unit(e, u->unit)); /* only its source changed */
                return 0;
        }
        if (want.applied_adj < OOMPROTECT_OOM_SCORE_ADJ_MIN || want.applied_adj > OOMPROTECT_OOM_SCORE_ADJ_MAX)
                return op_error_set(err, -ERANGE, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "OOMScoreAdjust %d is out of range (-1000 to 1000).", want.applied_adj);
        if (want.memory_min > u->memory_min) {
                r = over_budget(e, want.memory_min - u->memory_min, err);
                if (r < 0)
                        return r;
        }
        /* Its processes (where it runs now) get the new adj: the last killable check, as on a new protection. */
        UnitProtection probe = *u;
        probe.cgroup = moved ? moved : u->cgroup;
        probe.applied_adj = want.applied_adj;
        r = guard_check_unit_killable(e, &probe, err);
        if (r < 0)
                return r;
        if (moved) {
                r = unit_follow(e, u, TAKE_PTR(moved), err);
                if (r < 0)
                        return r;
                followed = true;
        }
        /* Every process there now becomes a member first, judged by the old value (children inherit it). */
        (void) unit_scan_as(e, u, false, &(OpError) {});
        fault_point("unit:update-scanned");
        old = (UnitProtection) { .memory_min = u->memory_min, .memory_low = u->memory_low,
                                 .applied_adj = u->applied_adj };
        unit_set_values(e, u, &want);
        u->state = PROTECTION_APPLYING; /* a start after a crash writes the adj to every member again */
        r = engine_persist_unit(e, u->unit);
        op = r >= 0 ? unit_op_new(e, u, done, userdata, "updated") : NULL;
        if (!op) {
                unit_set_values(e, u, &old);
                u->state = PROTECTION_ACTIVE;
                if (followed)
                        unit_arm(e, u); /* it runs there now: its restarts are followed from there */
                if (r >= 0)
                        log_persist_failure(engine_persist_unit(e, u->unit));
                return r < 0 ? op_error_set(err, r, NULL, "Cannot save the state to %s: %s; %s keeps its settings.",
                                            e->config->state_directory, strerror(-r), u->unit)
                             : -ENOMEM;
        }
        fault_point("unit:update-persisted");
        op->update = true;
        op->old = old;
        unit_op_settle(op, on_unit_holds_raised);
        return 1;
}

/* A new record, in the table and persisted as applying; *ret is the table's. */
static int unit_prepare(Engine *e, const UnitProtectRequest *req, UnitProtection **ret, OpError *err) {
        _cleanup_(unit_protection_freep) UnitProtection *u = unit_protection_new();
        UnitProtection *added;
        int r;

        if (!u || !(u->unit = strdup(req->unit)) || !(u->source = strdup(req->source ? req->source : "unknown")) ||
            (req->options.tag && !(u->tag = strdup(req->options.tag))))
                return -ENOMEM;
        r = unit_resolve(e, req, u, err);
        if (r < 0)
                return r;
        if (!e->backend.has_cgroup)
                return op_error_set(err, -EOPNOTSUPP, OOMPROTECT_ERROR_BACKEND,
                                    "Protecting a unit by name needs a writable cgroup v2 hierarchy; the %s "
                                    "backend has none.", e->backend.vtable->name);
        r = unit_find_cgroup(e, req->unit, &u->cgroup);
        if (r == -ENOENT)
                return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_UNIT,
                                    "Unit %s is not running: it has no cgroup under %s.", req->unit,
                                    e->backend.root_path);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot look for the cgroup of %s: %s", req->unit, strerror(-r));
        if (!unit_cgroup_allowed(e, u->cgroup))
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                    "%s is in %s, inside %s, whose scopes oomprotectd makes itself.", req->unit,
                                    u->cgroup, e->config->slice);
        if (engine_count_all(e) >= e->config->max_protected)
                return op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                    "%zu processes and units are protected already (MaxProtected=%u).",
                                    engine_count_all(e), e->config->max_protected);
        r = over_budget(e, u->memory_min, err);
        if (r < 0)
                return r;
        r = guard_check_unit(e, u, err); /* MaxProtectedMemory=, the last killable */
        if (r < 0)
                return r;
        u->since_usec = unit_now_usec();
        r = unit_hold(e, u->cgroup, u->unit, err);
        if (r < 0)
                return r;
        r = unit_table_add(&e->units, u);
        if (r < 0)
                return r;
        added = TAKE_PTR(u);
        r = engine_persist_unit(e, added->unit);
        if (r < 0) {
                unit_protection_free(unit_table_remove(&e->units, added->unit));
                return op_error_set(err, r, NULL, "Cannot save the state to %s: %s; nothing was changed.",
                                    e->config->state_directory, strerror(-r));
        }
        *ret = added;
        return 0;
}

int engine_protect_unit(Engine *e, const UnitProtectRequest *req, EngineDone done, void *userdata) {
        UnitProtection *u = NULL;
        OpError err = {};
        UnitOp *op;
        int r;

        if (!unit_name_is_protectable(req->unit))
                r = op_error_set(&err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                 "\"%s\" is not the name of a unit that can be protected: give its full name with "
                                 "its type, such as nginx.service (a .service, .scope, .socket, .mount or .swap).",
                                 strna(req->unit));
        else if (req->owner != UID_ANY)
                r = op_error_set(&err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                 "Only root may protect a unit by name: a unit is the system's, not one user's.");
        else if ((u = unit_table_get(&e->units, req->unit)))
                r = unit_update(e, u, req, done, userdata, &err);
        else if ((r = unit_prepare(e, req, &u, &err)) >= 0)
                r = 2; /* a new record, to apply */
        if (r == 1)
                return 0; /* an update under way: it completes by itself */
        if (r == -ENOMEM && err.code == 0)
                op_error_set(&err, r, NULL, "Out of memory.");
        if (r < 0)
                engine_holds_drop_unused(e); /* those a failed prepare added */
        if (r <= 0) {
                unit_complete_now(e, done, userdata, r, &err); /* 0: protected already, nothing to change */
                return 0;
        }
        op = unit_op_new(e, u, done, userdata, "protected");
        if (!op) {
                unit_protection_free(unit_table_remove(&e->units, u->unit));
                engine_holds_drop_unused(e);
                log_persist_failure(engine_persist(e));
                unit_complete_now(e, done, userdata, -ENOMEM, &(OpError) { .code = -ENOMEM, .message = "Out of memory." });
                return 0;
        }
        op->newly = true;
        unit_op_settle(op, on_unit_holds_raised);
        return 0;
}

/* ---- unprotect ---- */

static void on_unit_released(Joiner *j) {
        UnitOp *op = op_of(j);
        Engine *e = op->engine;

        if (j->error < 0)
                log_warning("Failed to put back the memory protection of a cgroup %s was protected in, ignoring: %s",
                            op->u->unit, j->err.message);
        log_persist_failure(engine_persist_unit(e, op->u->unit));
        if (engine_unit_in_slice(e, op->u))
                engine_slice_update_detached(e);
        unit_notify(e, op->u, false, op->reason ? op->reason : "unprotected");
        unit_protection_free(op->u);
        op->u = NULL;
        unit_op_finish(op);
}

static int unit_restore_begin(Engine *e, UnitProtection *u, const char *reason, EngineDone done, void *userdata,
                              OpError *err) {
        ProtectionState was = u->state;
        UnitOp *op;
        int r;

        if (u->pending)
                return op_error_set(err, -EBUSY, OOMPROTECT_ERROR_BUSY,
                                    "Another operation on %s is under way; try again when it is done.", u->unit);
        u->state = PROTECTION_RESTORING;
        r = engine_persist_unit(e, u->unit);
        if (r < 0) {
                u->state = was;
                return op_error_set(err, r, NULL, "Cannot save the state to %s: %s; %s stays protected.",
                                    e->config->state_directory, strerror(-r), u->unit);
        }
        op = unit_op_new(e, u, done, userdata, reason);
        if (!op) {
                u->state = was;
                return op_error_set(err, -ENOMEM, NULL, "Out of memory.");
        }
        op->restoring = true;
        unit_disarm(u);
        unit_restore_adj(e, u);
        unit_table_remove(&e->units, u->unit); /* ours now; the settle puts the originals back */
        log_info("%s: %s is no longer protected.", reason ? reason : "unprotected", u->unit);
        unit_op_settle(op, on_unit_released);
        return 0;
}

int engine_unprotect_unit(Engine *e, const char *unit, uid_t owner, const char *reason, EngineDone done,
                          void *userdata) {
        UnitProtection *u = unit ? unit_table_get(&e->units, unit) : NULL;
        OpError err = {};
        int r;

        if (!unit_name_is_protectable(unit))
                r = op_error_set(&err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT,
                                 "\"%s\" is not the name of a unit that can be protected.", strna(unit));
        else if (owner != UID_ANY)
                r = op_error_set(&err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                 "Only root may unprotect a unit by name.");
        else if (!u)
                r = op_error_set(&err, -ENOENT, OOMPROTECT_ERROR_NOT_PROTECTED, "Unit %s is not protected.", unit);
        else
                r = unit_restore_begin(e, u, reason, done, userdata, &err);
        if (r < 0)
                unit_complete_now(e, done, userdata, r, &err);
        return 0;
}

/* RestoreOnStop=yes: every unit put back (the holds' writes finish with the process ones' settle). */
void engine_units_stop(Engine *e) {
        /* From the end: a restore takes its unit out of the table, the others keep their places. */
        for (size_t i = e->units.n; i > 0; i--) {
                UnitProtection *u = e->units.items[i - 1];
                OpError err = {};
                if (u->pending)
                        continue; /* the unprotect-many of the stop waits for it, then takes it */
                if (unit_restore_begin(e, u, "daemon stopping", NULL, NULL, &err) < 0)
                        log_warning("Failed to unprotect %s on stop, leaving it (the state says so): %s", u->unit,
                                    strna(err.message));
        }
}

/* systemd unloaded the unit (not a restart: the unit object itself is gone): its protection ends. */
void engine_unit_gone(Engine *e, const char *unit) {
        UnitProtection *u = unit_table_get(&e->units, unit);
        OpError err = {};

        if (!u || u->pending)
                return;
        if (faccessat(e->backend.rootfd, cgroup_path_to_rel(u->cgroup), F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return; /* it runs: a late signal of an earlier unload */
        if (unit_restore_begin(e, u, "unit unloaded", NULL, NULL, &err) < 0)
                log_warning("Failed to end the protection of unloaded %s: %s", unit, err.message);
}

/* ---- start and end ---- */

void engine_units_start(Engine *e, UnitProtection **records, size_t n) {
        for (size_t i = 0; i < n; i++) {
                UnitProtection *u = records[i];
                OpError err = {};
                if (!e->backend.has_cgroup || !cgroup_path_to_rel(u->cgroup) || !unit_cgroup_allowed(e, u->cgroup)) {
                        log_error("Ignoring the record of unit %s in %s/" OOMPROTECT_STATE_FILE ": its cgroup %s "
                                  "cannot be one of a protected unit here.", u->unit, e->config->state_directory,
                                  u->cgroup);
                        unit_protection_free(u);
                        continue;
                }
                if (unit_table_add(&e->units, u) < 0) {
                        unit_protection_free(u);
                        continue;
                }
                if (u->state == PROTECTION_RESTORING) {
                        log_info("%s was being unprotected when oomprotectd stopped; finishing that.", u->unit);
                        u->state = PROTECTION_ACTIVE;
                        if (unit_restore_begin(e, u, "restored at start", NULL, NULL, &err) < 0)
                                log_warning("Failed to finish unprotecting %s: %s", u->unit, err.message);
                        continue;
                }
                /*
                 * An applying one is applied again: its members get the
                 * applied adj (an update may have stopped before writing
                 * it: they carry the earlier one), then the scan and the
                 * holds' settle.
                 */
                if (u->state == PROTECTION_APPLYING)
                        unit_members_write_adj(e, u);
                u->state = PROTECTION_ACTIVE;
                if (unit_scan(e, u, &err) < 0)
                        log_warning("Failed to protect the processes of %s again: %s", u->unit, err.message);
                unit_arm(e, u);
                unit_notify(e, u, true, "restored at start");
                if (engine_unit_in_slice(e, u))
                        engine_slice_update_detached(e);
        }
}

void engine_units_free(Engine *e) {
        while (e->unit_ops) {
                UnitOp *op = e->unit_ops;
                LIST_REMOVE(e->unit_ops, op);
                if (op->u && unit_table_get(&e->units, op->u->unit) != op->u)
                        unit_protection_free(op->u); /* a restore's, out of the table */
                engine_unit_op_abandoned(op->done, op->userdata);
                free(op->reason);
                free(op);
        }
        for (size_t i = 0; i < e->units.n; i++)
                unit_disarm(e->units.items[i]);
        unit_table_done(&e->units);
}
