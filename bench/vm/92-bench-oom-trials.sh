#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bench (DESIGN.md 6, issue 11): OOM survival over N trials, protected vs
# unprotected twin: the VM tier's 40-oom-real (memcg OOMs in oomtest.slice,
# MemoryMax=600M; a control trial first, where the unprotected holder must be
# the one killed) with BENCH_OOM_TRIALS protected trials instead of 3. Its
# "FIGURE oom_trials ..." line counts the protected holders that survived and
# the unprotected twins and hogs the kernel killed.
# vm-timeout: 900
set -euo pipefail
export OOMTEST_TRIALS=${BENCH_OOM_TRIALS:-10}
exec bash "$(dirname "$0")/40-oom-real.sh"
