#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The front ends while the backend answers late: oomprotectd with
# OOMPROTECT_TEST_BACKEND_DELAY_USEC=2000000 (every backend completion comes
# 2 s later, from the event loop, as systemd's jobs do) on a private bus. The
# loop must keep serving everyone else while an operation is under way, each
# reply must come when its operation is done, ctl.sock and ctl must keep the
# order of the lines, a second operation on the same PID is refused with
# Busy, a SIGTERM with RestoreOnStop=yes waits for the restores, and SIGHUP
# applies what can change at runtime.
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl, dbus-send, socat
# and setpriv; exits 77 with the reason when something is missing.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl dbus-send socat setpriv
find_cgroup2

DELAY_USEC=2000000
name=oomptestasync$$
top=$name.slice
slice=$name-protected.slice
slice_rel=$top/$slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-async.XXXXXX)
chmod 0755 "$tmp" # the bus socket in it must be reachable for uid 65534
dbus_pid='' daemon_pid=''
children=()

cleanup() {
        local rc=$?
        trap - ERR
        sandbox_cleanup "$rc" "$daemon_pid" "$dbus_pid"
}
trap cleanup EXIT
set -E
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR

# ---- helpers ----

now_ms() {
        date +%s%3N
}
assert_protected() { # PID
        assert_eq "$(cg_of "$1")" "/$slice_rel/oomprotect-$1.scope" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "$protect_adj" "oom_score_adj of $1"
}
assert_unchanged() { # PID SUB
        assert_eq "$(cg_of "$1")" "/$top/$2" "cgroup of $1"
        assert_eq "$(adj_of "$1")" "$child_adj" "oom_score_adj of $1"
}
is_unchanged() { # PID SUB
        [[ $(cg_of "$1") == "/$top/$2" && $(adj_of "$1") == "$child_adj" ]]
}
# spawn SUB [WRAPPER...]: a sleep in <top>/SUB at child_adj; $spawned is its pid.
spawn() {
        local sub=$1
        shift
        mkdir -p "$CG/$top/$sub"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && shift 2 && exec "$@"' \
                spawn "$CG/$top/$sub" "$child_adj" "$@" sleep 1000 &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "child $spawned did not start"
}
# dbus_error METHOD ARGS...: the error name of a call that must fail (dbus-send prints it, busctl does not),
# made through "${as[@]}" (e.g. setpriv) when set.
as=()
dbus_error() {
        local method=$1 out
        shift
        if out=$("${as[@]}" dbus-send --system --print-reply --dest=org.oomprotect /org/oomprotect \
                "org.oomprotect.Manager.$method" "$@" 2>&1); then
                fail "$method $* succeeded: $out"
        fi
        sed -n 's/^Error \([^:]*\):.*/\1/p' <<<"$out"
}
# within_ms MS CMD...: CMD succeeds in less than MS milliseconds.
within_ms() {
        local limit=$1 start took
        shift
        start=$(now_ms)
        "$@" >/dev/null || fail "$* failed"
        took=$(($(now_ms) - start))
        ((took < limit)) || fail "$* took $took ms while an operation was pending (at most $limit)"
}

write_config() { # EXTRA...
        {
                cat <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$tmp/state
CompatDirectory=$tmp/compat
OOMScoreAdjust=$protect_adj
MemoryMinBudget=64M
EOF
                printf '%s\n' "$@"
        } >"$tmp/oomprotectd.conf.new"
        mv "$tmp/oomprotectd.conf.new" "$tmp/oomprotectd.conf"
}

