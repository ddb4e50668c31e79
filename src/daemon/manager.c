/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <systemd/sd-daemon.h>

#include "auth.h"
#include "bus.h"
#include "compat.h"
#include "list.h"
#include "log-struct.h"
#include "log.h"
#include "manager.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "proc.h"
#include "guardwatch.h"
#include "procwatch.h"

/* The longest a stop with RestoreOnStop=yes waits for the restores before exiting anyway. */
#define MANAGER_STOP_TIMEOUT_USEC (30 * 1000000ULL)
/* A process exited while an operation on its record was under way: look again this much later. */
#define MANAGER_EXIT_RETRY_USEC (50 * 1000ULL)
/* ...or its cleanup failed (the state could not be saved, say): try again, without flooding the log. */
#define MANAGER_EXIT_RETRY_FAILED_USEC (5 * 1000000ULL)
/* Without pidfds (engine.c's open_pidfd()): how often the processes are looked at for their exit. */
#define MANAGER_EXIT_POLL_USEC (1000 * 1000ULL)

/*
 * A process exited while an operation on its record was under way, or its
 * cleanup failed: its pidfd is armed again this much later (it stays
 * readable, so it fires again at once if the record is still there).
 */
struct ExitRetry {
        Manager *manager;
        pid_t pid;
        sd_event_source *timer;
        ExitRetry *prev, *next;
};

static ExitRetry *exit_retry_free(ExitRetry *r) {
        LIST_REMOVE(r->manager->exit_retries, r);
        sd_event_source_disable_unref(r->timer);
        free(r);
        return NULL;
}

static void unwatch_process(Manager *m, Protection *p);

static int config_read(const char *path, Config *c) {
        _cleanup_free_ char *dropins = NULL;
        int r;

        r = config_init(c);
        if (r < 0)
                return r;
        if (asprintf(&dropins, "%s.d", path) < 0)
                return -ENOMEM;
        r = config_load(c, path, false, dropins);
        return r < 0 ? r : 0;
}

/* AllowGroup= to a gid, once: getgrnam() goes through NSS (a file parse, or a bus call). */
static void resolve_allow_group(Manager *m) {
        m->allow_gid = auth_resolve_group(m->config.allow_group);
        if (!isempty(m->config.allow_group) && m->allow_gid == (gid_t) -1)
                log_warning("AllowGroup=%s is not a group on this system; only root may change protections.",
                            m->config.allow_group);
}

int manager_new(const char *config_path, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return log_oom();
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return log_oom();
        r = config_read(config_path, &m->config);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", config_path);
        resolve_allow_group(m);
        m->exit_epoll = -EBADF;
        /*
         * Fixed thresholds: a large buffer (a ListProtected reply, status or state.json at 10,000 records) is
         * mapped apart and given back when freed. glibc's default raises both after the first such free, and
         * then keeps that much heap for good.
         */
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        (void) mallopt(M_TRIM_THRESHOLD, 256 * 1024);
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        r = work_queue_new(m->event, &m->work);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the work queue: %m");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        bus_done(m);
        compat_done(m);
        m->work = work_queue_free(m->work); /* after the front ends, which cancel their items */
        sd_event_source_disable_unref(m->oom_source);
        sd_event_source_disable_unref(m->stop_timer);
        sd_event_source_disable_unref(m->exit_poll);
        /* Free the engine (and with it every protection) before the loop its watches live in. */
        if (m->engine)
                for (size_t i = 0; i < m->engine->registry.n; i++)
                        unwatch_process(m, m->engine->registry.items[i]);
        while (m->exit_retries)
                exit_retry_free(m->exit_retries);
        sd_event_source_disable_unref(m->exit_source);
        safe_close(m->exit_epoll);
        engine_free(m->engine);
        procwatch_done(m); /* after the engine: no completion of a rule's protect can come any more */
        guardwatch_done(m);
        sd_event_unref(m->event);
        config_done(&m->config);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_add_listener(Manager *m, const ManagerListener *l) {
        if (m->n_listeners >= MANAGER_LISTENERS_MAX)
                return -ENOSPC;
        m->listeners[m->n_listeners++] = *l;
        return 0;
}

int manager_arm_timer(Manager *m, sd_event_source **s, uint64_t usec, uint64_t accuracy, sd_event_time_handler_t cb,
                      void *userdata) {
        int r;

        if (!*s)
                return sd_event_add_time_relative(m->event, s, CLOCK_MONOTONIC, usec, accuracy, cb, userdata);
        r = sd_event_source_set_time_relative(*s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

void manager_log_unprotect_report(pid_t pid, const UnprotectReport *report) {
        if (report->fallback)
                log_notice("The original cgroup of PID %d is gone; its %zu process(es) went to %s instead.", (int) pid,
                           report->n_moved, strna(report->fallback_path));
}

/*
 * Every protected process's pidfd is in one epoll set of our own, each armed
 * once (EPOLLONESHOT) with its pid: the loop has one event source for all of
 * them, instead of an sd_event source (and its allocations) per protection.
 */
static int exit_watch_arm(Manager *m, const Protection *p, int op) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = (uint64_t) p->pid };

        if (epoll_ctl(m->exit_epoll, op, p->pidfd, &ev) < 0)
                return negative_errno();
        return 0;
}

static int on_exit_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ExitRetry *retry = userdata;
        Manager *m = retry->manager;
        Protection *p = engine_get(m->engine, retry->pid);

        exit_retry_free(retry);
        if (p && p->watch)
                (void) exit_watch_arm(m, p, EPOLL_CTL_MOD);
        return 0;
}

