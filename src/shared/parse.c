/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "macro.h"
#include "parse.h"

static int digit_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return 99;
}

/* Parses digits of base at s; stops at the first non-digit. Returns the end or NULL on overflow. */
static const char *parse_digits(const char *s, unsigned base, uint64_t *ret) {
        uint64_t v = 0;

        for (; *s; s++) {
                unsigned d = (unsigned) digit_value(*s);
                if (d >= base)
                        break;
                if (v > (UINT64_MAX - d) / base)
                        return NULL;
                v = v * base + d;
        }
        *ret = v;
        return s;
}

int parse_u64_base0(const char *s, uint64_t *ret) {
        unsigned base = 10;
        const char *digits = s, *end;
        uint64_t v;

        if (isempty(s))
                return -EINVAL;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                digits = s + 2;
        } else if (s[0] == '0' && s[1] != '\0') {
                base = 8;
                digits = s + 1;
        }
        if (digit_value(*digits) >= (int) base)
                return -EINVAL;

        end = parse_digits(digits, base, &v);
        if (!end)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_pid(const char *s, pid_t *ret) {
        uint64_t v;
        int r;

        r = parse_u64_base0(s, &v);
        if (r < 0)
                return r;
        if (v == 0 || v > OOMPROTECT_PID_MAX_LIMIT)
                return -ERANGE;
        *ret = (pid_t) v;
        return 0;
}

int parse_int_range(const char *s, int min, int max, int *ret) {
        bool negative = false;
        const char *end;
        uint64_t v;

        if (isempty(s))
                return -EINVAL;
        if (*s == '-' || *s == '+') {
                negative = *s == '-';
                s++;
        }
        if (digit_value(*s) >= 10)
                return -EINVAL;
        end = parse_digits(s, 10, &v);
        if (!end)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        if (v > (uint64_t) INT_MAX + 1)
                return -ERANGE;

        long long x = negative ? -(long long) v : (long long) v;
        if (x < min || x > max)
                return -ERANGE;
        *ret = (int) x;
        return 0;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

static int parse_percent_of(const char *s, const char *pct, uint64_t total, uint64_t *ret) {
        uint64_t whole, tenths = 0;
        const char *end;

        end = parse_digits(s, 10, &whole);
        if (!end || end == s)
                return -EINVAL;
        if (*end == '.') {
                if (digit_value(end[1]) >= 10 || end + 2 != pct)
                        return -EINVAL;
                tenths = (uint64_t) (end[1] - '0');
                end += 2;
        }
        if (end != pct || pct[1] != '\0')
                return -EINVAL;
        if (whole > 100 || (whole == 100 && tenths > 0))
                return -ERANGE;
        if (total == 0)
                return -EOPNOTSUPP;

        /* total * permille / 1000 without overflowing for any real RAM size. */
        uint64_t permille = whole * 10 + tenths;
        *ret = total / 1000 * permille + total % 1000 * permille / 1000;
        return 0;
}

int parse_size(const char *s, uint64_t total_ram, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } units[] = { { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 } };
        const char *end, *pct;
        unsigned shift = 0;
        uint64_t v;

        uint64_t frac = 0, frac_div = 1;

        if (isempty(s))
                return -EINVAL;
        if (streq(s, "infinity")) { /* systemd's word for no limit */
                *ret = UINT64_MAX;
                return 0;
        }
        if (digit_value(*s) >= 10)
                return -EINVAL; /* no sign, no white space, no empty number */

        pct = strchr(s, '%');
        if (pct)
                return parse_percent_of(s, pct, total_ram, ret);

        end = parse_digits(s, 10, &v);
        if (!end)
                return -ERANGE;
        if (*end == '.') {
                /* "1.5G": at most 9 decimals, and only with a unit (a byte has no fraction). */
                const char *f = ++end;
                for (; digit_value(*end) < 10; end++) {
                        if (end - f >= 9)
                                return -EINVAL;
                        frac = frac * 10 + digit_value(*end);
                        frac_div *= 10;
                }
                if (end == f || *end == '\0')
                        return -EINVAL;
        }
        if (*end != '\0') {
                size_t i;
                for (i = 0; i < ELEMENTSOF(units); i++)
                        if (*end == units[i].suffix || *end == units[i].suffix + ('a' - 'A'))
                                break;
                if (i >= ELEMENTSOF(units))
                        return -EINVAL;
                shift = units[i].shift;
                end++;
                if (streq(end, "iB"))
                        end += 2;
                else if (streq(end, "B"))
                        end += 1;
                if (*end != '\0')
                        return -EINVAL;
        }
        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;
        /* frac < frac_div <= 10^9 < 2^30, and shift <= 40: the product fits in 70 bits, so in two steps. */
        uint64_t extra = (frac << (shift / 2)) / frac_div;
        extra = (extra << (shift - shift / 2)) + (((frac << (shift / 2)) % frac_div << (shift - shift / 2)) / frac_div);
        if ((v << shift) > UINT64_MAX - extra)
                return -ERANGE;
        *ret = (v << shift) + extra;
        return 0;
}

const char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char suffixes[] = "KMGTPE";
        unsigned i = 0;
        uint64_t unit = 1024;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 "B", bytes);
                return buf;
        }
        while (i + 1 < sizeof(suffixes) - 1 && bytes / unit >= 1024) {
                unit *= 1024;
                i++;
        }
        snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "%c", bytes / unit, bytes % unit * 10 / unit, suffixes[i]);
        return buf;
}

uint64_t physical_memory(void) {
        long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

        if (pages <= 0 || page_size <= 0)
                return 0;
        return (uint64_t) pages * (uint64_t) page_size;
}
