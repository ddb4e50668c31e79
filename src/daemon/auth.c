/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <grp.h>

#include "auth.h"
#include "engine.h"
#include "oomprotect/protocol.h"

static bool in_group(const Caller *c, gid_t gid) {
        if (c->gid == gid)
                return true;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == gid)
                        return true;
        return false;
}

int auth_check_modify(const Caller *c, gid_t allow_gid, uid_t *ret_owner, OpError *e) {
        if (c->uid == 0) {
                *ret_owner = UID_ANY;
                return 0;
        }
        if (allow_gid != (gid_t) -1 && in_group(c, allow_gid)) {
                *ret_owner = c->uid;
                return 0;
        }
        return op_error_set(e, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                            "Only root and members of the AllowGroup= group may change protections; "
                            "uid %u may only read them.",
                            (unsigned) c->uid);
}

gid_t auth_resolve_group(const char *name) {
        struct group *g;

        if (isempty(name))
                return (gid_t) -1;
        g = getgrnam(name);
        return g ? g->gr_gid : (gid_t) -1;
}
