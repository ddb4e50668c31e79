/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A whole configuration file through libinih and every key's validation. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[] = "/tmp/oomprotect-fuzz-config.XXXXXX";
        Config c;
        int fd;

        log_set_max_level(-1); /* warnings are the expected outcome; keep the fuzzer quiet */
        fd = mkstemp(path);
        if (fd < 0)
                return 0;
        if (write(fd, data, size) == (ssize_t) size && config_init(&c) >= 0) {
                (void) config_load(&c, path, true, "/nonexistent-oomprotect-fuzz.d");
                config_done(&c);
        }
        close(fd);
        unlink(path);
        return 0;
}
