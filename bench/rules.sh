#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The window between exec and protection by rule (issue 16): its own
# oomprotectd (cgroupfs backend on a cgroup2 subtree of its own, no bus), one
# rule naming a copy of oombench-rules by Executable=, then N execs of that
# copy, one at a time, each timing how long it ran unprotected.
#
#   bench/rules.sh [N]          (default 200; ctest's bench/rules-smoke runs 10)
#   bench/rules.sh --unit [N]   a rule by Unit= instead: N restarts of the unit it protects by name (its
#                               cgroup removed and made again, a new process exec'd in it), each timing
#                               how long the new process ran without the unit's oom_score_adj
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
unit_mode=''
if [[ ${1:-} == --unit ]]; then
        unit_mode=1
        shift
fi
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
if [[ -n $unit_mode ]]; then
        printf '[Rule]\nName=bench\nUnit=oombench.service\n' >"$tmp/rules.d/bench.rules"
else
        printf '[Rule]\nName=bench\nExecutable=%s\n' "$tmp/bin/oombench-target" >"$tmp/rules.d/bench.rules"
fi
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
echo "# $(nproc) CPUs, kernel $(uname -r), $n ${unit_mode:+unit restarts and }execs, daemon $(basename "$bindir")"
if [[ -n $unit_mode ]]; then
        # The unit runs once first, so that the rule protects it by name; every run after is a restart.
        unit_dir=$CG/$top/oombench.service
        mkdir -p "$unit_dir"
        # shellcheck disable=SC2016 # $1 is the inner sh's
        sh -c 'echo "$2" >/proc/self/oom_score_adj && echo $$ >"$1/cgroup.procs" && exec sleep 300' first \
                "$unit_dir" "$start_adj" &
        first=$!
        children+=("$first")
        wait_until 10 grep -qF "Protected unit oombench.service through rule:bench" "$tmp/daemon.log" ||
                fail "the rule did not protect oombench.service: $(tail -n 5 "$tmp/daemon.log")"
        kill "$first"
        wait "$first" 2>/dev/null || true
        export OOMBENCH_UNIT_CGROUP=$unit_dir OOMBENCH_WANT_ADJ=$adj
fi
# shellcheck disable=SC2016 # $1.. are the inner sh's
sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec "$3" run "$4" "$5"' bench \
        "$CG/$top/bench" "$start_adj" "$bindir/bench/oombench-rules" "$n" "$tmp/bin/oombench-target" || rc=$?
if [[ ${rc:-0} -ne 0 ]]; then
        echo "--- daemon log (last 20 lines) ---"
        tail -n 20 "$tmp/daemon.log"
fi
exit "${rc:-0}"
