/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/*
 * Log lines go to stderr prefixed with "<N>" (the syslog priority), which
 * journald turns into the record's priority. Outside journald the prefix can
 * be switched off for people reading a terminal.
 */

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_prefix(bool on);
int log_parse_level(const char *s);

/* Returns -abs(error) so callers can write `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_crit(...) log_internal(LOG_CRIT, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_internal(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...) log_internal(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)

/*
 * At most burst messages per interval: for what unprivileged clients can
 * trigger at will (refusals), so that they cannot flood the journal. The
 * first message after a suppressed stretch says how many were left out.
 */
typedef struct LogRateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;
        unsigned count, suppressed;
} LogRateLimit;
#define LOG_RATELIMIT_INIT(interval, n) { .interval_usec = (interval), .burst = (n) }

/* Whether to log now; *ret_suppressed: how many were left out before this one. */
bool log_ratelimit_ok(LogRateLimit *rl, unsigned *ret_suppressed);

#define log_oom() log_internal(LOG_ERR, ENOMEM, "Out of memory.")
