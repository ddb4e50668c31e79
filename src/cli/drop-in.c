/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotectctl drop-in UNIT: the protection of a unit for good, as a
 * systemd drop-in, /etc/systemd/system/UNIT.d/50-oomprotect.conf.
 *
 * Who does what, and why: oomprotectd runs with ProtectSystem=strict and
 * never writes /etc; the administrator's tool does, as root. The budget is
 * the daemon's, so the daemon is asked first: ProtectUnit(UNIT, DropIn=true)
 * counts the unit in MemoryMinBudget= and MaxProtected= (refused over
 * either, before anything is written), raises its ancestors' memory.min as
 * for any unit protected by name (systemd.resource-control(5): MemoryMin=
 * needs the parents to carry it), lists it with source "drop-in" and
 * persists it. Then the file is written, systemd reloaded over the bus,
 * and with --now the unit restarted and followed (ProtectUnit again: with
 * --slice it runs in protected.slice afterwards). A failure after the
 * daemon said yes takes its protection back. --remove does the reverse.
 *
 * The daemon's runtime holds live in /run/systemd/system.control/UNIT.d/
 * (50-MemoryMin.conf, 50-MemoryLow.conf, 50-ManagedOOMPreference.conf:
 * SetUnitProperties' names); drop-ins of every directory apply sorted by
 * file name, so 50-oomprotect.conf comes after them and its MemoryMin= is
 * the one in force after a daemon-reload; both say the same while both
 * exist. $OOMPROTECT_SYSTEMD_SYSTEM_DIR replaces /etc/systemd/system (the
 * tests' own directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "oomprotect.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "verbs.h"

#define PROGRAM "oomprotectctl"
#define DROPIN_NAME "50-oomprotect.conf"
#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

enum { EXIT_OK = 0, EXIT_NEGATIVE = 1, EXIT_USAGE = 2 };

DEFINE_TRIVIAL_CLEANUP_FUNC(struct oomprotect_status *, oomprotect_status_free);

typedef struct DropInArgs {
        const char *unit;
        struct oomprotect_options options;
        bool slice, remove, now, help;
} DropInArgs;

static void help_drop_in(void) {
        printf(PROGRAM " drop-in UNIT [--min SIZE] [--adj N] [--slice] [--now]\n"
               PROGRAM " drop-in UNIT --remove [--now]\n\n"
               "Protect a unit for good with a systemd drop-in, /etc/systemd/system/UNIT.d/\n"
               DROPIN_NAME ": OOMScoreAdjust=, MemoryMin=, ManagedOOMPreference=omit,\n"
               "and Slice=" OOMPROTECT_SLICE " with --slice. oomprotectd counts it in\n"
               "MemoryMinBudget= first (refused over it, nothing written), raises the\n"
               "ancestors' memory.min as MemoryMin= needs, and lists it (source drop-in);\n"
               "then systemd is reloaded. Root only.\n\n"
               "  --min SIZE     MemoryMin= (bytes, K/M/G/T, N%% of RAM; default: the daemon's)\n"
               "  --adj N        OOMScoreAdjust= (-1000..1000; default: the daemon's)\n"
               "  --slice        also Slice=" OOMPROTECT_SLICE ": the service is then accounted\n"
               "                 (CPU, IO, memory) under that slice, no longer its own slice\n"
               "  --remove       remove the drop-in and oomprotectd's protection of UNIT\n"
               "  --now          restart UNIT afterwards, so that it runs as the drop-in says\n"
               "  -h --help      show this help\n\n"
               "The unit must be running (oomprotectd protects it in place at once).\n");
}

static int fail(const char *what, int r) {
        fprintf(stderr, PROGRAM ": %s: %s\n", what, r < 0 ? oomprotect_strerror(r) : "failed");
        return r == -ECONNREFUSED || r == -ETIMEDOUT ? 3 : r == -EPERM || r == -EACCES ? 4 : EXIT_NEGATIVE;
}

static int parse_args(int argc, char *argv[], DropInArgs *a) {
        enum { ARG_MIN = 0x300, ARG_ADJ, ARG_SLICE, ARG_REMOVE, ARG_NOW };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },          { "min", required_argument, NULL, ARG_MIN },
                { "adj", required_argument, NULL, ARG_ADJ }, { "slice", no_argument, NULL, ARG_SLICE },
                { "remove", no_argument, NULL, ARG_REMOVE }, { "now", no_argument, NULL, ARG_NOW },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        a->help = true;
                        return EXIT_OK;
                case ARG_MIN:
                        a->options.set |= OOMPROTECT_OPTION_MEMORY_MIN;
                        if (parse_size(optarg, physical_memory(), &a->options.memory_min) < 0)
                                return usage_error("drop-in: --min \"%s\" is not a size: bytes with an optional K, M, G or T, "
                                             "or a percentage of RAM.", optarg);
                        break;
                case ARG_ADJ:
                        a->options.set |= OOMPROTECT_OPTION_OOM_SCORE_ADJ;
                        if (parse_int_range(optarg, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX,
                                            &a->options.oom_score_adj) < 0)
                                return usage_error("drop-in: --adj \"%s\" is not a number from -1000 to 1000.", optarg);
                        break;
                case ARG_SLICE:
                        a->slice = true;
                        break;
                case ARG_REMOVE:
                        a->remove = true;
                        break;
                case ARG_NOW:
                        a->now = true;
                        break;
                case ':':
                        return usage_error("drop-in: option \"%s\" needs a value.", argv[optind - 1]);
                default:
                        return usage_error("drop-in: unknown option \"%s\"; see " PROGRAM " drop-in --help.", argv[optind - 1]);
                }
        if (optind + 1 != argc)
                return usage_error("drop-in: give one UNIT%s.", optind < argc ? " only" : "");
        a->unit = argv[optind];
        if (!cli_unit_name_ok(a->unit) || endswith(a->unit, ".scope"))
                return usage_error("drop-in: \"%s\" is not a unit a drop-in can protect: give its full name with its type, such "
                             "as nginx.service (a .service, .socket, .mount or .swap).", a->unit);
        if (a->remove && (a->slice || a->options.set))
                return usage_error("drop-in: %s: --remove takes no --min, --adj or --slice.", a->unit);
        return EXIT_OK;
}

