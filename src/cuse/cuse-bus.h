/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/*
 * oomprotect-cuse's side of org.oomprotect.Trusted (see
 * src/daemon/bus-trusted.h): the module's ioctls, asked of oomprotectd on
 * behalf of the process that made them. Every call waits at most
 * CUSE_BUS_TIMEOUT_USEC; the answers are the errno values the ioctl returns
 * (negative): 0, -EPERM (not allowed), -ESRCH (the caller is gone), -EINVAL
 * (a process that cannot be protected), -ENOSPC, -EUSERS (limits), -EIO
 * (oomprotectd is not running, does not answer, or failed).
 */

#define CUSE_BUS_TIMEOUT_USEC (5 * 1000 * 1000ULL)

typedef struct CuseBus {
        sd_bus *bus; /* connected on first use, again after it broke */
} CuseBus;

void cuse_bus_done(CuseBus *b);

/* Protect (or unprotect) the process pid, whose ioctl came with uid. */
int cuse_bus_set(CuseBus *b, pid_t pid, uid_t uid, bool protect);
/* *ret: whether pid is protected. */
int cuse_bus_get(CuseBus *b, pid_t pid, bool *ret);

/* Pure: the thread group ("Tgid:") in a /proc/TID/status text. */
int cuse_parse_tgid(const char *status, pid_t *ret);
/* The process the thread tid belongs to, from /proc/TID/status (procfd: /proc). */
int cuse_tid_to_pid(int procfd, pid_t tid, pid_t *ret);
