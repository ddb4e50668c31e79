#!/bin/bash
# Issue 15: `oomprotectctl doctor --json` on real chains, with earlyoom and
# systemd-oomd installed and running: an unprotected process in a unit that
# systemd-oomd watches (ManagedOOMMemoryPressure=kill) is spared by no
# killer; a process oomprotectd protects is spared by the kernel, earlyoom
# and systemd-oomd (user.oomd_omit on its root-owned scope), with its scope's
# memory.min effective; a unit's MemoryMin= under a slice without one is
# capped to nothing and the slice is named, until the slice gets its own;
# earlyoom -g breaks the protection of a process sharing its process group.
# Then the marks: trusted.oomd_avoid and user.oomd_omit on a moved scope, gone
# with it; trusted.oomd_avoid on an in-place cgroup inside a delegated unit,
# its exact original back after Unprotect; none on a unit's own cgroup.
# vm-timeout: 180
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v earlyoom >/dev/null || fail "earlyoom is not in the guest image (VM_PACKAGES)"
[[ -x /lib/systemd/systemd-oomd ]] || fail "systemd-oomd is not in the guest image (VM_PACKAGES)"
cp /etc/default/earlyoom /tmp/earlyoom.default
on_exit "cp /tmp/earlyoom.default /etc/default/earlyoom; systemctl stop earlyoom.service systemd-oomd.service systemd-oomd.socket"
systemctl start earlyoom.service systemd-oomd.service || fail "cannot start earlyoom and systemd-oomd"
wait_until 10 pgrep -x systemd-oomd >/dev/null || fail "systemd-oomd does not run"
wait_until 10 pgrep -x earlyoom >/dev/null || fail "earlyoom does not run"
daemon_config_default
daemon_fresh_start

doctor() { oomprotectctl doctor "$@" --json; }
verdict() { jq -r --arg k "$2" '.killers[] | select(.name == $k) | .verdict' <<<"$1"; }
why() { jq -r --arg k "$2" '.killers[] | select(.name == $k) | .why' <<<"$1"; }
expect_verdicts() { # JSON WHAT kernel systemd-oomd earlyoom nohang oomd
        local j=$1 what=$2 k i=3
        for k in kernel systemd-oomd earlyoom nohang oomd; do
                expect_eq "$what: $k's verdict ($(why "$j" "$k"))" "$(verdict "$j" "$k")" "${!i}"
                i=$((i + 1))
        done
}

j=$(doctor)
expect_eq "cgroup mode" "$(jq -r .host.cgroup_mode <<<"$j")" unified
expect_eq "memory controller on v2" "$(jq -r .host.memory_controller_v2 <<<"$j")" true
info "memory_recursiveprot: $(jq -r .host.memory_recursiveprot <<<"$j")"

# 1. Unprotected, in a unit systemd-oomd watches.
systemd-run --quiet --unit=doctor-plain.service -p ManagedOOMMemoryPressure=kill sleep 100000 ||
        fail "systemd-run doctor-plain.service failed"
on_exit "systemctl stop doctor-plain.service"
wait_until 5 test "$(unit_prop doctor-plain.service MainPID)" != 0 || fail "doctor-plain.service has no MainPID"
plain=$(unit_prop doctor-plain.service MainPID)
j=$(doctor "$plain")
expect_verdicts "$j" "unprotected $plain" not-honoured not-honoured not-honoured not-running not-running
[[ $(why "$j" systemd-oomd) == *"doctor-plain.service (ManagedOOMMemoryPressure=kill)"* ]] ||
        fail "systemd-oomd's verdict does not name doctor-plain.service: $(why "$j" systemd-oomd)"
expect_eq "cgroup of $plain" "$(jq -r .process.cgroup <<<"$j")" /system.slice/doctor-plain.service
rank=$(jq -r .process.oom_rank <<<"$j") procs=$(jq -r .process.processes <<<"$j")
((rank >= 1 && rank <= procs && procs > 10)) || fail "rank $rank of $procs processes makes no sense"
expect_eq "doctor by unit name finds its process" "$(doctor doctor-plain.service | jq -r .process.pid)" "$plain"
info "unprotected $plain: rank $rank of $procs, spared by no killer"

# 2. Protected by oomprotectd. A sleep protected after it started keeps its
# pages charged to its old cgroup: doctor must say so.
start_sleeper 0
moved=$SLEEPER_PID
oomprotectctl protect "$moved" --min 32M >/dev/null || fail "oomprotectctl protect $moved failed"
j=$(doctor "$moved")
expect_verdicts "$j" "protected $moved" honoured honoured honoured not-running not-running
if [[ $(jq -r '.chain.links[-1].memory_current' <<<"$j") == 0 ]]; then
        expect_eq "what caps a scope holding nothing" "$(jq -r .chain.min_cap_reason <<<"$j")" nothing-charged
        jq -r '.advice[]' <<<"$j" | grep -q 'charged to other cgroups' ||
                fail "no word about the memory $moved left charged to its old cgroup"
