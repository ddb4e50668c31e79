/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What doctor reads of another OOM killer: earlyoom's command line as
 * /proc/PID/cmdline has it (arguments split at NUL bytes). Whatever it
 * finds must point into the arguments it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"

static bool points_into(const char *p, const char *buf, size_t size) {
        return !p || (p >= buf && p < buf + size + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *buf = malloc(size + 1), **argv;
        size_t n = 1;
        EarlyoomOptions o;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = '\0';
        for (size_t i = 0; i < size; i++)
                n += buf[i] == '\0';
        argv = calloc(n + 1, sizeof(char *));
        if (!argv) {
                free(buf);
                return 0;
        }
        n = 0;
        for (size_t i = 0; i <= size; i += strlen(buf + i) + 1)
                argv[n++] = buf + i;
        doctor_parse_earlyoom_argv(argv, &o);
        if (!points_into(o.prefer, buf, size) || !points_into(o.avoid, buf, size))
                abort();
        free(argv);
        free(buf);
        return 0;
}
