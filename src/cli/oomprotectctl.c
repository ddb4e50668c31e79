/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotectctl: protect, unprotect and list processes through oomprotectd's
 * org.oomprotect.Manager on the system bus ($DBUS_SYSTEM_BUS_ADDRESS is
 * honoured). One function per verb, found in verbs[]; each verb parses its
 * own options.
 *
 * Exit codes: 0 success, 1 failure or a negative answer (is-protected: not
 * protected), 2 usage error, 3 oomprotectd not reachable, 4 permission denied.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "macro.h"
#include "oomprotect.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "verbs.h"

#define PROGRAM "oomprotectctl"

enum {
        EXIT_OK = 0,
        EXIT_NEGATIVE = 1, /* a failure, or "no" */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_DENIED = 4,
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct oomprotect_status *, oomprotect_status_free);

typedef struct Verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
} Verb;

/* ---- messages and the bus ---- */

int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_USAGE;
}

/* getopt_long() with our own messages (getopt's would name the verb, not the program). */
static int next_option(int argc, char *argv[], const char *shortopts, const struct option *longopts) {
        int c = getopt_long(argc, argv, shortopts, longopts, NULL);

        if (c == '?' && optopt > 0 && optopt < 0x80)
                usage_error("%s: unknown option '-%c'; see " PROGRAM " %s --help.", argv[0], optopt, argv[0]);
        else if (c == '?')
                usage_error("%s: unknown option \"%s\"; see " PROGRAM " %s --help.", argv[0], argv[optind - 1],
                            argv[0]);
        else if (c == ':')
                usage_error("%s: option \"%s\" needs a value.", argv[0], argv[optind - 1]);
        return c;
}

static void reset_getopt(void) {
        optind = 0; /* GNU: start over, at argv[1] */
        opterr = 0;
}

/* Prints what went wrong (the daemon's sentence where it gave one) and returns the exit code for it. */
static int report_error(int r) {
        fprintf(stderr, PROGRAM ": %s\n", oomprotect_strerror(r));
        switch (r) {
        case -ECONNREFUSED:
        case -ETIMEDOUT:
                return EXIT_UNREACHABLE;
        case -EPERM:
        case -EACCES:
                return EXIT_DENIED;
        default:
                return EXIT_NEGATIVE;
        }
}

static int parse_pid_arg(const char *verb, const char *s, pid_t *ret) {
        if (parse_pid(s, ret) < 0)
                return usage_error("%s: \"%s\" is not a PID (a number from 1 to %d).", verb, s,
                                   OOMPROTECT_PID_MAX_LIMIT);
        return EXIT_OK;
}

/* A unit operand: a name the daemon would take, else the usage error. */
static int unit_arg(const char *verb, const char *s) {
        if (!cli_unit_name_ok(s))
                return usage_error("%s: \"%s\" is not a unit name that can be protected: give its full name with "
                                   "its type, such as nginx.service (a .service, .scope, .socket, .mount or .swap).",
                                   verb, s);
        return EXIT_OK;
}

/* One positional PID or UNIT, after the options: *ret_unit set (and *ret 0) for a unit. */
static int pid_or_unit_operand(int argc, char *argv[], pid_t *ret, const char **ret_unit) {
        *ret_unit = NULL;
        if (optind < argc && optind + 1 == argc && cli_arg_is_unit(argv[optind])) {
                *ret = 0;
                *ret_unit = argv[optind];
                return unit_arg(argv[0], argv[optind]);
        }
        if (optind >= argc)
                return usage_error("%s: which PID or UNIT? See " PROGRAM " %s --help.", argv[0], argv[0]);
        if (optind + 1 < argc)
                return usage_error("%s: one PID or UNIT only; \"%s\" is one too many.", argv[0], argv[optind + 1]);
        if (parse_pid(argv[optind], ret) < 0)
                return usage_error("%s: \"%s\" is neither a PID (a number from 1 to %d) nor a unit name (such as "
                                   "nginx.service).", argv[0], argv[optind], OOMPROTECT_PID_MAX_LIMIT);
        return EXIT_OK;
}


/* ---- protect ---- */

typedef struct ProtectArgs {
        pid_t pid;
        const char *unit; /* protect UNIT */
        struct oomprotect_options options;
        bool help;
} ProtectArgs;

