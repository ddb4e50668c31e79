/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A client of ctl.sock for the VM scenarios (the guest has neither socat nor
 * a netcat that speaks AF_UNIX): connects to PATH, sends stdin's lines and
 * prints each reply line (OK or ERR ...), then exits 0; 1 when it cannot
 * connect, or no reply comes within 20 s (a socket nobody accepts on).
 *
 *   ctl-sock PATH < lines
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char line[4200], reply[4200];
        int fd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: ctl-sock PATH < lines\n");
                return 2;
        }
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "ctl-sock: cannot connect to %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        while (fgets(line, sizeof(line), stdin)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (write(fd, line, strlen(line)) < 0 || poll(&p, 1, 20000) <= 0 ||
                    (n = read(fd, reply, sizeof(reply) - 1)) <= 0) {
                        fprintf(stderr, "ctl-sock: no reply from %s\n", argv[1]);
                        return 1;
                }
                reply[n] = '\0';
                fputs(reply, stdout);
        }
        return 0;
}
