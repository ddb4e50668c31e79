/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The systemd backend: PID 1 is the single writer of its cgroup tree
 * (systemd's CGROUP_DELEGATION.md), so everything goes through its bus API
 * and systemd keeps it across daemon-reload and daemon-reexec:
 *
 *  - a moved protection is a real unit, the transient scope
 *    oomprotect-PID.scope in the slice, made by StartTransientUnit with its
 *    MemoryMin/MemoryLow/ManagedOOMPreference, and waited for (JobRemoved);
 *  - the memory protection of the slice and of the cgroups in-place
 *    protections raise: SetUnitProperties(runtime=true); a cgroup inside a
 *    delegated subtree (no unit of its own, a container's) is written
 *    directly, which delegation allows;
 *  - restore: AttachProcessesToUnit() into the original unit where systemd
 *    allows it (delegated units), else a direct write of the original
 *    cgroup.procs, the one documented exception (DESIGN.md section 2);
 *    where the original scope is gone, a transient scope of the same name
 *    in the same slice takes the processes back to the same path. Our
 *    scope, once empty, is stopped through systemd, never removed under it.
 *
 * Every call is asynchronous (sd_bus_call_method_async); nothing blocks the
 * loop but the probe at start. What the running systemd refuses of the
 * optional properties (PIDFDs before v255, which is what systemd-run tests
 * for; OOMPolicy on scopes before v253)
 * is remembered and left out from then on, and said in memory_note.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "backend.h"
#include "cgroup.h"
#include "hold.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "proc.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define CALL_TIMEOUT_USEC (30 * 1000000ULL)
#define JOB_TIMEOUT_USEC (60 * 1000000ULL)
#define RESTORE_ATTEMPTS 16
/* How often, and how far apart, a restore waits for systemd to let go of the emptied original scope's name. */
#define NAME_WAITS 8
#define NAME_WAIT_USEC (125 * 1000ULL)

typedef enum OptionalProperty {
        OPT_PIDFDS,
        OPT_OOM_POLICY,
        OPT_MANAGED_OOM_PREFERENCE,
        _OPT_MAX,
} OptionalProperty;

static const char *const optional_names[_OPT_MAX] = {
        [OPT_PIDFDS] = "PIDFDs",
        [OPT_OOM_POLICY] = "OOMPolicy",
        [OPT_MANAGED_OOM_PREFERENCE] = "ManagedOOMPreference",
};

typedef struct Task Task;

typedef struct SystemdData {
        sd_bus *bus;
        sd_bus_slot *job_match, *reload_match, *removed_match;
        Backend *backend;
        unsigned version;
        bool refused[_OPT_MAX]; /* systemd said no: left out from then on */
        bool reloading; /* between Reloading(true) and Reloading(false) */
        Task *tasks;
} SystemdData;

/* One backend operation in flight: a call to systemd, or a job it waits for. */
struct Task {
        Task *prev, *next;
        Backend *backend;
        const Protection *p;
        sd_bus_slot *slot;
        char *job;                          /* the job path whose JobRemoved ends this step */
        sd_event_source *job_timer;         /* ...or this, when it never comes */
        void (*on_job)(Task *t, const char *result);
        BackendDone done;
        BackendRestoreDone restore_done;
        void *userdata;
        RestoreReport report;
        char *unit;    /* the unit this task works on */
        unsigned attempts;    /* rounds of moving back */
        unsigned recreations; /* scopes started to take them back */
        unsigned name_waits;  /* ...tries again later while the original's name is still systemd's */
        sd_event_source *retry_timer;
        OpError err;
};

static SystemdData *data(Backend *b) {
        return b->data;
}

/* ---- tasks ---- */

static Task *task_new(Backend *b, const Protection *p, void *userdata) {
        Task *t = calloc(1, sizeof(Task));
        SystemdData *d = data(b);

        if (!t)
                return NULL;
        *t = (Task) { .backend = b, .p = p, .userdata = userdata, .next = d->tasks };
        if (t->next)
                t->next->prev = t;
        d->tasks = t;
        return t;
}

static void task_free(Task *t) {
        SystemdData *d = data(t->backend);

        if (t->prev)
                t->prev->next = t->next;
        else
                d->tasks = t->next;
        if (t->next)
                t->next->prev = t->prev;
        sd_bus_slot_unref(t->slot);
        sd_event_source_disable_unref(t->job_timer);
        sd_event_source_disable_unref(t->retry_timer);
        free(t->job);
        free(t->unit);
        restore_report_done(&t->report);
        free(t);
}

/* Ends t with r (and t->err when r < 0): its completion runs, then t is gone. */
static void task_finish(Task *t, int r) {
        Backend *b = t->backend;
        BackendDone done = t->done;
        BackendRestoreDone restore_done = t->restore_done;
        RestoreReport report = t->report;
        OpError err = t->err;
        void *userdata = t->userdata;

        if (r < 0 && err.code == 0)
                op_error_set(&err, r, OOMPROTECT_ERROR_BACKEND, "systemd: %s", strerror(-r));
        t->report = (RestoreReport) {};
        task_free(t);
        if (restore_done) {
                backend_complete_restore(b, restore_done, r, &err, &report, userdata);
                restore_report_done(&report);
        } else if (done)
                backend_complete(b, done, r, &err, userdata);
}

/* The error systemd answered, as t->err; returns its errno. */
static int task_fail_bus(Task *t, const sd_bus_error *e, const char *what) {
        int r = sd_bus_error_get_errno(e);

        if (r <= 0)
                r = EIO;
        op_error_set(&t->err, -r, OOMPROTECT_ERROR_BACKEND, "systemd refused to %s: %s", what,
                     e->message ? e->message : e->name);
        return -r;
}

static int on_job_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Task *t = userdata;

        op_error_set(&t->err, -ETIMEDOUT, OOMPROTECT_ERROR_BACKEND, "systemd's job %s did not end within %llu s.",
                     strna(t->job), (unsigned long long) (JOB_TIMEOUT_USEC / 1000000));
        task_finish(t, -ETIMEDOUT);
        return 0;
}

/* Waits for the job in reply ("o") to end, then t->on_job(t, result); -ETIMEDOUT if it never does. */
static int task_wait_job(Task *t, sd_bus_message *reply, void (*on_job)(Task *t, const char *result)) {
        const char *job;
        int r;

        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return r;
        free(t->job);
        t->job = strdup(job);
        if (!t->job)
                return -ENOMEM;
        t->on_job = on_job;
        if (t->backend->event) {
                t->job_timer = sd_event_source_disable_unref(t->job_timer);
                r = sd_event_add_time_relative(t->backend->event, &t->job_timer, CLOCK_MONOTONIC, JOB_TIMEOUT_USEC, 0,
                                               on_job_timeout, t);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SystemdData *d = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (Task *t = d->tasks; t; t = t->next)
                if (t->job && streq(t->job, path)) {
                        void (*on_job)(Task *t, const char *result) = t->on_job;
                        free(t->job);
                        t->job = NULL;
                        t->job_timer = sd_event_source_disable_unref(t->job_timer);
                        on_job(t, result);
                        break;
                }
        return 0;
}

/* A unit went away: if it is one of our scopes and its process left it, the engine hears of it. */
static int on_unit_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SystemdData *d = userdata;
        Backend *b = d->backend;
        _cleanup_free_ char *cgroup = NULL, *scope = NULL;
        const char *unit, *path;
        pid_t pid;
        int end = 0;

        if (sd_bus_message_read(m, "so", &unit, &path) < 0)
                return 0;
        /* A reload unloads nothing for good: every unit is loaded again at once. */
        if (b->unit_gone && !d->reloading)
                b->unit_gone(b, unit, b->scope_gone_userdata);
        if (!b->scope_gone)
                return 0;
        if (sscanf(unit, OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX "%n", &pid, &end) != 1 || end == 0 ||
            unit[end] != '\0' || pid <= 0)
                return 0;
        /* A late signal for an earlier scope of the same name: the process is in the (new) scope, nothing is gone. */
        if (asprintf(&scope, "/%s/%s", b->slice_rel, unit) < 0)
                return 0;
        /* A process that exited is the pidfd watch's to report, not a removal by someone else. */
        if (proc_read_cgroup(b->procfd, pid, &cgroup) < 0 || streq(cgroup, scope))
                return 0;
        b->scope_gone(b, pid, b->scope_gone_userdata);
        return 0;
}

/* After a daemon-reexec PID 1 is a new process: subscribe again, so that JobRemoved keeps coming. */
static int on_reloading(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SystemdData *d = userdata;
        int active;

        if (sd_bus_message_read(m, "b", &active) < 0)
                return 0;
        d->reloading = active;
        if (!active)
                (void) sd_bus_call_method_async(d->bus, NULL, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                               "Subscribe", NULL, NULL, "");
        return 0;
}

/* ---- properties ---- */

static const char *preference_string(const Backend *b) {
        switch (b->config->managed_oom_preference) {
        case MANAGED_OOM_PREFERENCE_OMIT:
                return "omit";
        case MANAGED_OOM_PREFERENCE_AVOID:
                return "avoid";
        default:
                return NULL;
        }
}

static bool optional_ok(const Backend *b, OptionalProperty o) {
        const SystemdData *d = b->data;

        if (d->refused[o])
                return false;
        switch (o) {
        case OPT_PIDFDS:
                return d->version >= 255;
        case OPT_OOM_POLICY:
                return d->version >= 253;
        default:
                return true;
        }
}

/* The (sv) entry PIDs=au. */
static int append_pids_property(sd_bus_message *m, const pid_t *pids, size_t n) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "PIDs");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "au");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'u', pids, n * sizeof(pid_t));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_pids(sd_bus_message *m, const Protection *p, bool pidfds) {
        _cleanup_free_ pid_t *pids = NULL;

        if (pidfds && p->pidfd >= 0)
                return sd_bus_message_append(m, "(sv)", "PIDFDs", "ah", 1, p->pidfd);
        pids = calloc(p->n_members + 1, sizeof(pid_t));
        if (!pids)
                return -ENOMEM;
        pids[0] = p->pid;
        for (size_t i = 0; i < p->n_members; i++)
                pids[i + 1] = p->members[i].pid;
        return append_pids_property(m, pids, p->n_members + 1);
}

