/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "compat.h"

/* PLACEHOLDER: replaced by the compat front end (issue 5). */
int compat_setup(Manager *m) {
        return 0;
}

void compat_done(Manager *m) {
}
