#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Rules by Unit= through unit protection (issue 16): a rule whose only match
# key is Unit= with an exact unit name protects that unit by name (in place,
# its restarts followed), not its processes one by one. The real oomprotectd
# on the cgroupfs backend, where a unit name means the cgroup of that name
# below slices (as test-unit-names.sh), a private dbus-daemon for
# ListProtectedUnits and UnprotectUnit, real processes in a real cgroup2
# subtree, the kernel's process events connector. systemd's own units are the
# VM tier's (tests/vm/scenarios/73-rules.sh).
#
# Needs root, a writable cgroup2 mount, dbus-daemon and busctl (exits 77 with
# the reason otherwise). Without the connector the parts that need it (a unit
# that starts after the rule) are skipped with a printed reason.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl
find_cgroup2

sandbox_slice oomptestrunits$$
tmp=$(mktemp -d /tmp/oomprotect-rules-units.XXXXXX)
chmod 0755 "$tmp"
RULES=$tmp/rules.d
web=$name-web.service
late=$name-late.service
globbed=$name-g1.service
dbus_pid='' daemon_pid=''
children=()
# The time a unit that starts after the rule has to get protected: generous for ASan on a loaded machine.
BOUND=2

sandbox_traps daemon_pid dbus_pid

protect_adjs

mkdir -m 0755 "$RULES" "$tmp/state"
cgroupfs_config "$tmp/state" >"$tmp/oomprotectd.conf"
printf 'OOMScoreAdjust=%s\nMemoryMinBudget=64M\nRuleDirectories=%s\n' "$protect_adj" "$RULES" >>"$tmp/oomprotectd.conf"

