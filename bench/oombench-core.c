/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oombench-core VERB N [DIR]: the daemon's per-change work that grows with
 * the number of protections, run on N records like the daemon's, without a
 * daemon: for callgrind, whose valgrind 3.19 cannot run the daemon itself
 * (it lacks pidfd_open). Every measured call goes through a function named
 * measured_*, so that
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='measured_*' oombench-core VERB N
 *
 * counts exactly those calls (instructions per call: the total over the
 * repeat= it prints: fewer at large N, where one call is millions).
 *
 *   serialize    state_serialize() of N records (what a whole rewrite of state.json costs)
 *   save         state_save() into DIR (serialize + the tmp/fsync/rename)
 *   commit       one change persisted into DIR/state.json: its line appended (what every change costs)
 *   status       ctl_format_status() of N rows (the compat status, rebuilt whole)
 *   registry     registry_add() + registry_remove() of one record among N
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl-protocol.h"
#include "protection.h"
#include "registry.h"
#include "state.h"


static Protection *fake(pid_t pid) {
        Protection *p = protection_new();
        char buf[256];

        if (!p)
                abort();
        p->pid = pid;
        p->starttime = 123456789ULL + (uint64_t) pid;
        snprintf(p->comm, sizeof(p->comm), "oombench-sleepe");
        snprintf(buf, sizeof(buf), "/oombench.slice/load");
        p->original_cgroup = strdup(buf);
        snprintf(buf, sizeof(buf), "/oombench.slice/oombench-protected.slice/oomprotect-%d.scope", (int) pid);
        p->scope_cgroup = strdup(buf);
        p->original_adj = 700;
        p->since_usec = 1700000000000000ULL;
        p->source = strdup("dbus");
        if (!p->original_cgroup || !p->scope_cgroup || !p->source)
                abort();
        return p;
}

__attribute__((noinline)) static int measured_serialize(Registry *r) {
        char *text = NULL;
        int ret = state_serialize(r->items, r->n, &text);

        free(text);
        return ret;
}

__attribute__((noinline)) static int measured_save(Registry *r, int dirfd) {
        return state_save(dirfd, r->items, r->n);
}

/* One record changes (its state flips) and is persisted: stage + commit, as engine_persist_pid() does. */
__attribute__((noinline)) static int measured_commit(Registry *r, StateFile *f, size_t i) {
        Protection *p = r->items[i % r->n];
        int ret;

        p->state = p->state == PROTECTION_ACTIVE ? PROTECTION_RESTORING : PROTECTION_ACTIVE;
        ret = state_file_stage(f, p->pid);
        return ret < 0 ? ret : state_file_commit(f, r, NULL, NULL);
}

__attribute__((noinline)) static int measured_status(Registry *r) {
        StatusEntry *e = calloc(r->n ? r->n : 1, sizeof(StatusEntry));
        char *text;

        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < r->n; i++)
                e[i] = (StatusEntry) { .pid = r->items[i]->pid, .comm = r->items[i]->comm };
        text = ctl_format_status(e, r->n, NULL);
        free(e);
        free(text);
        return text ? 0 : -ENOMEM;
}

__attribute__((noinline)) static int measured_registry(Registry *r, pid_t pid) {
        Protection *p = fake(pid);
        int ret = registry_add(r, p);

        protection_free(registry_remove(r, pid));
        return ret;
}

int main(int argc, char **argv) {
        Registry reg = {};
        StateFile f;
        const char *verb;
        int dirfd = -1, r = 0, repeat;
        long n;

        if (argc < 3) {
                fprintf(stderr, "usage: oombench-core serialize|save|commit|status|registry N [DIR]\n");
                return 2;
        }
        verb = argv[1];
        n = strtol(argv[2], NULL, 10);
        repeat = n >= 10000 ? 1 : n >= 1000 ? 3 : 10;
        for (long i = 0; i < n; i++)
                if (registry_add(&reg, fake((pid_t) (1000 + 2 * i))) < 0)
                        abort();
        if (strcmp(verb, "save") == 0 || strcmp(verb, "commit") == 0) {
                dirfd = open(argc > 3 ? argv[3] : "/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd < 0)
                        return 1;
        }
        state_file_init(&f, dirfd);
        if (strcmp(verb, "commit") == 0) {
                repeat = 10; /* a line each, whatever N: the same repeat everywhere */
                r = state_file_commit(&f, &reg, NULL, NULL); /* the first one writes the file whole: not measured */
        }
        for (int i = 0; i < repeat && r >= 0; i++) {
                if (strcmp(verb, "commit") == 0)
                        r = measured_commit(&reg, &f, (size_t) i);
                else if (strcmp(verb, "serialize") == 0)
                        r = measured_serialize(&reg);
                else if (strcmp(verb, "save") == 0)
                        r = measured_save(&reg, dirfd);
                else if (strcmp(verb, "status") == 0)
                        r = measured_status(&reg);
                else if (strcmp(verb, "registry") == 0)
                        r = measured_registry(&reg, (pid_t) (1001 + n)); /* odd: amid the even pids of the N */
                else
                        r = -EINVAL;
        }
        state_file_done(&f);
        if (dirfd >= 0) {
                (void) unlinkat(dirfd, "state.json", 0);
                close(dirfd);
        }
        registry_done(&reg);
        if (r < 0)
                fprintf(stderr, "oombench-core %s: %s\n", verb, strerror(-r));
        printf("repeat=%d\n", repeat);
        return r < 0;
}