static void help_protect(void) {
        printf(PROGRAM " protect PID|UNIT [OPTIONS]\n\n"
               "Protect a process from the OOM killer: lower its oom_score_adj and reserve\n"
               "memory for it, in its own scope under the protected slice, or in place (its\n"
               "own cgroup and every ancestor raised) where a move would take it out of its\n"
               "unit's limits: a service's process, a container's, a limited cgroup's.\n\n"
               "  --min SIZE     memory.min of the scope (bytes, K/M/G/T, or N%% of RAM)\n"
               "  --low SIZE     memory.low of the scope\n"
               "  --adj N        oom_score_adj to apply (-1000..1000)\n"
               "  --tree         move the process's current children and theirs too (those\n"
               "                 you could protect on their own)\n"
               "  --oom-group    set memory.oom.group: an OOM kill takes the whole scope\n"
               "  --tag TAG      label the protection (see unprotect --tag)\n"
               "  --in-place     never move it: protect its own cgroup where it is\n"
               "  --move         a scope of its own even where that leaves its unit's limits\n"
               "                 (root only)\n"
               "  -h --help      show this help\n\n"
               "Unset options take the daemon's configured defaults; without --in-place or\n"
               "--move the daemon decides. Protecting again changes the settings given.\n\n"
               "A UNIT (nginx.service; root only) is protected in place: its cgroup and the\n"
               "ancestors get --min/--low, every process of it --adj, and so do the processes\n"
               "it starts later: the protection survives restarts of the unit. --tree,\n"
               "--oom-group and --move do not apply to a unit.\n");
}

static int parse_size_arg(const char *verb, const char *opt, const char *s, uint64_t *ret) {
        if (parse_size(s, physical_memory(), ret) < 0)
                return usage_error("%s: %s \"%s\" is not a size: give bytes with an optional K, M, G or T, "
                                   "or a percentage of RAM such as 5%%.",
                                   verb, opt, s);
        return EXIT_OK;
}

/* The options protect and run share. */
enum { ARG_MIN = 0x100, ARG_LOW, ARG_ADJ, ARG_TREE, ARG_OOM_GROUP, ARG_TAG, ARG_IN_PLACE, ARG_MOVE };
#define PROTECTION_OPTIONS                                                                                  \
        { "min", required_argument, NULL, ARG_MIN }, { "low", required_argument, NULL, ARG_LOW },         \
                { "adj", required_argument, NULL, ARG_ADJ }, { "oom-group", no_argument, NULL, ARG_OOM_GROUP }, \
                { "tag", required_argument, NULL, ARG_TAG }, { "in-place", no_argument, NULL, ARG_IN_PLACE },       \
                { "move", no_argument, NULL, ARG_MOVE }

/* One of PROTECTION_OPTIONS (or --tree) into o; EXIT_OK, or the usage error. */
static int parse_protection_option(const char *verb, int c, struct oomprotect_options *o) {
        switch (c) {
        case ARG_MIN:
                o->set |= OOMPROTECT_OPTION_MEMORY_MIN;
                return parse_size_arg(verb, "--min", optarg, &o->memory_min);
        case ARG_LOW:
                o->set |= OOMPROTECT_OPTION_MEMORY_LOW;
                return parse_size_arg(verb, "--low", optarg, &o->memory_low);
        case ARG_ADJ:
                o->set |= OOMPROTECT_OPTION_OOM_SCORE_ADJ;
                if (parse_int_range(optarg, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX,
                                    &o->oom_score_adj) < 0)
                        return usage_error("%s: --adj \"%s\" is not a number from -1000 to 1000.", verb, optarg);
                return EXIT_OK;
        case ARG_TREE:
                o->set |= OOMPROTECT_OPTION_DESCENDANTS;
                o->descendants = 1;
                return EXIT_OK;
        case ARG_OOM_GROUP:
                o->set |= OOMPROTECT_OPTION_OOM_GROUP;
                o->oom_group = 1;
                return EXIT_OK;
        case ARG_TAG:
                if (isempty(optarg))
                        return usage_error("%s: --tag needs a non-empty TAG.", verb);
                o->set |= OOMPROTECT_OPTION_TAG;
                o->tag = optarg;
                return EXIT_OK;
        case ARG_IN_PLACE:
        case ARG_MOVE:
                if (o->set & OOMPROTECT_OPTION_IN_PLACE)
                        return usage_error("%s: give --in-place or --move, not both.", verb);
                o->set |= OOMPROTECT_OPTION_IN_PLACE;
                o->in_place = c == ARG_IN_PLACE;
                return EXIT_OK;
        default:
                return EXIT_USAGE;
        }
}

