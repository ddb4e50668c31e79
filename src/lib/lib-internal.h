/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * liboomprotect's own plumbing: one bus connection per call, the mapping of
 * the daemon's named errors to errno, and the thread's last error. The
 * library links only libsystemd, so it carries its few cleanup helpers
 * itself instead of the daemon's (GPL) src/shared/macro.h.
 */
#include <stdarg.h>
#include <systemd/sd-bus.h>

#define LIB_EXPORT __attribute__((visibility("default")))
#define lib_cleanup_(f) __attribute__((cleanup(f)))
#define lib_printf_(a, b) __attribute__((format(printf, a, b)))

static inline void lib_bus_closep(sd_bus **b) {
        sd_bus_flush_close_unref(*b);
}
static inline void lib_message_unrefp(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}

/* Records code and the sentence for oomprotect_strerror(); returns code (a negative errno). */
int lib_error_set(int code, const char *fmt, ...) lib_printf_(2, 3);
/* Forgets the thread's last error: at the start of every public call. */
void lib_error_reset(void);
/* Records what a failed bus call (r < 0, error possibly filled) means; returns the negative errno. */
int lib_error_from_bus(const sd_bus_error *error, int r);

/* Connects to the system bus; on failure the error is recorded. */
int lib_bus_open(sd_bus **ret);
/* A new method call to org.oomprotect.Manager on bus. */
int lib_message_new(sd_bus *bus, const char *method, sd_bus_message **ret);
/* Sends m, waits for the reply (ret may be NULL); a failure is recorded and mapped. */
int lib_call(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret);
/* Connects, calls method with the arguments in types/..., returns the reply in *ret (may be NULL). */
int lib_call_method(const char *method, sd_bus_message **ret, const char *types, ...);
