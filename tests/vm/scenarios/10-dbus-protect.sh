#!/bin/bash
# DESIGN.md 1 and 3, over D-Bus: oomprotectd.service started by systemd takes
# org.oomprotect; Protect(u) moves a process into
# protected.slice/oomprotect-<pid>.scope with memory.min and adj -1000;
# Unprotect(u) restores the original cgroup and adj exactly; bad PIDs are
# refused and change nothing.
# vm-timeout: 90
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

daemon_config_default
daemon_fresh_start

expect_eq "$OP_UNIT Type" "$(unit_prop "$OP_UNIT" Type)" notify
expect_eq "$OP_UNIT BusName" "$(unit_prop "$OP_UNIT" BusName)" org.oomprotect
expect_eq "$OP_UNIT ActiveState" "$(unit_prop "$OP_UNIT" ActiveState)" active
backend=$(op_prop Backend)
info "daemon: version $(op_prop Version), backend $backend, slice $(op_prop Slice)"
# DESIGN.md 2: under systemd, Backend=auto is the systemd backend.
[[ $backend == systemd ]] || defer_fail "Backend property is '$backend'; under systemd auto must pick systemd"
expect_eq "Slice property" "$(op_prop Slice)" protected.slice

start_sleeper 123
pid=$SLEEPER_PID
orig_cg=$(cgroup_of "$pid")
info "sleep $pid in $orig_cg, oom_score_adj 123"
expect_eq "IsProtected before Protect" "$(op_is_protected "$pid")" false

op Protect u "$pid" || fail "Protect($pid) failed"
assert_protected "$pid"
scope=oomprotect-$pid.scope
if [[ $backend == systemd ]]; then
        expect_eq "$scope ActiveState" "$(unit_prop "$scope" ActiveState)" active
        expect_eq "$scope Slice" "$(unit_prop "$scope" Slice)" protected.slice
        expect_eq "$scope MemoryMin (systemctl show)" "$(unit_prop "$scope" MemoryMin)" 16777216
fi
scope_min=$(cat "$CG/protected.slice/$scope/memory.min")
expect_eq "memory.min of $scope" "$scope_min" 16777216
# The kernel caps a child's protection by its ancestors: the slice must carry
# at least the sum of its scopes.
slice_min=$(cat "$CG/protected.slice/memory.min")
((slice_min >= scope_min)) || fail "protected.slice memory.min $slice_min < scope's $scope_min"
expect_eq "ProtectedCount" "$(op_prop ProtectedCount)" 1
info "protected: $(cgroup_of "$pid"), adj $(adj_of "$pid"), scope memory.min $scope_min, slice memory.min $slice_min"

op Unprotect u "$pid" || fail "Unprotect($pid) failed"
assert_restored "$pid" "$orig_cg" 123
expect_eq "ProtectedCount after Unprotect" "$(op_prop ProtectedCount)" 0
if op Unprotect u "$pid" >/dev/null 2>&1; then
        fail "a second Unprotect($pid) succeeded; expected a NotProtected error"
fi
info "restored: $(cgroup_of "$pid"), adj $(adj_of "$pid")"

# Refusals: PID 1, a PID that does not exist, the daemon itself.
gone=$(dead_pid)
daemon_pid=$(unit_prop "$OP_UNIT" MainPID)
pid1_adj=$(adj_of 1)
for bad in 1 "$gone" "$daemon_pid"; do
        if op Protect u "$bad" >/dev/null 2>&1; then
                fail "Protect($bad) succeeded; it must be refused"
        fi
done
expect_eq "adj of PID 1 after refused Protect" "$(adj_of 1)" "$pid1_adj"
[[ -z $(op_list_pids) ]] || fail "ListProtected not empty after refused calls: $(op_list_pids | tr '\n' ' ')"

# SetSelfProtection (issue 10): the caller is proven by a pidfd, by holding a socket connected to the bus
# (the shipped unit's CAP_SYS_PTRACE and AF_NETLINK let the daemon look), and by the bus asked again.
# It serves root and a member of AllowGroup=; busctl protects itself, and its exit ends the protection.
gid=$(getent group oomprotect | cut -d: -f3)
busctl --system --timeout=10 call "${OP_BUS[@]}" SetSelfProtection b true ||
        defer_fail "SetSelfProtection(true) as root failed"
setpriv --reuid=65534 --regid=65534 --groups="$gid" busctl --system --timeout=10 call "${OP_BUS[@]}" \
        SetSelfProtection b true || defer_fail "SetSelfProtection(true) as a member of AllowGroup= failed"
# shellcheck disable=SC2317 # called through wait_until
none_protected() { [[ $(op_prop ProtectedCount) == 0 ]]; }
wait_until 10 none_protected || defer_fail "busctl's self-protections outlived it"

# The proof under the shipped sandbox: a connection whose connecting process exited, its PID given to a
# newcomer that holds no bus socket (ns_last_pid), is refused; were the descriptors hidden from the daemon,
# the newcomer would be protected for a call it never made.
for try in 1 2 3; do # another process may take the exited PID first: then again
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket \
                /usr/local/lib/oomprotect-vm/bin/bus-helper self-orphan reuse 2>&1) || defer_fail "bus-helper: $out"
        newcomer=$(sed -n 's/^newcomer=//p' <<<"$out")
        [[ $newcomer == missed ]] || break
        info "try $try: another process took the exited PID first"
done
if [[ $newcomer =~ ^[0-9]+$ ]]; then
        expect_eq "SetSelfProtection when the connecting PID names a newcomer" \
                "$(sed -n 's/^set-orphan=//p' <<<"$out" | tail -n 1)" org.oomprotect.Error.InvalidProcess
        expect_eq "the newcomer's cgroup and adj" "$(sed -n 's/^newcomer-unchanged=//p' <<<"$out")" yes
        info "SetSelfProtection on a connection whose PID now names newcomer $newcomer: refused, newcomer untouched"
else
        defer_fail "the PID-reuse case of SetSelfProtection was not tried: $out"
fi
wait_until 10 none_protected || defer_fail "a refused SetSelfProtection left a protection"

pass_unless_deferred "Protect moved $pid into protected.slice/$scope (adj -1000, memory.min 16M); Unprotect restored it exactly; SetSelfProtection served root and a member, refused a newcomer at an exited caller's PID"
