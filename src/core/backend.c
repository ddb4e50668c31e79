/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "backend.h"
#include "cgroup.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "parse.h"

/* A completion held back by the test hook, until its timer fires or the backend closes. */
typedef struct Deferred Deferred;
struct Deferred {
        Deferred *prev, *next;
        Backend *backend;
        sd_event_source *timer;
        BackendDone done;
        BackendRestoreDone restore_done;
        int r;
        OpError err;
        RestoreReport report;
        void *userdata;
};

static Deferred *deferred_list; /* one backend per process: the daemon's (tests open one at a time) */

static Deferred *deferred_free(Deferred *d) {
        if (d->prev)
                d->prev->next = d->next;
        else
                deferred_list = d->next;
        if (d->next)
                d->next->prev = d->prev;
        sd_event_source_disable_unref(d->timer);
        restore_report_done(&d->report);
        free(d);
        return NULL;
}

static int on_deferred(sd_event_source *s, uint64_t usec, void *userdata) {
        Deferred *d = userdata;
        BackendDone done = d->done;
        BackendRestoreDone restore_done = d->restore_done;
        RestoreReport report = d->report;
        OpError err = d->err;
        int r = d->r;
        void *ud = d->userdata;

        d->report = (RestoreReport) {};
        deferred_free(d);
        if (restore_done) {
                restore_done(r, &err, &report, ud);
                restore_report_done(&report);
        } else
                done(r, &err, ud);
        return 0;
}

static bool defer(Backend *b, BackendDone done, BackendRestoreDone restore_done, int r, const OpError *err,
                  RestoreReport *report, void *userdata) {
        Deferred *d;

        if (b->test_delay_usec == 0 || !b->event || !(d = calloc(1, sizeof(Deferred))))
                return false;
        *d = (Deferred) { .backend = b, .done = done, .restore_done = restore_done, .r = r, .userdata = userdata };
        if (err)
                d->err = *err;
        if (report) {
                d->report = *report;
                *report = (RestoreReport) {};
        }
        if (sd_event_add_time_relative(b->event, &d->timer, CLOCK_MONOTONIC, b->test_delay_usec, 0, on_deferred, d) <
            0) {
                if (report)
                        *report = d->report;
                free(d);
                return false;
        }
        d->next = deferred_list;
        if (d->next)
                d->next->prev = d;
        deferred_list = d;
        return true;
}

void backend_complete(Backend *b, BackendDone done, int r, const OpError *err, void *userdata) {
        OpError none = {};

        if (r < 0 && !err)
                err = &none;
        if (!defer(b, done, NULL, r, err, NULL, userdata))
                done(r, err ? err : &none, userdata);
}

void backend_complete_restore(Backend *b, BackendRestoreDone done, int r, const OpError *err, RestoreReport *report,
                              void *userdata) {
        OpError none = {};

        if (!defer(b, NULL, done, r, err, report, userdata))
                done(r, err ? err : &none, report, userdata);
}

void restore_report_done(RestoreReport *r) {
        free(r->pids);
        free(r->starttimes);
        free(r->fallback_path);
        *r = (RestoreReport) {};
}

