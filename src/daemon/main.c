/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bus.h"
#include "compat.h"
#include "log.h"
#include "manager.h"
#include "oomprotect/protocol.h"
#include "procwatch.h"
#include "rules.h"

static const char *arg_config = OOMPROTECT_CONFIG_FILE;
static bool arg_check_config = false;
static bool arg_bus = true;

static void help(void) {
        printf("oomprotectd — keeps chosen processes alive when memory runs out\n\n"
               "Usage: oomprotectd [OPTIONS]\n\n"
               "Protects processes from the OOM killer: oom_score_adj on the process, and\n"
               "memory.min on its own scope under protected.slice, or in place on its unit's\n"
               "cgroup and ancestors where a move would take it out of its unit's limits; puts\n"
               "everything back exactly when it is unprotected.\n\n"
               "  -c --config=FILE     Configuration file (default " OOMPROTECT_CONFIG_FILE ");\n"
               "                       FILE.d/*.conf are read after it\n"
               "     --check-config    Validate the configuration, print the effective one, exit\n"
               "                       (1 if any value was rejected)\n"
               "     --no-bus          Do not connect to D-Bus: serve only the compat directory\n"
               "     --log-level=LEVEL emerg, alert, crit, err, warning, notice, info or debug\n"
               "  -h --help            Show this help and exit\n"
               "     --version         Show the version and exit\n\n"
               "See oomprotectd(8) and oomprotectd.conf(5).\n");
}

/* Returns 1 to go on, 0 to exit successfully, negative on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG, ARG_LOG_LEVEL, ARG_NO_BUS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                {},
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("oomprotectd %s\n", OOMPROTECT_VERSION_STRING);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case ARG_NO_BUS:
                        arg_bus = false;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_parse_level(optarg);
                        if (level < 0)
                                return log_error_errno(level, "Unknown log level \"%s\".", optarg);
                        log_set_max_level(level);
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument \"%s\"; see --help.", argv[optind]);
        return 1;
}

/* The rules of RuleDirectories=: their warnings, and one comment line per good rule after the dump. */
static int check_rules(const Config *c) {
        RuleSet s = {};
        int r;

        r = rules_load_string(&s, c->rule_directories);
        if (r < 0) {
                rule_set_done(&s);
                return log_error_errno(r, "Failed to read the rules in %s: %m", c->rule_directories);
        }
        for (size_t i = 0; i < s.n_warnings; i++)
                log_warning("%s", s.warnings[i]);
        printf("# %zu rule(s) from %s\n", s.n, c->rule_directories);
        for (size_t i = 0; i < s.n; i++)
                printf("# rule %s (%s:%u)\n", s.rules[i]->name, s.rules[i]->file, s.rules[i]->line);
        r = (int) s.n_warnings;
        rule_set_done(&s);
        return r;
}

static int check_config(void) {
        _cleanup_free_ char *dropins = NULL;
        Config c;
        int r, k = 0;

        r = config_init(&c);
        if (r < 0)
                return r;
        if (asprintf(&dropins, "%s.d", arg_config) < 0)
                return log_oom();
        r = config_load(&c, arg_config, true, dropins);
        if (r >= 0) {
                config_dump(&c, stdout);
                k = check_rules(&c);
        }
        config_done(&c);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", arg_config);
        if (k < 0)
                return k;
        if (r > 0 || k > 0)
                return log_error_errno(EINVAL, "%d problem(s) found in %s and its drop-ins, %d in the rules; "
                                       "the values shown are the ones that would be used, the rules shown the "
                                       "ones that would apply.", r, arg_config, k);
        return 0;
}

/* One pidfd per protection: the soft limit (1024 by default) goes up to the hard one (LimitNOFILE=). */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(errno, "Failed to raise the open-file limit to %llu, ignoring: %m",
                                  (unsigned long long) rl.rlim_max);
}

/* The daemon is there for the moments memory runs out; then its own code must not be what the kernel
 * reclaims and reads back from disk at every request (DESIGN.md 6). With RLIMIT_MEMLOCK unlimited (the
 * shipped unit's LimitMEMLOCK=infinity) every page it has touched stays in memory, and every page it
 * touches later once touched. MCL_ONFAULT reads nothing in ahead: resident memory stays what the daemon
 * uses (VmLck counts the whole mappings, VmRSS what is in memory). Under any other limit nothing is locked:
 * MCL_FUTURE under a finite limit would make a later allocation fail once the mappings outgrew it. */
static void lock_memory(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur != RLIM_INFINITY) {
                log_debug("RLIMIT_MEMLOCK is not unlimited: the daemon's memory is not locked.");
                return;
        }
        if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
                log_warning_errno(errno, "Failed to lock the daemon's memory, ignoring: %m");
        else
                log_debug("The daemon's memory is locked as it is used (RLIMIT_MEMLOCK unlimited).");
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        /* journald reads "<N>" prefixes; a person at a terminal does not need them. */
        log_set_prefix(!isatty(STDERR_FILENO));
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (arg_check_config)
                return check_config() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        log_info("oomprotectd %s starting with %s.", OOMPROTECT_VERSION_STRING, arg_config);
        raise_fd_limit();
        r = manager_new(arg_config, &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        /* The historic files are one front end: when they cannot be served, D-Bus still is. */
        r = compat_setup(m);
        if (r < 0 && !arg_bus)
                return EXIT_FAILURE;
        if (r < 0)
                log_error("Not serving CompatDirectory=%s (see above); D-Bus goes on.", m->config.compat_directory);
        if (arg_bus) {
                r = bus_setup(m);
                if (r < 0)
                        return EXIT_FAILURE;
                compat_ask_for_sockets(m); /* the socket units' listeners, if they were handed to an earlier run */
        }
        /* Rules last: the front ends are up when their first protections are announced. */
        r = procwatch_setup(m);
        if (r < 0)
                return EXIT_FAILURE;
        lock_memory();
        r = manager_run(m);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        log_info("oomprotectd stopped.");
        return EXIT_SUCCESS;
}
