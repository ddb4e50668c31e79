/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the engine parses of the cgroup tree: /proc/self/mountinfo, flat-keyed
 * files (memory.events), limit files, controller lists, and cgroup paths
 * from state.json (clean?, their chain of units, slices to paths). Each
 * clean path's chain must be its own ancestors, ending at itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "hold.h"

static void check_path(const char *s) {
        char **paths = NULL, **units = NULL;
        size_t n = 0;

        if (!cgroup_path_is_clean(s))
                return;
        if (s[0] != '/' || strstr(s, "//") || strstr(s, "/../") || strstr(s, "/./"))
                abort(); /* clean means absolute, no empty, "." or ".." component */
        if (!cgroup_path_to_rel(s))
                abort();
        if (hold_chain(s, &paths, &units, &n) < 0)
                return; /* "/" has no chain */
        if (n == 0 || strcmp(paths[n - 1], s) != 0)
                abort();
        for (size_t i = 0; i + 1 < n; i++)
                if (!cgroup_is_ancestor(paths[i], paths[i + 1]) || !cgroup_is_ancestor(paths[i], s))
                        abort();
        for (size_t i = 0; i < n; i++)
                if (units[i] && !unit_name_owns_cgroup(units[i]))
                        abort();
        hold_chain_free(paths, units, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const limit_files[] = { "memory.max", "memory.high", "memory.swap.max",
                                                   "pids.max",   "cpu.max",     "io.max" };
        char *s = malloc(size + 1), *mount = NULL, *path = NULL;
        uint64_t v;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if (cgroup_parse_mountinfo_cgroup2(s, &mount) == 0) {
                if (!mount || mount[0] != '/')
                        abort(); /* a mount point is absolute */
                free(mount);
        }
        (void) cgroup_parse_keyed(s, "oom_kill", &v);
        for (size_t i = 0; i < sizeof(limit_files) / sizeof(limit_files[0]); i++) {
                (void) cgroup_limit_text_limits(limit_files[i], s, UINT64_MAX);
                (void) cgroup_limit_text_limits(limit_files[i], s, 15000);
        }
        (void) cgroup_controller_list_has(s, "memory");
        (void) unit_name_owns_cgroup(s);
        check_path(s);
        if (cgroup_slice_to_path(s, &path) == 0) {
                check_path(path);
                free(path);
        }
        free(s);
        return 0;
}
