#!/bin/bash
# Issue 12, "the optional .socket units work whether or not the daemon
# already runs", as an administrator does it on systemd 252:
#  1. the daemon D-Bus activated (its own ctl and ctl.sock), then
#     `systemctl enable --now oomprotectd.socket oomprotectd-ctl.socket`
#     succeeds; systemd binds a ctl.sock of its own in place of the
#     daemon's and opens the daemon's FIFO (same inode); the sockets'
#     ExecStartPost= runs each one's hand-over at once (its own instance of
#     oomprotectd-sockets@.service, which gets only that socket's
#     listener), which hands it over; a FIFO write and a ctl.sock request
#     both protect;
#  2. `systemctl restart oomprotectd`: protections stay, both still serve;
#     SIGKILL (Restart=on-failure): the new daemon gets them again too;
#  3. `systemctl stop oomprotectd`: a FIFO write, then a ctl.sock
#     connection, start it again (socket activation);
#  4. everything stopped, the sockets started first: the first use
#     activates the daemon, and both serve;
#  5. `systemctl stop` of the sockets while the daemon runs: it keeps
#     serving both, and the sockets can be started again;
#  6. `disable --now` of the sockets, a daemon restart: the daemon's own
#     listeners again;
#  7. one socket after the other, the daemon running: `enable --now
#     oomprotectd.socket`, later `enable --now oomprotectd-ctl.socket`
#     succeeds (with one hand-over shared by both, still active after the
#     first, systemd refused the second); both serve, after a restart too;
#     the daemon stopped, a FIFO write and a connection each start it.
# vm-timeout: 420
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317 # functions called through wait_until
. "$(dirname "$0")/lib.sh"

readonly CTL_SOCK=/usr/local/lib/oomprotect-vm/bin/ctl-sock
readonly SOCK=$OP_COMPAT_DIR/ctl.sock FIFO=$OP_COMPAT_DIR/ctl
readonly SOCKETS=(oomprotectd.socket oomprotectd-ctl.socket)
# Each socket's hand-over: its own instance of oomprotectd-sockets@.service.
readonly HANDOVER_SOCK=oomprotectd-sockets@oomprotectd.service HANDOVER_FIFO=oomprotectd-sockets@oomprotectd-ctl.service
readonly HANDOVERS=("$HANDOVER_SOCK" "$HANDOVER_FIFO")

daemon_config_default
# Some twenty protections of the default 16M would pass MemoryMinBudget=256M.
daemon_config 60-sockets <<-EOF
	[Manager]
	DefaultMemoryMin=4M
	EOF
daemon_fresh_start
# reset-failed: a hand-over killed by a stop while it ran must not outlive the scenario (90 checks after the purge).
on_exit "systemctl disable --now ${SOCKETS[*]} >/dev/null 2>&1; systemctl stop ${HANDOVERS[*]}; systemctl reset-failed ${HANDOVERS[*]}"

inode_of() { stat -c %i "$1"; }
prot() { [[ $(op_is_protected "$1") == true ]]; }
state() { systemctl show -P "${2:-ActiveState}" "$1"; }
is_active() { [[ $(state "$1") == active ]]; }
# fifo_write LINE: bounded (a FIFO nobody reads blocks its writer).
fifo_write() {
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout 20 bash -c 'printf "%s\n" "$2" >"$1"' _ "$FIFO" "$1" || fail "writing '$1' to $FIFO did not complete in 20 s"
}
# sock_request LINE WHAT: LINE on ctl.sock must be answered OK.
sock_request() {
        local reply
        reply=$(echo "$1" | "$CTL_SOCK" "$SOCK" 2>&1) || true
        [[ $reply == OK* ]] || { units_status; fail "$2: ctl.sock answered '$reply' to '$1'"; }
}
units_status() {
        systemctl status --no-pager -n 8 "$OP_UNIT" "${HANDOVERS[@]}" "${SOCKETS[@]}" 2>&1 | sed 's/^/  | /' || true
}
# protect_both WHAT: a new sleeper protected through the FIFO, another through ctl.sock; both stay in PROTECTED.
PROTECTED=()
protect_both() {
        local a b
        start_sleeper 81
        a=$SLEEPER_PID
        start_sleeper 82
        b=$SLEEPER_PID
        fifo_write "setprotection $a 1"
        wait_until 10 prot "$a" || { units_status; fail "$1: the FIFO write did not protect $a"; }
        sock_request "setprotection $b 1" "$1"
        prot "$b" || fail "$1: ctl.sock's OK did not protect $b"
        PROTECTED+=("$a" "$b")
}
still_protected() {
        local p
        for p in "${PROTECTED[@]}"; do
                wait_until 10 prot "$p" || fail "$1: PID $p is no longer protected"
        done
}
wait_daemon() {
        wait_until 30 bus_has_name org.oomprotect || { units_status; fail "$1: no daemon on the bus"; }
}
# handed_one UNIT SINCE WHAT: UNIT's last run (since the epoch second SINCE) handed exactly one listener over.
handed_one() {
        local log
        log=$(journalctl -b -u "$1" --no-pager -o cat --since "@$2")
        [[ $log == *"Handed 1 listener(s) over to oomprotectd"* ]] ||
                { units_status; fail "$3: $1 did not hand exactly its socket's one listener over: '$log'"; }
}

