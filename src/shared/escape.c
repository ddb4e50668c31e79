/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

size_t utf8_char_len(const char *str) {
        const unsigned char *s = (const unsigned char *) str;
        unsigned n, cp;

        if (s[0] == 0)
                return 0;
        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1fU;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0fU;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07U;
        else
                return 0;
        for (unsigned i = 1; i < n; i++) {
                if ((s[i] & 0xc0U) != 0x80U) /* also stops at the terminating NUL */
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3fU);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* Length of the safe character at s, 0 if the byte at s is unsafe (or the NUL). */
static size_t safe_char_len(const char *s) {
        const unsigned char *u = (const unsigned char *) s;
        size_t n = utf8_char_len(s);

        if (n == 1 && (u[0] < 0x20 || u[0] == 0x7f))
                return 0;
        if (n == 2 && u[0] == 0xc2 && u[1] < 0xa0) /* C1 controls */
                return 0;
        return n;
}

bool text_is_safe(const char *s) {
        size_t n;

        if (!s)
                return true;
        for (; *s; s += n)
                if ((n = safe_char_len(s)) == 0)
                        return false;
        return true;
}

char *text_escape(const char *s) {
        size_t len, n;
        char *buf, *p;

        s = s ? s : "";
        len = strlen(s);
        buf = malloc(len * 4 + 1);
        if (!buf)
                return NULL;
        for (p = buf; *s; s += n) {
                n = safe_char_len(s);
                if (n == 0) {
                        p += sprintf(p, "\\x%02x", (unsigned char) *s);
                        n = 1;
                } else {
                        memcpy(p, s, n);
                        p += n;
                }
        }
        *p = '\0';
        return buf;
}

void text_mask(const char *s, size_t max, char *out) {
        size_t i = 0, n;

        s = s ? s : "";
        while (s[i] && i < max) {
                n = safe_char_len(s + i);
                if (n == 0 || i + n > max) {
                        out[i] = '?'; /* a character cut by max counts as unsafe too */
                        i++;
                        continue;
                }
                memcpy(out + i, s + i, n);
                i += n;
        }
        out[i] = '\0';
}
