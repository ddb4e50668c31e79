/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "engine.h"

/*
 * The daemon's Manager owns the sd_event loop, the engine and the event
 * sources: a pidfd watch per protected process, an inotify watch on the
 * slice's memory.events, signals. Front ends (D-Bus, the compat files)
 * register a listener to hear of every change, whoever made it.
 */

typedef struct Manager Manager;

typedef struct ManagerListener {
        void (*changed)(Manager *m, const Protection *p, bool protected, const char *reason, void *userdata);
        void (*oom_kill)(Manager *m, const char *cgroup, uint64_t count, void *userdata);
        void *userdata;
} ManagerListener;

#define MANAGER_LISTENERS_MAX 4

struct Manager {
        Config config;
        char *config_path;
        Engine *engine;
        sd_event *event;
        sd_event_source *oom_source;
        ManagerListener listeners[MANAGER_LISTENERS_MAX];
        size_t n_listeners;
        void *bus;    /* front ends' own state, owned by them */
        void *compat;
};

int manager_new(const char *config_path, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the engine and reconciles the saved state; then the loop can run. */
int manager_start(Manager *m);
int manager_run(Manager *m);

int manager_add_listener(Manager *m, const ManagerListener *l);