/*
 * An operation on the record is under way (engine_process_exited() leaves
 * it to that one), or the cleanup failed: look again later, in case the
 * record is still there then. The pidfd is disarmed meanwhile (one shot),
 * so it cannot spin.
 */
static void exit_retry_later(Manager *m, pid_t pid, uint64_t usec) {
        ExitRetry *retry = calloc(1, sizeof(ExitRetry));
        int r;

        r = retry ? sd_event_add_time_relative(m->event, &retry->timer, CLOCK_MONOTONIC, usec, 0, on_exit_retry, retry)
                  : -ENOMEM;
        if (r < 0) {
                free(retry);
                log_warning_errno(r, "Failed to arm a timer to look again at PID %d, which exited; its record stays "
                                     "until the operation under way ends or oomprotectd restarts: %m", (int) pid);
                return;
        }
        retry->manager = m;
        retry->pid = pid;
        LIST_PREPEND(m->exit_retries, retry);
}

static void process_exited(Manager *m, pid_t pid) {
        Protection *p = engine_get(m->engine, pid);
        int r;

        if (!p || !p->watch)
                return; /* unprotected meanwhile */
        if (p->pending) {
                exit_retry_later(m, pid, MANAGER_EXIT_RETRY_USEC);
                return;
        }
        r = engine_process_exited(m->engine, pid);
        if (r < 0 && r != -ENOENT) { /* the record and its watch are still there */
                log_warning_errno(r, "Failed to clean up after PID %d exited, trying again later: %m", (int) pid);
                exit_retry_later(m, pid, MANAGER_EXIT_RETRY_FAILED_USEC);
        }
}

static int on_exits(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct epoll_event ev[32];
        int n;

        /* Level-triggered: more than 32 at once, and the loop comes back for the rest. */
        n = epoll_wait(fd, ev, ELEMENTSOF(ev), 0);
        for (int i = 0; i < n; i++)
                process_exited(userdata, (pid_t) ev[i].data.u64);
        return 0;
}

/*
 * No pidfd to watch (the kernel has no pidfd_open): every protection
 * without one is looked at once a second while there is any, and one whose
 * (pid, start time) no longer runs is cleaned up as an exit. The timer
 * stops when none is left, so an idle daemon still has no wakeups.
 */
static int on_exit_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        const Registry *reg = &m->engine->registry;
        _cleanup_free_ pid_t *gone = calloc(reg->n + 1, sizeof(pid_t));
        size_t n_gone = 0, n_left = 0;

        if (!gone)
                return manager_arm_timer(m, &m->exit_poll, MANAGER_EXIT_POLL_USEC, 0, on_exit_poll, m);
        for (size_t i = 0; i < reg->n; i++) {
                const Protection *p = reg->items[i];
                if (p->pidfd >= 0)
                        continue;
                if (!p->pending && !proc_same_process(m->engine->procfd, p->pid, p->starttime))
                        gone[n_gone++] = p->pid;
                else
                        n_left++;
        }
        for (size_t i = 0; i < n_gone; i++) {
                int r = engine_process_exited(m->engine, gone[i]);
                if (r < 0 && r != -ENOENT) {
                        log_warning_errno(r, "Failed to clean up after PID %d exited, trying again later: %m",
                                          (int) gone[i]);
                        n_left++;
                }
        }
        if (n_left == 0)
                return 0;
        return manager_arm_timer(m, &m->exit_poll, MANAGER_EXIT_POLL_USEC, 0, on_exit_poll, m);
}