static int append_scope_properties(Backend *b, sd_bus_message *m, const Protection *p) {
        char description[256];
        const char *pref = preference_string(b);
        int r;

        snprintf(description, sizeof(description), "oomprotect: PID %d (%s), protected for uid %u through %s",
                 (int) p->pid, p->comm, (unsigned) p->uid, strna(p->source));
        r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", description, "Slice", "s",
                                  b->config->slice, "MemoryMin", "t", p->memory_min, "MemoryLow", "t", p->memory_low,
                                  "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = append_pids(m, p, optional_ok(b, OPT_PIDFDS));
        if (r >= 0 && pref && optional_ok(b, OPT_MANAGED_OOM_PREFERENCE))
                r = sd_bus_message_append(m, "(sv)", "ManagedOOMPreference", "s", pref);
        if (r >= 0 && optional_ok(b, OPT_OOM_POLICY))
                r = sd_bus_message_append(m, "(sv)", "OOMPolicy", "s", p->oom_group ? "kill" : "continue");
        return r;
}

/* An "unknown property" answer naming one of ours: leave it out from now on. Returns whether one was. */
static bool register_refused(Backend *b, const sd_bus_error *e) {
        SystemdData *d = b->data;

        if (!sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_PROPERTY, SD_BUS_ERROR_PROPERTY_READ_ONLY,
                                    SD_BUS_ERROR_INVALID_ARGS))
                return false;
        for (OptionalProperty o = 0; o < _OPT_MAX; o++)
                if (!d->refused[o] && e->message && strstr(e->message, optional_names[o])) {
                        d->refused[o] = true;
                        log_notice("systemd %u does not accept %s on scopes; leaving it out from now on.", d->version,
                                   optional_names[o]);
                        free(b->memory_note);
                        if (asprintf(&b->memory_note, "systemd %u does not accept %s", d->version,
                                     optional_names[o]) < 0)
                                b->memory_note = NULL;
                        return true;
                }
        return false;
}

