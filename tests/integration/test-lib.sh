#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# liboomprotect and `oomprotectctl run` end to end: the real oomprotectd on a
# private system-like bus with the shipped policy, real processes in a real
# cgroup2 subtree. lib-helper calls the shared library as a C program would
# and prints each result as the errno name plus oomprotect_strerror(); the
# README's example program is built from README.md and run here too.
#
# Needs root, a writable cgroup2 mount, dbus-daemon, busctl and setpriv;
# exits 77 with the reason when something is missing.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_LIB_HELPER:?}" "${OOMPROTECT_README_EXAMPLE:?}"
: "${OOMPROTECT_SRCDIR:?}"
TRUSTED=${OOMPROTECT_TRUSTED_HELPER:-}

require_root_and dbus-daemon busctl setpriv pgrep
find_cgroup2

name=oomptestlib$$
top=$name.slice
slice=$name-protected.slice
slice_rel=$top/$slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-lib.XXXXXX)
chmod 0755 "$tmp" # the bus socket in it must be reachable for uid 65534
CTL=$OOMPROTECT_CTL
HELPER=$OOMPROTECT_LIB_HELPER
dbus_pid='' daemon_pid=''
children=()

cleanup() {
        local rc=$?
        set +e
        if [[ $rc -ne 0 && $rc -ne 77 && -f $tmp/daemon.log ]]; then
                echo "--- daemon log (last 40 lines) ---"
                tail -n 40 "$tmp/daemon.log"
        fi
        kill_sandbox "$CG/$top" "$daemon_pid" "$dbus_pid" "${children[@]}"
        rm -rf "$tmp"
        exit "$rc"
}
trap cleanup EXIT
set -E
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR

# ---- helpers ----

cg_of() {
        sed -n 's/^0:://p' "/proc/$1/cgroup"
}
adj_of() {
        cat "/proc/$1/oom_score_adj"
}
is_comm() {
        [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}
# in_cgroup SUB CMD...: runs CMD inside <top>/SUB with oom_score_adj $child_adj.
# shellcheck disable=SC2016 # expanded by the inner sh
join_and_exec='echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && shift 2 && exec "$@"'
in_cgroup() {
        local sub=$1
        shift
        mkdir -p "$CG/$top/$sub"
        sh -c "$join_and_exec" in_cgroup "$CG/$top/$sub" "$child_adj" "$@"
}
# spawn SUB [WRAPPER...]: a sleep in <top>/SUB at $child_adj; $spawned is its pid once it runs sleep.
spawn() {
        local sub=$1
        shift
        mkdir -p "$CG/$top/$sub"
        sh -c "$join_and_exec" spawn "$CG/$top/$sub" "$child_adj" "$@" sleep 1000 &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "child $spawned did not start"
}
# expect STEP VALUE OUTPUT: the line STEP=... of OUTPUT is VALUE (for errors: starts with it).
expect() {
        local got
        got=$(sed -n "s/^$1=//p" <<<"$3" | head -n 1)
        [[ $got == "$2"* ]] || fail "$1: expected '$2', got '$got' (all: $3)"
}
is_protected() {
        [[ $("$HELPER" is-protected "$1") == "is-protected=yes" ]]
}
not_protected() {
        [[ $("$HELPER" is-protected "$1") == "is-protected=no" ]]
}
dead_pid() {
        local pid
        true &
        pid=$!
        wait "$pid"
        echo "$pid"
}

write_config() {
        cat >"$tmp/oomprotectd.conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$tmp/state
CompatDirectory=$tmp/state/compat
OOMScoreAdjust=$protect_adj
AllowGroup=users
MemoryMinBudget=64M
MaxProtected=2
EOF
}
start_daemon() {
        "$OOMPROTECT_DAEMON" --config="$tmp/oomprotectd.conf" --log-level=debug >"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}

# ---- the environment ----

if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 child_adj=0 custom_adj=-500
else
        protect_adj=0 child_adj=700 custom_adj=100
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi
users_gid=$(getent group users | cut -d: -f3)
[[ -n $users_gid ]] || skip "there is no group \"users\" for the AllowGroup= tests"
# Commands, not functions, so that in_cgroup can exec them.
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
as_member=(setpriv --reuid=65534 --regid=65534 --groups="$users_gid")
write_config

# ---- without a daemon ----

test_options_are_checked_in_the_library() {
        local out
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent "$HELPER" options)
        expect too-small "EINVAL struct oomprotect_options has size 8" "$out"
        expect unknown-bit "EINVAL Unknown option bits 0x10000000000" "$out"
        expect newer-nonzero "E2BIG struct oomprotect_options has fields this version" "$out"
        expect pid-zero "EINVAL PID 0 is not a valid process ID." "$out"
        expect pid-negative "EINVAL PID -5 is not a valid process ID." "$out"
        expect empty-tag "EINVAL A tag must not be empty." "$out"
        expect strerror-plain "No such file or directory" "$out"
        ok "the library checks the options struct's size and bits, PIDs and tags itself"
}

test_no_bus_and_no_daemon_are_econnrefused() {
        local out
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/nonexistent "$HELPER" is-protected 1)
        expect is-protected "ECONNREFUSED Cannot connect to the system bus at unix:path=$tmp/nonexistent" "$out"
        out=$("$HELPER" is-protected 1)
        expect is-protected "ECONNREFUSED oomprotectd is not running (no org.oomprotect on the system bus)." "$out"
        local rc=0
        out=$("$CTL" run -- touch "$tmp/ran" 2>&1) || rc=$?
        assert_eq "$rc" 3 "run without a daemon: exit status ($out)"
        [[ ! -e $tmp/ran ]] || fail "run executed the command without protection"
        ok "no bus or no daemon: -ECONNREFUSED with a sentence; run exits 3 and does not run the command"
}

