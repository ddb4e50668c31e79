/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ctl grammar: one line through the parser, the same bytes through the
 * streaming reader; each line also as the compat layer handles it (quoted
 * for the log, answered as a ctl.sock reply, the input itself as a reason).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-protocol.h"

static void on_line(const char *line, size_t len, bool too_long, void *userdata) {
        const char *reason = CTL_REASON_TOO_LONG;
        char reply[CTL_REPLY_MAX];
        CtlCommand c;
        int r;

        r = too_long ? -E2BIG : ctl_parse_line(line, len, &c, &reason);
        free(ctl_escape_line(line, len, 64));
        (void) ctl_format_reply(r, r < 0 ? reason : NULL, reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static CtlReader reader;
        char reply[CTL_REPLY_MAX];
        CtlCommand c;
        const char *reason;
        char *s;

        (void) ctl_parse_line((const char *) data, size, &c, &reason);
        reader = (CtlReader) {};
        ctl_reader_feed(&reader, (const char *) data, size, on_line, NULL);
        ctl_reader_flush(&reader, on_line, NULL);

        s = strndup((const char *) data, size);
        if (s)
                (void) ctl_format_reply(-EINVAL, s, reply);
        free(s);
        return 0;
}
