/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "hook-bus.h"
#include "macro.h"
#include "oomprotect/protocol.h"


static int fail(int r, char **ret_error, const char *fmt, ...) _printf_(3, 4);
static int fail(int r, char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}

static bool error_is_unreachable(const sd_bus_error *e, int r) {
        int k = e->name ? sd_bus_error_get_errno(e) : -r;

        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_NO_SERVER, SD_BUS_ERROR_NO_REPLY) ||
               k == ECONNRESET || k == ENOTCONN || k == ECONNREFUSED || k == ETIMEDOUT;
}

/* Sends m and waits for the reply; what: "protect PID 42", for the sentence. */
static int call(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, const char *what, sd_bus_message **ret_reply,
                char **ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(bus, m, timeout_usec, &e, ret_reply);
        if (r >= 0)
                return 0;
        if (error_is_unreachable(&e, r))
                return fail(-EHOSTUNREACH, ret_error, "cannot reach oomprotectd to %s: %s", what,
                            e.message ? e.message : strerror(-r));
        return fail(r, ret_error, "oomprotectd refused to %s: %s", what, e.message ? e.message : strerror(-r));
}

static int open_bus(sd_bus **ret, char **ret_error) {
        const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        int r;

        r = sd_bus_open_system(ret);
        if (r < 0)
                return fail(-EHOSTUNREACH, ret_error, "cannot reach oomprotectd: cannot connect to the system bus (%s): %s",
                            address ? address : "unix:path=/run/dbus/system_bus_socket", strerror(-r));
        return 0;
}

static int new_call(sd_bus *bus, const char *method, sd_bus_message **ret) {
        return sd_bus_message_new_method_call(bus, ret, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                              OOMPROTECT_MANAGER_INTERFACE, method);
}

static int append_options(sd_bus_message *m, const HookProtectRequest *req) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}{sv}", "InPlace", "b", 1, "Tag", "s", req->tag);
        if (r >= 0 && req->has_memory_min)
                r = sd_bus_message_append(m, "{sv}", "MemoryMin", "t", req->memory_min);
        if (r >= 0 && req->has_adj)
                r = sd_bus_message_append(m, "{sv}", "OOMScoreAdjust", "i", (int32_t) req->adj);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int hook_bus_protect(const HookProtectRequest *req, uint64_t timeout_usec, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char what[64];
        int r;

        snprintf(what, sizeof(what), "protect PID %d", (int) req->pid);
        r = open_bus(&bus, ret_error);
        if (r < 0)
                return r;
        r = new_call(bus, "ProtectWithOptions", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "u", (uint32_t) req->pid);
        if (r >= 0)
                r = append_options(m, req);
        if (r < 0)
                return fail(r, ret_error, "cannot build the call to %s: %s", what, strerror(-r));
        return call(bus, m, timeout_usec, what, NULL, ret_error);
}

int hook_bus_unprotect_tag(const char *tag, uint64_t timeout_usec, unsigned *ret_count, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        uint32_t n;
        int r;

        r = open_bus(&bus, ret_error);
        if (r < 0)
                return r;
        r = new_call(bus, "UnprotectTag", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", tag);
        if (r < 0)
                return fail(r, ret_error, "cannot build the call to UnprotectTag: %s", strerror(-r));
        r = call(bus, m, timeout_usec, "unprotect the container", &reply, ret_error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return fail(r, ret_error, "oomprotectd's answer to UnprotectTag is not a count: %s", strerror(-r));
        *ret_count = n;
        return 0;
}
