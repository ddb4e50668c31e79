/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "macro.h"

/*
 * Why an operation was refused, in three forms: a negative errno for code,
 * a D-Bus error name for clients, a sentence for people. The engine fills
 * it; each front end (D-Bus, ctl.sock, logs) picks the form it needs.
 */
typedef struct OpError {
        int code;         /* negative errno, 0 when unset */
        const char *name; /* OOMPROTECT_ERROR_* */
        char message[256];
} OpError;

/*
 * Sets e (if e is not NULL and not set yet) and returns code, so: return
 * op_error_set(e, -ESRCH, ...). Bytes outside printable ASCII in the message
 * become '?', so it is valid UTF-8 for D-Bus and one line for ctl.sock.
 */
int op_error_set(OpError *e, int code, const char *name, const char *fmt, ...) _printf_(4, 5);

/* The D-Bus error name for a negative errno the engine returned without a more specific one. */
const char *op_error_name_from_errno(int code);
