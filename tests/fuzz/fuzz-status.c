/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/PID/status as org.oomprotect.Trusted reads it for the ids of an ioctl's caller. */
#include <stdlib.h>
#include <string.h>

#include "bus-trusted.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        StatusIds ids = {};

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if (trusted_parse_status(s, &ids) == 0) {
                if (!ids.groups)
                        abort();
                free(ids.groups);
        }
        free(s);
        return 0;
}
