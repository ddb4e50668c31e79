#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Protection by rule end to end (issue 16): the real oomprotectd (no bus:
# the compat directory is the front end used), a rule directory of its own,
# real processes in a real cgroup2 subtree, the kernel's process events
# connector. A process already running the rule's program is protected by
# the scan at start; one that execs it later within a bounded time; one
# running another program is not; a rule removed on SIGHUP restores its
# processes exactly; a rule-made protection removed by hand is not made again
# until the process execs again; an untrusted rule file is refused.
#
# Needs root and a writable cgroup2 mount (exits 77 with the reason
# otherwise). Without the connector (CAP_NET_ADMIN, the initial network
# namespace) the exec parts are skipped with a printed reason; the scans are
# still tested.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and pgrep
find_cgroup2

sandbox_slice oomptestrules$$

tmp=$(mktemp -d /tmp/oomprotect-rules.XXXXXX)
chmod 0755 "$tmp"
RULES=$tmp/rules.d
COMPAT=$tmp/state/compat
daemon_pid=''
children=()
# The window the exec test allows between exec and protection: generous for a loaded build machine
# under ASan; BENCHMARKS.md has the measured figures.
BOUND=2

sandbox_traps daemon_pid

protect_adjs

# Two copies of sleep under names of their own: the rule matches the first by its real path.
mkdir -p "$tmp/bin" "$RULES"
chmod 0755 "$tmp/bin" "$RULES"
cp "$(command -v sleep)" "$tmp/bin/oomprules-keep"
cp "$(command -v sleep)" "$tmp/bin/oomprules-other"
KEEP=$tmp/bin/oomprules-keep
OTHER=$tmp/bin/oomprules-other
# A script that waits a little, then becomes its arguments by exec: same PID, new executable. A second:
# spawn_in looks for its comm before it execs, which a loaded machine (a VM run beside) made it miss at 0.2 s.
WAIT=$tmp/bin/oomprules-wait
printf '#!/bin/sh\nsleep 1\nexec "$@"\n' >"$WAIT"
chmod 0755 "$WAIT"

write_rule() {
        cat >"$RULES/50-keep.rules" <<EOF
# The program the tests protect, by its real executable.
[Rule]
Name=keep
Executable=$tmp/bin/oomprules-kee?
EOF
        chmod 0644 "$RULES/50-keep.rules"
}

cat >"$tmp/oomprotectd.conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$tmp/state
CompatDirectory=$COMPAT
OOMScoreAdjust=$protect_adj
MemoryMinBudget=64M
RuleDirectories=$RULES
EOF


protected() {
        [[ $(cg_of "$1") == "/$slice_rel/oomprotect-$1.scope" && $(adj_of "$1") == "$protect_adj" ]]
}
assert_protected() {
        protected "$1" || fail "PID $1 is not protected: cgroup $(cg_of "$1"), adj $(adj_of "$1")"
}
assert_unchanged() { # PID SUB
        assert_eq "$(cg_of "$1")" "/$top/$2" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "$child_adj" "oom_score_adj of $1"
}
in_status() {
        grep -qE "^$1 " "$COMPAT/status"
}

start_daemon() {
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --no-bus --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 log_has "Rules: scanned" || fail "oomprotectd did not scan: $(tail -n 5 "$tmp/daemon.log")"
}

# ---- the tests ----

test_scan_at_start_protects_what_runs_already() {
        spawn_in pre "$child_adj" oomprules-keep "$KEEP" 300
        pre=$spawned
        spawn_in pre "$child_adj" oomprules-other "$OTHER" 300
        pre_other=$spawned
        start_daemon
        wait_until 5 protected "$pre" || fail "PID $pre (running the rule's program) not protected by the scan"
        wait_until 5 in_status "$pre" || fail "PID $pre is not in $COMPAT/status"
        assert_unchanged "$pre_other" pre
        log_has "Protected PID $pre (oomprules-keep) through rule:keep" || fail "no log line naming rule:keep"
        ok "the scan at start protects a running process of the rule's program (source rule:keep), not another"
}

