/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

#include "hold.h"
#include "protection.h"
#include "unit-protection.h"
#include "registry.h"

/*
 * state.json: every protection record, so that a restarted daemon (or one
 * killed with SIGKILL) finds what it did. Format, version 1:
 *
 *   { "version": 1,
 *     "protections": [ { "pid": 1234, "starttime": 5678, "comm": "sshd",
 *                        "uid": 0, "original_cgroup": "/system.slice/ssh.service",
 *                        "scope_cgroup": "/protected.slice/oomprotect-1234.scope",
 *                        "original_adj": 0, "applied_adj": -1000,
 *                        "memory_min": 0, "memory_low": 0, "oom_group": false,
 *                        "descendants": false, "since_usec": 1700000000000000,
 *                        "source": "dbus", "tag": null,
 *                        "members": [ { "pid": 1235, "starttime": 5690,
 *                                       "original_cgroup": "/...", "original_adj": 0 } ] } ] }
 *
 * Version 2 adds to each record "kind" ("moved", "in-place"), "state"
 * ("applying", "active", "restoring") and "original_unit", and at the top
 * "holds": [ { "cgroup": "/system.slice", "unit": "system.slice",
 * "original_min": 0, "original_low": 0 } ], the cgroups in-place
 * protections raised with the values to put back. A version 1 file loads as
 * moved, active records and no holds.
 *
 * "units" (when any unit is protected by name): [ { "unit": "nginx.service",
 * "cgroup": "/system.slice/nginx.service", "state": "active", "applied_adj":
 * -1000, "base_adj": 0, "has_base_adj": true, "memory_min": 0, "memory_low": 0, "since_usec": ...,
 * "source": "dbus", "tag": null, "members": [ { "pid": 1234, "starttime":
 * 5678, "original_adj": 0 } ] } ], the processes each changed with the
 * oom_score_adj they had. A daemon without units ignores the key (and skips
 * the journal's unit lines, counted).
 *
 * Unknown keys are ignored (a newer daemon may add some); a record without
 * pid or starttime is dropped with a reason.
 */

#define STATE_FORMAT_VERSION 2

/* Pure: records to JSON text (malloc'ed, NUL-terminated). */
int state_serialize(Protection *const *records, size_t n, char **ret);

/*
 * Pure: JSON text to records. -EBADMSG (with *ret_reason) when the text is
 * not JSON, not an object, or of an unsupported version; individual bad
 * records are skipped and counted in *ret_skipped.
 */
int state_parse(const char *text, Protection ***ret, size_t *ret_n, size_t *ret_skipped, const char **ret_reason);

/* Writes state.json in dirfd atomically (tmp, fsync, rename), without a journal. */
int state_save(int dirfd, Protection *const *records, size_t n);

/* The same with the hold table and the units (NULL: none). ret_holds, ret_units NULL: not read. */
int state_serialize_full(Protection *const *records, size_t n, const HoldTable *holds, const UnitTable *units,
                         char **ret);
int state_parse_full(const char *text, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, UnitTable *ret_units,
                     size_t *ret_skipped, const char **ret_reason);
int state_save_full(int dirfd, Protection *const *records, size_t n, const HoldTable *holds, const UnitTable *units);
int state_load_full(int dirfd, Protection ***ret, size_t *ret_n, HoldTable *ret_holds, UnitTable *ret_units,
                    size_t *ret_skipped, char **ret_moved_to, const char **ret_reason);

/*
 * state.json as the daemon keeps it: the document above, then a journal of
 * changes, one JSON object a line, appended (and fdatasync'ed) per change:
 *
 *   {"put":RECORD}      the record of RECORD's pid, as it is now (new or changed)
 *   {"del":PID}         PID's record is gone
 *   {"hold":HOLD}       a held cgroup, new or changed
 *   {"unhold":CGROUP}   that cgroup is held no more
 *   {"unit":UNIT}       a unit protected by name, as it is now (new or changed)
 *   {"ununit":NAME}     that unit is protected no more
 *
 * A record line is the same object as in "protections" (a unit line as in
 * "units"), made from the same field table: a new field is a new entry there. The document says
 * "journal": 1; without it, anything after the document is corruption (as
 * for files of earlier daemons). On load the lines are applied in order; a
 * last line without its newline (a write cut by a crash, never confirmed) is
 * dropped, any other bad line skipped and counted. When the journal has
 * outgrown the document, or at the first commit after a start, the file is
 * written whole again (tmp, fsync, rename, fsync of the directory), with no
 * journal: a daemon before this format reads such a file.
 *
 * The cost of a change is its own line, whatever the number of records; the
 * whole rewrite is amortized over at least as many bytes of journal.
 */
typedef struct StateFile {
        int dirfd;              /* borrowed */
        int fd;                 /* state.json, appended to; -EBADF until the first commit writes it whole */
        uint64_t size;          /* its bytes */
        uint64_t document_size; /* ...of which the document at its start: the rest is journal */
        bool must_rewrite;      /* a failed append or allocation: the next commit writes everything */
        pid_t *staged;          /* pids whose record changed (or went) since the last commit */
        size_t n_staged, alloc_staged;
        char **staged_units;    /* the same for units protected by name (their names, owned) */
        size_t n_staged_units, alloc_staged_units;
        HoldTable written;      /* the holds as the file has them, to append only what changed */
        unsigned rewrites;      /* times the file was written whole (for tests and the bench) */
} StateFile;

void state_file_init(StateFile *f, int dirfd);
void state_file_done(StateFile *f);

/* Notes that pid's record changed or went: its line is written at the next commit, from what reg has then. */
int state_file_stage(StateFile *f, pid_t pid);
/* The same for a unit protected by name: a "unit" line from units at the next commit, or "ununit". */
int state_file_stage_unit(StateFile *f, const char *unit);

/*
 * Appends the staged records (a "put" for those in reg, a "del" for the
 * others), the staged units (likewise from units, NULL: none) and whatever changed in holds, then fdatasync: only then may the
 * caller touch the system. On failure the file is cut back to what it said
 * and the next commit writes it whole. May write it whole at the end (see
 * above). Nothing staged, nothing changed: no system call at all.
 */
int state_file_commit(StateFile *f, const Registry *reg, const HoldTable *holds, const UnitTable *units);

/* Writes the file whole from reg, holds and units (tmp, fsync, rename) and appends to it from then on. */
int state_file_rewrite(StateFile *f, const Registry *reg, const HoldTable *holds, const UnitTable *units);

/*
 * Reads state.json from dirfd. A missing file is an empty state. A corrupt
 * one is renamed to "state.json.corrupt-<usec>" and reported through
 * *ret_moved_to (malloc'ed) and *ret_reason; the state is then empty.
 */
int state_load(int dirfd, Protection ***ret, size_t *ret_n, size_t *ret_skipped, char **ret_moved_to,
               const char **ret_reason);