static char *scope_name(const Protection *p) {
        char *name;

        return asprintf(&name, OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, (int) p->pid) < 0 ? NULL : name;
}

/* ---- apply: the transient scope ---- */

static void start_scope(Task *t);

/*
 * facebook oomd's mark on our scope: the one xattr written under systemd, a
 * direct write on a unit of ours, since systemd has no property for it (and
 * neither sets nor clears trusted.oomd_avoid). Gone with the scope.
 */
static void mark_scope(Task *t) {
        backend_mark_scope(t->backend, t->p->scope_cgroup);
}

static void on_scope_job(Task *t, const char *result) {
        if (streq(result, "done")) {
                mark_scope(t);
                return task_finish(t, 0);
        }
        op_error_set(&t->err, -EIO, OOMPROTECT_ERROR_BACKEND, "systemd's job to start %s ended \"%s\".", t->unit,
                     result);
        task_finish(t, -EIO);
}

/* The scope exists already (a restart in the middle of a protect): its settings again, if it holds the process. */
static int on_scope_properties_set(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        t->slot = sd_bus_slot_unref(t->slot);
        if (e)
                return task_finish(t, task_fail_bus(t, e, "tune the scope")), 0;
        mark_scope(t);
        task_finish(t, 0);
        return 0;
}

static void scope_exists(Task *t) {
        Backend *b = t->backend;
        _cleanup_free_ char *cgroup = NULL;
        int r;

        r = proc_read_cgroup(b->procfd, t->p->pid, &cgroup);
        if (r < 0 || !t->p->scope_cgroup || !streq(cgroup, t->p->scope_cgroup)) {
                op_error_set(&t->err, -EBUSY, OOMPROTECT_ERROR_BACKEND,
                             "%s exists already but does not hold PID %d; stop it first.", t->unit, (int) t->p->pid);
                return task_finish(t, -EBUSY);
        }
        r = sd_bus_call_method_async(data(b)->bus, &t->slot, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                     "SetUnitProperties", on_scope_properties_set, t, "sba(sv)", t->unit, 1, 2,
                                     "MemoryLow", "t", t->p->memory_low, "MemoryMin", "t", t->p->memory_min);
        if (r < 0)
                task_finish(t, r);
}

