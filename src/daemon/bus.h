/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/* Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured), serves org.oomprotect.Manager. */
int bus_setup(Manager *m);
void bus_done(Manager *m);
