/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the service manager does for a socket unit, for test-sockets.sh:
 * opens the listeners named on the command line as descriptors 3, 4, ...
 * (in that order), sets LISTEN_FDS and LISTEN_PID as sd_listen_fds(3)
 * wants them, and executes the command after "--" in the same process.
 *
 *   --stream PATH    a listening AF_UNIX stream socket bound to PATH; as
 *                    ListenStream= does, a file in the way is unlinked first
 *   --bound PATH     the same, bound but not listening
 *   --dgram PATH     an AF_UNIX datagram socket bound to PATH
 *   --fifo PATH      the FIFO at PATH opened O_RDWR (ListenFIFO= does so)
 *   --fifo-wronly P  the FIFO at P opened for writing only
 *   --file PATH      PATH opened for reading (no listener at all)
 *   --same X         the previous descriptor once more (a duplicate: the same socket)
 *
 * The systemd unit itself is the VM tier's (tests/vm/scenarios/76-sockets.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static int unix_socket(const char *path, int type, int listening) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "sockets-helper: %s is too long\n", path);
                return -1;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, type, 0);
        if (fd < 0)
                return -1;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
            (listening && listen(fd, SOMAXCONN) < 0)) {
                close(fd);
                return -1;
        }
        return fd;
}

static int open_one(const char *kind, const char *path, int previous) {
        if (strcmp(kind, "--same") == 0)
                return previous >= 0 ? dup(previous) : (errno = EBADF, -1);
        if (strcmp(kind, "--stream") == 0)
                return unix_socket(path, SOCK_STREAM, 1);
        if (strcmp(kind, "--bound") == 0)
                return unix_socket(path, SOCK_STREAM, 0);
        if (strcmp(kind, "--dgram") == 0)
                return unix_socket(path, SOCK_DGRAM, 0);
        if (strcmp(kind, "--fifo") == 0)
                return open(path, O_RDWR | O_NONBLOCK);
        if (strcmp(kind, "--fifo-wronly") == 0)
                return open(path, O_WRONLY | O_NONBLOCK);
        if (strcmp(kind, "--file") == 0)
                return open(path, O_RDONLY);
        errno = EINVAL;
        return -1;
}

static int adopt(int n) {
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t adopted;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, "org.oomprotect", "/org/oomprotect",
                                                   "org.oomprotect.Manager", "AdoptSockets");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "h");
        for (int fd = 3; r >= 0 && fd < 3 + n; fd++)
                r = sd_bus_message_append_basic(m, 'h', &fd);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &adopted);
        if (r < 0)
                printf("%s: %s\n", error.name ? error.name : "error", error.message ? error.message : strerror(-r));
        else
                printf("u %u\n", (unsigned) adopted);
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

int main(int argc, char *argv[]) {
        int i = 1, n = 0;
        char buf[32];

        for (; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2, n++) {
                int fd = open_one(argv[i], argv[i + 1], n > 0 ? 2 + n : -1);
                if (fd < 0 || dup2(fd, 3 + n) < 0) {
                        fprintf(stderr, "sockets-helper: %s %s: %s\n", argv[i], argv[i + 1], strerror(errno));
                        return 1;
                }
                if (fd != 3 + n)
                        close(fd);
        }
        if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
                fprintf(stderr, "usage: sockets-helper [--stream|--bound|--dgram|--fifo|--fifo-wronly|--file PATH]... "
                                "-- COMMAND [ARG]...\n");
                return 2;
        }
        if (strcmp(argv[i + 1], "adopt") == 0)
                return adopt(n);
        snprintf(buf, sizeof(buf), "%d", n);
        setenv("LISTEN_FDS", buf, 1);
        snprintf(buf, sizeof(buf), "%d", (int) getpid());
        setenv("LISTEN_PID", buf, 1);
        execvp(argv[i + 1], argv + i + 1);
        fprintf(stderr, "sockets-helper: %s: %s\n", argv[i + 1], strerror(errno));
        return 127;
}
