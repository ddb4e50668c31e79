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
 *   bus-helper self-orphan [reuse]   SetSelfProtection(true) on a connection
 *                                    whose connecting process has exited
 *                                    (a child authenticates on the socket
 *                                    its parent connected, then calls);
 *                                    with reuse, a sleeping newcomer is
 *                                    given the exited PID first
 *                                    (ns_last_pid): prints orphan-pid=,
 *                                    newcomer=PID|missed and set-orphan=
 *   bus-helper retake UNIT MIN       UnprotectUnit(UNIT) and, without
 *                                    waiting for its reply, ProtectUnit(UNIT,
 *                                    {MemoryMin: MIN bytes}): the release
 *                                    still in flight when the raise comes;
 *                                    prints unprotect= and protect=
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
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

/* A stream socket connected to the bus of $DBUS_SYSTEM_BUS_ADDRESS (unix:path=... only). */
static int connect_bus_socket(void) {
        const char *a = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (!a || strncmp(a, "unix:path=", 10) != 0)
                return -EAFNOSUPPORT;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a + 10);
        fd = socket(AF_UNIX, SOCK_STREAM, 0); /* no CLOEXEC: the child takes it over */
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return fd;
}

/* The child: authenticate on the inherited socket, wait for the go, call. */
static _Noreturn void orphan_call(int fd, int go) {
        char c;

        if (read(go, &c, 1) != 1 || sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, fd, fd) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
                printf("set-orphan=bus-failed\n");
                _exit(1);
        }
        call("set-orphan", "SetSelfProtection", NULL, "b", 1);
        _exit(0);
}

/* "cgroup adj" of pid, to tell whether anything changed it. */
static void state_of(pid_t pid, char *buf, size_t size) {
        char path[64], cg[512] = "", adj[32] = "";
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        f = fopen(path, "re");
        if (f) {
                while (fgets(cg, sizeof(cg), f) && strncmp(cg, "0::", 3) != 0)
                        ;
                fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int) pid);
        f = fopen(path, "re");
        if (f) {
                if (!fgets(adj, sizeof(adj), f))
                        adj[0] = '\0';
                fclose(f);
        }
        snprintf(buf, size, "%s %s", cg, adj);
}

static pid_t spawn_at(pid_t want) {
        FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");
        pid_t pid;

        if (f) {
                fprintf(f, "%d", (int) want - 1);
                fclose(f);
        }
        pid = fork();
        if (pid == 0) {
                pause();
                _exit(0);
        }
        return pid;
}

static int run_self_orphan(bool reuse) {
        int go[2], done[2];
        pid_t parent, newcomer = 0;
        char before[600] = "", after[600] = "", c = 'x';

        if (pipe(go) < 0 || pipe(done) < 0)
                return 1;
        fflush(stdout);
        parent = fork();
        if (parent == 0) { /* connects, hands the socket to its child, exits */
                int fd = connect_bus_socket();
                if (fd < 0)
                        _exit(1);
                if (fork() == 0) {
                        close(done[0]);
                        orphan_call(fd, go[0]); /* done[1] closes when it exits */
                }
                _exit(0);
        }
        close(done[1]);
        if (parent < 0)
                return 1;
        waitpid(parent, NULL, 0);
        printf("orphan-pid=%d\n", (int) parent);
        if (reuse) {
                newcomer = spawn_at(parent);
                if (newcomer == parent) {
                        printf("newcomer=%d\n", (int) newcomer);
                        state_of(newcomer, before, sizeof(before));
                } else
                        printf("newcomer=missed\n");
        }
        fflush(stdout);
        (void) !write(go[1], &c, 1);
        while (read(done[0], &c, 1) > 0) /* until the caller exited */
                ;
        if (newcomer == parent) {
                state_of(newcomer, after, sizeof(after));
                printf("newcomer-unchanged=%s\n", strcmp(before, after) == 0 ? "yes" : "no");
        }
        if (newcomer > 0) {
                kill(newcomer, SIGKILL);
                waitpid(newcomer, NULL, 0);
        }
        return 0;
}

/* The replies of the two calls run_retake sends back to back. */
typedef struct Retake {
        const char *step;
        bool done;
} Retake;

static int on_retake_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Retake *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        print_result(t->step, e ? -sd_bus_message_get_errno(reply) : 0, e);
        t->done = true;
        return 0;
}

static int run_retake(const char *unit, uint64_t min) {
        sd_bus_message *m = NULL;
        Retake un = { .step = "unprotect" }, pro = { .step = "protect" };
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, "UnprotectUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", unit);
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_retake_reply, &un, 60 * 1000 * 1000);
        m = sd_bus_message_unref(m);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                                   OOMPROTECT_MANAGER_INTERFACE, "ProtectUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}", unit, 1, "MemoryMin", "t", min);
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_retake_reply, &pro, 60 * 1000 * 1000);
        m = sd_bus_message_unref(m);
        if (r >= 0)
                r = sd_bus_flush(bus); /* both on the wire before either reply is read */
        while (r >= 0 && !(un.done && pro.done)) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        if (r < 0)
                fprintf(stderr, "bus-helper: retake: %s\n", strerror(-r));
        return r < 0 ? 1 : 0;
}

int main(int argc, char *argv[]) {
        int r;

        if (argc >= 2 && strcmp(argv[1], "self-orphan") == 0)
                return run_self_orphan(argc >= 3 && strcmp(argv[2], "reuse") == 0);

        if (argc < 2) {
                fprintf(stderr, "usage: bus-helper self | pidfd PID [TAG] | pidfd-exited | pidfd-notpidfd | self-orphan [reuse] | retake UNIT MIN\n");
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
        else if (strcmp(argv[1], "retake") == 0 && argc >= 4)
                r = run_retake(argv[2], strtoull(argv[3], NULL, 10));
        else
                r = 2;
        sd_bus_flush_close_unref(bus);
        return r;
}