static int on_scope_started(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r;

        t->slot = sd_bus_slot_unref(t->slot);
        if (e && sd_bus_error_has_name(e, "org.freedesktop.systemd1.UnitExists"))
                return scope_exists(t), 0;
        if (e && register_refused(t->backend, e) && t->attempts++ < _OPT_MAX)
                return start_scope(t), 0;
        if (e)
                return task_finish(t, task_fail_bus(t, e, "start the scope")), 0;
        r = task_wait_job(t, reply, on_scope_job);
        if (r < 0)
                task_finish(t, r);
        return 0;
}

static void start_scope(Task *t) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Backend *b = t->backend;
        int r;

        r = sd_bus_message_new_method_call(data(b)->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", t->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = append_scope_properties(b, m, t->p);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call_async(data(b)->bus, &t->slot, m, on_scope_started, t, CALL_TIMEOUT_USEC);
        if (r < 0)
                task_finish(t, r);
}

static void systemd_apply(Backend *b, const Protection *p, BackendDone done, void *userdata) {
        Task *t = task_new(b, p, userdata);

        if (!t || !(t->unit = scope_name(p))) {
                if (t)
                        task_free(t);
                return backend_complete(b, done, -ENOMEM, NULL, userdata);
        }
        t->done = done;
        start_scope(t);
}

/* ---- freeze ---- */

/*
 * Not through FreezeUnit: its reply waits for the whole scope to freeze, and
 * a frozen unit that is then stopped is a state older systemd handles badly.
 * The engine's second oom_score_adj pass over what restore moved catches a
 * child born in the scope meanwhile.
 */
static void systemd_freeze(Backend *b, const Protection *p, bool freeze, BackendDone done, void *userdata) {
        backend_complete(b, done, freeze ? -EOPNOTSUPP : 0, NULL, userdata);
}

static int systemd_list_pids(Backend *b, const Protection *p, pid_t **ret, size_t *ret_n) {
        const char *rel = cgroup_path_to_rel(p->scope_cgroup);
        int r;

        if (!rel)
                return -EINVAL;
        r = cgroup_get_pids(b->rootfd, rel, ret, ret_n);
        /* ENODEV: kernfs refuses to open a file of a cgroup being removed (systemd collecting the emptied scope). */
        if (r == -ENOENT || r == -ENODEV) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return r;
}