static int watch_process(Manager *m, Protection *p) {
        int r;

        if (p->pidfd < 0) /* identified by (pid, start time) alone */
                return manager_arm_timer(m, &m->exit_poll, MANAGER_EXIT_POLL_USEC, 0, on_exit_poll, m);

        if (m->exit_epoll < 0) {
                m->exit_epoll = epoll_create1(EPOLL_CLOEXEC);
                if (m->exit_epoll < 0)
                        return negative_errno();
                r = sd_event_add_io(m->event, &m->exit_source, m->exit_epoll, EPOLLIN, on_exits, m);
                if (r < 0) {
                        m->exit_epoll = safe_close(m->exit_epoll);
                        return r;
                }
                (void) sd_event_source_set_description(m->exit_source, "pidfds");
        }
        r = exit_watch_arm(m, p, EPOLL_CTL_ADD);
        if (r == -EEXIST)
                r = exit_watch_arm(m, p, EPOLL_CTL_MOD);
        if (r < 0)
                return r;
        p->watch = m; /* a token: watched */
        return 0;
}

static void unwatch_process(Manager *m, Protection *p) {
        if (!p->watch)
                return;
        /* Explicitly: the pidfd may live on elsewhere (handed to systemd), and with it its place in the set. */
        if (p->pidfd >= 0)
                (void) epoll_ctl(m->exit_epoll, EPOLL_CTL_DEL, p->pidfd, NULL);
        p->watch = NULL;
}

static void on_engine_changed(Engine *e, Protection *p, bool protected, const char *reason, void *userdata) {
        Manager *m = userdata;
        int r;

        if (protected) {
                r = watch_process(m, p);
                if (r < 0)
                        log_warning_errno(r, "Failed to watch PID %d for its exit, ignoring: %m", (int) p->pid);
                log_struct_internal(LOG_INFO, 0, OOMPROTECT_MESSAGE_PROTECTED, p->pid, p->original_unit,
                                    "Protected PID %d (%s) through %s%s%s: oom_score_adj %d -> %d%s%s.", (int) p->pid,
                                    p->comm, p->source, streq(reason, "protected") ? "" : ", ",
                                    streq(reason, "protected") ? "" : reason, p->original_adj, p->applied_adj,
                                    p->scope_cgroup ? ", in " : p->original_cgroup ? ", in place in " : "",
                                    p->scope_cgroup ? p->scope_cgroup : strempty(p->original_cgroup));
        } else {
                unwatch_process(m, p);
                log_struct_internal(LOG_INFO, 0, streq(reason, "exited") ? OOMPROTECT_MESSAGE_EXITED
                                                                        : OOMPROTECT_MESSAGE_UNPROTECTED,
                                    p->pid, p->original_unit, "Unprotected PID %d (%s), %s%s%s.", (int) p->pid,
                                    p->comm, reason, p->original_cgroup ? ": back in " : "",
                                    strempty(p->original_cgroup));
        }
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].changed)
                        m->listeners[i].changed(m, p, protected, reason, m->listeners[i].userdata);
        (void) sd_notifyf(false, "STATUS=Protecting %zu process(es).", engine_count(e));
}

static void on_engine_unit_changed(Engine *e, const UnitProtection *u, bool protected, const char *reason,
                                   void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].unit_changed)
                        m->listeners[i].unit_changed(m, u, protected, reason, m->listeners[i].userdata);
}

static int on_memory_events(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        uint64_t n = 0;
        char cgroup[4096];

        if (engine_check_oom_kills(m->engine, &n) < 0 || n == 0)
                return 0;
        snprintf(cgroup, sizeof(cgroup), "/%s", m->engine->backend.slice_rel);
        log_struct_internal(LOG_CRIT, 0, OOMPROTECT_MESSAGE_OOM_KILL, 0, m->config.slice,
                            "The kernel OOM-killed %" PRIu64 " process(es) inside %s: protection failed. "
                            "Is MemoryMinBudget= too small, or the protected processes themselves out of memory?",
                            n, cgroup);
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].oom_kill)
                        m->listeners[i].oom_kill(m, cgroup, n, m->listeners[i].userdata);
        return 0;
}

