/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/* Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured), serves org.oomprotect.Manager. */
int bus_setup(Manager *m);
void bus_done(Manager *m);

/*
 * For org.oomprotect.Trusted (bus-trusted.c): holds msg, checks that its
 * sender is root, then acts for the process behind pidfd (owned by msg) as
 * SetSelfProtection acts for its caller: mode 1 protect, 0 unprotect, -1
 * answer whether it is protected. The reply comes later; returns 1, or a
 * negative errno with error set.
 */
int bus_request_for(Manager *m, sd_bus_message *msg, int pidfd, uid_t uid, int mode, sd_bus_error *error);
