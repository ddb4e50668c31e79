/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A program written for the 2006 module, for scenario 75-cuse-device: its
 * start is the seed's "Usage via a c prog" snippet compiled as written (the
 * #define, the variables and the calls verbatim), then it takes commands on
 * stdin so the scenario can look at it in between. One line out per line in:
 *
 *   (at start)  snippet pid=PID fd=FD|-1 errno=E oom_protected=N
 *   get         get rc=R errno=E value=V     OOMGETPROTECTCMD (the module's own #define)
 *   set N       set rc=R errno=E             OOMSETPROTECTCMD with N
 *   bad         bad rc=R errno=E             an ioctl number the module did not have
 *   read        read rc=R errno=E
 *   write       write rc=R errno=E
 *
 * Built on the host (tests/vm/CMakeLists.txt) and copied into the guest: the guest has no compiler.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the seed, verbatim ---- */
#include <sys/ioctl.h>

#define OOMSETPROTECTCMD _IOWR('O', 1, int)

static int snippet_errno;

static int seed_snippet(void) {
int oom_protection = 1, oom_protected = 1, fd;

if ((fd = open("/dev/oom_protect", 0)) >= 0) {
if (ioctl(fd, OOMSETPROTECTCMD, &oom_protection) == 0)
oom_protected = 1;

close(fd);
}
        snippet_errno = fd < 0 ? errno : 0;
        printf("snippet pid=%d fd=%d errno=%s oom_protected=%d\n", (int) getpid(), fd,
               snippet_errno ? strerrorname_np(snippet_errno) : "0", oom_protected);
        return 0;
}
/* ---- end of the seed ---- */

/* The module's GET, as issue 14 quotes it (the module's source spells 'o' OOM_GET_PROTECT_MAGIC). */
#define OOMGETPROTECTCMD _IOR('o', 2, int)

static void report(const char *what, int rc, int err, const char *extra) {
        printf("%s rc=%d errno=%s%s\n", what, rc, rc < 0 ? strerrorname_np(err) : "0", extra);
        fflush(stdout);
}

static void command(const char *line) {
        int fd = open("/dev/oom_protect", O_RDWR), mode = 0, rc, err;
        char extra[32] = "", buf[8] = "x";

        if (fd < 0) {
                report(line, -1, errno, " (open)");
                return;
        }
        if (strcmp(line, "get") == 0) {
                rc = ioctl(fd, OOMGETPROTECTCMD, &mode);
                snprintf(extra, sizeof(extra), " value=%d", mode);
        } else if (strncmp(line, "set ", 4) == 0) {
                mode = atoi(line + 4);
                rc = ioctl(fd, OOMSETPROTECTCMD, &mode);
                line = "set";
        } else if (strcmp(line, "bad") == 0)
                rc = ioctl(fd, _IOR('o', 3, int), &mode);
        else if (strcmp(line, "read") == 0)
                rc = (int) read(fd, buf, sizeof(buf));
        else if (strcmp(line, "write") == 0)
                rc = (int) write(fd, buf, 1);
        else
                rc = -1, errno = EBADRQC;
        err = errno;
        close(fd);
        report(line, rc < 0 ? -1 : rc, err, extra);
}

int main(void) {
        char line[64];

        setvbuf(stdout, NULL, _IOLBF, 0);
        seed_snippet();
        while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\n")] = '\0';
                if (strcmp(line, "quit") == 0)
                        break;
                command(line);
        }
        return 0;
}
