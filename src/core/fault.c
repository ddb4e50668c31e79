/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

void fault_point(const char *name) {
        /* Read every time: a forked test child sets its own value. getenv is a short scan. */
        const char *armed = getenv("OOMPROTECT_FAULT");

        if (armed && strcmp(armed, name) == 0)
                (void) raise(SIGKILL);
}