start_daemon() {
        OOMPROTECT_TEST_BACKEND_DELAY_USEC=$DELAY_USEC "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" \
                --log-level=debug >>"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}

# ---- the environment ----

if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 child_adj=0
else
        protect_adj=0 child_adj=700
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi
users_gid=$(getent group users | cut -d: -f3)
[[ -n $users_gid ]] || skip "there is no group \"users\" for the AllowGroup= test"

# ---- the tests ----

test_loop_stays_responsive_while_a_protect_is_pending() {
        spawn responsive
        local pid=$spawned start took
        start=$(now_ms)
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$pid" \
                >"$tmp/protect.out" 2>&1 &
        local caller=$!
        wait_until 5 grep -qF "Protect() from uid 0" "$tmp/daemon.log" || fail "the Protect call did not arrive"
        # Answered while the backend holds the Protect for 2 s: a blocked loop would answer after it. The bound
        # is a quarter of that, not a speed target (a busctl start on a loaded machine alone can take 100 ms).
        within_ms $((DELAY_USEC / 4000)) busctl call org.oomprotect /org/oomprotect org.freedesktop.DBus.Peer Ping
        within_ms $((DELAY_USEC / 4000)) prop ProtectedCount
        within_ms $((DELAY_USEC / 4000)) busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u "$pid"
        kill -0 "$caller" 2>/dev/null || fail "the Protect reply came before the backend answered"
        wait "$caller" || fail "Protect failed: $(cat "$tmp/protect.out")"
        took=$(($(now_ms) - start))
        ((took >= DELAY_USEC / 1000 - 300)) || fail "the Protect reply came after $took ms, before the backend answered"
        assert_protected "$pid"
        assert_eq "$(busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u "$pid")" \
                "b true" "IsProtected once done"
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Unprotect u "$pid" >/dev/null
        assert_unchanged "$pid" responsive
        ok "Ping, a property and IsProtected answer within 100 ms while a Protect waits for the backend; its reply comes after $took ms"
}

test_second_operation_on_a_pending_pid_is_busy() {
        spawn busy
        local pid=$spawned
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$pid" >/dev/null &
        local caller=$!
        wait_until 5 has_pending_record "$pid" || fail "the Protect of $pid did not start"
        assert_eq "$(dbus_error Protect "uint32:$pid")" org.oomprotect.Error.Busy "a second Protect while pending"
        assert_eq "$(dbus_error Unprotect "uint32:$pid")" org.oomprotect.Error.Busy "an Unprotect while pending"
        wait "$caller" || fail "the first Protect failed"
        assert_protected "$pid"
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Unprotect u "$pid" >/dev/null
        assert_unchanged "$pid" busy
        ok "a second Protect or an Unprotect of a PID whose Protect is under way gets org.oomprotect.Error.Busy"
}
# The engine's record exists from the start of a protect (state "applying"): IsProtected says so.
has_pending_record() {
        [[ $(busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u "$1") == "b true" ]]
}

test_ctl_sock_keeps_the_order_of_the_replies() {
        spawn sock
        local pid=$spawned start took out
        start=$(now_ms)
        out=$(printf 'setprotection %d 1\nsetprotection %d 0\nsetprotection 0 1\n' "$pid" "$pid" |
                socat -t 30 - "UNIX-CONNECT:$tmp/compat/ctl.sock")
        took=$(($(now_ms) - start))
        assert_eq "$(sed -n 1,2p <<<"$out")" $'OK\nOK' "ctl.sock replies to the two commands"
        [[ $(sed -n 3p <<<"$out") == "ERR ERANGE "* ]] || fail "the third reply is not the range error: $out"
        ((took >= 2 * DELAY_USEC / 1000 - 300)) || fail "two delayed lines answered after $took ms: not one after the other"
        assert_unchanged "$pid" sock
        ok "ctl.sock with a late backend: one line at a time, replies in order (OK, OK, ERR ERANGE) after $took ms"
}

test_ctl_fifo_keeps_the_order_of_the_lines() {
        spawn fifo
        local pid=$spawned before
        before=$(wc -l <"$tmp/daemon.log")
        printf 'setprotection %d 1\nsetprotection %d 0\n' "$pid" "$pid" >"$tmp/compat/ctl"
        wait_until 15 grep -qF "Unprotected PID $pid " "$tmp/daemon.log" || fail "the FIFO's second line did not run"
        assert_unchanged "$pid" fifo
        ! tail -n +"$((before + 1))" "$tmp/daemon.log" | grep -F "written to $tmp/compat/ctl failed" ||
                fail "a FIFO line ran while the one before was pending"
        ok "ctl: \"setprotection P 1\\nsetprotection P 0\\n\" in one write runs in order with a late backend"
}

test_sighup_applies_allow_group_and_defaults() {
        spawn hup setpriv --reuid=65534 --regid=65534 --clear-groups
        local own=$spawned
        as=(setpriv --reuid=65534 --regid=65534 --groups="$users_gid")
        assert_eq "$(dbus_error Protect "uint32:$own")" org.oomprotect.Error.PermissionDenied \
                "a member of users before AllowGroup=users"
        as=()
        write_config AllowGroup=users DefaultMemoryMin=3M MemoryMinBudget=32M Slice=other-protected.slice
        kill -HUP "$daemon_pid"
        wait_until 5 grep -qF "Reloaded $tmp/oomprotectd.conf" "$tmp/daemon.log" || fail "no reload logged"
        grep -qF "Slice= changed from $slice to other-protected.slice; the change takes effect at the next start" \
                "$tmp/daemon.log" || fail "no warning about Slice="
        assert_eq "$(prop Slice)" "s \"$slice\"" "Slice after SIGHUP (restart-only)"
        assert_eq "$(prop MemoryMinBudget)" "t $((32 * 1024 * 1024))" "MemoryMinBudget after SIGHUP"
        setpriv --reuid=65534 --regid=65534 --groups="$users_gid" busctl --timeout=30 call org.oomprotect \
                /org/oomprotect org.oomprotect.Manager Protect u "$own" >/dev/null ||
                fail "a member of users may not protect after AllowGroup=users and SIGHUP"
        assert_protected "$own"
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtected |
                grep -qE "\[$own,[^]]*,$((3 * 1024 * 1024)),[0-9]+," || fail "DefaultMemoryMin=3M not applied"
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Unprotect u "$own" >/dev/null
        assert_unchanged "$own" hup
        kill -0 "$daemon_pid" || fail "oomprotectd died on SIGHUP"
        ok "SIGHUP applies AllowGroup=, DefaultMemoryMin= and MemoryMinBudget=, and keeps Slice= until the next start"
}

reloaded_more_than() {
        (($(grep -cF "Reloaded $tmp/oomprotectd.conf" "$tmp/daemon.log") > $1))
}

# The exit watch (one epoll set of pidfds): an exit during an operation on the record is looked at again
# once the operation is done, and the record goes; meanwhile the disarmed pidfd does not spin the loop.
test_exit_during_a_pending_update_is_cleaned_up_after_it() {
        spawn exiting
        local pid=$spawned caller d0 d1
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$pid" >/dev/null
        assert_protected "$pid"
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager ProtectWithOptions \
                'ua{sv}' "$pid" 1 MemoryLow t 1048576 >/dev/null 2>&1 &
        caller=$!
        sleep 0.3
        kill -0 "$caller" 2>/dev/null || fail "the update of $pid is not waiting for the backend: $(wait "$caller" 2>&1)"
        d0=$(awk '/ctxt_switches:/ { s += $2 } END { print s }' "/proc/$daemon_pid/status")
        kill "$pid"
        sleep 1
        d1=$(awk '/ctxt_switches:/ { s += $2 } END { print s }' "/proc/$daemon_pid/status")
        # 50 ms retries over 1 s: about 20 wakeups; a pidfd left armed would spin by the thousand.
        ((d1 - d0 < 200)) || fail "the daemon woke $((d1 - d0)) times in 1 s while the update was pending"
        wait "$caller" || true
        wait_until 10 not_protected "$pid" || fail "the record of $pid stayed after it exited"
        ok "an exit during a pending update is cleaned up once the update is done ($((d1 - d0)) wakeups meanwhile)"
}
not_protected() {
        [[ $(busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager IsProtected u "$1") == "b false" ]]
}

test_sigterm_waits_for_the_restores() {
        local reloads
        reloads=$(grep -cF "Reloaded $tmp/oomprotectd.conf" "$tmp/daemon.log")
        write_config RestoreOnStop=yes
        kill -HUP "$daemon_pid"
        wait_until 5 reloaded_more_than "$reloads" || fail "no reload logged"
        spawn stop-a
        local a=$spawned
        spawn stop-b
        local b=$spawned
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$a" >/dev/null &
        local pa=$!
        busctl --timeout=30 call org.oomprotect /org/oomprotect org.oomprotect.Manager Protect u "$b" >/dev/null
        wait "$pa"
        assert_protected "$a"
        assert_protected "$b"
        local start rc=0 took
        start=$(now_ms)
        kill -TERM "$daemon_pid"
        sleep 1
        kill -0 "$daemon_pid" 2>/dev/null || fail "oomprotectd exited before its restores were done"
        wait "$daemon_pid" || rc=$?
        took=$(($(now_ms) - start))
        daemon_pid=
        assert_eq "$rc" 0 "exit status after SIGTERM with restores pending (sanitizers included)"
        ((took >= DELAY_USEC / 1000 - 300)) || fail "exited after $took ms, before the restores"
        assert_unchanged "$a" stop-a
        assert_unchanged "$b" stop-b
        ok "SIGTERM with RestoreOnStop=yes exits after the pending restores are done ($took ms), everything restored"
}

# ---- run ----

start_private_bus "$tmp"
write_config
start_daemon
test_loop_stays_responsive_while_a_protect_is_pending
test_second_operation_on_a_pending_pid_is_busy
test_ctl_sock_keeps_the_order_of_the_replies
test_ctl_fifo_keeps_the_order_of_the_lines
test_exit_during_a_pending_update_is_cleaned_up_after_it
test_sighup_applies_allow_group_and_defaults
test_sigterm_waits_for_the_restores
echo "# all $n_ok passed"
