/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * liboomprotect as a C program uses it, for test-lib.sh: links only the
 * shared library. Prints one line per step, "STEP=ok", "STEP=yes|no" or
 * "STEP=ENAME sentence" (the errno name of the return value, then
 * oomprotect_strerror()), for the script to compare. Exit 0 unless used wrongly.
 *
 *   lib-helper self                     set_self(1), get_self, set_self(0), with own cgroup and adj
 *   lib-helper protect PID [KEY=VALUE]  oomprotect_protect(); min=, low=, adj=, tag=, group=1, tree=1
 *   lib-helper unprotect PID | is-protected PID | unprotect-all | unprotect-tag TAG | status
 *   lib-helper options                  struct oomprotect_options size and bit checks (no daemon needed)
 *   lib-helper wait CMD ARGS...         runs CMD (SIGINT, SIGQUIT at default): "exited N" or "signaled N"
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oomprotect.h"

static void print_result(const char *step, int r) {
        if (r >= 0)
                printf("%s=ok\n", step);
        else
                printf("%s=%s %s\n", step, strerrorname_np(-r), oomprotect_strerror(r));
        fflush(stdout);
}

static void print_answer(const char *step, int r, int yes) {
        if (r < 0)
                print_result(step, r);
        else
                printf("%s=%s\n", step, yes ? "yes" : "no");
        fflush(stdout);
}

/* The first line of path, or for a cgroup file its "0::" (cgroup v2) line. */
static void print_file(const char *key, const char *path) {
        char line[512] = "", *value = line;
        FILE *f = fopen(path, "re");

        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (!strstr(path, "cgroup"))
                        break;
                if (strncmp(line, "0::", 3) == 0) {
                        value = line + 3;
                        break;
                }
        }
        if (f)
                fclose(f);
        printf("%s=%s\n", key, value);
}

static int cmd_self(void) {
        int yes = 0, r;

        printf("pid=%d\n", (int) getpid());
        r = oomprotect_get_self(&yes);
        print_answer("get-before", r, yes);
        print_result("set-true", oomprotect_set_self(1));
        r = oomprotect_get_self(&yes);
        print_answer("get-after-set", r, yes);
        print_file("cgroup", "/proc/self/cgroup");
        print_file("adj", "/proc/self/oom_score_adj");
        print_result("set-false", oomprotect_set_self(0));
        r = oomprotect_get_self(&yes);
        print_answer("get-after-unset", r, yes);
        print_file("cgroup", "/proc/self/cgroup");
        print_file("adj", "/proc/self/oom_score_adj");
        return 0;
}

static void parse_option(struct oomprotect_options *o, const char *arg) {
        const char *v = strchr(arg, '=') + 1;

        if (strncmp(arg, "min=", 4) == 0)
                o->set |= OOMPROTECT_OPTION_MEMORY_MIN, o->memory_min = strtoull(v, NULL, 0);
        else if (strncmp(arg, "low=", 4) == 0)
                o->set |= OOMPROTECT_OPTION_MEMORY_LOW, o->memory_low = strtoull(v, NULL, 0);
        else if (strncmp(arg, "adj=", 4) == 0)
                o->set |= OOMPROTECT_OPTION_OOM_SCORE_ADJ, o->oom_score_adj = atoi(v);
        else if (strncmp(arg, "tag=", 4) == 0)
                o->set |= OOMPROTECT_OPTION_TAG, o->tag = v;
        else if (strncmp(arg, "group=", 6) == 0)
                o->set |= OOMPROTECT_OPTION_OOM_GROUP, o->oom_group = atoi(v);
        else if (strncmp(arg, "tree=", 5) == 0)
                o->set |= OOMPROTECT_OPTION_DESCENDANTS, o->descendants = atoi(v);
}

static int cmd_protect(int argc, char *argv[]) {
        struct oomprotect_options o = OOMPROTECT_OPTIONS_INIT;

        for (int i = 3; i < argc; i++)
                if (strchr(argv[i], '='))
                        parse_option(&o, argv[i]);
        print_result("protect", oomprotect_protect((pid_t) atoi(argv[2]), argc > 3 ? &o : NULL));
        return 0;
}