# activate_each STEP ADJ1 ADJ2 (the sleepers' oom_score_adj): the daemon stopped (its hand-overs with
# it), a FIFO write starts it and protects a sleeper, and both hand-overs complete; stopped again, a
# ctl.sock connection does the same.
activate_each() {
        local s h
        systemctl stop "$OP_UNIT"
        for h in "${HANDOVERS[@]}"; do expect_eq "$h after the daemon's stop" "$(state "$h")" inactive; done
        expect_eq "oomprotectd.socket after the daemon's stop" "$(state oomprotectd.socket SubState)" listening
        start_sleeper "$2"
        s=$SLEEPER_PID
        fifo_write "setprotection $s 1"
        wait_daemon "$1 (a FIFO write)"
        wait_until 10 prot "$s" || fail "$1: the FIFO-activated daemon did not protect $s"
        PROTECTED+=("$s")
        # Both hand-overs run (the FIFO's by the write, ctl.sock's by the daemon's probe of the live
        # socket at its start); a stop while they run would leave the probe pending on ctl.sock, and
        # systemd would start the daemon again for it.
        for h in "${HANDOVERS[@]}"; do
                wait_until 20 is_active "$h" || { units_status; fail "$1: $h did not complete after the FIFO write"; }
        done
        systemctl stop "$OP_UNIT"
        start_sleeper "$3"
        s=$SLEEPER_PID
        sock_request "setprotection $s 1" "$1 (a connection with the daemon stopped)"
        expect_eq "$OP_UNIT after a connection to ctl.sock" "$(state "$OP_UNIT")" active
        prot "$s" || fail "$1: the socket-activated daemon did not protect $s"
        PROTECTED+=("$s")
        still_protected "$1"
}

# --- 1. the daemon first, D-Bus activated; the sockets after it ---------------------
systemctl stop "$OP_UNIT"
op ListProtected >/dev/null || fail "D-Bus activation of the stopped daemon failed"
wait_daemon "D-Bus activation"
wait_until 5 test -S "$SOCK" || fail "the D-Bus activated daemon made no $SOCK"
own_sock=$(inode_of "$SOCK") own_fifo=$(inode_of "$FIFO")
since=$(date +%s)
systemctl enable --now "${SOCKETS[@]}" || { units_status; fail "enable --now of the sockets failed with the daemon running"; }
for s in "${SOCKETS[@]}"; do expect_eq "$s after enable --now" "$(state "$s")" active; done
[[ $(inode_of "$SOCK") != "$own_sock" ]] || fail "systemd did not bind a ctl.sock of its own over the daemon's"
expect_eq "inode of $FIFO after the socket unit opened it" "$(inode_of "$FIFO")" "$own_fifo"
# Each socket's ExecStartPost= starts its own hand-over at once when the daemon runs; each gets its socket's only.
for h in "${HANDOVERS[@]}"; do
        wait_until 20 is_active "$h" || { units_status; fail "$h did not run after enable --now"; }
        handed_one "$h" "$since" "1"
done
protect_both "1 (sockets after the daemon)"
journalctl -b -u "$OP_UNIT" --no-pager -o cat | grep -q "Serving $SOCK on the listener the service manager passed" ||
        fail "the daemon's journal does not say it took oomprotectd.socket's listener"
info "1: the sockets started after the D-Bus activated daemon; FIFO and ctl.sock protect through the hand-over"

# --- 2. restart, and a crash ------------------------------------------------------------
systemctl restart "$OP_UNIT"
wait_daemon "2 (restart)"
still_protected "2 (after restart)"
protect_both "2 (after restart)"
pid=$(state "$OP_UNIT" MainPID)
kill -KILL "$pid"
wait_until 30 bash -c "[[ \$(systemctl show -P MainPID $OP_UNIT) != $pid && \$(systemctl show -P MainPID $OP_UNIT) != 0 ]]" ||
        fail "2: the daemon was not restarted after SIGKILL"
wait_daemon "2 (after SIGKILL)"
still_protected "2 (after SIGKILL)"
protect_both "2 (after SIGKILL: the new daemon asked for the hand-over)"
info "2: across a restart and a SIGKILL the protections stay and both sockets serve"

