/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sizes, PIDs and numbers as administrators type them. */
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        uint64_t v;
        pid_t pid;
        int i;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if (parse_size(s, 8ULL << 30, &v) == 0 && strchr(s, '%') && v > 8ULL << 30)
                abort(); /* a percentage never exceeds the RAM it is of */
        (void) parse_u64_base0(s, &v);
        if (parse_pid(s, &pid) == 0 && (pid <= 0 || pid > OOMPROTECT_PID_MAX_LIMIT))
                abort();
        if (parse_int_range(s, -1000, 1000, &i) == 0 && (i < -1000 || i > 1000))
                abort();
        i = parse_boolean(s);
        if (i != 0 && i != 1 && i >= 0)
                abort(); /* true, false, or an error */
        free(s);
        return 0;
}
