/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "op-error.h"

/*
 * Who may change protections (DESIGN.md section 3): root everything; members
 * of AllowGroup= only processes of their own uid; everyone else reads only.
 * The same rule for D-Bus (credentials from the bus) and ctl.sock (SO_PEERCRED).
 */

typedef struct Caller {
        uid_t uid;
        gid_t gid;            /* primary group */
        const gid_t *groups;  /* supplementary groups */
        size_t n_groups;
} Caller;

/*
 * 0 when the caller may change protections, with *ret_owner the uid whose
 * processes it may touch (UID_ANY for root); -EPERM with e filled otherwise.
 * allow_gid is AllowGroup= resolved (or (gid_t) -1 when unset or unknown).
 */
int auth_check_modify(const Caller *c, gid_t allow_gid, uid_t *ret_owner, OpError *e);

/* Resolves AllowGroup= to a gid; (gid_t) -1 when empty or not a group on this system. */
gid_t auth_resolve_group(const char *name);