static int parse_protect_args(int argc, char *argv[], ProtectArgs *a) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' }, { "tree", no_argument, NULL, ARG_TREE }, PROTECTION_OPTIONS, {},
        };
        int c, r = EXIT_OK;

        reset_getopt();
        while (r == EXIT_OK && (c = next_option(argc, argv, ":h", options)) >= 0) {
                if (c == 'h') {
                        a->help = true;
                        return EXIT_OK;
                }
                r = parse_protection_option("protect", c, &a->options);
        }
        if (r != EXIT_OK)
                return r;
        r = pid_or_unit_operand(argc, argv, &a->pid, &a->unit);
        if (r == EXIT_OK && a->unit && (a->options.set & (OOMPROTECT_OPTION_DESCENDANTS | OOMPROTECT_OPTION_OOM_GROUP)))
                return usage_error("protect: --tree and --oom-group do not apply to a unit: all its processes are "
                                   "covered, in place.");
        if (r == EXIT_OK && a->unit && (a->options.set & OOMPROTECT_OPTION_IN_PLACE) && !a->options.in_place)
                return usage_error("protect: --move does not apply to a unit: a unit is protected in place.");
        return r;
}

static int verb_protect(int argc, char *argv[]) {
        ProtectArgs a = { .options = OOMPROTECT_OPTIONS_INIT };
        int r;

        r = parse_protect_args(argc, argv, &a);
        if (r != EXIT_OK)
                return r;
        if (a.help) {
                help_protect();
                return EXIT_OK;
        }
        r = a.unit ? oomprotect_protect_unit(a.unit, &a.options) : oomprotect_protect(a.pid, &a.options);
        if (r < 0)
                return report_error(r);
        return EXIT_OK;
}

/* ---- unprotect ---- */

static void help_unprotect(void) {
        printf(PROGRAM " unprotect PID | UNIT | --all | --tag TAG\n\n"
               "Put processes back exactly as they were before they were protected: their\n"
               "original cgroup and oom_score_adj. A UNIT protected by name gets back the\n"
               "memory protection its cgroup and ancestors had and each of its processes\n"
               "its own oom_score_adj (--all does not include units).\n\n"
               "  --all          every protected process (yours only, unless you are root)\n"
               "  --tag TAG      every process protected with this tag\n"
               "  -h --help      show this help\n");
}

static int report_unprotected(int n) {
        if (n < 0)
                return report_error(n);
        printf("Unprotected %d process%s.\n", n, n == 1 ? "" : "es");
        return EXIT_OK;
}

static int verb_unprotect(int argc, char *argv[]) {
        enum { ARG_ALL = 0x200 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "all", no_argument, NULL, ARG_ALL },
                { "tag", required_argument, NULL, ARG_TAG },
                {},
        };
        const char *tag = NULL, *unit = NULL;
        bool all = false;
        pid_t pid = 0;
        int c, r;

        reset_getopt();
        while ((c = next_option(argc, argv, ":h", options)) >= 0)
                switch (c) {
                case 'h':
                        help_unprotect();
                        return EXIT_OK;
                case ARG_ALL:
                        all = true;
                        break;
                case ARG_TAG:
                        if (isempty(optarg))
                                return usage_error("unprotect: --tag needs a non-empty TAG.");
                        tag = optarg;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if ((all || tag) && (optind < argc || (all && tag)))
                return usage_error("unprotect: give one of PID, --all or --tag TAG.");
        if (!all && !tag) {
                r = pid_or_unit_operand(argc, argv, &pid, &unit);
                if (r != EXIT_OK)
                        return r;
        }
        if (unit) {
                r = oomprotect_unprotect_unit(unit);
                return r < 0 ? report_error(r) : EXIT_OK;
        }
        if (all)
                return report_unprotected(oomprotect_unprotect_all());
        if (tag)
                return report_unprotected(oomprotect_unprotect_tag(tag));
        r = oomprotect_unprotect(pid);
        if (r < 0)
                return report_error(r);
        return EXIT_OK;
}

