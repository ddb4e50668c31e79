/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The hook's two calls, through liboomprotect (see hook-bus.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook-bus.h"
#include "oomprotect.h"

/* The library's sentence for r, malloc'd; unreachable (not running, no answer in time) as -EHOSTUNREACH. */
static int fail(int r, const char *what, char **ret_error) {
        bool unreachable = r == -ECONNREFUSED || r == -ETIMEDOUT;

        if (asprintf(ret_error, "%s to %s: %s", unreachable ? "cannot reach oomprotectd" : "oomprotectd refused", what,
                     oomprotect_strerror(r)) < 0)
                *ret_error = NULL;
        return unreachable ? -EHOSTUNREACH : r;
}

int hook_bus_protect(const HookProtectRequest *req, uint64_t timeout_usec, char **ret_error) {
        struct oomprotect_options o = OOMPROTECT_OPTIONS_INIT;
        char what[64];
        int r;

        o.set = OOMPROTECT_OPTION_IN_PLACE | OOMPROTECT_OPTION_TAG;
        o.in_place = 1;
        o.tag = req->tag;
        if (req->has_memory_min) {
                o.set |= OOMPROTECT_OPTION_MEMORY_MIN;
                o.memory_min = req->memory_min;
        }
        if (req->has_adj) {
                o.set |= OOMPROTECT_OPTION_OOM_SCORE_ADJ;
                o.oom_score_adj = req->adj;
        }
        oomprotect_set_timeout(timeout_usec);
        r = oomprotect_protect(req->pid, &o);
        if (r < 0) {
                snprintf(what, sizeof(what), "protect PID %d", (int) req->pid);
                return fail(r, what, ret_error);
        }
        return 0;
}

int hook_bus_unprotect_tag(const char *tag, uint64_t timeout_usec, unsigned *ret_count, char **ret_error) {
        int r;

        oomprotect_set_timeout(timeout_usec);
        r = oomprotect_unprotect_tag(tag);
        if (r < 0)
                return fail(r, "unprotect the container", ret_error);
        *ret_count = (unsigned) r;
        return 0;
}
