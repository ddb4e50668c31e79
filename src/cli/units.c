/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotectctl's side of units protected by name: which operand is a
 * unit, and how status shows them (ListProtectedUnits through
 * liboomprotect's status).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "macro.h"
#include "oomprotect.h"
#include "parse.h"
#include "unit-protection.h"
#include "verbs.h"

bool cli_arg_is_unit(const char *s) {
        pid_t pid;

        return parse_pid(s, &pid) < 0 && strchr(s, '.') != NULL;
}

bool cli_unit_name_ok(const char *s) {
        return unit_name_is_protectable(s);
}

const struct oomprotect_unit_entry *cli_find_unit(const struct oomprotect_status *s, const char *unit) {
        for (size_t i = 0; i < s->n_units; i++)
                if (streq(s->units[i]->unit, unit))
                        return s->units[i];
        return NULL;
}

static void since_text(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000U);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

/* UNIT STATE MEMORY.MIN ADJ PROCESSES SINCE SOURCE CGROUP, then what a restart does. */
void cli_print_units(const struct oomprotect_status *s, const char *only) {
        int w_unit = 4, w_source = 6;
        size_t shown = 0;

        for (size_t i = 0; i < s->n_units; i++) {
                w_unit = MAX(w_unit, (int) strlen(s->units[i]->unit));
                w_source = MAX(w_source, (int) strlen(s->units[i]->source));
        }
        for (size_t i = 0; i < s->n_units; i++) {
                const struct oomprotect_unit_entry *u = s->units[i];
                _cleanup_free_ char *unit = text_escape(u->unit), *cgroup = text_escape(u->cgroup),
                                    *source = text_escape(u->source);
                char min[FORMAT_BYTES_MAX], since[32];

                if (only && !streq(u->unit, only))
                        continue;
                if (shown++ == 0)
                        printf("%-*s %-8s %-10s %-6s %-9s %-19s %-*s %s\n", w_unit, "UNIT", "STATE", "MEMORY.MIN", "ADJ",
                               "PROCESSES", "SINCE", w_source, "SOURCE", "CGROUP");
                since_text(u->since_usec, since, sizeof(since));
                printf("%-*s %-8s %-10s %-6d %-9zu %-19s %-*s %s\n", w_unit, strempty(unit),
                       u->running ? "running" : "stopped", format_bytes(min, sizeof(min), u->memory_min),
                       u->applied_adj, u->n_pids, since, w_source, strempty(source), strempty(cgroup));
                if (only)
                        for (size_t k = 0; k < u->n_pids; k++)
                                printf("  PID %d\n", (int) u->pids[k]);
        }
        if (shown > 0)
                printf("A unit stays protected across its restarts (and a stop and start) until it is\n"
                       "unprotected or systemd unloads it: the processes it starts get the adj too.\n");
}

json_object *cli_units_to_json(const struct oomprotect_status *s) {
        json_object *array = json_object_new_array();

        for (size_t i = 0; array && i < s->n_units; i++) {
                const struct oomprotect_unit_entry *u = s->units[i];
                json_object *o = json_object_new_object(), *pids = json_object_new_array();

                for (size_t k = 0; k < u->n_pids; k++)
                        json_object_array_add(pids, json_object_new_int64(u->pids[k]));
                json_object_object_add(o, "unit", json_object_new_string(u->unit));
                json_object_object_add(o, "cgroup", json_object_new_string(u->cgroup));
                json_object_object_add(o, "running", json_object_new_boolean(u->running));
                json_object_object_add(o, "memory_min", json_object_new_uint64(u->memory_min));
                json_object_object_add(o, "memory_low", json_object_new_uint64(u->memory_low));
                json_object_object_add(o, "applied_adj", json_object_new_int(u->applied_adj));
                json_object_object_add(o, "since_usec", json_object_new_uint64(u->since_usec));
                json_object_object_add(o, "source", json_object_new_string(u->source));
                json_object_object_add(o, "tag", isempty(u->tag) ? NULL : json_object_new_string(u->tag));
                json_object_object_add(o, "survives_restart", json_object_new_boolean(1));
                json_object_object_add(o, "pids", pids);
                json_object_array_add(array, o);
        }
        return array;
}