/* ---- is-protected ---- */

static void help_is_protected(void) {
        printf(PROGRAM " is-protected PID|UNIT [-q]\n\n"
               "Print \"yes\" and exit 0 if PID is protected (on its own, or as a process of a\n"
               "unit protected by name) or UNIT is protected by name, else print \"no\" and\n"
               "exit 1.\n\n"
               "  -q --quiet     print nothing, only set the exit code\n"
               "  -h --help      show this help\n");
}

static int verb_is_protected(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        bool quiet = false;
        const char *unit;
        int c, r, yes;
        pid_t pid;

        reset_getopt();
        while ((c = next_option(argc, argv, ":hq", options)) >= 0)
                switch (c) {
                case 'h':
                        help_is_protected();
                        return EXIT_OK;
                case 'q':
                        quiet = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        r = pid_or_unit_operand(argc, argv, &pid, &unit);
        if (r != EXIT_OK)
                return r;
        if (unit) {
                _cleanup_(oomprotect_status_freep) struct oomprotect_status *s = NULL;
                r = oomprotect_get_status(&s);
                yes = r >= 0 && cli_find_unit(s, unit) != NULL;
        } else
                r = oomprotect_is_protected(pid, &yes);
        if (r < 0)
                return report_error(r);
        if (!quiet)
                puts(yes ? "yes" : "no");
        return yes ? EXIT_OK : EXIT_NEGATIVE;
}

/* ---- status ---- */

/* Control characters would let a process name forge table rows or drive the terminal: escaped (escape.h). */
static char *printable(const char *s) {
        return text_escape(s);
}

static void format_since(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000U);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

/*
 * A protection's kind, from what ListProtected says: a scope of its own
 * (moved), its own cgroup (in place), or neither (adj-only backend).
 */
static const char *entry_kind(const struct oomprotect_entry *e) {
        if (streq(e->source, "unit") || streq(e->source, "drop-in"))
                return "unit"; /* a process of a unit protected by name */
        if (!isempty(e->scope_cgroup))
                return "moved";
        return isempty(e->original_cgroup) ? "adj-only" : "in-place";
}

/* PID COMM KIND MEMORY.MIN ADJ SINCE SOURCE [TAG] CGROUP; TAG only when some protection has one. */
static void print_table(const struct oomprotect_entry *const *list, size_t n) {
        int w_comm = 4, w_source = 6, w_tag = 0;

        for (size_t i = 0; i < n; i++) {
                w_comm = MAX(w_comm, (int) strlen(list[i]->comm));
                w_source = MAX(w_source, (int) strlen(list[i]->source));
                if (!isempty(list[i]->tag))
                        w_tag = MAX(MAX(w_tag, 3), (int) strlen(list[i]->tag));
        }
        printf("%-8s %-*s %-8s %-10s %-10s %-19s %-*s %-*s%s%s\n", "PID", w_comm, "COMM", "KIND", "MEMORY.MIN", "ADJ",
               "SINCE", w_source, "SOURCE", w_tag, w_tag > 0 ? "TAG" : "", w_tag > 0 ? " " : "", "CGROUP");
        for (size_t i = 0; i < n; i++) {
                const struct oomprotect_entry *e = list[i];
                _cleanup_free_ char *comm = printable(e->comm), *tag = printable(e->tag),
                                    *cgroup = printable(!isempty(e->scope_cgroup) ? e->scope_cgroup
                                                                                  : e->original_cgroup);
                char min[FORMAT_BYTES_MAX], adj[32], since[32];

                snprintf(adj, sizeof(adj), "%d->%d", e->original_adj, e->applied_adj);
                format_since(e->since_usec, since, sizeof(since));
                printf("%-8d %-*s %-8s %-10s %-10s %-19s %-*s %-*s%s%s\n", e->pid, w_comm, strempty(comm),
                       entry_kind(e), format_bytes(min, sizeof(min), e->memory_min), adj, since, w_source, e->source,
                       w_tag,
                       strempty(tag), w_tag > 0 ? " " : "", isempty(cgroup) ? "-" : cgroup);
        }
}

static void print_summary(const struct oomprotect_status *s, size_t n) {
        char used[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX];

        if (n == 0)
                printf("No processes are protected.\n");
        printf("%s%u protected; backend %s, slice %s, memory.min %s in use of %s%s.\n", n > 0 ? "\n" : "",
               s->protected_count, strna(s->backend), strna(s->slice),
               format_bytes(used, sizeof(used), s->memory_min_in_use),
               s->memory_min_budget > 0 ? "a budget of " : "an unlimited budget",
               s->memory_min_budget > 0 ? format_bytes(budget, sizeof(budget), s->memory_min_budget) : "");
        if (s->max_protected_memory > 0)
                printf("Protected processes hold %s of MaxProtectedMemory=%s%s.\n",
                       format_bytes(used, sizeof(used), s->protected_memory),
                       format_bytes(budget, sizeof(budget), s->max_protected_memory),
                       s->protected_memory > s->max_protected_memory
                               ? ": OVER THE CEILING, the kernel may find too little it may kill"
                               : "");
        if (!isempty(s->backend_note))
                printf("Note: %s.\n", s->backend_note);
}

static json_object *json_string_or_null(const char *s) {
        return isempty(s) ? NULL : json_object_new_string(s);
}

static json_object *entry_to_json(const struct oomprotect_entry *e) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "pid", json_object_new_int64(e->pid));
        json_object_object_add(o, "comm", json_object_new_string(e->comm));
        json_object_object_add(o, "kind", json_object_new_string(entry_kind(e)));
        json_object_object_add(o, "original_cgroup", json_string_or_null(e->original_cgroup));
        json_object_object_add(o, "scope_cgroup", json_string_or_null(e->scope_cgroup));
        json_object_object_add(o, "original_adj", json_object_new_int(e->original_adj));
        json_object_object_add(o, "applied_adj", json_object_new_int(e->applied_adj));
        json_object_object_add(o, "memory_min", json_object_new_uint64(e->memory_min));
        json_object_object_add(o, "since_usec", json_object_new_uint64(e->since_usec));
        json_object_object_add(o, "source", json_object_new_string(e->source));
        json_object_object_add(o, "tag", json_string_or_null(e->tag));
        return o;
}

