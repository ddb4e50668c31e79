#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Hostile files (issue 10, class 4): what someone planted in the state or
# compat directory never hangs, stops or redirects the daemon. A FIFO or a
# symbolic link at state.json is moved aside, a directory at the compat
# status path leaves D-Bus and ctl.sock serving, a symlinked CompatDirectory=
# is refused (its target gets nothing), a group-writable StateDirectory= is
# refused at start, and the temporary files of killed daemons are removed.
# The real oomprotectd on a private system-like bus.
#
# Needs root, a writable cgroup2 mount, dbus-daemon and busctl (exits 77 with
# the reason otherwise).
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

: "${OOMPROTECT_DAEMON:?}" "${OOMPROTECT_SRCDIR:?}"

require_root_and dbus-daemon busctl
find_cgroup2

name=oomptesth$$
top=$name.slice
slice=$name-protected.slice
mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"

tmp=$(mktemp -d /tmp/oomprotect-hostile.XXXXXX)
dbus_pid='' daemon_pid=''
children=()
trap 'sandbox_cleanup $? "$daemon_pid" "$dbus_pid"' EXIT

# config CASE [COMPATDIR]: $tmp/CASE/{state,compat} and its config file; sets dir, state, compat, conf.
config() {
        dir=$tmp/$1
        state=$dir/state
        compat=${2:-$dir/compat}
        conf=$dir/oomprotectd.conf
        mkdir -p "$state"
        chmod 0755 "$dir" "$state"
        cat >"$conf" <<EOF
[Manager]
Backend=cgroupfs
CgroupRoot=$CG
Slice=$slice
StateDirectory=$state
CompatDirectory=$compat
OOMScoreAdjust=0
EOF
}

# start: the daemon with $conf, its log at $dir/daemon.log (also $tmp/daemon.log for the cleanup).
start() {
        "$OOMPROTECT_DAEMON" --config="$conf" >"$dir/daemon.log" 2>&1 &
        daemon_pid=$!
        ln -sf "$dir/daemon.log" "$tmp/daemon.log"
}
stop() {
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=''
        local pid
        for pid in "${children[@]}"; do
                kill -KILL "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
        children=()
}
serving() {
        name_has_owner && [[ $(prop Version) == s* ]]
}
logged() {
        grep -qF -- "$1" "$dir/daemon.log" || fail "the log does not say '$1': $(cat "$dir/daemon.log")"
}

spawn() {
        mkdir -p "$CG/$top/orig"
        sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 1000' spawn "$CG/$top/orig" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" sleep || fail "child $spawned did not start"
}

start_private_bus "$tmp"

test_fifo_at_state_json_does_not_hang_the_start() {
        config fifo
        mkfifo -m 0600 "$state/state.json"
        start
        wait_until 10 serving || fail "oomprotectd did not come up with a FIFO at state.json"
        logged "is corrupt (not a regular file)"
        [[ ! -e $state/state.json || -f $state/state.json ]] || fail "the FIFO is still at state.json"
        compgen -G "$state/state.json.corrupt-*" >/dev/null || fail "the FIFO was not moved aside"
        stop
        ok "a FIFO at state.json is moved aside and the daemon starts"
}

test_symlink_at_state_json_is_not_followed() {
        config link
        echo '{"version":1,"protections":[]}' >"$dir/target"
        ln -s "$dir/target" "$state/state.json"
        start
        wait_until 10 serving || fail "oomprotectd did not come up with a symlink at state.json"
        logged "is corrupt (a symbolic link)"
        spawn
        mgr Protect u "$spawned" >/dev/null
        [[ $(cat "$dir/target") == '{"version":1,"protections":[]}' ]] || fail "the link's target was written"
        [[ -f $state/state.json && ! -L $state/state.json ]] || fail "state.json is not a file of its own"
        stop
        ok "a symlink at state.json is moved aside, its target never written"
}

test_directory_at_status_leaves_dbus_and_ctl_sock_serving() {
        config statusdir
        mkdir -p "$compat/status"
        chmod 0755 "$compat"
        start
        wait_until 10 serving || fail "oomprotectd did not come up with a directory at status"
        logged "status (a directory there?), serving the rest"
        [[ -S $compat/ctl.sock && -p $compat/ctl ]] || fail "ctl and ctl.sock are not served"
        spawn
        mgr Protect u "$spawned" >/dev/null
        assert_eq "$(mgr IsProtected u "$spawned")" "b true" "IsProtected after Protect"
        serving || fail "D-Bus went away after a status rewrite failed"
        stop
        ok "a directory at status: D-Bus and ctl.sock keep serving, the log says why"
}

