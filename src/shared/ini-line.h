/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The line filter of our INI readers (oomprotectd.conf, rule files): each
 * line is cleaned before libinih sees it, so that a line inih would
 * misread is reported whole, with its number, instead.
 */
typedef enum IniLineProblem {
        INI_LINE_OK,
        INI_LINE_NUL,      /* contains a NUL byte */
        INI_LINE_TOO_LONG, /* inih would read it in pieces */
        INI_LINE_SYNTAX,   /* neither [Section], Key=Value, a comment nor empty */
} IniLineProblem;

/*
 * s holds one line of n bytes (without its newline), max is inih's buffer
 * size. Strips a UTF-8 BOM (first line only) and white space at both ends,
 * in place. Returns the text to hand to inih, or NULL with *ret_problem set.
 */
char *ini_line_clean(char *s, size_t n, size_t max, bool first, IniLineProblem *ret_problem);
