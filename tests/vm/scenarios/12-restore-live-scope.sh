#!/bin/bash
# Unprotect puts a process back into a scope that still lives: the shape of a
# login session, whose shell stays behind when the protected program leaves
# for protected.slice. systemd refuses AttachProcessesToUnit() into a unit
# that is not delegated, so the daemon writes cgroup.procs itself; with the
# cpuset controller on the way, the kernel asks that writer for CAP_SYS_NICE
# when the process has capabilities the daemon lacks (a root shell's). And a
# tight Protect+Unprotect loop on a process alone in its scope, whose scope
# systemd collects after every Protect, restores every time.
# vm-timeout: 240
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

daemon_config_default
daemon_fresh_start
info "root cgroup.subtree_control: $(cat "$CG/cgroup.subtree_control")"

# A scope with two processes: the protected one leaves, its sibling stays.
unit=op12-session-$$.scope
systemd-run --quiet --collect --scope --unit="$unit" sh -c 'sleep 100001 & exec sleep 100000' >/dev/null 2>&1 &
pid=$!
on_exit "systemctl stop $unit"
wait_until 5 comm_is "$pid" sleep || fail "sleep $pid never exec'd"
echo 123 >"/proc/$pid/oom_score_adj"
orig_cg=$(cgroup_of "$pid")
expect_eq "$pid starts in its session-like scope" "$orig_cg" "$(slice_path system.slice)/$unit"

for round in 1 2 3; do
        op Protect u "$pid" >/dev/null || fail "round $round: Protect($pid) failed"
        assert_protected "$pid"
        [[ -d $CG$orig_cg ]] || fail "round $round: $orig_cg went away although its other process lives"
        out=$(op Unprotect u "$pid" 2>&1) || fail "round $round: Unprotect($pid) into the live $unit failed: $out"
        assert_restored "$pid" "$orig_cg" 123
done
info "3 rounds: back in the live $orig_cg each time, adj 123"

# Alone in its scope: systemd collects the emptied scope after each Protect,
# and each Unprotect makes it again under its own name.
start_sleeper 55
pid=$SLEEPER_PID
orig_cg=$(cgroup_of "$pid")
pairs=100 failed=0 moved=0
for ((i = 0; i < pairs; i++)); do
        if ! out=$(op Protect u "$pid" 2>&1); then
                failed=$((failed + 1)); info "pair $i: Protect: $out"; continue
        fi
        if ! out=$(op Unprotect u "$pid" 2>&1); then
                failed=$((failed + 1)); info "pair $i: Unprotect: $out"
                journalctl -b --no-pager -o short-monotonic --since=-10s | tail -n 25 | while read -r l; do info "  journal: $l"; done
                op Unprotect u "$pid" >/dev/null 2>&1 || true
                continue
        fi
        [[ $(cgroup_of "$pid") == "$orig_cg" ]] || moved=$((moved + 1))
done
info "$pairs pairs alone in the scope: $failed failed, $moved not back at $orig_cg"
((failed == 0)) || fail "$failed of $pairs Protect+Unprotect pairs failed"
((moved == 0)) || fail "$moved of $pairs Unprotects put $pid somewhere else than $orig_cg"
expect_eq "adj after $pairs pairs" "$(adj_of "$pid")" 55
pass "restored into a live scope 3 times, and $pairs pairs on a scope systemd collects"
