/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Text from clients and processes (tags, comms, cgroup paths, ctl lines) is
 * data: before it reaches a log, the status file, D-Bus or a terminal, what
 * a terminal would act on goes. "Unsafe" is a C0 control character, DEL, a
 * C1 control character (U+0080..U+009F: U+009B is a CSI to some terminals)
 * and every byte of invalid UTF-8. The one sanitizer of the project.
 */

/* Length of the valid UTF-8 character at s (1..4), or 0 if there is none (NUL included). */
size_t utf8_char_len(const char *s);

/* Whether s (NULL: yes) has nothing unsafe. */
bool text_is_safe(const char *s);

/*
 * A copy of s (NULL: "") with every unsafe byte written as \xNN; the result
 * is valid UTF-8 without control characters. NULL only when out of memory.
 */
char *text_escape(const char *s);

/* At most max bytes of s into out (max + 1 bytes), each unsafe byte as '?': for fixed-width columns. */
void text_mask(const char *s, size_t max, char *out);