int parse_json_mode(const char *arg, int *ret_flags) {
        if (!arg || streq(arg, "pretty"))
                *ret_flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
        else if (streq(arg, "short"))
                *ret_flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
        else if (streq(arg, "off"))
                *ret_flags = -1;
        else
                return -EINVAL;
        return 0;
}

static int print_json(const struct oomprotect_status *s, int flags) {
        json_object *root = json_object_new_object(), *array = json_object_new_array();

        if (!root || !array) {
                json_object_put(root);
                json_object_put(array);
                fprintf(stderr, PROGRAM ": out of memory\n");
                return EXIT_NEGATIVE;
        }
        json_object_object_add(root, "version", json_string_or_null(s->version));
        json_object_object_add(root, "backend", json_string_or_null(s->backend));
        json_object_object_add(root, "backend_note", json_string_or_null(s->backend_note));
        json_object_object_add(root, "slice", json_string_or_null(s->slice));
        json_object_object_add(root, "protected_count", json_object_new_int64(s->protected_count));
        json_object_object_add(root, "memory_min_budget", json_object_new_uint64(s->memory_min_budget));
        json_object_object_add(root, "memory_min_in_use", json_object_new_uint64(s->memory_min_in_use));
        json_object_object_add(root, "protected_memory", json_object_new_uint64(s->protected_memory));
        json_object_object_add(root, "max_protected_memory", json_object_new_uint64(s->max_protected_memory));
        for (size_t i = 0; i < s->n_entries; i++)
                json_object_array_add(array, entry_to_json(s->entries[i]));
        json_object_object_add(root, "protections", array);
        json_object_object_add(root, "units", cli_units_to_json(s));
        puts(json_object_to_json_string_ext(root, flags));
        json_object_put(root);
        return EXIT_OK;
}

