/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "backend.h"

/*
 * The adj-only backend: no writable cgroup v2 at all. Processes stay where
 * they are; the engine's oom_score_adj is the whole protection.
 */

static int adj_only_init(Backend *b, OpError *e) {
        b->has_cgroup = b->has_memory = false;
        b->memory_note = strdup("no cgroup v2 backend: cgroup protection (memory.min) is unavailable");
        return b->memory_note ? 0 : -ENOMEM;
}

static int adj_only_apply(Backend *b, const Protection *p, OpError *e) {
        return 0;
}

static int adj_only_restore(Backend *b, const Protection *p, RestoreReport *ret) {
        *ret = (RestoreReport) {};
        return 0;
}

static int adj_only_set_slice_memory_min(Backend *b, uint64_t bytes) {
        return 0;
}

static int adj_only_read_oom_kills(Backend *b, uint64_t *ret) {
        return -EOPNOTSUPP;
}

const BackendVTable backend_adj_only_vtable = {
        .name = "adj-only",
        .init = adj_only_init,
        .apply = adj_only_apply,
        .restore = adj_only_restore,
        .set_slice_memory_min = adj_only_set_slice_memory_min,
        .read_oom_kills = adj_only_read_oom_kills,
};
