/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "oomprotect/protocol.h"

static void help(void) {
        printf("oomprotectd — keeps chosen processes alive when memory runs out\n\n"
               "Usage: oomprotectd [OPTIONS]\n\n"
               "  -h --help            Show this help and exit\n"
               "     --version         Show the version and exit\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("oomprotectd %s\n", OOMPROTECT_VERSION_STRING);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        return EXIT_SUCCESS;
}
