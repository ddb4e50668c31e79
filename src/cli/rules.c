/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotectctl rules [test PID]: the rules oomprotectd would load and what
 * each matches now, or which rule would apply to one process and why. Read
 * only; needs neither oomprotectd nor the bus: the rule files are parsed and
 * /proc is read here, with the same code the daemon uses (src/core/rules.c).
 * Without root, the executables of other users' processes cannot be read,
 * and Executable= cannot match them: said in the output.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "escape.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "rules.h"
#include "verbs.h"

#define PROGRAM "oomprotectctl"
#define RULES_DIRS_MAX RULES_DIRECTORIES_MAX

typedef struct RulesArgs {
        char *dirs[RULES_DIRS_MAX];
        size_t n_dirs;
        const char *config;
        int json; /* json-c flags, -1: off */
} RulesArgs;

static void help_rules(void) {
        printf(PROGRAM " rules [OPTIONS]\n" PROGRAM " rules test PID [OPTIONS]\n\n"
               "Lists the protection rules oomprotectd loads and the processes each matches now,\n"
               "or says which rule would apply to PID and why. Works without oomprotectd.\n\n"
               "  -d --rules-directory=DIR  Read the rules of DIR (repeat: earlier ones mask later\n"
               "                            ones) instead of RuleDirectories= of oomprotectd.conf\n"
               "  -c --config=FILE          oomprotectd's configuration (default " OOMPROTECT_CONFIG_FILE ")\n"
               "     --json[=pretty|short|off]  Print JSON\n"
               "  -h --help                 Show this help\n\n"
               "Exit status: 0; for test, 1 when no rule applies. See oomprotect.rules(5).\n");
}

_printf_(1, 2) static int rules_usage(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": rules: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 2;
}

/* Returns -1 to go on, else the exit status. */
static int parse_rules_argv(int argc, char *argv[], RulesArgs *a) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "rules-directory", required_argument, NULL, 'd' },
                { "config", required_argument, NULL, 'c' },
                { "json", optional_argument, NULL, ARG_JSON },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hd:c:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help_rules();
                        return 0;
                case 'd':
                        if (a->n_dirs >= RULES_DIRS_MAX)
                                return rules_usage("at most %d directories.", RULES_DIRS_MAX);
                        if (optarg[0] != '/')
                                return rules_usage("--rules-directory=%s: not an absolute path.", optarg);
                        a->dirs[a->n_dirs++] = optarg;
                        break;
                case 'c':
                        a->config = optarg;
                        break;
                case ARG_JSON:
                        if (parse_json_mode(optarg, &a->json) < 0)
                                return rules_usage("--json=%s: expected pretty, short or off.", optarg);
                        break;
                case ':':
                        return rules_usage("option \"%s\" needs a value.", argv[optind - 1]);
                default:
                        return rules_usage("unknown option \"%s\"; see " PROGRAM " rules --help.", argv[optind - 1]);
                }
        return -1;
}

/* The rules as the daemon would load them: from --rules-directory, else RuleDirectories= of the configuration. */
static int load(const RulesArgs *a, RuleSet *s) {
        _cleanup_free_ char *dropins = NULL;
        const char *path = a->config ?: OOMPROTECT_CONFIG_FILE;
        Config c;
        int r;

        if (a->n_dirs > 0)
                return rules_load(s, (char *const *) a->dirs, a->n_dirs);
        r = config_init(&c);
        if (r < 0)
                return r;
        if (asprintf(&dropins, "%s.d", path) < 0) {
                config_done(&c);
                return -ENOMEM;
        }
        log_set_max_level(LOG_ERR); /* the configuration's own warnings are --check-config's business */
        r = config_load(&c, path, a->config != NULL, dropins);
        log_set_max_level(LOG_INFO);
        if (r >= 0)
                r = rules_load_string(s, c.rule_directories);
        config_done(&c);
        return r;
}

static void print_warnings(const RuleSet *s) {
        for (size_t i = 0; i < s->n_warnings; i++) {
                _cleanup_free_ char *w = text_escape(s->warnings[i]);
                fprintf(stderr, PROGRAM ": %s\n", w ?: "(out of memory)");
        }
}

static void print_json_object(json_object *o, int flags) {
        puts(json_object_to_json_string_ext(o, flags));
        json_object_put(o);
}

/* ---- rules: the list ---- */

typedef struct RuleHits {
        pid_t *pids;
        size_t n;
} RuleHits;

