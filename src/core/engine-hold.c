/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cgroups in-place protections raise (hold.h has the arithmetic): which
 * are held, what each is written, and when its original goes back. Part of
 * the engine; engine-internal.h is the seam.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cgroup.h"
#include "engine-internal.h"
#include "engine.h"
#include "list.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "unit-dropin.h"


/*
 * Adds a hold, with the values it has now, for p's cgroup and each ancestor
 * not held yet. A hold released a moment ago (its original written back, or
 * being written) is taken up again with its recorded original: its file
 * may still show the raised value (systemd applies a unit's cgroup settings
 * after it replies), which must not become the new "original"; unless the
 * file shows neither, then someone else changed it meanwhile.
 */
/*
 * facebook oomd's mark goes on the target's own cgroup only (oomd compares
 * siblings: marking a slice would spare its every service); what it had is
 * read before the record is persisted, so that it goes back exactly even
 * after a crash. Unreadable: no mark (nothing could be put back).
 */
static void hold_record_avoid(Engine *e, CgroupHold *h) {
        int r;

        if (e->config->managed_oom_preference == MANAGED_OOM_PREFERENCE_NONE || h->original_avoid.state >= 0)
                return;
        r = backend_read_oomd_avoid(&e->backend, h->cgroup, &h->original_avoid);
        if (r < 0) {
                h->original_avoid = (XattrValue) { .state = -1 };
                log_debug_errno(r, "Cannot read " OOMD_AVOID_XATTR " of %s, not marking it: %m", h->cgroup);
        }
}

/*
 * Without the memory controller the holds still carry the marks (memory.* is then left alone), but
 * not under systemd: its SetUnitProperties would leave MemoryMin= drop-ins on units for nothing.
 */
static bool holds_apply(const Engine *e) {
        return e->backend.has_cgroup && (e->backend.has_memory || e->backend.vtable != &backend_systemd_vtable);
}

int engine_holds_prepare(Engine *e, const Protection *p, OpError *err) {
        int r;

        if (p->kind != PROTECTION_IN_PLACE || !holds_apply(e))
                return 0;
        r = engine_holds_prepare_cgroup(e, p->original_cgroup, err);
        if (r == -EINVAL)
                return op_error_set(err, r, OOMPROTECT_ERROR_INVALID_PROCESS, "PID %d is in cgroup %s, which "
                                    "cannot be protected in place.", (int) p->pid, strna(p->original_cgroup));
        return r;
}

int engine_hold_record_dropins(Engine *e, CgroupHold *h, OpError *err) {
        int r;

        /* Not a name systemd could have (not one of PID 1's units): no file of it to keep. */
        if (!h->unit || e->backend.vtable != &backend_systemd_vtable || !unit_dropin_unit_is_valid(h->unit))
                return 0;
        r = unit_dropins_read(unit_dropin_system_dirs, h->unit, h->original_dropins);
        if (r < 0)
                return op_error_set(err, r, NULL, "Cannot read the runtime drop-ins of %s in %s and %s (to put them "
                                    "back exactly later): %s", h->unit, unit_dropin_system_dirs[0],
                                    unit_dropin_system_dirs[1], strerror(-r));
        return 0;
}

static bool hold_write_pending(const Engine *e, const char *cgroup) {
        for (const HoldWrite *w = e->writes; w; w = w->next)
                if (streq(w->cgroup, cgroup))
                        return true;
        return false;
}

/*
 * systemd wrote a runtime drop-in for each property of every
 * SetUnitProperties (unit-dropin.h); once it has h's original values again
 * they go back as recorded before the first raise. Only the file step: a
 * failure is logged and tried again at the next settle, the values systemd
 * holds are right and are not sent again. No daemon-reload: what systemd
 * holds in memory is the original already.
 */
static void hold_put_back_dropins(Engine *e, CgroupHold *h) {
        int r;

        h->dropins_pending = false;
        if (!h->unit || e->backend.vtable != &backend_systemd_vtable || !unit_dropin_unit_is_valid(h->unit))
                return;
        r = unit_dropins_restore(unit_dropin_system_dirs, h->unit, h->original_dropins, hold_dropin_mask(h));
        if (r < 0) {
                h->dropins_pending = true;
                log_warning_errno(r, "Failed to put back the runtime drop-ins of %s in %s, will try again: %m",
                                  h->unit, unit_dropin_system_dirs[0]);
        }
}