connector_live() {
        ! log_has "Cannot subscribe to the kernel's process events connector"
}

test_exec_of_matching_program_is_protected_within_bound() {
        local start end
        spawn_in work "$child_adj" oomprules-wait "$WAIT" "$KEEP" 300
        exec_pid=$spawned
        assert_unchanged "$exec_pid" work
        wait_until 5 is_comm "$exec_pid" oomprules-keep || fail "PID $exec_pid did not exec"
        start=$(date +%s%N)
        wait_until "$BOUND" protected "$exec_pid" ||
                fail "PID $exec_pid exec'd the rule's program and was not protected within $BOUND s"
        end=$(date +%s%N)
        echo "# protected $(((end - start) / 1000000)) ms after its exec was seen here (polling every 20 ms)"
        ok "a process that execs the rule's program is protected within $BOUND s"
}

test_exec_of_other_program_is_not_protected() {
        spawn_in work "$child_adj" oomprules-wait "$WAIT" "$OTHER" 300
        other_pid=$spawned
        wait_until 5 is_comm "$other_pid" oomprules-other || fail "PID $other_pid did not exec"
        # Then one that does match, started after it: once that one is protected, the other was seen too.
        spawn_in work "$child_adj" oomprules-keep "$KEEP" 301
        marker=$spawned
        wait_until "$BOUND" protected "$marker" || fail "the marker $marker was not protected"
        assert_unchanged "$other_pid" work
        ok "a process that execs another program is left alone"
}

test_cgroup_rule_protects_what_execs_in_the_cgroup() {
        local cg_pid
        printf '[Rule]\nName=cg\nCgroup=/%s/cg\n' "$top" >"$RULES/60-cg.rules"
        chmod 0644 "$RULES/60-cg.rules"
        rules_reload
        # Its adj first, then the move: the fork into the cgroup may be matched at once, before the exec, and a
        # process that sets its own adj after it was protected keeps what it set (spawn_in does it the other way).
        mkdir -p "$CG/$top/cg"
        # shellcheck disable=SC2016 # $1, $2 are the inner sh's
        sh -c 'echo "$2" >/proc/self/oom_score_adj && echo $$ >"$1/cgroup.procs" && exec sleep 300' spawn \
                "$CG/$top/cg" "$child_adj" &
        cg_pid=$!
        children+=("$cg_pid")
        wait_until "$BOUND" protected "$cg_pid" ||
                fail "PID $cg_pid in /$top/cg not protected by rule cg: $(grep -E "PID ${cg_pid}[ ):.]|rule:cg|Rules:" "$tmp/daemon.log")"
        # (sh) or (sleep): it may have been matched at its fork into the cgroup, before its exec.
        wait_until 5 grep -qE "Protected PID $cg_pid \((sh|sleep)\) through rule:cg" "$tmp/daemon.log" ||
                fail "no log line naming rule:cg"
        rm "$RULES/60-cg.rules"
        rules_reload
        wait_until 5 sh -c "[ \"\$(sed -n 's/^0:://p' /proc/$cg_pid/cgroup)\" = /$top/cg ]" ||
                fail "PID $cg_pid not restored when rule cg went away"
        ok "a rule by Cgroup= protects a process that execs in that cgroup; removed, it restores it"
}

test_child_of_a_protected_process_is_left_to_its_parent() {
        local parent child
        # A shell protected by hand, whose child execs the rule's program inside the shell's scope.
        spawn_in work "$child_adj" oomprules-wait "$WAIT" sh -c "$KEEP 303"
        parent=$spawned
        echo "setprotection $parent 1" >"$COMPAT/ctl"
        wait_until 5 protected "$parent" || fail "PID $parent not protected through ctl"
        wait_until 5 pgrep -P "$parent" -x oomprules-keep >/dev/null || fail "no child of $parent ran the rule's program"
        child=$(pgrep -P "$parent" -x oomprules-keep)
        children+=("$child")
        sleep 0.3
        assert_eq "$(cg_of "$child")" "/$slice_rel/oomprotect-$parent.scope" "cgroup of the child $child"
        ! log_has "A rule matched PID $child" || fail "the rule tried to protect $child inside its parent's scope"
        ok "a child of a protected process that execs the rule's program is left to its parent's protection"
}