/* A caller compiled against a newer header: a bigger struct, zero or not in its new part. */
struct options_v2 {
        struct oomprotect_options v1;
        uint64_t future;
};

static int cmd_options(void) {
        struct oomprotect_options small = { .size = sizeof(size_t), .set = OOMPROTECT_OPTION_MEMORY_MIN };
        struct oomprotect_options bits = { .size = sizeof(bits), .set = UINT64_C(1) << 40 };
        struct options_v2 v2 = { .v1.size = sizeof(v2), .future = 1 };

        print_result("too-small", oomprotect_protect(getpid(), &small));
        print_result("unknown-bit", oomprotect_protect(getpid(), &bits));
        print_result("newer-nonzero", oomprotect_protect(getpid(), &v2.v1));
        print_result("pid-zero", oomprotect_protect(0, NULL));
        print_result("pid-negative", oomprotect_unprotect(-5));
        print_result("empty-tag", oomprotect_unprotect_tag(""));
        printf("strerror-plain=%s\n", oomprotect_strerror(-ENOENT));
        return 0;
}

static int cmd_status(void) {
        struct oomprotect_status *s = NULL;
        int r = oomprotect_get_status(&s);

        print_result("status", r);
        if (r < 0)
                return 0;
        printf("backend=%s\nslice=%s\ncount=%u\nbudget=%" PRIu64 "\nin-use=%" PRIu64 "\n", s->backend, s->slice,
               s->protected_count, s->memory_min_budget, s->memory_min_in_use);
        for (size_t i = 0; i < s->n_entries; i++)
                printf("entry=%d %s %s %d %d %" PRIu64 " %s %s\n", (int) s->entries[i]->pid, s->entries[i]->comm,
                       s->entries[i]->scope_cgroup, s->entries[i]->original_adj, s->entries[i]->applied_adj,
                       s->entries[i]->memory_min, s->entries[i]->source, s->entries[i]->tag);
        oomprotect_status_free(s);
        return 0;
}

static int cmd_wait(char *argv[]) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return 1;
        if (pid == 0) {
                /* As an interactive shell starts a job: bash ignores these for the background jobs of a script. */
                signal(SIGINT, SIG_DFL);
                signal(SIGQUIT, SIG_DFL);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid)
                return 1;
        if (WIFSIGNALED(status))
                printf("signaled %d\n", WTERMSIG(status));
        else
                printf("exited %d\n", WEXITSTATUS(status));
        return 0;
}

int main(int argc, char *argv[]) {
        const char *cmd = argc > 1 ? argv[1] : "";
        int yes = 0, r;

        if (strcmp(cmd, "self") == 0)
                return cmd_self();
        if (strcmp(cmd, "protect") == 0 && argc >= 3)
                return cmd_protect(argc, argv);
        if (strcmp(cmd, "unprotect") == 0 && argc == 3)
                return print_result("unprotect", oomprotect_unprotect((pid_t) atoi(argv[2]))), 0;
        if (strcmp(cmd, "is-protected") == 0 && argc == 3) {
                r = oomprotect_is_protected((pid_t) atoi(argv[2]), &yes);
                return print_answer("is-protected", r, yes), 0;
        }
        if (strcmp(cmd, "unprotect-all") == 0)
                return printf("unprotect-all=%d\n", oomprotect_unprotect_all()), 0;
        if (strcmp(cmd, "unprotect-tag") == 0 && argc == 3)
                return printf("unprotect-tag=%d\n", oomprotect_unprotect_tag(argv[2])), 0;
        if (strcmp(cmd, "options") == 0)
                return cmd_options();
        if (strcmp(cmd, "status") == 0)
                return cmd_status();
        if (strcmp(cmd, "wait") == 0 && argc >= 3)
                return cmd_wait(argv + 2);
        fprintf(stderr, "lib-helper: bad arguments; see the comment at the top of lib-helper.c\n");
        return 2;
}
