# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the integration shell tests: TAP-like reporting, polling, the
# cgroup2 mount, and a private system-like bus. Source it; it defines
# functions only, plus CG (the cgroup2 mount) once find_cgroup2 ran.

skip() {
        echo "SKIP: $*"
        exit 77
}
fail() {
        echo "FAIL: $*" >&2
        exit 1
}
n_ok=0
ok() {
        n_ok=$((n_ok + 1))
        echo "ok $n_ok - $*"
}
note() {
        echo "# note: $*"
}
assert_eq() {
        [[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# wait_until SECONDS CMD...: polls CMD every 20 ms until it succeeds or time is up.
wait_until() {
        local tries=$(($1 * 50))
        shift
        until "$@"; do
                tries=$((tries - 1))
                ((tries > 0)) || return 1
                sleep 0.02
        done
}

# require_root_and TOOL...: skips unless root with every tool installed.
require_root_and() {
        [[ $(id -u) -eq 0 ]] || skip "not root: the test writes cgroupfs and starts a system-like bus"
        local tool
        for tool in "$@"; do
                command -v "$tool" >/dev/null || skip "$tool is not installed"
        done
}

# host_adjs: protect_adj and child_adj for this host: -1000 from 0, or, where lowering oom_score_adj is
# refused (no CAP_SYS_RESOURCE, as the build machine's root), 0 from 700, said in a note.
# shellcheck disable=SC2034 # set for the sourcing test
host_adjs() {
        if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
                protect_adj=-1000 child_adj=0
        else
                protect_adj=0 child_adj=700
                note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
        fi
}

# find_cgroup2: sets CG to the cgroup2 mount, or skips.
find_cgroup2() {
        CG=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
                /proc/self/mountinfo)
        [[ -n $CG ]] || skip "no cgroup2 file system is mounted"
}

# start_private_bus DIR: a dbus-daemon configured like the system bus with the
# shipped policy, listening on DIR/bus.sock; sets dbus_pid and exports
# DBUS_SYSTEM_BUS_ADDRESS.
start_private_bus() {
        local dir=$1
        sed -e "s|@SOCKET@|$dir/bus.sock|" -e "s|@POLICY@|$OOMPROTECT_SRCDIR/conf/org.oomprotect.conf|" \
                "$OOMPROTECT_SRCDIR/tests/integration/system-bus.conf.in" >"$dir/bus.conf"
        (
                umask 000 # the socket must be reachable for the unprivileged callers the tests use
                exec dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>"$dir/dbus.log"
        ) &
        # shellcheck disable=SC2034 # the caller's cleanup kills it
        dbus_pid=$!
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus.sock
        wait_until 10 test -S "$dir/bus.sock" || fail "dbus-daemon did not start: $(cat "$dir/dbus.log")"
}

mgr() {
        busctl call org.oomprotect /org/oomprotect org.oomprotect.Manager "$@"
}
name_has_owner() {
        [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s \
                org.oomprotect 2>/dev/null) == "b true" ]]
}

