#!/bin/bash
# DESIGN.md 1.5 for in-place protection: a process of a service is protected
# in place (its unit and system.slice raised), the daemon is stopped, the
# process dies while no daemon runs, and the daemon is SIGKILLed. The
# restarted daemon puts the raised values back: the service's MemoryMin=,
# memory.min and ManagedOOMPreference=, and system.slice's memory.min.
# vm-timeout: 120
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

daemon_config_default
daemon_fresh_start

svc=op31-svc-$$.service
systemd-run --quiet --unit="$svc" -p MemoryMax=256M sh -c 'sleep 100031 & exec sleep 100030' ||
        fail "systemd-run $svc failed"
on_exit "systemctl stop $svc"
wait_until 5 pgrep -f 'sleep 100031' >/dev/null || fail "the service's second process never started"
child=$(pgrep -f 'sleep 100031')
svc_cg=$(cgroup_of "$child")
slice_cg=$(slice_path system.slice)
orig_svc_min=$(cat "$CG$svc_cg/memory.min")
orig_slice_min=$(cat "$CG$slice_cg/memory.min")
orig_pref=$(unit_prop "$svc" ManagedOOMPreference)
info "$svc: child $child in $svc_cg, memory.min $orig_svc_min, ManagedOOMPreference $orig_pref; system.slice memory.min $orig_slice_min"

op Protect u "$child" >/dev/null || fail "Protect($child) failed"
assert_protected_in_place "$child" "$svc_cg"
raised=$(cat "$CG$svc_cg/memory.min")
((raised > orig_svc_min)) || fail "$svc memory.min $raised not raised above $orig_svc_min"
info "protected in place: $svc memory.min $raised, system.slice $(cat "$CG$slice_cg/memory.min")"

# The process dies while the daemon cannot see it, then the daemon is killed.
daemon=$(unit_prop "$OP_UNIT" MainPID)
kill -STOP "$daemon"
kill -KILL "$child"
wait_until 5 gone "$child" || fail "$child did not die"
systemctl kill -s KILL "$OP_UNIT" || fail "systemctl kill -s KILL $OP_UNIT failed"
# shellcheck disable=SC2317 # called through wait_until
restarted() {
        local m
        m=$(unit_prop "$OP_UNIT" MainPID)
        [[ $m != 0 && $m != "$daemon" ]] && bus_has_name org.oomprotect
}
wait_until 20 restarted || { daemon_journal; fail "$OP_UNIT was not restarted after SIGKILL"; }

# shellcheck disable=SC2317 # called through wait_until
svc_back() { [[ $(cat "$CG$svc_cg/memory.min") == "$orig_svc_min" ]]; }
wait_until 10 svc_back || { daemon_journal; fail "$svc memory.min $(cat "$CG$svc_cg/memory.min"), not back to $orig_svc_min"; }
expect_eq "system.slice memory.min after the restart" "$(cat "$CG$slice_cg/memory.min")" "$orig_slice_min"
expect_eq "$svc ManagedOOMPreference after the restart" "$(unit_prop "$svc" ManagedOOMPreference)" "$orig_pref"
expect_eq "ProtectedCount after the restart" "$(op_prop ProtectedCount)" 0
pass "the restarted daemon put back what a process that died while it was down had raised"
