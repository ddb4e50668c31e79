/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cuse-bus.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"

static const struct {
        const char *name;
        int code;
} error_table[] = {
        { OOMPROTECT_ERROR_PERMISSION_DENIED, -EPERM },
        { SD_BUS_ERROR_ACCESS_DENIED, -EPERM },
        { OOMPROTECT_ERROR_NO_SUCH_PROCESS, -ESRCH },
        { OOMPROTECT_ERROR_INVALID_PROCESS, -EINVAL },
        { OOMPROTECT_ERROR_INVALID_ARGUMENT, -EINVAL },
        { OOMPROTECT_ERROR_OVER_BUDGET, -ENOSPC },
        { OOMPROTECT_ERROR_TOO_MANY, -EUSERS },
};

void cuse_bus_done(CuseBus *b) {
        b->bus = sd_bus_flush_close_unref(b->bus);
}

/* A failed call: the ioctl's errno, logged with the daemon's reason. */
static int map_error(const sd_bus_error *e, int r, const char *what, pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (sd_bus_error_has_name(e, error_table[i].name)) {
                        log_info("%s for PID %d refused: %s", what, (int) pid, strna(e->message));
                        return error_table[i].code;
                }
        log_warning("%s for PID %d failed: %s", what, (int) pid, e->name ? strna(e->message) : strerror(-r));
        return -EIO;
}

static int bus_get(CuseBus *b, sd_bus **ret) {
        int r;

        if (b->bus && sd_bus_is_open(b->bus) <= 0)
                cuse_bus_done(b);
        if (!b->bus) {
                r = sd_bus_open_system(&b->bus);
                if (r < 0) {
                        log_warning_errno(r, "Cannot connect to the system bus: %m");
                        return -EIO;
                }
                (void) sd_bus_set_description(b->bus, "oomprotect-cuse");
        }
        *ret = b->bus;
        return 0;
}

/* method on the Trusted interface with the pidfd of pid first, then types/... */
static int call_trusted(CuseBus *b, const char *method, pid_t pid, sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        sd_bus *bus;
        va_list ap;
        int r;

        if (pidfd < 0)
                return -ESRCH;
        r = bus_get(b, &bus);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_TRUSTED_INTERFACE, method);
        if (r >= 0)
                r = sd_bus_message_append(m, "h", pidfd);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return -EIO;
        r = sd_bus_call(bus, m, CUSE_BUS_TIMEOUT_USEC, &e, reply);
        if (r < 0)
                return map_error(&e, r, method, pid);
        return 0;
}

int cuse_bus_set(CuseBus *b, pid_t pid, uid_t uid, bool protect) {
        return call_trusted(b, "SetProtectionFor", pid, NULL, "ub", (uint32_t) uid, (int) protect);
}

int cuse_bus_get(CuseBus *b, pid_t pid, bool *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int yes, r;

        r = call_trusted(b, "GetProtectionFor", pid, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "b", &yes);
        if (r < 0)
                return -EIO;
        *ret = yes;
        return 0;
}

int cuse_parse_tgid(const char *status, pid_t *ret) {
        const char *p = strstr(status, "\nTgid:");

        if (!p)
                return -EBADMSG;
        p += strlen("\nTgid:");
        p += strspn(p, " \t");
        char buf[16];
        size_t n = strcspn(p, "\n");
        if (n == 0 || n >= sizeof(buf))
                return -EBADMSG;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return parse_pid(buf, ret);
}

int cuse_tid_to_pid(int procfd, pid_t tid, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        char path[32];
        int r;

        snprintf(path, sizeof(path), "%d/status", (int) tid);
        r = read_full_file_at(procfd, path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        return cuse_parse_tgid(text, ret);
}
