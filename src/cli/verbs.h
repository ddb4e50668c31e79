/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * oomprotectctl's verbs that live in files of their own, for the verbs[]
 * table in oomprotectctl.c. Same contract as the others: argv[0] is the
 * verb, the return value the exit status.
 */

#include "macro.h"

/* oomprotectctl.c: "oomprotectctl: " and the message on stderr; returns the usage exit code (2). */
int usage_error(const char *fmt, ...) _printf_(1, 2);

/* src/cli/drop-in.c: a unit protected for good by a systemd drop-in, counted by oomprotectd (root). */
int verb_drop_in(int argc, char *argv[]);

/* src/cli/doctor.c: read-only, needs neither oomprotectd nor the bus. */
int verb_doctor(int argc, char *argv[]);

/* src/cli/rules.c: the rules and what they match; read-only, needs neither oomprotectd nor the bus. */
int verb_rules(int argc, char *argv[]);

/*
 * --json[=pretty|short|off], as systemctl takes it: *ret_flags the json-c
 * flags to print with, or -1 for off. -EINVAL (nothing set) for another word.
 */
int parse_json_mode(const char *arg, int *ret_flags);

/* src/cli/units.c: units protected by name. */
#include <json-c/json.h>
#include <stdbool.h>

#include "oomprotect.h"

/* An operand that is no PID but has a dot: a unit name ("nginx.service"), for protect and the others. */
bool cli_arg_is_unit(const char *s);
/* Whether it is a unit name that can be protected (unit-protection.h's check, the daemon's own). */
bool cli_unit_name_ok(const char *s);
const struct oomprotect_unit_entry *cli_find_unit(const struct oomprotect_status *s, const char *unit);
/* The units' table (only: that one, with its PIDs; NULL: all). Prints nothing without units. */
void cli_print_units(const struct oomprotect_status *s, const char *only);
json_object *cli_units_to_json(const struct oomprotect_status *s);
