/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib-internal.h"
#include "oomprotect.h"
#include "oomprotect/protocol.h"

/* The last failure of this thread, for oomprotect_strerror(). */
static _Thread_local struct {
        int code;
        char message[512];
        char errno_text[128];
} last;

static const struct {
        const char *name;
        int code;
} error_table[] = {
        { OOMPROTECT_ERROR_NO_SUCH_PROCESS, -ESRCH },
        { OOMPROTECT_ERROR_NOT_PROTECTED, -ENOENT },
        { OOMPROTECT_ERROR_ALREADY_PROTECTED, -EEXIST },
        { OOMPROTECT_ERROR_OVER_BUDGET, -ENOSPC },
        { OOMPROTECT_ERROR_TOO_MANY, -EUSERS },
        { OOMPROTECT_ERROR_PERMISSION_DENIED, -EPERM },
        { OOMPROTECT_ERROR_INVALID_PROCESS, -EINVAL },
        { OOMPROTECT_ERROR_INVALID_ARGUMENT, -EINVAL },
        { OOMPROTECT_ERROR_BACKEND, -EIO },
        { OOMPROTECT_ERROR_NO_SUCH_UNIT, -ESRCH },
        { SD_BUS_ERROR_ACCESS_DENIED, -EACCES },
        { SD_BUS_ERROR_SERVICE_UNKNOWN, -ECONNREFUSED },
        { SD_BUS_ERROR_NAME_HAS_NO_OWNER, -ECONNREFUSED },
        { SD_BUS_ERROR_NO_SERVER, -ECONNREFUSED },
        { SD_BUS_ERROR_DISCONNECTED, -ECONNREFUSED },
        { SD_BUS_ERROR_NO_REPLY, -ETIMEDOUT },
        { SD_BUS_ERROR_TIMEOUT, -ETIMEDOUT },
        { SD_BUS_ERROR_UNKNOWN_METHOD, -EPROTO },
        { SD_BUS_ERROR_UNKNOWN_OBJECT, -EPROTO },
        { SD_BUS_ERROR_UNKNOWN_INTERFACE, -EPROTO },
        { SD_BUS_ERROR_INVALID_ARGS, -EPROTO },
};

int lib_error_set(int code, const char *fmt, ...) {
        va_list ap;

        last.code = code;
        va_start(ap, fmt);
        vsnprintf(last.message, sizeof(last.message), fmt, ap);
        va_end(ap);
        return code;
}

void lib_error_reset(void) {
        last.code = 0;
        last.message[0] = '\0';
}

/* A connection that failed or broke on the way: the daemon cannot be reached. */
static int local_code(int r) {
        if (r == -ECONNRESET || r == -ENOTCONN || r == -ENOENT || r == -ECONNREFUSED || r == -EPIPE)
                return -ECONNREFUSED;
        return r;
}

/*
 * The bus could not start oomprotectd: the service is disabled (its
 * activation alias dbus-org.oomprotect.service is gone), masked, or failed
 * to start. dbus-daemon passes on systemd's error or its own Spawn.* one.
 */
static bool activation_failed(const sd_bus_error *error) {
        static const char *const prefixes[] = { "org.freedesktop.DBus.Error.Spawn.", "org.freedesktop.systemd1." };

        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
                if (strncmp(error->name, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

int lib_error_from_bus(const sd_bus_error *error, int r) {
        if (!error || !error->name)
                return lib_error_set(local_code(r), "Talking to oomprotectd failed: %s.", strerror(-r));
        if (activation_failed(error))
                return lib_error_set(-ECONNREFUSED, "oomprotectd is not running and the bus could not start it "
                                                    "(is oomprotectd.service disabled or masked?): %s",
                                     error->message ? error->message : error->name);
        for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
                if (!sd_bus_error_has_name(error, error_table[i].name))
                        continue;
                if (error_table[i].code == -ECONNREFUSED)
                        return lib_error_set(-ECONNREFUSED, "oomprotectd is not running (no " OOMPROTECT_BUS_NAME
                                                            " on the system bus).");
                if (error_table[i].code == -ETIMEDOUT)
                        return lib_error_set(-ETIMEDOUT, "oomprotectd did not answer in time (is it stuck?).");
                return lib_error_set(error_table[i].code, "%s", error->message ? error->message : error->name);
        }
        return lib_error_set(r < 0 ? local_code(r) : -EIO, "%s", error->message ? error->message : error->name);
}

int lib_bus_open(sd_bus **ret) {
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        int r;

        r = sd_bus_open_system(ret);
        if (r < 0)
                return lib_error_set(local_code(r), "Cannot connect to the system bus at %s: %s.",
                                     address ? address : "its default address", strerror(-r));
        return 0;
}

int lib_message_new(sd_bus *bus, const char *method, sd_bus_message **ret) {
        int r;

        r = sd_bus_message_new_method_call(bus, ret, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, method);
        if (r < 0)
                return lib_error_set(r, "Cannot build the %s call: %s.", method, strerror(-r));
        return 0;
}

/* oomprotect_set_timeout(): per thread, as the last error is; 0 is sd-bus's default (25 s). */
static _Thread_local uint64_t call_timeout_usec;

LIB_EXPORT void oomprotect_set_timeout(uint64_t usec) {
        call_timeout_usec = usec;
}

int lib_call(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(bus, m, call_timeout_usec, &error, ret);
        if (r < 0)
                r = lib_error_from_bus(&error, r);
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
}

int lib_call_method(const char *method, sd_bus_message **ret, const char *types, ...) {
        lib_cleanup_(lib_message_unrefp) sd_bus_message *m = NULL;
        lib_cleanup_(lib_bus_closep) sd_bus *bus = NULL;
        va_list ap;
        int r;

        r = lib_bus_open(&bus);
        if (r < 0)
                return r;
        r = lib_message_new(bus, method, &m);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return lib_error_set(r, "Cannot build the %s call: %s.", method, strerror(-r));
        }
        return lib_call(bus, m, ret);
}

LIB_EXPORT const char *oomprotect_strerror(int error) {
        if (error < 0 && error == last.code && last.message[0])
                return last.message;
        return strerror_r(error < 0 ? -error : error, last.errno_text, sizeof(last.errno_text));
}
