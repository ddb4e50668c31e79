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
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "escape.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"

#define PROGRAM "oomprotectctl"

enum {
        EXIT_OK = 0,
        EXIT_NEGATIVE = 1, /* a failure, or "no" */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_DENIED = 4,
};

typedef struct Verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
} Verb;

/* ---- messages and the bus ---- */

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
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

/* why: NULL when nobody owns the name; else what went wrong on the way to the daemon. */
static int report_unreachable(const char *why) {
        if (why)
                fprintf(stderr, PROGRAM ": cannot reach oomprotectd: %s\n", why);
        else
                fprintf(stderr, PROGRAM ": oomprotectd is not running (no " OOMPROTECT_BUS_NAME " on the system bus)\n");
        return EXIT_UNREACHABLE;
}

/* Prints the daemon's sentence (or what went wrong here, e == NULL) and returns the exit code for it. */
static int report_bus_error(const sd_bus_error *e, int r) {
        int k;

        if (!e || !e->name) {
                fprintf(stderr, PROGRAM ": %s\n", strerror(-r));
                return EXIT_NEGATIVE;
        }
        k = sd_bus_error_get_errno(e);
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                   SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_NO_SERVER) ||
            k == ECONNRESET || k == ENOTCONN || k == ECONNREFUSED)
                return report_unreachable(NULL);
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) || k == ETIMEDOUT)
                return report_unreachable("it did not answer in time (is it stuck?)");
        fprintf(stderr, PROGRAM ": %s\n", e->message ? e->message : e->name);
        if (sd_bus_error_has_names(e, OOMPROTECT_ERROR_PERMISSION_DENIED, SD_BUS_ERROR_ACCESS_DENIED))
                return EXIT_DENIED;
        return EXIT_NEGATIVE;
}

static int connect_bus(sd_bus **ret) {
        int r;

        r = sd_bus_open_system(ret);
        if (r < 0) {
                char why[256];
                snprintf(why, sizeof(why), "cannot connect to the system bus: %s", strerror(-r));
                return report_unreachable(why);
        }
        return EXIT_OK;
}

static int call_manager(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, method);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return report_bus_error(NULL, r);
        r = sd_bus_call(bus, m, 0, &e, reply);
        if (r < 0)
                return report_bus_error(&e, r);
        return EXIT_OK;
}

static int parse_pid_arg(const char *verb, const char *s, pid_t *ret) {
        if (parse_pid(s, ret) < 0)
                return usage_error("%s: \"%s\" is not a PID (a number from 1 to %d).", verb, s,
                                   OOMPROTECT_PID_MAX_LIMIT);
        return EXIT_OK;
}

/* One positional PID, after the options. */
static int pid_operand(int argc, char *argv[], pid_t *ret) {
        if (optind >= argc)
                return usage_error("%s: which PID? See " PROGRAM " %s --help.", argv[0], argv[0]);
        if (optind + 1 < argc)
                return usage_error("%s: one PID only; \"%s\" is one too many.", argv[0], argv[optind + 1]);
        return parse_pid_arg(argv[0], argv[optind], ret);
}

/* ---- protect ---- */

typedef struct ProtectArgs {
        pid_t pid;
        bool has_min, has_low, has_adj;
        uint64_t min, low;
        int adj;
        bool tree, oom_group;
        const char *tag;
        bool help;
} ProtectArgs;

static void help_protect(void) {
        printf(PROGRAM " protect PID [OPTIONS]\n\n"
               "Protect a process from the OOM killer: move it into its own scope under the\n"
               "protected slice, set memory.min there and lower its oom_score_adj.\n\n"
               "  --min SIZE     memory.min of the scope (bytes, K/M/G/T, or N%% of RAM)\n"
               "  --low SIZE     memory.low of the scope\n"
               "  --adj N        oom_score_adj to apply (-1000..1000)\n"
               "  --tree         move the process's current children and theirs too (those\n"
               "                 you could protect on their own)\n"
               "  --oom-group    set memory.oom.group: an OOM kill takes the whole scope\n"
               "  --tag TAG      label the protection (see unprotect --tag)\n"
               "  -h --help      show this help\n\n"
               "Unset options take the daemon's configured defaults.\n");
}

static int parse_size_arg(const char *opt, const char *s, uint64_t *ret) {
        if (parse_size(s, physical_memory(), ret) < 0)
                return usage_error("protect: %s \"%s\" is not a size: give bytes with an optional K, M, G or T, "
                                   "or a percentage of RAM such as 5%%.",
                                   opt, s);
        return EXIT_OK;
}

