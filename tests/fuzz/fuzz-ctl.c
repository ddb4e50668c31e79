/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ctl grammar: one line through the parser, the same bytes through the streaming reader. */
#include <stddef.h>
#include <stdint.h>

#include "ctl-protocol.h"

static void on_line(const char *line, size_t len, bool too_long, void *userdata) {
        CtlCommand c;
        const char *reason;

        if (!too_long)
                (void) ctl_parse_line(line, len, &c, &reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static CtlReader reader;
        CtlCommand c;
        const char *reason;

        (void) ctl_parse_line((const char *) data, size, &c, &reason);
        reader = (CtlReader) {};
        ctl_reader_feed(&reader, (const char *) data, size, on_line, NULL);
        ctl_reader_flush(&reader, on_line, NULL);
        return 0;
}
