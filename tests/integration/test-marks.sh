#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The marks the userspace OOM killers read, as the real oomprotectd writes
# them (cgroupfs backend, a real cgroup2 subtree, a private bus), read back
# with getfattr and through `oomprotectctl doctor`:
#  - a moved protection's scope carries facebook oomd's trusted.oomd_avoid
#    and systemd-oomd's user.oomd_omit; they go with the scope;
#  - in place, the target's own cgroup gets trusted.oomd_avoid=1 (its
#    ancestors nothing) and gets back exactly what it had: no attribute, or
#    the same bytes (binary ones too), when the last protection there ends;
#  - across a SIGKILL of the daemon: the original is in state.json before
#    the mark is written, a restart keeps the mark while the process lives
#    and puts the original back when it died meanwhile;
#  - ManagedOOMPreference=none writes no mark.
#
# Needs root with CAP_SYS_ADMIN, a writable cgroup2 mount that keeps
# trusted.* xattrs, dbus-daemon, busctl and getfattr/setfattr; exits 77 with
# the reason when something is missing.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_CTL:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl getfattr setfattr
find_cgroup2

sandbox_slice oomptestmarks$$
if ! setfattr -n trusted.oomd_avoid -v 1 "$CG/$top" 2>/dev/null; then
        rmdir "$CG/$top"
        skip "the cgroup2 mount $CG keeps no trusted.* xattrs here (or CAP_SYS_ADMIN is missing)"
fi
setfattr -x trusted.oomd_avoid "$CG/$top"

tmp=$(mktemp -d /tmp/oomprotect-marks.XXXXXX)
CTL=$OOMPROTECT_CTL
# shellcheck disable=SC2034 # start_private_bus and sandbox_daemon set them, sandbox_exit kills them
dbus_pid='' daemon_pid=''
children=()

# shellcheck disable=SC2034 # read by name in sandbox_exit
sandbox_traps daemon_pid dbus_pid

# xattr DIR NAME: the value in hex (0x...), or "absent".
xattr() {
        local v
        v=$(getfattr --absolute-names -e hex -n "$2" "$1" 2>/dev/null | sed -n "s/^$2=//p") || true
        echo "${v:-absent}"
}

xattr_is() { # DIR NAME HEX
        [[ $(xattr "$1" "$2") == "$3" ]]
}

write_config() { # PREFERENCE
        {
                cgroupfs_config "$tmp/state"
                printf 'ManagedOOMPreference=%s\nOOMScoreAdjust=%s\n' "$1" "$protect_adj"
        } >"$tmp/oomprotectd.conf"
}

kill_daemon() {
        kill -KILL "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=''
        wait_until 10 sh -c '! busctl status org.oomprotect >/dev/null 2>&1' || fail "org.oomprotect still owned"
}

# spawn SUB: a sleep in <top>/SUB; $spawned is its pid.
spawn() {
        mkdir -p "$CG/$top/$1"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec sleep 1000' spawn \
                "$CG/$top/$1" "$child_adj" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "child $spawned did not start"
}

doctor_mark() { # PID NAME: true or false, as doctor --json read it
        "$CTL" doctor "$1" --json=short | sed -n "s/.*\"$2\":\([a-z]*\).*/\1/p"
}

test_moved_scope_is_marked_for_both_oomds() {
        spawn moved
        local pid=$spawned scope
        "$CTL" protect "$pid" >/dev/null || fail "protect $pid failed"
        scope=$CG/$slice_rel/oomprotect-$pid.scope
        assert_eq "$(cg_of "$pid")" "/$slice_rel/oomprotect-$pid.scope" "cgroup of $pid"
        assert_eq "$(xattr "$scope" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid of the scope"
        assert_eq "$(xattr "$scope" user.oomd_omit)" 0x31 "user.oomd_omit of the scope"
        assert_eq "$(doctor_mark "$pid" trusted.oomd_avoid)" true "doctor's trusted.oomd_avoid"
        assert_eq "$(doctor_mark "$pid" user.oomd_omit)" true "doctor's user.oomd_omit"
        "$CTL" unprotect "$pid" >/dev/null || fail "unprotect $pid failed"
        assert_eq "$(cg_of "$pid")" "/$top/moved" "cgroup of $pid after unprotect"
        [[ ! -d $scope ]] || fail "the scope $scope is still there"
        assert_eq "$(xattr "$CG/$top/moved" trusted.oomd_avoid)" absent "trusted.oomd_avoid of its own cgroup"
        assert_eq "$(doctor_mark "$pid" trusted.oomd_avoid)" false "doctor's trusted.oomd_avoid after unprotect"
        ok "a moved protection's scope carries trusted.oomd_avoid=1 and user.oomd_omit=1 (doctor reads both); gone with it"
}