static int parse_protect_args(int argc, char *argv[], ProtectArgs *a) {
        enum { ARG_MIN = 0x100, ARG_LOW, ARG_ADJ, ARG_TREE, ARG_OOM_GROUP, ARG_TAG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },         { "min", required_argument, NULL, ARG_MIN },
                { "low", required_argument, NULL, ARG_LOW }, { "adj", required_argument, NULL, ARG_ADJ },
                { "tree", no_argument, NULL, ARG_TREE },     { "oom-group", no_argument, NULL, ARG_OOM_GROUP },
                { "tag", required_argument, NULL, ARG_TAG }, {},
        };
        int c, r = EXIT_OK;

        reset_getopt();
        while (r == EXIT_OK && (c = next_option(argc, argv, ":h", options)) >= 0)
                switch (c) {
                case 'h':
                        a->help = true;
                        return EXIT_OK;
                case ARG_MIN:
                        r = parse_size_arg("--min", optarg, &a->min);
                        a->has_min = true;
                        break;
                case ARG_LOW:
                        r = parse_size_arg("--low", optarg, &a->low);
                        a->has_low = true;
                        break;
                case ARG_ADJ:
                        if (parse_int_range(optarg, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX, &a->adj) < 0)
                                r = usage_error("protect: --adj \"%s\" is not a number from -1000 to 1000.", optarg);
                        a->has_adj = true;
                        break;
                case ARG_TREE:
                        a->tree = true;
                        break;
                case ARG_OOM_GROUP:
                        a->oom_group = true;
                        break;
                case ARG_TAG:
                        if (isempty(optarg))
                                r = usage_error("protect: --tag needs a non-empty TAG.");
                        a->tag = optarg;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (r != EXIT_OK)
                return r;
        return pid_operand(argc, argv, &a->pid);
}

static int append_protect_options(sd_bus_message *m, const ProtectArgs *a) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && a->has_min)
                r = sd_bus_message_append(m, "{sv}", "MemoryMin", "t", a->min);
        if (r >= 0 && a->has_low)
                r = sd_bus_message_append(m, "{sv}", "MemoryLow", "t", a->low);
        if (r >= 0 && a->has_adj)
                r = sd_bus_message_append(m, "{sv}", "OOMScoreAdjust", "i", (int32_t) a->adj);
        if (r >= 0 && a->tree)
                r = sd_bus_message_append(m, "{sv}", "Descendants", "b", 1);
        if (r >= 0 && a->oom_group)
                r = sd_bus_message_append(m, "{sv}", "OOMGroup", "b", 1);
        if (r >= 0 && a->tag)
                r = sd_bus_message_append(m, "{sv}", "Tag", "s", a->tag);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int verb_protect(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        ProtectArgs a = {};
        int r;

        r = parse_protect_args(argc, argv, &a);
        if (r != EXIT_OK)
                return r;
        if (a.help) {
                help_protect();
                return EXIT_OK;
        }
        r = connect_bus(&bus);
        if (r != EXIT_OK)
                return r;
        if (!a.has_min && !a.has_low && !a.has_adj && !a.tree && !a.oom_group && !a.tag)
                return call_manager(bus, "Protect", NULL, "u", (uint32_t) a.pid);

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, "ProtectWithOptions");
        if (r >= 0)
                r = sd_bus_message_append(m, "u", (uint32_t) a.pid);
        if (r >= 0)
                r = append_protect_options(m, &a);
        if (r < 0)
                return report_bus_error(NULL, r);
        r = sd_bus_call(bus, m, 0, &e, NULL);
        if (r < 0)
                return report_bus_error(&e, r);
        return EXIT_OK;
}

/* ---- unprotect ---- */

static void help_unprotect(void) {
        printf(PROGRAM " unprotect PID | --all | --tag TAG\n\n"
               "Put processes back exactly as they were before they were protected: their\n"
               "original cgroup and oom_score_adj.\n\n"
               "  --all          every protected process (yours only, unless you are root)\n"
               "  --tag TAG      every process protected with this tag\n"
               "  -h --help      show this help\n");
}

static int unprotect_many(sd_bus *bus, const char *method, const char *tag) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t n;
        int r;

        r = tag ? call_manager(bus, method, &reply, "s", tag) : call_manager(bus, method, &reply, NULL);
        if (r != EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return report_bus_error(NULL, r);
        printf("Unprotected %" PRIu32 " process%s.\n", n, n == 1 ? "" : "es");
        return EXIT_OK;
}

