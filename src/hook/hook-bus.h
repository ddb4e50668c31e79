/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The hook's only conversation with oomprotectd, through liboomprotect (the
 * system bus, $DBUS_SYSTEM_BUS_ADDRESS honoured), each call bounded by
 * timeout_usec.
 *
 * Each returns 0, or a negative errno with a malloc'd sentence in
 * *ret_error: -EHOSTUNREACH when the daemon cannot be reached (no bus, nobody
 * owns the name, no answer in time), else the daemon's refusal.
 */

typedef struct HookProtectRequest {
        pid_t pid;
        const char *tag;
        bool has_memory_min, has_adj;
        uint64_t memory_min;
        int adj;
} HookProtectRequest;

/* ProtectWithOptions(pid, {InPlace: true, Tag, [MemoryMin], [OOMScoreAdjust]}). */
int hook_bus_protect(const HookProtectRequest *req, uint64_t timeout_usec, char **ret_error);

/* UnprotectTag(tag); *ret_count: how many protections ended. */
int hook_bus_unprotect_tag(const char *tag, uint64_t timeout_usec, unsigned *ret_count, char **ret_error);
