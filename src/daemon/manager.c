/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
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
#include "log-struct.h"
#include "log.h"
#include "manager.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "guardwatch.h"
#include "procwatch.h"

/* The longest a stop with RestoreOnStop=yes waits for the restores before exiting anyway. */
#define MANAGER_STOP_TIMEOUT_USEC (30 * 1000000ULL)
/* A process exited while an operation on its record was under way: look again this much later. */
#define MANAGER_EXIT_RETRY_USEC (50 * 1000ULL)
/* ...or its cleanup failed (the state could not be saved, say): try again, without flooding the log. */
#define MANAGER_EXIT_RETRY_FAILED_USEC (5 * 1000000ULL)

typedef struct PidWatch {
        Manager *manager;
        pid_t pid;
        sd_event_source *io;    /* the pidfd watch this belongs to (which owns it) */
        sd_event_source *retry; /* re-enables io once the pending operation may be done */
} PidWatch;

static void pid_watch_free(void *userdata) {
        PidWatch *w = userdata;

        sd_event_source_disable_unref(w->retry);
        free(w);
}

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
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        bus_done(m);
        compat_done(m);
        sd_event_source_disable_unref(m->oom_source);
        sd_event_source_disable_unref(m->stop_timer);
        /* Free the engine (and with it every protection) before the loop its watches live in. */
        if (m->engine)
                for (size_t i = 0; i < m->engine->registry.n; i++)
                        m->engine->registry.items[i]->watch =
                                sd_event_source_disable_unref(m->engine->registry.items[i]->watch);
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

static int on_exit_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PidWatch *w = userdata;

        (void) sd_event_source_set_enabled(w->io, SD_EVENT_ONESHOT);
        return 0;
}

/*
 * An operation on the record is under way (engine_process_exited() leaves
 * it to that one), or the cleanup failed: look again later, in case the
 * record is still there then. The pidfd stays readable, so the watch stays
 * off meanwhile and cannot spin.
 */
static void exit_retry_later(PidWatch *w, uint64_t usec) {
        int r;

        r = manager_arm_timer(w->manager, &w->retry, usec, 0, on_exit_retry, w);
        if (r < 0)
                log_warning_errno(r, "Failed to arm a timer to look again at PID %d, which exited; its record stays "
                                     "until the operation under way ends or oomprotectd restarts: %m", (int) w->pid);
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PidWatch *w = userdata;
        Manager *m = w->manager;
        pid_t pid = w->pid; /* w may die with the source, inside engine_process_exited */
        Protection *p = engine_get(m->engine, pid);
        int r;

        /* Readable for good once the process exited: off first, so that it cannot fire again meanwhile. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (p && p->pending) {
                exit_retry_later(w, MANAGER_EXIT_RETRY_USEC);
                return 0;
        }
        r = engine_process_exited(m->engine, pid);
        if (r < 0 && r != -ENOENT) { /* the record and its watch are still there */
                log_warning_errno(r, "Failed to clean up after PID %d exited, trying again later: %m", (int) pid);
                exit_retry_later(w, MANAGER_EXIT_RETRY_FAILED_USEC);
        }
        return 0;
}

static int watch_process(Manager *m, Protection *p) {
        sd_event_source *s = NULL;
        PidWatch *w;
        int r;

        w = malloc(sizeof(PidWatch));
        if (!w)
                return -ENOMEM;
        *w = (PidWatch) { .manager = m, .pid = p->pid };
        r = sd_event_add_io(m->event, &s, p->pidfd, EPOLLIN, on_pidfd, w);
        if (r < 0) {
                free(w);
                return r;
        }
        w->io = s;
        (void) sd_event_source_set_destroy_callback(s, pid_watch_free);
        (void) sd_event_source_set_description(s, "pidfd");
        p->watch = s;
        return 0;
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
                p->watch = sd_event_source_disable_unref(p->watch);
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
        static const EngineCallbacks callbacks = { .changed = on_engine_changed };
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