/* ---- restore ---- */

static void restore_move(Task *t);

static void on_scope_stopped(Task *t, const char *result) {
        /* Empty already: whatever the job says, nothing of the protection is left in it. */
        task_finish(t, 0);
}

static int on_stop_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        t->slot = sd_bus_slot_unref(t->slot);
        /* Any refusal (NoSuchUnit: collected already) leaves an empty scope at worst, which systemd collects. */
        if (e)
                return task_finish(t, 0), 0;
        if (task_wait_job(t, reply, on_scope_stopped) < 0)
                task_finish(t, 0);
        return 0;
}

/* Our scope is empty: stopped through systemd (it would collect it anyway), so the next protect of this PID finds no leftover. */
static void stop_our_scope(Task *t) {
        _cleanup_free_ char *name = scope_name(t->p);
        int r;

        if (!name)
                return task_finish(t, 0);
        r = sd_bus_call_method_async(data(t->backend)->bus, &t->slot, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                     SYSTEMD_MANAGER, "StopUnit", on_stop_reply, t, "ss", name, "replace");
        if (r < 0)
                task_finish(t, 0);
}

/* The documented exception: a direct write of cgroup.procs where systemd offers no way to move a process back. */
static int write_back(Task *t, const char *cgroup, const pid_t *pids, size_t n) {
        const char *rel = cgroup_path_to_rel(cgroup);
        int r;

        if (!rel)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                r = cgroup_attach(t->backend->rootfd, rel, pids[i]);
                if (r < 0 && r != -ESRCH)
                        return r;
        }
        return 0;
}

static int on_recreated_job_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);

static void on_recreated(Task *t, const char *result) {
        if (!streq(result, "done")) {
                op_error_set(&t->err, -EIO, OOMPROTECT_ERROR_BACKEND, "systemd's job to start %s ended \"%s\".",
                             t->unit, result);
                return task_finish(t, -EIO);
        }
        restore_move(t); /* check it is empty now */
}

/*
 * The original cgroup is gone (its scope was collected when the protected
 * process, its only one, left): a transient scope of the same name in the
 * same slice takes them back, at the same path where the name is free, else
 * oomprotect-restored-PID.scope beside it.
 */
static void recreate_scope(Task *t, const pid_t *pids, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const Protection *p = t->p;
        _cleanup_free_ char *parent = NULL;
        const char *slice = "-.slice", *slash;
        int r;

        /* The slice the original was in; a scope not below a slice goes into -.slice, at the top. */
        slash = strrchr(p->original_cgroup, '/');
        if (slash && slash != p->original_cgroup) {
                const char *last;
                parent = strndup(p->original_cgroup, (size_t) (slash - p->original_cgroup));
                last = parent ? strrchr(parent, '/') : NULL;
                if (last && endswith(last + 1, ".slice"))
                        slice = last + 1;
        }
        if (streq(slice, "-.slice")) {
                free(parent);
                parent = strdup("");
        }
        free(t->unit);
        if (t->recreations == 0 && p->original_unit && endswith(p->original_unit, ".scope") &&
            endswith(p->original_cgroup, p->original_unit))
                t->unit = strdup(p->original_unit);
        else if (asprintf(&t->unit, OOMPROTECT_SCOPE_PREFIX "restored-%d" OOMPROTECT_SCOPE_SUFFIX, (int) p->pid) < 0)
                t->unit = NULL;
        t->recreations++;
        if (!t->unit)
                return task_finish(t, -ENOMEM);
        free(t->report.fallback_path);
        t->report.fallback_path = NULL;
        if (!parent || asprintf(&t->report.fallback_path, "%s/%s", parent, t->unit) < 0)
                return task_finish(t, -ENOMEM); /* parent "" for -.slice: "/x.scope" */
        t->report.fallback = !streq(t->report.fallback_path, p->original_cgroup);

        r = sd_bus_message_new_method_call(data(t->backend)->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                           SYSTEMD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", t->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)", "Description", "s", "Processes put back by oomprotect",
                                          "Slice", "s", slice, "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = append_pids_property(m, pids, n);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call_async(data(t->backend)->bus, &t->slot, m, on_recreated_job_reply, t,
                                      CALL_TIMEOUT_USEC);
        if (r < 0)
                task_finish(t, r);
}

