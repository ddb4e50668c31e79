/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

/* Index of pid, or of where it would be inserted. */
static size_t lower_bound(const Registry *r, pid_t pid) {
        size_t lo = 0, hi = r->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->items[mid]->pid < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

void registry_account(Registry *r, const Protection *p, bool add) {
        bool moved = p->kind == PROTECTION_MOVED;

        if (add) {
                r->memory_min_sum += p->memory_min;
                r->slice_min_sum += moved ? p->memory_min : 0;
                r->slice_low_sum += moved ? p->memory_low : 0;
        } else {
                r->memory_min_sum -= p->memory_min;
                r->slice_min_sum -= moved ? p->memory_min : 0;
                r->slice_low_sum -= moved ? p->memory_low : 0;
        }
}

int registry_add(Registry *r, Protection *p) {
        size_t i = lower_bound(r, p->pid);

        if (i < r->n && r->items[i]->pid == p->pid)
                return -EEXIST;
        if (r->n == r->alloc) {
                size_t want = r->alloc ? r->alloc * 2 : 16;
                Protection **n = realloc(r->items, want * sizeof(Protection *));
                if (!n)
                        return -ENOMEM;
                r->items = n;
                r->alloc = want;
        }
        memmove(r->items + i + 1, r->items + i, (r->n - i) * sizeof(Protection *));
        r->items[i] = p;
        r->n++;
        registry_account(r, p, true);
        return 0;
}

Protection *registry_get(const Registry *r, pid_t pid) {
        size_t i = lower_bound(r, pid);

        return i < r->n && r->items[i]->pid == pid ? r->items[i] : NULL;
}

Protection *registry_remove(Registry *r, pid_t pid) {
        size_t i = lower_bound(r, pid);
        Protection *p;

        if (i >= r->n || r->items[i]->pid != pid)
                return NULL;
        p = r->items[i];
        memmove(r->items + i, r->items + i + 1, (r->n - i - 1) * sizeof(Protection *));
        r->n--;
        registry_account(r, p, false);
        return p;
}

void registry_done(Registry *r) {
        for (size_t i = 0; i < r->n; i++)
                protection_free(r->items[i]);
        free(r->items);
        *r = (Registry) {};
}

bool budget_allows(uint64_t in_use, uint64_t request, uint64_t budget) {
        if (budget == 0)
                return true;
        if (request > budget)
                return false;
        return in_use <= budget - request;
}
