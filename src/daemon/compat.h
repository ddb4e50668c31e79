/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

#include <stddef.h>

#include "op-error.h"

/* Serves CompatDirectory=: the ctl FIFO, ctl.sock, status and usage. */
int compat_setup(Manager *m);
void compat_done(Manager *m);

/*
 * AdoptSockets (oomprotectd-sockets@.service, an instance per socket unit,
 * hands over what oomprotectd.socket or oomprotectd-ctl.socket listens
 * on): each of fds must be the FIFO at CompatDirectory=/ctl (that inode, open for
 * reading) or a listening AF_UNIX stream socket bound to
 * CompatDirectory=/ctl.sock. One that is served already is recognised and
 * skipped. Any other descriptor refuses the whole call (err says which and
 * why) and changes nothing. The fds stay the caller's: what is served is a
 * duplicate. Returns how many were newly taken.
 */
int compat_adopt(Manager *m, const int *fds, size_t n, OpError *err);

/*
 * Under the service manager: asks it to run each socket unit's hand-over
 * (oomprotectd-sockets@oomprotectd.service and
 * oomprotectd-sockets@oomprotectd-ctl.service) again if it ran for an
 * earlier oomprotectd (TryRestartUnit), so that a daemon started while one
 * is still active (the earlier one crashed, and nothing restarted it
 * through PartOf=) gets the socket units' listeners too.
 * Needs the bus; asynchronous, failures are logged at debug level.
 */
void compat_ask_for_sockets(Manager *m);
