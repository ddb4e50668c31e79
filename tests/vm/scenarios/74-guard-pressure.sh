#!/bin/bash
# The guard's growth check (issue 16): MaxProtectedMemory= is checked at
# every protect and, later, when protected processes grow past it, under
# memory pressure (a PSI trigger on /proc/pressure/memory, no polling). A
# holder protected under a 64M ceiling is filled with 150 MB; then a hog in
# a scope of its own with MemoryHigh=16M makes real memory pressure (the
# kernel throttles it in reclaim, which PSI counts). The daemon must log the
# warning with its MESSAGE_ID, emit ProtectedMemoryOverCeiling(over=true),
# and status and doctor must say it; once the holder is gone, the next
# pressure brings the notice and the signal with over=false.
# vm-timeout: 180
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317 # functions below are called through wait_until
. "$(dirname "$0")/lib.sh"

readonly MSG_OVER_CEILING=5f3a9c1e7b2d4e8a9c6b0d3f1a7e5c24 HOLDER_MB=150

[[ -f /proc/pressure/memory ]] || skip "no /proc/pressure/memory in this kernel (CONFIG_PSI, psi=1)"
daemon_config 74-guard <<-EOF
	[Manager]
	DefaultMemoryMin=16M
	MemoryMinBudget=256M
	MaxProtectedMemory=64M
	EOF
daemon_fresh_start
journal_has() { journalctl -b -u "$OP_UNIT" --no-pager -o cat | grep -qF -- "$1"; }
! journal_has "No PSI trigger" || { daemon_journal; fail "the daemon set no PSI trigger on /proc/pressure/memory"; }
expect_eq "MaxProtectedMemory" "$(op_prop MaxProtectedMemory)" $((64 * 1024 * 1024))

bus_monitor "$PWD/monitor.json"
# over_signals VALUE: the ProtectedMemoryOverCeiling signals seen so far whose "over" is VALUE.
over_signals() {
        grep '"member":"ProtectedMemoryOverCeiling"' "$PWD/monitor.json" |
                jq -c --argjson v "$1" 'select(.payload.data[2] == $v)' | grep -c . || true
}
has_over_signal() { (($(over_signals "$1") > 0)); }

# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit 'for p in "${TAIL_PIDS[@]}"; do kill_tail "$p"; done'
start_tail guardtest-holder -
hpid=$TAIL_PID hfd=$TAIL_FD
oomprotectctl protect "$hpid" >/dev/null || fail "protect $hpid under the 64M ceiling was refused"
info "holder $hpid protected with $(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$hpid/status") resident"
fill "$hfd" "$HOLDER_MB" || fail "the holder died while being filled"
info "holder filled with $HOLDER_MB MB: ProtectedMemory $(($(op_prop ProtectedMemory) / 1048576)) MB (a second old at most)"
! has_over_signal true || fail "ProtectedMemoryOverCeiling before any memory pressure"

# pressure: a hog throttled at MemoryHigh=16M (bounded by MemoryMax and a timeout) until the PSI trigger fires.
pressure() {
        # From a subshell: the hog is no job of this shell (no "Killed" notice when it goes).
        (systemd-run --quiet --collect --scope --unit="guardtest-hog-$1" -p MemoryHigh=16M -p MemoryMax=200M \
                -p MemorySwapMax=0 timeout 20 tail /dev/zero >/dev/null 2>&1 &)
        on_exit "systemctl kill --signal=KILL guardtest-hog-$1.scope 2>/dev/null || true"
}
pressure_end() { systemctl kill --signal=KILL "guardtest-hog-$1.scope" 2>/dev/null || true; }
pressure 1
wait_until 30 has_over_signal true ||
        { daemon_journal; info "$(cat /proc/pressure/memory)"; fail "no ProtectedMemoryOverCeiling(over=true) under memory pressure"; }
pressure_end 1
info "pressure: $(head -n 1 /proc/pressure/memory)"
info "signal: $(grep -o '"member":"ProtectedMemoryOverCeiling".*' "$PWD/monitor.json" | head -n 1 | head -c 300)"
over_line=$(journalctl -b -u "$OP_UNIT" MESSAGE_ID=$MSG_OVER_CEILING -p warning --no-pager -o cat | tail -n 1)
[[ $over_line == *"more than MaxProtectedMemory=64.0M"* ]] ||
        { daemon_journal; fail "no warning with MESSAGE_ID=$MSG_OVER_CEILING: '$over_line'"; }
info "journal: $over_line"

status=$(oomprotectctl status 2>&1) || true
[[ $status == *"of MaxProtectedMemory=64.0M: OVER THE CEILING"* ]] || fail "status does not say it: $status"
doctor=$(oomprotectctl doctor 2>&1) || true
[[ $doctor == *"more than MaxProtectedMemory=64.0M"* ]] || fail "doctor does not say it: $doctor"
info "status: $(grep -F MaxProtectedMemory <<<"$status")"
info "doctor: $(grep -F 'more than MaxProtectedMemory' <<<"$doctor" | head -n 1)"

# Back under the ceiling: the holder goes, and the next pressure says so.
exec {hfd}>&-
kill_tail "$hpid" || fail "holder $hpid did not go away"
pressure 2
wait_until 30 has_over_signal false || { daemon_journal; fail "no ProtectedMemoryOverCeiling(over=false) after the holder went"; }
pressure_end 2
wait_until 5 journal_has "within MaxProtectedMemory=64.0M again" || fail "no notice that it is within the ceiling again"
expect_eq "over=true signals in all" "$(over_signals true)" 1
pass "a protected holder grown past MaxProtectedMemory=64M under memory pressure: warning with MESSAGE_ID, ProtectedMemoryOverCeiling(true), status and doctor say it; gone, the notice and the signal (false)"