static int verb_unprotect(int argc, char *argv[]) {
        enum { ARG_ALL = 0x100, ARG_TAG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "all", no_argument, NULL, ARG_ALL },
                { "tag", required_argument, NULL, ARG_TAG },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *tag = NULL;
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
                r = pid_operand(argc, argv, &pid);
                if (r != EXIT_OK)
                        return r;
        }
        r = connect_bus(&bus);
        if (r != EXIT_OK)
                return r;
        if (all)
                return unprotect_many(bus, "UnprotectAll", NULL);
        if (tag)
                return unprotect_many(bus, "UnprotectTag", tag);
        return call_manager(bus, "Unprotect", NULL, "u", (uint32_t) pid);
}

/* ---- is-protected ---- */

static void help_is_protected(void) {
        printf(PROGRAM " is-protected PID [-q]\n\n"
               "Print \"yes\" and exit 0 if PID is protected, else print \"no\" and exit 1.\n\n"
               "  -q --quiet     print nothing, only set the exit code\n"
               "  -h --help      show this help\n");
}

static int verb_is_protected(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool quiet = false;
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
        r = pid_operand(argc, argv, &pid);
        if (r != EXIT_OK)
                return r;
        r = connect_bus(&bus);
        if (r != EXIT_OK)
                return r;
        r = call_manager(bus, "IsProtected", &reply, "u", (uint32_t) pid);
        if (r != EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "b", &yes);
        if (r < 0)
                return report_bus_error(NULL, r);
        if (!quiet)
                puts(yes ? "yes" : "no");
        return yes ? EXIT_OK : EXIT_NEGATIVE;
}

/* ---- status ---- */

typedef struct Status {
        char *version, *backend, *backend_note, *slice;
        uint32_t count;
        uint64_t budget, in_use;
} Status;

static void status_done(Status *s) {
        free(s->version);
        free(s->backend);
        free(s->backend_note);
        free(s->slice);
}

typedef struct Entry {
        uint32_t pid;
        const char *comm, *original_cgroup, *scope_cgroup, *source, *tag;
        int32_t original_adj, applied_adj;
        uint64_t memory_min, since_usec;
} Entry;

static int read_string_property(sd_bus_message *m, char **ret) {
        const char *s;
        int r;

        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        free(*ret);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int read_property(sd_bus_message *m, const char *name, Status *s) {
        if (streq(name, "Version"))
                return read_string_property(m, &s->version);
        if (streq(name, "Backend"))
                return read_string_property(m, &s->backend);
        if (streq(name, "BackendNote"))
                return read_string_property(m, &s->backend_note);
        if (streq(name, "Slice"))
                return read_string_property(m, &s->slice);
        if (streq(name, "ProtectedCount"))
                return sd_bus_message_read(m, "v", "u", &s->count);
        if (streq(name, "MemoryMinBudget"))
                return sd_bus_message_read(m, "v", "t", &s->budget);
        if (streq(name, "MemoryMinInUse"))
                return sd_bus_message_read(m, "v", "t", &s->in_use);
        return sd_bus_message_skip(m, "v"); /* a newer daemon's */
}

static int get_status(sd_bus *bus, Status *s) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name;
        int r;

        r = sd_bus_call_method(bus, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH, "org.freedesktop.DBus.Properties",
                               "GetAll", &e, &reply, "s", OOMPROTECT_MANAGER_INTERFACE);
        if (r < 0)
                return report_bus_error(&e, r);
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = read_property(reply, name, s);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return report_bus_error(NULL, r);
        return EXIT_OK;
}

/* Reads ListProtected's a(usssiittss); the strings point into reply. */
static int read_entries(sd_bus_message *reply, Entry **ret, size_t *ret_n) {
        _cleanup_free_ Entry *list = NULL;
        size_t n = 0, alloc = 0;
        Entry e;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(usssiittss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(usssiittss)", &e.pid, &e.comm, &e.original_cgroup,
                                        &e.scope_cgroup, &e.original_adj, &e.applied_adj, &e.memory_min,
                                        &e.since_usec, &e.source, &e.tag)) > 0) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        Entry *l = realloc(list, alloc * sizeof(Entry));
                        if (!l)
                                return -ENOMEM;
                        list = l;
                }
                list[n++] = e;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return sd_bus_message_exit_container(reply);
}

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