# ---- the library ----

test_set_get_self() {
        local out pid
        out=$(in_cgroup self "$HELPER" self)
        pid=$(sed -n 's/^pid=//p' <<<"$out")
        expect get-before no "$out"
        expect set-true ok "$out"
        expect get-after-set yes "$out"
        assert_eq "$(sed -n 's/^cgroup=//p' <<<"$out" | head -n 1)" "/$slice_rel/oomprotect-$pid.scope" "own cgroup"
        assert_eq "$(sed -n 's/^adj=//p' <<<"$out" | head -n 1)" "$protect_adj" "own adj"
        expect set-false ok "$out"
        expect get-after-unset no "$out"
        assert_eq "$(sed -n 's/^cgroup=//p' <<<"$out" | tail -n 1)" "/$top/self" "own cgroup restored"
        assert_eq "$(sed -n 's/^adj=//p' <<<"$out" | tail -n 1)" "$child_adj" "own adj restored"

        out=$(in_cgroup self-nobody "${as_nobody[@]}" "$HELPER" self)
        expect set-true "EPERM Only root and members of the AllowGroup= group may change protections" "$out"
        expect get-after-set no "$out"
        out=$(in_cgroup self-member "${as_member[@]}" "$HELPER" self)
        expect set-true ok "$out"
        expect get-after-set yes "$out"
        expect set-false ok "$out"
        ok "oomprotect_set_self/get_self: the caller moves into its scope and back; nobody gets -EPERM, a member may"
}