int restore_report_add(RestoreReport *r, pid_t pid, uint64_t starttime) {
        for (size_t i = 0; i < r->n_pids; i++)
                if (r->pids[i] == pid) {
                        r->starttimes[i] = starttime;
                        return 0;
                }
        pid_t *n = realloc(r->pids, (r->n_pids + 1) * sizeof(pid_t));
        if (!n)
                return -ENOMEM;
        r->pids = n;
        uint64_t *t = realloc(r->starttimes, (r->n_pids + 1) * sizeof(uint64_t));
        if (!t)
                return -ENOMEM;
        r->starttimes = t;
        r->starttimes[r->n_pids] = starttime;
        r->pids[r->n_pids++] = pid;
        return 0;
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

int backend_mark_oomd_avoid(Backend *b, const char *cgroup, MarkAction action, const XattrValue *original) {
        static const XattrValue set = { .state = 1, .value = (char *) "1", .size = 1 };
        const char *rel = cgroup ? cgroup_path_to_rel(cgroup) : NULL;
        int r;

        if (action == MARK_LEAVE || b->rootfd < 0)
                return 0;
        if (!rel || (action == MARK_RESTORE && (!original || original->state < 0)))
                return -EINVAL;
        r = cgroup_write_xattr(b->rootfd, rel, OOMD_AVOID_XATTR, action == MARK_SET ? &set : original);
        if (r == -ENOENT && action == MARK_RESTORE)
                return 0; /* the cgroup is gone, and its xattrs with it */
        if (r < 0 && !b->avoid_refused) {
                b->avoid_refused = true;
                log_notice_errno(r, "Cannot write " OOMD_AVOID_XATTR " on %s (%m): facebook's oomd will not know "
                                    "the protected cgroups (trusted.* needs CAP_SYS_ADMIN); going on without it.",
                                 cgroup);
        } else if (r < 0)
                log_debug_errno(r, "Cannot write " OOMD_AVOID_XATTR " on %s, ignoring: %m", cgroup);
        return r;
}

void backend_mark_scope(Backend *b, const char *scope_cgroup) {
        if (b->config->managed_oom_preference != MANAGED_OOM_PREFERENCE_NONE)
                (void) backend_mark_oomd_avoid(b, scope_cgroup, MARK_SET, NULL);
}

int backend_read_oomd_avoid(Backend *b, const char *cgroup, XattrValue *ret) {
        const char *rel = cgroup ? cgroup_path_to_rel(cgroup) : NULL;

        if (b->rootfd < 0 || !rel)
                return -EINVAL;
        return cgroup_read_xattr(b->rootfd, rel, OOMD_AVOID_XATTR, ret);
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

static int open_systemd(Backend *b, const Config *c, OpError *e) {
        int r;

        r = open_cgroup_root(b, c, e);
        if (r < 0)
                return r;
        b->vtable = &backend_systemd_vtable;
        return b->vtable->init(b, e);
}

static void backend_reset(Backend *b, const Config *c, sd_event *event, int procfd) {
        const char *delay = getenv("OOMPROTECT_TEST_BACKEND_DELAY_USEC");
        uint64_t usec = 0;

        if (delay && parse_u64_base0(delay, &usec) < 0)
                usec = 0;
        *b = (Backend) { .config = c, .event = event, .procfd = procfd, .rootfd = -EBADF, .test_delay_usec = usec,
                         .pids_floor = UINT64_MAX };
}

int backend_open(Backend *b, const Config *c, sd_event *event, int procfd, char **ret_note, OpError *e) {
        OpError cg = {};
        int r;

        backend_reset(b, c, event, procfd);
        *ret_note = NULL;

        switch (c->backend) {
        case BACKEND_SYSTEMD:
                r = open_systemd(b, c, e);
                if (r < 0)
                        backend_close(b);
                return r;
        case BACKEND_CGROUPFS:
                if (sd_booted() > 0 && !c->cgroup_root)
                        log_warning("Backend=cgroupfs on a host where systemd is PID 1: systemd owns this cgroup "
                                    "tree and a daemon-reload resets what oomprotectd writes (memory.min, the "
                                    "slice's controllers). Use Backend=auto, or a CgroupRoot= delegated to us.");
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

        /*
         * auto: where systemd is PID 1 it is the single writer of the cgroup
         * tree, and nothing else is right (a daemon-reload would undo what
         * cgroupfs wrote). Elsewhere cgroupfs where cgroup2 is writable,
         * adj-only with the reason.
         */
        if (sd_booted() > 0 && !c->cgroup_root) {
                r = open_systemd(b, c, e);
                if (r < 0)
                        backend_close(b);
                return r;
        }
        r = open_cgroupfs(b, c, &cg);
        if (r >= 0)
                return 0;
        backend_close(b);
        backend_reset(b, c, event, procfd);
        if (asprintf(ret_note, "no writable cgroup2 (%s): only oom_score_adj is set", cg.message) < 0)
                *ret_note = NULL;
        b->vtable = &backend_adj_only_vtable;
        return b->vtable->init(b, e);
}

void backend_close(Backend *b) {
        for (Deferred *d = deferred_list, *next; d; d = next) {
                next = d->next;
                if (d->backend == b)
                        deferred_free(d);
        }
        if (b->vtable && b->vtable->done)
                b->vtable->done(b);
        b->rootfd = safe_close(b->rootfd);
        free(b->root_path);
        free(b->slice_rel);
        free(b->memory_note);
        b->root_path = b->slice_rel = b->memory_note = NULL;
        b->vtable = NULL;
}
