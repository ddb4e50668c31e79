/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <systemd/sd-daemon.h>

#include "bus.h"
#include "compat.h"
#include "log.h"
#include "manager.h"
#include "oomprotect/protocol.h"
#include "parse.h"

typedef struct PidWatch {
        Manager *manager;
        pid_t pid;
} PidWatch;

int manager_new(const char *config_path, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        _cleanup_free_ char *dropins = NULL;
        int r;

        if (!m)
                return log_oom();
        r = config_init(&m->config);
        if (r < 0)
                return log_error_errno(r, "Failed to initialize the configuration: %m");
        m->config_path = strdup(config_path);
        if (!m->config_path || asprintf(&dropins, "%s.d", config_path) < 0)
                return log_oom();
        r = config_load(&m->config, config_path, false, dropins);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", config_path);
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
        /* Free the engine (and with it every protection) before the loop its watches live in. */
        if (m->engine)
                for (size_t i = 0; i < m->engine->registry.n; i++)
                        m->engine->registry.items[i]->watch =
                                sd_event_source_disable_unref(m->engine->registry.items[i]->watch);
        engine_free(m->engine);
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

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PidWatch *w = userdata;
        Manager *m = w->manager;
        pid_t pid = w->pid; /* w dies with the source, inside engine_process_exited */
        int r;

        r = engine_process_exited(m->engine, pid);
        if (r < 0)
                log_warning_errno(r, "Failed to clean up after PID %d exited, ignoring: %m", (int) pid);
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
        (void) sd_event_source_set_destroy_callback(s, free);
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
                log_info("Protected PID %d (%s) through %s%s%s: oom_score_adj %d -> %d%s%s.", (int) p->pid, p->comm,
                         p->source, streq(reason, "protected") ? "" : ", ", streq(reason, "protected") ? "" : reason,
                         p->original_adj, p->applied_adj, p->scope_cgroup ? ", in " : "", strempty(p->scope_cgroup));
        } else {
                p->watch = sd_event_source_disable_unref(p->watch);
                log_info("Unprotected PID %d (%s), %s%s%s.", (int) p->pid, p->comm, reason,
                         p->original_cgroup ? ": back in " : "", strempty(p->original_cgroup));
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
        log_crit("The kernel OOM-killed %" PRIu64 " process(es) inside %s: protection failed. "
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

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        int r;

        log_info("Received %s, stopping%s.", strsignal((int) si->ssi_signo),
                 m->config.restore_on_stop ? " and restoring every protection (RestoreOnStop=yes)"
                                           : "; protections stay in place (RestoreOnStop=no)");
        (void) sd_notify(false, "STOPPING=1");
        r = engine_stop(m->engine);
        if (r < 0)
                log_warning_errno(r, "Failed to restore protections on stop: %m");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int manager_start(Manager *m) {
        static const EngineCallbacks callbacks = { .changed = on_engine_changed };
        OpError err = {};
        int r;

        r = engine_new(&m->config, &callbacks, m, &m->engine, &err);
        if (r < 0)
                return log_error_errno(r, "Failed to start the engine: %s", err.message);
        char budget[FORMAT_BYTES_MAX];
        log_info("Backend %s%s%s, slice %s, MemoryMinBudget=%s (%s).", m->engine->backend.vtable->name,
                 m->engine->backend.root_path ? " at " : "", strempty(m->engine->backend.root_path),
                 m->config.slice, m->config.memory_min_budget,
                 m->engine->budget ? format_bytes(budget, sizeof(budget), m->engine->budget) : "no limit");
        if (m->engine->backend_note)
                log_warning("Cgroup protection is unavailable: %s.", m->engine->backend_note);
        else if (m->engine->backend.memory_note)
                log_warning("Memory protection is unavailable: %s.", m->engine->backend.memory_note);

        r = engine_start(m->engine);
        if (r < 0)
                return r;
        log_info("%d protection(s) restored from the saved state.", r);
        r = watch_oom_kills(m);
        if (r < 0 && r != -ENOENT)
                return r;
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        return 0;
}

int manager_run(Manager *m) {
        (void) sd_notifyf(false, "READY=1\nSTATUS=Protecting %zu process(es).", engine_count(m->engine));
        return sd_event_loop(m->event);
}
