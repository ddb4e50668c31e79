#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The process events connector's overrun path (issue 16): when the kernel
# drops events because the daemon's socket buffer is full (ENOBUFS), the
# daemon scans /proc for what it lost. The real oomprotectd (cgroupfs
# backend, no bus), a rule by Executable=; the daemon is stopped (SIGSTOP),
# a fork storm of short-lived processes fills its connector socket until the
# kernel counts drops (/proc/net/netlink), the rule's program is started
# then (its exec event is dropped too), and the storm goes on a little; then
# SIGCONT: the daemon must log the overrun and the rescan, and the program
# must be protected.
#
# The daemon asks for a 4 MB receive buffer (SO_RCVBUFFORCE; the kernel
# doubles it): the storm runs until the drops are seen, some thousands of
# forks. Each part is bounded in time: the storm STORM_SECONDS (10 s), the
# storm after the program 3 s, each wait for the program or the daemon 5 s.
# A run takes about 9 s here (4,500 forks to the first drop); the slowest
# seen, beside a VM run, 35 s with the storm unbounded.
#
# Needs root, a writable cgroup2 mount and python3 (the storm); exits 77
# with the reason where the connector is not available.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and python3
find_cgroup2

sandbox_slice oomptestoverrun$$
tmp=$(mktemp -d /tmp/oomprotect-overrun.XXXXXX)
chmod 0755 "$tmp"
daemon_pid=''
children=()
STORM_SECONDS=10

sandbox_traps daemon_pid

protect_adjs
mkdir -m 0755 "$tmp/rules.d" "$tmp/bin" "$tmp/state"
cp "$(command -v sleep)" "$tmp/bin/oomprover-keep"
printf '[Rule]\nName=keep\nExecutable=%s\n' "$tmp/bin/oomprover-keep" >"$tmp/rules.d/50-keep.rules"
chmod 0644 "$tmp/rules.d/50-keep.rules"
cgroupfs_config "$tmp/state" >"$tmp/oomprotectd.conf"
printf 'OOMScoreAdjust=%s\nRuleDirectories=%s\n' "$protect_adj" "$tmp/rules.d" >>"$tmp/oomprotectd.conf"

protected() {
        [[ $(cg_of "$1") == "/$slice_rel/oomprotect-$1.scope" && $(adj_of "$1") == "$protect_adj" ]]
}

# connector_inode: the inode of the daemon's NETLINK_CONNECTOR socket (protocol 11 in /proc/net/netlink).
connector_inode() {
        local fd link ino
        for fd in /proc/"$daemon_pid"/fd/*; do
                link=$(readlink "$fd" 2>/dev/null) || continue
                [[ $link =~ ^socket:\[([0-9]+)\]$ ]] || continue
                ino=${BASH_REMATCH[1]}
                if awk -v ino="$ino" '$2 == 11 && $10 == ino { found = 1 } END { exit !found }' /proc/net/netlink; then
                        echo "$ino"
                        return 0
                fi
        done
        return 1
}

# storm INODE UNTIL_DROPS MORE SECONDS: forks children that exit at once until the socket of INODE has
# dropped events (or at once if UNTIL_DROPS is 0), then up to MORE forks; stops after SECONDS (status 1
# if the drops were still to come). Prints "FORKS DROPS RMEM".
storm() {
        python3 - "$@" <<'EOF'
import os, sys, time
inode, until_drops, more, seconds = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), float(sys.argv[4])
def socket_stats():
    with open("/proc/net/netlink") as f:
        for line in f:
            col = line.split()
            if len(col) >= 10 and col[1] == "11" and col[9] == inode:
                return int(col[8]), int(col[4])  # drops, rmem
    sys.exit("the connector socket %s is gone" % inode)
def fork_one():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
forks, end = 0, time.monotonic() + seconds
drops, rmem = socket_stats()
while until_drops and drops == 0:
    if time.monotonic() > end:
        print(forks, drops, rmem)
        sys.exit(1)
    for _ in range(500):
        fork_one()
    forks += 500
    drops, rmem = socket_stats()
for _ in range(more):
    if time.monotonic() > end:
        break
    fork_one()
    forks += 1
drops, rmem = socket_stats()
print(forks, drops, rmem)
EOF
}

test_overrun_is_followed_by_a_rescan_that_protects_what_was_lost() {
        local ino out forks drops rmem start keep before
        ino=$(connector_inode) || fail "no NETLINK_CONNECTOR socket among the daemon's files"
        start=$SECONDS
        kill -STOP "$daemon_pid"
        out=$(storm "$ino" 1 0 "$STORM_SECONDS") ||
                fail "no drops on the connector socket after a storm of $out (forks, drops, rmem) in $STORM_SECONDS s"
        read -r forks drops rmem <<<"$out"
        before=$drops
        echo "# the socket overran after $forks forks: $drops events dropped, $rmem bytes queued"
        # Now the rule's program: its exec event finds the buffer full and is dropped as well.
        mkdir -p "$CG/$top/work"
        # shellcheck disable=SC2016 # $1, $2 are the inner sh's
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec "$3" 300' spawn \
                "$CG/$top/work" "$child_adj" "$tmp/bin/oomprover-keep" &
        keep=$!
        children+=("$keep")
        wait_until 5 is_comm "$keep" oomprover-keep || fail "the rule's program did not start"
        out=$(storm "$ino" 0 500 3)
        read -r forks drops rmem <<<"$out"
        ((drops > before)) || fail "no more drops after the program started: its exec may have been queued"
        echo "# then the rule's program (PID $keep) and $forks forks more: $drops events dropped in all"
        protected "$keep" && fail "PID $keep was protected while the daemon was stopped"
        kill -CONT "$daemon_pid"
        wait_until 5 log_has "The process events connector overran" || fail "no overrun in the log after SIGCONT"
        wait_until 5 log_has "(after an overrun)" || fail "no rescan after the overrun in the log"
        wait_until 5 protected "$keep" || fail "PID $keep (whose exec was lost) not protected after the rescan"
        echo "# $((SECONDS - start)) s from SIGSTOP to the protection"
        grep -F "(after an overrun)" "$tmp/daemon.log" | head -n 1 | sed 's/^/# /'
        ok "an overrun of the connector (ENOBUFS after a fork storm) is logged and the rescan protects what was lost"
}

"$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --no-bus >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_until 10 log_has "Rules: scanned" || fail "oomprotectd did not scan: $(tail -n 5 "$tmp/daemon.log")"
if log_has "Cannot subscribe to the kernel's process events connector"; then
        skip "$(grep -F "Cannot subscribe" "$tmp/daemon.log" | head -n 1)"
fi
test_overrun_is_followed_by_a_rescan_that_protects_what_was_lost
expect_clean_sigterm
echo "# all $n_ok passed"
