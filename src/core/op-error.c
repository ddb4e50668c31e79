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
        /*
         * Messages quote process names and cgroup paths, which may hold any
         * byte: D-Bus refuses an error that is not UTF-8 (the caller would
         * get no reply at all) and a control character would forge lines of
         * a ctl.sock reply or a log. Keep printable ASCII only.
         */
        for (char *c = e->message; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                        *c = '?';
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
