/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oombench-sleepers N ADJ: the cheapest live processes to protect by the
 * thousand. Sets its own oom_score_adj to ADJ (children inherit it), forks N
 * children that only pause(), prints "PID STARTTIME" for each (STARTTIME:
 * /proc/PID/stat field 22, the daemon's identity check), then "READY", and
 * waits. The children die with it (PR_SET_PDEATHSIG). Start it inside the
 * cgroup they should live in. Links nothing but libc, so a child costs the
 * kernel a task and a few page tables.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static unsigned long long starttime(pid_t pid) {
        char path[64], buf[1024];
        unsigned long long t = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        if (fgets(buf, sizeof(buf), f)) {
                char *p = strrchr(buf, ')'); /* comm may hold spaces: count fields after it */
                /* After ") " come fields 3..: field 22 is the 20th of them. */
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                                &t) != 1)
                        t = 0;
        }
        fclose(f);
        return t;
}

int main(int argc, char **argv) {
        unsigned long n;
        pid_t parent = getpid();
        FILE *f;

        if (argc != 3) {
                fprintf(stderr, "usage: oombench-sleepers N ADJ\n");
                return 2;
        }
        n = strtoul(argv[1], NULL, 10);
        f = fopen("/proc/self/oom_score_adj", "we");
        if (!f || fprintf(f, "%s\n", argv[2]) < 0 || fclose(f) != 0) {
                fprintf(stderr, "oombench-sleepers: cannot set oom_score_adj %s: %s\n", argv[2], strerror(errno));
                return 1;
        }
        for (unsigned long i = 0; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        fprintf(stderr, "oombench-sleepers: fork #%lu: %s\n", i, strerror(errno));
                        return 1;
                }
                if (pid == 0) {
                        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                                _exit(0);
                        for (;;)
                                pause();
                }
                printf("%d %llu\n", (int) pid, starttime(pid));
        }
        printf("READY\n");
        fflush(stdout);
        for (;;)
                pause();
}