test_unprotected_by_hand_is_not_protected_again_until_it_execs() {
        echo "setprotection $marker 0" >"$COMPAT/ctl"
        wait_until 5 sh -c "[ \"\$(sed -n 's/^0:://p' /proc/$marker/cgroup)\" = /$top/work ]" ||
                fail "setprotection $marker 0 did not restore it"
        rules_reload
        sleep 0.3
        assert_unchanged "$marker" work
        ok "a rule-made protection removed by hand is not made again by the rescan"
}

test_removed_rule_restores_its_processes_exactly_on_sighup() {
        rm "$RULES/50-keep.rules"
        rules_reload
        wait_until 5 sh -c "! grep -qE '^$pre ' '$COMPAT/status'" || fail "PID $pre still in status"
        assert_unchanged "$pre" pre
        if [[ -n ${exec_pid:-} ]]; then
                assert_unchanged "$exec_pid" work
        fi
        log_has "Restoring PID $pre: rule removed." || fail "no log line saying why PID $pre was restored"
        ok "a rule removed on SIGHUP restores its processes: original cgroup and oom_score_adj"
}

test_untrusted_rule_file_is_refused() {
        write_rule
        chmod 0664 "$RULES/50-keep.rules"
        rules_reload
        wait_until 5 log_has "50-keep.rules: Refused, writable by group or others" ||
                fail "no warning about the group-writable rule file"
        sleep 0.3
        assert_unchanged "$pre" pre
        ok "a group-writable rule file is refused with a warning, and nothing is protected by it"
}

test_check_config_validates_rules() {
        local rc=0
        printf '[Rule]\nName=bad\nComm=x\nOOMScoreAdjust=-5000\n' >"$RULES/60-bad.rules"
        chmod 0644 "$RULES/50-keep.rules" "$RULES/60-bad.rules"
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --check-config >"$tmp/check.out" 2>&1 || rc=$?
        assert_eq "$rc" 1 "exit status of --check-config with a bad rule"
        grep -qF "60-bad.rules:4: Invalid OOMScoreAdjust=-5000" "$tmp/check.out" ||
                fail "no warning naming file, line and key: $(cat "$tmp/check.out")"
        grep -qF "# rule keep ($RULES/50-keep.rules:2)" "$tmp/check.out" || fail "the good rule is not listed"
        rm "$RULES/60-bad.rules"
        ok "oomprotectd --check-config validates the rules: file, line and key of a bad one, exit status 1"
}

test_cli_rules_test_says_which_rule_and_why() {
        local out
        out=$("$OOMPROTECT_CTL" rules test "$pre" --rules-directory="$RULES")
        grep -qF "rule keep" <<<"$out" || fail "rules test $pre: $out"
        grep -qF "Executable=$tmp/bin/oomprules-kee? matched $KEEP" <<<"$out" || fail "rules test $pre: $out"
        out=$("$OOMPROTECT_CTL" rules test "$pre_other" --rules-directory="$RULES" --json=short) || true
        grep -qF '"rule":null' <<<"$out" || fail "rules test $pre_other --json: $out"
        out=$("$OOMPROTECT_CTL" rules --rules-directory="$RULES")
        grep -qE "keep .*$pre" <<<"$out" || fail "rules does not list PID $pre under keep: $out"
        ok "oomprotectctl rules and rules test PID, without the daemon: which rule, why, and what it matches now"
}