test_in_place_mark_goes_back_to_absent() {
        spawn inplace/leaf
        local pid=$spawned dir=$CG/$top/inplace/leaf
        "$CTL" protect --in-place "$pid" >/dev/null || fail "protect --in-place $pid failed"
        assert_eq "$(cg_of "$pid")" "/$top/inplace/leaf" "cgroup of $pid in place"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid of the target"
        assert_eq "$(xattr "$CG/$top/inplace" trusted.oomd_avoid)" absent "trusted.oomd_avoid of its parent"
        assert_eq "$(doctor_mark "$pid" trusted.oomd_avoid)" true "doctor's trusted.oomd_avoid in place"
        "$CTL" unprotect "$pid" >/dev/null || fail "unprotect $pid failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" absent "trusted.oomd_avoid after unprotect"
        ok "in place: the target's own cgroup (not its parent) is marked, and the attribute is gone again after"
}

test_in_place_mark_restores_the_exact_bytes() {
        spawn exact
        local pid=$spawned dir=$CG/$top/exact second
        setfattr -n trusted.oomd_avoid -v 0x6f726967000aff "$dir"
        "$CTL" protect --in-place "$pid" >/dev/null || fail "protect --in-place $pid failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid while protected"
        grep -q '"original_oomd_avoid": *"6f726967000aff"' "$tmp/state/state.json" ||
                fail "state.json does not record the original: $(cat "$tmp/state/state.json")"
        # A second protection in the same cgroup shares the mark; the first to end leaves it.
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && exec sleep 1000' spawn \
                "$dir" "$child_adj" &
        second=$!
        children+=("$second")
        wait_until 5 is_comm "$second" sleep || fail "second child did not start"
        "$CTL" protect --in-place "$second" >/dev/null || fail "protect --in-place $second failed"
        "$CTL" unprotect "$pid" >/dev/null || fail "unprotect $pid failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid while $second is protected there"
        "$CTL" unprotect "$second" >/dev/null || fail "unprotect $second failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x6f726967000aff "trusted.oomd_avoid after the last unprotect"
        ok "in place: an attribute that was there (binary bytes) comes back exactly when the last protection ends"
}

test_restart_keeps_the_mark_and_restores_after_an_exit() {
        spawn restart
        local pid=$spawned dir=$CG/$top/restart
        setfattr -n trusted.oomd_avoid -v before "$dir"
        "$CTL" protect --in-place "$pid" >/dev/null || fail "protect --in-place $pid failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid while protected"
        kill_daemon
        sandbox_daemon "$tmp/oomprotectd.conf"
        assert_eq "$("$CTL" is-protected "$pid")" yes "$pid still protected after the restart"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" 0x31 "trusted.oomd_avoid after the restart"
        # Killed again, and the process dies while no daemon runs: the start puts the original back.
        kill_daemon
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        sandbox_daemon "$tmp/oomprotectd.conf"
        # "before" in hex: the start settles the holds after it replies to nobody, so poll.
        wait_until 5 xattr_is "$dir" trusted.oomd_avoid 0x6265666f7265 ||
                fail "trusted.oomd_avoid after a restart without the process: $(xattr "$dir" trusted.oomd_avoid)"
        ok "SIGKILL of the daemon: a restart keeps the mark while the process lives, and restores 'before' once it died"
}

test_preference_none_writes_no_mark() {
        write_config none
        kill -HUP "$daemon_pid"
        wait_until 5 grep -q "Reloaded" "$tmp/daemon.log" || fail "the daemon did not reload"
        spawn nomark
        local pid=$spawned dir=$CG/$top/nomark
        "$CTL" protect --in-place "$pid" >/dev/null || fail "protect --in-place $pid failed"
        assert_eq "$(xattr "$dir" trusted.oomd_avoid)" absent "trusted.oomd_avoid with ManagedOOMPreference=none"
        spawn nomark-moved
        pid=$spawned
        "$CTL" protect "$pid" >/dev/null || fail "protect $pid failed"
        assert_eq "$(xattr "$CG/$slice_rel/oomprotect-$pid.scope" trusted.oomd_avoid)" absent \
                "trusted.oomd_avoid of a scope with ManagedOOMPreference=none"
        "$CTL" unprotect --all >/dev/null || fail "unprotect --all failed"
        ok "ManagedOOMPreference=none: neither a scope nor an in-place target is marked"
}

# Lowering oom_score_adj needs CAP_SYS_RESOURCE, which the build machine's root may lack: then protect upwards.
if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
        protect_adj=-1000 child_adj=0
else
        protect_adj=0 child_adj=700
        note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
fi
write_config omit
start_private_bus "$tmp"
sandbox_daemon "$tmp/oomprotectd.conf"
test_moved_scope_is_marked_for_both_oomds
test_in_place_mark_goes_back_to_absent
test_in_place_mark_restores_the_exact_bytes
test_restart_keeps_the_mark_and_restores_after_an_exit
test_preference_none_writes_no_mark
echo "# all $n_ok passed"
