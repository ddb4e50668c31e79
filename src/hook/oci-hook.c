/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotect-oci-hook STAGE: an OCI runtime hook. The runtime writes the
 * container's state to stdin; an annotated container's init is protected in
 * place (tagged with the container id) at createRuntime/poststart, and what
 * carries its tag is unprotected at poststop. Anything else is left alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hook-bus.h"
#include "macro.h"
#include "oci-state.h"
#include "oomprotect/protocol.h"
#include "parse.h"

#define PROGRAM "oomprotect-oci-hook"
#define STATE_MAX (1024U * 1024U)         /* a runtime's state is a few hundred bytes */
#define CONFIG_MAX (16U * 1024U * 1024U) /* config.json may carry large seccomp profiles */
#define DEFAULT_TIMEOUT_SEC 30

enum {
        EXIT_OK = 0,
        EXIT_FAILURE_ = 1, /* bad input, or the daemon refused */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
};

typedef enum HookAction {
        HOOK_PROTECT,
        HOOK_UNPROTECT,
        HOOK_BY_STATUS, /* one hooks.d file serves several stages with the same argv */
} HookAction;

static const struct {
        const char *name;
        HookAction action;
} stages[] = {
        { "createRuntime", HOOK_PROTECT },
        { "poststart", HOOK_PROTECT },
        { "prestart", HOOK_PROTECT }, /* deprecated by runtime-spec 1.0.2, still what old runtimes run */
        { "poststop", HOOK_UNPROTECT },
        { "auto", HOOK_BY_STATUS },
};

typedef struct HookArgs {
        const char *stage;
        HookAction action;
        uint64_t timeout_usec;
} HookArgs;

static int error_line(int code, const char *fmt, ...) _printf_(2, 3);
static int error_line(int code, const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

static void help(void) {
        printf("Usage: " PROGRAM " [--timeout SECONDS] STAGE\n"
               "\n"
               "An OCI runtime hook: keeps an annotated container's init alive when memory runs out,\n"
               "through oomprotectd, without moving it out of the container's cgroup.\n"
               "\n"
               "STAGE is createRuntime or poststart (protect; prestart for old runtimes), poststop\n"
               "(unprotect), or auto (by the state's status: stopped unprotects, creating, created\n"
               "and running protect). The container's state (JSON) is read from standard input;\n"
               "annotations also from BUNDLE/config.json:\n"
               "  " OCI_ANNOTATION_PROTECT "=true     protect this container (else it is left alone)\n"
               "  " OCI_ANNOTATION_MEMORY_MIN "=SIZE  memory.min for its cgroup (K/M/G/T, or N%% of RAM)\n"
               "  " OCI_ANNOTATION_OOM_SCORE_ADJ "=N  oom_score_adj, -1000 to 1000\n"
               "\n"
               "  --timeout SECONDS  how long to wait for oomprotectd (default %d)\n"
               "  -h, --help         this text\n"
               "  --version          the version\n"
               "\n"
               "Exit status: 0 done (or nothing to do), 1 bad input or refused, 2 usage error,\n"
               "3 oomprotectd not reachable.\n",
               DEFAULT_TIMEOUT_SEC);
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char *argv[], HookArgs *ret) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "timeout", required_argument, NULL, 't' },
                {},
        };
        int c, sec = DEFAULT_TIMEOUT_SEC;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        puts(PROGRAM " " OOMPROTECT_VERSION_STRING);
                        return EXIT_OK;
                case 't':
                        if (parse_int_range(optarg, 1, 3600, &sec) < 0)
                                return error_line(EXIT_USAGE, "--timeout \"%s\" is not a number of seconds (1 to 3600).",
                                                  optarg);
                        break;
                default:
                        return error_line(EXIT_USAGE, "unknown option \"%s\"; see " PROGRAM " --help.",
                                          argv[optind - 1]);
                }
        if (optind != argc - 1)
                return error_line(EXIT_USAGE, "expected one stage (createRuntime, poststart or poststop), got %d "
                                              "arguments; see " PROGRAM " --help.",
                                  argc - optind);
        for (size_t i = 0; i < ELEMENTSOF(stages); i++)
                if (streq(argv[optind], stages[i].name)) {
                        *ret = (HookArgs) { .stage = stages[i].name, .action = stages[i].action,
                                            .timeout_usec = (uint64_t) sec * 1000000U };
                        return -1;
                }
        return error_line(EXIT_USAGE,
                          "unknown stage \"%s\": expected createRuntime, poststart, prestart, poststop or auto.",
                          argv[optind]);
}

/* auto: the stage the state's status implies (runtime-spec "Lifecycle"). */
static int resolve_by_status(HookArgs *args, const OciState *s) {
        static const char *const running[] = { "creating", "created", "running" };

        if (args->action != HOOK_BY_STATUS)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(running); i++)
                if (streq(s->status, running[i])) {
                        args->action = HOOK_PROTECT;
                        return -1;
                }
        if (streq(s->status, "stopped")) {
                args->action = HOOK_UNPROTECT;
                return -1;
        }
        return error_line(EXIT_FAILURE_, "container %s: status \"%s\" tells no stage: give one instead of auto.",
                          s->id, s->status);
}

