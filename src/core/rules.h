/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protection.h"

/*
 * Protection by rule (oomprotect.rules(5)): *.rules files in
 * /etc/oomprotect/rules.d and /usr/lib/oomprotect/rules.d, one [Rule] section
 * a rule. A rule names what it matches (Executable=, Comm=, User=, Group=,
 * Unit=, Cgroup=: every key given must match, any of a key's values will do)
 * and the protection it asks for (MemoryMin=, MemoryLow=, OOMScoreAdjust=,
 * InPlace=, Descendants=). The parser and the matcher are pure; the loader
 * reads the directories, the process reader /proc.
 */

#define RULES_ETC_DIRECTORY "/etc/oomprotect/rules.d"
#define RULES_LIB_DIRECTORY "/usr/lib/oomprotect/rules.d"
#define RULE_NAME_MAX 64
#define RULE_SOURCE_PREFIX "rule:"

typedef struct RuleList {
        char **items;
        size_t n;
} RuleList;

typedef struct Rule {
        char *name;
        char *file;    /* where it is defined */
        unsigned line; /* its [Rule] header */
        RuleList executables; /* absolute paths or globs, matched against /proc/PID/exe */
        RuleList comms;
        RuleList units;   /* unit names or globs: a component of the process's cgroup path */
        RuleList cgroups; /* cgroup paths or globs: the process's cgroup or one of its ancestors */
        uid_t *users;
        size_t n_users;
        gid_t *groups;
        size_t n_groups;
        ProtectOptions options; /* tag unused: a rule's records carry the source "rule:NAME" */
} Rule;

typedef struct RuleSet {
        Rule **rules; /* in order of precedence: the first that matches applies */
        size_t n;
        char **warnings; /* "FILE:LINE: ..." for every bad line, key, rule or file, in the order met */
        size_t n_warnings;
} RuleSet;

void rule_set_done(RuleSet *s);

/*
 * Pure: parses the text of one rule file (file names it in warnings) and
 * appends its good rules to s. A bad key, value or line is a warning naming
 * file, line and key, and the whole rule it belongs to is skipped, never
 * half-applied; so is a rule without any match key, or one whose name is
 * taken already. Returns the number of warnings added, or -ENOMEM.
 */
int rules_parse_string(RuleSet *s, const char *text, size_t len, const char *file);

/*
 * Reads every *.rules file of dirs (in order of priority: a file of a name
 * met in an earlier directory masks the later ones, as systemd's /etc masks
 * /usr/lib), in lexical order of the file names. A missing directory is
 * fine; a file (or directory) not owned by root or writable by group or
 * others is refused with a warning, as is a file that is not regular, or
 * empty (a link to /dev/null) masks without a warning. Returns the warnings
 * added, or a negative errno for memory.
 */
int rules_load(RuleSet *s, char *const *dirs, size_t n_dirs);

/* rules_load() of a space-separated list of directories (RuleDirectories=), at most RULES_DIRECTORIES_MAX. */
#define RULES_DIRECTORIES_MAX 16
int rules_load_string(RuleSet *s, const char *dirs);

/* What the matcher needs to know about a process. */
typedef struct RuleProcess {
        pid_t pid;
        char *exe;    /* the target of /proc/PID/exe; NULL for a kernel thread or one we may not read */
        char comm[16];
        uid_t uid;    /* real */
        gid_t gid;    /* real */
        gid_t *groups; /* supplementary */
        size_t n_groups;
        char *cgroup; /* the "0::" path; NULL if none */
        bool kernel_thread; /* no rule ever matches one */
} RuleProcess;

void rule_process_done(RuleProcess *p);

/* Reads exe, comm, uids, gids and cgroup of pid from procfd (a dirfd of /proc). -ESRCH when it is gone. */
int rule_process_read(int procfd, pid_t pid, RuleProcess *ret);

/* Pure: the real gid and the supplementary groups from the text of /proc/PID/status. */
int rules_parse_status_gids(const char *text, gid_t *ret_gid, gid_t **ret_groups, size_t *ret_n);

/*
 * Pure: whether r matches p. ret_why (may be NULL) gets a sentence saying
 * which key matched what, or which key did not match; the caller frees it.
 */
bool rule_matches(const Rule *r, const RuleProcess *p, char **ret_why);

/* Pure: the first rule of s that matches p (NULL: none). */
const Rule *rules_match(const RuleSet *s, const RuleProcess *p);

const Rule *rules_find(const RuleSet *s, const char *name);

/* Whether a rule looks at the process's cgroup (Unit=, Cgroup=): what can change between fork and exec. */
bool rule_uses_cgroup(const Rule *r);

/*
 * Pure: whether r protects whole units by name (engine_protect_unit()): its
 * only match key is Unit=, every value the exact name of a unit with
 * processes of its own (no glob, no slice), and it does not ask for
 * InPlace=no. Other rules protect the processes they match one by one.
 */
bool rule_is_unit_wide(const Rule *r);

/* Pure: whether unit is one of r's Unit= values, as written. */
bool rule_names_unit(const Rule *r, const char *unit);

/*
 * Pure: the unit of a unit-wide rule r that a process in cgroup belongs to,
 * where systemd lays PID 1's units out ("/a.slice/b.slice/UNIT[/...]": only
 * slices above it); NULL if none, or r is not unit-wide.
 */
const char *rule_unit_of_cgroup(const Rule *r, const char *cgroup);

/* Pure: the rule name of a record's source ("rule:NAME" -> "NAME"), NULL for another source. */
const char *rules_source_name(const char *source);
