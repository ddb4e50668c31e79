/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cgroup.h"

/*
 * The files systemd writes for SetUnitProperties(runtime=true): one drop-in
 * per property, "<dir>/<unit>.d/50-<Property>.conf", rewritten whole on
 * every call, in /run/systemd/system.control for a unit of a unit file and
 * in /run/systemd/transient for a transient one (systemd 252's
 * unit_write_setting(); seen in a Debian 12 guest). They outlive the call:
 * after the restoring call one still holds the original value and masks a
 * later change of the unit's configuration (an /etc drop-in and a
 * daemon-reload) until reboot. So each hold records, before its first
 * raise, what every such file was (absent, or its exact bytes, in an
 * XattrValue: the same three states), and puts exactly that back once
 * systemd has the original values again.
 *
 * Only below those directories, for a name that is a unit name (no '/',
 * no leading '.'), never through a symbolic link.
 */

typedef enum UnitDropInProperty {
        DROPIN_MEMORY_MIN,
        DROPIN_MEMORY_LOW,
        DROPIN_MANAGED_OOM_PREFERENCE,
        _DROPIN_PROPERTY_MAX,
} UnitDropInProperty;

#define UNIT_DROPIN_DIRS 2 /* system.control, transient */
#define UNIT_DROPINS (UNIT_DROPIN_DIRS * _DROPIN_PROPERTY_MAX)

/* The directories systemd 252 writes them to, for the system manager. */
extern const char *const unit_dropin_system_dirs[UNIT_DROPIN_DIRS];

/* "MemoryMin", "MemoryLow", "ManagedOOMPreference". */
const char *unit_dropin_property_name(UnitDropInProperty p);

/* Pure: at most 255 bytes of a unit name's characters (systemd.unit(5)), a type we hold, no leading '.'. */
bool unit_dropin_unit_is_valid(const char *unit);

/* The slot of (directory index, property) in a UNIT_DROPINS array. */
static inline size_t unit_dropin_slot(size_t dir, UnitDropInProperty p) {
        return dir * _DROPIN_PROPERTY_MAX + (size_t) p;
}

/*
 * What each of unit's files in dirs is now: absent (state 0, also when a
 * directory is missing) or its bytes (state 1, at most XATTR_VALUE_MAX).
 * -EINVAL for a bad unit name, -ELOOP for a symbolic link, -EBADFD for
 * what is not a regular file, -EFBIG for one too large; ret untouched then.
 */
int unit_dropins_read(const char *const dirs[UNIT_DROPIN_DIRS], const char *unit, XattrValue ret[UNIT_DROPINS]);

/*
 * Puts back what original records for the properties in mask (bit 1 << p):
 * removes a file that was absent (and its <unit>.d once empty), rewrites one
 * that had other bytes (atomically, mode 0644), leaves one that is as
 * recorded, and every slot not recorded (state -1). The first error is
 * returned; the other files are still put back.
 */
int unit_dropins_restore(const char *const dirs[UNIT_DROPIN_DIRS], const char *unit,
                         const XattrValue original[UNIT_DROPINS], unsigned mask);

/* The mask of every property. */
#define UNIT_DROPIN_ALL ((1U << _DROPIN_PROPERTY_MAX) - 1)
