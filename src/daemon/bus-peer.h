/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/*
 * SetSelfProtection and GetSelfProtection act on "the caller's own
 * process", which the bus names by the PID that connected (SO_PEERCRED at
 * connect time; dbus-daemon 1.14 gives no ProcessFD and no start time). A
 * connection can outlive that process (its socket inherited or passed on),
 * and the PID can then name a newcomer. So before acting on the PID the
 * daemon proves, with a pidfd held across the checks:
 *   1. pidfd_open(PID): the process that has the PID now;
 *   2. it holds, among its descriptors, a socket connected to this bus (the
 *      peer of that socket carries the bus's listening address:
 *      bus_peer_holds_bus_socket());
 *   3. the bus, asked again after 1 and 2, still has the caller's connection
 *      with the same PID and uid (a caller that has gone away is refused);
 *   4. the pidfd still refers to a live process after all that.
 * What remains unproven: that the socket found in 2 is the caller's very
 * connection rather than another connection of the same process to the same
 * bus (the kernel shows the socket, not its unique name); such a process may
 * be protected by its own uid anyway (Protect(pid) is authorized alike).
 */

/*
 * 1 when process pid (proc relative to procfd) has an fd that is a Unix
 * socket whose peer carries the address busfd's peer has (the bus's
 * listening socket), 0 when none does, -errno when it cannot be told.
 */
int bus_peer_holds_bus_socket(int procfd, pid_t pid, int busfd);
