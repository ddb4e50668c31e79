#!/bin/bash
# DESIGN.md 1 step 4: an OOM kill inside the protected slice means a
# protection failed; the daemon watches the slice's memory.events (inotify),
# logs it at priority crit and emits ProtectedOOMKill(s cgroup, t count).
# Provoked here with a protected process given OOMScoreAdjust=0 (so the
# kernel may pick it) in a slice whose memory.max it outgrows; the daemon
# then also sees it exit and forgets it.
# vm-timeout: 90
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317 # functions below are called through wait_until
. "$(dirname "$0")/lib.sh"

daemon_config 60-oomsig <<-EOF
	[Manager]
	Slice=oomsig-protected.slice
	DefaultMemoryMin=0
	EOF
daemon_fresh_start
slice_rel=$(slice_path oomsig-protected.slice)
slice=$CG$slice_rel
[[ -f $slice/memory.events ]] || fail "$slice has no memory.events: the memory controller was not enabled there"
# Through systemd, the owner of the slice: a direct write would be undone the
# next time the daemon sets the slice's MemoryMin (systemd applies all of a
# unit's cgroup settings then).
systemctl set-property --runtime oomsig-protected.slice MemoryMax=64M
on_exit "systemctl set-property --runtime oomsig-protected.slice MemoryMax=infinity; rm -rf /run/systemd/system.control/oomsig-protected.slice.d; systemctl daemon-reload"
expect_eq "memory.max of the slice" "$(cat "$slice/memory.max")" $((64 * 1024 * 1024))

bus_monitor "$PWD/monitor.json"

fifo=$PWD/hog.fifo
mkfifo "$fifo"
hog=$( ("${IN_SCOPE[@]}" tail >/dev/null 2>&1 <"$fifo" & echo $!))
exec {hog_fd}>"$fifo"
on_exit "kill -KILL $hog 2>/dev/null || true"
wait_until 10 comm_is "$hog" tail || fail "tail $hog did not start"

op ProtectWithOptions 'ua{sv}' "$hog" 1 OOMScoreAdjust i 0 || fail "ProtectWithOptions($hog) failed"
expect_eq "cgroup of the hog" "$(cgroup_of "$hog")" "$slice_rel/oomprotect-$hog.scope"
info "hog $hog protected with adj 0 in a slice with memory.max 64M; feeding it 200 MB"
timeout 60 head -c 200M /dev/zero 1>&"$hog_fd" 2>/dev/null || true
exec {hog_fd}>&-

wait_until 10 gone "$hog" || fail "the hog outgrew memory.max and still lives"
oom_kill=$(sed -n 's/^oom_kill //p' "$slice/memory.events")
info "memory.events of the slice: oom_kill $oom_kill"
((oom_kill >= 1)) || fail "no oom_kill counted in $slice/memory.events"

wait_until 10 grep -q '"member":"ProtectedOOMKill"' "$PWD/monitor.json" ||
        fail "no ProtectedOOMKill signal: $(grep -c . "$PWD/monitor.json") monitor lines"
info "signal: $(grep -o '"member":"ProtectedOOMKill".*' "$PWD/monitor.json" | head -c 300)"
logged_crit() { journalctl -b -u "$OP_UNIT" -p crit --no-pager -o cat | grep -q 'OOM-killed'; }
wait_until 10 logged_crit || fail "no log line at priority crit about the OOM kill"
info "journal: $(journalctl -b -u "$OP_UNIT" -p crit --no-pager -o cat | grep 'OOM-killed' | tail -n 1)"
not_protected() { [[ $(op_is_protected "$hog") == false ]]; }
wait_until 10 not_protected || fail "the killed hog is still listed as protected"
wait_until 10 test ! -d "$slice/oomprotect-$hog.scope" || fail "the killed hog's scope was not removed"

pass "an OOM kill in the protected slice was logged at crit and signalled as ProtectedOOMKill; the dead process was forgotten"
