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
#include "fileio.h"
#include "log.h"
#include "oomprotect/protocol.h"
#include "proc.h"

#define TRUSTED_SOURCE "cuse"
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

/* The caller behind pidfd, as SetSelfProtection would see it; *ret_pid is its PID. */
static int caller_from_pidfd(Manager *m, int pidfd, uid_t uid, BusCaller *ret, pid_t *ret_pid, OpError *err) {
        _cleanup_free_ char *text = NULL;
        StatusIds ids = {};
        char path[64];
        pid_t pid;
        int r;

        r = proc_pidfd_get_pid(m->engine->procfd, pidfd, &pid);
        if (r == -ESRCH)
                return op_error_set(err, r, OOMPROTECT_ERROR_NO_SUCH_PROCESS, "The process has exited.");
        if (r < 0)
                return op_error_set(err, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT, "That is not a pidfd.");
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

static int reply_error(sd_bus_error *error, int r, const OpError *err) {
        if (err->name)
                return sd_bus_error_set(error, err->name, err->message);
        return sd_bus_error_setf(error, op_error_name_from_errno(r), "%s.", strerror(-r));
}

/* Only root, that is oomprotect-cuse; the bus policy says the same. */
static int check_sender_is_root(sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(bus_caller_done) BusCaller sender = {};
        int r;

        r = bus_caller_get(msg, false, &sender, error);
        if (r < 0)
                return r;
        if (sender.auth.uid != 0)
                return sd_bus_error_set(error, OOMPROTECT_ERROR_PERMISSION_DENIED,
                                        "Only root may act on behalf of another process.");
        return 0;
}

/*
 * The one call into the engine: SetSelfProtection's for the process behind
 * pidfd, owner as authorized. Unprotecting an unprotected process is a no-op.
 */
static int set_protection_and_reply(Manager *m, sd_bus_message *msg, int pidfd, pid_t pid, uid_t owner, bool protect,
                                    sd_bus_error *error) {
        _cleanup_(unprotect_report_done) UnprotectReport report = {};
        ProtectRequest req = { .pidfd = pidfd, .owner = owner, .source = TRUSTED_SOURCE };
        OpError err = {};
        Protection *p;
        int r = 0;

        if (protect)
                r = engine_protect(m->engine, &req, &p, &err);
        else if (engine_get(m->engine, pid))
                r = engine_unprotect(m->engine, pid, owner, "unprotected", &report, &err);
        if (r < 0)
                return reply_error(error, r, &err);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_set_protection_for(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_caller_done) BusCaller caller = {};
        Manager *m = userdata;
        OpError err = {};
        uint32_t uid;
        int pidfd, protect, r;
        uid_t owner;
        pid_t pid = 0;

        r = sd_bus_message_read(msg, "hub", &pidfd, &uid, &protect);
        if (r < 0)
                return r;
        r = check_sender_is_root(msg, error);
        if (r < 0)
                return r;
        r = caller_from_pidfd(m, pidfd, (uid_t) uid, &caller, &pid, &err);
        if (r >= 0)
                r = auth_check_modify(&caller.auth, auth_resolve_group(m->config.allow_group), &owner, &err);
        if (r < 0) {
                log_debug("Refused SetProtectionFor(PID %d, uid %" PRIu32 "): %s", (int) caller.pid, uid, err.message);
                return reply_error(error, r, &err);
        }
        log_debug("SetProtectionFor(PID %d, uid %" PRIu32 ", %s) authorized.", (int) pid, uid,
                  protect ? "true" : "false");
        return set_protection_and_reply(m, msg, pidfd, pid, owner, protect, error);
}

static int method_get_protection_for(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        OpError err = {};
        int pidfd, r;
        pid_t pid;

        r = sd_bus_message_read(msg, "h", &pidfd);
        if (r < 0)
                return r;
        r = check_sender_is_root(msg, error);
        if (r < 0)
                return r;
        r = proc_pidfd_get_pid(m->engine->procfd, pidfd, &pid);
        if (r < 0)
                return reply_error(error, r == -ESRCH ? -ESRCH : -EINVAL, &err);
        return sd_bus_reply_method_return(msg, "b", engine_get(m->engine, pid) != NULL && proc_pidfd_alive(pidfd));
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
