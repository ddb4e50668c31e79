#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Load (issue 10, class 7): while 8 clients flood the real daemon with
# Protect/Unprotect over D-Bus (16 calls in flight each), 2 more flood
# ctl.sock and root writes 1,920 lines into the ctl FIFO, a quiet client's Ping and its own Protect/Unprotect are answered
# promptly: the daemon reads every client's calls as they come and starts
# the work round-robin between clients, a bounded amount per loop iteration
# (src/daemon/bus-queue.c). The bounds asserted here are generous (a loaded
# build machine, ASan); the figures are printed for SECURITY.md, the tight
# ones are bench/'s. At the end nothing is left protected.
#
# Needs root, a writable cgroup2 mount, dbus-daemon and busctl (exits 77 with
# the reason otherwise).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_FLOOD_HELPER:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl
find_cgroup2

sandbox_begin flood
mkdir "$CG/$top/clients"
sandbox_config "$tmp" 0

start_private_bus "$tmp"
"$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_until 10 name_has_owner || fail "oomprotectd did not come up"
wait_until 10 test -S "$tmp/compat/ctl.sock" || fail "ctl.sock is not served"

# key NAME LINE...: the value of NAME= in the helper's output.
key() {
        sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" <<<"$out" | head -n 1
}
# le A B: A <= B, as decimals.
le() {
        awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'
}

# fifo_flood PID: root's share of the flood, through the ctl FIFO: 1,920 lines protecting and unprotecting PID,
# in writes of 64 lines (the FIFO takes its turns in the same work queue as everyone else).
fifo_flood() {
        local lines='' i
        for ((i = 0; i < 32; i++)); do
                lines+="setprotection $1 1"$'\n'"setprotection $1 0"$'\n'
        done
        for ((i = 0; i < 30; i++)); do
                printf '%s' "$lines" >"$tmp/compat/ctl"
        done
}

test_ping_is_answered_within_100_ms_during_a_flood_from_8_clients() {
        local sleeper writer
        sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 1000' spawn "$CG/$top/clients" &
        sleeper=$!
        children+=("$sleeper")
        fifo_flood "$sleeper" &
        writer=$!
        out=$(sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --clients 8 --pids 16 --ctl-clients 2 --socket "$3" \
                --seconds "${4:-6}"' flood "$CG/$top/clients" "$OOMPROTECT_FLOOD_HELPER" "$tmp/compat/ctl.sock" \
                "${OOMPROTECT_FLOOD_SECONDS:-6}") || fail "flood-helper failed: $out"
        wait "$writer" || fail "writing the ctl FIFO failed"
        grep -qF "Protected PID $sleeper (sleep) through ctl: " "$tmp/daemon.log" ||
                fail "no line of the ctl FIFO was executed: $(grep -F "$sleeper" "$tmp/daemon.log" | tail -n 3)"
        echo "# $out" | tr '\n' ' '
        echo
        local ops errors ping_max ping_p99 quiet_max service bound
        ops=$(key flood_ops) errors=$(key flood_errors) ping_p99=$(key ping_p99_ms) ping_max=$(key ping_max_ms)
        quiet_max=$(key quiet_max_ms)
        ((ops > 200)) || fail "the flood made only $ops calls: no load to measure under"
        ((errors == 0)) || fail "$errors flooding calls failed: $(grep -v '^<[67]>' "$tmp/daemon.log" | tail -n 5)"
        (($(key quiet_errors) == 0)) || fail "the quiet client's calls failed"
        # The daemon is the bottleneck, so one call's service time is 1/throughput. In turns, a Ping waits for
        # about one call; first come, first served, for the ~148 in flight. The bound is the issue's 100 ms, or
        # 40 service times on a machine too loaded for that (a shared build machine, ASan): unfairness still fails.
        service=$(awk -v r="$(key flood_ops_per_s)" 'BEGIN { printf "%.2f", 1000 / r }')
        bound=$(awk -v s="$service" 'BEGIN { b = 40 * s; printf "%.0f", (b > 100 ? b : 100) }')
        le "$ping_p99" "$bound" || fail "Ping p99 was $ping_p99 ms under the flood (bound $bound ms; a call takes $service ms)"
        le "$ping_max" $((3 * bound)) || fail "the slowest Ping took $ping_max ms under the flood (bound $((3 * bound)) ms)"
        le "$quiet_max" $((5 * bound)) ||
                fail "the quiet client's Protect/Unprotect took up to $quiet_max ms (bound $((5 * bound)) ms)"
        ok "Ping p99 $ping_p99 ms, max $ping_max ms (bound $bound); quiet Protect/Unprotect max $quiet_max ms;" \
                "$ops flooding calls, $service ms each"
}

none_protected() {
        [[ $(prop ProtectedCount) == "u 0" ]]
}

test_the_flood_leaves_nothing_protected() {
        wait_until 10 none_protected ||
                fail "after the flood: $(prop ProtectedCount) protection(s) left"
        [[ -z $(find "$CG/$slice" -mindepth 1 -type d 2>/dev/null) ]] ||
                fail "scopes left behind: $(find "$CG/$slice" -mindepth 1 -type d)"
        ok "every flooding client's protections are gone, no scope left"
}

test_ping_is_answered_within_100_ms_during_a_flood_from_8_clients
test_the_flood_leaves_nothing_protected
echo "1..$n_ok"
