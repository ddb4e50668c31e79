/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * oomprotect_get_status(): the Manager's properties (GetAll) and
 * ListProtected's a(usssiittss) in one struct. The strings point into the two
 * reply messages, which the struct keeps until oomprotect_status_free().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib-internal.h"
#include "oomprotect.h"
#include "oomprotect/protocol.h"

typedef struct Status {
        struct oomprotect_status pub; /* first: what the caller sees */
        sd_bus_message *properties, *list, *unit_list;
        struct oomprotect_entry *entries;
        const struct oomprotect_entry **pointers;
        struct oomprotect_unit_entry *units;
        const struct oomprotect_unit_entry **unit_pointers;
        pid_t *pids; /* every unit's, one after the other */
} Status;

LIB_EXPORT struct oomprotect_status *oomprotect_status_free(struct oomprotect_status *p) {
        Status *s = (Status *) p;

        if (!s)
                return NULL;
        sd_bus_message_unref(s->properties);
        sd_bus_message_unref(s->list);
        sd_bus_message_unref(s->unit_list);
        free(s->entries);
        free(s->pointers);
        free(s->units);
        free(s->unit_pointers);
        free(s->pids);
        free(s);
        return NULL;
}

static void status_freep(Status **s) {
        oomprotect_status_free(*s ? &(*s)->pub : NULL);
}

static int read_property(sd_bus_message *m, const char *name, struct oomprotect_status *s) {
        static const struct {
                const char *name;
                size_t offset;
        } strings[] = {
                { "Version", offsetof(struct oomprotect_status, version) },
                { "Backend", offsetof(struct oomprotect_status, backend) },
                { "BackendNote", offsetof(struct oomprotect_status, backend_note) },
                { "Slice", offsetof(struct oomprotect_status, slice) },
        };
        uint32_t u;
        int r;

        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
                if (strcmp(name, strings[i].name) == 0)
                        return sd_bus_message_read(m, "v", "s", (const char **) ((char *) s + strings[i].offset));
        if (strcmp(name, "ProtectedCount") == 0) {
                r = sd_bus_message_read(m, "v", "u", &u);
                s->protected_count = u;
                return r;
        }
        if (strcmp(name, "MemoryMinBudget") == 0)
                return sd_bus_message_read(m, "v", "t", &s->memory_min_budget);
        if (strcmp(name, "MemoryMinInUse") == 0)
                return sd_bus_message_read(m, "v", "t", &s->memory_min_in_use);
        if (strcmp(name, "ProtectedMemory") == 0)
                return sd_bus_message_read(m, "v", "t", &s->protected_memory);
        if (strcmp(name, "MaxProtectedMemory") == 0)
                return sd_bus_message_read(m, "v", "t", &s->max_protected_memory);
        return sd_bus_message_skip(m, "v"); /* a newer daemon's */
}

static int read_properties(sd_bus_message *reply, struct oomprotect_status *s) {
        const char *name;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = read_property(reply, name, s);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return lib_error_set(-EPROTO, "oomprotectd's properties cannot be read: %s.", strerror(-r));
        return 0;
}

/* One (usssiittss); 0 at the end of the array. */
static int read_entry(sd_bus_message *reply, struct oomprotect_entry *e) {
        uint32_t pid;
        int32_t original_adj, applied_adj;
        int r;

        r = sd_bus_message_read(reply, "(usssiittss)", &pid, &e->comm, &e->original_cgroup, &e->scope_cgroup,
                                &original_adj, &applied_adj, &e->memory_min, &e->since_usec, &e->source, &e->tag);
        if (r <= 0)
                return r;
        e->pid = (pid_t) pid;
        e->original_adj = original_adj;
        e->applied_adj = applied_adj;
        return 1;
}

static int grow(Status *s, size_t *alloc) {
        size_t n = *alloc ? *alloc * 2 : 16;
        struct oomprotect_entry *e = realloc(s->entries, n * sizeof(*e));

        if (!e)
                return -ENOMEM;
        s->entries = e;
        *alloc = n;
        return 0;
}

static int read_entries(Status *s) {
        size_t n = 0, alloc = 0;
        int r;

        r = sd_bus_message_enter_container(s->list, 'a', "(usssiittss)");
        while (r >= 0) {
                if (n == alloc && (r = grow(s, &alloc)) < 0)
                        break;
                r = read_entry(s->list, &s->entries[n]);
                if (r <= 0)
                        break;
                n++;
        }
        if (r < 0)
                return lib_error_set(r == -ENOMEM ? r : -EPROTO, "oomprotectd's list cannot be read: %s.",
                                     strerror(-r));
        s->pointers = calloc(n > 0 ? n : 1, sizeof(*s->pointers));
        if (!s->pointers)
                return lib_error_set(-ENOMEM, "Out of memory.");
        for (size_t i = 0; i < n; i++)
                s->pointers[i] = &s->entries[i];
        s->pub.entries = s->pointers;
        s->pub.n_entries = n;
        return 0;
}

