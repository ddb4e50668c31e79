/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* All of buf in write(2)s on stderr; a log line must not be lost to EINTR or a short write. */
static void write_stderr(const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n = write(STDERR_FILENO, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                buf += n;
                len -= (size_t) n;
        }
}

/*
 * "<N>", the message and '\n' formatted into one buffer and written with one
 * write(2): journald (and anyone reading a pipe) gets whole lines, never the
 * pieces of two writers interleaved, and a line costs one syscall, not three.
 */
static void log_write(int level, int error, const char *fmt, va_list ap) {
        char stack[1024], *buf = stack;
        _cleanup_free_ char *heap = NULL;
        size_t prefix = 0, size = sizeof(stack);
        va_list aq;
        int n;

        if (with_prefix)
                prefix = (size_t) snprintf(stack, sizeof(stack), "<%d>", level);
        for (;;) {
                /* %m in fmt prints strerror(error), as in systemd's log functions. */
                errno = error;
                va_copy(aq, ap);
                n = vsnprintf(buf + prefix, size - prefix, fmt, aq);
                va_end(aq);
                if (n < 0)
                        return;
                if ((size_t) n + 1 < size - prefix || buf != stack)
                        break;
                size = prefix + (size_t) n + 2;
                heap = malloc(size);
                if (!heap)
                        break; /* the line, cut at the stack buffer */
                memcpy(heap, stack, prefix);
                buf = heap;
        }
        size_t len = MIN(prefix + (size_t) n, size - 2);
        buf[len] = '\0';
        /* What clients and processes named (tags, comms, paths) is data: it cannot forge lines or drive a terminal. */
        if (!text_is_safe(buf + prefix)) {
                _cleanup_free_ char *escaped = text_escape(buf + prefix), *line = NULL;
                int k;
                if (escaped && (k = asprintf(&line, "%.*s%s\n", (int) prefix, buf, escaped)) >= 0) {
                        write_stderr(line, (size_t) k);
                        return;
                }
        }
        buf[len++] = '\n';
        write_stderr(buf, len);
}

int log_internal(int level, int error, const char *fmt, ...) {
        int saved = errno;
        va_list ap;

        error = abs(error);
        if (level <= max_level) {
                va_start(ap, fmt);
                log_write(level, error, fmt, ap);
                va_end(ap);
        }
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