test_protect_unprotect() {
        local out pid
        spawn orig
        pid=$spawned
        expect protect ok "$("$HELPER" protect "$pid")"
        is_protected "$pid" || fail "IsProtected after protect"
        assert_eq "$(cg_of "$pid")" "/$slice_rel/oomprotect-$pid.scope" "cgroup after protect"
        assert_eq "$(adj_of "$pid")" "$protect_adj" "adj after protect"
        out=$("$HELPER" status)
        expect count 1 "$out"
        expect entry "$pid sleep /$slice_rel/oomprotect-$pid.scope $child_adj $protect_adj 0 dbus" "$out"
        expect unprotect ok "$("$HELPER" unprotect "$pid")"
        not_protected "$pid" || fail "IsProtected after unprotect"
        assert_eq "$(cg_of "$pid")" "/$top/orig" "cgroup after unprotect"
        assert_eq "$(adj_of "$pid")" "$child_adj" "adj after unprotect"

        expect protect ok "$("$HELPER" protect "$pid" min=8388608 adj="$custom_adj" tag=lib)"
        out=$("$HELPER" status)
        expect in-use 8388608 "$out"
        expect entry "$pid sleep /$slice_rel/oomprotect-$pid.scope $child_adj $custom_adj 8388608 dbus lib" "$out"
        assert_eq "$(adj_of "$pid")" "$custom_adj" "adj with options"
        assert_eq "$("$HELPER" unprotect-tag lib)" "unprotect-tag=1" "unprotect_tag"
        assert_eq "$(cg_of "$pid")" "/$top/orig" "cgroup after unprotect_tag"
        expect protect ok "$("$HELPER" protect "$pid")"
        assert_eq "$("$HELPER" unprotect-all)" "unprotect-all=1" "unprotect_all"
        victim=$pid
        ok "oomprotect_protect (with and without options), unprotect, is_protected, unprotect_tag, unprotect_all, get_status"
}

test_every_error_is_mapped() {
        local pid out scope
        expect protect "ESRCH No process with PID" "$("$HELPER" protect "$(dead_pid)")"
        expect unprotect "ENOENT PID $victim is not protected." "$("$HELPER" unprotect "$victim")"
        expect protect "ENOSPC memory.min 128.0M on top of 0B in use exceeds MemoryMinBudget=64.0M" \
                "$("$HELPER" protect "$victim" min=134217728)"
        expect protect "EINVAL PID 1 is the init process" "$("$HELPER" protect 1)"
        expect protect "EINVAL OOMScoreAdjust 5000 is out of range" "$("$HELPER" protect "$victim" adj=5000)"
        expect protect "EPERM Only root and members" "$("${as_nobody[@]}" "$HELPER" protect "$victim")"
        expect protect "EPERM" "$("${as_member[@]}" "$HELPER" protect "$victim")" # a member, but root's process
        not_protected "$victim" || fail "a refused request protected $victim"

        # A leftover scope that still holds a process: the backend refuses to reuse it.
        spawn leftover
        pid=$spawned
        scope=$CG/$slice_rel/oomprotect-$pid.scope
        mkdir -p "$scope"
        spawn leftover-kid
        echo "$spawned" >"$scope/cgroup.procs"
        expect protect "EIO /$slice_rel/oomprotect-$pid.scope still holds 1 process(es)" "$("$HELPER" protect "$pid")"
        echo "$spawned" >"$CG/$top/leftover-kid/cgroup.procs"

        # MaxProtected=2.
        spawn many
        expect protect ok "$("$HELPER" protect "$victim")"
        expect protect ok "$("$HELPER" protect "$spawned")"
        expect protect "EUSERS" "$("$HELPER" protect "$pid")"
        "$HELPER" unprotect-all >/dev/null

        # A daemon that does not answer: sd-bus's 25 s call timeout.
        kill -STOP "$daemon_pid"
        out=$("$HELPER" is-protected "$victim")
        kill -CONT "$daemon_pid"
        expect is-protected "ETIMEDOUT oomprotectd did not answer in time" "$out"
        note "AlreadyProtected (-EEXIST) is not sent by this daemon (protecting again succeeds); -EPROTO needs" \
                "a daemon of another version"
        ok "ESRCH, ENOENT, ENOSPC, EINVAL (process, argument), EPERM, EIO, EUSERS, ETIMEDOUT, each with the daemon's sentence"
}