test_symlinked_compat_directory_is_refused() {
        config linkcase "$tmp/compatlink/compat"
        mkdir -p "$dir/elsewhere/compat"
        chmod 0755 "$dir/elsewhere" "$dir/elsewhere/compat"
        ln -s "$dir/elsewhere" "$tmp/compatlink"
        start
        wait_until 10 serving || fail "oomprotectd did not serve D-Bus with a symlinked CompatDirectory="
        logged "goes through a symbolic link; refusing it"
        [[ -z $(ls -A "$dir/elsewhere/compat") ]] || fail "the link target got $(ls -A "$dir/elsewhere/compat")"
        stop
        rm "$tmp/compatlink"
        ok "a symlinked CompatDirectory= is refused and its target left empty; D-Bus serves"
}

test_group_writable_state_directory_is_refused() {
        config groupwritable
        chmod 0775 "$state"
        start
        local rc=0
        wait "$daemon_pid" || rc=$?
        daemon_pid=''
        ((rc != 0)) || fail "oomprotectd started with a group-writable StateDirectory="
        logged "it must be root's and not writable by group or others"
        ok "a group-writable StateDirectory= is refused at start"
}

test_stale_temp_files_of_killed_daemons_are_removed() {
        config stale
        mkdir -p "$compat"
        chmod 0755 "$compat"
        local dead
        sh -c 'exit 0' &
        dead=$!
        wait "$dead"
        touch "$state/.#state.json.$dead.0" "$compat/.#status.$dead.7" "$compat/.#usage.$dead.1"
        touch "$state/.#state.json.$$.0" # a writer that still runs: kept
        start
        wait_until 10 serving || fail "oomprotectd did not come up"
        [[ ! -e $state/.#state.json.$dead.0 && ! -e $compat/.#status.$dead.7 && ! -e $compat/.#usage.$dead.1 ]] ||
                fail "stale temporary files are still there: $(ls -A "$state" "$compat")"
        [[ -e $state/.#state.json.$$.0 ]] || fail "the temporary file of a live writer was removed"
        stop
        ok "temporary files of dead writers are removed at start, a live writer's kept"
}

test_names_and_tags_from_clients_reach_no_output_raw() {
        if ! command -v python3 >/dev/null; then
                note "no python3 to name a process with escape sequences: not tested here"
                return 0
        fi
        : "${OOMPROTECT_CTL:?}"
        config text
        start
        wait_until 10 serving || fail "oomprotectd did not come up"
        mkdir -p "$CG/$top/orig"
        # A process that names itself ESC[2J, a C1 CSI and a stray byte, then waits.
        python3 -c '
import ctypes, sys, time
open(sys.argv[1] + "/cgroup.procs", "w").write("0")
ctypes.CDLL(None).prctl(15, b"\x1b[2Jx\xc2\x9b\xffend", 0, 0, 0)
time.sleep(1000)' "$CG/$top/orig" &
        local evil=$! esc=$'\033' got
        children+=("$evil")
        wait_until 5 grep -q end "/proc/$evil/comm" || fail "the python child did not rename itself"
        if mgr ProtectWithOptions 'ua{sv}' "$evil" 1 Tag s "${esc}[31mred" >/dev/null 2>&1; then
                fail "a tag with an escape sequence was accepted"
        fi
        mgr ProtectWithOptions 'ua{sv}' "$evil" 1 Tag s "ok-tag" >/dev/null
        got=$(mgr ListProtected)
        [[ $got != *"$esc"* && $got == *'x1b[2Jx'* ]] || fail "ListProtected: $(cat -v <<<"$got")"
        got=$("$OOMPROTECT_CTL" status)
        [[ $got != *"$esc"* && $got == *'\x1b[2Jx\xc2\x9b\xffend'* ]] || fail "oomprotectctl status: $got"
        ! grep -q "$esc" "$dir/daemon.log" || fail "the log holds a raw ESC: $(cat -v "$dir/daemon.log")"
        grep -qF 'x1b[2Jx' "$dir/daemon.log" || fail "the log does not name the process escaped"
        stop
        ok "an escape-sequence comm and tag reach neither ListProtected, the CLI nor the log raw"
}

test_fifo_at_state_json_does_not_hang_the_start
test_symlink_at_state_json_is_not_followed
test_directory_at_status_leaves_dbus_and_ctl_sock_serving
test_symlinked_compat_directory_is_refused
test_group_writable_state_directory_is_refused
test_stale_temp_files_of_killed_daemons_are_removed
test_names_and_tags_from_clients_reach_no_output_raw
echo "1..$n_ok"