/* PID COMM MEMORY.MIN ADJ SINCE SOURCE [TAG] CGROUP; TAG only when some protection has one. */
static void print_table(const Entry *list, size_t n) {
        int w_comm = 4, w_source = 6, w_tag = 0;

        for (size_t i = 0; i < n; i++) {
                w_comm = MAX(w_comm, (int) strlen(list[i].comm));
                w_source = MAX(w_source, (int) strlen(list[i].source));
                if (!isempty(list[i].tag))
                        w_tag = MAX(MAX(w_tag, 3), (int) strlen(list[i].tag));
        }
        printf("%-8s %-*s %-10s %-10s %-19s %-*s %-*s%s%s\n", "PID", w_comm, "COMM", "MEMORY.MIN", "ADJ", "SINCE",
               w_source, "SOURCE", w_tag, w_tag > 0 ? "TAG" : "", w_tag > 0 ? " " : "", "CGROUP");
        for (size_t i = 0; i < n; i++) {
                const Entry *e = &list[i];
                _cleanup_free_ char *comm = printable(e->comm), *tag = printable(e->tag),
                                    *cgroup = printable(!isempty(e->scope_cgroup) ? e->scope_cgroup
                                                                                  : e->original_cgroup);
                char min[FORMAT_BYTES_MAX], adj[32], since[32];

                snprintf(adj, sizeof(adj), "%" PRIi32 "->%" PRIi32, e->original_adj, e->applied_adj);
                format_since(e->since_usec, since, sizeof(since));
                printf("%-8" PRIu32 " %-*s %-10s %-10s %-19s %-*s %-*s%s%s\n", e->pid, w_comm, strempty(comm),
                       format_bytes(min, sizeof(min), e->memory_min), adj, since, w_source, e->source, w_tag,
                       strempty(tag), w_tag > 0 ? " " : "", isempty(cgroup) ? "-" : cgroup);
        }
}

static void print_summary(const Status *s, size_t n) {
        char used[FORMAT_BYTES_MAX], budget[FORMAT_BYTES_MAX];

        if (n == 0)
                printf("No processes are protected.\n");
        printf("%s%" PRIu32 " protected; backend %s, slice %s, memory.min %s in use of %s%s.\n", n > 0 ? "\n" : "",
               s->count, strna(s->backend), strna(s->slice), format_bytes(used, sizeof(used), s->in_use),
               s->budget > 0 ? "a budget of " : "an unlimited budget",
               s->budget > 0 ? format_bytes(budget, sizeof(budget), s->budget) : "");
        if (!isempty(s->backend_note))
                printf("Note: %s.\n", s->backend_note);
}

static json_object *json_string_or_null(const char *s) {
        return isempty(s) ? NULL : json_object_new_string(s);
}

static json_object *entry_to_json(const Entry *e) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "pid", json_object_new_int64(e->pid));
        json_object_object_add(o, "comm", json_object_new_string(e->comm));
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

static int print_json(const Status *s, const Entry *list, size_t n) {
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
        json_object_object_add(root, "protected_count", json_object_new_int64(s->count));
        json_object_object_add(root, "memory_min_budget", json_object_new_uint64(s->budget));
        json_object_object_add(root, "memory_min_in_use", json_object_new_uint64(s->in_use));
        for (size_t i = 0; i < n; i++)
                json_object_array_add(array, entry_to_json(&list[i]));
        json_object_object_add(root, "protections", array);
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return EXIT_OK;
}

static void help_status(void) {
        printf(PROGRAM " status [--json]\n\n"
               "List the protected processes and the daemon's state.\n\n"
               "  --json         print one JSON object: the daemon's properties and a\n"
               "                 \"protections\" array\n"
               "  -h --help      show this help\n");
}

static int verb_status(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, ARG_JSON },
                {},
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(status_done) Status s = {};
        _cleanup_free_ Entry *list = NULL;
        bool json = false;
        size_t n = 0;
        int c, r;

        reset_getopt();
        while ((c = next_option(argc, argv, ":h", options)) >= 0)
                switch (c) {
                case 'h':
                        help_status();
                        return EXIT_OK;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc)
                return usage_error("status: unexpected argument \"%s\".", argv[optind]);
        r = connect_bus(&bus);
        if (r != EXIT_OK)
                return r;
        r = get_status(bus, &s);
        if (r != EXIT_OK)
                return r;
        r = call_manager(bus, "ListProtected", &reply, NULL);
        if (r != EXIT_OK)
                return r;
        r = read_entries(reply, &list, &n);
        if (r < 0)
                return report_bus_error(NULL, r);
        if (json)
                return print_json(&s, list, n);
        if (n > 0)
                print_table(list, n);
        print_summary(&s, n);
        return EXIT_OK;
}

/* ---- the program ---- */

static const Verb verbs[] = {
        { "status", verb_status, "list the protected processes (the default)" },
        { "protect", verb_protect, "protect a process" },
        { "unprotect", verb_unprotect, "put a process (or all, or a tag) back as it was" },
        { "is-protected", verb_is_protected, "tell whether a process is protected" },
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
