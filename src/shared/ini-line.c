/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include <ini.h>

#include "ini-line.h"
#include "macro.h"

#define WHITESPACE " \t\n\r\f\v"
#define UTF8_BOM "\xEF\xBB\xBF"

static int probe_handler(void *userdata, const char *section, const char *name, const char *value) {
        return 1;
}

char *ini_line_clean(char *s, size_t n, size_t max, bool first, IniLineProblem *ret_problem) {
        size_t len;

        if (strlen(s) != n) {
                *ret_problem = INI_LINE_NUL;
                return NULL;
        }
        if (first && strneq(s, UTF8_BOM, strlen(UTF8_BOM)))
                s += strlen(UTF8_BOM);
        s += strspn(s, WHITESPACE);
        len = strlen(s);
        while (len > 0 && strchr(WHITESPACE, s[len - 1]))
                s[--len] = '\0';
        if (len + 2 > max) {
                *ret_problem = INI_LINE_TOO_LONG;
                return NULL;
        }
        /* Leading white space is gone, so inih's continuation lines cannot happen: one line, one answer. */
        if (ini_parse_string(s, probe_handler, NULL) != 0) {
                *ret_problem = INI_LINE_SYNTAX;
                return NULL;
        }
        *ret_problem = INI_LINE_OK;
        return s;
}
