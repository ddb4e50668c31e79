/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kernel's PID_MAX_LIMIT on 64-bit: no PID can be larger. */
#define OOMPROTECT_PID_MAX_LIMIT 4194304

/*
 * All parsers take the whole string: leading/trailing white space, signs
 * where none is allowed and trailing garbage are errors. They return 0 or a
 * negative errno (-EINVAL for syntax, -ERANGE for a value out of range) and
 * leave *ret untouched on failure.
 */

/* Unsigned number in C/kernel base-0 notation: 123, 0x7b, 0173 (like simple_strtoul(s, NULL, 0)). */
int parse_u64_base0(const char *s, uint64_t *ret);

/* A PID in base-0 notation, 1..PID_MAX_LIMIT. */
int parse_pid(const char *s, pid_t *ret);

/* Signed decimal integer in [min, max]. */
int parse_int_range(const char *s, int min, int max, int *ret);

/* 1/yes/true/on or 0/no/false/off (case-insensitive); returns 1, 0 or -EINVAL. */
int parse_boolean(const char *s);

/*
 * A size in bytes: "1048576", "512K", "64M", "2G", "1T" (powers of 1024, an
 * optional trailing "B"/"iB" is accepted), or "N%" of total_ram (N an
 * integer 0..100, or with one decimal place: "2.5%").
 */
int parse_size(const char *s, uint64_t total_ram, uint64_t *ret);

/* "64.0M"-style rendering for people; buf must hold at least FORMAT_BYTES_MAX. */
#define FORMAT_BYTES_MAX 16
const char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* The machine's RAM in bytes (sysconf), 0 if unknown. */
uint64_t physical_memory(void);