test_max_protected_memory_refuses_a_protect_over_the_ceiling() {
        local big
        # sleep holds some 100 KB of RSS: a 4K ceiling cannot take it, the default (50% of RAM) can.
        echo "MaxProtectedMemory=4K" >>"$tmp/oomprotectd.conf"
        rules_reload
        spawn_in ceiling "$child_adj" sleep sleep 300
        big=$spawned
        echo "setprotection $big 1" >"$COMPAT/ctl"
        wait_until 5 log_has "would bring what protected processes hold to more than MaxProtectedMemory=4.0K" ||
                fail "no refusal naming MaxProtectedMemory= in the log"
        assert_unchanged "$big" ceiling
        sed -i '/^MaxProtectedMemory=/d' "$tmp/oomprotectd.conf"
        rules_reload
        echo "setprotection $big 1" >"$COMPAT/ctl"
        wait_until 5 protected "$big" || fail "PID $big not protected under the default ceiling"
        ok "MaxProtectedMemory= refuses a protect that would pass it, with a reason, and changes nothing"
}

# Without the connector (here: a network namespace of its own, where the kernel's connector does not answer)
# the daemon says so and still applies the rules at start.
test_without_connector_the_scan_still_protects() {
        local rc=0 late
        if ! command -v unshare >/dev/null || ! unshare -n true 2>/dev/null; then
                echo "# SKIP no connector: cannot make a network namespace here (unshare -n)"
                return 0
        fi
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || rc=$?
        assert_eq "$rc" 0 "exit status of oomprotectd after SIGTERM"
        spawn_in late "$child_adj" oomprules-keep "$KEEP" 302
        late=$spawned
        : >"$tmp/daemon.log"
        unshare -n "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --no-bus --log-level=debug \
                >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 log_has "Rules: scanned" || fail "oomprotectd did not scan without the connector"
        log_has "Cannot subscribe to the kernel's process events connector" ||
                fail "no warning that exec matching is off: $(grep -F Rules "$tmp/daemon.log")"
        wait_until 5 protected "$late" || fail "PID $late not protected by the scan without the connector"
        ok "without the process events connector: a warning, and the scan at start still protects"
}

test_rule_removed_while_stopped_is_restored_at_start() {
        local rc=0
        wait_until 5 protected "$pre" || fail "PID $pre is not protected by rule keep before the restart"
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || rc=$?
        assert_eq "$rc" 0 "exit status of oomprotectd after SIGTERM"
        protected "$pre" || fail "PID $pre lost its protection when the daemon stopped (RestoreOnStop=no)"
        rm "$RULES/50-keep.rules"
        # No rule, so no scan: the restores are what to wait for.
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --no-bus --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 log_has "Restoring PID $pre: rule removed." || fail "PID $pre not restored at start"
        wait_until 5 sh -c "! grep -qE '^$pre ' '$COMPAT/status'" || fail "PID $pre still in status"
        assert_unchanged "$pre" pre
        ok "a rule removed while oomprotectd was stopped: its processes are restored at the next start"
}

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
write_rule
test_scan_at_start_protects_what_runs_already
if connector_live; then
        test_exec_of_matching_program_is_protected_within_bound
        test_exec_of_other_program_is_not_protected
        test_cgroup_rule_protects_what_execs_in_the_cgroup
        test_child_of_a_protected_process_is_left_to_its_parent
        test_unprotected_by_hand_is_not_protected_again_until_it_execs
else
        echo "# SKIP exec matching: $(grep -F "Cannot subscribe" "$tmp/daemon.log" | head -n 1)"
fi
test_removed_rule_restores_its_processes_exactly_on_sighup
test_untrusted_rule_file_is_refused
test_check_config_validates_rules
test_cli_rules_test_says_which_rule_and_why
test_max_protected_memory_refuses_a_protect_over_the_ceiling
test_without_connector_the_scan_still_protects
test_rule_removed_while_stopped_is_restored_at_start
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=''
assert_eq "$rc" 0 "exit status of oomprotectd after SIGTERM (sanitizers included)"
echo "# all $n_ok passed"
