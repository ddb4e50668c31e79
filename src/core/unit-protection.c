/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit-protection.h"

UnitProtection *unit_protection_new(void) {
        UnitProtection *u = calloc(1, sizeof(UnitProtection));

        if (u)
                u->state = PROTECTION_APPLYING;
        return u;
}

UnitProtection *unit_protection_free(UnitProtection *u) {
        if (!u)
                return NULL;
        free(u->unit);
        free(u->cgroup);
        free(u->source);
        free(u->tag);
        free(u->members);
        free(u);
        return NULL;
}

int unit_table_add(UnitTable *t, UnitProtection *u) {
        if (unit_table_get(t, u->unit))
                return -EEXIST;
        if (t->n == t->alloc) {
                size_t want = t->alloc ? t->alloc * 2 : 4;
                UnitProtection **n = realloc(t->items, want * sizeof(UnitProtection *));
                if (!n)
                        return -ENOMEM;
                t->items = n;
                t->alloc = want;
        }
        t->items[t->n++] = u;
        unit_table_account(t, u, true);
        return 0;
}

UnitProtection *unit_table_get(const UnitTable *t, const char *unit) {
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->items[i]->unit, unit))
                        return t->items[i];
        return NULL;
}

UnitProtection *unit_table_remove(UnitTable *t, const char *unit) {
        for (size_t i = 0; i < t->n; i++) {
                UnitProtection *u = t->items[i];
                if (!streq(u->unit, unit))
                        continue;
                memmove(t->items + i, t->items + i + 1, (t->n - i - 1) * sizeof(UnitProtection *));
                t->n--;
                unit_table_account(t, u, false);
                return u;
        }
        return NULL;
}

void unit_table_done(UnitTable *t) {
        for (size_t i = 0; i < t->n; i++)
                unit_protection_free(t->items[i]);
        free(t->items);
        *t = (UnitTable) {};
}

void unit_table_account(UnitTable *t, const UnitProtection *u, bool add) {
        if (add)
                t->memory_min_sum = t->memory_min_sum > UINT64_MAX - u->memory_min ? UINT64_MAX
                                                                                    : t->memory_min_sum + u->memory_min;
        else
                t->memory_min_sum = t->memory_min_sum > u->memory_min ? t->memory_min_sum - u->memory_min : 0;
}

UnitMember *unit_member_get(const UnitProtection *u, pid_t pid, uint64_t starttime) {
        for (size_t i = 0; i < u->n_members; i++)
                if (u->members[i].pid == pid && u->members[i].starttime == starttime)
                        return &u->members[i];
        return NULL;
}

int unit_member_add(UnitProtection *u, pid_t pid, uint64_t starttime, int original_adj) {
        if (u->n_members == u->alloc_members) {
                size_t want = u->alloc_members ? u->alloc_members * 2 : 4;
                UnitMember *n = realloc(u->members, want * sizeof(UnitMember));
                if (!n)
                        return -ENOMEM;
                u->members = n;
                u->alloc_members = want;
        }
        u->members[u->n_members++] = (UnitMember) { pid, starttime, original_adj };
        return 0;
}

void unit_members_prune(UnitProtection *u, bool (*alive)(const UnitMember *m, void *userdata), void *userdata) {
        size_t k = 0;

        for (size_t i = 0; i < u->n_members; i++)
                if (alive(&u->members[i], userdata))
                        u->members[k++] = u->members[i];
        u->n_members = k;
}

int unit_original_adj_for(const UnitProtection *u, int current_adj) {
        if (current_adj == u->applied_adj && u->has_base_adj)
                return u->base_adj;
        return current_adj;
}

bool unit_name_is_protectable(const char *name) {
        static const char *const types[] = { ".service", ".scope", ".socket", ".mount", ".swap" };
        const char *dot, *at;
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > 255 || name[0] == '.' || name[0] == '-' || name[0] == '@')
                return false;
        for (const char *s = name; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(":-_.\\@", *s)))
                        return false;
        dot = strrchr(name, '.');
        if (!dot || dot == name)
                return false;
        at = strchr(name, '@');
        if (at && (strchr(at + 1, '@') || at + 1 == dot)) /* one '@', and a template needs its instance */
                return false;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(dot, types[i]))
                        return true;
        return false;
}
