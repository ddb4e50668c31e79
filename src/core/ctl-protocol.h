/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "oomprotect/protocol.h"

/*
 * The 2006 module's text protocol as pure code: parsing what is written to
 * ctl, formatting what is read from status and usage. No I/O here.
 */

/* Why a line over OOMPROTECT_CTL_LINE_MAX is refused (ctl_parse_line's reason for -E2BIG). */
#define CTL_REASON_TOO_LONG "the line is longer than 4096 bytes"

typedef struct CtlCommand {
        pid_t pid;
        bool protect;
} CtlCommand;

/*
 * Parses one line (without its '\n'; a trailing '\r' and blanks are
 * ignored). Returns 1 and fills *ret for a command, 0 for a blank line, or a
 * negative errno with *ret_reason set to a sentence saying why:
 *   -E2BIG      longer than OOMPROTECT_CTL_LINE_MAX bytes
 *   -EOPNOTSUPP not the verb "setprotection"
 *   -EINVAL     malformed (missing or non-numeric PID, bad flag, garbage)
 *   -ERANGE     PID 0 or above the kernel's PID limit
 */
int ctl_parse_line(const char *line, size_t len, CtlCommand *ret, const char **ret_reason);

/*
 * Splits a byte stream (a FIFO or a socket) into lines without ever holding
 * more than one line: a line longer than the limit is reported once as too
 * long and the rest of it is skipped up to its newline.
 */
typedef void (*ctl_line_func_t)(const char *line, size_t len, bool too_long, void *userdata);

typedef struct CtlReader {
        char buf[OOMPROTECT_CTL_LINE_MAX + 1];
        size_t len;
        bool skipping; /* inside an overlong line that was already reported */
} CtlReader;

void ctl_reader_feed(CtlReader *r, const char *data, size_t n, ctl_line_func_t f, void *userdata);
/* End of stream: a pending line without '\n' is delivered as a line (as `printf 'setprotection 1 1'` expects). */
void ctl_reader_flush(CtlReader *r, ctl_line_func_t f, void *userdata);

typedef struct StatusEntry {
        pid_t pid;
        const char *comm;
} StatusEntry;

/* The status text, byte for byte the module's format, entries in the order given. NULL on OOM. */
char *ctl_format_status(const StatusEntry *entries, size_t n, size_t *ret_len);

/* The usage text with dir (e.g. "/run/oom_kill_protection") in place of /proc/oom_kill_protection. */
char *ctl_format_usage(const char *dir);

/*
 * A line as a log message may quote it: printable ASCII as is, \\ \" \t \r \n
 * and \xNN for every other byte, at most max bytes of line, then "..." if
 * it was longer. NULL on OOM.
 */
char *ctl_escape_line(const char *line, size_t len, size_t max);

/* The longest reply ctl_format_reply() writes, '\n' and the terminating NUL included. */
#define CTL_REPLY_MAX 512

/*
 * The ctl.sock reply to one line: "OK\n" when code >= 0, else
 * "ERR <errno name> <reason>\n" (the name from strerrorname_np(), e.g.
 * "ERR ESRCH No process with PID 4242.\n"). Control characters in reason
 * become '?', so that a reason (which may quote a process name) can never
 * forge a reply line. buf must hold CTL_REPLY_MAX bytes; a longer reason is
 * cut. Returns the length (the terminating NUL is not counted).
 */
size_t ctl_format_reply(int code, const char *reason, char buf[static CTL_REPLY_MAX]);