fi
# A holder whose memory is charged after the protection: `tail` keeps what it
# reads from a FIFO that never sees a newline (as in 40-oom-real).
mkfifo "$PWD/hold.fifo"
hold=$( ("${IN_SCOPE[@]}" tail >/dev/null 2>&1 <"$PWD/hold.fifo" & echo $!)) # stdout first: the open blocks
exec {hfd}>"$PWD/hold.fifo"
on_exit "kill -KILL $hold"
wait_until 5 comm_is "$hold" tail || fail "the holder $hold did not start"
oomprotectctl protect "$hold" --min 32M >/dev/null || fail "oomprotectctl protect $hold failed"
head -c $((16 << 20)) /dev/zero >&"$hfd"
j=$(doctor "$hold")
expect_verdicts "$j" "protected $hold" honoured honoured honoured not-running not-running
leaf=$(jq -c '.chain.links[-1]' <<<"$j")
expect_eq "last link" "$(jq -r .cgroup <<<"$leaf")" "$(scope_path "$hold")"
expect_eq "memory.min of the scope" "$(jq -r .memory_min <<<"$leaf")" $((32 << 20))
current=$(jq -r .memory_current <<<"$leaf")
((current >= 16 << 20 && current < 32 << 20)) || fail "the holder's scope holds $current bytes, expected 16M to 32M"
# It holds less than its memory.min: all of it is protected, nothing caps it.
expect_eq "effective memory.min of the scope" "$(jq -r .effective_min <<<"$leaf")" "$current"
expect_eq "what caps the scope" "$(jq -r .chain.min_cap_reason <<<"$j")" none
info "protected $hold: effective memory.min $current B of 32M, spared by the kernel, systemd-oomd and earlyoom"

# 3. MemoryMin= on a unit in a slice that has none: the kernel grants nothing.
systemd-run --quiet --unit=doctor-capped.service -p Slice=doctorcap.slice -p MemoryMin=64M sleep 100000 ||
        fail "systemd-run doctor-capped.service failed"
on_exit "systemctl stop doctor-capped.service doctorcap.slice"
wait_until 5 test "$(unit_prop doctor-capped.service MainPID)" != 0 || fail "doctor-capped.service has no MainPID"
capped=$(unit_prop doctor-capped.service MainPID)
j=$(doctor "$capped")
expect_eq "effective memory.min under doctorcap.slice" "$(jq -r '.chain.links[-1].effective_min' <<<"$j")" 0
expect_eq "the link that caps it" "$(jq -r .chain.min_capped_by <<<"$j")" /doctorcap.slice
expect_eq "why it caps" "$(jq -r .chain.min_cap_reason <<<"$j")" setting
jq -r '.advice[]' <<<"$j" | grep -q 'raise memory.min of /doctorcap.slice' || fail "no advice to raise /doctorcap.slice"
systemctl set-property --runtime doctorcap.slice MemoryMin=128M || fail "set-property doctorcap.slice failed"
j=$(doctor "$capped")
leaf=$(jq -c '.chain.links[-1]' <<<"$j")
expect_eq "effective memory.min once the slice has 128M" "$(jq -r .effective_min <<<"$leaf")" \
        "$(jq -r .memory_current <<<"$leaf")"
expect_eq "what caps it then" "$(jq -r .chain.min_cap_reason <<<"$j")" none
info "doctorcap.slice without MemoryMin= capped $capped to 0 and was named; with 128M, nothing caps it"

