#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The daemon's own memory under pressure (DESIGN.md 6): with RLIMIT_MEMLOCK
# unlimited, what the shipped unit's LimitMEMLOCK=infinity gives it, the
# real oomprotectd locks its pages as it touches them (mlockall with
# MCL_ONFAULT), so reclaim cannot take its code away between two requests;
# under any other limit it locks nothing and says so in its debug log.
#  - unlimited: VmLck covers the mappings, and VmRSS does not jump to them
#    (nothing is read in ahead); a Protect and an Unprotect still work, and
#    the pages they touched stay locked;
#  - the shell's default limit: VmLck 0 kB, the same requests work.
# Needs root (cgroupfs, a private bus) and prlimit; exits 77 otherwise, and
# after the finite case where the limit cannot be raised (no CAP_SYS_RESOURCE).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl prlimit
find_cgroup2
sandbox_slice oomptestmemlock$$
tmp=$(mktemp -d /tmp/oomprotect-memlock.XXXXXX)
chmod 0755 "$tmp"
CTL=$OOMPROTECT_CTL
# shellcheck disable=SC2034 # start_private_bus and sandbox_daemon set them, sandbox_exit kills them
dbus_pid='' daemon_pid=''
children=()
# shellcheck disable=SC2034 # read by name in sandbox_exit
sandbox_traps daemon_pid dbus_pid

status_kb() { # PID FIELD: the field of /proc/PID/status in kB
        sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}

# start_daemon LIMIT: the daemon under RLIMIT_MEMLOCK LIMIT (prlimit's syntax), debug log to $tmp/daemon.log.
start_daemon() {
        : >"$tmp/daemon.log"
        prlimit --memlock="$1" "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --log-level=debug \
                >>"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}

# stop_daemon: SIGTERM, a clean exit (expect_clean_sigterm), and the bus name gone before the next start.
stop_daemon() {
        expect_clean_sigterm
        wait_until 10 sh -c '! busctl status org.oomprotect >/dev/null 2>&1' || fail "org.oomprotect still owned"
}

# protect_round: a sleeper protected and unprotected through the CLI, its cgroup checked both ways.
protect_round() {
        spawn_in victim "$child_adj" sleep sleep 1000
        local pid=$spawned
        "$CTL" protect "$pid" >/dev/null || fail "protect $pid failed: $(tail -n 5 "$tmp/daemon.log")"
        assert_eq "$(cg_of "$pid")" "/$slice_rel/oomprotect-$pid.scope" "cgroup of $pid"
        assert_eq "$(adj_of "$pid")" "$protect_adj" "oom_score_adj of $pid"
        "$CTL" unprotect "$pid" >/dev/null || fail "unprotect $pid failed"
        assert_eq "$(cg_of "$pid")" "/$top/victim" "cgroup of $pid after unprotect"
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
}

test_unlimited_memlock_locks_what_the_daemon_touches() {
        start_daemon unlimited
        wait_until 5 grep -q "memory is locked as it is used" "$tmp/daemon.log" ||
                fail "no lock reported: $(grep -i lock "$tmp/daemon.log" || true)"
        local lck rss size
        lck=$(status_kb "$daemon_pid" VmLck) rss=$(status_kb "$daemon_pid" VmRSS) size=$(status_kb "$daemon_pid" VmSize)
        ((lck > 0)) || fail "VmLck is $lck kB with RLIMIT_MEMLOCK unlimited"
        # MCL_ONFAULT: the mappings are locked, not read in: resident stays well below the mapped size.
        ((rss < size / 2)) || fail "VmRSS $rss kB of VmSize $size kB: the lock read the mappings in"
        protect_round
        protect_round
        ((lck = $(status_kb "$daemon_pid" VmLck), lck > 0)) || fail "VmLck fell to $lck kB after two rounds"
        note "locked: VmLck $lck kB, VmRSS $(status_kb "$daemon_pid" VmRSS) kB (at start $rss kB), VmSize $size kB"
        stop_daemon
        ok "RLIMIT_MEMLOCK unlimited: the daemon's mappings are locked on fault (VmLck > 0, RSS not read in), requests work"
}

test_finite_memlock_locks_nothing() {
        start_daemon 8388608
        wait_until 5 grep -q "RLIMIT_MEMLOCK is not unlimited" "$tmp/daemon.log" ||
                fail "the daemon did not say it locks nothing: $(grep -i lock "$tmp/daemon.log" || true)"
        assert_eq "$(status_kb "$daemon_pid" VmLck)" 0 "VmLck with RLIMIT_MEMLOCK 8 MiB"
        protect_round
        assert_eq "$(status_kb "$daemon_pid" VmLck)" 0 "VmLck after a round with RLIMIT_MEMLOCK 8 MiB"
        stop_daemon
        ok "a finite RLIMIT_MEMLOCK: nothing locked (VmLck 0 kB), requests work"
}

host_adjs
mkdir -m 0755 "$tmp/state"
{
        cgroupfs_config "$tmp/state"
        printf 'OOMScoreAdjust=%s\n' "$protect_adj"
} >"$tmp/oomprotectd.conf"
start_private_bus "$tmp"
test_finite_memlock_locks_nothing
# Raising the hard limit needs CAP_SYS_RESOURCE, which the build machine's root lacks: the VM tier's
# bench/vm/91-bench-pressure.sh sees the shipped unit's lock instead.
prlimit --memlock=unlimited true 2>/dev/null ||
        skip "RLIMIT_MEMLOCK cannot be raised to unlimited here (no CAP_SYS_RESOURCE); $n_ok passed before"
test_unlimited_memlock_locks_what_the_daemon_touches
echo "# all $n_ok passed"