test_readme_example() {
        local out rc=0
        out=$(in_cgroup example "$OOMPROTECT_README_EXAMPLE" 2>&1) || rc=$?
        assert_eq "$rc.$out" "0.protected: yes" "README example as root"
        rc=0
        out=$(in_cgroup example "${as_nobody[@]}" "$OOMPROTECT_README_EXAMPLE" 2>&1) || rc=$?
        assert_eq "$rc" 1 "README example as nobody: exit status ($out)"
        [[ $out == "Cannot protect myself: Only root and members"* ]] || fail "README example as nobody: $out"
        ok "the README's example program protects itself, and says why when it may not"
}

test_pkg_config_file() {
        local out
        out=$(PKG_CONFIG_PATH=$OOMPROTECT_BINDIR pkg-config --cflags --libs liboomprotect)
        [[ $out == *-loomprotect* ]] || fail "pkg-config liboomprotect: $out"
        objdump -p "$OOMPROTECT_BINDIR/liboomprotect.so.0" | grep -q 'SONAME *liboomprotect.so.0' ||
                fail "no soname liboomprotect.so.0"
        out=$(objdump -p "$OOMPROTECT_BINDIR/liboomprotect.so.0" | awk '/NEEDED/ { print $2 }' |
                grep -vE '^(libsystemd\.so\.0|libc\.so\.6|ld-linux.*|libasan\.so.*|libubsan\.so.*)$' || true)
        assert_eq "$out" "" "libraries liboomprotect needs besides libsystemd and libc"
        out=$(nm -D --defined-only "$OOMPROTECT_BINDIR/liboomprotect.so.0" | awk '$2 == "T" { print $3 }' |
                grep -v '^oomprotect_' || true)
        assert_eq "$out" "" "exported symbols outside oomprotect_*"
        ok "liboomprotect.so.0: soname, only libsystemd, only oomprotect_* exported (version script), pkg-config file"
}

test_bus_policy_refusal_is_eacces() {
        local pid2 bus2_pid out
        # A second private bus whose policy shuts uid 65534 out of org.oomprotect, with a second daemon on it.
        sed -e "s|$tmp/bus.sock|$tmp/bus2.sock|" \
                -e 's|</busconfig>|<policy user="nobody"><deny send_destination="org.oomprotect"/></policy></busconfig>|' \
                "$tmp/bus.conf" >"$tmp/bus2.conf"
        (
                umask 000
                exec dbus-daemon --config-file="$tmp/bus2.conf" --nofork --nopidfile 2>"$tmp/dbus2.log"
        ) &
        bus2_pid=$!
        children+=("$bus2_pid")
        wait_until 10 test -S "$tmp/bus2.sock" || fail "the second dbus-daemon did not start"
        sed -e "s|^Slice=.*|Slice=$name-second-protected.slice|" -e "s|$tmp/state|$tmp/state2|" \
                "$tmp/oomprotectd.conf" >"$tmp/second.conf"
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/bus2.sock "$OOMPROTECT_DAEMON" --config="$tmp/second.conf" \
                >"$tmp/second.log" 2>&1 &
        pid2=$!
        children+=("$pid2")
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/bus2.sock wait_until 10 name_has_owner ||
                fail "the second oomprotectd did not start: $(cat "$tmp/second.log")"
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/bus2.sock "${as_nobody[@]}" "$HELPER" is-protected 1)
        expect is-protected "EACCES" "$out"
        kill -TERM "$pid2" "$bus2_pid"
        ok "a call the bus policy refuses is -EACCES"
}

# ---- oomprotectctl run ----

