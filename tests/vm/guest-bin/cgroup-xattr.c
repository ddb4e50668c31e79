/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest has no getfattr (attr is not in its image): this reads and
 * writes one extended attribute, for scenario 72-doctor to check the marks
 * oomprotectd puts on cgroups independently of doctor.
 *
 *   cgroup-xattr get PATH NAME         prints the value in hex, or "absent"
 *   cgroup-xattr set PATH NAME HEX     sets it to those bytes
 *
 * Exit 0, or 1 with a line on stderr. Built on the host (tests/vm/CMakeLists.txt).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static int get(const char *path, const char *name) {
        unsigned char value[4096];
        ssize_t n = getxattr(path, name, value, sizeof(value));

        if (n < 0 && errno == ENODATA) {
                puts("absent");
                return 0;
        }
        if (n < 0) {
                fprintf(stderr, "cgroup-xattr: getxattr %s %s: %s\n", path, name, strerror(errno));
                return 1;
        }
        for (ssize_t i = 0; i < n; i++)
                printf("%02x", value[i]);
        putchar('\n');
        return 0;
}

static int set(const char *path, const char *name, const char *hex) {
        unsigned char value[4096];
        size_t len = strlen(hex);

        if (len % 2 != 0 || len / 2 > sizeof(value)) {
                fprintf(stderr, "cgroup-xattr: %s is not an even number of hex digits (at most 8192)\n", hex);
                return 1;
        }
        for (size_t i = 0; i < len / 2; i++) {
                unsigned int byte;
                if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
                        fprintf(stderr, "cgroup-xattr: %s is not hex\n", hex);
                        return 1;
                }
                value[i] = (unsigned char) byte;
        }
        if (setxattr(path, name, value, len / 2, 0) < 0) {
                fprintf(stderr, "cgroup-xattr: setxattr %s %s: %s\n", path, name, strerror(errno));
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        if (argc == 4 && strcmp(argv[1], "get") == 0)
                return get(argv[2], argv[3]);
        if (argc == 5 && strcmp(argv[1], "set") == 0)
                return set(argv[2], argv[3], argv[4]);
        fprintf(stderr, "usage: cgroup-xattr get PATH NAME | cgroup-xattr set PATH NAME HEX\n");
        return 1;
}
