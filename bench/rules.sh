#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The window between exec and protection by rule (issue 16): its own
# oomprotectd (cgroupfs backend on a cgroup2 subtree of its own, no bus), one
# rule naming a copy of oombench-rules by Executable=, then N execs of that
# copy, one at a time, each timing how long it ran unprotected.
#
#   bench/rules.sh [N]     (default 200; ctest's bench/rules-smoke runs 10)
#
# Environment: OOMPROTECT_BINDIR (the build, default build-bench),
# OOMPROTECT_SRCDIR. Exits 77 where the process events connector is not
# available (no CAP_NET_ADMIN, another network namespace).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export OOMPROTECT_SRCDIR=${OOMPROTECT_SRCDIR:-$(dirname "$here")}
bindir=${OOMPROTECT_BINDIR:-$OOMPROTECT_SRCDIR/build-bench}
# shellcheck source=tests/integration/lib.sh
source "$OOMPROTECT_SRCDIR/tests/integration/lib.sh"
n=${1:-200}

require_root_and cp
find_cgroup2
name=oompbenchrules$$
top=$name.slice
slice=$name-protected.slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"
tmp=$(mktemp -d /tmp/oomprotect-bench-rules.XXXXXX)
chmod 0755 "$tmp"
# StateDirectory= lives in /run on a real host, a tmpfs where fsync costs nothing; /tmp may be a disk (as
# bench/run.sh does). The target's copy stays in /tmp: /dev/shm may be noexec.
state=$tmp/state
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
        state=$(mktemp -d /dev/shm/oomprotect-bench-rules.XXXXXX)
fi
daemon_pid=''
children=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
        local rc=$?
        [[ $state == /dev/shm/* ]] && rm -rf "$state"
        sandbox_cleanup "$rc" "$daemon_pid"
}
trap cleanup EXIT

mkdir -p "$tmp/rules.d" "$tmp/bin"
chmod 0755 "$tmp/rules.d" "$tmp/bin"
cp "$bindir/bench/oombench-rules" "$tmp/bin/oombench-target"
printf '[Rule]\nName=bench\nExecutable=%s\n' "$tmp/bin/oombench-target" >"$tmp/rules.d/bench.rules"
chmod 0644 "$tmp/rules.d/bench.rules"
# Without CAP_SYS_RESOURCE (the build machine) adj cannot go below 0: the targets start at 700 and get 0.
adj=-1000 start_adj=0
if ! sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        adj=0 start_adj=700
fi
cat >"$tmp/oomprotectd.conf" <<CONF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$state
CompatDirectory=$state/compat
RuleDirectories=$tmp/rules.d
OOMScoreAdjust=$adj
CONF
"$bindir/oomprotectd" --config="$tmp/oomprotectd.conf" --no-bus >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_until 10 grep -qF "Rules: scanned" "$tmp/daemon.log" || fail "oomprotectd did not start: $(tail -n 5 "$tmp/daemon.log")"
if grep -qF "Cannot subscribe" "$tmp/daemon.log"; then
        skip "$(grep -F "Cannot subscribe" "$tmp/daemon.log")"
fi
# The bench runs inside the sandbox, so the protected targets come from a cgroup of its own.
mkdir -p "$CG/$top/bench"
echo "# $(nproc) CPUs, kernel $(uname -r), $n execs, daemon $(basename "$bindir")"
# shellcheck disable=SC2016 # $1.. are the inner sh's
sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec "$3" run "$4" "$5"' bench \
        "$CG/$top/bench" "$start_adj" "$bindir/bench/oombench-rules" "$n" "$tmp/bin/oombench-target" || rc=$?
if [[ ${rc:-0} -ne 0 ]]; then
        echo "--- daemon log (last 20 lines) ---"
        tail -n 20 "$tmp/daemon.log"
fi
exit "${rc:-0}"