/* Which rule applies to each process now (the first that matches, as in the daemon). */
static int collect_hits(int procfd, const RuleSet *s, RuleHits *hits, size_t *ret_unreadable) {
        DIR *d = NULL;
        struct dirent *de;
        size_t unreadable = 0;
        int r;

        r = opendir_at(procfd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                RuleProcess p;
                const Rule *rule;
                pid_t pid, *a;

                if (parse_pid(de->d_name, &pid) < 0 || rule_process_read(procfd, pid, &p) < 0)
                        continue;
                if (!p.exe && !p.kernel_thread && geteuid() != 0)
                        unreadable++;
                rule = rules_match(s, &p);
                rule_process_done(&p);
                for (size_t i = 0; rule && i < s->n; i++) {
                        if (s->rules[i] != rule)
                                continue;
                        a = realloc(hits[i].pids, (hits[i].n + 1) * sizeof(pid_t));
                        if (!a) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        hits[i].pids = a;
                        hits[i].pids[hits[i].n++] = pid;
                }
        }
        closedir(d);
        *ret_unreadable = unreadable;
        return 0;
}

static json_object *list_json(const RuleSet *s, const RuleHits *hits) {
        json_object *o = json_object_new_object(), *rules = json_object_new_array(), *warnings = json_object_new_array();

        for (size_t i = 0; i < s->n; i++) {
                json_object *r = json_object_new_object(), *pids = json_object_new_array();
                json_object_object_add(r, "name", json_object_new_string(s->rules[i]->name));
                json_object_object_add(r, "file", json_object_new_string(s->rules[i]->file));
                json_object_object_add(r, "line", json_object_new_int((int) s->rules[i]->line));
                for (size_t k = 0; k < hits[i].n; k++)
                        json_object_array_add(pids, json_object_new_int(hits[i].pids[k]));
                json_object_object_add(r, "pids", pids);
                json_object_array_add(rules, r);
        }
        for (size_t i = 0; i < s->n_warnings; i++)
                json_object_array_add(warnings, json_object_new_string(s->warnings[i]));
        json_object_object_add(o, "rules", rules);
        json_object_object_add(o, "warnings", warnings);
        return o;
}

static void list_table(const RuleSet *s, const RuleHits *hits) {
        if (s->n == 0) {
                puts("No rules.");
                return;
        }
        printf("%-24s %-48s %s\n", "RULE", "FILE:LINE", "MATCHES NOW");
        for (size_t i = 0; i < s->n; i++) {
                _cleanup_free_ char *where = NULL;
                if (asprintf(&where, "%s:%u", s->rules[i]->file, s->rules[i]->line) < 0)
                        where = NULL;
                printf("%-24s %-48s %zu process(es)", s->rules[i]->name, strna(where), hits[i].n);
                for (size_t k = 0; k < hits[i].n; k++)
                        printf(k == 0 ? ": %d" : " %d", (int) hits[i].pids[k]);
                putchar('\n');
        }
}

static int rules_list(const RulesArgs *a, const RuleSet *s, int procfd) {
        RuleHits *hits = calloc(s->n + 1, sizeof(RuleHits));
        size_t unreadable = 0;
        int r;

        if (!hits)
                return -ENOMEM;
        r = collect_hits(procfd, s, hits, &unreadable);
        if (r >= 0 && a->json >= 0)
                print_json_object(list_json(s, hits), a->json);
        else if (r >= 0) {
                list_table(s, hits);
                if (unreadable > 0)
                        printf("(%zu process(es) whose executable cannot be read without root: Executable= cannot "
                               "match them here, it can in oomprotectd.)\n", unreadable);
        }
        for (size_t i = 0; i < s->n; i++)
                free(hits[i].pids);
        free(hits);
        return r;
}

/* ---- rules test PID ---- */

static void print_protection(const Rule *r) {
        char buf[FORMAT_BYTES_MAX];

        printf("  protection:");
        if (r->options.has_memory_min)
                printf(" MemoryMin=%s", format_bytes(buf, sizeof(buf), r->options.memory_min));
        if (r->options.has_memory_low)
                printf(" MemoryLow=%s", format_bytes(buf, sizeof(buf), r->options.memory_low));
        if (r->options.has_adj)
                printf(" OOMScoreAdjust=%d", r->options.adj);
        if (r->options.has_in_place)
                printf(" InPlace=%s", r->options.in_place ? "yes" : "no");
        if (r->options.descendants)
                printf(" Descendants=yes");
        puts(" (the rest as oomprotectd.conf's defaults)");
}