static int on_name_wait_over(sd_event_source *s, uint64_t usec, void *userdata) {
        Task *t = userdata;

        t->retry_timer = sd_event_source_disable_unref(t->retry_timer);
        restore_move(t);
        return 0;
}

static int on_recreated_job_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r;

        t->slot = sd_bus_slot_unref(t->slot);
        if (e && t->recreations == 1 && sd_bus_error_has_name(e, "org.freedesktop.systemd1.UnitExists") &&
            t->name_waits < NAME_WAITS && t->backend->event) {
                /*
                 * The emptied original is still being collected (a Protect a
                 * moment ago): its name is free again within moments, and the
                 * processes go back under it rather than beside it.
                 */
                t->name_waits++;
                t->recreations = 0;
                r = sd_event_add_time_relative(t->backend->event, &t->retry_timer, CLOCK_MONOTONIC,
                                               NAME_WAIT_USEC, 0, on_name_wait_over, t);
                if (r < 0)
                        task_finish(t, r);
                return 0;
        }
        if (e && t->recreations < 2) {
                /* The name is taken: the next try uses oomprotect-restored-PID.scope. */
                restore_move(t);
                return 0;
        }
        if (e)
                return task_finish(t, task_fail_bus(t, e, "start a scope for the processes put back")), 0;
        r = task_wait_job(t, reply, on_recreated);
        if (r < 0)
                task_finish(t, r);
        return 0;
}

static int on_attached(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        t->slot = sd_bus_slot_unref(t->slot);
        if (e) {
                /* Not delegated (or gone): the documented exception, the same move written directly. */
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                int r = systemd_list_pids(t->backend, t->p, &pids, &n);
                if (r >= 0)
                        r = write_back(t, t->p->original_cgroup, pids, n);
                if (r == -ENOENT || r == -ENODEV) /* gone, or being removed */
                        return recreate_scope(t, pids, n), 0;
                if (r < 0) {
                        op_error_set(&t->err, r, OOMPROTECT_ERROR_BACKEND, "Cannot move the processes of %s back "
                                     "to %s: %s", strna(t->p->scope_cgroup), strna(t->p->original_cgroup),
                                     strerror(-r));
                        return task_finish(t, r), 0;
                }
        }
        restore_move(t);
        return 0;
}

/*
 * One round: whatever is in our scope goes back; when it is empty, the
 * scope is stopped. A fork in flight can refill it: a bounded number of
 * rounds, then -EBUSY.
 */
static void restore_move(Task *t) {
        _cleanup_free_ pid_t *pids = NULL;
        const Protection *p = t->p;
        _cleanup_free_ char *sub = NULL;
        const char *unit = p->original_unit;
        size_t n = 0;
        int r;

        r = systemd_list_pids(t->backend, p, &pids, &n);
        if (r < 0)
                return task_finish(t, r);
        if (n == 0)
                return stop_our_scope(t);
        if (t->attempts > RESTORE_ATTEMPTS + t->name_waits) {
                op_error_set(&t->err, -EBUSY, OOMPROTECT_ERROR_BACKEND, "%s keeps filling up while it is emptied.",
                             strna(p->scope_cgroup));
                return task_finish(t, -EBUSY);
        }
        for (size_t i = 0; i < n; i++) {
                /* Its start time now, so that the adj pass after the move judges that process, not a newcomer. */
                uint64_t st = 0;
                (void) proc_read_starttime(t->backend->procfd, pids[i], &st);
                if (restore_report_add(&t->report, pids[i], st) < 0)
                        return task_finish(t, -ENOMEM);
        }
        if (t->report.fallback || !unit || !p->original_cgroup) {
                /* Into the scope made for them, or where no unit is known: directly. */
                const char *where = t->report.fallback_path ? t->report.fallback_path : p->original_cgroup;
                r = write_back(t, where ? where : "/", pids, n);
                if (r < 0)
                        return task_finish(t, r);
                t->attempts++;
                return restore_move(t);
        }
        /* The sub-cgroup of the unit the process was in ("" for the unit's own). */
        const char *at = strstr(p->original_cgroup, unit);
        sub = strdup(at && at[strlen(unit)] == '/' ? at + strlen(unit) + 1 : "");
        if (!sub)
                return task_finish(t, -ENOMEM);
        t->attempts++;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        r = sd_bus_message_new_method_call(data(t->backend)->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "AttachProcessesToUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", unit, sub);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'u', pids, n * sizeof(pid_t));
        if (r >= 0)
                r = sd_bus_call_async(data(t->backend)->bus, &t->slot, m, on_attached, t, CALL_TIMEOUT_USEC);
        if (r < 0)
                task_finish(t, r);
}

