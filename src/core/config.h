/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum BackendType {
        BACKEND_AUTO,
        BACKEND_SYSTEMD,
        BACKEND_CGROUPFS,
        BACKEND_ADJ_ONLY,
        _BACKEND_TYPE_MAX,
} BackendType;

typedef enum ManagedOOMPreference {
        MANAGED_OOM_PREFERENCE_NONE,
        MANAGED_OOM_PREFERENCE_AVOID,
        MANAGED_OOM_PREFERENCE_OMIT,
        _MANAGED_OOM_PREFERENCE_MAX,
} ManagedOOMPreference;

/* Every key of the [Manager] section (DESIGN.md section 3). */
typedef struct Config {
        BackendType backend;
        char *cgroup_root;      /* NULL: discover the cgroup2 mount */
        char *slice;            /* "protected.slice"; may be nested: "test-protected.slice" */
        char *memory_min_budget; /* as written ("50%", "4G"): resolved against RAM by config_budget_bytes() */
        uint64_t default_memory_min;
        uint64_t default_memory_low;
        bool oom_group;
        int oom_score_adjust;
        ManagedOOMPreference managed_oom_preference;
        char *allow_group;      /* NULL: nobody but root may protect */
        unsigned max_protected;
        unsigned max_protected_per_user;        /* protections of processes of one non-root uid */
        char *memory_min_budget_per_user;       /* as written, like memory_min_budget */
        bool restore_on_stop;
        char *state_directory;
        char *compat_directory;
        /* issue 16 */
        char *rule_directories;     /* space-separated, earlier ones mask later ones (oomprotect.rules(5)) */
        char *max_protected_memory; /* as written, like memory_min_budget: config_max_protected_memory_bytes() */
} Config;

/* Fills c with the defaults. */
int config_init(Config *c);
void config_done(Config *c);

/*
 * Reads path (missing is fine unless required) and then every *.conf in
 * dropin_dir in lexical order; later files override earlier ones. A bad
 * value or unknown key is a warning naming file, line and key, and the
 * previous value is kept. Returns the number of warnings (>= 0), or a
 * negative errno when a file exists but cannot be read.
 */
int config_load(Config *c, const char *path, bool required, const char *dropin_dir);

/* One key=value as if read from file:line; returns 0 or a negative errno after logging a warning. */
int config_set(Config *c, const char *key, const char *value, const char *file, unsigned line);

/* The budget in bytes for this machine's RAM (0 = unlimited). */
uint64_t config_budget_bytes(const Config *c, uint64_t total_ram);
/* MemoryMinBudgetPerUser= in bytes (0 = unlimited). */
uint64_t config_budget_per_user_bytes(const Config *c, uint64_t total_ram);
/* MaxProtectedMemory= in bytes (0 = no ceiling). */
uint64_t config_max_protected_memory_bytes(const Config *c, uint64_t total_ram);

/* from_string() returns _BACKEND_TYPE_MAX / _MANAGED_OOM_PREFERENCE_MAX for an unknown or NULL string. */
const char *backend_type_to_string(BackendType t);
BackendType backend_type_from_string(const char *s);
const char *managed_oom_preference_to_string(ManagedOOMPreference p);
ManagedOOMPreference managed_oom_preference_from_string(const char *s);

/* Prints the effective configuration as INI (for --check-config and `doctor`). */
void config_dump(const Config *c, FILE *f);