/* The same for a cgroup (a unit protected by name); -EINVAL, err unset, for one that has no chain ("/"). */
int engine_holds_prepare_cgroup(Engine *e, const char *cgroup, OpError *err) {
        char **paths = NULL, **units = NULL;
        size_t n = 0;
        int r;

        if (!holds_apply(e))
                return 0;
        r = hold_chain(cgroup, &paths, &units, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                CgroupHold *h = hold_table_get(&e->holds, paths[i]);
                uint64_t min, low;

                if (h && !h->released)
                        continue;
                min = low = 0;
                r = e->backend.has_memory
                            ? cgroup_read_protection(e->backend.rootfd, cgroup_path_to_rel(paths[i]), &min, &low)
                            : 0;
                if (r < 0) {
                        op_error_set(err, r, NULL, "Cannot read memory.min of %s: %s", paths[i], strerror(-r));
                        break;
                }
                if (!h) {
                        r = hold_table_add(&e->holds, paths[i], units[i], min, low);
                        if (r >= 0) {
                                h = &e->holds.items[e->holds.n - 1];
                                h->original_preference = backend_read_oomd_preference(&e->backend, paths[i]);
                                r = engine_hold_record_dropins(e, h, err);
                        }
                        continue;
                }
                if (!(min == h->raised_min && low == h->raised_low) && !(min == h->original_min && low == h->original_low)) {
                        h->original_min = min;
                        h->original_low = low;
                }
                /*
                 * Its drop-ins are as recorded once their putting back is
                 * done, unless someone changed them since; not while the
                 * release is in flight (its put-back is then skipped, the
                 * files are the raise's), nor after a failed put-back (the
                 * files are systemd's restoring ones, not an original).
                 */
                if (!hold_write_pending(e, h->cgroup) && !h->dropins_pending)
                        (void) engine_hold_record_dropins(e, h, &(OpError) {});
                h->dropins_pending = false;
                h->released = false;
        }
        if (r >= 0 && n > 0)
                hold_record_avoid(e, hold_table_get(&e->holds, paths[n - 1]));
        hold_chain_free(paths, units, n);
        return r < 0 ? r : 0;
}

/* Whether any in-place protection's cgroup is h's or below it. */
bool engine_hold_in_use(const Engine *e, const CgroupHold *h) {
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                if (p->kind == PROTECTION_IN_PLACE && p->original_cgroup &&
                    (streq(p->original_cgroup, h->cgroup) || cgroup_is_ancestor(h->cgroup, p->original_cgroup)))
                        return true;
        }
        for (size_t i = 0; i < e->units.n; i++) {
                const UnitProtection *u = e->units.items[i];
                if (streq(u->cgroup, h->cgroup) || cgroup_is_ancestor(h->cgroup, u->cgroup))
                        return true;
        }
        return false;
}

static void joiner_step(Joiner *j, int r, const OpError *err) {
        if (r < 0 && j->error >= 0) {
                j->error = r;
                if (err)
                        j->err = *err;
                else
                        op_error_set(&j->err, r, NULL, "%s", strerror(-r));
        }
        if (--j->joins == 0)
                j->after(j);
}

static HoldWrite *hold_write_free(HoldWrite *w) {
        LIST_REMOVE(w->engine->writes, w);
        free(w->cgroup);
        free(w);
        return NULL;
}

