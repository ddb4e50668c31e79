/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "oomprotect/protocol.h"
#include "op-error.h"

int op_error_set(OpError *e, int code, const char *name, const char *fmt, ...) {
        va_list ap;

        if (!e || e->code != 0)
                return code;
        e->code = code;
        e->name = name ? name : op_error_name_from_errno(code);
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return code;
}

const char *op_error_name_from_errno(int code) {
        switch (abs(code)) {
        case ESRCH:
                return OOMPROTECT_ERROR_NO_SUCH_PROCESS;
        case EPERM:
        case EACCES:
                return OOMPROTECT_ERROR_PERMISSION_DENIED;
        case EINVAL:
        case ERANGE:
                return OOMPROTECT_ERROR_INVALID_ARGUMENT;
        default:
                return OOMPROTECT_ERROR_BACKEND;
        }
}
