/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>

#include "protection.h"

Protection *protection_new(void) {
        Protection *p = calloc(1, sizeof(Protection));

        if (!p)
                return NULL;
        p->pidfd = -EBADF;
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