test_run_starts_inside_the_scope() {
        local out pid rc=0
        out=$(in_cgroup run "$CTL" run -- cat /proc/self/stat /proc/self/cgroup /proc/self/oom_score_adj)
        pid=$(head -n 1 <<<"$out" | cut -d' ' -f1)
        [[ $(head -n 1 <<<"$out") == "$pid (cat) "* ]] || fail "run's command: $out"
        assert_eq "$(sed -n 's/^0:://p' <<<"$out")" "/$slice_rel/oomprotect-$pid.scope" "the command's first cgroup"
        assert_eq "$(tail -n 1 <<<"$out")" "$protect_adj" "the command's first oom_score_adj"
        wait_until 5 not_protected "$pid" || fail "the protection of $pid outlived the command"
        wait_until 5 test ! -d "$CG/$slice_rel/oomprotect-$pid.scope" || fail "the scope outlived the command"

        out=$(in_cgroup run "$CTL" run --adj "$custom_adj" -- cat /proc/self/oom_score_adj)
        assert_eq "$out" "$custom_adj" "run --adj"
        out=$(in_cgroup run "${as_nobody[@]}" "$CTL" run -- touch "$tmp/ran" 2>&1) || rc=$?
        assert_eq "$rc" 4 "run as nobody: exit status ($out)"
        [[ ! -e $tmp/ran ]] || fail "run executed the command although the protection was refused"
        ok "run: the command's first instruction is in its scope at the protected adj; the protection ends with it"
}

test_run_passes_the_exit_status_on() {
        local rc=0
        "$CTL" run -- sh -c 'exit 7' || rc=$?
        assert_eq "$rc" 7 "run's exit status"
        assert_eq "$("$HELPER" wait "$CTL" run -- sh -c 'kill -USR1 $$')" "signaled 10" "death by SIGUSR1"
        assert_eq "$("$HELPER" wait "$CTL" run -- sh -c 'kill -KILL $$')" "signaled 9" "death by SIGKILL"
        assert_eq "$("$HELPER" wait "$CTL" run -- sh -c 'kill -SEGV $$')" "signaled 11" "death by SIGSEGV"
        assert_eq "$("$HELPER" wait "$CTL" run -- "$tmp/nonexistent")" "exited 127" "a command that does not exist"
        assert_eq "$("$HELPER" wait "$CTL" run -- "$tmp")" "exited 126" "a command that cannot be executed"
        ok "run: the exit status, death by a signal (re-raised), 127 and 126 as a shell has them"
}

test_run_forwards_signals() {
        local wrapper cmd sig
        for sig in TERM INT HUP USR2; do
                "$HELPER" wait "$CTL" run -- sleep 1000 >"$tmp/wait.out" &
                children+=("$!")
                wait_until 5 pgrep -P "$!" -x oomprotectctl >/dev/null || fail "no oomprotectctl"
                wrapper=$(pgrep -P "$!" -x oomprotectctl)
                wait_until 5 pgrep -P "$wrapper" -x sleep >/dev/null || fail "run did not start sleep"
                cmd=$(pgrep -P "$wrapper" -x sleep)
                wait_until 5 is_protected "$cmd" || fail "run's command $cmd is not protected"
                kill -"$sig" "$wrapper"
                wait_until 5 test -s "$tmp/wait.out" || fail "run did not end after SIG$sig"
                assert_eq "$(cat "$tmp/wait.out")" "signaled $(kill -l "$sig")" "run after SIG$sig"
                wait_until 5 not_protected "$cmd" || fail "the protection of $cmd outlived it"
        done
        ok "run: TERM, INT, HUP and USR2 sent to oomprotectctl reach the command, and it dies of them as they were"
}

# ---- org.oomprotect.Trusted: what oomprotect-cuse asks for an ioctl's caller ----

