/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "protection.h"

static const char *const kind_names[_PROTECTION_KIND_MAX] = {
        [PROTECTION_MOVED] = "moved",
        [PROTECTION_IN_PLACE] = "in-place",
};

static const char *const state_names[_PROTECTION_STATE_MAX] = {
        [PROTECTION_APPLYING] = "applying",
        [PROTECTION_ACTIVE] = "active",
        [PROTECTION_RESTORING] = "restoring",
};

static int lookup(const char *const *names, int n, const char *s) {
        for (int i = 0; s && i < n; i++)
                if (streq(names[i], s))
                        return i;
        return n;
}

const char *protection_kind_to_string(ProtectionKind k) {
        return k >= 0 && k < _PROTECTION_KIND_MAX ? kind_names[k] : NULL;
}

ProtectionKind protection_kind_from_string(const char *s) {
        return (ProtectionKind) lookup(kind_names, _PROTECTION_KIND_MAX, s);
}

const char *protection_state_to_string(ProtectionState st) {
        return st >= 0 && st < _PROTECTION_STATE_MAX ? state_names[st] : NULL;
}

ProtectionState protection_state_from_string(const char *s) {
        return (ProtectionState) lookup(state_names, _PROTECTION_STATE_MAX, s);
}

Protection *protection_new(void) {
        Protection *p = calloc(1, sizeof(Protection));

        if (!p)
                return NULL;
        p->pidfd = -EBADF;
        p->state = PROTECTION_ACTIVE;
        return p;
}

Protection *protection_free(Protection *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_members; i++)
                free(p->members[i].original_cgroup);
        free(p->members);
        free(p->original_cgroup);
        free(p->scope_cgroup);
        free(p->original_unit);
        free(p->source);
        free(p->tag);
        safe_close(p->pidfd);
        free(p);
        return NULL;
}

void protection_array_free(Protection **a, size_t n) {
        if (!a)
                return;
        for (size_t i = 0; i < n; i++)
                protection_free(a[i]);
        free(a);
}

static const ProtectionMember *find_member(const Protection *p, pid_t pid, uint64_t starttime) {
        for (size_t i = 0; i < p->n_members; i++)
                if (p->members[i].pid == pid && p->members[i].starttime == starttime)
                        return &p->members[i];
        return NULL;
}

const char *protection_restore_cgroup(const Protection *p, pid_t pid, uint64_t starttime) {
        const ProtectionMember *m = find_member(p, pid, starttime);

        return m && m->original_cgroup ? m->original_cgroup : p->original_cgroup;
}

bool protection_restore_adj(const Protection *p, pid_t pid, uint64_t starttime, int current_adj, int *ret_adj) {
        const ProtectionMember *m = find_member(p, pid, starttime);
        int want;

        if (pid == p->pid && starttime == p->starttime)
                want = p->original_adj;
        else if (m)
                want = m->original_adj;
        else if (current_adj == p->applied_adj)
                want = p->original_adj;
        else
                return false;
        if (want == current_adj)
                return false;
        *ret_adj = want;
        return true;
}