static void systemd_restore(Backend *b, const Protection *p, BackendRestoreDone done, void *userdata) {
        Task *t = task_new(b, p, userdata);

        if (!t) {
                RestoreReport none = {};
                return backend_complete_restore(b, done, -ENOMEM, NULL, &none, userdata);
        }
        t->restore_done = done;
        restore_move(t);
}

/* ---- memory protection of units ---- */

static int on_unit_properties_set(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Task *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        t->slot = sd_bus_slot_unref(t->slot);
        task_finish(t, e ? task_fail_bus(t, e, "set MemoryMin/MemoryLow") : 0);
        return 0;
}

static void systemd_set_memory_protection(Backend *b, const char *cgroup, const char *unit,
                                          const CgroupProtection *want, BackendDone done, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *slice_path = NULL;
        const char *pref = want->oomd_preference >= 0
                                   ? managed_oom_preference_to_string((ManagedOOMPreference) want->oomd_preference)
                                   : NULL;
        Task *t;
        int r;

        if (!unit && asprintf(&slice_path, "/%s", b->slice_rel) >= 0 && streq(cgroup, slice_path))
                unit = b->config->slice; /* our own slice */
        if (!unit) {
                /* Inside a delegated subtree: the delegate may write it, and so may we. */
                OpError e = {};
                r = backend_write_memory_protection(b, cgroup, want, &e);
                return backend_complete(b, done, r, &e, userdata);
        }
        t = task_new(b, NULL, userdata);
        if (!t || !(t->unit = strdup(unit))) {
                if (t)
                        task_free(t);
                return backend_complete(b, done, -ENOMEM, NULL, userdata);
        }
        t->done = done;
        /*
         * The runtime drop-ins systemd writes for this call are the engine's
         * to put back (engine-hold.c): only it knows, when the reply comes,
         * whether the hold is still released or was taken up again meanwhile.
         */
        r = sd_bus_message_new_method_call(data(b)->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "SetUnitProperties");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", unit, 1);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        /*
         * In the order their drop-in files sort (50-ManagedOOMPreference,
         * 50-MemoryLow, 50-MemoryMin): systemd 252 appends each file it
         * writes to the unit's list of drop-ins and compares that list, in
         * order, with the sorted one on disk; out of order, the unit would
         * say NeedDaemonReload=yes (and `systemctl restart` warn that its
         * drop-ins changed) for as long as it is protected.
         */
        if (r >= 0 && pref && optional_ok(b, OPT_MANAGED_OOM_PREFERENCE))
                r = sd_bus_message_append(m, "(sv)", "ManagedOOMPreference", "s", pref);
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)", "MemoryLow", "t", want->low, "MemoryMin", "t", want->min);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call_async(data(b)->bus, &t->slot, m, on_unit_properties_set, t, CALL_TIMEOUT_USEC);
        if (r < 0)
                task_finish(t, r);
}

static int systemd_read_oom_kills(Backend *b, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = cgroup_read(b->rootfd, b->slice_rel, "memory.events", &text);
        if (r < 0)
                return r == -ENOENT ? -EOPNOTSUPP : r;
        return cgroup_parse_keyed(text, "oom_kill", ret);
}

/* ---- start ---- */

static int probe_version(SystemdData *d, OpError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *version = NULL;
        int r;

        r = sd_bus_get_property_string(d->bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "Version", &error,
                                       &version);
        if (r < 0)
                return op_error_set(e, r, NULL, "systemd does not answer on the system bus: %s",
                                    error.message ? error.message : strerror(-r));
        d->version = (unsigned) strtoul(version, NULL, 10);
        return 0;
}

