/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hold.h"
#include "macro.h"

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int hold_table_add(HoldTable *t, const char *cgroup, const char *unit, uint64_t original_min, uint64_t original_low) {
        CgroupHold h = { .original_min = original_min, .original_low = original_low, .original_preference = -1,
                         .original_avoid = { .state = -1 }, .applied_preference = -1 };

        if (hold_table_get(t, cgroup))
                return -EEXIST;
        if (t->n == t->alloc) {
                size_t want = t->alloc ? t->alloc * 2 : 8;
                CgroupHold *n = realloc(t->items, want * sizeof(CgroupHold));
                if (!n)
                        return -ENOMEM;
                t->items = n;
                t->alloc = want;
        }
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                h.original_dropins[i] = (XattrValue) { .state = -1 };
        h.cgroup = strdup(cgroup);
        h.unit = unit ? strdup(unit) : NULL;
        if (!h.cgroup || (unit && !h.unit)) {
                free(h.cgroup);
                free(h.unit);
                return -ENOMEM;
        }
        t->items[t->n++] = h;
        return 0;
}

CgroupHold *hold_table_get(const HoldTable *t, const char *cgroup) {
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->items[i].cgroup, cgroup))
                        return &t->items[i];
        return NULL;
}

void hold_table_remove(HoldTable *t, size_t i) {
        free(t->items[i].cgroup);
        free(t->items[i].unit);
        xattr_value_done(&t->items[i].original_avoid);
        for (size_t k = 0; k < UNIT_DROPINS; k++)
                xattr_value_done(&t->items[i].original_dropins[k]);
        memmove(t->items + i, t->items + i + 1, (t->n - i - 1) * sizeof(CgroupHold));
        t->n--;
}

unsigned hold_dropin_mask(const CgroupHold *h) {
        unsigned mask = 1U << DROPIN_MEMORY_MIN | 1U << DROPIN_MEMORY_LOW;

        if (h->applied_preference >= 0 || h->loaded)
                mask |= 1U << DROPIN_MANAGED_OOM_PREFERENCE;
        return mask;
}

void hold_table_done(HoldTable *t) {
        while (t->n > 0)
                hold_table_remove(t, t->n - 1);
        free(t->items);
        *t = (HoldTable) {};
}

bool cgroup_is_ancestor(const char *a, const char *b) {
        size_t n = strlen(a);

        if (streq(a, "/"))
                return b[0] == '/' && b[1] != '\0';
        return strncmp(a, b, n) == 0 && b[n] == '/' && b[n + 1] != '\0';
}

bool unit_name_owns_cgroup(const char *name) {
        static const char *const suffixes[] = { ".slice", ".scope", ".service", ".socket", ".mount", ".swap" };
        size_t n = strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t k = strlen(suffixes[i]);
                if (n > k && streq(name + n - k, suffixes[i]))
                        return true;
        }
        return false;
}

void hold_chain_free(char **paths, char **units, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(paths ? paths[i] : NULL);
                free(units ? units[i] : NULL);
        }
        free(paths);
        free(units);
}

int hold_chain(const char *cgroup, char ***ret_paths, char ***ret_units, size_t *ret_n) {
        char **paths = NULL, **units = NULL;
        bool in_units = true;
        size_t n = 0, depth = 0;

        if (!cgroup || cgroup[0] != '/' || cgroup[1] == '\0')
                return -EINVAL;
        for (const char *s = cgroup; *s; s++)
                depth += *s == '/';
        paths = calloc(depth, sizeof(char *));
        units = calloc(depth, sizeof(char *));
        if (!paths || !units)
                goto oom;
        for (const char *s = cgroup + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                const char *start = s;
                while (start > cgroup + 1 && start[-1] != '/')
                        start--;
                if (s == start) /* "//" or a trailing '/' */
                        goto invalid;
                paths[n] = strndup(cgroup, (size_t) (s - cgroup));
                if (!paths[n])
                        goto oom;
                char *name = strndup(start, (size_t) (s - start));
                if (!name)
                        goto oom;
                /*
                 * PID 1's units: a run of slices, then at most one leaf unit
                 * (a service, a scope). Below a leaf is a delegated subtree
                 * (user@.service's, a container's), whose names are another
                 * manager's or nobody's, even where they look like units.
                 */
                in_units = in_units && unit_name_owns_cgroup(name);
                if (in_units)
                        units[n] = name;
                else
                        free(name);
                if (in_units && !endswith(name, ".slice"))
                        in_units = false;
                n++;
                if (*s == '\0')
                        break;
        }
        *ret_paths = paths;
        *ret_units = units;
        *ret_n = n;
        return 0;
invalid:
        hold_chain_free(paths, units, n);
        return -EINVAL;
oom:
        hold_chain_free(paths, units, n);
        return -ENOMEM;
}

void hold_compute(const HoldTable *t, const HoldDemand *d, size_t n_demands, uint64_t *ret_min, uint64_t *ret_low) {
        /* Own demand first: what each held cgroup's own protections ask for. */
        for (size_t i = 0; i < t->n; i++) {
                uint64_t min = 0, low = 0;
                for (size_t k = 0; k < n_demands; k++)
                        if (streq(d[k].cgroup, t->items[i].cgroup)) {
                                min = add_sat(min, d[k].min);
                                low = add_sat(low, d[k].low);
                        }
                ret_min[i] = MAX(min, t->items[i].original_min);
                ret_low[i] = MAX(low, t->items[i].original_low);
        }
        /* Then every ancestor carries what the cgroups below it were raised by... */
        _cleanup_free_ uint64_t *cover_min = calloc(t->n + 1, sizeof(uint64_t));
        _cleanup_free_ uint64_t *cover_low = calloc(t->n + 1, sizeof(uint64_t));
        for (size_t j = 0; j < t->n; j++) {
                const CgroupHold *target = &t->items[j];
                uint64_t dmin = 0, dlow = 0;
                bool demanded = false;

                for (size_t k = 0; k < n_demands && !demanded; k++)
                        demanded = streq(d[k].cgroup, target->cgroup);
                if (!demanded)
                        continue;
                /* Recomputed from the demands alone, not from ret_*: an ancestor's own raise is not counted twice. */
                for (size_t k = 0; k < n_demands; k++)
                        if (streq(d[k].cgroup, target->cgroup)) {
                                dmin = add_sat(dmin, d[k].min);
                                dlow = add_sat(dlow, d[k].low);
                        }
                dmin = dmin > target->original_min ? dmin - target->original_min : 0;
                dlow = dlow > target->original_low ? dlow - target->original_low : 0;
                uint64_t tmin = add_sat(target->original_min, dmin), tlow = add_sat(target->original_low, dlow);
                for (size_t i = 0; i < t->n; i++)
                        if (cgroup_is_ancestor(t->items[i].cgroup, target->cgroup)) {
                                ret_min[i] = add_sat(ret_min[i], dmin);
                                ret_low[i] = add_sat(ret_low[i], dlow);
                                if (cover_min && cover_low) {
                                        cover_min[i] = add_sat(cover_min[i], tmin);
                                        cover_low[i] = add_sat(cover_low[i], tlow);
                                }
                        }
        }
        /* ...and at least what those targets have together. */
        for (size_t i = 0; cover_min && cover_low && i < t->n; i++) {
                ret_min[i] = MAX(ret_min[i], cover_min[i]);
                ret_low[i] = MAX(ret_low[i], cover_low[i]);
        }
}
