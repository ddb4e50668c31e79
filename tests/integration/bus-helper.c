/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What test-bus.sh cannot do with busctl: call as a process that stays
 * alive across calls (SetSelfProtection/GetSelfProtection act on the
 * caller's own PID) and pass a real pidfd (ProtectPidfd). Prints one line
 * per step, "STEP=ok", "STEP=yes|no" or "STEP=<error name>", for the script
 * to compare. Exit 0 unless the bus itself failed.
 *
 *   bus-helper self                  the module's ioctl round trip on itself
 *   bus-helper pidfd PID [TAG]       ProtectPidfd(pidfd_open(PID), {Tag})
 *   bus-helper pidfd-exited          ProtectPidfd of a child that has exited
 *   bus-helper pidfd-notpidfd        ProtectPidfd of /dev/null
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "oomprotect/protocol.h"

static sd_bus *bus;

static void print_result(const char *step, int r, const sd_bus_error *e) {
        if (r >= 0)
                printf("%s=ok\n", step);
        else
                printf("%s=%s\n", step, e->name ? e->name : strerror(-r));
        fflush(stdout);
}

static int call(const char *step, const char *method, sd_bus_message **reply, const char *types, ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, method);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, reply);
        if (step)
                print_result(step, r, &e);
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        return r;
}

static void get_self(const char *step) {
        sd_bus_message *reply = NULL;
        int yes = 0;

        if (call(NULL, "GetSelfProtection", &reply, "") >= 0 && sd_bus_message_read(reply, "b", &yes) >= 0)
                printf("%s=%s\n", step, yes ? "yes" : "no");
        else
                printf("%s=error\n", step);
        fflush(stdout);
        sd_bus_message_unref(reply);
}

static void print_own_state(void) {
        char line[512] = "", path[64];
        FILE *f;

        f = fopen("/proc/self/cgroup", "re");
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0)
                        printf("cgroup=%s", line + 3);
        if (f)
                fclose(f);
        snprintf(path, sizeof(path), "/proc/self/oom_score_adj");
        f = fopen(path, "re");
        if (f && fgets(line, sizeof(line), f))
                printf("adj=%s", line);
        if (f)
                fclose(f);
        fflush(stdout);
}

static int run_self(void) {
        printf("pid=%d\n", (int) getpid());
        get_self("get-before");
        call("set-true", "SetSelfProtection", NULL, "b", 1);
        get_self("get-after-set");
        print_own_state();
        call("set-true-again", "SetSelfProtection", NULL, "b", 1);
        call("set-false", "SetSelfProtection", NULL, "b", 0);
        get_self("get-after-unset");
        print_own_state();
        call("set-false-again", "SetSelfProtection", NULL, "b", 0);
        return 0;
}

static int pidfd_open(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static int run_pidfd(pid_t pid, const char *tag) {
        int fd = pidfd_open(pid);

        if (fd < 0) {
                printf("pidfd_open=%s\n", strerror(errno));
                return 1;
        }
        if (tag)
                call("protect-pidfd", "ProtectPidfd", NULL, "ha{sv}", fd, 1, "Tag", "s", tag);
        else
                call("protect-pidfd", "ProtectPidfd", NULL, "ha{sv}", fd, 0);
        close(fd);
        return 0;
}

static int run_pidfd_exited(void) {
        pid_t child = fork();
        int fd;

        if (child < 0)
                return 1;
        if (child == 0) {
                pause();
                _exit(0);
        }
        fd = pidfd_open(child);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        if (fd < 0)
                return 1;
        call("protect-pidfd-exited", "ProtectPidfd", NULL, "ha{sv}", fd, 0);
        close(fd);
        return 0;
}

static int run_pidfd_notpidfd(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 1;
        call("protect-notpidfd", "ProtectPidfd", NULL, "ha{sv}", fd, 0);
        close(fd);
        return 0;
}

int main(int argc, char *argv[]) {
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: bus-helper self | pidfd PID [TAG] | pidfd-exited | pidfd-notpidfd\n");
                return 2;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bus-helper: cannot connect to the system bus: %s\n", strerror(-r));
                return 3;
        }
        if (strcmp(argv[1], "self") == 0)
                r = run_self();
        else if (strcmp(argv[1], "pidfd") == 0 && argc >= 3)
                r = run_pidfd((pid_t) atoi(argv[2]), argc >= 4 ? argv[3] : NULL);
        else if (strcmp(argv[1], "pidfd-exited") == 0)
                r = run_pidfd_exited();
        else if (strcmp(argv[1], "pidfd-notpidfd") == 0)
                r = run_pidfd_notpidfd();
        else
                r = 2;
        sd_bus_flush_close_unref(bus);
        return r;
}
