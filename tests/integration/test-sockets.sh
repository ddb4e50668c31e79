#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The listeners of the optional socket units handed over to a running
# daemon (AdoptSockets, what oomprotectd-sockets@.service does through
# oomprotect-adopt-sockets), and what oomprotectd does with a socket file it
# finds at ctl.sock: a private dbus-daemon, the real oomprotectd, the real
# oomprotect-adopt-sockets, real processes in a real cgroup2 subtree.
# sockets-helper stands in for the service manager: it opens the listeners
# as a socket unit does (ListenStream= unlinks what is in the way and binds;
# ListenFIFO= opens the FIFO there O_RDWR) and passes them with LISTEN_FDS.
# systemd itself is the VM tier's (tests/vm/scenarios/76-sockets.sh).
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl, setpriv, socat.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_SRCDIR:?}" "${OOMPROTECT_BINDIR:?}"
HELPER=$OOMPROTECT_BINDIR/tests/integration/sockets-helper
ADOPT=$OOMPROTECT_BINDIR/oomprotect-adopt-sockets

require_root_and dbus-daemon busctl setpriv socat
find_cgroup2
sandbox_slice oomptestsock$$
tmp=$(mktemp -d /tmp/oomprotect-sockets.XXXXXX)
chmod 0755 "$tmp"
COMPAT=$tmp/state/compat
SOCK=$COMPAT/ctl.sock
FIFO=$COMPAT/ctl
dbus_pid='' daemon_pid='' holder_pid=''
children=()
sandbox_traps daemon_pid dbus_pid holder_pid

mkdir -m 0755 "$tmp/state"
{ cgroupfs_config "$tmp/state"; echo "OOMScoreAdjust=0"; } >"$tmp/oomprotectd.conf"
start_private_bus "$tmp"

start_daemon() {
        sandbox_daemon "$tmp/oomprotectd.conf"
        wait_until 5 test -p "$FIFO" || fail "oomprotectd made no FIFO at $FIFO"
}
stop_daemon() {
        expect_clean_sigterm
}
# ctl_sock LINE: the reply to LINE on ctl.sock.
ctl_sock() {
        printf '%s\n' "$1" | socat -t 5 - "UNIX-CONNECT:$SOCK"
}
is_protected() {
        [[ $(mgr IsProtected u "$1") == "b true" ]]
}
inode_of() {
        stat -c %i "$1"
}
log_has() {
        grep -qF "$1" "$tmp/daemon.log"
}
# adopt_call ARGS: AdoptSockets on the descriptors sockets-helper opens as ARGS say; its reply or error.
adopt_call() {
        "$HELPER" "$@" -- adopt 2>&1
}

spawn_in work 700 sleep sleep 1000
victim=$spawned

test_refusals() {
        local out before
        start_daemon
        before=$(inode_of "$SOCK")
        : >"$tmp/file"
        mkfifo -m 0600 "$tmp/other-fifo"

        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$HELPER" --file /dev/null -- adopt 2>&1) &&
                fail "nobody's AdoptSockets succeeded: $out"
        [[ $out == *"PermissionDenied: Only root may hand listeners over"* ]] || fail "nobody's AdoptSockets: $out"
        ok "AdoptSockets from another uid than root: PermissionDenied"

        out=$(adopt_call --file "$tmp/file") && fail "a regular file was adopted: $out"
        [[ $out == *"is a regular file, neither the FIFO"* ]] || fail "regular file: $out"
        out=$(adopt_call --stream "$tmp/other.sock") && fail "a socket at another path was adopted: $out"
        [[ $out == *"not a listening stream socket bound to $SOCK"* ]] || fail "other path: $out"
        out=$(adopt_call --dgram "$tmp/dgram.sock") && fail "a datagram socket was adopted: $out"
        [[ $out == *"not a listening stream socket"* ]] || fail "datagram: $out"
        out=$(adopt_call --fifo "$tmp/other-fifo") && fail "another FIFO was adopted: $out"
        [[ $out == *"is a FIFO, but not the one at $FIFO"* ]] || fail "other FIFO: $out"
        out=$(adopt_call --fifo-wronly "$FIFO") && fail "a write-only FIFO was adopted: $out"
        [[ $out == *"open for writing only"* ]] || fail "write-only FIFO: $out"
        # A good one beside a bad one: the whole call is refused, the good one is not taken either.
        out=$(adopt_call --fifo "$FIFO" --file "$tmp/file") && fail "a bad descriptor beside a good one passed: $out"
        [[ $out == *"Descriptor 1 is a regular file"* ]] || fail "mixed: $out"
        ok "AdoptSockets refuses a regular file, a socket of another path, a datagram socket, another FIFO," \
                "a write-only FIFO, and a whole call with one of those: InvalidArgument naming the descriptor"

        log_has "Serving $FIFO on the descriptor" && fail "a refused call changed the FIFO's descriptor"
        assert_eq "$(inode_of "$SOCK")" "$before" "ctl.sock after the refusals"
        assert_eq "$(ctl_sock "setprotection $victim 1")" "OK" "ctl.sock after the refusals"
        is_protected "$victim" || fail "PID $victim is not protected through ctl.sock"
        echo "setprotection $victim 0" >"$FIFO"
        wait_until 5 bash -c "! [[ \$(busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u $victim) == 'b true' ]]" ||
                fail "the FIFO did not unprotect $victim after the refusals"
        ok "after the refusals the daemon's own ctl.sock and FIFO serve as before"
        stop_daemon
}

