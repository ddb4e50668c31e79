/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "log.h"

static int max_level = LOG_INFO;
static bool with_prefix = true;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(bool on) {
        with_prefix = on;
}

int log_parse_level(const char *s) {
        static const char *const names[] = {
                "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        return -EINVAL;
}

int log_internal(int level, int error, const char *fmt, ...) {
        int saved = errno;
        char *text = NULL;
        va_list ap;

        error = abs(error);
        if (level > max_level)
                goto out;

        /* %m in fmt prints strerror(error), as in systemd's log functions. */
        errno = error;
        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        va_end(ap);
        /* What clients and processes named (tags, comms, paths) is data: it cannot forge lines or drive a terminal. */
        if (text && !text_is_safe(text)) {
                char *escaped = text_escape(text);
                free(text);
                text = escaped;
        }
        flockfile(stderr);
        if (with_prefix)
                fprintf(stderr, "<%d>", level);
        fputs(text ? text : "(out of memory formatting a log message)", stderr);
        fputc('\n', stderr);
        funlockfile(stderr);
        free(text);
out:
        errno = saved;
        return -error;
}

bool log_ratelimit_ok(LogRateLimit *rl, unsigned *ret_suppressed) {
        struct timespec ts;
        uint64_t now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
        *ret_suppressed = 0;
        if (rl->begin_usec == 0 || now - rl->begin_usec >= rl->interval_usec) {
                *ret_suppressed = rl->suppressed;
                rl->begin_usec = now;
                rl->count = rl->suppressed = 0;
        }
        if (rl->count >= rl->burst) {
                rl->suppressed++;
                return false;
        }
        rl->count++;
        return true;
}
