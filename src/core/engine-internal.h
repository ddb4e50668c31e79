/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Between engine.c and engine-hold.c only: no front end includes this. */

#include <stdbool.h>

#include "engine.h"

/* Writes of held cgroups under way for someone, who hears once when all are done (the first error kept). */
typedef struct Joiner Joiner;
struct Joiner {
        unsigned joins;
        int error;
        OpError err;
        void (*after)(Joiner *j);
};

/* One write of a held cgroup: when it fails, the hold is kept to be written again. */
typedef struct HoldWrite HoldWrite;
struct HoldWrite {
        Engine *engine;
        Joiner *joiner;
        char *cgroup;
        bool releasing; /* writing the original back */
        HoldWrite *prev, *next; /* in engine->writes */
};

/*
 * Persisting (state.c, StateFile): engine_persist_pid() writes pid's record
 * as the registry has it now (or its end, when it is not there) and whatever
 * changed in the holds, before the caller touches anything; a failure fails
 * the operation. engine_persist_later() only notes pid, for a batch that
 * persists once at its end with engine_persist_changes(). engine_persist_unit()
 * is engine_persist_pid() for a unit protected by name (its record, or its
 * end). engine_persist() writes everything whole: for a change that is not
 * said by pid or unit.
 */
int engine_persist(Engine *e);
int engine_persist_pid(Engine *e, pid_t pid);
int engine_persist_unit(Engine *e, const char *unit);
void engine_persist_later(Engine *e, pid_t pid);
int engine_persist_changes(Engine *e);

/* engine-unit.c, for engine.c: start (records from state.json), the loaded records, and freeing. */
void engine_units_start(Engine *e, UnitProtection **records, size_t n);
void engine_units_free(Engine *e);
/* RestoreOnStop=yes: every unit protected by name put back. */
void engine_units_stop(Engine *e);
/* Whether cgroup (a path) is the slice or below it. */
bool engine_inside_slice(const Engine *e, const char *cgroup);
/*
 * A unit moved into the slice (a drop-in's Slice=): only its own cgroup is
 * held (its unit's MemoryMin=); the slice above it carries it in its own
 * memory.min (slice_update), as for the moved protections, never as a held
 * ancestor. ret_*: what those units ask for together.
 */
bool engine_unit_in_slice(const Engine *e, const UnitProtection *u);
void engine_units_slice_sums(const Engine *e, uint64_t *ret_min, uint64_t *ret_low);
/* The slice's memory protection written again (its units or scopes changed), failures logged. */
void engine_slice_update_detached(Engine *e);

/* Holds, with the values they have now, for p's cgroup and each ancestor (in place only). */
int engine_holds_prepare(Engine *e, const Protection *p, OpError *err);
/* The same for a cgroup of its own (a unit by name); -EINVAL (err unset) where it has no chain ("/"). */
int engine_holds_prepare_cgroup(Engine *e, const char *cgroup, OpError *err);
/*
 * What systemd's runtime drop-ins for h's unit are now (unit-dropin.h), recorded before its first raise
 * (systemd backend only; a hold of no unit has none). A file that cannot be read is an error in err.
 */
int engine_hold_record_dropins(Engine *e, CgroupHold *h, OpError *err);
/* Whether any in-place protection's (or unit protection's) cgroup is h's or below it. */
bool engine_hold_in_use(const Engine *e, const CgroupHold *h);
/* Every held cgroup gets what the registry needs now; j->after(j) once every write is done. */
void engine_holds_settle(Engine *e, Joiner *j);
/* The same with nobody waiting: persisted once done, failures logged. */
void engine_holds_settle_detached(Engine *e);
/* A protect failed before it touched anything: the holds it added go, those it took up again are released. */
void engine_holds_drop_unused(Engine *e);

/* engine-unit.c: a unit operation ended (an unprotect-many waiting for it may start now). */
void engine_unit_op_ended(Engine *e);
/* engine_free(): a unit operation that will never complete gives back its share of an unprotect-many. */
void engine_unit_op_abandoned(EngineDone done, void *userdata);
