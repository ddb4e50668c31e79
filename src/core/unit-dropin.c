/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "hold.h"
#include "macro.h"
#include "unit-dropin.h"

const char *const unit_dropin_system_dirs[UNIT_DROPIN_DIRS] = {
        "/run/systemd/system.control",
        "/run/systemd/transient",
};

static const char *const property_names[_DROPIN_PROPERTY_MAX] = {
        [DROPIN_MEMORY_MIN] = "MemoryMin",
        [DROPIN_MEMORY_LOW] = "MemoryLow",
        [DROPIN_MANAGED_OOM_PREFERENCE] = "ManagedOOMPreference",
};

const char *unit_dropin_property_name(UnitDropInProperty p) {
        return (unsigned) p < _DROPIN_PROPERTY_MAX ? property_names[p] : NULL;
}

bool unit_dropin_unit_is_valid(const char *unit) {
        size_t n = unit ? strlen(unit) : 0;

        if (n == 0 || n > 255 || unit[0] == '.' || !unit_name_owns_cgroup(unit))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@", unit[i]))
                        return false;
        return true;
}

static void file_name(UnitDropInProperty p, char *buf, size_t size) {
        snprintf(buf, size, "50-%s.conf", property_names[p]);
}

/* dir/UNIT.d as a descriptor (and dir's in *ret_top); -ENOENT when either is missing. */
static int open_unit_dir(const char *dir, const char *unit, int *ret_top) {
        _cleanup_close_ int top = -EBADF;
        char name[300];
        int fd, r;

        r = open_private_directory(dir, &top, NULL);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s.d", unit);
        fd = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOTDIR)
                return -ELOOP; /* a link, or a file where the directory should be */
        if (fd < 0)
                return -errno;
        if (ret_top)
                *ret_top = TAKE_FD(top);
        return fd;
}

static int read_one(int dfd, UnitDropInProperty p, XattrValue *ret) {
        char name[64], *text = NULL;
        size_t len = 0;
        int r;

        file_name(p, name, sizeof(name));
        r = read_regular_file_at(dfd, name, XATTR_VALUE_MAX, &text, &len);
        if (r == -ENOENT) {
                *ret = (XattrValue) { .state = 0 };
                return 0;
        }
        if (r < 0)
                return r;
        *ret = (XattrValue) { .state = 1, .value = text, .size = len };
        return 0;
}

int unit_dropins_read(const char *const dirs[UNIT_DROPIN_DIRS], const char *unit, XattrValue ret[UNIT_DROPINS]) {
        XattrValue v[UNIT_DROPINS];
        int r = 0;

        if (!unit_dropin_unit_is_valid(unit))
                return -EINVAL;
        for (size_t i = 0; i < UNIT_DROPINS; i++)
                v[i] = (XattrValue) { .state = 0 };
        for (size_t d = 0; d < UNIT_DROPIN_DIRS && r >= 0; d++) {
                _cleanup_close_ int dfd = open_unit_dir(dirs[d], unit, NULL);
                if (dfd == -ENOENT)
                        continue; /* all absent */
                if (dfd < 0) {
                        r = dfd;
                        break;
                }
                for (UnitDropInProperty p = 0; p < _DROPIN_PROPERTY_MAX && r >= 0; p++)
                        r = read_one(dfd, p, &v[unit_dropin_slot(d, p)]);
        }
        if (r < 0) {
                for (size_t i = 0; i < UNIT_DROPINS; i++)
                        xattr_value_done(&v[i]);
                return r;
        }
        for (size_t i = 0; i < UNIT_DROPINS; i++) {
                xattr_value_done(&ret[i]);
                ret[i] = v[i];
        }
        return 0;
}

/* One file back to what it was; 0 when it is as recorded already. */
static int restore_one(const char *dir, const char *unit, UnitDropInProperty p, const XattrValue *want) {
        _cleanup_close_ int top = -EBADF, dfd = -EBADF;
        XattrValue now = { .state = -1 };
        char name[64], sub[300];
        bool same;

        file_name(p, name, sizeof(name));
        snprintf(sub, sizeof(sub), "%s.d", unit);
        dfd = open_unit_dir(dir, unit, &top);
        /*
         * No directory: absent, as it was; or removed since by someone
         * (systemctl revert UNIT), whose choice stays: the file systemd
         * wrote for the restoring call would be there otherwise.
         */
        if (dfd == -ENOENT)
                return 0;
        if (dfd < 0)
                return dfd;
        same = read_one(dfd, p, &now) >= 0 && xattr_value_equal(&now, want);
        xattr_value_done(&now);
        if (same)
                return 0;
        if (want->state == 1)
                return write_file_atomic_at(dfd, name, want->value, want->size, 0644);
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        /* The directory systemd made for it goes too, once nothing else is in it. */
        if (top >= 0 && unlinkat(top, sub, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY && errno != EEXIST &&
            errno != ENOENT)
                return -errno;
        return 0;
}

int unit_dropins_restore(const char *const dirs[UNIT_DROPIN_DIRS], const char *unit,
                         const XattrValue original[UNIT_DROPINS], unsigned mask) {
        int first = 0;

        if (!unit_dropin_unit_is_valid(unit))
                return -EINVAL;
        for (size_t d = 0; d < UNIT_DROPIN_DIRS; d++)
                for (UnitDropInProperty p = 0; p < _DROPIN_PROPERTY_MAX; p++) {
                        const XattrValue *want = &original[unit_dropin_slot(d, p)];
                        int r;
                        if (!(mask & (1U << p)) || want->state < 0 || want->state > 1)
                                continue;
                        r = restore_one(dirs[d], unit, p, want);
                        if (r < 0 && first == 0)
                                first = r;
                }
        return first;
}
