/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A rule file through libinih, every key's validation, and the matcher on the rules that survive. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        RuleProcess p = { .pid = 4242, .exe = (char *) "/usr/lib/postgresql/15/bin/postgres", .comm = "postgres",
                          .uid = 104, .gid = 110, .cgroup = (char *) "/system.slice/postgresql@15-main.service" };
        RuleSet s = {};
        char *why = NULL;

        if (rules_parse_string(&s, (const char *) data, size, "fuzz.rules") >= 0)
                for (size_t i = 0; i < s.n; i++) {
                        (void) rule_matches(s.rules[i], &p, &why);
                        free(why);
                        why = NULL;
                }
        rule_set_done(&s);
        return 0;
}
