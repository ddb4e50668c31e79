/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "backend.h"
#include "proc.h"

/*
 * The adj-only backend: no writable cgroup v2 at all. Processes stay where
 * they are; the engine's oom_score_adj is the whole protection.
 */

static int adj_only_init(Backend *b, OpError *e) {
        b->has_cgroup = b->has_memory = false;
        b->memory_note = strdup("no cgroup v2 backend: cgroup protection (memory.min) is unavailable");
        return b->memory_note ? 0 : -ENOMEM;
}

static void adj_only_apply(Backend *b, const Protection *p, BackendDone done, void *userdata) {
        backend_complete(b, done, 0, NULL, userdata);
}

static void adj_only_freeze(Backend *b, const Protection *p, bool freeze, BackendDone done, void *userdata) {
        backend_complete(b, done, 0, NULL, userdata); /* no scope to freeze */
}

/* No scope: what the protection covers is the process and the children it has now. */
static int adj_only_list_pids(Backend *b, const Protection *p, pid_t **ret, size_t *ret_n) {
        return proc_get_descendants(b->procfd, p->pid, ret, ret_n);
}

static void adj_only_restore(Backend *b, const Protection *p, BackendRestoreDone done, void *userdata) {
        RestoreReport none = {};

        backend_complete_restore(b, done, 0, NULL, &none, userdata);
}

static void adj_only_set_memory_protection(Backend *b, const char *cgroup, const char *unit,
                                           const CgroupProtection *want, BackendDone done, void *userdata) {
        backend_complete(b, done, 0, NULL, userdata);
}

static int adj_only_read_oom_kills(Backend *b, uint64_t *ret) {
        return -EOPNOTSUPP;
}

const BackendVTable backend_adj_only_vtable = {
        .name = "adj-only",
        .init = adj_only_init,
        .apply = adj_only_apply,
        .freeze = adj_only_freeze,
        .list_pids = adj_only_list_pids,
        .restore = adj_only_restore,
        .set_memory_protection = adj_only_set_memory_protection,
        .read_oom_kills = adj_only_read_oom_kills,
};
