/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * oomprotectctl's verbs that live in files of their own, for the verbs[]
 * table in oomprotectctl.c. Same contract as the others: argv[0] is the
 * verb, the return value the exit status.
 */

/* src/cli/doctor.c: read-only, needs neither oomprotectd nor the bus. */
int verb_doctor(int argc, char *argv[]);

/* src/cli/rules.c: the rules and what they match; read-only, needs neither oomprotectd nor the bus. */
int verb_rules(int argc, char *argv[]);

/*
 * --json[=pretty|short|off], as systemctl takes it: *ret_flags the json-c
 * flags to print with, or -1 for off. -EINVAL (nothing set) for another word.
 */
int parse_json_mode(const char *arg, int *ret_flags);
