/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/* Serves CompatDirectory=: the ctl FIFO, ctl.sock, status and usage. */
int compat_setup(Manager *m);
void compat_done(Manager *m);
