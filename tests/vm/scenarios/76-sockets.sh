#!/bin/bash
# Issue 12, "the optional .socket units work whether or not the daemon
# already runs", as an administrator does it on systemd 252:
#  1. the daemon D-Bus activated (its own ctl and ctl.sock), then
#     `systemctl enable --now oomprotectd.socket oomprotectd-ctl.socket`
#     succeeds; systemd binds a ctl.sock of its own in place of the
#     daemon's and opens the daemon's FIFO (same inode); the sockets'
#     ExecStartPost= runs oomprotectd-sockets.service at once, which hands
#     the listeners over; a FIFO write and a ctl.sock request both protect;
#  2. `systemctl restart oomprotectd`: protections stay, both still serve;
#     SIGKILL (Restart=on-failure): the new daemon gets them again too;
#  3. `systemctl stop oomprotectd`: a FIFO write, then a ctl.sock
#     connection, start it again (socket activation);
#  4. everything stopped, the sockets started first: the first use
#     activates the daemon, and both serve;
#  5. `systemctl stop` of the sockets while the daemon runs: it keeps
#     serving both, and the sockets can be started again;
#  6. `disable --now` of the sockets, a daemon restart: the daemon's own
#     listeners again.
# vm-timeout: 300
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317 # functions called through wait_until
. "$(dirname "$0")/lib.sh"

readonly CTL_SOCK=/usr/local/lib/oomprotect-vm/bin/ctl-sock
readonly SOCK=$OP_COMPAT_DIR/ctl.sock FIFO=$OP_COMPAT_DIR/ctl
readonly SOCKETS=(oomprotectd.socket oomprotectd-ctl.socket)
readonly HANDOVER=oomprotectd-sockets.service

daemon_config_default
# Some twenty protections of the default 16M would pass MemoryMinBudget=256M.
daemon_config 60-sockets <<-EOF
	[Manager]
	DefaultMemoryMin=4M
	EOF
daemon_fresh_start
on_exit "systemctl disable --now ${SOCKETS[*]} >/dev/null 2>&1; systemctl stop $HANDOVER"

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
        systemctl status --no-pager -n 8 "$OP_UNIT" "$HANDOVER" "${SOCKETS[@]}" 2>&1 | sed 's/^/  | /' || true
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

# --- 1. the daemon first, D-Bus activated; the sockets after it ---------------------
systemctl stop "$OP_UNIT"
op ListProtected >/dev/null || fail "D-Bus activation of the stopped daemon failed"
wait_daemon "D-Bus activation"
wait_until 5 test -S "$SOCK" || fail "the D-Bus activated daemon made no $SOCK"
own_sock=$(inode_of "$SOCK") own_fifo=$(inode_of "$FIFO")
systemctl enable --now "${SOCKETS[@]}" || { units_status; fail "enable --now of the sockets failed with the daemon running"; }
for s in "${SOCKETS[@]}"; do expect_eq "$s after enable --now" "$(state "$s")" active; done
[[ $(inode_of "$SOCK") != "$own_sock" ]] || fail "systemd did not bind a ctl.sock of its own over the daemon's"
expect_eq "inode of $FIFO after the socket unit opened it" "$(inode_of "$FIFO")" "$own_fifo"
# The sockets' ExecStartPost= starts the hand-over at once when the daemon runs.
wait_until 20 is_active "$HANDOVER" || { units_status; fail "$HANDOVER did not run after enable --now"; }
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
systemctl stop "$OP_UNIT"
expect_eq "$HANDOVER after the daemon's stop" "$(state "$HANDOVER")" inactive
expect_eq "oomprotectd.socket after the daemon's stop" "$(state oomprotectd.socket SubState)" listening
start_sleeper 83
s=$SLEEPER_PID
fifo_write "setprotection $s 1"
wait_daemon "3 (a FIFO write)"
wait_until 10 prot "$s" || fail "3: the FIFO-activated daemon did not protect $s"
PROTECTED+=("$s")
systemctl stop "$OP_UNIT"
start_sleeper 84
s=$SLEEPER_PID
sock_request "setprotection $s 1" "3 (a connection with the daemon stopped)"
expect_eq "$OP_UNIT after a connection to ctl.sock" "$(state "$OP_UNIT")" active
prot "$s" || fail "3: the socket-activated daemon did not protect $s"
PROTECTED+=("$s")
still_protected "3"
info "3: with the daemon stopped, a FIFO write and a ctl.sock connection each start it"

# --- 4. everything stopped, the sockets first ---------------------------------------------
systemctl stop "${SOCKETS[@]}" "$HANDOVER" "$OP_UNIT"
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

pass "socket units started after and before the daemon both work: hand-over at once (daemon running) or on first use, across restart, SIGKILL, stop (socket activation), sockets stopped and started again, disable --now back to the daemon's own"