/* status PID|UNIT: that one's protection, or "not protected" and exit 1. */
static int status_of_one(const struct oomprotect_status *s, const char *arg, int json) {
        const struct oomprotect_entry *found = NULL;
        pid_t pid = 0;

        if (cli_arg_is_unit(arg)) {
                const struct oomprotect_unit_entry *u = cli_find_unit(s, arg);
                if (unit_arg("status", arg) != EXIT_OK)
                        return EXIT_USAGE;
                if (!u) {
                        printf("%s is not protected by name.\n", arg);
                        return EXIT_NEGATIVE;
                }
                if (json >= 0) {
                        json_object *all = cli_units_to_json(s);
                        for (size_t i = 0; i < json_object_array_length(all); i++)
                                if (streq(json_object_get_string(json_object_object_get(
                                                  json_object_array_get_idx(all, i), "unit")), arg))
                                        puts(json_object_to_json_string_ext(json_object_array_get_idx(all, i), json));
                        json_object_put(all);
                        return EXIT_OK;
                }
                cli_print_units(s, arg);
                return EXIT_OK;
        }
        if (parse_pid_arg("status", arg, &pid) != EXIT_OK)
                return EXIT_USAGE;
        for (size_t i = 0; i < s->n_entries && !found; i++)
                if (s->entries[i]->pid == pid && !streq(entry_kind(s->entries[i]), "unit"))
                        found = s->entries[i];
        if (found && json >= 0) {
                json_object *o = entry_to_json(found);
                puts(json_object_to_json_string_ext(o, json));
                json_object_put(o);
        } else if (found)
                print_table(&found, 1);
        for (size_t i = 0; i < s->n_units && !found; i++)
                for (size_t k = 0; k < s->units[i]->n_pids; k++)
                        if (s->units[i]->pids[k] == pid) {
                                printf("PID %d is protected as a process of %s:\n", (int) pid, s->units[i]->unit);
                                cli_print_units(s, s->units[i]->unit);
                                return EXIT_OK;
                        }
        if (!found) {
                printf("PID %d is not protected.\n", (int) pid);
                return EXIT_NEGATIVE;
        }
        return EXIT_OK;
}

static void help_status(void) {
        printf(PROGRAM " status [PID|UNIT] [--json[=pretty|short|off]]\n\n"
               "List the protected processes, the units protected by name and the daemon's\n"
               "state; with PID or UNIT, that one's protection only (exit 1 if it has none).\n\n"
               "  --json[=MODE]  print one JSON object: the daemon's properties and a\n"
               "                 \"protections\" array; pretty (the default) or short\n"
               "                 (one line), as systemctl --json\n"
               "  -h --help      show this help\n");
}

static int verb_status(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, ARG_JSON },
                {},
        };
        _cleanup_(oomprotect_status_freep) struct oomprotect_status *s = NULL;
        int json = -1;
        int c, r;

        reset_getopt();
        while ((c = next_option(argc, argv, ":h", options)) >= 0)
                switch (c) {
                case 'h':
                        help_status();
                        return EXIT_OK;
                case ARG_JSON:
                        if (parse_json_mode(optarg, &json) < 0)
                                return usage_error("status: --json=%s: expected pretty, short or off.", optarg);
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind + 1 < argc)
                return usage_error("status: one PID or UNIT only; \"%s\" is one too many.", argv[optind + 1]);
        r = oomprotect_get_status(&s);
        if (r < 0)
                return report_error(r);
        if (optind < argc)
                return status_of_one(s, argv[optind], json);
        if (json >= 0)
                return print_json(s, json);
        if (s->n_entries > 0)
                print_table(s->entries, s->n_entries);
        if (s->n_units > 0) {
                if (s->n_entries > 0)
                        putchar('\n');
                cli_print_units(s, NULL);
        }
        print_summary(s, s->n_entries);
        return EXIT_OK;
}

/* ---- run ---- */

/*
 * run: the command starts inside its protection. The child made by fork()
 * waits on a socket until the parent has protected its PID (the daemon moves
 * it into its scope and sets its adj), then execs the command: its first
 * instruction runs in the scope, every page it touches is charged there.
 * The parent stays, forwards signals and passes the exit status on; the
 * daemon's pidfd watch ends the protection when the command exits.
 */