/* The section of UNIT's type that takes OOMScoreAdjust= and the resource-control settings. */
static const char *section_of(const char *unit) {
        static const char *const map[][2] = {
                { ".service", "Service" }, { ".socket", "Socket" }, { ".mount", "Mount" }, { ".swap", "Swap" },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (endswith(unit, map[i][0]))
                        return map[i][1];
        return "Service";
}

/* The daemon's settings, as it will apply them (the defaults it was given are in the reply of status). */
static int format_drop_in(const DropInArgs *a, int adj, uint64_t min, char **ret) {
        return asprintf(ret,
                        "# Written by oomprotectctl drop-in; remove it with oomprotectctl drop-in %s --remove.\n"
                        "# MemoryMin= needs the ancestors to carry it: oomprotectd raises them while it lists\n"
                        "# this unit (oomprotectctl status %s).\n"
                        "[%s]\n"
                        "OOMScoreAdjust=%d\n"
                        "MemoryMin=%" PRIu64 "\n"
                        "ManagedOOMPreference=omit\n"
                        "%s",
                        a->unit, a->unit, section_of(a->unit), adj, min,
                        a->slice ? "# The unit is accounted under " OOMPROTECT_SLICE ", not its own slice.\n"
                                   "Slice=" OOMPROTECT_SLICE "\n"
                                 : "") < 0
                       ? -ENOMEM
                       : 0;
}

static const char *system_dir(void) {
        const char *d = getenv("OOMPROTECT_SYSTEMD_SYSTEM_DIR");

        return isempty(d) ? "/etc/systemd/system" : d;
}

static int open_unit_dir(const char *unit, bool create, int *ret_fd, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s.d", system_dir(), unit) < 0)
                return -ENOMEM;
        if (create && mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* ---- systemd ---- */

static int systemd_call(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, method);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 120 * 1000000ULL, &error, reply);
        if (r < 0)
                fprintf(stderr, PROGRAM ": systemd's %s failed: %s\n", method, error.message ? error.message : strerror(-r));
        return r;
}

typedef struct JobWait {
        const char *job;
        char result[32];
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) >= 0 && w->job && streq(path, w->job))
                snprintf(w->result, sizeof(w->result), "%s", result);
        return 0;
}

