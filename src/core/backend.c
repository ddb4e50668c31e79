/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cgroup.h"
#include "oomprotect/protocol.h"

void restore_report_done(RestoreReport *r) {
        free(r->pids);
        free(r->fallback_path);
        *r = (RestoreReport) {};
}

int backend_scope_path(const Backend *b, pid_t pid, char **ret) {
        if (!b->has_cgroup) {
                *ret = NULL;
                return 0;
        }
        return asprintf(ret, "/%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, b->slice_rel, (int) pid) < 0
                       ? -ENOMEM
                       : 0;
}

static int open_cgroup_root(Backend *b, const Config *c, OpError *e) {
        _cleanup_free_ char *found = NULL;
        int r;

        if (c->cgroup_root) {
                found = strdup(c->cgroup_root);
                if (!found)
                        return -ENOMEM;
        } else {
                r = cgroup_find_mount(&found);
                if (r < 0)
                        return op_error_set(e, r, NULL, "No cgroup2 file system is mounted.");
        }
        r = cgroup_open_root(found, &b->rootfd);
        if (r < 0)
                return op_error_set(e, r, NULL, "%s is not a usable cgroup2 mount: %s", found, strerror(-r));
        r = cgroup_slice_to_path(c->slice, &b->slice_rel);
        if (r < 0)
                return op_error_set(e, r, NULL, "Slice=%s is not a valid slice name.", c->slice);
        b->root_path = TAKE_PTR(found);
        return 0;
}

static int open_cgroupfs(Backend *b, const Config *c, OpError *e) {
        int r;

        r = open_cgroup_root(b, c, e);
        if (r < 0)
                return r;
        b->vtable = &backend_cgroupfs_vtable;
        return b->vtable->init(b, e);
}

int backend_open(Backend *b, const Config *c, int procfd, char **ret_note, OpError *e) {
        OpError cg = {};
        int r;

        *b = (Backend) { .config = c, .procfd = procfd, .rootfd = -EBADF };
        *ret_note = NULL;

        switch (c->backend) {
        case BACKEND_SYSTEMD:
                return op_error_set(e, -EOPNOTSUPP, NULL,
                                    "Backend=systemd is not available in this version; use auto or cgroupfs.");
        case BACKEND_CGROUPFS:
                r = open_cgroupfs(b, c, e);
                if (r < 0)
                        backend_close(b);
                return r;
        case BACKEND_ADJ_ONLY:
                b->vtable = &backend_adj_only_vtable;
                return b->vtable->init(b, e);
        default:
                break;
        }

        /* auto: cgroupfs where cgroup2 is writable, adj-only with the reason elsewhere. */
        r = open_cgroupfs(b, c, &cg);
        if (r >= 0)
                return 0;
        backend_close(b);
        *b = (Backend) { .config = c, .procfd = procfd, .rootfd = -EBADF };
        if (asprintf(ret_note, "no writable cgroup2 (%s): only oom_score_adj is set", cg.message) < 0)
                *ret_note = NULL;
        b->vtable = &backend_adj_only_vtable;
        return b->vtable->init(b, e);
}

void backend_close(Backend *b) {
        if (b->vtable && b->vtable->done)
                b->vtable->done(b);
        b->rootfd = safe_close(b->rootfd);
        free(b->root_path);
        free(b->slice_rel);
        free(b->memory_note);
        b->root_path = b->slice_rel = b->memory_note = NULL;
        b->vtable = NULL;
}