/* Forwarded to the command. Those the kernel sends to the whole foreground process group (a key on the
 * terminal, a hangup, a resize) reach the command already and are not sent twice. */
static const int forwarded_signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT };

static void help_run(void) {
        printf(PROGRAM " run [OPTIONS] [--] COMMAND [ARGUMENTS...]\n\n"
               "Run COMMAND protected from its first instruction: it is moved into its own\n"
               "scope under the protected slice and gets its oom_score_adj before it execs, so\n"
               "all its memory is charged inside the protection. The protection ends when it\n"
               "exits.\n\n"
               "  --min SIZE     memory.min of the scope (bytes, K/M/G/T, or N%% of RAM)\n"
               "  --low SIZE     memory.low of the scope\n"
               "  --adj N        oom_score_adj to apply (-1000..1000)\n"
               "  --oom-group    set memory.oom.group: an OOM kill takes the whole scope\n"
               "  --tag TAG      label the protection\n"
               "  -h --help      show this help\n\n"
               "Exit status: COMMAND's; if it was killed by a signal, " PROGRAM " kills itself\n"
               "with the same signal (128+N if that does not end it). 126/127: COMMAND could\n"
               "not be executed / was not found; 1, 3, 4 as for protect when the protection\n"
               "failed (COMMAND is not run then). HUP, INT, QUIT, TERM, USR1, USR2, ALRM,\n"
               "WINCH and CONT sent to " PROGRAM " are passed on to COMMAND.\n");
}

static void run_signal_set(sigset_t *set) {
        sigemptyset(set);
        sigaddset(set, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(set, forwarded_signals[i]);
}

/* The child: name itself after the command, say it is ready, wait for "go", exec. Never returns. */
_noreturn_ static void run_child(int fd, const sigset_t *old_mask, char *argv[]) {
        const char *slash = strrchr(argv[0], '/');
        char c = 'r';

        (void) sigprocmask(SIG_SETMASK, old_mask, NULL);
        (void) prctl(PR_SET_NAME, slash ? slash + 1 : argv[0]); /* the comm the daemon records */
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1 || c != 'g')
                _exit(EXIT_NEGATIVE); /* the parent failed to protect us and said why */
        close(fd);
        execvp(argv[0], argv);
        fprintf(stderr, PROGRAM ": cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
}

/* The parent, after fork: protect the child once it is ready, then let it go. EXIT_OK or the error's code. */
static int run_protect_child(int fd, pid_t child, const struct oomprotect_options *o) {
        char c;
        int r;

        if (read(fd, &c, 1) != 1) {
                fprintf(stderr, PROGRAM ": run: the command's process ended before it could be protected.\n");
                return EXIT_NEGATIVE;
        }
        r = oomprotect_protect(child, o);
        if (r < 0)
                return report_error(r);
        c = 'g';
        if (write(fd, &c, 1) != 1)
                return EXIT_NEGATIVE;
        return EXIT_OK;
}

/* Waits for the child, passing signals on; its wait status. */
static int run_wait(pid_t child, const sigset_t *set) {
        siginfo_t si;
        int status;

        for (;;) {
                if (sigwaitinfo(set, &si) < 0)
                        continue; /* EINTR */
                if (si.si_signo != SIGCHLD) {
                        bool to_group = si.si_code == SI_KERNEL && getpgid(child) == getpgrp();
                        if (!to_group)
                                (void) kill(child, si.si_signo);
                        continue;
                }
                pid_t p = waitpid(child, &status, WNOHANG);
                if (p == child)
                        return status;
        }
}

/* Ends this process the way the command ended. */
static int run_pass_status(int status) {
        struct rlimit no_core = {};
        sigset_t set;
        int sig;

        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        sig = WTERMSIG(status);
        (void) setrlimit(RLIMIT_CORE, &no_core); /* the command dumped its core, if any; not us again */
        (void) signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
        (void) raise(sig);
        return 128 + sig;
}

static int parse_run_args(int argc, char *argv[], struct oomprotect_options *o, bool *ret_help) {
        static const struct option options[] = { { "help", no_argument, NULL, 'h' }, PROTECTION_OPTIONS, {} };
        int c, r = EXIT_OK;

        reset_getopt();
        while (r == EXIT_OK && (c = next_option(argc, argv, "+:h", options)) >= 0) {
                if (c == 'h') {
                        *ret_help = true;
                        return EXIT_OK;
                }
                r = parse_protection_option("run", c, o);
        }
        if (r == EXIT_OK && optind >= argc)
                return usage_error("run: which command? See " PROGRAM " run --help.");
        return r;
}

static int verb_run(int argc, char *argv[]) {
        struct oomprotect_options o = OOMPROTECT_OPTIONS_INIT;
        _cleanup_close_ int fd = -1;
        sigset_t set, old_mask;
        bool help = false;
        int pair[2], r;
        pid_t child;

        r = parse_run_args(argc, argv, &o, &help);
        if (r != EXIT_OK || help) {
                if (help)
                        help_run();
                return r;
        }
        run_signal_set(&set);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0 || sigprocmask(SIG_BLOCK, &set, &old_mask) < 0)
                return report_error(-errno);
        fflush(NULL);
        child = fork();
        if (child < 0)
                return report_error(-errno);
        if (child == 0) {
                close(pair[0]);
                run_child(pair[1], &old_mask, argv + optind);
        }
        close(pair[1]);
        fd = pair[0];
        r = run_protect_child(fd, child, &o);
        fd = safe_close(fd); /* a child still waiting for "go" reads EOF and exits */
        if (r != EXIT_OK) {
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                return r;
        }
        return run_pass_status(run_wait(child, &set));
}