static int watch_oom_kills(Manager *m) {
        Backend *b = &m->engine->backend;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!b->has_memory)
                return 0;
        if (asprintf(&path, "%s/%s/memory.events", b->root_path, b->slice_rel) < 0)
                return -ENOMEM;
        r = sd_event_add_inotify(m->event, &m->oom_source, path, IN_MODIFY, on_memory_events, m);
        if (r < 0)
                return log_warning_errno(r, "Failed to watch %s, OOM kills will not be reported: %m", path);
        return 0;
}

/* ---- stopping ---- */

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("Restoring the protections did not finish within %llu s (%u operation(s) still under way); "
                    "exiting anyway. The next start finishes them from the saved state.",
                    (unsigned long long) (MANAGER_STOP_TIMEOUT_USEC / 1000000ULL), engine_pending(m->engine));
        return sd_event_exit(m->event, 0);
}

static void on_engine_stopped(Engine *e, const EngineResult *res, void *userdata) {
        Manager *m = userdata;

        if (res->r < 0)
                log_warning("Failed to restore protections on stop: %s",
                            res->err.code != 0 ? res->err.message : strerror(-res->r));
        else if (m->config.restore_on_stop)
                log_info("Restored %d protection(s).", res->r);
        m->stop_timer = sd_event_source_disable_unref(m->stop_timer);
        (void) sd_event_exit(m->event, 0);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->stopping) {
                log_warning("Received %s again while restoring the protections; exiting now. The next start "
                            "finishes the restores from the saved state.", strsignal((int) si->ssi_signo));
                return sd_event_exit(m->event, 0);
        }
        m->stopping = true;
        log_info("Received %s, stopping%s.", strsignal((int) si->ssi_signo),
                 m->config.restore_on_stop ? " and restoring every protection (RestoreOnStop=yes)"
                                           : "; protections stay in place (RestoreOnStop=no)");
        (void) sd_notify(false, "STOPPING=1");
        if (m->config.restore_on_stop) {
                r = sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC, MANAGER_STOP_TIMEOUT_USEC,
                                               0, on_stop_timeout, m);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the stop timer, waiting for the restores without a "
                                             "limit: %m");
        }
        /* Completes at once with RestoreOnStop=no, else when every restore is done. */
        r = engine_stop(m->engine, on_engine_stopped, m);
        if (r < 0) {
                log_warning_errno(r, "Failed to restore protections on stop: %m");
                return sd_event_exit(m->event, 0);
        }
        return 0;
}

/* ---- reloading ---- */

static bool streq_or_both_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}

/* The keys the engine and backend were opened with: a change waits for the next start. */
static void warn_restart_keys(const Config *old, const Config *new) {
        const struct {
                const char *key, *was, *now;
        } keys[] = {
                { "Backend", backend_type_to_string(old->backend), backend_type_to_string(new->backend) },
                { "CgroupRoot", old->cgroup_root, new->cgroup_root },
                { "Slice", old->slice, new->slice },
                { "StateDirectory", old->state_directory, new->state_directory },
                { "CompatDirectory", old->compat_directory, new->compat_directory },
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!streq_or_both_null(keys[i].was, keys[i].now))
                        log_warning("%s= changed from %s to %s; the change takes effect at the next start, "
                                    "%s stays in use until then.", keys[i].key, strna(keys[i].was),
                                    strna(keys[i].now), strna(keys[i].was));
}

static void swap_string(char **a, char **b) {
        char *t = *a;

        *a = *b;
        *b = t;
}