# sandbox_cleanup RC PID...: the end of a test run, whatever fails on the way: kills each PID given (empty ones
# are skipped), everything in the sandbox $CG/$top and the ${children[@]} the test spawned, shows the end of
# $tmp/daemon.log after a failure, removes $CG/$top and $tmp, and exits RC.
# shellcheck disable=SC2154 # the sourcing test owns children, top and tmp
sandbox_cleanup() {
        local rc=$1 pid
        shift
        set +e
        for pid in "$@"; do
                [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
        done
        echo 1 >"$CG/$top/cgroup.kill" 2>/dev/null
        for pid in "${children[@]}"; do
                kill -KILL "$pid" 2>/dev/null
        done
        wait 2>/dev/null
        if [[ $rc -ne 0 && $rc -ne 77 && -f $tmp/daemon.log ]]; then
                echo "--- daemon log (last 40 lines) ---"
                tail -n 40 "$tmp/daemon.log"
        fi
        for _ in $(seq 100); do
                find "$CG/$top" -depth -type d -exec rmdir {} + 2>/dev/null
                [[ -d $CG/$top ]] || break
                sleep 0.02 # the kernel frees killed cgroups asynchronously
        done
        [[ -d $CG/$top ]] && echo "# warning: could not remove $CG/$top"
        rm -rf "$tmp"
        exit "$rc"
}

cg_of() {
        sed -n 's/^0:://p' "/proc/$1/cgroup"
}
adj_of() {
        cat "/proc/$1/oom_score_adj"
}
adj_is() { # PID ADJ
        [[ $(adj_of "$1" 2>/dev/null) == "$2" ]]
}
units_list() {
        busctl --json=short call org.oomprotect /org/oomprotect org.oomprotect.Manager ListProtectedUnits
}
# rmdir_killed DIR: removes the cgroup DIR whose processes were just killed (the kernel frees them asynchronously).
rmdir_killed() {
        for _ in $(seq 250); do
                rmdir "$1" 2>/dev/null && return 0
                sleep 0.02
        done
        fail "could not remove $1"
}
is_comm() {
        [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}
prop() {
        busctl get-property org.oomprotect /org/oomprotect org.oomprotect.Manager "$1"
}

# kill_sandbox CGDIR PID...: SIGKILL for PIDs (continued first, in case a test stopped them) and
# every process of CGDIR, then CGDIR removed depth-first (the kernel frees killed cgroups asynchronously).
kill_sandbox() {
        local dir=$1 pid
        shift
        for pid in "$@"; do
                [[ -n $pid ]] && kill -CONT "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        done
        echo 1 >"$dir/cgroup.kill" 2>/dev/null
        wait 2>/dev/null
        for _ in $(seq 100); do
                find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
                [[ -d $dir ]] || return 0
                sleep 0.02
        done
        echo "# warning: could not remove $dir"
}

# expect_clean_sigterm: SIGTERM to $daemon_pid, which must exit 0 (the sanitizers report through the status).
expect_clean_sigterm() {
        local rc=0
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || rc=$?
        daemon_pid=
        assert_eq "$rc" 0 "exit status of oomprotectd after SIGTERM (sanitizers included)"
        ok "oomprotectd stops cleanly on SIGTERM"
}

# sandbox_config DIR ADJ: DIR/state and DIR/compat (0755) and DIR/oomprotectd.conf for the cgroupfs backend in
# $CG with $slice, OOMScoreAdjust=ADJ.
# shellcheck disable=SC2154 # the sourcing test owns slice
sandbox_config() {
        mkdir -m 0755 "$1/state" "$1/compat"
        printf '[Manager]\nBackend=cgroupfs\nCgroupRoot=%s\nSlice=%s\nStateDirectory=%s\nCompatDirectory=%s\nOOMScoreAdjust=%s\n' \
                "$CG" "$slice" "$1/state" "$1/compat" "$2" >"$1/oomprotectd.conf"
}

# sandbox_begin KIND: $CG/$top (oomptest<KIND><pid>.slice; skips where the mount is not writable) with $slice
# beside it, $tmp (0755), and the EXIT trap that cleans it all up (sandbox_cleanup with $daemon_pid,
# $helper_pid, $dbus_pid).
# shellcheck disable=SC2034 # the sourcing test uses them
sandbox_begin() {
        name=oomptest$1$$
        top=$name.slice
        slice=$name-protected.slice
        mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"
        tmp=$(mktemp -d "/tmp/oomprotect-$1.XXXXXX")
        chmod 0755 "$tmp"
        dbus_pid='' daemon_pid='' helper_pid=''
        children=()
        trap 'sandbox_cleanup $? "$daemon_pid" "$helper_pid" "$dbus_pid"' EXIT
}

# sandbox_slice NAME: a test's own subtree below $CG: sets name, top (NAME.slice), slice
# (NAME-protected.slice, the daemon's Slice=) and slice_rel, and makes $CG/$top, or skips.
# shellcheck disable=SC2034 # set for the sourcing test
sandbox_slice() {
        name=$1
        top=$name.slice
        slice=$name-protected.slice
        slice_rel=$top/$slice
        mkdir "$CG/$top" 2>/dev/null || skip "the cgroup2 mount $CG is not writable"
}

# sandbox_traps VAR...: at exit, sandbox_cleanup with the exit status and the PIDs held in the
# variables named (read then, not now); every failing command is reported with its line.
sandbox_traps() {
        sandbox_pid_vars=("$@")
        trap sandbox_exit EXIT
        set -E
        trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR
}
sandbox_exit() {
        local rc=$? var pids=()
        trap - ERR
        for var in "${sandbox_pid_vars[@]}"; do
                pids+=("${!var}")
        done
        sandbox_cleanup "$rc" "${pids[@]}"
}

# cgroupfs_config STATEDIR: the [Manager] lines a sandboxed daemon starts from (the cgroupfs backend
# below $CG, Slice=$slice, its state and compat files in STATEDIR); the test appends its own keys.
cgroupfs_config() {
        printf '[Manager]\nBackend=cgroupfs\nCgroupRoot=%s\nSlice=%s\nStateDirectory=%s\nCompatDirectory=%s/compat\n' \
                "$CG" "$slice" "$1" "$1"
}

# sandbox_daemon CONF: oomprotectd (debug log appended to $tmp/daemon.log) on CONF; daemon_pid once it
# owns org.oomprotect on the private bus.
# shellcheck disable=SC2034 # the sourcing test's cleanup kills it
sandbox_daemon() {
        "$OOMPROTECT_DAEMON" --config="$1" --log-level=debug >>"$tmp/daemon.log" 2>&1 &
        daemon_pid=$!
        wait_until 10 name_has_owner || fail "oomprotectd did not acquire org.oomprotect"
}

# spawn_in SUB ADJ COMM CMD...: runs CMD in <top>/SUB with oom_score_adj ADJ; $spawned is its pid once its comm is COMM.
# shellcheck disable=SC2154,SC2034 # the sourcing test owns children and top, and reads spawned
spawn_in() {
        local sub=$1 adj=$2 comm=$3
        shift 3
        mkdir -p "$CG/$top/$sub"
        sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/self/oom_score_adj && shift 2 && exec "$@"' \
                spawn "$CG/$top/$sub" "$adj" "$@" &
        spawned=$!
        children+=("$spawned")
        wait_until 5 is_comm "$spawned" "$comm" || fail "child $spawned ($*) did not start"
}

# protect_adjs: protect_adj, child_adj and custom_adj for this machine: -1000 from 0 (custom -500) with
# CAP_SYS_RESOURCE, else 0 from 700 (custom 100), said in a note.
# shellcheck disable=SC2034 # set for the sourcing test
protect_adjs() {
        if sh -c 'echo -1 >/proc/self/oom_score_adj' 2>/dev/null; then
                protect_adj=-1000 child_adj=0 custom_adj=-500
        else
                protect_adj=0 child_adj=700 custom_adj=100
                note "no CAP_SYS_RESOURCE here: protecting with oom_score_adj 0 from 700"
        fi
}

# The rules' tests: log_has TEXT ($tmp/daemon.log has it), rules_reload (SIGHUP to $daemon_pid, then wait
# until it read its rules again).
log_has() {
        grep -qF -- "$1" "$tmp/daemon.log"
}
rules_reloads() {
        grep -c "Rules: .* loaded from" "$tmp/daemon.log"
}
rules_reloaded() { # N: N "Rules: ... loaded" lines so far
        (($(rules_reloads) >= $1))
}
# shellcheck disable=SC2154 # the sourcing test owns daemon_pid
rules_reload() {
        local before
        before=$(rules_reloads)
        kill -HUP "$daemon_pid"
        wait_until 5 rules_reloaded $((before + 1)) || fail "no reload after SIGHUP"
}