# rule FILE NAME UNIT [KEY=VALUE...]: a rule file of its own, root's and 0644.
rule() {
        local file=$RULES/$1.rules
        printf '[Rule]\nName=%s\nUnit=%s\n' "$2" "$3" >"$file"
        shift 3
        (($#)) && printf '%s\n' "$@" >>"$file"
        chmod 0644 "$file"
}
# unit_listed UNIT SOURCE: ListProtectedUnits has UNIT, its cgroup where we made it, with source SOURCE.
unit_listed() {
        units_list | grep -qE "\[\"$1\",\"/$top/$1\",(true|false),[0-9]+,[0-9]+,-?[0-9]+,[0-9]+,\"$2\""
}
unit_not_listed() {
        ! units_list | grep -qF "\"$1\""
}
# pid_source PID: the source ListProtected gives PID ("" if not listed).
pid_source() {
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected |
                python3 -c 'import json, sys
pid = int(sys.argv[1])
print(next((p[8] for p in json.load(sys.stdin)["data"][0] if p[0] == pid), ""))' "$1"
}

source_is() { # PID SOURCE
        [[ $(pid_source "$1") == "$2" ]]
}

# unit_start UNIT: one process in <top>/UNIT, as PID 1 starts one: its adj first, into the cgroup, then the
# exec of its program (a copy of sleep of its own comm); $main.
unit_start() {
        mkdir -p "$CG/$top/$1"
        # shellcheck disable=SC2016 # $1, $2 are the inner sh's
        sh -c 'echo "$2" >/proc/self/oom_score_adj && echo $$ >"$1/cgroup.procs" && exec "$3" 1000' unit \
                "$CG/$top/$1" "$child_adj" "$tmp/oomprunit" &
        main=$!
        children+=("$main")
        wait_until 5 is_comm "$main" oomprunit || fail "the process of $1 did not start"
}
# unit_stop UNIT PID: what systemd does on stop: its processes (PID, which we started) killed, its cgroup removed.
unit_stop() {
        echo 1 >"$CG/$top/$1/cgroup.kill"
        wait "$2" 2>/dev/null || true
        rmdir_killed "$CG/$top/$1"
}

cp "$(command -v sleep)" "$tmp/oomprunit"
chmod 0755 "$tmp/oomprunit"

test_scan_at_start_protects_a_running_unit_by_name() {
        rule 50-web web "$web"
        unit_start "$web"
        web_pid=$main
        sandbox_daemon "$tmp/oomprotectd.conf"
        wait_until 5 unit_listed "$web" rule:web || fail "$web is not protected by name: $(units_list)"
        wait_until 5 adj_is "$web_pid" "$protect_adj" || fail "PID $web_pid of $web has adj $(adj_of "$web_pid")"
        assert_eq "$(cg_of "$web_pid")" "/$top/$web" "cgroup of $web_pid (in place)"
        assert_eq "$(pid_source "$web_pid")" rule:web "ListProtected's source for PID $web_pid"
        log_has "Protected unit $web through rule:web (seen at PID $web_pid), in place in /$top/$web" ||
                fail "no log line naming the unit and rule:web"
        ok "the scan at start protects a running unit by name (source rule:web), in place, not its PIDs one by one"
}

test_restart_of_the_unit_is_followed_by_its_protection() {
        unit_stop "$web" "$web_pid"
        unit_start "$web"
        wait_until 5 adj_is "$main" "$protect_adj" || fail "the restarted $web's PID $main has adj $(adj_of "$main")"
        unit_listed "$web" rule:web || fail "$web is no longer listed after its restart: $(units_list)"
        assert_eq "$(units_list | grep -o "\"$web\"" | wc -l)" 1 "records of $web after its restart"
        web_pid=$main
        ok "a restart of the rule's unit (cgroup removed and made again) keeps one protection, the new process gets it"
}

test_unit_that_starts_later_is_protected_at_its_first_exec() {
        local start end
        rule 60-late late "$late"
        rules_reload
        unit_not_listed "$late" || fail "$late is listed before it runs"
        start=$(date +%s%N)
        unit_start "$late"
        late_pid=$main
        wait_until "$BOUND" unit_listed "$late" rule:late ||
                fail "$late started after its rule and was not protected within $BOUND s: $(units_list)"
        wait_until "$BOUND" adj_is "$late_pid" "$protect_adj" || fail "PID $late_pid of $late: adj $(adj_of "$late_pid")"
        end=$(date +%s%N)
        echo "# $late protected $(((end - start) / 1000000)) ms after its start here (polling every 20 ms)"
        ok "a unit that starts after its rule is protected by name when its first process is seen"
}

test_unprotect_by_hand_opts_the_unit_out_until_it_restarts() {
        mgr UnprotectUnit s "$web" >/dev/null || fail "UnprotectUnit $web failed"
        wait_until 5 adj_is "$web_pid" "$child_adj" || fail "UnprotectUnit did not give $web_pid its adj back"
        rules_reload
        sleep 0.3
        unit_not_listed "$web" || fail "the reload's scan protected $web again after UnprotectUnit: $(units_list)"
        adj_is "$web_pid" "$child_adj" || fail "PID $web_pid has adj $(adj_of "$web_pid") after the reload"
        log_has "$web was protected by rule:web and is now unprotected (unprotected)" || fail "no opt-out log line"
        unit_stop "$web" "$web_pid"
        unit_start "$web"
        web_pid=$main
        wait_until "$BOUND" unit_listed "$web" rule:web || fail "$web restarted and was not protected again"
        wait_until 5 adj_is "$web_pid" "$protect_adj" || fail "restarted $web's PID $web_pid: adj $(adj_of "$web_pid")"
        ok "UnprotectUnit of a rule-made unit: the rescan leaves it alone; once it runs in a new cgroup the rule applies again"
}

test_changed_rule_ends_the_opt_out_and_applies_its_settings() {
        mgr UnprotectUnit s "$web" >/dev/null || fail "UnprotectUnit $web failed"
        wait_until 5 adj_is "$web_pid" "$child_adj" || fail "UnprotectUnit did not give $web_pid its adj back"
        rule 50-web web "$web" "OOMScoreAdjust=$custom_adj"
        rules_reload
        wait_until 5 unit_listed "$web" rule:web || fail "the changed rule did not protect $web again: $(units_list)"
        wait_until 5 adj_is "$web_pid" "$custom_adj" || fail "PID $web_pid has adj $(adj_of "$web_pid"), not $custom_adj"
        # Changed again while it is protected: restored, then protected with the new settings.
        rule 50-web web "$web"
        rules_reload
        wait_until 5 log_has "Restoring unit $web: rule changed." || fail "no restore of $web for its changed rule"
        wait_until 5 adj_is "$web_pid" "$protect_adj" || fail "PID $web_pid has adj $(adj_of "$web_pid") after the change"
        wait_until 5 unit_listed "$web" rule:web || fail "$web not protected again after the change: $(units_list)"
        ok "a changed rule ends the unit's opt-out and its new settings apply (restored, then protected again)"
}

test_glob_keeps_protecting_process_by_process() {
        local g
        rule 70-glob glob "$name-g*.service"
        rules_reload
        unit_start "$globbed"
        g=$main
        wait_until "$BOUND" source_is "$g" rule:glob ||
                fail "PID $g of $globbed not protected by the glob rule: source \"$(pid_source "$g")\""
        unit_not_listed "$globbed" || fail "a glob rule protected $globbed by name: $(units_list)"
        rm "$RULES/70-glob.rules"
        rules_reload
        wait_until 5 adj_is "$g" "$child_adj" || fail "PID $g not restored when the glob rule went away"
        ok "a rule by a Unit= glob protects the unit's processes one by one, as before"
}

test_removed_rule_unprotects_its_unit_exactly() {
        rm "$RULES/50-web.rules" "$RULES/60-late.rules"
        rules_reload
        wait_until 5 log_has "Restoring unit $web: rule removed." || fail "no restore of $web when its rule went away"
        wait_until 5 unit_not_listed "$web" || fail "$web still listed: $(units_list)"
        wait_until 5 unit_not_listed "$late" || fail "$late still listed: $(units_list)"
        wait_until 5 adj_is "$web_pid" "$child_adj" || fail "PID $web_pid has adj $(adj_of "$web_pid"), not $child_adj"
        if [[ -n ${late_pid:-} ]]; then
                adj_is "$late_pid" "$child_adj" || fail "PID $late_pid has adj $(adj_of "$late_pid"), not $child_adj"
        fi
        assert_eq "$(cg_of "$web_pid")" "/$top/$web" "cgroup of $web_pid"
        ok "a rule removed on SIGHUP unprotects its units exactly: no record, every process's own oom_score_adj"
}

# While an UnprotectUnit's restore settles (its hold writes slowed down here to 0.6 s each), a process the unit
# starts must not get the unit protected again by its rule: the unprotect would answer success and the unit
# stay protected. The daemon is started again with the delay for this.
test_a_fork_during_unprotect_does_not_protect_the_unit_again() {
        local pid
        expect_clean_sigterm
        rule 50-web web "$web"
        OOMPROTECT_TEST_BACKEND_DELAY_USEC=600000 sandbox_daemon "$tmp/oomprotectd.conf"
        wait_until 10 unit_listed "$web" rule:web || fail "$web is not protected by its rule again: $(units_list)"
        wait_until 10 adj_is "$web_pid" "$protect_adj" || fail "PID $web_pid of $web has adj $(adj_of "$web_pid")"
        sleep 1.5 # the protect's last hold writes
        mgr UnprotectUnit s "$web" >/dev/null &
        pid=$!
        sleep 0.2 # the restore is under way
        # shellcheck disable=SC2016 # $1 and $2 are the inner sh's
        sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" 1000' fork "$CG/$top/$web" "$tmp/oomprunit" &
        children+=("$!")
        wait "$pid" || fail "UnprotectUnit $web failed"
        sleep 1.5 # a protect started meanwhile would be done by now
        unit_not_listed "$web" || fail "a process started during UnprotectUnit protected $web again: $(units_list)"
        ok "a process started while UnprotectUnit settles does not get its unit protected again by the rule"
}

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
start_private_bus "$tmp"
test_scan_at_start_protects_a_running_unit_by_name
test_restart_of_the_unit_is_followed_by_its_protection
if ! log_has "Cannot subscribe to the kernel's process events connector"; then
        test_unit_that_starts_later_is_protected_at_its_first_exec
        test_unprotect_by_hand_opts_the_unit_out_until_it_restarts
        test_changed_rule_ends_the_opt_out_and_applies_its_settings
        test_glob_keeps_protecting_process_by_process
else
        echo "# SKIP units that start after their rule: $(grep -F "Cannot subscribe" "$tmp/daemon.log" | head -n 1)"
fi
test_removed_rule_unprotects_its_unit_exactly
if ! log_has "Cannot subscribe to the kernel's process events connector"; then
        test_a_fork_during_unprotect_does_not_protect_the_unit_again
fi
expect_clean_sigterm
echo "# all $n_ok passed"
