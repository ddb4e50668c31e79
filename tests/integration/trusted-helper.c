/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * oomprotect-cuse's bus side (src/cuse/cuse-bus.c) without CUSE, for
 * test-lib.sh: the calls the device makes for an ioctl's caller. Prints
 * "STEP=ok", "STEP=yes|no" or "STEP=ENAME" (the errno the ioctl would return).
 *
 *   trusted-helper set PID UID 0|1     OOMSETPROTECTCMD for PID, whose ioctl came with UID
 *   trusted-helper get PID             OOMGETPROTECTCMD for PID
 *   trusted-helper tgid                a second thread's TID maps to this process's PID
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cuse-bus.h"

static void print_result(const char *step, int r) {
        printf("%s=%s\n", step, r >= 0 ? "ok" : strerrorname_np(-r));
}

/* Runs in a second thread: its TID is not the PID, and must map to it. */
static void *thread_maps(void *arg) {
        int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pid_t tid = (pid_t) syscall(SYS_gettid), pid = 0;
        int r = cuse_tid_to_pid(procfd, tid, &pid);

        close(procfd);
        printf("tid-differs=%s\n", tid != getpid() ? "yes" : "no");
        printf("tgid=%s\n", r >= 0 && pid == getpid() ? "ok" : "wrong");
        return arg;
}

int main(int argc, char *argv[]) {
        CuseBus b = {};
        bool yes = false;
        pthread_t t;
        int r;

        if (argc == 5 && strcmp(argv[1], "set") == 0) {
                r = cuse_bus_set(&b, (pid_t) atoi(argv[2]), (uid_t) atoi(argv[3]), atoi(argv[4]) != 0);
                print_result("set", r);
        } else if (argc == 3 && strcmp(argv[1], "get") == 0) {
                r = cuse_bus_get(&b, (pid_t) atoi(argv[2]), &yes);
                if (r < 0)
                        print_result("get", r);
                else
                        printf("get=%s\n", yes ? "yes" : "no");
        } else if (argc == 2 && strcmp(argv[1], "tgid") == 0) {
                if (pthread_create(&t, NULL, thread_maps, NULL) != 0 || pthread_join(t, NULL) != 0)
                        return 1;
        } else {
                fprintf(stderr, "trusted-helper: bad arguments; see the comment at the top of trusted-helper.c\n");
                return 2;
        }
        cuse_bus_done(&b);
        return 0;
}
