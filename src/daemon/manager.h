/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "engine.h"
#include "workq.h"

/*
 * The daemon's Manager owns the sd_event loop, the engine and the event
 * sources: one epoll set of every protected process's pidfd, an inotify watch on the
 * slice's memory.events, signals. Front ends (D-Bus, the compat files)
 * register a listener to hear of every change, whoever made it.
 */

typedef struct Manager Manager;
typedef struct Compat Compat;
typedef struct BusRequest BusRequest;
typedef struct ExitRetry ExitRetry;
typedef struct ProcWatch ProcWatch;
typedef struct GuardWatch GuardWatch;

typedef struct ManagerListener {
        void (*changed)(Manager *m, const Protection *p, bool protected, const char *reason, void *userdata);
        void (*oom_kill)(Manager *m, const char *cgroup, uint64_t count, void *userdata);
        void (*unit_changed)(Manager *m, const UnitProtection *u, bool protected, const char *reason, void *userdata);
        /* What protections hold crossed MaxProtectedMemory= (over) or came back under it (guardwatch.c). */
        void (*over_ceiling)(Manager *m, uint64_t in_use, uint64_t ceiling, bool over, void *userdata);
        void *userdata;
} ManagerListener;

#define MANAGER_LISTENERS_MAX 4

struct Manager {
        Config config; /* the engine and backend point into it: updated in place on reload */
        char *config_path;
        gid_t allow_gid; /* AllowGroup= resolved at start and on SIGHUP, (gid_t) -1 when none */
        Engine *engine;
        sd_event *event;
        WorkQueue *work; /* the front ends' clients' work, in turns (workq.h) */
        sd_event_source *oom_source;
        sd_event_source *stop_timer; /* RestoreOnStop=yes: the longest a stop waits for the restores */
        int exit_epoll;              /* every watched pidfd, armed once each; -EBADF until the first */
        sd_event_source *exit_source; /* ...and the loop's one source for it */
        ExitRetry *exit_retries;     /* exits to look at again (an operation was under way) */
        sd_event_source *exit_poll;  /* without pidfds only: the look for exited processes (manager.c) */
        bool started;                /* engine_start() completed */
        int start_result;
        bool stopping;
        ManagerListener listeners[MANAGER_LISTENERS_MAX];
        size_t n_listeners;
        /* front ends' own state, owned by them */
        sd_bus *bus;
        BusRequest *bus_requests; /* method calls waiting for the caller's credentials or the engine */
        Compat *compat;
        ProcWatch *procwatch; /* protection by rule (procwatch.c) */
        GuardWatch *guardwatch; /* MaxProtectedMemory= under memory pressure (guardwatch.c) */
};

int manager_new(const char *config_path, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * Opens the engine and reconciles the saved state, running the loop until
 * that completed (the backend may answer later); then the front ends can
 * be set up and the loop run.
 */
int manager_start(Manager *m);
int manager_run(Manager *m);

/* SIGHUP: reads the configuration again and applies what is safe at runtime. */
int manager_reload(Manager *m);

/* Arms *s (made on first use) to call cb once, usec from now. */
int manager_arm_timer(Manager *m, sd_event_source **s, uint64_t usec, uint64_t accuracy, sd_event_time_handler_t cb,
                      void *userdata);

/* Says where the processes went when an unprotect found their original cgroup gone. */
void manager_log_unprotect_report(pid_t pid, const UnprotectReport *report);

int manager_add_listener(Manager *m, const ManagerListener *l);