/* RestartUnit and the wait for its job, as systemctl restart does. */
static int restart_unit(sd_bus *bus, const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL;
        JobWait w = {};
        const char *path;
        int r;

        r = sd_bus_match_signal(bus, &slot, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r >= 0)
                r = systemd_call(bus, "Subscribe", NULL, NULL);
        if (r >= 0)
                r = systemd_call(bus, "RestartUnit", &reply, "ss", unit, "replace");
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        job = strdup(path);
        if (!job)
                return -ENOMEM;
        w.job = job;
        for (unsigned i = 0; i < 1200 && !w.result[0]; i++) { /* two minutes, in 100 ms waits */
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        (void) sd_bus_wait(bus, 100 * 1000);
        }
        if (!streq(w.result, "done")) {
                fprintf(stderr, PROGRAM ": restarting %s: its job ended with \"%s\" (see systemctl status %s).\n",
                        unit, w.result[0] ? w.result : "no answer", unit);
                return -EIO;
        }
        return 0;
}

/* daemon-reload over the bus, then with --now the restart. Nothing to do where systemd does not run. */
static int apply_to_systemd(const DropInArgs *a, bool systemd) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!systemd) {
                printf("oomprotectd does not use systemd here: no daemon-reload%s.\n", a->now ? " and no restart" : "");
                return 0;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, PROGRAM ": cannot reach systemd on the system bus: %s\n", strerror(-r));
                return r;
        }
        r = systemd_call(bus, "Reload", NULL, NULL);
        if (r >= 0 && a->now)
                r = restart_unit(bus, a->unit);
        return r;
}

/* ---- oomprotectd ---- */

/*
 * ProtectUnit(UNIT, {MemoryMin, OOMScoreAdjust, DropIn: true}) on the
 * system bus: the daemon's sentence on stderr when it says no. Returns the
 * exit code (0 yes, 1 no, 3 unreachable, 4 denied).
 */
static int protect_drop_in(const char *unit, const struct oomprotect_options *o) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                                   OOMPROTECT_MANAGER_INTERFACE, "ProtectUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", unit);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_MEMORY_MIN))
                r = sd_bus_message_append(m, "{sv}", "MemoryMin", "t", o->memory_min);
        if (r >= 0 && (o->set & OOMPROTECT_OPTION_OOM_SCORE_ADJ))
                r = sd_bus_message_append(m, "{sv}", "OOMScoreAdjust", "i", (int32_t) o->oom_score_adj);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "DropIn", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r >= 0)
                return EXIT_OK;
        if (sd_bus_error_has_name(&error, OOMPROTECT_ERROR_NO_SUCH_UNIT))
                fprintf(stderr, PROGRAM ": %s Start it first: oomprotectd protects it in place at once.\n",
                        error.message);
        else
                fprintf(stderr, PROGRAM ": %s\n", error.message ? error.message : strerror(-r));
        if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
            (!error.name && r != -ENOMEM))
                return 3;
        if (sd_bus_error_has_name(&error, OOMPROTECT_ERROR_PERMISSION_DENIED))
                return 4;
        return EXIT_NEGATIVE;
}

/* ---- the verb ---- */

