/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "bus-caller.h"
#include "manager.h"

/*
 * org.oomprotect.Trusted at /org/oomprotect: SetSelfProtection and
 * GetSelfProtection made on behalf of another process, for oomprotect-cuse
 * (/dev/oom_protect), which serves the 2006 module's ioctls to any process
 * and must not be that process's bus identity. Only root may call it (the
 * bus policy says so, and the daemon checks the sender's uid itself).
 *
 *   SetProtectionFor(h pidfd, u uid, b protect)
 *   GetProtectionFor(h pidfd) -> b protected
 *
 * The process is named by a pidfd, so it cannot be confused with a later
 * one of the same PID. It is authorized exactly as SetSelfProtection
 * authorizes a bus caller: uid as given (the ioctl's caller, from CUSE; it
 * must be one of the process's own uids), and the groups of that very
 * process, read from /proc/PID/status (Uid:, Gid: and Groups:) and trusted
 * only if the pidfd still refers to a running process afterwards.
 */
int bus_trusted_setup(Manager *m, sd_bus *bus);

/* The ids in a /proc/PID/status text: real, effective, saved, fs uid and gid; supplementary groups. */
typedef struct StatusIds {
        uid_t uid[4];
        gid_t gid[4];
        gid_t *groups; /* malloc'd */
        size_t n_groups;
} StatusIds;

/* Pure: parses "Uid:", "Gid:" and "Groups:" of a /proc/PID/status text. */
int trusted_parse_status(const char *text, StatusIds *ret);

/* The PID behind pidfd (-ESRCH gone, -EINVAL no pidfd; err says so). */
int trusted_pid_of(Manager *m, int pidfd, pid_t *ret, OpError *err);

/*
 * The process behind pidfd as SetSelfProtection would see it: uid as given
 * (it must be one of its uids), its groups from /proc/PID/status, read
 * race-free (the pidfd is checked alive afterwards). *ret owns the groups.
 */
int trusted_caller_from_pidfd(Manager *m, int pidfd, uid_t uid, BusCaller *ret, pid_t *ret_pid, OpError *err);
