/* SPDX-License-Identifier: GPL-2.0-or-later */
/* org.oomprotect.Trusted: see bus-trusted.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bus-caller.h"
#include "bus-trusted.h"
#include "bus.h"
#include "fileio.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "proc.h"

#define STATUS_FILE_MAX (64 * 1024)

/* The numbers after key on its line of text ("Groups:\t4 24 27\n"); at most max of them. */
static int parse_id_line(const char *text, const char *key, gid_t *ids, size_t max, size_t *ret_n) {
        const char *p = text;
        size_t n = 0, klen = strlen(key);

        while (p && strncmp(p, key, klen) != 0) {
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        if (!p)
                return -EBADMSG;
        for (p += klen; *p && *p != '\n';) {
                char *end;
                unsigned long v;

                p += strspn(p, " \t");
                if (!*p || *p == '\n')
                        break;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (end == p || errno != 0 || v >= (gid_t) -1 || n >= max)
                        return -EBADMSG;
                ids[n++] = (gid_t) v;
                p = end;
        }
        *ret_n = n;
        return 0;
}

int trusted_parse_status(const char *text, StatusIds *ret) {
        StatusIds ids = {};
        size_t n;
        int r;

        _Static_assert(sizeof(uid_t) == sizeof(gid_t), "uids and gids are parsed alike");
        r = parse_id_line(text, "Uid:", (gid_t *) ids.uid, 4, &n);
        if (r < 0 || n != 4)
                return -EBADMSG;
        r = parse_id_line(text, "Gid:", ids.gid, 4, &n);
        if (r < 0 || n != 4)
                return -EBADMSG;
        ids.groups = malloc(NGROUPS_MAX * sizeof(gid_t));
        if (!ids.groups)
                return -ENOMEM;
        r = parse_id_line(text, "Groups:", ids.groups, NGROUPS_MAX, &ids.n_groups);
        if (r < 0) {
                free(ids.groups);
                return r;
        }
        *ret = ids;
        return 0;
}

static bool is_uid_of(const StatusIds *ids, uid_t uid) {
        for (size_t i = 0; i < ELEMENTSOF(ids->uid); i++)
                if (ids->uid[i] == uid)
                        return true;
        return false;
}

int trusted_pid_of(Manager *m, int pidfd, pid_t *ret, OpError *err) {
        int r = proc_pidfd_get_pid(m->engine->procfd, pidfd, ret);

        if (r == -ESRCH)
                return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "The process has exited.");
        if (r < 0)
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT, "That is not a pidfd.");
        return 0;
}

int trusted_caller_from_pidfd(Manager *m, int pidfd, uid_t uid, BusCaller *ret, pid_t *ret_pid, OpError *err) {
        _cleanup_free_ char *text = NULL;
        StatusIds ids = {};
        char path[64];
        pid_t pid;
        int r;

        r = trusted_pid_of(m, pidfd, &pid, err);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "%d/status", (int) pid);
        r = read_full_file_at(m->engine->procfd, path, STATUS_FILE_MAX, &text, NULL);
        if (r >= 0)
                r = trusted_parse_status(text, &ids);
        /* Checked after reading: if it still runs, the text was that process's and no later one's. */
        if (!proc_pidfd_alive(pidfd)) {
                free(ids.groups);
                return op_error_set(err, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "PID %d has exited.", (int) pid);
        }
        if (r < 0)
                return op_error_set(err, r, OOMPROTECT_ERROR_BACKEND, "Cannot read the ids of PID %d: %s.", (int) pid,
                                    strerror(-r));
        if (!is_uid_of(&ids, uid)) {
                free(ids.groups);
                return op_error_set(err, -EPERM, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                    "uid %u is not one of the uids of PID %d.", (unsigned) uid, (int) pid);
        }
        *ret = (BusCaller) { .auth = { .uid = uid, .gid = ids.gid[1], .groups = ids.groups, .n_groups = ids.n_groups },
                             .pid = pid, .groups = ids.groups };
        *ret_pid = pid;
        return 0;
}

static int method_set_protection_for(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint32_t uid;
        int pidfd, protect, r;

        r = sd_bus_message_read(msg, "hub", &pidfd, &uid, &protect);
        if (r < 0)
                return r;
        return bus_request_for(userdata, msg, pidfd, (uid_t) uid, protect ? 1 : 0, error);
}

static int method_get_protection_for(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int pidfd, r;

        r = sd_bus_message_read(msg, "h", &pidfd);
        if (r < 0)
                return r;
        return bus_request_for(userdata, msg, pidfd, 0, -1, error);
}

/* UNPRIVILEGED: sd-bus's own check wants capabilities dbus-daemon does not report; check_sender_is_root() is the gate. */
static const sd_bus_vtable trusted_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("SetProtectionFor", "hub", SD_BUS_PARAM(pidfd) SD_BUS_PARAM(uid) SD_BUS_PARAM(protect),
                                 "", , method_set_protection_for, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetProtectionFor", "h", SD_BUS_PARAM(pidfd), "b", SD_BUS_PARAM(protected),
                                 method_get_protection_for, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_trusted_setup(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, OOMPROTECT_OBJECT_PATH, OOMPROTECT_TRUSTED_INTERFACE, trusted_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register " OOMPROTECT_TRUSTED_INTERFACE ": %m");
        return 0;
}
