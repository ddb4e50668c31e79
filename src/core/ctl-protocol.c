/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-protocol.h"
#include "escape.h"
#include "macro.h"
#include "parse.h"

#define CTL_MAX_TOKENS 4
#define CTL_BLANKS " \t\r"

/* Splits buf (modified in place) at blanks; returns the token count, at most max + 1. */
static size_t split_tokens(char *buf, char **tokens, size_t max) {
        size_t n = 0;
        char *save = NULL;

        for (char *t = strtok_r(buf, CTL_BLANKS, &save); t; t = strtok_r(NULL, CTL_BLANKS, &save)) {
                if (n == max)
                        return max + 1;
                tokens[n++] = t;
        }
        return n;
}

static int parse_flag(const char *s, bool *ret, const char **ret_reason) {
        uint64_t v;

        if (parse_u64_base0(s, &v) < 0 || v > 1) {
                *ret_reason = "the protection flag must be 0 or 1";
                return -EINVAL;
        }
        *ret = v == 1;
        return 0;
}

static int parse_command(char **tokens, size_t n, CtlCommand *ret, const char **ret_reason) {
        CtlCommand c = { .protect = true };
        int r;

        if (!streq(tokens[0], OOMPROTECT_CTL_VERB)) {
                *ret_reason = "unknown command, expected \"setprotection <pid> [0/1]\"";
                return -EOPNOTSUPP;
        }
        if (n < 2) {
                *ret_reason = "no pid was supplied";
                return -EINVAL;
        }
        if (n > 3) {
                *ret_reason = "trailing garbage after the protection flag";
                return -EINVAL;
        }
        r = parse_pid(tokens[1], &c.pid);
        if (r == -ERANGE) {
                *ret_reason = "the pid is out of range (1 to 4194304)";
                return r;
        }
        if (r < 0) {
                *ret_reason = "the pid is not a number (decimal, 0x hex or 0 octal)";
                return r;
        }
        if (n == 3) {
                r = parse_flag(tokens[2], &c.protect, ret_reason);
                if (r < 0)
                        return r;
        }
        *ret = c;
        return 1;
}

int ctl_parse_line(const char *line, size_t len, CtlCommand *ret, const char **ret_reason) {
        char buf[OOMPROTECT_CTL_LINE_MAX + 1];
        char *tokens[CTL_MAX_TOKENS];
        size_t n;

        if (len > OOMPROTECT_CTL_LINE_MAX) {
                *ret_reason = CTL_REASON_TOO_LONG;
                return -E2BIG;
        }
        if (memchr(line, '\0', len)) {
                *ret_reason = "the line contains a NUL byte";
                return -EINVAL;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';

        n = split_tokens(buf, tokens, CTL_MAX_TOKENS);
        if (n == 0)
                return 0;
        if (n > CTL_MAX_TOKENS)
                n = CTL_MAX_TOKENS; /* parse_command reports the garbage */
        return parse_command(tokens, n, ret, ret_reason);
}

static void deliver(CtlReader *r, ctl_line_func_t f, void *userdata) {
        if (!r->skipping)
                f(r->buf, r->len, false, userdata);
        r->len = 0;
        r->skipping = false;
}

void ctl_reader_feed(CtlReader *r, const char *data, size_t n, ctl_line_func_t f, void *userdata) {
        while (n > 0) {
                const char *nl = memchr(data, '\n', n);
                size_t chunk = nl ? (size_t) (nl - data) : n;

                if (!r->skipping) {
                        if (r->len + chunk > OOMPROTECT_CTL_LINE_MAX) {
                                f(r->buf, r->len, true, userdata);
                                r->skipping = true;
                        } else {
                                memcpy(r->buf + r->len, data, chunk);
                                r->len += chunk;
                        }
                }
                if (!nl)
                        return;
                deliver(r, f, userdata);
                data += chunk + 1;
                n -= chunk + 1;
        }
}

void ctl_reader_flush(CtlReader *r, ctl_line_func_t f, void *userdata) {
        if (r->len > 0 || r->skipping) {
                bool was_skipping = r->skipping;
                r->skipping = false;
                if (!was_skipping)
                        f(r->buf, r->len, false, userdata);
        }
        r->len = 0;
}

char *ctl_format_status(const StatusEntry *entries, size_t n, size_t *ret_len) {
        /* "%-10d %-16s\n" is 28 bytes for any real pid and comm. */
        size_t alloc = 128 + n * 32, pos;
        char *buf = malloc(alloc);

        if (!buf)
                return NULL;
        pos = (size_t) snprintf(buf, alloc, "OOM protected processes:\n%-10s %-16s\n%-10s %-16s\n",
                                "PID", "NAME", "---", "----");
        for (size_t i = 0; i < n; i++) {
                char comm[17];
                /* A process can name itself anything: nothing in a comm may forge rows or drive a terminal. */
                text_mask(entries[i].comm, 16, comm);
                pos += (size_t) snprintf(buf + pos, alloc - pos, "%-10d %-16s\n", (int) entries[i].pid, comm);
        }
        if (ret_len)
                *ret_len = pos;
        return buf;
}

char *ctl_format_usage(const char *dir) {
        char *s = NULL;

        if (asprintf(&s,
                     "Usage:\n"
                     "cat %s/" OOMPROTECT_STATUS_FILE "\n"
                     "echo \"" OOMPROTECT_CTL_VERB " <pid> [0/1]\" > %s/" OOMPROTECT_CTL_FILE "\n",
                     dir, dir) < 0)
                return NULL;
        return s;
}

char *ctl_escape_line(const char *line, size_t len, size_t max) {
        size_t n = MIN(len, max);
        char *buf = malloc(n * 4 + 4), *p;

        if (!buf)
                return NULL;
        p = buf;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) line[i];
                switch (ch) {
                case '\\':
                case '"':
                        *p++ = '\\';
                        *p++ = (char) ch;
                        break;
                case '\t':
                        p = stpcpy(p, "\\t");
                        break;
                case '\r':
                        p = stpcpy(p, "\\r");
                        break;
                case '\n':
                        p = stpcpy(p, "\\n");
                        break;
                default:
                        if (ch < 0x20 || ch >= 0x7f)
                                p += sprintf(p, "\\x%02x", ch);
                        else
                                *p++ = (char) ch;
                }
        }
        if (len > max)
                p = stpcpy(p, "...");
        *p = '\0';
        return buf;
}

size_t ctl_format_reply(int code, const char *reason, char buf[static CTL_REPLY_MAX]) {
        const char *name;
        size_t len;
        int n;

        if (code >= 0) {
                memcpy(buf, "OK\n", 4);
                return 3;
        }
        name = strerrorname_np(-code);
        n = snprintf(buf, CTL_REPLY_MAX, "ERR %s %s", name ? name : "EIO",
                     isempty(reason) ? strerror(-code) : reason);
        len = MIN((size_t) MAX(n, 0), (size_t) CTL_REPLY_MAX - 2);
        for (size_t i = 4; i < len; i++)
                if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
                        buf[i] = '?';
        buf[len] = '\n';
        buf[len + 1] = '\0';
        return len + 1;
}
