#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# valgrind memcheck of the real daemon (issue 10): a build without
# sanitizers runs under valgrind on a private bus with the cgroupfs backend
# through a scenario that touches every front end: Protect, ProtectWithOptions
# with a tag, ListProtected, IsProtected, refusals (PID 1, a vanished PID, an
# unknown option), ctl.sock lines, the status file, UnprotectTag, Unprotect,
# a protected process exiting, SIGHUP, SIGTERM. Every memory error and every
# definitely or indirectly lost block fails the test; tests/integration/
# valgrind.supp holds library noise only, each entry with its reason.
#
# valgrind 3.19 (Debian 12) does not know pidfd_open(2) and answers ENOSYS:
# the daemon falls back to identifying processes by (PID, start time) and
# finds exits by a look every second; this test is also the test of that
# fallback (a protected process that exits is cleaned up).
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl, socat and
# valgrind (exits 77 with the reason otherwise).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl socat valgrind
find_cgroup2
[[ -x $OOMPROTECT_DAEMON ]] || fail "no daemon without sanitizers at $OOMPROTECT_DAEMON"

sandbox_begin valgrind
mkdir "$CG/$top/orig"
sandbox_config "$tmp" 300
start_private_bus "$tmp"

spawn() {
        sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 1000' spawn "$CG/$top/orig" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "child $spawned did not start"
}
count_is() {
        [[ $(prop ProtectedCount) == "u $1" ]]
}
ctl() {
        printf '%s\n' "$@" | socat -t 5 - "UNIX-CONNECT:$tmp/compat/ctl.sock"
}

test_the_daemon_is_memcheck_clean_through_every_front_end() {
        valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
                --errors-for-leak-kinds=definite,indirect --track-origins=yes --num-callers=30 \
                --suppressions="$OOMPROTECT_SRCDIR/tests/integration/valgrind.supp" --log-file="$tmp/valgrind.log" \
                "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 60 name_has_owner || fail "oomprotectd did not come up under valgrind: $(tail "$tmp/valgrind.log")"
        wait_until 10 test -S "$tmp/compat/ctl.sock" || fail "ctl.sock is not served"

        local a b c out fallback
        spawn
        a=$spawned
        spawn
        b=$spawned
        spawn
        c=$spawned
        mgr Protect u "$a" >/dev/null
        mgr ProtectWithOptions 'ua{sv}' "$b" 2 Tag s valgrind-tag Descendants b true >/dev/null
        assert_eq "$(mgr IsProtected u "$b")" "b true" "IsProtected"
        [[ $(mgr ListProtected) == *valgrind-tag* ]] || fail "ListProtected does not show the tag"
        ! mgr Protect u 1 >/dev/null 2>&1 || fail "PID 1 was protected"
        ! mgr Protect u 4194303 >/dev/null 2>&1 || fail "a vanished PID was protected"
        ! mgr ProtectWithOptions 'ua{sv}' "$c" 1 Bogus b true >/dev/null 2>&1 || fail "an unknown option was taken"
        out=$(ctl "setprotection $c 1" "setprotection 1 1" "bogus line")
        [[ $out == OK$'\n'ERR* ]] || fail "ctl.sock answered: $out"
        grep -q "^$c " "$tmp/compat/status" || fail "status does not list PID $c: $(cat "$tmp/compat/status")"
        assert_eq "$(mgr UnprotectTag s valgrind-tag)" "u 1" "UnprotectTag"
        mgr Unprotect u "$a" >/dev/null
        kill -HUP "$daemon_pid"
        kill -KILL "$c" # protected through ctl.sock: its exit must be found without a pidfd
        wait_until 10 count_is 0 || fail "the exit of protected PID $c was not noticed: $(prop ProtectedCount)"
        [[ $(cg_of "$a") == "/$top/orig" ]] || fail "PID $a did not go back to /$top/orig"

        if grep -q "pidfd_open() is not available" "$tmp/daemon.log"; then
                fallback="an exit found without pidfd"
        else
                fallback="pidfds (this valgrind knows pidfd_open)"
        fi
        local rc=0
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || rc=$?
        daemon_pid=''
        if ((rc != 0)) || ! grep -q "ERROR SUMMARY: 0 errors" "$tmp/valgrind.log"; then
                cat "$tmp/valgrind.log" >&2
                fail "valgrind found errors (exit $rc)"
        fi
        grep -E "in use at exit|definitely lost|indirectly lost|ERROR SUMMARY" "$tmp/valgrind.log" | sed 's/^==[0-9]*== */# /'
        ok "memcheck clean through D-Bus, ctl.sock, status, SIGHUP, $fallback, SIGTERM"
}

test_the_daemon_is_memcheck_clean_through_every_front_end
echo "1..$n_ok"
