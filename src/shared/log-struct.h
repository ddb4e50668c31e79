/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sys/types.h>

#include "macro.h"

/*
 * A log line with journal fields, so that `journalctl MESSAGE_ID=...` or
 * `journalctl OOMPROTECT_PID=1234` finds it: sent to journald with
 * sd_journal_send() when stderr is journald's stream (systemd says so in
 * $JOURNAL_STREAM), else an ordinary log line (log.h) on stderr.
 * message_id is 32 hex digits (OOMPROTECT_MESSAGE_* in protocol.h); unit
 * may be NULL. Returns -abs(error) like log_internal().
 */
int log_struct_internal(int level, int error, const char *message_id, pid_t pid, const char *unit, const char *fmt,
                        ...) _printf_(6, 7);

/* Pure: whether $JOURNAL_STREAM ("DEV:INO") names the file with st_dev dev and st_ino ino. */
int journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino);