/* ---- the program ---- */

static int verb_help(int argc, char *argv[]);

static const Verb verbs[] = {
        { "status", verb_status, "list the protected processes (the default)" },
        { "protect", verb_protect, "protect a process, or a unit by name" },
        { "unprotect", verb_unprotect, "put a process or unit (or all, or a tag) back as it was" },
        { "is-protected", verb_is_protected, "tell whether a process or unit is protected" },
        { "run", verb_run, "run a command protected from its first instruction" },
        { "drop-in", verb_drop_in, "protect a unit for good with a systemd drop-in (root)" },
        { "doctor", verb_doctor, "explain what decides whether a process survives an OOM (read-only)" },
        { "rules", verb_rules, "list the protection rules and what they match, or test one PID (read-only)" },
        { "help", verb_help, "show this help, or a command's (help COMMAND)" },
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(name, verbs[i].name))
                        return &verbs[i];
        return NULL;
}

static void help(void) {
        printf(PROGRAM " [OPTIONS] COMMAND ...\n\n"
               "Keep chosen processes alive when memory runs out: talks to oomprotectd on the\n"
               "system bus.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-14s %s\n", verbs[i].name, verbs[i].summary);
        printf("\nOptions:\n"
               "  -h --help      show this help (COMMAND --help: that command's)\n"
               "     --version   show the version\n\n"
               "Exit status: 0 success, 1 failure or \"no\", 2 usage error,\n"
               "3 oomprotectd not reachable, 4 permission denied.\n");
}

/* help [COMMAND]: as systemctl has it; the command's own --help for one. */
static int verb_help(int argc, char *argv[]) {
        const Verb *verb;

        if (argc < 2) {
                help();
                return EXIT_OK;
        }
        if (argc > 2)
                return usage_error("help takes at most one COMMAND.");
        verb = find_verb(argv[1]);
        if (!verb || verb->run == verb_help)
                return usage_error("unknown command \"%s\"; see " PROGRAM " help.", argv[1]);
        char *sub_argv[] = { argv[1], (char *) "--help", NULL };
        return verb->run(2, sub_argv);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const Verb *verb;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_VERSION:
                        printf(PROGRAM " %s\n", OOMPROTECT_VERSION_STRING);
                        return EXIT_OK;
                default:
                        return usage_error("unknown option \"%s\"; see " PROGRAM " --help.", argv[optind - 1]);
                }
        if (optind >= argc) {
                static char *status_argv[] = { (char *) "status", NULL };
                return verb_status(1, status_argv);
        }
        verb = find_verb(argv[optind]);
        if (!verb)
                return usage_error("unknown command \"%s\"; see " PROGRAM " --help.", argv[optind]);
        return verb->run(argc - optind, argv + optind);
}