static void on_hold_written(int r, const OpError *err, void *userdata) {
        HoldWrite *w = userdata;
        Engine *e = w->engine;
        Joiner *j = w->joiner;
        CgroupHold *h = hold_table_get(&e->holds, w->cgroup);
        const char *rel = cgroup_path_to_rel(w->cgroup);

        /* Putting back the original of a cgroup that is gone (a container removed, a unit stopped): nothing to do. */
        if (r < 0 && w->releasing && rel && e->backend.rootfd >= 0 &&
            faccessat(e->backend.rootfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
                log_debug("%s is gone; its original memory protection needs no putting back.", w->cgroup);
                r = 0;
        }
        if (r < 0 && h) {
                /* Not what the table says: written again at the next settle; an original not back stays held. */
                h->applied = false;
                if (w->releasing)
                        h->released = false;
        }
        bool put_back = r >= 0 && w->releasing && h && h->released;
        hold_write_free(w);
        /*
         * Decided now, not when the release was sent: a hold taken up again
         * meanwhile had its raise sent behind this release, and systemd has
         * rewritten the files for it (put back, a daemon-reload would drop
         * the raise). With a later write still in flight, that one decides.
         */
        if (put_back && !hold_write_pending(e, h->cgroup))
                hold_put_back_dropins(e, h);
        joiner_step(j, r, err);
}

static void hold_write(Engine *e, Joiner *j, CgroupHold *h, const CgroupProtection *want, bool releasing) {
        HoldWrite *w = calloc(1, sizeof(HoldWrite));

        if (!w || !(w->cgroup = strdup(h->cgroup))) {
                free(w);
                h->applied = false;
                joiner_step(j, -ENOMEM, NULL);
                return;
        }
        *w = (HoldWrite) { .engine = e, .joiner = j, .cgroup = w->cgroup, .releasing = releasing };
        LIST_PREPEND(e->writes, w);
        e->backend.vtable->set_memory_protection(&e->backend, h->cgroup, h->unit, want, on_hold_written, w);
}

/*
 * systemd-oomd's preference for h: ManagedOOMPreference= as configured on
 * the cgroup an in-place protection is in (never on its ancestors: oomd
 * kills whole cgroups, and omitting a slice would omit its every service),
 * the original back once nothing leans on it; -1: leave it as it is.
 */
static int hold_preference(const Engine *e, const CgroupHold *h, bool in_use, const HoldDemand *d, size_t n) {
        bool target = false;

        for (size_t k = 0; k < n && !target; k++)
                target = streq(d[k].cgroup, h->cgroup);
        if (in_use && target && e->config->managed_oom_preference != MANAGED_OOM_PREFERENCE_NONE)
                return (int) e->config->managed_oom_preference;
        /* We changed it (or an earlier daemon may have: a hold read from state.json): back. */
        if ((h->applied_preference >= 0 || h->loaded) && h->original_preference >= 0)
                return h->original_preference;
        return -1;
}

/*
 * facebook oomd's mark for h: set while an in-place protection is in h's
 * own cgroup (and ManagedOOMPreference= asks for one), its recorded
 * original back once none is; never touched where we recorded nothing.
 */
static MarkAction hold_avoid(const Engine *e, const CgroupHold *h, bool in_use, const HoldDemand *d, size_t n) {
        bool target = false;

        if (h->original_avoid.state < 0)
                return MARK_LEAVE;
        for (size_t k = 0; k < n && !target; k++)
                target = streq(d[k].cgroup, h->cgroup);
        if (in_use && target && e->config->managed_oom_preference != MANAGED_OOM_PREFERENCE_NONE)
                return h->avoid_applied ? MARK_LEAVE : MARK_SET;
        return MARK_RESTORE;
}

/*
 * Gives every held cgroup what the in-place protections need now, and puts
 * the original values back where nothing leans on a hold any more (the hold
 * is then released: no longer persisted, kept in memory to recognize its
 * own raised value). j->after(j) once every write is done, j->error the
 * first failure. The values are recomputed from the whole registry, so two
 * operations settling at once write the same figures.
 */
void engine_holds_settle(Engine *e, Joiner *j) {
        _cleanup_free_ HoldDemand *demands = calloc(e->registry.n + e->units.n + 1, sizeof(HoldDemand));
        _cleanup_free_ uint64_t *min = calloc(e->holds.n + 1, sizeof(uint64_t));
        _cleanup_free_ uint64_t *low = calloc(e->holds.n + 1, sizeof(uint64_t));
        size_t n = 0;

        j->error = 0;
        j->joins = 1; /* ours, until every write is started */
        if (!demands || !min || !low)
                return joiner_step(j, -ENOMEM, NULL);
        for (size_t i = 0; i < e->registry.n; i++) {
                const Protection *p = e->registry.items[i];
                if (p->kind == PROTECTION_IN_PLACE && p->original_cgroup)
                        demands[n++] = (HoldDemand) { p->original_cgroup, p->memory_min, p->memory_low };
        }
        for (size_t i = 0; i < e->units.n; i++) { /* units protected by name: their own cgroup, as in place */
                const UnitProtection *u = e->units.items[i];
                demands[n++] = (HoldDemand) { u->cgroup, u->memory_min, u->memory_low };
        }
        hold_compute(&e->holds, demands, n, min, low);
        for (size_t i = 0; i < e->holds.n; i++) {
                CgroupHold *h = &e->holds.items[i];
                bool in_use = engine_hold_in_use(e, h);
                uint64_t want_min = in_use ? min[i] : h->original_min;
                uint64_t want_low = in_use ? low[i] : h->original_low;
                int want_pref = hold_preference(e, h, in_use, demands, n);
                MarkAction want_avoid = hold_avoid(e, h, in_use, demands, n);
                XattrValue avoid_original = { .state = -1 };

                if (h->released) {
                        if (h->dropins_pending && !hold_write_pending(e, h->cgroup))
                                hold_put_back_dropins(e, h); /* the file step of a release that failed */
                        continue;
                }
                if (!in_use) {
                        h->released = true;
                        if (h->applied) {
                                h->raised_min = h->applied_min;
                                h->raised_low = h->applied_low;
                        }
                }
                if (h->applied && h->applied_min == want_min && h->applied_low == want_low &&
                    (want_pref < 0 || h->applied_preference == want_pref) && want_avoid == MARK_LEAVE) {
                        /* Released with systemd's values right already (a re-take that raised nothing): the files. */
                        if (!in_use && !hold_write_pending(e, h->cgroup))
                                hold_put_back_dropins(e, h);
                        continue;
                }
                if (!in_use && !h->applied && !h->loaded && want_avoid == MARK_LEAVE)
                        continue; /* never raised: nothing to put back */
                h->applied = true;
                h->applied_min = want_min;
                h->applied_low = want_low;
                if (want_pref >= 0)
                        h->applied_preference = want_pref;
                /* The mark is written before set_memory_protection returns: the record goes now. */
                if (want_avoid == MARK_SET)
                        h->avoid_applied = true;
                if (want_avoid == MARK_RESTORE) {
                        avoid_original = h->original_avoid;
                        h->original_avoid = (XattrValue) { .state = -1 };
                        h->avoid_applied = false;
                }
                j->joins++;
                hold_write(e, j, h,
                           &(CgroupProtection) { want_min, want_low, want_pref, want_avoid, &avoid_original },
                           !in_use);
                xattr_value_done(&avoid_original);
        }
        joiner_step(j, 0, NULL);
}

/* A settle nobody waits for (at start, after a failed update): persisted once done, failures logged. */
static void on_detached_joined(Joiner *j) {
        Engine *e = *(Engine **) (j + 1);
        int r;

        if (j->error < 0)
                log_warning("Failed to write the memory protection of a held cgroup, will try again: %s", j->err.message);
        r = engine_persist_changes(e);
        if (r < 0)
                log_warning_errno(r, "Failed to save the state, ignoring: %m");
        free(j);
}

void engine_holds_settle_detached(Engine *e) {
        Joiner *j = calloc(1, sizeof(Joiner) + sizeof(Engine *));

        if (!j) {
                log_oom();
                return;
        }
        *(Engine **) (j + 1) = e;
        j->after = on_detached_joined;
        engine_holds_settle(e, j);
}

/* A protect failed before it touched anything: the holds it added go, those it took up again are released again. */
void engine_holds_drop_unused(Engine *e) {
        for (size_t i = e->holds.n; i-- > 0;) {
                CgroupHold *h = &e->holds.items[i];
                if (h->released || engine_hold_in_use(e, h))
                        continue;
                if (h->applied)
                        h->released = true;
                else if (!h->loaded) /* one from state.json stays: the next settle puts its original back */
                        hold_table_remove(&e->holds, i);
        }
}