test_trusted_acts_for_the_caller_as_set_self_protection() {
        local nobody member
        [[ -n $TRUSTED ]] || { note "built without libfuse3: no oomprotect-cuse, org.oomprotect.Trusted not tested"; return; }
        assert_eq "$("$TRUSTED" tgid)" $'tid-differs=yes\ntgid=ok' "a thread's TID maps to its process"
        expect set ok "$("$TRUSTED" set "$victim" 0 1)"
        assert_eq "$("$TRUSTED" get "$victim")" get=yes "GetProtectionFor after set"
        assert_eq "$(cg_of "$victim")" "/$slice_rel/oomprotect-$victim.scope" "cgroup after SetProtectionFor"
        assert_eq "$(adj_of "$victim")" "$protect_adj" "adj after SetProtectionFor"
        expect entry "$victim sleep /$slice_rel/oomprotect-$victim.scope $child_adj $protect_adj 0 cuse" "$("$HELPER" status)"
        expect set ok "$("$TRUSTED" set "$victim" 0 0)"
        assert_eq "$("$TRUSTED" get "$victim")" get=no "GetProtectionFor after unset"
        assert_eq "$(cg_of "$victim")" "/$top/orig" "cgroup restored"
        assert_eq "$(adj_of "$victim")" "$child_adj" "adj restored"
        expect set ok "$("$TRUSTED" set "$victim" 0 0)" # unset when not protected: a no-op, as SetSelfProtection

        spawn trusted-nobody "${as_nobody[@]}"
        nobody=$spawned
        spawn trusted-member "${as_member[@]}"
        member=$spawned
        expect set EPERM "$("$TRUSTED" set "$nobody" 65534 1)"
        expect set EPERM "$("$TRUSTED" set "$nobody" 0 1)" # a uid that is not the process's
        expect set ok "$("$TRUSTED" set "$member" 65534 1)" # its groups, read from the process itself
        assert_eq "$("$TRUSTED" get "$member")" get=yes "a member's own process"
        expect set ok "$("$TRUSTED" set "$member" 65534 0)"
        expect set EINVAL "$("$TRUSTED" set 1 0 1)"
        expect set ESRCH "$("$TRUSTED" set "$(dead_pid)" 0 1)"
        ok "SetProtectionFor/GetProtectionFor: a thread maps to its process; root, a member's own process; others EPERM"
}

test_trusted_is_root_only_and_never_hangs() {
        local out rc=0
        [[ -n $TRUSTED ]] || return 0
        # busctl cannot pass a pidfd: a call without one is refused by the policy, or (root) by the daemon.
        out=$("${as_member[@]}" busctl call org.oomprotect /org/oomprotect org.oomprotect.Trusted GetProtectionFor 2>&1) ||
                rc=$?
        [[ $rc -ne 0 && $out == *"ccess denied"* ]] || fail "Trusted as a group member: rc $rc, $out"
        rc=0
        out=$(busctl call org.oomprotect /org/oomprotect org.oomprotect.Trusted GetProtectionFor 2>&1) || rc=$?
        [[ $rc -ne 0 && $out != *"ccess denied"* ]] || fail "Trusted as root: rc $rc, $out"
        kill -STOP "$daemon_pid"
        SECONDS=0
        out=$("$TRUSTED" get "$victim")
        kill -CONT "$daemon_pid"
        assert_eq "$out" get=EIO "GetProtectionFor of a stopped daemon"
        ((SECONDS <= 7)) || fail "the call took ${SECONDS}s, more than its 5 s timeout"
        kill -KILL "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=
        assert_eq "$("$TRUSTED" set "$victim" 0 1)" set=EIO "SetProtectionFor without a daemon"
        ok "org.oomprotect.Trusted: the bus policy refuses non-root; no daemon or a stuck one gives EIO within 5 s"
}

echo "# cgroup2 at $CG, sandbox $top, work directory $tmp"
test_options_are_checked_in_the_library
start_private_bus "$tmp"
test_no_bus_and_no_daemon_are_econnrefused
start_daemon
test_set_get_self
test_protect_unprotect
test_every_error_is_mapped
test_bus_policy_refusal_is_eacces
test_readme_example
test_pkg_config_file
test_run_starts_inside_the_scope
test_run_passes_the_exit_status_on
test_run_forwards_signals
test_trusted_acts_for_the_caller_as_set_self_protection
test_trusted_is_root_only_and_never_hangs
echo "# all $n_ok passed"
