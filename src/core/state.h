/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

#include "hold.h"
#include "protection.h"
#include "unit-protection.h"

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
 * oom_score_adj they had. A daemon without units ignores the key.
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

/* Writes state.json in dirfd atomically (tmp, fsync, rename). */
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
 * Reads state.json from dirfd. A missing file is an empty state. A corrupt
 * one is renamed to "state.json.corrupt-<usec>" and reported through
 * *ret_moved_to (malloc'ed) and *ret_reason; the state is then empty.
 */
int state_load(int dirfd, Protection ***ret, size_t *ret_n, size_t *ret_skipped, char **ret_moved_to,
               const char **ret_reason);
