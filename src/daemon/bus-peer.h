/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/*
 * SetSelfProtection acts on "the caller's own process", which the bus
 * names by the PID that connected (SO_PEERCRED at connect time; dbus-daemon
 * 1.14 gives no ProcessFD and no start time). A connection can outlive that
 * process (its socket inherited or passed on), and the PID can then name a
 * newcomer. So before acting on the PID the daemon proves as much as it
 * can, with a pidfd held across the checks:
 *   1. pidfd_open(PID): the process that has the PID now;
 *   2. it holds, among its descriptors, a socket connected to this bus (the
 *      peer of that socket carries the bus's listening address:
 *      bus_peer_holds_bus_socket()); one that holds none is refused;
 *   3. the bus, asked again after 1 and 2, still has the caller's connection
 *      with the same PID and uid (a caller that has gone away is refused);
 *   4. the pidfd still refers to a live process after all that.
 * Step 2 needs to read the process's /proc/PID/fd (ptrace-read access: the
 * same uid, or CAP_SYS_PTRACE) and sock_diag in the bus's network
 * namespace. The shipped unit grants both (CAP_SYS_PTRACE, AF_NETLINK, no
 * PrivateNetwork=; VM scenario 10 checks that a newcomer at an exited
 * caller's PID is refused). Where a stricter sandbox withholds them it
 * cannot be made (-errno), and 1, 3 and 4 are what is proven: what a reused
 * PID can then get is a process the engine accepts for the caller anyway
 * (for a non-root caller one whose every uid is its own and which is
 * dumpable, which it may protect with Protect(pid) too).
 * Never proven: that the socket found in 2 is the caller's very connection
 * rather than another connection of the same process to the same bus (the
 * kernel shows the socket, not its unique name).
 */

/*
 * 1 when process pid (proc relative to procfd) has an fd that is a Unix
 * socket whose peer carries the address busfd's peer has (the bus's
 * listening socket), 0 when none does, -errno when it cannot be told (its
 * /proc/PID/fd unreadable, no sock_diag, or -EXDEV: the process is in
 * another network namespace than the daemon, whose sockets sock_diag does
 * not show).
 */
int bus_peer_holds_bus_socket(int procfd, pid_t pid, int busfd);