int manager_reload(Manager *m) {
        Config new = {};
        char budget[FORMAT_BYTES_MAX];
        int r;

        r = config_read(m->config_path, &new);
        if (r < 0) {
                config_done(&new);
                return log_error_errno(r, "Failed to read %s, keeping the running configuration: %m",
                                       m->config_path);
        }
        warn_restart_keys(&m->config, &new);
        /* In place: the engine and the backend hold &m->config. The old strings go with new. */
        swap_string(&m->config.allow_group, &new.allow_group);
        swap_string(&m->config.memory_min_budget, &new.memory_min_budget);
        swap_string(&m->config.rule_directories, &new.rule_directories);
        swap_string(&m->config.max_protected_memory, &new.max_protected_memory);
        m->config.default_memory_min = new.default_memory_min;
        m->config.default_memory_low = new.default_memory_low;
        m->config.oom_score_adjust = new.oom_score_adjust;
        m->config.oom_group = new.oom_group;
        m->config.managed_oom_preference = new.managed_oom_preference;
        m->config.max_protected = new.max_protected;
        m->config.restore_on_stop = new.restore_on_stop;
        config_done(&new);
        resolve_allow_group(m);
        if (m->engine)
                m->engine->budget = config_budget_bytes(&m->config, physical_memory());
        log_info("Reloaded %s: AllowGroup=%s, DefaultMemoryMin=%" PRIu64 ", DefaultMemoryLow=%" PRIu64
                 ", OOMScoreAdjust=%d, MaxProtected=%u, MemoryMinBudget=%s (%s).", m->config_path,
                 strna(m->config.allow_group), m->config.default_memory_min, m->config.default_memory_low,
                 m->config.oom_score_adjust, m->config.max_protected, strna(m->config.memory_min_budget),
                 m->engine && m->engine->budget ? format_bytes(budget, sizeof(budget), m->engine->budget)
                                                : "no limit");
        return 0;
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) sd_notify(false, "RELOADING=1");
        (void) manager_reload(m);
        (void) procwatch_reload(m);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Protecting %zu process(es).", engine_count(m->engine));
        return 0;
}

/* ---- starting ---- */

static void on_engine_started(Engine *e, const EngineResult *res, void *userdata) {
        Manager *m = userdata;

        m->started = true;
        m->start_result = res->r;
        if (res->r < 0)
                log_error("Failed to reconcile the saved state: %s",
                          res->err.code != 0 ? res->err.message : strerror(-res->r));
}

/* engine_start() may complete from the loop (a backend that answers later): run it until then. */
static int wait_started(Manager *m) {
        int r;

        while (!m->started) {
                r = sd_event_run(m->event, UINT64_MAX);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed while starting: %m");
        }
        return m->start_result;
}

static int open_engine(Manager *m) {
        static const EngineCallbacks callbacks = { .changed = on_engine_changed, .unit_changed = on_engine_unit_changed };
        char budget[FORMAT_BYTES_MAX];
        OpError err = {};
        int r;

        r = engine_new(&m->config, m->event, &callbacks, m, &m->engine, &err);
        if (r < 0)
                return log_error_errno(r, "Failed to start the engine: %s", err.message);
        log_info("Backend %s%s%s, slice %s, MemoryMinBudget=%s (%s).", m->engine->backend.vtable->name,
                 m->engine->backend.root_path ? " at " : "", strempty(m->engine->backend.root_path),
                 m->config.slice, m->config.memory_min_budget,
                 m->engine->budget ? format_bytes(budget, sizeof(budget), m->engine->budget) : "no limit");
        if (m->engine->backend_note)
                log_warning("Cgroup protection is unavailable: %s.", m->engine->backend_note);
        else if (m->engine->backend.memory_note)
                log_warning("Backend %s: %s.", m->engine->backend.vtable->name, m->engine->backend.memory_note);
        return 0;
}

int manager_start(Manager *m) {
        int r;

        r = open_engine(m);
        if (r < 0)
                return r;
        r = engine_start(m->engine, on_engine_started, m);
        if (r < 0)
                return r;
        r = wait_started(m);
        if (r < 0)
                return r;
        log_info("%d protection(s) restored from the saved state.", r);
        /*
         * The load's JSON trees are freed, but scattered among the records that stay: without this glibc keeps
         * their pages (measured: 2.5 kB of RSS a record at 1,000 records). Once, not per request.
         */
        (void) malloc_trim(0);
        r = watch_oom_kills(m);
        if (r < 0 && r != -ENOENT)
                return r;
        r = guardwatch_setup(m);
        if (r < 0)
                return r;
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_stop_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_stop_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGHUP, on_reload_signal, m);
        return 0;
}

int manager_run(Manager *m) {
        (void) sd_notifyf(false, "READY=1\nSTATUS=Protecting %zu process(es).", engine_count(m->engine));
        return sd_event_loop(m->event);
}