# 4. earlyoom -g kills a victim's whole process group: the protected holder shares ours.
echo 'EARLYOOM_ARGS="-r 3600 -g"' >/etc/default/earlyoom
systemctl restart earlyoom.service || fail "earlyoom does not restart with -g"
wait_until 10 pgrep -x earlyoom >/dev/null || fail "earlyoom -g does not run"
j=$(doctor "$hold")
expect_eq "earlyoom -g on a protected process sharing its group" "$(verdict "$j" earlyoom)" not-honoured
[[ $(why "$j" earlyoom) == *-g* ]] || fail "earlyoom's verdict does not mention -g: $(why "$j" earlyoom)"
info "text report:"
oomprotectctl doctor "$hold" | sed 's/^/  | /'
# 5. The marks the daemon writes, read with guest-bin's cgroup-xattr and by doctor (.process.marks).
readonly XATTR=/usr/local/lib/oomprotect-vm/bin/cgroup-xattr
mark() { "$XATTR" get "$CG$1" "$2"; } # CGROUP NAME: hex, or "absent"
doctor_mark() { doctor "$1" | jq -r --arg m "$2" '.process.marks[$m]'; }
# The moved holder's scope: facebook oomd's trusted.oomd_avoid and systemd-oomd's user.oomd_omit.
scope=$(scope_path "$hold")
expect_eq "trusted.oomd_avoid of $scope" "$(mark "$scope" trusted.oomd_avoid)" 31
expect_eq "user.oomd_omit of $scope" "$(mark "$scope" user.oomd_omit)" 31
expect_eq "doctor reads trusted.oomd_avoid of $hold" "$(doctor_mark "$hold" trusted.oomd_avoid)" true
oomprotectctl unprotect "$hold" >/dev/null || fail "oomprotectctl unprotect $hold failed"
wait_until 10 test ! -d "$CG$scope" || fail "$scope is still there after unprotect"
expect_eq "trusted.oomd_avoid of $hold's cgroup $(cgroup_of "$hold") after unprotect" \
        "$(mark "$(cgroup_of "$hold")" trusted.oomd_avoid)" absent
expect_eq "doctor reads trusted.oomd_avoid of $hold after unprotect" "$(doctor_mark "$hold" trusted.oomd_avoid)" false
info "moved: $scope carried trusted.oomd_avoid=1 and user.oomd_omit=1; after unprotect $hold's cgroup has no mark"

# In place inside a delegated unit (a cgroup PID 1 does not write): marked, then its exact original back.
systemd-run --quiet --unit=doctor-deleg.service -p Delegate=yes sleep 100000 ||
        fail "systemd-run doctor-deleg.service failed"
on_exit "systemctl stop doctor-deleg.service"
wait_until 5 test "$(unit_prop doctor-deleg.service MainPID)" != 0 || fail "doctor-deleg.service has no MainPID"
deleg=$(unit_prop doctor-deleg.service MainPID)
# What a delegate does with its subtree: its process into a child, then the memory controller for it.
payload=/system.slice/doctor-deleg.service/payload
mkdir "$CG$payload" || fail "cannot make $payload"
echo "$deleg" >"$CG$payload/cgroup.procs" || fail "cannot move $deleg into $payload"
grep -qw memory "$CG/system.slice/doctor-deleg.service/cgroup.subtree_control" ||
        echo +memory >"$CG/system.slice/doctor-deleg.service/cgroup.subtree_control" ||
        fail "cannot enable the memory controller below doctor-deleg.service: $(cat "$CG/system.slice/doctor-deleg.service/cgroup.controllers")"
expect_eq "cgroup of $deleg" "$(cgroup_of "$deleg")" "$payload"
"$XATTR" set "$CG$payload" trusted.oomd_avoid 6f72696700ff || fail "cannot set trusted.oomd_avoid on $payload"
oomprotectctl protect --in-place "$deleg" >/dev/null || fail "oomprotectctl protect --in-place $deleg failed"
expect_eq "cgroup of $deleg protected in place" "$(cgroup_of "$deleg")" "$payload"
expect_eq "trusted.oomd_avoid of $payload while protected" "$(mark "$payload" trusted.oomd_avoid)" 31
expect_eq "doctor reads trusted.oomd_avoid of $deleg" "$(doctor_mark "$deleg" trusted.oomd_avoid)" true
oomprotectctl unprotect "$deleg" >/dev/null || fail "oomprotectctl unprotect $deleg failed"
expect_eq "trusted.oomd_avoid of $payload after unprotect" "$(mark "$payload" trusted.oomd_avoid)" 6f72696700ff
info "in place in a delegated cgroup: trusted.oomd_avoid 6f72696700ff -> 31 -> 6f72696700ff"

# In place on a unit's own cgroup: systemd's (ManagedOOMPreference=omit through PID 1), no trusted.oomd_avoid.
oomprotectctl protect --in-place "$plain" >/dev/null || fail "oomprotectctl protect --in-place $plain failed"
wait_until 10 test "$(mark /system.slice/doctor-plain.service user.oomd_omit)" = 31 ||
        fail "user.oomd_omit of doctor-plain.service: $(mark /system.slice/doctor-plain.service user.oomd_omit)"
expect_eq "trusted.oomd_avoid of doctor-plain.service (PID 1's cgroup)" \
        "$(mark /system.slice/doctor-plain.service trusted.oomd_avoid)" absent
oomprotectctl unprotect "$plain" >/dev/null || fail "oomprotectctl unprotect $plain failed"
info "in place on doctor-plain.service: user.oomd_omit through systemd, no trusted.oomd_avoid (a unit's cgroup is PID 1's)"
pass "doctor's verdicts hold for an unprotected, a protected and a capped process, with earlyoom and systemd-oomd running; the marks are set and put back"