static int drop_in_write(const DropInArgs *a, const struct oomprotect_status *s, const struct oomprotect_unit_entry *u) {
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *text = NULL, *dir = NULL;
        int r;

        r = format_drop_in(a, u->applied_adj, u->memory_min, &text);
        if (r >= 0)
                r = open_unit_dir(a->unit, true, &dirfd, &dir);
        if (r >= 0)
                r = write_file_atomic_at(dirfd, DROPIN_NAME, text, strlen(text), 0644);
        if (r < 0) {
                fprintf(stderr, PROGRAM ": cannot write %s/%s.d/" DROPIN_NAME ": %s; protection taken back.\n",
                        system_dir(), a->unit, strerror(-r));
                (void) oomprotect_unprotect_unit(a->unit);
                return EXIT_NEGATIVE;
        }
        printf("Wrote %s/" DROPIN_NAME " (MemoryMin=%" PRIu64 ", OOMScoreAdjust=%d%s).\n", dir, u->memory_min,
               u->applied_adj, a->slice ? ", Slice=" OOMPROTECT_SLICE : "");
        if (a->slice)
                printf("Note: with Slice=" OOMPROTECT_SLICE " %s is accounted under that slice from its next start.\n",
                       a->unit);
        r = apply_to_systemd(a, streq(strempty(s->backend), "systemd"));
        if (r < 0)
                return EXIT_NEGATIVE;
        if (a->now) {
                /* It runs again, perhaps in another cgroup (--slice): the protection follows it. */
                r = protect_drop_in(a->unit, &a->options);
                if (r != EXIT_OK)
                        return r;
        }
        return EXIT_OK;
}

static int drop_in_remove(const DropInArgs *a, const struct oomprotect_status *s) {
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        int r;

        r = open_unit_dir(a->unit, false, &dirfd, &dir);
        if (r >= 0 && unlinkat(dirfd, DROPIN_NAME, 0) < 0)
                r = negative_errno();
        if (r == -ENOENT)
                fprintf(stderr, PROGRAM ": %s has no drop-in %s/%s.d/" DROPIN_NAME ".\n", a->unit, system_dir(), a->unit);
        else if (r < 0)
                fprintf(stderr, PROGRAM ": cannot remove %s/" DROPIN_NAME ": %s\n", strna(dir), strerror(-r));
        else {
                (void) unlinkat(AT_FDCWD, dir, AT_REMOVEDIR); /* only when empty: other drop-ins stay */
                printf("Removed %s/" DROPIN_NAME ".\n", dir);
        }
        if (r < 0 && r != -ENOENT)
                return EXIT_NEGATIVE;
        /* The daemon's protection goes even where the file was gone already. */
        bool missing = r == -ENOENT;
        r = oomprotect_unprotect_unit(a->unit);
        if (r < 0 && r != -ENOENT)
                return fail("unprotecting the unit", r);
        if (missing && r == -ENOENT)
                return EXIT_NEGATIVE; /* neither a file nor a protection: nothing was there to remove */
        return apply_to_systemd(a, streq(strempty(s->backend), "systemd")) < 0 ? EXIT_NEGATIVE : EXIT_OK;
}

int verb_drop_in(int argc, char *argv[]) {
        _cleanup_(oomprotect_status_freep) struct oomprotect_status *s = NULL;
        DropInArgs a = { .options = OOMPROTECT_OPTIONS_INIT };
        const struct oomprotect_unit_entry *u;
        int r;

        r = parse_args(argc, argv, &a);
        if (r != EXIT_OK || a.help) {
                if (a.help)
                        help_drop_in();
                return r;
        }
        if (!a.remove) {
                /* The daemon first: the budget, the ancestors, the listing; nothing is written if it says no. */
                r = protect_drop_in(a.unit, &a.options);
                if (r != EXIT_OK)
                        return r;
        }
        r = oomprotect_get_status(&s);
        if (r < 0)
                return fail("reading oomprotectd's status", r);
        if (a.remove)
                return drop_in_remove(&a, s);
        u = cli_find_unit(s, a.unit);
        if (!u) {
                fprintf(stderr, PROGRAM ": oomprotectd does not list %s after protecting it.\n", a.unit);
                return EXIT_NEGATIVE;
        }
        return drop_in_write(&a, s, u);
}
