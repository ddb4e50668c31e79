/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "auth.h"
#include "macro.h"

/*
 * Who sent a D-Bus method call, taken from the bus alone: the message bus's
 * record of the sender's connection, which dbus-daemon filled from the
 * kernel (SO_PEERCRED, SO_PEERGROUPS) when the client connected. Nothing is
 * read from /proc ("augmented" credentials): a client could change those
 * between connecting and calling, or exit and have its PID reused.
 *
 * What dbus-daemon 1.14 + sd-bus 252 deliver (measured on Debian 12):
 * sd_bus_query_sender_creds() gives the effective uid and the pid, and no
 * gid and no supplementary groups, because sd-bus 252 does not parse the
 * "UnixGroupIDs" entry of GetConnectionCredentials. dbus-daemon does send
 * it: the connecting process's primary and supplementary gids (from
 * SO_PEERGROUPS; dbus-daemon itself falls back to the user database on
 * kernels without it). So the groups are taken, in this order, from:
 *   1. sd-bus, where a later version delivers SD_BUS_CREDS_SUPPLEMENTARY_GIDS;
 *   2. a GetConnectionCredentials call of our own to the bus driver;
 *   3. only where the bus reports no UnixGroupIDs at all (another message
 *      bus): the user database, the uid's user's primary group and
 *      getgrouplist(). That may grant a group the process has dropped,
 *      never one its user does not have.
 * Groups are looked up for non-root callers of writing methods only.
 */
typedef struct BusCaller {
        Caller auth; /* uid and groups, for auth_check_modify(); auth.groups points into groups */
        pid_t pid;   /* the pid that connected to the bus */
        gid_t *groups;
} BusCaller;

void bus_caller_done(BusCaller *c);

/*
 * Fills ret from the sender of m. Groups are looked up only when
 * with_groups and the caller is not root (root needs none). On failure the
 * error is set for the client and a negative errno returned.
 */
int bus_caller_get(sd_bus_message *m, bool with_groups, BusCaller *ret, sd_bus_error *error);
