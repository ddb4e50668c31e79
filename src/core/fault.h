/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Crash points for the tests that kill the daemon "between steps": when the
 * environment variable OOMPROTECT_FAULT names a point, the process SIGKILLs
 * itself there, exactly as `kill -9` at that instant would. Unset, a point
 * costs one getenv().
 */
void fault_point(const char *name);
