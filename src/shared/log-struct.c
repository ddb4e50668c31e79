/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log-struct.h"
#include "log.h"

int journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino) {
        unsigned long long d, i;
        int n = 0;

        if (!env || sscanf(env, "%llu:%llu%n", &d, &i, &n) != 2 || env[n] != '\0')
                return 0;
        return d == dev && i == ino;
}

/* Once: is stderr the journal? A daemon's stderr does not change under it. */
static int stderr_is_journal(void) {
        static int cached = -1;
        struct stat st;

        if (cached < 0)
                cached = fstat(STDERR_FILENO, &st) >= 0 &&
                         journal_stream_matches(getenv("JOURNAL_STREAM"), (unsigned long long) st.st_dev,
                                                (unsigned long long) st.st_ino);
        return cached;
}

int log_struct_internal(int level, int error, const char *message_id, pid_t pid, const char *unit, const char *fmt,
                        ...) {
        char message[2048];
        va_list ap;
        int r;

        if (level > log_get_max_level())
                return -abs(error);
        va_start(ap, fmt);
        errno = abs(error);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        if (!stderr_is_journal())
                return log_internal(level, error, "%s", message);
        r = sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", level, "MESSAGE_ID=%s", message_id,
                            "OOMPROTECT_PID=%d", (int) pid, "OOMPROTECT_UNIT=%s", unit ? unit : "",
                            "SYSLOG_IDENTIFIER=%s", program_invocation_short_name, NULL);
        if (r < 0) /* journald gone: the line still goes out */
                return log_internal(level, error, "%s", message);
        return -abs(error);
}