static json_object *test_json(const RuleSet *s, const RuleProcess *p, const Rule *match, char **whys,
                              const bool *hit) {
        json_object *o = json_object_new_object(), *rules = json_object_new_array();

        json_object_object_add(o, "pid", json_object_new_int(p->pid));
        json_object_object_add(o, "comm", json_object_new_string(p->comm));
        json_object_object_add(o, "exe", p->exe ? json_object_new_string(p->exe) : NULL);
        json_object_object_add(o, "cgroup", p->cgroup ? json_object_new_string(p->cgroup) : NULL);
        json_object_object_add(o, "rule", match ? json_object_new_string(match->name) : NULL);
        for (size_t i = 0; i < s->n; i++) {
                json_object *r = json_object_new_object();
                json_object_object_add(r, "name", json_object_new_string(s->rules[i]->name));
                json_object_object_add(r, "file", json_object_new_string(s->rules[i]->file));
                json_object_object_add(r, "line", json_object_new_int((int) s->rules[i]->line));
                json_object_object_add(r, "matches", json_object_new_boolean(hit[i]));
                json_object_object_add(r, "applies", json_object_new_boolean(s->rules[i] == match));
                json_object_object_add(r, "why", whys[i] ? json_object_new_string(whys[i]) : NULL);
                json_object_array_add(rules, r);
        }
        json_object_object_add(o, "rules", rules);
        return o;
}

static void test_text(const RuleSet *s, const RuleProcess *p, const Rule *match, char **whys) {
        _cleanup_free_ char *comm = text_escape(p->comm), *exe = p->exe ? text_escape(p->exe) : NULL;

        printf("PID %d (%s, %s):\n", (int) p->pid, strna(comm),
               exe ? exe : "executable unreadable: run as root to match Executable=");
        for (size_t i = 0; i < s->n; i++) {
                _cleanup_free_ char *why = whys[i] ? text_escape(whys[i]) : NULL;
                if (s->rules[i] == match) {
                        printf("  rule %s (%s:%u) applies: %s.\n", match->name, match->file, match->line, strna(why));
                        print_protection(match);
                        return; /* the rules after the first match are not looked at, as in the daemon */
                }
                printf("  rule %s (%s:%u) does not: %s.\n", s->rules[i]->name, s->rules[i]->file,
                       s->rules[i]->line, strna(why));
        }
        puts(s->n ? "  No rule applies." : "  No rules.");
}

static int rules_test(const RulesArgs *a, const RuleSet *s, int procfd, pid_t pid) {
        const Rule *match = NULL;
        char **whys = calloc(s->n + 1, sizeof(char *));
        bool *hit = calloc(s->n + 1, sizeof(bool));
        RuleProcess p;
        int r;

        if (!whys || !hit) {
                free(whys);
                free(hit);
                return -ENOMEM;
        }
        r = rule_process_read(procfd, pid, &p);
        if (r < 0) {
                free(whys);
                free(hit);
                fprintf(stderr, PROGRAM ": rules test: PID %d: %s\n", (int) pid,
                        r == -ESRCH ? "no such process" : strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < s->n; i++)
                if ((hit[i] = rule_matches(s->rules[i], &p, &whys[i])) && !match)
                        match = s->rules[i];
        if (a->json >= 0)
                print_json_object(test_json(s, &p, match, whys, hit), a->json);
        else
                test_text(s, &p, match, whys);
        for (size_t i = 0; i < s->n; i++)
                free(whys[i]);
        free(whys);
        free(hit);
        rule_process_done(&p);
        return match ? 0 : 1;
}

int verb_rules(int argc, char *argv[]) {
        RulesArgs a = { .json = -1 };
        _cleanup_close_ int procfd = -EBADF;
        RuleSet s = {};
        pid_t pid = 0;
        int r;

        r = parse_rules_argv(argc, argv, &a);
        if (r >= 0)
                return r;
        if (optind < argc && !streq(argv[optind], "test"))
                return rules_usage("unknown subcommand \"%s\"; expected test PID.", argv[optind]);
        if (optind < argc) {
                if (optind + 1 >= argc)
                        return rules_usage("test: which PID?");
                if (optind + 2 < argc)
                        return rules_usage("test: one PID only; \"%s\" is one too many.", argv[optind + 2]);
                if (parse_pid(argv[optind + 1], &pid) < 0)
                        return rules_usage("test: \"%s\" is not a PID.", argv[optind + 1]);
        }
        procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (procfd < 0) {
                fprintf(stderr, PROGRAM ": rules: cannot open /proc: %m\n");
                return 1;
        }
        r = load(&a, &s);
        if (r < 0) {
                fprintf(stderr, PROGRAM ": rules: cannot read the rules: %s\n", strerror(-r));
                rule_set_done(&s);
                return 1;
        }
        if (a.json < 0)
                print_warnings(&s);
        r = pid > 0 ? rules_test(&a, &s, procfd, pid) : rules_list(&a, &s, procfd);
        rule_set_done(&s);
        if (r < 0) {
                fprintf(stderr, PROGRAM ": rules: %s\n", strerror(-r));
                return 1;
        }
        return r;
}
