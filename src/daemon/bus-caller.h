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
 * One asynchronous GetConnectionCredentials call to the bus driver per
 * method call: the loop never waits for the bus. (sd_bus_query_sender_creds()
 * would make the same call synchronously on dbus-daemon, and sd-bus 252 does
 * not even parse its "UnixGroupIDs" entry.) dbus-daemon 1.14 answers with
 * UnixUserID (the effective uid), ProcessID and UnixGroupIDs: the
 * connecting process's primary and supplementary gids (from SO_PEERGROUPS;
 * dbus-daemon itself falls back to the user database on kernels without
 * it). Only where the bus reports no UnixGroupIDs at all (another message
 * bus): the user database, the uid's user's primary group and
 * getgrouplist(). That may grant a group the process has dropped, never one
 * its user does not have. Groups are looked up for non-root callers of
 * writing methods only.
 */
typedef struct BusCaller {
        Caller auth; /* uid and groups, for auth_check_modify(); auth.groups points into groups */
        pid_t pid;   /* the pid that connected to the bus */
        gid_t *groups;
} BusCaller;

void bus_caller_done(BusCaller *c);

/*
 * The caller, or why it is unknown: error is set (for the client) when c is
 * NULL. Both are the callee's, valid during the call only.
 */
typedef void (*BusCallerDone)(const BusCaller *c, const sd_bus_error *error, void *userdata);

/*
 * Asks the bus who sent m; done runs later from the loop, never before this
 * returns. Unreferencing *ret_slot before then cancels the query (done is
 * not called). Groups are looked up only when with_groups and the caller is
 * not root (root needs none). Returns a negative errno, with error set for
 * the client, when the query cannot be sent.
 */
int bus_caller_query(sd_bus_message *m, bool with_groups, BusCallerDone done, void *userdata,
                     sd_bus_slot **ret_slot, sd_bus_error *error);
