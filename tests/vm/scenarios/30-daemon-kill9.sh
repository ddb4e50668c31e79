#!/bin/bash
# DESIGN.md 1.5: a kill -9 of the daemon loses nothing. Two processes are
# protected, the daemon is SIGKILLed through systemd, and after the restart
# both are still protected (scope, adj, IsProtected, ListProtected); then
# Unprotect restores each exactly.
# vm-timeout: 120
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

daemon_config_default
daemon_fresh_start

start_sleeper 123
a=$SLEEPER_PID
start_sleeper 456
b=$SLEEPER_PID
a_cg=$(cgroup_of "$a")
b_cg=$(cgroup_of "$b")

op Protect u "$a" || fail "Protect($a) failed"
op Protect u "$b" || fail "Protect($b) failed"
assert_protected "$a"
assert_protected "$b"
[[ -f $OP_STATE_FILE ]] || fail "no state file $OP_STATE_FILE after Protect"
state_version >/dev/null || fail "$OP_STATE_FILE has no version field"
for p in "$a" "$b"; do
        state_pids | grep -qx "$p" || fail "$OP_STATE_FILE holds no record of $p (it holds: $(state_pids | tr '\n' ' '))"
done
info "protected $a (adj was 123) and $b (adj was 456); state in $OP_STATE_FILE"

old_main=$(unit_prop "$OP_UNIT" MainPID)
systemctl kill -s KILL "$OP_UNIT" || fail "systemctl kill -s KILL $OP_UNIT failed"
info "sent SIGKILL to $OP_UNIT (MainPID $old_main)"
# Nothing may change while no daemon runs.
for p in "$a" "$b"; do
        expect_eq "cgroup of $p right after the kill" "$(cgroup_of "$p")" "$(scope_path "$p")"
        expect_eq "adj of $p right after the kill" "$(adj_of "$p")" "$ADJ_PROTECTED"
done

# shellcheck disable=SC2317 # called through wait_until
restarted() {
        local m
        m=$(unit_prop "$OP_UNIT" MainPID)
        [[ $m != 0 && $m != "$old_main" ]] && bus_has_name org.oomprotect
}
if wait_until 10 restarted; then
        info "systemd restarted it (MainPID $(unit_prop "$OP_UNIT" MainPID))"
else
        info "systemd did not restart it within 10 s (Restart= not set?); starting it"
        daemon_start
fi

for p in "$a" "$b"; do
        assert_protected "$p"
done
expect_eq "ProtectedCount after restart" "$(op_prop ProtectedCount)" 2
info "both still protected after the restart"

op Unprotect u "$a" || fail "Unprotect($a) failed after restart"
op Unprotect u "$b" || fail "Unprotect($b) failed after restart"
assert_restored "$a" "$a_cg" 123
assert_restored "$b" "$b_cg" 456

pass "after kill -9 + restart both protections survived; Unprotect restored both exactly"