/* One (ssbttitssau), its pids appended to s->pids (*n_pids so far); 0 at the end of the array. */
static int read_unit(Status *s, struct oomprotect_unit_entry *u, size_t *n_pids, size_t *alloc_pids) {
        sd_bus_message *m = s->unit_list;
        int32_t adj;
        uint32_t pid;
        int running, r;

        r = sd_bus_message_enter_container(m, 'r', "ssbttitssau");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(m, "ssbttitss", &u->unit, &u->cgroup, &running, &u->memory_min, &u->memory_low, &adj,
                                &u->since_usec, &u->source, &u->tag);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "u");
        u->running = running;
        u->applied_adj = adj;
        u->n_pids = 0;
        while (r >= 0 && (r = sd_bus_message_read(m, "u", &pid)) > 0) {
                if (*n_pids == *alloc_pids) {
                        size_t want = *alloc_pids ? *alloc_pids * 2 : 64;
                        pid_t *p = realloc(s->pids, want * sizeof(pid_t));
                        if (!p)
                                return -ENOMEM;
                        s->pids = p;
                        *alloc_pids = want;
                }
                s->pids[(*n_pids)++] = (pid_t) pid;
                u->n_pids++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

/* ListProtectedUnits; an older daemon has none (UnknownMethod): no units. */
static int read_units(sd_bus *bus, Status *s) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        size_t n = 0, alloc = 0, n_pids = 0, alloc_pids = 0, first = 0;
        int r;

        r = lib_message_new(bus, "ListProtectedUnits", &m);
        if (r >= 0)
                r = lib_call(bus, m, &s->unit_list);
        if (r == -EPROTO) {
                lib_error_reset();
                return 0;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(s->unit_list, 'a', "(ssbttitssau)");
        while (r >= 0) {
                if (n == alloc) {
                        size_t want = alloc ? alloc * 2 : 8;
                        struct oomprotect_unit_entry *u = realloc(s->units, want * sizeof(*u));
                        if (!u) {
                                r = -ENOMEM;
                                break;
                        }
                        s->units = u;
                        alloc = want;
                }
                r = read_unit(s, &s->units[n], &n_pids, &alloc_pids);
                if (r <= 0)
                        break;
                n++;
        }
        if (r < 0)
                return lib_error_set(r == -ENOMEM ? r : -EPROTO, "oomprotectd's list of units cannot be read: %s.",
                                     strerror(-r));
        s->unit_pointers = calloc(n > 0 ? n : 1, sizeof(*s->unit_pointers));
        if (!s->unit_pointers)
                return lib_error_set(-ENOMEM, "Out of memory.");
        /* The pids array may have moved while it grew: point into it only now. */
        for (size_t i = 0; i < n; i++) {
                s->units[i].pids = s->pids + first;
                first += s->units[i].n_pids;
                s->unit_pointers[i] = &s->units[i];
        }
        s->pub.units = s->unit_pointers;
        s->pub.n_units = n;
        return 0;
}

static int get_properties(sd_bus *bus, sd_bus_message **ret) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", OOMPROTECT_MANAGER_INTERFACE);
        if (r < 0)
                return lib_error_set(r, "Cannot build the GetAll call: %s.", strerror(-r));
        return lib_call(bus, m, ret);
}

LIB_EXPORT int oomprotect_get_status(struct oomprotect_status **ret) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        lib_cleanup_(lib_bus_closep) sd_bus *bus = NULL;
        lib_cleanup_(status_freep) Status *s = NULL;
        int r;

        lib_error_reset();
        if (!ret)
                return lib_error_set(-EINVAL, "oomprotect_get_status() needs somewhere to store the answer.");
        s = calloc(1, sizeof(*s));
        if (!s)
                return lib_error_set(-ENOMEM, "Out of memory.");
        s->pub.version = s->pub.backend = s->pub.backend_note = s->pub.slice = "";
        r = lib_bus_open(&bus);
        if (r >= 0)
                r = get_properties(bus, &s->properties);
        if (r >= 0)
                r = read_properties(s->properties, &s->pub);
        if (r >= 0)
                r = lib_message_new(bus, "ListProtected", &m);
        if (r >= 0)
                r = lib_call(bus, m, &s->list);
        if (r >= 0)
                r = read_entries(s);
        if (r >= 0)
                r = read_units(bus, s);
        if (r < 0)
                return r;
        *ret = &s->pub;
        s = NULL;
        return 0;
}
