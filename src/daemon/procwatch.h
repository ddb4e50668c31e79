/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rules.h"

/*
 * Protection by rule in the daemon (oomprotect.rules(5)): the rules of
 * RuleDirectories=, a scan of /proc at start and on reload, and the
 * kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC) for
 * every exec (and fork, for rules that look at the cgroup) from then on.
 * Without the connector (no CAP_NET_ADMIN, another network namespace) the
 * scans still run and the log says that exec matching is off.
 */

typedef struct Manager Manager;
typedef struct ProcWatch ProcWatch;

/* Loads the rules, subscribes to the connector when there are any, scans. Fails only for memory. */
int procwatch_setup(Manager *m);
/* After engine_free(): no engine completion can come any more. */
void procwatch_done(Manager *m);

/*
 * SIGHUP: reads the rules again (the old ones stay if that fails), restores
 * the processes of rules that are gone, no longer match them or ask for
 * something else, then scans.
 */
int procwatch_reload(Manager *m);

/* For status and the CLI: how many rules are loaded, and whether exec matching is live. */
size_t procwatch_rule_count(const Manager *m);
bool procwatch_exec_matching(const Manager *m);