/* DefaultTasksMax=: every scope, ours too, gets it; a pids.max no lower is no limit a move escapes. */
static void probe_default_tasks_max(Backend *b, SystemdData *d) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v;

        if (sd_bus_get_property_trivial(d->bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "DefaultTasksMax",
                                        &error, 't', &v) >= 0)
                b->pids_floor = v;
}

/*
 * The slice is a unit that exists before its first scope: its cgroup (and
 * the memory.events the daemon watches for OOM kills in it) from the start.
 * Before the loop runs, so a short synchronous wait.
 */
static int start_slice(Backend *b, SystemdData *d, OpError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(d->bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "StartUnit", &error, NULL,
                               "ss", b->config->slice, "replace");
        if (r < 0)
                return op_error_set(e, r, NULL, "systemd cannot start %s: %s", b->config->slice,
                                    error.message ? error.message : strerror(-r));
        for (unsigned i = 0; i < 100 && faccessat(b->rootfd, b->slice_rel, F_OK, 0) < 0; i++) {
                (void) sd_bus_process(d->bus, NULL);
                (void) sd_bus_wait(d->bus, 20 * 1000);
        }
        return 0;
}

static int systemd_init(Backend *b, OpError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        SystemdData *d;
        int r;

        d = calloc(1, sizeof(SystemdData));
        if (!d)
                return -ENOMEM;
        b->data = d;
        d->backend = b;
        r = sd_bus_open_system(&d->bus);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot connect to the system bus to reach systemd: %s",
                                    strerror(-r));
        (void) sd_bus_set_description(d->bus, "systemd-backend");
        r = probe_version(d, e);
        if (r < 0)
                return r;
        probe_default_tasks_max(b, d);
        /* JobRemoved is only sent to subscribers. */
        r = sd_bus_call_method(d->bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "Subscribe", &error, NULL, "");
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot subscribe to systemd's signals: %s",
                                    error.message ? error.message : strerror(-r));
        r = sd_bus_match_signal(d->bus, &d->job_match, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                on_job_removed, d);
        if (r >= 0)
                r = sd_bus_match_signal(d->bus, &d->reload_match, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                        "Reloading", on_reloading, d);
        if (r >= 0)
                r = sd_bus_match_signal(d->bus, &d->removed_match, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                        "UnitRemoved", on_unit_removed, d);
        if (r < 0)
                return op_error_set(e, r, NULL, "Cannot watch systemd's jobs: %s", strerror(-r));
        if (b->event) {
                r = sd_bus_attach_event(d->bus, b->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0)
                        return op_error_set(e, r, NULL, "Cannot attach to the event loop: %s", strerror(-r));
        }
        r = start_slice(b, d, e);
        if (r < 0)
                return r;
        b->has_cgroup = true;
        b->has_memory = cgroup_has_controller(b->rootfd, ".", "memory");
        if (!b->has_memory)
                b->memory_note = strdup("the cgroup2 hierarchy has no memory controller: MemoryMin= has no effect");
        else if (!optional_ok(b, OPT_OOM_POLICY) &&
                 asprintf(&b->memory_note, "systemd %u has no OOMPolicy= for scopes (253 and later): OOMGroup= "
                          "(memory.oom.group) is not applied to moved protections", d->version) < 0)
                b->memory_note = NULL;
        return 0;
}

static void systemd_done(Backend *b) {
        SystemdData *d = b->data;

        if (!d)
                return;
        while (d->tasks)
                task_free(d->tasks); /* cancelled: their completions never run */
        sd_bus_slot_unref(d->job_match);
        sd_bus_slot_unref(d->reload_match);
        sd_bus_slot_unref(d->removed_match);
        sd_bus_flush_close_unref(d->bus);
        free(d);
        b->data = NULL;
}

const BackendVTable backend_systemd_vtable = {
        .name = "systemd",
        .init = systemd_init,
        .done = systemd_done,
        .apply = systemd_apply,
        .freeze = systemd_freeze,
        .list_pids = systemd_list_pids,
        .restore = systemd_restore,
        .set_memory_protection = systemd_set_memory_protection,
        .read_oom_kills = systemd_read_oom_kills,
};