static int read_state(OciState *ret) {
        _cleanup_free_ char *text = NULL;
        OpError err = {};
        size_t len;
        int r;

        r = read_full_file_at(AT_FDCWD, "/dev/stdin", STATE_MAX, &text, &len);
        if (r == -EFBIG)
                return error_line(EXIT_FAILURE_, "the OCI state on standard input is larger than %u bytes.", STATE_MAX);
        if (r < 0)
                return error_line(EXIT_FAILURE_, "cannot read the OCI state from standard input: %s", strerror(-r));
        if (strlen(text) != len)
                return error_line(EXIT_FAILURE_, "the OCI state on standard input contains a NUL byte.");
        if (oci_state_parse(text, ret, &err) < 0)
                return error_line(EXIT_FAILURE_, "%s", err.message);
        return -1;
}

/* The bundle's config.json annotations under the state's own; a bundle without config.json has none. */
static int add_config_annotations(OciState *s) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        OciAnnotations a = {};
        OpError err = {};
        size_t len;
        int r;

        if (!s->bundle)
                return -1;
        if (asprintf(&path, "%s/config.json", s->bundle) < 0)
                return error_line(EXIT_FAILURE_, "out of memory.");
        r = read_full_file_at(AT_FDCWD, path, CONFIG_MAX, &text, &len);
        if (r == -ENOENT)
                return -1;
        if (r < 0)
                return error_line(EXIT_FAILURE_, "cannot read %s: %s", path, strerror(-r));
        if (strlen(text) != len)
                return error_line(EXIT_FAILURE_, "%s contains a NUL byte.", path);
        if (oci_config_parse_annotations(text, &a, &err) < 0)
                return error_line(EXIT_FAILURE_, "%s: %s", path, err.message);
        r = oci_annotations_merge(&s->annotations, &a);
        oci_annotations_done(&a);
        if (r < 0)
                return error_line(EXIT_FAILURE_, "out of memory.");
        return -1;
}

/*
 * At poststop only the protect annotation counts: a value that made
 * createRuntime fail must not keep whatever did get protected from ending.
 */
static int settings_for_unprotect(const OciAnnotations *a, OciSettings *ret, OpError *err) {
        OciAnnotations only = {};
        const char *protect = oci_annotations_get(a, OCI_ANNOTATION_PROTECT);

        if (!protect) {
                *ret = (OciSettings) {};
                return 0;
        }
        only.items = &(OciAnnotation) { .key = (char *) OCI_ANNOTATION_PROTECT, .value = (char *) protect };
        only.n = 1;
        return oci_settings_from_annotations(&only, 0, ret, err);
}

static int bus_exit(int r, const char *message) {
        error_line(0, "%s", message ? message : strerror(-r));
        return r == -EHOSTUNREACH ? EXIT_UNREACHABLE : EXIT_FAILURE_;
}

static int run(const HookArgs *args, const OciState *s, const OciSettings *set) {
        _cleanup_free_ char *message = NULL;
        unsigned n;
        int r;

        if (args->action == HOOK_UNPROTECT) {
                r = hook_bus_unprotect_tag(s->id, args->timeout_usec, &n, &message);
                return r < 0 ? bus_exit(r, message) : EXIT_OK;
        }
        if (s->pid == 0)
                return error_line(EXIT_FAILURE_, "the OCI state of container %s has no pid: nothing to protect at %s.",
                                  s->id, args->stage);
        HookProtectRequest req = {
                .pid = s->pid,
                .tag = s->id,
                .has_memory_min = set->has_memory_min,
                .memory_min = set->memory_min,
                .has_adj = set->has_adj,
                .adj = set->adj,
        };
        r = hook_bus_protect(&req, args->timeout_usec, &message);
        return r < 0 ? bus_exit(r, message) : EXIT_OK;
}

int main(int argc, char *argv[]) {
        _cleanup_(oci_state_done) OciState s = {};
        OciSettings set = {};
        HookArgs args = {};
        OpError err = {};
        int r;

        r = parse_args(argc, argv, &args);
        if (r >= 0)
                return r;
        r = read_state(&s);
        if (r >= 0)
                return r;
        r = resolve_by_status(&args, &s);
        if (r >= 0)
                return r;
        /* The state carries the config's annotations (runtime-spec); config.json only fills what it lacks. */
        if (!oci_annotations_get(&s.annotations, OCI_ANNOTATION_PROTECT)) {
                r = add_config_annotations(&s);
                if (r >= 0)
                        return r;
        }
        r = args.action == HOOK_UNPROTECT ? settings_for_unprotect(&s.annotations, &set, &err)
                                          : oci_settings_from_annotations(&s.annotations, physical_memory(), &set, &err);
        if (r < 0)
                return error_line(EXIT_FAILURE_, "container %s: %s", s.id, err.message);
        if (!set.protect)
                return EXIT_OK; /* not ours: silently, without touching the bus */
        return run(&args, &s, &set);
}