# --- 3. the daemon stopped: socket activation --------------------------------------
activate_each 3 83 84
info "3: with the daemon stopped, a FIFO write and a ctl.sock connection each start it"

# --- 4. everything stopped, the sockets first ---------------------------------------------
systemctl stop "${SOCKETS[@]}" "${HANDOVERS[@]}" "$OP_UNIT"
systemctl start "${SOCKETS[@]}" || { units_status; fail "4: the sockets do not start with the daemon stopped"; }
expect_eq "$OP_UNIT after starting the sockets" "$(state "$OP_UNIT")" inactive
start_sleeper 85
s=$SLEEPER_PID
sock_request "setprotection $s 1" "4 (first use of the sockets started first)"
wait_daemon "4"
PROTECTED+=("$s")
protect_both "4 (sockets first)"
still_protected "4"
info "4: sockets started before the daemon: the first use activates it, both serve"

# --- 5. the sockets stopped while the daemon runs ----------------------------------------
systemctl stop "${SOCKETS[@]}"
expect_eq "$OP_UNIT after the sockets' stop" "$(state "$OP_UNIT")" active
protect_both "5 (sockets stopped, the daemon keeps their listeners)"
systemctl start "${SOCKETS[@]}" || { units_status; fail "5: the sockets do not start again while the daemon runs"; }
protect_both "5 (sockets started again)"
info "5: sockets stopped while the daemon runs: it serves on; they start again"

# --- 6. disable --now, then a daemon restart -------------------------------------------------
systemctl disable --now "${SOCKETS[@]}"
for s in "${SOCKETS[@]}"; do expect_eq "systemctl is-enabled $s" "$(systemctl is-enabled "$s" 2>&1)" disabled; done
since=$(date +%s)
systemctl restart "$OP_UNIT"
wait_daemon "6"
protect_both "6 (the daemon's own listeners again)"
still_protected "6"
journalctl -b -u "$OP_UNIT" --no-pager -o cat --since "@$since" | grep -q "Serving the historic text protocol in $OP_COMPAT_DIR: ctl, ctl.sock," ||
        fail "6: the restarted daemon does not serve its own ctl and ctl.sock"
info "6: disable --now of the sockets, then a restart: the daemon's own listeners"

# --- 7. one socket after the other while the daemon runs ------------------------------------
# What one hand-over shared by both sockets could not do: it stays active after the first
# socket's, and systemd refuses a socket whose Service= is active.
is_active "$OP_UNIT" || fail "7: the daemon does not run"
since=$(date +%s)
systemctl enable --now oomprotectd.socket || { units_status; fail "7: enable --now oomprotectd.socket failed"; }
wait_until 20 is_active "$HANDOVER_SOCK" || { units_status; fail "7: $HANDOVER_SOCK did not run"; }
handed_one "$HANDOVER_SOCK" "$since" "7"
expect_eq "$HANDOVER_FIFO before oomprotectd-ctl.socket starts" "$(state "$HANDOVER_FIFO")" inactive
start_sleeper 88
s=$SLEEPER_PID
sock_request "setprotection $s 1" "7 (oomprotectd.socket alone)"
prot "$s" || fail "7: ctl.sock's OK did not protect $s"
PROTECTED+=("$s")
sleep 2 # later, as an administrator does it: not in the same transaction
since=$(date +%s)
systemctl enable --now oomprotectd-ctl.socket ||
        { units_status; fail "7: enable --now oomprotectd-ctl.socket failed while oomprotectd.socket's hand-over is active"; }
expect_eq "oomprotectd-ctl.socket after enable --now" "$(state oomprotectd-ctl.socket)" active
wait_until 20 is_active "$HANDOVER_FIFO" || { units_status; fail "7: $HANDOVER_FIFO did not run"; }
handed_one "$HANDOVER_FIFO" "$since" "7"
expect_eq "$HANDOVER_SOCK after oomprotectd-ctl.socket started" "$(state "$HANDOVER_SOCK")" active
protect_both "7 (one socket after the other)"
systemctl restart "$OP_UNIT"
wait_daemon "7 (restart)"
still_protected "7 (after restart)"
protect_both "7 (after restart)"
activate_each 7 86 87
info "7: oomprotectd.socket, later oomprotectd-ctl.socket, with the daemon running: both start and serve, across a restart, and each activates the stopped daemon"

pass "socket units started after and before the daemon both work: hand-over at once (daemon running) or on first use, across restart, SIGKILL, stop (socket activation), sockets stopped and started again, disable --now back to the daemon's own, one socket after the other while the daemon runs"