test_hand_over() {
        local out
        start_daemon
        # As `systemctl start oomprotectd.socket oomprotectd-ctl.socket` does while the daemon runs, then the
        # first connection starting oomprotectd-sockets@oomprotectd.service, which runs oomprotect-adopt-sockets.
        out=$("$HELPER" --stream "$SOCK" --fifo "$FIFO" -- "$ADOPT" 2>&1) || fail "oomprotect-adopt-sockets: $out"
        [[ $out == *"Handed 2 listener(s) over to oomprotectd (2 newly served"* ]] || fail "hand-over: $out"
        log_has "Serving $SOCK on the listener the service manager passed; closing the one made here." ||
                fail "the daemon did not say it took ctl.sock"
        log_has "Serving $FIFO on the descriptor the service manager passed." ||
                fail "the daemon did not say it took the FIFO"
        ok "oomprotect-adopt-sockets hands a listening ctl.sock and the FIFO to the running daemon"

        assert_eq "$(ctl_sock "setprotection $victim 1")" "OK" "ctl.sock on the adopted listener"
        is_protected "$victim" || fail "PID $victim is not protected through the adopted ctl.sock"
        printf 'setprotection %d 0' "$victim" >"$FIFO" # no newline: completed by the quiet-time timer now
        wait_until 5 bash -c "! [[ \$(busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u $victim) == 'b true' ]]" ||
                fail "the adopted FIFO did not unprotect $victim"
        ok "requests are served on the adopted ctl.sock, and a line without newline on the adopted FIFO"

        # The same socket again (a second hand-over, or inheritance plus hand-over): recognised, nothing added.
        exec {keep}<>"$FIFO"
        out=$(adopt_call --fifo "$FIFO") || fail "the same FIFO again: $out"
        assert_eq "$out" "u 0" "AdoptSockets of the FIFO served already"
        exec {keep}>&-
        ok "the FIFO handed over twice is recognised by its inode: 0 newly served"
        out=$(adopt_call --stream "$SOCK" --same -) || fail "a new ctl.sock passed twice: $out"
        assert_eq "$out" "u 1" "AdoptSockets of one new socket passed twice"
        log_has "Serving $SOCK on the listener the service manager passed; closing the one served before." ||
                fail "the daemon did not say it replaced the adopted ctl.sock"
        assert_eq "$(ctl_sock "setprotection $victim 1")" "OK" "ctl.sock on the listener adopted second"
        assert_eq "$(ctl_sock "setprotection $victim 0")" "OK" "ctl.sock on the listener adopted second"
        ok "one socket passed twice in a call is taken once, and replaces the listener adopted before"

        stop_daemon
        [[ -S $SOCK ]] || fail "oomprotectd removed the socket unit's ctl.sock on exit"
        ok "on exit oomprotectd leaves the ctl.sock that is not its own"
}

test_dead_socket_replaced() {
        # What test_hand_over left: a socket file nobody listens on any more (connect: ECONNREFUSED).
        [[ -S $SOCK ]] || fail "no socket file left at $SOCK"
        socat -u /dev/null "UNIX-CONNECT:$SOCK" 2>/dev/null && fail "someone still listens on $SOCK"
        start_daemon
        log_has "is served by someone else" && fail "the daemon took the dead ctl.sock for a live one"
        assert_eq "$(ctl_sock "setprotection $victim 1")" "OK" "ctl.sock after replacing a dead socket"
        assert_eq "$(ctl_sock "setprotection $victim 0")" "OK" "ctl.sock after replacing a dead socket"
        ok "a dead socket at ctl.sock (ECONNREFUSED) is replaced by the daemon's own at start"
        stop_daemon
        [[ ! -e $SOCK ]] || fail "oomprotectd left its own ctl.sock behind"
        ok "its own ctl.sock is removed on exit"
}

test_live_socket_kept() {
        local before out
        # A live listener at ctl.sock before the daemon starts (a socket unit started first): it waits,
        # then hands it over when told to (as the daemon's start makes the oomprotectd-sockets@.service instances run).
        # shellcheck disable=SC2016 # expanded by the inner bash
        "$HELPER" --stream "$SOCK" -- bash -c 'while [[ ! -e $1 ]]; do sleep 0.05; done; exec "$2"' \
                holder "$tmp/go" "$ADOPT" >"$tmp/holder.log" 2>&1 &
        holder_pid=$!
        wait_until 5 test -S "$SOCK" || fail "the holder did not bind $SOCK"
        before=$(inode_of "$SOCK")
        start_daemon
        wait_until 5 log_has "$SOCK is served by someone else" || fail "the daemon did not notice the live socket"
        assert_eq "$(inode_of "$SOCK")" "$before" "the live ctl.sock after the daemon's start"
        ok "a live socket at ctl.sock is not replaced at start"

        touch "$tmp/go"
        wait "$holder_pid" || fail "the hand-over failed: $(cat "$tmp/holder.log")"
        holder_pid=
        assert_eq "$(ctl_sock "setprotection $victim 1")" "OK" "ctl.sock handed over after the start"
        is_protected "$victim" || fail "PID $victim is not protected"
        out=$(ctl_sock "setprotection $victim 0")
        assert_eq "$out" "OK" "ctl.sock handed over after the start"
        ok "...and is served once handed over"
        stop_daemon
        assert_eq "$(inode_of "$SOCK")" "$before" "ctl.sock after the daemon's exit"
        ok "on exit it is left in place"
}

test_refusals
test_hand_over
test_dead_socket_replaced
test_live_socket_kept
